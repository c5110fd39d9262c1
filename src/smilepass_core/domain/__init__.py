"""Pure domain types and their lifecycles: no I/O, no clock reads."""

from smilepass_core.domain.lifecycle import (
    STATUS_ALIASES,
    HasHistory,
    Lifecycle,
    Status,
    StatusChange,
    check_successor,
    check_version,
)
from smilepass_core.domain.members import (
    COUNTING_STATUSES,
    MEMBERSHIP_LIFECYCLE,
    CountingSpan,
    Member,
    MembershipStatus,
    PlanChange,
)
from smilepass_core.domain.payment_plans import (
    PAYMENT_PLAN_LIFECYCLE,
    FollowUpAction,
    Instalment,
    InstalmentAttempt,
    PaymentPlan,
    PaymentPlanStatus,
    PaymentType,
)
from smilepass_core.domain.payments import (
    Ledger,
    Payment,
    PaymentKind,
    PaymentOutcome,
    check_refund,
)
from smilepass_core.domain.practices import (
    BillingCycle,
    MembershipPlan,
    Patient,
    Practice,
    StaffUser,
)
from smilepass_core.domain.referrals import (
    CAMPAIGN_LIFECYCLE,
    REFERRAL_LIFECYCLE,
    Campaign,
    CampaignStatus,
    Referral,
    ReferralStatus,
)

__all__ = [
    "CAMPAIGN_LIFECYCLE",
    "COUNTING_STATUSES",
    "MEMBERSHIP_LIFECYCLE",
    "PAYMENT_PLAN_LIFECYCLE",
    "REFERRAL_LIFECYCLE",
    "STATUS_ALIASES",
    "BillingCycle",
    "Campaign",
    "CampaignStatus",
    "CountingSpan",
    "FollowUpAction",
    "HasHistory",
    "Instalment",
    "InstalmentAttempt",
    "Ledger",
    "Lifecycle",
    "Member",
    "MembershipPlan",
    "MembershipStatus",
    "Patient",
    "Payment",
    "PaymentKind",
    "PaymentOutcome",
    "PaymentPlan",
    "PaymentPlanStatus",
    "PaymentType",
    "PlanChange",
    "Practice",
    "Referral",
    "ReferralStatus",
    "StaffUser",
    "Status",
    "StatusChange",
    "check_refund",
    "check_successor",
    "check_version",
]
