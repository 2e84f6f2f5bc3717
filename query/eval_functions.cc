// Function calls: range-vector functions (windows slide over each series' samples), and
// instant-vector, scalar and label functions.
#include <algorithm>
#include <cmath>
#include <ctime>
#include <limits>
#include <map>
#include <numbers>
#include <set>
#include <span>

#include "query/eval_internal.h"
#include "query/printer.h"
#include "re2/re2.h"
#include "src/matcher.h"
#include "src/status.h"

namespace strata::promql {
namespace {

using F = FunctionId;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The labels of absent() and absent_over_time() of a selector, as Prometheus derives them,
// matcher by matcher in the order written: the first `=` matcher of a name sets it, any
// other matcher of that name removes it again. So `{job!~"x", job="a"}` keeps job="a" and
// `{job="a", job!~"x"}` does not.
Labels AbsentLabels(const VectorSelector& vs) {
  std::map<std::string, std::string> labels;
  std::set<std::string> has;
  for (const auto& m : vs.matchers) {
    if (m.name() == kMetricName) continue;
    if (m.type() == MatchType::kEqual && has.insert(m.name()).second) {
      if (m.value().empty()) {
        labels.erase(m.name());
      } else {
        labels[m.name()] = m.value();
      }
    } else {
      labels.erase(m.name());
    }
  }
  return Labels::FromPairs({labels.begin(), labels.end()});
}

// Prometheus' linear regression with Kahan sums.
std::pair<double, double> LinearRegression(std::span<const Sample> s, Timestamp intercept_time) {
  double n = 0, sum_x = 0, cx = 0, sum_y = 0, cy = 0, sum_xy = 0, cxy = 0, sum_x2 = 0, cx2 = 0;
  double init_y = s[0].v;
  bool const_y = true;
  for (size_t i = 0; i < s.size(); ++i) {
    if (const_y && i > 0 && s[i].v != init_y) const_y = false;
    n += 1;
    double x = static_cast<double>(s[i].t - intercept_time) / 1e3;
    KahanAdd(x, sum_x, cx);
    KahanAdd(s[i].v, sum_y, cy);
    KahanAdd(x * s[i].v, sum_xy, cxy);
    KahanAdd(x * x, sum_x2, cx2);
  }
  if (const_y) {
    if (std::isinf(init_y)) return {kNaN, kNaN};
    return {0, init_y};
  }
  sum_x += cx;
  sum_y += cy;
  sum_xy += cxy;
  sum_x2 += cx2;
  double cov_xy = sum_xy - sum_x * sum_y / n;
  double var_x = sum_x2 - sum_x * sum_x / n;
  double slope = cov_xy / var_x;
  double intercept = sum_y / n - slope * sum_x / n;
  return {slope, intercept};
}

double AvgOf(std::span<const Sample> s) {
  double sum = s[0].v, count = 1, mean = 0, c = 0;
  bool incremental = false;
  for (size_t i = 1; i < s.size(); ++i) {
    double f = s[i].v;
    count = static_cast<double>(i + 1);
    if (!incremental) {
      double ns = sum, nc = c;
      KahanAdd(f, ns, nc);
      if (!std::isinf(ns)) {
        sum = ns;
        c = nc;
        continue;
      }
      incremental = true;
      mean = sum / (count - 1);
      c /= (count - 1);
    }
    if (std::isinf(mean)) {
      if (std::isinf(f) && (mean > 0) == (f > 0)) continue;
      if (!std::isinf(f) && !std::isnan(f)) continue;
    }
    double q = (count - 1) / count;
    double m = q * mean, cc = q * c;
    KahanAdd(f / count, m, cc);
    mean = m;
    c = cc;
  }
  if (incremental) return mean + c;
  return sum / count + c / count;
}

double VarianceOf(std::span<const Sample> s) {
  double count = 0, mean = 0, cmean = 0, aux = 0, caux = 0;
  for (const Sample& p : s) {
    count += 1;
    double delta = p.v - (mean + cmean);
    KahanAdd(delta / count, mean, cmean);
    KahanAdd(delta * (p.v - (mean + cmean)), aux, caux);
  }
  return (aux + caux) / count;
}

std::vector<double> Values(std::span<const Sample> s) {
  std::vector<double> v;
  v.reserve(s.size());
  for (const Sample& p : s) v.push_back(p.v);
  return v;
}

// Go's time.Unix(sec).UTC() broken down.
struct CivilTime {
  int64_t year;
  int month, day, hour, minute, wday, yday;
};
CivilTime ToCivil(double seconds) {
  int64_t secs = static_cast<int64_t>(seconds);
  int64_t days = secs / 86400;
  int64_t rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  CivilTime c;
  c.hour = static_cast<int>(rem / 3600);
  c.minute = static_cast<int>(rem % 3600 / 60);
  c.wday = static_cast<int>(((days % 7) + 11) % 7);  // 1970-01-01 was a Thursday (4)
  // Civil from days (Howard Hinnant's algorithm).
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = yoe + era * 400;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  c.day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  c.month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  c.year = c.month <= 2 ? y + 1 : y;
  bool leap = (c.year % 4 == 0 && c.year % 100 != 0) || c.year % 400 == 0;
  static const int kCum[] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
  c.yday = kCum[c.month - 1] + c.day + (leap && c.month > 2 ? 1 : 0);
  return c;
}

int DaysInMonth(int64_t year, int month) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

// Natural ordering of label values (digits compared as numbers).
int NatCompare(std::string_view a, std::string_view b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    bool da = std::isdigit(static_cast<unsigned char>(a[i]));
    bool db = std::isdigit(static_cast<unsigned char>(b[j]));
    if (da && db) {
      size_t si = i, sj = j;
      while (i < a.size() && std::isdigit(static_cast<unsigned char>(a[i]))) ++i;
      while (j < b.size() && std::isdigit(static_cast<unsigned char>(b[j]))) ++j;
      std::string_view na = a.substr(si, i - si), nb = b.substr(sj, j - sj);
      while (na.size() > 1 && na[0] == '0') na.remove_prefix(1);
      while (nb.size() > 1 && nb[0] == '0') nb.remove_prefix(1);
      if (na.size() != nb.size()) return na.size() < nb.size() ? -1 : 1;
      if (na != nb) return na < nb ? -1 : 1;
      continue;
    }
    if (a[i] != b[j])
      return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]) ? -1 : 1;
    ++i;
    ++j;
  }
  if (a.size() - i == b.size() - j) return 0;
  return a.size() - i < b.size() - j ? -1 : 1;
}

// Expands $1, ${1}, $name, ${name} and $$ in `tmpl` with the groups of a match.
std::string ExpandTemplate(std::string_view tmpl, const RE2& re,
                           const std::vector<std::string_view>& groups) {
  std::string out;
  const auto& named = re.NamedCapturingGroups();
  for (size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] != '$' || i + 1 >= tmpl.size()) {
      out.push_back(tmpl[i]);
      continue;
    }
    if (tmpl[i + 1] == '$') {
      out.push_back('$');
      ++i;
      continue;
    }
    std::string name;
    size_t j = i + 1;
    if (tmpl[j] == '{') {
      size_t close = tmpl.find('}', j);
      if (close == std::string_view::npos) {
        out.push_back('$');
        continue;
      }
      name = std::string(tmpl.substr(j + 1, close - j - 1));
      j = close + 1;
    } else {
      while (j < tmpl.size() &&
             (std::isalnum(static_cast<unsigned char>(tmpl[j])) || tmpl[j] == '_'))
        ++j;
      name = std::string(tmpl.substr(i + 1, j - i - 1));
    }
    if (name.empty()) {
      out.push_back('$');
      continue;
    }
    i = j - 1;
    int idx = -1;
    if (std::all_of(name.begin(), name.end(),
                    [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
      idx = std::atoi(name.c_str());
    } else if (auto it = named.find(name); it != named.end()) {
      idx = it->second;
    }
    if (idx >= 0 && static_cast<size_t>(idx) < groups.size()) out.append(groups[idx]);
  }
  return out;
}

bool IsValidLabelName(std::string_view n) { return !n.empty() && IsValidUtf8(n); }

// The first index i >= from with p[i].t > x, or `end`; looked for from `guess` (any index),
// moving back or on one sample at a time. Windows that move by a regular step over
// regularly spaced samples move their ends by about as many samples each step, so a guess
// of the last step's move mostly lands on the answer or next to it: a few compares a step
// instead of one per sample. REQUIRES: p[from, end) sorted by time.
inline size_t FirstAfter(const Sample* p, size_t from, size_t end, Timestamp x, size_t guess) {
  size_t i = std::clamp(guess, from, end);
  if (i > from && p[i - 1].t > x) {
    do --i;
    while (i > from && p[i - 1].t > x);
    return i;
  }
  while (i < end && p[i].t <= x) ++i;
  return i;
}

// The window (T - range, T] of each step in a series' samples [lo, hi), found from the
// last step's (FirstAfter, guessing the same move); starts over when a step's T comes
// before the last one's.
struct WindowCursor {
  size_t lo = 0, hi = 0;
  size_t lo_move = 0, hi_move = 0;  // how far lo and hi moved at the last step
  Timestamp prev_end = std::numeric_limits<Timestamp>::min();

  // Moves to the window ending at T of p[0, np); true when it started over.
  bool Advance(const Sample* p, size_t np, Timestamp T, int64_t range) {
    const bool restart = T < prev_end;
    if (restart) lo = hi = lo_move = hi_move = 0;
    prev_end = T;
    const size_t new_hi = FirstAfter(p, hi, np, T, hi + hi_move);
    hi_move = new_hi - hi;
    hi = new_hi;
    // Past hi every sample is after T, so lo need not be looked for beyond it.
    const size_t new_lo = FirstAfter(p, lo, hi, T - range, lo + lo_move);
    lo_move = new_lo - lo;
    lo = new_lo;
    return restart;
  }
};

// min/max_over_time's scan, one value at a time: keeps `acc` unless `x` is better or `acc`
// is NaN (so the earliest of equal values stays, and the result is NaN only when every
// value is). Folding a window left to right this way is associative in time order:
// Better(fold(A), fold(B)) == fold(A then B), which lets windows be put together from
// pieces folded beforehand.
template <bool kMax>
inline double Better(double acc, double x) {
  // Both tests always made (`|`). (Choosing with a bit mask instead of `?:`, which GCC
  // compiles to jumps, was slower: 28.8 against 17.9 ms for a day of max_over_time[1h].)
  const bool take = (kMax ? x > acc : x < acc) | (acc != acc);
  return take ? x : acc;
}
inline double Better(bool max, double acc, double x) {
  return max ? Better<true>(acc, x) : Better<false>(acc, x);
}

// min/max_over_time of many overlapping windows [lo, hi) of one series, each value folded
// about twice in all instead of once per window holding it: blocks of kBlock samples with
// each block's fold and, within a block, the fold of every prefix and every suffix. A
// window spanning blocks is its first block's suffix, the whole blocks between and its
// last block's prefix, folded in time order.
class BlockExtremes {
 public:
  void Build(bool max, std::span<const Sample> pts) {
    max_ = max;
    pts_ = pts;
    const size_t n = pts.size();
    prefix_.resize(n);
    suffix_.resize(n);
    block_.resize((n + kBlock - 1) / kBlock);
    if (max) {
      BuildAs<true>();
    } else {
      BuildAs<false>();
    }
  }
  // REQUIRES: lo < hi <= the series' size.
  double Window(size_t lo, size_t hi) const {
    return max_ ? WindowAs<true>(lo, hi) : WindowAs<false>(lo, hi);
  }

 private:
  static constexpr size_t kBlock = 16;

  template <bool kMax>
  void BuildAs() {
    const size_t n = pts_.size();
    for (size_t start = 0; start < n; start += kBlock) {
      const size_t end = std::min(start + kBlock, n);
      double acc = pts_[start].v;
      prefix_[start] = acc;
      for (size_t i = start + 1; i < end; ++i) prefix_[i] = acc = Better<kMax>(acc, pts_[i].v);
      block_[start / kBlock] = acc;
      acc = pts_[end - 1].v;
      suffix_[end - 1] = acc;
      for (size_t i = end - 1; i-- > start;) suffix_[i] = acc = Better<kMax>(pts_[i].v, acc);
    }
  }
  template <bool kMax>
  double WindowAs(size_t lo, size_t hi) const {
    const size_t first = lo / kBlock, last = (hi - 1) / kBlock;
    if (first == last) {
      if (lo % kBlock == 0) return prefix_[hi - 1];
      double acc = pts_[lo].v;
      for (size_t i = lo + 1; i < hi; ++i) acc = Better<kMax>(acc, pts_[i].v);
      return acc;
    }
    double acc = suffix_[lo];
    for (size_t b = first + 1; b < last; ++b) acc = Better<kMax>(acc, block_[b]);
    return Better<kMax>(acc, prefix_[hi - 1]);
  }

  bool max_ = true;
  std::span<const Sample> pts_;
  std::vector<double> prefix_, suffix_, block_;
};

// rate, increase and delta over plain windows, every step of one series: the loop
// dashboards spend their time in, kept apart from the general one so that it holds its
// indices and bounds in registers. The arithmetic and its order are Prometheus'
// extrapolation (the window's resets added in order, as a full scan adds them). `resets` are
// the indices k with pts[k] < pts[k-1] (counters only). Sets `*first_with_samples` to the
// first step whose window holds a sample, or leaves it. `check` is called with the work
// done (samples visited) now and then and may fail.
template <typename Check>
absl::Status ExtrapolatedSteps(bool is_counter, bool is_rate, std::span<const Sample> pts,
                               std::span<const size_t> resets, std::span<const Timestamp> ends,
                               int64_t range, const StepRange& r, std::vector<Sample>& out,
                               size_t* first_with_samples, const Check& check) {
  const Sample* const p = pts.data();
  const size_t np = pts.size();
  const size_t* const rs = resets.data();
  const size_t nr = resets.size();
  const size_t n = ends.size();
  out.resize(n);
  Sample* const o = out.data();
  size_t kept = 0;
  WindowCursor cur;
  size_t ri = 0;  // the first reset after the window's start
  size_t work = 0;
  for (size_t i = 0; i < n; ++i) {
    const Timestamp T = ends[i];
    if (cur.Advance(p, np, T, range)) ri = 0;
    const size_t lo = cur.lo, hi = cur.hi;
    const Timestamp start = T - range;
    const size_t count = hi - lo;
    work += count + 1;
    if (work >= 65536) {
      work = 0;
      STRATA_RETURN_IF_ERROR(check());
    }
    if (count == 0) continue;
    if (i < *first_with_samples) *first_with_samples = i;
    if (count < 2) continue;
    const Sample& first = p[lo];
    const Sample& last = p[hi - 1];
    double result = last.v - first.v;
    if (is_counter) {
      while (ri < nr && rs[ri] <= lo) ++ri;
      for (size_t k = ri; k < nr && rs[k] < hi; ++k) result += p[rs[k] - 1].v;
    }
    double range_start = static_cast<double>(start);
    double duration_to_start = (static_cast<double>(first.t) - range_start) / 1000;
    double duration_to_end = static_cast<double>(T - last.t) / 1000;
    double sampled = static_cast<double>(last.t - first.t) / 1000;
    double avg = sampled / static_cast<double>(count - 1);
    double threshold = avg * 1.1;
    if (duration_to_start >= threshold) duration_to_start = avg / 2;
    if (is_counter) {
      double to_zero = duration_to_start;
      if (result > 0 && first.v >= 0) to_zero = sampled * (first.v / result);
      if (to_zero < duration_to_start) duration_to_start = to_zero;
    }
    if (duration_to_end >= threshold) duration_to_end = avg / 2;
    double factor = (sampled + duration_to_start + duration_to_end) / sampled;
    if (is_rate) factor /= static_cast<double>(range) / 1000;
    o[kept++] = {r.At(i), result * factor};
  }
  out.resize(kept);
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Functions over range vectors.

// rate/increase/delta/changes/resets over an `anchored` or `smoothed` window. `pts` holds
// the series' samples including those around the window; [lo, hi) are the ones inside
// (T - range, T].
std::optional<double> Evaluator::ExtendedRangeValue(FunctionId id, const EvalValue& m,
                                                    const std::vector<Sample>& pts, size_t lo,
                                                    size_t hi, Timestamp T, int64_t range) {
  const int64_t lookback = options_.lookback_ms;
  const Timestamp b = T - range;
  const bool counter = id == F::kRate || id == F::kIncrease;
  if (hi < lo) hi = lo;
  std::vector<Sample> ext;
  if (m.anchored) {
    if (lo == hi) return std::nullopt;
    double anchor = pts[lo].v;
    if (lo > 0 && pts[lo - 1].t > b - lookback) anchor = pts[lo - 1].v;
    ext.push_back({b, anchor});
    ext.insert(ext.end(), pts.begin() + lo, pts.begin() + hi);
  } else {
    // The value at time x from its neighbours; `next` is the first sample after x. For
    // counters a reset between the neighbours counts from zero.
    auto value_at = [&](size_t next, Timestamp x) -> std::optional<double> {
      bool has_prev = next > 0 && pts[next - 1].t > x - lookback;
      bool has_next = next < pts.size() && pts[next].t < x + lookback;
      if (has_prev && has_next) {
        const Sample& p = pts[next - 1];
        const Sample& n = pts[next];
        if (p.t == x) return p.v;
        double pv = counter && n.v < p.v ? 0 : p.v;
        return pv + (n.v - pv) * static_cast<double>(x - p.t) / static_cast<double>(n.t - p.t);
      }
      if (has_prev) return pts[next - 1].v;
      if (has_next) return pts[next].v;
      return std::nullopt;
    };
    // Data must exist at or before T and after the window start.
    bool before_end = hi > 0 && pts[hi - 1].t > b - lookback;
    bool after_start = lo < pts.size() && pts[lo].t < T + lookback;
    if (!before_end || !after_start) return std::nullopt;
    auto start = value_at(lo, b);
    auto end = value_at(hi, T);
    if (!start || !end) return std::nullopt;
    ext.push_back({b, *start});
    ext.insert(ext.end(), pts.begin() + lo, pts.begin() + hi);
    ext.push_back({T, *end});
  }
  switch (id) {
    case F::kRate:
    case F::kIncrease:
    case F::kDelta: {
      double result = ext.back().v - ext.front().v;
      if (id != F::kDelta) {
        for (size_t k = 1; k < ext.size(); ++k) {
          if (ext[k].v < ext[k - 1].v) result += ext[k - 1].v;
        }
      }
      if (id == F::kRate) result /= static_cast<double>(range) / 1000;
      return result;
    }
    case F::kChanges:
    case F::kResets: {
      double n = 0;
      for (size_t k = 1; k < ext.size(); ++k) {
        double cur = ext[k].v, prev = ext[k - 1].v;
        bool hit =
            id == F::kResets ? cur < prev : (cur != prev && !(std::isnan(cur) && std::isnan(prev)));
        if (hit) n += 1;
      }
      return n;
    }
    default:
      return std::nullopt;
  }
}

absl::StatusOr<EvalValue> Evaluator::EvalRangeFunction(const Call& c, const StepRange& r,
                                                       const SeriesConsumer* consumer) {
  const F id = c.func->id;
  size_t marg = 0;
  for (size_t i = 0; i < c.args.size(); ++i) {
    if (c.args[i]->type() == ValueType::kMatrix) marg = i;
  }
  std::vector<EvalValue> scalars(c.args.size());
  for (size_t i = 0; i < c.args.size(); ++i) {
    if (i == marg) continue;
    STRATA_ASSIGN_OR_RETURN(scalars[i], Eval(*c.args[i], r));
  }
  const Expr& marg_expr = UnwrapParens(*c.args[marg]);
  if (marg_expr.kind() == NodeKind::kMatrixSelector) {
    const auto& vs = marg_expr.As<MatrixSelector>().vector_selector();
    std::string_view fname = c.func->name;
    if (vs.smoothed && !(id == F::kDelta || id == F::kIncrease || id == F::kRate)) {
      return absl::FailedPreconditionError(fmt::format(
          "smoothed modifier can only be used with: delta, increase, rate - not with {}", fname));
    }
    if (vs.anchored && !(id == F::kChanges || id == F::kDelta || id == F::kIncrease ||
                         id == F::kRate || id == F::kResets)) {
      return absl::FailedPreconditionError(fmt::format(
          "anchored modifier can only be used with: changes, delta, increase, rate, resets - not "
          "with {}",
          fname));
    }
  }
  const size_t n = r.Count();
  EvalValue out;
  out.type = ValueType::kVector;

  if (id == F::kQuantileOverTime) {
    for (size_t i = 0; i < n; ++i) {
      double q = scalars[0].scalars[i];
      if (std::isnan(q) || q < 0 || q > 1) {
        Warn(*c.args[0],
             fmt::format("quantile value should be between 0 and 1, got {}", FormatNumber(q)));
        break;
      }
    }
  }
  if (id == F::kDoubleExponentialSmoothing) {
    for (size_t i = 0; i < n; ++i) {
      double sf = scalars[1].scalars[i], tf = scalars[2].scalars[i];
      if (!(sf > 0 && sf < 1)) {
        return absl::FailedPreconditionError(
            fmt::format("invalid smoothing factor. Expected: 0 < sf < 1, got: {:f}", sf));
      }
      if (!(tf > 0 && tf < 1)) {
        return absl::FailedPreconditionError(
            fmt::format("invalid trend factor. Expected: 0 < tf < 1, got: {:f}", tf));
      }
    }
  }

  const bool keeps_name = id == F::kLastOverTime || id == F::kFirstOverTime;
  std::vector<bool> any_at_step(id == F::kAbsentOverTime ? n : 0, false);
  // One series at a time: a plain range selector streams its series (each decoded once,
  // released after use); a subquery's matrix is evaluated first.
  // A plain range selector's series may be processed by several workers at once (see
  // EvalMatrixSelector), except for absent_over_time, which shares its steps: each worker
  // has its own output and scratch state, kept across series so that memory is reused.
  const size_t workers = id == F::kAbsentOverTime || consumer != nullptr ? 1 : Workers(SIZE_MAX);
  struct Scratch {
    BlockExtremes extremes;      // min/max_over_time over overlapping windows
    std::vector<size_t> resets;  // indices k with pts[k] < pts[k-1] (counter resets)
    std::vector<Sample> spare;   // the points of the series a consumer took last
  };
  std::vector<Scratch> scratch(workers);
  std::vector<std::vector<EvalSeries>> outs(workers);
  // `s` is consumed: its labels move to the output.
  auto process = [&](const EvalValue& m, EvalSeries& s, size_t worker) -> absl::StatusOr<int64_t> {
    BlockExtremes& extremes = scratch[worker].extremes;
    std::vector<size_t>& resets = scratch[worker].resets;
    const int64_t range = m.range_ms;
    const std::vector<Sample>& pts = s.points;
    // min/max_over_time: windows that overlap (most often the step is shorter than the
    // range) are put together from blocks; others are folded whole.
    const bool extreme_fn = id == F::kMinOverTime || id == F::kMaxOverTime;
    const bool use_blocks = extreme_fn && n > 1 && r.interval < range;
    if (use_blocks) extremes.Build(id == F::kMaxOverTime, pts);
    size_t num_resets = 0;
    if (id == F::kRate || id == F::kIncrease) {
      // Every index is written and only the resets counted: no branch per sample.
      if (resets.size() < pts.size()) resets.resize(pts.size());
      for (size_t k = 1; k < pts.size(); ++k) {
        resets[num_resets] = k;
        num_resets += pts[k].v < pts[k - 1].v ? 1 : 0;
      }
    }
    EvalSeries o{std::move(s.labels), {}, s.drop_name};
    if (consumer != nullptr) {
      o.points = std::move(scratch[worker].spare);
      o.points.clear();
    }
    o.points.reserve(n);
    std::string_view metric = o.labels.MetricName();
    const bool counter_like = metric.ends_with("_total") || metric.ends_with("_sum") ||
                              metric.ends_with("_count") || metric.ends_with("_bucket");
    // rate and increase of a named series whose name does not look like a counter's say so
    // once, when a step has samples.
    const bool note_not_counter =
        (id == F::kRate || id == F::kIncrease) && !metric.empty() && !counter_like;
    // Samples visited since the last deadline check: windows may be long (a subquery with a
    // fine step), so the check goes by work done, not by steps.
    size_t work = 0;
    // rate, increase and delta go here except over anchored or smoothed windows (the general
    // loop below hands those to ExtendedRangeValue).
    const bool plain_extrapolated =
        !m.anchored && !m.smoothed && (id == F::kRate || id == F::kIncrease || id == F::kDelta);
    if (plain_extrapolated) {
      size_t first_with_samples = SIZE_MAX;
      STRATA_RETURN_IF_ERROR(ExtrapolatedSteps(
          id != F::kDelta, id == F::kRate, pts, std::span<const size_t>(resets.data(), num_resets),
          m.window_ends, range, r, o.points, &first_with_samples,
          [this] { return CheckDeadline(); }));
      if (note_not_counter && first_with_samples != SIZE_MAX) {
        Info(*c.args[marg], fmt::format("metric might not be a counter, name does not end in "
                                        "_total/_sum/_count/_bucket: {}",
                                        QuoteString(metric)));
      }
    }
    WindowCursor cur;
    for (size_t i = 0; i < n && !plain_extrapolated; ++i) {
      Timestamp T = m.window_ends[i];
      cur.Advance(pts.data(), pts.size(), T, range);
      const size_t lo = cur.lo, hi = cur.hi;
      std::span<const Sample> w(pts.data() + lo, hi - lo);
      work += w.size() + 1;
      if (work >= 65536) {
        work = 0;
        STRATA_RETURN_IF_ERROR(CheckDeadline());
      }
      if (m.anchored || m.smoothed) {
        if (id == F::kAbsentOverTime && !w.empty()) any_at_step[i] = true;
        std::optional<double> v = ExtendedRangeValue(id, m, pts, lo, hi, T, range);
        if (v) o.points.push_back({r.At(i), *v});
        continue;
      }
      if (w.empty()) continue;
      if (id == F::kAbsentOverTime) {
        any_at_step[i] = true;
        continue;
      }
      std::optional<double> v;
      switch (id) {
        case F::kIrate:
        case F::kIdelta: {
          if (w.size() < 2) break;
          const Sample& last = w[w.size() - 1];
          const Sample& prev = w[w.size() - 2];
          double result = last.v - prev.v;
          if (id == F::kIrate && last.v < prev.v) result = last.v;
          int64_t interval = last.t - prev.t;
          if (interval == 0) break;
          if (id == F::kIrate) result /= static_cast<double>(interval) / 1000;
          v = result;
          break;
        }
        case F::kDeriv:
          if (w.size() < 2) break;
          v = LinearRegression(w, w[0].t).first;
          break;
        case F::kPredictLinear: {
          if (w.size() < 2) break;
          auto [slope, intercept] = LinearRegression(w, r.At(i));
          v = slope * scalars[1].scalars[i] + intercept;
          break;
        }
        case F::kDoubleExponentialSmoothing: {
          if (w.size() < 2) break;
          double sf = scalars[1].scalars[i], tf = scalars[2].scalars[i];
          double s0 = 0, s1 = w[0].v, b = w[1].v - w[0].v;
          for (size_t k = 1; k < w.size(); ++k) {
            double x = sf * w[k].v;
            if (k - 1 > 0) b = tf * (s1 - s0) + (1 - tf) * b;
            double y = (1 - sf) * (s1 + b);
            s0 = s1;
            s1 = x + y;
          }
          v = s1;
          break;
        }
        case F::kChanges: {
          double changes = 0;
          for (size_t k = 1; k < w.size(); ++k) {
            double cur = w[k].v, prev = w[k - 1].v;
            if (cur != prev && !(std::isnan(cur) && std::isnan(prev))) changes += 1;
          }
          v = changes;
          break;
        }
        case F::kResets: {
          double resets = 0;
          for (size_t k = 1; k < w.size(); ++k) {
            if (w[k].v < w[k - 1].v) resets += 1;
          }
          v = resets;
          break;
        }
        case F::kAvgOverTime:
          v = AvgOf(w);
          break;
        case F::kSumOverTime: {
          double sum = 0, comp = 0;
          for (const Sample& p : w) KahanAdd(p.v, sum, comp);
          v = std::isinf(sum) ? sum : sum + comp;
          break;
        }
        case F::kCountOverTime:
          v = static_cast<double>(w.size());
          break;
        case F::kMinOverTime:
        case F::kMaxOverTime: {
          if (use_blocks) {
            v = extremes.Window(lo, hi);
            break;
          }
          const bool is_max = id == F::kMaxOverTime;
          double acc = w[0].v;
          for (size_t k = 1; k < w.size(); ++k) acc = Better(is_max, acc, w[k].v);
          v = acc;
          break;
        }
        case F::kLastOverTime:
          v = w.back().v;
          break;
        case F::kFirstOverTime:
          v = w.front().v;
          break;
        case F::kTsOfLastOverTime:
          v = static_cast<double>(w.back().t) / 1000;
          break;
        case F::kTsOfFirstOverTime:
          v = static_cast<double>(w.front().t) / 1000;
          break;
        case F::kTsOfMinOverTime:
        case F::kTsOfMaxOverTime: {
          bool is_max = id == F::kTsOfMaxOverTime;
          double x = w[0].v;
          Timestamp ts = w[0].t;
          for (const Sample& p : w) {
            bool better = is_max ? (p.v >= x) : (p.v <= x);
            if (better || std::isnan(x)) {
              x = p.v;
              ts = p.t;
            }
          }
          v = static_cast<double>(ts) / 1000;
          break;
        }
        case F::kPresentOverTime:
          v = 1;
          break;
        case F::kStddevOverTime:
          v = std::sqrt(VarianceOf(w));
          break;
        case F::kStdvarOverTime:
          v = VarianceOf(w);
          break;
        case F::kQuantileOverTime:
          v = Quantile(scalars[0].scalars[i], Values(w));
          break;
        case F::kMadOverTime: {
          std::vector<double> vals = Values(w);
          if (std::any_of(vals.begin(), vals.end(), [](double x) { return std::isnan(x); })) {
            v = kNaN;
            break;
          }
          double median = Quantile(0.5, vals);
          for (double& x : vals) x = std::fabs(x - median);
          v = Quantile(0.5, std::move(vals));
          break;
        }
        default:
          return absl::UnimplementedError(
              fmt::format("function {} is not implemented", c.func->name));
      }
      if (v) o.points.push_back({r.At(i), *v});
    }
    if (o.points.empty()) {
      if (consumer != nullptr) scratch[worker].spare = std::move(o.points);
      return 0;
    }
    if (!keeps_name && (consumer == nullptr || consumer->needs_name_dropped)) DropName(o);
    const auto kept = static_cast<int64_t>(o.points.size());
    if (consumer != nullptr) {
      STRATA_RETURN_IF_ERROR(consumer->take(o));
      scratch[worker].spare = std::move(o.points);
      return kept;
    }
    outs[worker].push_back(std::move(o));
    return kept;
  };
  if (marg_expr.kind() == NodeKind::kMatrixSelector) {
    MatrixSink sink = process;
    STRATA_RETURN_IF_ERROR(
        EvalMatrixSelector(marg_expr.As<MatrixSelector>(), r, &sink, workers).status());
  } else {
    STRATA_ASSIGN_OR_RETURN(EvalValue m, Eval(*c.args[marg], r));
    for (EvalSeries& s : m.series) {
      STRATA_ASSIGN_OR_RETURN(int64_t kept, process(m, s, 0));
      STRATA_RETURN_IF_ERROR(Charge(kept));
    }
  }
  // The workers' outputs in order: the same series order as one worker gives.
  out.series = std::move(outs[0]);
  for (size_t w = 1; w < workers; ++w) {
    for (EvalSeries& s : outs[w]) out.series.push_back(std::move(s));
  }
  if (id == F::kAbsentOverTime) {
    Labels l;
    if (marg_expr.kind() == NodeKind::kMatrixSelector) {
      l = AbsentLabels(marg_expr.As<MatrixSelector>().vector_selector());
    }
    EvalSeries o{l, {}, false};
    for (size_t i = 0; i < n; ++i) {
      if (!any_at_step[i]) o.points.push_back({r.At(i), 1});
    }
    out.series.clear();
    if (!o.points.empty()) out.series.push_back(std::move(o));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Everything else.

absl::StatusOr<EvalValue> Evaluator::EvalCall(const Call& c, const StepRange& r) {
  const F id = c.func->id;
  for (const auto& a : c.args) {
    if (a->type() == ValueType::kMatrix) return EvalRangeFunction(c, r);
  }
  const size_t n = r.Count();
  auto scalar_value = [&](std::function<double(size_t)> f) {
    EvalValue v;
    v.type = ValueType::kScalar;
    v.scalars.resize(n);
    for (size_t i = 0; i < n; ++i) v.scalars[i] = f(i);
    return v;
  };
  switch (id) {
    case F::kTime:
      return scalar_value([&](size_t i) { return static_cast<double>(r.At(i)) / 1000; });
    case F::kPi:
      return scalar_value([](size_t) { return std::numbers::pi; });
    case F::kStart:
      return scalar_value([&](size_t) { return static_cast<double>(query_range.start) / 1000; });
    case F::kEnd:
      return scalar_value([&](size_t) { return static_cast<double>(query_range.end) / 1000; });
    case F::kRange:
      return scalar_value(
          [&](size_t) { return static_cast<double>(query_range.end - query_range.start) / 1000; });
    case F::kStep:
      return scalar_value([&](size_t) {
        return instant_query ? 0.0 : static_cast<double>(query_range.interval) / 1000;
      });
    default:
      break;
  }

  // Date functions without an argument work on vector(time()).
  if (c.args.empty()) {
    switch (id) {
      case F::kDaysInMonth:
      case F::kDayOfMonth:
      case F::kDayOfWeek:
      case F::kDayOfYear:
      case F::kHour:
      case F::kMinute:
      case F::kMonth:
      case F::kYear: {
        EvalValue v;
        v.type = ValueType::kVector;
        EvalSeries s;
        for (size_t i = 0; i < n; ++i)
          s.points.push_back({r.At(i), static_cast<double>(r.At(i)) / 1000});
        v.series.push_back(std::move(s));
        return ApplyDateFunction(id, std::move(v));
      }
      default:
        return absl::UnimplementedError(
            fmt::format("function {} is not implemented", c.func->name));
    }
  }

  if (id == F::kInfo) return EvalInfo(c, r);

  if (id == F::kTimestamp) {
    const Expr& arg = UnwrapParens(*c.args[0]);
    EvalValue v;
    if (arg.kind() == NodeKind::kVectorSelector) {
      STRATA_ASSIGN_OR_RETURN(v, EvalVectorSelector(arg.As<VectorSelector>(), r, true));
    } else {
      STRATA_ASSIGN_OR_RETURN(v, Eval(arg, r));
      for (auto& s : v.series) {
        for (auto& p : s.points) p.v = static_cast<double>(p.t) / 1000;
      }
    }
    for (auto& s : v.series) DropName(s);
    return v;
  }

  std::vector<EvalValue> args(c.args.size());
  for (size_t i = 0; i < c.args.size(); ++i) {
    STRATA_ASSIGN_OR_RETURN(args[i], Eval(*c.args[i], r));
  }
  auto map_values = [&](auto f) -> absl::StatusOr<EvalValue> {
    EvalValue v = std::move(args[0]);
    for (auto& s : v.series) {
      for (auto& p : s.points) p.v = f(p.v, r.Index(p.t));
      DropName(s);
    }
    return v;
  };

  switch (id) {
    case F::kAbs:
      return map_values([](double x, size_t) { return std::fabs(x); });
    case F::kCeil:
      return map_values([](double x, size_t) { return std::ceil(x); });
    case F::kFloor:
      return map_values([](double x, size_t) { return std::floor(x); });
    case F::kExp:
      return map_values([](double x, size_t) { return std::exp(x); });
    case F::kSqrt:
      return map_values([](double x, size_t) { return std::sqrt(x); });
    case F::kLn:
      return map_values([](double x, size_t) { return std::log(x); });
    case F::kLog2:
      return map_values([](double x, size_t) { return std::log2(x); });
    case F::kLog10:
      return map_values([](double x, size_t) { return std::log10(x); });
    case F::kSin:
      return map_values([](double x, size_t) { return std::sin(x); });
    case F::kCos:
      return map_values([](double x, size_t) { return std::cos(x); });
    case F::kTan:
      return map_values([](double x, size_t) { return std::tan(x); });
    case F::kAsin:
      return map_values([](double x, size_t) { return std::asin(x); });
    case F::kAcos:
      return map_values([](double x, size_t) { return std::acos(x); });
    case F::kAtan:
      return map_values([](double x, size_t) { return std::atan(x); });
    case F::kSinh:
      return map_values([](double x, size_t) { return std::sinh(x); });
    case F::kCosh:
      return map_values([](double x, size_t) { return std::cosh(x); });
    case F::kTanh:
      return map_values([](double x, size_t) { return std::tanh(x); });
    case F::kAsinh:
      return map_values([](double x, size_t) { return std::asinh(x); });
    case F::kAcosh:
      return map_values([](double x, size_t) { return std::acosh(x); });
    case F::kAtanh:
      return map_values([](double x, size_t) { return std::atanh(x); });
    case F::kDeg:
      return map_values([](double x, size_t) { return x * 180 / std::numbers::pi; });
    case F::kRad:
      return map_values([](double x, size_t) { return x * std::numbers::pi / 180; });
    case F::kSgn:
      return map_values([](double x, size_t) -> double {
        if (x > 0) return 1;
        if (x < 0) return -1;
        return x;  // 0 or NaN
      });
    case F::kRound: {
      std::vector<double> to(n, 1.0);
      if (args.size() > 1) to = args[1].scalars;
      return map_values([&](double x, size_t i) {
        double inv = 1.0 / to[i];
        return std::floor(x * inv + 0.5) / inv;
      });
    }
    case F::kClamp:
    case F::kClampMin:
    case F::kClampMax: {
      EvalValue v = std::move(args[0]);
      for (auto& s : v.series) {
        std::erase_if(s.points, [&](const Sample& p) {
          size_t i = r.Index(p.t);
          return id == F::kClamp && args[2].scalars[i] < args[1].scalars[i];
        });
        for (auto& p : s.points) {
          size_t i = r.Index(p.t);
          auto go_max = [](double a, double b) {
            if (std::isnan(a) || std::isnan(b)) return kNaN;
            return std::max(a, b);
          };
          auto go_min = [](double a, double b) {
            if (std::isnan(a) || std::isnan(b)) return kNaN;
            return std::min(a, b);
          };
          if (id == F::kClamp) p.v = go_max(args[1].scalars[i], go_min(args[2].scalars[i], p.v));
          if (id == F::kClampMin) p.v = go_max(args[1].scalars[i], p.v);
          if (id == F::kClampMax) p.v = go_min(args[1].scalars[i], p.v);
        }
        DropName(s);
      }
      std::erase_if(v.series, [](const EvalSeries& s) { return s.points.empty(); });
      return v;
    }
    case F::kDaysInMonth:
    case F::kDayOfMonth:
    case F::kDayOfWeek:
    case F::kDayOfYear:
    case F::kHour:
    case F::kMinute:
    case F::kMonth:
    case F::kYear:
      return ApplyDateFunction(id, std::move(args[0]));
    case F::kMinOf:
    case F::kMaxOf: {
      // Go's math.Min / math.Max: NaN wins, and -0 < +0.
      EvalValue v;
      v.type = ValueType::kScalar;
      v.scalars.resize(n);
      for (size_t i = 0; i < n; ++i) {
        double a = args[0].scalars[i], b = args[1].scalars[i];
        if (std::isnan(a) || std::isnan(b)) {
          v.scalars[i] = kNaN;
        } else if (id == F::kMinOf) {
          v.scalars[i] = (a == b && a == 0) ? (std::signbit(a) ? a : b) : std::min(a, b);
        } else {
          v.scalars[i] = (a == b && a == 0) ? (std::signbit(a) ? b : a) : std::max(a, b);
        }
      }
      return v;
    }
    case F::kVector: {
      EvalValue v;
      v.type = ValueType::kVector;
      EvalSeries s;
      for (size_t i = 0; i < n; ++i) s.points.push_back({r.At(i), args[0].scalars[i]});
      v.series.push_back(std::move(s));
      return v;
    }
    case F::kScalar: {
      EvalValue v;
      v.type = ValueType::kScalar;
      v.scalars.assign(n, kNaN);
      std::vector<int> count(n, 0);
      for (const auto& s : args[0].series) {
        for (const auto& p : s.points) {
          size_t i = r.Index(p.t);
          if (++count[i] == 1) {
            v.scalars[i] = p.v;
          } else {
            v.scalars[i] = kNaN;
          }
        }
      }
      return v;
    }
    case F::kAbsent: {
      std::vector<bool> present(n, false);
      for (const auto& s : args[0].series) {
        for (const auto& p : s.points) present[r.Index(p.t)] = true;
      }
      Labels l;
      const Expr& arg = UnwrapParens(*c.args[0]);
      if (arg.kind() == NodeKind::kVectorSelector) l = AbsentLabels(arg.As<VectorSelector>());
      EvalValue v;
      v.type = ValueType::kVector;
      EvalSeries s{l, {}, false};
      for (size_t i = 0; i < n; ++i) {
        if (!present[i]) s.points.push_back({r.At(i), 1});
      }
      if (!s.points.empty()) v.series.push_back(std::move(s));
      return v;
    }
    case F::kSort:
    case F::kSortDesc:
    case F::kSortByLabel:
    case F::kSortByLabelDesc: {
      if (!instant_query) {
        Warn(c, "sort is ineffective for range queries since results are always ordered by labels");
        return std::move(args[0]);
      }
      EvalValue v = std::move(args[0]);
      std::erase_if(v.series, [](const EvalSeries& s) { return s.points.empty(); });
      if (id == F::kSort || id == F::kSortDesc) {
        bool desc = id == F::kSortDesc;
        std::stable_sort(v.series.begin(), v.series.end(),
                         [desc](const EvalSeries& a, const EvalSeries& b) {
                           double x = a.points[0].v, y = b.points[0].v;
                           if (std::isnan(x)) return false;
                           if (std::isnan(y)) return true;
                           return desc ? x > y : x < y;
                         });
      } else {
        std::vector<std::string> names;
        for (size_t i = 1; i < args.size(); ++i) names.push_back(args[i].str);
        bool desc = id == F::kSortByLabelDesc;
        std::stable_sort(v.series.begin(), v.series.end(),
                         [&](const EvalSeries& a, const EvalSeries& b) {
                           for (const auto& name : names) {
                             int cmp = NatCompare(a.labels.Get(name), b.labels.Get(name));
                             if (cmp != 0) return desc ? cmp > 0 : cmp < 0;
                           }
                           int cmp = Compare(a.labels, b.labels);
                           return desc ? cmp > 0 : cmp < 0;
                         });
      }
      return v;
    }
    case F::kLabelReplace: {
      const std::string& dst = args[1].str;
      const std::string& repl = args[2].str;
      const std::string& src = args[3].str;
      const std::string& regex = args[4].str;
      RE2::Options opts;
      opts.set_dot_nl(true);
      opts.set_log_errors(false);
      RE2 re("^(?s:" + regex + ")$", opts);
      if (!re.ok() || HasAnyByteEscape(regex)) {
        return absl::FailedPreconditionError(
            fmt::format("invalid regular expression in label_replace(): {}", regex));
      }
      if (!IsValidLabelName(dst)) {
        return absl::FailedPreconditionError(
            fmt::format("invalid destination label name in label_replace(): {}", dst));
      }
      EvalValue v = std::move(args[0]);
      SeriesBuilder b;
      int ngroups = re.NumberOfCapturingGroups() + 1;
      std::vector<re2::StringPiece> pieces(ngroups);
      std::vector<std::string_view> groups(ngroups);
      for (auto& s : v.series) {
        std::string_view value = s.labels.Get(src);
        Labels out_labels = s.labels;
        bool drop = s.drop_name;
        if (re.Match(re2::StringPiece(value.data(), value.size()), 0, value.size(), RE2::UNANCHORED,
                     pieces.data(), ngroups)) {
          for (int k = 0; k < ngroups; ++k)
            groups[k] = std::string_view(pieces[k].data(), pieces[k].size());
          std::string nv = ExpandTemplate(repl, re, groups);
          LabelsBuilder lb(s.labels);
          lb.Set(dst, nv);
          out_labels = lb.Build();
          if (dst == kMetricName) drop = false;
        }
        for (const auto& p : s.points) STRATA_RETURN_IF_ERROR(b.Add(out_labels, drop, p.t, p.v));
      }
      v.series = b.Take();
      return v;
    }
    case F::kLabelJoin: {
      const std::string& dst = args[1].str;
      const std::string& sep = args[2].str;
      if (!IsValidLabelName(dst)) {
        return absl::FailedPreconditionError(
            fmt::format("invalid destination label name in label_join(): {}", dst));
      }
      for (size_t i = 3; i < args.size(); ++i) {
        if (!IsValidLabelName(args[i].str)) {
          return absl::FailedPreconditionError(
              fmt::format("invalid source label name in label_join(): {}", args[i].str));
        }
      }
      EvalValue v = std::move(args[0]);
      SeriesBuilder b;
      for (auto& s : v.series) {
        std::string joined;
        for (size_t i = 3; i < args.size(); ++i) {
          if (i > 3) joined += sep;
          joined += s.labels.Get(args[i].str);
        }
        LabelsBuilder lb(s.labels);
        lb.Set(dst, joined);
        Labels l = lb.Build();
        bool drop = s.drop_name && dst != kMetricName;
        for (const auto& p : s.points) STRATA_RETURN_IF_ERROR(b.Add(l, drop, p.t, p.v));
      }
      v.series = b.Take();
      return v;
    }
    case F::kHistogramQuantile:
    case F::kHistogramQuantiles:
    case F::kHistogramFraction:
      return EvalClassicHistogram(c, args, r);
    case F::kHistogramAvg:
    case F::kHistogramCount:
    case F::kHistogramSum:
    case F::kHistogramStddev:
    case F::kHistogramStdvar: {
      // These read native histograms only; float samples are ignored.
      EvalValue v;
      v.type = ValueType::kVector;
      return v;
    }
    default:
      return absl::UnimplementedError(fmt::format("function {} is not implemented", c.func->name));
  }
}

// info(v, {data selector}): adds the data labels of matching info series (target_info by
// default) that share the identifying labels (instance, job) with each series of v.
absl::StatusOr<EvalValue> Evaluator::EvalInfo(const Call& c, const StepRange& r) {
  static const std::vector<std::string> kIdentifying = {"instance", "job"};
  STRATA_ASSIGN_OR_RETURN(EvalValue base, Eval(*c.args[0], r));
  std::vector<LabelMatcher> name_matchers, data_matchers;
  if (c.args.size() > 1) {
    const Expr& sel = UnwrapParens(*c.args[1]);
    if (sel.kind() != NodeKind::kVectorSelector) {
      return absl::FailedPreconditionError("info(): the second argument must be a vector selector");
    }
    for (const auto& m : sel.As<VectorSelector>().matchers) {
      (m.name() == kMetricName ? name_matchers : data_matchers).push_back(m);
    }
  }
  bool explicit_name = false;
  for (const auto& m : name_matchers) explicit_name |= m.type() == MatchType::kEqual;
  if (name_matchers.empty()) {
    STRATA_ASSIGN_OR_RETURN(auto m,
                            LabelMatcher::Make(MatchType::kEqual, kMetricName, "target_info"));
    name_matchers.push_back(m);
    explicit_name = true;
  }
  bool drop_unmatched = std::any_of(data_matchers.begin(), data_matchers.end(),
                                    [](const LabelMatcher& m) { return !m.MatchesEmpty(); });

  // The info series, evaluated like an instant selector at the time the base data refers to.
  VectorSelector info_sel;
  info_sel.matchers = name_matchers;
  for (const auto& m : data_matchers) info_sel.matchers.push_back(m);
  // Without a name given exactly, only metrics named like info metrics qualify.
  STRATA_ASSIGN_OR_RETURN(auto info_name, LabelMatcher::Make(MatchType::kRegexMatch, kMetricName,
                                                             explicit_name ? ".+" : ".+_info"));
  info_sel.matchers.push_back(info_name);
  std::vector<Timestamp> ref_times(r.Count());
  for (size_t i = 0; i < ref_times.size(); ++i) {
    STRATA_ASSIGN_OR_RETURN(ref_times[i], ReferenceTime(*c.args[0], r.At(i)));
  }
  STRATA_ASSIGN_OR_RETURN(EvalValue info, EvalVectorSelector(info_sel, r, true, &ref_times));

  // Info series by identifying label values.
  auto id_key = [](const Labels& l) {
    std::string k;
    for (const auto& n : kIdentifying) {
      k += l.Get(n);
      k.push_back('\xff');
    }
    return k;
  };
  StringMap<std::vector<size_t>> by_id;
  for (size_t i = 0; i < info.series.size(); ++i) by_id[id_key(info.series[i].labels)].push_back(i);
  std::vector<size_t> info_cursor(info.series.size(), 0);
  auto info_time_at = [&](size_t i, Timestamp t) -> std::optional<double> {
    const auto& pts = info.series[i].points;
    size_t& cur = info_cursor[i];
    while (cur < pts.size() && pts[cur].t < t) ++cur;
    if (cur < pts.size() && pts[cur].t == t) return pts[cur].v;
    return std::nullopt;
  };

  EvalValue out;
  out.type = ValueType::kVector;
  SeriesBuilder b;
  for (const EvalSeries& s : base.series) {
    bool is_info = MatchesAll(name_matchers, s.labels) && info_name.Matches(s.labels.MetricName());
    std::fill(info_cursor.begin(), info_cursor.end(), 0);
    auto it = by_id.find(id_key(s.labels));
    for (const Sample& p : s.points) {
      if (is_info || it == by_id.end()) {
        if (!is_info && drop_unmatched) continue;
        STRATA_RETURN_IF_ERROR(b.Add(s.labels, s.drop_name, p.t, p.v));
        continue;
      }
      // Per info metric name, the series with the newest sample.
      std::map<std::string, std::pair<double, size_t>, std::less<>> best;
      for (size_t i : it->second) {
        auto ts = info_time_at(i, p.t);
        if (!ts) continue;
        std::string name(info.series[i].labels.MetricName());
        auto [bi, inserted] = best.try_emplace(name, *ts, i);
        if (!inserted && *ts > bi->second.first) bi->second = {*ts, i};
      }
      if (best.empty()) {
        if (drop_unmatched) continue;
        STRATA_RETURN_IF_ERROR(b.Add(s.labels, s.drop_name, p.t, p.v));
        continue;
      }
      LabelsBuilder lb(s.labels);
      StringMap<std::string> added;
      for (const auto& [name, pick] : best) {
        for (const LabelView& l : info.series[pick.second].labels) {
          if (l.name == kMetricName || l.name == "instance" || l.name == "job") continue;
          if (!data_matchers.empty() &&
              std::none_of(data_matchers.begin(), data_matchers.end(),
                           [&](const LabelMatcher& m) { return m.name() == l.name; })) {
            continue;
          }
          if (s.labels.Has(l.name)) continue;
          auto [ai, fresh] = added.try_emplace(std::string(l.name), std::string(l.value));
          if (!fresh && ai->second != l.value) {
            return absl::FailedPreconditionError(
                fmt::format("conflicting label: {} has values {} and {} in different info series",
                            QuoteString(l.name), QuoteString(ai->second), QuoteString(l.value)));
          }
          lb.Set(l.name, l.value);
        }
      }
      STRATA_RETURN_IF_ERROR(b.Add(lb.Build(), s.drop_name, p.t, p.v));
    }
  }
  out.series = b.Take();
  return out;
}

absl::StatusOr<Timestamp> Evaluator::ReferenceTime(const Expr& e, Timestamp t) {
  auto shift = [&](const AtModifier& at, const Duration& offset) -> absl::StatusOr<Timestamp> {
    STRATA_ASSIGN_OR_RETURN(int64_t off, ResolveDuration(offset));
    return PinnedTime(at, t, query_range.start, query_range.end) - off;
  };
  switch (e.kind()) {
    case NodeKind::kVectorSelector: {
      const auto& vs = e.As<VectorSelector>();
      return shift(vs.at, vs.offset);
    }
    case NodeKind::kMatrixSelector:
      return ReferenceTime(*e.As<MatrixSelector>().selector, t);
    case NodeKind::kSubquery: {
      const auto& sq = e.As<Subquery>();
      STRATA_ASSIGN_OR_RETURN(t, shift(sq.at, sq.offset));
      return ReferenceTime(*sq.expr, t);
    }
    case NodeKind::kParen:
      return ReferenceTime(*e.As<Paren>().expr, t);
    case NodeKind::kUnary:
      return ReferenceTime(*e.As<Unary>().expr, t);
    case NodeKind::kAggregate:
      return ReferenceTime(*e.As<Aggregate>().expr, t);
    case NodeKind::kBinary: {
      const auto& b = e.As<Binary>();
      return ReferenceTime(b.lhs->type() == ValueType::kVector ? *b.lhs : *b.rhs, t);
    }
    case NodeKind::kCall:
      for (const auto& a : e.As<Call>().args) {
        if (a->type() == ValueType::kVector || a->type() == ValueType::kMatrix) {
          return ReferenceTime(*a, t);
        }
      }
      return t;
    default:
      return t;
  }
}

absl::StatusOr<EvalValue> Evaluator::ApplyDateFunction(FunctionId id, EvalValue v) {
  for (auto& s : v.series) {
    for (auto& p : s.points) {
      if (std::isnan(p.v) || !(std::fabs(p.v) < 9e15)) {  // beyond any representable date
        p.v = kNaN;
        continue;
      }
      CivilTime ct = ToCivil(p.v);
      switch (id) {
        case F::kDaysInMonth:
          p.v = DaysInMonth(ct.year, ct.month);
          break;
        case F::kDayOfMonth:
          p.v = ct.day;
          break;
        case F::kDayOfWeek:
          p.v = ct.wday;
          break;
        case F::kDayOfYear:
          p.v = ct.yday;
          break;
        case F::kHour:
          p.v = ct.hour;
          break;
        case F::kMinute:
          p.v = ct.minute;
          break;
        case F::kMonth:
          p.v = ct.month;
          break;
        case F::kYear:
          p.v = static_cast<double>(ct.year);
          break;
        default:
          break;
      }
    }
    DropName(s);
  }
  return v;
}

namespace {

struct ClassicBucket {
  double upper;
  double count;
};

// Sorts, merges equal bounds and forces the counts to be monotonic. Returns whether a
// decrease had to be removed.
bool NormalizeBuckets(std::vector<ClassicBucket>& bs) {
  std::sort(bs.begin(), bs.end(),
            [](const ClassicBucket& a, const ClassicBucket& b) { return a.upper < b.upper; });
  std::vector<ClassicBucket> out;
  for (const auto& b : bs) {
    if (!out.empty() && out.back().upper == b.upper) {
      out.back().count += b.count;
    } else {
      out.push_back(b);
    }
  }
  bs = std::move(out);
  bool forced = false;
  double prev = bs[0].count;
  for (size_t k = 1; k < bs.size(); ++k) {
    double curr = bs[k].count;
    if (curr == prev) continue;
    double diff = std::fabs(curr - prev);
    double sum = std::fabs(curr) + std::fabs(prev);
    if (prev != 0 && curr != 0 && diff / sum < 1e-12) {
      bs[k].count = prev;
      continue;
    }
    if (curr < prev) {
      bs[k].count = prev;
      forced = true;
      continue;
    }
    prev = curr;
  }
  return forced;
}

// REQUIRES: buckets normalized and the last bound is +Inf.
double BucketQuantile(double phi, const std::vector<ClassicBucket>& bs) {
  if (std::isnan(phi)) return kNaN;
  if (phi < 0) return -INFINITY;
  if (phi > 1) return INFINITY;
  double observations = bs.back().count;
  if (bs.size() < 2 || observations == 0 || std::isnan(observations)) return kNaN;
  double rank = phi * observations;
  size_t k = 0;
  while (k < bs.size() - 1 && !(bs[k].count >= rank)) ++k;
  if (k == bs.size() - 1) return bs[bs.size() - 2].upper;
  if (k == 0 && bs[0].upper <= 0) return bs[0].upper;
  double start = 0, end = bs[k].upper, count = bs[k].count;
  if (k > 0) {
    start = bs[k - 1].upper;
    count -= bs[k - 1].count;
    rank -= bs[k - 1].count;
  }
  return start + (end - start) * (rank / count);
}

// The estimated fraction of observations in [lower, upper]. REQUIRES: as BucketQuantile.
double BucketFraction(double lower, double upper, const std::vector<ClassicBucket>& bs) {
  double count = bs.back().count;
  if (count == 0 || std::isnan(lower) || std::isnan(upper)) return kNaN;
  if (lower >= upper) return 0;
  double rank = 0, lower_rank = 0, upper_rank = 0;
  bool lower_set = false, upper_set = false;
  for (size_t i = 0; i < bs.size(); ++i) {
    double ub = bs[i].upper;
    double lb = i > 0 ? bs[i - 1].upper : (ub > 0 ? 0 : -INFINITY);
    // No interpolation within a bucket of infinite width: a point inside (-Inf, ub] sits at
    // its end, a point inside (lb, +Inf] at its start.
    auto interpolate = [&](double v) {
      if (std::isinf(lb)) return bs[i].count;
      if (std::isinf(ub)) return rank;
      return rank + (bs[i].count - rank) * (v - lb) / (ub - lb);
    };
    if (!lower_set && lb >= lower) {
      lower_rank = rank;
      lower_set = true;
    }
    if (!upper_set && lb >= upper) {
      upper_rank = rank;
      upper_set = true;
    }
    if (lower_set && upper_set) break;
    if (!lower_set && lb < lower && ub > lower) {
      lower_rank = interpolate(lower);
      lower_set = true;
    }
    if (!upper_set && lb < upper && ub > upper) {
      upper_rank = interpolate(upper);
      upper_set = true;
    }
    if (lower_set && upper_set) break;
    rank = bs[i].count;
  }
  if (!lower_set || lower_rank > count) lower_rank = count;
  if (!upper_set || upper_rank > count) upper_rank = count;
  return (upper_rank - lower_rank) / count;
}

// A quantile as histogram_quantiles labels it: "0.25", "1.0", "NaN".
std::string QuantileLabel(double q) {
  std::string s = FormatNumber(q);
  if (s.find_first_not_of("-0123456789") == std::string::npos) s += ".0";
  return s;
}

}  // namespace

// histogram_quantile, histogram_quantiles and histogram_fraction over classic buckets
// (series with an `le` label).
absl::StatusOr<EvalValue> Evaluator::EvalClassicHistogram(const Call& c,
                                                          std::vector<EvalValue>& args,
                                                          const StepRange& r) {
  const F id = c.func->id;
  const size_t n = r.Count();
  size_t vec_arg = id == F::kHistogramQuantile ? 1 : id == F::kHistogramFraction ? 2 : 0;
  const EvalValue& in = args[vec_arg];
  std::vector<size_t> quantile_args;
  if (id == F::kHistogramQuantile) quantile_args = {0};
  if (id == F::kHistogramQuantiles) {
    for (size_t i = 2; i < args.size(); ++i) quantile_args.push_back(i);
  }
  for (size_t qa : quantile_args) {
    for (size_t i = 0; i < n; ++i) {
      double phi = args[qa].scalars[i];
      if (std::isnan(phi) || phi < 0 || phi > 1) {
        Warn(*c.args[qa],
             fmt::format("quantile value should be between 0 and 1, got {}", FormatNumber(phi)));
        break;
      }
    }
  }
  struct Bucket {
    double upper;
    size_t series;
  };
  // Group the bucket series by their labels without `le`.
  std::vector<Labels> group_labels;
  std::vector<bool> group_drop;
  std::vector<std::vector<Bucket>> groups;
  StringMap<size_t> index;
  for (size_t i = 0; i < in.series.size(); ++i) {
    const Labels& l = in.series[i].labels;
    std::string_view le = l.Get("le");
    std::string le_s(le);
    char* end = nullptr;
    double upper = std::strtod(le_s.c_str(), &end);
    if (le.empty() || end != le_s.c_str() + le_s.size()) {
      Warn(*c.args[vec_arg],
           fmt::format("bucket label \"le\" is missing or has a malformed value of {} "
                       "for metric name {}",
                       QuoteString(le), QuoteString(l.MetricName())));
      continue;
    }
    LabelsBuilder lb(l);
    lb.Del("le");
    Labels key = lb.Build();
    auto [it, ok] = index.try_emplace(key.encoded(), groups.size());
    if (ok) {
      groups.emplace_back();
      lb.Del(kMetricName);
      group_labels.push_back(lb.Build());
    }
    groups[it->second].push_back({upper, i});
  }
  EvalValue out;
  out.type = ValueType::kVector;
  SeriesBuilder b;
  std::vector<size_t> cursor(in.series.size(), 0);
  std::vector<ClassicBucket> buckets;
  std::vector<Labels> quantile_labels;
  for (size_t g = 0; g < groups.size(); ++g) {
    std::string_view metric = in.series[groups[g][0].series].labels.MetricName();
    std::fill(cursor.begin(), cursor.end(), 0);
    for (size_t i = 0; i < n; ++i) {
      Timestamp t = r.At(i);
      buckets.clear();
      for (const Bucket& bk : groups[g]) {
        const auto& pts = in.series[bk.series].points;
        size_t& cur = cursor[bk.series];
        while (cur < pts.size() && pts[cur].t < t) ++cur;
        if (cur < pts.size() && pts[cur].t == t) buckets.push_back({bk.upper, pts[cur].v});
      }
      if (buckets.empty()) continue;
      bool valid = true;
      bool forced = NormalizeBuckets(buckets);
      if (!std::isinf(buckets.back().upper) || buckets.back().upper < 0) valid = false;
      if (forced && id != F::kHistogramFraction) {
        Info(*c.args[vec_arg],
             fmt::format("input to histogram_quantile needed to be fixed for monotonicity (see "
                         "https://prometheus.io/docs/prometheus/latest/querying/functions/"
                         "#histogram_quantile) for metric name {}",
                         QuoteString(metric)));
      }
      if (id == F::kHistogramFraction) {
        double v = valid ? BucketFraction(args[0].scalars[i], args[1].scalars[i], buckets) : kNaN;
        STRATA_RETURN_IF_ERROR(b.Add(group_labels[g], false, t, v));
        continue;
      }
      for (size_t qa : quantile_args) {
        double phi = args[qa].scalars[i];
        double v = valid ? BucketQuantile(phi, buckets) : kNaN;
        if (!valid && std::isnan(phi)) v = kNaN;
        if (id == F::kHistogramQuantiles) {
          LabelsBuilder lb(group_labels[g]);
          lb.Set(args[1].str, QuantileLabel(phi));
          STRATA_RETURN_IF_ERROR(b.Add(lb.Build(), false, t, v));
        } else {
          STRATA_RETURN_IF_ERROR(b.Add(group_labels[g], false, t, v));
        }
      }
    }
  }
  out.series = b.Take();
  return out;
}

}  // namespace strata::promql
