#include "storage/head.h"

#include <algorithm>
#include <limits>

#include "src/status.h"

namespace strata {

Head::Head(HeadOptions options, SeriesStore* store)
    : options_(options),
      store_(store),
      stripes_(std::max(1, options.stripes)),
      ref_stripes_(std::max(1, options.stripes)) {}

Head::~Head() = default;

void Head::ReserveRefs(SeriesRef next) {
  SeriesRef cur = next_ref_.load();
  while (cur < next && !next_ref_.compare_exchange_weak(cur, next)) {
  }
}

void Head::ObserveTime(Timestamp t) {
  Timestamp cur = max_time_.load();
  while (cur < t && !max_time_.compare_exchange_weak(cur, t)) {
  }
}

MemSeries* Head::Insert(Stripe& stripe, uint64_t hash, SeriesRef ref, const Labels& labels) {
  auto owned = std::make_unique<MemSeries>(ref, labels);
  MemSeries* s = owned.get();
  stripe.by_hash[hash].push_back(std::move(owned));
  {
    RefStripe& rs = ref_stripes_[ref % ref_stripes_.size()];
    std::lock_guard<std::mutex> lock(rs.mu);
    rs.by_ref[ref] = s;
  }
  AddPostings(*s);
  ReserveRefs(ref + 1);
  ++num_series_;
  return s;
}

void Head::AddPostings(const MemSeries& s) {
  auto insert = [&](std::vector<SeriesRef>& list) {
    // Refs mostly grow, so this is usually an append.
    if (list.empty() || list.back() < s.ref) {
      list.push_back(s.ref);
    } else {
      auto it = std::lower_bound(list.begin(), list.end(), s.ref);
      if (it == list.end() || *it != s.ref) list.insert(it, s.ref);
    }
  };
  std::unique_lock<std::shared_mutex> lock(postings_mu_);
  for (const LabelView& l : s.labels) {
    auto name_it = postings_.find(l.name);
    if (name_it == postings_.end()) {
      name_it = postings_.emplace(std::string(l.name), StringMap<std::vector<SeriesRef>>{}).first;
    }
    auto value_it = name_it->second.find(l.value);
    if (value_it == name_it->second.end()) {
      value_it = name_it->second.emplace(std::string(l.value), std::vector<SeriesRef>{}).first;
    }
    insert(value_it->second);
  }
  insert(all_refs_);
}

absl::StatusOr<MemSeries*> Head::GetOrCreate(const Labels& labels, uint64_t* seq) {
  uint64_t hash = labels.Hash();
  Stripe& stripe = stripes_[hash % stripes_.size()];
  std::lock_guard<std::mutex> lock(stripe.mu);
  auto it = stripe.by_hash.find(hash);
  if (it != stripe.by_hash.end()) {
    for (auto& s : it->second) {
      if (s->labels == labels) return s.get();
    }
  }
  // A series the store knows keeps its ref and its last sample (for the order check).
  std::optional<SeriesStore::Known> known;
  if (store_ != nullptr) {
    STRATA_ASSIGN_OR_RETURN(known, store_->FindSeries(labels));
  }
  SeriesRef ref = known ? known->ref : next_ref_.fetch_add(1);
  MemSeries* s = Insert(stripe, hash, ref, labels);
  if (known) {
    s->persisted = true;
    if (known->last) {
      s->has_last = true;
      s->last_t = known->last->t;
      s->last_v = known->last->v;
    }
  }
  if (wal_ != nullptr) {
    // Queued under the stripe lock: no other appender can see the series before its record
    // is queued, so the record precedes every sample that names the ref.
    std::string rec;
    WalSeries ws{ref, labels.encoded()};
    EncodeWalSeries({&ws, 1}, &rec);
    *seq = std::max(*seq, wal_->Enqueue(WalRecordType::kSeries, rec));
  }
  return s;
}

MemSeries* Head::GetByRef(SeriesRef ref) {
  RefStripe& rs = ref_stripes_[ref % ref_stripes_.size()];
  std::lock_guard<std::mutex> lock(rs.mu);
  auto it = rs.by_ref.find(ref);
  return it == rs.by_ref.end() ? nullptr : it->second;
}

void Head::CutOpenLocked(MemSeries& s) {
  if (s.open.num_samples() == 0) return;
  ChunkRef c;
  c.mint = s.open_mint;
  c.maxt = s.open.last_timestamp();
  c.bytes = std::make_shared<const std::string>(s.open.bytes());
  s.closed.push_back({std::move(c), s.open_segment});
  s.open = XorChunkAppender();
}

std::vector<Head::FlushItem> Head::CollectFlush(bool cut_open, int64_t idle_ms) {
  std::vector<FlushItem> items;
  // Open chunks whose last sample is older than this are cut. Nothing is idle while the
  // head has no sample yet (max_time_ still at its minimum) or idle_ms is 0.
  const Timestamp max_time = max_time_.load();
  Timestamp idle_before = std::numeric_limits<Timestamp>::min();
  if (idle_ms > 0 && max_time > std::numeric_limits<Timestamp>::min() + idle_ms) {
    idle_before = max_time - idle_ms;
  }
  for (Stripe& stripe : stripes_) {
    std::vector<MemSeries*> series;
    {
      std::lock_guard<std::mutex> lock(stripe.mu);
      for (auto& [hash, list] : stripe.by_hash) {
        for (auto& s : list) series.push_back(s.get());
      }
    }
    for (MemSeries* s : series) {
      std::lock_guard<std::mutex> lock(s->mu);
      if (s->open.num_samples() > 0 && (cut_open || s->open.last_timestamp() < idle_before)) {
        CutOpenLocked(*s);
      }
      if (s->closed.empty() && s->persisted) continue;
      FlushItem item{s, !s->persisted, s->closed.size(), {}};
      for (const auto& c : s->closed) item.chunks.push_back(c.chunk);
      items.push_back(std::move(item));
    }
  }
  return items;
}

void Head::MarkFlushed(const std::vector<FlushItem>& items) {
  for (const FlushItem& item : items) {
    MemSeries& s = *item.series;
    std::lock_guard<std::mutex> lock(s.mu);
    s.closed.erase(s.closed.begin(), s.closed.begin() + item.num_closed);
    num_chunks_ -= item.num_closed;
    s.persisted = true;
  }
}

int64_t Head::LowestNeededSegment() {
  int64_t lowest = std::numeric_limits<int64_t>::max();
  for (Stripe& stripe : stripes_) {
    std::lock_guard<std::mutex> lock(stripe.mu);
    for (auto& [hash, list] : stripe.by_hash) {
      for (auto& s : list) {
        std::lock_guard<std::mutex> series_lock(s->mu);
        if (!s->closed.empty()) lowest = std::min(lowest, s->closed.front().wal_segment);
        if (s->open.num_samples() > 0) lowest = std::min(lowest, s->open_segment);
      }
    }
  }
  return lowest;
}

}  // namespace strata
