"""Overdue benchmark: the Overdue filter of one practice, from the in-memory store's
outlooks, judged in full, and in SQLite.

Builds the same deterministic store as ``benchmarks/dashboard.py`` (N members, their
payment plans and ledger) and asks ``MemberQuery(overdue=True, as_of=...)`` of its
practice at the instant of the data's last event ("who is overdue now") and at the
dashboard's ``NOW``, before many members' last events ("who was overdue then": the store
reads each member as they stood then), printing per size and instant:

- the first query of ``InMemoryStore`` (it reads every member's outlook, or their outlook
  as they stood then) and the median of the next ten (answered from the outlooks);
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
from smilepass_core.domain.overdue import is_overdue, last_event
from smilepass_core.sql import SqlStore


def run(n_members: int, seed: int, skip_sql_above: int) -> int:
    bench = dashboard_module()
    data = bench.build_dataset(n_members, seed)
    practice = data.practices[0]
    # The instant of the data's last event: a practice asking "who is overdue now".
    last = max(
        [
            *(c.at for m in data.members for c in (*m.history, *m.plan_changes)),
            *(p.at for p in data.payments),
            *(c.at for p in data.payment_plans for c in p.history),
            *(a.at for p in data.payment_plans for a in p.attempts),
        ]
    )
    store = InMemoryStore.from_objects(data.objects())
    sql = None
    if n_members <= skip_sql_above:
        sql = SqlStore.connect("sqlite://")
        sql.load(data.objects())
    plans: defaultdict[str, list[Any]] = defaultdict(list)
    for plan in data.payment_plans:
        plans[plan.member_id or ""].append(plan)
    ledgers: defaultdict[str, list[Any]] = defaultdict(list)
    for payment in data.payments:
        ledgers[payment.member_id or ""].append(payment)
    catalogue = {p.id: p for p in data.plans}
    failures = 0
    # Then the dashboard's "now", before many members' last events (a report as at a
    # past instant): each member is read as they stood then.
    for name, at in (("last event", last), ("past: dashboard now", bench.NOW)):
        query = MemberQuery(practices={practice.id}, overdue=True, as_of=at)

        def ids(found: Any) -> list[str]:
            return sorted(m.id for m in found)

        first, indexed = timed(lambda: ids(store.members.find(query)))  # noqa: B023
        again = [timed(lambda: store.members.find(query))[0] for _ in range(10)]  # noqa: B023
        full, judged = timed(
            lambda: sorted(
                m.id
                for m in data.members
                if is_overdue(
                    m,
                    plans[m.id],
                    at=at,  # noqa: B023
                    timezone=practice.timezone,
                    membership_plans=catalogue,
                    payments=ledgers[m.id],
                )
            )
        )
        later = sum(1 for m in data.members if last_event(m, plans[m.id], ledgers[m.id]) > at)
        answers = {"outlooks": indexed, "in full": judged}
        sql_cell = "—"
        if sql is not None:
            sql_time, answers["SQLite"] = timed(lambda: ids(sql.members.find(query)))  # noqa: B023
            sql_cell = f"{sql_time * 1000:.1f} ms"
        wrong = [k for k, answer in answers.items() if answer != judged]
        for k in wrong:
            print(f"  DIFFERS {k}: {len(answers[k])} members against {len(judged)} judged in full")
        failures += len(wrong)
        print(
            f"| {n_members:,} | {len(data.payments):,} | {name} ({later:,} members with a "
            f"later event) | {len(judged):,} | {first * 1000:.1f} ms "
            f"| {statistics.median(again) * 1000:.2f} ms | {full * 1000:.1f} ms | {sql_cell} "
            f"| {'yes' if not wrong else 'no'} |"
        )
    return failures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--skip-sql-above", type=int, default=20_000)
    args = parser.parse_args(argv)
    print(
        "| members | payments | instant | overdue | first query (reads outlooks) "
        "| next queries (median) | judged in full | SQLite | equal |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    failures = sum(run(n, args.seed, args.skip_sql_above) for n in args.members)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
