// AST -> canonical PromQL text, as Prometheus' Expr.String() / format_query prints it.
#ifndef STRATA_QUERY_PRINTER_H_
#define STRATA_QUERY_PRINTER_H_

#include <string>

#include "query/ast.h"

namespace strata::promql {

// E.g. `sum by (job) (rate(x{a="b"}[5m]))`, `a + on (b) group_left (c) d`,
// `x offset 5m`, `foo @ 100.000`. Parsing the result gives an Equal() tree.
std::string ToString(const Expr& e);
std::string ToString(const DurationExpr& e);

// The text /api/v1/format_query answers, as Prometheus' Prettify writes it: ToString(e)
// when it fits in 100 characters; otherwise aggregations, calls, binary operations and
// parentheses longer than that are split over lines, children indented two spaces per
// level:
//   sum by (job) (
//     rate(http_requests_total{...}[5m])
//   )
std::string Pretty(const Expr& e);

// Prometheus' canonical duration text for the range / offset / step slot (`5m`, `1h30m`,
// or the expression as written when it was one).
std::string DurationToString(const Duration& d);

// A float as Go's strconv.FormatFloat(v, 'f', -1, 64) writes it ("1", "0.5", "1000000",
// "+Inf", "-Inf", "NaN").
std::string FormatNumber(double v);

}  // namespace strata::promql

#endif  // STRATA_QUERY_PRINTER_H_
