"""The Overdue list and the aged receivables of one practice in pandas, polars and DuckDB
beside smilepass_core: equal, then timed (``peers.py`` runs them after the dashboard).

Both come from one set of **unpaid lines** at an instant ``T``, written here from
docs/domain.md ("Billing", "Invoices", "Overdue") in each tool's idiom, not by calling the
library. ``today`` is ``T``'s local day in the practice's zone; every "day" below is a
local day there.

- **Membership charges**, for a member whose status at ``T`` (their last change stamped
  at or before ``T``) is Pending, Active or Failed. The billing dates are the start date
  plus ``k`` months (``k = 0, 1, ...``, each from the anchor, the day clamped to the
  month's end), up to ``today``; a date ``d`` is billed when the status as ``d`` starts
  (the last change of an earlier day) is none or billable, or a change on ``d`` moves
  into a billable status. Each billed date owes the plan's price; ``cum_before`` is
  what the billed dates before it owe. The ledger (the member's entries stamped at or
  before ``T``) nets to ``P`` = succeeded charges - succeeded refunds; it pays the dates
  in order, so a date is unpaid when ``P < cum_before + owed`` and its outstanding part
  is ``owed - clip(P - cum_before, 0, owed)``. A failed charge is an attempt on the
  first date not paid in full when it was made (``P`` over the entries before it in
  time, charges before refunds at one instant, then id), if that date is on or before
  the attempt's day.
- **Instalments** of a payment plan whose status at ``T`` is neither none nor Cancelled:
  the instalments are paid in schedule order, one per succeeded attempt by ``T``; a
  failed attempt by ``T`` is on the instalment its number names.
- A line is **overdue** (no grace) when ``min(due + 1 day, first failed day) <= today``.
  The **Overdue list**: the members with an overdue membership line, or holding a plan
  with an overdue instalment, by id. The **aged receivables**: every unpaid line due on
  or before ``today``, with ``today - due`` days past due and the default buckets
  (Current, 1-30, 31-60, 61-90, 91+), and the total per bucket.

The generated data has one price per plan, no plan changes and no discounts; the export
refuses data that has them (the peers would have to price each date).
"""

from __future__ import annotations

import importlib
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared import timed

from smilepass_core import InMemoryStore
from smilepass_core.periods import zone
from smilepass_core.queries import MemberQuery
from smilepass_core.reports import AgedReceivables, aged_receivables

Columns = dict[str, list[Any]]
#: The statuses in which a membership is billed.
BILLABLE = ("pending", "active", "failed")
#: The default buckets: label, the least days past due it holds.
BUCKETS = (("Current", 0), ("1-30", 1), ("31-60", 31), ("61-90", 61), ("91+", 91))
#: A line: due date, source, source id, instalment number (None for a membership
#: charge), outstanding minor units, days past due.
Line = tuple[date, str, str, int | None, int, int]
Aged = tuple[list[Line], dict[str, int]]


@dataclass(frozen=True)
class BillingTables:
    """Column lists built with plain Python from the domain objects."""

    memberships: Columns  # id, practice_id, start_date, price (minor)
    changes: Columns  # member_id, practice_id, at, to_status, seq
    ledger: Columns  # member_id, practice_id, id, at, kind, outcome, amount
    instalments: Columns  # plan_id, practice_id, member_id, position, number, due_date, amount
    attempts: Columns  # plan_id, practice_id, number, at, succeeded
    plan_changes: Columns  # plan_id, practice_id, at, to_status, seq
    last_event: datetime

    def sizes(self) -> str:
        return ", ".join(
            f"{len(next(iter(c.values()))):,} {name}"
            for name, c in (
                ("instalments", self.instalments),
                ("attempts", self.attempts),
                ("plan changes", self.plan_changes),
            )
        )


def _columns(*names: str) -> Columns:
    return {name: [] for name in names}


def export_billing(data: Any) -> BillingTables:
    """The tables the billing peers read, and the data's last event (the instant asked)."""
    prices = {}
    for plan in data.plans:
        if plan.earlier_prices:
            raise ValueError(f"plan {plan.id} was repriced: the peers price one amount")
        prices[plan.id] = plan.price.minor
    memberships = _columns("id", "practice_id", "start_date", "price")
    changes = _columns("member_id", "practice_id", "at", "to_status", "seq")
    events = []
    for m in data.members:
        if m.plan_changes or m.discounts:
            raise ValueError(f"member {m.id} changed plan or has discounts")
        memberships["id"].append(m.id)
        memberships["practice_id"].append(m.practice_id)
        memberships["start_date"].append(m.start_date)
        memberships["price"].append(prices[m.plan_id])
        for seq, change in enumerate(m.history):
            changes["member_id"].append(m.id)
            changes["practice_id"].append(m.practice_id)
            changes["at"].append(change.at.astimezone(UTC))
            changes["to_status"].append(change.to.value)
            changes["seq"].append(seq)
        events.append(m.last_changed_at)
    ledger = _columns("member_id", "practice_id", "id", "at", "kind", "outcome", "amount")
    for p in data.payments:
        events.append(p.at)
        if p.member_id is None:
            continue
        ledger["member_id"].append(p.member_id)
        ledger["practice_id"].append(p.practice_id)
        ledger["id"].append(p.id)
        ledger["at"].append(p.at.astimezone(UTC))
        ledger["kind"].append(p.kind.value)
        ledger["outcome"].append(p.outcome.value)
        ledger["amount"].append(p.amount.minor)
    instalments = _columns(
        "plan_id", "practice_id", "member_id", "position", "number", "due_date", "amount"
    )
    attempts = _columns("plan_id", "practice_id", "number", "at", "succeeded")
    plan_changes = _columns("plan_id", "practice_id", "at", "to_status", "seq")
    for plan in data.payment_plans:
        for position, i in enumerate(plan.schedule):
            instalments["plan_id"].append(plan.id)
            instalments["practice_id"].append(plan.practice_id)
            instalments["member_id"].append(plan.member_id)
            instalments["position"].append(position)
            instalments["number"].append(i.number)
            instalments["due_date"].append(i.due_date)
            instalments["amount"].append(i.amount.minor)
        for a in plan.attempts:
            attempts["plan_id"].append(plan.id)
            attempts["practice_id"].append(plan.practice_id)
            attempts["number"].append(a.number)
            attempts["at"].append(a.at.astimezone(UTC))
            attempts["succeeded"].append(a.succeeded)
            events.append(a.at)
        for seq, change in enumerate(plan.history):
            plan_changes["plan_id"].append(plan.id)
            plan_changes["practice_id"].append(plan.practice_id)
            plan_changes["at"].append(change.at.astimezone(UTC))
            plan_changes["to_status"].append(change.to.value)
            plan_changes["seq"].append(seq)
            events.append(change.at)
    return BillingTables(
        memberships,
        changes,
        ledger,
        instalments,
        attempts,
        plan_changes,
        max(events).astimezone(UTC),
    )


def _today(at: datetime, timezone: str) -> date:
    return at.astimezone(zone(timezone)).date()


def _bucket(days: int) -> str:
    return next(label for label, least in reversed(BUCKETS) if days >= least)


def _totals(lines: Sequence[Line]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for line in lines:
        label = _bucket(line[5])
        totals[label] = totals.get(label, 0) + line[4]
    return totals


# -- the library -------------------------------------------------------------------------


class LibraryBilling:
    """The library's answers: the store's Overdue filter and the aged receivables report."""

    name = "smilepass_core"

    def __init__(self, store: InMemoryStore) -> None:
        self.store = store

    def overdue(self, practice_id: str, timezone: str, at: datetime) -> list[str]:
        query = MemberQuery(practices={practice_id}, overdue=True, as_of=at)
        return [m.id for m in self.store.members.find(query)]

    def aged(self, practice_id: str, timezone: str, at: datetime) -> AgedReceivables:
        return aged_receivables(self.store, at=at, practices=practice_id)

    @staticmethod
    def aged_lines(report: AgedReceivables) -> Aged:
        practice_id = report.rows[0].practice if report.rows else ""
        lines = [
            (
                r.due_date,
                r.source,
                r.source_id,
                r.instalment,
                r.amount.minor,
                r.days_past_due,
            )
            for r in report.rows
        ]
        totals = {label: m.minor for label, m in report.by_practice.get(practice_id, {}).items()}
        return lines, totals


# -- polars ------------------------------------------------------------------------------


class PolarsBilling:
    name = "polars"

    def load(self, t: BillingTables) -> None:
        pl = importlib.import_module("polars")
        self.pl = pl
        ts, text = pl.Datetime("us", "UTC"), pl.String
        self.memberships = pl.DataFrame(
            t.memberships,
            schema={"id": text, "practice_id": text, "start_date": pl.Date, "price": pl.Int64},
        )
        self.changes = pl.DataFrame(
            t.changes,
            schema={
                "member_id": text,
                "practice_id": text,
                "at": ts,
                "to_status": text,
                "seq": pl.Int64,
            },
        )
        self.ledger = pl.DataFrame(
            t.ledger,
            schema={
                "member_id": text,
                "practice_id": text,
                "id": text,
                "at": ts,
                "kind": text,
                "outcome": text,
                "amount": pl.Int64,
            },
        )
        self.instalments = pl.DataFrame(
            t.instalments,
            schema={
                "plan_id": text,
                "practice_id": text,
                "member_id": text,
                "position": pl.Int64,
                "number": pl.Int64,
                "due_date": pl.Date,
                "amount": pl.Int64,
            },
        )
        self.attempts = pl.DataFrame(
            t.attempts,
            schema={
                "plan_id": text,
                "practice_id": text,
                "number": pl.Int64,
                "at": ts,
                "succeeded": pl.Boolean,
            },
        )
        self.plan_changes = pl.DataFrame(
            t.plan_changes,
            schema={
                "plan_id": text,
                "practice_id": text,
                "at": ts,
                "to_status": text,
                "seq": pl.Int64,
            },
        )

    def _lines(self, practice_id: str, timezone: str, at: datetime) -> Any:
        """The unpaid lines due by ``today``: source, source_id, number, holder, due,
        outstanding, first (the first overdue day with no grace)."""
        pl = self.pl
        today = _today(at, timezone)
        mine = pl.col("practice_id") == practice_id
        day = pl.col("at").dt.convert_time_zone(timezone).dt.date()
        changes = self.changes.filter(mine).with_columns(day=day)
        status = (
            changes.filter(pl.col("at") <= at)
            .group_by("member_id")
            .agg(pl.col("to_status").sort_by("seq").last().alias("status"))
        )
        members = self.memberships.filter(mine).join(status, left_on="id", right_on="member_id")
        members = members.filter(pl.col("status").is_in(BILLABLE))
        # Billing dates: the start date plus k months, from the anchor, clamped.
        start = pl.col("start_date")
        months = (today.year - start.dt.year()) * 12 + (today.month - start.dt.month())
        dates = (
            members.select("id", "start_date", "price", k=pl.int_ranges(0, months + 1))
            .explode("k")
            .with_columns(m0=start.dt.month().cast(pl.Int64) - 1 + pl.col("k"))
            .with_columns(
                y=start.dt.year().cast(pl.Int64) + pl.col("m0") // 12, mo=pl.col("m0") % 12 + 1
            )
            .with_columns(
                due=pl.date(
                    "y",
                    "mo",
                    pl.min_horizontal(
                        start.dt.day(), pl.date("y", "mo", 1).dt.month_end().dt.day()
                    ),
                )
            )
            .filter(pl.col("due") <= today)
            .select(pl.col("id").alias("member_id"), "due", pl.col("price").alias("owed"))
        )
        # Billed: the status as the day starts (the last change of an earlier day) is
        # none or billable, or a change on the day moves into a billable status.
        days = (
            changes.sort("seq")
            .group_by("member_id", "day")
            .agg(
                end=pl.col("to_status").last(),
                into=pl.col("to_status").is_in(BILLABLE).any(),
            )
        )
        before = days.select("member_id", "day", "end").sort("day")
        dates = (
            dates.sort("due")
            .join_asof(  # the last change of a day before ``due``
                before,
                left_on="due",
                right_on="day",
                by="member_id",
                allow_exact_matches=False,
                check_sortedness=False,
            )
            .join(
                days.select("member_id", pl.col("day").alias("due"), "into"),
                on=["member_id", "due"],
                how="left",
            )
            .filter(pl.col("end").is_null() | pl.col("end").is_in(BILLABLE) | pl.col("into"))
            .sort("member_id", "due")
            .with_columns(through=pl.col("owed").cum_sum().over("member_id"))
            .with_columns(before=pl.col("through") - pl.col("owed"))
        )
        # The ledger as it stood at T, in replay order, netted.
        succeeded = pl.col("outcome") == "succeeded"
        signed = (
            pl.when(succeeded & (pl.col("kind") == "charge"))
            .then(pl.col("amount"))
            .when(succeeded & (pl.col("kind") == "refund"))
            .then(-pl.col("amount"))
            .otherwise(0)
        )
        ledger = (
            self.ledger.filter(mine & (pl.col("at") <= at))
            .with_columns(signed=signed, refund=pl.col("kind") == "refund")
            .sort("member_id", "at", "refund", "id")
            .with_columns(prior=pl.col("signed").cum_sum().over("member_id") - pl.col("signed"))
        )
        net = ledger.group_by("member_id").agg(net=pl.col("signed").sum())
        failures = (
            ledger.filter((pl.col("kind") == "charge") & (pl.col("outcome") == "failed"))
            .select("member_id", "prior", failed=day)
            .sort("prior")
            .join_asof(
                dates.select("member_id", "due", "before", "through").sort("before"),
                left_on="prior",
                right_on="before",
                by="member_id",
                check_sortedness=False,
            )
            .filter((pl.col("prior") < pl.col("through")) & (pl.col("due") <= pl.col("failed")))
            .group_by("member_id", "due")
            .agg(pl.col("failed").min())
        )
        charges = (
            dates.join(net, on="member_id", how="left")
            .with_columns(pl.col("net").fill_null(0))
            .filter(pl.col("net") < pl.col("through"))
            .join(failures, on=["member_id", "due"], how="left")
            .select(
                source=pl.lit("member"),
                source_id=pl.col("member_id"),
                number=pl.lit(None, pl.Int64),
                holder=pl.col("member_id"),
                due=pl.col("due"),
                outstanding=pl.col("owed")
                - (pl.col("net") - pl.col("before")).clip(0, pl.col("owed")),
                failed=pl.col("failed"),
            )
        )
        # Instalments of the plans not Cancelled (nor before their first status) at T.
        plan_status = (
            self.plan_changes.filter(mine & (pl.col("at") <= at))
            .group_by("plan_id")
            .agg(pl.col("to_status").sort_by("seq").last().alias("status"))
            .filter(pl.col("status") != "cancelled")
        )
        tried = self.attempts.filter(mine & (pl.col("at") <= at))
        paid = tried.group_by("plan_id").agg(paid=pl.col("succeeded").sum())
        failed_on = (
            tried.filter(~pl.col("succeeded")).group_by("plan_id", "number").agg(failed=day.min())
        )
        instalments = (
            self.instalments.filter(mine & (pl.col("due_date") <= today))
            .join(plan_status, on="plan_id")
            .join(paid, on="plan_id", how="left")
            .filter(pl.col("position") >= pl.col("paid").fill_null(0))
            .join(failed_on, on=["plan_id", "number"], how="left")
            .select(
                source=pl.lit("payment_plan"),
                source_id=pl.col("plan_id"),
                number=pl.col("number"),
                holder=pl.col("member_id"),
                due=pl.col("due_date"),
                outstanding=pl.col("amount"),
                failed=pl.col("failed"),
            )
        )
        first = pl.min_horizontal(pl.col("due") + timedelta(days=1), pl.col("failed"))
        return pl.concat([charges, instalments]).with_columns(first=first)

    def overdue(self, practice_id: str, timezone: str, at: datetime) -> list[str]:
        pl = self.pl
        today = _today(at, timezone)
        late = self._lines(practice_id, timezone, at).filter(pl.col("first") <= today)
        return late.select(pl.col("holder").drop_nulls().unique().sort())["holder"].to_list()

    def aged(self, practice_id: str, timezone: str, at: datetime) -> Any:
        """The receivables as a frame, oldest first, and the totals per bucket."""
        pl = self.pl
        today = _today(at, timezone)
        lines = (
            self._lines(practice_id, timezone, at)
            .with_columns(days=(pl.lit(today) - pl.col("due")).dt.total_days())
            .sort("due", "source_id", pl.col("number").fill_null(0))
            .select("due", "source", "source_id", "number", "outstanding", "days")
        )
        label: Any = pl
        for name, least in reversed(BUCKETS):  # the first bucket whose least days it reaches
            label = label.when(pl.col("days") >= least).then(pl.lit(name))
        return lines, lines.group_by(bucket=label).agg(pl.col("outstanding").sum())

    @staticmethod
    def aged_lines(result: Any) -> Aged:
        lines, totals = result
        return lines.rows(), dict(totals.rows())


# -- the run -----------------------------------------------------------------------------


def _p90(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-9 * len(ordered) // 10) - 1)]


def run(
    store: InMemoryStore,
    data: Any,
    names: Sequence[str],
    rounds: int,
    markdown: Callable[[Sequence[str], Sequence[Sequence[str]], set[int]], str],
) -> int:
    """Check every tool's Overdue list and aged receivables of the first practice against
    the library's, then time them; print the tables. 1 when a tool differs."""
    practice = data.practices[0]
    export_s, tables = timed(lambda: export_billing(data))
    at = tables.last_event
    print(f"\nbilling tables: {tables.sizes()} (export {export_s:.2f} s); T = {at.isoformat()}")
    tools: list[Any] = [LibraryBilling(store)]
    for cls in (PolarsBilling,):
        if cls.name in names:
            tool = cls()
            load_s, _ = timed(lambda tool=tool: tool.load(tables))
            print(f"{tool.name} billing load {load_s:.2f} s")
            tools.append(tool)
    args = (practice.id, practice.timezone, at)
    wanted = {"overdue": tools[0].overdue(*args), "aged": tools[0].aged_lines(tools[0].aged(*args))}
    if _totals(wanted["aged"][0]) != wanted["aged"][1]:
        print("FAILED: the library's aged receivables rows do not add up to its totals")
        return 1
    wrong = []
    for tool in tools[1:]:
        for workload, expected in wanted.items():
            got = getattr(tool, workload)(*args)
            got = tool.aged_lines(got) if workload == "aged" else got
            if got != expected:
                wrong.append(f"{tool.name} {workload}: {_first_difference(expected, got)}")
    if wrong:
        print("\nFAILED: " + "; ".join(wrong))
        return 1
    lines, totals = wanted["aged"]
    print(
        f"OK: every tool lists the same {len(wanted['overdue']):,} Overdue members of "
        f"{practice.id} and the same {len(lines):,} receivables "
        f"({', '.join(f'{k} {v:,}' for k, v in totals.items())})."
    )
    for workload in wanted:
        samples: dict[str, list[float]] = {t.name: [] for t in tools}
        for r in range(rounds * 3):
            for tool in tools[r % len(tools) :] + tools[: r % len(tools)]:
                fn = getattr(tool, workload)
                t, _ = timed(lambda fn=fn: fn(*args))
                samples[tool.name].append(t * 1e3)
        base = statistics.median(samples[tools[0].name])
        print(f"\n{workload} of {practice.id} at T, median of {rounds * 3}:\n")
        rows = [
            [
                n,
                f"{statistics.median(v):.2f}",
                f"{_p90(v):.2f}",
                f"{statistics.median(v) / base:.2f}x",
            ]
            for n, v in samples.items()
        ]
        print(markdown(["tool", "median ms", "p90 ms", "median / library"], rows, {1, 2, 3}))
    return 0


def _first_difference(expected: Any, got: Any) -> str:
    if isinstance(expected, tuple):
        for part, a, b in zip(("rows", "totals"), expected, got, strict=True):
            if a != b:
                return f"{part}: {_first_difference(a, b)}"
    if isinstance(expected, list) and isinstance(got, list):
        for k, (a, b) in enumerate(zip(expected, got, strict=False)):
            if a != b:
                return f"at {k}: library {a!r}, peer {b!r} ({len(expected)} vs {len(got)})"
        return f"lengths {len(expected)} vs {len(got)}"
    return f"library {expected!r}, peer {got!r}"
