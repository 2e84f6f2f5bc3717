// An interpreter for Prometheus' PromQL test-script language (load / clear / eval), as
// described in ../shared/promql-tests/FORMAT.md. Used by the ctest runner of the upstream
// scripts, and reusable by benchmarks and tools.
#ifndef STRATA_QUERY_PROMQL_TEST_SCRIPT_H_
#define STRATA_QUERY_PROMQL_TEST_SCRIPT_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "query/engine.h"
#include "src/labels.h"
#include "src/sample.h"

namespace strata::promql {

// One parsed series description: `name{l="v"} 1+2x3 _ stale {{...}}`.
struct SeriesDescription {
  Labels labels;
  // One entry per position; nullopt for `_`. Histogram positions are nullopt too and
  // counted in `histogram_positions`.
  std::vector<std::optional<double>> values;
  int histogram_positions = 0;
};

// Parses a series description line (FORMAT.md §6). Errors name the offending item.
absl::StatusOr<SeriesDescription> ParseSeriesDescription(std::string_view line);

enum class EvalStatus { kPassed, kFailed, kSkipped };

struct EvalOutcome {
  int line = 0;  // 1-based line of the eval command
  EvalStatus status = EvalStatus::kPassed;
  std::string message;  // why it failed, or the skip reason
};

struct ScriptReport {
  std::string name;
  std::vector<EvalOutcome> evals;
  int passed() const { return Count(EvalStatus::kPassed); }
  int failed() const { return Count(EvalStatus::kFailed); }
  int skipped() const { return Count(EvalStatus::kSkipped); }

 private:
  int Count(EvalStatus s) const;
};

// Skip reasons (the only two allowed).
inline constexpr std::string_view kSkipNativeHistograms = "needs native histograms";
inline constexpr std::string_view kSkipStartTimestamps = "needs start timestamps";

// Parses the whole script (every command and PromQL expression) and then runs it against
// a fresh in-memory store. A parse error of the script (unknown command, bad series line,
// bad PromQL) is returned as an error: nothing runs, as in the reference runner. Each eval
// is reported individually, including the reference runner's extra range-mode and `@`
// re-runs of instant evals.
absl::StatusOr<ScriptReport> RunTestScript(std::string_view text, std::string_view name,
                                           const EngineOptions& options);

}  // namespace strata::promql

#endif  // STRATA_QUERY_PROMQL_TEST_SCRIPT_H_
