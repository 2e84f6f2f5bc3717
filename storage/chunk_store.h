// The durable store: flushed head chunks, series and per-partition postings in RocksDB.
//
// Key layout in docs/format/keys.md. RocksDB headers stay in chunk_store.cc.
#ifndef STRATA_STORAGE_CHUNK_STORE_H_
#define STRATA_STORAGE_CHUNK_STORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "src/labels.h"
#include "storage/compacted_block.h"
#include "storage/head.h"
#include "storage/postings.h"
#include "storage/tombstones.h"

namespace strata {

// The on-disk format this build writes. It also reads kStoreFormatVersionMin and up;
// a directory with any other version is refused at open. Version 2 added the `compacted`
// family, version 3 compacted blocks of format 2, version 4 of format 3, version 5 of
// format 4, version 6 of format 5 (docs/format/compacted.md); an older directory opens
// unchanged and becomes version 6 with its first write of compacted blocks (compaction or
// tombstone cleaning; docs/format/keys.md).
inline constexpr int kStoreFormatVersion = 6;
inline constexpr int kStoreFormatVersionMin = 1;

// How compaction groups series (docs/format/keys.md, `compacted`). A group is closed at
// whichever bound it reaches first; a group never splits an existing block.
struct CompactionOptions {
  int max_series_per_group = 512;
  int64_t max_samples_per_group = 1 << 21;
  int zstd_level = 9;
  // Classic histogram buckets are coded against the bucket below, in chains of at most
  // this many links (CompactedEncodeOptions::max_base_depth); 0: every series alone.
  // Tombstone cleaning (ApplyRewrite) re-encodes blocks with the default.
  int max_base_depth = CompactedEncodeOptions{}.max_base_depth;
  // Columns of the blocks restart every this many samples
  // (CompactedEncodeOptions::restart_interval); tombstone cleaning re-encodes with the
  // default.
  uint32_t restart_interval = CompactedEncodeOptions{}.restart_interval;
  // Once a Storage::Compact has replaced at least this many bytes of chunks and blocks,
  // RocksDB compacts the key range of the partitions it rewrote, so that the replaced values
  // leave the SST files (otherwise they stay until RocksDB's own compactions reach them).
  // 0: never.
  int64_t reclaim_min_bytes = 1 << 20;
  // Open partitions (the head still takes samples for them) are compacted as well, by the
  // background compaction (Storage::Compact; docs/format/keys.md, "Compaction"). A block of
  // an open partition is merged with the chunks flushed into its ref range once they hold
  // at least open_merge_ratio times the block's samples, so that every sample is re-encoded
  // at most 1 + 1 / open_merge_ratio times while its partition is open (plus once at the
  // first compaction after each start and within close_max_samples at each close). 0:
  // open partitions wait until they close.
  double open_merge_ratio = 0.5;
  // An open partition is looked at once this many samples were flushed into it since it
  // was last looked at (and open_merge_ratio times its block samples); chunks of refs past
  // its last block form new blocks once they hold this many samples.
  int64_t open_min_samples = 1 << 18;
  // Close, after flushing the head, compacts the chunks of every partition (open ones too)
  // with at most this many samples re-encoded (the chunks' plus the merged blocks'); what is
  // left is compacted by the first background compaction after the next start. 0: none.
  int64_t close_max_samples = 1 << 23;
};

// Which parts of a partition ChunkStore::CompactPartition rewrites. A unit is a block with
// the chunks in its ref range, or the chunks of refs past the partition's last block (the
// tail). Units are taken in ref order.
struct CompactionSelection {
  // A block is merged when the chunks in its range hold at least this times its samples.
  double min_ratio = 0;
  // The tail is compacted when it holds at least this many samples.
  int64_t min_tail_samples = 0;
  // Units (or, for the tail, series) are taken until the next would bring the samples
  // re-encoded (block and chunk samples) above this; the rest is left, and the partition
  // is not counted (PartitionSamples). 0: no limit.
  int64_t max_samples = 0;
};

// A partition's samples as the store counted them: set by a compaction with a selection,
// raised by every flush, so that the next one can be planned without reading the partition.
struct PartitionSamples {
  bool counted = false;   // false: not counted since open (or since it was rewritten)
  int64_t in_blocks = 0;  // in compacted blocks, after the last compaction with a selection
  int64_t flushed = 0;    // in chunks flushed since then
};

// What compactions did, summed.
struct CompactionStats {
  int64_t partitions = 0;  // partitions that had XOR chunks to compact
  int64_t blocks_written = 0;
  int64_t chunks_removed = 0;
  int64_t samples = 0;          // samples in the blocks written
  int64_t bytes_before = 0;     // XOR chunk values and rewritten block values, as stored
  int64_t bytes_after = 0;      // block values written
  int64_t reclaims = 0;         // RocksDB compactions of rewritten partitions (reclaim_min_bytes)
  int64_t open_partitions = 0;  // of `partitions`, those still open (Storage::Compact)
  int64_t open_samples = 0;     // of `samples`, those written into blocks of open partitions
  int64_t budget_skipped = 0;   // partitions cut short by CompactionSelection::max_samples
  CompactionStats& operator+=(const CompactionStats& o);
};

struct ChunkStoreOptions {
  int64_t partition_ms = 24 * 3600 * 1000;
  // RocksDB's cache of the files' blocks, shared by all column families, in four shards.
  // A compacted block is one value of about a megabyte in a RocksDB block of its own: a
  // shard must hold several of them, or every read of one goes to the file again and
  // verifies its checksum (RocksDB's default, 8 MiB per family in 16 shards, holds none).
  size_t block_cache_bytes = 64 << 20;
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
class CompactedBlock;

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
  // The series' chunks in `partition` that overlap [mint, maxt], oldest first: its samples
  // in [mint, maxt] of the partition's compacted block that holds it, if any, as one chunk
  // (ChunkRef::block), then its XOR chunks. For many series of one partition, ReadPartition.
  absl::StatusOr<std::vector<ChunkRef>> Chunks(int64_t partition, SeriesRef ref, Timestamp mint,
                                               Timestamp maxt);

  // Reads the chunks of series of one partition, all at one RocksDB snapshot (taken when
  // ReadPartition is called): for a Select, which reads every selected series of each
  // partition. Each compacted block it meets is found and opened once (or taken from the
  // store's cache of decoded blocks) while refs are asked for in increasing order, and
  // RocksDB iterators are reused between series. Not thread-safe; the chunks it returns
  // are, and stay valid after it and the store are gone. REQUIRES: the store outlives it.
  class PartitionReader {
   public:
    ~PartitionReader();
    PartitionReader(const PartitionReader&) = delete;
    PartitionReader& operator=(const PartitionReader&) = delete;
    // As ChunkStore::Chunks, at the reader's snapshot.
    absl::StatusOr<std::vector<ChunkRef>> Chunks(SeriesRef ref, Timestamp mint, Timestamp maxt);

   private:
    friend class ChunkStore;
    struct State;
    explicit PartitionReader(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
  };
  std::unique_ptr<PartitionReader> ReadPartition(int64_t partition);

  // Deletes every partition below `partition` (chunks and postings; series stay, their
  // refs are never reused). One synced write of range deletions.
  absl::Status DropPartitionsBefore(int64_t partition);

  // Rewrites the XOR chunks of `partition`, merged with its existing compacted blocks where
  // they share refs, into compacted blocks of groups of consecutive refs. Every group is
  // one synced WriteBatch that puts the new block and deletes exactly the chunks and blocks
  // it replaces, so a crash leaves each group in its old or its new form, and both read
  // the same. Chunks flushed into the partition meanwhile stay and are merged by the next
  // compaction. Serialized with other compactions and with DropPartitionsBefore.
  // With `select`, only the units it takes are rewritten (the rest stay as they are), and
  // the partition's PartitionSamples are counted.
  absl::Status CompactPartition(int64_t partition, const CompactionOptions& options,
                                CompactionStats* stats,
                                const CompactionSelection* select = nullptr);
  // The partition's samples as last counted (see PartitionSamples).
  PartitionSamples CountedSamples(int64_t partition);
  // The partitions below `before` that hold XOR chunks, ascending.
  absl::StatusOr<std::vector<int64_t>> PartitionsWithChunks(int64_t before);
  // Writes every family's memtable to SST files and waits, so that nothing stored needs
  // RocksDB's own log any more.
  absl::Status FlushMemtables();
  // Bytes of live SST files per column family, after writing out the memtables and, with
  // `compact_files`, a full RocksDB compaction of every family (for benchmarks and tools).
  absl::StatusOr<std::vector<std::pair<std::string, uint64_t>>> LiveSstBytes(bool compact_files);
  // The format version read at open (raised to kStoreFormatVersion by the first write of
  // compacted blocks).
  int format_version();
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
    // Set: the series' samples in its compacted block of the partition become these (empty:
    // the series leaves the block, and a block left without series is deleted). The block
    // keeps its key, so block ref ranges stay disjoint.
    std::optional<std::vector<Sample>> compacted;
    const Labels* drop_postings = nullptr;
  };
  // Applies the rewrites (XOR chunks and compacted blocks) and deletes the tombstones of
  // `clear_tombstones`, in one synced write. Serialized with compactions and retention drops.
  absl::Status ApplyRewrite(std::span<const ChunkRewrite> rewrites,
                            std::span<const SeriesRef> clear_tombstones);
  // A consistent, openable copy of the database in `dir` (which must not exist): hard links
  // to SST files where possible.
  absl::Status Checkpoint(const std::string& dir);
  // Live SST bytes of every family plus RocksDB's own log files.
  uint64_t DiskBytes();
  // Approximate bytes of one partition's chunks, compacted blocks and postings.
  uint64_t ApproximatePartitionBytes(int64_t partition);
  // Compacts the chunks, compacted blocks and postings of partitions [from, to) (RocksDB
  // files) so that deleted data leaves disk.
  absl::Status CompactPartitions(int64_t from, int64_t to);

  int64_t partition_ms() const { return options_.partition_ms; }
  // Overwrites the format version (for tests of the refusal path and future migrations).
  absl::Status WriteFormatVersionForTesting(int version);

  class Impl;

 private:
  ChunkStore(ChunkStoreOptions options, std::unique_ptr<Impl> impl);
  // Whether what a reader found in RocksDB may go into, or come from, a cache of it, given
  // the writes that change it. Each write is bracketed by Begin and End, at both of which
  // the owner empties its cache. A reader takes a ticket before it reads (before its
  // RocksDB snapshot, if any); the ticket is current while no such write was under way
  // when it was taken and none has begun or ended since, and then the reader saw what the
  // cache holds. Not thread-safe: the owner's mutex, which guards the cache, guards it.
  class WriteEpochs {
   public:
    struct Ticket {
      uint64_t epoch = 0;
      bool quiet = false;  // no write was under way
    };
    Ticket ticket() const { return {epoch_, writes_ == 0}; }
    bool Current(Ticket t) const { return t.quiet && t.epoch == epoch_; }
    void Begin() {
      ++writes_;
      ++epoch_;
    }
    void End() {
      --writes_;
      ++epoch_;
    }

   private:
    uint64_t epoch_ = 0;
    int writes_ = 0;  // under way
  };
  // Whether a reader may use the cache of decoded blocks (WriteEpochs over writes of
  // compacted blocks).
  using BlockCacheTicket = WriteEpochs::Ticket;
  BlockCacheTicket block_cache_ticket();
  // Brackets every write that changes compacted blocks (compaction, rewrites, drops): the
  // cache is emptied at both ends, and readers with a ticket from before the end bypass it.
  void BeginBlockWrite();
  void EndBlockWrite();
  // The decoded block stored under `key` with `value` in `partition`: from the cache when
  // `ticket` allows, else opened (and cached when the ticket still allows).
  absl::StatusOr<std::shared_ptr<const CompactedBlock>> OpenBlock(int64_t partition,
                                                                  std::string_view key,
                                                                  std::string_view value,
                                                                  BlockCacheTicket ticket);
  // The compacted block of `partition` whose ref range holds `ref` (null when none), read
  // at `snapshot` (a rocksdb::Snapshot, or null for the latest), which was taken after
  // `ticket`. The caller checks Find.
  absl::StatusOr<std::shared_ptr<const CompactedBlock>> BlockFor(int64_t partition, SeriesRef ref,
                                                                 const void* snapshot,
                                                                 BlockCacheTicket ticket);

  const ChunkStoreOptions options_;
  std::unique_ptr<Impl> impl_;
  std::mutex mu_;  // guards the fields below
  SeriesRef next_ref_ = 0;
  std::optional<Timestamp> max_time_;
  std::set<int64_t> partitions_;
  std::map<int64_t, PartitionSamples> samples_;  // only partitions flushed into or counted
  int format_version_ = kStoreFormatVersion;

  // Serializes CompactPartition and DropPartitionsBefore.
  std::mutex compact_mu_;
  // Decoded compacted blocks recently read, by key: the blocks as stored since the last
  // write of compacted blocks ended. Cleared when such a write begins and when it ends;
  // `block_writes_` counts those events so that a block read across one is not cached.
  struct CachedBlock;
  std::mutex cache_mu_;
  WriteEpochs block_writes_;
  uint64_t cache_clock_ = 0;
  std::vector<std::shared_ptr<CachedBlock>> cache_;
};

}  // namespace strata

#endif  // STRATA_STORAGE_CHUNK_STORE_H_
