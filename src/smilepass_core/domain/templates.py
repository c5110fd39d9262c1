"""Payment-plan templates: the plans a practice offers (totals, lengths, deferred start,
members only, a deposit), and offers made from them (docs/domain.md, "Payment-plan
templates")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any, Final

import attrs

from smilepass_core.domain._fields import choice, identifier, of_type, text
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

__all__ = [
    "TERMS",
    "PaymentPlanTemplate",
    "check_offer",
    "check_offers",
    "check_template_change",
    "member_change",
    "offer_from_template",
    "offer_of",
]


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


def _retired_at(value: Any) -> datetime | None:
    return None if value is None else as_instant(value, "retired_at")


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
        retired_at: From this instant on, no longer offered (``None``: still offered).
    """

    id: str = attrs.field(validator=identifier)
    practice_id: str = attrs.field(validator=identifier)
    name: str = attrs.field(validator=text)
    min_total: Money = attrs.field(validator=_money)
    max_total: Money = attrs.field(validator=_money)
    instalment_counts: tuple[int, ...] = attrs.field(converter=_counts)
    cycle: BillingCycle = attrs.field(default=BillingCycle.MONTHLY, **choice(BillingCycle))
    max_deferral_days: int = attrs.field(default=0, validator=_days)
    members_only: bool = attrs.field(default=False, validator=of_type(bool))
    deposit: Money | None = attrs.field(default=None, validator=_money)
    retired_at: datetime | None = attrs.field(default=None, converter=_retired_at)

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

    @property
    def currency(self) -> str:
        """The currency of its amounts."""
        return self.min_total.currency

    def offered_at(self, at: datetime) -> bool:
        """Whether it is offered at ``at`` (not yet retired)."""
        return self.retired_at is None or as_instant(at) < self.retired_at

    def retire(self, *, at: datetime) -> PaymentPlanTemplate:
        """This template, no longer offered from ``at`` on.

        Raises:
            RuleViolation: ``template_retired``: it is already retired.
        """
        if self.retired_at is not None:
            raise RuleViolation(
                "template_retired",
                f"{self.name} ({self.id}) was retired at {self.retired_at.isoformat()}",
                field="retired_at",
            )
        return attrs.evolve(self, retired_at=at)


#: The fields a template's plans were offered on: fixed once a plan refers to it.
TERMS: Final = (
    "min_total",
    "max_total",
    "instalment_counts",
    "cycle",
    "max_deferral_days",
    "members_only",
    "deposit",
)


def _broken(
    template: PaymentPlanTemplate,
    *,
    total: Money,
    instalments: int,
    first_due: date,
    when: datetime,
    today: date,
    patient: Patient,
    member: Member | None,
) -> list[tuple[str, str]]:
    """Each rule of ``template`` an offer breaks, with why (docs/domain.md's table)."""
    broken: list[tuple[str, str]] = []
    if not template.offered_at(when):
        retired = template.retired_at.isoformat() if template.retired_at else ""
        broken.append(("retired", f"{template.name} is not offered since {retired}"))
    currency = template.currency
    total_ok = False
    if total.currency != currency:
        broken.append(("currency", f"the total is in {total.currency}, the template in {currency}"))
    elif not template.min_total <= total <= template.max_total:
        broken.append(("total", f"{total} is outside {template.min_total} to {template.max_total}"))
    else:
        total_ok = True
    if instalments not in template.instalment_counts:
        offered = ", ".join(map(str, template.instalment_counts))
        broken.append(("instalments", f"{instalments} instalments; offered: {offered}"))
    elif total_ok and _rest(template, total).minor < instalments:
        rest = _rest(template, total)
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
    return broken


def _rest(template: PaymentPlanTemplate, total: Money) -> Money:
    """What the instalments after the deposit share."""
    return total - template.deposit if template.deposit is not None else total


def _refuse(template: PaymentPlanTemplate, subject: str, broken: list[tuple[str, str]]) -> None:
    if broken:
        lines = "\n".join(f"- {rule}: {why}" for rule, why in broken)
        raise RuleViolation(
            "template",
            f"{subject} {template.name} ({template.id}):\n{lines}",
            field=broken[0][0],
            broken=tuple(rule for rule, _ in broken),
        )


def _schedule(
    template: PaymentPlanTemplate, total: Money, instalments: int, first_due: date, today: date
) -> tuple[Instalment, ...]:
    """The deposit (if any) on ``today``, then the rest split over ``instalments``."""
    deposit = template.deposit
    schedule = [Instalment(1, today, deposit)] if deposit is not None else []
    schedule += [
        Instalment(len(schedule) + k + 1, template.cycle.nth(first_due, k), amount)
        for k, amount in enumerate(_rest(template, total).allocate(instalments))
    ]
    return tuple(schedule)


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
            (``context["broken"]`` names them: ``retired``, ``currency``, ``total``,
            ``instalments``, ``first_due``, ``deferral``, ``member``, ``members_only``).
    """
    when = as_instant(at)
    today = local_day(when, timezone)
    broken = _broken(
        template,
        total=total,
        instalments=instalments,
        first_due=first_due,
        when=when,
        today=today,
        patient=patient,
        member=member,
    )
    _refuse(template, "cannot offer", broken)
    return PaymentPlan(
        id=id,
        practice_id=template.practice_id,
        patient=patient,
        total=total,
        payment_type=PaymentType.PLAN,
        schedule=_schedule(template, total, instalments, first_due, today),
        history=PAYMENT_PLAN_LIFECYCLE.start(PaymentPlanStatus.PENDING, when, "offered"),
        member_id=member.id if member is not None else None,
        template_id=template.id,
    )


def offer_of(plan: PaymentPlan) -> tuple[Any, ...]:
    """What :func:`check_offer` reads of ``plan``: a save that keeps it needs no check."""
    return (
        plan.template_id,
        plan.patient.id,
        plan.total,
        plan.payment_type,
        plan.schedule,
        plan.member_id,
        plan.created_at,
    )


def check_offer(
    template: PaymentPlanTemplate,
    plan: PaymentPlan,
    *,
    timezone: str,
    member: Member | None = None,
) -> None:
    """Raise unless ``plan`` is an offer ``template`` makes: what a store checks of a plan
    that names its template (``member``: the plan's member, when it names one).

    Its offer (``created_at``, in ``timezone``) must keep every rule of
    :func:`offer_from_template`, and its schedule must be the one that function builds.

    Raises:
        InvalidValue: the plan names another template (field ``template_id``) or is of
            another practice (``practice_id``).
        RuleViolation: ``rule="template"``, every broken rule named (those of
            :func:`offer_from_template`, and ``payment_type``, ``deposit`` or
            ``schedule``).
    """
    if plan.template_id != template.id:
        raise InvalidValue("template_id", plan.template_id, f"is not template {template.id}")
    if plan.practice_id != template.practice_id:
        raise InvalidValue(
            "practice_id", plan.practice_id, f"is not template {template.id}'s practice"
        )
    when = plan.created_at
    today = local_day(when, timezone)
    skip = 1 if template.deposit is not None else 0
    instalments = len(plan.schedule) - skip
    first_due = plan.schedule[skip].due_date if instalments > 0 else today
    broken: list[tuple[str, str]] = []
    if plan.payment_type is not PaymentType.PLAN:
        broken.append(("payment_type", f"a template offers plans, not {plan.payment_type.value}"))
    first = plan.schedule[0]
    if template.deposit is not None and (first.amount, first.due_date) != (template.deposit, today):
        broken.append(
            (
                "deposit",
                f"instalment 1 is {first.amount} due {first.due_date}; the template's deposit"
                f" is {template.deposit} due on the offer's local date {today}",
            )
        )
    broken += _broken(
        template,
        total=plan.total,
        instalments=instalments,
        first_due=first_due,
        when=when,
        today=today,
        patient=plan.patient,
        member=member,
    )
    if not broken:
        expected = _schedule(template, plan.total, instalments, first_due, today)
        for given, want in zip(plan.schedule, expected, strict=True):
            if given != want:
                broken.append(
                    (
                        "schedule",
                        f"instalment {given.number} is {given.amount} due {given.due_date}; "
                        f"the template's is {want.amount} due {want.due_date}",
                    )
                )
                break
    _refuse(template, f"PaymentPlan {plan.id} is no offer of", broken)


def check_template_change(
    kept: PaymentPlanTemplate, new: PaymentPlanTemplate, offers: Iterable[datetime]
) -> None:
    """Raise unless a store may replace ``kept`` by ``new`` while plans offered from it at
    ``offers`` are kept: their terms stay, and it is not retired before any of them.

    Raises:
        RuleViolation: ``template_in_use``, naming the first term changed (or
            ``retired_at``): make a new template and retire this one instead.
    """
    made = list(offers)
    if not made:
        return
    latest = max(made)
    plans = f"{len(made)} kept payment plan{'s' if len(made) != 1 else ''}"
    changed = next((name for name in TERMS if getattr(kept, name) != getattr(new, name)), None)
    if changed is not None:
        raise RuleViolation(
            "template_in_use",
            f"{kept.name} ({kept.id}) is the template of {plans}: its {changed} cannot "
            "change; add a new template and retire this one",
            field=changed,
            template_id=kept.id,
            latest_offer=latest,
        )
    if new.retired_at is not None and new.retired_at <= latest:
        raise RuleViolation(
            "template_in_use",
            f"{kept.name} ({kept.id}) cannot retire at {new.retired_at.isoformat()}: one of "
            f"its {plans} was offered at {latest.isoformat()}; retire it after that",
            field="retired_at",
            template_id=kept.id,
            latest_offer=latest,
        )


def member_change(kept: Member, new: Member) -> tuple[str, str] | None:
    """What of a member's save may leave its plans no offer of their template, as
    :func:`check_offers`' ``change`` and ``field``; ``None`` when nothing it reads moved."""
    if kept.account_holder.id != new.account_holder.id:
        return f"member {new.id}'s account holder {new.account_holder.id}", "account_holder"
    if kept.history != new.history:
        last = new.history[-1]
        moved = f"member {new.id}'s move to {last.to.value} at {last.at.isoformat()}"
        return moved, "history"
    return None


def check_offers(
    plans: Iterable[PaymentPlan],
    templates: Mapping[str, PaymentPlanTemplate],
    *,
    timezone: str,
    members: Mapping[str, Member],
    change: str,
    field: str,
) -> None:
    """:func:`check_offer` for each of ``plans`` that names a template (its template from
    ``templates``, its member from ``members``): what a store checks of the kept plans when
    what they were judged by changes (``change`` says what, e.g. "practice p's time zone
    Pacific/Kiritimati"; ``field`` is the field changed).

    Raises:
        RuleViolation: ``rule="template"``, field ``field``, for the first plan no longer
            an offer: the change, the plan and each broken rule (``context["broken"]``,
            ``context["plan_id"]``).
    """
    for plan in plans:
        if plan.template_id is None:
            continue
        member = None if plan.member_id is None else members.get(plan.member_id)
        try:
            check_offer(templates[plan.template_id], plan, timezone=timezone, member=member)
        except RuleViolation as error:
            raise RuleViolation(
                "template",
                f"{change} would leave a kept plan no offer of its template: {error}",
                field=field,
                plan_id=plan.id,
                broken=error.context["broken"],
            ) from error
