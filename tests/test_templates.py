"""Payment-plan templates: offers made from them respect every rule of the template, each
broken rule is named, and the bare offer refuses a first due date in the past."""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, timedelta

import attrs
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
from smilepass_core.domain.templates import (
    PaymentPlanTemplate,
    check_offer,
    check_offers,
    check_template_change,
    member_change,
    offer_from_template,
)
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


def _bare(first_due: date, **changes: object) -> PaymentPlan:
    """The issue's offer, made bare: AUD 1 in 7 weekly instalments, offered at OFFER."""
    fields: dict[str, object] = {
        "id": "pp1",
        "practice_id": "syd",
        "patient": ADA,
        "total": aud("1"),
        "payment_type": PaymentType.PLAN,
        "instalments": 7,
        "first_due": first_due,
        "at": OFFER,
        "cycle": BillingCycle.WEEKLY,
    }
    fields.update(changes)
    return PaymentPlan.offer(**fields)  # type: ignore[arg-type]


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
    def test_a_first_due_date_before_the_offers_local_date_is_refused(self) -> None:
        with pytest.raises(InvalidValue) as caught:
            _bare(date(2020, 3, 10))
        assert caught.value.field == "first_due"
        with pytest.raises(InvalidValue):
            _bare(date(2026, 3, 9), timezone=SYD)
        assert _bare(date(2026, 3, 10), timezone=SYD).schedule[0].due_date == date(2026, 3, 10)

    def test_without_a_zone_the_earliest_local_date_anywhere(self) -> None:
        """At 00:00 UTC on 10 March it is still 9 March west of Greenwich."""
        assert datetime(2026, 3, 10, 0, tzinfo=UTC) == OFFER
        assert _bare(date(2026, 3, 9)).schedule[0].due_date == date(2026, 3, 9)
        with pytest.raises(InvalidValue):
            _bare(date(2026, 3, 8))


class TestBothWays:
    @settings(max_examples=150)
    @given(
        total=st.integers(1, 2_000_000),
        instalments=st.integers(1, 30),
        days=st.integers(-5, 70),
        deposit=st.none() | st.integers(1, 49_999),
        retired=st.none() | st.integers(-3, 3),
    )
    def test_a_template_refuses_exactly_the_offers_outside_it(
        self, total: int, instalments: int, days: int, deposit: int | None, retired: int | None
    ) -> None:
        """Offers drawn inside and outside the template: accepted exactly when every rule,
        written here on its own, holds; and the accepted plan passes check_offer."""
        template = _template(
            deposit=None if deposit is None else Money.from_minor(deposit, "AUD"),
            retired_at=None if retired is None else OFFER + timedelta(hours=retired),
        )
        first = date(2026, 3, 10) + timedelta(days=days)
        rest = total - (deposit or 0)
        inside = (
            (retired is None or retired > 0)
            and 50_000 <= total <= 1_500_000
            and instalments in (6, 12, 24)
            and rest >= instalments
            and 0 <= days <= 60
        )
        offer = functools.partial(
            _offer,
            template,
            total=Money.from_minor(total, "AUD"),
            instalments=instalments,
            first_due=first,
        )
        if not inside:
            with pytest.raises(RuleViolation, match="cannot offer Ortho"):
                offer()
            return
        plan = offer()
        assert plan.template_id == template.id
        check_offer(template, plan, timezone=SYD)


class TestStoredPlans:
    """check_offer: what a store checks of a plan that names its template."""

    def test_an_offer_passes_and_a_changed_schedule_does_not(self) -> None:
        template = _template(deposit=aud("200"))
        plan = _offer(template, total=aud("1400"), instalments=6)
        check_offer(template, plan, timezone=SYD)
        moved = attrs.evolve(
            plan,
            schedule=(
                *plan.schedule[:3],
                attrs.evolve(plan.schedule[3], due_date=date(2026, 6, 2)),
                *plan.schedule[4:],
            ),
        )
        with pytest.raises(RuleViolation) as caught:
            check_offer(template, moved, timezone=SYD)
        assert caught.value.context["broken"] == ("schedule",)
        assert str(caught.value).splitlines() == [
            "PaymentPlan pp1 is no offer of Ortho (t1):",
            "- schedule: instalment 4 is AUD 200.00 due 2026-06-02; "
            "the template's is AUD 200.00 due 2026-06-01",
        ]

    def test_a_bare_plan_named_after_a_template_is_checked_by_its_rules(self) -> None:
        """The issue's AUD 1 in 7 weekly instalments, offered bare and named after Ortho."""
        bare = _bare(date(2026, 3, 10))
        with pytest.raises(RuleViolation) as caught:
            check_offer(_template(), attrs.evolve(bare, template_id="t1"), timezone=SYD)
        assert caught.value.context["broken"] == ("total", "instalments")
        instant = _bare(
            date(2026, 3, 10),
            id="pp2",
            total=aud("600"),
            payment_type=PaymentType.INSTANT,
            instalments=1,
            cycle=BillingCycle.MONTHLY,
        )
        with pytest.raises(RuleViolation) as caught:
            check_offer(_template(), attrs.evolve(instant, template_id="t1"), timezone=SYD)
        assert caught.value.context["broken"] == ("payment_type", "instalments")

    def test_a_plan_of_another_template_or_practice_is_no_question(self) -> None:
        """check_offer of a plan naming another template, or none, or of another practice,
        raises InvalidValue naming the field."""
        plan = _offer()
        for other, field in [
            (attrs.evolve(plan, template_id="t2"), "template_id"),
            (attrs.evolve(plan, template_id=None), "template_id"),
            (attrs.evolve(plan, practice_id="nyc"), "practice_id"),
        ]:
            with pytest.raises(InvalidValue) as caught:
                check_offer(_template(), other, timezone=SYD)
            assert caught.value.field == field

    def test_a_plan_without_the_deposit_is_named_for_it(self) -> None:
        """A plan of Ortho's lengths and total but no deposit, named after Ortho with a
        200.00 deposit: the deposit rule is broken, and the total is not misread as one
        that cannot be split."""
        plan = attrs.evolve(_offer(), template_id="t1")
        with pytest.raises(RuleViolation) as caught:
            check_offer(_template(deposit=aud("200")), plan, timezone=SYD)
        assert caught.value.context["broken"][0] == "deposit"
        assert "under a minor unit" not in str(caught.value)
        assert "deposit: instalment 1 is AUD 100.00 due 2026-04-01; the template's deposit is" in (
            str(caught.value)
        )

    def test_check_offers_checks_the_plans_naming_a_template(self) -> None:
        """Plans without a template are skipped; a template plan judged in another zone,
        where its offer's local day is a day before its first due date, is refused."""
        template = _template(max_deferral_days=0)
        plan = _offer(template, first_due=date(2026, 3, 10))
        bare = attrs.evolve(plan, id="pp2", template_id=None)
        templates = {"t1": template}
        check_offers([bare, plan], templates, timezone=SYD, members={}, change="", field="")
        with pytest.raises(RuleViolation) as caught:  # 11:00 in Sydney: 9 March in New York
            check_offers(
                [plan],
                templates,
                timezone="America/New_York",
                members={},
                change="practice syd's time zone America/New_York",
                field="timezone",
            )
        error = caught.value
        assert (error.rule, error.field) == ("template", "timezone")
        assert error.context == {"plan_id": "pp1", "broken": ("deferral",)}
        assert str(error).startswith(
            "practice syd's time zone America/New_York would leave a kept plan no offer of its"
            " template: PaymentPlan pp1 is no offer of Ortho (t1):"
        )

    def test_a_member_change_names_what_moved(self) -> None:
        """member_change: the account holder first, then the history's last move; nothing
        when neither moved."""
        member = _member(date(2026, 1, 28))
        assert member_change(member, member) is None
        away = member.suspend(at=OFFER)
        assert member_change(member, away) == (
            f"member {member.id}'s move to suspended at {OFFER.isoformat()}",
            "history",
        )
        other = attrs.evolve(member, account_holder=Patient("p9", "Grace"))
        assert member_change(member, other) == (
            f"member {member.id}'s account holder p9",
            "account_holder",
        )

    def test_the_offer_is_judged_at_its_own_instant(self) -> None:
        """A plan offered before the template retired stays its offer; one offered at the
        retirement is refused."""
        template = _template()
        plan = _offer(template)
        retired = template.retire(at=OFFER + timedelta(seconds=1))
        check_offer(retired, plan, timezone=SYD)
        with pytest.raises(RuleViolation) as caught:
            check_offer(template.retire(at=OFFER), plan, timezone=SYD)
        assert caught.value.context["broken"] == ("retired",)
        with pytest.raises(RuleViolation) as again:
            retired.retire(at=OFFER + timedelta(days=1))
        assert again.value.rule == "template_retired"


class TestTemplateChanges:
    def test_terms_are_fixed_once_a_plan_was_offered(self) -> None:
        template = _template()
        offers = [OFFER, OFFER + timedelta(days=3)]
        renamed = attrs.evolve(template, name="Orthodontics")
        check_template_change(template, renamed, offers)
        check_template_change(template, template.retire(at=offers[-1] + timedelta(1)), offers)
        for changed, field in [
            (attrs.evolve(template, max_total=aud("20000")), "max_total"),
            (attrs.evolve(template, instalment_counts=(6, 12)), "instalment_counts"),
            (attrs.evolve(template, deposit=aud("100")), "deposit"),
            (template.retire(at=offers[-1]), "retired_at"),
        ]:
            with pytest.raises(RuleViolation) as caught:
                check_template_change(template, changed, offers)
            assert (caught.value.rule, caught.value.field) == ("template_in_use", field)
            assert caught.value.context["latest_offer"] == offers[-1]
            check_template_change(template, changed, [])  # no plan yet: any change

    def test_the_refusals_say_what_to_do(self) -> None:
        offers = [OFFER]
        with pytest.raises(RuleViolation) as terms:
            check_template_change(_template(), _template(max_total=aud("9000")), offers)
        assert str(terms.value) == (
            "Ortho (t1) is the template of 1 kept payment plan: its max_total cannot change;"
            " add a new template and retire this one"
        )
        with pytest.raises(RuleViolation) as early:
            check_template_change(_template(), _template().retire(at=OFFER), offers * 2)
        assert str(early.value) == (
            "Ortho (t1) cannot retire at 2026-03-10T00:00:00+00:00: one of its 2 kept payment"
            " plans was offered at 2026-03-10T00:00:00+00:00; retire it after that"
        )
