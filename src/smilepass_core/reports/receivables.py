"""Aged receivables: what is due and unpaid, by days past due (beyond the manual)."""

from __future__ import annotations

import bisect
import itertools
import operator
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any, ClassVar

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
    "PatientTotals",
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

    A report holds its rows as the unpaid charges they come from (about 100 bytes per
    membership or plan beside its charges): ``len`` and ``repr`` need no row object;
    iterating sorts the charges (about 50 bytes a row while it runs) and makes each row
    object as it is reached without keeping it; any other read (an index or slice,
    ``in``, ``reversed``, a comparison, the hash, a pickle) makes them all and keeps
    them.
    """

    __slots__ = ("_parts",)
    _parts: _Parts | None

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
        if name != "_items":
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        parts = object.__getattribute__(self, "_parts")
        if parts is None:  # another thread made them since this one looked
            return object.__getattribute__(self, "_items")
        items = tuple(parts.rows())
        object.__setattr__(self, "_items", items)
        object.__setattr__(self, "_parts", None)
        return items

    def __iter__(self) -> Iterator[ReceivableRow]:
        """The rows in order; until they are kept, each is made as it is reached and not
        kept: iterating a million rows holds one row object at a time (and the order,
        about 50 bytes a row)."""
        parts = self._parts
        return iter(self._items) if parts is None else parts.rows()

    def __len__(self) -> int:
        parts = self._parts
        return len(self._items) if parts is None else parts.size

    def _practices(self) -> Iterable[str]:
        """The practices of the rows, without making them."""
        parts = self._parts
        if parts is None:
            return (row.practice for row in self._items)
        return parts.practices  # each source has a row

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the rows themselves."""
        return (ReceivableRows, (self._items,))


def _rows(rows: Iterable[ReceivableRow]) -> ReceivableRows:
    return rows if isinstance(rows, ReceivableRows) else ReceivableRows(rows)


@attrs.frozen
class _Parts:
    """What a report's rows are made of, per source (a membership's or a payment plan's
    unpaid charges, by due date, in the order of practice then source id): its practice,
    patient, that practice's local day at the report's instant (an ordinal) and its
    charges; and, in ``cuts``, where each source's charges enter each bucket after the
    oldest (``len(labels) - 1`` positions a source)."""

    practices: list[str]
    patients: list[Patient]
    todays: list[int]
    charges: list[Sequence[DueCharge]]
    cuts: array[int]
    edges: tuple[int, ...]
    labels: tuple[str, ...]
    size: int

    def runs(self, k: int) -> Iterator[tuple[int, Sequence[DueCharge]]]:
        """Source ``k``'s charges in runs of one bucket, oldest first: (the bucket's index
        in ``labels``, its charges)."""
        width = len(self.labels) - 1
        for j in range(width + 1):
            run = self._run(k, j)
            if run:
                yield width - j, run

    def first(self, k: int) -> tuple[date, int]:
        """The sort key of source ``k``'s first row (rows are sorted by due date, stably)."""
        return self.charges[k][0].due_date, k

    def rows(self) -> Iterator[ReceivableRow]:
        """The rows, oldest first: by due date, then as the sources come."""
        e, labels, charges = self.edges, self.labels, self.charges
        flat = list(itertools.chain.from_iterable(charges))
        of = list(
            itertools.chain.from_iterable(
                itertools.repeat(k, len(c)) for k, c in enumerate(charges)
            )
        )
        dues = [c.due_date for c in flat]
        order = sorted(range(len(flat)), key=dues.__getitem__)  # stable
        del dues
        for r in order:
            k, c = of[r], flat[r]
            patient = self.patients[k]
            days = self.todays[k] - c.due_date.toordinal()
            yield ReceivableRow(
                practice=self.practices[k],
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

    def by_practice(self) -> dict[str, dict[str, Money]]:
        """Each practice's total per bucket, the practices in the order of their first
        row, the buckets oldest first."""
        spans: dict[str, list[int]] = {}  # practice -> its first and last source + 1
        for k, practice_id in enumerate(self.practices):
            spans.setdefault(practice_id, [k, k])[1] = k + 1
        width = len(self.labels) - 1
        result: dict[str, dict[str, Money]] = {}
        for practice_id, (lo, hi) in sorted(
            spans.items(), key=lambda item: min(map(self.first, range(*item[1])))
        ):
            totals = result[practice_id] = {}
            for j in range(width + 1):  # the oldest bucket first
                amounts = (c.amount for k in range(lo, hi) for c in self._run(k, j))
                first = next(amounts, None)
                if first is not None:
                    total = sum_in(first.currency, itertools.chain((first,), amounts))
                    totals[self.labels[width - j]] = total
        return result

    def _run(self, k: int, j: int) -> Sequence[DueCharge]:
        """Source ``k``'s charges in its ``j``-th bucket, the oldest first (j = 0)."""
        charges, width = self.charges[k], len(self.labels) - 1
        start = 0 if j == 0 else self.cuts[k * width + j - 1]
        return charges[start : len(charges) if j == width else self.cuts[k * width + j]]

    def by_patient(self) -> dict[tuple[str, str], dict[str, Money]]:
        """Each (practice, patient)'s total per bucket, in the order of their first row,
        the buckets oldest first."""
        cells: dict[tuple[str, str], dict[int, Money]] = {}
        firsts: dict[tuple[str, str], tuple[date, int]] = {}
        for k, (practice_id, patient) in enumerate(zip(self.practices, self.patients, strict=True)):
            key = (practice_id, patient.id)
            cell = cells.setdefault(key, {})
            for b, run in self.runs(k):
                total = sum_in(run[0].amount.currency, (c.amount for c in run))
                cell[b] = total if b not in cell else cell[b] + total
            first = self.first(k)
            if key not in firsts or first < firsts[key]:
                firsts[key] = first
        return {
            key: {self.labels[b]: cells[key][b] for b in sorted(cells[key], reverse=True)}
            for key in sorted(firsts, key=firsts.__getitem__)
        }


class PatientTotals(Mapping[tuple[str, str], Mapping[str, Money]]):
    """The aged receivables' ``by_patient``: (practice id, patient id) -> bucket label ->
    total, summed when first read (a report of a million rows and a hundred thousand
    patients makes none of these until then). A read-only mapping that compares like
    the dict of them."""

    __slots__ = ("_parts", "_totals")

    def __init__(self, totals: Mapping[tuple[str, str], Mapping[str, Money]] = {}) -> None:
        self._parts: _Parts | None = None
        self._totals: Mapping[tuple[str, str], Mapping[str, Money]] | None = dict(totals)

    @classmethod
    def _of(cls, parts: _Parts) -> PatientTotals:
        totals = cls()
        totals._parts, totals._totals = parts, None
        return totals

    def _read(self) -> Mapping[tuple[str, str], Mapping[str, Money]]:
        totals = self._totals
        if totals is None:
            parts = self._parts
            assert parts is not None
            totals = self._totals = parts.by_patient()
        return totals

    def __getitem__(self, key: tuple[str, str]) -> Mapping[str, Money]:
        return self._read()[key]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._read())

    def __repr__(self) -> str:
        return repr(self._read())

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the totals themselves."""
        return (PatientTotals, (dict(self._read()),))


@attrs.frozen(repr=False)  # Report's short __repr__
class AgedReceivables(Report):
    """Aged receivables at an instant.

    Attributes:
        rows: Every due, unpaid charge, oldest first (:class:`ReceivableRows`; a tuple
            of rows given is made one).
        labels: The bucket labels, in order.
        by_practice: practice id -> bucket label -> total.
        by_patient: (practice id, patient id) -> bucket label -> total (rows carry names;
            a :class:`PatientTotals`, summed when first read).
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
        return self.rows._practices()


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

    ``by_practice`` and ``totals`` are summed as the report is made; ``by_patient`` when
    first read (:class:`PatientTotals`), the row objects as they are read
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
    parts = _parts(store, sorted(ids), when, e, labels)
    by_practice = parts.by_practice()
    return AgedReceivables(
        rows=ReceivableRows._of(parts),
        at=when,
        labels=labels,
        by_practice=by_practice,
        by_patient=PatientTotals._of(parts),
        totals=per_currency(m for row in by_practice.values() for m in row.values()),
        timezones=zones_of(store, ids),
    )


def _parts(
    store: Store, ids: Iterable[str], at: datetime, edges: tuple[int, ...], labels: tuple[str, ...]
) -> _Parts:
    """The memberships and payment plans of practices ``ids`` (in that order) with a
    charge due and unpaid at ``at``, each practice's by source id (a membership before a
    plan of the same id)."""
    practices: list[str] = []
    patients: list[Patient] = []
    todays: list[int] = []
    charges: list[Sequence[DueCharge]] = []
    cuts: array[int] = array("q")
    for practice_id in ids:
        practice = store.practices.get(practice_id)
        day = at.astimezone(zone(practice.timezone)).date()
        starts = [date.fromordinal(max(1, day.toordinal() - edge)) for edge in reversed(edges)]
        starts.append(day)  # where each bucket after the oldest starts, the last Current
        found = sorted(
            (
                (source[0].source[1], n, patient, source)
                for n, (patient, unpaid) in enumerate(_unpaid(store, practice_id, at))
                if (source := _by_due(unpaid))
            ),
            key=lambda item: item[:2],  # by source id; memberships come first
        )
        for _, _, patient, source in found:
            practices.append(practice_id)
            patients.append(patient)
            todays.append(day.toordinal())
            charges.append(source)
            cuts.extend(bisect.bisect_left(source, start, key=_DUE) for start in starts)
    return _Parts(practices, patients, todays, charges, cuts, edges, labels, sum(map(len, charges)))


def _unpaid(
    store: Store, practice_id: str, at: datetime
) -> Iterator[tuple[Patient, Sequence[DueCharge]]]:
    """Each member's account holder and each plan's patient with their unpaid charges."""
    practice = store.practices.get(practice_id)
    reader = store.members if isinstance(store.members, UnpaidChargesReader) else None
    kept = None if reader is None else reader.unpaid_charges(practice_id=practice_id, at=at)
    if kept is not None:
        yield from ((m.account_holder, unpaid) for m, unpaid in kept)  # what the store keeps
    else:
        yield from _judged(store, practice_id, at, practice.timezone)
    scope = frozenset((practice_id,))
    for plan in store.payment_plans.find(PaymentPlanQuery(practices=scope)):
        yield plan.patient, unpaid_charges(None, (plan,), at=at, timezone=practice.timezone)


_DUE = operator.attrgetter("due_date")


def _by_due(charges: Sequence[DueCharge]) -> Sequence[DueCharge]:
    """``charges`` by due date, as ``unpaid_charges`` gives them (a host store's out of
    order are sorted, stably: the buckets are cut from that order)."""
    dues = [c.due_date for c in charges]
    if any(map(operator.gt, dues, itertools.islice(dues, 1, None))):
        return sorted(charges, key=_DUE)
    return charges


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
