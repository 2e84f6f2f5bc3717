// The head's append path and WAL replay.
#include <algorithm>
#include <bit>
#include <functional>

#include "spdlog/spdlog.h"
#include "src/status.h"
#include "storage/head.h"

namespace strata {

Head::Outcome Head::AppendLocked(MemSeries& s, Sample sample, Timestamp min_valid,
                                 int64_t segment) {
  if (sample.t < min_valid) return Outcome::kTooOld;
  if (s.has_last) {
    if (sample.t < s.last_t) {
      if (options_.out_of_order_window_ms <= 0 ||
          s.last_t - sample.t > options_.out_of_order_window_ms) {
        return Outcome::kOutOfOrder;
      }
      return InsertOutOfOrderLocked(s, sample, segment, /*replay=*/false);
    }
    if (sample.t == s.last_t) {
      return std::bit_cast<uint64_t>(sample.v) == std::bit_cast<uint64_t>(s.last_v)
                 ? Outcome::kUnchanged
                 : Outcome::kDuplicate;
    }
  }
  // Samples only move forward, so "in another partition" is "at or after the end of the
  // open chunk's partition" (no division per sample).
  if (s.open.num_samples() > 0 &&
      (s.open.num_samples() >= options_.chunk_samples || sample.t >= s.open_partition_end)) {
    CutOpenLocked(s);
  }
  if (s.open.num_samples() == 0) {
    s.open_mint = sample.t;
    s.open_segment = segment;
    const int64_t p = PartitionOf(sample.t, options_.partition_ms);
    s.open_partition_end = p < std::numeric_limits<int64_t>::max() / options_.partition_ms - 1
                               ? (p + 1) * options_.partition_ms
                               : std::numeric_limits<Timestamp>::max();
    ++num_chunks_;
  }
  // Cannot fail: the time is after the last one and the chunk is below its size limit.
  absl::Status st = s.open.Append(sample.t, sample.v);
  if (!st.ok()) {
    spdlog::error("head chunk append failed for series {}: {}", s.ref, st.ToString());
    return Outcome::kOutOfOrder;
  }
  s.has_last = true;
  s.last_t = sample.t;
  s.last_v = sample.v;
  return Outcome::kAppended;
}

Head::Outcome Head::InsertOutOfOrderLocked(MemSeries& s, Sample sample, int64_t segment,
                                           bool replay) {
  // Chunks already durable, or being written by a flush, are final.
  if (!s.durable_exact && store_ != nullptr) {
    absl::StatusOr<std::optional<Sample>> stored =
        store_->LastSample(s.ref, std::numeric_limits<int64_t>::min());
    if (!stored.ok()) {
      spdlog::error("looking up the stored end of series {}: {}", s.ref,
                    stored.status().ToString());
      return Outcome::kOutOfOrder;
    }
    if (*stored) s.durable_max = std::max(s.durable_max, (*stored)->t);
    s.durable_exact = true;
  }
  Timestamp floor = s.durable_max;
  if (s.flushing > 0) floor = std::max(floor, s.closed[s.flushing - 1].chunk.maxt);
  if (sample.t <= floor) return Outcome::kOutOfOrder;

  // The head chunks that may change, oldest first: closed ones after the flushing ones,
  // then the open chunk.
  const size_t first = s.flushing;
  const size_t n = s.closed.size() - first + (s.open.num_samples() > 0 ? 1 : 0);
  auto mint_of = [&](size_t i) {
    return first + i < s.closed.size() ? s.closed[first + i].chunk.mint : s.open_mint;
  };
  // How many of them start at or before the sample.
  size_t before = 0;
  while (before < n && mint_of(before) <= sample.t) ++before;
  const int64_t partition = PartitionOf(sample.t, options_.partition_ms);
  // The chunk to take it: the newest one starting at or before it, else the oldest one
  // (extended down), if in the sample's partition; otherwise (a chunk's partition ends
  // before it, or a new one starts after it, or every head chunk is final) a chunk of its
  // own, between its neighbours. No chunk is then entered by another's span: the sample is
  // after every final chunk, and chunks do not span partitions.
  auto own_chunk = [&] {
    XorChunkAppender one;
    if (!one.Append(sample.t, sample.v).ok()) return Outcome::kOutOfOrder;
    ChunkRef c;
    c.mint = c.maxt = sample.t;
    c.bytes = std::make_shared<const std::string>(one.bytes());
    // Before the open chunk (whose span reaches the series' last sample, after this one).
    s.closed.insert(s.closed.begin() + static_cast<std::ptrdiff_t>(first + before),
                    {std::move(c), segment});
    ++num_chunks_;
    return Outcome::kAppendedOutOfOrder;
  };
  size_t target = before > 0 ? before - 1 : 0;
  if (n == 0 || PartitionOf(mint_of(target), options_.partition_ms) != partition) {
    if (before < n && PartitionOf(mint_of(before), options_.partition_ms) == partition) {
      target = before;
    } else {
      return own_chunk();
    }
  }
  const bool is_open = first + target == s.closed.size();
  const std::string_view bytes =
      is_open ? s.open.bytes() : std::string_view(*s.closed[first + target].chunk.bytes);

  std::vector<Sample> samples;
  XorChunkIterator it(bytes);
  absl::Status st = it.AppendRange(std::numeric_limits<Timestamp>::min(),
                                   std::numeric_limits<Timestamp>::max(), &samples);
  if (!st.ok()) {
    spdlog::error("head chunk of series {} does not decode: {}", s.ref, st.ToString());
    return Outcome::kOutOfOrder;
  }
  auto pos = std::lower_bound(samples.begin(), samples.end(), sample.t,
                              [](const Sample& a, Timestamp t) { return a.t < t; });
  if (pos != samples.end() && pos->t == sample.t) {
    return std::bit_cast<uint64_t>(pos->v) == std::bit_cast<uint64_t>(sample.v)
               ? Outcome::kUnchanged
               : Outcome::kDuplicate;
  }
  // A chunk that out-of-order samples have filled takes no more: one outside its span gets a
  // chunk of its own, one inside is rejected (re-encoding costs a pass over the chunk).
  if ((!replay && static_cast<int64_t>(samples.size()) >= 2 * int64_t{options_.chunk_samples}) ||
      samples.size() + 1 >= static_cast<size_t>(kXorChunkMaxSamples)) {
    if (sample.t < samples.front().t) {
      before = target;  // the new chunk goes before the target
      return own_chunk();
    }
    if (sample.t > samples.back().t) return own_chunk();  // `before` is target + 1
    return Outcome::kOutOfOrder;
  }
  samples.insert(pos, sample);
  XorChunkAppender rebuilt;
  for (const Sample& x : samples) {
    st = rebuilt.Append(x.t, x.v);
    if (!st.ok()) {
      spdlog::error("re-encoding a head chunk of series {} failed: {}", s.ref, st.ToString());
      return Outcome::kOutOfOrder;
    }
  }
  if (is_open) {
    s.open = std::move(rebuilt);
    s.open_mint = samples.front().t;
  } else {
    ChunkRef& c = s.closed[first + target].chunk;
    c.mint = samples.front().t;
    c.maxt = samples.back().t;
    c.bytes = std::make_shared<const std::string>(rebuilt.bytes());
  }
  return Outcome::kAppendedOutOfOrder;
}

absl::StatusOr<AppendResult> Head::Append(std::span<const SeriesBatch> batch,
                                          std::vector<SeriesPtr>* looked_up) {
  for (const SeriesBatch& b : batch) {
    if (b.labels.empty() && b.series == nullptr) {
      return absl::InvalidArgumentError("series with no labels");
    }
  }
  uint64_t seq = 0;
  // Plain pointers: the batch holds a reference to the series it names and `owned` to the
  // ones looked up here (copying a SeriesPtr is an atomic increment and decrement).
  std::vector<MemSeries*> series(batch.size());
  std::vector<SeriesPtr> owned(batch.size());
  auto look_up = [&](size_t i, const Labels& labels) -> absl::Status {
    STRATA_ASSIGN_OR_RETURN(owned[i], GetOrCreate(labels, &seq));
    series[i] = owned[i].get();
    return absl::OkStatus();
  };
  for (size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].series != nullptr) {
      series[i] = batch[i].series.get();
    } else {
      STRATA_RETURN_IF_ERROR(look_up(i, batch[i].labels));
    }
  }
  // Lock every series of the batch while appending and queuing the WAL record: per series,
  // WAL order is then head order. Usually no other batch holds any of them, so they are
  // tried in batch order without waiting. If one is held (or named twice), all are let go
  // and taken in address order, waiting: batches cannot deadlock, as a batch that waits
  // holds its locks in that order, one that tries never waits holding any, and no other
  // path holds two series locks. The sort (of the pointers themselves, which reads no
  // series) is then only paid under contention.
  constexpr size_t kAhead = 8;  // series prefetched ahead of the one being locked
  std::vector<MemSeries*> locked;
  locked.reserve(series.size());
  while (true) {
    locked.assign(series.begin(), series.end());
    size_t taken = 0;
    for (size_t i = 0; i < std::min(kAhead, locked.size()); ++i) PrefetchSeries(locked[i]);
    while (taken < locked.size()) {
      if (taken + kAhead < locked.size()) PrefetchSeries(locked[taken + kAhead]);
      if (!locked[taken]->mu.try_lock()) break;
      ++taken;
    }
    if (taken < locked.size()) {
      for (size_t i = 0; i < taken; ++i) locked[i]->mu.unlock();
      std::sort(locked.begin(), locked.end(), std::less<>());
      locked.erase(std::unique(locked.begin(), locked.end()), locked.end());
      for (MemSeries* s : locked) s->mu.lock();
    }
    std::vector<const MemSeries*> removed;
    for (MemSeries* s : locked) {
      if (s->removed) removed.push_back(s);
    }
    if (removed.empty()) break;
    // Head GC took a series out after we found it: find (or recreate) it again.
    for (MemSeries* s : locked) s->mu.unlock();
    for (size_t i = 0; i < batch.size(); ++i) {
      if (std::find(removed.begin(), removed.end(), series[i]) != removed.end()) {
        // A series given by the caller may come without labels; its symbols stay valid.
        const Labels labels = batch[i].labels.empty() ? LabelsOf(*series[i]) : batch[i].labels;
        STRATA_RETURN_IF_ERROR(look_up(i, labels));
      }
    }
  }

  AppendResult result;
  Timestamp max_time = max_time_.load();
  Timestamp min_valid = std::numeric_limits<Timestamp>::min();
  if (options_.max_sample_age_ms > 0 &&
      max_time > std::numeric_limits<Timestamp>::min() + options_.max_sample_age_ms) {
    min_valid = max_time - options_.max_sample_age_ms;
  }
  int64_t segment = wal_ != nullptr ? wal_->current_segment() : 0;
  size_t total = 0;
  for (const SeriesBatch& b : batch) total += b.samples.size();
  std::vector<WalSample> accepted;
  accepted.reserve(total);
  Timestamp batch_max = std::numeric_limits<Timestamp>::min();
  Timestamp batch_min = std::numeric_limits<Timestamp>::max();
  // A large batch's series have left the CPU's caches again by now: fetch each series
  // 2 * kChunkAhead ahead of the one appended to, and its open chunk's end kChunkAhead ahead.
  constexpr size_t kChunkAhead = 4;
  for (size_t i = 0; i < std::min(2 * kChunkAhead, series.size()); ++i) PrefetchSeries(series[i]);
  for (size_t i = 0; i < std::min(kChunkAhead, series.size()); ++i) series[i]->open.PrefetchEnd();
  for (size_t i = 0; i < batch.size(); ++i) {
    if (i + 2 * kChunkAhead < series.size()) PrefetchSeries(series[i + 2 * kChunkAhead]);
    if (i + kChunkAhead < series.size()) series[i + kChunkAhead]->open.PrefetchEnd();
    for (const Sample& sample : batch[i].samples) {
      switch (AppendLocked(*series[i], sample, min_valid, segment)) {
        case Outcome::kAppendedOutOfOrder:
          ++result.out_of_order_appended;
          [[fallthrough]];
        case Outcome::kAppended:
          ++result.appended;
          accepted.push_back({series[i]->ref, sample.t, sample.v});
          batch_max = std::max(batch_max, sample.t);
          batch_min = std::min(batch_min, sample.t);
          break;
        case Outcome::kUnchanged:
          ++result.unchanged;
          break;
        case Outcome::kOutOfOrder:
          ++result.out_of_order;
          break;
        case Outcome::kTooOld:
          ++result.too_old;
          break;
        case Outcome::kDuplicate:
          ++result.duplicate;
          break;
      }
    }
  }
  if (wal_ != nullptr && !accepted.empty()) {
    std::string rec;
    rec.reserve(20 + accepted.size() * 28);
    EncodeWalSamples(accepted, &rec);
    seq = std::max(seq, wal_->Enqueue(WalRecordType::kSamples, rec));
  }
  for (MemSeries* s : locked) s->mu.unlock();
  if (looked_up != nullptr) *looked_up = std::move(owned);

  ObserveTime(batch_max);
  if (batch_min <= batch_max) LowerMinTime(batch_min);
  if (wal_ != nullptr && seq > 0) STRATA_RETURN_IF_ERROR(wal_->Sync(seq));
  return result;
}

absl::Status Head::ReplaySeries(SeriesRef ref, std::string_view encoded_labels) {
  STRATA_ASSIGN_OR_RETURN(Labels labels, Labels::FromEncoded(encoded_labels));
  uint64_t hash = SeriesHash(labels);
  Stripe& stripe = stripes_[hash % stripes_.size()];
  std::lock_guard<std::mutex> lock(stripe.mu);
  if (MemSeries* s = FindLocked(stripe, hash, labels)) {
    if (s->ref != ref) {
      // Should not happen; map the logged ref onto the live series (the entry holds a
      // reference, like every by_ref entry).
      RefStripe& rs = ref_stripes_[ref % ref_stripes_.size()];
      std::lock_guard<SeriesMutex> ref_lock(rs.mu);
      MemSeries*& slot = rs.by_ref[ref];
      if (slot == nullptr) {
        s->refs_.fetch_add(1, std::memory_order_relaxed);
        slot = s;
      }
    }
    ReserveRefs(ref + 1);
    return absl::OkStatus();
  }
  MemSeries* s = Insert(stripe, hash, ref, labels);
  // Looked up at the series' first replayed sample, in that sample's partition and later
  // ones only: older stored samples cannot be at or after it.
  if (store_ != nullptr && ref < store_->next_ref()) s->replay_lookup = true;
  return absl::OkStatus();
}

// REQUIRES: s.mu held.
static absl::Status ResolveStoredLast(SeriesStore& store, MemSeries& s, int64_t min_partition) {
  s.replay_lookup = false;
  s.durable_exact = min_partition == std::numeric_limits<int64_t>::min();
  STRATA_ASSIGN_OR_RETURN(std::optional<Sample> last, store.LastSample(s.ref, min_partition));
  if (last) {
    s.persisted = true;
    s.durable_max = std::max(s.durable_max, last->t);
    if (!s.has_last || last->t > s.last_t) {
      s.has_last = true;
      s.last_t = last->t;
      s.last_v = last->v;
    }
  }
  return absl::OkStatus();
}

absl::Status Head::FinishReplay() {
  if (store_ == nullptr) return absl::OkStatus();
  for (Stripe& stripe : stripes_) {
    std::lock_guard<std::mutex> lock(stripe.mu);
    for (auto& [hash, first] : stripe.by_hash) {
      for (MemSeries* s = first; s != nullptr; s = s->hash_next_) {
        std::lock_guard<SeriesMutex> series_lock(s->mu);
        if (s->replay_lookup) {
          STRATA_RETURN_IF_ERROR(
              ResolveStoredLast(*store_, *s, std::numeric_limits<int64_t>::min()));
        }
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Head::ReplaySamples(int64_t segment, std::span<const WalSample> samples) {
  for (const WalSample& ws : samples) {
    SeriesPtr s = GetByRef(ws.ref);
    if (s == nullptr && store_ != nullptr) {
      // Its series record was checkpointed away; the series is in the store.
      STRATA_ASSIGN_OR_RETURN(std::optional<Labels> labels, store_->SeriesLabels(ws.ref));
      if (labels) {
        STRATA_RETURN_IF_ERROR(ReplaySeries(ws.ref, labels->encoded()));
        s = GetByRef(ws.ref);
      }
    }
    if (s == nullptr) {
      ++replay_unknown_refs_;
      continue;
    }
    std::lock_guard<SeriesMutex> lock(s->mu);
    if (s->replay_lookup) {
      STRATA_RETURN_IF_ERROR(
          ResolveStoredLast(*store_, *s, PartitionOf(ws.t, options_.partition_ms)));
    }
    if (s->has_last && ws.t <= s->last_t) {
      // Logged after a newer sample: the out-of-order window took it (whatever the window
      // is now, it was acknowledged), unless it is in the store already.
      if (InsertOutOfOrderLocked(*s, {ws.t, ws.v}, segment, /*replay=*/true) ==
          Outcome::kAppendedOutOfOrder) {
        LowerMinTime(ws.t);
      }
      continue;
    }
    AppendLocked(*s, {ws.t, ws.v}, std::numeric_limits<Timestamp>::min(), segment);
    ObserveTime(ws.t);
    LowerMinTime(ws.t);
  }
  return absl::OkStatus();
}

}  // namespace strata
