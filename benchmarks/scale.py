"""How a dashboard refresh grows with the store: load and refresh at each size.

A script that prints figures, not a timed test. For each ``--members`` size, in this
process and in order, it builds ``dashboard.py``'s dataset (one practice in Sydney),
loads it with ``InMemoryStore.from_objects`` and times:

- the load, in seconds and µs per payment record;
- the first dashboard after the load (it takes the retained count's snapshots);
- each of ``dashboard.py``'s 20 ranges, ``--rounds`` times interleaved: the median per
  range, then the median, p90 and maximum over the 20;

and last the ratio of each size's median refresh to the first size's (issue #19's
target: at most 2x from 100,000 to 1,000,000 members). ``dashboard.py`` checks the
figures against a naive rescan; this script only times them. The process's max RSS is
printed at the end (1,000,000 members need about 13 GiB).

    .venv/bin/python benchmarks/scale.py --members 100000 1000000
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
from collections.abc import Sequence
from typing import Any

from shared import dashboard_module, timed

from smilepass_core import InMemoryStore
from smilepass_core.kpi import dashboard

bench = dashboard_module()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=bench.DEFAULT_SEED)
    args = parser.parse_args(argv)
    print(f"scale benchmark: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    medians: list[float] = []
    for n in args.members:
        build_s, data = timed(lambda n=n: bench.build_dataset(n, args.seed))
        load_s, store = timed(lambda data=data: InMemoryStore.from_objects(data.objects()))
        practice = data.practices[0].id

        def refresh(case: Any, store: InMemoryStore = store, practice: str = practice) -> None:
            dashboard(store, practices=practice, date_range=case.spec(), now=case.now)

        first_s, _ = timed(lambda refresh=refresh: refresh(bench.CASES[0]))
        samples: list[list[float]] = [[] for _ in bench.CASES]
        for _ in range(args.rounds):
            for k, case in enumerate(bench.CASES):
                t, _ = timed(lambda refresh=refresh, case=case: refresh(case))
                samples[k].append(t * 1e3)
        per_range = [statistics.median(s) for s in samples]
        medians.append(statistics.median(per_range))
        print(
            f"\n{n:,} members, {len(data.payments):,} payments (load average "
            f"{os.getloadavg()[0]:.1f}): build {build_s:.1f} s; load {load_s:.1f} s = "
            f"{load_s / len(data.payments) * 1e6:.1f} µs per payment; first dashboard "
            f"{first_s * 1e3:.1f} ms"
        )
        print(
            f"refresh median {medians[-1]:.2f} ms, p90 {bench._p90(per_range):.2f} ms, "
            f"max {max(per_range):.2f} ms (each range the median of {args.rounds})"
        )
        print("per range ms: " + " ".join(f"{m:.2f}" for m in per_range), flush=True)
        del store, data
    for n, median in zip(args.members, medians, strict=True):
        print(f"{n:,} members: median refresh {median / medians[0]:.2f}x the first size's")
    print(f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
