"""Practices, their staff, patients and the membership plans they sell."""

from __future__ import annotations

import calendar
import enum
import itertools
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

import attrs

from smilepass_core.domain._fields import choice, day, identifier, text
from smilepass_core.errors import CurrencyMismatch, InvalidValue
from smilepass_core.money import Money, minor_units
from smilepass_core.periods import zone

__all__ = ["BillingCycle", "MembershipPlan", "Patient", "Practice", "PricePoint", "StaffUser"]


def _timezone(instance: Any, attribute: attrs.Attribute[str], value: Any) -> None:
    zone(value)


def _currency(value: Any) -> str:
    minor_units(value)
    return str(value).strip().upper()


@attrs.frozen
class Practice:
    """A dental practice: its own time zone (every boundary is local) and currency."""

    id: str = attrs.field(validator=identifier)
    name: str = attrs.field(validator=text)
    timezone: str = attrs.field(validator=_timezone)
    currency: str = attrs.field(converter=_currency)


@attrs.frozen
class StaffUser:
    """A member of a practice's staff (referrals and members are attributed to them)."""

    id: str = attrs.field(validator=identifier)
    practice_id: str = attrs.field(validator=identifier)
    name: str = attrs.field(validator=text)


@attrs.frozen
class Patient:
    """A person: an account holder or a dependent."""

    id: str = attrs.field(validator=identifier)
    name: str = attrs.field(validator=text)
    email: str | None = attrs.field(default=None, validator=attrs.validators.optional(text))
    phone: str | None = attrs.field(default=None, validator=attrs.validators.optional(text))


class BillingCycle(enum.Enum):
    """How often a membership (or an instalment plan) charges."""

    WEEKLY = "weekly"
    FORTNIGHTLY = "fortnightly"
    MONTHLY = "monthly"
    ANNUALLY = "annually"

    def nth(self, anchor: date, k: int) -> date:
        """The ``k``-th date after ``anchor`` (``k=0`` is the anchor), computed from the anchor.

        Month and year steps clamp to the month's last day without drifting:
        from 31 Jan 2024 the dates are 29 Feb, 31 Mar, 30 Apr, ...

        >>> [str(BillingCycle.MONTHLY.nth(date(2024, 1, 31), k)) for k in range(4)]
        ['2024-01-31', '2024-02-29', '2024-03-31', '2024-04-30']
        """
        if not isinstance(k, int) or isinstance(k, bool) or k < 0:
            raise InvalidValue("k", k, "must be a whole number >= 0")
        if self is BillingCycle.WEEKLY:
            return anchor + timedelta(weeks=k)
        if self is BillingCycle.FORTNIGHTLY:
            return anchor + timedelta(weeks=2 * k)
        months = k if self is BillingCycle.MONTHLY else 12 * k
        years, month = divmod(anchor.month - 1 + months, 12)
        year = anchor.year + years
        if year > date.max.year:
            raise InvalidValue("k", k, f"goes past the year {date.max.year}")
        day = anchor.day
        if day > 28:  # every month has 28 days: only a later day may clamp
            day = min(day, calendar.monthrange(year, month + 1)[1])
        return date(year, month + 1, day)


def _positive_money(instance: Any, attribute: attrs.Attribute[Money], value: Any) -> None:
    if not isinstance(value, Money) or not value.is_positive():
        raise InvalidValue(attribute.name, value, "must be a positive Money")


@attrs.frozen
class PricePoint:
    """An earlier price of a membership plan: billing dates before ``until`` (a local
    date) were charged ``price``."""

    until: date = attrs.field(validator=day)
    price: Money = attrs.field(validator=_positive_money)


def _price_points(value: Any) -> tuple[PricePoint, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidValue("earlier_prices", value, "must be a sequence of PricePoint")
    points = tuple(value)
    if any(not isinstance(p, PricePoint) for p in points):
        raise InvalidValue("earlier_prices", value, "must be a sequence of PricePoint")
    for before, after in itertools.pairwise(points):
        if after.until <= before.until:
            raise InvalidValue(
                "earlier_prices",
                after.until,
                f"must come after the point before it ({before.until})",
            )
    return points


@attrs.frozen
class MembershipPlan:
    """A membership plan a practice sells: a price charged every billing cycle.

    ``price`` is the price now; ``earlier_prices`` the prices before it, oldest first
    (:meth:`reprice` appends one), so a billing date is charged the price of its day
    (:meth:`price_on`) whatever the price became later.
    """

    id: str = attrs.field(validator=identifier)
    practice_id: str = attrs.field(validator=identifier)
    name: str = attrs.field(validator=text)
    price: Money = attrs.field(validator=_positive_money)
    billing_cycle: BillingCycle = attrs.field(**choice(BillingCycle))
    earlier_prices: tuple[PricePoint, ...] = attrs.field(default=(), converter=_price_points)

    def __attrs_post_init__(self) -> None:
        for point in self.earlier_prices:
            if point.price.currency != self.price.currency:
                raise CurrencyMismatch(self.price.currency, point.price.currency, "reprice")

    def charge_date(self, start: date, k: int) -> date:
        """Due date of the ``k``-th charge (``k=0`` at sign-up) of a contract from ``start``."""
        return self.billing_cycle.nth(start, k)

    def price_on(self, day: date) -> Money:
        """The price of a billing date on local date ``day``.

        >>> gold = MembershipPlan("g", "p", "Gold", Money.of("30.00", "AUD"), BillingCycle.MONTHLY)
        >>> dearer = gold.reprice(Money.of("35.00", "AUD"), on=date(2025, 1, 1))
        >>> [str(dearer.price_on(d)) for d in (date(2024, 12, 31), date(2025, 1, 1))]
        ['AUD 30.00', 'AUD 35.00']
        """
        for point in self.earlier_prices:
            if day < point.until:
                return point.price
        return self.price

    def reprice(self, price: Money, *, on: date) -> MembershipPlan:
        """This plan charging ``price`` for billing dates on or after the local date ``on``
        (the price before is kept for the dates before it).

        Raises:
            InvalidValue: ``on`` is not after the last repricing, or ``price`` is not a
                positive Money.
            CurrencyMismatch: ``price`` is in another currency.
        """
        if not isinstance(on, date) or isinstance(on, datetime):
            raise InvalidValue("on", on, "must be a date (not a datetime)")
        last = self.earlier_prices[-1].until if self.earlier_prices else None
        if last is not None and on <= last:
            raise InvalidValue("on", on, f"must come after the last repricing ({last})")
        if isinstance(price, Money) and price.currency != self.price.currency:
            raise CurrencyMismatch(self.price.currency, price.currency, "reprice")
        return attrs.evolve(
            self, price=price, earlier_prices=(*self.earlier_prices, PricePoint(on, self.price))
        )
