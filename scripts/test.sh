#!/usr/bin/env bash
# README command 2: installs what is missing, builds with tests, and runs the whole suite.
#   scripts/test.sh             every test (GPU tests skip with a message where no GPU is)
#   scripts/test.sh --fast      leaves out the tests labelled `slow`
#   scripts/test.sh --sanitize  the CPU suite under AddressSanitizer + UBSan, in build-sanitize/
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-all}
case "$mode" in
  all|--fast|--sanitize) ;;
  *) echo "usage: scripts/test.sh [--fast | --sanitize]" >&2; exit 2 ;;
esac
bash scripts/setup.sh --tests
build_dir=${STATELAB_BUILD_DIR:-build}
cmake_args=(-DSTATELAB_TESTS=ON)
ctest_args=(--output-on-failure -j "$(nproc)")
if [[ "$mode" == "--sanitize" ]]; then
  build_dir=${STATELAB_BUILD_DIR:-build-sanitize}
  cmake_args+=(-DSTATELAB_SANITIZE=ON)
  ctest_args+=(-LE "slow|gpu")
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi
[[ "$mode" == "--fast" ]] && ctest_args+=(-LE slow)
STATELAB_BUILD_DIR=$build_dir bash scripts/build.sh "${cmake_args[@]}"
ctest --test-dir "$build_dir" "${ctest_args[@]}"
