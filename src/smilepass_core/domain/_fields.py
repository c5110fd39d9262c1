"""Field validators and converters shared by the domain types."""

from __future__ import annotations

import functools
from datetime import date, datetime
from typing import Any

import attrs

from smilepass_core.errors import InvalidValue

__all__ = ["day", "identifier", "optional_identifier", "text", "whole"]


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
