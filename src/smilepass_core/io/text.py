"""Plain-text rendering: aligned tables for the dashboard, the weekly check and the command
line."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from smilepass_core.money import Money
from smilepass_core.periods import zone
from smilepass_core.reports import RecoveredRevenue, WeeklyCheck

if TYPE_CHECKING:
    from smilepass_core.kpi import Dashboard, Kpi
    from smilepass_core.subscriptions import SubscriptionMetrics

__all__ = [
    "format_table",
    "render_dashboard",
    "render_recovery",
    "render_subscriptions",
    "render_weekly",
    "show",
]

#: How an undefined figure is shown.
UNDEFINED = "—"


def format_table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], *, right: Iterable[int] = ()
) -> str:
    """Lay out rows under headers in aligned plain-text columns.

    Args:
        headers: Column titles.
        rows: Cells, one sequence of strings per row, as long as ``headers``.
        right: Indexes of columns to right-align (numbers).

    Returns:
        The table, a rule under the headers, lines without trailing spaces.
    """
    body = [list(r) for r in rows]
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *body, strict=True)]
    aligned = set(right)

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if i in aligned else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in body)])


def show(value: Any, *, percent: bool = False, signed: bool = False) -> str:
    """A figure for display: ``—`` when undefined, ``%`` for percentages, ``+``/``-``
    in front when ``signed`` (``-AUD 258.89``)."""
    if value is None:
        return UNDEFINED
    text = str(value)
    if signed:
        negative = value.is_negative() if isinstance(value, Money) else value < 0
        positive = value.is_positive() if isinstance(value, Money) else value > 0
        text = ("-" if negative else "+" if positive else "") + str(abs(value))
    return f"{text} %" if percent else text


def _row(name: str, kpi: Kpi[Any], *, percent: bool = False) -> list[str]:
    month = kpi.this_month_delta
    change = show(month, signed=True) if kpi.this_month_kind == "change" else ""
    to_date = show(month) if kpi.this_month_kind == "to_date" else ""
    return [
        name,
        show(kpi.value, percent=percent),
        change,
        to_date,
        show(kpi.previous, percent=percent),
        show(kpi.change, percent=percent, signed=True),
        show(kpi.goal, percent=percent),
        show(kpi.progress, percent=True),
    ]


def render_dashboard(board: Dashboard) -> str:
    """The headline figures against the comparison period, then the two series."""
    ranges = sorted({str(r) for r in board.ranges.values()})
    lines = [f"Range: {', '.join(ranges)}", f"Now:   {board.now.isoformat()}", ""]
    rows = [_row("Members (active)", board.members)]
    rows.append(_row("Retention %", board.retention, percent=True))
    rows.append(_row("Period retention %", board.period_retention, percent=True))
    rows += [_row(f"Total revenue ({c})", kpi) for c, kpi in board.revenue.items()]
    headers = [
        "Figure",
        "Value",
        "Month change",
        "Month to date",
        "Previous",
        "Change",
        "Goal",
        "Progress",
    ]
    lines.append(format_table(headers, rows, right=range(1, 8)))
    lines += ["", "New members and committed payments", ""]
    currencies = list(board.committed_payments)
    committed = {c: {p.day: p.value for p in board.committed_payments[c]} for c in currencies}
    goals = any(point.goal is not None for point in board.new_members)
    series_rows = []
    for point in board.new_members:
        cells = [point.day.isoformat(), str(point.value)]
        cells += [show(point.goal)] if goals else []
        cells += [show(committed[c].get(point.day)) for c in currencies]
        series_rows.append(cells)
    series_headers = [
        "Bucket from",
        "New members",
        *(["Goal"] if goals else []),
        *(f"Committed ({c})" for c in currencies),
    ]
    numbers = range(1, len(series_headers))
    lines.append(format_table(series_headers, series_rows, right=numbers))
    lines += ["", "Latest new members", ""]
    feed = []
    for m in board.latest_new_members:
        first = m.first_activated_at
        tz = zone(board.ranges[m.practice_id].timezone)
        feed.append(
            [
                m.account_holder.name,
                m.practice_id,
                "" if first is None else str(first.astimezone(tz).date()),
            ]
        )
    lines.append(format_table(["Account holder", "Practice", "First active"], feed))
    return "\n".join(lines)


def render_weekly(check: WeeklyCheck) -> str:
    """The weekly check as plain text: the dashboard, then the three lists."""
    tz = zone(check.week.timezone)
    parts = [
        "This week against last week",
        render_dashboard(check.dashboard),
        "",
        f"Failed payment plans to action ({len(check.failed_plans)}), oldest first",
        format_table(
            ["Patient", "Failed since", "Progression", "Balance", "Actions"],
            [
                [
                    p.patient,
                    p.failed_at.astimezone(tz).strftime("%Y-%m-%d"),
                    p.progression,
                    show(p.balance),
                    ", ".join(a.value.replace("_", " ") for a in p.actions),
                ]
                for p in check.failed_plans
            ],
            right=(2, 3),
        ),
        "",
        f"Overdue members ({len(check.overdue_members)}), longest overdue first",
        format_table(
            ["Account holder", "Plan", "Status", "Amount overdue"],
            [
                [m.account_holder, m.plan, m.status.value, show(m.amount_overdue)]
                for m in check.overdue_members
            ],
            right=(3,),
        ),
        "",
        f"Referrals converted this week ({len(check.converted_referrals)}): say thank you",
        format_table(
            ["New account holder", "Referred by", "Staff", "Campaign", "Converted"],
            [
                [
                    r.new_account_holder,
                    r.referring_member or "—",
                    r.staff_user or "—",
                    r.campaign or "—",
                    r.converted_at.astimezone(tz).strftime("%Y-%m-%d"),
                ]
                for r in check.converted_referrals
            ],
        ),
    ]
    if check.recovery is not None:
        parts += [
            "",
            "Charges that failed last week, and what was recovered since",
            render_recovery(check.recovery),
        ]
    return "\n".join(parts)


def render_recovery(recovery: RecoveredRevenue) -> str:
    """Per practice: the charges that failed in the range, what was recovered of them
    since, what is outstanding and written off, and the recovery rate (docs/reports.md)."""
    return format_table(
        ["Practice", "Failed", "Amount", "Recovered", "Outstanding", "Written off", "Rate"],
        [
            [
                r.practice,
                str(r.failed_charges),
                show(r.failed),
                show(r.recovered),
                show(r.outstanding),
                show(r.written_off),
                show(r.recovery_rate, percent=True),
            ]
            for r in recovery.rows
        ],
        right=(1, 2, 3, 4, 5, 6),
    )


def render_subscriptions(metrics: SubscriptionMetrics) -> str:
    """Recurring revenue over the range: MRR at both ends and what moved it, churn,
    revenue retention, ARPU and LTV (docs/metrics.md)."""
    m = metrics.mrr
    rows = [
        ["MRR at the start", show(m.start)],
        ["New", show(m.new, signed=True)],
        ["Expansion", show(m.expansion, signed=True)],
        ["Contraction", show(-m.contraction, signed=True)],
        ["Reactivation", show(m.reactivation, signed=True)],
        ["Churn", show(-m.churn, signed=True)],
        ["MRR at the end", show(m.end)],
        ["ARR", show(metrics.arr)],
        ["Members counting, start / end", f"{metrics.members_start} / {metrics.members_end}"],
        ["Churned members", str(metrics.churned_members)],
        ["Logo churn", show(metrics.logo_churn, percent=True)],
    ]
    if metrics.churn_goal is not None:
        rows.append(["Logo churn goal (at most)", show(metrics.churn_goal, percent=True)])
    rows += [
        ["Revenue churn", show(metrics.revenue_churn, percent=True)],
        ["Gross revenue retention", show(metrics.grr, percent=True)],
        ["Net revenue retention", show(metrics.nrr, percent=True)],
        ["ARPU", show(metrics.arpu)],
        ["LTV", show(metrics.ltv)],
    ]
    return f"Range: {metrics.range}\n\n" + format_table(["Figure", "Value"], rows, right=[1])
