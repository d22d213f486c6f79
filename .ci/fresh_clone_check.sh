#!/usr/bin/env bash
# Runs the README's two set-up commands from a fresh clone in a fresh venv and times them.
# Usage: bash .ci/fresh_clone_check.sh [demo|test|both]   (default: both)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
what=${1:-both}
work=$(mktemp -d /tmp/lepton-fresh-XXXX)
git clone -q "$repo" "$work/repo"
python3 -m venv "$work/venv"
# shellcheck disable=SC1091
source "$work/venv/bin/activate"
cd "$work/repo"
for which in demo test; do
    [ "$what" = both ] || [ "$what" = "$which" ] || continue
    cmd=$(python .ci/readme_command.py "$which")
    echo "+ $cmd"
    start=$(date +%s)
    export LEPTON_HOME="$work/home"
    bash -c "$cmd"
    echo "== $which took $(( $(date +%s) - start )) s (in $work)"
done
