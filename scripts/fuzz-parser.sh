#!/usr/bin/env bash
# Runs the PromQL parser under libFuzzer (clang, ASan+UBSan) for a bounded time.
#   scripts/fuzz-parser.sh [SECONDS]   (default 120)
# The corpus, seeded from the upstream test scripts, grows in build/fuzz/corpus; a crash
# leaves its input in build/fuzz/ as crash-*.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-120}"
bash scripts/install-deps.sh
if ! command -v clang++ >/dev/null; then
  apt-get install -y -qq clang libclang-rt-14-dev >/dev/null
fi
cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_C_COMPILER=clang -DSTRATA_SANITIZE=ON -DSTRATA_FUZZ=ON -DSTRATA_BUILD_BENCH=OFF \
  >/dev/null
cmake --build build/fuzz --target promql_parser_fuzz -j "$(nproc)"
mkdir -p build/fuzz/corpus
# One seed file per eval expression of the upstream scripts.
n=0
for f in ../shared/promql-tests/upstream/*.test; do
  grep -E '^\s*eval' "$f" | sed -E 's/^\s*eval[^ ]* +(instant +at +[^ ]+|range +from +[^ ]+ +to +[^ ]+ +step +[^ ]+) +//' |
    while IFS= read -r q; do
      printf '%s' "$q" > "build/fuzz/corpus/seed-$(printf '%s' "$q" | md5sum | cut -c1-16)"
    done
  n=$((n + 1))
done
cd build/fuzz
./tests/fuzz/promql_parser_fuzz -max_total_time="$seconds" -max_len=512 -timeout=10 corpus
