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

import functools
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, TypeVar

import attrs
from hypothesis import strategies as st

from smilepass_core.domain import (
    CAMPAIGN_LIFECYCLE,
    MEMBERSHIP_LIFECYCLE,
    PAYMENT_PLAN_LIFECYCLE,
    BillingCycle,
    Campaign,
    CampaignStatus,
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
    PaymentPlanTemplate,
    PaymentType,
    Practice,
    Referral,
    ReferralStatus,
    StaffUser,
    Status,
    check_codes,
    offer_from_template,
)
from smilepass_core.domain.billing import price_due_at
from smilepass_core.domain.discounts import AppliedDiscount, Discount, DiscountBasis
from smilepass_core.errors import RuleViolation
from smilepass_core.money import CURRENCIES, Money
from smilepass_core.periods import DateRange, local_day
from smilepass_core.queries import (
    MemberQuery,
    PaymentPlanQuery,
    PaymentQuery,
    ReferralQuery,
    ScopeQuery,
)
from smilepass_core.repositories import STORE_TYPES

__all__ = [
    "DATASET_START",
    "TIMEZONES",
    "Dataset",
    "boundaries",
    "campaigns",
    "currencies",
    "datasets",
    "date_ranges",
    "discounts",
    "ids",
    "instants",
    "member_queries",
    "members",
    "membership_plans",
    "money",
    "orders",
    "patients",
    "payment_plan_queries",
    "payment_plan_templates",
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

# Strategies built once: one built inside a draw is validated again at every draw, which
# cost a third of the time a dataset took to generate.
_AUD_USD = st.sampled_from(("AUD", "USD"))
_REPRICE_DAYS = st.lists(st.dates(_EPOCH.date(), _HORIZON.date()), max_size=2, unique=True)
_SHARES = st.none() | st.decimals(Decimal("0.01"), 100, places=2)
_CAMPAIGN_LENGTHS = st.none() | st.integers(0, 365 * 86400)


@functools.cache
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
    if isinstance(currency, st.SearchStrategy):  # a strategy: built for it, not kept
        return st.builds(Money.from_minor, st.integers(min_minor, max_minor), currency)
    return _money(currency, min_minor, max_minor)


@functools.cache
def _money(currency: str | None, min_minor: int, max_minor: int) -> st.SearchStrategy[Money]:
    """:func:`money` for a currency code or none, built once per arguments."""
    codes = currencies() if currency is None else st.just(currency)
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
    return _instants(min_value, max_value, min_value.tzinfo)


@functools.cache
def _instants(min_value: datetime, max_value: datetime, zone: Any) -> st.SearchStrategy[datetime]:
    """:func:`instants`, built once per arguments: ``zone`` (``min_value``'s, which the
    instants keep) tells apart equal instants in two zones."""
    span = int((max_value - min_value).total_seconds())
    return st.integers(0, span).map(lambda s: min_value + timedelta(seconds=s))


@st.composite
def date_ranges(draw: st.DrawFn, timezone: str | None = None, *, max_days: int = 400) -> DateRange:
    """Whole-day ranges (possibly empty) or arbitrary instant ranges in a practice zone."""
    zones = timezones() if timezone is None else st.just(timezone)
    tz = draw(zones)
    start = draw(instants())
    if draw(st.booleans()):
        first = start.date()
        return DateRange.custom(
            first, first + timedelta(days=draw(st.integers(0, max_days))), timezone=tz
        )
    end = start + timedelta(seconds=draw(st.integers(0, max_days * 86400)))
    return DateRange(start, end, tz)


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


@functools.cache
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
    """Membership plans with a positive price and any billing cycle, some repriced up to
    twice between 2020 and 2030 (:meth:`~smilepass_core.domain.MembershipPlan.reprice`)."""
    return _membership_plan(practice_id, currency)


@st.composite
def _membership_plan(
    draw: st.DrawFn, practice_id: str | None, currency: str | None
) -> MembershipPlan:
    code = draw(_just(currency) if currency else _AUD_USD)
    plan = MembershipPlan(
        id=draw(ids("plan")),
        practice_id=draw(_id_or(practice_id, "practice")),
        name=draw(st.sampled_from(["Essential", "Family", "Premium"])),
        price=draw(positive_money(code)),
        billing_cycle=draw(st.sampled_from(BillingCycle)),
    )
    days = draw(_REPRICE_DAYS)
    for day in sorted(days):
        plan = plan.reprice(draw(positive_money(code)), on=day)
    return plan


@st.composite
def discounts(
    draw: st.DrawFn,
    practice_id: str | None = None,
    currency: str | None = None,
    plan_ids: Sequence[str] = (),
) -> Discount:
    """A practice's discount: a percentage (0.01 to 100, up to two decimals) or a fixed
    amount, of any basis, on every plan or some of ``plan_ids``, for some cycles or for
    ever, with or without a limit."""
    code = draw(_just(currency) if currency else _AUD_USD)
    share = draw(_SHARES)
    covered = draw(_some_plans(tuple(plan_ids))) if plan_ids else None
    return Discount(
        id=draw(ids("discount")),
        practice_id=draw(_id_or(practice_id, "practice")),
        name=draw(st.sampled_from(["Family", "Spring promo", "Referral reward"])),
        percent=share,
        amount=None if share is not None else draw(money(code, min_minor=1, max_minor=10**5)),
        basis=draw(st.sampled_from(DiscountBasis)),
        plans=covered,
        cycles=draw(st.none() | st.integers(1, 6)),
        limit=draw(st.none() | st.integers(1, 4)),
    )


@functools.cache
def status_walks(
    lifecycle: Lifecycle[S], start: S, *, max_steps: int = 8
) -> st.SearchStrategy[list[S]]:
    """Random legal walks through ``lifecycle``'s table from ``start`` (``start`` excluded)."""
    return _status_walk(lifecycle, start, max_steps)


@st.composite
def _status_walk(draw: st.DrawFn, lifecycle: Lifecycle[S], start: S, max_steps: int) -> list[S]:
    walk: list[S] = []
    current = start
    for _ in range(draw(st.integers(0, max_steps))):
        current = draw(_next_status(lifecycle, current))
        if current is None:
            break
        walk.append(current)
    return walk


@functools.cache
def _next_status(lifecycle: Lifecycle[S], current: S) -> st.SearchStrategy[Any]:
    """The statuses ``current`` may move to (``None`` if none); terminal ones less often."""
    targets = sorted(lifecycle.allowed(current), key=lambda s: s.value)
    if not targets:
        return st.none()
    # Terminal statuses absorb the rest of the walk: reach them less often.
    return st.sampled_from([t for t in targets for _ in range(1 if t in lifecycle.terminal else 4)])


@functools.cache
def _gaps(max_steps: int) -> st.SearchStrategy[list[timedelta]]:
    """Non-negative time steps; zero steps test same-instant changes."""
    return st.lists(
        st.integers(0, 90 * 86400).map(lambda s: timedelta(seconds=s)),
        min_size=max_steps,
        max_size=max_steps,
    )


@st.composite
def members(
    draw: st.DrawFn,
    practice_id: str | None = None,
    plan_id: str | None = None,
    *,
    max_changes: int = 8,
    start: st.SearchStrategy[datetime] | None = None,
) -> Member:
    """Members with a random legal status history built through their methods."""
    at = draw(start if start is not None else instants(max_value=datetime(2029, 1, 1, tzinfo=UTC)))
    member = Member.enrol(
        id=draw(ids("member")),
        practice_id=draw(_id_or(practice_id, "practice")),
        plan_id=draw(_id_or(plan_id, "plan")),
        at=at,
        start_date=at.date(),
        **draw(_signed_up()),
    )
    walk = draw(status_walks(MEMBERSHIP_LIFECYCLE, MembershipStatus.PENDING, max_steps=max_changes))
    for status, gap in zip(walk, draw(_gaps(len(walk))), strict=True):
        at += gap
        member = member.transition(status, at=at, reason="generated")
    return member


@st.composite
def payment_plans(
    draw: st.DrawFn,
    practice_id: str | None = None,
    currency: str | None = None,
    *,
    max_events: int = 30,
) -> PaymentPlan:
    """Payment plans of every payment type, driven through random payments,
    failures, activations, cancellations and archiving via their methods."""
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
    return draw(_driven(plan, at, max_events))


@st.composite
def _driven(draw: st.DrawFn, plan: PaymentPlan, at: datetime, max_events: int) -> PaymentPlan:
    """``plan`` after up to ``max_events`` plausible events from ``at`` on."""
    for _ in range(draw(st.integers(0, max_events))):
        at += timedelta(seconds=draw(st.integers(0, 40 * 86400)))
        moved = _plan_move(plan, at, draw(st.integers(0, 99)))
        if moved is None:
            break
        plan = moved
    return plan


@st.composite
def payment_plan_templates(
    draw: st.DrawFn, practice_id: str | None = None, currency: str | None = None
) -> PaymentPlanTemplate:
    """Templates over a range of totals, offering one to four lengths; some with a
    deposit, a deferred start, for members only, or (rarely) retired."""
    code = currency or draw(st.sampled_from(["AUD", "USD", "JPY", "KWD"]))
    low = draw(st.integers(100, 10**6))
    deposit = draw(st.none() | st.integers(1, low - 1))
    return PaymentPlanTemplate(
        id=draw(ids("template")),
        practice_id=draw(_id_or(practice_id, "practice")),
        name=draw(st.sampled_from(["Ortho", "Implants", "Whitening", "Crowns"])),
        min_total=Money.from_minor(low, code),
        max_total=Money.from_minor(low + draw(st.integers(0, 10**7)), code),
        instalment_counts=tuple(sorted(draw(st.sets(st.integers(1, 36), min_size=1, max_size=4)))),
        cycle=draw(st.sampled_from(BillingCycle)),
        max_deferral_days=draw(st.integers(0, 90)),
        members_only=draw(st.booleans()),
        deposit=None if deposit is None else Money.from_minor(deposit, code),
        retired_at=draw(_rarely(instants())),
    )


@st.composite
def _template_plan(
    draw: st.DrawFn,
    template: PaymentPlanTemplate,
    timezone: str,
    members_: Sequence[Member],
    at: datetime,
    max_events: int,
) -> PaymentPlan | None:
    """A plan offered from ``template`` at ``at`` (to an Active member's account holder
    when it is for members only, else now and then), then driven through random events;
    ``None`` when the template offers nothing then (retired, no Active member, no length
    the total can pay)."""
    active = [m for m in members_ if m.status_at(at) is MembershipStatus.ACTIVE]
    if not template.offered_at(at) or (template.members_only and not active):
        return None
    member = (
        draw(st.sampled_from(active))
        if active and (template.members_only or draw(st.booleans()))
        else None
    )
    low, high = template.min_total.minor, template.max_total.minor
    total = Money.from_minor(draw(st.integers(low, high)), template.currency)
    after = total.minor - (template.deposit.minor if template.deposit is not None else 0)
    lengths = [n for n in template.instalment_counts if n <= after]
    if not lengths:
        return None
    deferral = timedelta(days=draw(st.integers(0, template.max_deferral_days)))
    plan = offer_from_template(
        template,
        id="offered",
        patient=member.account_holder if member is not None else draw(patients()),
        total=total,
        instalments=draw(st.sampled_from(lengths)),
        first_due=local_day(at, timezone) + deferral,
        at=at,
        timezone=timezone,
        member=member,
    )
    return draw(_driven(plan, at, max_events))


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


@st.composite
def payments(
    draw: st.DrawFn,
    practice_id: str | None = None,
    currency: str | None = None,
    *,
    kinds: st.SearchStrategy[PaymentKind] | None = None,
) -> Payment:
    """Single ledger entries (a charge or refund, succeeded or failed) for a member or a plan."""
    for_member = draw(st.booleans())
    return Payment(
        id=draw(ids("payment")),
        practice_id=draw(_id_or(practice_id, "practice")),
        amount=draw(positive_money(currency or _AUD_USD)),
        kind=draw(kinds if kinds is not None else st.sampled_from(PaymentKind)),
        outcome=draw(st.sampled_from(PaymentOutcome)),
        at=draw(instants()),
        member_id=draw(ids("member")) if for_member else None,
        payment_plan_id=None if for_member else draw(ids("plan")),
    )


#: The promo codes generated campaigns draw from (a few differ only in case).
_CODES: Final = ("SPRING25", "FRIEND", "SCHOOL10", "friend-fb", "Spring25-IG")


@functools.cache
def _other_codes(code: str) -> st.SearchStrategy[set[str]]:
    """Up to two more codes for a campaign whose code is ``code``, none equal to another
    ignoring case."""
    others = [c for c in _CODES if c.casefold() != code.casefold()]
    return st.sets(st.sampled_from(others), max_size=2).filter(_distinct_codes)


@functools.cache
def _some_plans(plan_ids: tuple[str, ...]) -> st.SearchStrategy[set[str] | None]:
    """``None`` (every plan) or a non-empty set of ``plan_ids``."""
    return st.none() | st.sets(st.sampled_from(plan_ids), min_size=1)


@functools.cache
def _some_discount(
    practice_id: str, currency: str | None, plan_ids: tuple[str, ...]
) -> st.SearchStrategy[Discount | None]:
    """``None`` or one of :func:`discounts`."""
    return st.none() | discounts(practice_id, currency, plan_ids)


@st.composite
def campaigns(
    draw: st.DrawFn,
    practice_id: str | None = None,
    currency: str | None = None,
    plan_ids: Sequence[str] = (),
) -> Campaign:
    """Campaigns with an open or closed active window: half read as that window alone,
    half with a random legal status history from Draft (built through their methods).
    Some have more promo codes, apply to some of ``plan_ids`` only, or carry a discount
    (:func:`discounts`) for who signs up with their code."""
    start = draw(instants())
    length = draw(_CAMPAIGN_LENGTHS)
    practice = draw(_id_or(practice_id, "practice"))
    code = draw(st.sampled_from(_CODES))
    campaign = Campaign(
        id=draw(ids("campaign")),
        practice_id=practice,
        name=draw(st.sampled_from(["Spring smiles", "Refer a friend", "Back to school"])),
        promo_code=code,
        active_from=start,
        active_until=None if length is None else start + timedelta(seconds=length),
        other_codes=draw(_other_codes(code)),
        plans=draw(_some_plans(tuple(plan_ids))) if plan_ids else None,
        discount=draw(_some_discount(practice, currency, tuple(plan_ids))),
    )
    if not draw(st.booleans()):
        return campaign
    at = start - timedelta(days=draw(st.integers(0, 30)))
    campaign = attrs.evolve(
        campaign, history=CAMPAIGN_LIFECYCLE.start(CampaignStatus.DRAFT, at, "drafted")
    )
    walk = draw(status_walks(CAMPAIGN_LIFECYCLE, CampaignStatus.DRAFT, max_steps=5))
    for status, gap in zip(walk, draw(_gaps(len(walk))), strict=True):
        at += gap
        campaign = campaign.transition(status, at=at, reason="generated")
    return campaign


@st.composite
def referrals(draw: st.DrawFn, practice_id: str | None = None) -> Referral:
    """Referrals left Pending, Converted into a member, or Cancelled."""
    at = draw(instants(max_value=datetime(2029, 1, 1, tzinfo=UTC)))
    referral = Referral.open(
        id=draw(ids("referral")),
        practice_id=draw(_id_or(practice_id, "practice")),
        at=at,
        referring_member_id=draw(st.none() | ids("referrer")),
        start_date=at.date(),
        **draw(_signed_up()),
    )
    later = at + timedelta(seconds=draw(st.integers(0, 90 * 86400)))
    outcome = draw(st.sampled_from(["pending", "converted", "cancelled"]))
    if outcome == "converted":
        return referral.convert(member_id=draw(ids("member")), at=later)
    if outcome == "cancelled":
        return referral.cancel(at=later)
    return referral


@functools.cache
def _signed_up() -> st.SearchStrategy[dict[str, Any]]:
    """What a member and a referral share: the family and the attribution."""
    return st.fixed_dictionaries(
        {
            "account_holder": patients(),
            "dependents": st.lists(patients(), max_size=3).map(tuple),
            "campaign_id": st.none() | ids("campaign"),
            "staff_user_id": st.none() | ids("staff"),
        }
    )


@functools.cache
def _just(value: T | st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    return value if isinstance(value, st.SearchStrategy) else st.just(value)


@functools.cache
def _id_or(value: str | None, prefix: str) -> st.SearchStrategy[str]:
    return ids(prefix) if value is None else st.just(value)


@attrs.frozen(repr=False)
class Dataset:
    """A coherent set of objects (every reference resolves) for store and KPI tests.

    Its ``repr`` is a short summary (the practices, then how many objects of each
    kind): Hypothesis prints it for every failing example, and a whole dataset is
    tens of kilobytes.
    """

    practices: tuple[Practice, ...]
    staff_users: tuple[StaffUser, ...]
    membership_plans: tuple[MembershipPlan, ...]
    campaigns: tuple[Campaign, ...]
    payment_plan_templates: tuple[PaymentPlanTemplate, ...]
    members: tuple[Member, ...]
    payment_plans: tuple[PaymentPlan, ...]
    referrals: tuple[Referral, ...]
    payments: tuple[Payment, ...]

    def objects(self) -> tuple[object, ...]:
        """Every object, in dependency order (what a store's ``load`` accepts)."""
        return tuple(obj for table in STORE_TYPES for obj in getattr(self, table))

    def __repr__(self) -> str:
        practices = ", ".join(f"{p.id} {p.timezone} {p.currency}" for p in self.practices)
        counts = ", ".join(
            f"{len(getattr(self, table))} {table}" for table in STORE_TYPES if table != "practices"
        )
        return f"<Dataset: practices {practices}; {counts}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """The short summary in Hypothesis' reports too (its printer spells attrs out)."""
        printer.text(repr(self))


#: Where :func:`datasets` start by default.
DATASET_START = datetime(2026, 1, 1, tzinfo=UTC)


@st.composite
def datasets(
    draw: st.DrawFn,
    *,
    max_practices: int = 2,
    max_members: int = 10,
    max_payment_plans: int = 5,
    max_payments: int = 20,
    span_days: int = 120,
    start: datetime = DATASET_START,
    timezones: st.SearchStrategy[str] | None = None,
) -> Dataset:
    """Whole practices: staff, plans, campaigns, members with histories, payment plans
    (with a ledger entry per instalment attempt), member charges and refunds that
    never exceed what was collected, and referrals, all with unique ids.

    Enrolments and first events fall within ``span_days`` after ``start``.
    """
    zones = timezones if timezones is not None else st.sampled_from(TIMEZONES)
    window = instants(start, start + timedelta(days=span_days))
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
        if draw(st.booleans()):  # often one cycle, so moves within a cycle are common too
            plans = [attrs.evolve(p, billing_cycle=plans[0].billing_cycle) for p in plans]
        # Lists, not counted loops: the shrinker deletes whole members, plans and payments.
        plan_ids = [p.id for p in plans]
        campaigns_ = _apart(
            [
                _campaign_named(draw(campaigns(pid, currency, plan_ids)), f"{pid}-c{i}")
                for i in range(draw(st.integers(0, 2)))
            ]
        )
        offers = [
            attrs.evolve(draw(discounts(pid, currency, plan_ids)), id=f"{pid}-d{i}")
            for i in range(draw(st.integers(0, 2)))
        ]
        grant = st.builds(
            AppliedDiscount, st.sampled_from(offers), st.integers(0, 3), st.integers(0, 3)
        )
        granted = (
            st.lists(grant, max_size=2, unique_by=lambda g: g.discount.id)
            if offers
            else st.just([])
        )
        member_parts = st.tuples(
            members(pid, plans[0].id, start=window),
            st.sampled_from(plan_ids),
            _optional_id(campaigns_),
            _optional_id(staff),
            _plan_moves(plan_ids),
            granted,
            _dependent_moves(),
        )
        active = {c.id: c for c in campaigns_}
        members_ = [
            _with_dependent_changes(
                _with_plan_changes(
                    _joined(
                        attrs.evolve(
                            member,
                            id=f"{pid}-m{i}",
                            plan_id=plan,
                            staff_user_id=s,
                            discounts=grants,
                        ),
                        active.get(c) if c else None,
                    ),
                    moves,
                ),
                kin,
            )
            for i, (member, plan, c, s, moves, grants, kin) in enumerate(
                draw(st.lists(member_parts, max_size=max_members))
            )
        ]
        templates = [
            attrs.evolve(draw(payment_plan_templates(pid, currency)), id=f"{pid}-t{i}")
            for i in range(draw(st.integers(0, 2)))
        ]
        zone = out["practices"][-1].timezone
        plan_parts = st.tuples(
            payment_plans(pid, currency, max_events=12),
            _optional_id(members_),
            window,
            st.none() | st.sampled_from(templates) if templates else st.none(),
        )
        plans_ = [
            attrs.evolve(offered, id=f"{pid}-pp{i}")
            if template is not None
            and (offered := draw(_template_plan(template, zone, members_, at, 12))) is not None
            else _retimed_plan(plan, id=f"{pid}-pp{i}", member_id=member_id, offset=at - _EPOCH)
            for i, (plan, member_id, at, template) in enumerate(
                draw(st.lists(plan_parts, max_size=max_payment_plans))
            )
        ]
        out["payment_plan_templates"] += templates
        out["staff_users"] += staff
        out["membership_plans"] += plans
        out["campaigns"] += campaigns_
        out["members"] += members_
        out["payment_plans"] += plans_
        referral = _practice_referral(pid, members_, staff, campaigns_, window)
        out["referrals"] += [
            attrs.evolve(r, id=f"{pid}-r{i}")
            for i, r in enumerate(draw(st.lists(referral, max_size=4)))
        ]
        out["payments"] += _plan_ledger(plans_)
        catalogue = {p.id: p for p in plans}
        practice = out["practices"][-1]
        out["payments"] += draw(_member_ledger(practice, catalogue, members_, window, max_payments))
    return Dataset(**{k: tuple(v) for k, v in out.items()})


def _campaign_named(campaign: Campaign, id: str) -> Campaign:
    """``campaign`` renamed ``id``, its discount ``<id>-d``."""
    terms = None if campaign.discount is None else attrs.evolve(campaign.discount, id=f"{id}-d")
    return attrs.evolve(campaign, id=id, discount=terms)


def _apart(campaigns_: list[Campaign]) -> list[Campaign]:
    """``campaigns_``, each whose codes an earlier one shares while both are Active given
    codes of its own (suffixed by its id): a store keeps no two such campaigns."""
    kept: list[Campaign] = []
    for campaign in campaigns_:
        try:
            check_codes(campaign, kept)
        except RuleViolation:
            suffix = f"-{campaign.id}"
            campaign = attrs.evolve(
                campaign,
                promo_code=campaign.promo_code + suffix,
                other_codes={code + suffix for code in campaign.other_codes},
            )
        kept.append(campaign)
    return kept


def _joined(member: Member, campaign: Campaign | None) -> Member:
    """``member`` signed up through ``campaign`` when it took them (Active at the
    enrolment, applying to their plan), with its discount granted from the first billing
    date (as :meth:`Campaign.apply_code`, also for a member Cancelled since); else on no
    campaign."""
    if (
        campaign is None
        or not campaign.is_active_at(member.created_at)
        or not campaign.applies_to(member.plan_id)
    ):
        return attrs.evolve(member, campaign_id=None)
    grants = () if campaign.discount is None else (AppliedDiscount(campaign.discount, 1, 0),)
    return attrs.evolve(member, campaign_id=campaign.id, discounts=(*member.discounts, *grants))


def _distinct_codes(codes: set[str]) -> bool:
    """No two codes equal once case is ignored."""
    return len({c.casefold() for c in codes}) == len(codes)


def _plan_moves(plan_ids: list[str]) -> st.SearchStrategy[list[tuple[timedelta, str]]]:
    """Up to two plan changes (a gap after the one before, the plan moved to); none when
    the practice has one plan."""
    if len(plan_ids) < 2:
        return st.just([])
    gap = st.integers(0, 120 * 86400).map(lambda s: timedelta(seconds=s))
    return st.lists(st.tuples(gap, st.sampled_from(plan_ids)), max_size=2)


def _with_plan_changes(member: Member, moves: list[tuple[timedelta, str]]) -> Member:
    """``member`` moved through ``moves`` from its enrolment, to plans of any billing cycle
    (a move to the plan it is on, or once Cancelled, is skipped)."""
    at = member.history[0].at
    for gap, plan_id in moves:
        at += gap
        if plan_id != member.plan_id and member.status_at(at) is not MembershipStatus.CANCELLED:
            member = member.change_plan(plan_id, at=at, reason="generated")
    return member


@functools.cache
def _dependent_moves() -> st.SearchStrategy[list[tuple[timedelta, str]]]:
    """Up to two dependent changes or referral rewards: a gap after the one before, and
    what happens (``add`` a dependent, ``remove`` the first one, ``reward`` a referral)."""
    gap = st.integers(0, 120 * 86400).map(lambda s: timedelta(seconds=s))
    return st.lists(st.tuples(gap, st.sampled_from(["add", "remove", "reward"])), max_size=2)


def _with_dependent_changes(member: Member, moves: list[tuple[timedelta, str]]) -> Member:
    """``member`` with a dependent added or removed, or a referral credited, at each of
    ``moves`` from its enrolment (none once Cancelled; a removal without dependents adds
    one; no dependent change for a member listing one patient id twice)."""
    at = member.history[0].at
    ids = [d.id for d in member.dependents]
    for n, (gap, what) in enumerate(moves):
        at += gap
        if member.status_at(at) is MembershipStatus.CANCELLED:
            break
        if what == "reward":
            member = member.reward_referral(f"{member.id}-ref{n}", at=at)
        elif len(set(ids)) < len(ids):
            continue
        elif what == "add" or not member.dependents:
            kid = Patient(f"{member.id}-kid{n}", f"Kid {n}")
            member = member.add_dependent(kid, at=at, reason="generated")
        else:
            member = member.remove_dependent(member.dependents[0].id, at=at, reason="generated")
    return member


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


@st.composite
def _member_ledger(
    draw: st.DrawFn,
    practice: Practice,
    plans: Mapping[str, MembershipPlan],
    members_: list[Member],
    window: st.SearchStrategy[datetime],
    max_payments: int,
) -> list[Payment]:
    """Charges (succeeded or failed) of the price due (the newest billing date's) and
    refunds capped by the net collected so far."""
    practice_id, currency = practice.id, practice.currency
    if not members_:
        return []
    event = st.tuples(
        window,
        st.sampled_from([m.id for m in members_]),
        st.sampled_from(["charge", "charge", "failed", "refund"]),
        st.integers(1, 10**5),
        st.none() | st.integers(0, 30 * 86400),  # a charge refunded this many seconds later
    )
    events = []
    for at, member_id, what, minor, refund_after in draw(st.lists(event, max_size=max_payments)):
        events.append((at, member_id, what, minor))
        if what == "charge" and refund_after is not None:
            events.append((at + timedelta(seconds=refund_after), member_id, "refund", minor))
    events.sort()
    net: dict[str, int] = {}
    ledger: list[Payment] = []
    by_id = {m.id: m for m in members_}
    for n, (at, member_id, what, minor) in enumerate(events):
        member = by_id[member_id]
        cancelled = member.first_entered(MembershipStatus.CANCELLED)
        if what != "refund" and (
            at < member.created_at or (cancelled is not None and at > cancelled)
        ):
            continue  # a charge falls between the enrolment and the cancellation
        if what == "refund":
            paid = sorted(m for m, collected in net.items() if collected > 0)
            if net.get(member_id, 0) == 0 and paid:  # refund someone who has paid
                member_id = paid[minor % len(paid)]
            minor = min(minor, net.get(member_id, 0))
            if minor == 0:
                continue
        else:
            price = _charge_due(member, plans, at, practice.timezone)
            if price is None:
                continue
            minor = price
        kind = PaymentKind.REFUND if what == "refund" else PaymentKind.CHARGE
        outcome = PaymentOutcome.FAILED if what == "failed" else PaymentOutcome.SUCCEEDED
        payment = Payment(
            id=f"{practice_id}-pay{n:05d}",  # ids sort in the order made
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


def _charge_due(
    member: Member,
    plans: Mapping[str, MembershipPlan],
    at: datetime,
    timezone: str,
) -> int | None:
    """What a charge at ``at`` is for (minor units): the newest billing date's price due
    (never what the ledger says is owed, so the entries can be recorded in any order);
    ``None`` when that is zero (a discount of 100 %)."""
    price = price_due_at(member, plans[member.plan_id], at=at, timezone=timezone, plans=plans)
    return price.minor if price.is_positive() else None


def _optional_id(objects: Sequence[Any]) -> st.SearchStrategy[str | None]:
    """``None`` or the id of one of ``objects``."""
    return _none_or(tuple(o.id for o in objects))


@functools.cache
def _none_or(values: tuple[T, ...]) -> st.SearchStrategy[T | None]:
    """``None`` or one of ``values`` (``None`` only when there are none)."""
    return st.none() | st.sampled_from(values) if values else st.none()


@st.composite
def _practice_referral(
    draw: st.DrawFn,
    practice_id: str,
    members_: list[Member],
    staff: list[StaffUser],
    campaigns_: list[Campaign],
    window: st.SearchStrategy[datetime],
) -> Referral:
    """One referral of ``practice_id``, its id to be set by the caller."""
    at = draw(window)
    referrer = draw(st.none() | st.sampled_from(members_)) if members_ else None
    referral = Referral.open(
        id=f"{practice_id}-r",
        practice_id=practice_id,
        account_holder=draw(patients()),
        start_date=at.date(),
        at=at,
        campaign_id=draw(_optional_id([c for c in campaigns_ if c.is_active_at(at)])),
        staff_user_id=draw(_optional_id(staff)),
        referring_member_id=None if referrer is None else referrer.id,
    )
    others = [m for m in members_ if referrer is None or m.id != referrer.id]
    outcome = draw(st.sampled_from(["pending", "converted", "cancelled"]))
    later = at + timedelta(seconds=draw(st.integers(0, 30 * 86400)))
    if outcome == "converted" and others:
        return referral.convert(member_id=draw(st.sampled_from(others)).id, at=later)
    if outcome == "cancelled":
        return referral.cancel(at=later)
    return referral


# -- queries over a dataset ---------------------------------------------------------------


def _rarely(strategy: st.SearchStrategy[T]) -> st.SearchStrategy[T | None]:
    """``None`` three times in four, else ``strategy``: a query with every filter set
    almost always matches nothing, and then proves nothing."""
    return st.one_of(st.none(), st.none(), st.none(), strategy)


def _subset(values: Iterable[T]) -> st.SearchStrategy[frozenset[T] | None]:
    """``None`` (no filter, where examples shrink to), a non-empty subset of ``values``,
    or, less often, the empty set (a filter that matches nothing)."""
    pool = sorted(set(values), key=repr)
    if not pool:
        return st.none() | st.just(frozenset())
    some = st.frozensets(st.sampled_from(pool), min_size=1)
    return st.one_of(st.none(), some, st.none(), some, st.just(frozenset()))


def boundaries(dataset: Dataset) -> st.SearchStrategy[datetime]:
    """Instants around the dataset's events, including exactly on them."""
    known = _BOUNDARIES.get(id(dataset))
    if known is not None and known[0] is dataset:
        return known[1]
    times = sorted(
        {c.at for m in dataset.members for c in m.history}
        | {c.at for m in dataset.members for c in m.plan_changes}
        | {c.at for m in dataset.members for c in m.dependent_changes}
        | {r.at for m in dataset.members for r in m.referral_rewards}
        | {p.at for p in dataset.payments}
        | {c.at for p in dataset.payment_plans for c in p.history}
    )
    near = st.sampled_from(times) if times else st.nothing()
    strategy = st.one_of(near, near, _AROUND_DATASETS)  # on an event two times in three
    if len(_BOUNDARIES) >= 64:
        _BOUNDARIES.clear()
    _BOUNDARIES[id(dataset)] = (dataset, strategy)
    return strategy


#: ``boundaries`` of the last datasets seen, by identity: queries draw it many times.
_BOUNDARIES: dict[int, tuple[Dataset, st.SearchStrategy[datetime]]] = {}
_AROUND_DATASETS = instants(DATASET_START - timedelta(days=30), DATASET_START + timedelta(days=400))


def _ranges(dataset: Dataset) -> st.SearchStrategy[DateRange]:
    """Ranges between two of the dataset's boundaries, or whole days in a practice's zone."""
    zones = sorted({p.timezone for p in dataset.practices}) or ["UTC"]
    return _ranges_composite(boundaries(dataset), st.sampled_from(zones))


@st.composite
def _ranges_composite(
    draw: st.DrawFn, instants_: st.SearchStrategy[datetime], zones: st.SearchStrategy[str]
) -> DateRange:
    a, b = sorted((draw(instants_), draw(instants_)))
    tz = draw(zones)
    if draw(st.integers(0, 2)) == 2:  # whole days in the practice's zone, as the dashboard asks
        first = DateRange(a, a, tz).local_start.date()
        return DateRange.custom(
            first, first + timedelta(days=draw(st.integers(0, 40))), timezone=tz
        )
    return DateRange(a, b, tz)


def scope_queries(dataset: Dataset, objects: Sequence[Any]) -> st.SearchStrategy[Any]:
    """:class:`ScopeQuery` values over ``objects``' practices and ids."""
    return st.builds(
        ScopeQuery,
        practices=_subset(p.id for p in dataset.practices),
        ids=_subset(o.id for o in objects),
    )


def member_queries(dataset: Dataset) -> st.SearchStrategy[Any]:
    """:class:`MemberQuery` values whose ids, dates and instants come from ``dataset``.

    Each query is one of the KPI reads (``active_at``, retained, ``ever_active_before``,
    ``first_activated_in``), a subscription read (``counting_at`` with or without
    ``counting_plans``, ``changed_in``), a list filter (ids, statuses, names, start
    dates, Overdue), or all of them at once.
    """
    ms = dataset.members
    instants_ = boundaries(dataset)
    plan_ids = sorted({m.plan_id for m in ms} | {c.from_plan for m in ms for c in m.plan_changes})
    days = sorted({m.start_date for m in ms})
    filters = st.fixed_dictionaries(
        {
            "plans": _rarely(_subset(m.plan_id for m in ms)),
            "statuses": _rarely(_subset(MembershipStatus)),
            "campaigns": _rarely(_subset(m.campaign_id for m in ms if m.campaign_id)),
            "staff_users": _rarely(_subset(m.staff_user_id for m in ms if m.staff_user_id)),
            "ids": _rarely(_subset(m.id for m in ms)),
            "name_contains": _rarely(st.sampled_from(["ada", "GRACE", "x", ""])),
        }
    )
    start_dates = (
        st.sampled_from(days).flatmap(
            lambda first: st.fixed_dictionaries(
                {
                    "start_from": st.just(first),
                    "start_until": st.sampled_from([d for d in days if d >= first]),
                }
            )
        )
        if days
        else st.nothing()
    )
    overdue = st.fixed_dictionaries(
        {"overdue": st.booleans(), "as_of": instants_, "grace_days": st.integers(0, 10)}
    )
    return _member_queries_composite(
        _subset(p.id for p in dataset.practices),
        instants_,
        _ranges(dataset),
        _rarely(_subset(plan_ids)),
        filters,
        st.just({}) | start_dates,
        st.just({}) | overdue,
    )


@st.composite
def _member_queries_composite(
    draw: st.DrawFn,
    practices: st.SearchStrategy[frozenset[str] | None],
    instants_: st.SearchStrategy[datetime],
    ranges: st.SearchStrategy[DateRange],
    plans: st.SearchStrategy[frozenset[str] | None],
    filters: st.SearchStrategy[dict[str, Any]],
    start_dates: st.SearchStrategy[dict[str, Any]],
    overdue: st.SearchStrategy[dict[str, Any]],
) -> MemberQuery:
    fields: dict[str, Any] = {"practices": draw(practices)}
    temporal = draw(
        st.sampled_from(
            ["none", "active", "retained", "ever", "first", "counting", "changed", "many"]
        )
    )
    if temporal in ("active", "retained", "many"):
        fields["active_at"] = draw(instants_)
    if temporal in ("retained", "many"):
        fields["retained_until"] = draw(instants_)
    if temporal in ("ever", "many"):
        fields["ever_active_before"] = draw(instants_)
    if temporal in ("first", "many"):
        fields["first_activated_in"] = draw(ranges)
    if temporal in ("counting", "many"):
        fields["counting_at"] = draw(instants_)
        fields["counting_plans"] = draw(plans)
    if temporal in ("changed", "many"):
        fields["changed_in"] = draw(ranges)
    if temporal in ("none", "many"):
        fields.update(draw(filters))
        fields.update(draw(start_dates))
        fields.update(draw(overdue))
    return MemberQuery(**fields)


def payment_plan_queries(dataset: Dataset) -> st.SearchStrategy[Any]:
    """:class:`PaymentPlanQuery` values over ``dataset``: the committed-in KPI read, or
    the list filters (statuses, types, archived, member, ids, names, Overdue)."""
    plans = dataset.payment_plans
    practices = _subset(p.id for p in dataset.practices)
    committed = st.fixed_dictionaries({"practices": practices, "committed_in": _ranges(dataset)})
    listed = st.fixed_dictionaries(
        {
            "practices": practices,
            "statuses": _rarely(_subset(PaymentPlanStatus)),
            "payment_types": _rarely(_subset(PaymentType)),
            "archived": _rarely(st.booleans()),
            "members": _rarely(_subset(p.member_id for p in plans if p.member_id)),
            "ids": _rarely(_subset(p.id for p in plans)),
            "name_contains": _rarely(st.sampled_from(["ada", "Hopper", "zz"])),
        }
    )
    overdue = st.fixed_dictionaries({"overdue": st.booleans(), "as_of": boundaries(dataset)})
    with_overdue = st.tuples(listed, st.just({}) | overdue).map(lambda t: {**t[0], **t[1]})
    return (committed | with_overdue).map(lambda fields: PaymentPlanQuery(**fields))


def payment_queries(dataset: Dataset) -> st.SearchStrategy[Any]:
    """:class:`PaymentQuery` values over ``dataset``: every filter, or the KPI read's
    (practices, time range, kinds, outcomes)."""
    practices = _subset(p.id for p in dataset.practices)
    time_ranges = st.none() | _ranges(dataset)
    kinds, outcomes = _subset(PaymentKind), _subset(PaymentOutcome)
    return st.builds(
        PaymentQuery,
        practices=practices,
        sources=_rarely(_subset(p.source for p in dataset.payments)),
        kinds=kinds,
        outcomes=outcomes,
        time_range=time_ranges,
        ids=_rarely(_subset(p.id for p in dataset.payments)),
    ) | st.builds(
        PaymentQuery, practices=practices, time_range=time_ranges, kinds=kinds, outcomes=outcomes
    )


def referral_queries(dataset: Dataset) -> st.SearchStrategy[Any]:
    """:class:`ReferralQuery` values over ``dataset``."""
    rs = dataset.referrals
    return st.builds(
        ReferralQuery,
        practices=_subset(p.id for p in dataset.practices),
        campaigns=_rarely(_subset(r.campaign_id for r in rs if r.campaign_id)),
        staff_users=_rarely(_subset(r.staff_user_id for r in rs if r.staff_user_id)),
        statuses=_rarely(_subset(ReferralStatus)),
        converted_in=_rarely(_ranges(dataset)),
        referring_members=_rarely(
            _subset(r.referring_member_id for r in rs if r.referring_member_id)
        ),
        ids=_rarely(_subset(r.id for r in rs)),
    )


def orders(columns: Iterable[str]) -> st.SearchStrategy[Any]:
    """:class:`Order` values over ``columns``, with or without a page."""
    from smilepass_core.queries import Order, Page, SortKey

    names = sorted(columns)
    keys = st.lists(st.builds(SortKey, st.sampled_from(names), st.booleans()), max_size=3)
    offsets = st.one_of(st.just(0), st.just(0), st.integers(0, 6))
    pages = st.builds(Page, st.none() | st.integers(0, 8), offsets)
    return st.builds(Order, keys, pages)
