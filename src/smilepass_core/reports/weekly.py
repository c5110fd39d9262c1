"""The manual's five-minute weekly check, in one call."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, ClassVar, TypeVar

import attrs

from smilepass_core.domain import PaymentPlanStatus
from smilepass_core.domain.overdue import overdue_invoices
from smilepass_core.errors import InvalidValue
from smilepass_core.kpi import Dashboard, Goals, KpiTargets, dashboard
from smilepass_core.periods import DateRange, Preset, as_instant, local_day
from smilepass_core.presentation import Shown
from smilepass_core.queries import (
    MemberQuery,
    PaymentPlanQuery,
    PaymentQuery,
    ReferralQuery,
    ScopeQuery,
)
from smilepass_core.reports._table import Rows, Table, as_it_stood, practice_ids, to_records
from smilepass_core.reports.reconciliation import MembershipRow, membership_list
from smilepass_core.reports.recovery import RecoveredRevenue, recovered_revenue
from smilepass_core.repositories import Store

__all__ = ["ConvertedReferral", "FailedPlan", "WeeklyCheck", "weekly_check"]


@attrs.frozen
class FailedPlan(Table):
    """A Failed payment plan to action: since when, what is left, what to do."""

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "payment_plan_id",
        "practice",
        "patient",
        "failed_at",
        "progression",
        "balance",
        "currency",
        "actions",
    )

    payment_plan_id: str
    practice: str
    patient: str
    failed_at: datetime
    progression: str
    balance: Any
    currency: str
    actions: tuple[Any, ...]


@attrs.frozen
class ConvertedReferral(Table):
    """A referral that converted this week: who to thank, who helped, who joined."""

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "referral_id",
        "practice",
        "converted_at",
        "new_account_holder",
        "referring_member",
        "staff_user",
        "campaign",
    )

    referral_id: str
    practice: str
    converted_at: datetime
    new_account_holder: str
    referring_member: str | None
    staff_user: str | None
    campaign: str | None


R = TypeVar("R", bound=Table)


def _rows(value: Iterable[R], row: type[R]) -> Rows[R]:
    """``value`` as :class:`Rows` of ``row`` (a plain tuple's instants shown in UTC)."""
    return value if isinstance(value, Rows) else Rows(value, row=row)


def _failed_rows(value: Iterable[FailedPlan]) -> Rows[FailedPlan]:
    return _rows(value, FailedPlan)


def _overdue_rows(value: Iterable[MembershipRow]) -> Rows[MembershipRow]:
    return _rows(value, MembershipRow)


def _converted_rows(value: Iterable[ConvertedReferral]) -> Rows[ConvertedReferral]:
    return _rows(value, ConvertedReferral)


@attrs.frozen
class WeeklyCheck(Shown):
    """This week against last week, what to action, and whom to thank.

    Attributes:
        dashboard: This week (Monday to now) with last week cut at the same point.
        failed_plans: Failed payment plans, oldest failure first.
        overdue_members: Overdue members, longest overdue first.
        converted_referrals: Referrals converted this week, in time order.
        recovery: Of the charges that failed last week (each practice's calendar week),
            what was recovered by now (:func:`~smilepass_core.reports.recovered_revenue`).
    """

    week: DateRange
    dashboard: Dashboard
    failed_plans: Rows[FailedPlan] = attrs.field(converter=_failed_rows)
    overdue_members: Rows[MembershipRow] = attrs.field(converter=_overdue_rows)
    converted_referrals: Rows[ConvertedReferral] = attrs.field(converter=_converted_rows)
    recovery: RecoveredRevenue | None = None

    def __attrs_post_init__(self) -> None:
        # The lists show their instants in the week's zone, however they were given.
        for name in ("failed_plans", "overdue_members", "converted_referrals"):
            rows = getattr(self, name)
            if rows.timezone != self.week.timezone:
                zoned = Rows(rows, row=rows.row, timezone=self.week.timezone)
                object.__setattr__(self, name, zoned)

    def __repr__(self) -> str:
        """One line: the practices, the week (local days, the end excluded) and how many
        rows each list holds.

        >>> from smilepass_core.demo import DEMO_NOW, demo_store
        >>> weekly_check(demo_store(), now=DEMO_NOW, practices="syd")
        <WeeklyCheck syd week 2026-11-23..2026-11-30: 6 failed plans,
            6 overdue members, 0 converted referrals>
        """
        first, end = self.week.local_start.date(), self.week.local_end.date()
        counts = [
            (len(self.failed_plans), "failed plan"),
            (len(self.overdue_members), "overdue member"),
            (len(self.converted_referrals), "converted referral"),
        ]
        listed = ", ".join(f"{n:,} {noun}{'' if n == 1 else 's'}" for n, noun in counts)
        practices = ", ".join(self.dashboard.practices)
        return f"<WeeklyCheck {practices} week {first}..{end}: {listed}>"

    def to_records(self) -> dict[str, list[dict[str, Any]]]:
        """Each section as plain records."""
        return {
            "failed_plans": to_records(self.failed_plans),
            "overdue_members": to_records(self.overdue_members),
            "converted_referrals": to_records(self.converted_referrals),
            "recovered_revenue": to_records(self.recovery.rows) if self.recovery else [],
        }


def weekly_check(
    store: Store,
    *,
    now: datetime,
    practices: Iterable[str] | str | None = None,
    targets: KpiTargets | Goals | None = None,
    grace_days: int = 0,
) -> WeeklyCheck:
    """The five-minute weekly check as of ``now`` for ``practices`` (all by default)."""
    ids = practice_ids(store, practices)
    if not ids:
        raise InvalidValue("practices", ids, "the store holds no practice to check")
    at = as_instant(now, "now")
    first = store.practices.get(ids[0])
    week = DateRange.this_week(now=at, timezone=first.timezone)
    board = dashboard(store, practices=ids, date_range=Preset.THIS_WEEK, now=at, targets=targets)
    failed = []
    # The plans Failed at `at`, as they stood then (a plan Failed since, or recovered
    # since, is judged as it was).
    plans = store.payment_plans.find(PaymentPlanQuery(practices=ids))
    for plan in as_it_stood(plans, at, {PaymentPlanStatus.FAILED}):
        since = max(c.at for c in plan.history if c.to is PaymentPlanStatus.FAILED)
        failed.append(
            FailedPlan(
                plan.id,
                plan.practice_id,
                plan.patient.name,
                since,
                plan.progression,
                plan.balance,
                plan.total.currency,
                plan.follow_up_actions(),
            )
        )
    failed.sort(key=lambda p: (p.failed_at, p.payment_plan_id))
    overdue = membership_list(
        store, as_of=at, practices=ids, overdue=True, grace_days=grace_days
    ).rows
    overdue = tuple(
        sorted(overdue, key=lambda r: (_overdue_since(r, store, at, grace_days), r.member_id))
    )
    converted = []
    scope = ScopeQuery(practices=ids)
    names = {m.id: m.account_holder.name for m in store.members.find(MemberQuery(practices=ids))}
    staff = {u.id: u.name for u in store.staff_users.find(scope)}
    campaigns = {c.id: c.name for c in store.campaigns.find(scope)}
    for practice_id in ids:
        tz = store.practices.get(practice_id).timezone
        this_week = DateRange.this_week(now=at, timezone=tz).cut(at)
        for r in store.referrals.find(
            ReferralQuery(practices=(practice_id,), converted_in=this_week)
        ):
            assert r.converted_at is not None
            assert r.member_id is not None
            converted.append(
                ConvertedReferral(
                    r.id,
                    r.practice_id,
                    r.converted_at,
                    names.get(r.member_id, r.account_holder.name),
                    names.get(r.referring_member_id) if r.referring_member_id else None,
                    staff.get(r.staff_user_id) if r.staff_user_id else None,
                    campaigns.get(r.campaign_id) if r.campaign_id else None,
                )
            )
    converted.sort(key=lambda r: (r.converted_at, r.referral_id))
    zone_name = week.timezone
    return WeeklyCheck(
        week,
        board,
        Rows(failed, row=FailedPlan, timezone=zone_name),
        Rows(overdue, row=MembershipRow, timezone=zone_name),
        Rows(converted, row=ConvertedReferral, timezone=zone_name),
        recovered_revenue(store, now=at, date_range=Preset.LAST_WEEK, practices=ids),
    )


def _overdue_since(row: MembershipRow, store: Store, at: datetime, grace_days: int) -> date:
    """The due date of the member's oldest overdue invoice, for sorting longest overdue
    first."""
    member = row.member
    practice = (row.practice,)
    late = overdue_invoices(
        member,
        store.payment_plans.find(PaymentPlanQuery(members=(member.id,))),
        at=at,
        timezone=store.practices.get(row.practice).timezone,
        grace_days=grace_days,
        membership_plans={
            p.id: p for p in store.membership_plans.find(ScopeQuery(practices=practice))
        },
        payments=store.payments.find(PaymentQuery(sources=(("member", member.id),))),
    )
    return min(
        (i.due_date for i in late),
        default=local_day(at, store.practices.get(row.practice).timezone),
    )
