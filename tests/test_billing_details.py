"""What the billing area's refusals, defaults and edges say, field by field: billing,
invoices, overdue, discounts and templates (written against the survivors of the
``billing`` mutation run, docs/reliability.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import attrs
import pytest

from smilepass_core import (
    BillingCycle,
    CurrencyMismatch,
    InvalidValue,
    Member,
    MembershipPlan,
    Money,
    Patient,
    Payment,
    PaymentPlan,
    PaymentType,
    RuleViolation,
)
from smilepass_core.domain.billing import (
    _MAX_DATES,
    DunningAction,
    DunningPolicy,
    DunningStep,
    billing_dates,
    billing_statement,
    check_cancel_after_charges,
    check_charge_dates,
    check_member_repriced,
    check_membership_charge,
    check_reprice,
    dunning_actions,
    price_due_at,
    priced_dates,
)
from smilepass_core.domain.discounts import AppliedDiscount, Discount, DiscountBasis, price_due
from smilepass_core.domain.invoices import (
    InvoiceStatus,
    latest_overdue_day,
    member_charges,
    member_invoices,
    plan_charges,
)
from smilepass_core.domain.overdue import (
    invoices_at,
    is_overdue,
    last_event,
    last_overdue_due_date,
    overdue_invoices,
    overdue_outlook,
)
from smilepass_core.periods import local_midnight
from test_billing import AUD30, SYD, _charge, _local, _member, _plan, _refund
from test_templates import _offer, _template

AUD20 = Money.of("20.00", "AUD")
ZERO = Money.zero("AUD")
SILVER = MembershipPlan("silver", "syd", "Silver", AUD20, BillingCycle.MONTHLY)
SPRING = Discount("spring", "syd", "Spring", amount=Money.of("5.00", "AUD"), cycles=3)
FAMILY = Discount("family", "syd", "Family", percent=10, basis=DiscountBasis.PER_DEPENDENT)
NO_ESCALATION = DunningPolicy(suspend_after_days=None, cancel_after_days=None)
PLATINUM = MembershipPlan("plat", "syd", "Platinum", Money.of("60.00", "AUD"), BillingCycle.MONTHLY)
OFF = Discount("off", "syd", "Loyalty", amount=Money.of("5.00", "AUD"))


def aud(amount: str) -> Money:
    return Money.of(amount, "AUD")


def _moved(start: date = date(2026, 1, 10), *, to: str = "gold", on: date = date(2026, 1, 20)):
    """A member enrolled on Silver, moved to ``to`` at 09:00 on ``on`` (Sydney)."""
    member = Member.enrol(
        id="m1",
        practice_id="syd",
        plan_id="silver",
        account_holder=Patient("p1", "Ada Lovelace"),
        start_date=start,
        at=_local(start),
    ).activate(at=_local(start, 10))
    return member.change_plan(to, at=_local(on))


def _enrolled(
    start: date, at: datetime, *, id: str = "m1", plan_id: str = "gold", name: str = "Ada Lovelace"
) -> Member:
    """A member of ``syd`` on ``plan_id`` for a contract from ``start``, enrolled at ``at``
    (Pending)."""
    return Member.enrol(
        id=id,
        practice_id="syd",
        plan_id=plan_id,
        account_holder=Patient(f"p{id[1:]}", name),
        start_date=start,
        at=at,
    )


def _details(error: InvalidValue) -> tuple[object, object, object]:
    return error.field, error.value, error.reason


# -- billing -------------------------------------------------------------------------------


class TestBillingDates:
    def test_the_limit_is_max_dates(self) -> None:
        """A statement lists at most _MAX_DATES billing dates: that many are listed, one
        more is refused, naming ``at``."""
        member, plan = _member(date(2000, 1, 3)), _plan(BillingCycle.WEEKLY)
        last = plan.charge_date(member.start_date, _MAX_DATES - 1)
        assert len(billing_dates(member, plan, through=last)) == _MAX_DATES
        through = plan.charge_date(member.start_date, _MAX_DATES)
        with pytest.raises(InvalidValue) as caught:
            billing_dates(member, plan, through=through)
        assert _details(caught.value) == (
            "at",
            through,
            f"more than {_MAX_DATES} billing dates before it",
        )

    def test_a_plan_change_without_a_time_zone_is_refused_with_its_details(self) -> None:
        with pytest.raises(InvalidValue) as caught:
            billing_dates(_moved(), _plan(), through=date(2026, 2, 20))
        assert _details(caught.value) == (
            "timezone",
            None,
            "is needed: member m1 changed plan (pass timezone=...)",
        )

    def test_the_first_cycle_is_the_plans_in_force_as_the_start_day_begins_locally(
        self,
    ) -> None:
        """Enrolled on monthly Silver for a contract from 10 January, Suspended on 5 January,
        moved to weekly Gold at 05:00 on 10 January (Sydney; still 9 January in UTC),
        resumed on 12 January. 10 January began on Silver, so the dates start monthly; it
        was spent Suspended, so the move waits for 10 February, which anchors the weekly
        cycle: 10, 17 and 24 February."""
        member = (
            _enrolled(date(2026, 1, 10), _local(date(2026, 1, 1)), plan_id="silver")
            .activate(at=_local(date(2026, 1, 1), 10))
            .suspend(at=_local(date(2026, 1, 5)))
            .change_plan("gold", at=_local(date(2026, 1, 10), 5))
            .activate(at=_local(date(2026, 1, 12)))
        )
        weekly = _plan(BillingCycle.WEEKLY)
        dates = billing_dates(
            member, weekly, through=date(2026, 2, 24), timezone=SYD, plans={"silver": SILVER}
        )
        assert dates == [date(2026, 1, 10), date(2026, 2, 10), date(2026, 2, 17), date(2026, 2, 24)]


@pytest.mark.parametrize(
    ("resumed", "due"),
    [
        (local_midnight(date(2026, 2, 10), SYD), True),  # resumed as the billing day starts
        (local_midnight(date(2026, 2, 11), SYD), False),  # as the next day starts
        (_local(date(2026, 2, 11)), False),  # during the next day
    ],
)
def test_a_date_is_due_when_resumed_during_its_local_day(resumed: datetime, due: bool) -> None:
    member = _member(date(2026, 1, 10)).suspend(at=_local(date(2026, 2, 5)))
    member = member.activate(at=resumed)
    statement = billing_statement(member, _plan(), [], at=_local(date(2026, 2, 20)), timezone=SYD)
    expected = [date(2026, 1, 10)] + ([date(2026, 2, 10)] if due else [])
    assert [c.due_date for c in statement.charges] == expected


class TestStatement:
    def test_names_member_and_instant(self) -> None:
        at = _local(date(2026, 1, 20))
        statement = billing_statement(_member(date(2026, 1, 10)), _plan(), [], at=at, timezone=SYD)
        assert (statement.member_id, statement.at) == ("m1", at)

    def test_another_plan_is_refused_with_its_details(self) -> None:
        with pytest.raises(InvalidValue) as caught:
            billing_statement(
                _member(date(2026, 1, 10)), SILVER, [], at=_local(date(2026, 1, 20)), timezone=SYD
            )
        assert _details(caught.value) == ("plan", "silver", "is not member 'm1''s plan gold")

    def test_price_due_at_refuses_another_plan_with_its_details(self) -> None:
        with pytest.raises(InvalidValue) as caught:
            price_due_at(
                _member(date(2026, 1, 10)), SILVER, at=_local(date(2026, 1, 20)), timezone=SYD
            )
        assert _details(caught.value) == ("plan", "silver", "is not member 'm1''s plan gold")

    def test_priced_dates_refuses_another_plan_with_its_details(self) -> None:
        with pytest.raises(InvalidValue) as caught:
            priced_dates(
                _member(date(2026, 1, 10)), SILVER, at=_local(date(2026, 1, 20)), timezone=SYD
            )
        assert _details(caught.value) == ("plan", "silver", "is not member 'm1''s plan gold")

    def test_priced_dates_break_down_each_due_date(self) -> None:
        """Monthly at 30.00 from 10 January with 5.00 off three dates from date 1,
        Suspended through 10 March: 10 January 30.00, 10 February 25.00 (5.00 off), no
        10 March, 10 April 25.00; the amounts are the statement's."""
        member = (
            _member(date(2026, 1, 10))
            .grant(SPRING, first=1)
            .suspend(at=_local(date(2026, 3, 1)))
            .activate(at=_local(date(2026, 3, 20)))
        )
        at = _local(date(2026, 4, 15))
        priced = priced_dates(member, _plan(), at=at, timezone=SYD)
        assert [
            (k, str(d), str(p.list_price), [(i, str(m)) for i, m in p.reductions], str(p.due))
            for k, d, p in priced
        ] == [
            (0, "2026-01-10", "AUD 30.00", [], "AUD 30.00"),
            (1, "2026-02-10", "AUD 30.00", [("spring", "AUD 5.00")], "AUD 25.00"),
            (3, "2026-04-10", "AUD 30.00", [("spring", "AUD 5.00")], "AUD 25.00"),
        ]
        statement = billing_statement(member, _plan(), [], at=at, timezone=SYD)
        assert [(c.number, c.amount) for c in statement.charges] == [
            (k, p.due) for k, _, p in priced
        ]

    def test_only_the_members_entries_up_to_at_count(self) -> None:
        ledger = [
            _charge("c0", _local(date(2026, 1, 10), 12)),
            Payment("x0", "syd", AUD30, "charge", "succeeded", _local(date(2026, 1, 11)), "m2"),
            _charge("c1", _local(date(2026, 1, 25))),  # after `at`
        ]
        statement = billing_statement(
            _member(date(2026, 1, 10)), _plan(), ledger, at=_local(date(2026, 1, 20)), timezone=SYD
        )
        assert (statement.collected, statement.credit) == (AUD30, ZERO)

    def test_a_failed_refund_does_not_stop_the_settlement(self) -> None:
        ledger = [
            _charge("c0", _local(date(2026, 1, 10), 12)),
            Payment("r0", "syd", AUD30, "refund", "failed", _local(date(2026, 1, 11)), "m1"),
            _charge("c1", _local(date(2026, 2, 10), 12)),
        ]
        statement = billing_statement(
            _member(date(2026, 1, 10)), _plan(), ledger, at=_local(date(2026, 2, 20)), timezone=SYD
        )
        assert statement.collected == aud("60.00")

    def test_a_refund_one_cent_above_what_was_paid_is_refused(self) -> None:
        ledger = [
            _charge("c0", _local(date(2026, 1, 10), 12)),
            _refund("r0", _local(date(2026, 1, 11)), aud("30.01")),
        ]
        with pytest.raises(RuleViolation) as caught:
            billing_statement(
                _member(date(2026, 1, 10)),
                _plan(),
                ledger,
                at=_local(date(2026, 1, 20)),
                timezone=SYD,
            )
        error = caught.value
        assert (error.rule, error.field, str(error)) == (
            "refund_above_collected",
            "amount",
            "refund 'r0' of AUD 30.01 exceeds what member 'm1' paid before it",
        )

    def test_a_payment_in_another_currency_is_refused_with_its_details(self) -> None:
        usd = Payment(
            "c0",
            "syd",
            Money.of("30", "USD"),
            "charge",
            "succeeded",
            _local(date(2026, 1, 10), 12),
            "m1",
        )
        with pytest.raises(CurrencyMismatch) as caught:
            billing_statement(
                _member(date(2026, 1, 10)),
                _plan(),
                [usd],
                at=_local(date(2026, 1, 20)),
                timezone=SYD,
            )
        error = caught.value
        assert (error.left, error.right, error.operation, error.field) == (
            "AUD",
            "USD",
            "settle",
            "amount",
        )

    def test_an_earlier_plan_in_another_currency_is_refused_with_its_details(self) -> None:
        usd = MembershipPlan("silver", "syd", "Silver", Money.of("20", "USD"), BillingCycle.MONTHLY)
        with pytest.raises(CurrencyMismatch) as caught:
            billing_statement(
                _moved(),
                _plan(),
                [],
                at=_local(date(2026, 2, 20)),
                timezone=SYD,
                plans={"silver": usd},
            )
        error = caught.value
        assert (error.left, error.right, error.operation, error.field) == (
            "AUD",
            "USD",
            "bill",
            "plans",
        )


class TestPlanOn:
    def test_a_missing_earlier_plan_is_named(self) -> None:
        with pytest.raises(InvalidValue) as caught:
            billing_statement(_moved(), _plan(), [], at=_local(date(2026, 2, 20)), timezone=SYD)
        assert _details(caught.value) == (
            "plans",
            "silver",
            "is needed: member m1 was on it (pass plans=...)",
        )

    def test_an_earlier_plan_of_another_cycle_sets_the_dates_until_the_move(self) -> None:
        """Weekly Silver from Saturday 10 January, moved to monthly Gold on 20 January:
        10 and 17 January at 20.00, then 24 January (the next weekly date) at 30.00 anchors
        the monthly cycle; next 24 February."""
        weekly = MembershipPlan("silver", "syd", "Silver", AUD20, BillingCycle.WEEKLY)
        s = billing_statement(
            _moved(),
            _plan(),
            [],
            at=_local(date(2026, 2, 20)),
            timezone=SYD,
            plans={"silver": weekly},
        )
        assert [(str(c.due_date), c.amount) for c in s.charges] == [
            ("2026-01-10", AUD20),
            ("2026-01-17", AUD20),
            ("2026-01-24", AUD30),
        ]
        assert s.next_charge_date == date(2026, 2, 24)


class TestPolicy:
    def test_one_day_is_the_shortest_escalation(self) -> None:
        policy = DunningPolicy(suspend_after_days=1, cancel_after_days=2)
        assert (policy.suspend_after_days, policy.cancel_after_days) == (1, 2)

    def test_refusals_name_field_value_and_reason(self) -> None:
        with pytest.raises(InvalidValue) as caught:
            DunningPolicy(retry_days=(3, 1))
        assert _details(caught.value) == (
            "days",
            (3, 1),
            "must be strictly increasing whole days >= 0",
        )
        with pytest.raises(InvalidValue) as caught:
            DunningPolicy(suspend_after_days=0)
        assert _details(caught.value) == (
            "suspend_after_days",
            0,
            "must be a whole number of days >= 1, or None",
        )
        with pytest.raises(InvalidValue) as caught:
            DunningPolicy(suspend_after_days=14, cancel_after_days=14)
        assert _details(caught.value) == (
            "cancel_after_days",
            14,
            "must come after suspend_after_days 14",
        )


class TestDunning:
    START = date(2026, 1, 10)

    def _actions(self, ledger: list[Payment], day: date, hour: int = 12, **options: object):
        member = options.pop("member", None) or _member(self.START)
        return dunning_actions(
            member,
            options.pop("plan", None) or _plan(),
            ledger,
            at=_local(day, hour),
            timezone=SYD,
            **options,
        )

    def test_a_charge_never_attempted_in_full(self) -> None:
        """Another member's charge does not count as an attempt."""
        other = Payment("x0", "syd", AUD30, "charge", "succeeded", _local(date(2026, 1, 11)), "m2")
        assert self._actions([other], date(2026, 1, 12)) == (
            DunningAction(
                "m1",
                DunningStep.CHARGE,
                local_midnight(self.START, SYD),
                "billing date 2026-01-10 not attempted",
                0,
                amount=AUD30,
            ),
        )

    def test_the_charge_asks_for_what_is_owed_at_the_discounted_price(self) -> None:
        ledger = [_charge("c0", _local(self.START, 12), amount=aud("35.00"))]  # 25 + 10 of 25
        (action,) = self._actions(ledger, date(2026, 2, 12), discounts=[AppliedDiscount(SPRING)])
        assert (action.step, action.amount) == (DunningStep.CHARGE, aud("15.00"))

    def test_earlier_plans_are_passed_on(self) -> None:
        (action,) = self._actions([], date(2026, 1, 22), member=_moved(), plans={"silver": SILVER})
        assert (action.step, action.amount) == (DunningStep.CHARGE, AUD20)

    def test_a_payment_as_the_newest_date_starts_counts_as_its_attempt(self) -> None:
        """January unpaid; a payment at local midnight on 10 February pays it: February's
        date was attempted (at the very instant it began) and is not charged again."""
        ledger = [_charge("c0", local_midnight(date(2026, 2, 10), SYD))]
        assert self._actions(ledger, date(2026, 2, 12)) == ()

    def test_a_suspended_member_with_a_failed_charge_is_cancelled(self) -> None:
        member = _member(self.START).suspend(at=_local(date(2026, 1, 25)))
        ledger = [_charge("f0", _local(self.START, 12), "failed")]
        assert self._actions(ledger, date(2026, 2, 9), member=member) == (
            DunningAction(
                "m1",
                DunningStep.CANCEL,
                local_midnight(date(2026, 2, 9), SYD),
                "a charge unpaid 30 days since it failed on 2026-01-10",
            ),
        )

    def test_the_first_reminder_in_full(self) -> None:
        ledger = [_charge("f0", _local(self.START, 12), "failed")]
        actions = self._actions(ledger, self.START, 13, pay_link=lambda key: f"https://pay/{key}")
        assert actions == (
            DunningAction(
                "m1",
                DunningStep.REMIND,
                local_midnight(self.START, SYD),
                "charge of 2026-01-10 unpaid since 2026-01-10; reminder 1 of 3",
                0,
                0,
                AUD30,
                "https://pay/remind:m1:0:0",
            ),
        )

    def test_the_first_retry_in_full(self) -> None:
        ledger = [_charge("f0", _local(self.START, 12), "failed")]
        actions = self._actions(ledger, date(2026, 1, 11), sent={"remind:m1:0:0"})
        assert actions == (
            DunningAction(
                "m1",
                DunningStep.RETRY,
                local_midnight(date(2026, 1, 11), SYD),
                "a charge failed on 2026-01-10; retry 1 of 3",
                0,
                0,
                AUD30,
            ),
        )

    def test_an_attempt_as_the_retry_day_starts_is_that_retry(self) -> None:
        ledger = [
            _charge("f0", _local(self.START, 12), "failed"),
            _charge("f1", local_midnight(date(2026, 1, 11), SYD), "failed"),
        ]
        assert self._actions(ledger, date(2026, 1, 11), sent={"remind:m1:0:0"}) == ()

    def _retried(self, last: datetime) -> list[Payment]:
        days = (date(2026, 1, 11), date(2026, 1, 13), date(2026, 1, 17))
        return [
            _charge("f0", _local(self.START, 12), "failed"),
            *(_charge(f"f{k + 1}", _local(d, 12), "failed") for k, d in enumerate(days)),
            _charge("f4", last, "failed"),
        ]

    def test_past_the_last_retry_a_newer_date_is_charged(self) -> None:
        ledger = self._retried(_local(date(2026, 1, 20)))
        actions = self._actions(
            ledger, date(2026, 2, 10), 13, policy=NO_ESCALATION, sent={"remind:m1:0:2"}
        )
        assert actions == (
            DunningAction(
                "m1",
                DunningStep.CHARGE,
                local_midnight(date(2026, 2, 10), SYD),
                "a billing date fell due at 2026-02-09 13:00 UTC and was not attempted",
                0,
                amount=aud("60.00"),
            ),
        )

    def test_past_the_last_retry_an_attempt_as_the_newer_date_starts_counts(self) -> None:
        ledger = self._retried(local_midnight(date(2026, 2, 10), SYD))
        actions = self._actions(
            ledger, date(2026, 2, 10), 13, policy=NO_ESCALATION, sent={"remind:m1:0:2"}
        )
        assert actions == ()


class TestLedgerRules:
    def test_a_cancellation_before_recorded_charges_is_refused(self) -> None:
        cancelled = _local(date(2026, 2, 1))
        member = _member(date(2026, 1, 10)).cancel(at=cancelled)
        first, last = _local(date(2026, 2, 5)), _local(date(2026, 2, 10))
        ledger = [
            _charge("c1", first),
            _charge("c2", last),  # the latest charge: named
            _charge("c0", cancelled),  # at the cancellation itself: allowed
            _refund("r0", _local(date(2026, 2, 11))),  # not a charge
            Payment("x0", "syd", AUD30, "charge", "succeeded", _local(date(2026, 2, 12)), "m2"),
        ]
        with pytest.raises(RuleViolation) as caught:
            check_cancel_after_charges(member, ledger)
        error = caught.value
        assert (error.rule, error.field, error.context, str(error)) == (
            "charge_after_cancel",
            "history",
            {"payment_id": "c2"},
            (
                f"member m1 cancelled at {cancelled.isoformat()}, before charge c2 already "
                f"recorded at {last.isoformat()}: no charge may follow a cancellation"
            ),
        )

    def test_a_charge_at_the_cancellation_itself_is_allowed(self) -> None:
        cancelled = _local(date(2026, 2, 1))
        member = _member(date(2026, 1, 10)).cancel(at=cancelled)
        check_cancel_after_charges(member, [_charge("c0", cancelled)])

    def test_a_charge_before_enrolment_is_refused_with_its_details(self) -> None:
        member = _member(date(2026, 1, 10))
        at = _local(date(2026, 1, 10), 8)
        with pytest.raises(RuleViolation) as caught:
            check_charge_dates(member, _charge("c0", at))
        error = caught.value
        assert (error.rule, error.field, error.context, str(error)) == (
            "charge_before_enrolment",
            "at",
            {"payment_id": "c0"},
            (
                f"charge c0 at {at.isoformat()} is before member m1 was enrolled "
                f"({member.created_at.isoformat()})"
            ),
        )

    def test_a_charge_after_cancel_is_refused_with_its_details(self) -> None:
        cancelled = _local(date(2026, 2, 1))
        member = _member(date(2026, 1, 10)).cancel(at=cancelled)
        at = _local(date(2026, 2, 2))
        with pytest.raises(RuleViolation) as caught:
            check_charge_dates(member, _charge("c0", at))
        error = caught.value
        assert (error.rule, error.field, error.context, str(error)) == (
            "charge_after_cancel",
            "at",
            {"payment_id": "c0"},
            (
                f"charge c0 at {at.isoformat()} is after member m1 was cancelled "
                f"({cancelled.isoformat()}): no further charges"
            ),
        )


class TestMembershipCharge:
    def test_after_a_plan_change_the_price_of_the_newest_date_is_expected(self) -> None:
        """Moved to Gold on 20 January: until 10 February the newest date is Silver's."""
        earlier = [_charge("c0", _local(date(2026, 1, 10), 12), amount=AUD20)]
        charge = _charge("c1", _local(date(2026, 1, 25)))
        with pytest.raises(RuleViolation) as caught:
            check_membership_charge(
                _moved(), _plan(), earlier, charge, timezone=SYD, plans={"silver": SILVER}
            )
        error = caught.value
        assert (error.rule, error.field, error.context, str(error)) == (
            "charge_amount",
            "amount",
            {"payment_id": "c1", "expected": AUD20, "owed": ZERO},
            "charge c1 of AUD 30.00 for member m1: expected AUD 20.00",
        )

    def test_before_the_first_billing_date_that_dates_price_is_expected(self) -> None:
        """A charge ahead of the contract's start pays billing date 0: its list price on
        the start date (here repriced on it) less the discounts in force on it."""
        member = _enrolled(date(2026, 2, 1), _local(date(2026, 1, 10)))
        plan = _plan().reprice(aud("40.00"), on=date(2026, 2, 1))
        spring = [AppliedDiscount(SPRING)]
        at = _local(date(2026, 1, 15))
        check_membership_charge(
            member, plan, [], _charge("c0", at, amount=aud("35.00")), timezone=SYD, discounts=spring
        )
        for wrong in ("30.00", "40.00", "25.00"):
            with pytest.raises(RuleViolation) as caught:
                check_membership_charge(
                    member,
                    plan,
                    [],
                    _charge("c0", at, amount=aud(wrong)),
                    timezone=SYD,
                    discounts=spring,
                )
            assert caught.value.context["expected"] == aud("35.00")

    def test_a_repriced_plans_price_today_is_not_an_earlier_dates_price(self) -> None:
        """Gold at 30.00 until 9 February, 40.00 from 10 February: on 20 January the newest
        date (10 January) costs 30.00 and is unpaid, so a charge of 40.00 is refused; on
        12 February the newest date (10 February) costs 40.00, so it is accepted."""
        member, plan = (
            _member(date(2026, 1, 10)),
            _plan().reprice(aud("40.00"), on=date(2026, 2, 10)),
        )
        early = _charge("c0", _local(date(2026, 1, 20)), amount=aud("40.00"))
        with pytest.raises(RuleViolation) as caught:
            check_membership_charge(member, plan, [], early, timezone=SYD)
        error = caught.value
        assert (error.rule, error.field, error.context, str(error)) == (
            "charge_amount",
            "amount",
            {"payment_id": "c0", "expected": AUD30, "owed": AUD30},
            "charge c0 of AUD 40.00 for member m1: expected AUD 30.00 or the AUD 30.00 owed",
        )
        paid = [_charge("c0", _local(date(2026, 1, 10), 12))]
        on_time = _charge("c1", _local(date(2026, 2, 12)), amount=aud("40.00"))
        check_membership_charge(member, plan, paid, on_time, timezone=SYD)

    def test_what_is_owed_is_accepted(self) -> None:
        """25 due on each date (Spring); 35 paid in January: February's 15 is owed."""
        earlier = [_charge("c0", _local(date(2026, 1, 10), 12), amount=aud("35.00"))]
        charge = _charge("c1", _local(date(2026, 2, 12)), amount=aud("15.00"))
        check_membership_charge(
            _member(date(2026, 1, 10)),
            _plan(),
            earlier,
            charge,
            timezone=SYD,
            discounts=[AppliedDiscount(SPRING)],
        )

    def test_credit_is_not_owed(self) -> None:
        """40 paid for January's 25: 15 credit, nothing owed; a charge of 15 is refused."""
        earlier = [_charge("c0", _local(date(2026, 1, 10), 12), amount=aud("40.00"))]
        charge = _charge("c1", _local(date(2026, 1, 20)), amount=aud("15.00"))
        with pytest.raises(RuleViolation) as caught:
            check_membership_charge(
                _member(date(2026, 1, 10)),
                _plan(),
                earlier,
                charge,
                timezone=SYD,
                discounts=[AppliedDiscount(SPRING)],
            )
        error = caught.value
        assert (error.context, str(error)) == (
            {"payment_id": "c1", "expected": aud("25.00"), "owed": aud("-15.00")},
            "charge c1 of AUD 15.00 for member m1: expected AUD 25.00",
        )


def _monthly_charged() -> tuple[Member, list[Payment]]:
    """Gold from 1 January, charged AUD 30.00 on 1 January (c0) and 1 February (c1)."""
    ledger = [
        _charge("c0", _local(date(2026, 1, 1), 11)),
        _charge("c1", _local(date(2026, 2, 1), 11)),
    ]
    return _member(date(2026, 1, 1)), ledger


class TestReprice:
    """``check_reprice``: which entry is a member's last charge, which members are read, and
    what the refusal says."""

    def test_the_refusal_in_full(self) -> None:
        """A rise to 40.00 from 1 February, the date the last charge (c1) paid. A member
        without a charge, listed first, is skipped, and the next member is still read."""
        member, ledger = _monthly_charged()
        idle = _enrolled(date(2026, 1, 1), _local(date(2026, 1, 1)), id="m0", name="Grace Hopper")
        plan = _plan()
        dearer = plan.reprice(aud("40.00"), on=date(2026, 2, 1))
        with pytest.raises(RuleViolation) as caught:
            check_reprice(plan, dearer, [idle, member], ledger, timezone=SYD, plans={"gold": plan})
        error = caught.value
        assert (error.rule, error.field, error.context, str(error)) == (
            "reprice_backdated",
            "earlier_prices",
            {"payment_id": "c1"},
            (
                "plan gold changes a billing date member m1 was charged up to (last charge c1):"
                " 2026-02-01 at AUD 30.00, now 2026-02-01 at AUD 40.00; reprice from a later date"
            ),
        )

    def test_a_date_dropped_before_the_last_charge_is_named(self) -> None:
        """Annual, 1 February is no billing date: the charge c1 of 1 February would pay
        none. The first difference is February's date, now none."""
        member, ledger = _monthly_charged()
        plan = _plan()
        with pytest.raises(RuleViolation) as caught:
            check_reprice(
                plan,
                _plan(BillingCycle.ANNUALLY),
                [member],
                ledger,
                timezone=SYD,
                plans={"gold": plan},
            )
        assert str(caught.value) == (
            "plan gold changes a billing date member m1 was charged up to (last charge c1):"
            " 2026-02-01 at AUD 30.00, now no billing date; reprice from a later date"
        )

    def test_a_refund_is_not_a_charge(self) -> None:
        """Charged on 1 January, refunded on 15 February: the last charge is January's, so
        a rise from 1 February passes. A failed charge on 15 February instead is the last
        charge, and 1 February was due by then: refused."""
        member, plan = _member(date(2026, 1, 1)), _plan()
        dearer = plan.reprice(aud("40.00"), on=date(2026, 2, 1))
        paid = _charge("c0", _local(date(2026, 1, 1), 11))
        refunded = [paid, _refund("r0", _local(date(2026, 2, 15)))]
        check_reprice(plan, dearer, [member], refunded, timezone=SYD, plans={"gold": plan})
        failed = [paid, _charge("f0", _local(date(2026, 2, 15)), "failed")]
        with pytest.raises(RuleViolation, match=r"\(last charge f0\)"):
            check_reprice(plan, dearer, [member], failed, timezone=SYD, plans={"gold": plan})

    def test_a_change_of_neither_price_nor_cycle_reads_no_billing_date(self) -> None:
        """A member moved from Silver to Gold, charged on 25 January; the catalogue given
        lacks Silver. Renaming Gold passes without billing anyone; a rise must bill the
        member's Silver dates, and asks for Silver."""
        plan, ledger = _plan(), [_charge("c0", _local(date(2026, 1, 25)))]
        renamed = attrs.evolve(plan, name="Gold Plus")
        check_reprice(plan, renamed, [_moved()], ledger, timezone=SYD, plans={"gold": plan})
        dearer = plan.reprice(aud("40.00"), on=date(2026, 3, 1))
        with pytest.raises(InvalidValue) as caught:
            check_reprice(plan, dearer, [_moved()], ledger, timezone=SYD, plans={"gold": plan})
        assert (caught.value.field, caught.value.value) == ("plans", "silver")


class TestMemberRepriced:
    """``check_member_repriced``: which entries count, which saves are read, and a charge
    ahead of the first billing date."""

    def _check(
        self,
        before: Member,
        after: Member,
        ledger: list[Payment],
        plans: dict[str, MembershipPlan] | None = None,
    ) -> None:
        catalogue = {"gold": _plan(), "plat": PLATINUM} if plans is None else plans
        check_member_repriced(before, after, ledger, timezone=SYD, plans=catalogue)

    def _enrolled(self, start: date, at: date) -> Member:
        return _enrolled(start, _local(at))

    def test_the_refusal_in_full(self) -> None:
        """Charged on 1 January and 1 February: 5.00 off from date 0 changes January's
        price."""
        member, ledger = _monthly_charged()
        with pytest.raises(RuleViolation) as caught:
            self._check(member, member.grant(OFF), ledger)
        error = caught.value
        assert (error.rule, error.field, error.context, str(error)) == (
            "reprice_backdated",
            "discounts",
            {"payment_id": "c1"},
            (
                "member m1's save changes a billing date they were charged up to (last charge"
                " c1): 2026-01-01 at AUD 30.00, now 2026-01-01 at AUD 25.00; grant a discount"
                " from a later billing date (first=), or change plan after the last charge"
            ),
        )

    def test_a_reward_or_dependent_change_back_over_a_charge_is_named(self) -> None:
        """A referral credited on 15 January (with its discount granted in the same save)
        is named by ``referral_rewards``, a dependent added then by ``dependent_changes``,
        each with its own advice; credited on 2 February (after the last charge) it is
        kept."""
        member, ledger = _monthly_charged()
        friend = Discount("friend", "syd", "Friend", amount=aud("5.00"), basis="per_referral")
        family = Discount("fam", "syd", "Family", percent=10, basis="per_dependent")
        granted = member.grant(friend).grant(family)
        jan15 = _local(date(2026, 1, 15))
        for after, field, advice in (
            (
                member.grant(friend).reward_referral("r1", at=jan15),
                "referral_rewards",
                "credit the referral after the last charge (reward_referrer(at=...))",
            ),
            (
                granted.add_dependent(Patient("k1", "Kid"), at=jan15),
                "dependent_changes",
                "stamp the dependent change after the last charge",
            ),
        ):
            with pytest.raises(RuleViolation) as caught:
                self._check(granted if field == "dependent_changes" else member, after, ledger)
            assert caught.value.field == field
            assert str(caught.value).endswith(advice)
        self._check(
            member, member.grant(friend).reward_referral("r1", at=_local(date(2026, 2, 2))), ledger
        )

    def test_only_the_members_own_charges_count(self) -> None:
        """Charged on 1 January; a refund on 15 February and another member's charge on
        20 February are no charges of theirs, so 5.00 off from date 1 (1 February) passes.
        With a failed charge of theirs on 15 February, 1 February was charged: refused."""
        member = _member(date(2026, 1, 1))
        paid = _charge("c0", _local(date(2026, 1, 1), 11))
        other = Payment("x0", "syd", AUD30, "charge", "succeeded", _local(date(2026, 2, 20)), "m2")
        after = member.grant(OFF, first=1)
        self._check(member, after, [paid, _refund("r0", _local(date(2026, 2, 15))), other])
        with pytest.raises(RuleViolation, match=r"\(last charge f0\)"):
            self._check(member, after, [paid, _charge("f0", _local(date(2026, 2, 15)), "failed")])

    def test_a_member_without_a_charge_or_moved_off_the_catalogue_is_not_read(self) -> None:
        """No charge of theirs: 5.00 off from date 0 passes. Moved back over the February
        charge to Platinum: refused when Platinum is given, left to the host when not."""
        member, ledger = _monthly_charged()
        other = Payment("x0", "syd", AUD30, "charge", "succeeded", _local(date(2026, 1, 1)), "m2")
        self._check(member, member.grant(OFF), [other])
        moved = member.change_plan("plat", at=_local(date(2026, 1, 10)))
        self._check(member, moved, ledger, plans={"gold": _plan()})
        with pytest.raises(RuleViolation) as caught:
            self._check(member, moved, ledger)
        assert caught.value.field == "plan_changes"

    def test_a_prepaid_first_date_keeps_its_price(self) -> None:
        """Enrolled on 20 February for a contract from 1 March, charged 30.00 that day (for
        date 0, 1 March, at Gold's price). 5.00 off from date 0, or a move to Platinum
        before 1 March, changes it: refused. 5.00 off from date 1, or a move on 5 March
        (after 1 March began: date 0 stays Gold's), leaves it."""
        member = self._enrolled(date(2026, 3, 1), date(2026, 2, 20))
        ledger = [_charge("c0", _local(date(2026, 2, 20), 11))]
        for after, now in (
            (member.grant(OFF), "25.00"),
            (member.change_plan("plat", at=_local(date(2026, 2, 25))), "60.00"),
        ):
            with pytest.raises(RuleViolation) as caught:
                self._check(member, after, ledger)
            assert f"(last charge c0): 2026-03-01 at AUD 30.00, now 2026-03-01 at AUD {now};" in (
                str(caught.value)
            )
        self._check(member, member.grant(OFF, first=1), ledger)
        self._check(member, member.change_plan("plat", at=_local(date(2026, 3, 5))), ledger)

    def test_a_date_charged_then_no_longer_due_is_still_date_0(self) -> None:
        """Enrolled on 20 December for a contract from 1 January, Active, charged 30.00 on
        1 January. The save suspends them from 28 December, so at that charge 1 January is
        no longer due but the first date ahead: still date 0 at 30.00, so 5.00 off from
        date 1 passes, and 5.00 off from date 0 is refused."""
        member = self._enrolled(date(2026, 1, 1), date(2025, 12, 20))
        member = member.activate(at=_local(date(2025, 12, 21)))
        ledger = [_charge("c0", _local(date(2026, 1, 1), 11))]
        suspended = member.suspend(at=_local(date(2025, 12, 28)))
        self._check(member, suspended.grant(OFF, first=1), ledger)
        with pytest.raises(
            RuleViolation, match=r"2026-01-01 at AUD 30\.00, now 2026-01-01 at AUD 25\.00"
        ):
            self._check(member, suspended.grant(OFF), ledger)


# -- invoices and overdue --------------------------------------------------------------------


class TestDefaults:
    """No grace unless asked: January's charge (due 10 Jan) is overdue on 11 January."""

    AT = _local(date(2026, 1, 11))

    def _member(self) -> Member:
        return _member(date(2026, 1, 10))

    def test_latest_days(self) -> None:
        assert latest_overdue_day(self.AT, SYD) == date(2026, 1, 11)
        assert last_overdue_due_date(self.AT, SYD) == date(2026, 1, 10)

    def test_member_invoices(self) -> None:
        (invoice,) = member_invoices(self._member(), _plan(), [], at=self.AT, timezone=SYD)
        assert invoice.status is InvoiceStatus.OVERDUE

    def test_invoices_at_and_overdue(self) -> None:
        options = {"at": self.AT, "timezone": SYD, "membership_plans": {"gold": _plan()}}
        assert [i.status for i in invoices_at(self._member(), **options)] == [InvoiceStatus.OVERDUE]
        assert len(overdue_invoices(self._member(), **options)) == 1
        assert is_overdue(self._member(), **options)


def _braces(first_due: date = date(2026, 1, 10)) -> PaymentPlan:
    at = _local(date(2026, 1, 5))
    return PaymentPlan.offer(
        id="pp1",
        practice_id="syd",
        patient=Patient("p1", "Ada Lovelace"),
        total=aud("300"),
        payment_type=PaymentType.PLAN,
        instalments=3,
        first_due=first_due,
        at=at,
        member_id="m1",
    ).activate(at=at)


class TestInvoices:
    def test_discounts_price_the_member_charges(self) -> None:
        grants = [AppliedDiscount(SPRING)]
        member, at = _member(date(2026, 1, 10)), _local(date(2026, 1, 12))
        (charge,) = member_charges(member, _plan(), [], at=at, timezone=SYD, discounts=grants)
        assert charge.amount == aud("25.00")
        (invoice,) = member_invoices(member, _plan(), [], at=at, timezone=SYD, discounts=grants)
        assert invoice.amount == aud("25.00")

    def test_an_instalments_failures_are_its_own(self) -> None:
        failed, paid = _local(date(2026, 1, 10), 12), _local(date(2026, 1, 11), 12)
        plan = _braces().record_failure(at=failed).record_payment(at=paid)
        charges = plan_charges(plan, at=_local(date(2026, 2, 12)))
        assert [c.failures for c in charges] == [(failed,), (), ()]

    def test_a_plans_grace_is_passed_on(self) -> None:
        invoices = invoices_at(
            None, [_braces()], at=_local(date(2026, 1, 12)), timezone=SYD, grace_days=3
        )
        assert [i.status for i in invoices] == [
            InvoiceStatus.PROCESSING,
            InvoiceStatus.ACTIVE,
            InvoiceStatus.ACTIVE,
        ]

    def test_an_earlier_plan_not_given_is_priced_at_the_members_plan(self) -> None:
        invoices = invoices_at(
            _moved(),
            at=_local(date(2026, 2, 12)),
            timezone=SYD,
            membership_plans={"gold": _plan()},
        )
        assert [i.amount for i in invoices] == [AUD30, AUD30]

    def test_an_earlier_plan_of_another_cycle_bills_on_its_own_cycle(self) -> None:
        weekly = MembershipPlan("silver", "syd", "Silver", AUD20, BillingCycle.WEEKLY)
        invoices = invoices_at(
            _moved(),
            at=_local(date(2026, 2, 12)),
            timezone=SYD,
            membership_plans={"gold": _plan(), "silver": weekly},
        )
        assert [(str(i.due_date), i.amount) for i in invoices] == [
            ("2026-01-10", AUD20),
            ("2026-01-17", AUD20),
            ("2026-01-24", AUD30),
        ]


class TestOutlook:
    def test_the_last_day_is_answered(self) -> None:
        outlook = overdue_outlook(
            _member(date(2026, 1, 10)), timezone=SYD, membership_plans={"gold": _plan()}
        )
        assert outlook.through is not None
        assert outlook.overdue_on(outlook.through) is True

    def test_the_members_plan_is_needed(self) -> None:
        with pytest.raises(InvalidValue) as caught:
            overdue_outlook(_member(date(2026, 1, 10)), timezone=SYD, membership_plans={})
        assert _details(caught.value) == (
            "membership_plans",
            "gold",
            "must hold the member's plan to judge its charges",
        )

    def test_earlier_plans_price_the_earlier_dates(self) -> None:
        """Silver paid in January, Gold in February: nothing unpaid before March."""
        ledger = [
            _charge("c0", _local(date(2026, 1, 10), 12), amount=AUD20),
            _charge("c1", _local(date(2026, 2, 10), 12)),
        ]
        outlook = overdue_outlook(
            _moved(),
            timezone=SYD,
            membership_plans={"gold": _plan(), "silver": SILVER},
            payments=ledger,
        )
        assert outlook.dues[0] == (date(2026, 3, 10), date(2026, 3, 11))

    def test_it_starts_at_the_members_latest_event(self) -> None:
        """Activated at 10:00 on 10 January, paid at 12:00; another member's payment on
        20 January is not theirs: the outlook starts at 12:00 on 10 January."""
        paid = _local(date(2026, 1, 10), 12)
        other = Payment("x0", "syd", AUD30, "charge", "succeeded", _local(date(2026, 1, 20)), "m2")
        ledger = [_charge("c0", paid), other]
        member = _member(date(2026, 1, 10))
        assert last_event(member, [], ledger) == paid
        outlook = overdue_outlook(
            member, timezone=SYD, membership_plans={"gold": _plan()}, payments=ledger
        )
        assert outlook.since == paid

    def test_an_earlier_plan_not_given_is_billed_at_the_members_plan(self) -> None:
        """Silver not given: January's date is billed at Gold's 30.00, so the 20.00 paid
        for it leaves 10.00 unpaid, overdue from 11 January."""
        ledger = [_charge("c0", _local(date(2026, 1, 10), 12), amount=AUD20)]
        outlook = overdue_outlook(
            _moved(), timezone=SYD, membership_plans={"gold": _plan()}, payments=ledger
        )
        assert outlook.dues == ((date(2026, 1, 10), date(2026, 1, 11)),)

    def test_the_days_answered_stop_inside_the_supported_years(self) -> None:
        """Activated on 1 June 2199: 400 days on, 6 July 2200 (2200 is no leap year).
        Activated on 1 March 2200: 400 days on is past 2200, so 30 December 2200."""
        for start, through in (
            (date(2199, 6, 1), date(2200, 7, 6)),
            (date(2200, 3, 1), date(2200, 12, 30)),
        ):
            outlook = overdue_outlook(
                _member(start), timezone=SYD, membership_plans={"gold": _plan()}
            )
            assert outlook.through == through, start

    def test_membership_and_plan_dues_are_read_together(self) -> None:
        """January's membership charge failed on its day; the plan's first instalment is
        due the same day: the failed charge comes first."""
        ledger = [_charge("f0", _local(date(2026, 1, 10), 12), "failed")]
        outlook = overdue_outlook(
            _member(date(2026, 1, 10)),
            [_braces()],
            timezone=SYD,
            membership_plans={"gold": _plan()},
            payments=ledger,
        )
        assert outlook.dues == ((date(2026, 1, 10), date(2026, 1, 10)),)

    def test_a_due_no_earlier_than_one_listed_is_left_out(self) -> None:
        """The membership charge and the first instalment, both due on 10 January and
        overdue from the 11th: listed once."""
        outlook = overdue_outlook(
            _member(date(2026, 1, 10)),
            [_braces()],
            timezone=SYD,
            membership_plans={"gold": _plan()},
        )
        assert outlook.dues == ((date(2026, 1, 10), date(2026, 1, 11)),)


# -- templates ------------------------------------------------------------------------------


class TestTemplates:
    def test_bounds_that_are_allowed(self) -> None:
        assert _template(instalment_counts=12).instalment_counts == (12,)
        assert _template(instalment_counts=(1, 2)).instalment_counts == (1, 2)
        assert _template(max_deferral_days=0).max_deferral_days == 0
        assert _template(max_total=aud("500")).max_total == aud("500")

    def test_refusals_name_field_value_and_reason(self) -> None:
        cases = [
            (
                {"instalment_counts": (12, 6)},
                ("instalment_counts", (12, 6), "must be strictly increasing whole numbers >= 1"),
            ),
            ({"min_total": "500"}, ("min_total", "500", "must be a positive Money")),
            ({"deposit": aud("-5")}, ("deposit", aud("-5"), "must be a positive Money")),
            (
                {"max_deferral_days": -1},
                ("max_deferral_days", -1, "must be a whole number of days >= 0"),
            ),
            (
                {"max_total": Money.of("900", "USD")},
                ("max_total", Money.of("900", "USD"), "must be in AUD"),
            ),
            ({"max_total": aud("400")}, ("max_total", aud("400"), "is below min_total AUD 500.00")),
            (
                {"deposit": Money.of("50", "USD")},
                ("deposit", Money.of("50", "USD"), "must be in AUD"),
            ),
            ({"deposit": aud("500")}, ("deposit", aud("500"), "must be below min_total")),
        ]
        for changes, expected in cases:
            with pytest.raises(InvalidValue) as caught:
                _template(**changes)
            assert _details(caught.value) == expected, changes

    def test_a_missing_total_is_refused(self) -> None:
        with pytest.raises(InvalidValue) as caught:
            _template(min_total=None)
        assert caught.value.field == "min_total"

    def test_offers_at_the_bounds(self) -> None:
        assert _offer(total=aud("15000")).total == aud("15000")
        tiny = _template(min_total=aud("0.05"), instalment_counts=(6,))
        assert len(_offer(tiny, total=aud("0.06"), instalments=6).schedule) == 6
        last = date(2026, 3, 10) + timedelta(days=60)
        assert _offer(first_due=last).schedule[0].due_date == last

    def test_the_refusal_names_the_first_broken_rule(self) -> None:
        with pytest.raises(RuleViolation) as caught:
            _offer(total=aud("20000"))
        assert caught.value.field == "total"

    def test_the_offer_says_why_it_started(self) -> None:
        assert _offer().history[0].reason == "offered"


# -- discounts ------------------------------------------------------------------------------


class TestDiscounts:
    def test_refusals_name_field_value_and_reason(self) -> None:
        zero = Money.zero("AUD")
        cases = [
            ({"amount": "5.00"}, ("amount", "5.00", "must be Money")),
            ({"amount": zero}, ("amount", zero, "must be more than zero")),
            ({"percent": 10, "cycles": 0}, ("cycles", 0, "must be a whole number >= 1 (or None)")),
            (
                {"percent": 10, "plans": "gold"},
                ("plans", "gold", "must be a collection of plan ids (or None: all)"),
            ),
            (
                {"percent": 10, "plans": [""]},
                ("plans", [""], "must be a collection of plan ids (or None: all)"),
            ),
            ({"percent": 10, "plans": []}, ("plans", [], "name at least one plan (or None: all)")),
            (
                {"percent": 10, "amount": aud("5")},
                ("percent", Decimal(10), "give exactly one of percent and amount"),
            ),
        ]
        for changes, expected in cases:
            with pytest.raises(InvalidValue) as caught:
                Discount("d", "syd", "D", **changes)  # type: ignore[arg-type]
            assert _details(caught.value) == expected, changes

    def test_a_malformed_percent_names_percent(self) -> None:
        with pytest.raises(InvalidValue) as caught:
            Discount("d", "syd", "D", percent="ten")
        assert caught.value.field == "percent"

    def test_units_are_refused_with_their_details(self) -> None:
        with pytest.raises(InvalidValue) as caught:
            AppliedDiscount(FAMILY, units=-1)
        assert _details(caught.value) == ("units", -1, "must be a whole number >= 0")

    def test_one_unit_by_default(self) -> None:
        assert SPRING.reduction(AUD30) == aud("5.00")

    def test_a_fixed_amount_in_another_currency_is_refused_with_its_details(self) -> None:
        usd = Discount("d", "syd", "D", amount=Money.of("5", "USD"))
        with pytest.raises(CurrencyMismatch) as caught:
            usd.reduction(AUD30)
        error = caught.value
        assert (error.left, error.right, error.operation) == ("USD", "AUD", "discount")

    def test_a_billing_date_number_must_be_a_whole_number(self) -> None:
        for number in (True, 1.5, -1):
            with pytest.raises(InvalidValue) as caught:
                price_due(_plan(), number)  # type: ignore[arg-type]
            assert _details(caught.value) == ("number", number, "must be a whole number >= 0")

    def test_a_grant_not_in_force_does_not_stop_the_next(self) -> None:
        grants = [AppliedDiscount(SPRING, first=4), AppliedDiscount(FAMILY)]
        assert price_due(_plan(), 0, grants).due == aud("27.00")


def test_a_held_plans_failure_is_read_in_the_practice_time_zone() -> None:
    """HEAD only (overdue_outlook 67): instalment 1 of a held plan failed at 23:00 UTC on
    9 January, 10 January in Sydney: overdue from that local day."""
    plan = _braces(first_due=date(2026, 1, 12)).record_failure(
        at=datetime(2026, 1, 9, 23, tzinfo=UTC)
    )
    outlook = overdue_outlook(
        _member(date(2026, 1, 10)), [plan], timezone=SYD, membership_plans={"gold": _plan()}
    )
    assert (date(2026, 1, 12), date(2026, 1, 10)) in outlook.dues
