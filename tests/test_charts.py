"""Charts (extra ``[plot]``): matplotlib Figures that carry exactly the core's figures."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta

import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from smilepass_core import (
    DateRange,
    InMemoryStore,
    InvalidValue,
    MissingExtra,
    Practice,
    Unit,
    dashboard,
)
from smilepass_core.demo import DEMO_NOW, demo_store
from smilepass_core.io.charts import (
    cohort_chart,
    comparison_dashboard,
    receivables_chart,
    referral_chart,
    series_chart,
    staff_chart,
)
from smilepass_core.io.html import format_range
from smilepass_core.kpi import Dashboard
from smilepass_core.reports import (
    AgedReceivables,
    CohortTable,
    ReferralTracking,
    StaffAttribution,
    aged_receivables,
    cohort_retention,
    referral_tracking,
    staff_attribution,
)

SYDNEY = "Australia/Sydney"


@pytest.fixture(scope="module")
def store() -> InMemoryStore:
    return demo_store()


@pytest.fixture(scope="module")
def empty_store() -> InMemoryStore:
    return InMemoryStore.from_objects([Practice("p1", "Bondi Dental", SYDNEY, "AUD")])


@pytest.fixture(scope="module")
def board(store: InMemoryStore) -> Dashboard:
    return dashboard(store, practices="syd", date_range="this_month", now=DEMO_NOW)


@pytest.fixture(scope="module")
def both(store: InMemoryStore) -> Dashboard:
    return dashboard(store, practices=["syd", "nyc"], date_range="last_30_days", now=DEMO_NOW)


@pytest.fixture(scope="module")
def month(board: Dashboard) -> DateRange:
    return board.ranges["syd"]


@pytest.fixture(scope="module")
def cohorts(store: InMemoryStore) -> CohortTable:
    return cohort_retention(store, now=DEMO_NOW)


@pytest.fixture(scope="module")
def receivables(store: InMemoryStore) -> AgedReceivables:
    return aged_receivables(store, at=DEMO_NOW)


@pytest.fixture(scope="module")
def referrals(store: InMemoryStore, month: DateRange) -> ReferralTracking:
    return referral_tracking(store, revenue_range=month)


@pytest.fixture(scope="module")
def staff(store: InMemoryStore, month: DateRange) -> StaffAttribution:
    return staff_attribution(store, date_range=month, now=DEMO_NOW)


def _heights(ax: Axes) -> list[list[float]]:
    """The bar heights of each bar group (container) of ``ax``, in drawing order."""
    return [[bar.get_height() for bar in c.patches] for c in ax.containers]  # type: ignore[attr-defined]


def _no_data(fig: Figure) -> str:
    (ax,) = fig.axes
    (note,) = ax.texts
    return note.get_text()


class TestSeriesChart:
    def test_new_members_line_carries_the_board_values(self, board: Dashboard) -> None:
        """The first line of the top axes is the board's New Members series, bucket by bucket."""
        ax = series_chart(board).axes[0]
        assert ax.get_title() == "New members"
        assert list(ax.lines[0].get_ydata()) == [p.value for p in board.new_members]
        assert list(ax.lines[0].get_xdata()) == list(range(len(board.new_members)))
        assert sum(p.value for p in board.new_members) > 0

    def test_committed_line_carries_the_amounts_of_its_currency(self, board: Dashboard) -> None:
        """The Committed Payments axes draws each bucket's amount, in its own currency."""
        ax = series_chart(board).axes[1]
        series = board.committed_payments["AUD"]
        assert ax.get_title() == "Committed payments (AUD)"
        assert list(ax.lines[0].get_ydata()) == [float(p.value.amount) for p in series]
        assert any(not p.value.is_zero() for p in series)

    def test_one_axes_per_currency_never_adding_currencies(self, both: Dashboard) -> None:
        """A board of two currencies gets one committed axes per currency, each its own values."""
        fig = series_chart(both)
        assert [ax.get_title() for ax in fig.axes] == [
            "New members",
            "Committed payments (AUD)",
            "Committed payments (USD)",
        ]
        for ax, currency in zip(fig.axes[1:], ("AUD", "USD"), strict=True):
            expected = [float(p.value.amount) for p in both.committed_payments[currency]]
            assert list(ax.lines[0].get_ydata()) == expected
            assert ax.get_ylabel() == f"Committed ({currency})"

    def test_comparison_lines_carry_the_comparison_dashboard(
        self, store: InMemoryStore, board: Dashboard, month: DateRange
    ) -> None:
        """With a comparison dashboard, each axes has a second line with its values."""
        before = dashboard(
            store, practices="syd", date_range=month.comparison(DEMO_NOW), now=DEMO_NOW
        )
        fig = series_chart(board, comparison=before)
        members, committed = fig.axes
        assert len(members.lines) == len(committed.lines) == 2
        expected = [p.value for p in before.new_members]
        assert list(members.lines[1].get_ydata()) == expected
        assert expected != [p.value for p in board.new_members]
        assert list(committed.lines[1].get_ydata()) == [
            float(p.value.amount) for p in before.committed_payments["AUD"]
        ]
        assert members.get_legend_handles_labels()[1][1].startswith(
            f"Comparison, {format_range(month.comparison(DEMO_NOW))}"
        )

    def test_comparison_dashboard_is_the_comparison_period(
        self, store: InMemoryStore, board: Dashboard, month: DateRange
    ) -> None:
        """``comparison_dashboard`` computes the board's practices over ``comparison(now)``."""
        before = comparison_dashboard(store, board)
        assert before.practices == board.practices
        assert before.ranges == {"syd": month.comparison(DEMO_NOW)}
        expected = dashboard(
            store, practices="syd", date_range=month.comparison(DEMO_NOW), now=DEMO_NOW
        )
        assert before.new_members == expected.new_members
        assert before.committed_payments == expected.committed_payments

    def test_comparison_dashboard_keeps_the_bucket_unit(self, store: InMemoryStore) -> None:
        """A weekly board's comparison is weekly too, though its range would default to days."""
        weekly = dashboard(
            store, practices="syd", date_range="this_month", now=DEMO_NOW, bucket=Unit.WEEK
        )
        before = comparison_dashboard(store, weekly)
        comparison = weekly.ranges["syd"].comparison(DEMO_NOW)
        assert comparison.default_bucket_unit() is Unit.DAY
        assert [p.start for p in before.new_members] == [
            b.start for b in comparison.buckets(Unit.WEEK)
        ]

    def test_comparison_of_several_ranges_is_refused(
        self, store: InMemoryStore, both: Dashboard
    ) -> None:
        """Practices in different time zones have different ranges: no single comparison."""
        with pytest.raises(InvalidValue, match="different ranges"):
            comparison_dashboard(store, both)

    def test_comparison_of_other_practices_is_refused(
        self, board: Dashboard, both: Dashboard
    ) -> None:
        """A comparison dashboard for other practices than the board's is an error."""
        with pytest.raises(InvalidValue, match="comparison"):
            series_chart(board, comparison=both)

    def test_titles_name_the_practice_the_period_and_the_days(
        self, board: Dashboard, month: DateRange
    ) -> None:
        """The title names the practice and the period cut at now; the x axis its days."""
        fig = series_chart(board)
        title = fig.get_suptitle()
        assert "syd" in title
        assert format_range(month.cut(DEMO_NOW)) in title
        bottom = fig.axes[-1]
        assert bottom.get_xlabel() == "Day of this period (Australia/Sydney)"
        assert bottom.get_xticklabels()[0].get_text() == "01 Nov"

    def test_a_period_not_started_gives_a_no_data_figure(self, store: InMemoryStore) -> None:
        """A range after now has empty series: the figure says so instead of raising."""
        later = DateRange.custom(
            DEMO_NOW.date() + timedelta(days=10),
            DEMO_NOW.date() + timedelta(days=16),
            timezone=SYDNEY,
        )
        board = dashboard(store, practices="syd", date_range=later, now=DEMO_NOW)
        assert board.new_members == ()
        assert _no_data(series_chart(board)).startswith("No data")


class TestCohortChart:
    def test_heatmap_cells_are_the_retention_shares(self, cohorts: CohortTable) -> None:
        """Each cell is the cohort's share at that month end; months not ended are masked."""
        fig = cohort_chart(cohorts)
        for ax, practice in zip(fig.axes[::2], ("nyc", "syd"), strict=True):
            rows = [r for r in cohorts.rows if r.practice == practice]
            cells = ax.images[0].get_array()
            assert cells is not None
            assert cells.shape == (len(rows), max(len(r.active) for r in rows))
            for y, row in enumerate(rows):
                for x in range(cells.shape[1]):
                    if x < len(row.retention):
                        assert cells[y, x] == float(row.retention[x])  # type: ignore[arg-type]
                    else:
                        assert cells.mask[y, x]  # type: ignore[union-attr]
            assert ax.get_title() == f"Practice {practice}"

    def test_the_title_gives_now_in_the_practices_zone(self) -> None:
        """One practice: its local time and city; practices in two zones: UTC."""
        store = demo_store()
        syd = cohort_chart(cohort_retention(store, now=DEMO_NOW, practices="syd"))
        assert syd.get_suptitle().endswith("as of 25 Nov 2026 16:00 (Sydney)")
        both = cohort_chart(cohort_retention(store, now=DEMO_NOW))
        assert both.get_suptitle().endswith("as of 25 Nov 2026 05:00 (UTC)")

    def test_one_heatmap_and_colour_bar_per_practice(self, cohorts: CohortTable) -> None:
        """Two practices give two heatmaps on a 0-100 % scale, each with its colour bar."""
        fig = cohort_chart(cohorts)
        heatmaps = [ax for ax in fig.axes if ax.images]
        assert len(heatmaps) == 2
        assert len(fig.axes) == 4
        assert all(ax.images[0].get_clim() == (0, 100) for ax in heatmaps)

    def test_rows_are_labelled_with_cohort_month_and_size(self, store: InMemoryStore) -> None:
        """The y labels name each cohort's month and size, oldest first."""
        table = cohort_retention(store, now=DEMO_NOW, practices="syd")
        ax = cohort_chart(table).axes[0]
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert labels[0] == f"{table.rows[0].cohort:%b %Y} (n={table.rows[0].size})"
        assert len(labels) == len(table.rows)

    def test_an_empty_table_gives_a_no_data_figure(self, empty_store: InMemoryStore) -> None:
        """A practice without members has no cohorts: a "No data" note, no exception."""
        assert _no_data(cohort_chart(cohort_retention(empty_store, now=DEMO_NOW))).startswith(
            "No data"
        )


class TestReceivablesChart:
    def test_bars_are_the_totals_per_bucket(self, receivables: AgedReceivables) -> None:
        """Each currency's bars are its practice's totals per bucket, zero where none."""
        fig = receivables_chart(receivables)
        for ax, (currency, practice) in zip(
            fig.axes, (("AUD", "syd"), ("USD", "nyc")), strict=True
        ):
            buckets = receivables.by_practice[practice]
            expected = [
                float(buckets[label].amount) if label in buckets else 0.0
                for label in receivables.labels
            ]
            assert _heights(ax) == [expected]
            assert [p.get_height() for p in ax.patches] == expected
            assert ax.get_ylabel() == f"Unpaid ({currency})"
            assert ax.get_title() == f"{currency}: total {receivables.totals[currency]}"
            assert [t.get_text() for t in ax.get_xticklabels()] == list(receivables.labels)

    def test_an_empty_report_gives_a_no_data_figure(self, empty_store: InMemoryStore) -> None:
        """Nothing due and unpaid gives a "No data" note."""
        report = aged_receivables(empty_store, at=DEMO_NOW)
        assert _no_data(receivables_chart(report)) == "No data: nothing due is unpaid"


class TestReferralChart:
    def test_bars_are_referrals_and_conversions_per_campaign(
        self, referrals: ReferralTracking
    ) -> None:
        """Per campaign, one bar of referrals and one of conversions, topped by the rate."""
        ax = referral_chart(referrals).axes[0]
        summaries = referrals.by_campaign
        assert _heights(ax) == [
            [s.referrals for s in summaries],
            [s.conversions for s in summaries],
        ]
        rates = [t.get_text() for t in ax.texts]
        assert rates == [f"{s.conversion_rate} %" for s in summaries]
        labels = [t.get_text() for t in ax.get_xticklabels()]
        assert labels == [f"{s.name} ({s.currency})" for s in summaries]

    def test_per_user_draws_the_user_summaries(self, referrals: ReferralTracking) -> None:
        """``by="user"`` draws the per-staff-user summaries."""
        ax = referral_chart(referrals, by="user").axes[0]
        assert _heights(ax)[1] == [s.conversions for s in referrals.by_user]
        assert "staff user" in ax.figure.get_suptitle()  # type: ignore[union-attr]

    def test_revenue_is_drawn_per_currency(self, referrals: ReferralTracking) -> None:
        """With a revenue range, each currency's revenue has its own axes."""
        fig = referral_chart(referrals)
        assert len(fig.axes) == 3
        for ax, currency in zip(fig.axes[1:], ("AUD", "USD"), strict=True):
            mine = [s for s in referrals.by_campaign if s.currency == currency]
            assert _heights(ax) == [[float(s.revenue.amount) for s in mine]]  # type: ignore[union-attr]
            assert currency in ax.get_ylabel()

    def test_without_a_revenue_range_only_conversions(self, store: InMemoryStore) -> None:
        """Without a revenue range there is no revenue to draw: one axes."""
        report = referral_tracking(store, practices="syd")
        assert len(referral_chart(report).axes) == 1

    def test_an_unknown_grouping_is_refused(self, referrals: ReferralTracking) -> None:
        """``by`` is "campaign" or "user"; anything else names the field."""
        with pytest.raises(InvalidValue, match="by"):
            referral_chart(referrals, by="month")  # type: ignore[arg-type]

    def test_an_empty_report_gives_a_no_data_figure(self, empty_store: InMemoryStore) -> None:
        """No campaigns and no referrals give a "No data" note."""
        assert _no_data(referral_chart(referral_tracking(empty_store))) == "No data: no referrals"


class TestStaffChart:
    def test_bars_are_each_users_referrals_and_conversions(self, staff: StaffAttribution) -> None:
        """Per staff user, the referrals started and converted in the range."""
        ax = staff_chart(staff).axes[0]
        assert _heights(ax) == [
            [r.referrals for r in staff.rows],
            [r.conversions for r in staff.rows],
        ]
        labels = [t.get_text() for t in ax.get_xticklabels()]
        assert labels == [f"{r.name} ({r.practice})" for r in staff.rows]

    def test_revenue_is_drawn_per_currency(self, staff: StaffAttribution) -> None:
        """Each currency's staff revenue has its own axes, titled with its exact total."""
        fig = staff_chart(staff)
        for ax, currency in zip(fig.axes[1:], ("AUD", "USD"), strict=True):
            mine = [r for r in staff.rows if r.currency == currency]
            assert _heights(ax) == [[float(r.revenue.amount) for r in mine]]
            total = sum((r.revenue for r in mine[1:]), mine[0].revenue)
            assert ax.get_title() == f"Revenue collected ({currency}): total {total}"

    def test_one_practice_labels_users_by_name(
        self, store: InMemoryStore, month: DateRange
    ) -> None:
        """With one practice the labels are the users' names alone."""
        report = staff_attribution(store, date_range=month, now=DEMO_NOW, practices="syd")
        ax = staff_chart(report).axes[0]
        assert [t.get_text() for t in ax.get_xticklabels()] == [r.name for r in report.rows]

    def test_an_empty_report_gives_a_no_data_figure(
        self, empty_store: InMemoryStore, month: DateRange
    ) -> None:
        """A practice without staff users gives a "No data" note."""
        report = staff_attribution(empty_store, date_range=month, now=DEMO_NOW)
        assert _no_data(staff_chart(report)) == "No data: no staff users"


Chart = Callable[..., Figure]


@pytest.fixture(scope="module")
def every_chart(
    store: InMemoryStore,
    board: Dashboard,
    cohorts: CohortTable,
    receivables: AgedReceivables,
    referrals: ReferralTracking,
    staff: StaffAttribution,
) -> dict[str, Chart]:
    before = comparison_dashboard(store, board)
    return {
        "series": lambda **kw: series_chart(board, comparison=before, **kw),
        "cohorts": lambda **kw: cohort_chart(cohorts, **kw),
        "receivables": lambda **kw: receivables_chart(receivables, **kw),
        "referrals": lambda **kw: referral_chart(referrals, **kw),
        "staff": lambda **kw: staff_chart(staff, **kw),
    }


NAMES = ("series", "cohorts", "receivables", "referrals", "staff")


class TestEveryChart:
    @pytest.mark.parametrize("name", NAMES)
    def test_saves_as_png_and_leaves_no_pyplot_figure(
        self, every_chart: dict[str, Chart], name: str
    ) -> None:
        """Each chart is a plain Figure that writes a PNG, with no pyplot figure opened."""
        import matplotlib.pyplot as plt

        fig = every_chart[name]()
        assert isinstance(fig, Figure)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        assert buffer.getvalue().startswith(b"\x89PNG\r\n\x1a\n")
        assert plt.get_fignums() == []

    @pytest.mark.parametrize("name", NAMES)
    def test_a_notebook_shows_it_as_png_without_an_inline_backend(
        self, every_chart: dict[str, Chart], name: str
    ) -> None:
        """IPython's PNG formatter finds the chart's own ``_repr_png_``: the PNG that
        savefig writes for the same chart, with no backend or pyplot set up."""
        from IPython.core.formatters import PNGFormatter

        shown = PNGFormatter()(every_chart[name]())
        assert isinstance(shown, bytes)
        assert shown.startswith(b"\x89PNG\r\n\x1a\n")
        buffer = io.BytesIO()
        every_chart[name]().savefig(buffer, format="png")  # a fresh one: layout settles once
        assert shown == buffer.getvalue()

    @pytest.mark.parametrize("name", NAMES)
    def test_an_explicit_title_replaces_the_default(
        self, every_chart: dict[str, Chart], name: str
    ) -> None:
        """``title=`` is the figure's title as given, in place of the default one."""
        default = every_chart[name]().get_suptitle()
        assert "\N{EM DASH}" not in default
        assert len(default) > 20
        assert every_chart[name](title="Harbour Dental \N{EM DASH} board").get_suptitle() == (
            "Harbour Dental \N{EM DASH} board"
        )


class TestMissingExtra:
    @pytest.mark.parametrize("name", NAMES)
    def test_without_matplotlib_a_chart_names_the_extra(
        self, every_chart: dict[str, Chart], name: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With matplotlib hidden, drawing raises MissingExtra, an ImportError naming ``[plot]``."""
        monkeypatch.setitem(sys.modules, "matplotlib", None)
        with pytest.raises(MissingExtra, match=r"pip install 'smilepass-core\[plot\]'") as raised:
            every_chart[name]()
        assert isinstance(raised.value, ImportError)
        assert (raised.value.extra, raised.value.module) == ("plot", "matplotlib")
        assert raised.value.name == "matplotlib"

    def test_importing_the_module_does_not_import_matplotlib(self) -> None:
        """Importing the package and the charts module leaves matplotlib unimported."""
        code = (
            "import sys, smilepass_core, smilepass_core.io.charts;"
            "print('matplotlib' in sys.modules)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "False"
