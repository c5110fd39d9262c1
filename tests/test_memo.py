"""The bounded memo behind the remembered answers (buckets, id sets, dashboard plans)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from smilepass_core import DateRange
from smilepass_core._memo import MEMO_UP_TO, Memo
from smilepass_core.kpi import _buckets, _cuts
from smilepass_core.periods import Unit


class TestMemo:
    @given(st.lists(st.integers(0, 50)), st.integers(1, 8))
    def test_it_answers_what_was_put_last_and_never_holds_more_than_kept(
        self, keys: list[int], kept: int
    ) -> None:
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
