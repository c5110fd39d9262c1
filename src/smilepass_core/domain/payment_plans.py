"""Patient payment plans: an instalment schedule, what was paid and when, what failed."""

from __future__ import annotations

import bisect
import enum
import operator
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import date, datetime, timedelta
from typing import Any, ClassVar, Self

import attrs

from smilepass_core.domain._fields import (
    choice,
    day,
    identifier,
    of_type,
    optional_identifier,
    whole,
)
from smilepass_core.domain.lifecycle import (
    _EXTENDED,
    HasHistory,
    Lifecycle,
    Status,
    StatusChange,
)
from smilepass_core.domain.practices import BillingCycle, Patient
from smilepass_core.errors import InvalidValue, OutOfOrderChange, RuleViolation
from smilepass_core.money import Money
from smilepass_core.periods import as_instant, local_day

__all__ = [
    "PAYMENT_PLAN_LIFECYCLE",
    "FollowUpAction",
    "Instalment",
    "InstalmentAttempt",
    "PaymentPlan",
    "PaymentPlanStatus",
    "PaymentType",
]


_SUCCEEDED = operator.attrgetter("succeeded")
_AT = operator.attrgetter("at")

#: ``(attempts, k, paid)``: a plan being built by a move of a checked plan holds
#: ``attempts``, of which the first ``k`` (paying ``paid`` instalments) were checked
#: already; its checks look at the rest only (a context variable: per thread and task).
_CHECKED_ATTEMPTS: ContextVar[tuple[tuple[Any, ...], int, int] | None] = ContextVar(
    "_CHECKED_ATTEMPTS", default=None
)


class PaymentType(enum.Enum):
    """Instant: one payment now. Plan: n instalments. Hold: authorised now, captured later."""

    INSTANT = "instant"
    PLAN = "plan"
    HOLD = "hold"


class PaymentPlanStatus(Status):
    """The manual's payment plan statuses, plus Cancelled."""

    PENDING = "pending"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


_P = PaymentPlanStatus

#: Pending -> Active (set up / authorised / first instalment paid) or straight to
#: Completed (an Instant payment); Active <-> Failed; Completed and Cancelled are terminal.
PAYMENT_PLAN_LIFECYCLE: Lifecycle[PaymentPlanStatus] = Lifecycle(
    PaymentPlanStatus,
    {
        _P.PENDING: {_P.ACTIVE, _P.COMPLETED, _P.FAILED, _P.CANCELLED},
        _P.ACTIVE: {_P.COMPLETED, _P.FAILED, _P.CANCELLED},
        _P.FAILED: {_P.ACTIVE, _P.COMPLETED, _P.CANCELLED},
        _P.COMPLETED: set(),
        _P.CANCELLED: set(),
    },
    initial={_P.PENDING},
)


class FollowUpAction(enum.Enum):
    """What staff can do next with a plan (the list's Actions menu)."""

    RESEND_PAYMENT_LINK = "resend_payment_link"
    CONTACT_PATIENT = "contact_patient"
    ARCHIVE = "archive"


_ACTIONS: dict[PaymentPlanStatus, tuple[FollowUpAction, ...]] = {
    _P.PENDING: (FollowUpAction.RESEND_PAYMENT_LINK,),
    _P.ACTIVE: (),
    _P.FAILED: (FollowUpAction.RESEND_PAYMENT_LINK, FollowUpAction.CONTACT_PATIENT),
    _P.COMPLETED: (FollowUpAction.ARCHIVE,),
    _P.CANCELLED: (),
}


def _archived_at(value: Any) -> datetime | None:
    return None if value is None else as_instant(value, "archived_at")


@attrs.frozen
class Instalment:
    """One scheduled instalment: its number (from 1), due date and amount."""

    number: int = attrs.field(validator=whole(1))
    due_date: date = attrs.field(validator=day)
    amount: Money = attrs.field(validator=of_type(Money))


@attrs.frozen
class InstalmentAttempt:
    """An attempt to collect instalment ``number``: when, how much, and whether it succeeded."""

    number: int = attrs.field(validator=whole(1))
    at: datetime = attrs.field(converter=as_instant)
    amount: Money = attrs.field(validator=of_type(Money))
    succeeded: bool = attrs.field(validator=of_type(bool))
    payment_id: str | None = attrs.field(default=None, validator=optional_identifier)
    reason: str = ""


def _article(payment_type: PaymentType) -> str:
    """``"an INSTANT"``, ``"a HOLD"``."""
    name = payment_type.name
    return f"{'an' if name[0] in 'AEIOU' else 'a'} {name}"


def _closed(plan: PaymentPlan, action: str) -> RuleViolation:
    return RuleViolation(
        "plan_closed",
        f"PaymentPlan {plan.id}: cannot {action} a {plan.status.name} plan",
        plan_id=plan.id,
        status=plan.status,
    )


def _schedule(value: Iterable[Instalment]) -> tuple[Instalment, ...]:
    return tuple(value)


def _history(
    value: Iterable[StatusChange[PaymentPlanStatus]],
) -> tuple[StatusChange[PaymentPlanStatus], ...]:
    return tuple(value)


def _attempts(value: Iterable[InstalmentAttempt]) -> tuple[InstalmentAttempt, ...]:
    return tuple(value)


@attrs.frozen
class PaymentPlan(HasHistory[PaymentPlanStatus]):
    """A payment plan: total, payment type, instalment schedule, attempts and status history.

    ``template_id`` names the :class:`~smilepass_core.domain.templates.PaymentPlanTemplate`
    it was offered from, if any (a store checks the plan follows it).

    >>> from datetime import date, datetime, timezone
    >>> t = datetime(2026, 1, 10, tzinfo=timezone.utc)
    >>> plan = PaymentPlan.offer(id="pp1", practice_id="p1", patient=Patient("pat1", "Ada"),
    ...     total=Money.of("1000", "AUD"), payment_type=PaymentType.PLAN, instalments=3,
    ...     first_due=date(2026, 1, 31), at=t)
    >>> [(str(i.due_date), str(i.amount)) for i in plan.schedule]
    [('2026-01-31', 'AUD 333.34'), ('2026-02-28', 'AUD 333.33'), ('2026-03-31', 'AUD 333.33')]
    >>> plan = plan.record_payment(at=datetime(2026, 1, 31, tzinfo=timezone.utc))
    >>> plan.progression, str(plan.balance), plan.status.name
    ('1/3', 'AUD 666.66', 'ACTIVE')
    """

    LIFECYCLE: ClassVar[Lifecycle[PaymentPlanStatus]] = PAYMENT_PLAN_LIFECYCLE

    id: str = attrs.field(validator=identifier)
    practice_id: str = attrs.field(validator=identifier)
    patient: Patient = attrs.field(validator=of_type(Patient))
    total: Money = attrs.field(validator=of_type(Money))
    payment_type: PaymentType = attrs.field(**choice(PaymentType))
    schedule: tuple[Instalment, ...] = attrs.field(converter=_schedule)
    history: tuple[StatusChange[PaymentPlanStatus], ...] = attrs.field(converter=_history)
    attempts: tuple[InstalmentAttempt, ...] = attrs.field(default=(), converter=_attempts)
    member_id: str | None = attrs.field(default=None, validator=optional_identifier)
    archived_at: datetime | None = attrs.field(default=None, converter=_archived_at)
    template_id: str | None = attrs.field(default=None, validator=optional_identifier)

    def __attrs_post_init__(self) -> None:
        subject = f"PaymentPlan {self.id}"
        PAYMENT_PLAN_LIFECYCLE.validate(self.history, subject=subject)
        if not self.total.is_positive():
            raise InvalidValue("total", self.total, "must be positive")
        n = len(self.schedule)
        if n == 0:
            raise InvalidValue("schedule", self.schedule, "must hold at least one instalment")
        if self.payment_type is not PaymentType.PLAN and n != 1:
            raise InvalidValue(
                "schedule", n, f"{_article(self.payment_type)} payment has exactly one instalment"
            )
        if [i.number for i in self.schedule] != list(range(1, n + 1)):
            raise InvalidValue("schedule", self.schedule, "instalments must be numbered 1..n")
        if any(not i.amount.is_positive() for i in self.schedule):
            raise InvalidValue("schedule", self.schedule, "every instalment must be positive")
        if sum(i.amount for i in self.schedule) != self.total:
            raise InvalidValue("schedule", self.schedule, f"amounts must add up to {self.total}")
        paid, start = 0, 0
        checked = _CHECKED_ATTEMPTS.get()
        if checked is not None and checked[0] is self.attempts:
            # A move of a checked plan: only the attempts after the checked ones are new.
            start, paid = checked[1], checked[2]
        for k in range(start, len(self.attempts)):
            previous, attempt = (self.attempts[k - 1] if k else None), self.attempts[k]
            if previous is not None and attempt.at < previous.at:
                raise OutOfOrderChange(previous.at, attempt.at, subject=subject)
            if (
                paid >= n
                or attempt.number != paid + 1
                or attempt.amount != self.schedule[paid].amount
            ):
                raise InvalidValue(
                    "attempts", attempt, f"must be for instalment {paid + 1} of its amount"
                )
            paid += attempt.succeeded
        if (paid == n) != (self.status is _P.COMPLETED):
            raise InvalidValue(
                "history", self.status.name, f"{paid}/{n} paid: Completed exactly when all are"
            )
        if self.archived_at is not None and self.status is not _P.COMPLETED:
            raise InvalidValue("archived_at", self.archived_at, "only a Completed plan is archived")

    # -- construction -------------------------------------------------------------

    @classmethod
    def offer(
        cls,
        *,
        id: str,
        practice_id: str,
        patient: Patient,
        total: Money,
        payment_type: PaymentType,
        first_due: date,
        at: datetime,
        instalments: int = 1,
        cycle: BillingCycle = BillingCycle.MONTHLY,
        member_id: str | None = None,
        timezone: str | None = None,
    ) -> PaymentPlan:
        """A Pending plan of ``instalments`` (1 for Instant and Hold), due every ``cycle``
        from ``first_due``; amounts split by :meth:`Money.allocate` (remainder on the first).

        ``first_due`` may not come before the offer's local date: the local date of ``at``
        in ``timezone`` when it is given, otherwise the day before ``at``'s UTC date (the
        earliest local date anywhere). A practice's own rules (totals, lengths, deferral,
        members only) are checked by :func:`~smilepass_core.domain.templates.offer_from_template`.

        Raises:
            InvalidValue: ``instalments`` below 1, or not 1 for Instant and Hold; a
                ``first_due`` before the offer's local date.
        """
        if not isinstance(instalments, int) or isinstance(instalments, bool) or instalments < 1:
            raise InvalidValue("instalments", instalments, "must be a whole number >= 1")
        if payment_type is not PaymentType.PLAN and instalments != 1:
            raise InvalidValue(
                "instalments", instalments, f"{_article(payment_type)} payment has exactly one"
            )
        if not isinstance(total, Money) or not total.is_positive():
            raise InvalidValue("total", total, "must be positive Money")
        if total.minor < instalments:
            raise InvalidValue(
                "instalments", instalments, f"more instalments than minor units in {total}"
            )
        if not isinstance(first_due, date) or isinstance(first_due, datetime):
            raise InvalidValue("first_due", first_due, "must be a date (not a datetime)")
        earliest = (
            local_day(at, timezone)
            if timezone is not None
            else as_instant(at).date() - timedelta(days=1)  # the earliest local date on Earth
        )
        if first_due < earliest:
            raise InvalidValue(
                "first_due", first_due, f"is before the offer's local date {earliest}"
            )
        amounts = total.allocate(instalments)
        schedule = tuple(
            Instalment(k + 1, cycle.nth(first_due, k), amount) for k, amount in enumerate(amounts)
        )
        return cls(
            id=id,
            practice_id=practice_id,
            patient=patient,
            total=total,
            payment_type=payment_type,
            schedule=schedule,
            history=PAYMENT_PLAN_LIFECYCLE.start(_P.PENDING, at, "offered"),
            member_id=member_id,
        )

    # -- moves ------------------------------------------------------------------------

    def _moved(self, to: PaymentPlanStatus, at: datetime, reason: str, **changes: Any) -> Self:
        """A status move, checked against the table, then dated no earlier than the last
        status change or instalment attempt."""
        # The attempts stay as checked (a change of them is checked in full).
        token = _CHECKED_ATTEMPTS.set((self.attempts, len(self.attempts), self.paid_count))
        try:
            moved = super()._moved(to, at, reason, **changes)
        finally:
            _CHECKED_ATTEMPTS.reset(token)
        when = moved.history[-1].at
        if self.attempts and when < self.attempts[-1].at:
            raise OutOfOrderChange(self.attempts[-1].at, when, subject=f"PaymentPlan {self.id}")
        return moved

    def activate(self, *, at: datetime, reason: str = "set up by the patient") -> PaymentPlan:
        """Pending -> Active: the patient set up the instalments (or authorised a Hold)."""
        return self._moved(_P.ACTIVE, at, reason)

    def cancel(self, *, at: datetime, reason: str = "cancelled") -> PaymentPlan:
        """Cancelled, for good: nothing more is collected."""
        return self._moved(_P.CANCELLED, at, reason)

    def record_payment(
        self,
        *,
        at: datetime,
        amount: Money | None = None,
        payment_id: str | None = None,
    ) -> PaymentPlan:
        """Pay the next instalment; the last one completes the plan, one on a
        Pending or Failed plan makes it Active.

        Raises:
            RuleViolation: the plan is Completed or Cancelled (``plan_closed``), the
                amount exceeds the balance (``overpayment``) or is not the next
                instalment's amount (``instalment_amount``).
        """
        due = self.next_instalment
        if due is None or self.status in PAYMENT_PLAN_LIFECYCLE.terminal:
            raise _closed(self, "pay")
        amount = due.amount if amount is None else amount
        if not isinstance(amount, Money):
            raise InvalidValue("amount", amount, "must be Money")
        if amount > self.balance:
            raise RuleViolation(
                "overpayment",
                f"PaymentPlan {self.id}: {amount} exceeds the balance {self.balance}",
                plan_id=self.id,
                balance=self.balance,
            )
        if amount != due.amount:
            raise RuleViolation(
                "instalment_amount",
                f"PaymentPlan {self.id}: instalment {due.number} is {due.amount}, not {amount}",
                plan_id=self.id,
                expected=due.amount,
            )
        attempt = InstalmentAttempt(due.number, at, amount, True, payment_id)
        if due.number == len(self.schedule):
            return self._attempt(attempt, _P.COMPLETED, "last instalment paid")
        return self._attempt(attempt, _P.ACTIVE, "instalment paid")

    def record_failure(
        self, *, at: datetime, reason: str = "charge failed", payment_id: str | None = None
    ) -> PaymentPlan:
        """A failed attempt at the next instalment: the plan becomes (or stays) Failed.

        Raises:
            RuleViolation: the plan is Completed or Cancelled (``plan_closed``).
        """
        due = self.next_instalment
        if due is None or self.status in PAYMENT_PLAN_LIFECYCLE.terminal:
            raise _closed(self, "record a failure on")
        attempt = InstalmentAttempt(due.number, at, due.amount, False, payment_id, reason)
        return self._attempt(attempt, _P.FAILED, reason)

    def _attempt(
        self, attempt: InstalmentAttempt, to: PaymentPlanStatus, reason: str
    ) -> PaymentPlan:
        """Append ``attempt`` and, unless already there, move to ``to``: in one step."""
        if self.attempts and attempt.at < self.attempts[-1].at:
            raise OutOfOrderChange(
                self.attempts[-1].at, attempt.at, subject=f"PaymentPlan {self.id}"
            )
        history = self.history
        if to is not self.status:
            history = self.LIFECYCLE.append(
                history, to, attempt.at, reason, subject=f"PaymentPlan {self.id}"
            )
        elif attempt.at < history[-1].at:
            raise OutOfOrderChange(history[-1].at, attempt.at, subject=f"PaymentPlan {self.id}")
        attempts = (*self.attempts, attempt)
        # self was checked when built and the history move on its own: the new plan's
        # checks walk neither again, only the new attempt (building stays linear).
        history_token = _EXTENDED.set(history)
        attempts_token = _CHECKED_ATTEMPTS.set((attempts, len(self.attempts), self.paid_count))
        try:
            return attrs.evolve(self, attempts=attempts, history=history)
        finally:
            _CHECKED_ATTEMPTS.reset(attempts_token)
            _EXTENDED.reset(history_token)

    def archive(self, *, at: datetime) -> PaymentPlan:
        """Archive a Completed plan (kept for records, off the working list).

        Raises:
            RuleViolation: the plan is not Completed, or is already archived (``not_archivable``).
            OutOfOrderChange: ``at`` is before the plan's last status change.
        """
        when = as_instant(at)
        if when < self.history[-1].at:
            raise OutOfOrderChange(self.history[-1].at, when, subject=f"PaymentPlan {self.id}")
        if self.status is not _P.COMPLETED or self.archived_at is not None:
            raise RuleViolation(
                "not_archivable",
                f"PaymentPlan {self.id}: only an unarchived Completed plan can be archived "
                f"(status {self.status.name})",
                plan_id=self.id,
            )
        return attrs.evolve(self, archived_at=when)

    def _until(
        self, when: datetime, history: tuple[StatusChange[PaymentPlanStatus], ...]
    ) -> PaymentPlan:
        attempts = self.attempts[: bisect.bisect_right(self.attempts, when, key=_AT)]
        archived_at = self.archived_at if self.archived_at and self.archived_at <= when else None
        if (history, attempts, archived_at) == (self.history, self.attempts, self.archived_at):
            return self
        return attrs.evolve(self, history=history, attempts=attempts, archived_at=archived_at)

    # -- figures ----------------------------------------------------------------------

    @property
    def instalment_count(self) -> int:
        """Number of scheduled instalments."""
        return len(self.schedule)

    @property
    def paid_count(self) -> int:
        """Number of instalments paid."""
        return sum(map(_SUCCEEDED, self.attempts))  # in C: it is read on every move

    @property
    def progression(self) -> str:
        """Paid over scheduled, as the list shows it: ``"4/12"``."""
        return f"{self.paid_count}/{self.instalment_count}"

    @property
    def paid(self) -> Money:
        """Total of the instalments paid."""
        return sum(
            (a.amount for a in self.attempts if a.succeeded), Money.zero(self.total.currency)
        )

    @property
    def balance(self) -> Money:
        """Outstanding amount: total minus paid."""
        return self.total - self.paid

    @property
    def next_instalment(self) -> Instalment | None:
        """The first unpaid instalment; ``None`` when all are paid."""
        n = self.paid_count
        return self.schedule[n] if n < len(self.schedule) else None

    @property
    def is_archived(self) -> bool:
        """True once archived."""
        return self.archived_at is not None

    @property
    def committed_at(self) -> datetime | None:
        """When the patient committed: first Active, or Completed at once (an Instant payment)."""
        return next((c.at for c in self.history if c.to in (_P.ACTIVE, _P.COMPLETED)), None)

    def unpaid_due_before(self, day: date, *, at: datetime | None = None) -> tuple[Instalment, ...]:
        """Instalments due before ``day`` and not paid (none once Completed or Cancelled).

        With ``at``, the plan is judged as it stood at that instant: its status then and
        the instalments paid by then (a payment stamped exactly at ``at`` counts).
        """
        status: PaymentPlanStatus | None = self.status
        paid = self.paid_count
        if at is not None:
            when = as_instant(at)
            status = self.status_at(when)
            paid = sum(a.succeeded for a in self.attempts if a.at <= when)
        if status is None or status in PAYMENT_PLAN_LIFECYCLE.terminal:
            return ()
        return tuple(i for i in self.schedule[paid:] if i.due_date < day)

    def follow_up_actions(self) -> tuple[FollowUpAction, ...]:
        """The Actions menu for the current status (Failed: resend link, contact patient)."""
        if self.is_archived:
            return ()
        return _ACTIONS[self.status]
