"""SqlStore on SQLite and PostgreSQL against InMemoryStore: load, dashboard refresh and
statements per refresh, with the EXPLAIN of the slowest statement of a refresh.

A script that prints figures (not a timed test). It builds ``benchmarks/dashboard.py``'s
deterministic dataset (two practices, ~12 ledger entries per member, 300 payment plans),
loads it into each store, checks that every store's dashboard equals InMemoryStore's
(exit 1 otherwise), then times refreshes.

    .venv/bin/python benchmarks/sql.py                         # 10,000 and 100,000 members
    .venv/bin/python benchmarks/sql.py --members 10000 --stores sqlite
    .venv/bin/python benchmarks/sql.py --postgres postgresql+psycopg://user@host/db

PostgreSQL: ``--postgres URL``, else ``SMILEPASS_POSTGRES_URL``, else a throw-away
server started from the Debian binaries (``tests/postgres_server.py``); its tables are
dropped and made again for each size.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from dashboard import NOW, build_dataset

from smilepass_core import InMemoryStore
from smilepass_core.kpi import Dashboard, dashboard
from smilepass_core.sql import SqlStore, create_schema, metadata

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import postgres_server

REFRESHES = 7


def _refresh(store: Any, practices: Sequence[str], range_: str) -> Dashboard:
    return dashboard(store, practices=list(practices), date_range=range_, now=NOW)


def _median_ms(fn: Callable[[], Any], times: int = REFRESHES) -> float:
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


class _Statements:
    """Each statement a refresh runs, with its parameters and its time."""

    def __init__(self, engine: sa.Engine) -> None:
        self.seen: list[tuple[str, Any, float]] = []
        self._start = 0.0
        sa.event.listen(engine, "before_cursor_execute", self._before)
        sa.event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, params: Any, *rest: Any) -> None:
        self._start = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, statement: str, params: Any, *rest: Any) -> None:
        self.seen.append((statement, params, time.perf_counter() - self._start))


def _explain(engine: sa.Engine, statement: str, params: Any) -> str:
    prefix = "EXPLAIN ANALYZE " if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(prefix + statement, params).all()
    return "\n".join("    " + " | ".join(str(v) for v in row) for row in rows)


def _sql_store(kind: str, postgres: str | None) -> SqlStore:
    if kind == "sqlite":
        return SqlStore.connect("sqlite://")
    url = postgres or postgres_server.server_url()
    if url is None:
        raise SystemExit(f"PostgreSQL: {postgres_server.REASON}")
    engine = sa.create_engine(url)
    metadata.drop_all(engine)
    store = SqlStore(engine)
    create_schema(engine)
    return store


def run(members: int, stores: Sequence[str], postgres: str | None) -> bool:
    data = build_dataset(members, seed=20261125, n_practices=2)
    objects = data.objects()
    ids = [p.id for p in data.practices]
    print(f"\n{members:,} members, {len(data.payments):,} payments, {len(objects):,} objects")
    start = time.perf_counter()
    memory = InMemoryStore.from_objects(objects)
    load_memory = time.perf_counter() - start
    print(
        f"  {'store':<10} {'load s':>8} {'µs/object':>10} {'refresh ms':>11} "
        f"{'one practice ms':>16} {'statements':>11}"
    )
    print(
        f"  {'memory':<10} {load_memory:>8.1f} {load_memory / len(objects) * 1e6:>10.1f} "
        f"{_median_ms(lambda: _refresh(memory, ids, 'last_30_days')):>11.1f} "
        f"{_median_ms(lambda: _refresh(memory, ids[:1], 'last_30_days')):>16.1f} {'-':>11}"
    )
    ok = True
    for kind in stores:
        store = _sql_store(kind, postgres)
        start = time.perf_counter()
        store.load(objects)
        load = time.perf_counter() - start
        for range_ in ("last_30_days", "year_to_date"):
            if _refresh(store, ids, range_) != _refresh(memory, ids, range_):
                print(f"  {kind}: the {range_} dashboard differs from InMemoryStore's")
                ok = False
        all_ms = _median_ms(lambda: _refresh(store, ids, "last_30_days"))  # noqa: B023
        one_ms = _median_ms(lambda: _refresh(store, ids[:1], "last_30_days"))  # noqa: B023
        statements = _Statements(store.engine)
        with store.atomic():
            _refresh(store, ids, "last_30_days")
        print(
            f"  {kind:<10} {load:>8.1f} {load / len(objects) * 1e6:>10.1f} {all_ms:>11.1f} "
            f"{one_ms:>16.1f} {len(statements.seen):>11}"
        )
        slowest = max(statements.seen, key=lambda s: s[2])
        print(f"  {kind}: slowest statement of a refresh, {slowest[2] * 1000:.1f} ms:")
        print("    " + " ".join(slowest[0].split()))
        print(_explain(store.engine, slowest[0], slowest[1]))
        store.engine.dispose()
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--stores", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"]
    )
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server to use")
    args = parser.parse_args(argv)
    print(
        f"SqlStore benchmark: Python {sys.version.split()[0]}, SQLAlchemy {sa.__version__}; "
        f"median of {REFRESHES} refreshes, two practices, last 30 days"
    )
    ok = True
    for n in args.members:
        ok &= run(n, args.stores, args.postgres)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
