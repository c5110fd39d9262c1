"""The Overdue filter for :class:`~smilepass_core.sql.SqlStore`: the rows of
:mod:`smilepass_core.domain.overdue` that could be overdue are read with SQL, and the
definition itself is applied to them in Python, so both stores answer it identically.

At instant ``T``:

- a **payment plan** can be overdue only when its status at ``T`` (the last change stamped
  at or before ``T``) is Pending, Active or Failed;
- a **member** only when their status at ``T`` is Pending, Active or Failed (their
  membership charges) or when they hold such a plan.

Those rows are decoded with their ledger entries stamped at or before ``T``, their plans
and the practices' membership plans and time zones, and judged with
:func:`~smilepass_core.domain.overdue.is_overdue` and
:func:`~smilepass_core.domain.overdue.overdue_instalments`. The query then keeps the ids
found (``overdue=True``) or every other row (``overdue=False``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from smilepass_core.domain import PAYMENT_PLAN_LIFECYCLE, PaymentPlanStatus
from smilepass_core.domain.billing import BILLABLE
from smilepass_core.domain.members import Member
from smilepass_core.domain.overdue import is_overdue, overdue_instalments
from smilepass_core.domain.payment_plans import PaymentPlan
from smilepass_core.domain.payments import Payment
from smilepass_core.sql.schema import layouts

__all__ = ["flag", "late_members", "late_plans"]

_OWING = sorted(s.value for s in PaymentPlanStatus if s not in PAYMENT_PLAN_LIFECYCLE.terminal)
_BILLABLE = sorted(s.value for s in BILLABLE)


def _status_at(name: str, key: str, parent: Any, at: datetime) -> Any:
    """The status of ``parent`` (an aggregate table) after every change stamped at or
    before ``at`` (NULL before creation)."""
    history = layouts[name].children["history"].table
    return (
        sa.select(history.c.to_status)
        .where(history.c[key] == parent.c.id, history.c.at <= at)
        .order_by(history.c.seq.desc())
        .limit(1)
        .correlate(parent)
        .scalar_subquery()
    )


def _among(column: Any, values: Iterable[str]) -> Any:
    """``column IN (...)`` with the values rendered into the statement (no bound-parameter
    limit, however many)."""
    return column.in_(sa.bindparam(None, sorted(values), expanding=True, literal_execute=True))


def _scoped(table: sa.Table, query: Any) -> list[Any]:
    """``query``'s practices and ids as conditions on ``table``."""
    where = []
    if query.practices is not None:
        where.append(_among(table.c.practice_id, query.practices))
    if query.ids is not None:
        where.append(_among(table.c.id, query.ids))
    return where


def _zones(conn: Connection) -> dict[str, str]:
    table = layouts["practices"].table
    rows = conn.execute(sa.select(table.c.id, table.c.timezone))
    return {row.id: row.timezone for row in rows}


def _late_plans(
    store: Any, conn: Connection, where: list[Any], at: datetime, grace_days: int
) -> list[PaymentPlan]:
    """The payment plans passing ``where`` with an instalment overdue at ``at``."""
    repo = store.payment_plans
    open_then = _status_at("payment_plans", "payment_plan_id", repo.table, at).in_(_OWING)
    zones = _zones(conn)
    return [
        plan
        for plan in repo._read(conn, sa.select(repo.table).where(*where, open_then))
        if overdue_instalments(plan, at=at, timezone=zones[plan.practice_id], grace_days=grace_days)
    ]


def late_plans(store: Any, conn: Connection, query: Any) -> set[str]:
    """The ids of the payment plans in ``query``'s practices and ids with an instalment
    overdue at ``query.as_of``."""
    table = store.payment_plans.table
    plans = _late_plans(store, conn, _scoped(table, query), query.as_of, query.grace_days)
    return {p.id for p in plans}


def late_members(store: Any, conn: Connection, query: Any) -> set[str]:
    """The ids of the members in ``query``'s practices and ids who are overdue at
    ``query.as_of``."""
    at, grace_days = query.as_of, query.grace_days
    members, plans = store.members.table, store.payment_plans.table
    billable = _status_at("members", "member_id", members, at).in_(_BILLABLE)
    holding = members.c.id.in_(
        sa.select(plans.c.member_id).where(
            plans.c.member_id.is_not(None),
            _status_at("payment_plans", "payment_plan_id", plans, at).in_(_OWING),
        )
    )
    candidates: list[Member] = store.members._read(
        conn, sa.select(members).where(*_scoped(members, query), sa.or_(billable, holding))
    )
    if not candidates:
        return set()
    ids = [m.id for m in candidates]
    late = {
        p.member_id
        for p in _late_plans(store, conn, [_among(plans.c.member_id, ids)], at, grace_days)
    }
    ledger: defaultdict[str | None, list[Payment]] = defaultdict(list)
    payments = store.payments.table
    for payment in store.payments._read(
        conn,
        sa.select(payments)
        .where(_among(payments.c.member_id, ids), payments.c.at <= at)
        .order_by(payments.c.at, payments.c.id),
    ):
        ledger[payment.member_id].append(payment)
    catalogue_table = store.membership_plans.table
    catalogue = {p.id: p for p in store.membership_plans._read(conn, sa.select(catalogue_table))}
    zones = _zones(conn)
    return {
        m.id
        for m in candidates
        if m.id in late
        or is_overdue(
            m,
            at=at,
            timezone=zones[m.practice_id],
            grace_days=grace_days,
            membership_plans=catalogue,
            payments=ledger[m.id],
        )
    }


def flag(column: Any, late: Iterable[str], wanted: bool) -> Any:
    """Rows whose ``column`` is among ``late`` (``wanted``) or not (not ``wanted``); the
    ids are rendered into the statement, so no bound-parameter limit applies."""
    found = _among(column, late)
    return found if wanted else sa.not_(found)
