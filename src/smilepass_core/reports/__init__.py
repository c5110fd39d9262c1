"""Reports: referral tracking, the reconciliation lists, the weekly check, and what the
manual leaves out (aged receivables, recovered revenue, cohorts, per-staff attribution,
accounting export, instalment forecast, template uptake). Every report holds frozen rows with
``to_records()`` and ``to_csv()``.
"""

from smilepass_core.reports._table import Rows
from smilepass_core.reports.cohorts import (
    CohortTable,
    RevenueCohortTable,
    cohort_retention,
    revenue_cohorts,
)
from smilepass_core.reports.dunning import DunningWorklist, dunning_worklist
from smilepass_core.reports.ledger import (
    AccountingExport,
    InstalmentForecast,
    accounting_export,
    instalment_forecast,
)
from smilepass_core.reports.receivables import (
    AgedReceivables,
    PatientTotals,
    ReceivableRows,
    aged_receivables,
)
from smilepass_core.reports.reconciliation import (
    MembershipList,
    PaymentPlanList,
    membership_list,
    payment_plan_list,
)
from smilepass_core.reports.recovery import RecoveredRevenue, recovered_revenue
from smilepass_core.reports.referrals import (
    ReferralTracking,
    StaffAttribution,
    referral_tracking,
    staff_attribution,
)
from smilepass_core.reports.templates import TemplateUptake, template_uptake
from smilepass_core.reports.weekly import WeeklyCheck, weekly_check

__all__ = [
    "AccountingExport",
    "AgedReceivables",
    "CohortTable",
    "DunningWorklist",
    "InstalmentForecast",
    "MembershipList",
    "PatientTotals",
    "PaymentPlanList",
    "ReceivableRows",
    "RecoveredRevenue",
    "ReferralTracking",
    "RevenueCohortTable",
    "Rows",
    "StaffAttribution",
    "TemplateUptake",
    "WeeklyCheck",
    "accounting_export",
    "aged_receivables",
    "cohort_retention",
    "dunning_worklist",
    "instalment_forecast",
    "membership_list",
    "payment_plan_list",
    "recovered_revenue",
    "referral_tracking",
    "revenue_cohorts",
    "staff_attribution",
    "template_uptake",
    "weekly_check",
]
