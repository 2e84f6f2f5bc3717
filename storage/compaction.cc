// Storage::Compact: rewrites flushed chunks into compacted blocks, of closed partitions all
// of them, of open ones by a geometric policy (ChunkStore does the work per partition;
// docs/format/compacted.md, docs/format/keys.md "Compaction").
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
  return CompactLocked(CompactMode::kBackground);
}

absl::Status Storage::CompactLocked(CompactMode mode) {
  if (store_ == nullptr) return absl::FailedPreconditionError("storage is closed");
  auto start = std::chrono::steady_clock::now();
  const CompactionOptions& co = options_.compaction;
  int64_t first_open = FirstOpenPartition();
  // Open partitions are looked at too unless open compaction is off (then, as before, only
  // closed ones, and nothing while the head has no samples).
  const bool open_too = mode == CompactMode::kClose || co.open_merge_ratio > 0;
  if (first_open == std::numeric_limits<int64_t>::min() && !open_too) return absl::OkStatus();
  STRATA_ASSIGN_OR_RETURN(
      std::vector<int64_t> partitions,
      store_->PartitionsWithChunks(open_too ? std::numeric_limits<int64_t>::max() : first_open));
  Timestamp retention_start = RetentionStart();
  CompactionStats stats;
  int64_t budget = co.close_max_samples;  // kClose: samples re-encoded still allowed
  // The partitions that compaction rewrote: [rewritten_from, rewritten_to).
  int64_t rewritten_from = std::numeric_limits<int64_t>::max(), rewritten_to = rewritten_from;
  for (int64_t p : partitions) {
    // Partitions past retention are about to be dropped.
    if (p < PartitionOf(retention_start, options_.partition_ms)) continue;
    const bool open = first_open == std::numeric_limits<int64_t>::min() || p >= first_open;
    CompactionSelection select;
    const CompactionSelection* selection = nullptr;
    if (mode == CompactMode::kClose) {
      if (budget <= 0) break;
      select.max_samples = budget;
      selection = &select;
    } else if (open) {
      PartitionSamples counted = store_->CountedSamples(p);
      if (counted.counted) {
        // Geometric: a block is re-encoded only with at least open_merge_ratio times its
        // samples new, so each rewrite's work is paid for by new samples.
        const double due = std::max(static_cast<double>(co.open_min_samples),
                                    co.open_merge_ratio * static_cast<double>(counted.in_blocks));
        if (static_cast<double>(counted.flushed) < due) continue;
        select.min_ratio = co.open_merge_ratio;
        select.min_tail_samples = co.open_min_samples;
      }
      // Not counted since this process opened the store: everything flushed into it, what
      // the last close left included, is compacted now, and the partition counted.
      selection = &select;
    }
    CompactionStats one;
    STRATA_RETURN_IF_ERROR(store_->CompactPartition(p, co, &one, selection));
    if (open && one.partitions > 0) {
      one.open_partitions = one.partitions;
      one.open_samples = one.samples;
    }
    budget -= one.samples;
    if (one.bytes_before > 0) {
      rewritten_from = std::min(rewritten_from, p);
      rewritten_to = p + 1;  // ascending, and below max(): PartitionsWithChunks stops there
    }
    stats += one;
  }
  // The replaced chunks and blocks are deletions in RocksDB until its compactions reach the
  // files holding them; for a large rewrite, compact that key range now to give the space
  // back. Runs here, in the compaction's thread, never on a query's.
  const int64_t reclaim_min = co.reclaim_min_bytes;
  if (reclaim_min > 0 && stats.bytes_before >= reclaim_min) {
    STRATA_RETURN_IF_ERROR(store_->CompactPartitions(rewritten_from, rewritten_to));
    stats.reclaims = 1;
  }
  compaction_stats_ += stats;
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (stats.partitions > 0 || stats.budget_skipped > 0) {
    spdlog::info(
        "compacted {} partitions ({} open){} in {}: {} samples, {} -> {} bytes{}{} in {:.3f}s",
        stats.partitions, stats.open_partitions, mode == CompactMode::kClose ? " at close" : "",
        options_.dir, stats.samples, stats.bytes_before, stats.bytes_after,
        stats.reclaims > 0 ? ", space reclaimed" : "",
        stats.budget_skipped > 0
            ? fmt::format(", {} partitions cut short by close_max_samples (the rest is left for "
                          "the next start)",
                          stats.budget_skipped)
            : std::string(),
        seconds);
  }
  if (metrics_.compactions != nullptr) {
    metrics_.compactions->Add(stats.partitions);
    metrics_.compacted_samples->Add(stats.samples);
    metrics_.open_compacted_samples->Add(stats.open_samples);
    metrics_.compaction_bytes_before->Add(stats.bytes_before);
    metrics_.compaction_bytes_after->Add(stats.bytes_after);
    if (stats.partitions > 0) metrics_.compaction_seconds->Observe(seconds);
  }
  return absl::OkStatus();
}

}  // namespace strata
