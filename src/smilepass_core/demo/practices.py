"""What the two demo practices look like: plans, campaigns, staff, and the mix of members
and payment plans each gets."""

from __future__ import annotations

from typing import Final

import attrs

from smilepass_core.domain import (
    BillingCycle,
)

#: How far back members are enrolled: 18 months.
_WINDOW_DAYS: Final = 547


@attrs.frozen
class _PlanSpec:
    key: str
    name: str
    price: str
    cycle: BillingCycle
    weight: int
    #: The price before a rise on the 1st of the month this many months before now's.
    earlier: tuple[str, int] | None = None


@attrs.frozen
class _CampaignSpec:
    name: str
    promo_code: str
    starts_days_ago: int
    ends_days_ago: int | None
    #: More codes, and the discount who signs up with a code gets: this percentage off
    #: the first ``cycles`` billing dates (none when ``percent`` is None).
    other_codes: tuple[str, ...] = ()
    percent: int | None = None
    cycles: int | None = None


@attrs.frozen
class _PracticeSpec:
    id: str
    name: str
    timezone: str
    currency: str
    members: int
    staff: tuple[str, ...]
    plans: tuple[_PlanSpec, ...]
    campaigns: tuple[_CampaignSpec, ...]
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    email_domain: str
    phone_format: str


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_M, _A = BillingCycle.MONTHLY, BillingCycle.ANNUALLY

_PRACTICES: Final = (
    _PracticeSpec(
        id="syd",
        name="Harbour Dental",
        timezone="Australia/Sydney",
        currency="AUD",
        members=186,
        staff=("Dr Mei Nguyen", "Josh Callaghan (front desk)", "Priya Raman (practice manager)"),
        plans=(
            _PlanSpec("essential", "Essential Care", "34.95", _M, 50),
            _PlanSpec("family", "Family Care", "89.00", _M, 30, ("84.00", 4)),
            _PlanSpec("premium", "Premium Care", "649.00", _A, 20),
        ),
        campaigns=(
            _CampaignSpec("Refer a Mate", "MATE50", 540, None),
            _CampaignSpec("Spring Smile Check", "SPRING26", 85, 24, ("SPRING26-IG",), 20, 2),
        ),
        first_names=_words(
            "Olivia Charlotte Amelia Isla Mia Ava Grace Chloe Zoe Ruby Sienna Matilda Harper "
            "Ella Lily Jack Oliver William Noah Thomas Henry Leo Lucas Charlie James Hudson "
            "Archie Mason Liam Ethan Cooper Hamish Angus Priya Wei Minh Aisha Mohammed Sofia "
            "Lachlan"
        ),
        last_names=_words(
            "Smith Jones Williams Brown Wilson Taylor Nguyen Johnson Martin White Anderson "
            "Walker Thompson Kelly Ryan Chen Lee Harris Robinson Campbell Murphy O'Brien Singh "
            "Patel Mitchell Clarke Young King Wright Scott Green Baker Hall Morris Tran Wong "
            "Russo Papadopoulos Fraser McDonald"
        ),
        email_domain="example.net",
        phone_format="(02) 5550 {:04d}",
    ),
    _PracticeSpec(
        id="nyc",
        name="Hudson Smiles",
        timezone="America/New_York",
        currency="USD",
        members=214,
        staff=("Dr Rachel Goldberg", "Luis Ortega (front desk)", "Tanya Brooks (office manager)"),
        plans=(
            _PlanSpec("essential", "Essential", "29.00", _M, 50),
            _PlanSpec("family", "Family", "79.00", _M, 30, ("75.00", 4)),
            _PlanSpec("premium", "Premium", "549.00", _A, 20),
        ),
        campaigns=(
            _CampaignSpec("Refer a Friend", "FRIEND50", 530, None),
            _CampaignSpec("Back-to-School Checkups", "SCHOOL26", 110, 55, ("SCHOOL26-FB",), 15, 3),
        ),
        first_names=_words(
            "Emma Olivia Sophia Isabella Ava Mia Abigail Emily Madison Harper Camila Aaliyah "
            "Grace Hannah Zoe Liam Noah Elijah James Benjamin Lucas Mason Ethan Alexander Henry "
            "Jacob Michael Daniel Logan Jackson Sebastian Mateo Samuel David Joseph Carter Owen "
            "Wyatt Rosa Ananya"
        ),
        last_names=_words(
            "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez "
            "Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez "
            "Thompson White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King "
            "Wright Scott Nguyen Hill Flores Green Cohen Kowalski O'Connor Rossi Kim Patel"
        ),
        email_domain="example.com",
        phone_format="(212) 555-01{:02d}",
    ),
)

# Member scenarios besides "active": (name, share of the practice's members, minimum count).
_MEMBER_MIX: Final = (
    ("pending", 0.02, 2),
    ("never_set_up", 0.015, 1),
    ("failed", 0.035, 2),
    ("suspended", 0.04, 2),
    ("cancelled", 0.14, 3),
)

# Payment plan scenarios: (name, base count per practice, extra up to).
_PLAN_MIX: Final = (
    ("pending", 4, 2),
    ("instant_completed", 5, 2),
    ("instant_failed", 1, 1),
    ("plan_active", 12, 4),
    ("plan_completed", 4, 2),
    ("plan_failed", 3, 2),
    ("hold_active", 2, 1),
    ("hold_completed", 3, 1),
    ("hold_failed", 1, 0),
    ("link_expired", 2, 1),
    ("plan_cancelled", 1, 1),
    ("plan_written_off", 1, 0),
    ("hold_released", 1, 0),
)

_PAUSE_REASONS: Final = (
    "paused: travelling overseas",
    "paused: financial hardship",
    "paused at the patient's request",
)
_SUSPEND_REASONS: Final = (*_PAUSE_REASONS, "paused: card expired, awaiting new details")
_CANCEL_REASONS: Final = (
    "moved away",
    "cost",
    "switched to health fund cover",
    "not using the plan",
    "cancelled at the patient's request",
)
