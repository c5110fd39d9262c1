"""Loading into :class:`~smilepass_core.InMemoryStore`: microseconds and bytes per payment.

Builds ``dashboard.py``'s deterministic dataset (N members with 12 ledger entries each,
300 payment plans), then loads it with ``InMemoryStore.from_objects`` K times, each into
a fresh store, and prints:

- the median load time, and per payment record (the load divided by the ledger's
  entries, as issue #19 states its target of 5 µs);
- the bytes the store itself allocates to hold them (its dicts, sets and timelines,
  measured with ``tracemalloc`` while loading, the objects excluded), per payment; and
  the bytes of the objects themselves, per payment, for comparison;
- with ``--profile``, the 15 functions with the most own time in one load.

Before anything is timed, the loaded store must answer as the data says: every object
kept, and the ledger's total per practice equal to the sum of its succeeded charges less
refunds, computed here by hand. A difference exits with status 1.

This is a script, not a timed test::

    .venv/bin/python benchmarks/load.py [--members N] [--rounds K] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import statistics
import sys
import tracemalloc
from collections.abc import Sequence
from typing import Any

from shared import dashboard_module, timed

from smilepass_core import InMemoryStore, PaymentKind, PaymentQuery, ScopeQuery
from smilepass_core.money import Money

bench = dashboard_module()


def _check(store: InMemoryStore, data: Any) -> list[str]:
    """What the loaded store answers differently from the data itself."""
    wrong: list[str] = []
    counts = {
        "practices": (store.practices.count(ScopeQuery()), len(data.practices)),
        "members": (len(store.members), len(data.members)),
        "payment_plans": (len(store.payment_plans), len(data.payment_plans)),
        "payments": (len(store.payments), len(data.payments)),
    }
    wrong += [
        f"{name}: {got} kept, {want} given" for name, (got, want) in counts.items() if got != want
    ]
    for practice in data.practices:
        net = Money.zero(practice.currency)
        for p in data.payments:
            if p.practice_id == practice.id and p.succeeded:
                net += p.amount if p.kind is PaymentKind.CHARGE else -p.amount
        got = store.payments.total(PaymentQuery(practices={practice.id})).get(practice.currency)
        if (got or Money.zero(practice.currency)) != net:
            wrong.append(f"{practice.id} revenue: {got} kept, {net} by hand")
    return wrong


def _store_bytes(objects: Sequence[object]) -> tuple[int, int]:
    """Bytes allocated by one load and still held by the store, and the peak during it."""
    gc.collect()
    tracemalloc.start()
    store = InMemoryStore.from_objects(objects)
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del store
    return held, peak


def _object_bytes(members: int, seed: int) -> int:
    """Bytes the dataset's objects take (built while tracing)."""
    gc.collect()
    tracemalloc.start()
    data = bench.build_dataset(members, seed)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del data
    return held


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    data = bench.build_dataset(args.members, args.seed)
    objects = data.objects()
    n = len(data.payments)
    print(
        f"load benchmark: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average"
        f" {os.getloadavg()[0]:.1f}; {len(data.members):,} members, {n:,} payments,"
        f" {len(data.payment_plans):,} payment plans; {args.rounds} rounds"
    )
    _, store = timed(lambda: InMemoryStore.from_objects(objects))
    wrong = _check(store, data)
    if wrong:
        print("DIFFERENT:", *wrong, sep="\n  ")
        return 1
    print("OK: every object kept; each practice's ledger total equals the sum by hand.")
    del store
    times = []
    for _ in range(args.rounds):
        gc.collect()
        seconds, store = timed(lambda: InMemoryStore.from_objects(objects))
        times.append(seconds)
        del store
    median = statistics.median(times)
    held, peak = _store_bytes(objects)
    own = _object_bytes(args.members, args.seed)
    print(
        f"load median {median:.2f} s (rounds: {', '.join(f'{t:.2f}' for t in times)});"
        f" {median / n * 1e6:.1f} µs per payment record"
    )
    print(
        f"store: {held / n:,.0f} bytes per payment held ({peak / n:,.0f} at the peak of the"
        f" load); the objects themselves: {own / n:,.0f} bytes per payment"
    )
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        InMemoryStore.from_objects(objects)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
