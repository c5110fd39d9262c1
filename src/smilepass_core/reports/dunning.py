"""The dunning worklist: for every member of some practices, the actions a dunning policy
asks for now (docs/reports.md, "Dunning worklist")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import ClassVar

import attrs

from smilepass_core.domain import Payment
from smilepass_core.domain.billing import DunningPolicy, DunningStep, dunning_actions
from smilepass_core.money import Money
from smilepass_core.periods import as_instant
from smilepass_core.queries import MemberQuery, PaymentQuery, ScopeQuery
from smilepass_core.reports._table import Report, Table, practice_ids, zones_of
from smilepass_core.repositories import Store

__all__ = ["DunningRow", "DunningWorklist", "dunning_worklist"]


@attrs.frozen
class DunningRow(Table):
    """One action due now for one member."""

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "practice",
        "member_id",
        "account_holder",
        "step",
        "due_at",
        "charge",
        "stage",
        "amount",
        "currency",
        "reason",
        "key",
    )

    practice: str
    member_id: str
    account_holder: str
    step: DunningStep
    due_at: datetime
    charge: int | None
    stage: int | None
    amount: Money | None
    currency: str
    reason: str
    key: str


@attrs.frozen(repr=False)  # Report's short __repr__
class DunningWorklist(Report):
    """The actions due at ``now``, oldest first (then by member)."""

    ROW: ClassVar[type[Table]] = DunningRow

    rows: tuple[DunningRow, ...]
    now: datetime
    policy: DunningPolicy
    timezones: Mapping[str, str] = attrs.field(factory=dict, kw_only=True)


def dunning_worklist(
    store: Store,
    *,
    now: datetime,
    practices: Iterable[str] | str | None = None,
    policy: DunningPolicy | None = None,
    sent: Iterable[str] = (),
) -> DunningWorklist:
    """Every member's :func:`~smilepass_core.domain.billing.dunning_actions` at ``now``
    under ``policy`` (the default when omitted); ``sent`` holds the keys of the reminders
    already sent, which are not asked for again.

    Raises:
        NotFound: an unknown practice id.
    """
    at = as_instant(now, "now")
    rules = policy or DunningPolicy()
    done = frozenset(sent)
    ids = practice_ids(store, practices)
    rows: list[DunningRow] = []
    for practice_id in ids:
        practice = store.practices.get(practice_id)
        scope = frozenset((practice_id,))
        plans = {p.id: p for p in store.membership_plans.find(ScopeQuery(practices=scope))}
        ledgers: dict[str, list[Payment]] = {}
        for payment in store.payments.find(PaymentQuery(practices=scope)):
            if payment.member_id is not None:
                ledgers.setdefault(payment.member_id, []).append(payment)
        for member in store.members.find(MemberQuery(practices=scope)):
            actions = dunning_actions(
                member,
                plans[member.plan_id],
                ledgers.get(member.id, ()),
                at=at,
                timezone=practice.timezone,
                policy=rules,
                sent=done,
                plans=plans,
            )
            rows += [
                DunningRow(
                    practice_id,
                    member.id,
                    member.account_holder.name,
                    a.step,
                    a.due_at,
                    a.charge,
                    a.stage,
                    a.amount,
                    practice.currency,
                    a.reason,
                    a.key,
                )
                for a in actions
            ]
    rows.sort(key=lambda r: (r.due_at, r.member_id, r.key))
    return DunningWorklist(tuple(rows), at, rules, timezones=zones_of(store, ids))
