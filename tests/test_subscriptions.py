"""Subscription economics: MRR normalisation, movements that add up exactly, churn and
revenue retention, ARPU and LTV; every figure also computed by a brute-force oracle."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smilepass_core import (
    BillingCycle,
    DateRange,
    InMemoryStore,
    InvalidValue,
    Member,
    MembershipPlan,
    MembershipStatus,
    Money,
    Patient,
    Practice,
)
from smilepass_core.demo import DEMO_NOW, demo_store
from smilepass_core.kpi import Goals, KpiTargets
from smilepass_core.periods import Unit, add_units, local_day, local_midnight
from smilepass_core.queries import MemberQuery, ScopeQuery
from smilepass_core.reports import cohort_retention, revenue_cohorts
from smilepass_core.subscriptions import (
    MONTHLY_FACTORS,
    monthly_amount,
    mrr_movements,
    subscription_breakdown,
    subscription_metrics,
)
from smilepass_core.testing import strategies as sps

COUNTING = (MembershipStatus.ACTIVE, MembershipStatus.FAILED)
SEPTEMBER = DateRange(datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC), "UTC")


def _plan(cycle: BillingCycle = BillingCycle.MONTHLY, price: str = "30.00") -> MembershipPlan:
    return MembershipPlan("gold", "p", "Gold", Money.of(price, "AUD"), cycle)


def _member(n: int, joined: datetime) -> Member:
    member = Member.enrol(
        id=f"m{n:03}",
        practice_id="p",
        plan_id="gold",
        account_holder=Patient(f"pt{n}", "Ada Lovelace"),
        start_date=joined.date(),
        at=joined,
    )
    return member.activate(at=joined + timedelta(minutes=5))


# -- the oracle: written from the definitions, sharing nothing with the module -------------


def _status_before(member: Member, t: datetime) -> MembershipStatus | None:
    status = None
    for change in member.history:
        if change.at < t:
            status = change.to
    return status


def _plan_before(member: Member, t: datetime) -> str:
    """The plan of the last plan change strictly before ``t`` (else the enrolment's)."""
    plan = member.plan_changes[0].from_plan if member.plan_changes else member.plan_id
    for change in member.plan_changes:
        if change.at < t:
            plan = change.to_plan
    return plan


def _oracle_mrr(members: list[Member], plan: MembershipPlan, t: datetime) -> Money:
    """Members counting just before ``t``, times the plan's price a month, rounded half up."""
    each = Fraction(plan.price.minor) * MONTHLY_FACTORS[plan.billing_cycle]
    rounded = int(each) + (1 if each - int(each) >= Fraction(1, 2) else 0)
    counted = sum(1 for m in members if _status_before(m, t) in COUNTING)
    return Money.from_minor(rounded * counted, plan.price.currency)


def _oracle_moves(members: list[Member], span: DateRange) -> tuple[int, int, int]:
    """(new, reactivations, churns), counted from each change's own from_ and to."""
    new = back = out = 0
    for member in members:
        first = next((c.at for c in member.history if c.to in COUNTING), None)
        for change in member.history:
            if not span.start <= change.at < span.end:
                continue
            entering = change.to in COUNTING and change.from_ not in COUNTING
            leaving = change.to not in COUNTING and change.from_ in COUNTING
            if entering and change.at == first:
                new += 1
            elif entering:
                back += 1
            elif leaving:
                out += 1
    return new, back, out


class TestNormalisation:
    @pytest.mark.parametrize(
        ("cycle", "price", "monthly"),
        [
            (BillingCycle.WEEKLY, "10.00", "43.33"),
            (BillingCycle.FORTNIGHTLY, "10.00", "21.67"),
            (BillingCycle.MONTHLY, "49.90", "49.90"),
            (BillingCycle.ANNUALLY, "100.00", "8.33"),
            (BillingCycle.ANNUALLY, "0.06", "0.01"),  # 0.005 rounds half up
        ],
    )
    def test_worked_values(self, cycle: BillingCycle, price: str, monthly: str) -> None:
        assert str(monthly_amount(_plan(cycle, price)).amount) == monthly

    @given(sps.membership_plans())
    def test_within_half_a_minor_unit_of_the_exact_value(self, plan: MembershipPlan) -> None:
        exact = Fraction(plan.price.minor) * MONTHLY_FACTORS[plan.billing_cycle]
        assert abs(monthly_amount(plan).minor - exact) <= Fraction(1, 2)


class TestWorkedExample:
    """docs/metrics.md: 100 members at the start of September, 10 cancel, 5 join."""

    def _store(self) -> InMemoryStore:
        members = [_member(n, datetime(2026, 6, 1, tzinfo=UTC)) for n in range(100)]
        for n in range(10):
            members[n] = members[n].cancel(at=datetime(2026, 9, 10 + n, tzinfo=UTC))
        members += [_member(100 + n, datetime(2026, 9, 20, tzinfo=UTC)) for n in range(5)]
        return InMemoryStore.from_objects(
            [Practice("p", "Harbour", "UTC", "AUD"), _plan(), *members]
        )

    def test_the_figures(self) -> None:
        m = subscription_metrics(
            self._store(),
            practices="p",
            date_range=SEPTEMBER,
            now=datetime(2026, 10, 5, tzinfo=UTC),
        )
        assert (str(m.mrr.start), str(m.mrr.end)) == ("AUD 3,000.00", "AUD 2,850.00")
        assert (str(m.mrr.new), str(m.mrr.churn), m.mrr.reactivation.is_zero()) == (
            "AUD 150.00",
            "AUD 300.00",
            True,
        )
        assert (m.members_start, m.members_end, m.churned_members) == (100, 95, 10)
        assert (m.logo_churn, m.churn_event_rate) == (Decimal("10.00"), Decimal("10.00"))
        assert (m.grr, m.nrr, m.revenue_churn) == (
            Decimal("90.00"),
            Decimal("90.00"),
            Decimal("10.00"),
        )
        assert str(m.arpu) == "AUD 30.00"
        assert str(m.arr) == "AUD 34,200.00"
        assert str(m.ltv) == "AUD 295.89"  # 30.00 x (30 x 12 / 365) / 0.10

    def test_an_empty_start_is_undefined_not_zero(self) -> None:
        store = InMemoryStore.from_objects(
            [
                Practice("p", "Harbour", "UTC", "AUD"),
                _plan(),
                _member(1, datetime(2026, 9, 20, tzinfo=UTC)),
            ]
        )
        m = subscription_metrics(
            store, practices="p", date_range=SEPTEMBER, now=datetime(2026, 10, 5, tzinfo=UTC)
        )
        assert (m.members_start, m.logo_churn, m.grr, m.nrr, m.ltv) == (0, None, None, None, None)
        assert str(m.arpu) == "AUD 30.00"

    def test_practices_in_two_currencies_are_refused(self) -> None:
        store = demo_store()
        with pytest.raises(InvalidValue):
            subscription_metrics(store, practices=("syd", "nyc"), now=DEMO_NOW)
        with pytest.raises(InvalidValue):
            subscription_metrics(store, practices=(), now=DEMO_NOW)


@st.composite
def _members_and_span(draw: st.DrawFn) -> tuple[list[Member], MembershipPlan, DateRange, datetime]:
    plan = draw(sps.membership_plans(practice_id="p", currency="AUD"))
    members = draw(
        st.lists(
            sps.members(practice_id="p", plan_id=plan.id), max_size=12, unique_by=lambda m: m.id
        )
    )
    times = sorted({c.at for m in members for c in m.history}) or [datetime(2026, 1, 1, tzinfo=UTC)]
    near = st.sampled_from(times) | sps.instants()
    a, b, c = sorted(draw(st.lists(near, min_size=3, max_size=3)))
    return members, plan, DateRange(a, c, "UTC"), b


class TestProperties:
    @settings(max_examples=30)
    @given(_members_and_span())
    def test_movements_match_the_oracle_and_add_up(
        self, case: tuple[list[Member], MembershipPlan, DateRange, datetime]
    ) -> None:
        members, plan, span, _ = case
        moves = mrr_movements(members, {plan.id: plan}, span)
        mrr = monthly_amount(plan)
        assert moves.start == _oracle_mrr(members, plan, span.start)
        assert moves.end == _oracle_mrr(members, plan, span.end)
        new, back, out = _oracle_moves(members, span)
        assert (moves.new, moves.reactivation, moves.churn) == (mrr * new, mrr * back, mrr * out)
        assert moves.end == moves.start + moves.net

    @settings(max_examples=30)
    @given(_members_and_span())
    def test_a_range_split_in_two_adds_up(
        self, case: tuple[list[Member], MembershipPlan, DateRange, datetime]
    ) -> None:
        members, plan, span, middle = case
        plans = {plan.id: plan}
        whole = mrr_movements(members, plans, span)
        first = mrr_movements(members, plans, DateRange(span.start, middle, "UTC"))
        second = mrr_movements(members, plans, DateRange(middle, span.end, "UTC"))
        assert first.end == second.start
        for name in ("new", "churn", "reactivation", "expansion", "contraction"):
            assert getattr(whole, name) == getattr(first, name) + getattr(second, name)

    @settings(max_examples=15)
    @given(sps.datasets(), st.data())
    def test_the_store_figures_match_the_oracle(
        self, dataset: sps.Dataset, data: st.DataObject
    ) -> None:
        store = InMemoryStore.from_objects(dataset.objects())
        practice = data.draw(st.sampled_from(dataset.practices))
        now = data.draw(sps.boundaries(dataset))
        start = data.draw(sps.boundaries(dataset).filter(lambda t: t <= now))
        span = DateRange(start, now + timedelta(days=1), "UTC")
        m = subscription_metrics(store, practices=practice.id, date_range=span, now=now)
        members = [x for x in dataset.members if x.practice_id == practice.id]
        plans = {p.id: p for p in dataset.membership_plans}
        cohort = [x for x in members if _status_before(x, span.start) in COUNTING]
        stayed = [x for x in cohort if _status_before(x, now) in COUNTING]
        assert (m.members_start, m.churned_members) == (len(cohort), len(cohort) - len(stayed))

        def mrr(x: Member, t: datetime) -> Decimal:
            return monthly_amount(plans[_plan_before(x, t)]).amount

        start_mrr = sum((mrr(x, span.start) for x in cohort), Decimal(0))
        kept = sum((min(mrr(x, span.start), mrr(x, now)) for x in stayed), Decimal(0))
        if start_mrr:
            assert m.grr == (100 * kept / start_mrr).quantize(Decimal("0.01"))
        else:
            assert m.grr is None
        assert (m.logo_churn is None) == (not cohort)
        at_end = [x for x in members if _status_before(x, now) in COUNTING]
        assert m.members_end == len(at_end)
        assert m.mrr.start.amount == start_mrr
        assert m.mrr.end.amount == sum((mrr(x, now) for x in at_end), Decimal(0))
        kept_end = sum((mrr(x, now) for x in stayed), Decimal(0))
        if start_mrr:
            assert m.nrr == (100 * kept_end / start_mrr).quantize(Decimal("0.01"))
        mine = {k: p for k, p in plans.items() if p.practice_id == practice.id}
        whole = mrr_movements(members, mine, m.range)  # the range cut at now
        assert (m.mrr.new, m.mrr.churn, m.mrr.reactivation) == (
            whole.new,
            whole.churn,
            whole.reactivation,
        )
        assert (m.mrr.expansion, m.mrr.contraction) == (whole.expansion, whole.contraction)
        events = sum(
            1
            for x in members
            for c in x.history
            if span.start <= c.at < now and c.from_ in COUNTING and c.to not in COUNTING
        )
        assert m.churn_events == events
        assert m.churn_event_rate == (
            (100 * Decimal(events) / len(cohort)).quantize(Decimal("0.01")) if cohort else None
        )

        def half_up(q: Fraction) -> int:
            return int(q) + (1 if q - int(q) >= Fraction(1, 2) else 0)

        end_minor = sum((monthly_amount(plans[_plan_before(x, now)]).minor for x in at_end), 0)
        arpu = half_up(Fraction(end_minor, len(at_end))) if at_end else None
        assert (m.arpu.minor if m.arpu else None) == arpu
        churned = len(cohort) - len(stayed)
        if arpu is None or not churned:
            assert m.ltv is None
        else:
            months = Fraction((now - span.start) // timedelta(microseconds=1), 10**6) * 12
            months /= 365 * 86400
            assert m.ltv is not None
            assert m.ltv.minor == half_up(arpu * months * len(cohort) / churned)


class TestReadPath:
    """The figures are read as one count per plan and the members changed in the range."""

    def test_no_read_of_every_member(self) -> None:
        """On the demo, every member query subscription_metrics sends is a per-plan count
        at the range's start or the changed-in find; no query lists all the members."""
        store = demo_store()
        sent: list[tuple[str, MemberQuery]] = []
        members = store.members

        class Spy:
            def find(self, query: MemberQuery, **kw: object) -> object:
                sent.append(("find", query))
                return members.find(query, **kw)  # type: ignore[arg-type]

            def count(self, query: MemberQuery) -> int:
                sent.append(("count", query))
                return members.count(query)

            def __getattr__(self, name: str) -> object:
                return getattr(members, name)

        class SpyStore:
            def __getattr__(self, name: str) -> object:
                return Spy() if name == "members" else getattr(store, name)

        figures = subscription_metrics(
            SpyStore(),  # type: ignore[arg-type]
            practices="syd",
            date_range="year_to_date",
            now=DEMO_NOW,
        )
        plans = store.membership_plans.find(ScopeQuery(practices={"syd"}))
        start = figures.range.start
        assert sorted(q.form() for kind, q in sent if kind == "count") == [
            frozenset({"counting_at", "counting_plans"})
        ] * len(plans)
        assert {q.counting_at for kind, q in sent if kind == "count"} == {start}
        assert [q.form() for kind, q in sent if kind == "find"] == [frozenset({"changed_in"})]
        whole = subscription_breakdown(
            store, practices="syd", by="cohort", date_range="year_to_date", now=DEMO_NOW
        )
        assert figures.members_end == sum(g.members_end for g in whole.values())
        assert figures.mrr.end == sum((g.mrr.end for g in whole.values()), Money.zero("AUD"))


class TestPlanChanges:
    """docs/metrics.md: Ada upgrades from Gold (AUD 30.00) to Platinum (AUD 50.00) on
    10 September; Grace downgrades from Platinum to Gold on 20 September, then cancels on
    25 September; Alan changes plan while Suspended."""

    GOLD = MembershipPlan("gold", "p", "Gold", Money.of("30.00", "AUD"), BillingCycle.MONTHLY)
    PLATINUM = MembershipPlan(
        "platinum", "p", "Platinum", Money.of("50.00", "AUD"), BillingCycle.MONTHLY
    )

    def _store(self) -> InMemoryStore:
        june = datetime(2026, 6, 1, tzinfo=UTC)
        ada = _member(1, june).change_plan("platinum", at=datetime(2026, 9, 10, tzinfo=UTC))
        grace = attrs.evolve(_member(2, june), plan_id="platinum")
        grace = grace.change_plan("gold", at=datetime(2026, 9, 20, tzinfo=UTC))
        grace = grace.cancel(at=datetime(2026, 9, 25, tzinfo=UTC))
        alan = _member(3, june).suspend(at=datetime(2026, 8, 1, tzinfo=UTC))
        alan = alan.change_plan("platinum", at=datetime(2026, 9, 5, tzinfo=UTC))
        return InMemoryStore.from_objects(
            [Practice("p", "Harbour", "UTC", "AUD"), self.GOLD, self.PLATINUM, ada, grace, alan]
        )

    def test_the_movements(self) -> None:
        """Start: Ada 30 + Grace 50 = 80 (Alan is Suspended). Ada's upgrade expands by
        20; Grace's downgrade contracts by 20, her cancel churns her Gold 30. End: 50."""
        m = subscription_metrics(
            self._store(),
            practices="p",
            date_range=SEPTEMBER,
            now=datetime(2026, 10, 5, tzinfo=UTC),
        )
        moves = m.mrr
        assert [str(x) for x in (moves.start, moves.expansion, moves.contraction)] == [
            "AUD 80.00",
            "AUD 20.00",
            "AUD 20.00",
        ]
        assert [str(x) for x in (moves.churn, moves.new, moves.end)] == [
            "AUD 30.00",
            "AUD 0.00",
            "AUD 50.00",
        ]
        assert moves.start + moves.net == moves.end
        # GRR: Ada kept at most her 30, Grace nothing: 30 / 80; NRR: Ada's 50 / 80.
        assert (m.grr, m.nrr) == (Decimal("37.50"), Decimal("62.50"))

    def test_by_plan_groups_on_the_plan_at_the_end(self) -> None:
        groups = subscription_breakdown(
            self._store(),
            practices="p",
            by="plan",
            date_range=SEPTEMBER,
            now=datetime(2026, 10, 5, tzinfo=UTC),
        )
        assert {k: g.members_end for k, g in groups.items()} == {"gold": 0, "platinum": 1}
        assert str(groups["platinum"].mrr.expansion) == "AUD 20.00"  # Ada, now on Platinum
        assert str(groups["gold"].mrr.contraction) == "AUD 20.00"  # Grace, last on Gold

    @settings(max_examples=40)
    @given(st.data())
    def test_movements_add_up_with_plan_changes(self, data: st.DataObject) -> None:
        """MRR(end) = MRR(start) + net for members changing plan at random; each end
        equals a brute-force sum over the plans at the boundaries."""
        plans = {p.id: p for p in (self.GOLD, self.PLATINUM)}
        members = []
        for n in range(data.draw(st.integers(1, 5))):
            member = data.draw(sps.members(practice_id="p", plan_id="gold"))
            member = attrs.evolve(member, id=f"m{n}")
            at = member.history[0].at
            for gap in data.draw(st.lists(st.integers(0, 60 * 86400), max_size=3)):
                at += timedelta(seconds=gap)
                target = "platinum" if member.plan_id == "gold" else "gold"
                if member.status_at(at) is not MembershipStatus.CANCELLED:
                    member = member.change_plan(target, at=at)
            members.append(member)
        instants = sorted({c.at for m in members for c in (*m.history, *m.plan_changes)})
        a, b = sorted(
            data.draw(st.lists(st.sampled_from(instants) | sps.instants(), min_size=2, max_size=2))
        )
        moves = mrr_movements(members, plans, DateRange(a, b, "UTC"))
        assert moves.end == moves.start + moves.net

        def oracle(t: datetime) -> Money:
            counting = [m for m in members if _status_before(m, t) in COUNTING]
            return sum(
                (monthly_amount(plans[_plan_before(m, t)]) for m in counting), Money.zero("AUD")
            )

        assert (moves.start, moves.end) == (oracle(a), oracle(b))


#: The figures of a breakdown's groups that add up to the whole's.
ADDITIVE = ("members_start", "members_end", "churned_members", "churn_events", "arr")
MOVEMENTS = ("start", "end", "new", "expansion", "contraction", "churn", "reactivation")


class TestBreakdown:
    def test_the_worked_example_by_cohort_and_by_plan(self) -> None:
        """The 100 June members are one cohort (10 churned of 100: 10.00 %), the 5 joining
        in September another (not counting at the start: undefined churn)."""
        store = TestWorkedExample()._store()
        now = datetime(2026, 10, 5, tzinfo=UTC)
        cohorts = subscription_breakdown(
            store, practices="p", by="cohort", date_range=SEPTEMBER, now=now
        )
        assert list(cohorts) == ["2026-06", "2026-09"]
        june, september = cohorts["2026-06"], cohorts["2026-09"]
        assert (june.members_start, june.churned_members, june.logo_churn) == (
            100,
            10,
            Decimal("10.00"),
        )
        assert (str(june.mrr.end), june.nrr) == ("AUD 2,700.00", Decimal("90.00"))
        assert (september.members_start, september.members_end, september.logo_churn) == (
            0,
            5,
            None,
        )
        assert str(september.mrr.new) == "AUD 150.00"
        plans = subscription_breakdown(
            store, practices="p", by="plan", date_range=SEPTEMBER, now=now
        )
        whole = subscription_metrics(store, practices="p", date_range=SEPTEMBER, now=now)
        assert list(plans) == ["gold"]
        assert attrs.evolve(plans["gold"]) == whole

    def test_an_unknown_grouping_is_refused(self) -> None:
        with pytest.raises(InvalidValue) as info:
            subscription_breakdown(demo_store(), practices="syd", by="staff", now=DEMO_NOW)
        assert info.value.field == "by"

    @settings(max_examples=15)
    @given(sps.datasets(), st.data(), st.sampled_from(["plan", "cohort"]))
    def test_the_groups_add_up_to_the_whole(
        self, dataset: sps.Dataset, data: st.DataObject, by: str
    ) -> None:
        """Counts and money of the groups add up to the whole's; each cohort holds exactly
        the members who first counted in its month (an oracle over the histories)."""
        store = InMemoryStore.from_objects(dataset.objects())
        practice = data.draw(st.sampled_from(dataset.practices))
        now = data.draw(sps.boundaries(dataset))
        start = data.draw(sps.boundaries(dataset).filter(lambda t: t <= now))
        span = DateRange(start, now + timedelta(days=1), "UTC")
        kwargs = {"practices": practice.id, "date_range": span, "now": now}
        whole = subscription_metrics(store, **kwargs)
        groups = subscription_breakdown(store, by=by, **kwargs)
        for name in ADDITIVE[:-1]:
            assert sum(getattr(g, name) for g in groups.values()) == getattr(whole, name), name
        arr = sum((g.arr for g in groups.values()), Money.zero(whole.arr.currency))
        assert arr == whole.arr
        for name in MOVEMENTS:
            parts = (getattr(g.mrr, name) for g in groups.values())
            assert sum(parts, Money.zero(whole.mrr.start.currency)) == getattr(whole.mrr, name)
        if by == "cohort":  # an oracle: each cohort's counts from the histories
            expected: dict[str, tuple[int, int]] = {}
            for m in dataset.members:
                first = [c.at for c in m.history if c.to in COUNTING]
                if m.practice_id == practice.id and first and first[0] < now:
                    at_start = _status_before(m, span.start) in COUNTING
                    at_end = _status_before(m, now) in COUNTING
                    old = expected.get(f"{first[0]:%Y-%m}", (0, 0))
                    expected[f"{first[0]:%Y-%m}"] = (old[0] + at_start, old[1] + at_end)
            found = {k: (g.members_start, g.members_end) for k, g in groups.items()}
            assert found == expected

    def test_the_churn_goal_is_scaled_and_weighted(self) -> None:
        """2 % a month is 2.00 % for September; practices with 100 and 0 members at the
        start and goals of 2 % and 5 % give 2.00 % (weighted by the start cohort)."""
        store = TestWorkedExample()._store()
        now = datetime(2026, 10, 5, tzinfo=UTC)
        m = subscription_metrics(
            store, practices="p", date_range=SEPTEMBER, now=now, targets=Goals(churn=2)
        )
        assert m.churn_goal == Decimal("2.00")
        assert {"figure": "churn_goal", "value": Decimal("2.00"), "unit": "percent"} in (
            m.to_records()
        )
        assert (
            subscription_metrics(store, practices="p", date_range=SEPTEMBER, now=now).churn_goal
            is None
        )
        store.practices.add(Practice("q", "Quay", "UTC", "AUD"))
        targets = KpiTargets(default=Goals(churn=2), practices={"q": Goals(churn=5)})
        both = subscription_metrics(
            store, practices=["p", "q"], date_range=SEPTEMBER, now=now, targets=targets
        )
        assert both.churn_goal == Decimal("2.00")
        half = KpiTargets(practices={"q": Goals(churn=5)})
        none = subscription_metrics(
            store, practices=["p", "q"], date_range=SEPTEMBER, now=now, targets=half
        )
        assert none.churn_goal is None


def test_the_demo_identity_holds_for_every_preset() -> None:
    store = demo_store()
    for practice in ("syd", "nyc"):
        for preset in ("last_7_days", "last_month", "this_quarter", "year_to_date"):
            m = subscription_metrics(store, practices=practice, date_range=preset, now=DEMO_NOW)
            assert m.mrr.end == m.mrr.start + m.mrr.net
            assert m.members_end > 0
            assert m.arr == m.mrr.end * 12


class TestRevenueCohorts:
    def test_a_cohort_in_money(self) -> None:
        """Three people join in June at AUD 30.00; one cancels in July, one is suspended
        in August and resumes in September: 90.00, 60.00, 30.00, 60.00."""
        members = [_member(n, datetime(2026, 6, 10, tzinfo=UTC)) for n in range(3)]
        members[0] = members[0].cancel(at=datetime(2026, 7, 5, tzinfo=UTC))
        members[1] = members[1].suspend(at=datetime(2026, 8, 5, tzinfo=UTC))
        members[1] = members[1].activate(at=datetime(2026, 9, 5, tzinfo=UTC))
        store = InMemoryStore.from_objects(
            [Practice("p", "Harbour", "UTC", "AUD"), _plan(), *members]
        )
        (row,) = revenue_cohorts(store, now=datetime(2026, 10, 1, tzinfo=UTC)).rows
        assert (row.cohort, row.size, str(row.starting)) == (date(2026, 6, 1), 3, "AUD 90.00")
        assert [str(m.amount) for m in row.mrr] == ["90.00", "60.00", "30.00", "60.00"]
        assert [str(r) for r in row.revenue_retention] == ["100.00", "66.67", "33.33", "66.67"]

    @settings(max_examples=15)
    @given(sps.datasets(), st.data())
    def test_the_cohorts_of_people_in_money(
        self, dataset: sps.Dataset, data: st.DataObject
    ) -> None:
        """Each revenue cohort has the people of the member cohort, and its MRR at each
        month end is the brute-force sum of its counting memberships."""
        store = InMemoryStore.from_objects(dataset.objects())
        now = data.draw(sps.boundaries(dataset))
        money = revenue_cohorts(store, now=now)
        people = cohort_retention(store, now=now)
        assert [(r.practice, r.cohort, r.size, len(r.mrr)) for r in money.rows] == [
            (r.practice, r.cohort, r.size, len(r.active)) for r in people.rows
        ]
        plans = {p.id: p for p in dataset.membership_plans}
        zones = {p.id: p.timezone for p in dataset.practices}
        for row in money.rows:
            holders = set()
            for m in dataset.members:
                if m.practice_id != row.practice or m.first_activated_at is None:
                    continue
                firsts = [
                    x.first_activated_at
                    for x in dataset.members
                    if x.practice_id == row.practice
                    and x.account_holder.id == m.account_holder.id
                    and x.first_activated_at is not None
                    and x.first_activated_at < now
                ]
                if (
                    firsts
                    and local_day(min(firsts), zones[row.practice]).replace(day=1) == row.cohort
                ):
                    holders.add(m.account_holder.id)
            for k, mrr in enumerate(row.mrr):
                end = local_midnight(add_units(row.cohort, Unit.MONTH, k + 1), zones[row.practice])
                expected = sum(
                    (
                        monthly_amount(plans[_plan_before(m, end)])  # the plan at the month end
                        for m in dataset.members
                        if m.practice_id == row.practice
                        and m.account_holder.id in holders
                        and _status_before(m, end) in COUNTING
                    ),
                    Money.zero(row.currency),
                )
                assert mrr == expected


def test_the_text_shows_each_figure_of_the_worked_example() -> None:
    """render_subscriptions lays out the worked example's figures, signed movements."""
    from smilepass_core.io.text import render_subscriptions

    m = subscription_metrics(
        TestWorkedExample()._store(),
        practices="p",
        date_range=SEPTEMBER,
        now=datetime(2026, 10, 5, tzinfo=UTC),
    )
    lines = render_subscriptions(m).splitlines()
    assert lines[0] == f"Range: {SEPTEMBER}"
    table = {line[:29].strip(): line[29:].strip() for line in lines[4:]}
    assert table == {
        "MRR at the start": "AUD 3,000.00",
        "New": "+AUD 150.00",
        "Expansion": "AUD 0.00",
        "Contraction": "AUD 0.00",
        "Reactivation": "AUD 0.00",
        "Churn": "-AUD 300.00",
        "MRR at the end": "AUD 2,850.00",
        "ARR": "AUD 34,200.00",
        "Members counting, start / end": "100 / 95",
        "Churned members": "10",
        "Logo churn": "10.00 %",
        "Revenue churn": "10.00 %",
        "Gross revenue retention": "90.00 %",
        "Net revenue retention": "90.00 %",
        "ARPU": "AUD 30.00",
        "LTV": "AUD 295.89",
    }
