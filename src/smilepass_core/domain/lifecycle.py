"""The one transition-table mechanism every status set shares.

A :class:`Lifecycle` is data: for each status, the statuses it may move to.
An object's history is a tuple of :class:`StatusChange`; its first entry has
``from_=None`` (the object came into being in that status).

``status_at(t)`` includes a change stamped exactly at ``t``; ``status_before(t)``
(the state at a boundary, used by the KPIs) takes only changes strictly before ``t``.
"""

from __future__ import annotations

import bisect
import enum
import itertools
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar, Final, Generic, Self, TypeVar

import attrs

from smilepass_core.errors import (
    InvalidTransition,
    InvalidValue,
    OutOfOrderChange,
    RuleViolation,
    UnknownStatus,
    VersionConflict,
)
from smilepass_core.periods import as_instant

__all__ = [
    "MAX_HISTORY",
    "STATUS_ALIASES",
    "HasHistory",
    "Lifecycle",
    "Status",
    "StatusChange",
    "check_successor",
    "check_version",
]


#: Other spellings hosts use for a status value, and the value each means. Only these are
#: read as another word; anything else unknown is refused.
STATUS_ALIASES: Final = MappingProxyType({"canceled": "cancelled"})


class Status(enum.Enum):
    """Base of every status enum: adds :meth:`parse` for host strings."""

    @classmethod
    def parse(cls, value: Any) -> Self:
        """The status a host string names, ignoring case and surrounding spaces; a spelling
        in :data:`STATUS_ALIASES` (``"Canceled"``) reads as the value it stands for.

        Raises:
            UnknownStatus: ``value`` names no status (``None`` and non-strings included).
        """
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            key = value.strip().lower()
            key = STATUS_ALIASES.get(key, key)
            for member in cls:
                if member.value == key:
                    return member
        raise UnknownStatus(value, [m.value for m in cls])


S = TypeVar("S", bound=Status)


def _reason(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidValue("reason", value, "must be a string")
    return value


@attrs.frozen
class StatusChange(Generic[S]):
    """One status change: when, from what (``None`` at creation), to what, and why."""

    at: datetime = attrs.field(converter=as_instant)
    from_: S | None
    to: S
    reason: str = attrs.field(default="", converter=_reason)


class Lifecycle(Generic[S]):
    """An explicit transition table over one status enum.

    Raises:
        InvalidValue: a status is missing as a key, or a target is not of the enum.
    """

    def __init__(
        self,
        statuses: type[S],
        table: Mapping[S, Iterable[S]],
        *,
        initial: Iterable[S],
    ) -> None:
        self.statuses = statuses
        self.table: dict[S, frozenset[S]] = {s: frozenset(t) for s, t in table.items()}
        self.initial = frozenset(initial)
        missing = set(statuses) - set(self.table)
        if missing:
            raise InvalidValue("table", sorted(m.name for m in missing), "statuses without a row")
        for source, targets in self.table.items():
            for target in targets | {source}:
                if not isinstance(target, statuses):
                    raise InvalidValue("table", target, f"not a {statuses.__name__}")
        if not self.initial:
            raise InvalidValue("initial", (), "at least one initial status")

    @property
    def terminal(self) -> frozenset[S]:
        """Statuses with no way out."""
        return frozenset(s for s, targets in self.table.items() if not targets)

    def allowed(self, from_: S) -> frozenset[S]:
        """The statuses ``from_`` may move to."""
        return self.table[from_]

    def parse(self, value: Any) -> S:
        """``value`` as one of this lifecycle's statuses: a host string (``"active"``,
        any case) is parsed, as everywhere in the library.

        Raises:
            UnknownStatus: ``value`` names none of them (another status set's member too).
        """
        status: S = self.statuses.parse(value)
        return status

    def can(self, from_: S, to: S) -> bool:
        """True when the table allows ``from_ -> to``."""
        return to in self.table[from_]

    def check(self, from_: S, to: S, *, subject: str = "") -> None:
        """Raise :class:`InvalidTransition` unless ``from_ -> to`` is allowed."""
        if to not in self.table[from_]:
            raise InvalidTransition(from_, to, subject=subject, allowed=self.table[from_])

    def start(self, status: S, at: datetime, reason: str = "") -> tuple[StatusChange[S]]:
        """A new history that begins in ``status`` (a host string is parsed)."""
        status = self.parse(status)
        if status not in self.initial:
            raise InvalidValue(
                "status", status, f"cannot start in it; starts in {_names(self.initial)}"
            )
        return (StatusChange(at, None, status, reason),)

    def append(
        self,
        history: tuple[StatusChange[S], ...],
        to: S,
        at: datetime,
        reason: str = "",
        *,
        subject: str = "",
    ) -> tuple[StatusChange[S], ...]:
        """``history`` with the change to ``to`` appended, after checking table and time
        (``to`` may be a host string, parsed by :meth:`parse`)."""
        to = self.parse(to)
        _check_length(history, 1)
        change = StatusChange(at, history[-1].to, to, reason)
        self.check(history[-1].to, to, subject=subject)
        if change.at < history[-1].at:
            raise OutOfOrderChange(history[-1].at, change.at, subject=subject)
        return (*history, change)

    def validate(self, history: tuple[StatusChange[S], ...], *, subject: str = "") -> None:
        """Check that ``history`` is a legal walk through the table, in time order.

        The history an object's own transition is building (a checked history plus one
        checked change, see :meth:`HasHistory._moved`) is not walked again: building the
        n-th change costs one check, not n.
        """
        if history and history is _EXTENDED.get():
            return
        if not history:
            raise InvalidValue("history", history, "must hold at least the initial status")
        _check_length(history)
        first = history[0]
        if first.from_ is not None or first.to not in self.initial:
            raise InvalidValue(
                "history", first, f"must start with from_=None into {_names(self.initial)}"
            )
        for before, after in itertools.pairwise(history):
            if after.from_ is not before.to:
                raise InvalidValue(
                    "history", after, f"from_ must be {before.to.name}, the previous status"
                )
            self.check(before.to, after.to, subject=subject)
            if after.at < before.at:
                raise OutOfOrderChange(before.at, after.at, subject=subject)


#: The most status changes one object's history may hold: a real member changes status a
#: few times a year, and a record file with a million changes is refused before any work.
MAX_HISTORY: Final = 10_000


def _check_length(history: tuple[Any, ...], adding: int = 0) -> None:
    if len(history) + adding > MAX_HISTORY:
        raise InvalidValue(
            "history", f"{len(history) + adding:,} changes", f"at most {MAX_HISTORY:,} changes"
        )


def _names(statuses: Iterable[Status]) -> str:
    return ", ".join(sorted(s.name for s in statuses))


class HasHistory(Generic[S]):
    """Status questions answered from an object's ``history``."""

    __slots__ = ()
    LIFECYCLE: ClassVar[Lifecycle[Any]]
    history: tuple[StatusChange[S], ...]
    id: str

    @property
    def status(self) -> S:
        """The current status."""
        return self.history[-1].to

    @property
    def created_at(self) -> datetime:
        """When the object came into being."""
        return self.history[0].at

    def status_at(self, instant: datetime) -> S | None:
        """Status after every change stamped at or before ``instant``; ``None`` before creation."""
        return self._status(as_instant(instant), bisect.bisect_right)

    def status_before(self, instant: datetime) -> S | None:
        """Status after every change strictly before ``instant`` (the state at a boundary)."""
        return self._status(as_instant(instant), bisect.bisect_left)

    def _status(self, instant: datetime, search: Any) -> S | None:
        i: int = search(self.history, instant, key=lambda c: c.at)
        return self.history[i - 1].to if i else None

    def as_of(self, instant: datetime) -> Self | None:
        """The object as it stood at ``instant``: only what is stamped at or before it
        (a change exactly at ``instant`` counts); ``None`` before its creation."""
        when = as_instant(instant)
        kept: int = bisect.bisect_right(self.history, when, key=lambda c: c.at)
        if kept == 0:
            return None
        return self._until(when, self.history[:kept])

    def _until(self, when: datetime, history: tuple[StatusChange[S], ...]) -> Self:
        """A copy with ``history`` (this one cut at ``when``) and every other stamped
        field cut at ``when`` too."""
        if len(history) == len(self.history):
            return self
        return attrs.evolve(self, history=history)  # type: ignore[misc]

    def first_entered(self, status: S) -> datetime | None:
        """When the object first entered ``status``; ``None`` if it never did."""
        return next((c.at for c in self.history if c.to is status), None)

    def _moved(self, to: S, at: datetime, reason: str, **changes: Any) -> Self:
        """A copy moved to ``to`` (with ``changes`` to other fields, applied together)."""
        history = self.LIFECYCLE.append(
            self.history, to, at, reason, subject=f"{type(self).__name__} {self.id}"
        )
        # self.history was checked when self was built, and append checked the new change.
        token = _EXTENDED.set(history)
        try:
            return attrs.evolve(self, history=history, **changes)  # type: ignore[misc]
        finally:
            _EXTENDED.reset(token)


#: The history :meth:`HasHistory._moved` is building, which :meth:`Lifecycle.validate`
#: need not walk again (a context variable: per thread and per task).
_EXTENDED: ContextVar[tuple[Any, ...] | None] = ContextVar("_EXTENDED", default=None)


def check_successor(kept: Any, new: Any) -> None:
    """Raise unless a store may replace ``kept`` by ``new`` (what ``save()`` checks).

    ``new`` must stay in ``kept``'s practice, and its status history (when it has one)
    and its plan changes, dependent changes, referral rewards and discounts (a member's)
    must extend ``kept``'s: every move appends, so a copy read before another write was
    saved, or saved back after a later move, does not.
    A membership plan keeps its prices: a new price comes through ``reprice``.

    Raises:
        RuleViolation: ``practice_change`` (field ``practice_id``) or ``stale_history``
            (field ``history``, ``plan_changes``, ``dependent_changes``,
            ``referral_rewards`` or ``discounts``): reload the object, apply the change
            again, save; ``price_rewritten`` (field ``price``): a plan's price changed
            without ``reprice``, or an earlier price changed; ``grant_after_cancel``
            (field ``discounts``): a discount added to a member kept as Cancelled.
    """
    subject = f"{type(kept).__name__} {kept.id}"
    if getattr(kept, "practice_id", None) != getattr(new, "practice_id", None):
        raise RuleViolation(
            "practice_change",
            f"{subject} belongs to practice {kept.practice_id}; save() does not move it "
            f"to {new.practice_id}",
            field="practice_id",
        )
    history = getattr(kept, "history", None)
    if history is not None and tuple(new.history[: len(history)]) != history:
        last = history[-1]
        raise RuleViolation(
            "stale_history",
            f"{subject}: the saved history does not extend the kept one ({len(history)} "
            f"changes, last {last.to.value} at {last.at.isoformat()}); reload it, apply "
            "the change again and save",
            field="history",
        )
    points = getattr(kept, "earlier_prices", None)
    if points is not None:
        _check_prices_kept(subject, kept, new)
    _check_no_grant_after_cancel(subject, kept, new)
    for field, kept_items in (
        ("plan_changes", getattr(kept, "plan_changes", ())),
        ("dependent_changes", getattr(kept, "dependent_changes", ())),
        ("referral_rewards", getattr(kept, "referral_rewards", ())),
        ("discounts", getattr(kept, "discounts", ())),
    ):
        if kept_items and tuple(getattr(new, field)[: len(kept_items)]) != kept_items:
            last = kept_items[-1]
            if field == "plan_changes":
                detail = f"{len(kept_items)} changes, last to {last.to_plan}"
            elif field == "dependent_changes":
                moved = "added" if last.added else "removed"
                detail = f"{len(kept_items)} changes, last {last.patient.id} {moved}"
            elif field == "referral_rewards":
                detail = f"{len(kept_items)} credited, last {last.referral_id}"
            else:
                detail = f"{len(kept_items)} granted, last {last.discount.id}"
            if field != "discounts":
                detail += f" at {last.at.isoformat()}"
            raise RuleViolation(
                "stale_history",
                f"{subject}: the saved {field.replace('_', ' ')} do not extend the kept ones "
                f"({detail}); reload it, apply the change again and save",
                field=field,
            )


def _check_no_grant_after_cancel(subject: str, kept: Any, new: Any) -> None:
    """A member kept as Cancelled takes no new discount (a terminal status absorbs)."""
    grants = getattr(kept, "discounts", None)
    if grants is None or len(new.discounts) <= len(grants):
        return
    if getattr(kept.status, "value", None) == "cancelled":
        raise RuleViolation(
            "grant_after_cancel",
            f"{subject} is Cancelled: no discount can be granted",
            field="discounts",
        )


def _check_prices_kept(subject: str, kept: Any, new: Any) -> None:
    """A membership plan's save keeps its prices: the earlier ones, and the current one
    (until a :meth:`~smilepass_core.domain.MembershipPlan.reprice` ends it)."""
    points = kept.earlier_prices
    added = new.earlier_prices[len(points) :]
    kept_price = added[0].price if added else new.price
    if tuple(new.earlier_prices[: len(points)]) != points or kept_price != kept.price:
        raise RuleViolation(
            "price_rewritten",
            f"{subject}: the save changes a price already charged ({kept.price} now); "
            "use reprice(price, on=day) so that earlier billing dates keep their price",
            field="price",
        )


def check_version(kind: str, id: str, expected: Any, current: int) -> None:
    """Raise unless ``expected``, the version a caller read, is the ``current`` one (what
    ``save(..., expected_version=...)`` checks).

    Raises:
        InvalidValue: ``expected`` is not a whole number >= 1.
        VersionConflict: another write came first (``expected != current``).
    """
    if not isinstance(expected, int) or isinstance(expected, bool) or expected < 1:
        raise InvalidValue("expected_version", expected, "must be a whole number >= 1")
    if expected != current:
        raise VersionConflict(kind, id, expected=expected, actual=current)
