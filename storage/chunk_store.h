// The durable store: flushed head chunks, series and per-partition postings in RocksDB.
//
// Key layout in docs/format/keys.md. RocksDB headers stay in chunk_store.cc.
#ifndef STRATA_STORAGE_CHUNK_STORE_H_
#define STRATA_STORAGE_CHUNK_STORE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "src/labels.h"
#include "storage/head.h"
#include "storage/postings.h"
#include "storage/tombstones.h"

namespace strata {

// The on-disk format this build writes and reads. A directory with another version is
// refused at open.
inline constexpr int kStoreFormatVersion = 1;

struct ChunkStoreOptions {
  int64_t partition_ms = 24 * 3600 * 1000;
};

// What one flush writes, atomically and durably.
struct FlushData {
  struct Series {
    SeriesRef ref;
    const Labels* labels;
  };
  struct Chunk {
    SeriesRef ref;
    const Labels* labels;
    bool write_postings;  // the series is not yet indexed in this chunk's partition
    ChunkRef chunk;
  };
  std::vector<Series> series;
  std::vector<Chunk> chunks;
  SeriesRef next_ref = 0;
  Timestamp max_time = 0;
};

// Thread-safe.
class ChunkStore final : public SeriesStore {
 public:
  // Opens or creates the RocksDB database at `path`. Fails with FailedPrecondition when it
  // was written by another format version or is not a Strata store.
  static absl::StatusOr<std::unique_ptr<ChunkStore>> Open(const std::string& path,
                                                          ChunkStoreOptions options);
  ~ChunkStore() override;

  // SeriesStore.
  absl::StatusOr<std::optional<Known>> FindSeries(const Labels& labels) override;
  absl::StatusOr<std::optional<Labels>> SeriesLabels(SeriesRef ref) override;
  absl::StatusOr<std::optional<Sample>> LastSample(SeriesRef ref, int64_t min_partition) override;

  // One synced RocksDB write: when it returns OK the data survives a crash.
  absl::Status WriteFlush(const FlushData& data);

  // From the meta family: 0 / numeric_limits::min() when never written.
  SeriesRef next_ref() override;
  std::optional<Timestamp> max_time();

  // The partitions holding chunks that may overlap [mint, maxt], ascending.
  std::vector<int64_t> Partitions(Timestamp mint, Timestamp maxt);
  // The postings of one partition.
  std::unique_ptr<IndexReader> PartitionIndex(int64_t partition);
  // The series' chunks in `partition` that overlap [mint, maxt], oldest first.
  absl::StatusOr<std::vector<ChunkRef>> Chunks(int64_t partition, SeriesRef ref, Timestamp mint,
                                               Timestamp maxt);

  // Deletes every partition below `partition` (chunks and postings; series stay, their
  // refs are never reused). One synced write of range deletions.
  absl::Status DropPartitionsBefore(int64_t partition);

  // Tombstones, chunk rewrites, checkpoints and sizes (storage/db_admin.cc).
  // Every stored tombstone (family `tombstones`).
  absl::StatusOr<TombstoneMap> ReadTombstones();
  // One synced write; an entry with no intervals deletes the series' tombstones.
  absl::Status WriteTombstones(std::span<const std::pair<SeriesRef, Intervals>> entries);
  // How one series' chunks in one partition change: chunks removed by their min time,
  // chunks added, and (when it has none left there) its postings of the partition removed.
  struct ChunkRewrite {
    int64_t partition = 0;
    SeriesRef ref = 0;
    std::vector<Timestamp> remove_mints;
    std::vector<ChunkRef> add;
    const Labels* drop_postings = nullptr;
  };
  // Applies the rewrites and deletes the tombstones of `clear_tombstones`, in one synced
  // write.
  absl::Status ApplyRewrite(std::span<const ChunkRewrite> rewrites,
                            std::span<const SeriesRef> clear_tombstones);
  // A consistent, openable copy of the database in `dir` (which must not exist): hard links
  // to SST files where possible.
  absl::Status Checkpoint(const std::string& dir);
  // Live SST bytes of every family plus RocksDB's own log files.
  uint64_t DiskBytes();
  // Approximate bytes of one partition's chunks and postings.
  uint64_t ApproximatePartitionBytes(int64_t partition);
  // Compacts chunks and postings of partitions [from, to) so that deleted data leaves disk.
  absl::Status CompactPartitions(int64_t from, int64_t to);

  int64_t partition_ms() const { return options_.partition_ms; }
  // Overwrites the format version (for tests of the refusal path and future migrations).
  absl::Status WriteFormatVersionForTesting(int version);

  class Impl;

 private:
  ChunkStore(ChunkStoreOptions options, std::unique_ptr<Impl> impl);

  const ChunkStoreOptions options_;
  std::unique_ptr<Impl> impl_;
  std::mutex mu_;  // guards the fields below
  SeriesRef next_ref_ = 0;
  std::optional<Timestamp> max_time_;
  std::set<int64_t> partitions_;
};

}  // namespace strata

#endif  // STRATA_STORAGE_CHUNK_STORE_H_
