// Node-exporter-like data for the PromQL benchmarks: 10,000 series over 24 h at a 15 s
// scrape interval, deterministic (fixed seed), loaded into a MemoryStore.
//
//   m{instance, job, mode, x}          4,000 counters (float seconds, 2 decimals, as
//                                      node_cpu_seconds_total); 100 instances x 4 modes x
//                                      10 x; every 37th instance restarts at noon (reset).
//   b_bucket{instance, handler, le}    3,600 classic histogram buckets; 100 instances x
//                                      3 handlers x 12 le (0.005 .. 10, +Inf); b_count and
//                                      b_sum beside them (600 series).
//   g{instance, device}                1,800 gauges (float random walk); 100 x 18.
//
// Timestamps: every instance is scraped at its own phase within the 15 s interval; 90% of
// scrapes are 0..2 ms late, 10% 3..25 ms (what a loaded scraper does).
#ifndef STRATA_BENCH_PROMQL_BENCH_DATA_H_
#define STRATA_BENCH_PROMQL_BENCH_DATA_H_

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "src/labels.h"
#include "src/sample.h"
#include "storage/memory_store.h"

namespace strata::bench {

inline constexpr Timestamp kDataStart = 1'699'920'000'000;  // 2023-11-14T00:00:00Z
inline constexpr int64_t kScrapeMs = 15'000;
inline constexpr int kScrapes = 24 * 3600 / 15;  // 5,760 per series
inline constexpr Timestamp kDataEnd = kDataStart + int64_t{kScrapes} * kScrapeMs;
inline constexpr int kInstances = 100;

// splitmix64: deterministic across platforms, unlike the <random> distributions.
class BenchRng {
 public:
  explicit BenchRng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1).
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  int64_t Below(int64_t n) { return static_cast<int64_t>(Next() % static_cast<uint64_t>(n)); }

 private:
  uint64_t state_;
};

inline std::string InstanceName(int i) { return absl::StrCat("host-", i); }

// Scrape times of one instance: its phase plus jitter, strictly increasing.
inline std::vector<Timestamp> ScrapeTimes(int instance, BenchRng& rng) {
  std::vector<Timestamp> ts(kScrapes);
  Timestamp phase = (int64_t{instance} * 1237) % kScrapeMs;
  for (int k = 0; k < kScrapes; ++k) {
    Timestamp jitter = rng.Below(10) == 0 ? 3 + rng.Below(23) : rng.Below(3);
    ts[k] = kDataStart + phase + int64_t{k} * kScrapeMs + jitter;
  }
  return ts;
}

inline double Round2(double v) { return std::round(v * 100) / 100; }

inline void MustAppend(MemoryStore& store, const Labels& labels,
                       const std::vector<Sample>& samples) {
  if (!store.AppendMany(labels, samples).ok()) std::abort();
}

// Fills `store` (expected empty) with the 10,000 series described above.
inline void LoadNodeExporterData(MemoryStore& store) {
  static constexpr std::array<const char*, 4> kModes = {"idle", "iowait", "system", "user"};
  static constexpr std::array<const char*, 3> kHandlers = {"/api/v1/query", "/api/v1/query_range",
                                                           "/metrics"};
  static constexpr std::array<double, 11> kBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                     0.5,   1,    2.5,   5,    10};
  static constexpr std::array<const char*, 12> kLe = {
      "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"};
  std::vector<Sample> samples(kScrapes);
  for (int inst = 0; inst < kInstances; ++inst) {
    BenchRng rng(0x5eed0000ULL + static_cast<uint64_t>(inst));
    const std::vector<Timestamp> ts = ScrapeTimes(inst, rng);
    const std::string instance = InstanceName(inst);
    const int restart_at = inst % 37 == 0 ? kScrapes / 2 : -1;

    for (const char* mode : kModes) {
      for (int x = 0; x < 10; ++x) {
        double rate = rng.Uniform();  // CPU seconds per second
        double v = rng.Uniform() * 1e6;
        for (int k = 0; k < kScrapes; ++k) {
          if (k == restart_at) v = 0;
          v += rate * 15 * (0.8 + 0.4 * rng.Uniform());
          samples[k] = {ts[k], Round2(v)};
        }
        const std::string xs = absl::StrCat("x", x);
        MustAppend(store,
                   Labels{{"__name__", "m"},
                          {"instance", instance},
                          {"job", "node"},
                          {"mode", mode},
                          {"x", xs}},
                   samples);
      }
    }

    for (const char* handler : kHandlers) {
      // Per-scrape bucket shares from a latency distribution centred per handler.
      double median = 0.02 + 0.2 * rng.Uniform();
      std::array<double, 12> share{};
      double prev_cdf = 0;
      for (size_t i = 0; i < kBounds.size(); ++i) {
        double cdf = 1 / (1 + std::pow(median / kBounds[i], 2.0));
        share[i] = cdf - prev_cdf;
        prev_cdf = cdf;
      }
      share[11] = 1 - prev_cdf;
      std::vector<std::vector<Sample>> buckets(12, std::vector<Sample>(kScrapes));
      std::vector<Sample> count(kScrapes), sum(kScrapes);
      std::array<double, 12> cum{};
      double total_sum = 0;
      for (int k = 0; k < kScrapes; ++k) {
        double n = static_cast<double>(20 + rng.Below(200));
        double running = 0;
        for (size_t i = 0; i < 12; ++i) {
          // `running` is this scrape's count at or below bound i: cumulative in le, so
          // every cum[i] <= cum[i + 1] at every scrape.
          running += std::round(n * share[i] * (0.7 + 0.6 * rng.Uniform()));
          cum[i] += running;
        }
        for (size_t i = 0; i < 12; ++i) buckets[i][k] = {ts[k], cum[i]};
        total_sum += n * median * (0.9 + 0.2 * rng.Uniform());
        count[k] = {ts[k], cum[11]};
        sum[k] = {ts[k], total_sum};
      }
      for (size_t i = 0; i < 12; ++i) {
        MustAppend(store,
                   Labels{{"__name__", "b_bucket"},
                          {"handler", handler},
                          {"instance", instance},
                          {"job", "node"},
                          {"le", kLe[i]}},
                   buckets[i]);
      }
      MustAppend(store,
                 Labels{{"__name__", "b_count"},
                        {"handler", handler},
                        {"instance", instance},
                        {"job", "node"}},
                 count);
      MustAppend(
          store,
          Labels{
              {"__name__", "b_sum"}, {"handler", handler}, {"instance", instance}, {"job", "node"}},
          sum);
    }

    for (int d = 0; d < 18; ++d) {
      double v = 1e9 * rng.Uniform();
      for (int k = 0; k < kScrapes; ++k) {
        v += (rng.Uniform() - 0.5) * 1e6;
        samples[k] = {ts[k], v};
      }
      MustAppend(store,
                 Labels{{"__name__", "g"},
                        {"device", absl::StrCat("sd", d)},
                        {"instance", instance},
                        {"job", "node"}},
                 samples);
    }
  }
}

}  // namespace strata::bench

#endif  // STRATA_BENCH_PROMQL_BENCH_DATA_H_
