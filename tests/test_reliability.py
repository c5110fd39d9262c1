"""Reliability: an idempotent ledger, out-of-order delivery, terminal states, metamorphic KPI
properties across DST days and month ends, and the bad inputs docs/reliability.md catalogues.

"Respects their times", precisely: an order of one object's events (a member's status
changes, a payment plan's activations, payments, failures, cancellations and archiving)
*respects their times* when the events' instants never decrease along it. Events at
different instants therefore have one possible relative order; events sharing an instant
(a *tie*) may come in any order, and such an order is *legal* when every step is allowed
by the object's lifecycle at the moment it is applied. The properties below check that

- every time-respecting order is either accepted or refused by the transition table or a
  plan rule, never as out of order;
- an accepted one agrees with the recorded object wherever its ties came in recorded order
  (and always on first entries, money paid and the commitment instant);
- an order with an inversion (an event delivered after a later-stamped one) is refused no
  later than its first inversion.

A timestamp cannot order the events of a tie, so whether a legal swap inside a tie must
give the same state is an open question: TestOutOfOrderDelivery asserts that it should.
"""

from __future__ import annotations

import copy
import csv
import io
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from smilepass_core import (
    BillingCycle,
    Campaign,
    ConflictingPayment,
    DateRange,
    DuplicateId,
    InMemoryStore,
    Instalment,
    InvalidPeriod,
    InvalidRecord,
    InvalidTransition,
    InvalidValue,
    Ledger,
    Member,
    MembershipPlan,
    MembershipStatus,
    Money,
    NotFound,
    OutOfOrderChange,
    Patient,
    Payment,
    PaymentKind,
    PaymentOutcome,
    PaymentPlan,
    PaymentPlanStatus,
    PaymentQuery,
    PaymentType,
    Practice,
    Preset,
    Referral,
    ReferralStatus,
    RuleViolation,
    SmilepassError,
    StaffUser,
    StatusChange,
    Unit,
    UnknownCurrency,
    UnknownTimezone,
    dashboard,
)
from smilepass_core.domain import MEMBERSHIP_LIFECYCLE
from smilepass_core.domain.billing import price_due_at
from smilepass_core.domain.discounts import Discount
from smilepass_core.io.records import load_records, store_from_records
from smilepass_core.kpi import this_month
from smilepass_core.periods import add_units, local_midnight
from smilepass_core.reports import (
    accounting_export,
    aged_receivables,
    cohort_retention,
    instalment_forecast,
    membership_list,
    payment_plan_list,
    referral_tracking,
    staff_attribution,
    weekly_check,
)
from smilepass_core.sql import SqlStore
from smilepass_core.testing import strategies as sps

T = TypeVar("T")
E = TypeVar("E")

SYDNEY = "Australia/Sydney"
NEW_YORK = "America/New_York"
LONDON = "Europe/London"
DST_ZONES = (SYDNEY, NEW_YORK, LONDON)

US = timedelta(microseconds=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
FAR = datetime(2100, 1, 1, tzinfo=UTC)
#: Before any instant sps.datasets() generates.
BEFORE_DATASETS = datetime(2019, 12, 1, tzinfo=UTC)

#: The 2026 DST changes: zone, local day, the instant the UTC offset changes, hours that day.
DST_CHANGES = (
    (SYDNEY, date(2026, 4, 5), datetime(2026, 4, 4, 16, tzinfo=UTC), 25),
    (SYDNEY, date(2026, 10, 4), datetime(2026, 10, 3, 16, tzinfo=UTC), 23),
    (NEW_YORK, date(2026, 3, 8), datetime(2026, 3, 8, 7, tzinfo=UTC), 23),
    (NEW_YORK, date(2026, 11, 1), datetime(2026, 11, 1, 6, tzinfo=UTC), 25),
    (LONDON, date(2026, 3, 29), datetime(2026, 3, 29, 1, tzinfo=UTC), 23),
    (LONDON, date(2026, 10, 25), datetime(2026, 10, 25, 1, tzinfo=UTC), 25),
)
DST_IDS = [f"{tz.split('/')[1]}-{day}" for tz, day, _, _ in DST_CHANGES]

#: Whole datasets are slow to draw: a fifth of the profile's examples (40 under ``ci``),
#: keeping the profile's health-check choices.
DATASETS = settings(
    max_examples=settings.default.max_examples // 5,
    suppress_health_check=[*settings.default.suppress_health_check, HealthCheck.too_slow],
)

_M = MembershipStatus
_P = PaymentPlanStatus
_R = ReferralStatus


# -- building objects by hand ------------------------------------------------------------------


def aud(amount: str) -> Money:
    """``amount`` Australian dollars."""
    return Money.of(amount, "AUD")


def practice_in(tz: str, practice_id: str = "p") -> Practice:
    """An AUD practice in ``tz``."""
    return Practice(practice_id, f"Practice {practice_id}", tz, "AUD")


def plan_of(practice_id: str = "p") -> MembershipPlan:
    """The practice's membership plan, 30 a month."""
    return MembershipPlan(
        f"{practice_id}-plan", practice_id, "Essential", aud("30"), BillingCycle.MONTHLY
    )


def enrol(
    member_id: str, at: datetime, practice_id: str = "p", plan: str | None = None, **fields: Any
) -> Member:
    """A Pending member of ``practice_id`` enrolled at ``at`` (on ``plan_of(practice_id)``
    unless ``plan`` names another)."""
    return Member.enrol(
        id=member_id,
        practice_id=practice_id,
        plan_id=plan or f"{practice_id}-plan",
        account_holder=Patient(f"pat-{member_id}", f"Holder {member_id}"),
        start_date=at.date(),
        at=at,
        **fields,
    )


def charge(
    payment_id: str,
    minor: int,
    at: datetime,
    *,
    member: str = "payer",
    kind: PaymentKind = PaymentKind.CHARGE,
    outcome: PaymentOutcome = PaymentOutcome.SUCCEEDED,
) -> Payment:
    """A ledger entry of ``minor`` cents for ``member`` of practice ``p``."""
    return Payment(
        payment_id, "p", Money.from_minor(minor, "AUD"), kind, outcome, at, member_id=member
    )


def revenue(store: InMemoryStore, r: DateRange, now: datetime) -> Money:
    """The dashboard's Total Revenue of practice ``p`` over ``r`` seen at ``now``."""
    return dashboard(store, practices="p", date_range=r, now=now).revenue["AUD"].value


def collected(payments: Iterable[Payment], start: datetime, end: datetime) -> Money:
    """Brute force: succeeded charges minus succeeded refunds stamped in ``[start, end)``."""
    return sum((p.signed for p in payments if start <= p.at < end), Money.zero("AUD"))


def first_activations(members: Iterable[Member], start: datetime, end: datetime) -> int:
    """Brute force: members whose first activation is in ``[start, end)``."""
    return sum(1 for m in members if m.first_activated_at and start <= m.first_activated_at < end)


def is_local_midnight(instant: datetime, tz: str) -> bool:
    """True when ``instant`` is the first instant of its local day in ``tz``."""
    return instant == local_midnight(instant.astimezone(ZoneInfo(tz)).date(), tz)


# -- idempotency ---------------------------------------------------------------------------------


def ledger_view(store: InMemoryStore) -> dict[str, Any]:
    """Everything the ledger answers: its entries, per-practice totals over the whole
    ledger and over each half of it (the prefix-sum index), counts, net per source."""
    entries = sorted(store.payments, key=lambda p: p.id)
    instants = sorted(p.at for p in entries)
    middle = instants[len(instants) // 2] if instants else FAR
    first, last = (instants[0], instants[-1] + US) if instants else (FAR, FAR)
    view: dict[str, Any] = {"entries": entries, "count": store.payments.count(PaymentQuery())}
    for practice in store.practices:
        scope = {"practices": practice.id}
        view[practice.id] = [
            store.payments.total(PaymentQuery(**scope)),
            store.payments.total(PaymentQuery(time_range=DateRange(first, middle, "UTC"), **scope)),
            store.payments.total(PaymentQuery(time_range=DateRange(middle, last, "UTC"), **scope)),
            store.payments.count(PaymentQuery(time_range=DateRange(first, middle, "UTC"), **scope)),
        ]
    for p in entries:
        view[f"{p.source}"] = store.payments.collected_for(p.source, p.amount.currency)
    return view


#: One way each to change a payment's content while keeping its id.
PAYLOAD_CHANGES: dict[str, Callable[[Payment], Payment]] = {
    "amount": lambda p: attrs.evolve(
        p, amount=Money.from_minor(p.amount.minor + 1, p.amount.currency)
    ),
    "at": lambda p: attrs.evolve(p, at=p.at + US),
    "kind": lambda p: attrs.evolve(
        p,
        kind=PaymentKind.REFUND if p.kind is PaymentKind.CHARGE else PaymentKind.CHARGE,
    ),
    "outcome": lambda p: attrs.evolve(
        p,
        outcome=PaymentOutcome.FAILED if p.succeeded else PaymentOutcome.SUCCEEDED,
    ),
    "source": lambda p: (
        attrs.evolve(p, member_id=f"{p.member_id}-other")
        if p.member_id is not None
        else attrs.evolve(p, payment_plan_id=f"{p.payment_plan_id}-other")
    ),
}


class TestIdempotentLedger:
    """The same payment id twice counts once; the same id with other content is a conflict."""

    @DATASETS
    @given(dataset=sps.datasets(), data=st.data())
    def test_re_delivering_every_payment_changes_nothing(
        self, dataset: sps.Dataset, data: st.DataObject
    ) -> None:
        """Adding every recorded payment again, one by one and then twice over in one load,
        in any order, leaves entries, counts, totals, revenue and net per source as they were."""
        store = InMemoryStore.from_objects(dataset.objects())
        before = ledger_view(store)
        again = data.draw(st.permutations(dataset.payments), label="again")
        for payment in again:
            store.payments.add(attrs.evolve(payment))
        reload = data.draw(st.permutations(dataset.payments), label="reload")
        store.load([*reload, *reload])
        assert ledger_view(store) == before
        for p in dataset.practices:
            board = dashboard(
                store,
                practices=p.id,
                date_range=DateRange(BEFORE_DATASETS, FAR, p.timezone),
                now=FAR,
            )
            assert board.revenue[p.currency].value == sum(
                (x.signed for x in dataset.payments if x.practice_id == p.id),
                Money.zero(p.currency),
            )

    @DATASETS
    @given(
        dataset=sps.datasets(),
        data=st.data(),
        change=st.sampled_from(sorted(PAYLOAD_CHANGES)),
    )
    def test_a_different_payload_under_a_recorded_id_conflicts(
        self, dataset: sps.Dataset, data: st.DataObject, change: str
    ) -> None:
        """Another amount, instant, kind, outcome or source under a recorded id raises
        ConflictingPayment (directly, in a load, and in a Ledger); nothing changes."""
        assume(dataset.payments)
        original = data.draw(st.sampled_from(dataset.payments), label="original")
        changed = PAYLOAD_CHANGES[change](original)
        store = InMemoryStore.from_objects(dataset.objects())
        before = ledger_view(store)
        with pytest.raises(ConflictingPayment) as caught:
            store.payments.add(changed)
        error = caught.value
        assert (error.id, error.rule, error.field) == (original.id, "conflicting_payment", "id")
        assert isinstance(error, DuplicateId)
        assert isinstance(error, RuleViolation)
        assert isinstance(error, ValueError)
        assert repr(original.id) in str(error)
        with pytest.raises(InvalidRecord) as loaded:
            store.load([*dataset.payments[:1], changed])
        assert (loaded.value.table, loaded.value.index, loaded.value.field) == ("Payment", 1, "id")
        assert isinstance(loaded.value.__cause__, ConflictingPayment)
        assert ledger_view(store) == before
        ledger = Ledger(dataset.payments)
        with pytest.raises(ConflictingPayment):
            ledger.record(changed)
        assert ledger.record(original) is ledger

    @DATASETS
    @given(dataset=sps.datasets(), data=st.data())
    def test_a_ledger_delivered_in_any_order_converges_with_retries(
        self, dataset: sps.Dataset, data: st.DataObject
    ) -> None:
        """Payments added one by one in any order: only refunds that arrive before the
        charges they draw on are refused, and one retry pass makes the store equal to one
        loaded in order."""
        rest = [o for o in dataset.objects() if not isinstance(o, Payment)]
        store = InMemoryStore.from_objects(rest)
        queue = list(data.draw(st.permutations(dataset.payments), label="delivery"))
        passes = 0
        while queue:
            passes += 1
            assert passes <= 2
            refused, errors = [], []
            for payment in queue:
                try:
                    store.payments.add(payment)
                except RuleViolation as error:
                    refused.append(payment)
                    errors.append(error.rule)
            assert all(p.kind is PaymentKind.REFUND for p in refused)
            assert set(errors) <= {"refund_exceeds_collected"}
            queue = refused
        assert ledger_view(store) == ledger_view(InMemoryStore.from_objects(dataset.objects()))


# -- out-of-order delivery -----------------------------------------------------------------------


def replay(obj: T, events: Sequence[E], apply: Callable[[T, E], T]) -> tuple[T, int, Any]:
    """Apply ``events`` in order until one is refused: ``(object, events applied, error)``."""
    for k, event in enumerate(events):
        try:
            obj = apply(obj, event)
        except SmilepassError as error:
            return obj, k, error
    return obj, len(events), None


def time_respecting_orders(
    events: Sequence[E], instant: Callable[[E], datetime]
) -> Iterator[tuple[E, ...]]:
    """Every order of ``events`` (given in time order) whose instants never decrease."""
    groups = [tuple(g) for _, g in itertools.groupby(events, key=instant)]
    orders = itertools.product(*(itertools.permutations(g) for g in groups))
    yield from dict.fromkeys(tuple(e for g in order for e in g) for order in orders)


def ties(events: Sequence[E], instant: Callable[[E], datetime]) -> dict[datetime, tuple[E, ...]]:
    """Events (in a time-respecting order) grouped by instant, in the order given."""
    return {at: tuple(g) for at, g in itertools.groupby(events, key=instant)}


def first_inversion(events: Sequence[E], instant: Callable[[E], datetime]) -> int | None:
    """Position of the first event stamped before the one delivered just before it."""
    return next(
        (k for k in range(1, len(events)) if instant(events[k]) < instant(events[k - 1])), None
    )


def member_change(member: Member, change: Any) -> Member:
    """Deliver one recorded status change to ``member``."""
    return member.transition(change.to, at=change.at, reason=change.reason)


def change_at(change: Any) -> datetime:
    """When a status change happened."""
    return change.at  # type: ignore[no-any-return]


def coarsened(member: Member, grain: str | None) -> Member:
    """``member`` with every instant floored to the hour or day (more ties, same order)."""
    if grain is None:
        return member

    def floor(at: datetime) -> datetime:
        at = at.replace(minute=0, second=0, microsecond=0)
        return at.replace(hour=0) if grain == "day" else at

    return attrs.evolve(member, history=[attrs.evolve(c, at=floor(c.at)) for c in member.history])


PlanEvent = tuple[str, datetime]
#: Event kinds a plan story draws from, cancellation (which ends the story) the rarest.
PLAN_EVENT_KINDS = ("pay", "pay", "pay", "fail", "fail", "fail", "activate", "archive", "cancel")


def plan_event(plan: PaymentPlan, event: PlanEvent) -> PaymentPlan:
    """Deliver one event (``activate``, ``cancel``, ``pay``, ``fail``, ``archive``) to ``plan``."""
    kind, at = event
    if kind == "activate":
        return plan.activate(at=at)
    if kind == "cancel":
        return plan.cancel(at=at)
    if kind == "pay":
        return plan.record_payment(at=at)
    if kind == "fail":
        return plan.record_failure(at=at)
    return plan.archive(at=at)


def event_at(event: PlanEvent) -> datetime:
    """When a plan event happened."""
    return event[1]


@st.composite
def plan_stories(draw: st.DrawFn, max_events: int = 7) -> tuple[PaymentPlan, list[PlanEvent]]:
    """A freshly offered plan and the events it then lived through, in time order
    (gaps of zero make ties)."""
    offered = draw(sps.payment_plans(max_events=0))
    plan, at, events = offered, offered.created_at, []
    for _ in range(draw(st.integers(1, max_events))):
        at += timedelta(seconds=draw(st.sampled_from([0, 0, 1, 3600]) | st.integers(0, 40 * 86400)))
        event = (draw(st.sampled_from(PLAN_EVENT_KINDS)), at)
        try:
            plan = plan_event(plan, event)
        except SmilepassError:
            continue  # not possible at this point: not part of this plan's story
        events.append(event)
    return offered, events


@st.composite
def plan_deliveries(draw: st.DrawFn) -> tuple[PaymentPlan, list[PlanEvent]]:
    """A freshly offered plan and its events delivered in any order."""
    offered, recorded = draw(plan_stories())
    return offered, list(draw(st.permutations(recorded)))


def _offered_plan(at: datetime) -> PaymentPlan:
    """A Pending 3-instalment plan of 300 AUD offered at ``at``."""
    return PaymentPlan.offer(
        id="pp-1",
        practice_id="p",
        patient=Patient("pat-1", "Ada"),
        total=aud("300"),
        payment_type=PaymentType.PLAN,
        instalments=3,
        first_due=date(2026, 1, 31),
        at=at,
    )


_T = datetime(2026, 1, 10, tzinfo=UTC)
#: Recorded: failed on day 1, activated on day 2, failed again on day 3. Delivered: the
#: day-3 failure before the day-2 activation.
FAIL_FAIL_ACTIVATE = (
    _offered_plan(_T),
    [("fail", _T + DAY), ("fail", _T + 3 * DAY), ("activate", _T + 2 * DAY)],
)


class TestOutOfOrderDelivery:
    """Events delivered in any order that respects their times give the recorded state;
    an order against time is refused at its first inversion."""

    @given(member=sps.members(max_changes=6), grain=st.sampled_from([None, "hour", "day"]))
    def test_member_orders_that_respect_time_are_accepted_or_refused_by_the_table(
        self, member: Member, grain: str | None
    ) -> None:
        """Every time-respecting order of a member's changes is either refused with
        InvalidTransition (never OutOfOrderChange) or accepted; accepted, it agrees with the
        recorded member on first entries and at every instant whose tie came in recorded order."""
        member = coarsened(member, grain)
        base = attrs.evolve(member, history=member.history[:1])
        recorded = member.history[1:]
        assert replay(base, recorded, member_change) == (member, len(recorded), None)
        for order in time_respecting_orders(recorded, change_at):
            result, k, error = replay(base, order, member_change)
            if error is not None:
                assert isinstance(error, InvalidTransition)
                assert (error.from_, error.to) == (result.status, order[k].to)
                continue
            for status in MembershipStatus:
                assert result.first_entered(status) == member.first_entered(status)
            delivered = ties(order, change_at)
            for at, group in ties(recorded, change_at).items():
                if delivered[at] == group:
                    assert result.status_before(at + US) == member.status_before(at + US)
            if delivered == ties(recorded, change_at):
                assert result == member

    @given(story=plan_stories())
    def test_plan_orders_that_respect_time_are_accepted_or_refused_by_a_rule(
        self, story: tuple[PaymentPlan, list[PlanEvent]]
    ) -> None:
        """Every time-respecting order of a plan's events is either refused by the table or
        a plan rule (never OutOfOrderChange) or accepted with the same money paid, the same
        commitment instant and, where ties came in recorded order, the same status."""
        offered, recorded = story
        plan, applied, error = replay(offered, recorded, plan_event)
        assert (applied, error) == (len(recorded), None)
        for order in time_respecting_orders(recorded, event_at):
            result, _, error = replay(offered, order, plan_event)
            if error is not None:
                assert isinstance(error, InvalidTransition | RuleViolation)
                assert not isinstance(error, OutOfOrderChange)
                if isinstance(error, RuleViolation):
                    assert error.rule in {"plan_closed", "not_archivable"}
                continue
            assert (result.paid, result.balance) == (plan.paid, plan.balance)
            assert result.committed_at == plan.committed_at
            delivered = ties(order, event_at)
            for at, group in ties(recorded, event_at).items():
                if delivered[at] == group:
                    assert result.status_before(at + US) == plan.status_before(at + US)
            if delivered == ties(recorded, event_at):
                assert result == plan

    @given(member=sps.members(max_changes=6), data=st.data())
    def test_a_member_order_against_time_is_refused_by_its_first_inversion(
        self, member: Member, data: st.DataObject
    ) -> None:
        """Delivered with an earlier change after a later one, the member's changes are refused
        no later than that inversion (OutOfOrderChange naming both instants when the inversion
        itself is refused); only the changes before the refusal are applied."""
        base = attrs.evolve(member, history=member.history[:1])
        order = data.draw(st.permutations(member.history[1:]), label="order")
        inversion = first_inversion(order, change_at)
        assume(inversion is not None)
        result, k, error = replay(base, order, member_change)
        assert error is not None
        assert k <= inversion  # type: ignore[operator]
        assert len(result.history) == 1 + k
        assert isinstance(error, InvalidTransition | OutOfOrderChange)
        if isinstance(error, OutOfOrderChange):
            assert k == inversion
            assert (error.previous, error.at) == (result.history[-1].at, order[k].at)
            assert f"Member {member.id}" in str(error)

    @given(delivery=plan_deliveries())
    @example(delivery=FAIL_FAIL_ACTIVATE)
    def test_a_plan_order_against_time_is_refused_by_its_first_inversion(
        self, delivery: tuple[PaymentPlan, list[PlanEvent]]
    ) -> None:
        """Delivered with an earlier event after a later one, a plan's events are refused no
        later than that inversion (the example: a failure on a Failed plan, then an
        activation dated before it)."""
        offered, order = delivery
        inversion = first_inversion(order, event_at)
        assume(inversion is not None)
        _, k, error = replay(offered, order, plan_event)
        assert error is not None, f"every event accepted: {order}"
        assert k <= inversion  # type: ignore[operator]

    def test_a_plan_move_dated_before_its_last_attempt_is_refused(self) -> None:
        """A cancellation or activation dated before the plan's last instalment attempt
        raises OutOfOrderChange naming that attempt's instant (no payment after Cancelled)."""
        t = _T
        plan = _offered_plan(t)
        paid = plan.activate(at=t + DAY).record_payment(at=t + 5 * DAY)
        with pytest.raises(OutOfOrderChange) as caught:
            paid.cancel(at=t + 3 * DAY)
        assert caught.value.previous == t + 5 * DAY
        failing = paid.record_failure(at=t + 6 * DAY).record_failure(at=t + 9 * DAY)
        with pytest.raises(OutOfOrderChange):
            failing.activate(at=t + 7 * DAY)

    def test_same_instant_changes_apply_in_delivery_order(self) -> None:
        """A timestamp cannot order a tie, so changes stamped at the same instant apply in
        the order they were delivered: the last one delivered is the state from then on,
        and the history keeps that order (the documented tie policy)."""
        t = datetime(2026, 3, 1, tzinfo=UTC)
        failed = enrol("m-1", t).fail(at=t)
        one = failed.activate(at=t + DAY).suspend(at=t + DAY)
        other = failed.suspend(at=t + DAY).activate(at=t + DAY)
        assert [c.to for c in one.history[-2:]] == [_M.ACTIVE, _M.SUSPENDED]
        assert [c.to for c in other.history[-2:]] == [_M.SUSPENDED, _M.ACTIVE]
        for member, last in ((one, _M.SUSPENDED), (other, _M.ACTIVE)):
            assert member.status_at(t + DAY) is last
            assert member.status_before(t + 2 * DAY) is last
            assert member.status_before(t + DAY) is _M.FAILED


# -- terminal states ----------------------------------------------------------------------------


def closed_plan(plan: PaymentPlan, complete: bool) -> PaymentPlan:
    """``plan`` Completed (every instalment paid) or Cancelled, unless already closed."""
    at = max([plan.history[-1].at, *(a.at for a in plan.attempts)])
    if plan.status in (_P.COMPLETED, _P.CANCELLED):
        return plan
    if not complete:
        return plan.cancel(at=at)
    while plan.status is not _P.COMPLETED:
        plan = plan.record_payment(at=at)
    return plan


def terminal_moves(obj: Any, at: datetime) -> list[Callable[[], object]]:
    """Every move ``obj``'s type offers, at ``at``."""
    if isinstance(obj, Member):
        named = ("activate", "fail", "suspend", "cancel")
        return [
            *(lambda s=s: obj.transition(s, at=at) for s in MembershipStatus),
            *(lambda n=n: getattr(obj, n)(at=at) for n in named),
        ]
    if isinstance(obj, PaymentPlan):
        return [
            lambda: obj.activate(at=at),
            lambda: obj.cancel(at=at),
            lambda: obj.record_payment(at=at),
            lambda: obj.record_failure(at=at),
        ]
    return [lambda: obj.convert(member_id="m-new", at=at), lambda: obj.cancel(at=at)]


@st.composite
def terminal_objects(draw: st.DrawFn) -> Any:
    """A Cancelled member, a Completed or Cancelled plan, or a Converted or Cancelled referral."""
    kind = draw(st.sampled_from(["member", "plan", "referral"]))
    if kind == "member":
        member = draw(sps.members())
        return member if member.status is _M.CANCELLED else member.cancel(at=member.history[-1].at)
    if kind == "plan":
        return closed_plan(draw(sps.payment_plans()), draw(st.booleans()))
    referral = draw(sps.referrals())
    if referral.status is not _R.PENDING:
        return referral
    if draw(st.booleans()):
        return referral.cancel(at=referral.created_at)
    return referral.convert(member_id="m-converted", at=referral.created_at)


class TestTerminalStates:
    """Cancelled, Completed and Converted absorb every later move with a clear error."""

    @given(obj=terminal_objects(), offset=st.integers(-30 * 86400, 30 * 86400))
    def test_every_move_out_of_a_terminal_state_is_refused_at_any_instant(
        self, obj: Any, offset: int
    ) -> None:
        """Dated before, at or after the terminal change, every move raises InvalidTransition
        or RuleViolation("plan_closed") (never OutOfOrderChange) naming the object and its
        status, and the object stays equal to before."""
        snapshot = copy.deepcopy(obj)
        at = obj.history[-1].at + timedelta(seconds=offset)
        for move in terminal_moves(obj, at):
            with pytest.raises(SmilepassError) as caught:
                move()
            error = caught.value
            if isinstance(error, InvalidTransition):
                assert error.from_ is obj.status
                assert "none (terminal)" in str(error)
            else:
                assert isinstance(error, RuleViolation)
                assert error.rule == "plan_closed"
            assert obj.status.name in str(error)
            assert obj.id in str(error)
        assert obj == snapshot


# -- DST: metamorphic KPI properties --------------------------------------------------------------


def landmarks(tz: str, day: date, change: datetime) -> list[datetime]:
    """Local midnights around ``day`` (and the microsecond before each), the DST change
    instant and the instants just around it (the repeated or skipped hour included)."""
    midnights = [local_midnight(day + k * DAY, tz) for k in range(-3, 5)]
    near = [change + d for d in (-HOUR, -HOUR / 2, -US, timedelta(0), US, HOUR / 2, HOUR)]
    return sorted({*midnights, *(m - US for m in midnights[1:]), *near})


def moments(tz: str, day: date, change: datetime) -> st.SearchStrategy[datetime]:
    """Landmarks, or any microsecond of the week around the change."""
    lo, hi = local_midnight(day - 3 * DAY, tz), local_midnight(day + 4 * DAY, tz)
    span = (hi - lo) // US
    return st.sampled_from(landmarks(tz, day, change)) | st.integers(0, span - 1).map(
        lambda n: lo + n * US
    )


@attrs.frozen
class DstScene:
    """Practice ``p`` in ``tz`` around the DST change of local ``day``: members first
    activated (some fail and come back), and a payer's charges, failures and refunds."""

    tz: str
    day: date
    change: datetime
    members: tuple[Member, ...]
    payments: tuple[Payment, ...]

    def objects(self) -> list[object]:
        """Everything, ready for a store: the payer, Active long before the week, and for
        each other member charged, a Pending member enrolled then on a plan of their own
        priced at their charge (every charge is the price due, whatever its amount)."""
        long_ago = local_midnight(self.day - 10 * DAY, self.tz)
        payer = enrol("payer", long_ago).activate(at=long_ago)
        prices: dict[str, Money] = {}
        for p in self.payments:
            if p.kind is PaymentKind.CHARGE and p.member_id != "payer":
                prices.setdefault(str(p.member_id), p.amount)
        plans = [attrs.evolve(plan_of(), id=f"p-plan-{m}", price=a) for m, a in prices.items()]
        payers = [enrol(m, long_ago, plan=f"p-plan-{m}") for m in prices]
        return [
            practice_in(self.tz),
            plan_of(),
            *plans,
            payer,
            *payers,
            *self.members,
            *self.payments,
        ]

    def moments(self) -> st.SearchStrategy[datetime]:
        """Instants worth splitting at: landmarks and any microsecond of the week."""
        return moments(self.tz, self.day, self.change)


@st.composite
def dst_scenes(draw: st.DrawFn) -> DstScene:
    """A practice around one of the 2026 DST changes of Sydney, New York and London."""
    tz, day, change, _ = draw(st.sampled_from(DST_CHANGES))
    when = moments(tz, day, change)
    enrolled = local_midnight(day - 5 * DAY, tz)
    members = []
    for i in range(draw(st.integers(0, 6))):
        times = sorted(draw(st.lists(when, min_size=1, max_size=3)))
        member = enrol(f"m{i}", enrolled).activate(at=times[0])
        if len(times) > 1:
            member = member.fail(at=times[1])
        if len(times) > 2:
            member = member.activate(at=times[2])
        members.append(member)
    drawn = [
        (draw(when), draw(st.sampled_from(["charge", "charge", "failed", "refund"])), n)
        for n in range(draw(st.integers(0, 12)))
    ]
    net: dict[str, int] = {}
    payments = []
    for at, what, n in sorted(drawn, key=lambda e: (e[0], e[1] == "refund", e[2])):
        minor = draw(st.integers(1, 10**5))
        member = f"payer{n}"  # a charge of its own amount: its own plan's price
        if what == "refund":
            paid = [m for m, collected in net.items() if collected > 0]
            if not paid:
                continue
            member = paid[minor % len(paid)]
            minor = min(minor, net[member])
        kind = PaymentKind.REFUND if what == "refund" else PaymentKind.CHARGE
        outcome = PaymentOutcome.FAILED if what == "failed" else PaymentOutcome.SUCCEEDED
        payment = charge(f"pay{n}", minor, at, member=member, kind=kind, outcome=outcome)
        net[member] = net.get(member, 0) + payment.signed.minor
        payments.append(payment)
    return DstScene(tz, day, change, tuple(members), tuple(payments))


class TestDstFixtures:
    """The DST changes these tests rely on are the zone database's."""

    @pytest.mark.parametrize(("tz", "day", "change", "hours"), DST_CHANGES, ids=DST_IDS)
    def test_the_offset_changes_exactly_at_the_listed_instant(
        self, tz: str, day: date, change: datetime, hours: int
    ) -> None:
        """The UTC offset differs a microsecond before the change, and the day lasts 23 or 25 h."""
        zi = ZoneInfo(tz)
        midnight, next_midnight = local_midnight(day, tz), local_midnight(day + DAY, tz)
        assert midnight < change < next_midnight
        assert (change - US).astimezone(zi).utcoffset() == midnight.astimezone(zi).utcoffset()
        assert change.astimezone(zi).utcoffset() == next_midnight.astimezone(zi).utcoffset()
        assert change.astimezone(zi).utcoffset() != midnight.astimezone(zi).utcoffset()
        assert next_midnight - midnight == timedelta(hours=hours)


class TestDstKpis:
    """Across the 2026 DST days of Sydney, New York and London: revenue adds up over any
    split, day buckets tile the range at local midnights, and nothing is counted twice."""

    @given(scene=dst_scenes(), data=st.data())
    def test_revenue_over_a_range_is_the_sum_over_any_split(
        self, scene: DstScene, data: st.DataObject
    ) -> None:
        """Revenue over [a, c) equals revenue over [a, b) plus [b, c) for any a <= b <= c
        (local midnights and DST change instants included), and the brute-force sum."""
        a, b, c = sorted(data.draw(scene.moments(), label="edge") for _ in range(3))
        now = data.draw(scene.moments() | st.just(FAR), label="now")
        store = InMemoryStore.from_objects(scene.objects())
        whole = revenue(store, DateRange(a, c, scene.tz), now)
        assert whole == revenue(store, DateRange(a, b, scene.tz), now) + revenue(
            store, DateRange(b, c, scene.tz), now
        )
        assert whole == collected(scene.payments, a, min(c, now))

    @given(scene=dst_scenes(), data=st.data())
    def test_day_buckets_tile_the_range_at_local_midnights_and_count_once(
        self, scene: DstScene, data: st.DataObject
    ) -> None:
        """The week around a DST change (cut at now) is tiled by day buckets whose edges are
        local midnights; New Members per bucket and in total are brute-force counts, and
        revenue per bucket adds up to the week's, every payment in exactly one bucket."""
        r = DateRange.custom(scene.day - 3 * DAY, scene.day + 3 * DAY, timezone=scene.tz)
        now = data.draw(scene.moments() | st.just(FAR), label="now")
        store = InMemoryStore.from_objects(scene.objects())
        board = dashboard(store, practices="p", date_range=r, now=now)
        end = max(r.start, min(r.end, now))
        points = board.new_members
        if end == r.start:
            assert points == ()
            return
        assert points[0].start == r.start
        assert points[-1].end == end
        for before, after in itertools.pairwise(points):
            assert before.end == after.start
            assert is_local_midnight(after.start, scene.tz)
        for point in points:
            assert point.start == local_midnight(point.day, scene.tz)
            assert point.end in (local_midnight(point.day + DAY, scene.tz), end)
            assert point.value == first_activations(scene.members, point.start, point.end)
        assert sum(p.value for p in points) == first_activations(scene.members, r.start, end)
        per_bucket = [revenue(store, DateRange(p.start, p.end, scene.tz), now) for p in points]
        assert sum(per_bucket, Money.zero("AUD")) == board.revenue["AUD"].value
        assert board.revenue["AUD"].value == collected(scene.payments, r.start, end)
        for payment in scene.payments:
            holders = [p for p in points if p.start <= payment.at < p.end]
            assert len(holders) == (1 if r.start <= payment.at < end else 0)

    @pytest.mark.parametrize(("tz", "day", "change", "hours"), DST_CHANGES, ids=DST_IDS)
    def test_payments_and_joins_on_midnights_and_the_change_land_once(
        self, tz: str, day: date, change: datetime, hours: int
    ) -> None:
        """Entries exactly at the DST day's midnight, the change instant and the next
        midnight fall in the bucket starting at or holding them, once; the DST day's
        bucket lasts 23 or 25 hours."""
        midnight, next_midnight = local_midnight(day, tz), local_midnight(day + DAY, tz)
        stamps = {
            "midnight-1us": (midnight - US, 1),
            "midnight": (midnight, 10),
            "change-1us": (change - US, 100),
            "change": (change, 1000),
            "next-midnight": (next_midnight, 10000),
        }
        joins = [
            enrol(f"j-{name}", midnight - 2 * DAY).activate(at=t) for name, (t, _) in stamps.items()
        ]
        pays = [
            charge(f"pay-{name}", minor, t, member=f"payer-{name}")
            for name, (t, minor) in stamps.items()
        ]
        scene = DstScene(tz, day, change, tuple(joins), tuple(pays))
        store = InMemoryStore.from_objects(scene.objects())
        r = DateRange.custom(day - DAY, day + DAY, timezone=tz)
        board = dashboard(store, practices="p", date_range=r, now=FAR)
        assert [(p.day, p.end - p.start, p.value) for p in board.new_members] == [
            (day - DAY, 24 * HOUR, 1),
            (day, hours * HOUR, 3),
            (day + DAY, 24 * HOUR, 1),
        ]
        per_day = [revenue(store, DateRange(p.start, p.end, tz), FAR) for p in board.new_members]
        assert [m.minor for m in per_day] == [1, 1110, 10000]
        assert board.revenue["AUD"].value == Money.from_minor(11111, "AUD")


# -- month ends ----------------------------------------------------------------------------------

#: Month-end instalment anchors: 29, 30, 31 January (before a common and a leap February)
#: and 29 February.
MONTH_END_ANCHORS = [
    date(2026, 1, 29),
    date(2026, 1, 30),
    date(2026, 1, 31),
    date(2028, 1, 29),
    date(2028, 1, 30),
    date(2028, 1, 31),
    date(2028, 2, 29),
]
#: Days whose last instant is a "now" at a month end (or just before one).
MONTH_END_DAYS = [
    date(2026, 1, 29),
    date(2026, 1, 30),
    date(2026, 1, 31),
    date(2026, 2, 28),
    date(2028, 1, 31),
    date(2028, 2, 29),
]


def month_start(day: date, k: int = 0) -> date:
    """The first day of the month ``k`` months after ``day``'s."""
    return add_units(day.replace(day=1), Unit.MONTH, k)


class TestMonthEnds:
    """Month-end anchors keep one instalment per month, and this month / last month turn
    over exactly at the local midnight that starts a month, in every DST zone."""

    @pytest.mark.parametrize("tz", DST_ZONES)
    @pytest.mark.parametrize("anchor", MONTH_END_ANCHORS)
    def test_a_month_end_anchor_puts_one_instalment_in_each_month(
        self, tz: str, anchor: date
    ) -> None:
        """A 13-instalment monthly plan from a month-end anchor has exactly one instalment
        due in each of 13 consecutive local months, on the anchor day or the month's last."""
        plan = PaymentPlan.offer(
            id="pp-1",
            practice_id="p",
            patient=Patient("pat-1", "Ada"),
            total=aud("1300"),
            payment_type=PaymentType.PLAN,
            instalments=13,
            first_due=anchor,
            at=datetime(2025, 12, 1, tzinfo=UTC),
        ).activate(at=datetime(2025, 12, 1, tzinfo=UTC))
        store = InMemoryStore.from_objects([practice_in(tz), plan])
        r = DateRange.custom(month_start(anchor), month_start(anchor, 13) - DAY, timezone=tz)
        forecast = instalment_forecast(store, date_range=r, unit=Unit.MONTH)
        assert [(row.bucket, row.instalments, row.amount) for row in forecast.rows] == [
            (month_start(anchor, k), 1, aud("100")) for k in range(13)
        ]
        for k, instalment in enumerate(plan.schedule):
            month = DateRange(
                local_midnight(month_start(anchor, k), tz),
                local_midnight(month_start(anchor, k + 1), tz),
                tz,
            )
            assert local_midnight(instalment.due_date, tz) in month
            last_day = (month_start(anchor, k + 1) - DAY).day
            assert instalment.due_date.day == min(anchor.day, last_day)

    @pytest.mark.parametrize("tz", DST_ZONES)
    @pytest.mark.parametrize("day", MONTH_END_DAYS)
    def test_this_and_last_month_turn_over_at_the_next_local_midnight(
        self, tz: str, day: date
    ) -> None:
        """At the last microsecond of a 29th, 30th, 31st or 28th/29th February, this month is
        that day's month and last month the one before; at the next local midnight they move
        on only if a new month starts."""
        next_midnight = local_midnight(day + DAY, tz)
        last_instant = next_midnight - US
        this = DateRange.this_month(now=last_instant, timezone=tz)
        assert (this.start, this.end) == (
            local_midnight(month_start(day), tz),
            local_midnight(month_start(day, 1), tz),
        )
        last = DateRange.last_month(now=last_instant, timezone=tz)
        assert (last.start, last.end) == (local_midnight(month_start(day, -1), tz), this.start)
        after = DateRange.this_month(now=next_midnight, timezone=tz)
        if (day + DAY).month != day.month:
            assert after.start == next_midnight == this.end
            assert DateRange.last_month(now=next_midnight, timezone=tz) == this
        else:
            assert after == this
        cut = this_month(this, last_instant)
        assert (cut.start, cut.end) == (this.start, last_instant)

    @pytest.mark.parametrize("tz", DST_ZONES)
    @pytest.mark.parametrize("day", MONTH_END_DAYS)
    def test_this_month_deltas_at_the_last_instant_of_the_day(self, tz: str, day: date) -> None:
        """Seen at the last microsecond of a month-end day, the this-month deltas count what
        happened from the month's first local midnight up to (not at) now."""
        first = local_midnight(month_start(day), tz)
        now = local_midnight(day + DAY, tz) - US
        stamps = {"before": first - US, "first": first, "late": now - US, "now": now}
        joins = [enrol(f"j-{name}", first - 5 * DAY).activate(at=t) for name, t in stamps.items()]
        pays = [
            charge(f"pay-{name}", minor, t, member=f"payer-{name}")
            for (name, t), minor in zip(stamps.items(), (1, 10, 100, 1000), strict=True)
        ]
        scene = DstScene(tz, month_start(day), first, tuple(joins), tuple(pays))
        store = InMemoryStore.from_objects(scene.objects())
        board = dashboard(store, practices="p", date_range=Preset.THIS_MONTH, now=now)
        assert board.ranges["p"].start == first
        assert board.revenue["AUD"].this_month_delta == Money.from_minor(110, "AUD")
        assert board.revenue["AUD"].value == Money.from_minor(110, "AUD")
        assert board.members.this_month_delta == 2
        assert board.members.value == 4  # the payer, "before", "first" and "late"


# -- the bad-input catalogue (docs/reliability.md) -------------------------------------------------

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def catalogue_store() -> InMemoryStore:
    """Practice p (Sydney) with a plan, staff user s-1, campaign c-1 and member m-1."""
    return InMemoryStore.from_objects(
        [
            practice_in(SYDNEY),
            plan_of(),
            StaffUser("s-1", "p", "Sam"),
            Campaign("c-1", "p", "Spring smiles", "SPRING", T0 - 30 * DAY),
            enrol("m-1", T0).activate(at=T0),
        ]
    )


class TestReferences:
    """A member or referral naming a campaign or staff user the store does not hold is refused."""

    @pytest.mark.parametrize("field", ["campaign_id", "staff_user_id"])
    @pytest.mark.parametrize("kind", ["Referral", "Member"])
    def test_an_unknown_campaign_or_staff_user_is_refused_naming_the_field(
        self, kind: str, field: str
    ) -> None:
        """add() raises NotFound naming the field and id; load() raises InvalidRecord naming
        the object, its index and the field; nothing is kept either way."""
        store = catalogue_store()
        if kind == "Referral":
            obj: Any = Referral.open(
                id="r-1",
                practice_id="p",
                account_holder=Patient("pat-r", "Grace"),
                start_date=T0.date(),
                at=T0,
                **{field: "nope"},
            )
            repo: Any = store.referrals
        else:
            obj = enrol("m-2", T0, **{field: "nope"})
            repo = store.members
        with pytest.raises(NotFound) as caught:
            repo.add(obj)
        assert (caught.value.field, caught.value.id) == (field, "nope")
        assert str(caught.value).startswith(f"{field}: ")
        assert isinstance(caught.value, LookupError)
        with pytest.raises(InvalidRecord) as loaded:
            store.load([enrol("m-3", T0), obj])
        assert (loaded.value.table, loaded.value.index, loaded.value.field) == (kind, 1, field)
        with pytest.raises(NotFound):
            repo.get(obj.id)
        with pytest.raises(NotFound):
            store.members.get("m-3")


def csv_tables(files: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    """CSV texts by file stem, read as a host would (every value a string)."""
    return {stem: list(csv.DictReader(io.StringIO(text))) for stem, text in files.items()}


CSV_FILES = {
    "practices": "id,name,timezone,currency\np,Harbour Dental,Australia/Sydney,AUD\n"
    "q,Hudson Smiles,America/New_York,USD\n",
    "staff_users": "id,practice_id,name\ns-1,p,Sam\ns-2,q,Priya\n",
    "membership_plans": "id,practice_id,name,price,currency,billing_cycle\n"
    "p-plan,p,Essential,30.00,AUD,monthly\nq-plan,q,Family,45.50,USD,Monthly \n",
    "campaigns": "id,practice_id,name,promo_code,active_from,active_until\n"
    "c-1,p,Spring,SPRING,2026-03-01T00:00:00+11:00,\n"
    "c-2,q,Back to school,SCHOOL,2026-08-01T00:00:00-04:00,2026-09-01T00:00:00-04:00\n",
}


class TestCsvRows:
    """A malformed CSV row is refused naming the file, the row and the field; nothing loads."""

    def test_the_well_formed_files_load(self) -> None:
        """The files as written (stray spaces and case included) load completely."""
        store = store_from_records(csv_tables(CSV_FILES))
        kept = (store.practices, store.staff_users, store.membership_plans, store.campaigns)
        assert [len(repo) for repo in kept] == [2, 2, 2, 2]

    @pytest.mark.parametrize(
        ("stem", "row", "field", "value", "reason"),
        [
            ("practices", 1, "currency", "AUDD", "ISO 4217"),
            ("practices", 0, "timezone", "Sydney", "IANA"),
            ("staff_users", 1, "name", "  ", "required"),
            ("staff_users", 0, "practice_id", "nowhere", "not found"),
            ("membership_plans", 0, "price", "30.001", "2 decimals"),
            ("membership_plans", 1, "price", "NaN", "finite"),
            ("membership_plans", 1, "billing_cycle", "daily", "allowed"),
            ("campaigns", 0, "active_from", "2026-03-01T00:00:00", "naive"),
            ("campaigns", 1, "active_until", "2026-07-01T00:00:00-04:00", "before active_from"),
        ],
    )
    def test_a_bad_row_names_file_row_and_field_and_nothing_loads(
        self, stem: str, row: int, field: str, value: str, reason: str
    ) -> None:
        """The error names the file stem, the data row (0-based; line row + 2 of the file)
        and the field, says why, and leaves the store empty."""
        tables = csv_tables(CSV_FILES)
        tables[stem][row][field] = value
        store = InMemoryStore()
        with pytest.raises(InvalidRecord) as caught:
            load_records(store, tables)
        error = caught.value
        assert (error.table, error.index, error.field) == (stem, row, field)
        assert reason in error.reason
        assert str(error).startswith(f"{stem}[{row}].{field}: ")
        assert isinstance(error, ValueError)
        kept = (store.practices, store.staff_users, store.membership_plans, store.campaigns)
        assert [len(repo) for repo in kept] == [0, 0, 0, 0]


class TestDuplicateIds:
    """An id that is already taken is refused, naming the record, whatever the content."""

    @pytest.mark.parametrize("same", [True, False], ids=["identical", "different"])
    @pytest.mark.parametrize("kind", ["Practice", "Member"])
    def test_loading_a_taken_id_names_the_record(self, kind: str, same: bool) -> None:
        """Loading an object whose id the store already holds raises InvalidRecord naming
        its type, index and field ``id`` (an identical copy included: only payments are
        idempotent); the load keeps nothing."""
        store = catalogue_store()
        kept: Any = store.practices.get("p") if kind == "Practice" else store.members.get("m-1")
        if same:
            obj = kept
        elif kind == "Practice":
            obj = attrs.evolve(kept, name="Renamed")
        else:
            obj = attrs.evolve(kept, start_date=kept.start_date + DAY)
        with pytest.raises(InvalidRecord) as caught:
            store.load([enrol("m-9", T0), obj])
        assert (caught.value.table, caught.value.index, caught.value.field) == (kind, 1, "id")
        assert isinstance(caught.value.__cause__, DuplicateId)
        with pytest.raises(NotFound):
            store.members.get("m-9")

    def test_a_row_repeated_in_a_csv_file_names_the_second_row(self) -> None:
        """The same practice twice in practices.csv raises InvalidRecord naming row 2; nothing
        loads."""
        files = dict(CSV_FILES)
        files["practices"] += "p,Harbour Dental,Australia/Sydney,AUD\n"
        store = InMemoryStore()
        with pytest.raises(InvalidRecord) as caught:
            load_records(store, csv_tables(files))
        assert (caught.value.table, caught.value.index, caught.value.field) == (
            "practices",
            2,
            "id",
        )
        assert len(store.practices) == 0


class TestEmptyStores:
    """An empty practice or an empty store gives zeros, empty lists and undefined rates."""

    def test_every_report_of_an_empty_practice_is_zero_or_empty(self) -> None:
        """Dashboard, lists, receivables, cohorts, attribution, export, forecast and the
        weekly check of a practice with nothing in it raise nothing and hold no figure but 0."""
        store = InMemoryStore.from_objects([practice_in(SYDNEY)])
        r = DateRange.custom(date(2026, 2, 1), date(2026, 2, 28), timezone=SYDNEY)
        board = dashboard(store, practices="p", date_range=r, now=T0)
        zero = Money.zero("AUD")
        assert (board.members.value, board.revenue["AUD"].value) == (0, zero)
        assert (board.retention.value, board.period_retention.value) == (None, None)
        assert referral_tracking(store).rows == ()
        assert membership_list(store, as_of=T0).counts == {}
        plans = payment_plan_list(store, as_of=T0)
        assert (plans.rows, plans.outstanding, plans.discrepancies) == ((), {}, ())
        assert aged_receivables(store, at=T0).totals == {}
        assert cohort_retention(store, now=T0).rows == ()
        assert staff_attribution(store, date_range=r, now=T0).rows == ()
        assert accounting_export(store, date_range=r, now=T0).rows == ()
        forecast = instalment_forecast(store, date_range=r)
        assert [(row.instalments, row.amount) for row in forecast.rows] == [(0, zero)]
        check = weekly_check(store, now=T0)
        assert check.failed_plans == check.overdue_members == check.converted_referrals == ()
        assert check.dashboard.members.value == 0

    def test_reports_of_a_store_without_practices_are_empty(self) -> None:
        """With no practice at all, the lists and tables over "all practices" are empty."""
        store = InMemoryStore()
        r = DateRange.custom(date(2026, 2, 1), date(2026, 2, 28), timezone=SYDNEY)
        assert referral_tracking(store).rows == ()
        assert membership_list(store, as_of=T0).rows == ()
        assert payment_plan_list(store, as_of=T0).rows == ()
        assert aged_receivables(store, at=T0).rows == ()
        assert cohort_retention(store, now=T0).rows == ()
        assert staff_attribution(store, date_range=r, now=T0).rows == ()
        assert accounting_export(store, date_range=r, now=T0).totals == {}
        assert instalment_forecast(store, date_range=r).rows == ()

    def test_a_dashboard_or_weekly_check_without_practices_is_refused_by_name(self) -> None:
        """With no practice to show, dashboard() and weekly_check() raise InvalidValue
        naming ``practices`` (not a bare IndexError)."""
        store = InMemoryStore()
        with pytest.raises(InvalidValue) as board:
            dashboard(store, practices=[], now=T0)
        assert board.value.field == "practices"
        with pytest.raises(InvalidValue) as check:
            weekly_check(store, now=T0)
        assert check.value.field == "practices"


# -- values as hosts hand them over ----------------------------------------------------------

_T = datetime(2026, 1, 1, tzinfo=UTC)
_ADA = Patient("pt", "Ada")


def _enrol(**changes: Any) -> Member:
    fields: dict[str, Any] = {
        "id": "m1",
        "practice_id": "p1",
        "plan_id": "pl",
        "account_holder": _ADA,
        "start_date": date(2026, 1, 1),
        "at": _T,
    }
    return Member.enrol(**{**fields, **changes})


class TestHostValues:
    """Web-form strings and ORM ``None``s handed to the domain's constructors are the
    library's errors naming the field (record files parse strings; the domain does not)."""

    @pytest.mark.parametrize(
        ("build", "error", "field"),
        [
            (lambda: _enrol(start_date="2026-01-01"), InvalidValue, "start_date"),
            (lambda: _enrol(at="2026-01-01T00:00Z"), InvalidPeriod, "at"),
            (
                lambda: Instalment("1", date(2026, 1, 1), Money.of("1", "AUD")),
                InvalidValue,
                "number",
            ),
            (lambda: MembershipPlan("pl", "p1", "Care", "30.00", "monthly"), InvalidValue, "price"),
            (
                lambda: Campaign("c", "p1", "Spring", "SPRING", date(2026, 1, 1)),
                InvalidPeriod,
                "active_from",
            ),
        ],
        ids=["date-string", "instant-string", "number-string", "price-string", "day-for-instant"],
    )
    def test_web_form_strings(self, build: Callable[[], object], error: type, field: str) -> None:
        """A string (or a day) where the domain wants a date, an instant, a number or
        Money raises the library's error naming the field."""
        with pytest.raises(error) as caught:
            build()
        assert isinstance(caught.value, SmilepassError)
        assert caught.value.field == field  # type: ignore[attr-defined]

    @pytest.mark.parametrize(
        ("build", "error", "field"),
        [
            (lambda: _enrol(id=None), InvalidValue, "id"),
            (lambda: Patient("pt", None), InvalidValue, "name"),  # type: ignore[arg-type]
            (lambda: Practice("p1", "Harbour", None, "AUD"), UnknownTimezone, "timezone"),  # type: ignore[arg-type]
            (lambda: Practice("p1", "Harbour", "UTC", None), UnknownCurrency, "currency"),  # type: ignore[arg-type]
            (
                lambda: Payment("x", "p1", Money.of("1", "AUD"), "charge", "succeeded", None),
                InvalidPeriod,
                "at",
            ),
            (
                lambda: StatusChange(_T, None, MembershipStatus.PENDING, None),
                InvalidValue,
                "reason",
            ),  # type: ignore[arg-type]
        ],
        ids=["id", "name", "timezone", "currency", "at", "reason"],
    )
    def test_orm_nones_in_required_fields(
        self, build: Callable[[], object], error: type, field: str
    ) -> None:
        """``None`` (an ORM's NULL) in a required field raises the library's error naming
        the field, never an AttributeError from inside."""
        with pytest.raises(error) as caught:
            build()
        assert caught.value.field == field  # type: ignore[attr-defined]


#: Zones far ahead of and behind UTC, and one whose DST moves by half an hour.
SAVE_ZONES = [
    "UTC",
    "Australia/Adelaide",
    "America/New_York",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "Australia/Lord_Howe",
]


def _ada(at: datetime) -> Member:
    """Member ``m`` of practice ``p`` on plan ``gold`` from 1 January 2026, enrolled and
    Active at ``at``."""
    return Member.enrol(
        id="m",
        practice_id="p",
        plan_id="gold",
        account_holder=Patient("pt", "Ada"),
        start_date=date(2026, 1, 1),
        at=at,
    ).activate(at=at)


def _memory_store(objects: list[object]) -> Any:
    return InMemoryStore.from_objects(objects)


def _sqlite_store(objects: list[object]) -> Any:
    store = SqlStore.connect("sqlite://")
    store.load(objects)
    return store


class TestSavesKeepTheLedgerLoadable:
    """A save over recorded charges (a member's status change, start date or plan
    rewritten; a practice's time zone) keeps a ledger the store loads, in both stores: a
    save is kept exactly when the store's objects, as saved, load."""

    @pytest.mark.parametrize("change", ["move", "start_date", "plan_id", "zone", "reprice"])
    @pytest.mark.parametrize("make", [_memory_store, _sqlite_store], ids=["memory", "sqlite"])
    @settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def test_a_save_is_kept_exactly_when_the_ledger_still_loads(
        self, make: Callable[[list[object]], Any], change: str, data: st.DataObject
    ) -> None:
        """A member on 30.00 monthly, Active from 1 January, granted 5.00 off from a drawn
        billing date, maybe moved to a drawn status, charged the price due (succeeded or
        failed) in the first two days of its first billing dates (from 09:00 on the first),
        then saved moved again
        (stamped up to 45 days before a charge or the end), with its start date moved up to
        40 days either way, or with its plan rewritten to one at 60.00 or 30.00; or its
        practice saved in a drawn time zone: the save is kept exactly when the store's
        objects, as saved, load into a fresh InMemoryStore. Or its plan repriced from a
        drawn day, or made weekly: a kept save loads (one may be refused that would load:
        a reprice never reaches back over a charged date). A refused save keeps the
        member, the practice and the plan as they were."""
        zone = data.draw(st.sampled_from(SAVE_ZONES), label="zone")
        practice = Practice("p", "P", zone, "AUD")
        plan = MembershipPlan("gold", "p", "Gold", Money.of("30", "AUD"), "monthly")
        others = [
            MembershipPlan("plat", "p", "Platinum", Money.of("60", "AUD"), "monthly"),
            MembershipPlan("basic", "p", "Basic", Money.of("30", "AUD"), "monthly"),
        ]
        off = Discount("off", "p", "Loyalty", amount=Money.of("5", "AUD"))
        t0 = local_midnight(date(2026, 1, 1), zone) + 9 * HOUR
        member = _ada(t0).grant(off, first=data.draw(st.integers(1, 3), label="first"))
        end = 24 * 150  # hours: the charges fall in the first five months

        def move(member: Member, label: str, near: list[int], *, cancel: bool = True) -> Member:
            """``member`` moved to a drawn status (Cancelled only if ``cancel``), stamped up to
            45 days before an hour of ``near`` after ``t0`` (never before their last change)."""
            allowed = MEMBERSHIP_LIFECYCLE.allowed(member.status)
            targets = sorted(
                allowed - (set() if cancel else {MembershipStatus.CANCELLED}), key=lambda s: s.value
            )
            to = data.draw(st.sampled_from(targets), label=f"{label} to")
            hours = data.draw(st.sampled_from(near), label=f"{label} near")
            hours -= data.draw(st.integers(0, 24 * 45), label=f"{label} before")
            at = max(member.last_changed_at, t0 + hours * HOUR)
            return member.transition(to, at=at, reason=label)

        if data.draw(st.booleans(), label="moved first"):  # in the first 45 days
            member = move(member, "first move", [24 * 45], cancel=False)
        store = make([practice, plan, *others, member])
        hours = [  # up to one charge a month, in the first two days of its billing date
            max(
                0,
                int((local_midnight(date(2026, 1 + k, 1), zone) - t0) / HOUR)
                + data.draw(st.integers(0, 47), label="late"),
            )
            for k in range(data.draw(st.integers(0, 5), label="charges"))
        ]
        refusals = []
        for k, offset in enumerate(hours):
            at = t0 + offset * HOUR
            due = price_due_at(member, plan, at=at, timezone=zone)
            outcome = data.draw(st.sampled_from(PaymentOutcome), label="outcome")
            try:
                store.payments.add(Payment(f"c{k}", "p", due, PaymentKind.CHARGE, outcome, at, "m"))
            except RuleViolation as refused:
                refusals.append(refused.rule)
        assert set(refusals) <= {"charge_after_cancel"}
        saved, repriced, moved = practice, plan, member
        if change == "reprice":  # a new price, or a weekly cycle, from a drawn day
            on = date(2026, 1, 1) + timedelta(days=data.draw(st.integers(0, 150), label="on"))
            repriced = data.draw(
                st.sampled_from(
                    [
                        plan.reprice(Money.of("35", "AUD"), on=on),
                        attrs.evolve(plan, billing_cycle=BillingCycle.WEEKLY),
                    ]
                ),
                label="plan",
            )
        elif change == "zone":
            elsewhere = [z for z in SAVE_ZONES if z != zone]
            saved = attrs.evolve(
                practice, timezone=data.draw(st.sampled_from(elsewhere), label="to")
            )
        elif change == "start_date":
            shift = timedelta(days=data.draw(st.integers(-40, 40), label="days"))
            moved = attrs.evolve(member, start_date=member.start_date + shift)
        elif change == "plan_id":
            moved = attrs.evolve(member, plan_id=data.draw(st.sampled_from(["plat", "basic"])))
        else:
            moved = move(member, "save", [*hours, end])
        refusal = None
        try:
            if change == "zone":
                store.practices.save(saved)
            elif change == "reprice":
                store.membership_plans.save(repriced)
            else:
                store.members.save(moved)
        except RuleViolation as refused:
            refusal = refused.rule
        assert refusal in (None, "reprice_backdated", "charge_after_cancel")
        kept = refusal is None
        assert store.members.get("m") == (moved if kept else member)
        assert store.practices.get("p") == (saved if kept else practice)
        assert store.membership_plans.get("gold") == (repriced if kept else plan)
        ledger = store.payments.find(PaymentQuery())
        try:
            InMemoryStore.from_objects([saved, repriced, *others, moved, *ledger])
        except InvalidRecord:
            loads = False
        else:
            loads = True
        if change == "reprice":  # refused over any charged date, even one still allowed
            assert loads or not kept
        else:
            assert kept == loads

    @pytest.mark.parametrize("make", [_memory_store, _sqlite_store], ids=["memory", "sqlite"])
    def test_a_change_late_on_a_25_hour_day_reprices_its_early_charge(
        self, make: Callable[[list[object]], Any]
    ) -> None:
        """New York's 1 November 2026 lasts 25 hours. A member on 30.00 monthly from
        1 January, repriced to 40.00 from 1 November, Suspended from 5 October, charged 30.00
        at 00:10 on 1 November (1 October's price: that day is no billing date while
        Suspended). Active again at 23:50 that day, 24 h 40 min after the charge, would make
        1 November a billing date at 40.00: refused. At 00:10 on 2 November it is kept."""
        zone = "America/New_York"
        practice = Practice("p", "P", zone, "AUD")
        plan = MembershipPlan("gold", "p", "Gold", Money.of("30", "AUD"), "monthly")
        plan = plan.reprice(Money.of("40", "AUD"), on=date(2026, 11, 1))
        day = local_midnight(date(2026, 11, 1), zone)
        member = _ada(local_midnight(date(2026, 1, 1), zone))
        member = member.suspend(at=local_midnight(date(2026, 10, 5), zone))
        store = make([practice, plan, member])
        early = day + timedelta(minutes=10)
        charge = Payment("c", "p", Money.of("30", "AUD"), "charge", "succeeded", early, "m")
        store.payments.add(charge)
        late = member.activate(at=early + timedelta(hours=24, minutes=40))
        assert local_midnight(date(2026, 11, 2), zone) - day == timedelta(hours=25)
        with pytest.raises(RuleViolation) as refused:
            store.members.save(late)
        assert (refused.value.rule, refused.value.field) == ("reprice_backdated", "history")
        assert store.members.get("m") == member
        resumed = member.activate(
            at=local_midnight(date(2026, 11, 2), zone) + timedelta(minutes=10)
        )
        store.members.save(resumed)
        assert store.members.get("m") == resumed
