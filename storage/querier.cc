#include "storage/querier.h"

namespace strata {

absl::Status SampleIterator::AppendUpTo(Timestamp maxt, std::vector<Sample>* out) {
  while (Next()) {
    Sample s = At();
    if (s.t > maxt) break;
    out->push_back(s);
  }
  return status();
}

}  // namespace strata
