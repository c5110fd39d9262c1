"""Subscription figures benchmark: what `subscription_metrics` adds to a dashboard refresh.

Builds the same deterministic store as ``benchmarks/dashboard.py`` (N members, 12 ledger
entries each) and, over its 20 date ranges, prints per size:

- the median / p90 time of a dashboard refresh and of ``subscription_metrics`` for the
  same practices, range and ``now``, and the ratio (the refresh time the subscription
  figures add);
- a naive peer written here from docs/metrics.md's definitions (each member's status
  just before a boundary by a scan of its history; no library function), checked equal
  to the library's MRR at both ends, movements, members at both ends and churned
  members on every range: a difference is printed and the exit status is 1.

This is a script, not a timed test::

    python benchmarks/subscriptions.py [--members 10000 100000] [--seed N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from datetime import datetime
from fractions import Fraction
from typing import Any

from shared import dashboard_module, timed

from smilepass_core import InMemoryStore, Member, MembershipPlan, dashboard
from smilepass_core.periods import DateRange
from smilepass_core.subscriptions import subscription_metrics

_COUNTING = ("active", "failed")
_FACTORS = {"weekly": Fraction(52, 12), "fortnightly": Fraction(26, 12), "monthly": 1}


def _monthly(plan: MembershipPlan) -> int:
    """The plan's price a month in minor units, rounded half up (annual: / 12)."""
    factor = _FACTORS.get(plan.billing_cycle.value, Fraction(1, 12))
    exact = plan.price.minor * Fraction(factor)
    return int(exact) + (1 if exact - int(exact) >= Fraction(1, 2) else 0)


def _status_before(member: Member, t: datetime) -> str | None:
    status = None
    for change in member.history:
        if change.at < t:
            status = change.to.value
    return status


def naive(
    members: Sequence[Member], plans: dict[str, MembershipPlan], span: DateRange
) -> dict[str, Any]:
    """The figures compared, from the definitions, by scanning every member."""
    start = end = new = churn = back = 0
    at_start = at_end = churned = 0
    for m in members:
        mrr = _monthly(plans[m.plan_id])  # the benchmark's members never change plan
        a = _status_before(m, span.start) in _COUNTING
        b = _status_before(m, span.end) in _COUNTING
        start += mrr * a
        end += mrr * b
        at_start += a
        at_end += b
        churned += a and not b
        seen = False
        for c in m.history:
            counts = c.to.value in _COUNTING
            was = c.from_ is not None and c.from_.value in _COUNTING
            if span.start <= c.at < span.end and counts != was:
                if not counts:
                    churn += mrr
                elif seen:
                    back += mrr
                else:
                    new += mrr
            seen = seen or counts
    return {
        "mrr": (start, end, new, churn, back),
        "members": (at_start, at_end, churned),
    }


def run(n_members: int, seed: int) -> int:
    bench = dashboard_module()
    data = bench.build_dataset(n_members, seed)
    store = InMemoryStore.from_objects(data.objects())
    ids = [p.id for p in data.practices]
    plans = {p.id: p for p in data.plans}
    board_s: list[float] = []
    subs_s: list[float] = []
    failures = 0
    for case in bench.CASES:
        spec = case.spec()
        t, _ = timed(
            lambda c=case, s=spec: dashboard(store, practices=ids, date_range=s, now=c.now)
        )
        board_s.append(t)
        t, m = timed(
            lambda c=case, s=spec: subscription_metrics(
                store, practices=ids, date_range=s, now=c.now
            )
        )
        subs_s.append(t)
        expected = naive(data.members, plans, m.range)
        got = {
            "mrr": tuple(
                x.minor
                for x in (m.mrr.start, m.mrr.end, m.mrr.new, m.mrr.churn, m.mrr.reactivation)
            ),
            "members": (m.members_start, m.members_end, m.churned_members),
        }
        if got != expected:
            failures += 1
            print(f"  DIFFERS {case.label}: library {got} naive {expected}")
    b, s = statistics.median(board_s), statistics.median(subs_s)
    p90 = sorted(subs_s)[int(0.9 * (len(subs_s) - 1))]
    print(
        f"| {n_members:,} | {len(data.payments):,} | {b * 1000:.1f} ms | {s * 1000:.1f} ms "
        f"| {p90 * 1000:.1f} ms | {s / b:.1f}x | {len(bench.CASES) - failures}/{len(bench.CASES)} |"
    )
    return failures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args(argv)
    print(
        "| members | payments | dashboard refresh (median) | subscription figures (median) "
        "| subscription p90 | subscription / dashboard | equal to naive |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    failures = sum(run(n, args.seed) for n in args.members)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
