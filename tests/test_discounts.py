"""Discounts: percentage or fixed, on some plans, for some billing dates or for ever, once,
per dependent or per converted referral; the price due is exact, never negative, and the
billing engine charges it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smilepass_core import (
    BillingCycle,
    CurrencyMismatch,
    InvalidValue,
    Member,
    MembershipPlan,
    Money,
    Patient,
    Payment,
    RuleViolation,
)
from smilepass_core.domain.billing import billing_statement, check_membership_charge
from smilepass_core.domain.discounts import (
    AppliedDiscount,
    Discount,
    DiscountBasis,
    check_grant_currency,
    price_due,
)
from smilepass_core.periods import local_midnight
from smilepass_core.testing import strategies as sps

SYD = "Australia/Sydney"
GOLD = MembershipPlan("gold", "syd", "Gold", Money.of("30.00", "AUD"), BillingCycle.MONTHLY)
FAMILY = Discount("family", "syd", "Family", percent=10, basis=DiscountBasis.PER_DEPENDENT, limit=3)
SPRING = Discount("spring", "syd", "Spring promo", amount=Money.of("5.00", "AUD"), cycles=3)
REFER = Discount("refer", "syd", "Refer a friend", percent=Decimal("12.5"), basis="per_referral")


def _local(day: date, hour: int = 9) -> datetime:
    return local_midnight(day, SYD) + timedelta(hours=hour)


def _member(start: date) -> Member:
    member = Member.enrol(
        id="m1",
        practice_id="syd",
        plan_id="gold",
        account_holder=Patient("p1", "Ada Lovelace"),
        dependents=(Patient("p2", "Byron"), Patient("p3", "Annabella")),
        start_date=start,
        at=_local(start),
    )
    return member.activate(at=_local(start, 10))


def _charge(pid: str, at: datetime, amount: str) -> Payment:
    return Payment(pid, "syd", Money.of(amount, "AUD"), "charge", "succeeded", at, member_id="m1")


class TestWorkedExample:
    """docs/domain.md, "Discounts": Ada, two dependents, the family discount and the spring
    promo code, on Gold at AUD 30.00 a month."""

    GRANTS = (AppliedDiscount(FAMILY, units=2), AppliedDiscount(SPRING))

    def test_the_price_of_each_billing_date(self) -> None:
        """20 % for two dependents (AUD 6.00) for ever, AUD 5.00 for the first three dates."""
        prices = [price_due(GOLD, k, self.GRANTS) for k in range(5)]
        assert [str(p.due) for p in prices] == ["AUD 19.00"] * 3 + ["AUD 24.00"] * 2
        assert prices[0].reductions == (
            ("family", Money.of("6.00", "AUD")),
            ("spring", Money.of("5.00", "AUD")),
        )
        assert prices[3].reductions == (("family", Money.of("6.00", "AUD")),)
        assert str(prices[0].discount) == "AUD 11.00"

    def test_the_statement_charges_the_discounted_price(self) -> None:
        """Paying each discounted price settles each date; the list price would not."""
        member = _member(date(2026, 1, 15))
        dates = [date(2026, m, 15) for m in range(1, 6)]
        ledger = [
            _charge(f"c{k}", _local(d, 10), "19.00" if k < 3 else "24.00")
            for k, d in enumerate(dates)
        ]
        statement = billing_statement(
            member, GOLD, ledger, at=_local(date(2026, 5, 20)), timezone=SYD, discounts=self.GRANTS
        )
        assert [str(c.amount) for c in statement.charges] == ["AUD 19.00"] * 3 + ["AUD 24.00"] * 2
        assert all(c.settled for c in statement.charges)
        assert (str(statement.due), str(statement.outstanding)) == ("AUD 105.00", "AUD 0.00")
        plain = billing_statement(member, GOLD, ledger, at=_local(date(2026, 5, 20)), timezone=SYD)
        assert str(plain.outstanding) == "AUD 45.00"  # 5 x 30.00 due, 105.00 paid

    def test_a_charge_must_be_the_discounted_price(self) -> None:
        member = _member(date(2026, 1, 15))
        check_membership_charge(
            member,
            GOLD,
            [],
            _charge("c0", _local(date(2026, 1, 15), 10), "19.00"),
            timezone=SYD,
            discounts=self.GRANTS,
        )
        with pytest.raises(RuleViolation) as caught:
            check_membership_charge(
                member,
                GOLD,
                [],
                _charge("c0", _local(date(2026, 1, 15), 10), "30.00"),
                timezone=SYD,
                discounts=self.GRANTS,
            )
        assert caught.value.context["expected"] == Money.of("19.00", "AUD")


class TestRules:
    def test_units_are_capped_and_a_flat_discount_counts_once(self) -> None:
        """Five dependents count as three (the limit); a flat promo granted twice, once."""
        assert str(price_due(GOLD, 0, [AppliedDiscount(FAMILY, units=5)]).due) == "AUD 21.00"
        assert str(price_due(GOLD, 0, [AppliedDiscount(SPRING, units=2)]).due) == "AUD 25.00"
        assert str(price_due(GOLD, 0, [AppliedDiscount(REFER, units=2)]).due) == "AUD 22.50"

    def test_a_discount_runs_from_its_first_date_for_its_cycles(self) -> None:
        """Granted at billing date 4 (a code used later), for 3 dates: 4, 5 and 6."""
        grant = [AppliedDiscount(SPRING, first=4)]
        assert [str(price_due(GOLD, k, grant).due) for k in range(3, 8)] == [
            "AUD 30.00",
            "AUD 25.00",
            "AUD 25.00",
            "AUD 25.00",
            "AUD 30.00",
        ]

    def test_only_the_plans_it_names(self) -> None:
        premium = Discount("p", "syd", "Premium only", percent=50, plans={"premium"})
        assert price_due(GOLD, 0, [AppliedDiscount(premium)]).due == GOLD.price
        elsewhere = Discount("x", "bondi", "Another practice", percent=50)
        assert price_due(GOLD, 0, [AppliedDiscount(elsewhere)]).due == GOLD.price

    def test_reductions_stop_at_the_price(self) -> None:
        """AUD 5.00 off, then 100 % off, then 10 % off: 5.00, 25.00, nothing: AUD 0.00 due."""
        free = Discount("free", "syd", "Free", percent=100)
        due = price_due(
            GOLD, 0, [AppliedDiscount(SPRING), AppliedDiscount(free), AppliedDiscount(FAMILY)]
        )
        assert due.reductions == (
            ("spring", Money.of("5.00", "AUD")),
            ("free", Money.of("25.00", "AUD")),
        )
        assert due.due == Money.zero("AUD")

    def test_a_fixed_discount_in_another_currency(self) -> None:
        usd = Discount("usd", "syd", "Dollars", amount=Money.of("5", "USD"))
        with pytest.raises(CurrencyMismatch):
            price_due(GOLD, 0, [AppliedDiscount(usd)])

    def test_without_a_date_the_list_price_is_the_price_now(self) -> None:
        """Gold at 30.00 until 31 January, 40.00 from 1 February: without ``on`` the list
        price is today's 40.00 (35.00 due with the spring promo); on 15 January, 30.00."""
        dearer = GOLD.reprice(Money.of("40.00", "AUD"), on=date(2026, 2, 1))
        spring = [AppliedDiscount(SPRING)]
        now, then = price_due(dearer, 0, spring), price_due(dearer, 0, spring, on=date(2026, 1, 15))
        assert (str(now.list_price), str(now.due)) == ("AUD 40.00", "AUD 35.00")
        assert (str(then.list_price), str(then.due)) == ("AUD 30.00", "AUD 25.00")

    def test_a_store_keeps_grants_only_in_its_currency(self) -> None:
        """A percentage has no currency and a fixed AUD 5.00 is the practice's: kept. A
        fixed USD 5.00 is refused, naming both currencies and ``discounts``."""
        usd = Discount("usd", "syd", "Dollars", amount=Money.of("5", "USD"))
        check_grant_currency([AppliedDiscount(FAMILY), AppliedDiscount(SPRING)], "AUD")
        with pytest.raises(CurrencyMismatch) as caught:
            check_grant_currency([AppliedDiscount(SPRING), AppliedDiscount(usd)], "AUD")
        error = caught.value
        assert (error.left, error.right, error.operation, error.field) == (
            "USD",
            "AUD",
            "keep discounts of",
            "discounts",
        )

    @pytest.mark.parametrize(
        ("options", "field"),
        [
            ({"percent": 101}, "percent"),
            ({"percent": 0}, "percent"),
            ({"percent": "-5"}, "percent"),
            ({"percent": 10, "amount": Money.of("1", "AUD")}, "percent"),
            ({}, "percent"),
            ({"amount": Money.of("0", "AUD")}, "amount"),
            ({"amount": Money.of("-1", "AUD")}, "amount"),
            ({"amount": "5.00"}, "amount"),
            ({"percent": 10, "cycles": 0}, "cycles"),
            ({"percent": 10, "limit": True}, "limit"),
            ({"percent": 10, "plans": "gold"}, "plans"),
            ({"percent": 10, "plans": []}, "plans"),
            ({"percent": 10, "plans": ["gold", ""]}, "plans"),
            ({"percent": 10, "basis": "per_pet"}, "basis"),
        ],
    )
    def test_bad_discounts_are_refused(self, options: dict[str, Any], field: str) -> None:
        with pytest.raises(InvalidValue) as caught:
            Discount("d", "syd", "Bad", **options)
        assert caught.value.field == field

    @pytest.mark.parametrize(
        ("options", "field"), [({"units": -1}, "units"), ({"first": True}, "first")]
    )
    def test_bad_grants_are_refused(self, options: dict[str, Any], field: str) -> None:
        with pytest.raises(InvalidValue) as caught:
            AppliedDiscount(FAMILY, **options)
        assert caught.value.field == field
        with pytest.raises(InvalidValue):
            price_due(GOLD, -1)


_DISCOUNTS = st.builds(
    Discount,
    id=st.sampled_from(["a", "b", "c"]),
    practice_id=st.just("syd"),
    name=st.just("D"),
    percent=st.decimals(Decimal("0.01"), 100, places=2),
    basis=st.sampled_from(DiscountBasis),
    plans=st.none() | st.just(frozenset({"gold"})) | st.just(frozenset({"other"})),
    cycles=st.none() | st.integers(1, 6),
    limit=st.none() | st.integers(1, 4),
) | st.builds(
    Discount,
    id=st.sampled_from(["d", "e"]),
    practice_id=st.just("syd"),
    name=st.just("D"),
    amount=st.decimals(Decimal("0.01"), 500, places=2).map(lambda d: Money.of(d, "AUD")),
    basis=st.sampled_from(DiscountBasis),
    cycles=st.none() | st.integers(1, 6),
)
_GRANTS = st.lists(
    st.builds(AppliedDiscount, _DISCOUNTS, units=st.integers(0, 5), first=st.integers(0, 6)),
    max_size=4,
)


class TestProperties:
    @given(sps.membership_plans(practice_id="syd", currency="AUD"), _GRANTS, st.integers(0, 12))
    def test_never_negative_and_every_cent_accounted_for(
        self, plan: MembershipPlan, grants: list[AppliedDiscount], number: int
    ) -> None:
        """due >= 0 and due + reductions == list price exactly; each reduction positive."""
        plan = MembershipPlan("gold", "syd", plan.name, plan.price, plan.billing_cycle)
        p = price_due(plan, number, grants)
        assert not p.due.is_negative()
        assert p.due + sum((r for _, r in p.reductions), Money.zero("AUD")) == plan.price
        assert all(r.is_positive() for _, r in p.reductions)

    @given(
        st.integers(1, 10**7).map(lambda m: Money.from_minor(m, "AUD")),
        st.decimals(Decimal("0.001"), 100, places=3),
        st.integers(1, 9),
    )
    def test_a_percentage_is_rounded_once_on_all_its_units(
        self, price: Money, percent: Decimal, units: int
    ) -> None:
        """Oracle: the reduction is the exact ``price x percent x units / 100`` rounded
        half up once, so nine dependents at 1/3 % lose no cent to nine roundings."""
        discount = Discount("d", "syd", "D", percent=percent, basis="per_dependent")
        exact = Fraction(price.minor) * Fraction(percent) * units / 100
        got = discount.reduction(price, units).minor
        assert abs(got - exact) <= Fraction(1, 2)
        assert got - exact != Fraction(-1, 2)  # a half rounds up

    @settings(max_examples=40)
    @given(_GRANTS, st.integers(1, 24))
    def test_the_statement_owes_the_sum_of_the_prices_due(
        self, grants: list[AppliedDiscount], months: int
    ) -> None:
        """Nothing paid: the statement owes exactly the prices due of its billing dates."""
        member = _member(date(2025, 1, 31))
        at = _local(date(2025, 1, 31)) + timedelta(days=31 * months)
        s = billing_statement(member, GOLD, [], at=at, timezone=SYD, discounts=grants)
        expected = [price_due(GOLD, c.number, grants).due for c in s.charges]
        assert [c.amount for c in s.charges] == expected
        assert s.outstanding == sum(expected, Money.zero("AUD"))


def test_a_grant_before_utc_midnight_is_judged_in_practice_time() -> None:
    """The statement's dates are Sydney days: a member enrolled on 1 Jan at 09:00 Sydney
    (31 Dec in UTC) is billed on 1 Jan, with the discount from date 0."""
    member = _member(date(2026, 1, 1))
    s = billing_statement(
        member,
        GOLD,
        [],
        at=datetime(2026, 1, 1, tzinfo=UTC),
        timezone=SYD,
        discounts=[AppliedDiscount(SPRING)],
    )
    assert [(str(c.due_date), str(c.amount)) for c in s.charges] == [("2026-01-01", "AUD 25.00")]
