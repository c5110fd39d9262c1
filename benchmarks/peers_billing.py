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

Each tool is timed producing its answer in its own form: the library's Member objects and
report, a pandas or polars Series or frame, DuckDB's result fetched as Arrow. Turning
them into Python lists for the equality check is not timed. The library keeps its
members' Overdue outlooks once read: its first Overdue query (which reads them all) is
printed apart, and the timed ones come after it.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared import as_ids, grown, interleaved, median_rows, timed

from smilepass_core import InMemoryStore
from smilepass_core.domain import Member
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
#: Lines compared at a time (the check holds a chunk of each tool's lines, not all).
CHUNK = 100_000


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


def _totals(lines: Iterable[Line]) -> dict[str, int]:
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

    def overdue(self, practice_id: str, timezone: str, at: datetime) -> list[Member]:
        query = MemberQuery(practices={practice_id}, overdue=True, as_of=at)
        return self.store.members.find(query)

    def aged(self, practice_id: str, timezone: str, at: datetime) -> AgedReceivables:
        return aged_receivables(self.store, at=at, practices=practice_id)

    @staticmethod
    def aged_lines(report: AgedReceivables) -> Iterator[Line]:
        # The rows are made as they are reached and not kept (ReceivableRows).
        return (
            (r.due_date, r.source, r.source_id, r.instalment, r.amount.minor, r.days_past_due)
            for r in report.rows
        )

    @staticmethod
    def aged_totals(report: AgedReceivables) -> dict[str, int]:
        practices = list(report.by_practice.values())
        return {label: m.minor for label, m in (practices[0] if practices else {}).items()}


# -- polars ------------------------------------------------------------------------------


class PolarsBilling:
    """Eager frames. The ids (members and plans, and the ledger's) are enums of sorted
    categories, so joins, group-bys and sorts run on their physical integers and sort as
    the strings do."""

    name = "polars"
    modules = ("polars",)
    extra = "the `polars` extra: pip install 'smilepass-core[polars]'"

    def load(self, t: BillingTables) -> None:
        pl = importlib.import_module("polars")
        self.pl = pl
        ts, text = pl.Datetime("us", "UTC"), pl.String
        plans = {*t.instalments["plan_id"], *t.attempts["plan_id"], *t.plan_changes["plan_id"]}
        ids = pl.Enum(sorted({*t.memberships["id"], *plans}))
        entries = pl.Enum(sorted(t.ledger["id"]))
        self.memberships = pl.DataFrame(
            t.memberships,
            schema={"id": ids, "practice_id": text, "start_date": pl.Date, "price": pl.Int64},
        )
        self.changes = pl.DataFrame(
            t.changes,
            schema={
                "member_id": ids,
                "practice_id": text,
                "at": ts,
                "to_status": text,
                "seq": pl.Int64,
            },
        )
        self.ledger = pl.DataFrame(
            t.ledger,
            schema={
                "member_id": ids,
                "practice_id": text,
                "id": entries,
                "at": ts,
                "kind": text,
                "outcome": text,
                "amount": pl.Int64,
            },
        )
        self.instalments = pl.DataFrame(
            t.instalments,
            schema={
                "plan_id": ids,
                "practice_id": text,
                "member_id": ids,
                "position": pl.Int64,
                "number": pl.Int64,
                "due_date": pl.Date,
                "amount": pl.Int64,
            },
        )
        self.attempts = pl.DataFrame(
            t.attempts,
            schema={
                "plan_id": ids,
                "practice_id": text,
                "number": pl.Int64,
                "at": ts,
                "succeeded": pl.Boolean,
            },
        )
        self.plan_changes = pl.DataFrame(
            t.plan_changes,
            schema={
                "plan_id": ids,
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
        # Billing dates: the start date plus k months, from the anchor, clamped (a monthly
        # date range is), up to today; each member's in order.
        dates = members.select(
            pl.col("id").alias("member_id"),
            due=pl.date_ranges("start_date", pl.lit(today), "1mo"),
            owed=pl.col("price"),
        ).explode("due")
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
        dates = (  # kept in each member's order of due, which the joins and sums need
            dates.join_asof(  # the last change of a day before ``due``
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
                maintain_order="left",
            )
            .filter(pl.col("end").is_null() | pl.col("end").is_in(BILLABLE) | pl.col("into"))
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
            .join_asof(  # each member's ``before`` grows with ``due``
                dates.select("member_id", "due", "before", "through"),
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

    def overdue(self, practice_id: str, timezone: str, at: datetime) -> Any:
        pl = self.pl
        today = _today(at, timezone)
        late = self._lines(practice_id, timezone, at).filter(pl.col("first") <= today)
        return late.select(pl.col("holder").drop_nulls().unique().sort())["holder"]

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
    def aged_lines(result: Any) -> Iterator[Line]:
        for chunk in result[0].iter_slices(CHUNK):
            yield from chunk.rows()

    @staticmethod
    def aged_totals(result: Any) -> dict[str, int]:
        return dict(result[1].rows())


# -- pandas ------------------------------------------------------------------------------


class PandasBilling:
    """Boolean masks, group-bys, ``merge_asof`` and cumulative sums. The ids (members and
    plans, and the ledger's) are factorized at load against sorted uniques, so joins,
    group-bys and sorts run on integer codes that sort as the strings do (-1: none)."""

    name = "pandas"
    modules = ("pandas",)
    extra = "the `pandas` extra: pip install 'smilepass-core[pandas]'"

    def load(self, t: BillingTables) -> None:
        pd = importlib.import_module("pandas")
        self.pd = pd
        self.np = importlib.import_module("numpy")
        ts, cat, day = "datetime64[us, UTC]", "category", "datetime64[us]"
        plans = {*t.instalments["plan_id"], *t.attempts["plan_id"], *t.plan_changes["plan_id"]}
        self.ids = pd.Index(sorted({*t.memberships["id"], *plans}))
        entries = pd.Index(sorted(t.ledger["id"]))

        def frame(columns: Columns, codes: dict[str, Any], types: dict[str, str]) -> Any:
            coded = {name: index.get_indexer(columns[name]) for name, index in codes.items()}
            return pd.DataFrame(columns | coded).astype(types)

        ids = self.ids
        self.memberships = frame(
            t.memberships,
            {"id": ids},
            {"practice_id": cat, "start_date": day, "price": "int64"},
        )
        self.changes = frame(
            t.changes,
            {"member_id": ids},
            {"practice_id": cat, "at": ts, "to_status": cat, "seq": "int64"},
        )
        self.ledger = frame(
            t.ledger,
            {"member_id": ids, "id": entries},
            {"practice_id": cat, "at": ts, "kind": cat, "outcome": cat, "amount": "int64"},
        )
        self.instalments = frame(
            t.instalments,
            {"plan_id": ids, "member_id": ids},
            {
                "practice_id": cat,
                "position": "int64",
                "number": "int64",
                "due_date": day,
                "amount": "int64",
            },
        )
        self.attempts = frame(
            t.attempts,
            {"plan_id": ids},
            {"practice_id": cat, "number": "int64", "at": ts, "succeeded": "bool"},
        )
        self.plan_changes = frame(
            t.plan_changes,
            {"plan_id": ids},
            {"practice_id": cat, "at": ts, "to_status": cat, "seq": "int64"},
        )

    def _lines(self, practice_id: str, timezone: str, at: datetime) -> Any:
        """The unpaid lines due by ``today``: source, source_id, number, holder, due,
        outstanding, first (the first overdue day with no grace)."""
        pd, np = self.pd, self.np
        today = pd.Timestamp(_today(at, timezone))
        t = pd.Timestamp(at)

        def day(instants: Any) -> Any:  # local days of UTC instants, as naive midnights
            return instants.dt.tz_convert(timezone).dt.tz_localize(None).dt.normalize()

        ch = self.changes
        ch = ch.loc[ch["practice_id"] == practice_id, ["member_id", "at", "to_status", "seq"]]
        ch = ch.sort_values("seq")  # each member's changes in order
        status = ch[ch["at"] <= t].groupby("member_id")["to_status"].last()
        m = self.memberships
        m = m.loc[m["practice_id"] == practice_id, ["id", "start_date", "price"]]
        members = m[m["id"].map(status).isin(BILLABLE)]
        # Billing dates: the start date plus k months, from the anchor, clamped.
        start = members["start_date"]
        months = (today.year - start.dt.year) * 12 + (today.month - start.dt.month)
        counts = (months + 1).clip(lower=0).to_numpy()
        rows = np.repeat(np.arange(len(members)), counts)
        k = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
        month = start.to_numpy().astype("datetime64[M]")[rows] + k.astype("timedelta64[M]")
        first_day = month.astype("datetime64[D]")
        length = ((month + 1).astype("datetime64[D]") - first_day).astype("int64")
        offset = np.minimum(start.dt.day.to_numpy()[rows], length) - 1
        dates = pd.DataFrame(
            {
                "member_id": members["id"].to_numpy()[rows],
                "due": (first_day + offset.astype("timedelta64[D]")).astype("datetime64[us]"),
                "owed": members["price"].to_numpy()[rows],
            }
        )
        dates = dates[dates["due"] <= today]
        # Billed: the status as the day starts (the last change of an earlier day) is
        # none or billable, or a change on the day moves into a billable status. So a date
        # is not billed when it falls after a change day ending unbilled, up to the next
        # change day (that one too unless a change on it moves into a billable status).
        days = (  # sorted by member and day
            ch.assign(day=day(ch["at"]), into=ch["to_status"].isin(BILLABLE))
            .groupby(["member_id", "day"])
            .agg(end=("to_status", "last"), into=("into", "any"))
            .reset_index()
        )
        later = days.groupby("member_id")[["day", "into"]].shift(-1)
        stopped = days.assign(until=later["day"], until_into=later["into"])
        stopped = stopped.loc[
            ~stopped["end"].isin(BILLABLE), ["member_id", "day", "until", "until_into"]
        ]
        spans = dates.reset_index().merge(stopped, on="member_id")
        due, until = spans["due"], spans["until"]
        blocked = (due > spans["day"]) & (
            until.isna() | (due < until) | ((due == until) & spans["until_into"].eq(False))
        )
        dates = dates.drop(index=spans.loc[blocked, "index"])  # each member's still in order
        through = dates.groupby("member_id")["owed"].cumsum()
        dates = dates.assign(through=through, before=through - dates["owed"])
        # The ledger as it stood at T, in replay order, netted.
        led = self.ledger
        led = led.loc[
            (led["practice_id"] == practice_id) & (led["at"] <= t),
            ["member_id", "id", "at", "kind", "outcome", "amount"],
        ]
        succeeded, refund = led["outcome"] == "succeeded", led["kind"] == "refund"
        amount = led["amount"]
        signed = amount.where(succeeded & (led["kind"] == "charge"), 0) - amount.where(
            succeeded & refund, 0
        )
        led = led.assign(signed=signed, refund=refund).sort_values(
            ["member_id", "at", "refund", "id"]
        )
        by_member = led.groupby("member_id")["signed"]
        led["prior"] = by_member.cumsum() - led["signed"]
        net = by_member.sum().rename("net")
        tried = led[(led["kind"] == "charge") & (led["outcome"] == "failed")]
        failures = pd.merge_asof(  # the date the attempt's prior payments reach
            tried[["member_id", "prior"]].assign(failed=day(tried["at"])).sort_values("prior"),
            dates[["member_id", "due", "before", "through"]].sort_values("before"),
            left_on="prior",
            right_on="before",
            by="member_id",
        )
        on = (failures["prior"] < failures["through"]) & (failures["due"] <= failures["failed"])
        failures = failures[on].groupby(["member_id", "due"])["failed"].min().reset_index()
        dates = dates.join(net, on="member_id")
        dates["net"] = dates["net"].fillna(0).astype("int64")
        charges = dates[dates["net"] < dates["through"]].merge(
            failures, on=["member_id", "due"], how="left"
        )
        unpaid = charges["owed"] - (charges["net"] - charges["before"]).clip(0, charges["owed"])
        missing = np.ones(len(charges), dtype=bool)
        charges = pd.DataFrame(
            {
                "source": "member",
                "source_id": charges["member_id"],
                "number": pd.arrays.IntegerArray(np.zeros(len(charges), "int64"), missing),
                "holder": charges["member_id"],
                "due": charges["due"],
                "outstanding": unpaid,
                "failed": charges["failed"],
            }
        )
        # Instalments of the plans not Cancelled (nor before their first status) at T.
        pc = self.plan_changes
        pc = pc.loc[
            (pc["practice_id"] == practice_id) & (pc["at"] <= t), ["plan_id", "to_status", "seq"]
        ]
        plan_status = pc.sort_values("seq").groupby("plan_id")["to_status"].last()
        live = plan_status.index[plan_status != "cancelled"]
        att = self.attempts
        att = att.loc[
            (att["practice_id"] == practice_id) & (att["at"] <= t),
            ["plan_id", "number", "at", "succeeded"],
        ]
        paid = att.groupby("plan_id")["succeeded"].sum()
        lost = att[~att["succeeded"]]
        failed_on = (
            lost.assign(failed=day(lost["at"]))
            .groupby(["plan_id", "number"])["failed"]
            .min()
            .reset_index()
        )
        ins = self.instalments
        ins = ins.loc[
            (ins["practice_id"] == practice_id)
            & (ins["due_date"] <= today)
            & ins["plan_id"].isin(live),
            ["plan_id", "member_id", "position", "number", "due_date", "amount"],
        ]
        ins = ins[ins["position"] >= ins["plan_id"].map(paid).fillna(0)].merge(
            failed_on, on=["plan_id", "number"], how="left"
        )
        instalments = pd.DataFrame(
            {
                "source": "payment_plan",
                "source_id": ins["plan_id"],
                "number": ins["number"].astype("Int64"),
                "holder": ins["member_id"],
                "due": ins["due_date"],
                "outstanding": ins["amount"],
                "failed": ins["failed"],
            }
        )
        lines = pd.concat([charges, instalments], ignore_index=True)
        next_day = lines["due"] + pd.Timedelta(days=1)
        first = lines["failed"].where(lines["failed"] < next_day, next_day)
        return lines.assign(first=first)

    def overdue(self, practice_id: str, timezone: str, at: datetime) -> Any:
        pd, np = self.pd, self.np
        today = pd.Timestamp(_today(at, timezone))
        lines = self._lines(practice_id, timezone, at)
        late = lines.loc[lines["first"] <= today, "holder"]
        return self.ids[np.unique(late[late >= 0])]

    def aged(self, practice_id: str, timezone: str, at: datetime) -> Any:
        """The receivables as a frame, oldest first, and the totals per bucket."""
        pd, np = self.pd, self.np
        today = pd.Timestamp(_today(at, timezone))
        lines = self._lines(practice_id, timezone, at)
        lines = lines.assign(days=(today - lines["due"]).dt.days, order=lines["number"].fillna(0))
        lines = lines.sort_values(["due", "source_id", "order"], ignore_index=True)
        lines = lines.assign(source_id=self.ids[lines["source_id"]])[
            ["due", "source", "source_id", "number", "outstanding", "days"]
        ]
        edges = [-np.inf, *(least for _, least in BUCKETS[1:]), np.inf]  # [least, next least)
        bucket = pd.cut(lines["days"], edges, right=False, labels=[b for b, _ in BUCKETS])
        return lines, lines["outstanding"].groupby(bucket, observed=True).sum()

    @staticmethod
    def aged_lines(result: Any) -> Iterator[Line]:
        lines = result[0]
        for start in range(0, len(lines), CHUNK):
            chunk = lines.iloc[start : start + CHUNK]
            number = chunk["number"]
            numbers = [
                None if missing else int(n)
                for n, missing in zip(number.tolist(), number.isna().tolist(), strict=True)
            ]
            yield from zip(
                chunk["due"].dt.date,
                chunk["source"].tolist(),
                chunk["source_id"].tolist(),
                numbers,
                chunk["outstanding"].tolist(),
                chunk["days"].tolist(),
                strict=True,
            )

    @staticmethod
    def aged_totals(result: Any) -> dict[str, int]:
        return {str(label): int(total) for label, total in result[1].items()}


# -- DuckDB ------------------------------------------------------------------------------

#: The unpaid lines due by $today (the practice's local day of $at), as a ``lines`` CTE:
#: source, source_id, number, holder, due, outstanding, failed (the first failed day).
_LINES_SQL = """
WITH ch AS (
    SELECT member_id, "at", to_status, seq, CAST(timezone($zone, "at") AS DATE) AS day
    FROM changes WHERE practice_id = $practice
),
members AS (  -- status at T: the last change stamped at or before T
    SELECT m.id AS member_id, m.start_date, m.price,
           (year($today) - year(m.start_date)) * 12 + month($today) - month(m.start_date)
               AS months
    FROM memberships AS m
    JOIN (
        SELECT member_id, arg_max(to_status, seq) AS status
        FROM ch WHERE "at" <= $at GROUP BY member_id
    ) AS s ON s.member_id = m.id
    WHERE m.practice_id = $practice AND s.status IN ('pending', 'active', 'failed')
),
dates AS (  -- the start date plus k months, from the anchor, clamped to the month's end
    SELECT member_id, due, price AS owed
    FROM (
        SELECT member_id, price,
               CAST(start_date + to_months(unnest(range(0, months + 1))) AS DATE) AS due
        FROM members
    )
    WHERE due <= $today
),
days AS (  -- per member and local day: the status it ends in, a move into a billable one
    SELECT member_id, day, arg_max(to_status, seq) AS "end",
           bool_or(to_status IN ('pending', 'active', 'failed')) AS "into"
    FROM ch GROUP BY member_id, day
),
stopped AS (  -- from the day after a change day ending unbilled to the next change day
    SELECT * FROM (
        SELECT member_id, day AS since, "end",
               lead(day) OVER w AS until, lead("into") OVER w AS until_into
        FROM days WINDOW w AS (PARTITION BY member_id ORDER BY day)
    )
    WHERE "end" NOT IN ('pending', 'active', 'failed')
),
billed AS (  -- the status as the day starts is none or billable, or a change moves into one
    SELECT d.member_id, d.due, d.owed,
           CAST(sum(d.owed) OVER (
               PARTITION BY d.member_id ORDER BY d.due ROWS UNBOUNDED PRECEDING
           ) AS BIGINT) AS through
    FROM dates AS d
    ANTI JOIN stopped AS s
        ON s.member_id = d.member_id AND d.due > s.since
       AND (s.until IS NULL OR d.due < s.until OR (d.due = s.until AND NOT s.until_into))
),
cum AS (SELECT *, through - owed AS before FROM billed),
entries AS (  -- the ledger as it stood at T, each entry's effect on the net
    SELECT member_id, id, kind, outcome, "at",
           CASE WHEN outcome <> 'succeeded' THEN 0
                WHEN kind = 'charge' THEN amount
                WHEN kind = 'refund' THEN -amount
                ELSE 0 END AS signed
    FROM ledger WHERE practice_id = $practice AND "at" <= $at
),
net AS (SELECT member_id, CAST(sum(signed) AS BIGINT) AS net FROM entries GROUP BY member_id),
declined AS (  -- each failed charge and P over the entries before it in replay order (by
    -- instant, charges before refunds at one instant, then id)
    SELECT f.member_id, CAST(timezone($zone, f."at") AS DATE) AS failed,
           CAST(coalesce(sum(e.signed), 0) AS BIGINT) AS prior
    FROM entries AS f
    LEFT JOIN entries AS e
        ON e.member_id = f.member_id
       AND (e."at" < f."at" OR (e."at" = f."at" AND e.kind <> 'refund' AND e.id < f.id))
    WHERE f.kind = 'charge' AND f.outcome = 'failed'
    GROUP BY f.member_id, f.id, f."at"
),
failures AS (  -- a failed charge is on the first date not paid in full when it was made
    SELECT f.member_id, c.due, min(f.failed) AS failed
    FROM declined AS f
    JOIN cum AS c
        ON c.member_id = f.member_id AND f.prior >= c.before AND f.prior < c.through
    WHERE c.due <= f.failed
    GROUP BY f.member_id, c.due
),
charges AS (
    SELECT 'member' AS source, c.member_id AS source_id, CAST(NULL AS BIGINT) AS number,
           c.member_id AS holder, c.due,
           c.owed - least(greatest(coalesce(n.net, 0) - c.before, 0), c.owed) AS outstanding,
           f.failed
    FROM cum AS c
    LEFT JOIN net AS n USING (member_id)
    LEFT JOIN failures AS f USING (member_id, due)
    WHERE coalesce(n.net, 0) < c.through
),
live AS (  -- the plans whose status at T is neither none nor Cancelled
    SELECT plan_id FROM plan_changes
    WHERE practice_id = $practice AND "at" <= $at
    GROUP BY plan_id HAVING arg_max(to_status, seq) <> 'cancelled'
),
tried AS (
    SELECT plan_id, number, succeeded, "at" FROM attempts
    WHERE practice_id = $practice AND "at" <= $at
),
paid AS (SELECT plan_id, count(*) FILTER (WHERE succeeded) AS paid FROM tried GROUP BY plan_id),
failed_on AS (
    SELECT plan_id, number, min(CAST(timezone($zone, "at") AS DATE)) AS failed
    FROM tried WHERE NOT succeeded GROUP BY plan_id, number
),
instalments_due AS (  -- paid in schedule order, one per succeeded attempt
    SELECT 'payment_plan' AS source, i.plan_id AS source_id, i.number, i.member_id AS holder,
           i.due_date AS due, i.amount AS outstanding, f.failed
    FROM instalments AS i
    SEMI JOIN live USING (plan_id)
    LEFT JOIN paid USING (plan_id)
    LEFT JOIN failed_on AS f USING (plan_id, number)
    WHERE i.practice_id = $practice AND i.due_date <= $today
      AND i.position >= coalesce(paid.paid, 0)
),
lines AS (SELECT * FROM charges UNION ALL SELECT * FROM instalments_due)
"""

_OVERDUE_SQL = f"""{_LINES_SQL}
SELECT DISTINCT holder FROM lines
WHERE holder IS NOT NULL AND least(due + 1, failed) <= $today
ORDER BY holder
"""

_AGED_SQL = f"""{_LINES_SQL}
SELECT due, source, source_id, number, outstanding, $today - due AS days
FROM lines
ORDER BY due, source_id, coalesce(number, 0)
"""

_BUCKET_SQL = "CASE {} END".format(
    " ".join(f"WHEN days >= {least} THEN '{label}'" for label, least in reversed(BUCKETS))
)


class DuckDBBilling:
    """SQL on an in-memory connection, one thread; local days from ``timezone(zone, at)``
    (ICU)."""

    name = "duckdb"
    modules = ("duckdb", "pyarrow")
    extra = "duckdb and the `arrow` extra: pip install duckdb 'smilepass-core[arrow]'"

    def load(self, t: BillingTables) -> None:
        duckdb = importlib.import_module("duckdb")
        pa = importlib.import_module("pyarrow")
        ts, text, whole = pa.timestamp("us", tz="UTC"), pa.string(), pa.int64()
        con = duckdb.connect(":memory:", config={"threads": 1})
        schemas = {
            "memberships": (
                t.memberships,
                {"id": text, "practice_id": text, "start_date": pa.date32(), "price": whole},
            ),
            "changes": (
                t.changes,
                {
                    "member_id": text,
                    "practice_id": text,
                    "at": ts,
                    "to_status": text,
                    "seq": whole,
                },
            ),
            "ledger": (
                t.ledger,
                {
                    "member_id": text,
                    "practice_id": text,
                    "id": text,
                    "at": ts,
                    "kind": text,
                    "outcome": text,
                    "amount": whole,
                },
            ),
            "instalments": (
                t.instalments,
                {
                    "plan_id": text,
                    "practice_id": text,
                    "member_id": text,
                    "position": whole,
                    "number": whole,
                    "due_date": pa.date32(),
                    "amount": whole,
                },
            ),
            "attempts": (
                t.attempts,
                {
                    "plan_id": text,
                    "practice_id": text,
                    "number": whole,
                    "at": ts,
                    "succeeded": pa.bool_(),
                },
            ),
            "plan_changes": (
                t.plan_changes,
                {"plan_id": text, "practice_id": text, "at": ts, "to_status": text, "seq": whole},
            ),
        }
        for name, (columns, schema) in schemas.items():
            arrow = pa.table(columns, schema=pa.schema(list(schema.items())))
            con.register("source", arrow)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM source")
            con.unregister("source")
        self.con = con

    @staticmethod
    def _params(practice_id: str, timezone: str, at: datetime) -> dict[str, Any]:
        return {"practice": practice_id, "zone": timezone, "at": at, "today": _today(at, timezone)}

    def overdue(self, practice_id: str, timezone: str, at: datetime) -> Any:
        params = self._params(practice_id, timezone, at)
        return self.con.sql(_OVERDUE_SQL, params=params).to_arrow_table()

    def aged(self, practice_id: str, timezone: str, at: datetime) -> Any:
        """The receivables, oldest first, and the totals per bucket: relations over rows
        held in memory (the query runs here, once)."""
        params = self._params(practice_id, timezone, at)
        lines = self.con.sql(_AGED_SQL, params=params).materialize()
        totals = lines.query(
            "lines", f"SELECT {_BUCKET_SQL} AS bucket, sum(outstanding) FROM lines GROUP BY 1"
        ).materialize()
        return lines, totals

    @staticmethod
    def aged_lines(result: Any) -> Iterator[Line]:
        for batch in result[0].to_arrow_reader(CHUNK):
            yield from zip(*(column.to_pylist() for column in batch.columns), strict=True)

    @staticmethod
    def aged_totals(result: Any) -> dict[str, int]:
        return {label: int(total) for label, total in result[1].fetchall()}


# -- the run -----------------------------------------------------------------------------


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
    for cls in (PolarsBilling, PandasBilling, DuckDBBilling):
        if cls.name in names:
            missing = [m for m in cls.modules if importlib.util.find_spec(m) is None]
            if missing:
                print(
                    f"note: skipping {cls.name}: {', '.join(missing)} not installed ({cls.extra})"
                )
                continue
            tool = cls()
            load_s, mib, _ = grown(functools.partial(tool.load, tables))
            print(f"{tool.name} billing load {load_s:.2f} s (+{mib:,.0f} MiB resident)")
            tools.append(tool)
    del tables  # the tools hold their own frames
    args = (practice.id, practice.timezone, at)
    library = tools[0]
    first_s, first_mib, first = grown(lambda: library.overdue(*args))  # reads the outlooks
    aged_s, aged_mib, report = grown(lambda: library.aged(*args))
    overdue = as_ids(first)
    totals = library.aged_totals(report)
    print(
        f"library: the first Overdue query (reads every member's outlook) {first_s:.2f} s "
        f"(+{first_mib:,.0f} MiB resident); the first aged receivables {aged_s:.2f} s "
        f"(+{aged_mib:,.0f} MiB, {len(report.rows):,} rows)"
    )
    if _totals(library.aged_lines(report)) != totals:
        print("FAILED: the library's aged receivables rows do not add up to its totals")
        return 1
    wrong = []
    for tool in tools[1:]:
        got = as_ids(tool.overdue(*args))
        if got != overdue:
            wrong.append(f"{tool.name} overdue: {_first_difference(overdue, got)}")
        result = tool.aged(*args)
        if (peer := tool.aged_totals(result)) != totals:
            wrong.append(f"{tool.name} aged totals: library {totals}, peer {peer}")
        difference = _first_different_line(library.aged_lines(report), tool.aged_lines(result))
        if difference:
            wrong.append(f"{tool.name} aged rows: {difference}")
        del result
    if wrong:
        print("\nFAILED: " + "; ".join(wrong))
        return 1
    print(
        f"OK: every tool lists the same {len(overdue):,} Overdue members of "
        f"{practice.id} and the same {len(report.rows):,} receivables "
        f"({', '.join(f'{k} {v:,}' for k, v in totals.items())})."
    )
    del first, report
    for workload, times in (("overdue", rounds * 3), ("aged", rounds)):
        calls = {t.name: functools.partial(getattr(t, workload), *args) for t in tools}
        samples = interleaved(calls, times)
        print(f"\n{workload} of {practice.id} at T, median of {times}:\n")
        rows = median_rows(samples, tools[0].name, ratio=".2f")
        print(markdown(["tool", "median ms", "p90 ms", "median / library"], rows, {1, 2, 3}))
    return 0


def _first_difference(expected: list[Any], got: list[Any]) -> str:
    for k, (a, b) in enumerate(zip(expected, got, strict=False)):
        if a != b:
            return f"at {k}: library {a!r}, peer {b!r} ({len(expected)} vs {len(got)})"
    return f"lengths {len(expected)} vs {len(got)}"


def _first_different_line(expected: Iterator[Line], got: Iterator[Line]) -> str:
    """Where two streams of lines first differ ("" when they are equal, lengths too)."""
    missing = object()
    for k, (a, b) in enumerate(itertools.zip_longest(expected, got, fillvalue=missing)):
        if a != b:
            a, b = ("(none)" if x is missing else repr(x) for x in (a, b))
            return f"at {k}: library {a}, peer {b}"
    return ""
