"""Unpaid charges and amounts overdue: what a member owes, charge by charge."""

import functools
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smilepass_core import BillingCycle, Member, MembershipPlan, Money, Patient
from smilepass_core.domain import (
    Instalment,
    Payment,
    PaymentKind,
    PaymentOutcome,
    PaymentPlan,
    PaymentType,
)
from smilepass_core.domain.billing import billing_statement
from smilepass_core.domain.overdue import (
    OUTLOOK_DAYS,
    DueCharge,
    amount_overdue,
    failed_since,
    is_overdue,
    last_overdue_due_date,
    latest_overdue_day,
    overdue_instalments,
    overdue_outlook,
    overdue_outlook_at,
    unpaid_charges,
)
from smilepass_core.errors import InvalidValue
from smilepass_core.periods import local_day, local_midnight
from smilepass_core.testing import strategies as sps

SYDNEY = "Australia/Sydney"
PLAN = MembershipPlan("gold", "p1", "Gold", Money.of("30", "AUD"), BillingCycle.MONTHLY)
MICRO = timedelta(microseconds=1)


def aud(amount: str) -> Money:
    return Money.of(amount, "AUD")


def _braces(
    *, id: str = "pp1", member_id: str | None = "m1", first_due: date = date(2026, 4, 10)
) -> PaymentPlan:
    """An Active plan of three monthly instalments of 100 AUD from ``first_due``."""
    at = datetime(2026, 1, 5, tzinfo=UTC)
    return PaymentPlan.offer(
        id=id,
        practice_id="p1",
        patient=Patient("pat1", "Ada Lovelace"),
        total=aud("300"),
        payment_type=PaymentType.PLAN,
        instalments=3,
        first_due=first_due,
        at=at,
        member_id=member_id,
    ).activate(at=at)


def _member(*, fail_at: datetime | None = None) -> Member:
    start = datetime(2026, 1, 10, tzinfo=UTC)
    member = Member.enrol(
        id="m1",
        practice_id="p1",
        plan_id="gold",
        account_holder=Patient("pat1", "Ada Lovelace"),
        start_date=date(2026, 1, 10),
        at=start,
    ).activate(at=start)
    return member if fail_at is None else member.fail(at=fail_at)


def _charge(id: str, at: datetime, *, ok: bool = True, amount: str = "30") -> Payment:
    outcome = PaymentOutcome.SUCCEEDED if ok else PaymentOutcome.FAILED
    return Payment(id, "p1", aud(amount), PaymentKind.CHARGE, outcome, at, member_id="m1")


#: The January, February and March charges (10th of each month), paid.
PAID_TO_MARCH = [
    _charge(f"c{k}", datetime(2026, month, 10, 1, tzinfo=UTC)) for k, month in enumerate((1, 2, 3))
]
#: The April charge, failed (noon on 10 April in Sydney).
APRIL_FAILED = _charge("c-apr", datetime(2026, 4, 10, 2, tzinfo=UTC), ok=False)
CATALOGUE = {"gold": PLAN}


def _members_of(
    dataset: sps.Dataset,
) -> Iterator[tuple[Member, str, list[PaymentPlan], list[Payment], dict[str, Any]]]:
    """Each member of ``dataset`` with their practice's time zone, the payment plans they
    hold, their ledger and the rest of what ``is_overdue`` reads (keyword arguments)."""
    zones = {p.id: p.timezone for p in dataset.practices}
    catalogue = {p.id: p for p in dataset.membership_plans}
    for m in dataset.members:
        plans = [p for p in dataset.payment_plans if p.member_id == m.id]
        ledger = [p for p in dataset.payments if p.member_id == m.id]
        yield (
            m,
            zones[m.practice_id],
            plans,
            ledger,
            {"membership_plans": catalogue, "payments": ledger},
        )


class TestUnpaidCharges:
    """A membership's unpaid charges are its billing dates due and not settled by the
    ledger, while Pending, Active or Failed: failed or never attempted alike."""

    def test_a_member_who_paid_everything_owes_nothing(self) -> None:
        """Every billing date up to 1 April was paid: nothing is unpaid or overdue."""
        at = datetime(2026, 4, 1, tzinfo=UTC)
        context = {"membership_plans": CATALOGUE, "payments": PAID_TO_MARCH}
        assert unpaid_charges(_member(), at=at, timezone=SYDNEY, **context) == ()
        assert amount_overdue(_member(), at=at, timezone=SYDNEY, **context) is None

    def test_the_failed_charge_and_every_later_billing_date_are_owed(self) -> None:
        """April failed; May and June were never attempted: all three owed on 15 June."""
        member = _member(fail_at=APRIL_FAILED.at)
        at = datetime(2026, 6, 15, tzinfo=UTC)
        ledger = [*PAID_TO_MARCH, APRIL_FAILED]
        charges = unpaid_charges(
            member, at=at, timezone=SYDNEY, membership_plans=CATALOGUE, payments=ledger
        )
        assert [c.due_date for c in charges] == [
            date(2026, 4, 10),
            date(2026, 5, 10),
            date(2026, 6, 10),
        ]
        assert all(c.source == ("member", "m1") and c.amount == PLAN.price for c in charges)
        owed = amount_overdue(
            member, at=at, timezone=SYDNEY, membership_plans=CATALOGUE, payments=ledger
        )
        assert owed == aud("90")

    def test_an_active_member_never_charged_owes_every_billing_date(self) -> None:
        """Nothing in the ledger: an Active member owes January to April on 15 April."""
        charges = unpaid_charges(
            _member(),
            at=datetime(2026, 4, 15, tzinfo=UTC),
            timezone=SYDNEY,
            membership_plans=CATALOGUE,
        )
        assert [c.due_date.month for c in charges] == [1, 2, 3, 4]

    def test_each_date_is_owed_at_the_plan_of_its_day(self) -> None:
        """Failed on 10 April on Gold (30), moved to Platinum (50) on 20 April while
        Failed: on 15 June April is owed at 30, May and June at 50, as the billing
        statement prices them."""
        platinum = attrs.evolve(PLAN, id="platinum", name="Platinum", price=aud("50"))
        member = _member(fail_at=APRIL_FAILED.at)
        member = member.change_plan("platinum", at=datetime(2026, 4, 20, tzinfo=UTC))
        at = datetime(2026, 6, 15, tzinfo=UTC)
        plans = {p.id: p for p in (PLAN, platinum)}
        ledger = [*PAID_TO_MARCH, APRIL_FAILED]
        context = {"membership_plans": plans, "payments": ledger}
        charges = unpaid_charges(member, at=at, timezone=SYDNEY, **context)
        assert [(c.due_date.month, c.amount) for c in charges] == [
            (4, aud("30")),
            (5, aud("50")),
            (6, aud("50")),
        ]
        statement = billing_statement(member, platinum, ledger, at=at, timezone=SYDNEY, plans=plans)
        priced = {c.due_date: c.outstanding for c in statement.charges}
        assert all(priced[c.due_date] == c.amount for c in charges)
        assert amount_overdue(member, at=at, timezone=SYDNEY, **context) == aud("130")

    def test_a_part_payment_leaves_the_rest_owed(self) -> None:
        """12.50 of April's 30 paid: 17.50 of it is owed."""
        part = _charge("c-part", datetime(2026, 4, 11, tzinfo=UTC), amount="12.50")
        charges = unpaid_charges(
            _member(),
            at=datetime(2026, 4, 20, tzinfo=UTC),
            timezone=SYDNEY,
            membership_plans=CATALOGUE,
            payments=[*PAID_TO_MARCH, part],
        )
        assert charges == (DueCharge(("member", "m1"), date(2026, 4, 10), aud("17.50")),)

    def test_a_grace_period_delays_the_amount_overdue(self) -> None:
        """Two days after failing, a three-day grace period leaves nothing overdue yet."""
        member = _member(fail_at=APRIL_FAILED.at)
        at = datetime(2026, 4, 12, 2, tzinfo=UTC)
        context = {"membership_plans": CATALOGUE, "payments": [*PAID_TO_MARCH, APRIL_FAILED]}
        assert amount_overdue(member, at=at, timezone=SYDNEY, grace_days=3, **context) is None
        assert amount_overdue(member, at=at, timezone=SYDNEY, **context) == aud("30")

    def test_days_past_due_count_whole_local_days(self) -> None:
        """A charge due on 10 April is 0 days past due that day and 5 days on the 15th."""
        charge = DueCharge(("member", "m1"), date(2026, 4, 10), PLAN.price)
        assert charge.days_past_due(date(2026, 4, 10)) == 0
        assert charge.days_past_due(date(2026, 4, 15)) == 5

    def test_a_billing_date_falling_today_is_owed_from_its_local_midnight(self) -> None:
        """Failed in April: the 10 June charge is owed from Sydney's midnight starting 10 June."""
        member = _member(fail_at=APRIL_FAILED.at)
        edge = local_midnight(date(2026, 6, 10), SYDNEY)
        context = {"membership_plans": CATALOGUE, "payments": [*PAID_TO_MARCH, APRIL_FAILED]}
        before = unpaid_charges(member, at=edge - MICRO, timezone=SYDNEY, **context)
        assert [c.due_date for c in before] == [date(2026, 4, 10), date(2026, 5, 10)]
        charges = unpaid_charges(member, at=edge, timezone=SYDNEY, **context)
        assert charges == (
            DueCharge(("member", "m1"), date(2026, 4, 10), PLAN.price),
            DueCharge(("member", "m1"), date(2026, 5, 10), PLAN.price),
            DueCharge(("member", "m1"), date(2026, 6, 10), PLAN.price),
        )

    @pytest.mark.parametrize("later", ["suspend", "cancel"])
    def test_a_suspended_or_cancelled_membership_is_not_collected(self, later: str) -> None:
        """Its unpaid charges are Expired or Cancelled invoices: none is listed."""
        member = getattr(_member(fail_at=APRIL_FAILED.at), later)(
            at=datetime(2026, 4, 20, tzinfo=UTC)
        )
        charges = unpaid_charges(
            member,
            at=datetime(2026, 6, 15, tzinfo=UTC),
            timezone=SYDNEY,
            membership_plans=CATALOGUE,
            payments=[*PAID_TO_MARCH, APRIL_FAILED],
        )
        assert charges == ()

    @pytest.mark.parametrize("timezone", ["Pacific/Kiritimati", "Pacific/Pago_Pago"])
    def test_an_instalment_is_owed_from_the_local_midnight_of_its_due_date(
        self, timezone: str
    ) -> None:
        """An instalment due 10 April is owed from the local midnight starting 10 April."""
        plan = _braces()
        edge = local_midnight(date(2026, 4, 10), timezone)
        assert unpaid_charges(None, [plan], at=edge - MICRO, timezone=timezone) == ()
        assert unpaid_charges(None, [plan], at=edge, timezone=timezone) == (
            DueCharge(("payment_plan", "pp1"), date(2026, 4, 10), aud("100"), 1),
        )

    def test_instalments_are_judged_as_the_plan_stood_at_the_instant(self) -> None:
        """An instalment paid, or a plan cancelled, after ``at`` was still owed at ``at``."""
        plan = _braces()
        at = datetime(2026, 4, 15, tzinfo=UTC)
        owed = (DueCharge(("payment_plan", "pp1"), date(2026, 4, 10), aud("100"), 1),)
        paid_later = plan.record_payment(at=datetime(2026, 4, 20, tzinfo=UTC))
        cancelled_later = plan.cancel(at=datetime(2026, 4, 20, tzinfo=UTC))
        assert unpaid_charges(None, [paid_later], at=at, timezone=SYDNEY) == owed
        assert unpaid_charges(None, [cancelled_later], at=at, timezone=SYDNEY) == owed

    def test_membership_charges_need_the_membership_plan(self) -> None:
        """Without the member, only instalments are listed; without the member's plan,
        InvalidValue names ``membership_plans``."""
        member = _member(fail_at=APRIL_FAILED.at)
        plan = _braces(first_due=date(2026, 5, 1))
        at = datetime(2026, 5, 15, tzinfo=UTC)
        owed = (DueCharge(("payment_plan", "pp1"), date(2026, 5, 1), aud("100"), 1),)
        assert unpaid_charges(None, [plan], at=at, timezone=SYDNEY) == owed
        with pytest.raises(InvalidValue) as caught:
            unpaid_charges(member, [plan], at=at, timezone=SYDNEY)
        assert caught.value.field == "membership_plans"
        ledger = [*PAID_TO_MARCH, APRIL_FAILED]
        both = unpaid_charges(
            member, [plan], at=at, timezone=SYDNEY, membership_plans=CATALOGUE, payments=ledger
        )
        assert len(both) == 3

    def test_charges_are_sorted_by_due_date_then_source_then_instalment(self) -> None:
        """Charges come by due date, then source, then instalment number, whatever the order."""
        plan = _braces(member_id=None)
        same_day = attrs.evolve(
            plan,
            id="pp0",
            schedule=[Instalment(i.number, date(2026, 4, 10), i.amount) for i in plan.schedule],
        )
        member = _member(fail_at=APRIL_FAILED.at)
        at = datetime(2026, 5, 20, tzinfo=UTC)
        charges = unpaid_charges(
            member,
            [plan, same_day, same_day],
            at=at,
            timezone=SYDNEY,
            membership_plans=CATALOGUE,
            payments=[*PAID_TO_MARCH, APRIL_FAILED],
        )
        assert [(c.due_date.isoformat(), c.source[1], c.instalment) for c in charges] == [
            ("2026-04-10", "m1", None),
            ("2026-04-10", "pp0", 1),
            ("2026-04-10", "pp0", 1),
            ("2026-04-10", "pp0", 2),
            ("2026-04-10", "pp0", 2),
            ("2026-04-10", "pp0", 3),
            ("2026-04-10", "pp0", 3),
            ("2026-04-10", "pp1", 1),
            ("2026-05-10", "m1", None),
            ("2026-05-10", "pp1", 2),
        ]


class TestAmountOverdue:
    """The amount overdue adds what is unpaid of a member's overdue invoices."""

    CONTEXT: ClassVar[dict[str, Any]] = {
        "membership_plans": CATALOGUE,
        "payments": [*PAID_TO_MARCH, APRIL_FAILED],
    }

    def test_a_failed_charge_is_overdue_from_the_failure_without_grace(self) -> None:
        """With the default grace of 0, the charge is overdue at the very instant it failed."""
        member = _member(fail_at=APRIL_FAILED.at)
        at = APRIL_FAILED.at
        assert amount_overdue(member, at=at - MICRO, timezone=SYDNEY, **self.CONTEXT) is None
        assert amount_overdue(member, at=at, timezone=SYDNEY, **self.CONTEXT) == aud("30")

    def test_the_grace_period_ends_at_the_local_midnight_grace_days_later(self) -> None:
        """Failed at noon on 10 April in Sydney with 3 grace days: overdue from 13 April
        00:00 local (12 April 14:00 UTC), not 72 hours after the failure."""
        member = _member(fail_at=APRIL_FAILED.at)
        edge = datetime(2026, 4, 12, 14, tzinfo=UTC)
        assert edge == local_midnight(date(2026, 4, 13), SYDNEY)
        late = functools.partial(
            amount_overdue, member, timezone=SYDNEY, grace_days=3, **self.CONTEXT
        )
        assert late(at=edge - MICRO) is None
        assert late(at=edge) == aud("30")

    def test_every_overdue_plan_and_the_membership_add_up(self) -> None:
        """Two plans' overdue instalments and the membership's overdue charges are summed."""
        member = _member(fail_at=APRIL_FAILED.at)
        plans = [
            _braces(id="pp1", first_due=date(2026, 4, 1)),
            _braces(id="pp2", first_due=date(2026, 5, 1)),
            _braces(id="pp3", member_id="m9", first_due=date(2026, 4, 1)),
        ]
        at = datetime(2026, 5, 20, tzinfo=UTC)
        # pp1: 2 x 100, pp2: 1 x 100, membership: April and May at 30; pp3 is someone else's.
        assert amount_overdue(member, plans, at=at, timezone=SYDNEY, **self.CONTEXT) == aud("360")
        paid_up = {**self.CONTEXT, "payments": [*PAID_TO_MARCH, _charge("c-all", at, amount="60")]}
        assert amount_overdue(member, plans, at=at, timezone=SYDNEY, **paid_up) == aud("300")


class TestGrace:
    """Grace is a whole number of days from 0 to a century; anything else is refused by
    every entry point."""

    @pytest.mark.parametrize("grace_days", [-1, True, False, 1.5, 2.0, 36_501])
    def test_grace_days_must_be_a_whole_number_of_days(self, grace_days: object) -> None:
        """A negative, bool, non-int or above-a-century grace raises InvalidValue naming
        `grace_days`."""
        member = _member(fail_at=APRIL_FAILED.at)
        at = datetime(2026, 5, 20, tzinfo=UTC)
        grace: int = grace_days  # type: ignore[assignment]
        context: dict[str, Any] = {"membership_plans": CATALOGUE}
        calls: list[Callable[[], object]] = [
            lambda: overdue_instalments(_braces(), at=at, timezone=SYDNEY, grace_days=grace),
            lambda: is_overdue(member, at=at, timezone=SYDNEY, grace_days=grace, **context),
            lambda: amount_overdue(member, at=at, timezone=SYDNEY, grace_days=grace, **context),
            lambda: is_overdue(member.cancel(at=at), at=at, timezone=SYDNEY, grace_days=grace),
        ]
        for call in calls:
            with pytest.raises(InvalidValue) as caught:
                call()
            assert caught.value.field == "grace_days"
            assert caught.value.value is grace_days
            assert caught.value.reason == "must be a whole number of days from 0 to 36,500"


class TestOverdueInstalments:
    """An instalment due on local day d is overdue from the local midnight starting d + 1."""

    def test_without_grace_an_instalment_is_overdue_from_the_midnight_after_its_due_day(
        self,
    ) -> None:
        """Due 10 April: not overdue during 10 April in Sydney, overdue from 11 April 00:00."""
        plan = _braces()
        edge = local_midnight(date(2026, 4, 11), SYDNEY)
        assert overdue_instalments(plan, at=edge - MICRO, timezone=SYDNEY) == ()
        assert overdue_instalments(plan, at=edge, timezone=SYDNEY) == (plan.schedule[0],)


class TestOutlook:
    """An outlook read once answers ``is_overdue`` at every later instant, any grace."""

    @settings(
        max_examples=max(10, settings.default.max_examples // 4),
        suppress_health_check=[*settings.default.suppress_health_check, HealthCheck.too_slow],
    )
    @given(
        dataset=sps.datasets(),
        data=st.data(),
        grace=st.integers(0, 10),
    )
    def test_it_agrees_with_is_overdue_after_the_last_event(
        self, dataset: sps.Dataset, data: st.DataObject, grace: int
    ) -> None:
        """At a random instant up to 500 days after each member's last event, with a random
        grace, the outlook answers as ``is_overdue`` does (or defers past ``through``)."""
        for m, tz, plans, _, context in _members_of(dataset):
            outlook = overdue_outlook(m, dataset.payment_plans, timezone=tz, **context)
            later = data.draw(st.integers(0, 500 * 86400).map(lambda s: timedelta(seconds=s)))
            at = outlook.since + later
            expected = is_overdue(m, plans, at=at, timezone=tz, grace_days=grace, **context)
            answer = outlook.overdue_on(local_day(at, tz), grace)
            assert answer is None or answer is expected, (m.id, at)
            unpaid = outlook.unpaid_on(local_day(at, tz))
            if outlook.through is None or local_day(at, tz) <= outlook.through:
                assert answer is expected
                assert unpaid == unpaid_charges(m, at=at, timezone=tz, **context), (m.id, at)
            else:
                assert unpaid is None

    def test_a_worked_member(self) -> None:
        """Ada paid January to March; April's charge failed on 10 April at noon in Sydney:
        overdue from that day with no grace, from 13 April with three days."""
        member = _member(fail_at=APRIL_FAILED.at)
        outlook = overdue_outlook(
            member,
            timezone=SYDNEY,
            membership_plans=CATALOGUE,
            payments=[*PAID_TO_MARCH, APRIL_FAILED],
        )
        assert outlook.since == APRIL_FAILED.at
        assert outlook.dues == ((date(2026, 4, 10), date(2026, 4, 10)),)
        assert outlook.through == date(2026, 4, 10) + timedelta(days=OUTLOOK_DAYS)
        assert outlook.overdue_on(date(2026, 4, 10)) is True
        assert outlook.overdue_on(date(2026, 4, 12), 3) is False
        assert outlook.overdue_on(date(2026, 4, 13), 3) is True
        assert outlook.overdue_on(date(2030, 1, 1)) is None
        cancelled = overdue_outlook(
            member.cancel(at=datetime(2026, 4, 20, tzinfo=UTC)), timezone=SYDNEY
        )
        assert cancelled.through is None
        assert cancelled.dues == ()
        assert cancelled.overdue_on(date(2040, 1, 1)) is False
        with pytest.raises(InvalidValue) as caught:
            overdue_outlook(member, timezone=SYDNEY)
        assert (caught.value.field, caught.value.value) == ("membership_plans", "gold")


class TestOutlookAt:
    """An outlook read as the member stood at an instant answers ``is_overdue`` and
    ``unpaid_charges`` at every instant from their latest event then to their next one."""

    @settings(
        max_examples=max(10, settings.default.max_examples // 4),
        suppress_health_check=[*settings.default.suppress_health_check, HealthCheck.too_slow],
    )
    @given(dataset=sps.datasets(), data=st.data(), grace=st.integers(0, 10))
    def test_it_agrees_with_is_overdue_between_two_events(
        self, dataset: sps.Dataset, data: st.DataObject, grace: int
    ) -> None:
        """For each member, at an event, just before one, or hours after one, the outlook
        is ``None`` exactly before their creation; else it spans that instant
        (``since <= at < until``), ``until`` is their first event after it, and at ``at``
        and at the span's first and last microsecond it answers as the whole member does
        (or, past the days it read, ``None``)."""
        for m, tz, plans, ledger, context in _members_of(dataset):
            events = sorted(
                {
                    *(c.at for c in m.history),
                    *(c.at for c in m.plan_changes),
                    *(c.at for c in m.dependent_changes),
                    *(r.at for r in m.referral_rewards),
                    *(p.at for p in ledger),
                    *(c.at for p in plans for c in p.history),
                    *(a.at for p in plans for a in p.attempts),
                }
            )
            event = data.draw(st.sampled_from(events), label="event")
            shift = data.draw(st.sampled_from([-MICRO, timedelta(0), timedelta(hours=13)]))
            at = event + shift
            outlook = overdue_outlook_at(m, dataset.payment_plans, at=at, timezone=tz, **context)
            if at < m.created_at:
                assert outlook is None
                continue
            assert outlook is not None
            assert outlook.since == max(e for e in events if e <= at)
            assert outlook.until == min((e for e in events if e > at), default=None)
            last = at if outlook.until is None else outlook.until - MICRO
            for when in (at, outlook.since, last):
                day = local_day(when, tz)
                if outlook.through is not None and day > outlook.through:
                    assert when == last  # read 400 days past ``at``'s day; ``until`` later
                    assert (outlook.overdue_on(day, grace), outlook.unpaid_on(day)) == (None, None)
                    continue
                expected = is_overdue(m, plans, at=when, timezone=tz, grace_days=grace, **context)
                assert outlook.overdue_on(day, grace) is expected, (m.id, when)
                assert outlook.unpaid_on(day) == unpaid_charges(
                    m, at=when, timezone=tz, **context
                ), (m.id, when)

    def test_a_worked_member(self) -> None:
        """Ada paid January to March; April's charge failed on 10 April at noon in Sydney
        and she paid it on 20 April. As she stood on 15 April she is overdue, until the
        payment; her outlook at 20 April on is the whole one, not overdue."""
        member = _member(fail_at=APRIL_FAILED.at)
        paid = _charge("c-apr-2", datetime(2026, 4, 20, tzinfo=UTC))
        ledger = [*PAID_TO_MARCH, APRIL_FAILED, paid]
        then = datetime(2026, 4, 15, tzinfo=UTC)
        outlook = overdue_outlook_at(
            member, at=then, timezone=SYDNEY, membership_plans=CATALOGUE, payments=ledger
        )
        assert outlook is not None
        assert (outlook.since, outlook.until) == (APRIL_FAILED.at, paid.at)
        assert outlook.overdue_on(local_day(then, SYDNEY)) is True
        assert outlook.unpaid_on(local_day(then, SYDNEY)) == (
            DueCharge(("member", "m1"), date(2026, 4, 10), aud("30")),
        )
        assert outlook.through == local_day(then, SYDNEY) + timedelta(days=OUTLOOK_DAYS)
        past = outlook.through + timedelta(days=1)  # past the days it read: no answer
        assert (outlook.overdue_on(past), outlook.unpaid_on(past)) == (None, None)
        unread = attrs.evolve(outlook, charges=None)  # charges not read: no unpaid answer
        assert unread.unpaid_on(local_day(then, SYDNEY)) is None
        after = overdue_outlook_at(
            member, at=paid.at, timezone=SYDNEY, membership_plans=CATALOGUE, payments=ledger
        )
        assert after is not None
        assert (after.since, after.until) == (paid.at, None)
        assert after.overdue_on(date(2026, 4, 20)) is False
        before = overdue_outlook_at(member, at=datetime(2026, 1, 1, tzinfo=UTC), timezone=SYDNEY)
        assert before is None


class TestDays:
    """The helpers that name the days and spells the rule counts from."""

    def test_failed_since_is_the_start_of_the_current_failed_spell(self) -> None:
        """Failed on 10 April, recovered on the 12th, failed again on 10 May."""
        first, back, again = (
            datetime(2026, 4, 10, 2, tzinfo=UTC),
            datetime(2026, 4, 12, tzinfo=UTC),
            datetime(2026, 5, 10, 2, tzinfo=UTC),
        )
        member = _member(fail_at=first).activate(at=back).fail(at=again)
        assert failed_since(member, first - MICRO) is None
        assert failed_since(member, first) == first
        assert failed_since(member, back) is None
        assert failed_since(member, again + timedelta(days=3)) == again

    def test_the_last_overdue_due_date_is_the_day_before_the_latest_overdue_day(self) -> None:
        """At noon on 16 April in Sydney with 3 grace days: a charge that fell due by 13
        April is overdue; one due (payable all day) by 12 April."""
        at = local_midnight(date(2026, 4, 16), SYDNEY) + timedelta(hours=12)
        assert latest_overdue_day(at, SYDNEY, 3) == date(2026, 4, 13)
        assert last_overdue_due_date(at, SYDNEY, 3) == date(2026, 4, 12)


class TestAttemptsBeforeTheDueDay:
    """A failed charge counts only on a charge already due when it was made."""

    def test_a_stray_failure_does_not_make_the_next_charge_overdue_early(self) -> None:
        """Everything paid to March; a charge fails on 20 March (a retry after the patient
        paid another way). April's charge, due 10 April, is not an attempt's: with 5 grace
        days it is overdue from 16 April, not on 10 April itself."""
        stray = _charge("c-stray", local_midnight(date(2026, 3, 20), SYDNEY), ok=False)
        context = {"membership_plans": CATALOGUE, "payments": [*PAID_TO_MARCH, stray]}
        member = _member()
        due_day = local_midnight(date(2026, 4, 10), SYDNEY) + timedelta(hours=1)
        assert not is_overdue(member, at=due_day, timezone=SYDNEY, grace_days=5, **context)
        edge = local_midnight(date(2026, 4, 16), SYDNEY)
        assert not is_overdue(member, at=edge - MICRO, timezone=SYDNEY, grace_days=5, **context)
        assert is_overdue(member, at=edge, timezone=SYDNEY, grace_days=5, **context)
        statement = billing_statement(
            member, PLAN, [*PAID_TO_MARCH, stray], at=due_day, timezone=SYDNEY
        )
        assert [c.attempts for c in statement.charges] == [(), (), (), ()]
