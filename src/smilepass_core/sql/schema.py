"""The relational schema: one table per aggregate, child tables for its sequences.

Tables and columns are derived from the domain types' attrs fields
(:data:`~smilepass_core.repositories.STORE_TYPES` names the aggregates), so the
schema and the types cannot drift apart:

- a text, whole-number, yes/no or date field is one column of that type;
- an instant is a UTC timestamp (:class:`UtcInstant`);
- a status or kind is text with a ``CHECK`` listing the values the library knows;
- an amount ``price`` is two columns, ``price_minor`` (whole minor units) and
  ``price_currency``: exact, whatever the currency's decimals;
- a percentage is its exact decimal text; a set of ids a sorted JSON array; a
  tuple of whole numbers (a template's instalment counts) a JSON array of them, in
  order;
- a nested value (a patient) is flattened: ``account_holder_id``,
  ``account_holder_name``, ...;
- a sequence (status history, dependents, instalments, attempts) is a child table
  ``<table>_<field>`` keyed by the parent's id and ``seq``, the position.

Each aggregate table also has a ``version`` and the *query columns* the library
maintains on every write, which the lists and the KPI reads filter and sort on
(``status``, ``first_activated_at``, ``committed_at``, sort keys, ...); members
have ``members_active_spans``, the intervals during which they were Active.
docs/sql.md shows the DDL.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final, TypeVar

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from smilepass_core.domain import MembershipStatus, PaymentPlanStatus, ReferralStatus
from smilepass_core.errors import NaiveDatetime
from smilepass_core.money import CURRENCIES, Money
from smilepass_core.repositories import STORE_TYPES

__all__ = [
    "AMOUNTS",
    "KEY_SCALE",
    "REFERENCES",
    "Day",
    "Field",
    "Layout",
    "UtcInstant",
    "create_schema",
    "ddl",
    "layouts",
    "metadata",
]

#: Amount sort keys are whole units of 10^-KEY_SCALE (the most decimals of any currency),
#: so amounts in currencies with different decimals sort by value, exactly.
KEY_SCALE: Final = max(CURRENCIES.values())

#: Column renames: ``from_`` and ``to`` read badly (and TO is reserved in SQL).
_RENAMED: Final = {"from_": "from_status", "to": "to_status"}


class UtcInstant(sa.types.TypeDecorator[datetime]):
    """An aware instant kept as a UTC timestamp without zone; read back aware, in UTC."""

    impl = sa.DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise NaiveDatetime("instant", value, "must carry a time zone")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:  # a column another program declared with a zone
            return value.astimezone(UTC)  # type: ignore[no-any-return]
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]


class Day(sa.types.TypeDecorator[date]):
    """A calendar date (``DATE``). On SQLite, text ``YYYY-MM-DD`` read without SQLAlchemy's
    parser, so text that is no date comes back as text and is refused as
    :class:`~smilepass_core.errors.InvalidRow` naming its column, not a bare ``ValueError``."""

    impl = sa.Date()
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String())
        return dialect.type_descriptor(sa.Date())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if dialect.name == "sqlite" and isinstance(value, date):
            return value.isoformat()
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if dialect.name == "sqlite" and isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                return value  # the codec refuses it, naming the column
        return value


def _text() -> sa.types.TypeEngine[str]:
    """Text that compares and sorts by code point, as Python does (PostgreSQL: ``"C"``)."""
    return sa.String().with_variant(sa.String(collation="C"), "postgresql")


@attrs.frozen
class Field:
    """One stored field: its attribute path, its column(s) and how a value is kept.

    ``kind`` is ``"plain"``, ``"instant"``, ``"enum"`` (``of`` is the Enum), ``"money"``
    (columns ``<column>_minor`` and ``<column>_currency``), ``"decimal"`` (exact, as its
    text), ``"ids"`` (a set of ids, as a JSON array sorted) or ``"counts"`` (a tuple of
    whole numbers, as a JSON array in its order).
    """

    path: tuple[str, ...]
    column: str
    kind: str
    nullable: bool
    of: Any = None

    @property
    def columns(self) -> tuple[str, ...]:
        """The column names this field is kept in."""
        if self.kind == "money":
            return (f"{self.column}_minor", f"{self.column}_currency")
        return (self.column,)


@attrs.frozen
class Layout:
    """How one type is kept: its table, its fields, and its child sequences."""

    cls: type
    table: sa.Table
    fields: tuple[Field, ...]
    children: Mapping[str, Layout]
    parent_key: str | None = None

    def stored_columns(self) -> Iterator[str]:
        """Every column a field is kept in."""
        for f in self.fields:
            yield from f.columns


def _optional(hint: Any) -> tuple[Any, bool]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


def _fields(
    cls: type, bindings: Mapping[Any, Any], prefix: tuple[str, ...] = ()
) -> tuple[list[Field], dict[str, tuple[str, Any]]]:
    """The flat fields of ``cls`` (nested attrs classes flattened) and its sequences."""
    hints = typing.get_type_hints(cls)
    flat: list[Field] = []
    sequences: dict[str, tuple[str, Any]] = {}
    for attribute in attrs.fields(cls):
        hint, nullable = _optional(hints[attribute.name])
        hint = bindings.get(hint, hint)
        path = (*prefix, attribute.name)
        column = "_".join(_RENAMED.get(p, p) for p in path)
        origin = typing.get_origin(hint)
        if origin is tuple and typing.get_args(hint) == (int, ...):
            flat.append(Field(path, column, "counts", nullable))
        elif origin is tuple:
            sequences[attribute.name] = (column, typing.get_args(hint)[0])
        elif isinstance(hint, type) and issubclass(hint, Money):
            flat.append(Field(path, column, "money", nullable))
        elif isinstance(hint, type) and issubclass(hint, enum.Enum):
            flat.append(Field(path, column, "enum", nullable, hint))
        elif hint is datetime:
            flat.append(Field(path, column, "instant", nullable))
        elif hint in (str, int, bool, date):
            flat.append(Field(path, column, "plain", nullable, hint))
        elif hint is Decimal:
            flat.append(Field(path, column, "decimal", nullable))
        elif origin is frozenset:
            flat.append(Field(path, column, "ids", nullable))
        elif attrs.has(hint):
            inner, more = _fields(hint, bindings, path)
            # An optional object (a campaign's discount) may leave every column empty.
            flat += [attrs.evolve(f, nullable=True) for f in inner] if nullable else inner
            sequences |= more
        else:  # pragma: no cover - a new field type must be given a column here
            raise TypeError(f"{cls.__name__}.{attribute.name}: no column type for {hint!r}")
    return flat, sequences


def _columns(fields: tuple[Field, ...]) -> Iterator[sa.Column[Any]]:
    for f in fields:
        if f.kind == "money":
            yield sa.Column(f"{f.column}_minor", sa.BigInteger, nullable=f.nullable)
            yield sa.Column(f"{f.column}_currency", sa.String(3), nullable=f.nullable)
        elif f.kind == "instant":
            yield sa.Column(f.column, UtcInstant(), nullable=f.nullable)
        elif f.kind in ("enum", "decimal", "ids", "counts"):
            yield sa.Column(f.column, _text(), nullable=f.nullable)
        else:
            kinds: dict[Any, sa.types.TypeEngine[Any]] = {
                str: _text(),
                int: sa.Integer(),
                bool: sa.Boolean(),
                date: Day(),
            }
            yield sa.Column(f.column, kinds[f.of], nullable=f.nullable)


def _checks(table: str, fields: tuple[Field, ...]) -> Iterator[sa.CheckConstraint]:
    for f in fields:
        if f.kind == "enum":
            values = ", ".join(f"'{m.value}'" for m in f.of)
            yield sa.CheckConstraint(f"{f.column} IN ({values})", name=f"{table}_{f.column}_known")
        if f.kind == "money":
            yield sa.CheckConstraint(
                f"length({f.column}_currency) = 3", name=f"{table}_{f.column}_currency_code"
            )


#: The query columns of each aggregate table: maintained on every write, never read back
#: into objects (docs/sql.md, "Query columns").
_QUERY_COLUMNS: Final[Mapping[str, tuple[tuple[str, Any, bool], ...]]] = {
    "members": (
        ("status", MembershipStatus, False),
        ("created_at", datetime, False),
        ("first_activated_at", datetime, True),
        ("account_holder_key", str, False),
        ("dependent_count", int, False),
    ),
    "payment_plans": (
        ("status", PaymentPlanStatus, False),
        ("created_at", datetime, False),
        ("committed_at", datetime, True),
        ("patient_key", str, False),
        ("paid_count", int, False),
        ("instalment_count", int, False),
        ("balance_key", Money, False),
        ("total_key", Money, False),
        ("next_due", date, True),
    ),
    "referrals": (
        ("status", ReferralStatus, False),
        ("converted_at", datetime, True),
        ("account_holder_key", str, False),
        ("dependent_count", int, False),
    ),
    "payments": (("amount_key", Money, False),),
}


def _query_column(table: str, name: str, kind: Any, nullable: bool) -> Iterator[Any]:
    if kind is datetime:
        yield sa.Column(name, UtcInstant(), nullable=nullable)
    elif kind is Money:  # a sort key: whole units of 10^-KEY_SCALE
        yield sa.Column(name, sa.BigInteger, nullable=nullable)
    elif isinstance(kind, type) and issubclass(kind, enum.Enum):
        yield sa.Column(name, _text(), nullable=nullable)
        values = ", ".join(f"'{m.value}'" for m in kind)
        yield sa.CheckConstraint(f"{name} IN ({values})", name=f"{table}_{name}_known")
    else:
        yield from _columns((Field((name,), name, "plain", nullable, kind),))


#: Foreign keys of aggregate tables: column -> referenced table (in the order a write
#: checks them; every one must stay within the object's practice).
REFERENCES: Final[Mapping[str, Mapping[str, str]]] = {
    "staff_users": {"practice_id": "practices"},
    "membership_plans": {"practice_id": "practices"},
    "campaigns": {"practice_id": "practices"},
    "payment_plan_templates": {"practice_id": "practices"},
    "members": {
        "practice_id": "practices",
        "plan_id": "membership_plans",
        "campaign_id": "campaigns",
        "staff_user_id": "staff_users",
    },
    "payment_plans": {
        "practice_id": "practices",
        "member_id": "members",
        "template_id": "payment_plan_templates",
    },
    "referrals": {
        "practice_id": "practices",
        "campaign_id": "campaigns",
        "staff_user_id": "staff_users",
        "referring_member_id": "members",
        "member_id": "members",
    },
    "payments": {
        "practice_id": "practices",
        "member_id": "members",
        "payment_plan_id": "payment_plans",
    },
}

#: The amount field of each aggregate that holds one: kept in the practice's currency (a
#: template's other amounts are in its ``min_total``'s, by the domain's rule).
AMOUNTS: Final[Mapping[str, str]] = {
    "membership_plans": "price",
    "payment_plan_templates": "min_total",
    "payment_plans": "total",
    "payments": "amount",
}

#: Indexes beyond the keys: what the KPI reads and the lists filter on.
_INDEXES: Final[Mapping[str, tuple[tuple[str, ...], ...]]] = {
    "staff_users": (("practice_id",),),
    "membership_plans": (("practice_id",),),
    "campaigns": (("practice_id",),),
    "payment_plan_templates": (("practice_id",),),
    "members": (
        ("practice_id", "first_activated_at"),
        ("practice_id", "status"),
        ("campaign_id",),
    ),
    "payment_plans": (("practice_id", "committed_at"), ("member_id",), ("template_id",)),
    "referrals": (("practice_id", "converted_at"), ("campaign_id",)),
    "payments": (("practice_id", "at"), ("member_id",), ("payment_plan_id",)),
}


def _parent_key(table: str) -> str:
    """``members`` -> ``member_id``: the child tables' column naming their parent."""
    return {"practices": "practice", "staff_users": "staff_user"}.get(
        table, table.removesuffix("s")
    ) + "_id"


def _build(meta: sa.MetaData) -> dict[str, Layout]:
    built: dict[str, Layout] = {}
    for name, cls in STORE_TYPES.items():
        flat, sequences = _fields(cls, {})
        fields = tuple(flat)
        refs = REFERENCES.get(name, {})
        columns: list[Any] = []
        for column in _columns(fields):
            if column.name in refs:
                column.append_foreign_key(sa.ForeignKey(f"{refs[column.name]}.id"))
            column.primary_key = column.name == "id"
            columns.append(column)
        columns.append(sa.Column("version", sa.Integer, nullable=False))
        for query_column in _QUERY_COLUMNS.get(name, ()):
            columns += _query_column(name, *query_column)
        columns += _checks(name, fields)
        columns.append(sa.CheckConstraint("version >= 1", name=f"{name}_version_positive"))
        table = sa.Table(name, meta, *columns)
        for key in _INDEXES.get(name, ()):
            sa.Index(f"{name}_by_{'_'.join(key)}", *(table.c[k] for k in key))
        children: dict[str, Layout] = {}
        for attribute, (column_prefix, element) in sequences.items():
            children[attribute] = _child(meta, name, column_prefix, element)
        built[name] = Layout(cls, table, fields, children)
    _spans(meta)
    return built


def _child(meta: sa.MetaData, parent: str, column: str, element: Any) -> Layout:
    """The child table ``<parent>_<column>`` of a sequence of ``element`` values."""
    origin = typing.get_origin(element) or element
    bindings: dict[Any, Any] = {}
    if typing.get_origin(element) is not None:
        params: tuple[TypeVar, ...] = getattr(origin, "__parameters__", ())
        bindings = dict(zip(params, typing.get_args(element), strict=True))
    flat, nested = _fields(origin, bindings)
    assert not nested, f"{origin.__name__}: sequences inside sequences are not kept"
    fields = tuple(flat)
    name = f"{parent}_{column}"
    key = _parent_key(parent)
    table = sa.Table(
        name,
        meta,
        sa.Column(
            key, _text(), sa.ForeignKey(f"{parent}.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("seq", sa.Integer, primary_key=True),
        *_columns(fields),
        *_checks(name, fields),
    )
    return Layout(origin, table, fields, {}, key)


def _spans(meta: sa.MetaData) -> sa.Table:
    """``members_active_spans``: each interval a member was Active, ``[start_at, end_at]``
    as boundaries go (Active at boundary B when ``start_at < B <= end_at``; ``end_at`` is
    NULL while still Active)."""
    table = sa.Table(
        "members_active_spans",
        meta,
        sa.Column(
            "member_id", _text(), sa.ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("practice_id", _text(), sa.ForeignKey("practices.id"), nullable=False),
        sa.Column("start_at", UtcInstant(), nullable=False),
        sa.Column("end_at", UtcInstant(), nullable=True),
    )
    sa.Index("members_active_spans_by_practice_start", table.c.practice_id, table.c.start_at)
    sa.Index("members_active_spans_by_practice_end", table.c.practice_id, table.c.end_at)
    return table


#: Every table of the store.
metadata: Final = sa.MetaData()
#: How each aggregate (by repository name) is kept.
layouts: Final[Mapping[str, Layout]] = _build(metadata)
#: The spans table (see :func:`_spans`).
SPANS: Final = metadata.tables["members_active_spans"]


def create_schema(engine: sa.engine.Engine) -> None:
    """Create every table, key, index and check of the store that does not exist yet."""
    metadata.create_all(engine)


def ddl(dialect: str = "postgresql") -> str:
    """The ``CREATE TABLE`` and ``CREATE INDEX`` statements :func:`create_schema` runs on
    ``dialect`` (``"postgresql"`` or ``"sqlite"``), each ending with ``;``."""
    from sqlalchemy.dialects import postgresql, sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    dialects: dict[str, Any] = {"postgresql": postgresql.dialect, "sqlite": sqlite.dialect}
    engine = dialects[dialect]()
    statements = []
    for table in metadata.sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=engine)).strip())
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            statements.append(str(CreateIndex(index).compile(dialect=engine)).strip())
    lines = "\n".join(f"{s};" for s in statements).replace("\t", "    ").splitlines()
    return "\n".join(line.rstrip() for line in lines) + "\n"
