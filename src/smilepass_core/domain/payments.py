"""The payment ledger: append-only charges and refunds, the single source of revenue."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import attrs

from smilepass_core.domain._fields import choice, identifier, optional_identifier
from smilepass_core.errors import ConflictingPayment, InvalidValue, RuleViolation
from smilepass_core.money import Money
from smilepass_core.periods import as_instant

__all__ = ["Ledger", "Payment", "PaymentKind", "PaymentOutcome", "check_refund"]


class PaymentKind(enum.Enum):
    """A charge takes money from the patient; a refund gives it back."""

    CHARGE = "charge"
    REFUND = "refund"


class PaymentOutcome(enum.Enum):
    """Whether the money moved."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"


def _positive(instance: Any, attribute: attrs.Attribute[Money], value: Any) -> None:
    if not isinstance(value, Money) or not value.is_positive():
        raise InvalidValue(
            attribute.name, value, "must be a positive Money (the kind gives the sign)"
        )


@attrs.frozen
class Payment:
    """One ledger entry: a charge or refund for a member or a payment plan, and its outcome.

    Exactly one of ``member_id`` and ``payment_plan_id`` names the source.
    ``amount`` is positive; :attr:`signed` is what it adds to revenue when it succeeded.
    """

    id: str = attrs.field(validator=identifier)
    practice_id: str = attrs.field(validator=identifier)
    amount: Money = attrs.field(validator=_positive)
    kind: PaymentKind = attrs.field(**choice(PaymentKind))
    outcome: PaymentOutcome = attrs.field(**choice(PaymentOutcome))
    at: datetime = attrs.field(converter=as_instant)
    member_id: str | None = attrs.field(default=None, validator=optional_identifier)
    payment_plan_id: str | None = attrs.field(default=None, validator=optional_identifier)

    def __attrs_post_init__(self) -> None:
        if (self.member_id is None) == (self.payment_plan_id is None):
            raise InvalidValue(
                "member_id",
                (self.member_id, self.payment_plan_id),
                "exactly one of member_id and payment_plan_id must be set",
            )

    @property
    def source(self) -> tuple[str, str]:
        """``("member", id)`` or ``("payment_plan", id)``."""
        if self.member_id is not None:
            return ("member", self.member_id)
        return ("payment_plan", str(self.payment_plan_id))

    @property
    def succeeded(self) -> bool:
        """True when the money moved."""
        return self.outcome is PaymentOutcome.SUCCEEDED

    @property
    def signed(self) -> Money:
        """Contribution to collected revenue: +amount for a succeeded charge,
        -amount for a succeeded refund, zero for a failed attempt."""
        if not self.succeeded:
            return Money.zero(self.amount.currency)
        return self.amount if self.kind is PaymentKind.CHARGE else -self.amount


def check_refund(earlier: Iterable[Payment], refund: Payment) -> None:
    """Raise unless ``refund`` keeps its source's net collected at or above zero at all times.

    The source's entries are replayed in time order (charges before refunds at the
    same instant) with ``refund`` among them: at no point may refunds exceed the
    charges collected before them, so a refund cannot precede its charge, and a
    back-dated refund cannot push a later one over the limit.

    Args:
        earlier: The ledger entries already recorded (any sources; others are ignored).
        refund: The entry about to be recorded; a charge or a failed refund always passes.

    Raises:
        RuleViolation: ``rule="refund_exceeds_collected"``.
    """
    if refund.kind is not PaymentKind.REFUND or not refund.succeeded:
        return
    entries = sorted(
        (
            p
            for p in (*(e for e in earlier if e.id != refund.id), refund)
            if p.source == refund.source and p.succeeded
        ),
        key=lambda p: (p.at, p.kind is PaymentKind.REFUND),
    )
    net = Money.zero(refund.amount.currency)
    for entry in entries:
        net += entry.signed
        if net.is_negative():
            collected = net - entry.signed
            pushes = "" if entry.id == refund.id else f"pushes refund {entry.id}, which "
            raise RuleViolation(
                "refund_exceeds_collected",
                f"refund {refund.id} of {refund.amount} {pushes}exceeds the {collected} "
                f"collected for {refund.source[0]} {refund.source[1]} before "
                f"{entry.at.isoformat()}",
                payment_id=refund.id,
                collected=collected,
                field="amount",
            )


def _entries(value: Iterable[Payment]) -> tuple[Payment, ...]:
    return tuple(value)


@attrs.frozen
class Ledger:
    """An append-only sequence of payments with the ledger's rules applied on record.

    Recording the same payment twice (same id, same content) changes nothing;
    the same id with different content raises.
    """

    entries: tuple[Payment, ...] = attrs.field(default=(), converter=_entries)

    def record(self, payment: Payment) -> Ledger:
        """The ledger with ``payment`` appended.

        Raises:
            ConflictingPayment: same id, other content (a ``RuleViolation`` with
                ``rule="conflicting_payment"`` and a ``DuplicateId``).
            RuleViolation: ``rule="refund_exceeds_collected"``.
        """
        for existing in self.entries:
            if existing.id == payment.id:
                if existing == payment:
                    return self
                raise ConflictingPayment(payment.id)
        check_refund(self.entries, payment)
        return Ledger((*self.entries, payment))

    def collected(self, currency: str) -> Money:
        """Net collected over the whole ledger, in ``currency``."""
        return sum((p.signed for p in self.entries), Money.zero(currency))
