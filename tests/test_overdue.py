"""Unpaid charges and amounts overdue: what a member owes, charge by charge."""

from datetime import UTC, date, datetime

from smilepass_core import BillingCycle, Member, MembershipPlan, Money, Patient
from smilepass_core.domain.overdue import DueCharge, amount_overdue, unpaid_charges

SYDNEY = "Australia/Sydney"
PLAN = MembershipPlan("gold", "p1", "Gold", Money.of("30", "AUD"), BillingCycle.MONTHLY)


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
