"""Payment-plan templates: offers made from them respect every rule of the template, each
broken rule is named, and the bare offer refuses a first due date in the past."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smilepass_core import (
    BillingCycle,
    InvalidValue,
    Money,
    Patient,
    PaymentPlan,
    PaymentPlanStatus,
    PaymentType,
    RuleViolation,
)
from smilepass_core.domain.templates import PaymentPlanTemplate, offer_from_template
from smilepass_core.periods import local_midnight
from test_billing import SYD, _member

ADA = Patient("p1", "Ada Lovelace")
OFFER = local_midnight(date(2026, 3, 10), SYD) + timedelta(hours=11)  # 10 Mar, 11:00 Sydney


def aud(amount: str) -> Money:
    return Money.of(amount, "AUD")


def _template(**changes: object) -> PaymentPlanTemplate:
    fields: dict[str, object] = {
        "id": "t1",
        "practice_id": "syd",
        "name": "Ortho",
        "min_total": aud("500"),
        "max_total": aud("15000"),
        "instalment_counts": (6, 12, 24),
        "max_deferral_days": 60,
    }
    fields.update(changes)
    return PaymentPlanTemplate(**fields)  # type: ignore[arg-type]


def _offer(template: PaymentPlanTemplate | None = None, **changes: object) -> PaymentPlan:
    fields: dict[str, object] = {
        "id": "pp1",
        "patient": ADA,
        "total": aud("1200"),
        "instalments": 12,
        "first_due": date(2026, 4, 1),
        "at": OFFER,
        "timezone": SYD,
    }
    fields.update(changes)
    return offer_from_template(template or _template(), **fields)  # type: ignore[arg-type]


class TestOffers:
    def test_an_offer_within_the_rules(self) -> None:
        plan = _offer()
        assert plan.status is PaymentPlanStatus.PENDING
        assert plan.payment_type is PaymentType.PLAN
        assert [i.due_date for i in plan.schedule][:3] == [
            date(2026, 4, 1),
            date(2026, 5, 1),
            date(2026, 6, 1),
        ]
        assert {str(i.amount) for i in plan.schedule} == {"AUD 100.00"}

    def test_a_deposit_is_instalment_one_on_the_offers_local_date(self) -> None:
        """Offered at 11:00 on 10 March in Sydney (00:00 UTC the same day): the deposit is
        due on 10 March, the rest in six instalments from 1 April."""
        plan = _offer(_template(deposit=aud("200")), total=aud("1000.01"), instalments=6)
        assert (plan.schedule[0].number, plan.schedule[0].due_date) == (1, date(2026, 3, 10))
        assert str(plan.schedule[0].amount) == "AUD 200.00"
        assert [str(i.amount) for i in plan.schedule[1:]] == ["AUD 133.34"] * 3 + ["AUD 133.33"] * 3
        assert len(plan.schedule) == 7

    def test_members_only(self) -> None:
        template = _template(members_only=True)
        member = _member(date(2026, 1, 28))
        ada = member.account_holder
        plan = _offer(template, patient=ada, member=member)
        assert plan.member_id == member.id
        with pytest.raises(RuleViolation) as nobody:
            _offer(template, patient=ada)
        assert nobody.value.context["broken"] == ("members_only",)
        suspended = member.suspend(at=OFFER - timedelta(days=1))
        with pytest.raises(RuleViolation):
            _offer(template, patient=ada, member=suspended)

    def test_every_broken_rule_is_named_at_once(self) -> None:
        """The issue's offer: AUD 1 in 7 weekly instalments, first due six years before."""
        with pytest.raises(RuleViolation) as caught:
            _offer(total=aud("1"), instalments=7, first_due=date(2020, 3, 10))
        error = caught.value
        assert (error.rule, error.context["broken"]) == (
            "template",
            ("total", "instalments", "first_due"),
        )
        assert str(error).splitlines() == [
            "cannot offer Ortho (t1):",
            "- total: AUD 1.00 is outside AUD 500.00 to AUD 15,000.00",
            "- instalments: 7 instalments; offered: 6, 12, 24",
            "- first_due: 2020-03-10 is before the offer's local date 2026-03-10",
        ]

    def test_more_instalments_than_minor_units(self) -> None:
        """AUD 0.05 cannot be split into 6 instalments without a zero one."""
        tiny = _template(min_total=aud("0.05"), instalment_counts=(6,))
        with pytest.raises(RuleViolation) as caught:
            _offer(tiny, total=aud("0.05"), instalments=6)
        assert caught.value.context["broken"] == ("instalments",)
        assert "under a minor unit" in str(caught.value)

    @pytest.mark.parametrize(
        ("changes", "broken"),
        [
            ({"first_due": date(2026, 5, 10)}, ("deferral",)),
            ({"total": Money.of("1200", "USD")}, ("currency",)),
            (
                {"member": _member(date(2026, 1, 28)), "patient": Patient("p2", "Grace")},
                ("member",),
            ),
        ],
    )
    def test_one_rule(self, changes: dict[str, object], broken: tuple[str, ...]) -> None:
        with pytest.raises(RuleViolation) as caught:
            _offer(**changes)
        assert caught.value.context["broken"] == broken

    @settings(max_examples=40)
    @given(
        total=st.integers(50_000, 1_500_000),
        instalments=st.sampled_from([6, 12, 24]),
        deferral=st.integers(0, 60),
        deposit=st.none() | st.integers(1, 40_000),  # leaves at least 100.00 to split
        cycle=st.sampled_from(BillingCycle),
    )
    def test_an_accepted_offer_keeps_every_promise(
        self, total: int, instalments: int, deferral: int, deposit: int | None, cycle: BillingCycle
    ) -> None:
        template = _template(
            cycle=cycle, deposit=None if deposit is None else Money.from_minor(deposit, "AUD")
        )
        first = date(2026, 3, 10) + timedelta(days=deferral)
        plan = _offer(
            template, total=Money.from_minor(total, "AUD"), instalments=instalments, first_due=first
        )
        assert sum(i.amount for i in plan.schedule) == plan.total
        assert len(plan.schedule) == instalments + (deposit is not None)
        assert all(i.due_date >= date(2026, 3, 10) for i in plan.schedule)
        assert plan.schedule[-1].due_date == cycle.nth(first, instalments - 1)


class TestTemplates:
    @pytest.mark.parametrize(
        "changes",
        [
            {"instalment_counts": ()},
            {"instalment_counts": (12, 6)},
            {"instalment_counts": (0, 6)},
            {"instalment_counts": (True,)},
            {"max_total": aud("100")},
            {"max_total": Money.of("15000", "USD")},
            {"min_total": aud("0")},
            {"max_deferral_days": -1},
            {"deposit": aud("500")},
            {"deposit": Money.of("50", "USD")},
            {"members_only": "yes"},
        ],
    )
    def test_a_template_that_cannot_be_offered(self, changes: dict[str, object]) -> None:
        with pytest.raises(InvalidValue):
            _template(**changes)


class TestTheBareOffer:
    def _bare(self, first_due: date, **changes: object) -> PaymentPlan:
        return PaymentPlan.offer(
            id="pp1",
            practice_id="syd",
            patient=ADA,
            total=aud("1"),
            payment_type=PaymentType.PLAN,
            instalments=7,
            first_due=first_due,
            at=OFFER,
            cycle=BillingCycle.WEEKLY,
            **changes,  # type: ignore[arg-type]
        )

    def test_a_first_due_date_before_the_offers_local_date_is_refused(self) -> None:
        with pytest.raises(InvalidValue) as caught:
            self._bare(date(2020, 3, 10))
        assert caught.value.field == "first_due"
        with pytest.raises(InvalidValue):
            self._bare(date(2026, 3, 9), timezone=SYD)
        assert self._bare(date(2026, 3, 10), timezone=SYD).schedule[0].due_date == date(2026, 3, 10)

    def test_without_a_zone_the_earliest_local_date_anywhere(self) -> None:
        """At 00:00 UTC on 10 March it is still 9 March west of Greenwich."""
        assert datetime(2026, 3, 10, 0, tzinfo=UTC) == OFFER
        assert self._bare(date(2026, 3, 9)).schedule[0].due_date == date(2026, 3, 9)
        with pytest.raises(InvalidValue):
            self._bare(date(2026, 3, 8))
