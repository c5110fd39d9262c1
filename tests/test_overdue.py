"""Unpaid charges and amounts overdue: what a member owes, charge by charge."""

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import attrs
import pytest

from smilepass_core import BillingCycle, Member, MembershipPlan, Money, Patient
from smilepass_core.domain import Instalment, PaymentPlan, PaymentType
from smilepass_core.domain.billing import billing_statement
from smilepass_core.domain.overdue import (
    DueCharge,
    amount_overdue,
    is_overdue,
    overdue_instalments,
    unpaid_charges,
)
from smilepass_core.errors import InvalidValue
from smilepass_core.periods import local_midnight

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


class TestUnpaidCharges:
    """A Failed membership owes the charge that failed and every billing date since."""

    def test_an_active_member_owes_nothing(self) -> None:
        """A member who is not Failed has no unpaid membership charges."""
        at = datetime(2026, 6, 1, tzinfo=UTC)
        assert unpaid_charges(_member(), PLAN, at=at, timezone=SYDNEY) == ()
        assert amount_overdue(_member(), PLAN, at=at, timezone=SYDNEY) is None

    def test_the_failed_charge_and_every_later_billing_date_are_owed(self) -> None:
        """Failed on 10 April (the April charge): April, May and June are owed on 15 June."""
        member = _member(fail_at=datetime(2026, 4, 10, 2, tzinfo=UTC))
        at = datetime(2026, 6, 15, tzinfo=UTC)
        charges = unpaid_charges(member, PLAN, at=at, timezone=SYDNEY)
        assert [c.due_date for c in charges] == [
            date(2026, 4, 10),
            date(2026, 5, 10),
            date(2026, 6, 10),
        ]
        assert all(c.source == ("member", "m1") and c.amount == PLAN.price for c in charges)
        assert amount_overdue(member, PLAN, at=at, timezone=SYDNEY) == Money.of("90", "AUD")

    def test_each_date_is_owed_at_the_plan_of_its_day(self) -> None:
        """Failed on 10 April on Gold (30), moved to Platinum (50) on 20 April while
        Failed: on 15 June April is owed at 30, May and June at 50, as the billing
        statement prices them."""
        platinum = attrs.evolve(PLAN, id="platinum", name="Platinum", price=aud("50"))
        member = _member(fail_at=datetime(2026, 4, 10, 2, tzinfo=UTC))
        member = member.change_plan("platinum", at=datetime(2026, 4, 20, tzinfo=UTC))
        at = datetime(2026, 6, 15, tzinfo=UTC)
        plans = {p.id: p for p in (PLAN, platinum)}
        charges = unpaid_charges(member, platinum, at=at, timezone=SYDNEY, membership_plans=plans)
        assert [(c.due_date.month, c.amount) for c in charges] == [
            (4, aud("30")),
            (5, aud("50")),
            (6, aud("50")),
        ]
        statement = billing_statement(member, platinum, [], at=at, timezone=SYDNEY, plans=plans)
        priced = {c.due_date: c.amount for c in statement.charges}
        assert all(priced[c.due_date] == c.amount for c in charges)
        owed = amount_overdue(member, platinum, at=at, timezone=SYDNEY, membership_plans=plans)
        assert owed == aud("130")
        # Without the earlier plan, or when it bills on another cycle, the plan at `at`.
        alone = unpaid_charges(member, platinum, at=at, timezone=SYDNEY)
        assert [c.amount for c in alone] == [aud("50")] * 3
        annual = attrs.evolve(PLAN, billing_cycle=BillingCycle.ANNUALLY)
        other = {"gold": annual, "platinum": platinum}
        crossed = unpaid_charges(member, platinum, at=at, timezone=SYDNEY, membership_plans=other)
        assert [c.amount for c in crossed] == [aud("50")] * 3

    def test_a_grace_period_delays_the_amount_overdue(self) -> None:
        """Two days after failing, a three-day grace period leaves nothing overdue yet."""
        member = _member(fail_at=datetime(2026, 4, 10, 2, tzinfo=UTC))
        at = datetime(2026, 4, 12, 2, tzinfo=UTC)
        assert amount_overdue(member, PLAN, at=at, timezone=SYDNEY, grace_days=3) is None
        assert amount_overdue(member, PLAN, at=at, timezone=SYDNEY) == Money.of("30", "AUD")

    def test_days_past_due_count_whole_local_days(self) -> None:
        """A charge due on 10 April is 0 days past due that day and 5 days on the 15th."""
        charge = DueCharge(("member", "m1"), date(2026, 4, 10), PLAN.price)
        assert charge.days_past_due(date(2026, 4, 10)) == 0
        assert charge.days_past_due(date(2026, 4, 15)) == 5

    def test_a_billing_date_falling_today_is_owed_from_its_local_midnight(self) -> None:
        """Failed in April: the 10 June charge is owed from Sydney's midnight starting 10 June."""
        member = _member(fail_at=datetime(2026, 4, 10, 2, tzinfo=UTC))
        edge = local_midnight(date(2026, 6, 10), SYDNEY)
        before = unpaid_charges(member, PLAN, at=edge - MICRO, timezone=SYDNEY)
        assert [c.due_date for c in before] == [date(2026, 4, 10), date(2026, 5, 10)]
        charges = unpaid_charges(member, PLAN, at=edge, timezone=SYDNEY)
        assert charges == (
            DueCharge(("member", "m1"), date(2026, 4, 10), PLAN.price),
            DueCharge(("member", "m1"), date(2026, 5, 10), PLAN.price),
            DueCharge(("member", "m1"), date(2026, 6, 10), PLAN.price),
        )

    @pytest.mark.parametrize(
        ("fail_on", "at", "owed"),
        [
            (date(2026, 1, 20), date(2026, 1, 25), [date(2026, 1, 10)]),
            (
                date(2026, 2, 5),
                date(2026, 3, 15),
                [date(2026, 1, 10), date(2026, 2, 10), date(2026, 3, 10)],
            ),
        ],
    )
    def test_the_charge_that_failed_is_the_last_billing_date_on_or_before_the_failure(
        self, fail_on: date, at: date, owed: list[date]
    ) -> None:
        """Failing between billing dates owes the last billing date before it (the start too)."""
        member = _member(fail_at=local_midnight(fail_on, SYDNEY) + timedelta(hours=12))
        charges = unpaid_charges(member, PLAN, at=local_midnight(at, SYDNEY), timezone=SYDNEY)
        assert [c.due_date for c in charges] == owed

    def test_a_member_failed_before_the_start_date_owes_the_billing_dates_from_the_start(
        self,
    ) -> None:
        """Failed on 20 April, starting 1 May: the failure day alone, then 1 May and 1 June."""
        enrolled = datetime(2026, 4, 1, tzinfo=UTC)
        member = Member.enrol(
            id="m2",
            practice_id="p1",
            plan_id="gold",
            account_holder=Patient("pat2", "Bea"),
            start_date=date(2026, 5, 1),
            at=enrolled,
        ).fail(at=local_midnight(date(2026, 4, 20), SYDNEY) + timedelta(hours=12))
        early = unpaid_charges(
            member, PLAN, at=local_midnight(date(2026, 4, 25), SYDNEY), timezone=SYDNEY
        )
        assert early == (DueCharge(("member", "m2"), date(2026, 4, 20), PLAN.price),)
        later = unpaid_charges(
            member, PLAN, at=local_midnight(date(2026, 6, 15), SYDNEY), timezone=SYDNEY
        )
        assert [c.due_date for c in later] == [date(2026, 5, 1), date(2026, 6, 1)]

    @pytest.mark.parametrize("timezone", ["Pacific/Kiritimati", "Pacific/Pago_Pago"])
    def test_an_instalment_is_owed_from_the_local_midnight_of_its_due_date(
        self, timezone: str
    ) -> None:
        """An instalment due 10 April is owed from the local midnight starting 10 April."""
        plan = _braces()
        edge = local_midnight(date(2026, 4, 10), timezone)
        assert unpaid_charges(None, None, [plan], at=edge - MICRO, timezone=timezone) == ()
        assert unpaid_charges(None, None, [plan], at=edge, timezone=timezone) == (
            DueCharge(("payment_plan", "pp1"), date(2026, 4, 10), aud("100"), 1),
        )

    def test_instalments_are_judged_as_the_plan_stood_at_the_instant(self) -> None:
        """An instalment paid, or a plan cancelled, after ``at`` was still owed at ``at``."""
        plan = _braces()
        at = datetime(2026, 4, 15, tzinfo=UTC)
        owed = (DueCharge(("payment_plan", "pp1"), date(2026, 4, 10), aud("100"), 1),)
        paid_later = plan.record_payment(at=datetime(2026, 4, 20, tzinfo=UTC))
        cancelled_later = plan.cancel(at=datetime(2026, 4, 20, tzinfo=UTC))
        assert unpaid_charges(None, None, [paid_later], at=at, timezone=SYDNEY) == owed
        assert unpaid_charges(None, None, [cancelled_later], at=at, timezone=SYDNEY) == owed

    def test_membership_charges_need_both_the_member_and_the_membership_plan(self) -> None:
        """Without the member or without the membership plan, only instalments are listed."""
        member = _member(fail_at=datetime(2026, 4, 10, 2, tzinfo=UTC))
        plan = _braces(first_due=date(2026, 5, 1))
        at = datetime(2026, 5, 15, tzinfo=UTC)
        owed = (DueCharge(("payment_plan", "pp1"), date(2026, 5, 1), aud("100"), 1),)
        assert unpaid_charges(None, PLAN, [plan], at=at, timezone=SYDNEY) == owed
        assert unpaid_charges(member, None, [plan], at=at, timezone=SYDNEY) == owed
        assert len(unpaid_charges(member, PLAN, [plan], at=at, timezone=SYDNEY)) == 3

    def test_charges_are_sorted_by_due_date_then_source_then_instalment(self) -> None:
        """Charges come by due date, then source, then instalment number, whatever the order."""
        plan = _braces(member_id=None)
        same_day = attrs.evolve(
            plan,
            id="pp0",
            schedule=[Instalment(i.number, date(2026, 4, 10), i.amount) for i in plan.schedule],
        )
        member = _member(fail_at=datetime(2026, 4, 10, 2, tzinfo=UTC))
        at = datetime(2026, 5, 20, tzinfo=UTC)
        charges = unpaid_charges(member, PLAN, [plan, same_day, same_day], at=at, timezone=SYDNEY)
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
    """The amount overdue adds a member's overdue instalments and overdue membership charges."""

    def test_a_failed_membership_is_overdue_from_the_failure_without_grace(self) -> None:
        """With the default grace of 0, the charge is overdue at the very instant it failed."""
        fail_at = datetime(2026, 4, 10, 2, tzinfo=UTC)
        member = _member(fail_at=fail_at)
        assert amount_overdue(member, PLAN, at=fail_at - MICRO, timezone=SYDNEY) is None
        assert amount_overdue(member, PLAN, at=fail_at, timezone=SYDNEY) == aud("30")

    def test_the_grace_period_ends_at_the_local_midnight_grace_days_later(self) -> None:
        """Failed at noon on 10 April in Sydney with 3 grace days: overdue from 13 April
        00:00 local (12 April 14:00 UTC), not 72 hours after the failure."""
        fail_at = datetime(2026, 4, 10, 2, tzinfo=UTC)
        member = _member(fail_at=fail_at)
        edge = datetime(2026, 4, 12, 14, tzinfo=UTC)
        assert edge == local_midnight(date(2026, 4, 13), SYDNEY)
        assert amount_overdue(member, PLAN, at=edge - MICRO, timezone=SYDNEY, grace_days=3) is None
        assert amount_overdue(member, PLAN, at=edge, timezone=SYDNEY, grace_days=3) == aud("30")

    def test_every_overdue_plan_and_the_membership_add_up(self) -> None:
        """Two plans' overdue instalments and the failed membership's charges are summed."""
        member = _member(fail_at=datetime(2026, 4, 10, 2, tzinfo=UTC))
        plans = [
            _braces(id="pp1", first_due=date(2026, 4, 1)),
            _braces(id="pp2", first_due=date(2026, 5, 1)),
            _braces(id="pp3", member_id="m9", first_due=date(2026, 4, 1)),
        ]
        at = datetime(2026, 5, 20, tzinfo=UTC)
        # pp1: 2 x 100, pp2: 1 x 100, membership: April and May at 30; pp3 is someone else's.
        assert amount_overdue(member, PLAN, plans, at=at, timezone=SYDNEY) == aud("360")
        assert amount_overdue(member, None, plans, at=at, timezone=SYDNEY) == aud("300")
        assert amount_overdue(_member(), PLAN, plans, at=at, timezone=SYDNEY) == aud("300")


class TestGrace:
    """Grace is a whole number of days >= 0; anything else is refused by every entry point."""

    @pytest.mark.parametrize("grace_days", [-1, True, False, 1.5, 2.0])
    def test_grace_days_must_be_a_whole_number_of_days(self, grace_days: object) -> None:
        """A negative, bool or non-int grace raises InvalidValue naming `grace_days`."""
        member = _member(fail_at=datetime(2026, 4, 10, 2, tzinfo=UTC))
        at = datetime(2026, 5, 20, tzinfo=UTC)
        grace: int = grace_days  # type: ignore[assignment]
        calls: list[Callable[[], object]] = [
            lambda: overdue_instalments(_braces(), at=at, timezone=SYDNEY, grace_days=grace),
            lambda: is_overdue(member, at=at, timezone=SYDNEY, grace_days=grace),
            lambda: amount_overdue(member, PLAN, at=at, timezone=SYDNEY, grace_days=grace),
        ]
        for call in calls:
            with pytest.raises(InvalidValue) as caught:
                call()
            assert caught.value.field == "grace_days"
            assert caught.value.value is grace_days
            assert caught.value.reason == "must be a whole number of days >= 0"


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
