#!/usr/bin/env bash
# README command 1: installs what is missing, builds, and runs the main job: the dashboard where a
# display exists (lab gui with the sLSTM parity preset loaded), otherwise headless the quick sweep
# (every cell and eigenvalue variant on parity and modular arithmetic), its printed table and
# report (sweeps/quick/report.html); rerunning it continues where it stopped. Extra arguments go
# to the command that runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh -DSTATELAB_TESTS=OFF
lab="${STATELAB_BUILD_DIR:-build}/lab"
if [[ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]]; then
  exec "$lab" gui presets/parity_slstm.json "$@"
fi
echo "run: no display (DISPLAY and WAYLAND_DISPLAY are unset): running the quick sweep headless"
exec "$lab" sweep presets/sweeps/quick.json "$@"
