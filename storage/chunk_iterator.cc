#include "storage/chunk_iterator.h"

#include <algorithm>
#include <limits>

namespace strata {

ChunkListIterator::ChunkListIterator(std::vector<ChunkRef> chunks, Timestamp mint, Timestamp maxt)
    : chunks_(std::move(chunks)), lower_(mint), maxt_(maxt) {
  std::stable_sort(chunks_.begin(), chunks_.end(),
                   [](const ChunkRef& a, const ChunkRef& b) { return a.mint < b.mint; });
}

bool ChunkListIterator::Seek(Timestamp t) {
  if (done_) return false;
  if (has_cur_ && cur_.t >= t) return true;
  if (t <= lower_) return Step(false);
  lower_ = t;
  return Step(true);
}

bool ChunkListIterator::Step(bool seek) {
  if (done_) return false;
  while (true) {
    if (!in_chunk_) {
      while (idx_ < chunks_.size() && chunks_[idx_].maxt < lower_) ++idx_;
      if (idx_ >= chunks_.size() || chunks_[idx_].mint > maxt_) return Finish();
      it_.Reset(*chunks_[idx_].bytes);
      in_chunk_ = true;
      seek = true;
    }
    bool ok = seek ? it_.Seek(lower_) : it_.Next();
    seek = false;
    if (!ok) {
      if (!it_.status().ok()) {
        status_ = it_.status();
        return Finish();
      }
      in_chunk_ = false;
      ++idx_;
      continue;
    }
    Sample s = it_.At();
    if (s.t < lower_) continue;
    if (s.t > maxt_) return Finish();
    cur_ = s;
    has_cur_ = true;
    if (s.t == std::numeric_limits<Timestamp>::max()) {
      done_ = true;  // nothing can follow; At() stays valid
      return true;
    }
    lower_ = s.t + 1;
    return true;
  }
}

}  // namespace strata
