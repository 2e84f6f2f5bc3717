#include "storage/head.h"

#include <algorithm>
#include <limits>

#include "absl/container/flat_hash_set.h"
#include "src/status.h"
#include "xxhash.h"

namespace strata {

MemSeries::MemSeries(SeriesRef ref, std::span<const uint32_t> symbols)
    : ref(ref),
      num_symbols_(static_cast<uint16_t>(symbols.size())),
      symbols_(new uint32_t[symbols.size()]) {
  std::copy(symbols.begin(), symbols.end(), symbols_.get());
}

namespace {
std::atomic<uint64_t> next_head_instance{1};
}  // namespace

Head::Head(HeadOptions options, SeriesStore* store)
    : options_(options),
      instance_id_(next_head_instance.fetch_add(1, std::memory_order_relaxed)),
      store_(store),
      stripes_(std::max(1, options.stripes)),
      ref_stripes_(std::max(1, options.stripes)) {}

Head::~Head() {
  // Each by_ref entry holds a reference; series still held by a SeriesPtr outlive the head.
  for (RefStripe& rs : ref_stripes_) {
    for (auto& [ref, s] : rs.by_ref) SeriesPtr::Release(s);
  }
}

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

void Head::LowerMinTime(Timestamp t) {
  // flush_min_ first: a MarkFlushed that stores min_time_ after this call's update of it
  // reads flush_min_ afterwards and sees t (see CollectFlush).
  for (std::atomic<Timestamp>* a : {&flush_min_, &min_time_}) {
    Timestamp cur = a->load();
    while (cur > t && !a->compare_exchange_weak(cur, t)) {
    }
  }
}

MemSeries* Head::Insert(Stripe& stripe, uint64_t hash, SeriesRef ref, const Labels& labels,
                        const SeriesStore::Known* known) {
  uint32_t syms[2 * 64];
  std::vector<uint32_t> many;
  uint32_t* out = syms;
  const size_t n = 2 * labels.size();
  if (n > std::size(syms)) {
    many.resize(n);
    out = many.data();
  }
  size_t i = 0;
  for (const LabelView& l : labels) {
    out[i++] = symbols_.Intern(l.name);
    out[i++] = symbols_.Intern(l.value);
  }
  auto* s = new MemSeries(ref, {out, n});
  s->refs_.store(1, std::memory_order_relaxed);  // by_ref's
  if (known != nullptr) {
    // Before the series is published: a query that finds it in the head reads the store
    // only up to its last sample, so a series seen without one would hide its stored data.
    std::lock_guard<SeriesMutex> series_lock(s->mu);
    s->persisted = true;
    if (known->last) {
      s->has_last = true;
      s->last_t = known->last->t;
      s->last_v = known->last->v;
      s->durable_max = known->last->t;
    }
  }
  MemSeries*& first = stripe.by_hash[hash];
  s->hash_next_ = first;
  first = s;
  {
    RefStripe& rs = ref_stripes_[ref % ref_stripes_.size()];
    std::lock_guard<SeriesMutex> lock(rs.mu);
    // A ref already taken (only by a corrupt WAL or store) keeps its old series allocated,
    // so that pointers to it stay valid; the new series takes the ref.
    rs.by_ref[ref] = s;
  }
  AddPostings(*s);
  ReserveRefs(ref + 1);
  ++num_series_;
  return s;
}

Labels Head::LabelsOf(const MemSeries& s) const {
  std::span<const uint32_t> syms = s.symbols();
  LabelView views[64];
  std::vector<LabelView> many;
  LabelView* out = views;
  if (syms.size() / 2 > std::size(views)) {
    many.resize(syms.size() / 2);
    out = many.data();
  }
  for (size_t i = 0; i < syms.size(); i += 2) {
    out[i / 2] = {symbols_.Lookup(syms[i]), symbols_.Lookup(syms[i + 1])};
  }
  return Labels::FromSortedViews({out, syms.size() / 2});
}

bool Head::SameLabels(const MemSeries& s, const Labels& labels) const {
  std::span<const uint32_t> syms = s.symbols();
  size_t i = 0;
  for (const LabelView& l : labels) {
    if (i == syms.size() || symbols_.Lookup(syms[i]) != l.name ||
        symbols_.Lookup(syms[i + 1]) != l.value) {
      return false;
    }
    i += 2;
  }
  return i == syms.size();
}

MemSeries* Head::FindLocked(const Stripe& stripe, uint64_t hash, const Labels& labels) const {
  auto it = stripe.by_hash.find(hash);
  if (it == stripe.by_hash.end()) return nullptr;
  for (MemSeries* s = it->second; s != nullptr; s = s->hash_next_) {
    if (SameLabels(*s, labels)) return s;
  }
  return nullptr;
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
  std::span<const uint32_t> syms = s.symbols();
  std::unique_lock<std::shared_mutex> lock(postings_mu_);
  for (size_t i = 0; i < syms.size(); i += 2) {
    // Interned views stay valid for the head's lifetime, so they can be the keys.
    insert(postings_[symbols_.Lookup(syms[i])][symbols_.Lookup(syms[i + 1])]);
  }
  insert(all_refs_);
}

uint64_t Head::SeriesHash(const Labels& labels) {
  // The packed form is canonical: equal label sets have equal bytes.
  return XXH3_64bits(labels.encoded().data(), labels.encoded().size());
}

absl::StatusOr<SeriesPtr> Head::GetOrCreate(const Labels& labels, uint64_t* seq) {
  uint64_t hash = SeriesHash(labels);
  Stripe& stripe = stripes_[hash % stripes_.size()];
  std::lock_guard<std::mutex> lock(stripe.mu);
  if (MemSeries* s = FindLocked(stripe, hash, labels)) return SeriesPtr(s);
  // A series the store knows keeps its ref and its last sample (for the order check).
  std::optional<SeriesStore::Known> known;
  if (store_ != nullptr) {
    STRATA_ASSIGN_OR_RETURN(known, store_->FindSeries(labels));
  }
  SeriesRef ref = known ? known->ref : next_ref_.fetch_add(1);
  if (wal_ != nullptr) {
    // Queued before the series is published (Insert): no appender can reach it, by labels
    // or by ref, before its record is queued, so the record precedes every sample that
    // names the ref.
    std::string rec;
    WalSeries ws{ref, labels.encoded()};
    EncodeWalSeries({&ws, 1}, &rec);
    *seq = std::max(*seq, wal_->Enqueue(WalRecordType::kSeries, rec));
  }
  return SeriesPtr(Insert(stripe, hash, ref, labels, known ? &*known : nullptr));
}

SeriesPtr Head::GetByRef(SeriesRef ref) {
  RefStripe& rs = ref_stripes_[ref % ref_stripes_.size()];
  std::lock_guard<SeriesMutex> lock(rs.mu);
  auto it = rs.by_ref.find(ref);
  return it == rs.by_ref.end() ? SeriesPtr() : SeriesPtr(it->second);
}

void Head::GetByRefs(std::span<const SeriesRef> refs, std::vector<SeriesPtr>* out) {
  out->assign(refs.size(), SeriesPtr());
  // Three stages, kAhead refs apart: prefetch the table slot of ref k + 2 * kAhead; find
  // ref k + kAhead and prefetch its series (not held: the lookup is repeated, from cache,
  // when it is taken); take ref k. Each stage under its stripe's lock.
  constexpr size_t kAhead = 4;
  const size_t n = refs.size();
  auto stripe = [&](size_t k) -> RefStripe& { return ref_stripes_[refs[k] % ref_stripes_.size()]; };
  for (size_t k = 0; k < n + 2 * kAhead; ++k) {
    if (k < n) {
      RefStripe& rs = stripe(k);
      std::lock_guard<SeriesMutex> lock(rs.mu);
      rs.by_ref.prefetch(refs[k]);
    }
    if (k >= kAhead && k - kAhead < n) {
      RefStripe& rs = stripe(k - kAhead);
      std::lock_guard<SeriesMutex> lock(rs.mu);
      if (auto it = rs.by_ref.find(refs[k - kAhead]); it != rs.by_ref.end()) {
        PrefetchSeries(it->second);
      }
    }
    if (k >= 2 * kAhead) {
      const size_t i = k - 2 * kAhead;
      RefStripe& rs = stripe(i);
      std::lock_guard<SeriesMutex> lock(rs.mu);
      if (auto it = rs.by_ref.find(refs[i]); it != rs.by_ref.end()) {
        (*out)[i] = SeriesPtr(it->second);
      }
    }
  }
}

void Head::PrefetchForRead(MemSeries& s) {
  __builtin_prefetch(s.symbols().data());
  std::lock_guard<SeriesMutex> lock(s.mu);
  s.open.PrefetchBytes();
  __builtin_prefetch(s.closed.data());
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
  // Samples appended to a series after it is visited below lower flush_min_; the visits
  // see everything appended before.
  flush_min_.store(std::numeric_limits<Timestamp>::max());
  Timestamp left_min = std::numeric_limits<Timestamp>::max();
  for (Stripe& stripe : stripes_) {
    std::vector<SeriesPtr> series;
    {
      std::lock_guard<std::mutex> lock(stripe.mu);
      for (auto& [hash, first] : stripe.by_hash) {
        for (MemSeries* s = first; s != nullptr; s = s->hash_next_) series.emplace_back(s);
      }
    }
    for (SeriesPtr& s : series) {
      std::lock_guard<SeriesMutex> lock(s->mu);
      if (s->open.num_samples() > 0 && (cut_open || s->open.last_timestamp() < idle_before)) {
        CutOpenLocked(*s);
      }
      // What stays in the head after this flush: the open chunk (closed ones are written).
      if (s->open.num_samples() > 0) left_min = std::min(left_min, s->open_mint);
      if (s->closed.empty() && s->persisted) continue;
      // At most 65,535 chunks per flush (`flushing` is 16 bits); the rest wait for the next.
      const size_t num = std::min<size_t>(s->closed.size(), UINT16_MAX);
      FlushItem item{s, !s->persisted, num, {}};
      s->flushing = static_cast<uint16_t>(num);
      for (size_t i = 0; i < num; ++i) item.chunks.push_back(s->closed[i].chunk);
      if (num < s->closed.size()) left_min = std::min(left_min, s->closed[num].chunk.mint);
      items.push_back(std::move(item));
    }
  }
  collected_min_ = left_min;
  return items;
}

void Head::MarkFlushed(const std::vector<FlushItem>& items) {
  for (const FlushItem& item : items) {
    MemSeries& s = *item.series;
    std::lock_guard<SeriesMutex> lock(s.mu);
    for (size_t i = 0; i < item.num_closed; ++i) {
      s.durable_max = std::max(s.durable_max, s.closed[i].chunk.maxt);
    }
    s.closed.erase(s.closed.begin(), s.closed.begin() + item.num_closed);
    s.flushing = 0;
    num_chunks_ -= item.num_closed;
    s.persisted = true;
  }
  // An append that lowered min_time_ before this store lowered flush_min_ before that, so
  // the load below sees it; a later one lowers min_time_ itself.
  min_time_.store(collected_min_);
  LowerMinTime(flush_min_.load());
}

int64_t Head::LowestNeededSegment() {
  int64_t lowest = std::numeric_limits<int64_t>::max();
  for (Stripe& stripe : stripes_) {
    std::lock_guard<std::mutex> lock(stripe.mu);
    for (auto& [hash, first] : stripe.by_hash) {
      for (MemSeries* s = first; s != nullptr; s = s->hash_next_) {
        std::lock_guard<SeriesMutex> series_lock(s->mu);
        for (const MemSeries::ClosedChunk& c : s->closed) {
          lowest = std::min(lowest, c.wal_segment);
        }
        if (s->open.num_samples() > 0) lowest = std::min(lowest, s->open_segment);
      }
    }
  }
  return lowest;
}

int64_t Head::RemoveStaleSeries(Timestamp before) {
  std::vector<SeriesPtr> removed;
  for (Stripe& stripe : stripes_) {
    std::lock_guard<std::mutex> lock(stripe.mu);
    const size_t first_removed = removed.size();
    for (auto it = stripe.by_hash.begin(); it != stripe.by_hash.end();) {
      MemSeries** link = &it->second;
      while (*link != nullptr) {
        MemSeries* s = *link;
        bool stale;
        {
          std::lock_guard<SeriesMutex> series_lock(s->mu);
          stale = s->persisted && !s->replay_lookup && s->closed.empty() &&
                  s->open.num_samples() == 0 && s->has_last && s->last_t < before;
          // Under the series lock: an appender that found the series before now sees the
          // flag once it holds the lock, and looks the labels up again.
          if (stale) s->removed = true;
        }
        if (stale) {
          *link = s->hash_next_;
          s->hash_next_ = nullptr;
          removed.emplace_back(s);
        } else {
          link = &s->hash_next_;
        }
      }
      if (it->second == nullptr) {
        stripe.by_hash.erase(it++);
      } else {
        ++it;
      }
    }
    // Still under the stripe lock, so no series with the same labels (same stripe) can be
    // created meanwhile and take the ref first.
    for (size_t i = first_removed; i < removed.size(); ++i) {
      MemSeries* s = removed[i].get();
      RefStripe& rs = ref_stripes_[s->ref % ref_stripes_.size()];
      std::lock_guard<SeriesMutex> ref_lock(rs.mu);
      auto rit = rs.by_ref.find(s->ref);
      if (rit != rs.by_ref.end() && rit->second == s) {
        rs.by_ref.erase(rit);
        SeriesPtr::Release(s);
      }
    }
  }
  if (removed.empty()) return 0;
  num_series_ -= static_cast<int64_t>(removed.size());

  std::unique_lock<std::shared_mutex> lock(postings_mu_);
  // A series recreated since (same labels, same ref) keeps its postings: Insert adds to
  // by_ref before it waits for postings_mu_, so it is either seen here or adds them after.
  absl::flat_hash_set<SeriesRef> gone;
  for (const SeriesPtr& s : removed) {
    if (GetByRef(s->ref) == nullptr) gone.insert(s->ref);
  }
  if (gone.empty()) return static_cast<int64_t>(removed.size());
  auto drop = [&](std::vector<SeriesRef>& list) {
    std::erase_if(list, [&](SeriesRef r) { return gone.contains(r); });
  };
  absl::flat_hash_set<std::vector<SeriesRef>*> touched;
  for (const SeriesPtr& s : removed) {
    std::span<const uint32_t> syms = s->symbols();
    for (size_t i = 0; i < syms.size(); i += 2) {
      auto name_it = postings_.find(symbols_.Lookup(syms[i]));
      if (name_it == postings_.end()) continue;
      auto value_it = name_it->second.find(symbols_.Lookup(syms[i + 1]));
      if (value_it != name_it->second.end()) touched.insert(&value_it->second);
    }
  }
  for (std::vector<SeriesRef>* list : touched) drop(*list);
  drop(all_refs_);
  // Names and values no series has any more go too (erasing does not move other entries,
  // but the pointers above are not used past this point anyway).
  for (const SeriesPtr& s : removed) {
    std::span<const uint32_t> syms = s->symbols();
    for (size_t i = 0; i < syms.size(); i += 2) {
      auto name_it = postings_.find(symbols_.Lookup(syms[i]));
      if (name_it == postings_.end()) continue;
      auto value_it = name_it->second.find(symbols_.Lookup(syms[i + 1]));
      if (value_it != name_it->second.end() && value_it->second.empty()) {
        name_it->second.erase(value_it);
      }
      if (name_it->second.empty()) postings_.erase(name_it);
    }
  }
  return static_cast<int64_t>(removed.size());
}

}  // namespace strata
