#!/usr/bin/env bash
# README command 1: installs what is missing, builds, and runs the main job headless: the quick
# sweep (every cell and eigenvalue variant on parity and modular arithmetic), its printed table
# and report (sweeps/quick/report.html). Rerunning it continues where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh -DSTATELAB_TESTS=OFF
exec "${STATELAB_BUILD_DIR:-build}/lab" sweep presets/sweeps/quick.json "$@"
