#!/usr/bin/env bash
# The README's two commands:
#   scripts/setup.sh serve   build (release) and start the strata server on 0.0.0.0:9090, data in ./data
#   scripts/setup.sh test    build with ASan+UBSan and run every test with ctest
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-}"
jobs="$(nproc)"

bash scripts/install-deps.sh

case "$mode" in
  serve)
    cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DSTRATA_BUILD_TESTS=OFF -DSTRATA_BUILD_BENCH=OFF >/dev/null
    cmake --build build/release --target strata -j "$jobs"
    shift
    exec build/release/server/strata --web.listen-address=0.0.0.0:9090 \
      --storage.tsdb.path=./data "$@"
    ;;
  test)
    cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSTRATA_SANITIZE=ON \
      -DSTRATA_BUILD_BENCH=ON >/dev/null
    cmake --build build/asan -j "$jobs"
    cd build/asan
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    exec ctest --output-on-failure -j "$jobs" --timeout 1500
    ;;
  *)
    echo "usage: scripts/setup.sh serve|test" >&2
    exit 2
    ;;
esac
