// Error conventions shared by every module.
//
// Library code returns absl::Status / absl::StatusOr<T>; no exception crosses a module
// boundary. Messages name the input that was wrong and, where it helps, what to do.
// Status codes map onto the Prometheus API error types at the server edge:
//   InvalidArgument    -> bad_data (400)      e.g. a malformed label, time or query
//   FailedPrecondition -> execution (422)     e.g. a query that cannot be evaluated
//   DeadlineExceeded   -> timeout (503)
//   Cancelled          -> canceled (499)
//   ResourceExhausted  -> execution (422) for query limits, 429 for ingest overload
//   NotFound           -> not_found (404)
//   Unavailable        -> unavailable (503)
//   anything else      -> internal (500)
#ifndef STRATA_SRC_STATUS_H_
#define STRATA_SRC_STATUS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define STRATA_STATUS_CONCAT_INNER_(a, b) a##b
#define STRATA_STATUS_CONCAT_(a, b) STRATA_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define STRATA_RETURN_IF_ERROR(expr)            \
  do {                                          \
    if (absl::Status _st = (expr); !_st.ok()) { \
      return _st;                               \
    }                                           \
  } while (0)

// `lhs` = value of `rexpr` (an absl::StatusOr<T>), or returns its error.
#define STRATA_ASSIGN_OR_RETURN(lhs, rexpr) \
  STRATA_ASSIGN_OR_RETURN_IMPL_(STRATA_STATUS_CONCAT_(_statusor_, __LINE__), lhs, rexpr)
#define STRATA_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                  \
  if (!tmp.ok()) return tmp.status();                  \
  lhs = std::move(tmp).value()

#endif  // STRATA_SRC_STATUS_H_
