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

from collections.abc import Callable
from typing import Any, Final

from smilepass_core.errors import SmilepassError

__all__ = ["CAPABILITIES", "Shown", "Tabular", "provide", "provider"]

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
        pandas ≥ 2.2, DuckDB and other Arrow readers take the result directly."""
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
