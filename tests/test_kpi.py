"""Tests for smilepass_core.kpi: every figure of docs/metrics.md, its edge cases and its rules."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from smilepass_core import (
    BillingCycle,
    Campaign,
    CurrencyMismatch,
    DateRange,
    InMemoryStore,
    InvalidPeriod,
    InvalidValue,
    Member,
    MembershipPlan,
    MembershipStatus,
    Money,
    NaiveDatetime,
    NotFound,
    Patient,
    Payment,
    PaymentKind,
    PaymentOutcome,
    PaymentPlan,
    PaymentPlanTemplate,
    PaymentType,
    Practice,
    Preset,
    Unit,
)
from smilepass_core.domain.discounts import Discount
from smilepass_core.io.text import render_dashboard, show
from smilepass_core.kpi import (
    Dashboard,
    Goals,
    Kpi,
    KpiTargets,
    Ratio,
    comparison_dashboard,
    dashboard,
    month_share,
    this_month,
    weighted_goal,
)
from smilepass_core.kpi import effective_end as kpi_effective_end
from smilepass_core.periods import add_units, local_midnight, zone
from smilepass_core.queries import MemberQuery, Order, Page
from smilepass_core.repositories import (
    MemberBoundaryReader,
    MemberSeriesReader,
    PaymentPlanSeriesReader,
    PaymentWindowReader,
)
from smilepass_core.testing import contracts
from smilepass_core.testing import strategies as sps

SYDNEY = "Australia/Sydney"
SYD = ZoneInfo(SYDNEY)
PERTH = ZoneInfo("Australia/Perth")
AUCKLAND = ZoneInfo("Pacific/Auckland")
NEW_YORK = "America/New_York"
ACTIVE = MembershipStatus.ACTIVE
ONE_US = timedelta(microseconds=1)
#: Zones an hour to a day apart, on both sides of the date line.
ZONES = (SYDNEY, "Australia/Perth", "Pacific/Auckland", NEW_YORK, "UTC")

#: Whole datasets are slow to draw: a quarter of the profile's examples (50 under ``ci``),
#: keeping the profile's health-check choices.
DATASETS = settings(
    max_examples=settings.default.max_examples // 4,
    suppress_health_check=[*settings.default.suppress_health_check, HealthCheck.too_slow],
)


# -- building practices by hand ----------------------------------------------------------------


def sydney(month: int, day: int, hour: int = 0, minute: int = 0, *, fold: int = 0) -> datetime:
    """An instant given as a Sydney wall-clock time in 2026."""
    return datetime(2026, month, day, hour, minute, tzinfo=SYD, fold=fold)


def practice(practice_id: str = "p1", tz: str = SYDNEY, currency: str = "AUD") -> Practice:
    """A practice in ``tz`` billing in ``currency``."""
    return Practice(practice_id, f"Practice {practice_id}", tz, currency)


def plan_of(p: Practice) -> MembershipPlan:
    """The practice's one membership plan (id ``<practice>-plan``), 30 a month."""
    return MembershipPlan(
        f"{p.id}-plan", p.id, "Essential", Money.of("30", p.currency), BillingCycle.MONTHLY
    )


def setup(p: Practice) -> list[object]:
    """A practice and its membership plan."""
    return [p, plan_of(p)]


def enrol(member_id: str, at: datetime, practice_id: str = "p1", name: str = "") -> Member:
    """A Pending member of ``practice_id`` enrolled at ``at``."""
    return Member.enrol(
        id=member_id,
        practice_id=practice_id,
        plan_id=f"{practice_id}-plan",
        account_holder=Patient(f"pat-{member_id}", name or f"Holder {member_id}"),
        start_date=at.date(),
        at=at,
    )


def joined(member_id: str, at: datetime, practice_id: str = "p1") -> Member:
    """A member enrolled and activated at ``at``."""
    return enrol(member_id, at, practice_id).activate(at=at)


def payment(
    payment_id: str,
    amount: str,
    at: datetime,
    *,
    member: str | None = None,
    plan: str | None = None,
    practice_id: str = "p1",
    currency: str = "AUD",
    refund: bool = False,
    failed: bool = False,
) -> Payment:
    """A ledger entry: a charge (or refund), succeeded (or failed)."""
    return Payment(
        payment_id,
        practice_id,
        Money.of(amount, currency),
        PaymentKind.REFUND if refund else PaymentKind.CHARGE,
        PaymentOutcome.FAILED if failed else PaymentOutcome.SUCCEEDED,
        at,
        member_id=member,
        payment_plan_id=plan,
    )


def board_of(objects: Iterable[object], **kwargs: Any) -> Dashboard:
    """The dashboard of a fresh store holding ``objects`` (practice ``p1`` unless told)."""
    kwargs.setdefault("practices", "p1")
    return dashboard(InMemoryStore.from_objects(objects), **kwargs)


def aud(amount: str) -> Money:
    """``amount`` Australian dollars."""
    return Money.of(amount, "AUD")


# -- the worked practice of docs/metrics.md ------------------------------------------------------

WEEK = DateRange.custom(date(2026, 9, 28), date(2026, 10, 4), timezone=SYDNEY)
NOW = sydney(10, 5, 9)


def worked_objects() -> list[object]:
    """Bondi Dental exactly as docs/metrics.md builds it."""
    bondi = Practice("p1", "Bondi Dental", SYDNEY, "AUD")
    essential = MembershipPlan("essential", "p1", "Essential", aud("30"), BillingCycle.MONTHLY)

    def doc_enrol(member_id: str, name: str, at: datetime) -> Member:
        return Member.enrol(
            id=member_id,
            practice_id="p1",
            plan_id="essential",
            account_holder=Patient(f"pat-{member_id}", name),
            start_date=at.date(),
            at=at,
        )

    ada = doc_enrol("m1", "Ada Lovelace", sydney(8, 5, 9)).activate(at=sydney(8, 5, 10))
    grace = (
        doc_enrol("m2", "Grace Hopper", sydney(9, 1, 9))
        .activate(at=sydney(9, 2, 10))
        .fail(at=sydney(9, 30, 10))
        .activate(at=sydney(10, 2, 11))
    )
    alan = doc_enrol("m3", "Alan Turing", sydney(9, 25, 14)).activate(at=sydney(10, 1))
    mary = (
        doc_enrol("m4", "Mary Jackson", sydney(10, 4, 9))
        .activate(at=sydney(10, 4, 10))
        .cancel(at=sydney(10, 4, 17))
    )
    katherine = (
        doc_enrol("m5", "Katherine Johnson", sydney(9, 9, 9))
        .activate(at=sydney(9, 10, 10))
        .suspend(at=sydney(9, 24, 12))
    )
    edsger = doc_enrol("m6", "Edsger Dijkstra", sydney(9, 22, 9)).activate(at=sydney(9, 22, 10))
    grace_plan = PaymentPlan.offer(
        id="pp1",
        practice_id="p1",
        patient=Patient("pat-m2", "Grace Hopper"),
        total=aud("1200"),
        payment_type=PaymentType.PLAN,
        instalments=6,
        first_due=date(2026, 10, 2),
        at=sydney(9, 29, 9),
        member_id="m2",
    ).record_payment(at=sydney(10, 2, 14))
    ledger = [
        payment("pay-1", "30", sydney(9, 10, 10), member="m5"),
        payment("pay-2", "30", sydney(9, 22, 10), member="m6"),
        payment("pay-3", "15", sydney(9, 29, 12), member="m5", refund=True),
        payment("pay-4", "30", sydney(9, 30, 10), member="m2", failed=True),
        payment("pay-5", "30", sydney(10, 1), member="m3"),
        payment("pay-6", "30", sydney(10, 2, 11), member="m2"),
        payment("pay-7", "200", sydney(10, 2, 14), plan="pp1"),
        payment("pay-8", "30", sydney(10, 4, 10), member="m4"),
        payment("pay-9", "20", sydney(10, 4, 17), member="m4", refund=True),
        payment("pay-10", "30", sydney(10, 5), member="m1"),
    ]
    members = [ada, grace, alan, mary, katherine, edsger]
    return [bondi, essential, *members, grace_plan, *ledger]


def worked_group() -> list[object]:
    """The worked practice plus Fremantle (Perth, AUD) and Ponsonby (Auckland, NZD)."""
    fremantle = Practice("p2", "Fremantle Dental", "Australia/Perth", "AUD")
    ponsonby = Practice("p3", "Ponsonby Dental", "Pacific/Auckland", "NZD")

    def doc_joined(member_id: str, practice_id: str, name: str, at: datetime) -> Member:
        return Member.enrol(
            id=member_id,
            practice_id=practice_id,
            plan_id=f"{practice_id}-basic",
            account_holder=Patient(f"pat-{member_id}", name),
            start_date=at.date(),
            at=at,
        ).activate(at=at)

    fred_joined = datetime(2026, 9, 30, 10, tzinfo=PERTH)
    nikau_joined = datetime(2026, 10, 1, 9, tzinfo=AUCKLAND)
    return [
        *worked_objects(),
        fremantle,
        ponsonby,
        MembershipPlan("p2-basic", "p2", "Basic", aud("30"), BillingCycle.MONTHLY),
        MembershipPlan("p3-basic", "p3", "Basic", Money.of("25", "NZD"), BillingCycle.MONTHLY),
        doc_joined("f1", "p2", "Fiona Stanley", datetime(2026, 9, 1, 10, tzinfo=PERTH)),
        doc_joined("f2", "p2", "Fred Hollows", fred_joined),
        doc_joined("n1", "p3", "Nikau Grey", nikau_joined),
        Payment(
            "f-pay",
            "p2",
            aud("30"),
            PaymentKind.CHARGE,
            PaymentOutcome.SUCCEEDED,
            fred_joined,
            member_id="f2",
        ),
        Payment(
            "n-pay",
            "p3",
            Money.of("25", "NZD"),
            PaymentKind.CHARGE,
            PaymentOutcome.SUCCEEDED,
            nikau_joined,
            member_id="n1",
        ),
    ]


@pytest.fixture(scope="module")
def worked() -> Dashboard:
    """The worked week's dashboard, computed on Oct 5 at 09:00 in Sydney."""
    return board_of(worked_objects(), date_range=WEEK, now=NOW)


def series(points: Sequence[Any]) -> list[tuple[str, Any]]:
    """A series as ``(local first day, value)`` pairs, Money as text."""
    return [(str(p.day), str(p.value) if isinstance(p.value, Money) else p.value) for p in points]


RENDERED = """\
Range: [2026-09-28 00:00 → 2026-10-05 00:00) Australia/Sydney
Now:   2026-10-04T22:00:00+00:00

Figure                    Value  Month change  Month to date   Previous       Change        Goal  Progress
-------------------  ----------  ------------  -------------  ---------  -----------  ----------  --------
Members (active)              4            +2                         3           +1          25   16.00 %
Retention %             66.67 %                                 75.00 %      -8.33 %        95 %   70.18 %
Period retention %     100.00 %                                 66.67 %     +33.33 %        95 %  105.26 %
Total revenue (AUD)  AUD 255.00                   AUD 270.00  AUD 30.00  +AUD 225.00  AUD 458.06   55.67 %

New members and committed payments

Bucket from  New members  Committed (AUD)
-----------  -----------  ---------------
2026-09-28             0         AUD 0.00
2026-09-29             0         AUD 0.00
2026-09-30             0         AUD 0.00
2026-10-01             1         AUD 0.00
2026-10-02             0     AUD 1,200.00
2026-10-03             0         AUD 0.00
2026-10-04             1         AUD 0.00

Latest new members

Account holder     Practice  First active
-----------------  --------  ------------
Mary Jackson       p1        2026-10-04
Alan Turing        p1        2026-10-01
Edsger Dijkstra    p1        2026-09-22
Katherine Johnson  p1        2026-09-10
Grace Hopper       p1        2026-09-02"""  # noqa: E501 (the table as printed)


class TestWorkedExample:
    def test_boundaries_of_the_worked_week(self) -> None:
        """The worked week ends at Oct 5 00:00, compares with the week before, and is in October."""
        assert WEEK.effective_end(NOW) == WEEK.end == sydney(10, 5)
        assert WEEK.comparison(NOW) == DateRange(sydney(9, 21), sydney(9, 28), SYDNEY)
        assert this_month(WEEK, NOW) == DateRange(sydney(10, 1), sydney(10, 5), SYDNEY)

    def test_rendered_table(self, worked: Dashboard) -> None:
        """The rendered dashboard is exactly the table the doc prints."""
        assert render_dashboard(worked) == RENDERED

    def test_members(self, worked: Dashboard) -> None:
        """Members is 4 at Oct 5, +2 since Oct 1, 3 at the comparison end, 16 % of 25."""
        assert worked.members == Kpi(value=4, previous=3, goal=25, this_month_delta=2)
        assert (worked.members.change, worked.members.progress) == (1, Decimal("16.00"))

    def test_retention(self, worked: Dashboard) -> None:
        """Retention % is 4 of 6 ever Active, against 3 of 4 in the comparison week."""
        assert worked.retention_parts == (Ratio(4, 6), Ratio(3, 4))
        assert worked.retention == Kpi(Decimal("66.67"), Decimal("75.00"), Decimal(95))
        assert worked.retention.change == Decimal("-8.33")
        assert worked.retention.progress == Decimal("70.18")

    def test_period_retention(self, worked: Dashboard) -> None:
        """Period retention keeps all 3 Active at Sep 28, against 2 of 3 the week before."""
        assert worked.period_retention_parts == (Ratio(3, 3), Ratio(2, 3))
        assert worked.period_retention == Kpi(Decimal("100.00"), Decimal("66.67"), Decimal(95))
        assert worked.period_retention.progress == Decimal("105.26")

    def test_the_month_figures_say_what_they_are(self, worked: Dashboard) -> None:
        """Members' month figure is a change, Revenue's a month to date; retention has none."""
        assert worked.members.this_month_kind == "change"
        assert worked.revenue["AUD"].this_month_kind == "to_date"
        assert worked.retention.this_month_kind is None

    def test_revenue(self, worked: Dashboard) -> None:
        """Revenue is AUD 255.00, 270.00 this month, 30.00 the week before: 55.67 % of the
        2,000-a-month goal for 28 September to 4 October, 2,000 x (3/30 + 4/31) = 458.06."""
        revenue = worked.revenue["AUD"]
        assert revenue == Kpi(aud("255"), aud("30"), aud("458.06"), aud("270"))
        assert (revenue.change, revenue.progress) == (aud("225"), Decimal("55.67"))
        assert list(worked.revenue) == ["AUD"]

    def test_refund_leaves_the_earlier_week_alone(self) -> None:
        """The week of Katherine's refunded charge still shows the whole AUD 30.00."""
        earlier = DateRange.custom(date(2026, 9, 7), date(2026, 9, 13), timezone=SYDNEY)
        board = board_of(worked_objects(), date_range=earlier, now=NOW)
        assert board.revenue["AUD"].value == aud("30")

    def test_new_members(self, worked: Dashboard) -> None:
        """Alan is new on Oct 1 (midnight) and Mary on Oct 4: the series adds up to 2."""
        assert series(worked.new_members) == [
            ("2026-09-28", 0),
            ("2026-09-29", 0),
            ("2026-09-30", 0),
            ("2026-10-01", 1),
            ("2026-10-02", 0),
            ("2026-10-03", 0),
            ("2026-10-04", 1),
        ]

    def test_committed_payments(self, worked: Dashboard) -> None:
        """Grace's whole AUD 1,200.00 plan is in the Oct 2 bucket, when it became Active."""
        expected = ["AUD 0.00"] * 7
        expected[4] = "AUD 1,200.00"
        assert [v for _, v in series(worked.committed_payments["AUD"])] == expected
        assert list(worked.committed_payments) == ["AUD"]

    def test_latest_feed(self, worked: Dashboard) -> None:
        """The feed lists Mary, Alan, Edsger, Katherine and Grace; 2 gives Mary and Alan."""
        assert [m.id for m in worked.latest_new_members] == ["m4", "m3", "m6", "m5", "m2"]
        top2 = board_of(worked_objects(), date_range=WEEK, now=NOW, latest=2)
        assert [m.id for m in top2.latest_new_members] == ["m4", "m3"]
        none = board_of(worked_objects(), date_range=WEEK, now=NOW, latest=0)
        assert none.latest_new_members == ()

    def test_goals(self) -> None:
        """Bondi's own goals of 5, 80 % and AUD 250.00 give 80.00, 83.34 and 102.00 %."""
        targets = KpiTargets(
            default=Goals(members=10),
            practices={
                "p1": Goals(members=5, retention=80, revenue=aud("250"), revenue_per="range")
            },
        )
        board = board_of(worked_objects(), date_range=WEEK, now=NOW, targets=targets)
        assert (board.members.goal, board.members.progress) == (5, Decimal("80.00"))
        assert (board.retention.goal, board.retention.progress) == (Decimal(80), Decimal("83.34"))
        assert board.revenue["AUD"].goal == aud("250")
        assert board.revenue["AUD"].progress == Decimal("102.00")

    def test_several_practices(self) -> None:
        """Bondi, Fremantle and Ponsonby last week: counts add, ratios combine, currencies split."""
        board = board_of(
            worked_group(), practices=["p1", "p2", "p3"], date_range="last_week", now=NOW
        )
        assert {p: str(r) for p, r in board.ranges.items()} == {
            "p1": "[2026-09-28 00:00 → 2026-10-05 00:00) Australia/Sydney",
            "p2": "[2026-09-28 00:00 → 2026-10-05 00:00) Australia/Perth",
            "p3": "[2026-09-28 00:00 → 2026-10-05 00:00) Pacific/Auckland",
        }
        assert board.members == Kpi(value=7, previous=4, goal=75, this_month_delta=3)
        assert board.retention_parts == (Ratio(7, 9), Ratio(4, 5))
        assert (board.retention.value, board.retention.previous) == (
            Decimal("77.78"),
            Decimal("80.00"),
        )
        assert board.period_retention_parts == (Ratio(4, 4), Ratio(3, 4))
        assert board.revenue == {
            "AUD": Kpi(aud("285"), aud("30"), aud("916.12"), aud("270")),  # 2 x 458.06
            "NZD": Kpi(
                Money.of("25", "NZD"),
                Money.zero("NZD"),
                Money.of("458.06", "NZD"),
                Money.of("25", "NZD"),
            ),
        }
        # Sydney's days from Auckland's start (Sep 27, 21:00) to Perth's end (Oct 5, 03:00).
        assert [v for _, v in series(board.new_members)] == [0, 0, 0, 1, 2, 0, 0, 1, 0]
        first, last = board.new_members[0], board.new_members[-1]
        assert (first.start, first.end) == (sydney(9, 27, 21), sydney(9, 28))
        assert (last.start, last.end) == (sydney(10, 5), sydney(10, 5, 3))
        assert [m.id for m in board.latest_new_members] == ["m4", "n1", "m3", "f2", "m6"]

    def test_bucket_units(self) -> None:
        """A week in week buckets is one bucket of 2; Sep-Oct in months is 3 then 2, cut at now."""
        weekly = board_of(worked_objects(), date_range=WEEK, now=NOW, bucket=Unit.WEEK)
        assert series(weekly.new_members) == [("2026-09-28", 2)]
        two_months = DateRange.custom(date(2026, 9, 1), date(2026, 10, 31), timezone=SYDNEY)
        assert two_months.default_bucket_unit() is Unit.WEEK
        monthly = board_of(worked_objects(), date_range=two_months, now=NOW, bucket=Unit.MONTH)
        assert series(monthly.new_members) == [("2026-09-01", 3), ("2026-10-01", 2)]
        assert monthly.new_members[-1].end == NOW

    def test_preset_cut_at_now(self) -> None:
        """This week on Saturday 15:00 is cut there and compares with last week to Sep 26 15:00."""
        saturday = sydney(10, 3, 15)
        board = board_of(worked_objects(), date_range="this_week", now=saturday)
        assert board.ranges["p1"] == DateRange(sydney(9, 28), sydney(10, 5), SYDNEY, Unit.WEEK)
        comparison = board.ranges["p1"].comparison(saturday)
        assert (comparison.start, comparison.end) == (sydney(9, 21), sydney(9, 26, 15))
        assert board.members == Kpi(value=4, previous=3, goal=25, this_month_delta=2)
        assert board.retention_parts == (Ratio(4, 5), Ratio(3, 4))
        # The goal is for the whole week, 28 September to 4 October, not cut at Saturday.
        assert board.revenue["AUD"] == Kpi(aud("245"), aud("30"), aud("458.06"), aud("260"))
        assert [v for _, v in series(board.new_members)] == [0, 0, 0, 1, 0, 0]
        assert board.new_members[-1].end == saturday
        assert [m.id for m in board.latest_new_members] == ["m3", "m6", "m5", "m2", "m1"]

    def test_dst_day_buckets(self, worked: Dashboard) -> None:
        """Oct 4 is one 23-hour bucket holding Mary; Apr 5 is one 25-hour bucket."""
        dst_day = worked.new_members[-1]
        assert (dst_day.day, dst_day.start, dst_day.end) == (
            date(2026, 10, 4),
            datetime(2026, 10, 3, 14, tzinfo=UTC),
            datetime(2026, 10, 4, 13, tzinfo=UTC),
        )
        assert (dst_day.end - dst_day.start, dst_day.value) == (timedelta(hours=23), 1)
        april = DateRange.custom(date(2026, 4, 4), date(2026, 4, 6), timezone=SYDNEY)
        autumn = board_of(worked_objects(), date_range=april, now=NOW)
        hours = [(p.end - p.start) // timedelta(hours=1) for p in autumn.new_members]
        assert hours == [24, 25, 24]

    def test_empty_practice(self) -> None:
        """An empty practice shows zeros and dashes, and raises nothing."""
        board = board_of([practice("p9")], practices="p9", date_range=WEEK, now=NOW)
        assert board.members == Kpi(value=0, previous=0, goal=25, this_month_delta=0)
        assert board.members.progress == Decimal("0.00")
        assert board.retention_parts == (Ratio(0, 0), Ratio(0, 0))
        assert board.period_retention_parts == (Ratio(0, 0), Ratio(0, 0))
        for kpi in (board.retention, board.period_retention):
            assert (kpi.value, kpi.previous, kpi.change, kpi.progress) == (None,) * 4
            assert show(kpi.value, percent=True) == "—"
        zero = Money.zero("AUD")
        assert board.revenue == {"AUD": Kpi(zero, zero, aud("458.06"), zero)}
        assert board.revenue["AUD"].progress == Decimal("0.00")
        assert [p.value for p in board.new_members] == [0] * 7
        assert [p.value for p in board.committed_payments["AUD"]] == [zero] * 7
        assert board.latest_new_members == ()


# -- edge cases, one figure at a time -------------------------------------------------------------


class TestBoundaries:
    def test_state_at_a_boundary_excludes_a_change_stamped_at_it(self) -> None:
        """``status_at`` includes a change at exactly t; the dashboard uses ``status_before``."""
        member = enrol("m1", sydney(9, 30, 9)).activate(at=sydney(10, 1))
        assert member.status_at(sydney(10, 1)) is ACTIVE
        assert member.status_before(sydney(10, 1)) is MembershipStatus.PENDING
        ends_at_midnight = DateRange.custom(date(2026, 9, 24), date(2026, 9, 30), timezone=SYDNEY)
        board = board_of([*setup(practice()), member], date_range=ends_at_midnight, now=NOW)
        assert board.members.value == 0
        assert sum(p.value for p in board.new_members) == 0

    def test_active_count_at_the_end_of_a_range_equals_the_next_ones_start(self) -> None:
        """Activations and cancellations at the shared midnight move both ranges alike."""
        objects = [
            *setup(practice()),
            joined("m1", sydney(9, 1)),
            joined("m2", sydney(10, 1)),
            joined("m3", sydney(9, 2)).cancel(at=sydney(10, 1)),
        ]
        september = DateRange.custom(date(2026, 9, 1), date(2026, 9, 30), timezone=SYDNEY)
        october = DateRange.custom(date(2026, 10, 1), date(2026, 10, 31), timezone=SYDNEY)
        late = sydney(12, 1)
        sep_board = board_of(objects, date_range=september, now=late)
        oct_board = board_of(objects, date_range=october, now=late)
        assert sep_board.members.value == oct_board.members.previous == 2
        assert oct_board.members.value == 2
        assert oct_board.period_retention_parts[0] == Ratio(1, 2)

    def test_this_month_is_the_month_of_the_last_instant(self) -> None:
        """A week ending at Oct 1 00:00 has September as this month, not October."""
        objects = [
            *setup(practice()),
            joined("m1", sydney(8, 20)),
            joined("m2", sydney(9, 5)),
            joined("m3", sydney(9, 28)),
            joined("m4", sydney(10, 1)),
            payment("a", "30", sydney(9, 5), member="m2"),
            payment("b", "30", sydney(9, 28), member="m3"),
            payment("c", "30", sydney(10, 1), member="m4"),
        ]
        week = DateRange.custom(date(2026, 9, 24), date(2026, 9, 30), timezone=SYDNEY)
        assert this_month(week, NOW) == DateRange(sydney(9, 1), sydney(10, 1), SYDNEY)
        board = board_of(objects, date_range=week, now=NOW)
        assert board.members.value == 3
        assert board.members.this_month_delta == 2
        assert board.revenue["AUD"].value == aud("30")
        assert board.revenue["AUD"].this_month_delta == aud("60")

    @pytest.mark.parametrize(
        ("tz", "now", "first"),
        [
            # Oct 1 05:00 in Sydney is still Sep 30 in UTC.
            (SYDNEY, sydney(10, 1, 5), sydney(10, 1)),
            # Oct 31 22:00 in New York is already Nov 1 in UTC.
            (
                NEW_YORK,
                datetime(2026, 10, 31, 22, tzinfo=ZoneInfo(NEW_YORK)),
                datetime(2026, 10, 1, tzinfo=ZoneInfo(NEW_YORK)),
            ),
        ],
    )
    def test_this_month_is_the_calendar_month_in_the_ranges_zone(
        self, tz: str, now: datetime, first: datetime
    ) -> None:
        """This month starts on the 1st at local midnight of the range's zone, not of UTC."""
        month = DateRange.custom(date(2026, 10, 1), date(2026, 10, 31), timezone=tz)
        assert this_month(month, now) == DateRange(first, now, tz)

    def test_naive_now_is_refused_by_the_public_helpers(self) -> None:
        """``effective_end`` and ``this_month`` refuse a naive ``now``, naming the field."""
        naive = datetime(2026, 10, 5, 9)
        for helper in (kpi_effective_end, this_month):
            with pytest.raises(NaiveDatetime) as info:
                helper(WEEK, naive)
            assert (info.value.field, info.value.value) == ("now", naive)

    def test_comparison_is_cut_at_the_same_wall_clock_offset(self) -> None:
        """November to the 25th at 16:00 compares with October to the 25th at 16:00."""
        nov = DateRange.this_month(now=sydney(11, 25, 16), timezone=SYDNEY)
        objects = [
            *setup(practice()),
            joined("m1", sydney(9, 1)).cancel(at=sydney(10, 25, 16, 30)),
            joined("m2", sydney(10, 25, 15, 59)),
            joined("m3", sydney(10, 25, 16)),
            payment("a", "60", sydney(10, 25, 15), member="m1"),  # September's and October's
            payment("b", "30", sydney(10, 25, 16), member="m3"),
            payment("c", "30", sydney(11, 3), member="m2"),
        ]
        board = board_of(objects, date_range=nov, now=sydney(11, 25, 16))
        assert board.members.previous == 2
        assert board.revenue["AUD"].previous == aud("60")
        assert board.revenue["AUD"].value == aud("30")
        assert board.members.value == 2

    def test_range_starting_after_now_counts_nothing_after_now(self) -> None:
        """For a range that starts after now, E = now: nothing stamped after now is counted."""
        objects = [
            *setup(practice()),
            joined("m1", sydney(10, 10, 9)),
            payment("a", "30", sydney(10, 10, 9), member="m1"),
        ]
        future = DateRange.custom(date(2026, 10, 12), date(2026, 10, 18), timezone=SYDNEY)
        board = board_of(objects, date_range=future, now=sydney(10, 5, 9))
        revenue = board.revenue["AUD"]
        figures = {
            "members": board.members.value,
            "members this month": board.members.this_month_delta,
            "retention": board.retention.value,
            "revenue": revenue.value,
            "revenue this month": revenue.this_month_delta,
            "new members": [p.value for p in board.new_members],
            "latest": [m.id for m in board.latest_new_members],
        }
        assert figures == {
            "members": 0,
            "members this month": 0,
            "retention": None,
            "revenue": Money.zero("AUD"),
            "revenue this month": Money.zero("AUD"),
            "new members": [],
            "latest": [],
        }


class TestMembers:
    def test_counts_only_members_active_at_the_effective_end(self) -> None:
        """Pending, Failed, Suspended and Cancelled members are not counted."""
        objects = [
            *setup(practice()),
            joined("active", sydney(9, 1)),
            enrol("pending", sydney(9, 1)),
            enrol("failed", sydney(9, 1)).fail(at=sydney(9, 2)),
            joined("lapsed", sydney(9, 1)).fail(at=sydney(9, 29)),
            joined("suspended", sydney(9, 1)).suspend(at=sydney(9, 29)),
            joined("cancelled", sydney(9, 1)).cancel(at=sydney(9, 29)),
        ]
        board = board_of(objects, date_range=WEEK, now=NOW)
        assert board.members == Kpi(value=1, previous=4, goal=25, this_month_delta=0)

    def test_reactivated_member_counts_once(self) -> None:
        """A member who fails and recovers inside the range is one Active member at the end."""
        grace = (
            joined("m1", sydney(9, 2))
            .fail(at=sydney(9, 29))
            .activate(at=sydney(9, 30))
            .suspend(at=sydney(10, 1, 12))
            .activate(at=sydney(10, 3))
        )
        board = board_of([*setup(practice()), grace], date_range=WEEK, now=NOW)
        assert board.members == Kpi(value=1, previous=1, goal=25, this_month_delta=0)
        assert board.period_retention_parts[0] == Ratio(1, 1)
        assert sum(p.value for p in board.new_members) == 0

    def test_join_and_cancel_inside_the_range_adds_no_member(self) -> None:
        """A member who joins and cancels inside the range is new but not counted at the end."""
        mary = joined("m1", sydney(10, 2, 10)).cancel(at=sydney(10, 3, 17))
        board = board_of([*setup(practice()), mary], date_range=WEEK, now=NOW)
        assert board.members == Kpi(value=0, previous=0, goal=25, this_month_delta=0)
        assert sum(p.value for p in board.new_members) == 1
        assert board.retention_parts[0] == Ratio(0, 1)
        assert board.period_retention_parts[0] == Ratio(0, 0)

    def test_cancellation_exactly_at_the_end_still_counts(self) -> None:
        """A member cancelled exactly at the range's end is still Active at it."""
        member = joined("m1", sydney(9, 1)).cancel(at=WEEK.end)
        board = board_of([*setup(practice()), member], date_range=WEEK, now=NOW)
        assert board.members.value == 1
        assert board.period_retention_parts[0] == Ratio(1, 1)


class TestRetention:
    def test_manual_form_counts_everyone_ever_active_before_the_end(self) -> None:
        """Members lost long ago stay in the denominator of Retention %."""
        objects = [
            *setup(practice()),
            joined("m1", sydney(1, 10)),
            joined("m2", sydney(2, 10)).cancel(at=sydney(3, 1)),
            joined("m3", sydney(5, 10)).suspend(at=sydney(6, 1)),
            joined("m4", sydney(9, 29)),
            enrol("m5", sydney(9, 1)),
        ]
        board = board_of(objects, date_range=WEEK, now=NOW)
        assert board.retention_parts == (Ratio(2, 4), Ratio(1, 3))
        assert (board.retention.value, board.retention.previous) == (
            Decimal("50.00"),
            Decimal("33.33"),
        )

    def test_period_retention_counts_a_reactivated_member_as_retained(self) -> None:
        """Of those Active at the start, one who lapsed and came back is still retained."""
        objects = [
            *setup(practice()),
            joined("kept", sydney(9, 1)),
            joined("back", sydney(9, 1)).fail(at=sydney(9, 29)).activate(at=sydney(10, 2)),
            joined("lost", sydney(9, 1)).suspend(at=sydney(10, 2)),
            joined("new", sydney(9, 30)),
        ]
        board = board_of(objects, date_range=WEEK, now=NOW)
        assert board.period_retention_parts[0] == Ratio(2, 3)
        assert board.period_retention.value == Decimal("66.67")
        assert board.retention_parts[0] == Ratio(3, 4)

    def test_member_activated_exactly_at_the_start_is_not_in_period_retention(self) -> None:
        """A member activated at the range's first instant is not Active at that boundary."""
        objects = [*setup(practice()), joined("m1", WEEK.start), joined("m2", sydney(9, 1))]
        board = board_of(objects, date_range=WEEK, now=NOW)
        assert board.period_retention_parts[0] == Ratio(1, 1)
        assert board.retention_parts[0] == Ratio(2, 2)
        assert series(board.new_members)[0] == ("2026-09-28", 1)

    def test_undefined_when_nobody_was_ever_active(self) -> None:
        """Only Pending and Failed members: both retention figures are None and shown as a dash."""
        objects = [
            *setup(practice()),
            enrol("m1", sydney(9, 29)),
            enrol("m2", sydney(9, 29)).fail(at=sydney(9, 30)),
        ]
        board = board_of(objects, date_range=WEEK, now=NOW)
        assert board.retention.value is None
        assert board.period_retention.value is None
        retention_row = render_dashboard(board).splitlines()[6]
        assert retention_row.split() == ["Retention", "%", "—", "—", "—", "95", "%", "—"]

    def test_period_retention_undefined_when_nobody_active_at_the_start(self) -> None:
        """A practice whose first member joins inside the range has no period retention."""
        objects = [*setup(practice()), joined("m1", sydney(10, 2))]
        board = board_of(objects, date_range=WEEK, now=NOW)
        assert board.period_retention_parts == (Ratio(0, 0), Ratio(0, 0))
        assert board.period_retention.value is None
        assert board.retention.value == Decimal("100.00")
        assert board.retention.previous is None
        assert board.retention.change is None

    def test_period_retention_at_the_range_start_keeps_everyone_active_then(self) -> None:
        """With now at the range's start (E = R.start), those Active then are all retained."""
        objects = [
            *setup(practice()),
            joined("m1", sydney(9, 1)),
            joined("m2", sydney(9, 25)).cancel(at=sydney(9, 26)),
        ]
        board = board_of(objects, date_range=WEEK, now=WEEK.start)
        assert board.period_retention_parts == (Ratio(1, 1), Ratio(1, 1))
        assert board.period_retention.value == Decimal("100.00")
        assert board.retention_parts == (Ratio(1, 2), Ratio(1, 1))

    def test_period_retention_of_a_range_not_started_is_undefined(self) -> None:
        """A range that starts after now has no period retention: 0 of 0, not 0 % nor 1 of 0."""
        objects = [*setup(practice()), joined("m1", sydney(9, 1))]
        future = DateRange.custom(date(2026, 10, 12), date(2026, 10, 18), timezone=SYDNEY)
        board = board_of(objects, date_range=future, now=NOW)
        assert board.period_retention_parts[0] == Ratio(0, 0)
        assert board.period_retention.value is None
        assert board.members.value == 1


class TestRevenue:
    def test_refund_counts_when_paid_out_not_when_charged(self) -> None:
        """Refunds of last week's charges lower this week and leave last week whole."""
        objects = [
            *setup(practice()),
            joined("m1", sydney(9, 22)),
            joined("m2", sydney(9, 22)),
            payment("charge", "30", sydney(9, 22), member="m1"),
            payment("charge-2", "30", sydney(9, 22), member="m2"),
            payment("refund", "30", sydney(9, 29), member="m1", refund=True),
            payment("refund-2", "30", sydney(9, 29), member="m2", refund=True),
            payment("again", "30", sydney(10, 2), member="m1"),  # the refunded date, again
        ]
        board = board_of(objects, date_range=WEEK, now=NOW)
        assert board.revenue["AUD"].value == aud("-30")
        assert board.revenue["AUD"].previous == aud("60")
        assert board.revenue["AUD"].this_month_delta == aud("30")
        assert show(board.revenue["AUD"].value) == "AUD -30.00"

    def test_failed_charges_and_failed_refunds_add_nothing(self) -> None:
        """Only succeeded entries move revenue."""
        objects = [
            *setup(practice()),
            joined("m1", sydney(9, 1)),
            payment("a", "30", sydney(9, 29), member="m1", failed=True),
            payment("b", "30", sydney(9, 30), member="m1"),
            payment("c", "30", sydney(10, 1), member="m1", refund=True, failed=True),
        ]
        board = board_of(objects, date_range=WEEK, now=NOW)
        assert board.revenue["AUD"].value == aud("30")

    def test_payment_exactly_at_a_boundary_belongs_to_the_range_starting_there(self) -> None:
        """A charge at Oct 5 00:00 counts for the next week, not this one."""
        objects = [
            *setup(practice()),
            joined("m1", sydney(9, 1)),
            payment("edge", "30", WEEK.end, member="m1"),
        ]
        this_week = board_of(objects, date_range=WEEK, now=sydney(10, 20))
        following = DateRange.custom(date(2026, 10, 5), date(2026, 10, 11), timezone=SYDNEY)
        next_week = board_of(objects, date_range=following, now=sydney(10, 20))
        assert this_week.revenue["AUD"].value == Money.zero("AUD")
        assert next_week.revenue["AUD"].value == aud("30")
        assert next_week.revenue["AUD"].previous == Money.zero("AUD")

    def test_a_remembered_revenue_goal_follows_the_goals_and_the_currency(self) -> None:
        """Revenue goals are remembered by goals, currency and range: the same week, asked
        in turn for an AUD and an NZD practice of one zone with the same goals, then with
        another goal, gets each its own (the goal of the practice's own currency)."""
        aud_practice, nzd_practice = practice("p1"), practice("p2", SYDNEY, "NZD")
        store = store_of([*setup(aud_practice), *setup(nzd_practice)])
        for goals in (Goals(), Goals(revenue=Decimal(3100)), Goals()):
            for p in (aud_practice, nzd_practice, aud_practice):
                board = dashboard(store, practices=p.id, date_range=WEEK, now=NOW, targets=goals)
                assert board.revenue[p.currency].goal == goals.revenue_for(p, WEEK)
                assert board.revenue[p.currency].goal.currency == p.currency

    def test_plain_revenue_goal_is_in_the_practice_currency(self) -> None:
        """A goal of 2,000 a month for a yen practice is in yen, scaled to the last 7 days
        in Tokyo (29 September to 5 October: 2,000 x (2/30 + 5/31) = 455.91, to the yen)."""
        yen = practice("p1", "Asia/Tokyo", "JPY")
        board = board_of(setup(yen), date_range="last_7_days", now=NOW)
        assert board.revenue["JPY"].goal == Money.of("456", "JPY")
        assert list(board.revenue) == ["JPY"]

    @pytest.mark.parametrize("batched", [True, False], ids=["window_totals", "total"])
    def test_a_host_total_in_another_currency_is_refused(
        self, monkeypatch: pytest.MonkeyPatch, batched: bool
    ) -> None:
        """A host ledger reporting a non-zero USD total for an AUD practice raises, naming both."""
        store = _store_whose_total_adds(monkeypatch, Money.of("5", "USD"), batched)
        with pytest.raises(CurrencyMismatch) as info:
            dashboard(store, practices="p1", date_range=WEEK, now=NOW)
        assert (info.value.left, info.value.right, info.value.operation) == ("USD", "AUD", "total")
        assert str(info.value) == "cannot total USD and AUD: currencies differ"

    @pytest.mark.parametrize("batched", [True, False], ids=["window_totals", "total"])
    def test_a_host_zero_total_in_another_currency_is_ignored(
        self, monkeypatch: pytest.MonkeyPatch, batched: bool
    ) -> None:
        """A zero USD total beside the AUD one changes nothing: revenue stays AUD only."""
        store = _store_whose_total_adds(monkeypatch, Money.zero("USD"), batched)
        board = dashboard(store, practices="p1", date_range=WEEK, now=NOW)
        assert list(board.revenue) == ["AUD"]
        assert board.revenue["AUD"].value == aud("30")


class TestNewMembers:
    def test_counts_first_activations_only(self) -> None:
        """A member reactivated inside the range is not new again."""
        objects = [
            *setup(practice()),
            joined("old", sydney(9, 1)).fail(at=sydney(9, 29)).activate(at=sydney(10, 1, 9)),
            enrol("late", sydney(9, 1)).fail(at=sydney(9, 2)).activate(at=sydney(9, 30, 9)),
        ]
        board = board_of(objects, date_range=WEEK, now=NOW)
        assert [v for _, v in series(board.new_members)] == [0, 0, 1, 0, 0, 0, 0]

    def test_midnight_activation_is_in_the_bucket_starting_at_that_midnight(self) -> None:
        """Activated at Oct 2 00:00: in the Oct 2 bucket, not Oct 1."""
        board = board_of(
            [*setup(practice()), joined("m1", sydney(10, 2))], date_range=WEEK, now=NOW
        )
        assert [v for _, v in series(board.new_members)] == [0, 0, 0, 0, 1, 0, 0]

    def test_series_runs_over_the_range_cut_at_now(self) -> None:
        """No bucket after now, and an activation after now is not counted."""
        objects = [
            *setup(practice()),
            joined("m1", sydney(10, 1, 8)),
            joined("m2", sydney(10, 1, 18)),
        ]
        board = board_of(objects, date_range=WEEK, now=sydney(10, 1, 12))
        assert [p.day for p in board.new_members][-1] == date(2026, 10, 1)
        assert board.new_members[-1].end == sydney(10, 1, 12)
        assert sum(p.value for p in board.new_members) == 1
        assert [m.id for m in board.latest_new_members] == ["m1"]


def plan(
    plan_id: str, total: str, offered: datetime, payment_type: PaymentType = PaymentType.PLAN
) -> PaymentPlan:
    """A Pending plan of practice p1 (four instalments unless Instant or Hold)."""
    return PaymentPlan.offer(
        id=plan_id,
        practice_id="p1",
        patient=Patient(f"pat-{plan_id}", "Patient"),
        total=aud(total),
        payment_type=payment_type,
        instalments=4 if payment_type is PaymentType.PLAN else 1,
        first_due=offered.date(),
        at=offered,
    )


class TestCommittedPayments:
    def test_plans_commit_when_first_active_or_completed_at_once(self) -> None:
        """Set-up, Instant, later-cancelled and still-Pending plans land where they commit."""
        objects = [
            *setup(practice()),
            plan("set-up", "400", sydney(9, 20)).activate(at=sydney(9, 29, 10)),
            plan("instant", "90", sydney(10, 2), PaymentType.INSTANT).record_payment(
                at=sydney(10, 2, 12)
            ),
            plan("dropped", "800", sydney(9, 28))
            .record_payment(at=sydney(10, 2, 9))
            .cancel(at=sydney(10, 3)),
            plan("pending", "1000", sydney(9, 29)),
            plan("earlier", "500", sydney(9, 1)).activate(at=sydney(9, 27, 23)),
        ]
        board = board_of(objects, date_range=WEEK, now=NOW)
        values = [v for _, v in series(board.committed_payments["AUD"])]
        assert values == [
            "AUD 0.00",
            "AUD 400.00",
            "AUD 0.00",
            "AUD 0.00",
            "AUD 890.00",
            "AUD 0.00",
            "AUD 0.00",
        ]
        assert board.revenue["AUD"].value == Money.zero("AUD")


class TestLatestFeed:
    def test_newest_first_limited_and_never_activated_excluded(self) -> None:
        """The feed holds the N latest first activations before the end, newest first."""
        objects = [
            *setup(practice()),
            joined("a", sydney(9, 1)),
            joined("b", sydney(9, 2)).fail(at=sydney(9, 3)).activate(at=sydney(10, 3)),
            joined("c", sydney(9, 3)).cancel(at=sydney(9, 4)),
            enrol("pending", sydney(10, 1)),
            joined("after", sydney(10, 6)),
        ]
        board = board_of(objects, date_range=WEEK, now=sydney(10, 10), latest=2)
        assert [m.id for m in board.latest_new_members] == ["c", "b"]

    def test_ties_are_broken_by_id(self) -> None:
        """Members first activated at the same instant are listed by id."""
        at = sydney(10, 1, 9)
        objects = [*setup(practice()), joined("z", at), joined("b", at), joined("m", at)]
        board = board_of(objects, date_range=WEEK, now=NOW, latest=2)
        assert [m.id for m in board.latest_new_members] == ["b", "m"]

    def test_reads_the_newest_latest_of_each_group_of_practices(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Practices sharing a range, currency and goals are read in one documented find,
        newest first, limited to ``latest``; a practice with other goals in another."""
        objects = [
            *setup(practice("p1")),
            *setup(practice("p2")),
            *setup(practice("p3")),
            *(joined(f"a{i}", sydney(9, i + 1)) for i in range(3)),
            *(joined(f"b{i}", sydney(9, i + 10), "p2") for i in range(3)),
            *(joined(f"c{i}", sydney(9, i + 5), "p3") for i in range(3)),
        ]
        store = store_of(objects)
        real_find = store.members.find
        reads: list[tuple[MemberQuery, Order | None]] = []

        def find(query: MemberQuery, *, order: Order | None = None) -> Sequence[Member]:
            reads.append((query, order))
            return real_find(query, order=order)

        monkeypatch.setattr(store.members, "find", find)
        targets = KpiTargets(practices={"p3": Goals(members=3)})
        board = dashboard(
            store, practices=["p1", "p3", "p2"], date_range=WEEK, now=NOW, latest=2, targets=targets
        )
        newest_two = Order(["-first_activated_at"], Page(limit=2))
        end = NOW.replace(hour=0)
        assert reads == [
            (MemberQuery(practices=("p1", "p2"), ever_active_before=end), newest_two),
            (MemberQuery(practices=("p3",), ever_active_before=end), newest_two),
        ]
        assert [m.id for m in board.latest_new_members] == ["b2", "b1"]
        assert board.members.goal == 25 + 3 + 25


class TestGoals:
    def test_defaults_are_the_manuals(self) -> None:
        """The default goals are 25 members, 95 % and 2,000 in the practice currency."""
        assert Goals() == Goals(members=25, retention=Decimal(95), revenue=Decimal(2000))
        assert KpiTargets().for_practice("anything") == Goals()

    def test_per_practice_override_and_default(self) -> None:
        """An override applies to its practice; others get the default; goals add up."""
        objects = [*setup(practice("p1")), *setup(practice("p2"))]
        targets = KpiTargets(
            default=Goals(members=10, revenue=aud("100"), revenue_per="range"),
            practices={"p1": Goals(members=3, revenue="50", revenue_per="range")},
        )
        board = board_of(objects, practices=["p1", "p2"], date_range=WEEK, now=NOW, targets=targets)
        assert board.members.goal == 13
        assert board.revenue["AUD"].goal == aud("150")

    def test_retention_goal_is_common_or_weighted(self) -> None:
        """Practices sharing a retention goal show it; differing goals are weighted by the
        members each practice's figure is over (here nobody yet: the plain mean)."""
        objects = [*setup(practice("p1")), *setup(practice("p2"))]
        both = KpiTargets(practices={"p1": Goals(retention=80), "p2": Goals(retention=80)})
        one = KpiTargets(practices={"p1": Goals(retention=80)})
        kwargs: dict[str, Any] = {"practices": ["p1", "p2"], "date_range": WEEK, "now": NOW}
        assert board_of(objects, targets=both, **kwargs).retention.goal == Decimal(80)
        mixed = board_of(objects, targets=one, **kwargs)
        assert mixed.retention_parts[0].denominator == 0
        assert mixed.retention.goal == Decimal("87.50")  # (80 + 95) / 2
        assert mixed.period_retention.goal == Decimal("87.50")

    def test_retention_goal_weighs_each_practice_of_a_group_once(self) -> None:
        """Two practices read together (p1, p2: same range, currency and goals) and one on
        its own (p3, another goal), one member each: each practice weighs 1, so the goal
        is (95 + 95 + 80) / 3, not the group weighed once per practice (92.00)."""
        objects = [
            *setup(practice("p1")),
            *setup(practice("p2")),
            *setup(practice("p3")),
            joined("a", sydney(9, 1)),
            joined("b", sydney(9, 1), "p2"),
            joined("c", sydney(9, 1), "p3"),
        ]
        targets = KpiTargets(practices={"p3": Goals(retention=80)})
        kwargs: dict[str, Any] = {"practices": ["p1", "p2", "p3"], "date_range": WEEK, "now": NOW}
        board = board_of(objects, targets=targets, **kwargs)
        assert board.retention_parts[0].denominator == 3
        assert board.retention.goal == Decimal("90.00")
        assert board.period_retention.goal == Decimal("90.00")

    def test_a_range_in_another_zone_keeps_its_own_months(self) -> None:
        """A UTC range for a Sydney practice, 25 October to 1 November UTC: its last
        instant is in October in UTC (in Sydney it is 1 November), so "this month" is the
        UTC October and the revenue goal is 7/31 of a month."""
        syd = practice("p1")
        member = joined("m1", sydney(9, 1))
        pays = [
            Payment(
                f"c{d}",
                "p1",
                aud("30"),
                "charge",
                "succeeded",
                datetime(2026, 10, d, 10, tzinfo=UTC),
                member_id="m1",
            )
            for d in (20, 28)
        ]
        span = DateRange(
            datetime(2026, 10, 25, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC), "UTC"
        )
        board = board_of([*setup(syd), member, *pays], date_range=span, now=sydney(11, 5, 9))
        revenue = board.revenue["AUD"]
        assert (revenue.value, revenue.this_month_delta) == (aud("30"), aud("60"))
        assert revenue.goal == aud("451.61")  # 2,000 x 7/31

    def test_a_weighted_goal_follows_the_members_behind_it(self) -> None:
        """Three members behind p1's figure (goal 80 %), one behind p2's (goal 100 %):
        (3 x 80 + 1 x 100) / 4 = 85 %; with nobody behind either, the plain mean."""
        assert weighted_goal([Decimal(80), Decimal(100)], [3, 1]) == Decimal("85.00")
        assert weighted_goal([Decimal(80), Decimal(95)], [0, 0]) == Decimal("87.50")
        assert weighted_goal([Decimal(90), Decimal(90)], [0, 5]) == Decimal(90)
        assert weighted_goal([Decimal(0), Decimal(100)], [2, 1]) == Decimal("33.33")

    def test_progress_is_undefined_against_a_zero_goal(self) -> None:
        """A goal of zero gives no progress, rather than a division error."""
        objects = [*setup(practice()), joined("m1", sydney(9, 1))]
        targets = KpiTargets(default=Goals(members=0, retention=0, revenue=0))
        board = board_of(objects, date_range=WEEK, now=NOW, targets=targets)
        assert board.members.progress is None
        assert board.retention.progress is None
        assert board.revenue["AUD"].progress is None

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("retention", 101),
            ("retention", -1),
            ("retention", "95.5.1"),
            ("members", -1),
            ("members", 2.5),
            ("members", True),
            ("revenue", -1),
            ("new_members", -1),
            ("new_members", "many"),
            ("churn", 101),
            ("churn", -0.5),
        ],
    )
    def test_bad_goals_are_refused(self, field: str, value: Any) -> None:
        """A goal out of its range, or of the wrong kind, raises InvalidValue naming it."""
        with pytest.raises(InvalidValue) as info:
            Goals(**{field: value})
        assert info.value.field == field

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("members", 0),
            ("retention", 0),
            ("retention", 100),
            ("revenue", 0),
            ("new_members", 0),
            ("churn", 0),
            ("churn", 100),
        ],
    )
    def test_goals_at_the_bounds_are_accepted(self, field: str, value: int) -> None:
        """0 members, 0 % and 100 % retention, and a revenue goal of 0 are all valid goals."""
        assert getattr(Goals(**{field: value}), field) == value

    @pytest.mark.parametrize(
        ("field", "value", "reason"),
        [
            ("members", -1, "must be a whole number >= 0"),
            ("members", 2.5, "must be a whole number >= 0"),
            ("retention", 101, "must be a percentage between 0 and 100"),
            ("revenue", -1, "must not be negative"),
            ("revenue", aud("-0.01"), "must not be negative"),
            ("revenue", "lots", "not a number (ASCII digits, an optional sign, point, exponent)"),
            ("revenue", 2.5, "floats are not exact; pass a Decimal or a string"),
        ],
    )
    def test_bad_goal_errors_carry_field_value_and_reason(
        self, field: str, value: Any, reason: str
    ) -> None:
        """A refused goal's error names the field, the value given and the reason, exactly."""
        with pytest.raises(InvalidValue) as info:
            Goals(**{field: value})
        assert (info.value.field, info.value.value, info.value.reason) == (field, value, reason)
        assert str(info.value) == f"{field}: {reason} (got {value!r})"

    def test_new_members_goal_per_bucket(self) -> None:
        """30 new members a month is 1.00 a day in September and 0.97 (30/31) in October;
        a week bucket across both months adds its days' shares; no goal, no goal."""
        goals = Goals(new_members=30)
        board = board_of(worked_objects(), date_range=WEEK, now=NOW, targets=goals)
        assert [str(p.goal) for p in board.new_members] == ["1.00"] * 3 + ["0.97"] * 4
        weekly = board_of(
            worked_objects(), date_range=WEEK, now=NOW, targets=goals, bucket=Unit.WEEK
        )
        assert [p.goal for p in weekly.new_members] == [Decimal("6.87")]  # 3 + 30 x 4/31
        plain = board_of(worked_objects(), date_range=WEEK, now=NOW)
        assert all(p.goal is None for p in plain.new_members)

    def test_new_members_goals_add_over_practices_and_need_every_one(self) -> None:
        """Two practices' goals add per bucket; a practice without a goal leaves none (a
        partial sum would read as the whole)."""
        objects = [*worked_objects(), *setup(practice("p2"))]
        both = KpiTargets(default=Goals(new_members=30), practices={"p2": Goals(new_members=60)})
        board = board_of(objects, practices=["p1", "p2"], date_range=WEEK, now=NOW, targets=both)
        assert [str(p.goal) for p in board.new_members] == ["3.00"] * 3 + ["2.91"] * 4
        one = KpiTargets(practices={"p2": Goals(new_members=60)})
        board = board_of(objects, practices=["p1", "p2"], date_range=WEEK, now=NOW, targets=one)
        assert all(p.goal is None for p in board.new_members)

    @given(
        monthly=st.decimals(0, 1000, places=2),
        first=st.dates(date(2024, 1, 1), date(2027, 12, 31)),
        days=st.integers(1, 400),
    )
    def test_a_goal_split_in_two_adds_up(self, monthly: Decimal, first: date, days: int) -> None:
        """The month share of a range is the sum of its halves' (exactly), and whole months
        count 1 each: the scaling every per-month goal uses."""
        whole = DateRange.custom(first, first + timedelta(days=days - 1), timezone=SYDNEY)
        cut = local_midnight(first + timedelta(days=days // 2), SYDNEY)
        halves = DateRange(whole.start, cut, SYDNEY), DateRange(cut, whole.end, SYDNEY)
        assert month_share(whole) == month_share(halves[0]) + month_share(halves[1])
        month = DateRange.custom(
            first.replace(day=1),
            add_units(first.replace(day=1), Unit.MONTH, 1) - timedelta(1),
            timezone=SYDNEY,
        )
        assert month_share(month) == 1
        assert Goals(new_members=monthly).new_members_for(month) == monthly

    def test_override_must_be_goals(self) -> None:
        """A per-practice override that is not Goals is refused, naming the practice."""
        with pytest.raises(InvalidValue) as info:
            KpiTargets(practices={"p1": Goals(), "p2": 25})  # type: ignore[dict-item]
        assert (info.value.field, info.value.value, info.value.reason) == (
            "practices",
            "p2",
            "each override must be Goals",
        )
        assert str(info.value) == "practices: each override must be Goals (got 'p2')"

    @pytest.mark.parametrize(
        ("ratio", "percent"),
        [(Ratio(1, 800), "0.13"), (Ratio(1, 160), "0.63"), (Ratio(3, 800), "0.38")],
    )
    def test_percentages_round_half_up(self, ratio: Ratio, percent: str) -> None:
        """A share exactly halfway between two hundredths of a percent rounds up."""
        assert ratio.percent == Decimal(percent)

    def test_money_progress_rounds_half_up(self) -> None:
        """AUD 1 of a goal of AUD 160 is 0.625 %, shown as 0.63 %."""
        assert Kpi(aud("1"), aud("0"), aud("160")).progress == Decimal("0.63")


class TestSeveralPractices:
    def test_retention_combines_parts_not_percentages(self) -> None:
        """1 of 4 and 1 of 1 combine to 2 of 5 = 40 %, not the mean 62.5 %."""
        objects = [
            *setup(practice("p1")),
            *setup(practice("p2")),
            joined("a", sydney(9, 1)),
            *(joined(i, sydney(9, 1)).cancel(at=sydney(9, 2)) for i in ("b", "c", "d")),
            joined("e", sydney(9, 1), "p2"),
        ]
        board = board_of(objects, practices=["p1", "p2"], date_range=WEEK, now=NOW)
        assert board.retention_parts[0] == Ratio(2, 5)
        assert board.retention.value == Decimal("40.00")

    def test_duplicate_ids_are_shown_once(self) -> None:
        """Naming a practice twice counts it once."""
        objects = [*setup(practice()), joined("m1", sydney(9, 1))]
        board = board_of(objects, practices=["p1", "p1"], date_range=WEEK, now=NOW)
        assert board.practices == ("p1",)
        assert board.members.value == 1

    def test_several_zones_share_the_first_practices_clock(self) -> None:
        """The combined series run on Sydney's days from the earliest start (Auckland's
        Sep 28, 21:00 on Sep 27 in Sydney) to the latest end (Perth's Oct 5, 03:00 in
        Sydney): nothing of any practice's range is lost, and a bucket is never wider than
        one Sydney day."""
        objects = [
            *setup(practice("p1")),
            *setup(practice("p2", "Australia/Perth")),
            *setup(practice("p3", "Pacific/Auckland")),
            joined("a0", datetime(2026, 9, 28, 0, 30, tzinfo=AUCKLAND), "p3"),  # 21:30 Sep 27
            joined("f1", datetime(2026, 9, 28, 23, 30, tzinfo=PERTH), "p2"),  # 01:30 Sep 29
            joined("s0", sydney(9, 27, 22), "p1"),  # before Sydney's own range: not counted
            joined("s1", sydney(10, 4, 23, 59), "p1"),
            joined("f2", datetime(2026, 10, 4, 23, tzinfo=PERTH), "p2"),  # 02:00 Oct 5
        ]
        board = board_of(objects, practices=["p1", "p2", "p3"], date_range="last_week", now=NOW)
        points = board.new_members
        assert points[0].start == datetime(2026, 9, 28, tzinfo=AUCKLAND)
        assert points[-1].end == datetime(2026, 10, 5, tzinfo=PERTH)
        assert [p.start for p in points[1:]] == [sydney(9, d) for d in (28, 29, 30)] + [
            sydney(10, d) for d in (1, 2, 3, 4, 5)
        ]
        assert all(a.end == b.start for a, b in itertools.pairwise(points))
        assert [(str(p.day), p.value) for p in points if p.value] == [
            ("2026-09-27", 1),
            ("2026-09-29", 1),
            ("2026-10-04", 1),
            ("2026-10-05", 1),
        ]
        assert sum(p.value for p in points) == 4  # a0, f1, s1 and f2, each in its own range
        committed = board.committed_payments["AUD"]
        assert [(p.start, p.end) for p in committed] == [(p.start, p.end) for p in points]
        # Goals count each practice's part of a bucket only: the 3-hour first bucket is
        # Auckland's alone, 3/24 of a September day at 30 a month.
        goaled = board_of(
            objects,
            practices=["p1", "p2", "p3"],
            date_range="last_week",
            now=NOW,
            targets=Goals(new_members=30),
        )
        assert goaled.new_members[0].goal == Decimal("0.13")
        # Sep 28 in Sydney: a whole day of Sydney and Auckland, 22 hours of Perth (its week
        # starts at 02:00 Sydney): 1 + 22/24 + 1.
        assert goaled.new_members[1].goal == Decimal("2.92")

    @DATASETS
    @given(data=st.data())
    def test_the_combined_series_adds_every_practices_own_range(self, data: st.DataObject) -> None:
        """Oracle: each combined point is the practices' first activations in that bucket
        and inside their own range, counted by brute force."""
        zones = data.draw(st.lists(st.sampled_from(ZONES), min_size=2, max_size=3))
        objects: list[object] = []
        members: list[Member] = []
        for k, tz in enumerate(zones):
            objects += setup(practice(f"p{k}", tz))
            for n in range(data.draw(st.integers(0, 6))):
                at = NOW - timedelta(minutes=data.draw(st.integers(0, 12 * 24 * 60)))
                members.append(joined(f"m{k}-{n}", at, f"p{k}"))
        ids = [f"p{k}" for k in range(len(zones))]
        board = board_of([*objects, *members], practices=ids, date_range="last_7_days", now=NOW)
        for point in board.new_members:
            expected = sum(
                point.start <= m.first_activated_at < point.end
                and board.ranges[m.practice_id].start
                <= m.first_activated_at
                < min(board.ranges[m.practice_id].end, NOW)
                for m in members
                if m.first_activated_at is not None
            )
            assert point.value == expected


class TestBucketUnits:
    @pytest.mark.parametrize(
        ("days", "unit"),
        [(1, Unit.DAY), (31, Unit.DAY), (32, Unit.WEEK), (186, Unit.WEEK), (187, Unit.MONTH)],
    )
    def test_default_unit_follows_the_range_length(self, days: int, unit: Unit) -> None:
        """Day up to 31 days, week up to 186, month beyond."""
        first = date(2026, 1, 5)
        r = DateRange.custom(first, first + timedelta(days=days - 1), timezone=SYDNEY)
        board = board_of(setup(practice()), date_range=r, now=sydney(12, 31))
        assert [p.day for p in board.new_members] == [b.local_start.date() for b in r.buckets(unit)]
        assert board.bucket is unit

    def test_the_comparison_dashboard_keeps_the_unit_and_the_period(self) -> None:
        """``comparison_dashboard`` is the dashboard over ``comparison(now)`` with the
        board's own bucket unit, even where that period would default to another."""
        store = InMemoryStore.from_objects(setup(practice()))
        board = dashboard(store, practices="p1", date_range=WEEK, now=NOW, bucket=Unit.MONTH)
        before = comparison_dashboard(store, board)
        comparison = WEEK.comparison(NOW)
        assert before == dashboard(
            store, practices="p1", date_range=comparison, now=NOW, bucket=Unit.MONTH
        )
        assert (before.bucket, before.ranges) == (Unit.MONTH, {"p1": comparison})

    def test_unit_can_be_overridden(self) -> None:
        """``bucket=Unit.MONTH`` on a week that spans two months gives two partial months."""
        board = board_of(setup(practice()), date_range=WEEK, now=NOW, bucket=Unit.MONTH)
        assert [(p.day, p.start, p.end) for p in board.new_members] == [
            (date(2026, 9, 28), sydney(9, 28), sydney(10, 1)),
            (date(2026, 10, 1), sydney(10, 1), sydney(10, 5)),
        ]


class TestPresets:
    def test_default_preset_is_last_7_days(self) -> None:
        """Without a date range the dashboard shows the last 7 days to today."""
        board = board_of(setup(practice()), now=NOW)
        assert board.ranges["p1"] == DateRange.last_days(7, now=NOW, timezone=SYDNEY)
        assert len(board.new_members) == 7

    def test_presets_resolve_in_each_practice_zone(self) -> None:
        """At one instant, 'last 7 days' ends on Oct 5 in Sydney and Oct 4 in New York."""
        ny = ZoneInfo(NEW_YORK)
        objects = [
            *setup(practice("p1")),
            *setup(practice("p2", NEW_YORK, "USD")),
            joined("sydney-new", sydney(9, 29, 9)),
            joined("ny-new", datetime(2026, 9, 28, 9, tzinfo=ny), "p2"),
        ]
        board = board_of(objects, practices=["p1", "p2"], date_range=Preset.LAST_7_DAYS, now=NOW)
        assert board.ranges["p1"] == DateRange.custom(
            date(2026, 9, 29), date(2026, 10, 5), timezone=SYDNEY
        )
        assert board.ranges["p2"] == DateRange.custom(
            date(2026, 9, 28), date(2026, 10, 4), timezone=NEW_YORK
        )
        assert series(board.new_members)[:2] == [("2026-09-28", 1), ("2026-09-29", 1)]
        assert len(board.new_members) == 8

    def test_unknown_preset_is_refused(self) -> None:
        """A preset name that names nothing raises InvalidPeriod."""
        with pytest.raises(InvalidPeriod):
            board_of(setup(practice()), date_range="last_fortnight", now=NOW)


class TestDst:
    def test_spring_forward_day_is_one_23_hour_bucket(self) -> None:
        """Activations just before and just after the 02:00 jump are both on Oct 4."""
        objects = [
            *setup(practice()),
            joined("before", sydney(10, 4, 1, 30)),
            joined("after", sydney(10, 4, 3, 30)),
        ]
        board = board_of(objects, date_range=WEEK, now=NOW)
        oct4 = board.new_members[-1]
        assert (oct4.day, oct4.end - oct4.start, oct4.value) == (
            date(2026, 10, 4),
            timedelta(hours=23),
            2,
        )
        assert len(board.new_members) == 7

    def test_fall_back_day_is_one_25_hour_bucket(self) -> None:
        """Both 02:30s of Apr 5 are in the one 25-hour Apr 5 bucket, each counted once."""
        first, second = sydney(4, 5, 2, 30, fold=0), sydney(4, 5, 2, 30, fold=1)
        assert second.astimezone(UTC) - first.astimezone(UTC) == timedelta(hours=1)
        objects = [
            *setup(practice()),
            joined("first", first),
            joined("second", second),
            payment("a", "30", first, member="first"),
            payment("b", "30", second, member="second"),
        ]
        r = DateRange.custom(date(2026, 4, 4), date(2026, 4, 6), timezone=SYDNEY)
        board = board_of(objects, date_range=r, now=NOW)
        assert [(p.end - p.start, p.value) for p in board.new_members] == [
            (timedelta(hours=24), 0),
            (timedelta(hours=25), 2),
            (timedelta(hours=24), 0),
        ]
        assert board.revenue["AUD"].value == aud("60")


class TestRefusals:
    def test_unknown_practice(self) -> None:
        """An unknown practice id raises NotFound."""
        with pytest.raises(NotFound):
            board_of(setup(practice()), practices=["p1", "nope"], date_range=WEEK, now=NOW)

    def test_no_practices(self) -> None:
        """An empty list of practices raises InvalidValue."""
        with pytest.raises(InvalidValue) as info:
            board_of(setup(practice()), practices=[], date_range=WEEK, now=NOW)
        assert info.value.field == "practices"

    def test_money_goal_in_another_currency(self) -> None:
        """A USD revenue goal for an AUD practice raises CurrencyMismatch."""
        targets = KpiTargets(practices={"p1": Goals(revenue=Money.of("500", "USD"))})
        with pytest.raises(CurrencyMismatch):
            board_of(setup(practice()), date_range=WEEK, now=NOW, targets=targets)

    def test_goals_for_every_practice_are_accepted_as_targets(self) -> None:
        """``targets=Goals(...)`` (an AttributeError before) means those goals for every
        practice: the same board as ``KpiTargets(default=Goals(...))``."""
        goals = Goals(members=3, retention=50, revenue=Decimal(100))
        store = setup(practice())
        assert board_of(store, date_range=WEEK, now=NOW, targets=goals) == board_of(
            store, date_range=WEEK, now=NOW, targets=KpiTargets(default=goals)
        )

    @pytest.mark.parametrize("targets", [{"members": 3}, 25, "goals"])
    def test_targets_of_another_type(self, targets: Any) -> None:
        """Targets that are neither KpiTargets nor Goals raise InvalidValue("targets")."""
        with pytest.raises(InvalidValue) as info:
            board_of(setup(practice()), date_range=WEEK, now=NOW, targets=targets)
        assert info.value.field == "targets"

    @pytest.mark.parametrize(
        ("build", "field"),
        [
            (lambda: KpiTargets(default={"members": 3}), "default"),
            (lambda: KpiTargets(practices=[("p1", Goals())]), "practices"),
        ],
    )
    def test_kpi_targets_parts_of_another_type(self, build: Any, field: str) -> None:
        """KpiTargets' parts of the wrong type are InvalidValue, not attrs' TypeError."""
        with pytest.raises(InvalidValue) as info:
            build()
        assert info.value.field == field

    def test_retention_goal_above_100(self) -> None:
        """A retention goal of 101 raises InvalidValue."""
        with pytest.raises(InvalidValue) as info:
            KpiTargets(default=Goals(retention=101))
        assert info.value.field == "retention"

    @pytest.mark.parametrize("latest", [-1, 2.0, True])
    def test_bad_latest(self, latest: Any) -> None:
        """A negative or non-whole ``latest`` raises InvalidValue."""
        with pytest.raises(InvalidValue) as info:
            board_of(setup(practice()), date_range=WEEK, now=NOW, latest=latest)
        assert info.value.field == "latest"

    def test_naive_now(self) -> None:
        """A naive ``now`` raises NaiveDatetime."""
        with pytest.raises(NaiveDatetime) as info:
            board_of(setup(practice()), date_range=WEEK, now=datetime(2026, 10, 5, 9))
        assert info.value.field == "now"


# -- properties over generated practices --------------------------------------------------------


def active(members: Iterable[Member], at: datetime) -> int:
    """Brute force: members whose state at boundary ``at`` is Active."""
    return sum(1 for m in members if m.status_before(at) is ACTIVE)


def first_activations(members: Iterable[Member], start: datetime, end: datetime) -> int:
    """Brute force: members first activated in ``[start, end)``."""
    return sum(
        1
        for m in members
        if m.first_activated_at is not None and start <= m.first_activated_at < end
    )


def collected(payments: Iterable[Payment], start: datetime, end: datetime, currency: str) -> Money:
    """Brute force: succeeded charges minus succeeded refunds stamped in ``[start, end)``."""
    return sum((p.signed for p in payments if start <= p.at < end), Money.zero(currency))


def effective_end(r: DateRange, now: datetime) -> datetime:
    """The definition: ``min(range.end, now)``."""
    return min(r.end, now)


@st.composite
def scenarios(draw: st.DrawFn, max_practices: int = 1) -> tuple[sps.Dataset, DateRange, datetime]:
    """A dataset, a range (instants, whole days or a preset) and a ``now`` not before its start.

    A range that starts after ``now`` is the subject of its own example test.
    """
    ds = draw(sps.datasets(max_practices=max_practices))
    tz = draw(st.sampled_from(sorted({p.timezone for p in ds.practices})))
    a, b, c = sorted(draw(sps.boundaries(ds)) for _ in range(3))
    end, now = (b, c) if draw(st.booleans()) else (c, b)
    kind = draw(st.sampled_from(["instants", "days", "preset"]))
    if kind == "instants":
        return ds, DateRange(a, end, tz), now
    if kind == "days":
        local = zone(tz)
        first, last = a.astimezone(local).date(), end.astimezone(local).date()
        return ds, DateRange.custom(first, last, timezone=tz), now
    return ds, DateRange.preset(draw(st.sampled_from(Preset)), now=now, timezone=tz), now


class _OneQueryEach:
    """A store's repository without the optional batched reads, noting each query asked."""

    def __init__(self, repository: Any, asked: list[Any]) -> None:
        self._repository, self._asked = repository, asked

    def __getattr__(self, name: str) -> Any:
        if name in contracts.BATCHED_READS:
            raise AttributeError(name)
        found = getattr(self._repository, name)
        if name not in ("count", "total", "find"):
            return found

        def read(query: Any, **kwargs: Any) -> Any:
            self._asked.append(query)
            return found(query, **kwargs)

        return read


class _OneQueryEachStore:
    """``store`` read one query at a time (its batched reads hidden); ``asked`` lists the
    queries made."""

    def __init__(self, store: InMemoryStore) -> None:
        self.asked: list[Any] = []
        self._store = store
        for name in ("members", "payments", "payment_plans"):
            setattr(self, name, _OneQueryEach(getattr(store, name), self.asked))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def store_of(objects: Iterable[object]) -> InMemoryStore:
    """A fresh store holding ``objects``."""
    return InMemoryStore.from_objects(objects)


def with_currencies(ds: sps.Dataset, currency_of: Mapping[str, str]) -> sps.Dataset:
    """``ds`` with every amount of practice ``p`` moved, minor unit for minor unit, to
    ``currency_of[p]`` (so every ledger rule still holds)."""

    def moved(amount: Money, practice_id: str) -> Money:
        return Money.from_minor(amount.minor, currency_of[practice_id])

    def moved_terms(d: Discount) -> Discount:
        return d if d.amount is None else attrs.evolve(d, amount=moved(d.amount, d.practice_id))

    def moved_member(m: Member) -> Member:
        grants = [attrs.evolve(g, discount=moved_terms(g.discount)) for g in m.discounts]
        return attrs.evolve(m, discounts=grants)

    def moved_campaign(c: Campaign) -> Campaign:
        return c if c.discount is None else attrs.evolve(c, discount=moved_terms(c.discount))

    def moved_plan(p: PaymentPlan) -> PaymentPlan:
        return attrs.evolve(
            p,
            total=moved(p.total, p.practice_id),
            schedule=[attrs.evolve(i, amount=moved(i.amount, p.practice_id)) for i in p.schedule],
            attempts=[attrs.evolve(a, amount=moved(a.amount, p.practice_id)) for a in p.attempts],
        )

    def moved_template(t: PaymentPlanTemplate) -> PaymentPlanTemplate:
        deposit = None if t.deposit is None else moved(t.deposit, t.practice_id)
        return attrs.evolve(
            t,
            min_total=moved(t.min_total, t.practice_id),
            max_total=moved(t.max_total, t.practice_id),
            deposit=deposit,
        )

    return attrs.evolve(
        ds,
        practices=tuple(attrs.evolve(p, currency=currency_of[p.id]) for p in ds.practices),
        payment_plan_templates=tuple(moved_template(t) for t in ds.payment_plan_templates),
        membership_plans=tuple(
            attrs.evolve(
                m,
                price=moved(m.price, m.practice_id),
                earlier_prices=[
                    attrs.evolve(e, price=moved(e.price, m.practice_id)) for e in m.earlier_prices
                ],
            )
            for m in ds.membership_plans
        ),
        members=tuple(moved_member(m) for m in ds.members),
        payment_plans=tuple(moved_plan(p) for p in ds.payment_plans),
        payments=tuple(attrs.evolve(p, amount=moved(p.amount, p.practice_id)) for p in ds.payments),
        campaigns=tuple(moved_campaign(c) for c in ds.campaigns),
    )


def by_day(points: Iterable[Any]) -> dict[date, Any]:
    """A series' values by local first day, added up."""
    out: dict[date, Any] = {}
    for p in points:
        out[p.day] = out[p.day] + p.value if p.day in out else p.value
    return out


class TestProperties:
    @DATASETS
    @given(sps.datasets(max_practices=1), st.data())
    def test_revenue_is_additive_over_adjacent_ranges(
        self, ds: sps.Dataset, data: st.DataObject
    ) -> None:
        """Revenue over [a, c) is revenue over [a, b) plus [b, c), for any b in between."""
        p = ds.practices[0]
        a, b, c = sorted(data.draw(sps.boundaries(ds)) for _ in range(3))
        now = c + timedelta(seconds=data.draw(st.integers(0, 10**6)))
        store = store_of(ds.objects())

        def revenue(start: datetime, end: datetime) -> Money:
            r = DateRange(start, end, p.timezone)
            return dashboard(store, practices=p.id, date_range=r, now=now).revenue[p.currency].value

        assert revenue(a, c) == revenue(a, b) + revenue(b, c)
        assert revenue(a, c) == collected(ds.payments, a, c, p.currency)

    @DATASETS
    @given(scenarios())
    def test_new_members_add_up_to_first_activations_in_the_cut_range(
        self, scenario: tuple[sps.Dataset, DateRange, datetime]
    ) -> None:
        """The New Members series sums to the first activations in [start, min(end, now))."""
        ds, r, now = scenario
        board = dashboard(
            store_of(ds.objects()), practices=ds.practices[0].id, date_range=r, now=now
        )
        end = effective_end(r, now)
        assert sum(p.value for p in board.new_members) == first_activations(
            ds.members, r.start, end
        )
        for point in board.new_members:
            assert point.value == first_activations(ds.members, point.start, point.end)

    @DATASETS
    @given(scenarios())
    def test_members_is_a_brute_force_count_at_the_effective_end(
        self, scenario: tuple[sps.Dataset, DateRange, datetime]
    ) -> None:
        """Members counts status_before(min(end, now)) is Active; previous at the comparison end."""
        ds, r, now = scenario
        board = dashboard(
            store_of(ds.objects()), practices=ds.practices[0].id, date_range=r, now=now
        )
        end = effective_end(r, now)
        assert board.members.value == active(ds.members, end)
        assert board.members.previous == active(ds.members, r.comparison(now).end)
        if end > r.start:
            local = zone(r.timezone)
            first_day = (end - ONE_US).astimezone(local).date().replace(day=1)
            month_start = local_midnight(first_day, r.timezone)
            delta = active(ds.members, end) - active(ds.members, month_start)
            assert board.members.this_month_delta == delta

    @DATASETS
    @given(scenarios())
    def test_retention_figures_are_percentages_or_undefined(
        self, scenario: tuple[sps.Dataset, DateRange, datetime]
    ) -> None:
        """Both retention figures, now and before, are in [0, 100] or None when 0/0."""
        ds, r, now = scenario
        board = dashboard(
            store_of(ds.objects()), practices=ds.practices[0].id, date_range=r, now=now
        )
        pairs = zip(
            (*board.retention_parts, *board.period_retention_parts),
            (
                board.retention.value,
                board.retention.previous,
                board.period_retention.value,
                board.period_retention.previous,
            ),
            strict=True,
        )
        for parts, value in pairs:
            assert 0 <= parts.numerator <= parts.denominator
            if parts.denominator == 0:
                assert value is None
            else:
                assert value is not None
                assert Decimal(0) <= value <= Decimal(100)

    @DATASETS
    @given(scenarios(max_practices=2), st.randoms(use_true_random=False))
    def test_figures_do_not_depend_on_load_order(
        self, scenario: tuple[sps.Dataset, DateRange, datetime], random: Any
    ) -> None:
        """Loading the same objects shuffled gives the same dashboard."""
        ds, r, now = scenario
        objects = list(ds.objects())
        shuffled = objects[:]
        random.shuffle(shuffled)
        ids = [p.id for p in ds.practices]
        kwargs: dict[str, Any] = {"practices": ids, "date_range": r, "now": now}
        assert dashboard(store_of(shuffled), **kwargs) == dashboard(store_of(objects), **kwargs)

    @DATASETS
    @given(scenarios(max_practices=3), st.data())
    def test_the_batched_reads_give_the_figures_one_query_each_gives(
        self, scenario: tuple[sps.Dataset, DateRange, datetime], data: st.DataObject
    ) -> None:
        """A store without the optional batched reads (asked one query per instant, span,
        window or bucket) gives the same dashboard, for a range started or not at
        ``now``; a period not started is not read for its retention."""
        ds, r, now = scenario
        unstarted = data.draw(st.booleans(), label="not started")
        if unstarted:
            now = r.start - timedelta(seconds=data.draw(st.integers(1, 10**6), label="before"))
        store = store_of(ds.objects())
        plain = _OneQueryEachStore(store)
        kwargs: dict[str, Any] = {
            "practices": [p.id for p in ds.practices],
            "date_range": r,
            "now": now,
        }
        assert dashboard(plain, **kwargs) == dashboard(store, **kwargs)
        retained = [q for q in plain.asked if getattr(q, "retained_until", None) is not None]
        assert all(q.active_at <= q.retained_until for q in retained)
        # One group per currency (one range, the default goals): each reads the retained
        # members over its comparison, and over the range once it has started.
        groups = len({p.currency for p in ds.practices})
        assert len(retained) == (1 if unstarted else 2) * groups
        # And the Active members at the end, the comparison's end, the month's start and
        # each started period's start.
        active = [
            q
            for q in plain.asked
            if isinstance(q, MemberQuery) and q.active_at is not None and q.retained_until is None
        ]
        assert len(active) == (4 if unstarted else 5) * groups

    def test_a_batched_read_answering_too_few_values_is_refused(self) -> None:
        """A host's batched read that answers fewer values than it was asked for raises
        InvalidValue naming the read, rather than a figure made of what is missing."""
        store = store_of([*setup(practice()), joined("m1", sydney(9, 1))])
        real = store.members.active_counts
        store.members.active_counts = lambda **kw: real(**kw)[:-1]  # type: ignore[method-assign]
        with pytest.raises(InvalidValue) as caught:
            dashboard(store, practices="p1", date_range=WEEK, now=NOW)
        assert caught.value.field == "<lambda>"
        assert "once per item asked" in caught.value.reason

    def test_the_optional_reads_protocols_are_the_batched_reads(self) -> None:
        """Each optional read's Protocol is offered by InMemoryStore's repository, whose
        methods the store with the batched reads hidden lacks; the Protocols' methods are
        the batched reads the dashboard looks for."""
        store = store_of(setup(practice()))
        plain = _OneQueryEachStore(store)
        readers = [
            (MemberSeriesReader, "members"),
            (MemberBoundaryReader, "members"),
            (PaymentPlanSeriesReader, "payment_plans"),
            (PaymentWindowReader, "payments"),
        ]
        methods = []
        for protocol, repository in readers:
            assert isinstance(getattr(store, repository), protocol)
            mine = [name for name in vars(protocol) if name[0] != "_"]
            assert mine
            assert not any(hasattr(getattr(plain, repository), name) for name in mine)
            methods += mine
        assert sorted(methods) == sorted(contracts.BATCHED_READS)

    @DATASETS
    @given(scenarios(), st.data())
    def test_another_practice_does_not_change_this_ones_figures(
        self, scenario: tuple[sps.Dataset, DateRange, datetime], data: st.DataObject
    ) -> None:
        """Members and payments added in another practice leave this practice's dashboard alone."""
        ds, r, now = scenario
        other = practice("other", data.draw(sps.timezones()), ds.practices[0].currency)
        when = sps.boundaries(ds)
        extra: list[object] = [*setup(other)]
        for i in range(data.draw(st.integers(1, 3))):
            member = joined(f"other-m{i}", data.draw(when), "other")
            extra.append(member)
            extra.append(
                payment(
                    f"other-pay{i}",
                    "30",  # the price of its plan's first date
                    max(data.draw(when), member.created_at),  # not before the enrolment
                    member=member.id,
                    practice_id="other",
                    currency=other.currency,
                )
            )
        mine = ds.practices[0].id
        before = dashboard(store_of(ds.objects()), practices=mine, date_range=r, now=now)
        after = dashboard(store_of([*ds.objects(), *extra]), practices=mine, date_range=r, now=now)
        assert after == before

    @DATASETS
    @given(sps.datasets(max_practices=1), st.data())
    def test_payment_at_a_boundary_is_counted_in_exactly_one_of_two_adjacent_ranges(
        self, ds: sps.Dataset, data: st.DataObject
    ) -> None:
        """A charge stamped exactly at b counts in [b, c) and not in [a, b)."""
        p = ds.practices[0]
        a, b, c = sorted(data.draw(sps.boundaries(ds)) for _ in range(3))
        assume(b < c)
        one = MembershipPlan(
            "payer-plan", p.id, "One", Money.of("1", p.currency), BillingCycle.WEEKLY
        )
        payer = Member.enrol(
            id="payer",
            practice_id=p.id,
            plan_id=one.id,
            account_holder=Patient("pat-payer", "Payer"),
            start_date=a.date(),
            at=a,
        ).activate(at=a)
        edge = payment("edge", "1", b, member="payer", practice_id=p.id, currency=p.currency)
        now = c + timedelta(days=1)
        counts = []
        for start, end in ((a, b), (b, c)):
            r = DateRange(start, end, p.timezone)

            def revenue(objects: Sequence[object], r: DateRange = r) -> Money:
                board = dashboard(store_of(objects), practices=p.id, date_range=r, now=now)
                return board.revenue[p.currency].value

            gained = revenue([*ds.objects(), one, payer, edge]) - revenue(
                [*ds.objects(), one, payer]
            )
            assert gained in (Money.zero(p.currency), edge.amount)
            counts.append(gained == edge.amount)
        assert counts == [False, True]

    @DATASETS
    @given(scenarios(max_practices=3))
    def test_practices_in_one_currency_give_the_sum_of_their_figures(
        self, scenario: tuple[sps.Dataset, DateRange, datetime]
    ) -> None:
        """Several practices in one currency: every figure is the sum of the single ones."""
        ds, r, now = scenario
        assume(len(ds.practices) >= 2)
        ds = with_currencies(ds, {p.id: "AUD" for p in ds.practices})
        store = store_of(ds.objects())
        ids = [p.id for p in ds.practices]
        whole = dashboard(store, practices=ids, date_range=r, now=now)
        parts = [dashboard(store, practices=i, date_range=r, now=now) for i in ids]
        zero = Money.zero("AUD")
        assert whole.members == Kpi(
            sum(b.members.value for b in parts),
            sum(b.members.previous for b in parts),
            sum(b.members.goal for b in parts),
            sum(b.members.this_month_delta or 0 for b in parts),
        )
        for attribute in ("retention_parts", "period_retention_parts"):
            combined = [sum((getattr(b, attribute)[k] for b in parts), Ratio(0, 0)) for k in (0, 1)]
            assert list(getattr(whole, attribute)) == combined
        assert whole.revenue == {
            "AUD": Kpi(
                sum((b.revenue["AUD"].value for b in parts), zero),
                sum((b.revenue["AUD"].previous for b in parts), zero),
                sum((b.revenue["AUD"].goal for b in parts), zero),
                sum((b.revenue["AUD"].this_month_delta or zero for b in parts), zero),
            )
        }
        days: defaultdict[date, int] = defaultdict(int)
        money_days: defaultdict[date, Money] = defaultdict(lambda: zero)
        for b in parts:
            for day, value in by_day(b.new_members).items():
                days[day] += value
            for day, amount in by_day(b.committed_payments["AUD"]).items():
                money_days[day] += amount
        assert by_day(whole.new_members) == dict(days)
        assert by_day(whole.committed_payments["AUD"]) == dict(money_days)
        assert [p.day for p in whole.new_members] == sorted(days)
        feed = sorted(
            {m for b in parts for m in b.latest_new_members},
            key=lambda m: (-m.first_activated_at.timestamp(), m.id),  # type: ignore[union-attr]
        )
        if len({b.ranges[i].effective_end(now) for b, i in zip(parts, ids, strict=True)}) == 1:
            assert list(whole.latest_new_members) == feed[:5]

    @DATASETS
    @given(scenarios(max_practices=3), st.data())
    def test_goals_of_several_practices_combine_the_single_ones(
        self, scenario: tuple[sps.Dataset, DateRange, datetime], data: st.DataObject
    ) -> None:
        """Practices read together (one range, currency and goals) or apart (other goals):
        each goal is the sum, or the weighted goal, of the single practices' goals."""
        ds, r, now = scenario
        assume(len(ds.practices) >= 2)
        ds = with_currencies(ds, {p.id: "AUD" for p in ds.practices})
        store = store_of(ds.objects())
        ids = [p.id for p in ds.practices]
        choices = [
            Goals(new_members=4),
            Goals(members=10, retention=80, revenue="500", new_members=12),
            Goals(members=3, retention="97.5", revenue=aud("40"), revenue_per="range"),
        ]
        own = data.draw(st.lists(st.sampled_from(choices), min_size=len(ids), max_size=len(ids)))
        if data.draw(st.booleans()):  # every practice has a New Members goal
            own = [attrs.evolve(g, new_members=5) if g.new_members is None else g for g in own]
        targets = KpiTargets(default=choices[1], practices=dict(zip(ids, own, strict=True)))
        whole = dashboard(store, practices=ids, date_range=r, now=now, targets=targets)
        parts = [dashboard(store, practices=i, date_range=r, now=now, targets=targets) for i in ids]
        assert whole.members.goal == sum(b.members.goal for b in parts)
        assert whole.revenue["AUD"].goal == sum(
            (b.revenue["AUD"].goal for b in parts), Money.zero("AUD")
        )
        for attribute in ("retention", "period_retention"):
            weights = [getattr(b, f"{attribute}_parts")[0].denominator for b in parts]
            expected = weighted_goal([g.retention for g in own], weights)
            assert getattr(whole, attribute).goal == expected
        if any(g.new_members is None for g in own):
            assert all(p.goal is None for p in whole.new_members)
            return
        buckets = [(p.start, p.end) for p in whole.new_members]
        if all([(p.start, p.end) for p in b.new_members] == buckets for b in parts):
            goals = [
                sum((b.new_members[k].goal or Decimal(0) for b in parts), Decimal(0))
                for k in range(len(buckets))
            ]
            assert [p.goal for p in whole.new_members] == goals

    @DATASETS
    @given(scenarios(max_practices=3))
    def test_two_currencies_are_reported_separately(
        self, scenario: tuple[sps.Dataset, DateRange, datetime]
    ) -> None:
        """AUD and USD practices: revenue and committed payments per currency, never summed."""
        ds, r, now = scenario
        assume(len(ds.practices) >= 2)
        currency_of = {p.id: "AUD" if k == 0 else "USD" for k, p in enumerate(ds.practices)}
        ds = with_currencies(ds, currency_of)
        store = store_of(ds.objects())
        ids = [p.id for p in ds.practices]
        whole = dashboard(store, practices=ids, date_range=r, now=now)
        assert list(whole.revenue) == ["AUD", "USD"]
        assert list(whole.committed_payments) == ["AUD", "USD"]
        for currency in ("AUD", "USD"):
            mine = [i for i in ids if currency_of[i] == currency]
            alone = dashboard(store, practices=mine, date_range=r, now=now)
            assert whole.revenue[currency] == alone.revenue[currency]
            assert whole.committed_payments[currency] == alone.committed_payments[currency]
            for point in whole.committed_payments[currency]:
                assert point.value.currency == currency
        singles = [dashboard(store, practices=i, date_range=r, now=now) for i in ids]
        assert whole.members.value == sum(b.members.value for b in singles)


def _store_whose_total_adds(
    monkeypatch: pytest.MonkeyPatch, extra: Money, batched: bool
) -> InMemoryStore:
    """An AUD practice with one AUD 30 payment whose ledger total also reports ``extra``:
    in each batched window total, or (``batched`` false: a host ledger without
    ``window_totals``) in each ``total``."""
    store = store_of(
        [
            *setup(practice()),
            joined("m1", sydney(9, 1)),
            payment("a", "30", sydney(9, 30), member="m1"),
        ]
    )
    ledger = store.payments
    real_total, real_windows = ledger.total, ledger.window_totals
    if batched:
        monkeypatch.setattr(
            ledger,
            "window_totals",
            lambda **kw: [{**t, extra.currency: extra} for t in real_windows(**kw)],
        )
    else:
        monkeypatch.setattr(ledger, "total", lambda q: {**real_total(q), extra.currency: extra})
        monkeypatch.setattr(type(ledger), "window_totals", property(_absent))
    return store


def _absent(self: object) -> None:
    """A property that is not there (``getattr`` with a default returns the default)."""
    raise AttributeError("window_totals")
