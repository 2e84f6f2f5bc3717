// The head block: the in-memory, most recent part of the database.
//
// Files by role: head.cc (series map, postings, flush bookkeeping), head_append.cc (the
// append path and WAL replay), head_read.cc (index reader and chunk snapshots).
//
// Every series has one open XOR chunk, cut at `chunk_samples` samples or when a sample
// falls in another partition; closed chunks wait in the series until a flush has made them
// durable in RocksDB. Head GC (RemoveStaleSeries) takes out series that have nothing left
// in the head; they stay in the store, and a later sample brings them back with their ref.
// Series are handed out as SeriesPtr, which keeps a removed series allocated.
//
// Memory per series: label strings are interned in one SymbolTable (series hold 32-bit
// ids), the series lock is 4 bytes, and the maps hold plain pointers.
#ifndef STRATA_STORAGE_HEAD_H_
#define STRATA_STORAGE_HEAD_H_

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "src/labels.h"
#include "src/sample.h"
#include "src/strings.h"
#include "storage/postings.h"
#include "storage/series_mutex.h"
#include "storage/symbol_table.h"
#include "storage/wal.h"
#include "storage/xor_chunk.h"

namespace strata {

// What happened to the samples of an append. Rejected samples are dropped; the rest of
// the batch is kept.
struct AppendResult {
  int64_t appended = 0;
  int64_t out_of_order_appended = 0;  // of `appended`: older than the series' last sample,
                                      // taken by the out-of-order window
  int64_t unchanged = 0;              // same time and same value as the series' last sample: no-op
  int64_t out_of_order = 0;           // older than the series' last sample
  int64_t too_old = 0;                // older than the head accepts (max_sample_age_ms)
  int64_t duplicate = 0;              // same time as the last sample, another value
  int64_t rejected() const { return out_of_order + too_old + duplicate; }
  AppendResult& operator+=(const AppendResult& o) {
    appended += o.appended;
    out_of_order_appended += o.out_of_order_appended;
    unchanged += o.unchanged;
    out_of_order += o.out_of_order;
    too_old += o.too_old;
    duplicate += o.duplicate;
    return *this;
  }
};

class CompactedBlock;

// An immutable chunk: XOR bytes covering [mint, maxt]. Cheap to copy. It may instead hold
// decoded samples (`samples` set, `bytes` null), or a series of a compacted block (`block`
// set, `bytes` null): then the chunk is that series' samples in [mint, maxt], both of which
// are timestamps of its samples, decoded when read (CompactedBlock::Decode); a reader that
// needs XOR bytes encodes them (EncodeXorChunk).
struct ChunkRef {
  Timestamp mint = 0;
  Timestamp maxt = 0;
  std::shared_ptr<const std::string> bytes;
  std::shared_ptr<const std::vector<Sample>> samples = nullptr;
  std::shared_ptr<const CompactedBlock> block = nullptr;
  size_t block_series = 0;  // the series' index in `block`
};

// What the head needs from durable storage. Implemented by the RocksDB store.
class SeriesStore {
 public:
  struct Known {
    SeriesRef ref = 0;
    std::optional<Sample> last;  // the newest stored sample
  };
  virtual ~SeriesStore() = default;
  // A stored series with exactly these labels.
  virtual absl::StatusOr<std::optional<Known>> FindSeries(const Labels& labels) = 0;
  virtual absl::StatusOr<std::optional<Labels>> SeriesLabels(SeriesRef ref) = 0;
  // The newest stored sample, looking only at partitions >= min_partition.
  virtual absl::StatusOr<std::optional<Sample>> LastSample(SeriesRef ref,
                                                           int64_t min_partition) = 0;
  // Every ref at or above this one has never been stored.
  virtual SeriesRef next_ref() = 0;
};

struct HeadOptions {
  int64_t partition_ms = 24 * 3600 * 1000;
  int chunk_samples = 120;
  // Samples older than the newest appended time minus this are rejected as too old.
  // 0 disables the check.
  int64_t max_sample_age_ms = 24 * 3600 * 1000;
  // Out-of-order window: a sample older than its series' last one, by at most this much, is
  // inserted into the head chunk whose time span it falls in (see InsertOutOfOrderLocked).
  // 0: such samples are rejected as out of order (Prometheus' default).
  int64_t out_of_order_window_ms = 0;
  int stripes = 256;
};

// Partition index of time t.
inline int64_t PartitionOf(Timestamp t, int64_t partition_ms) {
  int64_t p = t / partition_ms;
  if (t % partition_ms < 0) --p;
  return p;
}

class MemSeries;
// A counted reference to a head series: the series stays allocated while one exists, even
// after head GC has taken it out of the head.
class SeriesPtr {
 public:
  SeriesPtr() = default;
  SeriesPtr(std::nullptr_t) {}  // NOLINT: converts like a pointer
  explicit SeriesPtr(MemSeries* s);
  SeriesPtr(const SeriesPtr& o) : SeriesPtr(o.s_) {}
  SeriesPtr(SeriesPtr&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  SeriesPtr& operator=(SeriesPtr o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~SeriesPtr();
  MemSeries* get() const { return s_; }
  MemSeries* operator->() const { return s_; }
  MemSeries& operator*() const { return *s_; }
  explicit operator bool() const { return s_ != nullptr; }
  friend bool operator==(const SeriesPtr& a, std::nullptr_t) { return a.s_ == nullptr; }
  // Drops one reference that is not held by a SeriesPtr (the head maps').
  static void Release(MemSeries* s);

 private:
  MemSeries* s_ = nullptr;
};

// The samples of one series in an append batch, in the order they should be appended.
struct SeriesBatch {
  Labels labels;
  std::vector<Sample> samples;
  // Optional: the head series these samples belong to, as an earlier lookup of this head
  // gave it (Head::GetByRef, or Append's `looked_up`). Then `labels` may be empty: the head
  // skips the lookup by labels, and should head GC have removed the series meanwhile, finds
  // or recreates it from the series' own label set.
  SeriesPtr series = nullptr;
};

class MemSeries {
 public:
  // `symbols`: the label set as interned ids (name, value, name, value, ...), sorted by name.
  MemSeries(SeriesRef ref, std::span<const uint32_t> symbols);
  MemSeries(const MemSeries&) = delete;
  MemSeries& operator=(const MemSeries&) = delete;

  const SeriesRef ref;
  // The label set as symbol ids of the head's SymbolTable (Head::LabelsOf builds Labels).
  std::span<const uint32_t> symbols() const { return {symbols_.get(), num_symbols_}; }

  SeriesMutex mu;
  // Guarded by mu. The flags are bit fields, so that they and `flushing` fit beside the lock.
  bool has_last : 1 = false;
  bool persisted : 1 = false;      // labels are in RocksDB's series family
  bool replay_lookup : 1 = false;  // replay has yet to ask the store for the last sample
  bool removed : 1 = false;        // head GC took it out of the head; look the labels up again
  // durable_max covers every stored partition (false after a replay lookup that looked only
  // at the partitions from the series' first replayed sample on).
  bool durable_exact : 1 = true;
  // How many of `closed` (the oldest) a running flush is writing: final until MarkFlushed.
  uint16_t flushing = 0;
  struct ClosedChunk {
    ChunkRef chunk;
    int64_t wal_segment;  // no sample of the chunk is in an earlier WAL segment
  };
  // Oldest first, not yet durable in RocksDB. An out-of-order sample may add a chunk
  // between others, so the lowest wal_segment is not always the first one's.
  std::vector<ClosedChunk> closed;
  XorChunkAppender open;  // empty when num_samples() == 0
  Timestamp open_mint = 0;
  Timestamp open_partition_end = 0;  // start of the partition after open_mint's
  int64_t open_segment = 0;
  Timestamp last_t = 0;
  double last_v = 0;
  // The newest sample time no longer in a head chunk: flushed to the store (or found there).
  // Out-of-order samples at or before it are rejected, so that no head chunk's samples
  // interleave with a stored chunk's.
  Timestamp durable_max = std::numeric_limits<Timestamp>::min();
  int64_t indexed_partition =
      std::numeric_limits<int64_t>::min();  // last partition with postings written

 private:
  friend class Head;
  friend class SeriesPtr;

  std::atomic<uint32_t> refs_{0};  // SeriesPtrs plus one while in the head's maps
  uint16_t num_symbols_ = 0;
  std::unique_ptr<uint32_t[]> symbols_;
  MemSeries* hash_next_ = nullptr;  // next series with the same hash; under the stripe lock
};

// Asks the CPU to fetch the series' cache lines (a hint for batches, which would otherwise
// wait on one series after another).
inline void PrefetchSeries(const MemSeries* s) {
  const char* p = reinterpret_cast<const char*>(s);
  for (size_t at = 0; at < sizeof(MemSeries); at += 64) __builtin_prefetch(p + at, 1);
  __builtin_prefetch(p + sizeof(MemSeries) - 1, 1);
}

// One entry of a top-N cardinality list: a label name, a metric name or a "name=value" pair,
// and its count (series, values or bytes).
struct HeadCardinalityStat {
  std::string name;
  uint64_t value = 0;
  friend bool operator==(const HeadCardinalityStat&, const HeadCardinalityStat&) = default;
};

// Cardinality statistics of the head, the figures /api/v1/status/tsdb reports (head_stats.cc).
struct HeadStats {
  int64_t num_series = 0;
  int64_t num_label_pairs = 0;  // distinct name=value pairs
  int64_t chunk_count = 0;      // num_chunks()
  // Oldest and newest sample held in memory (open chunks and closed chunks not yet flushed);
  // with none, min_time is the largest Timestamp and max_time the smallest, as Prometheus
  // reports an empty head.
  Timestamp min_time = std::numeric_limits<Timestamp>::max();
  Timestamp max_time = std::numeric_limits<Timestamp>::min();
  // Each list holds at most `limit` entries, largest value first, ties by name.
  std::vector<HeadCardinalityStat> series_count_by_metric_name;
  std::vector<HeadCardinalityStat> label_value_count_by_label_name;
  // Per label name: the bytes its name/value pairs take in the series' packed label sets
  // (varint length + name + varint length + value, once per series).
  std::vector<HeadCardinalityStat> memory_in_bytes_by_label_name;
  std::vector<HeadCardinalityStat> series_count_by_label_value_pair;
};

inline SeriesPtr::SeriesPtr(MemSeries* s) : s_(s) {
  if (s_ != nullptr) s_->refs_.fetch_add(1, std::memory_order_relaxed);
}

inline void SeriesPtr::Release(MemSeries* s) {
  if (s->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete s;
}

inline SeriesPtr::~SeriesPtr() {
  if (s_ != nullptr) Release(s_);
}

class Head {
 public:
  // `store` may be null (no durable storage). Not owned; must outlive the head.
  Head(HeadOptions options, SeriesStore* store);
  ~Head();
  Head(const Head&) = delete;
  Head& operator=(const Head&) = delete;

  // From now on appends are logged to `wal` and acknowledged after its write. Not owned.
  void set_wal(Wal* wal) { wal_ = wal; }
  // Refs at or above `ref` are free.
  void ReserveRefs(SeriesRef next);
  SeriesRef next_ref() const { return next_ref_.load(); }
  // Samples up to `t` exist (for the too-old check after a restart).
  void ObserveTime(Timestamp t);
  Timestamp max_time() const { return max_time_.load(); }
  // True when the head may hold a sample in [mint, maxt]: the range meets
  // [lower bound of the head's sample times, max_time()]. Cheap; lets label-name and
  // label-value lookups over a time range skip the head's index.
  bool MayHaveSamplesIn(Timestamp mint, Timestamp maxt) const {
    return mint <= maxt && maxt >= min_time_.load() && mint <= max_time_.load();
  }

  // Appends the batch. Thread-safe. With a WAL, returns once the accepted samples are
  // logged; an error means they may be visible but are not durable. Errors
  // (InvalidArgument) on an empty label set without a series, before appending anything.
  // With `looked_up`, sets (*looked_up)[i] to the series the head found or created by
  // batch[i]'s labels: every entry without a series, and those whose series head GC had
  // removed (null for the others, which were appended to batch[i].series; resized to the
  // batch).
  absl::StatusOr<AppendResult> Append(std::span<const SeriesBatch> batch,
                                      std::vector<SeriesPtr>* looked_up = nullptr);
  // Names this head among all heads this process has made (never reused), for caches of
  // its series.
  uint64_t instance_id() const { return instance_id_; }

  // WAL replay. REQUIRES: no concurrent appends. Samples at or before a series' last
  // (head or stored) sample are skipped: they are already there.
  absl::Status ReplaySeries(SeriesRef ref, std::string_view encoded_labels);
  absl::Status ReplaySamples(int64_t segment, std::span<const WalSample> samples);
  // After the last record: looks up the stored last sample of replayed series that had no
  // samples in the WAL.
  absl::Status FinishReplay();
  int64_t replay_unknown_refs() const { return replay_unknown_refs_; }

  // Reading. Thread-safe.
  std::unique_ptr<IndexReader> Index();
  // Null when the series is not in the head (never was, or removed by head GC).
  SeriesPtr GetByRef(SeriesRef ref);
  // GetByRef of each of `refs` into (*out)[i] (resized), the table slots and series fetched
  // ahead: a query's series are scattered in memory, and one after another each lookup
  // waited for the memory twice.
  void GetByRefs(std::span<const SeriesRef> refs, std::vector<SeriesPtr>* out);
  // Asks the CPU to fetch what LabelsOf and Chunks read of `s` first: its label ids, its
  // open chunk's first bytes and its closed chunk list (those two under the series' lock).
  // REQUIRES: `s` is held (a SeriesPtr).
  static void PrefetchForRead(MemSeries& s);
  // The series' label set.
  Labels LabelsOf(const MemSeries& s) const;
  const SymbolTable& symbols() const { return symbols_; }
  // The series' chunks that overlap [mint, maxt], oldest first (the open chunk copied).
  // With `last`, also the time of the series' newest sample at that moment (or
  // numeric_limits<Timestamp>::min() when it has none).
  std::vector<ChunkRef> Chunks(MemSeries& s, Timestamp mint, Timestamp maxt,
                               Timestamp* last = nullptr);
  // The series' newest sample when it is the last of the open chunk (so neither flushed
  // nor only known from the store); nullopt otherwise.
  std::optional<Sample> NewestInOpenChunk(MemSeries& s);
  int64_t num_series() const { return num_series_.load(); }
  // Open chunks with samples plus closed chunks not yet flushed.
  int64_t num_chunks() const { return num_chunks_.load(); }
  // Cardinality statistics from the inverted index (one pass under its shared lock, no copy
  // of label sets), series counts by the values of `metric_label`, and the in-memory time
  // range (one pass over the series). Thread-safe. REQUIRES: limit > 0.
  HeadStats Stats(std::string_view metric_label, size_t limit);

  // Flushing. The chunks a flush may write, per series: closed chunks, plus open chunks
  // when `cut_open` or when their newest sample is older than max_time() - idle_ms (idle
  // series would otherwise pin WAL segments). Also lists series not yet persisted.
  struct FlushItem {
    SeriesPtr series;
    bool persist_series;
    size_t num_closed;  // how many of series->closed this item covers
    std::vector<ChunkRef> chunks;
  };
  std::vector<FlushItem> CollectFlush(bool cut_open, int64_t idle_ms);
  // After the flush is durable: drops the flushed chunks and marks series persisted.
  // REQUIRES: one CollectFlush/MarkFlushed pair at a time.
  void MarkFlushed(const std::vector<FlushItem>& items);
  // The lowest WAL segment that may hold a sample only in the head
  // (numeric_limits<int64_t>::max() when none).
  int64_t LowestNeededSegment();

  // Head GC: removes series whose newest sample is before `before` and that have nothing
  // left in the head (no open chunk, every closed chunk flushed, labels persisted) from the
  // series maps and the head's postings. Their data stays in the store; a later sample for
  // the same labels gets the same ref back from the store. Returns how many were removed.
  // Thread-safe against appends and reads; call it right after a flush (MarkFlushed).
  int64_t RemoveStaleSeries(Timestamp before);

 private:
  struct Stripe {
    std::mutex mu;
    // Label hash -> the first series with that hash (more chained by hash_next_). The maps
    // hold one reference to each series (MemSeries::refs_).
    absl::flat_hash_map<uint64_t, MemSeries*> by_hash;
  };
  struct RefStripe {
    // Held for one table probe or update: the futex word's inline fast path costs a tenth
    // of std::mutex's calls (GetByRef: queries, WAL replay, deletions).
    SeriesMutex mu;
    absl::flat_hash_map<SeriesRef, MemSeries*> by_ref;
  };
  class HeadIndexReader;
  enum class Outcome {
    kAppended,
    kAppendedOutOfOrder,
    kUnchanged,
    kOutOfOrder,
    kTooOld,
    kDuplicate
  };

  // The in-memory series maps' hash: XXH3 of the packed label set (cheaper than the stable
  // Labels::Hash, which only the store's series_by_hash needs).
  static uint64_t SeriesHash(const Labels& labels);
  // Finds or creates the series; a creation queues its WAL record and raises *seq.
  absl::StatusOr<SeriesPtr> GetOrCreate(const Labels& labels, uint64_t* seq);
  // The series with these labels. REQUIRES: stripe lock held.
  MemSeries* FindLocked(const Stripe& stripe, uint64_t hash, const Labels& labels) const;
  bool SameLabels(const MemSeries& s, const Labels& labels) const;
  // Creates a series with a known ref. REQUIRES: stripe lock held, not present.
  // Creates the series and makes it visible (ref map, postings). `known`: what the store
  // holds of it, set before readers can reach the series.
  MemSeries* Insert(Stripe& stripe, uint64_t hash, SeriesRef ref, const Labels& labels,
                    const SeriesStore::Known* known = nullptr);
  void AddPostings(const MemSeries& s);
  // REQUIRES: s.mu held.
  Outcome AppendLocked(MemSeries& s, Sample sample, Timestamp min_valid, int64_t segment);
  // A sample older than the series' last one: inserted into the head chunk of its partition
  // whose span it falls in or borders (re-encoded), or else into a new closed chunk of its
  // own. Rejected (kOutOfOrder) when it is at or before durable_max or the end of a chunk a
  // flush is writing, or, unless `replay`, when the chunk would grow past twice
  // chunk_samples. `segment`: the WAL segment it is logged in.
  // REQUIRES: s.mu held, s.has_last, sample.t < s.last_t.
  Outcome InsertOutOfOrderLocked(MemSeries& s, Sample sample, int64_t segment, bool replay);
  void CutOpenLocked(MemSeries& s);

  const HeadOptions options_;
  const uint64_t instance_id_;
  SeriesStore* const store_;
  Wal* wal_ = nullptr;
  std::vector<Stripe> stripes_;
  std::vector<RefStripe> ref_stripes_;
  std::atomic<SeriesRef> next_ref_{1};
  std::atomic<Timestamp> max_time_{std::numeric_limits<Timestamp>::min()};
  // A lower bound on the time of every sample in the head. Appends lower it; MarkFlushed
  // raises it to the oldest sample left after the flush (collected_min_), lowered again by
  // appends since CollectFlush began (flush_min_).
  void LowerMinTime(Timestamp t);
  std::atomic<Timestamp> min_time_{std::numeric_limits<Timestamp>::max()};
  std::atomic<Timestamp> flush_min_{std::numeric_limits<Timestamp>::max()};
  Timestamp collected_min_ = std::numeric_limits<Timestamp>::max();
  std::atomic<int64_t> num_series_{0};
  std::atomic<int64_t> num_chunks_{0};
  int64_t replay_unknown_refs_ = 0;

  SymbolTable symbols_;
  // Inverted index: name -> value -> sorted refs. Keys are views of interned strings.
  template <typename V>
  using ViewMap = absl::flat_hash_map<std::string_view, V, StringViewHash, StringViewEq>;
  std::shared_mutex postings_mu_;
  ViewMap<ViewMap<std::vector<SeriesRef>>> postings_;
  std::vector<SeriesRef> all_refs_;
};

}  // namespace strata

#endif  // STRATA_STORAGE_HEAD_H_
