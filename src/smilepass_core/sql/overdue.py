"""The Overdue filter as SQL: :mod:`smilepass_core.domain.overdue`, clause by clause.

At instant ``T`` with ``g`` grace days:

- a **payment plan** is overdue when its status at ``T`` (the last change stamped at or
  before ``T``) is Pending, Active or Failed, and an instalment at or after the number
  paid by ``T`` (succeeded attempts stamped at or before ``T``) is due on or before the
  practice's last overdue day (``domain.overdue.last_overdue_due_date``: the local day
  before ``T``'s, less ``g``; computed in Python per practice, so the database needs no
  time zone support);
- a **member** is overdue when their status at ``T`` is Failed and the Failed spell
  began before the local midnight that ends the practice's latest overdue day
  (``domain.overdue.latest_overdue_day``: ``T``'s local day less ``g``; also computed
  in Python per practice), or they hold an overdue plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any, Final

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from smilepass_core.domain import PAYMENT_PLAN_LIFECYCLE, MembershipStatus, PaymentPlanStatus
from smilepass_core.domain.overdue import last_overdue_due_date, latest_overdue_day
from smilepass_core.periods import local_midnight
from smilepass_core.sql.schema import Day, UtcInstant, layouts

__all__ = ["Lasts", "flag", "last_days", "member_overdue", "plan_overdue"]

_OWING = sorted(s.value for s in PaymentPlanStatus if s not in PAYMENT_PLAN_LIFECYCLE.terminal)
_FAILED = MembershipStatus.FAILED.value
_DAY: Final = timedelta(days=1)


@attrs.frozen
class Lasts:
    """Per practice, at ``T`` with ``g`` grace days: the last due date of an overdue
    instalment, and the instant a Failed spell must have begun before to be overdue."""

    due_dates: Mapping[str, date]
    failed_before: Mapping[str, datetime]


def last_days(conn: Connection, at: datetime, grace_days: int) -> Lasts:
    """Each practice's bounds at ``at`` (one read of the practices)."""
    table = layouts["practices"].table
    rows = conn.execute(sa.select(table.c.id, table.c.timezone)).all()
    return Lasts(
        {id: last_overdue_due_date(at, zone, grace_days) for id, zone in rows},
        {
            id: local_midnight(latest_overdue_day(at, zone, grace_days) + _DAY, zone)
            for id, zone in rows
        },
    )


def _per_practice(practice: Any, bounds: Mapping[str, Any], type_: Any) -> Any:
    """The bound of the row's practice (``CASE practice_id WHEN ...``; NULL for none),
    bound as ``type_`` (so an instant is sent as the UTC the columns hold)."""
    if not bounds:  # a store without practices: no row has a bound
        return sa.cast(sa.null(), type_)
    whens = {id: sa.literal(bound, type_) for id, bound in sorted(bounds.items())}
    return sa.case(whens, value=practice)


def _status_at(history: sa.Table, key: Any, parent: Any, at: datetime) -> Any:
    """The status of ``parent`` (an aggregate table or alias) after every change stamped at
    or before ``at`` (NULL before creation)."""
    return (
        sa.select(history.c.to_status)
        .where(history.c[key] == parent.c.id, history.c.at <= at)
        .order_by(history.c.seq.desc())
        .limit(1)
        .correlate(parent)
        .scalar_subquery()
    )


def plan_overdue(plan: Any, at: datetime, lasts: Lasts) -> Any:
    """``plan`` (the payment plans table or an alias) has an overdue instalment at ``at``."""
    children = layouts["payment_plans"].children
    history, attempts = children["history"].table, children["attempts"].table
    schedule = children["schedule"].table
    paid = (
        sa.select(sa.func.count())
        .select_from(attempts)
        .where(
            attempts.c.payment_plan_id == plan.c.id,
            attempts.c.succeeded == sa.true(),
            attempts.c.at <= at,
        )
        .correlate(plan)  # the plan of the enclosing query, two levels out
        .scalar_subquery()
    )
    due = schedule.c.due_date <= _per_practice(plan.c.practice_id, lasts.due_dates, Day())
    return sa.and_(
        _status_at(history, "payment_plan_id", plan, at).in_(_OWING),
        sa.exists().where(schedule.c.payment_plan_id == plan.c.id, schedule.c.seq >= paid, due),
    )


def member_overdue(member: Any, at: datetime, lasts: Lasts) -> Any:
    """``member`` (the members table) is overdue at ``at``."""
    history = layouts["members"].children["history"].table
    since = (
        sa.select(sa.func.max(history.c.at))
        .where(
            history.c.member_id == member.c.id,
            history.c.at <= at,
            history.c.to_status == _FAILED,
            sa.or_(history.c.from_status.is_(None), history.c.from_status != _FAILED),
        )
        .correlate(member)
        .scalar_subquery()
    )
    plans = layouts["payment_plans"].table.alias("held")
    return sa.or_(
        sa.and_(
            _status_at(history, "member_id", member, at) == _FAILED,
            since < _per_practice(member.c.practice_id, lasts.failed_before, UtcInstant()),
        ),
        sa.exists().where(plans.c.member_id == member.c.id, plan_overdue(plans, at, lasts)),
    )


def flag(condition: Any, wanted: bool) -> Any:
    """Rows where ``condition`` is ``wanted`` (a NULL inside counts as not overdue)."""
    return sa.case((condition, 1), else_=0) == (1 if wanted else 0)
