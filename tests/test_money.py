"""Tests for smilepass_core.money: exact amounts, refusals, arithmetic and allocation."""

from __future__ import annotations

import decimal
import functools
import itertools
import math
import operator
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from smilepass_core.errors import (
    CurrencyMismatch,
    InvalidMoney,
    InvalidValue,
    SmilepassError,
    UnknownCurrency,
)
from smilepass_core.money import (
    CURRENCIES,
    MAX_PARTS,
    ROUNDING,
    Money,
    minor_units,
    per_currency,
    sum_in,
)

CODES = sorted(CURRENCIES)

# -- local strategies -----------------------------------------------------------------------

currencies = st.sampled_from(CODES)
minor_counts = st.integers(min_value=-(10**12), max_value=10**12)


def money_in(currency: str) -> st.SearchStrategy[Money]:
    """Money in ``currency`` built from a whole number of minor units."""
    return minor_counts.map(lambda units: Money.from_minor(units, currency))


money = currencies.flatmap(money_in)
ratio_lists = st.lists(st.integers(min_value=0, max_value=100), min_size=1, max_size=10).filter(any)


@st.composite
def same_currency(draw: st.DrawFn, size: int) -> tuple[Money, ...]:
    """``size`` amounts that share one random currency."""
    code = draw(currencies)
    return tuple(draw(money_in(code)) for _ in range(size))


@st.composite
def two_currencies(draw: st.DrawFn) -> tuple[Money, Money]:
    """Two amounts in two different currencies."""
    left, right = draw(st.lists(currencies, min_size=2, max_size=2, unique=True))
    return draw(money_in(left)), draw(money_in(right))


_UNCHECKED = object()


def refused(
    error: type[InvalidValue],
    field: str,
    call: Callable[[], object],
    *,
    value: object = _UNCHECKED,
    reason: str | None = None,
) -> InvalidValue:
    """Run ``call``, check it raises exactly ``error`` naming ``field``, and return the error.

    With ``value`` and ``reason``, also check those attributes (the value's type too) and
    the whole message ``field: reason (got value)``.
    """
    with pytest.raises(error) as info:
        call()
    exc = info.value
    assert type(exc) is error
    assert exc.field == field
    assert str(exc).startswith(f"{field}: ")
    assert isinstance(exc, SmilepassError)
    assert isinstance(exc, ValueError)
    if value is not _UNCHECKED:
        assert exc.value == value
        assert type(exc.value) is type(value)
    if reason is not None:
        assert exc.reason == reason
        assert str(exc) == f"{field}: {reason} (got {exc.value!r})"
    return exc


def aud(amount: str) -> Money:
    return Money.of(amount, "AUD")


def strs(parts: tuple[Money, ...]) -> list[str]:
    return [str(p) for p in parts]


# -- the error family -------------------------------------------------------------------------


class TestErrorFamily:
    def test_invalid_money_is_a_smilepass_value_error(self) -> None:
        """InvalidMoney is a SmilepassError and a ValueError, so hosts can catch either."""
        assert issubclass(InvalidMoney, SmilepassError)
        assert issubclass(InvalidMoney, ValueError)

    def test_unknown_currency_is_invalid_money(self) -> None:
        """UnknownCurrency is a kind of InvalidMoney, hence a SmilepassError and a ValueError."""
        assert issubclass(UnknownCurrency, InvalidMoney)
        assert issubclass(UnknownCurrency, SmilepassError)
        assert issubclass(UnknownCurrency, ValueError)

    def test_currency_mismatch_is_a_smilepass_type_error(self) -> None:
        """CurrencyMismatch is a SmilepassError and a TypeError, not a ValueError."""
        assert issubclass(CurrencyMismatch, SmilepassError)
        assert issubclass(CurrencyMismatch, TypeError)
        assert not issubclass(CurrencyMismatch, ValueError)


# -- refusals ---------------------------------------------------------------------------------


class TestAmountRefusals:
    @pytest.mark.parametrize("build", [Money.of, Money], ids=["of", "init"])
    def test_float_is_refused(self, build: Callable[..., Money]) -> None:
        """A float amount is refused as InvalidMoney naming the amount."""
        refused(InvalidMoney, "amount", lambda: build(12.5, "AUD"))

    @pytest.mark.parametrize("build", [Money.of, Money], ids=["of", "init"])
    def test_bool_is_refused(self, build: Callable[..., Money]) -> None:
        """A bool is not an amount, even though it is an int."""
        refused(InvalidMoney, "amount", lambda: build(True, "AUD"))

    @pytest.mark.parametrize("text", ["NaN", "-NaN", "nan"])
    def test_nan_is_refused(self, text: str) -> None:
        """A quiet NaN, as a string or a Decimal, is refused."""
        refused(InvalidMoney, "amount", lambda: Money.of(text, "AUD"))
        refused(InvalidMoney, "amount", lambda: Money(Decimal(text), "AUD"))

    @pytest.mark.parametrize("text", ["Infinity", "-Infinity", "inf", "-inf"])
    def test_infinity_is_refused(self, text: str) -> None:
        """Positive and negative infinities are refused."""
        refused(InvalidMoney, "amount", lambda: Money.of(text, "AUD"))
        refused(InvalidMoney, "amount", lambda: Money(Decimal(text), "AUD"))

    @pytest.mark.parametrize("text", ["sNaN", "-sNaN"])
    def test_signalling_nan_is_refused(self, text: str) -> None:
        """A signalling NaN is refused as InvalidMoney, not leaked as a decimal signal."""
        refused(InvalidMoney, "amount", lambda: Money.of(text, "AUD"))
        refused(InvalidMoney, "amount", lambda: Money(Decimal(text), "AUD"))

    @pytest.mark.parametrize("text", ["", "  ", "abc", "12,50", "$12", "1.2.3", "12 AUD"])
    def test_non_numeric_string_is_refused(self, text: str) -> None:
        """A string that is not a number is refused."""
        refused(InvalidMoney, "amount", lambda: Money.of(text, "AUD"))

    @pytest.mark.parametrize("text", ["1_000", "1_000.00", "0.0_1"])
    def test_underscores_are_refused(self, text: str) -> None:
        """Python-style digit separators are not accepted in amount strings."""
        refused(InvalidMoney, "amount", lambda: Money.of(text, "AUD"))

    @pytest.mark.parametrize("value", [None, [1], Fraction(1, 2), complex(1, 0)])
    def test_other_types_are_refused(self, value: object) -> None:
        """Anything other than a Decimal, an int or a string is refused by Money.of."""
        refused(InvalidMoney, "amount", lambda: Money.of(value, "AUD"))

    @pytest.mark.parametrize(
        ("amount", "currency"),
        [
            ("0.001", "AUD"),
            ("12.345", "AUD"),
            ("0.5", "JPY"),
            ("100.1", "JPY"),
            ("0.0001", "KWD"),
            ("1.2345", "KWD"),
        ],
    )
    def test_more_decimals_than_the_currency_is_refused(self, amount: str, currency: str) -> None:
        """An amount finer than the currency's minor unit is refused (AUD 2, JPY 0, KWD 3)."""
        exc = refused(InvalidMoney, "amount", lambda: Money.of(amount, currency))
        assert f"{currency} has {CURRENCIES[currency]} decimals" in str(exc)

    def test_int_passed_to_the_initialiser_is_refused(self) -> None:
        """Money(5, "AUD") is refused: ints go through Money.of."""
        exc = refused(InvalidMoney, "amount", lambda: Money(5, "AUD"))
        assert "Money.of" in str(exc)

    def test_string_passed_to_the_initialiser_is_refused(self) -> None:
        """Money("5", "AUD") is refused: strings go through Money.of."""
        refused(InvalidMoney, "amount", lambda: Money("5", "AUD"))

    def test_more_than_thirty_integer_digits_is_refused(self) -> None:
        """An amount of 31 integer digits is refused while 30 digits is accepted."""
        assert Money.of(10**30 - 1, "AUD").amount == Decimal(10**30 - 1)
        refused(InvalidMoney, "amount", lambda: Money.of(10**30, "AUD"))
        refused(InvalidMoney, "amount", lambda: Money.of("-1e30", "JPY"))

    def test_sums_differences_and_minor_units_past_thirty_digits_are_refused(self) -> None:
        """Arithmetic builds its result without the initialiser's checks, but not past 30
        integer digits; negating zero gives zero without a sign."""
        most = Money.of(10**30 - 1, "AUD")
        assert (most + Money.zero("AUD")).amount == Decimal(10**30 - 1)
        refused(InvalidMoney, "amount", lambda: most + Money.of(1, "AUD"))
        refused(InvalidMoney, "amount", lambda: -most - Money.of(1, "AUD"))
        refused(InvalidMoney, "amount", lambda: Money.from_minor(10**32, "AUD"))
        assert Money.from_minor(10**32 - 1, "AUD") == most + Money.of("0.99", "AUD")
        zero = -Money.of("0.00", "AUD")
        assert not zero.amount.is_signed()
        assert str(zero) == "AUD 0.00"
        assert Money.zero(" aud ") is Money.zero("AUD")

    def test_astronomical_amount_is_refused(self) -> None:
        """An amount too wide to quantize is refused as InvalidMoney, not a decimal signal."""
        refused(InvalidMoney, "amount", lambda: Money.of("1e40", "AUD"))
        refused(InvalidMoney, "amount", lambda: Money.of(Decimal("9E+999"), "AUD"))


class TestCurrencyRefusals:
    @pytest.mark.parametrize("code", ["XXX", "AU", "AUDD", "EURO", "", "  ", "BTC"])
    def test_unknown_code_is_refused(self, code: str) -> None:
        """A string that is not an ISO 4217 code in use is refused as UnknownCurrency."""
        refused(UnknownCurrency, "currency", lambda: Money.of("1", code))

    @pytest.mark.parametrize("code", [None, 36, b"AUD", ["AUD"]])
    def test_non_string_code_is_refused(self, code: object) -> None:
        """A currency that is not a string is refused as UnknownCurrency (by zero too)."""
        refused(UnknownCurrency, "currency", lambda: Money.of("1", code))
        refused(UnknownCurrency, "currency", lambda: Money.zero(code))  # type: ignore[arg-type]

    def test_minor_units_refuses_an_unknown_code(self) -> None:
        """minor_units() refuses a code outside CURRENCIES."""
        refused(UnknownCurrency, "currency", lambda: minor_units("ZZZ"))

    def test_zero_refuses_an_unknown_code(self) -> None:
        """Money.zero() refuses an unknown code too."""
        refused(UnknownCurrency, "currency", lambda: Money.zero("ZZZ"))


class TestAllocationRefusals:
    def test_zero_parts_is_refused(self) -> None:
        """allocate(0) is refused naming parts."""
        refused(InvalidMoney, "parts", lambda: aud("10").allocate(0))

    def test_negative_parts_is_refused(self) -> None:
        """allocate(-1) is refused naming parts."""
        refused(InvalidMoney, "parts", lambda: aud("10").allocate(-1))

    def test_bool_parts_is_refused(self) -> None:
        """allocate(True) is refused: a bool is not a count."""
        refused(InvalidMoney, "parts", lambda: aud("10").allocate(True))

    def test_string_parts_is_refused(self) -> None:
        """allocate("3") is refused rather than split into the ratios of its characters."""
        refused(InvalidMoney, "parts", lambda: aud("10").allocate("3"))

    def test_empty_ratios_are_refused(self) -> None:
        """allocate([]) is refused naming ratios."""
        refused(InvalidMoney, "ratios", lambda: aud("10").allocate([]))

    def test_negative_ratio_is_refused(self) -> None:
        """allocate([-1, 2]) is refused naming ratios."""
        refused(InvalidMoney, "ratios", lambda: aud("10").allocate([-1, 2]))

    def test_all_zero_ratios_are_refused(self) -> None:
        """allocate([0, 0]) is refused: there is nothing to share by."""
        refused(InvalidMoney, "ratios", lambda: aud("10").allocate([0, 0]))

    def test_float_ratio_is_refused(self) -> None:
        """allocate([1.5]) is refused: ratios are exact numbers."""
        refused(InvalidMoney, "ratios", lambda: aud("10").allocate([1.5]))

    def test_non_finite_ratio_is_refused(self) -> None:
        """A NaN or infinite ratio is refused naming ratios."""
        refused(InvalidMoney, "ratios", lambda: aud("10").allocate([Decimal("NaN"), 1]))
        refused(InvalidMoney, "ratios", lambda: aud("10").allocate(["Infinity", 1]))

    def test_too_many_parts_are_refused_at_once(self) -> None:
        """A count or a ratio list above MAX_PARTS is refused before any work is done."""
        refused(InvalidMoney, "parts", lambda: aud("10").allocate(MAX_PARTS + 1))
        refused(InvalidMoney, "ratios", lambda: aud("10").allocate([1] * (MAX_PARTS + 1)))
        assert len(aud("10").allocate(MAX_PARTS)) == MAX_PARTS

    def test_a_ratio_list_is_read_no_further_than_the_limit(self) -> None:
        """An endless iterator of ratios is refused after MAX_PARTS + 1 of them."""
        refused(InvalidMoney, "ratios", lambda: aud("10").allocate(itertools.repeat(1)))

    @pytest.mark.parametrize("ratio", ["1e999999999", "1e-999999999", "1" * 31, "1e30", "1e-61"])
    def test_a_ratio_of_extreme_magnitude_is_refused(self, ratio: str) -> None:
        """A ratio with 31 or more integer digits or more than 60 decimals is refused at
        once (converting 1e999999999 to an exact fraction never returned)."""
        refused(InvalidMoney, "ratios", lambda: aud("10").allocate([ratio, 1]))

    def test_ratios_at_the_limits_are_accepted(self) -> None:
        """30 integer digits and 60 decimals are still ratios."""
        assert aud("10").allocate(["9" * 30, 1]) == (aud("10"), aud("0"))
        # the one cent left after rounding down goes to the first part with a ratio
        assert aud("10").allocate(["1e-60", 1]) == (aud("0.01"), aud("9.99"))

    def test_a_set_of_ratios_is_refused(self) -> None:
        """A set has no order, so which part gets which share would be arbitrary."""
        refused(InvalidMoney, "ratios", lambda: aud("10").allocate({1, 2}))  # type: ignore[arg-type]
        refused(InvalidMoney, "ratios", lambda: aud("10").allocate(frozenset({1, 2})))  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("parts", "field", "reason"),
        [
            (0, "parts", "must be at least 1"),
            (MAX_PARTS + 1, "parts", "must be at most 10,000"),
            ({1, 2}, "ratios", "must be ordered (a list or tuple), not a set"),
            (["1e30", 1], "ratios", "each at most 30 integer digits and 60 decimals"),
            (True, "parts", "a bool is not a count"),
            ("3", "parts", "must be a count or a sequence of ratios"),
            (None, "parts", "must be a count or a sequence of ratios"),
            ((), "ratios", "must not be empty"),
            ([-1, 2], "ratios", "must not be negative"),
            ([0, 0], "ratios", "must not all be zero"),
        ],
    )
    def test_each_refusal_names_field_value_and_reason(
        self, parts: object, field: str, reason: str
    ) -> None:
        """The error carries the field, the parts exactly as given and the reason."""
        exc = refused(
            InvalidMoney,
            field,
            lambda: aud("10").allocate(parts),  # type: ignore[arg-type]
            value=parts,
            reason=reason,
        )
        assert exc.value is parts


class TestExactRefusals:
    """Each refusal carries the field, the value exactly as given and its reason."""

    @pytest.mark.parametrize(
        ("call", "field", "value", "reason"),
        [
            (lambda: Money.of("1", None), "currency", None, "must be an ISO 4217 code string"),
            (lambda: Money.of(True, "AUD"), "amount", True, "a bool is not an amount"),
            (
                lambda: Money.of(b"1", "AUD"),
                "amount",
                b"1",
                "expected Decimal, int or str, not bytes",
            ),
            (lambda: Money.of("1e45", "AUD"), "amount", Decimal("1E+45"), "too many digits"),
            (
                lambda: Money.from_minor(1.0, "AUD"),
                "units",
                1.0,
                "must be an int count of minor units",
            ),
            (
                lambda: Money.from_minor(True, "AUD"),
                "units",
                True,
                "must be an int count of minor units",
            ),
        ],
    )
    def test_refusal(
        self, call: Callable[[], object], field: str, value: object, reason: str
    ) -> None:
        """The message is ``field: reason (got value)`` and the attributes match it."""
        error = UnknownCurrency if field == "currency" else InvalidMoney
        refused(error, field, call, value=value, reason=reason)


class TestArithmeticRefusals:
    def test_multiplying_by_a_float_is_refused(self) -> None:
        """Money * float raises TypeError instead of producing an inexact amount."""
        with pytest.raises(TypeError, match="float"):
            aud("10") * 1.5
        with pytest.raises(TypeError, match="float"):
            1.5 * aud("10")

    def test_multiplying_by_a_bool_is_refused(self) -> None:
        """Money * True is refused as InvalidMoney naming the factor."""
        refused(InvalidMoney, "factor", lambda: aud("10") * True)

    @pytest.mark.parametrize("factor", ["NaN", "sNaN", "Infinity", "-Infinity"])
    def test_multiplying_by_a_non_finite_decimal_is_refused(self, factor: str) -> None:
        """Money * a NaN or infinite Decimal is refused naming the factor."""
        refused(InvalidMoney, "factor", lambda: aud("10") * Decimal(factor))

    def test_multiplying_money_by_money_is_refused(self) -> None:
        """Money * Money raises TypeError: an amount squared means nothing."""
        with pytest.raises(TypeError, match="Money by Money"):
            aud("10") * aud("2")

    @pytest.mark.parametrize("factor", [10**29, 10**50, Decimal("1E+60")])
    def test_product_too_large_for_money_is_refused(self, factor: int | Decimal) -> None:
        """A product beyond 30 integer digits is refused as InvalidMoney naming the amount."""
        refused(InvalidMoney, "amount", lambda: aud("10") * factor)

    def test_dividing_by_zero_money_is_refused(self) -> None:
        """Money / zero Money raises ZeroDivisionError."""
        with pytest.raises(ZeroDivisionError, match=r"^division by a zero amount$"):
            aud("10") / Money.zero("AUD")

    def test_subtracting_or_dividing_by_a_plain_number_is_refused(self) -> None:
        """Money - int and Money / int raise TypeError: split with allocate instead."""
        with pytest.raises(TypeError):
            aud("10") - 1
        with pytest.raises(TypeError):
            aud("10") / 3

    def test_adding_a_plain_number_is_refused(self) -> None:
        """Money + int (other than sum()'s starting 0) raises TypeError."""
        with pytest.raises(TypeError):
            aud("10") + 1
        with pytest.raises(TypeError):
            1 + aud("10")

    def test_ordering_against_a_number_is_refused(self) -> None:
        """Comparing Money with a bare number raises TypeError."""
        with pytest.raises(TypeError, match="int"):
            operator.lt(aud("10"), 5)

    @pytest.mark.parametrize("units", [1.0, Decimal(1), "1", True, None])
    def test_from_minor_refuses_a_non_int(self, units: object) -> None:
        """from_minor() refuses anything but an int count, naming units."""
        refused(InvalidMoney, "units", lambda: Money.from_minor(units, "AUD"))


# -- construction and normalisation -------------------------------------------------------------


class TestConstruction:
    @pytest.mark.parametrize("code", ["aud", "Aud", " aud ", "jpy", "kwd"])
    def test_lower_case_codes_are_normalised(self, code: str) -> None:
        """A known code in any case (and padded) is stored upper-case."""
        assert Money.of("1", code).currency == code.strip().upper()

    def test_amount_is_quantized_to_the_minor_unit(self) -> None:
        """Money.of("1.2", "AUD") holds Decimal("1.20") with exponent -2."""
        m = Money.of("1.2", "AUD")
        assert m.amount == Decimal("1.20")
        assert m.amount.as_tuple().exponent == -2
        assert str(m) == "AUD 1.20"

    @pytest.mark.parametrize(("currency", "exponent"), [("AUD", -2), ("JPY", 0), ("KWD", -3)])
    def test_exponent_follows_the_currency(self, currency: str, exponent: int) -> None:
        """Every amount carries exactly its currency's exponent."""
        assert Money.of(7, currency).amount.as_tuple().exponent == exponent

    def test_minor_units_per_currency(self) -> None:
        """AUD has 2 decimals, JPY 0 and KWD 3."""
        assert (minor_units("AUD"), minor_units("JPY"), minor_units("KWD")) == (2, 0, 3)
        assert Money.of("1.234", "KWD").minor == 1234

    @pytest.mark.parametrize("text", ["-0", "-0.00", "-0.0", "-0E+3"])
    def test_negative_zero_equals_zero_and_prints_without_a_sign(self, text: str) -> None:
        """-0 equals 0, hashes like it, and neither repr nor str shows a minus sign."""
        m = Money.of(text, "AUD")
        assert m == Money.zero("AUD")
        assert hash(m) == hash(Money.zero("AUD"))
        assert not m.amount.is_signed()
        assert "-" not in repr(m)
        assert str(m) == "AUD 0.00"
        assert m.is_zero()
        assert not m.is_negative()
        assert not m.is_positive()

    def test_product_rounding_to_zero_has_no_sign(self) -> None:
        """A negative product that rounds to zero is an unsigned zero."""
        m = aud("-0.01") * Decimal("0.1")
        assert m == Money.zero("AUD")
        assert str(m) == "AUD 0.00"

    def test_string_and_int_amounts(self) -> None:
        """Money.of accepts ints, numeric strings with spaces and exponents, and Decimals."""
        assert Money.of(5, "AUD").amount == Decimal("5.00")
        assert Money.of(" 12.3 ", "AUD").amount == Decimal("12.30")
        assert Money.of("1.5E+2", "AUD").amount == Decimal("150.00")
        assert Money.of(Decimal("-4.1"), "AUD").amount == Decimal("-4.10")

    def test_str_groups_thousands(self) -> None:
        """str() shows the code and the amount with thousands separators."""
        assert str(Money.of("1234567.8", "AUD")) == "AUD 1,234,567.80"
        assert str(Money.of("-1000", "JPY")) == "JPY -1,000"

    def test_from_minor_examples(self) -> None:
        """from_minor(1234, "AUD") is 12.34; JPY and KWD scale by their own decimals."""
        assert Money.from_minor(1234, "AUD") == aud("12.34")
        assert Money.from_minor(1234, "JPY") == Money.of("1234", "JPY")
        assert Money.from_minor(1234, "kwd") == Money.of("1.234", "KWD")

    def test_rounding_mode_is_half_up(self) -> None:
        """The library's one rounding mode is ROUND_HALF_UP."""
        assert ROUNDING == ROUND_HALF_UP


# -- properties ---------------------------------------------------------------------------------


class TestAdditionProperties:
    @given(amounts=st.lists(money_in("KWD"), max_size=12))
    def test_sum_in_is_the_sum(self, amounts: list[Money]) -> None:
        """sum_in(code, amounts) is sum(amounts, zero) and per_currency's total, exactly."""
        expected = sum(amounts, Money.zero("KWD"))
        assert sum_in("KWD", amounts) == expected
        assert sum_in("kwd", iter(amounts)).amount.as_tuple() == expected.amount.as_tuple()
        assert per_currency(amounts).get("KWD", Money.zero("KWD")) == expected

    def test_per_currency_refuses_a_non_money(self) -> None:
        """An item that is not Money is a TypeError naming its type, not a silent total."""
        with pytest.raises(TypeError, match="not Decimal"):
            per_currency([aud("1"), Decimal(1)])  # type: ignore[list-item]
        assert per_currency([]) == {}

    def test_sum_in_refuses_another_currency_a_non_money_and_too_many_digits(self) -> None:
        """Another currency is CurrencyMismatch, an int a TypeError, a sum past 30 integer
        digits InvalidMoney; nothing is zero."""
        assert sum_in("AUD", []) == Money.zero("AUD")
        with pytest.raises(CurrencyMismatch):
            sum_in("AUD", [aud("1"), Money.of("1", "USD")])
        with pytest.raises(TypeError):
            sum_in("AUD", [aud("1"), 2])  # type: ignore[list-item]
        most = Money.of(10**30 - 1, "AUD")
        refused(InvalidMoney, "amount", lambda: sum_in("AUD", [most, aud("1")]))
        refused(UnknownCurrency, "currency", lambda: sum_in("ZZZ", []))

    @given(pair=same_currency(2), big=st.booleans())
    def test_arithmetic_builds_what_the_initialiser_builds(
        self, pair: tuple[Money, Money], big: bool
    ) -> None:
        """A sum, a difference, a negation and whole minor units hold the Decimal (its
        digits and exponent) the validating initialiser would make of the same value."""
        a, b = pair
        if big:  # near the 30-digit bound
            a = a + Money.of(10**29, a.currency)
        exact = decimal.Context(prec=60)  # the default 28 digits would round
        for got, value in (
            (a + b, exact.add(a.amount, b.amount)),
            (a - b, exact.subtract(a.amount, b.amount)),
            (-a, a.amount.copy_negate()),
            (Money.from_minor(a.minor, a.currency), a.amount),
        ):
            built = Money(value, a.currency)
            assert (got.amount.as_tuple(), got.currency) == (
                built.amount.as_tuple(),
                built.currency,
            )
            assert hash(got) == hash(built)

    @given(same_currency(2))
    def test_addition_is_commutative(self, pair: tuple[Money, Money]) -> None:
        """a + b == b + a."""
        a, b = pair
        assert a + b == b + a

    @given(same_currency(3))
    def test_addition_is_associative(self, triple: tuple[Money, Money, Money]) -> None:
        """(a + b) + c == a + (b + c)."""
        a, b, c = triple
        assert (a + b) + c == a + (b + c)

    @given(money)
    def test_zero_is_the_identity(self, m: Money) -> None:
        """Adding or subtracting zero leaves an amount unchanged, on either side."""
        zero = Money.zero(m.currency)
        assert m + zero == m
        assert zero + m == m
        assert m - zero == m

    @given(money)
    def test_an_amount_minus_itself_is_zero(self, m: Money) -> None:
        """x - x is zero in x's currency."""
        assert m - m == Money.zero(m.currency)

    @given(money)
    def test_double_negation_is_identity(self, m: Money) -> None:
        """-(-x) == x, and -x, +x and abs(x) have the expected minor units."""
        negated = -m
        assert -negated == m
        assert (-m).minor == -m.minor
        assert +m == m
        assert abs(m).minor == abs(m.minor)

    @given(same_currency(2))
    def test_addition_matches_minor_units(self, pair: tuple[Money, Money]) -> None:
        """Sums and differences are exact: their minor units add and subtract as integers."""
        a, b = pair
        assert (a + b).minor == a.minor + b.minor
        assert (a - b).minor == a.minor - b.minor

    @given(currencies.flatmap(lambda c: st.lists(money_in(c), min_size=1, max_size=20)))
    def test_sum_equals_reduce(self, amounts: list[Money]) -> None:
        """sum() of a list equals folding it with +, and the minor units add up."""
        total = sum(amounts)
        assert total == functools.reduce(operator.add, amounts)
        assert isinstance(total, Money)
        assert total.minor == sum(m.minor for m in amounts)

    @given(currencies)
    def test_sum_of_nothing_needs_a_start(self, code: str) -> None:
        """sum([]) is the int 0, so an empty total needs Money.zero as the start."""
        assert not isinstance(sum([]), Money)
        assert sum([], Money.zero(code)) == Money.zero(code)

    @given(same_currency(2))
    def test_ordering_matches_minor_units(self, pair: tuple[Money, Money]) -> None:
        """<, <=, >, >= agree with the order of the amounts."""
        a, b = pair
        assert (a < b) == (a.minor < b.minor)
        assert (a <= b) == (a.minor <= b.minor)
        assert (a > b) == (a.minor > b.minor)
        assert (a >= b) == (a.minor >= b.minor)


MIXING = [
    ("add", operator.add),
    ("subtract", operator.sub),
    ("compare", operator.lt),
    ("compare", operator.le),
    ("compare", operator.gt),
    ("compare", operator.ge),
    ("divide", operator.truediv),
]


class TestCurrencyMixing:
    @pytest.mark.parametrize(("verb", "op"), MIXING, ids=[op.__name__ for _, op in MIXING])
    @given(pair=two_currencies())
    def test_mixing_currencies_raises(
        self, verb: str, op: Callable[[Money, Money], object], pair: tuple[Money, Money]
    ) -> None:
        """Any two different currencies raise CurrencyMismatch naming both codes."""
        a, b = pair
        with pytest.raises(CurrencyMismatch) as info:
            op(a, b)
        exc = info.value
        assert (exc.left, exc.right, exc.operation) == (a.currency, b.currency, verb)
        assert str(exc) == f"cannot {verb} {a.currency} and {b.currency}: currencies differ"
        assert exc.field == ""

    @given(two_currencies())
    def test_summing_mixed_currencies_raises(self, pair: tuple[Money, Money]) -> None:
        """sum() over a list with two currencies raises CurrencyMismatch."""
        with pytest.raises(CurrencyMismatch):
            sum(pair)

    def test_different_currencies_are_never_equal(self) -> None:
        """Equal numbers in different currencies are different amounts."""
        assert Money.of(1, "AUD") != Money.of(1, "NZD")


class TestMultiplication:
    @given(money, st.integers(min_value=-(10**6), max_value=10**6))
    def test_multiplying_by_an_int_is_exact(self, m: Money, k: int) -> None:
        """m * k is exactly k times the minor units, on either side."""
        assert (m * k).minor == m.minor * k
        assert k * m == m * k
        assert (m * k).currency == m.currency

    @given(
        money,
        st.decimals(
            min_value=-1000, max_value=1000, places=6, allow_nan=False, allow_infinity=False
        ),
    )
    def test_multiplying_by_a_decimal_rounds_half_up(self, m: Money, rate: Decimal) -> None:
        """m * rate equals the exact product quantized half up to the minor unit."""
        unit = Decimal(10) ** -CURRENCIES[m.currency]
        with localcontext() as ctx:
            ctx.prec = 100
            exact = m.amount * rate
            expected = exact.quantize(unit, ROUND_HALF_UP)
            error = abs(expected - exact)
        product = m * rate
        assert product.amount == expected
        assert product == rate * m
        assert error <= unit / 2

    @pytest.mark.parametrize(
        ("amount", "rate", "expected"),
        [
            ("0.05", "0.5", "0.03"),
            ("-0.05", "0.5", "-0.03"),
            ("0.15", "0.1", "0.02"),
            ("0.01", "0.49", "0.00"),
            ("49.90", "0.9", "44.91"),
            ("10.00", "0.333", "3.33"),
        ],
    )
    def test_halves_round_away_from_zero(self, amount: str, rate: str, expected: str) -> None:
        """0.025 rounds to 0.03 and -0.025 to -0.03: half up, away from zero."""
        assert aud(amount) * Decimal(rate) == aud(expected)

    def test_from_minor_is_exact_beyond_the_default_decimal_precision(self) -> None:
        """31 digits of cents (more than decimal's default 28) come back exactly."""
        units = 10**31 - 1
        money = Money.from_minor(units, "AUD")
        assert money.minor == units
        assert str(money.amount) == "9" * 29 + ".99"

    def test_docstring_example(self) -> None:
        """49.90 AUD times 12 is 598.80 AUD."""
        assert aud("49.90") * 12 == aud("598.80")

    @pytest.mark.parametrize(
        ("a", "b", "ratio"),
        [
            ("1", "3", "0.3333333333333333333333333333"),
            ("2", "3", "0.6666666666666666666666666667"),
            ("-2", "3", "-0.6666666666666666666666666667"),
            # 29 significant digits ending in 5: half-up, not banker's rounding.
            ("1234567890123456789012345678.9", "2", "617283945061728394506172839.5"),
            ("10", "4", "2.5"),
        ],
    )
    def test_division_rounds_half_up_to_28_significant_digits(
        self, a: str, b: str, ratio: str
    ) -> None:
        """The ratio has exactly 28 significant digits, the last one rounded half-up."""
        assert str(aud(a) / aud(b)) == ratio

    def test_division_ignores_the_hosts_decimal_contexts(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A host's own decimal precision or rounding (current or default) changes no ratio."""
        with decimal.localcontext(prec=50, rounding=decimal.ROUND_FLOOR):
            assert str(aud("2") / aud("3")) == "0." + "6" * 27 + "7"
        monkeypatch.setattr(decimal.DefaultContext, "prec", 50)
        assert str(aud("1") / aud("3")) == "0." + "3" * 28

    @given(same_currency(2))
    def test_division_gives_the_ratio(self, pair: tuple[Money, Money]) -> None:
        """Money / Money is the Decimal ratio of the amounts to 28 significant digits."""
        a, b = pair
        assume(not b.is_zero())
        ratio = a / b
        exact = Fraction(a.minor, b.minor)
        assert isinstance(ratio, Decimal)
        assert abs(Fraction(ratio) - exact) <= abs(exact) / 10**27


class TestAllocation:
    @given(money, st.integers(min_value=1, max_value=50))
    def test_equal_parts_add_up_exactly(self, m: Money, n: int) -> None:
        """allocate(n) returns n parts in m's currency that sum to m exactly."""
        parts = m.allocate(n)
        assert len(parts) == n
        assert all(p.currency == m.currency for p in parts)
        assert sum(parts) == m

    @given(money, st.integers(min_value=1, max_value=50))
    def test_equal_parts_differ_by_at_most_one_unit_larger_first(self, m: Money, n: int) -> None:
        """The parts of allocate(n) differ by at most one minor unit, larger ones first."""
        sizes = [abs(p.minor) for p in m.allocate(n)]
        assert max(sizes) - min(sizes) <= 1
        assert sizes == sorted(sizes, reverse=True)
        assert min(sizes) == abs(m.minor) // n

    @given(money, ratio_lists)
    def test_ratio_parts_add_up_and_track_the_exact_share(
        self, m: Money, ratios: list[int]
    ) -> None:
        """allocate(ratios) sums exactly and each part is within one unit of amount*r/sum(r)."""
        parts = m.allocate(ratios)
        assert len(parts) == len(ratios)
        assert sum(parts) == m
        total = sum(ratios)
        for part, r in zip(parts, ratios, strict=True):
            share = Fraction(m.minor * r, total)
            assert abs(part.minor - share) <= 1
            assert math.floor(abs(share)) <= abs(part.minor) <= math.floor(abs(share)) + 1
            assert part.minor * m.minor >= 0
            if r == 0:
                assert part.is_zero()

    @given(money, ratio_lists)
    def test_leftover_units_go_to_the_first_nonzero_ratios(
        self, m: Money, ratios: list[int]
    ) -> None:
        """Beyond its rounded-down share, a part gets one leftover unit, earliest parts first."""
        parts = m.allocate(ratios)
        total = sum(ratios)
        extras = [
            abs(part.minor) - math.floor(Fraction(abs(m.minor) * r, total))
            for part, r in zip(parts, ratios, strict=True)
        ]
        eligible = [extra for extra, r in zip(extras, ratios, strict=True) if r]
        assert all(extra == 0 for extra, r in zip(extras, ratios, strict=True) if not r)
        assert eligible == sorted(eligible, reverse=True)
        assert set(eligible) <= {0, 1}

    @given(
        money,
        st.lists(
            st.decimals(min_value=0, max_value=100, places=3, allow_nan=False),
            min_size=1,
            max_size=10,
        ).filter(any),
    )
    def test_decimal_ratios_add_up_and_track_the_exact_share(
        self, m: Money, ratios: list[Decimal]
    ) -> None:
        """Decimal ratios split exactly, each part within one unit of its exact share."""
        parts = m.allocate(ratios)
        assert sum(parts) == m
        total = sum(Fraction(r) for r in ratios)
        for part, r in zip(parts, ratios, strict=True):
            share = Fraction(m.minor) * Fraction(r) / total
            assert abs(part.minor - share) <= 1
            assert math.floor(abs(share)) <= abs(part.minor) <= math.floor(abs(share)) + 1

    @given(money, st.integers(min_value=1, max_value=20))
    def test_negative_amount_allocates_as_negated_absolute(self, m: Money, n: int) -> None:
        """A negative amount splits like its absolute value, negated, part by part."""
        assert (-abs(m)).allocate(n) == tuple(-p for p in abs(m).allocate(n))

    @given(money, ratio_lists)
    def test_negative_amount_allocates_ratios_as_negated_absolute(
        self, m: Money, ratios: list[int]
    ) -> None:
        """A negative amount splits by ratios like its absolute value, negated."""
        assert (-abs(m)).allocate(ratios) == tuple(-p for p in abs(m).allocate(ratios))

    @given(money)
    def test_allocating_into_one_part_is_the_amount(self, m: Money) -> None:
        """allocate(1) and allocate([k]) return the amount itself."""
        assert m.allocate(1) == (m,)
        assert m.allocate([7]) == (m,)

    def test_thousand_dollars_over_three(self) -> None:
        """$1,000.00 over 3 is 333.34, 333.33, 333.33."""
        assert strs(aud("1000.00").allocate(3)) == ["AUD 333.34", "AUD 333.33", "AUD 333.33"]

    def test_two_cents_over_three(self) -> None:
        """$0.02 over 3 is 0.01, 0.01, 0.00."""
        assert strs(aud("0.02").allocate(3)) == ["AUD 0.01", "AUD 0.01", "AUD 0.00"]

    def test_hundred_yen_over_three(self) -> None:
        """JPY 100 over 3 is 34, 33, 33: yen have no minor unit."""
        parts = Money.of(100, "JPY").allocate(3)
        assert parts == tuple(Money.of(n, "JPY") for n in (34, 33, 33))

    def test_kuwaiti_dinar_splits_in_fils(self) -> None:
        """KWD has 3 decimals, so 1 KWD over 3 is 0.334, 0.333, 0.333."""
        parts = Money.of(1, "KWD").allocate(3)
        assert strs(parts) == ["KWD 0.334", "KWD 0.333", "KWD 0.333"]

    def test_hundred_dollars_by_one_to_two(self) -> None:
        """$100 by ratios 1:2 is 33.34 and 66.66, the leftover cent going to the first part."""
        assert strs(aud("100").allocate([1, 2])) == ["AUD 33.34", "AUD 66.66"]

    def test_leftover_skips_zero_ratios(self) -> None:
        """A zero ratio gets nothing, not even a leftover unit."""
        assert strs(aud("0.01").allocate([0, 1, 1])) == ["AUD 0.00", "AUD 0.01", "AUD 0.00"]

    def test_negative_example(self) -> None:
        """-$0.02 over 3 is -0.01, -0.01, 0.00."""
        assert strs(aud("-0.02").allocate(3)) == ["AUD -0.01", "AUD -0.01", "AUD 0.00"]


class TestMinorUnitRoundTrip:
    @given(st.integers(min_value=-(10**25), max_value=10**25))
    def test_from_minor_round_trips_in_every_currency(self, units: int) -> None:
        """For every currency in CURRENCIES, from_minor(m.minor) == m and minor counts units."""
        for code, decimals in CURRENCIES.items():
            with localcontext() as ctx:
                ctx.prec = 100
                amount = Decimal(units) / Decimal(10**decimals)
            m = Money.of(amount, code)
            assert m.minor == units
            assert Money.from_minor(m.minor, code) == m
            assert Money.from_minor(units, code).amount == amount

    @given(currencies, st.data())
    def test_decimal_amounts_round_trip(self, code: str, data: st.DataObject) -> None:
        """An amount drawn as a Decimal with the currency's places round-trips through minor."""
        amount = data.draw(
            st.decimals(
                min_value=-(10**12),
                max_value=10**12,
                places=CURRENCIES[code],
                allow_nan=False,
                allow_infinity=False,
            )
        )
        m = Money.of(amount, code)
        assert m.amount == amount
        assert Money.from_minor(m.minor, code) == m


class TestToFloat:
    @given(money)
    def test_to_float_is_the_nearest_float_of_the_amount(self, m: Money) -> None:
        """to_float() is the float nearest the amount; with at most 15 significant digits
        its shortest repr reads back as exactly the amount."""
        result = m.to_float()
        assert type(result) is float
        assert result == float(m.amount)
        assert Decimal(repr(result)) == m.amount

    @pytest.mark.parametrize(
        ("amount", "currency", "expected"),
        [
            ("12.30", "AUD", 12.3),
            ("-0.01", "USD", -0.01),
            ("0", "AUD", 0.0),
            ("1234567", "JPY", 1234567.0),
            ("-1.234", "KWD", -1.234),
            ("9" * 30, "AUD", 1e30),
        ],
    )
    def test_known_amounts(self, amount: str, currency: str, expected: float) -> None:
        """Known amounts give the float a reader expects, sign and magnitude kept."""
        assert Money.of(amount, currency).to_float() == expected

    def test_the_float_is_not_exact_so_sums_stay_on_money(self) -> None:
        """Adding floats misses a sum that adding Money gets exactly: why floats are opt-in."""
        parts = [aud("0.10"), aud("0.20")]
        assert sum(p.to_float() for p in parts) != aud("0.30").to_float()
        assert sum(parts) == aud("0.30")

    def test_float_of_money_still_raises(self) -> None:
        """float(money) raises TypeError: the conversion is asked for by name only."""
        with pytest.raises(TypeError):
            float(aud("1.00"))  # type: ignore[arg-type]


class TestWhatHostsPass:
    """Values as hosts hand them over: web-form strings, NumPy and pandas scalars, a
    changed ``decimal`` context (issue #14's second catalogue)."""

    @pytest.mark.parametrize(
        "text",
        ["1,200.00", "$12", "12,50", "1_000", "١٢", "１２", "12 50", "1e", "--5", "", " "],
    )
    def test_strings_a_person_might_mean_otherwise_are_refused(self, text: str) -> None:
        """Grouping, currency signs, decimal commas, spaces inside and other scripts'
        digits are refused; Python's Decimal alone reads "١٢" as 12."""
        with pytest.raises(InvalidMoney, match="not a number") as caught:
            Money.of(text, "AUD")
        assert caught.value.field == "amount"

    @pytest.mark.parametrize(
        ("text", "amount"),
        [
            (" 12.30 ", "12.30"),
            ("+10", "10.00"),
            (".5", "0.50"),
            ("5.", "5.00"),
            ("1.2E+3", "1200.00"),
        ],
    )
    def test_the_documented_forms_are_read_exactly(self, text: str, amount: str) -> None:
        """Sign, a bare point and an exponent are plain notation, read exactly."""
        assert Money.of(text, "AUD").amount == Decimal(amount)

    @given(st.text(max_size=12))
    def test_any_string_is_an_amount_or_invalid_money(self, text: str) -> None:
        """Whatever a form sends, Money.of answers with an amount or InvalidMoney."""
        try:
            money = Money.of(text, "AUD")
        except InvalidMoney:
            return
        assert text.strip().isascii()
        assert money.amount == Decimal(text.strip())

    def test_numpy_and_pandas_integers_are_exact(self) -> None:
        """NumPy and pandas integers are accepted wherever an int is: amounts, minor
        units, allocation counts; their floats and bools are refused."""
        np = pytest.importorskip("numpy")
        assert Money.of(np.int64(5), "AUD") == Money.of(5, "AUD")
        assert Money.from_minor(np.int32(1234), "AUD") == Money.of("12.34", "AUD")
        assert Money.of("10", "AUD").allocate(np.int64(3)) == Money.of("10", "AUD").allocate(3)
        for value, reason in ((np.float64(5.5), "floats"), (np.bool_(True), "not bool")):
            with pytest.raises(InvalidMoney, match=reason):
                Money.of(value, "AUD")

    def test_pandas_missing_values_are_refused(self) -> None:
        """pandas' NA (an ORM's NULL in a frame) is refused, naming its type."""
        pd = pytest.importorskip("pandas")
        with pytest.raises(InvalidMoney, match="not NAType"):
            Money.of(pd.NA, "AUD")

    @given(
        a=st.decimals(min_value=-(10**12), max_value=10**12, places=2),
        b=st.decimals(min_value=-(10**12), max_value=10**12, places=2),
        prec=st.integers(1, 6),
    )
    def test_arithmetic_ignores_the_hosts_decimal_context(
        self, a: Decimal, b: Decimal, prec: int
    ) -> None:
        """A host that sets a low precision (or traps Inexact) gets the same exact sums,
        products and splits as under the default context."""
        x, y = Money.of(a, "AUD"), Money.of(b, "AUD")
        expected = (x + y, x - y, x * 3, x.allocate(3))
        with localcontext() as context:
            context.prec = prec
            context.traps[decimal.Inexact] = True
            assert (x + y, x - y, x * 3, x.allocate(3)) == expected
