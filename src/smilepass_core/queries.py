"""Query specs: frozen filters a host can push down to SQL or apply in Python.

Every spec has a ``matches(obj)`` method. A field left at ``None`` does not
filter; an empty set matches nothing. Sets of statuses accept host strings
(``{"active", "Failed"}``). Temporal predicates speak of **boundaries**: the
state at instant ``B`` is the state after every change stamped strictly before
``B`` (see ``docs/repositories.md``).

Sorting and paging: :class:`Order` names list columns (``"status"`` sorts
what needs action first: Failed first), ties are broken by id, and
:class:`Page` takes ``limit``/``offset``.
"""

from __future__ import annotations

import enum
import itertools
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Protocol, TypeVar, cast

import attrs

from smilepass_core._memo import MEMO_UP_TO, Memo
from smilepass_core.domain.invoices import check_grace_days
from smilepass_core.domain.lifecycle import Status
from smilepass_core.domain.members import Member, MembershipStatus
from smilepass_core.domain.overdue import is_overdue, overdue_instalments
from smilepass_core.domain.payment_plans import PaymentPlan, PaymentPlanStatus, PaymentType
from smilepass_core.domain.payments import Payment, PaymentKind, PaymentOutcome
from smilepass_core.domain.practices import MembershipPlan
from smilepass_core.domain.referrals import Referral, ReferralStatus
from smilepass_core.errors import InvalidValue
from smilepass_core.periods import DateRange, as_instant

__all__ = [
    "ACTION_ORDERS",
    "MEMBER_ACTION_ORDER",
    "PAYMENT_PLAN_ACTION_ORDER",
    "MemberQuery",
    "Order",
    "Page",
    "PaymentPlanQuery",
    "PaymentQuery",
    "ReferralQuery",
    "ScopeQuery",
    "SortKey",
    "apply_order",
    "check_order",
    "id_set",
    "read_instants",
    "read_spans",
    "series_edges",
    "sort_columns",
]

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)

#: The Membership list's status sort: what needs action first.
MEMBER_ACTION_ORDER: tuple[MembershipStatus, ...] = (
    MembershipStatus.FAILED,
    MembershipStatus.PENDING,
    MembershipStatus.SUSPENDED,
    MembershipStatus.ACTIVE,
    MembershipStatus.CANCELLED,
)
#: The Payment Plan list's status sort: Failed first, finished plans last.
PAYMENT_PLAN_ACTION_ORDER: tuple[PaymentPlanStatus, ...] = (
    PaymentPlanStatus.FAILED,
    PaymentPlanStatus.PENDING,
    PaymentPlanStatus.ACTIVE,
    PaymentPlanStatus.COMPLETED,
    PaymentPlanStatus.CANCELLED,
)
_REFERRAL_ORDER = (ReferralStatus.PENDING, ReferralStatus.CONVERTED, ReferralStatus.CANCELLED)
#: Each status set's "what needs action first" order (the list columns sort by it).
ACTION_ORDERS: Mapping[type, tuple[Any, ...]] = {
    MembershipStatus: MEMBER_ACTION_ORDER,
    PaymentPlanStatus: PAYMENT_PLAN_ACTION_ORDER,
    ReferralStatus: _REFERRAL_ORDER,
}
_ACTIVE = MembershipStatus.ACTIVE


# -- field converters ------------------------------------------------------------------


#: The collections a host passes most, read without the ABC checks.
_PLAIN = frozenset({set, frozenset, list, tuple})


def _ids(value: Any) -> Any:
    """An id or a collection of ids as a frozenset; anything else is left for
    :func:`_id_set` to refuse, naming the field."""
    if value is None or isinstance(value, frozenset):
        return value
    if isinstance(value, str):
        return frozenset((value,))
    if type(value) in _PLAIN or (
        isinstance(value, Iterable) and not isinstance(value, bytes | Mapping)
    ):
        try:
            return frozenset(value)
        except TypeError:  # an unhashable item
            return tuple(value)
    return value


#: Sets of several ids already found valid (a dashboard's queries name the same scope
#: object again and again): a set counts as checked only when it is that very object.
_valid_id_sets: Memo[frozenset[str], frozenset[str]] = Memo(64)


def _id_set(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    _check_ids(attribute.name, value)


def _check_ids(field: str, value: Any) -> None:
    """Refuse ``value`` unless it is ``None`` or a frozenset of ids, naming ``field``."""
    if value is None:
        return
    if type(value) is frozenset and _valid_id_sets.get(value) is value:
        return
    if not isinstance(value, frozenset):
        raise InvalidValue(field, value, "must be an id or a collection of ids")
    for item in value:
        if not isinstance(item, str):
            raise InvalidValue(field, item, "must be id strings")
        if not item or item != item.strip():
            # No kept id is blank or padded (domain ids refuse them): a blank form field
            # would match nothing in silence.
            raise InvalidValue(field, item, "must be non-blank ids without spaces around")
    if type(value) is frozenset and 1 < len(value) <= MEMO_UP_TO:
        _valid_id_sets.put(value, value)


def id_set(value: Any, field: str) -> frozenset[str] | None:
    """``value`` (``None``, an id or a collection of ids) as a query keeps it: ``None`` or
    a frozenset of ids.

    Raises:
        InvalidValue: naming ``field``, for anything else, or a blank or padded id.
    """
    ids = _ids(value)
    _check_ids(field, ids)
    return cast("frozenset[str] | None", ids)


def _optional_text(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise InvalidValue(attribute.name, value, "must be a string or None")


def _parse_set(value: Any, parse: Callable[[Any], T]) -> frozenset[T] | None:
    if value is None:
        return None
    if type(value) not in _PLAIN and (
        isinstance(value, str | Status | enum.Enum) or not isinstance(value, Iterable)
    ):
        value = (value,)
    # A generator, not map: a StopIteration raised inside parse is an error, not the end.
    return frozenset(parse(v) for v in value)


def _enum_value(kind: type[E], value: Any) -> E:
    if isinstance(value, kind):
        return value
    try:
        return kind(str(value).strip().lower())
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise InvalidValue(kind.__name__, value, f"unknown; allowed: {allowed}") from None


def _member_statuses(value: Any) -> frozenset[MembershipStatus] | None:
    return _parse_set(value, MembershipStatus.parse)


def _plan_statuses(value: Any) -> frozenset[PaymentPlanStatus] | None:
    return _parse_set(value, PaymentPlanStatus.parse)


def _referral_statuses(value: Any) -> frozenset[ReferralStatus] | None:
    return _parse_set(value, ReferralStatus.parse)


def _payment_types(value: Any) -> frozenset[PaymentType] | None:
    return _parse_set(value, lambda v: _enum_value(PaymentType, v))


def _kinds(value: Any) -> frozenset[PaymentKind] | None:
    return _parse_set(value, lambda v: _enum_value(PaymentKind, v))


def _outcomes(value: Any) -> frozenset[PaymentOutcome] | None:
    return _parse_set(value, lambda v: _enum_value(PaymentOutcome, v))


def _sources(value: Any) -> frozenset[tuple[str, str]] | None:
    if value is None:
        return None
    if not isinstance(value, Iterable) or isinstance(value, str):
        raise InvalidValue("sources", value, "must be ('member' | 'payment_plan', id) pairs")
    pairs = list(value)
    for pair in pairs:
        if not isinstance(pair, Iterable) or isinstance(pair, str):
            raise InvalidValue("sources", pair, "must be ('member' | 'payment_plan', id) pairs")
    result = frozenset(tuple(v) for v in pairs)
    for source in result:
        if len(source) != 2 or source[0] not in ("member", "payment_plan"):
            raise InvalidValue("sources", source, "must be ('member' | 'payment_plan', id) pairs")
    return result


def _as_of(value: Any) -> datetime | None:
    return None if value is None else as_instant(value, "as_of")


def _active_at(value: Any) -> datetime | None:
    return None if value is None else as_instant(value, "active_at")


def _retained_until(value: Any) -> datetime | None:
    return None if value is None else as_instant(value, "retained_until")


def _counting_at(value: Any) -> datetime | None:
    return None if value is None else as_instant(value, "counting_at")


def _ever_active_before(value: Any) -> datetime | None:
    return None if value is None else as_instant(value, "ever_active_before")


def _optional_day(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, date) or isinstance(value, datetime)):
        raise InvalidValue(attribute.name, value, "must be a date")


def _optional_range(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, DateRange):
        raise InvalidValue(attribute.name, value, "must be a DateRange")


def _grace(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    check_grace_days(value, attribute.name)


def _optional_bool(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, bool):
        raise InvalidValue(attribute.name, value, "must be True, False or None")


def _in(allowed: frozenset[T] | None, value: T) -> bool:
    return allowed is None or value in allowed


def _between(first: date | None, last: date | None, value: date) -> bool:
    return (first is None or first <= value) and (last is None or value <= last)


def _check_overdue(query: MemberQuery | PaymentPlanQuery) -> None:
    if query.overdue is not None and query.as_of is None:
        raise InvalidValue("as_of", None, "is required when filtering on overdue")


def _check_start(query: MemberQuery | ReferralQuery) -> None:
    if query.start_from and query.start_until and query.start_until < query.start_from:
        raise InvalidValue("start_until", query.start_until, "is before start_from")


def _changed_in(member: Member, span: DateRange) -> bool:
    return any(c.at in span for c in member.history) or any(
        c.at in span for c in member.plan_changes
    )


#: Per query type: a getter of its filtering fields (``practices`` aside), their names
#: and their defaults, so :func:`_form` compares them in C.
_FIELDS: dict[type, tuple[Callable[[Any], tuple[Any, ...]], tuple[str, ...], tuple[Any, ...]]] = {}
_NO_FORM: frozenset[str] = frozenset()


def _form(query: Any) -> frozenset[str]:
    """The fields of ``query`` not at their defaults, ``practices`` aside."""
    cls = type(query)
    known = _FIELDS.get(cls)
    if known is None:
        fields = [f for f in attrs.fields(cls) if f.name != "practices"]
        names = tuple(f.name for f in fields)
        getter = operator.attrgetter(*names)  # one name: the value, not a tuple
        known = _FIELDS[cls] = (
            getter if len(names) > 1 else lambda q: (getter(q),),
            names,
            tuple(f.default for f in fields),
        )
    get, names, defaults = known
    values = get(query)
    if values == defaults:
        return _NO_FORM
    return frozenset(itertools.compress(names, map(operator.ne, values, defaults)))


def series_edges(edges: Iterable[Any]) -> list[datetime]:
    """The edges of a batched series read (``first_activated_counts``,
    ``committed_totals``) as aware instants.

    Raises:
        NaiveDatetime: an edge without a time zone.
        InvalidValue: an edge that is no instant, or edges going back in time.
    """
    points = read_instants(edges, "edges")
    for a, b in itertools.pairwise(points):
        if b < a:
            raise InvalidValue("edges", [str(p) for p in points], "must not go back in time")
    return points


def read_instants(values: Iterable[Any], name: str) -> list[datetime]:
    """The instants of a batched read (``active_counts``, ``ever_active_counts``, and
    :func:`series_edges`) as aware instants, in the order given.

    Raises:
        NaiveDatetime: an instant without a time zone.
        InvalidValue: a value that is no instant (naming ``name``).
    """
    return [as_instant(v, name) for v in values]


def read_spans(
    values: Iterable[Any], name: str, *, ordered: bool = False
) -> list[tuple[datetime, datetime]]:
    """The ``(start, end)`` pairs of a batched read (``retained_counts``,
    ``window_totals``) as aware instants, in the order given; with ``ordered``, each
    ``end`` at or after its ``start``.

    Raises:
        NaiveDatetime: an instant without a time zone.
        InvalidValue: a value that is not a pair of instants, or (``ordered``) a pair
            going back in time (naming ``name``).
    """
    spans: list[tuple[datetime, datetime]] = []
    for value in values:
        if not isinstance(value, tuple) or len(value) != 2:
            raise InvalidValue(name, value, "must be a (start, end) pair of instants")
        start, end = as_instant(value[0], name), as_instant(value[1], name)
        if ordered and end < start:
            raise InvalidValue(name, value, "must not go back in time")
        spans.append((start, end))
    return spans


# -- specs -------------------------------------------------------------------------------


@attrs.frozen
class ScopeQuery:
    """Practices, staff users, membership plans or campaigns: by practice and/or id."""

    practices: frozenset[str] | None = attrs.field(default=None, converter=_ids, validator=_id_set)
    ids: frozenset[str] | None = attrs.field(default=None, converter=_ids, validator=_id_set)

    def matches(self, obj: Any) -> bool:
        """True when ``obj`` (anything with ``id`` and ``practice_id``, or a Practice) matches."""
        practice = getattr(obj, "practice_id", obj.id)
        return _in(self.practices, practice) and _in(self.ids, obj.id)


@attrs.frozen
class MemberQuery:
    """Filter for members (the Membership list and the KPI reads).

    Attributes:
        practices, plans, campaigns, staff_users, ids: id sets.
        statuses: current statuses (strings are parsed).
        overdue: with ``as_of`` (and ``grace_days``), keep the overdue (True) or the
            not overdue (False) members; see :mod:`smilepass_core.domain.overdue`.
        start_from, start_until: start-date bounds, both included.
        name_contains: case-insensitive text in the account holder's name.
        active_at: Active at this boundary (after every change strictly before it).
        retained_until: also Active at this later boundary (with ``active_at``: retained).
        ever_active_before: first became Active strictly before this instant.
        first_activated_in: first became Active inside this half-open range.
        counting_at: counts toward recurring revenue at this boundary (Active or Failed,
            :data:`~smilepass_core.domain.COUNTING_STATUSES`).
        counting_plans: with ``counting_at``: on one of these plans at that boundary
            (:meth:`~smilepass_core.domain.Member.plan_before`).
        changed_in: a status change or a plan change is stamped inside this half-open range.
    """

    practices: frozenset[str] | None = attrs.field(default=None, converter=_ids, validator=_id_set)
    plans: frozenset[str] | None = attrs.field(default=None, converter=_ids, validator=_id_set)
    statuses: frozenset[MembershipStatus] | None = attrs.field(
        default=None, converter=_member_statuses
    )
    overdue: bool | None = attrs.field(default=None, validator=_optional_bool)
    as_of: datetime | None = attrs.field(default=None, converter=_as_of)
    grace_days: int = attrs.field(default=0, validator=_grace)
    start_from: date | None = attrs.field(default=None, validator=_optional_day)
    start_until: date | None = attrs.field(default=None, validator=_optional_day)
    campaigns: frozenset[str] | None = attrs.field(default=None, converter=_ids, validator=_id_set)
    staff_users: frozenset[str] | None = attrs.field(
        default=None, converter=_ids, validator=_id_set
    )
    name_contains: str | None = attrs.field(default=None, validator=_optional_text)
    active_at: datetime | None = attrs.field(default=None, converter=_active_at)
    retained_until: datetime | None = attrs.field(default=None, converter=_retained_until)
    ever_active_before: datetime | None = attrs.field(default=None, converter=_ever_active_before)
    first_activated_in: DateRange | None = attrs.field(default=None, validator=_optional_range)
    ids: frozenset[str] | None = attrs.field(default=None, converter=_ids, validator=_id_set)
    counting_at: datetime | None = attrs.field(default=None, converter=_counting_at)
    counting_plans: frozenset[str] | None = attrs.field(
        default=None, converter=_ids, validator=_id_set
    )
    changed_in: DateRange | None = attrs.field(default=None, validator=_optional_range)

    def __attrs_post_init__(self) -> None:
        _check_overdue(self)
        _check_start(self)
        if self.counting_plans is not None and self.counting_at is None:
            raise InvalidValue("counting_at", None, "is required when filtering on counting_plans")

    def form(self) -> frozenset[str]:
        """The names of the fields that filter, ``practices`` aside: a store recognises the
        reads it answers from an index by this set."""
        return _form(self)

    def matches(
        self,
        member: Member,
        *,
        plans: Iterable[PaymentPlan] = (),
        timezone: str = "UTC",
        payments: Iterable[Payment] = (),
        membership_plans: Mapping[str, MembershipPlan] | None = None,
    ) -> bool:
        """True when ``member`` passes every filter.

        Args:
            member: The member.
            plans: The member's payment plans (needed only for ``overdue``).
            timezone: The member's practice time zone (needed only for ``overdue``).
            payments: The member's ledger (needed only for ``overdue``).
            membership_plans: Membership plans by id, at least the member's (needed only
                for ``overdue``; see :func:`~smilepass_core.domain.overdue.invoices_at`).
        """
        if not (
            _in(self.practices, member.practice_id)
            and _in(self.ids, member.id)
            and _in(self.plans, member.plan_id)
            and _in(self.statuses, member.status)
            and _in(self.campaigns, member.campaign_id)
            and _in(self.staff_users, member.staff_user_id)
            and _between(self.start_from, self.start_until, member.start_date)
        ):
            return False
        if (
            self.name_contains is not None
            and self.name_contains.casefold() not in member.account_holder.name.casefold()
        ):
            return False
        for boundary in (self.active_at, self.retained_until):
            if boundary is not None and member.status_before(boundary) is not _ACTIVE:
                return False
        if self.counting_at is not None and not (
            member.counts_before(self.counting_at)
            and _in(self.counting_plans, member.plan_before(self.counting_at))
        ):
            return False
        if self.changed_in is not None and not _changed_in(member, self.changed_in):
            return False
        if self.ever_active_before is not None or self.first_activated_in is not None:
            first = member.first_activated_at
            if self.ever_active_before is not None and (
                first is None or first >= self.ever_active_before
            ):
                return False
            if self.first_activated_in is not None and (
                first is None or first not in self.first_activated_in
            ):
                return False
        if self.overdue is not None:
            assert self.as_of is not None
            late = is_overdue(
                member,
                plans,
                at=self.as_of,
                timezone=timezone,
                grace_days=self.grace_days,
                membership_plans=membership_plans,
                payments=payments,
            )
            if late is not self.overdue:
                return False
        return True


@attrs.frozen
class PaymentPlanQuery:
    """Filter for payment plans (the Payment Plan list and the Committed Payments series).

    Attributes:
        practices, members, ids: id sets (``members``: the plans' ``member_id``).
        statuses, payment_types: current statuses and payment types (strings parsed).
        archived: archived (True) or not (False).
        overdue: with ``as_of``: plans with (True) or without (False) an overdue instalment.
        committed_in: the patient committed (first Active, or Completed at once) in this range.
        name_contains: case-insensitive text in the patient's name.
    """

    practices: frozenset[str] | None = attrs.field(default=None, converter=_ids, validator=_id_set)
    statuses: frozenset[PaymentPlanStatus] | None = attrs.field(
        default=None, converter=_plan_statuses
    )
    payment_types: frozenset[PaymentType] | None = attrs.field(
        default=None, converter=_payment_types
    )
    archived: bool | None = attrs.field(default=None, validator=_optional_bool)
    overdue: bool | None = attrs.field(default=None, validator=_optional_bool)
    as_of: datetime | None = attrs.field(default=None, converter=_as_of)
    grace_days: int = attrs.field(default=0, validator=_grace)
    committed_in: DateRange | None = attrs.field(default=None, validator=_optional_range)
    members: frozenset[str] | None = attrs.field(default=None, converter=_ids, validator=_id_set)
    name_contains: str | None = attrs.field(default=None, validator=_optional_text)
    ids: frozenset[str] | None = attrs.field(default=None, converter=_ids, validator=_id_set)

    def __attrs_post_init__(self) -> None:
        _check_overdue(self)

    def form(self) -> frozenset[str]:
        """The names of the fields that filter, ``practices`` aside (see
        :meth:`MemberQuery.form`)."""
        return _form(self)

    def matches(self, plan: PaymentPlan, *, timezone: str = "UTC") -> bool:
        """True when ``plan`` passes every filter (``timezone``: its practice's, for overdue)."""
        if not (
            _in(self.practices, plan.practice_id)
            and _in(self.ids, plan.id)
            and _in(self.statuses, plan.status)
            and _in(self.payment_types, plan.payment_type)
            and (self.members is None or plan.member_id in self.members)
            and (self.archived is None or plan.is_archived is self.archived)
        ):
            return False
        if (
            self.name_contains is not None
            and self.name_contains.casefold() not in plan.patient.name.casefold()
        ):
            return False
        if self.committed_in is not None:
            committed = plan.committed_at
            if committed is None or committed not in self.committed_in:
                return False
        if self.overdue is not None:
            assert self.as_of is not None
            late = bool(
                overdue_instalments(
                    plan, at=self.as_of, timezone=timezone, grace_days=self.grace_days
                )
            )
            if late is not self.overdue:
                return False
        return True


@attrs.frozen
class PaymentQuery:
    """Filter for ledger entries (revenue, exports).

    Attributes:
        practices, ids: id sets.
        sources: ``("member", id)`` / ``("payment_plan", id)`` pairs.
        kinds, outcomes: charge/refund, succeeded/failed (strings parsed).
        time_range: payment time inside this half-open range.
    """

    practices: frozenset[str] | None = attrs.field(default=None, converter=_ids, validator=_id_set)
    sources: frozenset[tuple[str, str]] | None = attrs.field(default=None, converter=_sources)
    kinds: frozenset[PaymentKind] | None = attrs.field(default=None, converter=_kinds)
    outcomes: frozenset[PaymentOutcome] | None = attrs.field(default=None, converter=_outcomes)
    time_range: DateRange | None = attrs.field(default=None, validator=_optional_range)
    ids: frozenset[str] | None = attrs.field(default=None, converter=_ids, validator=_id_set)

    def form(self) -> frozenset[str]:
        """The names of the fields that filter, ``practices`` aside (see
        :meth:`MemberQuery.form`)."""
        return _form(self)

    def matches(self, payment: Payment) -> bool:
        """True when ``payment`` passes every filter."""
        return (
            _in(self.practices, payment.practice_id)
            and _in(self.ids, payment.id)
            and _in(self.sources, payment.source)
            and _in(self.kinds, payment.kind)
            and _in(self.outcomes, payment.outcome)
            and (self.time_range is None or payment.at in self.time_range)
        )


@attrs.frozen
class ReferralQuery:
    """Filter for referrals (referral tracking, the weekly check).

    Attributes:
        practices, campaigns, staff_users, referring_members, ids: id sets.
        statuses: current statuses (strings parsed).
        start_from, start_until: start-date bounds, both included.
        converted_in: converted inside this half-open range.
    """

    practices: frozenset[str] | None = attrs.field(default=None, converter=_ids, validator=_id_set)
    campaigns: frozenset[str] | None = attrs.field(default=None, converter=_ids, validator=_id_set)
    staff_users: frozenset[str] | None = attrs.field(
        default=None, converter=_ids, validator=_id_set
    )
    statuses: frozenset[ReferralStatus] | None = attrs.field(
        default=None, converter=_referral_statuses
    )
    start_from: date | None = attrs.field(default=None, validator=_optional_day)
    start_until: date | None = attrs.field(default=None, validator=_optional_day)
    converted_in: DateRange | None = attrs.field(default=None, validator=_optional_range)
    referring_members: frozenset[str] | None = attrs.field(
        default=None, converter=_ids, validator=_id_set
    )
    ids: frozenset[str] | None = attrs.field(default=None, converter=_ids, validator=_id_set)

    def __attrs_post_init__(self) -> None:
        _check_start(self)

    def matches(self, referral: Referral) -> bool:
        """True when ``referral`` passes every filter."""
        if not (
            _in(self.practices, referral.practice_id)
            and _in(self.ids, referral.id)
            and _in(self.campaigns, referral.campaign_id)
            and _in(self.staff_users, referral.staff_user_id)
            and _in(self.referring_members, referral.referring_member_id)
            and _in(self.statuses, referral.status)
            and _between(self.start_from, self.start_until, referral.start_date)
        ):
            return False
        if self.converted_in is not None:
            converted = referral.converted_at
            return converted is not None and converted in self.converted_in
        return True


# -- sorting and paging ------------------------------------------------------------------


def _column(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(attribute.name, value, "must be a column name")


def _flag(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise InvalidValue(attribute.name, value, "must be True or False")


@attrs.frozen
class SortKey:
    """One sort column, ascending unless ``descending``."""

    column: str = attrs.field(validator=_column)
    descending: bool = attrs.field(default=False, validator=_flag)

    @classmethod
    def parse(cls, text: str) -> SortKey:
        """``"balance"`` ascending, ``"-balance"`` descending."""
        text = text.strip()
        return cls(text[1:], True) if text.startswith("-") else cls(text)


#: Sort keys already parsed from a list of column names (keys are immutable: shared).
_parsed_keys: Memo[tuple[str, ...], tuple[SortKey, ...]] = Memo(64)


def _order(value: Any) -> tuple[SortKey, ...]:
    if isinstance(value, str | SortKey):
        value = (value,)
    if not isinstance(value, Iterable):
        raise InvalidValue("keys", value, "must be column names or SortKeys")
    if type(value) in (list, tuple) and all(type(v) is str for v in value):
        names = tuple(value)
        known = _parsed_keys.get(names)
        if known is not None:
            return known
        return _parsed_keys.put(names, tuple(SortKey.parse(v) for v in names))
    keys = tuple(SortKey.parse(v) if isinstance(v, str) else v for v in value)
    for key in keys:
        if not isinstance(key, SortKey):
            raise InvalidValue("keys", key, "must be column names or SortKeys")
    return keys


def _page(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Page):
        raise InvalidValue(attribute.name, value, "must be a Page")


@attrs.frozen
class Page:
    """``limit`` items (all when ``None``) after skipping ``offset``."""

    limit: int | None = attrs.field(default=None)
    offset: int = attrs.field(default=0)

    def __attrs_post_init__(self) -> None:
        if self.limit is not None and (
            not isinstance(self.limit, int) or isinstance(self.limit, bool) or self.limit < 0
        ):
            raise InvalidValue("limit", self.limit, "must be a whole number >= 0 or None")
        if not isinstance(self.offset, int) or isinstance(self.offset, bool) or self.offset < 0:
            raise InvalidValue("offset", self.offset, "must be a whole number >= 0")


#: Every item: the default page (pages are immutable: one is shared).
_WHOLE = Page()


@attrs.frozen
class Order:
    """Sort columns (first is primary) and a page; ties always broken by id ascending."""

    keys: tuple[SortKey, ...] = attrs.field(default=(), converter=_order)
    page: Page = attrs.field(default=_WHOLE, validator=_page)


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


H = TypeVar("H", bound=_HasId)


def _rank(order: Sequence[Any]) -> Callable[[Any], int]:
    positions = {status: i for i, status in enumerate(order)}
    return positions.__getitem__


#: List columns per type: column name -> key function. ``status`` ranks by action order.
sort_columns: Mapping[type, Mapping[str, Callable[[Any], Any]]] = {
    Member: {
        "id": lambda m: m.id,
        "account_holder": lambda m: m.account_holder.name.casefold(),
        "dependents": lambda m: len(m.dependents),
        "plan": lambda m: m.plan_id,
        "status": lambda m: _rank(MEMBER_ACTION_ORDER)(m.status),
        "start_date": lambda m: m.start_date,
        "practice": lambda m: m.practice_id,
        "campaign": lambda m: m.campaign_id,
        "user": lambda m: m.staff_user_id,
        "created_at": lambda m: m.created_at,
        "first_activated_at": lambda m: m.first_activated_at,
    },
    PaymentPlan: {
        "id": lambda p: p.id,
        "patient": lambda p: p.patient.name.casefold(),
        "progression": lambda p: (p.paid_count / p.instalment_count, p.instalment_count),
        "balance": lambda p: p.balance.amount,
        "total": lambda p: p.total.amount,
        "status": lambda p: _rank(PAYMENT_PLAN_ACTION_ORDER)(p.status),
        "payment_type": lambda p: p.payment_type.value,
        "next_due": lambda p: None if p.next_instalment is None else p.next_instalment.due_date,
        "practice": lambda p: p.practice_id,
        "created_at": lambda p: p.created_at,
    },
    Referral: {
        "id": lambda r: r.id,
        "account_holder": lambda r: r.account_holder.name.casefold(),
        "dependents": lambda r: len(r.dependents),
        "start_date": lambda r: r.start_date,
        "campaign": lambda r: r.campaign_id,
        "user": lambda r: r.staff_user_id,
        "status": lambda r: _rank(_REFERRAL_ORDER)(r.status),
        "practice": lambda r: r.practice_id,
    },
    Payment: {
        "id": lambda p: p.id,
        "at": lambda p: p.at,
        "amount": lambda p: p.amount.amount,
        "kind": lambda p: p.kind.value,
        "outcome": lambda p: p.outcome.value,
        "practice": lambda p: p.practice_id,
    },
}


def _columns(kind: type) -> Mapping[str, Callable[[Any], Any]]:
    return sort_columns.get(kind, _ID_ONLY)


_ID_ONLY: Mapping[str, Callable[[Any], Any]] = {"id": lambda o: o.id}


def check_order(kind: type, order: Order | None) -> None:
    """Raise :class:`InvalidValue` if ``order`` names a column ``kind`` cannot sort by."""
    columns = _columns(kind)
    for key in order.keys if order else ():
        if key.column not in columns:
            raise InvalidValue(
                "column", key.column, f"unknown; sortable: {', '.join(sorted(columns))}"
            )


def apply_order(items: Iterable[H], kind: type, order: Order | None = None) -> list[H]:
    """Sort ``kind`` objects by ``order``'s keys (``None`` last either way), ties by id; page.

    Raises:
        InvalidValue: a column that ``kind`` does not have.
    """
    check_order(kind, order)
    result = sorted(items, key=lambda o: o.id)
    order = order or Order()
    if result and order.keys:
        columns = _columns(kind)
        for key in reversed(order.keys):
            get = columns[key.column]

            def sort_key(o: H, get: Callable[[Any], Any] = get, desc: bool = key.descending) -> Any:
                value = get(o)
                # None sorts last both ascending and descending.
                return (value is not None, value) if desc else (value is None, value)

            result.sort(key=sort_key, reverse=key.descending)
    start = order.page.offset
    stop = None if order.page.limit is None else start + order.page.limit
    return result[start:stop]
