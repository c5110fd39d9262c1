"""smilepass_core: exact money, honest metrics and clean domain code for dental
membership plans and patient payment plans."""

from typing import Any

from smilepass_core.domain import (
    MEMBERSHIP_LIFECYCLE,
    PAYMENT_PLAN_LIFECYCLE,
    REFERRAL_LIFECYCLE,
    BillingCycle,
    Campaign,
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
    PaymentType,
    Practice,
    Referral,
    ReferralStatus,
    StaffUser,
    Status,
    StatusChange,
)
from smilepass_core.errors import (
    CurrencyMismatch,
    DuplicateId,
    InvalidMoney,
    InvalidPeriod,
    InvalidTransition,
    InvalidValue,
    NaiveDatetime,
    NotFound,
    OutOfOrderChange,
    RuleViolation,
    SmilepassError,
    UnknownCurrency,
    UnknownStatus,
    UnknownTimezone,
)
from smilepass_core.money import ROUNDING, Money
from smilepass_core.periods import DateRange, Preset, Unit

__all__ = [
    "MEMBERSHIP_LIFECYCLE",
    "PAYMENT_PLAN_LIFECYCLE",
    "REFERRAL_LIFECYCLE",
    "ROUNDING",
    "BillingCycle",
    "Campaign",
    "CurrencyMismatch",
    "DateRange",
    "DuplicateId",
    "FollowUpAction",
    "Instalment",
    "InstalmentAttempt",
    "InvalidMoney",
    "InvalidPeriod",
    "InvalidTransition",
    "InvalidValue",
    "Ledger",
    "Lifecycle",
    "Member",
    "MembershipPlan",
    "MembershipStatus",
    "Money",
    "NaiveDatetime",
    "NotFound",
    "OutOfOrderChange",
    "Patient",
    "Payment",
    "PaymentKind",
    "PaymentOutcome",
    "PaymentPlan",
    "PaymentPlanStatus",
    "PaymentType",
    "Practice",
    "Preset",
    "Referral",
    "ReferralStatus",
    "RuleViolation",
    "SmilepassError",
    "StaffUser",
    "Status",
    "StatusChange",
    "Unit",
    "UnknownCurrency",
    "UnknownStatus",
    "UnknownTimezone",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("smilepass-core")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            from smilepass_core._version import __version__

            return __version__
    raise AttributeError(f"module 'smilepass_core' has no attribute {name!r}")
