"""Tests for the bundled demo dataset (the command line is tested in test_main.py)."""

from __future__ import annotations

import itertools
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import attrs
import pytest

from smilepass_core import (
    MEMBERSHIP_LIFECYCLE,
    PAYMENT_PLAN_LIFECYCLE,
    REFERRAL_LIFECYCLE,
    CampaignStatus,
    DateRange,
    InMemoryStore,
    MembershipStatus,
    Money,
    NaiveDatetime,
    Patient,
    Payment,
    PaymentKind,
    PaymentOutcome,
    PaymentPlanStatus,
    PaymentType,
    ReferralStatus,
)
from smilepass_core.demo import DEMO_NOW, DemoData, load_demo
from smilepass_core.demo.builder import _Builder
from smilepass_core.demo.practices import _CANCEL_REASONS, _PRACTICES, _SUSPEND_REASONS
from smilepass_core.domain.billing import DunningStep, billing_dates, dunning_actions
from smilepass_core.domain.discounts import DiscountBasis, price_due
from smilepass_core.io.records import TABLES
from smilepass_core.periods import local_day, local_instant, local_midnight, zone
from smilepass_core.reports import referral_tracking


@pytest.fixture
def data() -> DemoData:
    """The default demo, built anew for each test (0.1 s).

    Function scope on purpose: mutation testing runs, for a mutant of the generator,
    only the tests it saw calling the generator; a module-scoped fixture is built
    once, in the first test, and would hide the rest of this file from those runs.
    """
    return load_demo()


def _holders(data: DemoData) -> list[Patient]:
    """Every account holder: members', payment plans' patients and referrals'."""
    return [
        *(m.account_holder for m in data.members),
        *(p.patient for p in data.payment_plans),
        *(r.account_holder for r in data.referrals),
    ]


def _zones(data: DemoData) -> dict[str, ZoneInfo]:
    """Each practice's time zone, by practice id."""
    return {p.id: zone(p.timezone) for p in data.practices}


def _instants(data: DemoData) -> Iterator[datetime]:
    """Every timestamp the dataset holds."""
    for campaign in data.campaigns:
        yield campaign.active_from
        if campaign.active_until is not None:
            yield campaign.active_until
    for member in data.members:
        yield from (change.at for change in member.history)
    for referral in data.referrals:
        yield from (change.at for change in referral.history)
    for plan in data.payment_plans:
        yield from (change.at for change in plan.history)
        yield from (attempt.at for attempt in plan.attempts)
        if plan.archived_at is not None:
            yield plan.archived_at
    yield from (payment.at for payment in data.payments)


class TestLoadDemo:
    def test_deterministic(self, data: DemoData) -> None:
        """Two loads with the same inputs give equal datasets."""
        assert load_demo() == data
        assert load_demo(DEMO_NOW, 20261125) == data

    def test_seed_changes_the_data(self, data: DemoData) -> None:
        """Another seed gives another dataset."""
        assert load_demo(seed=7).members != data.members

    def test_now_is_kept_in_utc(self, data: DemoData) -> None:
        """The dataset remembers the instant it was generated for."""
        assert data.now == DEMO_NOW
        assert data.now.tzinfo is UTC

    def test_naive_now_is_refused(self) -> None:
        """A naive ``now`` raises NaiveDatetime naming the ``now`` argument."""
        naive = datetime(2026, 11, 25, 5, 0)
        with pytest.raises(NaiveDatetime) as caught:
            load_demo(naive)
        assert (caught.value.field, caught.value.value) == ("now", naive)
        assert str(caught.value) == f"now: naive datetime; give it a time zone (got {naive!r})"

    def test_other_now_moves_everything_before_it(self) -> None:
        """Generated relative to another instant, every timestamp is before that instant."""
        other = datetime(2025, 3, 2, 18, 30, tzinfo=UTC)
        moved = load_demo(now=other)
        assert max(_instants(moved)) < other
        assert min(m.created_at for m in moved.members) >= other - timedelta(days=548)

    def test_for_practice_keeps_only_that_practice(self, data: DemoData) -> None:
        """``for_practice`` returns one practice's objects and all of them, in order, with
        the same ``now``; an unknown id gives an empty dataset."""
        for practice in data.practices:
            part = data.for_practice(practice.id)
            assert part.practices == (practice,)
            assert part.now == data.now
            for table in _TABLES[1:]:
                mine = tuple(o for o in getattr(data, table) if o.practice_id == practice.id)
                assert mine
                assert getattr(part, table) == mine, table
        nowhere = data.for_practice("nowhere")
        assert nowhere.now == data.now
        assert all(getattr(nowhere, table) == () for table in _TABLES)

    def test_objects_lists_every_table_in_load_order(self, data: DemoData) -> None:
        """``objects()`` is every table's objects, practices first and the ledger last."""
        assert (_TABLES[0], _TABLES[-1]) == ("practices", "payments")
        assert data.objects() == tuple(o for t in _TABLES for o in getattr(data, t))


#: The dataset's tables in load order (the records module's, which ``objects()`` follows).
_TABLES = tuple(TABLES)


class TestPractices:
    def test_both_practices_with_zone_and_currency(self, data: DemoData) -> None:
        """Harbour Dental is in Sydney in AUD; Hudson Smiles in New York in USD."""
        assert {(p.name, p.timezone, p.currency) for p in data.practices} == {
            ("Harbour Dental", "Australia/Sydney", "AUD"),
            ("Hudson Smiles", "America/New_York", "USD"),
        }

    def test_staff_plans_and_campaigns_per_practice(self, data: DemoData) -> None:
        """Each practice has three staff users, three membership plans and two campaigns."""
        for practice in data.practices:
            mine = data.for_practice(practice.id)
            assert len(mine.staff_users) == 3
            assert len(mine.membership_plans) == 3
            assert len(mine.campaigns) == 2
            assert {p.billing_cycle.value for p in mine.membership_plans} == {
                "monthly",
                "annually",
            }
            assert all(p.price.currency == practice.currency for p in mine.membership_plans)

    def test_staff_plans_and_campaigns_are_the_practice_specs(self, data: DemoData) -> None:
        """Staff names, plan names, prices and cycles, and campaign names and codes are the
        ones each practice is specified with, in that order, under ids ``syd-s-1``,
        ``syd-plan-essential``, ``syd-c-1``."""
        for spec, practice in zip(_PRACTICES, data.practices, strict=True):
            assert (practice.id, practice.name) == (spec.id, spec.name)
            mine = data.for_practice(practice.id)
            p = practice.id
            assert [(s.id, s.name) for s in mine.staff_users] == [
                (f"{p}-s-{i}", name) for i, name in enumerate(spec.staff, start=1)
            ]
            assert [(m.id, m.name, m.price, m.billing_cycle) for m in mine.membership_plans] == [
                (f"{p}-plan-{s.key}", s.name, Money.of(s.price, spec.currency), s.cycle)
                for s in spec.plans
            ]
            assert [(c.id, c.name, c.promo_code) for c in mine.campaigns] == [
                (f"{p}-c-{i}", c.name, c.promo_code) for i, c in enumerate(spec.campaigns, start=1)
            ]

    def test_a_discounted_campaign_per_practice_shows_in_its_report(self, data: DemoData) -> None:
        """In each practice the referral campaign (Active now, no discount) and the seasonal
        one (Ended, a second code, a percentage off its first billing dates) differ; every
        member who joined through the seasonal one holds its discount from date 0, and
        referral tracking over the last year gives it a positive discount given (0.00 for
        the referral campaign)."""
        store = InMemoryStore.from_objects(data.objects())
        year = DateRange(DEMO_NOW - timedelta(days=365), DEMO_NOW, "UTC")
        for spec, practice in zip(_PRACTICES, data.practices, strict=True):
            referral, seasonal = data.for_practice(practice.id).campaigns
            assert (referral.status_at(DEMO_NOW), seasonal.status_at(DEMO_NOW)) == (
                CampaignStatus.ACTIVE,
                CampaignStatus.ENDED,
            )
            terms = spec.campaigns[1]
            assert seasonal.codes == (terms.promo_code, *terms.other_codes)
            assert seasonal.discount is not None
            assert referral.discount is None
            assert (seasonal.discount.percent, seasonal.discount.cycles) == (
                terms.percent,
                terms.cycles,
            )
            joined = [m for m in data.members if m.campaign_id == seasonal.id]
            assert joined
            assert all(
                [(g.discount, g.first) for g in m.discounts][:1] == [(seasonal.discount, 0)]
                for m in joined
            )
            summaries = referral_tracking(
                store, practices=practice.id, revenue_range=year
            ).by_campaign
            given = {s.key: s.discount_given for s in summaries}
            zero = Money.zero(practice.currency)
            assert given[referral.id] == zero
            assert given[seasonal.id] is not None
            assert given[seasonal.id] > zero

    @pytest.mark.parametrize(
        "now",
        [DEMO_NOW, datetime(2026, 11, 25, 14, 0, tzinfo=UTC)],
        ids=["demo-now", "sydney-already-on-the-26th"],
    )
    def test_campaign_windows_are_local_midnights_before_the_local_today(
        self, now: datetime
    ) -> None:
        """A campaign runs from local midnight ``starts_days_ago`` days before the practice's
        own today (not UTC's) to local midnight ``ends_days_ago`` days before it, or on."""
        data = load_demo(now=now)
        for spec, practice in zip(_PRACTICES, data.practices, strict=True):
            tz = zone(practice.timezone)
            today = now.astimezone(tz).date()
            campaigns = data.for_practice(practice.id).campaigns
            for campaign, c in zip(campaigns, spec.campaigns, strict=True):
                start = campaign.active_from.astimezone(tz)
                assert (start.date(), start.time()) == (
                    today - timedelta(days=c.starts_days_ago),
                    datetime.min.time(),
                )
                if c.ends_days_ago is None:
                    assert campaign.active_until is None
                else:
                    assert campaign.active_until is not None
                    end = campaign.active_until.astimezone(tz)
                    assert (end.date(), end.time()) == (
                        today - timedelta(days=c.ends_days_ago),
                        datetime.min.time(),
                    )

    def test_a_few_hundred_members_per_practice(self, data: DemoData) -> None:
        """Each practice has 150 to 250 members, some with dependents."""
        for practice in data.practices:
            members = data.for_practice(practice.id).members
            assert 150 <= len(members) <= 250
            assert sum(bool(m.dependents) for m in members) >= 20

    def test_members_enrolled_over_eighteen_months(self, data: DemoData) -> None:
        """Enrolments spread over the 18 months before now, and start dates are local: the
        day of enrolment, or for a Pending member the 1st of the next month (so their first
        charge is not due yet)."""
        first = min(m.created_at for m in data.members)
        assert data.now - timedelta(days=548) <= first < data.now - timedelta(days=450)
        practices = {p.id: p for p in data.practices}
        for member in data.members:
            tz = zone(practices[member.practice_id].timezone)
            enrolled = member.created_at.astimezone(tz).date()
            if member.status is MembershipStatus.PENDING:
                following = (enrolled.replace(day=28) + timedelta(days=4)).replace(day=1)
                assert member.start_date == following > data.now.astimezone(tz).date()
            else:
                assert member.start_date == enrolled

    def test_references_point_to_the_same_practice(self, data: DemoData) -> None:
        """Plans, staff users and campaigns a member names belong to the member's practice."""
        owner = {p.id: p.practice_id for p in data.membership_plans}
        owner |= {s.id: s.practice_id for s in data.staff_users}
        owner |= {c.id: c.practice_id for c in data.campaigns}
        for member in data.members:
            assert owner[member.plan_id] == member.practice_id
            assert member.staff_user_id is not None
            assert owner[member.staff_user_id] == member.practice_id
            if member.campaign_id is not None:
                assert owner[member.campaign_id] == member.practice_id


class TestIds:
    @pytest.mark.parametrize(
        "field",
        [
            "practices",
            "staff_users",
            "membership_plans",
            "members",
            "payment_plans",
            "payments",
            "campaigns",
            "referrals",
            "payment_plan_templates",
        ],
    )
    def test_ids_unique_per_type(self, data: DemoData, field: str) -> None:
        """No two objects of one type share an id."""
        ids = [obj.id for obj in getattr(data, field)]
        assert ids
        assert len(ids) == len(set(ids))

    def test_ids_are_prefixed_by_practice(self, data: DemoData) -> None:
        """Every member id names its practice, e.g. ``syd-m-0001``."""
        assert data.members[0].id == "syd-m-0001"
        assert all(m.id.startswith(f"{m.practice_id}-m-") for m in data.members)

    def test_ids_count_from_one_in_creation_order(self, data: DemoData) -> None:
        """Per practice, members ``syd-m-0001``.., payment plans ``syd-pp-001``.. and
        referrals ``syd-r-001``.. count from one without gaps, in the dataset's order."""
        for practice in data.practices:
            p, mine = practice.id, data.for_practice(practice.id)
            for objects, stem, width in [
                (mine.members, "m", 4),
                (mine.payment_plans, "pp", 3),
                (mine.referrals, "r", 3),
            ]:
                assert [o.id for o in objects] == [
                    f"{p}-{stem}-{i:0{width}d}" for i in range(1, len(objects) + 1)
                ]

    def test_patient_ids_count_from_one_and_dependents_from_their_holder(
        self, data: DemoData
    ) -> None:
        """Account holders are ``syd-pat-0001``.. without gaps; a holder's dependents are
        ``<holder id>-d1``, ``-d2``.., sharing the holder's last name."""
        holders = _holders(data)
        families = [
            *((m.account_holder, m.dependents) for m in data.members),
            *((r.account_holder, r.dependents) for r in data.referrals),
        ]
        for practice in data.practices:
            p = practice.id
            ids = {h.id for h in holders if h.id.startswith(f"{p}-pat-")}
            assert ids == {f"{p}-pat-{i:04d}" for i in range(1, len(ids) + 1)}
        assert {h.id.split("-pat-")[0] for h in holders} == {"syd", "nyc"}
        for holder, dependents in families:
            last = holder.name.split(" ", 1)[1]
            assert [d.id for d in dependents] == [
                f"{holder.id}-d{j}" for j in range(1, len(dependents) + 1)
            ]
            assert all(d.name.split(" ", 1)[1] == last != d.name for d in dependents)
            assert len({d.name for d in dependents} | {holder.name}) == len(dependents) + 1

    def test_account_holders_have_an_email_and_most_a_phone(self, data: DemoData) -> None:
        """An account holder's email is ``first.last@<practice domain>`` in lower-case
        letters only (``O'Brien`` gives ``obrien``); most, not all, have a phone in the
        practice's local format. Dependents have neither."""
        letters = re.compile(r"[^a-z]")
        phone = {
            "syd": re.compile(r"\(02\) 5550 00\d\d"),
            "nyc": re.compile(r"\(212\) 555-01\d\d"),
        }
        domains = {spec.id: spec.email_domain for spec in _PRACTICES}
        holders = set(_holders(data))
        for holder in holders:
            practice_id = holder.id.split("-pat-")[0]
            first, last = (letters.sub("", part.lower()) for part in holder.name.split(" ", 1))
            assert holder.email == f"{first}.{last}@{domains[practice_id]}"
            assert holder.phone is None or phone[practice_id].fullmatch(holder.phone)
        assert any("'" in h.name for h in holders)
        with_phone = sum(h.phone is not None for h in holders) / len(holders)
        assert 0.6 < with_phone < 0.8
        dependents = [d for m in data.members for d in m.dependents]
        assert dependents
        assert all(d.email is None and d.phone is None for d in dependents)

    def test_ledger_ids_count_from_one_per_source_in_time_order(self, data: DemoData) -> None:
        """A member's or plan's ledger entries are ``<source>-p001``, ``-p002``.. in time order."""
        by_source: defaultdict[str, list[str]] = defaultdict(list)
        for payment in data.payments:
            by_source[payment.member_id or payment.payment_plan_id or ""].append(payment.id)
        for source, ids in by_source.items():
            assert ids == [f"{source}-p{i:03d}" for i in range(1, len(ids) + 1)]

    def test_a_patient_id_is_always_the_same_person(self, data: DemoData) -> None:
        """A patient appearing in several records is the same Patient value each time."""
        seen: dict[str, object] = {}
        people = [
            *(p for m in data.members for p in (m.account_holder, *m.dependents)),
            *(p.patient for p in data.payment_plans),
            *(p for r in data.referrals for p in (r.account_holder, *r.dependents)),
        ]
        for person in people:
            assert seen.setdefault(person.id, person) == person


class TestHistories:
    def test_every_history_is_legal(self, data: DemoData) -> None:
        """Every member, plan and referral history walks its lifecycle table in time order."""
        for member in data.members:
            MEMBERSHIP_LIFECYCLE.validate(member.history)
            assert attrs.evolve(member) == member  # re-runs every validator
        for plan in data.payment_plans:
            PAYMENT_PLAN_LIFECYCLE.validate(plan.history)
            assert attrs.evolve(plan) == plan
        for referral in data.referrals:
            REFERRAL_LIFECYCLE.validate(referral.history)
            assert attrs.evolve(referral) == referral

    @pytest.mark.parametrize("practice_id", ["syd", "nyc"])
    def test_every_status_present_in_each_practice(self, data: DemoData, practice_id: str) -> None:
        """Each practice has every member, plan and referral status and every payment type."""
        mine = data.for_practice(practice_id)
        assert {m.status for m in mine.members} == set(MembershipStatus)
        assert {p.status for p in mine.payment_plans} == set(PaymentPlanStatus)
        assert {p.payment_type for p in mine.payment_plans} == set(PaymentType)
        assert {r.status for r in mine.referrals} == set(ReferralStatus)

    def test_most_members_active(self, data: DemoData) -> None:
        """Active is the large majority; every other status is a minority."""
        counts = Counter(m.status for m in data.members)
        assert counts[MembershipStatus.ACTIVE] > 0.6 * len(data.members)
        assert counts[MembershipStatus.CANCELLED] < 0.25 * len(data.members)

    def test_histories_include_recoveries_and_resumes(self, data: DemoData) -> None:
        """Some members recovered from a failure, some resumed after a suspension."""
        walks = [tuple(c.to for c in m.history) for m in data.members]
        fa = (MembershipStatus.FAILED, MembershipStatus.ACTIVE)
        sa = (MembershipStatus.SUSPENDED, MembershipStatus.ACTIVE)
        assert any(any(pair == fa for pair in itertools.pairwise(w)) for w in walks)
        assert any(any(pair == sa for pair in itertools.pairwise(w)) for w in walks)

    def test_every_timestamp_before_now(self, data: DemoData) -> None:
        """Every change, attempt, payment, archive and campaign edge is strictly before now."""
        instants = list(_instants(data))
        assert len(instants) > 3000
        assert max(instants) < data.now


_MS, _PS, _RS = MembershipStatus, PaymentPlanStatus, ReferralStatus
_DECLINED = "charge failed: card declined"

#: The reason each kind of change is given in the demo's stories, by (from, to).
_REASONS: dict[str, dict[tuple[object, object], set[str]]] = {
    "members": {
        (None, _MS.PENDING): {"enrolled"},
        (_MS.PENDING, _MS.ACTIVE): {"first payment collected"},
        (_MS.FAILED, _MS.ACTIVE): {"retry succeeded"},
        (_MS.SUSPENDED, _MS.ACTIVE): {"resumed; payment collected"},
        (_MS.PENDING, _MS.FAILED): {_DECLINED, "charge failed: insufficient funds"},
        (_MS.ACTIVE, _MS.FAILED): {_DECLINED, "charge failed: insufficient funds"},
        (_MS.ACTIVE, _MS.SUSPENDED): set(_SUSPEND_REASONS),
        (_MS.ACTIVE, _MS.CANCELLED): set(_CANCEL_REASONS),
        # The dunning policy's escalations (their reasons name the day of the failure).
        (_MS.FAILED, _MS.SUSPENDED): {"dunning: a charge unpaid 14 days since it failed on <day>"},
        (_MS.SUSPENDED, _MS.CANCELLED): {
            "dunning: a charge unpaid 30 days since it failed on <day>"
        },
        (_MS.PENDING, _MS.CANCELLED): {"payment never set up"},
    },
    "payment_plans": {
        (None, _PS.PENDING): {"offered"},
        (_PS.PENDING, _PS.ACTIVE): {"card authorised", "instalments set up by the patient"},
        (_PS.PENDING, _PS.COMPLETED): {"last instalment paid"},
        (_PS.ACTIVE, _PS.COMPLETED): {"last instalment paid"},
        (_PS.FAILED, _PS.COMPLETED): {"last instalment paid"},
        (_PS.FAILED, _PS.ACTIVE): {"instalment paid"},
        (_PS.PENDING, _PS.FAILED): {_DECLINED},
        (_PS.ACTIVE, _PS.FAILED): {_DECLINED},
        (_PS.PENDING, _PS.CANCELLED): {"payment link expired"},
        (_PS.ACTIVE, _PS.CANCELLED): {
            "treatment discontinued; balance waived by the practice",
            "treatment not going ahead; hold released",
        },
        (_PS.FAILED, _PS.CANCELLED): {"unpaid after repeated attempts; practice to follow up"},
    },
    "referrals": {
        (None, _RS.PENDING): {"referred"},
        (_RS.PENDING, _RS.CONVERTED): {"became a member"},
        (_RS.PENDING, _RS.CANCELLED): {"did not join"},
    },
}


class TestStories:
    @pytest.mark.parametrize("table", sorted(_REASONS))
    def test_every_change_gives_the_reason_of_its_story(self, data: DemoData, table: str) -> None:
        """Each change's reason is one its move is told with (a member suspended by the
        dunning policy "dunning: a charge unpaid 14 days since ...", one never set up
        "payment never set up", ...); every such move and every reason occurs."""
        reasons = _REASONS[table]
        seen: defaultdict[tuple[object, object], set[str]] = defaultdict(set)
        for obj in getattr(data, table):
            for change in obj.history:
                move = (change.from_, change.to)
                reason = re.sub(r"\d{4}-\d{2}-\d{2}", "<day>", change.reason)
                assert reason in reasons.get(move, ()), (obj.id, move, change.reason)
                seen[move].add(reason)
        assert seen == reasons

    def test_only_holds_are_authorised_and_only_plans_set_up(self, data: DemoData) -> None:
        """A Hold becomes Active with "card authorised", an instalment plan with
        "instalments set up by the patient"; an Instant payment is never set up."""
        for plan in data.payment_plans:
            set_up = [
                c.reason for c in plan.history if (c.from_, c.to) == (_PS.PENDING, _PS.ACTIVE)
            ]
            expected = {
                PaymentType.HOLD: "card authorised",
                PaymentType.PLAN: "instalments set up by the patient",
            }.get(plan.payment_type)
            assert set_up in ([[], [expected]] if expected else [[]])


class TestPaymentPlans:
    def test_totals_and_instalments(self, data: DemoData) -> None:
        """Totals are $500-$15,000; Plan has 6, 12 or 24 instalments; Instant and Hold one."""
        for plan in data.payment_plans:
            assert Decimal(500) <= plan.total.amount <= Decimal(15_000)
            if plan.payment_type is PaymentType.PLAN:
                assert plan.instalment_count in (6, 12, 24)
            else:
                assert plan.instalment_count == 1

    def test_some_completed_plans_archived(self, data: DemoData) -> None:
        """A few Completed plans are archived, after they completed; others are not."""
        completed = [p for p in data.payment_plans if p.status is PaymentPlanStatus.COMPLETED]
        archived = [p for p in completed if p.is_archived]
        assert 0 < len(archived) < len(completed)
        for plan in archived:
            assert plan.archived_at is not None
            assert plan.archived_at > plan.history[-1].at

    def test_failed_plans_offer_follow_up(self, data: DemoData) -> None:
        """Every Failed plan offers resend-link and contact-patient actions."""
        failed = [p for p in data.payment_plans if p.status is PaymentPlanStatus.FAILED]
        assert failed
        assert all(len(p.follow_up_actions()) == 2 for p in failed)

    def test_member_plans_belong_to_members(self, data: DemoData) -> None:
        """A plan linked to a member is for that member's account holder, in the same practice."""
        members = {m.id: m for m in data.members}
        linked = [p for p in data.payment_plans if p.member_id is not None]
        assert linked
        for plan in linked:
            member = members[str(plan.member_id)]
            assert member.practice_id == plan.practice_id
            assert member.account_holder == plan.patient
            assert member.is_active_at(plan.created_at)


class TestLocalDates:
    def test_attempts_fall_on_local_due_dates_at_set_hours(self, data: DemoData) -> None:
        """An instalment's first attempt is on its due date in the practice's zone, at 10:xx
        for an instalment plan and 15:xx for a hold; an Instant payment is attempted 3 to 90
        minutes after the offer, and is due on the offer's local date."""
        zones = _zones(data)
        seen = set()
        for plan in data.payment_plans:
            tz = zones[plan.practice_id]
            due = {i.number: i.due_date for i in plan.schedule}
            first: dict[int, datetime] = {}
            for attempt in plan.attempts:
                first.setdefault(attempt.number, attempt.at)
            if plan.payment_type is PaymentType.INSTANT:
                assert due[1] == plan.created_at.astimezone(tz).date()
            for number, at in first.items():
                seen.add(plan.payment_type)
                if plan.payment_type is PaymentType.INSTANT:
                    assert timedelta(minutes=3) <= at - plan.created_at <= timedelta(minutes=90)
                    continue
                local = at.astimezone(tz)
                hour = 15 if plan.payment_type is PaymentType.HOLD else 10
                assert (local.date(), local.hour) == (due[number], hour), plan.id
        assert seen == set(PaymentType)

    def test_no_due_date_before_the_offer(self, data: DemoData) -> None:
        """No plan falls due before the local date it was offered on."""
        zones = _zones(data)
        for plan in data.payment_plans:
            offered = plan.created_at.astimezone(zones[plan.practice_id]).date()
            assert plan.schedule[0].due_date >= offered, plan.id

    def test_a_referral_starts_on_the_local_date_it_was_opened(self, data: DemoData) -> None:
        """A referral not converted starts on its opening's local date (a converted one
        takes its member's start date)."""
        zones = _zones(data)
        open_ones = [r for r in data.referrals if r.status is not ReferralStatus.CONVERTED]
        assert open_ones
        for referral in open_ones:
            local = referral.created_at.astimezone(zones[referral.practice_id])
            assert referral.start_date == local.date(), referral.id


class TestLedger:
    def test_plan_payments_match_attempts(self, data: DemoData) -> None:
        """Each instalment attempt has one ledger payment with its id, time, amount and outcome."""
        by_plan = defaultdict(list)
        for payment in data.payments:
            if payment.payment_plan_id is not None:
                by_plan[payment.payment_plan_id].append(payment)
        for plan in data.payment_plans:
            ledger = {p.id: p for p in by_plan.pop(plan.id, [])}
            assert len(ledger) == len(plan.attempts)
            for attempt in plan.attempts:
                payment = ledger[str(attempt.payment_id)]
                assert payment.kind is PaymentKind.CHARGE
                assert (payment.at, payment.amount, payment.succeeded) == (
                    attempt.at,
                    attempt.amount,
                    attempt.succeeded,
                )
        assert not by_plan

    def test_plan_paid_equals_succeeded_charges(self, data: DemoData) -> None:
        """A plan's succeeded ledger charges sum to ``paid`` and count ``paid_count``."""
        charges = defaultdict(list)
        for payment in data.payments:
            if payment.payment_plan_id is not None and payment.succeeded:
                assert payment.kind is PaymentKind.CHARGE
                charges[payment.payment_plan_id].append(payment.amount)
        for plan in data.payment_plans:
            mine = charges[plan.id]
            assert sum(mine, Money.zero(plan.total.currency)) == plan.paid
            assert len(mine) == plan.paid_count

    def test_no_source_net_negative(self, data: DemoData) -> None:
        """Refunds never exceed what was collected: every source's net is at least zero."""
        net: dict[tuple[str, str], Money] = {}
        for payment in data.payments:
            zero = Money.zero(payment.amount.currency)
            net[payment.source] = net.get(payment.source, zero) + payment.signed
            assert not net[payment.source].is_negative()

    def test_a_handful_of_refunds(self, data: DemoData) -> None:
        """Each practice has a few successful refunds, all on membership charges."""
        refunds = [p for p in data.payments if p.kind is PaymentKind.REFUND]
        per_practice = Counter(p.practice_id for p in refunds)
        assert set(per_practice) == {"syd", "nyc"}
        assert all(2 <= n <= 10 for n in per_practice.values())
        assert all(p.member_id is not None and p.succeeded for p in refunds)

    def test_ledger_in_time_order_and_in_practice_currency(self, data: DemoData) -> None:
        """The ledger is sorted by time and every amount is in its practice's currency."""
        currency = {p.id: p.currency for p in data.practices}
        assert [p.at for p in data.payments] == sorted(p.at for p in data.payments)
        assert all(p.amount.currency == currency[p.practice_id] for p in data.payments)

    def test_member_charges_agree_with_status(self, data: DemoData) -> None:
        """A charge is the price due of the latest billing date on or before its local day
        (the Family plans were repriced, their dependants' discount granted since and
        following the dependents added or removed); a
        succeeded one leaves the member Active, a failed one Failed."""
        members = {m.id: m for m in data.members}
        plans = {p.id: p for p in data.membership_plans}
        zones = {p.id: p.timezone for p in data.practices}
        repriced = discounted = moved = 0
        for payment in data.payments:
            if payment.member_id is None or payment.kind is not PaymentKind.CHARGE:
                continue
            member = members[payment.member_id]
            plan = plans[member.plan_id]
            day = local_day(payment.at, zones[member.practice_id])
            zone = zones[member.practice_id]
            billed = billing_dates(member, plan, through=day, timezone=zone, plans=plans)
            # A per-dependent grant counts the dependents added since the enrolment, less
            # those removed, as the billing date's local day starts.
            start = local_midnight(billed[-1], zone)
            held = len(member.dependents_before(start)) - len(member.first_dependents)
            grants = [
                attrs.evolve(g, units=g.units + held)
                if g.discount.basis is DiscountBasis.PER_DEPENDENT
                else g
                for g in member.discounts
            ]
            due = price_due(plan, len(billed) - 1, grants, on=billed[-1])
            assert payment.amount == due.due
            moved += held != 0
            repriced += payment.amount != plan.price
            discounted += due.discount.is_positive()
            expected = (
                MembershipStatus.ACTIVE
                if payment.outcome is PaymentOutcome.SUCCEEDED
                else MembershipStatus.FAILED
            )
            assert member.status_at(payment.at) is expected
        assert repriced > 100
        assert discounted > 50
        assert moved >= 8  # four members' dependents changed, charged since at a new price

    def test_status_changes_have_their_charge(self, data: DemoData) -> None:
        """Going Failed has a failed charge, becoming Active a succeeded one, at that instant."""
        charges = {
            (p.member_id, p.at, p.outcome)
            for p in data.payments
            if p.member_id is not None and p.kind is PaymentKind.CHARGE
        }
        for member in data.members:
            for change in member.history:
                if change.to is MembershipStatus.ACTIVE:
                    assert (member.id, change.at, PaymentOutcome.SUCCEEDED) in charges
                elif change.to is MembershipStatus.FAILED:
                    assert (member.id, change.at, PaymentOutcome.FAILED) in charges

    def test_active_members_paid_every_billing_date(self, data: DemoData) -> None:
        """An Active, never-suspended member has one succeeded charge per billing date so far."""
        plans = {p.id: p for p in data.membership_plans}
        zones = {p.id: p.timezone for p in data.practices}
        succeeded = Counter(
            p.member_id
            for p in data.payments
            if p.member_id is not None and p.kind is PaymentKind.CHARGE and p.succeeded
        )
        checked = 0
        for member in data.members:
            statuses = {c.to for c in member.history}
            if member.status is not MembershipStatus.ACTIVE or (
                MembershipStatus.SUSPENDED in statuses
            ):
                continue
            today = data.now.astimezone(zone(zones[member.practice_id])).date()
            plan = plans[member.plan_id]
            due = 0
            while plan.charge_date(member.start_date, due) <= today:
                due += 1
            assert succeeded[member.id] in (due - 1, due)
            checked += 1
        assert checked > 200


class TestReferrals:
    def test_converted_into_real_members_of_the_practice(self, data: DemoData) -> None:
        """A converted referral's member is in the same practice, with the same account
        holder; it joins the referral's campaign when that is still Active at the
        enrolment (only an Active campaign takes a sign-up), else none."""
        members = {m.id: m for m in data.members}
        campaigns = {c.id: c for c in data.campaigns}
        converted = [r for r in data.referrals if r.status is ReferralStatus.CONVERTED]
        assert len(converted) >= 10
        ended = 0
        for referral in converted:
            member = members[str(referral.member_id)]
            assert member.practice_id == referral.practice_id
            assert member.account_holder == referral.account_holder
            assert set(member.first_dependents) == set(referral.dependents)  # at enrolment
            assert referral.campaign_id is not None
            still = campaigns[referral.campaign_id].is_active_at(member.created_at)
            ended += not still
            assert (member.campaign_id, member.staff_user_id) == (
                referral.campaign_id if still else None,
                referral.staff_user_id,
            )
            assert member.start_date == referral.start_date
            assert member.created_at == referral.converted_at
        assert ended == 2  # syd-m-0172 and -0173: referred under syd-c-2, enrolled after it ended

    def test_referrers_are_other_active_members(self, data: DemoData) -> None:
        """Every referrer is a different member of the same practice, Active when referring."""
        members = {m.id: m for m in data.members}
        for referral in data.referrals:
            referrer = members[str(referral.referring_member_id)]
            assert referrer.id != referral.member_id
            assert referrer.practice_id == referral.practice_id
            assert referrer.is_active_at(referral.created_at)

    def test_campaign_and_staff_user_of_the_practice(self, data: DemoData) -> None:
        """Every referral has a staff user and a campaign active when it was opened."""
        staff = {s.id: s for s in data.staff_users}
        campaigns = {c.id: c for c in data.campaigns}
        for referral in data.referrals:
            assert staff[str(referral.staff_user_id)].practice_id == referral.practice_id
            campaign = campaigns[str(referral.campaign_id)]
            assert campaign.practice_id == referral.practice_id
            assert campaign.is_active_at(referral.created_at)


SYDNEY = zone("Australia/Sydney")


def _sydney(*wall: int) -> datetime:
    return local_instant(datetime(*wall), "Australia/Sydney")


class TestGeneratorTimes:
    """The generator's time helpers keep to their ranges: what keeps every timestamp legal."""

    def test_enrolments_happen_in_opening_hours(self, data: DemoData) -> None:
        """Members enrol between 08:00 and 17:59 local time, at every hour and minute of it."""
        local = [
            m.created_at.astimezone(zone(p.timezone))
            for p in data.practices
            for m in data.for_practice(p.id).members
        ]
        assert {t.hour for t in local} == set(range(8, 18))
        assert {t.minute for t in local} == set(range(60))

    @pytest.mark.parametrize(
        ("length", "calls"),
        [
            (timedelta(microseconds=1), 200),
            (timedelta(seconds=1), 200),
            (timedelta(minutes=1), 3000),
            (timedelta(hours=3), 200),
            (timedelta(days=1), 200),
            (timedelta(days=30), 200),
        ],
        ids=["1us", "1s", "1min", "3h", "1d", "30d"],
    )
    def test_between_stays_in_the_half_open_range(self, length: timedelta, calls: int) -> None:
        """``_between(start, end)`` is in ``[start, end)`` however short the range, also when
        ``end`` is itself an opening-hours minute (3,000 draws: one would land on it)."""
        builder = _Builder(_PRACTICES[0], random.Random(1), DEMO_NOW)
        end = _sydney(2026, 11, 20, 9, 0)
        start = end - length
        for _ in range(calls):
            assert start <= builder._between(start, end) < end

    @pytest.mark.parametrize("seed", [1, 2])
    def test_recent_steps_back_one_day_at_a_time_to_before_now(self, seed: int) -> None:
        """With ``now`` at 08:00, no opening-hours time of today is before it: ``_recent(0, 0)``
        is yesterday, strictly before ``now`` (3,000 draws: one would fall on 08:00 itself)."""
        now = _sydney(2026, 11, 25, 8, 0)
        builder = _Builder(_PRACTICES[0], random.Random(seed), now)
        for _ in range(3000):
            at = builder._recent(0, 0)
            assert at < now
            assert at.astimezone(SYDNEY).date() == date(2026, 11, 24)


@pytest.mark.parametrize(("days", "seed"), [(0, 3), (7, 7), (33, 19)])
def test_any_demo_is_billed_through_the_dunning_engine(days: int, seed: int) -> None:
    """For other seeds and instants too: at ``now`` the policy asks for nothing that fell
    due before that day but reminders (which the demo does not record) and the charges of
    members whose payment was never set up (still Pending as enrolled); every activation
    has its succeeded charge at its instant (a resume's included)."""
    now = DEMO_NOW + timedelta(days=days, hours=seed % 5)
    data = load_demo(now, seed=seed)
    plans = {p.id: p for p in data.membership_plans}
    zones = {p.id: p.timezone for p in data.practices}
    ledgers: dict[str, list[Payment]] = {}
    for payment in data.payments:
        if payment.member_id is not None:
            ledgers.setdefault(payment.member_id, []).append(payment)
    collected = {"first payment collected", "retry succeeded", "resumed; payment collected"}
    escalated = 0
    for member in data.members:
        ledger, tz = ledgers.get(member.id, []), zones[member.practice_id]
        for change in member.history:
            if change.reason in collected:
                assert any(p.at == change.at and p.succeeded for p in ledger), (member.id, change)
            escalated += change.reason.startswith("dunning: ")
        if len(member.history) == 1:  # enrolled, payment never set up
            continue
        for action in dunning_actions(
            member, plans[member.plan_id], ledger, at=now, timezone=tz, plans=plans
        ):
            if action.step is not DunningStep.REMIND:
                assert local_day(action.due_at, tz) == local_day(now, tz), (member.id, action)
    assert escalated > 0
