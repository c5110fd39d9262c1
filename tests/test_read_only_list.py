"""ReadOnlyList: a view of part of a list that behaves as that part copied into a list."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smilepass_core.read_only_list import ReadOnlyList

items = st.lists(st.integers(-3, 3), max_size=12)
bounds = st.none() | st.integers(-15, 15)
steps = st.none() | st.integers(-4, 4).filter(bool)


@st.composite
def views(draw: st.DrawFn) -> tuple[ReadOnlyList[int], list[int]]:
    """A view of a random part of a random list, and that part copied."""
    whole = draw(items)
    start, stop = draw(st.integers(0, 15)), draw(st.none() | st.integers(0, 15))
    return ReadOnlyList(whole, start, stop), whole[start:stop]


class TestAsTheListItViews:
    @given(views())
    def test_length_items_and_order(self, case: tuple[ReadOnlyList[int], list[int]]) -> None:
        """Length, iteration, reversal and conversion read the viewed part only."""
        view, part = case
        assert len(view) == len(part)
        assert list(view) == part
        assert list(reversed(view)) == part[::-1]
        assert tuple(view) == tuple(part)
        assert bool(view) == bool(part)

    @given(views(), st.integers(-15, 15))
    def test_an_index_as_the_list_takes_it(
        self, case: tuple[ReadOnlyList[int], list[int]], k: int
    ) -> None:
        """An index, negative or out of range, reads or raises as on the copied part."""
        view, part = case
        if -len(part) <= k < len(part):
            assert view[k] == part[k]
        else:
            with pytest.raises(IndexError, match="ReadOnlyList index out of range"):
                view[k]

    @given(views(), bounds, bounds, steps)
    def test_a_slice_as_the_list_takes_it(
        self,
        case: tuple[ReadOnlyList[int], list[int]],
        start: int | None,
        stop: int | None,
        step: int | None,
    ) -> None:
        """A slice of any step is a ReadOnlyList of the copied part's slice, and a slice of
        that slice is too."""
        view, part = case
        sliced = view[start:stop:step]
        assert isinstance(sliced, ReadOnlyList)
        assert list(sliced) == part[start:stop:step]
        assert list(sliced[1:]) == part[start:stop:step][1:]
        assert list(sliced[::-1]) == part[start:stop:step][::-1]

    @given(views(), st.integers(-4, 4))
    def test_membership_index_and_count(
        self, case: tuple[ReadOnlyList[int], list[int]], value: int
    ) -> None:
        """``in``, ``index`` and ``count`` see the viewed part only."""
        view, part = case
        assert (value in view) == (value in part)
        assert view.count(value) == part.count(value)
        for bounds in [(0,), (1,), (-2,), (1, -1), (3, 1)]:
            if value in part[bounds[0] : bounds[1] if len(bounds) == 2 else None]:
                assert view.index(value, *bounds) == part.index(value, *bounds)
            else:
                with pytest.raises(ValueError, match="is not in the ReadOnlyList"):
                    view.index(value, *bounds)

    @given(views(), items)
    def test_equal_as_lists_are(
        self, case: tuple[ReadOnlyList[int], list[int]], other: list[int]
    ) -> None:
        """Equal to a list or a view exactly when the copied part is, either way round."""
        view, part = case
        assert (view == other) == (part == other)
        assert (other == view) == (part == other)
        assert (view != other) == (part != other)
        assert (view == ReadOnlyList(other)) == (part == other)
        assert view == ReadOnlyList(list(part))

    def test_not_equal_to_what_a_list_is_not_equal_to(self) -> None:
        """A tuple or a string of the same items is not equal, as for a list."""
        assert ReadOnlyList([1, 2]) != (1, 2)
        assert ReadOnlyList(["a"]) != "a"
        assert ReadOnlyList([]) != ()

    def test_an_item_is_the_same_object_or_equal(self) -> None:
        """Items compare as a list compares them: identity first (a NaN is itself)."""
        nan = float("nan")
        assert ReadOnlyList([nan]) == [nan]
        assert ReadOnlyList([float("nan")]) != [float("nan")]


class TestReadOnly:
    def test_nothing_changes_it(self) -> None:
        """No item can be set, deleted or appended, and it cannot be hashed."""
        view = ReadOnlyList([1, 2, 3])
        with pytest.raises(TypeError):
            view[0] = 5  # type: ignore[index]
        with pytest.raises(TypeError):
            del view[0]  # type: ignore[attr-defined]
        assert not hasattr(view, "append")
        with pytest.raises(TypeError, match="unhashable"):
            hash(view)
        with pytest.raises(AttributeError):
            view.extra = 1  # type: ignore[attr-defined]

    def test_a_wrong_index_type_is_named(self) -> None:
        """An index that is neither an int nor a slice raises TypeError naming its type;
        ``index`` refuses bounds that are not integers, as a list does."""
        with pytest.raises(TypeError, match="not str"):
            ReadOnlyList([1])["0"]  # type: ignore[call-overload]
        for bounds in [(None,), (0, None), (0.0,)]:
            with pytest.raises(TypeError):
                [1].index(1, *bounds)  # type: ignore[arg-type]
            with pytest.raises(TypeError):
                ReadOnlyList([1]).index(1, *bounds)  # type: ignore[arg-type]

    def test_a_sequence(self) -> None:
        """It is a Sequence, and prints as its items."""
        view = ReadOnlyList([1, 2, 3], 1)
        assert isinstance(view, Sequence)
        assert repr(view) == "ReadOnlyList([2, 3])"

    @given(views())
    def test_pickled_and_copied_as_its_items(
        self, case: tuple[ReadOnlyList[int], list[int]]
    ) -> None:
        """Pickling and deep copying keep the viewed part only; a shallow copy is itself."""
        view, part = case
        back = pickle.loads(pickle.dumps(view))
        assert isinstance(back, ReadOnlyList)
        assert back == part
        assert back._items == part
        assert copy.copy(view) is view
        deep = copy.deepcopy(view)
        assert deep == part
        assert deep._items == part
        assert deep._items is not view._items
