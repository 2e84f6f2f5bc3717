// Tombstones: per series, the time intervals whose samples were deleted (DeleteSeries) and
// are hidden from every read until CleanTombstones rewrites the stored chunks.
//
// A deletion is clamped to the samples the series had when it was made (as Prometheus does),
// so samples appended later (always newer than the series' last sample) are never hidden.
// Formats: the WAL record in docs/format/wal.md (type 3), the RocksDB family in
// docs/format/keys.md (`tombstones`).
#ifndef STRATA_STORAGE_TOMBSTONES_H_
#define STRATA_STORAGE_TOMBSTONES_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "src/sample.h"
#include "storage/querier.h"
#include "storage/wal.h"

namespace strata {

// A closed interval [mint, maxt] of sample times.
struct TimeInterval {
  Timestamp mint = 0;
  Timestamp maxt = 0;
  friend bool operator==(const TimeInterval&, const TimeInterval&) = default;
};

// Sorted, disjoint, non-adjacent intervals.
class Intervals {
 public:
  Intervals() = default;
  // Adds [mint, maxt], merging with overlapping or adjacent intervals. Ignores mint > maxt.
  void Add(TimeInterval iv);
  bool Contains(Timestamp t) const;
  bool Overlaps(Timestamp mint, Timestamp maxt) const;
  bool empty() const { return list_.empty(); }
  size_t size() const { return list_.size(); }
  const std::vector<TimeInterval>& list() const { return list_; }
  friend bool operator==(const Intervals&, const Intervals&) = default;

  // RocksDB value: uvarint count, then per interval mint and maxt as 8-byte big-endian
  // sign-flipped integers (the store's i64).
  std::string Encode() const;
  static absl::StatusOr<Intervals> Decode(std::string_view value);

 private:
  std::vector<TimeInterval> list_;
};

// One series' deleted interval, as logged in the WAL.
struct Stone {
  SeriesRef ref = 0;
  TimeInterval interval;
};

// WAL record payload (type kTombstones): uvarint count, then per stone uvarint ref,
// varint mint, varint maxt.
void EncodeWalTombstones(std::span<const Stone> stones, std::string* out);
absl::Status DecodeWalTombstones(std::string_view payload, std::vector<Stone>* out);

using TombstoneMap = absl::flat_hash_map<SeriesRef, Intervals>;

// The database's tombstones. Thread-safe. Readers take an immutable snapshot (a shared
// pointer to the whole map, replaced on every change): deletions are rare, reads many.
class TombstoneSet {
 public:
  TombstoneSet() : map_(std::make_shared<const TombstoneMap>()) {}

  std::shared_ptr<const TombstoneMap> Snapshot() const;
  // Adds intervals; the refs become dirty (not yet written to RocksDB) unless `persisted`.
  void Add(std::span<const Stone> stones, bool persisted);
  // Drops every interval of `refs` and forgets them as dirty.
  void Remove(std::span<const SeriesRef> refs);
  // The dirty refs with their current intervals, then clears the dirty set. Put them back
  // with MarkDirty when writing them failed.
  std::vector<std::pair<SeriesRef, Intervals>> TakeDirty();
  void MarkDirty(std::span<const SeriesRef> refs);

  bool empty() const;
  int64_t num_series() const;
  int64_t num_intervals() const;

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const TombstoneMap> map_;
  absl::flat_hash_set<SeriesRef> dirty_;
  int64_t num_intervals_ = 0;
};

// Skips the samples of `inner` that fall in `deleted`. Next/Seek keep their contracts.
class TombstoneFilterIterator final : public SampleIterator {
 public:
  TombstoneFilterIterator(std::unique_ptr<SampleIterator> inner, Intervals deleted)
      : inner_(std::move(inner)), deleted_(std::move(deleted)) {}
  bool Next() override { return Skip(inner_->Next()); }
  bool Seek(Timestamp t) override { return Skip(inner_->Seek(t)); }
  Sample At() const override { return inner_->At(); }
  absl::Status status() const override { return inner_->status(); }

 private:
  bool Skip(bool ok);

  std::unique_ptr<SampleIterator> inner_;
  Intervals deleted_;
  size_t idx_ = 0;  // intervals before this one end before the current sample
};

}  // namespace strata

#endif  // STRATA_STORAGE_TOMBSTONES_H_
