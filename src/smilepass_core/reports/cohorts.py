"""Cohort retention: members grouped by the month they first became Active, in people and
in recurring revenue."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import ClassVar

import attrs

from smilepass_core.domain import Member, MembershipPlan, MembershipStatus
from smilepass_core.kpi import Ratio
from smilepass_core.money import Money
from smilepass_core.periods import Unit, add_units, as_instant, local_midnight, zone
from smilepass_core.queries import MemberQuery, ScopeQuery
from smilepass_core.reports._table import Report, Table, practice_ids, zones_of
from smilepass_core.repositories import Store
from smilepass_core.subscriptions import monthly_amount, mrr_at

__all__ = [
    "CohortRow",
    "CohortTable",
    "RevenueCohortRow",
    "RevenueCohortTable",
    "cohort_retention",
    "revenue_cohorts",
]


@attrs.frozen
class CohortRow(Table):
    """One cohort: its month, its size, and the share Active at the end of each later month.

    ``retention[k]`` is the share (percent) of the cohort Active at the end of the
    k-th month after the cohort's month (``k = 0``: the cohort's own month); the list
    stops at the last month that has ended before ``now``. ``active[k]`` is the count.
    """

    COLUMNS: ClassVar[tuple[str, ...]] = ("practice", "cohort", "size", "active", "retention")

    practice: str
    cohort: date
    size: int
    active: tuple[int, ...]

    @property
    def retention(self) -> tuple[Decimal | None, ...]:
        """The shares in percent, two decimals."""
        return tuple(Ratio(a, self.size).percent for a in self.active)


@attrs.frozen(repr=False)  # Report's short __repr__
class CohortTable(Report):
    """Cohort retention for each practice, cohorts oldest first."""

    ROW: ClassVar[type[Table]] = CohortRow

    rows: tuple[CohortRow, ...]
    now: datetime
    timezones: Mapping[str, str] = attrs.field(factory=dict, kw_only=True)


def cohort_retention(
    store: Store, *, now: datetime, practices: Iterable[str] | str | None = None
) -> CohortTable:
    """Account holders by the month they first became Active (practice time); for each
    month that has ended, the share of the cohort Active at its end (the state at the next
    month's first instant).

    A cohort counts people, not member records: someone who leaves and comes back (a
    suspension and a resume, or a cancellation and a new membership under the same
    account holder) stays in the cohort of their first activation, and counts as
    Active at a month end when any of their memberships is.
    """
    at = as_instant(now, "now")
    rows = []
    ids = practice_ids(store, practices)
    for practice_id in ids:
        tz = store.practices.get(practice_id).timezone
        for month, group in _cohorts(store, practice_id, tz, at).items():
            active = [
                sum(
                    any(m.status_before(end) is MembershipStatus.ACTIVE for m in records)
                    for records in group
                )
                for end in _month_ends(month, tz, at)
            ]
            rows.append(CohortRow(practice_id, month, len(group), tuple(active)))
    return CohortTable(rows=tuple(rows), now=at, timezones=zones_of(store, ids))


def _first(records: list[Member]) -> Member:
    """A person's membership of their first activation."""
    return min(
        (m for m in records if m.first_activated_at is not None),
        key=lambda m: (m.first_activated_at or m.created_at, m.id),
    )


def _starting(member: Member, plans: Mapping[str, MembershipPlan]) -> Money:
    """A membership's MRR at its first activation: the plan it was on then."""
    first = member.first_activated_at
    assert first is not None
    return monthly_amount(plans[member.plan_at(first)])


def _cohorts(
    store: Store, practice_id: str, tz: str, at: datetime
) -> dict[date, list[list[Member]]]:
    """The practice's account holders (each a list of their memberships) by the month of
    their first activation before ``at``, in practice time; oldest month first."""
    members = store.members.find(
        MemberQuery(practices=frozenset((practice_id,)), ever_active_before=at)
    )
    people: dict[str, list[Member]] = {}
    for m in members:
        people.setdefault(m.account_holder.id, []).append(m)
    cohorts: dict[date, list[list[Member]]] = {}
    for records in people.values():
        first = _first(records).first_activated_at
        assert first is not None
        cohorts.setdefault(first.astimezone(zone(tz)).date().replace(day=1), []).append(records)
    return dict(sorted(cohorts.items()))


def _month_ends(month: date, tz: str, at: datetime) -> list[datetime]:
    """The ends of ``month`` and of each later month that have come by ``at`` (each the
    next month's first local midnight)."""
    ends = []
    k = 1
    while (end := local_midnight(add_units(month, Unit.MONTH, k), tz)) <= at:
        ends.append(end)
        k += 1
    return ends


@attrs.frozen
class RevenueCohortRow(Table):
    """One cohort's recurring revenue: its month, size, starting MRR, and its MRR at the
    end of each later month.

    ``mrr[k]`` is the cohort's MRR (:func:`~smilepass_core.subscriptions.monthly_amount`
    of each membership counting, Active or Failed) at the end of the k-th month after the
    cohort's month; ``starting`` is what the cohort brought when each person first became
    Active (the membership of that first activation).
    """

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "practice",
        "cohort",
        "size",
        "currency",
        "starting",
        "mrr",
        "revenue_retention",
    )

    practice: str
    cohort: date
    size: int
    currency: str
    starting: Money
    mrr: tuple[Money, ...]

    @property
    def revenue_retention(self) -> tuple[Decimal | None, ...]:
        """``mrr[k] / starting`` in percent, two decimals (net: a person's later
        memberships count; undefined for a starting MRR of zero)."""
        if self.starting.is_zero():
            return tuple(None for _ in self.mrr)
        return tuple((100 * (m / self.starting)).quantize(Decimal("0.01")) for m in self.mrr)


@attrs.frozen(repr=False)  # Report's short __repr__
class RevenueCohortTable(Report):
    """Revenue cohorts for each practice, cohorts oldest first."""

    ROW: ClassVar[type[Table]] = RevenueCohortRow

    rows: tuple[RevenueCohortRow, ...]
    now: datetime
    timezones: Mapping[str, str] = attrs.field(factory=dict, kw_only=True)


def revenue_cohorts(
    store: Store, *, now: datetime, practices: Iterable[str] | str | None = None
) -> RevenueCohortTable:
    """The cohorts of :func:`cohort_retention` (account holders by the month they first
    became Active, practice time) in money: each cohort's MRR at the end of each month
    that has ended, and its revenue retention against its starting MRR."""
    at = as_instant(now, "now")
    rows = []
    ids = practice_ids(store, practices)
    for practice_id in ids:
        practice = store.practices.get(practice_id)
        tz = practice.timezone
        found = store.membership_plans.find(ScopeQuery(practices=frozenset((practice_id,))))
        plans = {p.id: p for p in found}
        zero = Money.zero(practice.currency)
        for month, group in _cohorts(store, practice_id, tz, at).items():
            # Each membership at the plan it was on at each boundary (plan changes count).
            mrr = [
                sum(
                    (mrr_at(m, plans, end) or zero for records in group for m in records),
                    zero,
                )
                for end in _month_ends(month, tz, at)
            ]
            starting = sum((_starting(_first(records), plans) for records in group), zero)
            rows.append(
                RevenueCohortRow(
                    practice_id, month, len(group), practice.currency, starting, tuple(mrr)
                )
            )
    return RevenueCohortTable(rows=tuple(rows), now=at, timezones=zones_of(store, ids))
