#!/bin/sh
# Macro benchmark: builds the release binaries (strata, strata-loadgen), then runs Strata,
# Prometheus and VictoriaMetrics one after the other on this machine, feeds each the same
# remote-write load, measures ingest, CPU, memory, disk and dashboard query latency, prints
# a table with ratios and writes it into bench/RESULTS.md. Takes a few minutes.
#
#   bench/macro.sh [--hosts N] [--steps N] [--connections N] [--reps N] [--results FILE] ...
#   bench/macro.sh --help
#
# Not part of the test suite.
set -eu
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build/release}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
nice cmake --build "$BUILD_DIR" -j"$(nproc)" --target strata strata-loadgen
exec python3 bench/macro/macro.py --build-dir "$BUILD_DIR" "$@"
