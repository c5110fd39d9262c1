"""A minimal host store: every repository a dict of objects by id, no indexes.

``from smilepass_core.testing.minimal import MinimalStore`` gives a complete store
that passes the whole contract kit: a model for a host's own, and a store to
plant bugs in when trying the kit.

Each read filters with the query spec's own ``matches`` and sorts and pages with
``apply_order``, so the answers are the library's definitions by construction.
Every read is a full scan: fine for a few thousand rows, or as a model for a SQL
store, which pushes the same filters down to indexed columns (see
``docs/repositories.md`` for the reads the KPIs make and so must be fast).

Referential checks (a member's practice and plan exist, ...) are left to the
host's database, as foreign keys; ``InMemoryStore`` makes them itself.
"""

from __future__ import annotations

from typing import Any

from smilepass_core import (
    Campaign,
    ConflictingPayment,
    DuplicateId,
    Member,
    MembershipPlan,
    Money,
    NotFound,
    Order,
    Payment,
    PaymentPlan,
    PaymentPlanTemplate,
    Practice,
    Referral,
    RuleViolation,
    StaffUser,
)
from smilepass_core.domain import (
    check_codes,
    check_joiners,
    check_members_plans,
    check_offer,
    check_offers,
    check_refund,
    check_successor,
    check_template_change,
    check_version,
)
from smilepass_core.domain.billing import (
    check_cancel_after_charges,
    check_charge_dates,
    check_member_repriced,
    check_membership_charge,
    check_reprice,
    check_timezone_kept,
)
from smilepass_core.domain.templates import member_change, offer_of
from smilepass_core.money import per_currency
from smilepass_core.queries import apply_order

__all__ = [
    "Campaigns",
    "Members",
    "MembershipPlans",
    "MinimalStore",
    "PaymentPlanTemplates",
    "PaymentPlans",
    "Payments",
    "Practices",
    "Referrals",
    "Table",
]


class Table:
    """One repository: objects of one ``kind`` kept by id."""

    def __init__(self, kind: type, store: MinimalStore) -> None:
        self.kind = kind
        self.store = store
        self.rows: dict[str, Any] = {}
        self.versions: dict[str, int] = {}

    def matches(self, query: Any, obj: Any) -> bool:
        """True when ``obj`` passes ``query`` (subclasses pass extra context)."""
        return bool(query.matches(obj))

    def matching(self, query: Any) -> list[Any]:
        """Every object that passes ``query``, unordered."""
        return [obj for obj in self.rows.values() if self.matches(query, obj)]

    def get(self, id: str) -> Any:
        """The object with ``id``; raises NotFound."""
        if id not in self.rows:
            raise NotFound(self.kind.__name__, id)
        return self.rows[id]

    def find(self, query: Any, *, order: Order | None = None) -> list[Any]:
        """The matching objects, sorted and paged (ties by id)."""
        return apply_order(self.matching(query), self.kind, order)

    def count(self, query: Any) -> int:
        """How many objects match (paging does not apply)."""
        return len(self.matching(query))

    def add(self, obj: Any) -> None:
        """Keep a new object; raises DuplicateId if its id is taken."""
        if obj.id in self.rows:
            raise DuplicateId(self.kind.__name__, obj.id)
        self.rows[obj.id] = obj
        self.versions[obj.id] = 1

    def version(self, id: str) -> int:
        """How many writes the object has had (1 after add); raises NotFound."""
        self.get(id)
        return self.versions[id]

    def save(self, obj: Any, *, expected_version: int | None = None) -> None:
        """Replace the object with ``obj.id``; raises NotFound if there is none,
        VersionConflict when ``expected_version`` is not the kept one, and RuleViolation
        for a stale copy or a move to another practice."""
        kept = self.get(obj.id)
        if expected_version is not None:
            check_version(self.kind.__name__, obj.id, expected_version, self.versions[obj.id])
        check_successor(kept, obj)
        self.check_save(kept, obj)
        self.rows[obj.id] = obj
        self.versions[obj.id] += 1

    def check_save(self, kept: Any, obj: Any) -> None:
        """What a save checks besides the version and the history (nothing here)."""


class Campaigns(Table):
    """Campaigns: no two of a practice share a code while both are Active; a save must
    leave every sign-up through the campaign inside an Active spell of its history, and
    every member on a plan it applies to."""

    def add(self, obj: Any) -> None:
        """Keep a new campaign (see :meth:`Table.add`); raises RuleViolation
        ``promo_code_in_use`` for a code another campaign has while both are Active."""
        if obj.id in self.rows:
            raise DuplicateId(self.kind.__name__, obj.id)
        check_codes(obj, self.rows.values())
        super().add(obj)

    def check_save(self, kept: Any, obj: Any) -> None:
        """Raise RuleViolation as :meth:`add`, or when a member or referral that joined
        through the campaign would have joined it while not Active, or a member on a plan
        it does not apply to, as ``obj`` reads."""
        check_codes(obj, self.rows.values(), kept=kept)
        joiners = [*self.store.members.rows.values(), *self.store.referrals.rows.values()]
        mine = [j for j in joiners if j.campaign_id == obj.id]
        check_joiners(obj, ((f"{type(j).__name__.lower()} {j.id}", j.created_at) for j in mine))
        check_members_plans(obj, [j for j in mine if isinstance(j, Member)])


class MembershipPlans(Table):
    """Membership plans: a reprice or a new cycle must not change the billing date or the
    price that a recorded charge was priced at."""

    def check_save(self, kept: Any, obj: Any) -> None:
        """Raise RuleViolation ``reprice_backdated`` when ``obj`` reprices back over, or
        moves, a charged billing date (the practice's members and ledger as kept)."""
        practice = self.store.practices.rows.get(obj.practice_id)
        if practice is None:  # the practice is the host's to check
            return
        members = [m for m in self.store.members.rows.values() if m.practice_id == obj.practice_id]
        check_reprice(
            kept,
            obj,
            members,
            self.store.payments.rows.values(),  # entries of other members are ignored
            timezone=practice.timezone,
            plans=self.rows,
        )


class Practices(Table):
    """Practices: a new time zone must leave every kept plan an offer of its template, and
    every recorded membership charge of an amount allowed."""

    def check_save(self, kept: Any, obj: Any) -> None:
        """Raise RuleViolation ``template`` for a time zone in which a kept plan is no
        longer an offer of its template (judged on its offer's local date), or
        ``reprice_backdated`` for one in which a recorded charge is repriced."""
        if kept.timezone != obj.timezone:
            change = (f"practice {obj.id}'s time zone {obj.timezone}", "timezone")
            _offers_kept(self.store, obj.id, obj.timezone, {}, change)
            check_timezone_kept(
                obj,
                [m for m in self.store.members.rows.values() if m.practice_id == obj.id],
                self.store.payments.rows.values(),  # entries of other practices are ignored
                plans=self.store.membership_plans.rows,
            )


def _offers_kept(
    store: MinimalStore,
    practice_id: str,
    timezone: str,
    members: dict[str, Any],
    change: tuple[str, str],
) -> None:
    """check_offers for the practice's plans naming a kept template (``members``: the
    members as they are to be saved; the others as kept), ``change`` naming what moved
    and its field."""
    templates = store.payment_plan_templates.rows
    check_offers(
        (
            p
            for p in store.payment_plans.rows.values()
            if p.practice_id == practice_id and p.template_id in templates
        ),
        templates,
        timezone=timezone,
        members={**store.members.rows, **members},
        change=change[0],
        field=change[1],
    )


class Members(Table):
    """Members: the overdue filter needs the member's plans, ledger and time zone; a
    member joins a campaign only while it is Active."""

    def add(self, obj: Any) -> None:
        """Keep a new member (see :meth:`Table.add`); raises RuleViolation for a sign-up
        through a campaign not Active at the enrolment."""
        _sign_up(self.store, obj)
        super().add(obj)

    def save(self, obj: Any, *, expected_version: int | None = None) -> None:
        """Replace the member (see :meth:`Table.save`), its campaign checked as in add;
        raises RuleViolation for a cancellation before a charge already recorded, or a
        grant or plan change back over a charged billing date (:meth:`check_save`)."""
        _sign_up(self.store, obj)
        check_cancel_after_charges(obj, self.store.payments.rows.values())
        super().save(obj, expected_version=expected_version)

    def check_save(self, kept: Any, obj: Any) -> None:
        """Raise RuleViolation ``reprice_backdated`` when a discount granted, or a plan or
        dependent change recorded, reaches back over a billing date the member was charged
        up to, or a status change (or a start date or plan rewritten) makes a recorded
        charge's amount one no longer allowed."""
        practice = self.store.practices.rows.get(obj.practice_id)
        if practice is None:  # the practice is the host's to check
            return
        check_member_repriced(
            kept,
            obj,
            self.store.payments.rows.values(),  # entries of other members are ignored
            timezone=practice.timezone,
            plans=self.store.membership_plans.rows,
        )
        moved = member_change(kept, obj)
        if moved is not None:
            _offers_kept(self.store, obj.practice_id, practice.timezone, {obj.id: obj}, moved)

    def matches(self, query: Any, member: Any) -> bool:
        """True when ``member`` passes ``query``, its plans, ledger and zone read for
        Overdue."""
        if query.overdue is None:
            return bool(query.matches(member))
        store = self.store
        plans = [p for p in store.payment_plans.rows.values() if p.member_id == member.id]
        ledger = [p for p in store.payments.rows.values() if p.member_id == member.id]
        zone = store.practices.get(member.practice_id).timezone
        return bool(
            query.matches(
                member,
                plans=plans,
                timezone=zone,
                payments=ledger,
                membership_plans=store.membership_plans.rows,
            )
        )


class Referrals(Table):
    """Referrals: opened through a campaign only while it is Active."""

    def add(self, obj: Any) -> None:
        """Keep a new referral; raises RuleViolation as :meth:`Members.add`."""
        _sign_up(self.store, obj)
        super().add(obj)

    def save(self, obj: Any, *, expected_version: int | None = None) -> None:
        """Replace the referral, its campaign checked as in add."""
        _sign_up(self.store, obj)
        super().save(obj, expected_version=expected_version)


def _sign_up(store: MinimalStore, obj: Any) -> None:
    """Raise unless ``obj``'s campaign, when it has one kept, is Active when it joined
    (and applies to a member's first plan)."""
    campaign = store.campaigns.rows.get(obj.campaign_id) if obj.campaign_id else None
    if campaign is not None:
        subject = f"{type(obj).__name__} {obj.id}"
        campaign.check_sign_up(obj.created_at, subject=subject)
        if isinstance(obj, Member):
            campaign.check_plan(obj.first_plan_id, subject=subject)


class PaymentPlanTemplates(Table):
    """Payment-plan templates: terms fixed once a kept plan was offered from one."""

    def check_save(self, kept: Any, obj: Any) -> None:
        """Raise RuleViolation ``template_in_use`` for a change of terms (or a retirement
        before an offer) while plans offered from it are kept."""
        plans = self.store.payment_plans.rows.values()
        check_template_change(kept, obj, (p.created_at for p in plans if p.template_id == obj.id))


class PaymentPlans(Table):
    """Payment plans: one that names a kept template must be its offer; the overdue
    filter needs the practice's time zone; ``total`` sums."""

    def add(self, obj: Any) -> None:
        """Keep a new plan (see :meth:`Table.add`); raises RuleViolation ``template`` when
        it names a kept template it is no offer of."""
        if obj.id in self.rows:
            raise DuplicateId(self.kind.__name__, obj.id)
        self._check_offer(None, obj)
        super().add(obj)

    def check_save(self, kept: Any, obj: Any) -> None:
        """Raise as :meth:`add` when what the offer check reads changed."""
        self._check_offer(kept, obj)

    def _check_offer(self, kept: Any, obj: Any) -> None:
        store = self.store
        template = store.payment_plan_templates.rows.get(obj.template_id or "")
        practice = store.practices.rows.get(obj.practice_id)
        if template is None or practice is None:  # the references are the host's to check
            return
        if kept is None or offer_of(kept) != offer_of(obj):
            member = store.members.rows.get(obj.member_id or "")
            check_offer(template, obj, timezone=practice.timezone, member=member)

    def matches(self, query: Any, plan: Any) -> bool:
        """True when ``plan`` passes ``query``, read in its practice's zone."""
        zone = self.store.practices.get(plan.practice_id).timezone
        return bool(query.matches(plan, timezone=zone))

    def total(self, query: Any) -> dict[str, Money]:
        """Sum of the matching plans' totals, per currency."""
        return per_currency(plan.total for plan in self.matching(query))


class Payments(Table):
    """The ledger: append-only, idempotent, refunds capped by what was collected."""

    def add(self, payment: Any) -> None:
        """Record an entry; the same entry again is a no-op, other content under its id raises."""
        recorded = self.rows.get(payment.id)
        if recorded is not None:
            if recorded == payment:
                return
            raise ConflictingPayment(payment.id)
        member = self.store.members.rows.get(payment.member_id) if payment.member_id else None
        if member is not None:  # between the enrolment and the cancellation, at the price due
            plans = self.store.membership_plans.rows
            practice = self.store.practices.rows.get(payment.practice_id)
            if member.plan_id in plans and practice is not None:
                check_membership_charge(
                    member,
                    plans[member.plan_id],
                    self.rows.values(),  # entries of other members are ignored
                    payment,
                    timezone=practice.timezone,
                    plans=plans,
                )
            else:  # the plan or practice is the host's to check: the dates at least
                check_charge_dates(member, payment)
        check_refund(self.rows.values(), payment)  # entries of other sources are ignored
        self.rows[payment.id] = payment
        self.versions[payment.id] = 1

    def save(self, payment: Any, *, expected_version: int | None = None) -> None:
        """Never: a mistake is corrected by a refund, not an edit."""
        raise RuleViolation("append_only", "the payment ledger is append-only: add a refund")

    def total(self, query: Any) -> dict[str, Money]:
        """Succeeded charges minus succeeded refunds over the matching entries, per currency."""
        return per_currency(payment.signed for payment in self.matching(query))


class MinimalStore:
    """The store a host hands to the KPI calculator and the reports."""

    def __init__(self) -> None:
        self.practices = Practices(Practice, self)
        self.staff_users = Table(StaffUser, self)
        self.membership_plans = MembershipPlans(MembershipPlan, self)
        self.campaigns = Campaigns(Campaign, self)
        self.payment_plan_templates = PaymentPlanTemplates(PaymentPlanTemplate, self)
        self.members = Members(Member, self)
        self.payment_plans = PaymentPlans(PaymentPlan, self)
        self.payments = Payments(Payment, self)
        self.referrals = Referrals(Referral, self)
