"""Campaigns: a status lifecycle with full history (Draft, Scheduled, Active, Paused, Ended),
a window-built campaign read as its window, and a stateful model check."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from smilepass_core import (
    CAMPAIGN_LIFECYCLE,
    Campaign,
    CampaignStatus,
    Member,
    Money,
    Patient,
    StatusChange,
)
from smilepass_core.domain import campaign_for_code, check_codes, check_members_plans
from smilepass_core.domain.discounts import Discount, check_discount_currency
from smilepass_core.errors import (
    CurrencyMismatch,
    InvalidRecord,
    InvalidTransition,
    InvalidValue,
    OutOfOrderChange,
    RuleViolation,
)
from smilepass_core.io.records import from_records, to_records
from smilepass_core.testing import strategies as sps

_C = CampaignStatus
T0 = datetime(2026, 6, 1, tzinfo=UTC)
DAY = timedelta(days=1)

#: docs/domain.md's campaign table, written out independently of the source.
ALLOWED: dict[CampaignStatus, set[CampaignStatus]] = {
    _C.DRAFT: {_C.SCHEDULED, _C.ACTIVE, _C.ENDED},
    _C.SCHEDULED: {_C.DRAFT, _C.ACTIVE, _C.ENDED},
    _C.ACTIVE: {_C.PAUSED, _C.ENDED},
    _C.PAUSED: {_C.ACTIVE, _C.ENDED},
    _C.ENDED: set(),
}
METHODS = {_C.SCHEDULED: "schedule", _C.ACTIVE: "activate", _C.PAUSED: "pause", _C.ENDED: "end"}


def _draft(at: datetime = T0) -> Campaign:
    return Campaign.draft(
        id="spring",
        practice_id="syd",
        name="Spring Smile Check",
        promo_code="SPRING26",
        active_from=at + 14 * DAY,
        active_until=at + 60 * DAY,
        at=at,
    )


def test_the_table_is_the_documented_one() -> None:
    assert {s: set(CAMPAIGN_LIFECYCLE.allowed(s)) for s in _C} == ALLOWED
    assert CAMPAIGN_LIFECYCLE.terminal == {_C.ENDED}


class TestWorkedExample:
    """docs/domain.md: drafted 1 June, scheduled 5 June, started 15 June, paused over
    1 to 8 July, ended 20 July (before its planned end)."""

    def test_the_story(self) -> None:
        c = _draft().schedule(at=T0 + 4 * DAY).activate(at=T0 + 14 * DAY)
        c = c.pause(at=T0 + 30 * DAY).activate(at=T0 + 37 * DAY).end(at=T0 + 49 * DAY)
        assert [s.to.value for s in c.history] == [
            "draft",
            "scheduled",
            "active",
            "paused",
            "active",
            "ended",
        ]
        assert [c.is_active_at(T0 + d * DAY) for d in (0, 10, 14, 29, 30, 36, 37, 48, 49)] == [
            False,
            False,
            True,
            True,
            False,
            False,
            True,
            True,
            False,
        ]
        assert c.status_at(T0 + 33 * DAY) is _C.PAUSED
        with pytest.raises(InvalidTransition):
            c.activate(at=T0 + 50 * DAY)  # Ended is terminal

    def test_a_window_is_its_history(self) -> None:
        """A campaign given only a window is Active from its start to its end."""
        c = Campaign("c", "syd", "Open day", "OPEN", T0, T0 + 7 * DAY)
        assert [(s.at, s.to) for s in c.history] == [(T0, _C.ACTIVE), (T0 + 7 * DAY, _C.ENDED)]
        open_ended = Campaign("c", "syd", "Always", "ALWAYS", T0)
        assert open_ended.status is _C.ACTIVE
        assert c == Campaign("c", "syd", "Open day", "OPEN", T0, T0 + 7 * DAY, c.history)


def test_a_window_history_follows_the_window_and_a_recorded_one_stays() -> None:
    """Changing a window-built campaign's window changes its history; a recorded history
    is kept as recorded, and only it is written to records."""
    c = Campaign("c", "syd", "Open day", "OPEN", T0, T0 + 7 * DAY)
    longer = attrs.evolve(c, active_until=T0 + 30 * DAY)
    assert longer.is_active_at(T0 + 10 * DAY)
    assert not longer.has_own_history
    recorded = _draft().activate(at=T0 + 14 * DAY)
    assert recorded.has_own_history
    moved = attrs.evolve(recorded, active_until=T0 + 90 * DAY)
    assert moved.history == recorded.history
    written = {r["id"]: r for r in to_records([c, recorded])["campaigns"]}
    assert written["c"]["history"] == []
    assert [h["status"] for h in written["spring"]["history"]] == ["draft", "active"]


@given(sps.instants(), st.integers(0, 400 * 86400), st.none() | st.integers(0, 400 * 86400))
def test_a_window_campaign_is_active_exactly_inside_its_window(
    start: datetime, probe: int, length: int | None
) -> None:
    """Oracle: ``active_from <= t < active_until`` (no end: open), at random instants."""
    until = None if length is None else start + timedelta(seconds=length)
    c = Campaign("c", "p", "C", "CODE", start, until)
    for t in (start - DAY, start, start + timedelta(seconds=probe), until):
        if t is None:
            continue
        assert c.is_active_at(t) == (start <= t and (until is None or t < until))


def test_as_of_cuts_the_history() -> None:
    """The campaign as it stood: Scheduled on 10 June, absent before it was drafted, the
    same object once every change is in."""
    c = _draft().schedule(at=T0 + 4 * DAY).activate(at=T0 + 14 * DAY)
    then = c.as_of(T0 + 9 * DAY)
    assert then is not None
    assert (then.status, len(then.history)) == (_C.SCHEDULED, 2)
    assert c.as_of(T0 - DAY) is None
    assert c.as_of(T0 + 20 * DAY) is c


def test_refusals() -> None:
    with pytest.raises(InvalidValue):
        Campaign("c", "syd", "C", "CODE", T0, T0 - DAY)
    with pytest.raises(OutOfOrderChange):
        _draft().schedule(at=T0 - DAY)
    with pytest.raises(InvalidTransition):
        _draft().pause(at=T0 + DAY)  # a Draft cannot be paused
    bad = (StatusChange(T0, None, _C.PAUSED, ""),)
    with pytest.raises(InvalidValue):  # a campaign cannot start Paused
        Campaign("c", "syd", "C", "CODE", T0, None, bad)


class CampaignMachine(RuleBasedStateMachine):
    """A Campaign driven by random moves on an advancing clock, checked against a model."""

    def __init__(self) -> None:
        super().__init__()
        self.campaign: Campaign
        self.clock = T0
        self.model: list[tuple[datetime, CampaignStatus]] = []

    @initialize(start=sps.instants(max_value=datetime(2029, 1, 1, tzinfo=UTC)))
    def draft(self, start: datetime) -> None:
        self.clock = start
        self.campaign = _draft(start)
        self.model = [(start, _C.DRAFT)]

    @rule(
        to=st.sampled_from(sorted(METHODS, key=lambda s: s.value)), gap=st.integers(0, 30 * 86400)
    )
    def move(self, to: CampaignStatus, gap: int) -> None:
        self.clock += timedelta(seconds=gap)
        before = copy.deepcopy(self.campaign)
        move = getattr(self.campaign, METHODS[to])
        if to in ALLOWED[self.model[-1][1]]:
            self.campaign = move(at=self.clock)
            self.model.append((self.clock, to))
        else:
            with pytest.raises(InvalidTransition):
                move(at=self.clock)
            assert self.campaign == before

    @invariant()
    def history_is_the_model(self) -> None:
        assert [(c.at, c.to) for c in self.campaign.history] == self.model

    @invariant()
    def active_at_each_change_is_the_model(self) -> None:
        for at, status in self.model:
            # The last change stamped at `at` decides (same-instant changes).
            last = [s for t, s in self.model if t == at][-1]
            assert self.campaign.is_active_at(at) == (last is _C.ACTIVE), status

    @invariant()
    def active_spells_hold_exactly_where_it_is_active(self) -> None:
        """At, and a microsecond before, every change: inside a spell exactly when Active."""
        spells = self.campaign.active_spells()
        assert all(end is None or start < end for start, end in spells)
        for at, _ in self.model:
            for t in (at - timedelta(microseconds=1), at):
                inside = any(s <= t and (e is None or t < e) for s, e in spells)
                assert inside == self.campaign.is_active_at(t)


TestCampaignMachine = CampaignMachine.TestCase


class TestCodes:
    """check_codes: no two campaigns of a practice share a code while both are Active."""

    def _window(self, id: str, code: str, start: int, end: int | None, **more: object) -> Campaign:
        until = None if end is None else T0 + end * DAY
        return attrs.evolve(Campaign(id, "syd", id.title(), code, T0 + start * DAY, until), **more)

    def test_a_shared_code_while_both_are_active_is_refused(self) -> None:
        """Spring runs days 0 to 10; a campaign coded " spring26 " from day 5 is refused
        naming the code, the other campaign and day 5; from day 10 it is not."""
        spring = self._window("spring", "SPRING26", 0, 10)
        again = self._window("again", " spring26 ", 5, None)
        with pytest.raises(RuleViolation) as caught:
            check_codes(again, [spring])
        error = caught.value
        assert (error.rule, error.field) == ("promo_code_in_use", "promo_code")
        assert error.context == {"code": " spring26 ", "campaign_id": "spring"}
        assert str(error) == (
            "campaign again's code ' spring26 ' is campaign spring's too, and both are Active"
            " at 2026-06-06T00:00:00+00:00: a sign-up's code must name one"
        )
        check_codes(self._window("again", "spring26", 10, None), [spring])

    def test_another_code_is_named_as_other_codes(self) -> None:
        spring = self._window("spring", "SPRING26", 0, None)
        other = self._window("other", "AUTUMN", 3, None, other_codes={"spring26"})
        with pytest.raises(RuleViolation) as caught:
            check_codes(other, [spring])
        assert caught.value.field == "other_codes"

    def test_what_is_not_a_clash(self) -> None:
        """Itself, another practice's campaign, another code, a campaign never Active, and
        one Active for no time at all (started and paused at one instant) share nothing."""
        spring = self._window("spring", "SPRING26", 0, None)
        paused = _draft().activate(at=T0 + 20 * DAY).pause(at=T0 + 20 * DAY)
        assert paused.active_spells() == ()
        check_codes(
            spring,
            [
                spring,
                attrs.evolve(spring, id="nyc-spring", practice_id="nyc"),
                self._window("autumn", "AUTUMN", 0, None),
                _draft(),
                attrs.evolve(paused, id="instant"),
            ],
        )

    def test_a_clash_kept_from_before_can_end_but_not_grow(self) -> None:
        """Spring and Again, both coded SPRING26 and Active since day 0 (kept before the
        rule): saved with ``kept``, Again may pause or end (no new clash), but not resume
        after a pause (a clash it did not have)."""
        spring = self._window("spring", "SPRING26", 0, None)
        again = self._window("again", "spring26", 0, None)
        paused = again.pause(at=T0 + 5 * DAY)
        check_codes(paused, [spring], kept=again)
        check_codes(again.end(at=T0 + 5 * DAY), [spring], kept=again)
        with pytest.raises(RuleViolation) as caught:
            check_codes(paused.activate(at=T0 + 9 * DAY), [spring], kept=paused)
        assert str(caught.value).endswith(
            f"both are Active at {(T0 + 9 * DAY).isoformat()}: a sign-up's code must name one"
        )
        with pytest.raises(RuleViolation):
            check_codes(paused, [spring])  # as a new campaign it clashes from day 0

    def test_spells_of_a_recorded_history(self) -> None:
        """Active from day 14, paused on day 20, resumed on day 25, ended on day 30."""
        moved = _draft().schedule(at=T0 + DAY).activate(at=T0 + 14 * DAY)
        moved = moved.pause(at=T0 + 20 * DAY).activate(at=T0 + 25 * DAY).end(at=T0 + 30 * DAY)
        assert moved.active_spells() == (
            (T0 + 14 * DAY, T0 + 20 * DAY),
            (T0 + 25 * DAY, T0 + 30 * DAY),
        )
        assert self._window("w", "W", 0, None).active_spells() == ((T0, None),)


# -- terms: codes, plans and a discount ------------------------------------------------------

_SPRING_OFF = Discount("spring-10", "syd", "Spring 10 %", percent="10", cycles=3)


def _terms(**changes: object) -> Campaign:
    """``_draft`` Active from T0 + 14 days, with another code, Silver and Gold, 10 % off."""
    campaign = _draft().activate(at=T0 + 14 * DAY)
    values: dict[str, object] = {
        "other_codes": {"spring-fb"},
        "plans": {"silver", "gold"},
        "discount": _SPRING_OFF,
    }
    return attrs.evolve(campaign, **(values | changes))


def _enrolled(plan_id: str = "gold", at: datetime = T0 + 20 * DAY, **changes: object) -> Member:
    member = Member.enrol(
        id="m1",
        practice_id="syd",
        plan_id=plan_id,
        account_holder=Patient("pt1", "Ada Lovelace"),
        start_date=at.date(),
        at=at,
    )
    return attrs.evolve(member, **changes)


class TestTerms:
    def test_codes_are_matched_without_case_or_spaces(self) -> None:
        campaign = _terms()
        assert campaign.codes == ("SPRING26", "spring-fb")
        assert [campaign.accepts(c) for c in ("spring26", " SPRING-FB ", "SPRING", 26)] == [
            True,
            True,
            False,
            False,
        ]
        assert [campaign.applies_to(p) for p in ("gold", "bronze")] == [True, False]
        assert _terms(plans=None).applies_to("bronze")

    def test_apply_code_records_the_campaign_and_grants_its_discount_once(self) -> None:
        joined = _terms().apply_code(_enrolled(), "Spring-FB")
        assert joined.campaign_id == "spring"
        assert [(g.discount, g.units, g.first) for g in joined.discounts] == [(_SPRING_OFF, 1, 0)]
        assert _terms().apply_code(joined, "SPRING26") == joined  # granted already
        plain = _terms(discount=None).apply_code(_enrolled(), "spring26")
        assert (plain.campaign_id, plain.discounts) == ("spring", ())

    @pytest.mark.parametrize(
        ("campaign", "member", "error", "field"),
        [
            (_terms(), _enrolled(), InvalidValue, "promo_code"),  # code "WINTER"
            (_terms(), _enrolled(practice_id="mel"), InvalidValue, "practice_id"),
            (_terms(), _enrolled(campaign_id="winter"), InvalidValue, "campaign_id"),
            (_terms(), _enrolled(at=T0 + DAY), RuleViolation, "campaign_id"),  # Draft then
            (_terms().end(at=T0 + 15 * DAY), _enrolled(), RuleViolation, "campaign_id"),
            (_terms(), _enrolled("bronze"), RuleViolation, "plan_id"),
        ],
    )
    def test_apply_code_refuses(
        self, campaign: Campaign, member: Member, error: type[Exception], field: str
    ) -> None:
        code = "WINTER" if field == "promo_code" else "SPRING26"
        with pytest.raises(error) as caught:
            campaign.apply_code(member, code)
        assert caught.value.field == field  # type: ignore[attr-defined]

    def test_an_ended_campaigns_code_is_refused_naming_its_status(self) -> None:
        ended = _terms().end(at=T0 + 15 * DAY)
        with pytest.raises(RuleViolation, match="when it is ended") as caught:
            ended.apply_code(_enrolled(), "SPRING26")
        assert caught.value.rule == "campaign_not_active"
        with pytest.raises(RuleViolation) as wrong_plan:
            _terms().apply_code(_enrolled("bronze"), "SPRING26")
        assert wrong_plan.value.rule == "campaign_plan"
        assert "it applies to gold, silver" in str(wrong_plan.value)

    def test_the_campaign_of_a_code(self) -> None:
        spring = _terms().end(at=T0 + 60 * DAY)
        autumn = attrs.evolve(
            Campaign("autumn", "syd", "Autumn", "spring26", T0 + 100 * DAY), discount=None
        )
        assert campaign_for_code([spring, autumn], " Spring26", at=T0 + 20 * DAY) is spring
        assert campaign_for_code([spring, autumn], "SPRING26", at=T0 + 101 * DAY) is autumn
        with pytest.raises(InvalidValue) as unknown:
            campaign_for_code([spring, autumn], "WINTER", at=T0)
        assert unknown.value.field == "promo_code"
        with pytest.raises(RuleViolation, match=r"campaign spring .* when it is draft"):
            campaign_for_code([spring], "spring-fb", at=T0 + DAY)
        twin = attrs.evolve(autumn, id="twin", active_from=T0 + 14 * DAY)
        with pytest.raises(InvalidValue, match="campaigns spring, twin"):
            campaign_for_code([spring, twin], "SPRING26", at=T0 + 20 * DAY)

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"other_codes": {"Spring26 "}}, "other_codes"),  # the promo code again
            ({"other_codes": {"a", "A"}}, "other_codes"),
            ({"other_codes": "spring-fb"}, "other_codes"),
            ({"other_codes": {""}}, "other_codes"),
            ({"plans": set()}, "plans"),
            ({"discount": "10 %"}, "discount"),
            ({"discount": attrs.evolve(_SPRING_OFF, practice_id="mel")}, "discount"),
        ],
    )
    def test_bad_terms_are_refused(self, changes: dict[str, object], field: str) -> None:
        with pytest.raises(InvalidValue) as caught:
            _terms(**changes)
        assert caught.value.field == field

    def test_a_discount_in_another_currency_is_named(self) -> None:
        fixed = attrs.evolve(_SPRING_OFF, percent=None, amount=Money.of("5", "USD"))
        check_discount_currency(
            [None, _SPRING_OFF, attrs.evolve(fixed, amount=None, percent="5")], "AUD"
        )
        with pytest.raises(CurrencyMismatch) as caught:
            check_discount_currency([fixed], "AUD")
        assert (caught.value.left, caught.value.right, caught.value.field) == (
            "USD",
            "AUD",
            "discount",
        )

    def test_a_narrowed_campaign_names_the_member_left_outside(self) -> None:
        joined = _terms().apply_code(_enrolled("silver"), "SPRING26")
        check_members_plans(_terms(plans={"silver"}), [joined])
        with pytest.raises(RuleViolation, match="member m1 joins campaign spring on plan silver"):
            check_members_plans(_terms(plans={"gold"}), [joined])

    @given(campaign=sps.campaigns(plan_ids=["gold", "silver"]))
    def test_generated_terms_round_trip_through_records(self, campaign: Campaign) -> None:
        (record,) = to_records([campaign])["campaigns"]
        assert record["other_codes"] == sorted(campaign.other_codes)
        assert (record["discount"] is None) is (campaign.discount is None)
        assert all(campaign.accepts(code) for code in campaign.codes)


@pytest.mark.parametrize("terms", ["10 %", ["x"], 5])
def test_a_campaign_record_whose_discount_is_not_a_record_is_refused(terms: object) -> None:
    """A ``discount`` that is not a record of its terms is an error naming it, not no
    discount."""
    practice = {"id": "syd", "name": "Harbour", "timezone": "UTC", "currency": "AUD"}
    (record,) = to_records([_draft()])["campaigns"]
    with pytest.raises(InvalidRecord, match=r"campaigns\[0\]\.discount"):
        from_records({"practices": [practice], "campaigns": [record | {"discount": terms}]})
