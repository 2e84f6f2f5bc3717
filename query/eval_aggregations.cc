// Aggregation operators, evaluated over all steps at once.
#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <type_traits>

#include "absl/hash/hash.h"
#include "query/eval_internal.h"
#include "query/printer.h"
#include "src/status.h"

namespace strata::promql {
namespace {

struct Group {
  bool seen = false;
  double value = 0;
  double mean = 0;
  double kahan = 0;
  double count = 0;
  bool incremental_mean = false;
  bool drop_name = false;                        // some input's metric name is marked for removal
  std::vector<double> values;                    // quantile
  std::vector<std::pair<size_t, double>> elems;  // topk/bottomk/limitk/limit_ratio: series index
};

std::string FormatGoFloat(double v) { return FormatNumber(v); }

// The groups of an aggregation: the output label set of each, in order of first
// appearance, and the group of a series' labels.
class Grouper {
 public:
  // `names`: the grouping labels, sorted and unique. `without` drops them and the metric
  // name (and `extra_dropped`, count_values' label), else only they are kept.
  Grouper(bool without, const std::vector<std::string>& names, std::string_view extra_dropped)
      : without_(without), names_(names) {
    if (!without) return;
    names_.emplace_back(kMetricName);
    if (!extra_dropped.empty()) names_.emplace_back(extra_dropped);
    std::sort(names_.begin(), names_.end());
    names_.erase(std::unique(names_.begin(), names_.end()), names_.end());
  }

  size_t GroupOf(const Labels& l) {
    gl_.AssignSubset(l, names_, /*keep=*/!without_);
    // Any hash of the packed bytes does here (Labels::Hash is the stable one, and slower).
    auto& candidates = by_hash_[absl::HashOf(gl_.encoded())];
    for (size_t c : candidates) {
      if (labels_[c] == gl_) return c;
    }
    candidates.push_back(labels_.size());
    labels_.push_back(gl_);
    return labels_.size() - 1;
  }
  const std::vector<Labels>& labels() const { return labels_; }

 private:
  bool without_;
  std::vector<std::string> names_;
  absl::flat_hash_map<uint64_t, std::vector<size_t>> by_hash_;
  std::vector<Labels> labels_;
  Labels gl_;  // refilled for each series; copied only for a new group
};

// A step's sum for one group, its additions in input series order.
struct SumCell {
  double value = 0;
  double kahan = 0;
  bool seen = false;
  bool drop_name = false;
};

void AddToSum(SumCell& c, double f, bool drop_name, size_t group, std::vector<size_t>& order) {
  c.drop_name |= drop_name;
  if (c.seen) {
    KahanAdd(f, c.value, c.kahan);
    return;
  }
  c.seen = true;
  order.push_back(group);
  c.value = f;
  c.kahan = 0;
}

double SumOf(const SumCell& c) { return std::isinf(c.value) ? c.value : c.value + c.kahan; }

// The aggregations whose state per group and step is a Group's numbers alone.
bool IsPlain(AggregateOp op) {
  switch (op) {
    case AggregateOp::kSum:
    case AggregateOp::kAvg:
    case AggregateOp::kCount:
    case AggregateOp::kGroup:
    case AggregateOp::kMax:
    case AggregateOp::kMin:
    case AggregateOp::kStddev:
    case AggregateOp::kStdvar:
      return true;
    default:
      return false;
  }
}

// Adds value `f` of a series to group `g` of one step (REQUIRES: g.seen; the first value
// is taken by StartGroup).
void AddPlain(AggregateOp op, Group& g, double f) {
  switch (op) {
    case AggregateOp::kSum:
      KahanAdd(f, g.value, g.kahan);
      break;
    case AggregateOp::kAvg: {
      g.count += 1;
      if (!g.incremental_mean) {
        double nv = g.value, nc = g.kahan;
        KahanAdd(f, nv, nc);
        if (!std::isinf(nv)) {
          g.value = nv;
          g.kahan = nc;
          break;
        }
        g.incremental_mean = true;
        g.mean = g.value / (g.count - 1);
        g.kahan /= (g.count - 1);
      }
      if (std::isinf(g.mean)) {
        if (std::isinf(f) && (g.mean > 0) == (f > 0)) break;
        if (!std::isinf(f) && !std::isnan(f)) break;
      }
      double q = (g.count - 1) / g.count;
      double m = q * g.mean, c = q * g.kahan;
      KahanAdd(f / g.count, m, c);
      g.mean = m;
      g.kahan = c;
      break;
    }
    case AggregateOp::kCount:
      g.count += 1;
      break;
    case AggregateOp::kMax:
      if (g.value < f || std::isnan(g.value)) g.value = f;
      break;
    case AggregateOp::kMin:
      if (g.value > f || std::isnan(g.value)) g.value = f;
      break;
    case AggregateOp::kStddev:
    case AggregateOp::kStdvar: {
      g.count += 1;
      double delta = f - (g.mean + g.kahan);
      KahanAdd(delta / g.count, g.mean, g.kahan);
      g.value += delta * (f - (g.mean + g.kahan));
      break;
    }
    default:
      break;
  }
}

// A group's first value at a step.
void StartGroup(AggregateOp op, Group& g, double f) {
  g.seen = true;
  g.count = 1;
  g.value = f;
  g.mean = f;
  g.kahan = 0;
  if (op == AggregateOp::kStddev || op == AggregateOp::kStdvar) {
    g.value = (std::isnan(f) || std::isinf(f)) ? std::nan("") : 0;
  }
}

// Adds a series' value `f` to a plain aggregation's group `g` (group index `gi`) at one
// step, whose groups in order of first appearance are `order`.
void AddToGroup(AggregateOp op, Group& g, double f, bool drop_name, size_t gi,
                std::vector<size_t>& order) {
  g.drop_name |= drop_name;
  if (g.seen) {
    AddPlain(op, g, f);
    return;
  }
  StartGroup(op, g, f);
  order.push_back(gi);
}

// Calls f(step index, value) for each of a series' points at a step of `r` (points are at
// consecutive steps as a rule: the step after the last one is expected first, and the
// two integer divisions are paid only when it is not that).
template <typename F>
void ForEachStepPoint(const std::vector<Sample>& points, const StepRange& r, size_t steps, F&& f) {
  size_t i = 0;
  Timestamp expected = r.start;
  for (const Sample& pt : points) {
    if (pt.t != expected || i >= steps) {
      if (pt.t < r.start || pt.t > r.end || (pt.t - r.start) % r.interval != 0) continue;
      i = r.Index(pt.t);
      expected = pt.t;
    }
    f(i, pt.v);
    ++i;
    expected += r.interval;
  }
}

// The value of a plain aggregation's group.
double PlainValue(AggregateOp op, const Group& g) {
  switch (op) {
    case AggregateOp::kSum:
      return std::isinf(g.value) ? g.value : g.value + g.kahan;
    case AggregateOp::kAvg:
      if (g.incremental_mean) return std::isinf(g.mean) ? g.mean : g.mean + g.kahan;
      return (std::isinf(g.value) ? g.value : g.value + g.kahan) / g.count;
    case AggregateOp::kCount:
      return g.count;
    case AggregateOp::kGroup:
      return 1;
    case AggregateOp::kMax:
    case AggregateOp::kMin:
      return g.value;
    case AggregateOp::kStdvar:
      return g.value / g.count;
    case AggregateOp::kStddev:
      return std::sqrt(g.value / g.count);
    default:
      return 0;
  }
}

// The aggregation's grouping labels, sorted and unique.
std::vector<std::string> SortedGrouping(const Aggregate& a) {
  std::vector<std::string> grouping = a.grouping;
  std::sort(grouping.begin(), grouping.end());
  grouping.erase(std::unique(grouping.begin(), grouping.end()), grouping.end());
  return grouping;
}

// A float as Go's fmt prints it with %v (strconv's shortest 'g': exponent form below 1e-4
// and from 1e6 up, "1e+20", "-9.3e+18", "+Inf").
std::string FormatGoV(double v) {
  if (!std::isfinite(v)) return FormatNumber(v);
  char buf[64];
  auto sci = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string_view text(buf, static_cast<size_t>(sci.ptr - buf));
  int exp = std::atoi(text.data() + text.find('e') + 1);
  if (exp < -4 || exp >= 6) return std::string(text);
  return FormatNumber(v);
}

}  // namespace

std::optional<absl::StatusOr<EvalValue>> Evaluator::EvalAggregateOfRangeFunction(
    const Aggregate& a, const StepRange& r) {
  // The form: op [by|without (...)] (f(name{...}[d])), op an aggregation without a
  // parameter whose state is numbers alone (IsPlain), f a range function that drops the
  // metric name, over a selector of one metric name, with one worker. The groups never
  // hold the name, so it is left on f's outputs. Dropping it at once (without delayed name
  // removal) cannot make two of them share a label set (they differ in labels other than
  // the name) unless some carry __type__ or __unit__, which DropName drops too: such a
  // series sends the query down the general path.
  if (!IsPlain(a.op) || a.param || Workers(SIZE_MAX) > 1) return std::nullopt;
  const Expr& e = UnwrapParens(*a.expr);
  if (e.kind() != NodeKind::kCall) return std::nullopt;
  const Call& c = e.As<Call>();
  using F = FunctionId;
  const F id = c.func->id;
  if (id == F::kAbsentOverTime || id == F::kLastOverTime || id == F::kFirstOverTime) {
    return std::nullopt;
  }
  const MatrixSelector* ms = nullptr;
  for (const auto& arg : c.args) {
    if (arg->type() != ValueType::kMatrix) continue;
    const Expr& m = UnwrapParens(*arg);
    if (m.kind() != NodeKind::kMatrixSelector) return std::nullopt;
    ms = &m.As<MatrixSelector>();
  }
  if (ms == nullptr) return std::nullopt;
  const auto& matchers = ms->vector_selector().matchers;
  if (std::none_of(matchers.begin(), matchers.end(), [](const LabelMatcher& m) {
        return m.type() == MatchType::kEqual && m.name() == kMetricName;
      })) {
    return std::nullopt;
  }
  std::vector<std::string> grouping = SortedGrouping(a);
  // `by` a list with the name would see the name f drops; `without` drops it anyway.
  if (!a.without && std::binary_search(grouping.begin(), grouping.end(), kMetricName)) {
    return std::nullopt;
  }

  // Runs the aggregation with `Cell`s (SumCell for sum, else Group) per group and step.
  auto run = [&]<typename Cell>(const Cell*) -> std::optional<absl::StatusOr<EvalValue>> {
    const int64_t samples_before = current_samples_.load();
    const int64_t decoded_before = samples_decoded_.load();
    const size_t steps = r.Count();
    Grouper grouper(a.without, grouping, "");
    std::vector<std::vector<Cell>> cells;  // per group, per step
    std::vector<std::vector<size_t>> order_at(steps);
    // Set when this path gives up: a series with __type__ or __unit__, or more groups
    // than cells to hold (a row of cells per group spans every step, however few points
    // the group has; the general path holds only the points).
    bool general = false;
    constexpr size_t kMaxCells = 1 << 20;
    SeriesConsumer consumer;
    consumer.needs_name_dropped = false;
    consumer.take = [&](EvalSeries& s) -> absl::Status {
      if (!options_.delayed_name_removal &&
          (s.labels.Has("__type__") || s.labels.Has("__unit__"))) {
        general = true;
        return absl::AbortedError("series with __type__ or __unit__");
      }
      const size_t gi = grouper.GroupOf(s.labels);
      if (gi == cells.size()) {
        if ((cells.size() + 1) * steps > kMaxCells) {
          general = true;
          return absl::AbortedError("too many groups");
        }
        cells.emplace_back(steps);
      }
      std::vector<Cell>& row = cells[gi];
      ForEachStepPoint(s.points, r, steps, [&](size_t i, double f) {
        if constexpr (std::is_same_v<Cell, SumCell>) {
          AddToSum(row[i], f, s.drop_name, gi, order_at[i]);
        } else {
          AddToGroup(a.op, row[i], f, s.drop_name, gi, order_at[i]);
        }
      });
      return absl::OkStatus();
    };
    absl::StatusOr<EvalValue> fn = EvalRangeFunction(c, r, &consumer);
    if (general) {
      // Start again on the general path (which reports colliding label sets as always).
      current_samples_ = samples_before;
      samples_decoded_ = decoded_before;
      return std::nullopt;
    }
    if (!fn.ok()) return fn.status();
    SeriesBuilder builder;
    const std::vector<Labels>& group_labels = grouper.labels();
    std::vector<size_t> handle(group_labels.size(), SIZE_MAX);
    for (size_t i = 0; i < steps; ++i) {
      if (order_at[i].empty()) continue;
      for (size_t gi : order_at[i]) {
        const Cell& cell = cells[gi][i];
        double v = 0;
        if constexpr (std::is_same_v<Cell, SumCell>) {
          v = SumOf(cell);
        } else {
          v = PlainValue(a.op, cell);
        }
        if (handle[gi] == SIZE_MAX) handle[gi] = builder.Handle(group_labels[gi], false);
        STRATA_RETURN_IF_ERROR(builder.AddAt(handle[gi], r.At(i), v));
      }
      STRATA_RETURN_IF_ERROR(Charge(static_cast<int64_t>(order_at[i].size())));
      if ((i & 63) == 63) STRATA_RETURN_IF_ERROR(CheckDeadline());
    }
    EvalValue out;
    out.type = ValueType::kVector;
    out.series = builder.Take();
    return out;
  };
  if (a.op == AggregateOp::kSum) return run(static_cast<const SumCell*>(nullptr));
  return run(static_cast<const Group*>(nullptr));
}

absl::StatusOr<EvalValue> Evaluator::EvalAggregate(const Aggregate& a, const StepRange& r) {
  if (auto fused = EvalAggregateOfRangeFunction(a, r)) return std::move(*fused);
  EvalValue param;
  if (a.param) {
    STRATA_ASSIGN_OR_RETURN(param, Eval(*a.param, r));
  }
  STRATA_ASSIGN_OR_RETURN(EvalValue in, Eval(*a.expr, r));
  const AggregateOp op = a.op;

  std::vector<std::string> grouping = SortedGrouping(a);

  std::string count_label;
  if (op == AggregateOp::kCountValues) {
    count_label = param.str;
    if (count_label.empty() || !IsValidUtf8(count_label)) {
      return absl::FailedPreconditionError(
          fmt::format("invalid label name {}", QuoteString(count_label)));
    }
    if (!a.without) {
      grouping.erase(std::remove(grouping.begin(), grouping.end(), count_label), grouping.end());
    }
  }

  // Group of every input series, and the output labels of every group.
  std::vector<size_t> group_of(in.series.size());
  Grouper grouper(a.without, grouping, op == AggregateOp::kCountValues ? count_label : "");
  for (size_t i = 0; i < in.series.size(); ++i) group_of[i] = grouper.GroupOf(in.series[i].labels);
  const std::vector<Labels>& group_labels = grouper.labels();

  EvalValue out;
  out.type = ValueType::kVector;
  SeriesBuilder builder;
  std::vector<Group> groups(group_labels.size());
  std::vector<size_t> order;  // groups in order of first appearance at this step
  // Output series handles: per group (index 0: name kept, 1: name marked for removal) and
  // per input series (topk and friends keep the input labels).
  std::vector<std::array<size_t, 2>> group_handle(group_labels.size(), {SIZE_MAX, SIZE_MAX});
  std::vector<size_t> series_handle(in.series.size(), SIZE_MAX);
  auto add_series = [&](size_t si, Timestamp t, double f) {
    if (series_handle[si] == SIZE_MAX) {
      series_handle[si] = builder.Handle(in.series[si].labels, in.series[si].drop_name);
    }
    return builder.AddAt(series_handle[si], t, f);
  };
  // Adds input series `si`'s value `f` at one step to group `gi` of that step's groups;
  // `order` lists the groups of the step in order of first appearance.
  auto accumulate = [&](std::span<Group> groups, std::vector<size_t>& order, size_t si, size_t gi,
                        double f, double ratio) {
    const EvalSeries& series = in.series[si];
    Group& g = groups[gi];
    if (IsPlain(op)) {
      AddToGroup(op, g, f, series.drop_name, gi, order);
      return;
    }
    g.drop_name |= series.drop_name;
    if (!g.seen) {
      StartGroup(op, g, f);
      order.push_back(gi);
    }
    // The first value is collected like every later one.
    switch (op) {
      case AggregateOp::kQuantile:
        g.values.push_back(f);
        break;
      case AggregateOp::kTopk:
      case AggregateOp::kBottomk:
      case AggregateOp::kLimitk:
        g.elems.push_back({si, f});
        break;
      case AggregateOp::kLimitRatio: {
        double off = static_cast<double>(series.labels.Hash()) /
                     static_cast<double>(std::numeric_limits<uint64_t>::max());
        if ((ratio >= 0 && off < ratio) || (ratio < 0 && off >= 1.0 + ratio)) {
          g.elems.push_back({si, f});
        }
        break;
      }
      default:
        break;
    }
  };
  // Emits one step's groups (in `order`) to the output series.
  auto finish = [&](Timestamp t, std::span<Group> groups, const std::vector<size_t>& order,
                    double p, int64_t k) -> absl::Status {
    for (size_t gi : order) {
      Group& g = groups[gi];
      const Labels& gl = group_labels[gi];
      double v = IsPlain(op) ? PlainValue(op, g) : 0;
      switch (op) {
        case AggregateOp::kQuantile:
          v = Quantile(p, std::move(g.values));
          break;
        case AggregateOp::kTopk:
        case AggregateOp::kBottomk: {
          bool top = op == AggregateOp::kTopk;
          // NaN sorts last either way; ties keep input order.
          std::stable_sort(g.elems.begin(), g.elems.end(), [top](const auto& x, const auto& y) {
            if (std::isnan(x.second)) return false;
            if (std::isnan(y.second)) return true;
            return top ? x.second > y.second : x.second < y.second;
          });
          if (static_cast<int64_t>(g.elems.size()) > k) g.elems.resize(static_cast<size_t>(k));
          for (const auto& [si, f] : g.elems) {
            STRATA_RETURN_IF_ERROR(add_series(si, t, f));
          }
          continue;
        }
        case AggregateOp::kLimitk:
          if (static_cast<int64_t>(g.elems.size()) > k) g.elems.resize(static_cast<size_t>(k));
          [[fallthrough]];
        case AggregateOp::kLimitRatio:
          for (const auto& [si, f] : g.elems) {
            STRATA_RETURN_IF_ERROR(add_series(si, t, f));
          }
          continue;
        default:  // plain (above) or count_values (counted per value elsewhere)
          break;
      }
      bool drop = g.drop_name && gl.Has(kMetricName);
      size_t& h = group_handle[gi][drop ? 1 : 0];
      if (h == SIZE_MAX) h = builder.Handle(gl, drop);
      STRATA_RETURN_IF_ERROR(builder.AddAt(h, t, v));
    }
    return Charge(static_cast<int64_t>(order.size()));
  };
  // Aggregations without a parameter, whose per-step state fits a table: series by series
  // (each series' points in one pass) instead of step by step (every series looked at for
  // every step). A group's values are still added in input series order, so the results
  // are bit for bit the same.
  constexpr size_t kMaxCells = 1 << 16;
  const size_t steps = r.Count(), ngroups = group_labels.size();
  const bool series_major = !a.param && op != AggregateOp::kCountValues &&
                            steps * ngroups <= kMaxCells && !in.series.empty();
  // Calls add(step index, series index, group index, value) for every point of every input
  // series, series by series.
  auto for_each_point = [&](auto&& add) -> absl::Status {
    size_t work = 0;
    for (size_t si = 0; si < in.series.size(); ++si) {
      const size_t gi = group_of[si];
      ForEachStepPoint(in.series[si].points, r, steps,
                       [&](size_t i, double f) { add(i, si, gi, f); });
      work += in.series[si].points.size() + 1;
      if (work >= 65536) {
        work = 0;
        STRATA_RETURN_IF_ERROR(CheckDeadline());
      }
    }
    return absl::OkStatus();
  };
  if (series_major && op == AggregateOp::kSum) {
    // sum, the aggregation of most dashboards: a cell holds only its running sum, and the
    // additions are those (and in the order) of the general path below.
    std::vector<SumCell> cells(steps * ngroups);  // step-major
    std::vector<std::vector<size_t>> order_at(steps);
    STRATA_RETURN_IF_ERROR(for_each_point([&](size_t i, size_t si, size_t gi, double f) {
      AddToSum(cells[i * ngroups + gi], f, in.series[si].drop_name, gi, order_at[i]);
    }));
    for (size_t i = 0; i < steps; ++i) {
      if (order_at[i].empty()) continue;
      for (size_t gi : order_at[i]) {
        const SumCell& c = cells[i * ngroups + gi];
        double v = SumOf(c);
        bool drop = c.drop_name && group_labels[gi].Has(kMetricName);
        size_t& h = group_handle[gi][drop ? 1 : 0];
        if (h == SIZE_MAX) h = builder.Handle(group_labels[gi], drop);
        STRATA_RETURN_IF_ERROR(builder.AddAt(h, r.At(i), v));
      }
      STRATA_RETURN_IF_ERROR(Charge(static_cast<int64_t>(order_at[i].size())));
      if ((i & 63) == 63) STRATA_RETURN_IF_ERROR(CheckDeadline());
    }
    out.series = builder.Take();
    return out;
  }
  if (series_major) {
    std::vector<Group> cells(steps * ngroups);  // step-major: a step's groups are together
    std::vector<std::vector<size_t>> order_at(steps);
    STRATA_RETURN_IF_ERROR(for_each_point([&](size_t i, size_t si, size_t gi, double f) {
      accumulate(std::span<Group>(cells.data() + i * ngroups, ngroups), order_at[i], si, gi, f, 0);
    }));
    for (size_t i = 0; i < steps; ++i) {
      if (order_at[i].empty()) continue;
      STRATA_RETURN_IF_ERROR(finish(r.At(i), std::span<Group>(cells.data() + i * ngroups, ngroups),
                                    order_at[i], 0, 0));
      if ((i & 63) == 63) STRATA_RETURN_IF_ERROR(CheckDeadline());
    }
    out.series = builder.Take();
    return out;
  }
  absl::Status st = ForEachStep(
      in, r, [&](size_t step, Timestamp t, std::span<const StepElement> elems) -> absl::Status {
        for (size_t g : order) groups[g] = Group();
        order.clear();
        double p = a.param && param.type == ValueType::kScalar ? param.scalars[step] : 0;
        int64_t k = 0;
        double ratio = 0;
        if (op == AggregateOp::kTopk || op == AggregateOp::kBottomk || op == AggregateOp::kLimitk) {
          if (std::isnan(p)) return absl::FailedPreconditionError("Parameter value is NaN");
          // As Prometheus' convertibleToInt64: at most the largest double below 2^63.
          if (!(p <= 9223372036854774784.0 && p >= -9223372036854775808.0)) {
            return absl::FailedPreconditionError(
                fmt::format("Scalar value {} overflows int64", FormatGoV(p)));
          }
          k = static_cast<int64_t>(p);
          if (k < 1 || elems.empty()) return absl::OkStatus();
        }
        if (op == AggregateOp::kLimitRatio) {
          if (std::isnan(p)) return absl::FailedPreconditionError("Ratio value is NaN");
          ratio = p;
          if (ratio > 1 || ratio < -1) {
            double capped = ratio > 1 ? 1 : -1;
            Warn(*a.param,
                 fmt::format("ratio value should be between -1 and 1, got {}, capping to {}",
                             FormatNumber(ratio), FormatNumber(capped)));
            ratio = capped;
          }
        }
        if (elems.empty()) return absl::OkStatus();
        if (op == AggregateOp::kQuantile && (std::isnan(p) || p < 0 || p > 1)) {
          Warn(*a.param,
               fmt::format("quantile value should be between 0 and 1, got {}", FormatNumber(p)));
        }
        for (const StepElement& el : elems) {
          size_t si = static_cast<size_t>(el.series - in.series.data());
          accumulate(groups, order, si, group_of[si], el.v, ratio);
        }
        if (op == AggregateOp::kCountValues) {
          // Counted per (group, value).
          std::vector<std::pair<Labels, double>> counts;
          StringMap<size_t> idx;
          for (const StepElement& el : elems) {
            size_t si = static_cast<size_t>(el.series - in.series.data());
            LabelsBuilder lb(group_labels[group_of[si]]);
            lb.Set(count_label, FormatGoFloat(el.v));
            Labels l = lb.Build();
            auto [it, ok] = idx.try_emplace(l.encoded(), counts.size());
            if (ok) counts.push_back({l, 0});
            counts[it->second].second += 1;
          }
          for (auto& [l, c] : counts) STRATA_RETURN_IF_ERROR(builder.Add(l, false, t, c));
          return absl::OkStatus();
        }
        return finish(t, groups, order, p, k);
      });
  STRATA_RETURN_IF_ERROR(st);
  out.series = builder.Take();
  return out;
}

}  // namespace strata::promql
