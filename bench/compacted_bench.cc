// The compacted block codec (storage/compacted_block.cc) on node-exporter-like data
// (bench/node_exporter_data.h): size against XOR chunks, encode and decode speed.
// Figures go to bench/RESULTS.md ("Compacted partitions").
//
//   BM_CompactedEncode/noisy/window_h/bases
//                                       4 hosts x 242 series, one block per host and window
//                                       of window_h hours (24 = one partition); histogram
//                                       buckets coded against the bucket below in chains of
//                                       at most `bases` links (0: every series alone). Counters:
//                                       bytes_per_sample of the blocks, xor_bytes_per_sample
//                                       of 120-sample XOR chunks with their 1-byte encoding
//                                       and span header (no keys), ratio = compacted / XOR,
//                                       bucket_bytes_per_sample of blocks of the histogram
//                                       buckets alone.
//                                       items_per_second: samples encoded per second.
//   BM_CompactedDecode/noisy/window_h/bases
//                                       every series of every block decoded (a based series
//                                       decodes its chain again); ns_per_sample includes
//                                       decompressing the blocks.
//   BM_CompactedDecodeColumns/...       the same with the blocks already decompressed.
//   BM_CompactedDecodeColumnsReversed/... the same in descending ref order: every based
//                                       series decodes its whole chain of bases.
//   BM_CompactedRestarts/noisy/restart  24 h blocks with a restart every `restart` samples:
//                                       bytes_per_sample, and ns_per_sample of reading every
//                                       series from open blocks one hour at a time.
//   BM_CompactedClasses/noisy/noise_series
//                                       24 h blocks of each kind of series alone (CPU counters,
//                                       float gauges, ...): per kind, its share of the samples,
//                                       an information lower bound from the generator's random
//                                       draws, and what the codec spends, printed to stderr.
//                                       noise_series < 32: a less noisy variant (fewer of the
//                                       noisy gauges), see bench/node_exporter_data.h.
//   BM_OnDisk/noisy/bases               the real store: 10 hosts x 242 series x one day
//                                       (one partition) appended through Storage, flushed;
//                                       RocksDB's live SST bytes of all families after a
//                                       full RocksDB compaction, divided by the samples,
//                                       first as XOR chunks (xor_disk_bytes_per_sample),
//                                       then after Storage::Compact (disk_bytes_per_sample),
//                                       keys, postings and series included. Also the
//                                       compaction's samples/s and a Select of every series
//                                       over the day before and after (query_ns_per_sample),
//                                       both in CPU time of the calling thread.
//   BM_OpenDay/ratio_pct/hosts          a day written with a flush and a compaction every
//                                       minute, open all day: re-encoding factor and CPU of
//                                       the open-partition policy, disk and Select cost over
//                                       the last hours at 12:00, Close's CPU (comment below).

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "bench/node_exporter_data.h"
#include "benchmark/benchmark.h"
#include "src/matcher.h"
#include "storage/compacted_block.h"
#include "storage/db.h"
#include "storage/histogram_bases.h"
#include "storage/xor_chunk.h"

namespace strata {
namespace {

constexpr int kHosts = 4;
constexpr int kScrapesPerHour = 240;

struct Blocks {
  std::vector<std::string> values;
  int64_t samples = 0;
  int64_t xor_bytes = 0;
};

// Bases as compaction chooses them (storage/histogram_bases.h); max_base_depth 0: none.
struct Group {
  std::vector<CompactedSeries> series;
  CompactedEncodeOptions options;
  std::vector<CompactedSeries> buckets;  // the histogram buckets alone, for their share
  std::vector<Labels> labels;            // of `series`
};

// `noise_series` and `entropy` (one per host): see bench::NodeExporterHost.
std::vector<Group> Groups(bool noisy, int window_h, int max_base_depth, int noise_series = 32,
                          std::vector<bench::NodeExporterEntropy>* entropy = nullptr,
                          std::vector<std::vector<bench::BenchSeries>>* hosts = nullptr) {
  std::vector<Group> groups;
  SeriesRef ref = 1;
  const Timestamp window = int64_t{window_h} * 3600 * 1000;
  if (entropy != nullptr) entropy->resize(kHosts);
  for (int h = 0; h < kHosts; ++h) {
    auto host = bench::NodeExporterHost(h, 24 * kScrapesPerHour, noisy, 1700000000000, noise_series,
                                        entropy ? &(*entropy)[h] : nullptr);
    const Timestamp start = 1700000000000 - 1700000000000 % window;
    for (int w = 0; w <= 24 / window_h; ++w) {
      Group g;
      g.options.max_base_depth = max_base_depth;
      std::vector<Labels> labels;
      for (size_t i = 0; i < host.size(); ++i) {
        CompactedSeries s{.ref = ref + i, .samples = {}, .base = {}};
        for (const Sample& x : host[i].samples) {
          if (x.t >= start + w * window && x.t < start + (w + 1) * window) s.samples.push_back(x);
        }
        if (!s.samples.empty()) {
          g.series.push_back(std::move(s));
          labels.push_back(host[i].labels);
        }
      }
      AssignHistogramBases(g.series, labels);
      for (size_t i = 0; i < g.series.size(); ++i) {
        if (labels[i].MetricName().ends_with("_bucket")) g.buckets.push_back(g.series[i]);
      }
      g.labels = std::move(labels);
      if (!g.series.empty()) groups.push_back(std::move(g));
    }
    ref += host.size();
    if (hosts != nullptr) hosts->push_back(std::move(host));
  }
  return groups;
}

int64_t XorBytes(const std::vector<Sample>& s) {
  int64_t bytes = 0;
  for (size_t i = 0; i < s.size(); i += 120) {
    std::span<const Sample> part(s.data() + i, std::min<size_t>(120, s.size() - i));
    // As Prometheus' head appends them (EncodeXorChunk would choose windows better).
    XorChunkAppender a;
    for (const Sample& x : part) (void)a.Append(x.t, x.v);
    bytes += static_cast<int64_t>(a.bytes().size()) + 1 +
             (part.back().t - part.front().t >= 16384 ? 3 : 2);
  }
  return bytes;
}

void SetRate(benchmark::State& state, int64_t samples) {
  const double total = double(samples) * double(state.iterations());
  state.SetItemsProcessed(int64_t(total));
  state.counters["ns_per_sample"] =
      benchmark::Counter(total * 1e-9, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

std::vector<Group> Groups(const benchmark::State& state) {
  return Groups(state.range(0) != 0, static_cast<int>(state.range(1)),
                static_cast<int>(state.range(2)));
}

void BM_CompactedEncode(benchmark::State& state) {
  auto groups = Groups(state);
  int64_t samples = 0, xor_bytes = 0, bytes = 0;
  for (const auto& g : groups) {
    for (const auto& s : g.series) {
      samples += static_cast<int64_t>(s.samples.size());
      xor_bytes += XorBytes(s.samples);
    }
  }
  for (auto _ : state) {
    bytes = 0;
    for (const auto& g : groups) {
      bytes += static_cast<int64_t>(EncodeCompactedBlock(g.series, g.options)->size());
    }
  }
  SetRate(state, samples);
  int64_t bucket_samples = 0, bucket_bytes = 0;
  for (const auto& g : groups) {
    if (g.buckets.empty()) continue;
    bucket_bytes += static_cast<int64_t>(EncodeCompactedBlock(g.buckets, g.options)->size());
    for (const auto& s : g.buckets) bucket_samples += static_cast<int64_t>(s.samples.size());
  }
  state.counters["bucket_bytes_per_sample"] = double(bucket_bytes) / double(bucket_samples);
  state.counters["bytes_per_sample"] = double(bytes) / double(samples);
  state.counters["xor_bytes_per_sample"] = double(xor_bytes) / double(samples);
  state.counters["ratio"] = double(bytes) / double(xor_bytes);
}

void BM_CompactedDecode(benchmark::State& state) {
  auto groups = Groups(state);
  std::vector<std::string> values;
  int64_t samples = 0;
  for (const auto& g : groups) {
    values.push_back(*EncodeCompactedBlock(g.series, g.options));
    for (const auto& s : g.series) samples += static_cast<int64_t>(s.samples.size());
  }
  std::vector<Sample> out;
  for (auto _ : state) {
    for (const std::string& v : values) {
      auto b = CompactedBlock::Open(v);
      for (size_t i = 0; i < b->num_series(); ++i) {
        out.clear();
        if (!b->Decode(i, &out).ok()) state.SkipWithError("decode");
        benchmark::DoNotOptimize(out.data());
      }
    }
  }
  SetRate(state, samples);
}

// Every series of every block decoded, blocks already decompressed; `reversed`: in
// descending ref order, so that no series finds its base decoded just before it and every
// based series decodes its whole chain (the cost of reading one bucket alone).
void DecodeColumns(benchmark::State& state, bool reversed) {
  auto groups = Groups(state);
  std::vector<CompactedBlock> blocks;
  int64_t samples = 0;
  for (const auto& g : groups) {
    blocks.push_back(*CompactedBlock::Open(*EncodeCompactedBlock(g.series, g.options)));
    for (const auto& s : g.series) samples += static_cast<int64_t>(s.samples.size());
  }
  std::vector<Sample> out;
  for (auto _ : state) {
    for (const CompactedBlock& b : blocks) {
      const size_t n = b.num_series();
      for (size_t k = 0; k < n; ++k) {
        out.clear();
        if (!b.Decode(reversed ? n - 1 - k : k, &out).ok()) state.SkipWithError("decode");
        benchmark::DoNotOptimize(out.data());
      }
    }
  }
  SetRate(state, samples);
}

void BM_CompactedDecodeColumns(benchmark::State& state) { DecodeColumns(state, false); }
void BM_CompactedDecodeColumnsReversed(benchmark::State& state) { DecodeColumns(state, true); }

// bases: max_base_depth (0: every series alone; 16: compaction's default).
void Args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"noisy", "window_h", "bases"});
  for (int noisy : {0, 1}) {
    for (int w : {2, 24}) {
      for (int depth : {0, kCompactedMaxBaseDepth}) b->Args({noisy, w, depth});
    }
  }
  b->Unit(benchmark::kMillisecond);
}

// Chain depth against size and decode time, on one day of realistic data.
void DepthArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"noisy", "window_h", "bases"});
  for (int depth : {1, 3, 4, 8}) b->Args({0, 24, depth});
  b->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_CompactedEncode)->Apply(Args)->Apply(DepthArgs);
BENCHMARK(BM_CompactedDecode)->Apply(Args);
BENCHMARK(BM_CompactedDecodeColumns)->Apply(Args)->Apply(DepthArgs);
BENCHMARK(BM_CompactedDecodeColumnsReversed)->Apply(Args)->Apply(DepthArgs);

// The series of bench/node_exporter_data.h by kind, for BM_CompactedClasses.
enum SeriesClass {
  kCpu,
  kNetMoving,
  kNetRare,
  kMemMoving,
  kMemConstant,
  kLoadTemp,
  kIntGauge,
  kNsCounter,
  kFloatGauge,
  kBucketAndCount,
  kHistogramSum,
  kNumClasses
};
constexpr const char* kClassNames[] = {"CPU seconds counters",
                                       "network byte/packet counters",
                                       "network error counters",
                                       "memory gauges, moving",
                                       "memory gauges, constant",
                                       "load averages, temperatures",
                                       "integer gauges",
                                       "ns seconds counters",
                                       "full-precision float gauges",
                                       "histogram buckets and _count",
                                       "histogram _sum"};

SeriesClass ClassOf(const Labels& l, bool noisy, int noise_series) {
  const std::string_view name = l.MetricName();
  const std::string_view n = l.Get("n");
  const int i = n.empty() || n == "new" ? -1 : std::atoi(std::string(n).c_str());
  if (name == "node_cpu_seconds_total") return kCpu;
  if (name == "node_network_total") return i < 20 ? kNetMoving : kNetRare;
  if (name == "node_memory_bytes") return i < 10 ? kMemMoving : kMemConstant;
  if (name == "node_load" || name == "node_hwmon_temp_celsius") return kLoadTemp;
  if (name == "node_other") {
    if (noisy && i < noise_series / 2) return kNsCounter;
    if (noisy && i >= 16 && i < 16 + noise_series - noise_series / 2) return kFloatGauge;
    return kIntGauge;
  }
  if (name.ends_with("_sum")) return kHistogramSum;
  return kBucketAndCount;
}

// Per kind of series (bench/node_exporter_data.h), 24 h blocks as BM_CompactedEncode's
// (bases and restarts as compaction writes them): the share of the samples, an information
// lower bound from the generator's random draws (NodeExporterEntropy), and what blocks of
// that kind's series alone cost, less a block of their timestamps alone (one constant
// series), all in bytes per sample of that kind; the table goes to stderr.
// noise_series: how many of the 32 "other" gauges are noise in the noisy variant (32:
// the noisy variant of the other benchmarks; fewer: a less noisy variant, see RESULTS.md).
void BM_CompactedClasses(benchmark::State& state) {
  const bool noisy = state.range(0) != 0;
  const int noise_series = static_cast<int>(state.range(1));
  std::vector<bench::NodeExporterEntropy> entropy;
  std::vector<std::vector<bench::BenchSeries>> hosts;
  std::vector<Group> groups =
      Groups(noisy, 24, kCompactedMaxBaseDepth, noise_series, &entropy, &hosts);
  double bound_bits[kNumClasses] = {}, bound_ts_bits = 0;
  for (size_t h = 0; h < hosts.size(); ++h) {
    bound_ts_bits += entropy[h].timestamp_bits;
    for (size_t i = 0; i < hosts[h].size(); ++i) {
      bound_bits[ClassOf(hosts[h][i].labels, noisy, noise_series)] += entropy[h].series_bits[i];
    }
  }
  int64_t samples[kNumClasses] = {}, bytes[kNumClasses] = {};
  int64_t total_samples = 0, total_bytes = 0, ts_bytes = 0, xor_bytes = 0;
  for (auto _ : state) {
    for (const Group& g : groups) {
      total_bytes += static_cast<int64_t>(EncodeCompactedBlock(g.series, g.options)->size());
      std::vector<CompactedSeries> ts_only = {
          {.ref = 1, .samples = g.series[0].samples, .base = {}}};
      for (Sample& x : ts_only[0].samples) x.v = 0;
      const int64_t ts = static_cast<int64_t>(EncodeCompactedBlock(ts_only, g.options)->size());
      ts_bytes += ts;
      for (int c = 0; c < kNumClasses; ++c) {
        std::vector<CompactedSeries> part;
        for (size_t i = 0; i < g.series.size(); ++i) {
          if (ClassOf(g.labels[i], noisy, noise_series) != c) continue;
          part.push_back(g.series[i]);
          samples[c] += static_cast<int64_t>(g.series[i].samples.size());
          total_samples += static_cast<int64_t>(g.series[i].samples.size());
          xor_bytes += XorBytes(g.series[i].samples);
        }
        for (CompactedSeries& s : part) {
          // A base outside the part (the +Inf bucket of a _sum's family...) is dropped.
          if (s.base && std::none_of(part.begin(), part.end(),
                                     [&](const CompactedSeries& b) { return b.ref == *s.base; })) {
            s.base.reset();
          }
        }
        if (!part.empty())
          bytes[c] += static_cast<int64_t>(EncodeCompactedBlock(part, g.options)->size()) - ts;
      }
    }
  }
  const double n = double(total_samples);
  double bound_total = bound_ts_bits / 8, parts_total = double(ts_bytes);
  std::fprintf(stderr, "\nnoisy %d, noise_series %d: B/sample of each kind's samples\n", noisy,
               noise_series);
  std::fprintf(stderr, "%-30s %7s %7s %9s %7s %11s\n", "kind", "share", "bound", "achieved", "gap",
               "gap overall");
  for (int c = 0; c < kNumClasses; ++c) {
    if (samples[c] == 0) continue;
    const double s = double(samples[c]), b = bound_bits[c] / 8 / s, a = double(bytes[c]) / s;
    bound_total += bound_bits[c] / 8;
    parts_total += double(bytes[c]);
    std::fprintf(stderr, "%-30s %6.1f%% %7.3f %9.3f %6.0f%% %11.4f\n", kClassNames[c], 100 * s / n,
                 b, a, b > 0 ? 100 * (a - b) / b : 0.0, (a - b) * s / n);
  }
  std::fprintf(stderr, "%-30s %7s %7.4f %9.4f %6s %11.4f\n", "timestamps (per sample of all)", "",
               bound_ts_bits / 8 / n, double(ts_bytes) / n, "",
               (double(ts_bytes) - bound_ts_bits / 8) / n);
  std::fprintf(stderr, "%-30s %7s %7.4f %9.4f %5.0f%%   (kinds apart)\n", "all", "",
               bound_total / n, parts_total / n, 100 * (parts_total - bound_total) / bound_total);
  std::fprintf(stderr, "%-30s %7s %7s %9.4f   (blocks of all series; XOR %.3f)\n", "all", "", "",
               double(total_bytes) / n, double(xor_bytes) / n);
  state.counters["bytes_per_sample"] = double(total_bytes) / n;
  state.counters["xor_bytes_per_sample"] = double(xor_bytes) / n;
  state.counters["bound_bytes_per_sample"] = bound_total / n;
}
BENCHMARK(BM_CompactedClasses)
    ->ArgNames({"noisy", "noise_series"})
    ->Args({0, 0})
    ->Args({1, 32})
    ->Args({1, 16})
    ->Args({1, 8})
    ->Args({1, 4})
    ->Args({1, 2})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

// Restart points against size and the read of one hour: 4 hosts' day (24 h blocks, bases
// as compaction chooses them) encoded with a restart every `restart` samples (0: none);
// bytes_per_sample of the blocks, and per iteration every series of every block read one
// hour at a time, each of the day's 24 hours in turn (blocks open; ns_per_sample: per
// sample read).
void BM_CompactedRestarts(benchmark::State& state) {
  const bool noisy = state.range(0) != 0;
  std::vector<Group> groups = Groups(noisy, 24, kCompactedMaxBaseDepth);
  std::vector<CompactedBlock> blocks;
  int64_t samples = 0, bytes = 0;
  Timestamp day = std::numeric_limits<Timestamp>::max();
  for (Group& g : groups) {
    g.options.restart_interval = static_cast<uint32_t>(state.range(1));
    const std::string value = *EncodeCompactedBlock(g.series, g.options);
    bytes += static_cast<int64_t>(value.size());
    blocks.push_back(*CompactedBlock::Open(value));
    for (const auto& s : g.series) {
      samples += static_cast<int64_t>(s.samples.size());
      day = std::min(day, s.samples.front().t);
    }
  }
  std::vector<Sample> out;
  int64_t read = 0;
  for (auto _ : state) {
    read = 0;
    for (int h = 0; h < 24; ++h) {
      const Timestamp mint = day + h * 3600 * 1000, maxt = mint + 3600 * 1000 - 1;
      for (const CompactedBlock& b : blocks) {
        for (size_t i = 0; i < b.num_series(); ++i) {
          out.clear();
          if (!b.Decode(i, &out, mint, maxt).ok()) state.SkipWithError("decode");
          read += static_cast<int64_t>(out.size());
        }
      }
    }
  }
  SetRate(state, read);
  state.counters["bytes_per_sample"] = double(bytes) / double(samples);
}
BENCHMARK(BM_CompactedRestarts)
    ->ArgNames({"noisy", "restart"})
    ->ArgsProduct({{0, 1}, {0, 256, 512, 1024, 2048}})
    ->Unit(benchmark::kMicrosecond);

// CPU time of the calling thread (the machine is shared: wall time says little).
double ThreadSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

uint64_t TotalSst(Storage& db, const char* label) {
  auto sizes = db.store().LiveSstBytes(true);
  if (!sizes.ok()) abort();
  uint64_t total = 0;
  std::string line;
  for (const auto& [name, bytes] : *sizes) {
    total += bytes;
    line += " " + name + "=" + std::to_string(bytes);
  }
  std::fprintf(stderr, "%s SST bytes:%s\n", label, line.c_str());
  return total;
}

// Reads every sample of every series over [mint, maxt]; returns samples read.
int64_t ReadAllSamples(Storage& db, Timestamp mint, Timestamp maxt) {
  auto q = db.MakeQuerier(mint, maxt);
  auto m = LabelMatcher::Make(MatchType::kEqual, "job", "node");
  auto set = (*q)->Select({*m}, {});
  int64_t n = 0;
  std::vector<Sample> out;
  while ((*set)->Next()) {
    out.clear();
    if (!(*set)->Samples()->AppendRange(mint, maxt, &out).ok()) abort();
    n += static_cast<int64_t>(out.size());
  }
  return n;
}

constexpr int64_t kDay = 24 * 3600 * 1000;
constexpr Timestamp kDayStart = 1700000000000 / kDay * kDay;

std::string BenchDir(const char* name) {
  return (std::filesystem::temp_directory_path() /
          (std::string(name) + "_" + std::to_string(::getpid())))
      .string();
}

StorageOptions DayStoreOptions(const std::string& dir, int max_base_depth) {
  StorageOptions o;
  o.dir = dir;
  o.wal_sync = false;
  o.flush_interval_ms = 0;
  o.max_sample_age_ms = 3600 * 1000;
  o.retention_ms = 0;
  o.background_compaction = false;
  o.compaction.max_base_depth = max_base_depth;
  return o;
}

// Appends `hosts` hosts' scrapes of one day to `db`, host by host interleaved in time as a
// server gets them, calling after(k) after scrape k; returns the samples appended.
template <typename After>
int64_t AppendDay(Storage& db, int hosts, bool noisy, After after) {
  std::vector<std::vector<bench::BenchSeries>> data;
  for (int h = 0; h < hosts; ++h) {
    data.push_back(bench::NodeExporterHost(h, 24 * kScrapesPerHour - 2, noisy, kDayStart));
  }
  int64_t samples = 0;
  std::vector<size_t> pos(hosts * bench::kSeriesPerHost * 2, 0);
  for (int k = 0; k < 24 * kScrapesPerHour; ++k) {
    std::vector<SeriesBatch> batch;
    for (int h = 0; h < hosts; ++h) {
      if (k >= static_cast<int>(data[h][0].samples.size())) continue;
      const Timestamp scrape = data[h][0].samples[k].t;  // series 0 is in every scrape
      for (size_t i = 0; i < data[h].size(); ++i) {
        const auto& s = data[h][i];
        size_t& p = pos[h * (bench::kSeriesPerHost + 1) + i];
        if (p < s.samples.size() && s.samples[p].t == scrape) {
          batch.push_back({s.labels, {s.samples[p]}});
          ++p;
        }
      }
    }
    auto r = db.Append(batch);
    if (!r.ok()) abort();
    samples += r->appended;
    after(k);
  }
  return samples;
}

// A new store in `dir` holding `hosts` hosts' scrapes of one day (one partition, closed by
// one sample two hours into the next day), flushed as XOR chunks. `samples`: appended.
std::unique_ptr<Storage> DayStore(const std::string& dir, int hosts, bool noisy, int max_base_depth,
                                  int64_t* samples) {
  std::filesystem::remove_all(dir);
  auto db = Storage::Open(DayStoreOptions(dir, max_base_depth));
  if (!db.ok()) abort();
  *samples = AppendDay(**db, hosts, noisy, [&](int k) {
    if (k % 480 == 479 && !(*db)->Flush(false).ok()) abort();
  });
  std::vector<SeriesBatch> tick = {
      {Labels{{"__name__", "bench_clock"}}, {{kDayStart + kDay + 2 * 3600 * 1000, 1}}}};
  if (!(*db)->Append(tick).ok() || !(*db)->Flush(true).ok()) abort();
  return std::move(*db);
}

void BM_OnDisk(benchmark::State& state) {
  const bool noisy = state.range(0) != 0;
  const int max_base_depth = static_cast<int>(state.range(1));
  constexpr int kDiskHosts = 10;
  const Timestamp day = kDayStart;
  std::string dir = BenchDir("strata_bench_ondisk");
  for (auto _ : state) {
    int64_t samples = 0;
    std::unique_ptr<Storage> db = DayStore(dir, kDiskHosts, noisy, max_base_depth, &samples);
    uint64_t xor_bytes = TotalSst(*db, "XOR chunks");
    double start = ThreadSeconds();
    int64_t read = ReadAllSamples(*db, day, day + kDay - 1);
    double xor_query = ThreadSeconds() - start;
    start = ThreadSeconds();
    if (!db->Compact().ok()) abort();
    double compact_seconds = ThreadSeconds() - start;
    CompactionStats cs = db->stats().compaction;
    uint64_t compacted_bytes = TotalSst(*db, "compacted");
    start = ThreadSeconds();
    int64_t read2 = ReadAllSamples(*db, day, day + kDay - 1);
    double compacted_query = ThreadSeconds() - start;
    if (read != samples || read2 != samples || cs.samples != samples) {
      std::fprintf(stderr, "appended %lld, read %lld / %lld, compacted %lld\n",
                   static_cast<long long>(samples), static_cast<long long>(read),
                   static_cast<long long>(read2), static_cast<long long>(cs.samples));
      state.SkipWithError("sample counts differ");
    }
    state.counters["samples"] = double(samples);
    state.counters["xor_disk_bytes_per_sample"] = double(xor_bytes) / double(samples);
    state.counters["disk_bytes_per_sample"] = double(compacted_bytes) / double(samples);
    state.counters["ratio"] = double(compacted_bytes) / double(xor_bytes);
    state.counters["compaction_samples_per_s"] = double(samples) / compact_seconds;
    state.counters["xor_query_ns_per_sample"] = xor_query * 1e9 / double(samples);
    state.counters["query_ns_per_sample"] = compacted_query * 1e9 / double(samples);
    if (!db->Close().ok()) abort();
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_OnDisk)
    ->ArgNames({"noisy", "bases"})
    ->ArgsProduct({{0, 1}, {0, kCompactedMaxBaseDepth}})
    ->Iterations(1)
    ->Unit(benchmark::kSecond);

// The query alone: `hosts` hosts' day stored once (as XOR chunks, or compacted), then every
// iteration one Select of every series with every sample in [day + from_h, day + to_h)
// read, as in BM_OnDisk. `cold`: the store is closed and opened again before each Select
// (not timed), so that the Select is the first read of its blocks (RocksDB reads and zstd
// included); otherwise they come from the store's cache of decoded blocks after the first
// iteration. Small enough for callgrind with
// --toggle-collect='strata::(anonymous namespace)::ReadAllSamples*'.
void BM_Query(benchmark::State& state) {
  const bool compacted = state.range(0) != 0;
  const int hosts = static_cast<int>(state.range(1));
  const Timestamp mint = kDayStart + state.range(2) * 3600 * 1000;
  const Timestamp maxt = kDayStart + state.range(3) * 3600 * 1000 - 1;
  const bool cold = state.range(4) != 0;
  std::string dir = BenchDir("strata_bench_query");
  int64_t appended = 0;
  std::unique_ptr<Storage> db =
      DayStore(dir, hosts, /*noisy=*/false, kCompactedMaxBaseDepth, &appended);
  if (compacted && !db->Compact().ok()) abort();
  int64_t samples = 0;
  double seconds = 0;
  for (auto _ : state) {
    if (cold) {
      state.PauseTiming();
      if (!db->Close().ok()) abort();
      db.reset();
      auto reopened = Storage::Open(DayStoreOptions(dir, kCompactedMaxBaseDepth));
      if (!reopened.ok()) abort();
      db = std::move(*reopened);
      state.ResumeTiming();
    }
    const double start = ThreadSeconds();
    samples += ReadAllSamples(*db, mint, maxt);
    seconds += ThreadSeconds() - start;
  }
  state.counters["samples"] = double(samples) / double(state.iterations());
  state.counters["cpu_ns_per_sample"] = seconds * 1e9 / double(samples);
  if (!db->Close().ok()) abort();
  db.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_Query)
    ->ArgNames({"compacted", "hosts", "from_h", "to_h", "cold"})
    ->Args({0, 2, 0, 24, 0})
    ->Args({1, 2, 0, 24, 0})
    ->Args({0, 10, 0, 24, 0})
    ->Args({1, 10, 0, 24, 0})
    ->Args({1, 10, 11, 12, 0})
    ->Args({1, 2, 11, 12, 0})
    // One hour of a compacted day, as a dashboard zoomed into yesterday asks: the first
    // Select after opening the store, and repeated.
    ->Args({0, 10, 11, 12, 1})
    ->Args({1, 10, 11, 12, 1})
    ->Args({1, 10, 20, 21, 0})
    ->Args({1, 10, 20, 21, 1})
    ->Unit(benchmark::kMillisecond);

// A day written as a server writes it: `hosts` hosts' scrapes, a flush and a
// Storage::Compact after every minute (as the flush loop does), the day open throughout
// (max_sample_age_ms one day); open_merge_ratio = ratio_pct / 100 (0: the open day stays
// XOR chunks, as before open partitions were compacted). Counters, CPU time of the calling
// thread: reencoded = samples written into blocks / samples appended over the day;
// compaction_ns_per_sample = the compactions' CPU time / samples appended; at 12:00, with
// the head as the flush left it, RocksDB's live SST bytes per sample stored (after a full
// RocksDB compaction) and a Select of every series over the last hour and the last six
// (query_1h / query_6h, ns per sample read; the store's cache of decoded blocks as the
// last compaction left it); then Close's CPU time (it compacts what is left, within
// close_max_samples).
void BM_OpenDay(benchmark::State& state) {
  const double ratio = static_cast<double>(state.range(0)) / 100;
  const int hosts = static_cast<int>(state.range(1));
  std::string dir = BenchDir("strata_bench_openday");
  for (auto _ : state) {
    std::filesystem::remove_all(dir);
    StorageOptions o = DayStoreOptions(dir, kCompactedMaxBaseDepth);
    o.max_sample_age_ms = kDay;
    o.background_compaction = true;  // Close compacts
    o.compaction.open_merge_ratio = ratio;
    auto db = Storage::Open(o);
    if (!db.ok()) abort();
    double compact_seconds = 0;
    auto step = [&](int k) {
      if (k % 4 != 3) return;
      if (!(*db)->Flush(false).ok()) abort();
      const double start = ThreadSeconds();
      if (!(*db)->Compact().ok()) abort();
      compact_seconds += ThreadSeconds() - start;
      if (k != 12 * kScrapesPerHour - 1) return;
      const Timestamp now = kDayStart + 12 * 3600 * 1000 - 1;
      for (int hours : {1, 6}) {
        const double q = ThreadSeconds();
        const int64_t read = ReadAllSamples(**db, now - hours * 3600 * 1000 + 1, now);
        state.counters["query_" + std::to_string(hours) + "h_ns_per_sample"] =
            (ThreadSeconds() - q) * 1e9 / static_cast<double>(read);
      }
      const int64_t stored = ReadAllSamples(**db, kDayStart, now);
      state.counters["midday_disk_bytes_per_sample"] =
          static_cast<double>(TotalSst(**db, "12:00")) / static_cast<double>(stored);
    };
    const int64_t samples = AppendDay(**db, hosts, /*noisy=*/false, step);
    CompactionStats cs = (*db)->stats().compaction;
    state.counters["samples"] = static_cast<double>(samples);
    state.counters["reencoded"] = static_cast<double>(cs.samples) / static_cast<double>(samples);
    state.counters["compaction_ns_per_sample"] =
        compact_seconds * 1e9 / static_cast<double>(samples);
    const double start = ThreadSeconds();
    if (!(*db)->Close().ok()) abort();
    state.counters["close_s"] = ThreadSeconds() - start;
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_OpenDay)
    ->ArgNames({"ratio_pct", "hosts"})
    ->ArgsProduct({{0, 25, 50, 100}, {2}})
    ->Iterations(1)
    ->Unit(benchmark::kSecond);

}  // namespace
}  // namespace strata
