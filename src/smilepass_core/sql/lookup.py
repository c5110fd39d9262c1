"""What a write's checks read: straight from the database (:class:`Lookup`), or, for a
load, from the load itself and a few batched reads (:class:`Batch`).

The repositories' checks are written once against this interface, so a single ``add``
and a load of a million rows apply the same rules.
"""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import datetime
from typing import Any, Final, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from smilepass_core.domain import MembershipStatus, Payment, PaymentKind
from smilepass_core.sql import codec
from smilepass_core.sql.schema import UtcInstant, layouts, metadata

__all__ = ["Batch", "Lookup"]

T = TypeVar("T")

#: Ids per ``IN (...)`` list (SQLite allows 32,766 parameters; PostgreSQL 65,535).
CHUNK: Final = 1000


def _payments_of(conn: Connection, source: tuple[str, str]) -> list[Payment]:
    table = layouts["payments"].table
    column = table.c.member_id if source[0] == "member" else table.c.payment_plan_id
    rows = conn.execute(sa.select(table).where(column == source[1])).mappings().all()
    return [codec.decode(layouts["payments"], row, {}) for row in rows]


#: What :meth:`Lookup.prefetch` may ask for besides a table's name: a practice's currency.
CURRENCY: Final = "currency"
#: A practice's time zone (what an offer from a template is judged in).
TIMEZONE: Final = "timezone"
#: Whether a member holds a payment plan offered from a template (``"yes"`` or NULL).
MEMBER_OFFERS: Final = "member_offers"
#: The instant of a member's latest membership charge, or NULL (read as an instant, in
#: the prefetch's third column).
LAST_CHARGE: Final = "last_charge"

_prefetches: dict[tuple[str, ...], sa.CompoundSelect[Any]] = {}


#: What :meth:`Lookup.prefetch` may ask for with an instant: a campaign's status then.
CAMPAIGN_AT: Final = "campaign_at"
#: A lookup of a campaign's plans (its ``plans`` column: a JSON array, or NULL for every
#: plan).
CAMPAIGN_PLANS: Final = "campaign_plans"


def _status_at(campaign_id: Any, at: Any) -> sa.Select[Any]:
    """The status of a campaign at an instant: its last history row stamped at or before
    it (the history is kept whole, a window's included)."""
    h = layouts["campaigns"].children["history"].table
    return (
        sa.select(h.c.to_status)
        .where(h.c.campaign_id == campaign_id, h.c.at <= at)
        .order_by(h.c.seq.desc())
        .limit(1)
    )


def _campaign_status_at(i: int) -> Any:
    """:func:`_status_at` of the campaign ``id{i}`` at ``at{i}``, for the prefetch."""
    at = sa.bindparam(f"at{i}", type_=UtcInstant())
    return _status_at(layouts["campaigns"].table.c.id, at).scalar_subquery()


def _column(name: str) -> sa.ColumnElement[Any]:
    """What a lookup of ``name`` reads: the practice of an object of that table, or, for
    :data:`CURRENCY` (:data:`TIMEZONE`), the practice's currency (time zone)."""
    if name == CURRENCY:
        return layouts["practices"].table.c.currency
    if name == TIMEZONE:
        return layouts["practices"].table.c.timezone
    if name == CAMPAIGN_PLANS:
        return layouts["campaigns"].table.c.plans
    if name == MEMBER_OFFERS:
        plans, members = layouts["payment_plans"].table, layouts["members"].table
        offered = sa.exists().where(
            plans.c.member_id == members.c.id, plans.c.template_id.is_not(None)
        )
        return sa.case((offered, sa.literal("yes", sa.String())), else_=sa.null())
    table = layouts[name].table
    return table.c.id if name == "practices" else table.c.practice_id


def _table(name: str) -> sa.Table:
    """The table whose ``id`` a lookup of ``name`` is keyed by."""
    if name in (CURRENCY, TIMEZONE):
        return layouts["practices"].table
    if name in (CAMPAIGN_AT, CAMPAIGN_PLANS):
        return layouts["campaigns"].table
    return layouts["members" if name in (MEMBER_OFFERS, LAST_CHARGE) else name].table


def _latest_charge(member_id: Any) -> sa.Select[Any]:
    """The instant of the latest membership charge of the member ``member_id``."""
    ledger = layouts["payments"].table
    return sa.select(sa.func.max(ledger.c.at)).where(
        ledger.c.member_id == member_id, ledger.c.kind == PaymentKind.CHARGE.value
    )


def _prefetch(names: tuple[str, ...]) -> sa.CompoundSelect[Any]:
    """One ``UNION ALL`` of a lookup per name (ids bound as ``id0``, ``id1``...), made
    once per shape so SQLAlchemy compiles it once: the key, the value as text, and an
    instant (:data:`LAST_CHARGE`'s; NULL for the others)."""
    if names not in _prefetches:
        parts = []
        for i, name in enumerate(names):
            table = _table(name)
            key: Any = sa.literal_column(str(i)).label("k")
            # Typed NULLs: PostgreSQL reads an untyped one as text, which a UNION with a
            # timestamp refuses.
            instant: Any = sa.cast(sa.null(), sa.DateTime())
            if name == LAST_CHARGE:
                found: Any = sa.cast(sa.null(), sa.String())
                instant = _latest_charge(table.c.id).scalar_subquery()
            elif name == CAMPAIGN_AT:
                found = _campaign_status_at(i)
            else:
                found = _column(name)
            row = (key, found.label("v"), sa.type_coerce(instant, UtcInstant()).label("t"))
            parts.append(sa.select(*row).where(table.c.id == sa.bindparam(f"id{i}")))
        _prefetches[names] = sa.union_all(*parts)
    return _prefetches[names]


class Lookup:
    """The database as the checks of one write see it (inside its transaction)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._known: dict[tuple[str, str], str | None] = {}
        self._statuses: dict[tuple[str, datetime], str | None] = {}
        self._windows: dict[str, tuple[datetime, datetime | None] | None] = {}
        self._held: set[tuple[str, str]] = set()
        self._memo: dict[Hashable, Any] = {}
        self._charged: dict[str, datetime | None] = {}

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, once per ``key`` for this write (a load's many charges of one
        practice read its plans once)."""
        if key not in self._memo:
            self._memo[key] = compute()
        found: T = self._memo[key]
        return found

    def prefetch(
        self,
        wanted: Sequence[tuple[str, str | None]],
        sign_up: tuple[str | None, datetime] | None = None,
    ) -> None:
        """Read every ``(table name, CURRENCY or TIMEZONE, id)`` of ``wanted``, and the
        status of the campaign ``sign_up`` names at its instant, in one statement, so the
        checks of one write cost one round trip (a ``None`` id is skipped)."""
        asked = list(wanted)
        params: dict[str, Any] = {}
        if sign_up is not None and sign_up[0] is not None:
            params[f"at{len(asked)}"] = sign_up[1]
            asked.append((CAMPAIGN_AT, sign_up[0]))
        names = tuple(name for name, _ in asked)
        params |= {f"id{i}": id for i, (_, id) in enumerate(asked)}
        rows = self.conn.execute(_prefetch(names), params).all()
        found: dict[int, Any] = {k: v for k, v, _ in rows}
        instants: dict[int, datetime | None] = {k: t for k, _, t in rows}
        for i, (name, id) in enumerate(asked):
            if id is None:
                continue
            value = None if found.get(i) is None else str(found[i])
            if name == LAST_CHARGE:
                self._charged[id] = instants.get(i)
            elif name == CAMPAIGN_AT:
                assert sign_up is not None
                self._statuses[(id, sign_up[1])] = value
            else:
                self._known[(name, id)] = value

    def hold(self, name: str, id: str) -> None:
        """Lock the row ``id`` of table ``name`` for share until the write commits (once
        per row): a write that locks it for update is waited for first."""
        if (name, id) not in self._held:
            table = layouts[name].table
            self.conn.execute(
                sa.select(table.c.id).where(table.c.id == id).with_for_update(read=True)
            )
            self._held.add((name, id))

    def campaign_status(self, campaign_id: str, at: datetime) -> str | None:
        """The status (its value) of a kept campaign at ``at``; ``None`` before its first
        change. Prefetched with the write's checks, else read here."""
        if (campaign_id, at) not in self._statuses:
            statement = _status_at(campaign_id, at)
            self._statuses[(campaign_id, at)] = self.conn.execute(statement).scalar_one_or_none()
        return self._statuses[(campaign_id, at)]

    def _lookup(self, name: str, id: str) -> str | None:
        if (name, id) not in self._known:
            statement = sa.select(_column(name)).where(_table(name).c.id == id)
            found = self.conn.execute(statement).scalar_one_or_none()
            self._known[(name, id)] = None if found is None else str(found)
        return self._known[(name, id)]

    def campaign_plans(self, campaign_id: str) -> frozenset[str] | None:
        """The plans a kept campaign applies to (``None``: every plan, or no such
        campaign). Prefetched with the write's checks, else read here."""
        raw = self._lookup(CAMPAIGN_PLANS, campaign_id)
        return None if raw is None else frozenset(json.loads(raw))

    def staged(self, name: str, id: str) -> Any:
        """An object this write stages in table ``name`` (a load's), else ``None``."""
        return None

    def staged_in(self, name: str, practice_id: str) -> list[Any]:
        """The objects of practice ``practice_id`` this write stages in table ``name``."""
        return []

    def member_window(self, member_id: str) -> tuple[datetime, datetime | None] | None:
        """A kept member's enrolment and first cancellation instants (``None`` when never
        cancelled); ``None`` when there is no such member. Read once per member, after
        locking its row (``FOR UPDATE``) until the write commits: a save of the member
        (which locks the row before it reads the member's charges) waits for this write's
        charge, and this write for a save in progress, so a charge and a cancellation that
        would contradict each other are checked one after the other."""
        if member_id not in self._windows:
            members = layouts["members"].table
            h = layouts["members"].children["history"].table
            cancelled = (
                sa.select(sa.func.min(h.c.at))
                .where(h.c.member_id == members.c.id, h.c.to_status == "cancelled")
                .scalar_subquery()
            )
            # Lock first, then read in a statement of its own: under READ COMMITTED the
            # read then sees what a save that held the lock committed.
            self.conn.execute(
                sa.select(members.c.id).where(members.c.id == member_id).with_for_update()
            )
            statement = sa.select(members.c.created_at, cancelled.label("cancelled")).where(
                members.c.id == member_id
            )
            row = self.conn.execute(statement).one_or_none()
            self._windows[member_id] = None if row is None else (row[0], row[1])
        return self._windows[member_id]

    def currency(self, practice_id: str) -> str | None:
        """The currency of a kept practice; ``None`` when there is none."""
        return self._lookup(CURRENCY, practice_id)

    def member_offers(self, member_id: str) -> bool:
        """Whether a kept member holds a payment plan offered from a template."""
        return self._lookup(MEMBER_OFFERS, member_id) is not None

    def last_charge_at(self, member_id: str) -> datetime | None:
        """The instant of a kept member's latest membership charge (succeeded or failed);
        ``None`` when they have none. Prefetched with the write's checks, else read here."""
        if member_id not in self._charged:
            latest = self.conn.execute(_latest_charge(member_id)).scalar_one_or_none()
            self._charged[member_id] = latest
        return self._charged[member_id]

    def timezone(self, practice_id: str) -> str | None:
        """The time zone of a kept practice; ``None`` when there is none."""
        return self._lookup(TIMEZONE, practice_id)

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


#: The tables whose staged objects a load's checks read back (:meth:`Lookup.staged`).
_STAGED: Final = frozenset(
    {"campaigns", "practices", "membership_plans", "payment_plan_templates", "members"}
)


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
        # Staged campaigns (the sign-up checks), practices, membership plans and members
        # (the charge checks), templates and members (the offer checks), by table and id.
        self._objects: defaultdict[str, dict[str, Any]] = defaultdict(dict)
        self._histories: dict[str, list[tuple[datetime, str]]] = {}
        self._ledger: dict[tuple[str, str], list[Payment]] = {}
        self._rows: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)

    def staged(self, name: str, id: str) -> Any:
        return self._objects[name].get(id)

    def staged_in(self, name: str, practice_id: str) -> list[Any]:
        return [o for o in self._objects[name].values() if o.practice_id == practice_id]

    def campaign_status(self, campaign_id: str, at: datetime) -> str | None:
        """As :meth:`Lookup.campaign_status`, from the campaign's history read once per
        load (a load checks many sign-ups through few campaigns)."""
        if campaign_id not in self._histories:
            self.hold("campaigns", campaign_id)
            h = layouts["campaigns"].children["history"].table
            statement = (
                sa.select(h.c.at, h.c.to_status)
                .where(h.c.campaign_id == campaign_id)
                .order_by(h.c.seq)
            )
            self._histories[campaign_id] = [
                (row[0], row[1]) for row in self.conn.execute(statement)
            ]
        history = self._histories[campaign_id]
        kept = bisect.bisect_right([a for a, _ in history], at)
        return history[kept - 1][1] if kept else None

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
        if name in _STAGED:
            self._objects[name][obj.id] = obj
        if name == "members":  # its charges in this load are checked against it
            self._windows[obj.id] = (obj.created_at, obj.first_entered(MembershipStatus.CANCELLED))
        if name == "practices":
            self._known[(CURRENCY, obj.id)] = obj.currency
            self._known[(TIMEZONE, obj.id)] = obj.timezone
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
