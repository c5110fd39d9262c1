"""Objects to rows and back, by the layouts of :mod:`smilepass_core.sql.schema`.

Writing an aggregate gives its table's row (stored fields, then the query columns)
and one list of rows per child table. Reading builds the object through its
constructor, so every domain rule is checked again: a value another program wrote
that the library cannot hold raises :class:`~smilepass_core.errors.InvalidRow`
naming the table, the row's id and the column.
"""

from __future__ import annotations

import functools
import json
import typing
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

import attrs

from smilepass_core.domain import Member, MembershipStatus, PaymentPlan, Referral
from smilepass_core.errors import InvalidRow, SmilepassError, UnknownCurrency
from smilepass_core.money import CURRENCIES, Money, exact_decimal
from smilepass_core.sql.schema import KEY_SCALE, Field, Layout, _optional

__all__ = ["amount_key", "decode", "encode", "spans"]

Row = Mapping[Any, Any]


def _value(obj: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        if obj is None:  # inside an optional object that is absent
            return None
        obj = getattr(obj, name)
    return obj


def _fields_row(fields: Iterable[Field], obj: Any) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for f in fields:
        value = _value(obj, f.path)
        if f.kind == "money":
            row[f"{f.column}_minor"] = None if value is None else value.minor
            row[f"{f.column}_currency"] = None if value is None else value.currency
        elif f.kind == "enum":
            row[f.column] = None if value is None else value.value
        elif f.kind == "decimal":
            row[f.column] = None if value is None else str(value)
        elif f.kind == "ids":
            row[f.column] = None if value is None else json.dumps(sorted(value))
        elif f.kind == "counts":
            row[f.column] = None if value is None else json.dumps(list(value))
        else:
            row[f.column] = value
    return row


def amount_key(amount: Money) -> int:
    """``amount`` in whole units of 10^-KEY_SCALE: sorts like ``amount.amount`` across
    currencies with different decimals."""
    return amount.minor * int(10 ** (KEY_SCALE - CURRENCIES[amount.currency]))


def _query_row(table: str, obj: Any) -> dict[str, Any]:
    """The query columns of ``obj`` (schema ``_QUERY_COLUMNS``)."""
    if isinstance(obj, Member):
        return {
            "status": obj.status.value,
            "created_at": obj.created_at,
            "first_activated_at": obj.first_activated_at,
            "account_holder_key": obj.account_holder.name.casefold(),
            "dependent_count": len(obj.dependents),
        }
    if isinstance(obj, PaymentPlan):
        following = obj.next_instalment
        return {
            "status": obj.status.value,
            "created_at": obj.created_at,
            "committed_at": obj.committed_at,
            "patient_key": obj.patient.name.casefold(),
            "paid_count": obj.paid_count,
            "instalment_count": obj.instalment_count,
            "balance_key": amount_key(obj.balance),
            "total_key": amount_key(obj.total),
            "next_due": None if following is None else following.due_date,
        }
    if isinstance(obj, Referral):
        return {
            "status": obj.status.value,
            "converted_at": obj.converted_at,
            "account_holder_key": obj.account_holder.name.casefold(),
            "dependent_count": len(obj.dependents),
        }
    if table == "payments":
        return {"amount_key": amount_key(obj.amount)}
    return {}


def encode(
    layout: Layout, obj: Any, version: int
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """``obj``'s row in ``layout.table`` and its child rows per child table name."""
    row = _fields_row(layout.fields, obj) | {"version": version}
    row |= _query_row(layout.table.name, obj)
    children: dict[str, list[dict[str, Any]]] = {}
    for attribute, child in layout.children.items():
        assert child.parent_key is not None
        children[child.table.name] = [
            {child.parent_key: obj.id, "seq": seq} | _fields_row(child.fields, item)
            for seq, item in enumerate(getattr(obj, attribute))
        ]
    return row, children


def spans(member: Member) -> list[dict[str, Any]]:
    """The member's Active intervals: ``start_at`` when it became Active, ``end_at`` when
    it left (None while Active). Active at boundary B exactly when ``start_at < B <= end_at``
    (the change that ends a span is not before a boundary at that very instant)."""
    rows: list[dict[str, Any]] = []
    for change in member.history:
        active = change.to is MembershipStatus.ACTIVE
        was = change.from_ is MembershipStatus.ACTIVE
        if active and not was:
            rows.append(
                {
                    "member_id": member.id,
                    "seq": len(rows),
                    "practice_id": member.practice_id,
                    "start_at": change.at,
                    "end_at": None,
                }
            )
        elif was and not active:
            rows[-1]["end_at"] = change.at
    return rows


@functools.cache
def _nested(cls: type) -> Mapping[str, tuple[type, bool]]:
    """The attrs classes of ``cls``'s nested fields (a patient, a campaign's discount), by
    field name, each with whether it is optional."""
    hints = typing.get_type_hints(cls)
    found = {}
    for a in attrs.fields(cls):
        hint, optional = _optional(hints[a.name])
        if isinstance(hint, type) and attrs.has(hint) and not issubclass(hint, Money):
            found[a.name] = (hint, optional)
    return found


def _absent(values: Any) -> bool:
    """Whether every column of a nested object was empty."""
    if isinstance(values, Mapping):
        return all(_absent(v) for v in values.values())
    return values is None


def _read_fields(fields: Iterable[Field], row: Row, table: str, id: str) -> dict[str, Any]:
    """The fields' values from ``row``, nested by attribute path."""
    values: dict[str, Any] = {}
    for f in fields:
        try:
            value = _read(f, row)
        except (SmilepassError, ValueError, TypeError, ArithmeticError) as error:
            column = f.columns[0]
            if f.kind == "money" and isinstance(error, UnknownCurrency):
                column = f.columns[1]
            raise InvalidRow(table, id, column, _reason(error)) from error
        place = values
        for name in f.path[:-1]:
            place = place.setdefault(name, {})
        place[f.path[-1]] = value
    return values


def _read(f: Field, row: Row) -> Any:
    if f.kind == "money":
        minor, currency = row[f"{f.column}_minor"], row[f"{f.column}_currency"]
        if minor is None and currency is None and f.nullable:
            return None
        if isinstance(minor, bool) or int(minor) != minor:
            raise ValueError(f"{minor!r} is not a whole number of minor units")
        return Money.from_minor(int(minor), currency)
    raw = row[f.column]
    if raw is None:
        if not f.nullable:
            raise ValueError("is empty (NULL) where a value is required")
        return None
    if f.kind == "enum":
        try:
            return f.of(raw)
        except ValueError:
            allowed = ", ".join(m.value for m in f.of)
            raise ValueError(f"unknown value {raw!r}; allowed: {allowed}") from None
    if f.kind == "decimal":
        return exact_decimal(raw, f.column)
    if f.kind == "ids":
        ids = json.loads(raw)
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValueError(f"{raw!r} is not a JSON array of ids")
        return frozenset(ids)
    if f.kind == "counts":
        counts = json.loads(raw)
        if not isinstance(counts, list) or not all(type(n) is int for n in counts):
            raise ValueError(f"{raw!r} is not a JSON array of whole numbers")
        return tuple(counts)
    if f.of is bool and raw not in (True, False):
        raise ValueError(f"{raw!r} is not a yes/no value")
    if f.of is date and not isinstance(raw, date):
        raise ValueError(f"{raw!r} is not a date")
    return raw


def _column(fields: Iterable[Field], error: SmilepassError, default: str) -> str:
    """The column an error's field is kept in (``amount`` -> ``amount_minor``)."""
    name = str(getattr(error, "field", "") or "")
    for f in fields:
        if name in (f.path[-1], f.column):
            return f.columns[0]
    return name or default


def _reason(error: BaseException) -> str:
    return str(error) or type(error).__name__


def _build(cls: type, values: Mapping[str, Any]) -> Any:
    kwargs = dict(values)
    for name, (inner, optional) in _nested(cls).items():
        if name in kwargs:
            value = kwargs[name]
            kwargs[name] = None if optional and _absent(value) else _build(inner, value)
    return cls(**kwargs)


def decode(layout: Layout, row: Row, children: Mapping[str, Sequence[Row]]) -> Any:
    """The object kept as ``row`` with its child rows (each list in ``seq`` order).

    Raises:
        InvalidRow: a value the library cannot hold, naming table, id and column.
    """
    table = layout.table.name
    id = str(row["id"])
    values = _read_fields(layout.fields, row, table, id)
    for attribute, child in layout.children.items():
        items = []
        for child_row in children.get(child.table.name, ()):
            where = f"{id}#{child_row['seq']}"
            item_values = _read_fields(child.fields, child_row, child.table.name, where)
            try:
                items.append(_build(child.cls, item_values))
            except SmilepassError as error:
                column = _column(child.fields, error, "seq")
                raise InvalidRow(child.table.name, where, column, _reason(error)) from error
        values[attribute] = tuple(items)
    try:
        return _build(layout.cls, values)
    except SmilepassError as error:
        raise InvalidRow(table, id, _column(layout.fields, error, "id"), _reason(error)) from error
