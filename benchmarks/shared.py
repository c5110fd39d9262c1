"""What the benchmark scripts share: the ``dashboard.py`` data builder, loaded as a module,
and a timer. A script imports it from its own folder (``python benchmarks/x.py`` puts
that folder first on ``sys.path``)."""

from __future__ import annotations

import importlib.util
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from smilepass_core.read_only_list import ReadOnlyList


def dashboard_module() -> Any:
    """``benchmarks/dashboard.py`` as the module ``dashboard_benchmark`` (its
    ``build_dataset``, ``CASES``, ``NOW``), loaded once."""
    if "dashboard_benchmark" in sys.modules:
        return sys.modules["dashboard_benchmark"]
    path = Path(__file__).resolve().parent / "dashboard.py"
    spec = importlib.util.spec_from_file_location("dashboard_benchmark", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds ``fn()`` took, and what it returned."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def resident_mib() -> float:
    """This process's resident memory now, in MiB (Linux's ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except OSError:
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mib() -> float:
    """The most resident memory this process has held, in MiB (Linux counts KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def grown(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Seconds ``fn()`` took, the MiB of resident memory it added, and what it returned."""
    before = resident_mib()
    seconds, result = timed(fn)
    return seconds, resident_mib() - before, result


def as_ids(result: Any) -> list[str]:
    """A tool's list of members as their ids, for the equality check (outside the timing):
    the library's Member objects, a pandas or polars Series, a NumPy array, or an Arrow
    table's first column."""
    if isinstance(result, list | ReadOnlyList):
        return [getattr(item, "id", item) for item in result]
    if hasattr(result, "column"):  # an Arrow table
        return list(result.column(0).to_pylist())
    if hasattr(result, "to_list"):  # pandas and polars
        return list(result.to_list())
    return list(result.tolist())


def p90(values: Sequence[float]) -> float:
    """Nearest-rank 90th percentile."""
    ordered = sorted(values)
    return ordered[max(0, -(-9 * len(ordered) // 10) - 1)]


def interleaved(calls: Mapping[str, Callable[[], Any]], rounds: int) -> dict[str, list[float]]:
    """Milliseconds of each call, ``rounds`` times, every round in an order rotated by one
    (so no tool always runs after the same other)."""
    names = list(calls)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            seconds, _ = timed(calls[name])
            samples[name].append(seconds * 1e3)
    return samples


def median_rows(
    samples: Mapping[str, Sequence[float]], base: str, ratio: str = ".1f"
) -> list[list[str]]:
    """Per tool: its median and p90 in ms, and its median over ``base``'s."""
    base_ms = statistics.median(samples[base])
    return [
        [
            name,
            f"{statistics.median(v):.2f}",
            f"{p90(v):.2f}",
            f"{statistics.median(v) / base_ms:{ratio}}x",
        ]
        for name, v in samples.items()
    ]
