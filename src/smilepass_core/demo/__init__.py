"""The bundled demo dataset: two practices with 18 months of legal, ledger-backed history.

Everything is built through the domain's named constructors and transition
methods, so every history follows its lifecycle table, and every member
status change has its ledger entry at the same instant (a failed charge
when a member goes Failed, a succeeded one when they become Active).

>>> data = load_demo()
>>> [(p.name, p.timezone, p.currency) for p in data.practices]
[('Harbour Dental', 'Australia/Sydney', 'AUD'), ('Hudson Smiles', 'America/New_York', 'USD')]
>>> load_demo() == data
True
"""

from __future__ import annotations

import functools
import random
from datetime import UTC, datetime
from typing import Final

import attrs

from smilepass_core.demo.builder import _Builder
from smilepass_core.demo.practices import _PRACTICES
from smilepass_core.domain import (
    Campaign,
    Member,
    MembershipPlan,
    Payment,
    PaymentPlan,
    PaymentPlanTemplate,
    Practice,
    Referral,
    StaffUser,
)
from smilepass_core.kpi import Goals, KpiTargets
from smilepass_core.memory import InMemoryStore
from smilepass_core.periods import as_instant
from smilepass_core.repositories import STORE_TYPES

__all__ = ["DEMO_NOW", "DEMO_SEED", "DEMO_TARGETS", "DemoData", "demo_store", "load_demo"]

#: The demo's "now": 25 November 2026, 16:00 in Sydney (00:00 in New York).
DEMO_NOW: Final = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)

#: The default seed of :func:`load_demo`.
DEMO_SEED: Final = 20261125

#: The demo practices' goals: the manual's defaults (25 members, 95 % retention, 2,000 a
#: month), plus first activations per month for the New Members series and the highest
#: acceptable logo churn per month (Harbour Dental 8 and 5 %, Hudson Smiles 6 and 4 %).
DEMO_TARGETS: Final = KpiTargets(
    practices={"syd": Goals(new_members=8, churn=5), "nyc": Goals(new_members=6, churn=4)}
)


@attrs.frozen
class DemoData:
    """The demo dataset: every object of every practice, and the instant it was generated for.

    Attributes:
        practices: The practices, Harbour Dental (Sydney, AUD) then Hudson Smiles (New York, USD).
        staff_users: Three staff users per practice.
        membership_plans: Three membership plans per practice.
        members: Members of every status, ordered by id (enrolment order per practice).
        payment_plans: Payment plans of every status and payment type, ordered by id.
        payments: The ledger: membership and payment plan charges and refunds, by time.
        campaigns: Two campaigns per practice.
        payment_plan_templates: Four templates per practice: the treatment plan most
            instalment plans are offered from, its members-only twin, implants with a
            deposit (offered to nobody yet) and a retired one.
        referrals: Referrals (Pending, Converted, Cancelled), ordered by id.
        now: The instant everything happened before (aware, UTC).
    """

    practices: tuple[Practice, ...]
    staff_users: tuple[StaffUser, ...]
    membership_plans: tuple[MembershipPlan, ...]
    members: tuple[Member, ...]
    payment_plans: tuple[PaymentPlan, ...]
    payments: tuple[Payment, ...]
    campaigns: tuple[Campaign, ...]
    referrals: tuple[Referral, ...]
    now: datetime
    payment_plan_templates: tuple[PaymentPlanTemplate, ...] = attrs.field(default=(), kw_only=True)

    def objects(self) -> tuple[object, ...]:
        """Every object, practices first and the ledger last (what a store's ``load`` takes)."""
        return tuple(obj for table in STORE_TYPES for obj in getattr(self, table))

    def for_practice(self, practice_id: str) -> DemoData:
        """The objects of one practice only (same ``now``).

        Args:
            practice_id: The id of a demo practice, e.g. ``"syd"``.

        Returns:
            A :class:`DemoData` holding that practice and its objects.
        """
        return DemoData(
            practices=tuple(p for p in self.practices if p.id == practice_id),
            staff_users=tuple(s for s in self.staff_users if s.practice_id == practice_id),
            membership_plans=tuple(
                p for p in self.membership_plans if p.practice_id == practice_id
            ),
            members=tuple(m for m in self.members if m.practice_id == practice_id),
            payment_plans=tuple(p for p in self.payment_plans if p.practice_id == practice_id),
            payments=tuple(p for p in self.payments if p.practice_id == practice_id),
            campaigns=tuple(c for c in self.campaigns if c.practice_id == practice_id),
            referrals=tuple(r for r in self.referrals if r.practice_id == practice_id),
            payment_plan_templates=tuple(
                t for t in self.payment_plan_templates if t.practice_id == practice_id
            ),
            now=self.now,
        )


def load_demo(now: datetime = DEMO_NOW, seed: int = DEMO_SEED) -> DemoData:
    """Build the demo dataset, generated relative to ``now``.

    The result depends only on ``now`` and ``seed``: no clock reads, no I/O.
    Every timestamp in it is strictly before ``now``.

    Args:
        now: An aware instant; members are enrolled over the 18 months before it.
        seed: Seed of the pseudo-random generator.

    Returns:
        The two demo practices with their staff, plans, members, payment plans,
        ledger, campaigns, referrals and payment-plan templates.

    Raises:
        NaiveDatetime: ``now`` has no time zone.
    """
    return _built(as_instant(now, "now"), seed)


@functools.lru_cache(maxsize=8)
def _built(instant: datetime, seed: int) -> DemoData:
    """:func:`load_demo`'s dataset, built once per ``(now, seed)`` in a process (it is
    immutable, so every caller may share it)."""
    root = random.Random(seed)
    parts = [_Builder(spec, random.Random(root.getrandbits(64)), instant) for spec in _PRACTICES]
    for builder in parts:
        builder.build()
    return DemoData(
        practices=tuple(b.practice for b in parts),
        staff_users=tuple(s for b in parts for s in b.staff),
        membership_plans=tuple(p for b in parts for p in b.plans),
        members=tuple(m for b in parts for m in b.members),
        payment_plans=tuple(p for b in parts for p in b.payment_plans),
        payments=tuple(sorted((p for b in parts for p in b.payments), key=lambda p: (p.at, p.id))),
        campaigns=tuple(c for b in parts for c in b.campaigns),
        referrals=tuple(sorted((r for b in parts for r in b.referrals), key=lambda r: r.id)),
        payment_plan_templates=tuple(t for b in parts for t in b.templates),
        now=instant,
    )


def demo_store(now: datetime = DEMO_NOW, seed: int = DEMO_SEED) -> InMemoryStore:
    """A new :class:`~smilepass_core.memory.InMemoryStore` holding :func:`load_demo`'s
    dataset (formerly ``InMemoryStore.from_demo()``).

    >>> from smilepass_core import ScopeQuery
    >>> demo_store().practices.count(ScopeQuery())
    2
    """
    return InMemoryStore.from_objects(load_demo(now, seed).objects())
