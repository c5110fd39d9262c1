"""Members: enrolment, moves through the membership lifecycle, and a stateful model check."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from smilepass_core.domain import (
    COUNTING_STATUSES,
    CountingSpan,
    DependentChange,
    Member,
    MembershipStatus,
    Patient,
    PlanChange,
    ReferralReward,
    StatusChange,
)
from smilepass_core.domain.discounts import AppliedDiscount, Discount
from smilepass_core.domain.lifecycle import check_successor
from smilepass_core.errors import (
    InvalidTransition,
    InvalidValue,
    NaiveDatetime,
    OutOfOrderChange,
    RuleViolation,
)
from smilepass_core.money import Money
from smilepass_core.testing import strategies as sps

_M = MembershipStatus

#: The documented membership table, written out independently of the source.
ALLOWED: dict[MembershipStatus, set[MembershipStatus]] = {
    _M.PENDING: {_M.ACTIVE, _M.FAILED, _M.CANCELLED},
    _M.ACTIVE: {_M.FAILED, _M.SUSPENDED, _M.CANCELLED},
    _M.FAILED: {_M.ACTIVE, _M.SUSPENDED, _M.CANCELLED},
    _M.SUSPENDED: {_M.ACTIVE, _M.CANCELLED},
    _M.CANCELLED: set(),
}

#: The default reason each named move records.
REASONS = {
    _M.ACTIVE: "payment collected",
    _M.FAILED: "charge failed",
    _M.SUSPENDED: "suspended by the practice",
    _M.CANCELLED: "cancelled",
}

#: The named move for each target status.
METHODS = {
    _M.ACTIVE: "activate",
    _M.FAILED: "fail",
    _M.SUSPENDED: "suspend",
    _M.CANCELLED: "cancel",
}

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ADA = Patient("pat-1", "Ada Lovelace")


def _enrol(at: datetime = T0, **changes: object) -> Member:
    fields: dict[str, object] = {
        "id": "m-1",
        "practice_id": "p-1",
        "plan_id": "gold",
        "account_holder": ADA,
        "start_date": at.date(),
        "at": at,
    }
    fields.update(changes)
    return Member.enrol(**fields)  # type: ignore[arg-type]


def _move(member: Member, to: MembershipStatus, at: datetime, *, named: bool) -> Member:
    """Move with the named method, or with `transition`."""
    if named:
        result: Member = getattr(member, METHODS[to])(at=at)
        return result
    return member.transition(to, at=at, reason="moved")


class TestEnrol:
    """`Member.enrol` makes a Pending member with one history entry."""

    def test_a_new_member_is_pending(self) -> None:
        """Enrolment gives a Pending member created at `at`, with an 'enrolled' change."""
        member = _enrol(dependents=(Patient("pat-2", "Byron"),), campaign_id="c-1")
        assert member.status is _M.PENDING
        assert member.created_at == T0
        assert member.history == (StatusChange(T0, None, _M.PENDING, "enrolled"),)
        assert member.first_activated_at is None
        assert member.dependents == (Patient("pat-2", "Byron"),)
        assert member.campaign_id == "c-1"

    def test_dependents_must_be_patients(self) -> None:
        """Dependents that are not a sequence of Patient raise InvalidValue naming `dependents`."""
        with pytest.raises(InvalidValue) as caught:
            _enrol(dependents=ADA)
        assert str(caught.value) == f"dependents: must be a sequence of Patient (got {ADA!r})"
        assert (caught.value.field, caught.value.value) == ("dependents", ADA)
        with pytest.raises(InvalidValue) as caught:
            _enrol(dependents=(ADA, "pat-2"))
        assert str(caught.value) == "dependents: must be a Patient (got 'pat-2')"
        assert (caught.value.field, caught.value.value) == ("dependents", "pat-2")
        with pytest.raises(InvalidValue) as caught:
            _enrol(dependents="pat-2")
        assert str(caught.value) == "dependents: must be a sequence of Patient (got 'pat-2')"

    def test_any_iterable_of_patients_is_kept_as_a_tuple(self) -> None:
        """Dependents given as a list or a generator are stored as a tuple, in order."""
        byron = Patient("pat-2", "Byron")
        assert _enrol(dependents=[ADA, byron]).dependents == (ADA, byron)
        assert _enrol(dependents=(p for p in (byron, ADA))).dependents == (byron, ADA)
        assert _enrol().dependents == ()

    def test_the_account_holder_must_be_a_patient(self) -> None:
        """An account holder that is not a Patient is refused, naming the field."""
        with pytest.raises(InvalidValue, match=r"^account_holder: must be a Patient"):
            _enrol(account_holder="pat-1")

    def test_start_date_must_be_a_date(self) -> None:
        """A datetime as start_date raises InvalidValue naming `start_date`."""
        with pytest.raises(InvalidValue, match=r"^start_date: .*not a datetime"):
            _enrol(start_date=T0)

    def test_a_naive_enrolment_instant_is_refused(self) -> None:
        """Enrolling at a naive datetime raises NaiveDatetime naming `at`."""
        with pytest.raises(NaiveDatetime, match=r"^at: naive"):
            _enrol(at=datetime(2026, 3, 1, 9), start_date=date(2026, 3, 1))

    def test_a_direct_construction_with_an_illegal_history_is_refused(self) -> None:
        """Building a Member with a history the table forbids raises InvalidTransition."""
        member = _enrol()
        history = (*member.history, StatusChange(T0, _M.PENDING, _M.SUSPENDED))
        with pytest.raises(InvalidTransition, match="PENDING to SUSPENDED") as caught:
            attrs.evolve(member, history=history)
        assert str(caught.value).startswith("Member m-1: cannot move from PENDING to SUSPENDED")
        assert caught.value.subject == "Member m-1"

    def test_a_direct_construction_with_no_history_is_refused(self) -> None:
        """Building a Member with an empty history raises InvalidValue naming `history`."""
        with pytest.raises(InvalidValue, match=r"^history: "):
            attrs.evolve(_enrol(), history=())


class TestMoves:
    """Each move appends one change or raises, leaving the member untouched."""

    @pytest.mark.parametrize(("to", "method"), list(METHODS.items()))
    def test_named_moves_from_pending(self, to: MembershipStatus, method: str) -> None:
        """From Pending, each named move lands in its status when the table allows it."""
        member = _enrol()
        at = T0 + timedelta(days=1)
        if to in ALLOWED[_M.PENDING]:
            moved = getattr(member, method)(at=at)
            assert moved.status is to
            assert moved.history[-1].at == at
            assert moved.history[-1].from_ is _M.PENDING
        else:
            with pytest.raises(InvalidTransition, match=f"PENDING to {to.name}"):
                getattr(member, method)(at=at)

    def test_a_transition_without_a_reason_records_an_empty_one(self) -> None:
        """`transition` with no reason records the change with reason ""."""
        at = T0 + timedelta(days=1)
        moved = _enrol().transition(_M.ACTIVE, at=at)
        assert moved.history[-1] == StatusChange(at, _M.PENDING, _M.ACTIVE, "")
        assert moved.history[-1].reason == ""

    def test_default_reasons_say_why(self) -> None:
        """The named moves record their default reasons."""
        at = T0 + timedelta(days=1)
        member = _enrol().activate(at=at).fail(at=at).suspend(at=at).activate(at=at).cancel(at=at)
        assert [c.reason for c in member.history] == [
            "enrolled",
            "payment collected",
            "charge failed",
            "suspended by the practice",
            "payment collected",
            "cancelled",
        ]

    @given(data=st.data())
    def test_random_moves_follow_the_table_or_change_nothing(self, data: st.DataObject) -> None:
        """Random targets at random (sometimes earlier) times append one exact change or raise."""
        member = data.draw(sps.members(max_changes=4))
        for _ in range(data.draw(st.integers(1, 10))):
            to = data.draw(st.sampled_from(list(MembershipStatus)))
            named = to in METHODS and data.draw(st.booleans())
            step = data.draw(st.integers(-5 * 86400, 30 * 86400))
            last = member.history[-1]
            at = last.at + timedelta(seconds=step)
            snapshot = copy.deepcopy(member)
            if to not in ALLOWED[last.to]:
                with pytest.raises(InvalidTransition) as caught:
                    _move(member, to, at, named=named)
                assert (caught.value.from_, caught.value.to) == (last.to, to)
                assert last.to.name in str(caught.value)
                assert to.name in str(caught.value)
                assert member.id in str(caught.value)
            elif at < last.at:
                with pytest.raises(OutOfOrderChange):
                    _move(member, to, at, named=named)
            else:
                moved = _move(member, to, at, named=named)
                assert len(moved.history) == len(member.history) + 1
                assert moved.history[:-1] == member.history
                reason = REASONS[to] if named else "moved"
                assert moved.history[-1] == StatusChange(at, last.to, to, reason)
                assert moved.status is to
                assert attrs.evolve(moved, history=member.history) == member
                assert member == snapshot
                member = moved
                continue
            assert member == snapshot

    @given(member=sps.members(), data=st.data())
    def test_cancelled_absorbs_every_move(self, member: Member, data: st.DataObject) -> None:
        """Once Cancelled, every move raises InvalidTransition and the member is unchanged."""
        at = member.history[-1].at + timedelta(days=data.draw(st.integers(0, 30)))
        if member.status is not _M.CANCELLED:
            member = member.cancel(at=at)
        snapshot = copy.deepcopy(member)
        for to in MembershipStatus:
            with pytest.raises(InvalidTransition, match=f"CANCELLED to {to.name}"):
                member.transition(to, at=at)
        for method in METHODS.values():
            with pytest.raises(InvalidTransition, match="none \\(terminal\\)"):
                getattr(member, method)(at=at)
        assert member == snapshot

    def test_a_move_at_a_naive_instant_is_refused(self) -> None:
        """A move at a naive datetime raises NaiveDatetime naming `at`."""
        with pytest.raises(NaiveDatetime, match=r"^at: naive"):
            _enrol().activate(at=datetime(2026, 3, 2))

    def test_a_move_before_the_last_change_is_refused(self) -> None:
        """A move dated before the last change raises OutOfOrderChange naming the member."""
        member = _enrol().activate(at=T0 + timedelta(days=3))
        with pytest.raises(OutOfOrderChange, match="Member m-1") as caught:
            member.fail(at=T0 + timedelta(days=2))
        assert caught.value.previous == T0 + timedelta(days=3)


class TestPlanChanges:
    """An upgrade and a downgrade, recorded, so that any past instant's plan reads back."""

    def test_a_change_is_recorded_and_read_back_at_any_instant(self) -> None:
        up, down = T0 + timedelta(days=30), T0 + timedelta(days=90)
        member = _enrol().activate(at=T0)
        moved = member.change_plan("platinum", at=up, reason="upgraded")
        moved = moved.change_plan("gold", at=down)
        assert (moved.plan_id, moved.first_plan_id) == ("gold", "gold")
        assert moved.plan_changes == (
            PlanChange(up, "gold", "platinum", "upgraded"),
            PlanChange(down, "platinum", "gold"),
        )
        assert [moved.plan_at(t) for t in (T0, up - timedelta(microseconds=1), up, down)] == [
            "gold",
            "gold",
            "platinum",
            "gold",
        ]
        assert (moved.plan_before(up), moved.plan_before(down)) == ("gold", "platinum")
        assert member.plan_changes == ()  # a transition returns a new object

    @given(sps.members(plan_id="gold"), st.lists(st.integers(0, 10**7), max_size=4))
    def test_a_later_change_never_changes_a_past_instants_plan(
        self, member: Member, gaps: list[int]
    ) -> None:
        """Each change leaves ``plan_at`` of every earlier instant as it was."""
        at = member.history[0].at
        for n, gap in enumerate(gaps):
            at += timedelta(seconds=gap)
            if member.status_at(at) is _M.CANCELLED:
                break
            probes = [at - timedelta(seconds=g) for g in (1, 3600, 10**6)]
            before = [member.plan_at(t) for t in probes]
            member = member.change_plan(f"plan-{n}", at=at)
            assert [member.plan_at(t) for t in probes] == before
            assert member.plan_at(at) == member.plan_id == f"plan-{n}"

    def test_as_of_cuts_the_plan_changes_too(self) -> None:
        """The member as it stood between two changes is on the plan of then, with only
        the changes made so far (a report at a past instant reads the plan of then)."""
        up, down = T0 + timedelta(days=30), T0 + timedelta(days=90)
        member = (
            _enrol().activate(at=T0).change_plan("platinum", at=up).change_plan("gold", at=down)
        )
        then = member.as_of(up + timedelta(days=1))
        assert then is not None
        assert (then.plan_id, len(then.plan_changes)) == ("platinum", 1)
        before = member.as_of(up - timedelta(microseconds=1))
        assert before is not None
        assert (before.plan_id, before.plan_changes) == ("gold", ())
        assert member.as_of(down) == member

    def test_refusals(self) -> None:
        member = _enrol().activate(at=T0)
        with pytest.raises(InvalidValue) as caught:
            member.change_plan("gold", at=T0 + timedelta(days=1))
        assert caught.value.field == "to_plan"
        with pytest.raises(InvalidValue) as caught:
            member.change_plan("platinum", at=T0 - timedelta(days=1))
        assert "enrolled" in str(caught.value)
        moved = member.change_plan("platinum", at=T0 + timedelta(days=5))
        with pytest.raises(InvalidValue):
            moved.change_plan("silver", at=T0 + timedelta(days=4))
        cancelled = member.cancel(at=T0 + timedelta(days=2))
        with pytest.raises(RuleViolation) as refused:
            cancelled.change_plan("platinum", at=T0 + timedelta(days=3))
        assert refused.value.rule == "plan_change_after_cancel"
        earlier = cancelled.change_plan("platinum", at=T0 + timedelta(days=1))  # before it
        assert earlier.plan_id == "platinum"
        later = member.change_plan("platinum", at=T0 + timedelta(days=3))
        with pytest.raises(RuleViolation) as refused:
            later.cancel(at=T0 + timedelta(days=2))  # a change after the cancel, by the back door
        assert refused.value.field == "plan_changes"

    def test_counting_spans_worked(self) -> None:
        """Active on Gold, upgraded, Failed (still counting), Suspended, resumed, and a
        downgrade at the very instant of the resume: one span per plan and stretch."""
        day = [T0 + timedelta(days=n) for n in range(8)]
        member = (
            _enrol()
            .activate(at=day[1])
            .change_plan("platinum", at=day[2])
            .fail(at=day[3])
            .suspend(at=day[4])
            .change_plan("gold", at=day[5])  # while not counting: moves no span
            .activate(at=day[6])
            .change_plan("platinum", at=day[6])
        )
        assert member.counting_spans() == (
            CountingSpan("gold", day[1], day[2]),
            CountingSpan("platinum", day[2], day[4]),
            CountingSpan("platinum", day[6], None),  # the Gold stretch [6, 6] holds no boundary
        )
        assert (member.counts_before(day[4]), member.counts_before(day[5])) == (True, False)

    @given(sps.datasets(max_practices=1))
    def test_counting_spans_hold_exactly_the_counting_boundaries(
        self, dataset: sps.Dataset
    ) -> None:
        """At every boundary near an event a member counts on plan P exactly when one
        span on P holds it (``start < B <= end``), and no two spans ever do."""
        for member in dataset.members:
            spans = member.counting_spans()
            events = [c.at for c in member.history] + [c.at for c in member.plan_changes]
            for at in events:
                for b in (at - timedelta(microseconds=1), at, at + timedelta(microseconds=1)):
                    holding = [s for s in spans if s.start < b and (s.end is None or b <= s.end)]
                    assert len(holding) <= 1
                    counts = member.status_before(b) in COUNTING_STATUSES
                    assert [s.plan_id for s in holding] == (
                        [member.plan_before(b)] if counts else []
                    )

    def test_a_history_that_does_not_chain_is_refused(self) -> None:
        member = _enrol()
        change = PlanChange(T0 + timedelta(days=1), "gold", "platinum")
        with pytest.raises(InvalidValue) as caught:
            attrs.evolve(member, plan_changes=(change,))  # plan_id still gold
        assert caught.value.field == "plan_id"
        other = PlanChange(T0 + timedelta(days=2), "silver", "gold")
        with pytest.raises(InvalidValue):
            attrs.evolve(member, plan_changes=(change, other))
        with pytest.raises(InvalidValue):
            attrs.evolve(member, plan_changes=change)  # not a sequence
        with pytest.raises(InvalidValue):
            attrs.evolve(member, plan_changes=["gold"])  # not PlanChanges
        with pytest.raises(InvalidValue):
            PlanChange(T0, "gold", "gold")
        with pytest.raises(NaiveDatetime):
            PlanChange(datetime(2026, 1, 1), "gold", "platinum")


class TestGrants:
    """Discounts granted to a membership: appended, one per discount, of its practice."""

    FAMILY = Discount("family", "p-1", "Family", percent=10, basis="per_dependent")
    SPRING = Discount("spring", "p-1", "Spring", amount=Money.of("5.00", "AUD"), cycles=3)

    def test_grants_append_with_their_units_and_first_date(self) -> None:
        member = _enrol().grant(self.FAMILY, units=2).grant(self.SPRING, first=4)
        assert member.discounts == (
            AppliedDiscount(self.FAMILY, 2, 0),
            AppliedDiscount(self.SPRING, 1, 4),
        )

    def test_a_second_grant_of_one_discount_is_refused(self) -> None:
        with pytest.raises(InvalidValue) as caught:
            _enrol().grant(self.SPRING).grant(self.SPRING, first=2)
        assert str(caught.value) == "discounts: is granted twice (got 'spring')"

    def test_another_practices_discount_is_refused(self) -> None:
        theirs = attrs.evolve(self.SPRING, practice_id="p-2")
        with pytest.raises(InvalidValue) as caught:
            _enrol().grant(theirs)
        assert str(caught.value) == "discounts: is practice p-2's, not p-1's (got 'spring')"

    def test_a_cancelled_member_takes_no_grant(self) -> None:
        cancelled = _enrol().cancel(at=T0 + timedelta(days=1))
        with pytest.raises(RuleViolation) as caught:
            cancelled.grant(self.SPRING)
        assert (caught.value.rule, caught.value.field) == ("grant_after_cancel", "discounts")
        assert cancelled.discounts == ()

    @pytest.mark.parametrize("value", ["spring", [SPRING], None])
    def test_discounts_must_be_applied_discounts(self, value: object) -> None:
        with pytest.raises(InvalidValue, match=r"^discounts: must be a sequence of AppliedDis"):
            attrs.evolve(_enrol(), discounts=value)


DEE = Patient("pat-2", "Dee Lovelace")
DAN = Patient("pat-3", "Dan Lovelace", email="dan@example.com")
DAY = timedelta(days=1)


class TestDependentChanges:
    """Dependents added and removed over time, recorded and read back at any instant."""

    def test_changes_are_recorded_and_read_back(self) -> None:
        member = _enrol(dependents=(DEE,))
        member = member.add_dependent(DAN, at=T0 + 3 * DAY, reason="newborn")
        member = member.remove_dependent(DEE.id, at=T0 + 5 * DAY, reason="moved out")
        assert member.dependents == (DAN,)
        assert member.dependent_changes == (
            DependentChange(T0 + 3 * DAY, DAN, True, "newborn"),
            DependentChange(T0 + 5 * DAY, DEE, False, "moved out"),
        )
        assert member.first_dependents == (DEE,)
        assert member.dependents_at(T0) == (DEE,)
        assert member.dependents_at(T0 + 3 * DAY) == (DEE, DAN)
        assert member.dependents_before(T0 + 3 * DAY) == (DEE,)
        assert member.dependents_before(T0 + 5 * DAY) == (DEE, DAN)
        assert member.dependents_at(T0 + 5 * DAY) == (DAN,)
        assert member.dependents_before(T0 + 6 * DAY) == (DAN,)
        cut = member.as_of(T0 + 4 * DAY)
        assert cut is not None
        assert (cut.dependents, cut.dependent_changes) == ((DEE, DAN), member.dependent_changes[:1])

    def test_a_member_without_changes_has_its_dependents_at_any_instant(self) -> None:
        member = _enrol(dependents=(DEE,))
        assert member.first_dependents == member.dependents_at(T0 - DAY) == (DEE,)
        assert member.dependents_before(T0) == (DEE,)

    def test_a_dependent_removed_and_added_again_reads_back(self) -> None:
        member = _enrol(dependents=(DEE, DAN))
        member = member.remove_dependent(DEE.id, at=T0 + DAY)
        member = member.add_dependent(DEE, at=T0 + 2 * DAY)
        assert member.dependents == (DAN, DEE)
        assert set(member.first_dependents) == {DEE, DAN}
        assert member.dependents_at(T0 + DAY) == (DAN,)

    @pytest.mark.parametrize(
        ("change", "field", "message"),
        [
            (lambda m: m.add_dependent(DEE, at=T0 + DAY), "patient", "is already a dependent"),
            (lambda m: m.add_dependent(ADA, at=T0 + DAY), "patient", "is the account holder"),
            (lambda m: m.add_dependent("pat-9", at=T0 + DAY), "patient", "must be a Patient"),
            (lambda m: m.remove_dependent(DAN.id, at=T0 + DAY), "patient_id", "is not a dep"),
            (lambda m: m.add_dependent(DAN, at=T0 - DAY), "dependent_changes", "before member"),
            (
                lambda m: m.add_dependent(DAN, at=T0 + 2 * DAY).remove_dependent(
                    DEE.id, at=T0 + DAY
                ),
                "dependent_changes",
                "before the change before it",
            ),
        ],
    )
    def test_bad_changes_are_refused(self, change: object, field: str, message: str) -> None:
        member = _enrol(dependents=(DEE,))
        with pytest.raises(InvalidValue) as caught:
            change(member)  # type: ignore[operator]
        assert caught.value.field == field
        assert message in str(caught.value)

    def test_a_cancelled_member_takes_no_dependent_change(self) -> None:
        cancelled = _enrol(dependents=(DEE,)).cancel(at=T0 + DAY)
        for change in (
            lambda: cancelled.add_dependent(DAN, at=T0 + 2 * DAY),
            lambda: cancelled.remove_dependent(DEE.id, at=T0 + 2 * DAY),
        ):
            with pytest.raises(RuleViolation) as caught:
                change()
            assert (caught.value.rule, caught.value.field) == (
                "dependent_change_after_cancel",
                "at",
            )
        added = _enrol(dependents=(DEE,)).add_dependent(DAN, at=T0 + 2 * DAY)
        with pytest.raises(RuleViolation) as late:
            added.cancel(at=T0 + DAY)  # cancelled before a change it keeps
        assert (late.value.rule, late.value.field) == (
            "dependent_change_after_cancel",
            "dependent_changes",
        )

    def test_changes_must_lead_to_the_dependents(self) -> None:
        added = _enrol(dependents=(DEE,)).add_dependent(DAN, at=T0 + DAY)
        with pytest.raises(InvalidValue) as caught:
            attrs.evolve(added, dependents=(DEE,))  # Dan's addition not reflected
        assert caught.value.field == "dependents"
        with pytest.raises(InvalidValue, match="is a dependent twice"):
            attrs.evolve(  # removed, yet still listed: she would count twice before it
                _enrol(dependents=(DEE,)),
                dependent_changes=(DependentChange(T0 + DAY, DEE, False),),
            )
        with pytest.raises(InvalidValue, match="is added while already a dependent"):
            attrs.evolve(added, dependent_changes=added.dependent_changes * 2)

    def test_a_dependent_whose_record_was_edited_is_removed_by_id(self) -> None:
        added = _enrol().add_dependent(DAN, at=T0 + DAY)
        edited = attrs.evolve(added, dependents=(attrs.evolve(DAN, email="dan@new.example"),))
        removed = edited.remove_dependent(DAN.id, at=T0 + 2 * DAY)
        assert removed.dependents == ()
        assert removed.dependents_at(T0 + DAY) == (DAN,)

    def test_a_grant_counts_the_dependents_at_the_enrolment_by_default(self) -> None:
        """Units by default: 1 flat, the first dependents per dependent (also after a
        dependent change), 0 per referral."""
        family = Discount("fam", "p-1", "Family", percent=10, basis="per_dependent")
        friend = Discount("friend", "p-1", "Friend", percent=5, basis="per_referral")
        spring = Discount("spring", "p-1", "Spring", percent=5)
        member = _enrol(dependents=(DEE, DAN)).remove_dependent(DAN.id, at=T0 + DAY)
        member = member.grant(family).grant(friend).grant(spring)
        assert [g.units for g in member.discounts] == [2, 0, 1]

    def test_a_save_must_extend_the_kept_dependent_changes(self) -> None:
        """A copy read before a dependent change and saved after another one was kept:
        ``stale_history`` naming ``dependent_changes`` (a store's ``save``)."""
        read = _enrol(dependents=(DEE,))
        kept = read.add_dependent(DAN, at=T0 + DAY)
        stale = read.remove_dependent(DEE.id, at=T0 + 2 * DAY)
        with pytest.raises(RuleViolation) as caught:
            check_successor(kept, stale)
        assert (caught.value.rule, caught.value.field) == ("stale_history", "dependent_changes")
        assert "1 changes, last pat-3 added at 2026-03-02T09:00:00+00:00" in str(caught.value)
        check_successor(kept, kept.remove_dependent(DEE.id, at=T0 + 2 * DAY))

    @pytest.mark.parametrize("value", ["x", DependentChange(T0, DEE, True), ["x"]])
    def test_dependent_changes_must_be_dependent_changes(self, value: object) -> None:
        with pytest.raises(InvalidValue, match=r"^dependent_changes: must be a"):
            attrs.evolve(_enrol(), dependent_changes=value)

    def test_a_change_needs_an_aware_instant_a_patient_and_a_flag(self) -> None:
        with pytest.raises(NaiveDatetime):
            DependentChange(datetime(2026, 1, 1), DEE, True)
        with pytest.raises(InvalidValue):
            DependentChange(T0, "pat-2", True)  # type: ignore[arg-type]
        with pytest.raises(InvalidValue):
            DependentChange(T0, DEE, 1)  # type: ignore[arg-type]

    @given(
        steps=st.lists(
            st.tuples(st.integers(0, 5 * 86400), st.sampled_from(["pat-2", "pat-3", "pat-4"])),
            max_size=8,
        ),
        first=st.sets(st.sampled_from(["pat-2", "pat-3", "pat-4"])),
    )
    def test_dependents_at_every_instant_follow_a_model(
        self, steps: list[tuple[int, str]], first: set[str]
    ) -> None:
        """Toggling random dependents at random gaps: ``dependents_at`` and
        ``dependents_before`` at each change and around it are the model's, and a copy
        cut there (``as_of``) holds those dependents."""
        people = {i: Patient(i, f"Dependent {i}") for i in ("pat-2", "pat-3", "pat-4")}
        member = _enrol(dependents=tuple(people[i] for i in sorted(first)))
        model: list[tuple[datetime, frozenset[str]]] = [(T0, frozenset(first))]
        at, on = T0, set(first)
        for gap, who in steps:
            at += timedelta(seconds=gap)
            if who in on:
                member = member.remove_dependent(who, at=at)
                on.discard(who)
            else:
                member = member.add_dependent(people[who], at=at)
                on.add(who)
            model.append((at, frozenset(on)))

        def expected(t: datetime, *, strictly: bool) -> frozenset[str]:
            held = [ids for when, ids in model if (when < t if strictly else when <= t)]
            return held[-1] if held else frozenset(first)

        for when, _ in model:
            for t in (when - timedelta(microseconds=1), when, when + timedelta(seconds=1)):
                assert {p.id for p in member.dependents_at(t)} == expected(t, strictly=False)
                assert {p.id for p in member.dependents_before(t)} == expected(t, strictly=True)
                cut = member.as_of(t)
                if cut is not None:
                    assert {p.id for p in cut.dependents} == expected(t, strictly=False)
        assert {p.id for p in member.first_dependents} == first


class TestReferralRewards:
    """Converted referrals credited to the member who referred, read back at any instant."""

    def test_rewards_are_recorded_counted_and_cut(self) -> None:
        member = _enrol().reward_referral("r1", at=T0 + DAY).reward_referral("r2", at=T0 + DAY)
        member = member.reward_referral("r3", at=T0 + 3 * DAY)
        assert member.referral_rewards == (
            ReferralReward(T0 + DAY, "r1"),
            ReferralReward(T0 + DAY, "r2"),
            ReferralReward(T0 + 3 * DAY, "r3"),
        )
        assert [member.rewards_before(T0 + n * DAY) for n in (1, 2, 3, 4)] == [0, 2, 2, 3]
        assert member.last_changed_at == T0 + 3 * DAY
        cut = member.as_of(T0 + 2 * DAY)
        assert cut is not None
        assert cut.referral_rewards == member.referral_rewards[:2]

    def test_refusals(self) -> None:
        member = _enrol().reward_referral("r1", at=T0 + DAY)
        with pytest.raises(InvalidValue, match="is already credited to member m-1"):
            member.reward_referral("r1", at=T0 + 2 * DAY)
        with pytest.raises(InvalidValue, match="is rewarded twice"):
            attrs.evolve(member, referral_rewards=member.referral_rewards * 2)
        with pytest.raises(InvalidValue, match="before the change before it"):
            member.reward_referral("r2", at=T0)
        with pytest.raises(InvalidValue, match="before member m-1 was enrolled"):
            _enrol().reward_referral("r2", at=T0 - DAY)
        cancelled = member.cancel(at=T0 + 2 * DAY)
        with pytest.raises(RuleViolation) as caught:
            cancelled.reward_referral("r2", at=T0 + 3 * DAY)
        assert (caught.value.rule, caught.value.field) == ("referral_reward_after_cancel", "at")
        with pytest.raises(RuleViolation) as late:
            _enrol().reward_referral("r2", at=T0 + 3 * DAY).cancel(at=T0 + 2 * DAY)
        assert late.value.rule == "referral_reward_after_cancel"
        with pytest.raises(InvalidValue, match=r"^referral_rewards: must be a sequence of"):
            attrs.evolve(_enrol(), referral_rewards="r1")
        with pytest.raises(InvalidValue):
            ReferralReward(T0, "")

    def test_a_save_must_extend_the_kept_rewards(self) -> None:
        read = _enrol()
        kept = read.reward_referral("r1", at=T0 + DAY)
        with pytest.raises(RuleViolation) as caught:
            check_successor(kept, read.reward_referral("r2", at=T0 + DAY))
        assert (caught.value.rule, caught.value.field) == ("stale_history", "referral_rewards")
        assert "1 credited, last r1 at 2026-03-02T09:00:00+00:00" in str(caught.value)
        check_successor(kept, kept.reward_referral("r2", at=T0 + DAY))


class TestQuestions:
    """Questions answered from a member's history."""

    def test_first_activated_at_is_the_first_activation(self) -> None:
        """first_activated_at is the first Active change, kept through later reactivations."""
        day = timedelta(days=1)
        member = _enrol().fail(at=T0 + day)
        assert member.first_activated_at is None
        member = member.activate(at=T0 + 2 * day).suspend(at=T0 + 3 * day)
        member = member.activate(at=T0 + 4 * day)
        assert member.first_activated_at == T0 + 2 * day

    @given(member=sps.members())
    def test_first_activated_at_matches_the_history(self, member: Member) -> None:
        """first_activated_at is the instant of the first change into Active, or None."""
        activations = [c.at for c in member.history if c.to is _M.ACTIVE]
        assert member.first_activated_at == (activations[0] if activations else None)

    def test_is_active_at_includes_a_change_at_that_instant(self) -> None:
        """is_active_at(t) is true from the activation instant and false from the failure on."""
        t1, t2 = T0 + timedelta(days=1), T0 + timedelta(days=5)
        member = _enrol().activate(at=t1).fail(at=t2)
        assert not member.is_active_at(t1 - timedelta(microseconds=1))
        assert member.is_active_at(t1)
        assert member.is_active_at(t2 - timedelta(microseconds=1))
        assert not member.is_active_at(t2)
        assert member.status_before(t2) is _M.ACTIVE


class MembershipMachine(RuleBasedStateMachine):
    """A Member driven by random moves on an advancing clock, checked against a naive model."""

    def __init__(self) -> None:
        super().__init__()
        self.member: Member
        self.clock = T0
        self.model_status = _M.PENDING
        self.model_history: list[tuple[datetime, MembershipStatus]] = []

    @initialize(start=sps.instants(max_value=datetime(2029, 1, 1, tzinfo=UTC)))
    def enrol(self, start: datetime) -> None:
        """Start from a Pending member enrolled at a random instant."""
        self.clock = start
        self.member = _enrol(at=start)
        self.model_status = _M.PENDING
        self.model_history = [(start, _M.PENDING)]

    def _try(self, to: MembershipStatus, gap: int) -> None:
        self.clock += timedelta(seconds=gap)
        before = copy.deepcopy(self.member)
        move = getattr(self.member, METHODS[to])
        if to in ALLOWED[self.model_status]:
            self.member = move(at=self.clock)
            self.model_status = to
            self.model_history.append((self.clock, to))
        else:
            with pytest.raises(InvalidTransition) as caught:
                move(at=self.clock)
            assert (caught.value.from_, caught.value.to) == (self.model_status, to)
            assert self.member == before

    gaps = st.integers(0, 45 * 86400)

    @rule(gap=gaps)
    def activate(self, gap: int) -> None:
        """Activate later on, if the model allows it."""
        self._try(_M.ACTIVE, gap)

    @rule(gap=gaps)
    def fail(self, gap: int) -> None:
        """Fail later on, if the model allows it."""
        self._try(_M.FAILED, gap)

    @rule(gap=gaps)
    def suspend(self, gap: int) -> None:
        """Suspend later on, if the model allows it."""
        self._try(_M.SUSPENDED, gap)

    @rule(gap=gaps)
    def cancel(self, gap: int) -> None:
        """Cancel later on, if the model allows it."""
        self._try(_M.CANCELLED, gap)

    @rule(back=st.integers(1, 10 * 86400), to=st.sampled_from(list(MembershipStatus)))
    def move_into_the_past(self, back: int, to: MembershipStatus) -> None:
        """A move dated before the last change raises and changes nothing."""
        before = copy.deepcopy(self.member)
        at = self.model_history[-1][0] - timedelta(seconds=back)
        expected = InvalidTransition if to not in ALLOWED[self.model_status] else OutOfOrderChange
        with pytest.raises(expected):
            self.member.transition(to, at=at)
        assert self.member == before

    @invariant()
    def status_equals_the_model(self) -> None:
        """The member's status is the model's."""
        assert self.member.status is self.model_status

    @invariant()
    def history_length_equals_the_model(self) -> None:
        """The history has one entry per model change, with the same instants and statuses."""
        assert len(self.member.history) == len(self.model_history)
        assert [(c.at, c.to) for c in self.member.history] == self.model_history

    @invariant()
    def status_at_each_recorded_time_equals_the_model(self) -> None:
        """status_at(t) at every recorded instant is the model's answer; None before enrolment."""
        for t, _ in self.model_history:
            expected = [s for when, s in self.model_history if when <= t][-1]
            assert self.member.status_at(t) is expected
        first = self.model_history[0][0]
        assert self.member.status_at(first - timedelta(microseconds=1)) is None

    @invariant()
    def cancelled_absorbs(self) -> None:
        """A Cancelled member refuses every move."""
        if self.model_status is not _M.CANCELLED:
            return
        for to in MembershipStatus:
            with pytest.raises(InvalidTransition):
                self.member.transition(to, at=self.clock)


TestMembershipMachine = MembershipMachine.TestCase
