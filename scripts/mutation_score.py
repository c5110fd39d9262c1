"""Mutation score per module from a ``mutmut run`` (reads ``mutants/**/*.meta``).

Usage: ``.venv/bin/python scripts/mutation_score.py [--area core|memory|billing|rest|all]
[--survivors] [--fail-under-core 90] [--fail-under-overall 80]``. Each area's results are in
``build/mutation-AREA/mutants`` (see ``scripts/mutation_area.py``); ``all`` adds up core,
memory and rest, each module counted from the area it belongs to. ``billing`` runs five
modules of ``domain`` again (they are in ``core`` too, and ``all`` counts them from there):
its modules make one group, held to the core bar. The score is mutmut's:
(killed + timeout) / (all - skipped); a mutant no test reaches ("no tests") or not yet run
("not checked") counts as not killed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

#: The modules issue #6 holds to the higher bar.
CORE = ("money", "periods", "domain", "kpi")

STATUS: dict[int | None, str] = {
    1: "killed",
    3: "killed",
    0: "survived",
    5: "no tests",
    33: "no tests",
    34: "skipped",
}
STATUS |= {36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout"}
STATUS |= {37: "caught by type check", None: "not checked"}


def status(exit_code: int | None) -> str:
    """mutmut's name for an exit code."""
    return STATUS.get(exit_code, "suspicious")


def module_of(meta: Path, root: Path) -> str:
    """``smilepass_core/domain/members.py.meta`` -> ``domain.members``."""
    relative = meta.relative_to(root).as_posix().removesuffix(".py.meta")
    return relative.replace("/", ".")


def group_of(module: str) -> str:
    """The core group a module belongs to, or ``rest``."""
    head = module.split(".")[0]
    return head if head in CORE else "rest"


#: Modules run in an area of their own (``scripts/mutation_area.py``).
OWN_AREA = ("memory",)


def area_of(module: str) -> str:
    """``core`` for money, periods, domain and kpi; ``memory``; ``rest`` for every other."""
    if module in OWN_AREA:
        return module
    return "rest" if group_of(module) == "rest" else "core"


#: Areas that run some modules of another area again, against their own test selection
#: (``scripts/mutation_area.py``); ``all`` counts those modules from their usual area.
SUBSET_AREAS: dict[str, tuple[str, ...]] = {
    "billing": tuple(
        f"domain.{name}" for name in ("billing", "invoices", "overdue", "discounts", "templates")
    ),
}


def counted_in(module: str, area: str) -> bool:
    """Whether ``module``'s results are counted from ``area``'s run."""
    if area in SUBSET_AREAS:
        return module in SUBSET_AREAS[area]
    return area_of(module) == area


def score(counts: Counter[str]) -> tuple[int, int, float]:
    """(killed, tested, percent) for a tally of statuses."""
    killed = counts["killed"] + counts["timeout"] + counts["caught by type check"]
    tested = sum(counts.values()) - counts["skipped"]
    return killed, tested, (100.0 * killed / tested if tested else 100.0)


def line(name: str, counts: Counter[str]) -> str:
    """One table row."""
    killed, tested, percent = score(counts)
    missed = ("survived", "no tests", "not checked", "suspicious")
    rest = ", ".join(f"{counts[s]} {s}" for s in missed if counts[s])
    return f"| {name} | {tested} | {killed} | {percent:.1f} % | {rest or '-'} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--area", choices=("core", "memory", *SUBSET_AREAS, "rest", "all"), default="all"
    )
    parser.add_argument("--build", type=Path, default=Path("build"))
    parser.add_argument("--survivors", action="store_true", help="list every mutant not killed")
    parser.add_argument("--fail-under-core", type=float, default=90.0)
    parser.add_argument("--fail-under-overall", type=float, default=80.0)
    args = parser.parse_args(argv)

    areas = ("core", "memory", "rest") if args.area == "all" else (args.area,)
    metas: list[tuple[str, Path, Path]] = []
    for area in areas:
        root = args.build / f"mutation-{area}" / "mutants" / "src" / "smilepass_core"
        found = sorted(root.rglob("*.py.meta"))
        if not found:
            print(f"no results under {root}: run scripts/mutation.sh {area}", file=sys.stderr)
            return 2
        metas += [(area, root, meta) for meta in found]
    by_module: dict[str, Counter[str]] = {}
    not_killed: list[tuple[str, str]] = []
    for area, root, meta in metas:
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        module = module_of(meta, root)
        if not codes or not counted_in(module, area):
            continue
        counts = Counter(status(code) for code in codes.values())
        by_module[module] = counts
        not_killed += [
            (key, status(code))
            for key, code in sorted(codes.items())
            if status(code) not in ("killed", "timeout", "caught by type check", "skipped")
        ]

    groups: dict[str, Counter[str]] = {}
    for module, counts in by_module.items():
        group = args.area if args.area in SUBSET_AREAS else group_of(module)
        groups.setdefault(group, Counter()).update(counts)
    overall = sum(by_module.values(), Counter())

    print("| module | mutants | killed | score | not killed |")
    print("| --- | --- | --- | --- | --- |")
    for module, counts in by_module.items():
        print(line(module, counts))
    print()
    print("| group | mutants | killed | score | not killed |")
    print("| --- | --- | --- | --- | --- |")
    for group in (*CORE, *SUBSET_AREAS, "rest"):
        if group in groups:
            print(line(group, groups[group]))
    print(line("**overall**", overall))

    if args.survivors:
        print()
        for key, what in not_killed:
            print(f"{what}: {key}")

    core = CORE if "core" in areas else tuple(a for a in areas if a in SUBSET_AREAS)
    failed = [g for g in core if g not in groups or score(groups[g])[2] < args.fail_under_core]
    if score(overall)[2] < args.fail_under_overall:
        failed.append("overall")
    if failed:
        print(f"\nbelow the bar: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
