"""Overdue: who is behind on payments at an instant (the manual's Overdue filter).

A member is **overdue** at instant ``T`` when a charge that fell due for them is
still unpaid at ``T``, more than ``grace_days`` after it fell due:

- their membership is Failed at ``T`` and has been since before ``T - grace_days``
  (a failed membership charge falls due when it fails), or
- they hold a payment plan (Pending, Active or Failed) with an unpaid instalment
  whose due date ended more than ``grace_days`` before ``T``: an instalment due
  on local day ``d`` can be paid all that day, so it is overdue from the local
  midnight that starts ``d + 1 + grace_days`` (in the practice's time zone).

Completed and Cancelled plans are never overdue.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from smilepass_core.domain.members import Member, MembershipStatus
from smilepass_core.domain.payment_plans import Instalment, PaymentPlan
from smilepass_core.errors import InvalidValue
from smilepass_core.periods import as_instant, zone

__all__ = ["failed_since", "is_overdue", "overdue_instalments"]


def _grace(grace_days: int) -> timedelta:
    if not isinstance(grace_days, int) or isinstance(grace_days, bool) or grace_days < 0:
        raise InvalidValue("grace_days", grace_days, "must be a whole number of days >= 0")
    return timedelta(days=grace_days)


def _last_overdue_due_date(at: datetime, timezone: str, grace_days: int) -> date:
    """Instalments due on or before this local date are overdue at ``at``."""
    today = as_instant(at).astimezone(zone(timezone)).date()
    return today - timedelta(days=1) - _grace(grace_days)


def overdue_instalments(
    plan: PaymentPlan, *, at: datetime, timezone: str, grace_days: int = 0
) -> tuple[Instalment, ...]:
    """Unpaid instalments of ``plan`` that are overdue at ``at`` (none once Completed/Cancelled).

    Judged on the plan as given: pass the plan's state at ``at``.
    """
    last = _last_overdue_due_date(at, timezone, grace_days)
    return plan.unpaid_due_before(last + timedelta(days=1))


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
    grace = _grace(grace_days)
    since = failed_since(member, at)
    if since is not None and since <= as_instant(at) - grace:
        return True
    return any(
        overdue_instalments(p, at=at, timezone=timezone, grace_days=grace_days)
        for p in plans
        if p.member_id == member.id
    )
