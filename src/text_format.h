// The Prometheus text exposition format (version 0.0.4, what /metrics endpoints serve): a
// parser for importing a whole body of it, and a writer for one sample line.
//
// What the parser accepts, line by line ('\n' or "\r\n" ends a line; blanks are spaces and
// tabs and may stand between any two tokens):
//   metric_name [{label="value", ...}] value [timestamp]
//   {"utf-8 metric name", "utf-8 label"="value", ...} value [timestamp]   (Prometheus 3)
//   # HELP metric_name help text        (escapes \\ and \n)
//   # TYPE metric_name counter|gauge|histogram|summary|untyped
//   # anything else, and blank lines    (ignored)
// Label values are in double quotes with the escapes \\, \" and \n (any other escape is an
// error); a trailing comma in the label set is allowed; a label with an empty value is
// absent. Values are Go floats: decimal or exponent notation, NaN, Inf, +Inf, -Inf (case does
// not matter). Timestamps are integers, milliseconds since the epoch.
#ifndef STRATA_SRC_TEXT_FORMAT_H_
#define STRATA_SRC_TEXT_FORMAT_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "src/labels.h"
#include "src/sample.h"

namespace strata {

struct TextFormatOptions {
  // The time of samples whose line has no timestamp.
  Timestamp default_timestamp = 0;
  // Labels added to every series, replacing a label of the same name (an empty value
  // removes it). Names are checked like the body's.
  std::vector<std::pair<std::string, std::string>> extra_labels;
  size_t max_labels_per_series = 128;
  size_t max_label_name_bytes = 1024;
  size_t max_label_value_bytes = 16 * 1024;
};

struct TextSeries {
  Labels labels;
  // Sorted by time, one sample per timestamp (lines may come in any order; a line that
  // repeats a sample exactly is dropped).
  std::vector<Sample> samples;
};

// What the HELP and TYPE lines said about one metric family.
struct TextMetadata {
  std::string metric;
  std::string type = "unknown";  // counter, gauge, histogram, summary; untyped is "unknown"
  std::string help;
};

struct TextParseResult {
  std::vector<TextSeries> series;      // in the order each first appears
  std::vector<TextMetadata> metadata;  // in the order each family is first described
  size_t lines = 0;                    // lines read, blank and comment lines included
  size_t samples = 0;                  // samples in `series`
};

// Parses a whole body, all or nothing: the first problem is an InvalidArgument error that
// names the line and column and says what is wrong ("line 3, column 9: expected '=' after
// label name \"job\""), and nothing is returned. Problems: syntax, a value or timestamp that
// does not parse, no metric name, an empty, duplicate, invalid UTF-8 or over-long label
// name, an invalid UTF-8 or over-long value, too many labels, an unknown TYPE, and two
// different values for the same series and timestamp.
absl::StatusOr<TextParseResult> ParseTextFormat(std::string_view text,
                                                const TextFormatOptions& options = {});

// Appends one sample line ending in '\n', in the form ParseTextFormat reads back to the
// same labels and value: names that are not legacy identifiers are quoted (inside the
// braces), values escaped, floats printed with the fewest digits that round-trip (NaN, +Inf,
// -Inf). No timestamp when `t` is empty.
void AppendTextSample(const Labels& labels, double v, std::optional<Timestamp> t, std::string* out);

}  // namespace strata

#endif  // STRATA_SRC_TEXT_FORMAT_H_
