"""Members: an account holder and dependents on a membership plan, with a status history."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, ClassVar, TypeVar

import attrs

from smilepass_core.domain._fields import day, identifier, of_type, optional_identifier
from smilepass_core.domain.discounts import AppliedDiscount, Discount, DiscountBasis
from smilepass_core.domain.lifecycle import (
    HasHistory,
    Lifecycle,
    Status,
    StatusChange,
    _reason,
)
from smilepass_core.domain.practices import Patient
from smilepass_core.errors import InvalidValue, RuleViolation
from smilepass_core.periods import as_instant

T = TypeVar("T")

__all__ = [
    "COUNTING_STATUSES",
    "MEMBERSHIP_LIFECYCLE",
    "CountingSpan",
    "DependentChange",
    "Member",
    "MembershipStatus",
    "PlanChange",
    "ReferralReward",
]


class MembershipStatus(Status):
    """The manual's membership statuses, plus Suspended (paused by the practice)."""

    PENDING = "pending"
    ACTIVE = "active"
    FAILED = "failed"
    SUSPENDED = "suspended"
    CANCELLED = "cancelled"


_M = MembershipStatus

#: Pending -> Active (first payment collected) or Failed; Active <-> Failed (a due
#: charge failed / recovered); Active or Failed -> Suspended -> Active (paused,
#: resumed); anything but Cancelled -> Cancelled, which is terminal.
MEMBERSHIP_LIFECYCLE: Lifecycle[MembershipStatus] = Lifecycle(
    MembershipStatus,
    {
        _M.PENDING: {_M.ACTIVE, _M.FAILED, _M.CANCELLED},
        _M.ACTIVE: {_M.FAILED, _M.SUSPENDED, _M.CANCELLED},
        _M.FAILED: {_M.ACTIVE, _M.SUSPENDED, _M.CANCELLED},
        _M.SUSPENDED: {_M.ACTIVE, _M.CANCELLED},
        _M.CANCELLED: set(),
    },
    initial={_M.PENDING},
)

#: The statuses in which a membership counts toward recurring revenue: Active, or Failed
#: (a subscription whose payment is being chased). Pending has not started, Suspended is
#: paused, Cancelled has ended.
COUNTING_STATUSES: frozenset[MembershipStatus] = frozenset({_M.ACTIVE, _M.FAILED})


@attrs.frozen
class CountingSpan:
    """An interval in which a member counts toward recurring revenue on one plan: they
    count on ``plan_id`` at boundary ``B`` exactly when ``start < B <= end`` (``end`` is
    ``None`` while they still do)."""

    plan_id: str
    start: datetime
    end: datetime | None = None


def _patients(value: Any) -> tuple[Patient, ...]:
    if isinstance(value, (Patient, str)):
        raise InvalidValue("dependents", value, "must be a sequence of Patient")
    result = tuple(value)
    for p in result:
        if not isinstance(p, Patient):
            raise InvalidValue("dependents", p, "must be a Patient")
    return result


def _history(
    value: Iterable[StatusChange[MembershipStatus]],
) -> tuple[StatusChange[MembershipStatus], ...]:
    return tuple(value)


@attrs.frozen
class PlanChange:
    """A change of membership plan: from ``at`` on, the member is on ``to_plan``."""

    at: datetime = attrs.field(converter=as_instant)
    from_plan: str = attrs.field(validator=identifier)
    to_plan: str = attrs.field(validator=identifier)
    reason: str = attrs.field(default="", converter=_reason)

    def __attrs_post_init__(self) -> None:
        if self.from_plan == self.to_plan:
            raise InvalidValue("to_plan", self.to_plan, "is the plan it changes from")


@attrs.frozen
class DependentChange:
    """A dependent added to the membership (``added``) or removed from it, at ``at``."""

    at: datetime = attrs.field(converter=as_instant)
    patient: Patient = attrs.field(validator=of_type(Patient))
    added: bool = attrs.field(validator=of_type(bool))
    reason: str = attrs.field(default="", converter=_reason)


@attrs.frozen
class ReferralReward:
    """Referral ``referral_id``, converted, credited at ``at`` to the member who referred:
    a per-referral discount counts it from the next billing date."""

    at: datetime = attrs.field(converter=as_instant)
    referral_id: str = attrs.field(validator=identifier)


def _at(change: PlanChange | DependentChange | ReferralReward) -> datetime:
    return change.at


def _sequence(value: Any, kind: type[T], field: str) -> tuple[T, ...]:
    """``value`` as a tuple of ``kind``, refused (``InvalidValue`` naming ``field``)
    otherwise."""
    if isinstance(value, (kind, str)) or not isinstance(value, Iterable):
        raise InvalidValue(field, value, f"must be a sequence of {kind.__name__}")
    result = tuple(value)
    for change in result:
        if not isinstance(change, kind):
            raise InvalidValue(field, change, f"must be a {kind.__name__}")
    return result


def _plan_changes(value: Any) -> tuple[PlanChange, ...]:
    return _sequence(value, PlanChange, "plan_changes")


def _dependent_changes(value: Any) -> tuple[DependentChange, ...]:
    return _sequence(value, DependentChange, "dependent_changes")


def _referral_rewards(value: Any) -> tuple[ReferralReward, ...]:
    return _sequence(value, ReferralReward, "referral_rewards")


def _replayed(
    dependents: tuple[Patient, ...], changes: Iterable[DependentChange]
) -> tuple[Patient, ...]:
    """``dependents`` after ``changes``: an added one appended, a removed one dropped."""
    result = list(dependents)
    for change in changes:
        if change.added:
            result.append(change.patient)
        else:
            result = [p for p in result if p.id != change.patient.id]
    return tuple(result)


def _grants(value: Any) -> tuple[AppliedDiscount, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidValue("discounts", value, "must be a sequence of AppliedDiscount")
    grants = tuple(value)
    if any(not isinstance(g, AppliedDiscount) for g in grants):
        raise InvalidValue("discounts", value, "must be a sequence of AppliedDiscount")
    return grants


@attrs.frozen
class Member(HasHistory[MembershipStatus]):
    """A membership: account holder, dependents, plan, practice and status history, and the
    discounts granted to it.

    Create one with :meth:`enrol`; move it with :meth:`activate`, :meth:`fail`,
    :meth:`suspend`, :meth:`cancel` (or :meth:`transition`). Each returns a new
    Member with the change appended; a move the table forbids raises
    :class:`~smilepass_core.errors.InvalidTransition` and changes nothing.

    >>> from datetime import datetime, timezone
    >>> t = datetime(2026, 3, 1, 9, tzinfo=timezone.utc)
    >>> m = Member.enrol(id="m1", practice_id="p1", plan_id="gold",
    ...     account_holder=Patient("pat1", "Ada Lovelace"), start_date=t.date(), at=t)
    >>> m.activate(at=t).status
    <MembershipStatus.ACTIVE: 'active'>
    """

    LIFECYCLE: ClassVar[Lifecycle[MembershipStatus]] = MEMBERSHIP_LIFECYCLE

    id: str = attrs.field(validator=identifier)
    practice_id: str = attrs.field(validator=identifier)
    plan_id: str = attrs.field(validator=identifier)
    account_holder: Patient = attrs.field(validator=of_type(Patient))
    start_date: date = attrs.field(validator=day)
    history: tuple[StatusChange[MembershipStatus], ...] = attrs.field(converter=_history)
    dependents: tuple[Patient, ...] = attrs.field(default=(), converter=_patients)
    campaign_id: str | None = attrs.field(default=None, validator=optional_identifier)
    staff_user_id: str | None = attrs.field(default=None, validator=optional_identifier)
    plan_changes: tuple[PlanChange, ...] = attrs.field(default=(), converter=_plan_changes)
    discounts: tuple[AppliedDiscount, ...] = attrs.field(default=(), converter=_grants)
    dependent_changes: tuple[DependentChange, ...] = attrs.field(
        default=(), converter=_dependent_changes
    )
    referral_rewards: tuple[ReferralReward, ...] = attrs.field(
        default=(), converter=_referral_rewards
    )

    def __attrs_post_init__(self) -> None:
        MEMBERSHIP_LIFECYCLE.validate(self.history, subject=f"Member {self.id}")
        seen: set[str] = set()
        for grant in self.discounts:
            if grant.discount.practice_id != self.practice_id:
                raise InvalidValue(
                    "discounts",
                    grant.discount.id,
                    f"is practice {grant.discount.practice_id}'s, not {self.practice_id}'s",
                )
            if grant.discount.id in seen:
                raise InvalidValue("discounts", grant.discount.id, "is granted twice")
            seen.add(grant.discount.id)
        self._check_plan_changes()
        self._check_dependent_changes()
        if self.referral_rewards:
            ids = [r.referral_id for r in self.referral_rewards]
            twice = next((i for i in ids if ids.count(i) > 1), None)
            if twice is not None:
                raise InvalidValue("referral_rewards", twice, "is rewarded twice")
            self._check_timed("referral_rewards", self.referral_rewards)

    def _check_timed(
        self, field: str, changes: tuple[PlanChange | DependentChange | ReferralReward, ...]
    ) -> None:
        """``changes`` in time order, none before the enrolment nor after the Cancel."""
        created = self.history[0].at if self.history else None
        if created is not None and changes[0].at < created:
            raise InvalidValue(field, changes[0].at, f"is before member {self.id} was enrolled")
        for before, after in itertools.pairwise(changes):
            if after.at < before.at:
                raise InvalidValue(field, after.at, "is before the change before it")
        cancelled = self.first_entered(_M.CANCELLED)
        if cancelled is not None and changes[-1].at > cancelled:
            what = field.removesuffix("s")
            raise RuleViolation(
                f"{what}_after_cancel",
                f"member {self.id} was cancelled at {cancelled.isoformat()}: no "
                f"{what.replace('_', ' ')} after it ({changes[-1].at.isoformat()})",
                field=field,
            )

    def _check_dependent_changes(self) -> None:
        """Each change adds a dependent not on the membership or removes one on it, and
        the changes lead from the first dependents to :attr:`dependents`."""
        changes = self.dependent_changes
        if not changes:
            return
        self._check_timed("dependent_changes", changes)
        on = list(self.first_dependents)
        ids = [p.id for p in on]
        twice = next((i for i in ids if ids.count(i) > 1), None)
        if twice is not None:
            raise InvalidValue(
                "dependents", twice, "is a dependent twice: dependent changes need each once"
            )
        for change in changes:
            if not change.added:
                on = [p for p in on if p.id != change.patient.id]
            elif any(p.id == change.patient.id for p in on):
                raise InvalidValue(
                    "dependent_changes", change.patient.id, "is added while already a dependent"
                )
            else:
                on.append(change.patient)
        if sorted(p.id for p in on) != sorted(p.id for p in self.dependents):
            raise InvalidValue(
                "dependents",
                tuple(p.id for p in self.dependents),
                f"do not follow from the dependent changes ({sorted(p.id for p in on)})",
            )

    def _check_plan_changes(self) -> None:
        """Each change follows on from the plan before it; the last leads to :attr:`plan_id`."""
        changes = self.plan_changes
        if not changes:
            return
        for before, after in itertools.pairwise(changes):
            if after.from_plan != before.to_plan:
                raise InvalidValue(
                    "plan_changes",
                    after.from_plan,
                    f"does not follow on from the plan before it ({before.to_plan})",
                )
        self._check_timed("plan_changes", changes)
        if changes[-1].to_plan != self.plan_id:
            raise InvalidValue(
                "plan_id", self.plan_id, f"is not the last plan change's ({changes[-1].to_plan})"
            )

    @classmethod
    def enrol(
        cls,
        *,
        id: str,
        practice_id: str,
        plan_id: str,
        account_holder: Patient,
        start_date: date,
        at: datetime,
        dependents: tuple[Patient, ...] = (),
        campaign_id: str | None = None,
        staff_user_id: str | None = None,
    ) -> Member:
        """A new Pending member, enrolled at ``at``."""
        return cls(
            id=id,
            practice_id=practice_id,
            plan_id=plan_id,
            account_holder=account_holder,
            start_date=start_date,
            history=MEMBERSHIP_LIFECYCLE.start(_M.PENDING, at, "enrolled"),
            dependents=dependents,
            campaign_id=campaign_id,
            staff_user_id=staff_user_id,
        )

    def transition(self, to: MembershipStatus, *, at: datetime, reason: str = "") -> Member:
        """Move to ``to`` at ``at``, if the table allows it."""
        return self._moved(to, at, reason)

    def activate(self, *, at: datetime, reason: str = "payment collected") -> Member:
        """Active: first payment collected, a failed charge recovered, or resumed."""
        return self._moved(_M.ACTIVE, at, reason)

    def fail(self, *, at: datetime, reason: str = "charge failed") -> Member:
        """Failed: a due charge failed."""
        return self._moved(_M.FAILED, at, reason)

    def suspend(self, *, at: datetime, reason: str = "suspended by the practice") -> Member:
        """Suspended: the practice pauses the member without ending the record."""
        return self._moved(_M.SUSPENDED, at, reason)

    def cancel(self, *, at: datetime, reason: str = "cancelled") -> Member:
        """Cancelled, for good: no further charges."""
        return self._moved(_M.CANCELLED, at, reason)

    def change_plan(self, plan_id: str, *, at: datetime, reason: str = "") -> Member:
        """On ``plan_id`` from ``at`` (an upgrade or a downgrade), recorded in
        :attr:`plan_changes`.

        Raises:
            InvalidValue: already on ``plan_id``; ``at`` before the enrolment or the
                latest plan change.
            RuleViolation: ``plan_change_after_cancel``: Cancelled at ``at`` (a terminal
                status absorbs).
        """
        when = as_instant(at)
        if self.status_at(when) is _M.CANCELLED:
            raise RuleViolation(
                "plan_change_after_cancel",
                f"member {self.id} is Cancelled at {when.isoformat()}: no plan change",
                field="at",
            )
        change = PlanChange(when, self.plan_id, plan_id, reason)
        return attrs.evolve(self, plan_id=plan_id, plan_changes=(*self.plan_changes, change))

    def add_dependent(self, patient: Patient, *, at: datetime, reason: str = "") -> Member:
        """With ``patient`` a dependent from ``at`` on, recorded in
        :attr:`dependent_changes`. A per-dependent discount counts them from the first
        billing date whose local day starts after ``at``.

        Raises:
            InvalidValue: ``patient`` is already a dependent (by id) or is the account
                holder; ``at`` before the enrolment or the latest dependent change; a
                patient id listed twice among the dependents.
            RuleViolation: ``dependent_change_after_cancel``: Cancelled at ``at``.
        """
        if not isinstance(patient, Patient):
            raise InvalidValue("patient", patient, "must be a Patient")
        if patient.id == self.account_holder.id:
            raise InvalidValue("patient", patient.id, "is the account holder")
        if any(p.id == patient.id for p in self.dependents):
            raise InvalidValue("patient", patient.id, f"is already a dependent of member {self.id}")
        change = DependentChange(self._changeable(at, "dependent change"), patient, True, reason)
        return attrs.evolve(
            self,
            dependents=(*self.dependents, patient),
            dependent_changes=(*self.dependent_changes, change),
        )

    def remove_dependent(self, patient_id: str, *, at: datetime, reason: str = "") -> Member:
        """Without dependent ``patient_id`` from ``at`` on, recorded in
        :attr:`dependent_changes` (their past billing dates keep counting them).

        Raises:
            InvalidValue: no dependent has that id; ``at`` before the enrolment or the
                latest dependent change; a patient id listed twice among the dependents.
            RuleViolation: ``dependent_change_after_cancel``: Cancelled at ``at``.
        """
        at_index = next((i for i, p in enumerate(self.dependents) if p.id == patient_id), None)
        if at_index is None:
            raise InvalidValue("patient_id", patient_id, f"is not a dependent of member {self.id}")
        patient = self.dependents[at_index]
        when = self._changeable(at, "dependent change")
        change = DependentChange(when, patient, False, reason)
        return attrs.evolve(
            self,
            dependents=self.dependents[:at_index] + self.dependents[at_index + 1 :],
            dependent_changes=(*self.dependent_changes, change),
        )

    def reward_referral(self, referral_id: str, *, at: datetime) -> Member:
        """With referral ``referral_id`` credited at ``at`` (it converted), recorded in
        :attr:`referral_rewards`. A per-referral discount counts it from the first billing
        date whose local day starts after ``at``
        (:func:`~smilepass_core.domain.referrals.reward_referrer` checks the referral).

        Raises:
            InvalidValue: ``referral_id`` already credited; ``at`` before the enrolment or
                the latest reward.
            RuleViolation: ``referral_reward_after_cancel``: Cancelled at ``at``.
        """
        if any(r.referral_id == referral_id for r in self.referral_rewards):
            raise InvalidValue(
                "referral_id", referral_id, f"is already credited to member {self.id}"
            )
        reward = ReferralReward(self._changeable(at, "referral reward"), referral_id)
        return attrs.evolve(self, referral_rewards=(*self.referral_rewards, reward))

    def rewards_before(self, boundary: datetime) -> int:
        """How many referrals were credited strictly before ``boundary``."""
        return bisect.bisect_left(self.referral_rewards, as_instant(boundary), key=_at)

    def _changeable(self, at: datetime, what: str) -> datetime:
        """``at`` as an instant, refused (``<what>_after_cancel``) when the member is
        Cancelled then."""
        when = as_instant(at)
        if self.status_at(when) is _M.CANCELLED:
            raise RuleViolation(
                f"{what.replace(' ', '_')}_after_cancel",
                f"member {self.id} is Cancelled at {when.isoformat()}: no {what}",
                field="at",
            )
        return when

    @property
    def last_changed_at(self) -> datetime:
        """The instant of its latest status, plan or dependent change or referral reward
        (a Cancel must not come before any of them)."""
        last = self.history[-1].at
        for changes in (self.plan_changes, self.dependent_changes, self.referral_rewards):
            if changes and changes[-1].at > last:
                last = changes[-1].at
        return last

    @property
    def billing_terms(self) -> tuple[tuple[Any, ...], ...]:
        """What prices its billing dates besides its plans: the discounts granted, the
        plan changes, the dependent changes and the referral rewards."""
        return self.discounts, self.plan_changes, self.dependent_changes, self.referral_rewards

    @property
    def first_dependents(self) -> tuple[Patient, ...]:
        """The dependents at the enrolment: :attr:`dependents` before every dependent
        change (one removed since is listed after those still on the membership)."""
        result = list(self.dependents)
        for change in reversed(self.dependent_changes):
            if change.added:
                at = next((i for i, p in enumerate(result) if p.id == change.patient.id), None)
                if at is not None:
                    del result[at]
            else:
                result.append(change.patient)
        return tuple(result)

    def dependents_at(self, instant: datetime) -> tuple[Patient, ...]:
        """The dependents after every dependent change stamped at or before ``instant``."""
        t = as_instant(instant)
        changes = self.dependent_changes
        if not changes or changes[-1].at <= t:
            return self.dependents
        kept = bisect.bisect_right(changes, t, key=_at)
        return _replayed(self.first_dependents, changes[:kept])

    def dependents_before(self, boundary: datetime) -> tuple[Patient, ...]:
        """The dependents at a boundary: after every change stamped strictly before it."""
        t = as_instant(boundary)
        changes = self.dependent_changes
        kept = bisect.bisect_left(changes, t, key=_at)
        if kept == len(changes):
            return self.dependents
        return _replayed(self.first_dependents, changes[:kept])

    def grant(self, discount: Discount, *, units: int | None = None, first: int = 0) -> Member:
        """With ``discount`` granted: ``units`` of it from billing date number ``first`` (0
        at sign-up), recorded in :attr:`discounts`. Billing prices each date with the
        grants in force (:func:`~smilepass_core.domain.discounts.price_due`).

        ``units`` (by default): 1 for a flat discount; for a per-dependent one, the
        dependents at the enrolment it counts (all of :attr:`first_dependents`), moved on
        each date by those added or removed since; for a per-referral one, the referrals
        it counts besides those credited (:meth:`reward_referral`; 0).

        Raises:
            InvalidValue: ``discount`` is another practice's or already granted; bad
                ``units`` or ``first``.
            RuleViolation: ``grant_after_cancel``: the member is Cancelled (a terminal
                status absorbs).
        """
        if self.status is _M.CANCELLED:
            raise RuleViolation(
                "grant_after_cancel",
                f"member {self.id} is Cancelled: no discount can be granted",
                field="discounts",
            )
        if units is None:
            basis = getattr(discount, "basis", DiscountBasis.FLAT)
            units = {
                DiscountBasis.FLAT: 1,
                DiscountBasis.PER_DEPENDENT: len(self.first_dependents),
                DiscountBasis.PER_REFERRAL: 0,
            }[basis]
        applied = AppliedDiscount(discount, units, first)
        return attrs.evolve(self, discounts=(*self.discounts, applied))

    def _until(self, when: datetime, history: tuple[StatusChange[MembershipStatus], ...]) -> Member:
        """A copy cut at ``when``: its status history, its plan changes (and so its plan),
        its dependent changes (and so its dependents) and its referral rewards."""
        changes = self.plan_changes[: bisect.bisect_right(self.plan_changes, when, key=_at)]
        moves = self.dependent_changes
        kept = bisect.bisect_right(moves, when, key=_at)
        rewards = self.referral_rewards[: bisect.bisect_right(self.referral_rewards, when, key=_at)]
        if (len(history), len(changes), kept, len(rewards)) == (
            len(self.history),
            len(self.plan_changes),
            len(moves),
            len(self.referral_rewards),
        ):
            return self
        plan_id = changes[-1].to_plan if changes else self.first_plan_id
        return attrs.evolve(
            self,
            history=history,
            plan_changes=changes,
            plan_id=plan_id,
            dependents=self.dependents_at(when),
            dependent_changes=moves[:kept],
            referral_rewards=rewards,
        )

    def counts_before(self, boundary: datetime) -> bool:
        """Whether the member counts toward recurring revenue at ``boundary``."""
        return self.status_before(boundary) in COUNTING_STATUSES

    def counting_spans(self) -> tuple[CountingSpan, ...]:
        """The intervals in which the member counted, each on one plan, in time order.

        A status change and a plan change at the same instant apply in that order; an
        interval that starts and ends at one instant holds no boundary and is left out.
        """
        events = sorted(
            [(c.at, 0, c.to in COUNTING_STATUSES, "") for c in self.history]
            + [(c.at, 1, False, c.to_plan) for c in self.plan_changes],
            key=lambda e: (e[0], e[1]),
        )
        spans: list[CountingSpan] = []
        plan, counting, since = self.first_plan_id, False, None
        for at, kind, counts, to_plan in events:
            now, then = (counting, to_plan) if kind else (counts, plan)
            if counting and (not now or then != plan) and since is not None and since < at:
                spans.append(CountingSpan(plan, since, at))
            if now and (not counting or then != plan):
                since = at
            counting, plan = now, then
        if counting and since is not None:
            spans.append(CountingSpan(plan, since, None))
        return tuple(spans)

    @property
    def first_plan_id(self) -> str:
        """The plan the member enrolled on."""
        return self.plan_changes[0].from_plan if self.plan_changes else self.plan_id

    def plan_at(self, instant: datetime) -> str:
        """The plan id in force at ``instant``: after every change stamped at or before it."""
        t = as_instant(instant)
        plan = self.first_plan_id
        for change in self.plan_changes:
            if change.at > t:
                break
            plan = change.to_plan
        return plan

    def plan_before(self, boundary: datetime) -> str:
        """The plan id at a boundary: after every change stamped strictly before it."""
        t = as_instant(boundary)
        plan = self.first_plan_id
        for change in self.plan_changes:
            if change.at >= t:
                break
            plan = change.to_plan
        return plan

    @property
    def first_activated_at(self) -> datetime | None:
        """When the member first became Active (they count as new then); ``None`` if never."""
        return self.first_entered(_M.ACTIVE)

    def is_active_at(self, instant: datetime) -> bool:
        """True when Active after every change stamped at or before ``instant``."""
        return self.status_at(instant) is _M.ACTIVE
