"""Discounts kept with members and the charge amount rule, in the stores: what a
store refuses and in what order a load reads a ledger (docs/domain.md, "Ledger
rules"; catalogue rows 105, 120, 121 and 125)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import attrs
import pytest

from smilepass_core import (
    BillingCycle,
    Campaign,
    CurrencyMismatch,
    InMemoryStore,
    Member,
    MembershipPlan,
    Money,
    Patient,
    Payment,
    Practice,
    RuleViolation,
)
from smilepass_core.domain.billing import check_membership_charge
from smilepass_core.domain.discounts import AppliedDiscount, Discount
from smilepass_core.errors import InvalidRecord
from smilepass_core.io.records import from_records, to_records
from smilepass_core.queries import MemberQuery, PaymentQuery
from smilepass_core.sql import SqlStore

T0 = datetime(2026, 1, 1, 9, tzinfo=UTC)
DAY = timedelta(days=1)
GOLD = MembershipPlan("gold", "p", "Gold", Money.of("30", "AUD"), BillingCycle.MONTHLY)
PLATINUM = MembershipPlan("platinum", "p", "Platinum", Money.of("50", "AUD"), BillingCycle.MONTHLY)
SYDNEY = Practice("p", "P", "UTC", "AUD")
STORES: list[Callable[[], Any]] = [InMemoryStore, lambda: SqlStore.connect("sqlite://")]


def _ada(start: date | None = None) -> Member:
    return Member.enrol(
        id="m",
        practice_id="p",
        plan_id="gold",
        account_holder=Patient("a", "Ada Lovelace"),
        start_date=start or T0.date(),
        at=T0,
    ).activate(at=T0)


def _charge(id: str, amount: str, at: datetime) -> Payment:
    return Payment(id, "p", Money.of(amount, "AUD"), "charge", "succeeded", at, member_id="m")


@pytest.mark.parametrize("make", STORES)
def test_charges_at_one_instant_load_in_either_order(make: Callable[[], Any]) -> None:
    """January unpaid; on 1 February 60.00 (all owed) and 30.00 (February's price) at the
    same instant: a load reads them by id whatever their order in the list."""
    feb = T0 + 31 * DAY
    both = [_charge("x", "60", feb), _charge("y", "30", feb)]
    for order in (both, both[::-1]):
        store = make()
        store.load([SYDNEY, GOLD, _ada(), *order])
        assert sorted(p.id for p in store.payments.find(PaymentQuery())) == ["x", "y"]


@pytest.mark.parametrize("make", STORES)
def test_a_grant_saved_to_an_active_member_is_kept_and_prices_the_next_date(
    make: Callable[[], Any],
) -> None:
    """Granted from billing date 1 and saved: February's charge is 25.00, not 30.00."""
    store = make()
    store.load([SYDNEY, GOLD, _ada(), _charge("c0", "30", T0)])
    spring = Discount("spring", "p", "Spring", amount=Money.of("5", "AUD"))
    granted = _ada().grant(spring, first=1)
    store.members.save(granted)
    assert store.members.get("m") == granted
    store.payments.add(_charge("c1", "25", T0 + 31 * DAY))
    with pytest.raises(RuleViolation, match=r"expected AUD 25\.00"):
        store.payments.add(_charge("c2", "30", T0 + 59 * DAY))


@pytest.mark.parametrize("make", STORES)
def test_a_grant_to_a_member_kept_as_cancelled_is_refused(make: Callable[[], Any]) -> None:
    store = make()
    cancelled = _ada().cancel(at=T0 + DAY)
    store.load([SYDNEY, GOLD, cancelled])
    spring = Discount("spring", "p", "Spring", amount=Money.of("5", "AUD"))
    with pytest.raises(RuleViolation) as caught:
        store.members.save(attrs.evolve(cancelled, discounts=[AppliedDiscount(spring)]))
    assert (caught.value.rule, caught.value.field) == ("grant_after_cancel", "discounts")
    assert store.members.get("m") == cancelled


@pytest.mark.parametrize("make", STORES)
def test_a_fixed_discount_in_another_currency_is_refused(make: Callable[[], Any]) -> None:
    """A member granted USD 5.00 off in an AUD practice is not kept (it would make every
    charge and Overdue reading fail later)."""
    store = make()
    store.load([SYDNEY, GOLD])
    dollars = Discount("usd", "p", "Dollars", amount=Money.of("5", "USD"))
    with pytest.raises(CurrencyMismatch) as caught:
        store.members.add(_ada().grant(dollars))
    assert caught.value.field == "discounts"
    assert store.members.count(MemberQuery()) == 0


@pytest.mark.parametrize("make", STORES)
def test_a_campaigns_fixed_discount_in_another_currency_is_refused(
    make: Callable[[], Any],
) -> None:
    """A campaign offering USD 5.00 off in an AUD practice is not kept, on add or save."""
    store = make()
    store.load([SYDNEY, GOLD])
    dollars = Discount("usd", "p", "Dollars", amount=Money.of("5", "USD"))
    plain = Campaign("c", "p", "Spring", "SPRING", T0)
    offering = attrs.evolve(plain, discount=dollars)
    with pytest.raises(CurrencyMismatch) as caught:
        store.campaigns.add(offering)
    assert caught.value.field == "discount"
    store.campaigns.add(plain)
    with pytest.raises(CurrencyMismatch):
        store.campaigns.save(offering)
    assert store.campaigns.get("c") == plain


@pytest.mark.parametrize("make", STORES)
def test_a_practice_with_a_campaigns_fixed_discount_keeps_its_currency(
    make: Callable[[], Any],
) -> None:
    """A practice holding only a campaign with AUD 5.00 off cannot become an NZD practice
    (its dump would not load back); with a percentage off it can."""
    store = make()
    practice = Practice("q", "Q", "UTC", "AUD")
    fixed = Discount("five", "q", "Five off", amount=Money.of("5", "AUD"))
    store.load([practice, attrs.evolve(Campaign("c", "q", "S", "S", T0), discount=fixed)])
    with pytest.raises(RuleViolation) as caught:
        store.practices.save(attrs.evolve(practice, currency="NZD"))
    assert (caught.value.rule, caught.value.field) == ("currency_in_use", "currency")
    share = attrs.evolve(fixed, amount=None, percent="10")
    store.campaigns.save(attrs.evolve(store.campaigns.get("c"), discount=share))
    store.practices.save(attrs.evolve(practice, currency="NZD"))
    assert store.practices.get("q").currency == "NZD"


def test_a_charge_ahead_of_the_first_date_is_priced_at_the_plan_of_that_date() -> None:
    """Starting 1 February on Gold (30), moved to Platinum (50) on 15 March: a 30.00
    prepayment on 10 January is Gold's first date's price."""
    member = _ada(start=date(2026, 2, 1)).change_plan(
        "platinum", at=datetime(2026, 3, 15, tzinfo=UTC)
    )
    prepaid = _charge("c0", "30", datetime(2026, 1, 10, tzinfo=UTC))
    plans = {"gold": GOLD, "platinum": PLATINUM}
    check_membership_charge(member, PLATINUM, [], prepaid, timezone="UTC", plans=plans)
    with pytest.raises(RuleViolation) as caught:
        check_membership_charge(
            member, PLATINUM, [], _charge("c1", "50", prepaid.at), timezone="UTC", plans=plans
        )
    assert caught.value.context["expected"] == Money.of("30", "AUD")


@pytest.mark.parametrize("percent", [5, "5", "12.5"])
def test_records_read_a_percent_as_an_exact_number(percent: Any) -> None:
    """A discount's percent may be an integer or its text (a JSON number arrives as
    text); a float is refused as inexact."""
    member = _ada().grant(Discount("fam", "p", "Family", percent="5", basis="per_dependent"))
    records = to_records([member])
    records["members"][0]["discounts"][0]["percent"] = percent
    ((_, _, read),) = from_records(records)
    assert str(read.discounts[0].discount.percent) == str(percent)
    records["members"][0]["discounts"][0]["percent"] = 5.5
    with pytest.raises(InvalidRecord, match="floats are not exact"):
        from_records(records)
