"""A save over recorded charges (a member's status change, start date or plan rewritten; a
practice's time zone) keeps a ledger the store loads, in every store: a save is kept
exactly when the store's objects, as saved, load."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smilepass_core.domain import (
    MEMBERSHIP_LIFECYCLE,
    Member,
    MembershipPlan,
    MembershipStatus,
    Patient,
    Payment,
    PaymentKind,
    PaymentOutcome,
    Practice,
)
from smilepass_core.domain.billing import price_due_at
from smilepass_core.domain.discounts import Discount
from smilepass_core.errors import InvalidRecord, RuleViolation
from smilepass_core.memory import InMemoryStore
from smilepass_core.money import Money
from smilepass_core.periods import local_midnight
from smilepass_core.queries import PaymentQuery
from smilepass_core.sql import SqlStore

HOUR = timedelta(hours=1)
#: Zones far ahead of and behind UTC, and one whose DST moves by half an hour.
ZONES = [
    "UTC",
    "Australia/Adelaide",
    "America/New_York",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "Australia/Lord_Howe",
]


def _ada(at: datetime) -> Member:
    """Member ``m`` of practice ``p`` on plan ``gold`` from 1 January 2026, enrolled and
    Active at ``at``."""
    return Member.enrol(
        id="m",
        practice_id="p",
        plan_id="gold",
        account_holder=Patient("pt", "Ada"),
        start_date=date(2026, 1, 1),
        at=at,
    ).activate(at=at)


def _in_memory(objects: list[object]) -> Any:
    return InMemoryStore.from_objects(objects)


def _in_sqlite(objects: list[object]) -> Any:
    store = SqlStore.connect("sqlite://")
    store.load(objects)
    return store


@pytest.mark.parametrize("change", ["move", "start_date", "plan_id", "zone"])
@pytest.mark.parametrize("make", [_in_memory, _in_sqlite], ids=["memory", "sqlite"])
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_save_is_kept_exactly_when_the_ledger_still_loads(
    make: Callable[[list[object]], Any], change: str, data: st.DataObject
) -> None:
    """A member on 30.00 monthly, Active from 1 January, granted 5.00 off from a drawn
    billing date, maybe moved to a drawn status, charged the price due (succeeded or
    failed) in the first two days of its first billing dates (from 09:00 on the first),
    then saved moved again
    (stamped up to 45 days before a charge or the end), with its start date moved up to
    40 days either way, or with its plan rewritten to one at 60.00 or 30.00; or its
    practice saved in a drawn time zone: the save is kept exactly when the store's
    objects, as saved, load into a fresh InMemoryStore; a refused save keeps the member
    and the practice as they were."""
    zone = data.draw(st.sampled_from(ZONES), label="zone")
    practice = Practice("p", "P", zone, "AUD")
    plan = MembershipPlan("gold", "p", "Gold", Money.of("30", "AUD"), "monthly")
    others = [
        MembershipPlan("plat", "p", "Platinum", Money.of("60", "AUD"), "monthly"),
        MembershipPlan("basic", "p", "Basic", Money.of("30", "AUD"), "monthly"),
    ]
    off = Discount("off", "p", "Loyalty", amount=Money.of("5", "AUD"))
    t0 = local_midnight(date(2026, 1, 1), zone) + 9 * HOUR
    member = _ada(t0).grant(off, first=data.draw(st.integers(1, 3), label="first"))
    end = 24 * 150  # hours: the charges fall in the first five months

    def move(member: Member, label: str, near: list[int], *, cancel: bool = True) -> Member:
        """``member`` moved to a drawn status (Cancelled only if ``cancel``), stamped up to
        45 days before an hour of ``near`` after ``t0`` (never before their last change)."""
        allowed = MEMBERSHIP_LIFECYCLE.allowed(member.status)
        targets = sorted(
            allowed - (set() if cancel else {MembershipStatus.CANCELLED}), key=lambda s: s.value
        )
        to = data.draw(st.sampled_from(targets), label=f"{label} to")
        hours = data.draw(st.sampled_from(near), label=f"{label} near")
        hours -= data.draw(st.integers(0, 24 * 45), label=f"{label} before")
        at = max(member.last_changed_at, t0 + hours * HOUR)
        return member.transition(to, at=at, reason=label)

    if data.draw(st.booleans(), label="moved first"):  # in the first 45 days
        member = move(member, "first move", [24 * 45], cancel=False)
    store = make([practice, plan, *others, member])
    hours = [  # up to one charge a month, in the first two days of its billing date
        max(
            0,
            int((local_midnight(date(2026, 1 + k, 1), zone) - t0) / HOUR)
            + data.draw(st.integers(0, 47), label="late"),
        )
        for k in range(data.draw(st.integers(0, 5), label="charges"))
    ]
    refusals = []
    for k, offset in enumerate(hours):
        at = t0 + offset * HOUR
        due = price_due_at(member, plan, at=at, timezone=zone)
        outcome = data.draw(st.sampled_from(PaymentOutcome), label="outcome")
        try:
            store.payments.add(Payment(f"c{k}", "p", due, PaymentKind.CHARGE, outcome, at, "m"))
        except RuleViolation as refused:
            refusals.append(refused.rule)
    assert set(refusals) <= {"charge_after_cancel"}
    saved = practice
    if change == "zone":
        moved = member
        elsewhere = [z for z in ZONES if z != zone]
        saved = attrs.evolve(practice, timezone=data.draw(st.sampled_from(elsewhere), label="to"))
    elif change == "start_date":
        shift = timedelta(days=data.draw(st.integers(-40, 40), label="days"))
        moved = attrs.evolve(member, start_date=member.start_date + shift)
    elif change == "plan_id":
        moved = attrs.evolve(member, plan_id=data.draw(st.sampled_from(["plat", "basic"])))
    else:
        moved = move(member, "save", [*hours, end])
    refusal = None
    try:
        if change == "zone":
            store.practices.save(saved)
        else:
            store.members.save(moved)
    except RuleViolation as refused:
        refusal = refused.rule
    assert refusal in (None, "reprice_backdated", "charge_after_cancel")
    kept = refusal is None
    assert store.members.get("m") == (moved if kept else member)
    assert store.practices.get("p") == (saved if kept else practice)
    ledger = store.payments.find(PaymentQuery())
    try:
        InMemoryStore.from_objects([saved, plan, *others, moved, *ledger])
    except InvalidRecord:
        loads = False
    else:
        loads = True
    assert kept == loads


@pytest.mark.parametrize("make", [_in_memory, _in_sqlite], ids=["memory", "sqlite"])
def test_a_change_late_on_a_25_hour_day_reprices_its_early_charge(
    make: Callable[[list[object]], Any],
) -> None:
    """New York's 1 November 2026 lasts 25 hours. A member on 30.00 monthly from
    1 January, repriced to 40.00 from 1 November, Suspended from 5 October, charged 30.00
    at 00:10 on 1 November (1 October's price: that day is no billing date while
    Suspended). Active again at 23:50 that day, 24 h 40 min after the charge, would make
    1 November a billing date at 40.00: refused. At 00:10 on 2 November it is kept."""
    zone = "America/New_York"
    practice = Practice("p", "P", zone, "AUD")
    plan = MembershipPlan("gold", "p", "Gold", Money.of("30", "AUD"), "monthly")
    plan = plan.reprice(Money.of("40", "AUD"), on=date(2026, 11, 1))
    day = local_midnight(date(2026, 11, 1), zone)
    member = _ada(local_midnight(date(2026, 1, 1), zone))
    member = member.suspend(at=local_midnight(date(2026, 10, 5), zone))
    store = make([practice, plan, member])
    early = day + timedelta(minutes=10)
    charge = Payment("c", "p", Money.of("30", "AUD"), "charge", "succeeded", early, "m")
    store.payments.add(charge)
    late = member.activate(at=early + timedelta(hours=24, minutes=40))
    assert local_midnight(date(2026, 11, 2), zone) - day == timedelta(hours=25)
    with pytest.raises(RuleViolation) as refused:
        store.members.save(late)
    assert (refused.value.rule, refused.value.field) == ("reprice_backdated", "history")
    assert store.members.get("m") == member
    resumed = member.activate(at=local_midnight(date(2026, 11, 2), zone) + timedelta(minutes=10))
    store.members.save(resumed)
    assert store.members.get("m") == resumed
