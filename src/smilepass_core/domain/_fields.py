"""Field validators and converters shared by the domain types."""

from __future__ import annotations

import enum
import functools
from datetime import date, datetime
from typing import Any

import attrs

from smilepass_core.errors import InvalidValue

__all__ = ["choice", "day", "identifier", "of_type", "optional_identifier", "text", "whole"]


def identifier(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """A non-empty string id without surrounding spaces."""
    if not isinstance(value, str) or not value or value != value.strip():
        raise InvalidValue(attribute.name, value, "must be a non-empty id string")


def optional_identifier(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """``None`` or an id."""
    if value is not None:
        identifier(instance, attribute, value)


def text(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """A non-blank string."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(attribute.name, value, "must be a non-blank string")


def day(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """A calendar date (a datetime is refused: it is an instant, not a day)."""
    if not isinstance(value, date) or isinstance(value, datetime):
        raise InvalidValue(attribute.name, value, "must be a date (not a datetime)")


def whole(minimum: int) -> Any:
    """An int (not a bool) of at least ``minimum``."""
    return functools.partial(_at_least, minimum)


def _at_least(minimum: int, instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Refuse a non-int, a bool, or an int below ``minimum``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidValue(attribute.name, value, f"must be a whole number >= {minimum}")


def choice(kind: type[enum.Enum]) -> dict[str, Any]:
    """``attrs.field`` arguments for an enum field: a host string (``"monthly"``, any case,
    spaces around) is parsed to the member with that value, as statuses are; anything else
    that is not a member raises :class:`InvalidValue` naming the field and the choices.
    """
    return {
        "converter": functools.partial(_parse_choice, kind),
        "validator": functools.partial(_is_choice, kind),
    }


def _parse_choice(kind: type[enum.Enum], value: Any) -> Any:
    if isinstance(value, str):
        key = value.strip().lower()
        for member in kind:
            if member.value == key:
                return member
    return value


def _is_choice(
    kind: type[enum.Enum], instance: Any, attribute: attrs.Attribute[Any], value: Any
) -> None:
    if not isinstance(value, kind):
        allowed = ", ".join(str(m.value) for m in kind)
        raise InvalidValue(attribute.name, value, f"must be a {kind.__name__}: {allowed}")


def of_type(kind: type) -> Any:
    """A value of ``kind`` (``bool`` alone is exact: ``1`` is not ``True``), else
    :class:`InvalidValue` naming the field (attrs' ``instance_of`` raises ``TypeError``)."""
    return functools.partial(_of_type, kind)


def _of_type(kind: type, instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, kind):
        raise InvalidValue(attribute.name, value, f"must be a {kind.__name__}")
