// Self-metrics: counters, gauges and histograms that every module records into, exposed on
// /metrics in the Prometheus text format and stored by the server's self-scrape.
//
// Families are registered once (usually at start-up) and their children are found by label
// values; the returned pointers stay valid for the registry's lifetime, so hot paths keep
// them and pay one relaxed atomic operation per update. All methods are thread-safe.
#ifndef STRATA_SRC_METRICS_H_
#define STRATA_SRC_METRICS_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "src/labels.h"

namespace strata {

class Counter {
 public:
  void Inc() { Add(1); }
  // REQUIRES: v >= 0.
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// A classic Prometheus histogram with fixed upper bounds (+Inf is implicit).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  // Cumulative counts per bound, then the +Inf count (== Count()).
  std::vector<uint64_t> CumulativeCounts() const;
  uint64_t Count() const { return count_.load(std::memory_order_relaxed); }
  double Sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // non-cumulative, bounds_.size()+1
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

// Bounds for latencies in seconds, 1 ms .. 60 s.
std::vector<double> DefaultLatencyBounds();

template <typename T>
class MetricFamily;

// One sample of a gathered metric: full label set (with __name__) and value.
struct GatheredSample {
  Labels labels;
  double value;
};

class MetricsRegistry {
 public:
  MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;
  ~MetricsRegistry();

  // Registering a name twice with the same type and label names returns the same family;
  // with a different type or label names it aborts (a programming error).
  MetricFamily<Counter>* CounterFamily(std::string name, std::string help,
                                       std::vector<std::string> label_names = {});
  MetricFamily<Gauge>* GaugeFamily(std::string name, std::string help,
                                   std::vector<std::string> label_names = {});
  MetricFamily<Histogram>* HistogramFamily(std::string name, std::string help,
                                           std::vector<double> bounds,
                                           std::vector<std::string> label_names = {});
  // Shorthands for families without labels.
  Counter* GetCounter(std::string name, std::string help);
  Gauge* GetGauge(std::string name, std::string help);
  Histogram* GetHistogram(std::string name, std::string help, std::vector<double> bounds);
  // A gauge whose value is read from `fn` at collection time (e.g. head series count).
  // `fn` must stay callable until RemoveCallback(name) or the registry dies.
  void AddCallbackGauge(std::string name, std::string help, std::function<double()> fn);
  // The same for a value that only grows (exposed with TYPE counter), e.g. CPU seconds.
  void AddCallbackCounter(std::string name, std::string help, std::function<double()> fn);
  void RemoveCallback(std::string_view name);

  // The Prometheus text exposition format (version 0.0.4), families sorted by name.
  std::string ExpositionText() const;
  // Every sample, as a scraper would see it (histograms as _bucket/_sum/_count).
  std::vector<GatheredSample> Gather() const;

 private:
  struct Family;
  template <typename Emit>
  static void ForEachSample(const Family& f, Emit&& emit);
  Family* Register(std::string name, std::string help, int kind,
                   std::vector<std::string> label_names, std::vector<double> bounds);

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Family>, std::less<>> families_;
};

// The process-wide registry the server exposes.
MetricsRegistry& DefaultRegistry();

// The children of one metric family, keyed by label values (in label-name order).
template <typename T>
class MetricFamily {
 public:
  // The child for these label values, created on first use. REQUIRES: one value per
  // label name of the family.
  T* With(const std::vector<std::string>& label_values);
  T* With(std::initializer_list<std::string_view> label_values);

 private:
  friend class MetricsRegistry;
  explicit MetricFamily(size_t num_labels, std::vector<double> bounds = {})
      : num_labels_(num_labels), bounds_(std::move(bounds)) {}

  mutable std::mutex mu_;
  size_t num_labels_;
  std::vector<double> bounds_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> children_;
};

}  // namespace strata

#endif  // STRATA_SRC_METRICS_H_
