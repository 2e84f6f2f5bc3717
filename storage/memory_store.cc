#include "storage/memory_store.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <set>
#include <string>

#include "src/strings.h"

namespace strata {
namespace {

bool SameValue(double a, double b) {
  if (std::isnan(a) && std::isnan(b)) return IsStaleNaN(a) == IsStaleNaN(b);
  return std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b);
}

class VectorIterator : public SampleIterator {
 public:
  VectorIterator(std::shared_ptr<const std::vector<Sample>> samples, Timestamp mint, Timestamp maxt)
      : samples_(std::move(samples)) {
    begin_ = std::lower_bound(samples_->begin(), samples_->end(), mint,
                              [](const Sample& s, Timestamp t) { return s.t < t; }) -
             samples_->begin();
    end_ = std::upper_bound(samples_->begin(), samples_->end(), maxt,
                            [](Timestamp t, const Sample& s) { return t < s.t; }) -
           samples_->begin();
    pos_ = begin_ - 1;
  }

  bool Next() override {
    if (pos_ < end_) ++pos_;
    return pos_ < end_;
  }
  bool Seek(Timestamp t) override {
    if (pos_ < begin_) pos_ = begin_;
    if (pos_ >= end_) return false;
    if ((*samples_)[pos_].t >= t) return true;
    pos_ = std::lower_bound(samples_->begin() + pos_, samples_->begin() + end_, t,
                            [](const Sample& s, Timestamp x) { return s.t < x; }) -
           samples_->begin();
    return pos_ < end_;
  }
  Sample At() const override { return (*samples_)[pos_]; }
  absl::Status status() const override { return absl::OkStatus(); }

  absl::Status AppendRange(Timestamp mint, Timestamp maxt, std::vector<Sample>* out) override {
    auto first = samples_->begin() + begin_;
    auto last = samples_->begin() + end_;
    first =
        std::lower_bound(first, last, mint, [](const Sample& s, Timestamp t) { return s.t < t; });
    last =
        std::upper_bound(first, last, maxt, [](Timestamp t, const Sample& s) { return t < s.t; });
    out->insert(out->end(), first, last);
    pos_ = end_;
    return absl::OkStatus();
  }

 private:
  std::shared_ptr<const std::vector<Sample>> samples_;
  ptrdiff_t begin_ = 0;
  ptrdiff_t end_ = 0;
  ptrdiff_t pos_ = -1;
};

struct SelectedSeries {
  Labels labels;
  std::shared_ptr<const std::vector<Sample>> samples;
};

class VectorSeriesSet : public SeriesSet {
 public:
  VectorSeriesSet(std::vector<SelectedSeries> series, Timestamp mint, Timestamp maxt)
      : series_(std::move(series)), mint_(mint), maxt_(maxt) {}
  bool Next() override {
    if (pos_ >= series_.size()) return false;
    ++pos_;
    return true;
  }
  const Labels& labels() const override { return series_[pos_ - 1].labels; }
  std::unique_ptr<SampleIterator> Samples() const override {
    return std::make_unique<VectorIterator>(series_[pos_ - 1].samples, mint_, maxt_);
  }
  absl::Status status() const override { return absl::OkStatus(); }

 private:
  std::vector<SelectedSeries> series_;
  Timestamp mint_, maxt_;
  size_t pos_ = 0;  // 1-based index of the current series; 0 before the first Next()
};

class MemoryQuerier : public Querier {
 public:
  MemoryQuerier(MemoryStore::SeriesMap snapshot, Timestamp mint, Timestamp maxt)
      : series_(std::move(snapshot)), mint_(mint), maxt_(maxt) {}

  absl::StatusOr<std::unique_ptr<SeriesSet>> Select(const std::vector<LabelMatcher>& matchers,
                                                    const SelectHints& hints) override {
    bool any_nonempty = false;
    for (const auto& m : matchers) any_nonempty |= !m.MatchesEmpty();
    if (!any_nonempty) {
      return absl::InvalidArgumentError(
          "vector selector must contain at least one non-empty matcher");
    }
    Timestamp mint = std::max(mint_, hints.mint);
    Timestamp maxt = std::min(maxt_, hints.maxt);
    if (hints.mint == 0 && hints.maxt == 0) {
      mint = mint_;
      maxt = maxt_;
    }
    std::vector<SelectedSeries> out;
    for (const auto& [labels, samples] : series_) {
      if (!MatchesAll(matchers, labels)) continue;
      if (!hints.series_only) {
        auto it = std::lower_bound(samples->begin(), samples->end(), mint,
                                   [](const Sample& s, Timestamp t) { return s.t < t; });
        if (it == samples->end() || it->t > maxt) continue;
      }
      out.push_back({labels, samples});
    }
    return std::unique_ptr<SeriesSet>(
        std::make_unique<VectorSeriesSet>(std::move(out), mint, maxt));
  }

  absl::StatusOr<std::vector<std::string>> LabelNames(
      const std::vector<LabelMatcher>& matchers) override {
    std::set<std::string, std::less<>> names;
    for (const auto& [labels, samples] : series_) {
      if (!MatchesAll(matchers, labels)) continue;
      for (const LabelView& l : labels) names.emplace(l.name);
    }
    return std::vector<std::string>(names.begin(), names.end());
  }

  absl::StatusOr<std::vector<std::string>> LabelValues(
      std::string_view name, const std::vector<LabelMatcher>& matchers) override {
    std::set<std::string, std::less<>> values;
    for (const auto& [labels, samples] : series_) {
      if (!MatchesAll(matchers, labels)) continue;
      std::string_view v = labels.Get(name);
      if (!v.empty()) values.emplace(v);
    }
    return std::vector<std::string>(values.begin(), values.end());
  }

 private:
  MemoryStore::SeriesMap series_;
  Timestamp mint_, maxt_;
};

}  // namespace

absl::Status MemoryStore::Append(const Labels& labels, Sample s) { return AppendMany(labels, {s}); }

absl::Status MemoryStore::AppendMany(const Labels& labels, const std::vector<Sample>& samples) {
  if (labels.empty()) return absl::InvalidArgumentError("series without labels");
  absl::MutexLock lock(&mu_);
  auto it = series_.find(labels);
  std::vector<Sample> merged;
  if (it != series_.end()) merged = *it->second;
  merged.reserve(merged.size() + samples.size());
  for (const Sample& s : samples) {
    if (!merged.empty()) {
      const Sample& last = merged.back();
      if (s.t < last.t) {
        return absl::InvalidArgumentError(
            fmt::format("out of order sample for series {}: {} is older than {}", labels.ToString(),
                        s.t, last.t));
      }
      if (s.t == last.t) {
        if (SameValue(s.v, last.v)) continue;
        return absl::InvalidArgumentError(
            fmt::format("duplicate sample for timestamp {} of series {}", s.t, labels.ToString()));
      }
    }
    merged.push_back(s);
  }
  series_[labels] = std::make_shared<const std::vector<Sample>>(std::move(merged));
  return absl::OkStatus();
}

void MemoryStore::Clear() {
  absl::MutexLock lock(&mu_);
  series_.clear();
}

size_t MemoryStore::NumSeries() const {
  absl::MutexLock lock(&mu_);
  return series_.size();
}

std::vector<std::pair<Labels, std::vector<Sample>>> MemoryStore::All() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<Labels, std::vector<Sample>>> out;
  for (const auto& [l, s] : series_) out.emplace_back(l, *s);
  return out;
}

absl::StatusOr<std::unique_ptr<Querier>> MemoryStore::MakeQuerier(Timestamp mint, Timestamp maxt) {
  absl::MutexLock lock(&mu_);
  return std::unique_ptr<Querier>(std::make_unique<MemoryQuerier>(series_, mint, maxt));
}

}  // namespace strata
