"""Invoices: each expected membership charge and each payment-plan instalment, with the
manual's invoice statuses derived at an instant (docs/domain.md, "Invoices").

One rule table, judged at instant ``T`` in the practice's time zone, first match wins:

========== =================================================================================
status     when
========== =================================================================================
completed  paid in full by ``T``
cancelled  its membership or plan is Cancelled at ``T`` (no longer collected)
expired    its membership is Suspended at ``T`` (collection paused: the pay window lapsed)
overdue    due and unpaid past grace: from the local day after its due date plus
           ``grace_days``, or from the local day a charge for it failed plus ``grace_days``
processing due (its local day has come) and unpaid, not yet overdue
active     not yet due (a payment plan's later instalments, on schedule)
========== =================================================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta

import attrs

from smilepass_core.domain.billing import _money, _settled
from smilepass_core.domain.discounts import AppliedDiscount
from smilepass_core.domain.lifecycle import Status
from smilepass_core.domain.members import Member, MembershipStatus
from smilepass_core.domain.payment_plans import PaymentPlan, PaymentPlanStatus
from smilepass_core.domain.payments import Payment
from smilepass_core.domain.practices import MembershipPlan
from smilepass_core.errors import InvalidValue
from smilepass_core.money import Money
from smilepass_core.periods import as_instant, local_day

__all__ = [
    "MAX_GRACE_DAYS",
    "Invoice",
    "InvoiceLine",
    "InvoiceStatus",
    "check_grace_days",
    "latest_overdue_day",
    "member_charges",
    "member_invoices",
    "plan_charges",
    "plan_invoices",
]


#: The longest grace period, in days (a century: longer ones are mistakes, and past a few
#: million days the calendar itself overflows).
MAX_GRACE_DAYS = 36_500


def check_grace_days(value: object, field: str = "grace_days") -> None:
    """Raise :class:`InvalidValue` naming ``field`` unless ``value`` is a whole number of
    days from 0 to :data:`MAX_GRACE_DAYS`."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_GRACE_DAYS:
        raise InvalidValue(
            field, value, f"must be a whole number of days from 0 to {MAX_GRACE_DAYS:,}"
        )


def grace_period(grace_days: int) -> timedelta:
    """``grace_days`` as a span of days.

    Raises:
        InvalidValue: ``grace_days`` is not a whole number from 0 to :data:`MAX_GRACE_DAYS`.
    """
    check_grace_days(grace_days)
    return timedelta(days=grace_days)


def latest_overdue_day(at: datetime, timezone: str, grace_days: int = 0) -> date:
    """A charge that fell due on this local day (in ``timezone``) or before, and is still
    unpaid, is overdue at ``at``: ``at``'s local day less ``grace_days``."""
    return local_day(at, timezone) - grace_period(grace_days)


class InvoiceStatus(Status):
    """The manual's invoice statuses."""

    PROCESSING = "processing"
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    OVERDUE = "overdue"


@attrs.frozen
class Invoice:
    """One charge to collect: its source (``("member", id)`` or ``("payment_plan", id)``),
    its number (the billing date's ``k``, or the instalment's number), due date, amount,
    what was paid of it by the instant judged, and its status then."""

    source: tuple[str, str]
    number: int
    due_date: date
    amount: Money
    paid: Money
    status: InvoiceStatus

    @property
    def outstanding(self) -> Money:
        """What is still unpaid of it."""
        return self.amount - self.paid


def _status(
    *,
    settled: bool,
    closed: MembershipStatus | PaymentPlanStatus | None,
    due: date,
    failed_on: date | None,
    today: date,
    last_overdue: date,
) -> InvoiceStatus:
    """The rule table of the module docstring. ``last_overdue`` is the latest local day a
    charge may have fallen due and be overdue today (``today - grace_days``)."""
    if settled:
        return InvoiceStatus.COMPLETED
    if closed in (MembershipStatus.CANCELLED, PaymentPlanStatus.CANCELLED):
        return InvoiceStatus.CANCELLED
    if closed is MembershipStatus.SUSPENDED:
        return InvoiceStatus.EXPIRED
    if due > today:
        return InvoiceStatus.ACTIVE
    if due + timedelta(days=1) <= last_overdue or (
        failed_on is not None and failed_on <= last_overdue
    ):
        return InvoiceStatus.OVERDUE
    return InvoiceStatus.PROCESSING


@attrs.frozen
class InvoiceLine:
    """One charge to collect, before its status is judged: its number, due date, amount,
    what was paid of it, and the instants of the failed attempts at it."""

    number: int
    due_date: date
    amount: Money
    paid: Money
    failures: tuple[datetime, ...] = ()


def member_charges(
    member: Member,
    plan: MembershipPlan,
    payments: Iterable[Payment],
    *,
    at: datetime,
    timezone: str,
    plans: Mapping[str, MembershipPlan] | None = None,
    discounts: Iterable[AppliedDiscount] | None = None,
) -> list[InvoiceLine]:
    """The membership's charges due up to ``at`` (:func:`~.billing.billing_statement`, with
    ``plans`` and ``discounts`` as there), settled by the ledger as it stood at ``at``."""
    when = as_instant(at)
    ledger = [p for p in payments if p.member_id == member.id and p.at <= when]
    # billing_statement's charges, as rows (no ExpectedCharge made to be read once).
    _, rows, *totals, _ = _settled(member, plan, ledger, when, timezone, discounts, plans)
    for total in totals:  # Money, as the statement holds them (past 30 digits: refused)
        _money(total, plan.price.currency)
    failed_at = {p.id: p.at for p in ledger}
    return [
        InvoiceLine(k, due, amount, paid, tuple([failed_at[i] for i in tried]) if tried else ())
        for k, due, amount, paid, _, tried in rows
    ]


def plan_charges(plan: PaymentPlan, *, at: datetime) -> list[InvoiceLine]:
    """Every instalment of ``plan`` as it stood at ``at``: instalments are paid in order,
    one succeeded attempt each."""
    when = as_instant(at)
    attempts = [a for a in plan.attempts if a.at <= when]
    paid = sum(a.succeeded for a in attempts)
    zero = Money.zero(plan.total.currency)
    return [
        InvoiceLine(
            i.number,
            i.due_date,
            i.amount,
            i.amount if k < paid else zero,
            tuple(a.at for a in attempts if a.number == i.number and not a.succeeded),
        )
        for k, i in enumerate(plan.schedule)
    ]


def member_invoices(
    member: Member,
    plan: MembershipPlan,
    payments: Iterable[Payment],
    *,
    at: datetime,
    timezone: str,
    grace_days: int = 0,
    plans: Mapping[str, MembershipPlan] | None = None,
    discounts: Iterable[AppliedDiscount] | None = None,
) -> tuple[Invoice, ...]:
    """An invoice per charge due up to ``at`` (:func:`~.billing.billing_statement`, with
    ``plans`` and ``discounts`` as there), with its status at ``at``."""
    when = as_instant(at)
    charges = member_charges(
        member, plan, payments, at=when, timezone=timezone, plans=plans, discounts=discounts
    )
    closed = member.status_at(when)
    return _invoices(("member", member.id), charges, closed, when, timezone, grace_days)


def plan_invoices(
    plan: PaymentPlan, *, at: datetime, timezone: str, grace_days: int = 0
) -> tuple[Invoice, ...]:
    """An invoice per instalment of ``plan``, as the plan stood at ``at``: instalments are
    paid in order, one succeeded attempt each. None before the plan's first status."""
    when = as_instant(at)
    closed = plan.status_at(when)
    if closed is None:
        return ()
    charges = plan_charges(plan, at=when)
    return _invoices(("payment_plan", plan.id), charges, closed, when, timezone, grace_days)


def _invoices(
    source: tuple[str, str],
    charges: Iterable[InvoiceLine],
    closed: MembershipStatus | PaymentPlanStatus | None,
    when: datetime,
    timezone: str,
    grace_days: int,
) -> tuple[Invoice, ...]:
    """Each line as an invoice with its status at ``when`` (the rule table of the module
    docstring)."""
    today = local_day(when, timezone)
    last = latest_overdue_day(when, timezone, grace_days)
    return tuple(
        Invoice(
            source,
            c.number,
            c.due_date,
            c.amount,
            c.paid,
            _status(
                settled=c.paid == c.amount,
                closed=closed,
                due=c.due_date,
                failed_on=local_day(min(c.failures), timezone) if c.failures else None,
                today=today,
                last_overdue=last,
            ),
        )
        for c in charges
    )
