"""What the benchmark scripts share: the ``dashboard.py`` data builder, loaded as a module,
and a timer. A script imports it from its own folder (``python benchmarks/x.py`` puts
that folder first on ``sys.path``)."""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


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


def as_ids(result: Any) -> list[str]:
    """A tool's list of members as their ids, for the equality check (outside the timing):
    the library's Member objects, a pandas or polars Series, a NumPy array, or an Arrow
    table's first column."""
    if isinstance(result, list):
        return [getattr(item, "id", item) for item in result]
    if hasattr(result, "column"):  # an Arrow table
        return list(result.column(0).to_pylist())
    if hasattr(result, "to_list"):  # pandas and polars
        return list(result.to_list())
    return list(result.tolist())
