#!/usr/bin/env bash
# Mutation testing with mutmut (not part of .ci/run). Usage:
# scripts/mutation.sh [core|memory|billing|rest|all] [score options]. `core` (the default;
# about 80 minutes on 2 cores): money, periods, domain and kpi against their own tests.
# `memory` (about an hour): the in-memory store against the store, query, contract-kit and
# reliability tests. `billing` (about 10 minutes): domain's billing, invoices, overdue,
# discounts and templates (also in `core`) against their own, the query, plan and member
# tests and docs/domain.md. `rest` (several hours): every other module against the whole
# suite. `all`: core, memory and rest. Each area runs in its own copy, build/mutation-AREA
# (git-ignored; see scripts/mutation_area.py), then scripts/mutation_score.py prints the
# score per module and exits non-zero below 90 % in any of the core four (`billing`: its
# five modules together) or 80 % overall. Survivors:
# `cd build/mutation-AREA && ../../.venv/bin/mutmut results`, `... mutmut show NAME`.
# MUTATION_RESUME=1 keeps an interrupted area's copy and results and tests only the mutants
# that have none yet (the source must not have changed since: the copy is not refreshed).
set -euo pipefail
cd "$(dirname "$0")/.."

# mutmut limits a mutant's CPU time only: a mutant that deadlocks a test (a lock never
# released) sleeps for ever. Stop a worker idle for MUTATION_IDLE seconds (default 60)
# with SIGXCPU, as mutmut's own limit would: the mutant made the tests hang (a timeout).
idle_watchdog() {
    declare -A last since
    while sleep 15; do
        for pid in $(pgrep -f "^mutmut: " || true); do
            cpu=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) || continue
            now=$(date +%s)
            if [ "${last[$pid]:-}" != "$cpu" ]; then
                last[$pid]=$cpu
                since[$pid]=$now
            elif [ $((now - ${since[$pid]})) -ge "${MUTATION_IDLE:-60}" ]; then
                kill -XCPU "$pid" 2>/dev/null || true
            fi
        done
    done
}

area=${1:-core}
case $area in
    core | memory | billing | rest) areas=("$area") ;;
    all) areas=(core memory rest) ;;
    *) echo "usage: scripts/mutation.sh [core|memory|billing|rest|all] [score options]" >&2; exit 2 ;;
esac
[ $# -gt 0 ] && shift

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e '.[mutation]'
export HYPOTHESIS_PROFILE=mutation
for one in "${areas[@]}"; do
    if [ "${MUTATION_RESUME:-0}" = 1 ] && [ -d "build/mutation-$one/mutants" ]; then
        mapfile -t patterns < <(.venv/bin/python scripts/mutation_area.py "$one" "build/mutation-$one" --pending)
        [ -n "${patterns[*]}" ] || continue
    else
        mapfile -t patterns < <(.venv/bin/python scripts/mutation_area.py "$one" "build/mutation-$one")
    fi
    idle_watchdog &
    watchdog=$!
    (cd "build/mutation-$one" && ../../.venv/bin/mutmut run "${patterns[@]}") || status=$?
    kill "$watchdog" 2>/dev/null || true
    [ "${status:-0}" = 0 ] || exit "$status"
done
.venv/bin/python scripts/mutation_score.py --area "$area" ${@+"$@"}
