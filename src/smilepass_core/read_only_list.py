"""ReadOnlyList: a read-only view of part of a list that nobody changes again.

What every ``find`` of :class:`~smilepass_core.InMemoryStore` and of ``SqlStore``
returns: a store can hand out a list it keeps (the members of one practice and status,
in start-date order) without copying a pointer per object, and no caller can change
what another reads. ``list(found)`` gives a list of your own.
"""

from __future__ import annotations

import copy
import operator
import sys
from collections.abc import Iterator, Sequence
from typing import Any, SupportsIndex, TypeVar, overload

T_co = TypeVar("T_co", covariant=True)

__all__ = ["ReadOnlyList"]


class ReadOnlyList(Sequence[T_co]):
    """``items[start:stop]`` as an immutable sequence, without copying it.

    Equal to a list (or another ``ReadOnlyList``) of equal items in the same order, as a
    list is; unhashable, as a list is. A slice is a ``ReadOnlyList`` too.

    The caller promises that ``items`` is never changed after the view is made (the
    store makes a new list for each write instead).
    """

    __slots__ = ("_items", "_start", "_stop")

    def __init__(self, items: list[T_co], start: int = 0, stop: int | None = None) -> None:
        self._items = items
        if start == 0 and stop is None:  # the whole list: most views
            self._start, self._stop = 0, len(items)
        else:
            self._start, self._stop, _ = slice(start, stop).indices(len(items))
            self._stop = max(self._start, self._stop)

    def __len__(self) -> int:
        return self._stop - self._start

    @overload
    def __getitem__(self, index: int) -> T_co: ...

    @overload
    def __getitem__(self, index: slice) -> ReadOnlyList[T_co]: ...

    def __getitem__(self, index: int | slice) -> T_co | ReadOnlyList[T_co]:
        span = range(self._start, self._stop)
        if isinstance(index, slice):
            part = span[index]
            if part.step == 1:
                return ReadOnlyList(self._items, part.start, part.stop)
            return ReadOnlyList([self._items[k] for k in part])
        try:
            return self._items[span[index]]
        except IndexError:
            raise IndexError("ReadOnlyList index out of range") from None
        except TypeError:
            raise TypeError(
                f"ReadOnlyList indices must be integers or slices, not {type(index).__name__}"
            ) from None

    def __iter__(self) -> Iterator[T_co]:
        if self._start == 0 and self._stop == len(self._items):
            return iter(self._items)
        return map(self._items.__getitem__, range(self._start, self._stop))

    def __reversed__(self) -> Iterator[T_co]:
        return map(self._items.__getitem__, reversed(range(self._start, self._stop)))

    def index(self, value: Any, start: SupportsIndex = 0, stop: SupportsIndex = sys.maxsize) -> int:
        """The first position of ``value`` in ``[start:stop]``, as ``list.index``."""
        lo, hi, _ = slice(operator.index(start), operator.index(stop)).indices(len(self))
        try:
            return self._items.index(value, self._start + lo, self._start + max(lo, hi)) - (
                self._start
            )
        except ValueError:
            raise ValueError(f"{value!r} is not in the ReadOnlyList") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, list | ReadOnlyList):
            return NotImplemented
        # As a list compares: the same object, or equal, item by item.
        return len(self) == len(other) and all(
            a is b or a == b for a, b in zip(self, other, strict=True)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (list(self),))

    def __copy__(self) -> ReadOnlyList[T_co]:
        return self  # immutable: a copy is the same view

    def __deepcopy__(self, memo: dict[int, Any]) -> ReadOnlyList[T_co]:
        return ReadOnlyList(copy.deepcopy(list(self), memo))
