// Structural comparison of Prometheus API answers from two servers (Strata and a real peer):
// same series label sets, same timestamps, values equal within a relative tolerance. A
// difference is described in words with both answers abbreviated, for the test's message.
#ifndef STRATA_TESTS_E2E_RESULT_COMPARE_H_
#define STRATA_TESTS_E2E_RESULT_COMPARE_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace strata::e2e {

struct Sample {
  int64_t t_ms = 0;
  double v = 0;
  std::string text;  // the value as the server wrote it
};

struct Series {
  std::map<std::string, std::string> labels;
  std::vector<Sample> samples;
  // {__name__="x", a="b"} in name order: a key and a readable name.
  std::string Key() const;
};

// A decoded /api/v1/query or /api/v1/query_range answer. Scalars and strings are one series
// without labels; `result_type` is "vector", "matrix", "scalar" or "string".
struct QueryResult {
  std::string result_type;
  std::vector<Series> series;
};

// Decodes a successful query answer; false with the reason in `error` otherwise (an error
// status, missing fields, a sample value that is not a string, ...).
bool ParseQueryResponse(std::string_view body, QueryResult* out, std::string* error);

// Decodes VictoriaMetrics' /api/v1/export answer (one JSON object per line with "metric",
// "values" and "timestamps").
bool ParseVmExport(std::string_view body, std::vector<Series>* out, std::string* error);

struct CompareOptions {
  // Values equal as text (no float arithmetic in the query) rather than within `rel_tol`.
  bool exact = false;
  double rel_tol = 1e-9;
  // Values at most this far apart are equal too (for results that cancel to about 0).
  double abs_tol = 0;
  // The order of the series matters (sort, sort_desc on an instant query).
  bool ordered = false;
};

// "" when `ours` and `theirs` hold the same series and samples, else what differs.
std::string CompareSeries(const std::vector<Series>& ours, const std::vector<Series>& theirs,
                          const CompareOptions& options);
// Same for two query answers (both must decode and have the same result type).
std::string CompareQueryResponses(std::string_view ours, std::string_view theirs,
                                  const CompareOptions& options);
// /api/v1/series answers: the same label sets, in any order.
std::string CompareSeriesResponses(std::string_view ours, std::string_view theirs);
// /api/v1/labels and /api/v1/label/<name>/values answers: the same sorted list of strings.
std::string CompareStringListResponses(std::string_view ours, std::string_view theirs);

// The first `n` characters of `s`, with "..." when cut.
std::string Abbreviate(std::string_view s, size_t n = 600);

}  // namespace strata::e2e

#endif  // STRATA_TESTS_E2E_RESULT_COMPARE_H_
