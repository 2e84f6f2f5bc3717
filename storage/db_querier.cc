// The querier over head + RocksDB store.
#include <algorithm>
#include <cassert>
#include <set>

#include "absl/container/flat_hash_map.h"
#include "src/status.h"
#include "storage/chunk_iterator.h"
#include "storage/db.h"

namespace strata {
namespace {

struct SelectedSeries {
  Labels labels;
  std::vector<ChunkRef> chunks;
  Timestamp maxt = std::numeric_limits<Timestamp>::max();  // the series' own upper bound
  Intervals deleted;                                       // tombstones: samples hidden
};

// An iterator over `chunks` in [mint, maxt] without the `deleted` intervals.
std::unique_ptr<SampleIterator> MakeSamples(std::vector<ChunkRef> chunks, Intervals deleted,
                                            Timestamp mint, Timestamp maxt) {
  auto it = std::make_unique<ChunkListIterator>(std::move(chunks), mint, maxt);
  if (deleted.empty()) return it;
  return std::make_unique<TombstoneFilterIterator>(std::move(it), std::move(deleted));
}

std::unique_ptr<SampleIterator> SeriesSamples(const SelectedSeries& s, Timestamp mint,
                                              Timestamp maxt) {
  return MakeSamples(s.chunks, s.deleted, mint, std::min(maxt, s.maxt));
}

// The same, moving the series' chunk list and intervals into the iterator.
std::unique_ptr<SampleIterator> TakeSeriesSamples(SelectedSeries& s, Timestamp mint,
                                                  Timestamp maxt) {
  return MakeSamples(std::move(s.chunks), std::move(s.deleted), mint, std::min(maxt, s.maxt));
}

class ChunkSeriesSet final : public SeriesSet {
 public:
  ChunkSeriesSet(std::vector<SelectedSeries> series, Timestamp mint, Timestamp maxt)
      : series_(std::move(series)), mint_(mint), maxt_(maxt) {}
  bool Next() override {
    if (pos_ < series_.size() && started_) ++pos_;
    started_ = true;
    return pos_ < series_.size();
  }
  const Labels& labels() const override { return series_[pos_].labels; }
  Labels TakeLabels() override { return std::move(series_[pos_].labels); }
  std::unique_ptr<SampleIterator> Samples() const override {
    return SeriesSamples(series_[pos_], mint_, maxt_);
  }
  std::unique_ptr<SampleIterator> TakeSamples() override {
    return TakeSeriesSamples(series_[pos_], mint_, maxt_);
  }
  absl::Status status() const override { return absl::OkStatus(); }

 private:
  std::vector<SelectedSeries> series_;
  Timestamp mint_, maxt_;
  size_t pos_ = 0;
  bool started_ = false;
};

class StorageQuerier final : public Querier {
 public:
  StorageQuerier(Head* head, ChunkStore* store, std::shared_ptr<const TombstoneMap> tombstones,
                 Timestamp mint, Timestamp maxt)
      : head_(head), store_(store), tombstones_(std::move(tombstones)), mint_(mint), maxt_(maxt) {}

  absl::StatusOr<std::unique_ptr<SeriesSet>> Select(const std::vector<LabelMatcher>& matchers,
                                                    const SelectHints& hints) override {
    bool any_nonempty = false;
    for (const auto& m : matchers) any_nonempty |= !m.MatchesEmpty();
    if (!any_nonempty) {
      return absl::InvalidArgumentError(
          "vector selector must contain at least one non-empty matcher");
    }
    Timestamp mint = mint_, maxt = maxt_;
    if (hints.mint != 0 || hints.maxt != 0) {
      mint = std::max(mint, hints.mint);
      maxt = std::min(maxt, hints.maxt);
    }
    STRATA_ASSIGN_OR_RETURN(std::vector<SelectedSeries> series,
                            SelectSeries(matchers, mint, maxt, hints.sorted, hints.newest_only));
    return std::unique_ptr<SeriesSet>(
        std::make_unique<ChunkSeriesSet>(std::move(series), mint, maxt));
  }

  absl::StatusOr<std::vector<std::string>> LabelNames(
      const std::vector<LabelMatcher>& matchers) override {
    std::set<std::string, std::less<>> names;
    // The indexes still list series whose samples are all deleted: with tombstones, look
    // at the samples.
    if (matchers.empty() && tombstones_->empty()) {
      if (head_->MayHaveSamplesIn(mint_, maxt_)) {
        STRATA_ASSIGN_OR_RETURN(auto head_names, head_->Index()->LabelNames());
        names.insert(head_names.begin(), head_names.end());
      }
      for (int64_t p : store_->Partitions(mint_, maxt_)) {
        STRATA_ASSIGN_OR_RETURN(auto part_names, store_->PartitionIndex(p)->LabelNames());
        names.insert(part_names.begin(), part_names.end());
      }
    } else {
      STRATA_ASSIGN_OR_RETURN(
          std::vector<SelectedSeries> series,
          SelectSeries(matchers, mint_, maxt_, /*sorted=*/false, /*newest_only=*/false));
      for (const auto& s : series) {
        for (const LabelView& l : s.labels) names.emplace(l.name);
      }
    }
    return std::vector<std::string>(names.begin(), names.end());
  }

  absl::StatusOr<std::vector<std::string>> LabelValues(
      std::string_view name, const std::vector<LabelMatcher>& matchers) override {
    std::set<std::string, std::less<>> values;
    if (matchers.empty() && tombstones_->empty()) {
      if (head_->MayHaveSamplesIn(mint_, maxt_)) {
        STRATA_ASSIGN_OR_RETURN(auto head_values, head_->Index()->LabelValues(name, ""));
        values.insert(head_values.begin(), head_values.end());
      }
      for (int64_t p : store_->Partitions(mint_, maxt_)) {
        STRATA_ASSIGN_OR_RETURN(auto part_values, store_->PartitionIndex(p)->LabelValues(name, ""));
        values.insert(part_values.begin(), part_values.end());
      }
    } else {
      STRATA_ASSIGN_OR_RETURN(
          std::vector<SelectedSeries> series,
          SelectSeries(matchers, mint_, maxt_, /*sorted=*/false, /*newest_only=*/false));
      for (const auto& s : series) {
        std::string_view v = s.labels.Get(name);
        if (!v.empty()) values.emplace(v);
      }
    }
    return std::vector<std::string>(values.begin(), values.end());
  }

 private:
  // Series matching every matcher with at least one sample in [mint, maxt], sorted by labels
  // or, when not `sorted`, by ref. With `newest_only`, a series whose newest sample is in
  // the range and in its open head chunk comes with that sample alone: no chunk copied or
  // decoded, no store read.
  absl::StatusOr<std::vector<SelectedSeries>> SelectSeries(
      const std::vector<LabelMatcher>& matchers, Timestamp mint, Timestamp maxt, bool sorted,
      bool newest_only) {
    if (mint > maxt) return std::vector<SelectedSeries>();
    // Series in the order found: the head's postings come in ref order, so a query the
    // store has nothing for needs neither a map nor a sort.
    std::vector<SelectedSeries> out;
    std::vector<SeriesRef> refs;  // of `out`
    // The head first: a chunk that a concurrent flush moves to the store is then seen at
    // least once (twice at worst, and the iterator drops the repeat). A series the head
    // knows is cut at its newest sample as of the head read, so that chunks flushed while
    // the store is read (some partitions before, some after) cannot leave a gap.
    std::vector<std::pair<SeriesRef, Timestamp>> head_last;  // by ref
    {
      auto index = head_->Index();
      STRATA_ASSIGN_OR_RETURN(auto postings, PostingsForMatchers(*index, matchers));
      STRATA_ASSIGN_OR_RETURN(std::vector<SeriesRef> head_refs, ExpandPostings(*postings));
      // In batches small enough that a batch's series are still in the cache when read.
      constexpr size_t kBatch = 32, kAhead = 4;
      std::vector<SeriesPtr> series;
      for (size_t i = 0; i < head_refs.size(); ++i) {
        if (i % kBatch == 0) {
          head_->GetByRefs(std::span<const SeriesRef>(head_refs).subspan(
                               i, std::min(kBatch, head_refs.size() - i)),
                           &series);
        }
        const size_t b = i % kBatch;
        if (b + kAhead < series.size() && series[b + kAhead] != nullptr) {
          Head::PrefetchForRead(*series[b + kAhead]);
        }
        SeriesPtr s = std::move(series[b]);
        if (s == nullptr) continue;
        if (newest_only && !tombstones_->contains(s->ref)) {
          std::optional<Sample> newest = head_->NewestInOpenChunk(*s);
          if (newest && newest->t >= mint && newest->t <= maxt) {
            ChunkRef c;
            c.mint = c.maxt = newest->t;
            c.samples = std::make_shared<const std::vector<Sample>>(1, *newest);
            // Nothing older is needed from the store.
            head_last.emplace_back(s->ref, mint - 1);
            out.push_back({head_->LabelsOf(*s), {std::move(c)}, newest->t, Intervals()});
            refs.push_back(s->ref);
            continue;
          }
        }
        Timestamp last;
        std::vector<ChunkRef> chunks = head_->Chunks(*s, mint, maxt, &last);
        head_last.emplace_back(s->ref, last);
        if (chunks.empty()) continue;
        out.push_back({head_->LabelsOf(*s), std::move(chunks), last, Intervals()});
        refs.push_back(s->ref);
      }
    }
    // Only the partitions that overlap the range, listed after the head was read (a flush
    // meanwhile may have made the partition its chunks went to).
    const std::vector<int64_t> partitions = store_->Partitions(mint, maxt);
    if (!partitions.empty()) {
      // In ref order (postings are): the binary search below depends on it.
      assert(std::is_sorted(head_last.begin(), head_last.end()));
      absl::flat_hash_map<SeriesRef, size_t> found;  // ref -> index in `out`
      found.reserve(out.size());
      for (size_t i = 0; i < out.size(); ++i) found.emplace(refs[i], i);
      for (int64_t p : partitions) {
        auto index = store_->PartitionIndex(p);
        STRATA_ASSIGN_OR_RETURN(auto postings, PostingsForMatchers(*index, matchers));
        // Postings come in ref order, as the reader reads best.
        std::unique_ptr<ChunkStore::PartitionReader> reader = store_->ReadPartition(p);
        while (postings->Next()) {
          SeriesRef ref = postings->At();
          Timestamp limit = maxt;
          auto hl = std::lower_bound(head_last.begin(), head_last.end(),
                                     std::pair<SeriesRef, Timestamp>(ref, INT64_MIN));
          if (hl != head_last.end() && hl->first == ref) limit = std::min(limit, hl->second);
          if (mint > limit) continue;
          STRATA_ASSIGN_OR_RETURN(std::vector<ChunkRef> chunks, reader->Chunks(ref, mint, limit));
          if (chunks.empty()) continue;
          auto [it, added] = found.try_emplace(ref, out.size());
          if (added) {
            out.emplace_back();
            refs.push_back(ref);
          }
          SelectedSeries& entry = out[it->second];
          entry.maxt = std::min(entry.maxt, limit);
          if (entry.labels.empty()) {
            if (SeriesPtr s = head_->GetByRef(ref)) {
              entry.labels = head_->LabelsOf(*s);
            } else {
              STRATA_ASSIGN_OR_RETURN(std::optional<Labels> labels, store_->SeriesLabels(ref));
              if (!labels) {
                return absl::DataLossError(fmt::format("series {} has chunks but no labels", ref));
              }
              entry.labels = std::move(*labels);
            }
          }
          entry.chunks.insert(entry.chunks.end(), chunks.begin(), chunks.end());
        }
        STRATA_RETURN_IF_ERROR(postings->status());
      }
    }
    // Keeps the series with a sample in the range, in place.
    size_t kept = 0;
    for (size_t i = 0; i < out.size(); ++i) {
      SelectedSeries& s = out[i];
      bool keep;
      if (auto t = tombstones_->find(refs[i]); t != tombstones_->end()) {
        // Deleted samples: only decoding tells whether one is left in the range.
        s.deleted = t->second;
        std::unique_ptr<SampleIterator> it = SeriesSamples(s, mint, maxt);
        keep = it->Next();
        STRATA_RETURN_IF_ERROR(it->status());
      } else {
        // Chunks overlap the range, but a sample inside it is needed. A chunk's first and
        // last samples are at its mint and maxt, so when either lies in the range there is
        // one; only a chunk that spans the whole range may have none inside it (a gap), and
        // only then is it decoded to find out.
        const Timestamp limit = std::min(maxt, s.maxt);
        bool maybe = false;
        keep = false;
        for (const ChunkRef& c : s.chunks) {
          if (c.maxt < mint || c.mint > limit) continue;
          if (c.mint >= mint || c.maxt <= limit) {
            keep = true;
            break;
          }
          maybe = true;
        }
        if (!keep && maybe) {
          ChunkListIterator it(s.chunks, mint, limit);
          keep = it.Next();
          STRATA_RETURN_IF_ERROR(it.status());
        }
      }
      if (!keep) continue;
      if (kept != i) {
        out[kept] = std::move(s);
        refs[kept] = refs[i];
      }
      ++kept;
    }
    out.resize(kept);
    refs.resize(kept);
    const bool in_order = !sorted && std::is_sorted(refs.begin(), refs.end());
    if (in_order) return out;
    // Sorted through indexes: each swap of a SelectedSeries moves its labels, chunk list and
    // intervals, which cost more than the comparisons.
    std::vector<uint32_t> order(out.size());
    for (size_t i = 0; i < out.size(); ++i) order[i] = static_cast<uint32_t>(i);
    if (sorted) {
      std::sort(order.begin(), order.end(),
                [&](uint32_t a, uint32_t b) { return out[a].labels < out[b].labels; });
    } else {
      std::sort(order.begin(), order.end(),
                [&](uint32_t a, uint32_t b) { return refs[a] < refs[b]; });
    }
    std::vector<SelectedSeries> result;
    result.reserve(out.size());
    for (uint32_t i : order) result.push_back(std::move(out[i]));
    return result;
  }

  Head* head_;
  ChunkStore* store_;
  std::shared_ptr<const TombstoneMap> tombstones_;  // as of the querier's creation
  Timestamp mint_, maxt_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Querier>> Storage::MakeQuerier(Timestamp mint, Timestamp maxt) {
  if (head_ == nullptr) return absl::FailedPreconditionError("storage is closed");
  return std::unique_ptr<Querier>(std::make_unique<StorageQuerier>(
      head_.get(), store_.get(), tombstones_.Snapshot(), std::max(mint, RetentionStart()), maxt));
}

}  // namespace strata
