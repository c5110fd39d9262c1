"""Discounts on a membership's price: a percentage or a fixed amount, on some plans, for a
number of billing dates or for ever, granted once, per dependent or per converted referral
(docs/domain.md, "Discounts").

- A :class:`Discount` is the practice's rule; an :class:`AppliedDiscount` is that rule
  granted to one membership: how many **units** it earns (1 for a flat discount, the
  number of dependents or of converted referrals otherwise, at most ``limit``) and the
  billing date ``first`` (its number, 0 at sign-up) from which it runs.
- On the ``k``-th billing date an applied discount is **in force** when
  ``first <= k < first + cycles`` (no ``cycles``: for ever) and it covers the plan.
- Its **reduction** there: ``price x percent / 100 x units`` rounded once, half up, to the
  minor unit; or ``amount x units``.
- Reductions are taken in the order given, each on the list price (they add, they do not
  compound), and the last ones are cut so that their sum never exceeds the price: the
  price due is never negative, and ``due + sum(reductions) == list price`` exactly.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any

import attrs

from smilepass_core.domain._fields import choice, identifier, text
from smilepass_core.domain.practices import MembershipPlan
from smilepass_core.errors import CurrencyMismatch, InvalidValue
from smilepass_core.money import Money, exact_decimal, round_exact

__all__ = [
    "AppliedDiscount",
    "Discount",
    "DiscountBasis",
    "PriceDue",
    "check_discount_currency",
    "check_grant_currency",
    "price_due",
]


class DiscountBasis(enum.Enum):
    """What a discount is granted for: once, per dependent, or per converted referral."""

    FLAT = "flat"
    PER_DEPENDENT = "per_dependent"
    PER_REFERRAL = "per_referral"


def _percent(value: Any) -> Decimal | None:
    if value is None:
        return None
    result = exact_decimal(value, "percent")
    if not 0 < result <= 100:
        raise InvalidValue("percent", value, "must be more than 0 and at most 100")
    return result


def _amount(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, Money):
        raise InvalidValue("amount", value, "must be Money")
    if not value.is_positive():
        raise InvalidValue("amount", value, "must be more than zero")


def _count(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidValue(attribute.name, value, "must be a whole number >= 1 (or None)")


def _plan_ids(value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidValue("plans", value, "must be a collection of plan ids (or None: all)")
    ids = frozenset(value)
    if any(not isinstance(i, str) or not i for i in ids):
        raise InvalidValue("plans", value, "must be a collection of plan ids (or None: all)")
    if not ids:
        raise InvalidValue("plans", value, "name at least one plan (or None: all)")
    return ids


@attrs.frozen
class Discount:
    """A practice's discount rule.

    Attributes:
        id, practice_id, name: Who it is.
        percent: A share of the price (more than 0, at most 100), or ``None``.
        amount: A fixed amount off (positive Money), or ``None``; exactly one of the two.
        basis: Granted once, per dependent or per converted referral.
        plans: The membership plan ids it applies to; ``None``: every plan.
        cycles: For how many billing dates it runs once granted; ``None``: for ever.
        limit: The most units it counts (dependents, referrals); ``None``: no limit.
    """

    id: str = attrs.field(validator=identifier)
    practice_id: str = attrs.field(validator=identifier)
    name: str = attrs.field(validator=text)
    percent: Decimal | None = attrs.field(default=None, converter=_percent)
    amount: Money | None = attrs.field(default=None, validator=_amount)
    basis: DiscountBasis = attrs.field(default=DiscountBasis.FLAT, **choice(DiscountBasis))
    plans: frozenset[str] | None = attrs.field(default=None, converter=_plan_ids)
    cycles: int | None = attrs.field(default=None, validator=_count)
    limit: int | None = attrs.field(default=None, validator=_count)

    def __attrs_post_init__(self) -> None:
        if (self.percent is None) == (self.amount is None):
            raise InvalidValue("percent", self.percent, "give exactly one of percent and amount")

    def covers(self, plan: MembershipPlan) -> bool:
        """Whether it applies to ``plan`` (same practice, and listed or every plan)."""
        return plan.practice_id == self.practice_id and (
            self.plans is None or plan.id in self.plans
        )

    def reduction(self, price: Money, units: int = 1) -> Money:
        """What ``units`` of it take off ``price`` (before the cap at the price).

        Raises:
            CurrencyMismatch: a fixed amount in another currency than ``price``.
        """
        if self.amount is not None:
            if self.amount.currency != price.currency:
                raise CurrencyMismatch(self.amount.currency, price.currency, "discount")
            return self.amount * units
        assert self.percent is not None
        exact = price.minor * Fraction(self.percent) * units / 100
        rounded = round_exact(exact)
        return Money.from_minor(rounded, price.currency)


def _units(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidValue(attribute.name, value, "must be a whole number >= 0")


@attrs.frozen
class AppliedDiscount:
    """A discount granted to one membership: ``units`` of it (capped at the discount's
    ``limit``), in force from billing date number ``first``."""

    discount: Discount = attrs.field(validator=attrs.validators.instance_of(Discount))
    units: int = attrs.field(default=1, validator=_units)
    first: int = attrs.field(default=0, validator=_units)

    @property
    def counted(self) -> int:
        """The units that count: ``units``, at most the discount's ``limit``; 1 at most for
        a flat discount."""
        cap = 1 if self.discount.basis is DiscountBasis.FLAT else self.discount.limit
        return self.units if cap is None else min(self.units, cap)

    def in_force(self, number: int) -> bool:
        """Whether it runs on billing date ``number``."""
        cycles = self.discount.cycles
        return self.first <= number and (cycles is None or number < self.first + cycles)


@attrs.frozen
class PriceDue:
    """The price of one billing date: the list price, each discount's reduction (by
    discount id, in the order applied; only those taking something off), what is due."""

    list_price: Money
    reductions: tuple[tuple[str, Money], ...]
    due: Money

    @property
    def discount(self) -> Money:
        """The sum of the reductions: ``list_price - due``."""
        return self.list_price - self.due


def price_due(
    plan: MembershipPlan,
    number: int,
    applied: Iterable[AppliedDiscount] = (),
    *,
    on: date | None = None,
) -> PriceDue:
    """The price of ``plan``'s billing date ``number`` (0 at sign-up) with ``applied``: its
    list price is the plan's price on the date ``on`` (:meth:`MembershipPlan.price_on`;
    without it, the price now).

    >>> from smilepass_core import BillingCycle
    >>> gold = MembershipPlan("gold", "p", "Gold", Money.of("30.00", "AUD"), BillingCycle.MONTHLY)
    >>> family = Discount("fam", "p", "Family", percent=10, basis=DiscountBasis.PER_DEPENDENT)
    >>> promo = Discount("spring", "p", "Spring", amount=Money.of("5.00", "AUD"), cycles=3)
    >>> offers = [AppliedDiscount(family, units=2), AppliedDiscount(promo)]
    >>> [str(price_due(gold, k, offers).due) for k in (0, 2, 3)]
    ['AUD 19.00', 'AUD 19.00', 'AUD 24.00']

    Raises:
        InvalidValue: ``number`` is negative.
        CurrencyMismatch: a fixed discount in another currency than the plan.
    """
    if not isinstance(number, int) or isinstance(number, bool) or number < 0:
        raise InvalidValue("number", number, "must be a whole number >= 0")
    price = plan.price if on is None else plan.price_on(on)
    left = price
    reductions: list[tuple[str, Money]] = []
    for grant in applied:
        if not grant.in_force(number) or not grant.discount.covers(plan):
            continue
        part = min(grant.discount.reduction(price, grant.counted), left)
        if part.is_positive():
            reductions.append((grant.discount.id, part))
            left -= part
    return PriceDue(price, tuple(reductions), left)


def check_grant_currency(grants: Iterable[AppliedDiscount], currency: str) -> None:
    """Raise unless every fixed amount among ``grants`` is in ``currency`` (a practice's:
    what a store checks before keeping a member).

    Raises:
        CurrencyMismatch: field ``discounts``, naming both currencies.
    """
    check_discount_currency((g.discount for g in grants), currency, field="discounts")


def check_discount_currency(
    discounts: Iterable[Discount | None], currency: str, *, field: str = "discount"
) -> None:
    """Raise unless every fixed amount among ``discounts`` (``None`` skipped) is in
    ``currency`` (what a store checks before keeping a campaign's discount).

    Raises:
        CurrencyMismatch: field ``field``, naming both currencies.
    """
    for discount in discounts:
        amount = None if discount is None else discount.amount
        if amount is not None and amount.currency != currency:
            raise CurrencyMismatch(amount.currency, currency, "keep discounts of", field=field)
