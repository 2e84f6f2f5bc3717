// A sample iterator over a series' chunks from the head and the store.
#ifndef STRATA_STORAGE_CHUNK_ITERATOR_H_
#define STRATA_STORAGE_CHUNK_ITERATOR_H_

#include <memory>
#include <vector>

#include "storage/head.h"
#include "storage/querier.h"
#include "storage/xor_chunk.h"

namespace strata {

// Iterates the samples of `chunks` within [mint, maxt] in time order, each timestamp once.
// Chunks are taken in order of their min time; a sample at or before the last one returned
// is skipped, which removes a chunk seen both in the head and in the store (a flush racing
// the read). The engine never writes two chunks of one series whose samples interleave.
class ChunkListIterator final : public SampleIterator {
 public:
  ChunkListIterator(std::vector<ChunkRef> chunks, Timestamp mint, Timestamp maxt);

  bool Next() override { return Step(false); }
  bool Seek(Timestamp t) override;
  Sample At() const override { return cur_; }
  absl::Status status() const override { return status_; }
  // Decodes each chunk in one pass (XorChunkIterator::AppendRange) with the same samples as
  // Next() would give.
  absl::Status AppendRange(Timestamp mint, Timestamp maxt, std::vector<Sample>* out) override;

 private:
  bool Step(bool seek);
  bool Finish() {
    done_ = true;
    return false;
  }

  std::vector<ChunkRef> chunks_;
  size_t idx_ = 0;
  Timestamp lower_;  // the next sample returned is at or after this
  const Timestamp maxt_;
  XorChunkIterator it_;                           // Reset for each chunk of bytes
  const std::vector<Sample>* decoded_ = nullptr;  // the current chunk's samples, if decoded
  size_t decoded_pos_ = 0;
  std::vector<Sample> block_samples_;  // a compacted block's chunk, decoded (decoded_)
  bool in_chunk_ = false;
  bool has_cur_ = false;
  bool done_ = false;
  Sample cur_;
  absl::Status status_;
};

}  // namespace strata

#endif  // STRATA_STORAGE_CHUNK_ITERATOR_H_
