"""How the core's results are shown and exchanged, without the core knowing how.

The dashboard, the reports, their series and lists, :class:`~smilepass_core.money.Money`
and :class:`~smilepass_core.periods.DateRange` carry the notebook and interchange
protocols (``_repr_html_``, ``__arrow_c_stream__``, ``to_arrow()``, ``to_pandas()``,
``to_polars()``). Each asks the outer layer (:mod:`smilepass_core.io`), which
:func:`provide`\\ s its implementation when the package is imported: the core imports
nothing of the outer layer, nor pyarrow, pandas, polars or matplotlib.

>>> from smilepass_core.money import Money
>>> isinstance(Money.of("1200", "AUD"), Shown), sorted(CAPABILITIES)
(True, ['arrow', 'html', 'pandas', 'polars'])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final, Generic, SupportsIndex, TypeVar, overload

from smilepass_core.errors import SmilepassError

__all__ = ["CAPABILITIES", "Items", "Shown", "Tabular", "provide", "provider"]

#: What the outer layer provides: each name, what it turns a result into.
CAPABILITIES: Final = {
    "html": "self-contained HTML for a notebook (smilepass_core.io.html)",
    "arrow": "a typed pyarrow.Table (smilepass_core.io.frames, extra [arrow])",
    "pandas": "a pandas.DataFrame (smilepass_core.io.frames, extra [pandas])",
    "polars": "a polars.DataFrame (smilepass_core.io.frames, extra [polars])",
}

_PROVIDED: dict[str, Callable[..., Any]] = {}


def provide(capability: str, implementation: Callable[..., Any]) -> None:
    """Register the outer layer's ``implementation`` of ``capability`` (one of
    :data:`CAPABILITIES`), replacing any earlier one."""
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}; known: {', '.join(CAPABILITIES)}")
    _PROVIDED[capability] = implementation


def provider(capability: str) -> Callable[..., Any]:
    """The registered implementation of ``capability``.

    Raises:
        SmilepassError: none is registered (the outer layer was not imported).
    """
    try:
        return _PROVIDED[capability]
    except KeyError:
        raise SmilepassError(
            f"nothing provides {capability!r} ({CAPABILITIES.get(capability, 'unknown')}); "
            "import smilepass_core, which registers the outer layer"
        ) from None


class Shown:
    """Mixin: a value a notebook shows as HTML."""

    __slots__ = ()

    def _repr_html_(self) -> str:
        """Self-contained HTML (inline CSS, no scripts, every string escaped)."""
        html: str = provider("html")(self)
        return html


class Tabular(Shown):
    """Mixin: a result that is also a typed table (Arrow, pandas, polars).

    Columns are typed: money as a decimal at the currency's scale beside a currency
    column, dates as dates, instants as timestamps in the practice's zone, statuses
    as dictionaries, counts as integers, undefined figures as nulls
    (docs/notebooks.md).
    """

    __slots__ = ()

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """The Arrow PyCapsule stream of :meth:`to_arrow` (extra ``[arrow]``): polars,
        pandas ≥ 3.0 (``DataFrame.from_arrow``), DuckDB and other Arrow readers take
        the result directly."""
        return self.to_arrow().__arrow_c_stream__(requested_schema)

    def to_arrow(self) -> Any:
        """This result as a typed ``pyarrow.Table`` (extra ``[arrow]``)."""
        return provider("arrow")(self)

    def to_pandas(self) -> Any:
        """This result as a ``pandas.DataFrame`` with typed columns (extra ``[pandas]``)."""
        return provider("pandas")(self)

    def to_polars(self) -> Any:
        """This result as a ``polars.DataFrame`` with typed columns (extra ``[polars]``)."""
        return provider("polars")(self)


T = TypeVar("T")


class Items(Tabular, Generic[T]):
    """A read-only sequence that is also a typed table.

    It iterates, indexes, slices (to a plain tuple), hashes, prints and compares like the
    tuple of its items, so ``series == (...)`` holds both ways. It is deliberately not a
    ``tuple`` subclass nor a registered ``Sequence``: polars, pandas and DuckDB read a
    tuple as rows of Python objects, and only read ``__arrow_c_stream__`` otherwise.
    """

    __slots__ = ("_items",)
    _items: tuple[T, ...]

    def __init__(self, items: Iterable[T] = ()) -> None:
        object.__setattr__(self, "_items", tuple(items))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only: {name} cannot be set")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only: {name} cannot be deleted")

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)

    def __reversed__(self) -> Iterator[T]:
        return reversed(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, item: object) -> bool:
        return item in self._items

    @overload
    def __getitem__(self, index: SupportsIndex) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[T, ...]: ...

    def __getitem__(self, index: SupportsIndex | slice) -> T | tuple[T, ...]:
        return self._items[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Items):
            return self._items == other._items
        if isinstance(other, tuple):
            return self._items == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        """One line with the count, never every item (``tuple(items)`` shows them)."""
        n = len(self)
        return f"<{type(self).__name__}: {n:,} item{'' if n == 1 else 's'}>"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as a fresh object built from the slots (no in-place ``__setstate__``)."""
        state = {name: getattr(self, name) for name in _slots(type(self))}
        return (_rebuild, (type(self), state))


def _rebuild(kind: type[Items[Any]], state: dict[str, Any]) -> Items[Any]:
    obj = object.__new__(kind)
    for name, value in state.items():
        object.__setattr__(obj, name, value)
    return obj


def _slots(cls: type) -> list[str]:
    return [name for c in cls.__mro__ for name in getattr(c, "__slots__", ())]
