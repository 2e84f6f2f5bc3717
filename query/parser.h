// The PromQL 3.x parser: query text -> AST (query/ast.h).
#ifndef STRATA_QUERY_PARSER_H_
#define STRATA_QUERY_PARSER_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "query/ast.h"

namespace strata::promql {

// Language features that Prometheus gates behind --enable-feature flags. A gated construct
// is a parse error when its flag is off.
struct ParserOptions {
  // promql-experimental-functions: experimental functions (mad_over_time, sort_by_label,
  // info, step(), ...) and the limitk / limit_ratio aggregations.
  bool experimental_functions = false;
  // promql-extended-range-selectors: `anchored` / `smoothed` after a selector.
  bool extended_range_selectors = false;
  // promql-binop-fill-modifiers: fill(), fill_left(), fill_right() on binary operators.
  bool binop_fill_modifiers = false;
  // promql-duration-expr: arithmetic in ranges/offsets/steps (`[5m+1m]`, `offset (2*2)`).
  // Permanently on in current Prometheus; kept as an option for older behaviour.
  bool duration_expressions = true;
  // Accept a selector whose matchers all match the empty string (`{job=~".*"}`). Queries
  // refuse it; Prometheus' series endpoints parse match[] without that check and refuse
  // it afterwards in words of their own.
  bool allow_empty_selectors = false;
  // Deepest nesting of expressions accepted before failing with a clear error.
  int max_depth = 1000;
  // Most stack the parser may use (it is recursive); deeper input fails like too much
  // nesting. 1000 levels take about 0.5 MB in an optimised build and up to ~5 MB under
  // AddressSanitizer, so sanitizer builds reject somewhat shallower input. Callers must run
  // the parser on a thread with more stack than this.
  size_t max_stack_bytes = size_t{4} << 20;

  // Everything on (what the upstream test scripts assume).
  static ParserOptions AllFeatures() {
    ParserOptions o;
    o.experimental_functions = true;
    o.extended_range_selectors = true;
    o.binop_fill_modifiers = true;
    return o;
  }
};

// Parses a whole expression. On error returns InvalidArgument with Prometheus' wording and
// position: "1:5: parse error: unexpected <op:+>" (line:col are 1-based, col in bytes).
// Never crashes, whatever the input; time and memory are linear in the input size.
absl::StatusOr<ExprPtr> ParseExpr(std::string_view query, const ParserOptions& options = {});

}  // namespace strata::promql

#endif  // STRATA_QUERY_PARSER_H_
