"""The payment ledger: entries, their signed value, refund limits and idempotent recording."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smilepass_core.domain import Ledger, Payment, PaymentKind, PaymentOutcome, check_refund
from smilepass_core.errors import InvalidValue, NaiveDatetime, RuleViolation
from smilepass_core.money import Money
from smilepass_core.testing import strategies as sps

T0 = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
CHARGE, REFUND = PaymentKind.CHARGE, PaymentKind.REFUND
OK, FAILED = PaymentOutcome.SUCCEEDED, PaymentOutcome.FAILED


def aud(amount: str) -> Money:
    return Money.of(amount, "AUD")


HUNDRED = aud("100")


def _payment(
    id: str = "pay-1",
    amount: Money = HUNDRED,
    kind: PaymentKind = CHARGE,
    outcome: PaymentOutcome = OK,
    at: datetime = T0,
    **source: str | None,
) -> Payment:
    if not source:
        source = {"member_id": "m-1"}
    return Payment(
        id=id,
        practice_id="p-1",
        amount=amount,
        kind=kind,
        outcome=outcome,
        at=at,
        **source,  # type: ignore[arg-type]
    )


class TestPayment:
    """A Payment is a positive amount with a kind, an outcome and exactly one source."""

    @pytest.mark.parametrize(
        "amount", [aud("0"), aud("-5"), Decimal("5"), 5, "5.00", None, -aud("0.01")]
    )
    def test_amount_must_be_positive_money(self, amount: object) -> None:
        """A zero, negative or non-Money amount raises InvalidValue naming `amount`."""
        with pytest.raises(InvalidValue) as caught:
            _payment(amount=amount)  # type: ignore[arg-type]
        assert str(caught.value) == (
            f"amount: must be a positive Money (the kind gives the sign) (got {amount!r})"
        )
        assert caught.value.field == "amount"
        assert caught.value.value is amount

    @pytest.mark.parametrize(
        "source",
        [{"member_id": None}, {"member_id": "m-1", "payment_plan_id": "pp-1"}],
        ids=["neither", "both"],
    )
    def test_exactly_one_source(self, source: dict[str, str | None]) -> None:
        """Neither or both of member_id and payment_plan_id raise InvalidValue naming both."""
        with pytest.raises(InvalidValue) as caught:
            _payment(**source)
        pair = (source["member_id"], source.get("payment_plan_id"))
        assert str(caught.value) == (
            f"member_id: exactly one of member_id and payment_plan_id must be set (got {pair!r})"
        )
        assert (caught.value.field, caught.value.value) == ("member_id", pair)

    def test_the_source_names_the_member_or_the_plan(self) -> None:
        """`source` is ("member", id) or ("payment_plan", id)."""
        assert _payment(member_id="m-9").source == ("member", "m-9")
        assert _payment(payment_plan_id="pp-9").source == ("payment_plan", "pp-9")

    def test_a_naive_instant_is_refused(self) -> None:
        """A payment at a naive datetime raises NaiveDatetime naming `at`."""
        with pytest.raises(NaiveDatetime, match=r"^at: naive"):
            _payment(at=datetime(2026, 2, 1, 9))

    def test_kind_and_outcome_are_checked(self) -> None:
        """A kind or outcome that names none of its enum is refused, naming the field (a
        string that names one is parsed: tests/test_lifecycle.py)."""
        with pytest.raises(InvalidValue, match=r"^kind: must be a PaymentKind"):
            _payment(kind="chargeback")  # type: ignore[arg-type]
        with pytest.raises(InvalidValue, match=r"^outcome: must be a PaymentOutcome"):
            _payment(outcome=True)  # type: ignore[arg-type]

    @given(payment=sps.payments())
    def test_signed_follows_kind_and_outcome(self, payment: Payment) -> None:
        """signed is +amount for a succeeded charge, -amount for a succeeded refund, else 0."""
        if payment.outcome is FAILED:
            assert payment.signed == Money.zero(payment.amount.currency)
            assert not payment.succeeded
        elif payment.kind is CHARGE:
            assert payment.signed == payment.amount
        else:
            assert payment.signed == -payment.amount
        assert abs(payment.signed) in (payment.amount, Money.zero(payment.amount.currency))

    def test_signed_examples(self) -> None:
        """A succeeded charge adds, a succeeded refund takes away, a failure adds nothing."""
        assert _payment().signed == aud("100")
        assert _payment(kind=REFUND).signed == aud("-100")
        assert _payment(outcome=FAILED).signed == aud("0")
        assert _payment(kind=REFUND, outcome=FAILED).signed == aud("0")


class TestCheckRefund:
    """A refund may return at most what was collected, net, for its own source."""

    def test_a_refund_up_to_the_collected_amount_passes(self) -> None:
        """A refund of exactly the net collected for its source is allowed."""
        earlier = [_payment("c1"), _payment("c2", aud("50"), at=T0 + HOUR)]
        check_refund(earlier, _payment("r1", aud("150"), REFUND, at=T0 + 2 * HOUR))

    def test_a_refund_above_the_collected_amount_is_refused(self) -> None:
        """A refund one cent above the net collected raises 'refund_exceeds_collected'."""
        earlier = [_payment("c1"), _payment("r0", aud("30"), REFUND, at=T0 + HOUR)]
        refund = _payment("r1", aud("70.01"), REFUND, at=T0 + 2 * HOUR)
        with pytest.raises(RuleViolation, match="exceeds") as caught:
            check_refund(earlier, refund)
        assert caught.value.rule == "refund_exceeds_collected"
        assert caught.value.field == "amount"
        assert caught.value.context == {"payment_id": "r1", "collected": aud("70")}
        assert str(caught.value) == (
            "refund r1 of AUD 70.01 exceeds the AUD 70.00 collected for member m-1 "
            f"before {(T0 + 2 * HOUR).isoformat()}"
        )
        check_refund(earlier, attrs.evolve(refund, amount=aud("70")))

    def test_a_back_dated_refund_that_pushes_a_later_one_over_is_refused(self) -> None:
        """A refund slipped in before a later refund names the refund it pushes over the limit."""
        earlier = [_payment("c1"), _payment("r0", aud("80"), REFUND, at=T0 + 2 * HOUR)]
        refund = _payment("r1", aud("30"), REFUND, at=T0 + HOUR)
        with pytest.raises(RuleViolation) as caught:
            check_refund(earlier, refund)
        assert caught.value.rule == "refund_exceeds_collected"
        assert caught.value.field == "amount"
        assert caught.value.context == {"payment_id": "r1", "collected": aud("70")}
        assert str(caught.value) == (
            "refund r1 of AUD 30.00 pushes refund r0, which exceeds the AUD 70.00 collected "
            f"for member m-1 before {(T0 + 2 * HOUR).isoformat()}"
        )
        check_refund(earlier, attrs.evolve(refund, amount=aud("20")))

    def test_a_plan_refund_names_the_plan(self) -> None:
        """The refusal of a plan refund names the source kind and id in that order."""
        earlier = [_payment("c1", aud("5"), payment_plan_id="pp-7")]
        refund = _payment("r1", aud("6"), REFUND, at=T0 + HOUR, payment_plan_id="pp-7")
        with pytest.raises(RuleViolation) as caught:
            check_refund(earlier, refund)
        assert str(caught.value) == (
            "refund r1 of AUD 6.00 exceeds the AUD 5.00 collected for payment_plan pp-7 "
            f"before {(T0 + HOUR).isoformat()}"
        )

    def test_other_sources_and_failures_do_not_count(self) -> None:
        """Charges of another source and failed charges do not make room for a refund."""
        earlier = [
            _payment("c1", member_id="m-2"),
            _payment("c2", payment_plan_id="pp-1"),
            _payment("c3", outcome=FAILED),
        ]
        with pytest.raises(RuleViolation, match="collected") as caught:
            check_refund(earlier, _payment("r1", aud("0.01"), REFUND, at=T0 + HOUR))
        assert caught.value.rule == "refund_exceeds_collected"

    def test_a_plan_and_a_member_with_the_same_id_are_different_sources(self) -> None:
        """A charge on payment plan 'x' does not cover a refund to member 'x'."""
        earlier = [_payment("c1", payment_plan_id="x")]
        with pytest.raises(RuleViolation):
            check_refund(earlier, _payment("r1", aud("1"), REFUND, at=T0 + HOUR, member_id="x"))

    def test_charges_and_failed_refunds_always_pass(self) -> None:
        """A charge, or a refund that failed, is never refused."""
        check_refund([], _payment("c1", aud("1000000")))
        check_refund([], _payment("r1", aud("1000000"), REFUND, outcome=FAILED))

    def test_only_a_succeeded_refund_is_checked(self) -> None:
        """A charge or a failed refund passes even when the earlier entries are over-refunded."""
        over_refunded = [_payment("r0", aud("50"), REFUND)]
        check_refund(over_refunded, _payment("c1", aud("10"), at=T0 + HOUR))
        check_refund(over_refunded, _payment("r1", aud("10"), REFUND, FAILED, at=T0 + HOUR))
        with pytest.raises(RuleViolation):
            check_refund(over_refunded, _payment("r1", aud("10"), REFUND, at=T0 + HOUR))

    def test_a_refund_at_its_charge_instant_passes(self) -> None:
        """At the same instant the charge counts before the refund."""
        check_refund([_payment("c1")], _payment("r1", HUNDRED, REFUND))

    def test_the_refund_replaces_an_earlier_entry_with_its_id(self) -> None:
        """An earlier entry with the refund's own id is not counted twice."""
        refund = _payment("r1", aud("60"), REFUND, at=T0 + HOUR)
        check_refund([_payment("c1"), refund], refund)

    def test_a_refund_before_its_charge_is_refused(self) -> None:
        """A refund dated before the charge it would return is refused."""
        earlier = [_payment("c1", at=T0 + HOUR)]
        with pytest.raises(RuleViolation) as caught:
            check_refund(earlier, _payment("r1", aud("10"), REFUND, at=T0))
        assert caught.value.rule == "refund_exceeds_collected"


class TestLedger:
    """Recording is idempotent for the same payment and refuses conflicts and over-refunds."""

    def test_recording_appends(self) -> None:
        """Recording returns a new ledger with the payment last; the old one is unchanged."""
        empty = Ledger()
        ledger = empty.record(_payment("c1"))
        assert ledger.entries == (_payment("c1"),)
        assert empty.entries == ()
        assert ledger.collected("AUD") == aud("100")

    def test_recording_the_same_payment_twice_changes_nothing(self) -> None:
        """Recording an identical payment again returns an equal ledger."""
        ledger = Ledger().record(_payment("c1")).record(_payment("r1", aud("40"), REFUND))
        again = ledger.record(_payment("c1")).record(_payment("r1", aud("40"), REFUND))
        assert again == ledger
        assert again.collected("AUD") == aud("60")

    @pytest.mark.parametrize(
        "change",
        [
            {"amount": aud("101")},
            {"outcome": FAILED},
            {"kind": REFUND},
            {"at": T0 + HOUR},
            {"member_id": "m-2"},
        ],
    )
    def test_same_id_other_content_is_refused(self, change: dict[str, object]) -> None:
        """The same id with different content raises 'conflicting_payment' naming the id."""
        ledger = Ledger().record(_payment("c1"))
        snapshot = copy.deepcopy(ledger)
        with pytest.raises(RuleViolation, match="c1") as caught:
            ledger.record(attrs.evolve(_payment("c1"), **change))
        assert caught.value.rule == "conflicting_payment"
        assert ledger == snapshot

    def test_an_over_refund_is_refused_and_changes_nothing(self) -> None:
        """A refund above the collected amount raises and leaves the ledger as it was."""
        ledger = Ledger().record(_payment("c1"))
        with pytest.raises(RuleViolation) as caught:
            ledger.record(_payment("r1", aud("100.01"), REFUND, at=T0 + HOUR))
        assert caught.value.rule == "refund_exceeds_collected"
        assert ledger.entries == (_payment("c1"),)
        assert ledger.record(_payment("r1", aud("100"), REFUND, at=T0 + HOUR)).collected(
            "AUD"
        ) == aud("0")


SOURCES = [{"member_id": "m-1"}, {"member_id": "m-2"}, {"payment_plan_id": "pp-1"}]


@st.composite
def _entries(draw: st.DrawFn, *, in_order: bool) -> list[Payment]:
    """Random entries over three sources in one currency, in time order or not."""
    result = []
    at = T0
    for n in range(draw(st.integers(0, 25))):
        step = draw(st.integers(0, 3600) if in_order else st.integers(-7200, 7200))
        at += timedelta(seconds=step)
        result.append(
            _payment(
                f"pay-{n}",
                Money.from_minor(draw(st.integers(1, 20_000)), "AUD"),
                draw(st.sampled_from([CHARGE, CHARGE, REFUND])),
                draw(st.sampled_from([OK, OK, FAILED])),
                at,
                **draw(st.sampled_from(SOURCES)),
            )
        )
    return result


def _net_by_source(entries: tuple[Payment, ...]) -> dict[tuple[str, str], int]:
    net: dict[tuple[str, str], int] = {}
    for p in entries:
        net[p.source] = net.get(p.source, 0) + p.signed.minor
    return net


def _try_record(ledger: Ledger, payment: Payment) -> tuple[Ledger, RuleViolation | None]:
    """The ledger after recording ``payment``, or the same ledger and the refusal."""
    try:
        return ledger.record(payment), None
    except RuleViolation as refused:
        return ledger, refused


class TestLedgerProperties:
    """Whatever is recorded, no source ever has a negative net collected."""

    @given(entries=_entries(in_order=True))
    def test_in_time_order_a_refund_passes_exactly_up_to_the_net(
        self, entries: list[Payment]
    ) -> None:
        """Recorded in time order, a succeeded refund passes iff it is at most its source's net."""
        ledger = Ledger()
        for payment in entries:
            net = _net_by_source(ledger.entries).get(payment.source, 0)
            limited = payment.kind is REFUND and payment.succeeded
            if limited and payment.amount.minor > net:
                with pytest.raises(RuleViolation) as caught:
                    ledger.record(payment)
                assert caught.value.rule == "refund_exceeds_collected"
            else:
                ledger = ledger.record(payment)
                assert ledger.entries[-1] == payment
        assert all(v >= 0 for v in _net_by_source(ledger.entries).values())

    @given(entries=_entries(in_order=False), replays=st.lists(st.integers(0, 24), max_size=5))
    def test_any_sequence_keeps_every_net_collected_non_negative(
        self, entries: list[Payment], replays: list[int]
    ) -> None:
        """Any recorded sequence (with replays) keeps every source's net, at every instant, >= 0."""
        ledger = Ledger()
        for payment in entries:
            before = ledger
            ledger, refused = _try_record(ledger, payment)
            if refused is not None:
                assert refused.rule == "refund_exceeds_collected"
                assert payment.kind is REFUND
                assert payment.succeeded
                assert ledger == before
        for i in replays:
            if i < len(ledger.entries):
                assert ledger.record(ledger.entries[i]) == ledger
        ids = [p.id for p in ledger.entries]
        assert len(ids) == len(set(ids))
        assert all(v >= 0 for v in _net_by_source(ledger.entries).values())
        for source in {p.source for p in ledger.entries}:
            running = 0
            ordered = sorted(
                (p for p in ledger.entries if p.source == source),
                key=lambda p: (p.at, p.kind is REFUND),
            )
            for p in ordered:
                running += p.signed.minor
                assert running >= 0
        total = sum(_net_by_source(ledger.entries).values())
        assert ledger.collected("AUD") == Money.from_minor(total, "AUD")
