"""Campaigns and referrals: who referred whom, through which campaign, and whether it converted."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, ClassVar

import attrs

from smilepass_core.domain._fields import day, identifier, of_type, optional_identifier, text
from smilepass_core.domain.lifecycle import HasHistory, Lifecycle, Status, StatusChange
from smilepass_core.domain.members import _patients
from smilepass_core.domain.practices import Patient
from smilepass_core.errors import InvalidValue, RuleViolation
from smilepass_core.periods import as_instant

__all__ = [
    "CAMPAIGN_LIFECYCLE",
    "REFERRAL_LIFECYCLE",
    "Campaign",
    "CampaignStatus",
    "Referral",
    "ReferralStatus",
    "check_joiners",
    "check_sign_up",
]


def _active_from(value: Any) -> datetime:
    return as_instant(value, "active_from")


def _active_until(value: Any) -> datetime | None:
    return None if value is None else as_instant(value, "active_until")


class CampaignStatus(Status):
    """A campaign's statuses: prepared (Draft), due to start (Scheduled), running (Active),
    held (Paused), over for good (Ended)."""

    DRAFT = "draft"
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"


_C = CampaignStatus

#: Draft <-> Scheduled -> Active <-> Paused; any of them -> Ended, which is terminal. A
#: campaign may start as Draft, Scheduled or Active (a window given without a history).
CAMPAIGN_LIFECYCLE: Lifecycle[CampaignStatus] = Lifecycle(
    CampaignStatus,
    {
        _C.DRAFT: {_C.SCHEDULED, _C.ACTIVE, _C.ENDED},
        _C.SCHEDULED: {_C.DRAFT, _C.ACTIVE, _C.ENDED},
        _C.ACTIVE: {_C.PAUSED, _C.ENDED},
        _C.PAUSED: {_C.ACTIVE, _C.ENDED},
        _C.ENDED: set(),
    },
    initial={_C.DRAFT, _C.SCHEDULED, _C.ACTIVE},
)


#: The reasons of the changes a campaign's window makes (its history without one of its own).
_OPENS, _ENDS = "window opens", "window ends"


def _campaign_history(value: Any) -> tuple[StatusChange[CampaignStatus], ...]:
    return tuple(value)


@attrs.frozen
class Campaign(HasHistory[CampaignStatus]):
    """A promo code or marketing push, with a status history.

    ``[active_from, active_until)`` is the window the practice planned. The history is
    what happened: :meth:`is_active_at` reads it. Built without a history of its own, a
    campaign's history is its window's: Active at ``active_from``, Ended at
    ``active_until``, rebuilt whenever the window changes (``attrs.evolve``). Create
    one in Draft with :meth:`draft` and move it with :meth:`schedule`, :meth:`activate`,
    :meth:`pause`, :meth:`end` (each returns a new Campaign).
    """

    LIFECYCLE: ClassVar[Lifecycle[CampaignStatus]] = CAMPAIGN_LIFECYCLE

    id: str = attrs.field(validator=identifier)
    practice_id: str = attrs.field(validator=identifier)
    name: str = attrs.field(validator=text)
    promo_code: str = attrs.field(validator=text)
    active_from: datetime = attrs.field(converter=_active_from)
    active_until: datetime | None = attrs.field(default=None, converter=_active_until)
    history: tuple[StatusChange[CampaignStatus], ...] = attrs.field(
        default=(), converter=_campaign_history
    )

    def __attrs_post_init__(self) -> None:
        if self.active_until is not None and self.active_until < self.active_from:
            raise InvalidValue("active_until", self.active_until, "is before active_from")
        if not self.has_own_history:  # the window's history follows the window
            window = [StatusChange(self.active_from, None, _C.ACTIVE, _OPENS)]
            if self.active_until is not None:
                window.append(StatusChange(self.active_until, _C.ACTIVE, _C.ENDED, _ENDS))
            object.__setattr__(self, "history", tuple(window))
        CAMPAIGN_LIFECYCLE.validate(self.history, subject=f"Campaign {self.id}")

    @property
    def has_own_history(self) -> bool:
        """Whether the history was recorded (not made from the window: an empty one, or
        one of only the window's own changes, is rebuilt from the window)."""
        return not all(c.reason in (_OPENS, _ENDS) for c in self.history)

    @classmethod
    def draft(
        cls,
        *,
        id: str,
        practice_id: str,
        name: str,
        promo_code: str,
        active_from: datetime,
        active_until: datetime | None = None,
        at: datetime,
    ) -> Campaign:
        """A new Draft campaign planned for ``[active_from, active_until)``, made at ``at``."""
        return cls(
            id=id,
            practice_id=practice_id,
            name=name,
            promo_code=promo_code,
            active_from=active_from,
            active_until=active_until,
            history=CAMPAIGN_LIFECYCLE.start(_C.DRAFT, at, "drafted"),
        )

    def transition(self, to: CampaignStatus, *, at: datetime, reason: str = "") -> Campaign:
        """Move to ``to`` at ``at``, if the table allows it."""
        return self._moved(to, at, reason)

    def schedule(self, *, at: datetime, reason: str = "scheduled") -> Campaign:
        """Scheduled: ready, due to start."""
        return self._moved(_C.SCHEDULED, at, reason)

    def activate(self, *, at: datetime, reason: str = "started") -> Campaign:
        """Active: sign-ups may use it (also a resume after a pause)."""
        return self._moved(_C.ACTIVE, at, reason)

    def pause(self, *, at: datetime, reason: str = "paused") -> Campaign:
        """Paused: held for now; no sign-ups use it."""
        return self._moved(_C.PAUSED, at, reason)

    def end(self, *, at: datetime, reason: str = "ended") -> Campaign:
        """Ended, for good."""
        return self._moved(_C.ENDED, at, reason)

    def is_active_at(self, instant: datetime) -> bool:
        """True when Active after every change stamped at or before ``instant`` (built
        from a window: ``active_from <= instant < active_until``)."""
        return self.status_at(instant) is _C.ACTIVE

    def check_sign_up(self, at: datetime, *, subject: str) -> None:
        """Raise unless a sign-up through this campaign at ``at`` is allowed: only an
        Active campaign takes members and referrals (``subject`` names who joins).

        Raises:
            RuleViolation: ``campaign_not_active``, field ``campaign_id``, naming the
                campaign's status then (Draft, Scheduled, Paused, Ended, or not yet
                created).
        """
        check_sign_up(self.id, self.status_at(at), at, subject=subject)


def check_joiners(campaign: Campaign, joiners: Iterable[tuple[str, datetime]]) -> None:
    """Raise unless each ``(subject, instant)`` joined ``campaign`` while it was Active, as
    its history now reads: a campaign saved with a change stamped before a sign-up (a
    pause backdated past a member's enrolment) must not leave that sign-up standing.

    Raises:
        RuleViolation: ``campaign_not_active``, field ``campaign_id``, naming the first
            sign-up the new history leaves outside an Active spell.
    """
    for subject, at in joiners:
        campaign.check_sign_up(at, subject=subject)


def check_sign_up(
    campaign_id: str, status: CampaignStatus | None, at: datetime, *, subject: str
) -> None:
    """Raise unless a campaign in ``status`` at ``at`` takes a sign-up (only Active does).

    Raises:
        RuleViolation: ``campaign_not_active``, field ``campaign_id``.
    """
    if status is _C.ACTIVE:
        return
    state = "not yet created" if status is None else status.value
    raise RuleViolation(
        "campaign_not_active",
        f"{subject} joins campaign {campaign_id} at {at.isoformat()}, when it is {state}: "
        "only an Active campaign takes sign-ups",
        field="campaign_id",
    )


class ReferralStatus(Status):
    """Pending until the referred person becomes a member (Converted) or drops out (Cancelled)."""

    PENDING = "pending"
    CONVERTED = "converted"
    CANCELLED = "cancelled"


_R = ReferralStatus

#: Pending -> Converted or Cancelled; both are terminal.
REFERRAL_LIFECYCLE: Lifecycle[ReferralStatus] = Lifecycle(
    ReferralStatus,
    {_R.PENDING: {_R.CONVERTED, _R.CANCELLED}, _R.CONVERTED: set(), _R.CANCELLED: set()},
    initial={_R.PENDING},
)


def _history(
    value: Iterable[StatusChange[ReferralStatus]],
) -> tuple[StatusChange[ReferralStatus], ...]:
    return tuple(value)


@attrs.frozen
class Referral(HasHistory[ReferralStatus]):
    """A referral: the referred account holder and dependents, through which campaign,
    which staff user, which member referred them, and the member record it converted into.

    ``member_id`` is set exactly when the referral is Converted, and a member never
    refers themselves (``referring_member_id != member_id``).
    """

    LIFECYCLE: ClassVar[Lifecycle[ReferralStatus]] = REFERRAL_LIFECYCLE

    id: str = attrs.field(validator=identifier)
    practice_id: str = attrs.field(validator=identifier)
    account_holder: Patient = attrs.field(validator=of_type(Patient))
    start_date: date = attrs.field(validator=day)
    history: tuple[StatusChange[ReferralStatus], ...] = attrs.field(converter=_history)
    dependents: tuple[Patient, ...] = attrs.field(default=(), converter=_patients)
    campaign_id: str | None = attrs.field(default=None, validator=optional_identifier)
    staff_user_id: str | None = attrs.field(default=None, validator=optional_identifier)
    referring_member_id: str | None = attrs.field(default=None, validator=optional_identifier)
    member_id: str | None = attrs.field(default=None, validator=optional_identifier)

    def __attrs_post_init__(self) -> None:
        REFERRAL_LIFECYCLE.validate(self.history, subject=f"Referral {self.id}")
        if (self.member_id is not None) != (self.status is _R.CONVERTED):
            raise InvalidValue(
                "member_id", self.member_id, "is set exactly when the referral is Converted"
            )
        if self.member_id is not None and self.member_id == self.referring_member_id:
            raise InvalidValue(
                "referring_member_id", self.referring_member_id, "a member cannot refer themselves"
            )

    @classmethod
    def open(
        cls,
        *,
        id: str,
        practice_id: str,
        account_holder: Patient,
        start_date: date,
        at: datetime,
        dependents: tuple[Patient, ...] = (),
        campaign_id: str | None = None,
        staff_user_id: str | None = None,
        referring_member_id: str | None = None,
    ) -> Referral:
        """A new Pending referral."""
        return cls(
            id=id,
            practice_id=practice_id,
            account_holder=account_holder,
            start_date=start_date,
            history=REFERRAL_LIFECYCLE.start(_R.PENDING, at, "referred"),
            dependents=dependents,
            campaign_id=campaign_id,
            staff_user_id=staff_user_id,
            referring_member_id=referring_member_id,
        )

    def _until(self, when: datetime, history: tuple[StatusChange[ReferralStatus], ...]) -> Referral:
        if len(history) == len(self.history):
            return self
        converted = history[-1].to is _R.CONVERTED
        return attrs.evolve(self, history=history, member_id=self.member_id if converted else None)

    def convert(self, *, member_id: str, at: datetime, reason: str = "became a member") -> Referral:
        """Converted into member ``member_id``."""
        return self._moved(_R.CONVERTED, at, reason, member_id=member_id)

    def cancel(self, *, at: datetime, reason: str = "cancelled") -> Referral:
        """Cancelled: the referred person did not join."""
        return self._moved(_R.CANCELLED, at, reason)

    @property
    def converted_at(self) -> datetime | None:
        """When the referral converted; ``None`` if it has not."""
        return self.first_entered(_R.CONVERTED)
