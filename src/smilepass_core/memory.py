"""The in-memory reference store: every repository protocol, answered from indexes.

Each repository keeps its objects by id and by practice, plus time-ordered
:class:`Timeline` indexes (sorted ``(instant, id)`` entries with prefix sums)
so that the KPI reads are binary searches, not scans:

==========================================  ==========================================
read                                        cost
==========================================  ==========================================
``get``                                     O(1)
``members.count(active_at=B)``              O(log n) per practice
``members.count(ever_active_before=B)``     O(log n) per practice
``members.count(first_activated_in=R)``     O(log n) per practice
``members.count(counting_at=B,              O(log n) per plan (of the practices, or
counting_plans=P)``                         the plans given)
batched series reads (``members.``          O(k log n) per practice, k = edges
``first_activated_counts``, ``payment_``
``plans.committed_totals``)
batched boundary reads (``members.``        each item as the one query it stands for
``active_counts``, ``ever_active_counts``,  (above and below), under one lock
``retained_counts``, ``payments.``
``window_totals``)
``members.find(changed_in=R)``              O(log n + c) per practice, c = status and
                                            plan changes in R
``members.count(active_at=A,                O(E + w + n/8 + log m) per practice: E
retained_until=B)``                         toggles to the nearer snapshot (snapshots
                                            every 16 toggles of each timeline, or every
                                            n // 384 past 6,144 bits), n members with a
                                            bit, m Active once and never stopped (no
                                            bit), w written since they were taken
                                            (ActiveSets); O(t) to take them again, t
                                            toggles
``members.find(statuses=S)`` ordered by    O(m), m members of those statuses, read
``start_date``                              in the index's order (no sort); O(1) for
                                            one practice and status while its list is
                                            kept (handed out whole, not copied)
``members.find(overdue=, as_of=T,          O(n) per practice over ints (one
grace_days=g)``, nothing else filtering     compare per member), once every member's
                                            outlook reads T's day and T is past their
                                            last event; O(w) outlooks read again for
                                            w members written since; else as "other
                                            find/count" below, each member from their
                                            outlook (at T, kept by since, for T
                                            before their last event)
``members.unpaid_charges(practice_id=,      the same condition: O(n + c), c charges
at=T)``                                     listed; else O(n log s + c) from the
                                            outlooks at T
latest N activated (``find`` ordered by     O(log n + N) per practice, then
``-first_activated_at``, limit N)           O(N log N) to order them by the
                                            timeline's own instants
``payments.total(time_range=R)``            O(log n) per practice
``payment_plans.total(committed_in=R)``     O(log n) per practice
other ``find``/``count``                    O(k) over the candidates k (the ``ids``
                                            given, else the practices' objects), then
                                            O(m log m) to sort the m matches
``add``/``save``                            O(1) per timeline entry at or after the
                                            latest; else O(log n) + O(n) insertion
==========================================  ==========================================

Prefix sums are rebuilt lazily (O(n), once) after an insertion that is not
at the end of a timeline; appending in time order keeps them current.

"Per practice" is one read for a set of practices read together before: at a set's
second read its timelines are merged into one (:class:`Timelines`; O(n log n) once,
n its entries), kept in step by every write after, for the 16 sets read most recently.
"""

from __future__ import annotations

import array
import bisect
import collections
import contextlib
import functools
import gc
import heapq
import itertools
import operator
import os
import threading
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, NamedTuple, TypeVar, cast

import attrs

from smilepass_core._memo import Memo
from smilepass_core.domain import (
    Campaign,
    Member,
    MembershipPlan,
    MembershipStatus,
    Payment,
    PaymentKind,
    PaymentOutcome,
    PaymentPlan,
    PaymentPlanTemplate,
    Practice,
    Referral,
    StaffUser,
    check_codes,
    check_joiners,
    check_members_plans,
    check_offer,
    check_offers,
    check_refund,
    check_successor,
    check_template_change,
    check_version,
)
from smilepass_core.domain.billing import (
    check_cancel_after_charges,
    check_charge_amount,
    check_charge_window,
    check_member_repriced,
    check_reprice,
    check_timezone_kept,
)
from smilepass_core.domain.discounts import check_discount_currency, check_grant_currency
from smilepass_core.domain.overdue import (
    DueCharge,
    OverdueOutlook,
    is_overdue,
    last_event,
    overdue_outlook,
    overdue_outlook_at,
)
from smilepass_core.domain.templates import member_change, offer_of
from smilepass_core.errors import (
    ConflictingPayment,
    CurrencyMismatch,
    DuplicateId,
    InvalidValue,
    NotFound,
    RuleViolation,
    SmilepassError,
)
from smilepass_core.money import Money, per_currency
from smilepass_core.periods import as_instant, local_day
from smilepass_core.queries import (
    MemberQuery,
    Order,
    PaymentPlanQuery,
    PaymentQuery,
    ReferralQuery,
    ScopeQuery,
    apply_order,
    check_order,
    id_set,
    read_instants,
    read_spans,
    series_edges,
)
from smilepass_core.read_only_list import ReadOnlyList
from smilepass_core.repositories import as_record_error, load_plan, record_label

if TYPE_CHECKING:
    from smilepass_core.repositories import (
        MemberBoundaryReader,
        MemberSeriesReader,
        PaymentPlanSeriesReader,
        PaymentWindowReader,
        UnpaidChargesReader,
    )

__all__ = ["InMemoryStore", "Timeline"]

T = TypeVar("T")
Q = TypeVar("Q")
_ACTIVE = MembershipStatus.ACTIVE
#: A timeline's instants: datetimes, or dates (a member's start date).
_At = TypeVar("_At", bound=date)
_TICK = timedelta(microseconds=1)  # the finest step between two instants
#: An array type for byte positions in a bit set (4 bytes where C's int is).
_BYTE_INDEX = "I" if array.array("I").itemsize >= 4 else "L"
_CANCELLED = MembershipStatus.CANCELLED
_ACTIVE_FORM = frozenset({"active_at"})
_RETAINED_FORM = frozenset({"active_at", "retained_until"})
_STATUSES_FORM = frozenset({"statuses"})
_EVER_FORM = frozenset({"ever_active_before"})
_FIRST_FORM = frozenset({"first_activated_in"})
_COMMITTED_FORM = frozenset({"committed_in"})
_TIME_FORM = frozenset({"time_range"})
_LEDGER_FORM = frozenset({"time_range", "kinds", "outcomes"})
_COUNTING_FORM = frozenset({"counting_at", "counting_plans"})
_CHANGED_FORM = frozenset({"changed_in"})


class Timeline(Generic[_At]):
    """Entries sorted by ``(instant, id)``, each with an int value, and their prefix sums
    (the "instant" may also be a date: ``Timeline[date]``).

    The instants, ids and values are three parallel lists: a read bisects the instants
    alone (one comparison per step, no tuple per entry). Entries added in time
    order are appended; those added out of order wait in a tail merged by the next read
    (a few one by one, many by one sort): a load of entries in any order costs
    O(n log n), not a list insertion each.
    """

    __slots__ = (
        "_ats",
        "_ids",
        "_prefix",
        "_tail_ats",
        "_tail_ids",
        "_tail_values",
        "_values",
    )

    #: Up to this many waiting entries are merged one by one, more by one sort.
    _MERGE_ONE_BY_ONE = 16

    def __init__(self) -> None:
        self._ats: list[_At] = []
        self._ids: list[str] = []
        self._values: list[int] = []
        self._prefix: list[int] | None = [0]
        # The entries waiting: instants, ids and values.
        self._tail_ats: list[_At] = []
        self._tail_ids: list[str] = []
        self._tail_values: list[int] = []

    def __len__(self) -> int:
        return len(self._ats) + len(self._tail_ats)

    def add(self, at: _At, id: str, value: int = 1) -> None:
        """Insert an entry (duplicates allowed); appending in time order is O(1)."""
        ats = self._ats
        if not self._tail_ats and (
            not ats or at > ats[-1] or (at == ats[-1] and id >= self._ids[-1])
        ):
            ats.append(at)
            self._ids.append(id)
            self._values.append(value)
            if self._prefix is not None:
                self._prefix.append(self._prefix[-1] + value)
            return
        self._tail_ats.append(at)
        self._tail_ids.append(id)
        self._tail_values.append(value)
        self._prefix = None

    def extend(self, ats: list[_At], ids: list[str], values: list[int]) -> None:
        """:meth:`add` each entry of three parallel lists: appended at once when they are
        in time order (entries at one instant put in id order first) and come after every
        entry, else left waiting like adds out of order."""
        if not ats:
            return
        in_order = _by_instant(ats)
        if in_order:
            ids, values = _ties_by_id(ats, ids, values)
        own = self._ats
        after = not own or ats[0] > own[-1] or (ats[0] == own[-1] and ids[0] >= self._ids[-1])
        if self._tail_ats or not after or not in_order:
            self._tail_ats += ats
            self._tail_ids += ids
            self._tail_values += values
            self._prefix = None
            return
        own += ats
        self._ids += ids
        self._values += values
        if self._prefix is not None:
            self._prefix += itertools.accumulate(values, initial=self._prefix[-1])
            del self._prefix[-len(values) - 1]  # the initial value, already there

    def settle(self) -> None:
        """Merge the entries added out of order into the sorted lists now (a read does it
        when needed)."""
        if self._tail_ats:
            self._settle()

    def _settle(self) -> None:
        """Merge the entries added out of order into the sorted lists."""
        tail, ats, ids, values = self._tail_ats, self._ats, self._ids, self._values
        if len(tail) <= self._MERGE_ONE_BY_ONE:
            for at, id, value in zip(tail, self._tail_ids, self._tail_values, strict=True):
                i = self._after(at, id)
                ats.insert(i, at)
                ids.insert(i, id)
                values.insert(i, value)
        else:
            self._ats, self._ids, self._values = _sorted_columns(
                ats + tail, ids + self._tail_ids, values + self._tail_values
            )
        self._tail_ats, self._tail_ids, self._tail_values = [], [], []

    @classmethod
    def merged(cls, timelines: Iterable[Timeline[_At]]) -> Timeline[_At]:
        """A new timeline holding the entries of ``timelines`` (whose ids differ)."""
        runs = list(timelines)
        ats = list(itertools.chain.from_iterable(t._sorted() for t in runs))
        ids = list(itertools.chain.from_iterable(t._ids for t in runs))
        values = list(itertools.chain.from_iterable(t._values for t in runs))
        merged: Timeline[_At] = cls()
        merged._ats, merged._ids, merged._values = _sorted_columns(ats, ids, values)
        merged._prefix = None
        return merged

    def _ties(self, at: _At) -> tuple[int, int]:
        """The index range of the entries at exactly ``at``."""
        lo = bisect.bisect_left(self._ats, at)
        return lo, bisect.bisect_right(self._ats, at, lo)

    def _after(self, at: _At, id: str) -> int:
        """Where ``(at, id)`` goes: after every entry at or before it."""
        lo, hi = self._ties(at)
        return bisect.bisect_right(self._ids, id, lo, hi)

    def remove(self, at: _At, id: str) -> None:
        """Remove one entry equal to ``(at, id)``."""
        if self._tail_ats:
            self._settle()
        lo, hi = self._ties(at)
        i = bisect.bisect_left(self._ids, id, lo, hi)
        if i == hi or self._ids[i] != id:
            raise KeyError((at, id))
        del self._ats[i]
        del self._ids[i]
        del self._values[i]
        self._prefix = None

    def _position(self, at: _At | None, default: int) -> int:
        """Index of the first entry at or after ``at`` (callers settle first)."""
        return default if at is None else bisect.bisect_left(self._ats, at)

    def _sorted(self) -> list[_At]:
        """The instants, every waiting entry merged."""
        if self._tail_ats:
            self._settle()
        return self._ats

    def _sums(self) -> list[int]:
        """The prefix sums of the values, every waiting entry merged."""
        if self._tail_ats:
            self._settle()
        if self._prefix is None:
            self._prefix = list(itertools.accumulate(self._values, initial=0))
        return self._prefix

    def count(self, start: _At | None = None, end: _At | None = None) -> int:
        """Entries with ``start <= instant < end`` (an open side when ``None``)."""
        ats = self._sorted()
        return max(0, self._position(end, len(ats)) - self._position(start, 0))

    def total(self, start: _At | None = None, end: _At | None = None) -> int:
        """Sum of values of entries with ``start <= instant < end``."""
        prefix = self._sums()
        i, j = self._position(start, 0), self._position(end, len(self._ats))
        return prefix[j] - prefix[i] if j > i else 0

    def counts(self, edges: Sequence[_At]) -> list[int]:
        """Entries between each two consecutive ``edges`` (``[e0, e1)``, ``[e1, e2)``, ...)."""
        self._sorted()
        at = [self._position(e, 0) for e in edges]
        return [max(0, j - i) for i, j in itertools.pairwise(at)]

    def totals(self, edges: Sequence[_At]) -> list[int]:
        """Sum of values between each two consecutive ``edges``."""
        prefix = self._sums()
        at = [self._position(e, 0) for e in edges]
        return [prefix[j] - prefix[i] if j > i else 0 for i, j in itertools.pairwise(at)]

    def counts_before(self, instants: Iterable[_At]) -> dict[_At, int]:
        """By instant of ``instants`` (one binary search each): the entries strictly
        before it."""
        ats = self._sorted()
        return {at: bisect.bisect_left(ats, at) for at in instants}

    def totals_before(self, instants: Iterable[_At]) -> dict[_At, int]:
        """By instant of ``instants`` (one binary search each): the sum of the values
        of the entries strictly before it."""
        prefix = self._sums()
        return {at: prefix[bisect.bisect_left(self._ats, at)] for at in instants}

    def columns(
        self, start: _At | None = None, end: _At | None = None
    ) -> tuple[list[_At], list[str]]:
        """The instants and the ids of the entries with ``start <= instant < end``, in
        time order."""
        ats = self._sorted()
        i, j = self._position(start, 0), self._position(end, len(ats))
        return ats[i:j], self._ids[i:j]

    def between(self, start: _At | None = None, end: _At | None = None) -> list[tuple[_At, str]]:
        """The entries with ``start <= instant < end``, in time order."""
        return list(zip(*self.columns(start, end), strict=True))

    def latest(self, end: _At | None, n: int) -> list[tuple[_At, str]]:
        """At least the ``n`` latest entries before ``end`` (all entries tied with the oldest)."""
        ats = self._sorted()
        j = self._position(end, len(ats))
        i = max(0, j - n)
        while 0 < i < j and ats[i - 1] == ats[i]:
            i -= 1
        return list(zip(ats[i:j], self._ids[i:j], strict=True))


class Timelines(Generic[_At]):
    """A :class:`Timeline` per key (a practice), and the same entries merged over each
    set of keys read together often (the practices of a dashboard's group), so that a
    read over the set is a read of one timeline, not one per practice.

    Writes go through :meth:`add` and :meth:`remove`, which keep every merged timeline
    holding the key in step. A set is merged when it is read for the :attr:`MERGE_AT`-th
    time; the :attr:`KEPT` sets read most recently stay merged, the others are dropped.
    """

    __slots__ = ("_asked", "_each", "_merged")

    #: The read of a set of keys at which they are merged (counted while unmerged).
    MERGE_AT = 2
    #: How many sets of keys stay merged; the least recently read is dropped.
    KEPT = 16

    def __init__(self) -> None:
        self._each: dict[str, Timeline[_At]] = {}
        # Most recently read last.
        self._merged: dict[frozenset[str], Timeline[_At]] = {}
        self._asked: dict[frozenset[str], int] = {}

    def get(self, key: str) -> Timeline[_At] | None:
        """The timeline of ``key`` (``None`` before its first entry)."""
        return self._each.get(key)

    def merged_over(self, keys: frozenset[str]) -> Timeline[_At] | None:
        """The merged timeline of ``keys``, if they are merged now (not a read)."""
        return self._merged.get(keys)

    def of(self, key: str) -> Timeline[_At]:
        """The timeline of ``key``, made empty before its first entry."""
        each = self._each.get(key)
        if each is None:
            each = self._each[key] = Timeline()
        return each

    def values(self) -> list[Timeline[_At]]:
        """Every timeline, merged ones included."""
        return [*self._each.values(), *self._merged.values()]

    def add(self, key: str, at: _At, id: str, value: int = 1) -> None:
        """:meth:`Timeline.add` to ``key``'s timeline and each merged one holding it."""
        self.of(key).add(at, id, value)
        for keys, merged in self._merged.items():
            if key in keys:
                merged.add(at, id, value)

    def extend(self, key: str, ats: list[_At], ids: list[str], values: list[int]) -> None:
        """:meth:`Timeline.extend` of ``key``'s timeline and each merged one holding it."""
        if not ats:
            return  # no timeline made for no entry, as with no add
        self.of(key).extend(ats, ids, values)
        for keys, merged in self._merged.items():
            if key in keys:
                merged.extend(ats, ids, values)

    def remove(self, key: str, at: _At, id: str) -> None:
        """:meth:`Timeline.remove` from ``key``'s timeline and each merged one holding it."""
        self._each[key].remove(at, id)
        for keys, merged in self._merged.items():
            if key in keys:
                merged.remove(at, id)

    def over(self, keys: Collection[str]) -> list[Timeline[_At]]:
        """The timelines holding the entries of ``keys``: one merged timeline when the
        set is merged (or is merged now), else each key's own."""
        scope = keys if isinstance(keys, frozenset) else frozenset(keys)
        merged = self._merged.pop(scope, None)
        if merged is None:
            each = self._each
            found = [t for k in scope if (t := each.get(k)) is not None]
            if len(found) < 2:
                return found
            asked = self._asked.get(scope, 0) + 1
            if asked < self.MERGE_AT:
                if len(self._asked) >= 4 * self.KEPT:
                    self._asked.clear()
                self._asked[scope] = asked
                return found
            self._asked.pop(scope, None)
            merged = Timeline.merged(found)
            if len(self._merged) >= self.KEPT:
                del self._merged[next(iter(self._merged))]
        self._merged[scope] = merged  # now the most recently read
        return [merged]


class ActiveSets:
    """Who was Active at any boundary, as a bit set over the members of a practice (or of
    a set of practices, from their merged timelines), so that the members Active at two
    boundaries are counted by one ``&`` (the retained count).

    Taken from the two timelines (becoming Active, stopping). A member Active once and
    never stopped (half of them in the benchmarks' data) is counted from that toggle
    alone, by a binary search; every other member has a bit. Each of their toggles is
    kept as the byte and the mask it flips, with a snapshot of who was Active before
    every ``max(EVERY, bits // BITS)``-th toggle of each timeline (just after it, when
    it ties with the one before), one before every toggle and one after them all. The
    set at a boundary is the nearer snapshot, before or after it, with the toggles
    between flipped; members written since the take get a bit (if they had none) set
    from their own toggles, as :meth:`touch` was told them, and a member of one toggle
    among them is no longer counted from it. All is taken again when those pass
    :attr:`STALE`.
    """

    __slots__ = (
        "_became",
        "_bits",
        "_bytes",
        "_cache",
        "_gone",
        "_instants",
        "_left",
        "_marks",
        "_masks",
        "_once",
        "_points",
        "_sets",
        "_singles",
        "_stale",
    )

    #: Toggles of each timeline between two snapshots (more where many share an
    #: instant), or ``bits // BITS`` when that is more (a bit per member of more than
    #: one toggle).
    EVERY = 16
    #: Past ``EVERY * BITS`` bits, the snapshots take ``BITS / 8`` bytes a toggle.
    BITS = 384
    #: The most members written since the take before all is taken again;
    #: ``members // 256`` for a practice of more members.
    STALE = 2048

    def __init__(self, became: Timeline[datetime], left: Timeline[datetime]) -> None:
        self._became, self._left = became, left
        self._singles: dict[str, datetime] = {}  # members of one toggle: that toggle
        self._once: list[datetime] = []  # those toggles, in time order
        self._gone: list[datetime] = []  # those of the ones written since, in time order
        self._bits: dict[str, int] = {}  # the others (and those written since): each bit
        self._instants: tuple[list[datetime], ...] = ()  # per timeline, at the take
        # Per timeline, the byte and the mask each of those toggles flips.
        self._bytes: tuple[array.array[int], ...] = ()
        self._masks: tuple[array.array[int], ...] = ()
        # Each snapshot between the first and the last: the toggles strictly before it.
        self._points: list[datetime] = []
        self._sets: list[bytes] = []  # every snapshot, the first (nobody) and the last
        self._marks: list[tuple[int, ...]] = []  # each one's position in each timeline
        # Members written since the take, with their toggles now; None: not taken.
        self._stale: dict[str, tuple[datetime, ...]] | None = None
        # The last few sets read, by boundary, until the next write (a range's start is
        # often the end of the period it is compared with).
        self._cache: dict[datetime, int] = {}

    def over(self, became: Timeline[datetime], left: Timeline[datetime]) -> bool:
        """Whether these sets are taken from the timelines ``became`` and ``left``."""
        return self._became is became and self._left is left

    def takes_from(self, timeline: Timeline[datetime] | None) -> bool:
        """Whether ``timeline`` is one of the two these sets are taken from."""
        return timeline is not None and (self._became is timeline or self._left is timeline)

    def touch(self, member_id: str, toggles: tuple[datetime, ...]) -> None:
        """``member_id`` was written: its toggles here are now ``toggles``
        (none once it is unindexed)."""
        if self._stale is not None:
            single = self._singles.get(member_id)
            if single is not None and member_id not in self._stale:  # now from a bit
                bisect.insort(self._gone, single)
            self._stale[member_id] = toggles
            self._bits.setdefault(member_id, len(self._bits))
            self._cache.clear()

    def retained(self, start: datetime, end: datetime, members: int) -> int:
        """Members Active at both ``start`` and ``end`` (changes strictly before each);
        ``members``: how many members the practice or set has (when to take again)."""
        if self._stale is None or len(self._stale) > max(self.STALE, members // 256):
            self._take()
        first = min(start, end)  # a member of one toggle is Active at both when before it
        total = bisect.bisect_left(self._once, first) - bisect.bisect_left(self._gone, first)
        return total + (self._cached(start) & self._cached(end)).bit_count()

    def _cached(self, at: datetime) -> int:
        """:meth:`_at`, kept for the next reads (up to four boundaries)."""
        found = self._cache.get(at)
        if found is None:
            if len(self._cache) >= 4:
                self._cache.clear()
            found = self._cache[at] = self._at(at)
        return found

    def _take(self) -> None:
        """Take the toggles and the snapshots again from the two timelines."""
        on_at, on_ids = self._became.columns()
        off = self._left.columns()
        stopped = set(off[1])  # with more than one toggle: those who stopped, and below
        lone = [i not in stopped for i in on_ids]
        single_ids = list(itertools.compress(on_ids, lone))
        singles = dict(zip(single_ids, itertools.compress(on_at, lone), strict=True))
        if len(singles) < len(single_ids):  # some became Active twice without stopping
            stopped.update(m for m, k in collections.Counter(single_ids).items() if k > 1)
            lone = [i not in stopped for i in on_ids]
            singles = {m: at for m, at in singles.items() if m not in stopped}
        several = list(map(operator.not_, lone))
        timelines = (
            (list(itertools.compress(on_at, several)), list(itertools.compress(on_ids, several))),
            off,
        )
        bits: dict[str, int] = {}
        flipped = [[bits.setdefault(member, len(bits)) for member in ids] for _, ids in timelines]
        every = max(self.EVERY, len(bits) // self.BITS)
        instants = tuple(ats for ats, _ in timelines)
        # A snapshot before every ``every``-th toggle of each timeline, or just after it
        # when it ties with the toggle before (so many toggles at one instant are not
        # all flipped again by every read after it).
        points = sorted(
            {
                ats[k] if ats[k] != ats[k - 1] else ats[k] + _TICK
                for ats in instants
                for k in range(every, len(ats), every)
            }
        )
        buf = bytearray((len(bits) + 7) // 8)
        sets, marks = [bytes(buf)], [(0,) * len(timelines)]
        done = [0] * len(timelines)
        for point in [*points, None]:
            for n, ats in enumerate(instants):
                stop = len(ats) if point is None else bisect.bisect_left(ats, point)
                for bit in flipped[n][done[n] : stop]:
                    buf[bit >> 3] ^= 1 << (bit & 7)
                done[n] = stop
            sets.append(bytes(buf))
            marks.append(tuple(done))
        self._bytes = tuple(array.array(_BYTE_INDEX, [b >> 3 for b in f]) for f in flipped)
        self._masks = tuple(array.array("B", [1 << (b & 7) for b in f]) for f in flipped)
        self._bits, self._instants, self._points = bits, instants, points
        self._singles, self._once, self._gone = singles, sorted(singles.values()), []
        self._sets, self._marks, self._stale = sets, marks, {}
        self._cache.clear()

    def _at(self, at: datetime) -> int:
        """The members Active at ``at``, one bit each."""
        bits, stale = self._bits, self._stale or {}
        # The snapshots on either side of ``at``: the toggles before ``at`` are at least
        # those before the first and at most those before the second.
        c = bisect.bisect_right(self._points, at)
        before, after = self._marks[c], self._marks[c + 1]
        here = [  # between the two snapshots' positions
            bisect.bisect_left(ats, at, lo, hi)
            for ats, lo, hi in zip(self._instants, before, after, strict=True)
        ]
        if sum(here) - sum(before) <= sum(after) - sum(here):
            buf, spans = bytearray(self._sets[c]), zip(before, here, strict=True)
        else:
            buf, spans = bytearray(self._sets[c + 1]), zip(here, after, strict=True)
        for (lo, hi), places, masks in zip(spans, self._bytes, self._masks, strict=True):
            for i, mask in zip(places[lo:hi], masks[lo:hi], strict=True):
                buf[i] ^= mask
        buf.extend(bytes((len(bits) + 7) // 8 - len(buf)))
        for member, mine in stale.items():  # as its toggles are now
            bit = bits[member]
            on = bisect.bisect_left(mine, at) & 1
            if bool(buf[bit >> 3] & 1 << (bit & 7)) != bool(on):
                buf[bit >> 3] ^= 1 << (bit & 7)
        return int.from_bytes(buf, "little")


#: A timeline entry's instant and id, as sort keys.
_entry_instant = operator.itemgetter(0)
_entry_id = operator.itemgetter(1)


def _by_instant(ats: list[_At]) -> bool:
    """Whether ``ats`` never goes back in time."""
    return all(map(operator.le, ats, itertools.islice(ats, 1, None)))


def _ties_by_id(ats: list[_At], ids: list[str], values: list[int]) -> tuple[list[str], list[int]]:
    """The ids and values of entries at the instants ``ats`` (in time order), the entries
    at one instant put in id order (new lists only when some are not)."""
    copied = False
    for lo, hi in _tied(ats):
        if ids[lo:hi] != sorted(ids[lo:hi]):
            if not copied:
                ids, values, copied = list(ids), list(values), True
            tied = sorted(range(lo, hi), key=ids.__getitem__)
            ids[lo:hi], values[lo:hi] = [ids[k] for k in tied], [values[k] for k in tied]
    return ids, values


def _tied(ats: Sequence[_At]) -> Iterator[tuple[int, int]]:
    """Each run ``[lo, hi)`` of two or more equal instants in the sorted ``ats``."""
    lo = hi = -1
    for k in itertools.compress(itertools.count(1), map(operator.eq, ats[1:], ats)):
        if k != hi:  # ats[k] == ats[k - 1] starts a new run
            if hi > lo:
                yield lo, hi
            lo = k - 1
        hi = k + 1
    if hi > lo:
        yield lo, hi


def _sorted_columns(
    ats: list[_At], ids: list[str], values: list[int]
) -> tuple[list[_At], list[str], list[int]]:
    """Parallel instants, ids and values sorted stably by (instant, id)."""
    order = sorted(range(len(ats)), key=ats.__getitem__)
    ats = [ats[k] for k in order]
    ids, values = _ties_by_id(ats, [ids[k] for k in order], [values[k] for k in order])
    return ats, ids, values


F = TypeVar("F", bound=Callable[..., Any])

#: How many local days past the day asked a member's Overdue outlook is read.
_OUTLOOK_MARGIN_DAYS = 62

_paused_lock = threading.Lock()
_paused = 0  # loads and bulk reads under way with the collector paused
_collecting = False  # whether the collector ran before the first of them


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused, and restored when the last paused load
    or bulk read ends (they may overlap in several stores).

    A load, or a read of every member's Overdue outlook, allocates no reference cycles,
    but its many objects trigger full collections, each one a pass over every object of
    the process: a third of a large load's time, 29 % of the first Overdue query at
    100,000 members.
    """
    global _paused, _collecting
    with _paused_lock:
        if _paused == 0:
            _collecting = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _paused_lock:
            _paused -= 1
            if _paused == 0 and _collecting:
                gc.enable()


def _end_pauses_in_child() -> None:
    """In a process forked while another thread's pause ran: that thread is not in the
    child, so its pause ends here (the collector as it was before it, a new lock)."""
    global _paused, _paused_lock
    _paused_lock = threading.Lock()  # the parent's may have been held at the fork
    if _paused:
        _paused = 0
        if _collecting:
            gc.enable()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_end_pauses_in_child)


#: The Overdue filter's form that one practice's :class:`_OverdueDays` answers.
_OVERDUE_FORM = frozenset({"overdue", "as_of", "grace_days"})
#: A day ordinal past every date: a member whose outlook holds no unpaid charge.
_NEVER = date.max.toordinal() + 1


def _first_late(outlook: OverdueOutlook, grace: int) -> int:
    """The ordinal of the first local day ``outlook``'s member is overdue with ``grace``
    days (:meth:`OverdueOutlook.overdue_on`: the earliest ``max(due, first + grace)``)."""
    return min(
        (max(due.toordinal(), first.toordinal() + grace) for due, first in outlook.dues),
        default=_NEVER,
    )


class _OverdueDays:
    """One practice's members by id with their Overdue outlooks, and per grace asked the
    ordinal of the first local day each is overdue: the Overdue filter at any instant
    past every outlook's ``since`` and day up to every outlook's ``through`` is one pass
    over ints, in id order. A write to a member marks it ``stale``: its outlook is read
    again and its entries patched before the next answer."""

    __slots__ = ("first_days", "members", "outlooks", "position", "since", "stale", "through")

    def __init__(self, members: list[Member], outlooks: list[OverdueOutlook]) -> None:
        self.members = members
        self.outlooks = outlooks
        self.position = {m.id: k for k, m in enumerate(members)}
        self.since = max((o.since for o in outlooks), default=None)
        self.through = min((o.through for o in outlooks if o.through is not None), default=None)
        self.first_days: dict[int, list[int]] = {}
        self.stale: set[str] = set()

    def answers(self, at: datetime, day: date) -> bool:
        """Whether every outlook answers at ``at``, on local day ``day``."""
        return (self.since is None or at >= self.since) and (
            self.through is None or day <= self.through
        )

    def patch(self, m: Member, outlook: OverdueOutlook) -> None:
        """``m`` (already a member here) now reads ``outlook``."""
        k = self.position[m.id]
        self.members[k], self.outlooks[k] = m, outlook
        # Bounds only tighten: a write never makes the index answer an instant it did not.
        self.since = outlook.since if self.since is None else max(self.since, outlook.since)
        if outlook.through is not None:
            self.through = min(self.through or outlook.through, outlook.through)
        for grace, days in self.first_days.items():
            days[k] = _first_late(outlook, grace)

    def members_on(self, day: date, grace: int, overdue: bool) -> list[Member]:
        """The members overdue (or not) on local ``day`` with ``grace`` days, by id."""
        days = self.first_days.get(grace)
        if days is None:
            days = self.first_days[grace] = [_first_late(o, grace) for o in self.outlooks]
        today = day.toordinal()
        return list(
            itertools.compress(self.members, map(today.__ge__ if overdue else today.__lt__, days))
        )


def _locked(method: F) -> F:
    """Run a repository method while holding its store's lock (see :class:`InMemoryStore`)."""

    @functools.wraps(method)
    def run(self: _Repository[Any, Any], *args: Any, **kwargs: Any) -> Any:
        with self._store._lock:
            return method(self, *args, **kwargs)

    return cast(F, run)


class _Repository(Generic[T, Q]):
    """Objects by id and by practice; subclasses add indexes and checks."""

    kind: ClassVar[type]
    query_type: ClassVar[type] = ScopeQuery
    #: The attributes holding its timelines (per practice or plan), settled after a load.
    _TIMELINES: ClassVar[tuple[str, ...]] = ()

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self._items: dict[str, T] = {}
        self._versions: dict[str, int] = {}
        self._by_practice: defaultdict[str, set[str]] = defaultdict(set)

    @_locked
    def __len__(self) -> int:
        return len(self._items)

    @_locked
    def __iter__(self) -> Iterator[T]:
        return iter(list(self._items.values()))  # a snapshot: writers may go on

    def get(self, id: str) -> T:
        """The object with ``id``; raises :class:`NotFound`."""
        with self._store._lock:  # inline, not @_locked: the hottest read
            try:
                return self._items[id]
            except (KeyError, TypeError):
                raise NotFound(self.kind.__name__, id) from None

    @_locked
    def add(self, obj: T) -> None:
        """Keep a new object; raises :class:`DuplicateId` if the id is taken."""
        self._check_type(obj)
        if _id(obj) in self._items:
            raise DuplicateId(self.kind.__name__, _id(obj))
        self._check(obj)
        self._insert(obj)
        self._versions[_id(obj)] = 1

    @_locked
    def version(self, id: str) -> int:
        """How many writes the object with ``id`` has had: 1 after :meth:`add`, one more
        per :meth:`save`; raises :class:`NotFound`."""
        self.get(id)
        return self._versions[id]

    @_locked
    def save(self, obj: T, *, expected_version: int | None = None) -> None:
        """Replace the object with the same id and add one to its :meth:`version`.

        Pass ``expected_version``, the version read with the object, and a save after
        another write (of any field) fails instead of overwriting it.

        Raises:
            NotFound: no object with that id.
            VersionConflict: ``expected_version`` is not the kept version.
            InvalidValue: ``expected_version`` is not a whole number >= 1.
            RuleViolation: ``practice_change`` when ``obj`` belongs to another practice
                than the kept object; ``stale_history`` when its status history does not
                extend the kept one (a copy read before another write was saved, or a
                rewritten history): reload, apply the change again, save.
        """
        self._check_type(obj)
        old = self.get(_id(obj))
        current = self._versions[_id(obj)]
        if expected_version is not None:
            check_version(self.kind.__name__, _id(obj), expected_version, current)
        check_successor(old, obj)
        self._check(obj)
        self._check_save(old, obj)
        self._discard(old)
        try:
            self._insert(obj)
        except BaseException:
            self._discard(obj, missing_ok=True)
            self._insert(old)
            raise
        self._versions[_id(obj)] = current + 1

    @_locked
    def find(self, query: Q, *, order: Order | None = None) -> ReadOnlyList[T]:
        """Matching objects, sorted and paged by ``order`` (a read-only sequence)."""
        self._check_query(query)
        check_order(self.kind, order)
        return ReadOnlyList(apply_order(self._matching(query), self.kind, order))  # type: ignore[type-var]

    @_locked
    def count(self, query: Q) -> int:
        """Number of matching objects."""
        self._check_query(query)
        return sum(1 for _ in self._matching(query))

    # -- internals ----------------------------------------------------------------

    def _check_type(self, obj: Any) -> None:
        if not isinstance(obj, self.kind):
            raise InvalidValue("obj", obj, f"must be a {self.kind.__name__}")

    def _check_query(self, query: Any) -> None:
        if not isinstance(query, self.query_type):
            raise InvalidValue("query", query, f"must be a {self.query_type.__name__}")

    def _check(self, obj: T) -> None:
        """Raise unless ``obj`` may be kept (referential checks)."""

    def _check_save(self, old: T, new: T) -> None:
        """Raise unless ``new`` may replace ``old`` (rules about what is kept elsewhere)."""

    def _practice_of(self, obj: T) -> str:
        return str(obj.practice_id)  # type: ignore[attr-defined]

    def _insert(self, obj: T) -> None:
        self._items[_id(obj)] = obj
        self._by_practice[self._practice_of(obj)].add(_id(obj))
        self._index(obj)

    def _discard(self, obj: T, *, missing_ok: bool = False) -> None:
        if missing_ok and self._items.get(_id(obj)) is not obj:
            return
        del self._items[_id(obj)]
        self._by_practice[self._practice_of(obj)].discard(_id(obj))
        self._unindex(obj)

    def _index(self, obj: T) -> None:
        """Add ``obj`` to the subclass's indexes."""

    def _unindex(self, obj: T) -> None:
        """Remove ``obj`` from the subclass's indexes."""

    def _practices(self, practices: frozenset[str] | None) -> Collection[str]:
        return self._by_practice.keys() if practices is None else practices

    def _candidates(self, practices: frozenset[str] | None, ids: frozenset[str] | None) -> list[T]:
        if ids is not None:
            found = (self._items.get(i) for i in ids)
            return [o for o in found if o is not None]
        pools = (self._by_practice.get(p, ()) for p in self._practices(practices))
        return [self._items[i] for pool in pools for i in pool]

    def _matching(self, query: Q) -> Iterator[T]:
        return (o for o in self._candidates(query.practices, query.ids) if query.matches(o))  # type: ignore[attr-defined]

    def _practice(self, obj: T) -> Practice:
        """The practice ``obj`` belongs to; raises :class:`NotFound` naming ``practice_id``."""
        practice_id = self._practice_of(obj)
        practice = self._store.practices._items.get(practice_id)
        if practice is None:
            raise NotFound("Practice", practice_id, field="practice_id")
        return practice

    def _require(
        self, repo: _Repository[Any, Any], id: str | None, practice_id: str, field: str
    ) -> None:
        """Raise unless ``id`` (when given) exists in ``repo`` within ``practice_id``."""
        if id is None:
            return
        obj = repo._items.get(id)
        if obj is None:
            raise NotFound(repo.kind.__name__, id, field=field)
        if repo._practice_of(obj) != practice_id:
            raise InvalidValue(
                field, id, f"belongs to practice {repo._practice_of(obj)}, not {practice_id}"
            )


def _id(obj: Any) -> str:
    return str(obj.id)


_since_of = operator.attrgetter("since")


def _before(
    signed: Iterable[tuple[int, Timelines[datetime]]],
    scope: Collection[str],
    instants: Iterable[datetime],
    read: Callable[[Timeline[datetime], Iterable[datetime]], dict[datetime, int]],
) -> dict[datetime, int]:
    """By distinct instant of ``instants``: the sum over each ``(sign, index)`` of
    ``signed`` and each of its timelines over ``scope`` of ``sign`` times what ``read``
    (:meth:`Timeline.counts_before` or :meth:`Timeline.totals_before`) answers there."""
    found = dict.fromkeys(instants, 0)
    for sign, index in signed:
        for timeline in index.over(scope):
            for instant, n in read(timeline, found.keys()).items():
                found[instant] += sign * n
    return found


def _ids_of(practices: frozenset[str] | None) -> frozenset[str] | None:
    """``practices`` checked like a query's id set."""
    return id_set(practices, "practices")


class _Practices(_Repository[Practice, ScopeQuery]):
    kind = Practice

    def __init__(self, store: InMemoryStore) -> None:
        super().__init__(store)
        #: :func:`_by_currency` of the sets of practices read last, until a practice is
        #: written.
        self._currency_groups: Memo[frozenset[str], tuple[tuple[str, Collection[str]], ...]] = Memo(
            _CURRENCY_GROUPS_KEPT
        )

    def _practice_of(self, obj: Practice) -> str:
        return obj.id

    def _check(self, obj: Practice) -> None:
        """Refuse a new currency for a practice that already holds amounts, and a new time
        zone in which a kept plan is no longer an offer of its template or a recorded
        membership charge is no longer of an amount allowed."""
        old = self._items.get(obj.id)
        store = self._store
        if old is not None and old.timezone != obj.timezone:
            plans = store.payment_plans
            check_offers(
                (plans._items[i] for i in plans._by_practice.get(obj.id, ())),
                store.payment_plan_templates._items,
                timezone=obj.timezone,
                members=store.members._items,
                change=f"practice {obj.id}'s time zone {obj.timezone}",
                field="timezone",
            )
            ledger, members = store.payments, store.members
            mine = [members._items[i] for i in members._by_practice.get(obj.id, ())]
            check_timezone_kept(
                obj,
                mine,
                (
                    ledger._items[i]
                    for m in mine
                    for i in ledger._by_source.get(("member", m.id), ())
                ),
                plans=store.membership_plans._items,
            )
        if old is None or old.currency == obj.currency:
            return
        campaigns = store.campaigns
        fixed = any(  # a campaign's fixed discount is an amount in the currency too
            (d := campaigns._items[i].discount) is not None and d.amount is not None
            for i in campaigns._by_practice.get(obj.id, ())
        )
        repos = (
            store.payments,
            store.payment_plans,
            store.membership_plans,
            store.payment_plan_templates,
            campaigns,
        )
        for repo in repos:
            if repo._by_practice.get(obj.id) and (repo is not campaigns or fixed):
                raise RuleViolation(
                    "currency_in_use",
                    f"practice {obj.id} holds {repo.kind.__name__} amounts in {old.currency}:"
                    f" its currency cannot become {obj.currency}",
                    field="currency",
                    practice_id=obj.id,
                    currency=old.currency,
                )

    def _index(self, obj: Practice) -> None:
        self._store.members._forget_practice(obj.id)  # its time zone sets every local day
        self._currency_groups.clear()  # its currency may be new

    def _unindex(self, obj: Practice) -> None:
        self._store.members._forget_practice(obj.id)
        self._currency_groups.clear()


class _ScopedRepository(_Repository[T, ScopeQuery]):
    """Staff users, membership plans, campaigns, templates: their practice must exist."""

    def _check(self, obj: T) -> None:
        self._practice(obj)


class _StaffUsers(_ScopedRepository[StaffUser]):
    kind = StaffUser


class _Campaigns(_ScopedRepository[Campaign]):
    kind = Campaign

    def _check(self, obj: Campaign) -> None:
        """Also its discount in the practice's currency; on a save that changes the
        history, every member and referral that joined through the campaign still joined
        it while Active; on one that changes the plans, every member joined on a plan it
        applies to."""
        check_discount_currency([obj.discount], self._practice(obj).currency)
        old = self._items.get(obj.id)
        if old is None or (old.history, old.codes) != (obj.history, obj.codes):
            siblings = (self._items[i] for i in self._by_practice.get(obj.practice_id, ()))
            check_codes(obj, siblings, kept=old)
        if old is None or (old.history, old.plans) == (obj.history, obj.plans):
            return
        store = self._store
        joiners = {
            kind: [
                joiner
                for i in repo._by_practice.get(obj.practice_id, ())
                if (joiner := repo._items[i]).campaign_id == obj.id
            ]
            for kind, repo in (("member", store.members), ("referral", store.referrals))
        }
        check_joiners(
            obj, ((f"{kind} {j.id}", j.created_at) for kind, js in joiners.items() for j in js)
        )
        check_members_plans(obj, (m for m in joiners["member"] if isinstance(m, Member)))


class _PaymentPlanTemplates(_ScopedRepository[PaymentPlanTemplate]):
    kind = PaymentPlanTemplate

    def _check(self, obj: PaymentPlanTemplate) -> None:
        _same_currency(self._practice(obj), obj.min_total, "min_total")

    def _check_save(self, old: PaymentPlanTemplate, new: PaymentPlanTemplate) -> None:
        """Terms fixed once a kept plan was offered from it."""
        plans = self._store.payment_plans
        offers = (plans._items[i].created_at for i in plans._by_template.get(new.id, ()))
        check_template_change(old, new, offers)


class _MembershipPlans(_ScopedRepository[MembershipPlan]):
    kind = MembershipPlan

    def _check(self, obj: MembershipPlan) -> None:
        _same_currency(self._practice(obj), obj.price, "price")

    def _check_save(self, old: MembershipPlan, new: MembershipPlan) -> None:
        if (old.price, old.earlier_prices, old.billing_cycle) == (
            new.price,
            new.earlier_prices,
            new.billing_cycle,
        ):
            return
        store = self._store
        mine = store.members._by_practice.get(new.practice_id, ())
        members = [store.members._items[i] for i in mine]
        ledger = store.payments
        check_reprice(
            old,
            new,
            members,
            (
                ledger._items[i]
                for m in members
                for i in ledger._by_source.get(("member", m.id), ())
            ),
            timezone=self._practice(new).timezone,
            plans=self._items,
        )

    def _index(self, obj: MembershipPlan) -> None:
        super()._index(obj)
        self._store.members._forget_practice(obj.practice_id)  # prices and billing dates

    def _unindex(self, obj: MembershipPlan) -> None:
        super()._unindex(obj)
        self._store.members._forget_practice(obj.practice_id)


def _same_currency(practice: Practice, amount: Money, field: str) -> None:
    if amount.currency != practice.currency:
        raise CurrencyMismatch(amount.currency, practice.currency, f"keep {field} of", field=field)


class _Members(_Repository[Member, MemberQuery]):
    kind = Member
    query_type = MemberQuery
    _TIMELINES = ("_became", "_left", "_first", "_changes", "_replans", "_counting")

    def __init__(self, store: InMemoryStore) -> None:
        super().__init__(store)
        self._became: Timelines[datetime] = Timelines()
        self._left: Timelines[datetime] = Timelines()
        self._first: Timelines[datetime] = Timelines()
        self._changes: Timelines[datetime] = Timelines()
        self._replans: Timelines[datetime] = Timelines()
        # By plan id: +1 where a counting span on the plan starts, -1 where it ends.
        self._counting: defaultdict[str, Timeline[datetime]] = defaultdict(Timeline)
        # By practice id and current status: the members' ids (a status filter's
        # candidates).
        # By practice and current status: the members by (start date, id).
        self._by_status: defaultdict[tuple[str, MembershipStatus], Timeline[date]] = defaultdict(
            Timeline
        )
        # The same members as objects, in that order, once read (until a write to them).
        self._status_lists: dict[tuple[str, MembershipStatus], list[Member]] = {}
        # By practice id, once a retained count was asked: who was Active when.
        self._active_sets: dict[str, ActiveSets] = {}
        # The same over a set of practices whose timelines are merged (most recent last).
        self._scope_sets: dict[frozenset[str], ActiveSets] = {}
        # By member id: the Overdue outlook, read on the first Overdue query after the
        # member's last event, and again when a query goes past its last day; a write to
        # the member, their ledger, their plans, their practice or its membership plans
        # drops it.
        self._outlooks: dict[str, OverdueOutlook] = {}
        # By member id, the same for instants before their last event, read as they
        # stood then (overdue_outlook_at), by ``since``; the same writes drop them.
        self._past: dict[str, list[OverdueOutlook]] = {}
        # By member id, their last event once read (the same writes drop it).
        self._sinces: dict[str, datetime] = {}
        # By practice id, once an Overdue filter read every member's outlook: the members
        # by id and when each is overdue (a write marks the member stale there).
        self._overdue_days: dict[str, _OverdueDays] = {}

    def _check(self, obj: Member) -> None:
        store = self._store
        check_grant_currency(obj.discounts, self._practice(obj).currency)
        self._require(store.membership_plans, obj.plan_id, obj.practice_id, "plan_id")
        for change in obj.plan_changes:  # every plan the member was on, in its practice
            self._require(store.membership_plans, change.from_plan, obj.practice_id, "plan_changes")
        self._require(store.campaigns, obj.campaign_id, obj.practice_id, "campaign_id")
        self._require(store.staff_users, obj.staff_user_id, obj.practice_id, "staff_user_id")
        if obj.campaign_id is not None:  # joined at enrolment, while the campaign was Active
            campaign = store.campaigns._items[obj.campaign_id]
            campaign.check_sign_up(obj.created_at, subject=f"member {obj.id}")
            campaign.check_plan(obj.first_plan_id, subject=f"member {obj.id}")
        ledger = store.payments
        recorded = ledger._by_source.get(("member", obj.id), ())
        check_cancel_after_charges(obj, (ledger._items[i] for i in recorded))

    def _check_save(self, old: Member, new: Member) -> None:
        """Also, when the history or the account holder changed, the member's plans
        offered from a template are still its offers."""
        store = self._store
        ledger = store.payments
        timezone = self._practice(new).timezone
        check_member_repriced(
            old,
            new,
            [ledger._items[i] for i in ledger._by_source.get(("member", new.id), ())],
            timezone=timezone,
            plans=store.membership_plans._items,
        )
        moved = member_change(old, new)
        if moved is not None:
            check_offers(
                store.payment_plans.of_member(new.id),
                store.payment_plan_templates._items,
                timezone=timezone,
                members={new.id: new},
                change=moved[0],
                field=moved[1],
            )

    def _entries(self, m: Member) -> Iterator[tuple[Timelines[datetime], datetime]]:
        for change in m.history:
            yield self._changes, change.at
            if change.to is _ACTIVE and change.from_ is not _ACTIVE:
                yield self._became, change.at
            if change.from_ is _ACTIVE and change.to is not _ACTIVE:
                yield self._left, change.at
        if m.first_activated_at is not None:
            yield self._first, m.first_activated_at

    def _forget(self, member_id: str | None, practice_id: str | None = None) -> None:
        """Drop ``member_id``'s Overdue outlook (a write changed what it reads) and mark
        it stale in its practice's :class:`_OverdueDays`."""
        if member_id is None:
            return
        self._drop_outlooks(member_id)
        if practice_id is None:
            m = self._items.get(member_id)
            practice_id = None if m is None else m.practice_id
        days = None if practice_id is None else self._overdue_days.get(practice_id)
        if days is not None:
            days.stale.add(member_id)

    def _forget_practice(self, practice_id: str) -> None:
        """Drop the Overdue outlooks of ``practice_id``'s members (its time zone or a
        membership plan changed)."""
        self._overdue_days.pop(practice_id, None)
        for member_id in self._by_practice.get(practice_id, ()):
            self._drop_outlooks(member_id)

    def _drop_outlooks(self, member_id: str) -> None:
        """Drop what is kept of ``member_id``'s outlooks: the current one, those as they
        stood at past instants, and their last event."""
        self._outlooks.pop(member_id, None)
        self._past.pop(member_id, None)
        self._sinces.pop(member_id, None)

    def _index(self, m: Member) -> None:
        self._forget(m.id, m.practice_id)
        sets = self._sets_of(m.practice_id)
        toggles = []  # kept only for the ActiveSets holding the practice, once there are
        for index, at in self._entries(m):
            index.add(m.practice_id, at, m.id)
            if sets and (index is self._became or index is self._left):
                toggles.append(at)
        self._by_status[m.practice_id, m.status].add(m.start_date, m.id, 0)
        self._status_lists.pop((m.practice_id, m.status), None)
        for each in sets:
            each.touch(m.id, tuple(toggles))  # became first: Active after an odd number
        for change in m.plan_changes:
            self._replans.add(m.practice_id, change.at, m.id)
        for span in m.counting_spans():
            self._counting[span.plan_id].add(span.start, m.id)
            if span.end is not None:
                self._counting[span.plan_id].add(span.end, m.id, -1)

    def _unindex(self, m: Member) -> None:
        self._forget(m.id, m.practice_id)
        self._by_status[m.practice_id, m.status].remove(m.start_date, m.id)
        self._status_lists.pop((m.practice_id, m.status), None)
        for sets in self._sets_of(m.practice_id):
            sets.touch(m.id, ())
        for index, at in self._entries(m):
            index.remove(m.practice_id, at, m.id)
        for change in m.plan_changes:
            self._replans.remove(m.practice_id, change.at, m.id)
        for span in m.counting_spans():
            self._counting[span.plan_id].remove(span.start, m.id)
            if span.end is not None:
                self._counting[span.plan_id].remove(span.end, m.id)

    def _counting_at(self, query: MemberQuery) -> int:
        """Members counting toward recurring revenue at a boundary, from the plans' spans."""
        assert query.counting_at is not None
        plans = self._store.membership_plans
        ids: Iterable[str] = (
            query.counting_plans
            if query.counting_plans is not None
            else [i for p in plans._practices(query.practices) for i in plans._by_practice[p]]
        )
        total = 0
        for plan_id in ids:
            timeline, plan = self._counting.get(plan_id), plans._items.get(plan_id)
            in_scope = (
                query.practices is None or plan is None or plan.practice_id in query.practices
            )
            if timeline is not None and plan is not None and in_scope:
                total += timeline.total(end=query.counting_at)
        return total

    def _changed_in(self, query: MemberQuery) -> list[Member]:
        """Members with a status or plan change stamped inside ``query.changed_in``."""
        span = query.changed_in
        assert span is not None
        ids = {
            i
            for p in self._practices(query.practices)
            for index in (self._changes, self._replans)
            if (timeline := index.get(p)) is not None
            for i in timeline.columns(span.start, span.end)[1]
        }
        return [self._items[i] for i in ids]

    @_locked
    def active_at(self, practice_id: str, boundary: datetime) -> int:
        """Members of ``practice_id`` Active at ``boundary`` (changes strictly before it)."""
        return self._active(frozenset({practice_id}), boundary)

    def _active(self, practices: Collection[str], boundary: datetime) -> int:
        """Members of ``practices`` Active at ``boundary`` (changes strictly before it)."""
        became = sum(t.count(end=boundary) for t in self._became.over(practices))
        return became - sum(t.count(end=boundary) for t in self._left.over(practices))

    def _retained(self, practices: Collection[str], start: datetime, end: datetime) -> int:
        """Members of ``practices`` Active at both ``start`` and ``end``."""
        return self._retained_counter(practices)(start, end)

    def _retained_counter(self, practices: Collection[str]) -> Callable[[datetime, datetime], int]:
        """How many members of ``practices`` are Active at both of two instants: from one
        :class:`ActiveSets` over their timelines when those are merged, else one per
        practice. Call it, and what it returns, under the store's lock, before any write."""
        scope = practices if isinstance(practices, frozenset) else frozenset(practices)
        became, left = self._became.over(scope), self._left.over(scope)
        counted = [p for p in scope if p in self._by_practice]
        merged = [self._became.merged_over(scope), self._left.merged_over(scope)]
        if len(became) != 1 or len(left) != 1 or merged == [None, None]:
            return lambda start, end: sum(self._retained_in(p, start, end) for p in counted)
        # One timeline each: merged, or the one practice of the set with such entries.
        sets = self._scope_sets.pop(scope, None)
        if sets is None or not sets.over(became[0], left[0]):
            sets = ActiveSets(became[0], left[0])
            if len(self._scope_sets) >= Timelines.KEPT:
                del self._scope_sets[next(iter(self._scope_sets))]
        self._scope_sets[scope] = sets  # now the most recently read
        members = sum(len(self._by_practice[p]) for p in counted)
        return lambda start, end: sets.retained(start, end, members)

    def _sets_of(self, practice_id: str) -> list[ActiveSets]:
        """The :class:`ActiveSets` a write to a member of ``practice_id`` must touch: the
        practice's own and those of the sets of practices holding it. Sets over merged
        timelines since dropped (no longer written to) are dropped here."""
        live = {
            scope: sets
            for scope, sets in self._scope_sets.items()
            if sets.takes_from(self._became.merged_over(scope))
            or sets.takes_from(self._left.merged_over(scope))
        }
        if len(live) < len(self._scope_sets):
            self._scope_sets = live
        own = self._active_sets.get(practice_id)
        held = [sets for scope, sets in live.items() if practice_id in scope]
        return held if own is None else [own, *held]

    def _retained_in(self, practice_id: str, start: datetime, end: datetime) -> int:
        """Members of ``practice_id`` (which has members) Active at both ``start`` and
        ``end``."""
        sets = self._active_sets.get(practice_id)
        if sets is None:
            became, left = self._became.of(practice_id), self._left.of(practice_id)
            sets = self._active_sets[practice_id] = ActiveSets(became, left)
        return sets.retained(start, end, len(self._by_practice[practice_id]))

    @_locked
    def count(self, query: MemberQuery) -> int:
        """Number of matching members; the KPI forms are answered from the timelines."""
        self._check_query(query)
        form = query.form()
        practices = self._practices(query.practices)
        a, b = query.active_at, query.retained_until
        if a is not None and form == _ACTIVE_FORM:
            return self._active(practices, a)
        if a is not None and b is not None and b >= a and form == _RETAINED_FORM:
            return self._retained(practices, a, b)
        e = query.ever_active_before
        if e is not None and form == _EVER_FORM:
            return sum(t.count(end=e) for t in self._first.over(practices))
        r = query.first_activated_in
        if r is not None and form == _FIRST_FORM:
            return sum(t.count(r.start, r.end) for t in self._first.over(practices))
        if query.counting_at is not None and form <= _COUNTING_FORM:
            return self._counting_at(query)
        if form == _CHANGED_FORM:
            return len(self._changed_in(query))
        return super().count(query)

    @_locked
    def first_activated_counts(
        self, *, practices: frozenset[str] | None, edges: Sequence[datetime]
    ) -> list[int]:
        """Members of ``practices`` (every practice for ``None``) who first became Active
        between each two consecutive ``edges``: the New Members series in one pass, equal
        to one ``count(MemberQuery(practices=..., first_activated_in=[e_i, e_i+1)))`` per
        pair.

        Raises:
            InvalidValue: an edge is naive, or the edges go back in time.
        """
        points = series_edges(edges)
        totals = [0] * max(0, len(points) - 1)
        for timeline in self._first.over(self._practices(_ids_of(practices))):
            totals = [a + b for a, b in zip(totals, timeline.counts(points), strict=True)]
        return totals

    @_locked
    def active_counts(
        self, *, practices: frozenset[str] | None, at: Sequence[datetime]
    ) -> list[int]:
        """Members of ``practices`` (every practice for ``None``) Active at each instant of
        ``at``, in its order: equal to one ``count(MemberQuery(practices=...,
        active_at=a))`` per instant.

        Raises:
            NaiveDatetime: an instant without a time zone.
            InvalidValue: ``practices`` not an id set (naming it); a value that is no instant.
        """
        instants = read_instants(at, "at")
        scope = self._practices(_ids_of(practices))
        signed = ((1, self._became), (-1, self._left))
        active = _before(signed, scope, instants, Timeline.counts_before)
        return [active[a] for a in instants]

    @_locked
    def ever_active_counts(
        self, *, practices: frozenset[str] | None, before: Sequence[datetime]
    ) -> list[int]:
        """Members of ``practices`` (every practice for ``None``) who first became Active
        strictly before each instant of ``before``: equal to one
        ``count(MemberQuery(practices=..., ever_active_before=b))`` per instant.

        Raises:
            NaiveDatetime: an instant without a time zone.
            InvalidValue: ``practices`` not an id set (naming it); a value that is no instant.
        """
        instants = read_instants(before, "before")
        scope = self._practices(_ids_of(practices))
        ever = _before(((1, self._first),), scope, instants, Timeline.counts_before)
        return [ever[b] for b in instants]

    @_locked
    def retained_counts(
        self, *, practices: frozenset[str] | None, spans: Sequence[tuple[datetime, datetime]]
    ) -> list[int]:
        """Members of ``practices`` (every practice for ``None``) Active at both instants
        of each ``(a, b)`` of ``spans``: equal to one ``count(MemberQuery(practices=...,
        active_at=a, retained_until=b))`` per pair.

        Raises:
            NaiveDatetime: an instant without a time zone.
            InvalidValue: ``practices`` not an id set (naming it); a value that is not
                a pair of instants.
        """
        pairs = read_spans(spans, "spans")
        scope = self._practices(_ids_of(practices))
        if not pairs:
            return []
        retained = self._retained_counter(scope)
        return [retained(min(a, b), max(a, b)) for a, b in pairs]

    @_locked
    def find(self, query: MemberQuery, *, order: Order | None = None) -> ReadOnlyList[Member]:
        """Matching members (a read-only sequence); one practice's members of one status
        by start date are the kept list itself, the latest-activated feed is read from
        the timeline."""
        self._check_query(query)
        check_order(Member, order)
        form = query.form()
        keys = [(k.column, k.descending) for k in order.keys] if order is not None else []
        if form == _STATUSES_FORM and keys == [("start_date", False)]:
            # The index's own order: start date, ties by id.
            assert order is not None
            found, start = self._by_start(query), order.page.offset
            stop = len(found) if order.page.limit is None else start + order.page.limit
            if start == 0 and stop >= len(found):
                return ReadOnlyList(found)  # the kept list itself, not copied
            return ReadOnlyList(found[start:stop])  # a page: no hold on the whole list
        if form == _CHANGED_FORM:
            return ReadOnlyList(apply_order(self._changed_in(query), Member, order))
        if (
            form == _EVER_FORM
            and keys == [("first_activated_at", True)]
            and order is not None
            and order.page.limit is not None
        ):
            # Each member is once in the timeline, at its first activation: the entries'
            # own instants order them (latest first, ties by id), as apply_order would.
            assert query.ever_active_before is not None
            start = order.page.offset
            latest = [
                entry
                for timeline in self._first.over(self._practices(query.practices))
                for entry in timeline.latest(query.ever_active_before, start + order.page.limit)
            ]
            latest.sort(key=_entry_id)
            latest.sort(key=_entry_instant, reverse=True)
            return ReadOnlyList(
                [self._items[i] for _, i in latest[start : start + order.page.limit]]
            )
        return super().find(query, order=order)

    def _of_statuses(self, query: MemberQuery) -> Sequence[Member]:
        """The candidates of ``query`` (read, never changed): those of its current
        ``statuses`` when it names some (and no ``ids``), from the index; else those of
        its practices or ids."""
        if query.statuses is None or query.ids is not None:
            return self._candidates(query.practices, query.ids)
        return self._by_start(query)

    def _by_start(self, query: MemberQuery) -> list[Member]:
        """The members of ``query``'s practices and current ``statuses``, by start date,
        ties by id (not to be changed: one practice and status gives the kept list)."""
        assert query.statuses is not None
        if query.practices is not None and len(query.practices) == len(query.statuses) == 1:
            (practice,), (status,) = query.practices, query.statuses
            kept = self._status_lists.get((practice, status))
            if kept is not None:
                return kept
        keys = [
            key
            for p in self._practices(query.practices)
            for status in query.statuses
            if (timeline := self._by_status.get(key := (p, status))) is not None and len(timeline)
        ]
        if len(keys) == 1:
            return self._listed(keys[0])
        merged = heapq.merge(*(self._by_status[key].between() for key in keys))
        return [self._items[i] for _, i in merged]

    def _listed(self, key: tuple[str, MembershipStatus]) -> list[Member]:
        """The members of one practice and status in the index's order, kept until a
        write to them (the objects themselves: a read copies pointers)."""
        found = self._status_lists.get(key)
        if found is None:
            ids = self._by_status[key].columns()[1]
            found = self._status_lists[key] = [self._items[i] for i in ids]
        return found

    def _matching(self, query: MemberQuery) -> Iterator[Member]:
        if query.statuses is not None and query.form() == _STATUSES_FORM:
            yield from self._of_statuses(query)  # the index holds exactly these
            return
        if query.overdue is None:
            for m in self._of_statuses(query):
                if query.matches(m):
                    yield m
            return
        at, grace = query.as_of, query.grace_days
        assert at is not None
        if query.form() <= _OVERDUE_FORM:
            found = self._overdue_members(query.practices, at, grace, query.overdue)
            if found is not None:
                yield from found
                return
        rest = attrs.evolve(query, overdue=None, as_of=None, grace_days=0)
        days: dict[str, tuple[str, date]] = {}  # practice id -> its zone, at's local day there
        matched: list[Member] = []
        with _collector_paused():  # an outlook read per member: many objects, no cycle
            for m in self._of_statuses(query):
                if not rest.matches(m):
                    continue
                if m.practice_id not in days:
                    zone = self._store.practices.get(m.practice_id).timezone
                    days[m.practice_id] = (zone, local_day(at, zone))
                zone, day = days[m.practice_id]
                if self._overdue(m, at, day, zone, grace) is query.overdue:
                    matched.append(m)
        yield from matched

    @_locked
    def unpaid_charges(
        self, *, practice_id: str, at: datetime
    ) -> list[tuple[Member, tuple[DueCharge, ...]]] | None:
        """:class:`~smilepass_core.repositories.UnpaidChargesReader`: from the members'
        Overdue outlooks (each holds its membership's unpaid charges), read as each member
        stood at ``at`` when that is before their last event; ``None`` only past what an
        outlook reads (the end of 2200).

        Raises:
            NotFound: an unknown practice.
            NaiveDatetime: ``at`` has no time zone.
        """
        when = as_instant(at)
        zone = self._store.practices.get(practice_id).timezone
        if not self._by_practice.get(practice_id):
            return []
        day = local_day(when, zone)
        days = self._overdue_days_of(practice_id, when, day, zone)
        read: Iterable[tuple[Member, OverdueOutlook | None]]
        if days is not None:
            read = zip(days.members, days.outlooks, strict=True)
        else:  # before a member's last event: each member as they stood at ``when``
            members = sorted((self._items[i] for i in self._by_practice[practice_id]), key=_id)
            read = ((m, self._outlook_then(m, when, day, zone)) for m in members)
        found = []
        with _collector_paused():  # as many outlooks read as members: no cycle among them
            for m, outlook in read:
                if outlook is not None and outlook.charges:  # None: not yet a member
                    charges = outlook.unpaid_on(day)
                    if charges is None:  # past its last day read: only at 2200's end
                        return None
                    if charges:
                        found.append((m, charges))
        return found

    def _overdue_members(
        self, practices: frozenset[str] | None, at: datetime, grace: int, overdue: bool
    ) -> list[Member] | None:
        """The members of ``practices`` overdue (or not) at ``at`` with ``grace`` days, by
        id, from each practice's :class:`_OverdueDays`; ``None`` when one cannot answer (an
        ``at`` before a member's last event)."""
        found: list[Member] = []
        keys = [p for p in self._practices(practices) if self._by_practice.get(p)]
        for practice_id in keys:
            zone = self._store.practices.get(practice_id).timezone
            day = local_day(at, zone)
            days = self._overdue_days_of(practice_id, at, day, zone)
            if days is None:
                return None
            found += days.members_on(day, grace, overdue)
        if len(keys) > 1:
            found.sort(key=lambda m: m.id)
        return found

    def _overdue_days_of(
        self, practice_id: str, at: datetime, day: date, zone: str
    ) -> _OverdueDays | None:
        """``practice_id``'s :class:`_OverdueDays`, its stale members read again, when it
        answers at ``at`` on local ``day``; built from every member's outlook when missing,
        when a member is new to it or when its bounds fall short. ``None`` (the index kept,
        no outlook read) when ``at`` is before a member's last event."""
        days = self._overdue_days.get(practice_id)
        if days is not None and days.since is not None and at < days.since:
            return None
        if days is not None and days.stale:
            for member_id in sorted(days.stale):
                m = self._items.get(member_id)
                if m is None or m.practice_id != practice_id or member_id not in days.position:
                    days = None  # a member new to the practice (or gone): built again
                    break
                outlook = self._outlook(m, at, day, zone)
                if outlook is None:
                    return None
                days.patch(m, outlook)
            else:
                days.stale.clear()
        if days is None or not days.answers(at, day):
            members = sorted((self._items[i] for i in self._by_practice[practice_id]), key=_id)
            with _collector_paused():  # every member's outlook: many objects, no cycle
                sinces = [self._since(m) for m in members]
                if any(at < since for since in sinces):
                    return None
                self._overdue_days.pop(practice_id, None)
                outlooks: list[OverdueOutlook] = []
                for m, since in zip(members, sinces, strict=True):
                    outlook = self._outlook(m, at, day, zone, since)
                    assert outlook is not None  # ``at`` is past every member's last event
                    outlooks.append(outlook)
            days = self._overdue_days[practice_id] = _OverdueDays(members, outlooks)
        return days if days.answers(at, day) else None  # short only at 2200's end

    def _since(self, m: Member) -> datetime:
        """``m``'s last event (:func:`~smilepass_core.domain.overdue.last_event`), from the
        kept outlook when there is one."""
        outlook = self._outlooks.get(m.id)
        if outlook is not None:
            return outlook.since
        since = self._sinces.get(m.id)
        if since is None:
            plans = self._store.payment_plans.of_member(m.id)
            ledger = self._store.payments.of_source(("member", m.id))
            since = self._sinces[m.id] = last_event(m, plans, ledger)
        return since

    def _outlook(
        self, m: Member, at: datetime, day: date, zone: str, since: datetime | None = None
    ) -> OverdueOutlook | None:
        """``m``'s Overdue outlook answering at ``at`` on local ``day`` (read again when
        missing or short of ``day``); ``None`` when ``at`` is before their last event
        (``since``, when the caller has it)."""
        outlook = self._outlooks.get(m.id)
        if since is None:
            since = outlook.since if outlook is not None else self._sinces.get(m.id)
        if since is not None and at < since:
            return None
        if outlook is not None and (outlook.through is None or day <= outlook.through):
            return outlook
        plans = self._store.payment_plans.of_member(m.id)
        ledger = self._store.payments.of_source(("member", m.id))
        if since is None:
            since = self._sinces[m.id] = last_event(m, plans, ledger)
            if at < since:
                return None
        # Read through ``day`` and the weeks after it (a later query reads it again when
        # it goes further).
        outlook = overdue_outlook(
            m,
            plans,
            timezone=zone,
            membership_plans=self._store.membership_plans._items,
            payments=ledger,
            days=(day - local_day(since, zone)).days + _OUTLOOK_MARGIN_DAYS,
        )
        self._outlooks[m.id] = outlook
        return outlook

    def _kept_past(self, member_id: str, at: datetime, day: date) -> OverdueOutlook | None:
        """The outlook kept by :meth:`_past_outlook` answering at ``at`` on local ``day``."""
        kept = self._past.get(member_id)
        if kept:
            k = bisect.bisect_right(kept, at, key=_since_of)
            if k:
                outlook = kept[k - 1]
                if (outlook.until is None or at < outlook.until) and (
                    outlook.through is None or day <= outlook.through
                ):
                    return outlook
        return None

    def _past_outlook(self, m: Member, at: datetime, day: date, zone: str) -> OverdueOutlook | None:
        """``m``'s Overdue outlook as they stood at ``at``, read through the weeks past local
        ``day`` and kept until a write to them; ``None`` before their creation."""
        found = overdue_outlook_at(
            m,
            self._store.payment_plans.of_member(m.id),
            at=at,
            timezone=zone,
            membership_plans=self._store.membership_plans._items,
            payments=self._store.payments.of_source(("member", m.id)),
            days=_OUTLOOK_MARGIN_DAYS,
        )
        if found is not None:
            kept = self._past.setdefault(m.id, [])
            k = bisect.bisect_left(kept, found.since, key=_since_of)
            if k < len(kept) and kept[k].since == found.since:
                kept[k] = found  # the same span, read further
            else:
                kept.insert(k, found)
        return found

    def _outlook_then(self, m: Member, at: datetime, day: date, zone: str) -> OverdueOutlook | None:
        """``m``'s Overdue outlook answering at ``at``: the kept one past their last event,
        else one as they stood at ``at``; ``None`` before their creation (when only the
        payment plans they hold may be overdue)."""
        if at < m.created_at:
            return None
        outlook = self._kept_past(m.id, at, day) or self._outlook(m, at, day, zone)
        return outlook if outlook is not None else self._past_outlook(m, at, day, zone)

    def _overdue(self, m: Member, at: datetime, day: date, zone: str, grace: int) -> bool:
        """:func:`~smilepass_core.domain.overdue.is_overdue`, from the member's outlook
        at ``at`` (past their last event, or as they stood then), else judged in full."""
        outlook = self._outlook_then(m, at, day, zone)
        if outlook is not None:
            answer = outlook.overdue_on(day, grace)
            if answer is not None:  # read through ``day`` (short of it only at 2200's end)
                return answer
        plans = self._store.payment_plans.of_member(m.id)
        if outlook is None and not plans:
            return False  # not yet a member, and no payment plan held
        ledger = self._store.payments.of_source(("member", m.id))
        catalogue = self._store.membership_plans._items
        return is_overdue(
            m,
            plans,
            at=at,
            timezone=zone,
            grace_days=grace,
            membership_plans=catalogue,
            payments=ledger,
        )


class _PaymentPlans(_Repository[PaymentPlan, PaymentPlanQuery]):
    kind = PaymentPlan
    query_type = PaymentPlanQuery
    _TIMELINES = ("_committed",)

    def __init__(self, store: InMemoryStore) -> None:
        super().__init__(store)
        self._committed: Timelines[datetime] = Timelines()
        self._by_member: defaultdict[str, set[str]] = defaultdict(set)
        self._by_template: defaultdict[str, set[str]] = defaultdict(set)

    def _check(self, obj: PaymentPlan) -> None:
        """Also a plan that names its template is an offer of it (on a save, when what
        the check reads changed)."""
        store = self._store
        practice = self._practice(obj)
        _same_currency(practice, obj.total, "total")
        self._require(store.members, obj.member_id, obj.practice_id, "member_id")
        templates = store.payment_plan_templates
        self._require(templates, obj.template_id, obj.practice_id, "template_id")
        old = self._items.get(obj.id)
        if obj.template_id is not None and (old is None or offer_of(old) != offer_of(obj)):
            member = None if obj.member_id is None else store.members._items[obj.member_id]
            template = templates._items[obj.template_id]
            check_offer(template, obj, timezone=practice.timezone, member=member)

    def _index(self, plan: PaymentPlan) -> None:
        self._store.members._forget(plan.member_id)
        if plan.committed_at is not None:
            self._committed.add(plan.practice_id, plan.committed_at, plan.id, plan.total.minor)
        if plan.member_id is not None:
            self._by_member[plan.member_id].add(plan.id)
        if plan.template_id is not None:
            self._by_template[plan.template_id].add(plan.id)

    def _unindex(self, plan: PaymentPlan) -> None:
        self._store.members._forget(plan.member_id)
        if plan.committed_at is not None:
            self._committed.remove(plan.practice_id, plan.committed_at, plan.id)
        if plan.member_id is not None:
            self._by_member[plan.member_id].discard(plan.id)
        if plan.template_id is not None:
            self._by_template[plan.template_id].discard(plan.id)

    @_locked
    def committed_totals(
        self, *, practices: frozenset[str] | None, edges: Sequence[datetime]
    ) -> list[dict[str, Money]]:
        """The totals of the plans of ``practices`` first committed between each two
        consecutive ``edges``, per currency: the Committed Payments series in one pass,
        equal to one ``total(PaymentPlanQuery(practices=..., committed_in=[e_i, e_i+1)))``
        per pair.

        Raises:
            InvalidValue: an edge is naive, or the edges go back in time.
        """
        points = series_edges(edges)
        buckets = max(0, len(points) - 1)
        minors: dict[str, list[int]] = {}
        for currency, group in _by_currency(self._store, self._practices(_ids_of(practices))):
            mine = minors[currency] = [0] * buckets
            for timeline in self._committed.over(group):
                mine[:] = [a + b for a, b in zip(mine, timeline.totals(points), strict=True)]
        return [{c: Money.from_minor(m[k], c) for c, m in minors.items()} for k in range(buckets)]

    @_locked
    def of_member(self, member_id: str) -> list[PaymentPlan]:
        """The payment plans held by ``member_id``."""
        return [self._items[i] for i in self._by_member.get(member_id, ())]

    def _matching(self, query: PaymentPlanQuery) -> Iterator[PaymentPlan]:
        if query.overdue is None:
            yield from super()._matching(query)
            return
        practices = self._store.practices
        for plan in self._candidates(query.practices, query.ids):
            if query.matches(plan, timezone=practices.get(plan.practice_id).timezone):
                yield plan

    @_locked
    def total(self, query: PaymentPlanQuery) -> dict[str, Money]:
        """Sum of plan totals per currency; ``committed_in`` alone is read from the timeline."""
        self._check_query(query)
        r = query.committed_in
        if r is not None and query.form() == _COMMITTED_FORM:
            return {
                currency: Money.from_minor(
                    sum(t.total(r.start, r.end) for t in self._committed.over(group)), currency
                )
                for currency, group in _by_currency(self._store, self._practices(query.practices))
            }
        return per_currency(p.total for p in self._matching(query))


def _by_currency(
    store: InMemoryStore, practice_ids: Collection[str]
) -> tuple[tuple[str, Collection[str]], ...]:
    """The practices of ``practice_ids`` the store holds, by currency (in the order each
    currency is first met): ``practice_ids`` itself when all are held in one currency,
    so that a set read again is the same set (:meth:`Timelines.over`). Remembered for a
    set of ids until a practice is written."""
    memo = store.practices._currency_groups  # read under the caller's lock
    if type(practice_ids) is frozenset:
        found = memo.get(practice_ids)
        return (
            found
            if found is not None
            else memo.put(practice_ids, _currency_groups(store, practice_ids))
        )
    return _currency_groups(store, practice_ids)


#: The most sets of practices :func:`_by_currency` keeps split (all are forgotten when
#: one more comes, or a practice is written).
_CURRENCY_GROUPS_KEPT: Final = 64


def _currency_groups(
    store: InMemoryStore, practice_ids: Collection[str]
) -> tuple[tuple[str, Collection[str]], ...]:
    """:func:`_by_currency`, worked out."""
    practices = store.practices._items
    groups: dict[str, list[str]] = {}
    for practice_id in practice_ids:
        practice = practices.get(practice_id)
        if practice is not None:
            groups.setdefault(practice.currency, []).append(practice_id)
    if len(groups) == 1 and len(next(iter(groups.values()))) == len(practice_ids):
        return ((next(iter(groups)), practice_ids),)
    return tuple((currency, frozenset(group)) for currency, group in groups.items())


#: Parallel instants, ids and values for :meth:`Timeline.extend`.
_Columns = tuple[list[datetime], list[str], list[int]]


class _Terms(NamedTuple):
    """What a member's plain charge is checked against in a load."""

    practice_id: str
    #: The price every charge must be, ``None`` when a discount, a plan change or an
    #: earlier price may change it.
    price: Money | None
    minor: int  # the price's minor units
    enrolled: datetime
    cancelled: datetime | None
    entries: set[str]  # the ids of the member's ledger entries


class _Payments(_Repository[Payment, PaymentQuery]):
    kind = Payment
    query_type = PaymentQuery
    _TIMELINES = ("_all", "_collected", "_refunded")

    def __init__(self, store: InMemoryStore) -> None:
        super().__init__(store)
        self._all: Timelines[datetime] = Timelines()
        self._collected: Timelines[datetime] = Timelines()
        self._refunded: Timelines[datetime] = Timelines()
        self._by_source: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
        #: During a load (members fixed meanwhile): each member's enrolment and first
        #: cancellation, read once; ``None`` outside a load.
        self._windows: dict[str, tuple[datetime, datetime | None]] | None = None

    @_locked
    def add(self, obj: Payment) -> None:
        """Record a ledger entry; the same entry twice is a no-op.

        Raises:
            ConflictingPayment: the id is recorded with different content.
            RuleViolation: a refund above the net collected for its source.
        """
        self._check_type(obj)
        self._record(obj)

    def _record(self, obj: Payment) -> bool:
        """:meth:`add` of an entry known to be a Payment, the store held: whether it was
        new (an identical one kept already is not). The ledger keeps no versions: each
        entry is at version 1 for good."""
        existing = self._items.get(obj.id)
        if existing is not None:
            if existing == obj:
                return False
            raise ConflictingPayment(obj.id)
        self._check(obj)
        self._insert(obj)
        return True

    @_locked
    def version(self, id: str) -> int:
        """1 for a recorded entry (the ledger is append-only); raises :class:`NotFound`."""
        self.get(id)
        return 1

    @_locked
    def save(self, obj: Payment, *, expected_version: int | None = None) -> None:
        """The ledger is append-only: always raises :class:`RuleViolation`."""
        raise RuleViolation(
            "append_only", "the payment ledger is append-only: add a refund instead"
        )

    def _check(self, obj: Payment) -> None:
        store = self._store
        practice = self._practice(obj)
        _same_currency(practice, obj.amount, "amount")
        if obj.member_id is not None:
            self._require(store.members, obj.member_id, obj.practice_id, "member_id")
            member = store.members._items[obj.member_id]
            plans = store.membership_plans._items
            check_charge_window(obj, *self._window(member))
            check_charge_amount(
                member,
                plans[member.plan_id],
                (self._items[i] for i in self._by_source.get(obj.source, ())),
                obj,
                timezone=practice.timezone,
                plans=plans,
            )
        else:
            self._require(
                store.payment_plans, obj.payment_plan_id, obj.practice_id, "payment_plan_id"
            )
        if obj.kind is PaymentKind.REFUND:
            check_refund((self._items[i] for i in self._by_source.get(obj.source, ())), obj)

    def _record_loaded(
        self,
        objects: Sequence[object],
        positions: list[int],
        label: Callable[[int], tuple[str, int]],
        kept: list[Payment],
    ) -> None:
        """:meth:`_record` of a load's ledger entries ``objects[k]`` for each ``k`` of
        ``positions``, in that order (the store held, the members fixed meanwhile); each
        entry kept is appended to ``kept``; ``label(k)`` names an entry in an error.

        A plainly allowed entry is checked here: a charge in its practice's currency, of
        a payment plan of its practice, or of a member of its practice within their
        enrolment and cancellation, of the plan's price with no discount, plan change or
        earlier price. Any other entry is checked by :meth:`_check`. The timelines take
        the entries at the end (or at the first error), a practice's at once.

        Raises:
            InvalidRecord: naming the entry's source and index.
        """
        store = self._store
        items, by_practice, by_source = self._items, self._by_practice, self._by_source
        practices = store.practices._items
        payment_plans = store.payment_plans._items
        charge, succeeded = PaymentKind.CHARGE, PaymentOutcome.SUCCEEDED
        terms: dict[str, _Terms | None] = {}
        # Per practice, what each timeline takes: the instants and ids of all entries
        # (each of value 1), the instants, ids and amounts of the succeeded charges, and
        # of the succeeded refunds.
        taken: dict[str, tuple[tuple[list[datetime], list[str]], _Columns, _Columns]] = {}
        touched: set[str] = set()  # members of entries not plain (the others: in terms)
        try:
            for k in positions:
                p = cast(Payment, objects[k])
                id, practice_id, member_id, at = p.id, p.practice_id, p.member_id, p.at
                existing = items.get(id)
                if existing is not None:
                    if existing == p:
                        continue
                    raise ConflictingPayment(id)
                practice = practices.get(practice_id)
                plain = (
                    practice is not None
                    and p.kind is charge
                    and p.amount.currency == practice.currency
                )
                found = None
                if plain and member_id is not None:
                    if member_id not in terms:
                        terms[member_id] = self._plain_terms(member_id)
                    found = terms[member_id]
                    plain = (
                        found is not None
                        and found.practice_id == practice_id
                        and p.amount == found.price
                        and found.enrolled <= at
                        and (found.cancelled is None or at <= found.cancelled)
                    )
                elif plain:
                    plan = payment_plans.get(p.payment_plan_id or "")
                    plain = plan is not None and plan.practice_id == practice_id
                if not plain:
                    self._check(p)
                    if member_id is not None:
                        touched.add(member_id)
                items[id] = p
                kept.append(p)
                by_practice[practice_id].add(id)
                source = (
                    found.entries
                    if plain and found is not None
                    else by_source["member", member_id]
                    if member_id is not None
                    else by_source["payment_plan", str(p.payment_plan_id)]
                )
                source.add(id)
                columns = taken.get(practice_id)
                if columns is None:
                    columns = taken[practice_id] = (([], []), ([], [], []), ([], [], []))
                every = columns[0]
                every[0].append(at)
                every[1].append(id)
                if p.outcome is succeeded:
                    some = columns[1] if p.kind is charge else columns[2]
                    some[0].append(at)
                    some[1].append(id)
                    some[2].append(found.minor if plain and found is not None else p.amount.minor)
        except SmilepassError as error:
            raise as_record_error(*label(k), error) from error
        finally:
            for practice_id, columns in taken.items():
                every = columns[0]
                self._all.extend(practice_id, every[0], every[1], [1] * len(every[0]))
                self._collected.extend(practice_id, *columns[1])
                self._refunded.extend(practice_id, *columns[2])
            for member_id in touched.union(terms):
                store.members._forget(member_id)

    def _plain_terms(self, member_id: str) -> _Terms | None:
        """What a plain charge of ``member_id`` is checked against (``None``: no such
        member)."""
        store = self._store
        member = store.members._items.get(member_id)
        if member is None:
            return None
        plan = store.membership_plans._items[member.plan_id]
        simple = not member.discounts and not member.plan_changes and not plan.earlier_prices
        return _Terms(
            member.practice_id,
            plan.price if simple else None,
            plan.price.minor,
            *self._window(member),
            self._by_source["member", member_id],
        )

    def _window(self, member: Member) -> tuple[datetime, datetime | None]:
        """The member's enrolment and first cancellation (read once per member in a load)."""
        windows = self._windows
        if windows is None:
            return member.created_at, member.first_entered(_CANCELLED)
        found = windows.get(member.id)
        if found is None:
            found = windows[member.id] = (member.created_at, member.first_entered(_CANCELLED))
        return found

    def _index(self, p: Payment) -> None:
        self._store.members._forget(p.member_id)
        self._all.add(p.practice_id, p.at, p.id)
        if p.succeeded:
            index = self._collected if p.kind is PaymentKind.CHARGE else self._refunded
            index.add(p.practice_id, p.at, p.id, p.amount.minor)
        self._by_source[p.source].add(p.id)

    def _unindex(self, p: Payment) -> None:
        self._store.members._forget(p.member_id)
        self._all.remove(p.practice_id, p.at, p.id)
        if p.succeeded:
            index = self._collected if p.kind is PaymentKind.CHARGE else self._refunded
            index.remove(p.practice_id, p.at, p.id)
        self._by_source[p.source].discard(p.id)

    @_locked
    def of_source(self, source: tuple[str, str]) -> list[Payment]:
        """The ledger entries of ``source`` (``("member", id)`` or ``("payment_plan", id)``),
        in order of time, then id."""
        return sorted(
            (self._items[i] for i in self._by_source.get(source, ())), key=lambda p: (p.at, p.id)
        )

    @_locked
    def collected_for(self, source: tuple[str, str], currency: str) -> Money:
        """Net collected (succeeded charges minus succeeded refunds) for one source."""
        entries = (self._items[i].signed for i in self._by_source.get(source, ()))
        return sum(entries, Money.zero(currency))

    def _bare(self, query: PaymentQuery) -> bool:
        """True when only practices, time range, kinds and outcomes filter."""
        return query.form() <= _LEDGER_FORM

    @_locked
    def count(self, query: PaymentQuery) -> int:
        """Number of matching entries; practice + time range alone is a timeline read."""
        self._check_query(query)
        r = query.time_range
        if query.form() <= _TIME_FORM:
            start, end = (None, None) if r is None else (r.start, r.end)
            return sum(
                t.count(start, end) for t in self._all.over(self._practices(query.practices))
            )
        return super().count(query)

    @_locked
    def total(self, query: PaymentQuery) -> dict[str, Money]:
        """Sum of signed amounts per currency; the revenue form is read from prefix sums."""
        self._check_query(query)
        if not self._bare(query):
            return per_currency(p.signed for p in self._matching(query))
        r = query.time_range
        start, end = (None, None) if r is None else (r.start, r.end)
        succeeded = query.outcomes is None or PaymentOutcome.SUCCEEDED in query.outcomes
        kinds = query.kinds if query.kinds is not None else frozenset(PaymentKind)

        def minor(group: Collection[str]) -> int:
            if not succeeded:
                return 0
            charges = refunds = 0
            if PaymentKind.CHARGE in kinds:
                charges = sum(t.total(start, end) for t in self._collected.over(group))
            if PaymentKind.REFUND in kinds:
                refunds = sum(t.total(start, end) for t in self._refunded.over(group))
            return charges - refunds

        groups = _by_currency(self._store, self._practices(query.practices))
        return {currency: Money.from_minor(minor(group), currency) for currency, group in groups}

    @_locked
    def window_totals(
        self, *, practices: frozenset[str] | None, windows: Sequence[tuple[datetime, datetime]]
    ) -> list[dict[str, Money]]:
        """The revenue of ``practices`` (every practice for ``None``) in each window
        ``[start, end)`` of ``windows``, per currency (succeeded charges less succeeded
        refunds): equal to one ``total(PaymentQuery(practices=...,
        time_range=DateRange(start, end, tz)))`` per window.

        Raises:
            NaiveDatetime: an instant without a time zone.
            InvalidValue: ``practices`` not an id set (naming it); a value that is not
                a pair of instants, or a window going back in time.
        """
        pairs = read_spans(windows, "windows", ordered=True)
        totals: list[dict[str, Money]] = [{} for _ in pairs]
        instants = [at for pair in pairs for at in pair]
        signed = ((1, self._collected), (-1, self._refunded))
        for currency, group in _by_currency(self._store, self._practices(_ids_of(practices))):
            net = _before(signed, group, instants, Timeline.totals_before)  # minor units in
            for total, (start, end) in zip(totals, pairs, strict=True):
                total[currency] = Money.from_minor(net[end] - net[start], currency)
        return totals


class _Referrals(_Repository[Referral, ReferralQuery]):
    kind = Referral
    query_type = ReferralQuery

    def _check(self, obj: Referral) -> None:
        store = self._store
        self._practice(obj)
        self._require(store.campaigns, obj.campaign_id, obj.practice_id, "campaign_id")
        self._require(store.staff_users, obj.staff_user_id, obj.practice_id, "staff_user_id")
        self._require(
            store.members, obj.referring_member_id, obj.practice_id, "referring_member_id"
        )
        self._require(store.members, obj.member_id, obj.practice_id, "member_id")
        if obj.campaign_id is not None:  # opened while the campaign was Active
            store.campaigns._items[obj.campaign_id].check_sign_up(
                obj.created_at, subject=f"referral {obj.id}"
            )


class InMemoryStore:
    """Every repository protocol in memory, indexed for the KPI reads.

    >>> from smilepass_core.demo import load_demo
    >>> store = InMemoryStore.from_objects(load_demo().objects())
    >>> store.practices.count(ScopeQuery()) == len(load_demo().practices)
    True
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.practices = _Practices(self)
        self.staff_users = _StaffUsers(self)
        self.membership_plans = _MembershipPlans(self)
        self.campaigns = _Campaigns(self)
        self.payment_plan_templates = _PaymentPlanTemplates(self)
        self.members = _Members(self)
        self.payment_plans = _PaymentPlans(self)
        self.referrals = _Referrals(self)
        self.payments = _Payments(self)

    @contextlib.contextmanager
    def atomic(self) -> Iterator[InMemoryStore]:
        """Hold the store for this thread: reads inside see one state, writes inside land
        together as far as other threads can tell (they wait).

        Each repository method is atomic on its own; a dashboard or a report makes many
        reads, so compute it inside ``atomic()`` when other threads write meanwhile.

        >>> from smilepass_core.demo import DEMO_NOW, demo_store
        >>> from smilepass_core.kpi import dashboard
        >>> store = demo_store()
        >>> with store.atomic():
        ...     board = dashboard(store, practices="syd", now=DEMO_NOW)
        >>> board.members.value > 0
        True
        """
        with self._lock:
            yield self

    def load(self, objects: Iterable[object]) -> None:
        """Add many objects at once, atomically: on any error nothing of this load is kept.

        Objects are added in dependency order (practices first, the ledger last, in
        time order), so their order in ``objects`` does not matter.

        Raises:
            InvalidRecord: naming the object's type, its index in ``objects``, the
                field and the reason.
        """
        self._load(list(objects))

    def load_labelled(self, entries: Iterable[tuple[str, int, object]]) -> None:
        """Like :meth:`load`, for objects labelled ``(source, index, object)``: an error
        names the object's source (a table, a file) and its index there.

        Raises:
            InvalidRecord: naming the source, the index, the field and the reason.
        """
        labelled = list(entries)
        self._load([e[2] for e in labelled], [e[1] for e in labelled], [e[0] for e in labelled])

    def _load(
        self,
        objects: list[object],
        indices: list[int] | None = None,
        sources: list[str] | None = None,
    ) -> None:
        """Load ``objects``; ``indices[k]`` and ``sources[k]`` name ``objects[k]`` in an
        error (by default ``k`` and its type's name)."""
        label = functools.partial(record_label, objects, indices, sources)
        with self._lock, _collector_paused():
            self._load_locked(objects, load_plan(objects, indices, sources), label)

    def _load_locked(
        self,
        objects: list[object],
        plan: list[tuple[str, list[int]]],
        label: Callable[[int], tuple[str, int]],
    ) -> None:
        done: list[tuple[_Repository[Any, Any], Any]] = []
        kept: list[Payment] = []  # the ledger entries, added last
        loaded: set[str] = set()  # the repositories whose indexes to sort at the end
        ledger = self.payments
        ledger._windows = {}  # the members stay as they are while the ledger loads
        try:
            for name, positions in plan:
                loaded.add(name)
                if name == "payments":
                    ledger._record_loaded(objects, positions, label, kept)
                    continue
                repo: _Repository[Any, Any] = getattr(self, name)
                for k in positions:
                    try:
                        repo.add(objects[k])
                    except SmilepassError as error:
                        raise as_record_error(*label(k), error) from error
                    done.append((repo, objects[k]))
        except BaseException:
            for payment in reversed(kept):
                ledger._discard(payment)
            for repo, obj in reversed(done):
                repo._discard(obj)
            raise
        finally:
            ledger._windows = None
        for name in loaded:  # each index sorted once
            owner: _Repository[Any, Any] = getattr(self, name)
            for attribute in owner._TIMELINES:
                for timeline in getattr(owner, attribute).values():
                    timeline.settle()

    @classmethod
    def from_objects(cls, objects: Iterable[object]) -> InMemoryStore:
        """A new store holding ``objects`` (see :meth:`load`)."""
        store = cls()
        store.load(objects)
        return store


if TYPE_CHECKING:  # mypy holds the store's optional reads to their Protocols

    def _offers(
        store: InMemoryStore,
    ) -> tuple[
        MemberSeriesReader,
        MemberBoundaryReader,
        UnpaidChargesReader,
        PaymentPlanSeriesReader,
        PaymentWindowReader,
    ]:
        return store.members, store.members, store.members, store.payment_plans, store.payments
