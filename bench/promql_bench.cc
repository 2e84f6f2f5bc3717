// PromQL engine speed: range queries at a 60 s step over the in-memory store, on the
// 10,000 node-exporter-like series of bench/promql_bench_data.h (24 h at 15 s).
// Figures go to bench/RESULTS.md ("PromQL engine").
//
//   BM_Query/<query>/24h   the whole day: 1,441 steps
//   BM_Query/<query>/1h    the last hour: 61 steps (what a dashboard panel mostly asks)
//
// Time is per query (parse excluded; the querier snapshot, selection, evaluation and the
// result matrix included). Counters: samples_decoded (per query, from QueryResult),
// decoded_per_s (samples decoded per CPU second), peak_samples, result_series.
//
// The store keeps raw samples (no chunk decoding), so "decoded" here means copied out of
// storage; XOR decoding costs on top are in the "Chunk codec" section.

#include <cstdint>
#include <string>
#include <string_view>

#include "bench/promql_bench_data.h"
#include "benchmark/benchmark.h"
#include "query/engine.h"
#include "query/parser.h"
#include "storage/memory_store.h"

namespace strata::bench {
namespace {

MemoryStore& Store() {
  static MemoryStore* store = [] {
    auto* s = new MemoryStore();
    LoadNodeExporterData(*s);
    return s;
  }();
  return *store;
}

enum class Window { kDay, kHour };

void BM_Query(benchmark::State& state, std::string_view query, Window window) {
  MemoryStore& store = Store();
  promql::Engine engine;
  auto expr = promql::ParseExpr(query, engine.options().parser_options());
  if (!expr.ok()) {
    state.SkipWithError(std::string(expr.status().message()).c_str());
    return;
  }
  const Timestamp end = kDataEnd;
  const Timestamp start = window == Window::kDay ? kDataStart : kDataEnd - 3'600'000;
  int64_t decoded = 0, peak = 0, series = 0;
  for (auto _ : state) {
    auto result = engine.RangeQuery(store, **expr, query, start, end, 60'000);
    if (!result.ok()) {
      state.SkipWithError(std::string(result.status().message()).c_str());
      return;
    }
    decoded += result->samples_decoded;
    peak = result->peak_samples;
    series = static_cast<int64_t>(result->value.matrix.size());
    benchmark::DoNotOptimize(result->value.matrix.data());
  }
  const auto iterations = static_cast<double>(state.iterations());
  state.counters["samples_decoded"] = static_cast<double>(decoded) / iterations;
  state.counters["decoded_per_s"] =
      benchmark::Counter(static_cast<double>(decoded), benchmark::Counter::kIsRate);
  state.counters["peak_samples"] = static_cast<double>(peak);
  state.counters["result_series"] = static_cast<double>(series);
}

struct NamedQuery {
  const char* name;
  std::string_view text;
};

constexpr NamedQuery kQueries[] = {
    {"sum_rate", "sum by (x) (rate(m[5m]))"},
    {"histogram_quantile", "histogram_quantile(0.99, sum by (le) (rate(b_bucket[5m])))"},
    {"regex", R"(sum(rate(m{instance=~"host-1.*"}[5m])))"},
    {"subquery", "max_over_time(rate(m[5m])[1h:1m])"},
};

const bool kRegistered = [] {
  for (const NamedQuery& q : kQueries) {
    for (Window w : {Window::kDay, Window::kHour}) {
      std::string name = std::string("BM_Query/") + q.name + (w == Window::kDay ? "/24h" : "/1h");
      benchmark::RegisterBenchmark(name.c_str(), BM_Query, q.text, w)
          ->Unit(benchmark::kMillisecond);
    }
  }
  return true;
}();

}  // namespace
}  // namespace strata::bench
