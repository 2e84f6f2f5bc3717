// Storage::Compact: rewrites closed partitions into compacted blocks (ChunkStore does the
// work per partition; docs/format/compacted.md, docs/format/keys.md).
#include <algorithm>
#include <chrono>
#include <limits>

#include "spdlog/spdlog.h"
#include "src/status.h"
#include "storage/db.h"

namespace strata {

int64_t Storage::FirstOpenPartition() {
  constexpr int64_t kNone = std::numeric_limits<int64_t>::min();
  if (head_ == nullptr) return kNone;
  Timestamp max_time = head_->max_time();
  // Samples older than max_time - age are refused as too old; without that limit, a
  // partition counts as closed one partition length after its end (late samples are
  // merged by a later compaction either way).
  int64_t age = options_.max_sample_age_ms > 0 ? options_.max_sample_age_ms : options_.partition_ms;
  if (max_time < std::numeric_limits<Timestamp>::min() + age) return kNone;
  return PartitionOf(max_time - age, options_.partition_ms);
}

absl::Status Storage::Compact() {
  std::lock_guard<std::mutex> lock(compact_mu_);
  if (store_ == nullptr) return absl::FailedPreconditionError("storage is closed");
  auto start = std::chrono::steady_clock::now();
  int64_t before = FirstOpenPartition();
  if (before == std::numeric_limits<int64_t>::min()) return absl::OkStatus();
  STRATA_ASSIGN_OR_RETURN(std::vector<int64_t> partitions, store_->PartitionsWithChunks(before));
  Timestamp retention_start = RetentionStart();
  CompactionStats stats;
  // The partitions that compaction rewrote: [rewritten_from, rewritten_to).
  int64_t rewritten_from = std::numeric_limits<int64_t>::max(), rewritten_to = rewritten_from;
  for (int64_t p : partitions) {
    // Partitions past retention are about to be dropped.
    if (p < PartitionOf(retention_start, options_.partition_ms)) continue;
    const int64_t before_bytes = stats.bytes_before;
    STRATA_RETURN_IF_ERROR(store_->CompactPartition(p, options_.compaction, &stats));
    if (stats.bytes_before > before_bytes) {
      rewritten_from = std::min(rewritten_from, p);
      rewritten_to = p + 1;  // ascending, and below `before`: no overflow
    }
  }
  // The replaced chunks and blocks are deletions in RocksDB until its compactions reach the
  // files holding them; for a large rewrite, compact that key range now to give the space
  // back. Runs here, in the compaction's thread, never on a query's.
  const int64_t reclaim_min = options_.compaction.reclaim_min_bytes;
  if (reclaim_min > 0 && stats.bytes_before >= reclaim_min) {
    STRATA_RETURN_IF_ERROR(store_->CompactPartitions(rewritten_from, rewritten_to));
    stats.reclaims = 1;
  }
  compaction_stats_ += stats;
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (stats.partitions > 0) {
    spdlog::info("compacted {} partitions in {}: {} samples, {} -> {} bytes{} in {:.3f}s",
                 stats.partitions, options_.dir, stats.samples, stats.bytes_before,
                 stats.bytes_after, stats.reclaims > 0 ? ", space reclaimed" : "", seconds);
  }
  if (metrics_.compactions != nullptr) {
    metrics_.compactions->Add(stats.partitions);
    metrics_.compacted_samples->Add(stats.samples);
    metrics_.compaction_bytes_before->Add(stats.bytes_before);
    metrics_.compaction_bytes_after->Add(stats.bytes_after);
    if (!partitions.empty()) metrics_.compaction_seconds->Observe(seconds);
  }
  return absl::OkStatus();
}

}  // namespace strata
