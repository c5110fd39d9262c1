"""Query specs, sorting and paging, and the overdue rule, checked against brute-force oracles.

Every oracle here is written out by hand from the documented rules (replaying
histories, comparing instants): none of them calls a spec's own ``matches()``.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_oracle import BILLABLE, local, membership_dues, overdue_from, status_then
from smilepass_core.domain import (
    PAYMENT_PLAN_LIFECYCLE,
    BillingCycle,
    Member,
    MembershipPlan,
    MembershipStatus,
    Patient,
    Payment,
    PaymentKind,
    PaymentOutcome,
    PaymentPlan,
    PaymentPlanStatus,
    PaymentType,
    Practice,
    Referral,
    ReferralStatus,
)
from smilepass_core.domain.invoices import MAX_GRACE_DAYS
from smilepass_core.domain.overdue import (
    amount_overdue,
    is_overdue,
    overdue_instalments,
    unpaid_charges,
)
from smilepass_core.errors import InvalidValue, NaiveDatetime, UnknownStatus
from smilepass_core.money import Money
from smilepass_core.periods import DateRange, local_midnight
from smilepass_core.queries import (
    MEMBER_ACTION_ORDER,
    PAYMENT_PLAN_ACTION_ORDER,
    MemberQuery,
    Order,
    Page,
    PaymentPlanQuery,
    PaymentQuery,
    ReferralQuery,
    ScopeQuery,
    SortKey,
    apply_order,
    check_order,
    sort_columns,
)
from smilepass_core.testing import strategies as sps

_M = MembershipStatus
_P = PaymentPlanStatus
_R = ReferralStatus

#: Whole datasets are slow to draw: a quarter of the profile's examples (50 under ``ci``),
#: keeping the profile's health-check choices.
DATASETS = settings(
    max_examples=settings.default.max_examples // 4,
    suppress_health_check=[*settings.default.suppress_health_check, HealthCheck.too_slow],
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
MICRO = timedelta(microseconds=1)
SYDNEY = "Australia/Sydney"
ADA = Patient("pat-ada", "Ada Lovelace")
GRACE = Patient("pat-grace", "Grace Hopper")


# -- oracles -------------------------------------------------------------------------------


def _allowed(values: frozenset[Any] | None, value: Any) -> bool:
    """None: no filter; otherwise the value must be one of them (an empty set admits nothing)."""
    if values is None:
        return True
    return any(value == v for v in values)


def _status_before(obj: Any, boundary: datetime) -> Any:
    """Replay the history by hand: the status after the last change stamped before ``boundary``."""
    status = None
    for change in obj.history:
        if change.at < boundary:
            status = change.to
    return status


def _first_time(obj: Any, statuses: Iterable[Any]) -> datetime | None:
    """The earliest instant at which ``obj`` entered one of ``statuses``."""
    wanted = set(statuses)
    times = [c.at for c in obj.history if c.to in wanted]
    return min(times) if times else None


def _inside(instant: datetime | None, r: DateRange) -> bool:
    """Half-open: ``start <= instant < end``."""
    return instant is not None and r.start <= instant < r.end


def _day_within(first: date | None, last: date | None, day: date) -> bool:
    """Both bounds included."""
    return (first is None or first <= day) and (last is None or day <= last)


def _text_in(needle: str | None, haystack: str) -> bool:
    return needle is None or needle.lower() in haystack.lower()


def _paid(plan: PaymentPlan) -> int:
    return sum(1 for a in plan.attempts if a.succeeded)


def _late_instalments(plan: PaymentPlan, at: datetime, timezone: str, grace: int) -> list[int]:
    """The plan as it stood at ``at`` (changes and attempts stamped at ``at`` included): while
    Pending, Active or Failed, its unpaid instalments due by the local day of ``at``, overdue
    from the day after their due date, or from a failed attempt's day, plus grace."""
    status = None
    for change in plan.history:
        if change.at <= at:
            status = change.to
    if status not in (_P.PENDING, _P.ACTIVE, _P.FAILED):
        return []
    attempts = [a for a in plan.attempts if a.at <= at]
    paid = sum(1 for a in attempts if a.succeeded)
    today = local(at, timezone)
    return [
        i.number
        for i in plan.schedule[paid:]
        if i.due_date <= today
        and overdue_from(
            i.due_date,
            [a.at for a in attempts if a.number == i.number and not a.succeeded],
            timezone,
            grace,
        )
        <= today
    ]


def _late_membership(
    member: Member,
    catalogue: Mapping[str, MembershipPlan],
    ledger: Iterable[Payment],
    at: datetime,
    timezone: str,
    grace: int,
) -> bool:
    """Pending, Active or Failed at ``at``, with a billing date due by then, unpaid, and
    overdue by :func:`billing_oracle.overdue_from`."""
    if status_then(member, at, strictly=False) not in BILLABLE:
        return False
    today = local(at, timezone)
    return any(
        d.unpaid.is_positive() and overdue_from(d.day, d.failures, timezone, grace) <= today
        for d in membership_dues(member, catalogue, ledger, at, timezone)
    )


def _overdue(
    member: Member,
    plans: Iterable[PaymentPlan],
    at: datetime,
    timezone: str,
    grace: int,
    catalogue: Mapping[str, MembershipPlan],
    ledger: Iterable[Payment],
) -> bool:
    if _late_membership(member, catalogue, ledger, at, timezone, grace):
        return True
    return any(_late_instalments(p, at, timezone, grace) for p in plans if p.member_id == member.id)


def member_oracle(
    q: MemberQuery,
    m: Member,
    plans: Sequence[PaymentPlan],
    timezone: str,
    catalogue: Mapping[str, MembershipPlan] = {},
    ledger: Iterable[Payment] = (),
) -> bool:
    """Brute-force MemberQuery semantics."""
    first = _first_time(m, [_M.ACTIVE])
    checks = [
        _allowed(q.practices, m.practice_id),
        _allowed(q.ids, m.id),
        _allowed(q.plans, m.plan_id),
        _allowed(q.statuses, m.history[-1].to),
        _allowed(q.campaigns, m.campaign_id),
        _allowed(q.staff_users, m.staff_user_id),
        _day_within(q.start_from, q.start_until, m.start_date),
        _text_in(q.name_contains, m.account_holder.name),
        q.active_at is None or _status_before(m, q.active_at) is _M.ACTIVE,
        q.retained_until is None or _status_before(m, q.retained_until) is _M.ACTIVE,
        q.ever_active_before is None or (first is not None and first < q.ever_active_before),
        q.first_activated_in is None or _inside(first, q.first_activated_in),
        q.counting_at is None
        or (
            _status_before(m, q.counting_at) in (_M.ACTIVE, _M.FAILED)
            and _allowed(q.counting_plans, _plan_before(m, q.counting_at))
        ),
        q.changed_in is None
        or any(_inside(c.at, q.changed_in) for c in (*m.history, *m.plan_changes)),
    ]
    if q.overdue is not None:
        assert q.as_of is not None
        late = _overdue(m, plans, q.as_of, timezone, q.grace_days, catalogue, ledger)
        checks.append(late is q.overdue)
    return all(checks)


def _plan_before(m: Member, boundary: datetime) -> str:
    """The plan of the latest plan change strictly before ``boundary``, else the first."""
    earlier = [c for c in m.plan_changes if c.at < boundary]
    if earlier:
        return earlier[-1].to_plan
    return m.plan_changes[0].from_plan if m.plan_changes else m.plan_id


def plan_oracle(q: PaymentPlanQuery, p: PaymentPlan, timezone: str) -> bool:
    """Brute-force PaymentPlanQuery semantics."""
    checks = [
        _allowed(q.practices, p.practice_id),
        _allowed(q.ids, p.id),
        _allowed(q.statuses, p.history[-1].to),
        _allowed(q.payment_types, p.payment_type),
        _allowed(q.members, p.member_id),
        q.archived is None or (p.archived_at is not None) is q.archived,
        _text_in(q.name_contains, p.patient.name),
        q.committed_in is None
        or _inside(_first_time(p, [_P.ACTIVE, _P.COMPLETED]), q.committed_in),
    ]
    if q.overdue is not None:
        assert q.as_of is not None
        late = bool(_late_instalments(p, q.as_of, timezone, q.grace_days))
        checks.append(late is q.overdue)
    return all(checks)


def _source(p: Payment) -> tuple[str, str]:
    if p.member_id is not None:
        return ("member", p.member_id)
    assert p.payment_plan_id is not None
    return ("payment_plan", p.payment_plan_id)


def payment_oracle(q: PaymentQuery, p: Payment) -> bool:
    """Brute-force PaymentQuery semantics."""
    return (
        _allowed(q.practices, p.practice_id)
        and _allowed(q.ids, p.id)
        and _allowed(q.sources, _source(p))
        and _allowed(q.kinds, p.kind)
        and _allowed(q.outcomes, p.outcome)
        and (q.time_range is None or q.time_range.start <= p.at < q.time_range.end)
    )


def referral_oracle(q: ReferralQuery, r: Referral) -> bool:
    """Brute-force ReferralQuery semantics."""
    return (
        _allowed(q.practices, r.practice_id)
        and _allowed(q.ids, r.id)
        and _allowed(q.campaigns, r.campaign_id)
        and _allowed(q.staff_users, r.staff_user_id)
        and _allowed(q.referring_members, r.referring_member_id)
        and _allowed(q.statuses, r.history[-1].to)
        and _day_within(q.start_from, q.start_until, r.start_date)
        and (q.converted_in is None or _inside(_first_time(r, [_R.CONVERTED]), q.converted_in))
    )


def _zones(dataset: sps.Dataset) -> dict[str, str]:
    return {p.id: p.timezone for p in dataset.practices}


def _plans_of(dataset: sps.Dataset, member: Member) -> list[PaymentPlan]:
    return [p for p in dataset.payment_plans if p.member_id == member.id]


# -- sorting oracle ---------------------------------------------------------------------

#: The action orders, written out from the manual: what needs action first.
MEMBER_RANK = {_M.FAILED: 0, _M.PENDING: 1, _M.SUSPENDED: 2, _M.ACTIVE: 3, _M.CANCELLED: 4}
PLAN_RANK = {_P.FAILED: 0, _P.PENDING: 1, _P.ACTIVE: 2, _P.COMPLETED: 3, _P.CANCELLED: 4}
REFERRAL_RANK = {_R.PENDING: 0, _R.CONVERTED: 1, _R.CANCELLED: 2}


def _next_due(p: PaymentPlan) -> date | None:
    paid = _paid(p)
    return p.schedule[paid].due_date if paid < len(p.schedule) else None


def _balance(p: PaymentPlan) -> Any:
    return p.total.amount - sum(a.amount.amount for a in p.attempts if a.succeeded)


#: Each list column's value, computed independently of ``sort_columns``.
ORACLE_COLUMNS: dict[type, dict[str, Callable[[Any], Any]]] = {
    Member: {
        "id": lambda m: m.id,
        "account_holder": lambda m: m.account_holder.name.lower(),
        "dependents": lambda m: len(m.dependents),
        "plan": lambda m: m.plan_id,
        "status": lambda m: MEMBER_RANK[m.history[-1].to],
        "start_date": lambda m: m.start_date,
        "practice": lambda m: m.practice_id,
        "campaign": lambda m: m.campaign_id,
        "user": lambda m: m.staff_user_id,
        "created_at": lambda m: m.history[0].at,
        "first_activated_at": lambda m: _first_time(m, [_M.ACTIVE]),
    },
    PaymentPlan: {
        "id": lambda p: p.id,
        "patient": lambda p: p.patient.name.lower(),
        "progression": lambda p: (Fraction(_paid(p), len(p.schedule)), len(p.schedule)),
        "balance": _balance,
        "total": lambda p: p.total.amount,
        "status": lambda p: PLAN_RANK[p.history[-1].to],
        "payment_type": lambda p: p.payment_type.value,
        "next_due": _next_due,
        "practice": lambda p: p.practice_id,
        "created_at": lambda p: p.history[0].at,
    },
    Referral: {
        "id": lambda r: r.id,
        "account_holder": lambda r: r.account_holder.name.lower(),
        "dependents": lambda r: len(r.dependents),
        "start_date": lambda r: r.start_date,
        "campaign": lambda r: r.campaign_id,
        "user": lambda r: r.staff_user_id,
        "status": lambda r: REFERRAL_RANK[r.history[-1].to],
        "practice": lambda r: r.practice_id,
    },
    Payment: {
        "id": lambda p: p.id,
        "at": lambda p: p.at,
        "amount": lambda p: p.amount.amount,
        "kind": lambda p: p.kind.value,
        "outcome": lambda p: p.outcome.value,
        "practice": lambda p: p.practice_id,
    },
}


def oracle_order(items: Iterable[Any], kind: type, order: Order) -> list[Any]:
    """Compare key by key (None after any value, either direction), then id ascending; slice."""
    columns = ORACLE_COLUMNS[kind]

    def compare(a: Any, b: Any) -> int:
        for key in order.keys:
            va, vb = columns[key.column](a), columns[key.column](b)
            if va is None and vb is None:
                continue
            if va is None:
                return 1
            if vb is None:
                return -1
            if va == vb:
                continue
            result = -1 if va < vb else 1
            return -result if key.descending else result
        return -1 if a.id < b.id else (1 if a.id > b.id else 0)

    ranked = sorted(items, key=functools.cmp_to_key(compare))
    start = order.page.offset
    return ranked[start:] if order.page.limit is None else ranked[start : start + order.page.limit]


# -- small builders ------------------------------------------------------------------------


def _member(id: str = "m-1", *, at: datetime = T0, **fields: Any) -> Member:
    base: dict[str, Any] = {
        "id": id,
        "practice_id": "p-1",
        "plan_id": "gold",
        "account_holder": ADA,
        "start_date": at.date(),
        "at": at,
    }
    return Member.enrol(**{**base, **fields})


def _in_status(status: MembershipStatus, id: str, at: datetime = T0) -> Member:
    m = _member(id, at=at)
    path = {
        _M.PENDING: [],
        _M.ACTIVE: [_M.ACTIVE],
        _M.FAILED: [_M.FAILED],
        _M.SUSPENDED: [_M.ACTIVE, _M.SUSPENDED],
        _M.CANCELLED: [_M.CANCELLED],
    }[status]
    for k, to in enumerate(path, start=1):
        m = m.transition(to, at=at + k * DAY)
    return m


def _plan(
    id: str = "pp-1",
    *,
    first_due: date = date(2026, 3, 15),
    instalments: int = 3,
    member_id: str | None = "m-1",
    payment_type: PaymentType = PaymentType.PLAN,
    total: str = "300",
    at: datetime = T0,
) -> PaymentPlan:
    return PaymentPlan.offer(
        id=id,
        practice_id="p-1",
        patient=ADA,
        total=Money.of(total, "AUD"),
        payment_type=payment_type,
        instalments=instalments,
        first_due=first_due,
        at=at,
        member_id=member_id,
    )


def _plan_in_status(status: PaymentPlanStatus, id: str) -> PaymentPlan:
    plan = _plan(id)
    if status is _P.ACTIVE:
        return plan.activate(at=T0 + DAY)
    if status is _P.FAILED:
        return plan.record_failure(at=T0 + DAY)
    if status is _P.COMPLETED:
        for k in range(3):
            plan = plan.record_payment(at=T0 + (k + 1) * DAY)
        return plan
    if status is _P.CANCELLED:
        return plan.cancel(at=T0 + DAY)
    return plan


# -- matches() against the oracles ---------------------------------------------------------


class TestMatchesAgainstOracles:
    """Every spec's matches() agrees with a brute-force reading of its documented fields."""

    @DATASETS
    @given(data=st.data(), dataset=sps.datasets(), grace=st.integers(0, 10))
    def test_member_query(self, data: st.DataObject, dataset: sps.Dataset, grace: int) -> None:
        """MemberQuery.matches equals the oracle on generated queries, grace days included."""
        zones = _zones(dataset)
        catalogue = {p.id: p for p in dataset.membership_plans}
        for _ in range(4):
            query = data.draw(sps.member_queries(dataset), label="query")
            if query.overdue is not None and data.draw(st.booleans(), label="regrace"):
                query = attrs.evolve(query, grace_days=grace)
            for m in dataset.members:
                plans = _plans_of(dataset, m)
                tz = zones[m.practice_id]
                ledger = [p for p in dataset.payments if p.member_id == m.id]
                found = query.matches(
                    m, plans=plans, timezone=tz, payments=ledger, membership_plans=catalogue
                )
                assert found is member_oracle(query, m, plans, tz, catalogue, ledger), m.id

    @DATASETS
    @given(data=st.data(), dataset=sps.datasets(), grace=st.integers(0, 10))
    def test_payment_plan_query(
        self, data: st.DataObject, dataset: sps.Dataset, grace: int
    ) -> None:
        """PaymentPlanQuery.matches equals the oracle (committed_in, archived, types, overdue)."""
        zones = _zones(dataset)
        for _ in range(4):
            query = data.draw(sps.payment_plan_queries(dataset), label="query")
            if query.overdue is not None:
                query = attrs.evolve(query, grace_days=grace)
            for p in dataset.payment_plans:
                tz = zones[p.practice_id]
                assert query.matches(p, timezone=tz) is plan_oracle(query, p, tz), p.id

    @DATASETS
    @given(data=st.data(), dataset=sps.datasets())
    def test_payment_query(self, data: st.DataObject, dataset: sps.Dataset) -> None:
        """PaymentQuery.matches equals the oracle (sources, kinds, outcomes, half-open range)."""
        for _ in range(4):
            query = data.draw(sps.payment_queries(dataset), label="query")
            for p in dataset.payments:
                assert query.matches(p) is payment_oracle(query, p), p.id

    @DATASETS
    @given(data=st.data(), dataset=sps.datasets())
    def test_referral_query(self, data: st.DataObject, dataset: sps.Dataset) -> None:
        """ReferralQuery.matches equals the oracle (converted_in half-open, id sets)."""
        for _ in range(4):
            query = data.draw(sps.referral_queries(dataset), label="query")
            for r in dataset.referrals:
                assert query.matches(r) is referral_oracle(query, r), r.id

    @DATASETS
    @given(data=st.data(), dataset=sps.datasets())
    def test_scope_query(self, data: st.DataObject, dataset: sps.Dataset) -> None:
        """ScopeQuery matches by practice (a Practice is its own practice) and by id."""
        for objects in (dataset.practices, dataset.staff_users, dataset.campaigns):
            query = data.draw(sps.scope_queries(dataset, objects), label="query")
            for o in objects:
                practice = o.id if isinstance(o, Practice) else o.practice_id
                expected = _allowed(query.practices, practice) and _allowed(query.ids, o.id)
                assert query.matches(o) is expected


class TestMemberBoundaries:
    """Worked examples of the temporal member filters at their edges."""

    def test_active_at_excludes_a_change_stamped_at_the_boundary(self) -> None:
        """A member activated exactly at B is not Active at B, and is one microsecond later."""
        activated = T0 + DAY
        m = _member().activate(at=activated)
        assert not MemberQuery(active_at=activated).matches(m)
        assert MemberQuery(active_at=activated + MICRO).matches(m)

    def test_active_at_follows_the_last_change_before_the_boundary(self) -> None:
        """Active, Failed and Active again: Active at B exactly when the last change before B is."""
        m = _member().activate(at=T0 + DAY).fail(at=T0 + 2 * DAY).activate(at=T0 + 3 * DAY)
        at = [T0 + DAY / 2, T0 + DAY * 1.5, T0 + DAY * 2.5, T0 + DAY * 3.5, T0 + 2 * DAY]
        assert [MemberQuery(active_at=b).matches(m) for b in at] == [
            False,
            True,
            False,
            True,
            True,
        ]

    def test_retained_needs_active_at_both_boundaries(self) -> None:
        """retained_until adds a second boundary: a member who left in between is not retained."""
        m = _member().activate(at=T0 + DAY).cancel(at=T0 + 5 * DAY)
        a = T0 + 2 * DAY
        assert MemberQuery(active_at=a, retained_until=T0 + 5 * DAY).matches(m)
        assert not MemberQuery(active_at=a, retained_until=T0 + 5 * DAY + MICRO).matches(m)

    def test_ever_active_before_is_strict(self) -> None:
        """ever_active_before B holds for a first activation before B, not at B."""
        m = _member().activate(at=T0 + DAY).fail(at=T0 + 2 * DAY)
        assert not MemberQuery(ever_active_before=T0 + DAY).matches(m)
        assert MemberQuery(ever_active_before=T0 + DAY + MICRO).matches(m)
        assert MemberQuery(ever_active_before=T0 + 9 * DAY).matches(m)
        assert not MemberQuery(ever_active_before=T0 + 9 * DAY).matches(_member())

    def test_first_activated_in_is_half_open_and_counts_only_the_first(self) -> None:
        """A first activation at the range start is in it, one at the end is not; later ones
        do not count."""
        m = _member().activate(at=T0 + DAY).fail(at=T0 + 2 * DAY).activate(at=T0 + 3 * DAY)
        assert MemberQuery(first_activated_in=DateRange(T0 + DAY, T0 + 2 * DAY, "UTC")).matches(m)
        assert not MemberQuery(first_activated_in=DateRange(T0, T0 + DAY, "UTC")).matches(m)
        assert not MemberQuery(
            first_activated_in=DateRange(T0 + 2 * DAY, T0 + 4 * DAY, "UTC")
        ).matches(m)

    def test_local_midnight_activation_is_new_in_the_range_starting_there(self) -> None:
        """Activated exactly at Sydney midnight of 1 Apr: new in April, not in March."""
        midnight = datetime(2026, 3, 31, 13, 0, tzinfo=UTC)  # 1 Apr 00:00 AEDT
        m = _member(at=midnight - DAY).activate(at=midnight)
        march = DateRange.custom(date(2026, 3, 1), date(2026, 3, 31), timezone=SYDNEY)
        april = DateRange.custom(date(2026, 4, 1), date(2026, 4, 30), timezone=SYDNEY)
        assert april.start == midnight
        assert MemberQuery(first_activated_in=april).matches(m)
        assert not MemberQuery(first_activated_in=march).matches(m)

    def test_counting_at_takes_failed_and_the_plan_of_then(self) -> None:
        """Active and Failed count, Suspended does not; ``counting_plans`` reads the plan
        at the boundary, not today's."""
        m = (
            _member()
            .activate(at=T0 + DAY)
            .fail(at=T0 + 2 * DAY)
            .change_plan("platinum", at=T0 + 3 * DAY)
            .suspend(at=T0 + 4 * DAY)
        )
        assert [MemberQuery(counting_at=T0 + n * DAY + MICRO).matches(m) for n in range(5)] == [
            False,
            True,
            True,
            True,
            False,
        ]
        on = MemberQuery(counting_at=T0 + 3 * DAY, counting_plans={m.first_plan_id}).matches(m)
        later = MemberQuery(counting_at=T0 + 3 * DAY + MICRO, counting_plans={"platinum"})
        assert on
        assert later.matches(m)
        assert not MemberQuery(counting_at=T0 + 3 * DAY, counting_plans={"platinum"}).matches(m)

    def test_changed_in_sees_status_and_plan_changes_half_open(self) -> None:
        """A status change or a plan change stamped in ``[start, end)`` matches."""
        m = _member().activate(at=T0 + DAY).change_plan("platinum", at=T0 + 3 * DAY)
        ranges = [
            (T0 + DAY, T0 + 2 * DAY),
            (T0 + 2 * DAY, T0 + 3 * DAY),
            (T0 + 3 * DAY, T0 + 4 * DAY),
        ]
        assert [MemberQuery(changed_in=DateRange(a, b, "UTC")).matches(m) for a, b in ranges] == [
            True,
            False,
            True,
        ]

    def test_form_names_the_fields_that_filter(self) -> None:
        """``form()`` leaves out ``practices`` and the fields at their defaults, on every
        spec a store recognises reads by."""
        assert MemberQuery(practices={"p"}).form() == frozenset()
        query = MemberQuery(practices={"p"}, counting_at=T0, counting_plans={"gold"})
        assert query.form() == {"counting_at", "counting_plans"}
        assert MemberQuery(overdue=True, as_of=T0, grace_days=3).form() == {
            "overdue",
            "as_of",
            "grace_days",
        }
        week = DateRange(T0, T0 + 7 * DAY, "UTC")
        assert PaymentQuery(practices={"p"}, time_range=week).form() == {"time_range"}
        assert PaymentPlanQuery(committed_in=week, archived=False).form() == {
            "committed_in",
            "archived",
        }

    @DATASETS
    @given(data=st.data(), dataset=sps.datasets())
    def test_form_is_every_field_off_its_default(
        self, data: st.DataObject, dataset: sps.Dataset
    ) -> None:
        """On random specs, ``form()`` is the set of fields (``practices`` aside) whose value
        differs from the field's default, read one field at a time."""
        queries = st.one_of(
            sps.member_queries(dataset),
            sps.payment_plan_queries(dataset),
            sps.payment_queries(dataset),
        )
        for query in data.draw(st.lists(queries, min_size=1, max_size=8)):
            expected = {
                f.name
                for f in attrs.fields(type(query))
                if f.name != "practices" and getattr(query, f.name) != f.default
            }
            assert query.form() == expected
            assert attrs.evolve(query, practices=None).form() == expected

    def test_counting_plans_need_counting_at(self) -> None:
        """counting_plans without counting_at raises InvalidValue naming counting_at."""
        with pytest.raises(InvalidValue) as caught:
            MemberQuery(counting_plans={"gold"})
        assert caught.value.field == "counting_at"


class TestMemberFilters:
    """Worked examples of the non-temporal member filters."""

    def test_none_is_no_filter_and_an_empty_set_matches_nothing(self) -> None:
        """A field at None filters nothing; the same field as an empty set admits no member."""
        m = _member(campaign_id="c-1")
        assert MemberQuery().matches(m)
        for field in ("practices", "plans", "statuses", "campaigns", "staff_users", "ids"):
            assert not MemberQuery(**{field: frozenset()}).matches(m), field

    def test_a_set_filter_misses_a_member_without_that_field(self) -> None:
        """A member without a campaign or staff user fails any campaign or staff set."""
        m = _member()
        assert not MemberQuery(campaigns={"c-1"}).matches(m)
        assert not MemberQuery(staff_users={"s-1"}).matches(m)
        assert MemberQuery(campaigns={"c-1"}).matches(_member(campaign_id="c-1"))

    def test_a_single_id_string_is_a_one_element_set(self) -> None:
        """practices="p-1" means {"p-1"}, not the set of its characters."""
        assert MemberQuery(practices="p-1").practices == frozenset({"p-1"})
        assert MemberQuery(practices="p-1").matches(_member())

    @pytest.mark.parametrize(
        ("needle", "expected"), [("ada", True), ("LOVE", True), ("  ", False), ("", True)]
    )
    def test_name_contains_ignores_case(self, needle: str, expected: bool) -> None:
        """name_contains looks for the text anywhere in the account holder's name, any case."""
        assert MemberQuery(name_contains=needle).matches(_member()) is expected

    def test_name_contains_looks_at_the_account_holder_only(self) -> None:
        """A dependent's name does not make the member match."""
        m = _member(dependents=(GRACE,))
        assert not MemberQuery(name_contains="grace").matches(m)

    def test_start_bounds_are_inclusive(self) -> None:
        """start_from and start_until both include their own day."""
        m = _member()  # starts 2 Mar 2026
        d = m.start_date
        assert MemberQuery(start_from=d, start_until=d).matches(m)
        assert not MemberQuery(start_from=d + DAY).matches(m)
        assert not MemberQuery(start_until=d - DAY).matches(m)
        assert MemberQuery(start_from=d - DAY, start_until=d + DAY).matches(m)

    def test_status_strings_are_parsed(self) -> None:
        """Host strings name statuses regardless of case and surrounding spaces."""
        query = MemberQuery(statuses={"Active", " failed "})
        assert query.statuses == frozenset({_M.ACTIVE, _M.FAILED})
        assert query == MemberQuery(statuses=[_M.FAILED, _M.ACTIVE])
        assert MemberQuery(statuses="ACTIVE").statuses == frozenset({_M.ACTIVE})

    @given(
        status=st.sampled_from(MembershipStatus),
        case=st.sampled_from([str.lower, str.upper, str.title, str.swapcase]),
        left=st.sampled_from(["", " ", "\t", "  "]),
        right=st.sampled_from(["", " ", "\n"]),
    )
    def test_any_case_and_padding_parses(
        self,
        status: MembershipStatus,
        case: Callable[[str], str],
        left: str,
        right: str,
    ) -> None:
        """Every status value, in any case and padded with spaces, parses to that status."""
        assert MemberQuery(statuses={left + case(status.value) + right}).statuses == {status}


class TestPlanPaymentReferralFilters:
    """Worked examples of the payment plan, ledger and referral filters."""

    def test_committed_in_uses_first_active_or_completed_at_once(self) -> None:
        """An Instant payment commits when it completes; a plan when it first becomes Active."""
        instant = _plan(payment_type=PaymentType.INSTANT, instalments=1)
        instant = instant.record_payment(at=T0 + 2 * DAY)
        plan = _plan().activate(at=T0 + DAY).record_failure(at=T0 + 3 * DAY)
        r = DateRange(T0 + DAY, T0 + 2 * DAY, "UTC")
        assert PaymentPlanQuery(committed_in=r).matches(plan)
        assert not PaymentPlanQuery(committed_in=r).matches(instant)
        r2 = DateRange(T0 + 2 * DAY, T0 + 3 * DAY, "UTC")
        assert PaymentPlanQuery(committed_in=r2).matches(instant)
        assert not PaymentPlanQuery(committed_in=r2).matches(plan)
        assert not PaymentPlanQuery(committed_in=r).matches(_plan())

    def test_archived_filter(self) -> None:
        """archived=True keeps archived plans only, False the others, None all."""
        done = _plan_in_status(_P.COMPLETED, "pp-done")
        archived = done.archive(at=T0 + 9 * DAY)
        assert PaymentPlanQuery(archived=True).matches(archived)
        assert not PaymentPlanQuery(archived=True).matches(done)
        assert PaymentPlanQuery(archived=False).matches(done)
        assert PaymentPlanQuery().matches(archived)

    def test_payment_types_and_members(self) -> None:
        """payment_types parses strings; members filters on the plan's member_id."""
        plan = _plan(member_id=None)
        assert PaymentPlanQuery(payment_types={"Plan", " HOLD "}).payment_types == {
            PaymentType.PLAN,
            PaymentType.HOLD,
        }
        assert PaymentPlanQuery(payment_types={"plan"}).matches(plan)
        assert not PaymentPlanQuery(payment_types={"instant"}).matches(plan)
        assert not PaymentPlanQuery(members={"m-1"}).matches(plan)
        assert PaymentPlanQuery(members={"m-1"}).matches(_plan())

    def test_payment_time_range_is_half_open(self) -> None:
        """A payment at the range start is in it; one at the end is not."""
        pay = Payment(
            "pay-1",
            "p-1",
            Money.of("10", "AUD"),
            PaymentKind.CHARGE,
            PaymentOutcome.SUCCEEDED,
            T0,
            member_id="m-1",
        )
        assert PaymentQuery(time_range=DateRange(T0, T0 + DAY, "UTC")).matches(pay)
        assert not PaymentQuery(time_range=DateRange(T0 - DAY, T0, "UTC")).matches(pay)
        assert PaymentQuery(sources={("member", "m-1")}, kinds="charge").matches(pay)
        assert not PaymentQuery(sources={("payment_plan", "m-1")}).matches(pay)
        assert PaymentQuery(outcomes={"Succeeded"}).matches(pay)
        assert not PaymentQuery(outcomes={"failed"}).matches(pay)

    def test_converted_in_is_half_open(self) -> None:
        """A referral converted at the range start is in it, at the end is not; pending never."""
        r = Referral.open(
            id="r-1", practice_id="p-1", account_holder=GRACE, start_date=T0.date(), at=T0
        )
        converted = r.convert(member_id="m-9", at=T0 + DAY)
        assert ReferralQuery(converted_in=DateRange(T0 + DAY, T0 + 2 * DAY, "UTC")).matches(
            converted
        )
        assert not ReferralQuery(converted_in=DateRange(T0, T0 + DAY, "UTC")).matches(converted)
        assert not ReferralQuery(converted_in=DateRange(T0, T0 + 9 * DAY, "UTC")).matches(r)
        assert ReferralQuery(statuses={"Converted"}).matches(converted)


class TestRefusals:
    """Specs refuse values they cannot hold, at construction, naming the field."""

    @pytest.mark.parametrize(
        "build",
        [
            lambda: MemberQuery(statuses={"active", "dormant"}),
            lambda: MemberQuery(statuses=_P.COMPLETED),
            lambda: PaymentPlanQuery(statuses={"paid"}),
            lambda: ReferralQuery(statuses={"active"}),
        ],
    )
    def test_unknown_status_raises_unknown_status(self, build: Callable[[], Any]) -> None:
        """A status string (or another set's status) naming no status raises UnknownStatus."""
        with pytest.raises(UnknownStatus):
            build()

    @pytest.mark.parametrize(
        ("build", "field"),
        [
            (lambda: PaymentPlanQuery(payment_types={"layaway"}), "PaymentType"),
            (lambda: PaymentQuery(kinds={"chargeback"}), "PaymentKind"),
            (lambda: PaymentQuery(outcomes={"pending"}), "PaymentOutcome"),
            (lambda: PaymentQuery(outcomes={PaymentKind.CHARGE}), "PaymentOutcome"),
        ],
    )
    def test_unknown_enum_value_raises_invalid_value(
        self, build: Callable[[], Any], field: str
    ) -> None:
        """An unknown payment type, kind or outcome raises InvalidValue listing the allowed ones."""
        with pytest.raises(InvalidValue) as caught:
            build()
        assert caught.value.field == field
        assert "allowed" in caught.value.reason

    @pytest.mark.parametrize("overdue", [True, False])
    def test_overdue_needs_as_of(self, overdue: bool) -> None:
        """Filtering on overdue (either way) without as_of raises InvalidValue naming as_of."""
        for spec in (MemberQuery, PaymentPlanQuery):
            with pytest.raises(InvalidValue) as caught:
                spec(overdue=overdue)
            assert caught.value.field == "as_of"
        assert MemberQuery(overdue=overdue, as_of=T0).as_of == T0

    def test_start_until_before_start_from_raises(self) -> None:
        """start_until before start_from raises InvalidValue naming start_until; equal is fine."""
        d = date(2026, 3, 2)
        for spec in (MemberQuery, ReferralQuery):
            with pytest.raises(InvalidValue) as caught:
                spec(start_from=d, start_until=d - DAY)
            assert caught.value.field == "start_until"
            assert spec(start_from=d, start_until=d).start_until == d

    @pytest.mark.parametrize("value", [-1, True, 1.5, "2", None, 36_501, 10**9])
    def test_grace_days_must_be_a_whole_number(self, value: Any) -> None:
        """A negative, boolean, fractional or non-number grace_days, or one above a century
        (MAX_GRACE_DAYS, 36,500), raises InvalidValue; 36,500 is accepted."""
        assert MemberQuery(grace_days=MAX_GRACE_DAYS).grace_days == 36_500
        for spec in (MemberQuery, PaymentPlanQuery):
            with pytest.raises(InvalidValue) as caught:
                spec(grace_days=value)
            assert caught.value.field == "grace_days"

    @given(limit=st.integers(max_value=-1) | st.booleans(), offset=st.integers(0, 10))
    def test_bad_limit_raises(self, limit: Any, offset: int) -> None:
        """A negative or boolean limit raises InvalidValue naming limit."""
        with pytest.raises(InvalidValue) as caught:
            Page(limit=limit, offset=offset)
        assert caught.value.field == "limit"

    @given(offset=st.integers(max_value=-1) | st.booleans() | st.none())
    def test_bad_offset_raises(self, offset: Any) -> None:
        """A negative, boolean or missing offset raises InvalidValue naming offset."""
        with pytest.raises(InvalidValue) as caught:
            Page(limit=3, offset=offset)
        assert caught.value.field == "offset"

    @pytest.mark.parametrize(
        "sources",
        [
            {("invoice", "x-1")},
            {("member", "m-1"), ("patient", "pat-1")},
            {("member",)},
            {("member", "m-1", "extra")},
        ],
    )
    def test_sources_need_member_or_plan_pairs(self, sources: Any) -> None:
        """A source that is not a ('member' | 'payment_plan', id) pair raises InvalidValue."""
        with pytest.raises(InvalidValue) as caught:
            PaymentQuery(sources=sources)
        assert caught.value.field == "sources"

    def test_ids_must_be_strings(self) -> None:
        """An id set holding a non-string raises InvalidValue naming the field and the item."""
        with pytest.raises(InvalidValue) as caught:
            MemberQuery(ids={"m-1", 7})
        assert (caught.value.field, caught.value.value) == ("ids", 7)
        assert caught.value.reason == "must be id strings"
        assert str(caught.value) == "ids: must be id strings (got 7)"

    def test_naive_instants_are_refused(self) -> None:
        """A naive boundary raises NaiveDatetime."""
        with pytest.raises(NaiveDatetime):
            MemberQuery(active_at=datetime(2026, 3, 1))

    @pytest.mark.parametrize(
        "build",
        [
            lambda: MemberQuery(first_activated_in=(T0, T0 + DAY)),
            lambda: MemberQuery(start_from=T0),
            lambda: MemberQuery(overdue="yes", as_of=T0),
        ],
    )
    def test_wrong_types_are_refused(self, build: Callable[[], Any]) -> None:
        """A tuple as a DateRange, a datetime as a date, a string as a bool: InvalidValue."""
        with pytest.raises(InvalidValue):
            build()


# -- sorting and paging --------------------------------------------------------------------


_SORTED_KINDS = [
    (Member, "members"),
    (PaymentPlan, "payment_plans"),
    (Referral, "referrals"),
    (Payment, "payments"),
]


class TestWrongTypes:
    """Wrong-typed query arguments are refused when the query is built, with a library
    error naming the field (not a TypeError from inside, nor a failure at find())."""

    SPECS = (ScopeQuery, MemberQuery, PaymentPlanQuery, PaymentQuery, ReferralQuery)

    @pytest.mark.parametrize("spec", SPECS)
    @pytest.mark.parametrize("value", [5, 2.5, b"syd", {"syd": 1}, object()])
    def test_an_id_field_that_is_not_ids(self, spec: Any, value: object) -> None:
        """``practices=5`` (or bytes, a mapping, an object) names the field ``practices``."""
        with pytest.raises(InvalidValue) as caught:
            spec(practices=value)
        assert caught.value.field == "practices"

    @pytest.mark.parametrize("spec", SPECS)
    def test_a_non_string_id_names_its_own_field(self, spec: Any) -> None:
        """``practices=['syd', 3]`` names ``practices`` and the item 3 (it said "ids")."""
        with pytest.raises(InvalidValue) as caught:
            spec(practices=["syd", 3])
        assert (caught.value.field, caught.value.value) == ("practices", 3)

    @pytest.mark.parametrize("spec", SPECS)
    @pytest.mark.parametrize("blank", ["", "  ", " syd", "syd\n"])
    def test_a_blank_or_padded_id_is_refused(self, spec: Any, blank: str) -> None:
        """A blank form field (``""``) or a padded id matched nothing in silence; no kept
        id is blank or padded, so the query refuses it, naming the field."""
        with pytest.raises(InvalidValue, match="non-blank ids without spaces") as caught:
            spec(practices=["syd", blank])
        assert (caught.value.field, caught.value.value) == ("practices", blank)

    def test_an_unhashable_id_is_refused(self) -> None:
        """A list inside an id collection is refused, naming the field."""
        with pytest.raises(InvalidValue) as caught:
            MemberQuery(plans=[["essential"]])
        assert caught.value.field == "plans"

    @pytest.mark.parametrize("spec", [MemberQuery, PaymentPlanQuery])
    @pytest.mark.parametrize("value", [5, b"ada", ["ada"]])
    def test_name_contains_must_be_text(self, spec: Any, value: object) -> None:
        """``name_contains=5`` fails at construction, not at find()."""
        with pytest.raises(InvalidValue) as caught:
            spec(name_contains=value)
        assert caught.value.field == "name_contains"

    def test_a_parser_stopping_is_an_error_not_the_end_of_the_set(self) -> None:
        """An item whose text raises StopIteration is an error: the items after it are not
        dropped in silence."""

        class Stops:
            def __str__(self) -> str:
                return next(iter(()))

        with pytest.raises(RuntimeError):
            PaymentQuery(kinds=["charge", Stops(), "refund"])

    def test_a_single_non_string_status_is_parsed_and_refused(self) -> None:
        """``statuses=5`` is one unknown status (UnknownStatus), not a TypeError."""
        with pytest.raises(UnknownStatus):
            MemberQuery(statuses=5)

    @pytest.mark.parametrize("keys", [5, [5], [None], ["balance", 3.0]])
    def test_order_keys_must_be_columns(self, keys: object) -> None:
        """``Order(5)`` and keys that are not names or SortKeys raise InvalidValue("keys")."""
        with pytest.raises(InvalidValue) as caught:
            Order(keys)  # type: ignore[arg-type]
        assert caught.value.field == "keys"

    @pytest.mark.parametrize(
        ("build", "field"),
        [
            (lambda: Order(page=5), "page"),
            (lambda: SortKey("balance", descending="yes"), "descending"),
            (lambda: SortKey(5), "column"),
            (lambda: SortKey("  "), "column"),
            (lambda: PaymentQuery(sources=5), "sources"),
            (lambda: PaymentQuery(sources=[5]), "sources"),
        ],
    )
    def test_other_wrong_types(self, build: Callable[[], object], field: str) -> None:
        """Pages, sort keys and sources of the wrong type are the library's errors."""
        with pytest.raises(InvalidValue) as caught:
            build()
        assert caught.value.field == field

    @given(value=st.one_of(st.integers(), st.floats(), st.binary(), st.booleans()))
    def test_no_scalar_reaches_a_raw_error(self, value: object) -> None:
        """Any scalar for any id field of any spec is an InvalidValue."""
        for spec in self.SPECS:
            with pytest.raises(InvalidValue):
                spec(ids=value)


class TestSorting:
    """apply_order sorts by the named columns, None last, ties by id, then pages by slicing."""

    @pytest.mark.parametrize(("kind", "name"), _SORTED_KINDS)
    def test_oracle_knows_every_column(self, kind: type, name: str) -> None:
        """The oracle covers exactly the sortable columns of each list."""
        assert set(ORACLE_COLUMNS[kind]) == set(sort_columns[kind])

    @pytest.mark.parametrize(("kind", "name"), _SORTED_KINDS)
    @DATASETS
    @given(data=st.data(), dataset=sps.datasets())
    def test_apply_order_equals_the_oracle_sort(
        self, kind: type, name: str, data: st.DataObject, dataset: sps.Dataset
    ) -> None:
        """For any order and page, apply_order gives the oracle's ids, whatever the input order."""
        items = data.draw(st.permutations(getattr(dataset, name)), label="items")
        for _ in range(3):
            order = data.draw(sps.orders(ORACLE_COLUMNS[kind]), label="order")
            assert [o.id for o in apply_order(items, kind, order)] == [
                o.id for o in oracle_order(items, kind, order)
            ]

    def test_action_orders_put_failed_first(self) -> None:
        """The documented action orders: Failed first, Cancelled last."""
        members = (_M.FAILED, _M.PENDING, _M.SUSPENDED, _M.ACTIVE, _M.CANCELLED)
        plans = (_P.FAILED, _P.PENDING, _P.ACTIVE, _P.COMPLETED, _P.CANCELLED)
        assert members == MEMBER_ACTION_ORDER
        assert plans == PAYMENT_PLAN_ACTION_ORDER
        assert [MEMBER_RANK[s] for s in members] == list(range(5))
        assert [PLAN_RANK[s] for s in plans] == list(range(5))

    def test_member_status_sort(self) -> None:
        """Sorting members by status gives Failed, Pending, Suspended, Active, Cancelled."""
        members = [_in_status(s, f"m-{s.value}") for s in MembershipStatus]
        up = apply_order(members, Member, Order("status"))
        expected = [_M.FAILED, _M.PENDING, _M.SUSPENDED, _M.ACTIVE, _M.CANCELLED]
        assert [m.status for m in up] == expected
        down = apply_order(members, Member, Order("-status"))
        assert [m.status for m in down] == [m.status for m in reversed(up)]

    def test_payment_plan_status_sort(self) -> None:
        """Sorting plans by status gives Failed, Pending, Active, Completed, Cancelled."""
        plans = [_plan_in_status(s, f"pp-{s.value}") for s in PaymentPlanStatus]
        assert [p.status for p in apply_order(plans, PaymentPlan, Order("status"))] == [
            _P.FAILED,
            _P.PENDING,
            _P.ACTIVE,
            _P.COMPLETED,
            _P.CANCELLED,
        ]

    @pytest.mark.parametrize("column", ["campaign", "-campaign"])
    def test_none_sorts_last_both_ways(self, column: str) -> None:
        """Members without a campaign come last ascending and descending."""
        members = [
            _member("m-1"),
            _member("m-2", campaign_id="c-2"),
            _member("m-3", campaign_id="c-1"),
            _member("m-0"),
        ]
        ids = [m.id for m in apply_order(members, Member, Order(column))]
        named = ["m-3", "m-2"] if column == "campaign" else ["m-2", "m-3"]
        assert ids == [*named, "m-0", "m-1"]

    @pytest.mark.parametrize("column", ["status", "-status", "dependents", "-dependents"])
    def test_ties_break_by_id_ascending_both_ways(self, column: str) -> None:
        """Equal sort values keep id order, ascending or descending."""
        members = [_member(i) for i in ("m-3", "m-10", "m-1", "m-2")]
        assert [m.id for m in apply_order(members, Member, Order(column))] == [
            "m-1",
            "m-10",
            "m-2",
            "m-3",
        ]

    def test_secondary_key_orders_within_the_primary(self) -> None:
        """The second key orders members that tie on the first."""
        members = [
            _in_status(_M.ACTIVE, "m-1"),
            _member("m-2", campaign_id="c-1"),
            _member("m-3", campaign_id="c-2"),
            _in_status(_M.FAILED, "m-4"),
        ]
        order = Order(["status", "-campaign"])
        assert [m.id for m in apply_order(members, Member, order)] == ["m-4", "m-3", "m-2", "m-1"]

    @given(
        n=st.integers(0, 12),
        limit=st.none() | st.integers(0, 15),
        offset=st.integers(0, 15),
    )
    def test_paging_is_slicing(self, n: int, limit: int | None, offset: int) -> None:
        """Page(limit, offset) returns the slice [offset, offset + limit) of the sorted list."""
        members = [_member(f"m-{k:02d}") for k in reversed(range(n))]
        ids = sorted(m.id for m in members)
        got = apply_order(members, Member, Order("id", page=Page(limit=limit, offset=offset)))
        stop = None if limit is None else offset + limit
        assert [m.id for m in got] == ids[offset:stop]

    def test_no_order_sorts_by_id(self) -> None:
        """Without an order the result is every item by id."""
        members = [_member(i) for i in ("m-b", "m-a", "m-c")]
        assert [m.id for m in apply_order(members, Member)] == ["m-a", "m-b", "m-c"]

    @pytest.mark.parametrize(
        ("text", "key"),
        [
            ("-balance", SortKey("balance", descending=True)),
            ("balance", SortKey("balance")),
            ("  -balance ", SortKey("balance", True)),
        ],
    )
    def test_sort_key_parse(self, text: str, key: SortKey) -> None:
        """A leading minus means descending; surrounding spaces are ignored."""
        assert SortKey.parse(text) == key

    def test_order_accepts_strings_and_keys(self) -> None:
        """Order takes one string, a list of strings or SortKeys, and parses the strings."""
        assert Order("-balance").keys == (SortKey("balance", True),)
        assert Order(["patient", SortKey("total", True)]).keys == (
            SortKey("patient"),
            SortKey("total", True),
        )

    def test_orders_built_again_from_the_same_names_are_equal(self) -> None:
        """Column names parsed before give the same keys again (any iterable of them);
        a blank name is refused every time, never remembered."""
        first = Order(["-balance", "patient"])
        assert Order(("-balance", "patient")) == first
        assert Order(iter(["-balance", "patient"])).keys == first.keys
        assert Order(["patient", "-balance"]).keys == (SortKey("patient"), SortKey("balance", True))
        for _ in range(2):
            with pytest.raises(InvalidValue) as caught:
                Order(["balance", " "])
            assert caught.value.field == "column"

    def test_names_from_an_iterator_are_read_one_at_a_time(self) -> None:
        """A blank name from an iterator is refused when it is read: before the iterator
        fails, and from an endless one."""

        def names() -> Iterator[str]:
            yield " "
            raise KeyError("the source failed")

        for keys in (names(), itertools.repeat(" ")):
            with pytest.raises(InvalidValue) as caught:
                Order(keys)
            assert caught.value.field == "column"

    @pytest.mark.parametrize(
        ("kind", "column"),
        [(Member, "balance"), (PaymentPlan, "account_holder"), (Practice, "name")],
    )
    def test_unknown_column_raises_naming_it(self, kind: type, column: str) -> None:
        """A column the list does not have raises InvalidValue naming the column."""
        order = Order(["id", f"-{column}"])
        with pytest.raises(InvalidValue) as caught:
            apply_order([], kind, order)
        assert caught.value.field == "column"
        assert caught.value.value == column
        assert column in str(caught.value)
        with pytest.raises(InvalidValue):
            check_order(kind, order)

    def test_unlisted_kinds_sort_by_id_only(self) -> None:
        """A type without list columns can still be ordered by id."""
        practices = [Practice(i, "P", "UTC", "AUD") for i in ("p-2", "p-1")]
        assert [p.id for p in apply_order(practices, Practice, Order("-id"))] == ["p-2", "p-1"]


# -- overdue -------------------------------------------------------------------------------


def _edge(due: date, grace: int, timezone: str) -> datetime:
    """The oracle: the local midnight starting due + 1 + grace, as a UTC instant."""
    day = due + timedelta(days=1 + grace)
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(timezone)).astimezone(UTC)


class TestOverdueInstalments:
    """An instalment due on local day d is overdue from the local midnight starting d+1+grace."""

    @pytest.mark.parametrize(
        ("due", "grace", "edge"),
        [
            # Summer (AEDT, UTC+11): 16 Jan 00:00 local is 15 Jan 13:00 UTC.
            (date(2026, 1, 15), 0, datetime(2026, 1, 15, 13, 0, tzinfo=UTC)),
            # Winter (AEST, UTC+10), two grace days: 18 Jul 00:00 local is 17 Jul 14:00 UTC.
            (date(2026, 7, 15), 2, datetime(2026, 7, 17, 14, 0, tzinfo=UTC)),
            # DST ends 5 Apr 03:00: that day's midnight is still AEDT, 4 Apr 13:00 UTC.
            (date(2026, 4, 3), 1, datetime(2026, 4, 4, 13, 0, tzinfo=UTC)),
            # DST starts 4 Oct 02:00: that day's midnight is still AEST, 3 Oct 14:00 UTC.
            (date(2026, 10, 2), 1, datetime(2026, 10, 3, 14, 0, tzinfo=UTC)),
            # The day after DST ends: AEST, 6 Apr 00:00 local is 5 Apr 14:00 UTC.
            (date(2026, 4, 5), 0, datetime(2026, 4, 5, 14, 0, tzinfo=UTC)),
        ],
    )
    def test_sydney_worked_examples(self, due: date, grace: int, edge: datetime) -> None:
        """Not overdue a microsecond before that Sydney midnight; overdue exactly at it."""
        plan = _plan(first_due=due, instalments=1, at=datetime(2026, 1, 1, tzinfo=UTC))
        assert overdue_instalments(plan, at=edge - MICRO, timezone=SYDNEY, grace_days=grace) == ()
        assert overdue_instalments(plan, at=edge, timezone=SYDNEY, grace_days=grace) == (
            plan.schedule[0],
        )
        assert _edge(due, grace, SYDNEY) == edge

    def test_later_instalments_fall_due_one_by_one(self) -> None:
        """A monthly plan from 15 Jan: at Sydney midnight starting 16 Feb, two are overdue."""
        plan = _plan(first_due=date(2026, 1, 15), at=datetime(2026, 1, 1, tzinfo=UTC))
        feb16 = datetime(2026, 2, 15, 13, 0, tzinfo=UTC)
        overdue = overdue_instalments(plan, at=feb16, timezone=SYDNEY)
        assert [i.number for i in overdue] == [1, 2]
        paid = plan.record_payment(at=feb16)
        assert [i.number for i in overdue_instalments(paid, at=feb16, timezone=SYDNEY)] == [2]

    @given(
        due=st.dates(date(2020, 1, 1), date(2030, 12, 1)),
        grace=st.integers(0, 30),
        timezone=sps.timezones(),
    )
    def test_edge_in_every_zone(self, due: date, grace: int, timezone: str) -> None:
        """In every zone, the overdue edge is the local midnight starting due + 1 + grace."""
        plan = _plan(first_due=due, instalments=1, at=datetime(2019, 12, 1, tzinfo=UTC))
        edge = _edge(due, grace, timezone)
        assert not overdue_instalments(plan, at=edge - MICRO, timezone=timezone, grace_days=grace)
        assert overdue_instalments(plan, at=edge, timezone=timezone, grace_days=grace)

    def test_the_plan_is_judged_as_it_stood_at_the_instant(self) -> None:
        """A later payment, cancellation or offer does not change what was overdue earlier."""
        plan = _plan(first_due=date(2026, 1, 15), at=datetime(2026, 1, 1, tzinfo=UTC))
        feb16 = datetime(2026, 2, 15, 13, 0, tzinfo=UTC)  # 16 Feb 00:00 AEDT
        paid_later = plan.record_payment(at=feb16 + MICRO)
        assert [i.number for i in overdue_instalments(paid_later, at=feb16, timezone=SYDNEY)] == [
            1,
            2,
        ]
        cancelled_later = plan.cancel(at=feb16 + DAY)
        assert overdue_instalments(cancelled_later, at=feb16, timezone=SYDNEY)
        assert not overdue_instalments(cancelled_later, at=feb16 + DAY, timezone=SYDNEY)
        # A plan recorded by a host as offered later, with a due date already past (the
        # constructor takes such a record; ``offer`` itself refuses a past first due date).
        offered_later = attrs.evolve(
            plan, history=PAYMENT_PLAN_LIFECYCLE.start(_P.PENDING, feb16 + MICRO, "offered")
        )
        assert not overdue_instalments(offered_later, at=feb16, timezone=SYDNEY)
        assert overdue_instalments(offered_later, at=feb16 + MICRO, timezone=SYDNEY)

    def test_a_failed_attempt_makes_an_instalment_overdue_at_once(self) -> None:
        """Due 15 March, attempted and failed that day at 10:00 in Sydney: with no grace
        overdue from the failure, not from the next midnight; with 2 grace days from the
        midnight starting 17 March (not 18 March, as without the failure)."""
        failed_at = datetime(2026, 3, 14, 23, 0, tzinfo=UTC)
        plan = _plan(first_due=date(2026, 3, 15)).record_failure(at=failed_at)
        assert overdue_instalments(plan, at=failed_at - MICRO, timezone=SYDNEY) == ()
        assert overdue_instalments(plan, at=failed_at, timezone=SYDNEY) == (plan.schedule[0],)
        edge = local_midnight(date(2026, 3, 17), SYDNEY)
        assert not overdue_instalments(plan, at=edge - MICRO, timezone=SYDNEY, grace_days=2)
        assert overdue_instalments(plan, at=edge, timezone=SYDNEY, grace_days=2)
        assert PaymentPlanQuery(overdue=True, as_of=failed_at).matches(plan, timezone=SYDNEY)

    @pytest.mark.parametrize("status", [_P.COMPLETED, _P.CANCELLED])
    def test_finished_plans_are_never_overdue(self, status: PaymentPlanStatus) -> None:
        """Completed and Cancelled plans have no overdue instalment, however late."""
        plan = _plan_in_status(status, "pp-1")
        late = T0 + 3650 * DAY
        assert overdue_instalments(plan, at=late, timezone=SYDNEY) == ()
        assert not is_overdue(_in_status(_M.CANCELLED, "m-1"), [plan], at=late, timezone=SYDNEY)
        query = PaymentPlanQuery(overdue=True, as_of=late)
        assert not query.matches(plan, timezone=SYDNEY)
        assert PaymentPlanQuery(overdue=False, as_of=late).matches(plan, timezone=SYDNEY)

    @pytest.mark.parametrize("status", [_P.PENDING, _P.ACTIVE, _P.FAILED])
    def test_open_plans_can_be_overdue(self, status: PaymentPlanStatus) -> None:
        """Pending, Active and Failed plans with a past-due unpaid instalment are overdue;
        the Failed one, whose attempt failed early, from the midnight starting its due day."""
        plan = _plan_in_status(status, "pp-1")
        late = datetime(2026, 3, 15, 13, 0, tzinfo=UTC)  # 16 Mar 00:00 Sydney
        if status is _P.FAILED:
            late -= DAY
        assert PaymentPlanQuery(overdue=True, as_of=late).matches(plan, timezone=SYDNEY)
        assert not PaymentPlanQuery(overdue=True, as_of=late - MICRO).matches(plan, timezone=SYDNEY)

    def test_negative_grace_raises(self) -> None:
        """overdue_instalments and is_overdue refuse a negative grace, and one above a
        century (the calendar would overflow past a few million days)."""
        for grace in (-1, MAX_GRACE_DAYS + 1, 10**9):
            with pytest.raises(InvalidValue):
                overdue_instalments(_plan(), at=T0, timezone=SYDNEY, grace_days=grace)
            with pytest.raises(InvalidValue):
                is_overdue(_member(), at=T0, timezone=SYDNEY, grace_days=grace)


GOLD = MembershipPlan("gold", "p-1", "Gold", Money.of("30", "AUD"), BillingCycle.MONTHLY)
CATALOGUE = {"gold": GOLD}


def _charge(id: str, at: datetime, *, ok: bool = True, amount: str = "30") -> Payment:
    outcome = PaymentOutcome.SUCCEEDED if ok else PaymentOutcome.FAILED
    return Payment(
        id, "p-1", Money.of(amount, "AUD"), PaymentKind.CHARGE, outcome, at, member_id="m-1"
    )


class TestOverdueMembers:
    """A member is overdue when a billing date due is unpaid past grace (attempted or not),
    while Pending, Active or Failed; plans count too. Ada enrols on 2 March (20:00 in
    Sydney) on Gold, 30 AUD a month: billing dates 2 March, 2 April, 2 May, ..."""

    PAID = _charge("c-mar", T0 + timedelta(minutes=1))  # the 2 March charge, paid
    FAILED_AT = datetime(2026, 4, 2, 5, 0, tzinfo=UTC)  # 16:00 on 2 April in Sydney

    def _active(self) -> Member:
        return _member().activate(at=T0 + timedelta(minutes=1))

    def _late(
        self, m: Member, ledger: Sequence[Payment], at: datetime, grace: int = 0, **kw: Any
    ) -> bool:
        return is_overdue(
            m,
            at=at,
            timezone=SYDNEY,
            grace_days=grace,
            membership_plans=CATALOGUE,
            payments=ledger,
            **kw,
        )

    @pytest.mark.parametrize("grace", [0, 1, 3, 30])
    def test_a_charge_never_attempted_is_overdue_from_the_midnight_after_its_day(
        self, grace: int
    ) -> None:
        """The 2 April charge is never attempted: overdue from the Sydney midnight that
        starts 3 April + grace (30 days spans the end of daylight saving on 5 April, and
        the edge is still a Sydney midnight)."""
        m = self._active()
        edge = local_midnight(date(2026, 4, 3) + timedelta(days=grace), SYDNEY)
        assert edge.astimezone(ZoneInfo(SYDNEY)).hour == 0
        assert not self._late(m, [self.PAID], edge - MICRO, grace)
        assert self._late(m, [self.PAID], edge, grace)
        query = MemberQuery(overdue=True, as_of=edge, grace_days=grace)
        context = {"timezone": SYDNEY, "membership_plans": CATALOGUE, "payments": [self.PAID]}
        assert query.matches(m, **context)
        assert not attrs.evolve(query, as_of=edge - MICRO).matches(m, **context)
        # Without its ledger, the 2 March charge is unpaid too: overdue from 3 March.
        assert self._late(m, [], local_midnight(date(2026, 3, 3), SYDNEY))

    def test_a_failed_charge_with_no_grace_is_overdue_at_once(self) -> None:
        """The 2 April charge fails at t: overdue at t with grace 0, not a microsecond
        before; with 3 grace days from the Sydney midnight starting 5 April."""
        m = self._active().fail(at=self.FAILED_AT)
        ledger = [self.PAID, _charge("c-apr", self.FAILED_AT, ok=False)]
        assert self._late(m, ledger, self.FAILED_AT)
        assert not self._late(m, ledger, self.FAILED_AT - MICRO)
        edge = local_midnight(date(2026, 4, 5), SYDNEY)
        assert not self._late(m, ledger, edge - MICRO, 3)
        assert self._late(m, ledger, edge, 3)
        # The status alone decides nothing: Failed, but every charge paid, is not overdue.
        assert not self._late(m, [self.PAID, _charge("c-apr", self.FAILED_AT)], edge)

    def test_only_what_is_unpaid_is_owed(self) -> None:
        """A partial payment leaves the rest overdue; paying it all ends it; an entry
        stamped after the instant judged does not count."""
        m = self._active()
        at = local_midnight(date(2026, 4, 10), SYDNEY)
        part = _charge("c-part", at - DAY, amount="12.50")
        rest = _charge("c-rest", at + MICRO, amount="17.50")
        owed = amount_overdue(
            m, at=at, timezone=SYDNEY, membership_plans=CATALOGUE, payments=[self.PAID, part, rest]
        )
        assert owed == Money.of("17.50", "AUD")
        assert self._late(m, [self.PAID, part, rest], at)
        assert not self._late(m, [self.PAID, part, rest], at + MICRO)

    @pytest.mark.parametrize("later", [_M.SUSPENDED, _M.CANCELLED])
    def test_a_suspended_or_cancelled_membership_is_not_overdue(
        self, later: MembershipStatus
    ) -> None:
        """Its unpaid charges are Expired or Cancelled invoices, not overdue ones."""
        m = self._active().transition(later, at=self.FAILED_AT + DAY)
        assert self._late(m, [self.PAID], self.FAILED_AT + DAY - MICRO)
        assert not self._late(m, [self.PAID], self.FAILED_AT + 30 * DAY)
        charges = unpaid_charges(
            m,
            at=self.FAILED_AT + 30 * DAY,
            timezone=SYDNEY,
            membership_plans=CATALOGUE,
            payments=[self.PAID],
        )
        assert charges == ()

    def test_a_member_not_enrolled_yet_is_not_overdue(self) -> None:
        """Before the enrolment's instant there is no membership to judge."""
        m = self._active()
        assert not self._late(m, [], T0 - MICRO)
        assert self._late(m, [], T0 + 40 * DAY)

    def test_the_membership_plan_is_required(self) -> None:
        """Judging the charges needs the member's plan: InvalidValue names membership_plans."""
        with pytest.raises(InvalidValue) as caught:
            is_overdue(self._active(), at=T0 + 40 * DAY, timezone=SYDNEY)
        assert caught.value.field == "membership_plans"
        assert caught.value.value == "gold"
        # Not needed once the membership is Suspended or Cancelled.
        cancelled = self._active().cancel(at=T0 + DAY)
        assert not is_overdue(cancelled, at=T0 + 40 * DAY, timezone=SYDNEY)

    def test_an_overdue_plan_makes_its_member_overdue(self) -> None:
        """An Active member who paid every charge, holding a plan with a past-due
        instalment, is overdue."""
        m = self._active()
        plan = _plan(first_due=date(2026, 3, 15))
        edge = datetime(2026, 3, 15, 13, 0, tzinfo=UTC)
        assert not self._late(m, [self.PAID], edge - MICRO, plans=[plan])
        assert self._late(m, [self.PAID], edge, plans=[plan])
        context = {"timezone": SYDNEY, "membership_plans": CATALOGUE, "payments": [self.PAID]}
        assert MemberQuery(overdue=True, as_of=edge).matches(m, plans=[plan], **context)
        assert MemberQuery(overdue=False, as_of=edge).matches(m, **context)

    def test_a_plan_of_another_member_is_ignored(self) -> None:
        """Another member's (or nobody's) overdue plan does not make this member overdue."""
        m = self._active().cancel(at=T0 + DAY)
        late = T0 + 365 * DAY
        others = [_plan("pp-2", member_id="m-2"), _plan("pp-3", member_id=None)]
        assert overdue_instalments(others[0], at=late, timezone=SYDNEY)
        assert not is_overdue(m, others, at=late, timezone=SYDNEY)
        assert not MemberQuery(overdue=True, as_of=late).matches(m, plans=others, timezone=SYDNEY)

    @DATASETS
    @given(data=st.data(), dataset=sps.datasets(), grace=st.integers(0, 10))
    def test_passing_every_plan_changes_nothing(
        self, data: st.DataObject, dataset: sps.Dataset, grace: int
    ) -> None:
        """Judging a member against the whole dataset's plans equals judging it against its own."""
        zones = _zones(dataset)
        catalogue = {p.id: p for p in dataset.membership_plans}
        at = data.draw(sps.boundaries(dataset), label="at")
        for m in dataset.members:
            tz = zones[m.practice_id]
            ledger = [p for p in dataset.payments if p.member_id == m.id]
            context = {"membership_plans": catalogue, "payments": ledger}
            own = is_overdue(
                m, _plans_of(dataset, m), at=at, timezone=tz, grace_days=grace, **context
            )
            every = is_overdue(
                m, dataset.payment_plans, at=at, timezone=tz, grace_days=grace, **context
            )
            oracle = _overdue(m, _plans_of(dataset, m), at, tz, grace, catalogue, ledger)
            assert own is every is oracle
