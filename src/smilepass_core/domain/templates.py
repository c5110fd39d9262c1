"""Payment-plan templates: the plans a practice offers (totals, lengths, deferred start,
members only, a deposit), and offers made from them (docs/domain.md, "Payment-plan
templates")."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

import attrs

from smilepass_core.domain._fields import identifier, of_type, text
from smilepass_core.domain.members import Member, MembershipStatus
from smilepass_core.domain.payment_plans import (
    PAYMENT_PLAN_LIFECYCLE,
    Instalment,
    PaymentPlan,
    PaymentPlanStatus,
    PaymentType,
)
from smilepass_core.domain.practices import BillingCycle, Patient
from smilepass_core.errors import InvalidValue, RuleViolation
from smilepass_core.money import Money
from smilepass_core.periods import as_instant, local_day

__all__ = ["PaymentPlanTemplate", "offer_from_template"]


def _counts(value: Any) -> tuple[int, ...]:
    counts = tuple(value) if isinstance(value, Iterable) else (value,)
    if (
        not counts
        or any(type(n) is not int or n < 1 for n in counts)
        or list(counts) != sorted(set(counts))
    ):
        raise InvalidValue(
            "instalment_counts", value, "must be strictly increasing whole numbers >= 1"
        )
    return counts


def _money(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None and attribute.name == "deposit":
        return
    if not isinstance(value, Money) or not value.is_positive():
        raise InvalidValue(attribute.name, value, "must be a positive Money")


def _days(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if type(value) is not int or value < 0:
        raise InvalidValue(attribute.name, value, "must be a whole number of days >= 0")


@attrs.frozen
class PaymentPlanTemplate:
    """A payment plan a practice offers.

    Attributes:
        min_total, max_total: The totals it may be offered for (both included).
        instalment_counts: The lengths offered (``(6, 12, 24)``).
        cycle: How often instalments fall due.
        max_deferral_days: How many days after the offer's local date the first
            instalment may fall due (0: the offer's own date).
        members_only: Offered only to the practice's Active members.
        deposit: Collected on the offer's local date as instalment 1, before the others.
    """

    id: str = attrs.field(validator=identifier)
    practice_id: str = attrs.field(validator=identifier)
    name: str = attrs.field(validator=text)
    min_total: Money = attrs.field(validator=_money)
    max_total: Money = attrs.field(validator=_money)
    instalment_counts: tuple[int, ...] = attrs.field(converter=_counts)
    cycle: BillingCycle = BillingCycle.MONTHLY
    max_deferral_days: int = attrs.field(default=0, validator=_days)
    members_only: bool = attrs.field(default=False, validator=of_type(bool))
    deposit: Money | None = attrs.field(default=None, validator=_money)

    def __attrs_post_init__(self) -> None:
        if self.max_total.currency != self.min_total.currency:
            raise InvalidValue("max_total", self.max_total, f"must be in {self.min_total.currency}")
        if self.max_total < self.min_total:
            raise InvalidValue("max_total", self.max_total, f"is below min_total {self.min_total}")
        if self.deposit is not None:
            if self.deposit.currency != self.min_total.currency:
                raise InvalidValue("deposit", self.deposit, f"must be in {self.min_total.currency}")
            if self.deposit >= self.min_total:
                raise InvalidValue("deposit", self.deposit, "must be below min_total")


def offer_from_template(
    template: PaymentPlanTemplate,
    *,
    id: str,
    patient: Patient,
    total: Money,
    instalments: int,
    first_due: date,
    at: datetime,
    timezone: str,
    member: Member | None = None,
) -> PaymentPlan:
    """A Pending plan offered from ``template``, after checking every one of its rules.

    The total is split over ``instalments`` by :meth:`Money.allocate` after the deposit,
    if any, which falls due on the offer's local date as instalment 1.

    Raises:
        RuleViolation: ``rule="template"``, listing each broken rule on a line of its own
            (``context["broken"]`` names them: ``currency``, ``total``, ``instalments``,
            ``first_due``, ``deferral``, ``members_only``, ``member``).
    """
    when = as_instant(at)
    today = local_day(when, timezone)
    broken: list[tuple[str, str]] = []
    currency = template.min_total.currency
    if total.currency != currency:
        broken.append(("currency", f"the total is in {total.currency}, the template in {currency}"))
    elif not template.min_total <= total <= template.max_total:
        broken.append(("total", f"{total} is outside {template.min_total} to {template.max_total}"))
    rest = total - template.deposit if template.deposit is not None else total
    if instalments not in template.instalment_counts:
        offered = ", ".join(map(str, template.instalment_counts))
        broken.append(("instalments", f"{instalments} instalments; offered: {offered}"))
    elif total.currency == currency and rest.minor < instalments:
        broken.append(("instalments", f"{instalments} instalments of {rest}: under a minor unit"))
    if first_due < today:
        broken.append(("first_due", f"{first_due} is before the offer's local date {today}"))
    elif first_due > today + timedelta(days=template.max_deferral_days):
        broken.append(
            (
                "deferral",
                f"{first_due} is {(first_due - today).days} days after the offer; "
                f"at most {template.max_deferral_days}",
            )
        )
    if member is not None and (
        member.practice_id != template.practice_id or member.account_holder.id != patient.id
    ):
        broken.append(
            ("member", f"member {member.id} is not {patient.id} at {template.practice_id}")
        )
    if template.members_only and (
        member is None or member.status_at(when) is not MembershipStatus.ACTIVE
    ):
        broken.append(("members_only", f"{template.name} is for Active members only"))
    if broken:
        lines = "\n".join(f"- {rule}: {why}" for rule, why in broken)
        raise RuleViolation(
            "template",
            f"cannot offer {template.name} ({template.id}):\n{lines}",
            field=broken[0][0],
            broken=tuple(rule for rule, _ in broken),
        )
    deposit = template.deposit
    amounts = rest.allocate(instalments)
    schedule = [Instalment(1, today, deposit)] if deposit is not None else []
    schedule += [
        Instalment(len(schedule) + k + 1, template.cycle.nth(first_due, k), amount)
        for k, amount in enumerate(amounts)
    ]
    return PaymentPlan(
        id=id,
        practice_id=template.practice_id,
        patient=patient,
        total=total,
        payment_type=PaymentType.PLAN,
        schedule=tuple(schedule),
        history=PAYMENT_PLAN_LIFECYCLE.start(PaymentPlanStatus.PENDING, when, "offered"),
        member_id=member.id if member is not None else None,
    )
