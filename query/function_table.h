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
};

struct FunctionInfo {
  FunctionId id;
  std::string_view name;
  // Declared argument types. With variadic == 0 the call takes exactly these.
  std::vector<ValueType> arg_types;
  // 0: fixed arity. n > 0: the last argument type may be omitted or repeated so that up
  // to arg_types.size() - 1 + n arguments... precisely as Prometheus: the call takes
  // between arg_types.size() - 1 and arg_types.size() - 1 + n arguments, all extra ones of
  // the last declared type. -1: the last type may repeat without limit (and be omitted).
  // Exception to "may be omitted": see min_args.
  int variadic = 0;
  // Fewest arguments the call accepts (derived from arg_types/variadic as Prometheus does).
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
