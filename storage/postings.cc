#include "storage/postings.h"

#include <algorithm>
#include <queue>

#include "src/status.h"

namespace strata {
namespace {

class EmptyPostingsImpl final : public Postings {
 public:
  bool Next() override { return false; }
  bool Seek(SeriesRef) override { return false; }
  SeriesRef At() const override { return 0; }
  size_t SizeHint() const override { return 0; }
};

class ListPostingsImpl final : public Postings {
 public:
  explicit ListPostingsImpl(std::vector<SeriesRef> refs) : refs_(std::move(refs)) {}
  bool Next() override {
    if (!started_) {
      started_ = true;
    } else if (pos_ < refs_.size()) {
      ++pos_;
    }
    return pos_ < refs_.size();
  }
  bool Seek(SeriesRef r) override {
    if (!started_) {
      started_ = true;
      pos_ = 0;
    }
    if (pos_ >= refs_.size()) return false;
    if (refs_[pos_] >= r) return true;
    pos_ = std::lower_bound(refs_.begin() + pos_, refs_.end(), r) - refs_.begin();
    return pos_ < refs_.size();
  }
  SeriesRef At() const override { return refs_[pos_]; }
  size_t SizeHint() const override { return refs_.size(); }

 private:
  std::vector<SeriesRef> refs_;
  size_t pos_ = 0;
  bool started_ = false;
};

class IntersectPostings final : public Postings {
 public:
  explicit IntersectPostings(std::vector<std::unique_ptr<Postings>> its) : its_(std::move(its)) {}
  bool Next() override {
    if (!its_[0]->Next()) return Done();
    return Align(its_[0]->At());
  }
  bool Seek(SeriesRef r) override {
    if (started_ && cur_ >= r) return !done_;
    if (!its_[0]->Seek(r)) return Done();
    return Align(its_[0]->At());
  }
  SeriesRef At() const override { return cur_; }
  absl::Status status() const override {
    for (auto& it : its_) {
      if (absl::Status st = it->status(); !st.ok()) return st;
    }
    return absl::OkStatus();
  }
  size_t SizeHint() const override { return its_[0]->SizeHint(); }  // the smallest, first

 private:
  bool Done() {
    started_ = done_ = true;
    return false;
  }
  // Seeks every iterator to a common ref >= target.
  bool Align(SeriesRef target) {
    started_ = true;
    while (true) {
      bool all = true;
      for (auto& it : its_) {
        if (!it->Seek(target)) return Done();
        if (it->At() != target) {
          target = it->At();
          all = false;
          break;
        }
      }
      if (all) {
        cur_ = target;
        return true;
      }
    }
  }
  std::vector<std::unique_ptr<Postings>> its_;
  SeriesRef cur_ = 0;
  bool started_ = false;
  bool done_ = false;
};

class UnionPostings final : public Postings {
 public:
  explicit UnionPostings(std::vector<std::unique_ptr<Postings>> its) : its_(std::move(its)) {}
  bool Next() override {
    if (!started_) {
      started_ = true;
      for (size_t i = 0; i < its_.size(); ++i) {
        if (its_[i]->Next()) heap_.push({its_[i]->At(), i});
      }
    } else {
      Advance(cur_ + 1);
    }
    return Pop();
  }
  bool Seek(SeriesRef r) override {
    if (!started_) {
      started_ = true;
      for (size_t i = 0; i < its_.size(); ++i) {
        if (its_[i]->Seek(r)) heap_.push({its_[i]->At(), i});
      }
      return Pop();
    }
    if (valid_ && cur_ >= r) return true;
    if (!valid_) return false;
    Advance(r);
    return Pop();
  }
  SeriesRef At() const override { return cur_; }
  absl::Status status() const override {
    for (auto& it : its_) {
      if (absl::Status st = it->status(); !st.ok()) return st;
    }
    return absl::OkStatus();
  }
  size_t SizeHint() const override {
    size_t n = 0;
    for (auto& it : its_) {
      size_t h = it->SizeHint();
      if (h > SIZE_MAX - n) return SIZE_MAX;
      n += h;
    }
    return n;
  }

 private:
  using Entry = std::pair<SeriesRef, size_t>;
  // Moves every iterator whose head is < r to its first ref >= r.
  void Advance(SeriesRef r) {
    while (!heap_.empty() && heap_.top().first < r) {
      size_t i = heap_.top().second;
      heap_.pop();
      if (its_[i]->Seek(r)) heap_.push({its_[i]->At(), i});
    }
  }
  bool Pop() {
    valid_ = !heap_.empty();
    if (valid_) cur_ = heap_.top().first;
    return valid_;
  }
  std::vector<std::unique_ptr<Postings>> its_;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap_;
  SeriesRef cur_ = 0;
  bool started_ = false;
  bool valid_ = false;
};

class DifferencePostings final : public Postings {
 public:
  DifferencePostings(std::unique_ptr<Postings> a, std::unique_ptr<Postings> b)
      : a_(std::move(a)), b_(std::move(b)) {}
  bool Next() override {
    if (!a_->Next()) return false;
    return Skip();
  }
  bool Seek(SeriesRef r) override {
    if (!a_->Seek(r)) return false;
    return Skip();
  }
  SeriesRef At() const override { return a_->At(); }
  absl::Status status() const override {
    if (absl::Status st = a_->status(); !st.ok()) return st;
    return b_->status();
  }
  size_t SizeHint() const override { return a_->SizeHint(); }

 private:
  // Moves `a` past refs that are in `b`.
  bool Skip() {
    while (true) {
      SeriesRef r = a_->At();
      if (!b_done_) {
        if (!b_->Seek(r)) {
          b_done_ = true;
        } else if (b_->At() == r) {
          if (!a_->Next()) return false;
          continue;
        }
      }
      return true;
    }
  }
  std::unique_ptr<Postings> a_, b_;
  bool b_done_ = false;
};

bool IsLiteralSet(const LabelMatcher& m) {
  return (m.type() == MatchType::kRegexMatch || m.type() == MatchType::kRegexNoMatch) &&
         m.SetMatches().has_value();
}

// True exactly on the values of m.SetMatches(): = and =~"a|b".
bool IsEqualSet(const LabelMatcher& m) {
  return m.type() == MatchType::kEqual || (m.type() == MatchType::kRegexMatch && IsLiteralSet(m));
}

// The values of m.name() for which m is true (positive) or false (!positive).
absl::StatusOr<std::vector<std::string>> ValuesWhere(IndexReader& index, const LabelMatcher& m,
                                                     bool positive) {
  // Fast paths: the matcher is true exactly on a known literal set.
  bool equal_set = IsEqualSet(m);
  bool not_equal_set =
      m.type() == MatchType::kNotEqual || (m.type() == MatchType::kRegexNoMatch && IsLiteralSet(m));
  if (positive && equal_set) {
    if (m.type() == MatchType::kEqual) return std::vector<std::string>{m.value()};
    return *m.SetMatches();
  }
  if (!positive && not_equal_set) {
    if (m.type() == MatchType::kNotEqual) return std::vector<std::string>{m.value()};
    return *m.SetMatches();
  }
  // A value that makes a regex true starts with its literal prefix; for =~ only.
  std::string_view prefix;
  if (positive && m.type() == MatchType::kRegexMatch) prefix = m.LiteralPrefix();
  if (!positive && m.type() == MatchType::kRegexNoMatch) prefix = m.LiteralPrefix();
  std::vector<std::string> out;
  STRATA_RETURN_IF_ERROR(index.ForEachLabelValue(m.name(), prefix, [&](std::string_view v) {
    if (m.Matches(v) == positive) out.emplace_back(v);
  }));
  return out;
}

// Stands for postings that could not be made: empty, with an error.
class ErrorPostings final : public Postings {
 public:
  explicit ErrorPostings(absl::Status status) : status_(std::move(status)) {}
  bool Next() override { return false; }
  bool Seek(SeriesRef) override { return false; }
  SeriesRef At() const override { return 0; }
  absl::Status status() const override { return status_; }
  size_t SizeHint() const override { return 0; }

 private:
  absl::Status status_;
};

}  // namespace

std::unique_ptr<Postings> EmptyPostings() { return std::make_unique<EmptyPostingsImpl>(); }

std::unique_ptr<Postings> ListPostings(std::vector<SeriesRef> refs) {
  return std::make_unique<ListPostingsImpl>(std::move(refs));
}

std::unique_ptr<Postings> Intersect(std::vector<std::unique_ptr<Postings>> its) {
  if (its.empty()) return EmptyPostings();
  if (its.size() == 1) return std::move(its[0]);
  // The smallest leads: `{__name__="x", instance=~"many|values"}` walks x's few refs and
  // seeks into the union, instead of walking the union's thousands.
  std::stable_sort(its.begin(), its.end(),
                   [](const auto& a, const auto& b) { return a->SizeHint() < b->SizeHint(); });
  return std::make_unique<IntersectPostings>(std::move(its));
}

std::unique_ptr<Postings> Union(std::vector<std::unique_ptr<Postings>> its) {
  if (its.empty()) return EmptyPostings();
  if (its.size() == 1) return std::move(its[0]);
  return std::make_unique<UnionPostings>(std::move(its));
}

std::unique_ptr<Postings> Difference(std::unique_ptr<Postings> a, std::unique_ptr<Postings> b) {
  return std::make_unique<DifferencePostings>(std::move(a), std::move(b));
}

absl::StatusOr<std::vector<SeriesRef>> ExpandPostings(Postings& p) {
  std::vector<SeriesRef> out;
  while (p.Next()) out.push_back(p.At());
  STRATA_RETURN_IF_ERROR(p.status());
  return out;
}

absl::Status IndexReader::ForEachLabelValue(std::string_view name, std::string_view prefix,
                                            absl::FunctionRef<void(std::string_view)> fn) {
  STRATA_ASSIGN_OR_RETURN(std::vector<std::string> values, LabelValues(name, prefix));
  for (const std::string& v : values) fn(v);
  return absl::OkStatus();
}

std::unique_ptr<Postings> IndexReader::FilterSeries(std::unique_ptr<Postings>,
                                                    std::vector<LabelMatcher>) {
  return std::make_unique<ErrorPostings>(
      absl::UnimplementedError("this index cannot filter series by their labels"));
}

absl::StatusOr<std::unique_ptr<Postings>> PostingsForMatchers(
    IndexReader& index, const std::vector<LabelMatcher>& matchers) {
  const bool can_filter = index.CanFilterSeries();
  // Matchers true only on a known set of values (=, =~"a|b"): the one with the fewest
  // series leads, and bounds the candidates, which decide whether each other matcher is
  // better checked through the index or series by series.
  struct SetMatcher {
    const LabelMatcher* m;
    size_t size;  // of its postings; SIZE_MAX when not known cheaply
  };
  std::vector<SetMatcher> sets;
  std::vector<const LabelMatcher*> rest;
  for (const LabelMatcher& m : matchers) {
    const bool equal_set = IsEqualSet(m);
    if (m.MatchesEmpty() || !equal_set) {
      rest.push_back(&m);
      continue;
    }
    sets.push_back({&m, can_filter ? index.PostingsSize(m.name(), *m.SetMatches()) : SIZE_MAX});
  }
  size_t candidates = SIZE_MAX, leader = sets.size();
  for (size_t i = 0; i < sets.size(); ++i) {
    if (leader == sets.size() || sets[i].size < candidates) {
      leader = i;
      candidates = sets[i].size;
    }
  }
  if (candidates == 0) return EmptyPostings();
  // Rough instruction counts of the two ways, per matcher: through the index, its postings
  // are copied (`postings` refs in `lists` lists) and each candidate is sought in them (a
  // union of several lists costs more per list); series by series, each candidate's series
  // is looked up and its label value tested (`test`: more for a regex).
  auto cheaper_to_filter = [&](size_t postings, size_t lists, double test) {
    if (!can_filter || candidates == SIZE_MAX || postings == SIZE_MAX) return false;
    const double n = static_cast<double>(candidates);
    const double seek = lists <= 1 ? 60.0 : 100.0 * static_cast<double>(lists);
    return n * (150.0 + test) < 2.0 * static_cast<double>(postings) + n * seek;
  };
  constexpr double kRegexTest = 300.0;
  std::vector<std::unique_ptr<Postings>> include, exclude;
  std::vector<LabelMatcher> filters;
  for (size_t i = 0; i < sets.size(); ++i) {
    const LabelMatcher& m = *sets[i].m;
    if (i != leader && cheaper_to_filter(sets[i].size, m.SetMatches()->size(), 0)) {
      filters.push_back(m);
      continue;
    }
    STRATA_ASSIGN_OR_RETURN(auto p, index.PostingsFor(m.name(), *m.SetMatches()));
    include.push_back(std::move(p));
  }
  for (const LabelMatcher* mp : rest) {
    const LabelMatcher& m = *mp;
    const bool regex =
        !IsLiteralSet(m) && m.type() != MatchType::kEqual && m.type() != MatchType::kNotEqual;
    // A regex through the index tests each of the label's values first: with no more
    // candidates than values, testing the candidates costs less whatever follows.
    if (regex && can_filter && candidates != SIZE_MAX &&
        candidates <= index.NumLabelValues(m.name())) {
      filters.push_back(m);
      continue;
    }
    const bool positive = !m.MatchesEmpty();
    // Positive: only series that have the label with a matching value. Otherwise: every
    // series except those whose value makes the matcher false.
    STRATA_ASSIGN_OR_RETURN(std::vector<std::string> values, ValuesWhere(index, m, positive));
    if (values.empty()) {
      if (positive) return EmptyPostings();
      continue;
    }
    if (cheaper_to_filter(can_filter ? index.PostingsSize(m.name(), values) : SIZE_MAX,
                          values.size(), regex ? kRegexTest : 0)) {
      filters.push_back(m);
      continue;
    }
    STRATA_ASSIGN_OR_RETURN(auto p, index.PostingsFor(m.name(), values));
    (positive ? include : exclude).push_back(std::move(p));
  }
  std::unique_ptr<Postings> base;
  if (include.empty()) {
    STRATA_ASSIGN_OR_RETURN(base, index.AllPostings());
  } else {
    base = Intersect(std::move(include));
  }
  if (!exclude.empty()) base = Difference(std::move(base), Union(std::move(exclude)));
  if (!filters.empty()) base = index.FilterSeries(std::move(base), std::move(filters));
  return base;
}

}  // namespace strata
