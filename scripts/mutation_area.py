"""Write the mutmut set-up of one area of the package into a working copy.

Usage: ``.venv/bin/python scripts/mutation_area.py AREA DEST`` copies ``src``, ``tests``,
``docs``, ``README.md`` and ``pyproject.toml`` into ``DEST`` (emptied first) and prints
the mutant name patterns of AREA, one per line, for ``mutmut run``.
``mutation_area.py AREA DEST --pending`` copies nothing and prints the names of AREA's
mutants in ``DEST`` that have no result yet (an interrupted run), for ``mutmut run`` to
test only those: mutmut re-tests every mutant a pattern names, but only the ones named.

mutmut reads its configuration only from ``pyproject.toml`` in the directory it runs in, so
each area runs in its own copy: ``core`` (money, periods, domain, kpi) with the project's
own ``[tool.mutmut]`` table (their own tests), ``memory`` (the in-memory store) against the
store's, query, contract-kit and reliability tests and the doc pages, ``billing`` (five
recent modules of ``domain``: billing, invoices, overdue, discounts, templates; part of
``core`` too) against their own tests, the query, plan and member tests and
``docs/domain.md``, and ``rest`` (every other module) with that table's test selection
widened to the whole suite.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
import sys
from pathlib import Path
from typing import Final

#: Per area: the mutant name patterns, and the tests (and doc pages) that must kill them
#: (``None``: the selection in ``pyproject.toml``).
AREAS: Final[dict[str, tuple[list[str], list[str] | None]]] = {
    "core": (
        [f"smilepass_core.{name}.*" for name in ("money", "periods", "domain", "kpi")],
        None,
    ),
    "memory": (
        ["smilepass_core.memory.*"],
        [
            "tests/test_memory.py",
            "tests/test_concurrency.py",
            "tests/test_contracts.py",
            "tests/test_queries.py",
            "tests/test_reliability.py",
            "tests/test_minimal_host.py",
            "docs",
        ],
    ),
    "billing": (
        [
            f"smilepass_core.domain.{name}.*"
            for name in ("billing", "invoices", "overdue", "discounts", "templates")
        ],
        [
            "tests/test_billing.py",
            "tests/test_invoices.py",
            "tests/test_overdue.py",
            "tests/test_discounts.py",
            "tests/test_templates.py",
            "tests/test_queries.py",
            "tests/test_payment_plans.py",
            "tests/test_members.py",
            "tests/test_billing_details.py",
            "docs/domain.md",
        ],
    ),
    "rest": (
        [
            "smilepass_core.x_*",
            *(
                f"smilepass_core.{name}.*"
                for name in (
                    "errors",
                    "presentation",
                    "_compat",
                    "records",
                    "rendering",
                    "__main__",
                    "queries",
                    "repositories",
                    "io",
                    "reports",
                    "demo",
                )
            ),
        ],
        ["tests", "docs"],
    ),
}

COPIED: Final = ("src", "tests", "docs", "README.md")


def with_area(pyproject: str, area: str) -> str:
    """``pyproject`` with the area's test selection in its ``[tool.mutmut]`` table."""
    tests = AREAS[area][1]
    if tests is None:
        return pyproject
    key = "pytest_add_cli_args_test_selection = ["
    head, marker, tail = pyproject.partition(key)
    _, closed, after = tail.partition("\n]\n")
    if not marker or not closed or "[tool.mutmut]" not in head:
        raise ValueError(f"pyproject.toml has no [tool.mutmut] {key}...] list")
    # A JSON array of strings is a valid TOML array.
    return f"{head}{key[:-1]}{json.dumps(tests)}\n{after}"


def pending(area: str, dest: Path) -> list[str]:
    """The names of ``area``'s mutants in ``dest`` that have no result yet."""
    names = []
    for meta in sorted((dest / "mutants").rglob("*.meta")):
        results = json.loads(meta.read_text(encoding="utf-8")).get("exit_code_by_key", {})
        names += [
            name
            for name, code in results.items()
            if code is None and any(fnmatch.fnmatchcase(name, p) for p in AREAS[area][0])
        ]
    return names


def main(argv: list[str]) -> int:
    resume = argv[2:] == ["--pending"]
    if len(argv) != 2 + resume or argv[0] not in AREAS:
        print(f"usage: mutation_area.py {{{'|'.join(AREAS)}}} DEST [--pending]", file=sys.stderr)
        return 2
    area, dest = argv[0], Path(argv[1])
    if resume:
        print("\n".join(pending(area, dest)))
        return 0
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for name in COPIED:
        source = Path(name)
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, dest / name)
    pyproject = Path("pyproject.toml").read_text(encoding="utf-8")
    (dest / "pyproject.toml").write_text(with_area(pyproject, area), encoding="utf-8")
    print("\n".join(AREAS[area][0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
