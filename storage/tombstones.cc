#include "storage/tombstones.h"

#include <algorithm>
#include <limits>

#include "src/strings.h"
#include "storage/coding.h"

namespace strata {

void Intervals::Add(TimeInterval iv) {
  if (iv.mint > iv.maxt) return;
  // Merge with every interval that overlaps or touches [mint, maxt].
  auto touches = [](const TimeInterval& a, const TimeInterval& b) {
    bool a_before = a.maxt < b.mint && a.maxt + 1 < b.mint;
    bool b_before = b.maxt < a.mint && b.maxt + 1 < a.mint;
    return !a_before && !b_before;
  };
  std::vector<TimeInterval> out;
  out.reserve(list_.size() + 1);
  bool placed = false;
  for (const TimeInterval& cur : list_) {
    if (touches(cur, iv)) {
      iv.mint = std::min(iv.mint, cur.mint);
      iv.maxt = std::max(iv.maxt, cur.maxt);
      continue;
    }
    if (!placed && cur.mint > iv.maxt) {
      out.push_back(iv);
      placed = true;
    }
    out.push_back(cur);
  }
  if (!placed) out.push_back(iv);
  list_ = std::move(out);
}

bool Intervals::Contains(Timestamp t) const { return Overlaps(t, t); }

bool Intervals::Overlaps(Timestamp mint, Timestamp maxt) const {
  // The first interval ending at or after mint.
  auto it = std::lower_bound(list_.begin(), list_.end(), mint,
                             [](const TimeInterval& iv, Timestamp t) { return iv.maxt < t; });
  return it != list_.end() && it->mint <= maxt;
}

std::string Intervals::Encode() const {
  std::string out;
  coding::PutUvarint(&out, list_.size());
  for (const TimeInterval& iv : list_) {
    coding::PutInt64BE(&out, iv.mint);
    coding::PutInt64BE(&out, iv.maxt);
  }
  return out;
}

absl::StatusOr<Intervals> Intervals::Decode(std::string_view value) {
  uint64_t n;
  if (!coding::GetUvarint(&value, &n) || value.size() != n * 16) {
    return absl::DataLossError("malformed tombstone value");
  }
  Intervals out;
  for (uint64_t i = 0; i < n; ++i) {
    TimeInterval iv{coding::DecodeInt64BE(value.data()), coding::DecodeInt64BE(value.data() + 8)};
    value.remove_prefix(16);
    if (iv.mint > iv.maxt) return absl::DataLossError("malformed tombstone interval");
    out.Add(iv);
  }
  return out;
}

void EncodeWalTombstones(std::span<const Stone> stones, std::string* out) {
  coding::PutUvarint(out, stones.size());
  for (const Stone& s : stones) {
    coding::PutUvarint(out, s.ref);
    coding::PutVarint(out, s.interval.mint);
    coding::PutVarint(out, s.interval.maxt);
  }
}

absl::Status DecodeWalTombstones(std::string_view payload, std::vector<Stone>* out) {
  out->clear();
  uint64_t n;
  if (!coding::GetUvarint(&payload, &n) || n > payload.size()) {
    return absl::DataLossError("malformed WAL tombstones record");
  }
  out->reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    Stone s;
    if (!coding::GetUvarint(&payload, &s.ref) || !coding::GetVarint(&payload, &s.interval.mint) ||
        !coding::GetVarint(&payload, &s.interval.maxt) || s.interval.mint > s.interval.maxt) {
      return absl::DataLossError("malformed WAL tombstones record");
    }
    out->push_back(s);
  }
  if (!payload.empty()) return absl::DataLossError("trailing bytes in WAL tombstones record");
  return absl::OkStatus();
}

std::shared_ptr<const TombstoneMap> TombstoneSet::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return map_;
}

void TombstoneSet::Add(std::span<const Stone> stones, bool persisted) {
  if (stones.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto next = std::make_shared<TombstoneMap>(*map_);
  for (const Stone& s : stones) {
    Intervals& iv = (*next)[s.ref];
    num_intervals_ -= static_cast<int64_t>(iv.size());
    iv.Add(s.interval);
    num_intervals_ += static_cast<int64_t>(iv.size());
    if (!persisted) dirty_.insert(s.ref);
  }
  map_ = std::move(next);
}

void TombstoneSet::Remove(std::span<const SeriesRef> refs) {
  if (refs.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto next = std::make_shared<TombstoneMap>(*map_);
  for (SeriesRef ref : refs) {
    auto it = next->find(ref);
    if (it != next->end()) {
      num_intervals_ -= static_cast<int64_t>(it->second.size());
      next->erase(it);
    }
    dirty_.erase(ref);
  }
  map_ = std::move(next);
}

std::vector<std::pair<SeriesRef, Intervals>> TombstoneSet::TakeDirty() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<SeriesRef, Intervals>> out;
  out.reserve(dirty_.size());
  for (SeriesRef ref : dirty_) {
    auto it = map_->find(ref);
    out.emplace_back(ref, it != map_->end() ? it->second : Intervals());
  }
  dirty_.clear();
  return out;
}

void TombstoneSet::MarkDirty(std::span<const SeriesRef> refs) {
  std::lock_guard<std::mutex> lock(mu_);
  dirty_.insert(refs.begin(), refs.end());
}

bool TombstoneSet::empty() const {
  std::lock_guard<std::mutex> lock(mu_);
  return map_->empty();
}

int64_t TombstoneSet::num_series() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(map_->size());
}

int64_t TombstoneSet::num_intervals() const {
  std::lock_guard<std::mutex> lock(mu_);
  return num_intervals_;
}

bool TombstoneFilterIterator::Skip(bool ok) {
  const std::vector<TimeInterval>& list = deleted_.list();
  while (ok) {
    Timestamp t = inner_->At().t;
    while (idx_ < list.size() && list[idx_].maxt < t) ++idx_;
    if (idx_ == list.size() || list[idx_].mint > t) return true;
    // Inside a deleted interval: jump past its end.
    if (list[idx_].maxt == std::numeric_limits<Timestamp>::max()) return false;
    ok = inner_->Seek(list[idx_].maxt + 1);
  }
  return false;
}

}  // namespace strata
