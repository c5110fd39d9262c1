"""Practices, staff, patients, plans and billing cycles, plus the field rules every type shares."""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pendulum
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smilepass_core.domain import (
    BillingCycle,
    Campaign,
    InstalmentAttempt,
    Member,
    MembershipPlan,
    Patient,
    Payment,
    PaymentKind,
    PaymentOutcome,
    PaymentPlan,
    PaymentType,
    Practice,
    PricePoint,
    Referral,
    StaffUser,
    StatusChange,
    check_successor,
)
from smilepass_core.domain.members import MembershipStatus
from smilepass_core.errors import (
    CurrencyMismatch,
    InvalidValue,
    NaiveDatetime,
    RuleViolation,
    UnknownCurrency,
    UnknownTimezone,
)
from smilepass_core.money import Money
from smilepass_core.testing import strategies as sps

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
NAIVE = datetime(2026, 5, 1, 9, 0)
ADA = Patient("pat-1", "Ada Lovelace")


def aud(amount: str) -> Money:
    return Money.of(amount, "AUD")


# -- builders with valid defaults, so each test changes one field ---------------------


def practice(**kw: Any) -> Practice:
    return Practice(
        **{"id": "p-1", "name": "Harbour Dental", "timezone": "Australia/Sydney", "currency": "AUD"}
        | kw
    )


def staff_user(**kw: Any) -> StaffUser:
    return StaffUser(**{"id": "s-1", "practice_id": "p-1", "name": "Dr Nguyen"} | kw)


def patient(**kw: Any) -> Patient:
    return Patient(**{"id": "pat-1", "name": "Ada Lovelace"} | kw)


def membership_plan(**kw: Any) -> MembershipPlan:
    return MembershipPlan(
        **{
            "id": "gold",
            "practice_id": "p-1",
            "name": "Gold",
            "price": aud("49.90"),
            "billing_cycle": BillingCycle.MONTHLY,
        }
        | kw
    )


def member(**kw: Any) -> Member:
    return Member.enrol(
        **{
            "id": "m-1",
            "practice_id": "p-1",
            "plan_id": "gold",
            "account_holder": ADA,
            "start_date": T0.date(),
            "at": T0,
        }
        | kw
    )


def payment_plan(**kw: Any) -> PaymentPlan:
    return PaymentPlan.offer(
        **{
            "id": "pp-1",
            "practice_id": "p-1",
            "patient": ADA,
            "total": aud("900"),
            "payment_type": PaymentType.PLAN,
            "instalments": 3,
            "first_due": T0.date(),
            "at": T0,
        }
        | kw
    )


def payment(**kw: Any) -> Payment:
    return Payment(
        **{
            "id": "pay-1",
            "practice_id": "p-1",
            "amount": aud("10"),
            "kind": PaymentKind.CHARGE,
            "outcome": PaymentOutcome.SUCCEEDED,
            "at": T0,
            "member_id": "m-1",
        }
        | kw
    )


def campaign(**kw: Any) -> Campaign:
    return Campaign(
        **{
            "id": "c-1",
            "practice_id": "p-1",
            "name": "Spring",
            "promo_code": "SPRING",
            "active_from": T0,
        }
        | kw
    )


def referral(**kw: Any) -> Referral:
    return Referral.open(
        **{
            "id": "r-1",
            "practice_id": "p-1",
            "account_holder": ADA,
            "start_date": T0.date(),
            "at": T0,
        }
        | kw
    )


BUILDERS: dict[str, Callable[..., Any]] = {
    "practice": practice,
    "staff_user": staff_user,
    "patient": patient,
    "membership_plan": membership_plan,
    "member": member,
    "payment_plan": payment_plan,
    "payment": payment,
    "campaign": campaign,
    "referral": referral,
}

#: (builder, id field, may be None)
ID_FIELDS = [
    ("practice", "id", False),
    ("staff_user", "id", False),
    ("staff_user", "practice_id", False),
    ("patient", "id", False),
    ("membership_plan", "id", False),
    ("membership_plan", "practice_id", False),
    ("member", "id", False),
    ("member", "practice_id", False),
    ("member", "plan_id", False),
    ("member", "campaign_id", True),
    ("member", "staff_user_id", True),
    ("payment_plan", "id", False),
    ("payment_plan", "practice_id", False),
    ("payment_plan", "member_id", True),
    ("payment", "id", False),
    ("payment", "practice_id", False),
    ("payment", "member_id", True),
    ("campaign", "id", False),
    ("campaign", "practice_id", False),
    ("referral", "id", False),
    ("referral", "practice_id", False),
    ("referral", "campaign_id", True),
    ("referral", "staff_user_id", True),
    ("referral", "referring_member_id", True),
]

NAME_FIELDS = [
    ("practice", "name"),
    ("staff_user", "name"),
    ("patient", "name"),
    ("membership_plan", "name"),
    ("campaign", "name"),
    ("campaign", "promo_code"),
]


class TestPractice:
    """A practice has an IANA time zone and an ISO 4217 currency."""

    @given(tz=sps.timezones())
    def test_known_time_zones_are_accepted(self, tz: str) -> None:
        """Any IANA time zone name is kept as given."""
        assert practice(timezone=tz).timezone == tz

    @pytest.mark.parametrize("tz", ["Mars/Olympus_Mons", "Australia/Sidney", "", "   ", None, 10])
    def test_unknown_time_zones_are_refused(self, tz: object) -> None:
        """A name that is not an IANA time zone raises UnknownTimezone naming `timezone`."""
        with pytest.raises(UnknownTimezone, match=r"^timezone: ") as caught:
            practice(timezone=tz)
        assert caught.value.value == tz
        assert repr(tz) in str(caught.value)

    @pytest.mark.parametrize(
        ("given_", "stored"), [("aud", "AUD"), (" usd ", "USD"), ("JPY", "JPY")]
    )
    def test_currency_is_normalised(self, given_: str, stored: str) -> None:
        """A currency code in any case, padded, is stored upper-case."""
        assert practice(currency=given_).currency == stored

    @pytest.mark.parametrize("code", ["XYZ", "AU", "", "dollars", None, 36])
    def test_unknown_currencies_are_refused(self, code: object) -> None:
        """A code that is not ISO 4217 raises UnknownCurrency naming `currency` and the value."""
        with pytest.raises(UnknownCurrency, match=r"^currency: ") as caught:
            practice(currency=code)
        assert repr(code) in str(caught.value)

    @given(p=sps.practices())
    def test_generated_practices_are_valid(self, p: Practice) -> None:
        """Generated practices carry a known zone and an upper-case currency."""
        assert p.timezone in sps.TIMEZONES
        assert p.currency == p.currency.upper()


def _expected_nth(cycle: BillingCycle, anchor: date, k: int) -> date:
    if cycle is BillingCycle.WEEKLY:
        return anchor + timedelta(weeks=k)
    if cycle is BillingCycle.FORTNIGHTLY:
        return anchor + timedelta(weeks=2 * k)
    step = k if cycle is BillingCycle.MONTHLY else 12 * k
    months = anchor.month - 1 + step
    year, month = anchor.year + months // 12, months % 12 + 1
    return date(year, month, min(anchor.day, calendar.monthrange(year, month)[1]))


class TestBillingCycle:
    """BillingCycle.nth computes each date from the anchor, clamping to the month's end."""

    @given(
        anchor=st.dates(min_value=date(2000, 1, 1), max_value=date(2060, 12, 31)),
        k=st.integers(0, 120),
        cycle=st.sampled_from(BillingCycle),
    )
    def test_nth_is_computed_from_the_anchor(
        self, anchor: date, k: int, cycle: BillingCycle
    ) -> None:
        """The k-th date equals the hand-computed date from the anchor for every cycle, and
        pendulum's clamping month and year steps for the monthly and annual ones."""
        assert cycle.nth(anchor, k) == _expected_nth(cycle, anchor, k)
        if cycle in (BillingCycle.MONTHLY, BillingCycle.ANNUALLY):
            start = pendulum.Date(anchor.year, anchor.month, anchor.day)
            moved = start.add(months=k) if cycle is BillingCycle.MONTHLY else start.add(years=k)
            assert cycle.nth(anchor, k) == date(moved.year, moved.month, moved.day)

    def test_a_date_past_the_calendar_is_refused(self) -> None:
        """A step past the year 9999 raises InvalidValue naming ``k``."""
        with pytest.raises(InvalidValue) as caught:
            BillingCycle.ANNUALLY.nth(date(9990, 1, 1), 10)
        assert caught.value.field == "k"
        assert BillingCycle.ANNUALLY.nth(date(9990, 1, 1), 9) == date(9999, 1, 1)

    @pytest.mark.parametrize("cycle", list(BillingCycle))
    def test_k_zero_is_the_anchor(self, cycle: BillingCycle) -> None:
        """nth(anchor, 0) is the anchor itself."""
        assert cycle.nth(date(2028, 2, 29), 0) == date(2028, 2, 29)

    def test_month_ends_do_not_drift(self) -> None:
        """From 31 Jan 2024 monthly: 29 Feb, 31 Mar, 30 Apr (never stuck on the 29th)."""
        dates = [BillingCycle.MONTHLY.nth(date(2024, 1, 31), k) for k in range(4)]
        assert dates == [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30)]

    def test_leap_day_yearly(self) -> None:
        """From 29 Feb 2028 yearly: 28 Feb in common years, 29 Feb again in 2032."""
        dates = [BillingCycle.ANNUALLY.nth(date(2028, 2, 29), k) for k in range(5)]
        assert dates[1:4] == [date(2029, 2, 28), date(2030, 2, 28), date(2031, 2, 28)]
        assert dates[4] == date(2032, 2, 29)

    @pytest.mark.parametrize("cycle", list(BillingCycle))
    @pytest.mark.parametrize("k", [-1, -12, True, 1.0, "1", None])
    def test_k_must_be_a_whole_number_from_zero(self, cycle: BillingCycle, k: object) -> None:
        """A negative, bool or non-int k raises InvalidValue naming `k`."""
        with pytest.raises(InvalidValue) as caught:
            cycle.nth(date(2026, 1, 31), k)  # type: ignore[arg-type]
        assert str(caught.value) == f"k: must be a whole number >= 0 (got {k!r})"
        assert caught.value.field == "k"
        assert caught.value.value is k


class TestMembershipPlan:
    """A membership plan has a positive price and a billing cycle."""

    @pytest.mark.parametrize("price", [aud("0"), aud("-1"), 49, None])
    def test_price_must_be_positive_money(self, price: object) -> None:
        """A zero, negative or non-Money price raises InvalidValue naming `price`."""
        with pytest.raises(InvalidValue) as caught:
            membership_plan(price=price)
        assert str(caught.value) == f"price: must be a positive Money (got {price!r})"
        assert (caught.value.field, caught.value.value) == ("price", price)

    @pytest.mark.parametrize("cycle", ["daily", 3, None])
    def test_billing_cycle_must_be_a_cycle(self, cycle: object) -> None:
        """A billing cycle that names no BillingCycle is refused, naming the field and the
        cycles (a string that names one is parsed: tests/test_lifecycle.py)."""
        with pytest.raises(InvalidValue, match=r"^billing_cycle: must be a BillingCycle: weekly"):
            membership_plan(billing_cycle=cycle)

    @given(
        plan=sps.membership_plans(),
        anchor=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)),
        k=st.integers(0, 40),
    )
    def test_charge_dates_follow_the_cycle(
        self, plan: MembershipPlan, anchor: date, k: int
    ) -> None:
        """charge_date(start, k) is the billing cycle's k-th date from the start."""
        assert plan.charge_date(anchor, k) == plan.billing_cycle.nth(anchor, k)
        assert plan.price.is_positive()


class TestPriceHistory:
    """A plan's price rises through ``reprice``; each billing date keeps the price of its
    day (docs/domain.md, "Membership plans and billing cycles")."""

    def test_reprice_keeps_the_price_before_the_day(self) -> None:
        plan = membership_plan(price=aud("30.00"))
        dearer = plan.reprice(aud("35.00"), on=date(2025, 1, 1))
        dearest = dearer.reprice(aud("40.00"), on=date(2026, 1, 1))
        assert dearest.price == aud("40.00")
        assert dearest.earlier_prices == (
            PricePoint(date(2025, 1, 1), aud("30.00")),
            PricePoint(date(2026, 1, 1), aud("35.00")),
        )
        days = [date(2024, 12, 31), date(2025, 1, 1), date(2025, 12, 31), date(2026, 1, 1)]
        assert [str(dearest.price_on(d)) for d in days] == [
            "AUD 30.00",
            "AUD 35.00",
            "AUD 35.00",
            "AUD 40.00",
        ]

    @given(
        plan=sps.membership_plans(currency="AUD"),
        on=st.dates(min_value=date(2031, 1, 1), max_value=date(2040, 12, 31)),
        price=sps.positive_money("AUD"),
        day=st.dates(min_value=date(2000, 1, 1), max_value=date(2045, 12, 31)),
    )
    def test_a_reprice_changes_no_earlier_day(
        self, plan: MembershipPlan, on: date, price: Money, day: date
    ) -> None:
        """Before ``on`` every day keeps its price; from ``on``, the new one."""
        repriced = plan.reprice(price, on=on)
        assert repriced.price_on(day) == (plan.price_on(day) if day < on else price)

    def test_a_reprice_not_after_the_last_is_refused(self) -> None:
        dearer = membership_plan(price=aud("30.00")).reprice(aud("35.00"), on=date(2025, 1, 1))
        for on in (date(2025, 1, 1), date(2024, 6, 1)):
            with pytest.raises(InvalidValue) as caught:
                dearer.reprice(aud("40.00"), on=on)
            assert str(caught.value) == (
                f"on: must come after the last repricing (2025-01-01) (got {on!r})"
            )

    @pytest.mark.parametrize(
        ("price", "on", "error"),
        [
            (aud("0"), date(2025, 1, 1), InvalidValue),
            (Money.of("35.00", "USD"), date(2025, 1, 1), CurrencyMismatch),
            (aud("35.00"), datetime(2025, 1, 1, tzinfo=UTC), InvalidValue),
        ],
    )
    def test_a_bad_reprice_is_refused(self, price: Money, on: Any, error: type) -> None:
        with pytest.raises(error):
            membership_plan().reprice(price, on=on)

    def test_earlier_prices_must_be_in_order_and_in_the_currency(self) -> None:
        with pytest.raises(InvalidValue, match=r"^earlier_prices: must come after"):
            membership_plan(
                earlier_prices=[
                    PricePoint(date(2025, 1, 1), aud("30.00")),
                    PricePoint(date(2025, 1, 1), aud("35.00")),
                ]
            )
        with pytest.raises(CurrencyMismatch):
            membership_plan(earlier_prices=[PricePoint(date(2025, 1, 1), Money.of("1", "USD"))])
        for bad in ([(date(2025, 1, 1), aud("30.00"))], "2025-01-01", None):
            with pytest.raises(InvalidValue, match=r"^earlier_prices: must be a sequence"):
                membership_plan(earlier_prices=bad)
        with pytest.raises(InvalidValue, match=r"^price: must be a positive Money"):
            PricePoint(date(2025, 1, 1), aud("0"))

    def test_a_save_that_rewrites_a_price_is_refused(self) -> None:
        """What every store's ``save`` checks (``check_successor``): a new price through
        ``reprice`` only, and the earlier prices kept."""
        plan = membership_plan(price=aud("30.00"))
        dearer = plan.reprice(aud("35.00"), on=date(2025, 1, 1))
        check_successor(plan, dearer)
        check_successor(dearer, dearer.reprice(aud("36.00"), on=date(2026, 1, 1)))
        rewrites = [
            (plan, attrs.evolve(plan, price=aud("31.00"))),
            (dearer, attrs.evolve(dearer, earlier_prices=())),
            (dearer, attrs.evolve(plan, price=aud("35.00"))),
            (plan, attrs.evolve(dearer, earlier_prices=[PricePoint(date(2025, 1, 1), aud("29"))])),
        ]
        for kept, new in rewrites:
            with pytest.raises(RuleViolation) as caught:
                check_successor(kept, new)
            assert (caught.value.rule, caught.value.field) == ("price_rewritten", "price")


class TestIdsAndNames:
    """Ids are non-empty strings without surrounding spaces; names are never blank."""

    @pytest.mark.parametrize(("kind", "field", "optional"), ID_FIELDS)
    @pytest.mark.parametrize("bad", ["", " ", "x ", " x", "\tx", 7, None])
    def test_bad_ids_are_refused(self, kind: str, field: str, optional: bool, bad: object) -> None:
        """An empty, padded or non-string id raises InvalidValue naming the field."""
        if bad is None and optional:
            extra = {"payment_plan_id": "pp-1"} if kind == "payment" else {}
            assert getattr(BUILDERS[kind](**{field: None}, **extra), field) is None
            return
        with pytest.raises(InvalidValue) as caught:
            BUILDERS[kind](**{field: bad})
        assert str(caught.value) == f"{field}: must be a non-empty id string (got {bad!r})"
        assert (caught.value.field, caught.value.value) == (field, bad)

    @pytest.mark.parametrize(("kind", "field", "optional"), ID_FIELDS)
    def test_good_ids_are_kept(self, kind: str, field: str, optional: bool) -> None:
        """An id with inner spaces or punctuation is kept exactly."""
        assert getattr(BUILDERS[kind](**{field: "a b/c-1"}), field) == "a b/c-1"

    @pytest.mark.parametrize(("kind", "field"), NAME_FIELDS)
    @pytest.mark.parametrize("bad", ["", "   ", "\n", None, 3])
    def test_blank_names_are_refused(self, kind: str, field: str, bad: object) -> None:
        """A blank or non-string name raises InvalidValue naming the field."""
        with pytest.raises(InvalidValue) as caught:
            BUILDERS[kind](**{field: bad})
        assert str(caught.value) == f"{field}: must be a non-blank string (got {bad!r})"
        assert (caught.value.field, caught.value.value) == (field, bad)

    @pytest.mark.parametrize("field", ["email", "phone"])
    def test_contact_details_are_optional_but_not_blank(self, field: str) -> None:
        """Email and phone may be None but not blank."""
        assert getattr(patient(**{field: None}), field) is None
        with pytest.raises(InvalidValue) as caught:
            patient(**{field: "  "})
        assert str(caught.value) == f"{field}: must be a non-blank string (got '  ')"


class TestDays:
    """start_date is a calendar date, never a datetime."""

    @pytest.mark.parametrize("kind", ["member", "referral"])
    @pytest.mark.parametrize("bad", [T0, "2026-05-01", None])
    def test_start_date_must_be_a_date(self, kind: str, bad: object) -> None:
        """A datetime or other non-date start_date raises InvalidValue naming `start_date`."""
        with pytest.raises(InvalidValue) as caught:
            BUILDERS[kind](start_date=bad)
        assert str(caught.value) == f"start_date: must be a date (not a datetime) (got {bad!r})"
        assert (caught.value.field, caught.value.value) == ("start_date", bad)


def _completed_plan() -> PaymentPlan:
    plan = payment_plan(payment_type=PaymentType.INSTANT, instalments=1)
    return plan.record_payment(at=T0 + timedelta(days=1))


#: Every place that takes an instant, with the naive call and the field it should name.
NAIVE_CALLS: dict[str, tuple[Callable[[], object], str]] = {
    "StatusChange.at": (lambda: StatusChange(NAIVE, None, MembershipStatus.PENDING), "at"),
    "Member.enrol": (lambda: member(at=NAIVE), "at"),
    "Member.transition": (lambda: member().transition(MembershipStatus.ACTIVE, at=NAIVE), "at"),
    "Member.activate": (lambda: member().activate(at=NAIVE), "at"),
    "Member.fail": (lambda: member().fail(at=NAIVE), "at"),
    "Member.suspend": (lambda: member().activate(at=T0).suspend(at=NAIVE), "at"),
    "Member.cancel": (lambda: member().cancel(at=NAIVE), "at"),
    "PaymentPlan.offer": (lambda: payment_plan(at=NAIVE), "at"),
    "PaymentPlan.activate": (lambda: payment_plan().activate(at=NAIVE), "at"),
    "PaymentPlan.cancel": (lambda: payment_plan().cancel(at=NAIVE), "at"),
    "PaymentPlan.record_payment": (lambda: payment_plan().record_payment(at=NAIVE), "at"),
    "PaymentPlan.record_failure": (lambda: payment_plan().record_failure(at=NAIVE), "at"),
    "PaymentPlan.archive": (lambda: _completed_plan().archive(at=NAIVE), "at"),
    "PaymentPlan.archived_at": (
        lambda: attrs.evolve(_completed_plan(), archived_at=NAIVE),
        "archived_at",
    ),
    "InstalmentAttempt.at": (lambda: InstalmentAttempt(1, NAIVE, aud("1"), True), "at"),
    "Payment.at": (lambda: payment(at=NAIVE), "at"),
    "Campaign.active_from": (lambda: campaign(active_from=NAIVE), "active_from"),
    "Campaign.active_until": (lambda: campaign(active_until=NAIVE), "active_until"),
    "Referral.open": (lambda: referral(at=NAIVE), "at"),
    "Referral.convert": (lambda: referral().convert(member_id="m-9", at=NAIVE), "at"),
    "Referral.cancel": (lambda: referral().cancel(at=NAIVE), "at"),
}

#: Questions that take an instant: refused too (the parameter is called ``instant``).
NAIVE_QUERIES: dict[str, Callable[[], object]] = {
    "Member.status_at": lambda: member().status_at(NAIVE),
    "Member.status_before": lambda: member().status_before(NAIVE),
    "Member.is_active_at": lambda: member().is_active_at(NAIVE),
    "PaymentPlan.status_at": lambda: payment_plan().status_at(NAIVE),
    "Referral.status_before": lambda: referral().status_before(NAIVE),
    "Campaign.is_active_at": lambda: campaign().is_active_at(NAIVE),
}


class TestNaiveDatetimes:
    """Every instant the domain takes must be timezone-aware."""

    @pytest.mark.parametrize("where", list(NAIVE_CALLS))
    def test_a_naive_instant_is_refused_naming_the_field(self, where: str) -> None:
        """A naive datetime raises NaiveDatetime whose message names the field and the value."""
        call, field = NAIVE_CALLS[where]
        with pytest.raises(NaiveDatetime, match=rf"^{field}: naive datetime") as caught:
            call()
        assert caught.value.value == NAIVE
        assert repr(NAIVE) in str(caught.value)

    @pytest.mark.parametrize("where", list(NAIVE_QUERIES))
    def test_a_naive_query_instant_is_refused(self, where: str) -> None:
        """Questions asked at a naive datetime raise NaiveDatetime naming the value."""
        with pytest.raises(NaiveDatetime, match="naive datetime") as caught:
            NAIVE_QUERIES[where]()
        assert caught.value.value == NAIVE

    def test_aware_instants_in_any_zone_are_stored_in_utc(self) -> None:
        """An aware instant in a local zone is kept as the same instant, in UTC."""
        local = datetime(2026, 5, 1, 19, 0, tzinfo=ZoneInfo("Australia/Sydney"))
        p = payment(at=local)
        assert p.at == local
        assert p.at.tzinfo is UTC
