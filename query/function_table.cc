#include "query/function_table.h"

#include <algorithm>
#include <cassert>
#include <vector>

namespace strata::promql {

std::string_view ValueTypeName(ValueType t) {
  switch (t) {
    case ValueType::kScalar:
      return "scalar";
    case ValueType::kVector:
      return "instant vector";
    case ValueType::kMatrix:
      return "range vector";
    case ValueType::kString:
      return "string";
    case ValueType::kNone:
      break;
  }
  return "none";
}

std::string_view ValueTypeApiName(ValueType t) {
  switch (t) {
    case ValueType::kScalar:
      return "scalar";
    case ValueType::kVector:
      return "vector";
    case ValueType::kMatrix:
      return "matrix";
    case ValueType::kString:
      return "string";
    case ValueType::kNone:
      break;
  }
  return "none";
}

namespace {

using VT = ValueType;

// Sorted by name (checked on first use). Argument types and variadic counts follow
// Prometheus' function table.
const std::vector<FunctionInfo>& Table() {
  static const std::vector<FunctionInfo>* table = [] {
    auto* t = new std::vector<FunctionInfo>{
        {FunctionId::kAbs, "abs", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kAbsent, "absent", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kAbsentOverTime, "absent_over_time", {VT::kMatrix}, 0, 1, VT::kVector, false},
        {FunctionId::kAcos, "acos", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kAcosh, "acosh", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kAsin, "asin", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kAsinh, "asinh", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kAtan, "atan", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kAtanh, "atanh", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kAvgOverTime, "avg_over_time", {VT::kMatrix}, 0, 1, VT::kVector, false},
        {FunctionId::kCeil, "ceil", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kChanges, "changes", {VT::kMatrix}, 0, 1, VT::kVector, false},
        {FunctionId::kClamp,
         "clamp",
         {VT::kVector, VT::kScalar, VT::kScalar},
         0,
         3,
         VT::kVector,
         false},
        {FunctionId::kClampMax, "clamp_max", {VT::kVector, VT::kScalar}, 0, 2, VT::kVector, false},
        {FunctionId::kClampMin, "clamp_min", {VT::kVector, VT::kScalar}, 0, 2, VT::kVector, false},
        {FunctionId::kCos, "cos", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kCosh, "cosh", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kCountOverTime, "count_over_time", {VT::kMatrix}, 0, 1, VT::kVector, false},
        {FunctionId::kDayOfMonth, "day_of_month", {VT::kVector}, 1, 0, VT::kVector, false},
        {FunctionId::kDayOfWeek, "day_of_week", {VT::kVector}, 1, 0, VT::kVector, false},
        {FunctionId::kDayOfYear, "day_of_year", {VT::kVector}, 1, 0, VT::kVector, false},
        {FunctionId::kDaysInMonth, "days_in_month", {VT::kVector}, 1, 0, VT::kVector, false},
        {FunctionId::kDeg, "deg", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kDelta, "delta", {VT::kMatrix}, 0, 1, VT::kVector, false},
        {FunctionId::kDeriv, "deriv", {VT::kMatrix}, 0, 1, VT::kVector, false},
        {FunctionId::kDoubleExponentialSmoothing,
         "double_exponential_smoothing",
         {VT::kMatrix, VT::kScalar, VT::kScalar},
         0,
         3,
         VT::kVector,
         true},
        {FunctionId::kEnd, "end", {}, 0, 0, VT::kScalar, true},
        {FunctionId::kExp, "exp", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kFirstOverTime, "first_over_time", {VT::kMatrix}, 0, 1, VT::kVector, true},
        {FunctionId::kFloor, "floor", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kHistogramAvg, "histogram_avg", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kHistogramCount, "histogram_count", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kHistogramFraction,
         "histogram_fraction",
         {VT::kScalar, VT::kScalar, VT::kVector},
         0,
         3,
         VT::kVector,
         false},
        {FunctionId::kHistogramQuantile,
         "histogram_quantile",
         {VT::kScalar, VT::kVector},
         0,
         2,
         VT::kVector,
         false},
        {FunctionId::kHistogramQuantiles,
         "histogram_quantiles",
         {VT::kVector, VT::kString, VT::kScalar, VT::kScalar},
         9,
         3,
         VT::kVector,
         true},
        {FunctionId::kHistogramStddev, "histogram_stddev", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kHistogramStdvar, "histogram_stdvar", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kHistogramSum, "histogram_sum", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kHour, "hour", {VT::kVector}, 1, 0, VT::kVector, false},
        {FunctionId::kIdelta, "idelta", {VT::kMatrix}, 0, 1, VT::kVector, false},
        {FunctionId::kIncrease, "increase", {VT::kMatrix}, 0, 1, VT::kVector, false},
        {FunctionId::kInfo, "info", {VT::kVector, VT::kVector}, 1, 1, VT::kVector, true},
        {FunctionId::kIrate, "irate", {VT::kMatrix}, 0, 1, VT::kVector, false},
        {FunctionId::kLabelJoin,
         "label_join",
         {VT::kVector, VT::kString, VT::kString, VT::kString},
         -1,
         3,
         VT::kVector,
         false},
        {FunctionId::kLabelReplace,
         "label_replace",
         {VT::kVector, VT::kString, VT::kString, VT::kString, VT::kString},
         0,
         5,
         VT::kVector,
         false},
        {FunctionId::kLastOverTime, "last_over_time", {VT::kMatrix}, 0, 1, VT::kVector, false},
        {FunctionId::kLn, "ln", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kLog10, "log10", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kLog2, "log2", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kMadOverTime, "mad_over_time", {VT::kMatrix}, 0, 1, VT::kVector, true},
        {FunctionId::kMaxOf, "max_of", {VT::kScalar, VT::kScalar}, 0, 2, VT::kScalar, true},
        {FunctionId::kMaxOverTime, "max_over_time", {VT::kMatrix}, 0, 1, VT::kVector, false},
        {FunctionId::kMinOf, "min_of", {VT::kScalar, VT::kScalar}, 0, 2, VT::kScalar, true},
        {FunctionId::kMinOverTime, "min_over_time", {VT::kMatrix}, 0, 1, VT::kVector, false},
        {FunctionId::kMinute, "minute", {VT::kVector}, 1, 0, VT::kVector, false},
        {FunctionId::kMonth, "month", {VT::kVector}, 1, 0, VT::kVector, false},
        {FunctionId::kPi, "pi", {}, 0, 0, VT::kScalar, false},
        {FunctionId::kPredictLinear,
         "predict_linear",
         {VT::kMatrix, VT::kScalar},
         0,
         2,
         VT::kVector,
         false},
        {FunctionId::kPresentOverTime,
         "present_over_time",
         {VT::kMatrix},
         0,
         1,
         VT::kVector,
         false},
        {FunctionId::kQuantileOverTime,
         "quantile_over_time",
         {VT::kScalar, VT::kMatrix},
         0,
         2,
         VT::kVector,
         false},
        {FunctionId::kRad, "rad", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kRange, "range", {}, 0, 0, VT::kScalar, true},
        {FunctionId::kRate, "rate", {VT::kMatrix}, 0, 1, VT::kVector, false},
        {FunctionId::kResets, "resets", {VT::kMatrix}, 0, 1, VT::kVector, false},
        {FunctionId::kRound, "round", {VT::kVector, VT::kScalar}, 1, 1, VT::kVector, false},
        {FunctionId::kScalar, "scalar", {VT::kVector}, 0, 1, VT::kScalar, false},
        {FunctionId::kSgn, "sgn", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kSin, "sin", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kSinh, "sinh", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kSort, "sort", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kSortByLabel,
         "sort_by_label",
         {VT::kVector, VT::kString},
         -1,
         1,
         VT::kVector,
         true},
        {FunctionId::kSortByLabelDesc,
         "sort_by_label_desc",
         {VT::kVector, VT::kString},
         -1,
         1,
         VT::kVector,
         true},
        {FunctionId::kSortDesc, "sort_desc", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kSqrt, "sqrt", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kStart, "start", {}, 0, 0, VT::kScalar, true},
        {FunctionId::kStartTimestamp, "start_timestamp", {VT::kVector}, 0, 1, VT::kVector, true},
        {FunctionId::kStddevOverTime, "stddev_over_time", {VT::kMatrix}, 0, 1, VT::kVector, false},
        {FunctionId::kStdvarOverTime, "stdvar_over_time", {VT::kMatrix}, 0, 1, VT::kVector, false},
        {FunctionId::kStep, "step", {}, 0, 0, VT::kScalar, true},
        {FunctionId::kSumOverTime, "sum_over_time", {VT::kMatrix}, 0, 1, VT::kVector, false},
        {FunctionId::kTan, "tan", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kTanh, "tanh", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kTime, "time", {}, 0, 0, VT::kScalar, false},
        {FunctionId::kTimestamp, "timestamp", {VT::kVector}, 0, 1, VT::kVector, false},
        {FunctionId::kTsOfFirstOverTime,
         "ts_of_first_over_time",
         {VT::kMatrix},
         0,
         1,
         VT::kVector,
         true},
        {FunctionId::kTsOfLastOverTime,
         "ts_of_last_over_time",
         {VT::kMatrix},
         0,
         1,
         VT::kVector,
         true},
        {FunctionId::kTsOfMaxOverTime,
         "ts_of_max_over_time",
         {VT::kMatrix},
         0,
         1,
         VT::kVector,
         true},
        {FunctionId::kTsOfMinOverTime,
         "ts_of_min_over_time",
         {VT::kMatrix},
         0,
         1,
         VT::kVector,
         true},
        {FunctionId::kVector, "vector", {VT::kScalar}, 0, 1, VT::kVector, false},
        {FunctionId::kYear, "year", {VT::kVector}, 1, 0, VT::kVector, false},
    };
    assert(std::is_sorted(t->begin(), t->end(), [](const FunctionInfo& a, const FunctionInfo& b) {
      return a.name < b.name;
    }));
    return t;
  }();
  return *table;
}

}  // namespace

const FunctionInfo* LookupFunction(std::string_view name) {
  const auto& t = Table();
  auto it = std::lower_bound(t.begin(), t.end(), name,
                             [](const FunctionInfo& f, std::string_view n) { return f.name < n; });
  if (it == t.end() || it->name != name) return nullptr;
  return &*it;
}

const FunctionInfo& GetFunction(FunctionId id) {
  static const std::vector<const FunctionInfo*>* by_id = [] {
    const auto& t = Table();
    auto* v = new std::vector<const FunctionInfo*>(t.size(), nullptr);
    for (const FunctionInfo& f : t) (*v)[static_cast<size_t>(f.id)] = &f;
    return v;
  }();
  return *(*by_id)[static_cast<size_t>(id)];
}

std::span<const FunctionInfo> AllFunctions() { return Table(); }

}  // namespace strata::promql
