// Binary operators: scalar/scalar, vector/scalar and vector/vector with matching.
#include <algorithm>
#include <cmath>

#include "query/eval_internal.h"
#include "query/go_math.h"
#include "src/status.h"

namespace strata::promql {
namespace {

bool DropsName(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd:
    case BinaryOp::kSub:
    case BinaryOp::kMul:
    case BinaryOp::kDiv:
    case BinaryOp::kMod:
    case BinaryOp::kPow:
    case BinaryOp::kAtan2:
      return true;
    default:
      return false;
  }
}

// The value of `l op r`, and for comparisons whether the pair is kept (value = l).
std::pair<double, bool> Apply(BinaryOp op, double l, double r) {
  switch (op) {
    case BinaryOp::kAdd:
      return {l + r, true};
    case BinaryOp::kSub:
      return {l - r, true};
    case BinaryOp::kMul:
      return {l * r, true};
    case BinaryOp::kDiv:
      return {l / r, true};
    case BinaryOp::kMod:
      return {std::fmod(l, r), true};
    case BinaryOp::kPow:
      return {GoPow(l, r), true};
    case BinaryOp::kAtan2:
      return {std::atan2(l, r), true};
    case BinaryOp::kEql:
      return {l, l == r};
    case BinaryOp::kNeq:
      return {l, l != r};
    case BinaryOp::kGtr:
      return {l, l > r};
    case BinaryOp::kLss:
      return {l, l < r};
    case BinaryOp::kGte:
      return {l, l >= r};
    case BinaryOp::kLte:
      return {l, l <= r};
    default:
      return {0, false};
  }
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

}  // namespace

absl::StatusOr<EvalValue> Evaluator::EvalBinary(const Binary& b, const StepRange& r) {
  STRATA_ASSIGN_OR_RETURN(EvalValue lhs, Eval(*b.lhs, r));
  STRATA_ASSIGN_OR_RETURN(EvalValue rhs, Eval(*b.rhs, r));
  if (lhs.type == ValueType::kScalar && rhs.type == ValueType::kScalar) {
    EvalValue out;
    out.type = ValueType::kScalar;
    out.scalars.resize(lhs.scalars.size());
    for (size_t i = 0; i < lhs.scalars.size(); ++i) {
      auto [v, keep] = Apply(b.op, lhs.scalars[i], rhs.scalars[i]);
      if (IsComparison(b.op)) v = keep ? 1 : 0;
      out.scalars[i] = v;
    }
    return out;
  }
  if (lhs.type == ValueType::kVector && rhs.type == ValueType::kVector) {
    return EvalVectorBinary(b, std::move(lhs), std::move(rhs), r);
  }
  // Vector and scalar.
  bool swap = lhs.type == ValueType::kScalar;
  EvalValue& vec = swap ? rhs : lhs;
  const std::vector<double>& sc = swap ? lhs.scalars : rhs.scalars;
  bool comparison = IsComparison(b.op);
  EvalValue out;
  out.type = ValueType::kVector;
  for (auto& s : vec.series) {
    std::vector<Sample> pts;
    pts.reserve(s.points.size());
    for (const Sample& p : s.points) {
      double sv = sc[r.Index(p.t)];
      double l = swap ? sv : p.v, rr = swap ? p.v : sv;
      auto [v, keep] = Apply(b.op, l, rr);
      if (comparison && swap) v = p.v;
      if (b.return_bool) {
        v = keep ? 1 : 0;
        keep = true;
      }
      if (keep) pts.push_back({p.t, v});
    }
    if (pts.empty()) continue;
    s.points = std::move(pts);
    if (DropsName(b.op) || b.return_bool) DropName(s);
    out.series.push_back(std::move(s));
  }
  return out;
}

absl::StatusOr<EvalValue> Evaluator::EvalVectorBinary(const Binary& b, EvalValue lhs, EvalValue rhs,
                                                      const StepRange& r) {
  const VectorMatching& m = *b.matching;
  std::vector<std::string> names = Sorted(m.matching_labels);
  auto sig = [&](const Labels& l) {
    return m.on ? l.HashForNames(names) : l.HashWithoutNames(names);
  };
  EvalValue out;
  out.type = ValueType::kVector;

  if (IsSetOperator(b.op)) {
    // Per step: which signatures are present on each side.
    std::vector<uint64_t> lsig(lhs.series.size()), rsig(rhs.series.size());
    for (size_t i = 0; i < lhs.series.size(); ++i) lsig[i] = sig(lhs.series[i].labels);
    for (size_t i = 0; i < rhs.series.size(); ++i) rsig[i] = sig(rhs.series[i].labels);
    size_t n = r.Count();
    std::vector<absl::flat_hash_set<uint64_t>> rsteps(n), lsteps(n);
    for (size_t i = 0; i < rhs.series.size(); ++i) {
      for (const Sample& p : rhs.series[i].points) rsteps[r.Index(p.t)].insert(rsig[i]);
    }
    if (b.op == BinaryOp::kOr) {
      for (size_t i = 0; i < lhs.series.size(); ++i) {
        for (const Sample& p : lhs.series[i].points) lsteps[r.Index(p.t)].insert(lsig[i]);
      }
    }
    for (size_t i = 0; i < lhs.series.size(); ++i) {
      auto& s = lhs.series[i];
      if (b.op != BinaryOp::kOr) {
        bool want = b.op == BinaryOp::kAnd;
        std::erase_if(s.points, [&](const Sample& p) {
          return rsteps[r.Index(p.t)].contains(lsig[i]) != want;
        });
      }
      if (!s.points.empty()) out.series.push_back(std::move(s));
    }
    if (b.op == BinaryOp::kOr) {
      for (size_t i = 0; i < rhs.series.size(); ++i) {
        auto& s = rhs.series[i];
        std::erase_if(s.points,
                      [&](const Sample& p) { return lsteps[r.Index(p.t)].contains(rsig[i]); });
        if (!s.points.empty()) out.series.push_back(std::move(s));
      }
    }
    STRATA_RETURN_IF_ERROR(Charge(static_cast<int64_t>(out.SampleCount())));
    return out;
  }

  // Arithmetic and comparison with matching. For group_right the sides swap so that the
  // "one" side is always `one`.
  bool swapped = m.card == VectorMatchCard::kOneToMany;
  EvalValue& many = swapped ? rhs : lhs;
  EvalValue& one = swapped ? lhs : rhs;
  // As in Prometheus, the fill values travel with the sides' roles: fill_right is used for
  // an unmatched "many" element, fill_left for an unmatched "one" element.
  std::optional<double> fill_many = m.fill_right;
  std::optional<double> fill_one_missing_many = m.fill_left;
  // fill_many: value used for the "one" side when a many-side element has no match.
  // fill_one_missing_many: value used for the many side when a one-side element is unmatched.
  std::vector<uint64_t> msig(many.series.size()), osig(one.series.size());
  for (size_t i = 0; i < many.series.size(); ++i) msig[i] = sig(many.series[i].labels);
  for (size_t i = 0; i < one.series.size(); ++i) osig[i] = sig(one.series[i].labels);
  std::vector<std::string> include = Sorted(m.include);

  // Result label sets are cached per (many series, one series) pair.
  SeriesBuilder builder;
  // Output series handle per (many series, one series) pair.
  absl::flat_hash_map<std::pair<size_t, size_t>, size_t> metric_cache;
  auto result_metric = [&](size_t mi, size_t oi, bool from_one) -> size_t {
    auto key = std::make_pair(mi, oi);
    if (auto it = metric_cache.find(key); it != metric_cache.end()) return it->second;
    const EvalSeries& base = from_one ? one.series[oi] : many.series[mi];
    LabelsBuilder lb(base.labels);
    // Arithmetic drops the name before group_x's labels are copied (group_left(__name__)
    // puts the one side's back); a bool comparison drops it after them, as Prometheus does.
    // With delayed name removal the name is only marked to go.
    const bool drop_before = DropsName(b.op) || from_one;
    bool drop = base.drop_name;
    if (options_.delayed_name_removal) {
      drop = drop || drop_before || b.return_bool;
    } else if (drop_before) {
      lb.Del(kMetricName);
    }
    if (m.card == VectorMatchCard::kOneToOne || from_one) {
      if (m.on) {
        lb.Keep(names);
      } else {
        for (const auto& n : names) lb.Del(n);
        if (from_one && m.card != VectorMatchCard::kOneToOne) lb.Del(kMetricName);
      }
    }
    if (!from_one && oi != SIZE_MAX) {
      for (const auto& n : include) {
        std::string_view v = one.series[oi].labels.Get(n);
        if (v.empty()) {
          lb.Del(n);
        } else {
          lb.Set(n, v);
        }
      }
    }
    if (b.return_bool && !options_.delayed_name_removal) lb.Del(kMetricName);
    size_t h = builder.Handle(lb.Build(), drop);
    metric_cache.emplace(key, h);
    return h;
  };

  // The two in label order, as current Prometheus reports them (operators.test), whatever
  // order the series came in.
  auto labels_list = [](const EvalSeries& a, const EvalSeries& c) {
    bool swap = Compare(c.labels, a.labels) < 0;
    return fmt::format("[{}, {}]", (swap ? c : a).labels.ToString(),
                       (swap ? a : c).labels.ToString());
  };
  auto group_string = [&](const Labels& l) {
    LabelsBuilder lb(l);
    if (m.on) {
      lb.Keep(names);
    } else {
      lb.Del(kMetricName);
      for (const auto& n : names) lb.Del(n);
    }
    return lb.Build().ToString();
  };

  std::vector<size_t> mcur(many.series.size(), 0), ocur(one.series.size(), 0);
  absl::flat_hash_map<uint64_t, size_t> one_by_sig;
  absl::flat_hash_set<uint64_t> matched_one;
  absl::flat_hash_set<size_t> inserted;
  absl::flat_hash_set<uint64_t> matched_sigs;
  size_t n = r.Count();
  for (size_t step = 0; step < n; ++step) {
    Timestamp t = r.At(step);
    one_by_sig.clear();
    matched_one.clear();
    inserted.clear();
    matched_sigs.clear();
    std::vector<std::pair<size_t, double>> ones, manys;
    for (size_t i = 0; i < one.series.size(); ++i) {
      auto& pts = one.series[i].points;
      size_t& c = ocur[i];
      while (c < pts.size() && pts[c].t < t) ++c;
      if (c < pts.size() && pts[c].t == t) ones.push_back({i, pts[c].v});
    }
    for (size_t i = 0; i < many.series.size(); ++i) {
      auto& pts = many.series[i].points;
      size_t& c = mcur[i];
      while (c < pts.size() && pts[c].t < t) ++c;
      if (c < pts.size() && pts[c].t == t) manys.push_back({i, pts[c].v});
    }
    // As Prometheus: with one side empty at this step nothing can match (and duplicates on
    // the other side are no error), unless a fill value stands in for the missing side.
    if (manys.empty() && ones.empty()) continue;
    if ((manys.empty() || ones.empty()) && !fill_many && !fill_one_missing_many) continue;
    for (size_t k = 0; k < ones.size(); ++k) {
      if (one_by_sig.emplace(osig[ones[k].first], k).second) continue;
      // Many-to-many. The pair Prometheus names is the first duplicate it meets going through
      // the side's series in their label order, whatever order they came in here.
      std::vector<size_t> sorted(ones.size());
      for (size_t j = 0; j < ones.size(); ++j) sorted[j] = ones[j].first;
      std::sort(sorted.begin(), sorted.end(), [&](size_t x, size_t y) {
        return Compare(one.series[x].labels, one.series[y].labels) < 0;
      });
      absl::flat_hash_map<uint64_t, size_t> first_by_sig;
      for (size_t i : sorted) {
        auto [it, ok] = first_by_sig.emplace(osig[i], i);
        if (ok) continue;
        return absl::FailedPreconditionError(fmt::format(
            "found duplicate series for the match group {} on the {} hand-side of the operation: "
            "{};many-to-many matching not allowed: matching labels must be unique on one side",
            group_string(one.series[i].labels), swapped ? "left" : "right",
            labels_list(one.series[it->second], one.series[i])));
      }
    }
    auto emit = [&](size_t mi, size_t oi, double mv, double ov, bool from_one,
                    uint64_t match_sig) -> absl::Status {
      double l = swapped ? ov : mv, rr = swapped ? mv : ov;
      if (m.card == VectorMatchCard::kOneToOne && !matched_sigs.insert(match_sig).second) {
        return absl::FailedPreconditionError(
            "multiple matches for labels: many-to-one matching must be explicit "
            "(group_left/group_right)");
      }
      auto [v, keep] = Apply(b.op, l, rr);
      if (b.return_bool) {
        v = keep ? 1 : 0;
        keep = true;
      }
      if (!keep) return absl::OkStatus();
      size_t h = result_metric(mi, oi, from_one);
      if (m.card != VectorMatchCard::kOneToOne && !inserted.insert(h).second) {
        return absl::FailedPreconditionError(
            "multiple matches for labels: grouping labels must ensure unique matches");
      }
      return builder.AddAt(h, t, v);
    };
    for (const auto& [mi, mv] : manys) {
      auto it = one_by_sig.find(msig[mi]);
      if (it == one_by_sig.end()) {
        if (fill_many) STRATA_RETURN_IF_ERROR(emit(mi, SIZE_MAX, mv, *fill_many, false, msig[mi]));
        continue;
      }
      matched_one.insert(msig[mi]);
      auto [oi, ov] = ones[it->second];
      STRATA_RETURN_IF_ERROR(emit(mi, oi, mv, ov, false, msig[mi]));
    }
    if (fill_one_missing_many) {
      for (const auto& [oi, ov] : ones) {
        if (matched_one.contains(osig[oi])) continue;
        STRATA_RETURN_IF_ERROR(emit(SIZE_MAX, oi, *fill_one_missing_many, ov, true, osig[oi]));
      }
    }
    STRATA_RETURN_IF_ERROR(CheckDeadline());
  }
  out.series = builder.Take();
  return out;
}

}  // namespace strata::promql
