"""Recovered revenue: of the charges that failed in a period, how much was collected since,
how much is still outstanding, and how much was written off (docs/reports.md)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import ClassVar

import attrs

from smilepass_core.domain import MembershipStatus, Payment, PaymentKind, PaymentPlanStatus
from smilepass_core.domain.billing import billing_statement
from smilepass_core.errors import InvalidValue
from smilepass_core.money import Money
from smilepass_core.periods import DateRange, Preset, as_instant
from smilepass_core.queries import MemberQuery, PaymentPlanQuery, PaymentQuery, ScopeQuery
from smilepass_core.reports._table import Report, Table, practice_ids, zones_of
from smilepass_core.repositories import Store

__all__ = ["RecoveredRevenue", "RecoveryRow", "recovered_revenue"]


@attrs.frozen
class RecoveryRow(Table):
    """One practice's failed charges of a period, in one currency."""

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "practice",
        "currency",
        "failed_charges",
        "failed",
        "recovered",
        "outstanding",
        "written_off",
        "recovery_rate",
    )

    practice: str
    currency: str
    failed_charges: int
    failed: Money
    recovered: Money
    outstanding: Money
    written_off: Money
    recovery_rate: Decimal | None


@attrs.frozen(repr=False)  # Report's short __repr__
class RecoveredRevenue(Report):
    """Recovered revenue per practice (see :func:`recovered_revenue`).

    Attributes:
        rows: One row per practice (and currency), in the order asked.
        ranges: Each practice's range, cut at ``now``.
        now: The instant the recoveries were counted at.
    """

    ROW: ClassVar[type[Table]] = RecoveryRow

    rows: tuple[RecoveryRow, ...]
    ranges: Mapping[str, DateRange]
    now: datetime
    timezones: Mapping[str, str] = attrs.field(factory=dict, kw_only=True)


class _Tally:
    def __init__(self, currency: str) -> None:
        self.count = 0
        self.failed = self.recovered = self.written_off = Money.zero(currency)

    def add(self, amount: Money, paid: Money, closed: bool) -> None:
        self.count += 1
        self.failed += amount
        self.recovered += paid
        if closed:
            self.written_off += amount - paid

    def row(self, practice: str) -> RecoveryRow:
        rate = None
        if self.failed.is_positive():
            rate = (100 * self.recovered.amount / self.failed.amount).quantize(Decimal("0.01"))
        return RecoveryRow(
            practice,
            self.failed.currency,
            self.count,
            self.failed,
            self.recovered,
            self.failed - self.recovered,
            self.written_off,
            rate,
        )


def recovered_revenue(
    store: Store,
    *,
    now: datetime,
    date_range: DateRange | Preset | str | Mapping[str, DateRange] = Preset.LAST_30_DAYS,
    practices: Iterable[str] | str | None = None,
) -> RecoveredRevenue:
    """Of the charges that first failed inside ``date_range`` (cut at ``now``), what was
    collected by ``now``. ``date_range`` may also give each practice its own range (by
    id), as a dashboard's ``ranges`` do (:meth:`Dashboard.recovery
    <smilepass_core.kpi.Dashboard.recovery>`).

    A **failed charge** is a membership's expected charge (:mod:`~.domain.billing`) or a
    payment plan's instalment whose first failed attempt falls in the range.
    **Recovered** is what was paid of it by ``now``; **outstanding** the rest, of which
    **written off** is what its membership or plan, Cancelled by ``now``, will not collect.
    The recovery rate is recovered over failed, in percent (``None`` when nothing failed).

    Raises:
        NotFound: an unknown practice id.
        InvalidValue: ``date_range`` gives ranges by practice but none for one of them.
    """
    when = as_instant(now, "now")
    ids = practice_ids(store, practices)
    rows: list[RecoveryRow] = []
    ranges: dict[str, DateRange] = {}
    for practice_id in ids:
        practice = store.practices.get(practice_id)
        if isinstance(date_range, DateRange):
            span = date_range
        elif isinstance(date_range, Mapping):
            if practice_id not in date_range:
                raise InvalidValue("date_range", sorted(date_range), f"has no {practice_id!r}")
            span = date_range[practice_id]
        else:
            span = DateRange.preset(date_range, now=when, timezone=practice.timezone)
        cut = span.cut(when)
        ranges[practice_id] = cut
        tally = _Tally(practice.currency)
        scope = frozenset((practice_id,))
        ledgers: dict[str, list[Payment]] = {}
        for payment in store.payments.find(PaymentQuery(practices=scope)):
            if payment.member_id is not None:
                ledgers.setdefault(payment.member_id, []).append(payment)
        stamped = {p.id: p.at for ledger in ledgers.values() for p in ledger}
        plans = {p.id: p for p in store.membership_plans.find(ScopeQuery(practices=scope))}
        # Only a member with a failed charge in the range can have a charge whose first
        # failure falls in it: the others are not read.
        failing = {
            member_id
            for member_id, ledger in ledgers.items()
            if any(p.kind is PaymentKind.CHARGE and not p.succeeded and p.at in cut for p in ledger)
        }
        for member in store.members.find(MemberQuery(practices=scope)):
            if member.id not in failing:
                continue
            ledger = ledgers[member.id]
            statement = billing_statement(
                member,
                plans[member.plan_id],
                ledger,
                at=when,
                timezone=practice.timezone,
                plans=plans,
            )
            closed = member.status_at(when) is MembershipStatus.CANCELLED
            for charge in statement.charges:
                if charge.attempts and min(stamped[a] for a in charge.attempts) in cut:
                    tally.add(charge.amount, charge.paid, closed)
        for plan in store.payment_plans.find(PaymentPlanQuery(practices=scope)):
            attempts = [a for a in plan.attempts if a.at <= when]
            closed = plan.status_at(when) is PaymentPlanStatus.CANCELLED
            for instalment in plan.schedule:
                mine = [a for a in attempts if a.number == instalment.number]
                failures = [a.at for a in mine if not a.succeeded]
                if failures and min(failures) in cut:
                    paid = instalment.amount if any(a.succeeded for a in mine) else None
                    zero = Money.zero(instalment.amount.currency)
                    tally.add(instalment.amount, paid or zero, closed)
        rows.append(tally.row(practice_id))
    return RecoveredRevenue(tuple(rows), ranges, when, timezones=zones_of(store, ids))
