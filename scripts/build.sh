#!/usr/bin/env bash
# Configures and builds StateLab into build/ (or $STATELAB_BUILD_DIR). Extra arguments go to
# CMake, e.g. -DSTATELAB_SANITIZE=ON. Used by both README commands.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${STATELAB_BUILD_DIR:-build}
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release "$@"
else
  cmake -S . -B "$build_dir" "$@" >/dev/null
fi
cmake --build "$build_dir" -j "$(nproc)"
