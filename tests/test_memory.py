"""InMemoryStore beyond the contract kit: timelines, fast paths, atomic loads, the ledger.

The repository contract kit (tests/test_contracts.py) already checks get/add/save,
find/count against ``matches`` and the sums on stores loaded in dependency order.
Here: the Timeline index itself, the KPI fast paths against brute force after
out-of-order adds and saves, load() atomicity and order, referential checks, the
ledger's rules, and the demo.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import itertools
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from unittest import mock

import attrs
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from smilepass_core import memory
from smilepass_core.demo import demo_store, load_demo
from smilepass_core.domain import (
    MEMBERSHIP_LIFECYCLE,
    BillingCycle,
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
    offer_from_template,
)
from smilepass_core.domain.overdue import (
    amount_overdue,
    is_overdue,
    overdue_outlook,
    overdue_outlook_at,
    unpaid_charges,
)
from smilepass_core.errors import (
    ConflictingPayment,
    CurrencyMismatch,
    DuplicateId,
    InvalidRecord,
    InvalidTransition,
    InvalidValue,
    NaiveDatetime,
    NotFound,
    RuleViolation,
    SmilepassError,
    VersionConflict,
)
from smilepass_core.memory import InMemoryStore, Timeline
from smilepass_core.money import Money
from smilepass_core.periods import DateRange
from smilepass_core.queries import (
    MemberQuery,
    Order,
    Page,
    PaymentPlanQuery,
    PaymentQuery,
    ReferralQuery,
    ScopeQuery,
)
from smilepass_core.read_only_list import ReadOnlyList
from smilepass_core.repositories import STORE_TYPES, as_record_error, load_order
from smilepass_core.testing import strategies as sps

_M = MembershipStatus
CHARGE, REFUND = PaymentKind.CHARGE, PaymentKind.REFUND
OK, FAILED = PaymentOutcome.SUCCEEDED, PaymentOutcome.FAILED

#: Whole datasets are slow to draw: a quarter of the profile's examples (50 under ``ci``),
#: keeping the profile's health-check choices.
DATASETS = settings(
    max_examples=settings.default.max_examples // 4,
    suppress_health_check=[*settings.default.suppress_health_check, HealthCheck.too_slow],
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
MICRO = timedelta(microseconds=1)

REPOSITORIES = (
    "practices",
    "staff_users",
    "membership_plans",
    "campaigns",
    "payment_plan_templates",
    "members",
    "payment_plans",
    "referrals",
    "payments",
)
#: A query matching everything, per repository.
EVERYTHING: dict[str, Any] = {
    "practices": ScopeQuery(),
    "staff_users": ScopeQuery(),
    "membership_plans": ScopeQuery(),
    "campaigns": ScopeQuery(),
    "payment_plan_templates": ScopeQuery(),
    "members": MemberQuery(),
    "payment_plans": PaymentPlanQuery(),
    "referrals": ReferralQuery(),
    "payments": PaymentQuery(),
}
WIDE = DateRange(datetime(2019, 1, 1, tzinfo=UTC), datetime(2033, 1, 1, tzinfo=UTC), "UTC")


# -- oracles -------------------------------------------------------------------------------


def _status_before(member: Member, boundary: datetime) -> MembershipStatus | None:
    """Replay the history by hand: the status after the last change strictly before B."""
    status = None
    for change in member.history:
        if change.at < boundary:
            status = change.to
    return status


def _first_active(member: Member) -> datetime | None:
    times = [c.at for c in member.history if c.to is _M.ACTIVE]
    return min(times) if times else None


def _newest_first(members: Iterable[Member]) -> list[str]:
    """Ids by first activation, newest first, ties by id ascending (two stable sorts)."""
    by_id = sorted(members, key=lambda m: m.id)
    by_id.sort(key=lambda m: _first_active(m) or WIDE.start, reverse=True)
    return [m.id for m in by_id]


def _in(values: frozenset[str] | None, value: str) -> bool:
    return values is None or value in values


def _committed(plan: PaymentPlan) -> datetime | None:
    """The earliest change into Active or Completed."""
    times = [
        c.at
        for c in plan.history
        if c.to in (PaymentPlanStatus.ACTIVE, PaymentPlanStatus.COMPLETED)
    ]
    return min(times) if times else None


def _signed_minor(p: Payment) -> int:
    if p.outcome is not OK:
        return 0
    return p.amount.minor if p.kind is CHARGE else -p.amount.minor


def _sums(pairs: Iterable[tuple[str, int]]) -> dict[str, Money]:
    """Per-currency sums of minor units, zero sums left out."""
    totals: dict[str, int] = collections.defaultdict(int)
    for currency, minor in pairs:
        totals[currency] += minor
    return {c: Money.from_minor(v, c) for c, v in totals.items() if v}


def _nonzero(totals: Any) -> dict[str, Money]:
    return {c: m for c, m in dict(totals).items() if not m.is_zero()}


def _counts(store: InMemoryStore) -> dict[str, tuple[int, int]]:
    return {
        name: (len(getattr(store, name)), getattr(store, name).count(EVERYTHING[name]))
        for name in REPOSITORIES
    }


def _snapshot(store: InMemoryStore, instants: Iterable[datetime]) -> dict[str, Any]:
    """Every object, and the fast-path answers at each instant."""
    times = sorted(set(instants))
    return {
        "objects": {
            name: {o.id: o for o in getattr(store, name).find(EVERYTHING[name])}
            for name in REPOSITORIES
        },
        "counts": _counts(store),
        "active": [store.members.count(MemberQuery(active_at=t)) for t in times],
        "ever": [store.members.count(MemberQuery(ever_active_before=t)) for t in times],
        "revenue": [
            _nonzero(store.payments.total(PaymentQuery(time_range=DateRange(WIDE.start, t, "UTC"))))
            for t in times
        ],
        "committed": _nonzero(store.payment_plans.total(PaymentPlanQuery(committed_in=WIDE))),
        "payments": store.payments.count(PaymentQuery(time_range=WIDE)),
    }


def _event_times(dataset: sps.Dataset) -> list[datetime]:
    return sorted(
        {c.at for m in dataset.members for c in m.history}
        | {p.at for p in dataset.payments}
        | {c.at for p in dataset.payment_plans for c in p.history}
    )


# -- a store built out of order, with members moved after loading ------------------------


@attrs.define
class Built:
    """A store and, independently, what it should hold."""

    store: InMemoryStore
    dataset: sps.Dataset
    members: dict[str, Member]

    def practice_sets(self) -> st.SearchStrategy[frozenset[str] | None]:
        ids = [p.id for p in self.dataset.practices] + ["p-unknown"]
        return st.none() | st.frozensets(st.sampled_from(ids))

    def moments(self) -> st.SearchStrategy[datetime]:
        """Instants on, just before and just after every status change, or anywhere."""
        times = sorted({c.at for m in self.members.values() for c in (*m.history, *m.plan_changes)})
        if not times:
            return sps.boundaries(self.dataset)
        near = st.sampled_from(times).flatmap(lambda t: st.sampled_from([t - MICRO, t, t + MICRO]))
        return near | sps.boundaries(self.dataset)

    def ranges(self, data: st.DataObject) -> DateRange:
        a, b = sorted((data.draw(self.moments(), label="a"), data.draw(self.moments(), label="b")))
        zones = sorted({p.timezone for p in self.dataset.practices})
        return DateRange(a, b, data.draw(st.sampled_from(zones), label="zone"))


def _build(
    data: st.DataObject,
    dataset: sps.Dataset,
    between: Callable[[InMemoryStore], object] = lambda store: None,
) -> Built:
    """Add every object repository by repository in a shuffled order (charges before refunds),
    then save a few members moved through their lifecycle or to another plan; ``between``
    reads the store after each repository's objects, the charges, the refunds and each
    move."""
    store = InMemoryStore()
    for name in REPOSITORIES[:-1]:
        for obj in data.draw(st.permutations(getattr(dataset, name)), label=name):
            getattr(store, name).add(obj)
        between(store)
    charges = [p for p in dataset.payments if p.kind is CHARGE]
    refunds = [p for p in dataset.payments if p.kind is REFUND]
    for p in data.draw(st.permutations(charges), label="charges"):
        store.payments.add(p)
    between(store)
    for p in data.draw(st.permutations(refunds), label="refunds"):
        store.payments.add(p)
    between(store)
    members = {m.id: m for m in dataset.members}
    ids = sorted(members)
    charges_of: dict[str, list[Payment]] = {}
    for p in charges:
        if p.member_id is not None:
            charges_of.setdefault(p.member_id, []).append(p)
    for _ in range(data.draw(st.integers(0, 6), label="moves") if ids else 0):
        member = members[data.draw(st.sampled_from(ids), label="member")]
        gap = timedelta(seconds=data.draw(st.integers(0, 60 * 86400), label="gap"))
        # After the offers of the member's plans from a template (a move stamped back
        # before one could leave the plan no offer of a members-only template).
        offers = [
            p.created_at + timedelta(seconds=1)
            for p in dataset.payment_plans
            if p.member_id == member.id and p.template_id is not None
        ]
        at = max([_last_change(member) + gap, *offers])
        # A plan change keeps the cycle and comes after the member's last charge (a store
        # refuses one back over a charged billing date: reprice_backdated).
        cycle = next(p.billing_cycle for p in dataset.membership_plans if p.id == member.plan_id)
        others = sorted(
            p.id
            for p in dataset.membership_plans
            if p.practice_id == member.practice_id
            and p.id != member.plan_id
            and p.billing_cycle is cycle
        )
        if others and member.status is not _M.CANCELLED and data.draw(st.booleans(), "replan"):
            at = max([at, *(p.at for p in charges_of.get(member.id, ()))])
            moved = member.change_plan(data.draw(st.sampled_from(others), "plan"), at=at)
        else:
            targets = sorted(MEMBERSHIP_LIFECYCLE.allowed(member.status), key=lambda s: s.value)
            if not targets:
                continue
            to = data.draw(st.sampled_from(targets), label="to")
            if to is _M.CANCELLED:  # no charge may follow a cancellation
                charges = [p.at for p in charges_of.get(member.id, ())]
                at = max([at, *charges])
            moved = member.transition(to, at=at, reason="moved in test")
        try:
            store.members.save(moved)
        except RuleViolation as refused:
            # A plan change after the last charge can still reprice a billing date that
            # charge paid ahead of it: refused, the store keeps the member as it was.
            if refused.rule != "reprice_backdated":
                raise
            kept = store.members.get(moved.id)
            if kept != member:
                raise AssertionError(f"a refused save changed {moved.id}") from refused
            continue
        members[moved.id] = moved
        between(store)
    return Built(store, dataset, members)


# -- Timeline -------------------------------------------------------------------------------


def _t(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _value(at: datetime, id: str) -> int:
    """A fixed value per (instant, id), negative for some ids."""
    return (at.minute + 1) * (1 if id in "ac" else -3)


_OPS = st.lists(
    st.tuples(
        st.sampled_from(["add", "add", "remove"]), st.integers(0, 6), st.sampled_from("abcd")
    ),
    max_size=40,
)
_BOUNDS = st.none() | st.integers(-1, 8).map(_t)


def _oracle_window(
    entries: list[tuple[datetime, str, int]], start: datetime | None, end: datetime | None
) -> list[tuple[datetime, str, int]]:
    inside = [
        e for e in entries if (start is None or start <= e[0]) and (end is None or e[0] < end)
    ]
    return sorted(inside, key=lambda e: (e[0], e[1]))


def _oracle_latest(
    entries: list[tuple[datetime, str, int]], end: datetime | None, n: int
) -> list[tuple[datetime, str]]:
    before = [(e[0], e[1]) for e in _oracle_window(entries, None, end)]
    if n == 0 or not before:
        return []
    oldest = before[-n][0] if n <= len(before) else before[0][0]
    return [e for e in before if e[0] >= oldest]


def _check_timeline(
    timeline: Timeline,
    entries: list[tuple[datetime, str, int]],
    start: datetime | None,
    end: datetime | None,
    n: int,
) -> None:
    window = _oracle_window(entries, start, end)
    assert len(timeline) == len(entries)
    assert timeline.count(start, end) == len(window)
    assert timeline.total(start, end) == sum(e[2] for e in window)
    assert list(timeline.between(start, end)) == [(e[0], e[1]) for e in window]
    assert list(timeline.latest(end, n)) == _oracle_latest(entries, end, n)
    asked = [at for at in (end, start, end) if at is not None]  # one asked twice
    for at in asked:  # the batched reads, before each instant asked
        before = [e for e in entries if e[0] < at]
        assert timeline.counts_before(asked)[at] == len(before)
        assert timeline.totals_before(asked)[at] == sum(e[2] for e in before)


class TestTimeline:
    """Sorted (instant, id) entries with prefix sums: half-open reads, duplicates, removal."""

    @given(data=st.data(), ops=_OPS)
    def test_agrees_with_a_plain_list(self, data: st.DataObject, ops: list[Any]) -> None:
        """After any mix of adds (out of order, duplicates) and removals, every read equals a
        brute force over a plain list, including the prefix sums."""
        timeline = Timeline()
        entries: list[tuple[datetime, str, int]] = []
        for op, minute, id in ops:
            at = _t(minute)
            if op == "add":
                timeline.add(at, id, _value(at, id))
                entries.append((at, id, _value(at, id)))
            elif any(e[:2] == (at, id) for e in entries):
                timeline.remove(at, id)
                entries.remove((at, id, _value(at, id)))
            else:
                with pytest.raises(KeyError):
                    timeline.remove(at, id)
            start, end = data.draw(_BOUNDS, label="start"), data.draw(_BOUNDS, label="end")
            _check_timeline(timeline, entries, start, end, data.draw(st.integers(0, 5), label="n"))
        for start in (None, *map(_t, range(-1, 8))):
            for end in (None, *map(_t, range(-1, 8))):
                _check_timeline(timeline, entries, start, end, 2)

    @given(
        data=st.data(),
        batch=st.integers(0, 1).flatmap(  # merged one by one, or (past 16) by one sort
            lambda past: st.lists(
                st.tuples(st.integers(-2, 9), st.sampled_from("abc")),
                min_size=17 * past,
                max_size=16 + 44 * past,
            )
        ),
        after=st.lists(st.tuples(st.integers(-2, 9), st.sampled_from("abc")), max_size=5),
    )
    def test_a_batch_added_in_any_order_then_read_agrees(
        self, data: st.DataObject, batch: list[Any], after: list[Any]
    ) -> None:
        """Many adds in any order before a read (merged by one sort past 16 waiting), then
        a removal and a few more adds: every read equals a brute force over a plain list."""
        timeline = Timeline()
        entries: list[tuple[datetime, str, int]] = []
        for minute, id in batch:
            timeline.add(_t(minute), id, _value(_t(minute), id))
            entries.append((_t(minute), id, _value(_t(minute), id)))
        assert len(timeline) == len(entries)
        if entries:
            at, id, value = entries[data.draw(st.integers(0, len(entries) - 1), label="gone")]
            timeline.remove(at, id)
            entries.remove((at, id, value))
        for minute, id in after:
            timeline.add(_t(minute), id, _value(_t(minute), id))
            entries.append((_t(minute), id, _value(_t(minute), id)))
        for start in (None, *map(_t, range(-3, 11, 3))):
            for end in (None, *map(_t, range(-1, 11, 4))):
                _check_timeline(timeline, entries, start, end, data.draw(st.integers(0, 5)))

    @given(
        data=st.data(),
        batches=st.lists(
            st.tuples(
                st.lists(st.tuples(st.integers(-2, 9), st.sampled_from("abc")), max_size=12),
                st.sampled_from(["in order", "by instant only", "any"]),
            ),
            max_size=6,
        ),
    )
    def test_extend_agrees_with_adds(self, data: st.DataObject, batches: list[Any]) -> None:
        """Batches extended (in order, by instant but not by id within an instant, or
        in any order; after the last entry or not), with reads and a removal between
        them: every read equals a brute force over a plain list, with the prefix sums."""
        timeline = Timeline()
        entries: list[tuple[datetime, str, int]] = []
        for batch, order in batches:
            added = [(_t(minute), id, _value(_t(minute), id)) for minute, id in batch]
            if order != "any":
                added.sort(key=lambda e: e[:2] if order == "in order" else e[0])
            columns = ([e[0] for e in added], [e[1] for e in added], [e[2] for e in added])
            given = [list(c) for c in columns]
            latest = max(entries, default=None)
            appended = (
                order != "any"
                and not timeline._tail_ats
                and (latest is None or not added or min(added) > latest)
            )
            timeline.extend(*columns)
            assert [list(c) for c in columns] == given  # the caller's lists untouched
            if appended:  # in time order after every entry: no sort waits
                assert not timeline._tail_ats
            entries += added
            if entries and data.draw(st.booleans(), label="remove one"):
                at, id, value = entries[data.draw(st.integers(0, len(entries) - 1), "gone")]
                timeline.remove(at, id)
                entries.remove((at, id, value))
            start, end = data.draw(_BOUNDS, label="start"), data.draw(_BOUNDS, label="end")
            _check_timeline(timeline, entries, start, end, data.draw(st.integers(0, 5), label="n"))
        for start in (None, *map(_t, range(-3, 11, 3))):
            for end in (None, *map(_t, range(-1, 11, 4))):
                _check_timeline(timeline, entries, start, end, 2)

    def test_ranges_are_half_open(self) -> None:
        """An entry at start is inside [start, end), one at end is not."""
        timeline = Timeline()
        timeline.add(_t(0), "a", 5)
        timeline.add(_t(1), "b", 7)
        assert timeline.count(_t(0), _t(1)) == 1
        assert timeline.total(_t(0), _t(1)) == 5
        assert list(timeline.between(_t(0), _t(1))) == [(_t(0), "a")]
        assert timeline.count(_t(1)) == 1
        assert timeline.total(end=_t(1)) == 5
        assert timeline.count() == 2
        assert timeline.total() == 12

    def test_reversed_bounds_hold_nothing(self) -> None:
        """A start after the end counts nothing, sums to zero and lists nothing."""
        timeline = Timeline()
        for minute in range(4):
            timeline.add(_t(minute), "a", 1)
        assert timeline.count(_t(3), _t(1)) == 0
        assert timeline.total(_t(3), _t(1)) == 0
        assert list(timeline.between(_t(3), _t(1))) == []

    def test_duplicates_count_and_sum_each_time(self) -> None:
        """The same (instant, id) twice counts twice; removing it once leaves one."""
        timeline = Timeline()
        timeline.add(_t(0), "a", 5)
        timeline.add(_t(0), "a", 5)
        assert (timeline.count(), timeline.total(), len(timeline)) == (2, 10, 2)
        timeline.remove(_t(0), "a")
        assert (timeline.count(), timeline.total(), len(timeline)) == (1, 5, 1)

    @pytest.mark.parametrize(("minute", "id"), [(0, "b"), (1, "a"), (5, "z")])
    def test_removing_a_missing_entry_raises_key_error(self, minute: int, id: str) -> None:
        """remove() of an entry not held raises KeyError naming it and changes nothing."""
        timeline = Timeline()
        timeline.add(_t(0), "a", 5)
        with pytest.raises(KeyError) as caught:
            timeline.remove(_t(minute), id)
        assert caught.value.args == ((_t(minute), id),)
        assert list(timeline.between()) == [(_t(0), "a")]
        assert timeline.total() == 5
        with pytest.raises(KeyError):
            Timeline().remove(_t(0), "a")

    def test_prefix_sums_survive_out_of_order_inserts_and_removals(self) -> None:
        """Totals stay exact through appends, an insert in the middle and a removal."""
        timeline = Timeline()
        timeline.add(_t(2), "a", 10)
        assert timeline.total() == 10
        timeline.add(_t(0), "b", 100)  # before the first entry
        assert timeline.total(end=_t(1)) == 100
        assert timeline.total(_t(1)) == 10
        timeline.add(_t(5), "c", 1000)  # an append after a lazy rebuild
        assert timeline.total() == 1110
        timeline.add(_t(3), "d", -7)
        timeline.remove(_t(0), "b")
        assert timeline.total() == 1003
        assert timeline.total(_t(3), _t(5)) == -7
        assert timeline.total(_t(2), _t(4)) == 3

    def test_latest_keeps_every_entry_tied_with_the_oldest(self) -> None:
        """latest(end, n) gives at least n entries before end, with all ties of the oldest."""
        timeline = Timeline()
        for at, id in [(_t(0), "a"), (_t(0), "b"), (_t(1), "c"), (_t(2), "d")]:
            timeline.add(at, id)
        assert list(timeline.latest(None, 1)) == [(_t(2), "d")]
        assert list(timeline.latest(_t(2), 2)) == [(_t(0), "a"), (_t(0), "b"), (_t(1), "c")]
        assert list(timeline.latest(_t(1), 1)) == [(_t(0), "a"), (_t(0), "b")]
        assert list(timeline.latest(None, 10)) == list(timeline.between())
        assert list(timeline.latest(None, 0)) == []
        assert list(timeline.latest(_t(0), 3)) == []


class TestTimelines:
    """A timeline per practice and the same entries merged over the sets read together:
    every read over a set, merged or not, equals a brute force over its keys' entries."""

    @given(
        data=st.data(),
        merge_at=st.integers(1, 3),
        kept=st.integers(1, 3),
        ops=st.lists(
            st.tuples(
                st.sampled_from(["add", "add", "remove", "read"]),
                st.integers(0, 4),
                st.sampled_from("abc"),
                st.sampled_from("pqr"),
            ),
            max_size=60,
        ),
    )
    def test_reads_over_sets_agree_through_writes(
        self, data: st.DataObject, merge_at: int, kept: int, ops: list[Any]
    ) -> None:
        """Adds (out of order, ties across keys) and removals between reads of sets of
        keys (merged at their ``merge_at``-th read, ``kept`` sets at most): every read,
        and every merged timeline's entries, equal the keys' entries sorted."""
        timelines: memory.Timelines[datetime] = memory.Timelines()
        entries: dict[str, list[tuple[datetime, str, int]]] = {}
        sets = st.frozensets(st.sampled_from("pqrs"))  # "s" never has an entry
        with (
            mock.patch.object(memory.Timelines, "MERGE_AT", merge_at),
            mock.patch.object(memory.Timelines, "KEPT", kept),
        ):
            for op, minute, id, key in ops:
                at, mine = _t(minute), f"{key}-{id}"  # ids differ across keys
                held = entries.setdefault(key, [])
                if op == "add":
                    timelines.add(key, at, mine, _value(at, id))
                    held.append((at, mine, _value(at, id)))
                elif op == "remove" and any(e[:2] == (at, mine) for e in held):
                    timelines.remove(key, at, mine)
                    held.remove((at, mine, _value(at, id)))
                keys = data.draw(sets, label="keys")
                over = timelines.over(keys)
                expected = sorted(
                    (e for k in keys for e in entries.get(k, ())), key=lambda e: (e[0], e[1])
                )
                start, end = data.draw(_BOUNDS, label="start"), data.draw(_BOUNDS, label="end")
                window = _oracle_window(expected, start, end)
                assert sum(t.count(start, end) for t in over) == len(window)
                assert sum(t.total(start, end) for t in over) == sum(e[2] for e in window)
                edges = [_t(m) for m in range(-1, 8, 3)]
                counts = [sum(c) for c in zip(*(t.counts(edges) for t in over), strict=True)]
                assert (
                    counts
                    == [len(_oracle_window(expected, a, b)) for a, b in itertools.pairwise(edges)]
                    or not over
                )
                if len(over) == 1:  # one key's own timeline, or the set's merged one
                    assert list(over[0].between()) == [(e[0], e[1]) for e in expected]
                    assert over[0].total() == sum(e[2] for e in expected)
            assert len(timelines._merged) <= kept
            for keys, merged in timelines._merged.items():
                expected = sorted(
                    (e for k in keys for e in entries.get(k, ())), key=lambda e: (e[0], e[1])
                )
                assert list(merged.between()) == [(e[0], e[1]) for e in expected]
                assert [merged.total(e[0], e[0] + MICRO) for e in expected] == [
                    sum(x[2] for x in expected if x[0] == e[0]) for e in expected
                ]

    def test_extending_by_nothing_makes_no_timeline(self) -> None:
        """``extend`` with no entries leaves a key without a timeline, as no ``add``
        does (so that a read over a set of keys meets no empty timeline)."""
        timelines: memory.Timelines[datetime] = memory.Timelines()
        timelines.extend("syd", [], [], [])
        assert timelines.get("syd") is None
        timelines.extend("syd", [T0], ["a"], [3])
        assert timelines.of("syd").total() == 3

    def test_a_set_is_merged_at_its_second_read_and_the_oldest_dropped(self) -> None:
        """One read of a set gives each key's timeline; the second, one merged timeline
        (ties at an instant by id, across keys); past ``KEPT`` sets the least recently
        read is dropped; a set of one key is its own timeline."""
        timelines: memory.Timelines[datetime] = memory.Timelines()
        for key, minute, id in [("p", 1, "b"), ("q", 1, "a"), ("q", 0, "c"), ("r", 2, "d")]:
            timelines.add(key, _t(minute), id)
        first = timelines.over(frozenset("pq"))
        assert first == [timelines.get("p"), timelines.get("q")] or first == [
            timelines.get("q"),
            timelines.get("p"),
        ]
        (merged,) = timelines.over(frozenset("pq"))
        assert list(merged.between()) == [(_t(0), "c"), (_t(1), "a"), (_t(1), "b")]
        assert timelines.over(frozenset("pq")) == [merged]
        assert timelines.over(frozenset("p")) == [timelines.get("p")]
        assert timelines.over(frozenset("pz")) == [timelines.get("p")]  # z: no entry
        with mock.patch.object(memory.Timelines, "KEPT", 2):
            for keys in ("qr", "qr", "pr", "pr"):  # merged: pq, qr, then pr drops pq
                timelines.over(frozenset(keys))
            assert list(timelines._merged) == [frozenset("qr"), frozenset("pr")]
        timelines.add("p", _t(1), "a0")  # into p's timeline and the merged p-r, in order
        assert list(timelines._merged[frozenset("pr")].between(_t(1), _t(2))) == [
            (_t(1), "a0"),
            (_t(1), "b"),
        ]
        assert list(timelines._merged[frozenset("qr")].between(_t(1), _t(2))) == [(_t(1), "a")]
        timelines.remove("p", _t(1), "b")  # from p's timeline and the merged p-r
        assert list(timelines._merged[frozenset("pr")].between()) == [
            (_t(1), "a0"),
            (_t(2), "d"),
        ]
        assert merged not in timelines.values()
        assert len(timelines.values()) == 3 + 2
        with mock.patch.object(memory.Timelines, "KEPT", 2):
            timelines.over(frozenset("qr"))  # read again: now the most recent
            timelines.over(frozenset("pqr"))
            timelines.over(frozenset("pqr"))  # merged: drops p-r, read least recently
            assert list(timelines._merged) == [frozenset("qr"), frozenset("pqr")]

    @given(
        runs=st.lists(
            st.lists(st.tuples(st.integers(0, 5), st.integers(-9, 9)), max_size=12), max_size=5
        )
    )
    def test_merged_is_the_timelines_entries_in_order(self, runs: list[Any]) -> None:
        """``Timeline.merged`` holds every entry of its timelines by (instant, id), with
        their values, ties at an instant across timelines ordered by id."""
        timelines, expected = [], []
        for k, run in enumerate(runs):
            timeline = Timeline()
            for n, (minute, value) in enumerate(run):
                id = f"{(n * 7 + k) % 5}-{k}-{n}"  # ids unique, not in key order
                timeline.add(_t(minute), id, value)
                expected.append((_t(minute), id, value))
            timelines.append(timeline)
        merged = Timeline.merged(timelines)
        expected.sort(key=lambda e: (e[0], e[1]))
        assert list(merged.between()) == [(e[0], e[1]) for e in expected]
        assert [merged.total(end=e[0]) for e in expected] == [
            sum(x[2] for x in expected if x[0] < e[0]) for e in expected
        ]
        assert merged._values == [e[2] for e in expected]
        assert len(merged) == len(expected)


# -- fast paths ----------------------------------------------------------------------------


class TestActiveSets:
    """Who was Active when, as bit sets with snapshots: the retained count equals the
    members whose toggles put them Active at both boundaries, through any writes."""

    @settings(deadline=None)
    @given(
        data=st.data(),
        every=st.integers(1, 4),
        stale=st.sampled_from([0, 1, 2, 3, 2048]),
        bits=st.sampled_from([1, 2, 384]),
    )
    def test_retained_through_writes(
        self, data: st.DataObject, every: int, stale: int, bits: int
    ) -> None:
        """Members' toggles are written (replaced, in any order, or removed) between
        reads; each read equals the count from the toggles, whatever the snapshots."""
        t0 = datetime(2026, 3, 1, tzinfo=UTC)
        became, left = Timeline(), Timeline()
        toggles: dict[str, tuple[datetime, ...]] = {}
        sets = memory.ActiveSets(became, left)
        minutes = st.integers(0, 20)
        asked: list[tuple[datetime, datetime]] = []

        def check(start: datetime, end: datetime) -> None:
            def active(mine: tuple[datetime, ...], at: datetime) -> bool:
                return sum(t < at for t in mine) % 2 == 1

            expected = sum(active(m, start) and active(m, end) for m in toggles.values())
            assert sets.retained(start, end, len(toggles)) == expected

        with (
            mock.patch.object(memory.ActiveSets, "EVERY", every),
            mock.patch.object(memory.ActiveSets, "STALE", stale),
            mock.patch.object(memory.ActiveSets, "BITS", bits),
        ):
            for step in range(data.draw(st.integers(1, 20), label="steps")):
                if step < 8 or data.draw(st.booleans(), label="write"):
                    member = (
                        "abcdefgh"[step] if step < 8 else data.draw(st.sampled_from("abcdefgh"))
                    )
                    kept = len(toggles.get(member, ()))
                    for k, at in enumerate(toggles.pop(member, ())):
                        (became if k % 2 == 0 else left).remove(at, member)
                    # As many toggles as before, moved (the snapshots are then corrected,
                    # not taken again), or any number.
                    size = kept if step >= 8 and data.draw(st.booleans(), label="moved") else None
                    drawn = st.lists(
                        minutes, min_size=size or 0, max_size=6 if size is None else size
                    )
                    new = tuple(
                        t0 + timedelta(minutes=m) for m in sorted(data.draw(drawn, label="at"))
                    )
                    if new:
                        toggles[member] = new
                        for k, at in enumerate(new):
                            (became if k % 2 == 0 else left).add(at, member)
                    sets.touch(member, new)
                    if asked:  # the boundaries read before the write, read again
                        check(*asked[-1])
                    continue
                a, b = sorted(data.draw(st.lists(minutes, min_size=2, max_size=2), label="a b"))
                # On a toggle's instant, or a microsecond after (where a snapshot may be).
                ticks = data.draw(st.lists(st.integers(0, 1), min_size=2, max_size=2))
                start = t0 + timedelta(minutes=a, microseconds=ticks[0])
                asked.append((start, max(start, t0 + timedelta(minutes=b, microseconds=ticks[1]))))
                check(*asked[-1])

    def test_members_of_one_toggle_written_after_the_take(self) -> None:
        """Members Active once and never stopped are counted outside the bit sets, from
        their toggle; written after the take, each is counted once, from its toggles
        now (one Active at ``a`` exactly is not Active at ``a``)."""
        t0 = datetime(2026, 3, 1, tzinfo=UTC)
        a, b = t0 + HOUR, t0 + 5 * HOUR
        became, left = Timeline(), Timeline()
        for at, member in ((t0, "x"), (a, "y"), (t0, "z")):
            became.add(at, member)
        left.add(t0 + 2 * HOUR, "z")
        sets = memory.ActiveSets(became, left)
        # The writes below are told to the sets alone, not to the timelines: right only
        # while nothing is taken again (STALE writes away).
        assert sets.retained(a, b, 3) == 1  # x; y only from a on; z stopped before b
        sets.touch("x", (t0,))  # written, unchanged
        assert (sets.retained(a, b, 3), sets.retained(b, a, 3)) == (1, 1)
        sets.touch("y", (t0,))  # moved before a
        assert sets.retained(a, b, 3) == 2
        sets.touch("x", (t0, t0 + 3 * HOUR))  # stopped between a and b
        assert sets.retained(a, b, 3) == 1
        sets.touch("x", ())  # gone
        assert sets.retained(a, t0 + 2 * HOUR, 3) == 2  # y, z (stopping at it, not before)

    def test_a_member_becoming_active_twice_without_stopping_has_a_bit(self) -> None:
        """Toggles that do not alternate (two becoming Active, none stopping) are counted
        by their number before each boundary, as every member's are: not as a member
        of one toggle."""
        t0 = datetime(2026, 3, 1, tzinfo=UTC)
        became, left = Timeline(), Timeline()
        became.add(t0, "w")
        became.add(t0 + 2 * HOUR, "w")
        became.add(t0, "x")
        sets = memory.ActiveSets(became, left)
        assert sets.retained(t0 + HOUR, t0 + HOUR, 2) == 2  # one toggle before: Active
        assert sets.retained(t0 + HOUR, t0 + 3 * HOUR, 2) == 1  # w: two before 3h
        assert sets._singles == {"x": t0}  # w has a bit

    def test_a_member_gone_to_another_practice_leaves_the_first(self) -> None:
        """A member of one practice undone by a failed load (after that practice's
        retained count was read), then loaded into another practice, counts only there."""
        plans = [SYD_GOLD, attrs.evolve(SYD_GOLD, id="nyc-gold", practice_id="nyc")]
        nyc = Practice("nyc", "Hudson Smiles", "America/New_York", "AUD")
        t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        store = InMemoryStore.from_objects([SYD, nyc, *plans, _member("a").activate(at=t0)])
        a, b = t0 + timedelta(hours=2), t0 + timedelta(hours=5)

        def retained(practices: set[str] | None) -> int:
            query = MemberQuery(practices=practices, active_at=a, retained_until=b)
            return store.members.count(query)

        assert retained({"syd"}) == 1  # the snapshots of syd are taken
        with pytest.raises(InvalidRecord):
            store.load([_member("x").activate(at=t0), _member("bad", plan_id="no-such-plan")])
        assert retained({"syd"}) == 1
        moved = _member("x", practice_id="nyc", plan_id="nyc-gold").activate(at=t0)
        store.load([moved])
        assert (retained({"syd"}), retained({"nyc"}), retained(None)) == (1, 1, 2)
        assert retained({"no-such-practice"}) == 0


class TestMergedPractices:
    """Reads over several practices from their merged timelines (and the retained count
    from sets taken over them) equal the same reads practice by practice."""

    @DATASETS
    @given(
        data=st.data(),
        dataset=sps.datasets(max_practices=3),
        kept=st.integers(1, 3),
        every=st.integers(1, 3),
        stale=st.sampled_from([0, 1, 2048]),
    )
    def test_reads_through_writes_equal_a_store_read_practice_by_practice(
        self, data: st.DataObject, dataset: sps.Dataset, kept: int, every: int, stale: int
    ) -> None:
        """Sets of practices are read between the writes of a build (merged at their first
        read, ``kept`` sets at most; snapshots every ``every`` toggles, taken again after
        ``stale`` writes): the reads at the end equal those of a store loaded with the
        same objects that merges nothing."""
        ids = [p.id for p in dataset.practices]
        sets = [
            None,
            *data.draw(st.lists(st.frozensets(st.sampled_from([*ids, "p-x"])), max_size=3)),
        ]
        drawn = data.draw(st.lists(sps.boundaries(dataset), min_size=1, max_size=3))
        instants = sorted([*drawn, _PAST_EVERY_MOVE])  # where a move shows
        pairs = list(itertools.pairwise(instants))

        def reads(store: InMemoryStore) -> list[Any]:
            return _reads_over(store, sets, pairs, instants)

        with (
            mock.patch.object(memory.Timelines, "MERGE_AT", 1),
            mock.patch.object(memory.Timelines, "KEPT", kept),
            mock.patch.object(memory.ActiveSets, "EVERY", every),
            mock.patch.object(memory.ActiveSets, "STALE", stale),
        ):
            built = _build(data, dataset, between=reads)
            merged = reads(built.store)
        with mock.patch.object(memory.Timelines, "MERGE_AT", 10**9):
            objects = [o for name in REPOSITORIES for o in getattr(built.store, name)]
            apart = InMemoryStore.from_objects(objects)
            assert reads(apart) == merged
            assert not apart.members._scope_sets

    def test_sets_over_dropped_timelines_are_taken_again(self) -> None:
        """The retained count over two practices after their merged timelines were
        dropped (another set read) and a member joined, then a failed load undone: from
        sets taken over the timelines merged again, never the dropped ones."""
        zones = {"nyc": "America/New_York", "lon": "Europe/London"}
        others = [Practice(p, p, z, "AUD") for p, z in zones.items()]
        plans = [SYD_GOLD, *(attrs.evolve(SYD_GOLD, id=f"{p}-gold", practice_id=p) for p in zones)]
        t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        members = [
            _member(f"{m}-{p}", practice_id=p, plan_id=f"{p}-gold").activate(at=t0)
            for p in ("syd", *zones)
            for m in "mn"
        ]
        # One member of each practice leaves after b: every practice has both timelines.
        members[1::2] = [m.transition(_M.CANCELLED, at=t0 + 9 * HOUR) for m in members[1::2]]
        store = InMemoryStore.from_objects([SYD, *others, *plans, *members])
        a, b = t0 + HOUR, t0 + 5 * HOUR
        pair, other = frozenset({"syd", "nyc"}), frozenset({"syd", "lon"})

        def retained(practices: frozenset[str]) -> int:
            query = MemberQuery(practices=practices, active_at=a, retained_until=b)
            return store.members.count(query)

        with (
            mock.patch.object(memory.Timelines, "MERGE_AT", 1),
            mock.patch.object(memory.Timelines, "KEPT", 1),
        ):
            with mock.patch.object(memory.ActiveSets, "STALE", 0):  # taken at each write
                assert retained(pair) == 4  # sets over the merged syd-nyc timelines
                assert pair in store.members._scope_sets
                assert store.members.count(MemberQuery(practices=other, active_at=a)) == 4
                assert pair not in store.members._became._merged  # dropped for syd-lon
                store.members.add(_member("m-new").activate(at=t0))
                assert pair not in store.members._scope_sets  # dropped with its timelines
                assert retained(pair) == 5
            # Written members now set from their toggles: "x" from none once undone.
            with pytest.raises(InvalidRecord):
                store.load([_member("x").activate(at=t0), _member("bad", plan_id="no-plan")])
            assert retained(pair) == 5


#: An instant after every change a test makes (at the status a member ends with).
_PAST_EVERY_MOVE = datetime(2100, 1, 1, tzinfo=UTC)


def _reads_over(
    store: InMemoryStore,
    sets: list[frozenset[str] | None],
    pairs: list[tuple[datetime, datetime]],
    edges: list[datetime],
) -> list[Any]:
    """Every read the store answers from its timelines, over each set of practices."""
    members, payments, plans = store.members, store.payments, store.payment_plans
    out: list[Any] = []
    for practices in sets:
        for a, b in pairs:
            r = DateRange(a, b, "UTC")
            feed = members.find(
                MemberQuery(practices=practices, ever_active_before=b),
                order=Order("-first_activated_at", page=Page(limit=3)),
            )
            out += [
                members.count(MemberQuery(practices=practices, active_at=a)),
                members.count(MemberQuery(practices=practices, active_at=a, retained_until=b)),
                members.count(MemberQuery(practices=practices, ever_active_before=b)),
                members.count(MemberQuery(practices=practices, first_activated_in=r)),
                [m.id for m in feed],
                payments.total(PaymentQuery(practices=practices, time_range=r)),
                payments.total(PaymentQuery(practices=practices, time_range=r, kinds={REFUND})),
                payments.count(PaymentQuery(practices=practices, time_range=r)),
                plans.total(PaymentPlanQuery(practices=practices, committed_in=r)),
            ]
        out.append(members.first_activated_counts(practices=practices, edges=edges))
        out.append(plans.committed_totals(practices=practices, edges=edges))
        out.append(members.active_counts(practices=practices, at=edges))
        out.append(members.ever_active_counts(practices=practices, before=edges))
        out.append(members.retained_counts(practices=practices, spans=pairs))
        out.append(payments.window_totals(practices=practices, windows=pairs))
    return out


class TestMemberFastPaths:
    """The member KPI reads answered from timelines equal brute force over the members,
    after shuffled adds and lifecycle saves."""

    @DATASETS
    @given(data=st.data(), dataset=sps.datasets())
    def test_active_at(self, data: st.DataObject, dataset: sps.Dataset) -> None:
        """count(active_at=B) is the number of members whose last change before B is Active."""
        built = _build(data, dataset)
        for _ in range(5):
            practices = data.draw(built.practice_sets(), label="practices")
            b = data.draw(built.moments(), label="B")
            query = MemberQuery(practices=practices, active_at=b)
            expected = sorted(
                m.id
                for m in built.members.values()
                if _in(practices, m.practice_id) and _status_before(m, b) is _M.ACTIVE
            )
            assert built.store.members.count(query) == len(expected)
            assert sorted(m.id for m in built.store.members.find(query)) == expected

    @DATASETS
    @given(
        data=st.data(),
        dataset=sps.datasets(),
        every=st.sampled_from([1, 2, 3, 64, 2048]),
        stale=st.sampled_from([1, 2, 2048]),
    )
    def test_retained(
        self, data: st.DataObject, dataset: sps.Dataset, every: int, stale: int
    ) -> None:
        """count(active_at=A, retained_until=B) counts members Active at both boundaries
        (the who-was-Active snapshots taken every ``every`` toggles, and again after
        ``stale`` members written)."""
        with (
            mock.patch.object(memory.ActiveSets, "EVERY", every),
            mock.patch.object(memory.ActiveSets, "STALE", stale),
        ):
            self._retained(data, dataset)

    def _retained(self, data: st.DataObject, dataset: sps.Dataset) -> None:
        built = _build(data, dataset)
        for _ in range(5):
            practices = data.draw(built.practice_sets(), label="practices")
            a = data.draw(built.moments(), label="A")
            b = data.draw(built.moments(), label="B")
            query = MemberQuery(practices=practices, active_at=a, retained_until=b)
            expected = [
                m.id
                for m in built.members.values()
                if _in(practices, m.practice_id)
                and _status_before(m, a) is _M.ACTIVE
                and _status_before(m, b) is _M.ACTIVE
            ]
            assert built.store.members.count(query) == len(expected)
            assert len(built.store.members.find(query)) == len(expected)

    @DATASETS
    @given(data=st.data(), dataset=sps.datasets())
    def test_current_statuses(self, data: st.DataObject, dataset: sps.Dataset) -> None:
        """find and count by current statuses (read from the status index, kept through
        saves) are the members whose latest status is one of them."""
        built = _build(data, dataset)
        for _ in range(3):
            practices = data.draw(built.practice_sets(), label="practices")
            statuses = data.draw(st.sets(st.sampled_from(_M)), label="statuses")
            query = MemberQuery(practices=practices, statuses=statuses)
            expected = sorted(
                m.id
                for m in built.members.values()
                if _in(practices, m.practice_id) and m.status in statuses
            )
            assert [m.id for m in built.store.members.find(query)] == expected
            assert built.store.members.count(query) == len(expected)
            # Sorted by start date (the index's own order) or the other way, paged.
            descending = data.draw(st.booleans(), label="descending")
            limit = data.draw(st.none() | st.integers(0, 6), label="limit")
            offset = data.draw(st.integers(0, 4), label="offset")
            order = Order("-start_date" if descending else "start_date", page=Page(limit, offset))
            by_start = sorted(
                (built.members[i] for i in expected),
                key=lambda m: (-m.start_date.toordinal() if descending else m.start_date, m.id),
            )
            stop = None if limit is None else offset + limit
            assert [m.id for m in built.store.members.find(query, order=order)] == [
                m.id for m in by_start[offset:stop]
            ]

    def test_members_of_a_status_by_start_date_not_by_id(self) -> None:
        """The status index is kept by start date then id: ids in another order, ties on
        a start date, a save that moves a member to another status, and two statuses
        merged all come back in (start date, id) order."""
        day = T0.date()
        members = [
            _member(i, start_date=day + timedelta(days=d), at=T0)
            for i, d in [("m-a", 5), ("m-b", 1), ("m-c", 3), ("m-d", 1), ("m-e", 0)]
        ]
        store = InMemoryStore.from_objects([SYD, SYD_GOLD, *members])
        pending = MemberQuery(practices={"syd"}, statuses={_M.PENDING})
        assert len(store.members.find(pending, order=Order("start_date"))) == 5  # kept
        store.members.save(store.members.get("m-c").activate(at=T0 + timedelta(days=9)))

        def listed(
            statuses: set[_M], order: str = "start_date", page: Page | None = None
        ) -> list[str]:
            query = MemberQuery(practices={"syd"}, statuses=statuses)
            return [
                m.id for m in store.members.find(query, order=Order(order, page=page or Page()))
            ]

        assert listed({_M.PENDING}) == ["m-e", "m-b", "m-d", "m-a"]
        assert listed({_M.PENDING}, page=Page(limit=2, offset=1)) == ["m-b", "m-d"]
        assert listed({_M.PENDING, _M.ACTIVE}) == ["m-e", "m-b", "m-d", "m-c", "m-a"]
        assert listed({_M.ACTIVE}) == ["m-c"]
        assert listed({_M.PENDING}, "-start_date") == ["m-a", "m-b", "m-d", "m-e"]
        store.members.save(store.members.get("m-b").activate(at=T0 + timedelta(days=9)))
        assert listed({_M.ACTIVE}) == ["m-b", "m-c"]  # a status read before, written since
        assert listed({_M.PENDING}) == ["m-e", "m-d", "m-a"]

    def test_a_status_list_is_handed_out_as_kept_and_never_changes(self) -> None:
        """One practice's members of one status by start date come back as a read-only
        view of the kept list (no reference to a member added by the read), a page of
        them as a copy of the page; an answer read before writes is unchanged by them."""
        day = T0.date()
        members = [_member(f"m-{d}", start_date=day + timedelta(days=d), at=T0) for d in range(6)]
        store = InMemoryStore.from_objects([SYD, SYD_GOLD, *members])
        pending = MemberQuery(practices={"syd"}, statuses={_M.PENDING})
        store.members.find(pending, order=Order("start_date"))  # the list is kept
        first = store.members.get("m-0")
        held = sys.getrefcount(first)
        found = store.members.find(pending, order=Order("start_date"))
        page = store.members.find(pending, order=Order("start_date", page=Page(2, 1)))
        assert sys.getrefcount(first) == held  # not copied
        assert isinstance(found, ReadOnlyList)
        assert isinstance(page, ReadOnlyList)
        # A page is copied: it holds its two members, not the practice's whole list.
        assert [len(r) for r in gc.get_referents(page) if isinstance(r, list)] == [2]
        with pytest.raises(TypeError):
            found[0] = first  # type: ignore[index]
        store.members.save(first.activate(at=T0 + timedelta(days=9)))
        store.members.save(store.members.get("m-2").cancel(at=T0 + timedelta(days=9)))
        assert [m.id for m in found] == [f"m-{d}" for d in range(6)]
        assert [m.id for m in page] == ["m-1", "m-2"]
        assert [m.id for m in store.members.find(pending, order=Order("start_date"))] == [
            "m-1",
            "m-3",
            "m-4",
            "m-5",
        ]

    def test_every_find_is_read_only(self) -> None:
        """Every repository's find, on each of the members' read paths, returns a
        ReadOnlyList."""
        store = InMemoryStore.from_objects([SYD, SYD_GOLD, _member("m-a", at=T0)])
        answers = [
            store.members.find(MemberQuery()),
            store.members.find(
                MemberQuery(changed_in=DateRange(T0, T0 + timedelta(days=1), "UTC"))
            ),
            store.members.find(
                MemberQuery(ever_active_before=T0 + timedelta(days=1)),
                order=Order("-first_activated_at", page=Page(limit=3)),
            ),
            store.practices.find(ScopeQuery()),
            store.payments.find(PaymentQuery()),
            store.payment_plans.find(PaymentPlanQuery()),
        ]
        assert all(isinstance(answer, ReadOnlyList) for answer in answers)
        assert [len(answer) for answer in answers] == [1, 1, 0, 1, 0, 0]

    @DATASETS
    @given(data=st.data(), dataset=sps.datasets())
    def test_counting_and_changed_in(self, data: st.DataObject, dataset: sps.Dataset) -> None:
        """count(counting_at=B[, counting_plans]) and find(changed_in=R) equal brute force
        after plan changes saved as well as status changes."""
        built = _build(data, dataset)
        plan_ids = [*sorted(p.id for p in dataset.membership_plans), "plan-unknown"]
        for _ in range(5):
            practices = data.draw(built.practice_sets(), label="practices")
            b = data.draw(built.moments(), label="B")
            plans = data.draw(st.none() | st.frozensets(st.sampled_from(plan_ids)), "plans")
            query = MemberQuery(practices=practices, counting_at=b, counting_plans=plans)
            expected = [
                m
                for m in built.members.values()
                if _in(practices, m.practice_id)
                and _status_before(m, b) in (_M.ACTIVE, _M.FAILED)
                and _in(plans, _plan_before(m, b))
            ]
            assert built.store.members.count(query) == len(expected)
            span = built.ranges(data)
            changed = MemberQuery(practices=practices, changed_in=span)
            touched = sorted(
                m.id
                for m in built.members.values()
                if _in(practices, m.practice_id)
                and any(span.start <= c.at < span.end for c in (*m.history, *m.plan_changes))
            )
            assert sorted(m.id for m in built.store.members.find(changed)) == touched
            assert built.store.members.count(changed) == len(touched)

    @DATASETS
    @given(data=st.data(), dataset=sps.datasets())
    def test_batched_boundary_reads_equal_one_read_each(
        self, data: st.DataObject, dataset: sps.Dataset
    ) -> None:
        """``active_counts``, ``ever_active_counts``, ``retained_counts`` and
        ``payments.window_totals`` answer, in the order asked (instants repeated and out of
        order, pairs either way round), what brute force over the objects answers for each
        instant, pair or window, and what one count or total each answers."""
        built = _build(data, dataset)
        members, ledger = built.store.members, built.store.payments
        for _ in range(3):
            practices = data.draw(built.practice_sets(), label="practices")
            instants = data.draw(st.lists(built.moments(), max_size=5), label="instants")
            pairs = list(itertools.pairwise(instants))
            windows = [(min(a, b), max(a, b)) for a, b in pairs]
            mine = [m for m in built.members.values() if _in(practices, m.practice_id)]

            def active(m: Member, at: datetime) -> bool:
                return _status_before(m, at) is _M.ACTIVE

            def ever(m: Member, at: datetime) -> bool:
                first = m.first_activated_at
                return first is not None and first < at

            assert members.active_counts(practices=practices, at=instants) == [
                sum(active(m, a) for m in mine) for a in instants
            ]
            assert members.active_counts(practices=practices, at=instants) == [
                members.count(MemberQuery(practices=practices, active_at=a)) for a in instants
            ]
            assert members.ever_active_counts(practices=practices, before=instants) == [
                sum(ever(m, b) for m in mine) for b in instants
            ]
            assert members.ever_active_counts(practices=practices, before=instants) == [
                members.count(MemberQuery(practices=practices, ever_active_before=b))
                for b in instants
            ]
            assert members.retained_counts(practices=practices, spans=pairs) == [
                sum(active(m, a) and active(m, b) for m in mine) for a, b in pairs
            ]
            assert members.retained_counts(practices=practices, spans=pairs) == [
                members.count(MemberQuery(practices=practices, active_at=a, retained_until=b))
                for a, b in pairs
            ]
            got = ledger.window_totals(practices=practices, windows=windows)
            assert got == [
                ledger.total(PaymentQuery(practices=practices, time_range=DateRange(a, b, "UTC")))
                for a, b in windows
            ]
            for totals, (a, b) in zip(got, windows, strict=True):
                by_hand: dict[str, int] = {}
                for p in dataset.payments:
                    if _in(practices, p.practice_id) and a <= p.at < b and p.succeeded:
                        sign = 1 if p.kind is CHARGE else -1
                        by_hand[p.amount.currency] = (
                            by_hand.get(p.amount.currency, 0) + sign * p.amount.minor
                        )
                assert {c: m.minor for c, m in totals.items() if not m.is_zero()} == {
                    c: n for c, n in by_hand.items() if n
                }

    def test_batched_boundary_reads_refuse_bad_input(self) -> None:
        """A naive instant, a value that is no instant, a span that is not a pair, or a
        window going back in time is refused naming the argument; nothing asked, nothing
        answered."""
        store = InMemoryStore()
        t = datetime(2026, 3, 1, tzinfo=UTC)
        members, ledger = store.members, store.payments
        for read, name in ((members.active_counts, "at"), (members.ever_active_counts, "before")):
            with pytest.raises(NaiveDatetime):
                read(practices=None, **{name: [t, datetime(2026, 3, 1)]})
            with pytest.raises(InvalidValue) as caught:
                read(practices=None, **{name: ["2026-03-01"]})
            assert caught.value.field == name
            assert read(practices=None, **{name: []}) == []
            assert read(practices={"p"}, **{name: [t, t - MICRO, t]}) == [0, 0, 0]
        for read, name in ((members.retained_counts, "spans"), (ledger.window_totals, "windows")):
            for bad in ([t], [(t, t, t)], [(t, "x")], [[t, t]]):
                with pytest.raises(InvalidValue) as caught:
                    read(practices=None, **{name: bad})
                assert caught.value.field == name
            with pytest.raises(NaiveDatetime):
                read(practices=None, **{name: [(t, datetime(2026, 3, 2))]})
            assert read(practices=None, **{name: []}) == []
        assert members.retained_counts(practices=None, spans=[(t, t - MICRO)]) == [0]
        with pytest.raises(InvalidValue) as caught:
            ledger.window_totals(practices=None, windows=[(t, t - MICRO)])
        assert (caught.value.field, caught.value.reason) == ("windows", "must not go back in time")

    def test_batched_series_reads_refuse_bad_edges(self) -> None:
        """Edges going back in time, or naive, are refused naming ``edges``; fewer than
        two edges give no bucket."""
        store = InMemoryStore()
        t = datetime(2026, 3, 1, tzinfo=UTC)
        for read in (store.members.first_activated_counts, store.payment_plans.committed_totals):
            with pytest.raises(InvalidValue) as caught:
                read(practices=None, edges=[t, t - MICRO])
            assert caught.value.field == "edges"
            with pytest.raises(NaiveDatetime):
                read(practices=None, edges=[datetime(2026, 3, 1)])
            assert read(practices=None, edges=[t]) == []
            assert len(read(practices={"p"}, edges=[t, t, t + MICRO])) == 2

    @DATASETS
    @given(data=st.data(), dataset=sps.datasets())
    def test_ever_active_and_first_activated(
        self, data: st.DataObject, dataset: sps.Dataset
    ) -> None:
        """count(ever_active_before=B) and count(first_activated_in=R) equal brute force."""
        built = _build(data, dataset)
        for _ in range(5):
            practices = data.draw(built.practice_sets(), label="practices")
            b = data.draw(built.moments(), label="B")
            r = built.ranges(data)
            firsts = [
                _first_active(m) for m in built.members.values() if _in(practices, m.practice_id)
            ]
            ever = MemberQuery(practices=practices, ever_active_before=b)
            new = MemberQuery(practices=practices, first_activated_in=r)
            expected_ever = sum(1 for f in firsts if f is not None and f < b)
            expected_new = sum(1 for f in firsts if f is not None and r.start <= f < r.end)
            assert built.store.members.count(ever) == expected_ever
            assert built.store.members.count(new) == expected_new
            assert len(built.store.members.find(ever)) == expected_ever
            assert len(built.store.members.find(new)) == expected_new

    @DATASETS
    @given(data=st.data(), dataset=sps.datasets())
    def test_latest_activated_feed(self, data: st.DataObject, dataset: sps.Dataset) -> None:
        """find(ever_active_before=B) by -first_activated_at with a page gives the newest first
        activations before B, ties by id, paged."""
        built = _build(data, dataset)
        for _ in range(5):
            practices = data.draw(built.practice_sets(), label="practices")
            b = data.draw(built.moments(), label="B")
            limit = data.draw(st.integers(0, 6), label="limit")
            offset = data.draw(st.integers(0, 4), label="offset")
            query = MemberQuery(practices=practices, ever_active_before=b)
            order = Order("-first_activated_at", page=Page(limit=limit, offset=offset))
            ranked = _newest_first(
                m
                for m in built.members.values()
                if _in(practices, m.practice_id) and (f := _first_active(m)) is not None and f < b
            )
            expected = ranked[offset : offset + limit]
            assert [m.id for m in built.store.members.find(query, order=order)] == expected

    def test_feed_pages_through_first_activations_tied_across_practices(self) -> None:
        """Members first activated at one instant, in two practices, come by id (added out
        of order, the other practice's inside the tie), and a page can start or stop
        inside the tie: on a fresh store (each practice's timeline read) and read again
        (the two merged)."""
        tied = [
            _member(i, **fields).activate(at=T0 + 2 * HOUR)
            for i, fields in [
                ("m-4", {}),
                ("m-25", {"practice_id": "nyc", "plan_id": "nyc-gold"}),
                ("m-2", {}),
                ("m-3", {}),
            ]
        ]
        query = MemberQuery(practices={"syd", "nyc"}, ever_active_before=T0 + 3 * HOUR)
        for offset, limit, expected in [
            (0, 5, ["m-2", "m-25", "m-3", "m-4", "m-1"]),
            (0, 2, ["m-2", "m-25"]),
            (1, 2, ["m-25", "m-3"]),
            (3, 2, ["m-4", "m-1"]),
            (4, 3, ["m-1"]),
        ]:
            store = _store(*tied)
            order = Order("-first_activated_at", page=Page(limit=limit, offset=offset))
            for _ in range(2):
                assert [m.id for m in store.members.find(query, order=order)] == expected
        syd = MemberQuery(practices={"syd"}, ever_active_before=T0 + 2 * HOUR)
        order = Order("-first_activated_at", page=Page(limit=2))
        assert [m.id for m in _store(*tied).members.find(syd, order=order)] == ["m-1"]

    def test_feed_without_a_boundary_keeps_never_activated_members(self) -> None:
        """Ordered by -first_activated_at with a limit and no other filter, members never
        activated still come (last), as they do without the limit."""
        store = _store(_member("m-2"), _member("m-3", plan_id="syd-silver"))
        order = Order("-first_activated_at", page=Page(limit=5))
        generic = store.members.find(MemberQuery(statuses=set(MembershipStatus)), order=order)
        assert [m.id for m in generic] == ["m-1", "m-2", "m-3"]
        assert [m.id for m in store.members.find(MemberQuery(), order=order)] == [
            "m-1",
            "m-2",
            "m-3",
        ]


class TestLedgerFastPaths:
    """Revenue and committed totals read from prefix sums equal summing by hand."""

    @DATASETS
    @given(data=st.data(), dataset=sps.datasets())
    def test_payment_total_and_count(self, data: st.DataObject, dataset: sps.Dataset) -> None:
        """total(practices, time_range, kinds, outcomes) is the signed sum of the matching
        entries; count(practices, time_range) their number; both equal the generic path."""
        built = _build(data, dataset)
        currency = {p.id: p.currency for p in dataset.practices}
        every_id = frozenset(p.id for p in dataset.payments)
        for _ in range(5):
            practices = data.draw(built.practice_sets(), label="practices")
            r = built.ranges(data) if data.draw(st.booleans(), label="ranged") else None
            kinds = data.draw(st.none() | st.frozensets(st.sampled_from(PaymentKind)), label="k")
            outcomes = data.draw(
                st.none() | st.frozensets(st.sampled_from(PaymentOutcome)), label="o"
            )
            matching = [
                p
                for p in dataset.payments
                if _in(practices, p.practice_id)
                and (r is None or r.start <= p.at < r.end)
                and (kinds is None or p.kind in kinds)
                and (outcomes is None or p.outcome in outcomes)
            ]
            query = PaymentQuery(practices=practices, time_range=r, kinds=kinds, outcomes=outcomes)
            expected = _sums((currency[p.practice_id], _signed_minor(p)) for p in matching)
            assert _nonzero(built.store.payments.total(query)) == expected
            generic = attrs.evolve(query, ids=every_id)
            assert _nonzero(built.store.payments.total(generic)) == expected
            in_range = PaymentQuery(practices=practices, time_range=r)
            expected_count = sum(
                1
                for p in dataset.payments
                if _in(practices, p.practice_id) and (r is None or r.start <= p.at < r.end)
            )
            assert built.store.payments.count(in_range) == expected_count
            assert len(built.store.payments.find(in_range)) == expected_count

    @DATASETS
    @given(data=st.data(), dataset=sps.datasets())
    def test_committed_total(self, data: st.DataObject, dataset: sps.Dataset) -> None:
        """total(committed_in=R) sums the totals of plans first Active (or Completed at once)
        in R, like the generic path."""
        built = _build(data, dataset)
        for _ in range(5):
            practices = data.draw(built.practice_sets(), label="practices")
            r = built.ranges(data)
            expected = _sums(
                (p.total.currency, p.total.minor)
                for p in dataset.payment_plans
                if _in(practices, p.practice_id)
                and (committed := _committed(p)) is not None
                and r.start <= committed < r.end
            )
            query = PaymentPlanQuery(practices=practices, committed_in=r)
            assert _nonzero(built.store.payment_plans.total(query)) == expected
            generic = attrs.evolve(query, statuses=set(PaymentPlanStatus))
            assert _nonzero(built.store.payment_plans.total(generic)) == expected

    @DATASETS
    @given(dataset=sps.datasets())
    def test_collected_for_each_source(self, dataset: sps.Dataset) -> None:
        """collected_for(source) is the source's succeeded charges minus succeeded refunds."""
        store = InMemoryStore.from_objects(dataset.objects())
        currency = {p.id: p.currency for p in dataset.practices}
        sources = {("member", m.id): m.practice_id for m in dataset.members}
        sources |= {("payment_plan", p.id): p.practice_id for p in dataset.payment_plans}
        for source, practice_id in sources.items():
            minor = sum(
                _signed_minor(p)
                for p in dataset.payments
                if (p.member_id, p.payment_plan_id)
                == ((source[1], None) if source[0] == "member" else (None, source[1]))
            )
            code = currency[practice_id]
            assert store.payments.collected_for(source, code) == Money.from_minor(minor, code)

    @pytest.mark.parametrize(
        ("practices", "time_range", "expected"),
        [
            (None, None, 4),
            ("syd", None, 3),
            (None, DateRange(T0 + 2 * HOUR, T0 + 3 * HOUR, "UTC"), 2),
            ("syd", DateRange(T0 + 2 * HOUR, T0 + 3 * HOUR, "UTC"), 1),
            ({"syd", "nyc"}, DateRange(T0 + HOUR, T0 + 2 * HOUR, "UTC"), 1),
            ("nowhere", None, 0),
        ],
    )
    def test_count_by_practices_and_time_range_reads_the_timeline(
        self,
        monkeypatch: pytest.MonkeyPatch,
        practices: Any,
        time_range: DateRange | None,
        expected: int,
    ) -> None:
        """count(practices, time_range) is answered from the timeline, never by testing
        each payment, and equals the number of payments find() returns."""
        store = _store(
            _member("m-n", practice_id="nyc", plan_id="nyc-gold"),
            _charge("pay-1", "100", T0 + HOUR),
            _charge("pay-2", "100", T0 + 2 * HOUR, outcome=FAILED),
            _refund("ref-1", "10", T0 + 3 * HOUR),
            _charge("pay-n", "30", T0 + 2 * HOUR, member="m-n", practice="nyc", currency="USD"),
        )
        query = PaymentQuery(practices=practices, time_range=time_range)
        with monkeypatch.context() as patch:
            patch.setattr(PaymentQuery, "matches", _no_scan)
            assert store.payments.count(query) == expected
        assert len(store.payments.find(query)) == expected


def _no_scan(query: PaymentQuery, payment: Payment) -> bool:
    """Stands in for PaymentQuery.matches where a read must not test payments one by one."""
    raise AssertionError(f"{payment.id} tested one by one")


# -- load ------------------------------------------------------------------------------------


def _bad_objects(dataset: sps.Dataset) -> list[tuple[object, str]]:
    """Objects every load must refuse, whatever else it holds, with the field to blame."""
    practice = dataset.practices[0]
    other = "GBP"
    return [
        (
            Member.enrol(
                id="bad-member",
                practice_id=practice.id,
                plan_id="no-such-plan",
                account_holder=Patient("pat-bad", "Nobody"),
                start_date=T0.date(),
                at=T0,
            ),
            "plan_id",
        ),
        (
            Payment(
                "bad-payment",
                practice.id,
                Money.from_minor(100, practice.currency),
                CHARGE,
                OK,
                T0,
                member_id="no-such-member",
            ),
            "member_id",
        ),
        (StaffUser("bad-staff", "no-such-practice", "Ghost"), "practice_id"),
        (
            MembershipPlan(
                "bad-plan", practice.id, "Odd", Money.of("10", other), BillingCycle.MONTHLY
            ),
            "",
        ),
        ("not a domain object", "obj"),
    ]


@st.composite
def _plain_ledgers(draw: st.DrawFn) -> sps.Dataset:
    """Members of Sydney and New York on plans of one price, charged it monthly (some
    charges failed, a refund now and then), some cancelled after their last charge: the
    ledger a load checks in bulk."""
    mel = Practice("mel", "Bayside Dental", "Australia/Melbourne", "AUD")
    mel_gold = attrs.evolve(SYD_GOLD, id="mel-gold", practice_id="mel")  # Sydney's price
    members: list[Member] = []
    payments: list[Payment] = []
    for n in range(draw(st.integers(1, 5), label="members")):
        plan = draw(st.sampled_from([SYD_GOLD, mel_gold, NYC_GOLD]), label="plan")
        enrolled = T0 + draw(st.integers(0, 40), label="day") * DAY
        member = _member(f"m-{n}", practice_id=plan.practice_id, plan_id=plan.id, at=enrolled)
        member = member.activate(at=enrolled + HOUR)
        charges = [enrolled + HOUR + 30 * k * DAY for k in range(draw(st.integers(1, 4)))]
        for k, at in enumerate(charges):
            succeeded = draw(st.booleans(), label="succeeded")
            payments.append(
                Payment(
                    f"m-{n}-c{k}",
                    plan.practice_id,
                    plan.price,
                    CHARGE,
                    OK if succeeded else FAILED,
                    at,
                    member_id=member.id,
                )
            )
            if succeeded and draw(st.integers(0, 4), label="refund") == 0:
                payments.append(
                    Payment(
                        f"m-{n}-r{k}",
                        plan.practice_id,
                        plan.price,
                        REFUND,
                        OK,
                        at + HOUR,
                        member_id=member.id,
                    )
                )
        if draw(st.booleans(), label="cancelled"):
            member = member.cancel(at=charges[-1] + DAY)
        members.append(member)
    plans = [_plan("pp-syd", None), _plan("pp-mel", None, practice_id="mel")]
    for plan in plans:
        payments += [
            Payment(
                f"{plan.id}-c{k}",
                plan.practice_id,
                Money.of("30", "AUD"),
                CHARGE,
                OK,
                at,
                payment_plan_id=plan.id,
            )
            for k, at in enumerate([T0 + HOUR, T0 + 30 * DAY][: draw(st.integers(1, 2))])
        ]
    return sps.Dataset(
        practices=(SYD, mel, NYC),
        staff_users=(),
        membership_plans=(SYD_GOLD, mel_gold, NYC_GOLD),
        campaigns=(),
        payment_plan_templates=(),
        members=tuple(members),
        payment_plans=tuple(plans),
        referrals=(),
        payments=tuple(payments),
    )


@st.composite
def _odd_payments(draw: st.DrawFn, dataset: sps.Dataset) -> list[Payment]:
    """A member's and a payment plan's ledger entry of ``dataset``, each changed in every
    way a load may refuse (or keep)."""
    members = [m.id for m in dataset.members] + ["no-such-member"]
    plans = [p.id for p in dataset.payment_plans] + ["no-such-plan"]
    practices = [p.id for p in dataset.practices] + ["no-such-practice"]
    odd: list[Payment] = []
    for of_plans in (False, True):
        entries = [p for p in dataset.payments if (p.member_id is None) is of_plans]
        if not entries:
            continue
        payment = draw(st.sampled_from(entries))
        fresh = attrs.evolve(payment, id="odd-payment")
        minor, currency = payment.amount.minor, payment.amount.currency
        odd += [
            *(attrs.evolve(fresh, at=fresh.at + step) for step in (-400 * DAY, -MICRO, MICRO)),
            *(
                attrs.evolve(fresh, amount=Money.from_minor(minor + step, currency))
                for step in (-1, 1, 500)
                if minor + step > 0
            ),
            attrs.evolve(fresh, amount=Money.from_minor(minor, "GBP")),
            *(attrs.evolve(fresh, practice_id=practice) for practice in practices),
            attrs.evolve(fresh, kind=REFUND if fresh.kind is CHARGE else CHARGE),
            attrs.evolve(fresh, outcome=FAILED if fresh.succeeded else OK),
            attrs.evolve(payment, at=payment.at + MICRO),  # a conflicting id
            payment,  # the same entry again
        ]
        if payment.member_id is None:
            odd += [attrs.evolve(fresh, payment_plan_id=plan) for plan in plans]
            continue
        member = next(m for m in dataset.members if m.id == payment.member_id)
        cancelled = member.first_entered(MembershipStatus.CANCELLED)
        odd += [
            *(attrs.evolve(fresh, member_id=other) for other in members),
            attrs.evolve(fresh, at=member.created_at - MICRO),
            attrs.evolve(fresh, at=member.created_at),
            *(attrs.evolve(fresh, at=cancelled + step) for step in (0 * DAY, MICRO) if cancelled),
        ]
    return odd


def _loads_as_one_by_one(
    loaded: InMemoryStore, added: InMemoryStore, objects: list[object], times: list[datetime]
) -> None:
    """``loaded.load(objects)`` keeps or refuses (the same record, field and cause) what
    adding them to ``added`` one by one in load order does; a refused load keeps nothing.
    The Overdue members are read before (kept outlooks) and compared after."""
    overdue = [MemberQuery(overdue=True, as_of=at) for at in times[:: max(1, len(times) // 4)]]
    before = _snapshot(loaded, times), [loaded.members.find(q) for q in overdue]
    refused, cause = None, None
    entries = [(type(o).__name__, i, o) for i, o in enumerate(objects)]
    for table, index, obj, name in load_order(entries):
        try:
            getattr(added, name).add(obj)
        except SmilepassError as error:
            refused, cause = as_record_error(table, index, error), error
            break
    if refused is None:
        loaded.load(objects)
        assert _snapshot(loaded, times) == _snapshot(added, times)
        assert [loaded.members.find(q) for q in overdue] == [added.members.find(q) for q in overdue]
        for source in {p.source for p in objects if isinstance(p, Payment)}:
            assert loaded.payments.of_source(source) == added.payments.of_source(source)
        return
    with pytest.raises(InvalidRecord) as caught:
        loaded.load(objects)
    got = caught.value
    assert (got.table, got.index, got.field) == (refused.table, refused.index, refused.field)
    assert type(got.__cause__) is type(cause)
    assert getattr(got.__cause__, "rule", None) == getattr(cause, "rule", None)
    assert (_snapshot(loaded, times), [loaded.members.find(q) for q in overdue]) == before


class TestLoad:
    """load() is atomic, names the refused object, and does not depend on input order."""

    @DATASETS
    @given(data=st.data(), dataset=sps.datasets())
    def test_a_failed_load_changes_nothing(self, data: st.DataObject, dataset: sps.Dataset) -> None:
        """A bad object anywhere in a load raises InvalidRecord at its input position and leaves
        the store exactly as before; the same load without it then succeeds."""
        store = InMemoryStore()
        k = data.draw(st.integers(0, len(dataset.members)), label="k")
        store.load(
            [
                *dataset.practices,
                *dataset.staff_users,
                *dataset.membership_plans,
                *dataset.campaigns,
                *dataset.payment_plan_templates,
                *dataset.members[:k],
            ]
        )
        times = _event_times(dataset)
        before = _snapshot(store, times)
        rest = [
            *dataset.members[k:],
            *dataset.payment_plans,
            *dataset.referrals,
            *dataset.payments,
        ]
        rest = list(data.draw(st.permutations(rest), label="rest"))
        bad, field = data.draw(st.sampled_from(_bad_objects(dataset)), label="bad")
        j = data.draw(st.integers(0, len(rest)), label="position")
        with pytest.raises(InvalidRecord) as caught:
            store.load([*rest[:j], bad, *rest[j:]])
        assert caught.value.index == j
        assert caught.value.table == type(bad).__name__
        assert caught.value.field
        assert caught.value.reason
        if field:
            assert caught.value.field == field
        assert _snapshot(store, times) == before
        store.load(rest)
        assert _snapshot(store, times) == _snapshot(
            InMemoryStore.from_objects(dataset.objects()), times
        )

    @DATASETS
    @given(data=st.data(), dataset=st.one_of(_plain_ledgers(), sps.datasets()))
    def test_a_load_keeps_and_refuses_the_ledger_as_adds_one_by_one(
        self, data: st.DataObject, dataset: sps.Dataset
    ) -> None:
        """A load's ledger, checked in bulk, keeps and refuses what adding each entry in
        load order keeps and refuses: with an entry out of its member's window, of another
        amount, member, practice, currency or kind, a conflicting or a repeated id, in a
        store whose practices are read together (merged timelines) or not."""
        assume(dataset.payments)
        payments = list(dataset.payments)
        k = data.draw(st.integers(0, len(payments)), label="payments loaded first")
        first = [o for o in dataset.objects() if not isinstance(o, Payment)] + payments[:k]
        merged = data.draw(st.booleans(), label="practices read together first")
        times = _event_times(dataset)
        for odd in data.draw(_odd_payments(dataset), label="odd payments"):
            rest = list(payments[k:])
            rest.insert(data.draw(st.integers(0, len(rest)), label="at"), odd)
            loaded, added = InMemoryStore.from_objects(first), InMemoryStore.from_objects(first)
            for store in (loaded, added) if merged else ():
                for _ in range(memory.Timelines.MERGE_AT):
                    _snapshot(store, times)
            _loads_as_one_by_one(loaded, added, rest, [*times, odd.at])

    @given(
        data=st.data(),
        ledger=st.lists(
            st.tuples(st.integers(0, 3), st.sampled_from([CHARGE, REFUND]), st.sampled_from("abc")),
            max_size=40,
        ),
    )
    def test_load_order_puts_the_ledger_last_in_time_order(
        self, data: st.DataObject, ledger: list[Any]
    ) -> None:
        """``load_order``: what is referred to first, each table by index; the ledger
        last, by instant, a charge before a refund at one instant, then by id, then by
        index (the indices given in any order, repeated ids and instants)."""
        payments = [
            Payment(id, "syd", Money.of("1", "AUD"), kind, OK, T0 + minute * MICRO, member_id="m")
            for minute, kind, id in ledger
        ]
        objects = data.draw(st.permutations([*payments, SYD, NYC, SYD_GOLD, _member()]), "objects")
        indices = data.draw(st.permutations(range(len(objects))), label="indices")
        entries = [(type(o).__name__, i, o) for i, o in zip(indices, objects, strict=True)]
        rank = {kind: r for r, kind in enumerate(STORE_TYPES.values())}

        def key(entry: tuple[str, int, object]) -> tuple[Any, ...]:
            _, index, obj = entry
            if isinstance(obj, Payment):
                return (rank[Payment], obj.at, obj.kind is REFUND, obj.id, index)
            return (rank[type(obj)], index)

        names = {kind: name for name, kind in STORE_TYPES.items()}
        assert load_order(entries) == [(*e, names[type(e[2])]) for e in sorted(entries, key=key)]

    @DATASETS
    @given(data=st.data(), dataset=sps.datasets())
    def test_load_order_does_not_matter(self, data: st.DataObject, dataset: sps.Dataset) -> None:
        """A store loaded from shuffled objects answers every query like one loaded in order."""
        ordered = InMemoryStore.from_objects(dataset.objects())
        shuffled = InMemoryStore.from_objects(
            data.draw(st.permutations(dataset.objects()), label="objects")
        )
        times = _event_times(dataset)
        assert _snapshot(shuffled, times) == _snapshot(ordered, times)
        for _ in range(3):
            mq = data.draw(sps.member_queries(dataset), label="member query")
            assert shuffled.members.find(mq) == ordered.members.find(mq)
            assert shuffled.members.count(mq) == ordered.members.count(mq)
            pq = data.draw(sps.payment_queries(dataset), label="payment query")
            assert shuffled.payments.find(pq) == ordered.payments.find(pq)
            assert shuffled.payments.total(pq) == ordered.payments.total(pq)
            ppq = data.draw(sps.payment_plan_queries(dataset), label="plan query")
            assert shuffled.payment_plans.total(ppq) == ordered.payment_plans.total(ppq)
            rq = data.draw(sps.referral_queries(dataset), label="referral query")
            assert shuffled.referrals.find(rq) == ordered.referrals.find(rq)

    def test_refusal_names_index_table_field_and_reason(self) -> None:
        """A member whose plan belongs to another practice is refused at its index, naming
        plan_id; the original error is the cause."""
        bad = _member("m-9", plan_id="nyc-gold")
        store = _store()
        before = _counts(store)
        with pytest.raises(InvalidRecord) as caught:
            store.load([_member("m-7"), _member("m-8"), bad, _member("m-10")])
        record = caught.value
        assert (record.table, record.index, record.field) == ("Member", 2, "plan_id")
        assert "nyc" in record.reason
        assert isinstance(record.__cause__, InvalidValue)
        assert _counts(store) == before

    def test_the_collector_is_paused_for_a_load_and_restored_after_the_last(self) -> None:
        """The garbage collector is off while a load runs (not while a generator passed
        to it is read) and as it was once the last of overlapping loads (in two stores)
        ends, refused or not."""
        assert gc.isenabled()
        seen: list[tuple[str, bool]] = []

        def entries() -> Iterator[tuple[str, int, object]]:
            seen.append(("reading", gc.isenabled()))
            yield ("Practice", 0, SYD)

        first = _HeldLoad(seen)
        loading = threading.Thread(target=first.load_labelled, args=(entries(),))
        loading.start()
        assert first.inside.wait(10)
        InMemoryStore().load([NYC])  # begins and ends while the first load runs
        assert not gc.isenabled()
        with pytest.raises(InvalidRecord):
            InMemoryStore().load([NYC_GOLD])  # no practice: refused
        assert not gc.isenabled()
        first.go_on.set()
        loading.join(10)
        assert seen == [("reading", True), ("loading", False)]
        assert gc.isenabled()
        assert len(first.practices) == 1
        gc.disable()
        try:
            InMemoryStore().load([SYD])
            assert not gc.isenabled()  # left off, as it was
        finally:
            gc.enable()

    def test_a_child_forked_during_a_pause_collects(self) -> None:
        """A process forked while another thread's load holds the collector paused
        starts with the collector on (that thread is not in the child) and a lock it
        can take: its own loads pause and restore the collector."""
        held = _HeldLoad([])
        loading = threading.Thread(target=held.load, args=([SYD],))
        loading.start()
        try:
            assert held.inside.wait(10)
            assert not gc.isenabled()
            read, write = os.pipe()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
                pid = os.fork()
            if pid == 0:  # the child: report, then leave at once
                seen = [gc.isenabled()]
                InMemoryStore().load([NYC])
                seen.append(gc.isenabled())
                os.write(write, repr(seen).encode())
                os._exit(0)
            os.close(write)
            with os.fdopen(read) as pipe:
                reported = pipe.read()
            assert os.waitpid(pid, 0)[1] == 0
            assert reported == "[True, True]"
        finally:
            held.go_on.set()
            loading.join(10)
        assert gc.isenabled()

    def test_a_non_domain_object_is_refused_before_anything_is_added(self) -> None:
        """Something that is not a domain object is refused at its index; nothing is kept."""
        store = InMemoryStore()
        with pytest.raises(InvalidRecord) as caught:
            store.load([SYD, {"id": "p-2"}])
        assert (caught.value.table, caught.value.index) == ("dict", 1)
        assert len(store.practices) == 0

    @pytest.mark.parametrize(
        ("bad", "field"),
        [
            (
                MembershipPlan(
                    "syd-odd", "syd", "Odd", Money.of("10", "USD"), BillingCycle.MONTHLY
                ),
                "price",
            ),
            (Practice("syd", "Again", "UTC", "AUD"), "id"),
        ],
        ids=["currency", "duplicate"],
    )
    def test_every_refusal_names_the_field(self, bad: object, field: str) -> None:
        """A price in another currency names price; a taken id names id."""
        store = _store()
        with pytest.raises(InvalidRecord) as caught:
            store.load([bad])
        assert (caught.value.index, caught.value.field) == (0, field)

    @pytest.mark.parametrize(
        ("error", "field"),
        [
            (InvalidValue("plan_id", "x", "no such plan"), "plan_id"),
            (NotFound("Practice", "p-9"), "Practice"),
            (RuleViolation("some_rule", "refused"), "object"),
            (InvalidTransition(_M.PENDING, _M.ACTIVE), "object"),
        ],
        ids=["field", "kind-without-field", "blank-field-no-kind", "no-field-attribute"],
    )
    def test_a_refusal_names_its_field_else_its_kind_else_object(
        self, error: SmilepassError, field: str
    ) -> None:
        """The record error names the error's field; without one, its kind; else "object"."""
        record = as_record_error("Member", 3, error)
        assert type(record) is InvalidRecord
        assert (record.table, record.index, record.field, record.reason) == (
            "Member",
            3,
            field,
            str(error),
        )
        assert str(record) == f"Member[3].{field}: {error}"

    def test_a_failed_load_keeps_payments_recorded_before_it(self) -> None:
        """Re-sending an already recorded payment in a load that fails does not remove it."""
        charge = _charge("pay-1", "100")
        store = _store(charge)
        before = _counts(store)
        with pytest.raises(InvalidRecord):
            store.load([charge, _charge("pay-2", "5", member="no-such-member")])
        assert _counts(store) == before
        assert store.payments.get("pay-1") == charge
        assert store.payments.total(PaymentQuery()) == {"AUD": Money.of("100", "AUD")}

    def test_a_payment_twice_in_a_failed_load_still_reports_the_bad_record(self) -> None:
        """The same payment twice in one load, then a bad object: InvalidRecord, nothing kept."""
        store = _store()
        before = _counts(store)
        charge = _charge("pay-1", "100")
        late = _charge("pay-2", "5", T0 + 2 * HOUR, member="no-such-member")
        with pytest.raises(InvalidRecord) as caught:
            store.load([charge, charge, late])
        assert caught.value.index == 2
        assert _counts(store) == before

    def test_the_same_payment_twice_in_one_load_is_kept_once(self) -> None:
        """An identical payment repeated within a successful load is recorded once."""
        store = _store()
        charge = _charge("pay-1", "100")
        store.load([charge, charge])
        assert store.payments.count(PaymentQuery()) == 1


# -- referential checks ----------------------------------------------------------------------

SYD = Practice("syd", "Harbour Dental", "Australia/Sydney", "AUD")
NYC = Practice("nyc", "Hudson Smiles", "America/New_York", "USD")
SYD_GOLD = MembershipPlan("syd-gold", "syd", "Gold", Money.of("100", "AUD"), BillingCycle.MONTHLY)
SYD_SILVER = MembershipPlan(
    "syd-silver", "syd", "Silver", Money.of("20", "AUD"), BillingCycle.MONTHLY
)
NYC_GOLD = MembershipPlan("nyc-gold", "nyc", "Gold", Money.of("30", "USD"), BillingCycle.MONTHLY)
ADA = Patient("pat-ada", "Ada Lovelace")


def _plan_before(member: Member, boundary: datetime) -> str:
    """The plan after every plan change strictly before ``boundary``."""
    plan = member.plan_changes[0].from_plan if member.plan_changes else member.plan_id
    for change in member.plan_changes:
        if change.at < boundary:
            plan = change.to_plan
    return plan


def _last_change(member: Member) -> datetime:
    """The instant of ``member``'s last status, plan or dependent change or referral
    reward (a cancel must not precede any of them), by brute force."""
    changes = (
        *member.history,
        *member.plan_changes,
        *member.dependent_changes,
        *member.referral_rewards,
    )
    last = max(c.at for c in changes)
    assert member.last_changed_at == last
    return last


class _HeldLoad(InMemoryStore):
    """A store whose load stops inside the collector's pause until ``go_on`` is set
    (``inside`` is set then), noting in ``seen`` whether the collector ran there."""

    def __init__(self, seen: list[tuple[str, bool]]) -> None:
        super().__init__()
        self.seen, self.inside, self.go_on = seen, threading.Event(), threading.Event()

    def _load_locked(self, *args: Any) -> None:
        self.seen.append(("loading", gc.isenabled()))
        self.inside.set()
        self.go_on.wait(10)
        super()._load_locked(*args)


def _member(id: str = "m-1", **fields: Any) -> Member:
    base: dict[str, Any] = {
        "id": id,
        "practice_id": "syd",
        "plan_id": "syd-gold",
        "account_holder": ADA,
        "start_date": T0.date(),
        "at": T0,
    }
    return Member.enrol(**{**base, **fields})


def _charge(
    id: str,
    amount: str,
    at: datetime = T0 + HOUR,
    *,
    member: str = "m-1",
    kind: PaymentKind = CHARGE,
    outcome: PaymentOutcome = OK,
    practice: str = "syd",
    currency: str = "AUD",
) -> Payment:
    return Payment(id, practice, Money.of(amount, currency), kind, outcome, at, member_id=member)


def _refund(id: str, amount: str, at: datetime, **fields: Any) -> Payment:
    return _charge(id, amount, at, kind=REFUND, **fields)


def _store(*extra: object) -> InMemoryStore:
    """Sydney and New York with a plan each, and member m-1 of Sydney, Active since T0 + 1h."""
    return InMemoryStore.from_objects(
        [SYD, NYC, SYD_GOLD, SYD_SILVER, NYC_GOLD, _member().activate(at=T0 + HOUR), *extra]
    )


class TestReferentialChecks:
    """add() refuses objects pointing at what the store does not hold, keeping nothing."""

    def test_unknown_practice_raises_not_found(self) -> None:
        """A staff user, plan or member of an unknown practice raises NotFound naming it."""
        store = _store()
        for repo, obj in [
            (store.staff_users, StaffUser("s-1", "nowhere", "Sam")),
            (store.membership_plans, attrs.evolve(SYD_GOLD, id="x", practice_id="nowhere")),
            (store.members, _member("m-2", practice_id="nowhere")),
        ]:
            with pytest.raises(NotFound) as caught:
                repo.add(obj)  # type: ignore[attr-defined]
            assert (caught.value.kind, caught.value.id) == ("Practice", "nowhere")
            assert obj.id not in {o.id for o in repo}  # type: ignore[attr-defined]

    def test_plan_of_another_practice_raises_invalid_value(self) -> None:
        """A Sydney member on New York's plan raises InvalidValue naming plan_id."""
        store = _store()
        with pytest.raises(InvalidValue) as caught:
            store.members.add(_member("m-2", plan_id="nyc-gold"))
        assert (caught.value.field, caught.value.value) == ("plan_id", "nyc-gold")
        with pytest.raises(NotFound):
            store.members.get("m-2")

    def test_unknown_plan_raises_not_found(self) -> None:
        """A member on a plan the store does not hold raises NotFound naming plan_id."""
        with pytest.raises(NotFound) as caught:
            _store().members.add(_member("m-2", plan_id="platinum"))
        assert (caught.value.kind, caught.value.id) == ("MembershipPlan", "platinum")

    def test_membership_plan_in_another_currency_raises_currency_mismatch(self) -> None:
        """A membership plan priced in USD for an AUD practice raises CurrencyMismatch."""
        store = _store()
        plan = MembershipPlan("syd-usd", "syd", "Dollar", Money.of("9", "USD"), BillingCycle.WEEKLY)
        with pytest.raises(CurrencyMismatch) as caught:
            store.membership_plans.add(plan)
        assert {caught.value.left, caught.value.right} == {"USD", "AUD"}
        assert len(store.membership_plans) == 3

    def test_payment_for_an_unknown_member_raises_not_found(self) -> None:
        """A payment whose member the store does not hold raises NotFound; nothing recorded."""
        store = _store()
        with pytest.raises(NotFound) as caught:
            store.payments.add(_charge("pay-1", "10", member="m-404"))
        assert (caught.value.kind, caught.value.id) == ("Member", "m-404")
        assert store.payments.count(PaymentQuery()) == 0

    def test_payment_in_another_currency_raises_currency_mismatch(self) -> None:
        """A USD payment in the AUD practice raises CurrencyMismatch."""
        with pytest.raises(CurrencyMismatch):
            _store().payments.add(_charge("pay-1", "10", currency="USD"))

    def test_payment_plan_for_a_member_of_another_practice_raises(self) -> None:
        """A New York payment plan held by a Sydney member raises InvalidValue naming member_id."""
        plan = _plan("pp-1", "m-1", practice_id="nyc", currency="USD")
        with pytest.raises(InvalidValue) as caught:
            _store().payment_plans.add(plan)
        assert caught.value.field == "member_id"

    def test_referral_from_an_unknown_member_raises_not_found(self) -> None:
        """A referral naming a referring member the store does not hold raises NotFound."""
        referral = Referral.open(
            id="r-1",
            practice_id="syd",
            account_holder=ADA,
            start_date=T0.date(),
            at=T0,
            referring_member_id="m-404",
        )
        with pytest.raises(NotFound):
            _store().referrals.add(referral)

    def test_a_template_in_another_currency_raises_currency_mismatch(self) -> None:
        """A USD template for the AUD practice raises CurrencyMismatch naming min_total."""
        usd = _template(min_total=Money.of("100", "USD"), max_total=Money.of("900", "USD"))
        with pytest.raises(CurrencyMismatch) as caught:
            _store().payment_plan_templates.add(usd)
        assert caught.value.field == "min_total"

    def test_a_plans_template_must_be_kept_and_of_its_practice(self) -> None:
        """A plan naming an unknown template raises NotFound naming template_id; one naming
        New York's template raises InvalidValue; neither is kept."""
        store = _store(_template(), _template(id="t-nyc", practice_id="nyc", currency="USD"))
        for template_id, error in [("t-404", NotFound), ("t-nyc", InvalidValue)]:
            plan = attrs.evolve(_plan("pp-1", None), template_id=template_id)
            with pytest.raises(error) as caught:
                store.payment_plans.add(plan)
            assert getattr(caught.value, "field", None) == "template_id"
            assert len(store.payment_plans) == 0

    def test_a_plan_is_its_templates_offer_on_add_and_save(self) -> None:
        """An offer is kept; a save that moves an instalment's date is refused (rule
        template) and the plan kept as it was; a save that only records a payment is not
        checked again, even after the template retired."""
        template = _template()
        store = _store(template)
        plan = offer_from_template(
            template,
            id="pp-1",
            patient=ADA,
            total=Money.of("600", "AUD"),
            instalments=6,
            first_due=T0.date(),
            at=T0,
            timezone=SYD.timezone,
        )
        store.payment_plans.add(plan)
        moved = attrs.evolve(
            plan,
            schedule=(*plan.schedule[:-1], attrs.evolve(plan.schedule[-1], due_date=T0.date())),
        )
        with pytest.raises(RuleViolation) as caught:
            store.payment_plans.save(moved)
        assert caught.value.rule == "template"
        assert store.payment_plans.get("pp-1") == plan
        store.payment_plan_templates.save(template.retire(at=T0 + timedelta(days=1)))
        paid = plan.record_payment(at=T0 + timedelta(days=2))
        store.payment_plans.save(paid)
        assert store.payment_plans.get("pp-1") == paid
        with pytest.raises(RuleViolation) as retired:
            store.payment_plans.add(
                offer_from_template(
                    template.retire(at=T0 + timedelta(days=1)),
                    id="pp-2",
                    patient=ADA,
                    total=Money.of("600", "AUD"),
                    instalments=6,
                    first_due=T0.date() + timedelta(days=2),
                    at=T0 + timedelta(days=2),
                    timezone=SYD.timezone,
                )
            )
        assert retired.value.context["broken"] == ("retired",)

    def test_add_of_a_taken_id_raises_duplicate_id_naming_it(self) -> None:
        """Adding a second practice under a taken id raises DuplicateId naming the kind and
        the id; the first practice stays."""
        store = _store()
        with pytest.raises(DuplicateId) as caught:
            store.practices.add(attrs.evolve(SYD, name="Again"))
        assert (caught.value.kind, caught.value.id, caught.value.field) == ("Practice", "syd", "id")
        assert str(caught.value) == "Practice 'syd' already exists"
        assert store.practices.get("syd") == SYD

    def test_add_refuses_another_type(self) -> None:
        """Adding a practice to the members repository raises InvalidValue."""
        with pytest.raises(InvalidValue):
            _store().members.add(SYD)  # type: ignore[arg-type]


class TestVersions:
    """Every kept object has a version; a save that states the version it read fails once
    another write came first, whatever field changed (issue #14)."""

    def test_add_is_version_1_and_each_save_adds_one(self) -> None:
        """add() keeps version 1; each save() adds one; the ledger's entries stay at 1."""
        store = _store(_charge("pay-1", "100.00"))
        assert store.members.version("m-1") == 1
        member = store.members.get("m-1")
        store.members.save(member, expected_version=1)
        store.members.save(attrs.evolve(member, dependents=(ADA,)))
        assert store.members.version("m-1") == 3
        assert store.payments.version("pay-1") == 1
        with pytest.raises(NotFound):
            store.members.version("m-404")

    def test_two_writers_of_other_fields_cannot_lose_an_update(self) -> None:
        """Both read version 1; one adds a dependent and saves; the other, changing the
        same history-less field, is refused with VersionConflict and the first write stays
        (the history check alone lets this one through)."""
        store = _store()
        read_by_both, version = store.members.get("m-1"), store.members.version("m-1")
        first = attrs.evolve(read_by_both, dependents=(ADA,))
        store.members.save(first, expected_version=version)
        with pytest.raises(VersionConflict) as caught:
            store.members.save(attrs.evolve(read_by_both, dependents=()), expected_version=version)
        conflict = caught.value
        assert (conflict.kind, conflict.id, conflict.expected, conflict.actual) == (
            "Member",
            "m-1",
            1,
            2,
        )
        assert "another write came first" in str(conflict)
        assert store.members.get("m-1") == first
        assert store.members.version("m-1") == 2

    @pytest.mark.parametrize("expected", [0, -1, True, "1", 1.0])
    def test_a_bad_expected_version_is_refused(self, expected: object) -> None:
        """expected_version is a whole number >= 1, else InvalidValue; nothing is saved."""
        store = _store()
        member = store.members.get("m-1")
        with pytest.raises(InvalidValue) as caught:
            store.members.save(member, expected_version=expected)  # type: ignore[arg-type]
        assert caught.value.field == "expected_version"
        assert store.members.version("m-1") == 1

    def test_a_refused_save_keeps_the_version(self) -> None:
        """A save refused by a rule (a practice move) leaves object and version as they were."""
        store = _store()
        member = store.members.get("m-1")
        with pytest.raises(RuleViolation):
            store.members.save(attrs.evolve(member, practice_id="other"), expected_version=1)
        assert (store.members.get("m-1"), store.members.version("m-1")) == (member, 1)

    def test_racing_writers_each_round_has_one_winner(self) -> None:
        """Eight threads read the version and save at once, for 20 rounds: exactly one
        save per round lands, the others get VersionConflict, and the version counts the
        winners."""
        store = _store()
        rounds, threads = 20, 8
        wins = [0] * rounds
        errors: list[BaseException] = []
        barrier = threading.Barrier(threads)
        lock = threading.Lock()

        def writer() -> None:
            for r in range(rounds):
                member = store.members.get("m-1")
                version = store.members.version("m-1")
                barrier.wait()
                try:
                    store.members.save(member, expected_version=version)
                except VersionConflict:
                    pass
                except BaseException as error:  # pragma: no cover - reported below
                    errors.append(error)
                else:
                    with lock:
                        wins[r] += 1
                barrier.wait()

        workers = [threading.Thread(target=writer) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=30)
        assert errors == []
        assert wins == [1] * rounds
        assert store.members.version("m-1") == 1 + rounds


class TestSaveRollback:
    """A save that fails half-way (here: indexing the new copy) leaves the kept object,
    its version and every index exactly as before."""

    def test_a_failure_while_indexing_restores_the_kept_member(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        store = _store()
        kept = store.members.get("m-1")
        later = T0 + 3 * DAY

        def counts() -> list[int]:
            boundaries = (T0 + 2 * HOUR, later)
            return [store.members.active_at("syd", b) for b in boundaries] + [
                store.members.count(MemberQuery(first_activated_in=DateRange(T0, later, "UTC"))),
                store.members.version("m-1"),
            ]

        before = counts()
        suspended = kept.suspend(at=T0 + DAY)
        index = store.members._index

        def half_index(member: Member) -> None:
            index(member)  # the new copy's entries go in, then the write fails
            if member is suspended:
                raise RuntimeError("disk full")

        monkeypatch.setattr(store.members, "_index", half_index)
        with pytest.raises(RuntimeError, match="disk full"):
            store.members.save(suspended)
        assert store.members.get("m-1") is kept
        assert counts() == before == [1, 1, 1, 1]
        assert store.members.count(MemberQuery(active_at=later)) == 1
        assert store.members.count(MemberQuery(statuses={"suspended"})) == 0


class TestStaleWrites:
    """save() refuses a copy that would undo another write or move an object's practice."""

    def test_a_stale_copy_cannot_erase_a_cancellation(self) -> None:
        """Two writers read the Active member; one cancels and saves; the other's Failed
        copy is refused (stale_history) and the cancellation stays: no lost update, and a
        terminal status is not left."""
        store = _store()
        read_by_both = store.members.get("m-1")
        store.members.save(read_by_both.cancel(at=T0 + DAY))
        with pytest.raises(RuleViolation) as caught:
            store.members.save(read_by_both.fail(at=T0 + 2 * DAY))
        assert (caught.value.rule, caught.value.field) == ("stale_history", "history")
        assert "reload it, apply the change again and save" in str(caught.value)
        assert store.members.get("m-1").status is MembershipStatus.CANCELLED
        assert store.members.count(MemberQuery(statuses={"cancelled"})) == 1

    def test_an_older_copy_is_refused(self) -> None:
        """Saving back a copy from before the last change (a shorter history) is refused."""
        store = _store()
        old = store.members.get("m-1")
        store.members.save(old.suspend(at=T0 + DAY))
        with pytest.raises(RuleViolation, match="does not extend"):
            store.members.save(old)
        assert store.members.get("m-1").status is MembershipStatus.SUSPENDED

    def test_a_copy_that_extends_the_history_or_keeps_it_is_saved(self) -> None:
        """A later move, or the same history with another field changed, is saved."""
        store = _store()
        member = store.members.get("m-1")
        store.members.save(member.suspend(at=T0 + DAY))
        moved = store.members.get("m-1")
        renamed = attrs.evolve(moved, dependents=(ADA,))
        store.members.save(renamed)
        assert store.members.get("m-1") == renamed

    def test_a_member_cannot_be_moved_to_another_practice(self) -> None:
        """save() with another practice is refused (practice_change): its payments and
        indexes would stay counted in the old practice."""
        store = _store(_charge("pay-1", "100.00"))
        member = store.members.get("m-1")
        moved = attrs.evolve(member, practice_id="nyc", plan_id="nyc-gold")
        with pytest.raises(RuleViolation) as caught:
            store.members.save(moved)
        assert (caught.value.rule, caught.value.field) == ("practice_change", "practice_id")
        assert store.members.get("m-1") == member
        assert store.members.count(MemberQuery(practices={"syd"})) == 1
        assert store.members.count(MemberQuery(practices={"nyc"})) == 0

    @DATASETS
    @given(data=st.data(), dataset=sps.datasets())
    def test_a_truncated_history_is_refused_and_an_extended_one_saved(
        self, data: st.DataObject, dataset: sps.Dataset
    ) -> None:
        """For any kept member: a copy with fewer changes is refused and the store is
        unchanged; the member moved on by one legal change is saved."""
        members = [m for m in dataset.members if len(m.history) >= 2]
        if not members:
            return
        store = InMemoryStore.from_objects(dataset.objects())
        member = data.draw(st.sampled_from(members), label="member")
        k = data.draw(st.integers(1, len(member.history) - 1), label="kept changes")
        with pytest.raises(RuleViolation, match="does not extend"):
            store.members.save(attrs.evolve(member, history=member.history[:k]))
        assert store.members.get(member.id) == member
        targets = sorted(MEMBERSHIP_LIFECYCLE.allowed(member.status), key=lambda s: s.value)
        if targets:
            charges = [p.at for p in dataset.payments if p.member_id == member.id]
            offers = [  # and after its plans' offers from a template (members only)
                p.created_at
                for p in dataset.payment_plans
                if p.member_id == member.id and p.template_id is not None
            ]
            at = max([_last_change(member), *charges, *offers]) + DAY  # no charge after a cancel
            later = member.transition(targets[0], at=at, reason="t")
            store.members.save(later)
            assert store.members.get(member.id) == later


class TestPracticeCurrency:
    """A practice's currency is fixed once it holds amounts: they would be read in the new one."""

    @pytest.mark.parametrize(
        ("held", "kind"),
        [
            (lambda: [SYD_GOLD], "MembershipPlan"),
            (lambda: [_plan("pp-1", None)], "PaymentPlan"),
            (lambda: [SYD_GOLD, _member(), _charge("pay-1", "100")], "Payment"),
            (lambda: [_template()], "PaymentPlanTemplate"),
        ],
        ids=["membership plan", "payment plan", "payment", "payment-plan template"],
    )
    def test_a_new_currency_is_refused_once_amounts_are_held(self, held: Any, kind: str) -> None:
        """Saving Sydney in USD raises RuleViolation naming the practice, the table and both
        currencies; the practice keeps AUD and its totals stay in AUD."""
        store = InMemoryStore.from_objects([SYD, NYC, *held()])
        totals = (
            store.payments.total(PaymentQuery()),
            store.payment_plans.total(PaymentPlanQuery()),
        )
        with pytest.raises(RuleViolation) as caught:
            store.practices.save(attrs.evolve(SYD, currency="USD"))
        error = caught.value
        assert (error.rule, error.field) == ("currency_in_use", "currency")
        assert error.context == {"practice_id": "syd", "currency": "AUD"}
        assert str(error) == (
            f"practice syd holds {kind} amounts in AUD: its currency cannot become USD"
        )
        assert store.practices.get("syd") == SYD
        assert (
            store.payments.total(PaymentQuery()),
            store.payment_plans.total(PaymentPlanQuery()),
        ) == totals

    def test_a_practice_without_amounts_may_change_currency(self) -> None:
        """Staff and campaigns hold no amounts; New York's plan does not pin Sydney. After the
        change, Sydney's plans must be priced in the new currency."""
        store = InMemoryStore.from_objects([SYD, NYC, NYC_GOLD, StaffUser("s-1", "syd", "Sam")])
        store.practices.save(attrs.evolve(SYD, currency="NZD"))
        assert store.practices.get("syd").currency == "NZD"
        with pytest.raises(CurrencyMismatch):
            store.membership_plans.add(SYD_GOLD)
        store.membership_plans.add(attrs.evolve(SYD_GOLD, price=Money.of("30", "NZD")))
        assert store.practices.get("nyc") == NYC

    def test_totals_over_a_set_read_before_the_change_follow_the_new_currency(self) -> None:
        """Sydney and New York read together in AUD and USD; Sydney becomes NZD before it
        holds amounts, then charges in NZD: the same set's totals show NZD, not AUD."""
        store = InMemoryStore.from_objects([SYD, NYC, NYC_GOLD])
        both = frozenset({"syd", "nyc"})
        for _ in range(3):  # read often enough to be remembered (and merged)
            assert store.payments.total(PaymentQuery(practices=both)) == {
                "AUD": Money.zero("AUD"),
                "USD": Money.zero("USD"),
            }
        store.practices.save(attrs.evolve(SYD, currency="NZD"))
        gold = attrs.evolve(SYD_GOLD, price=Money.of("100", "NZD"))
        store.load(
            [gold, _member().activate(at=T0 + HOUR), _charge("pay-1", "100", currency="NZD")]
        )
        assert store.payments.total(PaymentQuery(practices=both)) == {
            "NZD": Money.of("100", "NZD"),
            "USD": Money.zero("USD"),
        }
        # A practice added after its set was read is read with the set.
        three = both | {"lon"}
        assert store.payments.total(PaymentQuery(practices=three)).keys() == {"NZD", "USD"}
        lon = Practice("lon", "Thames Dental", "Europe/London", "GBP")
        lon_gold = MembershipPlan(
            "lon-gold", "lon", "Gold", Money.of("20", "GBP"), BillingCycle.MONTHLY
        )
        joined = _member("m-2", practice_id="lon", plan_id="lon-gold").activate(at=T0 + HOUR)
        store.load([lon, lon_gold, joined])
        store.payments.add(_charge("pay-2", "20", member="m-2", practice="lon", currency="GBP"))
        assert store.payments.total(PaymentQuery(practices=three))["GBP"] == Money.of("20", "GBP")

    def test_other_fields_may_change_while_amounts_are_held(self) -> None:
        """A new name or time zone (same currency) is saved: the amounts stay in AUD."""
        store = _store(_charge("pay-1", "100"))
        renamed = attrs.evolve(SYD, name="Harbour Dental & Co", timezone="Australia/Perth")
        store.practices.save(renamed)
        assert store.practices.get("syd") == renamed
        assert store.payments.total(PaymentQuery()) == {"AUD": Money.of("100", "AUD")}


def _plan(
    id: str, member_id: str | None, *, practice_id: str = "syd", currency: str = "AUD"
) -> PaymentPlan:
    """A 90-unit Instant plan of Ada's, offered at T0 and held by ``member_id``."""
    return PaymentPlan.offer(
        id=id,
        practice_id=practice_id,
        patient=ADA,
        total=Money.of("90", currency),
        payment_type=PaymentType.INSTANT,
        first_due=T0.date(),
        at=T0,
        member_id=member_id,
    )


def _template(
    *, id: str = "t-1", practice_id: str = "syd", currency: str = "AUD", **changes: Any
) -> PaymentPlanTemplate:
    """Ortho: 500 to 5,000 in 6 or 12 monthly instalments, first due within 30 days."""
    fields: dict[str, Any] = {
        "min_total": Money.of("500", currency),
        "max_total": Money.of("5000", currency),
    }
    fields.update(changes)
    return PaymentPlanTemplate(
        id, practice_id, "Ortho", instalment_counts=(6, 12), max_deferral_days=30, **fields
    )


class TestPlansByMember:
    """of_member() lists a member's payment plans, following saves and failed loads."""

    @pytest.mark.parametrize("new_holder", ["m-2", None], ids=["moved", "detached"])
    def test_a_plan_saved_to_another_holder_leaves_the_old_one(
        self, new_holder: str | None
    ) -> None:
        """A plan of m-1 saved under another member (or none) is listed only under its
        new holder; m-1's other plan stays."""
        plan, kept = _plan("pp-1", "m-1"), _plan("pp-2", "m-1")
        store = _store(_member("m-2"), plan, kept)
        moved = attrs.evolve(plan, member_id=new_holder)
        store.payment_plans.save(moved)
        assert store.payment_plans.of_member("m-1") == [kept]
        assert store.payment_plans.of_member("m-2") == ([moved] if new_holder else [])

    def test_a_failed_load_leaves_no_plan_under_its_member(self) -> None:
        """A plan added by a load that then fails is listed under no member."""
        store = _store()
        with pytest.raises(InvalidRecord) as caught:
            store.load([_member("m-3"), _plan("pp-3", "m-3"), _charge("pay-1", "5", member="m-4")])
        assert (caught.value.table, caught.value.index) == ("Payment", 2)
        assert store.payment_plans.of_member("m-3") == []
        assert len(store.payment_plans) == 0


# -- the ledger ------------------------------------------------------------------------------


class TestPayments:
    """The ledger is append-only, idempotent, and never refunds more than it collected."""

    def test_identical_re_add_is_a_no_op(self) -> None:
        """Adding the same payment again changes neither the count nor the total."""
        charge = _charge("pay-1", "100")
        store = _store(charge)
        store.payments.add(charge)
        store.payments.add(attrs.evolve(charge))
        assert store.payments.count(PaymentQuery()) == 1
        assert store.payments.total(PaymentQuery()) == {"AUD": Money.of("100", "AUD")}

    def test_different_content_under_a_recorded_id_conflicts(self) -> None:
        """Another amount under a recorded id raises ConflictingPayment, a DuplicateId and a
        RuleViolation; the recorded entry stays."""
        charge = _charge("pay-1", "100")
        store = _store(charge)
        with pytest.raises(ConflictingPayment) as caught:
            store.payments.add(attrs.evolve(charge, amount=Money.of("101", "AUD")))
        assert isinstance(caught.value, DuplicateId)
        assert isinstance(caught.value, RuleViolation)
        assert caught.value.rule == "conflicting_payment"
        assert caught.value.id == "pay-1"
        assert store.payments.get("pay-1") == charge

    @pytest.mark.parametrize("known", [True, False])
    def test_save_is_refused(self, known: bool) -> None:
        """save() always raises RuleViolation with rule append_only and records nothing."""
        charge = _charge("pay-1", "100")
        store = _store(charge) if known else _store()
        with pytest.raises(RuleViolation) as caught:
            store.payments.save(attrs.evolve(charge, outcome=FAILED))
        assert caught.value.rule == "append_only"
        assert store.payments.count(PaymentQuery(outcomes={"failed"})) == 0

    def test_refund_above_net_collected_is_refused(self) -> None:
        """A refund one cent above the net collected raises refund_exceeds_collected; one
        equal to it is recorded."""
        store = _store(_charge("pay-1", "100"), _refund("ref-1", "30", T0 + 2 * HOUR))
        with pytest.raises(RuleViolation) as caught:
            store.payments.add(_refund("ref-2", "70.01", T0 + 3 * HOUR))
        assert caught.value.rule == "refund_exceeds_collected"
        with pytest.raises(NotFound):
            store.payments.get("ref-2")
        store.payments.add(_refund("ref-3", "70", T0 + 3 * HOUR))
        assert store.payments.collected_for(("member", "m-1"), "AUD") == Money.zero("AUD")

    def test_a_back_dated_refund_that_overdraws_a_later_one_is_refused(self) -> None:
        """Charge 100, refund 60 later; a back-dated refund of 50 between them would leave
        the later refund above what was collected, so it is refused; 40 is fine."""
        store = _store(_charge("pay-1", "100", T0 + HOUR), _refund("ref-1", "60", T0 + 3 * HOUR))
        with pytest.raises(RuleViolation) as caught:
            store.payments.add(_refund("ref-2", "50", T0 + 2 * HOUR))
        assert caught.value.rule == "refund_exceeds_collected"
        store.payments.add(_refund("ref-3", "40", T0 + 2 * HOUR))
        assert _nonzero(store.payments.total(PaymentQuery())) == {}
        assert store.payments.collected_for(("member", "m-1"), "AUD") == Money.zero("AUD")

    def test_a_refund_before_its_charge_is_refused(self) -> None:
        """A refund stamped before the only charge raises, however small."""
        store = _store(_charge("pay-1", "100", T0 + 2 * HOUR))
        with pytest.raises(RuleViolation):
            store.payments.add(_refund("ref-1", "0.01", T0 + HOUR))

    def test_a_refund_at_the_charge_instant_is_allowed(self) -> None:
        """At the same instant, the charge counts before the refund."""
        store = _store(_charge("pay-1", "100", T0 + 2 * HOUR))
        store.payments.add(_refund("ref-1", "100", T0 + 2 * HOUR))
        assert store.payments.count(PaymentQuery(kinds="refund")) == 1

    def test_only_succeeded_charges_of_the_same_source_count(self) -> None:
        """A failed charge, or another member's charge, collects nothing to refund."""
        store = _store(
            _member("m-2"),
            _charge("pay-1", "100", outcome=FAILED),
            _charge("pay-2", "100", member="m-2"),
        )
        with pytest.raises(RuleViolation):
            store.payments.add(_refund("ref-1", "1", T0 + 2 * HOUR))

    def test_a_failed_refund_is_recorded_and_moves_no_money(self) -> None:
        """A failed refund of any size is recorded and leaves the totals alone."""
        store = _store(_charge("pay-1", "100"))
        store.payments.add(_refund("ref-1", "5000", T0 + 2 * HOUR, outcome=FAILED))
        assert store.payments.count(PaymentQuery()) == 2
        assert store.payments.total(PaymentQuery()) == {"AUD": Money.of("100", "AUD")}

    def test_collected_for(self) -> None:
        """Net collected per source: succeeded charges minus succeeded refunds, zero if none."""
        store = _store(
            _member("m-2"),
            _charge("pay-1", "100"),
            _charge("pay-2", "100", T0 + 2 * HOUR),
            _charge("pay-3", "100", T0 + 2 * HOUR, outcome=FAILED),
            _refund("ref-1", "15.50", T0 + 3 * HOUR),
            _charge("pay-4", "100", member="m-2"),
        )
        assert store.payments.collected_for(("member", "m-1"), "AUD") == Money.of("184.50", "AUD")
        assert store.payments.collected_for(("member", "m-2"), "AUD") == Money.of("100", "AUD")
        assert store.payments.collected_for(("member", "m-3"), "AUD") == Money.zero("AUD")


# -- the demo --------------------------------------------------------------------------------


class TestFromDemo:
    """demo_store() holds exactly the demo dataset."""

    def test_counts_equal_the_demo(self) -> None:
        """Every repository holds as many objects as the demo's tuple."""
        data = load_demo()
        store = demo_store()
        for name in REPOSITORIES:
            assert _counts(store)[name] == (len(getattr(data, name)),) * 2, name

    def test_member_counts_by_status(self) -> None:
        """Counting and finding members by status (enum or host string) matches the demo."""
        data = load_demo()
        store = demo_store()
        by_status = collections.Counter(m.status for m in data.members)
        for status in MembershipStatus:
            assert store.members.count(MemberQuery(statuses={status})) == by_status[status]
            assert (
                len(store.members.find(MemberQuery(statuses=status.value.title())))
                == (by_status[status])
            )
        assert store.members.count(MemberQuery(statuses=set(MembershipStatus))) == len(data.members)

    def test_active_now_equals_the_current_statuses(self) -> None:
        """Active at the demo's now (all changes before it) equals the members Active now."""
        data = load_demo()
        store = demo_store()
        active = sum(1 for m in data.members if m.status is _M.ACTIVE)
        assert store.members.count(MemberQuery(active_at=data.now)) == active

    def test_latest_feed_on_the_demo(self) -> None:
        """The latest-activated feed on the demo lists the newest first activations."""
        data = load_demo()
        store = demo_store()
        for practice in data.practices:
            ranked = _newest_first(
                m
                for m in data.members
                if m.practice_id == practice.id and _first_active(m) is not None
            )
            query = MemberQuery(practices=practice.id, ever_active_before=data.now)
            order = Order("-first_activated_at", page=Page(limit=5))
            assert [m.id for m in store.members.find(query, order=order)] == ranked[:5]


_GOLD = MembershipPlan("gold", "p", "Gold", Money.of("30", "AUD"), BillingCycle.MONTHLY)


_ADA = Patient("h", "Ada")


def _ada(start: datetime, start_date: date, *, id: str = "m", holder: Patient = _ADA) -> Member:
    """Ada (or ``holder``), member ``m`` (or ``id``) of practice ``p`` on Gold, enrolled
    and Active at ``start``."""
    return Member.enrol(
        id=id,
        practice_id="p",
        plan_id="gold",
        account_holder=holder,
        start_date=start_date,
        at=start,
    ).activate(at=start)


class TestOverdueOutlooks:
    """After a member's last event, the Overdue filter reads their outlook, and a write to
    the member, their ledger, their plans, their practice or its membership plans drops
    it."""

    @settings(
        max_examples=max(10, settings.default.max_examples // 4),
        suppress_health_check=[*settings.default.suppress_health_check, HealthCheck.too_slow],
    )
    @given(dataset=sps.datasets(), data=st.data())
    def test_after_every_event_no_member_is_judged_in_full(
        self, dataset: sps.Dataset, data: st.DataObject
    ) -> None:
        """At an instant after every event the answers equal ``is_overdue``'s, and the store
        judges no member in full: it reads each one's outlook through that instant's day."""
        store = InMemoryStore.from_objects(dataset.objects())
        events = [
            *_event_times(dataset),
            *(m.last_changed_at for m in dataset.members),  # plan, dependent, reward
            *(a.at for p in dataset.payment_plans for a in p.attempts),
        ]
        assume(events)
        at = max(events) + data.draw(
            st.integers(0, 300 * 86400).map(lambda s: timedelta(seconds=s)), label="after"
        )
        grace = data.draw(st.integers(0, 10), label="grace")
        zones = {p.id: p.timezone for p in dataset.practices}
        catalogue = {p.id: p for p in dataset.membership_plans}
        expected = sorted(
            m.id
            for m in dataset.members
            if is_overdue(
                m,
                dataset.payment_plans,
                at=at,
                timezone=zones[m.practice_id],
                grace_days=grace,
                membership_plans=catalogue,
                payments=dataset.payments,
            )
        )

        judged: list[str] = []

        def judged_in_full(member: Member, *args: Any, **kwargs: Any) -> bool:
            judged.append(member.id)
            return is_overdue(member, *args, **kwargs)

        with mock.patch.object(memory, "is_overdue", judged_in_full):
            query = MemberQuery(overdue=True, as_of=at, grace_days=grace)
            assert sorted(m.id for m in store.members.find(query)) == expected
            others = MemberQuery(overdue=False, as_of=at, grace_days=grace)
            assert store.members.count(others) == len(dataset.members) - len(expected)
        assert judged == []

    @settings(
        max_examples=max(10, settings.default.max_examples // 4),
        suppress_health_check=[*settings.default.suppress_health_check, HealthCheck.too_slow],
    )
    @given(dataset=sps.datasets(), data=st.data())
    def test_before_the_last_events_each_member_is_read_once(
        self, dataset: sps.Dataset, data: st.DataObject
    ) -> None:
        """At an instant among the events the Overdue filter and ``unpaid_charges`` answer
        as ``is_overdue`` and the domain's ``unpaid_charges`` do; asked again, the store
        reads no outlook, and judges in full only a member not enrolled yet who holds a
        payment plan."""
        store = InMemoryStore.from_objects(dataset.objects())
        events = _event_times(dataset)
        assume(events)
        at = data.draw(st.sampled_from(events), label="event") + data.draw(
            st.sampled_from([-timedelta(microseconds=1), timedelta(0), timedelta(hours=5)])
        )
        grace = data.draw(st.integers(0, 3), label="grace")
        zones = {p.id: p.timezone for p in dataset.practices}
        catalogue = {p.id: p for p in dataset.membership_plans}
        context: dict[str, Any] = {"membership_plans": catalogue, "payments": dataset.payments}
        late = [
            m.id
            for m in sorted(dataset.members, key=lambda m: m.id)
            if is_overdue(
                m,
                dataset.payment_plans,
                at=at,
                timezone=zones[m.practice_id],
                grace_days=grace,
                **context,
            )
        ]
        query = MemberQuery(overdue=True, as_of=at, grace_days=grace)
        read: list[str] = []

        def outlook_at(member: Member, *args: Any, **kwargs: Any) -> Any:
            read.append(member.id)
            return overdue_outlook_at(member, *args, **kwargs)

        def judged_in_full(member: Member, *args: Any, **kwargs: Any) -> bool:
            read.append(member.id)
            return is_overdue(member, *args, **kwargs)

        for practice in dataset.practices:
            got = store.members.unpaid_charges(practice_id=practice.id, at=at)
            expected = [
                (m.id, found)
                for m in sorted(dataset.members, key=lambda m: m.id)
                if m.practice_id == practice.id
                and (found := unpaid_charges(m, at=at, timezone=practice.timezone, **context))
            ]
            assert got is not None
            assert [(m.id, charges) for m, charges in got] == expected
        assert [m.id for m in store.members.find(query)] == late
        with (
            mock.patch.object(memory, "overdue_outlook_at", outlook_at),
            mock.patch.object(memory, "is_overdue", judged_in_full),
        ):
            assert [m.id for m in store.members.find(query)] == late
            for practice in dataset.practices:
                store.members.unpaid_charges(practice_id=practice.id, at=at)
        holders = {p.member_id for p in dataset.payment_plans}
        assert sorted(read) == sorted(
            m.id for m in dataset.members if at < m.created_at and m.id in holders
        )

    @settings(
        max_examples=max(10, settings.default.max_examples // 4),
        suppress_health_check=[*settings.default.suppress_health_check, HealthCheck.too_slow],
    )
    @given(dataset=sps.datasets(), data=st.data())
    def test_the_filter_follows_every_write_between_queries(
        self, dataset: sps.Dataset, data: st.DataObject
    ) -> None:
        """Objects added one at a time (members, plans, ledger entries...) and members
        cancelled, between Overdue queries at instants before and after their events, of
        one practice or all: each answer is ``is_overdue``'s over what the store holds
        then, in id order, and the objects are the ones kept."""
        objects = dataset.objects()
        cut = data.draw(st.integers(0, len(objects)), label="loaded at once")
        store = InMemoryStore.from_objects(objects[:cut])
        events = _event_times(dataset)
        assume(events)
        zones = {p.id: p.timezone for p in dataset.practices}
        catalogue = {p.id: p for p in dataset.membership_plans}

        def check() -> None:
            at = data.draw(st.sampled_from(events), label="event") + data.draw(
                st.integers(-86400, 200 * 86400).map(lambda s: timedelta(seconds=s)),
                label="after it",
            )
            grace = data.draw(st.integers(0, 3), label="grace")
            members = store.members.find(MemberQuery())
            plans = store.payment_plans.find(PaymentPlanQuery())
            ledger = store.payments.find(PaymentQuery())
            late = {
                m.id
                for m in members
                if is_overdue(
                    m,
                    plans,
                    at=at,
                    timezone=zones[m.practice_id],
                    grace_days=grace,
                    membership_plans=catalogue,
                    payments=ledger,
                )
            }
            for practices in (None, frozenset({dataset.practices[0].id})):
                mine = [m for m in members if practices is None or m.practice_id in practices]
                for overdue in (True, False):
                    query = MemberQuery(
                        practices=practices, overdue=overdue, as_of=at, grace_days=grace
                    )
                    wanted = [m for m in mine if (m.id in late) is overdue]
                    assert store.members.find(query) == wanted
                    assert store.members.count(query) == len(wanted)

        check()
        for obj in objects[cut:]:
            store.load([obj])
            if data.draw(st.booleans(), label="query now"):
                check()
        cancelled = (
            st.lists(st.sampled_from(dataset.members), max_size=3)
            if dataset.members
            else st.just([])
        )
        for m in data.draw(cancelled, label="cancel"):
            kept = store.members.get(m.id)
            if kept.status is MembershipStatus.CANCELLED:
                continue
            with contextlib.suppress(SmilepassError):
                store.members.save(kept.cancel(at=kept.last_changed_at + timedelta(days=1)))
            check()

    def test_a_write_drops_the_outlook(self) -> None:
        """Ada's March charge is unpaid: overdue. A payment, then a plan of hers, then her
        suspension change the answer at once."""
        zone = "Australia/Sydney"
        gold = _GOLD
        start = datetime(2026, 2, 1, tzinfo=UTC)
        ada = _ada(start, date(2026, 2, 1))
        feb = Payment("c1", "p", gold.price, "charge", "succeeded", start, member_id="m")
        store = InMemoryStore.from_objects([Practice("p", "P", zone, "AUD"), gold, ada, feb])
        at = datetime(2026, 3, 10, tzinfo=UTC)
        query = MemberQuery(overdue=True, as_of=at)
        assert [m.id for m in store.members.find(query)] == ["m"]
        march = attrs.evolve(feb, id="c2", at=datetime(2026, 3, 5, tzinfo=UTC))
        store.payments.add(march)
        assert store.members.find(query) == []
        braces = PaymentPlan.offer(
            id="pp",
            practice_id="p",
            patient=ada.account_holder,
            total=Money.of("300", "AUD"),
            payment_type=PaymentType.PLAN,
            instalments=3,
            first_due=date(2026, 3, 6),
            at=datetime(2026, 3, 1, tzinfo=UTC),
            member_id="m",
        )
        store.payment_plans.add(braces)
        assert [m.id for m in store.members.find(query)] == ["m"]
        store.payment_plans.save(braces.cancel(at=datetime(2026, 3, 8, tzinfo=UTC)))
        assert store.members.find(query) == []
        later = MemberQuery(overdue=True, as_of=datetime(2026, 4, 10, tzinfo=UTC))
        assert [m.id for m in store.members.find(later)] == ["m"]  # April's charge
        store.members.save(ada.suspend(at=datetime(2026, 3, 9, tzinfo=UTC)))
        assert store.members.find(later) == []

    def test_the_collector_is_paused_while_every_outlook_is_read(self) -> None:
        """The first Overdue query of a practice, its unpaid charges at a past instant and
        an Overdue query member by member (before a member's last event) read each
        member's outlook with the garbage collector off (many objects, no cycle), and
        leave it as it was: on after, or still off when it was off."""
        start = datetime(2026, 2, 1, tzinfo=UTC)
        ada = _ada(start, start.date())
        grace = _ada(start, start.date(), id="g", holder=Patient("h2", "Grace"))
        paid = Payment("c-1", "p", _GOLD.price, CHARGE, OK, start + HOUR, member_id="g")
        store = InMemoryStore.from_objects([Practice("p", "P", "UTC", "AUD"), _GOLD, ada, grace])
        store.payments.add(paid)
        seen: list[tuple[str, bool]] = []

        def outlook(member: Member, *args: Any, **kwargs: Any) -> Any:
            seen.append((member.id, gc.isenabled()))
            return overdue_outlook(member, *args, **kwargs)

        def outlook_at(member: Member, *args: Any, **kwargs: Any) -> Any:
            seen.append((member.id, gc.isenabled()))
            return overdue_outlook_at(member, *args, **kwargs)

        now, then = datetime(2026, 3, 20, tzinfo=UTC), start + 30 * 60 * timedelta(seconds=1)
        assert gc.isenabled()
        with (
            mock.patch.object(memory, "overdue_outlook", outlook),
            mock.patch.object(memory, "overdue_outlook_at", outlook_at),
        ):
            late = store.members.find(MemberQuery(overdue=True, as_of=now))
            assert gc.isenabled()
            unpaid = store.members.unpaid_charges(practice_id="p", at=then)
            assert gc.isenabled()
            gc.disable()
            try:
                store.members.find(MemberQuery(overdue=True, as_of=now + 90 * DAY))
                assert not gc.isenabled()  # left off, as it was
            finally:
                gc.enable()
            fresh = InMemoryStore.from_objects(
                [Practice("p", "P", "UTC", "AUD"), _GOLD, ada, grace, paid]
            )
            before_paid = fresh.members.find(MemberQuery(overdue=True, as_of=then))
            assert gc.isenabled()
        assert before_paid == []  # nothing due is late yet on 1 February
        assert [m.id for m in late] == ["g", "m"]  # March unpaid by both
        assert unpaid is not None
        assert [(m.id, [c.amount for c in charges]) for m, charges in unpaid] == [
            ("g", [_GOLD.price]),  # due 1 February, paid only at 01:00
            ("m", [_GOLD.price]),
        ]
        # Both read first; then Grace as she stood before her payment (Ada's is kept);
        # then both through the later day; on the fresh store, member by member (Grace
        # has a later event, in no set order), Grace as she stood then and Ada's outlook.
        assert seen[:5] == [("g", False), ("m", False), ("g", False), ("g", False), ("m", False)]
        assert sorted(seen[5:]) == [("g", False), ("m", False)]

    def test_the_last_supported_days_are_answered(self) -> None:
        """An Overdue query in the last weeks of 2200 (an outlook cannot read past them)
        answers as ``is_overdue`` does."""
        gold = _GOLD
        start = datetime(2200, 1, 1, tzinfo=UTC)
        ada = _ada(start, start.date())
        store = InMemoryStore.from_objects([Practice("p", "P", "UTC", "AUD"), gold, ada])
        for at in (datetime(2200, 12, 1, tzinfo=UTC), datetime(2200, 12, 31, 12, tzinfo=UTC)):
            query = MemberQuery(overdue=True, as_of=at)
            assert [m.id for m in store.members.find(query)] == ["m"]
            assert is_overdue(ada, at=at, timezone="UTC", membership_plans={"gold": gold})

    def test_a_membership_plan_or_a_practice_saved_drops_the_outlooks(self) -> None:
        """Ada paid her February and March charges of 30.00: not overdue on 20 March. A
        price rewritten without ``reprice``, or repriced back over her charged 1 March, is
        refused and changes nothing. Charged only on 1 February, the plan moved to a weekly
        cycle (the dates she was charged up to unchanged) leaves 8 and 15 February unpaid on
        20 February. On a fresh store, her 1 April
        charge fails at 01:00
        in Sydney: with the practice in Honolulu (21 hours behind) it is still 31 March and
        nothing is due yet; moved back to Sydney, she is overdue at once."""
        gold = _GOLD
        start = datetime(2026, 1, 31, 14, tzinfo=UTC)  # 1 Feb 01:00 in Sydney
        ada = _ada(start, date(2026, 2, 1))
        paid = [
            Payment(
                f"c{k}",
                "p",
                gold.price,
                "charge",
                "succeeded",
                start + k * timedelta(days=28),
                member_id="m",
            )
            for k in range(2)
        ]
        sydney = Practice("p", "P", "Australia/Sydney", "AUD")
        store = InMemoryStore.from_objects([sydney, gold, ada, *paid])
        march = MemberQuery(overdue=True, as_of=datetime(2026, 3, 20, tzinfo=UTC))
        assert store.members.find(march) == []
        # Months later (past what the outlook read): read again, April is unpaid.
        june = MemberQuery(overdue=True, as_of=datetime(2026, 6, 10, tzinfo=UTC))
        assert [m.id for m in store.members.find(june)] == ["m"]
        assert store.members.find(march) == []
        with pytest.raises(RuleViolation, match="reprice"):
            store.membership_plans.save(attrs.evolve(gold, price=Money.of("40", "AUD")))
        assert store.members.find(march) == []
        with pytest.raises(RuleViolation) as backdated:  # over her charged 1 March
            store.membership_plans.save(gold.reprice(Money.of("40", "AUD"), on=date(2026, 3, 1)))
        assert backdated.value.rule == "reprice_backdated"
        assert store.members.find(march) == []
        # Charged only on 1 February, read on 20 February: not overdue. Weekly, the dates
        # she was charged up to (1 February) stay as they were, so the save is kept; 8 and
        # 15 February are now due and unpaid.
        store = InMemoryStore.from_objects([sydney, gold, ada, paid[0]])
        february = MemberQuery(overdue=True, as_of=datetime(2026, 2, 20, tzinfo=UTC))
        assert store.members.find(february) == []
        store.membership_plans.save(attrs.evolve(gold, billing_cycle=BillingCycle.WEEKLY))
        assert [m.id for m in store.members.find(february)] == ["m"]
        assert amount_overdue(
            store.members.get("m"),
            at=february.as_of,
            timezone="Australia/Sydney",
            membership_plans={"gold": store.membership_plans.get("gold")},
            payments=paid[:1],
        ) == Money.of("60.00", "AUD")
        store = InMemoryStore.from_objects([sydney, gold, ada, *paid])
        failed = Payment(
            "c-apr",
            "p",
            gold.price,
            "charge",
            "failed",
            datetime(2026, 3, 31, 14, tzinfo=UTC),
            member_id="m",
        )  # 1 April 01:00 in Sydney, 31 March 04:00 in Honolulu
        store.payments.add(failed)
        honolulu = attrs.evolve(sydney, timezone="Pacific/Honolulu")
        store.practices.save(honolulu)
        at = datetime(2026, 3, 31, 20, tzinfo=UTC)  # 1 April in Sydney, 31 March in Honolulu
        query = MemberQuery(overdue=True, as_of=at)
        # In Honolulu it is still 31 March: the 1 April charge is not due, and the attempt,
        # made before it was, is an attempt at none.
        assert store.members.find(query) == []
        store.practices.save(sydney)
        # In Sydney the attempt falls on the charge's due day: overdue at once.
        assert [m.id for m in store.members.find(query)] == ["m"]
        fresh = InMemoryStore.from_objects([sydney, gold, ada, *paid, failed])
        assert [m.id for m in fresh.members.find(query)] == ["m"]
