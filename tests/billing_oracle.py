"""An independent reading of a membership's charges at an instant (docs/domain.md,
"Billing" and "Overdue"), for the query and report oracles: written from the
definitions, not from the library's billing code."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

from smilepass_core.domain import Member, MembershipPlan, MembershipStatus, Payment, PaymentKind
from smilepass_core.money import Money

BILLABLE = (MembershipStatus.PENDING, MembershipStatus.ACTIVE, MembershipStatus.FAILED)
DAY = timedelta(days=1)


def local(at: datetime, timezone: str) -> date:
    return at.astimezone(ZoneInfo(timezone)).date()


def status_then(member: Member, at: datetime, *, strictly: bool) -> MembershipStatus | None:
    """The status after every change before ``at`` (at or before, unless ``strictly``)."""
    status = None
    for change in member.history:
        if change.at < at or (not strictly and change.at == at):
            status = change.to
    return status


def overdue_from(due: date, failures: Iterable[datetime], timezone: str, grace: int) -> date:
    """The local day an unpaid charge due on ``due`` is overdue from: ``due + 1 + grace``,
    or the local day of a failed attempt at it plus ``grace`` when that is earlier."""
    days = [due + DAY, *(local(t, timezone) for t in failures)]
    return min(days) + timedelta(days=grace)


def reductions(
    plan: MembershipPlan, price: Money, number: int, member: Member, day: date, timezone: str
) -> dict[str, int]:
    """What each of the member's grants in force on billing date ``number`` (local ``day``)
    takes off ``price`` (minor units, by discount id, only those taking something), each
    cut to what is left: a percentage x units is rounded half up once, an amount x units
    taken as is; a flat grant counts at most once, the others at most their limit; a
    per-dependent grant's units moved by one for each dependent added (less one for each
    removed) before the day starts, never below 0; a per-referral grant's by one for each
    referral credited before it."""
    start = datetime.combine(day, datetime.min.time(), ZoneInfo(timezone))
    moved = sum(1 if c.added else -1 for c in member.dependent_changes if c.at < start)
    credited = sum(1 for r in member.referral_rewards if r.at < start)
    left, cuts = price.minor, {}
    for grant in member.discounts:
        rule = grant.discount
        ends = None if rule.cycles is None else grant.first + rule.cycles
        if number < grant.first or (ends is not None and number >= ends):
            continue
        if rule.practice_id != plan.practice_id or (
            rule.plans is not None and plan.id not in rule.plans
        ):
            continue
        units = grant.units
        if rule.basis.value == "per_dependent":
            units = max(0, units + moved)
        if rule.basis.value == "per_referral":
            units += credited
        if rule.basis.value == "flat":
            n = min(units, 1)
        else:
            n = units if rule.limit is None else min(units, rule.limit)
        if rule.amount is not None:
            cut = rule.amount.minor * n
        else:
            assert rule.percent is not None
            cut = math.floor(price.minor * Fraction(rule.percent) * n / 100 + Fraction(1, 2))
        if min(cut, left):
            cuts[rule.id] = min(cut, left)
        left -= min(cut, left)
    return cuts


def discounted(
    plan: MembershipPlan, price: Money, number: int, member: Member, day: date, timezone: str
) -> Money:
    """``price`` (plan's, billing date ``number`` on local ``day``) less the member's grants
    in force on it (:func:`reductions`)."""
    cuts = reductions(plan, price, number, member, day, timezone)
    return price - Money.from_minor(sum(cuts.values()), price.currency)


@dataclass
class Due:
    """A billing date due, its amount, what is unpaid of it, the failed attempts at it."""

    day: date
    amount: Money
    unpaid: Money
    failures: list[datetime] = field(default_factory=list)


def billed_dates(
    member: Member, catalogue: Mapping[str, MembershipPlan], today: date, timezone: str
) -> list[tuple[int, date, MembershipPlan, Money]]:
    """The billing dates on or before the local day ``today`` on which the member was
    billable at some instant of the local day (or had no status yet), each with its
    number, the plan in force as that day starts and that plan's list price on it. The
    contract's cycle runs from its start date; a move to a plan of another cycle starts
    that cycle on the first billed date of the old one after it."""
    zi = ZoneInfo(timezone)
    first = member.plan_changes[0].from_plan if member.plan_changes else member.plan_id

    def in_force(day: date) -> MembershipPlan:
        start = datetime.combine(day, datetime.min.time(), zi)
        earlier = [c.to_plan for c in member.plan_changes if c.at < start]
        return catalogue[earlier[-1] if earlier else first]

    def billable(day: date) -> bool:
        start = datetime.combine(day, datetime.min.time(), zi)
        end = datetime.combine(day + DAY, datetime.min.time(), zi)
        then = status_then(member, start, strictly=True)
        during = [c.to for c in member.history if start <= c.at < end]
        return then is None or then in BILLABLE or any(s in BILLABLE for s in during)

    billed = []
    anchor, j = member.start_date, 0  # the j-th date of the cycle in force from anchor
    for k in range(10_000):
        day = in_force(anchor).billing_cycle.nth(anchor, j)
        moved = in_force(day).billing_cycle is not in_force(anchor).billing_cycle
        if moved and billable(day):
            anchor, j = day, 0  # a move to another cycle starts it on this billed date
        j += 1
        if day > today:
            break
        if billable(day):
            then = in_force(day)
            later = [p.price for p in then.earlier_prices if day < p.until]
            billed.append((k, day, then, later[0] if later else then.price))
    return billed


def membership_dues(
    member: Member,
    catalogue: Mapping[str, MembershipPlan],
    ledger: Iterable[Payment],
    at: datetime,
    timezone: str,
) -> list[Due]:
    """The billing dates due by ``at``: the contract's cycle from its start date, each due
    when the member was billable at some instant of its local day (or had no status yet),
    priced at the plan in force as that day starts (its price on that day). The ledger
    stamped by ``at`` pays them in order: a date is paid once the net collected
    (succeeded charges less succeeded refunds) reaches the running sum of the amounts; a
    failed charge is an attempt on the first date not paid when it was made, if that date
    had come by the attempt's local day."""
    today = local(at, timezone)
    plan = catalogue[member.plan_id]
    dues = []
    for k, day, then, price in billed_dates(member, catalogue, today, timezone):
        amount = discounted(then, price, k, member, day, timezone)
        dues.append(Due(day, amount, amount))
    zero = Money.zero(plan.price.currency)
    ends, running = [], zero
    for d in dues:
        running += d.amount
        ends.append(running)
    net = zero
    mine = (p for p in ledger if p.member_id == member.id and p.at <= at)
    for p in sorted(mine, key=lambda p: (p.at, p.kind is PaymentKind.REFUND, p.id)):
        if not p.succeeded:
            if p.kind is PaymentKind.CHARGE:
                first_open = next((i for i, e in enumerate(ends) if net < e), None)
                if first_open is not None and dues[first_open].day <= local(p.at, timezone):
                    dues[first_open].failures.append(p.at)
            continue
        net += p.amount if p.kind is PaymentKind.CHARGE else -p.amount
    for d, e in zip(dues, ends, strict=True):
        d.unpaid = min(d.amount, max(zero, e - net))
    return dues
