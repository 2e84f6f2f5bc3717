// Private to the evaluator (query/engine.cc, eval_*.cc): the values nodes produce while a
// query runs, and the evaluator itself.
#ifndef STRATA_QUERY_EVAL_INTERNAL_H_
#define STRATA_QUERY_EVAL_INTERNAL_H_

#include <atomic>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "query/ast.h"
#include "query/engine.h"
#include "query/value.h"
#include "src/strings.h"
#include "storage/querier.h"

namespace strata::promql {

// The steps a node is evaluated at: start, start + interval, ..., end.
// The evaluation time an `@` modifier pins a selector or subquery to: its timestamp, the
// query's start or end, or `t` itself when there is no `@`.
inline Timestamp PinnedTime(const AtModifier& at, Timestamp t, Timestamp start, Timestamp end) {
  switch (at.kind) {
    case AtKind::kNone:
      return t;
    case AtKind::kTimestamp:
      return at.timestamp_ms;
    case AtKind::kStart:
      return start;
    case AtKind::kEnd:
      return end;
  }
  return t;
}

struct StepRange {
  Timestamp start = 0;
  Timestamp end = 0;
  int64_t interval = 1;
  size_t Count() const { return static_cast<size_t>((end - start) / interval) + 1; }
  Timestamp At(size_t i) const { return start + static_cast<int64_t>(i) * interval; }
  // Index of step `t` (REQUIRES: t is a step).
  size_t Index(Timestamp t) const { return static_cast<size_t>((t - start) / interval); }
};

// One series while evaluating: points at step timestamps for instant-vector nodes, raw
// samples for range-vector nodes. `drop_name`: the metric name is marked for removal
// (delayed name removal) and disappears when the result is returned.
struct EvalSeries {
  Labels labels;
  std::vector<Sample> points;
  bool drop_name = false;
};

// The value of a node over all steps.
struct EvalValue {
  ValueType type = ValueType::kNone;
  std::vector<double> scalars;     // kScalar: one per step
  std::vector<EvalSeries> series;  // kVector, kMatrix
  std::string str;                 // kString
  // kMatrix only: the end of the range window per step and its length.
  std::vector<Timestamp> window_ends;
  int64_t range_ms = 0;
  // kMatrix only: the offset of the selector or subquery (window end + offset = the time
  // the enclosing function is evaluated at).
  int64_t offset_ms = 0;
  // kMatrix from a selector with `anchored` / `smoothed`: the series hold samples up to a
  // lookback before the windows (and, for smoothed, after them) too.
  bool anchored = false;
  bool smoothed = false;
  size_t SampleCount() const;
};

// The elements of an instant vector at one step, pointing into EvalValue series.
struct StepElement {
  const EvalSeries* series;
  double v;
};

// Collects output series keyed by label set (and name mark), appending one point per step.
class SeriesBuilder {
 public:
  // Adds a point, in time order whatever order points come in. Errors when the series
  // already has a point at t ("vector cannot contain metrics with the same labelset").
  absl::Status Add(const Labels& labels, bool drop_name, Timestamp t, double v) {
    return AddAt(Handle(labels, drop_name), t, v);
  }
  // The output series for (labels, drop_name), created on first use. Stable for the
  // builder's life; lets hot loops skip the lookup.
  size_t Handle(const Labels& labels, bool drop_name);
  absl::Status AddAt(size_t handle, Timestamp t, double v);
  std::vector<EvalSeries> Take() { return std::move(series_); }
  size_t points() const { return points_; }

 private:
  absl::flat_hash_map<uint64_t, std::vector<size_t>> index_;
  std::vector<EvalSeries> series_;
  size_t points_ = 0;
};

class Evaluator {
 public:
  Evaluator(const EngineOptions& options, Querier& querier, std::string_view query,
            absl::Time deadline)
      : options_(options),
        querier_(querier),
        query_(query),
        deadline_(deadline),
        next_cancel_poll_ns_(absl::ToUnixNanos(absl::Now() + kCancelPollInterval)) {}

  absl::StatusOr<EvalValue> Eval(const Expr& e, const StepRange& r);

  // Annotations, rendered with the node position.
  void Warn(const Expr& at, std::string_view text);
  void Info(const Expr& at, std::string_view text);
  void AddAnnotation(bool warning, std::string text);
  std::vector<std::string> TakeWarnings() { return std::move(warnings_); }
  std::vector<std::string> TakeInfos() { return std::move(infos_); }

  int64_t peak_samples() const { return peak_samples_.load(std::memory_order_relaxed); }
  int64_t samples_decoded() const { return samples_decoded_.load(std::memory_order_relaxed); }

  // Counts `n` samples held; errors when over the budget or past the deadline. Safe to
  // call from the workers of RunParallel, like CheckDeadline, Warn and Info (whose
  // annotations from a run are kept aside and added in run order when the runs are done).
  absl::Status Charge(int64_t n);
  absl::Status CheckDeadline();

  // The number of workers RunParallel uses for `n` items (1 below the options' threshold).
  size_t Workers(size_t n) const;
  // Calls fn(begin, end, worker, first_failed) for `workers` contiguous runs of [0, n)
  // covering it in order, run 0 on the calling thread and the others on threads of their
  // own (or here, after run 0, when no thread is to be had). Returns the error of the first
  // run (in order) that failed. A run should stop early once `first_failed` (the lowest
  // failed run so far) is below its own number: an earlier failure decides the result.
  absl::Status RunParallel(
      size_t n, size_t workers,
      const std::function<absl::Status(size_t begin, size_t end, size_t worker,
                                       const std::atomic<size_t>& first_failed)>& fn);

  const EngineOptions& options() const { return options_; }
  // The query's own step range (the outermost one), for start()/end()/step()/range().
  StepRange query_range;
  bool instant_query = true;

  // Per-step elements of an instant-vector value. Calls f(step index, elements).
  template <typename F>
  absl::Status ForEachStep(const EvalValue& v, const StepRange& r, F&& f);

  // Marks or drops the metric name of an output series.
  void DropName(EvalSeries& s) const;
  Labels DropNameNow(const Labels& l) const;
  // As Prometheus, a node's result must not hold two series with the same label set: at
  // any one step (`per_step`: functions of instant vectors, operators) or at all
  // (functions of range vectors, unary minus). Without delayed name removal this is where
  // dropping the name makes series collide.
  absl::Status CheckDistinctLabelsets(const EvalValue& v, bool per_step) const;
  // Joins series with one label set (and name mark) into one series, as Prometheus' range
  // evaluation keys every output by its label set: an `or` (or a function that dropped the
  // names) hands on such series with points at different steps, and a whole-value check
  // or a range function over a subquery must see them as one. Errors when two of them
  // have a point at the same time.
  static absl::Status MergeEqualLabelsets(std::vector<EvalSeries>& series);

 private:
  absl::StatusOr<EvalValue> EvalNode(const Expr& e, const StepRange& r);
  // `times`: the window end per step instead of the one @ and offset give.
  absl::StatusOr<EvalValue> EvalVectorSelector(const VectorSelector& vs, const StepRange& r,
                                               bool want_timestamps,
                                               const std::vector<Timestamp>* times = nullptr);
  // The time the data of `e` refers to at evaluation time t (@ and offset of the selectors
  // and subqueries along its first vector argument chain).
  absl::StatusOr<Timestamp> ReferenceTime(const Expr& e, Timestamp t);
  // With a sink, each selected series is handed to it (with the value's window fields set
  // and no series) and dropped afterwards, instead of being collected.
  // A sink returns how many samples it kept from the series (the caller charges them).
  // With `workers` > 1 it may be called from that many threads at once, each call with
  // the index of its worker (< workers); one worker's calls come in series order.
  using MatrixSink = std::function<absl::StatusOr<int64_t>(const EvalValue& meta,
                                                           EvalSeries& series, size_t worker)>;
  absl::StatusOr<EvalValue> EvalMatrixSelector(const MatrixSelector& ms, const StepRange& r,
                                               const MatrixSink* sink = nullptr,
                                               size_t workers = 1);
  absl::StatusOr<EvalValue> EvalSubquery(const Subquery& sq, const StepRange& r);
  absl::StatusOr<EvalValue> EvalBinary(const Binary& b, const StepRange& r);
  absl::StatusOr<EvalValue> EvalAggregate(const Aggregate& a, const StepRange& r);
  absl::StatusOr<EvalValue> EvalCall(const Call& c, const StepRange& r);
  // Where EvalRangeFunction hands each output series, instead of collecting them, for an
  // aggregation that takes series one at a time (one worker, series in selection order).
  struct SeriesConsumer {
    // false: the series may keep their metric name (DropName is skipped); the consumer
    // must then treat them as if the name were gone.
    bool needs_name_dropped = true;
    // May leave the series' points behind (their memory is reused for the next series).
    std::function<absl::Status(EvalSeries& s)> take;
  };
  absl::StatusOr<EvalValue> EvalRangeFunction(const Call& c, const StepRange& r,
                                              const SeriesConsumer* consumer = nullptr);
  // sum, avg, count, min, max, group, stddev or stdvar of a range function over a selector
  // of one metric name, each series added as the function hands it over; nullopt when the
  // query is not of that form.
  std::optional<absl::StatusOr<EvalValue>> EvalAggregateOfRangeFunction(const Aggregate& a,
                                                                        const StepRange& r);
  absl::StatusOr<EvalValue> ApplyDateFunction(FunctionId id, EvalValue v);
  absl::StatusOr<EvalValue> EvalInfo(const Call& c, const StepRange& r);
  std::optional<double> ExtendedRangeValue(FunctionId id, const EvalValue& m,
                                           const std::vector<Sample>& pts, size_t lo, size_t hi,
                                           Timestamp T, int64_t range);
  absl::StatusOr<EvalValue> EvalClassicHistogram(const Call& c, std::vector<EvalValue>& args,
                                                 const StepRange& r);
  absl::StatusOr<EvalValue> EvalVectorBinary(const Binary& b, EvalValue lhs, EvalValue rhs,
                                             const StepRange& r);

  // The window end per step for a selector / subquery with `@` and `offset`.
  absl::StatusOr<std::vector<Timestamp>> WindowEnds(const AtModifier& at, const Duration& offset,
                                                    const StepRange& r);
  absl::StatusOr<int64_t> ResolveDuration(const Duration& d);

  const EngineOptions& options_;
  Querier& querier_;
  std::string_view query_;
  absl::Time deadline_;
  std::mutex annotations_mu_;  // guards the three below
  std::vector<std::string> warnings_, infos_;
  StringSet seen_annotations_;
  std::atomic<int64_t> current_samples_ = 0;
  std::atomic<int64_t> peak_samples_ = 0;
  std::atomic<int64_t> samples_decoded_ = 0;
  std::atomic<int64_t> deadline_counter_ = 0;
  std::atomic<int64_t> next_cancel_poll_ns_;  // options_.poll_canceled is due then
};

template <typename F>
absl::Status Evaluator::ForEachStep(const EvalValue& v, const StepRange& r, F&& f) {
  std::vector<size_t> cursor(v.series.size(), 0);
  std::vector<StepElement> elems;
  size_t n = r.Count();
  for (size_t i = 0; i < n; ++i) {
    Timestamp t = r.At(i);
    elems.clear();
    for (size_t s = 0; s < v.series.size(); ++s) {
      const auto& pts = v.series[s].points;
      size_t& c = cursor[s];
      while (c < pts.size() && pts[c].t < t) ++c;
      if (c < pts.size() && pts[c].t == t) elems.push_back({&v.series[s], pts[c].v});
    }
    absl::Status st = f(i, t, std::span<const StepElement>(elems));
    if (!st.ok()) return st;
    if ((i & 63) == 63) {
      st = CheckDeadline();
      if (!st.ok()) return st;
    }
  }
  return absl::OkStatus();
}

// Kahan-Babuska summation step, as Prometheus' kahanSumInc.
inline void KahanAdd(double inc, double& sum, double& c) {
  double t = sum + inc;
  if (std::isinf(t)) {
    c = 0;
  } else if (std::fabs(sum) >= std::fabs(inc)) {
    c += (sum - t) + inc;
  } else {
    c += (inc - t) + sum;
  }
  sum = t;
}

// Prometheus' quantile over sorted-or-not values (phi in [0,1]; outside gives ±Inf).
double Quantile(double phi, std::vector<double> values);

// Error texts shared by several files.
inline constexpr std::string_view kDuplicateLabelset =
    "vector cannot contain metrics with the same labelset";

}  // namespace strata::promql

#endif  // STRATA_QUERY_EVAL_INTERNAL_H_
