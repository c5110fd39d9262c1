"""``SqlStore``: every repository protocol over a SQLAlchemy engine.

Reads become one ``SELECT`` on the aggregate table and one of all its child rows
(never one per object); counts and sums are aggregate SQL. Writes are
transactional and check the same rules as :class:`~smilepass_core.InMemoryStore`.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from smilepass_core.domain import (
    COUNTING_STATUSES,
    Campaign,
    CampaignStatus,
    Member,
    MembershipPlan,
    MembershipStatus,
    Payment,
    PaymentKind,
    PaymentOutcome,
    PaymentPlan,
    PaymentPlanStatus,
    PaymentPlanTemplate,
    Practice,
    Referral,
    ReferralStatus,
    StaffUser,
    check_codes,
    check_joiners,
    check_members_plans,
    check_offer,
    check_offers,
    check_refund,
    check_sign_up,
    check_sign_up_plan,
    check_successor,
    check_template_change,
    check_version,
)
from smilepass_core.domain.billing import (
    bills_alike,
    check_cancel_after_charges,
    check_charge_window,
    check_member_repriced,
    check_membership_charge,
    check_reprice,
    check_timezone_kept,
    first_rebilled_day,
)
from smilepass_core.domain.discounts import check_discount_currency, check_grant_currency
from smilepass_core.domain.templates import TERMS, member_change, offer_of
from smilepass_core.errors import (
    ConflictingPayment,
    CurrencyMismatch,
    DuplicateId,
    InvalidValue,
    NotFound,
    RuleViolation,
    SmilepassError,
    VersionConflict,
)
from smilepass_core.money import Money
from smilepass_core.queries import (
    ACTION_ORDERS,
    MemberQuery,
    Order,
    PaymentPlanQuery,
    PaymentQuery,
    ReferralQuery,
    ScopeQuery,
    check_order,
    series_edges,
)
from smilepass_core.read_only_list import ReadOnlyList
from smilepass_core.repositories import STORE_TYPES, as_record_error, load_order
from smilepass_core.sql import codec, overdue
from smilepass_core.sql.lookup import (
    CAMPAIGN_PLANS,
    CURRENCY,
    LAST_CHARGE,
    MEMBER_OFFERS,
    TIMEZONE,
    Batch,
    Lookup,
)
from smilepass_core.sql.schema import AMOUNTS, REFERENCES, SPANS, Layout, create_schema, layouts

if TYPE_CHECKING:
    from smilepass_core.repositories import MemberSeriesReader, PaymentPlanSeriesReader

__all__ = ["SqlStore"]

T = TypeVar("T")
Q = TypeVar("Q")
_ACTIVE = MembershipStatus.ACTIVE.value
#: Loads of at least this many objects refresh PostgreSQL's planner statistics.
ANALYZE_AFTER = 10_000


def _in(column: Any, ids: frozenset[Any] | None) -> Any:
    """``column IN ids`` (no filter for ``None``; an empty set matches nothing)."""
    if ids is None:
        return None
    values = sorted(v.value if hasattr(v, "value") else v for v in ids)
    return column.in_(values)


def _present(*conditions: Any) -> list[Any]:
    """The conditions that filter (``None`` ones do not)."""
    return [c for c in conditions if c is not None]


def _between(column: Any, first: Any, last: Any) -> list[Any]:
    """``first <= column <= last``, each bound when given (start-date bounds)."""
    return _present(
        None if first is None else column >= first, None if last is None else column <= last
    )


def _within(column: Any, range_: Any) -> list[Any]:
    """``column`` inside the half-open ``range_`` (a DateRange), when given."""
    return [] if range_ is None else [column >= range_.start, column < range_.end]


def _rank(column: Any, kind: type) -> Any:
    """The status column as its place in the action order (what needs action first)."""
    return sa.case({status.value: i for i, status in enumerate(ACTION_ORDERS[kind])}, value=column)


class _Repository(Generic[T, Q]):
    """One aggregate table (and its child tables) behind a repository protocol."""

    name: ClassVar[str]
    kind: ClassVar[type]

    def __init__(self, store: SqlStore) -> None:
        self._store = store
        self._layout: Layout = layouts[self.name]
        self.table: sa.Table = self._layout.table

    # -- reads ------------------------------------------------------------------------

    def get(self, id: str) -> T:
        """The object with ``id``; raises :class:`NotFound`."""
        with self._store._connection() as conn:
            found = self._get(conn, id)
        if found is None:
            raise NotFound(self.kind.__name__, id)
        return found

    def version(self, id: str) -> int:
        """How many writes the object with ``id`` has had; raises :class:`NotFound`."""
        with self._store._connection() as conn:
            version = self._version(conn, id)
        if version is None:
            raise NotFound(self.kind.__name__, id)
        return version

    def find(self, query: Q, *, order: Order | None = None) -> ReadOnlyList[T]:
        """Matching objects, sorted and paged by ``order`` (ties by id) in SQL, as a
        read-only sequence (as :class:`~smilepass_core.InMemoryStore` answers)."""
        self._check_query(query)
        check_order(self.kind, order)
        with self._store._connection() as conn:
            return ReadOnlyList(self._read(conn, self._ordered(self._select(conn, query), order)))

    def count(self, query: Q) -> int:
        """How many objects match (one ``SELECT count(*)``)."""
        self._check_query(query)
        with self._store._connection() as conn:
            where = self._where(conn, query)
            statement = sa.select(sa.func.count()).select_from(self.table).where(*where)
            return int(conn.execute(statement).scalar_one())

    def __len__(self) -> int:
        with self._store._connection() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(self.table)).scalar_one()
            )

    def __iter__(self) -> Iterator[T]:
        with self._store._connection() as conn:
            return iter(self._read(conn, sa.select(self.table).order_by(self.table.c.id)))

    # -- query translation -------------------------------------------------------------

    query_type: ClassVar[type] = ScopeQuery

    def _check_query(self, query: Any) -> None:
        if not isinstance(query, self.query_type):
            raise InvalidValue("query", query, f"must be a {self.query_type.__name__}")

    def _where(self, conn: Connection, query: Any) -> list[Any]:
        """The query's filters as SQL conditions."""
        c = self.table.c
        practice = c.id if self.name == "practices" else c.practice_id
        return _present(_in(practice, query.practices), _in(c.id, query.ids))

    def _select(self, conn: Connection, query: Any) -> sa.Select[Any]:
        return sa.select(self.table).where(*self._where(conn, query))

    #: Sort expressions per list column (see ``queries.sort_columns``).
    def _sort(self, column: str) -> list[Any]:
        return [self.table.c[column]]

    def _ordered(self, select: sa.Select[Any], order: Order | None) -> sa.Select[Any]:
        keys: list[Any] = []
        for key in order.keys if order else ():
            for expression in self._sort(key.column):
                direction = expression.desc() if key.descending else expression.asc()
                keys.append(direction.nulls_last())
        select = select.order_by(*keys, self.table.c.id.asc())
        if order is not None:
            if order.page.offset:
                select = select.offset(order.page.offset)
            if order.page.limit is not None:
                select = select.limit(order.page.limit)
        return select

    # -- rows to objects ----------------------------------------------------------------

    def _read(self, conn: Connection, select: sa.Select[Any]) -> list[T]:
        """The objects of ``select`` (rows of this table), in its order: one statement
        for the rows and one for all their child rows."""
        rows: Sequence[Any] = conn.execute(select).mappings().all()
        if not rows:
            return []
        children: dict[str, dict[str, list[Any]]] = {
            child.table.name: defaultdict(list) for child in self._layout.children.values()
        }
        if children:
            if len(rows) <= _LISTED_PARENTS:
                statement, names = _listed_children(self.table.name)
                found = conn.execute(statement, {"parents": [row["id"] for row in rows]})
            else:  # the parents by the query itself, not by a long list of ids
                ids = select.with_only_columns(self.table.c.id).scalar_subquery()
                statement, names = _children_union(self._layout, ids)
                found = conn.execute(statement)
            for row in found:
                table, placed = names[row[0]]
                values = {name: row[slot + 1] for name, slot in placed}
                children[table][values[placed[0][0]]].append(values)
        return [
            codec.decode(
                self._layout,
                row,
                {name: grouped.get(row["id"], []) for name, grouped in children.items()},
            )
            for row in rows
        ]

    def _get(self, conn: Connection, id: str) -> T | None:
        if not isinstance(id, str):
            return None
        found = self._read(conn, sa.select(self.table).where(self.table.c.id == id))
        return found[0] if found else None

    def _version(self, conn: Connection, id: str, *, lock: bool = False) -> int | None:
        if not isinstance(id, str):
            return None
        statement = sa.select(self.table.c.version).where(self.table.c.id == id)
        if lock:
            statement = statement.with_for_update()
        version = conn.execute(statement).scalar_one_or_none()
        return None if version is None else int(version)

    # -- writes ---------------------------------------------------------------------------

    def add(self, obj: T) -> None:
        """Keep a new object at version 1; raises :class:`DuplicateId` if the id is taken."""
        self._check_type(obj)
        with self._store._connection(write=True) as conn:
            self._add(conn, obj)

    def _add(self, conn: Connection, obj: T) -> None:
        look = Lookup(conn)
        _hold_campaign(look, obj)
        look.prefetch([(self.name, _id(obj)), *self._checked(obj)], _sign_up(obj))
        if look.practice_of(self.name, _id(obj)) is not None:
            self._taken(conn, obj)
            return
        self._check(look, obj)
        self._check_new(look, obj)
        rows = self._rows(obj, 1)
        try:
            for table in self._tables:
                if rows.get(table.name):
                    conn.execute(sa.insert(table), rows[table.name])
        except sa.exc.IntegrityError as error:  # another session added it meanwhile
            raise DuplicateId(self.kind.__name__, _id(obj)) from error

    def _taken(self, conn: Connection, obj: T) -> None:
        """``add`` of an id already kept: raises :class:`DuplicateId`."""
        raise DuplicateId(self.kind.__name__, _id(obj))

    def _checked(self, obj: T) -> list[tuple[str, str | None]]:
        """What :meth:`_check` reads, for :meth:`Lookup.prefetch`."""
        practice_id: str = obj.practice_id  # type: ignore[attr-defined]
        refs = REFERENCES.get(self.name, {}).items()
        return [
            (CURRENCY, practice_id),
            *((table, getattr(obj, column)) for column, table in refs if column != "practice_id"),
        ]

    def _lock_first(self, conn: Connection, obj: T) -> None:
        """What a save locks before the object's own row (nothing here)."""

    def _checked_on_save(self, obj: T) -> list[tuple[str, str | None]]:
        """What :meth:`_check` and :meth:`_check_save` read, for a save's prefetch."""
        return self._checked(obj)

    def _stage(self, batch: Batch, obj: T) -> None:
        """Check ``obj`` as part of a load and stage its rows."""
        if batch.exists(self.name, _id(obj)):
            raise DuplicateId(self.kind.__name__, _id(obj))
        self._check(batch, obj)
        self._check_new(batch, obj)
        batch.add(self.name, obj, self._rows(obj, 1))

    def _rows(self, obj: T, version: int) -> dict[str, list[dict[str, Any]]]:
        """``obj``'s rows by table name: its own, then its child tables'."""
        row, children = codec.encode(self._layout, obj, version)
        return {self.table.name: [row], **children}

    @property
    def _tables(self) -> list[sa.Table]:
        """This aggregate's tables, parents first."""
        return [self.table, *(child.table for child in self._layout.children.values())]

    def save(self, obj: T, *, expected_version: int | None = None) -> None:
        """Replace the object with the same id and add one to its version, in one
        transaction (see :meth:`~smilepass_core.repositories.WriteRepository.save`).

        Raises:
            NotFound: no object with that id.
            VersionConflict: ``expected_version`` is not the kept version, or another
                session saved the object between this save's read and its write.
            RuleViolation: ``practice_change`` or ``stale_history``.
        """
        self._check_type(obj)
        with self._store._connection(write=True) as conn:
            self._lock_first(conn, obj)
            current = self._version(conn, _id(obj), lock=True)
            if current is None:
                raise NotFound(self.kind.__name__, _id(obj))
            if expected_version is not None:
                check_version(self.kind.__name__, _id(obj), expected_version, current)
            old = self._get(conn, _id(obj))
            assert old is not None  # its row is locked
            check_successor(old, obj)
            look = Lookup(conn)
            _hold_campaign(look, obj)
            look.prefetch(self._checked_on_save(obj), _sign_up(obj))
            self._check(look, obj)
            self._check_save(look, old, obj)
            rows = self._rows(obj, current + 1)
            c = self.table.c
            done = conn.execute(
                sa.update(self.table)
                .where(c.id == _id(obj), c.version == current)
                .values(rows.pop(self.table.name)[0])
            )
            if done.rowcount != 1:
                actual = self._version(conn, _id(obj))
                raise VersionConflict(
                    self.kind.__name__, _id(obj), expected=current, actual=actual or 0
                )
            kept = self._rows(old, current)
            for table in self._tables[1:]:
                new, before = rows.get(table.name, []), kept.get(table.name, [])
                if new[: len(before)] != before:  # not an append: write the rows again
                    key = next(iter(table.primary_key.columns))
                    conn.execute(sa.delete(table).where(key == _id(obj)))
                    before = []
                if len(new) > len(before):
                    conn.execute(sa.insert(table), new[len(before) :])

    def _check_type(self, obj: Any) -> None:
        if not isinstance(obj, self.kind):
            raise InvalidValue("obj", obj, f"must be a {self.kind.__name__}")

    def _check_new(self, look: Lookup, obj: T) -> None:
        """What only an ``add`` (or a load) checks, after :meth:`_check` (nothing by
        default)."""

    def _check_save(self, look: Lookup, old: T, obj: T) -> None:
        """What only a save checks, given the kept ``old`` (nothing by default)."""

    def _check(self, look: Lookup, obj: T) -> None:
        """Raise unless ``obj`` may be kept: its practice exists, its amount is in the
        practice's currency (``schema.AMOUNTS``), and each reference it holds
        (``schema.REFERENCES``) is kept within the practice."""
        practice_id: str = obj.practice_id  # type: ignore[attr-defined]
        currency = _currency(look, practice_id)
        field = AMOUNTS.get(self.name, "")
        amount: Money | None = getattr(obj, field) if field else None
        if amount is not None and amount.currency != currency:
            raise CurrencyMismatch(amount.currency, currency, f"keep {field} of", field=field)
        for column, table in REFERENCES.get(self.name, {}).items():
            if column != "practice_id":
                _require(look, table, getattr(obj, column), practice_id, column)


def _earlier_plans(member: Member) -> list[str]:
    """The plans of ``member``'s plan changes other than its current one, in order."""
    seen = {member.plan_id}
    found = []
    for change in member.plan_changes:
        for plan_id in (change.from_plan, change.to_plan):
            if plan_id not in seen:
                seen.add(plan_id)
                found.append(plan_id)
    return found


def _currency(look: Lookup, practice_id: str) -> str:
    """The currency of ``practice_id``; raises :class:`NotFound` naming ``practice_id``."""
    currency = look.currency(practice_id)
    if currency is None:
        raise NotFound("Practice", practice_id, field="practice_id")
    return currency


def _sign_up(obj: Any) -> tuple[str | None, datetime] | None:
    """The campaign a member or referral joins and when, for the write's prefetch."""
    if isinstance(obj, Member | Referral) and obj.campaign_id is not None:
        return (obj.campaign_id, obj.created_at)
    return None


def _hold_campaign(look: Lookup, obj: Any) -> None:
    """Before a sign-up's checks read its campaign, lock the campaign's row for share: a
    save of the campaign in progress (which locks it for update before reading its
    sign-ups) is waited for, so the status read is the one it committed."""
    joined = _sign_up(obj)
    if joined is not None and joined[0] is not None:
        look.hold("campaigns", joined[0])


def _check_sign_up(look: Lookup, campaign_id: str | None, at: datetime, subject: str) -> None:
    """Raise unless the campaign (when given) is Active at ``at``: one staged by this load
    is asked, a kept one's status then is read with the write's checks."""
    if campaign_id is None:
        return
    staged = look.staged("campaigns", campaign_id)
    if staged is not None:
        staged.check_sign_up(at, subject=subject)
        return
    status = look.campaign_status(campaign_id, at)
    check_sign_up(
        campaign_id, None if status is None else CampaignStatus(status), at, subject=subject
    )


def _campaign_plans(look: Lookup, campaign_id: str) -> frozenset[str] | None:
    """The plans campaign ``campaign_id`` (kept, or staged by this load) applies to."""
    staged = look.staged("campaigns", campaign_id)
    return staged.plans if staged is not None else look.campaign_plans(campaign_id)


def _require(look: Lookup, name: str, id: str | None, practice_id: str, field: str) -> None:
    """Raise unless ``id`` (when given) is kept in ``name`` within ``practice_id``."""
    if id is None:
        return
    kept = look.practice_of(name, id)
    if kept is None:
        raise NotFound(STORE_TYPES[name].__name__, id, field=field)
    if kept != practice_id:
        raise InvalidValue(field, id, f"belongs to practice {kept}, not {practice_id}")


def _id(obj: Any) -> str:
    return str(obj.id)


class _Practices(_Repository[Practice, ScopeQuery]):
    name = "practices"
    kind = Practice

    def _checked(self, obj: Practice) -> list[tuple[str, str | None]]:
        return [(CURRENCY, obj.id), (TIMEZONE, obj.id)]

    def _check(self, look: Lookup, obj: Practice) -> None:
        """Refuse a new currency for a practice that already holds amounts, and a new time
        zone in which a kept plan is no longer an offer of its template or a recorded
        membership charge is no longer of an amount allowed."""
        zone = look.timezone(obj.id)
        if zone is not None and zone != obj.timezone:
            plans = self._store.payment_plans.table
            change = (f"practice {obj.id}'s time zone {obj.timezone}", "timezone")
            mine = plans.c.practice_id == obj.id
            _offers_kept(self._store, look.conn, mine, obj.timezone, change)
            _charges_kept(self._store, look.conn, obj)
        old = look.currency(obj.id)
        if old is None or old == obj.currency:
            return
        held_by = (
            "payments",
            "payment_plans",
            "membership_plans",
            "payment_plan_templates",
            "campaigns",
        )
        for name in held_by:
            held = layouts[name].table
            where = [held.c.practice_id == obj.id]
            if name == "campaigns":  # a campaign's fixed discount is an amount too
                where.append(held.c.discount_amount_currency.is_not(None))
            if look.conn.execute(sa.select(held.c.id).where(*where).limit(1)).first():
                raise RuleViolation(
                    "currency_in_use",
                    f"practice {obj.id} holds {STORE_TYPES[name].__name__} amounts in {old}:"
                    f" its currency cannot become {obj.currency}",
                    field="currency",
                    practice_id=obj.id,
                    currency=old,
                )


def _charges_kept(store: SqlStore, conn: Connection, practice: Practice) -> None:
    """:func:`check_timezone_kept` of ``practice`` about to be saved, over its members with
    a membership charge, their ledger entries and its membership plans, as kept (the
    practice's row is locked by its save)."""
    ledger, members, plans = store.payments, store.members, store.membership_plans
    charged = (
        sa.select(ledger.table.c.member_id)
        .where(
            ledger.table.c.practice_id == practice.id,
            ledger.table.c.kind == PaymentKind.CHARGE.value,
        )
        .distinct()
    )
    found = members._read(conn, sa.select(members.table).where(members.table.c.id.in_(charged)))
    if not found:
        return
    entries = ledger._read(
        conn,
        sa.select(ledger.table).where(
            ledger.table.c.practice_id == practice.id, ledger.table.c.member_id.is_not(None)
        ),
    )
    kept = plans._read(conn, sa.select(plans.table).where(plans.table.c.practice_id == practice.id))
    check_timezone_kept(practice, found, entries, plans={p.id: p for p in kept})


def _offers_kept(
    store: SqlStore,
    conn: Connection,
    where: Any,
    timezone: str,
    change: tuple[str, str],
    member: Member | None = None,
) -> None:
    """:func:`check_offers` of the kept plans matching ``where`` that name a template,
    judged in ``timezone``, with ``member`` as it is to be saved (their templates and
    other members read as kept); ``change`` names what moved and its field."""
    plans = store.payment_plans
    named = sa.select(plans.table).where(where, plans.table.c.template_id.is_not(None))
    offered = plans._read(conn, named)
    if not offered:
        return
    templates, members = store.payment_plan_templates, store.members
    ids = {p.template_id for p in offered}
    kept = templates._read(conn, sa.select(templates.table).where(templates.table.c.id.in_(ids)))
    holders = {p.member_id for p in offered if p.member_id is not None}
    holders -= {member.id} if member is not None else set()
    found = members._read(conn, sa.select(members.table).where(members.table.c.id.in_(holders)))
    check_offers(
        offered,
        {t.id: t for t in kept},
        timezone=timezone,
        members={m.id: m for m in (*found, *([member] if member is not None else []))},
        change=change[0],
        field=change[1],
    )


def _hold_practice(conn: Connection, practice_id: str) -> None:
    """Lock the practice's row by an update that changes nothing (its key left to share,
    so the other tables' inserts go on) before its campaigns are read: two sessions
    writing its campaigns check one after the other and neither misses what the other
    adds; inside :meth:`SqlStore.atomic` (``REPEATABLE READ``) the second fails to
    serialise instead."""
    practices = layouts["practices"].table
    hold = sa.update(practices).where(practices.c.id == practice_id)
    conn.execute(hold.values(version=practices.c.version))


class _StaffUsers(_Repository[StaffUser, ScopeQuery]):
    name = "staff_users"
    kind = StaffUser


class _Campaigns(_Repository[Campaign, ScopeQuery]):
    name = "campaigns"
    kind = Campaign

    def _check(self, look: Lookup, obj: Campaign) -> None:
        """Also its discount's fixed amount in the practice's currency."""
        super()._check(look, obj)
        check_discount_currency([obj.discount], _currency(look, obj.practice_id))

    def _lock_first(self, conn: Connection, obj: Campaign) -> None:
        """The practice's row (:func:`_hold_practice`), before the campaign's: a sign-up
        holds the campaign's row for share after the practice's key, so the order is
        the same everywhere."""
        _hold_practice(conn, obj.practice_id)

    def _check_new(self, look: Lookup, obj: Campaign) -> None:
        """A new campaign shares no code with another of its practice while both are
        Active."""
        self._check_codes(look, obj)

    def _check_codes(self, look: Lookup, obj: Campaign, kept: Campaign | None = None) -> None:
        """:func:`check_codes` against the practice's other campaigns, kept or staged by
        this load (a load reads each practice's kept campaigns once), after
        :func:`_hold_practice`."""
        practice_id, conn = obj.practice_id, look.conn
        look.memo(("held", practice_id), lambda: _hold_practice(conn, practice_id))
        table = self.table
        mine = sa.select(table).where(table.c.practice_id == practice_id)
        siblings = look.memo(("campaigns of", practice_id), lambda: self._read(conn, mine))
        check_codes(obj, [*siblings, *look.staged_in(self.name, practice_id)], kept=kept)

    def _check_save(self, look: Lookup, old: Campaign, obj: Campaign) -> None:
        """A save that changes the codes or the history: :meth:`_check_codes`. One that
        changes the plans: every member kept as joining through the campaign joined on a
        plan it applies to. One that changes the history: every member and referral kept
        as joining through it still joined it while Active, as the new history reads (one
        statement, within the campaign's practice)."""
        if (old.codes, old.history) != (obj.codes, obj.history):
            self._check_codes(look, obj, old)
        if old.plans != obj.plans and obj.plans is not None:
            members = self._store.members
            mine = sa.select(members.table).where(members.table.c.campaign_id == obj.id)
            check_members_plans(obj, members._read(look.conn, mine))
        if old.history == obj.history:
            return
        selects = []
        for kind, name in (("member", "members"), ("referral", "referrals")):
            child = layouts[name].children["history"]
            table, history = layouts[name].table, child.table
            assert child.parent_key is not None
            key = history.c[child.parent_key]
            joined = sa.select(table.c.id).where(
                table.c.practice_id == obj.practice_id, table.c.campaign_id == obj.id
            )
            selects.append(
                sa.select(sa.literal(kind).label("kind"), key, sa.func.min(history.c.at))
                .where(key.in_(joined))
                .group_by(key)
            )
        rows = look.conn.execute(sa.union_all(*selects)).all()
        check_joiners(obj, ((f"{kind} {id}", at) for kind, id, at in rows))


class _PaymentPlanTemplates(_Repository[PaymentPlanTemplate, ScopeQuery]):
    name = "payment_plan_templates"
    kind = PaymentPlanTemplate

    def _check_save(self, look: Lookup, old: PaymentPlanTemplate, obj: PaymentPlanTemplate) -> None:
        """A save that changes its terms or retires it: no kept plan was offered from it
        (nor at or after the retirement), read as the plans' offer instants
        (``check_template_change``). The template's row is locked: a plan being offered
        from it (which holds it for share) is waited for, and one offered after waits for
        this save."""
        same_terms = all(getattr(old, term) == getattr(obj, term) for term in TERMS)
        if same_terms and obj.retired_at in (None, old.retired_at):
            return
        plans = self._store.payment_plans.table.c
        offers = look.conn.execute(
            sa.select(plans.created_at).where(
                plans.practice_id == obj.practice_id, plans.template_id == obj.id
            )
        )
        check_template_change(old, obj, offers.scalars())


class _MembershipPlans(_Repository[MembershipPlan, ScopeQuery]):
    name = "membership_plans"
    kind = MembershipPlan

    def _check_save(self, look: Lookup, old: MembershipPlan, obj: MembershipPlan) -> None:
        """A save that reprices or changes the cycle: no recorded charge was priced at a
        billing date whose day or price it changes (``check_reprice``), read from each
        charged member of the practice and their last charge. The plan's row is locked: a
        charge being added (which holds the plans for share) is waited for, and a charge
        added after waits for this save."""
        if (old.price, old.earlier_prices, old.billing_cycle) == (
            obj.price,
            obj.earlier_prices,
            obj.billing_cycle,
        ):
            return
        store, conn = self._store, look.conn
        plans = self._read(
            conn, sa.select(self.table).where(self.table.c.practice_id == obj.practice_id)
        )
        # Only each member's last charge (by time, then id) is judged: one row per member.
        ledger = store.payments.table.c
        ranked = (
            sa.select(
                ledger.id,
                sa.func.row_number()
                .over(partition_by=ledger.member_id, order_by=(ledger.at.desc(), ledger.id.desc()))
                .label("n"),
            )
            .where(
                ledger.practice_id == obj.practice_id,
                ledger.member_id.is_not(None),
                ledger.kind == PaymentKind.CHARGE.value,
            )
            .subquery()
        )
        last = sa.select(store.payments.table).where(
            ledger.id.in_(sa.select(ranked.c.id).where(ranked.c.n == 1))
        )
        charges = store.payments._read(conn, last)
        members = store.members
        kept = members._read(
            conn,
            sa.select(members.table).where(
                members.table.c.id.in_(last.with_only_columns(ledger.member_id).scalar_subquery())
            ),
        )
        practice = store.practices._get(conn, obj.practice_id)
        assert practice is not None  # the reference check found it
        check_reprice(
            old,
            obj,
            kept,
            charges,
            timezone=practice.timezone,
            plans={p.id: p for p in plans},
        )


def _charged_since(look: Lookup, old: Member, new: Member) -> bool:
    """Whether ``new``'s history bills some day otherwise than ``old``'s
    (:func:`bills_alike`) and the member's latest charge (prefetched) is stamped at or
    after :func:`first_rebilled_day`, in the practice's time zone read with its key held:
    only then may a charge be priced again."""
    if bills_alike(old, new):
        return False
    last = look.last_charge_at(new.id)
    if last is None:
        return False
    return last >= first_rebilled_day(old, new, _held_timezone(look, new.practice_id))


def _held_timezone(look: Lookup, practice_id: str) -> str:
    """The practice's time zone (a load's staged practice first), read once per write with
    the practice's key held for share until the write commits: a new time zone saved
    meanwhile (which locks the row for update) is waited for, or waits for this write and
    then finds what it recorded."""

    def read() -> str:
        staged = look.staged("practices", practice_id)
        if staged is not None:
            return str(staged.timezone)
        practices = layouts["practices"].table
        mine = sa.select(practices.c.timezone).where(practices.c.id == practice_id)
        return str(look.conn.execute(mine.with_for_update(read=True, key_share=True)).scalar_one())

    return look.memo(("timezone", practice_id), read)


class _Members(_Repository[Member, MemberQuery]):
    name = "members"
    kind = Member
    query_type = MemberQuery

    def _rows(self, obj: Member, version: int) -> dict[str, list[dict[str, Any]]]:
        return super()._rows(obj, version) | {SPANS.name: codec.spans(obj)}

    def _checked(self, obj: Member) -> list[tuple[str, str | None]]:
        return [
            *super()._checked(obj),
            *(("membership_plans", p) for p in _earlier_plans(obj)),
            (CAMPAIGN_PLANS, obj.campaign_id),
        ]

    def _checked_on_save(self, obj: Member) -> list[tuple[str, str | None]]:
        """Also whether the member holds a plan offered from a template, and their latest
        charge."""
        return [*self._checked(obj), (MEMBER_OFFERS, obj.id), (LAST_CHARGE, obj.id)]

    def _check(self, look: Lookup, obj: Member) -> None:
        """Also every plan the member was on, within its practice, a campaign Active at
        the enrolment and applying to the member's first plan, and fixed discounts in the
        practice's currency."""
        super()._check(look, obj)
        check_grant_currency(obj.discounts, _currency(look, obj.practice_id))
        for plan_id in _earlier_plans(obj):
            _require(look, "membership_plans", plan_id, obj.practice_id, "plan_changes")
        _check_sign_up(look, obj.campaign_id, obj.created_at, f"member {obj.id}")
        if obj.campaign_id is not None:
            plans = _campaign_plans(look, obj.campaign_id)
            check_sign_up_plan(
                obj.campaign_id, plans, obj.first_plan_id, subject=f"member {obj.id}"
            )
        if obj.first_entered(MembershipStatus.CANCELLED) is not None:
            check_cancel_after_charges(obj, look.payments_of(("member", obj.id)))

    def _check_save(self, look: Lookup, old: Member, obj: Member) -> None:
        """A save that grants a discount or records a plan or dependent change: the billing
        dates the member was charged up to stay as they were; one that rewrites the start
        date or the plan, or changes the history back before a charge's day: each charge
        of theirs is still of an amount allowed (``check_member_repriced``; the member's
        row is locked, so no charge of theirs is added meanwhile). One that
        changes the history or the account holder of a member holding a plan offered from
        a template: each such plan is still its offer (read only for such a member)."""
        moved = member_change(old, obj)
        if moved is not None and look.member_offers(obj.id):
            zone = look.timezone(obj.practice_id)
            assert zone is not None  # the reference check found the practice
            held = self._store.payment_plans.table.c.member_id == obj.id
            _offers_kept(self._store, look.conn, held, zone, moved, obj)
        rewritten = (old.start_date, old.plan_id) != (obj.start_date, obj.plan_id)
        terms_kept = old.billing_terms == obj.billing_terms
        if terms_kept and not rewritten and not _charged_since(look, old, obj):
            return
        _, plans, timezone = self._store.payments._billing(look, obj.id, obj.practice_id)
        check_member_repriced(
            old, obj, look.payments_of(("member", obj.id)), timezone=timezone, plans=plans
        )

    @property
    def _tables(self) -> list[sa.Table]:
        return [*super()._tables, SPANS]

    def _where(self, conn: Connection, query: MemberQuery) -> list[Any]:
        c = self.table.c
        where = super()._where(conn, query)
        where += _present(
            _in(c.plan_id, query.plans),
            _in(c.status, query.statuses),
            _in(c.campaign_id, query.campaigns),
            _in(c.staff_user_id, query.staff_users),
        )
        where += _between(c.start_date, query.start_from, query.start_until)
        if query.name_contains is not None:
            where.append(
                c.account_holder_key.contains(query.name_contains.casefold(), autoescape=True)
            )
        for boundary in (query.active_at, query.retained_until):
            if boundary is not None:
                where.append(_active_at(c.id, boundary))
        if query.ever_active_before is not None:
            where.append(c.first_activated_at < query.ever_active_before)
        where += _within(c.first_activated_at, query.first_activated_in)
        if query.counting_at is not None:
            where.append(_status_before(c, query.counting_at).in_(_COUNTING))
            if query.counting_plans is not None:
                where.append(_in(_plan_before(c, query.counting_at), query.counting_plans))
        if query.changed_in is not None:
            where.append(_changed_in(c, query.changed_in))
        if query.overdue is not None:
            late = overdue.late_members(self._store, conn, query)
            where.append(overdue.flag(c.id, late, query.overdue))
        return where

    def first_activated_counts(
        self, *, practices: frozenset[str] | None, edges: Sequence[datetime]
    ) -> list[int]:
        """Members of ``practices`` who first became Active between each two consecutive
        ``edges`` (the New Members series), in one ``SUM(CASE ...)`` statement per 500
        buckets; see :meth:`InMemoryStore.members.first_activated_counts`."""
        c = self.table.c
        with self._store._connection() as conn:
            return [
                int(n)
                for n in _bucketed(
                    conn,
                    c.first_activated_at,
                    series_edges(edges),
                    sa.literal(1),
                    c.practice_id,
                    ScopeQuery(practices=practices).practices,
                )
            ]

    def count(self, query: MemberQuery) -> int:
        """How many members match; the dashboard's Active and retained counts (practices
        and boundaries only) count Active spans, which the indexes answer directly."""
        a, b = query.active_at, query.retained_until
        if a is None or query.form() not in _SPAN_FORMS:
            return super().count(query)
        first = SPANS.alias("a")
        statement = sa.select(sa.func.count()).select_from(first).where(_span_at(first, a))
        if query.practices is not None:
            statement = statement.where(_in(first.c.practice_id, query.practices))
        if b is not None:
            # A member has at most one span holding a boundary: joining the span that
            # holds the second boundary keeps each retained member once.
            second = SPANS.alias("b")
            statement = statement.join(second, second.c.member_id == first.c.member_id).where(
                _span_at(second, b)
            )
        with self._store._connection() as conn:
            return int(conn.execute(statement).scalar_one())

    def _sort(self, column: str) -> list[Any]:
        c = self.table.c
        named = {
            "account_holder": c.account_holder_key,
            "dependents": c.dependent_count,
            "plan": c.plan_id,
            "status": _rank(c.status, MembershipStatus),
            "practice": c.practice_id,
            "campaign": c.campaign_id,
            "user": c.staff_user_id,
        }
        return [named[column] if column in named else c[column]]


_HISTORY = layouts["members"].children["history"].table
#: Up to this many parents, their child rows are read by a list of their ids (one
#: cached statement); beyond it, by the parents' query again.
_LISTED_PARENTS: Final = 500


@functools.cache
def _listed_children(table: str) -> tuple[sa.Select[Any], list[tuple[str, list[tuple[str, int]]]]]:
    """:func:`_children_union` of the parents in the expanding parameter ``parents``."""
    return _children_union(layouts[table])


def _children_union(
    layout: Layout, ids: Any = None
) -> tuple[sa.Select[Any], list[tuple[str, list[tuple[str, int]]]]]:
    """One ``UNION ALL`` of every child table's rows of the parents ``ids`` (by default
    the expanding parameter ``parents``), in child,
    parent and ``seq`` order: each row is (child number, then slots), a column of one
    SQL type in a slot of that type (NULL in the slots a child does not fill), so the
    union's columns each have one type. With it, per child number, its table name and
    which slot holds each of its columns."""
    kinds: list[tuple[str, Any]] = []  # the slots: a type's repr and the type
    names: list[tuple[str, list[tuple[str, int]]]] = []
    for child in layout.children.values():
        taken: dict[str, int] = defaultdict(int)
        placed: list[tuple[str, int]] = []
        for column in child.table.c:
            kind = repr(column.type)
            nth = taken[kind]
            taken[kind] += 1
            slots = [i for i, (k, _) in enumerate(kinds) if k == kind]
            if nth == len(slots):
                kinds.append((kind, column.type))
                slots.append(len(kinds) - 1)
            placed.append((column.name, slots[nth]))
        names.append((child.table.name, placed))
    selects = []
    for n, child in enumerate(layout.children.values()):
        assert child.parent_key is not None
        key = child.table.c[child.parent_key]
        filled = {slot: child.table.c[name] for name, slot in names[n][1]}
        columns = [sa.literal(n).label("child")] + [
            filled.get(i, sa.cast(sa.null(), type_)).label(f"s{i}")
            for i, (_, type_) in enumerate(kinds)
        ]
        parents = sa.bindparam("parents", expanding=True) if ids is None else ids
        selects.append(sa.select(*columns).where(key.in_(parents)))
    union = sa.union_all(*selects).subquery()
    seq = next(slot for name, slot in names[0][1] if name == "seq")
    parent = names[0][1][0][1]
    statement = sa.select(union).order_by(union.c.child, union.c[f"s{parent}"], union.c[f"s{seq}"])
    return statement, names


_PLAN_CHANGES = layouts["members"].children["plan_changes"].table
_COUNTING = sorted(s.value for s in COUNTING_STATUSES)


def _status_before(members: Any, boundary: Any) -> Any:
    """The member's status at ``boundary``: that of its latest change strictly before."""
    h = _HISTORY.c
    return (
        sa.select(h.to_status)
        .where(h.member_id == members.id, h.at < boundary)
        .order_by(h.seq.desc())
        .limit(1)
        .scalar_subquery()
    )


def _plan_before(members: Any, boundary: Any) -> Any:
    """The member's plan at ``boundary``: after its plan changes strictly before it."""
    p = _PLAN_CHANGES.c
    mine = p.member_id == members.id
    latest = sa.select(p.to_plan).where(mine, p.at < boundary).order_by(p.seq.desc()).limit(1)
    first = sa.select(p.from_plan).where(mine).order_by(p.seq).limit(1)
    return sa.func.coalesce(latest.scalar_subquery(), first.scalar_subquery(), members.plan_id)


def _changed_in(members: Any, span: Any) -> Any:
    """A status change or a plan change of the member is stamped inside ``span``."""
    return sa.or_(
        *(
            sa.exists().where(t.c.member_id == members.id, *_within(t.c.at, span))
            for t in (_HISTORY, _PLAN_CHANGES)
        )
    )


#: The member counts answered from the Active spans: Active at, and retained.
_SPAN_FORMS: Final = (frozenset({"active_at"}), frozenset({"active_at", "retained_until"}))


def _span_at(spans: Any, boundary: Any) -> Any:
    """The span holds ``boundary``: ``start_at < B <= end_at`` (no end: still Active)."""
    return sa.and_(
        spans.c.start_at < boundary, sa.or_(spans.c.end_at.is_(None), spans.c.end_at >= boundary)
    )


def _active_at(member_id: Any, boundary: Any) -> Any:
    """The member is Active at ``boundary``: one of its spans holds it."""
    return sa.exists().where(SPANS.c.member_id == member_id, _span_at(SPANS, boundary))


class _PaymentPlans(_Repository[PaymentPlan, PaymentPlanQuery]):
    name = "payment_plans"
    kind = PaymentPlan
    query_type = PaymentPlanQuery

    def _check_new(self, look: Lookup, obj: PaymentPlan) -> None:
        """A new plan that names its template is an offer of it."""
        self._check_offer(look, obj)

    def _check_save(self, look: Lookup, old: PaymentPlan, obj: PaymentPlan) -> None:
        """A save that changes what the offer check reads (``offer_of``) is checked again."""
        if offer_of(old) != offer_of(obj):
            self._check_offer(look, obj)

    def _check_offer(self, look: Lookup, obj: PaymentPlan) -> None:
        """Raise unless a plan naming its template (kept, or staged by this load) is an
        offer it makes (``check_offer``), judged in the practice's time zone with the
        plan's member. What it reads is held until the write commits: the template's row
        and the member's for share, the practice's key (``FOR KEY SHARE``). A save
        changing the template's terms, the member or the practice's time zone in
        progress (each locks its row for update before it reads the plans) is waited
        for, and read as it committed; one after waits for this write."""
        template_id = obj.template_id
        if template_id is None:
            return
        store, conn = self._store, look.conn

        def kept_template() -> PaymentPlanTemplate:
            templates = store.payment_plan_templates
            c = templates.table.c
            held = sa.select(templates.table).where(c.id == template_id).with_for_update(read=True)
            found = templates._read(conn, held)
            return found[0]  # the reference check found it

        template = look.staged("payment_plan_templates", template_id) or look.memo(
            ("template", template_id), kept_template
        )
        member: Member | None = None
        if obj.member_id is not None:
            member_id = obj.member_id

            def kept_member() -> Member:
                members = store.members
                mine = sa.select(members.table).where(members.table.c.id == member_id)
                return members._read(conn, mine.with_for_update(read=True))[0]

            member = look.staged("members", member_id) or look.memo(
                ("member", member_id), kept_member
            )
        timezone = _held_timezone(look, obj.practice_id)
        check_offer(template, obj, timezone=timezone, member=member)

    def _where(self, conn: Connection, query: PaymentPlanQuery) -> list[Any]:
        c = self.table.c
        where = super()._where(conn, query)
        where += _present(
            _in(c.status, query.statuses),
            _in(c.payment_type, query.payment_types),
            _in(c.member_id, query.members),
        )
        if query.archived is not None:
            where.append(c.archived_at.is_not(None) if query.archived else c.archived_at.is_(None))
        if query.name_contains is not None:
            where.append(c.patient_key.contains(query.name_contains.casefold(), autoescape=True))
        where += _within(c.committed_at, query.committed_in)
        if query.overdue is not None:
            late = overdue.late_plans(self._store, conn, query)
            where.append(overdue.flag(c.id, late, query.overdue))
        return where

    def _sort(self, column: str) -> list[Any]:
        c = self.table.c
        named: dict[str, list[Any]] = {
            "patient": [c.patient_key],
            "progression": [
                sa.cast(c.paid_count, sa.Float) / c.instalment_count,
                c.instalment_count,
            ],
            "balance": [c.balance_key],
            "total": [c.total_key],
            "status": [_rank(c.status, PaymentPlanStatus)],
            "practice": [c.practice_id],
        }
        return named[column] if column in named else [c[column]]

    def committed_totals(
        self, *, practices: frozenset[str] | None, edges: Sequence[datetime]
    ) -> list[dict[str, Money]]:
        """The totals of the plans first committed between each two consecutive
        ``edges``, per currency (the Committed Payments series), in one statement per 500
        buckets; see :meth:`InMemoryStore.payment_plans.committed_totals`."""
        c = self.table.c
        with self._store._connection() as conn:
            sums = _bucketed(
                conn,
                c.committed_at,
                series_edges(edges),
                c.total_minor,
                c.practice_id,
                ScopeQuery(practices=practices).practices,
                group=c.total_currency,
            )
        return [
            {code: Money.from_minor(minor, code) for code, minor in bucket.items()}
            for bucket in sums
        ]

    def total(self, query: PaymentPlanQuery) -> dict[str, Money]:
        """Sum of plan totals per currency (one ``SUM ... GROUP BY``)."""
        self._check_query(query)
        c = self.table.c
        with self._store._connection() as conn:
            statement = (
                sa.select(c.total_currency, sa.func.sum(c.total_minor))
                .where(*self._where(conn, query))
                .group_by(c.total_currency)
            )
            return _money(conn.execute(statement))


def _bucketed(
    conn: Connection,
    column: Any,
    edges: list[datetime],
    value: Any,
    practice: Any,
    practices: frozenset[str] | None,
    group: Any = None,
) -> list[Any]:
    """``SUM(value)`` of the rows whose ``column`` falls between each two consecutive
    ``edges`` (per ``group`` value when given: a list of ``{group: sum}``)."""
    pairs = list(itertools.pairwise(edges))
    sums: list[Any] = []
    for start in range(0, len(pairs), 500):
        chunk = pairs[start : start + 500]
        columns = [
            sa.func.coalesce(
                sa.func.sum(sa.case((sa.and_(column >= a, column < b), value), else_=0)), 0
            )
            for a, b in chunk
        ]
        statement = sa.select(*columns).where(*_present(_in(practice, practices)))
        if group is None:
            sums += list(conn.execute(statement).one())
            continue
        rows = conn.execute(statement.add_columns(group).group_by(group)).all()
        sums += [{row[-1]: int(row[k]) for row in rows} for k in range(len(chunk))]
    return sums


def _money(rows: Iterable[Any]) -> dict[str, Money]:
    return {currency: Money.from_minor(int(minor), currency) for currency, minor in rows}


class _Payments(_Repository[Payment, PaymentQuery]):
    name = "payments"
    kind = Payment
    query_type = PaymentQuery

    def _taken(self, conn: Connection, obj: Payment) -> None:
        """Recording a payment again changes nothing; another under its id is refused."""
        if self._get(conn, obj.id) != obj:
            raise ConflictingPayment(obj.id)

    def _stage(self, batch: Batch, obj: Payment) -> None:
        if batch.exists(self.name, obj.id):
            existing = next((p for p in batch.payments_of(obj.source) if p.id == obj.id), None) or (
                self._get(batch.conn, obj.id) if batch.in_database(self.name, obj.id) else None
            )
            if existing == obj:
                return  # the ledger is idempotent
            raise ConflictingPayment(obj.id)
        super()._stage(batch, obj)

    def save(self, obj: Payment, *, expected_version: int | None = None) -> None:
        """The ledger is append-only: always raises :class:`RuleViolation`."""
        raise RuleViolation(
            "append_only", "the payment ledger is append-only: add a refund instead"
        )

    def _check(self, look: Lookup, obj: Payment) -> None:
        super()._check(look, obj)  # exactly one of member_id and payment_plan_id is set
        if obj.kind is PaymentKind.CHARGE and obj.member_id is not None:
            window = look.member_window(obj.member_id)
            if window is not None:  # a missing member was refused by the reference check
                check_charge_window(obj, *window)
                member, plans, timezone = self._billing(look, obj.member_id, obj.practice_id)
                check_membership_charge(
                    member,
                    plans[member.plan_id],
                    look.payments_of(obj.source),
                    obj,
                    timezone=timezone,
                    plans=plans,
                )
        if obj.kind is PaymentKind.REFUND:
            # Locking the source: two refunds at once must not both pass the check.
            check_refund(look.payments_of(obj.source, lock=True), obj)

    def _billing(
        self, look: Lookup, member_id: str, practice_id: str
    ) -> tuple[Member, dict[str, MembershipPlan], str]:
        """What pricing a member's charge reads: the member (its row already locked by
        the charge's window), its practice's membership plans by id (their rows held for
        share) and time zone (the practice's key held for share); a load's staged objects
        first."""
        store = self._store
        member = look.staged("members", member_id) or store.members._get(look.conn, member_id)
        assert member is not None  # the window found it

        def plans() -> dict[str, MembershipPlan]:
            table = store.membership_plans.table
            mine = table.c.practice_id == practice_id
            # Held for share until the write commits: a reprice saved meanwhile (which
            # locks its row for update) is waited for, or waits for this charge.
            look.conn.execute(sa.select(table.c.id).where(mine).with_for_update(read=True))
            kept = store.membership_plans._read(look.conn, sa.select(table).where(mine))
            staged = look.staged_in("membership_plans", practice_id)
            return {p.id: p for p in (*kept, *staged)}

        return (
            member,
            look.memo(("plans", practice_id), plans),
            _held_timezone(look, practice_id),
        )

    def _where(self, conn: Connection, query: PaymentQuery) -> list[Any]:
        c = self.table.c
        where = super()._where(conn, query)
        where += _present(_in(c.kind, query.kinds), _in(c.outcome, query.outcomes))
        if query.sources is not None:
            members = [i for kind, i in query.sources if kind == "member"]
            plans = [i for kind, i in query.sources if kind == "payment_plan"]
            where.append(
                sa.or_(
                    c.member_id.in_(sorted(members)),
                    sa.and_(c.member_id.is_(None), c.payment_plan_id.in_(sorted(plans))),
                )
            )
        where += _within(c.at, query.time_range)
        return where

    def _sort(self, column: str) -> list[Any]:
        c = self.table.c
        named = {"amount": c.amount_key, "practice": c.practice_id}
        return [named[column] if column in named else c[column]]

    def total(self, query: PaymentQuery) -> dict[str, Money]:
        """Sum of signed amounts per currency (one ``SUM ... GROUP BY``)."""
        self._check_query(query)
        c = self.table.c
        succeeded = c.outcome == PaymentOutcome.SUCCEEDED.value
        signed = sa.case(
            (sa.and_(succeeded, c.kind == PaymentKind.CHARGE.value), c.amount_minor),
            (sa.and_(succeeded, c.kind == PaymentKind.REFUND.value), -c.amount_minor),
            else_=0,
        )
        with self._store._connection() as conn:
            statement = (
                sa.select(c.amount_currency, sa.func.sum(signed))
                .where(*self._where(conn, query))
                .group_by(c.amount_currency)
            )
            return _money(conn.execute(statement))


class _Referrals(_Repository[Referral, ReferralQuery]):
    name = "referrals"
    kind = Referral
    query_type = ReferralQuery

    def _check(self, look: Lookup, obj: Referral) -> None:
        """Also a campaign Active when the referral was opened."""
        super()._check(look, obj)
        _check_sign_up(look, obj.campaign_id, obj.created_at, f"referral {obj.id}")

    def _where(self, conn: Connection, query: ReferralQuery) -> list[Any]:
        c = self.table.c
        where = super()._where(conn, query)
        where += _present(
            _in(c.campaign_id, query.campaigns),
            _in(c.staff_user_id, query.staff_users),
            _in(c.referring_member_id, query.referring_members),
            _in(c.status, query.statuses),
        )
        where += _between(c.start_date, query.start_from, query.start_until)
        where += _within(c.converted_at, query.converted_in)
        return where

    def _sort(self, column: str) -> list[Any]:
        c = self.table.c
        named = {
            "account_holder": c.account_holder_key,
            "dependents": c.dependent_count,
            "campaign": c.campaign_id,
            "user": c.staff_user_id,
            "status": _rank(c.status, ReferralStatus),
            "practice": c.practice_id,
        }
        return [named[column] if column in named else c[column]]


class SqlStore:
    """Every repository protocol on a SQLAlchemy engine (SQLite, PostgreSQL).

    >>> from smilepass_core.sql import SqlStore
    >>> from smilepass_core.demo import DEMO_NOW, load_demo
    >>> from smilepass_core.kpi import dashboard
    >>> store = SqlStore.connect("sqlite://")
    >>> store.load(load_demo().objects())
    >>> dashboard(store, practices="syd", now=DEMO_NOW).members.value > 0
    True
    """

    def __init__(self, engine: Engine) -> None:
        """A store over ``engine``'s database (make the tables with :func:`create_schema`).

        A SQLite engine gets foreign keys switched on for each connection, and its
        reads and writes are serialised within this process (SQLite has one writer).
        """
        self.engine = engine
        # A read takes two statements (an aggregate's rows, then their child rows):
        # on PostgreSQL they see one snapshot, or a save committed between them would
        # show one version's row with another's children.
        self._snapshot = engine
        if engine.dialect.name == "postgresql":
            self._snapshot = engine.execution_options(isolation_level="REPEATABLE READ")
        self._local = threading.local()
        self._serial: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if engine.dialect.name == "sqlite":
            _sqlite_setup(engine)
            self._serial = threading.RLock()
        self.practices = _Practices(self)
        self.staff_users = _StaffUsers(self)
        self.membership_plans = _MembershipPlans(self)
        self.campaigns = _Campaigns(self)
        self.payment_plan_templates = _PaymentPlanTemplates(self)
        self.members = _Members(self)
        self.payment_plans = _PaymentPlans(self)
        self.referrals = _Referrals(self)
        self.payments = _Payments(self)

    @classmethod
    def connect(cls, url: str, *, create: bool = True, **options: Any) -> SqlStore:
        """A store on the database at ``url`` (``sqlite://`` is a private in-memory
        database; ``sqlite:///path.db`` a file; ``postgresql+psycopg://...``), with the
        tables made when ``create``. ``options`` go to :func:`sqlalchemy.create_engine`."""
        if url.startswith("sqlite") and url.split("://", 1)[1] in ("", "/:memory:"):
            options.setdefault("poolclass", sa.pool.StaticPool)
            options.setdefault("connect_args", {"check_same_thread": False})
        store = cls(sa.create_engine(url, **options))
        if create:
            create_schema(store.engine)
        return store

    @contextlib.contextmanager
    def _connection(self, *, write: bool = False) -> Iterator[Connection]:
        """The thread's open transaction, or a new one committed at the end (rolled back
        on an error): a read's sees one snapshot; a write's is ``READ COMMITTED``, its
        saves lock the row they replace."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            yield conn
            return
        with self._serial, (self.engine if write else self._snapshot).begin() as conn:
            self._local.conn = conn
            try:
                yield conn
            finally:
                self._local.conn = None

    @contextlib.contextmanager
    def atomic(self) -> Iterator[SqlStore]:
        """One transaction for every read and write inside: the reads see one state
        (PostgreSQL: ``REPEATABLE READ``), the writes land together or not at all."""
        with self._connection():
            yield self

    def load(self, objects: Iterable[object]) -> None:
        """Add many objects in one transaction: on any error nothing of them is kept.

        Raises:
            InvalidRecord: naming the object's type, its index in ``objects``, the
                field and the reason.
        """
        self.load_labelled((type(obj).__name__, i, obj) for i, obj in enumerate(objects))

    def load_labelled(self, entries: Iterable[tuple[str, int, object]]) -> None:
        """Like :meth:`load`, for ``(source, index, object)`` entries: an error names the
        object's source and index there."""
        ordered = load_order(entries)
        with self._connection(write=True) as conn:
            batch = Batch(conn, ((name, obj) for _, _, obj, name in ordered))
            # The practices whose campaigns it writes, locked up front in one order for
            # every load (loads locking them as met could deadlock each other).
            held = {cast(Campaign, obj).practice_id for _, _, obj, n in ordered if n == "campaigns"}
            for practice_id in sorted(held):
                batch.memo(
                    ("held", practice_id), functools.partial(_hold_practice, conn, practice_id)
                )
            for table, index, obj, name in ordered:
                repo: _Repository[Any, Any] = getattr(self, name)
                try:
                    repo._stage(batch, obj)
                except SmilepassError as error:
                    raise as_record_error(table, index, error) from error
            batch.flush()
            if conn.dialect.name == "postgresql" and len(ordered) >= ANALYZE_AFTER:
                # Fresh statistics, or the planner guesses a handful of rows per practice.
                conn.exec_driver_sql("ANALYZE")

    @classmethod
    def from_objects(cls, engine: Engine, objects: Iterable[object]) -> SqlStore:
        """A store on ``engine`` (its tables made) holding ``objects`` (see :meth:`load`)."""
        store = cls(engine)
        create_schema(engine)
        store.load(objects)
        return store


def _sqlite_setup(engine: Engine) -> None:
    """Foreign keys on, and transactions begun by SQLAlchemy rather than the driver (so a
    read and the write after it are one transaction); once per engine."""
    if not sa.event.contains(engine, "connect", _sqlite_connect):
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)


def _sqlite_connect(dbapi_connection: Any, record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN")


if TYPE_CHECKING:  # mypy holds the store's optional reads to their Protocols

    def _offers(store: SqlStore) -> tuple[MemberSeriesReader, PaymentPlanSeriesReader]:
        return store.members, store.payment_plans
