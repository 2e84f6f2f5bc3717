#include "query/engine.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "query/eval_internal.h"
#include "src/status.h"
#include "src/strings.h"
#include "src/time.h"
#include "src/work_pool.h"

namespace strata::promql {

size_t EvalValue::SampleCount() const {
  size_t n = scalars.size();
  for (const auto& s : series) n += s.points.size();
  return n;
}

size_t SeriesBuilder::Handle(const Labels& labels, bool drop_name) {
  uint64_t key = labels.Hash() ^ (drop_name ? 0x9e3779b97f4a7c15ULL : 0);
  std::vector<size_t>& cands = index_[key];
  for (size_t i : cands) {
    if (series_[i].drop_name == drop_name && series_[i].labels == labels) return i;
  }
  cands.push_back(series_.size());
  series_.push_back({labels, {}, drop_name});
  return series_.size() - 1;
}

absl::Status SeriesBuilder::AddAt(size_t handle, Timestamp t, double v) {
  EvalSeries& s = series_[handle];
  if (s.points.empty() || s.points.back().t < t) {
    s.points.push_back({t, v});
  } else {
    // Before the last point: another input series with these output labels at other steps
    // (`label_replace(a or b, ...)` where a and b take turns). Only one point per step.
    auto at = std::lower_bound(s.points.begin(), s.points.end(), t,
                               [](const Sample& p, Timestamp x) { return p.t < x; });
    if (at->t == t) return absl::FailedPreconditionError(std::string(kDuplicateLabelset));
    s.points.insert(at, {t, v});
  }
  ++points_;
  return absl::OkStatus();
}

double Quantile(double phi, std::vector<double> values) {
  if (values.empty() || std::isnan(phi)) return std::nan("");
  if (phi < 0) return -INFINITY;
  if (phi > 1) return INFINITY;
  // NaN sorts as the smallest value.
  std::sort(values.begin(), values.end(), [](double a, double b) {
    if (std::isnan(a)) return !std::isnan(b);
    if (std::isnan(b)) return false;
    return a < b;
  });
  double n = static_cast<double>(values.size());
  double rank = phi * (n - 1);
  double lower_index = std::max(0.0, std::floor(rank));
  double upper_index = std::min(n - 1, lower_index + 1);
  double weight = rank - std::floor(rank);
  return values[static_cast<size_t>(lower_index)] * (1 - weight) +
         values[static_cast<size_t>(upper_index)] * weight;
}

// ---------------------------------------------------------------------------------------
// Evaluator plumbing.

namespace {

// Annotations a RunParallel worker made, kept until its run is merged in run order so that
// they come out in the order one thread gives. Set only while a run is running.
struct PendingAnnotation {
  bool warning;
  std::string text;
};
thread_local std::vector<PendingAnnotation>* tl_pending_annotations = nullptr;

// Threads that run RunParallel's runs, shared by all queries and kept between them: a
// thread started per query began each time with cold caches and a cold malloc arena, and
// two workers then took more time than one. A run goes to the thread idle for the
// shortest time (WorkPool); two per CPU, and with all of them busy the calling thread does
// the run itself. Started on first use, never stopped.
WorkPool& Helpers() {
  static WorkPool* const pool =
      new WorkPool(2 * static_cast<int>(std::max(1u, std::thread::hardware_concurrency())), 0);
  return *pool;
}

}  // namespace

void Evaluator::AddAnnotation(bool warning, std::string text) {
  if (tl_pending_annotations != nullptr) {
    tl_pending_annotations->push_back({warning, std::move(text)});
    return;
  }
  std::lock_guard<std::mutex> lock(annotations_mu_);
  if (seen_annotations_.insert(text).second) {
    (warning ? warnings_ : infos_).push_back(std::move(text));
  }
}

void Evaluator::Warn(const Expr& at, std::string_view text) {
  auto [line, col] = LineCol(query_, at.pos.start);
  AddAnnotation(true, fmt::format("PromQL warning: {} ({}:{})", text, line, col));
}

void Evaluator::Info(const Expr& at, std::string_view text) {
  auto [line, col] = LineCol(query_, at.pos.start);
  AddAnnotation(false, fmt::format("PromQL info: {} ({}:{})", text, line, col));
}

absl::Status Evaluator::CheckDeadline() {
  const absl::Time now = absl::Now();
  if (options_.poll_canceled) {
    const int64_t now_ns = absl::ToUnixNanos(now);
    int64_t due = next_cancel_poll_ns_.load(std::memory_order_relaxed);
    // One caller at a time wins the poll; the others go on.
    if (now_ns >= due && next_cancel_poll_ns_.compare_exchange_strong(
                             due, now_ns + absl::ToInt64Nanoseconds(kCancelPollInterval),
                             std::memory_order_relaxed)) {
      options_.poll_canceled();
    }
  }
  if (options_.canceled != nullptr && options_.canceled->load(std::memory_order_relaxed)) {
    return absl::CancelledError("query was canceled in expression evaluation");
  }
  if (now > deadline_) {
    return absl::DeadlineExceededError("query timed out in expression evaluation");
  }
  return absl::OkStatus();
}

absl::Status Evaluator::Charge(int64_t n) {
  const int64_t now = current_samples_.fetch_add(n, std::memory_order_relaxed) + n;
  int64_t peak = peak_samples_.load(std::memory_order_relaxed);
  while (now > peak && !peak_samples_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
  if (now > options_.max_samples) {
    return absl::ResourceExhaustedError(
        "query processing would load too many samples into memory in query execution");
  }
  const int64_t work = (n < 0 ? -n : n) + 1;
  if (deadline_counter_.fetch_add(work, std::memory_order_relaxed) + work >= 4096) {
    deadline_counter_.store(0, std::memory_order_relaxed);
    return CheckDeadline();
  }
  return absl::OkStatus();
}

size_t Evaluator::Workers(size_t n) const {
  if (n < std::max<size_t>(options_.parallel_min_series, 2)) return 1;
  size_t threads = options_.parallelism > 0
                       ? static_cast<size_t>(options_.parallelism)
                       : std::min<size_t>(8, std::max(1u, std::thread::hardware_concurrency()));
  return std::min(threads, n);
}

absl::Status Evaluator::RunParallel(
    size_t n, size_t workers,
    const std::function<absl::Status(size_t, size_t, size_t, const std::atomic<size_t>&)>& fn) {
  workers = std::max<size_t>(1, std::min(workers, n));
  std::atomic<size_t> first_failed = SIZE_MAX;
  std::vector<absl::Status> status(workers);
  std::vector<std::vector<PendingAnnotation>> annotations(workers);
  auto run = [&](size_t w) {
    std::vector<PendingAnnotation>* const saved = tl_pending_annotations;
    tl_pending_annotations = &annotations[w];
    status[w] = fn(n * w / workers, n * (w + 1) / workers, w, first_failed);
    tl_pending_annotations = saved;
    if (status[w].ok()) return;
    size_t cur = first_failed.load(std::memory_order_relaxed);
    while (w < cur && !first_failed.compare_exchange_weak(cur, w, std::memory_order_relaxed)) {
    }
  };
  // Runs 1.. go to helper threads while they take them; the rest run here after run 0.
  std::mutex done_mu;
  std::condition_variable done_cv;
  size_t pending = 0;
  std::vector<size_t> here;
  for (size_t w = 1; w < workers; ++w) {
    {
      std::lock_guard<std::mutex> lock(done_mu);
      ++pending;
    }
    bool started = Helpers().TrySubmit([&, w] {
      run(w);
      std::lock_guard<std::mutex> lock(done_mu);
      if (--pending == 0) done_cv.notify_one();
    });
    if (!started) {
      std::lock_guard<std::mutex> lock(done_mu);
      --pending;
      here.push_back(w);
    }
  }
  run(0);
  for (size_t w : here) run(w);
  {
    std::unique_lock<std::mutex> lock(done_mu);
    done_cv.wait(lock, [&] { return pending == 0; });
  }
  for (auto& list : annotations) {
    for (auto& a : list) AddAnnotation(a.warning, std::move(a.text));
  }
  for (auto& st : status) {
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

void Evaluator::DropName(EvalSeries& s) const {
  if (options_.delayed_name_removal) {
    s.drop_name = true;
  } else {
    s.labels = std::move(s.labels).Without({kMetricName, "__type__", "__unit__"});
  }
}

Labels Evaluator::DropNameNow(const Labels& l) const {
  return l.Without({kMetricName, "__type__", "__unit__"});
}

absl::Status Evaluator::CheckDistinctLabelsets(const EvalValue& v, bool per_step) const {
  if (v.type != ValueType::kVector || v.series.size() < 2) return absl::OkStatus();
  // Runs after every call and operator: one table entry per series and no allocation per
  // series; only label sets that do repeat are looked at further.
  absl::flat_hash_map<std::string_view, size_t> first;
  first.reserve(v.series.size());
  std::vector<std::pair<size_t, size_t>> repeats;  // (first series, another with its labels)
  for (size_t i = 0; i < v.series.size(); ++i) {
    if (v.series[i].points.empty()) continue;
    auto [it, inserted] = first.try_emplace(v.series[i].labels.encoded(), i);
    if (inserted) continue;
    if (!per_step) return absl::FailedPreconditionError(std::string(kDuplicateLabelset));
    repeats.emplace_back(it->second, i);
  }
  if (repeats.empty()) return absl::OkStatus();
  // Per step: an error only when two series with one label set have a point at one time.
  std::sort(repeats.begin(), repeats.end());
  std::vector<Timestamp> times;
  for (size_t k = 0; k < repeats.size();) {
    const size_t group = repeats[k].first;
    times.clear();
    for (const Sample& p : v.series[group].points) times.push_back(p.t);
    for (; k < repeats.size() && repeats[k].first == group; ++k) {
      for (const Sample& p : v.series[repeats[k].second].points) times.push_back(p.t);
    }
    std::sort(times.begin(), times.end());
    if (std::adjacent_find(times.begin(), times.end()) != times.end()) {
      return absl::FailedPreconditionError(std::string(kDuplicateLabelset));
    }
  }
  return absl::OkStatus();
}

absl::Status Evaluator::MergeEqualLabelsets(std::vector<EvalSeries>& series) {
  if (series.size() < 2) return absl::OkStatus();
  absl::flat_hash_map<std::pair<std::string_view, bool>, size_t> first;
  first.reserve(series.size());
  std::vector<bool> merged_away;
  for (size_t i = 0; i < series.size(); ++i) {
    auto [it, inserted] = first.try_emplace(
        std::pair<std::string_view, bool>(series[i].labels.encoded(), series[i].drop_name), i);
    if (inserted) continue;
    std::vector<Sample>& dst = series[it->second].points;
    std::vector<Sample>& src = series[i].points;
    std::vector<Sample> both;
    both.reserve(dst.size() + src.size());
    std::merge(dst.begin(), dst.end(), src.begin(), src.end(), std::back_inserter(both),
               [](const Sample& a, const Sample& b) { return a.t < b.t; });
    if (std::adjacent_find(both.begin(), both.end(), [](const Sample& a, const Sample& b) {
          return a.t == b.t;
        }) != both.end()) {
      return absl::FailedPreconditionError(std::string(kDuplicateLabelset));
    }
    dst = std::move(both);
    src.clear();
    merged_away.resize(series.size());
    merged_away[i] = true;
  }
  if (merged_away.empty()) return absl::OkStatus();
  size_t i = 0;
  std::erase_if(series, [&](const EvalSeries&) { return merged_away[i++]; });
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Evaluator::ResolveDuration(const Duration& d) {
  DurationContext ctx;
  ctx.start_ms = query_range.start;
  ctx.end_ms = query_range.end;
  ctx.step_ms = instant_query ? 0 : query_range.interval;
  return d.Resolve(ctx);
}

absl::StatusOr<std::vector<Timestamp>> Evaluator::WindowEnds(const AtModifier& at,
                                                             const Duration& offset,
                                                             const StepRange& r) {
  STRATA_ASSIGN_OR_RETURN(int64_t off, ResolveDuration(offset));
  std::vector<Timestamp> ends(r.Count());
  for (size_t i = 0; i < ends.size(); ++i) {
    ends[i] = PinnedTime(at, r.At(i), query_range.start, query_range.end) - off;
  }
  return ends;
}

absl::StatusOr<EvalValue> Evaluator::Eval(const Expr& e, const StepRange& r) {
  int64_t before = current_samples_;
  auto v = EvalNode(e, r);
  if (!v.ok()) return v;
  current_samples_ = before;
  STRATA_RETURN_IF_ERROR(Charge(static_cast<int64_t>(v->SampleCount())));
  return v;
}

absl::StatusOr<EvalValue> Evaluator::EvalNode(const Expr& e, const StepRange& r) {
  switch (e.kind()) {
    case NodeKind::kNumberLiteral: {
      EvalValue v;
      v.type = ValueType::kScalar;
      v.scalars.assign(r.Count(), e.As<NumberLiteral>().value);
      return v;
    }
    case NodeKind::kStringLiteral: {
      EvalValue v;
      v.type = ValueType::kString;
      v.str = e.As<StringLiteral>().value;
      return v;
    }
    case NodeKind::kParen:
      return Eval(*e.As<Paren>().expr, r);
    case NodeKind::kUnary: {
      const auto& u = e.As<Unary>();
      STRATA_ASSIGN_OR_RETURN(EvalValue v, Eval(*u.expr, r));
      if (!u.negate) return v;
      STRATA_RETURN_IF_ERROR(MergeEqualLabelsets(v.series));
      for (double& x : v.scalars) x = -x;
      for (auto& s : v.series) {
        for (auto& p : s.points) p.v = -p.v;
        DropName(s);
      }
      if (!options_.delayed_name_removal) {
        STRATA_RETURN_IF_ERROR(CheckDistinctLabelsets(v, /*per_step=*/false));
      }
      return v;
    }
    case NodeKind::kVectorSelector:
      return EvalVectorSelector(e.As<VectorSelector>(), r, false);
    case NodeKind::kMatrixSelector:
      return EvalMatrixSelector(e.As<MatrixSelector>(), r);
    case NodeKind::kSubquery:
      return EvalSubquery(e.As<Subquery>(), r);
    case NodeKind::kBinary: {
      STRATA_ASSIGN_OR_RETURN(EvalValue v, EvalBinary(e.As<Binary>(), r));
      if (!options_.delayed_name_removal) {
        STRATA_RETURN_IF_ERROR(CheckDistinctLabelsets(v, /*per_step=*/true));
      }
      return v;
    }
    case NodeKind::kAggregate:
      return EvalAggregate(e.As<Aggregate>(), r);
    case NodeKind::kCall: {
      const Call& c = e.As<Call>();
      STRATA_ASSIGN_OR_RETURN(EvalValue v, EvalCall(c, r));
      if (!options_.delayed_name_removal) {
        bool range_arg = std::any_of(c.args.begin(), c.args.end(), [](const ExprPtr& a) {
          return a->type() == ValueType::kMatrix;
        });
        STRATA_RETURN_IF_ERROR(CheckDistinctLabelsets(v, /*per_step=*/!range_arg));
      }
      return v;
    }
  }
  return absl::InternalError("unknown expression node");
}

absl::StatusOr<EvalValue> Evaluator::EvalVectorSelector(const VectorSelector& vs,
                                                        const StepRange& r, bool want_timestamps,
                                                        const std::vector<Timestamp>* times) {
  std::vector<Timestamp> ends;
  if (times) {
    ends = *times;
  } else {
    STRATA_ASSIGN_OR_RETURN(ends, WindowEnds(vs.at, vs.offset, r));
  }
  Timestamp lo = *std::min_element(ends.begin(), ends.end());
  Timestamp hi = *std::max_element(ends.begin(), ends.end());
  SelectHints hints;
  hints.mint = lo - options_.lookback_ms + 1;
  hints.maxt = hi;
  if (vs.smoothed) hints.maxt += options_.lookback_ms;
  hints.step_ms = instant_query ? 0 : r.interval;
  hints.sorted = false;
  // One window: only the newest sample in it counts.
  hints.newest_only = ends.size() == 1 && !vs.smoothed;
  STRATA_ASSIGN_OR_RETURN(auto set, querier_.Select(vs.matchers, hints));
  EvalValue out;
  out.type = ValueType::kVector;
  std::vector<Sample> samples;
  while (set->Next()) {
    samples.clear();
    STRATA_RETURN_IF_ERROR(set->TakeSamples()->AppendRange(hints.mint, hints.maxt, &samples));
    samples_decoded_ += static_cast<int64_t>(samples.size());
    STRATA_RETURN_IF_ERROR(Charge(static_cast<int64_t>(samples.size())));
    EvalSeries s{set->TakeLabels(), {}, false};
    size_t j = 0;  // first sample with t > T
    Timestamp prev_end = INT64_MIN;
    for (size_t i = 0; i < ends.size(); ++i) {
      Timestamp T = ends[i];
      if (T < prev_end) j = 0;
      prev_end = T;
      while (j < samples.size() && samples[j].t <= T) ++j;
      while (j > 0 && samples[j - 1].t > T) --j;
      if (j == 0) continue;
      const Sample& last = samples[j - 1];
      if (last.t <= T - options_.lookback_ms || IsStaleNaN(last.v)) continue;
      double v = want_timestamps ? static_cast<double>(last.t) / 1000.0 : last.v;
      if (vs.smoothed && last.t < T && j < samples.size() && !IsStaleNaN(samples[j].v) &&
          samples[j].t < T + options_.lookback_ms) {
        const Sample& next = samples[j];
        v = last.v + (next.v - last.v) * static_cast<double>(T - last.t) /
                         static_cast<double>(next.t - last.t);
      }
      s.points.push_back({r.At(i), v});
    }
    STRATA_RETURN_IF_ERROR(
        Charge(static_cast<int64_t>(s.points.size()) - static_cast<int64_t>(samples.size())));
    if (!s.points.empty()) out.series.push_back(std::move(s));
  }
  STRATA_RETURN_IF_ERROR(set->status());
  return out;
}

absl::StatusOr<EvalValue> Evaluator::EvalMatrixSelector(const MatrixSelector& ms,
                                                        const StepRange& r, const MatrixSink* sink,
                                                        size_t workers) {
  const VectorSelector& vs = ms.vector_selector();
  STRATA_ASSIGN_OR_RETURN(int64_t range, ResolveDuration(ms.range));
  STRATA_ASSIGN_OR_RETURN(std::vector<Timestamp> ends, WindowEnds(vs.at, vs.offset, r));
  Timestamp lo = *std::min_element(ends.begin(), ends.end());
  Timestamp hi = *std::max_element(ends.begin(), ends.end());
  SelectHints hints;
  hints.mint = lo - range + 1;
  hints.maxt = hi;
  if (vs.anchored || vs.smoothed) hints.mint -= options_.lookback_ms;
  if (vs.smoothed) hints.maxt += options_.lookback_ms;
  hints.range_ms = range;
  hints.step_ms = instant_query ? 0 : r.interval;
  hints.sorted = false;
  STRATA_ASSIGN_OR_RETURN(auto set, querier_.Select(vs.matchers, hints));
  EvalValue out;
  out.type = ValueType::kMatrix;
  out.window_ends = std::move(ends);
  out.range_ms = range;
  out.anchored = vs.anchored;
  out.smoothed = vs.smoothed;
  STRATA_ASSIGN_OR_RETURN(out.offset_ms, ResolveDuration(vs.offset));
  // Decodes a series' samples in the window, without stale markers.
  auto load = [&](EvalSeries& s, SampleIterator& it) -> absl::Status {
    STRATA_RETURN_IF_ERROR(it.AppendRange(hints.mint, hints.maxt, &s.points));
    samples_decoded_.fetch_add(static_cast<int64_t>(s.points.size()), std::memory_order_relaxed);
    std::erase_if(s.points, [](const Sample& p) { return IsStaleNaN(p.v); });
    return absl::OkStatus();
  };
  if (sink == nullptr || workers <= 1) {
    // With a sink, one samples buffer serves every series (the sink only reads them).
    std::vector<Sample> buffer;
    while (set->Next()) {
      EvalSeries s{set->TakeLabels(), std::move(buffer), false};
      s.points.clear();
      STRATA_RETURN_IF_ERROR(load(s, *set->TakeSamples()));
      STRATA_RETURN_IF_ERROR(Charge(static_cast<int64_t>(s.points.size())));
      if (s.points.empty()) {
        buffer = std::move(s.points);
        continue;
      }
      if (sink) {
        STRATA_ASSIGN_OR_RETURN(int64_t kept, (*sink)(out, s, 0));
        STRATA_RETURN_IF_ERROR(Charge(kept));
        current_samples_ -= static_cast<int64_t>(s.points.size());
        buffer = std::move(s.points);
      } else {
        out.series.push_back(std::move(s));
      }
    }
    STRATA_RETURN_IF_ERROR(set->status());
    return out;
  }
  // Several workers: take every series' labels and iterator first (cheap: no decoding),
  // then decode and hand them to the sink in contiguous runs, one per worker.
  std::vector<EvalSeries> series;
  std::vector<std::unique_ptr<SampleIterator>> iterators;
  while (set->Next()) {
    series.push_back({set->TakeLabels(), {}, false});
    iterators.push_back(set->TakeSamples());
  }
  STRATA_RETURN_IF_ERROR(set->status());
  // Per series: samples decoded, samples the sink kept, and where it failed (1: decoding,
  // 2: the sink). The budget is charged afterwards in series order, exactly as one thread
  // charges it, so that a query fails (or not) and peaks the same on any number of
  // workers. Meanwhile the workers only watch the total kept: once that alone is over the
  // budget, one thread would have failed too, and they stop.
  const size_t n = series.size();
  std::vector<int64_t> decoded(n, 0), kept(n, 0);
  std::vector<uint8_t> failed_at(n, 0);
  std::vector<absl::Status> errors(n);
  const int64_t base = current_samples_.load(std::memory_order_relaxed);
  std::atomic<int64_t> kept_total = 0;
  std::atomic<bool> over_budget = false;
  // The runs' own error is looked at last: one run's error stops only later runs, so
  // the first per-series error in series order is the one one thread would have met.
  const absl::Status run_status = RunParallel(
      n, std::min(workers, Workers(n)),
      [&](size_t begin, size_t end, size_t worker,
          const std::atomic<size_t>& first_failed) -> absl::Status {
        size_t work = 0;
        for (size_t i = begin; i < end; ++i) {
          if (first_failed.load(std::memory_order_relaxed) < worker ||
              over_budget.load(std::memory_order_relaxed)) {
            break;
          }
          EvalSeries& s = series[i];
          absl::Status st = load(s, *iterators[i]);
          decoded[i] = static_cast<int64_t>(s.points.size());
          work += s.points.size() + 1;
          if (!st.ok()) {
            failed_at[i] = 1;
          } else if (!s.points.empty()) {
            absl::StatusOr<int64_t> k = (*sink)(out, s, worker);
            if (k.ok()) {
              kept[i] = *k;
            } else {
              st = k.status();
              failed_at[i] = 2;
            }
          }
          // The samples were allocated here: release them now. The labels and the iterator
          // (its chunk copies) came from the calling thread and are released there after
          // the run: with glibc's per-thread arenas a free here would take the caller's
          // arena lock against its own allocations, and with two workers that contention
          // had made a query take twice the CPU of one thread and more time.
          s.points = std::vector<Sample>();
          if (!st.ok()) {
            errors[i] = std::move(st);
            return errors[i];
          }
          if (base + kept_total.fetch_add(kept[i], std::memory_order_relaxed) + kept[i] >
              options_.max_samples) {
            over_budget.store(true, std::memory_order_relaxed);
            return absl::OkStatus();
          }
          if (work >= 65536) {
            work = 0;
            STRATA_RETURN_IF_ERROR(CheckDeadline());
          }
        }
        return absl::OkStatus();
      });
  iterators.clear();
  series.clear();
  if (over_budget.load()) {
    return absl::ResourceExhaustedError(
        "query processing would load too many samples into memory in query execution");
  }
  for (size_t i = 0; i < n; ++i) {
    if (failed_at[i] == 1) return errors[i];
    STRATA_RETURN_IF_ERROR(Charge(decoded[i]));
    if (decoded[i] == 0) continue;
    if (failed_at[i] == 2) return errors[i];
    STRATA_RETURN_IF_ERROR(Charge(kept[i]));
    current_samples_ -= decoded[i];
  }
  STRATA_RETURN_IF_ERROR(run_status);  // a deadline or cancellation
  return out;
}

namespace {

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

}  // namespace

absl::StatusOr<EvalValue> Evaluator::EvalSubquery(const Subquery& sq, const StepRange& r) {
  STRATA_ASSIGN_OR_RETURN(int64_t range, ResolveDuration(sq.range));
  int64_t step = options_.default_subquery_step_ms;
  if (sq.has_step) {
    STRATA_ASSIGN_OR_RETURN(step, ResolveDuration(sq.step));
  }
  if (step <= 0) return absl::FailedPreconditionError("zero or negative subquery step");
  STRATA_ASSIGN_OR_RETURN(std::vector<Timestamp> ends, WindowEnds(sq.at, sq.offset, r));
  Timestamp lo = *std::min_element(ends.begin(), ends.end()) - range;
  Timestamp hi = *std::max_element(ends.begin(), ends.end());
  EvalValue out;
  out.type = ValueType::kMatrix;
  out.window_ends = std::move(ends);
  out.range_ms = range;
  STRATA_ASSIGN_OR_RETURN(out.offset_ms, ResolveDuration(sq.offset));
  // As Prometheus, the inner steps run up to the end of the range this subquery is evaluated
  // over (less the offset), which may lie after its last step: no window reads those points,
  // but an error there (many-to-many matching, ...) is the query's error.
  if (sq.at.kind == AtKind::kNone) hi = std::max(hi, r.end - out.offset_ms);
  Timestamp start = FloorDiv(lo, step) * step;
  if (start <= lo) start += step;
  if (start > FloorDiv(hi, step) * step) return out;
  StepRange inner{start, hi, step};
  // Every step holds at least one value: refuse before allocating them.
  if (static_cast<int64_t>(inner.Count()) > options_.max_samples) {
    return absl::ResourceExhaustedError(
        "query processing would load too many samples into memory in query execution");
  }
  STRATA_ASSIGN_OR_RETURN(EvalValue v, Eval(*sq.expr, inner));
  if (v.type == ValueType::kScalar) {
    EvalSeries s;
    for (size_t i = 0; i < v.scalars.size(); ++i) s.points.push_back({inner.At(i), v.scalars[i]});
    out.series.push_back(std::move(s));
  } else {
    out.series = std::move(v.series);
    STRATA_RETURN_IF_ERROR(MergeEqualLabelsets(out.series));
    for (auto& s : out.series)
      std::erase_if(s.points, [](const Sample& p) { return IsStaleNaN(p.v); });
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Running a query.

namespace {

// Removes marked names, then merges series whose label sets are equal (an error when they
// have points at the same time; at different steps they are one series, as in Prometheus'
// range evaluation) and sorts by labels.
absl::StatusOr<std::vector<EvalSeries>> FinishSeries(const Evaluator& ev,
                                                     std::vector<EvalSeries> series) {
  for (auto& s : series) {
    if (s.drop_name) {
      s.labels = ev.DropNameNow(s.labels);
      s.drop_name = false;
    }
  }
  std::sort(series.begin(), series.end(), [](const EvalSeries& a, const EvalSeries& b) {
    return Compare(a.labels, b.labels) < 0;
  });
  std::vector<EvalSeries> out;
  for (auto& s : series) {
    if (!out.empty() && out.back().labels == s.labels) {
      auto& dst = out.back().points;
      std::vector<Sample> merged;
      merged.reserve(dst.size() + s.points.size());
      std::merge(dst.begin(), dst.end(), s.points.begin(), s.points.end(),
                 std::back_inserter(merged),
                 [](const Sample& a, const Sample& b) { return a.t < b.t; });
      for (size_t i = 1; i < merged.size(); ++i) {
        if (merged[i].t == merged[i - 1].t) {
          return absl::FailedPreconditionError(std::string(kDuplicateLabelset));
        }
      }
      dst = std::move(merged);
      continue;
    }
    out.push_back(std::move(s));
  }
  return out;
}

struct TimeBounds {
  Timestamp mint = INT64_MAX;
  Timestamp maxt = INT64_MIN;
};

// Widens `out` by the sample times the selectors in `e` read when `e` is evaluated at times
// in [lo, hi]. False when a duration cannot be resolved (then the caller reads everything).
bool QueryBounds(const EngineOptions& options, const Expr& e, const DurationContext& ctx,
                 Timestamp lo, Timestamp hi, TimeBounds* out) {
  auto apply_at_offset = [&](const AtModifier& at, const Duration& offset) -> bool {
    if (at.kind != AtKind::kNone) lo = hi = PinnedTime(at, lo, ctx.start_ms, ctx.end_ms);
    auto off = offset.Resolve(ctx);
    if (!off.ok()) return false;
    lo -= *off;
    hi -= *off;
    return true;
  };
  auto widen = [&](Timestamp a, Timestamp b) {
    out->mint = std::min(out->mint, a);
    out->maxt = std::max(out->maxt, b);
  };
  switch (e.kind()) {
    case NodeKind::kVectorSelector: {
      const auto& vs = e.As<VectorSelector>();
      if (!apply_at_offset(vs.at, vs.offset)) return false;
      widen(lo - options.lookback_ms, hi + (vs.smoothed ? options.lookback_ms : 0));
      return true;
    }
    case NodeKind::kMatrixSelector: {
      const auto& ms = e.As<MatrixSelector>();
      const auto& vs = ms.vector_selector();
      auto range = ms.range.Resolve(ctx);
      if (!range.ok() || !apply_at_offset(vs.at, vs.offset)) return false;
      int64_t extra = (vs.anchored || vs.smoothed) ? options.lookback_ms : 0;
      widen(lo - *range - extra, hi + (vs.smoothed ? options.lookback_ms : 0));
      return true;
    }
    case NodeKind::kSubquery: {
      const auto& sq = e.As<Subquery>();
      auto range = sq.range.Resolve(ctx);
      if (!range.ok() || !apply_at_offset(sq.at, sq.offset)) return false;
      return QueryBounds(options, *sq.expr, ctx, lo - *range, hi, out);
    }
    case NodeKind::kParen:
      return QueryBounds(options, *e.As<Paren>().expr, ctx, lo, hi, out);
    case NodeKind::kUnary:
      return QueryBounds(options, *e.As<Unary>().expr, ctx, lo, hi, out);
    case NodeKind::kBinary:
      return QueryBounds(options, *e.As<Binary>().lhs, ctx, lo, hi, out) &&
             QueryBounds(options, *e.As<Binary>().rhs, ctx, lo, hi, out);
    case NodeKind::kAggregate:
      if (e.As<Aggregate>().param &&
          !QueryBounds(options, *e.As<Aggregate>().param, ctx, lo, hi, out)) {
        return false;
      }
      return QueryBounds(options, *e.As<Aggregate>().expr, ctx, lo, hi, out);
    case NodeKind::kCall: {
      const auto& c = e.As<Call>();
      if (c.func->id == FunctionId::kInfo) return false;  // reads info series of its own
      for (const auto& a : c.args) {
        if (!QueryBounds(options, *a, ctx, lo, hi, out)) return false;
      }
      return true;
    }
    default:
      return true;
  }
}

// Rejects constructs whose feature flag is off (the tree may come from a parser that had
// them enabled).
absl::Status CheckFeatures(const EngineOptions& options, const Expr& e) {
  switch (e.kind()) {
    case NodeKind::kVectorSelector: {
      const auto& vs = e.As<VectorSelector>();
      if ((vs.anchored || vs.smoothed) && !options.extended_range_selectors) {
        return absl::InvalidArgumentError(
            "anchored and smoothed modifiers need "
            "--enable-feature=promql-extended-range-selectors");
      }
      return absl::OkStatus();
    }
    case NodeKind::kMatrixSelector:
      return CheckFeatures(options, *e.As<MatrixSelector>().selector);
    case NodeKind::kSubquery:
      return CheckFeatures(options, *e.As<Subquery>().expr);
    case NodeKind::kParen:
      return CheckFeatures(options, *e.As<Paren>().expr);
    case NodeKind::kUnary:
      return CheckFeatures(options, *e.As<Unary>().expr);
    case NodeKind::kBinary: {
      const auto& b = e.As<Binary>();
      if (b.matching && (b.matching->fill_left || b.matching->fill_right) &&
          !options.binop_fill_modifiers) {
        return absl::InvalidArgumentError(
            "fill modifiers need --enable-feature=promql-binop-fill-modifiers");
      }
      STRATA_RETURN_IF_ERROR(CheckFeatures(options, *b.lhs));
      return CheckFeatures(options, *b.rhs);
    }
    case NodeKind::kAggregate: {
      const auto& a = e.As<Aggregate>();
      if (AggregateIsExperimental(a.op) && !options.experimental_functions) {
        return absl::InvalidArgumentError(
            fmt::format("limitk() and limit_ratio() are experimental and must be enabled with "
                        "--enable-feature=promql-experimental-functions ({})",
                        AggregateOpString(a.op)));
      }
      if (a.param) STRATA_RETURN_IF_ERROR(CheckFeatures(options, *a.param));
      return CheckFeatures(options, *a.expr);
    }
    case NodeKind::kCall: {
      const auto& c = e.As<Call>();
      if (c.func->experimental && !options.experimental_functions) {
        return absl::InvalidArgumentError(
            fmt::format("function \"{}\" is not enabled", c.func->name));
      }
      for (const auto& a : c.args) STRATA_RETURN_IF_ERROR(CheckFeatures(options, *a));
      return absl::OkStatus();
    }
    default:
      return absl::OkStatus();
  }
}

absl::StatusOr<QueryResult> Run(const EngineOptions& options, Queryable& db, const Expr& expr,
                                std::string_view query, Timestamp start, Timestamp end,
                                int64_t step, bool instant) {
  STRATA_RETURN_IF_ERROR(CheckFeatures(options, expr));
  absl::Time deadline = options.timeout == absl::InfiniteDuration() ? absl::InfiniteFuture()
                                                                    : absl::Now() + options.timeout;
  StepRange r{start, end, step};
  if (static_cast<int64_t>(r.Count()) > options.max_samples) {
    return absl::ResourceExhaustedError(
        "query processing would load too many samples into memory in query execution");
  }
  if (!instant && expr.type() != ValueType::kScalar && expr.type() != ValueType::kVector) {
    return absl::InvalidArgumentError(fmt::format(
        "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
        ValueTypeName(expr.type())));
  }
  // A request's `timeout` of zero or less: Prometheus' context has expired before the
  // evaluation starts, whatever the query.
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::DeadlineExceededError("query timed out in query execution");
  }
  // The querier covers exactly the times some selector may read.
  TimeBounds bounds;
  DurationContext dctx{start, end, instant ? 0 : step};
  if (!QueryBounds(options, expr, dctx, start, end, &bounds)) bounds = {kMinTime, kMaxTime};
  if (bounds.mint > bounds.maxt) bounds = {start, start};
  STRATA_ASSIGN_OR_RETURN(auto querier, db.MakeQuerier(bounds.mint, bounds.maxt));
  Evaluator ev(options, *querier, query, deadline);
  ev.query_range = r;
  ev.instant_query = instant;
  QueryResult result;
  const Expr& top = UnwrapParens(expr);
  if (instant && (top.kind() == NodeKind::kMatrixSelector || top.kind() == NodeKind::kSubquery)) {
    STRATA_ASSIGN_OR_RETURN(EvalValue v, ev.Eval(top, r));
    Timestamp T = v.window_ends.empty() ? start : v.window_ends[0];
    std::vector<EvalSeries> kept;
    for (auto& s : v.series) {
      std::erase_if(s.points, [&](const Sample& p) { return p.t <= T - v.range_ms || p.t > T; });
      if (!s.points.empty()) kept.push_back(std::move(s));
    }
    STRATA_ASSIGN_OR_RETURN(kept, FinishSeries(ev, std::move(kept)));
    result.value.type = ValueType::kMatrix;
    for (auto& s : kept) result.value.matrix.push_back({std::move(s.labels), std::move(s.points)});
  } else {
    STRATA_ASSIGN_OR_RETURN(EvalValue v, ev.Eval(expr, r));
    if (v.type == ValueType::kString) {
      result.value.type = ValueType::kString;
      result.value.scalar_t = start;  // like a scalar, stamped with the evaluation time
      result.value.str = v.str;
    } else if (v.type == ValueType::kScalar) {
      if (instant) {
        result.value.type = ValueType::kScalar;
        result.value.scalar_t = start;
        result.value.scalar_v = v.scalars.empty() ? 0 : v.scalars[0];
      } else {
        result.value.type = ValueType::kMatrix;
        Series s;
        for (size_t i = 0; i < v.scalars.size(); ++i) s.samples.push_back({r.At(i), v.scalars[i]});
        result.value.matrix.push_back(std::move(s));
      }
    } else if (v.type == ValueType::kVector) {
      if (instant) {
        // Keep the vector's order (sort, topk, ...); only check for duplicates.
        result.value.type = ValueType::kVector;
        StringSet seen;
        for (auto& s : v.series) {
          if (s.points.empty()) continue;
          Labels l = s.drop_name ? ev.DropNameNow(s.labels) : s.labels;
          if (!seen.insert(l.encoded()).second) {
            return absl::FailedPreconditionError(std::string(kDuplicateLabelset));
          }
          result.value.vector.push_back({std::move(l), start, s.points[0].v});
        }
      } else {
        STRATA_ASSIGN_OR_RETURN(auto series, FinishSeries(ev, std::move(v.series)));
        result.value.type = ValueType::kMatrix;
        for (auto& s : series) {
          if (s.points.empty()) continue;
          result.value.matrix.push_back({std::move(s.labels), std::move(s.points)});
        }
      }
    } else {
      return absl::InternalError("unexpected result type");
    }
  }
  result.warnings = ev.TakeWarnings();
  result.infos = ev.TakeInfos();
  result.peak_samples = ev.peak_samples();
  result.samples_decoded = ev.samples_decoded();
  return result;
}

}  // namespace

absl::StatusOr<QueryResult> Engine::InstantQuery(Queryable& db, const Expr& expr,
                                                 std::string_view query, Timestamp t) const {
  return Run(options_, db, expr, query, t, t, 1, true);
}

absl::StatusOr<QueryResult> Engine::RangeQuery(Queryable& db, const Expr& expr,
                                               std::string_view query, Timestamp start,
                                               Timestamp end, int64_t step) const {
  if (step <= 0) {
    return absl::InvalidArgumentError(
        "zero or negative query resolution step widths are not accepted. Try a positive integer");
  }
  if (end < start) return absl::InvalidArgumentError("end timestamp must not be before start time");
  return Run(options_, db, expr, query, start, end, step, false);
}

}  // namespace strata::promql
