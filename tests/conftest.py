"""Hypothesis profiles: ``ci`` (used by .ci/run), ``dev`` (default), ``thorough``, ``mutation``."""

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=200,
    stateful_step_count=50,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=50)
settings.register_profile(
    "thorough",
    deadline=None,
    max_examples=2000,
    stateful_step_count=100,
    suppress_health_check=[HealthCheck.too_slow],
)
# Mutation testing runs each test once per mutant: derandomised so a verdict is repeatable,
# no example database so one mutant's failure is not replayed against the next. mutmut calls
# pytest several times in one process, so a test method meets several class instances.
# No shrinking: a mutant is killed by the first failing example, and shrinking it can take
# minutes (the verdict is the same).
settings.register_profile(
    "mutation",
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    max_examples=40,
    stateful_step_count=20,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under mutmut, run the fastest tests first so a killed mutant fails early.

    mutmut runs the tests of each mutant with ``-x`` in the directory holding its
    ``mutmut-stats.json`` (each test's duration on the unmutated code).
    """
    stats = Path("mutmut-stats.json")
    if os.environ.get("HYPOTHESIS_PROFILE") != "mutation" or not stats.exists():
        return
    durations = json.loads(stats.read_text())["duration_by_test"]
    items.sort(key=lambda item: durations.get(item.nodeid, 0.0))
