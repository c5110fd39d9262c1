"""smilepass_core: exact money, honest metrics and clean domain code for dental
membership plans and patient payment plans."""

from typing import Any

from smilepass_core.domain import (
    CAMPAIGN_LIFECYCLE,
    MEMBERSHIP_LIFECYCLE,
    PAYMENT_PLAN_LIFECYCLE,
    REFERRAL_LIFECYCLE,
    BillingCycle,
    Campaign,
    CampaignStatus,
    DependentChange,
    FollowUpAction,
    Instalment,
    InstalmentAttempt,
    Ledger,
    Lifecycle,
    Member,
    MembershipPlan,
    MembershipStatus,
    Patient,
    Payment,
    PaymentKind,
    PaymentOutcome,
    PaymentPlan,
    PaymentPlanStatus,
    PaymentPlanTemplate,
    PaymentType,
    PlanChange,
    Practice,
    PricePoint,
    Referral,
    ReferralReward,
    ReferralStatus,
    StaffUser,
    Status,
    StatusChange,
)
from smilepass_core.errors import (
    ConflictingPayment,
    CurrencyMismatch,
    DuplicateId,
    InvalidData,
    InvalidMoney,
    InvalidPeriod,
    InvalidRecord,
    InvalidRow,
    InvalidTransition,
    InvalidValue,
    MissingExtra,
    NaiveDatetime,
    NotFound,
    OutOfOrderChange,
    RuleViolation,
    SmilepassError,
    UnknownCurrency,
    UnknownStatus,
    UnknownTimezone,
    VersionConflict,
)
from smilepass_core.kpi import Dashboard, Goals, Kpi, KpiTargets, dashboard
from smilepass_core.memory import InMemoryStore
from smilepass_core.money import ROUNDING, Money
from smilepass_core.periods import DateRange, Preset, Unit
from smilepass_core.queries import (
    MemberQuery,
    Order,
    Page,
    PaymentPlanQuery,
    PaymentQuery,
    ReferralQuery,
    ScopeQuery,
    SortKey,
)
from smilepass_core.read_only_list import ReadOnlyList

__all__ = [
    "CAMPAIGN_LIFECYCLE",
    "MEMBERSHIP_LIFECYCLE",
    "PAYMENT_PLAN_LIFECYCLE",
    "REFERRAL_LIFECYCLE",
    "ROUNDING",
    "BillingCycle",
    "Campaign",
    "CampaignStatus",
    "ConflictingPayment",
    "CurrencyMismatch",
    "Dashboard",
    "DateRange",
    "DependentChange",
    "DuplicateId",
    "FollowUpAction",
    "Goals",
    "InMemoryStore",
    "Instalment",
    "InstalmentAttempt",
    "InvalidData",
    "InvalidMoney",
    "InvalidPeriod",
    "InvalidRecord",
    "InvalidRow",
    "InvalidTransition",
    "InvalidValue",
    "Kpi",
    "KpiTargets",
    "Ledger",
    "Lifecycle",
    "Member",
    "MemberQuery",
    "MembershipPlan",
    "MembershipStatus",
    "MissingExtra",
    "Money",
    "NaiveDatetime",
    "NotFound",
    "Order",
    "OutOfOrderChange",
    "Page",
    "Patient",
    "Payment",
    "PaymentKind",
    "PaymentOutcome",
    "PaymentPlan",
    "PaymentPlanQuery",
    "PaymentPlanStatus",
    "PaymentPlanTemplate",
    "PaymentQuery",
    "PaymentType",
    "PlanChange",
    "Practice",
    "Preset",
    "PricePoint",
    "ReadOnlyList",
    "Referral",
    "ReferralQuery",
    "ReferralReward",
    "ReferralStatus",
    "RuleViolation",
    "ScopeQuery",
    "SmilepassError",
    "SortKey",
    "StaffUser",
    "Status",
    "StatusChange",
    "Unit",
    "UnknownCurrency",
    "UnknownStatus",
    "UnknownTimezone",
    "VersionConflict",
    "dashboard",
]

# The outer layer registers its conversions (presentation) and the moved names their
# deprecated forwards; the core modules above import neither.
import smilepass_core.io  # noqa: F401  (registers the outer layer)
from smilepass_core import _compat

_compat.install()


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("smilepass-core")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            from smilepass_core._version import __version__

            return __version__
    raise AttributeError(f"module 'smilepass_core' has no attribute {name!r}")
