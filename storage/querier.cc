#include "storage/querier.h"

namespace strata {

absl::Status SampleIterator::AppendRange(Timestamp mint, Timestamp maxt, std::vector<Sample>* out) {
  if (Seek(mint)) {
    do {
      Sample s = At();
      if (s.t > maxt) break;
      out->push_back(s);
    } while (Next());
  }
  return status();
}

}  // namespace strata
