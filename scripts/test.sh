#!/usr/bin/env bash
# README command 2: installs what is missing, builds with tests, and runs the whole suite.
#   scripts/test.sh             every test (GPU tests skip with a message where no GPU is)
#   scripts/test.sh --fast      leaves out the tests labelled `slow`
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests
build_dir=${STATELAB_BUILD_DIR:-build}
STATELAB_BUILD_DIR=$build_dir bash scripts/build.sh -DSTATELAB_TESTS=ON
ctest_args=(--test-dir "$build_dir" --output-on-failure -j "$(nproc)")
[[ "${1:-}" == "--fast" ]] && ctest_args+=(-LE slow)
ctest "${ctest_args[@]}"
