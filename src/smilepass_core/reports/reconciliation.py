"""The reconciliation lists: the Membership list and the Payment Plan list, with totals.

Both are the manual's per-patient reconciliation: every row carries its status,
and the totals check each payment plan's progression against the ledger, so a
plan whose ledger disagrees is listed as a discrepancy, never hidden.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import Any, ClassVar

import attrs

from smilepass_core.domain import (
    FollowUpAction,
    Member,
    MembershipStatus,
    PaymentPlan,
    PaymentPlanStatus,
    PaymentType,
)
from smilepass_core.domain.overdue import amount_overdue, overdue_instalments
from smilepass_core.money import Money, per_currency
from smilepass_core.periods import as_instant
from smilepass_core.queries import (
    MemberQuery,
    Order,
    PaymentPlanQuery,
    PaymentQuery,
    ScopeQuery,
    sort_columns,
)
from smilepass_core.reports._table import (
    Report,
    Table,
    as_it_stood,
    member_ledgers,
    practice_ids,
    require_ids,
    sort_rows,
    zones_of,
)
from smilepass_core.repositories import Store

__all__ = [
    "Discrepancy",
    "MembershipList",
    "MembershipRow",
    "PaymentPlanList",
    "PaymentPlanRow",
    "membership_list",
    "payment_plan_list",
]


@attrs.frozen
class MembershipRow(Table):
    """One row of the Membership list."""

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "member_id",
        "account_holder",
        "dependents",
        "plan",
        "status",
        "start_date",
        "practice",
        "overdue",
        "amount_overdue",
        "currency",
    )

    member_id: str
    account_holder: str
    dependents: int
    plan: str
    status: MembershipStatus
    start_date: date
    practice: str
    overdue: bool
    amount_overdue: Money | None
    currency: str
    member: Member = attrs.field(eq=False, repr=False)


@attrs.frozen(repr=False)  # Report's short __repr__
class MembershipList(Report):
    """The Membership list, with its totals.

    Attributes:
        rows: The rows, sorted and paged as asked.
        as_of: The instant the overdue flags are judged at.
        counts: Members per status over every matching member (before paging).
        overdue_members: How many matching members are overdue.
        total_overdue: Sum of the amounts overdue, per currency.
    """

    ROW: ClassVar[type[Table]] = MembershipRow

    rows: tuple[MembershipRow, ...]
    as_of: datetime
    counts: Mapping[str, int]
    overdue_members: int
    total_overdue: Mapping[str, Money]
    timezones: Mapping[str, str] = attrs.field(factory=dict, kw_only=True)


def membership_list(
    store: Store,
    *,
    as_of: datetime,
    practices: Iterable[str] | str | None = None,
    plans: Iterable[str] | None = None,
    statuses: Iterable[Any] | None = None,
    overdue: bool | None = None,
    grace_days: int = 0,
    order: Order | None = None,
) -> MembershipList:
    """The Membership list: filters practice / plan / status / Overdue, any sort column.

    Raises:
        NotFound: an unknown practice or membership plan id in a filter.
    """
    ids = practice_ids(store, practices)
    query = MemberQuery(
        practices=ids,
        plans=require_ids(store.membership_plans, plans, ids, "plans"),
        statuses=statuses,
        overdue=overdue,
        as_of=as_of if overdue is not None else None,
        grace_days=grace_days,
    )
    at = as_instant(as_of, "as_of")
    zones = {p: store.practices.get(p).timezone for p in ids}
    plan_names = {p.id: p for p in store.membership_plans.find(ScopeQuery(practices=ids))}
    # Statuses are judged as they stood at `at`, so the store is asked without them.
    everyone = as_it_stood(
        store.members.find(attrs.evolve(query, statuses=None)), at, query.statuses
    )
    by_member = _plans_by_member(store, ids)
    ledgers = member_ledgers(store, ids)

    def row(m: Member) -> MembershipRow:
        plan = plan_names.get(m.plan_id)
        owed = amount_overdue(
            m,
            by_member.get(m.id, ()),
            at=at,
            timezone=zones[m.practice_id],
            grace_days=grace_days,
            membership_plans=plan_names,
            payments=ledgers.get(m.id, ()),
        )
        currency = plan.price.currency if plan else ""
        return MembershipRow(
            member_id=m.id,
            account_holder=m.account_holder.name,
            dependents=len(m.dependents),
            plan=plan.name if plan else m.plan_id,
            status=m.status,
            start_date=m.start_date,
            practice=m.practice_id,
            overdue=owed is not None,
            amount_overdue=owed,
            currency=owed.currency if owed else currency,
            member=m,
        )

    all_rows = {m.id: row(m) for m in everyone}
    rows = tuple(sort_rows(all_rows.values(), order))
    return MembershipList(
        rows=rows,
        as_of=at,
        counts=dict(Counter(r.status.value for r in all_rows.values())),
        overdue_members=sum(r.overdue for r in all_rows.values()),
        total_overdue=per_currency(r.amount_overdue for r in all_rows.values() if r.amount_overdue),
        timezones=zones_of(store, ids),
    )


def _plans_by_member(store: Store, practices: tuple[str, ...]) -> dict[str, list[PaymentPlan]]:
    result: dict[str, list[PaymentPlan]] = {}
    for plan in store.payment_plans.find(PaymentPlanQuery(practices=practices)):
        if plan.member_id is not None:
            result.setdefault(plan.member_id, []).append(plan)
    return result


@attrs.frozen
class PaymentPlanRow(Table):
    """One row of the Payment Plan list, with the actions its status offers."""

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "payment_plan_id",
        "patient",
        "progression",
        "balance",
        "currency",
        "status",
        "payment_type",
        "next_due",
        "practice",
        "archived",
        "actions",
    )

    payment_plan_id: str
    patient: str
    progression: str
    balance: Money
    currency: str
    status: PaymentPlanStatus
    payment_type: PaymentType
    next_due: date | None
    practice: str
    archived: bool
    actions: tuple[FollowUpAction, ...]
    plan: PaymentPlan = attrs.field(eq=False, repr=False)

    #: Progression sorts as the stores sort it: by the paid fraction, then instalments.
    SORT_KEYS: ClassVar[Mapping[str, Callable[[Any], Any]]] = {
        "progression": lambda row: sort_columns[PaymentPlan]["progression"](row.plan)
    }


@attrs.frozen
class Discrepancy:
    """A plan whose ledger does not match its progression: paid per plan vs per ledger."""

    payment_plan_id: str
    paid_per_plan: Money
    collected_per_ledger: Money


@attrs.frozen(repr=False)  # Report's short __repr__
class PaymentPlanList(Report):
    """The Payment Plan list, with its totals and the ledger check.

    Attributes:
        rows: The rows, sorted and paged as asked (``"status"`` sorts Failed first).
        counts: Plans per status over every matching plan (before paging).
        outstanding: Total balance of the matching plans that are not Cancelled, per currency.
        overdue: Total of their overdue instalments at ``as_of``, per currency.
        discrepancies: Plans whose succeeded ledger charges minus refunds differ from
            the instalments they record as paid.
    """

    ROW: ClassVar[type[Table]] = PaymentPlanRow

    rows: tuple[PaymentPlanRow, ...]
    as_of: datetime
    counts: Mapping[str, int]
    outstanding: Mapping[str, Money]
    overdue: Mapping[str, Money]
    discrepancies: tuple[Discrepancy, ...]
    timezones: Mapping[str, str] = attrs.field(factory=dict, kw_only=True)


def payment_plan_list(
    store: Store,
    *,
    as_of: datetime,
    practices: Iterable[str] | str | None = None,
    statuses: Iterable[Any] | None = None,
    payment_types: Iterable[Any] | None = None,
    archived: bool | None = None,
    grace_days: int = 0,
    order: Order | None = None,
) -> PaymentPlanList:
    """The Payment Plan list: filters practice / status / payment type / archived.

    Raises:
        NotFound: an unknown practice id.
    """
    ids = practice_ids(store, practices)
    at = as_instant(as_of, "as_of")
    query = PaymentPlanQuery(
        practices=ids, statuses=statuses, payment_types=payment_types, archived=archived
    )
    # Status and archiving are judged as they stood at `at`: the store is asked without.
    everyone = [
        p
        for p in as_it_stood(
            store.payment_plans.find(attrs.evolve(query, statuses=None, archived=None)),
            at,
            query.statuses,
        )
        if query.archived is None or p.is_archived is query.archived
    ]
    zones = {p: store.practices.get(p).timezone for p in ids}
    open_plans = [p for p in everyone if p.status is not PaymentPlanStatus.CANCELLED]
    overdue = per_currency(
        i.amount
        for p in everyone
        for i in overdue_instalments(p, at=at, timezone=zones[p.practice_id], grace_days=grace_days)
    )
    ledger: dict[str, Money] = {}
    sources = {("payment_plan", p.id) for p in everyone}
    for payment in store.payments.find(PaymentQuery(practices=ids, sources=sources)):
        if payment.at > at:
            continue
        plan_id = payment.source[1]
        ledger[plan_id] = ledger.get(plan_id, Money.zero(payment.amount.currency)) + payment.signed
    discrepancies = []
    for plan in everyone:
        collected = ledger.get(plan.id, Money.zero(plan.total.currency))
        if collected != plan.paid:
            discrepancies.append(Discrepancy(plan.id, plan.paid, collected))
    return PaymentPlanList(
        rows=tuple(sort_rows((_plan_row(p) for p in everyone), order)),
        as_of=at,
        counts=dict(Counter(p.status.value for p in everyone)),
        outstanding=per_currency(p.balance for p in open_plans),
        overdue=overdue,
        discrepancies=tuple(discrepancies),
        timezones=zones_of(store, ids),
    )


def _plan_row(plan: PaymentPlan) -> PaymentPlanRow:
    nxt = plan.next_instalment
    return PaymentPlanRow(
        payment_plan_id=plan.id,
        patient=plan.patient.name,
        progression=plan.progression,
        balance=plan.balance,
        currency=plan.total.currency,
        status=plan.status,
        payment_type=plan.payment_type,
        next_due=None
        if nxt is None or plan.status is PaymentPlanStatus.CANCELLED
        else nxt.due_date,
        practice=plan.practice_id,
        archived=plan.is_archived,
        actions=plan.follow_up_actions(),
        plan=plan,
    )
