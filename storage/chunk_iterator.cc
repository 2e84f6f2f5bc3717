#include "storage/chunk_iterator.h"

#include <algorithm>
#include <limits>

#include "storage/compacted_block.h"

namespace strata {

ChunkListIterator::ChunkListIterator(std::vector<ChunkRef> chunks, Timestamp mint, Timestamp maxt)
    : chunks_(std::move(chunks)), lower_(mint), maxt_(maxt) {
  auto by_mint = [](const ChunkRef& a, const ChunkRef& b) { return a.mint < b.mint; };
  // Mostly in order already; stable_sort would allocate a buffer even then.
  if (!std::is_sorted(chunks_.begin(), chunks_.end(), by_mint)) {
    std::stable_sort(chunks_.begin(), chunks_.end(), by_mint);
  }
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
      const ChunkRef& c = chunks_[idx_];
      decoded_ = c.samples.get();
      decoded_pos_ = 0;
      if (c.block != nullptr) {
        block_samples_.clear();
        if (absl::Status st = c.block->Decode(c.block_series, &block_samples_, c.mint, c.maxt);
            !st.ok()) {
          status_ = st;
          return Finish();
        }
        decoded_ = &block_samples_;
      } else if (decoded_ == nullptr) {
        it_.Reset(*c.bytes);
      }
      in_chunk_ = true;
      seek = true;
    }
    bool ok;
    if (decoded_ != nullptr) {
      if (seek) {
        decoded_pos_ = static_cast<size_t>(
            std::lower_bound(decoded_->begin() + decoded_pos_, decoded_->end(), lower_,
                             [](const Sample& x, Timestamp t) { return x.t < t; }) -
            decoded_->begin());
      } else {
        ++decoded_pos_;
      }
      ok = decoded_pos_ < decoded_->size();
    } else {
      ok = seek ? it_.Seek(lower_) : it_.Next();
    }
    seek = false;
    if (!ok) {
      if (decoded_ == nullptr && !it_.status().ok()) {
        status_ = it_.status();
        return Finish();
      }
      in_chunk_ = false;
      ++idx_;
      continue;
    }
    Sample s = decoded_ != nullptr ? (*decoded_)[decoded_pos_] : it_.At();
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

absl::Status ChunkListIterator::AppendRange(Timestamp mint, Timestamp maxt,
                                            std::vector<Sample>* out) {
  if (done_ || in_chunk_ || has_cur_ || idx_ != 0) {
    return SampleIterator::AppendRange(mint, maxt, out);
  }
  done_ = true;
  Timestamp lower = std::max(lower_, mint);
  const Timestamp upper = std::min(maxt_, maxt);
  if (lower > upper) return status_;
  // With several chunks meeting the range, room for all their samples (at most a chunk's
  // worth more than needed at either end), so that the vector grows once and not with
  // every chunk. One chunk reserves just what it decodes (XorChunkIterator::AppendRange).
  size_t expected = 0, meeting = 0;
  for (const ChunkRef& c : chunks_) {
    if (c.maxt < lower) continue;
    if (c.mint > upper) break;
    ++meeting;
    if (c.samples != nullptr) {
      expected += c.samples->size();
    } else if (c.block != nullptr) {
      if (auto ts = c.block->Timestamps(c.block_series, c.mint, c.maxt); ts.ok()) {
        expected += ts->size();
      }
    } else if (c.bytes->size() >= 2) {
      expected += static_cast<uint8_t>((*c.bytes)[0]) << 8 | static_cast<uint8_t>((*c.bytes)[1]);
    }
  }
  if (meeting > 1) out->reserve(out->size() + expected);
  for (const ChunkRef& c : chunks_) {
    // As Step: skip chunks that end before the next sample wanted, stop at one that starts
    // after the range.
    if (c.maxt < lower) continue;
    if (c.mint > upper) break;
    const size_t before = out->size();
    if (c.block != nullptr) {
      // Decoded straight into `out`: the series' samples in [mint, maxt] of the chunk.
      if (absl::Status st = c.block->Decode(c.block_series, out, std::max(lower, c.mint),
                                            std::min(upper, c.maxt));
          !st.ok()) {
        status_ = st;
        return status_;
      }
      // Step finishes at the first sample after the range.
      if (c.maxt > upper) break;
    } else if (c.samples != nullptr) {
      // Decoded (compacted) samples, in time order: the same samples as Step gives.
      const std::vector<Sample>& d = *c.samples;
      auto it = std::lower_bound(d.begin(), d.end(), lower,
                                 [](const Sample& x, Timestamp t) { return x.t < t; });
      for (; it != d.end() && it->t <= upper; ++it) out->push_back(*it);
      // Step finishes at the first sample after the range.
      if (it != d.end()) break;
    } else {
      it_.Reset(*c.bytes);
      if (absl::Status st = it_.AppendRange(lower, upper, out); !st.ok()) {
        status_ = st;
        return status_;
      }
      // Step finishes at the first sample after the range.
      if (it_.num_samples() > 0 && it_.At().t > upper) break;
    }
    if (out->size() > before) {
      if (out->back().t == std::numeric_limits<Timestamp>::max()) break;
      lower = out->back().t + 1;  // samples at or before the last one are duplicates
    }
  }
  return status_;
}

}  // namespace strata
