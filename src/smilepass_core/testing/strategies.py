"""Hypothesis strategies for every smilepass_core type, valid by construction.

Hosts use them to property-test their own code::

    from hypothesis import given
    from smilepass_core.testing import strategies as sps

    @given(sps.members())
    def test_my_export_keeps_every_member(member): ...

Objects with a lifecycle come with a random legal history, built through the
domain's own transition methods, so every history follows the table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import attrs
from hypothesis import strategies as st

from smilepass_core.domain import (
    MEMBERSHIP_LIFECYCLE,
    PAYMENT_PLAN_LIFECYCLE,
    BillingCycle,
    Campaign,
    Lifecycle,
    Member,
    MembershipPlan,
    MembershipStatus,
    Patient,
    Payment,
    PaymentKind,
    PaymentOutcome,
    PaymentPlan,
    PaymentPlanStatus,
    PaymentType,
    Practice,
    Referral,
    ReferralStatus,
    StaffUser,
    Status,
)
from smilepass_core.money import CURRENCIES, Money
from smilepass_core.periods import DateRange
from smilepass_core.records import TABLES

__all__ = [
    "TIMEZONES",
    "Dataset",
    "boundaries",
    "campaigns",
    "currencies",
    "datasets",
    "date_ranges",
    "ids",
    "instants",
    "member_queries",
    "members",
    "membership_plans",
    "money",
    "orders",
    "patients",
    "payment_plan_queries",
    "payment_plans",
    "payment_queries",
    "payments",
    "positive_money",
    "practices",
    "referral_queries",
    "referrals",
    "scope_queries",
    "staff_users",
    "status_walks",
    "timezones",
]

T = TypeVar("T")
S = TypeVar("S", bound=Status)

#: Time zones with DST in both hemispheres, a half-hour offset, and UTC.
TIMEZONES = (
    "UTC",
    "Australia/Sydney",
    "America/New_York",
    "Europe/London",
    "Asia/Kolkata",
    "Australia/Adelaide",
    "America/Santiago",
    "Pacific/Auckland",
)

_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
_HORIZON = datetime(2030, 12, 31, tzinfo=UTC)


def ids(prefix: str = "id") -> st.SearchStrategy[str]:
    """Short id strings such as ``"m-17"``."""
    return st.integers(0, 10**6).map(lambda n: f"{prefix}-{n}")


def currencies() -> st.SearchStrategy[str]:
    """ISO 4217 codes the library knows, with 0, 2, 3 and 4 decimals among them."""
    return st.sampled_from(sorted(CURRENCIES))


def money(
    currency: str | st.SearchStrategy[str] | None = None,
    *,
    min_minor: int = -(10**12),
    max_minor: int = 10**12,
) -> st.SearchStrategy[Money]:
    """Money in ``currency`` (or a random one) between two counts of minor units."""
    codes = currencies() if currency is None else _just(currency)
    return st.builds(Money.from_minor, st.integers(min_minor, max_minor), codes)


def positive_money(
    currency: str | st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[Money]:
    """Money above zero, up to 10 million in major units."""
    return money(currency, min_minor=1, max_minor=10**9)


def timezones() -> st.SearchStrategy[str]:
    """IANA names from :data:`TIMEZONES`."""
    return st.sampled_from(TIMEZONES)


def instants(
    min_value: datetime = _EPOCH, max_value: datetime = _HORIZON
) -> st.SearchStrategy[datetime]:
    """Aware UTC datetimes between two instants, to the second."""
    span = int((max_value - min_value).total_seconds())
    return st.integers(0, span).map(lambda s: min_value + timedelta(seconds=s))


def date_ranges(
    timezone: str | None = None, *, max_days: int = 400
) -> st.SearchStrategy[DateRange]:
    """Whole-day ranges (possibly empty) or arbitrary instant ranges in a practice zone."""
    zones = timezones() if timezone is None else st.just(timezone)

    @st.composite
    def build(draw: st.DrawFn) -> DateRange:
        tz = draw(zones)
        start = draw(instants())
        if draw(st.booleans()):
            first = start.date()
            return DateRange.custom(
                first, first + timedelta(days=draw(st.integers(0, max_days))), timezone=tz
            )
        end = start + timedelta(seconds=draw(st.integers(0, max_days * 86400)))
        return DateRange(start, end, tz)

    return build()


def practices(
    timezone: str | None = None, currency: str | None = None
) -> st.SearchStrategy[Practice]:
    """Practices in a random zone and currency (or the given ones)."""
    return st.builds(
        Practice,
        id=ids("practice"),
        name=st.sampled_from(["Harbour Dental", "Smile Studio", "Bright Teeth"]),
        timezone=timezones() if timezone is None else st.just(timezone),
        currency=st.sampled_from(["AUD", "USD", "GBP", "NZD", "JPY", "KWD"])
        if currency is None
        else st.just(currency),
    )


def staff_users(practice_id: str | None = None) -> st.SearchStrategy[StaffUser]:
    """Staff users of ``practice_id`` (or a random practice id)."""
    return st.builds(
        StaffUser,
        id=ids("staff"),
        practice_id=_id_or(practice_id, "practice"),
        name=st.sampled_from(["Dr Nguyen", "Sam (front desk)", "Priya", "Dr O'Brien"]),
    )


def patients() -> st.SearchStrategy[Patient]:
    """Patients with a name and, sometimes, contact details."""
    return st.builds(
        Patient,
        id=ids("patient"),
        name=st.sampled_from(["Ada Lovelace", "Grace Hopper", "Alan Turing", "Mary Jackson"]),
        email=st.none() | st.just("patient@example.com"),
        phone=st.none() | st.just("+61 400 000 000"),
    )


def membership_plans(
    practice_id: str | None = None, currency: str | None = None
) -> st.SearchStrategy[MembershipPlan]:
    """Membership plans with a positive price and any billing cycle."""
    return st.builds(
        MembershipPlan,
        id=ids("plan"),
        practice_id=_id_or(practice_id, "practice"),
        name=st.sampled_from(["Essential", "Family", "Premium"]),
        price=positive_money(currency or st.sampled_from(["AUD", "USD"])),
        billing_cycle=st.sampled_from(BillingCycle),
    )


def status_walks(
    lifecycle: Lifecycle[S], start: S, *, max_steps: int = 8
) -> st.SearchStrategy[list[S]]:
    """Random legal walks through ``lifecycle``'s table from ``start`` (``start`` excluded)."""

    @st.composite
    def build(draw: st.DrawFn) -> list[S]:
        walk: list[S] = []
        current = start
        for _ in range(draw(st.integers(0, max_steps))):
            targets = sorted(lifecycle.allowed(current), key=lambda s: s.value)
            if not targets:
                break
            # Terminal statuses absorb the rest of the walk: reach them less often.
            weighted = [t for t in targets for _ in range(1 if t in lifecycle.terminal else 4)]
            current = draw(st.sampled_from(weighted))
            walk.append(current)
        return walk

    return build()


def _gaps(max_steps: int) -> st.SearchStrategy[list[timedelta]]:
    """Non-negative time steps; zero steps test same-instant changes."""
    return st.lists(
        st.integers(0, 90 * 86400).map(lambda s: timedelta(seconds=s)),
        min_size=max_steps,
        max_size=max_steps,
    )


def members(
    practice_id: str | None = None,
    plan_id: str | None = None,
    *,
    max_changes: int = 8,
    start: st.SearchStrategy[datetime] | None = None,
) -> st.SearchStrategy[Member]:
    """Members with a random legal status history built through their methods."""

    @st.composite
    def build(draw: st.DrawFn) -> Member:
        at = draw(
            start if start is not None else instants(max_value=datetime(2029, 1, 1, tzinfo=UTC))
        )
        member = Member.enrol(
            id=draw(ids("member")),
            practice_id=draw(_id_or(practice_id, "practice")),
            plan_id=draw(_id_or(plan_id, "plan")),
            account_holder=draw(patients()),
            dependents=tuple(draw(st.lists(patients(), max_size=3))),
            start_date=at.date(),
            at=at,
            campaign_id=draw(st.none() | ids("campaign")),
            staff_user_id=draw(st.none() | ids("staff")),
        )
        walk = draw(
            status_walks(MEMBERSHIP_LIFECYCLE, MembershipStatus.PENDING, max_steps=max_changes)
        )
        for status, gap in zip(walk, draw(_gaps(len(walk))), strict=True):
            at += gap
            member = member.transition(status, at=at, reason="generated")
        return member

    return build()


def payment_plans(
    practice_id: str | None = None,
    currency: str | None = None,
    *,
    max_events: int = 30,
) -> st.SearchStrategy[PaymentPlan]:
    """Payment plans of every payment type, driven through random payments,
    failures, activations, cancellations and archiving via their methods."""

    @st.composite
    def build(draw: st.DrawFn) -> PaymentPlan:
        at = draw(instants(max_value=datetime(2029, 1, 1, tzinfo=UTC)))
        payment_type = draw(st.sampled_from(PaymentType))
        n = draw(st.integers(1, 24)) if payment_type is PaymentType.PLAN else 1
        code = currency or draw(st.sampled_from(["AUD", "USD", "JPY", "KWD"]))
        total = draw(money(code, min_minor=n, max_minor=10**8))
        plan = PaymentPlan.offer(
            id=draw(ids("plan")),
            practice_id=draw(_id_or(practice_id, "practice")),
            patient=draw(patients()),
            total=total,
            payment_type=payment_type,
            instalments=n,
            first_due=(at + timedelta(days=draw(st.integers(0, 60)))).date(),
            at=at,
            cycle=draw(st.sampled_from(BillingCycle)),
            member_id=draw(st.none() | ids("member")),
        )
        for _ in range(draw(st.integers(0, max_events))):
            at += timedelta(seconds=draw(st.integers(0, 40 * 86400)))
            moved = _plan_move(plan, at, draw(st.integers(0, 99)))
            if moved is None:
                break
            plan = moved
        return plan

    return build()


def _plan_move(plan: PaymentPlan, at: datetime, roll: int) -> PaymentPlan | None:
    """A plausible next event for ``plan`` (``roll``, 0..99, picks it); ``None``: none left."""
    if plan.status in PAYMENT_PLAN_LIFECYCLE.terminal:
        if plan.status is PaymentPlanStatus.COMPLETED and not plan.is_archived and roll < 30:
            return plan.archive(at=at)
        return None
    if roll < 4:
        return plan.cancel(at=at)
    if roll < 24:
        return plan.record_failure(at=at)
    if roll < 34 and plan.status is PaymentPlanStatus.PENDING:
        return plan.activate(at=at)
    return plan.record_payment(at=at)


def payments(
    practice_id: str | None = None,
    currency: str | None = None,
    *,
    kinds: st.SearchStrategy[PaymentKind] | None = None,
) -> st.SearchStrategy[Payment]:
    """Single ledger entries (a charge or refund, succeeded or failed) for a member or a plan."""

    @st.composite
    def build(draw: st.DrawFn) -> Payment:
        for_member = draw(st.booleans())
        return Payment(
            id=draw(ids("payment")),
            practice_id=draw(_id_or(practice_id, "practice")),
            amount=draw(positive_money(currency or st.sampled_from(["AUD", "USD"]))),
            kind=draw(kinds if kinds is not None else st.sampled_from(PaymentKind)),
            outcome=draw(st.sampled_from(PaymentOutcome)),
            at=draw(instants()),
            member_id=draw(ids("member")) if for_member else None,
            payment_plan_id=None if for_member else draw(ids("plan")),
        )

    return build()


def campaigns(practice_id: str | None = None) -> st.SearchStrategy[Campaign]:
    """Campaigns with an open or closed active window."""

    @st.composite
    def build(draw: st.DrawFn) -> Campaign:
        start = draw(instants())
        length = draw(st.none() | st.integers(0, 365 * 86400))
        return Campaign(
            id=draw(ids("campaign")),
            practice_id=draw(_id_or(practice_id, "practice")),
            name=draw(st.sampled_from(["Spring smiles", "Refer a friend", "Back to school"])),
            promo_code=draw(st.sampled_from(["SPRING25", "FRIEND", "SCHOOL10"])),
            active_from=start,
            active_until=None if length is None else start + timedelta(seconds=length),
        )

    return build()


def referrals(practice_id: str | None = None) -> st.SearchStrategy[Referral]:
    """Referrals left Pending, Converted into a member, or Cancelled."""

    @st.composite
    def build(draw: st.DrawFn) -> Referral:
        at = draw(instants(max_value=datetime(2029, 1, 1, tzinfo=UTC)))
        referral = Referral.open(
            id=draw(ids("referral")),
            practice_id=draw(_id_or(practice_id, "practice")),
            account_holder=draw(patients()),
            dependents=tuple(draw(st.lists(patients(), max_size=3))),
            start_date=at.date(),
            at=at,
            campaign_id=draw(st.none() | ids("campaign")),
            staff_user_id=draw(st.none() | ids("staff")),
            referring_member_id=draw(st.none() | ids("referrer")),
        )
        later = at + timedelta(seconds=draw(st.integers(0, 90 * 86400)))
        outcome = draw(st.sampled_from(["pending", "converted", "cancelled"]))
        if outcome == "converted":
            return referral.convert(member_id=draw(ids("member")), at=later)
        if outcome == "cancelled":
            return referral.cancel(at=later)
        return referral

    return build()


def _just(value: T | st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    return value if isinstance(value, st.SearchStrategy) else st.just(value)


def _id_or(value: str | None, prefix: str) -> st.SearchStrategy[str]:
    return ids(prefix) if value is None else st.just(value)


@attrs.frozen
class Dataset:
    """A coherent set of objects (every reference resolves) for store and KPI tests."""

    practices: tuple[Practice, ...]
    staff_users: tuple[StaffUser, ...]
    membership_plans: tuple[MembershipPlan, ...]
    campaigns: tuple[Campaign, ...]
    members: tuple[Member, ...]
    payment_plans: tuple[PaymentPlan, ...]
    referrals: tuple[Referral, ...]
    payments: tuple[Payment, ...]

    def objects(self) -> tuple[object, ...]:
        """Every object, in dependency order (what a store's ``load`` accepts)."""
        return tuple(obj for table in TABLES for obj in getattr(self, table))


_DATASET_START = datetime(2026, 1, 1, tzinfo=UTC)


def datasets(
    *,
    max_practices: int = 2,
    max_members: int = 10,
    max_payment_plans: int = 5,
    max_payments: int = 20,
    span_days: int = 120,
    start: datetime = _DATASET_START,
    timezones: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[Dataset]:
    """Whole practices: staff, plans, campaigns, members with histories, payment plans
    (with a ledger entry per instalment attempt), member charges and refunds that
    never exceed what was collected, and referrals, all with unique ids.

    Enrolments and first events fall within ``span_days`` after ``start``.
    """
    zones = timezones if timezones is not None else st.sampled_from(TIMEZONES)
    window = instants(start, start + timedelta(days=span_days))

    @st.composite
    def build(draw: st.DrawFn) -> Dataset:
        out: dict[str, list[Any]] = {k: [] for k in attrs.fields_dict(Dataset)}
        for pn in range(draw(st.integers(1, max_practices))):
            pid = f"p{pn}"
            currency = draw(st.sampled_from(["AUD", "USD", "JPY"]))
            out["practices"].append(Practice(pid, f"Practice {pn}", draw(zones), currency))
            staff = [
                StaffUser(f"{pid}-s{i}", pid, f"Staff {i}") for i in range(draw(st.integers(0, 2)))
            ]
            plans = [
                attrs.evolve(draw(membership_plans(pid, currency)), id=f"{pid}-plan{i}")
                for i in range(draw(st.integers(1, 2)))
            ]
            campaigns_ = [
                attrs.evolve(draw(campaigns(pid)), id=f"{pid}-c{i}")
                for i in range(draw(st.integers(0, 2)))
            ]
            optional_staff = _optional_id(staff)
            optional_campaign = _optional_id(campaigns_)
            members_ = [
                attrs.evolve(
                    draw(members(pid, draw(st.sampled_from([p.id for p in plans])), start=window)),
                    id=f"{pid}-m{i}",
                    campaign_id=draw(optional_campaign),
                    staff_user_id=draw(optional_staff),
                )
                for i in range(draw(st.integers(0, max_members)))
            ]
            optional_member = _optional_id(members_)
            plans_ = [
                _retimed_plan(
                    draw(payment_plans(pid, currency, max_events=12)),
                    id=f"{pid}-pp{i}",
                    member_id=draw(optional_member),
                    offset=draw(window) - _EPOCH,
                )
                for i in range(draw(st.integers(0, max_payment_plans)))
            ]
            out["staff_users"] += staff
            out["membership_plans"] += plans
            out["campaigns"] += campaigns_
            out["members"] += members_
            out["payment_plans"] += plans_
            out["referrals"] += draw(_referrals(pid, members_, staff, campaigns_, window))
            out["payments"] += _plan_ledger(plans_)
            out["payments"] += draw(_member_ledger(pid, currency, members_, window, max_payments))
        return Dataset(**{k: tuple(v) for k, v in out.items()})

    return build()


def _retimed_plan(
    plan: PaymentPlan, *, id: str, member_id: str | None, offset: timedelta
) -> PaymentPlan:
    """``plan`` renamed, attached to ``member_id`` and with every instant moved by ``offset``."""
    return attrs.evolve(
        plan,
        id=id,
        member_id=member_id,
        history=tuple(attrs.evolve(c, at=c.at + offset) for c in plan.history),
        attempts=tuple(attrs.evolve(a, at=a.at + offset) for a in plan.attempts),
        archived_at=None if plan.archived_at is None else plan.archived_at + offset,
    )


def _plan_ledger(plans: Iterable[PaymentPlan]) -> list[Payment]:
    """One ledger entry per instalment attempt, same time, amount and outcome."""
    return [
        Payment(
            id=f"{plan.id}-a{k}",
            practice_id=plan.practice_id,
            amount=attempt.amount,
            kind=PaymentKind.CHARGE,
            outcome=PaymentOutcome.SUCCEEDED if attempt.succeeded else PaymentOutcome.FAILED,
            at=attempt.at,
            payment_plan_id=plan.id,
        )
        for plan in plans
        for k, attempt in enumerate(plan.attempts)
    ]


def _member_ledger(
    practice_id: str,
    currency: str,
    members_: list[Member],
    window: st.SearchStrategy[datetime],
    max_payments: int,
) -> st.SearchStrategy[list[Payment]]:
    """Charges (succeeded or failed) and refunds capped by the net collected so far."""

    @st.composite
    def build(draw: st.DrawFn) -> list[Payment]:
        if not members_:
            return []
        events = sorted(
            (
                draw(window),
                draw(st.sampled_from([m.id for m in members_])),
                draw(st.sampled_from(["charge", "charge", "failed", "refund"])),
                draw(st.integers(1, 10**5)),
            )
            for _ in range(draw(st.integers(0, max_payments)))
        )
        net: dict[str, int] = {}
        ledger = []
        for n, (at, member_id, what, minor) in enumerate(events):
            if what == "refund":
                minor = min(minor, net.get(member_id, 0))
                if minor == 0:
                    continue
            kind = PaymentKind.REFUND if what == "refund" else PaymentKind.CHARGE
            outcome = PaymentOutcome.FAILED if what == "failed" else PaymentOutcome.SUCCEEDED
            payment = Payment(
                id=f"{practice_id}-pay{n}",
                practice_id=practice_id,
                amount=Money.from_minor(minor, currency),
                kind=kind,
                outcome=outcome,
                at=at,
                member_id=member_id,
            )
            net[member_id] = net.get(member_id, 0) + payment.signed.minor
            ledger.append(payment)
        return ledger

    return build()


def _optional_id(objects: Sequence[Any]) -> st.SearchStrategy[str | None]:
    """``None`` or the id of one of ``objects``."""
    if not objects:
        return st.none()
    return st.none() | st.sampled_from([o.id for o in objects])


def _referrals(
    practice_id: str,
    members_: list[Member],
    staff: list[StaffUser],
    campaigns_: list[Campaign],
    window: st.SearchStrategy[datetime],
) -> st.SearchStrategy[list[Referral]]:
    @st.composite
    def build(draw: st.DrawFn) -> list[Referral]:
        result = []
        for i in range(draw(st.integers(0, 4))):
            at = draw(window)
            referrer = draw(st.none() | st.sampled_from(members_)) if members_ else None
            referral = Referral.open(
                id=f"{practice_id}-r{i}",
                practice_id=practice_id,
                account_holder=draw(patients()),
                start_date=at.date(),
                at=at,
                campaign_id=draw(_optional_id(campaigns_)),
                staff_user_id=draw(_optional_id(staff)),
                referring_member_id=None if referrer is None else referrer.id,
            )
            others = [m for m in members_ if referrer is None or m.id != referrer.id]
            outcome = draw(st.sampled_from(["pending", "converted", "cancelled"]))
            later = at + timedelta(seconds=draw(st.integers(0, 30 * 86400)))
            if outcome == "converted" and others:
                referral = referral.convert(member_id=draw(st.sampled_from(others)).id, at=later)
            elif outcome == "cancelled":
                referral = referral.cancel(at=later)
            result.append(referral)
        return result

    return build()


# -- queries over a dataset ---------------------------------------------------------------


def _subset(values: Iterable[T]) -> st.SearchStrategy[frozenset[T] | None]:
    """``None`` (no filter) or a subset of ``values``, possibly empty."""
    pool = sorted(set(values), key=repr)
    subsets = st.frozensets(st.sampled_from(pool)) if pool else st.just(frozenset())
    return st.none() | subsets


def boundaries(dataset: Dataset) -> st.SearchStrategy[datetime]:
    """Instants around the dataset's events, including exactly on them."""
    times = sorted(
        {c.at for m in dataset.members for c in m.history}
        | {p.at for p in dataset.payments}
        | {c.at for p in dataset.payment_plans for c in p.history}
    )
    near = st.sampled_from(times) if times else st.nothing()
    return near | instants(
        _DATASET_START - timedelta(days=30), _DATASET_START + timedelta(days=400)
    )


def _ranges(dataset: Dataset) -> st.SearchStrategy[DateRange]:
    zones = sorted({p.timezone for p in dataset.practices}) or ["UTC"]

    @st.composite
    def build(draw: st.DrawFn) -> DateRange:
        a, b = sorted((draw(boundaries(dataset)), draw(boundaries(dataset))))
        return DateRange(a, b, draw(st.sampled_from(zones)))

    return build()


def scope_queries(dataset: Dataset, objects: Sequence[Any]) -> st.SearchStrategy[Any]:
    """:class:`ScopeQuery` values over ``objects``' practices and ids."""
    from smilepass_core.queries import ScopeQuery

    return st.builds(
        ScopeQuery,
        practices=_subset(p.id for p in dataset.practices),
        ids=_subset(o.id for o in objects),
    )


def member_queries(dataset: Dataset) -> st.SearchStrategy[Any]:
    """:class:`MemberQuery` values whose ids, dates and instants come from ``dataset``."""
    from smilepass_core.queries import MemberQuery

    ms = dataset.members

    @st.composite
    def build(draw: st.DrawFn) -> MemberQuery:
        practices = draw(_subset(p.id for p in dataset.practices))
        temporal = draw(st.sampled_from(["none", "active", "retained", "ever", "first", "many"]))
        fields: dict[str, Any] = {"practices": practices}
        if temporal in ("active", "retained", "many"):
            fields["active_at"] = draw(boundaries(dataset))
        if temporal in ("retained", "many"):
            fields["retained_until"] = draw(boundaries(dataset))
        if temporal in ("ever", "many"):
            fields["ever_active_before"] = draw(boundaries(dataset))
        if temporal in ("first", "many"):
            fields["first_activated_in"] = draw(_ranges(dataset))
        if temporal in ("none", "many"):
            fields.update(
                plans=draw(_subset(m.plan_id for m in ms)),
                statuses=draw(_subset(MembershipStatus)),
                campaigns=draw(_subset(m.campaign_id for m in ms if m.campaign_id)),
                staff_users=draw(_subset(m.staff_user_id for m in ms if m.staff_user_id)),
                ids=draw(_subset(m.id for m in ms)),
                name_contains=draw(st.none() | st.sampled_from(["ada", "GRACE", "x", ""])),
            )
            if len(ms) > 0 and draw(st.booleans()):
                days = sorted(m.start_date for m in ms)
                fields["start_from"] = draw(st.sampled_from(days))
                fields["start_until"] = draw(
                    st.sampled_from([d for d in days if d >= fields["start_from"]])
                )
            if draw(st.booleans()):
                fields.update(
                    overdue=draw(st.booleans()),
                    as_of=draw(boundaries(dataset)),
                    grace_days=draw(st.integers(0, 10)),
                )
        return MemberQuery(**fields)

    return build()


def payment_plan_queries(dataset: Dataset) -> st.SearchStrategy[Any]:
    """:class:`PaymentPlanQuery` values over ``dataset``."""
    from smilepass_core.queries import PaymentPlanQuery

    plans = dataset.payment_plans

    @st.composite
    def build(draw: st.DrawFn) -> PaymentPlanQuery:
        fields: dict[str, Any] = {"practices": draw(_subset(p.id for p in dataset.practices))}
        if draw(st.booleans()):
            fields["committed_in"] = draw(_ranges(dataset))
        else:
            fields.update(
                statuses=draw(_subset(PaymentPlanStatus)),
                payment_types=draw(_subset(PaymentType)),
                archived=draw(st.none() | st.booleans()),
                members=draw(_subset(p.member_id for p in plans if p.member_id)),
                ids=draw(_subset(p.id for p in plans)),
                name_contains=draw(st.none() | st.sampled_from(["ada", "Hopper", "zz"])),
            )
            if draw(st.booleans()):
                fields.update(overdue=draw(st.booleans()), as_of=draw(boundaries(dataset)))
        return PaymentPlanQuery(**fields)

    return build()


def payment_queries(dataset: Dataset) -> st.SearchStrategy[Any]:
    """:class:`PaymentQuery` values over ``dataset``."""
    from smilepass_core.queries import PaymentQuery

    return st.builds(
        PaymentQuery,
        practices=_subset(p.id for p in dataset.practices),
        sources=_subset(p.source for p in dataset.payments),
        kinds=_subset(PaymentKind),
        outcomes=_subset(PaymentOutcome),
        time_range=st.none() | _ranges(dataset),
        ids=st.none() | _subset(p.id for p in dataset.payments),
    ) | st.builds(
        PaymentQuery,
        practices=_subset(p.id for p in dataset.practices),
        time_range=st.none() | _ranges(dataset),
        kinds=_subset(PaymentKind),
        outcomes=_subset(PaymentOutcome),
    )


def referral_queries(dataset: Dataset) -> st.SearchStrategy[Any]:
    """:class:`ReferralQuery` values over ``dataset``."""
    from smilepass_core.queries import ReferralQuery

    rs = dataset.referrals
    return st.builds(
        ReferralQuery,
        practices=_subset(p.id for p in dataset.practices),
        campaigns=_subset(r.campaign_id for r in rs if r.campaign_id),
        staff_users=_subset(r.staff_user_id for r in rs if r.staff_user_id),
        statuses=_subset(ReferralStatus),
        converted_in=st.none() | _ranges(dataset),
        referring_members=_subset(r.referring_member_id for r in rs if r.referring_member_id),
        ids=_subset(r.id for r in rs),
    )


def orders(columns: Iterable[str]) -> st.SearchStrategy[Any]:
    """:class:`Order` values over ``columns``, with or without a page."""
    from smilepass_core.queries import Order, Page, SortKey

    names = sorted(columns)
    keys = st.lists(st.builds(SortKey, st.sampled_from(names), st.booleans()), max_size=3)
    pages = st.builds(Page, st.none() | st.integers(0, 8), st.integers(0, 6))
    return st.builds(Order, keys, pages)
