// Storage engine speed: batch append (head + WAL group commit) and Select latency.
// Figures go to bench/RESULTS.md.
//
//   BM_Append/threads:N   batches of 100 series x 10 samples over 10,000 node-exporter-like
//                         series, WAL without fsync (write() only), no background flush.
//                         items_per_second = samples/s over all threads.
//   BM_Select/N           one Select matching N series (120 head samples each), every
//                         sample decoded. Head only, then the same after a flush to RocksDB
//                         (BM_SelectStored).

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "src/matcher.h"
#include "storage/db.h"

namespace strata {
namespace {

constexpr int kSeries = 10000;

std::string BenchDir(const std::string& name) {
  std::string d = (std::filesystem::temp_directory_path() /
                   ("strata_bench_" + name + "_" + std::to_string(::getpid())))
                      .string();
  std::filesystem::remove_all(d);
  return d;
}

Labels NodeSeries(int i) {
  return Labels{{"__name__", "node_cpu_seconds_total"},
                {"cpu", std::to_string(i % 64)},
                {"instance", "host-" + std::to_string(i / 64) + ".example.com:9100"},
                {"job", "node"},
                {"mode", "user"},
                {"group", std::to_string(i / 100)}};
}

std::unique_ptr<Storage> OpenBench(const std::string& dir) {
  StorageOptions o;
  o.dir = dir;
  o.wal_sync = false;
  o.flush_interval_ms = 0;
  o.max_sample_age_ms = 0;
  o.retention_ms = 0;
  auto db = Storage::Open(o);
  if (!db.ok()) abort();
  return std::move(*db);
}

std::unique_ptr<Storage> g_append_db;
std::atomic<int64_t> g_clock{0};

void BM_Append(benchmark::State& state) {
  if (state.thread_index() == 0) g_append_db = OpenBench(BenchDir("append"));
  std::vector<Labels> labels;
  for (int i = 0; i < kSeries; ++i) labels.push_back(NodeSeries(i));
  int next = state.thread_index() * 100;
  int64_t samples = 0;
  for (auto _ : state) {
    int64_t t0 = g_clock.fetch_add(10 * 15000);
    std::vector<SeriesBatch> batch(100);
    for (int s = 0; s < 100; ++s) {
      batch[s].labels = labels[(next + s) % kSeries];
      for (int j = 0; j < 10; ++j) batch[s].samples.push_back({t0 + j * 15000, double(t0 + j)});
    }
    next = (next + 100 * state.threads()) % kSeries;
    auto r = g_append_db->Append(batch);
    if (!r.ok()) state.SkipWithError("append failed");
    samples += r->appended;
  }
  state.SetItemsProcessed(samples);
  if (state.thread_index() == 0) {
    g_append_db.reset();
    std::filesystem::remove_all(BenchDir("append"));
  }
}
BENCHMARK(BM_Append)->Threads(1)->Threads(2)->UseRealTime();

void SelectBench(benchmark::State& state, bool flushed) {
  int n = state.range(0);
  std::string dir = BenchDir("select");
  auto db = OpenBench(dir);
  std::vector<SeriesBatch> batch;
  for (int i = 0; i < kSeries; ++i) {
    SeriesBatch b{NodeSeries(i), {}};
    for (int j = 0; j < 120; ++j) b.samples.push_back({j * 15000, double(i + j)});
    batch.push_back(std::move(b));
  }
  if (!db->Append(batch).ok()) abort();
  if (flushed && !db->Flush(true).ok()) abort();
  // n = 1: one series; 100: one group; 10000: every series.
  std::vector<LabelMatcher> matchers;
  if (n == 1) {
    matchers = {*LabelMatcher::Make(MatchType::kEqual, "instance", "host-0.example.com:9100"),
                *LabelMatcher::Make(MatchType::kEqual, "cpu", "0")};
  } else if (n == 100) {
    matchers = {*LabelMatcher::Make(MatchType::kEqual, "group", "7")};
  } else {
    matchers = {*LabelMatcher::Make(MatchType::kEqual, "__name__", "node_cpu_seconds_total")};
  }
  int64_t samples = 0;
  for (auto _ : state) {
    auto q = db->MakeQuerier(0, 120 * 15000);
    auto set = (*q)->Select(matchers, {});
    int found = 0;
    std::vector<Sample> out;
    while ((*set)->Next()) {
      ++found;
      out.clear();
      (void)(*set)->Samples()->AppendRange(0, 120 * 15000, &out);
      samples += out.size();
    }
    if (found != n) state.SkipWithError("wrong series count");
  }
  state.SetItemsProcessed(samples);
  db.reset();
  std::filesystem::remove_all(dir);
}

void BM_Select(benchmark::State& state) { SelectBench(state, false); }
void BM_SelectStored(benchmark::State& state) { SelectBench(state, true); }
BENCHMARK(BM_Select)->Arg(1)->Arg(100)->Arg(10000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SelectStored)->Arg(1)->Arg(100)->Arg(10000)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace strata
