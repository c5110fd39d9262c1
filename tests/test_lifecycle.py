"""The shared transition-table mechanism: tables, histories, status questions, parsing."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smilepass_core.domain import (
    MEMBERSHIP_LIFECYCLE,
    PAYMENT_PLAN_LIFECYCLE,
    REFERRAL_LIFECYCLE,
    HasHistory,
    Lifecycle,
    Member,
    MembershipStatus,
    Patient,
    PaymentPlan,
    PaymentPlanStatus,
    PaymentType,
    ReferralStatus,
    Status,
    StatusChange,
)
from smilepass_core.domain.lifecycle import _EXTENDED
from smilepass_core.errors import (
    InvalidTransition,
    InvalidValue,
    NaiveDatetime,
    OutOfOrderChange,
    SmilepassError,
    UnknownStatus,
)
from smilepass_core.money import Money
from smilepass_core.testing import strategies as sps

_M = MembershipStatus
_P = PaymentPlanStatus
_R = ReferralStatus

#: The tables as the issue documents them, written out independently of the source.
DOCUMENTED: dict[type[Status], dict[Status, set[Status]]] = {
    MembershipStatus: {
        _M.PENDING: {_M.ACTIVE, _M.FAILED, _M.CANCELLED},
        _M.ACTIVE: {_M.FAILED, _M.SUSPENDED, _M.CANCELLED},
        _M.FAILED: {_M.ACTIVE, _M.SUSPENDED, _M.CANCELLED},
        _M.SUSPENDED: {_M.ACTIVE, _M.CANCELLED},
        _M.CANCELLED: set(),
    },
    PaymentPlanStatus: {
        _P.PENDING: {_P.ACTIVE, _P.COMPLETED, _P.FAILED, _P.CANCELLED},
        _P.ACTIVE: {_P.COMPLETED, _P.FAILED, _P.CANCELLED},
        _P.FAILED: {_P.ACTIVE, _P.COMPLETED, _P.CANCELLED},
        _P.COMPLETED: set(),
        _P.CANCELLED: set(),
    },
    ReferralStatus: {
        _R.PENDING: {_R.CONVERTED, _R.CANCELLED},
        _R.CONVERTED: set(),
        _R.CANCELLED: set(),
    },
}

LIFECYCLES: dict[type[Status], Lifecycle[Status]] = {
    MembershipStatus: MEMBERSHIP_LIFECYCLE,
    PaymentPlanStatus: PAYMENT_PLAN_LIFECYCLE,
    ReferralStatus: REFERRAL_LIFECYCLE,
}

TERMINAL: dict[type[Status], set[Status]] = {
    MembershipStatus: {_M.CANCELLED},
    PaymentPlanStatus: {_P.COMPLETED, _P.CANCELLED},
    ReferralStatus: {_R.CONVERTED, _R.CANCELLED},
}

ENUMS = list(DOCUMENTED)
ENUM_IDS = [e.__name__ for e in ENUMS]

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class Colour(Status):
    """A throwaway status set for building lifecycles in tests."""

    RED = "red"
    GREEN = "green"
    BLUE = "blue"


def _steps() -> st.SearchStrategy[int]:
    """Seconds between two changes: mostly forward (zero included), sometimes backward."""
    return st.one_of(
        st.integers(0, 30 * 86400),
        st.just(0),
        st.integers(-30 * 86400, -1),
    )


class TestTables:
    """The three lifecycle tables are exactly the documented ones."""

    @pytest.mark.parametrize("statuses", ENUMS, ids=ENUM_IDS)
    def test_every_status_is_a_key(self, statuses: type[Status]) -> None:
        """Every status of the enum has a row in its lifecycle table."""
        assert set(LIFECYCLES[statuses].table) == set(statuses)

    @pytest.mark.parametrize("statuses", ENUMS, ids=ENUM_IDS)
    def test_table_equals_the_documented_one(self, statuses: type[Status]) -> None:
        """The lifecycle table allows exactly the documented moves, row by row."""
        table = LIFECYCLES[statuses].table
        assert {s: set(t) for s, t in table.items()} == DOCUMENTED[statuses]

    @pytest.mark.parametrize("statuses", ENUMS, ids=ENUM_IDS)
    def test_terminal_statuses_are_the_documented_ones(self, statuses: type[Status]) -> None:
        """`terminal` is the set of statuses with no way out."""
        assert set(LIFECYCLES[statuses].terminal) == TERMINAL[statuses]

    @pytest.mark.parametrize("statuses", ENUMS, ids=ENUM_IDS)
    def test_every_lifecycle_starts_in_pending(self, statuses: type[Status]) -> None:
        """Each lifecycle's only initial status is Pending."""
        assert LIFECYCLES[statuses].initial == frozenset({statuses.parse("pending")})

    @pytest.mark.parametrize("statuses", ENUMS, ids=ENUM_IDS)
    def test_can_and_allowed_agree_with_the_table(self, statuses: type[Status]) -> None:
        """`can` and `allowed` answer from the table for every pair of statuses."""
        lifecycle = LIFECYCLES[statuses]
        for source in statuses:
            assert lifecycle.allowed(source) == frozenset(DOCUMENTED[statuses][source])
            for target in statuses:
                assert lifecycle.can(source, target) is (target in DOCUMENTED[statuses][source])

    @pytest.mark.parametrize("statuses", ENUMS, ids=ENUM_IDS)
    def test_no_status_moves_to_itself(self, statuses: type[Status]) -> None:
        """No table allows a status to move to itself (a no-op is not a change)."""
        lifecycle = LIFECYCLES[statuses]
        assert not any(lifecycle.can(s, s) for s in statuses)


class TestLifecycleConstruction:
    """Building a Lifecycle refuses an incomplete or mistyped table."""

    def test_a_complete_table_builds(self) -> None:
        """A table with a row for every status builds and reports its terminal statuses."""
        lifecycle = Lifecycle(
            Colour,
            {Colour.RED: {Colour.GREEN}, Colour.GREEN: {Colour.BLUE}, Colour.BLUE: set()},
            initial={Colour.RED},
        )
        assert lifecycle.terminal == frozenset({Colour.BLUE})
        assert lifecycle.statuses is Colour
        assert lifecycle.initial == frozenset({Colour.RED})

    def test_a_table_missing_a_status_is_refused(self) -> None:
        """A table without a row for some status raises InvalidValue naming it."""
        with pytest.raises(InvalidValue, match="table") as caught:
            Lifecycle(
                Colour, {Colour.RED: {Colour.GREEN}, Colour.GREEN: set()}, initial={Colour.RED}
            )
        assert str(caught.value) == "table: statuses without a row (got ['BLUE'])"
        assert caught.value.field == "table"
        assert caught.value.value == ["BLUE"]

    @pytest.mark.parametrize("statuses", ENUMS, ids=ENUM_IDS)
    def test_dropping_any_row_of_a_real_table_is_refused(self, statuses: type[Status]) -> None:
        """Removing any one row from a real table makes construction fail, naming that status."""
        for dropped in statuses:
            table = {s: t for s, t in DOCUMENTED[statuses].items() if s is not dropped}
            targets = {s: t - {dropped} for s, t in table.items()}
            with pytest.raises(InvalidValue, match=dropped.name):
                Lifecycle(statuses, targets, initial={statuses.parse("pending")})

    def test_a_target_from_another_enum_is_refused(self) -> None:
        """A target that is not a status of the lifecycle's enum raises InvalidValue."""
        with pytest.raises(InvalidValue, match="Colour") as caught:
            Lifecycle(
                Colour,
                {Colour.RED: {_M.ACTIVE}, Colour.GREEN: set(), Colour.BLUE: set()},
                initial={Colour.RED},
            )
        assert caught.value.field == "table"
        assert caught.value.value is _M.ACTIVE
        assert caught.value.reason == "not a Colour"

    def test_a_key_from_another_enum_is_refused(self) -> None:
        """A row keyed by a status of another enum raises InvalidValue."""
        with pytest.raises(InvalidValue, match="table"):
            Lifecycle(
                Colour,
                {Colour.RED: set(), Colour.GREEN: set(), Colour.BLUE: set(), _M.ACTIVE: set()},
                initial={Colour.RED},
            )

    def test_no_initial_status_is_refused(self) -> None:
        """A lifecycle without an initial status raises InvalidValue naming `initial`."""
        with pytest.raises(InvalidValue, match="initial") as caught:
            Lifecycle(Colour, {c: set() for c in Colour}, initial=())
        assert str(caught.value) == "initial: at least one initial status (got ())"
        assert caught.value.field == "initial"
        assert caught.value.value == ()

    def test_the_refusal_lists_every_initial_status(self) -> None:
        """Starting elsewhere names each allowed start, comma-separated in name order."""
        lifecycle = Lifecycle(Colour, {c: set() for c in Colour}, initial={Colour.RED, Colour.BLUE})
        with pytest.raises(InvalidValue) as caught:
            lifecycle.start(Colour.GREEN, T0)
        assert caught.value.reason == "cannot start in it; starts in BLUE, RED"

    def test_starting_outside_the_initial_statuses_is_refused(self) -> None:
        """`start` in a non-initial status raises InvalidValue naming the allowed start."""
        with pytest.raises(InvalidValue, match="PENDING") as caught:
            MEMBERSHIP_LIFECYCLE.start(_M.ACTIVE, T0)
        assert caught.value.field == "status"
        assert caught.value.value is _M.ACTIVE
        assert str(caught.value) == (
            f"status: cannot start in it; starts in PENDING (got {_M.ACTIVE!r})"
        )

    def test_start_without_a_reason_records_an_empty_one(self) -> None:
        """`start` with no reason gives one change from None, at `at`, with reason ""."""
        assert MEMBERSHIP_LIFECYCLE.start(_M.PENDING, T0) == (
            StatusChange(T0, None, _M.PENDING, ""),
        )
        assert MEMBERSHIP_LIFECYCLE.start(_M.PENDING, T0)[0].reason == ""


class TestAppend:
    """`Lifecycle.append` follows the table and the clock, or raises and changes nothing."""

    @pytest.mark.parametrize("statuses", ENUMS, ids=ENUM_IDS)
    @given(data=st.data())
    def test_random_walks_follow_the_table_or_raise(
        self, statuses: type[Status], data: st.DataObject
    ) -> None:
        """Random target statuses at random times either append one exact change or raise."""
        lifecycle = LIFECYCLES[statuses]
        moves = data.draw(
            st.lists(st.tuples(st.sampled_from(list(statuses)), _steps()), max_size=12)
        )
        history = lifecycle.start(statuses.parse("pending"), T0, "created")
        at = T0
        for target, step in moves:
            at = at + timedelta(seconds=step)
            before = tuple(history)
            last = history[-1]
            if target not in DOCUMENTED[statuses][last.to]:
                with pytest.raises(InvalidTransition) as caught:
                    lifecycle.append(history, target, at, "try")
                assert caught.value.from_ is last.to
                assert caught.value.to is target
                assert last.to.name in str(caught.value)
                assert target.name in str(caught.value)
            elif at < last.at:
                with pytest.raises(OutOfOrderChange) as late:
                    lifecycle.append(history, target, at, "try")
                assert late.value.previous == last.at
                assert late.value.at == at
            else:
                history = lifecycle.append(history, target, at, "try")
                assert len(history) == len(before) + 1
                assert history[:-1] == before
                assert history[-1] == StatusChange(at, last.to, target, "try")
                lifecycle.validate(history)
                continue
            assert history == before
            at = last.at  # the refused time is not kept

    @pytest.mark.parametrize("statuses", ENUMS, ids=ENUM_IDS)
    def test_terminal_statuses_absorb(self, statuses: type[Status]) -> None:
        """Every move out of a terminal status raises InvalidTransition naming both statuses."""
        lifecycle = LIFECYCLES[statuses]
        for terminal in TERMINAL[statuses]:
            for target in statuses:
                with pytest.raises(InvalidTransition, match="none \\(terminal\\)") as caught:
                    lifecycle.check(terminal, target)
                assert (caught.value.from_, caught.value.to) == (terminal, target)
                assert terminal.name in str(caught.value)
                assert target.name in str(caught.value)

    def test_the_message_lists_the_allowed_moves(self) -> None:
        """A refused move's message lists what the source status may move to."""
        with pytest.raises(InvalidTransition) as caught:
            MEMBERSHIP_LIFECYCLE.check(_M.SUSPENDED, _M.FAILED, subject="Member m1")
        message = str(caught.value)
        assert message.startswith("Member m1: cannot move from SUSPENDED to FAILED")
        assert caught.value.subject == "Member m1"
        assert (caught.value.from_, caught.value.to) == (_M.SUSPENDED, _M.FAILED)
        assert "ACTIVE, CANCELLED" in message
        assert set(caught.value.allowed) == {_M.ACTIVE, _M.CANCELLED}

    def test_append_without_a_reason_records_an_empty_one(self) -> None:
        """`append` with no reason appends the change with reason ""."""
        history = MEMBERSHIP_LIFECYCLE.start(_M.PENDING, T0, "enrolled")
        history = MEMBERSHIP_LIFECYCLE.append(history, _M.ACTIVE, T0 + timedelta(hours=1))
        assert history[-1] == StatusChange(T0 + timedelta(hours=1), _M.PENDING, _M.ACTIVE, "")
        assert history[-1].reason == ""

    def test_append_refusals_name_the_subject_only_when_given(self) -> None:
        """Without a subject the messages have no prefix; with one they start with it."""
        history = MEMBERSHIP_LIFECYCLE.start(_M.PENDING, T0)
        history = MEMBERSHIP_LIFECYCLE.append(history, _M.ACTIVE, T0 + timedelta(hours=2))
        earlier = T0 + timedelta(hours=1)
        with pytest.raises(OutOfOrderChange) as late:
            MEMBERSHIP_LIFECYCLE.append(history, _M.FAILED, earlier)
        assert str(late.value) == (
            f"change at {earlier.isoformat()} is before the last change at "
            f"{(T0 + timedelta(hours=2)).isoformat()}"
        )
        assert (late.value.previous, late.value.at, late.value.subject) == (
            T0 + timedelta(hours=2),
            earlier,
            "",
        )
        with pytest.raises(OutOfOrderChange) as late:
            MEMBERSHIP_LIFECYCLE.append(history, _M.FAILED, earlier, subject="Member m1")
        assert str(late.value).startswith("Member m1: change at ")
        assert late.value.subject == "Member m1"
        with pytest.raises(InvalidTransition) as caught:
            MEMBERSHIP_LIFECYCLE.append(history, _M.PENDING, T0 + timedelta(hours=3))
        assert str(caught.value) == (
            "cannot move from ACTIVE to PENDING; allowed from ACTIVE: CANCELLED, FAILED, SUSPENDED"
        )
        assert caught.value.subject == ""
        with pytest.raises(InvalidTransition) as caught:
            MEMBERSHIP_LIFECYCLE.append(
                history, _M.PENDING, T0 + timedelta(hours=3), subject="Member m1"
            )
        assert str(caught.value).startswith("Member m1: cannot move from ACTIVE to PENDING")
        assert caught.value.subject == "Member m1"

    def test_check_without_a_subject_has_no_prefix(self) -> None:
        """`check` with no subject raises a message that starts with the move itself."""
        with pytest.raises(InvalidTransition) as caught:
            MEMBERSHIP_LIFECYCLE.check(_M.CANCELLED, _M.ACTIVE)
        assert str(caught.value) == (
            "cannot move from CANCELLED to ACTIVE; allowed from CANCELLED: none (terminal)"
        )
        assert caught.value.subject == ""
        assert (caught.value.from_, caught.value.to, caught.value.allowed) == (
            _M.CANCELLED,
            _M.ACTIVE,
            (),
        )

    def test_errors_built_without_a_subject_have_none(self) -> None:
        """InvalidTransition and OutOfOrderChange raised by a host without ``subject`` have an
        empty subject and an unprefixed message."""
        refused = InvalidTransition(_M.SUSPENDED, _M.FAILED)
        assert (refused.subject, refused.allowed) == ("", ())
        assert str(refused) == (
            "cannot move from SUSPENDED to FAILED; allowed from SUSPENDED: none (terminal)"
        )
        late = OutOfOrderChange(T0, T0 - timedelta(hours=1))
        assert late.subject == ""
        assert str(late) == (
            "change at 2026-03-01T08:00:00+00:00 is before the last change at "
            "2026-03-01T09:00:00+00:00"
        )

    def test_a_change_at_the_same_instant_is_in_order(self) -> None:
        """A change stamped exactly at the previous change's instant is accepted."""
        history = MEMBERSHIP_LIFECYCLE.start(_M.PENDING, T0)
        history = MEMBERSHIP_LIFECYCLE.append(history, _M.ACTIVE, T0)
        history = MEMBERSHIP_LIFECYCLE.append(history, _M.FAILED, T0)
        assert [c.to for c in history] == [_M.PENDING, _M.ACTIVE, _M.FAILED]

    def test_an_earlier_change_is_out_of_order(self) -> None:
        """A change dated before the last one raises OutOfOrderChange naming both instants."""
        history = MEMBERSHIP_LIFECYCLE.start(_M.PENDING, T0)
        earlier = T0 - timedelta(seconds=1)
        with pytest.raises(OutOfOrderChange) as caught:
            MEMBERSHIP_LIFECYCLE.append(history, _M.ACTIVE, earlier)
        assert earlier.isoformat() in str(caught.value)
        assert T0.isoformat() in str(caught.value)

    def test_a_naive_instant_is_refused(self) -> None:
        """A change at a naive datetime raises NaiveDatetime naming `at`."""
        history = MEMBERSHIP_LIFECYCLE.start(_M.PENDING, T0)
        with pytest.raises(NaiveDatetime, match=r"^at: naive"):
            MEMBERSHIP_LIFECYCLE.append(history, _M.ACTIVE, datetime(2026, 3, 2, 9))


class TestValidate:
    """`Lifecycle.validate` refuses any history that is not a legal walk in time order."""

    def test_a_legal_history_passes(self) -> None:
        """A history built with start and append passes validation."""
        history = MEMBERSHIP_LIFECYCLE.start(_M.PENDING, T0)
        history = MEMBERSHIP_LIFECYCLE.append(history, _M.ACTIVE, T0 + timedelta(days=1))
        MEMBERSHIP_LIFECYCLE.validate(history)

    def test_an_empty_history_is_refused(self) -> None:
        """An empty history raises InvalidValue naming `history`."""
        with pytest.raises(InvalidValue) as caught:
            MEMBERSHIP_LIFECYCLE.validate(())
        assert str(caught.value) == "history: must hold at least the initial status (got ())"
        assert (caught.value.field, caught.value.value) == ("history", ())

    def test_a_history_must_start_from_none_in_an_initial_status(self) -> None:
        """A first change with a `from_` or into a non-initial status is refused."""
        for first in (StatusChange(T0, None, _M.ACTIVE), StatusChange(T0, _M.PENDING, _M.PENDING)):
            with pytest.raises(InvalidValue) as caught:
                MEMBERSHIP_LIFECYCLE.validate((first,))
            assert str(caught.value) == (
                f"history: must start with from_=None into PENDING (got {first!r})"
            )
            assert (caught.value.field, caught.value.value) == ("history", first)

    def test_the_start_refusal_lists_every_initial_status(self) -> None:
        """A history starting elsewhere names each initial status, in name order."""
        lifecycle = Lifecycle(Colour, {c: set() for c in Colour}, initial={Colour.RED, Colour.BLUE})
        first = StatusChange(T0, None, Colour.GREEN)
        with pytest.raises(InvalidValue) as caught:
            lifecycle.validate((first,))
        assert caught.value.reason == "must start with from_=None into BLUE, RED"

    def test_a_broken_chain_is_refused(self) -> None:
        """A change whose `from_` is not the previous status is refused, naming that status."""
        history = (
            StatusChange(T0, None, _M.PENDING),
            StatusChange(T0, _M.ACTIVE, _M.FAILED),
        )
        with pytest.raises(InvalidValue) as caught:
            MEMBERSHIP_LIFECYCLE.validate(history)
        assert str(caught.value) == (
            f"history: from_ must be PENDING, the previous status (got {history[1]!r})"
        )
        assert (caught.value.field, caught.value.value) == ("history", history[1])

    def test_a_forbidden_step_is_refused(self) -> None:
        """A step the table forbids raises InvalidTransition naming both statuses."""
        history = (
            StatusChange(T0, None, _M.PENDING),
            StatusChange(T0, _M.PENDING, _M.SUSPENDED),
        )
        with pytest.raises(InvalidTransition, match="PENDING to SUSPENDED") as caught:
            MEMBERSHIP_LIFECYCLE.validate(history)
        assert str(caught.value) == (
            "cannot move from PENDING to SUSPENDED; allowed from PENDING: ACTIVE, CANCELLED, FAILED"
        )
        assert (caught.value.from_, caught.value.to, caught.value.subject) == (
            _M.PENDING,
            _M.SUSPENDED,
            "",
        )
        with pytest.raises(InvalidTransition) as caught:
            MEMBERSHIP_LIFECYCLE.validate(history, subject="Member m1")
        assert str(caught.value).startswith("Member m1: cannot move from PENDING to SUSPENDED")
        assert caught.value.subject == "Member m1"

    def test_changes_at_the_same_instant_are_in_order(self) -> None:
        """A history whose changes share one instant is a legal walk."""
        history = (
            StatusChange(T0, None, _M.PENDING),
            StatusChange(T0, _M.PENDING, _M.ACTIVE),
            StatusChange(T0, _M.ACTIVE, _M.CANCELLED),
        )
        MEMBERSHIP_LIFECYCLE.validate(history)

    def test_a_step_back_in_time_is_refused(self) -> None:
        """A change dated before the previous one raises OutOfOrderChange."""
        history = (
            StatusChange(T0, None, _M.PENDING),
            StatusChange(T0 - timedelta(minutes=1), _M.PENDING, _M.ACTIVE),
        )
        with pytest.raises(OutOfOrderChange) as caught:
            MEMBERSHIP_LIFECYCLE.validate(history)
        assert (caught.value.previous, caught.value.at, caught.value.subject) == (
            T0,
            T0 - timedelta(minutes=1),
            "",
        )
        with pytest.raises(OutOfOrderChange) as caught:
            MEMBERSHIP_LIFECYCLE.validate(history, subject="Member m1")
        assert str(caught.value) == (
            f"Member m1: change at {(T0 - timedelta(minutes=1)).isoformat()} "
            f"is before the last change at {T0.isoformat()}"
        )
        assert caught.value.subject == "Member m1"


class TestBuildingLongHistories:
    """A transition checks the one change it adds, not the whole history again."""

    def _member(self) -> Member:
        return Member.enrol(
            id="m1",
            practice_id="p1",
            plan_id="gold",
            account_holder=Patient("pat1", "Ada Lovelace"),
            start_date=T0.date(),
            at=T0,
        ).activate(at=T0)

    def test_n_transitions_make_a_number_of_table_checks_linear_in_n(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """400 transitions make one table check each (a quadratic rebuild made 80,000)."""
        calls = 0
        check = Lifecycle.check

        def counting(self: Lifecycle[Status], *args: object, **kwargs: object) -> None:
            nonlocal calls
            calls += 1
            check(self, *args, **kwargs)  # type: ignore[arg-type]

        member = self._member()
        monkeypatch.setattr(Lifecycle, "check", counting)
        at = T0
        for k in range(400):
            at += timedelta(minutes=1)
            member = member.suspend(at=at) if k % 2 == 0 else member.activate(at=at)
        assert calls == 400
        assert len(member.history) == 402

    def test_the_long_history_is_the_one_a_full_check_accepts(self) -> None:
        """The history built change by change passes a full validation and rebuilds equal."""
        member = self._member()
        at = T0
        for k in range(50):
            at += timedelta(hours=1)
            member = member.suspend(at=at) if k % 2 == 0 else member.activate(at=at)
        MEMBERSHIP_LIFECYCLE.validate(tuple(member.history))
        assert Member(**{f: getattr(member, f) for f in attrs.fields_dict(Member)}) == member

    def test_a_history_given_from_outside_is_still_checked_in_full(self) -> None:
        """attrs.evolve with a history that skips the table is refused: only a transition's
        own history is trusted."""
        member = self._member()
        forged = (*member.history, StatusChange(T0, _M.ACTIVE, _M.PENDING))
        with pytest.raises(InvalidTransition):
            attrs.evolve(member, history=forged)

    def test_the_trust_ends_with_the_transition_even_when_it_fails(self) -> None:
        """A transition whose new object is refused leaves nothing trusted behind."""
        member = self._member()
        with pytest.raises(InvalidValue):
            member._moved(_M.SUSPENDED, T0, "x", id="")
        assert _EXTENDED.get() is None


class TestStatusChange:
    """A StatusChange holds an aware UTC instant and a string reason."""

    def test_the_instant_is_stored_in_utc(self) -> None:
        """An aware instant in another zone is stored as the same instant in UTC."""
        local = datetime(2026, 3, 1, 20, 0, tzinfo=ZoneInfo("Australia/Sydney"))
        change = StatusChange(local, None, _M.PENDING)
        assert change.at == local
        assert change.at.tzinfo is UTC

    def test_a_naive_instant_is_refused(self) -> None:
        """A naive `at` raises NaiveDatetime naming `at`."""
        with pytest.raises(NaiveDatetime, match=r"^at: "):
            StatusChange(datetime(2026, 3, 1), None, _M.PENDING)

    def test_a_non_string_reason_is_refused(self) -> None:
        """A reason that is not a string raises InvalidValue naming `reason`."""
        with pytest.raises(InvalidValue) as caught:
            StatusChange(T0, None, _M.PENDING, 42)  # type: ignore[arg-type]
        assert str(caught.value) == "reason: must be a string (got 42)"
        assert (caught.value.field, caught.value.value) == ("reason", 42)

    def test_a_string_reason_is_kept_and_the_default_is_empty(self) -> None:
        """A string reason is stored as given; without one the reason is ""."""
        assert StatusChange(T0, None, _M.PENDING, "why").reason == "why"
        assert StatusChange(T0, None, _M.PENDING).reason == ""


def _status_at(history: tuple[StatusChange[Status], ...], t: datetime) -> Status | None:
    """Naive answer: the last change stamped at or before ``t``."""
    result = None
    for change in history:
        if change.at <= t:
            result = change.to
    return result


def _status_before(history: tuple[StatusChange[Status], ...], t: datetime) -> Status | None:
    """Naive answer: the last change stamped strictly before ``t``."""
    result = None
    for change in history:
        if change.at < t:
            result = change.to
    return result


HISTORIES = {
    "member": sps.members(),
    "payment_plan": sps.payment_plans(),
    "referral": sps.referrals(),
}


@st.composite
def _probes(draw: st.DrawFn, obj: HasHistory[Status]) -> datetime:
    """An instant near a change of ``obj`` (exactly at, just before, just after) or anywhere."""
    if draw(st.booleans()):
        change = draw(st.sampled_from(obj.history))
        nudge = draw(st.sampled_from([-1, 0, 0, 1]))
        return change.at + timedelta(microseconds=nudge)
    return draw(sps.instants())


class TestStatusQuestions:
    """`status_at` and `status_before` agree with the history at any instant."""

    @pytest.mark.parametrize("kind", list(HISTORIES))
    @given(data=st.data())
    def test_status_at_and_before_agree_with_the_history(
        self, kind: str, data: st.DataObject
    ) -> None:
        """For any instant, both questions give the naive answer computed from the history."""
        obj = data.draw(HISTORIES[kind])
        for _ in range(5):
            t = data.draw(_probes(obj))
            assert obj.status_at(t) is _status_at(obj.history, t)
            assert obj.status_before(t) is _status_before(obj.history, t)

    @pytest.mark.parametrize("kind", list(HISTORIES))
    @given(data=st.data())
    def test_both_are_none_before_creation(self, kind: str, data: st.DataObject) -> None:
        """Before the first change, neither question has a status; at creation only status_at."""
        obj = data.draw(HISTORIES[kind])
        just_before = obj.created_at - timedelta(microseconds=1)
        assert obj.status_at(just_before) is None
        assert obj.status_before(just_before) is None
        assert obj.status_before(obj.created_at) is None
        assert obj.status_at(obj.created_at) is not None

    @pytest.mark.parametrize("kind", list(HISTORIES))
    @given(data=st.data())
    def test_every_change_is_seen_at_its_instant(self, kind: str, data: st.DataObject) -> None:
        """At each change's own instant status_at includes it, status_before does not."""
        obj = data.draw(HISTORIES[kind])
        for i, change in enumerate(obj.history):
            later_same_instant = [c for c in obj.history[i:] if c.at == change.at]
            assert obj.status_at(change.at) is later_same_instant[-1].to
            earlier = [c for c in obj.history if c.at < change.at]
            assert obj.status_before(change.at) is (earlier[-1].to if earlier else None)
        assert obj.status_at(obj.history[-1].at) is obj.status
        assert obj.status is obj.history[-1].to
        assert obj.created_at == obj.history[0].at

    @pytest.mark.parametrize("kind", list(HISTORIES))
    @given(data=st.data())
    def test_first_entered_is_the_first_change_into_a_status(
        self, kind: str, data: st.DataObject
    ) -> None:
        """`first_entered(s)` is the instant of the first change into `s`, or None."""
        obj = data.draw(HISTORIES[kind])
        for status in type(obj.status):
            entries = [c.at for c in obj.history if c.to is status]
            assert obj.first_entered(status) == (entries[0] if entries else None)

    def test_same_instant_changes_at_a_boundary(self) -> None:
        """With two changes at t, status_at(t) is the last and status_before(t) the one before."""
        history = MEMBERSHIP_LIFECYCLE.start(_M.PENDING, T0)
        history = MEMBERSHIP_LIFECYCLE.append(history, _M.ACTIVE, T0 + timedelta(days=1))
        history = MEMBERSHIP_LIFECYCLE.append(history, _M.FAILED, T0 + timedelta(days=2))
        history = MEMBERSHIP_LIFECYCLE.append(history, _M.CANCELLED, T0 + timedelta(days=2))
        holder = _holder(history)
        t = T0 + timedelta(days=2)
        assert holder.status_at(t) is _M.CANCELLED
        assert holder.status_before(t) is _M.ACTIVE
        assert holder.status_at(t - timedelta(microseconds=1)) is _M.ACTIVE

    def test_an_instant_in_another_zone_is_compared_as_an_instant(self) -> None:
        """A query instant in a local zone is the same instant as its UTC equivalent."""
        history = MEMBERSHIP_LIFECYCLE.start(_M.PENDING, T0)
        history = MEMBERSHIP_LIFECYCLE.append(history, _M.ACTIVE, T0 + timedelta(hours=1))
        holder = _holder(history)
        sydney = (T0 + timedelta(hours=1)).astimezone(ZoneInfo("Australia/Sydney"))
        assert holder.status_at(sydney) is _M.ACTIVE
        assert holder.status_before(sydney) is _M.PENDING

    def test_a_naive_query_instant_is_refused(self) -> None:
        """status_at and status_before refuse a naive datetime with NaiveDatetime."""
        holder = _holder(MEMBERSHIP_LIFECYCLE.start(_M.PENDING, T0))
        with pytest.raises(NaiveDatetime, match="naive"):
            holder.status_at(datetime(2026, 3, 2))
        with pytest.raises(NaiveDatetime, match="naive"):
            holder.status_before(datetime(2026, 3, 2))


def _stamps(obj: Any) -> list[datetime]:
    """Every instant stamped on ``obj``: its changes, a plan's attempts and archiving."""
    stamps = [c.at for c in obj.history]
    stamps += [a.at for a in getattr(obj, "attempts", ())]
    return stamps + ([obj.archived_at] if getattr(obj, "archived_at", None) else [])


class TestAsOf:
    """`obj.as_of(t)` is the object as it stood at instant t: only what is stamped at or
    before t, and a valid object of its type."""

    @pytest.mark.parametrize("kind", list(HISTORIES))
    @given(data=st.data())
    def test_it_keeps_exactly_what_is_stamped_by_then(self, kind: str, data: st.DataObject) -> None:
        """Its status is status_at(t); every stamp it holds is at or before t; nothing of
        the object's at or before t is lost; before creation there is nothing."""
        obj = data.draw(HISTORIES[kind])
        t = data.draw(_probes(obj))
        then = obj.as_of(t)
        if t < obj.created_at:
            assert then is None
            return
        assert then is not None
        assert type(then) is type(obj)
        assert then.status is obj.status_at(t)
        assert sorted(_stamps(then)) == sorted(x for x in _stamps(obj) if x <= t)
        if kind == "member":
            assert then == attrs.evolve(obj, history=[c for c in obj.history if c.at <= t])
        if kind == "payment_plan":
            paid = sum(a.succeeded for a in obj.attempts if a.at <= t)
            assert then.paid_count == paid
            day = data.draw(st.dates())
            assert then.unpaid_due_before(day) == obj.unpaid_due_before(day, at=t)
        if kind == "referral":
            converted = then.status is ReferralStatus.CONVERTED
            assert then.member_id == (obj.member_id if converted else None)

    @pytest.mark.parametrize("kind", list(HISTORIES))
    @given(data=st.data())
    def test_cutting_twice_is_cutting_at_the_earlier_instant(
        self, kind: str, data: st.DataObject
    ) -> None:
        """For t1 <= t2, obj.as_of(t2).as_of(t1) == obj.as_of(t1); cutting at the last
        stamp or later gives the object itself."""
        obj = data.draw(HISTORIES[kind])
        t1, t2 = sorted((data.draw(_probes(obj)), data.draw(_probes(obj))))
        later = obj.as_of(t2)
        assert (later.as_of(t1) if later is not None else None) == obj.as_of(t1)
        assert obj.as_of(max(_stamps(obj))) is obj

    def test_a_plan_as_it_stood_between_two_payments(self) -> None:
        """A plan of 3 paid on 1 and 2 February, archived on 3 March after the third:
        on 1 February at noon it was Active, 1/3 paid, next due the second instalment."""
        plan = PaymentPlan.offer(
            id="pp1",
            practice_id="p1",
            patient=Patient("pat1", "Ada"),
            total=Money.of("300", "AUD"),
            payment_type=PaymentType.PLAN,
            instalments=3,
            first_due=date(2026, 2, 1),
            at=datetime(2026, 1, 10, tzinfo=UTC),
        )
        for day in (1, 2, 3):
            plan = plan.record_payment(at=datetime(2026, 2 + (day == 3), day, tzinfo=UTC))
        plan = plan.archive(at=datetime(2026, 3, 3, 1, tzinfo=UTC))
        then = plan.as_of(datetime(2026, 2, 1, 12, tzinfo=UTC))
        assert then is not None
        assert (then.status, then.progression, str(then.balance)) == (
            PaymentPlanStatus.ACTIVE,
            "1/3",
            "AUD 200.00",
        )
        assert then.next_instalment == plan.schedule[1]
        assert not then.is_archived
        assert plan.as_of(datetime(2026, 3, 3, tzinfo=UTC)).status is PaymentPlanStatus.COMPLETED
        assert not plan.as_of(datetime(2026, 3, 3, tzinfo=UTC)).is_archived


class _Holder(HasHistory[MembershipStatus]):
    """A bare object with a history, to test HasHistory without a domain type."""

    __slots__ = ("history", "id")

    def __init__(self, history: tuple[StatusChange[MembershipStatus], ...]) -> None:
        self.history = history
        self.id = "h1"


def _holder(history: tuple[StatusChange[MembershipStatus], ...]) -> _Holder:
    return _Holder(history)


class TestParse:
    """`Status.parse` reads host strings strictly: case and spaces only, never a fallback."""

    @pytest.mark.parametrize("statuses", ENUMS, ids=ENUM_IDS)
    def test_every_status_parses_in_any_case_with_spaces(self, statuses: type[Status]) -> None:
        """Each status parses from its value, capitalised, upper case and padded."""
        for status in statuses:
            for text in (status.value, status.value.capitalize(), f" {status.value.upper()} "):
                assert statuses.parse(text) is status

    def test_the_documented_examples_parse(self) -> None:
        """ "Active", "active" and " ACTIVE " all parse to Active."""
        for text in ("Active", "active", " ACTIVE ", "\tactive\n"):
            assert MembershipStatus.parse(text) is _M.ACTIVE

    @pytest.mark.parametrize("statuses", ENUMS, ids=ENUM_IDS)
    def test_a_status_parses_to_itself(self, statuses: type[Status]) -> None:
        """A status of the enum is returned as it is."""
        for status in statuses:
            assert statuses.parse(status) is status

    @pytest.mark.parametrize("statuses", ENUMS, ids=ENUM_IDS)
    @pytest.mark.parametrize(
        "value", ["", "   ", "activ", "actives", "pending active", "ACTIVE!", None, 3, 1.0]
    )
    def test_unknown_values_raise_naming_the_value_and_the_allowed(
        self, statuses: type[Status], value: object
    ) -> None:
        """An unknown value raises UnknownStatus naming it and listing every allowed value."""
        if isinstance(value, str) and value.strip().lower() in {s.value for s in statuses}:
            pytest.skip("a real status of this enum")
        with pytest.raises(UnknownStatus) as caught:
            statuses.parse(value)
        message = str(caught.value)
        assert repr(value) in message
        for status in statuses:
            assert status.value in message
        assert caught.value.value == value
        assert caught.value.allowed == tuple(s.value for s in statuses)
        assert caught.value.field == "status"
        assert isinstance(caught.value, ValueError)
        assert isinstance(caught.value, SmilepassError)

    def test_a_status_of_another_set_is_refused(self) -> None:
        """A status from another enum, even with the same value, does not parse."""
        with pytest.raises(UnknownStatus, match="allowed: pending"):
            MembershipStatus.parse(PaymentPlanStatus.ACTIVE)
        with pytest.raises(UnknownStatus, match="'completed'"):
            MembershipStatus.parse("completed")
        with pytest.raises(UnknownStatus, match="'suspended'"):
            ReferralStatus.parse("suspended")

    @pytest.mark.parametrize("statuses", ENUMS, ids=ENUM_IDS)
    @given(text=st.text(max_size=12))
    def test_any_text_parses_exactly_when_it_names_a_status(
        self, statuses: type[Status], text: str
    ) -> None:
        """Random text parses iff, stripped and lower-cased, it is a status value."""
        wanted = {s.value: s for s in statuses}.get(text.strip().lower())
        if wanted is None:
            with pytest.raises(UnknownStatus):
                statuses.parse(text)
        else:
            assert statuses.parse(text) is wanted

    @pytest.mark.parametrize("statuses", ENUMS, ids=ENUM_IDS)
    @given(data=st.data())
    def test_random_casing_and_padding_parse(
        self, statuses: type[Status], data: st.DataObject
    ) -> None:
        """Any casing of a value with any surrounding whitespace parses to that status."""
        status = data.draw(st.sampled_from(list(statuses)))
        cased = "".join(c.upper() if data.draw(st.booleans()) else c for c in status.value)
        pad = st.text(alphabet=" \t\n", max_size=3)
        assert statuses.parse(data.draw(pad) + cased + data.draw(pad)) is status

    def test_status_enums_are_enums(self) -> None:
        """Every status set is an Enum subclass of Status."""
        for statuses in ENUMS:
            assert issubclass(statuses, Status)
            assert issubclass(statuses, enum.Enum)


class TestOnePolicyForEnumStrings:
    """Statuses and the other enums take host strings the same way everywhere: parsed as
    ``Status.parse`` does (case and spaces), or refused with a library error naming the
    field; never an AttributeError or TypeError from inside (issue #14)."""

    AT = datetime(2026, 3, 1, 9, tzinfo=UTC)

    def _pending(self) -> Member:
        return Member.enrol(
            id="m1",
            practice_id="p1",
            plan_id="plan",
            account_holder=Patient("pt1", "Ada Lovelace"),
            start_date=self.AT.date(),
            at=self.AT,
        )

    def test_a_transition_takes_a_status_string(self) -> None:
        """``transition("active")`` once raised AttributeError; it moves like ACTIVE."""
        member = self._pending()
        later = self.AT + timedelta(hours=1)
        assert member.transition(" Active ", at=later) == member.transition(_M.ACTIVE, at=later)

    @pytest.mark.parametrize("to", ["activ", "completed", 3, None, PaymentPlanStatus.ACTIVE])
    def test_a_transition_to_no_member_status_is_refused(self, to: object) -> None:
        """A misspelt string, another status set's member or a non-string raise
        UnknownStatus listing the member statuses."""
        with pytest.raises(UnknownStatus) as caught:
            self._pending().transition(to, at=self.AT)  # type: ignore[arg-type]
        assert "active" in str(caught.value)

    def test_domain_enums_parse_strings_like_statuses(self) -> None:
        """``billing_cycle="Monthly"``, ``payment_type=" plan "``, ``kind="CHARGE"`` and
        ``outcome="succeeded"`` build the same objects as the enum members."""
        from smilepass_core.domain import (
            BillingCycle,
            MembershipPlan,
            Payment,
            PaymentKind,
            PaymentOutcome,
        )
        from smilepass_core.money import Money

        price = Money.of("30", "AUD")
        assert MembershipPlan("pl", "p1", "Care", price, "Monthly") == MembershipPlan(
            "pl", "p1", "Care", price, BillingCycle.MONTHLY
        )
        assert Payment("x", "p1", price, "CHARGE", " succeeded ", self.AT, member_id="m1") == (
            Payment("x", "p1", price, PaymentKind.CHARGE, PaymentOutcome.SUCCEEDED, self.AT, "m1")
        )

    @pytest.mark.parametrize(
        ("build", "field"),
        [
            ("membership_plan", "billing_cycle"),
            ("payment_kind", "kind"),
            ("payment_outcome", "outcome"),
        ],
    )
    def test_an_unknown_enum_string_names_the_field_and_the_choices(
        self, build: str, field: str
    ) -> None:
        """``billing_cycle="daily"`` raised attrs' TypeError; now InvalidValue lists the
        allowed values."""
        from smilepass_core.domain import MembershipPlan, Payment
        from smilepass_core.money import Money

        price = Money.of("30", "AUD")
        makers = {
            "membership_plan": lambda: MembershipPlan("pl", "p1", "Care", price, "daily"),
            "payment_kind": lambda: Payment("x", "p1", price, "chargeback", "succeeded", self.AT),
            "payment_outcome": lambda: Payment("x", "p1", price, "charge", "maybe", self.AT),
        }
        with pytest.raises(InvalidValue) as caught:
            makers[build]()
        assert caught.value.field == field
        assert "must be a" in caught.value.reason

    def test_wrong_typed_parts_are_library_errors(self) -> None:
        """A dict for a Patient, a string for Money, 1 for a bool raise InvalidValue
        naming the field (attrs' instance_of raised TypeError)."""
        from smilepass_core.domain import InstalmentAttempt
        from smilepass_core.money import Money

        with pytest.raises(InvalidValue) as caught:
            Member.enrol(
                id="m1",
                practice_id="p1",
                plan_id="plan",
                account_holder={"id": "pt1", "name": "Ada"},  # type: ignore[arg-type]
                start_date=self.AT.date(),
                at=self.AT,
            )
        assert caught.value.field == "account_holder"
        for amount, succeeded, field in (("12.00", True, "amount"), (None, 1, "succeeded")):
            with pytest.raises(InvalidValue) as caught:
                InstalmentAttempt(
                    number=1,
                    at=self.AT,
                    amount=Money.of("12", "AUD") if amount is None else amount,  # type: ignore[arg-type]
                    succeeded=succeeded,  # type: ignore[arg-type]
                )
            assert caught.value.field == field


class TestHistoryLength:
    """One object's history holds at most MAX_HISTORY changes, built or loaded (bounded
    work: a record file with a million changes is refused before it is walked)."""

    def test_a_loaded_history_over_the_limit_is_refused(self) -> None:
        """A history of MAX_HISTORY + 1 changes is refused at validation, naming the field."""
        from smilepass_core.domain.lifecycle import MAX_HISTORY

        t = datetime(2026, 1, 1, tzinfo=UTC)
        changes = [StatusChange(t, None, _M.PENDING, "")]
        for k in range(1, MAX_HISTORY + 1):
            before = changes[-1].to
            to = _M.SUSPENDED if before is _M.ACTIVE else _M.ACTIVE
            changes.append(StatusChange(t + timedelta(seconds=k), before, to, ""))
        assert len(changes) == MAX_HISTORY + 1
        MEMBERSHIP_LIFECYCLE.validate(tuple(changes[:MAX_HISTORY]))
        with pytest.raises(InvalidValue, match="at most 10,000 changes") as caught:
            MEMBERSHIP_LIFECYCLE.validate(tuple(changes))
        assert caught.value.field == "history"

    def test_appending_past_the_limit_is_refused(self) -> None:
        """append() onto a full history is refused; the history is untouched."""
        from smilepass_core.domain.lifecycle import MAX_HISTORY

        t = datetime(2026, 1, 1, tzinfo=UTC)
        full = (StatusChange(t, None, _M.PENDING, ""),) * MAX_HISTORY
        with pytest.raises(InvalidValue, match="at most 10,000 changes"):
            MEMBERSHIP_LIFECYCLE.append(full, _M.ACTIVE, t)
