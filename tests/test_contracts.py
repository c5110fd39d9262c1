"""The repository contract kit: run against InMemoryStore, and shown to catch broken stores.

The planted bugs are the ones hosts write (an inclusive end, UTC calendar days,
refunds not subtracted, Suspended counted as Active, ``None`` sorted first): each
must be reported as a short ContractViolation, within a small number of examples.
"""

from collections import UserList
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from smilepass_core import InMemoryStore, MembershipStatus, PaymentKind, PaymentOutcome
from smilepass_core.demo import DEMO_NOW, demo_store, load_demo
from smilepass_core.domain.overdue import unpaid_charges
from smilepass_core.memory import _Members
from smilepass_core.money import per_currency
from smilepass_core.queries import MemberQuery, Order, Page, apply_order, sort_columns
from smilepass_core.read_only_list import ReadOnlyList
from smilepass_core.testing import contracts, minimal


class TestInMemoryStore(contracts.StoreContract):
    """InMemoryStore honours the whole contract."""

    def make_store(self) -> InMemoryStore:
        return InMemoryStore()


@pytest.fixture
def store_factory() -> Callable[[], InMemoryStore]:
    """The per-repository contracts' one fixture: a new, empty store."""
    return InMemoryStore


class TestMembersAlone(contracts.MemberRepositoryContract):
    """The per-repository members contract runs on its own, KPI reads included."""


class TestPaymentsAlone(contracts.PaymentRepositoryContract):
    """The per-repository ledger contract runs on its own; save() is skipped, saying why."""


class TestPaymentsWithItsOwnMakeStore(contracts.PaymentRepositoryContract):
    """A per-repository contract may define make_store() instead of the fixture."""

    def make_store(self) -> minimal.MinimalStore:
        return minimal.MinimalStore()


class _MembersAndPlansOnly:
    """A host that implements only practices, members and payment plans."""

    def __init__(self) -> None:
        whole = minimal.MinimalStore()
        self.practices = whole.practices
        self.members = whole.members
        self.payment_plans = whole.payment_plans


class _PartialContract(contracts.StoreContract):
    repositories = ("practices", "members", "payment_plans")

    def make_store(self) -> _MembersAndPlansOnly:
        return _MembersAndPlansOnly()


class TestAPartialHost:
    """A host with some repositories checks those, and is told which are left out."""

    def test_missing_repository_is_skipped_with_its_name(self) -> None:
        """A repository the contract does not cover is reported as skipped, by name."""
        with pytest.raises(pytest.skip.Exception, match="'campaigns' is not among"):
            _PartialContract().test_has_repository("campaigns")

    def test_a_named_repository_the_store_lacks_fails_naming_it(self) -> None:
        """A repository named in the contract but absent from the store is a failure (a
        misspelled attribute must not pass as a skip), in every check and by name."""

        class Claims(_PartialContract):
            repositories = ("practices", "members", "payment_plans", "referrals")

        with pytest.raises(contracts.ContractViolation, match=r"^store\.referrals"):
            Claims().test_has_repository("referrals")
        with pytest.raises(contracts.ContractViolation, match=r"^store\.referrals"):
            Claims().test_get_returns_each_added_object()

    def test_its_repositories_and_the_dashboard_are_checked(self) -> None:
        """The contract checks the repositories the host has; the dashboard reads the rest
        from InMemoryStore."""
        contract = _PartialContract()
        contract.test_find_and_count_agree_with_matches()
        contract.test_dashboard_agrees_with_the_reference()
        contract.test_random_steps_agree_with_the_reference()

    def test_a_check_of_a_missing_repository_is_skipped(self) -> None:
        """A check of one repository (the ledger's total) skips when the host has none."""
        with pytest.raises(pytest.skip.Exception, match="'payments' is not among"):
            _PartialContract().test_total_is_the_exact_signed_sum_per_currency()


# -- planted bugs ------------------------------------------------------------------------


def _from_utc_days(query: Any, payment: Any) -> bool:
    """The range compared as UTC calendar days (a timezone-naive day bucket)."""
    window = query.time_range
    day = payment.at.astimezone(UTC).date()
    inside = window.start.astimezone(UTC).date() <= day < window.end.astimezone(UTC).date()
    return inside and bool(attrs.evolve(query, time_range=None).matches(payment))


def _inclusive_end(query: Any, payment: Any) -> bool:
    """The range's end included: ``<=`` for ``<``."""
    window = query.time_range
    inside = window.start <= payment.at <= window.end
    return inside and bool(attrs.evolve(query, time_range=None).matches(payment))


class _PaymentsFiltered(minimal.Payments):
    """A ledger whose time filter is ``rule`` (the rest of the query as the library says)."""

    rule: ClassVar[Callable[[Any, Any], bool]]

    def matches(self, query: Any, obj: Any) -> bool:
        if query.time_range is None:
            return super().matches(query, obj)
        return type(self).rule(query, obj)


class _UtcDayPayments(_PaymentsFiltered):
    rule = staticmethod(_from_utc_days)


class _InclusivePayments(_PaymentsFiltered):
    rule = staticmethod(_inclusive_end)


class _RefundBlindPayments(minimal.Payments):
    """total() adds every succeeded entry, refunds included, as money in."""

    def total(self, query: Any) -> dict[str, Any]:
        succeeded = [p for p in self.matching(query) if p.outcome is PaymentOutcome.SUCCEEDED]
        return per_currency(p.amount for p in succeeded)


class _SuspendedCountsMembers(minimal.Members):
    """'Active at B' counts Suspended members too."""

    def matches(self, query: Any, member: Any) -> bool:
        if query.active_at is None or query.retained_until is not None:
            return super().matches(query, member)
        status = member.status_before(query.active_at)
        rest = attrs.evolve(query, active_at=None)
        counted = (MembershipStatus.ACTIVE, MembershipStatus.SUSPENDED)
        return status in counted and super().matches(rest, member)


class _InclusiveActiveCounts(minimal.Members):
    """Offers active_counts, taking a change stamped at the instant as already made."""

    def active_counts(self, *, practices: Any, at: list[datetime]) -> list[int]:
        mine = [m for m in self.rows.values() if practices is None or m.practice_id in practices]
        after = [a + timedelta(microseconds=1) for a in at]
        return [sum(m.status_before(a) is MembershipStatus.ACTIVE for m in mine) for a in after]


class _InclusiveEverCounts(minimal.Members):
    """Offers ever_active_counts, counting a first activation at the instant as before it."""

    def ever_active_counts(self, *, practices: Any, before: list[datetime]) -> list[int]:
        mine = [m for m in self.rows.values() if practices is None or m.practice_id in practices]
        firsts = [m.first_activated_at for m in mine]
        return [sum(f is not None and f <= b for f in firsts) for b in before]


class _OneWayRetainedCounts(minimal.Members):
    """Offers retained_counts, answering 0 for a pair given latest first."""

    def retained_counts(self, *, practices: Any, spans: list[Any]) -> list[int]:
        mine = [m for m in self.rows.values() if practices is None or m.practice_id in practices]
        active = MembershipStatus.ACTIVE
        return [
            sum(m.status_before(a) is active and m.status_before(b) is active for m in mine)
            if a <= b
            else 0
            for a, b in spans
        ]


class _RefundBlindWindows(minimal.Payments):
    """Offers window_totals, adding every succeeded entry, refunds included, as money in."""

    def window_totals(self, *, practices: Any, windows: list[Any]) -> list[dict[str, Any]]:
        return [
            per_currency(
                p.amount
                for p in self.rows.values()
                if (practices is None or p.practice_id in practices)
                and start <= p.at < end
                and p.outcome is PaymentOutcome.SUCCEEDED
            )
            for start, end in windows
        ]


class _NoneFirstTable(minimal.Table):
    """find(order=...) puts objects whose first sort column is None first, not last."""

    def find(self, query: Any, *, order: Order | None = None) -> list[Any]:
        if order is None or not order.keys:
            return super().find(query, order=order)
        unpaged = apply_order(self.matching(query), self.kind, attrs.evolve(order, page=Page()))
        value = sort_columns[self.kind][order.keys[0].column]
        nones = [o for o in unpaged if value(o) is None]
        ordered = nones + [o for o in unpaged if o not in nones]
        start = order.page.offset
        stop = None if order.page.limit is None else start + order.page.limit
        return ordered[start:stop]


class _NoneFirstMembers(_NoneFirstTable, minimal.Members):
    pass


class _UnpaidMembers(minimal.Members):
    """Offers unpaid_charges, judging each member of the practice when asked."""

    def unpaid_charges(self, *, practice_id: str, at: datetime) -> list[tuple[Any, Any]]:
        zone = self.store.practices.get(practice_id).timezone
        found = (
            (
                m,
                unpaid_charges(
                    m,
                    at=at,
                    timezone=zone,
                    membership_plans=self.store.membership_plans.rows,
                    payments=list(self.store.payments.rows.values()),
                ),
            )
            for m in sorted(self.rows.values(), key=lambda m: m.id)
            if m.practice_id == practice_id
        )
        return [(m, c) for m, c in found if c]


class _StaleUnpaidMembers(_UnpaidMembers):
    """unpaid_charges answers right when first asked, then the same for good: the ledger
    entries added since are never seen."""

    def __init__(self, kind: type, store: minimal.MinimalStore) -> None:
        super().__init__(kind, store)
        self.kept: dict[tuple[str, datetime], list[tuple[Any, Any]]] = {}

    def unpaid_charges(self, *, practice_id: str, at: datetime) -> list[tuple[Any, Any]]:
        key = (practice_id, at)
        if key not in self.kept:
            self.kept[key] = super().unpaid_charges(practice_id=practice_id, at=at)
        return self.kept[key]


def _planted(**tables: type) -> Callable[[], minimal.MinimalStore]:
    """A MinimalStore with some repositories replaced by buggy ones."""

    def make() -> minimal.MinimalStore:
        store = minimal.MinimalStore()
        for name, table in tables.items():
            kind = getattr(store, name).kind
            setattr(store, name, table(kind, store))
        return store

    return make


#: (bug, the store that has it, the check that must catch it, the read it must name)
PLANTED = [
    ("inclusive end", _planted(payments=_InclusivePayments), "revenue", "payments."),
    ("UTC day buckets", _planted(payments=_UtcDayPayments), "revenue", "payments."),
    ("refunds ignored", _planted(payments=_RefundBlindPayments), "revenue", "payments.total"),
    ("Suspended as Active", _planted(members=_SuspendedCountsMembers), "members", "members."),
    ("None sorted first", _planted(members=_NoneFirstMembers), "columns", "members.find"),
    (
        "Active at the instant of a change",
        _planted(members=_InclusiveActiveCounts),
        "active",
        "members.active_counts",
    ),
    (
        "first activation at the instant counted before it",
        _planted(members=_InclusiveEverCounts),
        "ever",
        "members.ever_active_counts",
    ),
    (
        "retained over a pair given latest first",
        _planted(members=_OneWayRetainedCounts),
        "retained",
        "members.retained_counts",
    ),
    (
        "refunds ignored in windows",
        _planted(payments=_RefundBlindWindows),
        "windows",
        "payments.window_totals",
    ),
    (
        "unpaid charges kept stale",
        _planted(members=_StaleUnpaidMembers),
        "unpaid",
        "members.unpaid_charges",
    ),
]

CHECKS = {
    "revenue": "test_revenue_at_every_boundary",
    "members": "test_member_reads_at_every_boundary",
    "columns": "test_every_column_sorts_like_apply_order",
    "unpaid": "test_unpaid_charges",
    "active": "test_active_counts",
    "windows": "test_window_totals",
    "ever": "test_ever_active_counts",
    "retained": "test_retained_counts",
}


@pytest.mark.slow
class TestTheKitCatchesPlantedBugs:
    """Each typical host bug is reported, quickly, as a short difference."""

    @pytest.mark.parametrize(
        ("bug", "make", "check", "read"), PLANTED, ids=[f"{p[0]}-{p[2]}" for p in PLANTED]
    )
    def test_bug_is_reported_as_a_short_difference(
        self, bug: str, make: Callable[[], Any], check: str, read: str
    ) -> None:
        """The check fails with a ContractViolation naming the read, in a report of at most
        20 lines (benchmarks/contract_kit.py times each one against the 30-second target)."""
        built = []

        class Planted(contracts.StoreContract):
            # The report is short whatever the example; the kit's own 10 s shrink budget
            # is timed by benchmarks/contract_kit.py, not here.
            shrink_seconds = 1.0

            def make_store(self) -> Any:
                built.append(1)
                return make()

        with pytest.raises(contracts.ContractViolation) as caught:
            getattr(Planted(), CHECKS[check])()
        report = str(caught.value)
        assert report.startswith(read), report
        assert "query:" in report
        assert "expected:" in report
        assert "got:" in report
        assert len(report.splitlines()) <= 20, report
        assert built, bug

    def test_the_dashboard_check_names_the_first_read_that_differs(self) -> None:
        """On the demo practices, a ledger that adds refunds as money in makes the dashboard
        differ, and the report names the revenue figure and the ledger's total."""
        data = load_demo(DEMO_NOW)
        store = _planted(payments=_RefundBlindPayments)()
        contracts.load(store, data)
        reference = demo_store()
        with pytest.raises(contracts.ContractViolation) as caught:
            contracts.compare_dashboards(
                store,
                reference,
                data.objects(),
                practices="syd",
                date_range="year_to_date",
                now=DEMO_NOW,
            )
        assert str(caught.value).startswith("dashboard (revenue): payments.total differs")
        assert caught.value.expected != caught.value.got
        assert len(str(caught.value).splitlines()) <= 20

    def test_the_clean_minimal_host_passes_every_check_used_above(self) -> None:
        """Without the planted bug the same checks pass: the bug, not the check, fails."""

        class Clean(contracts.StoreContract):
            def make_store(self) -> minimal.MinimalStore:
                return minimal.MinimalStore()

        for name in CHECKS.values():
            # The minimal host offers none of the optional reads.
            optional = ("unpaid", "active", "windows", "ever", "retained")
            if name in {CHECKS[k] for k in optional}:
                with pytest.raises(pytest.skip.Exception):
                    getattr(Clean(), name)()
                continue
            getattr(Clean(), name)()

        class CleanUnpaid(contracts.StoreContract):
            def make_store(self) -> minimal.MinimalStore:
                return _planted(members=_UnpaidMembers)()

        CleanUnpaid().test_unpaid_charges()


class TestReadAnswersCompared:
    def test_a_read_only_list_is_compared_and_shown_as_the_ids_a_list_is(self) -> None:
        """A find answer of any sequence type (the reference store's ReadOnlyList, a
        host's list, tuple or other sequence) is compared and shown as its ids, so a
        report names the read that differs, not every find."""
        members = list(demo_store().members.find(MemberQuery(), order=Order("id")))[:2]
        ids = [m.id for m in members]
        for answer in (ReadOnlyList(members), members, tuple(members), UserList(members)):
            assert contracts._Call("members.find", (), answer).normalised() == ids
            assert contracts._show(answer) == "[" + ", ".join(ids) + "]"


class _OverwritingTable(minimal.Table):
    """save() replaces whatever it is given: a stale copy wins (a lost update)."""

    def save(self, obj: Any, *, expected_version: int | None = None) -> None:
        self.get(obj.id)
        self.rows[obj.id] = obj


class _VersionBlindTable(minimal.Table):
    """save() counts versions but ignores the one the caller read: the last writer wins."""

    def save(self, obj: Any, *, expected_version: int | None = None) -> None:
        super().save(obj)


class _UnversionedTable(minimal.Table):
    """A store written before versions: no version() at all."""

    def __getattribute__(self, name: str) -> Any:
        if name == "version":
            raise AttributeError(name)
        return super().__getattribute__(name)


class TestStaleCopies:
    """The kit checks that a host's save() refuses stale copies and practice moves."""

    def test_a_store_that_overwrites_is_caught(self) -> None:
        """A save() without the successor check fails the contract, naming the repository."""

        class Overwriting(contracts.StoreContract):
            shrink_seconds = 0.5  # caught or not; the smallest example is not asked for

            def make_store(self) -> minimal.MinimalStore:
                return _planted(membership_plans=_OverwritingTable)()

        with pytest.raises(contracts.ContractViolation, match=r"^membership_plans\.save"):
            Overwriting().test_save_refuses_stale_copies_and_practice_moves()


class TestVersions:
    """The kit checks that a host's save() refuses a version another write overtook."""

    @pytest.mark.parametrize(
        ("table", "message"),
        [
            (_VersionBlindTable, r"^members\.save with a stale expected_version"),
            (_UnversionedTable, r"^members\.version"),
        ],
        ids=["version-blind", "unversioned"],
    )
    def test_a_store_without_the_version_check_is_caught(
        self, table: type[minimal.Table], message: str
    ) -> None:
        """A save that ignores ``expected_version``, or a store with no ``version()``,
        fails the contract, naming the repository."""

        class Planted(contracts.StoreContract):
            shrink_seconds = 0.5  # caught or not; the smallest example is not asked for

            def make_store(self) -> minimal.MinimalStore:
                return _planted(members=table)()

        with pytest.raises(contracts.ContractViolation, match=message):
            Planted().test_save_checks_the_version_it_read()


# -- broken reference stores and the stateful comparison ----------------------------------


class _InclusiveBoundaryMembers(_Members):
    """Counts 'Active at B' including a change stamped exactly at B: the classic off-by-one."""

    def _active(self, practices: Collection[str], boundary: datetime) -> int:
        return sum(
            1
            for m in self._items.values()
            if m.practice_id in practices and m.status_at(boundary) is MembershipStatus.ACTIVE
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


def _contract_for(store: type[InMemoryStore]) -> contracts.StoreContract:
    class Against(contracts.StoreContract):
        # These tests ask whether the bug is caught, not for the smallest example
        # (TestTheKitCatchesPlantedBugs checks that): shrinking stops after half a second.
        shrink_seconds = 0.5

        def make_store(self) -> InMemoryStore:
            return store()

    return Against()


@pytest.mark.slow
class TestTheKitCatchesBrokenStores:
    """Each contract fails on a store that breaks it, with an AssertionError every time."""

    def test_inclusive_boundary_is_caught(self) -> None:
        """A store counting changes stamped exactly at the boundary fails the members contract."""
        with pytest.raises(contracts.ContractViolation, match=r"^members\.count"):
            _contract_for(BrokenStore).test_member_reads_at_every_boundary()

    def test_lost_rows_are_caught(self) -> None:
        """A store whose find loses a row fails the members contract, naming the lost member."""
        with pytest.raises(contracts.ContractViolation, match=r"^members\.find") as caught:
            _contract_for(LossyStore).test_find_and_count_agree_with_matches()
        assert caught.value.involved
        assert set(caught.value.expected) - set(caught.value.got)

    def test_stateful_comparison_catches_the_broken_store(self) -> None:
        """The stateful machine finds a difference between the broken store and the
        reference. Derandomised and without shrinking; a random run of the kit's examples
        misses the bug about once in 60 under the ``dev`` profile, and derandomising alone
        does not pin the run (Hypothesis also draws the literals of the modules imported
        so far, which differ with the tests a worker ran before), so it runs 100 examples:
        it stops at the first difference."""

        class Machine(contracts.StoreComparison):
            store_factory = staticmethod(BrokenStore)

        repeatable = settings(
            contracts.KIT_SETTINGS,
            max_examples=max(100, contracts.KIT_SETTINGS.max_examples),
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
        )
        with pytest.raises(contracts.ContractViolation, match=r"^members\.count"):
            run_state_machine_as_test(Machine, settings=repeatable)


class TestReports:
    """A ContractViolation says what differs in a few lines."""

    def test_the_message_names_read_query_expected_got_and_objects(self) -> None:
        """The message is the read, then the query, expected, got and the objects involved."""
        error = contracts.ContractViolation(
            "members.count",
            MemberQuery(practices={"p0"}, active_at=datetime(2026, 1, 2, tzinfo=UTC)),
            1,
            2,
            ["Member p0-m1; practice p0"],
        )
        assert str(error).splitlines() == [
            "members.count differs from the library's definition",
            "  query:    MemberQuery(practices={'p0'}, active_at=2026-01-02T00:00:00Z)",
            "  expected: 1",
            "  got:      2",
            "  involved:",
            "    Member p0-m1; practice p0",
        ]
        assert isinstance(error, AssertionError)

    def test_a_payment_is_described_in_one_line(self) -> None:
        """describe() gives a payment's kind, outcome, amount, instant and source."""
        from smilepass_core import Money, Payment

        payment = Payment(
            id="pay1",
            practice_id="p0",
            amount=Money.of("12.50", "AUD"),
            kind=PaymentKind.REFUND,
            outcome=PaymentOutcome.SUCCEEDED,
            at=datetime(2026, 3, 1, 13, 0, tzinfo=UTC),
            member_id="m1",
        )
        assert contracts.describe(payment) == (
            "Payment pay1; refund succeeded AUD 12.50 at 2026-03-01T13:00:00Z for member m1;"
            " practice p0"
        )
