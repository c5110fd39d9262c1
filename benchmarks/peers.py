"""The dashboard's figures in pandas, polars and DuckDB beside smilepass_core: equal, then timed.

Builds ``benchmarks/dashboard.py``'s deterministic dataset (N members with 12 ledger
entries each, 300 payment plans) and loads it into :class:`~smilepass_core.InMemoryStore`.
It then exports four flat tables from the domain objects with plain Python: members,
member status changes, payments and payment plans, with instants in UTC and money in
integer minor units. Each peer loads those tables in its own form (a pandas DataFrame, a
polars DataFrame, a DuckDB in-memory table). For each of ``dashboard.py``'s 20 date
ranges, each peer computes the dashboard's figures, written from the definitions in
``docs/metrics.md`` in that tool's idiom (boolean masks and groupby, expressions, SQL):

- Members at the effective end E, at the start of this month and at the comparison
  period's end (the value, the previous value and the month change);
- the numerator and denominator of Retention % and of Period retention, for the range
  and for the comparison period;
- Total Revenue per currency, in minor units, over [start, E), this month to date and
  the comparison period;
- New Members and Committed Payments per bucket;
- the Latest New Members feed (5 ids).

Then the Failed members of the first practice by start date, and its Overdue list and
aged receivables at the data's last event (``peers_billing.py``, which states their
definitions), each checked equal across tools before it is timed; each tool is timed
producing its own form (Member objects, a Series, an Arrow table), the ids for the
check taken apart.

For one practice the pandas and polars peers filter each table to it; for several they
join a table of the practices' windows to every table and compute all practices at once,
as the DuckDB peer always does. Each is that tool's faster form there (at 100,000
members, one practice: pandas 62 ms filtered against 792 ms joined; 200 practices at
10,000 members: 91 ms joined against about 2 s filtered practice by practice).

The peers use the library for period arithmetic only: preset resolution, the comparison
period and the bucket edges. Before anything is timed, every peer's figures must EQUAL
the library's ``dashboard(...)`` figures on every range. A difference is printed, and
the exit status is 1. Then K interleaved rounds each run every tool once over the 20
ranges. The Markdown tables give each tool's load time, its median time per refresh
and its ratio to the library.

This is a script, not a timed test::

    .venv/bin/python benchmarks/peers.py [--members N] [--practices P] [--rounds K]
                                         [--peers pandas polars duckdb]

Several sizes or practice counts run each in a fresh process, and above
``--one-peer-above`` members (500,000) each peer in a process of its own: the S, M and L
tables of ``benchmarks/RESULTS.md`` come from one command::

    .venv/bin/python benchmarks/peers.py --members 10000 100000 1000000 --practices 1 200 --rounds 3

``--practices 200`` is the all-practices dashboard: the two named practices, then
practices cycling through seven zones in four currencies (``dashboard.practice_rows``).

polars and DuckDB run on ``--threads`` threads (default 1, as the library runs on one).
A peer whose package is missing is skipped, with a note naming the extra to install.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import peers_billing
from shared import as_ids, dashboard_module, grown, interleaved, median_rows, p90, peak_mib, timed

from smilepass_core import InMemoryStore
from smilepass_core.domain import MembershipStatus, PaymentPlanStatus, Practice
from smilepass_core.kpi import Dashboard, dashboard
from smilepass_core.periods import DateRange, local_midnight, zone
from smilepass_core.queries import MemberQuery, Order

LATEST = 5
#: The open end of a member's last status span (year 9999, in every tool's range).
FAR = datetime(9999, 12, 31, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ACTIVE = MembershipStatus.ACTIVE
#: A payment plan commits when it first becomes Active, or Completed at once (Instant).
_COMMITS = (PaymentPlanStatus.ACTIVE, PaymentPlanStatus.COMPLETED)


bench = dashboard_module()


# -- the flat tables ---------------------------------------------------------------------

Columns = dict[str, list[Any]]


@dataclass(frozen=True)
class Tables:
    """Column lists built with plain Python from the domain objects."""

    members: Columns  # id, practice_id, plan_id, first_activated_at, start_date, status
    changes: Columns  # member_id, practice_id, at, from_status, to_status, seq
    payments: Columns  # id, practice_id, member_id, amount, currency, kind, outcome, at
    payment_plans: Columns  # id, practice_id, committed_at, total, currency
    practices: tuple[Practice, ...]

    def sizes(self) -> str:
        counts = {
            "members": self.members,
            "status changes": self.changes,
            "payments": self.payments,
            "payment plans": self.payment_plans,
        }
        return ", ".join(f"{len(next(iter(c.values()))):,} {n}" for n, c in counts.items())


def _columns(*names: str) -> Columns:
    return {name: [] for name in names}


def export_tables(data: Any) -> Tables:
    """The four tables. A member's changes are in history order (``seq``), which is time
    order; ``first_activated_at`` and ``committed_at`` are read off the histories."""
    members = _columns("id", "practice_id", "plan_id", "first_activated_at", "start_date", "status")
    changes = _columns("member_id", "practice_id", "at", "from_status", "to_status", "seq")
    for m in data.members:
        first = None
        last = None
        for seq, change in enumerate(m.history):
            at = change.at.astimezone(UTC)
            if last is not None and at < last:
                raise ValueError(f"member {m.id}: history out of time order at {seq}")
            last = at
            if first is None and change.to is _ACTIVE:
                first = at
            changes["member_id"].append(m.id)
            changes["practice_id"].append(m.practice_id)
            changes["at"].append(at)
            changes["from_status"].append(None if change.from_ is None else change.from_.value)
            changes["to_status"].append(change.to.value)
            changes["seq"].append(seq)
        members["id"].append(m.id)
        members["practice_id"].append(m.practice_id)
        members["plan_id"].append(m.plan_id)
        members["first_activated_at"].append(first)
        members["start_date"].append(m.start_date)
        members["status"].append(m.status.value)  # the current status, as a list exports it

    payments = _columns(
        "id", "practice_id", "member_id", "amount", "currency", "kind", "outcome", "at"
    )
    for p in data.payments:
        payments["id"].append(p.id)
        payments["practice_id"].append(p.practice_id)
        payments["member_id"].append(p.member_id)
        payments["amount"].append(p.amount.minor)
        payments["currency"].append(p.amount.currency)
        payments["kind"].append(p.kind.value)
        payments["outcome"].append(p.outcome.value)
        payments["at"].append(p.at.astimezone(UTC))

    plans = _columns("id", "practice_id", "committed_at", "total", "currency")
    for plan in data.payment_plans:
        committed = next((c.at for c in plan.history if c.to in _COMMITS), None)
        plans["id"].append(plan.id)
        plans["practice_id"].append(plan.practice_id)
        plans["committed_at"].append(None if committed is None else committed.astimezone(UTC))
        plans["total"].append(plan.total.minor)
        plans["currency"].append(plan.total.currency)
    return Tables(members, changes, payments, plans, tuple(data.practices))


# -- one refresh's instants (the library's period arithmetic) ----------------------------


@dataclass(frozen=True)
class Window:
    """One practice's instants for a refresh, in UTC."""

    practice_id: str
    currency: str
    start: datetime
    end: datetime  # E = min(range end, now); before start when the range lies after now
    month_start: datetime  # the first midnight of the month holding E - 1 µs
    previous_start: datetime  # the comparison period, cut like the range
    previous_end: datetime

    @property
    def started(self) -> bool:
        """Period retention is undefined (0 / 0) for a range that starts after now."""
        return self.end >= self.start


@dataclass(frozen=True)
class Params:
    """One refresh: each practice's window and the series' bucket edges."""

    windows: tuple[Window, ...]
    edges: tuple[datetime, ...]  # the series' bucket edges: len(edges) - 1 buckets

    @property
    def buckets(self) -> int:
        return len(self.edges) - 1

    @property
    def currencies(self) -> list[str]:
        return sorted({w.currency for w in self.windows})


def params(practices: Sequence[Practice], case: Any) -> Params:
    """Each practice's window, and the series' buckets: units of the first practice's
    range (chosen before the cut) tiling [earliest start, latest E) in its zone."""
    windows = []
    ranges = []
    for practice in practices:
        r = case.resolve(practice)
        end = min(r.end, case.now)
        last_day = (end - _ONE_US).astimezone(zone(r.timezone)).date()
        month_start = local_midnight(last_day.replace(day=1), r.timezone)
        previous = r.comparison(case.now)
        instants = (r.start, end, month_start, previous.start, previous.end)
        windows.append(
            Window(practice.id, practice.currency, *(t.astimezone(UTC) for t in instants))
        )
        ranges.append(r)
    start = min(w.start for w in windows)
    end = max(start, *(w.end for w in windows))
    span = DateRange(start, end, ranges[0].timezone)
    edges = span.bucket_edges(ranges[0].default_bucket_unit())
    return Params(tuple(windows), tuple(t.astimezone(UTC) for t in edges))


# -- the figures, as plain ints ----------------------------------------------------------

Figures = dict[str, Any]


def _assemble(
    active: Sequence[int],
    ever: Sequence[int],
    kept: Sequence[int],
    active_start: Sequence[int],
    revenue: dict[str, list[int]],
    new: Sequence[int],
    committed: dict[str, list[int]],
    feed: Sequence[str],
) -> Figures:
    """``active``: at E, this month's start, the comparison end; ``ever``: first activated
    before E, before the comparison end; ``kept`` and ``active_start``: period retention's
    parts for the range and the comparison period; revenue: value, previous, month to date."""
    return {
        "members (value, previous, month change)": (
            int(active[0]),
            int(active[2]),
            int(active[0] - active[1]),
        ),
        "retention parts (range, comparison)": (
            (int(active[0]), int(ever[0])),
            (int(active[2]), int(ever[1])),
        ),
        "period retention parts (range, comparison)": (
            (int(kept[0]), int(active_start[0])),
            (int(kept[1]), int(active_start[1])),
        ),
        "revenue minor (value, previous, month to date)": {
            c: tuple(int(x) for x in v) for c, v in revenue.items()
        },
        "new members per bucket": tuple(int(x) for x in new),
        "committed minor per bucket": {c: tuple(int(x) for x in v) for c, v in committed.items()},
        "latest new members": tuple(feed),
    }


def library_figures(board: Dashboard) -> Figures:
    """The same figures read off a computed dashboard."""
    return {
        "members (value, previous, month change)": (
            board.members.value,
            board.members.previous,
            board.members.this_month_delta,
        ),
        "retention parts (range, comparison)": tuple(
            (r.numerator, r.denominator) for r in board.retention_parts
        ),
        "period retention parts (range, comparison)": tuple(
            (r.numerator, r.denominator) for r in board.period_retention_parts
        ),
        "revenue minor (value, previous, month to date)": {
            c: (k.value.minor, k.previous.minor, k.this_month_delta.minor)
            for c, k in board.revenue.items()
        },
        "new members per bucket": tuple(p.value for p in board.new_members),
        "committed minor per bucket": {
            c: tuple(p.value.minor for p in s) for c, s in board.committed_payments.items()
        },
        "latest new members": tuple(m.id for m in board.latest_new_members),
    }


def differences(expected: Figures, got: Figures) -> list[str]:
    out = []
    for key in expected.keys() | got.keys():
        a, b = expected.get(key), got.get(key)
        if a != b:
            out.append(f"{key}: library={_short(a)} peer={_short(b)}")
    return sorted(out)


def _short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _micros(t: datetime) -> int:
    """An instant as microseconds since the epoch (UTC)."""
    return (t - _EPOCH) // _ONE_US


#: The Window fields the peers read, in the order of their short names s, e, ms, cs, ce.
_WINDOW_FIELDS = ("start", "end", "month_start", "previous_start", "previous_end")
_INSTANTS = ("s", "e", "ms", "cs", "ce")


def _zeros(p: Params) -> tuple[dict[str, list[int]], list[int], dict[str, list[int]]]:
    """Empty revenue (value, previous, month to date), New Members and Committed series."""
    revenue = {c: [0, 0, 0] for c in p.currencies}
    committed = {c: [0] * p.buckets for c in p.currencies}
    return revenue, [0] * p.buckets, committed


# -- the peers ---------------------------------------------------------------------------
#
# Every peer derives, at load, each member's Active spans from the changes table: change
# i of a member holds from its own instant to the next change's. The state at a boundary
# B is the status after every change stamped strictly before B, so a member is Active at
# B when one of its Active spans has since < B <= until (a span of length 0, two changes
# at one instant, holds at no boundary).


class Peer:
    """A tool that loads the exported tables and computes one refresh's figures."""

    name: str
    modules: tuple[str, ...]
    extra: str  # what to install when a module is missing

    def missing(self) -> list[str]:
        return [m for m in self.modules if importlib.util.find_spec(m) is None]

    def load(self, tables: Tables) -> None:
        raise NotImplementedError

    def figures(self, case: Any) -> Figures:
        raise NotImplementedError

    def failed(self, practice_id: str) -> Any:
        """``practice_id``'s members whose status is Failed, by start date, ties by id: their
        ids in the tool's own form (``shared.as_ids`` makes them a list)."""
        raise NotImplementedError


class PandasPeer(Peer):
    name = "pandas"
    modules = ("pandas",)
    extra = "the `pandas` extra: pip install 'smilepass-core[pandas]'"

    def load(self, tables: Tables) -> None:
        pd = importlib.import_module("pandas")
        self.pd = pd
        ts, cat = "datetime64[us, UTC]", "category"
        self.practices = tables.practices
        self.members = pd.DataFrame(tables.members).astype(
            {
                "practice_id": cat,
                "plan_id": cat,
                "first_activated_at": ts,
                "start_date": "datetime64[s]",
                "status": cat,
            }
        )
        changes = pd.DataFrame(tables.changes).astype(
            {"member_id": cat, "practice_id": cat, "at": ts, "from_status": cat, "to_status": cat}
        )
        changes = changes.sort_values(["member_id", "seq"])
        until = changes.groupby("member_id", observed=True, sort=False)["at"].shift(-1)
        spans = changes.assign(since=changes["at"], until=until.fillna(FAR))
        self.active = spans.loc[
            spans["to_status"] == "active", ["member_id", "practice_id", "since", "until"]
        ].reset_index(drop=True)
        self.payments = pd.DataFrame(tables.payments).astype(
            {"practice_id": cat, "currency": cat, "kind": cat, "outcome": cat, "at": ts}
        )
        self.plans = pd.DataFrame(tables.payment_plans).astype(
            {"practice_id": cat, "currency": cat, "committed_at": ts}
        )

    @staticmethod
    def _per_bucket(at: Any, edges: Any, n: int, values: Any = None) -> list[int]:
        """How many of ``at`` fall in each bucket (all are in the span); with ``values`` (a
        Series beside ``at``), their sum per bucket."""
        k = edges.searchsorted(at, side="right") - 1  # bucket positions, aligned with at
        sums = at.groupby(k).size() if values is None else values.groupby(k).sum()
        return sums.reindex(range(n), fill_value=0).tolist()

    def failed(self, practice_id: str) -> Any:
        m = self.members
        rows = m[(m["practice_id"] == practice_id) & (m["status"] == "failed")]
        return rows.sort_values(["start_date", "id"])["id"]

    def figures(self, case: Any) -> Figures:
        return self._each(case) if len(self.practices) == 1 else self._joined(case)

    def _joined(self, case: Any) -> Figures:
        """The figures of every practice at once, the windows merged into each table."""
        pd = self.pd
        p = params(self.practices, case)
        revenue, new, committed = _zeros(p)
        edges = pd.DatetimeIndex(p.edges)
        # The practices' windows as a frame, merged into every table: one pass for all.
        windows = pd.DataFrame(
            {
                "practice_id": [w.practice_id for w in p.windows],
                "started": [w.started for w in p.windows],
                **{
                    name: pd.DatetimeIndex([getattr(w, field) for w in p.windows])
                    for name, field in zip(_INSTANTS, _WINDOW_FIELDS, strict=True)
                },
            }
        )

        def merged(frame: Any) -> Any:
            practices = frame["practice_id"].astype(str)
            return frame.assign(practice_id=practices).merge(windows, on="practice_id")

        spans = merged(self.active)
        since, until = spans["since"], spans["until"]
        # Per member: Active at each of its practice's instants? (its spans never overlap)
        state = (
            pd.DataFrame({b: (since < spans[b]) & (until >= spans[b]) for b in _INSTANTS})
            .groupby(spans["member_id"], observed=True)
            .any()
        )
        started = spans.groupby("member_id", observed=True)["started"].first()
        state = state[state.any(axis=1)]
        started = started.reindex(state.index)
        in_range = started & state["s"]
        a_e, a_ms, a_ce = (int(state[b].sum()) for b in ("e", "ms", "ce"))
        kept = (int((in_range & state["e"]).sum()), int((state["cs"] & state["ce"]).sum()))
        active_start = (int(in_range.sum()), int(state["cs"].sum()))

        members = merged(self.members)
        first = members["first_activated_at"]
        ever = (int((first < members["e"]).sum()), int((first < members["ce"]).sum()))
        joined = first[(first >= members["s"]) & (first < members["e"])]
        new = self._per_bucket(joined, edges, p.buckets)
        before = members.loc[first < members["e"], ["id", "first_activated_at"]]
        latest = before.sort_values(["first_activated_at", "id"], ascending=[False, True])

        pay = merged(self.payments[self.payments["outcome"] == "succeeded"])
        signed = pay["amount"].where(pay["kind"] == "charge", -pay["amount"])
        t = pay["at"]
        sums = pd.DataFrame(
            {
                "value": signed.where((t >= pay["s"]) & (t < pay["e"]), 0),
                "previous": signed.where((t >= pay["cs"]) & (t < pay["ce"]), 0),
                "month": signed.where((t >= pay["ms"]) & (t < pay["e"]), 0),
            }
        ).groupby(pay["currency"], observed=True)
        for currency, row in sums.sum().iterrows():
            revenue[str(currency)] = [int(x) for x in row]

        plans = merged(self.plans)
        c = plans["committed_at"]
        plans = plans[(c >= plans["s"]) & (c < plans["e"])]
        for currency, group in plans.groupby("currency", observed=True):
            sums_k = self._per_bucket(group["committed_at"], edges, p.buckets, group["total"])
            committed[str(currency)] = sums_k

        feed_ids = latest["id"].head(LATEST).tolist()
        return _assemble(
            (a_e, a_ms, a_ce), ever, kept, active_start, revenue, new, committed, feed_ids
        )

    def _each(self, case: Any) -> Figures:
        """The figures practice by practice, each table filtered to it."""
        pd = self.pd
        p = params(self.practices, case)
        revenue, new, committed = _zeros(p)
        active, ever, kept, active_start = [0, 0, 0], [0, 0], [0, 0], [0, 0]
        edges = pd.DatetimeIndex(p.edges)
        feed = []
        for w in p.windows:
            spans = self.active[self.active["practice_id"] == w.practice_id]
            since, until, ids = spans["since"], spans["until"], spans["member_id"]

            def at(b: datetime, since: Any = since, until: Any = until, ids: Any = ids) -> Any:
                return ids[(since < b) & (until >= b)]  # the members Active at b

            at_end, at_previous_end = at(w.end), at(w.previous_end)
            at_previous_start = at(w.previous_start)
            active[0] += len(at_end)
            active[1] += len(at(w.month_start))
            active[2] += len(at_previous_end)
            if w.started:
                at_start = at(w.start)
                active_start[0] += len(at_start)
                kept[0] += int(at_start.isin(at_end).sum())
            active_start[1] += len(at_previous_start)
            kept[1] += int(at_previous_start.isin(at_previous_end).sum())

            members = self.members[self.members["practice_id"] == w.practice_id]
            first = members["first_activated_at"]
            ever[0] += int((first < w.end).sum())
            ever[1] += int((first < w.previous_end).sum())
            joined = first[(first >= w.start) & (first < w.end)]
            counts = self._per_bucket(joined, edges, p.buckets)
            new = [a + b for a, b in zip(new, counts, strict=True)]
            newest = first[first < w.end].nlargest(LATEST, keep="all")  # ties kept
            feed.append(members.loc[newest.index, ["id", "first_activated_at"]])

            payments = self.payments
            pay = payments.loc[
                (payments["practice_id"] == w.practice_id) & (payments["outcome"] == "succeeded"),
                ["amount", "kind", "currency", "at"],
            ]
            signed = pay["amount"].where(pay["kind"] == "charge", -pay["amount"])
            t = pay["at"]
            sums = pd.DataFrame(
                {
                    "value": signed.where((t >= w.start) & (t < w.end), 0),
                    "previous": signed.where((t >= w.previous_start) & (t < w.previous_end), 0),
                    "month": signed.where((t >= w.month_start) & (t < w.end), 0),
                }
            ).groupby(pay["currency"], observed=True)
            for currency, row in sums.sum().iterrows():
                revenue[str(currency)] = [
                    a + int(b) for a, b in zip(revenue[str(currency)], row, strict=True)
                ]

            plans = self.plans[self.plans["practice_id"] == w.practice_id]
            c = plans["committed_at"]
            plans = plans[(c >= w.start) & (c < w.end)]
            for currency, group in plans.groupby("currency", observed=True):
                sums_k = self._per_bucket(group["committed_at"], edges, p.buckets, group["total"])
                committed[str(currency)] = [
                    a + b for a, b in zip(committed[str(currency)], sums_k, strict=True)
                ]

        latest = pd.concat(feed).sort_values(["first_activated_at", "id"], ascending=[False, True])
        feed_ids = latest["id"].head(LATEST).tolist()
        return _assemble(active, ever, kept, active_start, revenue, new, committed, feed_ids)


class PolarsPeer(Peer):
    name = "polars"
    modules = ("polars",)
    extra = "the `polars` extra: pip install 'smilepass-core[polars]'"

    def load(self, tables: Tables) -> None:
        pl = importlib.import_module("polars")
        self.pl = pl
        ts, text = pl.Datetime("us", "UTC"), pl.String
        self.practices = tables.practices
        self.members = pl.DataFrame(
            tables.members,
            schema={
                "id": text,
                "practice_id": text,
                "plan_id": text,
                "first_activated_at": ts,
                "start_date": pl.Date,
                "status": text,
            },
        )
        changes = pl.DataFrame(
            tables.changes,
            schema={
                "member_id": text,
                "practice_id": text,
                "at": ts,
                "from_status": text,
                "to_status": text,
                "seq": pl.Int64,
            },
        ).sort("member_id", "seq")
        self.active = (
            changes.with_columns(until=pl.col("at").shift(-1).over("member_id").fill_null(FAR))
            .filter(pl.col("to_status") == "active")
            .select("member_id", "practice_id", pl.col("at").alias("since"), "until")
        )
        self.payments = pl.DataFrame(
            tables.payments,
            schema={
                "id": text,
                "practice_id": text,
                "member_id": text,
                "amount": pl.Int64,
                "currency": text,
                "kind": text,
                "outcome": text,
                "at": ts,
            },
        )
        self.plans = pl.DataFrame(
            tables.payment_plans,
            schema={
                "id": text,
                "practice_id": text,
                "committed_at": ts,
                "total": pl.Int64,
                "currency": text,
            },
        )
        self.ts = ts

    def failed(self, practice_id: str) -> Any:
        pl = self.pl
        mine = (pl.col("practice_id") == practice_id) & (pl.col("status") == "failed")
        return self.members.filter(mine).sort("start_date", "id")["id"]

    def figures(self, case: Any) -> Figures:
        return self._each(case) if len(self.practices) == 1 else self._joined(case)

    def _joined(self, case: Any) -> Figures:
        """The figures of every practice at once, the windows joined to each table."""
        pl = self.pl
        p = params(self.practices, case)
        revenue, new, committed = _zeros(p)
        instants = _INSTANTS
        # The practices' windows as a table, joined to every table: one query for all.
        windows = pl.DataFrame(
            {
                "practice_id": [w.practice_id for w in p.windows],
                "started": [w.started for w in p.windows],
                **{
                    name: [_micros(getattr(w, field)) for w in p.windows]
                    for name, field in zip(instants, _WINDOW_FIELDS, strict=True)
                },
            }
        ).with_columns(pl.col(*instants).cast(self.ts))
        edges = pl.lit(pl.Series("edges", [_micros(t) for t in p.edges]).cast(self.ts))

        def within(column: str, a: str, b: str) -> Any:
            return (pl.col(column) >= pl.col(a)) & (pl.col(column) < pl.col(b))

        def at(b: str) -> Any:  # an Active span holds at the window's instant b
            return (pl.col("since") < pl.col(b)) & (pl.col("until") >= pl.col(b))

        state = (  # per member: Active at each of its practice's instants?
            self.active.join(windows, on="practice_id")
            .group_by("member_id")
            .agg(pl.col("started").first(), *(at(b).any().alias(b) for b in instants))
        )
        started = pl.col("started")
        a_e, a_ms, a_ce, kept_r, kept_c, start_r, start_c = state.select(
            pl.col("e").sum(),
            pl.col("ms").sum(),
            pl.col("ce").sum(),
            (started & pl.col("s") & pl.col("e")).sum().alias("kept"),
            (pl.col("cs") & pl.col("ce")).sum().alias("kept_previous"),
            (started & pl.col("s")).sum().alias("start"),
            pl.col("cs").sum(),
        ).row(0)

        members = self.members.join(windows, on="practice_id")
        first = pl.col("first_activated_at")
        ever = members.select(
            (first < pl.col("e")).sum().alias("end"),
            (first < pl.col("ce")).sum().alias("previous_end"),
        ).row(0)
        bucket = (edges.search_sorted(pl.col("at"), side="right") - 1).alias("k")
        joined = (
            members.filter(within("first_activated_at", "s", "e"))
            .select(first.alias("at"))
            .group_by(bucket)
            .len()
        )
        for k, n in joined.iter_rows():
            new[k] += n
        latest = (
            members.filter(first < pl.col("e"))
            .sort(["first_activated_at", "id"], descending=[True, False])
            .head(LATEST)["id"]
        )

        signed = pl.when(pl.col("kind") == "charge").then("amount").otherwise(-pl.col("amount"))
        sums = (
            self.payments.filter(pl.col("outcome") == "succeeded")
            .join(windows, on="practice_id")
            .group_by("currency")
            .agg(
                signed.filter(within("at", "s", "e")).sum(),
                signed.filter(within("at", "cs", "ce")).sum().alias("previous"),
                signed.filter(within("at", "ms", "e")).sum().alias("month"),
            )
        )
        for currency, *values in sums.iter_rows():
            revenue[currency] = list(values)
        plans = (
            self.plans.join(windows, on="practice_id")
            .filter(within("committed_at", "s", "e"))
            .select("currency", "total", pl.col("committed_at").alias("at"))
            .group_by("currency", bucket)
            .agg(pl.col("total").sum())
        )
        for currency, k, total in plans.iter_rows():
            committed[currency][k] += total
        return _assemble(
            (a_e, a_ms, a_ce),
            ever,
            (kept_r, kept_c),
            (start_r, start_c),
            revenue,
            new,
            committed,
            latest.to_list(),
        )

    def _each(self, case: Any) -> Figures:
        """The figures practice by practice, each table filtered to it."""
        pl = self.pl
        p = params(self.practices, case)
        revenue, new, committed = _zeros(p)
        active, ever, kept, active_start = [0, 0, 0], [0, 0], [0, 0], [0, 0]
        edges = pl.lit(pl.Series("edges", [_micros(t) for t in p.edges]).cast(self.ts))
        feed = []

        def within(column: str, a: Any, b: Any) -> Any:
            return (pl.col(column) >= a) & (pl.col(column) < b)

        def at(b: Any) -> Any:  # an Active span holds at b
            return (pl.col("since") < b) & (pl.col("until") >= b)

        def kept_from(a: Any, b: Any) -> Any:  # Active at a and at b
            ids = pl.col("member_id")
            return ids.filter(at(a)).is_in(ids.filter(at(b)).implode()).sum()

        signed = pl.when(pl.col("kind") == "charge").then("amount").otherwise(-pl.col("amount"))
        bucket = (edges.search_sorted(pl.col("at"), side="right") - 1).alias("k")
        for w in p.windows:
            mine = pl.col("practice_id") == w.practice_id
            # The window's instants as literals, built once (from an aware datetime, a
            # polars literal takes about 0.2 ms to build; from microseconds, 5 µs).
            s, e, ms, cs, ce = (
                pl.lit(_micros(t)).cast(self.ts)
                for t in (w.start, w.end, w.month_start, w.previous_start, w.previous_end)
            )
            counts = (
                self.active.filter(mine)
                .select(
                    end=at(e).sum(),
                    month=at(ms).sum(),
                    previous_end=at(ce).sum(),
                    start=at(s).sum(),
                    previous_start=at(cs).sum(),
                    kept=kept_from(s, e),
                    kept_previous=kept_from(cs, ce),
                )
                .row(0, named=True)
            )
            active[0] += counts["end"]
            active[1] += counts["month"]
            active[2] += counts["previous_end"]
            if w.started:
                active_start[0] += counts["start"]
                kept[0] += counts["kept"]
            active_start[1] += counts["previous_start"]
            kept[1] += counts["kept_previous"]

            members = self.members.filter(mine)
            first = pl.col("first_activated_at")
            e0, e1 = members.select(end=(first < e).sum(), previous_end=(first < ce).sum()).row(0)
            ever[0] += e0
            ever[1] += e1
            joined = (
                members.filter(within("first_activated_at", s, e))
                .select(pl.col("first_activated_at").alias("at"))
                .group_by(bucket)
                .len()
            )
            for k, n in joined.iter_rows():
                new[k] += n
            feed.append(members.filter(first < e).select("id", "first_activated_at"))

            sums = (
                self.payments.filter(mine & (pl.col("outcome") == "succeeded"))
                .group_by("currency")
                .agg(
                    signed.filter(within("at", s, e)).sum(),
                    signed.filter(within("at", cs, ce)).sum().alias("previous"),
                    signed.filter(within("at", ms, e)).sum().alias("month"),
                )
            )
            for currency, *values in sums.iter_rows():
                revenue[currency] = [a + b for a, b in zip(revenue[currency], values, strict=True)]

            plans = (
                self.plans.filter(mine & within("committed_at", s, e))
                .select("currency", "total", pl.col("committed_at").alias("at"))
                .group_by("currency", bucket)
                .agg(pl.col("total").sum())
            )
            for currency, k, total in plans.iter_rows():
                committed[currency][k] += total

        latest = (
            pl.concat(feed)
            .sort(["first_activated_at", "id"], descending=[True, False])
            .head(LATEST)["id"]
        )
        return _assemble(
            active, ever, kept, active_start, revenue, new, committed, latest.to_list()
        )


_PRACTICES = """p AS (
    SELECT unnest(CAST($practice AS VARCHAR[])) AS practice_id,
           unnest(CAST($start AS TIMESTAMPTZ[])) AS s,
           unnest(CAST($end AS TIMESTAMPTZ[])) AS e,
           unnest(CAST($month_start AS TIMESTAMPTZ[])) AS ms,
           unnest(CAST($previous_start AS TIMESTAMPTZ[])) AS cs,
           unnest(CAST($previous_end AS TIMESTAMPTZ[])) AS ce
)"""
_BUCKETS = """b AS (
    SELECT unnest(CAST($k AS BIGINT[])) AS k,
           unnest(CAST($lo AS TIMESTAMPTZ[])) AS lo,
           unnest(CAST($hi AS TIMESTAMPTZ[])) AS hi
)"""

_COUNTS_SQL = f"""
WITH {_PRACTICES},
state AS (  -- per member: Active at each boundary?
    SELECT a.member_id, p.s <= p.e AS started,
           bool_or(a.since < p.e AND p.e <= a.until) AS at_e,
           bool_or(a.since < p.ms AND p.ms <= a.until) AS at_ms,
           bool_or(a.since < p.s AND p.s <= a.until) AS at_s,
           bool_or(a.since < p.cs AND p.cs <= a.until) AS at_cs,
           bool_or(a.since < p.ce AND p.ce <= a.until) AS at_ce
    FROM active_spans AS a JOIN p USING (practice_id)
    GROUP BY a.member_id, started
),
ever AS (
    SELECT count(*) FILTER (WHERE m.first_activated_at < p.e) AS before_e,
           count(*) FILTER (WHERE m.first_activated_at < p.ce) AS before_ce
    FROM members AS m JOIN p USING (practice_id)
)
SELECT count(*) FILTER (WHERE at_e),
       count(*) FILTER (WHERE at_ms),
       count(*) FILTER (WHERE at_ce),
       count(*) FILTER (WHERE started AND at_s AND at_e),
       count(*) FILTER (WHERE at_cs AND at_ce),
       count(*) FILTER (WHERE started AND at_s),
       count(*) FILTER (WHERE at_cs),
       any_value(ever.before_e),
       any_value(ever.before_ce)
FROM ever LEFT JOIN state ON true
"""

_REVENUE_SQL = f"""
WITH {_PRACTICES},
collected AS (
    SELECT pay.currency, pay."at" AS paid, p.s, p.e, p.ms, p.cs, p.ce,
           CASE pay.kind WHEN 'charge' THEN pay.amount WHEN 'refund' THEN -pay.amount END
               AS signed
    FROM payments AS pay JOIN p USING (practice_id)
    WHERE pay.outcome = 'succeeded'
)
SELECT currency,
       coalesce(sum(signed) FILTER (WHERE paid >= s AND paid < e), 0),
       coalesce(sum(signed) FILTER (WHERE paid >= cs AND paid < ce), 0),
       coalesce(sum(signed) FILTER (WHERE paid >= ms AND paid < e), 0)
FROM collected
GROUP BY currency
"""

_NEW_SQL = f"""
WITH {_PRACTICES}, {_BUCKETS}
SELECT b.k, count(*)
FROM members AS m JOIN p USING (practice_id)
JOIN b ON m.first_activated_at >= b.lo AND m.first_activated_at < b.hi
WHERE m.first_activated_at >= p.s AND m.first_activated_at < p.e
GROUP BY b.k
"""

_COMMITTED_SQL = f"""
WITH {_PRACTICES}, {_BUCKETS}
SELECT pp.currency, b.k, sum(pp.total)
FROM payment_plans AS pp JOIN p USING (practice_id)
JOIN b ON pp.committed_at >= b.lo AND pp.committed_at < b.hi
WHERE pp.committed_at >= p.s AND pp.committed_at < p.e
GROUP BY pp.currency, b.k
"""

_FEED_SQL = f"""
WITH {_PRACTICES}
SELECT m.id
FROM members AS m JOIN p USING (practice_id)
WHERE m.first_activated_at < p.e
ORDER BY m.first_activated_at DESC, m.id
LIMIT {LATEST}
"""

_SPANS_SQL = """
CREATE TABLE active_spans AS
SELECT member_id, practice_id, since, until
FROM (
    SELECT member_id, practice_id, to_status, "at" AS since,
           coalesce(lead("at") OVER (PARTITION BY member_id ORDER BY seq),
                    'infinity'::TIMESTAMPTZ) AS until
    FROM changes
)
WHERE to_status = 'active'
"""


_FAILED_SQL = """
SELECT id FROM members WHERE practice_id = ? AND status = 'failed' ORDER BY start_date, id
"""


class DuckDBPeer(Peer):
    name = "duckdb"
    modules = ("duckdb", "pyarrow")
    extra = "duckdb and the `arrow` extra: pip install duckdb 'smilepass-core[arrow]'"

    def __init__(self, threads: int) -> None:
        self.threads = threads

    def load(self, tables: Tables) -> None:
        duckdb = importlib.import_module("duckdb")
        pa = importlib.import_module("pyarrow")
        ts, text = pa.timestamp("us", tz="UTC"), pa.string()
        self.practices = tables.practices
        con = duckdb.connect(":memory:", config={"threads": self.threads})
        schemas = {
            "members": (
                tables.members,
                {
                    "id": text,
                    "practice_id": text,
                    "plan_id": text,
                    "first_activated_at": ts,
                    "start_date": pa.date32(),
                    "status": text,
                },
            ),
            "changes": (
                tables.changes,
                {
                    "member_id": text,
                    "practice_id": text,
                    "at": ts,
                    "from_status": text,
                    "to_status": text,
                    "seq": pa.int64(),
                },
            ),
            "payments": (
                tables.payments,
                {
                    "id": text,
                    "practice_id": text,
                    "member_id": text,
                    "amount": pa.int64(),
                    "currency": text,
                    "kind": text,
                    "outcome": text,
                    "at": ts,
                },
            ),
            "payment_plans": (
                tables.payment_plans,
                {
                    "id": text,
                    "practice_id": text,
                    "committed_at": ts,
                    "total": pa.int64(),
                    "currency": text,
                },
            ),
        }
        for name, (columns, schema) in schemas.items():
            arrow = pa.table(columns, schema=pa.schema(list(schema.items())))
            con.register("source", arrow)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM source")
            con.unregister("source")
        con.execute(_SPANS_SQL)
        self.con = con

    def failed(self, practice_id: str) -> Any:
        return self.con.sql(_FAILED_SQL, params=[practice_id]).to_arrow_table()

    def figures(self, case: Any) -> Figures:
        p = params(self.practices, case)
        revenue, new, committed = _zeros(p)
        windows = {
            "practice": [w.practice_id for w in p.windows],
            "start": [w.start for w in p.windows],
            "end": [w.end for w in p.windows],
            "month_start": [w.month_start for w in p.windows],
            "previous_start": [w.previous_start for w in p.windows],
            "previous_end": [w.previous_end for w in p.windows],
        }
        buckets = {"k": list(range(p.buckets)), "lo": list(p.edges[:-1]), "hi": list(p.edges[1:])}
        con = self.con
        row = con.execute(_COUNTS_SQL, windows).fetchone()
        assert row is not None
        a_e, a_ms, a_ce, kept_r, kept_c, start_r, start_c, ever_e, ever_ce = row
        for currency, *values in con.execute(_REVENUE_SQL, windows).fetchall():
            revenue[currency] = [a + b for a, b in zip(revenue[currency], values, strict=True)]
        for k, n in con.execute(_NEW_SQL, windows | buckets).fetchall():
            new[k] += n
        for currency, k, total in con.execute(_COMMITTED_SQL, windows | buckets).fetchall():
            committed[currency][k] += total
        feed = [m for (m,) in con.execute(_FEED_SQL, windows).fetchall()]
        return _assemble(
            (a_e, a_ms, a_ce),
            (ever_e, ever_ce),
            (kept_r, kept_c),
            (start_r, start_c),
            revenue,
            new,
            committed,
            feed,
        )


# -- measuring ---------------------------------------------------------------------------


def _markdown(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    rule = ["--:" if i in right else "---" for i in range(len(headers))]
    return "\n".join("| " + " | ".join(r) + " |" for r in (headers, rule, *rows))


def _version(module: str) -> str:
    return str(getattr(importlib.import_module(module), "__version__", "?"))


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value


_PEERS = ("pandas", "polars", "duckdb")


def _peers(names: Sequence[str], threads: int) -> list[Peer]:
    """New, unloaded peers of ``names``."""
    kinds: dict[str, Callable[[], Peer]] = {
        "pandas": PandasPeer,
        "polars": PolarsPeer,
        "duckdb": lambda: DuckDBPeer(threads),
    }
    return [kinds[name]() for name in names]


def _each_run(args: argparse.Namespace) -> int:
    """Every size and practice count asked for, each in a fresh process (so each has the
    memory to itself)."""
    status = 0
    for members in args.members:
        for practices in args.practices:
            command = [
                sys.executable,
                os.path.abspath(__file__),
                *("--members", str(members), "--practices", str(practices)),
                *("--rounds", str(args.rounds), "--seed", str(args.seed)),
                *("--threads", str(args.threads), "--one-peer-above", str(args.one_peer_above)),
                *("--peers", *args.peers),
            ]
            print(f"\n$ peers.py {' '.join(command[2:])}", flush=True)
            status |= subprocess.run(command, check=False).returncode
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=_positive, nargs="+", default=[10_000])
    parser.add_argument("--practices", type=_positive, nargs="+", default=[1])
    parser.add_argument(
        "--one-peer-above",
        type=_positive,
        default=500_000,
        help="above this many members, load, check and time one peer at a time (each "
        "dropped before the next is loaded)",
    )
    parser.add_argument("--rounds", type=_positive, default=5, help="interleaved timing rounds")
    parser.add_argument("--seed", type=int, default=bench.DEFAULT_SEED)
    parser.add_argument("--threads", type=_positive, default=1, help="polars and DuckDB threads")
    parser.add_argument(
        "--peers",
        nargs="+",
        choices=_PEERS,
        default=_PEERS,
        help="the peers to run (default all; at 1,000,000 members one at a time fits 24 GiB)",
    )
    args = parser.parse_args(argv)
    if len(args.members) > 1 or len(args.practices) > 1:
        return _each_run(args)
    args.members, args.practices = args.members[0], args.practices[0]
    os.environ["POLARS_MAX_THREADS"] = str(args.threads)  # read when polars is imported

    build_s, built_mib, data = grown(
        lambda: bench.build_dataset(args.members, args.seed, args.practices)
    )
    load_s, store_mib, store = grown(lambda: InMemoryStore.from_objects(data.objects()))
    print(
        f"peers benchmark: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}, seed {args.seed}, "
        f"{len(data.practices)} practice(s), {args.rounds} rounds, {args.threads} thread(s)"
    )
    print(
        f"build objects {build_s:.2f} s (+{built_mib:,.0f} MiB resident); "
        f"InMemoryStore.from_objects {load_s:.2f} s (+{store_mib:,.0f} MiB)"
    )
    names = [name for name in _PEERS if name in args.peers]
    alone = args.members > args.one_peer_above
    status = 0
    for group in [[name] for name in names] if alone else [names]:
        if alone:
            print(f"\n--- {group[0]} (one peer at a time above {args.one_peer_above:,} members)")
        # Fresh peers: their frames go when the comparison returns.
        status |= _compare(args, data, store, _peers(group, args.threads), (load_s, store_mib))
    print(f"\nPeak resident memory of this process: {peak_mib():,.0f} MiB.")
    return status


def _loaded(data: Any, peers: list[Peer]) -> dict[Peer, tuple[float, float]]:
    """Each peer whose packages are there, loaded from the exported tables (dropped when
    they are): the seconds and the MiB its load took."""
    export_s, tables = timed(lambda: export_tables(data))
    print(f"tables: {tables.sizes()} (export {export_s:.2f} s)")
    loaded = {}
    for peer in peers:
        missing = peer.missing()
        if missing:
            print(f"note: skipping {peer.name}: {', '.join(missing)} not installed ({peer.extra})")
            continue
        load_s, mib, _ = grown(lambda peer=peer: peer.load(tables))
        modules = ", ".join(f"{m} {_version(m)}" for m in peer.modules)
        print(f"{peer.name} ({modules}) load {load_s:.2f} s")
        loaded[peer] = (load_s, mib)
    return loaded


def _compare(
    args: argparse.Namespace,
    data: Any,
    store: InMemoryStore,
    peers: list[Peer],
    library_load: tuple[float, float],
) -> int:
    """Load ``peers``, check every figure, list and report of theirs against the
    library's, time them, and print the tables; 1 when one differs."""
    ids = [p.id for p in data.practices]

    def library(case: Any) -> Dashboard:
        return dashboard(store, practices=ids, date_range=case.spec(), now=case.now)

    loads: dict[str, float] = {"smilepass_core": library_load[0]}
    held: dict[str, float] = {"smilepass_core": library_load[1]}  # MiB each load added
    tools: dict[str, Callable[[Any], Any]] = {"smilepass_core": library}
    for peer, (load_s, mib) in _loaded(data, peers).items():
        loads[peer.name], held[peer.name], tools[peer.name] = load_s, mib, peer.figures

    # The check, before any timing: every peer's figures equal the library's.
    failures = []
    for k, case in enumerate(bench.CASES):
        expected = library_figures(library(case))
        for name, tool in tools.items():
            if name == "smilepass_core":
                continue
            for diff in differences(expected, tool(case)):
                failures.append(f"[{k + 1}] {case.label} {name}: {diff}")
    checked = [n for n in tools if n != "smilepass_core"]
    if failures:
        print(f"\nFAILED: {len(failures)} figure(s) differ from the library's:")
        for line in failures:
            print("  " + line)
        return 1
    print(
        f"\nOK: every figure of {', '.join(checked) or 'no peer'} equals the library's "
        f"on all {len(bench.CASES)} ranges."
    )

    # The Failed members of the first practice, sorted by start date: the same ids first.
    first = ids[0]

    def library_failed(practice_id: str) -> list[Any]:
        query = MemberQuery(practices={practice_id}, statuses={MembershipStatus.FAILED})
        return store.members.find(query, order=Order(["start_date"]))

    lists: dict[str, Callable[[str], Any]] = {"smilepass_core": library_failed}
    lists |= {peer.name: peer.failed for peer in peers if peer.name in tools}
    wanted = as_ids(library_failed(first))
    wrong = [name for name, fn in lists.items() if as_ids(fn(first)) != wanted]
    if wrong:
        print(f"\nFAILED: the Failed members of {first} differ for {', '.join(wrong)}")
        return 1
    print(f"OK: every tool lists the same {len(wanted):,} Failed members of {first}, in order.")

    # K rounds; each runs every tool once over the 20 ranges, in a rotated order.
    names = list(tools)
    samples: dict[str, list[list[float]]] = {n: [[] for _ in bench.CASES] for n in names}
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            for k, case in enumerate(bench.CASES):
                t, _ = timed(lambda tool=tools[name], case=case: tool(case))
                samples[name][k].append(t * 1e3)
    per_case = {n: [statistics.median(s) for s in samples[n]] for n in names}
    base = statistics.median(per_case["smilepass_core"])

    print(
        f"\n{args.members:,} members, {len(data.payments):,} payments, "
        f"{len(ids)} practice(s); median of {args.rounds} rounds per range:\n"
    )
    rows = []
    for n in names:
        median = statistics.median(per_case[n])
        rows.append(
            [
                n,
                f"{loads[n]:.2f}",
                f"{held[n]:,.0f}",
                f"{median:.2f}",
                f"{p90(per_case[n]):.2f}",
                f"{sum(per_case[n]):.1f}",
                f"{median / base:.1f}x",
            ]
        )
    headers = [
        "tool",
        "load s",
        "load MiB",
        "refresh median ms",
        "refresh p90 ms",
        "20 ranges ms",
        "median / library",
    ]
    print(_markdown(headers, rows, right={1, 2, 3, 4, 5, 6}))
    print()
    case_rows = [
        [str(k + 1), case.label, *(f"{per_case[n][k]:.2f}" for n in names)]
        for k, case in enumerate(bench.CASES)
    ]
    headers = ["#", "range", *(f"{n} ms" for n in names)]
    print(_markdown(headers, case_rows, right={0, *range(2, 2 + len(names))}))
    failed_ms = interleaved(
        {name: lambda fn=fn: fn(first) for name, fn in lists.items()}, args.rounds * 5
    )
    print(f"\nThe Failed members of {first} sorted by start date, median of {args.rounds * 5}:\n")
    rows = median_rows(failed_ms, "smilepass_core")
    print(_markdown(["tool", "median ms", "p90 ms", "median / library"], rows, right={1, 2, 3}))
    # The Overdue list and the aged receivables of the first practice (peers_billing.py),
    # the dashboard's frames dropped first.
    names = [p.name for p in peers if p.name in tools]
    peers.clear()
    tools.clear()
    lists.clear()
    status = peers_billing.run(store, data, names, args.rounds, _markdown)
    print(
        "\nload: smilepass_core is InMemoryStore.from_objects; a peer's is its frames or "
        "tables from the exported columns, Active spans included (the export is not in "
        "it). load MiB: the resident memory the load added (the store's indexes: its "
        "objects are the ones built, counted apart). A refresh includes resolving the "
        "range and its buckets."
    )
    return status


if __name__ == "__main__":
    sys.exit(main())
