"""Campaigns and referrals: active windows, conversion, self-referral and the referral lifecycle."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from smilepass_core.domain import (
    BillingCycle,
    Campaign,
    Member,
    MembershipPlan,
    Patient,
    Referral,
    ReferralStatus,
    StatusChange,
    reward_referrer,
)
from smilepass_core.domain.billing import billing_statement
from smilepass_core.domain.discounts import Discount
from smilepass_core.errors import (
    InvalidTransition,
    InvalidValue,
    NaiveDatetime,
    OutOfOrderChange,
    RuleViolation,
)
from smilepass_core.money import Money
from smilepass_core.testing import strategies as sps

_R = ReferralStatus

#: The documented referral table, written out independently of the source.
ALLOWED: dict[ReferralStatus, set[ReferralStatus]] = {
    _R.PENDING: {_R.CONVERTED, _R.CANCELLED},
    _R.CONVERTED: set(),
    _R.CANCELLED: set(),
}

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
GRACE = Patient("pat-2", "Grace Hopper")


def _open(at: datetime = T0, **changes: object) -> Referral:
    fields: dict[str, object] = {
        "id": "r-1",
        "practice_id": "p-1",
        "account_holder": GRACE,
        "start_date": at.date(),
        "at": at,
        "referring_member_id": "m-1",
    }
    fields.update(changes)
    return Referral.open(**fields)  # type: ignore[arg-type]


def _campaign(**changes: object) -> Campaign:
    fields: dict[str, object] = {
        "id": "c-1",
        "practice_id": "p-1",
        "name": "Spring smiles",
        "promo_code": "SPRING25",
        "active_from": T0,
        "active_until": T0 + 30 * DAY,
    }
    fields.update(changes)
    return Campaign(**fields)  # type: ignore[arg-type]


def _move(referral: Referral, to: ReferralStatus, at: datetime, member: str) -> Referral:
    """Convert into ``member`` or cancel, as ``to`` says."""
    if to is _R.CONVERTED:
        return referral.convert(member_id=member, at=at)
    return referral.cancel(at=at)


class TestReferral:
    """A referral is Pending until it converts into a member or is cancelled."""

    def test_a_new_referral_is_pending(self) -> None:
        """Opening gives a Pending referral with no member and a 'referred' change."""
        referral = _open(
            dependents=(Patient("pat-3", "Kid"),), campaign_id="c-1", staff_user_id="s-1"
        )
        assert referral.status is _R.PENDING
        assert (referral.id, referral.practice_id) == ("r-1", "p-1")
        assert referral.account_holder == GRACE
        assert referral.start_date == T0.date()
        assert referral.dependents == (Patient("pat-3", "Kid"),)
        assert (referral.campaign_id, referral.staff_user_id) == ("c-1", "s-1")
        assert referral.member_id is None
        assert referral.converted_at is None
        assert referral.history == (StatusChange(T0, None, _R.PENDING, "referred"),)
        assert referral.referring_member_id == "m-1"

    def test_convert_sets_member_and_status_together(self) -> None:
        """Converting moves to Converted and sets member_id in the same new object."""
        referral = _open()
        converted = referral.convert(member_id="m-2", at=T0 + DAY)
        assert converted.status is _R.CONVERTED
        assert converted.member_id == "m-2"
        assert converted.converted_at == T0 + DAY
        assert converted.history[:-1] == referral.history
        assert converted.history[-1] == StatusChange(
            T0 + DAY, _R.PENDING, _R.CONVERTED, "became a member"
        )
        assert referral.member_id is None
        assert referral.status is _R.PENDING

    def test_cancel_leaves_no_member(self) -> None:
        """Cancelling moves to Cancelled without a member."""
        cancelled = _open().cancel(at=T0 + DAY)
        assert cancelled.status is _R.CANCELLED
        assert cancelled.history[-1] == StatusChange(
            T0 + DAY, _R.PENDING, _R.CANCELLED, "cancelled"
        )
        assert cancelled.member_id is None
        assert cancelled.converted_at is None

    @given(referral=sps.referrals())
    def test_member_id_is_set_exactly_when_converted(self, referral: Referral) -> None:
        """For any referral, member_id is set iff it is Converted, and never the referrer."""
        assert (referral.member_id is not None) is (referral.status is _R.CONVERTED)
        assert (referral.converted_at is not None) is (referral.status is _R.CONVERTED)
        if referral.member_id is not None:
            assert referral.member_id != referral.referring_member_id

    def test_a_member_id_on_a_pending_referral_is_refused(self) -> None:
        """A Pending or Cancelled referral with a member_id raises InvalidValue `member_id`."""
        for referral in (_open(), _open().cancel(at=T0 + DAY)):
            with pytest.raises(InvalidValue) as caught:
                attrs.evolve(referral, member_id="m-2")
            assert str(caught.value) == (
                "member_id: is set exactly when the referral is Converted (got 'm-2')"
            )
            assert (caught.value.field, caught.value.value) == ("member_id", "m-2")

    def test_a_converted_referral_without_member_is_refused(self) -> None:
        """A Converted referral built without member_id raises InvalidValue naming `member_id`."""
        converted = _open().convert(member_id="m-2", at=T0 + DAY)
        with pytest.raises(InvalidValue) as caught:
            attrs.evolve(converted, member_id=None)
        assert (
            str(caught.value)
            == "member_id: is set exactly when the referral is Converted (got None)"
        )

    def test_a_direct_construction_with_an_illegal_history_is_refused(self) -> None:
        """Building a Referral with a history the table forbids names the referral."""
        cancelled = _open().cancel(at=T0 + DAY)
        history = (*cancelled.history, StatusChange(T0 + DAY, _R.CANCELLED, _R.CONVERTED))
        with pytest.raises(InvalidTransition) as caught:
            attrs.evolve(cancelled, history=history, member_id="m-2")
        assert str(caught.value) == (
            "Referral r-1: cannot move from CANCELLED to CONVERTED; "
            "allowed from CANCELLED: none (terminal)"
        )
        assert caught.value.subject == "Referral r-1"

    def test_converting_into_the_referrer_is_refused(self) -> None:
        """A member cannot refer themselves: InvalidValue naming `referring_member_id`."""
        referral = _open(referring_member_id="m-1")
        snapshot = copy.deepcopy(referral)
        with pytest.raises(InvalidValue) as caught:
            referral.convert(member_id="m-1", at=T0 + DAY)
        assert str(caught.value) == (
            "referring_member_id: a member cannot refer themselves (got 'm-1')"
        )
        assert (caught.value.field, caught.value.value) == ("referring_member_id", "m-1")
        assert referral == snapshot

    def test_a_self_referral_built_directly_is_refused(self) -> None:
        """A converted referral rebuilt with its member as referrer raises InvalidValue."""
        converted = _open(referring_member_id=None).convert(member_id="m-5", at=T0 + DAY)
        with pytest.raises(InvalidValue, match=r"^referring_member_id: "):
            attrs.evolve(converted, referring_member_id="m-5")

    @pytest.mark.parametrize("member_id", ["", " m-2", "m-2 ", None, 7])
    def test_convert_needs_a_member_id(self, member_id: object) -> None:
        """Converting with a blank, padded or non-string member id raises InvalidValue."""
        with pytest.raises(InvalidValue, match=r"^member_id: "):
            _open().convert(member_id=member_id, at=T0 + DAY)  # type: ignore[arg-type]

    def test_a_naive_instant_is_refused(self) -> None:
        """Opening, converting or cancelling at a naive datetime raises NaiveDatetime."""
        naive = datetime(2026, 4, 2, 9)
        with pytest.raises(NaiveDatetime, match=r"^at: naive"):
            _open(at=naive, start_date=date(2026, 4, 2))
        with pytest.raises(NaiveDatetime, match=r"^at: naive"):
            _open().convert(member_id="m-2", at=naive)
        with pytest.raises(NaiveDatetime, match=r"^at: naive"):
            _open().cancel(at=naive)

    def test_start_date_must_be_a_date(self) -> None:
        """A datetime as start_date raises InvalidValue naming `start_date`."""
        with pytest.raises(InvalidValue, match=r"^start_date: "):
            _open(start_date=T0)

    @given(referral=sps.referrals(), data=st.data())
    def test_random_moves_follow_the_table_or_change_nothing(
        self, referral: Referral, data: st.DataObject
    ) -> None:
        """Random conversions and cancellations at random times append one change or raise."""
        for _ in range(data.draw(st.integers(1, 4))):
            to = data.draw(st.sampled_from([_R.CONVERTED, _R.CANCELLED]))
            last = referral.history[-1]
            at = last.at + timedelta(seconds=data.draw(st.integers(-86400, 86400)))
            snapshot = copy.deepcopy(referral)
            member = data.draw(sps.ids("member")) + "-new"
            if to not in ALLOWED[last.to]:
                with pytest.raises(InvalidTransition) as caught:
                    _move(referral, to, at, member)
                assert (caught.value.from_, caught.value.to) == (last.to, to)
                assert f"{last.to.name} to {to.name}" in str(caught.value)
            elif at < last.at:
                with pytest.raises(OutOfOrderChange):
                    _move(referral, to, at, member)
            else:
                moved = _move(referral, to, at, member)
                assert moved.history[:-1] == referral.history
                assert moved.history[-1] == StatusChange(at, last.to, to, moved.history[-1].reason)
                referral = moved
                continue
            assert referral == snapshot

    @given(referral=sps.referrals())
    def test_converted_and_cancelled_absorb(self, referral: Referral) -> None:
        """Every move out of Converted or Cancelled raises InvalidTransition naming both."""
        if referral.status is _R.PENDING:
            referral = referral.cancel(at=referral.created_at)
        at = referral.history[-1].at + DAY
        snapshot = copy.deepcopy(referral)
        with pytest.raises(InvalidTransition, match=f"{referral.status.name} to CONVERTED"):
            referral.convert(member_id="m-new", at=at)
        with pytest.raises(InvalidTransition, match=f"{referral.status.name} to CANCELLED"):
            referral.cancel(at=at)
        assert referral == snapshot


class TestCampaign:
    """A campaign is active over the half-open window [active_from, active_until)."""

    def test_the_window_is_half_open(self) -> None:
        """Active from active_from included to active_until excluded."""
        campaign = _campaign()
        assert not campaign.is_active_at(T0 - timedelta(microseconds=1))
        assert campaign.is_active_at(T0)
        assert campaign.is_active_at(T0 + 30 * DAY - timedelta(microseconds=1))
        assert not campaign.is_active_at(T0 + 30 * DAY)

    def test_no_end_is_open(self) -> None:
        """Without active_until, a campaign stays active from active_from on."""
        campaign = _campaign(active_until=None)
        assert campaign.is_active_at(T0 + 3650 * DAY)
        assert not campaign.is_active_at(T0 - DAY)

    def test_an_empty_window_is_never_active(self) -> None:
        """active_until equal to active_from is allowed and never active."""
        campaign = _campaign(active_until=T0)
        assert not campaign.is_active_at(T0)

    def test_an_end_before_the_start_is_refused(self) -> None:
        """active_until before active_from raises InvalidValue naming `active_until`."""
        until = T0 - timedelta(seconds=1)
        with pytest.raises(InvalidValue) as caught:
            _campaign(active_until=until)
        assert str(caught.value) == f"active_until: is before active_from (got {until!r})"
        assert (caught.value.field, caught.value.value) == ("active_until", until)

    @given(campaign=sps.campaigns(), probe=sps.instants())
    def test_is_active_at_matches_the_window(self, campaign: Campaign, probe: datetime) -> None:
        """Built from its window alone, is_active_at(t) is exactly active_from <= t <
        active_until, at any instant (with a history, the history decides:
        tests/test_campaigns.py)."""
        campaign = attrs.evolve(campaign, history=())
        until = campaign.active_until
        expected = campaign.active_from <= probe and (until is None or probe < until)
        assert campaign.is_active_at(probe) is expected
        if until is not None:
            assert not campaign.is_active_at(until)
            assert campaign.is_active_at(campaign.active_from) is (until > campaign.active_from)

    @pytest.mark.parametrize("field", ["active_from", "active_until"])
    def test_naive_window_edges_are_refused(self, field: str) -> None:
        """A naive window edge raises NaiveDatetime naming that field."""
        with pytest.raises(NaiveDatetime, match=rf"^{field}: naive"):
            _campaign(**{field: datetime(2026, 4, 1)})

    def test_a_naive_probe_is_refused(self) -> None:
        """is_active_at refuses a naive datetime."""
        with pytest.raises(NaiveDatetime, match="naive"):
            _campaign().is_active_at(datetime(2026, 4, 2))

    @pytest.mark.parametrize("field", ["name", "promo_code"])
    @pytest.mark.parametrize("value", ["", "   ", None])
    def test_name_and_promo_code_are_not_blank(self, field: str, value: object) -> None:
        """A blank name or promo code raises InvalidValue naming the field."""
        with pytest.raises(InvalidValue, match=rf"^{field}: "):
            _campaign(**{field: value})


class ReferralMachine(RuleBasedStateMachine):
    """A Referral driven by random conversions and cancellations, checked against a model."""

    def __init__(self) -> None:
        super().__init__()
        self.referral: Referral
        self.clock = T0
        self.status = _R.PENDING
        self.member_id: str | None = None
        self.changes: list[tuple[datetime, ReferralStatus]] = []

    @initialize(
        start=sps.instants(max_value=datetime(2029, 1, 1, tzinfo=UTC)),
        referrer=st.none() | st.sampled_from(["m-1", "m-2"]),
    )
    def open(self, start: datetime, referrer: str | None) -> None:
        """Open a Pending referral at a random instant, maybe with a referrer."""
        self.clock = start
        self.referral = _open(at=start, referring_member_id=referrer)
        self.changes = [(start, _R.PENDING)]

    @rule(gap=st.integers(0, 30 * 86400), member=st.sampled_from(["m-1", "m-2", "m-3"]))
    def convert(self, gap: int, member: str) -> None:
        """Convert into a member: refused if terminal or if the member is the referrer."""
        self.clock += timedelta(seconds=gap)
        before = copy.deepcopy(self.referral)
        if _R.CONVERTED not in ALLOWED[self.status]:
            with pytest.raises(InvalidTransition):
                self.referral.convert(member_id=member, at=self.clock)
        elif member == self.referral.referring_member_id:
            with pytest.raises(InvalidValue, match=r"^referring_member_id: "):
                self.referral.convert(member_id=member, at=self.clock)
        else:
            self.referral = self.referral.convert(member_id=member, at=self.clock)
            self.status, self.member_id = _R.CONVERTED, member
            self.changes.append((self.clock, _R.CONVERTED))
            return
        assert self.referral == before

    @rule(gap=st.integers(0, 30 * 86400))
    def cancel(self, gap: int) -> None:
        """Cancel: refused once terminal."""
        self.clock += timedelta(seconds=gap)
        before = copy.deepcopy(self.referral)
        if _R.CANCELLED not in ALLOWED[self.status]:
            with pytest.raises(InvalidTransition):
                self.referral.cancel(at=self.clock)
            assert self.referral == before
            return
        self.referral = self.referral.cancel(at=self.clock)
        self.status = _R.CANCELLED
        self.changes.append((self.clock, _R.CANCELLED))

    @invariant()
    def matches_the_model(self) -> None:
        """Status, member and history are the model's; member_id is set iff Converted."""
        assert self.referral.status is self.status
        assert self.referral.member_id == self.member_id
        assert (self.referral.member_id is not None) is (self.status is _R.CONVERTED)
        assert [(c.at, c.to) for c in self.referral.history] == self.changes
        for t, _ in self.changes:
            expected = [s for when, s in self.changes if when <= t][-1]
            assert self.referral.status_at(t) is expected


TestReferralMachine = ReferralMachine.TestCase


class TestRewardReferrer:
    """A converted referral credited to the member who referred, with the per-referral
    discount granted on the first reward (docs/domain.md, "Referral rewards")."""

    START = datetime(2027, 2, 1, tzinfo=UTC)
    FRIEND = Discount(
        "friend", "p-1", "Refer a friend", amount=Money.of("5.00", "AUD"), basis="per_referral",
        limit=3,
    )  # fmt: skip

    def _ada(self) -> Member:
        return Member.enrol(
            id="m-ada", practice_id="p-1", plan_id="gold", account_holder=Patient("pa", "Ada"),
            start_date=self.START.date(), at=self.START,
        ).activate(at=self.START)  # fmt: skip

    def _referred(self, id: str, converted: datetime, by: str = "m-ada") -> Referral:
        opened = Referral.open(
            id=id, practice_id="p-1", account_holder=Patient(f"p{id}", id),
            start_date=self.START.date(), at=self.START, referring_member_id=by,
        )  # fmt: skip
        return opened.convert(member_id=f"m-{id}", at=converted)

    def test_the_worked_example(self) -> None:
        """Gold at 30.00 from 1 February; 5.00 off per referral, at most three. Bo converts
        on 10 February, Cy exactly at midnight on 1 March (counted from 1 April), Di on
        15 March, Ed on 20 March (a fourth: over the limit)."""
        plan = MembershipPlan("gold", "p-1", "Gold", Money.of("30.00", "AUD"), BillingCycle.MONTHLY)
        ada = self._ada()
        for id, day in (("bo", (2, 10)), ("cy", (3, 1)), ("di", (3, 15)), ("ed", (3, 20))):
            converted = datetime(2027, *day, tzinfo=UTC)
            ada = reward_referrer(ada, self._referred(id, converted), self.FRIEND)
        assert [(g.discount.id, g.units) for g in ada.discounts] == [("friend", 0)]
        s = billing_statement(ada, plan, [], at=datetime(2027, 5, 1, tzinfo=UTC), timezone="UTC")
        assert [str(c.amount) for c in s.charges] == [
            "AUD 30.00", "AUD 25.00", "AUD 15.00", "AUD 15.00",
        ]  # fmt: skip

    def test_a_referral_credited_late_counts_from_the_next_date(self) -> None:
        """Cy converted on 1 March but is credited after Di (10 March), on 12 March
        (``at=``): both count from 1 April; at the conversion it would be out of order."""
        ada = reward_referrer(self._ada(), self._referred("di", datetime(2027, 3, 10, tzinfo=UTC)))
        cy = self._referred("cy", datetime(2027, 3, 1, tzinfo=UTC))
        with pytest.raises(InvalidValue, match="before the change before it"):
            reward_referrer(ada, cy)
        late = reward_referrer(ada, cy, at=datetime(2027, 3, 12, tzinfo=UTC))
        assert [r.referral_id for r in late.referral_rewards] == ["di", "cy"]
        assert late.rewards_before(datetime(2027, 4, 1, tzinfo=UTC)) == 2

    def test_a_campaigns_discount_is_granted_once_whatever_its_basis(self) -> None:
        """``apply_code`` grants one unit of a per-referral campaign discount (the
        rewards add to it), as of a flat one."""
        campaign = attrs.evolve(_campaign(), discount=self.FRIEND)
        joined = campaign.apply_code(
            Member.enrol(
                id="m-new", practice_id=campaign.practice_id, plan_id="gold",
                account_holder=Patient("pn", "New"), start_date=T0.date(), at=T0 + DAY,
            ),
            campaign.promo_code,
        )  # fmt: skip
        assert [(g.discount.id, g.units) for g in joined.discounts] == [("friend", 1)]

    def test_refusals(self) -> None:
        ada = self._ada()
        with pytest.raises(InvalidValue) as caught:
            reward_referrer(ada, self._referred("bo", self.START + DAY, by="m-other"))
        assert caught.value.field == "referral"
        elsewhere = attrs.evolve(self._referred("bo", self.START + DAY), practice_id="p-2")
        with pytest.raises(InvalidValue):
            reward_referrer(ada, elsewhere)
        pending = Referral.open(
            id="cy", practice_id="p-1", account_holder=Patient("pcy", "Cy"),
            start_date=self.START.date(), at=self.START, referring_member_id="m-ada",
        )  # fmt: skip
        with pytest.raises(RuleViolation) as refused:
            reward_referrer(ada, pending)
        assert (refused.value.rule, refused.value.field) == ("referral_not_converted", "referral")
        flat = attrs.evolve(self.FRIEND, basis="flat")
        with pytest.raises(InvalidValue) as wrong:
            reward_referrer(ada, self._referred("bo", self.START + DAY), flat)
        assert wrong.value.field == "discount"
        with pytest.raises(InvalidValue) as early:
            reward_referrer(ada, self._referred("bo", self.START + DAY), at=self.START)
        assert early.value.field == "at"
        once = reward_referrer(ada, self._referred("bo", self.START + DAY))
        assert once.discounts == ()
        assert once.referral_rewards[0].referral_id == "bo"
        with pytest.raises(InvalidValue, match="is already credited"):
            reward_referrer(once, self._referred("bo", self.START + DAY), self.FRIEND)
