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

from smilepass_core import CAMPAIGN_LIFECYCLE, Campaign, CampaignStatus, StatusChange
from smilepass_core.errors import InvalidTransition, InvalidValue, OutOfOrderChange
from smilepass_core.io.records import to_records
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


TestCampaignMachine = CampaignMachine.TestCase
