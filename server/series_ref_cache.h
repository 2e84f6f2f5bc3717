// Remote write sends every series' full label set with every sample. Looking the series up
// by those labels (validating them, packing a Labels, hashing it, comparing it with the
// head's copy) is about a third of the instructions spent per ingested sample. This cache
// maps the label fields' bytes exactly as a sender encodes them to the head series, so a
// series seen before is found by one hash of those bytes and one byte comparison, as
// Prometheus' scrape cache does for scraped lines.
//
// An entry only ever maps bytes to the head series of the label set they decode to. The
// series may have left the head since (head GC): it stays allocated while the entry holds
// it, Head::Append sees it is removed and finds or recreates the series by its labels, and
// the caller then stores the new one. Entries belong to one head (BindTo).
//
// Lookups come a request at a time (FindAll): with the label bytes, the table, the head
// series and their chunks far apart in memory, one lookup after another mostly waits on
// cache misses, so a batch takes each shard's lock once and prefetches a few entries ahead.
// Thread-safe (sharded locks). Memory is bounded: a full shard keeps its entries and turns
// new ones away, until it has turned away as many as it holds; then it is emptied.
#ifndef STRATA_SERVER_SERIES_REF_CACHE_H_
#define STRATA_SERVER_SERIES_REF_CACHE_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
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

  // The series stored for exactly these bytes, or null.
  SeriesPtr Find(std::string_view raw_labels) const;
  // Find for each raw[i], into out[i] (same size). out[i] is left alone where nothing is
  // stored, so the caller can pass nulls.
  void FindAll(std::span<const std::string_view> raw, std::span<SeriesPtr> out) const;
  // Remembers `series` for the bytes. REQUIRES: they decode to a valid label set, and
  // `series` is the series of that label set in the head this cache is bound to.
  void Insert(std::string_view raw_labels, SeriesPtr series);
  // Forgets everything (another storage, or a test).
  void Clear();
  // Empties the cache when the head `id` names (Head::instance_id) is not the one it was
  // last bound to: its series belong to one head. Cheap when it is (one atomic load).
  void BindTo(uint64_t id);

  size_t entries() const;
  // Approximate bytes held.
  size_t bytes() const;
  // Full shards emptied to make room.
  int64_t evictions() const { return evictions_.load(std::memory_order_relaxed); }

 private:
  static constexpr size_t kShards = 64;
  struct Entry {
    std::string raw_labels;
    SeriesPtr series;
  };
  // Per entry beyond the key's bytes, roughly: the table slot (hash, string, series) and its
  // control byte at the table's usual load, and the key's heap block. Not counted: the
  // series, which the head holds too, except after head GC removed it (then at most one
  // small series per entry, until the entry is replaced or its shard emptied).
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
  std::atomic<uint64_t> owner_{0};
  std::mutex bind_mu_;
  mutable std::array<Shard, kShards> shards_;
  std::atomic<int64_t> evictions_{0};
};

}  // namespace strata

#endif  // STRATA_SERVER_SERIES_REF_CACHE_H_
