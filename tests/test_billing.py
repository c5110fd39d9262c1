"""Membership billing: the charges due (anchored, month-end safe, none while Suspended or
after Cancel), how the ledger settles them, and the dunning policy's actions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import attrs
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from billing_oracle import discounted
from smilepass_core import (
    BillingCycle,
    CurrencyMismatch,
    InvalidMoney,
    InvalidPeriod,
    InvalidValue,
    Member,
    MemberQuery,
    MembershipPlan,
    MembershipStatus,
    Money,
    Patient,
    Payment,
    PaymentKind,
    PaymentQuery,
    RuleViolation,
    ScopeQuery,
)
from smilepass_core.domain.billing import (
    BILLABLE,
    BillingStatement,
    DunningAction,
    DunningPolicy,
    DunningStep,
    billing_dates,
    billing_statement,
    bills_alike,
    check_charge_amount,
    check_charge_dates,
    check_member_repriced,
    check_membership_charge,
    check_reprice,
    check_timezone_kept,
    dunning_actions,
    first_rebilled_day,
    plan_on,
    price_at,
    price_due_at,
    priced_dates,
    replay_order,
)
from smilepass_core.domain.discounts import AppliedDiscount, Discount, price_due
from smilepass_core.domain.invoices import member_charges
from smilepass_core.domain.practices import Practice
from smilepass_core.periods import local_day, local_midnight
from smilepass_core.testing import strategies as sps

SYD = "Australia/Sydney"
AUD30 = Money.of("30.00", "AUD")


def _plan(cycle: BillingCycle = BillingCycle.MONTHLY, price: Money = AUD30) -> MembershipPlan:
    return MembershipPlan("gold", "syd", "Gold", price, cycle)


def _local(day: date, hour: int = 9) -> datetime:
    """``hour`` o'clock in Sydney on ``day``, as a UTC instant."""
    return local_midnight(day, SYD) + timedelta(hours=hour)


def _member(start: date, *, activate: bool = True) -> Member:
    member = Member.enrol(
        id="m1",
        practice_id="syd",
        plan_id="gold",
        account_holder=Patient("p1", "Ada Lovelace"),
        start_date=start,
        at=_local(start),
    )
    return member.activate(at=_local(start, 10)) if activate else member


def _active_at(at: datetime) -> Member:
    """Member ``m1`` on ``gold`` from ``at``'s UTC date, enrolled and Active at ``at``."""
    return Member.enrol(
        id="m1",
        practice_id="syd",
        plan_id="gold",
        account_holder=Patient("p1", "Ada"),
        start_date=at.date(),
        at=at,
    ).activate(at=at)


def _charge(pid: str, at: datetime, outcome: str = "succeeded", amount: Money = AUD30) -> Payment:
    return Payment(pid, "syd", amount, "charge", outcome, at, member_id="m1")


def _refund(pid: str, at: datetime, amount: Money = AUD30) -> Payment:
    return Payment(pid, "syd", amount, "refund", "succeeded", at, member_id="m1")


class TestWorkedExamples:
    """docs/domain.md's billing examples, reproduced."""

    def test_a_monthly_member_anchored_on_31_january_through_a_leap_year(self) -> None:
        """Dates clamp to each month's end without drifting: 29 Feb, 31 Mar, 30 Apr, ...;
        every charge paid on its date but April's, which failed."""
        member, plan = _member(date(2024, 1, 31)), _plan()
        dates = billing_dates(member, plan, through=date(2025, 3, 1))
        assert [str(d) for d in dates[:5]] == [
            "2024-01-31",
            "2024-02-29",
            "2024-03-31",
            "2024-04-30",
            "2024-05-31",
        ]
        assert [str(d) for d in dates[-2:]] == ["2025-01-31", "2025-02-28"]
        ledger = [_charge(f"c{k}", _local(d, 10)) for k, d in enumerate(dates[:3])]
        ledger.append(_charge("f3", _local(dates[3], 10), "failed"))
        statement = billing_statement(
            member, plan, ledger, at=_local(date(2024, 5, 10)), timezone=SYD
        )
        assert [(c.number, str(c.due_date), str(c.paid)) for c in statement.charges] == [
            (0, "2024-01-31", "AUD 30.00"),
            (1, "2024-02-29", "AUD 30.00"),
            (2, "2024-03-31", "AUD 30.00"),
            (3, "2024-04-30", "AUD 0.00"),
        ]
        assert statement.charges[3].attempts == ("f3",)
        assert (str(statement.due), str(statement.collected), str(statement.outstanding)) == (
            "AUD 120.00",
            "AUD 90.00",
            "AUD 30.00",
        )
        assert statement.next_charge_date == date(2024, 5, 31)

    def test_a_weekly_member_with_two_failed_retries_then_suspend(self) -> None:
        """The charge of 8 March fails; retries on days 1 and 3 fail too; reminders go on
        days 0 and 3; on day 14 the policy asks for Suspend."""
        member, plan = _member(date(2026, 3, 1)), _plan(BillingCycle.WEEKLY)
        policy = DunningPolicy(retry_days=(1, 3), reminder_days=(0, 3), suspend_after_days=14)
        ledger = [_charge("c0", _local(date(2026, 3, 1), 10))]
        sent: set[str] = set()

        def run(day: date) -> list[tuple[str, str]]:
            actions = dunning_actions(
                member, plan, ledger, at=_local(day, 12), timezone=SYD, policy=policy, sent=sent
            )
            for action in actions:
                if action.step in (DunningStep.CHARGE, DunningStep.RETRY):
                    ledger.append(_charge(f"f{len(ledger)}", _local(day, 12), "failed"))
                sent.add(action.key)
            return [(a.step.value, str(a.due_at.astimezone(UTC).date())) for a in actions]

        assert run(date(2026, 3, 7)) == []
        assert run(date(2026, 3, 8)) == [("charge", "2026-03-07")]  # local midnight, 8 Mar
        assert run(date(2026, 3, 8)) == [("remind", "2026-03-07")]  # its failure's day 0
        assert run(date(2026, 3, 8)) == []
        assert run(date(2026, 3, 9)) == [("retry", "2026-03-08")]
        assert run(date(2026, 3, 11)) == [("retry", "2026-03-10"), ("remind", "2026-03-10")]
        assert run(date(2026, 3, 15))[0] == ("charge", "2026-03-14")  # the next week's date
        actions = dunning_actions(
            member,
            plan,
            ledger,
            at=_local(date(2026, 3, 22), 12),
            timezone=SYD,
            policy=policy,
            sent=sent,
        )
        assert actions[-1].step is DunningStep.SUSPEND
        assert actions[-1].due_at == local_midnight(date(2026, 3, 22), SYD)
        suspended = member.suspend(at=_local(date(2026, 3, 22), 13))
        later = dunning_actions(
            suspended,
            plan,
            ledger,
            at=_local(date(2026, 4, 1)),
            timezone=SYD,
            policy=policy,
            sent=sent,
        )
        assert later == ()  # Suspended: no retries, no reminders, no new charges
        statement = billing_statement(
            suspended, plan, ledger, at=_local(date(2026, 4, 30)), timezone=SYD
        )
        assert [str(c.due_date) for c in statement.charges][-1] == "2026-03-22"
        assert statement.next_charge_date is None

    def test_an_annual_member_cancelled_mid_year(self) -> None:
        """One charge at sign-up; nothing falls due after Cancel; a refund after Cancel
        reopens the charge it returns."""
        member, plan = (
            _member(date(2025, 7, 1)),
            _plan(BillingCycle.ANNUALLY, Money.of("360", "AUD")),
        )
        cancelled = member.cancel(at=_local(date(2026, 1, 15)))
        ledger = [
            _charge("c0", _local(date(2025, 7, 1), 10), amount=Money.of("360", "AUD")),
            _refund("r1", _local(date(2026, 1, 16)), Money.of("180", "AUD")),
        ]
        statement = billing_statement(
            cancelled, plan, ledger, at=_local(date(2027, 1, 1)), timezone=SYD
        )
        assert [c.due_date for c in statement.charges] == [date(2025, 7, 1)]
        assert str(statement.charges[0].paid) == "AUD 180.00"
        assert statement.next_charge_date is None
        assert (
            dunning_actions(cancelled, plan, ledger, at=_local(date(2027, 1, 1)), timezone=SYD)
            == ()
        )


class TestRules:
    def test_no_charge_falls_due_while_suspended(self) -> None:
        """Suspended from 10 Feb to 20 Apr: 28 Feb and 28 Mar fall inside and are not due;
        28 Apr, after the resume, is."""
        member = _member(date(2026, 1, 28))
        member = member.suspend(at=_local(date(2026, 2, 10))).activate(at=_local(date(2026, 4, 20)))
        statement = billing_statement(
            member, _plan(), [], at=_local(date(2026, 5, 1)), timezone=SYD
        )
        assert [c.due_date for c in statement.charges] == [date(2026, 1, 28), date(2026, 4, 28)]

    def test_a_member_resumed_on_a_billing_day_is_charged_that_day(self) -> None:
        """Suspended 10 Feb, resumed at 09:00 on 28 Mar, a billing day: due."""
        member = _member(date(2026, 1, 28)).suspend(at=_local(date(2026, 2, 10)))
        member = member.activate(at=_local(date(2026, 3, 28)))
        statement = billing_statement(
            member, _plan(), [], at=_local(date(2026, 4, 1)), timezone=SYD
        )
        assert [c.due_date for c in statement.charges] == [date(2026, 1, 28), date(2026, 3, 28)]

    def test_a_billing_day_is_judged_at_its_local_midnight(self) -> None:
        """Suspended at 00:30 on the billing day: the charge was due at midnight."""
        member = _member(date(2026, 1, 28)).suspend(
            at=_local(date(2026, 2, 28), 0) + timedelta(minutes=30)
        )
        statement = billing_statement(
            member, _plan(), [], at=_local(date(2026, 3, 1)), timezone=SYD
        )
        assert [c.due_date for c in statement.charges] == [date(2026, 1, 28), date(2026, 2, 28)]

    def test_a_prepayment_is_credit_until_a_date_falls_due(self) -> None:
        member = _member(date(2026, 1, 28))
        ledger = [_charge("c0", _local(date(2026, 1, 28))), _charge("c1", _local(date(2026, 2, 1)))]
        early = billing_statement(
            member, _plan(), ledger, at=_local(date(2026, 2, 27)), timezone=SYD
        )
        assert (str(early.credit), early.outstanding.is_zero()) == ("AUD 30.00", True)
        due = billing_statement(member, _plan(), ledger, at=_local(date(2026, 2, 28)), timezone=SYD)
        assert (due.credit.is_zero(), due.charges[1].payments) == (True, ("c1",))

    def test_arguments_are_checked(self) -> None:
        member = _member(date(2026, 1, 28))
        with pytest.raises(InvalidValue):
            billing_statement(
                member,
                attrs.evolve(_plan(), id="silver"),
                [],
                at=_local(date(2026, 2, 1)),
                timezone=SYD,
            )
        usd = _charge("c0", _local(date(2026, 1, 28)), amount=Money.of("30", "USD"))
        with pytest.raises(CurrencyMismatch):
            billing_statement(member, _plan(), [usd], at=_local(date(2026, 2, 1)), timezone=SYD)

    def test_a_failed_refund_changes_nothing(self) -> None:
        member = _member(date(2026, 1, 28))
        ledger = [
            _charge("c0", _local(date(2026, 1, 28), 10)),
            Payment(
                "r1", "syd", AUD30, "refund", "failed", _local(date(2026, 2, 1)), member_id="m1"
            ),
        ]
        statement = billing_statement(
            member, _plan(), ledger, at=_local(date(2026, 2, 2)), timezone=SYD
        )
        assert (statement.refunded.is_zero(), statement.charges[0].settled) == (True, True)

    def test_a_ledger_refunding_more_than_it_collected_is_refused(self) -> None:
        """The stores refuse such a refund (check_refund); handed one, the statement too."""
        member = _member(date(2026, 1, 28))
        ledger = [
            _charge("c0", _local(date(2026, 1, 28), 10)),
            _refund("r1", _local(date(2026, 2, 1)), AUD30 * 2),
        ]
        with pytest.raises(RuleViolation) as caught:
            billing_statement(member, _plan(), ledger, at=_local(date(2026, 2, 2)), timezone=SYD)
        assert caught.value.rule == "refund_above_collected"

    def test_the_work_of_a_statement_is_bounded(self) -> None:
        """A weekly contract from 1900 judged in 2200 has over 15,000 billing dates."""
        member = Member.enrol(
            id="m1",
            practice_id="syd",
            plan_id="gold",
            account_holder=Patient("p1", "Ada"),
            start_date=date(1900, 1, 1),
            at=datetime(1900, 1, 1, tzinfo=UTC),
        )
        with pytest.raises(InvalidValue) as caught:
            billing_dates(member, _plan(BillingCycle.WEEKLY), through=date(2200, 1, 1))
        assert caught.value.field == "at"

    @pytest.mark.parametrize(
        "options",
        [
            {"retry_days": (3, 1)},
            {"retry_days": (1, 1)},
            {"reminder_days": (-1,)},
            {"reminder_days": (True,)},
            {"suspend_after_days": 0},
            {"cancel_after_days": 14},
            {"suspend_after_days": 20, "cancel_after_days": 10},
        ],
    )
    def test_a_policy_that_cannot_be_followed(self, options: dict[str, object]) -> None:
        with pytest.raises(InvalidValue):
            DunningPolicy(**options)  # type: ignore[arg-type]

    def test_a_policy_may_never_escalate(self) -> None:
        assert (
            DunningPolicy(suspend_after_days=None, cancel_after_days=None).cancel_after_days is None
        )

    def test_a_reminder_carries_the_hosts_pay_link(self) -> None:
        member = _member(date(2026, 1, 28))
        ledger = [_charge("f0", _local(date(2026, 1, 28), 11), "failed")]
        actions = dunning_actions(
            member,
            _plan(),
            ledger,
            at=_local(date(2026, 1, 28), 12),
            timezone=SYD,
            pay_link=lambda key: f"https://pay.example/{key}",
        )
        assert [(a.key, a.pay_link) for a in actions] == [
            ("remind:m1:0:0", "https://pay.example/remind:m1:0:0")
        ]
        assert (
            DunningAction("m1", DunningStep.CANCEL, _local(date(2026, 1, 1)), "x").key
            == "cancel:m1"
        )


class TestPlanChanges:
    """A billing date is charged at the plan in force as its local day starts."""

    PLATINUM = MembershipPlan(
        "platinum", "syd", "Platinum", Money.of("50.00", "AUD"), BillingCycle.MONTHLY
    )

    def test_an_upgrade_counts_from_the_next_billing_date(self) -> None:
        """Upgraded on 10 Feb (after the 1 Feb charge): 1 Mar and 1 Apr are AUD 50.00; a
        change on 1 Apr at 09:00 (after that day began) waits for 1 May."""
        member = _member(date(2026, 1, 1)).change_plan("platinum", at=_local(date(2026, 2, 10)))
        plans = {"gold": _plan()}
        s = billing_statement(
            member, self.PLATINUM, [], at=_local(date(2026, 4, 2)), timezone=SYD, plans=plans
        )
        assert [str(c.amount) for c in s.charges] == ["AUD 30.00"] * 2 + ["AUD 50.00"] * 2
        late = _member(date(2026, 1, 1)).change_plan("platinum", at=_local(date(2026, 4, 1)))
        s = billing_statement(
            late, self.PLATINUM, [], at=_local(date(2026, 5, 2)), timezone=SYD, plans=plans
        )
        assert [str(c.amount) for c in s.charges] == ["AUD 30.00"] * 4 + ["AUD 50.00"]

    def test_the_earlier_plans_must_share_the_currency(self) -> None:
        """An earlier plan priced in another currency cannot be settled with this one's
        ledger: CurrencyMismatch, naming ``plans``."""
        member = _member(date(2026, 1, 1)).change_plan("platinum", at=_local(date(2026, 2, 10)))
        usd = {"gold": _plan(price=Money.of("30.00", "USD"))}
        with pytest.raises(CurrencyMismatch) as caught:
            billing_statement(
                member, self.PLATINUM, [], at=_local(date(2026, 4, 2)), timezone=SYD, plans=usd
            )
        assert (caught.value.left, caught.value.right, caught.value.field) == (
            "AUD",
            "USD",
            "plans",
        )

    def test_a_free_billing_date_is_settled_and_skipped_by_payments(self) -> None:
        """A 100 % discount on the second billing date only (one cycle from number 1):
        it is due at AUD 0.00 and settled; one payment of 60.00 pays the first and the
        third, passing over it."""
        free = Discount("d", "syd", "Free month", percent="100", cycles=1)
        member = _member(date(2026, 1, 1))
        s = billing_statement(
            member,
            _plan(),
            [_charge("c", _local(date(2026, 3, 2)), amount=Money.of("60.00", "AUD"))],
            at=_local(date(2026, 3, 2)),
            timezone=SYD,
            discounts=[AppliedDiscount(free, first=1)],
        )
        assert [(str(c.amount), str(c.paid), c.payments) for c in s.charges] == [
            ("AUD 30.00", "AUD 30.00", ("c",)),
            ("AUD 0.00", "AUD 0.00", ()),
            ("AUD 30.00", "AUD 30.00", ("c",)),
        ]
        assert s.credit.is_zero()

    def test_the_earlier_plans_must_be_given(self) -> None:
        member = _member(date(2026, 1, 1)).change_plan("platinum", at=_local(date(2026, 2, 10)))
        with pytest.raises(InvalidValue) as caught:
            billing_statement(member, self.PLATINUM, [], at=_local(date(2026, 4, 2)), timezone=SYD)
        assert (caught.value.field, caught.value.value) == ("plans", "gold")
        with pytest.raises(InvalidValue) as caught:
            billing_dates(member, self.PLATINUM, through=date(2026, 4, 2))
        assert (caught.value.field, caught.value.value) == ("timezone", None)

    def test_a_move_to_another_cycle_re_anchors_on_the_next_billing_date(self) -> None:
        """Weekly at 30.00 from Thursday 1 January, moved to monthly Platinum on Tuesday
        10 February: weekly dates through 5 February, then 12 February (the next weekly
        date) at 50.00 starts the monthly cycle: 12 March, next 12 April."""
        member = _member(date(2026, 1, 1)).change_plan("platinum", at=_local(date(2026, 2, 10)))
        weekly = {"gold": _plan(BillingCycle.WEEKLY)}
        s = billing_statement(
            member, self.PLATINUM, [], at=_local(date(2026, 4, 2)), timezone=SYD, plans=weekly
        )
        assert [(str(c.due_date), c.number, str(c.amount)) for c in s.charges] == [
            *[
                (f"2026-{d}", k, "AUD 30.00")
                for k, d in enumerate(["01-01", "01-08", "01-15", "01-22", "01-29", "02-05"])
            ],
            ("2026-02-12", 6, "AUD 50.00"),
            ("2026-03-12", 7, "AUD 50.00"),
        ]
        assert s.next_charge_date == date(2026, 4, 12)
        assert billing_dates(
            member, self.PLATINUM, through=date(2026, 4, 2), timezone=SYD, plans=weekly
        ) == [c.due_date for c in s.charges]

    def test_a_date_passed_while_suspended_starts_no_cycle(self) -> None:
        """Monthly from 1 January, Suspended on 20 February, moved to annual on
        25 February, resumed on 2 March: 1 March passes unbilled, so the annual cycle
        starts on 1 April (not on 1 March, which would give a year for nothing)."""
        annual = MembershipPlan(
            "annual", "syd", "Annual", Money.of("300.00", "AUD"), BillingCycle.ANNUALLY
        )
        member = (
            _member(date(2026, 1, 1))
            .suspend(at=_local(date(2026, 2, 20)))
            .change_plan("annual", at=_local(date(2026, 2, 25)))
            .activate(at=_local(date(2026, 3, 2)))
        )
        s = billing_statement(
            member, annual, [], at=_local(date(2027, 5, 1)), timezone=SYD, plans={"gold": _plan()}
        )
        assert [(str(c.due_date), c.number, str(c.amount)) for c in s.charges] == [
            ("2026-01-01", 0, "AUD 30.00"),
            ("2026-02-01", 1, "AUD 30.00"),
            ("2026-04-01", 3, "AUD 300.00"),
            ("2027-04-01", 4, "AUD 300.00"),
        ]
        assert s.next_charge_date == date(2028, 4, 1)

    def test_a_month_end_anchor_moved_to_annual_through_a_leap_year(self) -> None:
        """Monthly from 31 January 2028, moved to annual on 1 March 2028 (after the
        29 February charge): 31 March 2028 is the first annual date, then 31 March 2029;
        back to monthly on 1 May 2029: 31 March 2030, then 30 April 2030."""
        annual = MembershipPlan(
            "annual", "syd", "Annual", Money.of("300.00", "AUD"), BillingCycle.ANNUALLY
        )
        plans = {"gold": _plan(), "annual": annual}
        member = (
            _member(date(2028, 1, 31))
            .change_plan("annual", at=_local(date(2028, 3, 1)))
            .change_plan("gold", at=_local(date(2029, 5, 1)))
        )
        s = billing_statement(
            member, _plan(), [], at=_local(date(2030, 5, 1)), timezone=SYD, plans=plans
        )
        assert [(str(c.due_date), str(c.amount)) for c in s.charges] == [
            ("2028-01-31", "AUD 30.00"),
            ("2028-02-29", "AUD 30.00"),
            ("2028-03-31", "AUD 300.00"),
            ("2029-03-31", "AUD 300.00"),
            ("2030-03-31", "AUD 30.00"),
            ("2030-04-30", "AUD 30.00"),
        ]
        assert s.next_charge_date == date(2030, 5, 31)
        assert (
            str(
                price_due_at(
                    member, _plan(), at=_local(date(2029, 4, 1)), timezone=SYD, plans=plans
                )
            )
            == "AUD 300.00"
        )

    def test_a_charge_at_the_price_due_is_refused_too(self) -> None:
        """The same refusal from ``price_due_at`` and ``check_membership_charge``, even for
        a charge of the newest date's price (which needs no ledger read); with the weekly
        plan given, the price due is the monthly plan's from 12 February on."""
        member = _member(date(2026, 1, 1)).change_plan("platinum", at=_local(date(2026, 2, 10)))
        at = _local(date(2026, 4, 2))
        charge = _charge("c", at, amount=self.PLATINUM.price)
        with pytest.raises(InvalidValue):
            price_due_at(member, self.PLATINUM, at=at, timezone=SYD)
        with pytest.raises(InvalidValue):
            check_membership_charge(member, self.PLATINUM, [], charge, timezone=SYD)
        weekly = {"gold": _plan(BillingCycle.WEEKLY)}
        due = price_due_at(member, self.PLATINUM, at=at, timezone=SYD, plans=weekly)
        assert due == self.PLATINUM.price
        check_membership_charge(member, self.PLATINUM, [], charge, timezone=SYD, plans=weekly)
        before = _charge("w", _local(date(2026, 2, 11)), amount=self.PLATINUM.price)
        with pytest.raises(RuleViolation) as refused:
            check_membership_charge(member, self.PLATINUM, [], before, timezone=SYD, plans=weekly)
        assert refused.value.rule == "charge_amount"

    def test_the_amount_rule_alone_passes_what_is_no_charge_of_the_member(self) -> None:
        """check_charge_amount: a refund, or another member's charge, of any amount passes;
        the member's own charge of the wrong amount is refused as check_membership_charge
        refuses it (the dates left to check_charge_window)."""
        member = _member(date(2026, 1, 1))
        at = _local(date(2026, 2, 1))
        odd = Money.of("1.23", "AUD")
        check_charge_amount(member, _plan(), [], _refund("r", at, amount=odd), timezone=SYD)
        other = attrs.evolve(_charge("o", at, amount=odd), member_id="m2")
        check_charge_amount(member, _plan(), [], other, timezone=SYD)
        with pytest.raises(RuleViolation) as caught:
            check_charge_amount(member, _plan(), [], _charge("c", at, amount=odd), timezone=SYD)
        assert caught.value.rule == "charge_amount"


FAMILY = Discount("family", "syd", "Family", percent=10, basis="per_dependent", limit=3)
DEE = Patient("p2", "Dee Lovelace")
DAN = Patient("p3", "Dan Lovelace")


def _family(start: date = date(2027, 2, 1)) -> tuple[Member, MembershipPlan]:
    """A Family member (AUD 60.00 monthly from ``start``) enrolled with Dee, granted 10 %
    off per dependent (units 1: Dee)."""
    member = attrs.evolve(_member(start), dependents=(DEE,)).grant(FAMILY)
    return member, _plan(price=Money.of("60.00", "AUD"))


class TestDependentsOverTime:
    """A per-dependent discount counts the dependents added or removed since the
    enrolment, as each billing date's local day starts (docs/domain.md)."""

    def test_the_worked_example(self) -> None:
        """Dan added on 10 March, Dee removed on 20 April: 1 April is 20 % off, 1 March
        and 1 May 10 %; the price at an instant is the newest date's."""
        member, plan = _family()
        member = member.add_dependent(DAN, at=_local(date(2027, 3, 10)), reason="newborn")
        member = member.remove_dependent(DEE.id, at=_local(date(2027, 4, 20)))
        s = billing_statement(member, plan, [], at=_local(date(2027, 6, 1)), timezone=SYD)
        assert [(str(c.due_date), str(c.amount)) for c in s.charges] == [
            ("2027-02-01", "AUD 54.00"),
            ("2027-03-01", "AUD 54.00"),
            ("2027-04-01", "AUD 48.00"),
            ("2027-05-01", "AUD 54.00"),
            ("2027-06-01", "AUD 54.00"),
        ]
        price = price_at(member, plan, at=_local(date(2027, 4, 15)), timezone=SYD)
        assert (str(price.list_price), str(price.discount), str(price.due)) == (
            "AUD 60.00",
            "AUD 12.00",
            "AUD 48.00",
        )
        assert price_due_at(member, plan, at=_local(date(2027, 3, 10)), timezone=SYD) == Money.of(
            "54.00", "AUD"
        )
        dates = priced_dates(member, plan, at=_local(date(2027, 6, 1)), timezone=SYD)
        assert [d.due for _, _, d in dates] == [c.amount for c in s.charges]

    def test_a_change_on_a_billing_day_waits_for_the_next_date(self) -> None:
        """Dan added at 09:00 on 1 March (after that day began): counted from 1 April; a
        change stamped exactly at local midnight also waits (the day starts with it)."""
        member, plan = _family()
        for at in (_local(date(2027, 3, 1)), local_midnight(date(2027, 3, 1), SYD)):
            added = member.add_dependent(DAN, at=at)
            s = billing_statement(added, plan, [], at=_local(date(2027, 4, 1)), timezone=SYD)
            assert [str(c.amount) for c in s.charges] == ["AUD 54.00"] * 2 + ["AUD 48.00"]

    def test_only_per_dependent_grants_move_and_never_below_zero_units(self) -> None:
        """A flat discount is untouched; a grant of 0 units with every dependent removed
        stays at 0 (no surcharge); the limit caps the count."""
        member, plan = _family()
        flat = Discount("off", "syd", "Loyalty", amount=Money.of("5.00", "AUD"))
        removed = attrs.evolve(member, discounts=(AppliedDiscount(FAMILY, 0),))
        removed = removed.grant(flat).remove_dependent(DEE.id, at=_local(date(2027, 2, 10)))
        s = billing_statement(removed, plan, [], at=_local(date(2027, 3, 1)), timezone=SYD)
        assert [str(c.amount) for c in s.charges] == ["AUD 55.00", "AUD 55.00"]
        many = member
        for k in range(4, 9):
            many = many.add_dependent(Patient(f"p{k}", f"Kid {k}"), at=_local(date(2027, 2, k)))
        s = billing_statement(many, plan, [], at=_local(date(2027, 3, 1)), timezone=SYD)
        assert [str(c.amount) for c in s.charges] == ["AUD 54.00", "AUD 42.00"]

    @given(
        gaps=st.lists(st.integers(1, 60 * 86400), min_size=1, max_size=5),
        cut=st.integers(0, 400 * 86400),
    )
    def test_a_dependent_change_never_changes_a_past_instants_price(
        self, gaps: list[int], cut: int
    ) -> None:
        """Toggling Dan at random gaps: the price at any instant before a change, and
        every billing date due by then, are the same with the change and without it."""
        member, plan = _family()
        at = _local(date(2027, 2, 1))
        t = at + timedelta(seconds=cut)
        for gap in gaps:
            at += timedelta(seconds=gap)
            if any(p.id == DAN.id for p in member.dependents):
                changed = member.remove_dependent(DAN.id, at=at)
            else:
                changed = member.add_dependent(DAN, at=at)
            if t < at:
                assert price_at(changed, plan, at=t, timezone=SYD) == price_at(
                    member, plan, at=t, timezone=SYD
                )
                before = billing_statement(member, plan, [], at=t, timezone=SYD)
                after = billing_statement(changed, plan, [], at=t, timezone=SYD)
                assert before.charges == after.charges
            member = changed


class TestReferralRewards:
    """A per-referral grant counts the referrals credited before each date's day starts."""

    FRIEND = Discount(
        "friend", "syd", "Refer a friend", amount=Money.of("5.00", "AUD"), basis="per_referral"
    )

    @given(
        gaps=st.lists(st.integers(0, 60 * 86400), min_size=1, max_size=5),
        cut=st.integers(0, 400 * 86400),
    )
    def test_a_reward_never_changes_a_past_instants_price(self, gaps: list[int], cut: int) -> None:
        """Rewards at random gaps: the price at any instant before a reward, and every
        billing date due by then, are the same with the reward and without it; after the
        last, each date's reduction is 5.00 per reward credited before its local day."""
        member = _member(date(2027, 2, 1)).grant(self.FRIEND, units=0)
        plan = _plan(price=Money.of("60.00", "AUD"))
        at = _local(date(2027, 2, 1))
        t = at + timedelta(seconds=cut)
        for n, gap in enumerate(gaps):
            at += timedelta(seconds=gap)
            rewarded = member.reward_referral(f"r{n}", at=at)
            if t < at:
                assert price_at(rewarded, plan, at=t, timezone=SYD) == price_at(
                    member, plan, at=t, timezone=SYD
                )
                before = billing_statement(member, plan, [], at=t, timezone=SYD)
                assert billing_statement(rewarded, plan, [], at=t, timezone=SYD) == before
            member = rewarded
        for c in billing_statement(
            member, plan, [], at=at + timedelta(days=62), timezone=SYD
        ).charges:
            start = local_midnight(c.due_date, SYD)
            credited = sum(1 for r in member.referral_rewards if r.at < start)
            assert c.amount == Money.of("60.00", "AUD") - Money.of("5.00", "AUD") * min(
                credited, 12
            )


class TestRefusedOutsideWhatIsSupported:
    """The statement and the invoice lines refuse what they refused when each billing date
    was judged billable one by one: a date outside the supported years, and totals past
    Money's digits."""

    @pytest.mark.parametrize(
        ("start", "at", "year"),
        [
            (date(1850, 1, 15), datetime(2026, 3, 1, 9, tzinfo=UTC), 1850),
            # 20:00 UTC on 31 December 2200 is 1 January 2201 in Sydney.
            (date(2200, 12, 1), datetime(2200, 12, 31, 20, tzinfo=UTC), 2201),
        ],
    )
    def test_a_billing_date_outside_the_supported_years(
        self, start: date, at: datetime, year: int
    ) -> None:
        """An Active member (every status billable) whose dates leave 1900-2200 is refused,
        naming the first such date's year."""
        member = _active_at(datetime(2026, 3, 1, 9, tzinfo=UTC))
        member = attrs.evolve(member, start_date=start)
        for read in (billing_statement, member_charges):
            with pytest.raises(InvalidPeriod) as caught:
                read(member, _plan(), [], at=at, timezone=SYD)
            assert caught.value.field == "day"
            assert str(year) in str(caught.value)

    def test_totals_past_moneys_digits(self) -> None:
        """Two charges whose sum passes 30 integer digits: the statement and the invoice
        lines both refuse it (the totals are Money)."""
        start = datetime(2026, 3, 1, 9, tzinfo=UTC)
        member = _active_at(start)
        huge = Money.from_minor(6 * 10**31, "AUD")
        ledger = [_charge(f"c{k}", start + timedelta(hours=k), amount=huge) for k in (1, 2)]
        for read in (billing_statement, member_charges):
            with pytest.raises(InvalidMoney):
                read(member, _plan(), ledger, at=start + timedelta(days=1), timezone=SYD)


class TestLedgerRules:
    """What ``check_membership_charge`` allows and refuses."""

    def _check(
        self, charge: Payment, member: Member | None = None, earlier: list[Payment] | None = None
    ) -> None:
        member = member or _member(date(2026, 1, 28))
        check_membership_charge(member, _plan(), earlier or [], charge, timezone=SYD)

    @pytest.mark.parametrize(
        ("charge", "rule"),
        [
            (_charge("c", _local(date(2026, 1, 27))), "charge_before_enrolment"),
            (
                _charge("c", _local(date(2026, 3, 28), 10), amount=Money.of("31.00", "AUD")),
                "charge_amount",
            ),
            (
                _charge("c", _local(date(2026, 3, 28), 10), "failed", Money.of("29.99", "AUD")),
                "charge_amount",
            ),
        ],
    )
    def test_refused(self, charge: Payment, rule: str) -> None:
        with pytest.raises(RuleViolation) as caught:
            self._check(charge, earlier=[_charge("c0", _local(date(2026, 1, 28), 10))])
        assert caught.value.rule == rule

    def test_the_stores_date_rules_read_only_the_members_own_charges(self) -> None:
        """check_charge_dates (what the stores run) refuses the member's own charge before
        enrolment, and lets through another member's charge or a refund at that instant."""
        member = _member(date(2026, 1, 28))
        early = _local(date(2026, 1, 27))
        with pytest.raises(RuleViolation) as caught:
            check_charge_dates(member, _charge("c", early))
        assert caught.value.rule == "charge_before_enrolment"
        check_charge_dates(member, attrs.evolve(_charge("c", early), member_id="someone-else"))
        check_charge_dates(member, _refund("r", early))

    def test_the_amount_refusal_names_what_was_expected(self) -> None:
        """Two charges unpaid (January's and February's): the price or the AUD 60.00 owed."""
        with pytest.raises(RuleViolation) as caught:
            self._check(_charge("c9", _local(date(2026, 3, 1)), amount=Money.of("45", "AUD")))
        assert str(caught.value) == (
            "charge c9 of AUD 45.00 for member m1: expected AUD 30.00 or the AUD 60.00 owed"
        )
        self._check(_charge("c9", _local(date(2026, 3, 1)), amount=Money.of("60", "AUD")))

    def test_after_cancel_only_refunds(self) -> None:
        member = _member(date(2026, 1, 28)).cancel(at=_local(date(2026, 3, 5)))
        with pytest.raises(RuleViolation) as caught:
            self._check(_charge("c", _local(date(2026, 3, 6))), member)
        assert caught.value.rule == "charge_after_cancel"
        self._check(_refund("r", _local(date(2026, 3, 6))), member)
        self._check(_charge("c", _local(date(2026, 3, 5))), member)  # at the cancel instant

    def test_every_demo_charge_passes(self) -> None:
        from smilepass_core.demo import load_demo

        data = load_demo()
        plans = {p.id: p for p in data.membership_plans}
        members = {m.id: m for m in data.members}
        zones = {p.id: p.timezone for p in data.practices}
        ledgers: dict[str, list[Payment]] = {}
        for payment in sorted(data.payments, key=lambda p: (p.at, p.id)):
            if payment.member_id is None:
                continue
            member = members[payment.member_id]
            earlier = ledgers.setdefault(member.id, [])
            check_membership_charge(
                member, plans[member.plan_id], earlier, payment, timezone=zones[member.practice_id]
            )
            earlier.append(payment)
        assert sum(map(len, ledgers.values())) == 2504


# -- properties -----------------------------------------------------------------------------


@st.composite
def _histories(draw: st.DrawFn) -> tuple[Member, MembershipPlan, list[Payment], datetime]:
    """A member with a random legal history, their plan, a random ledger of charges
    (succeeded or failed, of any amount) and refunds never above what was collected, and
    an instant to judge at."""
    plan = draw(sps.membership_plans(practice_id="syd", currency="AUD"))
    start = draw(
        sps.instants(
            min_value=datetime(2025, 1, 1, tzinfo=UTC), max_value=datetime(2026, 1, 1, tzinfo=UTC)
        )
    )
    member = draw(sps.members(practice_id="syd", plan_id=plan.id, start=st.just(start)))
    member = attrs.evolve(member, start_date=local_day(start, SYD))
    ledger: list[Payment] = []
    net = Money.zero("AUD")
    at = start
    for i in range(draw(st.integers(0, 12))):
        at += timedelta(hours=draw(st.integers(0, 24 * 60)))
        kind = draw(st.sampled_from(["charge", "charge", "failed", "refund"]))
        amount = draw(st.sampled_from([plan.price, plan.price * 2, Money.of("0.01", "AUD")]))
        if kind == "refund":
            if net.is_zero():
                continue
            amount = min(amount, net)
        payment = Payment(
            f"p{i}",
            "syd",
            amount,
            "refund" if kind == "refund" else "charge",
            "failed" if kind == "failed" else "succeeded",
            at,
            member_id=member.id,
        )
        net += payment.signed if payment.succeeded else Money.zero("AUD")
        ledger.append(payment)
    now = at + timedelta(hours=draw(st.integers(0, 24 * 120)))
    return member, plan, ledger, now


class TestProperties:
    @settings(max_examples=40)
    @given(_histories())
    def test_due_less_collected_plus_refunded_is_outstanding_less_credit(
        self, case: tuple[Member, MembershipPlan, list[Payment], datetime]
    ) -> None:
        member, plan, ledger, now = case
        s = billing_statement(member, plan, ledger, at=now, timezone=SYD)
        assert s.due - s.collected + s.refunded == s.outstanding - s.credit
        assert all(Money.zero("AUD") <= c.paid <= c.amount for c in s.charges)
        assert not s.credit.is_negative()
        assert s.credit.is_zero() or not s.unsettled  # credit only once every charge is paid

    @settings(max_examples=40)
    @given(
        _histories(),
        st.dates(min_value=date(2025, 1, 1), max_value=date(2031, 12, 31)),
        sps.positive_money("AUD"),
    )
    def test_a_reprice_changes_no_earlier_billing_date(
        self, case: tuple[Member, MembershipPlan, list[Payment], datetime], on: date, price: Money
    ) -> None:
        """A plan repriced from ``on``: every billing date before it keeps its amount, and
        the dates from ``on`` are charged ``price``; with no date due from ``on``, the
        statement is the same."""
        member, plan, ledger, now = case
        last = plan.earlier_prices[-1].until if plan.earlier_prices else None
        assume(last is None or on > last)
        before = billing_statement(member, plan, ledger, at=now, timezone=SYD)
        after = billing_statement(member, plan.reprice(price, on=on), ledger, at=now, timezone=SYD)
        assert [c.due_date for c in after.charges] == [c.due_date for c in before.charges]
        for old, new in zip(before.charges, after.charges, strict=True):
            assert new.amount == (old.amount if old.due_date < on else price)
        if all(c.due_date < on for c in before.charges):
            assert after == before

    @settings(max_examples=40)
    @given(_histories(), st.integers(-24 * 60, 24 * 60))
    def test_the_price_due_at_is_the_statements_last_charge(
        self, case: tuple[Member, MembershipPlan, list[Payment], datetime], hours: int
    ) -> None:
        """``price_due_at`` (read from the contract alone) is the amount of the statement's
        last charge, or the first billing date's price due when no charge is due yet."""
        member, plan, ledger, now = case
        at = now + timedelta(hours=hours)
        s = billing_statement(member, plan, ledger, at=at, timezone=SYD)
        first = price_due(plan, 0, member.discounts, on=member.start_date).due
        expected = s.charges[-1].amount if s.charges else first
        assert price_due_at(member, plan, at=at, timezone=SYD) == expected

    @settings(max_examples=30)
    @given(dataset=sps.datasets(), data=st.data())
    def test_the_price_due_at_over_generated_practices(
        self, dataset: sps.Dataset, data: st.DataObject
    ) -> None:
        """The same over generated practices: their zones, members with discounts and plan
        changes (``plans=``), instants at the dataset's boundaries."""
        plans = {p.id: p for p in dataset.membership_plans}
        zones = {p.id: p.timezone for p in dataset.practices}
        for member in dataset.members:
            tz, plan = zones[member.practice_id], plans[member.plan_id]
            for at in data.draw(st.lists(sps.boundaries(dataset), min_size=1, max_size=3)):
                s = billing_statement(member, plan, [], at=at, timezone=tz, plans=plans)
                first = plan_on(member, plan, plans, member.start_date, tz)
                start = member.start_date
                expected = (
                    s.charges[-1].amount
                    if s.charges
                    else discounted(first, first.price_on(start), 0, member, start, tz)
                )
                assert price_due_at(member, plan, at=at, timezone=tz, plans=plans) == expected

    @settings(max_examples=40)
    @given(_histories())
    def test_charges_fall_due_only_on_billable_days_and_never_twice(
        self, case: tuple[Member, MembershipPlan, list[Payment], datetime]
    ) -> None:
        member, plan, ledger, now = case
        s = billing_statement(member, plan, ledger, at=now, timezone=SYD)
        dates = [c.due_date for c in s.charges]
        assert dates == sorted(set(dates))
        cancelled = member.first_entered(MembershipStatus.CANCELLED)
        for charge in s.charges:
            assert charge.due_date == plan.charge_date(member.start_date, charge.number)
            assert charge.due_date <= local_day(now, SYD)
            midnight = local_midnight(charge.due_date, SYD)
            next_midnight = local_midnight(charge.due_date + timedelta(days=1), SYD)
            during = [c.to for c in member.history if midnight <= c.at < next_midnight]
            statuses = [member.status_before(midnight), *during]
            assert any(s in (None, *BILLABLE) for s in statuses)
            assert cancelled is None or midnight <= cancelled

    @settings(max_examples=40)
    @given(_histories())
    def test_a_later_instant_only_adds_charges(
        self, case: tuple[Member, MembershipPlan, list[Payment], datetime]
    ) -> None:
        """The charges due at an earlier instant are the first ones due at a later one."""
        member, plan, ledger, now = case
        earlier = billing_statement(member, plan, ledger, at=now - timedelta(days=40), timezone=SYD)
        later = billing_statement(member, plan, ledger, at=now, timezone=SYD)
        assert [c.due_date for c in later.charges][: len(earlier.charges)] == [
            c.due_date for c in earlier.charges
        ]

    @settings(max_examples=40)
    @given(
        _histories(),
        st.sampled_from(
            [
                DunningPolicy(),
                DunningPolicy(
                    retry_days=(2,),
                    reminder_days=(1, 5),
                    suspend_after_days=None,
                    cancel_after_days=10,
                ),
            ]
        ),
    )
    def test_dunning_is_idempotent_once_its_actions_are_applied(
        self, case: tuple[Member, MembershipPlan, list[Payment], datetime], policy: DunningPolicy
    ) -> None:
        """Apply every action (a failed attempt for a charge or retry, the reminder's key
        recorded, the Suspend or Cancel made) and ask again at the same instant: nothing
        returned before comes back, only a first reminder for a charge that just failed;
        a third time, nothing."""
        member, plan, ledger, now = case
        member = member.as_of(now) or member
        sent: set[str] = set()
        seen: set[str] = set()
        for round_ in range(3):
            actions = dunning_actions(
                member, plan, ledger, at=now, timezone=SYD, policy=policy, sent=sent
            )
            keys = {a.key for a in actions}
            assert not keys & seen
            if round_ == 1:
                assert all(a.step is DunningStep.REMIND and a.stage == 0 for a in actions)
            if round_ == 2:
                assert actions == ()
            seen |= keys
            for action in actions:
                if action.step in (DunningStep.CHARGE, DunningStep.RETRY):
                    attempt = f"x{round_}-{action.charge}"
                    ledger = [
                        *ledger,
                        Payment(
                            attempt, "syd", plan.price, "charge", "failed", now, member_id=member.id
                        ),
                    ]
                elif action.step is DunningStep.REMIND:
                    sent.add(action.key)
                elif action.step is DunningStep.SUSPEND:
                    member = member.suspend(at=now)
                else:
                    member = member.cancel(at=now)


class TestReprice:
    """``check_reprice``: a reprice may not change a charged billing date's price."""

    def _refused(
        self, before: MembershipPlan, after: MembershipPlan, member: Member, ledger: list[Payment]
    ) -> bool:
        try:
            check_reprice(before, after, [member], ledger, timezone=SYD, plans={before.id: before})
        except RuleViolation as error:
            refusal = (error.rule, error.field)
        else:
            return False
        assert refusal == ("reprice_backdated", "earlier_prices")
        return True

    def test_a_prepayment_is_priced_at_the_first_billing_date(self) -> None:
        """Enrolled on 20 February for a contract from 1 March, charged on 20 February:
        that charge was priced at 1 March, so a rise from 25 February is refused."""
        member = Member.enrol(
            id="m1",
            practice_id="syd",
            plan_id="gold",
            account_holder=Patient("p1", "Ada Lovelace"),
            start_date=date(2026, 3, 1),
            at=_local(date(2026, 2, 20)),
        )
        ledger = [_charge("c0", _local(date(2026, 2, 20), 11))]
        plan = _plan()
        dearer = Money.of("40", "AUD")
        assert self._refused(plan, plan.reprice(dearer, on=date(2026, 2, 25)), member, ledger)
        assert not self._refused(plan, plan.reprice(dearer, on=date(2026, 3, 2)), member, ledger)

    def test_a_charge_on_another_plan_does_not_count(self) -> None:
        """A member who moved from Gold to Platinum on 5 February and was charged on
        Platinum on 1 March: Gold may be repriced from 2 February (their last Gold date
        was 1 February), Platinum not from 1 March."""
        gold, platinum = _plan(), MembershipPlan("plat", "syd", "Platinum", AUD30 * 2, "monthly")
        member = _member(date(2026, 1, 1)).change_plan("plat", at=_local(date(2026, 2, 5)))
        ledger = [
            _charge("c0", _local(date(2026, 1, 1), 11)),
            _charge("c1", _local(date(2026, 2, 1), 11)),
            _charge("c2", _local(date(2026, 3, 1), 11), amount=AUD30 * 2),
        ]
        dearer = Money.of("45", "AUD")
        plans = {"gold": gold, "plat": platinum}
        check_reprice(
            gold, gold.reprice(dearer, on=date(2026, 2, 2)), [member], ledger, timezone=SYD,
            plans=plans,
        )  # fmt: skip
        with pytest.raises(
            RuleViolation, match=r"2026-02-01 at AUD 30\.00, now 2026-02-01 at AUD 45"
        ):
            check_reprice(
                gold, gold.reprice(dearer, on=date(2026, 2, 1)), [member], ledger,
                timezone=SYD, plans=plans,
            )  # fmt: skip
        with pytest.raises(RuleViolation, match=r"\(last charge c2\)"):
            check_reprice(
                platinum, platinum.reprice(AUD30 * 3, on=date(2026, 3, 1)), [member], ledger,
                timezone=SYD, plans=plans,
            )  # fmt: skip

    def test_a_change_of_cycle_may_not_move_a_charged_date(self) -> None:
        """Charged 1 January and 1 February monthly: weekly, the February charge would be
        for 29 January; annually, for 1 January again. Both refused; with only the
        January charge, weekly is kept (1 January stays the first date)."""
        member = _member(date(2026, 1, 1))
        ledger = [_charge("c0", _local(date(2026, 1, 1), 11))]
        ledger.append(_charge("c1", _local(date(2026, 2, 1), 11)))
        plan = _plan()
        for cycle in (BillingCycle.WEEKLY, BillingCycle.ANNUALLY):
            moved = attrs.evolve(plan, billing_cycle=cycle)
            with pytest.raises(RuleViolation, match=r"2026-02-01 at AUD 30\.00, now "):
                check_reprice(plan, moved, [member], ledger, timezone=SYD, plans={"gold": plan})
        weekly = attrs.evolve(plan, billing_cycle=BillingCycle.WEEKLY)
        assert not self._refused(plan, weekly, member, ledger[:1])

    def test_a_date_added_before_the_last_charge_is_refused(self) -> None:
        """Annual, charged 1 January and (ahead) 1 February: monthly would add 1 February
        as a billing date before the last charge. Refused, whatever order the ledger is
        given in."""
        plan = _plan(BillingCycle.ANNUALLY)
        member = _member(date(2026, 1, 1))
        ledger = [_charge("c0", _local(date(2026, 1, 1), 11))]
        ledger.append(_charge("c1", _local(date(2026, 2, 1), 11)))
        monthly = attrs.evolve(plan, billing_cycle=BillingCycle.MONTHLY)
        for order in (ledger, ledger[::-1]):
            with pytest.raises(
                RuleViolation, match=r"no billing date, now 2026-02-01 at AUD 30\.00"
            ):
                check_reprice(plan, monthly, [member], order, timezone=SYD, plans={"gold": plan})

    def test_a_member_whose_plan_is_not_given_is_left_to_the_host(self) -> None:
        """A member now on a plan the host's store does not keep is not judged."""
        plan = _plan()
        member = _member(date(2026, 1, 1)).change_plan("plat", at=_local(date(2026, 1, 10)))
        ledger = [_charge("c0", _local(date(2026, 1, 1), 11))]
        dearer = plan.reprice(Money.of("40", "AUD"), on=date(2026, 1, 1))
        check_reprice(plan, dearer, [member], ledger, timezone=SYD, plans={"gold": plan})
        renamed = attrs.evolve(plan, name="Gold Plus")  # no price or cycle change: not read
        check_reprice(plan, renamed, [_member(date(2026, 1, 1))], ledger, timezone=SYD, plans={})
        with pytest.raises(InvalidValue, match="is not member 'm1'"):
            price_due_at(member, plan, at=_local(date(2026, 2, 1)), timezone=SYD)

    def test_a_grant_or_a_plan_change_back_over_charged_dates_is_refused(self) -> None:
        """Charged 1 January and 1 February at 30.00: AUD 5.00 off from date 0, or a move
        to Platinum on 10 January (so 1 February on Platinum), is refused; the discount
        from date 2, or the move on 2 February, is kept."""
        gold, platinum = _plan(), MembershipPlan("plat", "syd", "Platinum", AUD30 * 2, "monthly")
        plans = {"gold": gold, "plat": platinum}
        member = _member(date(2026, 1, 1))
        ledger = [_charge("c0", _local(date(2026, 1, 1), 11))]
        ledger.append(_charge("c1", _local(date(2026, 2, 1), 11)))
        off = Discount("off", "syd", "Loyalty", amount=Money.of("5", "AUD"))

        def check(after: Member) -> None:
            check_member_repriced(member, after, ledger, timezone=SYD, plans=plans)

        for backdated, field in (
            (member.grant(off), "discounts"),
            (member.change_plan("plat", at=_local(date(2026, 1, 10))), "plan_changes"),
        ):
            with pytest.raises(RuleViolation, match=r"last charge c1\): 20") as caught:
                check(backdated)
            assert (caught.value.rule, caught.value.field) == ("reprice_backdated", field)
        check(member.grant(off, first=2))
        check(member.change_plan("plat", at=_local(date(2026, 2, 2))))
        check(attrs.evolve(member, dependents=()))  # neither grants nor plans: not read

    def test_a_status_change_that_reprices_a_charge_is_refused(self) -> None:
        """Monthly at 30.00 from 1 January, 5.00 off from date 1, charged 30.00 on
        1 January, Suspended from 15 January, charged 30.00 on 1 February at 11:00 (no
        billing date while Suspended: January's price). Reactivated at 15:00 that day,
        1 February becomes a billing date at 25.00, so the charge's 30.00 is refused
        (``reprice_backdated``, field ``history``); reactivated on 2 February it is kept.
        With only the 1 January charge, Suspended from 15 January is kept too."""
        plan = _plan()
        off = Discount("off", "syd", "Loyalty", amount=Money.of("5", "AUD"))
        member = _member(date(2026, 1, 1)).grant(off, first=1)
        suspended = member.suspend(at=_local(date(2026, 1, 15)))
        ledger = [_charge("c0", _local(date(2026, 1, 1), 11))]
        ledger.append(_charge("c1", _local(date(2026, 2, 1), 11)))

        def check(before: Member, after: Member, entries: list[Payment] = ledger) -> None:
            check_member_repriced(before, after, entries, timezone=SYD, plans={"gold": plan})

        same_day = suspended.activate(at=_local(date(2026, 2, 1), 15))
        with pytest.raises(
            RuleViolation, match=r"charge c1 of AUD 30\.00 .* expected AUD 25"
        ) as caught:
            check(suspended, same_day)
        assert (caught.value.rule, caught.value.field) == ("reprice_backdated", "history")
        assert caught.value.context["payment_id"] == "c1"
        check(suspended, suspended.activate(at=_local(date(2026, 2, 2), 9)))
        check(member, suspended, ledger[:1])
        # Charged 25.00 on 1 February while Active: Suspended from 15 January leaves it none.
        cut = _charge("c1", _local(date(2026, 2, 1), 11), amount=AUD30 - off.amount)
        with pytest.raises(RuleViolation, match="c1"):
            check(member, suspended, [ledger[0], cut])

    def test_a_charge_of_all_owed_after_a_refund_stays_allowed(self) -> None:
        """Charged 30.00 on 1 January, refunded on 2 January, then charged 55.00 at 11:00
        on 1 February (all owed: January again and February's 25.00, with 5.00 off from
        date 1). Suspended at 12:00 and Active again at 13:00 that day (which bills it as
        before), the charge is checked again with the refund among the entries before it:
        kept. Suspended from 31 January instead, 1 February is no billing date: refused."""
        plan = _plan()
        off = Discount("off", "syd", "Loyalty", amount=Money.of("5", "AUD"))
        member = _member(date(2026, 1, 1)).grant(off, first=1)
        ledger = [
            _charge("c0", _local(date(2026, 1, 1), 11)),
            _refund("r0", _local(date(2026, 1, 2), 11)),
            _charge("c1", _local(date(2026, 2, 1), 11), amount=Money.of("55", "AUD")),
        ]
        paused = member.suspend(at=_local(date(2026, 2, 1), 12))
        paused = paused.activate(at=_local(date(2026, 2, 1), 13))
        check_member_repriced(member, paused, ledger, timezone=SYD, plans={"gold": plan})
        with pytest.raises(RuleViolation, match="c1"):  # suspended the day before
            check_member_repriced(
                member,
                member.suspend(at=_local(date(2026, 1, 31), 9)),
                ledger,
                timezone=SYD,
                plans={"gold": plan},
            )

    def test_new_terms_with_a_new_history_are_judged_as_if_the_history_came_first(
        self,
    ) -> None:
        """Charged 30.00 on 1 January and 1 February, no discount, Suspended from
        15 January (1 February is then no billing date, and its 30.00 is January's price,
        still allowed) in the same save as a dependent added on 5 March, or as 5.00 off
        from date 1 (which, with that history, no charged date reaches): kept, as the
        suspension then the change, saved one after the other, are."""
        plan = _plan()
        member = _member(date(2026, 1, 1))
        ledger = [_charge("c0", _local(date(2026, 1, 1), 11))]
        ledger.append(_charge("c1", _local(date(2026, 2, 1), 11)))
        suspended = member.suspend(at=_local(date(2026, 1, 15)))
        off = Discount("off", "syd", "Loyalty", amount=Money.of("5", "AUD"))
        for both in (
            suspended.add_dependent(Patient("kid", "Kid"), at=_local(date(2026, 3, 5))),
            suspended.grant(off, first=1),
        ):
            check_member_repriced(member, both, ledger, timezone=SYD, plans={"gold": plan})
            check_member_repriced(member, suspended, ledger, timezone=SYD, plans={"gold": plan})
            check_member_repriced(suspended, both, ledger, timezone=SYD, plans={"gold": plan})

    def test_which_histories_bill_alike_and_from_which_day(self) -> None:
        """Failed added to an Active history bills alike; Suspended does not, and rebills
        from the day after it; a replaced change (not an extension) does not bill alike.
        A suspension on 31 December 2200 rebills no supported day."""
        member = _member(date(2026, 1, 1))
        failed = member.fail(at=_local(date(2026, 2, 3), 10))
        suspended = member.suspend(at=_local(date(2026, 2, 3), 10))
        assert bills_alike(member, member)
        assert bills_alike(member, failed)
        assert not bills_alike(member, suspended)
        assert not bills_alike(failed, suspended)  # the Failed change replaced
        assert first_rebilled_day(member, suspended, SYD) == local_midnight(date(2026, 2, 4), SYD)
        assert first_rebilled_day(member, failed, SYD) == local_midnight(date(2026, 2, 3), SYD)
        late = _active_at(datetime(2200, 12, 1, tzinfo=UTC))
        away = late.suspend(at=datetime(2200, 12, 31, 10, tzinfo=UTC))
        assert first_rebilled_day(late, away, "UTC") == datetime.max.replace(tzinfo=UTC)

    def test_histories_that_are_no_extension_are_judged_too(self) -> None:
        """``check_member_repriced`` takes any two copies: one kept with a move to
        Platinum on 5 March, saved instead as Cancelled on 5 February without it (new terms
        that the kept copy's changes cannot be read with). Charged only in January: kept."""
        gold = _plan()
        platinum = MembershipPlan("plat", "syd", "Platinum", AUD30 * 2, "monthly")
        member = _member(date(2026, 1, 1))
        moved = member.change_plan("plat", at=_local(date(2026, 3, 5)))
        cancelled = member.cancel(at=_local(date(2026, 2, 5)))
        ledger = [_charge("c0", _local(date(2026, 1, 1), 11))]
        plans = {"gold": gold, "plat": platinum}
        check_member_repriced(moved, cancelled, ledger, timezone=SYD, plans=plans)

    def test_a_time_zone_reads_only_members_charged_on_a_kept_plan(self) -> None:
        """``check_timezone_kept`` skips a member with no charge, one on a plan not given
        and a payment plan's entry, and refuses a charge the new zone reprices: 25.00
        (5.00 off from date 1) at 00:30 UTC on 1 February falls on 31 January in
        Honolulu."""
        plan = _plan()
        off = Discount("off", "syd", "Loyalty", amount=Money.of("5", "AUD"))
        t0 = datetime(2026, 1, 1, 10, tzinfo=UTC)
        charged = attrs.evolve(_member(date(2026, 1, 1)), id="m1").grant(off, first=1)
        idle = attrs.evolve(charged, id="m2")
        elsewhere = attrs.evolve(charged, id="m3", plan_id="other")
        ledger = [
            _charge("c0", t0),
            _charge("c1", datetime(2026, 2, 1, 0, 30, tzinfo=UTC), amount=AUD30 - off.amount),
            attrs.evolve(_charge("c2", t0), member_id="m3"),
            Payment("c3", "syd", AUD30, "charge", "succeeded", t0, payment_plan_id="braces"),
        ]
        members = [idle, elsewhere, charged]
        utc = Practice("syd", "Sydney", "UTC", "AUD")
        check_timezone_kept(utc, members, ledger, plans={"gold": plan})
        honolulu = attrs.evolve(utc, timezone="Pacific/Honolulu")
        with pytest.raises(RuleViolation, match="charge c1 of") as caught:
            check_timezone_kept(honolulu, members, ledger, plans={"gold": plan})
        assert (caught.value.rule, caught.value.field) == ("reprice_backdated", "timezone")

    def test_a_change_on_the_last_day_of_1899_local_reads_every_charge(self) -> None:
        """In Pago Pago (UTC-11), 05:20 UTC on 1 January 1900 is still 31 December 1899:
        a move back to Active then bills from a day before the supported years, so every
        charge is read again (none is refused here) instead of an error."""
        zone = "Pacific/Pago_Pago"
        t = datetime(1900, 1, 1, 5, tzinfo=UTC)
        member = _active_at(t)
        suspended = member.suspend(at=t + timedelta(minutes=1))
        resumed = suspended.activate(at=t + timedelta(minutes=20))
        ledger = [_charge("c0", t + timedelta(minutes=10))]
        assert first_rebilled_day(suspended, resumed, zone) == datetime.min.replace(tzinfo=UTC)
        check_member_repriced(suspended, resumed, ledger, timezone=zone, plans={"gold": _plan()})

    def test_a_start_date_or_plan_rewritten_over_charges_is_refused(self) -> None:
        """Monthly at 30.00 from 1 January, 5.00 off from date 1, charged 30.00 on
        1 January and 25.00 on 1 February. Started on 15 January instead, 1 February is no
        billing date (30.00 due): refused (field ``start_date``); on 20 December, the
        charges pay 20 December and 20 January: kept. On Platinum at 60.00 from the start
        (``plan_id`` rewritten): refused (field ``plan_id``)."""
        gold, platinum = _plan(), MembershipPlan("plat", "syd", "Platinum", AUD30 * 2, "monthly")
        plans = {"gold": gold, "plat": platinum}
        off = Discount("off", "syd", "Loyalty", amount=Money.of("5", "AUD"))
        member = _member(date(2026, 1, 1)).grant(off, first=1)
        ledger = [_charge("c0", _local(date(2026, 1, 1), 11))]
        ledger.append(_charge("c1", _local(date(2026, 2, 1), 11), amount=AUD30 - off.amount))

        def check(after: Member) -> None:
            check_member_repriced(member, after, ledger, timezone=SYD, plans=plans)

        for field, value, charge in (
            ("start_date", date(2026, 1, 15), "c1"),
            ("plan_id", "plat", "c0"),
        ):
            with pytest.raises(RuleViolation, match=f"charge {charge} of") as caught:
                check(attrs.evolve(member, **{field: value}))
            assert (caught.value.rule, caught.value.field) == ("reprice_backdated", field)
        check(attrs.evolve(member, start_date=date(2025, 12, 20)))

    @settings(max_examples=60)
    @given(_histories(), st.integers(-45, 45), st.data(), sps.positive_money("AUD"))
    def test_refused_exactly_when_a_charged_date_changes_price(
        self,
        case: tuple[Member, MembershipPlan, list[Payment], datetime],
        offset: int,
        data: st.DataObject,
        price: Money,
    ) -> None:
        """A reprice from ``on`` (near a charge's day): refused iff a billing date due at
        the member's last charge (or the first date, for a charge ahead of it) is on or
        after ``on`` and ``price`` differs from what that date cost."""
        member, plan, ledger, now = case
        charges = [p for p in ledger if p.kind is PaymentKind.CHARGE]
        # ``on`` near the last charge's day or a billing date before it.
        days = [local_day(p.at, SYD) for p in charges[-1:]] or [local_day(now, SYD)]
        days += billing_dates(member, plan, through=days[0])
        on = data.draw(st.sampled_from(days), label="near") + timedelta(days=offset // 3)
        # The plan as kept: its price points before ``on`` (a reprice comes after them).
        before = attrs.evolve(plan, earlier_prices=[p for p in plan.earlier_prices if p.until < on])
        after = before.reprice(price, on=on)
        changed = False
        if charges:
            last = max(charges, key=replay_order)
            s = billing_statement(member, before, [], at=last.at, timezone=SYD)
            dates = [c.due_date for c in s.charges] or [member.start_date]
            changed = any(d >= on and before.price_on(d) != price for d in dates)
        assert self._refused(before, after, member, ledger) == changed


class BillingMachine(RuleBasedStateMachine):
    """A member billed under a dunning policy: time passes, the host runs the policy and
    applies each action (a charge or retry succeeds or fails), staff suspend, resume,
    cancel and refund. After every step the statement balances, nothing is asked of a
    Suspended or Cancelled member that it may not be asked, and a second run at the same
    instant repeats nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.plan = _plan()
        self.member = _member(date(2026, 1, 1), activate=False)
        self.now = self.member.created_at
        self.ledger: list[Payment] = []
        self.sent: set[str] = set()
        self.policy = DunningPolicy()

    @initialize(
        cycle=st.sampled_from(BillingCycle),
        start=st.dates(date(2025, 1, 1), date(2026, 12, 31)),
        policy=st.sampled_from(
            [
                DunningPolicy(),
                DunningPolicy(
                    retry_days=(2,),
                    reminder_days=(1,),
                    cancel_after_days=9,
                    suspend_after_days=None,
                ),
            ]
        ),
    )
    def start(self, cycle: BillingCycle, start: date, policy: DunningPolicy) -> None:
        self.plan = _plan(cycle)
        self.member = _member(start, activate=False)
        self.now = self.member.created_at
        self.policy = policy

    def _statement(self) -> BillingStatement:
        return billing_statement(self.member, self.plan, self.ledger, at=self.now, timezone=SYD)

    def _pay(self, amount: Money, succeeded: bool) -> None:
        outcome = "succeeded" if succeeded else "failed"
        charge = _charge(f"p{len(self.ledger)}", self.now, outcome, amount)
        check_membership_charge(self.member, self.plan, self.ledger, charge, timezone=SYD)
        self.ledger.append(charge)
        status = self.member.status
        if succeeded and status in (MembershipStatus.PENDING, MembershipStatus.FAILED):
            self.member = self.member.activate(at=self.now)
        elif not succeeded and status in (MembershipStatus.PENDING, MembershipStatus.ACTIVE):
            self.member = self.member.fail(at=self.now)

    @rule(days=st.integers(0, 20), hours=st.integers(0, 23))
    def time_passes(self, days: int, hours: int) -> None:
        self.now += timedelta(days=days, hours=hours)

    def _actions(self) -> tuple[DunningAction, ...]:
        return dunning_actions(
            self.member,
            self.plan,
            self.ledger,
            at=self.now,
            timezone=SYD,
            policy=self.policy,
            sent=self.sent,
        )

    @rule(outcomes=st.lists(st.booleans(), min_size=3, max_size=3))
    def the_host_runs_the_policy(self, outcomes: list[bool]) -> None:
        actions = self._actions()
        status = self.member.status
        owed = self._statement().outstanding - self._statement().credit
        if status is MembershipStatus.CANCELLED:
            assert actions == ()
        if status is MembershipStatus.SUSPENDED:
            assert {a.step for a in actions} <= {DunningStep.CANCEL}
        attempts = [a for a in actions if a.step in (DunningStep.CHARGE, DunningStep.RETRY)]
        assert len(attempts) <= 1
        for action in actions:
            if action.step in (DunningStep.CHARGE, DunningStep.RETRY, DunningStep.REMIND):
                assert action.amount == owed
                assert owed.is_positive()
            assert action.due_at <= self.now
        for action, succeeded in zip(actions, outcomes * 2, strict=False):
            if action.amount is not None and action.step is not DunningStep.REMIND:
                self._pay(action.amount, succeeded)
            elif action.step is DunningStep.REMIND:
                self.sent.add(action.key)
            elif action.step is DunningStep.SUSPEND:
                self.member = self.member.suspend(at=self.now)
            else:
                self.member = self.member.cancel(at=self.now)
        assert not {a.key for a in self._actions()} & {a.key for a in actions}

    @precondition(lambda self: self.member.status is MembershipStatus.SUSPENDED)
    @rule()
    def staff_resume(self) -> None:
        self.member = self.member.activate(at=self.now, reason="resumed")

    @precondition(
        lambda self: self.member.status in (MembershipStatus.ACTIVE, MembershipStatus.FAILED)
    )
    @rule()
    def staff_suspend(self) -> None:
        self.member = self.member.suspend(at=self.now)

    @precondition(lambda self: self.member.status is not MembershipStatus.CANCELLED)
    @rule()
    def staff_cancel(self) -> None:
        self.member = self.member.cancel(at=self.now)

    @rule(cents=st.integers(1, 6000))
    def the_practice_refunds(self, cents: int) -> None:
        s = self._statement()
        net = s.collected - s.refunded
        if net.is_positive():
            amount = min(Money.of(f"{cents / 100:.2f}", "AUD"), net)
            self.ledger.append(_refund(f"p{len(self.ledger)}", self.now, amount))

    @invariant()
    def the_statement_balances(self) -> None:
        s = self._statement()
        assert s.due - s.collected + s.refunded == s.outstanding - s.credit
        assert all(not c.paid.is_negative() and c.paid <= c.amount for c in s.charges)
        cancelled = self.member.first_entered(MembershipStatus.CANCELLED)
        if cancelled is not None:
            assert all(local_midnight(c.due_date, SYD) <= cancelled for c in s.charges)
            assert s.next_charge_date is None


TestBillingMachine = BillingMachine.TestCase
TestBillingMachine.settings = settings(max_examples=20, stateful_step_count=25, deadline=None)


def test_the_demo_ledger_agrees_with_the_billing_engine() -> None:
    """At the demo's now, every Active member's charges are paid but those due today
    (being collected), every Failed member owes, a Suspended member owes only when the
    dunning policy suspended them, and no member has paid ahead; and the policy asks
    for nothing that fell due before today but reminders (which the demo does not
    record): the demo is billed through this engine."""
    from smilepass_core.demo import DEMO_NOW, load_demo

    data = load_demo()
    plans = {p.id: p for p in data.membership_plans}
    zones = {p.id: p.timezone for p in data.practices}
    ledgers: dict[str, list[Payment]] = {}
    for payment in data.payments:
        if payment.member_id is not None:
            ledgers.setdefault(payment.member_id, []).append(payment)
    seen = set()
    for member in data.members:
        zone = zones[member.practice_id]
        statement = billing_statement(
            member, plans[member.plan_id], ledgers.get(member.id, []), at=DEMO_NOW, timezone=zone
        )
        assert statement.credit.is_zero(), member.id
        if member.status is MembershipStatus.ACTIVE:
            today = local_day(DEMO_NOW, zone)
            assert all(c.due_date == today for c in statement.unsettled), member.id
        if member.status is MembershipStatus.FAILED:
            assert statement.unsettled, member.id
        if member.status is MembershipStatus.SUSPENDED:
            by_policy = member.history[-1].reason.startswith("dunning: ")
            assert bool(statement.unsettled) == by_policy, member.id
        today = local_day(DEMO_NOW, zone)
        for action in dunning_actions(
            member, plans[member.plan_id], ledgers.get(member.id, []), at=DEMO_NOW, timezone=zone
        ):
            assert action.step is DunningStep.REMIND or local_day(action.due_at, zone) == today
        seen.add((member.status, bool(statement.unsettled)))
    assert (MembershipStatus.ACTIVE, False) in seen
    assert (MembershipStatus.FAILED, True) in seen
    assert (MembershipStatus.SUSPENDED, True) in seen
    assert (MembershipStatus.SUSPENDED, False) in seen


class TestDunningWorklist:
    """The worklist is every member's dunning actions, oldest first; sent reminders out."""

    def test_the_demo_worklist_is_each_members_actions(self) -> None:
        from smilepass_core.demo import DEMO_NOW, demo_store
        from smilepass_core.reports import dunning_worklist

        store = demo_store()
        worklist = dunning_worklist(store, now=DEMO_NOW, practices="syd")
        expected = []
        plans = {p.id: p for p in store.membership_plans.find(ScopeQuery())}
        payments = store.payments.find(PaymentQuery(practices=("syd",)))
        for member in store.members.find(MemberQuery(practices=("syd",))):
            expected += [
                a.key
                for a in dunning_actions(
                    member, plans[member.plan_id], payments, at=DEMO_NOW, timezone=SYD
                )
            ]
        assert sorted(r.key for r in worklist.rows) == sorted(expected)
        assert len(expected) > 0
        assert [r.due_at for r in worklist.rows] == sorted(r.due_at for r in worklist.rows)
        reminders = {r.key for r in worklist.rows if r.step is DunningStep.REMIND}
        again = dunning_worklist(store, now=DEMO_NOW, practices="syd", sent=reminders)
        assert {r.key for r in again.rows} == {r.key for r in worklist.rows} - reminders
