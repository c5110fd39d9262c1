"""Tests for smilepass_core.errors: every error survives a process boundary intact."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smilepass_core import errors
from smilepass_core.domain import MembershipStatus

T = datetime(2026, 1, 1, tzinfo=UTC)

#: One instance of every error the package exports, built as the library builds it.
SAMPLES: dict[str, Callable[[], errors.SmilepassError]] = {
    "SmilepassError": lambda: errors.SmilepassError("something"),
    "InvalidValue": lambda: errors.InvalidValue("field", 1, "bad"),
    "InvalidMoney": lambda: errors.InvalidMoney("amount", 1.5, "floats are not exact"),
    "UnknownCurrency": lambda: errors.UnknownCurrency("currency", "XYZ", "not ISO 4217"),
    "CurrencyMismatch": lambda: errors.CurrencyMismatch("AUD", "USD", "add"),
    "InvalidPeriod": lambda: errors.InvalidPeriod("at", 1, "bad"),
    "UnknownTimezone": lambda: errors.UnknownTimezone("timezone", "Mars/Olympus", "unknown"),
    "NaiveDatetime": lambda: errors.NaiveDatetime("at", datetime(2026, 1, 1), "naive"),
    "MissingExtra": lambda: errors.MissingExtra("arrow", "pyarrow", wanted="a table"),
    "InvalidTransition": lambda: errors.InvalidTransition(
        MembershipStatus.CANCELLED, MembershipStatus.ACTIVE, subject="Member m1"
    ),
    "OutOfOrderChange": lambda: errors.OutOfOrderChange(T, T, subject="Member m1"),
    "UnknownStatus": lambda: errors.UnknownStatus("overdue", ["active", "failed"]),
    "RuleViolation": lambda: errors.RuleViolation("stale_history", "reload", field="history"),
    "NotFound": lambda: errors.NotFound("Member", "m1", field="member_id"),
    "DuplicateId": lambda: errors.DuplicateId("Member", "m1"),
    "VersionConflict": lambda: errors.VersionConflict("Member", "m1", expected=1, actual=2),
    "ConflictingPayment": lambda: errors.ConflictingPayment("pay-1"),
    "InvalidData": lambda: errors.InvalidData("data", ["members.csv:3: id: is required"], 2),
    "InvalidRecord": lambda: errors.InvalidRecord("members", 3, "start_date", "required"),
    "InvalidRow": lambda: errors.InvalidRow("members", "m1", "status", "unknown"),
}


def _same(back: BaseException, error: BaseException) -> None:
    assert type(back) is type(error)
    assert str(back) == str(error)
    assert back.args == error.args
    assert vars(back) == vars(error)


class TestPickling:
    """An error pickled in a worker process reads the same in the parent (multiprocessing,
    task queues): same type, message and attributes."""

    def test_every_exported_error_has_a_sample(self) -> None:
        """The samples cover errors.__all__, so a new error is tested once it is added."""
        assert set(SAMPLES) == set(errors.__all__)

    @pytest.mark.parametrize("name", sorted(SAMPLES))
    def test_round_trip(self, name: str) -> None:
        """pickle.loads(pickle.dumps(error)) is the same error, at every protocol."""
        error = SAMPLES[name]()
        for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
            _same(pickle.loads(pickle.dumps(error, protocol)), error)

    def test_an_import_error_keeps_its_module_name(self) -> None:
        """MissingExtra is an ImportError: its ``name`` (the missing module) survives."""
        error = SAMPLES["MissingExtra"]()
        back = pickle.loads(pickle.dumps(error))
        assert isinstance(back, ImportError)
        assert (back.name, back.extra, back.module) == ("pyarrow", "arrow", "pyarrow")  # type: ignore[attr-defined]

    @given(
        field=st.text(max_size=20),
        value=st.one_of(
            st.none(), st.integers(), st.text(max_size=20), st.decimals(allow_nan=False)
        ),
        reason=st.text(max_size=40),
    )
    def test_any_invalid_value_round_trips(self, field: str, value: object, reason: str) -> None:
        """Whatever field, value and reason an InvalidValue carries, it pickles intact."""
        error = errors.InvalidValue(field, value, reason)
        back = pickle.loads(pickle.dumps(error))
        assert (type(back), str(back), back.field, back.reason) == (
            errors.InvalidValue,
            str(error),
            field,
            reason,
        )
        assert back.value == value
