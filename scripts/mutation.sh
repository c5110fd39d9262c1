#!/usr/bin/env bash
# Mutation testing with mutmut (not part of .ci/run). Usage: scripts/mutation.sh [core|memory|rest|all]
# [score options]. `core` (the default; about 80 minutes on 2 cores): money, periods, domain
# and kpi against their own tests. `memory` (about an hour): the in-memory store against the
# store, query, contract-kit and reliability tests. `rest` (several hours): every other
# module against the whole suite. `all`: the three. Each area runs in its own copy,
# build/mutation-AREA (git-ignored; see scripts/mutation_area.py), then scripts/mutation_score.py prints the score per module
# and exits non-zero below 90 % in any of the core four or 80 % overall. Survivors:
# `cd build/mutation-AREA && ../../.venv/bin/mutmut results`, `... mutmut show NAME`.
set -euo pipefail
cd "$(dirname "$0")/.."

area=${1:-core}
case $area in
    core | memory | rest) areas=("$area") ;;
    all) areas=(core memory rest) ;;
    *) echo "usage: scripts/mutation.sh [core|memory|rest|all] [score options]" >&2; exit 2 ;;
esac
[ $# -gt 0 ] && shift

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e '.[mutation]'
export HYPOTHESIS_PROFILE=mutation
for one in "${areas[@]}"; do
    mapfile -t patterns < <(.venv/bin/python scripts/mutation_area.py "$one" "build/mutation-$one")
    (cd "build/mutation-$one" && ../../.venv/bin/mutmut run "${patterns[@]}")
done
.venv/bin/python scripts/mutation_score.py --area "$area" ${@+"$@"}
