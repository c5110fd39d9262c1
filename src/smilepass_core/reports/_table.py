"""What every report shares: frozen rows, ``to_records()`` and ``to_csv()``."""

from __future__ import annotations

import csv
import enum
from collections.abc import Callable, Collection, Iterable, Mapping
from collections.abc import Set as AbstractSet
from datetime import date, datetime
from typing import IO, Any, ClassVar, TypeVar

from smilepass_core.domain import HasHistory
from smilepass_core.domain.payments import Payment
from smilepass_core.errors import InvalidValue, NotFound
from smilepass_core.money import Money
from smilepass_core.presentation import Items, Tabular
from smilepass_core.queries import ACTION_ORDERS, Order, PaymentQuery, ScopeQuery
from smilepass_core.repositories import Store

__all__ = [
    "FORMULA_TRIGGERS",
    "Report",
    "Rows",
    "Table",
    "neutralised",
    "plain",
    "practice_ids",
    "require_ids",
    "sort_rows",
    "to_csv",
    "to_records",
    "zones_of",
]

Record = dict[str, Any]
T = TypeVar("T")


def plain(value: Any) -> Any:
    """A value as a plain record field: Money -> its Decimal amount, enums -> their value,
    instants and dates -> ISO 8601 strings, tuples -> "; "-joined strings."""
    if isinstance(value, Money):
        return value.amount
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple):
        return "; ".join(str(plain(v)) for v in value)
    return value


class Table:
    """Mixin for frozen row classes: ``COLUMNS`` names the record fields, in order."""

    COLUMNS: ClassVar[tuple[str, ...]]
    #: Sort keys of columns that do not sort by their shown value (a progression).
    SORT_KEYS: ClassVar[Mapping[str, Callable[[Any], Any]]] = {}

    def record(self) -> Record:
        """This row as a dict of plain values keyed by ``COLUMNS``."""
        return {c: plain(getattr(self, c)) for c in self.COLUMNS}


def to_records(rows: Iterable[Table]) -> list[Record]:
    """Rows as plain dicts with stable column names."""
    return [row.record() for row in rows]


#: What a spreadsheet reads as the start of a formula when a cell begins with it (OWASP's
#: CSV injection guidance).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralised(text: str) -> str:
    """``text`` as a spreadsheet shows it literally: a ``'`` before a leading formula trigger.

    >>> print(neutralised('=HYPERLINK("http://evil.example")'), neutralised("Ada"))
    '=HYPERLINK("http://evil.example") Ada
    """
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def to_csv(
    rows: Iterable[Table],
    columns: tuple[str, ...],
    file: IO[str],
    *,
    neutralise_formulas: bool = True,
) -> None:
    """Write ``rows`` as CSV with a header line (Decimal amounts stay exact).

    Text cells that a spreadsheet would run as a formula are :func:`neutralised` unless
    ``neutralise_formulas`` is false; numbers (a negative amount) are never touched.
    """
    writer = csv.DictWriter(file, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:  # one record at a time
        record = row.record()
        writer.writerow({k: _cell(v, neutralise_formulas) for k, v in record.items()})


def _cell(value: Any, neutralise_formulas: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, str) and neutralise_formulas:
        return neutralised(value)
    return str(value)


def practice_ids(store: Store, practices: Iterable[str] | str | None) -> tuple[str, ...]:
    """The practice ids asked for (all of the store's when ``None``), each checked to exist.

    Raises:
        NotFound: an unknown practice id.
        InvalidValue: an empty selection.
    """
    if practices is None:
        return tuple(p.id for p in store.practices.find(ScopeQuery()))
    ids = (practices,) if isinstance(practices, str) else tuple(dict.fromkeys(practices))
    if not ids:
        raise InvalidValue("practices", ids, "name at least one practice")
    for practice_id in ids:
        store.practices.get(practice_id)
    return ids


H = TypeVar("H", bound=HasHistory[Any])


def as_it_stood(
    objects: Iterable[H], at: datetime, statuses: AbstractSet[Any] | None = None
) -> list[H]:
    """Each object as it stood at ``at`` (see ``HasHistory.as_of``), with a status in
    ``statuses`` then (any when ``None``); those that did not exist yet are left out.

    A report asks its store without the filters that change over time (statuses,
    archiving) and applies them here, at ``at``.
    """
    return [
        then
        for obj in objects
        if (then := obj.as_of(at)) is not None and (statuses is None or then.status in statuses)
    ]


def member_ledgers(store: Store, practices: tuple[str, ...]) -> dict[str, list[Payment]]:
    """The membership ledger of ``practices``, per member id, in order of time (one read)."""
    result: dict[str, list[Payment]] = {}
    for payment in store.payments.find(PaymentQuery(practices=practices)):
        if payment.member_id is not None:
            result.setdefault(payment.member_id, []).append(payment)
    for entries in result.values():
        entries.sort(key=lambda p: (p.at, p.id))
    return result


def zones_of(store: Store, ids: Iterable[str]) -> dict[str, str]:
    """Each practice id's IANA time zone (what a report shows its instants in)."""
    return {practice_id: store.practices.get(practice_id).timezone for practice_id in ids}


def require_ids(
    repository: Any, ids: Iterable[str] | None, practices: tuple[str, ...], field: str
) -> frozenset[str] | None:
    """Check that every id of a filter exists in ``repository`` within ``practices``.

    Raises:
        NotFound: an unknown id (or one of another practice), naming ``field``.
    """
    if ids is None:
        return None
    wanted = frozenset((ids,) if isinstance(ids, str) else ids)
    for id in wanted:
        try:
            obj = repository.get(id)
        except NotFound as error:
            raise NotFound(error.kind, id, field=field) from None
        if obj.practice_id not in practices:
            raise NotFound(type(obj).__name__, id, field=field)
    return wanted


def _sort_value(value: Any) -> Any:
    if isinstance(value, str):  # ignoring case, as the stores sort names
        return value.casefold()
    if isinstance(value, Money):
        return value.amount
    if isinstance(value, enum.Enum):
        order = ACTION_ORDERS.get(type(value))
        return order.index(value) if order else str(value.value)
    if isinstance(value, tuple):
        return _sort_value(str(plain(value)))
    return value


def sort_rows(rows: Iterable[T], order: Order | None) -> list[T]:
    """Rows sorted by ``order``'s columns as the report shows them, by the stores' rules
    (text ignoring case, a status column by what needs action first, ``None`` last either
    way; ties by the first column, the row's id), then paged.

    Raises:
        InvalidValue: a column the rows do not have.
    """
    result = list(rows)
    if order is None:
        return result
    if result:
        columns = type(result[0]).COLUMNS  # type: ignore[attr-defined]
        for key in order.keys:
            if key.column not in columns:
                raise InvalidValue("column", key.column, f"unknown; sortable: {', '.join(columns)}")
        result.sort(key=lambda r: getattr(r, columns[0]))  # ties: by id, exactly
        for key in reversed(order.keys):

            def sort_key(row: T, column: str = key.column, desc: bool = key.descending) -> Any:
                special = type(row).SORT_KEYS.get(column)  # type: ignore[attr-defined]
                value = special(row) if special else _sort_value(getattr(row, column))
                return (value is not None, value) if desc else (value is None, value)

            result.sort(key=sort_key, reverse=key.descending)
    start = order.page.offset
    stop = None if order.page.limit is None else start + order.page.limit
    return result[start:stop]


R = TypeVar("R", bound=Table)


class Rows(Items[R]):
    """A list inside a report (the weekly check's three lists): a read-only sequence of
    rows that compares like the tuple of them and is also a typed table
    (``rows.to_polars()``), its columns ``row.COLUMNS``.

    Attributes:
        row: The row type.
        timezone: The IANA zone its instants are shown in.
    """

    __slots__ = ("row", "timezone")
    row: type[R]
    timezone: str

    def __init__(self, rows: Iterable[R], *, row: type[R], timezone: str = "UTC") -> None:
        super().__init__(rows)
        object.__setattr__(self, "row", row)
        object.__setattr__(self, "timezone", timezone)

    def __repr__(self) -> str:
        """One line: the row type and the count."""
        n = len(self)
        return f"<Rows of {self.row.__name__}: {n:,} row{'' if n == 1 else 's'}>"

    def to_records(self) -> list[Record]:
        """The rows as plain dicts with stable column names (``row.COLUMNS``)."""
        return to_records(self)

    def to_csv(self, file: IO[str], *, neutralise_formulas: bool = True) -> None:
        """Write the rows as CSV, header first (see :meth:`Report.to_csv`)."""
        to_csv(self, self.row.COLUMNS, file, neutralise_formulas=neutralise_formulas)


class Report(Tabular):
    """Mixin for frozen report classes holding ``rows`` of one :class:`Table` type.

    A report class is decorated ``@attrs.frozen(repr=False)``: attrs would otherwise
    replace the short :meth:`__repr__` below with its dump of every row.
    """

    ROW: ClassVar[type[Table]]
    rows: Collection[Any]
    #: Each practice of the report and its IANA zone.
    timezones: Mapping[str, str]

    @property
    def shared_timezone(self) -> str | None:
        """The one IANA zone all the report's practices share; ``None`` when they differ
        (then a single column or heading shows its instants in UTC)."""
        zones = set(self.timezones.values())
        return zones.pop() if len(zones) == 1 else None

    def __repr__(self) -> str:
        """One line: the report's name, its row count and the practices of its rows (sorted).

        >>> from smilepass_core.demo import DEMO_NOW, demo_store
        >>> from smilepass_core.reports import membership_list
        >>> membership_list(demo_store(), as_of=DEMO_NOW, practices="syd")
        <MembershipList: 186 rows, practices syd>
        """
        n = len(self.rows)
        named = sorted(str(p) for p in set(self._practices()) if p is not None)
        where = f", practices {', '.join(named)}" if named else ""
        return f"<{type(self).__name__}: {n:,} row{'' if n == 1 else 's'}{where}>"

    def _practices(self) -> Iterable[Any]:
        """The practices of the rows (``None`` for a row without one)."""
        return (getattr(row, "practice", None) for row in self.rows)

    def to_records(self) -> list[Record]:
        """The rows as plain dicts with stable column names (``ROW.COLUMNS``)."""
        return to_records(self.rows)

    def to_csv(self, file: IO[str], *, neutralise_formulas: bool = True) -> None:
        """Write the rows as CSV, header first; text cells a spreadsheet would run as a
        formula get a leading ``'`` unless ``neutralise_formulas`` is false."""
        to_csv(self.rows, self.ROW.COLUMNS, file, neutralise_formulas=neutralise_formulas)
