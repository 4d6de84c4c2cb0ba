#!/usr/bin/env bash
# README command 1: installs what is missing, builds, and runs the main job: training the
# default preset (sLSTM on parity) on the CPU, then printing its per-length accuracy table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh -DSTATELAB_TESTS=OFF
exec "${STATELAB_BUILD_DIR:-build}/lab" train presets/parity_slstm.json "$@"
