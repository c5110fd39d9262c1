"""Overdue: who is behind on payments at an instant (the manual's Overdue filter).

One definition: a member is **overdue** at instant ``T`` when one of their invoices
(:mod:`smilepass_core.domain.invoices`) is Overdue at ``T``:

- an **expected membership charge** (:func:`~smilepass_core.domain.billing.billing_statement`:
  a billing date due by ``T``, settled from the member's ledger) that is unpaid at ``T``
  while the member is Pending, Active or Failed, whether a charge for it failed or was
  never attempted;
- an unpaid **instalment** of one of their Pending, Active or Failed payment plans.

**Grace days are local calendar days** in the practice's time zone. An unpaid charge due
on local day ``d`` can be paid all that day: it is overdue from the local midnight that
starts ``d + 1 + grace_days``, or, when a charge for it failed on local day ``f``, from the
midnight that starts ``f + grace_days`` if that is earlier (with no grace, from the failure
itself). A Suspended membership's charges are Expired and a Cancelled one's, like a
Completed or Cancelled plan's instalments, are never overdue.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime, timedelta

import attrs

from smilepass_core.domain.billing import BILLABLE
from smilepass_core.domain.invoices import (
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    grace_period,
    latest_overdue_day,
    member_charges,
    member_invoices,
    plan_charges,
    plan_invoices,
)
from smilepass_core.domain.members import Member, MembershipStatus
from smilepass_core.domain.payment_plans import (
    PAYMENT_PLAN_LIFECYCLE,
    Instalment,
    PaymentPlan,
)
from smilepass_core.domain.payments import Payment
from smilepass_core.domain.practices import MembershipPlan
from smilepass_core.errors import InvalidValue
from smilepass_core.money import Money
from smilepass_core.periods import SUPPORTED_YEARS, as_instant, local_day, local_midnight

__all__ = [
    "OUTLOOK_DAYS",
    "DueCharge",
    "OverdueOutlook",
    "amount_overdue",
    "failed_since",
    "invoices_at",
    "is_overdue",
    "last_event",
    "last_overdue_due_date",
    "latest_overdue_day",
    "overdue_instalments",
    "overdue_invoices",
    "overdue_outlook",
    "overdue_outlook_at",
    "unpaid_charges",
]

#: Invoice statuses of a charge due and unpaid that is still being collected.
_UNPAID = frozenset({InvoiceStatus.PROCESSING, InvoiceStatus.OVERDUE})


def last_overdue_due_date(at: datetime, timezone: str, grace_days: int = 0) -> date:
    """An unpaid charge due on or before this local date, with no failed attempt, is
    overdue at ``at`` (it falls due the day after its due date): :func:`latest_overdue_day`
    less one day."""
    return latest_overdue_day(at, timezone, grace_days) - timedelta(days=1)


def invoices_at(
    member: Member | None,
    plans: Iterable[PaymentPlan] = (),
    *,
    at: datetime,
    timezone: str,
    grace_days: int = 0,
    membership_plans: Mapping[str, MembershipPlan] | None = None,
    payments: Iterable[Payment] = (),
) -> tuple[Invoice, ...]:
    """The invoices of ``member``'s membership (when Pending, Active or Failed at ``at``)
    and of ``plans`` (every one given, whoever holds it), with their statuses at ``at``.

    Args:
        member: The member, or ``None`` for plans alone.
        plans: Payment plans whose instalments to include.
        at: The instant judged.
        timezone: The practice's time zone (due dates are local days).
        grace_days: Days an unpaid charge may wait before it counts as overdue.
        membership_plans: Membership plans by id: at least the member's plan, and the
            earlier ones to bill the dates before a plan change (a plan not given is
            taken to be the member's plan, its cycle and price: a store holds every
            plan a member was on).
        payments: The member's ledger (others' entries are ignored).

    Raises:
        InvalidValue: ``grace_days`` is not a whole number from 0 to 36,500, or ``membership_plans``
            lacks the member's plan when its charges must be judged.
    """
    when = as_instant(at)
    latest_overdue_day(when, timezone, grace_days)  # checks grace_days in every case
    found: list[Invoice] = []
    if member is not None and member.status_at(when) in BILLABLE:
        plan = _plan_of(member, membership_plans)
        found += member_invoices(
            member,
            plan,
            payments,
            at=when,
            timezone=timezone,
            grace_days=grace_days,
            plans=_pricing(member, plan, membership_plans or {}),
        )
    for payment_plan in plans:
        found += plan_invoices(payment_plan, at=when, timezone=timezone, grace_days=grace_days)
    return tuple(found)


def _plan_of(member: Member, plans: Mapping[str, MembershipPlan] | None) -> MembershipPlan:
    """The member's plan in ``plans``; raises :class:`InvalidValue` naming
    ``membership_plans`` when it is not there."""
    plan = (plans or {}).get(member.plan_id)
    if plan is None:
        raise InvalidValue(
            "membership_plans", member.plan_id, "must hold the member's plan to judge its charges"
        )
    return plan


def _pricing(
    member: Member, plan: MembershipPlan, plans: Mapping[str, MembershipPlan]
) -> dict[str, MembershipPlan]:
    """The plans to bill ``member``'s dates at: each earlier plan of theirs, or ``plan`` (its
    cycle and price) in its place when it is not given (the lists built on this module
    must not stop on a catalogue that lacks a plan a member was on)."""
    pricing = dict(plans)
    for change in member.plan_changes:
        for plan_id in (change.from_plan, change.to_plan):
            pricing.setdefault(plan_id, plan)
    return pricing


def overdue_invoices(
    member: Member,
    plans: Iterable[PaymentPlan] = (),
    *,
    at: datetime,
    timezone: str,
    grace_days: int = 0,
    membership_plans: Mapping[str, MembershipPlan] | None = None,
    payments: Iterable[Payment] = (),
) -> tuple[Invoice, ...]:
    """``member``'s invoices that are Overdue at ``at``: membership charges, then the
    instalments of the plans in ``plans`` that they hold (others are ignored). Arguments
    and errors as :func:`invoices_at`."""
    return tuple(
        i
        for i in invoices_at(
            member,
            [p for p in plans if p.member_id == member.id],
            at=at,
            timezone=timezone,
            grace_days=grace_days,
            membership_plans=membership_plans,
            payments=payments,
        )
        if i.status is InvoiceStatus.OVERDUE
    )


def is_overdue(
    member: Member,
    plans: Iterable[PaymentPlan] = (),
    *,
    at: datetime,
    timezone: str,
    grace_days: int = 0,
    membership_plans: Mapping[str, MembershipPlan] | None = None,
    payments: Iterable[Payment] = (),
) -> bool:
    """True when ``member`` has an Overdue invoice at ``at`` (see the module docstring;
    arguments and errors as :func:`invoices_at`)."""
    return bool(
        overdue_invoices(
            member,
            plans,
            at=at,
            timezone=timezone,
            grace_days=grace_days,
            membership_plans=membership_plans,
            payments=payments,
        )
    )


def amount_overdue(
    member: Member,
    plans: Iterable[PaymentPlan] = (),
    *,
    at: datetime,
    timezone: str,
    grace_days: int = 0,
    membership_plans: Mapping[str, MembershipPlan] | None = None,
    payments: Iterable[Payment] = (),
) -> Money | None:
    """What is unpaid of ``member``'s Overdue invoices at ``at``; ``None`` when none is
    (arguments and errors as :func:`invoices_at`)."""
    owed = [
        i.outstanding
        for i in overdue_invoices(
            member,
            plans,
            at=at,
            timezone=timezone,
            grace_days=grace_days,
            membership_plans=membership_plans,
            payments=payments,
        )
    ]
    if not owed:
        return None
    return sum(owed[1:], owed[0])


def overdue_instalments(
    plan: PaymentPlan, *, at: datetime, timezone: str, grace_days: int = 0
) -> tuple[Instalment, ...]:
    """The instalments of ``plan`` whose invoice is Overdue at ``at``, judging the plan as
    it stood at ``at`` (its status then, the instalments paid and failed by then)."""
    late = {
        i.number
        for i in plan_invoices(plan, at=at, timezone=timezone, grace_days=grace_days)
        if i.status is InvoiceStatus.OVERDUE
    }
    return tuple(i for i in plan.schedule if i.number in late)


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


@attrs.frozen
class DueCharge:
    """A charge that fell due and is unpaid: what, how much of it is unpaid, due on which
    local day."""

    source: tuple[str, str]
    due_date: date
    amount: Money
    instalment: int | None = None

    def days_past_due(self, today: date) -> int:
        """Whole days between the due date and ``today`` (0 on the due date itself)."""
        return (today - self.due_date).days


def _due_date(charge: DueCharge) -> date:
    return charge.due_date


def unpaid_charges(
    member: Member | None,
    plans: Iterable[PaymentPlan] = (),
    *,
    at: datetime,
    timezone: str,
    membership_plans: Mapping[str, MembershipPlan] | None = None,
    payments: Iterable[Payment] = (),
) -> tuple[DueCharge, ...]:
    """Every charge due by ``at`` and still being collected then: the invoices of
    :func:`invoices_at` that are Processing or Overdue (a Suspended membership's are
    Expired, a Cancelled one's Cancelled), each with what is unpaid of it, by due date.
    Arguments and errors as :func:`invoices_at`."""
    charges = [
        DueCharge(
            i.source,
            i.due_date,
            i.outstanding,
            i.number if i.source[0] == "payment_plan" else None,
        )
        for i in invoices_at(
            member,
            plans,
            at=at,
            timezone=timezone,
            membership_plans=membership_plans,
            payments=payments,
        )
        if i.status in _UNPAID
    ]
    return tuple(sorted(charges, key=lambda c: (c.due_date, c.source, c.instalment or 0)))


#: How many local days past its last event an :class:`OverdueOutlook` reads a membership's
#: billing dates (a later day is judged in full).
OUTLOOK_DAYS = 400


@attrs.frozen
class OverdueOutlook:
    """When a member is overdue at any instant from ``since`` on, as long as nothing the
    definition reads changes after ``since`` (:func:`overdue_outlook`).

    Attributes:
        since: The latest event of the member, their ledger and the plans they hold.
        through: The last local day answered (``None``: every day).
        dues: ``(due day, first overdue day with no grace)`` of the unpaid charges that can
            come first, whatever the grace.
        charges: The membership's unpaid charges due up to ``through``, by due date, each
            with what is unpaid of it (the membership's :func:`unpaid_charges`); ``None``
            when not read.
        until: The member's first event after ``since`` (:func:`overdue_outlook_at`):
            the outlook answers only before it; ``None``: no later event.
    """

    since: datetime
    through: date | None
    dues: tuple[tuple[date, date], ...]
    charges: tuple[DueCharge, ...] | None = None
    until: datetime | None = None

    def unpaid_on(self, day: date) -> tuple[DueCharge, ...] | None:
        """The membership's :func:`unpaid_charges` at an instant at or after ``since``
        whose local day is ``day``: those due by ``day``; ``None`` past ``through``, or
        when ``charges`` were not read."""
        if self.charges is None or (self.through is not None and day > self.through):
            return None
        due = bisect.bisect_right(self.charges, day, key=_due_date)
        return self.charges if due == len(self.charges) else self.charges[:due]

    def overdue_on(self, day: date, grace_days: int = 0) -> bool | None:
        """Whether the member is overdue, with ``grace_days``, at an instant at or after
        ``since`` whose local day is ``day``; ``None`` past ``through``.

        Raises:
            InvalidValue: ``grace_days`` is not a whole number from 0 to 36,500.
        """
        grace = grace_period(grace_days)
        if self.through is not None and day > self.through:
            return None
        return any(max(due, first + grace) <= day for due, first in self.dues)


def last_event(
    member: Member, plans: Iterable[PaymentPlan] = (), payments: Iterable[Payment] = ()
) -> datetime:
    """The latest instant :func:`is_overdue` reads for ``member``: of their status, plan
    and dependent changes and referral rewards, their ledger entries, and the changes and
    attempts of the plans in ``plans`` they hold."""
    mine = [p for p in plans if p.member_id == member.id]
    return max(_stamped(member, mine, (p for p in payments if p.member_id == member.id)))


def _stamped(
    member: Member, mine: Iterable[PaymentPlan], ledger: Iterable[Payment]
) -> Iterator[datetime]:
    """The instant of everything :func:`is_overdue` reads for ``member``, with ``mine``
    the plans they hold and ``ledger`` their entries (in no order)."""
    held = list(mine)
    return itertools.chain(
        (c.at for c in member.history),
        (c.at for c in member.plan_changes),
        (c.at for c in member.dependent_changes),
        (r.at for r in member.referral_rewards),
        (p.at for p in ledger),
        (c.at for p in held for c in p.history),
        (a.at for p in held for a in p.attempts),
    )


def _open(lines: Iterable[InvoiceLine]) -> list[InvoiceLine]:
    """The lines not paid in full (a line paid in full holds its amount object itself)."""
    return [line for line in lines if line.paid is not line.amount and line.paid != line.amount]


def _unpaid(lines: Iterable[InvoiceLine], timezone: str) -> Iterator[tuple[date, date]]:
    """Each of the unpaid ``lines`` (:func:`_open`'s) as its due day and first overdue
    day with no grace: the day after it is due, or the day a charge for it first failed
    if earlier (the invoices' rule)."""
    for line in lines:
        after = line.due_date + timedelta(days=1)
        failed = local_day(min(line.failures), timezone) if line.failures else after
        yield line.due_date, min(after, failed)


def overdue_outlook(
    member: Member,
    plans: Iterable[PaymentPlan] = (),
    *,
    timezone: str,
    membership_plans: Mapping[str, MembershipPlan] | None = None,
    payments: Iterable[Payment] = (),
    days: int = OUTLOOK_DAYS,
) -> OverdueOutlook:
    """What :func:`is_overdue` answers at every instant after the member's last event, read
    once: after it their statuses, ledger and plans stay as they are, so the unpaid
    charges are fixed (the ledger pays the billing dates in order) and only fall due. An
    unpaid charge due on day ``d``, first overdue on day ``f`` with no grace, is overdue
    with ``g`` grace days from day ``max(d, f + g)``; the member from the earliest.

    Arguments as :func:`invoices_at`: ``plans`` are the plans the member holds (others are
    ignored), ``payments`` their whole ledger. The membership's billing dates are read
    ``days`` local days past the last event (``through``).
    """
    mine = [p for p in plans if p.member_id == member.id]
    ledger = [p for p in payments if p.member_id == member.id]
    since = last_event(member, mine, ledger)
    dues: list[tuple[date, date]] = []
    unpaid: tuple[DueCharge, ...] = ()
    through = None
    if member.status_at(since) in BILLABLE:
        plan = _plan_of(member, membership_plans)
        through = min(
            local_day(since, timezone) + timedelta(days=days),
            date(SUPPORTED_YEARS[-1], 12, 30),  # its local midnight is still a supported day
        )
        charges = member_charges(
            member,
            plan,
            ledger,
            at=max(since, local_midnight(through, timezone)),
            timezone=timezone,
            plans=_pricing(member, plan, membership_plans or {}),
        )
        open_lines = _open(charges)
        dues += _unpaid(open_lines, timezone)
        source = ("member", member.id)  # one tuple, and the price itself when none is paid
        unpaid = tuple(
            DueCharge(source, c.due_date, c.amount if c.paid.is_zero() else c.amount - c.paid)
            for c in open_lines
        )
    for held in mine:
        if held.status_at(since) not in PAYMENT_PLAN_LIFECYCLE.terminal:
            dues += _unpaid(_open(plan_charges(held, at=since)), timezone)
    frontier: list[tuple[date, date]] = []
    for due, first in sorted(dues):
        if not frontier or first < frontier[-1][1]:
            frontier.append((due, first))
    return OverdueOutlook(since, through, tuple(frontier), unpaid)


def overdue_outlook_at(
    member: Member,
    plans: Iterable[PaymentPlan] = (),
    *,
    at: datetime,
    timezone: str,
    membership_plans: Mapping[str, MembershipPlan] | None = None,
    payments: Iterable[Payment] = (),
    days: int = OUTLOOK_DAYS,
) -> OverdueOutlook | None:
    """What :func:`is_overdue` answers at ``at`` and every instant from the member's latest
    event at or before it up to their next one (``until``): the :func:`overdue_outlook` of
    the member, the plans they hold and their ledger as they stood at ``at``
    (:meth:`Member.as_of`, :meth:`PaymentPlan.as_of`, the entries stamped at or before
    it). An answer at an instant reads nothing stamped after it. ``None`` before the
    member's creation.

    Arguments as :func:`overdue_outlook`, but the billing dates are read ``days`` local
    days past ``at``'s (``through``).
    """
    when = as_instant(at)
    then = member.as_of(when)
    if then is None:
        return None
    mine = [p for p in plans if p.member_id == member.id]
    ledger = [p for p in payments if p.member_id == member.id]
    held = [kept for p in mine if (kept := p.as_of(when)) is not None]
    paid = [p for p in ledger if p.at <= when]
    since = last_event(then, held, paid)
    outlook = overdue_outlook(
        then,
        held,
        timezone=timezone,
        membership_plans=membership_plans,
        payments=paid,
        days=(local_day(when, timezone) - local_day(since, timezone)).days + days,
    )
    later = (t for t in _stamped(member, mine, ledger) if t > when)
    return attrs.evolve(outlook, until=min(later, default=None))
