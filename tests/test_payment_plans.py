"""Payment plans: schedules, payments, failures, figures, follow-ups, refusals, a model check."""

from __future__ import annotations

import calendar
import copy
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from smilepass_core.domain import (
    BillingCycle,
    FollowUpAction,
    Instalment,
    InstalmentAttempt,
    Patient,
    PaymentPlan,
    PaymentPlanStatus,
    PaymentType,
    StatusChange,
)
from smilepass_core.errors import (
    InvalidTransition,
    InvalidValue,
    NaiveDatetime,
    OutOfOrderChange,
    RuleViolation,
)
from smilepass_core.money import Money
from smilepass_core.testing import strategies as sps

_P = PaymentPlanStatus

#: The documented payment plan table, written out independently of the source.
ALLOWED: dict[PaymentPlanStatus, set[PaymentPlanStatus]] = {
    _P.PENDING: {_P.ACTIVE, _P.COMPLETED, _P.FAILED, _P.CANCELLED},
    _P.ACTIVE: {_P.COMPLETED, _P.FAILED, _P.CANCELLED},
    _P.FAILED: {_P.ACTIVE, _P.COMPLETED, _P.CANCELLED},
    _P.COMPLETED: set(),
    _P.CANCELLED: set(),
}
CLOSED = {_P.COMPLETED, _P.CANCELLED}

T0 = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
ADA = Patient("pat-1", "Ada Lovelace")


def aud(amount: str) -> Money:
    return Money.of(amount, "AUD")


def _offer(**changes: object) -> PaymentPlan:
    fields: dict[str, object] = {
        "id": "pp-1",
        "practice_id": "p-1",
        "patient": ADA,
        "total": aud("1000"),
        "payment_type": PaymentType.PLAN,
        "instalments": 3,
        "first_due": date(2026, 1, 31),
        "at": T0,
    }
    fields.update(changes)
    return PaymentPlan.offer(**fields)  # type: ignore[arg-type]


def _instant(**changes: object) -> PaymentPlan:
    return _offer(payment_type=PaymentType.INSTANT, instalments=1, **changes)


def _paid(plan: PaymentPlan, count: int, start: datetime = T0) -> PaymentPlan:
    for k in range(count):
        plan = plan.record_payment(at=start + (k + 1) * DAY)
    return plan


def _assert_invalid(error: InvalidValue, field: str, value: object, reason: str) -> None:
    """``error`` names ``field`` and ``value`` and gives exactly ``reason``."""
    assert (error.field, error.value, error.reason) == (field, value, reason)
    assert str(error) == f"{field}: {reason} (got {value!r})"


def _expected_due(cycle: BillingCycle, anchor: date, k: int) -> date:
    """The k-th due date worked out by hand from the anchor (clamped to the month's end)."""
    if cycle is BillingCycle.WEEKLY:
        return anchor + timedelta(days=7 * k)
    if cycle is BillingCycle.FORTNIGHTLY:
        return anchor + timedelta(days=14 * k)
    if cycle is BillingCycle.MONTHLY:
        months = anchor.month - 1 + k
        year, month = anchor.year + months // 12, months % 12 + 1
    else:
        year, month = anchor.year + k, anchor.month
    return date(year, month, min(anchor.day, calendar.monthrange(year, month)[1]))


ANCHORS = st.one_of(
    st.sampled_from(
        [
            date(2024, 1, 29),
            date(2024, 1, 30),
            date(2024, 1, 31),
            date(2027, 1, 29),
            date(2027, 1, 31),
            date(2028, 1, 29),
            date(2028, 1, 30),
            date(2028, 1, 31),
            date(2028, 2, 29),
            date(2025, 8, 31),
            date(2025, 12, 31),
        ]
    ),
    st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31)),
)


class TestSchedule:
    """Offering a plan lays out its instalments from the anchor, with allocated amounts."""

    @given(
        anchor=ANCHORS,
        n=st.integers(1, 36),
        cycle=st.sampled_from(BillingCycle),
        data=st.data(),
    )
    def test_due_dates_never_drift(
        self, anchor: date, n: int, cycle: BillingCycle, data: st.DataObject
    ) -> None:
        """The k-th due date is cycle.nth(anchor, k), clamped to the month's end, never drifting."""
        total = data.draw(sps.money("AUD", min_minor=n, max_minor=10**9))
        offered = datetime(anchor.year, anchor.month, anchor.day, tzinfo=UTC)
        plan = _offer(total=total, instalments=n, first_due=anchor, cycle=cycle, at=offered)
        assert [i.number for i in plan.schedule] == list(range(1, n + 1))
        for k, instalment in enumerate(plan.schedule):
            assert instalment.due_date == cycle.nth(anchor, k)
            assert instalment.due_date == _expected_due(cycle, anchor, k)
            if cycle is BillingCycle.MONTHLY:
                due = instalment.due_date
                last_day = calendar.monthrange(due.year, due.month)[1]
                assert due.day == min(anchor.day, last_day)

    def test_31_january_2024_monthly(self) -> None:
        """From 31 Jan 2024 monthly, instalments fall on 29 Feb, 31 Mar and 30 Apr."""
        plan = _offer(instalments=4, first_due=date(2024, 1, 31), at=T0 - 800 * DAY)
        assert [i.due_date for i in plan.schedule] == [
            date(2024, 1, 31),
            date(2024, 2, 29),
            date(2024, 3, 31),
            date(2024, 4, 30),
        ]

    def test_29_february_2028_annually(self) -> None:
        """From 29 Feb 2028 yearly, instalments fall on 28 Feb until the next leap year."""
        plan = _offer(instalments=5, first_due=date(2028, 2, 29), cycle=BillingCycle.ANNUALLY)
        assert [i.due_date for i in plan.schedule] == [
            date(2028, 2, 29),
            date(2029, 2, 28),
            date(2030, 2, 28),
            date(2031, 2, 28),
            date(2032, 2, 29),
        ]

    @given(
        code=st.sampled_from(["AUD", "JPY", "KWD", "CLF"]),
        n=st.integers(1, 36),
        data=st.data(),
    )
    def test_amounts_come_from_allocate(self, code: str, n: int, data: st.DataObject) -> None:
        """Instalments are Money.allocate's split: they add up to the total, first ones larger."""
        total = data.draw(sps.money(code, min_minor=n, max_minor=10**12))
        plan = _offer(total=total, instalments=n)
        amounts = [i.amount for i in plan.schedule]
        assert tuple(amounts) == total.allocate(n)
        assert sum(amounts) == total
        minors = [a.minor for a in amounts]
        assert minors == sorted(minors, reverse=True)
        assert max(minors) - min(minors) <= 1

    def test_the_documented_split(self) -> None:
        """1000 AUD in three is 333.34, 333.33, 333.33."""
        plan = _offer()
        assert [i.amount for i in plan.schedule] == [aud("333.34"), aud("333.33"), aud("333.33")]
        assert plan.instalment_count == 3

    @given(
        n=st.integers(1, 36),
        minor=st.integers(1, 100),
        code=st.sampled_from(["AUD", "JPY"]),
    )
    def test_every_instalment_is_collectable(self, n: int, minor: int, code: str) -> None:
        """An offered plan never schedules an instalment of zero; too small a total is refused."""
        total = Money.from_minor(minor, code)
        if minor < n:
            with pytest.raises(InvalidValue, match=r"^(instalments|total): "):
                _offer(total=total, instalments=n)
            return
        plan = _offer(total=total, instalments=n)
        assert all(i.amount.is_positive() for i in plan.schedule)

    def test_offer_starts_pending(self) -> None:
        """A new plan is Pending, with nothing paid and its whole total outstanding."""
        plan = _offer(member_id="m-1")
        assert plan.status is _P.PENDING
        assert plan.history == (StatusChange(T0, None, _P.PENDING, "offered"),)
        assert plan.attempts == ()
        assert plan.paid == aud("0")
        assert plan.balance == aud("1000")
        assert plan.progression == "0/3"
        assert plan.next_instalment == plan.schedule[0]
        assert plan.committed_at is None
        assert plan.member_id == "m-1"


class TestRefusedOffers:
    """`PaymentPlan.offer` refuses what cannot be a plan, naming the culprit."""

    @pytest.mark.parametrize("instalments", [0, -1, -12, True, False, 1.0, "3", None])
    def test_instalments_must_be_a_whole_number_from_one(self, instalments: object) -> None:
        """Zero, negative, bool and non-int instalment counts raise InvalidValue naming it."""
        with pytest.raises(InvalidValue) as caught:
            _offer(instalments=instalments)
        _assert_invalid(caught.value, "instalments", instalments, "must be a whole number >= 1")
        assert caught.value.value is instalments

    @pytest.mark.parametrize(
        ("payment_type", "article"), [(PaymentType.INSTANT, "an"), (PaymentType.HOLD, "a")]
    )
    @pytest.mark.parametrize("instalments", [2, 3, 12])
    def test_instant_and_hold_have_one_instalment(
        self, payment_type: PaymentType, article: str, instalments: int
    ) -> None:
        """An Instant or Hold payment with several instalments raises InvalidValue `instalments`."""
        with pytest.raises(InvalidValue) as caught:
            _offer(payment_type=payment_type, instalments=instalments)
        reason = f"{article} {payment_type.name} payment has exactly one"
        assert str(caught.value) == f"instalments: {reason} (got {instalments})"
        assert (caught.value.field, caught.value.value) == ("instalments", instalments)
        assert caught.value.reason == reason

    @pytest.mark.parametrize("total", ["0", "-10"])
    def test_the_total_must_be_positive(self, total: str) -> None:
        """A zero or negative total raises InvalidValue naming `total`."""
        with pytest.raises(InvalidValue) as caught:
            _offer(total=aud(total), instalments=1)
        _assert_invalid(caught.value, "total", aud(total), "must be positive Money")

    def test_the_total_must_be_money(self) -> None:
        """A total that is not Money raises InvalidValue naming `total`."""
        with pytest.raises(InvalidValue) as caught:
            _offer(total="1000")
        _assert_invalid(caught.value, "total", "1000", "must be positive Money")

    @pytest.mark.parametrize("first_due", [T0, "2026-01-31", None])
    def test_first_due_must_be_a_date(self, first_due: object) -> None:
        """A datetime, a string or None as first_due raises InvalidValue naming `first_due`."""
        with pytest.raises(InvalidValue) as caught:
            _offer(first_due=first_due)
        _assert_invalid(caught.value, "first_due", first_due, "must be a date (not a datetime)")

    def test_a_naive_offer_instant_is_refused(self) -> None:
        """Offering at a naive datetime raises NaiveDatetime naming `at`."""
        naive = datetime(2026, 1, 10)
        with pytest.raises(NaiveDatetime) as caught:
            _offer(at=naive)
        _assert_invalid(caught.value, "at", naive, "naive datetime; give it a time zone")

    def test_no_more_instalments_than_minor_units(self) -> None:
        """AUD 0.02 in 3 instalments is refused naming `instalments`; AUD 0.03 gives 1c each."""
        with pytest.raises(InvalidValue) as caught:
            _offer(total=aud("0.02"))
        _assert_invalid(
            caught.value, "instalments", 3, "more instalments than minor units in AUD 0.02"
        )
        assert [i.amount for i in _offer(total=aud("0.03")).schedule] == [aud("0.01")] * 3


class TestPaying:
    """Payments and failures move a plan through its lifecycle and its schedule."""

    def test_the_documented_first_payment(self) -> None:
        """Paying the first of three instalments makes the plan Active at 1/3."""
        plan = _offer().record_payment(at=datetime(2026, 1, 31, tzinfo=UTC), payment_id="pay-1")
        assert (plan.progression, plan.balance, plan.status) == ("1/3", aud("666.66"), _P.ACTIVE)
        assert plan.attempts == (
            InstalmentAttempt(1, datetime(2026, 1, 31, tzinfo=UTC), aud("333.34"), True, "pay-1"),
        )
        assert plan.committed_at == datetime(2026, 1, 31, tzinfo=UTC)
        assert plan.history[-1] == StatusChange(
            datetime(2026, 1, 31, tzinfo=UTC), _P.PENDING, _P.ACTIVE, "instalment paid"
        )

    def test_paying_the_exact_next_amount_is_accepted(self) -> None:
        """An explicit amount equal to the next instalment is paid like the default one."""
        at = T0 + DAY
        assert _offer().record_payment(at=at, amount=aud("333.34")) == _offer().record_payment(
            at=at
        )
        last = _paid(_offer(), 2).record_payment(at=T0 + 9 * DAY, amount=aud("333.33"))
        assert (last.status, last.balance) == (_P.COMPLETED, aud("0"))

    @pytest.mark.parametrize("payment_type", [PaymentType.INSTANT, PaymentType.HOLD])
    def test_a_single_payment_completes_pending_directly(self, payment_type: PaymentType) -> None:
        """An Instant (or Hold) plan goes straight from Pending to Completed on its one payment."""
        plan = _offer(payment_type=payment_type, instalments=1, total=aud("250"))
        done = plan.record_payment(at=T0 + DAY)
        assert done.status is _P.COMPLETED
        assert [(c.from_, c.to) for c in done.history] == [
            (None, _P.PENDING),
            (_P.PENDING, _P.COMPLETED),
        ]
        assert done.balance == aud("0")
        assert done.progression == "1/1"
        assert done.next_instalment is None
        assert done.committed_at == T0 + DAY

    def test_paying_every_instalment_completes(self) -> None:
        """The last instalment completes the plan, with nothing outstanding."""
        plan = _paid(_offer(), 3)
        assert plan.status is _P.COMPLETED
        assert plan.paid == plan.total
        assert plan.balance == aud("0")
        assert plan.history[-1].reason == "last instalment paid"

    def test_a_payment_on_a_failed_plan_makes_it_active(self) -> None:
        """A payment on a Failed plan with instalments left makes it Active again."""
        plan = _offer().record_failure(at=T0 + DAY)
        assert plan.status is _P.FAILED
        plan = plan.record_payment(at=T0 + 2 * DAY)
        assert plan.status is _P.ACTIVE
        assert plan.progression == "1/3"

    def test_a_last_payment_on_a_failed_plan_completes_it(self) -> None:
        """A payment of the last instalment on a Failed plan makes it Completed."""
        plan = _paid(_offer(), 2).record_failure(at=T0 + 10 * DAY)
        plan = plan.record_payment(at=T0 + 11 * DAY)
        assert plan.status is _P.COMPLETED
        assert plan.history[-2].to is _P.FAILED
        assert plan.history[-1].from_ is _P.FAILED

    def test_failures_keep_the_plan_failed_and_are_recorded(self) -> None:
        """Repeated failures add attempts but only one change into Failed."""
        plan = _offer().record_failure(at=T0 + DAY)
        plan = plan.record_failure(at=T0 + 2 * DAY, reason="nsf", payment_id="pay-9")
        assert plan.status is _P.FAILED
        assert plan.history[1:] == (StatusChange(T0 + DAY, _P.PENDING, _P.FAILED, "charge failed"),)
        first = aud("333.34")
        assert plan.attempts == (
            InstalmentAttempt(1, T0 + DAY, first, False, None, "charge failed"),
            InstalmentAttempt(1, T0 + 2 * DAY, first, False, "pay-9", "nsf"),
        )
        assert plan.paid_count == 0
        assert plan.balance == plan.total

    def test_activation_then_cancellation(self) -> None:
        """A plan is activated by the patient and can then be cancelled for good."""
        plan = _offer().activate(at=T0 + DAY)
        assert plan.status is _P.ACTIVE
        assert plan.committed_at == T0 + DAY
        assert plan.history[-1] == StatusChange(
            T0 + DAY, _P.PENDING, _P.ACTIVE, "set up by the patient"
        )
        plan = plan.cancel(at=T0 + 2 * DAY)
        assert plan.status is _P.CANCELLED
        assert plan.committed_at == T0 + DAY
        assert plan.history[-1] == StatusChange(T0 + 2 * DAY, _P.ACTIVE, _P.CANCELLED, "cancelled")

    def test_unpaid_due_before(self) -> None:
        """unpaid_due_before lists unpaid instalments due before a day; none once closed."""
        plan = _paid(_offer(), 1)
        assert plan.unpaid_due_before(date(2026, 3, 1)) == (plan.schedule[1],)
        assert plan.unpaid_due_before(date(2026, 4, 1)) == plan.schedule[1:]
        assert plan.unpaid_due_before(date(2026, 2, 28)) == ()
        assert plan.cancel(at=T0 + 5 * DAY).unpaid_due_before(date(2026, 4, 1)) == ()


class TestRefusedPayments:
    """Payments that break a rule raise and leave the plan untouched."""

    def test_overpayment_is_refused(self) -> None:
        """Paying more than the balance raises RuleViolation 'overpayment' naming both amounts."""
        plan = _paid(_offer(), 2)
        snapshot = copy.deepcopy(plan)
        with pytest.raises(RuleViolation) as caught:
            plan.record_payment(at=T0 + 9 * DAY, amount=aud("400"))
        assert caught.value.rule == "overpayment"
        assert str(caught.value) == "PaymentPlan pp-1: AUD 400.00 exceeds the balance AUD 333.33"
        assert caught.value.context == {"plan_id": "pp-1", "balance": aud("333.33")}
        assert plan == snapshot

    def test_a_wrong_instalment_amount_is_refused(self) -> None:
        """Paying other than the next instalment's amount raises 'instalment_amount'."""
        plan = _offer()
        with pytest.raises(RuleViolation) as caught:
            plan.record_payment(at=T0 + DAY, amount=aud("333.33"))
        assert caught.value.rule == "instalment_amount"
        assert str(caught.value) == "PaymentPlan pp-1: instalment 1 is AUD 333.34, not AUD 333.33"
        assert caught.value.context == {"plan_id": "pp-1", "expected": aud("333.34")}
        assert plan == _offer()

    def test_a_non_money_amount_is_refused(self) -> None:
        """An amount that is not Money raises InvalidValue naming `amount`."""
        with pytest.raises(InvalidValue) as caught:
            _offer().record_payment(at=T0 + DAY, amount="333.34")  # type: ignore[arg-type]
        _assert_invalid(caught.value, "amount", "333.34", "must be Money")

    @pytest.mark.parametrize("close", ["complete", "cancel"])
    def test_a_closed_plan_takes_no_payment_nor_failure(self, close: str) -> None:
        """Paying or failing a Completed or Cancelled plan raises 'plan_closed', naming it."""
        plan = _paid(_offer(), 3) if close == "complete" else _offer().cancel(at=T0 + DAY)
        snapshot = copy.deepcopy(plan)
        later = T0 + 30 * DAY
        with pytest.raises(RuleViolation) as paid:
            plan.record_payment(at=later)
        with pytest.raises(RuleViolation) as failed:
            plan.record_failure(at=later)
        assert paid.value.rule == failed.value.rule == "plan_closed"
        assert paid.value.context == {"plan_id": "pp-1", "status": plan.status}
        assert failed.value.context == {"plan_id": "pp-1", "status": plan.status}
        name = plan.status.name
        assert str(paid.value) == f"PaymentPlan pp-1: cannot pay a {name} plan"
        assert str(failed.value) == f"PaymentPlan pp-1: cannot record a failure on a {name} plan"
        assert plan == snapshot

    @pytest.mark.parametrize("event", ["payment", "failure"])
    def test_an_attempt_before_the_last_change_is_refused(self, event: str) -> None:
        """A payment or failure dated before the last change raises OutOfOrderChange."""
        plan = _offer().activate(at=T0 + 5 * DAY)
        snapshot = copy.deepcopy(plan)
        call = plan.record_payment if event == "payment" else plan.record_failure
        with pytest.raises(OutOfOrderChange, match="PaymentPlan pp-1") as caught:
            call(at=T0 + 4 * DAY)
        assert caught.value.previous == T0 + 5 * DAY
        assert plan == snapshot

    def test_a_payment_before_the_last_attempt_is_refused(self) -> None:
        """A payment dated before the last attempt (same status) raises OutOfOrderChange."""
        plan = _paid(_offer(), 1, start=T0)
        with pytest.raises(OutOfOrderChange) as caught:
            plan.record_payment(at=T0)
        assert (caught.value.previous, caught.value.at) == (T0 + DAY, T0)
        assert caught.value.subject == "PaymentPlan pp-1"

    def test_an_attempt_keeping_the_status_before_the_last_change_is_refused(self) -> None:
        """Failed, re-activated on day 5: a payment dated day 3 raises, naming day 5."""
        plan = _offer().record_failure(at=T0 + DAY).activate(at=T0 + 5 * DAY)
        snapshot = copy.deepcopy(plan)
        with pytest.raises(OutOfOrderChange) as caught:
            plan.record_payment(at=T0 + 3 * DAY)
        assert (caught.value.previous, caught.value.at) == (T0 + 5 * DAY, T0 + 3 * DAY)
        assert caught.value.subject == "PaymentPlan pp-1"
        assert plan == snapshot

    @pytest.mark.parametrize("move", ["activate", "cancel"])
    def test_a_move_before_the_last_attempt_is_refused(self, move: str) -> None:
        """Failed on days 1, 2 and 3 (one change): a move dated day 2 raises, naming day 3."""
        plan = _offer()
        for day in (1, 2, 3):
            plan = plan.record_failure(at=T0 + day * DAY)
        snapshot = copy.deepcopy(plan)
        with pytest.raises(OutOfOrderChange) as caught:
            getattr(plan, move)(at=T0 + 2 * DAY)
        assert (caught.value.previous, caught.value.at) == (T0 + 3 * DAY, T0 + 2 * DAY)
        assert caught.value.subject == "PaymentPlan pp-1"
        assert plan == snapshot

    @given(plan=sps.payment_plans(), back=st.integers(1, 10 * 86400), event=st.integers(0, 3))
    def test_any_event_before_the_last_change_changes_nothing(
        self, plan: PaymentPlan, back: int, event: int
    ) -> None:
        """On any open plan, an event dated before the last change raises and changes nothing."""
        snapshot = copy.deepcopy(plan)
        at = plan.history[-1].at - timedelta(seconds=back)
        moves: list[Callable[..., PaymentPlan]] = [
            plan.record_payment,
            plan.record_failure,
            plan.activate,
            plan.cancel,
        ]
        target = [None, None, _P.ACTIVE, _P.CANCELLED][event]
        if plan.status in CLOSED and target is None:
            with pytest.raises(RuleViolation, match=plan.status.name):
                moves[event](at=at)
        elif target is not None and target not in ALLOWED[plan.status]:
            with pytest.raises(InvalidTransition):
                moves[event](at=at)
        else:
            with pytest.raises(OutOfOrderChange):
                moves[event](at=at)
        assert plan == snapshot

    def test_activating_an_active_plan_is_refused(self) -> None:
        """Activate on an Active plan raises InvalidTransition naming ACTIVE twice."""
        plan = _offer().activate(at=T0 + DAY)
        with pytest.raises(InvalidTransition, match="ACTIVE to ACTIVE"):
            plan.activate(at=T0 + 2 * DAY)

    @given(plan=sps.payment_plans(), data=st.data())
    def test_random_moves_follow_the_table_or_change_nothing(
        self, plan: PaymentPlan, data: st.DataObject
    ) -> None:
        """Random activations and cancellations either append one change or raise, untouched."""
        for _ in range(data.draw(st.integers(1, 4))):
            to = data.draw(st.sampled_from([_P.ACTIVE, _P.CANCELLED]))
            last = plan.history[-1]
            at = last.at + timedelta(seconds=data.draw(st.integers(-86400, 86400)))
            snapshot = copy.deepcopy(plan)
            move = plan.activate if to is _P.ACTIVE else plan.cancel
            if to not in ALLOWED[last.to]:
                with pytest.raises(InvalidTransition) as caught:
                    move(at=at)
                assert (caught.value.from_, caught.value.to) == (last.to, to)
                assert f"{last.to.name} to {to.name}" in str(caught.value)
            elif at < max([last.at, *(a.at for a in plan.attempts)]):
                # A move may not predate the last status change nor the last attempt.
                with pytest.raises(OutOfOrderChange):
                    move(at=at)
            else:
                moved = move(at=at)
                assert moved.history[:-1] == plan.history
                assert (moved.history[-1].at, moved.history[-1].from_) == (at, last.to)
                assert moved.history[-1].to is to
                assert attrs.evolve(moved, history=plan.history) == plan
                plan = moved
                continue
            assert plan == snapshot

    @given(plan=sps.payment_plans())
    def test_terminal_statuses_absorb(self, plan: PaymentPlan) -> None:
        """A Completed or Cancelled plan refuses activation and cancellation."""
        if plan.status not in CLOSED:
            # Cancel at the plan's last event: its last status change or attempt.
            plan = plan.cancel(at=max([plan.history[-1].at, *(a.at for a in plan.attempts)]))
        at = plan.history[-1].at + DAY
        for move in (plan.activate, plan.cancel):
            with pytest.raises(InvalidTransition, match=f"from {plan.status.name}"):
                move(at=at)


class TestDirectConstruction:
    """Building a PaymentPlan directly re-checks everything `offer` and the moves guarantee."""

    def test_a_schedule_that_does_not_add_up_is_refused(self) -> None:
        """A schedule whose amounts do not add up to the total raises InvalidValue `schedule`."""
        plan = _offer()
        with pytest.raises(InvalidValue) as caught:
            attrs.evolve(plan, total=aud("1001"))
        _assert_invalid(
            caught.value, "schedule", plan.schedule, f"amounts must add up to {aud('1001')}"
        )

    def test_a_misnumbered_schedule_is_refused(self) -> None:
        """Instalments not numbered 1..n raise InvalidValue naming `schedule`."""
        plan = _offer()
        schedule = (plan.schedule[0], plan.schedule[2], plan.schedule[1])
        with pytest.raises(InvalidValue) as caught:
            attrs.evolve(plan, schedule=schedule)
        _assert_invalid(caught.value, "schedule", schedule, "instalments must be numbered 1..n")

    def test_a_non_positive_total_is_refused(self) -> None:
        """A plan whose total is zero raises InvalidValue naming `total`."""
        with pytest.raises(InvalidValue) as caught:
            attrs.evolve(_offer(), total=Money.zero("AUD"))
        _assert_invalid(caught.value, "total", Money.zero("AUD"), "must be positive")

    @pytest.mark.parametrize(
        ("payment_type", "article"), [(PaymentType.INSTANT, "an"), (PaymentType.HOLD, "a")]
    )
    def test_an_instant_or_hold_plan_with_several_instalments_is_refused(
        self, payment_type: PaymentType, article: str
    ) -> None:
        """A directly built Instant (or Hold) plan of three instalments raises InvalidValue."""
        plan = _offer()
        with pytest.raises(InvalidValue) as caught:
            attrs.evolve(plan, payment_type=payment_type)
        reason = f"{article} {payment_type.name} payment has exactly one instalment"
        assert str(caught.value) == f"schedule: {reason} (got 3)"
        assert (caught.value.field, caught.value.value) == ("schedule", 3)

    def test_a_zero_instalment_is_refused(self) -> None:
        """A schedule holding an instalment of zero raises InvalidValue `schedule`."""
        plan = _offer()
        first, second, third = plan.schedule
        schedule = (
            attrs.evolve(first, amount=first.amount + second.amount),
            attrs.evolve(second, amount=Money.zero("AUD")),
            third,
        )
        with pytest.raises(InvalidValue) as caught:
            attrs.evolve(plan, schedule=schedule)
        _assert_invalid(caught.value, "schedule", schedule, "every instalment must be positive")

    def test_an_empty_schedule_is_refused(self) -> None:
        """A plan without instalments raises InvalidValue naming `schedule`."""
        with pytest.raises(InvalidValue) as caught:
            attrs.evolve(_offer(), schedule=())
        _assert_invalid(caught.value, "schedule", (), "must hold at least one instalment")

    def test_attempts_beyond_the_schedule_are_refused(self) -> None:
        """More successful attempts than instalments raise InvalidValue naming `attempts`."""
        plan = _instant(total=aud("100")).record_payment(at=T0 + DAY)
        extra = InstalmentAttempt(2, T0 + 2 * DAY, aud("100"), True)
        with pytest.raises(InvalidValue) as caught:
            attrs.evolve(plan, attempts=(*plan.attempts, extra))
        _assert_invalid(caught.value, "attempts", extra, "must be for instalment 2 of its amount")

    def test_an_attempt_for_the_wrong_instalment_is_refused(self) -> None:
        """An attempt that is not for the next unpaid instalment's amount is refused."""
        plan = _offer()
        wrong = InstalmentAttempt(2, T0 + DAY, aud("333.33"), False)
        cheap = InstalmentAttempt(1, T0 + DAY, aud("1"), False)
        for attempt in (wrong, cheap):
            with pytest.raises(InvalidValue) as caught:
                attrs.evolve(plan, attempts=(attempt,))
            _assert_invalid(
                caught.value, "attempts", attempt, "must be for instalment 1 of its amount"
            )

    def test_attempts_out_of_order_are_refused(self) -> None:
        """Attempts not in time order raise OutOfOrderChange."""
        plan = _offer()
        first = InstalmentAttempt(1, T0 + 2 * DAY, aud("333.34"), False)
        second = InstalmentAttempt(1, T0 + DAY, aud("333.34"), False)
        with pytest.raises(OutOfOrderChange) as caught:
            attrs.evolve(plan, attempts=(first, second))
        assert (caught.value.previous, caught.value.at) == (T0 + 2 * DAY, T0 + DAY)
        assert caught.value.subject == "PaymentPlan pp-1"
        assert str(caught.value).startswith("PaymentPlan pp-1: change at ")

    def test_completed_with_unpaid_instalments_is_refused(self) -> None:
        """A Completed history with instalments unpaid raises InvalidValue naming the count."""
        plan = _paid(_offer(), 1)
        history = (*plan.history, StatusChange(T0 + 9 * DAY, _P.ACTIVE, _P.COMPLETED))
        with pytest.raises(InvalidValue, match=r"^history: .*1/3 paid") as caught:
            attrs.evolve(plan, history=history)
        assert "COMPLETED" in str(caught.value)

    def test_all_paid_but_not_completed_is_refused(self) -> None:
        """Every instalment paid with a non-Completed status raises InvalidValue."""
        plan = _paid(_offer(), 3)
        with pytest.raises(InvalidValue, match=r"^history: .*3/3 paid"):
            attrs.evolve(plan, history=plan.history[:-1])

    def test_archived_but_not_completed_is_refused(self) -> None:
        """An archive instant on a plan that is not Completed raises InvalidValue `archived_at`."""
        with pytest.raises(InvalidValue) as caught:
            attrs.evolve(_offer(), archived_at=T0 + DAY)
        _assert_invalid(caught.value, "archived_at", T0 + DAY, "only a Completed plan is archived")

    def test_a_naive_archive_instant_is_refused_naming_archived_at(self) -> None:
        """A naive `archived_at` raises NaiveDatetime naming the field and the value."""
        naive = datetime(2026, 3, 1)
        with pytest.raises(NaiveDatetime) as caught:
            attrs.evolve(_paid(_offer(), 3), archived_at=naive)
        _assert_invalid(caught.value, "archived_at", naive, "naive datetime; give it a time zone")

    def test_an_illegal_history_is_refused_naming_the_plan(self) -> None:
        """A history that breaks the table or goes back in time raises, naming the plan."""
        plan = _offer()
        again = StatusChange(T0 + DAY, _P.PENDING, _P.PENDING)
        with pytest.raises(InvalidTransition) as caught:
            attrs.evolve(plan, history=(*plan.history, again))
        assert caught.value.subject == "PaymentPlan pp-1"
        assert str(caught.value).startswith("PaymentPlan pp-1: ")
        early = StatusChange(T0 - DAY, _P.PENDING, _P.ACTIVE)
        with pytest.raises(OutOfOrderChange) as late:
            attrs.evolve(plan, history=(*plan.history, early))
        assert late.value.subject == "PaymentPlan pp-1"
        assert str(late.value).startswith("PaymentPlan pp-1: ")

    def test_instalment_fields_are_checked(self) -> None:
        """Instalment numbers start at 1 and due dates are dates, naming the field."""
        with pytest.raises(InvalidValue, match=r"^number: "):
            Instalment(0, date(2026, 1, 1), aud("1"))
        with pytest.raises(InvalidValue, match=r"^due_date: "):
            Instalment(1, T0, aud("1"))

    @pytest.mark.parametrize("number", [0, -1, True, 1.0, "1", None])
    def test_an_instalment_number_is_a_whole_number_from_one(self, number: object) -> None:
        """0, negatives, bools, floats, strings and None are refused, naming field and value."""
        for build in (
            lambda: Instalment(number, date(2026, 1, 1), aud("1")),  # type: ignore[arg-type]
            lambda: InstalmentAttempt(number, T0, aud("1"), True),  # type: ignore[arg-type]
        ):
            with pytest.raises(InvalidValue) as info:
                build()
            assert info.value.field == "number"
            assert info.value.value == number
            assert str(info.value) == f"number: must be a whole number >= 1 (got {number!r})"

    def test_instalment_number_one_is_accepted(self) -> None:
        """The first instalment is number 1."""
        assert Instalment(1, date(2026, 1, 1), aud("1")).number == 1
        assert InstalmentAttempt(1, T0, aud("1"), True).number == 1


class TestFiguresAndActions:
    """Figures and the Actions menu follow the plan's state."""

    @given(plan=sps.payment_plans())
    def test_figures_add_up(self, plan: PaymentPlan) -> None:
        """balance is total minus paid; progression and paid come from the schedule."""
        n = len(plan.schedule)
        paid = plan.paid_count
        assert 0 <= paid <= n
        assert plan.paid == sum(
            (i.amount for i in plan.schedule[:paid]), Money.zero(plan.total.currency)
        )
        assert plan.balance == plan.total - plan.paid
        assert plan.progression == f"{paid}/{n}"
        assert (plan.status is _P.COMPLETED) is (paid == n)
        assert plan.next_instalment == (plan.schedule[paid] if paid < n else None)
        assert plan.balance.is_zero() is (paid == n)

    @given(plan=sps.payment_plans())
    def test_committed_at_is_the_first_active_or_completed(self, plan: PaymentPlan) -> None:
        """committed_at is the first change into Active or Completed, or None."""
        entries = [c.at for c in plan.history if c.to in (_P.ACTIVE, _P.COMPLETED)]
        assert plan.committed_at == (entries[0] if entries else None)

    def test_actions_per_status(self) -> None:
        """Pending: resend; Active: none; Failed: resend and contact; Completed: archive."""
        plan = _offer()
        assert plan.follow_up_actions() == (FollowUpAction.RESEND_PAYMENT_LINK,)
        assert plan.activate(at=T0 + DAY).follow_up_actions() == ()
        assert plan.record_failure(at=T0 + DAY).follow_up_actions() == (
            FollowUpAction.RESEND_PAYMENT_LINK,
            FollowUpAction.CONTACT_PATIENT,
        )
        done = _paid(plan, 3)
        assert done.follow_up_actions() == (FollowUpAction.ARCHIVE,)
        assert plan.cancel(at=T0 + DAY).follow_up_actions() == ()
        assert done.archive(at=T0 + 30 * DAY).follow_up_actions() == ()

    def test_archive_a_completed_plan(self) -> None:
        """Archiving a Completed plan records when, keeps the status, and cannot be repeated."""
        done = _paid(_offer(), 3)
        archived = done.archive(at=T0 + 30 * DAY)
        assert archived.is_archived
        assert archived.archived_at == T0 + 30 * DAY
        assert archived.status is _P.COMPLETED
        assert archived.history == done.history
        with pytest.raises(RuleViolation) as caught:
            archived.archive(at=T0 + 31 * DAY)
        assert caught.value.rule == "not_archivable"
        assert caught.value.context == {"plan_id": "pp-1"}
        assert str(caught.value) == (
            "PaymentPlan pp-1: only an unarchived Completed plan can be archived (status COMPLETED)"
        )

    @pytest.mark.parametrize("status", [_P.PENDING, _P.ACTIVE, _P.FAILED, _P.CANCELLED])
    def test_only_completed_plans_are_archived(self, status: PaymentPlanStatus) -> None:
        """Archiving a plan that is not Completed raises 'not_archivable' naming its status."""
        plan = _offer()
        if status is _P.ACTIVE:
            plan = plan.activate(at=T0 + DAY)
        elif status is _P.FAILED:
            plan = plan.record_failure(at=T0 + DAY)
        elif status is _P.CANCELLED:
            plan = plan.cancel(at=T0 + DAY)
        snapshot = copy.deepcopy(plan)
        with pytest.raises(RuleViolation, match=f"status {status.name}") as caught:
            plan.archive(at=T0 + 2 * DAY)
        assert caught.value.rule == "not_archivable"
        assert plan == snapshot

    def test_archiving_before_completion_is_refused(self) -> None:
        """An archive instant before the plan's completion raises OutOfOrderChange."""
        done = _paid(_offer(), 3)
        with pytest.raises(OutOfOrderChange, match="PaymentPlan pp-1") as caught:
            done.archive(at=done.history[-1].at - timedelta(seconds=1))
        assert caught.value.previous == done.history[-1].at

    def test_a_naive_archive_instant_is_refused(self) -> None:
        """Archiving at a naive datetime raises NaiveDatetime."""
        with pytest.raises(NaiveDatetime, match="naive"):
            _paid(_offer(), 3).archive(at=datetime(2026, 3, 1))


class PaymentPlanMachine(RuleBasedStateMachine):
    """A PaymentPlan driven by random events on an advancing clock, against a naive model."""

    def __init__(self) -> None:
        super().__init__()
        self.plan: PaymentPlan
        self.clock = T0
        self.amounts: list[Money] = []
        self.total = aud("1")
        self.paid = 0
        self.status = _P.PENDING
        self.archived = False

    @initialize(
        payment_type=st.sampled_from(PaymentType),
        n=st.integers(1, 12),
        code=st.sampled_from(["AUD", "JPY", "KWD"]),
        minor=st.integers(12, 10**8),
        cycle=st.sampled_from(BillingCycle),
        start=sps.instants(max_value=datetime(2029, 1, 1, tzinfo=UTC)),
    )
    def offer(
        self,
        payment_type: PaymentType,
        n: int,
        code: str,
        minor: int,
        cycle: BillingCycle,
        start: datetime,
    ) -> None:
        """Offer a plan of a random type, size, currency and cycle."""
        n = n if payment_type is PaymentType.PLAN else 1
        self.clock = start
        self.total = Money.from_minor(minor, code)
        self.plan = _offer(
            total=self.total,
            payment_type=payment_type,
            instalments=n,
            cycle=cycle,
            first_due=start.date(),
            at=start,
        )
        # The schedule's amounts worked out by hand: equal shares, remainder on the first ones.
        share, left = divmod(minor, n)
        self.amounts = [Money.from_minor(share + (k < left), code) for k in range(n)]

    def _tick(self, gap: int) -> None:
        self.clock += timedelta(seconds=gap)

    def _closed_refuses(self, event: str) -> None:
        before = copy.deepcopy(self.plan)
        call = self.plan.record_payment if event == "pay" else self.plan.record_failure
        with pytest.raises(RuleViolation) as caught:
            call(at=self.clock)
        assert caught.value.rule == "plan_closed"
        assert self.status.name in str(caught.value)
        assert self.plan == before

    gaps = st.integers(0, 40 * 86400)

    @rule(gap=gaps)
    def record_payment(self, gap: int) -> None:
        """Pay the next instalment; closed plans refuse."""
        self._tick(gap)
        if self.status in CLOSED:
            self._closed_refuses("pay")
            return
        self.plan = self.plan.record_payment(at=self.clock)
        self.paid += 1
        self.status = _P.COMPLETED if self.paid == len(self.amounts) else _P.ACTIVE

    @rule(gap=gaps, extra=st.integers(1, 10**6))
    def pay_a_wrong_amount(self, gap: int, extra: int) -> None:
        """Paying more than the next instalment is refused and changes nothing."""
        self._tick(gap)
        if self.status in CLOSED:
            return
        before = copy.deepcopy(self.plan)
        due = self.amounts[self.paid]
        amount = due + Money.from_minor(extra, due.currency)
        with pytest.raises(RuleViolation) as caught:
            self.plan.record_payment(at=self.clock, amount=amount)
        balance = self.total - sum(self.amounts[: self.paid], Money.zero(self.total.currency))
        expected = "overpayment" if amount > balance else "instalment_amount"
        assert caught.value.rule == expected
        assert self.plan == before

    @rule(gap=gaps)
    def record_failure(self, gap: int) -> None:
        """A failed charge; closed plans refuse."""
        self._tick(gap)
        if self.status in CLOSED:
            self._closed_refuses("fail")
            return
        self.plan = self.plan.record_failure(at=self.clock)
        self.status = _P.FAILED

    @rule(gap=gaps)
    def activate(self, gap: int) -> None:
        """Activate when the table allows it; otherwise InvalidTransition and no change."""
        self._tick(gap)
        if _P.ACTIVE in ALLOWED[self.status]:
            self.plan = self.plan.activate(at=self.clock)
            self.status = _P.ACTIVE
        else:
            before = copy.deepcopy(self.plan)
            with pytest.raises(InvalidTransition, match=f"{self.status.name} to ACTIVE"):
                self.plan.activate(at=self.clock)
            assert self.plan == before

    @rule(gap=gaps)
    def cancel(self, gap: int) -> None:
        """Cancel when the table allows it; otherwise InvalidTransition and no change."""
        self._tick(gap)
        if _P.CANCELLED in ALLOWED[self.status]:
            self.plan = self.plan.cancel(at=self.clock)
            self.status = _P.CANCELLED
        else:
            before = copy.deepcopy(self.plan)
            with pytest.raises(InvalidTransition, match=f"{self.status.name} to CANCELLED"):
                self.plan.cancel(at=self.clock)
            assert self.plan == before

    @rule(gap=gaps)
    def archive(self, gap: int) -> None:
        """Archive an unarchived Completed plan; anything else is 'not_archivable'."""
        self._tick(gap)
        if self.status is _P.COMPLETED and not self.archived:
            self.plan = self.plan.archive(at=self.clock)
            self.archived = True
        else:
            before = copy.deepcopy(self.plan)
            with pytest.raises(RuleViolation) as caught:
                self.plan.archive(at=self.clock)
            assert caught.value.rule == "not_archivable"
            assert self.plan == before

    @invariant()
    def schedule_is_the_allocation(self) -> None:
        """The schedule's amounts are the hand-made split and add up to the total."""
        assert [i.amount for i in self.plan.schedule] == self.amounts
        assert sum(self.amounts) == self.total

    @invariant()
    def balance_is_total_minus_paid(self) -> None:
        """balance == total - paid, with paid the sum of the first paid_count instalments."""
        paid = sum(self.amounts[: self.paid], Money.zero(self.total.currency))
        assert self.plan.paid == paid
        assert self.plan.balance == self.total - paid

    @invariant()
    def paid_count_and_progression(self) -> None:
        """0 <= paid_count <= n and the progression reads paid/n."""
        n = len(self.amounts)
        assert self.plan.paid_count == self.paid
        assert 0 <= self.plan.paid_count <= n
        assert self.plan.progression == f"{self.paid}/{n}"

    @invariant()
    def status_and_completion(self) -> None:
        """The status is the model's and Completed exactly when every instalment is paid."""
        assert self.plan.status is self.status
        assert (self.plan.status is _P.COMPLETED) is (self.paid == len(self.amounts))
        assert self.plan.is_archived is self.archived

    @invariant()
    def closed_plans_take_no_payment(self) -> None:
        """A payment on a Completed or Cancelled plan raises 'plan_closed' and changes nothing."""
        if self.status in CLOSED:
            self._closed_refuses("pay")

    @invariant()
    def actions_follow_the_status(self) -> None:
        """The Actions menu matches the status (and is empty once archived)."""
        expected = {
            _P.PENDING: (FollowUpAction.RESEND_PAYMENT_LINK,),
            _P.ACTIVE: (),
            _P.FAILED: (FollowUpAction.RESEND_PAYMENT_LINK, FollowUpAction.CONTACT_PATIENT),
            _P.COMPLETED: () if self.archived else (FollowUpAction.ARCHIVE,),
            _P.CANCELLED: (),
        }
        assert self.plan.follow_up_actions() == expected[self.status]


TestPaymentPlanMachine = PaymentPlanMachine.TestCase


class TestBuildingLongPlans:
    """A move checks only what it adds (the new attempt, the new status change), and the
    result is the plan a full check accepts."""

    def test_a_long_plan_built_by_moves_passes_the_full_check(self) -> None:
        """2,000 failed attempts (each followed by a reactivation) and then every payment:
        the plan equals the one rebuilt from its fields and checked in full, and the
        shortcut leaves no trace once the moves are done."""
        from smilepass_core.domain.lifecycle import _EXTENDED
        from smilepass_core.domain.payment_plans import _CHECKED_ATTEMPTS

        t = datetime(2026, 1, 1, tzinfo=UTC)
        plan = PaymentPlan.offer(
            id="pp",
            practice_id="p1",
            patient=Patient("pt", "Ada"),
            total=Money.of("1200", "AUD"),
            payment_type=PaymentType.PLAN,
            first_due=date(2026, 1, 1),
            at=t,
            instalments=12,
        ).activate(at=t)
        for k in range(2000):
            plan = plan.record_failure(at=t + timedelta(minutes=2 * k + 1))
            plan = plan.activate(at=t + timedelta(minutes=2 * k + 2))
        for k in range(12):
            plan = plan.record_payment(at=t + timedelta(days=30, minutes=k))
        assert (len(plan.attempts), plan.status) == (2012, PaymentPlanStatus.COMPLETED)
        rebuilt = PaymentPlan(**{a.name: getattr(plan, a.name) for a in attrs.fields(PaymentPlan)})
        assert rebuilt == plan
        assert (_CHECKED_ATTEMPTS.get(), _EXTENDED.get()) == (None, None)

    def test_the_new_attempt_is_still_checked(self) -> None:
        """Building from a checked plan with a wrong new attempt (another instalment's
        number) is refused: the shortcut skips only the attempts already checked."""
        from smilepass_core.domain.payment_plans import _CHECKED_ATTEMPTS

        t = datetime(2026, 1, 1, tzinfo=UTC)
        plan = PaymentPlan.offer(
            id="pp",
            practice_id="p1",
            patient=Patient("pt", "Ada"),
            total=Money.of("1200", "AUD"),
            payment_type=PaymentType.PLAN,
            first_due=date(2026, 1, 1),
            at=t,
            instalments=12,
        ).activate(at=t)
        plan = plan.record_payment(at=t + timedelta(days=1))
        wrong = InstalmentAttempt(5, t + timedelta(days=2), Money.of("100", "AUD"), True)
        attempts = (*plan.attempts, wrong)
        token = _CHECKED_ATTEMPTS.set((attempts, len(plan.attempts), plan.paid_count))
        try:
            with pytest.raises(InvalidValue, match="must be for instalment 2"):
                attrs.evolve(plan, attempts=attempts)
        finally:
            _CHECKED_ATTEMPTS.reset(token)
