"""Aged receivables: what is due and unpaid, by days past due (beyond the manual)."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import ClassVar, TypeVar

import attrs

from smilepass_core.domain import Patient
from smilepass_core.domain.overdue import DueCharge, unpaid_charges
from smilepass_core.errors import InvalidValue
from smilepass_core.money import Money, per_currency, sum_in
from smilepass_core.periods import as_instant, zone
from smilepass_core.queries import MemberQuery, PaymentPlanQuery, ScopeQuery
from smilepass_core.reports._table import (
    Report,
    Table,
    member_ledgers,
    practice_ids,
    zones_of,
)
from smilepass_core.repositories import Store, UnpaidChargesReader

K = TypeVar("K")

__all__ = ["AgedReceivables", "ReceivableRow", "aged_receivables", "bucket_labels"]

#: Upper edges (days past due) of the buckets after Current: 1-30, 31-60, 61-90, then 91+.
DEFAULT_EDGES = (30, 60, 90)


def _edges(edges: Sequence[int]) -> tuple[int, ...]:
    result = tuple(edges)
    if not result or any(not isinstance(e, int) or isinstance(e, bool) for e in result):
        raise InvalidValue("edges", edges, "must be whole numbers of days")
    if result[0] < 1 or any(b <= a for a, b in itertools.pairwise(result)):
        raise InvalidValue("edges", edges, "must be strictly increasing and start at 1 or more")
    return result


def bucket_labels(edges: Sequence[int] = DEFAULT_EDGES) -> tuple[str, ...]:
    """``("Current", "1-30", "31-60", "61-90", "91+")`` for the default edges: each label
    says the days past due it holds (the last, "91+", 91 days and more)."""
    e = _edges(edges)
    labels = ["Current"]
    low = 1
    for high in e:
        labels.append(f"{low}-{high}")
        low = high + 1
    labels.append(f"{low}+")
    return tuple(labels)


def _bucket(days: int, edges: tuple[int, ...], labels: tuple[str, ...]) -> str:
    """The label of ``days`` past due: Current at 0, else the first edge at or above it."""
    return labels[0] if days <= 0 else labels[bisect.bisect_left(edges, days) + 1]


@attrs.frozen
class ReceivableRow(Table):
    """One unpaid charge that has fallen due."""

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "practice",
        "patient_id",
        "patient",
        "source",
        "source_id",
        "instalment",
        "due_date",
        "days_past_due",
        "bucket",
        "amount",
        "currency",
    )

    practice: str
    patient_id: str
    patient: str
    source: str
    source_id: str
    instalment: int | None
    due_date: date
    days_past_due: int
    bucket: str
    amount: Money
    currency: str


@attrs.frozen(repr=False)  # Report's short __repr__
class AgedReceivables(Report):
    """Aged receivables at an instant.

    Attributes:
        rows: Every due, unpaid charge, oldest first.
        labels: The bucket labels, in order.
        by_practice: practice id -> bucket label -> total.
        by_patient: (practice id, patient id) -> bucket label -> total (rows carry names).
        totals: currency -> total of all rows.
    """

    ROW: ClassVar[type[Table]] = ReceivableRow

    rows: tuple[ReceivableRow, ...]
    at: datetime
    labels: tuple[str, ...]
    by_practice: Mapping[str, Mapping[str, Money]]
    by_patient: Mapping[tuple[str, str], Mapping[str, Money]]
    totals: Mapping[str, Money]
    timezones: Mapping[str, str] = attrs.field(factory=dict, kw_only=True)


def aged_receivables(
    store: Store,
    *,
    at: datetime,
    practices: Iterable[str] | str | None = None,
    edges: Sequence[int] = DEFAULT_EDGES,
) -> AgedReceivables:
    """Unpaid instalments and membership charges due on or before the local day of ``at``
    and still being collected (:func:`~smilepass_core.domain.overdue.unpaid_charges`),
    aged by whole days past their due date in the practice's time zone.

    Raises:
        InvalidValue: bucket edges that are not strictly increasing whole days >= 1.
        NotFound: an unknown practice id.
    """
    e = _edges(edges)
    labels = bucket_labels(e)
    when = as_instant(at, "at")
    rows: list[ReceivableRow] = []
    ids = practice_ids(store, practices)
    reader = store.members if isinstance(store.members, UnpaidChargesReader) else None
    for practice_id in ids:
        practice = store.practices.get(practice_id)
        today = when.astimezone(zone(practice.timezone)).date()
        scope = frozenset((practice_id,))
        kept = None if reader is None else reader.unpaid_charges(practice_id=practice_id, at=when)
        # Streamed, not listed: a report of a million rows makes no other object that lives.
        members: Iterable[tuple[Patient, Sequence[DueCharge]]] = (
            ((m.account_holder, unpaid) for m, unpaid in kept)  # what the store keeps
            if kept is not None
            else _judged(store, practice_id, when, practice.timezone)
        )
        plans = (
            (plan.patient, unpaid_charges(None, (plan,), at=when, timezone=practice.timezone))
            for plan in store.payment_plans.find(PaymentPlanQuery(practices=scope))
        )
        for patient, c in ((p, c) for p, found in itertools.chain(members, plans) for c in found):
            days = c.days_past_due(today)
            rows.append(
                ReceivableRow(
                    practice=practice_id,
                    patient_id=patient.id,
                    patient=patient.name,
                    source=c.source[0],
                    source_id=c.source[1],
                    instalment=c.instalment,
                    due_date=c.due_date,
                    days_past_due=days,
                    bucket=_bucket(days, e, labels),
                    amount=c.amount,
                    currency=c.amount.currency,
                )
            )
    rows.sort(key=lambda r: (r.due_date, r.practice, r.source_id, r.instalment or 0))
    return AgedReceivables(
        rows=tuple(rows),
        at=when,
        labels=labels,
        by_practice=_grouped(rows, lambda r: r.practice),
        by_patient=_grouped(rows, lambda r: (r.practice, r.patient_id)),
        totals=per_currency(r.amount for r in rows),
        timezones=zones_of(store, ids),
    )


def _judged(
    store: Store, practice_id: str, at: datetime, timezone: str
) -> Iterator[tuple[Patient, tuple[DueCharge, ...]]]:
    """Each member of ``practice_id`` (their account holder) with their unpaid membership
    charges at ``at``, judged from their ledger."""
    scope = frozenset((practice_id,))
    membership_plans = {p.id: p for p in store.membership_plans.find(ScopeQuery(practices=scope))}
    ledgers = member_ledgers(store, (practice_id,))
    for m in store.members.find(MemberQuery(practices=scope)):
        yield (
            m.account_holder,
            unpaid_charges(
                m,
                at=at,
                timezone=timezone,
                membership_plans=membership_plans,
                payments=ledgers.get(m.id, ()),
            ),
        )


def _grouped(
    rows: Iterable[ReceivableRow], key: Callable[[ReceivableRow], K]
) -> dict[K, dict[str, Money]]:
    """Each key's total per bucket (a practice's rows are in one currency: a bucket in two
    raises :class:`~smilepass_core.errors.CurrencyMismatch`)."""
    cells: dict[K, dict[str, list[Money]]] = {}
    for r in rows:
        cells.setdefault(key(r), {}).setdefault(r.bucket, []).append(r.amount)
    return {
        k: {label: sum_in(amounts[0].currency, amounts) for label, amounts in row.items()}
        for k, row in cells.items()
    }
