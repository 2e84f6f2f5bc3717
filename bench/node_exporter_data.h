// Node-exporter-like sample data for the storage size benchmarks (deterministic).
//
// Each host is scraped every 15 s and all series of the host share the scrape's timestamp
// exactly. Nine scrapes in ten are exactly 15 s after the previous one (Prometheus snaps
// jitter up to 2 ms to the schedule); the tenth is off by 3..25 ms. Per host, 242 series:
//   - 64 CPU-seconds counters (8 CPUs x 8 modes): two decimals, as node exporter prints
//     them, growing by rate x 15 s +-50% (idle 0.9/s, user 0.05/s, ... steal and irq 0);
//   - 40 network counters: integers; 10 byte counters (+0..2e5 per scrape), 10 packet
//     counters (+0..300), 20 error/drop counters that move once in 100 scrapes;
//   - 40 memory/filesystem gauges: whole multiples of 4096 bytes; 10 move by -200..200
//     pages on every other scrape, 30 are constant (sizes, limits);
//   - 24 small gauges: load averages and temperatures with two or one decimals;
//   - 32 "other" gauges. Realistic variant: integers (fds, processes, entropy) that
//     change now and then. Noisy variant: 16 seconds counters with nanosecond resolution
//     (schedstat, pressure stall: 12345.678901234) and 16 full-precision float gauges
//     (ratios, quantiles: every bit noise), all changing on every scrape.
//   - 42 series of 3 classic histograms (request durations of 3 handlers of the exporter's
//     HTTP server): 12 cumulative buckets each (le 0.005 ... 10, +Inf), then _sum and
//     _count, in exposition order. 2..40 requests per second per handler (+-30% per
//     scrape), latencies log-normal around a per-handler median of 20..200 ms: most
//     observations land in the middle buckets, the low ones stay nearly constant. _count
//     equals the +Inf bucket; _sum is a float accumulated in floating point (noise in the
//     low bits, as client libraries produce).
// A stale marker ends one series per host at 90% of the range and a new one starts.
//
// `noise_series` (noisy variant only; 32 by default, the variant above) is how many of the
// 32 "other" gauges are noise: `noise_series / 2` seconds counters and the rest float
// gauges; the others stay integer gauges as in the realistic variant. A smaller number is
// a separate, less noisy variant (bench/RESULTS.md); it draws other random numbers.
//
// `entropy`, if given, receives for each series (same order as the result) the entropy in
// bits of the random draws its samples depend on, given the series' constants (start
// value, rate, ...), and that of the host's timestamps: a lower bound on what any coder
// of these samples must spend (start values and constants, a few bytes per series, left
// out). Where a draw is continuous, the entropy is that of the sample it rounds to.
#ifndef STRATA_BENCH_NODE_EXPORTER_DATA_H_
#define STRATA_BENCH_NODE_EXPORTER_DATA_H_

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "src/labels.h"
#include "src/sample.h"

namespace strata::bench {

struct BenchSeries {
  Labels labels;
  std::vector<Sample> samples;
};

inline constexpr int kSeriesPerHost = 242;

struct NodeExporterEntropy {
  std::vector<double> series_bits;  // per series, all its samples
  double timestamp_bits = 0;        // the host's timestamps, once
};

namespace entropy {

inline double Bits(double p) { return p > 0 ? -p * std::log2(p) : 0; }

// H(floor(c * U)) for U uniform on [a, b], c >= 0.
inline double FloorOfScaledUniform(double c, double a, double b) {
  if (c <= 0) return 0;
  double h = 0;
  for (double k = std::floor(c * a); k <= std::floor(c * b); ++k) {
    const double lo = std::max(k / c, a), hi = std::min((k + 1) / c, b);
    if (hi > lo) h += Bits((hi - lo) / (b - a));
  }
  return h;
}

// H(floor(e * U + W)) for U uniform on [0.5, 1.5] and W on [0, 1] (a histogram band).
inline double BandIncrement(double e) {
  if (e < 1e-6) return 0;
  auto g = [](double t) { return t <= 0 ? 0 : t <= 1 ? t * t / 2 : t - 0.5; };
  auto cdf = [&](double y) { return (g(y - 0.5 * e) - g(y - 1.5 * e)) / e; };
  double h = 0;
  for (double k = std::floor(0.5 * e); k <= std::floor(1.5 * e + 1); ++k) {
    h += Bits(cdf(k + 1) - cdf(k));
  }
  return h;
}

// log2 of the number of doubles in [lo, hi], 0 < lo < hi: the entropy of a value spread
// evenly over the range at finer than their spacing.
inline double DoublesBetween(double lo, double hi) {
  return std::log2(static_cast<double>(std::bit_cast<int64_t>(hi) - std::bit_cast<int64_t>(lo)));
}

}  // namespace entropy

inline std::vector<BenchSeries> NodeExporterHost(int host, int scrapes, bool noisy,
                                                 Timestamp start = 1700000000000,
                                                 int noise_series = 32,
                                                 NodeExporterEntropy* entropy = nullptr) {
  using entropy::Bits;
  if (entropy != nullptr) {
    entropy->series_bits.clear();
    // One scrape in ten off by one of 46 offsets.
    entropy->timestamp_bits = (scrapes - 1) * (Bits(0.9) + 46 * Bits(0.1 / 46));
  }
  // Adds `bits` to the last series added.
  auto count = [&](double bits) {
    if (entropy != nullptr) entropy->series_bits.back() += bits;
  };
  std::mt19937_64 rng(static_cast<uint64_t>(host) * 7919 + (noisy ? 1 : 0));
  auto uni = [&](double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(rng);
  };
  auto integer = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  std::string instance = "host-" + std::to_string(host) + ".example.com:9100";
  std::vector<Timestamp> ts;
  Timestamp t = start + integer(0, 14999);
  for (int i = 0; i < scrapes; ++i) {
    ts.push_back(t);
    // Prometheus snaps scrape times within 2 ms of the schedule; one scrape in ten is
    // further off and keeps its jitter.
    t += 15000 + (integer(0, 9) == 0 ? integer(3, 25) * (integer(0, 1) ? 1 : -1) : 0);
  }
  std::vector<BenchSeries> out;
  auto add = [&](std::vector<std::pair<std::string, std::string>> extra, std::string name) {
    std::vector<std::pair<std::string, std::string>> l = {
        {"__name__", std::move(name)}, {"instance", instance}, {"job", "node"}};
    for (auto& e : extra) l.push_back(std::move(e));
    out.push_back({Labels::FromPairs(std::move(l)), {}});
    out.back().samples.reserve(scrapes);
    if (entropy != nullptr) entropy->series_bits.push_back(0);
    return &out.back().samples;
  };
  out.reserve(kSeriesPerHost + 1);
  const char* modes[] = {"user", "system", "idle", "iowait", "irq", "softirq", "steal", "nice"};
  for (int cpu = 0; cpu < 8; ++cpu) {
    for (int m = 0; m < 8; ++m) {
      auto* s = add({{"cpu", std::to_string(cpu)}, {"mode", modes[m]}}, "node_cpu_seconds_total");
      const double rates[] = {0.05, 0.02, 0.9, 0.005, 0, 0.002, 0, 0.001};
      double rate = rates[m] * uni(0.5, 1.5);
      int64_t centi = integer(1000000, 90000000);
      count((scrapes - 1) * entropy::FloorOfScaledUniform(rate * 1500, 0.8, 1.2));
      for (Timestamp x : ts) {
        int64_t inc = static_cast<int64_t>(rate * 1500 * uni(0.8, 1.2));
        centi += inc;
        s->push_back({x, static_cast<double>(centi) / 100});
      }
    }
  }
  for (int i = 0; i < 40; ++i) {
    // 10 byte counters, 10 packet counters, 20 error/drop counters that rarely move.
    auto* s = add({{"device", "eth" + std::to_string(i % 4)}, {"n", std::to_string(i)}},
                  "node_network_total");
    double v = static_cast<double>(integer(0, int64_t{1} << 36));
    int64_t max_inc = i < 10 ? integer(1000, 200000) : i < 20 ? integer(10, 300) : 1;
    count((scrapes - 1) *
          (i < 20 ? std::log2(static_cast<double>(max_inc + 1)) : Bits(0.005) + Bits(0.995)));
    for (Timestamp x : ts) {
      if (i < 20 || integer(0, 99) == 0) v += static_cast<double>(integer(0, max_inc));
      s->push_back({x, v});
    }
  }
  for (int i = 0; i < 40; ++i) {
    // 10 gauges that move (free, cached, ...), 30 that do not (sizes, limits).
    auto* s = add({{"n", std::to_string(i)}}, "node_memory_bytes");
    int64_t pages = integer(1000, 4000000);
    if (i < 10) count((scrapes - 1) * (Bits(0.5 + 0.5 / 401) + 400 * Bits(0.5 / 401)));
    for (Timestamp x : ts) {
      if (i < 10 && integer(0, 1) == 0) pages += integer(-200, 200);
      s->push_back({x, static_cast<double>(pages * 4096)});
    }
  }
  for (int i = 0; i < 24; ++i) {
    auto* s = add({{"n", std::to_string(i)}}, i < 12 ? "node_load" : "node_hwmon_temp_celsius");
    int64_t v = integer(0, 400);
    for (Timestamp x : ts) {
      // Below 5 the steps down to 0 or lower give the same value.
      if (x != ts.front())
        count(v >= 5 ? std::log2(11.0) : Bits((6.0 - v) / 11) + (5 + v) * Bits(1.0 / 11));
      v = std::max<int64_t>(0, v + integer(-5, 5));
      s->push_back({x, i < 12 ? static_cast<double>(v) / 100 : static_cast<double>(v + 300) / 10});
    }
  }
  for (int i = 0; i < 32; ++i) {
    auto* s = add({{"n", std::to_string(i)}}, "node_other");
    const bool ns_counter = noisy && i < noise_series / 2;
    const bool float_gauge = noisy && i >= 16 && i < 16 + noise_series - noise_series / 2;
    if (ns_counter) {
      // Seconds counted in nanoseconds (schedstat, pressure stall): up to 9 decimals.
      int64_t ns = integer(0, int64_t{1} << 42);
      count((scrapes - 1) * std::log2(300000001.0));
      for (Timestamp x : ts) {
        ns += integer(0, 300000000);
        s->push_back({x, static_cast<double>(ns) / 1e9});
      }
    } else if (float_gauge) {
      // A ratio or quantile computed in floating point: every bit is noise.
      double v = uni(0, 1000);
      for (Timestamp x : ts) {
        if (x != ts.front()) count(entropy::DoublesBetween(v * 0.99, v * 1.01));
        v = std::fabs(v + uni(-1, 1) * v * 0.01);
        s->push_back({x, v});
      }
    } else {
      int64_t v = integer(0, 5000);
      count((scrapes - 1) * (Bits(0.9 + 0.1 / 7) + 6 * Bits(0.1 / 7)));
      for (Timestamp x : ts) {
        if (integer(0, 9) == 0) v += integer(-3, 3);
        s->push_back({x, static_cast<double>(v)});
      }
    }
  }
  const char* bounds[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                          "0.5",   "1",    "2.5",   "5",    "10",  "+Inf"};
  const char* handlers[] = {"/metrics", "/", "/debug/pprof"};
  for (const char* handler : handlers) {
    const double rate = uni(2, 40), median = uni(0.02, 0.2), sigma = uni(0.5, 1);
    // The fraction of observations at or below each bound (log-normal CDF).
    std::vector<double> below;
    for (const char* b : bounds) {
      const double le = std::strtod(b, nullptr);
      below.push_back(std::isinf(le) ? 1
                                     : 0.5 * std::erfc(-std::log(le / median) / (sigma * M_SQRT2)));
    }
    std::vector<std::vector<Sample>*> buckets;
    for (const char* b : bounds) {
      buckets.push_back(
          add({{"handler", handler}, {"le", b}}, "promhttp_request_duration_seconds_bucket"));
    }
    auto* sum = add({{"handler", handler}}, "promhttp_request_duration_seconds_sum");
    auto* count = add({{"handler", handler}}, "promhttp_request_duration_seconds_count");
    // The process has run for a while: counts start where its past requests left them.
    const double past = static_cast<double>(integer(0, 10000000));
    std::vector<int64_t> bands(std::size(bounds), 0);
    for (size_t i = 0; i < bands.size(); ++i) {
      bands[i] = static_cast<int64_t>(past * (below[i] - (i > 0 ? below[i - 1] : 0)));
    }
    double total_seconds = past * median * 1.3;
    for (Timestamp x : ts) {
      const double n = rate * 15 * uni(0.7, 1.3);
      if (entropy != nullptr && x != ts.front()) {
        // Given n (so a lower bound: n itself shows in the buckets too): each band's new
        // observations, counted in the bucket at its upper bound, and the _sum's increment.
        for (size_t i = 0; i < bands.size(); ++i) {
          entropy->series_bits[out.size() - 14 + i] +=
              entropy::BandIncrement(n * (below[i] - (i > 0 ? below[i - 1] : 0)));
        }
        entropy->series_bits[out.size() - 2] += entropy::DoublesBetween(
            total_seconds + n * median * 1.1, total_seconds + n * median * 1.5);
      }
      int64_t cumulative = 0;
      for (size_t i = 0; i < bands.size(); ++i) {
        const double expected = n * (below[i] - (i > 0 ? below[i - 1] : 0));
        bands[i] += static_cast<int64_t>(expected * uni(0.5, 1.5) + uni(0, 1));
        cumulative += bands[i];
        buckets[i]->push_back({x, static_cast<double>(cumulative)});
      }
      total_seconds += n * median * uni(1.1, 1.5);
      sum->push_back({x, total_seconds});
      count->push_back({x, static_cast<double>(cumulative)});
    }
  }
  // One series goes stale at 90% and another replaces it.
  size_t cut = ts.size() * 9 / 10;
  std::vector<Sample>& gone = out[70].samples;
  if (cut > 0 && cut < gone.size()) {
    if (entropy != nullptr) {
      entropy->series_bits[70] *= static_cast<double>(cut) / static_cast<double>(gone.size());
    }
    gone.resize(cut);
    gone.push_back({ts[cut], StaleNaN()});
    auto* s = add({{"n", "new"}}, "node_memory_bytes");
    for (size_t i = cut; i < ts.size(); ++i) s->push_back({ts[i], 4096.0 * static_cast<double>(i)});
  }
  return out;
}

}  // namespace strata::bench

#endif  // STRATA_BENCH_NODE_EXPORTER_DATA_H_
