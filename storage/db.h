// The storage engine: head block + WAL + RocksDB chunk store behind one handle.
//
// Directory layout: <dir>/strata.lock (flock, one process at a time), <dir>/wal/ (segments,
// docs/format/wal.md), <dir>/db/ (RocksDB, docs/format/keys.md).
//
// Open: lock, open RocksDB, replay the WAL into the head, start a new WAL segment.
// Flush: write the head's closed chunks (and new series) to RocksDB in one synced batch,
// then delete the WAL segments whose samples are all in RocksDB.
// Close (flush_on_close): flush the whole head, write RocksDB's memtables to SST files and
// delete every WAL segment, so that the next Open replays nothing.
#ifndef STRATA_STORAGE_DB_H_
#define STRATA_STORAGE_DB_H_

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "src/metrics.h"
#include "storage/chunk_store.h"
#include "storage/head.h"
#include "storage/querier.h"
#include "storage/tombstones.h"
#include "storage/wal.h"

namespace strata {

struct StorageOptions {
  std::string dir;
  // fsync the WAL on every group commit (otherwise write() only: a killed process loses
  // nothing, a power loss may).
  bool wal_sync = true;
  uint64_t wal_segment_bytes = 64 << 20;
  int64_t partition_ms = 24 * 3600 * 1000;
  int chunk_samples = 120;
  // Samples older than the newest sample minus this are rejected as too old; 0 disables.
  int64_t max_sample_age_ms = 24 * 3600 * 1000;
  // Samples older than their series' last one by at most this much are still taken
  // (HeadOptions::out_of_order_window_ms); 0 rejects every out-of-order sample.
  int64_t out_of_order_window_ms = 0;
  // Data older than the start of the partition holding (newest sample - retention_ms) is
  // invisible to queries and dropped, whole partitions at a time, by the next flush.
  // 0 keeps everything.
  int64_t retention_ms = 15LL * 24 * 3600 * 1000;
  // Size-based retention: while RocksDB (live SST + memtable) plus the WAL take more than
  // this many bytes, each flush drops the oldest whole partitions, never the one holding the
  // newest sample. 0 disables.
  int64_t retention_bytes = 0;
  // Background flush period; 0: only explicit Flush() calls.
  int64_t flush_interval_ms = 60 * 1000;
  // A flush also closes open chunks whose newest sample is this much older than the newest
  // sample in the head, so that idle series do not pin WAL segments; once flushed, such
  // series leave the head's memory (head GC) until they get a sample again. 0 disables both.
  int64_t idle_chunk_ms = 3600 * 1000;
  // Close flushes the whole head (open chunks too) to RocksDB, writes RocksDB's memtables to
  // SST files and deletes the WAL segments, so that a stopped database is compact on disk and
  // the next Open replays nothing. Off: open chunks stay in the WAL for the next Open.
  bool flush_on_close = true;
  // After each background flush, compact closed partitions and, by the geometric policy,
  // open ones (see Storage::Compact); Close compacts what it flushed within
  // CompactionOptions::close_max_samples.
  bool background_compaction = true;
  CompactionOptions compaction;
  // Where to record self-metrics (strata_head_*, strata_wal_*, strata_flush_*,
  // strata_storage_*, strata_compaction_*); not owned, must outlive the storage. Null: none. Only
  // one open Storage per registry (callback gauges are keyed by name).
  MetricsRegistry* metrics = nullptr;
};

struct StorageStats {
  int64_t head_series = 0;
  uint64_t wal_bytes = 0;
  int64_t wal_replayed_records = 0;
  bool wal_was_truncated = false;
  int64_t flushes = 0;
  int64_t flushed_chunks = 0;
  CompactionStats compaction;       // summed over this process's compactions
  int64_t head_series_removed = 0;  // by head GC, since Open
};

// Thread-safe: Append, Flush and MakeQuerier may be called from any threads.
class Storage final : public Queryable {
 public:
  // Errors name the directory: PermissionDenied / Unavailable when it cannot be created or
  // written, Unavailable when another process has it open, FailedPrecondition when it holds
  // data of an incompatible format version.
  static absl::StatusOr<std::unique_ptr<Storage>> Open(StorageOptions options);
  ~Storage() override;

  // Appends a batch; see Head::Append. Returns once the accepted samples are in the WAL.
  absl::StatusOr<AppendResult> Append(std::span<const SeriesBatch> batch,
                                      std::vector<SeriesPtr>* looked_up = nullptr);

  // Writes closed head chunks (all chunks with `cut_open`) to RocksDB, truncates the WAL,
  // and drops partitions past retention.
  absl::Status Flush(bool cut_open = false);

  absl::StatusOr<std::unique_ptr<Querier>> MakeQuerier(Timestamp mint, Timestamp maxt) override;

  // Rewrites the XOR chunks of every closed partition still retained into compacted
  // blocks (docs/format/compacted.md). A partition is closed when the head rejects every
  // sample in it as too old: it ends at or before max_time - max_sample_age_ms (or
  // max_time - partition_ms when max_sample_age_ms is 0). Chunks that reach a compacted
  // partition later (idle series flushed late) are merged by the next compaction. Open
  // partitions are compacted too, a block only once enough new samples were flushed into
  // its range (CompactionOptions::open_merge_ratio; docs/format/keys.md, "Compaction"),
  // and everything they hold at the first compaction after Open. Queries read both forms
  // meanwhile. One compaction at a time.
  absl::Status Compact();
  // Partitions below this one are closed (numeric_limits<int64_t>::min(): none).
  int64_t FirstOpenPartition();

  // Stops the background flush and compaction, then (flush_on_close) flushes the whole head,
  // open chunks too, to RocksDB's SST files and deletes the WAL segments, and (with
  // background_compaction) compacts stored chunks with at most
  // CompactionOptions::close_max_samples samples re-encoded; syncs the WAL and
  // closes everything. When that flush fails, the WAL keeps every sample (the next Open
  // replays it), the rest is still closed, and the flush's error is returned. Idempotent; the
  // destructor calls it (and logs an error). REQUIRES: no Append, Flush, Compact or Querier
  // of this storage is in use or used afterwards.
  absl::Status Close();

  // Deletion (storage/db_admin.cc). Hides every sample of the series matching all
  // `matchers` in [mint, maxt], clamped per series to the samples it has now (later appends
  // stay visible). Durable when it returns (a WAL record; RocksDB from the next flush on).
  absl::Status DeleteSeries(const std::vector<LabelMatcher>& matchers, Timestamp mint,
                            Timestamp maxt);
  // Flushes the head (open chunks too), rewrites the stored XOR chunks and compacted blocks
  // that hold deleted samples without them, and drops the tombstones. Waits for a running
  // compaction; none starts meanwhile.
  absl::Status CleanTombstones();
  // Writes a consistent, openable copy of the database into `dir` (must not exist): a
  // RocksDB checkpoint plus, `with_head`, the WAL; without it the head's closed chunks
  // are flushed first and open ones are left out.
  absl::Status Snapshot(const std::string& dir, bool with_head);
  std::shared_ptr<const TombstoneMap> tombstones() const { return tombstones_.Snapshot(); }
  // RocksDB's and the WAL's bytes on disk, as size retention counts them.
  uint64_t DiskBytes();
  const std::string& dir() const { return options_.dir; }

  StorageStats stats();
  // The oldest time still retained (see retention_ms).
  Timestamp RetentionStart();
  Head& head() { return *head_; }
  ChunkStore& store() { return *store_; }

 private:
  explicit Storage(StorageOptions options) : options_(std::move(options)) {}
  void FlushLoop();
  enum class CompactMode {
    kBackground,  // closed partitions whole, open ones by the geometric policy
    kClose,       // every partition's chunks, within close_max_samples
  };
  // Compact's body. REQUIRES: compact_mu_ held.
  absl::Status CompactLocked(CompactMode mode);
  void RegisterMetrics();
  void RecordAppend(const AppendResult& r);
  // Flush's body; `rotated_to` (optional) gets the WAL segment it started. With
  // `memtables_to_sst`, RocksDB's memtables are written to SST files before WAL segments are
  // deleted. REQUIRES: flush_mu_ held.
  absl::Status FlushLocked(bool cut_open, int64_t* rotated_to, bool memtables_to_sst = false);
  // db_admin.cc. REQUIRES: flush_mu_ held.
  absl::Status PersistTombstonesLocked();
  absl::Status EnforceSizeRetentionLocked();
  void RegisterAdminMetrics();
  void RemoveAdminMetrics();

  const StorageOptions options_;
  int lock_fd_ = -1;
  std::unique_ptr<ChunkStore> store_;
  std::unique_ptr<Head> head_;
  std::unique_ptr<Wal> wal_;
  WalReplayStats replay_;
  TombstoneSet tombstones_;

  std::mutex flush_mu_;  // one flush at a time
  std::atomic<int64_t> flushes_{0};
  std::atomic<int64_t> flushed_chunks_{0};
  std::mutex compact_mu_;  // one compaction at a time; guards compaction_stats_
  CompactionStats compaction_stats_;
  std::atomic<int64_t> removed_series_{0};

  struct Metrics {
    Counter* appended = nullptr;
    Counter* out_of_order = nullptr;
    Counter* out_of_order_appended = nullptr;
    Counter* too_old = nullptr;
    Counter* duplicate = nullptr;
    Counter* flushed_chunks = nullptr;
    Counter* removed_series = nullptr;
    Histogram* flush_seconds = nullptr;
    Counter* compactions = nullptr;
    Counter* compacted_samples = nullptr;
    Counter* open_compacted_samples = nullptr;
    Counter* compaction_bytes_before = nullptr;
    Counter* compaction_bytes_after = nullptr;
    Histogram* compaction_seconds = nullptr;
    Counter* deleted_series = nullptr;
    Counter* tombstone_cleans = nullptr;
    Counter* rewritten_chunks = nullptr;
    Counter* size_retention_drops = nullptr;
  } metrics_;

  std::mutex loop_mu_;
  std::condition_variable loop_cv_;
  bool stopping_ = false;
  bool closed_ = false;
  std::thread flush_thread_;
};

}  // namespace strata

#endif  // STRATA_STORAGE_DB_H_
