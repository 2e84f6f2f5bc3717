// Remote write sends every series' full label set with every sample. Looking the series up
// by those labels (validating them, packing a Labels, hashing it, comparing it with the
// head's copy) is about a third of the instructions spent per ingested sample. This cache
// maps the label fields' bytes exactly as a sender encodes them to the series' ref, so a
// series seen before is found by one hash of those bytes and one byte comparison, as
// Prometheus' scrape cache does for scraped lines.
//
// An entry only ever maps bytes to the ref of the label set they decode to: refs name one
// label set for the life of a data directory and are never reused. The ref's series may
// have left the head (head GC); the caller then takes the slow path, which recreates it.
// Thread-safe (sharded locks). Memory is bounded: a full shard keeps its entries and turns
// new ones away, until it has turned away as many as it holds; then it is emptied.
#ifndef STRATA_SERVER_SERIES_REF_CACHE_H_
#define STRATA_SERVER_SERIES_REF_CACHE_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "storage/head.h"
#include "storage/series_mutex.h"

namespace strata {

class SeriesRefCache {
 public:
  explicit SeriesRefCache(size_t max_bytes = size_t{64} << 20) : max_bytes_(max_bytes) {}
  SeriesRefCache(const SeriesRefCache&) = delete;
  SeriesRefCache& operator=(const SeriesRefCache&) = delete;

  // The ref stored for exactly these bytes, or 0 (refs start at 1).
  SeriesRef Find(std::string_view raw_labels) const;
  // Remembers `ref` for the bytes. REQUIRES: they decode to a valid label set whose series
  // has that ref in the storage this cache serves.
  void Insert(std::string_view raw_labels, SeriesRef ref);
  // Forgets everything (another storage, or a test).
  void Clear();
  // Empties the cache when `storage` is not the one it was last bound to: refs belong to
  // one data directory. Cheap when it is (one atomic load).
  void BindTo(const void* storage);

  size_t entries() const;
  // Approximate bytes held.
  size_t bytes() const;
  // Full shards emptied to make room.
  int64_t evictions() const { return evictions_.load(std::memory_order_relaxed); }

 private:
  static constexpr size_t kShards = 64;
  struct Entry {
    std::string raw_labels;
    SeriesRef ref = 0;
  };
  // Per entry beyond the key's bytes, roughly: the table slot (hash, string, ref) and its
  // control byte at the table's usual load, and the key's heap block.
  static constexpr size_t kEntryOverhead = 2 * (sizeof(uint64_t) + sizeof(Entry) + 1) + 16;
  struct alignas(64) Shard {  // one cache line or more each: no false sharing of locks
    // Held for one probe and comparison on every lookup: the futex word's inline fast path
    // costs a tenth of std::mutex's calls. Waiters sleep (an Insert may clear a shard).
    mutable SeriesMutex mu;
    // By a 64-bit hash of the bytes, which are kept to compare: two byte strings with one
    // hash share an entry, the last inserted wins and the other misses.
    absl::flat_hash_map<uint64_t, Entry> map;
    size_t bytes = 0;
    size_t turned_away = 0;  // inserts refused since the shard was last emptied
  };
  static uint64_t HashOf(std::string_view raw_labels);

  const size_t max_bytes_;
  std::atomic<const void*> owner_{nullptr};
  std::mutex bind_mu_;
  mutable std::array<Shard, kShards> shards_;
  std::atomic<int64_t> evictions_{0};
};

}  // namespace strata

#endif  // STRATA_SERVER_SERIES_REF_CACHE_H_
