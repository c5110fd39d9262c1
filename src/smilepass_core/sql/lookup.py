"""What a write's checks read: straight from the database (:class:`Lookup`), or, for a
load, from the load itself and a few batched reads (:class:`Batch`).

The repositories' checks are written once against this interface, so a single ``add``
and a load of a million rows apply the same rules.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from smilepass_core.domain import Payment
from smilepass_core.sql import codec
from smilepass_core.sql.schema import layouts, metadata

__all__ = ["Batch", "Lookup"]

#: Ids per ``IN (...)`` list (SQLite allows 32,766 parameters; PostgreSQL 65,535).
CHUNK: Final = 1000


def _payments_of(conn: Connection, source: tuple[str, str]) -> list[Payment]:
    table = layouts["payments"].table
    column = table.c.member_id if source[0] == "member" else table.c.payment_plan_id
    rows = conn.execute(sa.select(table).where(column == source[1])).mappings().all()
    return [codec.decode(layouts["payments"], row, {}) for row in rows]


#: What :meth:`Lookup.prefetch` may ask for besides a table's name: a practice's currency.
CURRENCY: Final = "currency"

_prefetches: dict[tuple[str, ...], sa.CompoundSelect[Any]] = {}


def _column(name: str) -> sa.ColumnElement[Any]:
    """What a lookup of ``name`` reads: the practice of an object of that table, or, for
    :data:`CURRENCY`, the practice's currency."""
    if name == CURRENCY:
        return layouts["practices"].table.c.currency
    table = layouts[name].table
    return table.c.id if name == "practices" else table.c.practice_id


def _prefetch(names: tuple[str, ...]) -> sa.CompoundSelect[Any]:
    """One ``UNION ALL`` of a lookup per name (ids bound as ``id0``, ``id1``...), made
    once per shape so SQLAlchemy compiles it once."""
    if names not in _prefetches:
        parts = []
        for i, name in enumerate(names):
            table = layouts["practices" if name == CURRENCY else name].table
            key: Any = sa.literal_column(str(i)).label("k")
            found = _column(name).label("v")
            parts.append(sa.select(key, found).where(table.c.id == sa.bindparam(f"id{i}")))
        _prefetches[names] = sa.union_all(*parts)
    return _prefetches[names]


class Lookup:
    """The database as the checks of one write see it (inside its transaction)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._known: dict[tuple[str, str], str | None] = {}

    def prefetch(self, wanted: Sequence[tuple[str, str | None]]) -> None:
        """Read every ``(table name or CURRENCY, id)`` of ``wanted`` in one statement, so
        the checks of one write cost one round trip (a ``None`` id is skipped)."""
        names = tuple(name for name, _ in wanted)
        ids = {f"id{i}": id for i, (_, id) in enumerate(wanted)}
        found: dict[int, Any] = dict(self.conn.execute(_prefetch(names), ids).all())
        for i, (name, id) in enumerate(wanted):
            if id is not None:
                value = found.get(i)
                self._known[(name, id)] = None if value is None else str(value)

    def _lookup(self, name: str, id: str) -> str | None:
        if (name, id) not in self._known:
            column = _column(name)
            table = column.table
            statement = sa.select(column).where(table.c.id == id)
            found = self.conn.execute(statement).scalar_one_or_none()
            self._known[(name, id)] = None if found is None else str(found)
        return self._known[(name, id)]

    def currency(self, practice_id: str) -> str | None:
        """The currency of a kept practice; ``None`` when there is none."""
        return self._lookup(CURRENCY, practice_id)

    def practice_of(self, name: str, id: str) -> str | None:
        """The practice of the object ``id`` kept in table ``name``; ``None`` if none."""
        return self._lookup(name, id)

    def payments_of(self, source: tuple[str, str], *, lock: bool = False) -> list[Payment]:
        """The ledger entries of ``source``; with ``lock``, the source's row is locked
        first (``FOR UPDATE``), so two refunds of one source are checked one at a time."""
        if lock:
            table = layouts["members" if source[0] == "member" else "payment_plans"].table
            self.conn.execute(
                sa.select(table.c.id).where(table.c.id == source[1]).with_for_update()
            )
        return _payments_of(self.conn, source)


class Batch(Lookup):
    """A load: the checks see the database plus what the load added before; rows are
    written together by :meth:`flush` (``executemany``, parents before children)."""

    def __init__(self, conn: Connection, objects: Iterable[tuple[str, Any]]) -> None:
        super().__init__(conn)
        wanted: defaultdict[str, list[str]] = defaultdict(list)
        for name, obj in objects:
            wanted[name].append(obj.id)
        # What the database holds is cached as Lookup does: the load's own ids are read
        # up front in chunks; references outside it when met.
        for name, ids in wanted.items():
            column = _column(name)
            table = layouts[name].table
            unique = sorted(set(ids))
            self._known |= dict.fromkeys(((name, id) for id in unique), None)
            for start in range(0, len(unique), CHUNK):
                chunk = unique[start : start + CHUNK]
                statement = sa.select(table.c.id, column).where(table.c.id.in_(chunk))
                for id, practice in conn.execute(statement):
                    self._known[(name, id)] = practice
        self._added: dict[tuple[str, str], str] = {}
        self._ledger: dict[tuple[str, str], list[Payment]] = {}
        self._rows: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)

    def exists(self, name: str, id: str) -> bool:
        """True when ``id`` is kept in ``name`` or was added by this load."""
        return self.practice_of(name, id) is not None

    def in_database(self, name: str, id: str) -> bool:
        """True when ``id`` was kept in ``name`` before this load."""
        return self._lookup(name, id) is not None

    def practice_of(self, name: str, id: str) -> str | None:
        found = self._added.get((name, id))
        return found if found is not None else self._lookup(name, id)

    def payments_of(self, source: tuple[str, str], *, lock: bool = False) -> list[Payment]:
        if source not in self._ledger:
            parent = ("members" if source[0] == "member" else "payment_plans", source[1])
            new = parent in self._added and not self.in_database(*parent)
            # A source this load added has no entries in the database yet.
            self._ledger[source] = [] if new else super().payments_of(source, lock=lock)
        return self._ledger[source]

    def add(self, name: str, obj: Any, rows: dict[str, list[dict[str, Any]]]) -> None:
        """Stage ``obj`` (its rows by table) as added."""
        self._added[(name, obj.id)] = obj.id if name == "practices" else obj.practice_id
        if name == "practices":
            self._known[(CURRENCY, obj.id)] = obj.currency
        if isinstance(obj, Payment):
            self.payments_of(obj.source).append(obj)
        for table, staged in rows.items():
            self._rows[table] += staged

    def flush(self) -> None:
        """Write every staged row, table by table, parents first."""
        for table in metadata.sorted_tables:
            rows = self._rows.pop(table.name, [])
            for start in range(0, len(rows), CHUNK * 5):
                self.conn.execute(sa.insert(table), rows[start : start + CHUNK * 5])
