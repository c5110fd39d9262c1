"""Membership billing: the charges a member owed up to an instant, what settled them, and
what to do next about the unpaid ones (docs/domain.md, "Billing").

- **Billing dates** are the plan's cycle from the contract's start date, each computed from
  the anchor (``plan.charge_date(start_date, k)``, ``k = 0, 1, ...``): the first at sign-up,
  month ends clamped without drift. Each date is charged at the plan in force as its local
  day starts. A change to a plan of another cycle takes effect on the first date of the old
  cycle after it on which the membership is billable (below): that date is charged at the
  new plan and is the new cycle's anchor
  (monthly from 15 January, moved to annual on 20 March: 15 January, February and March
  at the monthly price, then 15 April at the annual price, and each 15 April after). No
  proration.
- A billing date ``d`` is **due** at ``at`` when ``d`` is on or before ``at``'s local day
  and the membership is **billable** on ``d``: at some instant of that local day its status
  is Pending, Active or Failed (its status as the day starts, or one it moves to during
  the day: a member resumed on a billing day is charged that day), or the member had no
  status yet (a contract that starts before its record). No charge falls due on a day
  spent Suspended, nor after the day of Cancel.
- **Settlement.** The member's ledger entries stamped at or before ``at`` are taken in
  order of time (then id). A succeeded charge pays the earliest due charges not yet paid in
  full, in date order; what is left over is **credit**. A succeeded refund takes back
  first from credit, then from the latest paid charges. A failed charge is an **attempt**
  on the earliest charge not paid in full when it was made, if that charge was due by
  then (its billing date on or before the attempt's local day); else on none.
- Hence, exactly: ``due - collected + refunded == outstanding - credit``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import attrs

from smilepass_core.domain._fields import identifier
from smilepass_core.domain.discounts import (
    AppliedDiscount,
    DiscountBasis,
    PriceDue,
    price_due,
)
from smilepass_core.domain.members import Member, MembershipStatus
from smilepass_core.domain.payments import Payment, PaymentKind, PaymentOutcome
from smilepass_core.domain.practices import MembershipPlan, Practice
from smilepass_core.errors import CurrencyMismatch, InvalidValue, RuleViolation, SmilepassError
from smilepass_core.money import Money
from smilepass_core.periods import (
    SUPPORTED_YEARS,
    as_instant,
    check_year,
    local_day,
    local_midnight,
)

__all__ = [
    "BILLABLE",
    "BillingStatement",
    "DunningAction",
    "DunningPolicy",
    "DunningStep",
    "ExpectedCharge",
    "billing_dates",
    "billing_statement",
    "bills_alike",
    "check_member_repriced",
    "check_membership_charge",
    "check_reprice",
    "check_timezone_kept",
    "dunning_actions",
    "first_rebilled_day",
    "price_at",
    "price_due_at",
    "priced_dates",
    "replay_order",
]

#: The statuses in which a billing date falls due.
BILLABLE = frozenset({MembershipStatus.PENDING, MembershipStatus.ACTIVE, MembershipStatus.FAILED})
#: The most billing dates one statement lists (a weekly plan over 200 years): the work of
#: a statement stays bounded whatever ``at`` a caller passes.
_MAX_DATES = 200 * 53


@attrs.frozen
class ExpectedCharge:
    """One billing date that fell due: the ``number``-th of the contract (0 at sign-up),
    its amount, what was paid into it and by which charges, and the failed attempts."""

    number: int
    due_date: date
    amount: Money
    paid: Money
    payments: tuple[str, ...] = ()
    attempts: tuple[str, ...] = ()

    @property
    def outstanding(self) -> Money:
        """What is still unpaid of it."""
        return self.amount - self.paid

    @property
    def settled(self) -> bool:
        """Paid in full."""
        return self.paid == self.amount


@attrs.frozen
class BillingStatement:
    """A member's charges due up to ``at`` and how the ledger settled them."""

    member_id: str
    at: datetime
    charges: tuple[ExpectedCharge, ...]
    collected: Money
    refunded: Money
    credit: Money
    next_charge_date: date | None

    @property
    def due(self) -> Money:
        """The sum of the charges due."""
        return sum((c.amount for c in self.charges), Money.zero(self.collected.currency))

    @property
    def outstanding(self) -> Money:
        """What is unpaid of the charges due (credit not subtracted)."""
        zero = Money.zero(self.collected.currency)
        return sum((c.outstanding for c in self.charges if not c.settled), zero)

    @property
    def unsettled(self) -> tuple[ExpectedCharge, ...]:
        """The charges not paid in full, oldest first."""
        return tuple(c for c in self.charges if not c.settled)


def replay_order(payment: Payment) -> tuple[datetime, bool, str]:
    """The order a ledger is read in: by time, charges before refunds at one instant, then
    by id (the order a store's load adds entries in)."""
    return (payment.at, payment.kind is PaymentKind.REFUND, payment.id)


def billing_dates(
    member: Member,
    plan: MembershipPlan,
    *,
    through: date,
    timezone: str | None = None,
    plans: Mapping[str, MembershipPlan] | None = None,
) -> list[date]:
    """The contract's billing dates on or before the local day ``through`` (see the module).

    ``timezone`` and ``plans`` (the plans the member was on before, by id) are needed only
    for a member who changed plan: a change to a plan of another cycle re-anchors the dates.

    Raises:
        InvalidValue: more than 200 years of weekly dates (field ``at``); a member who
            changed plan without ``timezone``, or without a plan they were on in ``plans``.
    """
    return [day for day, _ in _schedule(member, plan, plans, timezone, through)[0]]


def _schedule(
    member: Member,
    plan: MembershipPlan,
    plans: Mapping[str, MembershipPlan] | None,
    timezone: str | None,
    through: date,
) -> tuple[list[tuple[date, MembershipPlan]], date]:
    """The billing dates on or before ``through``, each with the plan it is charged at (the
    one in force as its local day starts), and the first date after ``through``.

    Each date is the ``k``-th of its cycle from an anchor: the start date, then each date
    on which the plan in force bills on another cycle than the dates before it and the
    membership is billable (a date passed while Suspended starts no cycle)."""
    if member.plan_changes and timezone is None:
        raise InvalidValue(
            "timezone", None, f"is needed: member {member.id} changed plan (pass timezone=...)"
        )
    anchor, k = member.start_date, 0
    then = plan_on(member, plan, plans, anchor, timezone or "UTC")
    cycle = then.billing_cycle
    dates: list[tuple[date, MembershipPlan]] = []
    while True:
        day = cycle.nth(anchor, k)
        if member.plan_changes:
            then = plan_on(member, plan, plans, day, timezone or "UTC")
            if then.billing_cycle is not cycle and _billable(member, day, timezone or "UTC"):
                anchor, k, cycle = day, 0, then.billing_cycle  # the change takes effect
        if day > through:
            return dates, day
        if len(dates) == _MAX_DATES:
            raise InvalidValue("at", through, f"more than {_MAX_DATES} billing dates before it")
        dates.append((day, then))
        k += 1


def _minors(amounts: list[Money]) -> list[int]:
    """Each amount in minor units, read once per run of the same object (a plan's price
    is one object on every date it holds)."""
    minors: list[int] = []
    last: Money | None = None
    minor = 0
    for amount in amounts:
        if amount is not last:
            last, minor = amount, amount.minor
        minors.append(minor)
    return minors


def _require_plan(member: Member, plan: MembershipPlan) -> None:
    """Raise :class:`InvalidValue` (field ``plan``) unless ``plan`` is the member's plan."""
    if plan.id != member.plan_id:
        raise InvalidValue("plan", plan.id, f"is not member {member.id!r}'s plan {member.plan_id}")


def _always_billable(member: Member) -> bool:
    """No status of ``member``'s history stops billing: :func:`_billable` on every day."""
    return all(c.to in BILLABLE for c in member.history)


def _billable(member: Member, day: date, timezone: str) -> bool:
    """Billable at some instant of local ``day``: at its start, or by a change during it."""
    start = local_midnight(day, timezone)
    status = member.status_before(start)
    if status is None or status in BILLABLE:
        return True
    end = local_midnight(day + timedelta(days=1), timezone)
    return any(start <= c.at < end and c.to in BILLABLE for c in member.history)


def _grants_on(
    member: Member, grants: tuple[AppliedDiscount, ...], day: date, timezone: str
) -> tuple[AppliedDiscount, ...]:
    """``grants`` as billing date ``day`` reads them, as the day starts: a per-dependent
    grant's units moved by the dependents added since the enrolment less those removed, a
    per-referral grant's by the referrals credited (never below 0 units)."""
    if not member.dependent_changes and not member.referral_rewards:
        return grants
    start = local_midnight(day, timezone)
    moved = {
        DiscountBasis.PER_DEPENDENT: sum(
            1 if c.added else -1 for c in member.dependent_changes if c.at < start
        ),
        DiscountBasis.PER_REFERRAL: member.rewards_before(start),
    }
    return tuple(
        attrs.evolve(g, units=max(0, g.units + moved[g.discount.basis]))
        if moved.get(g.discount.basis)
        else g
        for g in grants
    )


def billing_statement(
    member: Member,
    plan: MembershipPlan,
    payments: Iterable[Payment],
    *,
    at: datetime,
    timezone: str,
    discounts: Iterable[AppliedDiscount] | None = None,
    plans: Mapping[str, MembershipPlan] | None = None,
) -> BillingStatement:
    """The charges ``member`` owed up to ``at`` and what settled them (see the module).

    Args:
        member: The member.
        plan: Their membership plan (its cycle, and its price on each billing date:
            :meth:`~smilepass_core.domain.MembershipPlan.price_on`).
        payments: Ledger entries; only the member's own, stamped at or before ``at``, count.
        at: The instant judged.
        timezone: The practice's time zone (billing dates are its local days).
        discounts: The discounts granted to the membership (``None``: the member's own,
            :attr:`Member.discounts <smilepass_core.domain.Member.discounts>`): each
            charge's amount is its billing date's
            :func:`~smilepass_core.domain.discounts.price_due`.
        plans: The plans the member was on before (by id), needed when they changed plan:
            a billing date is charged at the plan in force as its local day starts.

    Raises:
        InvalidValue: ``plan`` is not the member's plan, or ``plans`` lacks a plan the
            member was on.
        CurrencyMismatch: a payment in another currency than the plan's price (field
            ``amount``), or an earlier plan priced in another currency (field ``plans``).
        RuleViolation: a refund larger than what was collected (a ledger breaking its
            rule).
    """
    when, rows, collected, refunded, credit, following = _settled(
        member, plan, payments, at, timezone, discounts, plans
    )
    return BillingStatement(
        member.id,
        when,
        tuple(ExpectedCharge(*row) for row in rows),
        _money(collected, plan.price.currency),
        _money(refunded, plan.price.currency),
        _money(credit, plan.price.currency),
        _next_date(member, when, following),
    )


#: One billing date that fell due, settled: :class:`ExpectedCharge`'s fields in order.
_Row = tuple[int, date, Money, Money, tuple[str, ...], tuple[str, ...]]


def _money(minor: int, currency: str) -> Money:
    return Money.zero(currency) if minor == 0 else Money.from_minor(minor, currency)


def _settled(
    member: Member,
    plan: MembershipPlan,
    payments: Iterable[Payment],
    at: datetime,
    timezone: str,
    discounts: Iterable[AppliedDiscount] | None,
    plans: Mapping[str, MembershipPlan] | None,
) -> tuple[datetime, list[_Row], int, int, int, date]:
    """:func:`billing_statement` at ``at`` as parts: the instant judged, the charges as
    rows, what was collected, refunded and left as credit (in minor units), and the first
    billing date after its local day."""
    _require_plan(member, plan)
    when = as_instant(at)
    dates, following = _schedule(member, plan, plans, timezone, local_day(when, timezone))
    always = _always_billable(member)
    if always:  # ``_billable`` is not asked: refuse what it would refuse
        outside = [d for d, _ in dates if d.year not in SUPPORTED_YEARS]
        if outside:
            check_year(outside[0], "day")
    billed = [
        (k, d, p) for k, (d, p) in enumerate(dates) if always or _billable(member, d, timezone)
    ]
    due = [d for _, d, _ in billed]
    grants = member.discounts if discounts is None else tuple(discounts)
    amounts = [
        price_due(p, k, _grants_on(member, grants, d, timezone), on=d).due
        if grants
        else p.price_on(d)
        for k, d, p in billed
    ]
    # Settled in integer minor units (exact, and without a Money object per step).
    currency = plan.price.currency
    for a in amounts:
        if a.currency != currency:
            raise CurrencyMismatch(currency, a.currency, "bill", field="plans")
    owed = _minors(amounts)
    paid = [0] * len(due)
    paid_by: list[list[str]] = [[] for _ in due]
    tried: list[list[str]] = [[] for _ in due]
    collected = refunded = credit = 0
    mine = sorted(
        (p for p in payments if p.member_id == member.id and p.at <= when),
        key=replay_order,
    )
    for payment in mine:
        first_open = next((i for i, p in enumerate(paid) if p != owed[i]), None)
        if payment.kind is PaymentKind.CHARGE and payment.outcome is PaymentOutcome.FAILED:
            # An attempt at a charge already due when it was made (not a later date's).
            if first_open is not None and due[first_open] <= local_day(payment.at, timezone):
                tried[first_open].append(payment.id)
            continue
        if payment.outcome is not PaymentOutcome.SUCCEEDED:
            continue
        if payment.amount.currency != currency:
            raise CurrencyMismatch(currency, payment.amount.currency, "settle", field="amount")
        amount = payment.amount.minor
        if payment.kind is PaymentKind.CHARGE:
            collected += amount
            for i in range(first_open if first_open is not None else len(due), len(due)):
                if amount == 0:
                    break
                part = min(amount, owed[i] - paid[i])
                if part > 0:
                    paid[i] += part
                    paid_by[i].append(payment.id)
                    amount -= part
            credit += amount
            continue
        refunded += amount
        back = min(amount, credit)
        credit -= back
        amount -= back
        for i in reversed(range(len(due))):
            back = min(amount, paid[i])
            paid[i] -= back
            amount -= back
        if amount > 0:
            raise RuleViolation(
                "refund_above_collected",
                f"refund {payment.id!r} of {payment.amount} exceeds what member "
                f"{member.id!r} paid before it",
                field="amount",
            )

    rows = [
        (
            k,
            d,
            amounts[i],
            amounts[i] if paid[i] == owed[i] else _money(paid[i], currency),
            tuple(paid_by[i]),
            tuple(tried[i]),
        )
        for i, (k, d, _) in enumerate(billed)
    ]
    return when, rows, collected, refunded, credit, following


def price_due_at(
    member: Member,
    plan: MembershipPlan,
    *,
    at: datetime,
    timezone: str,
    discounts: Iterable[AppliedDiscount] | None = None,
    plans: Mapping[str, MembershipPlan] | None = None,
) -> Money:
    """The price due of the newest billing date due at ``at`` (the amount of the last
    charge of :func:`billing_statement` at ``at``), or of the first billing date when none
    is due yet; read from the contract alone, without the ledger.

    Args and Raises: as for :func:`billing_statement`.

    >>> from datetime import UTC
    >>> from smilepass_core.domain import BillingCycle, Patient
    >>> gold = MembershipPlan("g", "p", "Gold", Money.of("30.00", "AUD"), BillingCycle.MONTHLY)
    >>> dearer = gold.reprice(Money.of("40.00", "AUD"), on=date(2026, 2, 10))
    >>> jo = Member.enrol(id="m", practice_id="p", plan_id="g", account_holder=Patient("jo", "Jo"),
    ...                   start_date=date(2026, 1, 1), at=datetime(2026, 1, 1, tzinfo=UTC))
    >>> [str(price_due_at(jo, dearer, at=datetime(2026, m, 20, tzinfo=UTC), timezone="UTC"))
    ...  for m in (1, 2, 3)]
    ['AUD 30.00', 'AUD 30.00', 'AUD 40.00']
    """
    return price_at(member, plan, at=at, timezone=timezone, discounts=discounts, plans=plans).due


def price_at(
    member: Member,
    plan: MembershipPlan,
    *,
    at: datetime,
    timezone: str,
    discounts: Iterable[AppliedDiscount] | None = None,
    plans: Mapping[str, MembershipPlan] | None = None,
) -> PriceDue:
    """The member's price at ``at``: the breakdown (list price, each discount's reduction,
    price due) of the newest billing date due at ``at``, or of the first billing date
    when none is due yet. Once a date is due, a plan or dependent change or a referral
    reward stamped after ``at`` does not change it (before the first date, that date's
    price is read as it will be; a discount granted later changes it if it reaches back,
    which a store refuses over a date already charged: ``reprice_backdated``).

    Args and Raises: as for :func:`billing_statement`.
    """
    _require_plan(member, plan)
    grants = member.discounts if discounts is None else tuple(discounts)
    dates, _ = _schedule(member, plan, plans, timezone, local_day(as_instant(at), timezone))
    newest = (k for k in reversed(range(len(dates))) if _billable(member, dates[k][0], timezone))
    number = next(newest, None)
    if number is None:  # none due yet: the first date's
        first = plan_on(member, plan, plans, member.start_date, timezone)
        start = _grants_on(member, grants, member.start_date, timezone)
        return price_due(first, 0, start, on=member.start_date)
    day, then = dates[number]
    return price_due(then, number, _grants_on(member, grants, day, timezone), on=day)


def priced_dates(
    member: Member,
    plan: MembershipPlan,
    *,
    at: datetime,
    timezone: str,
    plans: Mapping[str, MembershipPlan] | None = None,
) -> tuple[tuple[int, date, PriceDue], ...]:
    """The billing dates due at ``at`` (those of :func:`billing_statement`), each with its
    number and its price breakdown: the list price, each of the member's discounts'
    reduction, the price due (:func:`~smilepass_core.domain.discounts.price_due`).

    Args and Raises: as for :func:`billing_statement`.
    """
    _require_plan(member, plan)
    dates, _ = _schedule(member, plan, plans, timezone, local_day(as_instant(at), timezone))
    return tuple(
        (k, d, price_due(p, k, _grants_on(member, member.discounts, d, timezone), on=d))
        for k, (d, p) in enumerate(dates)
        if _billable(member, d, timezone)
    )


def check_reprice(
    before: MembershipPlan,
    after: MembershipPlan,
    members: Iterable[Member],
    payments: Iterable[Payment],
    *,
    timezone: str,
    plans: Mapping[str, MembershipPlan],
) -> None:
    """Raise unless saving ``after`` over ``before`` keeps every billing date a member was
    charged up to, as it was: for each member ever on the plan, the billing dates due at
    their last recorded membership charge (succeeded or failed), each with its day,
    number and price due (:func:`billing_statement`; the first date when none is due yet,
    for a charge ahead of it), are the same with ``after`` as with ``before``. So a
    reprice takes effect after the dates already charged, never back over them, and a
    new cycle may not move, add or drop a charged-up-to date.

    Args:
        before: The plan as kept.
        after: The plan about to be saved.
        members: Members of the plan's practice (those never on the plan, or without a
            charge, are skipped; so is a member whose current plan is not in ``plans``,
            which a host's store checks on its own).
        payments: Their ledger entries (refunds, and others' entries, are skipped).
        timezone: The practice's time zone.
        plans: The practice's membership plans by id, as kept (``after`` replaces
            ``before`` among them).

    Raises:
        RuleViolation: ``reprice_backdated`` (field ``earlier_prices``), naming the
            member, their last charge and the first billing date that differs, before
            and after.
    """
    terms = (before.price, before.earlier_prices, before.billing_cycle)
    if terms == (after.price, after.earlier_prices, after.billing_cycle):
        return
    kept, saved = {**plans, before.id: before}, {**plans, after.id: after}
    last: dict[str, Payment] = {}
    for payment in payments:
        if payment.kind is PaymentKind.CHARGE and payment.member_id is not None:
            seen = last.get(payment.member_id)
            if seen is None or replay_order(payment) > replay_order(seen):
                last[payment.member_id] = payment
    for member in members:
        was_on = {member.first_plan_id, member.plan_id, *(c.to_plan for c in member.plan_changes)}
        charge = last.get(member.id)
        if after.id not in was_on or charge is None or member.plan_id not in plans:
            continue
        old, new = (
            _charged_up_to(member, catalogue, charge.at, timezone) for catalogue in (kept, saved)
        )
        if old != new:
            raise RuleViolation(
                "reprice_backdated",
                f"plan {after.id} changes a billing date member {member.id} was charged up"
                f" to (last charge {charge.id}): {_first_difference(old, new)}; reprice from"
                " a later date",
                field="earlier_prices",
                payment_id=charge.id,
            )


def check_member_repriced(
    before: Member,
    after: Member,
    payments: Iterable[Payment],
    *,
    timezone: str,
    plans: Mapping[str, MembershipPlan],
) -> None:
    """Raise unless saving member ``after`` over ``before`` keeps every billing date they
    were charged up to, as :func:`check_reprice` reads it for a plan: a discount granted
    or a plan change recorded takes effect after the dates due at their last recorded
    membership charge (succeeded or failed), never back over them (with a new history
    too, the new terms are judged as if that history were kept first). A save that
    changes the status history so that it bills some day otherwise (not
    :func:`bills_alike`), or rewrites the start date or the plan (not by
    ``change_plan``), keeps every recorded membership charge of an amount the charge rule
    allows at its instant (:func:`check_charge_amount`, read with the saved member and
    the member's entries before it), as a store's load checks it: a status change
    stamped back before a charge, or later on the charge's local day, may add or skip
    billing dates, but not leave a charge of an amount no longer due (the charges from
    :func:`first_rebilled_day` on are read).

    Args:
        before: The member as kept.
        after: The member about to be saved.
        payments: Ledger entries (others than the member's charges are skipped).
        timezone: Their practice's time zone.
        plans: Their practice's membership plans by id (a member whose plan is not among
            them is left to the host's store).

    Raises:
        RuleViolation: ``reprice_backdated`` (field ``discounts``, ``plan_changes``,
            ``dependent_changes`` or ``referral_rewards``), naming the member, their last
            charge and the first billing date that differs, before and after; or (field
            ``history``, ``start_date`` or ``plan_id``) naming the charge, its amount and
            what the saved member allows.
    """
    terms_kept = before.billing_terms == after.billing_terms
    rewritten = next(
        (f for f in ("start_date", "plan_id") if getattr(before, f) != getattr(after, f)), None
    )
    moved = not bills_alike(before, after)
    if terms_kept and rewritten is None and not moved:
        return
    entries = [p for p in payments if p.member_id == after.id]
    mine = [p for p in entries if p.kind is PaymentKind.CHARGE]
    if not mine or before.plan_id not in plans or after.plan_id not in plans:
        return
    if not terms_kept:
        # The new terms as if the new history were kept first (so a save of both is
        # kept as the two saves in that order would be); the history is judged below.
        kept = before if not moved else _with_history(before, after)
        _check_terms_kept(kept, after, max(mine, key=replay_order), timezone, plans)
    if rewritten is not None or moved:
        since = None
        if rewritten is None and terms_kept:
            since = first_rebilled_day(before, after, timezone)
        field = rewritten or "history"
        _check_charges_kept(
            after,
            entries,
            since,
            field=field,
            subject=f"member {after.id}'s save ({field})",
            timezone=timezone,
            plans=plans,
        )


def bills_alike(before: Member, after: Member) -> bool:
    """Whether ``after``'s status history bills every day as ``before``'s does: the same, or
    extended only by changes from a billable status to a billable one (Pending, Active,
    Failed), such as a failed charge's move to Failed. A day is billed when the member is
    billable at some instant of it, so such changes bill no day more or less."""
    n = len(before.history)
    if tuple(after.history[:n]) != tuple(before.history):
        return False
    status = before.history[-1].to if n else None
    for change in after.history[n:]:
        if (status is not None and status not in BILLABLE) or change.to not in BILLABLE:
            return False
        status = change.to
    return True


def _with_history(member: Member, saved: Member) -> Member:
    """``member`` with ``saved``'s status history (``member`` itself when that copy breaks
    a rule of its own)."""
    try:
        return attrs.evolve(member, history=saved.history)
    except (SmilepassError, ValueError):
        return member


def _check_terms_kept(
    before: Member,
    after: Member,
    charge: Payment,
    timezone: str,
    plans: Mapping[str, MembershipPlan],
) -> None:
    """:func:`check_member_repriced`'s rule for new billing terms: the billing dates due
    at the member's last charge ``charge`` are the same with ``after`` as with ``before``."""
    old = _charged_up_to(before, plans, charge.at, timezone)
    new = _charged_up_to(after, plans, charge.at, timezone)
    if old != new:
        # Named by what moved a price: a change or reward before a grant made with it
        # (``reward_referrer`` grants its discount with no units).
        what = next(
            name
            for name in ("plan_changes", "dependent_changes", "referral_rewards", "discounts")
            if getattr(before, name) != getattr(after, name)
        )
        advice = _REPRICE_ADVICE.get(
            what, "grant a discount from a later billing date (first=), or change plan after"
            " the last charge"
        )  # fmt: skip
        raise RuleViolation(
            "reprice_backdated",
            f"member {after.id}'s save changes a billing date they were charged up to (last"
            f" charge {charge.id}): {_first_difference(old, new)}; {advice}",
            field=what,
            payment_id=charge.id,
        )


def first_rebilled_day(before: Member, after: Member, timezone: str) -> datetime:
    """The first instant (in UTC) of the first local day the two histories may bill
    otherwise: a day is billed when the member is billable as it starts or moves to a
    billable status during it, so a status change that differs touches its own day when
    it is to a billable status (Pending, Active, Failed), else only the days after it;
    the earliest over the changes that differ. Charges stamped before that instant are
    priced as they were."""
    pairs = enumerate(zip(before.history, after.history, strict=False))
    i = next((i for i, (a, b) in pairs if a != b), min(len(before.history), len(after.history)))
    first = min(
        local_day(change.at, timezone) + timedelta(days=0 if change.to in BILLABLE else 1)
        for change in (*before.history[i:], *after.history[i:])
    )
    if first.year > SUPPORTED_YEARS[-1]:  # no charge falls on a local day in 2201
        return datetime.max.replace(tzinfo=UTC)
    if first.year < SUPPORTED_YEARS[0]:  # a change on 31 December 1899, local: every one
        return datetime.min.replace(tzinfo=UTC)
    return local_midnight(first, timezone)


def _check_charges_kept(
    member: Member,
    entries: list[Payment],
    since: datetime | None,
    *,
    field: str,
    subject: str,
    timezone: str,
    plans: Mapping[str, MembershipPlan],
) -> None:
    """Raise unless each of ``member``'s charges among ``entries`` (their ledger entries)
    stamped at or after ``since`` (all when ``None``) is of an amount the charge rule
    allows, read with ``member`` in ``timezone``: ``reprice_backdated`` naming ``field``,
    what saved it (``subject``) and the charge."""
    entries = sorted(entries, key=replay_order)
    plan = plans[member.plan_id]
    for k, charge in enumerate(entries):
        if charge.kind is not PaymentKind.CHARGE or (since is not None and charge.at < since):
            continue
        try:
            check_charge_amount(member, plan, entries[:k], charge, timezone=timezone, plans=plans)
        except RuleViolation as wrong:
            raise RuleViolation(
                "reprice_backdated",
                f"{subject} reprices a charge already recorded ({wrong}); {_REWRITE_ADVICE[field]}",
                field=field,
                payment_id=charge.id,
            ) from wrong


def check_timezone_kept(
    practice: Practice,
    members: Iterable[Member],
    payments: Iterable[Payment],
    *,
    plans: Mapping[str, MembershipPlan],
) -> None:
    """Raise unless, with ``practice`` saved in its time zone, every recorded membership
    charge of its members is still of an amount the charge rule allows at its instant
    (:func:`check_charge_amount`, as a store's load checks it): another time zone moves
    every local day, and so the billing dates due at a charge.

    Args:
        practice: The practice about to be saved.
        members: Its members (those without a charge, or whose plan is not in ``plans``,
            are skipped).
        payments: Their ledger entries (others are skipped).
        plans: The practice's membership plans by id.

    Raises:
        RuleViolation: ``reprice_backdated`` (field ``timezone``), naming the member's
            charge, its amount and what the new time zone allows.
    """
    entries: dict[str, list[Payment]] = {}
    for payment in payments:
        if payment.member_id is not None:
            entries.setdefault(payment.member_id, []).append(payment)
    subject = f"practice {practice.id}'s time zone {practice.timezone}"
    for member in members:
        mine = entries.get(member.id)
        if mine and member.plan_id in plans:
            _check_charges_kept(
                member,
                mine,
                None,
                field="timezone",
                subject=subject,
                timezone=practice.timezone,
                plans=plans,
            )


#: What a refused save that reprices a recorded charge should do instead, by what moved.
_REWRITE_ADVICE = {
    "history": "stamp the status change on a local day after the charge's",
    "start_date": "keep the start date of a member already charged",
    "plan_id": "move the member with change_plan after the charge",
    "timezone": "a practice keeps the time zone its recorded charges were priced in",
}


#: What a refused member save should do instead, by the field that moved a price.
_REPRICE_ADVICE = {
    "dependent_changes": "stamp the dependent change after the last charge",
    "referral_rewards": "credit the referral after the last charge (reward_referrer(at=...))",
}


def _first_difference(
    old: list[tuple[date, int, Money]], new: list[tuple[date, int, Money]]
) -> str:
    """The first billing date that differs, before and after (``"no billing date"`` where
    one list is shorter)."""
    pairs = enumerate(zip(old, new, strict=False))
    i = next((i for i, (a, b) in pairs if a != b), min(len(old), len(new)))
    was = f"{old[i][0]} at {old[i][2]}" if i < len(old) else "no billing date"
    now = f"{new[i][0]} at {new[i][2]}" if i < len(new) else "no billing date"
    return f"{was}, now {now}"


def _charged_up_to(
    member: Member, plans: Mapping[str, MembershipPlan], at: datetime, timezone: str
) -> list[tuple[date, int, Money]]:
    """The billing dates due at ``at`` (day, number, price due), or, when none is yet (a
    charge ahead of the first), the first date with its price due."""
    plan = plans[member.plan_id]
    due = billing_statement(member, plan, [], at=at, timezone=timezone, plans=plans).charges
    if due:
        return [(c.due_date, c.number, c.amount) for c in due]
    first = plan_on(member, plan, plans, member.start_date, timezone)
    grants = _grants_on(member, member.discounts, member.start_date, timezone)
    return [(member.start_date, 0, price_due(first, 0, grants, on=member.start_date).due)]


def plan_on(
    member: Member,
    plan: MembershipPlan,
    plans: Mapping[str, MembershipPlan] | None,
    day: date,
    timezone: str,
) -> MembershipPlan:
    """The plan billing date ``day`` is charged at: the one in force as its local day starts
    (``plan`` unless the member changed plan; the others are looked up in ``plans``).

    Raises:
        InvalidValue: the plan then is not in ``plans``.
    """
    if not member.plan_changes:
        return plan
    plan_id = member.plan_before(local_midnight(day, timezone))
    if plan_id == plan.id:
        return plan
    found = (plans or {}).get(plan_id)
    if found is None:
        raise InvalidValue(
            "plans", plan_id, f"is needed: member {member.id} was on it (pass plans=...)"
        )
    return found


def _next_date(member: Member, at: datetime, following: date) -> date | None:
    """``following`` (the first billing date after ``at``'s local day), unless the
    membership is Suspended or Cancelled at ``at`` (then no next charge is scheduled)."""
    status = member.status_at(at)
    if status is not None and status not in BILLABLE:
        return None
    return following


# -- dunning ------------------------------------------------------------------------------


class DunningStep(enum.Enum):
    """What the policy asks the host to do."""

    CHARGE = "charge"  # a due charge was never attempted
    RETRY = "retry"  # a failed charge's next retry
    REMIND = "remind"  # send the member a reminder with a pay link
    SUSPEND = "suspend"
    CANCEL = "cancel"


def _offsets(value: Any) -> tuple[int, ...]:
    days = tuple(value)
    if any(type(d) is not int or d < 0 for d in days) or list(days) != sorted(set(days)):
        raise InvalidValue("days", value, "must be strictly increasing whole days >= 0")
    return days


def _optional_days(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (type(value) is not int or value < 1):
        raise InvalidValue(attribute.name, value, "must be a whole number of days >= 1, or None")


@attrs.frozen
class DunningPolicy:
    """How a practice chases an unpaid membership charge, counted in local days from the
    day the charge first failed: retries, reminders with a pay link, then Suspend and
    Cancel (``None``: never). The default is the manual's process as this library reads
    it: retries 1, 3 and 7 days after the failure, a reminder the day it fails and 3 and 7
    days after, Suspend after 14 days, Cancel after 30."""

    retry_days: tuple[int, ...] = attrs.field(default=(1, 3, 7), converter=_offsets)
    reminder_days: tuple[int, ...] = attrs.field(default=(0, 3, 7), converter=_offsets)
    suspend_after_days: int | None = attrs.field(default=14, validator=_optional_days)
    cancel_after_days: int | None = attrs.field(default=30, validator=_optional_days)

    def __attrs_post_init__(self) -> None:
        s, c = self.suspend_after_days, self.cancel_after_days
        if s is not None and c is not None and c <= s:
            raise InvalidValue("cancel_after_days", c, f"must come after suspend_after_days {s}")


@attrs.frozen
class DunningAction:
    """One thing to do now: the step, since when it has been due, why, the charge it is
    about (by number: the oldest unpaid one; ``None`` for Suspend and Cancel), the
    amount to collect (a charge or retry: every unpaid due charge), the step's
    stage (which retry or reminder) and a reminder's pay link."""

    member_id: str = attrs.field(validator=identifier)
    step: DunningStep
    due_at: datetime
    reason: str
    charge: int | None = None
    stage: int | None = None
    amount: Money | None = None
    pay_link: str | None = None

    @property
    def key(self) -> str:
        """Identifies the action: a host records the keys of the reminders it sent and
        passes them back (``sent=``)."""
        parts = [self.step.value, self.member_id]
        parts += [str(v) for v in (self.charge, self.stage) if v is not None]
        return ":".join(parts)


def dunning_actions(
    member: Member,
    plan: MembershipPlan,
    payments: Iterable[Payment],
    *,
    at: datetime,
    timezone: str,
    policy: DunningPolicy | None = None,
    sent: Iterable[str] = (),
    pay_link: Callable[[str], str] | None = None,
    discounts: Iterable[AppliedDiscount] | None = None,
    plans: Mapping[str, MembershipPlan] | None = None,
) -> tuple[DunningAction, ...]:
    """The actions due at ``at`` for ``member``'s unpaid charges under ``policy``.

    The member's unpaid due charges are chased together, from the oldest (``O``):

    - **Charge**: no failed attempt was made on ``O`` yet, and no attempt since the
      latest unpaid billing date began: collect what is owed.
    - After ``O`` first failed on local day ``F``: **Retry** at the latest retry step
      with ``F + days`` on or before today, unless an attempt was made since that day
      began (or, past the last retry, a Charge when a newer billing date fell due
      and was not attempted); **Remind**, with a pay link, at the latest reminder step,
      unless its key is in ``sent``; **Suspend** an Active or Failed membership from
      ``F + suspend_after_days``; **Cancel** from ``F + cancel_after_days`` (then the only
      action).
    - A Suspended membership gets neither charges, retries nor reminders; a Cancelled
      one nothing.

    Applying the actions (an attempt for a Charge or Retry, each reminder's key added to
    ``sent``, the Suspend or Cancel made) and asking again at the same ``at`` returns none
    of them again; only a charge that first failed at that attempt brings its first
    reminder, and a third time nothing is due.

    Args:
        member: The member (as recorded; their status at ``at`` counts).
        plan: Their membership plan.
        payments: Ledger entries; only the member's own, stamped at or before ``at``.
        at: The instant the host runs the policy.
        timezone: The practice's time zone (days count in it).
        policy: The practice's policy (the default: :class:`DunningPolicy`).
        sent: Keys of the reminders already sent.
        pay_link: Makes a reminder's pay link from its key (the host's token source;
            the library makes no secrets).
        discounts: As for :func:`billing_statement`.
        plans: As for :func:`billing_statement`.
    """
    rules = policy or DunningPolicy()
    when = as_instant(at)
    today = local_day(when, timezone)
    status = member.status_at(when)
    if status is MembershipStatus.CANCELLED:
        return ()
    ledger = [p for p in payments if p.member_id == member.id and p.at <= when]
    statement = billing_statement(
        member, plan, ledger, at=when, timezone=timezone, discounts=discounts, plans=plans
    )
    unpaid = statement.unsettled
    if not unpaid or (status is MembershipStatus.SUSPENDED and not unpaid[0].attempts):
        return ()
    # Credit is left only once every due charge is paid: nothing to take off here.
    oldest, owed = unpaid[0], statement.outstanding
    attempted = [p.at for p in ledger if p.kind is PaymentKind.CHARGE]
    failures = sorted(p.at for p in ledger if p.id in oldest.attempts)
    newest = local_midnight(unpaid[-1].due_date, timezone)
    actions: list[DunningAction] = []
    if not failures:
        if status is not MembershipStatus.SUSPENDED and not any(t >= newest for t in attempted):
            actions.append(
                DunningAction(
                    member.id,
                    DunningStep.CHARGE,
                    newest,
                    f"billing date {unpaid[-1].due_date} not attempted",
                    oldest.number,
                    amount=owed,
                )
            )
        return tuple(actions)
    failed_on = local_day(failures[0], timezone)
    escalation = _escalation(member.id, status, failed_on, today, rules, timezone)
    if escalation is not None and escalation.step is DunningStep.CANCEL:
        return (escalation,)
    if status is not MembershipStatus.SUSPENDED:
        actions += _attempt(
            member.id, oldest.number, failed_on, newest, attempted, owed, rules, timezone, today
        )
        step = _latest(rules.reminder_days, failed_on, today)
        if step is not None:
            key = f"remind:{member.id}:{oldest.number}:{step}"
            if key not in set(sent):
                actions.append(
                    DunningAction(
                        member.id,
                        DunningStep.REMIND,
                        _day_after(failed_on, rules.reminder_days[step], timezone),
                        f"charge of {oldest.due_date} unpaid since {failed_on}; "
                        f"reminder {step + 1} of {len(rules.reminder_days)}",
                        oldest.number,
                        step,
                        owed,
                        pay_link(key) if pay_link is not None else None,
                    )
                )
    if escalation is not None:
        actions.append(escalation)
    return tuple(actions)


def _day_after(day: date, days: int, timezone: str) -> datetime:
    return local_midnight(day + timedelta(days=days), timezone)


def _attempt(
    member_id: str,
    number: int,
    failed_on: date,
    newest: datetime,
    attempted: list[datetime],
    owed: Money,
    rules: DunningPolicy,
    timezone: str,
    today: date,
) -> list[DunningAction]:
    """The retry due (or a charge for a newer billing date), unless an attempt since."""
    step = _latest(rules.retry_days, failed_on, today)
    last = max(attempted)
    if step is not None:
        since = _day_after(failed_on, rules.retry_days[step], timezone)
        if last < since:
            why = f"a charge failed on {failed_on}; retry {step + 1} of {len(rules.retry_days)}"
            return [DunningAction(member_id, DunningStep.RETRY, since, why, number, step, owed)]
    if last < newest:
        why = f"a billing date fell due at {newest:%Y-%m-%d %H:%M} UTC and was not attempted"
        return [DunningAction(member_id, DunningStep.CHARGE, newest, why, number, amount=owed)]
    return []


def _latest(days: tuple[int, ...], start: date, today: date) -> int | None:
    """The index of the last step with ``start + days`` on or before ``today``."""
    reached = [i for i, d in enumerate(days) if start + timedelta(days=d) <= today]
    return reached[-1] if reached else None


def _escalation(
    member_id: str,
    status: MembershipStatus | None,
    failed_on: date,
    today: date,
    rules: DunningPolicy,
    timezone: str,
) -> DunningAction | None:
    for step, days in (
        (DunningStep.CANCEL, rules.cancel_after_days),
        (DunningStep.SUSPEND, rules.suspend_after_days),
    ):
        if days is None or failed_on + timedelta(days=days) > today:
            continue
        if step is DunningStep.SUSPEND and status not in (
            MembershipStatus.ACTIVE,
            MembershipStatus.FAILED,
        ):
            continue
        since = local_midnight(failed_on + timedelta(days=days), timezone)
        return DunningAction(
            member_id, step, since, f"a charge unpaid {days} days since it failed on {failed_on}"
        )
    return None


# -- ledger rules ---------------------------------------------------------------------------


def check_charge_dates(member: Member, charge: Payment) -> None:
    """Raise unless a membership charge of ``member`` (succeeded or failed) falls on or
    after the enrolment and not after the cancellation; anything else (a refund, another
    source's entry) passes. The stores run it on every ledger ``add``.

    Raises:
        RuleViolation: ``charge_before_enrolment`` or ``charge_after_cancel``.
    """
    if charge.member_id == member.id:
        check_charge_window(
            charge, member.created_at, member.first_entered(MembershipStatus.CANCELLED)
        )


def check_cancel_after_charges(member: Member, ledger: Iterable[Payment]) -> None:
    """Raise unless ``member``'s cancellation, when it has one, is at or after each of its
    membership charges in ``ledger`` (entries of other sources are ignored): a member
    cannot be cancelled back to before a charge already recorded.

    Raises:
        RuleViolation: ``charge_after_cancel``, field ``history``, naming the latest charge.
    """
    cancelled = member.first_entered(MembershipStatus.CANCELLED)
    if cancelled is None:
        return
    later = [
        p
        for p in ledger
        if p.member_id == member.id and p.kind is PaymentKind.CHARGE and p.at > cancelled
    ]
    if later:
        last = max(later, key=lambda p: (p.at, p.id))
        raise RuleViolation(
            "charge_after_cancel",
            f"member {member.id} cancelled at {cancelled.isoformat()}, before charge "
            f"{last.id} already recorded at {last.at.isoformat()}: no charge may follow a "
            "cancellation",
            field="history",
            payment_id=last.id,
        )


def check_charge_window(charge: Payment, enrolled: datetime, cancelled: datetime | None) -> None:
    """:func:`check_charge_dates` from the member's enrolment and cancellation instants
    (``None``: never cancelled), as a store reads them."""
    if charge.kind is not PaymentKind.CHARGE or charge.member_id is None:
        return
    if charge.at < enrolled:
        raise RuleViolation(
            "charge_before_enrolment",
            f"charge {charge.id} at {charge.at.isoformat()} is before member "
            f"{charge.member_id} was enrolled ({enrolled.isoformat()})",
            field="at",
            payment_id=charge.id,
        )
    if cancelled is not None and charge.at > cancelled:
        raise RuleViolation(
            "charge_after_cancel",
            f"charge {charge.id} at {charge.at.isoformat()} is after member "
            f"{charge.member_id} was cancelled ({cancelled.isoformat()}): no further charges",
            field="at",
            payment_id=charge.id,
        )


def check_membership_charge(
    member: Member,
    plan: MembershipPlan,
    earlier: Iterable[Payment],
    charge: Payment,
    *,
    timezone: str,
    discounts: Iterable[AppliedDiscount] | None = None,
    plans: Mapping[str, MembershipPlan] | None = None,
) -> None:
    """Raise unless ``charge`` (succeeded or failed) is one the contract allows: on or after
    enrolment, not after the cancellation, and of the price due (the plan's price less the
    discounts in force on the newest billing date due) or of what is owed at its instant
    (the unpaid due charges less credit, when positive). A refund, or an entry for another
    source, always passes: a refund after Cancel stays allowed.

    Args:
        member: The member the charge is for.
        plan: Their membership plan.
        earlier: Ledger entries already recorded (others than the member's are ignored).
        charge: The entry about to be recorded.
        timezone: The practice's time zone.
        discounts: As for :func:`billing_statement`.
        plans: As for :func:`billing_statement`.

    Raises:
        RuleViolation: ``charge_before_enrolment``, ``charge_after_cancel`` or
            ``charge_amount`` (naming the amounts expected).
    """
    if charge.kind is not PaymentKind.CHARGE or charge.member_id != member.id:
        return
    check_charge_dates(member, charge)
    check_charge_amount(
        member, plan, earlier, charge, timezone=timezone, discounts=discounts, plans=plans
    )


def check_charge_amount(
    member: Member,
    plan: MembershipPlan,
    earlier: Iterable[Payment],
    charge: Payment,
    *,
    timezone: str,
    discounts: Iterable[AppliedDiscount] | None = None,
    plans: Mapping[str, MembershipPlan] | None = None,
) -> None:
    """:func:`check_membership_charge`'s amount rule alone, for a store that checks the
    dates with :func:`check_charge_window` from instants it keeps (a membership charge of
    ``member``; anything else passes).

    Raises:
        RuleViolation: ``charge_amount`` (naming the amounts expected).
    """
    if charge.kind is not PaymentKind.CHARGE or charge.member_id != member.id:
        return
    grants = member.discounts if discounts is None else tuple(discounts)
    if (
        charge.amount == plan.price
        and not grants
        and not member.plan_changes
        and not plan.earlier_prices
    ):
        return
    price = price_due_at(
        member, plan, at=charge.at, timezone=timezone, discounts=grants, plans=plans
    )
    if charge.amount == price:
        return
    statement = billing_statement(
        member, plan, earlier, at=charge.at, timezone=timezone, discounts=grants, plans=plans
    )
    owed = statement.outstanding - statement.credit
    if owed.is_positive() and charge.amount == owed:
        return
    expected = str(price) + (f" or the {owed} owed" if owed.is_positive() else "")
    raise RuleViolation(
        "charge_amount",
        f"charge {charge.id} of {charge.amount} for member {member.id}: expected {expected}",
        field="amount",
        payment_id=charge.id,
        expected=price,
        owed=owed,
    )
