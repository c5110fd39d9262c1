"""Exact money: a Decimal amount in an ISO 4217 currency, never a float.

Rounding happens in one place only, when an amount is multiplied by a rate
(a discount, a share), and always with :data:`ROUNDING` (half up, the
commercial rule a patient's invoice follows). Splitting an amount uses
:meth:`Money.allocate`, which never rounds: it hands out whole minor units.

>>> price = Money.of("49.90", "AUD")
>>> price * 12
Money(amount=Decimal('598.80'), currency='AUD')
>>> [str(part) for part in Money.of("1000", "AUD").allocate(3)]
['AUD 333.34', 'AUD 333.33', 'AUD 333.33']
"""

from __future__ import annotations

import decimal
import math
import numbers
import operator
import re
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final

import attrs

from smilepass_core.errors import CurrencyMismatch, InvalidMoney, UnknownCurrency
from smilepass_core.presentation import Shown

__all__ = [
    "CURRENCIES",
    "MAX_PARTS",
    "NUMERIC_STRING",
    "ROUNDING",
    "Money",
    "exact_decimal",
    "minor_units",
    "per_currency",
    "round_exact",
    "sum_in",
]

#: The one rounding mode of the library: halves round away from zero.
ROUNDING: Final = decimal.ROUND_HALF_UP


def round_exact(value: Fraction) -> int:
    """``value`` rounded to a whole number by :data:`ROUNDING` (halves away from zero).

    >>> round_exact(Fraction(5, 2)), round_exact(Fraction(-5, 2)), round_exact(Fraction(7, 3))
    (3, -3, 2)
    """
    sign = -1 if value < 0 else 1
    magnitude = abs(value)
    return sign * ((2 * magnitude.numerator + magnitude.denominator) // (2 * magnitude.denominator))


_THREE = "BHD IQD JOD KWD LYD OMR TND"
_ZERO = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_FOUR = "CLF UYW"
_TWO = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN "
    "BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB "
    "EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS "
    "KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN "
    "MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD "
    "SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS "
    "UAH USD USN UYU UZS VED VES WST XCD XCG ZAR ZMW ZWG"
)

#: ISO 4217 codes in use, with the number of decimals of their minor unit.
CURRENCIES: Final[dict[str, int]] = {
    **dict.fromkeys(_TWO.split(), 2),
    **dict.fromkeys(_ZERO.split(), 0),
    **dict.fromkeys(_THREE.split(), 3),
    **dict.fromkeys(_FOUR.split(), 4),
}

# Wide enough that sums of real amounts are exact; Inexact is trapped so a
# silent rounding can never happen in + or -.
_CONTEXT: Final = decimal.Context(
    prec=40,
    rounding=ROUNDING,
    traps=[decimal.InvalidOperation, decimal.Inexact, decimal.Overflow, decimal.DivisionByZero],
)
# Quantizing to a minor unit may round; only that is allowed to.
_ROUNDER: Final = decimal.Context(prec=40, rounding=ROUNDING, traps=[decimal.InvalidOperation])
_WIDE: Final = decimal.Context(prec=200, traps=[decimal.InvalidOperation, decimal.Inexact])
_EXPONENTS: Final = {c: Decimal(1).scaleb(-d) for c, d in CURRENCIES.items()}
_MAX_DIGITS: Final = 30
#: Zero in each currency code asked for (Money is immutable: one object serves).
_ZEROS: dict[str, Money] = {}

#: The most parts :meth:`Money.allocate` splits into (a count, or that many ratios).
MAX_PARTS: Final = 10_000


def minor_units(currency: str) -> int:
    """Return the number of decimals of ``currency``'s minor unit (AUD 2, JPY 0, KWD 3).

    Raises:
        UnknownCurrency: ``currency`` is not an ISO 4217 code.
    """
    return CURRENCIES[_currency(currency)]


def _currency(value: Any) -> str:
    if not isinstance(value, str):
        raise UnknownCurrency("currency", value, "must be an ISO 4217 code string")
    code = value.strip().upper()
    if code not in CURRENCIES:
        raise UnknownCurrency("currency", value, "not an ISO 4217 currency code")
    return code


#: The numeric strings an amount may be written as: ASCII digits, an optional sign, an
#: optional decimal point and an optional exponent (``"12.30"``, ``"-5"``, ``"+10"``,
#: ``".5"``, ``"1.2E+3"``), with spaces around. Grouping (``"1,200"``), currency signs,
#: decimal commas, underscores and digits of other scripts (``"١٢"``, ``"１２"``) are not.
NUMERIC_STRING: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


def exact_decimal(value: Any, field: str = "amount") -> Decimal:
    """An exact number (Decimal, an integer of any integral type, a numeric string as
    :data:`NUMERIC_STRING` allows) as a finite Decimal.

    Raises:
        InvalidMoney: a float (NumPy's included), a bool, NaN, an infinity or a string
            that is not a plain ASCII number.
    """
    if isinstance(value, bool):
        raise InvalidMoney(field, value, "a bool is not an amount")
    if isinstance(value, float):
        raise InvalidMoney(field, value, "floats are not exact; pass a Decimal or a string")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, numbers.Integral):  # NumPy and pandas integers: exact
        return Decimal(operator.index(value))
    if isinstance(value, str):
        text = value.strip()
        if not NUMERIC_STRING.fullmatch(text):
            if text.lstrip("+-").lower() in ("nan", "snan", "inf", "infinity"):
                raise InvalidMoney(field, value, "must be finite")
            raise InvalidMoney(
                field, value, "not a number (ASCII digits, an optional sign, point, exponent)"
            )
        result = Decimal(text)
    elif isinstance(value, Decimal):
        result = value
    else:
        raise InvalidMoney(
            field, value, f"expected Decimal, int or str, not {type(value).__name__}"
        )
    if not result.is_finite():
        raise InvalidMoney(field, value, "must be finite")
    return result


def _check_amount(instance: Money, attribute: attrs.Attribute[Decimal], value: Decimal) -> None:
    if not isinstance(value, Decimal) or isinstance(value, bool):
        raise InvalidMoney(
            "amount", value, "must be a Decimal (use Money.of for str or int amounts)"
        )


@attrs.frozen(eq=True, order=False, repr=True)
class Money(Shown):
    """An exact amount in one currency.

    ``Money(Decimal("12.3"), "aud")`` is stored as ``12.30 AUD``; ``-0`` equals ``0``.
    Amounts with more decimals than the currency has, floats, bools, NaN and
    infinities are refused with :class:`~smilepass_core.errors.InvalidMoney`.

    Attributes:
        amount: The amount, quantized to the currency's minor unit.
        currency: The upper-case ISO 4217 code.
    """

    amount: Decimal = attrs.field(validator=_check_amount)
    currency: str = attrs.field(converter=_currency)

    def __attrs_post_init__(self) -> None:
        amount = exact_decimal(self.amount)
        exponent = _EXPONENTS[self.currency]
        try:
            exact = amount.quantize(exponent, context=_CONTEXT)
        except decimal.Inexact:
            raise InvalidMoney(
                "amount",
                self.amount,
                f"{self.currency} has {CURRENCIES[self.currency]} decimals",
            ) from None
        except decimal.InvalidOperation:
            raise InvalidMoney("amount", self.amount, "too many digits") from None
        if exact.adjusted() >= _MAX_DIGITS:
            raise InvalidMoney("amount", self.amount, f"at most {_MAX_DIGITS} integer digits")
        if exact.is_zero():
            exact = exact.copy_abs()
        object.__setattr__(self, "amount", exact)

    # -- construction -------------------------------------------------------------

    @classmethod
    def of(cls, amount: Decimal | int | str, currency: str) -> Money:
        """Build from a Decimal, an int or a numeric string (never a float).

        >>> Money.of("12.3", "usd")
        Money(amount=Decimal('12.30'), currency='USD')
        """
        return cls(exact_decimal(amount), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        """Return zero in ``currency``."""
        zero = _ZEROS.get(currency) if isinstance(currency, str) else None  # ISO codes only
        if zero is None:
            code = _currency(currency)
            zero = _ZEROS.get(code)
            if zero is None:
                zero = _ZEROS[code] = cls(Decimal(0), code)
        return zero

    @classmethod
    def _exact(cls, amount: Decimal, currency: str) -> Money:
        """``amount``, already exact at ``currency``'s minor unit (a sum, difference or
        negation of such amounts, or whole minor units scaled), without again the checks
        those passed: only its size is checked, and ``-0`` made ``0``."""
        if amount.adjusted() >= _MAX_DIGITS:
            raise InvalidMoney("amount", amount, f"at most {_MAX_DIGITS} integer digits")
        if amount.is_zero():
            amount = amount.copy_abs()
        money = object.__new__(cls)
        object.__setattr__(money, "amount", amount)
        object.__setattr__(money, "currency", currency)
        return money

    @classmethod
    def from_minor(cls, units: int, currency: str) -> Money:
        """Build from an integer count of minor units (cents): ``from_minor(1234, "AUD")`` is 12.34.

        Raises:
            InvalidMoney: ``units`` is not an int.
        """
        if type(units) is not int:  # an int already: the common case
            if not isinstance(units, numbers.Integral) or isinstance(units, bool):
                raise InvalidMoney("units", units, "must be an int count of minor units")
            units = operator.index(units)
        if units == 0 and cls is Money:
            return cls.zero(currency)  # one zero per currency, shared (Money is immutable)
        code = _currency(currency)
        return cls._exact(Decimal(units).scaleb(-CURRENCIES[code], _CONTEXT), code)

    # -- views ----------------------------------------------------------------------

    @property
    def minor(self) -> int:
        """The amount as an integer count of minor units."""
        return int(self.amount.scaleb(CURRENCIES[self.currency], _CONTEXT))

    def to_float(self) -> float:
        """The amount as the nearest binary float, for plotting only: never for arithmetic.

        This is the one way to get a float from Money, and it must be asked for by name:
        ``float(money)`` raises ``TypeError``. The currency is dropped; a float cannot
        hold every amount exactly (``0.1 + 0.2 != 0.3``), so sums belong on the Money.

        >>> Money.of("12.30", "AUD").to_float(), Money.of("-5", "JPY").to_float()
        (12.3, -5.0)
        """
        return float(self.amount)

    def is_zero(self) -> bool:
        """True when the amount is zero."""
        return self.amount.is_zero()

    def is_positive(self) -> bool:
        """True when the amount is above zero."""
        return self.amount > 0

    def is_negative(self) -> bool:
        """True when the amount is below zero."""
        return self.amount < 0

    def __str__(self) -> str:
        return f"{self.currency} {self.amount:,}"

    # -- arithmetic -------------------------------------------------------------------

    def _same(self, other: Money, operation: str) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatch(self.currency, other.currency, operation)

    def __add__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "add")
        return Money._exact(_CONTEXT.add(self.amount, other.amount), self.currency)

    def __radd__(self, other: object) -> Money:
        # sum() starts from the int 0.
        if type(other) is int and other == 0:
            return self
        return NotImplemented

    def __sub__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "subtract")
        return Money._exact(_CONTEXT.subtract(self.amount, other.amount), self.currency)

    def __neg__(self) -> Money:
        return Money._exact(self.amount.copy_negate(), self.currency)

    def __pos__(self) -> Money:
        return self

    def __abs__(self) -> Money:
        return Money(self.amount.copy_abs(), self.currency)

    def __mul__(self, factor: object) -> Money:
        if isinstance(factor, Money):
            raise TypeError("cannot multiply Money by Money")
        if not isinstance(factor, int | Decimal):
            return NotImplemented
        rate = exact_decimal(factor, "factor")
        try:
            product = _WIDE.multiply(self.amount, rate)
            rounded = _ROUNDER.quantize(product, _EXPONENTS[self.currency])
        except (decimal.InvalidOperation, decimal.Inexact):
            raise InvalidMoney("amount", factor, "the product has too many digits") from None
        return Money(rounded, self.currency)

    __rmul__ = __mul__

    def __truediv__(self, other: object) -> Decimal:
        """Money / Money is a Decimal ratio (28 significant digits)."""
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "divide")
        if other.amount.is_zero():
            raise ZeroDivisionError("division by a zero amount")
        return decimal.Context(prec=28, rounding=ROUNDING).divide(self.amount, other.amount)

    def _compare(self, other: object, operation: str) -> tuple[Decimal, Decimal]:
        if not isinstance(other, Money):
            raise TypeError(f"cannot compare Money with {type(other).__name__}")
        self._same(other, operation)
        return self.amount, other.amount

    def __lt__(self, other: object) -> bool:
        a, b = self._compare(other, "compare")
        return a < b

    def __le__(self, other: object) -> bool:
        a, b = self._compare(other, "compare")
        return a <= b

    def __gt__(self, other: object) -> bool:
        a, b = self._compare(other, "compare")
        return a > b

    def __ge__(self, other: object) -> bool:
        a, b = self._compare(other, "compare")
        return a >= b

    # -- splitting --------------------------------------------------------------------

    def allocate(self, parts: int | Sequence[int | Decimal | str]) -> tuple[Money, ...]:
        """Split into parts that add up to this amount exactly.

        ``parts`` is a count (equal shares) or a sequence of non-negative ratios, at most
        :data:`MAX_PARTS` either way; each ratio has at most 30 integer digits and 60
        decimals (so the work stays proportional to the number of parts).
        Each part first gets its share rounded towards zero in whole minor
        units; the minor units left over are then handed out one at a time,
        starting from the first part (skipping parts whose ratio is zero).
        A negative amount splits like its absolute value, negated.

        >>> [str(p) for p in Money.of("0.02", "AUD").allocate(3)]
        ['AUD 0.01', 'AUD 0.01', 'AUD 0.00']
        >>> [str(p) for p in Money.of("100", "AUD").allocate([1, 2])]
        ['AUD 33.34', 'AUD 66.66']

        Raises:
            InvalidMoney: a count below 1 or above :data:`MAX_PARTS`, no ratios or more than
                :data:`MAX_PARTS`, an unordered collection of ratios, a negative ratio, one
                with more than 30 integer digits or 60 decimals, or all ratios zero.
        """
        ratios = [Fraction(r) for r in _ratios(parts)]
        total = sum(ratios, Fraction(0))
        units = self.minor
        sign = -1 if units < 0 else 1
        units = abs(units)
        shares = [math.floor(units * r / total) for r in ratios]
        left = units - sum(shares)
        eligible = [i for i, r in enumerate(ratios) if r]
        for k in range(left):
            shares[eligible[k % len(eligible)]] += 1
        return tuple(Money.from_minor(sign * s, self.currency) for s in shares)


def _ratios(parts: int | Sequence[int | Decimal | str] | Any) -> list[Decimal]:
    if isinstance(parts, bool):
        raise InvalidMoney("parts", parts, "a bool is not a count")
    if isinstance(parts, numbers.Integral):  # NumPy and pandas integers too
        parts = operator.index(parts)
        if parts < 1:
            raise InvalidMoney("parts", parts, "must be at least 1")
        if parts > MAX_PARTS:
            raise InvalidMoney("parts", parts, f"must be at most {MAX_PARTS:,}")
        return [Decimal(1)] * parts
    if isinstance(parts, str) or not isinstance(parts, Iterable):
        raise InvalidMoney("parts", parts, "must be a count or a sequence of ratios")
    if isinstance(parts, AbstractSet):
        raise InvalidMoney("ratios", parts, "must be ordered (a list or tuple), not a set")
    ratios: list[Decimal] = []
    for r in parts:
        if len(ratios) == MAX_PARTS:
            raise InvalidMoney("ratios", parts, f"must be at most {MAX_PARTS:,}")
        ratios.append(exact_decimal(r, "ratios"))
    if not ratios:
        raise InvalidMoney("ratios", parts, "must not be empty")
    if any(r < 0 for r in ratios):
        raise InvalidMoney("ratios", parts, "must not be negative")
    for r in ratios:
        exponent = r.as_tuple().exponent
        if r and (r.adjusted() >= _MAX_DIGITS or (isinstance(exponent, int) and exponent < -60)):
            raise InvalidMoney(
                "ratios", parts, f"each at most {_MAX_DIGITS} integer digits and 60 decimals"
            )
    if not any(ratios):
        raise InvalidMoney("ratios", parts, "must not all be zero")
    return ratios


def per_currency(amounts: Iterable[Money]) -> dict[str, Money]:
    """Sum amounts of possibly several currencies, one total per currency (never across);
    only each total is held to 30 integer digits.

    >>> totals = per_currency([Money.of("1.50", "AUD"), Money.of(2, "USD"), Money.of(".5", "AUD")])
    >>> {code: str(total) for code, total in totals.items()}
    {'AUD': 'AUD 2.00', 'USD': 'USD 2.00'}
    """
    sums: dict[str, Decimal] = {}  # exact: Money's amounts at its 40 digits, each checked once
    for amount in amounts:
        if not isinstance(amount, Money):
            raise TypeError(f"per_currency sums Money, not {type(amount).__name__}")
        total = sums.get(amount.currency)
        sums[amount.currency] = (
            amount.amount if total is None else _CONTEXT.add(total, amount.amount)
        )
    return {code: Money._exact(total, code) for code, total in sums.items()}


def sum_in(currency: str, amounts: Iterable[Money]) -> Money:
    """The exact sum of ``amounts``, every one in ``currency`` (its zero when there are
    none): ``sum(amounts, Money.zero(currency))`` without a Money per step.

    >>> sum_in("AUD", [Money.of("1.50", "AUD"), Money.of(".5", "AUD")])
    Money(amount=Decimal('2.00'), currency='AUD')

    Raises:
        CurrencyMismatch: an amount in another currency.
        UnknownCurrency: ``currency`` is not an ISO 4217 code.
        InvalidMoney: the sum has more than 30 integer digits.
        TypeError: an item that is not Money.
    """
    zero = Money.zero(currency)
    code, total = zero.currency, zero.amount
    for amount in amounts:
        if not isinstance(amount, Money):
            raise TypeError(f"sum_in sums Money, not {type(amount).__name__}")
        if amount.currency != code:
            raise CurrencyMismatch(code, amount.currency, "add")
        total = _CONTEXT.add(total, amount.amount)
    return Money._exact(total, code)
