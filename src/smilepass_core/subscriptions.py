"""Subscription economics: recurring revenue (MRR, ARR) and its movements, churn and revenue
retention, ARPU and a simple LTV, for a range (docs/metrics.md, "Subscription economics").

- A member **counts** toward recurring revenue while Active or Failed (a Failed membership
  is still a subscription whose payment is being chased); Pending has not started,
  Suspended is paused, Cancelled has ended. Counting is judged at a boundary: the state
  after every change stamped strictly before it.
- A member's **MRR** is their plan's price normalised to a month and rounded once, half
  up, to the currency's minor unit: weekly x 52 / 12, fortnightly x 26 / 12, monthly x 1,
  annually / 12. **ARR** is 12 x MRR. Sums of these are exact.
- A member's MRR at a boundary is that of the plan they were on then
  (:meth:`~smilepass_core.domain.Member.plan_before`).
- **Movements** over ``[A, B)``: each status change that makes a member count for the
  first time is **new** (at the MRR of their plan then); each later return to counting is
  **reactivation**; each change that stops them counting is **churn** (at the MRR they
  brought). A plan change while counting moves MRR from the old plan's to the new one's:
  up is **expansion**, down is **contraction** (a change while not counting moves
  nothing). So, exactly,
  ``MRR(B) = MRR(A) + new + expansion - contraction - churn + reactivation``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final

import attrs

from smilepass_core.domain import COUNTING_STATUSES, BillingCycle, Member, MembershipPlan
from smilepass_core.errors import InvalidValue
from smilepass_core.kpi import Goals, KpiTargets, weighted_goal
from smilepass_core.money import Money, round_exact
from smilepass_core.periods import DateRange, Preset, as_instant, zone
from smilepass_core.presentation import Shown
from smilepass_core.queries import MemberQuery, ScopeQuery
from smilepass_core.repositories import Store

__all__ = [
    "BREAKDOWNS",
    "COUNTING",
    "MONTHLY_FACTORS",
    "MrrMovements",
    "SubscriptionMetrics",
    "counts_at",
    "first_counted_at",
    "monthly_amount",
    "mrr_at",
    "mrr_movements",
    "subscription_breakdown",
    "subscription_metrics",
]

#: The statuses in which a member counts toward recurring revenue.
COUNTING: Final = COUNTING_STATUSES
#: Each billing cycle's price, times this, is a month's worth.
MONTHLY_FACTORS: Final = {
    BillingCycle.WEEKLY: Fraction(52, 12),
    BillingCycle.FORTNIGHTLY: Fraction(26, 12),
    BillingCycle.MONTHLY: Fraction(1),
    BillingCycle.ANNUALLY: Fraction(1, 12),
}
_PERCENT: Final = Decimal("0.01")


def monthly_amount(plan: MembershipPlan) -> Money:
    """``plan``'s price normalised to a month, rounded half up to the minor unit.

    >>> from smilepass_core import Money
    >>> weekly = MembershipPlan("w", "p", "Weekly", Money.of("10.00", "AUD"), BillingCycle.WEEKLY)
    >>> str(monthly_amount(weekly))
    'AUD 43.33'
    """
    exact = plan.price.minor * MONTHLY_FACTORS[plan.billing_cycle]
    rounded = round_exact(exact)
    return Money.from_minor(rounded, plan.price.currency)


def counts_at(member: Member, boundary: datetime) -> bool:
    """Whether ``member`` counts toward recurring revenue at ``boundary``."""
    return member.counts_before(boundary)


@attrs.frozen
class MrrMovements:
    """Recurring revenue at the two ends of a range and what moved it in between."""

    start: Money
    end: Money
    new: Money
    expansion: Money
    contraction: Money
    churn: Money
    reactivation: Money

    @property
    def net(self) -> Money:
        """``end - start``: new + expansion - contraction - churn + reactivation."""
        return self.new + self.expansion - self.contraction - self.churn + self.reactivation


def mrr_at(member: Member, plans: Mapping[str, MembershipPlan], boundary: datetime) -> Money | None:
    """``member``'s MRR at ``boundary`` (their plan then), or ``None`` when not counting."""
    if not counts_at(member, boundary):
        return None
    return monthly_amount(_plan(plans, member, member.plan_before(boundary)))


def _plan(plans: Mapping[str, MembershipPlan], member: Member, plan_id: str) -> MembershipPlan:
    plan = plans.get(plan_id)
    if plan is None:
        raise InvalidValue("plans", plan_id, f"holds no plan for member {member.id}")
    return plan


def mrr_movements(
    members: Iterable[Member], plans: Mapping[str, MembershipPlan], span: DateRange
) -> MrrMovements:
    """MRR at ``span``'s start and end, and the movements of the changes stamped in it.

    Args:
        members: The members (of one currency).
        plans: Their membership plans by id (every plan they were ever on).
        span: The half-open range ``[start, end)``.

    Raises:
        InvalidValue: the plans are in more than one currency, or a member's plan is missing.
    """
    currencies = {p.price.currency for p in plans.values()}
    if len(currencies) > 1:
        raise InvalidValue("plans", sorted(currencies), "must share one currency")
    zero = Money.zero(currencies.pop() if currencies else "USD")
    start = end = new = churn = back = up = down = zero
    for member in members:
        # Status and plan changes before the end, in time order (a status change first
        # at the same instant: the plan change then applies to the new status).
        events: list[tuple[datetime, int, Any]] = [
            (c.at, 0, c) for c in member.history if c.at < span.end
        ]
        events += [(c.at, 1, c) for c in member.plan_changes if c.at < span.end]
        events.sort(key=lambda e: (e[0], e[1]))
        counted = ever = False
        plan_id = member.first_plan_id
        for at, kind, change in events:
            inside = at >= span.start
            if kind == 1:
                before = monthly_amount(_plan(plans, member, plan_id))
                plan_id = change.to_plan
                after = monthly_amount(_plan(plans, member, plan_id))
                if inside and counted:
                    if after > before:
                        up += after - before
                    else:
                        down += before - after
                continue
            counts = change.to in COUNTING
            if inside and counts != counted:
                mrr = monthly_amount(_plan(plans, member, plan_id))
                if not counts:
                    churn += mrr
                elif ever:
                    back += mrr
                else:
                    new += mrr
            counted, ever = counts, ever or counts
        start += mrr_at(member, plans, span.start) or zero
        end += mrr_at(member, plans, span.end) or zero
    return MrrMovements(start, end, new, up, down, churn, back)


@attrs.frozen
class SubscriptionMetrics(Shown):
    """The subscription figures of some practices (one currency) over a range; a notebook
    shows it as a table.

    Attributes:
        practices: The practice ids.
        range: The range, cut at ``now`` (its end is the effective end).
        now: The instant the figures were computed for.
        mrr: Recurring revenue at the start and end, and its movements.
        arr: 12 x MRR at the end.
        members_start, members_end: Members counting at the start and at the end.
        churned_members: Of the members counting at the start, those not counting at the end.
        churn_events: Changes in the range that stopped a member counting.
        logo_churn: ``churned_members / members_start`` in percent (the start-cohort form).
        churn_event_rate: ``churn_events / members_start`` in percent (the ChartMogul and
            Stripe form: every churn in the range, over the customers at its start).
        revenue_churn: ``100 - grr``: the start cohort's recurring revenue lost.
        grr: Gross revenue retention: of the start cohort's MRR, what each member still
            brings at the end (none above their start), in percent.
        nrr: Net revenue retention: the start cohort's MRR at the end (after its plan
            changes) over at the start, in percent.
        arpu: MRR at the end per member counting then (rounded half up).
        ltv: ``arpu x months / (logo_churn / 100)``, ``months`` the range's length in
            months (days x 12 / 365), rounded half up; ``None`` without churn.
        churn_goal: The highest acceptable logo churn for the range, in percent: each
            practice's ``Goals.churn_for(range)``, weighted by its start cohort when they
            differ; ``None`` unless every practice has one.
    """

    practices: tuple[str, ...]
    range: DateRange
    now: datetime
    mrr: MrrMovements
    arr: Money
    members_start: int
    members_end: int
    churned_members: int
    churn_events: int
    logo_churn: Decimal | None
    churn_event_rate: Decimal | None
    revenue_churn: Decimal | None
    grr: Decimal | None
    nrr: Decimal | None
    arpu: Money | None
    ltv: Money | None
    churn_goal: Decimal | None = None

    def to_records(self) -> list[dict[str, Any]]:
        """Each figure as a record: ``figure``, ``value`` (a Decimal amount, count or
        percent; ``None`` when undefined) and ``unit`` (a currency code, ``count`` or
        ``percent``)."""
        money = self.mrr.start.currency
        figures: list[tuple[str, Money | Decimal | int | None, str]] = [
            ("mrr_start", self.mrr.start, money),
            ("new", self.mrr.new, money),
            ("expansion", self.mrr.expansion, money),
            ("contraction", self.mrr.contraction, money),
            ("churn", self.mrr.churn, money),
            ("reactivation", self.mrr.reactivation, money),
            ("mrr_end", self.mrr.end, money),
            ("arr", self.arr, money),
            ("members_start", self.members_start, "count"),
            ("members_end", self.members_end, "count"),
            ("churned_members", self.churned_members, "count"),
            ("churn_events", self.churn_events, "count"),
            ("logo_churn", self.logo_churn, "percent"),
            ("churn_event_rate", self.churn_event_rate, "percent"),
            ("revenue_churn", self.revenue_churn, "percent"),
            ("grr", self.grr, "percent"),
            ("nrr", self.nrr, "percent"),
            ("arpu", self.arpu, money),
            ("ltv", self.ltv, money),
            ("churn_goal", self.churn_goal, "percent"),
        ]
        return [
            {"figure": f, "value": v.amount if isinstance(v, Money) else v, "unit": u}
            for f, v, u in figures
        ]


def _percent(part: Decimal | int, whole: Decimal | int) -> Decimal | None:
    if not whole:
        return None
    return (100 * Decimal(part) / Decimal(whole)).quantize(_PERCENT)


@attrs.frozen
class _Scope:
    """What every subscription figure of a call reads: the store, the practices, the
    range cut at ``now``, their plans, and the churn goal of each practice."""

    store: Store
    ids: tuple[str, ...]
    span: DateRange
    now: datetime
    currency: str
    plans: Mapping[str, MembershipPlan]
    churn_goals: Mapping[str, Decimal | None]

    def query(self, **fields: Any) -> MemberQuery:
        """A member query over the practices."""
        return MemberQuery(practices=frozenset(self.ids), **fields)

    def changed(self) -> list[Member]:
        """The members with a status or plan change stamped inside the range."""
        return list(self.store.members.find(self.query(changed_in=self.span)))

    def held(self, changed: Iterable[Member]) -> Counter[str]:
        """By plan, the members counting at the range's start with no change inside it
        (so counting on the same plan at its end), from the store's counts."""
        start = self.span.start
        held = Counter(
            {
                p: self.store.members.count(
                    self.query(counting_at=start, counting_plans=frozenset({p}))
                )
                for p in self.plans
            }
        )
        held.subtract(m.plan_before(start) for m in changed if m.counts_before(start))
        return held


def _scope(
    store: Store,
    practices: Iterable[str] | str,
    date_range: DateRange | Preset | str,
    now: datetime,
    targets: KpiTargets | Goals | None,
) -> _Scope:
    ids = (practices,) if isinstance(practices, str) else tuple(practices)
    if not ids:
        raise InvalidValue("practices", ids, "name at least one practice")
    found = [store.practices.get(p) for p in ids]
    if len({p.currency for p in found}) > 1:
        raise InvalidValue("practices", ids, "must share one currency to add their figures")
    targets = KpiTargets.of(targets)
    when = as_instant(now, "now")
    span = (
        date_range
        if isinstance(date_range, DateRange)
        else DateRange.preset(date_range, now=when, timezone=found[0].timezone)
    ).cut(when)
    return _Scope(
        store=store,
        ids=ids,
        span=span,
        now=when,
        currency=found[0].currency,
        plans={p.id: p for p in store.membership_plans.find(ScopeQuery(practices=frozenset(ids)))},
        churn_goals={p: targets.for_practice(p).churn_for(span) for p in ids},
    )


def subscription_metrics(
    store: Store,
    *,
    practices: Iterable[str] | str,
    date_range: DateRange | Preset | str = Preset.LAST_30_DAYS,
    now: datetime,
    targets: KpiTargets | Goals | None = None,
) -> SubscriptionMetrics:
    """The subscription figures of ``practices`` over ``date_range`` cut at ``now``.

    A preset is resolved in the first practice's zone. The practices must share one
    currency: their counts and amounts add. ``targets`` gives the churn goal
    (``Goals.churn``, per month; none by default).

    Read from the store as one count per plan (``counting_at`` the range's start) and the
    members changed inside the range (``changed_in``): the members that did not change
    count the same at both ends and move nothing, so the figures cost the changes in the
    range, not the members kept.

    Raises:
        InvalidValue: no practice, practices in several currencies, or bad ``targets``.
        NotFound: an unknown practice id.
    """
    scope = _scope(store, practices, date_range, now, targets)
    changed = scope.changed()
    return _metrics(scope, scope.held(changed), changed)


def first_counted_at(member: Member) -> datetime | None:
    """When ``member`` first counted toward recurring revenue (``None`` if never)."""
    return next((c.at for c in member.history if c.to in COUNTING), None)


#: How :func:`subscription_breakdown` groups members.
BREAKDOWNS: Final = ("plan", "cohort")


def subscription_breakdown(
    store: Store,
    *,
    practices: Iterable[str] | str,
    by: str,
    date_range: DateRange | Preset | str = Preset.LAST_30_DAYS,
    now: datetime,
    targets: KpiTargets | Goals | None = None,
) -> dict[str, SubscriptionMetrics]:
    """The subscription figures of each group of members, in key order.

    ``by="plan"``: keyed by the membership plan id a member is on at the range's end,
    every plan of the practices (one no member is on has empty figures); read like
    :func:`subscription_metrics`. ``by="cohort"``: keyed by the month (``YYYY-MM``, in the
    range's zone) a member first counted toward recurring revenue, for the members who
    did before the range's end; this reads every member of the practices. Counts and
    money of the groups add up to :func:`subscription_metrics`'s (each member is in one
    group); percentages are each group's own.

    Raises:
        InvalidValue: ``by`` is neither ``"plan"`` nor ``"cohort"``; as
            :func:`subscription_metrics`.
    """
    if by not in BREAKDOWNS:
        raise InvalidValue("by", by, 'must be "plan" or "cohort"')
    scope = _scope(store, practices, date_range, now, targets)
    span = scope.span
    changed = scope.changed()
    groups: dict[str, tuple[Counter[str], list[Member]]] = {}
    if by == "plan":
        held = scope.held(changed)
        groups = {p: (Counter({p: held[p]}), []) for p in sorted(scope.plans)}
        for member in changed:
            groups[member.plan_before(span.end)][1].append(member)
    else:
        local = zone(span.timezone)
        moved = {m.id for m in changed}
        for member in store.members.find(scope.query()):
            first = first_counted_at(member)
            if first is None or first >= span.end:
                continue
            held, members = groups.setdefault(f"{first.astimezone(local):%Y-%m}", (Counter(), []))
            if member.id in moved:
                members.append(member)
            elif member.counts_before(span.start):
                held[member.plan_before(span.start)] += 1
    return {key: _metrics(scope, *groups[key]) for key in sorted(groups)}


def _metrics(scope: _Scope, held: Counter[str], changed: list[Member]) -> SubscriptionMetrics:
    """The figures of a group: ``held`` members (by plan) counting on one plan at both ends
    with no change in the range, and the ``changed`` members, changed inside it."""
    span, plans = scope.span, scope.plans
    zero = Money.zero(scope.currency)
    kept_mrr = sum((monthly_amount(plans[p]) * n for p, n in held.items()), zero)
    moved = mrr_movements(changed, plans, span)
    movements = attrs.evolve(moved, start=moved.start + kept_mrr, end=moved.end + kept_mrr)
    steady = sum(held.values())
    cohort = [m for m in changed if m.counts_before(span.start)]
    at_end = steady + sum(m.counts_before(span.end) for m in changed)
    churned = sum(not m.counts_before(span.end) for m in cohort)
    events = sum(
        1
        for m in changed
        for c in m.history
        if span.start <= c.at < span.end and c.to not in COUNTING and c.from_ in COUNTING
    )
    # Each changed start-cohort member's MRR at the start and at the end (zero once not
    # counting); the held members bring the same at both.
    ends = [
        (mrr_at(m, plans, span.start) or zero, mrr_at(m, plans, span.end) or zero) for m in cohort
    ]
    start_mrr = kept_mrr + sum((a for a, _ in ends), zero)
    kept = kept_mrr + sum((min(a, b) for a, b in ends), zero)  # none above their start
    grr = _percent(kept.amount, start_mrr.amount)
    cohort_end = kept_mrr + sum((b for _, b in ends), zero)
    members_start = steady + len(cohort)
    arpu = None
    if at_end:
        arpu = Money.from_minor(
            (2 * movements.end.minor + at_end) // (2 * at_end), movements.end.currency
        )
    logo = _percent(churned, members_start)
    ltv = None
    if arpu is not None and churned:
        seconds = Fraction(span.duration // timedelta(microseconds=1), 10**6)
        months = seconds * 12 / (365 * 86400)
        exact = arpu.minor * months * members_start / churned
        ltv = Money.from_minor(round_exact(exact), arpu.currency)
    starts = dict.fromkeys(scope.ids, 0)
    for p, n in held.items():
        starts[plans[p].practice_id] += n
    for m in cohort:
        starts[m.practice_id] += 1
    goals = list(scope.churn_goals.values())
    churn_goal = (
        None
        if any(g is None for g in goals)
        else weighted_goal([g for g in goals if g is not None], list(starts.values()))
    )
    return SubscriptionMetrics(
        practices=scope.ids,
        range=span,
        now=scope.now,
        mrr=movements,
        arr=movements.end * 12,
        members_start=members_start,
        members_end=at_end,
        churned_members=churned,
        churn_events=events,
        logo_churn=logo,
        churn_event_rate=_percent(events, members_start),
        revenue_churn=None if grr is None else Decimal(100) - grr,
        grr=grr,
        nrr=_percent(cohort_end.amount, start_mrr.amount),
        arpu=arpu,
        ltv=ltv,
        churn_goal=churn_goal,
    )
