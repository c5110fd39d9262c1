"""The repository contract kit, run against InMemoryStore, and shown to catch a broken store."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky

from smilepass_core import InMemoryStore, MemberQuery, MembershipStatus
from smilepass_core.memory import _Members
from smilepass_core.testing import contracts
from smilepass_core.testing import strategies as sps


@pytest.fixture
def store_factory() -> Callable[[], InMemoryStore]:
    """The contract kit's one fixture: a new, empty store."""
    return InMemoryStore


class TestPractices(contracts.PracticeRepositoryContract):
    """InMemoryStore.practices honours the contract."""


class TestStaffUsers(contracts.StaffUserRepositoryContract):
    """InMemoryStore.staff_users honours the contract."""


class TestMembershipPlans(contracts.MembershipPlanRepositoryContract):
    """InMemoryStore.membership_plans honours the contract."""


class TestCampaigns(contracts.CampaignRepositoryContract):
    """InMemoryStore.campaigns honours the contract."""


class TestMembers(contracts.MemberRepositoryContract):
    """InMemoryStore.members honours the contract, KPI reads included."""


class TestPaymentPlans(contracts.PaymentPlanRepositoryContract):
    """InMemoryStore.payment_plans honours the contract."""


class TestPayments(contracts.PaymentRepositoryContract):
    """InMemoryStore.payments honours the contract."""


class TestReferrals(contracts.ReferralRepositoryContract):
    """InMemoryStore.referrals honours the contract."""


class InMemoryComparison(contracts.StoreComparison):
    """InMemoryStore compared with itself: the machine must run clean."""

    store_factory = staticmethod(InMemoryStore)


TestInMemoryComparison = InMemoryComparison.TestCase


# -- a deliberately broken store -------------------------------------------------------


class _InclusiveBoundaryMembers(_Members):
    """Counts 'Active at B' including a change stamped exactly at B: the classic off-by-one."""

    def active_at(self, practice_id: str, boundary: datetime) -> int:
        return sum(
            1
            for m in self._items.values()
            if m.practice_id == practice_id and m.status_at(boundary) is MembershipStatus.ACTIVE
        )


class BrokenStore(InMemoryStore):
    """An InMemoryStore whose member count treats a boundary as inclusive."""

    def __init__(self) -> None:
        super().__init__()
        self.members = _InclusiveBoundaryMembers(self)


class _DroppingFind(_Members):
    """Loses the last match of every find: a paging bug."""

    def find(self, query: MemberQuery, *, order: Any = None) -> list[Any]:
        return super().find(query, order=order)[:-1]


class LossyStore(InMemoryStore):
    """An InMemoryStore whose member find drops a row."""

    def __init__(self) -> None:
        super().__init__()
        self.members = _DroppingFind(self)


#: Find a failure, report it, skip shrinking: these tests only need to see the kit fail.
_FIND_ONLY = settings(
    max_examples=200,
    phases=[Phase.generate],
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def _fails_on(test: Any, store: type[InMemoryStore]) -> None:
    """Run a contract test's body against ``store`` and expect it to fail.

    Hypothesis reports the failure it found as the AssertionError itself or, when its
    confirming replay of the failing example stops at another draw, as ``Flaky``: both
    mean the contract caught the broken store (the real stores above pass it cleanly).
    """
    inner = test.hypothesis.inner_test

    @_FIND_ONLY
    @given(data=st.data(), dataset=sps.datasets())
    def run(data: st.DataObject, dataset: sps.Dataset) -> None:
        inner(TestMembers(), store_factory=store, data=data, dataset=dataset)

    with pytest.raises((AssertionError, Flaky)):
        run()


class TestTheKitCatchesBrokenStores:
    """Each contract fails on a store that breaks it."""

    def test_inclusive_boundary_is_caught(self) -> None:
        """A store counting changes stamped exactly at the boundary fails the members contract."""
        _fails_on(TestMembers.test_find_and_count_agree_with_matches, BrokenStore)

    def test_lost_rows_are_caught(self) -> None:
        """A store whose find loses a row fails the members contract."""
        _fails_on(TestMembers.test_find_and_count_agree_with_matches, LossyStore)

    def test_stateful_comparison_catches_the_broken_store(self) -> None:
        """The stateful machine finds a difference between the broken store and the reference."""

        class Against(contracts.StoreComparison):
            store_factory = staticmethod(BrokenStore)

        Against.TestCase.settings = settings(_FIND_ONLY, stateful_step_count=50)
        with pytest.raises(AssertionError):
            Against.TestCase().runTest()
