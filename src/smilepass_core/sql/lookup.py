"""What a write's checks read: straight from the database (:class:`Lookup`), or, for a
load, from the load itself and a few batched reads (:class:`Batch`).

The repositories' checks are written once against this interface, so a single ``add``
and a load of a million rows apply the same rules.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
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


class Lookup:
    """The database as the checks of one write see it (inside its transaction)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def currency(self, practice_id: str) -> str | None:
        """The currency of a kept practice; ``None`` when there is none."""
        table = layouts["practices"].table
        found = self.conn.execute(
            sa.select(table.c.currency).where(table.c.id == practice_id)
        ).scalar_one_or_none()
        return None if found is None else str(found)

    def practice_of(self, name: str, id: str) -> str | None:
        """The practice of the object ``id`` kept in table ``name``; ``None`` if none."""
        table = layouts[name].table
        column = table.c.id if name == "practices" else table.c.practice_id
        found = self.conn.execute(sa.select(column).where(table.c.id == id)).scalar_one_or_none()
        return None if found is None else str(found)

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
        # (table, id) -> its practice in the database, or None where it has none: the
        # load's own ids are read up front in chunks; references outside it when met.
        self._kept: dict[tuple[str, str], str | None] = {}
        for name, ids in wanted.items():
            table = layouts[name].table
            column = table.c.id if name == "practices" else table.c.practice_id
            unique = sorted(set(ids))
            self._kept |= dict.fromkeys(((name, id) for id in unique), None)
            for start in range(0, len(unique), CHUNK):
                chunk = unique[start : start + CHUNK]
                statement = sa.select(table.c.id, column).where(table.c.id.in_(chunk))
                for id, practice in conn.execute(statement):
                    self._kept[(name, id)] = practice
        self._added: dict[tuple[str, str], str] = {}
        self._currencies: dict[str, str | None] = {}
        self._ledger: dict[tuple[str, str], list[Payment]] = {}
        self._rows: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)

    def exists(self, name: str, id: str) -> bool:
        """True when ``id`` is kept in ``name`` or was added by this load."""
        return self.practice_of(name, id) is not None

    def in_database(self, name: str, id: str) -> bool:
        """True when ``id`` was kept in ``name`` before this load."""
        return self._in_database(name, id) is not None

    def _in_database(self, name: str, id: str) -> str | None:
        if (name, id) not in self._kept:
            self._kept[(name, id)] = super().practice_of(name, id)
        return self._kept[(name, id)]

    def currency(self, practice_id: str) -> str | None:
        if practice_id not in self._currencies:
            self._currencies[practice_id] = super().currency(practice_id)
        return self._currencies[practice_id]

    def practice_of(self, name: str, id: str) -> str | None:
        found = self._added.get((name, id))
        return found if found is not None else self._in_database(name, id)

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
            self._currencies[obj.id] = obj.currency
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
