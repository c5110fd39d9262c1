"""Repository contract kit: pytest classes a host mixes into its own test suite.

Each contract checks one repository of a host's store against the protocol and
against the library's own definitions (every query's ``matches``, the sort
order, the sums), on Hypothesis-generated practices. A contract needs one
fixture, ``store_factory``: a callable that builds a new, empty store whose
repositories also offer ``add`` (and ``save``, except the append-only ledger).
Define it once in ``conftest.py`` and subclass each contract::

    # conftest.py
    @pytest.fixture
    def store_factory():
        return lambda: MySqlStore(create_engine("sqlite://"))

    # test_my_store.py
    from smilepass_core.testing import contracts

    class TestMembers(contracts.MemberRepositoryContract): ...
    class TestPayments(contracts.PaymentRepositoryContract): ...

    class MyStoreComparison(contracts.StoreComparison):
        store_factory = staticmethod(lambda: MySqlStore(create_engine("sqlite://")))

    TestMyStoreComparison = MyStoreComparison.TestCase

:class:`StoreComparison` is a stateful machine that applies random adds, saves,
finds and counts to the host's store and to :class:`InMemoryStore` alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from smilepass_core.domain import (
    MEMBERSHIP_LIFECYCLE,
    Campaign,
    Member,
    MembershipPlan,
    Payment,
    PaymentKind,
    PaymentOutcome,
    PaymentPlan,
    Practice,
    Referral,
    StaffUser,
)
from smilepass_core.errors import DuplicateId, NotFound, RuleViolation
from smilepass_core.memory import InMemoryStore
from smilepass_core.money import Money, per_currency
from smilepass_core.queries import (
    MemberQuery,
    Order,
    Page,
    PaymentQuery,
    ScopeQuery,
    apply_order,
    sort_columns,
)
from smilepass_core.records import TABLES
from smilepass_core.testing import strategies as sps

__all__ = [
    "CampaignRepositoryContract",
    "MemberRepositoryContract",
    "MembershipPlanRepositoryContract",
    "PaymentPlanRepositoryContract",
    "PaymentRepositoryContract",
    "PracticeRepositoryContract",
    "ReferralRepositoryContract",
    "StaffUserRepositoryContract",
    "StoreComparison",
    "load",
]

StoreFactory = Callable[[], Any]

#: Each contract test tries a fifth of the active profile's ``max_examples`` generated
#: practices (at least 10; 40 under a 200-example CI profile): each example is a whole
#: practice. The tests are inherited by one class per repository (hence
#: ``differing_executors``), and ``store_factory`` is a factory called afresh for every
#: example (hence ``function_scoped_fixture``).
_SETTINGS = settings(
    max_examples=max(10, settings().max_examples // 5),
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.differing_executors,
        HealthCheck.too_slow,
    ],
    deadline=None,
)


def load(store: Any, dataset: sps.Dataset) -> None:
    """Add every object of ``dataset`` to ``store``, repository by repository, in order."""
    for name in TABLES:
        repository = getattr(store, name)
        for obj in getattr(dataset, name):
            repository.add(obj)


def _timezones(dataset: sps.Dataset) -> dict[str, str]:
    return {p.id: p.timezone for p in dataset.practices}


def _ids(objects: Iterable[Any]) -> list[str]:
    return sorted(o.id for o in objects)


class _RepositoryContract:
    """What every repository must do; subclasses name the repository and its queries."""

    repository: ClassVar[str]
    kind: ClassVar[type]
    append_only: ClassVar[bool] = False

    # what subclasses define --------------------------------------------------------

    def queries(self, dataset: sps.Dataset) -> st.SearchStrategy[Any]:
        """Queries to try on ``dataset``."""
        raise NotImplementedError

    def expected(self, dataset: sps.Dataset, query: Any) -> list[Any]:
        """The brute-force answer: every object of the dataset for which ``matches`` holds."""
        return [o for o in getattr(dataset, self.repository) if query.matches(o)]

    def changed(self, obj: Any) -> Any:
        """A different version of ``obj`` with the same id (for ``save``)."""
        return attrs.evolve(obj, name=obj.name + " (renamed)")

    # helpers ---------------------------------------------------------------------------

    def _loaded(self, store_factory: StoreFactory, dataset: sps.Dataset) -> Any:
        store = store_factory()
        load(store, dataset)
        return getattr(store, self.repository)

    # the contract ----------------------------------------------------------------------

    @_SETTINGS
    @given(dataset=sps.datasets())
    def test_get_returns_each_added_object(
        self, store_factory: StoreFactory, dataset: sps.Dataset
    ) -> None:
        """get(id) returns exactly the object that was added under that id."""
        repo = self._loaded(store_factory, dataset)
        for obj in getattr(dataset, self.repository):
            assert repo.get(obj.id) == obj

    @_SETTINGS
    @given(dataset=sps.datasets(), stranger=sps.ids("no-such"))
    def test_get_unknown_id_raises_not_found(
        self, store_factory: StoreFactory, dataset: sps.Dataset, stranger: str
    ) -> None:
        """get() of an id never added raises NotFound carrying the id."""
        repo = self._loaded(store_factory, dataset)
        with pytest.raises(NotFound) as caught:
            repo.get(stranger)
        assert caught.value.id == stranger

    @_SETTINGS
    @given(dataset=sps.datasets())
    def test_add_of_a_taken_id_raises_duplicate_id(
        self, store_factory: StoreFactory, dataset: sps.Dataset
    ) -> None:
        """add() of a different object under an existing id raises DuplicateId and keeps the old."""
        repo = self._loaded(store_factory, dataset)
        for obj in getattr(dataset, self.repository)[:3]:
            with pytest.raises(DuplicateId):
                repo.add(self.changed(obj))
            assert repo.get(obj.id) == obj

    @_SETTINGS
    @given(dataset=sps.datasets())
    def test_save_replaces_and_unknown_save_raises(
        self, store_factory: StoreFactory, dataset: sps.Dataset
    ) -> None:
        """save() replaces the object with the same id; save() of an unknown id raises NotFound."""
        if self.append_only:
            pytest.skip("append-only repository: no save()")
        repo = self._loaded(store_factory, dataset)
        objects = getattr(dataset, self.repository)
        for obj in objects[:3]:
            new = self.changed(obj)
            repo.save(new)
            assert repo.get(obj.id) == new
        if objects:
            with pytest.raises(NotFound):
                repo.save(attrs.evolve(objects[0], id="never-added"))

    @_SETTINGS
    @given(data=st.data(), dataset=sps.datasets())
    def test_find_and_count_agree_with_matches(
        self, store_factory: StoreFactory, data: st.DataObject, dataset: sps.Dataset
    ) -> None:
        """find() returns exactly the objects whose query.matches() holds, ordered by id;
        count() is their number."""
        repo = self._loaded(store_factory, dataset)
        for _ in range(3):
            query = data.draw(self.queries(dataset), label="query")
            expected = _ids(self.expected(dataset, query))
            assert [o.id for o in repo.find(query)] == expected
            assert repo.count(query) == len(expected)

    @_SETTINGS
    @given(data=st.data(), dataset=sps.datasets())
    def test_find_sorts_and_pages_like_apply_order(
        self, store_factory: StoreFactory, data: st.DataObject, dataset: sps.Dataset
    ) -> None:
        """find(order=...) sorts by the named columns (ties by id) and then pages."""
        repo = self._loaded(store_factory, dataset)
        query = data.draw(self.queries(dataset), label="query")
        order = data.draw(sps.orders(sort_columns.get(self.kind, ["id"])), label="order")
        expected = apply_order(self.expected(dataset, query), self.kind, order)
        assert [o.id for o in repo.find(query, order=order)] == [o.id for o in expected]


class PracticeRepositoryContract(_RepositoryContract):
    """Contract for ``store.practices``."""

    repository = "practices"
    kind = Practice

    def queries(self, dataset: sps.Dataset) -> st.SearchStrategy[Any]:
        return sps.scope_queries(dataset, dataset.practices)


class StaffUserRepositoryContract(_RepositoryContract):
    """Contract for ``store.staff_users``."""

    repository = "staff_users"
    kind = StaffUser

    def queries(self, dataset: sps.Dataset) -> st.SearchStrategy[Any]:
        return sps.scope_queries(dataset, dataset.staff_users)


class MembershipPlanRepositoryContract(_RepositoryContract):
    """Contract for ``store.membership_plans``."""

    repository = "membership_plans"
    kind = MembershipPlan

    def queries(self, dataset: sps.Dataset) -> st.SearchStrategy[Any]:
        return sps.scope_queries(dataset, dataset.membership_plans)


class CampaignRepositoryContract(_RepositoryContract):
    """Contract for ``store.campaigns``."""

    repository = "campaigns"
    kind = Campaign

    def queries(self, dataset: sps.Dataset) -> st.SearchStrategy[Any]:
        return sps.scope_queries(dataset, dataset.campaigns)


class MemberRepositoryContract(_RepositoryContract):
    """Contract for ``store.members``, including the KPI reads (boundaries, latest feed)."""

    repository = "members"
    kind = Member

    def queries(self, dataset: sps.Dataset) -> st.SearchStrategy[Any]:
        return sps.member_queries(dataset)

    def expected(self, dataset: sps.Dataset, query: Any) -> list[Any]:
        zones = _timezones(dataset)
        return [
            m
            for m in dataset.members
            if query.matches(
                m,
                plans=[p for p in dataset.payment_plans if p.member_id == m.id],
                timezone=zones[m.practice_id],
            )
        ]

    def changed(self, obj: Any) -> Any:
        return attrs.evolve(obj, dependents=(*obj.dependents, obj.account_holder))

    @_SETTINGS
    @given(data=st.data(), dataset=sps.datasets())
    def test_latest_activated_feed(
        self, store_factory: StoreFactory, data: st.DataObject, dataset: sps.Dataset
    ) -> None:
        """find ordered by -first_activated_at with a limit gives the newest activations first."""
        repo = self._loaded(store_factory, dataset)
        boundary = data.draw(sps.boundaries(dataset), label="before")
        limit = data.draw(st.integers(0, 6), label="limit")
        query = MemberQuery(ever_active_before=boundary)
        order = Order(["-first_activated_at"], page=Page(limit=limit))
        expected = apply_order(self.expected(dataset, query), Member, order)
        assert [m.id for m in repo.find(query, order=order)] == [m.id for m in expected]


class PaymentPlanRepositoryContract(_RepositoryContract):
    """Contract for ``store.payment_plans``, including ``total``."""

    repository = "payment_plans"
    kind = PaymentPlan

    def queries(self, dataset: sps.Dataset) -> st.SearchStrategy[Any]:
        return sps.payment_plan_queries(dataset)

    def expected(self, dataset: sps.Dataset, query: Any) -> list[Any]:
        zones = _timezones(dataset)
        return [p for p in dataset.payment_plans if query.matches(p, timezone=zones[p.practice_id])]

    def changed(self, obj: Any) -> Any:
        return attrs.evolve(obj, patient=attrs.evolve(obj.patient, name="Renamed Patient"))

    @_SETTINGS
    @given(data=st.data(), dataset=sps.datasets())
    def test_total_is_the_exact_sum_per_currency(
        self, store_factory: StoreFactory, data: st.DataObject, dataset: sps.Dataset
    ) -> None:
        """total() is the sum of the matching plans' totals, per currency, exactly."""
        repo = self._loaded(store_factory, dataset)
        query = data.draw(self.queries(dataset), label="query")
        assert _nonzero(repo.total(query)) == _nonzero(
            per_currency(p.total for p in self.expected(dataset, query))
        )


class PaymentRepositoryContract(_RepositoryContract):
    """Contract for ``store.payments``: append-only, idempotent, refunds capped, ``total``."""

    repository = "payments"
    kind = Payment
    append_only = True

    def queries(self, dataset: sps.Dataset) -> st.SearchStrategy[Any]:
        return sps.payment_queries(dataset)

    def changed(self, obj: Any) -> Any:
        return attrs.evolve(obj, amount=obj.amount + Money.from_minor(1, obj.amount.currency))

    @_SETTINGS
    @given(dataset=sps.datasets())
    def test_recording_the_same_payment_twice_counts_once(
        self, store_factory: StoreFactory, dataset: sps.Dataset
    ) -> None:
        """add() of a payment identical to a recorded one changes nothing."""
        repo = self._loaded(store_factory, dataset)
        before = repo.count(_ALL_PAYMENTS)
        for payment in dataset.payments[:3]:
            repo.add(payment)
        assert repo.count(_ALL_PAYMENTS) == before

    @_SETTINGS
    @given(dataset=sps.datasets())
    def test_refund_above_collected_is_refused(
        self, store_factory: StoreFactory, dataset: sps.Dataset
    ) -> None:
        """A refund above the net collected for its source raises and is not recorded."""
        repo = self._loaded(store_factory, dataset)
        for member in dataset.members[:2]:
            source = ("member", member.id)
            currency = next(p.currency for p in dataset.practices if p.id == member.practice_id)
            net = per_currency(p.signed for p in dataset.payments if p.source == source).get(
                currency, Money.zero(currency)
            )
            refund = Payment(
                id=f"{member.id}-too-much",
                practice_id=member.practice_id,
                amount=net + Money.from_minor(1, currency),
                kind=PaymentKind.REFUND,
                outcome=PaymentOutcome.SUCCEEDED,
                at=max((p.at for p in dataset.payments), default=member.created_at)
                + timedelta(days=1),
                member_id=member.id,
            )
            with pytest.raises(RuleViolation):
                repo.add(refund)
            with pytest.raises(NotFound):
                repo.get(refund.id)

    @_SETTINGS
    @given(data=st.data(), dataset=sps.datasets())
    def test_total_is_the_exact_signed_sum_per_currency(
        self, store_factory: StoreFactory, data: st.DataObject, dataset: sps.Dataset
    ) -> None:
        """total() is succeeded charges minus succeeded refunds over the matches, per currency."""
        repo = self._loaded(store_factory, dataset)
        query = data.draw(self.queries(dataset), label="query")
        expected = per_currency(p.signed for p in self.expected(dataset, query))
        assert _nonzero(repo.total(query)) == _nonzero(expected)


class ReferralRepositoryContract(_RepositoryContract):
    """Contract for ``store.referrals``."""

    repository = "referrals"
    kind = Referral

    def queries(self, dataset: sps.Dataset) -> st.SearchStrategy[Any]:
        return sps.referral_queries(dataset)

    def changed(self, obj: Any) -> Any:
        return attrs.evolve(obj, dependents=(*obj.dependents, obj.account_holder))


def _nonzero(totals: Any) -> dict[str, Money]:
    """Totals without zero entries: a store may report a zero or leave the currency out."""
    return {c: m for c, m in dict(totals).items() if not m.is_zero()}


_ALL_PAYMENTS = PaymentQuery()


class StoreComparison(RuleBasedStateMachine):
    """Random adds, saves, finds and counts on a host's store and on InMemoryStore alike.

    Subclass it with ``store_factory`` set (a callable building a new, empty store)
    and run ``YourMachine.TestCase``.
    """

    store_factory: ClassVar[StoreFactory]

    def __init__(self) -> None:
        super().__init__()
        self.host: Any = None
        self.reference = InMemoryStore()
        self.pending: list[tuple[str, Any]] = []
        self.dataset: sps.Dataset | None = None

    @initialize(dataset=sps.datasets(max_members=6, max_payment_plans=3, max_payments=8))
    def start(self, dataset: sps.Dataset) -> None:
        self.host = type(self).store_factory()
        self.dataset = dataset
        self.pending = [(name, o) for name in TABLES for o in getattr(dataset, name)]

    @precondition(lambda self: bool(self.pending))
    @rule()
    def add_next(self) -> None:
        """Both stores add the next object of the dataset."""
        name, obj = self.pending.pop(0)
        getattr(self.reference, name).add(obj)
        getattr(self.host, name).add(obj)

    @precondition(lambda self: len(self.reference.members) > 0)
    @rule(data=st.data())
    def move_a_member(self, data: st.DataObject) -> None:
        """Both stores save the same member moved to a status its table allows."""
        members: Sequence[Member] = sorted(self.reference.members, key=lambda m: m.id)
        member = data.draw(st.sampled_from(members), label="member")
        targets = sorted(MEMBERSHIP_LIFECYCLE.allowed(member.status), key=lambda s: s.value)
        if not targets:
            return
        to = data.draw(st.sampled_from(targets), label="to")
        later = member.history[-1].at + timedelta(seconds=data.draw(st.integers(0, 10**7)))
        moved = member.transition(to, at=later, reason="contract")
        self.reference.members.save(moved)
        self.host.members.save(moved)

    @precondition(lambda self: self.dataset is not None)
    @rule(data=st.data())
    def compare_members(self, data: st.DataObject) -> None:
        """The same member query gives the same ids and count on both stores."""
        assert self.dataset is not None
        query = data.draw(sps.member_queries(self.dataset), label="query")
        assert [m.id for m in self.host.members.find(query)] == [
            m.id for m in self.reference.members.find(query)
        ]
        assert self.host.members.count(query) == self.reference.members.count(query)

    @precondition(lambda self: self.dataset is not None)
    @rule(data=st.data())
    def compare_payments(self, data: st.DataObject) -> None:
        """The same payment query gives the same ids, count and totals on both stores."""
        assert self.dataset is not None
        query = data.draw(sps.payment_queries(self.dataset), label="query")
        assert [p.id for p in self.host.payments.find(query)] == [
            p.id for p in self.reference.payments.find(query)
        ]
        assert _nonzero(self.host.payments.total(query)) == _nonzero(
            self.reference.payments.total(query)
        )

    @invariant()
    def same_sizes(self) -> None:
        """Both stores hold as many objects of each kind."""
        if self.host is None:
            return
        for name in ("practices", "staff_users", "membership_plans", "campaigns"):
            assert getattr(self.host, name).count(ScopeQuery()) == len(
                getattr(self.reference, name)
            )
