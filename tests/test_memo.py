"""The bounded memo behind the remembered answers (buckets, id sets, dashboard plans)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smilepass_core import DateRange, InMemoryStore, Money
from smilepass_core._memo import MEMO_UP_TO, Memo
from smilepass_core.errors import InvalidPeriod, InvalidValue
from smilepass_core.kpi import _buckets, _cuts
from smilepass_core.money import CURRENCIES
from smilepass_core.periods import Unit, as_instant
from smilepass_core.queries import MemberQuery, ScopeQuery, id_set


class TestMemo:
    """A memo answers what was put last for a key, and holds at most ``kept`` answers."""

    @given(st.lists(st.integers(0, 50)), st.integers(1, 8))
    def test_it_answers_what_was_put_last_and_never_holds_more_than_kept(
        self, keys: list[int], kept: int
    ) -> None:
        """Any sequence of puts: each key answers its last value or nothing, never more
        than ``kept`` at once."""
        memo: Memo[int, str] = Memo(kept)
        last: dict[int, str] = {}
        for n, key in enumerate(keys):
            assert memo.put(key, f"{key}:{n}") == f"{key}:{n}"
            last[key] = f"{key}:{n}"
            assert len(memo) <= kept
            assert memo.get(key) == last[key]
        for key in set(keys):  # what it still holds is what was put last
            found = memo.get(key)
            assert found is None or found == last[key]
            assert (key in memo) == (found is not None)

    def test_it_forgets_everything_when_full(self) -> None:
        """A put into a full memo forgets what it held first."""
        memo: Memo[str, int] = Memo(2)
        memo.put("a", 1)
        memo.put("b", 2)
        memo.put("c", 3)
        assert (memo.get("a"), memo.get("b"), memo.get("c"), len(memo)) == (None, None, 3, 1)


class TestRememberedBuckets:
    """The dashboard's series buckets, remembered unless there are many."""

    def test_buckets_asked_again_are_the_same_and_a_long_cut_is_not_kept(self) -> None:
        week = DateRange(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 8, tzinfo=UTC), "UTC")
        first = _buckets(week, Unit.DAY)
        assert _buckets(week, Unit.DAY) is first  # remembered
        assert first == week.buckets(Unit.DAY)
        assert [b.start.day for b in first] == list(range(1, 8))
        start = datetime(2020, 1, 1, tzinfo=UTC)
        years = DateRange(start, start.replace(year=2023), "UTC")
        days = _buckets(years, Unit.DAY)
        assert len(days) > MEMO_UP_TO
        assert (years, Unit.DAY) not in _cuts
        assert days == years.buckets(Unit.DAY)


class _Wrapped:
    """An id that is not a string but equals and hashes like one."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return other == self.text

    def __hash__(self) -> int:
        return hash(self.text)


class TestRememberedIdSets:
    """A query's id set found valid once is not checked again, and only that very set."""

    def test_an_equal_set_of_non_strings_is_still_refused_after_a_valid_one(self) -> None:
        """``{"a", "b"}`` is valid; a set equal to it holding a non-string id is refused
        before and after it."""
        odd = frozenset({_Wrapped("a"), "b"})
        assert odd == frozenset({"a", "b"})
        with pytest.raises(InvalidValue, match="must be id strings"):
            ScopeQuery(practices=odd)
        assert ScopeQuery(practices=frozenset({"a", "b"})).practices == {"a", "b"}
        with pytest.raises(InvalidValue, match="must be id strings"):
            ScopeQuery(practices=odd)

    def test_a_padded_id_is_refused_whatever_was_checked_before(self) -> None:
        """A padded id is refused in a set of its own and next to ids checked before."""
        MemberQuery(practices=frozenset({"p1", "p2"}), ids=frozenset({"m1", "m2"}))
        for ids in (frozenset({"p1", " p2"}), frozenset({"m1", "m2 "})):
            with pytest.raises(InvalidValue, match="without spaces around"):
                MemberQuery(practices=ids)


class TestIdSet:
    """``queries.id_set``: what a query keeps of an id set, checked the same way."""

    def test_it_keeps_what_a_query_keeps_and_refuses_what_a_query_refuses(self) -> None:
        """None, an id, a collection of ids: as ``ScopeQuery`` keeps them; a padded id, a
        non-string id or a number is refused naming the field given."""
        for value in (None, "p1", ["p1", "p2"], frozenset({"p1"}), ("p2", "p2")):
            assert id_set(value, "practices") == ScopeQuery(practices=value).practices
        for bad in (" p1", ["p1", 3], 7, frozenset({"p1", "p2 "})):
            with pytest.raises(InvalidValue) as caught:
                id_set(bad, "scope")
            assert caught.value.field == "scope"

    def test_the_batched_reads_refuse_bad_practices(self) -> None:
        """A batched read of the store refuses a padded practice id, naming ``practices``,
        even when asked nothing."""
        store = InMemoryStore()
        t = datetime(2026, 3, 1, tzinfo=UTC)
        reads = [
            (store.members.active_counts, {"at": [t]}),
            (store.members.ever_active_counts, {"before": []}),
            (store.members.retained_counts, {"spans": []}),
            (store.payments.window_totals, {"windows": [(t, t)]}),
            (store.members.first_activated_counts, {"edges": [t, t]}),
        ]
        for read, asked in reads:
            with pytest.raises(InvalidValue) as caught:
                read(practices=frozenset({"p1", " p2"}), **asked)
            assert caught.value.field == "practices"


class TestFastPaths:
    """The shortcuts for the common values give what the full paths give."""

    @given(st.datetimes(timezones=st.just(UTC)) | st.datetimes(timezones=st.timezones()))
    def test_as_instant_of_an_aware_datetime_is_the_same_instant_in_utc(self, at: datetime) -> None:
        """An aware datetime comes back as its instant in UTC (``astimezone``: a wall time
        in a gap or a fold is taken as its offset says), a stdlib datetime; one already
        in UTC comes back as it is."""
        try:
            found = as_instant(at)
        except InvalidPeriod:
            assert at.astimezone(UTC).year not in range(1900, 2201)  # the supported years
            return
        assert (type(found), found.tzinfo) == (datetime, UTC)
        assert found == at.astimezone(UTC)
        assert (found.utcoffset(), found - at.astimezone(UTC)) == (timedelta(0), timedelta(0))
        if at.tzinfo is UTC:
            assert found is at

    @given(st.sampled_from(sorted(CURRENCIES)))
    def test_from_minor_zero_is_the_currencys_zero(self, code: str) -> None:
        """Zero minor units give the currency's zero, with its exponent."""
        zero = Money.from_minor(0, code)
        assert zero is Money.zero(code)
        assert zero.amount.as_tuple() == Decimal(0).scaleb(-CURRENCIES[code]).as_tuple()
        assert zero + Money.from_minor(1, code) == Money.from_minor(1, code)
