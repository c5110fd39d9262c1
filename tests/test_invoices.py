"""Invoices: the manual's statuses (processing, active, completed, cancelled, expired,
overdue) derived from the schedule and the ledger at an instant, one rule for both
membership charges and instalments; and the host spellings ``Status.parse`` accepts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smilepass_core import (
    BillingCycle,
    MembershipPlan,
    MembershipStatus,
    Money,
    PaymentPlan,
    PaymentPlanStatus,
    PaymentType,
    ReferralStatus,
    UnknownStatus,
)
from smilepass_core.domain import STATUS_ALIASES
from smilepass_core.domain.invoices import InvoiceStatus, member_invoices, plan_invoices
from smilepass_core.domain.overdue import overdue_instalments
from smilepass_core.testing import strategies as sps
from test_billing import SYD, _charge, _local, _member, _plan

P, A, C, X, E, OV = (
    InvoiceStatus.PROCESSING,
    InvoiceStatus.ACTIVE,
    InvoiceStatus.COMPLETED,
    InvoiceStatus.CANCELLED,
    InvoiceStatus.EXPIRED,
    InvoiceStatus.OVERDUE,
)


class TestMemberInvoices:
    """A monthly member from 28 January 2026: January paid, February failed, March not
    yet attempted."""

    def _statuses(
        self, at: datetime, grace_days: int = 0, **moves: datetime
    ) -> list[InvoiceStatus]:
        member = _member(date(2026, 1, 28))
        if "suspend" in moves:
            member = member.suspend(at=moves["suspend"])
        if "cancel" in moves:
            member = member.cancel(at=moves["cancel"])
        ledger = [
            _charge("c0", _local(date(2026, 1, 28), 10)),
            _charge("f1", _local(date(2026, 3, 2), 10), "failed"),
        ]
        invoices = member_invoices(
            member, _plan(), ledger, at=at, timezone=SYD, grace_days=grace_days
        )
        return [i.status for i in invoices]

    def test_each_status_in_turn(self) -> None:
        assert self._statuses(_local(date(2026, 2, 28))) == [C, P]  # due today
        assert self._statuses(_local(date(2026, 3, 1))) == [C, OV]  # the day after
        assert self._statuses(_local(date(2026, 3, 1)), grace_days=3) == [C, P]
        assert self._statuses(_local(date(2026, 3, 2), 11), grace_days=3) == [C, P]
        assert self._statuses(_local(date(2026, 3, 4)), grace_days=3) == [C, OV]
        assert self._statuses(_local(date(2026, 3, 28)), grace_days=3) == [C, OV, P]

    def test_a_failure_makes_it_overdue_from_that_day(self) -> None:
        """With 10 grace days, February's charge (due 28 Feb) is overdue from 11 March by
        its due date, and from 12 March by its failure on 2 March: the earlier decides."""
        assert self._statuses(_local(date(2026, 3, 2), 11), grace_days=10) == [C, P]
        assert self._statuses(_local(date(2026, 3, 11)), grace_days=10) == [C, OV]

    def test_suspended_is_expired_and_cancelled_is_cancelled(self) -> None:
        at = _local(date(2026, 3, 10))
        assert self._statuses(at, suspend=_local(date(2026, 3, 5))) == [C, E]
        assert self._statuses(at, cancel=_local(date(2026, 3, 5))) == [C, X]


class TestPlanInvoices:
    def _plan(self) -> PaymentPlan:
        at = _local(date(2026, 1, 5))
        plan = PaymentPlan.offer(
            id="pp1",
            practice_id="syd",
            patient=_member(date(2026, 1, 5)).account_holder,
            total=Money.of("300", "AUD"),
            payment_type=PaymentType.PLAN,
            instalments=3,
            first_due=date(2026, 2, 1),
            at=at,
            cycle=BillingCycle.MONTHLY,
        )
        return plan.activate(at=at).record_payment(
            amount=Money.of("100", "AUD"), at=_local(date(2026, 2, 1), 10)
        )

    def test_paid_due_and_later_instalments(self) -> None:
        plan = self._plan()
        invoices = plan_invoices(plan, at=_local(date(2026, 3, 1), 12), timezone=SYD)
        assert [(i.number, i.status, str(i.paid)) for i in invoices] == [
            (1, C, "AUD 100.00"),
            (2, P, "AUD 0.00"),
            (3, A, "AUD 0.00"),
        ]
        later = plan_invoices(plan, at=_local(date(2026, 3, 2)), timezone=SYD)
        assert [i.status for i in later] == [C, OV, A]
        cancelled = plan.cancel(at=_local(date(2026, 3, 2), 12))
        assert [
            i.status for i in plan_invoices(cancelled, at=_local(date(2026, 4, 9)), timezone=SYD)
        ] == [C, X, X]

    @settings(max_examples=40)
    @given(sps.payment_plans(currency="AUD"), st.integers(0, 400), st.integers(0, 5))
    def test_overdue_invoices_include_the_overdue_instalments(
        self, plan: PaymentPlan, days: int, grace: int
    ) -> None:
        """Every instalment the Overdue rule names is an overdue invoice; an overdue
        invoice it does not name had a failed attempt; what is paid adds up."""
        at = plan.created_at + timedelta(days=days)
        invoices = plan_invoices(plan, at=at, timezone=SYD, grace_days=grace)
        overdue = {
            i.number for i in overdue_instalments(plan, at=at, timezone=SYD, grace_days=grace)
        }
        flagged = {i.number for i in invoices if i.status is OV}
        assert overdue <= flagged
        failed = {a.number for a in plan.attempts if not a.succeeded and a.at <= at}
        assert flagged - overdue <= failed
        paid = sum((i.paid for i in invoices), Money.zero("AUD"))
        stood = plan.as_of(at)
        assert paid == (stood.paid if stood else Money.zero("AUD"))
        if stood is not None and stood.status is PaymentPlanStatus.CANCELLED:
            assert {i.status for i in invoices} <= {C, X}


class TestStatusSpellings:
    """The manual's words and common spellings, through one explicit alias table."""

    @pytest.mark.parametrize("text", ["Canceled", " CANCELED ", "cancelled"])
    def test_canceled_is_cancelled(self, text: str) -> None:
        assert MembershipStatus.parse(text) is MembershipStatus.CANCELLED
        assert PaymentPlanStatus.parse(text) is PaymentPlanStatus.CANCELLED
        assert ReferralStatus.parse(text) is ReferralStatus.CANCELLED
        assert InvoiceStatus.parse(text) is InvoiceStatus.CANCELLED

    @pytest.mark.parametrize("text", ["processing", "Expired", "OVERDUE", "active"])
    def test_the_invoice_words(self, text: str) -> None:
        assert InvoiceStatus.parse(text).value == text.lower()

    @pytest.mark.parametrize("text", ["overdue", "expired", "cancel", "canceld", "processing"])
    def test_anything_else_is_refused(self, text: str) -> None:
        with pytest.raises(UnknownStatus):
            MembershipStatus.parse(text)

    def test_the_table_is_small_and_each_alias_means_a_real_value(self) -> None:
        values = {
            s.value for kind in (MembershipStatus, PaymentPlanStatus, ReferralStatus) for s in kind
        }
        assert dict(STATUS_ALIASES) == {"canceled": "cancelled"}
        assert set(STATUS_ALIASES.values()) <= values


def test_a_membership_plan_of_another_member_is_refused() -> None:
    from smilepass_core import InvalidValue

    other = MembershipPlan("silver", "syd", "Silver", Money.of("10", "AUD"), BillingCycle.MONTHLY)
    with pytest.raises(InvalidValue):
        member_invoices(
            _member(date(2026, 1, 28)), other, [], at=datetime(2026, 2, 1, tzinfo=UTC), timezone=SYD
        )
