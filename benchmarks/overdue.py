"""Overdue benchmark: the Overdue filter of one practice, from the in-memory store's
outlooks, judged in full, and in SQLite.

Builds the same deterministic store as ``benchmarks/dashboard.py`` (N members, their
payment plans and ledger) and asks ``MemberQuery(overdue=True, as_of=...)`` of its
practice at the instant of the data's last event ("who is overdue now"), printing per
size:

- the first query of ``InMemoryStore`` (it reads every member's outlook) and the median
  of the next ten (answered from the outlooks);
- the same answer judged in full: ``domain.overdue.is_overdue`` for every member, with
  their plans and ledger (what the store did before outlooks);
- ``SqlStore`` on an in-memory SQLite database (it selects the candidates in SQL and
  judges them in full, every time).

The three answers are checked equal (the same member ids) before anything is printed as
a result; a difference is printed and the exit status is 1. This is a script, not a
timed test::

    python benchmarks/overdue.py [--members 10000 100000] [--seed N] [--skip-sql-above N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from shared import dashboard_module, timed

from smilepass_core import InMemoryStore, MemberQuery
from smilepass_core.domain.overdue import is_overdue
from smilepass_core.sql import SqlStore


def run(n_members: int, seed: int, skip_sql_above: int) -> int:
    bench = dashboard_module()
    data = bench.build_dataset(n_members, seed)
    practice = data.practices[0]
    # The instant of the data's last event: a practice asking "who is overdue now".
    now = max(
        [
            *(c.at for m in data.members for c in (*m.history, *m.plan_changes)),
            *(p.at for p in data.payments),
            *(c.at for p in data.payment_plans for c in p.history),
            *(a.at for p in data.payment_plans for a in p.attempts),
        ]
    )
    store = InMemoryStore.from_objects(data.objects())
    query = MemberQuery(practices={practice.id}, overdue=True, as_of=now)

    def ids(found: Any) -> list[str]:
        return sorted(m.id for m in found)

    first, indexed = timed(lambda: ids(store.members.find(query)))
    again = [timed(lambda: store.members.find(query))[0] for _ in range(10)]
    plans: defaultdict[str, list[Any]] = defaultdict(list)
    for plan in data.payment_plans:
        plans[plan.member_id or ""].append(plan)
    ledgers: defaultdict[str, list[Any]] = defaultdict(list)
    for payment in data.payments:
        ledgers[payment.member_id or ""].append(payment)
    catalogue = {p.id: p for p in data.plans}
    full, judged = timed(
        lambda: sorted(
            m.id
            for m in data.members
            if is_overdue(
                m,
                plans[m.id],
                at=now,
                timezone=practice.timezone,
                membership_plans=catalogue,
                payments=ledgers[m.id],
            )
        )
    )
    answers = {"outlooks": indexed, "in full": judged}
    sql_cell = "—"
    if n_members <= skip_sql_above:
        sql = SqlStore.connect("sqlite://")
        sql.load(data.objects())
        sql_time, answers["SQLite"] = timed(lambda: ids(sql.members.find(query)))
        sql_cell = f"{sql_time * 1000:.1f} ms"
    failures = 0
    for name, answer in answers.items():
        if answer != judged:
            failures += 1
            print(f"  DIFFERS {name}: {len(answer)} members against {len(judged)} judged in full")
    print(
        f"| {n_members:,} | {len(data.payments):,} | {len(judged):,} | {first * 1000:.1f} ms "
        f"| {statistics.median(again) * 1000:.2f} ms | {full * 1000:.1f} ms | {sql_cell} "
        f"| {'yes' if not failures else 'no'} |"
    )
    return failures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--skip-sql-above", type=int, default=20_000)
    args = parser.parse_args(argv)
    print(
        "| members | payments | overdue | first query (reads outlooks) | next queries (median) "
        "| judged in full | SQLite | equal |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    failures = sum(run(n, args.seed, args.skip_sql_above) for n in args.members)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
