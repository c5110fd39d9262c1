"""Repository protocols: what a host implements so the KPIs and reports can read its data.

Protocols only. A host writes one class per aggregate (or one class serving
several) and hands the library a :class:`Store`: an object whose attributes are
the repositories. :class:`smilepass_core.InMemoryStore` is the reference
implementation; ``smilepass_core.testing.contracts`` checks a host's against it.

Reads take a query spec from :mod:`smilepass_core.queries` (each has
``matches(obj)``, so a host can filter in Python before it pushes work to SQL).
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Protocol, TypeVar, cast, runtime_checkable

from smilepass_core.domain import (
    Campaign,
    Member,
    MembershipPlan,
    Payment,
    PaymentKind,
    PaymentPlan,
    PaymentPlanTemplate,
    Practice,
    Referral,
    StaffUser,
)
from smilepass_core.domain.overdue import DueCharge
from smilepass_core.errors import InvalidRecord, InvalidValue, SmilepassError
from smilepass_core.money import Money
from smilepass_core.queries import (
    MemberQuery,
    Order,
    PaymentPlanQuery,
    PaymentQuery,
    ReferralQuery,
    ScopeQuery,
)

__all__ = [
    "STORE_TYPES",
    "CampaignRepository",
    "MemberBoundaryReader",
    "MemberRepository",
    "MemberSeriesReader",
    "MembershipPlanRepository",
    "PaymentPlanRepository",
    "PaymentPlanSeriesReader",
    "PaymentPlanTemplateRepository",
    "PaymentRepository",
    "PaymentWindowReader",
    "PracticeRepository",
    "ReadRepository",
    "ReferralRepository",
    "StaffUserRepository",
    "Store",
    "UnpaidChargesReader",
    "WriteRepository",
    "as_record_error",
    "load_order",
    "load_plan",
    "record_label",
]

T_co = TypeVar("T_co", covariant=True)
T_contra = TypeVar("T_contra", contravariant=True)
Q_contra = TypeVar("Q_contra", contravariant=True)


class ReadRepository(Protocol[T_co, Q_contra]):
    """Protocol: read one aggregate by id or by query."""

    def get(self, id: str) -> T_co:
        """The object with ``id``; raises :class:`~smilepass_core.errors.NotFound`."""
        ...

    def find(self, query: Q_contra, *, order: Order | None = None) -> Sequence[T_co]:
        """The objects matching ``query``, sorted and paged by ``order`` (ties by id)."""
        ...

    def count(self, query: Q_contra) -> int:
        """How many objects match ``query`` (paging does not apply)."""
        ...


class WriteRepository(Protocol[T_contra]):
    """Protocol: a repository that also keeps objects, each with a version."""

    def add(self, obj: T_contra) -> None:
        """Keep a new object at version 1; raises
        :class:`~smilepass_core.errors.DuplicateId` if the id is taken."""
        ...

    def save(self, obj: T_contra, *, expected_version: int | None = None) -> None:
        """Replace the object with ``obj.id`` and add one to its version.

        Raises:
            NotFound: no object with that id.
            VersionConflict: ``expected_version`` (the version the caller read) is not the
                kept one: another write came first.
            RuleViolation: ``practice_change`` or ``stale_history`` (see
                :func:`~smilepass_core.domain.check_successor`).
        """
        ...

    def version(self, id: str) -> int:
        """How many writes the object with ``id`` has had: 1 after ``add``, one more per
        ``save``; raises :class:`~smilepass_core.errors.NotFound`."""
        ...


class PracticeRepository(ReadRepository[Practice, ScopeQuery], Protocol):
    """Protocol: practices (``ScopeQuery.practices`` filters on the practice id)."""


class StaffUserRepository(ReadRepository[StaffUser, ScopeQuery], Protocol):
    """Protocol: staff users."""


class MembershipPlanRepository(ReadRepository[MembershipPlan, ScopeQuery], Protocol):
    """Protocol: membership plans."""


class CampaignRepository(ReadRepository[Campaign, ScopeQuery], Protocol):
    """Protocol: campaigns."""


class PaymentPlanTemplateRepository(ReadRepository[PaymentPlanTemplate, ScopeQuery], Protocol):
    """Protocol: payment-plan templates."""


class MemberRepository(ReadRepository[Member, MemberQuery], Protocol):
    """Protocol: members. The dashboard calls ``count`` with ``active_at``,
    ``ever_active_before``, ``first_activated_in`` and ``retained_until``, and
    ``find`` ordered by ``-first_activated_at`` with a small limit: make those fast."""


@runtime_checkable
class UnpaidChargesReader(Protocol):
    """Protocol, optional: a member repository that also lists a practice's unpaid
    membership charges at an instant from what it keeps. The aged receivables read it
    when a store's ``members`` has it (``isinstance(store.members, UnpaidChargesReader)``);
    otherwise they judge each member from the ledger."""

    def unpaid_charges(
        self, *, practice_id: str, at: datetime
    ) -> Sequence[tuple[Member, Sequence[DueCharge]]] | None:
        """Each member of ``practice_id`` with unpaid membership charges at ``at``, by id,
        with those charges as :func:`~smilepass_core.domain.overdue.unpaid_charges` lists
        the membership's (payment plans apart); ``None`` when it cannot answer at ``at``
        (the caller then judges each member)."""
        ...


@runtime_checkable
class MemberSeriesReader(Protocol):
    """Protocol, optional: a member repository that counts the New Members series of a
    set of practices in one call. The dashboard calls it when a store's ``members`` has
    the method, and otherwise one ``count`` per bucket (docs/repositories.md, "Optional
    batched series reads")."""

    def first_activated_counts(
        self, *, practices: frozenset[str] | None, edges: Sequence[datetime]
    ) -> Sequence[int]:
        """Per ``[edges[k], edges[k + 1])``: the members of ``practices`` (every practice
        for ``None``) first Active in it, ``count(MemberQuery(practices=...,
        first_activated_in=DateRange(edges[k], edges[k + 1], tz)))``.

        Raises:
            NaiveDatetime: an edge without a time zone.
            InvalidValue: ``edges`` going back in time, or a bad practice id (naming the
                argument).
        """
        ...


@runtime_checkable
class MemberBoundaryReader(Protocol):
    """Protocol, optional: a member repository that answers the dashboard's member counts
    of a set of practices at many instants in one call each. The dashboard calls each
    method a store's ``members`` has, and otherwise one ``count`` per instant or pair
    (docs/repositories.md, "Optional batched boundary reads")."""

    def active_counts(
        self, *, practices: frozenset[str] | None, at: Sequence[datetime]
    ) -> Sequence[int]:
        """Per instant ``a`` of ``at`` (any order, repeats allowed):
        ``count(MemberQuery(practices=..., active_at=a))``.

        Raises:
            NaiveDatetime: an instant without a time zone.
            InvalidValue: anything else not an instant, or a bad practice id.
        """
        ...

    def ever_active_counts(
        self, *, practices: frozenset[str] | None, before: Sequence[datetime]
    ) -> Sequence[int]:
        """Per instant ``b`` of ``before``: ``count(MemberQuery(practices=...,
        ever_active_before=b))``.

        Raises:
            NaiveDatetime: an instant without a time zone.
            InvalidValue: anything else not an instant, or a bad practice id.
        """
        ...

    def retained_counts(
        self, *, practices: frozenset[str] | None, spans: Sequence[tuple[datetime, datetime]]
    ) -> Sequence[int]:
        """Per pair ``(a, b)`` of ``spans``, either way round: ``count(MemberQuery(
        practices=..., active_at=min(a, b), retained_until=max(a, b)))``.

        Raises:
            NaiveDatetime: an instant without a time zone.
            InvalidValue: an item not a pair of instants, or a bad practice id.
        """
        ...


@runtime_checkable
class PaymentPlanSeriesReader(Protocol):
    """Protocol, optional: a payment-plan repository that sums the Committed Payments
    series of a set of practices in one call. The dashboard calls it when a store's
    ``payment_plans`` has the method, and otherwise one ``total`` per bucket
    (docs/repositories.md, "Optional batched series reads")."""

    def committed_totals(
        self, *, practices: frozenset[str] | None, edges: Sequence[datetime]
    ) -> Sequence[Mapping[str, Money]]:
        """Per ``[edges[k], edges[k + 1])``: ``total(PaymentPlanQuery(practices=...,
        committed_in=DateRange(edges[k], edges[k + 1], tz)))``, a currency with nothing
        committed absent or zero.

        Raises:
            NaiveDatetime: an edge without a time zone.
            InvalidValue: ``edges`` going back in time, or a bad practice id.
        """
        ...


@runtime_checkable
class PaymentWindowReader(Protocol):
    """Protocol, optional: a payment repository that totals the revenue of a set of
    practices over many windows in one call. The dashboard calls it when a store's
    ``payments`` has the method, and otherwise one ``total`` per window
    (docs/repositories.md, "Optional batched boundary reads")."""

    def window_totals(
        self, *, practices: frozenset[str] | None, windows: Sequence[tuple[datetime, datetime]]
    ) -> Sequence[Mapping[str, Money]]:
        """Per window ``(start, end)``: ``total(PaymentQuery(practices=...,
        time_range=DateRange(start, end, tz)))``, a currency with nothing in it absent
        or zero.

        Raises:
            NaiveDatetime: an instant without a time zone.
            InvalidValue: an item not a pair of instants, a window going back in time, or
                a bad practice id.
        """
        ...


class PaymentPlanRepository(ReadRepository[PaymentPlan, PaymentPlanQuery], Protocol):
    """Protocol: payment plans, with the sum of their totals."""

    def total(self, query: PaymentPlanQuery) -> Mapping[str, Money]:
        """Sum of ``total`` over the matching plans, per currency (a currency with no
        match may be absent or zero).

        The Committed Payments series calls it with ``practices`` and ``committed_in``.
        """
        ...


class PaymentRepository(ReadRepository[Payment, PaymentQuery], Protocol):
    """Protocol: the payment ledger (append-only: ``add``, no ``save``)."""

    def total(self, query: PaymentQuery) -> Mapping[str, Money]:
        """Sum of :attr:`Payment.signed` over the matching entries, per currency (a
        currency with no match may be absent or zero).

        Succeeded charges add, succeeded refunds subtract, failures add nothing.
        Total Revenue calls it with ``practices`` and ``time_range``.
        """
        ...


class ReferralRepository(ReadRepository[Referral, ReferralQuery], Protocol):
    """Protocol: referrals."""


class Store(Protocol):
    """Protocol: the repositories a host hands to the KPI calculator and the reports."""

    @property
    def practices(self) -> PracticeRepository: ...
    @property
    def staff_users(self) -> StaffUserRepository: ...
    @property
    def membership_plans(self) -> MembershipPlanRepository: ...
    @property
    def members(self) -> MemberRepository: ...
    @property
    def payment_plans(self) -> PaymentPlanRepository: ...
    @property
    def payments(self) -> PaymentRepository: ...
    @property
    def campaigns(self) -> CampaignRepository: ...
    @property
    def payment_plan_templates(self) -> PaymentPlanTemplateRepository: ...
    @property
    def referrals(self) -> ReferralRepository: ...


#: The store's repositories by attribute name, with the type each holds, in load order:
#: what an object refers to comes before it. The library's one registry of entity types;
#: record files, SQL schemas and the contract kit derive their tables from it.
STORE_TYPES: Mapping[str, type] = MappingProxyType(
    {
        "practices": Practice,
        "staff_users": StaffUser,
        "membership_plans": MembershipPlan,
        "campaigns": Campaign,
        "payment_plan_templates": PaymentPlanTemplate,
        "members": Member,
        "payment_plans": PaymentPlan,
        "referrals": Referral,
        "payments": Payment,
    }
)


def load_order(
    entries: Iterable[tuple[str, int, object]],
) -> list[tuple[str, int, object, str]]:
    """``(source, index, object)`` entries of a load as ``(source, index, object,
    repository name)``, in the order a store adds them: what an object refers to first
    (:data:`STORE_TYPES` order), the ledger in time order (charges before refunds at one
    instant, then by id), then by index.

    Raises:
        InvalidRecord: an object that is no store type, naming its source and index.
    """
    listed = list(entries)
    plan = load_plan([e[2] for e in listed], [e[1] for e in listed], [e[0] for e in listed])
    return [(*listed[k], name) for name, positions in plan for k in positions]


def load_plan(
    objects: Sequence[object],
    indices: Sequence[int] | None = None,
    sources: Sequence[str] | None = None,
) -> list[tuple[str, list[int]]]:
    """:func:`load_order` as positions in ``objects``.

    Args:
        objects: The objects of a load.
        indices: ``indices[k]`` is the index of ``objects[k]`` (``k`` when ``None``).
        sources: ``sources[k]`` is the source of ``objects[k]`` (its type's name when
            ``None``), named in an error.

    Returns:
        For each repository holding objects of the load, in :data:`STORE_TYPES` order,
        its name and the positions of its objects in the order a store adds them.

    Raises:
        InvalidRecord: an object that is no store type, naming its source and index.
    """
    names = list(STORE_TYPES.items())
    buckets: list[list[int]] = [[] for _ in names]
    known: dict[type, int] = {}  # each type's rank (-1: no store type)
    for k, obj in enumerate(objects):
        cls = type(obj)
        rank = known.get(cls)
        if rank is None:
            rank = known[cls] = next(
                (r for r, (_, kind) in enumerate(names) if isinstance(obj, kind)), -1
            )
        if rank < 0:
            error = InvalidValue("obj", obj, "is not a smilepass_core domain object")
            raise as_record_error(*record_label(objects, indices, sources, k), error)
        buckets[rank].append(k)
    plan: list[tuple[str, list[int]]] = []
    for (name, _), bucket in zip(names, buckets, strict=True):
        if indices is not None:
            bucket.sort(key=indices.__getitem__)
        if bucket:
            plan.append(
                (name, _in_time_order(objects, bucket, indices) if name == "payments" else bucket)
            )
    return plan


def record_label(
    objects: Sequence[object],
    indices: Sequence[int] | None,
    sources: Sequence[str] | None,
    k: int,
) -> tuple[str, int]:
    """The source and the index that name ``objects[k]`` of a load in an error, as
    :func:`load_plan` reads ``indices`` and ``sources``."""
    source = type(objects[k]).__name__ if sources is None else sources[k]
    return source, k if indices is None else indices[k]


def _in_time_order(
    objects: Sequence[object], ledger: list[int], indices: Sequence[int] | None
) -> list[int]:
    """The positions ``ledger`` of payments (in index order) in time order, a charge
    before a refund at one instant, then by id, then by index."""
    payments = cast(Sequence[Payment], objects)
    ats = [payments[k].at for k in ledger]
    order = sorted(range(len(ats)), key=ats.__getitem__)  # stable: index order kept
    ordered = [ledger[i] for i in order]
    ats = [ats[i] for i in order]
    del order

    def key(k: int) -> tuple[datetime, bool, str, int]:
        payment = payments[k]
        index = k if indices is None else indices[k]
        return (payment.at, payment.kind is PaymentKind.REFUND, payment.id, index)

    end = 0
    # Each position i whose instant repeats the one before.
    for i in itertools.compress(range(1, len(ats)), map(operator.eq, ats[1:], ats)):
        if i < end:
            continue  # in the run just sorted
        start, end = i - 1, i + 1
        while end < len(ats) and ats[end] == ats[start]:
            end += 1
        ordered[start:end] = sorted(ordered[start:end], key=key)
    return ordered


def as_record_error(source: str, index: int, error: SmilepassError) -> InvalidRecord:
    """``error`` as the :class:`InvalidRecord` of a load entry: its field, else its kind,
    else ``object``."""
    field = getattr(error, "field", None) or getattr(error, "kind", None) or "object"
    return InvalidRecord(source, index, str(field), str(error))
