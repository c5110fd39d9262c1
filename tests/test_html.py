"""Tests for smilepass_core.io.html (notebook HTML, Money and DateRange formats) and for the
short reprs of the dashboard, the reports and the weekly check."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import smilepass_core.reports as reports_package
from smilepass_core import (
    DateRange,
    Goals,
    InMemoryStore,
    KpiTargets,
    Money,
    Practice,
    dashboard,
)
from smilepass_core.demo import DEMO_NOW, DEMO_TARGETS, demo_store
from smilepass_core.io.html import (
    CSS,
    MAX_ROWS,
    ROOT_CLASS,
    TAGS,
    format_day,
    format_instant,
    format_money,
    format_range,
    title,
    to_html,
)
from smilepass_core.kpi import Dashboard, Feed
from smilepass_core.money import minor_units
from smilepass_core.presentation import provider
from smilepass_core.reports import (
    AccountingExport,
    AgedReceivables,
    CohortTable,
    DunningWorklist,
    InstalmentForecast,
    MembershipList,
    PaymentPlanList,
    RecoveredRevenue,
    ReferralTracking,
    RevenueCohortTable,
    StaffAttribution,
    TemplateUptake,
    WeeklyCheck,
    accounting_export,
    aged_receivables,
    cohort_retention,
    dunning_worklist,
    instalment_forecast,
    membership_list,
    payment_plan_list,
    recovered_revenue,
    referral_tracking,
    revenue_cohorts,
    staff_attribution,
    template_uptake,
    weekly_check,
)
from smilepass_core.reports._table import Report
from smilepass_core.subscriptions import subscription_metrics
from smilepass_core.testing import strategies as sps

SYDNEY = "Australia/Sydney"
NOVEMBER = DateRange.custom(date(2026, 11, 1), date(2026, 11, 30), timezone=SYDNEY)


@functools.cache
def store() -> InMemoryStore:
    return demo_store()


@functools.cache
def board() -> Dashboard:
    return dashboard(store(), practices=["syd", "nyc"], now=DEMO_NOW)


@functools.cache
def check() -> WeeklyCheck:
    return weekly_check(store(), now=DEMO_NOW)


#: Each report class of smilepass_core.reports, built from the demo.
REPORTS: dict[type[Report], Callable[[], Report]] = {
    ReferralTracking: lambda: referral_tracking(store(), revenue_range=NOVEMBER),
    StaffAttribution: lambda: staff_attribution(store(), date_range=NOVEMBER, now=DEMO_NOW),
    MembershipList: lambda: membership_list(store(), as_of=DEMO_NOW),
    PaymentPlanList: lambda: payment_plan_list(store(), as_of=DEMO_NOW),
    AgedReceivables: lambda: aged_receivables(store(), at=DEMO_NOW),
    CohortTable: lambda: cohort_retention(store(), now=DEMO_NOW),
    RevenueCohortTable: lambda: revenue_cohorts(store(), now=DEMO_NOW),
    RecoveredRevenue: lambda: recovered_revenue(store(), now=DEMO_NOW, date_range="last_month"),
    DunningWorklist: lambda: dunning_worklist(store(), now=DEMO_NOW),
    AccountingExport: lambda: accounting_export(store(), date_range=NOVEMBER, now=DEMO_NOW),
    InstalmentForecast: lambda: instalment_forecast(store(), date_range=NOVEMBER),
    TemplateUptake: lambda: template_uptake(store(), date_range=NOVEMBER, as_of=DEMO_NOW),
}


@functools.cache
def report(cls: type[Report]) -> Report:
    return REPORTS[cls]()


class Parsed(HTMLParser):
    """What an HTML fragment holds: its tags (checked to nest), text, style and attributes."""

    def __init__(self, fragment: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = fragment
        self.tags: list[str] = []
        self.attributes: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.style: list[str] = []
        self.open: list[str] = []
        self.rows: list[list[str]] = []
        self.feed(fragment)
        self.close()
        assert self.open == [], f"unclosed {self.open}"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.append((tag, dict(attrs)))
        self.open.append(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.rows[-1].append("")

    def handle_endtag(self, tag: str) -> None:
        assert self.open[-1:] == [tag], f"</{tag}> closes {self.open}"
        self.open.pop()

    def handle_data(self, data: str) -> None:
        (self.style if self.open and self.open[-1] == "style" else self.text).append(data)
        if self.open and self.open[-1] in ("td", "th"):
            self.rows[-1][-1] += data

    def classes(self) -> list[str]:
        """Every class attribute's value, in document order."""
        return [a["class"] or "" for _, a in self.attributes if "class" in a]

    def cells(self) -> list[list[str]]:
        """The text of each cell of every table, row by row (header rows included)."""
        return self.rows


def parsed(obj: Any, **options: Any) -> Parsed:
    return Parsed(to_html(obj, **options))


def all_results() -> list[Any]:
    return [board(), check(), *(report(cls) for cls in REPORTS)]


class TestRegistration:
    """Importing smilepass_core registers the HTML provider with the core's registry."""

    def test_the_html_provider_is_registered(self) -> None:
        """``provider("html")`` is :func:`to_html`, and each result's ``_repr_html_`` uses it."""
        assert provider("html") is to_html
        assert board()._repr_html_() == to_html(board())
        assert Money.of("5", "AUD")._repr_html_() == to_html(Money.of("5", "AUD"))

    def test_an_unknown_object_is_refused(self) -> None:
        """An object the provider has no HTML for is a TypeError naming its type."""
        with pytest.raises(TypeError, match="no HTML for int"):
            to_html(3)

    @pytest.mark.parametrize("bad", [-1, 1.5, True, "20"])
    def test_a_bad_max_rows_is_refused(self, bad: Any) -> None:
        """``max_rows`` must be a whole number >= 0 or None."""
        with pytest.raises(ValueError, match="max_rows"):
            to_html(board(), max_rows=bad)


class TestFormatMoney:
    """Money reads with its currency, thousands separators and the currency's decimals."""

    @pytest.mark.parametrize(
        ("amount", "currency", "text"),
        [
            ("1200", "AUD", "AUD 1,200.00"),
            ("-12", "AUD", "-AUD 12.00"),
            ("0", "USD", "USD 0.00"),
            ("1234567.5", "EUR", "EUR 1,234,567.50"),
            ("-1234567", "JPY", "-JPY 1,234,567"),
            ("1.5", "KWD", "KWD 1.500"),
            ("999.9999", "CLF", "CLF 999.9999"),
        ],
    )
    def test_examples(self, amount: str, currency: str, text: str) -> None:
        """The documented format, for currencies with 0, 2, 3 and 4 decimals."""
        assert format_money(Money.of(amount, currency)) == text

    def test_signed_marks_a_positive_amount(self) -> None:
        """``signed=True`` puts ``+`` before a positive amount, nothing before zero."""
        assert format_money(Money.of("3", "AUD"), signed=True) == "+AUD 3.00"
        assert format_money(Money.of("0", "AUD"), signed=True) == "AUD 0.00"
        assert format_money(Money.of("-3", "AUD"), signed=True) == "-AUD 3.00"

    @given(sps.money())
    def test_the_text_gives_back_the_amount(self, money: Money) -> None:
        """Any amount reads back exactly: sign, currency, the currency's decimals, groups
        of three digits."""
        text = format_money(money)
        negative = text.startswith("-")
        code, number = text.removeprefix("-").split(" ")
        assert code == money.currency
        assert negative == money.is_negative()
        whole, _, decimals = number.partition(".")
        assert len(decimals) == minor_units(money.currency)
        assert re.fullmatch(r"\d{1,3}(,\d{3})*", whole)
        assert Decimal(number.replace(",", "")) * (-1 if negative else 1) == money.amount


class TestFormatRange:
    """A half-open range shows its days (end minus one day) or its local times, and the city."""

    @pytest.mark.parametrize(
        ("first", "last", "text"),
        [
            (date(2026, 11, 1), date(2026, 11, 30), "1–30 Nov 2026 (Sydney)"),
            (date(2026, 10, 5), date(2026, 10, 5), "5 Oct 2026 (Sydney)"),
            (date(2026, 12, 30), date(2027, 1, 5), "30 Dec 2026 – 5 Jan 2027 (Sydney)"),
            # Sydney's clocks go forward on 4 October 2026 and back on 5 April 2026.
            (date(2026, 9, 28), date(2026, 10, 4), "28 Sep – 4 Oct 2026 (Sydney)"),
            (date(2026, 4, 1), date(2026, 4, 7), "1–7 Apr 2026 (Sydney)"),
            (date(2026, 4, 5), date(2026, 4, 5), "5 Apr 2026 (Sydney)"),
        ],
    )
    def test_whole_days(self, first: date, last: date, text: str) -> None:
        """Whole local days show first and last day, the shared month and year once, across
        the DST changes of the range's zone."""
        assert format_range(DateRange.custom(first, last, timezone=SYDNEY)) == text

    def test_a_day_whose_midnight_does_not_exist(self) -> None:
        """In Santiago, 6 September 2026 starts at 01:00 (clocks skip midnight): a range of
        whole days across it still shows days."""
        rng = DateRange.custom(date(2026, 9, 5), date(2026, 9, 7), timezone="America/Santiago")
        assert format_range(rng) == "5–7 Sep 2026 (Santiago)"

    def test_the_city_is_the_zones_last_part(self) -> None:
        """``America/Argentina/Buenos_Aires`` shows as Buenos Aires; UTC as UTC; ``city=False``
        leaves it out."""
        day = date(2026, 1, 2)
        rng = DateRange.custom(day, day, timezone="America/Argentina/Buenos_Aires")
        assert format_range(rng) == "2 Jan 2026 (Buenos Aires)"
        assert format_range(DateRange.custom(day, day, timezone="UTC")) == "2 Jan 2026 (UTC)"
        assert format_range(rng, city=False) == "2 Jan 2026"

    def test_local_times_when_an_edge_is_not_midnight(self) -> None:
        """A range cut mid-day shows both edges' local times, the date once when shared."""
        start = datetime(2026, 11, 18, 13, tzinfo=UTC)  # midnight of 19 Nov in Sydney
        assert (
            format_range(DateRange(start, DEMO_NOW, SYDNEY))
            == "19 Nov 2026 00:00 – 25 Nov 2026 16:00 (Sydney)"
        )
        same_day = DateRange(start, start + timedelta(hours=2, minutes=30), SYDNEY)
        assert format_range(same_day) == "19 Nov 2026 00:00–02:30 (Sydney)"

    def test_a_wall_time_that_happens_twice_shows_its_offset(self) -> None:
        """On 5 April 2026 Sydney lives 02:00-03:00 twice: each edge in it says its offset."""
        first = datetime(2026, 4, 4, 15, 30, tzinfo=UTC)  # 02:30 +11:00
        second = datetime(2026, 4, 4, 16, 30, tzinfo=UTC)  # 02:30 +10:00
        assert (
            format_range(DateRange(first, second, SYDNEY))
            == "5 Apr 2026 02:30 +11:00–02:30 +10:00 (Sydney)"
        )

    def test_an_empty_range(self) -> None:
        """An empty range says it holds nothing, and where."""
        at = datetime(2026, 11, 19, 2, tzinfo=UTC)
        assert format_range(DateRange(at, at, SYDNEY)) == "nothing at 19 Nov 2026 13:00 (Sydney)"

    @given(
        sps.timezones(),
        st.dates(date(2020, 1, 1), date(2030, 12, 1)),
        st.integers(0, 400),
    )
    def test_any_whole_day_range_shows_its_first_and_last_day(
        self, tz: str, first: date, days: int
    ) -> None:
        """For whole local days in any zone (DST in both hemispheres, midnights that do not
        exist), the text ends with the last included day and the city, starts with the
        first day's number, and shows no time."""
        last = first + timedelta(days=days)
        text = format_range(DateRange.custom(first, last, timezone=tz))
        city = tz.rsplit("/", 1)[-1].replace("_", " ")
        assert text.endswith(f"{format_day(last)} ({city})")
        assert text.startswith(f"{first.day}")
        assert ":" not in text
        if first.year != last.year:
            assert text.startswith(format_day(first))
        elif first.month != last.month:
            assert text.startswith(f"{first.day} {format_day(first).split()[1]} – ")

    @given(sps.date_ranges())
    def test_any_range_names_its_city_and_shows_times_unless_whole_days(
        self, rng: DateRange
    ) -> None:
        """Every range ends with its city; one shows times exactly when an edge is not a
        local midnight."""
        text = format_range(rng)
        assert text.endswith(f"({rng.timezone.rsplit('/', 1)[-1].replace('_', ' ')})")
        local_day = rng.local_start.date()
        whole = not rng.is_empty() and all(
            edge == DateRange.custom(e.date(), e.date(), timezone=rng.timezone).start
            for edge, e in ((rng.start, rng.local_start), (rng.end, rng.local_end))
        )
        assert (":" not in text) == whole
        assert str(local_day.day) in text


class TestFormatInstant:
    """An instant shows as a local date and time with its city."""

    def test_in_the_practice_zone_or_utc(self) -> None:
        """With a zone, the local wall-clock time; without, UTC."""
        assert format_instant(DEMO_NOW, SYDNEY) == "25 Nov 2026 16:00 (Sydney)"
        assert format_instant(DEMO_NOW, "America/New_York") == "25 Nov 2026 00:00 (New York)"
        assert format_instant(DEMO_NOW) == "25 Nov 2026 05:00 (UTC)"


class TestDashboardHtml:
    """The dashboard shows the manual's three KPI cards, its two series and the feed."""

    def test_one_card_per_kpi_and_currency(self) -> None:
        """Members, Retention % and one Total Revenue card per currency, in that order."""
        page = parsed(board())
        cards = [c for c in page.classes() if c.split()[0] == "smilepass-card"]
        assert cards == [
            "smilepass-card smilepass-kpi-members",
            "smilepass-card smilepass-kpi-retention",
            "smilepass-card smilepass-kpi-revenue",
            "smilepass-card smilepass-kpi-revenue",
        ]
        text = " | ".join(page.text)
        for name in ("Members", "Retention %", "Total Revenue (AUD)", "Total Revenue (USD)"):
            assert f"| {name} |" in text

    def test_a_card_shows_value_month_comparison_and_goal(self) -> None:
        """Each card holds the value, the this-month figure (a change for Members, the
        month to date for Revenue, no "+" on a total), previous and change, and the
        progress to the goal with a bar capped at 100."""
        b = board()
        text = " | ".join(parsed(b).text)
        members = b.members

        def signed(n: int) -> str:  # a change of none has no sign
            return f"{n:+d}" if n else "0"

        assert f"| {members.value} | Change this month {signed(members.this_month_delta)} |" in text
        assert f"| Previous {members.previous} · change {signed(members.change)} |" in text
        assert f"| {members.progress} % of goal {members.goal} |" in text
        revenue = b.revenue["AUD"]
        assert f"| {format_money(revenue.value)} |" in text
        month = revenue.this_month_delta
        assert f"| Month to date {format_money(month)} |" in text  # type: ignore[arg-type]
        assert f"change {format_money(revenue.change, signed=True)}" in text  # type: ignore[arg-type]
        assert f"| {b.retention.value} % |" in text
        bars = [a for tag, a in parsed(b).attributes if tag == "progress"]
        assert len(bars) == 4
        assert all(0 <= Decimal(a["value"] or "") <= 100 for a in bars)

    def test_undefined_figures_show_a_dash(self) -> None:
        """A practice without members has no retention: its value, previous, change and
        progress show ``—``, marked ``smilepass-undefined``."""
        empty = InMemoryStore.from_objects([Practice("p9", "Empty", SYDNEY, "AUD")])
        page = parsed(dashboard(empty, practices="p9", now=DEMO_NOW))
        text = " | ".join(page.text)
        assert "| — |" in text
        assert "Previous — · change —" in text
        assert "| — of goal 95 % |" in text
        assert "smilepass-kpi-value smilepass-undefined" in page.classes()

    def test_no_progress_without_a_goal(self) -> None:
        """A goal of zero is no goal: the cards show no progress line and no bar."""
        targets = KpiTargets(Goals(members=0, retention=0, revenue=0))
        b = dashboard(store(), practices="syd", now=DEMO_NOW, targets=targets)
        page = parsed(b)
        assert "progress" not in page.tags
        assert not any("of goal" in t for t in page.text)

    def test_the_series_and_the_feed_are_tables(self) -> None:
        """One table of buckets (New Members, Committed Payments per currency), one of the
        latest new members, with the day of each bucket in the practice's zone."""
        b = dashboard(store(), practices="syd", now=DEMO_NOW)
        page = parsed(b)
        assert page.classes().count("smilepass-table") == 2
        rows = page.cells()
        assert rows[0] == ["Bucket", "New Members", "Committed Payments (AUD)"]
        assert rows[1][0] == "19 Nov 2026"
        assert len(rows) == 1 + len(b.new_members) + 1 + len(b.latest_new_members)
        feed_header = rows[1 + len(b.new_members)]
        assert feed_header[0] == "Account Holder"
        names = [r[0] for r in rows[2 + len(b.new_members) :]]
        assert names == [m.account_holder.name for m in b.latest_new_members]

    def test_series_and_feed_on_their_own(self) -> None:
        """A series and the feed show as tables by themselves too."""
        b = board()
        series = parsed(b.committed_payments["AUD"])
        assert series.cells()[0] == ["Bucket", "Amount (AUD)"]
        assert len(series.cells()) == 1 + len(b.committed_payments["AUD"])
        feed = parsed(b.latest_new_members)
        assert len(feed.cells()) == 1 + len(b.latest_new_members)

    def test_the_series_shows_its_goal_per_bucket(self) -> None:
        """With a new-members goal each bucket shows its share of it (8 a month: 0.27 a
        November day), in the dashboard's series table and in the series on its own."""
        b = dashboard(store(), practices="syd", now=DEMO_NOW, targets=DEMO_TARGETS)
        rows = parsed(b).cells()
        assert rows[0] == ["Bucket", "New Members", "Goal", "Committed Payments (AUD)"]
        assert [r[2] for r in rows[1:4]] == ["0.27"] * 3
        series = parsed(b.new_members).cells()
        assert series[0] == ["Bucket", "Count", "Goal"]
        assert [r[2] for r in series[1:]] == [str(p.goal) for p in b.new_members]


class TestSubscriptionsHtml:
    """The subscription figures show as one table, the churn goal when there is one."""

    def test_every_figure_in_order(self) -> None:
        """Every figure in the text's order, signed movements, the churn goal for October
        (a whole month: 5.00 %), and the notebook repr is the same HTML."""
        m = subscription_metrics(
            store(), practices="syd", date_range="last_month", now=DEMO_NOW, targets=DEMO_TARGETS
        )
        page = parsed(m)
        rows = page.cells()
        assert rows[0] == ["Figure", "Value"]
        figures = dict(rows[1:])
        assert [r[0] for r in rows[1:]] == [
            "MRR at the start",
            "New",
            "Expansion",
            "Contraction",
            "Reactivation",
            "Churn",
            "MRR at the end",
            "ARR",
            "Members counting at the start",
            "Members counting at the end",
            "Churned members",
            "Logo churn",
            "Logo churn goal (at most)",
            "Revenue churn",
            "Gross revenue retention",
            "Net revenue retention",
            "ARPU",
            "LTV",
        ]
        assert figures["MRR at the end"] == format_money(m.mrr.end)
        assert figures["Churn"] == format_money(-m.mrr.churn, signed=True)
        assert figures["Logo churn goal (at most)"] == "5.00 %"  # October: a whole month
        assert figures["Members counting at the start"] == f"{m.members_start:,}"
        assert m._repr_html_() == to_html(m)
        assert set(page.tags) <= TAGS

    def test_no_goal_row_without_a_goal(self) -> None:
        """Without a churn goal the goal row is left out."""
        m = subscription_metrics(store(), practices="syd", now=DEMO_NOW, targets=Goals())
        assert "Logo churn goal (at most)" not in [r[0] for r in parsed(m).cells()]


class TestReportHtml:
    """Every report shows a heading with its count and a table of its columns."""

    def test_each_row_shows_its_own_practices_local_time(self) -> None:
        """A report over Sydney and New York shows each row's instants in its practice's
        zone, and a single-practice list's "As of" in that practice's zone."""
        both = reports_package.referral_tracking(store())
        assert both.timezones == {"syd": SYDNEY, "nyc": "America/New_York"}
        text = parsed(both, max_rows=None).text
        for row in both.rows:
            if row.converted_at is not None:
                zone = both.timezones[row.practice]
                assert format_instant(row.converted_at, zone) in text
        syd = reports_package.membership_list(store(), as_of=DEMO_NOW, practices="syd")
        assert f"As of {format_instant(DEMO_NOW, SYDNEY)} · " in " ".join(parsed(syd).text)

    @pytest.mark.parametrize("cls", list(REPORTS), ids=lambda c: c.__name__)
    def test_heading_with_count_then_the_columns(self, cls: type[Report]) -> None:
        """The heading names the report and counts its rows; the first table's header is
        the row class's columns as titles."""
        r = report(cls)
        page = parsed(r, max_rows=None)
        assert page.tags[:3] == ["div", "style", "h4"]
        assert re.search(rf" · {len(r.rows):,} \w", page.text[0])
        assert page.cells()[0] == [title(c) for c in r.ROW.COLUMNS]
        assert f"{ROOT_CLASS}-report-{cls.__name__.lower()}" in page.classes()[0]

    def test_every_report_class_is_covered(self) -> None:
        """The table of reports above lists every report class the package exports."""
        exported = {
            obj
            for name in reports_package.__all__
            if isinstance(obj := getattr(reports_package, name), type) and issubclass(obj, Report)
        }
        assert exported == set(REPORTS)

    @pytest.mark.parametrize(
        ("cls", "titles"),
        [
            (
                ReferralTracking,
                ["Account Holder", "Dependents", "Start Date", "Campaign", "User", "Status"],
            ),
            (MembershipList, ["Status", "Plan", "Start Date"]),
            (PaymentPlanList, ["Progression", "Balance", "Status", "Payment Type"]),
        ],
    )
    def test_the_manuals_column_names(self, cls: type[Report], titles: list[str]) -> None:
        """The lists the manual describes carry its column names."""
        header = parsed(report(cls)).cells()[0]
        assert set(titles) <= set(header)

    def test_money_and_counts_are_right_aligned(self) -> None:
        """Money and count cells, and their headers, carry ``smilepass-num``; text does not."""
        html = to_html(report(PaymentPlanList))
        balance = re.findall(r'<td class="([^"]*)">(AUD|USD) [\d,]+\.\d\d</td>', html)
        assert balance
        assert all("smilepass-num" in cls for cls, _ in balance)
        assert '<th class="smilepass-num">Balance</th>' in html
        assert '<th class="smilepass-num">Progression</th>' in html
        assert "<th>Patient</th>" in html

    def test_values_read_as_words(self) -> None:
        """Statuses read capitalised, days as ``5 Oct 2026``, follow-up actions as words."""
        text = parsed(report(PaymentPlanList), max_rows=None).text
        assert "Failed" in text
        assert "Resend payment link, Contact patient" in text
        assert any(re.fullmatch(r"\d{1,2} [A-Z][a-z]{2} 20\d\d", t) for t in text)

    def test_long_lists_are_cut_after_max_rows(self) -> None:
        """A list longer than MAX_ROWS shows that many rows and says how many more there are;
        ``max_rows`` changes the cut and ``None`` shows every row."""
        r = report(MembershipList)
        assert len(r.rows) > MAX_ROWS
        page = parsed(r)
        assert len(page.cells()) == 1 + MAX_ROWS
        assert f"… {len(r.rows) - MAX_ROWS} more rows not shown" in page.text
        assert f"… {len(r.rows) - 5} more rows not shown" in parsed(r, max_rows=5).text
        assert len(parsed(r, max_rows=None).cells()) == 1 + len(r.rows)
        one_more = attrs.evolve(r, rows=r.rows[: MAX_ROWS + 1])
        assert "… 1 more row not shown" in parsed(one_more).text
        assert not any("more row" in t for t in parsed(attrs.evolve(r, rows=r.rows[:3])).text)

    def test_an_empty_list_says_so(self) -> None:
        """A report without rows keeps its header and says it has no rows."""
        r = attrs.evolve(report(MembershipList), rows=())
        page = parsed(r)
        assert "No rows." in page.text
        assert page.cells() == [[title(c) for c in r.ROW.COLUMNS]]

    def test_notes_and_summary_tables(self) -> None:
        """Lists show their totals; referral tracking its conversions by campaign and by
        staff user; aged receivables its buckets by practice."""
        members = " ".join(parsed(report(MembershipList)).text)
        assert "Overdue: " in members
        referrals = parsed(report(ReferralTracking)).text
        assert any(t.startswith("Conversion by campaign · ") for t in referrals)
        assert any(t.startswith("Conversion by staff user · ") for t in referrals)
        aged = parsed(report(AgedReceivables)).cells()
        assert ["Practice", "Current", "1-30", "31-60", "61-90", "91+"] in aged


class TestWeeklyHtml:
    """The weekly check shows its dashboard, then its three lists with their counts."""

    def test_dashboard_then_three_lists(self) -> None:
        """Three KPI cards and more, then Failed plans, Overdue members and Converted
        referrals headings with their counts, instants in the practice's zone, then what
        was recovered of last week's failed charges."""
        c = check()
        page = parsed(c)
        assert page.classes()[0] == f"{ROOT_CLASS} {ROOT_CLASS}-weekly"
        assert sum(x.split()[0] == "smilepass-card" for x in page.classes()) >= 3
        text = page.text
        assert f"Failed payment plans to action · {len(c.failed_plans)}" in text
        assert f"Overdue members · {len(c.overdue_members)}" in text
        assert f"Referrals converted this week · {len(c.converted_referrals)}" in text
        assert "Charges that failed last week, and what was recovered since" in text
        assert page.classes().count("smilepass-table") == 6
        assert page.tags.count("style") == 1
        failed = c.failed_plans[0]
        tz = {"syd": SYDNEY, "nyc": "America/New_York"}[failed.practice]
        assert format_instant(failed.failed_at, tz) in text

    def test_each_list_shows_on_its_own(self) -> None:
        """One list of the check is a table of its own rows, titled by the row type, its
        instants in the list's zone and long lists cut like every other table."""
        c = check()
        failed = c.failed_plans
        page = parsed(failed)
        assert page.classes()[0] == f"{ROOT_CLASS} {ROOT_CLASS}-rows"
        assert f"Failed plans · {len(failed)}" in page.text
        assert page.classes().count("smilepass-table") == 1
        assert format_instant(failed[0].failed_at, failed.timezone) in page.text
        assert len(failed) >= 2
        assert f"{len(failed) - 1} more row" in to_html(failed, max_rows=1)


def _style_rules(css: str) -> list[str]:
    return [
        s.strip() for rule in css.split("}") if rule.strip() for s in rule.split("{")[0].split(",")
    ]


class TestSelfContained:
    """The HTML restyles nothing outside itself, runs nothing, loads nothing."""

    def test_every_selector_starts_with_the_root_class(self) -> None:
        """Each CSS selector is scoped under ``.smilepass``, so the notebook keeps its looks."""
        selectors = _style_rules(CSS)
        assert len(selectors) > 10
        assert all(s == ".smilepass" or s.startswith(".smilepass ") for s in selectors)

    @pytest.mark.parametrize("index", range(10))
    def test_one_root_only_known_tags_nothing_external(self, index: int) -> None:
        """Each result is one root ``div.smilepass`` holding one style sheet, only the known
        tags, no script, no link or url to fetch."""
        obj = all_results()[index]
        html = to_html(obj, max_rows=None)
        page = Parsed(html)
        assert html.startswith('<div class="smilepass ')
        assert html.endswith("</div>")
        assert set(page.tags) <= TAGS
        assert page.tags.count("style") == 1
        assert "".join(page.style) == CSS
        assert not re.search(r"<script|\bsrc=|\bhref=|url\(|@import", html, re.IGNORECASE)

    def test_money_and_ranges_are_spans(self) -> None:
        """Money and a range show as one span each, the range's exact edges in its title."""
        assert to_html(Money.of("-12", "AUD")) == (
            '<span class="smilepass smilepass-money">-AUD 12.00</span>'
        )
        page = parsed(NOVEMBER)
        assert page.text == ["1–30 Nov 2026 (Sydney)"]
        assert page.attributes[0][1]["title"] == str(NOVEMBER)

    def test_a_script_in_a_name_is_text(self) -> None:
        """A member named ``<script>alert(1)</script>`` shows as that text, never a tag."""
        evil = "<script>alert(1)</script>"
        r = report(MembershipList)
        page = parsed(attrs.evolve(r, rows=(attrs.evolve(r.rows[0], account_holder=evil),)))
        assert "script" not in page.tags
        assert evil in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.source

    @given(st.text(), st.text())
    def test_any_text_in_report_cells_stays_text(self, name: str, plan: str) -> None:
        """Arbitrary names and plan names in a list never open a tag the fragment does not
        emit, and read back exactly."""
        r = report(MembershipList)
        row = attrs.evolve(r.rows[0], account_holder=name, plan=plan)
        page = parsed(attrs.evolve(r, rows=(row,)))
        assert set(page.tags) <= TAGS
        cells = page.cells()
        assert cells[1][1] == name
        assert cells[1][3] == plan

    @given(st.text().filter(str.strip), st.text())
    def test_any_text_in_the_dashboard_and_weekly_check_stays_text(
        self, name: str, patient: str
    ) -> None:
        """Arbitrary member and patient names in the feed and the weekly lists stay text."""
        c = check()
        member = c.dashboard.latest_new_members[0]
        renamed = attrs.evolve(
            member, account_holder=attrs.evolve(member.account_holder, name=name)
        )
        feed = Feed([renamed], timezone=SYDNEY)
        failed = attrs.evolve(c.failed_plans[0], patient=patient)
        weekly = attrs.evolve(
            c,
            dashboard=attrs.evolve(c.dashboard, latest_new_members=feed),
            failed_plans=(failed,),
        )
        page = parsed(weekly)
        assert set(page.tags) <= TAGS
        assert name in page.text
        assert patient in page.text or patient == ""


class TestShortReprs:
    """The dashboard, every report and the weekly check print as a short line."""

    def test_the_dashboard(self) -> None:
        """Practices, range, members, retention, revenue per currency and counts, one line."""
        text = repr(board())
        assert text == (
            "<Dashboard syd+nyc 2026-11-19..2026-11-26: 299 members, retention 78.07 %, "
            "revenue AUD 3,895.27 / USD 5,750.58, 7 buckets, 5 latest>"
        )

    def test_a_dashboard_cut_mid_day_and_undefined(self) -> None:
        """A range that is not whole days shows local times; undefined retention a dash."""
        empty = InMemoryStore.from_objects([Practice("p9", "Empty", SYDNEY, "AUD")])
        rng = DateRange(datetime(2026, 11, 19, 2, tzinfo=UTC), DEMO_NOW, SYDNEY)
        text = repr(dashboard(empty, practices="p9", date_range=rng, now=DEMO_NOW))
        assert text.startswith("<Dashboard p9 2026-11-19 13:00..2026-11-25 16:00: 0 members, ")
        assert "retention —" in text

    @pytest.mark.parametrize("cls", list(REPORTS), ids=lambda c: c.__name__)
    def test_every_report(self, cls: type[Report]) -> None:
        """Each report prints its class, its row count and its practices, and keeps the
        Report mixin's repr (its class says ``repr=False`` to attrs)."""
        r = report(cls)
        assert cls.__repr__ is Report.__repr__
        practices = sorted({row.practice for row in r.rows})
        assert repr(r) == f"<{cls.__name__}: {len(r.rows)} rows, practices {', '.join(practices)}>"

    def test_a_report_with_one_row_or_none(self) -> None:
        """One row is "1 row"; no rows name no practices."""
        r = report(MembershipList)
        assert repr(attrs.evolve(r, rows=r.rows[:1])) == "<MembershipList: 1 row, practices nyc>"
        assert repr(attrs.evolve(r, rows=())) == "<MembershipList: 0 rows>"

    def test_the_weekly_check(self) -> None:
        """Practices, the week's local days and the three lists' counts."""
        c = check()
        assert repr(c) == (
            f"<WeeklyCheck nyc, syd week 2026-11-23..2026-11-30: "
            f"{len(c.failed_plans)} failed plans, {len(c.overdue_members)} overdue members, "
            f"{len(c.converted_referrals)} converted referrals>"
        )

    @pytest.mark.parametrize("index", range(10))
    def test_short(self, index: int) -> None:
        """No repr is longer than 200 characters or spans lines, whatever the rows."""
        text = repr(all_results()[index])
        assert len(text) < 200
        assert "\n" not in text
