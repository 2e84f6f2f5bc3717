// JSON for the Prometheus HTTP API: a streaming writer and the response envelope.
//
// Numbers are printed with std::to_chars, never through streams or printf. Sample values and
// timestamps follow Prometheus' own formatting (see FormatSampleValue, FormatTimestamp), which
// clients such as Grafana parse.
#ifndef STRATA_SERVER_API_JSON_H_
#define STRATA_SERVER_API_JSON_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "src/labels.h"
#include "src/sample.h"

namespace strata {

// Appends `v` as Prometheus prints a sample value (Go's strconv.FormatFloat with precision
// -1): shortest round-tripping digits, fixed notation unless |v| < 1e-6 or |v| >= 1e21
// (then 'e' notation with a sign and at least two exponent digits). "NaN", "+Inf", "-Inf";
// negative zero is "-0". No quotes.
void AppendSampleValue(double v, std::string* out);
std::string FormatSampleValue(double v);

// Appends `v` as Prometheus prints the value of a scalar result (promql.Scalar's MarshalJSON:
// Go's strconv.FormatFloat with format 'f' and precision -1): shortest round-tripping
// digits, always in fixed notation ("1000000000000000000000", "0.0000001"); "NaN", "+Inf",
// "-Inf". No quotes.
void AppendScalarValue(double v, std::string* out);

// Appends a millisecond timestamp as Prometheus prints the time of a scalar or string
// result: Go's encoding/json of the float seconds, so shortest digits without trailing
// zeros (1500 -> "1.5", 2000 -> "2", 1435781451781 -> "1435781451.781").
void AppendGoSeconds(Timestamp ms, std::string* out);

// Appends a millisecond timestamp as Prometheus prints it in vectors and matrices: whole seconds,
// then, when the millisecond part is not zero, a point and exactly three digits (Prometheus does
// not trim trailing zeros): 1435781451781 -> "1435781451.781", 2000 -> "2", 1500 -> "1.500",
// -1500 -> "-1.500", 5 -> "0.005".
void AppendTimestamp(Timestamp ms, std::string* out);
std::string FormatTimestamp(Timestamp ms);

// Appends `s` as a JSON string with quotes, escaped as Go's encoding/json does: '"', '\\',
// \n \r \t, other control bytes as \u00XX, '<' '>' '&' as \u003c \u003e \u0026, U+2028 and
// U+2029 escaped, and each invalid UTF-8 byte replaced by U+FFFD.
void AppendJsonString(std::string_view s, std::string* out);

// A streaming JSON writer into a std::string. Commas are inserted automatically; the caller
// is responsible for balanced Begin/End calls and for calling Key() before each object value.
// Not thread-safe.
class JsonWriter {
 public:
  JsonWriter() = default;
  explicit JsonWriter(std::string* out) : out_(out) {}
  JsonWriter(const JsonWriter&) = delete;
  JsonWriter& operator=(const JsonWriter&) = delete;

  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(std::string_view key);

  JsonWriter& String(std::string_view s);
  JsonWriter& Int(int64_t v);
  JsonWriter& Uint(uint64_t v);
  JsonWriter& Bool(bool v);
  JsonWriter& Null();
  // A plain JSON number (shortest round trip); NaN and infinities, which JSON cannot hold,
  // are written as null.
  JsonWriter& Double(double v);
  // A sample value: a JSON string as AppendSampleValue prints it ("1", "NaN", "+Inf").
  JsonWriter& SampleValue(double v);
  // A timestamp: a JSON number in seconds (AppendTimestamp).
  JsonWriter& Timestamp(strata::Timestamp ms);
  // A [timestamp, "value"] pair, as in vectors and matrices.
  JsonWriter& SamplePair(strata::Timestamp ms, double v);
  // The [time, "value"] of a scalar result (AppendGoSeconds, AppendScalarValue).
  JsonWriter& ScalarPair(strata::Timestamp ms, double v);
  // The time of a string result (AppendGoSeconds).
  JsonWriter& GoSeconds(strata::Timestamp ms);
  // A label set as an object in label order: {"__name__":"up","job":"node"}.
  JsonWriter& LabelSet(const Labels& labels);
  JsonWriter& LabelSet(std::span<const LabelView> labels);
  // Already-encoded JSON, inserted as one value.
  JsonWriter& Raw(std::string_view json);

  std::string& out() { return *out_; }

 private:
  // [time, "value"] with the given formats.
  JsonWriter& Pair(strata::Timestamp ms, double v,
                   void (*append_time)(strata::Timestamp, std::string*),
                   void (*append_value)(double, std::string*));
  void Separate() {
    if (!first_) out_->push_back(',');
  }

  std::string own_;
  std::string* out_ = &own_;
  bool first_ = true;  // no value written yet at the current nesting level (or after a key)
};

// The Prometheus API error types.
enum class ApiErrorType {
  kBadData,      // 400
  kExecution,    // 422
  kTimeout,      // 503
  kCanceled,     // 499
  kInternal,     // 500
  kNotFound,     // 404
  kUnavailable,  // 503
};

std::string_view ApiErrorTypeName(ApiErrorType type);
int ApiErrorHttpCode(ApiErrorType type);
// The error type for a status code as src/status.h documents it. REQUIRES: !status.ok().
ApiErrorType ApiErrorTypeFromStatus(const absl::Status& status);

// {"status":"error","errorType":"bad_data","error":"..."}
std::string ApiErrorBody(ApiErrorType type, std::string_view message);

// Writes the success envelope around `data`:
//   {"status":"success","data":<data>,"warnings":[...],"infos":[...]}
// with warnings and infos left out when empty, as Prometheus does. Usage:
//   std::string body;
//   JsonWriter w(&body);
//   BeginApiSuccess(w);
//   ... write exactly one value (the data) ...
//   EndApiSuccess(w, warnings, infos);
void BeginApiSuccess(JsonWriter& w);
void EndApiSuccess(JsonWriter& w, std::span<const std::string> warnings = {},
                   std::span<const std::string> infos = {});

}  // namespace strata

#endif  // STRATA_SERVER_API_JSON_H_
