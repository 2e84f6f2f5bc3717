// Request parameters of the Prometheus HTTP API: read from the URL query and, for POST, from
// an application/x-www-form-urlencoded body, with Prometheus' error messages.
#ifndef STRATA_SERVER_API_PARAMS_H_
#define STRATA_SERVER_API_PARAMS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "query/parser.h"
#include "src/matcher.h"
#include "src/sample.h"

namespace strata {

struct HttpRequest;

// Decodes a query-string component as Go's url.QueryUnescape does: '+' is a space, %XX a
// byte. Errors on a malformed escape: `invalid URL escape "%zz"`.
absl::StatusOr<std::string> QueryUnescape(std::string_view s);

// Undoes Prometheus 3's "values" escaping of a name, which clients use to put a UTF-8 label
// name in a URL path (/api/v1/label/U__<escaped>/values): after the "U__" prefix, "__" is
// "_" and "_<hex code point>_" is that character ("U__my_2e_label" -> "my.label"). A name
// without the prefix, or one that does not decode (a bad hex digit, more than six digits, a
// missing closing '_', no valid code point), is returned unchanged, as Prometheus does.
std::string UnescapeValueEncodedName(std::string_view name);

// The parameters of one request, in Go's r.Form order: body parameters first, then URL
// parameters, each in the order they appear. Parameter names are case-sensitive.
class ApiParams {
 public:
  ApiParams() = default;

  // `query` is the part of the target after '?' (without it). `content_type` and `body` are
  // read only when the content type is application/x-www-form-urlencoded (parameters such as
  // charset are allowed). Errors (bad escapes, a ';' separator, which Go rejects) read
  // `error parsing form values: invalid URL escape "%zz"`.
  static absl::StatusOr<ApiParams> Parse(std::string_view query, std::string_view content_type,
                                         std::string_view body);

  // The parameters of an HTTP request: its URL query and, for POST, PUT and PATCH (as Go
  // reads them), a form-encoded body.
  static absl::StatusOr<ApiParams> FromRequest(const HttpRequest& req);

  void Add(std::string name, std::string value) {
    values_.emplace_back(std::move(name), std::move(value));
  }

  // The first value of `name`, or "" when absent (Go's FormValue).
  std::string_view Get(std::string_view name) const;
  bool Has(std::string_view name) const;
  // Every value of `name` in order (e.g. "match[]"). Views stay valid while *this lives.
  std::vector<std::string_view> GetAll(std::string_view name) const;

  const std::vector<std::pair<std::string, std::string>>& values() const { return values_; }

 private:
  std::vector<std::pair<std::string, std::string>> values_;
};

// One match[] value read as Prometheus' ParseMetricSelector reads it: a metric name, braces
// or both, and nothing after them (no range, offset, @, operator or call). Errors are worded
// as Prometheus words them (`1:3: parse error: unexpected "["`), without the parameter's
// name. Matchers that all match the empty string are no error here.
absl::StatusOr<std::vector<LabelMatcher>> ParseSeriesSelector(std::string_view text,
                                                              const promql::ParserOptions& options);

// `invalid parameter "<name>": <cause>` with the cause's code (InvalidArgument unless the
// cause says otherwise).
absl::Status InvalidParamError(std::string_view name, const absl::Status& cause);

// The time in parameter `name` (Unix seconds or RFC3339). Without `default_ms` (the start
// and end of a range query) the parameter is required, and a bad one reads
//   invalid parameter "start": cannot parse "" to a valid timestamp
// With it (an optional time: `time`, and `start`/`end` of the series, label and exemplar
// endpoints) absent or empty means `default_ms`, and a bad one reads as in Prometheus 3:
//   invalid parameter "time": invalid time value for 'time': cannot parse "x" to a valid
//   timestamp
absl::StatusOr<Timestamp> TimeParam(const ApiParams& params, std::string_view name,
                                    std::optional<Timestamp> default_ms = std::nullopt);

// The duration in parameter `name` in milliseconds (float seconds or "5m"). Absent or
// empty: `default_ms` if given, else an error naming the parameter.
absl::StatusOr<int64_t> DurationParam(const ApiParams& params, std::string_view name,
                                      std::optional<int64_t> default_ms = std::nullopt);

// The start, end and step of a range query, checked as Prometheus checks them: end not before
// start, a positive step, and at most 11,000 points per series.
struct RangeParams {
  Timestamp start = 0;
  Timestamp end = 0;
  int64_t step_ms = 0;
};
absl::StatusOr<RangeParams> ParseRangeParams(const ApiParams& params);

// The 11,000-points check alone, with the step in nanoseconds as Prometheus holds it: OK, or
// the bad_data error Prometheus gives ("exceeded maximum resolution of 11,000 points per
// timeseries. Try decreasing the query resolution (?step=XX)"). REQUIRES: step_ns > 0.
inline constexpr int64_t kMaxPointsPerSeries = 11000;
absl::Status CheckResolution(Timestamp start, Timestamp end, int64_t step_ns);

}  // namespace strata

#endif  // STRATA_SERVER_API_PARAMS_H_
