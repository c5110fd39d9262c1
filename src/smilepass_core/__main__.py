"""Command line: ``python -m smilepass_core`` prints each demo practice's dashboard and lists."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from smilepass_core.demo import DEMO_NOW, DEMO_SEED, DemoData, load_demo
from smilepass_core.domain import (
    Member,
    MembershipPlan,
    MembershipStatus,
    PaymentPlan,
    PaymentPlanStatus,
    PaymentType,
    Practice,
)
from smilepass_core.errors import SmilepassError
from smilepass_core.io.text import format_table, render_dashboard, render_weekly
from smilepass_core.kpi import dashboard
from smilepass_core.memory import InMemoryStore
from smilepass_core.periods import Preset, zone
from smilepass_core.reports import weekly_check
from smilepass_core.repositories import Store

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
    board = dashboard(store, practices=practice.id, date_range=date_range, now=data.now)
    local_now = data.now.astimezone(zone(practice.timezone))
    archived = sum(p.is_archived for p in mine.payment_plans)
    sections = [
        _heading(f"{practice.name} ({practice.timezone}, {practice.currency})", "="),
        f"As of {local_now:%Y-%m-%d %H:%M %Z}",
        _heading("Dashboard, compared with the previous period") + "\n" + render_dashboard(board),
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m smilepass_core",
        description="Print a summary of the bundled demo practices.",
    )
    parser.add_argument(
        "--now",
        type=_aware,
        default=DEMO_NOW,
        metavar="ISO8601",
        help=f"generate the demo relative to this aware instant (default {DEMO_NOW.isoformat()})",
    )
    parser.add_argument(
        "--range",
        dest="date_range",
        choices=[p.value for p in Preset],
        default=Preset.LAST_7_DAYS.value,
        help="the dashboard's date range (default last_7_days)",
    )
    parser.add_argument(
        "--seed", type=int, default=DEMO_SEED, help=f"demo seed (default {DEMO_SEED})"
    )
    parser.add_argument(
        "--store",
        metavar="URL",
        help="read the figures from this SQL database (e.g. sqlite:///demo.db, "
        "postgresql+psycopg://user@host/db; the [sql] extra), loading the demo into it "
        "when it is empty",
    )
    return parser


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


def main(argv: list[str] | None = None) -> int:
    """Run the command line: print the demo summary.

    Args:
        argv: Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns:
        0 on success; 2 for bad arguments (a naive ``--now`` included) or a ``--store``
        that cannot be used (the ``[sql]`` extra missing, a database holding other
        data), with the reason on standard error.
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # argparse reports the error (or --help) itself
        return exit_.code if isinstance(exit_.code, int) else 2
    data = load_demo(now=args.now, seed=args.seed)
    try:
        store = _sql_store(args.store, data) if args.store else None
    except SmilepassError as error:
        print(f"python -m smilepass_core: error: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(render(data, args.date_range, store))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
