"""Campaigns and referrals: who referred whom, through which campaign, and whether it converted."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any, ClassVar

import attrs

from smilepass_core.domain._fields import day, identifier, of_type, optional_identifier, text
from smilepass_core.domain.discounts import Discount, DiscountBasis, _plan_ids
from smilepass_core.domain.lifecycle import HasHistory, Lifecycle, Status, StatusChange
from smilepass_core.domain.members import Member, _patients
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
    "campaign_for_code",
    "check_codes",
    "check_joiners",
    "check_members_plans",
    "check_sign_up",
    "check_sign_up_plan",
    "reward_referrer",
]


def _active_from(value: Any) -> datetime:
    return as_instant(value, "active_from")


def _active_until(value: Any) -> datetime | None:
    return None if value is None else as_instant(value, "active_until")


def _code_key(code: str) -> str:
    """How a typed code is compared: without surrounding spaces, case folded."""
    return code.strip().casefold()


def _other_codes(value: Any) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidValue("other_codes", value, "must be a collection of promo codes")
    codes = frozenset(value)
    if any(not isinstance(c, str) or not c.strip() for c in codes):
        raise InvalidValue("other_codes", value, "must be a collection of promo codes")
    return codes


def _discount(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, Discount):
        raise InvalidValue("discount", value, "must be a Discount (or None)")


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
    other_codes: frozenset[str] = attrs.field(
        default=frozenset(), converter=_other_codes, kw_only=True
    )
    plans: frozenset[str] | None = attrs.field(default=None, converter=_plan_ids, kw_only=True)
    discount: Discount | None = attrs.field(default=None, validator=_discount, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if self.active_until is not None and self.active_until < self.active_from:
            raise InvalidValue("active_until", self.active_until, "is before active_from")
        keys = [_code_key(c) for c in self.codes]
        if len(set(keys)) < len(keys):
            raise InvalidValue("other_codes", sorted(self.other_codes), "repeat a code")
        if self.discount is not None and self.discount.practice_id != self.practice_id:
            raise InvalidValue(
                "discount",
                self.discount.id,
                f"belongs to practice {self.discount.practice_id}, not {self.practice_id}",
            )
        if not self.has_own_history:  # the window's history follows the window
            window = [StatusChange(self.active_from, None, _C.ACTIVE, _OPENS)]
            if self.active_until is not None:
                window.append(StatusChange(self.active_until, _C.ACTIVE, _C.ENDED, _ENDS))
            object.__setattr__(self, "history", tuple(window))
        CAMPAIGN_LIFECYCLE.validate(self.history, subject=f"Campaign {self.id}")

    @property
    def codes(self) -> tuple[str, ...]:
        """Every promo code that signs up through it: ``promo_code``, then the others."""
        return (self.promo_code, *sorted(self.other_codes))

    def accepts(self, code: str) -> bool:
        """Whether ``code`` is one of its codes (surrounding spaces and case ignored)."""
        return isinstance(code, str) and _code_key(code) in {_code_key(c) for c in self.codes}

    def applies_to(self, plan_id: str) -> bool:
        """Whether it takes sign-ups onto plan ``plan_id`` (``plans`` None: every plan)."""
        return self.plans is None or plan_id in self.plans

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
        other_codes: Iterable[str] = (),
        plans: Iterable[str] | None = None,
        discount: Discount | None = None,
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
            other_codes=frozenset(other_codes),
            plans=plans,
            discount=discount,
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

    def active_spells(self) -> tuple[tuple[datetime, datetime | None], ...]:
        """Each span ``[start, end)`` it was Active, in time order (``end`` None: Active
        since ``start``): :meth:`is_active_at` holds exactly inside them."""
        spells: list[tuple[datetime, datetime | None]] = []
        start: datetime | None = None
        for change in self.history:
            if change.to is _C.ACTIVE and start is None:
                start = change.at
            elif change.to is not _C.ACTIVE and start is not None:
                if change.at > start:  # one Active for no time at all is no spell
                    spells.append((start, change.at))
                start = None
        if start is not None:
            spells.append((start, None))
        return tuple(spells)

    def check_sign_up(self, at: datetime, *, subject: str) -> None:
        """Raise unless a sign-up through this campaign at ``at`` is allowed: only an
        Active campaign takes members and referrals (``subject`` names who joins).

        Raises:
            RuleViolation: ``campaign_not_active``, field ``campaign_id``, naming the
                campaign's status then (Draft, Scheduled, Paused, Ended, or not yet
                created).
        """
        check_sign_up(self.id, self.status_at(at), at, subject=subject)

    def check_plan(self, plan_id: str, *, subject: str) -> None:
        """Raise unless it takes a sign-up onto plan ``plan_id`` (``subject`` names who
        joins).

        Raises:
            RuleViolation: ``campaign_plan``, field ``plan_id``, naming the plans it
                applies to.
        """
        check_sign_up_plan(self.id, self.plans, plan_id, subject=subject)

    def apply_code(self, member: Member, code: str) -> Member:
        """``member`` signed up through this campaign with ``code``: its ``campaign_id``
        set and the campaign's discount, if any, granted from the first billing date. The
        sign-up is at the member's enrolment (``created_at``), onto their first plan.

        Raises:
            InvalidValue: ``code`` is not one of its codes (field ``promo_code``); the
                member is another practice's (``practice_id``) or joined another campaign
                (``campaign_id``).
            RuleViolation: ``campaign_not_active`` (not Active at the enrolment: a
                Draft, Scheduled, Paused or Ended campaign's code); ``campaign_plan``
                (field ``plan_id``): it does not apply to the member's plan.
        """
        if not self.accepts(code):
            raise InvalidValue("promo_code", code, f"is not a code of campaign {self.id}")
        if member.practice_id != self.practice_id:
            raise InvalidValue(
                "practice_id",
                member.practice_id,
                f"member {member.id} is not of campaign {self.id}'s practice {self.practice_id}",
            )
        if member.campaign_id not in (None, self.id):
            raise InvalidValue(
                "campaign_id", member.campaign_id, f"member {member.id} joined another campaign"
            )
        self.check_sign_up(member.created_at, subject=f"member {member.id}")
        self.check_plan(member.first_plan_id, subject=f"member {member.id}")
        joined = attrs.evolve(member, campaign_id=self.id)
        granted = {g.discount.id for g in member.discounts}
        if self.discount is None or self.discount.id in granted:
            return joined
        return joined.grant(self.discount, units=1)


def campaign_for_code(campaigns: Iterable[Campaign], code: str, *, at: datetime) -> Campaign:
    """The campaign whose code ``code`` is that is Active at ``at`` (codes compared without
    surrounding spaces and case).

    Raises:
        InvalidValue: no campaign has the code (field ``promo_code``).
        RuleViolation: ``campaign_not_active``: campaigns have it, none Active at ``at``
            (the error names the one whose window began last, and its status then).
    """
    when = as_instant(at, "at")
    having = [c for c in campaigns if c.accepts(code)]
    if not having:
        raise InvalidValue("promo_code", code, "is no campaign's code")
    active = [c for c in having if c.is_active_at(when)]
    if len(active) == 1:
        return active[0]
    if active:
        raise InvalidValue(
            "promo_code", code, f"is the code of campaigns {', '.join(c.id for c in active)}"
        )
    latest = max(having, key=lambda c: (c.active_from, c.id))
    raise _not_active(latest.id, latest.status_at(when), when, f"code {code!r}")


def check_codes(
    campaign: Campaign, others: Iterable[Campaign], *, kept: Campaign | None = None
) -> None:
    """Raise unless ``campaign`` shares no promo code (case and surrounding spaces
    ignored) with another campaign of its practice among ``others`` while both are
    Active: a code typed at a sign-up must name one campaign.

    With ``kept`` (the campaign as a store keeps it, for a save), only a clash ``kept``
    did not have already is refused: a clash kept from before the rule can still be
    ended or paused, never extended.

    Raises:
        RuleViolation: ``promo_code_in_use``, field ``promo_code`` (or ``other_codes``
            for one of its other codes), naming the code, the other campaign and the
            first instant both are Active.
    """
    mine = {_code_key(c): c for c in campaign.codes}
    spells = campaign.active_spells()
    for other in others:
        if other.id == campaign.id or other.practice_id != campaign.practice_id:
            continue
        shared = [mine[k] for k in (_code_key(c) for c in other.codes) if k in mine]
        if not shared:
            continue
        theirs = other.active_spells()
        both = _first_new_overlap(spells, theirs, kept)
        if both is not None:
            code = min(shared, key=campaign.codes.index)
            raise RuleViolation(
                "promo_code_in_use",
                f"campaign {campaign.id}'s code {code!r} is campaign {other.id}'s too, and "
                f"both are Active at {both.isoformat()}: a sign-up's code must name one",
                field="promo_code" if code == campaign.promo_code else "other_codes",
                code=code,
                campaign_id=other.id,
            )


Span = tuple[datetime, datetime | None]


def _overlaps(a: Sequence[Span], b: Sequence[Span]) -> list[Span]:
    """The half-open spans inside a span of ``a`` and a span of ``b``, in time order."""
    found: list[Span] = []
    for start_a, end_a in a:
        for start_b, end_b in b:
            start = max(start_a, start_b)
            ends = [e for e in (end_a, end_b) if e is not None]
            end = min(ends) if ends else None
            if end is None or start < end:
                found.append((start, end))
    return sorted(found, key=lambda span: span[0])


def _first_new_overlap(
    spells: Sequence[Span], theirs: Sequence[Span], kept: Campaign | None
) -> datetime | None:
    """The first instant both are Active that ``kept`` (when given) did not share."""
    old = [] if kept is None else _overlaps(kept.active_spells(), theirs)
    for start, end in _overlaps(spells, theirs):
        first: datetime | None = start
        for s, e in old:  # skip past what the kept campaign already shared
            if first is not None and s <= first and (e is None or first < e):
                first = e
        if first is not None and (end is None or first < end):
            return first
    return None


def check_members_plans(campaign: Campaign, members: Iterable[Member]) -> None:
    """Raise unless ``campaign`` applies to the plan each of ``members`` (those kept as
    joining through it) signed up on, their first plan: a campaign saved with fewer
    ``plans`` must not leave a sign-up standing on a plan it no longer takes.

    Raises:
        RuleViolation: ``campaign_plan``, field ``plan_id``, naming the first member.
    """
    for member in members:
        campaign.check_plan(member.first_plan_id, subject=f"member {member.id}")


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
    if status is not _C.ACTIVE:
        raise _not_active(campaign_id, status, at, subject)


def check_sign_up_plan(
    campaign_id: str, plans: frozenset[str] | None, plan_id: str, *, subject: str
) -> None:
    """Raise unless a campaign applying to ``plans`` (``None``: every plan) takes a sign-up
    onto plan ``plan_id``.

    Raises:
        RuleViolation: ``campaign_plan``, field ``plan_id``, naming the plans it applies to.
    """
    if plans is not None and plan_id not in plans:
        raise RuleViolation(
            "campaign_plan",
            f"{subject} joins campaign {campaign_id} on plan {plan_id}, which it does not"
            f" apply to (it applies to {', '.join(sorted(plans))})",
            field="plan_id",
        )


def _not_active(
    campaign_id: str, status: CampaignStatus | None, at: datetime, subject: str
) -> RuleViolation:
    """The refusal of a sign-up through a campaign that is not Active at ``at``."""
    state = "not yet created" if status is None else status.value
    return RuleViolation(
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


def reward_referrer(
    referrer: Member,
    referral: Referral,
    discount: Discount | None = None,
    *,
    at: datetime | None = None,
) -> Member:
    """``referrer`` credited with ``referral``, which they referred and which converted:
    a :class:`~smilepass_core.domain.members.ReferralReward` at ``at`` (by default its
    conversion; a later instant to credit it late, for instance after a date already
    charged, or after a referral converted later was credited), so a per-referral
    discount counts it from the next billing date. With ``discount`` (a per-referral one)
    not yet granted to them, it is granted first, from their first billing date with no
    units (the rewards are its units).

    >>> from datetime import UTC
    >>> from smilepass_core.money import Money
    >>> t = datetime(2027, 1, 1, tzinfo=UTC)
    >>> ada = Member.enrol(id="m1", practice_id="p", plan_id="gold",
    ...     account_holder=Patient("a", "Ada"), start_date=t.date(), at=t)
    >>> bo = Referral.open(id="r1", practice_id="p", account_holder=Patient("b", "Bo"),
    ...     start_date=t.date(), at=t, referring_member_id="m1").convert(member_id="m2", at=t)
    >>> friend = Discount("f", "p", "Refer a friend", amount=Money.of("5.00", "AUD"),
    ...     basis="per_referral", limit=3)
    >>> rewarded = reward_referrer(ada, bo, friend)
    >>> [(g.discount.id, g.units) for g in rewarded.discounts]
    [('f', 0)]
    >>> [(str(r.at), r.referral_id) for r in rewarded.referral_rewards]
    [('2027-01-01 00:00:00+00:00', 'r1')]

    Raises:
        InvalidValue: the referral is another practice's, not referred by ``referrer``
            (field ``referral``), ``discount`` is not per referral (field ``discount``),
            ``at`` before the conversion (field ``at``); as
            :meth:`Member.reward_referral` (already credited, out of time order).
        RuleViolation: ``referral_not_converted`` (field ``referral``); as
            :meth:`Member.reward_referral` (``referral_reward_after_cancel``).
    """
    if referral.practice_id != referrer.practice_id or referral.referring_member_id != referrer.id:
        raise InvalidValue("referral", referral.id, f"was not referred by member {referrer.id}")
    converted = referral.converted_at
    if converted is None:
        raise RuleViolation(
            "referral_not_converted",
            f"referral {referral.id} has not converted: no reward for member {referrer.id}",
            field="referral",
        )
    member = referrer
    if discount is not None:
        if discount.basis is not DiscountBasis.PER_REFERRAL:
            raise InvalidValue("discount", discount.id, "must be a per-referral discount")
        if all(g.discount.id != discount.id for g in referrer.discounts):
            member = member.grant(discount, units=0)
    when = converted if at is None else as_instant(at)
    if when < converted:
        raise InvalidValue("at", when, f"is before referral {referral.id} converted")
    return member.reward_referral(referral.id, at=when)
