// The static table of PromQL functions: names, argument types, return types.
#ifndef STRATA_QUERY_FUNCTION_TABLE_H_
#define STRATA_QUERY_FUNCTION_TABLE_H_

#include <span>
#include <string_view>
#include <vector>

namespace strata::promql {

// The type of a PromQL value. kNone only for "no type" (never the type of a valid expr).
enum class ValueType { kNone, kScalar, kVector, kMatrix, kString };

// "scalar", "instant vector", "range vector", "string", "none" (Prometheus' wording in
// type errors).
std::string_view ValueTypeName(ValueType t);
// "scalar", "vector", "matrix", "string" (the API's resultType).
std::string_view ValueTypeApiName(ValueType t);

// Every function the parser knows. Identity: compare FunctionInfo pointers or `id`.
enum class FunctionId {
  kAbs,
  kAbsent,
  kAbsentOverTime,
  kAcos,
  kAcosh,
  kAsin,
  kAsinh,
  kAtan,
  kAtanh,
  kAvgOverTime,
  kCeil,
  kChanges,
  kClamp,
  kClampMax,
  kClampMin,
  kCos,
  kCosh,
  kCountOverTime,
  kDaysInMonth,
  kDayOfMonth,
  kDayOfWeek,
  kDayOfYear,
  kDeg,
  kDelta,
  kDeriv,
  kDoubleExponentialSmoothing,
  kEnd,
  kExp,
  kFirstOverTime,
  kFloor,
  kHistogramAvg,
  kHistogramCount,
  kHistogramFraction,
  kHistogramQuantile,
  kHistogramQuantiles,
  kHistogramStddev,
  kHistogramStdvar,
  kHistogramSum,
  kHour,
  kIdelta,
  kIncrease,
  kInfo,
  kIrate,
  kLabelJoin,
  kLabelReplace,
  kLastOverTime,
  kLn,
  kLog10,
  kLog2,
  kMadOverTime,
  kMaxOverTime,
  kMinOverTime,
  kMinute,
  kMonth,
  kPi,
  kPredictLinear,
  kPresentOverTime,
  kQuantileOverTime,
  kRad,
  kRange,
  kRate,
  kResets,
  kRound,
  kScalar,
  kSgn,
  kSin,
  kSinh,
  kSort,
  kSortByLabel,
  kSortByLabelDesc,
  kSortDesc,
  kSqrt,
  kStart,
  kStartTimestamp,
  kStddevOverTime,
  kStdvarOverTime,
  kStep,
  kSumOverTime,
  kTan,
  kTanh,
  kTime,
  kTimestamp,
  kTsOfFirstOverTime,
  kTsOfLastOverTime,
  kTsOfMaxOverTime,
  kTsOfMinOverTime,
  kVector,
  kYear,
  // Added later; appended so that the values above do not move.
  kMinOf,
  kMaxOf,
};

struct FunctionInfo {
  FunctionId id;
  std::string_view name;
  // Declared argument types; arguments past the end have the last declared type.
  std::vector<ValueType> arg_types;
  // As in Prometheus: 0 = exactly arg_types.size() arguments; n > 0 = between
  // arg_types.size() - 1 and arg_types.size() - 1 + n; -1 = at least arg_types.size() - 1.
  int variadic = 0;
  // Fewest arguments the call accepts (derived from arg_types and variadic).
  int min_args = 0;
  ValueType return_type = ValueType::kNone;
  // Needs the "promql-experimental-functions" feature.
  bool experimental = false;
};

// The function named `name`, or nullptr. The returned pointer is valid forever.
const FunctionInfo* LookupFunction(std::string_view name);
// The entry for `id` (never null).
const FunctionInfo& GetFunction(FunctionId id);
// All functions, in name order.
std::span<const FunctionInfo> AllFunctions();

}  // namespace strata::promql

#endif  // STRATA_QUERY_FUNCTION_TABLE_H_
