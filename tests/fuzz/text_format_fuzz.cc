// Fuzz target for the text exposition parser (what /api/v1/import/prometheus reads).
//
// Property: no input crashes, hangs or trips a sanitizer; every body that parses holds
// series with a metric name and samples sorted by time with one per timestamp; and writing
// those samples back with AppendTextSample gives text that parses to the same series and
// samples (values bit for bit, any NaN matching any NaN: the text form has one NaN).
//
// Seeds: tests/fuzz/text_format_seeds. Built like promql_parser_fuzz (libFuzzer with clang
// and STRATA_FUZZ=ON, else a ctest replay of the seeds and their mutations).
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "src/text_format.h"

namespace {

[[noreturn]] void Fail(std::string_view what, std::string_view input, std::string_view detail) {
  std::fprintf(stderr, "%.*s\n  input:  %.*s\n  detail: %.*s\n", static_cast<int>(what.size()),
               what.data(), static_cast<int>(input.size()), input.data(),
               static_cast<int>(detail.size()), detail.data());
  std::abort();
}

bool SameValue(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b);
}

// How many inputs parsed, printed at exit when STRATA_FUZZ_STATS is set (to check that the
// mutations still reach the round trip).
size_t parsed_inputs = 0;
struct StatsAtExit {
  ~StatsAtExit() {
    if (std::getenv("STRATA_FUZZ_STATS") != nullptr) {
      std::fprintf(stderr, "inputs that parsed: %zu\n", parsed_inputs);
    }
  }
} stats_at_exit;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 1 << 16) return 0;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = strata::ParseTextFormat(text);
  if (!parsed.ok()) {
    if (parsed.status().message().empty()) Fail("error without a message", text, "");
    return 0;
  }
  ++parsed_inputs;
  std::string written;
  size_t samples = 0;
  for (const strata::TextSeries& s : parsed->series) {
    if (s.labels.MetricName().empty()) Fail("series without a name", text, s.labels.ToString());
    for (size_t i = 0; i < s.samples.size(); ++i) {
      if (i > 0 && s.samples[i].t <= s.samples[i - 1].t) {
        Fail("samples not sorted or repeated", text, s.labels.ToString());
      }
      strata::AppendTextSample(s.labels, s.samples[i].v, s.samples[i].t, &written);
    }
    samples += s.samples.size();
  }
  if (samples != parsed->samples) Fail("sample count is off", text, written);
  auto again = strata::ParseTextFormat(written);
  if (!again.ok()) Fail("written samples do not parse", text, again.status().ToString());
  if (again->series.size() != parsed->series.size()) Fail("series differ", text, written);
  for (size_t i = 0; i < parsed->series.size(); ++i) {
    const strata::TextSeries& a = parsed->series[i];
    const strata::TextSeries& b = again->series[i];
    if (a.labels != b.labels) Fail("labels differ", text, b.labels.ToString());
    if (a.samples.size() != b.samples.size()) Fail("sample counts differ", text, written);
    for (size_t j = 0; j < a.samples.size(); ++j) {
      if (a.samples[j].t != b.samples[j].t || !SameValue(a.samples[j].v, b.samples[j].v)) {
        Fail("samples differ", text, written);
      }
    }
  }
  return 0;
}
