#include "server/series_ref_cache.h"

// Inlined rather than the shared library's XXH3_64bits (a call through the PLT per
// lookup); same hash values.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <string>
#include <tuple>

namespace strata {

uint64_t SeriesRefCache::HashOf(std::string_view raw_labels) {
  return XXH3_64bits(raw_labels.data(), raw_labels.size());
}

SeriesRef SeriesRefCache::Find(std::string_view raw_labels) const {
  const uint64_t h = HashOf(raw_labels);
  Shard& shard = shards_[h % kShards];
  std::lock_guard<SeriesMutex> lock(shard.mu);
  auto it = shard.map.find(h);
  if (it == shard.map.end() || it->second.raw_labels != raw_labels) return 0;
  return it->second.ref;
}

void SeriesRefCache::Insert(std::string_view raw_labels, SeriesRef ref) {
  const size_t cost = raw_labels.size() + kEntryOverhead;
  if (cost > max_bytes_ / kShards) return;
  const uint64_t h = HashOf(raw_labels);
  Shard& shard = shards_[h % kShards];
  std::lock_guard<SeriesMutex> lock(shard.mu);
  auto it = shard.map.find(h);
  if (it == shard.map.end() && shard.bytes + cost > max_bytes_ / kShards) {
    // Full. Keep what is there (it keeps hitting when the series outnumber the budget) until
    // as many newcomers as entries were turned away: then the set has moved on (churn), and
    // the shard starts over with the series sent now.
    if (++shard.turned_away <= shard.map.size()) return;
    shard.map.clear();
    shard.bytes = 0;
    shard.turned_away = 0;
    evictions_.fetch_add(1, std::memory_order_relaxed);
    it = shard.map.end();
  }
  bool inserted = false;
  if (it == shard.map.end()) std::tie(it, inserted) = shard.map.try_emplace(h);
  if (inserted) shard.bytes += cost;
  it->second.raw_labels.assign(raw_labels);
  it->second.ref = ref;
}

void SeriesRefCache::Clear() {
  for (Shard& shard : shards_) {
    std::lock_guard<SeriesMutex> lock(shard.mu);
    shard.map.clear();
    shard.bytes = 0;
    shard.turned_away = 0;
  }
}

void SeriesRefCache::BindTo(const void* storage) {
  if (owner_.load(std::memory_order_acquire) == storage) return;
  std::lock_guard<std::mutex> lock(bind_mu_);
  if (owner_.load(std::memory_order_relaxed) == storage) return;
  Clear();
  owner_.store(storage, std::memory_order_release);
}

size_t SeriesRefCache::entries() const {
  size_t n = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard<SeriesMutex> lock(shard.mu);
    n += shard.map.size();
  }
  return n;
}

size_t SeriesRefCache::bytes() const {
  size_t n = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard<SeriesMutex> lock(shard.mu);
    n += shard.bytes;
  }
  return n;
}

}  // namespace strata
