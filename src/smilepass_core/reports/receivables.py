"""Aged receivables: what is due and unpaid, by days past due (beyond the manual)."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any, ClassVar, NamedTuple

import attrs

from smilepass_core.domain import Patient
from smilepass_core.domain.overdue import DueCharge, unpaid_charges
from smilepass_core.errors import InvalidValue
from smilepass_core.money import Money, per_currency, sum_in
from smilepass_core.periods import as_instant, zone
from smilepass_core.presentation import Items
from smilepass_core.queries import MemberQuery, PaymentPlanQuery, ScopeQuery
from smilepass_core.reports._table import (
    Report,
    Table,
    member_ledgers,
    practice_ids,
    zones_of,
)
from smilepass_core.repositories import Store, UnpaidChargesReader

__all__ = [
    "AgedReceivables",
    "ReceivableRow",
    "ReceivableRows",
    "aged_receivables",
    "bucket_labels",
]

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


class ReceivableRows(Items[ReceivableRow]):
    """The report's rows, oldest first (ties by practice, source id, instalment): a
    read-only sequence that iterates, indexes, slices, compares and hashes like the tuple
    of them.

    A report holds its rows as the unpaid charges they come from (about 60 bytes a row):
    ``len`` needs no row object, iterating makes each as it is reached, and the first
    index, comparison, hash or pickle makes them all and keeps them.
    """

    __slots__ = ("_parts",)

    def __init__(self, rows: Iterable[ReceivableRow] = ()) -> None:
        super().__init__(rows)
        object.__setattr__(self, "_parts", None)

    @classmethod
    def _of(cls, parts: _Parts) -> ReceivableRows:
        rows = object.__new__(cls)
        object.__setattr__(rows, "_parts", parts)
        return rows

    def __getattr__(self, name: str) -> Any:
        """The row objects, made on the first read (only an unset slot comes here)."""
        parts = self._parts
        if name != "_items" or parts is None:
            raise AttributeError(name)
        items = tuple(parts.rows())
        object.__setattr__(self, "_items", items)
        object.__setattr__(self, "_parts", None)
        return items

    def __iter__(self) -> Iterator[ReceivableRow]:
        """The rows in order; before they are kept (on the first index, comparison or
        hash), each is made as it is reached and not kept: iterating a million rows once
        holds one at a time."""
        parts = self._parts
        return iter(self._items) if parts is None else parts.rows()

    def __len__(self) -> int:
        parts = self._parts
        return len(self._items) if parts is None else len(parts.order)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the rows themselves."""
        return (ReceivableRows, (self._items,))


def _rows(rows: Iterable[ReceivableRow]) -> ReceivableRows:
    return rows if isinstance(rows, ReceivableRows) else ReceivableRows(rows)


class _Source(NamedTuple):
    """A membership's or a payment plan's unpaid charges: whose, in which practice, and
    that practice's local day at the report's instant (an ordinal)."""

    practice: str
    patient: Patient
    today: int
    charges: Sequence[DueCharge]


@attrs.frozen
class _Parts:
    """What a report's rows are made of: row ``order[k]`` (k = 0, 1, ...) is the charge
    ``charges[r]`` of source ``sources[of[r]]``."""

    sources: list[_Source]
    of: list[int]
    charges: list[DueCharge]
    order: list[int]
    edges: tuple[int, ...]
    labels: tuple[str, ...]

    def rows(self) -> Iterator[ReceivableRow]:
        e, labels, sources, of, charges = (
            self.edges,
            self.labels,
            self.sources,
            self.of,
            self.charges,
        )
        for r in self.order:
            s, c = sources[of[r]], charges[r]
            days = s.today - c.due_date.toordinal()
            yield ReceivableRow(
                practice=s.practice,
                patient_id=s.patient.id,
                patient=s.patient.name,
                source=c.source[0],
                source_id=c.source[1],
                instalment=c.instalment,
                due_date=c.due_date,
                days_past_due=days,
                bucket=_bucket(days, e, labels),
                amount=c.amount,
                currency=c.amount.currency,
            )


@attrs.frozen(repr=False)  # Report's short __repr__
class AgedReceivables(Report):
    """Aged receivables at an instant.

    Attributes:
        rows: Every due, unpaid charge, oldest first (:class:`ReceivableRows`; a tuple
            of rows given is made one).
        labels: The bucket labels, in order.
        by_practice: practice id -> bucket label -> total.
        by_patient: (practice id, patient id) -> bucket label -> total (rows carry names).
        totals: currency -> total of all rows.
    """

    ROW: ClassVar[type[Table]] = ReceivableRow

    rows: ReceivableRows = attrs.field(converter=_rows)
    at: datetime
    labels: tuple[str, ...]
    by_practice: Mapping[str, Mapping[str, Money]]
    by_patient: Mapping[tuple[str, str], Mapping[str, Money]]
    totals: Mapping[str, Money]
    timezones: Mapping[str, str] = attrs.field(factory=dict, kw_only=True)

    def _practices(self) -> Iterable[str]:
        return self.by_practice  # the practices with a row, without making the rows


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

    The totals are summed as the report is made; the row objects when first read
    (:class:`ReceivableRows`).

    Raises:
        InvalidValue: bucket edges that are not strictly increasing whole days >= 1.
        NotFound: an unknown practice id.
        CurrencyMismatch: a host store that gives one bucket charges in two currencies.
    """
    e = _edges(edges)
    labels = bucket_labels(e)
    when = as_instant(at, "at")
    ids = practice_ids(store, practices)
    sources = [s for practice_id in sorted(ids) for s in _sources(store, practice_id, when)]
    of: list[int] = []
    charges: list[DueCharge] = []
    cells: dict[tuple[str, str], dict[int, Money]] = {}  # (practice, patient) -> bucket -> total
    firsts: dict[tuple[str, str], tuple[date, int]] = {}  # -> the first row's sort key
    cuts = {p: _cuts(store.practices.get(p).timezone, when, e) for p in ids}
    for k, s in enumerate(sources):
        key = (s.practice, s.patient.id)
        cell = cells.setdefault(key, {})
        for b, run in _runs(s.charges, cuts[s.practice]):
            total = sum_in(run[0].amount.currency, [c.amount for c in run])
            cell[b] = total if b not in cell else cell[b] + total
        first = (s.charges[0].due_date, k)  # its first row: sorted by due date, stably
        if key not in firsts or first < firsts[key]:
            firsts[key] = first
        of.extend(itertools.repeat(k, len(s.charges)))
        charges.extend(s.charges)
    dues = [c.due_date for c in charges]
    order = sorted(range(len(charges)), key=dues.__getitem__)  # stable
    del dues
    # Each split in the order of its first row; its buckets oldest first, as its rows come.
    keys = sorted(firsts, key=firsts.__getitem__)
    by_patient = {key: _totals(cells[key], labels) for key in keys}
    per_practice: dict[str, dict[int, list[Money]]] = {}
    for (practice_id, _), cell in zip(keys, (cells[key] for key in keys), strict=True):
        mine = per_practice.setdefault(practice_id, {})
        for b, total in cell.items():
            mine.setdefault(b, []).append(total)
    by_practice = {
        p: _totals({b: sum_in(t[0].currency, t) for b, t in cell.items()}, labels)
        for p, cell in per_practice.items()
    }
    return AgedReceivables(
        rows=ReceivableRows._of(_Parts(sources, of, charges, order, e, labels)),
        at=when,
        labels=labels,
        by_practice=by_practice,
        by_patient=by_patient,
        totals=per_currency(m for row in by_practice.values() for m in row.values()),
        timezones=zones_of(store, ids),
    )


def _sources(store: Store, practice_id: str, at: datetime) -> list[_Source]:
    """The practice's memberships and payment plans with a charge due and unpaid at
    ``at``, by source id (a membership before a plan of the same id)."""
    practice = store.practices.get(practice_id)
    today = at.astimezone(zone(practice.timezone)).date().toordinal()
    scope = frozenset((practice_id,))
    reader = store.members if isinstance(store.members, UnpaidChargesReader) else None
    kept = None if reader is None else reader.unpaid_charges(practice_id=practice_id, at=at)
    members: Iterable[tuple[Patient, Sequence[DueCharge]]] = (
        ((m.account_holder, unpaid) for m, unpaid in kept)  # what the store keeps
        if kept is not None
        else _judged(store, practice_id, at, practice.timezone)
    )
    plans = (
        (plan.patient, unpaid_charges(None, (plan,), at=at, timezone=practice.timezone))
        for plan in store.payment_plans.find(PaymentPlanQuery(practices=scope))
    )
    found = [
        _Source(practice_id, patient, today, charges)
        for patient, charges in itertools.chain(members, plans)
        if charges
    ]
    found.sort(key=lambda s: s.charges[0].source[1])  # stable: memberships first on a tie
    return found


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


def _totals(cell: Mapping[int, Money], labels: tuple[str, ...]) -> dict[str, Money]:
    """Each bucket's total (keyed by its index in ``labels``) by its label, the oldest
    bucket first."""
    return {labels[b]: cell[b] for b in sorted(cell, reverse=True)}


def _cuts(timezone: str, at: datetime, edges: tuple[int, ...]) -> tuple[date, ...]:
    """The earliest due date of each bucket after the oldest, oldest first: a charge due
    before ``cuts[0]`` is in the last bucket, one due on ``today`` (``cuts[-1]``) or later
    in Current."""
    today = at.astimezone(zone(timezone)).date().toordinal()
    return tuple(date.fromordinal(max(1, today - edge)) for edge in (*reversed(edges), 0))


def _runs(
    charges: Sequence[DueCharge], cuts: tuple[date, ...]
) -> Iterator[tuple[int, Sequence[DueCharge]]]:
    """``charges`` (by due date) in runs of one bucket each, oldest first: (the bucket's
    index in the labels, its charges)."""
    dues = [c.due_date for c in charges]
    start = 0
    for j, stop in enumerate([*(bisect.bisect_left(dues, cut) for cut in cuts), len(dues)]):
        if stop > start:
            yield len(cuts) - j, charges[start:stop]
            start = stop
