"""Overdue: who is behind on payments at an instant (the manual's Overdue filter).

A member is **overdue** at instant ``T`` when a charge that fell due for them is
still unpaid at ``T`` and ``grace_days`` have passed since. **Grace days are local
calendar days** in the practice's time zone, one rule for every charge: a charge
that fell due on local day ``f`` is overdue from the start of local day
``f + grace_days`` (:func:`latest_overdue_day`). A charge falls due:

- for a Failed membership, on the local day its Failed spell began (the charge
  failed then): with no grace it is overdue at once;
- for an instalment due on local day ``d`` of a Pending, Active or Failed payment
  plan, on day ``d + 1`` (it can be paid all its due day): it is overdue from the
  local midnight that starts ``d + 1 + grace_days``.

Completed and Cancelled plans are never overdue.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta

import attrs

from smilepass_core.domain.members import Member, MembershipStatus
from smilepass_core.domain.payment_plans import Instalment, PaymentPlan
from smilepass_core.domain.practices import MembershipPlan
from smilepass_core.errors import InvalidValue
from smilepass_core.money import Money
from smilepass_core.periods import as_instant, local_day, local_midnight

__all__ = [
    "DueCharge",
    "amount_overdue",
    "failed_since",
    "is_overdue",
    "last_overdue_due_date",
    "latest_overdue_day",
    "overdue_instalments",
    "unpaid_charges",
]


def _grace(grace_days: int) -> timedelta:
    if not isinstance(grace_days, int) or isinstance(grace_days, bool) or grace_days < 0:
        raise InvalidValue("grace_days", grace_days, "must be a whole number of days >= 0")
    return timedelta(days=grace_days)


def latest_overdue_day(at: datetime, timezone: str, grace_days: int = 0) -> date:
    """A charge that fell due on this local day (in ``timezone``) or before, and is still
    unpaid, is overdue at ``at``: ``at``'s local day less ``grace_days``."""
    return local_day(at, timezone) - _grace(grace_days)


def last_overdue_due_date(at: datetime, timezone: str, grace_days: int = 0) -> date:
    """Instalments due on or before this local date are overdue at ``at`` (an instalment
    falls due the day after its due date): :func:`latest_overdue_day` less one day."""
    return latest_overdue_day(at, timezone, grace_days) - timedelta(days=1)


def _failed_overdue(member: Member, at: datetime, timezone: str, grace_days: int) -> bool:
    """``member``'s membership is Failed at ``at``, since a local day at least
    ``grace_days`` before ``at``'s."""
    last = latest_overdue_day(at, timezone, grace_days)
    since = failed_since(member, at)
    return since is not None and local_day(since, timezone) <= last


def overdue_instalments(
    plan: PaymentPlan, *, at: datetime, timezone: str, grace_days: int = 0
) -> tuple[Instalment, ...]:
    """Unpaid instalments of ``plan`` that are overdue at ``at``, judging the plan as it
    stood at ``at`` (its status then, the instalments paid by then)."""
    last = last_overdue_due_date(at, timezone, grace_days)
    return plan.unpaid_due_before(last + timedelta(days=1), at=at)


def failed_since(member: Member, at: datetime) -> datetime | None:
    """When the member's current Failed spell began, if Failed at ``at``; else ``None``."""
    t = as_instant(at)
    if member.status_at(t) is not MembershipStatus.FAILED:
        return None
    since = None
    for change in member.history:
        if change.at > t:
            break
        if change.to is MembershipStatus.FAILED and change.from_ is not MembershipStatus.FAILED:
            since = change.at
    return since


def is_overdue(
    member: Member,
    plans: Iterable[PaymentPlan] = (),
    *,
    at: datetime,
    timezone: str,
    grace_days: int = 0,
) -> bool:
    """True when ``member`` is overdue at ``at`` (see the module docstring).

    Args:
        member: The member.
        plans: The member's payment plans (others are ignored).
        at: The instant judged.
        timezone: The practice's time zone (instalment due dates are local days).
        grace_days: Days a due charge may stay unpaid before it counts as overdue.
    """
    if _failed_overdue(member, at, timezone, grace_days):
        return True
    return any(
        overdue_instalments(p, at=at, timezone=timezone, grace_days=grace_days)
        for p in plans
        if p.member_id == member.id
    )


@attrs.frozen
class DueCharge:
    """A charge that fell due and is unpaid: what, for how much, due on which local day."""

    source: tuple[str, str]
    due_date: date
    amount: Money
    instalment: int | None = None

    def days_past_due(self, today: date) -> int:
        """Whole days between the due date and ``today`` (0 on the due date itself)."""
        return (today - self.due_date).days


def unpaid_charges(
    member: Member | None,
    membership_plan: MembershipPlan | None,
    plans: Iterable[PaymentPlan] = (),
    *,
    at: datetime,
    timezone: str,
    membership_plans: Mapping[str, MembershipPlan] | None = None,
) -> tuple[DueCharge, ...]:
    """Every charge due on or before the local day of ``at`` and unpaid at ``at``.

    - A payment plan's unpaid instalments whose due date has come (Pending, Active
      or Failed plans; Completed and Cancelled plans owe nothing).
    - A Failed membership: the billing date of the charge that failed (the last one
      on or before the day it failed) and every billing date after it up to today,
      each at the price of the plan in force as its day starts, as
      :func:`~smilepass_core.domain.billing.billing_statement` prices it
      (``membership_plan`` is the plan at ``at``; the earlier ones are read from
      ``membership_plans``). A date whose plan is not given, or bills on another cycle
      than ``membership_plan``, is priced at ``membership_plan``. The dates follow the
      cycle from the contract's start date, computed from the anchor.
    """
    today = local_day(at, timezone)
    charges: list[DueCharge] = []
    for plan in plans:
        for i in plan.unpaid_due_before(today + timedelta(days=1), at=at):
            charges.append(DueCharge(("payment_plan", plan.id), i.due_date, i.amount, i.number))
    if member is not None and membership_plan is not None:
        since = failed_since(member, at)
        if since is not None:
            failed_on = local_day(since, timezone)
            dates = []
            k = 0
            while (due := membership_plan.charge_date(member.start_date, k)) <= today:
                if due <= failed_on:
                    dates = [due]
                else:
                    dates.append(due)
                k += 1
            for due in dates or [failed_on]:
                price = _price_on(member, membership_plan, membership_plans, due, timezone)
                charges.append(DueCharge(("member", member.id), due, price))
    return tuple(sorted(charges, key=lambda c: (c.due_date, c.source, c.instalment or 0)))


def _price_on(
    member: Member,
    plan: MembershipPlan,
    plans: Mapping[str, MembershipPlan] | None,
    day: date,
    timezone: str,
) -> Money:
    """The price billing date ``day`` is owed at: the plan in force as its local day
    starts, when ``plans`` has it and it bills on ``plan``'s cycle; else ``plan``'s."""
    if not member.plan_changes:
        return plan.price
    then = (plans or {}).get(member.plan_before(local_midnight(day, timezone)))
    if then is None or then.billing_cycle is not plan.billing_cycle:
        return plan.price
    return then.price


def amount_overdue(
    member: Member,
    membership_plan: MembershipPlan | None,
    plans: Iterable[PaymentPlan] = (),
    *,
    at: datetime,
    timezone: str,
    grace_days: int = 0,
    membership_plans: Mapping[str, MembershipPlan] | None = None,
) -> Money | None:
    """What ``member`` owes that is overdue at ``at``: their overdue instalments plus,
    when their Failed membership is overdue, its unpaid charges (each at the plan of its
    date, as :func:`unpaid_charges`). ``None`` when nothing is."""
    mine = [p for p in plans if p.member_id == member.id]
    owed: list[Money] = []
    for plan in mine:
        owed += [
            i.amount
            for i in overdue_instalments(plan, at=at, timezone=timezone, grace_days=grace_days)
        ]
    if _failed_overdue(member, at, timezone, grace_days):
        owed += [
            c.amount
            for c in unpaid_charges(
                member,
                membership_plan,
                at=at,
                timezone=timezone,
                membership_plans=membership_plans,
            )
        ]
    if not owed:
        return None
    return sum(owed[1:], owed[0])
