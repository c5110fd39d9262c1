"""Repository contract kit: pytest classes a host subclasses in its own test suite.

One class covers a whole store. Subclass :class:`StoreContract` and give it a
``make_store()`` that returns a new, empty store::

    from smilepass_core.testing import contracts

    class TestMyStore(contracts.StoreContract):
        def make_store(self):
            return MySqlStore(create_engine("sqlite://"))

It checks every repository the store has against the protocol and against the
library's own definitions (every query's ``matches``, the sort order, the
sums) on Hypothesis-generated practices, compares the dashboard with
:class:`InMemoryStore`'s, and drives both stores through the same random steps
(:class:`StoreComparison`). A failure is a :class:`ContractViolation`: the read,
the query, what was expected and what the store gave, and the few objects
involved, never the whole generated dataset.

A host that implements only some repositories subclasses the per-repository
contracts it needs (``MemberRepositoryContract``, ...) and defines a
``store_factory`` fixture (a callable returning a new, empty store), or names
them in ``StoreContract.repositories``. :func:`load` fills only the
repositories a store has; the dashboard check reads the missing ones from an
:class:`InMemoryStore` holding the same data.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, Final

import attrs
import pytest
from hypothesis import HealthCheck, Phase, given, reporting, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from smilepass_core.domain import (
    MEMBERSHIP_LIFECYCLE,
    BillingCycle,
    Campaign,
    Member,
    MembershipPlan,
    MembershipStatus,
    Patient,
    Payment,
    PaymentKind,
    PaymentOutcome,
    PaymentPlan,
    PaymentPlanTemplate,
    PaymentType,
    Practice,
    Referral,
    StaffUser,
    offer_from_template,
)
from smilepass_core.domain.discounts import Discount, DiscountBasis
from smilepass_core.domain.overdue import unpaid_charges
from smilepass_core.errors import (
    DuplicateId,
    NotFound,
    RuleViolation,
    SmilepassError,
    VersionConflict,
)
from smilepass_core.kpi import dashboard
from smilepass_core.memory import InMemoryStore
from smilepass_core.money import Money, per_currency
from smilepass_core.periods import DateRange, Preset
from smilepass_core.queries import (
    MemberQuery,
    Order,
    Page,
    PaymentPlanQuery,
    PaymentQuery,
    ReferralQuery,
    ScopeQuery,
    SortKey,
    apply_order,
    sort_columns,
)
from smilepass_core.repositories import STORE_TYPES
from smilepass_core.testing import strategies as sps

__all__ = [
    "KIT_SETTINGS",
    "SHRINK_SECONDS",
    "CampaignRepositoryContract",
    "ContractViolation",
    "MemberRepositoryContract",
    "MembershipPlanRepositoryContract",
    "PaymentPlanRepositoryContract",
    "PaymentPlanTemplateRepositoryContract",
    "PaymentRepositoryContract",
    "PracticeRepositoryContract",
    "ReferralRepositoryContract",
    "StaffUserRepositoryContract",
    "StoreComparison",
    "StoreContract",
    "compare_dashboards",
    "describe",
    "load",
]

StoreFactory = Callable[[], Any]

#: The kit's Hypothesis settings. Each example is a whole practice, so a test tries a
#: fifth of the active profile's ``max_examples`` (at least 10: 20 under Hypothesis' default,
#: 10 under this repository's ``dev`` profile, 40 under ``ci``). One bug is reported, not
#: every distinct one (``report_multiple_bugs``), and of the profile's phases the
#: ``explain`` phase, which re-runs the failing example many times to annotate it, is left
#: out: a :class:`ContractViolation` already names what differs.
#: Made from the profile loaded when this module is first imported.
KIT_SETTINGS = settings(
    max_examples=max(10, settings().max_examples // 5),
    deadline=None,
    report_multiple_bugs=False,
    phases=[phase for phase in settings().phases if phase is not Phase.explain],
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.differing_executors,
        HealthCheck.too_slow,
    ],
)

#: Seconds the kit lets Hypothesis shrink a failing example (its own limit is five
#: minutes). A contract class may raise it (``shrink_seconds``) for a smaller example.
SHRINK_SECONDS = 10.0

#: How many differing objects a :class:`ContractViolation` lists.
_SHOWN = 5

#: At most this many queries are tried per repository on each generated dataset (a query
#: costs far less than generating and loading the dataset it reads); drawn as a list, so
#: that shrinking deletes the ones that pass.
_QUERIES = 8


class ContractViolation(AssertionError):
    """A store's answer differs from the library's definition.

    Attributes:
        read: What was read, e.g. ``"members.count"`` or ``"dashboard: members"``.
        query: The query (or other argument) it was read with.
        expected: The library's answer.
        got: The store's answer.
        involved: Short descriptions of the objects that explain the difference.
    """

    def __init__(
        self, read: str, query: Any, expected: Any, got: Any, involved: Sequence[str] = ()
    ) -> None:
        self.read = read
        self.query = query
        self.expected = expected
        self.got = got
        self.involved = tuple(involved)
        lines = [
            f"{read} differs from the library's definition",
            f"  query:    {_show(query)}",
            f"  expected: {_show(expected)}",
            f"  got:      {_show(got)}",
        ]
        if self.involved:
            lines.append("  involved:")
            lines += [f"    {line}" for line in self.involved]
        super().__init__("\n".join(lines))


# -- a bounded shrink ---------------------------------------------------------------------


_SLOW_SHRINK_WARNING = "WARNING: Hypothesis has spent more than five minutes"


@contextlib.contextmanager
def _shrink_budget(seconds: float) -> Iterator[None]:
    """Let Hypothesis shrink a failing example for at most ``seconds``.

    Hypothesis has no setting for this; its engine reads a module constant at the start
    of each shrink, which is set here for the duration of one kit test (and left alone
    if a future Hypothesis no longer has it). Its warning about the limit is replaced by
    one that names the kit's budget.
    """
    from hypothesis.internal.conjecture import engine

    if getattr(engine, "MAX_SHRINKING_SECONDS", None) is None:
        yield
        return
    outer = reporting.current_reporter()

    def report(value: object) -> None:
        if str(value).startswith(_SLOW_SHRINK_WARNING):
            value = (
                f"Shrinking stopped after the contract kit's {seconds:g} s budget: the example"
                " is smaller than the one first found, but may not be the smallest"
                " (raise the contract's shrink_seconds for a smaller one)."
            )
        outer(value)

    with _BUDGET_LOCK:  # kit tests in several threads: the smallest budget of those running
        if not _RUNNING:
            _SAVED[:] = [engine.MAX_SHRINKING_SECONDS]
        _RUNNING.append(seconds)
        limit: Any = min(_RUNNING)
        engine.MAX_SHRINKING_SECONDS = limit
    try:
        with reporting.with_reporter(report):
            yield
    finally:
        with _BUDGET_LOCK:
            _RUNNING.remove(seconds)
            limit = min(_RUNNING) if _RUNNING else _SAVED[0]
            engine.MAX_SHRINKING_SECONDS = limit


#: The budgets of the kit tests running now (in any thread), and Hypothesis' own limit,
#: put back when the last of them ends.
_RUNNING: list[float] = []
_SAVED: list[Any] = []
_BUDGET_LOCK = threading.Lock()


def _budgeted(test: Callable[..., None]) -> Callable[..., None]:
    """Run a kit test with shrinking bounded by the contract's ``shrink_seconds``."""

    @functools.wraps(test)
    def run(self: _Contract, *args: Any, **kwargs: Any) -> None:
        with _shrink_budget(self.shrink_seconds):
            test(self, *args, **kwargs)

    return run


# -- short descriptions -------------------------------------------------------------------


def _instant(value: datetime) -> str:
    text = value.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


def _listed(value: Any) -> bool:
    """Whether ``value`` is a sequence of items (a list, a tuple, a store's own
    sequence type such as ``ReadOnlyList``), not text."""
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _show(value: Any) -> str:
    """A short, readable form of a query, an answer or a value."""
    if isinstance(value, datetime):
        return _instant(value)
    if isinstance(value, Money):
        return str(value)
    if isinstance(value, frozenset | set):
        return "{" + ", ".join(sorted(_show(v) for v in value)) + "}"
    if _listed(value):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    if hasattr(value, "value") and hasattr(type(value), "__members__"):  # an enum
        return str(value.value)
    if attrs.has(type(value)) and hasattr(value, "id"):
        return str(value.id)
    if attrs.has(type(value)):
        fields = [
            f"{f.name}={_show(getattr(value, f.name))}"
            for f in attrs.fields(type(value))
            if getattr(value, f.name) != f.default
        ]
        return f"{type(value).__name__}({', '.join(fields)})"
    return repr(value)


def describe(obj: Any) -> str:
    """One line naming ``obj`` and what the contract's figures read from it."""
    parts = [f"{type(obj).__name__} {obj.id}"]
    if isinstance(obj, Payment):
        parts.append(
            f"{obj.kind.value} {obj.outcome.value} {obj.amount} at {_instant(obj.at)}"
            f" for {obj.source[0]} {obj.source[1]}"
        )
    elif isinstance(obj, Practice):
        parts.append(f"{obj.timezone} {obj.currency}")
    if hasattr(obj, "practice_id"):
        parts.append(f"practice {obj.practice_id}")
    if isinstance(obj, PaymentPlan):
        parts.append(f"total {obj.total}, {obj.payment_type.value}")
        if obj.attempts:
            parts.append(
                "attempts "
                + ", ".join(
                    f"{a.amount} {'paid' if a.succeeded else 'failed'} {_instant(a.at)}"
                    for a in obj.attempts
                )
            )
    holder = getattr(obj, "account_holder", None) or getattr(obj, "patient", None)
    if holder is not None:
        parts.append(repr(holder.name))
    history = getattr(obj, "history", None)
    if history:
        parts.append("history " + ", ".join(f"{c.to.value} {_instant(c.at)}" for c in history))
    return "; ".join(parts)


def _describe_ids(ids: Iterable[str], by_id: Mapping[str, Any]) -> list[str]:
    wanted = sorted(set(ids))
    shown = [describe(by_id[i]) if i in by_id else f"{i} (not in the dataset)" for i in wanted]
    if len(shown) > _SHOWN:
        return [*shown[:_SHOWN], f"... and {len(shown) - _SHOWN} more"]
    return shown


# -- what the kit knows of each repository -------------------------------------------------


def _timezones(dataset: sps.Dataset) -> dict[str, str]:
    return {p.id: p.timezone for p in dataset.practices}


@attrs.frozen
class _Repository:
    """One repository: its name in the store, the type it holds, its queries and answers."""

    name: str
    kind: type
    everything: Callable[[], Any]
    append_only: bool = False

    def objects(self, dataset: sps.Dataset) -> tuple[Any, ...]:
        return tuple(getattr(dataset, self.name))

    def queries(self, dataset: sps.Dataset) -> st.SearchStrategy[Any]:
        """Queries to try on ``dataset``."""
        return sps.scope_queries(dataset, self.objects(dataset))

    def expected(self, dataset: sps.Dataset, query: Any) -> list[Any]:
        """The brute-force answer: every object of the dataset for which ``matches`` holds."""
        return [o for o in self.objects(dataset) if query.matches(o)]

    def changed(self, obj: Any) -> Any:
        """A different version of ``obj`` with the same id (for ``save``)."""
        return attrs.evolve(obj, name=obj.name + " (renamed)")


class _Members(_Repository):
    def queries(self, dataset: sps.Dataset) -> st.SearchStrategy[Any]:
        return sps.member_queries(dataset)

    def expected(self, dataset: sps.Dataset, query: Any) -> list[Any]:
        zones = _timezones(dataset)
        catalogue = {p.id: p for p in dataset.membership_plans}
        return [
            m
            for m in dataset.members
            if query.matches(
                m,
                plans=[p for p in dataset.payment_plans if p.member_id == m.id],
                timezone=zones[m.practice_id],
                payments=[p for p in dataset.payments if p.member_id == m.id],
                membership_plans=catalogue,
            )
        ]

    def changed(self, obj: Any) -> Any:
        """The member with its account holder renamed (a dependent added could clash with
        its dependent changes)."""
        holder = obj.account_holder
        return attrs.evolve(obj, account_holder=attrs.evolve(holder, name=f"{holder.name} II"))


class _PaymentPlans(_Repository):
    def queries(self, dataset: sps.Dataset) -> st.SearchStrategy[Any]:
        return sps.payment_plan_queries(dataset)

    def expected(self, dataset: sps.Dataset, query: Any) -> list[Any]:
        zones = _timezones(dataset)
        return [p for p in dataset.payment_plans if query.matches(p, timezone=zones[p.practice_id])]

    def changed(self, obj: Any) -> Any:
        return attrs.evolve(obj, patient=attrs.evolve(obj.patient, name="Renamed Patient"))


class _Payments(_Repository):
    def queries(self, dataset: sps.Dataset) -> st.SearchStrategy[Any]:
        return sps.payment_queries(dataset)

    def changed(self, obj: Any) -> Any:
        return attrs.evolve(obj, amount=obj.amount + Money.from_minor(1, obj.amount.currency))


class _Referrals(_Repository):
    def queries(self, dataset: sps.Dataset) -> st.SearchStrategy[Any]:
        return sps.referral_queries(dataset)

    def changed(self, obj: Any) -> Any:
        return attrs.evolve(obj, dependents=(*obj.dependents, obj.account_holder))


_REPOSITORIES: dict[str, _Repository] = {
    "practices": _Repository("practices", Practice, ScopeQuery),
    "staff_users": _Repository("staff_users", StaffUser, ScopeQuery),
    "membership_plans": _Repository("membership_plans", MembershipPlan, ScopeQuery),
    "campaigns": _Repository("campaigns", Campaign, ScopeQuery),
    "payment_plan_templates": _Repository(
        "payment_plan_templates", PaymentPlanTemplate, ScopeQuery
    ),
    "members": _Members("members", Member, MemberQuery),
    "payment_plans": _PaymentPlans("payment_plans", PaymentPlan, PaymentPlanQuery),
    "referrals": _Referrals("referrals", Referral, ReferralQuery),
    "payments": _Payments("payments", Payment, PaymentQuery, append_only=True),
}
assert list(_REPOSITORIES) == list(STORE_TYPES)


def load(store: Any, dataset: sps.Dataset) -> None:
    """Add every object of ``dataset`` to ``store``, repository by repository, in order.

    A repository the store does not have is left out.
    """
    for name in STORE_TYPES:
        repository = getattr(store, name, None)
        if repository is None:
            continue
        for obj in getattr(dataset, name):
            repository.add(obj)


#: What the Overdue filter of a member query reads besides the member.
_OVERDUE_READS = ("membership_plans", "payments")


def _judged(queries: st.SearchStrategy[Any], name: str, holds: Any) -> st.SearchStrategy[Any]:
    """``queries`` of repository ``name``; member queries without the Overdue filter when
    a store does not hold what it reads (``holds(repository)`` is false for one of
    :data:`_OVERDUE_READS`: a host with members but no ledger cannot judge it)."""
    if name != "members" or all(holds(n) for n in _OVERDUE_READS):
        return queries
    return queries.map(lambda q: attrs.evolve(q, overdue=None, as_of=None, grace_days=0))


def _nonzero(totals: Any) -> dict[str, Money]:
    """Totals without zero entries: a store may report a zero or leave the currency out."""
    return {c: m for c, m in dict(totals).items() if not m.is_zero()}


# -- the checks, shared by every contract -------------------------------------------------


def _version(repo: Any, spec: _Repository, id: str, when: str, expected: int) -> int:
    """``repo.version(id)``, which must be ``expected``."""
    version = getattr(repo, "version", None)
    if version is None:
        raise ContractViolation(f"{spec.name}.version", id, "a version() method", "none", [])
    got = version(id)
    if got != expected:
        raise ContractViolation(f"{spec.name}.version {when}", id, expected, got, [])
    return int(got)


def _check_get(repo: Any, spec: _Repository, obj: Any, when: str) -> None:
    """get(obj.id) is exactly ``obj``."""
    got = repo.get(obj.id)
    if got != obj:
        raise ContractViolation(f"{spec.name}.get {when}", obj.id, obj, got, [describe(obj)])


def _check_find(repo: Any, spec: _Repository, dataset: sps.Dataset, query: Any) -> None:
    """find() gives exactly the matching objects, by id; count() is their number."""
    by_id = {o.id: o for o in spec.objects(dataset)}
    expected = sorted(o.id for o in spec.expected(dataset, query))
    got = [o.id for o in repo.find(query)]
    if got != expected:
        differing = set(expected) ^ set(got) or set(expected)
        raise ContractViolation(
            f"{spec.name}.find", query, expected, got, _describe_ids(differing, by_id)
        )
    count = repo.count(query)
    if count != len(expected):
        raise ContractViolation(
            f"{spec.name}.count", query, len(expected), count, _describe_ids(expected, by_id)
        )


def _check_order(
    repo: Any, spec: _Repository, dataset: sps.Dataset, query: Any, order: Any
) -> None:
    """find(order=...) sorts by the named columns (ties by id), then pages."""
    expected = [o.id for o in apply_order(spec.expected(dataset, query), spec.kind, order)]
    got = [o.id for o in repo.find(query, order=order)]
    if got != expected:
        by_id = {o.id: o for o in spec.objects(dataset)}
        first = next(
            (k for k, (a, b) in enumerate(zip(expected, got, strict=False)) if a != b),
            min(len(expected), len(got)),
        )
        at = [i for i in (expected[first : first + 1] + got[first : first + 1]) if i]
        columns = sort_columns.get(spec.kind, {"id": lambda o: o.id})
        values = [
            f"{i}: "
            + ", ".join(f"{k.column}={_show(columns[k.column](by_id[i]))}" for k in order.keys)
            for i in dict.fromkeys(at)
            if i in by_id
        ]
        raise ContractViolation(
            f"{spec.name}.find (ordered; first difference at position {first})",
            (query, order),
            expected,
            got,
            values + _describe_ids(at, by_id),
        )


def _check_total(repo: Any, spec: _Repository, dataset: sps.Dataset, query: Any) -> None:
    """total() is the exact per-currency sum of what each matching object contributes."""
    matches = spec.expected(dataset, query)
    if spec.kind is Payment:
        expected = _nonzero(per_currency(p.signed for p in matches))
    else:
        expected = _nonzero(per_currency(p.total for p in matches))
    got = _nonzero(repo.total(query))
    if got != expected:
        by_id = {o.id: o for o in matches}
        raise ContractViolation(
            f"{spec.name}.total", query, expected, got, _describe_ids(by_id, by_id)
        )


# -- the contracts ------------------------------------------------------------------------


class _Contract:
    """The checks every repository must pass; subclasses say which repositories and store."""

    repositories: ClassVar[tuple[str, ...]] = ()
    shrink_seconds: ClassVar[float] = SHRINK_SECONDS

    def make_store(self) -> Any:
        """A new, empty store."""
        raise NotImplementedError

    def _present(self, store: Any) -> list[tuple[Any, _Repository]]:
        """The repositories under test, with the kit's knowledge of each; a repository the
        contract names but the store lacks is a failure (see :func:`_repository`)."""
        return [(_repository(store, name), _REPOSITORIES[name]) for name in self.repositories]

    def _needs(self, store: Any, name: str) -> Any:
        """``store``'s repository ``name``; skips the test, saying why, when the contract
        does not cover that repository."""
        if name not in self.repositories:
            pytest.skip(f"{name!r} is not among this contract's repositories")
        return _repository(store, name)

    def _loaded(self, dataset: sps.Dataset) -> Any:
        store = self.make_store()
        load(store, dataset)
        return store

    @_budgeted
    @KIT_SETTINGS
    @given(dataset=sps.datasets())
    def test_get_returns_each_added_object(self, dataset: sps.Dataset) -> None:
        """get(id) returns exactly the object that was added under that id."""
        for repo, spec in self._present(self._loaded(dataset)):
            for obj in spec.objects(dataset):
                _check_get(repo, spec, obj, "after add")

    @_budgeted
    @KIT_SETTINGS
    @given(dataset=sps.datasets(), stranger=sps.ids("no-such"))
    def test_get_unknown_id_raises_not_found(self, dataset: sps.Dataset, stranger: str) -> None:
        """get() of an id never added raises NotFound carrying the id."""
        for repo, spec in self._present(self._loaded(dataset)):
            with pytest.raises(NotFound) as caught:
                repo.get(stranger)
            if caught.value.id != stranger:
                raise ContractViolation(
                    f"{spec.name}.get: NotFound.id", stranger, stranger, caught.value.id
                )

    @_budgeted
    @KIT_SETTINGS
    @given(dataset=sps.datasets())
    def test_add_of_a_taken_id_raises_duplicate_id(self, dataset: sps.Dataset) -> None:
        """add() of a different object under an existing id raises DuplicateId and keeps the old."""
        for repo, spec in self._present(self._loaded(dataset)):
            for obj in spec.objects(dataset)[:3]:
                with pytest.raises(DuplicateId):
                    repo.add(spec.changed(obj))
                _check_get(repo, spec, obj, "after a refused add")

    @_budgeted
    @KIT_SETTINGS
    @given(dataset=sps.datasets())
    def test_save_replaces_and_unknown_save_raises(self, dataset: sps.Dataset) -> None:
        """save() replaces the object with the same id; save() of an unknown id raises NotFound."""
        present = [(r, s) for r, s in self._present(self._loaded(dataset)) if not s.append_only]
        if not present:
            pytest.skip("the ledger is append-only: it has no save()")
        for repo, spec in present:
            objects = spec.objects(dataset)
            for obj in objects[:3]:
                new = spec.changed(obj)
                repo.save(new)
                _check_get(repo, spec, new, "after save")
            if objects:
                with pytest.raises(NotFound):
                    repo.save(attrs.evolve(objects[0], id="never-added"))

    @_budgeted
    @KIT_SETTINGS
    @given(dataset=sps.datasets())
    def test_save_refuses_stale_copies_and_practice_moves(self, dataset: sps.Dataset) -> None:
        """save() of a copy whose history (or a member's plan changes or discounts) does not
        extend the kept one (read before another write, or saved back after a later move) raises
        RuleViolation and keeps the object; so does save() into another practice."""
        for repo, spec in self._present(self._loaded(dataset)):
            if spec.append_only or spec.kind is Practice:
                continue
            for obj in spec.objects(dataset)[:3]:
                history = getattr(obj, "history", ())
                # (a member's discounts, a campaign's discount, are its practice's: the
                # moved copy has none)
                moved: dict[str, Any] = {"discounts": ()} if getattr(obj, "discounts", ()) else {}
                if getattr(obj, "discount", None) is not None:
                    moved["discount"] = None
                refused = [attrs.evolve(obj, practice_id=f"{obj.practice_id}-elsewhere", **moved)]
                # (a campaign's window-made history follows its window: no older copy)
                if len(history) >= 2 and getattr(obj, "has_own_history", True):
                    with contextlib.suppress(SmilepassError):  # an older copy that can be
                        refused.append(attrs.evolve(obj, history=history[:-1]))  # built
                moves = getattr(obj, "plan_changes", ())
                if moves:  # a copy read before the latest plan change
                    refused.append(
                        attrs.evolve(obj, plan_id=moves[-1].from_plan, plan_changes=moves[:-1])
                    )
                grants = getattr(obj, "discounts", ())
                if grants:  # a copy read before the latest discount was granted
                    refused.append(attrs.evolve(obj, discounts=grants[:-1]))
                kin = getattr(obj, "dependent_changes", ())
                if kin:  # a copy read before the latest dependent change
                    last = kin[-1]
                    before = (
                        tuple(d for d in obj.dependents if d.id != last.patient.id)
                        if last.added
                        else (*obj.dependents, last.patient)
                    )
                    refused.append(attrs.evolve(obj, dependents=before, dependent_changes=kin[:-1]))
                rewards = getattr(obj, "referral_rewards", ())
                if rewards:  # a copy read before the latest referral reward
                    refused.append(attrs.evolve(obj, referral_rewards=rewards[:-1]))
                for copy in refused:
                    try:
                        repo.save(copy)
                    except RuleViolation:
                        pass
                    else:
                        raise ContractViolation(
                            f"{spec.name}.save of a stale copy or a practice move",
                            copy.id,
                            "RuleViolation",
                            "saved",
                            [describe(obj), describe(copy)],
                        )
                    _check_get(repo, spec, obj, "after a refused save")

    @_budgeted
    @KIT_SETTINGS
    @given(dataset=sps.datasets())
    def test_a_membership_plan_save_keeps_its_prices(self, dataset: sps.Dataset) -> None:
        """save() of a membership plan whose price changed without ``reprice``, or that
        drops an earlier price, raises RuleViolation ``price_rewritten`` and keeps the plan;
        a plan repriced from a later date is saved with every earlier price."""
        store = self._loaded(dataset)
        repo = self._needs(store, "membership_plans")
        spec = _REPOSITORIES["membership_plans"]
        for plan in dataset.membership_plans[:3]:
            dearer = plan.price + Money.from_minor(1, plan.price.currency)
            refused = [attrs.evolve(plan, price=dearer)]
            if plan.earlier_prices:
                refused.append(attrs.evolve(plan, earlier_prices=plan.earlier_prices[:-1]))
            for copy in refused:
                try:
                    repo.save(copy)
                except RuleViolation as error:
                    if error.rule != "price_rewritten":
                        raise
                else:
                    raise ContractViolation(
                        "membership_plans.save of a rewritten price",
                        copy.id,
                        "RuleViolation price_rewritten",
                        "saved",
                        [describe(plan), describe(copy)],
                    )
                _check_get(repo, spec, plan, "after a refused save")
            # From a date after the last repricing and after every charge of the
            # dataset (a reprice back over charged dates is refused: reprice_backdated).
            last = plan.earlier_prices[-1].until if plan.earlier_prices else None
            on = date(2031, 1, 1) if last is None else max(date(2031, 1, 1), last + timedelta(1))
            repriced = plan.reprice(dearer, on=on)
            repo.save(repriced)
            _check_get(repo, spec, repriced, "after a save of a repriced plan")

    @_budgeted
    @KIT_SETTINGS
    @given(dataset=sps.datasets())
    def test_save_checks_the_version_it_read(self, dataset: sps.Dataset) -> None:
        """Every kept object has a version: 1 after add, one more per save. A save that
        states the version it read fails with VersionConflict once another write came
        first, and the other write is kept (no lost update, whatever field changed)."""
        for repo, spec in self._present(self._loaded(dataset)):
            if spec.append_only:
                continue
            for obj in spec.objects(dataset)[:3]:
                read = _version(repo, spec, obj.id, "after add", 1)
                repo.save(obj, expected_version=read)  # the first writer, unchanged object
                _version(repo, spec, obj.id, "after a save", read + 1)
                try:
                    repo.save(obj, expected_version=read)  # the second writer read `read` too
                except VersionConflict as conflict:
                    if (conflict.expected, conflict.actual) != (read, read + 1):
                        raise ContractViolation(
                            f"{spec.name}.save VersionConflict",
                            obj.id,
                            f"expected={read}, actual={read + 1}",
                            f"expected={conflict.expected}, actual={conflict.actual}",
                            [describe(obj)],
                        ) from None
                else:
                    raise ContractViolation(
                        f"{spec.name}.save with a stale expected_version",
                        obj.id,
                        "VersionConflict",
                        "saved",
                        [describe(obj)],
                    )
                _version(repo, spec, obj.id, "after a refused save", read + 1)
                _check_get(repo, spec, obj, "after a refused save")

    @_budgeted
    @KIT_SETTINGS
    @given(data=st.data(), dataset=sps.datasets())
    def test_find_and_count_agree_with_matches(
        self, data: st.DataObject, dataset: sps.Dataset
    ) -> None:
        """find() returns exactly the objects whose query.matches() holds, ordered by id;
        count() is their number."""
        store = self._loaded(dataset)
        for repo, spec in self._present(store):
            drawn = _judged(spec.queries(dataset), spec.name, functools.partial(hasattr, store))
            queries = st.lists(drawn, min_size=1, max_size=_QUERIES)
            for query in data.draw(queries, label=f"{spec.name} queries"):
                _check_find(repo, spec, dataset, query)

    @_budgeted
    @KIT_SETTINGS
    @given(data=st.data(), dataset=sps.datasets())
    def test_find_sorts_and_pages_like_apply_order(
        self, data: st.DataObject, dataset: sps.Dataset
    ) -> None:
        """find(order=...) sorts by the named columns (ties by id) and then pages."""
        store = self._loaded(dataset)
        for repo, spec in self._present(store):
            drawn = _judged(spec.queries(dataset), spec.name, functools.partial(hasattr, store))
            query = data.draw(drawn, label=f"{spec.name} query")
            columns = sort_columns.get(spec.kind, {"id": None})
            order = data.draw(sps.orders(columns), label=f"{spec.name} order")
            _check_order(repo, spec, dataset, query, order)

    @_budgeted
    @KIT_SETTINGS
    @given(dataset=sps.datasets())
    def test_every_column_sorts_like_apply_order(self, dataset: sps.Dataset) -> None:
        """find(order=...) of everything, by each sortable column up and down, is
        apply_order's order: ``None`` last either way, ties by id."""
        for repo, spec in self._present(self._loaded(dataset)):
            for column in sort_columns.get(spec.kind, {"id": None}):
                for descending in (False, True):
                    order = Order([SortKey(column, descending)])
                    _check_order(repo, spec, dataset, spec.everything(), order)


class _MemberChecks(_Contract):
    """What only ``members`` must do: the latest-activated feed."""

    @_budgeted
    @KIT_SETTINGS
    @given(data=st.data(), dataset=sps.datasets())
    def test_latest_activated_feed(self, data: st.DataObject, dataset: sps.Dataset) -> None:
        """find ordered by -first_activated_at with a limit gives the newest activations first."""
        repo = self._needs(self._loaded(dataset), "members")
        boundary = data.draw(sps.boundaries(dataset), label="before")
        limit = data.draw(st.integers(0, 6), label="limit")
        order = Order(["-first_activated_at"], page=Page(limit=limit))
        _check_order(
            repo, _REPOSITORIES["members"], dataset, MemberQuery(ever_active_before=boundary), order
        )

    @_budgeted
    @KIT_SETTINGS
    @given(dataset=sps.datasets())
    def test_member_reads_at_every_boundary(self, dataset: sps.Dataset) -> None:
        """Active at, retained and ever Active before each instant a member changed, exactly
        on it and a second later, per practice: the KPI reads at their boundaries."""
        repo = self._needs(self._loaded(dataset), "members")
        spec = _REPOSITORIES["members"]
        previous: dict[str, datetime] = {}
        for practice, at in _event_instants(dataset, members=True):
            for instant in (at, at + timedelta(seconds=1)):
                before = previous.get(practice, instant)
                for query in (
                    MemberQuery(practices={practice}, active_at=instant),
                    MemberQuery(practices={practice}, ever_active_before=instant),
                    MemberQuery(practices={practice}, active_at=before, retained_until=instant),
                ):
                    _check_find(repo, spec, dataset, query)
            previous[practice] = at

    @_budgeted
    @KIT_SETTINGS
    @given(data=st.data(), dataset=sps.datasets())
    def test_first_activated_counts(self, data: st.DataObject, dataset: sps.Dataset) -> None:
        """The optional batched New Members read, when offered: one count per two
        consecutive edges, equal to ``count(first_activated_in=[a, b))`` for each."""
        repo = self._needs(self._loaded(dataset), "members")
        read = _batched(repo, "first_activated_counts")
        edges = sorted(data.draw(st.lists(sps.boundaries(dataset), max_size=6), label="edges"))
        for practice in [None, *(frozenset({p.id}) for p in dataset.practices)]:
            got = read(practices=practice, edges=edges)
            expected = [
                len(
                    _REPOSITORIES["members"].expected(
                        dataset,
                        MemberQuery(practices=practice, first_activated_in=DateRange(a, b, "UTC")),
                    )
                )
                for a, b in itertools.pairwise(edges)
            ]
            if list(got) != expected:
                raise ContractViolation(
                    "members.first_activated_counts", (practice, edges), expected, got, []
                )

    @_budgeted
    @KIT_SETTINGS
    @given(data=st.data(), dataset=sps.datasets())
    def test_active_counts(self, data: st.DataObject, dataset: sps.Dataset) -> None:
        """The optional batched read of Active members at several instants, when offered:
        one count per instant, in the order given, equal to ``count(active_at=a)``."""
        self._check_per_value(data, dataset, "members.active_counts", "at", _instants, _active_at)

    @_budgeted
    @KIT_SETTINGS
    @given(data=st.data(), dataset=sps.datasets())
    def test_ever_active_counts(self, data: st.DataObject, dataset: sps.Dataset) -> None:
        """The optional batched read of members ever Active before several instants, when
        offered: one count per instant, equal to ``count(ever_active_before=b)``."""
        self._check_per_value(
            data, dataset, "members.ever_active_counts", "before", _instants, _ever_active
        )

    @_budgeted
    @KIT_SETTINGS
    @given(data=st.data(), dataset=sps.datasets())
    def test_retained_counts(self, data: st.DataObject, dataset: sps.Dataset) -> None:
        """The optional batched retained read, when offered: one count per ``(a, b)`` pair
        (either way round), equal to ``count(active_at=a, retained_until=b)``."""
        self._check_per_value(data, dataset, "members.retained_counts", "spans", _pairs, _retained)

    @_budgeted
    @KIT_SETTINGS
    @given(data=st.data(), dataset=sps.datasets())
    def test_window_totals(self, data: st.DataObject, dataset: sps.Dataset) -> None:
        """The optional batched revenue read, when offered: per ``[start, end)`` window,
        the exact signed sum per currency, equal to ``total(time_range=[start, end))``."""
        self._check_per_value(
            data, dataset, "payments.window_totals", "windows", _windows, _in_window
        )

    def _check_per_value(
        self,
        data: st.DataObject,
        dataset: sps.Dataset,
        name: str,
        keyword: str,
        values: Callable[[list[datetime]], list[Any]],
        query: Callable[[frozenset[str] | None, Any], Any],
    ) -> None:
        """The optional read ``name`` (``repository.method``) of the loaded ``dataset``,
        asked with ``keyword=values(instants drawn)``, for every practice and for all:
        one answer per value, each what the library's definition answers for
        ``query(practices, value)`` (a count of members, or a payments total)."""
        repository, method = name.split(".")
        read = _batched(self._needs(self._loaded(dataset), repository), method)
        # Instants drawn anywhere, then every status change and payment (where "strictly
        # before" matters), in time order and back again (pairs either way round).
        events = sorted({at for _, at in _event_instants(dataset, members=True, payments=True)})
        drawn = data.draw(st.lists(sps.boundaries(dataset), max_size=6), label="instants")
        asked = values([*drawn, *events, *reversed(events)])
        spec = _REPOSITORIES[repository]
        ids = [p.id for p in dataset.practices]
        # Every practice, each alone, all of them named, and one the store does not hold.
        scopes = [None, *(frozenset({i}) for i in ids), frozenset(ids), frozenset({"kit-none"})]
        for practices in scopes:
            got: list[Any] = list(read(practices=practices, **{keyword: asked}))
            expected: list[Any] = []
            for value in asked:
                matches = spec.expected(dataset, query(practices, value))
                if spec.kind is Payment:
                    expected.append(_nonzero(per_currency(p.signed for p in matches)))
                else:
                    expected.append(len(matches))
            if spec.kind is Payment:
                got = [_nonzero(t) for t in got]
            if got != expected:
                raise ContractViolation(name, (practices, asked), expected, got, [])

    @_budgeted
    @KIT_SETTINGS
    @given(data=st.data(), dataset=sps.datasets())
    def test_unpaid_charges(self, data: st.DataObject, dataset: sps.Dataset) -> None:
        """The optional ``members.unpaid_charges`` (``UnpaidChargesReader``), when offered:
        read once the dataset is loaded but for a few held-back ledger entries (members'
        latest first, each source's entries in order), again after each of them is added
        and once more after a member is cancelled just after every event (a store that
        keeps what it read must see every write), at an instant after that, at one among
        the events and at each held-back entry's. Each
        practice's answer is ``None`` or, by member id, the members as kept with unpaid
        membership charges and those charges, as ``domain.overdue.unpaid_charges`` lists
        them."""
        store = self.make_store()
        read = _batched(self._needs(store, "members"), "unpaid_charges")
        ledger = self._needs(store, "payments")
        most = min(4, len(dataset.payments))
        held = data.draw(st.integers(min(1, most), most), label="held back")
        payments = _held_back_last(dataset.payments, held)
        first = len(payments) - held
        load(store, attrs.evolve(dataset, payments=payments[:first]))
        last = max(
            [
                *(m.last_changed_at for m in dataset.members),
                *(p.at for p in dataset.payments),
                *(c.at for p in dataset.payment_plans for c in p.history),
                *(a.at for p in dataset.payment_plans for a in p.attempts),
            ],
            default=sps.DATASET_START,
        )
        # A member is cancelled just after every event (not at the latest: a plan offered
        # then to members only must find its holder still Active), and read after that.
        cancelled_at = last + timedelta(microseconds=1)
        later = data.draw(st.integers(0, 400 * 86400), label="seconds after every event")
        instants = (
            cancelled_at + timedelta(seconds=later),
            data.draw(sps.boundaries(dataset)),
            *sorted({p.at for p in payments[first:]}),
        )
        catalogue = {p.id: p for p in dataset.membership_plans}
        members = sorted(dataset.members, key=lambda m: m.id)
        open_ = [m for m in members if m.status is not MembershipStatus.CANCELLED]
        entries: Sequence[Payment] = payments[:first]
        for step in ["loaded", *payments[first:], "cancelled"]:
            if isinstance(step, Payment):
                ledger.add(step)
                entries = payments[: len(entries) + 1]
            if step != "cancelled":
                write = f"{len(entries)} of {len(payments)} ledger entries"
            elif open_:
                gone = data.draw(st.sampled_from(open_), label="cancelled after every event")
                cancelled = gone.cancel(at=cancelled_at)
                self._needs(store, "members").save(cancelled)
                members = [cancelled if m.id == gone.id else m for m in members]
                write = f"{gone.id} cancelled at {cancelled_at.isoformat()}"
            else:
                break
            for at, practice in itertools.product(instants, dataset.practices):
                got = read(practice_id=practice.id, at=at)
                if got is None:
                    continue
                expected = [
                    (m, found)
                    for m in members
                    if m.practice_id == practice.id
                    and (
                        found := unpaid_charges(
                            m,
                            at=at,
                            timezone=practice.timezone,
                            membership_plans=catalogue,
                            payments=entries,
                        )
                    )
                ]
                answer = [(m, tuple(charges)) for m, charges in got]
                if answer != expected:
                    wrong = sorted(
                        {m.id for m, _ in answer} ^ {m.id for m, _ in expected}
                        | {a[0].id for a, e in zip(answer, expected, strict=False) if a != e}
                    )
                    raise ContractViolation(
                        "members.unpaid_charges",
                        (practice.id, at, write),
                        [(m.id, c) for m, c in expected],
                        [(m.id, c) for m, c in answer],
                        [f"member {member_id}" for member_id in wrong[:3]],
                    )

    def test_sign_ups_only_through_an_active_campaign(self) -> None:
        """A member enrolled, or a referral opened, through a campaign that is not Active
        then (not yet created, Draft, Scheduled, Paused, Ended) is refused with
        ``RuleViolation`` ``campaign_not_active`` and not kept; while Active it is kept."""
        store = self.make_store()
        members = self._needs(store, "members")
        t0 = sps.DATASET_START
        day = timedelta(days=1)
        campaign = (
            _kit_campaign(t0, t0 + 2 * day)
            .schedule(at=t0 + day)
            .activate(at=t0 + 2 * day)
            .pause(at=t0 + 3 * day)
            .activate(at=t0 + 4 * day)
            .end(at=t0 + 5 * day)
        )
        _add_kit(store, ("campaigns", campaign))
        moments = [(-day, False), (0 * day, False), (day, False), (2 * day, True)]
        moments += [(3 * day, False), (4 * day, True), (5 * day, False)]
        for n, (offset, allowed) in enumerate(moments):
            at = t0 + offset + timedelta(hours=1)
            member = Member.enrol(
                id=f"kit-m{n}",
                practice_id="kit-p",
                plan_id="kit-plan",
                account_holder=Patient(f"kit-pt{n}", "Ada Lovelace"),
                start_date=at.date(),
                at=at,
                campaign_id="kit-c",
            )
            _check_sign_up(members, member, allowed)
            if "referrals" in self.repositories:
                referral = Referral.open(
                    id=f"kit-r{n}",
                    practice_id="kit-p",
                    account_holder=Patient(f"kit-rp{n}", "Grace Hopper"),
                    start_date=at.date(),
                    at=at,
                    campaign_id="kit-c",
                )
                _check_sign_up(_repository(store, "referrals"), referral, allowed)

    def test_a_campaign_save_keeps_its_sign_ups_inside_active_spells(self) -> None:
        """A campaign saved with a pause stamped before a member's enrolment, or a
        referral's opening, through it is refused with ``RuleViolation``
        ``campaign_not_active`` and the kept campaign is unchanged; a pause stamped after
        every sign-up is kept."""
        store = self.make_store()
        members = self._needs(store, "members")
        campaigns = self._needs(store, "campaigns")
        t0 = sps.DATASET_START
        day = timedelta(days=1)
        campaign = (
            _kit_campaign(t0, t0 + day).schedule(at=t0 + timedelta(hours=1)).activate(at=t0 + day)
        )
        _add_kit(store, ("campaigns", campaign))
        members.add(
            Member.enrol(
                id="kit-m",
                practice_id="kit-p",
                plan_id="kit-plan",
                account_holder=Patient("kit-pt", "Ada Lovelace"),
                start_date=(t0 + 3 * day).date(),
                at=t0 + 3 * day,
                campaign_id="kit-c",
            )
        )
        paused_before = [(2, "a member")]
        if "referrals" in self.repositories:
            _repository(store, "referrals").add(
                Referral.open(
                    id="kit-r",
                    practice_id="kit-p",
                    account_holder=Patient("kit-rp", "Grace Hopper"),
                    start_date=(t0 + 5 * day).date(),
                    at=t0 + 5 * day,
                    campaign_id="kit-c",
                )
            )
            paused_before.append((4, "a referral"))  # after the member: the referral alone
        for days, who in paused_before:
            paused = campaign.pause(at=t0 + days * day)
            _expect_refusal(
                functools.partial(campaigns.save, paused),
                "campaign_not_active",
                f"a campaign saved paused before {who} joined through it",
                "kit-c",
            )
            if campaigns.get("kit-c") != campaign:
                raise ContractViolation("a refused campaign save", "kit-c", campaign, None)
        later = campaign.pause(at=t0 + 6 * day)
        campaigns.save(later)
        if campaigns.get("kit-c") != later:
            raise ContractViolation("a campaign paused after its sign-ups", "kit-c", later, None)

    @_budgeted
    def test_a_campaign_takes_sign_ups_onto_its_plans_with_its_discount(self) -> None:
        """A campaign applying to Silver only, with AUD 5.00 off the first two billing
        dates: a member signed up through it on Gold is refused (``campaign_plan``) and not
        kept; one signed up with its code on Silver (``apply_code``) is kept with the
        discount, and 15.00 (Silver's 20.00 less 5.00) is a charge of the price due on
        their first date; a save narrowing the campaign to Gold is then refused
        (``campaign_plan``) and the campaign kept as it was."""
        store = self.make_store()
        members = self._needs(store, "members")
        campaigns = self._needs(store, "campaigns")
        t0 = sps.DATASET_START
        silver = MembershipPlan(
            "kit-silver", "kit-p", "Silver", Money.of("20", "AUD"), BillingCycle.MONTHLY
        )
        off = Discount("kit-spring", "kit-p", "Spring", amount=Money.of("5", "AUD"), cycles=2)
        campaign = attrs.evolve(
            _kit_campaign(t0, t0).activate(at=t0), plans={silver.id}, discount=off
        )
        _add_kit(store, ("membership_plans", silver), ("campaigns", campaign))
        on_gold = attrs.evolve(_kit_member(t0 + timedelta(hours=1)), campaign_id="kit-c")
        _expect_add_refused(
            members, on_gold, "campaign_plan", "members.add through a campaign onto another plan"
        )
        joined = campaign.apply_code(
            attrs.evolve(_kit_member(t0 + timedelta(hours=1)), plan_id=silver.id), " spring "
        )
        members.add(joined)
        _check_get(members, _REPOSITORIES["members"], joined, "after a sign-up with a code")
        if "payments" in self.repositories:
            first = attrs.evolve(_kit_charge("kit-1", 0, "15"), at=t0 + timedelta(hours=2))
            payments = _repository(store, "payments")
            payments.add(first)
            _check_get(payments, _REPOSITORIES["payments"], first, "after a discounted charge")
        _expect_save_refused(
            campaigns,
            "campaigns",
            attrs.evolve(campaign, plans={"kit-plan"}),
            campaign,
            "campaign_plan",
            "campaigns.save leaving a member outside the plans it applies to",
        )

    def test_campaigns_share_no_code_while_both_active(self) -> None:
        """Spring (code SPRING) runs for days 0 to 10; Autumn, a Draft also taking
        " spring ", is kept: it is not Active. A campaign coded "Spring" from day 5 is
        refused (``promo_code_in_use``) and not kept; Autumn saved started on day 9 is
        refused and kept as it was; started on day 10, as Spring ends, it is kept (Active
        spans are half-open)."""
        store = self.make_store()
        campaigns = self._needs(store, "campaigns")
        t0, day = sps.DATASET_START, timedelta(days=1)
        spring = Campaign("kit-c", "kit-p", "Spring", "SPRING", t0, t0 + 10 * day)
        autumn = Campaign.draft(
            id="kit-c2",
            practice_id="kit-p",
            name="Autumn",
            promo_code="AUTUMN",
            active_from=t0 + 10 * day,
            at=t0,
            other_codes={" spring "},
        )
        _add_kit(store, ("campaigns", spring), ("campaigns", autumn))
        clash = Campaign("kit-c3", "kit-p", "Spring again", "Spring", t0 + 5 * day)
        what = "campaigns.add of a code another campaign has while both are Active"
        _expect_add_refused(campaigns, clash, "promo_code_in_use", what)
        _expect_save_refused(
            campaigns,
            "campaigns",
            autumn.activate(at=t0 + 9 * day),
            autumn,
            "promo_code_in_use",
            "campaigns.save started while another campaign with a shared code is Active",
        )
        started = autumn.activate(at=t0 + 10 * day)
        campaigns.save(started)
        _check_get(campaigns, _REPOSITORIES["campaigns"], started, "a campaign started apart")


def _kit_template(**changes: Any) -> PaymentPlanTemplate:
    """The kit practice's template ``kit-t``, Ortho: AUD 500.00 to 5,000.00 in 6 or 12
    monthly instalments, changed by ``changes``."""
    template = PaymentPlanTemplate(
        "kit-t", "kit-p", "Ortho", Money.of("500", "AUD"), Money.of("5000", "AUD"), (6, 12)
    )
    return attrs.evolve(template, **changes)


def _kit_campaign(at: datetime, active_from: datetime) -> Campaign:
    """The kit's campaign ``kit-c`` of practice ``kit-p``, a Draft created at ``at``."""
    return Campaign.draft(
        id="kit-c",
        practice_id="kit-p",
        name="Spring",
        promo_code="SPRING",
        active_from=active_from,
        at=at,
    )


def _check_sign_up(repo: Any, obj: Any, allowed: bool) -> None:
    """``repo.add(obj)`` keeps it when ``allowed``, else refuses it as campaign_not_active."""
    if allowed:
        repo.add(obj)
        if repo.get(obj.id) != obj:
            raise ContractViolation("sign-up while the campaign is Active", obj.id, obj, None)
        return
    _expect_refusal(
        lambda: repo.add(obj),
        "campaign_not_active",
        "sign-up through a campaign not Active",
        obj.id,
    )
    _not_kept(repo, obj.id, "a refused sign-up")


def _kit_plan() -> MembershipPlan:
    """The kit practice's plan: AUD 30.00 a month."""
    return MembershipPlan("kit-plan", "kit-p", "Gold", Money.of("30", "AUD"), BillingCycle.MONTHLY)


def _kit_member(t0: datetime) -> Member:
    """Member ``kit-m`` of the kit practice on ``kit-plan``, enrolled and Active at ``t0``."""
    return Member.enrol(
        id="kit-m",
        practice_id="kit-p",
        plan_id="kit-plan",
        account_holder=Patient("kit-pt", "Ada Lovelace"),
        start_date=t0.date(),
        at=t0,
    ).activate(at=t0)


def _kit_charge(id: str, days: int, amount: str, *, ok: bool = True) -> Payment:
    """A membership charge of ``kit-m`` (AUD ``amount``) at 10:00 UTC ``days`` days after
    :data:`~smilepass_core.testing.strategies.DATASET_START`, succeeded unless ``ok`` is
    false."""
    outcome = PaymentOutcome.SUCCEEDED if ok else PaymentOutcome.FAILED
    at = sps.DATASET_START + timedelta(days=days, hours=10)
    return Payment(id, "kit-p", Money.of(amount, "AUD"), PaymentKind.CHARGE, outcome, at, "kit-m")


def _add_kit(store: Any, *extra: tuple[str, Any], plan: MembershipPlan | None = None) -> None:
    """Add the kit's practice ``kit-p`` (UTC, AUD), its plan (``plan``, else
    :func:`_kit_plan`) and the ``(repository, object)`` pairs of ``extra``, in order."""
    kit = Practice("kit-p", "Kit Dental", "UTC", "AUD")
    for name, obj in (("practices", kit), ("membership_plans", plan or _kit_plan()), *extra):
        _repository(store, name).add(obj)


def _add_kit_charged(store: Any) -> Member:
    """:func:`_add_kit` with ``kit-m`` (Active from
    :data:`~smilepass_core.testing.strategies.DATASET_START`) charged 30.00 on 1 January and
    1 February; the member as added."""
    member = _kit_member(sps.DATASET_START)
    _add_kit(store, ("members", member))
    for charge in (_kit_charge("kit-1", 0, "30"), _kit_charge("kit-2", 31, "30")):
        _repository(store, "payments").add(charge)
    return member


def _expect_refusal(
    write: Callable[[], object], expected: str, what: str, id: str, field: str | None = None
) -> None:
    """Raise :class:`ContractViolation` unless ``write()`` raises ``RuleViolation`` with
    rule ``expected`` (and field ``field``, when given)."""
    try:
        write()
    except RuleViolation as error:
        if error.rule != expected:
            raise ContractViolation(what, id, expected, error.rule) from error
        if field is not None and error.field != field:
            raise ContractViolation(f"{what}: field", id, field, error.field) from error
    else:
        raise ContractViolation(what, id, expected, "kept")


def _expect_save_refused(
    repo: Any, name: str, saved: Any, kept: Any, expected: str, what: str, field: str | None = None
) -> None:
    """Raise :class:`ContractViolation` unless ``repo.save(saved)`` raises ``RuleViolation``
    with rule ``expected`` (and field ``field``, when given) and ``repo`` (the repository
    ``name``) still holds ``kept``."""
    _expect_refusal(functools.partial(repo.save, saved), expected, what, kept.id, field)
    _check_get(repo, _REPOSITORIES[name], kept, "after a refused save")


def _expect_add_refused(repo: Any, entry: Any, expected: str, what: str) -> None:
    """Raise :class:`ContractViolation` unless ``repo.add(entry)`` raises ``RuleViolation``
    with rule ``expected`` and ``repo`` does not hold ``entry`` afterwards."""
    _expect_refusal(functools.partial(repo.add, entry), expected, what, entry.id)
    _not_kept(repo, entry.id, f"{what}, refused")


def _saved_then_charged(
    repo: Any, name: str, saved: Any, payments: Any, charge: Payment, what: str
) -> None:
    """``repo.save(saved)`` then ``payments.add(charge)``; raise :class:`ContractViolation`
    unless each is kept as given (``what`` names the save)."""
    repo.save(saved)
    _check_get(repo, _REPOSITORIES[name], saved, what)
    payments.add(charge)
    _check_get(payments, _REPOSITORIES["payments"], charge, "after a charge")


def _not_kept(repo: Any, id: str, what: str) -> None:
    """Raise :class:`ContractViolation` when ``repo`` holds ``id`` (a refused write kept)."""
    with contextlib.suppress(NotFound):
        repo.get(id)
        raise ContractViolation(what, id, "not kept", "kept")


def _instants(drawn: list[datetime]) -> list[datetime]:
    """The instants drawn, as drawn (any order, repeats kept)."""
    return drawn


def _pairs(drawn: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Each two consecutive instants drawn: pairs either way round."""
    return list(itertools.pairwise(drawn))


def _windows(drawn: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Each two consecutive instants drawn, the earlier first."""
    return [(min(a, b), max(a, b)) for a, b in itertools.pairwise(drawn)]


def _active_at(practices: frozenset[str] | None, at: datetime) -> MemberQuery:
    """The one query ``active_counts`` answers for ``at``."""
    return MemberQuery(practices=practices, active_at=at)


def _ever_active(practices: frozenset[str] | None, before: datetime) -> MemberQuery:
    """The one query ``ever_active_counts`` answers for ``before``."""
    return MemberQuery(practices=practices, ever_active_before=before)


def _retained(practices: frozenset[str] | None, span: tuple[datetime, datetime]) -> MemberQuery:
    """The one query ``retained_counts`` answers for ``span``."""
    return MemberQuery(practices=practices, active_at=span[0], retained_until=span[1])


def _in_window(practices: frozenset[str] | None, window: tuple[datetime, datetime]) -> PaymentQuery:
    """The one query ``window_totals`` answers for ``window``."""
    return PaymentQuery(practices=practices, time_range=DateRange(*window, "UTC"))


def _batched(repo: Any, name: str) -> Any:
    """The optional read ``name`` of ``repo``; skips the test, saying so, when the store
    does not offer it (the dashboard then asks once per bucket, the aged receivables
    judge each member)."""
    read = getattr(repo, name, None)
    if read is None:
        pytest.skip(f"the optional read {name}() is not offered")
    return read


def _held_back_last(payments: Sequence[Payment], held: int) -> tuple[Payment, ...]:
    """``payments`` with the latest ``held`` of them moved to the end, members' entries
    chosen before payment plans'. Each source's entries keep their order, so the ledger
    still loads entry by entry."""
    ranked = sorted(range(len(payments)), key=lambda i: (payments[i].member_id is not None, i))
    back = ranked[len(ranked) - held :]
    chosen = set(back)
    return (*(p for i, p in enumerate(payments) if i not in chosen), *(payments[i] for i in back))


def _event_instants(
    dataset: sps.Dataset, *, members: bool = False, plans: bool = False, payments: bool = False
) -> list[tuple[str, datetime]]:
    """(practice, instant) of every status change or payment asked for, in time order."""
    events = set()
    if members:
        events |= {(m.practice_id, c.at) for m in dataset.members for c in m.history}
    if plans:
        events |= {(p.practice_id, c.at) for p in dataset.payment_plans for c in p.history}
    if payments:
        events |= {(p.practice_id, p.at) for p in dataset.payments}
    return sorted(events, key=lambda e: (e[1], e[0]))


def _ranges_around(dataset: sps.Dataset, practice: str, at: datetime) -> list[DateRange]:
    """Ranges with an edge exactly on ``at``, and the practice's local day around it."""
    zone = _timezones(dataset)[practice]
    first, last = min(_START, at), max(_END, at)
    day = DateRange(at, at, zone).local_start.date()
    return [
        DateRange(first, at, zone),
        DateRange(at, last, zone),
        DateRange.custom(day, day, timezone=zone),
    ]


_START = sps.DATASET_START - timedelta(days=400)
_END = sps.DATASET_START + timedelta(days=800)


class _PaymentPlanChecks(_Contract):
    """What only ``payment_plans`` must do: ``total``."""

    @_budgeted
    @KIT_SETTINGS
    @given(data=st.data(), dataset=sps.datasets())
    def test_total_is_the_exact_sum_per_currency(
        self, data: st.DataObject, dataset: sps.Dataset
    ) -> None:
        """total() is the sum of the matching plans' totals, per currency, exactly."""
        repo = self._needs(self._loaded(dataset), "payment_plans")
        spec = _REPOSITORIES["payment_plans"]
        _check_total(repo, spec, dataset, data.draw(spec.queries(dataset), label="query"))

    @_budgeted
    @KIT_SETTINGS
    @given(dataset=sps.datasets())
    def test_committed_at_every_boundary(self, dataset: sps.Dataset) -> None:
        """find() and total() of the plans committed in ranges that end or start exactly on
        a plan's change, and in the practice's local day around it."""
        repo = self._needs(self._loaded(dataset), "payment_plans")
        spec = _REPOSITORIES["payment_plans"]
        for practice, at in _event_instants(dataset, plans=True):
            for window in _ranges_around(dataset, practice, at):
                query = PaymentPlanQuery(practices={practice}, committed_in=window)
                _check_find(repo, spec, dataset, query)
                _check_total(repo, spec, dataset, query)

    @_budgeted
    @KIT_SETTINGS
    @given(data=st.data(), dataset=sps.datasets())
    def test_committed_totals(self, data: st.DataObject, dataset: sps.Dataset) -> None:
        """The optional batched Committed Payments read, when offered: per two consecutive
        edges, equal to ``total(committed_in=[a, b))``."""
        repo = self._needs(self._loaded(dataset), "payment_plans")
        read = _batched(repo, "committed_totals")
        edges = sorted(data.draw(st.lists(sps.boundaries(dataset), max_size=6), label="edges"))
        spec = _REPOSITORIES["payment_plans"]
        for practice in [None, *(frozenset({p.id}) for p in dataset.practices)]:
            got = [_nonzero(t) for t in read(practices=practice, edges=edges)]
            expected = [
                _nonzero(
                    per_currency(
                        p.total
                        for p in spec.expected(
                            dataset,
                            PaymentPlanQuery(
                                practices=practice, committed_in=DateRange(a, b, "UTC")
                            ),
                        )
                    )
                )
                for a, b in itertools.pairwise(edges)
            ]
            if got != expected:
                raise ContractViolation(
                    "payment_plans.committed_totals", (practice, edges), expected, got, []
                )

    def test_a_plan_named_after_a_template_is_its_offer(self) -> None:
        """Template ``kit-t`` (AUD 500.00 to 5,000.00 in 6 or 12 monthly instalments after
        a 100.00 deposit, first due within 30 days): a plan offered from it is kept; a plan
        in 7 instalments naming it is refused (``template``) and not kept; once a plan
        was offered, a change of its terms is refused (``template_in_use``) and the
        template kept as it was, while a new name and a retirement after the offer are
        saved."""
        store = self.make_store()
        templates = self._needs(store, "payment_plan_templates")
        plans = self._needs(store, "payment_plans")
        t0 = sps.DATASET_START + timedelta(hours=9)
        template = _kit_template(max_deferral_days=30, deposit=Money.of("100", "AUD"))
        _add_kit(store, ("payment_plan_templates", template))
        offer = functools.partial(
            offer_from_template,
            template,
            patient=Patient("kit-pt", "Ada Lovelace"),
            total=Money.of("1300", "AUD"),
            first_due=t0.date() + timedelta(days=14),
            at=t0,
            timezone="UTC",
        )
        plans.add(offer(id="kit-pp1", instalments=12))
        _check_get(plans, _REPOSITORIES["payment_plans"], offer(id="kit-pp1", instalments=12), "")
        seven = PaymentPlan.offer(
            id="kit-pp2",
            practice_id="kit-p",
            patient=Patient("kit-pt", "Ada Lovelace"),
            total=Money.of("1300", "AUD"),
            payment_type=PaymentType.PLAN,
            instalments=7,
            first_due=t0.date(),
            at=t0,
        )
        _expect_add_refused(
            plans,
            attrs.evolve(seven, template_id="kit-t"),
            "template",
            "payment_plans.add of 7 instalments naming a 6 or 12 template",
        )
        name = "payment_plan_templates"
        _expect_save_refused(
            templates,
            name,
            attrs.evolve(template, max_total=Money.of("9000", "AUD")),
            template,
            "template_in_use",
            "payment_plan_templates.save of new terms after a plan was offered",
        )
        renamed = attrs.evolve(template, name="Orthodontics")
        templates.save(renamed)
        retired = renamed.retire(at=t0 + timedelta(days=1))
        templates.save(retired)
        _check_get(templates, _REPOSITORIES[name], retired, "a template renamed and retired")

    def test_what_a_template_plan_was_judged_by_stays(self) -> None:
        """A members-only template's plan offered to ``kit-m`` at 11:00 UTC on its first
        day, due that day: a save suspending ``kit-m`` from 10:00 (before the offer), and
        a practice time zone of Kiritimati (UTC+14, where the offer's local day is the
        next), would leave it no offer of its template: each is refused (``template``)
        and the member or practice kept as it was. A suspension after the offer is
        saved."""
        store = self.make_store()
        plans = self._needs(store, "payment_plans")
        members = self._needs(store, "members")
        practices = self._needs(store, "practices")
        t0 = sps.DATASET_START
        member = _kit_member(t0)
        template = _kit_template(name="Members' ortho", members_only=True)
        _add_kit(store, ("members", member), ("payment_plan_templates", template))
        plans.add(
            offer_from_template(
                template,
                id="kit-pp1",
                patient=member.account_holder,
                total=Money.of("1200", "AUD"),
                instalments=6,
                first_due=t0.date(),
                at=t0 + timedelta(hours=11),
                timezone="UTC",
                member=member,
            )
        )
        _expect_save_refused(
            members,
            "members",
            member.suspend(at=t0 + timedelta(hours=10)),
            member,
            "template",
            "members.save suspending a members-only plan's holder before its offer",
        )
        kit = practices.get("kit-p")
        _expect_save_refused(
            practices,
            "practices",
            attrs.evolve(kit, timezone="Pacific/Kiritimati"),
            kit,
            "template",
            "practices.save of a time zone moving a template plan's offer to another day",
        )
        later = member.suspend(at=t0 + timedelta(hours=12))
        members.save(later)
        _check_get(members, _REPOSITORIES["members"], later, "a suspension after the offer")


class _PaymentChecks(_Contract):
    """What only the ledger must do: idempotent adds, capped refunds, ``total``."""

    @_budgeted
    @KIT_SETTINGS
    @given(dataset=sps.datasets())
    def test_recording_the_same_payment_twice_counts_once(self, dataset: sps.Dataset) -> None:
        """add() of a payment identical to a recorded one changes nothing."""
        repo = self._needs(self._loaded(dataset), "payments")
        before = repo.count(_ALL_PAYMENTS)
        for payment in dataset.payments[:3]:
            repo.add(payment)
        after = repo.count(_ALL_PAYMENTS)
        if after != before:
            raise ContractViolation(
                "payments.count after adding recorded payments again",
                _ALL_PAYMENTS,
                before,
                after,
                [describe(p) for p in dataset.payments[:3]],
            )

    @_budgeted
    @KIT_SETTINGS
    @given(dataset=sps.datasets())
    def test_refund_above_collected_is_refused(self, dataset: sps.Dataset) -> None:
        """A refund above the net collected for its source raises and is not recorded."""
        repo = self._needs(self._loaded(dataset), "payments")
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

    def test_charges_only_between_enrolment_and_cancellation(self) -> None:
        """A membership charge (succeeded or failed) before the member's enrolment or after
        their cancellation is refused (``charge_before_enrolment``,
        ``charge_after_cancel``) and not kept; one at the enrolment or the cancellation
        instant is kept, and a refund after the cancellation too."""
        store = self.make_store()
        payments = self._needs(store, "payments")
        t0 = sps.DATASET_START
        member = _kit_member(t0).cancel(at=t0 + timedelta(days=10))
        plan = _kit_plan()
        _add_kit(store, ("members", member), plan=plan)

        def entry(id: str, at: datetime, kind: PaymentKind, outcome: PaymentOutcome) -> Payment:
            return Payment(id, "kit-p", plan.price, kind, outcome, at, member_id="kit-m")

        ok, failed = PaymentOutcome.SUCCEEDED, PaymentOutcome.FAILED
        charge = PaymentKind.CHARGE
        end = t0 + timedelta(days=10)
        for kept in (entry("kit-1", t0, charge, ok), entry("kit-2", end, charge, failed)):
            payments.add(kept)
        payments.add(entry("kit-3", end + timedelta(days=1), PaymentKind.REFUND, ok))
        for refused, expected in (
            (entry("kit-4", t0 - timedelta(seconds=1), charge, ok), "charge_before_enrolment"),
            (entry("kit-5", end + timedelta(seconds=1), charge, ok), "charge_after_cancel"),
            (entry("kit-6", end + timedelta(days=2), charge, failed), "charge_after_cancel"),
        ):
            _expect_add_refused(
                payments, refused, expected, "payments.add of a charge out of the membership"
            )
        if "members" not in self.repositories:
            return
        # Nor the other way round: a save that cancels before a charge already recorded.
        active = attrs.evolve(member, id="kit-m2", history=member.history[:2])
        members = _repository(store, "members")
        members.add(active)
        payments.add(
            attrs.evolve(entry("kit-7", t0 + timedelta(days=5), charge, ok), member_id="kit-m2")
        )
        _expect_refusal(
            functools.partial(members.save, active.cancel(at=t0 + timedelta(days=3))),
            "charge_after_cancel",
            "members.save cancelling before a recorded charge",
            "kit-m2",
        )
        if members.get("kit-m2") != active:
            raise ContractViolation("a refused save", "kit-m2", active, members.get("kit-m2"))

    @_budgeted
    def test_a_membership_charge_must_be_the_price_due(self) -> None:
        """A membership charge (succeeded or failed) must be the price due of the newest
        billing date (the plan's price that day, less the member's discounts in force) or
        all that is owed; any other amount is refused (``charge_amount``) and not kept.
        Monthly from 1 January, 30.00 repriced to 40.00 from 10 February, AUD 5.00 off
        the first date: 25.00 on 1 January, 30.00 on 1 February (failed), then 70.00 (the
        40.00 of 1 March and February's 30.00) on 1 March."""
        store = self.make_store()
        payments = self._needs(store, "payments")
        t0 = sps.DATASET_START
        plan = _kit_plan().reprice(Money.of("40", "AUD"), on=(t0 + timedelta(days=40)).date())
        spring = Discount("kit-spring", "kit-p", "Spring", amount=Money.of("5", "AUD"), cycles=1)
        _add_kit(store, ("members", _kit_member(t0).grant(spring)), plan=plan)

        charge = _kit_charge
        steps = [
            ([charge("kit-1", 0, "30")], charge("kit-2", 0, "25")),
            ([charge("kit-3", 31, "25", ok=False), charge("kit-4", 31, "40")], None),
            ([], charge("kit-5", 31, "30", ok=False)),
            ([charge("kit-6", 59, "41"), charge("kit-7", 59, "30")], charge("kit-8", 59, "70")),
        ]
        for refused, kept in steps:
            for entry in refused:
                _expect_add_refused(
                    payments,
                    entry,
                    "charge_amount",
                    "payments.add of a charge of another amount than the price due",
                )
            if kept is not None:
                payments.add(kept)
                _check_get(payments, _REPOSITORIES["payments"], kept, "after a charge")

    @_budgeted
    def test_a_reprice_back_over_charged_dates_is_refused(self) -> None:
        """A membership plan saved with a reprice from a date on or before a billing date
        a recorded charge was priced at raises RuleViolation ``reprice_backdated`` and
        keeps the plan; a reprice from the day after is saved, and the next charge is
        taken at the new price. Monthly from 1 January at 30.00, charged 1 January and
        1 February: a reprice to 40.00 from 1 February or 15 January is refused, from
        2 February kept, and 40.00 is then charged on 1 March."""
        store = self.make_store()
        plans = self._needs(store, "membership_plans")
        payments = self._needs(store, "payments")
        t0 = sps.DATASET_START
        plan = _kit_plan()
        _add_kit_charged(store)
        dearer = Money.of("40", "AUD")
        for days in (31, 14):
            backdated = plan.reprice(dearer, on=(t0 + timedelta(days=days)).date())
            _expect_save_refused(
                plans,
                "membership_plans",
                backdated,
                plan,
                "reprice_backdated",
                "membership_plans.save of a reprice back over a charged billing date",
            )
        later = plan.reprice(dearer, on=(t0 + timedelta(days=32)).date())
        march = _kit_charge("kit-3", 59, "40")
        _saved_then_charged(plans, "membership_plans", later, payments, march, "after a reprice")

    @_budgeted
    def test_a_grant_back_over_charged_dates_is_refused(self) -> None:
        """A member saved with a discount in force on a billing date they were already
        charged for raises RuleViolation ``reprice_backdated`` and is kept as it was; the
        grant from the next billing date is saved, and that date is charged at the
        discounted price. Monthly at 30.00 from 1 January, charged 1 January and
        1 February: AUD 5.00 off from date 0 is refused, from date 2 (1 March) kept, and
        25.00 is then charged on 1 March."""
        store = self.make_store()
        members = self._needs(store, "members")
        payments = self._needs(store, "payments")
        member = _add_kit_charged(store)
        off = Discount("kit-off", "kit-p", "Loyalty", amount=Money.of("5", "AUD"))
        _expect_save_refused(
            members,
            "members",
            member.grant(off),
            member,
            "reprice_backdated",
            "members.save of a discount granted back over a charged billing date",
        )
        granted = member.grant(off, first=2)
        march = _kit_charge("kit-3", 59, "25")
        _saved_then_charged(members, "members", granted, payments, march, "after a grant")

    @_budgeted
    def test_a_status_change_back_over_a_charge_is_refused(self) -> None:
        """A member saved with a status change stamped back before a recorded charge, or
        later on that charge's day, is refused (RuleViolation ``reprice_backdated``,
        field ``history``) and kept as it was when the new history makes that charge's
        amount one the charge rule refuses; one that leaves every charge allowed is kept.
        Monthly at 30.00 from 1 January, AUD 5.00 off date 1 only, charged 30.00 on
        1 January and 25.00 on 1 February: Suspended from 15 January (1 February is then
        no billing date, so 30.00 is due) is refused; Failed from 15 January (still
        billed) is kept, and Suspended from 10 February. A start date rewritten to
        15 January is refused too (field ``start_date``), and so is the plan rewritten to
        one at 60.00 (field ``plan_id``). Charged 25.00 at 00:30 on 1 March
        while Suspended (1 February's price), Active again at 23:30 that day is refused
        (1 March is then billed, at 30.00), and at 00:30 on 2 March kept."""
        store = self.make_store()
        members = self._needs(store, "members")
        payments = self._needs(store, "payments")
        off = Discount("kit-off", "kit-p", "Loyalty", amount=Money.of("5", "AUD"), cycles=1)
        member = _kit_member(sps.DATASET_START).grant(off, first=1)
        _add_kit(store, ("members", member))
        for charge in (_kit_charge("kit-1", 0, "30"), _kit_charge("kit-2", 31, "25")):
            payments.add(charge)
        january = sps.DATASET_START + timedelta(days=14)
        what = "members.save of a status change that reprices a recorded charge"
        refused = "reprice_backdated"
        _expect_save_refused(
            members, "members", member.suspend(at=january), member, refused, what, "history"
        )
        later = attrs.evolve(member, start_date=january.date())  # 1 February: no date
        what_start = "members.save of a start date that reprices a recorded charge"
        _expect_save_refused(members, "members", later, member, refused, what_start, "start_date")
        platinum = MembershipPlan(
            "kit-plat", "kit-p", "Platinum", Money.of("60", "AUD"), BillingCycle.MONTHLY
        )
        self._needs(store, "membership_plans").add(platinum)
        rewritten = attrs.evolve(member, plan_id=platinum.id)  # on it from the start
        what_plan = "members.save of a plan rewritten under recorded charges"
        _expect_save_refused(members, "members", rewritten, member, refused, what_plan, "plan_id")
        failed = member.fail(at=january)
        members.save(failed)
        _check_get(members, _REPOSITORIES["members"], failed, "after a backdated Failed")
        suspended = failed.suspend(at=sps.DATASET_START + timedelta(days=40))
        members.save(suspended)
        _check_get(members, _REPOSITORIES["members"], suspended, "after a suspension")
        march = sps.DATASET_START + timedelta(days=59)  # 1 March, 00:00 UTC
        payments.add(attrs.evolve(_kit_charge("kit-3", 59, "25"), at=march + timedelta(minutes=30)))
        late = suspended.activate(at=march + timedelta(hours=23, minutes=30))
        _expect_save_refused(members, "members", late, suspended, refused, what, "history")
        resumed = suspended.activate(at=march + timedelta(days=1, minutes=30))
        members.save(resumed)
        _check_get(members, _REPOSITORIES["members"], resumed, "after a resumption")

    @_budgeted
    def test_a_time_zone_that_reprices_a_charge_is_refused(self) -> None:
        """A practice saved in another time zone in which a recorded membership charge is
        of an amount the charge rule refuses raises RuleViolation ``reprice_backdated``
        (field ``timezone``) and is kept as it was; one in which every charge is allowed
        is kept. In UTC, monthly at 30.00 from 1 January, AUD 5.00 off from date 1,
        charged 30.00 on 1 January and 25.00 at 00:30 on 1 February: in Honolulu that
        charge falls on 31 January, before 1 February is due (30.00): refused; in Sydney
        it falls on 1 February: kept."""
        store = self.make_store()
        practices = self._needs(store, "practices")
        payments = self._needs(store, "payments")
        self._needs(store, "members")
        off = Discount("kit-off", "kit-p", "Loyalty", amount=Money.of("5", "AUD"))
        _add_kit(store, ("members", _kit_member(sps.DATASET_START).grant(off, first=1)))
        february = sps.DATASET_START + timedelta(days=31, minutes=30)
        payments.add(_kit_charge("kit-1", 0, "30"))
        payments.add(attrs.evolve(_kit_charge("kit-2", 31, "25"), at=february))
        kit = practices.get("kit-p")
        _expect_save_refused(
            practices,
            "practices",
            attrs.evolve(kit, timezone="Pacific/Honolulu"),
            kit,
            "reprice_backdated",
            "practices.save of a time zone that reprices a recorded charge",
            "timezone",
        )
        sydney = attrs.evolve(kit, timezone="Australia/Sydney")
        practices.save(sydney)
        _check_get(practices, _REPOSITORIES["practices"], sydney, "after a new time zone")

    @_budgeted
    def test_a_move_to_another_cycle_bills_from_the_next_date(self) -> None:
        """A member moved to a plan of another billing cycle is charged the new plan from
        the next billing date, which anchors the new cycle. Monthly at 30.00 from
        1 January, charged 1 January and 1 February, moved to annual at 300.00: the move
        stamped 15 January (before the 1 February charge, which it would reprice) raises
        RuleViolation ``reprice_backdated``; stamped 10 February it is kept, and on
        1 March 30.00 is refused (``charge_amount``) and 300.00 kept."""
        store = self.make_store()
        members = self._needs(store, "members")
        payments = self._needs(store, "payments")
        plans = self._needs(store, "membership_plans")
        member = _add_kit_charged(store)
        annual = MembershipPlan(
            "kit-annual", "kit-p", "Annual", Money.of("300", "AUD"), BillingCycle.ANNUALLY
        )
        plans.add(annual)
        early = member.change_plan(annual.id, at=sps.DATASET_START + timedelta(days=14))
        _expect_save_refused(
            members,
            "members",
            early,
            member,
            "reprice_backdated",
            "members.save of a move to another cycle back over a charged billing date",
        )
        moved = member.change_plan(annual.id, at=sps.DATASET_START + timedelta(days=40))
        members.save(moved)
        _check_get(members, _REPOSITORIES["members"], moved, "after a move")
        monthly = _kit_charge("kit-3", 59, "30")
        _expect_add_refused(
            payments,
            monthly,
            "charge_amount",
            "payments.add of the old plan's price after a move to another cycle",
        )
        march = _kit_charge("kit-4", 59, "300")
        payments.add(march)
        _check_get(payments, _REPOSITORIES["payments"], march, "after a charge")

    @_budgeted
    def test_a_dependent_added_prices_the_next_date(self) -> None:
        """A dependent added moves a per-dependent discount from the next billing date on;
        stamped back over a charged date it is refused. Monthly at 30.00 from 1 January,
        charged 1 January and 1 February, granted 10 % off per dependent with none yet: a
        dependent added on 15 January (it would reprice 1 February) raises RuleViolation
        ``reprice_backdated``; added on 10 February it is kept, and on 1 March 30.00 is
        refused (``charge_amount``) and 27.00 kept."""
        family = Discount(
            "kit-fam", "kit-p", "Family", percent=10, basis=DiscountBasis.PER_DEPENDENT
        )
        kid = Patient("kit-kid", "Ada's kid")
        self._check_next_date_repriced(
            family, lambda m, at: m.add_dependent(kid, at=at), "a dependent added", "27"
        )

    @_budgeted
    def test_a_referral_reward_prices_the_next_date(self) -> None:
        """A referral credited moves a per-referral discount from the next billing date on:
        as for a dependent added, with 5.00 off per referral (25.00 on 1 March)."""
        friend = Discount(
            "kit-friend",
            "kit-p",
            "Refer a friend",
            amount=Money.of("5", "AUD"),
            basis=DiscountBasis.PER_REFERRAL,
        )
        self._check_next_date_repriced(
            friend, lambda m, at: m.reward_referral("kit-r", at=at), "a referral credited", "25"
        )

    def _check_next_date_repriced(
        self,
        discount: Discount,
        change: Callable[[Member, datetime], Member],
        what: str,
        price: str,
    ) -> None:
        """``kit-m`` charged 1 January and 1 February, granted ``discount`` with no units:
        ``change`` stamped 15 January is refused (``reprice_backdated``); stamped
        10 February it is kept, then 30.00 is refused on 1 March and ``price`` kept."""
        store = self.make_store()
        members = self._needs(store, "members")
        payments = self._needs(store, "payments")
        member = _add_kit_charged(store).grant(discount, units=0)
        members.save(member)
        _expect_save_refused(
            members,
            "members",
            change(member, sps.DATASET_START + timedelta(days=14)),
            member,
            "reprice_backdated",
            f"members.save of {what} back over a charged billing date",
        )
        changed = change(member, sps.DATASET_START + timedelta(days=40))
        members.save(changed)
        _check_get(members, _REPOSITORIES["members"], changed, f"after {what}")
        _expect_add_refused(
            payments,
            _kit_charge("kit-3", 59, "30"),
            "charge_amount",
            f"payments.add of the price before {what}",
        )
        march = _kit_charge("kit-4", 59, price)
        payments.add(march)
        _check_get(payments, _REPOSITORIES["payments"], march, "after a charge")

    @_budgeted
    @KIT_SETTINGS
    @given(data=st.data(), dataset=sps.datasets())
    def test_total_is_the_exact_signed_sum_per_currency(
        self, data: st.DataObject, dataset: sps.Dataset
    ) -> None:
        """total() is succeeded charges minus succeeded refunds over the matches, per currency."""
        repo = self._needs(self._loaded(dataset), "payments")
        spec = _REPOSITORIES["payments"]
        for _ in range(2):
            _check_total(repo, spec, dataset, data.draw(spec.queries(dataset), label="query"))

    @_budgeted
    @KIT_SETTINGS
    @given(dataset=sps.datasets().filter(lambda d: d.payments))
    def test_revenue_at_every_boundary(self, dataset: sps.Dataset) -> None:
        """find() and total() of a practice's ledger in ranges that end or start exactly on
        a payment, and in the practice's local day around it: the revenue read (drawn
        only with a ledger: without one there is no boundary to read at)."""
        repo = self._needs(self._loaded(dataset), "payments")
        spec = _REPOSITORIES["payments"]
        for practice, at in _event_instants(dataset, payments=True):
            for window in _ranges_around(dataset, practice, at):
                query = PaymentQuery(practices={practice}, time_range=window)
                _check_find(repo, spec, dataset, query)
                _check_total(repo, spec, dataset, query)


def _repository(store: Any, name: str) -> Any:
    """``store``'s repository ``name``; a :class:`ContractViolation` when it has none."""
    repository = getattr(store, name, None)
    if repository is None:
        raise ContractViolation(
            f"store.{name}",
            name,
            "a repository",
            None,
            ["name the repositories the store has in the contract's `repositories`"],
        )
    return repository


_ALL_PAYMENTS = PaymentQuery()


class StoreContract(_MemberChecks, _PaymentPlanChecks, _PaymentChecks):
    """The whole contract for a store: subclass it and define :meth:`make_store`.

    ``repositories`` names the repositories to check (all nine by default); one
    the store lacks is reported as skipped, with its name, by ``test_has_repository``.
    """

    repositories: ClassVar[tuple[str, ...]] = tuple(STORE_TYPES)

    @pytest.mark.parametrize("name", list(STORE_TYPES))
    def test_has_repository(self, name: str) -> None:
        """The store has each repository under test, with the protocol's methods."""
        repository = self._needs(self.make_store(), name)
        methods = ["get", "find", "count", "add"]
        methods += ["total"] if name in ("payments", "payment_plans") else []
        methods += [] if _REPOSITORIES[name].append_only else ["save"]
        missing = [m for m in methods if not callable(getattr(repository, m, None))]
        if missing:
            raise ContractViolation(f"store.{name} methods", name, methods, missing)

    @_budgeted
    @KIT_SETTINGS
    @given(data=st.data(), dataset=sps.datasets())
    def test_dashboard_agrees_with_the_reference(
        self, data: st.DataObject, dataset: sps.Dataset
    ) -> None:
        """dashboard() over the store equals dashboard() over InMemoryStore on the same data."""
        reference = InMemoryStore()
        load(reference, dataset)
        host = self._loaded(dataset)
        practice = data.draw(st.sampled_from([p.id for p in dataset.practices]), label="practice")
        now = data.draw(sps.boundaries(dataset), label="now")
        preset = data.draw(st.sampled_from(list(Preset)), label="date_range")
        compare_dashboards(
            host, reference, dataset.objects(), practices=practice, date_range=preset, now=now
        )

    def test_random_steps_agree_with_the_reference(self) -> None:
        """Random adds, saves, finds and counts give the same answers as InMemoryStore's."""
        make_store, covered = self.make_store, self.repositories

        class Machine(StoreComparison):
            store_factory = staticmethod(make_store)
            repositories = covered

        with _shrink_budget(self.shrink_seconds):
            run_state_machine_as_test(Machine, settings=settings(KIT_SETTINGS))


class _PerRepository(_Contract):
    """A contract for one repository of a store built by the ``store_factory`` fixture."""

    @pytest.fixture(autouse=True)
    def _store_factory(self, request: pytest.FixtureRequest) -> None:
        if type(self).make_store is _PerRepository.make_store:
            self._factory: StoreFactory = request.getfixturevalue("store_factory")

    def make_store(self) -> Any:
        """A new, empty store: the ``store_factory`` fixture's, unless a subclass says."""
        return self._factory()


class PracticeRepositoryContract(_PerRepository):
    """Contract for ``store.practices``."""

    repositories = ("practices",)


class StaffUserRepositoryContract(_PerRepository):
    """Contract for ``store.staff_users``."""

    repositories = ("staff_users",)


class MembershipPlanRepositoryContract(_PerRepository):
    """Contract for ``store.membership_plans``."""

    repositories = ("membership_plans",)


class CampaignRepositoryContract(_PerRepository):
    """Contract for ``store.campaigns``."""

    repositories = ("campaigns",)


class MemberRepositoryContract(_PerRepository, _MemberChecks):
    """Contract for ``store.members``, including the KPI reads (boundaries, latest feed)."""

    repositories = ("members",)


class PaymentPlanRepositoryContract(_PerRepository, _PaymentPlanChecks):
    """Contract for ``store.payment_plans``, including ``total``."""

    repositories = ("payment_plans",)


class PaymentRepositoryContract(_PerRepository, _PaymentChecks):
    """Contract for ``store.payments``: append-only, idempotent, refunds capped, ``total``."""

    repositories = ("payments",)


class PaymentPlanTemplateRepositoryContract(_PerRepository):
    """Contract for ``store.payment_plan_templates``."""

    repositories = ("payment_plan_templates",)


class ReferralRepositoryContract(_PerRepository):
    """Contract for ``store.referrals``."""

    repositories = ("referrals",)


# -- the dashboard, read through recording repositories -------------------------------------


@attrs.frozen
class _Call:
    """One read the dashboard made: ``repository.method(*args, **kwargs)`` and its answer."""

    read: str
    arguments: Any
    answer: Any

    def normalised(self) -> Any:
        """The answer as the contract compares it (ids for objects, zero totals left out)."""
        if self.read.endswith(".total"):
            return _nonzero(self.answer)
        if self.read.endswith((".committed_totals", ".window_totals")):
            return [_nonzero(bucket) for bucket in self.answer]
        if _listed(self.answer):
            return [getattr(o, "id", o) for o in self.answer]
        return getattr(self.answer, "id", self.answer)


#: The optional batched reads the dashboard uses when a repository offers them.
BATCHED_READS: Final = (
    "first_activated_counts",
    "committed_totals",
    "active_counts",
    "ever_active_counts",
    "retained_counts",
    "window_totals",
)


class _RecordingRepository:
    def __init__(
        self, name: str, repository: Any, calls: list[_Call], hidden: frozenset[str]
    ) -> None:
        self._name = name
        self._repository = repository
        self._calls = calls
        self._hidden = hidden

    def __getattr__(self, method: str) -> Any:
        if method in self._hidden:
            raise AttributeError(method)
        target = getattr(self._repository, method)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            answer = target(*args, **kwargs)
            shown = args[0] if len(args) == 1 and not kwargs else (args, kwargs)
            self._calls.append(_Call(f"{self._name}.{method}", shown, answer))
            return answer

        return call


class _Recording:
    """A store whose repositories record every read; missing ones come from ``fallback``.
    A batched read ``like`` lacks is hidden, so that both stores are read the same way."""

    def __init__(self, store: Any, fallback: Any, calls: list[_Call], like: Any) -> None:
        for name in STORE_TYPES:
            repository = getattr(store, name, None)
            if repository is None:
                repository = getattr(fallback, name)
            model = getattr(like, name, None)
            if model is None:
                model = getattr(fallback, name)
            hidden = frozenset(m for m in BATCHED_READS if not hasattr(model, m))
            setattr(self, name, _RecordingRepository(name, repository, calls, hidden))


def compare_dashboards(
    store: Any, reference: Any, objects: Iterable[Any], **arguments: Any
) -> None:
    """Raise :class:`ContractViolation` if ``dashboard(store, **arguments)`` differs from
    ``dashboard(reference, **arguments)``, naming the first read whose answer differs.

    ``objects`` are the data both stores hold (to describe the objects involved); a
    repository ``store`` lacks is read from ``reference``.
    """
    expected_calls: list[_Call] = []
    got_calls: list[_Call] = []
    recorded_reference: Any = _Recording(reference, reference, expected_calls, store)
    recorded_store: Any = _Recording(store, reference, got_calls, store)
    expected = dashboard(recorded_reference, **arguments)
    got = dashboard(recorded_store, **arguments)
    if got != expected:
        _explain_dashboard(expected, got, expected_calls, got_calls, objects)


def _explain_dashboard(
    expected: Any,
    got: Any,
    expected_calls: list[_Call],
    got_calls: list[_Call],
    objects: Iterable[Any],
) -> None:
    """Raise a ContractViolation naming the first read whose answer differs (or the figure)."""
    figures = [
        f.name
        for f in attrs.fields(type(expected))
        if getattr(expected, f.name) != getattr(got, f.name)
    ]
    by_id = {o.id: o for o in objects}
    for want, have in zip(expected_calls, got_calls, strict=False):
        if want.read != have.read or want.normalised() != have.normalised():
            ids: set[str] = set()
            for answer in (want.normalised(), have.normalised()):
                if isinstance(answer, list):
                    ids |= {i for i in answer if isinstance(i, str)}
            if isinstance(want.normalised(), list) and isinstance(have.normalised(), list):
                ids = set(want.normalised()) ^ set(have.normalised()) or ids
            raise ContractViolation(
                f"dashboard ({', '.join(figures)}): {want.read}",
                want.arguments,
                want.normalised(),
                have.normalised(),
                _describe_ids(ids, by_id),
            )
    raise ContractViolation(
        f"dashboard ({', '.join(figures)})",
        figures,
        [getattr(expected, f) for f in figures],
        [getattr(got, f) for f in figures],
    )


# -- random steps on two stores -------------------------------------------------------------


class StoreComparison(RuleBasedStateMachine):
    """Random adds, saves, finds and counts on a host's store and on InMemoryStore alike.

    Subclass it with ``store_factory`` set (a callable building a new, empty store)
    and run ``YourMachine.TestCase``; :class:`StoreContract` runs it for you.
    """

    store_factory: ClassVar[StoreFactory]
    #: The repositories the host's store has; the others are kept by the reference only.
    repositories: ClassVar[tuple[str, ...]] = tuple(STORE_TYPES)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Each subclass's ``TestCase`` runs under :data:`KIT_SETTINGS`."""
        super().__init_subclass__(**kwargs)
        cls.TestCase.settings = settings(KIT_SETTINGS)

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
        self.pending = [(name, o) for name in STORE_TYPES for o in getattr(dataset, name)]

    @precondition(lambda self: bool(self.pending))
    @rule()
    def add_next(self) -> None:
        """Both stores add the next object of the dataset."""
        name, obj = self.pending.pop(0)
        getattr(self.reference, name).add(obj)
        if name in self.repositories:
            getattr(self.host, name).add(obj)

    @precondition(lambda self: "members" in self.repositories and len(self.reference.members) > 0)
    @rule(data=st.data())
    def move_a_member(self, data: st.DataObject) -> None:
        """Both stores save the same member moved to a status its table allows."""
        members: Sequence[Member] = sorted(self.reference.members, key=lambda m: m.id)
        member = data.draw(st.sampled_from(members), label="member")
        targets = sorted(MEMBERSHIP_LIFECYCLE.allowed(member.status), key=lambda s: s.value)
        if not targets:
            return
        to = data.draw(st.sampled_from(targets), label="to")
        # After its last status, plan or dependent change (a cancel before a recorded
        # plan or dependent change is refused), and after its last charge, recorded or still
        # to come: no charge may follow a cancellation, and a charge's price due is
        # that of the newest billing date billable at its instant, which a Suspend
        # before it could change (a charge of the right amount would then be refused).
        # After the offers of the member's plans from a template too: a move stamped
        # before one could leave it no offer of a members-only template.
        last = member.last_changed_at
        if self.dataset is not None:
            charges = [
                p.at
                for p in self.dataset.payments
                if p.member_id == member.id and p.kind is PaymentKind.CHARGE
            ]
            offers = [
                p.created_at + timedelta(seconds=1)
                for p in self.dataset.payment_plans
                if p.member_id == member.id and p.template_id is not None
            ]
            last = max([last, *charges, *offers])
        later = last + timedelta(seconds=data.draw(st.integers(0, 10**7)))
        moved = member.transition(to, at=later, reason="contract")
        self.reference.members.save(moved)
        self.host.members.save(moved)

    def _compare(self, name: str, query: Any, *, total: bool = False) -> None:
        host, reference = getattr(self.host, name), getattr(self.reference, name)
        by_id = {o.id: o for o in reference}
        want, got = [o.id for o in reference.find(query)], [o.id for o in host.find(query)]
        if got != want:
            raise ContractViolation(
                f"{name}.find", query, want, got, _describe_ids(set(want) ^ set(got), by_id)
            )
        if host.count(query) != len(want):
            raise ContractViolation(f"{name}.count", query, len(want), host.count(query))
        if total and _nonzero(host.total(query)) != _nonzero(reference.total(query)):
            raise ContractViolation(
                f"{name}.total",
                query,
                _nonzero(reference.total(query)),
                _nonzero(host.total(query)),
                _describe_ids(want, by_id),
            )

    @precondition(lambda self: self.dataset is not None and "members" in self.repositories)
    @rule(data=st.data())
    def compare_members(self, data: st.DataObject) -> None:
        """The same member query gives the same ids and count on both stores."""
        assert self.dataset is not None
        queries = _judged(
            sps.member_queries(self.dataset), "members", self.repositories.__contains__
        )
        self._compare("members", data.draw(queries, label="query"))

    @precondition(lambda self: "members" in self.repositories and len(self.reference.members) > 0)
    @rule()
    def compare_at_boundaries(self) -> None:
        """Active at and ever Active before each instant a member changed, exactly on it,
        agree on both stores (indexes kept current by add and save)."""
        for member in sorted(self.reference.members, key=lambda m: m.id):
            for change in member.history:
                scope = frozenset({member.practice_id})
                self._compare("members", MemberQuery(practices=scope, active_at=change.at))
                query = MemberQuery(practices=scope, ever_active_before=change.at)
                self._compare("members", query)

    @precondition(lambda self: self.dataset is not None and "payments" in self.repositories)
    @rule(data=st.data())
    def compare_payments(self, data: st.DataObject) -> None:
        """The same payment query gives the same ids, count and totals on both stores."""
        assert self.dataset is not None
        query = data.draw(sps.payment_queries(self.dataset), label="query")
        self._compare("payments", query, total=True)

    @invariant()
    def same_sizes(self) -> None:
        """Both stores hold as many objects of each kind."""
        if self.host is None:
            return
        for name in (
            "practices",
            "staff_users",
            "membership_plans",
            "campaigns",
            "payment_plan_templates",
        ):
            if name not in self.repositories:
                continue
            want = len(getattr(self.reference, name))
            got = getattr(self.host, name).count(ScopeQuery())
            if got != want:
                raise ContractViolation(f"{name}.count", ScopeQuery(), want, got)
