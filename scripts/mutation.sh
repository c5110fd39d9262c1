#!/usr/bin/env bash
# Mutation testing of money, periods, domain and kpi with mutmut (about 80 minutes on 2 cores;
# not part of .ci/run). Prints the score per module; exits non-zero below 90 % in any of
# the four or 80 % overall. Results stay in mutants/ (git-ignored): `.venv/bin/mutmut
# results` lists survivors, `.venv/bin/mutmut show NAME` shows one.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e '.[mutation]'
rm -rf mutants
export HYPOTHESIS_PROFILE=mutation
.venv/bin/mutmut run "smilepass_core.money.*" "smilepass_core.periods.*" \
    "smilepass_core.domain.*" "smilepass_core.kpi.*"
.venv/bin/python scripts/mutation_score.py --core-only ${@+"$@"}
