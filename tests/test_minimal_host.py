"""The minimal host store shown in docs/repositories.md honours the contract kit, verbatim."""

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from smilepass_core.testing import contracts

DOCS = Path(__file__).resolve().parent.parent / "docs"
EXAMPLE = DOCS / "examples" / "minimal_host.py"
PAGE = DOCS / "repositories.md"
START, END = b"<!-- minimal-host:start -->", b"<!-- minimal-host:end -->"


def _load_example() -> ModuleType:
    """Import docs/examples/minimal_host.py by path (docs/ is not a package)."""
    spec = importlib.util.spec_from_file_location("minimal_host", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


minimal_host = _load_example()


@pytest.fixture
def store_factory() -> Callable[[], Any]:
    """The contract kit's one fixture: a new, empty minimal host store."""
    return minimal_host.MinimalStore  # type: ignore[no-any-return]


class TestPractices(contracts.PracticeRepositoryContract):
    """The minimal host's practices honour the contract."""


class TestStaffUsers(contracts.StaffUserRepositoryContract):
    """The minimal host's staff users honour the contract."""


class TestMembershipPlans(contracts.MembershipPlanRepositoryContract):
    """The minimal host's membership plans honour the contract."""


class TestCampaigns(contracts.CampaignRepositoryContract):
    """The minimal host's campaigns honour the contract."""


class TestMembers(contracts.MemberRepositoryContract):
    """The minimal host's members honour the contract, KPI reads and overdue included."""


class TestPaymentPlans(contracts.PaymentPlanRepositoryContract):
    """The minimal host's payment plans honour the contract, totals included."""


class TestPayments(contracts.PaymentRepositoryContract):
    """The minimal host's ledger honours the contract: append-only, idempotent, refunds capped."""


class TestReferrals(contracts.ReferralRepositoryContract):
    """The minimal host's referrals honour the contract."""


class MinimalHostComparison(contracts.StoreComparison):
    """The minimal host and InMemoryStore, driven through the same random steps."""

    store_factory = staticmethod(minimal_host.MinimalStore)


TestMinimalHostComparison = MinimalHostComparison.TestCase


class TestTheDocsPage:
    """docs/repositories.md cannot drift from the tested example."""

    def test_page_shows_the_example_byte_for_byte(self) -> None:
        """The page's block between the minimal-host markers is the example file, fenced."""
        page = PAGE.read_bytes()
        assert page.count(START) == 1
        assert page.count(END) == 1
        block = page.split(START)[1].split(END)[0]
        assert block == b"\n```python\n" + EXAMPLE.read_bytes() + b"```\n"
