"""Tests for smilepass_core.reports: the worked examples of docs/reports.md, the properties
that tie the reports to the dashboard and to each other, and the refusals."""

from __future__ import annotations

import csv
import functools
import io
import pickle
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from billing_oracle import BILLABLE, billed_dates, membership_dues, reductions, status_then
from smilepass_core import (
    BillingCycle,
    Campaign,
    DateRange,
    FollowUpAction,
    InMemoryStore,
    Instalment,
    InvalidPeriod,
    InvalidValue,
    Member,
    MemberQuery,
    MembershipPlan,
    MembershipStatus,
    Money,
    NotFound,
    Order,
    Page,
    Patient,
    Payment,
    PaymentKind,
    PaymentOutcome,
    PaymentPlan,
    PaymentPlanQuery,
    PaymentPlanStatus,
    PaymentType,
    Practice,
    Referral,
    ReferralQuery,
    ReferralStatus,
    StaffUser,
    Unit,
    UnknownStatus,
    dashboard,
)
from smilepass_core.demo import DEMO_NOW, demo_store
from smilepass_core.domain.discounts import Discount
from smilepass_core.domain.overdue import DueCharge, unpaid_charges
from smilepass_core.errors import CurrencyMismatch
from smilepass_core.io.text import render_dashboard, render_weekly
from smilepass_core.periods import local_midnight, zone
from smilepass_core.queries import MEMBER_ACTION_ORDER, PAYMENT_PLAN_ACTION_ORDER
from smilepass_core.reports import (
    accounting_export,
    aged_receivables,
    cohort_retention,
    instalment_forecast,
    membership_list,
    payment_plan_list,
    receivables,
    referral_tracking,
    staff_attribution,
    weekly_check,
)
from smilepass_core.reports._table import FORMULA_TRIGGERS, neutralised
from smilepass_core.reports.reconciliation import MembershipRow
from smilepass_core.reports.recovery import RecoveryRow
from smilepass_core.reports.referrals import ConversionSummary
from smilepass_core.reports.weekly import ConvertedReferral, FailedPlan
from smilepass_core.repositories import UnpaidChargesReader
from smilepass_core.testing import strategies as sps

SYDNEY = "Australia/Sydney"
SYD = ZoneInfo(SYDNEY)
AUD = "AUD"

#: Whole datasets are slow to draw: few examples, and no complaint about their speed.
DATASETS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def local(month: int, day: int, hour: int = 9, year: int = 2026) -> datetime:
    """An instant given as a Sydney wall-clock time."""
    return datetime(year, month, day, hour, tzinfo=SYD)


def aud(amount: str) -> Money:
    """An amount in AUD."""
    return Money.of(amount, AUD)


#: "Now" in the worked practice: Wednesday 25 November 2026, 16:00 in Sydney.
NOW = local(11, 25, 16)
NOVEMBER = DateRange.this_month(now=NOW, timezone=SYDNEY)


# -- the worked practice of docs/reports.md ---------------------------------------------------


def _enrol(member_id: str, name: str, plan_id: str, at: datetime, **more: Any) -> Member:
    return Member.enrol(
        id=member_id,
        practice_id="p1",
        plan_id=plan_id,
        account_holder=Patient(f"pat-{member_id}", name),
        start_date=at.date(),
        at=at,
        **more,
    ).activate(at=at)


def _offer(
    plan_id: str,
    name: str,
    total: str,
    n: int,
    first_due: date,
    at: datetime,
    kind: PaymentType = PaymentType.PLAN,
    member: str | None = None,
) -> PaymentPlan:
    return PaymentPlan.offer(
        id=plan_id,
        practice_id="p1",
        patient=Patient(f"pat-{plan_id}", name),
        total=aud(total),
        payment_type=kind,
        instalments=n,
        first_due=first_due,
        at=at,
        member_id=member,
    )


def _refer(referral_id: str, name: str, at: datetime, **more: Any) -> Referral:
    return Referral.open(
        id=referral_id,
        practice_id="p1",
        account_holder=Patient(f"ref-{referral_id}", name),
        start_date=at.date(),
        at=at,
        **more,
    )


def bondi_objects() -> list[object]:
    """Bondi Dental as docs/reports.md builds it: 4 members, 4 payment plans, 4 referrals."""
    kids = (Patient("pat-levi", "Levi Jackson"), Patient("pat-carolyn", "Carolyn Jackson"))
    members = [
        _enrol("m1", "Ada Lovelace", "essential", local(7, 1), staff_user_id="s1"),
        _enrol("m2", "Grace Hopper", "essential", local(7, 20), staff_user_id="s2").fail(
            at=local(11, 20)
        ),
        _enrol("m3", "Alan Turing", "essential", local(9, 14), staff_user_id="s1", campaign_id="c1")
        .suspend(at=local(10, 20))
        .activate(at=local(11, 16)),
        _enrol(
            "m4",
            "Mary Jackson",
            "family",
            local(11, 24),
            staff_user_id="s2",
            campaign_id="c1",
            dependents=kids,
        ),
    ]
    pp1 = _offer("pp1", "Alan Turing", "600", 6, date(2026, 7, 20), local(7, 10), member="m3")
    for month in (7, 8, 9):
        pp1 = pp1.record_payment(at=local(month, 20))
    pp1 = pp1.record_failure(at=local(10, 20))
    pp2 = _offer("pp2", "Barbara Liskov", "600", 6, date(2026, 10, 1), local(9, 28))
    pp2 = pp2.activate(at=local(9, 28)).record_payment(at=local(10, 1))
    pp2 = pp2.record_payment(at=local(11, 1))
    pp3 = _offer(
        "pp3", "Ada Lovelace", "250", 1, date(2026, 9, 10), local(9, 10), PaymentType.INSTANT, "m1"
    ).record_payment(at=local(9, 10))
    pp4 = _offer("pp4", "Linus Torvalds", "400", 4, date(2026, 11, 25), local(11, 20))
    referrals = [
        _refer(
            "r1",
            "Alan Turing",
            local(9, 10),
            campaign_id="c1",
            staff_user_id="s1",
            referring_member_id="m1",
        ).convert(member_id="m3", at=local(9, 14)),
        _refer(
            "r2",
            "Mary Jackson",
            local(11, 20),
            campaign_id="c1",
            staff_user_id="s2",
            referring_member_id="m1",
            dependents=kids,
        ).convert(member_id="m4", at=local(11, 24)),
        _refer("r3", "Katherine Johnson", local(10, 5), campaign_id="c2", staff_user_id="s2"),
        _refer("r4", "Margaret Hamilton", local(10, 12), staff_user_id="s1").cancel(
            at=local(10, 30)
        ),
    ]
    ledger: list[Payment] = []

    def pay(
        amount: Money | str,
        at: datetime,
        kind: PaymentKind = PaymentKind.CHARGE,
        *,
        ok: bool = True,
        **source: str,
    ) -> None:
        outcome = PaymentOutcome.SUCCEEDED if ok else PaymentOutcome.FAILED
        money = amount if isinstance(amount, Money) else aud(amount)
        ledger.append(Payment(f"pay{len(ledger) + 1:02}", "p1", money, kind, outcome, at, **source))

    for month in (7, 8, 9, 10, 11):
        pay("30", local(month, 1), member_id="m1")
    pay("30", local(11, 24, 10), PaymentKind.REFUND, member_id="m1")
    for month in (7, 8, 9, 10):
        pay("30", local(month, 20), member_id="m2")
    pay("30", local(11, 20), ok=False, member_id="m2")
    for at in (local(9, 14), local(10, 14), local(11, 16)):
        pay("30", at, member_id="m3")
    pay("50", local(11, 24), member_id="m4")
    for plan in (pp1, pp2, pp3):
        for attempt in plan.attempts:
            pay(attempt.amount, attempt.at, ok=attempt.succeeded, payment_plan_id=plan.id)
    return [
        Practice("p1", "Bondi Dental", SYDNEY, AUD),
        StaffUser("s1", "p1", "Dr Nguyen"),
        StaffUser("s2", "p1", "Sam (front desk)"),
        MembershipPlan("essential", "p1", "Essential", aud("30"), BillingCycle.MONTHLY),
        MembershipPlan("family", "p1", "Family", aud("50"), BillingCycle.MONTHLY),
        Campaign("c1", "p1", "Refer a friend", "FRIEND", local(1, 1)),
        Campaign("c2", "p1", "Spring smiles", "SPRING", local(9, 1)),
        *members,
        pp1,
        pp2,
        pp3,
        pp4,
        *referrals,
        *ledger,
    ]


def bondi_setup() -> list[object]:
    """Bondi Dental's practice, staff, plans and campaigns, without any member or money."""
    kinds = Member | PaymentPlan | Referral | Payment
    return [o for o in bondi_objects() if not isinstance(o, kinds)]


@pytest.fixture(scope="module")
def bondi() -> InMemoryStore:
    """The worked practice of docs/reports.md."""
    return InMemoryStore.from_objects(bondi_objects())


@pytest.fixture(scope="module")
def demo() -> InMemoryStore:
    """The bundled demo dataset."""
    return demo_store()


# -- helpers for the properties ---------------------------------------------------------------


def store_of(objects: Iterable[object]) -> InMemoryStore:
    """A fresh store holding ``objects``."""
    return InMemoryStore.from_objects(objects)


def money_sum(amounts: Iterable[Money]) -> dict[str, Money]:
    """Amounts added per currency."""
    totals: dict[str, Money] = {}
    for a in amounts:
        totals[a.currency] = totals.get(a.currency, Money.zero(a.currency)) + a
    return totals


def nonzero(totals: Mapping[str, Money]) -> dict[str, Money]:
    """``totals`` without its zero entries (an absent currency means zero)."""
    return {c: m for c, m in totals.items() if not m.is_zero()}


def local_day(instant: datetime, timezone: str) -> date:
    """The local date of ``instant`` in ``timezone``."""
    return instant.astimezone(zone(timezone)).date()


def currency_of(ds: sps.Dataset) -> dict[str, str]:
    """Practice id -> currency."""
    return {p.id: p.currency for p in ds.practices}


def timezone_of(ds: sps.Dataset) -> dict[str, str]:
    """Practice id -> time zone."""
    return {p.id: p.timezone for p in ds.practices}


@st.composite
def ranges_and_now(draw: st.DrawFn, ds: sps.Dataset) -> tuple[DateRange, datetime]:
    """A range (instants or whole local days) in one of the dataset's zones, and a ``now``."""
    tz = draw(st.sampled_from(sorted({p.timezone for p in ds.practices})))
    a, b = sorted(draw(sps.boundaries(ds)) for _ in range(2))
    now = draw(sps.boundaries(ds))
    if draw(st.booleans()):
        return DateRange(a, b, tz), now
    first, last = local_day(a, tz), local_day(b, tz)
    return DateRange.custom(first, last, timezone=tz), now


def unpaid_at(plan: PaymentPlan, at: datetime) -> list[Instalment]:
    """The instalments ``plan`` had not paid at ``at``, if it was open then (else none)."""
    closed = (None, PaymentPlanStatus.COMPLETED, PaymentPlanStatus.CANCELLED)
    if plan.status_at(at) in closed:
        return []
    paid = sum(a.succeeded for a in plan.attempts if a.at <= at)
    return list(plan.schedule[paid:])


def paid_at(plan: PaymentPlan, at: datetime) -> Money:
    """What ``plan`` had collected by ``at`` (its succeeded attempts stamped by then)."""
    return sum(
        (a.amount for a in plan.attempts if a.succeeded and a.at <= at),
        Money.zero(plan.total.currency),
    )


@st.composite
def after_everything(draw: st.DrawFn, ds: sps.Dataset) -> datetime:
    """An instant at or after every event of ``ds`` (the state at it is the stored state)."""
    events = [m.last_changed_at for m in ds.members]  # status, plan and dependent changes
    events += [c.at for p in ds.payment_plans for c in p.history]
    events += [a.at for p in ds.payment_plans for a in p.attempts]
    events += [p.archived_at for p in ds.payment_plans if p.archived_at is not None]
    events += [p.at for p in ds.payments]
    last = max(events, default=datetime(2026, 1, 1, tzinfo=UTC))
    return last + timedelta(seconds=draw(st.integers(0, 200 * 86400)))


def due_and_unpaid(ds: sps.Dataset, practice_id: str, at: datetime) -> Money:
    """Brute force: every charge due on or before the local day of ``at`` and unpaid at
    ``at``: instalments of plans open at ``at``, what is unpaid of the billing dates of
    memberships Pending, Active or Failed at ``at``."""
    practice = next(p for p in ds.practices if p.id == practice_id)
    today = local_day(at, practice.timezone)
    total = Money.zero(practice.currency)
    open_statuses = {
        PaymentPlanStatus.PENDING,
        PaymentPlanStatus.ACTIVE,
        PaymentPlanStatus.FAILED,
    }
    for plan in ds.payment_plans:
        if plan.practice_id == practice_id and plan.status_at(at) in open_statuses:
            for i in unpaid_at(plan, at):
                if i.due_date <= today:
                    total += i.amount
    plans = {p.id: p for p in ds.membership_plans}
    for m in ds.members:
        if m.practice_id == practice_id and status_then(m, at, strictly=False) in BILLABLE:
            for due in membership_dues(m, plans, ds.payments, at, practice.timezone):
                total += due.unpaid
    return total


def discrepancies(report: Any) -> list[tuple[str, Money, Money]]:
    """A Payment Plan list's discrepancies as plain tuples."""
    return [
        (d.payment_plan_id, d.paid_per_plan, d.collected_per_ledger) for d in report.discrepancies
    ]


def rank(order: tuple[Any, ...]) -> Callable[[Any], int]:
    """Position of a status in an action order."""
    return order.index


# -- referral tracking --------------------------------------------------------------------------


class TestReferralTracking:
    """The worked example: rows, summaries per campaign and per staff user, filters, pages."""

    def test_rows_carry_the_manual_columns(self, bondi: InMemoryStore) -> None:
        """A row shows the account holder, dependents, start date, campaign, user and status."""
        rows = {r.referral_id: r for r in referral_tracking(bondi).rows}
        mary = rows["r2"]
        assert (mary.account_holder, mary.dependents, mary.start_date) == (
            "Mary Jackson",
            2,
            date(2026, 11, 20),
        )
        assert (mary.campaign, mary.user, mary.status) == (
            "Refer a friend",
            "Sam (front desk)",
            ReferralStatus.CONVERTED,
        )
        assert mary.converted_at == local(11, 24)
        assert rows["r4"].campaign is None
        assert rows["r3"].converted_at is None

    def test_rows_come_in_id_order_without_an_order(self, bondi: InMemoryStore) -> None:
        """Without an Order the rows are sorted by referral id."""
        assert [r.referral_id for r in referral_tracking(bondi).rows] == ["r1", "r2", "r3", "r4"]

    def test_summaries_per_campaign(self, bondi: InMemoryStore) -> None:
        """Refer a friend: 2 referrals, 2 conversions, 100 %, and 30 + 50 collected in
        November; the group without a campaign comes last, as None sorts in the lists."""
        summaries = referral_tracking(bondi, revenue_range=NOVEMBER).by_campaign
        assert [(s.key, s.name, s.referrals, s.conversions) for s in summaries] == [
            ("c1", "Refer a friend", 2, 2),
            ("c2", "Spring smiles", 1, 0),
            (None, "(none)", 1, 0),
        ]
        assert [s.conversion_rate for s in summaries] == [
            Decimal("100.00"),
            Decimal("0.00"),
            Decimal("0.00"),
        ]
        assert [s.revenue for s in summaries] == [aud("80"), aud("0"), aud("0")]

    def test_summaries_per_staff_user(self, bondi: InMemoryStore) -> None:
        """Dr Nguyen and Sam each converted one of two referrals: 30.00 and 50.00 collected."""
        summaries = referral_tracking(bondi, revenue_range=NOVEMBER).by_user
        got = [(s.key, s.referrals, s.conversions, s.conversion_rate, s.revenue) for s in summaries]
        assert got == [
            ("s1", 2, 1, Decimal("50.00"), aud("30")),
            ("s2", 2, 1, Decimal("50.00"), aud("50")),
        ]

    def test_revenue_is_none_without_a_range(self, bondi: InMemoryStore) -> None:
        """Without revenue_range the summaries carry no revenue."""
        report = referral_tracking(bondi)
        assert report.revenue_range is None
        assert all(s.revenue is None for s in (*report.by_campaign, *report.by_user))

    def test_revenue_counts_only_the_range(self, bondi: InMemoryStore) -> None:
        """Over September and October, Alan's 30 + 30 in membership charges and the 100 of
        his payment plan pp1 are the campaign's whole revenue (Mary paid nothing then)."""
        autumn = DateRange.custom(date(2026, 9, 1), date(2026, 10, 31), timezone=SYDNEY)
        summaries = referral_tracking(bondi, campaigns=["c1"], revenue_range=autumn).by_campaign
        assert [(s.key, s.revenue) for s in summaries] == [("c1", aud("160"))]

    def test_conversion_rate_is_undefined_without_referrals(self) -> None:
        """A summary of no referrals has an undefined conversion rate, not 0."""
        assert ConversionSummary("c9", "Empty", 0, 0, None, AUD).conversion_rate is None
        assert ConversionSummary("c9", "Third", 3, 1, None, AUD).conversion_rate == Decimal("33.33")

    def test_a_campaign_without_referrals_is_listed_with_an_undefined_rate(self) -> None:
        """Every campaign and staff user gets a summary; with no referrals its rate is None."""
        objects = [
            *bondi_objects(),
            Campaign("c3", "p1", "Back to school", "SCHOOL", local(1, 1)),
            StaffUser("s3", "p1", "Priya"),
        ]
        report = referral_tracking(store_of(objects))
        campaigns = {s.key: s for s in report.by_campaign}
        users = {s.key: s for s in report.by_user}
        assert "c3" in campaigns
        assert "s3" in users
        assert (campaigns["c3"].referrals, campaigns["c3"].conversion_rate) == (0, None)
        assert (users["s3"].referrals, users["s3"].conversion_rate) == (0, None)

    def test_filters_by_campaign_user_status_and_start_dates(self, bondi: InMemoryStore) -> None:
        """Each filter narrows both the rows and the summaries."""

        def ids(**filters: Any) -> list[str]:
            return [r.referral_id for r in referral_tracking(bondi, **filters).rows]

        assert ids(campaigns=["c1"]) == ["r1", "r2"]
        assert ids(users=["s2"]) == ["r2", "r3"]
        assert ids(statuses={"Pending", "cancelled"}) == ["r3", "r4"]
        assert ids(statuses=ReferralStatus.CONVERTED, users="s1") == ["r1"]
        assert ids(start_from=date(2026, 10, 5), start_until=date(2026, 10, 12)) == ["r3", "r4"]
        report = referral_tracking(bondi, users=["s2"])
        assert [(s.key, s.referrals) for s in report.by_campaign] == [("c1", 1), ("c2", 1)]

    def test_sorts_and_pages_the_rows_but_not_the_summaries(self, bondi: InMemoryStore) -> None:
        """A page holds some rows; the summaries still cover every matching referral."""
        report = referral_tracking(bondi, order=Order(["-start_date"], Page(limit=2, offset=1)))
        assert [r.referral_id for r in report.rows] == ["r4", "r3"]
        assert sum(s.referrals for s in report.by_campaign) == 4

    def test_sorts_by_status_and_account_holder(self, bondi: InMemoryStore) -> None:
        """Status sorts Pending, Converted, Cancelled; names sort ignoring case."""
        by_status = referral_tracking(bondi, order=Order(["status"])).rows
        assert [r.referral_id for r in by_status] == ["r3", "r1", "r2", "r4"]
        by_name = referral_tracking(bondi, order=Order(["account_holder"])).rows
        assert [r.account_holder for r in by_name] == [
            "Alan Turing",
            "Katherine Johnson",
            "Margaret Hamilton",
            "Mary Jackson",
        ]


class TestSignUps:
    """Conversion counts every sign-up: members who joined with a campaign's code or by a
    staff user without a referral count beside the referrals converted."""

    def test_bondi(self, bondi: InMemoryStore) -> None:
        """Alan joined with the Refer-a-friend code (c1) without a referral; Sam (s1)
        enrolled Ada and Alan: their sign-ups are the conversions plus those members."""
        report = referral_tracking(bondi)
        campaigns = {s.key: s for s in report.by_campaign}
        users = {s.key: s for s in report.by_user}
        direct = [
            m
            for m in bondi.members.find(MemberQuery())
            if m.id not in {r.member_id for r in bondi.referrals.find(ReferralQuery())}
        ]
        for key, summary in campaigns.items():
            walk_ins = 0 if key is None else sum(m.campaign_id == key for m in direct)
            assert summary.sign_ups == summary.conversions + walk_ins
        for key, summary in users.items():
            walk_ins = 0 if key is None else sum(m.staff_user_id == key for m in direct)
            assert summary.sign_ups == summary.conversions + walk_ins
        assert any(s.sign_ups > s.conversions for s in report.by_user)

    def test_the_demo_shows_the_invisible_members(self, demo: InMemoryStore) -> None:
        """Spring Smile Check: three referrals, all converted, yet thirteen members joined
        with its code (ten are the issue's invisible sign-ups)."""
        report = referral_tracking(demo, practices="syd", as_of=DEMO_NOW)
        spring = next(s for s in report.by_campaign if s.name == "Spring Smile Check")
        assert (spring.referrals, spring.conversions, spring.sign_ups) == (3, 3, 13)

    def test_a_member_enrolled_later_is_not_yet_a_sign_up(self, bondi: InMemoryStore) -> None:
        """As of a day before a member's enrolment, they are not counted."""
        first = min(bondi.members.find(MemberQuery()), key=lambda m: m.created_at)
        before = referral_tracking(bondi, as_of=first.created_at - timedelta(days=1))
        assert all(s.sign_ups == s.conversions == 0 for s in before.by_user)


class TestReferralTrackingProperties:
    """Summaries add up to the rows whatever the filters."""

    @DATASETS
    @given(dataset=sps.datasets(), data=st.data())
    def test_summaries_add_up_to_the_rows(self, dataset: sps.Dataset, data: st.DataObject) -> None:
        """Referrals and conversions add up across campaigns, and across users, to the rows."""
        store = store_of(dataset.objects())
        campaign_ids = [c.id for c in dataset.campaigns]
        statuses = data.draw(st.none() | st.frozensets(st.sampled_from(ReferralStatus)))
        campaigns = (
            data.draw(st.none() | st.frozensets(st.sampled_from(campaign_ids)))
            if campaign_ids
            else None
        )
        report = referral_tracking(store, statuses=statuses, campaigns=campaigns)
        converted = sum(r.status is ReferralStatus.CONVERTED for r in report.rows)
        for summaries in (report.by_campaign, report.by_user):
            assert sum(s.referrals for s in summaries) == len(report.rows)
            assert sum(s.conversions for s in summaries) == converted
            for s in summaries:
                if s.referrals == 0:
                    assert s.conversion_rate is None
                    continue
                share = Decimal(s.conversions) / Decimal(s.referrals) * 100
                assert s.conversion_rate == share.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        expected_ids = sorted(
            r.id
            for r in dataset.referrals
            if (statuses is None or r.status in statuses)
            and (campaigns is None or r.campaign_id in campaigns)
        )
        assert [r.referral_id for r in report.rows] == expected_ids

    @DATASETS
    @given(dataset=sps.datasets(), data=st.data())
    def test_revenue_adds_up_to_what_converted_members_paid(
        self, dataset: sps.Dataset, data: st.DataObject
    ) -> None:
        """Per campaign, revenue is what the converted members paid in the range, net."""
        store = store_of(dataset.objects())
        window, _ = data.draw(ranges_and_now(dataset))
        report = referral_tracking(store, revenue_range=window)
        paid: dict[str, Money] = {}
        holder = {p.id: p.member_id for p in dataset.payment_plans}
        for p in dataset.payments:
            member_id = p.member_id or holder.get(p.payment_plan_id or "")
            if member_id is not None and p.at in window:
                paid[member_id] = paid.get(member_id, Money.zero(p.amount.currency)) + p.signed
        for s in report.by_campaign:
            mine = [
                r
                for r in dataset.referrals
                if r.campaign_id == s.key
                and r.status is ReferralStatus.CONVERTED
                and currency_of(dataset)[r.practice_id] == s.currency
            ]
            zero = Money.zero(s.currency)
            assert s.revenue == sum((paid.get(r.member_id or "", zero) for r in mine), zero)

    @DATASETS
    @given(dataset=sps.datasets(), data=st.data())
    def test_discount_given_is_the_campaigns_cuts_on_its_members_dates(
        self, dataset: sps.Dataset, data: st.DataObject
    ) -> None:
        """Per campaign with a revenue range, the discount given is what its discount took
        off the billing dates (local midnight in the range) of the members who joined
        through it, read by the billing oracle; by user and without a range, None."""
        store = store_of(dataset.objects())
        window, _ = data.draw(ranges_and_now(dataset))
        report = referral_tracking(store, revenue_range=window)
        plans = {p.id: p for p in dataset.membership_plans}
        zones = {p.id: p.timezone for p in dataset.practices}
        campaigns = {c.id: c for c in dataset.campaigns}
        assert all(s.discount_given is None for s in report.by_user)
        assert referral_tracking(store).by_campaign == tuple(
            attrs.evolve(s, revenue=None, discount_given=None) for s in report.by_campaign
        )
        for s in report.by_campaign:
            campaign = campaigns.get(s.key or "")
            if campaign is None:
                assert s.discount_given is None
                continue
            expected = 0
            for m in dataset.members:
                if m.campaign_id != campaign.id or campaign.discount is None:
                    continue
                zone = zones[m.practice_id]
                last = local_day(window.end - timedelta(microseconds=1), zone)
                for k, day, then, price in billed_dates(m, plans, last, zone):
                    if window.start <= local_midnight(day, zone) < window.end:
                        cuts = reductions(then, price, k, m, day, zone)
                        expected += cuts.get(campaign.discount.id, 0)
            assert s.discount_given == Money.from_minor(expected, s.currency)

    def test_discount_given_worked_example(self) -> None:
        """Spring gives 10 % off two billing dates. Ada joined with its code on
        1 November (monthly Gold at 30.00); Bo joined without it. November: 3.00 (Ada's
        1 November); November and December: 6.00; January: 0.00 (two dates only)."""
        t = datetime(2026, 11, 1, 9, tzinfo=UTC)
        gold = MembershipPlan("gold", "p", "Gold", Money.of("30", "AUD"), BillingCycle.MONTHLY)
        off = Discount("spring-10", "p", "Spring 10 %", percent="10", cycles=2)
        spring = attrs.evolve(
            Campaign("c1", "p", "Spring", "SPRING", t - timedelta(days=7)), discount=off
        )

        def enrol(id: str) -> Member:
            return Member.enrol(
                id=id,
                practice_id="p",
                plan_id="gold",
                account_holder=Patient(f"h-{id}", id.title()),
                start_date=t.date(),
                at=t,
            ).activate(at=t)

        def referral(id: str, campaign_id: str | None) -> Referral:
            opened = Referral.open(
                id=id,
                practice_id="p",
                account_holder=Patient("h-ada", "Ada"),
                start_date=t.date(),
                at=t - timedelta(days=3),
                campaign_id=campaign_id,
            )
            return opened.convert(member_id="ada", at=t)

        # Ada was referred twice (once through Spring, once not) and used the code: her
        # dates count once.
        store = store_of(
            [
                Practice("p", "P", "UTC", "AUD"),
                gold,
                spring,
                spring.apply_code(enrol("ada"), "spring"),
                enrol("bo"),
                referral("r1", "c1"),
                referral("r2", None),
            ]
        )

        def given(start: tuple[int, int], end: tuple[int, int]) -> list[Money | None]:
            window = DateRange(
                datetime(*start, 1, tzinfo=UTC), datetime(*end, 1, tzinfo=UTC), "UTC"
            )
            summaries = referral_tracking(store, revenue_range=window).by_campaign
            return [s.discount_given for s in summaries if s.key == "c1"]

        aud = functools.partial(Money.of, currency="AUD")
        assert given((2026, 11), (2026, 12)) == [aud("3.00")]
        assert given((2026, 11), (2027, 1)) == [aud("6.00")]
        assert given((2027, 1), (2027, 2)) == [aud("0.00")]
        summary = referral_tracking(store).by_campaign[0]
        assert (summary.conversions, summary.discount_given) == (1, None)

    @DATASETS
    @given(dataset=sps.datasets(), data=st.data())
    def test_a_page_is_a_slice_of_the_sorted_rows(
        self, dataset: sps.Dataset, data: st.DataObject
    ) -> None:
        """Rows of a page are the same slice of the unpaged sorted rows."""
        store = store_of(dataset.objects())
        keys = data.draw(st.sampled_from(["start_date", "-status", "account_holder", "campaign"]))
        limit, offset = data.draw(st.integers(0, 5)), data.draw(st.integers(0, 5))
        everything = referral_tracking(store, order=Order([keys])).rows
        page = referral_tracking(store, order=Order([keys], Page(limit, offset))).rows
        assert page == everything[offset : offset + limit]


# -- membership list ----------------------------------------------------------------------------


class TestMembershipList:
    """The worked example: statuses, the overdue flag and amount, filters and totals."""

    def test_rows_and_overdue_amounts(self, bondi: InMemoryStore) -> None:
        """Ada owes her refunded 30.00 charge, Grace her failed one; Alan the 200.00 of two
        overdue instalments."""
        report = membership_list(bondi, as_of=NOW)
        got = [
            (r.member_id, r.plan, r.status.value, r.dependents, r.overdue, r.amount_overdue)
            for r in report.rows
        ]
        assert got == [
            ("m1", "Essential", "active", 0, True, aud("30")),
            ("m2", "Essential", "failed", 0, True, aud("30")),
            ("m3", "Essential", "active", 0, True, aud("200")),
            ("m4", "Family", "active", 2, False, None),
        ]
        assert all(r.currency == AUD for r in report.rows)

    def test_totals(self, bondi: InMemoryStore) -> None:
        """Counts per status, overdue members and the total overdue."""
        report = membership_list(bondi, as_of=NOW)
        assert report.counts == {"active": 3, "failed": 1}
        assert report.overdue_members == 3
        assert report.total_overdue == {AUD: aud("260")}
        assert report.as_of == NOW

    def test_an_instalment_is_not_overdue_on_its_due_day(self, bondi: InMemoryStore) -> None:
        """On 20 November Alan owes only the 20 October instalment; on the 21st both."""
        on_due_day = membership_list(bondi, as_of=local(11, 20, 23), plans="essential")
        next_day = membership_list(bondi, as_of=local(11, 21, 0), plans="essential")
        alan = {r.member_id: r for r in on_due_day.rows}["m3"]
        assert alan.amount_overdue == aud("100")
        assert {r.member_id: r for r in next_day.rows}["m3"].amount_overdue == aud("200")

    def test_grace_days_delay_overdue(self, bondi: InMemoryStore) -> None:
        """With 7 days of grace, Grace's charge failed 5 days ago is not overdue yet; Ada's
        charge due on 1 November and Alan's October instalment are."""
        report = membership_list(bondi, as_of=NOW, overdue=True, grace_days=7)
        assert [(r.member_id, r.amount_overdue) for r in report.rows] == [
            ("m1", aud("30")),
            ("m3", aud("100")),
        ]

    def test_filters_by_plan_status_and_overdue(self, bondi: InMemoryStore) -> None:
        """Plan, status and Overdue filters keep the matching members and their totals."""

        def ids(**filters: Any) -> list[str]:
            return [r.member_id for r in membership_list(bondi, as_of=NOW, **filters).rows]

        assert ids(plans=["family"]) == ["m4"]
        assert ids(statuses={"Failed"}) == ["m2"]
        assert ids(overdue=True) == ["m1", "m2", "m3"]
        assert ids(overdue=False) == ["m4"]
        assert membership_list(bondi, as_of=NOW, overdue=False).total_overdue == {}

    def test_status_sort_puts_failed_first(self, bondi: InMemoryStore) -> None:
        """Sorting by status lists what needs action first."""
        report = membership_list(bondi, as_of=NOW, order=Order(["status"]))
        assert [r.member_id for r in report.rows] == ["m2", "m1", "m3", "m4"]

    def test_pages_the_rows_but_not_the_totals(self, bondi: InMemoryStore) -> None:
        """A page holds some rows; the counts still cover every matching member."""
        report = membership_list(bondi, as_of=NOW, order=Order(["-start_date"], Page(limit=1)))
        assert [r.member_id for r in report.rows] == ["m4"]
        assert sum(report.counts.values()) == 4
        assert report.overdue_members == 3

    @pytest.mark.parametrize(
        ("column", "expected"),
        [
            ("-amount_overdue", ["m3", "m1", "m2", "m4"]),
            ("-overdue", ["m1", "m2", "m3", "m4"]),
        ],
    )
    def test_sorts_by_the_overdue_columns(
        self, bondi: InMemoryStore, column: str, expected: list[str]
    ) -> None:
        """The list sorts by any of its columns, the overdue flag and amount included."""
        report = membership_list(bondi, as_of=NOW, order=Order([column]))
        assert [r.member_id for r in report.rows] == expected

    def test_sorts_the_plan_column_by_the_name_it_shows(self) -> None:
        """Sorting by plan follows the plan names the column shows, not the plan ids."""
        objects = [
            *bondi_objects(),
            MembershipPlan("a-premium", "p1", "Premium", aud("90"), BillingCycle.MONTHLY),
            _enrol("m5", "Edsger Dijkstra", "a-premium", local(8, 1)),
        ]
        report = membership_list(store_of(objects), as_of=NOW, order=Order(["plan"]))
        plans = [r.plan for r in report.rows]
        assert plans == sorted(plans)


class TestMembershipListProperties:
    """Counts, overdue flags and the status sort on random practices."""

    @DATASETS
    @given(dataset=sps.datasets(), data=st.data())
    def test_counts_add_up_to_the_matching_members(
        self, dataset: sps.Dataset, data: st.DataObject
    ) -> None:
        """Counts per status add up to the members matching the filters, and to the rows."""
        store = store_of(dataset.objects())
        as_of = data.draw(sps.boundaries(dataset))
        statuses = data.draw(st.none() | st.frozensets(st.sampled_from(MembershipStatus)))
        plan_ids = [p.id for p in dataset.membership_plans]
        plans = data.draw(st.none() | st.frozensets(st.sampled_from(plan_ids)))
        report = membership_list(store, as_of=as_of, statuses=statuses, plans=plans)
        then = {m.id: m.status_at(as_of) for m in dataset.members}  # None: not yet enrolled
        matching = [
            m
            for m in dataset.members
            if then[m.id] is not None
            and (statuses is None or then[m.id] in statuses)
            and (plans is None or m.plan_id in plans)
        ]
        assert sum(report.counts.values()) == len(matching) == len(report.rows)
        assert sorted(r.member_id for r in report.rows) == sorted(m.id for m in matching)
        for status, n in report.counts.items():
            assert n == sum(then[m.id].value == status for m in matching)  # type: ignore[union-attr]
        for r in report.rows:
            assert r.status is then[r.member_id]

    @DATASETS
    @given(dataset=sps.datasets(), data=st.data(), grace=st.integers(0, 10))
    def test_overdue_filter_flag_and_total_agree(
        self, dataset: sps.Dataset, data: st.DataObject, grace: int
    ) -> None:
        """The Overdue filter keeps exactly the flagged rows; the total adds their amounts."""
        store = store_of(dataset.objects())
        as_of = data.draw(sps.boundaries(dataset))
        everyone = membership_list(store, as_of=as_of, grace_days=grace)
        late = membership_list(store, as_of=as_of, grace_days=grace, overdue=True)
        on_time = membership_list(store, as_of=as_of, grace_days=grace, overdue=False)
        flagged = {r.member_id for r in everyone.rows if r.overdue}
        assert {r.member_id for r in late.rows} == flagged
        enrolled = {m.id for m in dataset.members if m.created_at <= as_of}
        assert {r.member_id for r in on_time.rows} == enrolled - flagged
        assert everyone.overdue_members == late.overdue_members == len(flagged)
        for r in everyone.rows:
            assert r.overdue == (r.amount_overdue is not None)
            assert r.amount_overdue is None or r.amount_overdue.is_positive()
        amounts = (r.amount_overdue for r in everyone.rows if r.amount_overdue is not None)
        assert everyone.total_overdue == money_sum(amounts) == late.total_overdue

    @DATASETS
    @given(dataset=sps.datasets(), data=st.data())
    def test_status_sort_puts_failed_first(self, dataset: sps.Dataset, data: st.DataObject) -> None:
        """Sorted by status, Failed members come first and the action order never goes back."""
        store = store_of(dataset.objects())
        as_of = data.draw(sps.boundaries(dataset))
        report = membership_list(store, as_of=as_of, order=Order(["status"]))
        ranks = [rank(MEMBER_ACTION_ORDER)(r.status) for r in report.rows]
        assert ranks == sorted(ranks)
        failed = sum(m.status_at(as_of) is MembershipStatus.FAILED for m in dataset.members)
        assert all(r.status is MembershipStatus.FAILED for r in report.rows[:failed])


# -- payment plan list --------------------------------------------------------------------------


class TestPaymentPlanList:
    """The worked example: progression, balance, actions, totals and the ledger check."""

    def test_rows_sorted_by_status_put_failed_first(self, bondi: InMemoryStore) -> None:
        """Failed, then Pending, Active and Completed, each with its progression and actions."""
        report = payment_plan_list(bondi, as_of=NOW, order=Order(["status"]))
        got = [
            (r.payment_plan_id, r.progression, r.balance, r.status.value, r.next_due, r.actions)
            for r in report.rows
        ]
        resend, contact = FollowUpAction.RESEND_PAYMENT_LINK, FollowUpAction.CONTACT_PATIENT
        assert got == [
            ("pp1", "3/6", aud("300"), "failed", date(2026, 10, 20), (resend, contact)),
            ("pp4", "0/4", aud("400"), "pending", date(2026, 11, 25), (resend,)),
            ("pp2", "2/6", aud("400"), "active", date(2026, 12, 1), ()),
            ("pp3", "1/1", aud("0"), "completed", None, (FollowUpAction.ARCHIVE,)),
        ]

    def test_totals(self, bondi: InMemoryStore) -> None:
        """1,100.00 outstanding, 200.00 overdue (pp4's instalment is due today), no discrepancy."""
        report = payment_plan_list(bondi, as_of=NOW)
        assert report.counts == {"failed": 1, "pending": 1, "active": 1, "completed": 1}
        assert report.outstanding == {AUD: aud("1100")}
        assert report.overdue == {AUD: aud("200")}
        assert report.discrepancies == ()

    def test_overdue_total_follows_grace_days(self, bondi: InMemoryStore) -> None:
        """With 7 days of grace only pp1's October instalment is overdue."""
        assert payment_plan_list(bondi, as_of=NOW, grace_days=7).overdue == {AUD: aud("100")}

    def test_filters_by_status_payment_type_and_archived(self, bondi: InMemoryStore) -> None:
        """Status, payment type and archived filters keep the matching plans."""

        def ids(store: InMemoryStore = bondi, **filters: Any) -> list[str]:
            return [r.payment_plan_id for r in payment_plan_list(store, as_of=NOW, **filters).rows]

        assert ids(statuses={"failed", "Pending"}) == ["pp1", "pp4"]
        assert ids(payment_types={"instant"}) == ["pp3"]
        assert ids(payment_types=PaymentType.PLAN, statuses="active") == ["pp2"]
        assert ids(archived=True) == []
        store = store_of(
            o.archive(at=local(10, 1)) if isinstance(o, PaymentPlan) and o.id == "pp3" else o
            for o in bondi_objects()
        )
        assert ids(store, archived=True) == ["pp3"]
        assert ids(store, archived=False) == ["pp1", "pp2", "pp4"]
        row = payment_plan_list(store, as_of=NOW, archived=True).rows[0]
        assert (row.archived, row.actions) == (True, ())

    def test_a_plan_whose_ledger_disagrees_is_listed(self) -> None:
        """Without Barbara's 1 November payment, pp2 says 200.00 paid but the ledger 100.00."""
        objects = [
            o
            for o in bondi_objects()
            if not (isinstance(o, Payment) and o.payment_plan_id == "pp2" and o.at == local(11, 1))
        ]
        report = payment_plan_list(store_of(objects), as_of=NOW)
        assert discrepancies(report) == [("pp2", aud("200"), aud("100"))]
        assert [r.payment_plan_id for r in report.rows] == ["pp1", "pp2", "pp3", "pp4"]

    def test_a_refund_on_a_plan_is_a_discrepancy(self) -> None:
        """A refund of a paid instalment leaves the ledger short of the plan's paid total."""
        refund = Payment(
            "pay-refund",
            "p1",
            aud("100"),
            PaymentKind.REFUND,
            PaymentOutcome.SUCCEEDED,
            local(11, 2),
            payment_plan_id="pp2",
        )
        report = payment_plan_list(store_of([*bondi_objects(), refund]), as_of=NOW)
        assert [d.payment_plan_id for d in report.discrepancies] == ["pp2"]
        assert report.discrepancies[0].collected_per_ledger == aud("100")


class TestPaymentPlanListProperties:
    """The ledger check, the totals and the status sort on random practices."""

    @DATASETS
    @given(dataset=sps.datasets(), data=st.data(), grace=st.integers(0, 5))
    def test_totals_and_no_discrepancy_for_a_consistent_ledger(
        self, dataset: sps.Dataset, data: st.DataObject, grace: int
    ) -> None:
        """A ledger entry per attempt reconciles every plan; counts, balances and overdue add up."""
        store = store_of(dataset.objects())
        as_of = data.draw(sps.boundaries(dataset))
        report = payment_plan_list(store, as_of=as_of, grace_days=grace)
        assert report.discrepancies == ()
        plans = [p for p in dataset.payment_plans if p.created_at <= as_of]
        assert sum(report.counts.values()) == len(plans) == len(report.rows)
        cancelled = PaymentPlanStatus.CANCELLED
        open_plans = [p for p in plans if p.status_at(as_of) is not cancelled]
        balances = (p.total - paid_at(p, as_of) for p in open_plans)
        assert nonzero(report.outstanding) == nonzero(money_sum(balances))
        for r in report.rows:
            plan = next(p for p in plans if p.id == r.payment_plan_id)
            assert (r.status, r.balance) == (
                plan.status_at(as_of),
                plan.total - paid_at(plan, as_of),
            )
        zones = timezone_of(dataset)
        overdue = []
        for p in plans:
            today = local_day(as_of, zones[p.practice_id])
            last = today - timedelta(days=grace)
            # Overdue past grace from the day after it fell due, or from the local day an
            # attempt at it failed once it has fallen due (a failure on the due day counts).
            failed = {
                a.number
                for a in p.attempts
                if not a.succeeded
                and a.at <= as_of
                and local_day(a.at, zones[p.practice_id]) <= last
            }
            overdue += [
                i.amount
                for i in unpaid_at(p, as_of)
                if i.due_date < last or (i.due_date <= today and i.number in failed)
            ]
        assert nonzero(report.overdue) == nonzero(money_sum(overdue))

    @DATASETS
    @given(dataset=sps.datasets(), data=st.data())
    def test_a_dropped_ledger_payment_is_listed(
        self, dataset: sps.Dataset, data: st.DataObject
    ) -> None:
        """Dropping one of a plan's succeeded ledger payments lists that plan, and only it."""
        candidates = [p for p in dataset.payments if p.payment_plan_id is not None and p.succeeded]
        assume(candidates)
        dropped = data.draw(st.sampled_from(candidates))
        objects = [o for o in dataset.objects() if o is not dropped]
        as_of = data.draw(sps.boundaries(dataset))
        report = payment_plan_list(store_of(objects), as_of=as_of)
        plan = next(p for p in dataset.payment_plans if p.id == dropped.payment_plan_id)
        paid = paid_at(plan, as_of)
        expected = [(plan.id, paid, paid - dropped.amount)] if dropped.at <= as_of else []
        assert discrepancies(report) == expected

    @DATASETS
    @given(dataset=sps.datasets(), data=st.data())
    def test_status_sort_puts_failed_first(self, dataset: sps.Dataset, data: st.DataObject) -> None:
        """Sorted by status, Failed plans come first and the action order never goes back."""
        store = store_of(dataset.objects())
        report = payment_plan_list(
            store, as_of=data.draw(sps.boundaries(dataset)), order=Order(["status"])
        )
        ranks = [rank(PAYMENT_PLAN_ACTION_ORDER)(r.status) for r in report.rows]
        assert ranks == sorted(ranks)
        for r in report.rows:
            assert r.actions == r.plan.follow_up_actions()
            if r.status is PaymentPlanStatus.FAILED:
                assert FollowUpAction.CONTACT_PATIENT in r.actions


# -- weekly check -------------------------------------------------------------------------------


class TestWeeklyCheck:
    """The worked example: this week, failed plans, overdue members, referrals to thank."""

    def test_sections(self, bondi: InMemoryStore) -> None:
        """pp1 to action, Alan, Ada then Grace overdue (longest first), and Mary's referral to
        thank Ada for."""
        check = weekly_check(bondi, now=NOW)
        assert (check.week.local_start.date(), check.week.local_end.date()) == (
            date(2026, 11, 23),
            date(2026, 11, 30),
        )
        assert [(p.payment_plan_id, p.failed_at, p.balance) for p in check.failed_plans] == [
            ("pp1", local(10, 20), aud("300"))
        ]
        assert [(m.member_id, m.amount_overdue) for m in check.overdue_members] == [
            ("m3", aud("200")),
            ("m1", aud("30")),
            ("m2", aud("30")),
        ]
        assert [
            (r.referral_id, r.new_account_holder, r.referring_member, r.staff_user, r.campaign)
            for r in check.converted_referrals
        ] == [("r2", "Mary Jackson", "Ada Lovelace", "Sam (front desk)", "Refer a friend")]

    def test_dashboard_compares_this_week_with_last_week(self, bondi: InMemoryStore) -> None:
        """50.00 - 30.00 refunded this week against Alan's 30.00 last week to Wednesday 16:00."""
        revenue = weekly_check(bondi, now=NOW).dashboard.revenue[AUD]
        assert (revenue.value, revenue.previous) == (aud("20"), aud("30"))

    def test_render_and_records(self, bondi: InMemoryStore) -> None:
        """The plain text is the dashboard then the three aligned sections; records by columns."""
        check = weekly_check(bondi, now=NOW)
        assert render_weekly(check).split("\n") == [
            "This week against last week",
            *render_dashboard(check.dashboard).split("\n"),
            "",
            "Failed payment plans to action (1), oldest first",
            "Patient      Failed since  Progression     Balance  Actions",
            "-----------  ------------  -----------  ----------  "
            "------------------------------------",
            "Alan Turing  2026-10-20            3/6  AUD 300.00  "
            "resend payment link, contact patient",
            "",
            "Overdue members (3), longest overdue first",
            "Account holder  Plan       Status  Amount overdue",
            "--------------  ---------  ------  --------------",
            "Alan Turing     Essential  active      AUD 200.00",
            "Ada Lovelace    Essential  active       AUD 30.00",
            "Grace Hopper    Essential  failed       AUD 30.00",
            "",
            "Referrals converted this week (1): say thank you",
            "New account holder  Referred by   Staff             Campaign        Converted",
            "------------------  ------------  ----------------  --------------  ----------",
            "Mary Jackson        Ada Lovelace  Sam (front desk)  Refer a friend  2026-11-24",
            "",
            "Charges that failed last week, and what was recovered since",
            "Practice  Failed     Amount  Recovered  Outstanding  Written off    Rate",
            "--------  ------  ---------  ---------  -----------  -----------  ------",
            "p1             1  AUD 30.00   AUD 0.00    AUD 30.00     AUD 0.00  0.00 %",
        ]
        records = check.to_records()
        assert records["converted_referrals"] == [
            {
                "referral_id": "r2",
                "practice": "p1",
                "converted_at": "2026-11-23T22:00:00+00:00",
                "new_account_holder": "Mary Jackson",
                "referring_member": "Ada Lovelace",
                "staff_user": "Sam (front desk)",
                "campaign": "Refer a friend",
            }
        ]
        assert [r["payment_plan_id"] for r in records["failed_plans"]] == ["pp1"]

    def test_a_referral_without_referrer_staff_or_campaign_renders_dashes(self) -> None:
        """A conversion this week with no referrer, staff user or campaign shows a dash for each."""
        walk_in = [
            _enrol("m5", "Rosalind Franklin", "essential", local(11, 25, 10)),
            _refer("r5", "Rosalind Franklin", local(11, 23)).convert(
                member_id="m5", at=local(11, 25, 10)
            ),
        ]
        text = render_weekly(weekly_check(store_of([*bondi_objects(), *walk_in]), now=NOW))
        section = text[text.index("Referrals converted") : text.index("\n\nCharges that failed")]
        assert section.split("\n") == [
            "Referrals converted this week (2): say thank you",
            "New account holder  Referred by   Staff             Campaign        Converted",
            "------------------  ------------  ----------------  --------------  ----------",
            "Mary Jackson        Ada Lovelace  Sam (front desk)  Refer a friend  2026-11-24",
            "Rosalind Franklin   —             —                 —               2026-11-25",
        ]

    def test_a_conversion_before_monday_is_not_this_week(self, bondi: InMemoryStore) -> None:
        """The next Monday, Mary's conversion belongs to last week."""
        assert weekly_check(bondi, now=local(11, 30, 8)).converted_referrals == ()

    def test_oldest_failure_first(self) -> None:
        """Two Failed plans are listed by when their current Failed spell began."""
        late = _offer("pp5", "Edsger Dijkstra", "200", 2, date(2026, 11, 1), local(10, 1))
        late = late.activate(at=local(10, 1)).record_failure(at=local(11, 1))
        early = _offer("pp6", "Barbara Liskov", "200", 2, date(2026, 9, 1), local(8, 1))
        early = early.record_failure(at=local(9, 1)).record_payment(at=local(9, 2))
        early = early.record_failure(at=local(10, 1))
        check = weekly_check(store_of([*bondi_objects(), late, early]), now=NOW)
        assert [(p.payment_plan_id, p.failed_at) for p in check.failed_plans] == [
            ("pp6", local(10, 1)),
            ("pp1", local(10, 20)),
            ("pp5", local(11, 1)),
        ]


class TestWeeklyCheckProperties:
    """What the weekly check lists, on random practices."""

    @DATASETS
    @given(dataset=sps.datasets(), data=st.data())
    def test_failed_plans_and_converted_referrals(
        self, dataset: sps.Dataset, data: st.DataObject
    ) -> None:
        """Every plan Failed at now, oldest failure first, with its progression and balance
        then; every referral converted this week to now."""
        store = store_of(dataset.objects())
        now = data.draw(sps.boundaries(dataset))
        check = weekly_check(store, now=now)
        failed = [p for p in dataset.payment_plans if p.status_at(now) is PaymentPlanStatus.FAILED]
        assert sorted(p.payment_plan_id for p in check.failed_plans) == sorted(p.id for p in failed)
        since = [p.failed_at for p in check.failed_plans]
        assert since == sorted(since)
        for row in check.failed_plans:
            plan = next(p for p in failed if p.id == row.payment_plan_id)
            moves = [c.at for c in plan.history if c.to is PaymentPlanStatus.FAILED and c.at <= now]
            assert row.failed_at == moves[-1]
            assert row.balance == plan.total - paid_at(plan, now)
        zones = timezone_of(dataset)
        expected = set()
        for r in dataset.referrals:
            week = DateRange.this_week(now=now, timezone=zones[r.practice_id])
            if r.converted_at is not None and week.start <= r.converted_at < min(week.end, now):
                expected.add(r.id)
        assert {r.referral_id for r in check.converted_referrals} == expected
        times = [r.converted_at for r in check.converted_referrals]
        assert times == sorted(times)

    @DATASETS
    @given(dataset=sps.datasets(), data=st.data())
    def test_overdue_members_are_the_overdue_list(
        self, dataset: sps.Dataset, data: st.DataObject
    ) -> None:
        """The overdue members are the Membership list's overdue rows."""
        store = store_of(dataset.objects())
        now = data.draw(sps.boundaries(dataset))
        check = weekly_check(store, now=now)
        late = membership_list(store, as_of=now, overdue=True)
        assert sorted(r.member_id for r in check.overdue_members) == [
            r.member_id for r in late.rows
        ]


# -- aged receivables ---------------------------------------------------------------------------


class TestAgedReceivables:
    """The worked example: rows, days past due in practice time, buckets and totals."""

    def test_a_member_who_moved_to_another_cycle_owes_each_cycle_s_dates(self) -> None:
        """A Failed member who moved from a monthly plan to an annual one on 10 February
        owes 1 January and 1 February at the monthly price, then 1 March (the next monthly
        date, which starts the annual cycle) at the annual price."""
        monthly = MembershipPlan("m", "p", "Monthly", Money.of("30", "AUD"), BillingCycle.MONTHLY)
        annual = MembershipPlan("y", "p", "Annual", Money.of("300", "AUD"), BillingCycle.ANNUALLY)
        jan = datetime(2026, 1, 1, tzinfo=UTC)
        member = (
            Member.enrol(
                id="a",
                practice_id="p",
                plan_id="m",
                account_holder=Patient("h", "Ada"),
                start_date=jan.date(),
                at=jan,
            )
            .activate(at=jan)
            .change_plan("y", at=jan + timedelta(days=40))
            .fail(at=jan + timedelta(days=63))
        )
        store = InMemoryStore.from_objects(
            [Practice("p", "P", "UTC", "AUD"), monthly, annual, member]
        )
        at = datetime(2026, 4, 1, tzinfo=UTC)
        rows = aged_receivables(store, at=at).rows
        assert [(r.due_date, r.amount) for r in rows] == [
            (date(2026, 1, 1), monthly.price),
            (date(2026, 2, 1), monthly.price),
            (date(2026, 3, 1), annual.price),
        ]
        listed = membership_list(store, as_of=at).rows
        owed = Money.of("360", "AUD")
        assert [(r.member_id, r.amount_overdue) for r in listed] == [("a", owed)]

    def test_rows_and_buckets(self, bondi: InMemoryStore) -> None:
        """36 days (31-60), Ada's refunded charge at 24 days and 5 days twice (1-30), and
        pp4's instalment due today (Current)."""
        report = aged_receivables(bondi, at=NOW)
        got = [
            (r.patient, r.source_id, r.instalment, r.due_date, r.days_past_due, r.bucket, r.amount)
            for r in report.rows
        ]
        assert got == [
            ("Alan Turing", "pp1", 4, date(2026, 10, 20), 36, "31-60", aud("100")),
            ("Ada Lovelace", "m1", None, date(2026, 11, 1), 24, "1-30", aud("30")),
            ("Grace Hopper", "m2", None, date(2026, 11, 20), 5, "1-30", aud("30")),
            ("Alan Turing", "pp1", 5, date(2026, 11, 20), 5, "1-30", aud("100")),
            ("Linus Torvalds", "pp4", 1, date(2026, 11, 25), 0, "Current", aud("100")),
        ]
        sources = [r.source for r in report.rows]
        assert sources == ["payment_plan", "member", "member", *["payment_plan"] * 2]

    def test_totals_by_practice_and_by_patient(self, bondi: InMemoryStore) -> None:
        """360.00 in all: 100.00 Current, 160.00 at 1-30 days, 100.00 at 31-60 days."""
        report = aged_receivables(bondi, at=NOW)
        assert report.labels == ("Current", "1-30", "31-60", "61-90", "91+")
        assert report.totals == {AUD: aud("360")}
        assert report.by_practice == {
            "p1": {"Current": aud("100"), "1-30": aud("160"), "31-60": aud("100")}
        }
        assert report.by_patient == {
            ("p1", "pat-pp1"): {"31-60": aud("100"), "1-30": aud("100")},
            ("p1", "pat-m1"): {"1-30": aud("30")},
            ("p1", "pat-m2"): {"1-30": aud("30")},
            ("p1", "pat-pp4"): {"Current": aud("100")},
        }
        names = {(r.practice, r.patient_id): r.patient for r in report.rows}
        assert sorted(names.values()) == [
            "Ada Lovelace",
            "Alan Turing",
            "Grace Hopper",
            "Linus Torvalds",
        ]

    def test_days_are_counted_in_practice_time(self, bondi: InMemoryStore) -> None:
        """At 00:30 on 25 November in Sydney (still the 24th in UTC) pp4's instalment is due."""
        just_after_midnight = aged_receivables(bondi, at=local(11, 25, 0).replace(minute=30))
        assert local(11, 25, 0).astimezone(UTC).date() == date(2026, 11, 24)
        assert [(r.source_id, r.days_past_due) for r in just_after_midnight.rows][-1] == ("pp4", 0)
        just_before_midnight = aged_receivables(bondi, at=local(11, 24, 23))
        assert "pp4" not in {r.source_id for r in just_before_midnight.rows}
        assert [r.days_past_due for r in just_before_midnight.rows] == [35, 23, 4, 4]

    def test_configurable_edges(self, bondi: InMemoryStore) -> None:
        """Edges (7, 14) make Current, 1-7, 8-14 and 15+ (15 days and more)."""
        report = aged_receivables(bondi, at=NOW, edges=[7, 14])
        assert report.labels == ("Current", "1-7", "8-14", "15+")
        assert [r.bucket for r in report.rows] == ["15+", "15+", "1-7", "1-7", "Current"]
        assert report.totals == {AUD: aud("360")}

    def test_a_day_on_an_edge_is_in_the_lower_bucket(self, bondi: InMemoryStore) -> None:
        """On 19 November the October instalment is exactly 30 days past due: 1-30."""
        report = aged_receivables(bondi, at=local(11, 19, 12))
        assert [(r.days_past_due, r.bucket) for r in report.rows] == [(30, "1-30")]

    def test_a_plan_settled_since_is_still_owed_at_a_past_instant(self) -> None:
        """At 15 October, an instalment unpaid then is owed, though the plan was paid off since."""
        pp5 = _offer("pp5", "Edsger Dijkstra", "200", 2, date(2026, 10, 1), local(9, 20))
        pp5 = pp5.activate(at=local(9, 20)).record_failure(at=local(10, 1))
        pp5 = pp5.record_payment(at=local(10, 20)).record_payment(at=local(11, 1))
        store = store_of([*bondi_objects(), pp5])
        october = local(10, 15, 16)
        assert payment_plan_list(store, as_of=october).overdue == {AUD: aud("100")}
        report = aged_receivables(store, at=october)
        got = [(r.source_id, r.instalment, r.days_past_due, r.bucket) for r in report.rows]
        assert got == [("pp5", 1, 14, "1-30")]
        assert report.totals == {AUD: aud("100")}

    def test_namesakes_in_two_currencies_stay_apart(self) -> None:
        """Two patients with the same name, in AUD and USD practices, are two patients."""
        report = aged_receivables(store_of(_namesakes(("pa", "AUD"), ("pu", "USD"))), at=_MARCH_10)
        assert report.totals == {"AUD": Money.of("100", "AUD"), "USD": Money.of("100", "USD")}
        assert len(report.by_patient) == 2

    def test_namesakes_in_one_practice_stay_apart(self) -> None:
        """Two patients who share a name are two entries of by_patient."""
        objects = _namesakes(("pa", "AUD"))
        twin = attrs.evolve(objects[1], id="pa-pp2", patient=Patient("pa-pat2", "Ada Lovelace"))
        report = aged_receivables(store_of([*objects, twin]), at=_MARCH_10)
        assert len(report.rows) == 2
        assert len(report.by_patient) == 2

    def test_rows_are_made_as_read_and_kept_from_the_first_index(
        self, bondi: InMemoryStore
    ) -> None:
        """``len`` and ``repr`` make no row; iterating makes fresh ones each time; an index
        makes and keeps them all, and later reads give those same objects."""
        rows = aged_receivables(bondi, at=NOW).rows
        assert len(rows) == 5
        assert repr(rows) == "<ReceivableRows: 5 items>"
        assert next(iter(rows)) == next(iter(rows))
        assert next(iter(rows)) is not next(iter(rows))  # not kept
        first = rows[0]
        assert next(iter(rows)) is first
        assert rows[0] is first
        assert rows.__getattr__("_items") is rows[:]  # a second builder finds them kept
        with pytest.raises(AttributeError, match="'ReceivableRows' object has no attribute 'x'"):
            rows.__getattr__("x")

    def test_by_patient_is_summed_when_read(self, bondi: InMemoryStore) -> None:
        """``by_patient`` reads, compares, shows and pickles as the dict of its totals."""
        report = aged_receivables(bondi, at=NOW)
        totals = dict(report.by_patient)
        assert isinstance(report.by_patient, receivables.PatientTotals)
        assert report.by_patient == totals
        assert totals == report.by_patient
        assert repr(report.by_patient) == repr(totals)
        assert len(report.by_patient) == 4
        assert report.by_patient[("p1", "pat-m1")] == {"1-30": aud("30")}
        copy = pickle.loads(pickle.dumps(report.by_patient))
        assert copy == totals
        assert dict(receivables.PatientTotals(totals)) == totals

    def test_the_report_shows_the_practices_of_its_rows(self, bondi: InMemoryStore) -> None:
        """The report's one line names the practices of its rows, read without making
        them, and of the rows it is given."""
        report = aged_receivables(bondi, at=NOW)
        assert repr(report) == "<AgedReceivables: 5 rows, practices p1>"
        assert next(iter(report.rows)) is not next(iter(report.rows))  # still not kept
        assert repr(attrs.evolve(report, rows=())) == "<AgedReceivables: 0 rows>"

    def test_a_host_s_charges_out_of_order_are_bucketed_by_due_date(self) -> None:
        """A host store listing a member's charges latest first still gets each charge
        in its own bucket and the patient at their oldest charge."""
        store, ada = _two_members()
        charges = [
            (
                ada,
                (
                    DueCharge(("member", "m"), date(2026, 2, 1), Money.of(1, "AUD")),
                    DueCharge(("member", "m"), date(2026, 1, 1), Money.of(2, "AUD")),
                ),
            )
        ]
        host = _Unkept(store)
        host.members = _Kept(store.members, charges)
        report = aged_receivables(host, at=datetime(2026, 2, 10, tzinfo=UTC))
        assert report.by_practice == {
            "p": {"31-60": Money.of(2, "AUD"), "1-30": Money.of(1, "AUD")}
        }
        assert [r.due_date for r in report.rows] == [date(2026, 1, 1), date(2026, 2, 1)]

    def test_a_patient_is_listed_at_their_oldest_charge(self) -> None:
        """Splits are keyed in the order of their first row: Ada's plan b1 (1 January)
        puts her before Bea (1 February), though Ada's first plan by id, a1, is due later."""
        practice = Practice("p", "Dental", "UTC", "AUD")
        ada, bea = Patient("ada", "Ada"), Patient("bea", "Bea")
        plans = [
            PaymentPlan.offer(
                id=plan_id,
                practice_id="p",
                patient=patient,
                total=Money.of("100", "AUD"),
                payment_type=PaymentType.INSTANT,
                first_due=due,
                at=datetime(2025, 12, 1, tzinfo=UTC),
            )
            for plan_id, patient, due in (
                ("a1", ada, date(2026, 3, 1)),
                ("a2", bea, date(2026, 2, 1)),
                ("b1", ada, date(2026, 1, 1)),
            )
        ]
        report = aged_receivables(store_of([practice, *plans]), at=_MARCH_10)
        assert [r.source_id for r in report.rows] == ["b1", "a2", "a1"]
        assert list(report.by_patient) == [("p", "ada"), ("p", "bea")]
        assert list(report.by_patient[("p", "ada")]) == ["61-90", "1-30"]


_MARCH_1 = datetime(2026, 3, 1, tzinfo=UTC)
_MARCH_10 = datetime(2026, 3, 10, tzinfo=UTC)


def _namesakes(*practices: tuple[str, str]) -> list[Any]:
    """Per practice: one unpaid Instant payment of 100 due 1 March, patient "Ada Lovelace"."""
    objects: list[Any] = []
    for practice_id, currency in practices:
        objects.append(Practice(practice_id, "Dental", "UTC", currency))
        objects.append(
            PaymentPlan.offer(
                id=f"{practice_id}-pp",
                practice_id=practice_id,
                patient=Patient(f"{practice_id}-pat", "Ada Lovelace"),
                total=Money.of("100", currency),
                payment_type=PaymentType.INSTANT,
                first_due=_MARCH_1.date(),
                at=_MARCH_1,
            )
        )
    return objects


class TestAgedReceivablesProperties:
    """Aged receivables add up to what is due and unpaid, on random practices."""

    @DATASETS
    @given(dataset=sps.datasets(), data=st.data())
    def test_totals_are_the_due_unpaid_balances(
        self, dataset: sps.Dataset, data: st.DataObject
    ) -> None:
        """Totals equal the rows' sum and the due, unpaid instalments plus failed charges."""
        store = store_of(dataset.objects())
        at = data.draw(after_everything(dataset))
        for practice in dataset.practices:
            report = aged_receivables(store, at=at, practices=practice.id)
            rows_total = money_sum(r.amount for r in report.rows)
            assert report.totals == rows_total
            expected = due_and_unpaid(dataset, practice.id, at)
            assert report.totals.get(practice.currency, Money.zero(practice.currency)) == expected

    @DATASETS
    @given(dataset=sps.datasets(), data=st.data())
    def test_what_the_store_keeps_gives_the_report_judged_member_by_member(
        self, dataset: sps.Dataset, data: st.DataObject
    ) -> None:
        """InMemoryStore lists the unpaid membership charges from its Overdue outlooks
        (``UnpaidChargesReader``); the same store with that hidden makes the report judge
        each member from the ledger: the two reports are equal, at instants before, at
        and after the events, of every practice at once and one at a time."""
        store = store_of(dataset.objects())
        judged = _Unkept(store)
        assert isinstance(store.members, UnpaidChargesReader)
        assert not isinstance(judged.members, UnpaidChargesReader)
        for at in (
            data.draw(sps.boundaries(dataset), label="boundary"),
            data.draw(after_everything(dataset), label="after"),
        ):
            assert aged_receivables(store, at=at) == aged_receivables(judged, at=at)
            first = dataset.practices[0].id
            kept = aged_receivables(store, at=at, practices=first)
            assert kept == aged_receivables(judged, at=at, practices=first)

    @DATASETS
    @given(dataset=sps.datasets(), data=st.data(), edges=st.sets(st.integers(1, 120), min_size=1))
    def test_rows_and_splits_are_laid_out_as_defined(
        self, dataset: sps.Dataset, data: st.DataObject, edges: set[int]
    ) -> None:
        """Every unpaid charge one row, made here from each member's and plan's
        ``unpaid_charges`` and sorted by (due date, practice, source id, instalment);
        each split keyed in the order of its first row, its buckets oldest first; the
        report's rows equal them, read after ``len``, the splits and the totals."""
        store = store_of(dataset.objects())
        at = data.draw(after_everything(dataset))
        bounds = sorted(edges)
        report = aged_receivables(store, at=at, edges=bounds)
        plans = {p.id: p for p in dataset.membership_plans}
        expected = []
        for practice in dataset.practices:
            today = local_day(at, practice.timezone)
            ledgers: dict[str, list[Payment]] = {}
            for pay in sorted(dataset.payments, key=lambda p: (p.at, p.id)):
                if pay.member_id is not None:
                    ledgers.setdefault(pay.member_id, []).append(pay)
            found = [
                (m.account_holder, c)
                for m in dataset.members
                if m.practice_id == practice.id
                for c in unpaid_charges(
                    m,
                    at=at,
                    timezone=practice.timezone,
                    membership_plans=plans,
                    payments=ledgers.get(m.id, ()),
                )
            ]
            found += [
                (plan.patient, c)
                for plan in dataset.payment_plans
                if plan.practice_id == practice.id
                for c in unpaid_charges(None, (plan,), at=at, timezone=practice.timezone)
            ]
            for patient, c in found:
                days = (today - c.due_date).days
                bucket = expected_bucket(days, bounds)
                key = (c.due_date, practice.id, c.source[1], c.instalment or 0)
                expected.append((*key, patient, c, days, bucket))
        expected.sort(key=lambda e: e[:4])
        assert len(report.rows) == len(expected)
        by_patient: dict[tuple[str, str], dict[str, list[Money]]] = {}
        by_practice: dict[str, dict[str, list[Money]]] = {}
        for _, practice_id, _, _, patient, c, _, bucket in expected:
            key = (practice_id, patient.id)
            by_patient.setdefault(key, {}).setdefault(bucket, []).append(c.amount)
            by_practice.setdefault(practice_id, {}).setdefault(bucket, []).append(c.amount)
        for got, want in ((report.by_patient, by_patient), (report.by_practice, by_practice)):
            assert [(k, list(v)) for k, v in got.items()] == [(k, list(v)) for k, v in want.items()]
            assert got == {
                k: {b: money_sum(a)[a[0].currency] for b, a in v.items()} for k, v in want.items()
            }
        assert report.totals == money_sum(c.amount for *_, c, _, _ in expected)
        rows = tuple(
            receivables.ReceivableRow(
                practice_id,
                patient.id,
                patient.name,
                c.source[0],
                c.source[1],
                c.instalment,
                c.due_date,
                days,
                bucket,
                c.amount,
                c.amount.currency,
            )
            for _, practice_id, _, _, patient, c, days, bucket in expected
        )
        assert tuple(report.rows) == rows  # made as they are reached
        assert report.rows == rows
        assert rows == report.rows
        assert tuple(report.rows) == rows
        assert len(report.rows) == len(rows)
        assert pickle.loads(pickle.dumps(report)) == report

    @DATASETS
    @given(dataset=sps.datasets(), data=st.data(), edges=st.sets(st.integers(1, 120), min_size=1))
    def test_by_practice_and_by_patient_add_up_to_totals(
        self, dataset: sps.Dataset, data: st.DataObject, edges: set[int]
    ) -> None:
        """Each split adds up to the totals, and every row sits in the bucket its age says."""
        store = store_of(dataset.objects())
        at = data.draw(sps.boundaries(dataset))
        bounds = sorted(edges)
        for practice in dataset.practices:
            report = aged_receivables(store, at=at, practices=[practice.id], edges=bounds)
            for split in (report.by_practice, report.by_patient):
                cells = [m for buckets in split.values() for m in buckets.values()]
                assert money_sum(cells) == report.totals
            today = local_day(at, practice.timezone)
            for r in report.rows:
                assert r.days_past_due == (today - r.due_date).days >= 0
                assert r.bucket == expected_bucket(r.days_past_due, bounds)
                assert r.bucket in report.labels


@pytest.mark.parametrize("second", ["m", "other"])
def test_a_bucket_in_two_currencies_is_refused(second: str) -> None:
    """A host store that gives one practice charges in two currencies in one bucket gets
    CurrencyMismatch from the bucket totals (one patient's, or the practice's), not one
    currency's total; in two buckets, each bucket has its own."""
    store, ada = _two_members()
    due = date(2026, 1, 1)

    def report(second_due: date) -> receivables.AgedReceivables:
        charges = [
            (ada, (DueCharge(("member", "m"), due, Money.of(1, "AUD")),)),
            (
                store.members.get(second),
                (DueCharge(("member", second), second_due, Money.of(1, "USD")),),
            ),
        ]
        host = _Unkept(store)
        host.members = _Kept(store.members, charges)
        return aged_receivables(host, at=datetime(2026, 2, 10, tzinfo=UTC))

    with pytest.raises(CurrencyMismatch):
        report(due)
    apart = report(date(2026, 2, 1))
    assert apart.by_practice == {"p": {"31-60": Money.of(1, "AUD"), "1-30": Money.of(1, "USD")}}


def _two_members() -> tuple[InMemoryStore, Member]:
    """A practice in AUD, a monthly plan, Ada (member m) and Bea (member other)."""
    practice = Practice("p", "P", "UTC", "AUD")
    ada = Member.enrol(
        id="m",
        practice_id="p",
        plan_id="x",
        account_holder=Patient("h", "Ada"),
        start_date=date(2026, 1, 1),
        at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    other = attrs.evolve(ada, id="other", account_holder=Patient("h2", "Bea"))
    plan = MembershipPlan("x", "p", "Monthly", Money.of("30", "AUD"), BillingCycle.MONTHLY)
    return InMemoryStore.from_objects([practice, plan, ada, other]), ada


class _Kept:
    """A members repository that lists the unpaid charges it is given."""

    def __init__(self, members: Any, charges: list[Any]) -> None:
        self._members = members
        self._charges = charges

    def unpaid_charges(self, *, practice_id: str, at: datetime) -> list[Any]:
        return self._charges

    def __getattr__(self, name: str) -> Any:
        return getattr(self._members, name)


class _Unkept:
    """A store whose members repository does not list unpaid charges (every other read
    passes through)."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self.members = _Members(store.members)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class _Members:
    def __init__(self, members: Any) -> None:
        self._members = members

    def __getattr__(self, name: str) -> Any:
        if name == "unpaid_charges":
            raise AttributeError(name)
        return getattr(self._members, name)


def expected_bucket(days: int, edges: list[int]) -> str:
    """The age bucket of ``days`` for ascending ``edges``, from the definition."""
    if days == 0:
        return "Current"
    low = 1
    for high in edges:
        if days <= high:
            return f"{low}-{high}"
        low = high + 1
    return f"{edges[-1] + 1}+"


# -- cohort retention ---------------------------------------------------------------------------


class TestCohortRetention:
    """The worked example, and members who leave and come back."""

    def test_cohorts(self, bondi: InMemoryStore) -> None:
        """July: 2, 2, 2, 2, then 1 (Grace failed); September: 1, 0 (suspended), 1 (back)."""
        report = cohort_retention(bondi, now=local(12, 2))
        assert [(r.cohort, r.size, r.active) for r in report.rows] == [
            (date(2026, 7, 1), 2, (2, 2, 2, 2, 1)),
            (date(2026, 9, 1), 1, (1, 0, 1)),
            (date(2026, 11, 1), 1, (1,)),
        ]
        assert report.rows[0].retention[-1] == Decimal("50.00")
        assert report.rows[1].retention == (Decimal("100.00"), Decimal("0.00"), Decimal("100.00"))

    def test_a_month_counts_once_it_has_ended(self, bondi: InMemoryStore) -> None:
        """On 25 November, November's cohort has no month end yet."""
        rows = {r.cohort: r for r in cohort_retention(bondi, now=NOW).rows}
        assert rows[date(2026, 11, 1)].active == ()
        assert rows[date(2026, 9, 1)].active == (1, 0)

    def test_cohort_month_is_the_local_month(self) -> None:
        """Activated at 09:00 on 1 November in Sydney (31 October in UTC): November's cohort."""
        objects = bondi_setup()
        member = _enrol("m9", "Edsger Dijkstra", "essential", local(11, 1))
        assert member.first_activated_at is not None
        assert member.first_activated_at.date() == date(2026, 10, 31)
        report = cohort_retention(store_of([*objects, member]), now=local(12, 2))
        assert [(r.cohort, r.active) for r in report.rows] == [(date(2026, 11, 1), (1,))]

    def test_a_member_who_cancels_and_returns_counts_once_in_the_first_cohort(self) -> None:
        """Re-enrolled under the same account holder, Ada stays in July's cohort only."""
        ada = Patient("pat-ada", "Ada Lovelace")

        def enrol(member_id: str, at: datetime) -> Member:
            return Member.enrol(
                id=member_id,
                practice_id="p1",
                plan_id="essential",
                account_holder=ada,
                start_date=at.date(),
                at=at,
            ).activate(at=at)

        first = enrol("m1", local(7, 1)).cancel(at=local(8, 15))
        again = enrol("m1-again", local(10, 10))
        report = cohort_retention(store_of([*bondi_setup(), first, again]), now=local(12, 2))
        assert [(r.cohort, r.size) for r in report.rows] == [(date(2026, 7, 1), 1)]
        assert report.rows[0].active == (1, 0, 0, 1, 1)


class TestCohortRetentionProperties:
    """Cohorts partition the members ever Active, on random practices."""

    @DATASETS
    @given(dataset=sps.datasets(), data=st.data())
    def test_sizes_shares_and_month_ends(self, dataset: sps.Dataset, data: st.DataObject) -> None:
        """Sizes add up to the account holders ever Active; each count is how many of them
        had a membership Active at the month end."""
        store = store_of(dataset.objects())
        now = data.draw(sps.boundaries(dataset))
        report = cohort_retention(store, now=now)
        ever = [m for m in dataset.members if m.first_activated_at and m.first_activated_at < now]
        people: dict[tuple[str, str], list[Member]] = {}
        for m in ever:
            people.setdefault((m.practice_id, m.account_holder.id), []).append(m)
        assert sum(r.size for r in report.rows) == len(people)
        zones = timezone_of(dataset)
        for r in report.rows:
            tz = zones[r.practice]
            cohort = [
                records
                for (practice, _), records in people.items()
                if practice == r.practice
                and local_day(
                    min(m.first_activated_at for m in records if m.first_activated_at), tz
                ).replace(day=1)
                == r.cohort
            ]
            assert r.size == len(cohort) > 0
            assert all(
                share is not None and Decimal(0) <= share <= Decimal(100) for share in r.retention
            )
            for k, active in enumerate(r.active):
                end = local_midnight(_add_months(r.cohort, k + 1), tz)
                assert end <= now
                assert active == sum(
                    any(m.status_before(end) is MembershipStatus.ACTIVE for m in records)
                    for records in cohort
                )
            assert local_midnight(_add_months(r.cohort, len(r.active) + 1), tz) > now
        record_keys = [tuple(rec) for rec in report.to_records()]
        assert all(
            keys == ("practice", "cohort", "size", "active", "retention") for keys in record_keys
        )


def _add_months(first: date, k: int) -> date:
    """The first day of the month ``k`` months after ``first`` (itself a first day)."""
    month = first.month - 1 + k
    return date(first.year + month // 12, month % 12 + 1, 1)


# -- per-staff attribution ----------------------------------------------------------------------


class TestStaffAttribution:
    """The worked example and the attribution definitions."""

    def test_november(self, bondi: InMemoryStore) -> None:
        """Dr Nguyen: 30.00 from Alan; Sam: Mary's referral, conversion, membership and 50.00."""
        report = staff_attribution(bondi, date_range=NOVEMBER, now=NOW)
        got = [
            (r.staff_user_id, r.referrals, r.conversions, r.members_attributed, r.revenue)
            for r in report.rows
        ]
        assert got == [("s1", 0, 0, 0, aud("30")), ("s2", 1, 1, 1, aud("50"))]
        assert (report.date_range.start, report.date_range.end) == (NOVEMBER.start, NOW)

    def test_september_to_october(self) -> None:
        """Referrals by start date, conversions by conversion time, members by first activation."""
        autumn = DateRange.custom(date(2026, 9, 1), date(2026, 10, 31), timezone=SYDNEY)
        report = staff_attribution(store_of(bondi_objects()), date_range=autumn, now=NOW)
        got = [
            (r.staff_user_id, r.referrals, r.conversions, r.members_attributed, r.revenue)
            for r in report.rows
        ]
        # Dr Nguyen: r1 and r4 started, r1 converted, Alan new; Ada 30 + 30 and her plan
        # pp3's 250, Alan 30 + 30 and his plan pp1's 100. Sam: r3 started; Grace 30 + 30.
        assert got == [("s1", 2, 1, 1, aud("470")), ("s2", 1, 0, 0, aud("60"))]

    def test_a_range_after_now_is_empty(self, bondi: InMemoryStore) -> None:
        """A range that starts after now is cut to nothing: every figure is zero."""
        december = DateRange.custom(date(2026, 12, 1), date(2026, 12, 31), timezone=SYDNEY)
        report = staff_attribution(bondi, date_range=december, now=NOW)
        got = [(r.referrals, r.conversions, r.members_attributed, r.revenue) for r in report.rows]
        assert got == [(0, 0, 0, aud("0")), (0, 0, 0, aud("0"))]
        assert report.date_range.is_empty()


class TestStaffAttributionProperties:
    """Attribution counts against brute force, on random practices."""

    @DATASETS
    @given(dataset=sps.datasets(), data=st.data())
    def test_conversions_and_members(self, dataset: sps.Dataset, data: st.DataObject) -> None:
        """Conversions and members attributed follow their definitions; one row per staff user."""
        store = store_of(dataset.objects())
        window, now = data.draw(ranges_and_now(dataset))
        report = staff_attribution(store, date_range=window, now=now)
        cut = report.date_range
        assert [r.staff_user_id for r in report.rows] == sorted(u.id for u in dataset.staff_users)
        for r in report.rows:
            converted = [
                x
                for x in dataset.referrals
                if x.staff_user_id == r.staff_user_id and x.converted_at and x.converted_at in cut
            ]
            mine = [m for m in dataset.members if m.staff_user_id == r.staff_user_id]
            new = [m for m in mine if m.first_activated_at and m.first_activated_at in cut]
            ids = {m.id for m in mine}
            held = {p.id for p in dataset.payment_plans if p.member_id in ids}
            paid = [
                p.signed
                for p in dataset.payments
                if (p.member_id in ids or p.payment_plan_id in held) and p.at in cut
            ]
            assert (r.conversions, r.members_attributed) == (len(converted), len(new))
            assert r.revenue == sum(paid, Money.zero(r.currency))


# -- accounting export --------------------------------------------------------------------------


class TestAccountingExport:
    """The worked example: collected payments and refunds, dated in practice time."""

    def test_november(self, bondi: InMemoryStore) -> None:
        """Five entries, the refund negative, the failed attempt left out: 180.00."""
        report = accounting_export(bondi, date_range=NOVEMBER, now=NOW)
        got = [(r.date, r.payer, r.source_id, r.kind.value, r.amount) for r in report.rows]
        assert got == [
            (date(2026, 11, 1), "Ada Lovelace", "m1", "charge", aud("30")),
            (date(2026, 11, 1), "Barbara Liskov", "pp2", "charge", aud("100")),
            (date(2026, 11, 16), "Alan Turing", "m3", "charge", aud("30")),
            (date(2026, 11, 24), "Mary Jackson", "m4", "charge", aud("50")),
            (date(2026, 11, 24), "Ada Lovelace", "m1", "refund", aud("-30")),
        ]
        assert report.rows[0].time == "09:00:00+1100"
        assert report.totals == {AUD: aud("180")}

    def test_totals_equal_total_revenue(self, bondi: InMemoryStore) -> None:
        """The export's total is the dashboard's Total Revenue for November."""
        board = dashboard(bondi, practices="p1", date_range=NOVEMBER, now=NOW)
        assert accounting_export(bondi, date_range=NOVEMBER, now=NOW).totals == {
            AUD: board.revenue[AUD].value
        }

    def test_csv(self, bondi: InMemoryStore) -> None:
        """The CSV has the accountant's columns and signed exact amounts."""
        out = io.StringIO()
        accounting_export(bondi, date_range=NOVEMBER, now=NOW).to_csv(out)
        lines = out.getvalue().splitlines()
        assert (
            lines[0] == "date,time,practice,payer,source,source_id,kind,amount,currency,payment_id"
        )
        assert (
            lines[-1]
            == "2026-11-24,10:00:00+1100,p1,Ada Lovelace,member,m1,refund,-30.00,AUD,pay06"
        )


class TestAccountingExportProperties:
    """The export is the ledger's collected money, and equals Total Revenue."""

    @DATASETS
    @given(dataset=sps.datasets(), data=st.data())
    def test_totals_equal_dashboard_revenue(
        self, dataset: sps.Dataset, data: st.DataObject
    ) -> None:
        """Per currency, the export's total equals dashboard(...).revenue for the same range."""
        store = store_of(dataset.objects())
        window, now = data.draw(ranges_and_now(dataset))
        ids = [p.id for p in dataset.practices]
        report = accounting_export(store, date_range=window, now=now)
        board = dashboard(store, practices=ids, date_range=window, now=now)
        for currency, kpi in board.revenue.items():
            assert report.totals.get(currency, Money.zero(currency)) == kpi.value
        assert report.totals == money_sum(r.amount for r in report.rows)

    @DATASETS
    @given(dataset=sps.datasets(), data=st.data())
    def test_rows_are_the_succeeded_entries_in_the_cut_range(
        self, dataset: sps.Dataset, data: st.DataObject
    ) -> None:
        """Every succeeded entry before now in the range, once, dated in its practice's zone."""
        store = store_of(dataset.objects())
        window, now = data.draw(ranges_and_now(dataset))
        report = accounting_export(store, date_range=window, now=now)
        expected = {
            p.id: p for p in dataset.payments if p.succeeded and p.at in window and p.at < now
        }
        assert sorted(r.payment_id for r in report.rows) == sorted(expected)
        zones = timezone_of(dataset)
        for r in report.rows:
            p = expected[r.payment_id]
            assert r.date == local_day(p.at, zones[p.practice_id])
            assert r.amount == p.signed
            assert (r.source, r.source_id) == p.source


# -- instalment forecast ------------------------------------------------------------------------


class TestInstalmentForecast:
    """The worked example: only Active plans, bucket by bucket."""

    def test_december_to_february(self, bondi: InMemoryStore) -> None:
        """pp2's 100.00 each month; pp1 (Failed) and pp4 (Pending) are not forecast."""
        quarter = DateRange.custom(date(2026, 12, 1), date(2027, 2, 28), timezone=SYDNEY)
        report = instalment_forecast(bondi, date_range=quarter)
        assert [(r.bucket, r.instalments, r.amount) for r in report.rows] == [
            (date(2026, 12, 1), 1, aud("100")),
            (date(2027, 1, 1), 1, aud("100")),
            (date(2027, 2, 1), 1, aud("100")),
        ]
        assert report.totals == {AUD: aud("300")}

    def test_buckets_by_week_include_empty_ones(self, bondi: InMemoryStore) -> None:
        """Weekly buckets of December: the first day holds pp2's instalment, the rest are zero."""
        december = DateRange.custom(date(2026, 12, 1), date(2026, 12, 31), timezone=SYDNEY)
        report = instalment_forecast(bondi, date_range=december, unit=Unit.WEEK)
        assert [r.bucket for r in report.rows] == [
            date(2026, 12, 1),
            date(2026, 12, 7),
            date(2026, 12, 14),
            date(2026, 12, 21),
            date(2026, 12, 28),
        ]
        assert [r.instalments for r in report.rows] == [1, 0, 0, 0, 0]

    def test_last_day_of_a_whole_day_range_is_included(self, bondi: InMemoryStore) -> None:
        """A range ending on 1 December includes the instalment due that day."""
        one_day = DateRange.custom(date(2026, 12, 1), date(2026, 12, 1), timezone=SYDNEY)
        assert instalment_forecast(bondi, date_range=one_day).totals == {AUD: aud("100")}


class TestInstalmentForecastProperties:
    """The forecast is the Active plans' unpaid schedule inside the range."""

    @DATASETS
    @given(
        dataset=sps.datasets(),
        data=st.data(),
        days=st.integers(0, 400),
        unit=st.sampled_from([Unit.WEEK, Unit.MONTH, Unit.QUARTER]),
    )
    def test_totals_are_the_unpaid_instalments_due_in_the_range(
        self, dataset: sps.Dataset, data: st.DataObject, days: int, unit: Unit
    ) -> None:
        """Totals and counts equal the unpaid instalments of Active plans due inside the range."""
        store = store_of(dataset.objects())
        tz = data.draw(st.sampled_from(sorted({p.timezone for p in dataset.practices})))
        first = local_day(data.draw(sps.boundaries(dataset)), tz)
        last = first + timedelta(days=days)
        window = DateRange.custom(first, last, timezone=tz)
        report = instalment_forecast(store, date_range=window, unit=unit)
        due = [
            i
            for p in dataset.payment_plans
            if p.status is PaymentPlanStatus.ACTIVE
            for i in p.schedule[p.paid_count :]
            if first <= i.due_date <= last
        ]
        assert nonzero(report.totals) == nonzero(money_sum(i.amount for i in due))
        assert sum(r.instalments for r in report.rows) == len(due)
        buckets = window.buckets(unit)
        assert len(report.rows) == len(buckets) * len(dataset.practices)
        for r in report.rows:
            assert first <= r.bucket <= last


# -- records and CSV ----------------------------------------------------------------------------


REPORTS: dict[str, Callable[[InMemoryStore, datetime], Any]] = {
    "referral_tracking": lambda s, now: referral_tracking(s, revenue_range=_last_30(now)),
    "membership_list": lambda s, now: membership_list(s, as_of=now),
    "payment_plan_list": lambda s, now: payment_plan_list(s, as_of=now),
    "aged_receivables": lambda s, now: aged_receivables(s, at=now),
    "cohort_retention": lambda s, now: cohort_retention(s, now=now),
    "staff_attribution": lambda s, now: staff_attribution(s, date_range=_last_30(now), now=now),
    "accounting_export": lambda s, now: accounting_export(s, date_range=_last_30(now), now=now),
    "instalment_forecast": lambda s, now: instalment_forecast(
        s, date_range=DateRange(now, now + timedelta(days=180), "UTC")
    ),
}


def _last_30(now: datetime) -> DateRange:
    """The 30 days (in UTC) up to ``now``."""
    return DateRange(now - timedelta(days=30), now, "UTC")


class TestRecordsAndCsv:
    """Every report gives plain records keyed by its columns, and CSV with a header."""

    @pytest.mark.parametrize("name", sorted(REPORTS))
    @pytest.mark.parametrize("where", ["bondi", "demo"])
    def test_records_and_csv(self, name: str, where: str, request: pytest.FixtureRequest) -> None:
        """to_records() keys equal ROW.COLUMNS; to_csv writes a header and a line per row."""
        store = request.getfixturevalue(where)
        now = NOW if where == "bondi" else DEMO_NOW
        report = REPORTS[name](store, now)
        records = report.to_records()
        assert len(records) == len(report.rows) > 0
        assert all(tuple(r) == report.ROW.COLUMNS for r in records)
        for r in records:
            assert all(v is None or isinstance(v, str | int | bool | Decimal) for v in r.values())
        out = io.StringIO()
        report.to_csv(out)
        lines = out.getvalue().splitlines()
        assert lines[0] == ",".join(report.ROW.COLUMNS)
        assert len(lines) == 1 + len(report.rows)
        parsed = list(csv.DictReader(io.StringIO(out.getvalue())))
        assert parsed == [{k: "" if v is None else str(v) for k, v in r.items()} for r in records]

    def test_summaries_are_records_too(self, bondi: InMemoryStore) -> None:
        """Conversion summaries give records keyed by their columns, the rate included."""
        summary = referral_tracking(bondi).by_campaign[0]
        assert summary.record() == {
            "key": "c1",
            "name": "Refer a friend",
            "referrals": 2,
            "conversions": 2,
            "conversion_rate": Decimal("100.00"),
            "sign_ups": 2,
            "revenue": None,
            "discount_given": None,
            "currency": AUD,
        }

    @pytest.mark.parametrize("where", ["bondi", "demo"])
    def test_weekly_check_records(self, where: str, request: pytest.FixtureRequest) -> None:
        """Each section of the weekly check is keyed by its row's columns."""
        store = request.getfixturevalue(where)
        check = weekly_check(store, now=NOW if where == "bondi" else DEMO_NOW)
        records = check.to_records()
        columns = {
            "failed_plans": FailedPlan.COLUMNS,
            "overdue_members": MembershipRow.COLUMNS,
            "converted_referrals": ConvertedReferral.COLUMNS,
            "recovered_revenue": RecoveryRow.COLUMNS,
        }
        assert set(records) == set(columns)
        for section, rows in records.items():
            assert all(tuple(r) == columns[section] for r in rows)
        assert len(records["failed_plans"]) == len(check.failed_plans) > 0

    def test_none_is_an_empty_csv_field(self, bondi: InMemoryStore) -> None:
        """A row without a campaign writes empty fields; every line ends in a bare newline."""
        out = io.StringIO()
        referral_tracking(bondi, campaigns=None, users=["s1"]).to_csv(out)
        assert out.getvalue() == (
            "referral_id,account_holder,dependents,start_date,campaign,user,status,practice,"
            "converted_at\n"
            "r1,Alan Turing,0,2026-09-10,Refer a friend,Dr Nguyen,converted,p1,"
            "2026-09-13T23:00:00+00:00\n"
            "r4,Margaret Hamilton,0,2026-10-12,,Dr Nguyen,cancelled,p1,\n"
        )


class TestCsvInjection:
    """CSV exports neutralise text a spreadsheet would run as a formula (OWASP)."""

    @given(text=st.text(max_size=20))
    def test_neutralised_text_never_starts_a_formula_and_keeps_the_text(self, text: str) -> None:
        """neutralised() adds one ``'`` exactly when the text starts with a trigger."""
        safe = neutralised(text)
        assert not safe.startswith(FORMULA_TRIGGERS)
        assert safe == ("'" + text if text.startswith(FORMULA_TRIGGERS) else text)

    @pytest.mark.parametrize("trigger", FORMULA_TRIGGERS)
    def test_a_hostile_name_is_written_as_text(self, trigger: str) -> None:
        """A member named like a formula is exported with a leading quote; with
        neutralise_formulas=False the name is written as it is."""
        name = trigger + 'HYPERLINK("http://evil.example","click")'
        member = _enrol("m9", name, "essential", local(7, 1))
        report = membership_list(store_of([*bondi_setup(), member]), as_of=NOW)
        safe, raw = io.StringIO(), io.StringIO()
        report.to_csv(safe)
        report.to_csv(raw, neutralise_formulas=False)
        [row] = list(csv.DictReader(io.StringIO(safe.getvalue())))
        assert row["account_holder"] == "'" + name
        [row] = list(csv.DictReader(io.StringIO(raw.getvalue())))
        assert row["account_holder"] == name

    def test_numbers_are_never_touched(self, bondi: InMemoryStore) -> None:
        """Only text cells change: amounts, counts and dates are written as before."""
        report = accounting_export(bondi, date_range=_last_30(NOW), now=NOW)
        safe, raw = io.StringIO(), io.StringIO()
        report.to_csv(safe)
        report.to_csv(raw, neutralise_formulas=False)
        assert safe.getvalue() == raw.getvalue()


# -- refusals -----------------------------------------------------------------------------------


ALL_REPORTS: dict[str, Callable[..., Any]] = {
    "referral_tracking": lambda s, **kw: referral_tracking(s, **kw),
    "membership_list": lambda s, **kw: membership_list(s, as_of=NOW, **kw),
    "payment_plan_list": lambda s, **kw: payment_plan_list(s, as_of=NOW, **kw),
    "weekly_check": lambda s, **kw: weekly_check(s, now=NOW, **kw),
    "aged_receivables": lambda s, **kw: aged_receivables(s, at=NOW, **kw),
    "cohort_retention": lambda s, **kw: cohort_retention(s, now=NOW, **kw),
    "staff_attribution": lambda s, **kw: staff_attribution(s, date_range=NOVEMBER, now=NOW, **kw),
    "accounting_export": lambda s, **kw: accounting_export(s, date_range=NOVEMBER, now=NOW, **kw),
    "instalment_forecast": lambda s, **kw: instalment_forecast(s, date_range=NOVEMBER, **kw),
}


class TestRefusals:
    """Bad inputs raise clear errors naming what is wrong."""

    def test_unknown_campaign(self, bondi: InMemoryStore) -> None:
        """An unknown campaign id in the filter raises NotFound naming campaigns."""
        with pytest.raises(NotFound, match="campaigns") as caught:
            referral_tracking(bondi, campaigns=["c9"])
        assert (caught.value.field, caught.value.id) == ("campaigns", "c9")

    def test_campaign_of_another_practice(self) -> None:
        """A campaign of a practice not asked for is not found either."""
        other = [
            Practice("p2", "Manly Dental", SYDNEY, AUD),
            Campaign("c-p2", "p2", "Elsewhere", "ELSE", local(1, 1)),
        ]
        store = store_of([*bondi_objects(), *other])
        with pytest.raises(NotFound, match="campaigns"):
            referral_tracking(store, practices="p1", campaigns=["c-p2"])
        assert referral_tracking(store, campaigns=["c-p2"]).rows == ()

    def test_unknown_user(self, bondi: InMemoryStore) -> None:
        """An unknown staff user id in the filter raises NotFound naming users."""
        with pytest.raises(NotFound, match="users") as caught:
            referral_tracking(bondi, users=["s9"])
        assert caught.value.field == "users"

    def test_unknown_membership_plan(self, bondi: InMemoryStore) -> None:
        """An unknown membership plan id in the filter raises NotFound naming plans."""
        with pytest.raises(NotFound, match="plans"):
            membership_list(bondi, as_of=NOW, plans=["gold"])

    @pytest.mark.parametrize("name", sorted(ALL_REPORTS))
    def test_unknown_practice(self, bondi: InMemoryStore, name: str) -> None:
        """Every report refuses a practice id the store does not know."""
        with pytest.raises(NotFound, match="p9"):
            ALL_REPORTS[name](bondi, practices=["p1", "p9"])

    @pytest.mark.parametrize("name", sorted(ALL_REPORTS))
    def test_no_practice(self, bondi: InMemoryStore, name: str) -> None:
        """Every report refuses an empty selection of practices."""
        with pytest.raises(InvalidValue, match="practices"):
            ALL_REPORTS[name](bondi, practices=[])

    @pytest.mark.parametrize(
        "edges", [(60, 30), (30, 30), (0, 30), (-5, 30), (True, 60), (), (30.0, 60), ("30",)]
    )
    def test_bad_bucket_edges(self, bondi: InMemoryStore, edges: Any) -> None:
        """Edges that are not increasing whole days of at least 1 raise InvalidValue."""
        with pytest.raises(InvalidValue, match="edges") as caught:
            aged_receivables(bondi, at=NOW, edges=edges)
        assert caught.value.field == "edges"

    def test_date_range_end_before_start(self) -> None:
        """A range whose end is before its start raises InvalidPeriod."""
        with pytest.raises(InvalidPeriod, match="end"):
            DateRange(local(11, 30), local(11, 1), SYDNEY)
        with pytest.raises(InvalidPeriod, match="last_day"):
            DateRange.custom(date(2026, 11, 30), date(2026, 11, 1), timezone=SYDNEY)

    def test_start_dates_reversed(self, bondi: InMemoryStore) -> None:
        """start_until before start_from raises InvalidValue naming start_until."""
        with pytest.raises(InvalidValue, match="start_until") as caught:
            referral_tracking(bondi, start_from=date(2026, 11, 1), start_until=date(2026, 10, 1))
        assert caught.value.field == "start_until"

    def test_unknown_sort_column(self, bondi: InMemoryStore) -> None:
        """A column the list cannot sort by raises InvalidValue naming column."""
        with pytest.raises(InvalidValue, match="column"):
            payment_plan_list(bondi, as_of=NOW, order=Order(["colour"]))

    def test_unknown_status(self, bondi: InMemoryStore) -> None:
        """A status string that names no status raises UnknownStatus."""
        with pytest.raises(UnknownStatus):
            referral_tracking(bondi, statuses={"won"})

    def test_naive_now(self, bondi: InMemoryStore) -> None:
        """A naive instant is refused."""
        with pytest.raises(InvalidValue, match="at"):
            aged_receivables(bondi, at=datetime(2026, 11, 25, 16))


# -- point in time ------------------------------------------------------------------------------


def stood_at(ds: sps.Dataset, t: datetime) -> list[object]:
    """The objects of ``ds`` as they stood at ``t``, cut by hand (not with ``as_of``):
    everything stamped after ``t`` removed, and objects created after it left out."""
    objects: list[object] = [*ds.practices, *ds.staff_users, *ds.membership_plans, *ds.campaigns]
    objects += ds.payment_plan_templates
    for m in ds.members:
        if m.created_at <= t:
            objects.append(attrs.evolve(m, history=[c for c in m.history if c.at <= t]))
    for p in ds.payment_plans:
        if p.created_at <= t:
            archived = p.archived_at if p.archived_at and p.archived_at <= t else None
            objects.append(
                attrs.evolve(
                    p,
                    history=[c for c in p.history if c.at <= t],
                    attempts=[a for a in p.attempts if a.at <= t],
                    archived_at=archived,
                )
            )
    for r in ds.referrals:
        if r.created_at <= t:
            history = [c for c in r.history if c.at <= t]
            converted = history[-1].to is ReferralStatus.CONVERTED
            objects.append(
                attrs.evolve(r, history=history, member_id=r.member_id if converted else None)
            )
    return objects + [p for p in ds.payments if p.at <= t]


def in_order(ds: sps.Dataset) -> sps.Dataset:
    """``ds`` without what refers to a member or plan created after it (which the
    generator allows): a payment stamped before its source, a plan offered or a referral
    made before its member, a referral converted before its member was enrolled. Cut
    at such an instant, the reference would be kept and its target not."""
    made = {m.id: m.created_at for m in ds.members}

    def before(id: str | None, at: datetime) -> bool:
        return id is None or made[id] <= at

    plans = [p for p in ds.payment_plans if before(p.member_id, p.created_at)]
    made |= {p.id: p.created_at for p in plans}
    referrals = [
        r
        for r in ds.referrals
        if before(r.referring_member_id, r.created_at)
        and before(r.member_id, r.converted_at or r.created_at)
    ]
    payments, net = [], Counter[str]()
    for p in ds.payments:  # a refund is kept only while what it refunds is
        source = p.source[1]
        if source in made and made[source] <= p.at and p.signed.minor + net[source] >= 0:
            payments.append(p)
            net[source] += p.signed.minor
    return attrs.evolve(ds, payment_plans=plans, referrals=referrals, payments=payments)


#: The reports that take an instant, each asked at ``t`` with ``grace`` days where it has them.
AT_AN_INSTANT: dict[str, Callable[[Any, datetime, int], Any]] = {
    "membership_list": lambda s, t, g: membership_list(s, as_of=t, grace_days=g),
    "membership_list_overdue": lambda s, t, g: membership_list(
        s, as_of=t, grace_days=g, overdue=True, statuses=["failed", "active"]
    ),
    "payment_plan_list": lambda s, t, g: payment_plan_list(s, as_of=t, grace_days=g),
    "payment_plan_list_filtered": lambda s, t, g: payment_plan_list(
        s, as_of=t, statuses=["active", "completed"], archived=False
    ),
    "aged_receivables": lambda s, t, g: aged_receivables(s, at=t),
    "weekly_check": lambda s, t, g: weekly_check(s, now=t, grace_days=g),
    "cohort_retention": lambda s, t, g: cohort_retention(s, now=t),
    "staff_attribution": lambda s, t, g: staff_attribution(
        s, date_range=DateRange(t - timedelta(days=400), t + timedelta(days=9), "UTC"), now=t
    ),
    "accounting_export": lambda s, t, g: accounting_export(
        s, date_range=DateRange(t - timedelta(days=400), t + timedelta(days=9), "UTC"), now=t
    ),
    "referral_tracking": lambda s, t, g: referral_tracking(
        s,
        as_of=t,
        statuses=["converted", "pending"],
        revenue_range=DateRange(t - timedelta(days=90), t + timedelta(days=9), "UTC"),
    ),
    "instalment_forecast": lambda s, t, g: instalment_forecast(
        s, as_of=t, date_range=DateRange(t - timedelta(days=30), t + timedelta(days=700), "UTC")
    ),
}


class TestPointInTime:
    """A report asked at instant t from today's data equals the same report asked at t
    from the data as it stood at t: reports are point-in-time by construction."""

    @DATASETS
    @given(dataset=sps.datasets(), data=st.data(), grace=st.integers(0, 5))
    def test_today_s_data_answers_for_the_past(
        self, dataset: sps.Dataset, data: st.DataObject, grace: int
    ) -> None:
        """Every report of AT_AN_INSTANT, at a boundary of the data."""
        dataset = in_order(dataset)
        t = data.draw(sps.boundaries(dataset))
        today, past = store_of(dataset.objects()), store_of(stood_at(dataset, t))
        failed = []
        for name, ask in AT_AN_INSTANT.items():
            now, then = ask(today, t, grace), ask(past, t, grace)
            if now != then:
                failed.append(name)
        assert not failed, failed

    def test_a_currency_with_nothing_in_it_is_absent_from_money_totals(
        self, bondi: InMemoryStore
    ) -> None:
        """On 1 July, before any plan was due: no overdue or receivable currency at all,
        while the outstanding balance of the one plan offered is listed."""
        t = local(7, 15)
        assert membership_list(bondi, as_of=t).total_overdue == {}
        plans = payment_plan_list(bondi, as_of=t)
        assert plans.overdue == {}
        assert plans.outstanding == {AUD: aud("600")}
        assert aged_receivables(bondi, at=t).totals == {}
        june = DateRange.custom(date(2026, 6, 1), date(2026, 6, 30), timezone=SYDNEY)
        assert accounting_export(bondi, date_range=june, now=t).totals == {}


class TestListsSortLikeTheStores:
    """A list sorted by a column it shares with its store's `find` (same meaning) comes in
    the same order: names ignoring case, progression by the paid fraction, None last."""

    SHARED: ClassVar[dict[str, list[str]]] = {
        "payment_plans": ["patient", "progression", "balance", "status", "practice"],
        "members": ["account_holder", "dependents", "status", "start_date", "practice"],
    }

    @DATASETS
    @given(dataset=sps.datasets(), data=st.data())
    def test_the_same_order(self, dataset: sps.Dataset, data: st.DataObject) -> None:
        dataset = attrs.evolve(
            dataset,
            members=[
                attrs.evolve(m, account_holder=attrs.evolve(m.account_holder, name=name))
                for m, name in zip(
                    dataset.members,
                    data.draw(
                        st.lists(
                            st.sampled_from(["ada", "Ada", "bob", "Bob", "ÅSA"]),
                            min_size=len(dataset.members),
                            max_size=len(dataset.members),
                        )
                    ),
                    strict=True,
                )
            ],
        )
        store = store_of(dataset.objects())
        t = data.draw(after_everything(dataset))
        kind = data.draw(st.sampled_from(sorted(self.SHARED)))
        key = data.draw(st.sampled_from(self.SHARED[kind]))
        order = Order([data.draw(st.sampled_from([key, f"-{key}"]))])
        if kind == "members":
            rows = [r.member_id for r in membership_list(store, as_of=t, order=order).rows]
            found = [m.id for m in store.members.find(MemberQuery(), order=order)]
        else:
            rows = [r.payment_plan_id for r in payment_plan_list(store, as_of=t, order=order).rows]
            found = [p.id for p in store.payment_plans.find(PaymentPlanQuery(), order=order)]
        assert rows == found
