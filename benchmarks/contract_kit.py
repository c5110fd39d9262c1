"""How fast the contract kit reports typical host bugs (issue #12's target: 30 seconds).

Plants each bug of tests/test_contracts.py in the minimal host, runs the kit's check
that must catch it under several Hypothesis seeds, and prints, per bug and check, how
often it was caught, the stores built (examples tried plus shrinking steps) and the
seconds to the report, median and worst, against the 30-second target.

    .venv/bin/python benchmarks/contract_kit.py [--seeds N]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from hypothesis import seed, settings

# No example database: each seed must find its bug afresh, not replay the last one's.
settings.register_profile("contract-kit-benchmark", database=None, deadline=None)
settings.load_profile("contract-kit-benchmark")

from smilepass_core.testing import contracts  # noqa: E402  (reads the profile on import)

TARGET_SECONDS = 30.0


def _planted() -> Any:
    """tests/test_contracts.py, imported by path: its planted bugs and their checks."""
    path = Path(__file__).resolve().parent.parent / "tests" / "test_contracts.py"
    spec = importlib.util.spec_from_file_location("planted", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    """Run every planted bug under ``--seeds`` seeds and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="Hypothesis seeds per bug")
    parser.add_argument("--verbose", action="store_true", help="a line per seed")
    args = parser.parse_args(argv)
    planted = _planted()
    print(f"{'bug':22} {'check':15} {'caught':>7} {'stores':>13} {'seconds':>15}  vs target")
    worst_all = 0.0
    for bug, make, check, read in planted.PLANTED:
        caught, stores, seconds = 0, [], []
        for n in range(args.seeds):
            built: list[int] = []

            class Planted(contracts.StoreContract):
                def make_store(self, make: Any = make, built: list[int] = built) -> Any:
                    built.append(1)
                    return make()

            check_method = getattr(Planted, planted.CHECKS[check])
            # The seed goes on the Hypothesis test inside the kit's shrink-budget wrapper.
            seed(n)(check_method.__wrapped__)
            start = time.perf_counter()
            try:
                check_method(Planted())
            except contracts.ContractViolation as error:
                caught += str(error).startswith(read)
            seconds.append(time.perf_counter() - start)
            if args.verbose:
                print(
                    f"  {bug} {check} seed {n}: {len(built)} stores, {seconds[-1]:.2f} s",
                    flush=True,
                )
            stores.append(len(built))
        worst = max(seconds)
        worst_all = max(worst_all, worst)
        print(
            f"{bug:22} {check:15} {caught:>3}/{args.seeds:<3} "
            f"{statistics.median(stores):>5.0f} / {max(stores):<5} "
            f"{statistics.median(seconds):>6.2f} / {worst:<6.2f}  "
            f"{worst / TARGET_SECONDS:.0%} of {TARGET_SECONDS:.0f} s"
        )
    print(f"worst report: {worst_all:.2f} s ({worst_all / TARGET_SECONDS:.0%} of the target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
