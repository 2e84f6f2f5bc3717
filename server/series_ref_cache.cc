#include "server/series_ref_cache.h"

// Inlined rather than the shared library's XXH3_64bits (a call through the PLT per
// lookup); same hash values.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <string>
#include <tuple>
#include <vector>

namespace strata {

uint64_t SeriesRefCache::HashOf(std::string_view raw_labels) {
  return XXH3_64bits(raw_labels.data(), raw_labels.size());
}

SeriesPtr SeriesRefCache::Find(std::string_view raw_labels) const {
  SeriesPtr out;
  FindAll({&raw_labels, 1}, {&out, 1});
  return out;
}

void SeriesRefCache::FindAll(std::span<const std::string_view> raw,
                             std::span<SeriesPtr> out) const {
  // The keys' hashes, and their indices grouped by shard (a counting sort), so that each
  // shard is locked once and its lookups can be prefetched under that lock.
  thread_local std::vector<uint64_t> hashes;
  thread_local std::vector<uint32_t> order;
  std::array<uint32_t, kShards + 1> start{};
  hashes.resize(raw.size());
  order.resize(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    hashes[i] = HashOf(raw[i]);
    ++start[hashes[i] % kShards + 1];
  }
  for (size_t s = 0; s < kShards; ++s) start[s + 1] += start[s];
  std::array<uint32_t, kShards> fill;
  std::copy(start.begin(), start.end() - 1, fill.begin());
  for (size_t i = 0; i < raw.size(); ++i)
    order[fill[hashes[i] % kShards]++] = static_cast<uint32_t>(i);

  // Three stages, kAhead lookups apart: prefetch the table slot; probe it and prefetch the
  // entry's key bytes and series; compare the key and take the series.
  constexpr size_t kAhead = 4;
  for (size_t s = 0; s < kShards; ++s) {
    const size_t begin = start[s], end = start[s + 1];
    if (begin == end) continue;
    Shard& shard = shards_[s];
    std::lock_guard<SeriesMutex> lock(shard.mu);
    const auto& map = shard.map;
    std::array<const Entry*, kAhead> probed{};
    // Step k compares j = k - 2 * kAhead (probed at step k - kAhead into the ring slot it
    // then frees), probes j = k - kAhead, and prefetches k.
    for (size_t k = begin; k < end + 2 * kAhead; ++k) {
      if (k >= begin + 2 * kAhead) {
        const size_t j = k - 2 * kAhead;
        const Entry* e = probed[j % kAhead];
        const uint32_t i = order[j];
        if (e != nullptr && e->raw_labels == raw[i]) out[i] = e->series;
      }
      if (k >= begin + kAhead && k < end + kAhead) {
        const size_t j = k - kAhead;
        auto it = map.find(hashes[order[j]]);
        const Entry* e = it == map.end() ? nullptr : &it->second;
        if (e != nullptr) {
          __builtin_prefetch(e->raw_labels.data());
          PrefetchSeries(e->series.get());
        }
        probed[j % kAhead] = e;
      }
      if (k < end) map.prefetch(hashes[order[k]]);
    }
  }
}

void SeriesRefCache::Insert(std::string_view raw_labels, SeriesPtr series) {
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
  it->second.series = std::move(series);
}

void SeriesRefCache::Clear() {
  for (Shard& shard : shards_) {
    std::lock_guard<SeriesMutex> lock(shard.mu);
    shard.map.clear();
    shard.bytes = 0;
    shard.turned_away = 0;
  }
}

void SeriesRefCache::BindTo(uint64_t id) {
  if (owner_.load(std::memory_order_acquire) == id) return;
  std::lock_guard<std::mutex> lock(bind_mu_);
  if (owner_.load(std::memory_order_relaxed) == id) return;
  Clear();
  owner_.store(id, std::memory_order_release);
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
