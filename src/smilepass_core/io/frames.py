"""Typed tables of the core's results: Arrow, pandas and polars (docs/notebooks.md, "Frames").

The columns are derived from the row classes' attrs fields (and the properties that
``COLUMNS`` names), by their annotations, plus a small table of overrides
(:data:`OVERRIDES`) for the few fields annotated ``Any``; nothing is spelled out per report.

===========================  ==========================================================
annotation                   Arrow type
===========================  ==========================================================
``Money``                    ``decimal128(38, s)``, ``s`` the currency's minor units (the
                             largest when a column mixes currencies; 2 when it is empty),
                             beside the row's ``currency`` column, or a ``<name>_currency``
                             string column when the row has none
``Decimal`` (percents)       ``decimal128(38, s)``, ``s`` the most decimals a value has,
                             at least 2
``date``                     ``date32``
``datetime``                 ``timestamp("us", tz)``, ``tz`` the practice's zone (see
                             :func:`zone_of`)
an ``Enum`` (statuses)       ``dictionary<int32, string>`` of the values
``int`` / ``bool`` / ``str``   ``int64`` / ``bool`` / ``string``
``X | None``                 the type of ``X``, nullable (``None`` is null)
``tuple[X, ...]``            ``list<X>``
===========================  ==========================================================

pyarrow, pandas and polars are imported when a conversion runs; a missing one raises
:class:`~smilepass_core.errors.MissingExtra` naming the extra that installs it.
"""

from __future__ import annotations

import enum
import importlib
import types
import typing
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Final, Literal, Union

import attrs

from smilepass_core import presentation
from smilepass_core.domain import FollowUpAction, Member, MembershipStatus
from smilepass_core.errors import InvalidValue, MissingExtra
from smilepass_core.kpi import Dashboard, Feed, Kpi, Series, SeriesPoint
from smilepass_core.money import Money, minor_units
from smilepass_core.reports._table import Report, Rows, Table
from smilepass_core.reports.weekly import FailedPlan

__all__ = [
    "MONEY_MODES",
    "OVERRIDES",
    "FeedRow",
    "Figure",
    "FigureRow",
    "FigureUnit",
    "MoneyMode",
    "figure_rows",
    "schema_of",
    "to_arrow",
    "to_pandas",
    "to_polars",
    "zone_of",
]

#: How money columns are given: exact decimals (the default), floats for plotting, or
#: integer counts of minor units (cents).
MoneyMode = Literal["decimal", "float", "minor_units"]
MONEY_MODES: Final = ("decimal", "float", "minor_units")

#: The annotation to read a field as, where its own says ``Any`` (or a type variable).
OVERRIDES: Final[Mapping[tuple[type, str], Any]] = {
    (FailedPlan, "balance"): Money,
    (FailedPlan, "actions"): tuple[FollowUpAction, ...],
}

#: The extra that installs each optional module.
_EXTRAS: Final = {"pyarrow": "arrow", "pandas": "pandas", "polars": "polars"}
_PRECISION: Final = 38
_PERCENT_SCALE: Final = 2


def _module(name: str, wanted: str) -> Any:
    """Import ``name`` (pyarrow, pandas, polars) or say which extra installs it."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise MissingExtra(_EXTRAS[name], name, wanted=wanted) from error


# -- the row classes of the dashboard and its feed ---------------------------------------------


class Figure(enum.Enum):
    """The dashboard's headline figures, one or more rows each in its table."""

    MEMBERS = "members"
    RETENTION = "retention"
    PERIOD_RETENTION = "period_retention"
    REVENUE = "revenue"


class FigureUnit(enum.Enum):
    """What a dashboard row's numbers count: members, percent, or money in ``currency``."""

    COUNT = "count"
    PERCENT = "percent"
    MONEY = "money"


@attrs.frozen
class FigureRow(Table):
    """One headline figure of the dashboard (revenue: one row per currency).

    The numbers are exact decimals for every unit, so counts, percents and money share
    typed columns; ``unit`` and ``currency`` say what they are, and no column mixes
    currencies without its ``currency`` beside it.
    """

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "figure",
        "practices",
        "unit",
        "currency",
        "value",
        "this_month_delta",
        "previous",
        "change",
        "goal",
        "progress",
    )

    figure: Figure
    practices: tuple[str, ...]
    unit: FigureUnit
    currency: str | None
    value: Decimal | None
    this_month_delta: Decimal | None
    previous: Decimal | None
    change: Decimal | None
    goal: Decimal | None
    progress: Decimal | None

    @classmethod
    def of(
        cls, figure: Figure, practices: tuple[str, ...], unit: FigureUnit, kpi: Kpi[Any]
    ) -> FigureRow:
        """The row of ``kpi``: its value, delta, previous value, change, goal and progress."""
        currency = kpi.value.currency if isinstance(kpi.value, Money) else None
        return cls(
            figure,
            practices,
            unit,
            currency,
            _number(kpi.value),
            _number(kpi.this_month_delta),
            _number(kpi.previous),
            _number(kpi.change),
            _number(kpi.goal),
            kpi.progress,
        )


def _number(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, Money):
        return value.amount
    return Decimal(value)


@attrs.frozen
class FeedRow(Table):
    """One member of the Latest New Members feed."""

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "member_id",
        "practice",
        "account_holder",
        "dependents",
        "plan_id",
        "status",
        "start_date",
        "first_activated_at",
    )

    member_id: str
    practice: str
    account_holder: str
    dependents: int
    plan_id: str
    status: MembershipStatus
    start_date: date
    first_activated_at: datetime | None

    @classmethod
    def of(cls, member: Member) -> FeedRow:
        """The feed's row of ``member``."""
        return cls(
            member.id,
            member.practice_id,
            member.account_holder.name,
            len(member.dependents),
            member.plan_id,
            member.status,
            member.start_date,
            member.first_activated_at,
        )


# -- column kinds, derived from annotations ------------------------------------------------------


@attrs.frozen
class _Kind:
    """What a column holds: ``name`` one of money, decimal, date, instant, enum, int, bool,
    str, null, list (then ``item`` is the element's kind)."""

    name: str
    item: _Kind | None = None


def _kind(annotation: Any, where: str) -> _Kind:
    """The column kind of an annotation; ``X | None`` is ``X`` (nullable)."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        present = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(present) != 1:
            raise TypeError(f"{where}: no column type for {annotation!r}")
        return _kind(present[0], where)
    if origin is tuple:
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return _Kind("list", _kind(args[0], where))
        raise TypeError(f"{where}: only tuple[X, ...] becomes a list column")
    if annotation is type(None):
        return _Kind("null")
    if isinstance(annotation, type):
        for cls, name in _SIMPLE:
            if issubclass(annotation, cls):
                return _Kind(name)
    raise TypeError(f"{where}: no column type for {annotation!r}; add it to OVERRIDES")


# Order matters: bool before int, datetime before date.
_SIMPLE: Final[tuple[tuple[type, str], ...]] = (
    (Money, "money"),
    (Decimal, "decimal"),
    (bool, "bool"),
    (int, "int"),
    (str, "str"),
    (datetime, "instant"),
    (date, "date"),
    (enum.Enum, "enum"),
)


def _hints(row: type) -> dict[str, Any]:
    """Resolved annotations of ``row``'s fields and of the properties ``COLUMNS`` names."""
    attrs.resolve_types(row)
    hints = {f.name: f.type for f in attrs.fields(row)}
    for name in _columns(row):
        member = getattr(row, name, None)
        if isinstance(member, property) and member.fget is not None:
            hints[name] = typing.get_type_hints(member.fget)["return"]
    return hints


def _columns(row: type) -> tuple[str, ...]:
    names: tuple[str, ...] = getattr(row, "COLUMNS", None) or tuple(
        f.name for f in attrs.fields(row)
    )
    return names


def _kinds(row: type, overrides: Mapping[str, Any] = {}) -> dict[str, _Kind]:
    """Each column of ``row`` with its kind: its annotation, or its override."""
    hints = _hints(row)
    result = {}
    for name in _columns(row):
        annotation = overrides.get(name, OVERRIDES.get((row, name), hints.get(name)))
        result[name] = _kind(annotation, f"{row.__name__}.{name}")
    return result


# -- building the Arrow table -----------------------------------------------------------------


def _scale(values: Iterable[Any]) -> int:
    """The most decimals any Decimal of ``values`` has, at least 2."""
    scale = _PERCENT_SCALE
    for v in values:
        exponent = v.as_tuple().exponent
        if isinstance(exponent, int):
            scale = max(scale, -exponent)
    return scale


def _innermost(kind: _Kind) -> _Kind:
    """The kind of a column's scalars (a list's elements, at any depth)."""
    while kind.item is not None:
        kind = kind.item
    return kind


def _arrow_type(pa: Any, kind: _Kind, values: Sequence[Any], money: str, zone: str) -> Any:
    """The Arrow type of a column of ``kind`` holding ``values`` (see the module's table)."""
    if kind.item is not None:
        inner = [x for v in values if v is not None for x in v]
        return pa.list_(_arrow_type(pa, kind.item, inner, money, zone))
    present = [v for v in values if v is not None]
    if kind.name == "money":
        if money == "currency":  # the column of ISO codes beside a money column
            return pa.string()
        if money == "float":
            return pa.float64()
        if money == "minor_units":
            return pa.int64()
        scales = [minor_units(m.currency) for m in present]
        return pa.decimal128(_PRECISION, max(scales, default=2))
    if kind.name == "decimal":
        return pa.float64() if money == "float" else pa.decimal128(_PRECISION, _scale(present))
    simple = {
        "date": pa.date32(),
        "instant": pa.timestamp("us", tz=zone),
        "enum": pa.dictionary(pa.int32(), pa.string()),
        "int": pa.int64(),
        "bool": pa.bool_(),
        "str": pa.string(),
        "null": pa.null(),
    }
    return simple[kind.name]


def _plain(kind: _Kind, value: Any, money: str) -> Any:
    """``value`` as pyarrow takes it for a column of ``kind``."""
    if value is None:
        return None
    if kind.item is not None:
        return [_plain(kind.item, v, money) for v in value]
    if kind.name == "money":
        if money == "float":
            return value.to_float()
        if money == "minor_units":
            return value.minor
        return value.amount
    if kind.name == "decimal" and money == "float":
        return float(value)
    if kind.name == "enum":
        return value.value
    return value


def _table(
    rows: Collection[Any],
    row: type,
    *,
    zone: str,
    money: str,
    overrides: Mapping[str, Any] = {},
) -> Any:
    """The Arrow table of ``rows`` (all of class ``row``)."""
    pa = _module("pyarrow", "a typed table")
    rows = tuple(rows)  # read once: a report may make its row objects as they are read
    kinds = _kinds(row, overrides)
    names: list[str] = []
    arrays: list[Any] = []
    for name, kind in kinds.items():
        values = [getattr(r, name) for r in rows]
        names.append(name)
        arrays.append(
            pa.array(
                [_plain(kind, v, money) for v in values],
                type=_arrow_type(pa, kind, values, money, zone),
            )
        )
        if _innermost(kind).name == "money" and "currency" not in kinds:
            names.append(f"{name}_currency")
            currency = [_currency(kind, v) for v in values]
            arrays.append(pa.array(currency, type=_arrow_type(pa, kind, [], "currency", zone)))
    return pa.Table.from_arrays(arrays, names=names)


def _currency(kind: _Kind, value: Any) -> Any:
    if value is None:
        return None
    if kind.item is not None:
        return [_currency(kind.item, v) for v in value]
    return value.currency


# -- what each object's table is ----------------------------------------------------------------


def zone_of(obj: Any) -> str:
    """The IANA zone a table's instants are shown in.

    A :class:`~smilepass_core.kpi.Series`, a :class:`~smilepass_core.kpi.Feed` or a
    :class:`~smilepass_core.reports.Rows` carries its own; a report uses its practices'
    zone when they share one, and UTC when they do not (an Arrow column has one zone).
    """
    own = getattr(obj, "timezone", None)
    if isinstance(own, str):
        return own
    shared = obj.shared_timezone if isinstance(obj, Report) else None
    return shared or "UTC"


def figure_rows(board: Dashboard) -> list[FigureRow]:
    practices = board.practices
    rows = [
        FigureRow.of(Figure.MEMBERS, practices, FigureUnit.COUNT, board.members),
        FigureRow.of(Figure.RETENTION, practices, FigureUnit.PERCENT, board.retention),
        FigureRow.of(
            Figure.PERIOD_RETENTION, practices, FigureUnit.PERCENT, board.period_retention
        ),
    ]
    rows += [
        FigureRow.of(Figure.REVENUE, practices, FigureUnit.MONEY, kpi)
        for _, kpi in sorted(board.revenue.items())
    ]
    return rows


def _check_money(money: str) -> None:
    if money not in MONEY_MODES:
        raise InvalidValue("money", money, f"must be one of {', '.join(MONEY_MODES)}")


def _arrow(obj: Any, money: str) -> Any:
    _check_money(money)
    zone = zone_of(obj)
    if isinstance(obj, Report):
        return _table(obj.rows, obj.ROW, zone=zone, money=money)
    if isinstance(obj, Dashboard):
        return _table(figure_rows(obj), FigureRow, zone=zone, money=money)
    if isinstance(obj, Series):
        value = Money if obj.currency is not None else int
        return _table(tuple(obj), SeriesPoint, zone=zone, money=money, overrides={"value": value})
    if isinstance(obj, Feed):
        return _table([FeedRow.of(m) for m in obj], FeedRow, zone=zone, money=money)
    if isinstance(obj, Rows):
        return _table(tuple(obj), obj.row, zone=zone, money=money)
    raise TypeError(f"no typed table for {type(obj).__name__}")


def schema_of(obj: Any) -> Any:
    """The ``pyarrow.Schema`` of ``obj``'s table (extra ``[arrow]``)."""
    return _arrow(obj, "decimal").schema


def to_arrow(obj: Any) -> Any:
    """``obj`` (a report, the dashboard, one of its series, its feed) as a typed
    ``pyarrow.Table``; money exact (extra ``[arrow]``).

    Raises:
        MissingExtra: pyarrow is not installed.
        TypeError: ``obj`` is none of those.
    """
    return _arrow(obj, "decimal")


def _pandas_type(pd: Any, pa: Any) -> Callable[[Any], Any]:
    """Decimals, dates, integers and lists as exact pandas Arrow-backed dtypes; strings,
    dictionaries (categories) and timestamps as pandas' own."""

    def mapper(arrow_type: Any) -> Any:
        keep_arrow = (
            pa.types.is_decimal(arrow_type)
            or pa.types.is_date(arrow_type)
            or pa.types.is_integer(arrow_type)
            or pa.types.is_boolean(arrow_type)
            or pa.types.is_list(arrow_type)
            or pa.types.is_null(arrow_type)
        )
        return pd.ArrowDtype(arrow_type) if keep_arrow else None

    return mapper


def to_pandas(obj: Any, *, money: MoneyMode = "decimal") -> Any:
    """``obj``'s table as a ``pandas.DataFrame`` (extra ``[pandas]``).

    Args:
        obj: What :func:`to_arrow` takes.
        money: ``"decimal"`` (exact: ``decimal128[pyarrow]`` columns), ``"float"``
            (``float64`` money and percents, for plotting) or ``"minor_units"`` (money as
            ``int64`` minor units, e.g. cents; percents stay exact).

    Raises:
        MissingExtra: pandas (or pyarrow) is not installed.
        InvalidValue: an unknown ``money`` mode.
    """
    pd = _module("pandas", "to_pandas()")
    pa = _module("pyarrow", "to_pandas()")
    table = _arrow(obj, money)
    return table.to_pandas(types_mapper=_pandas_type(pd, pa))


def to_polars(obj: Any, *, money: MoneyMode = "decimal") -> Any:
    """``obj``'s table as a ``polars.DataFrame`` (extra ``[polars]``): decimals stay
    ``pl.Decimal``, statuses become ``pl.Categorical``; ``money`` as for :func:`to_pandas`.

    Raises:
        MissingExtra: polars (or pyarrow) is not installed.
        InvalidValue: an unknown ``money`` mode.
    """
    pl = _module("polars", "to_polars()")
    return pl.from_arrow(_arrow(obj, money))


presentation.provide("arrow", to_arrow)
presentation.provide("pandas", to_pandas)
presentation.provide("polars", to_polars)
