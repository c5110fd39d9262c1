"""The command line, ``smilepass`` (or ``python -m smilepass_core``): the demo summary,
and each report over a data directory in the flat layout, a SQL database or the demo.

Exit codes: 0 done; 1 bad data (each problem on a line of its own on standard error);
2 bad usage (an unknown option or practice, a naive ``--now``, a missing extra).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from smilepass_core.demo import DEMO_NOW, DEMO_SEED, DEMO_TARGETS, DemoData, demo_store, load_demo
from smilepass_core.domain import (
    Member,
    MembershipPlan,
    MembershipStatus,
    PaymentPlan,
    PaymentPlanStatus,
    PaymentType,
    Practice,
)
from smilepass_core.errors import InvalidData, InvalidRow, SmilepassError
from smilepass_core.io.flat import FORMATS, store_from_flat, write_flat
from smilepass_core.io.frames import FigureRow, figure_rows
from smilepass_core.io.text import (
    format_table,
    render_dashboard,
    render_recovery,
    render_subscriptions,
    render_weekly,
)
from smilepass_core.kpi import Dashboard, KpiTargets, dashboard
from smilepass_core.memory import InMemoryStore
from smilepass_core.periods import DateRange, Preset, zone
from smilepass_core.queries import (
    MemberQuery,
    PaymentPlanQuery,
    PaymentQuery,
    ReferralQuery,
    ScopeQuery,
)
from smilepass_core.reports import (
    WeeklyCheck,
    aged_receivables,
    cohort_retention,
    dunning_worklist,
    membership_list,
    payment_plan_list,
    recovered_revenue,
    referral_tracking,
    weekly_check,
)
from smilepass_core.reports._table import to_csv
from smilepass_core.repositories import STORE_TYPES, Store
from smilepass_core.subscriptions import SubscriptionMetrics, subscription_metrics

__all__ = [
    "format_table",
    "main",
    "render",
    "render_latest_members",
    "render_member_counts",
    "render_plan_counts",
    "render_plans_needing_action",
    "render_practice",
]

#: Payment plan statuses that need staff action, in the order the list shows them.
_ACTION_ORDER = (PaymentPlanStatus.FAILED, PaymentPlanStatus.PENDING)


def _label(value: MembershipStatus | PaymentPlanStatus | PaymentType) -> str:
    return str(value.value).capitalize()


def render_member_counts(members: Sequence[Member]) -> str:
    """Members per status, every status listed (zero included), with the total.

    Args:
        members: The members of one practice.

    Returns:
        A two-column table: status, count.
    """
    counts = Counter(m.status for m in members)
    rows = [[_label(s), str(counts[s])] for s in MembershipStatus]
    rows.append(["Total", str(len(members))])
    return format_table(["Status", "Members"], rows, right=[1])


def render_plan_counts(plans: Sequence[PaymentPlan]) -> str:
    """Payment plans per status and payment type (archived plans counted as Completed).

    Args:
        plans: The payment plans of one practice.

    Returns:
        A table with one row per status and one column per payment type, plus totals.
    """
    counts = Counter((p.status, p.payment_type) for p in plans)
    types = list(PaymentType)
    rows = []
    for status in PaymentPlanStatus:
        cells = [counts[(status, t)] for t in types]
        rows.append([_label(status), *map(str, cells), str(sum(cells))])
    totals = [sum(counts[(s, t)] for s in PaymentPlanStatus) for t in types]
    rows.append(["Total", *map(str, totals), str(len(plans))])
    headers = ["Status", *(_label(t) for t in types), "Total"]
    return format_table(headers, rows, right=range(1, len(headers)))


def render_latest_members(
    members: Sequence[Member], plans: Sequence[MembershipPlan], *, limit: int = 10
) -> str:
    """The most recently enrolled members, newest first.

    Args:
        members: The members of one practice.
        plans: Its membership plans (for the plan names).
        limit: How many members to show.

    Returns:
        A table: account holder, dependents, plan, status, start date.
    """
    names = {p.id: p.name for p in plans}
    latest = sorted(members, key=lambda m: (m.created_at, m.id), reverse=True)[:limit]
    rows = [
        [
            m.account_holder.name,
            str(len(m.dependents)),
            names.get(m.plan_id, m.plan_id),
            _label(m.status),
            m.start_date.isoformat(),
        ]
        for m in latest
    ]
    headers = ["Account holder", "Dependents", "Plan", "Status", "Start date"]
    return format_table(headers, rows, right=[1])


def _last_activity(plan: PaymentPlan) -> datetime:
    latest = plan.history[-1].at
    return max(latest, plan.attempts[-1].at) if plan.attempts else latest


def render_plans_needing_action(plans: Sequence[PaymentPlan]) -> str:
    """Payment plans with follow-up actions: Failed first, then Pending; oldest activity first.

    Args:
        plans: The payment plans of one practice.

    Returns:
        A table: patient, progression, balance, status, payment type, actions;
        or a line saying nothing needs action.
    """
    waiting = [p for p in plans if p.status in _ACTION_ORDER and p.follow_up_actions()]
    if not waiting:
        return "Nothing to action."
    waiting.sort(key=lambda p: (_ACTION_ORDER.index(p.status), _last_activity(p), p.id))
    rows = [
        [
            p.patient.name,
            p.progression,
            str(p.balance),
            _label(p.status),
            _label(p.payment_type),
            ", ".join(a.value.replace("_", " ") for a in p.follow_up_actions()),
        ]
        for p in waiting
    ]
    headers = ["Patient", "Progression", "Balance", "Status", "Payment type", "Actions"]
    return format_table(headers, rows, right=[1, 2])


def _heading(title: str, underline: str = "-") -> str:
    return f"{title}\n{underline * len(title)}"


def render_practice(
    data: DemoData,
    practice: Practice,
    store: Store | None = None,
    date_range: Preset | str = Preset.LAST_7_DAYS,
) -> str:
    """The summary of one practice: its dashboard, counts, latest members, plans needing action.

    Args:
        data: The dataset the practice belongs to.
        practice: The practice to summarise.
        store: A store holding ``data`` (built from it when omitted).
        date_range: The dashboard's range preset (last 7 days by default).

    Returns:
        Plain text, sections separated by blank lines.
    """
    mine = data.for_practice(practice.id)
    store = store or InMemoryStore.from_objects(data.objects())
    board = dashboard(
        store, practices=practice.id, date_range=date_range, now=data.now, targets=DEMO_TARGETS
    )
    local_now = data.now.astimezone(zone(practice.timezone))
    archived = sum(p.is_archived for p in mine.payment_plans)
    sections = [
        _heading(f"{practice.name} ({practice.timezone}, {practice.currency})", "="),
        f"As of {local_now:%Y-%m-%d %H:%M %Z}",
        _heading("Dashboard, compared with the previous period") + "\n" + render_dashboard(board),
        _heading("Recurring revenue over the range")
        + "\n"
        + render_subscriptions(
            subscription_metrics(
                store,
                practices=practice.id,
                date_range=date_range,
                now=data.now,
                targets=DEMO_TARGETS,
            )
        ),
        _heading("Failed charges over the range, and what was recovered since")
        + "\n"
        + render_recovery(
            recovered_revenue(store, now=data.now, date_range=date_range, practices=practice.id)
        ),
        _heading("Weekly check")
        + "\n"
        + render_weekly(weekly_check(store, now=data.now, practices=practice.id)),
        _heading("Members by status") + "\n" + render_member_counts(mine.members),
        _heading("Payment plans by status and payment type")
        + "\n"
        + render_plan_counts(mine.payment_plans)
        + f"\n({archived} of the completed plans are archived)",
        _heading("Latest members")
        + "\n"
        + render_latest_members(mine.members, mine.membership_plans),
        _heading("Payment plans needing action")
        + "\n"
        + render_plans_needing_action(mine.payment_plans),
    ]
    return "\n\n".join(sections)


def render(
    data: DemoData, date_range: Preset | str = Preset.LAST_7_DAYS, store: Store | None = None
) -> str:
    """The summary of every practice in ``data``, one after the other.

    Args:
        data: A dataset, e.g. from :func:`~smilepass_core.demo.load_demo`.
        date_range: The dashboards' range preset.
        store: A store holding ``data`` that the dashboards and weekly checks read
            (an :class:`InMemoryStore` built from ``data`` when omitted).

    Returns:
        Plain text ending with a newline.
    """
    store = store or InMemoryStore.from_objects(data.objects())
    parts = (render_practice(data, p, store, date_range) for p in data.practices)
    return "\n\n\n".join(parts) + "\n"


#: What a run reads when neither ``--data`` nor ``--store`` is given.
_DEMO_SOURCE = "the bundled demo"
#: The exit codes.
OK, BAD_DATA, BAD_USAGE = 0, 1, 2


class _Usage(Exception):
    """A command line that cannot run as given (exit code 2)."""


def _aware(text: str) -> datetime:
    """``--now``'s value: an ISO 8601 datetime with a UTC offset."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 datetime: {text!r}") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no UTC offset; give an aware instant such as "
            f"{DEMO_NOW.isoformat()} or 2026-11-25T16:00+11:00"
        )
    return value


def _range(text: str) -> Preset | tuple[date, date]:
    """``--range``'s value: a preset (``last-7-days`` or ``last_7_days``) or
    ``FIRST..END``, local days from FIRST up to END (END not included)."""
    if ".." in text:
        first, _, end = text.partition("..")
        try:
            days = date.fromisoformat(first), date.fromisoformat(end)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r}: give two dates, YYYY-MM-DD..YYYY-MM-DD"
            ) from None
        if days[1] <= days[0]:
            raise argparse.ArgumentTypeError(f"{text!r}: the end must come after the start")
        return days
    try:
        return Preset(text.replace("-", "_"))
    except ValueError:
        names = ", ".join(p.value.replace("_", "-") for p in Preset)
        raise argparse.ArgumentTypeError(
            f"unknown range {text!r}; give one of {names}, or YYYY-MM-DD..YYYY-MM-DD"
        ) from None


def _zone_for(text: str) -> tuple[str, str]:
    """``--naive-zone``'s value: ``FILE=ZONE`` (``*=ZONE`` for every file)."""
    name, sep, zone_name = text.partition("=")
    if not sep or not name or not zone_name:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give FILE=ZONE, e.g. payments=Australia/Sydney"
        )
    return name, zone_name


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number >= 1")
    return int(text)


#: Each report command: its help line.
_REPORTS = {
    "dashboard": "the dashboard's figures against the comparison period",
    "weekly": "the weekly check: failed plans, overdue members, converted referrals",
    "members": "the membership list with its reconciliation totals",
    "plans": "the payment plan list with its reconciliation totals",
    "referrals": "referral tracking",
    "receivables": "aged receivables: unpaid instalments by days past due",
    "cohorts": "member retention by monthly cohort",
    "recovery": "of the charges that failed in the range, what was recovered since",
    "dunning": "the dunning actions due now for every member (the default policy)",
    "subscriptions": "recurring revenue (MRR, ARR) and its movements, churn, retention, "
    "ARPU and LTV over the range",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smilepass",
        description="Figures and reports for dental membership and payment plans. Without a "
        "command, prints the demo summary.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="print a summary of the bundled demo practices",
        description="Print a summary of the bundled demo practices.",
    )
    demo.add_argument(
        "--now",
        type=_aware,
        default=DEMO_NOW,
        metavar="ISO8601",
        help=f"generate the demo relative to this aware instant (default {DEMO_NOW.isoformat()})",
    )
    demo.add_argument(
        "--range",
        dest="date_range",
        type=_range,
        default=Preset.LAST_7_DAYS,
        metavar="RANGE",
        help="the dashboards' date range preset (default last-7-days)",
    )
    demo.add_argument(
        "--seed", type=int, default=DEMO_SEED, help=f"demo seed (default {DEMO_SEED})"
    )
    demo.add_argument(
        "--store",
        metavar="URL",
        help="read the figures from this SQL database (e.g. sqlite:///demo.db, "
        "postgresql+psycopg://user@host/db; the [sql] extra), loading the demo into it "
        "when it is empty",
    )
    source = argparse.ArgumentParser(add_help=False)
    where = source.add_argument_group("data source (default: the bundled demo)")
    one = where.add_mutually_exclusive_group()
    one.add_argument("--data", metavar="DIR", help="a directory in the flat layout")
    one.add_argument("--store", metavar="URL", help="a SQL database (the [sql] extra)")
    where.add_argument(
        "--naive-zone",
        action="append",
        type=_zone_for,
        default=[],
        metavar="FILE=ZONE",
        help="read FILE's instants without an offset in ZONE (* for every file; repeatable)",
    )
    where.add_argument(
        "--ignore-unknown-columns", action="store_true", help="skip columns the layout lacks"
    )
    where.add_argument(
        "--max-problems",
        type=_positive,
        default=100,
        metavar="N",
        help="list at most N problems of bad data (default 100)",
    )
    report = argparse.ArgumentParser(add_help=False, parents=[source])
    report.add_argument(
        "--practice",
        action="append",
        default=[],
        metavar="ID",
        help="the practice to report on (repeatable; default every practice)",
    )
    report.add_argument(
        "--now",
        type=_aware,
        metavar="ISO8601",
        help="the instant to report at (default: the demo's now, else the current time)",
    )
    report.add_argument(
        "--range",
        dest="date_range",
        type=_range,
        default=Preset.LAST_7_DAYS,
        metavar="RANGE",
        help="the dashboard's and recovery's range: last-7-days, last-30-days, this-week, "
        "last-week, this-month, last-month, this-quarter, year-to-date, or "
        "YYYY-MM-DD..YYYY-MM-DD (end not included; default last-7-days)",
    )
    report.add_argument(
        "--format", choices=("table", "csv", "json"), default="table", help="default table"
    )
    report.add_argument("--output", metavar="FILE", help="write here instead of standard output")
    for name, help_ in _REPORTS.items():
        commands.add_parser(name, help=help_, description=help_, parents=[report])
    export = commands.add_parser(
        "export", help="write the data out in the flat layout", parents=[source]
    )
    export.add_argument("--output", metavar="DIR", required=True, help="the directory to write")
    export.add_argument("--format", choices=FORMATS, default="csv", help="default csv")
    commands.add_parser(
        "validate", help="check a data directory and say what it holds", parents=[source]
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns:
        The exit code: 0 done, 1 bad data (each problem on standard error), 2 bad usage.
    """
    args_list = sys.argv[1:] if argv is None else list(argv)
    if not args_list or (args_list[0].startswith("-") and args_list[0] not in ("-h", "--help")):
        args_list.insert(0, "demo")  # ``python -m smilepass_core [--now ...]``: the demo
    try:
        args = _parser().parse_args(args_list)
    except SystemExit as exit_:  # argparse reports the error (or --help) itself
        return exit_.code if isinstance(exit_.code, int) else BAD_USAGE
    try:
        return _run(args)
    except InvalidRow as error:  # a database row the library cannot hold
        print(f"smilepass: {error}", file=sys.stderr)
        return BAD_DATA
    except InvalidData as error:
        for problem in error.problems:
            print(f"smilepass: {problem}", file=sys.stderr)
        if error.omitted:
            print(
                f"smilepass: ... and {error.omitted} more (raise --max-problems to see them)",
                file=sys.stderr,
            )
        return BAD_DATA
    except (_Usage, SmilepassError) as error:
        print(f"smilepass: error: {error}", file=sys.stderr)
        return BAD_USAGE


def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        if isinstance(args.date_range, tuple):
            raise _Usage("the demo takes a range preset, not dates")
        data = load_demo(now=args.now, seed=args.seed)
        store = _sql_store(args.store, data) if args.store else None
        sys.stdout.write(render(data, args.date_range, store))
        return OK
    store, now = _source(args)
    if args.command == "validate":
        print(_summary(store, args.data or args.store or _DEMO_SOURCE))
        return OK
    if args.command == "export":
        paths = write_flat(_everything(store), args.output, format=args.format)
        print(f"wrote {len(paths)} files to {args.output}")
        return OK
    now = args.now or now
    practices = _practices(store, args.practice)
    targets = None if args.data or args.store else DEMO_TARGETS  # the demo's own goals
    result = _report(args.command, store, practices, now, args.date_range, targets)
    text = _RENDER[args.format](result)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return OK


def _source(args: argparse.Namespace) -> tuple[Store, datetime]:
    """The store a command reads, and its default ``now`` (the wall clock, read here
    once, unless the data is the demo's)."""
    if args.data:
        progress = _progress(sys.stderr)
        try:
            store = store_from_flat(
                args.data,
                naive_zones=dict(args.naive_zone),
                unknown_columns="ignore" if args.ignore_unknown_columns else "error",
                max_problems=args.max_problems,
                progress=progress,
            )
        finally:
            if progress is not None:
                sys.stderr.write("\r\033[K")  # the progress line, cleared
        return store, datetime.now(UTC)
    if args.store:
        from smilepass_core.sql import SqlStore  # the [sql] extra, only when asked for

        return SqlStore.connect(args.store), datetime.now(UTC)
    return demo_store(), DEMO_NOW


def _progress(stream: IO[str]) -> Callable[[str, int], None] | None:
    """A progress line on ``stream`` when it is a terminal; ``None`` (quiet) in a pipe."""
    if not stream.isatty():
        return None

    def show(file: str, rows: int) -> None:
        stream.write(f"\rreading {file}: {rows:,} rows\033[K")
        stream.flush()

    return show


def _practices(store: Store, asked: list[str]) -> tuple[str, ...]:
    known = [p.id for p in store.practices.find(ScopeQuery())]
    for practice_id in asked:
        if practice_id not in known:
            raise _Usage(f"unknown practice {practice_id!r}; known: {', '.join(known)}")
    if not asked and not known:
        raise _Usage("the data holds no practice")
    return tuple(asked) or tuple(known)


def _date_range(
    store: Store, practices: tuple[str, ...], value: Preset | tuple[date, date]
) -> Preset | DateRange:
    if isinstance(value, Preset):
        return value
    zones = {store.practices.get(p).timezone for p in practices}
    if len(zones) > 1:
        raise _Usage("a range of dates needs practices in one time zone: pick them with --practice")
    first, end = value
    return DateRange.custom(first, end - timedelta(days=1), timezone=zones.pop())


def _report(
    command: str,
    store: Store,
    practices: tuple[str, ...],
    now: datetime,
    date_range: Preset | tuple[date, date],
    targets: KpiTargets | None = None,
) -> Any:
    if command == "dashboard":
        span = _date_range(store, practices, date_range)
        return dashboard(store, practices=practices, date_range=span, now=now, targets=targets)
    if command == "weekly":
        return weekly_check(store, now=now, practices=practices)
    if command == "members":
        return membership_list(store, as_of=now, practices=practices)
    if command == "plans":
        return payment_plan_list(store, as_of=now, practices=practices)
    if command == "referrals":
        return referral_tracking(store, practices=practices, as_of=now)
    if command == "receivables":
        return aged_receivables(store, at=now, practices=practices)
    if command == "subscriptions":
        span = _date_range(store, practices, date_range)
        return subscription_metrics(
            store, practices=practices, date_range=span, now=now, targets=targets
        )
    if command == "dunning":
        return dunning_worklist(store, now=now, practices=practices)
    if command == "recovery":
        span = _date_range(store, practices, date_range)
        return recovered_revenue(store, now=now, date_range=span, practices=practices)
    return cohort_retention(store, now=now, practices=practices)


def _as_table(result: Any) -> str:
    if isinstance(result, SubscriptionMetrics):
        rows = [
            [r["figure"], "—" if r["value"] is None else str(r["value"]), r["unit"]]
            for r in result.to_records()
        ]
        return format_table(["figure", "value", "unit"], rows, right=[1]) + "\n"
    if isinstance(result, Dashboard):
        return render_dashboard(result) + "\n"
    if isinstance(result, WeeklyCheck):
        return render_weekly(result) + "\n"
    columns = list(result.ROW.COLUMNS)
    rows = [["" if v is None else str(v) for v in r.values()] for r in result.to_records()]
    return format_table(columns, rows) + "\n"


def _as_csv(result: Any) -> str:
    if isinstance(result, WeeklyCheck):
        raise _Usage("the weekly check has three tables: use --format table or json")
    out = io.StringIO()
    if isinstance(result, SubscriptionMetrics):
        writer = csv.DictWriter(out, ["figure", "value", "unit"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(result.to_records())
    elif isinstance(result, Dashboard):
        to_csv(figure_rows(result), FigureRow.COLUMNS, out)
    else:
        result.to_csv(out)
    return out.getvalue()


def _as_json(result: Any) -> str:
    if isinstance(result, Dashboard):
        records: Any = [row.record() for row in figure_rows(result)]
    else:
        records = result.to_records()
    return json.dumps(records, indent=2, default=_json_value, ensure_ascii=False) + "\n"


def _json_value(value: Any) -> Any:
    """Exact decimals as strings (a float would round them)."""
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


_RENDER: dict[str, Callable[[Any], str]] = {"table": _as_table, "csv": _as_csv, "json": _as_json}


#: The query that matches every object of each table.
_EVERY: dict[str, Callable[[], Any]] = {
    "members": MemberQuery,
    "payment_plans": PaymentPlanQuery,
    "referrals": ReferralQuery,
    "payments": PaymentQuery,
}


def _everything(store: Store) -> list[object]:
    """Every object in ``store``, in load order."""
    return [
        obj
        for name in STORE_TYPES
        for obj in getattr(store, name).find(_EVERY.get(name, ScopeQuery)())
    ]


def _summary(store: Store, source: str) -> str:
    counts = ", ".join(
        f"{getattr(store, name).count(_EVERY.get(name, ScopeQuery)()):,} {name}"
        for name in STORE_TYPES
    )
    return f"{source}: valid; {counts}"


def _sql_store(url: str, data: DemoData) -> Store:
    """A SqlStore at ``url`` holding ``data``: loaded when the database is empty, checked
    when it is not; raises :class:`SmilepassError` otherwise."""
    from smilepass_core.sql import SqlStore  # the [sql] extra, only when asked for

    store = SqlStore.connect(url)
    if len(store.practices) == 0:
        store.load(data.objects())
    elif list(store.members) != sorted(data.members, key=lambda m: m.id) or len(
        store.payments
    ) != len(data.payments):
        raise SmilepassError(
            f"{url} holds other data than this demo (--now, --seed): use an empty database"
        )
    return store
