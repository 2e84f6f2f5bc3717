// The PromQL evaluator: instant and range queries over a Queryable.
//
// Semantics are Prometheus 3.x: left-open lookback and range windows, stale markers end a
// series, `offset` and `@`, subqueries aligned to absolute multiples of their step, vector
// matching with every modifier, annotations with Prometheus' texts and positions.
//
// Evaluation is node by node over all steps of the query: every node produces its value for
// every step at once, each selected series is decoded once (AppendRange) and range windows
// slide over the decoded samples. An instant query is a range query with a single step.
#ifndef STRATA_QUERY_ENGINE_H_
#define STRATA_QUERY_ENGINE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "query/ast.h"
#include "query/parser.h"
#include "query/value.h"
#include "storage/querier.h"

namespace strata::promql {

// How often EngineOptions::poll_canceled is called during a query at most.
inline constexpr absl::Duration kCancelPollInterval = absl::Milliseconds(10);

struct EngineOptions {
  // How far an instant selector looks back for the newest sample (left-open window).
  int64_t lookback_ms = 5 * 60 * 1000;
  // Most samples (points held in memory at once, as Prometheus counts them) per query.
  int64_t max_samples = 50'000'000;
  // Wall-clock budget per query; absl::InfiniteDuration() for none.
  absl::Duration timeout = absl::Minutes(2);
  // Set (by another thread) when the query's client has gone away: evaluation stops at its
  // next deadline check with a Cancelled error. Not owned; null for none.
  const std::atomic<bool>* canceled = nullptr;
  // When set: looks for the client having gone away and sets *canceled if so (the server
  // sets it for a query it evaluates on the thread that reads the connection, where no
  // one else can watch the connection meanwhile). Called from the deadline checks at most
  // every kCancelPollInterval, not before the query has run that long; may be called from
  // any of the query's threads.
  std::function<void()> poll_canceled;
  // Step of a subquery written without one (`[5m:]`).
  int64_t default_subquery_step_ms = 60 * 1000;
  // --enable-feature= names of Prometheus:
  bool experimental_functions = false;    // promql-experimental-functions
  bool delayed_name_removal = false;      // promql-delayed-name-removal
  bool extended_range_selectors = false;  // promql-extended-range-selectors
  bool binop_fill_modifiers = false;      // promql-binop-fill-modifiers
  // Threads one query may use (the calling thread included) to decode series and apply a
  // range function (rate, *_over_time, ...) to them; 0: one per CPU, at most 8. Selections
  // of fewer than `parallel_min_series` series stay on the calling thread. Results are
  // the same either way: the series are split into contiguous runs and put back in order.
  // Off (1) by default: on the 2-vCPU machines measured so far, two workers cost about 45%
  // more CPU per query and answered no sooner (see bench/RESULTS.md, Query path).
  int parallelism = 1;
  size_t parallel_min_series = 512;

  // Everything on, as the upstream PromQL test scripts assume.
  static EngineOptions AllFeatures() {
    EngineOptions o;
    o.max_samples = 10000;
    o.experimental_functions = true;
    o.delayed_name_removal = true;
    o.extended_range_selectors = true;
    o.binop_fill_modifiers = true;
    return o;
  }
  ParserOptions parser_options() const {
    ParserOptions p;
    p.experimental_functions = experimental_functions;
    p.extended_range_selectors = extended_range_selectors;
    p.binop_fill_modifiers = binop_fill_modifiers;
    return p;
  }
};

// A finished query. Warnings and infos are rendered as the API shows them:
// "PromQL warning: <text> (<line>:<col>)" / "PromQL info: <text> (<line>:<col>)",
// each once, in the order first produced.
struct QueryResult {
  QueryValue value;
  std::vector<std::string> warnings;
  std::vector<std::string> infos;
  int64_t peak_samples = 0;     // most samples held at once
  int64_t samples_decoded = 0;  // samples read from storage
};

// Errors (absl::Status codes, Prometheus error types, see src/status.h):
//   DeadlineExceeded   "query timed out in expression evaluation"          (timeout)
//   Cancelled          "query was canceled in expression evaluation"       (canceled)
//   ResourceExhausted  "query processing would load too many samples ..."  (execution)
//   FailedPrecondition  errors met while evaluating, e.g. "vector cannot contain metrics
//                       with the same labelset", many-to-many matching     (execution)
//   InvalidArgument     bad query parameters, a range query over a range vector, a
//                       construct whose feature flag is off                (bad_data)
// Thread-safe: one Engine may run many queries concurrently.
class Engine {
 public:
  explicit Engine(EngineOptions options = {}) : options_(options) {}
  const EngineOptions& options() const { return options_; }

  // `query` is the text `expr` was parsed from (for annotation positions).
  absl::StatusOr<QueryResult> InstantQuery(Queryable& db, const Expr& expr, std::string_view query,
                                           Timestamp t) const;
  // Steps start, start+step, ... <= end. REQUIRES: step > 0, end >= start.
  absl::StatusOr<QueryResult> RangeQuery(Queryable& db, const Expr& expr, std::string_view query,
                                         Timestamp start, Timestamp end, int64_t step) const;

 private:
  EngineOptions options_;
};

}  // namespace strata::promql

#endif  // STRATA_QUERY_ENGINE_H_
