"""Typed tables (smilepass_core.io.frames): every report, the dashboard's figures, its
series and feed as Arrow, pandas, polars and DuckDB read them, money exact."""

from __future__ import annotations

import enum
import inspect
import pickle
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import smilepass_core.reports as reports
from smilepass_core import InMemoryStore, MissingExtra, SmilepassError, dashboard, presentation
from smilepass_core.demo import DEMO_NOW, demo_store
from smilepass_core.errors import InvalidValue
from smilepass_core.io import frames
from smilepass_core.kpi import Dashboard, Feed, Series, SeriesPoint
from smilepass_core.money import Money
from smilepass_core.periods import DateRange
from smilepass_core.reports._table import Report
from smilepass_core.reports.ledger import ForecastRow
from smilepass_core.testing import strategies as sps

DATASETS = settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
DICTIONARY = pa.dictionary(pa.int32(), pa.string())
SYDNEY = "Australia/Sydney"


# -- what a cell should hold, written from the rules, not from the implementation ------------


def cell(value: Any) -> Any:
    """What the table holds for ``value``: Money its amount, an enum its value, a tuple a
    list, anything else itself."""
    if isinstance(value, Money):
        return value.amount
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [cell(v) for v in value]
    return value


def expected_records(rows: Iterable[Any], columns: Iterable[str]) -> list[dict[str, Any]]:
    """The records a table of ``rows`` must hold: each column, and beside a Money column of
    a row without ``currency`` its ``<name>_currency``."""
    names = list(columns)
    result = []
    for row in rows:
        record = {}
        for name in names:
            value = getattr(row, name)
            record[name] = cell(value)
            if isinstance(value, Money) and "currency" not in names:
                record[f"{name}_currency"] = value.currency
        result.append(record)
    return result


def all_reports(store: InMemoryStore, now: datetime, timezone: str) -> dict[str, Report]:
    """One of every report type of ``store`` as seen at ``now``."""
    week = DateRange.last_days(30, now=now, timezone=timezone)
    return {
        "membership_list": reports.membership_list(store, as_of=now),
        "payment_plan_list": reports.payment_plan_list(store, as_of=now),
        "referral_tracking": reports.referral_tracking(store, revenue_range=week),
        "staff_attribution": reports.staff_attribution(store, date_range=week, now=now),
        "accounting_export": reports.accounting_export(store, date_range=week, now=now),
        "instalment_forecast": reports.instalment_forecast(
            store,
            date_range=DateRange.last_days(90, now=now + timedelta(days=60), timezone=timezone),
        ),
        "aged_receivables": reports.aged_receivables(store, at=now),
        "cohort_retention": reports.cohort_retention(store, now=now),
        "revenue_cohorts": reports.revenue_cohorts(store, now=now),
        "recovered_revenue": reports.recovered_revenue(store, now=now, date_range=week),
        "dunning_worklist": reports.dunning_worklist(store, now=now),
        "template_uptake": reports.template_uptake(store, date_range=week, as_of=now),
    }


@st.composite
def report_cases(draw: st.DrawFn) -> tuple[str, Report]:
    """A random dataset's report of a random type, at a random instant."""
    ds = draw(sps.datasets())
    now = draw(sps.boundaries(ds))
    store = InMemoryStore.from_objects(ds.objects())
    name = draw(st.sampled_from(sorted(REPORT_TYPES)))
    return name, all_reports(store, now, ds.practices[0].timezone)[name]


REPORT_TYPES = {
    "membership_list": reports.MembershipList,
    "payment_plan_list": reports.PaymentPlanList,
    "referral_tracking": reports.ReferralTracking,
    "staff_attribution": reports.StaffAttribution,
    "accounting_export": reports.AccountingExport,
    "instalment_forecast": reports.InstalmentForecast,
    "aged_receivables": reports.AgedReceivables,
    "cohort_retention": reports.CohortTable,
    "revenue_cohorts": reports.RevenueCohortTable,
    "recovered_revenue": reports.RecoveredRevenue,
    "dunning_worklist": reports.DunningWorklist,
    "template_uptake": reports.TemplateUptake,
}


@pytest.fixture(scope="module")
def demo() -> InMemoryStore:
    """The demo store (Sydney AUD and New York USD)."""
    return demo_store()


@pytest.fixture(scope="module")
def demo_reports(demo: InMemoryStore) -> dict[str, Report]:
    """Every report of the demo at its ``now``."""
    return all_reports(demo, DEMO_NOW, SYDNEY)


@pytest.fixture(scope="module")
def board(demo: InMemoryStore) -> Dashboard:
    """The demo's dashboard of both practices over last month, Sydney first."""
    return dashboard(demo, practices=["syd", "nyc"], now=DEMO_NOW, date_range="last_month")


class TestEveryReport:
    def test_every_report_type_is_covered(self) -> None:
        """Each Report class smilepass_core.reports exports is among those tested here."""
        exported = {
            obj
            for obj in vars(reports).values()
            if inspect.isclass(obj) and issubclass(obj, Report)
        }
        assert exported == set(REPORT_TYPES.values())

    def test_every_demo_report_converts(self, demo_reports: dict[str, Report]) -> None:
        """Every report of the demo has rows and an Arrow table with one row per row."""
        for name, report in demo_reports.items():
            table = report.to_arrow()
            assert table.num_rows == len(report.rows), name
            assert table.num_rows > 0, name

    @DATASETS
    @given(report_cases())
    def test_the_table_holds_exactly_the_rows(self, case: tuple[str, Report]) -> None:
        """For random data, the table holds exactly the report's rows and values, money as
        the exact Decimal amount, in the order of ``ROW.COLUMNS``."""
        _, report = case
        table = report.to_arrow()
        assert table.to_pylist() == expected_records(report.rows, report.ROW.COLUMNS)
        assert table.column_names[: len(report.ROW.COLUMNS)] == list(report.ROW.COLUMNS)

    @DATASETS
    @given(report_cases())
    def test_pandas_polars_and_duckdb_agree_with_arrow(self, case: tuple[str, Report]) -> None:
        """pandas, polars (both ways) and a DuckDB scan of the report hold the Arrow rows."""
        _, report = case
        table = report.to_arrow()
        assert pl.DataFrame(report).equals(pl.from_arrow(table))
        assert report.to_polars().equals(pl.from_arrow(table))
        pandas = report.to_pandas()
        assert list(pandas.columns) == table.column_names
        assert len(pandas) == table.num_rows
        assert pa.Table.from_pandas(pandas, preserve_index=False).cast(table.schema).equals(table)
        names = ", ".join(f'"{c}"' for c in table.column_names)
        scanned = duckdb.sql(f"select {names} from report").to_arrow_table()
        assert scanned.num_rows == table.num_rows
        money = [f.name for f in table.schema if pa.types.is_decimal(f.type)]
        for name in money:
            assert scanned.column(name).to_pylist() == table.column(name).to_pylist()


class TestColumnTypes:
    def test_membership_list(self, demo_reports: dict[str, Report]) -> None:
        """Statuses are dictionaries, days date32, counts int64, flags bool, money a decimal at
        the currency's scale beside the row's own currency column."""
        schema = demo_reports["membership_list"].to_arrow().schema
        assert schema.field("status").type == DICTIONARY
        assert schema.field("start_date").type == pa.date32()
        assert schema.field("dependents").type == pa.int64()
        assert schema.field("overdue").type == pa.bool_()
        assert schema.field("amount_overdue").type == pa.decimal128(38, 2)
        assert schema.field("currency").type == pa.string()
        assert "amount_overdue_currency" not in schema.names

    def test_tuples_become_lists(self, demo_reports: dict[str, Report]) -> None:
        """A tuple of statuses is a list of dictionary values; cohort figures are real
        numbers (counts and exact percents), not joined strings."""
        plans = demo_reports["payment_plan_list"].to_arrow().schema
        assert plans.field("actions").type == pa.list_(DICTIONARY)
        cohorts = demo_reports["cohort_retention"]
        schema = cohorts.to_arrow().schema
        assert schema.field("active").type == pa.list_(pa.int64())
        assert schema.field("retention").type == pa.list_(pa.decimal128(38, 2))
        first = cohorts.to_arrow().to_pylist()[0]
        assert first["retention"] == list(cohorts.rows[0].retention)

    def test_instants_are_timestamps_in_the_reports_zone(self, demo: InMemoryStore) -> None:
        """A report shows instants in its practices' zone when they share one, else in UTC
        (one Arrow column has one zone); the instants themselves are the same."""
        ny = reports.referral_tracking(demo, practices="nyc").to_arrow()
        assert ny.schema.field("converted_at").type == pa.timestamp("us", tz="America/New_York")
        both = reports.referral_tracking(demo).to_arrow()
        assert both.schema.field("converted_at").type == pa.timestamp("us", tz="UTC")
        in_both = dict(
            zip(
                both.column("referral_id").to_pylist(),
                both.column("converted_at").to_pylist(),
                strict=True,
            )
        )
        for referral_id, at in zip(
            ny.column("referral_id").to_pylist(), ny.column("converted_at").to_pylist(), strict=True
        ):
            assert in_both[referral_id] == at

    def test_a_column_mixing_currencies_takes_the_largest_scale(self) -> None:
        """JPY (0 decimals) and KWD (3) in one column: decimal128(38, 3), every value exact."""
        rows = (
            ForecastRow("p", date(2026, 1, 1), 1, Money.of("1200", "JPY"), "JPY"),
            ForecastRow("q", date(2026, 1, 1), 2, Money.of("1.234", "KWD"), "KWD"),
        )
        rng = DateRange.custom(date(2026, 1, 1), date(2026, 1, 31), timezone="UTC")
        table = reports.InstalmentForecast(rows=rows, date_range=rng, totals={}).to_arrow()
        assert table.schema.field("amount").type == pa.decimal128(38, 3)
        assert table.column("amount").to_pylist() == [Decimal("1200"), Decimal("1.234")]
        assert table.column("currency").to_pylist() == ["JPY", "KWD"]

    def test_an_empty_report_is_still_typed(self) -> None:
        """No rows: the same columns and types, money at scale 2."""
        rng = DateRange.custom(date(2026, 1, 1), date(2026, 1, 31), timezone="UTC")
        table = reports.InstalmentForecast(rows=(), date_range=rng, totals={}).to_arrow()
        assert table.num_rows == 0
        assert table.column_names == list(ForecastRow.COLUMNS)
        assert table.schema.field("amount").type == pa.decimal128(38, 2)
        assert table.schema.field("bucket").type == pa.date32()

    def test_undefined_figures_are_nulls(self, demo_reports: dict[str, Report]) -> None:
        """An absent value (no next due day, nothing overdue) is a null, not a string."""
        table = demo_reports["payment_plan_list"].to_arrow()
        assert table.column("next_due").null_count > 0
        members = demo_reports["membership_list"].to_arrow()
        assert members.column("amount_overdue").null_count > 0

    def test_schema_of_is_the_tables_schema(self, demo_reports: dict[str, Report]) -> None:
        """schema_of() gives the schema to_arrow() builds."""
        report = demo_reports["accounting_export"]
        assert frames.schema_of(report) == report.to_arrow().schema

    def test_a_field_without_a_column_type_is_named(self) -> None:
        """A row field whose annotation has no column type raises naming the field."""

        @attrs.frozen
        class Odd:
            COLUMNS = ("when",)
            when: timedelta

        with pytest.raises(TypeError, match=r"Odd\.when: no column type"):
            frames._kinds(Odd)

    def test_an_unknown_object_is_refused(self) -> None:
        """Only the core's results have a table."""
        with pytest.raises(TypeError, match="no typed table for int"):
            frames.to_arrow(3)


class TestDashboardTable:
    def test_one_row_per_figure_and_currency(self, board: Dashboard) -> None:
        """Members, the two retentions, then revenue once per currency, each with its unit."""
        table = board.to_arrow()
        assert table.column("figure").to_pylist() == [
            "members",
            "retention",
            "period_retention",
            "revenue",
            "revenue",
        ]
        assert table.column("unit").to_pylist() == ["count", "percent", "percent"] + 2 * ["money"]
        assert table.column("currency").to_pylist() == [None, None, None, "AUD", "USD"]
        assert table.column("practices").to_pylist() == 5 * [["syd", "nyc"]]

    def test_values_are_the_kpis_exactly(self, board: Dashboard) -> None:
        """Each row carries its Kpi's value, delta, previous, change, goal and progress."""
        records = board.to_arrow().to_pylist()
        kpis = [board.members, board.retention, board.period_retention]
        kpis += [board.revenue["AUD"], board.revenue["USD"]]
        for record, kpi in zip(records, kpis, strict=True):
            for name in ("value", "this_month_delta", "previous", "change", "goal"):
                expected = getattr(kpi, name)
                expected = cell(expected)
                assert record[name] == (None if expected is None else Decimal(expected)), name
            assert record["progress"] == kpi.progress

    def test_types_do_not_mix_money_and_counts(self, board: Dashboard) -> None:
        """Every number is an exact decimal; figure and unit are dictionaries."""
        schema = board.to_arrow().schema
        assert schema.field("figure").type == DICTIONARY
        assert schema.field("unit").type == DICTIONARY
        for name in ("value", "this_month_delta", "previous", "change", "goal", "progress"):
            assert pa.types.is_decimal(schema.field(name).type), name

    def test_readers_take_the_dashboard(self, board: Dashboard) -> None:
        """polars, pandas' from_arrow and DuckDB read the dashboard object itself."""
        assert pl.DataFrame(board).height == 5
        assert len(pd.DataFrame.from_arrow(board)) == 5
        members = duckdb.sql("select value from board where figure = 'members'").fetchall()
        assert members == [(Decimal(board.members.value),)]


class TestSeriesAndFeed:
    def test_series_are_the_plain_tuples(self, board: Dashboard) -> None:
        """A Series equals, iterates, indexes and slices like the tuple of its points."""
        points = tuple(board.new_members)
        assert board.new_members == points
        assert points == board.new_members
        assert board.new_members[0] is points[0]
        assert board.new_members[1:3] == points[1:3]
        assert list(reversed(board.new_members)) == list(reversed(points))
        assert points[0] in board.new_members
        assert len(board.new_members) == len(points)
        assert hash(board.new_members) == hash(points)
        assert board.new_members != list(points)
        assert repr(Series(())) == "<Series: 0 buckets>"
        assert repr(Feed(())) == "<Feed: 0 members, newest first>"

    def test_series_remember_zone_and_currency(self, board: Dashboard) -> None:
        """The series are shown in the first practice's zone (their buckets are its days,
        for every currency's series too); money series know their currency, also after
        pickling; a feed mixing practices in different zones is shown in UTC."""
        assert board.new_members.timezone == SYDNEY
        assert board.new_members.currency is None
        usd = board.committed_payments["USD"]
        assert (usd.timezone, usd.currency) == (SYDNEY, "USD")
        copy = pickle.loads(pickle.dumps(usd))
        assert (copy, copy.timezone, copy.currency) == (usd, usd.timezone, usd.currency)
        assert board.latest_new_members.timezone == "UTC"

    def test_count_series_table(self, board: Dashboard) -> None:
        """day date32, start and end timestamps in the zone, value int64, the goal an exact
        decimal (null without one), one row per point."""
        table = board.new_members.to_arrow()
        assert table.schema == pa.schema(
            [
                ("day", pa.date32()),
                ("start", pa.timestamp("us", tz=SYDNEY)),
                ("end", pa.timestamp("us", tz=SYDNEY)),
                ("value", pa.int64()),
                ("goal", pa.decimal128(38, 2)),
            ]
        )
        assert table.to_pylist() == expected_records(board.new_members, table.column_names)
        assert pl.DataFrame(board.new_members).equals(board.new_members.to_polars())

    def test_money_series_table(self, board: Dashboard) -> None:
        """A money series holds exact decimals beside a ``value_currency`` column."""
        series = board.committed_payments["AUD"]
        table = series.to_arrow()
        assert table.schema.field("value").type == pa.decimal128(38, 2)
        assert table.column("value").to_pylist() == [p.value.amount for p in series]
        assert set(table.column("value_currency").to_pylist()) == {"AUD"}

    def test_feed_table(self, board: Dashboard) -> None:
        """The feed lists the members, newest first, with their status and first activation."""
        feed = board.latest_new_members
        table = feed.to_arrow()
        assert table.column("member_id").to_pylist() == [m.id for m in feed]
        assert table.column("first_activated_at").to_pylist() == [
            m.first_activated_at for m in feed
        ]
        assert table.schema.field("first_activated_at").type == pa.timestamp("us", tz="UTC")
        assert table.schema.field("status").type == DICTIONARY
        assert Feed(()).to_arrow().num_rows == 0

    def test_duckdb_reads_a_series_and_the_feed(self, board: Dashboard) -> None:
        """A DuckDB replacement scan reads the series and the feed objects themselves."""
        new_members, feed = board.new_members, board.latest_new_members
        total = duckdb.sql("select sum(value) from new_members").fetchall()[0]
        assert duckdb.sql("select count(*) from feed").fetchall() == [(len(feed),)]
        assert total == (sum(p.value for p in new_members),)

    def test_an_empty_money_series_is_typed(self) -> None:
        """No points: the columns stay typed (money at scale 2)."""
        table = Series[Money]((), timezone="UTC", currency="JPY").to_arrow()
        assert table.schema.field("value").type == pa.decimal128(38, 2)
        assert table.schema.field("start").type == pa.timestamp("us", tz="UTC")

    def test_an_ad_hoc_series(self) -> None:
        """A Series built by hand converts like the dashboard's."""
        start = datetime(2026, 1, 1, tzinfo=UTC)
        point = SeriesPoint(date(2026, 1, 1), start, start + timedelta(days=1), 3)
        assert Series([point]).to_arrow().column("value").to_pylist() == [3]


class TestWeeklyLists:
    """The weekly check's three lists are tables of their own (``Rows``)."""

    CHECK = reports.weekly_check(demo_store(), now=DEMO_NOW, practices="syd")

    def test_each_list_converts_with_its_row_columns(self) -> None:
        """Each list's Arrow table has its row type's columns and one row per row, instants
        in the week's zone, balances exact."""
        for rows in (
            self.CHECK.failed_plans,
            self.CHECK.overdue_members,
            self.CHECK.converted_referrals,
        ):
            table = rows.to_arrow()
            assert table.num_rows == len(rows)
            assert set(rows.row.COLUMNS) <= set(table.column_names)
        failed = self.CHECK.failed_plans
        assert len(failed) > 0
        table = failed.to_arrow()
        assert table.schema.field("failed_at").type == pa.timestamp("us", tz=SYDNEY)
        assert table.column("balance").to_pylist() == [r.balance.amount for r in failed]

    def test_polars_and_duckdb_read_a_list_directly(self) -> None:
        """``pl.DataFrame(rows)`` and DuckDB read a list through the Arrow stream."""
        overdue = self.CHECK.overdue_members
        assert pl.DataFrame(overdue).height == len(overdue)
        assert duckdb.sql("select count(*) from overdue").fetchall() == [(len(overdue),)]

    def test_a_list_compares_like_its_tuple_and_is_read_only(self) -> None:
        """The lists still compare, index and iterate like tuples, and cannot be changed."""
        failed = self.CHECK.failed_plans
        assert failed == tuple(failed)
        assert repr(failed) == f"<Rows of FailedPlan: {len(failed)} rows>"
        with pytest.raises(AttributeError, match="read-only"):
            failed.row = reports.weekly.ConvertedReferral  # type: ignore[misc]
        with pytest.raises(AttributeError, match="read-only"):
            self.CHECK.dashboard.new_members.timezone = "UTC"  # type: ignore[misc]
        with pytest.raises(AttributeError, match="read-only"):
            del self.CHECK.dashboard.latest_new_members.timezone

    def test_a_weekly_check_built_from_tuples_gets_rows(self) -> None:
        """A WeeklyCheck built by hand from plain tuples holds Rows of the right type."""
        check = attrs.evolve(self.CHECK, failed_plans=tuple(self.CHECK.failed_plans))
        assert check.failed_plans.row is reports.weekly.FailedPlan
        assert check == self.CHECK
        assert check.failed_plans.timezone == self.CHECK.week.timezone == SYDNEY
        assert check.failed_plans.to_arrow().equals(self.CHECK.failed_plans.to_arrow())

    def test_records_and_csv_of_a_list(self) -> None:
        """A list writes the same records and CSV as its rows do."""
        import io as text_io

        from smilepass_core.reports._table import to_csv, to_records

        overdue = self.CHECK.overdue_members
        assert overdue.to_records() == to_records(overdue)
        written, expected = text_io.StringIO(), text_io.StringIO()
        overdue.to_csv(written)
        to_csv(overdue, overdue.row.COLUMNS, expected)
        assert written.getvalue() == expected.getvalue()


class TestPandas:
    def test_pandas_dataframe_needs_from_arrow(self, board: Dashboard) -> None:
        """pandas 3's DataFrame() does not read an Arrow stream object; from_arrow does."""
        with pytest.raises(ValueError, match="DataFrame constructor not properly called"):
            pd.DataFrame(board)
        frame = pd.DataFrame.from_arrow(board.new_members)
        assert list(frame["value"]) == [p.value for p in board.new_members]

    def test_decimal_money_is_exact(self, demo_reports: dict[str, Report]) -> None:
        """By default money is an exact Arrow-backed decimal whose sum is the report's total."""
        report = demo_reports["accounting_export"]
        frame = report.to_pandas()
        assert frame["amount"].dtype == pd.ArrowDtype(pa.decimal128(38, 2))
        by_currency = frame.groupby("currency")["amount"].sum()
        assert {c: by_currency[c] for c in by_currency.index} == {
            c: t.amount for c, t in report.totals.items()
        }
        assert frame["kind"].dtype == "category"
        assert str(frame["date"].dtype) == "date32[day][pyarrow]"

    def test_float_money_is_for_plotting(self, demo_reports: dict[str, Report]) -> None:
        """money="float" gives float64 money and percents, each Money.to_float()."""
        report = demo_reports["accounting_export"]
        frame = frames.to_pandas(report, money="float")
        assert frame["amount"].dtype == "float64"
        assert list(frame["amount"]) == [r.amount.to_float() for r in report.rows]
        cohorts = frames.to_pandas(demo_reports["cohort_retention"], money="float")
        assert list(cohorts.loc[0, "retention"]) == [
            None if p is None else float(p)
            for p in demo_reports["cohort_retention"].rows[0].retention
        ]

    def test_minor_units(self, demo_reports: dict[str, Report]) -> None:
        """money="minor_units" gives int64 counts of minor units (cents)."""
        report = demo_reports["staff_attribution"]
        frame = frames.to_pandas(report, money="minor_units")
        assert frame["revenue"].dtype == pd.ArrowDtype(pa.int64())
        assert list(frame["revenue"]) == [r.revenue.minor for r in report.rows]

    def test_an_unknown_money_mode_is_refused(self, board: Dashboard) -> None:
        """A money mode other than decimal, float and minor_units raises InvalidValue."""
        with pytest.raises(InvalidValue, match="money: must be one of decimal, float, minor_units"):
            frames.to_pandas(board, money="cents")  # type: ignore[arg-type]

    def test_polars_takes_the_same_modes(self, board: Dashboard) -> None:
        """to_polars(money="float") gives Float64 numbers."""
        frame = frames.to_polars(board, money="float")
        assert frame.schema["value"] == pl.Float64


class TestMissingExtras:
    @pytest.mark.parametrize(
        ("module", "extra", "call"),
        [
            ("pyarrow", "arrow", lambda obj: obj.to_arrow()),
            ("pyarrow", "arrow", lambda obj: obj.__arrow_c_stream__()),
            ("pandas", "pandas", lambda obj: obj.to_pandas()),
            ("polars", "polars", lambda obj: obj.to_polars()),
        ],
    )
    def test_a_missing_module_names_its_extra(
        self,
        monkeypatch: pytest.MonkeyPatch,
        board: Dashboard,
        module: str,
        extra: str,
        call: Callable[[Any], Any],
    ) -> None:
        """Without the module, the conversion raises MissingExtra naming the extra to install."""
        monkeypatch.setitem(sys.modules, module, None)
        with pytest.raises(MissingExtra) as info:
            call(board)
        error = info.value
        assert (error.extra, error.module, error.name) == (extra, module, module)
        assert isinstance(error, ImportError)
        assert isinstance(error, SmilepassError)
        assert f"pip install 'smilepass-core[{extra}]'" in str(error)

    def test_the_message_without_a_purpose(self) -> None:
        """Built by hand, the message still says what to install."""
        assert str(MissingExtra("arrow", "pyarrow")) == (
            "this needs pyarrow, which is not installed: pip install 'smilepass-core[arrow]'"
        )


class TestRegistration:
    def test_the_package_registers_the_frames(self) -> None:
        """Importing smilepass_core registers to_arrow, to_pandas and to_polars."""
        assert presentation.provider("arrow") is frames.to_arrow
        assert presentation.provider("pandas") is frames.to_pandas
        assert presentation.provider("polars") is frames.to_polars
