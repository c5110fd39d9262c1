"""Builds one demo practice's history through the domain's constructors and transitions."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta

import attrs
import pendulum

from smilepass_core.demo.practices import (
    _CANCEL_REASONS,
    _MEMBER_MIX,
    _PAUSE_REASONS,
    _PLAN_MIX,
    _SUSPEND_REASONS,
    _WINDOW_DAYS,
    _PlanSpec,
    _PracticeSpec,
)
from smilepass_core.domain import (
    BillingCycle,
    Campaign,
    DependentChange,
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
    StaffUser,
    check_offer,
    check_refund,
)
from smilepass_core.domain.billing import DunningStep, billing_dates, dunning_actions
from smilepass_core.domain.discounts import Discount, DiscountBasis
from smilepass_core.domain.referrals import reward_referrer
from smilepass_core.errors import RuleViolation
from smilepass_core.money import Money
from smilepass_core.periods import local_day, local_instant, local_midnight, zone


@attrs.frozen
class _MemberRecipe:
    scenario: str
    plan: MembershipPlan
    enrol_at: datetime
    unpaid_first: bool = False


@attrs.frozen
class _PlanRecipe:
    scenario: str
    payment_type: PaymentType
    total: Money
    instalments: int
    offer_at: datetime
    first_due: date
    stop: datetime
    setup: bool = True
    fail_last: bool = False
    recover_number: int | None = None
    cancel: tuple[datetime, str] | None = None
    archive_after: timedelta | None = None


def _months_before(day: date, months: int) -> date:
    moved = pendulum.Date(day.year, day.month, day.day).subtract(months=months)
    return date(moved.year, moved.month, moved.day)


class _Builder:
    """Generates one practice; mutable while building, the objects it makes are not."""

    def __init__(self, spec: _PracticeSpec, rng: random.Random, now: datetime) -> None:
        self.spec = spec
        self.rng = rng
        self.now = now
        self.tz = spec.timezone
        self.today = now.astimezone(zone(spec.timezone)).date()
        p = spec.id
        self.practice = Practice(p, spec.name, spec.timezone, spec.currency)
        self.staff = tuple(
            StaffUser(f"{p}-s-{i}", p, name) for i, name in enumerate(spec.staff, start=1)
        )
        self.plans = tuple(self._plan(s, spec.currency) for s in spec.plans)
        #: From the Family plan's price rise: 5 % off per dependent (at most three) for the
        #: members who join the Family plan with dependents.
        family = next(plan for plan in self.plans if plan.earlier_prices)
        self.family_offer = (
            family.earlier_prices[-1].until,
            Discount(
                f"{p}-d-dependants",
                p,
                "Dependants 5 % each",
                percent=5,
                basis=DiscountBasis.PER_DEPENDENT,
                plans={family.id},
                limit=3,
            ),
        )
        self.campaigns = tuple(
            Campaign(
                id=f"{p}-c-{i}",
                practice_id=p,
                name=c.name,
                promo_code=c.promo_code,
                active_from=self._midnight(c.starts_days_ago),
                active_until=None if c.ends_days_ago is None else self._midnight(c.ends_days_ago),
                other_codes=frozenset(c.other_codes),
                discount=None
                if c.percent is None
                else Discount(
                    f"{p}-c-{i}-off",
                    p,
                    f"{c.name}: {c.percent} % off",
                    percent=c.percent,
                    cycles=c.cycles,
                ),
            )
            for i, c in enumerate(spec.campaigns, start=1)
        )
        self.campaigns = (self._recorded(self.campaigns[0]), *self.campaigns[1:])
        self.templates = self._templates()
        self.members: list[Member] = []
        self.payment_plans: list[PaymentPlan] = []
        self.payments: list[Payment] = []
        self.referrals: list[Referral] = []
        self._ledger: dict[str, list[Payment]] = {}
        self._patients = 0
        self._names: set[str] = set()
        self._refunds = 0
        #: Dependents added or removed so far (the first family members with the
        #: dependants' discount: one adds a newborn, the next removes one).
        self._dependent_moves = 0

    def _plan(self, spec: _PlanSpec, currency: str) -> MembershipPlan:
        """A plan at its price now, and at its earlier price before a rise (if any)."""
        plan_id = f"{self.practice.id}-plan-{spec.key}"
        price = Money.of(spec.price, currency)
        if spec.earlier is None:
            return MembershipPlan(plan_id, self.practice.id, spec.name, price, spec.cycle)
        old, months = spec.earlier
        plan = MembershipPlan(
            plan_id, self.practice.id, spec.name, Money.of(old, currency), spec.cycle
        )
        return plan.reprice(price, on=_months_before(self.today.replace(day=1), months))

    def _templates(self) -> tuple[PaymentPlanTemplate, ...]:
        """The practice's payment-plan templates (no random draws: the rest of the demo
        is unchanged by them). Instalment plans name the treatment plan, or its
        members-only twin when a member takes one, where they keep its rules."""
        p, c = self.practice.id, self.spec.currency
        counts = (6, 12, 24)
        return (
            PaymentPlanTemplate(
                f"{p}-t-treatment",
                p,
                "Treatment plan",
                Money.of("1500", c),
                Money.of("15000", c),
                counts,
                max_deferral_days=14,
            ),
            PaymentPlanTemplate(
                f"{p}-t-members",
                p,
                "Members' treatment plan",
                Money.of("500", c),
                Money.of("15000", c),
                counts,
                max_deferral_days=28,
                members_only=True,
            ),
            PaymentPlanTemplate(
                f"{p}-t-implants",
                p,
                "Implants with deposit",
                Money.of("3000", c),
                Money.of("20000", c),
                (10, 20),
                max_deferral_days=30,
                deposit=Money.of("1000", c),
            ),
            PaymentPlanTemplate(
                f"{p}-t-aligners",
                p,
                "Clear aligners (2025 offer)",
                Money.of("2000", c),
                Money.of("8000", c),
                (12,),
                retired_at=self._midnight(_WINDOW_DAYS),
            ),
        )

    def _from_template(self, plan: PaymentPlan) -> PaymentPlan:
        """``plan`` naming the template it is an offer of (the members' one for a member's
        plan, else the treatment plan), if any."""
        member = next((m for m in self.members if m.id == plan.member_id), None)
        treatment, members_only = self.templates[0], self.templates[1]
        for template in (members_only, treatment) if member is not None else (treatment,):
            named = attrs.evolve(plan, template_id=template.id)
            try:
                check_offer(template, named, timezone=self.tz, member=member)
            except RuleViolation:
                continue
            return named
        return plan

    def _recorded(self, campaign: Campaign) -> Campaign:
        """``campaign`` with a recorded lifecycle over the same window: drafted two weeks
        before it, scheduled a week before, started and (if it has an end) ended on time,
        so it is active exactly when its window says."""
        start = campaign.active_from
        moved = Campaign.draft(
            id=campaign.id,
            practice_id=campaign.practice_id,
            name=campaign.name,
            promo_code=campaign.promo_code,
            active_from=start,
            active_until=campaign.active_until,
            at=start - timedelta(days=14),
            other_codes=campaign.other_codes,
            plans=campaign.plans,
            discount=campaign.discount,
        )
        moved = moved.schedule(at=start - timedelta(days=7)).activate(at=start)
        if campaign.active_until is not None:
            moved = moved.end(at=campaign.active_until)
        return moved

    def build(self) -> None:
        for i, recipe in enumerate(self._member_recipes(), start=1):
            self._member(f"{self.spec.id}-m-{i:04d}", recipe)
        self._open_referrals()
        self._plan_round_trips()
        self._referral_rewards()
        for i, plan_recipe in enumerate(self._plan_recipes(), start=1):
            self._payment_plan(f"{self.spec.id}-pp-{i:03d}", plan_recipe)

    # -- time ---------------------------------------------------------------------------

    def _midnight(self, days_ago: int) -> datetime:
        day = self.today - timedelta(days=days_ago)
        return local_instant(datetime(day.year, day.month, day.day), self.tz, fold=0)

    def _local(self, day: date, hour: int, minute: int) -> datetime:
        return local_instant(datetime(day.year, day.month, day.day, hour, minute), self.tz, fold=0)

    def _business(self, day: date) -> datetime:
        """A time during opening hours (08:00-17:59) on local ``day``."""
        return self._local(day, self.rng.randint(8, 17), self.rng.randint(0, 59))

    def _recent(self, low: int, high: int) -> datetime:
        """Opening hours ``low``..``high`` days ago, strictly before now."""
        day = self.today - timedelta(days=self.rng.randint(low, high))
        at = self._business(day)
        while at >= self.now:
            day -= timedelta(days=1)
            at = self._business(day)
        return at

    def _between(self, start: datetime, end: datetime) -> datetime:
        """An instant in ``[start, end)``, during opening hours when the range allows."""
        seconds = max(1, int((end - start).total_seconds()))
        rough = start + timedelta(seconds=self.rng.randrange(seconds))
        at = self._business(rough.astimezone(zone(self.tz)).date())
        return at if start <= at < end else rough

    def _growth_days_ago(self, minimum: int) -> int:
        """Days ago for an enrolment: half uniform, half weighted to recent (a growing practice)."""
        span = _WINDOW_DAYS - minimum
        x = self.rng.random() if self.rng.random() < 0.5 else 1 - math.sqrt(self.rng.random())
        return minimum + int(span * x)

    # -- people -------------------------------------------------------------------------

    def _name(self, last: str | None = None) -> tuple[str, str]:
        first = self.rng.choice(self.spec.first_names)
        return first, last or self.rng.choice(self.spec.last_names)

    def _patient(self) -> Patient:
        """A new account holder with a name not yet used in this practice."""
        first, last = self._name()
        while f"{first} {last}" in self._names:
            first, last = self._name()
        self._names.add(f"{first} {last}")
        self._patients += 1
        slug = re.sub(r"[^a-z]", "", first.lower()) + "." + re.sub(r"[^a-z]", "", last.lower())
        phone = None
        if self.rng.random() < 0.7:
            phone = self.spec.phone_format.format(self.rng.randrange(100))
        return Patient(
            id=f"{self.spec.id}-pat-{self._patients:04d}",
            name=f"{first} {last}",
            email=f"{slug}@{self.spec.email_domain}",
            phone=phone,
        )

    def _dependents(self, holder: Patient, count: int) -> tuple[Patient, ...]:
        last = holder.name.split(" ", 1)[1]
        names: list[str] = []
        while len(names) < count:
            first, _ = self._name(last)
            if first not in names and f"{first} {last}" != holder.name:
                names.append(first)
        return tuple(
            Patient(f"{holder.id}-d{j}", f"{first} {last}") for j, first in enumerate(names, 1)
        )

    def _dependent_count(self, plan: MembershipPlan) -> int:
        rng = self.rng
        if plan.id.endswith("family"):
            return rng.choices((1, 2, 3, 4), weights=(3, 5, 3, 1))[0]
        if plan.id.endswith("premium"):
            return rng.choices((0, 1, 2), weights=(7, 2, 1))[0]
        return 1 if rng.random() < 0.12 else 0

    # -- ledger -------------------------------------------------------------------------

    def _record(
        self,
        source: str,
        amount: Money,
        at: datetime,
        *,
        ok: bool = True,
        kind: PaymentKind = PaymentKind.CHARGE,
        plan: bool = False,
    ) -> str:
        """Append a ledger entry for ``source`` (a member, or a plan when ``plan``); its id."""
        entries = self._ledger.setdefault(source, [])
        payment = Payment(
            id=f"{source}-p{len(entries) + 1:03d}",
            practice_id=self.spec.id,
            amount=amount,
            kind=kind,
            outcome=PaymentOutcome.SUCCEEDED if ok else PaymentOutcome.FAILED,
            at=at,
            member_id=None if plan else source,
            payment_plan_id=source if plan else None,
        )
        check_refund(entries, payment)
        entries.append(payment)
        self.payments.append(payment)
        return payment.id

    # -- members ------------------------------------------------------------------------

    def _pick_plan(self, *, monthly_only: bool = False) -> MembershipPlan:
        pairs = [
            (plan, spec.weight)
            for plan, spec in zip(self.plans, self.spec.plans, strict=True)
            if not monthly_only or plan.billing_cycle is BillingCycle.MONTHLY
        ]
        return self.rng.choices([p for p, _ in pairs], weights=[w for _, w in pairs])[0]

    def _member_recipes(self) -> list[_MemberRecipe]:
        n = self.spec.members
        scenarios: list[str] = []
        for name, share, minimum in _MEMBER_MIX:
            scenarios += [name] * max(minimum, round(n * share))
        scenarios += ["active"] * (n - len(scenarios))
        self.rng.shuffle(scenarios)
        recipes = [self._member_recipe(s) for s in scenarios]
        recipes.sort(key=lambda r: r.enrol_at)
        return recipes

    def _member_recipe(self, scenario: str) -> _MemberRecipe:
        rng = self.rng
        if scenario == "failed" and rng.random() < 0.8:
            # A monthly member whose latest charge, a few days ago, failed.
            plan = self._pick_plan(monthly_only=True)
            latest = self.today - timedelta(days=rng.randint(2, 18))
            start = _months_before(latest, rng.randint(1, 16))
            return _MemberRecipe(scenario, plan, self._business(start))
        days_ago = {
            "failed": lambda: rng.randint(1, 6),
            "pending": lambda: rng.randint(0, 14),
            "never_set_up": lambda: rng.randint(25, 480),
            "suspended": lambda: self._growth_days_ago(100),
            "cancelled": lambda: self._growth_days_ago(60),
            "active": lambda: self._growth_days_ago(0),
        }[scenario]()
        day = self.today - timedelta(days=days_ago)
        at = self._business(day)
        while at >= self.now:
            day -= timedelta(days=1)
            at = self._business(day)
        return _MemberRecipe(scenario, self._pick_plan(), at, unpaid_first=scenario == "failed")

    def _active_campaign(self, at: datetime) -> Campaign | None:
        live = [c for c in self.campaigns if c.is_active_at(at)]
        if not live:
            return None
        seasonal = [c for c in live if c.active_until is not None]
        if seasonal and self.rng.random() < 0.6:
            return seasonal[0]
        return live[0]

    def _active_member(self, at: datetime, *, exclude: str = "") -> Member | None:
        candidates = [m for m in self.members if m.id != exclude and m.is_active_at(at)]
        return self.rng.choice(candidates) if candidates else None

    def _member(self, member_id: str, recipe: _MemberRecipe) -> None:
        rng = self.rng
        start = recipe.enrol_at.astimezone(zone(self.tz)).date()
        if recipe.scenario == "pending":
            # Signed up, starting (and first charged) on the 1st of next month.
            start = _months_before(start.replace(day=1), -1)
        holder = self._patient()
        dependents = self._dependents(holder, self._dependent_count(recipe.plan))
        staff = rng.choice(self.staff)
        referral: Referral | None = None
        campaign: Campaign | None = None
        if recipe.scenario not in ("pending", "never_set_up") and rng.random() < 0.13:
            opened = self._between(
                recipe.enrol_at - timedelta(days=21), recipe.enrol_at - timedelta(days=1)
            )
            campaign = self._active_campaign(opened)
            referrer = self._active_member(opened)
            if campaign is not None and referrer is not None:
                referral = Referral.open(
                    id=f"{self.spec.id}-r-{len(self.referrals) + 1:03d}",
                    practice_id=self.spec.id,
                    account_holder=holder,
                    dependents=dependents,
                    start_date=start,
                    at=opened,
                    campaign_id=campaign.id,
                    staff_user_id=staff.id,
                    referring_member_id=referrer.id,
                )
        if referral is None:
            live = [
                c
                for c in self.campaigns
                if c.active_until is not None and c.is_active_at(recipe.enrol_at)
            ]
            campaign = live[0] if live and rng.random() < 0.3 else None
        if campaign is not None and not campaign.is_active_at(recipe.enrol_at):
            campaign = None  # referred under it, but it had ended: only Active ones sign up
        member = Member.enrol(
            id=member_id,
            practice_id=self.spec.id,
            plan_id=recipe.plan.id,
            account_holder=holder,
            dependents=dependents,
            start_date=start,
            at=recipe.enrol_at,
            staff_user_id=staff.id,
        )
        if campaign is not None:  # signed up with its code: its discount granted
            member = campaign.apply_code(member, campaign.promo_code)
        since, offer = self.family_offer
        move: DependentChange | None = None
        if dependents and offer.covers(recipe.plan) and start >= since:
            member = member.grant(offer, units=len(dependents))
            move = self._dependent_move(member, recipe)
        self.members.append(self._member_story(member, recipe, move))
        if referral is not None:
            self.referrals.append(referral.convert(member_id=member_id, at=recipe.enrol_at))

    def _dependent_move(self, member: Member, recipe: _MemberRecipe) -> DependentChange | None:
        """For the first two Active-bound members with the dependants' discount enrolled
        more than 100 days ago: a newborn added 40 days after the enrolment at 11:00, then
        the first dependent removed (moved out). No randomness: the rest is as before."""
        if self._dependent_moves == 2 or recipe.scenario != "active":
            return None
        if recipe.enrol_at >= self.now - timedelta(days=100):
            return None
        self._dependent_moves += 1
        at = self._local(local_day(recipe.enrol_at, self.tz) + timedelta(days=40), 11, 0)
        if self._dependent_moves == 1:
            holder = member.account_holder
            last = holder.name.split(" ", 1)[1]
            baby = Patient(f"{holder.id}-d{len(member.dependents) + 1}", f"Ava {last}")
            return DependentChange(at, baby, True, "newborn")
        return DependentChange(at, member.dependents[0], False, "moved out")

    def _referral_rewards(self) -> None:
        """The practice's "Refer a friend" offer (5.00 off per converted referral, at most
        three) started with the referrals converted since each referrer's latest billing
        date: those referrers are credited (``reward_referrer``), so it prices their next
        date, after now, and no charge already made changes. No randomness."""
        friend = Discount(
            f"{self.spec.id}-d-friend",
            self.spec.id,
            "Refer a friend",
            amount=Money.of("5.00", self.spec.currency),
            basis=DiscountBasis.PER_REFERRAL,
            limit=3,
        )
        plans = {p.id: p for p in self.plans}
        index = {m.id: i for i, m in enumerate(self.members)}
        for referral in self.referrals:
            converted = referral.converted_at
            if converted is None or referral.referring_member_id not in index:
                continue
            i = index[referral.referring_member_id]
            referrer = self.members[i]
            if referrer.status is MembershipStatus.CANCELLED:
                continue  # no next date to price
            dates = billing_dates(
                referrer, plans[referrer.plan_id], through=self.today, timezone=self.tz,
                plans=plans,
            )  # fmt: skip
            if dates and local_midnight(dates[-1], self.tz) > converted:
                continue  # a date charged since would change (billing reads its day's start)
            self.members[i] = reward_referrer(referrer, referral, friend)

    def _plan_round_trips(self, count: int = 2) -> None:
        """The first ``count`` members Active through the days after their first billing
        date on or after 200 days ago, on a plan with a dearer one of the same cycle, try
        it: upgrade the next day, downgrade back four days later, before their next
        billing date (so no charge changes). No randomness: the rest is as before."""
        plans = {p.id: p for p in self.plans}
        moved = 0
        for i, member in enumerate(self.members):
            plan = plans[member.plan_id]
            dearer = [
                p
                for p in self.plans
                if p.billing_cycle is plan.billing_cycle and p.price > plan.price
            ]
            k = 0
            while plan.charge_date(member.start_date, k) < self.today - timedelta(days=200):
                k += 1
            billed = plan.charge_date(member.start_date, k)
            up = self._local(billed + timedelta(days=1), 10, 0)
            down = self._local(billed + timedelta(days=5), 10, 0)
            steady = member.is_active_at(up) and not any(up <= c.at <= down for c in member.history)
            if moved == count or not dearer or not steady:
                continue
            self.members[i] = member.change_plan(
                dearer[0].id, at=up, reason="trying family cover"
            ).change_plan(plan.id, at=down, reason="back to their plan")
            moved += 1

    def _slots(self, member: Member, plan: MembershipPlan) -> list[datetime]:
        """Charge times from sign-up (``k=0``) for every billing date before now."""
        times = [member.created_at + timedelta(minutes=self.rng.randint(2, 15))]
        for k in range(1, 10_000):
            at = self._local(plan.charge_date(member.start_date, k), 9, self.rng.randint(0, 59))
            if at >= self.now:
                break
            times.append(at)
        return [t for t in times if t < self.now]

    def _member_story(
        self, member: Member, recipe: _MemberRecipe, move: DependentChange | None = None
    ) -> Member:
        rng = self.rng
        plan = recipe.plan
        t0 = member.created_at
        slots = self._slots(member, plan)
        until = self.now
        unpaid: int | None = None
        end: tuple[str, datetime, str] | None = None
        pause: tuple[datetime, int] | None = None
        scenario = recipe.scenario
        if scenario == "pending":
            until = t0
        elif scenario == "never_set_up":
            until = t0
            quit_at = self._between(t0 + timedelta(days=7), t0 + timedelta(days=20))
            end = ("cancel", quit_at, "payment never set up")
        elif scenario == "failed":
            unpaid = 0 if recipe.unpaid_first else len(slots) - 1
        elif scenario == "suspended":
            lo = max(t0 + timedelta(days=45), self.now - timedelta(days=150))
            until = self._between(lo, self.now - timedelta(days=1))
            end = ("suspend", until, rng.choice(_SUSPEND_REASONS))
        elif scenario == "cancelled":
            # A third stop paying: the dunning policy suspends, then cancels them.
            window = [
                k
                for k, t in enumerate(slots)
                if k and t0 + timedelta(days=25) <= t < self.now - timedelta(days=35)
            ]
            if window and rng.random() < 0.3:
                unpaid = rng.choice(window)
            else:
                until = self._between(t0 + timedelta(days=20), self.now - timedelta(hours=6))
                end = ("cancel", until, rng.choice(_CANCEL_REASONS))
        elif plan.billing_cycle is BillingCycle.MONTHLY and len(slots) >= 7 and rng.random() < 0.1:
            k_s = rng.randint(2, len(slots) - 3)
            resume = min(k_s + rng.randint(1, 3), len(slots) - 1)
            pause = (
                slots[k_s] - timedelta(days=rng.randint(2, 12), hours=rng.randint(0, 8)),
                resume,
            )
        member = self._charges(
            member, plan, slots, until=until, unpaid=unpaid, pause=pause, move=move
        )
        if end is not None and member.status is not MembershipStatus.CANCELLED:
            action, at, reason = end
            if action == "cancel":
                member = member.cancel(at=at, reason=reason)
                self._maybe_refund(member, plan, at)
            else:
                member = member.suspend(at=at, reason=reason)
                member = self._escalations(member, plan, at)
        return member

    def _escalations(self, member: Member, plan: MembershipPlan, since: datetime) -> Member:
        """A member who suspended themselves with a charge unpaid after a failed attempt:
        the policy still escalates it. The practice runs it at 09:00 each day until now;
        while Suspended it asks only for the Cancel (day 30)."""
        ledger = self._ledger.get(member.id, [])
        charges = [p for p in ledger if p.kind is PaymentKind.CHARGE]
        if not charges or charges[-1].succeeded:
            return member
        day = local_day(since, self.tz)
        while (at := self._local(day := day + timedelta(days=1), 9, 0)) < self.now:
            for action in dunning_actions(member, plan, ledger, at=at, timezone=self.tz):
                if action.step is DunningStep.CANCEL:
                    return member.cancel(at=at, reason=f"dunning: {action.reason}")
        return member

    def _charges(
        self,
        member: Member,
        plan: MembershipPlan,
        slots: Sequence[datetime],
        *,
        until: datetime,
        unpaid: int | None,
        pause: tuple[datetime, int] | None,
        move: DependentChange | None = None,
    ) -> Member:
        """Bill the dates before ``until`` through the dunning engine.

        The practice runs :func:`~smilepass_core.domain.billing.dunning_actions` (the
        default :class:`~smilepass_core.domain.billing.DunningPolicy`) at each billing
        date's slot, and every day while a charge is unpaid after a failed attempt, and
        does what it asks: a charge or retry of what is owed, a reminder, a Suspend or a
        Cancel. Every attempt fails from slot ``unpaid`` on (so the policy escalates);
        before it, a charge now and then fails once or twice before a retry succeeds. A
        ``pause`` (Suspended at its instant, resumed at slot ``pause[1]``) is the member's
        own doing, and so is a dependent ``move`` (made at its instant, before the runs
        after it).
        """
        rng = self.rng
        runs = [t for t in slots if t < until]
        sent: set[str] = set()
        owe = 0  # failed attempts still to come before one succeeds
        failing = resuming = False
        k = 0
        at = runs[0] if runs else until
        while at < until:
            if move is not None and at >= move.at:
                member = (
                    member.add_dependent(move.patient, at=move.at, reason=move.reason)
                    if move.added
                    else member.remove_dependent(move.patient.id, at=move.at, reason=move.reason)
                )
                move = None
            if pause is not None and at >= pause[0] and k <= pause[1]:
                if member.status is MembershipStatus.SUSPENDED:
                    pass
                elif member.history[-1].at >= pause[0]:
                    pause = None  # the member moved since: no pause this time
                else:
                    member = member.suspend(at=pause[0], reason=rng.choice(_PAUSE_REASONS))
                if pause is not None and k == pause[1]:
                    # Resumed with the payment collected: this run's charge succeeds.
                    member = member.activate(at=at, reason="resumed; payment collected")
                    pause, resuming = None, True
            for _ in range(3):  # until the policy asks for nothing more at this instant
                actions = dunning_actions(
                    member, plan, self._ledger.get(member.id, ()), at=at, timezone=self.tz,
                    sent=sent,
                )  # fmt: skip
                if not actions:
                    break
                for action in actions:
                    if action.step is DunningStep.REMIND:
                        sent.add(action.key)
                        continue
                    if action.step is DunningStep.SUSPEND:
                        member = member.suspend(at=at, reason=f"dunning: {action.reason}")
                        continue
                    if action.step is DunningStep.CANCEL:
                        return member.cancel(at=at, reason=f"dunning: {action.reason}")
                    assert action.amount is not None  # a charge or retry
                    hopeless = unpaid is not None and k >= unpaid
                    fresh = not hopeless and not owe and action.step is DunningStep.CHARGE
                    if fresh and not resuming and rng.random() < (0.04 if k == 0 else 0.03):
                        owe = 1 if rng.random() < 0.8 else 2
                    ok = not hopeless and (resuming or not owe)
                    owe = 0 if ok else max(owe - 1, 0)
                    self._record(member.id, action.amount, at, ok=ok)
                    if not ok:
                        why = "card declined" if hopeless else "insufficient funds"
                        if member.status is not MembershipStatus.FAILED:
                            member = member.fail(at=at, reason=f"charge failed: {why}")
                    elif member.status is not MembershipStatus.ACTIVE:
                        reason = "retry succeeded" if failing else "first payment collected"
                        member = member.activate(at=at, reason=reason)
                    failing = not ok
            resuming = False
            # The next run: the next slot, or tomorrow while a charge is being chased.
            # (The last slot is followed by ``until``, which may come before tomorrow's run.)
            nxt = runs[k + 1] if k + 1 < len(runs) else until
            if failing and member.status is not MembershipStatus.CANCELLED:
                day = local_day(at, self.tz) + timedelta(days=1)
                if k + 1 == len(runs) or local_day(nxt, self.tz) > day:
                    nxt = min(nxt, self._local(day, 9, rng.randint(0, 59)))
            if k + 1 < len(runs) and nxt == runs[k + 1]:
                k += 1
            at = nxt
        return member

    def _maybe_refund(self, member: Member, plan: MembershipPlan, cancelled_at: datetime) -> None:
        """A handful of refunds on cancellation: the unused month, or the unused annual months."""
        if self._refunds >= 6 or self.rng.random() < 0.45:
            return
        charges = [p for p in self._ledger.get(member.id, []) if p.succeeded]
        if not charges:
            return
        last = charges[-1]
        at = cancelled_at + timedelta(days=self.rng.randint(1, 3))
        if at >= self.now:
            return
        if plan.billing_cycle is BillingCycle.ANNUALLY:
            used = (cancelled_at - last.at).days // 30 + 1
            if used >= 12:
                return
            amount = Money.from_minor(last.amount.minor * (12 - used) // 12, last.amount.currency)
        elif cancelled_at - last.at <= timedelta(days=14):
            amount = last.amount
        else:
            return
        self._record(member.id, amount, at, kind=PaymentKind.REFUND)
        self._refunds += 1

    # -- referrals that did not (yet) convert -----------------------------------------

    def _open_referrals(self) -> None:
        rng = self.rng
        outcomes = ["pending"] * rng.randint(6, 9) + ["cancelled"] * rng.randint(4, 7)
        for outcome in outcomes:
            for _ in range(20):
                if outcome == "pending":
                    opened = self._recent(0, 30)
                else:
                    opened = self._between(
                        self.now - timedelta(days=400), self.now - timedelta(days=50)
                    )
                campaign = self._active_campaign(opened)
                referrer = self._active_member(opened)
                if campaign is not None and referrer is not None:
                    break
            else:  # pragma: no cover - the demo always has active members by then
                continue
            holder = self._patient()
            referral = Referral.open(
                id=f"{self.spec.id}-r-{len(self.referrals) + 1:03d}",
                practice_id=self.spec.id,
                account_holder=holder,
                dependents=self._dependents(holder, rng.choice((0, 0, 1, 2))),
                start_date=opened.astimezone(zone(self.tz)).date(),
                at=opened,
                campaign_id=campaign.id,
                staff_user_id=rng.choice(self.staff).id,
                referring_member_id=referrer.id,
            )
            if outcome == "cancelled":
                at = self._between(opened + timedelta(days=21), opened + timedelta(days=45))
                referral = referral.cancel(at=at, reason="did not join")
            self.referrals.append(referral)

    # -- payment plans ------------------------------------------------------------------

    def _total(self, payment_type: PaymentType) -> Money:
        low, high = {
            PaymentType.INSTANT: (500, 3_000),
            PaymentType.HOLD: (500, 6_000),
            PaymentType.PLAN: (1_500, 15_000),
        }[payment_type]
        dollars = self.rng.randrange(low, high + 1, 5)
        cents = self.rng.choice((0, 0, 0, 50, 95))
        amount = min(dollars * 100 + cents, 15_000 * 100)
        return Money.from_minor(amount, self.spec.currency)

    def _plan_recipes(self) -> list[_PlanRecipe]:
        scenarios: list[str] = []
        for name, base, extra in _PLAN_MIX:
            scenarios += [name] * (base + self.rng.randint(0, extra))
        recipes = [self._plan_recipe(s) for s in scenarios]
        recipes.sort(key=lambda r: r.offer_at)
        return recipes

    def _plan_recipe(self, scenario: str) -> _PlanRecipe:
        rng = self.rng
        now, today = self.now, self.today
        ago = timedelta
        if scenario in ("pending", "link_expired"):
            kind = rng.choices(list(PaymentType), weights=(2, 6, 2))[0]
            if scenario == "pending":
                offer = self._recent(0, 12)
                stop, cancel = offer, None
            else:
                offer = self._between(now - ago(days=400), now - ago(days=20))
                stop, cancel = offer, (offer + ago(days=14), "payment link expired")
            n = rng.choice((6, 12, 24)) if kind is PaymentType.PLAN else 1
            offered = offer.astimezone(zone(self.tz)).date()
            first_due = offered + ago(
                days={PaymentType.INSTANT: 0, PaymentType.PLAN: rng.randint(1, 14)}.get(
                    kind, rng.randint(5, 28)
                )
            )
            return _PlanRecipe(
                scenario,
                kind,
                self._total(kind),
                n,
                offer,
                first_due,
                stop,
                setup=False,
                cancel=cancel,
            )
        if scenario.startswith("instant"):
            kind = PaymentType.INSTANT
            if scenario == "instant_completed":
                offer = self._between(now - ago(days=540), now - ago(days=1))
            else:
                offer = self._recent(1, 20)
            return _PlanRecipe(
                scenario,
                kind,
                self._total(kind),
                1,
                offer,
                offer.astimezone(zone(self.tz)).date(),
                now,
                fail_last=scenario == "instant_failed",
                archive_after=ago(days=rng.randint(3, 45)) if rng.random() < 0.4 else None,
            )
        if scenario.startswith("hold"):
            return self._hold_recipe(scenario)
        return self._instalment_recipe(scenario, today)

    def _hold_recipe(self, scenario: str) -> _PlanRecipe:
        rng = self.rng
        kind, now, today = PaymentType.HOLD, self.now, self.today
        total = self._total(kind)
        archive = None
        cancel = None
        stop = now
        if scenario == "hold_active":
            offer = self._recent(1, 20)
            treatment = today + timedelta(days=rng.randint(1, 21))
        elif scenario == "hold_released":
            offer = self._between(now - timedelta(days=300), now - timedelta(days=10))
            treatment = offer.astimezone(zone(self.tz)).date() + timedelta(days=rng.randint(10, 30))
            stop = self._between(offer + timedelta(days=1), offer + timedelta(days=7))
            cancel = (stop, "treatment not going ahead; hold released")
        else:
            back = rng.randint(3, 480) if scenario == "hold_completed" else rng.randint(1, 10)
            treatment = today - timedelta(days=back)
            offer = self._business(treatment - timedelta(days=rng.randint(5, 30)))
            if scenario == "hold_completed" and rng.random() < 0.3:
                archive = timedelta(days=rng.randint(3, 40))
        return _PlanRecipe(
            scenario,
            kind,
            total,
            1,
            offer,
            treatment,
            stop,
            fail_last=scenario == "hold_failed",
            cancel=cancel,
            archive_after=archive,
        )

    def _instalment_recipe(self, scenario: str, today: date) -> _PlanRecipe:
        rng = self.rng
        kind = PaymentType.PLAN
        total = self._total(kind)
        stop = self.now
        recover: int | None = None
        cancel: tuple[datetime, str] | None = None
        archive: timedelta | None = None
        fail_last = False
        if scenario == "plan_active":
            n = rng.choices((6, 12, 24), weights=(3, 5, 2))[0]
            paid = rng.randint(1, n - 1)
            first_due = _months_before(today - timedelta(days=rng.randint(1, 26)), paid - 1)
            if paid >= 3 and rng.random() < 0.3:
                recover = rng.randint(2, paid - 1)
        elif scenario == "plan_completed":
            n = rng.choice((6, 12))
            first_due = _months_before(today - timedelta(days=rng.randint(10, 200)), n - 1)
            if rng.random() < 0.25:
                recover = rng.randint(1, n)
            if rng.random() < 0.5:
                archive = timedelta(days=rng.randint(3, 40))
        elif scenario == "plan_failed":
            n = rng.choices((6, 12, 24), weights=(3, 5, 2))[0]
            paid = rng.randint(0, n - 1)
            first_due = _months_before(today - timedelta(days=rng.randint(1, 20)), paid)
            fail_last = True
        elif scenario == "plan_cancelled":
            n = rng.choice((12, 24))
            paid = rng.randint(2, 6)
            last_paid = today - timedelta(days=rng.randint(20, 300))
            first_due = _months_before(last_paid, paid - 1)
            at = self._business(last_paid + timedelta(days=rng.randint(5, 15)))
            stop, cancel = at, (at, "treatment discontinued; balance waived by the practice")
        else:  # plan_written_off
            n = rng.choice((6, 12))
            paid = rng.randint(1, n - 2)
            failed_due = today - timedelta(days=rng.randint(45, 300))
            first_due = _months_before(failed_due, paid)
            at = self._business(failed_due + timedelta(days=rng.randint(21, 26)))
            stop, cancel = at, (at, "unpaid after repeated attempts; practice to follow up")
            fail_last = True
        offer = self._business(first_due - timedelta(days=rng.randint(1, 14)))
        return _PlanRecipe(
            scenario,
            kind,
            total,
            n,
            offer,
            first_due,
            stop,
            fail_last=fail_last,
            recover_number=recover,
            cancel=cancel,
            archive_after=archive,
        )

    def _attempt_time(self, recipe: _PlanRecipe, due: date) -> datetime:
        if recipe.payment_type is PaymentType.INSTANT:
            return recipe.offer_at + timedelta(minutes=self.rng.randint(3, 90))
        hour = 15 if recipe.payment_type is PaymentType.HOLD else 10
        return self._local(due, hour, self.rng.randint(0, 59))

    def _payment_plan(self, plan_id: str, recipe: _PlanRecipe) -> None:
        rng = self.rng
        patient: Patient | None = None
        member_id: str | None = None
        if rng.random() < 0.4:
            member = self._active_member(recipe.offer_at)
            if member is not None:
                patient, member_id = member.account_holder, member.id
        plan = PaymentPlan.offer(
            id=plan_id,
            practice_id=self.spec.id,
            patient=patient or self._patient(),
            total=recipe.total,
            payment_type=recipe.payment_type,
            first_due=recipe.first_due,
            at=recipe.offer_at,
            instalments=recipe.instalments,
            member_id=member_id,
        )
        plan = self._from_template(plan)
        if recipe.setup and recipe.payment_type is not PaymentType.INSTANT:
            reason = "card authorised" if recipe.payment_type is PaymentType.HOLD else None
            plan = plan.activate(
                at=recipe.offer_at + timedelta(minutes=rng.randint(2, 45)),
                reason=reason or "instalments set up by the patient",
            )
        times = [self._attempt_time(recipe, i.due_date) for i in plan.schedule]
        due = [i for i, t in enumerate(times) if t < recipe.stop] if recipe.setup else []
        for i in due:
            t = times[i]
            if recipe.fail_last and i == due[-1]:
                plan = self._plan_attempt(plan, t, ok=False)
                for days in (3, 7):
                    if t + timedelta(days=days) < recipe.stop:
                        plan = self._plan_attempt(plan, t + timedelta(days=days), ok=False)
                break
            if i + 1 == recipe.recover_number:
                plan = self._plan_attempt(plan, t, ok=False)
                t += timedelta(days=rng.randint(2, 5))
                if t >= recipe.stop:
                    break
            plan = self._plan_attempt(plan, t, ok=True)
        if recipe.cancel is not None:
            at, reason = recipe.cancel
            plan = plan.cancel(at=at, reason=reason)
        if plan.status is PaymentPlanStatus.COMPLETED and recipe.archive_after is not None:
            archived = plan.attempts[-1].at + recipe.archive_after
            if archived < self.now:
                plan = plan.archive(at=archived)
        self.payment_plans.append(plan)

    def _plan_attempt(self, plan: PaymentPlan, at: datetime, *, ok: bool) -> PaymentPlan:
        """One instalment attempt, recorded on the plan and in the ledger with the same id."""
        due = plan.next_instalment
        assert due is not None  # callers only attempt instalments that are left
        payment_id = self._record(plan.id, due.amount, at, ok=ok, plan=True)
        if ok:
            return plan.record_payment(at=at, payment_id=payment_id)
        return plan.record_failure(
            at=at, reason="charge failed: card declined", payment_id=payment_id
        )
