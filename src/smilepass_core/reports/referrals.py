"""Referral tracking (the manual's Reporting page) and per-staff attribution."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

import attrs

from smilepass_core.domain import Campaign, Member, Referral, ReferralStatus
from smilepass_core.domain.billing import priced_dates
from smilepass_core.kpi import Ratio
from smilepass_core.money import Money
from smilepass_core.periods import DateRange, as_instant, local_midnight, zone
from smilepass_core.queries import (
    MemberQuery,
    Order,
    PaymentPlanQuery,
    PaymentQuery,
    ReferralQuery,
    ScopeQuery,
)
from smilepass_core.reports._table import (
    Report,
    Table,
    as_it_stood,
    practice_ids,
    require_ids,
    sort_rows,
    zones_of,
)
from smilepass_core.repositories import Store

__all__ = [
    "ConversionSummary",
    "ReferralRow",
    "ReferralTracking",
    "StaffAttribution",
    "StaffRow",
    "referral_tracking",
    "staff_attribution",
]


@attrs.frozen
class ReferralRow(Table):
    """One referral: the manual's columns Account Holder, Dependents, Start Date,
    Campaign, User, Status."""

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "referral_id",
        "account_holder",
        "dependents",
        "start_date",
        "campaign",
        "user",
        "status",
        "practice",
        "converted_at",
    )

    referral_id: str
    account_holder: str
    dependents: int
    start_date: date
    campaign: str | None
    user: str | None
    status: ReferralStatus
    practice: str
    converted_at: datetime | None
    referral: Referral = attrs.field(eq=False, repr=False)


@attrs.frozen
class ConversionSummary(Table):
    """Referrals, conversions and the revenue collected from converted members, for one
    campaign or one staff user (``key`` is its id; ``None``: no campaign / no user).

    ``sign_ups`` counts every member who joined through it: the conversions, plus the
    members attributed to it (their ``campaign_id`` or ``staff_user_id``) who joined
    without a referral; for the ``None`` group (no campaign, no user), the conversions
    only (``None`` when not counted). ``discount_given`` (a campaign, with a revenue
    range): its discount taken off those members' billing dates due in the range."""

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "key",
        "name",
        "referrals",
        "conversions",
        "conversion_rate",
        "sign_ups",
        "revenue",
        "discount_given",
        "currency",
    )

    key: str | None
    name: str
    referrals: int
    conversions: int
    revenue: Money | None
    currency: str
    sign_ups: int | None = None
    discount_given: Money | None = None

    @property
    def conversion_rate(self) -> Decimal | None:
        """Conversions per referral, in percent; undefined (``None``) with no referrals."""
        return Ratio(self.conversions, self.referrals).percent


@attrs.frozen(repr=False)  # Report's short __repr__
class ReferralTracking(Report):
    """The referral tracking report.

    Attributes:
        rows: The matching referrals, sorted and paged as asked.
        by_campaign: One summary per campaign (and one for referrals without a campaign),
            over every matching referral.
        by_user: The same per staff user.
        revenue_range: The range the revenue columns cover, if any (cut at ``as_of``).
        as_of: The instant the report answers for; ``None``: the data as it is.
    """

    ROW: ClassVar[type[Table]] = ReferralRow

    rows: tuple[ReferralRow, ...]
    by_campaign: tuple[ConversionSummary, ...]
    by_user: tuple[ConversionSummary, ...]
    revenue_range: DateRange | None
    timezones: Mapping[str, str] = attrs.field(factory=dict, kw_only=True)
    as_of: datetime | None = attrs.field(default=None, kw_only=True)


def referral_tracking(
    store: Store,
    *,
    practices: Iterable[str] | str | None = None,
    campaigns: Iterable[str] | None = None,
    users: Iterable[str] | None = None,
    statuses: Iterable[Any] | None = None,
    start_from: date | None = None,
    start_until: date | None = None,
    revenue_range: DateRange | None = None,
    order: Order | None = None,
    as_of: datetime | None = None,
) -> ReferralTracking:
    """Referral tracking: filters by campaign, user, status and start dates; summaries
    per campaign and per staff user with conversion rate and revenue in ``revenue_range``.

    Raises:
        NotFound: an unknown practice, campaign or staff user id in a filter.
    """
    ids = practice_ids(store, practices)
    query = ReferralQuery(
        practices=ids,
        campaigns=require_ids(store.campaigns, campaigns, ids, "campaigns"),
        staff_users=require_ids(store.staff_users, users, ids, "users"),
        statuses=statuses,
        start_from=start_from,
        start_until=start_until,
    )
    scope = ScopeQuery(practices=ids)
    campaigns_kept = {c.id: c for c in store.campaigns.find(scope)}
    campaign_names = {c.id: c.name for c in campaigns_kept.values()}
    user_names = {u.id: u.name for u in store.staff_users.find(scope)}
    currencies = {p: store.practices.get(p).currency for p in ids}
    at = None if as_of is None else as_instant(as_of, "as_of")
    if at is None:
        everyone = store.referrals.find(query)
    else:  # statuses as they stood at `at`: the store is asked without them
        everyone = as_it_stood(
            store.referrals.find(attrs.evolve(query, statuses=None)), at, query.statuses
        )
        revenue_range = revenue_range.cut(at) if revenue_range is not None else None
    rows = sort_rows(
        (
            ReferralRow(
                referral_id=r.id,
                account_holder=r.account_holder.name,
                dependents=len(r.dependents),
                start_date=r.start_date,
                campaign=campaign_names.get(r.campaign_id) if r.campaign_id else None,
                user=user_names.get(r.staff_user_id) if r.staff_user_id else None,
                status=r.status,
                practice=r.practice_id,
                converted_at=r.converted_at,
                referral=r,
            )
            for r in everyone
        ),
        order,
    )
    revenue = _revenue_by_member(store, ids, everyone, revenue_range)

    # Members who joined without a referral (as they stood at `at`), for the sign-ups.
    all_referrals = store.referrals.find(ReferralQuery(practices=ids))
    all_members = store.members.find(MemberQuery(practices=ids))
    if at is not None:
        all_referrals = as_it_stood(all_referrals, at)
        all_members = as_it_stood(all_members, at)
    referred = {r.member_id for r in all_referrals if r.member_id is not None}
    direct = [
        m
        for m in all_members
        if m.id not in referred
        and (start_from is None or m.start_date >= start_from)
        and (start_until is None or m.start_date <= start_until)
    ]

    # Who signed up with a campaign's code: every member kept with its id (referred or not).
    coded = [
        m
        for m in all_members
        if m.campaign_id is not None
        and (start_from is None or m.start_date >= start_from)
        and (start_until is None or m.start_date <= start_until)
    ]
    given = _Discounts(store, ids, coded, revenue_range)

    def summaries(
        key_of: Any, names: Mapping[str, str], listed: Iterable[Any], *, priced: bool = False
    ) -> tuple[ConversionSummary, ...]:
        joined: dict[tuple[str | None, str], list[str]] = {}
        for m in direct:
            if key_of(m) is not None:  # a walk-in is nobody's sign-up
                joined.setdefault((key_of(m), currencies[m.practice_id]), []).append(m.id)
        groups: dict[tuple[str | None, str], list[Referral]] = {
            (obj.id, currencies[obj.practice_id]): [] for obj in listed
        }
        for r in everyone:
            groups.setdefault((key_of(r), currencies[r.practice_id]), []).append(r)
        result = []
        # `None` (no campaign, no user) last, as the lists sort it.
        for (key, currency), members in sorted(
            groups.items(), key=lambda kv: (kv[0][0] is None, kv[0][0] or "", kv[0][1])
        ):
            converted = [r for r in members if r.status is ReferralStatus.CONVERTED]
            money = None
            if revenue_range is not None:
                money = sum(
                    (revenue.get(r.member_id or "", Money.zero(currency)) for r in converted),
                    Money.zero(currency),
                )
            campaign = campaigns_kept.get(key or "") if priced else None
            result.append(
                ConversionSummary(
                    key,
                    names.get(key or "", "(none)"),
                    len(members),
                    len(converted),
                    money,
                    currency,
                    len(converted) + len(joined.get((key, currency), [])),
                    None if campaign is None else given.of(campaign, currency),
                )
            )
        return tuple(result)

    campaign_list = [c for c in store.campaigns.find(scope) if _in(query.campaigns, c.id)]
    user_list = [u for u in store.staff_users.find(scope) if _in(query.staff_users, u.id)]
    return ReferralTracking(
        rows=tuple(rows),
        by_campaign=summaries(lambda r: r.campaign_id, campaign_names, campaign_list, priced=True),
        by_user=summaries(lambda r: r.staff_user_id, user_names, user_list),
        revenue_range=revenue_range,
        timezones=zones_of(store, ids),
        as_of=at,
    )


def _revenue_by_member(
    store: Store,
    practices: tuple[str, ...],
    referrals: Iterable[Referral],
    window: DateRange | None,
) -> dict[str, Money]:
    """Net collected per converted member over ``window`` (one ledger read)."""
    if window is None:
        return {}
    members = {r.member_id for r in referrals if r.member_id}
    return _collected(store, practices, members, window)


class _Discounts:
    """A campaign's discount given over a range to the members who joined through it."""

    def __init__(
        self,
        store: Store,
        practices: tuple[str, ...],
        members: Iterable[Member],
        window: DateRange | None,
    ) -> None:
        self.window = window
        self.members: dict[str, list[Member]] = {}
        for m in members:
            self.members.setdefault(m.campaign_id or "", []).append(m)
        if window is not None:
            scope = ScopeQuery(practices=practices)
            self.plans = {p.id: p for p in store.membership_plans.find(scope)}
            self.zones = zones_of(store, practices)

    def of(self, campaign: Campaign, currency: str) -> Money | None:
        """The reductions of ``campaign``'s discount on the billing dates, local midnight
        in the range, of the members who joined through it (``None`` without a range;
        zero for a campaign without a discount)."""
        window = self.window
        total = Money.zero(currency)
        if window is None:
            return None
        if campaign.discount is None:
            return total
        last = window.end - timedelta(microseconds=1)
        for member in self.members.get(campaign.id, ()):
            tz = self.zones[member.practice_id]
            plan = self.plans[member.plan_id]
            for _, day, price in priced_dates(member, plan, at=last, timezone=tz, plans=self.plans):
                if window.start <= local_midnight(day, tz) < window.end:
                    total += sum(
                        (cut for id, cut in price.reductions if id == campaign.discount.id),
                        Money.zero(currency),
                    )
        return total


def _in(wanted: frozenset[str] | None, id: str) -> bool:
    return wanted is None or id in wanted


def _collected(
    store: Store, practices: tuple[str, ...], member_ids: Iterable[str], window: DateRange
) -> dict[str, Money]:
    """Net collected over ``window`` per member: their membership charges and the
    instalments of the payment plans they hold, less refunds."""
    members = set(member_ids)
    if not members:
        return {}
    owner = {
        ("payment_plan", p.id): p.member_id
        for p in store.payment_plans.find(PaymentPlanQuery(practices=practices, members=members))
        if p.member_id is not None
    }
    owner |= {("member", m): m for m in members}
    result: dict[str, Money] = {}
    query = PaymentQuery(practices=practices, sources=set(owner), time_range=window)
    for p in store.payments.find(query):
        key = owner[p.source]
        result[key] = result.get(key, Money.zero(p.amount.currency)) + p.signed
    return result


@attrs.frozen
class StaffRow(Table):
    """What one staff user brought in over the range."""

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "staff_user_id",
        "name",
        "practice",
        "referrals",
        "conversions",
        "members_attributed",
        "revenue",
        "currency",
    )

    staff_user_id: str
    name: str
    practice: str
    referrals: int
    conversions: int
    members_attributed: int
    revenue: Money
    currency: str


@attrs.frozen(repr=False)  # Report's short __repr__
class StaffAttribution(Report):
    """Per-staff attribution over a range (the Pro tier's report, here for everyone)."""

    ROW: ClassVar[type[Table]] = StaffRow

    rows: tuple[StaffRow, ...]
    date_range: DateRange
    timezones: Mapping[str, str] = attrs.field(factory=dict, kw_only=True)


def staff_attribution(
    store: Store,
    *,
    date_range: DateRange,
    now: datetime,
    practices: Iterable[str] | str | None = None,
) -> StaffAttribution:
    """Per staff user, over ``date_range`` cut at ``now``:

    - **referrals**: referrals attributed to them that started in the range (by start date);
    - **conversions**: their referrals that converted in the range;
    - **members attributed**: members attributed to them first activated in the range;
    - **revenue**: collected in the range from every member attributed to them (their
      membership charges and the instalments of payment plans they hold, less refunds).
    """
    ids = practice_ids(store, practices)
    at = as_instant(now, "now")
    cut = date_range.cut(at)
    first_day = cut.local_start.date()
    last_day = (cut.end - timedelta(microseconds=1)).astimezone(zone(cut.timezone)).date()
    rows = []
    for user in store.staff_users.find(ScopeQuery(practices=ids), order=Order(["id"])):
        practice = store.practices.get(user.practice_id)
        mine = frozenset((user.id,))
        scope = frozenset((user.practice_id,))
        # Referrals made by `now` (one recorded later may carry a start date in the range).
        started = (
            sum(
                r.created_at <= at
                for r in store.referrals.find(
                    ReferralQuery(
                        practices=scope,
                        staff_users=mine,
                        start_from=first_day,
                        start_until=last_day,
                    )
                )
            )
            if not cut.is_empty()
            else 0
        )
        converted = store.referrals.count(
            ReferralQuery(practices=scope, staff_users=mine, converted_in=cut)
        )
        attributed = store.members.find(MemberQuery(practices=scope, staff_users=mine))
        new = sum(1 for m in attributed if m.first_activated_at and m.first_activated_at in cut)
        collected = _collected(store, (user.practice_id,), (m.id for m in attributed), cut)
        zero = Money.zero(practice.currency)
        rows.append(
            StaffRow(
                staff_user_id=user.id,
                name=user.name,
                practice=user.practice_id,
                referrals=started,
                conversions=converted,
                members_attributed=new,
                revenue=sum(collected.values(), zero),
                currency=practice.currency,
            )
        )
    return StaffAttribution(rows=tuple(rows), date_range=cut, timezones=zones_of(store, ids))
