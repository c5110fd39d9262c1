"""InMemoryStore under threads: writers and readers at once lose nothing and crash nothing,
and a dashboard computed inside ``atomic()`` is the dashboard of one consistent state."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from smilepass_core import (
    InvalidRecord,
    Member,
    MemberQuery,
    MembershipStatus,
    Money,
    Patient,
    Payment,
    PaymentKind,
    PaymentOutcome,
    PaymentQuery,
    ScopeQuery,
    dashboard,
)
from smilepass_core.demo import DEMO_NOW, demo_store
from smilepass_core.kpi import effective_end

WRITERS, READERS, MEMBERS_EACH = 4, 4, 30
#: Readers stop after this many rounds even if the writers are still going.
MAX_ROUNDS = 50


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Threads switch every 50 µs (Python's default is 5 ms), so writes interleave reads."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(5e-5)
    yield
    sys.setswitchinterval(before)


def _member(k: int, i: int, plan: str) -> Member:
    at = DEMO_NOW - timedelta(days=3, minutes=k * 1000 + i)
    return Member.enrol(
        id=f"w{k}-m{i}",
        practice_id="syd",
        plan_id=plan,
        account_holder=Patient(f"w{k}-pat{i}", f"Writer {k} member {i}"),
        start_date=at.date(),
        at=at,
    ).activate(at=at)


def _charge(member: Member, amount: Money) -> Payment:
    return Payment(
        id=f"{member.id}-pay",
        practice_id="syd",
        amount=amount,
        kind=PaymentKind.CHARGE,
        outcome=PaymentOutcome.SUCCEEDED,
        at=member.history[-1].at,
        member_id=member.id,
    )


def _run(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive(), f"{thread.name} did not finish"


def _guarded(errors: list[BaseException], body: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        try:
            body()
        except BaseException as error:  # every failure of a thread is the test's failure
            errors.append(error)

    return run


class TestWritersAndReaders:
    """Four writer and four reader threads on one store."""

    def test_nothing_lost_nothing_crashes_and_each_dashboard_is_consistent(
        self, fast_switching: None
    ) -> None:
        """No thread raises; every member and payment written is there afterwards; the
        member indexes agree with a scan of the objects; each dashboard computed inside
        atomic() counts exactly the members a scan of the same state counts."""
        store = demo_store()
        plan = store.membership_plans.find(ScopeQuery(practices={"syd"}))[0]
        members_before = len(store.members)
        payments_before = store.payments.count(PaymentQuery())
        errors: list[BaseException] = []
        writers_done = threading.Event()
        checked: list[int] = []

        def write(k: int) -> None:
            for i in range(MEMBERS_EACH):
                member = _member(k, i, plan.id)
                store.members.add(member)
                store.payments.add(_charge(member, plan.price))
                if i % 3 == 0:
                    store.members.save(member.cancel(at=DEMO_NOW - timedelta(days=1)))

        def read() -> None:
            for _ in range(MAX_ROUNDS):
                if writers_done.is_set():
                    break
                with store.atomic():
                    board = dashboard(store, practices="syd", now=DEMO_NOW)
                    end = effective_end(board.ranges["syd"], DEMO_NOW)
                    scanned = sum(
                        1
                        for m in store.members
                        if m.practice_id == "syd"
                        and m.status_before(end) is MembershipStatus.ACTIVE
                    )
                assert board.members.value == scanned
                checked.append(scanned)
                store.payments.total(PaymentQuery(practices={"syd"}))
                store.members.find(MemberQuery(practices={"syd"}, statuses={"active"}))
                assert len(list(store.members)) >= members_before

        writers = [
            threading.Thread(target=_guarded(errors, lambda k=k: write(k)), name=f"writer {k}")
            for k in range(WRITERS)
        ]
        readers = [
            threading.Thread(target=_guarded(errors, read), name=f"reader {k}")
            for k in range(READERS)
        ]
        for reader in readers:
            reader.start()
        _run(writers)
        writers_done.set()
        for reader in readers:
            reader.join(timeout=120)
        assert not errors, errors[:3]
        assert checked, "no reader finished a round"

        written = WRITERS * MEMBERS_EACH
        assert len(store.members) == members_before + written
        assert store.payments.count(PaymentQuery()) == payments_before + written
        for k in range(WRITERS):
            for i in range(MEMBERS_EACH):
                expected = MembershipStatus.CANCELLED if i % 3 == 0 else MembershipStatus.ACTIVE
                assert store.members.get(f"w{k}-m{i}").status is expected
        for boundary in (DEMO_NOW - timedelta(days=2), DEMO_NOW):
            scanned = sum(
                1
                for m in store.members
                if m.practice_id == "syd" and m.status_before(boundary) is MembershipStatus.ACTIVE
            )
            assert store.members.active_at("syd", boundary) == scanned
            query = MemberQuery(practices={"syd"}, active_at=boundary)
            assert store.members.count(query) == scanned

    def test_a_failed_load_in_one_thread_leaves_nothing_for_the_others_to_see(
        self, fast_switching: None
    ) -> None:
        """load() is atomic across threads: a reader sees all of a load or none of it."""
        store = demo_store()
        plan = store.membership_plans.find(ScopeQuery(practices={"syd"}))[0]
        before = len(store.members)
        batch = [_member(9, i, plan.id) for i in range(50)]
        broken = [*batch, _member(9, 999, "no-such-plan")]  # the last one fails: nothing kept
        errors: list[BaseException] = []
        seen: list[int] = []
        done = threading.Event()

        def load() -> None:
            try:
                for _ in range(20):
                    with pytest.raises(InvalidRecord, match="no-such-plan"):
                        store.load(broken)
            finally:
                done.set()

        def watch() -> None:
            while not done.is_set():
                seen.append(len(store.members))

        threads = [
            threading.Thread(target=_guarded(errors, load)),
            threading.Thread(target=_guarded(errors, watch)),
        ]
        _run(threads)
        assert not errors, errors[:3]
        assert set(seen) <= {before}
        assert len(store.members) == before
