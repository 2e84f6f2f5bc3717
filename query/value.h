// Query results: scalar, string, instant vector, matrix.
#ifndef STRATA_QUERY_VALUE_H_
#define STRATA_QUERY_VALUE_H_

#include <string>
#include <vector>

#include "query/function_table.h"
#include "src/labels.h"
#include "src/sample.h"

namespace strata::promql {

// One element of an instant vector.
struct VectorElement {
  Labels labels;
  Timestamp t = 0;
  double v = 0;
};
using Vector = std::vector<VectorElement>;

// One series of a matrix: its points in time order.
struct Series {
  Labels labels;
  std::vector<Sample> samples;
};
using Matrix = std::vector<Series>;

// The result of a query. `type` says which member is meaningful:
//   kScalar: scalar_t / scalar_v; kString: str; kVector: vector; kMatrix: matrix.
// Matrices are sorted by labels (Compare in src/labels.h) and hold no empty series.
struct QueryValue {
  ValueType type = ValueType::kNone;
  Timestamp scalar_t = 0;
  double scalar_v = 0;
  std::string str;
  Vector vector;
  Matrix matrix;
};

}  // namespace strata::promql

#endif  // STRATA_QUERY_VALUE_H_
