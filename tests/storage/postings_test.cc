#include "storage/postings.h"

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "gtest/gtest.h"
#include "src/strings.h"

namespace strata {
namespace {

std::vector<SeriesRef> Expand(std::unique_ptr<Postings> p) {
  auto r = ExpandPostings(*p);
  EXPECT_TRUE(r.ok());
  return *r;
}

TEST(Postings, IntersectUnionDifferenceCompose) {
  auto l = [](std::vector<SeriesRef> v) { return ListPostings(std::move(v)); };
  std::vector<std::unique_ptr<Postings>> a;
  a.push_back(l({1, 3, 5, 7, 9}));
  a.push_back(l({3, 4, 5, 9, 10}));
  EXPECT_EQ(Expand(Intersect(std::move(a))), (std::vector<SeriesRef>{3, 5, 9}));
  std::vector<std::unique_ptr<Postings>> u;
  u.push_back(l({1, 5}));
  u.push_back(l({2, 5, 8}));
  u.push_back(l({}));
  EXPECT_EQ(Expand(Union(std::move(u))), (std::vector<SeriesRef>{1, 2, 5, 8}));
  EXPECT_EQ(Expand(Difference(l({1, 2, 3, 4, 5}), l({2, 4, 6}))),
            (std::vector<SeriesRef>{1, 3, 5}));
  // (a ∪ b) ∩ c − d
  std::vector<std::unique_ptr<Postings>> ab;
  ab.push_back(l({1, 4, 7}));
  ab.push_back(l({2, 4, 8}));
  std::vector<std::unique_ptr<Postings>> abc;
  abc.push_back(Union(std::move(ab)));
  abc.push_back(l({1, 2, 4, 7, 9}));
  EXPECT_EQ(Expand(Difference(Intersect(std::move(abc)), l({7}))),
            (std::vector<SeriesRef>{1, 2, 4}));
}

// Counts the calls made on a list, to see which input of an intersection leads.
class CountingPostings final : public Postings {
 public:
  CountingPostings(std::vector<SeriesRef> refs, int* nexts, int* seeks)
      : list_(ListPostings(std::move(refs))), nexts_(nexts), seeks_(seeks) {}
  bool Next() override {
    ++*nexts_;
    return list_->Next();
  }
  bool Seek(SeriesRef r) override {
    ++*seeks_;
    return list_->Seek(r);
  }
  SeriesRef At() const override { return list_->At(); }
  size_t SizeHint() const override { return list_->SizeHint(); }

 private:
  std::unique_ptr<Postings> list_;
  int* nexts_;
  int* seeks_;
};

TEST(Postings, IntersectionIsLedByItsSmallestInput) {
  std::vector<SeriesRef> big(1000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = i * 2;
  int big_nexts = 0, big_seeks = 0, small_nexts = 0, small_seeks = 0;
  std::vector<std::unique_ptr<Postings>> halves;  // a union, as a regex over many values
  halves.push_back(std::make_unique<CountingPostings>(
      std::vector<SeriesRef>(big.begin(), big.begin() + 500), &big_nexts, &big_seeks));
  halves.push_back(std::make_unique<CountingPostings>(
      std::vector<SeriesRef>(big.begin() + 500, big.end()), &big_nexts, &big_seeks));
  std::vector<std::unique_ptr<Postings>> its;
  its.push_back(Union(std::move(halves)));
  its.push_back(std::make_unique<CountingPostings>(std::vector<SeriesRef>{4, 5, 1200, 1998},
                                                   &small_nexts, &small_seeks));
  EXPECT_EQ(its[0]->SizeHint(), 1000u);
  auto p = Intersect(std::move(its));
  EXPECT_EQ(p->SizeHint(), 4u);
  EXPECT_EQ(Expand(std::move(p)), (std::vector<SeriesRef>{4, 1200, 1998}));
  EXPECT_EQ(big_nexts, 0) << "the union was walked";
  EXPECT_LE(big_seeks, 2 * 5);
  EXPECT_LE(small_nexts + small_seeks, 2 * 5);
  EXPECT_EQ(Difference(ListPostings({1, 2, 3}), ListPostings({2}))->SizeHint(), 3u);
  EXPECT_EQ(EmptyPostings()->SizeHint(), 0u);
}

// Unions of a few inputs scan them, of many go through a heap: both answer as a set does,
// for Next and for Seek.
TEST(Postings, UnionsOfFewAndManyInputsMatchAModel) {
  std::mt19937 rng(11);
  for (int round = 0; round < 300; ++round) {
    size_t k = 2 + rng() % 19;
    std::set<SeriesRef> all;
    std::vector<std::unique_ptr<Postings>> lists, again;
    for (size_t i = 0; i < k; ++i) {
      std::set<SeriesRef> one;
      int n = rng() % 12;
      for (int j = 0; j < n; ++j) one.insert(rng() % 200);
      all.insert(one.begin(), one.end());
      lists.push_back(ListPostings({one.begin(), one.end()}));
      again.push_back(ListPostings({one.begin(), one.end()}));
    }
    EXPECT_EQ(Expand(Union(std::move(lists))), std::vector<SeriesRef>(all.begin(), all.end()));
    auto u = Union(std::move(again));
    SeriesRef target = 0;
    while (true) {
      target += rng() % 25;
      auto want = all.lower_bound(target);
      bool got = u->Seek(target);
      ASSERT_EQ(got, want != all.end()) << "k=" << k << " seek " << target;
      if (!got) break;
      ASSERT_EQ(u->At(), *want);
      target = u->At();
      if (rng() % 2) {
        bool next = u->Next();
        auto want_next = all.upper_bound(target);
        ASSERT_EQ(next, want_next != all.end());
        if (!next) break;
        ASSERT_EQ(u->At(), *want_next);
        target = u->At();
      }
    }
  }
}

TEST(Postings, SeekNeverMovesBackwardsAndMatchesAModel) {
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    auto random_list = [&] {
      std::set<SeriesRef> s;
      int n = rng() % 30;
      for (int i = 0; i < n; ++i) s.insert(rng() % 60);
      return std::vector<SeriesRef>(s.begin(), s.end());
    };
    auto a = random_list(), b = random_list(), c = random_list();
    std::set<SeriesRef> want;
    for (SeriesRef r : a) {
      bool in_bc =
          std::binary_search(b.begin(), b.end(), r) || std::binary_search(c.begin(), c.end(), r);
      if (in_bc) want.insert(r);
    }
    std::vector<std::unique_ptr<Postings>> bc;
    bc.push_back(ListPostings(b));
    bc.push_back(ListPostings(c));
    std::vector<std::unique_ptr<Postings>> all;
    all.push_back(ListPostings(a));
    all.push_back(Union(std::move(bc)));
    auto p = Intersect(std::move(all));
    // Interleave Seeks and Nexts.
    std::vector<SeriesRef> got;
    SeriesRef target = 0;
    bool ok = p->Seek(0);
    while (ok) {
      ASSERT_GE(p->At(), target);
      if (got.empty() || got.back() != p->At()) got.push_back(p->At());
      if (rng() % 2) {
        target = p->At() + rng() % 3;
        ok = p->Seek(target);
        // Seeking to at or before the current ref stays put.
        if (ok) {
          ASSERT_TRUE(p->Seek(p->At()));
        }
      } else {
        target = p->At() + 1;
        ok = p->Next();
      }
    }
    for (SeriesRef r : got) EXPECT_TRUE(want.count(r));
    // Next alone yields exactly the model.
    std::vector<std::unique_ptr<Postings>> bc2;
    bc2.push_back(ListPostings(b));
    bc2.push_back(ListPostings(c));
    std::vector<std::unique_ptr<Postings>> all2;
    all2.push_back(ListPostings(a));
    all2.push_back(Union(std::move(bc2)));
    EXPECT_EQ(Expand(Intersect(std::move(all2))), std::vector<SeriesRef>(want.begin(), want.end()));
  }
}

// A tiny index over explicit label sets.
class FakeIndex : public IndexReader {
 public:
  explicit FakeIndex(std::vector<std::map<std::string, std::string>> series) : series_(series) {}
  absl::StatusOr<std::vector<std::string>> LabelNames() override {
    return std::vector<std::string>();
  }
  absl::StatusOr<std::vector<std::string>> LabelValues(std::string_view name,
                                                       std::string_view prefix) override {
    ++value_scans;
    std::set<std::string> out;
    for (auto& s : series_) {
      auto it = s.find(std::string(name));
      if (it != s.end() && std::string_view(it->second).starts_with(prefix)) out.insert(it->second);
    }
    return std::vector<std::string>(out.begin(), out.end());
  }
  absl::StatusOr<std::unique_ptr<Postings>> PostingsFor(
      std::string_view name, const std::vector<std::string>& values) override {
    std::vector<SeriesRef> refs;
    for (size_t i = 0; i < series_.size(); ++i) {
      auto it = series_[i].find(std::string(name));
      if (it != series_[i].end() &&
          std::find(values.begin(), values.end(), it->second) != values.end()) {
        refs.push_back(i);
      }
    }
    return ListPostings(refs);
  }
  absl::StatusOr<std::unique_ptr<Postings>> AllPostings() override {
    std::vector<SeriesRef> refs;
    for (size_t i = 0; i < series_.size(); ++i) refs.push_back(i);
    return ListPostings(refs);
  }
  size_t NumLabelValues(std::string_view name) override {
    if (!filters_) return SIZE_MAX;
    std::set<std::string> values;
    for (auto& s : series_) {
      if (auto it = s.find(std::string(name)); it != s.end()) values.insert(it->second);
    }
    return values.size();
  }
  size_t PostingsSize(std::string_view name, const std::vector<std::string>& values) override {
    if (!filters_) return SIZE_MAX;
    size_t n = 0;
    for (auto& s : series_) {
      auto it = s.find(std::string(name));
      if (it != s.end() && std::find(values.begin(), values.end(), it->second) != values.end()) {
        ++n;
      }
    }
    return n;
  }
  bool CanFilterSeries() const override { return filters_; }
  // Checks each ref of `base` as it goes, like the head does.
  std::unique_ptr<Postings> FilterSeries(std::unique_ptr<Postings> base,
                                         std::vector<LabelMatcher> matchers) override {
    ++filtered;
    std::vector<SeriesRef> refs;
    while (base->Next()) {
      ++series_checked;
      Labels labels = LabelsOf(base->At());
      if (MatchesAll(matchers, labels)) refs.push_back(base->At());
    }
    return ListPostings(refs);
  }
  Labels LabelsOf(SeriesRef ref) const {
    std::vector<std::pair<std::string, std::string>> pairs(series_[ref].begin(),
                                                           series_[ref].end());
    return Labels::FromPairs(std::move(pairs));
  }
  void EnableFilters() { filters_ = true; }
  int value_scans = 0;
  int filtered = 0;
  int series_checked = 0;

 private:
  std::vector<std::map<std::string, std::string>> series_;
  bool filters_ = false;
};

LabelMatcher Mk(MatchType t, std::string_view n, std::string_view v) {
  return *LabelMatcher::Make(t, n, v);
}

TEST(PostingsForMatchers, PrometheusSemanticsAndLiteralFastPaths) {
  FakeIndex index({{{"job", "a"}, {"env", "prod"}},
                   {{"job", "b"}},
                   {{"job", "c"}, {"env", "dev"}},
                   {{"job", "ab"}, {"env", "prod"}}});
  auto run = [&](std::vector<LabelMatcher> ms) {
    auto p = PostingsForMatchers(index, ms);
    EXPECT_TRUE(p.ok());
    return Expand(std::move(*p));
  };
  EXPECT_EQ(run({Mk(MatchType::kRegexMatch, "job", "a|c")}), (std::vector<SeriesRef>{0, 2}));
  EXPECT_EQ(index.value_scans, 0) << "a literal alternation needs no value scan";
  EXPECT_EQ(run({Mk(MatchType::kEqual, "env", "")}), (std::vector<SeriesRef>{1}));
  EXPECT_EQ(run({Mk(MatchType::kNotEqual, "env", "prod")}), (std::vector<SeriesRef>{1, 2}));
  EXPECT_EQ(
      run({Mk(MatchType::kRegexNoMatch, "job", "a.*"), Mk(MatchType::kRegexMatch, "job", ".+")}),
      (std::vector<SeriesRef>{1, 2}));
  EXPECT_EQ(run({Mk(MatchType::kRegexMatch, "job", "a.*"), Mk(MatchType::kEqual, "env", "prod")}),
            (std::vector<SeriesRef>{0, 3}));
  EXPECT_EQ(run({Mk(MatchType::kRegexMatch, "env", "pr.*|")}), (std::vector<SeriesRef>{0, 1, 3}));
  EXPECT_EQ(run({Mk(MatchType::kEqual, "job", "zzz")}), (std::vector<SeriesRef>{}));
}

// A matcher over a label with at least as many values as the other matchers leave
// candidates is checked series by series, and both ways give the same refs as a brute-force
// check of every series, for random label sets and matchers.
TEST(PostingsForMatchers, FilteringFewCandidatesAgreesWithTheIndexAndAModel) {
  std::mt19937_64 rng(7);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  const std::vector<std::string> names = {"__name__", "instance", "mode", "le"};
  int rounds_filtered = 0;
  for (int round = 0; round < 300; ++round) {
    std::vector<std::map<std::string, std::string>> series;
    const size_t n = 1 + pick(60);
    for (size_t i = 0; i < n; ++i) {
      std::map<std::string, std::string> s;
      s["__name__"] = fmt::format("m{}", pick(3));
      if (pick(5) != 0) s["instance"] = fmt::format("host-{}", pick(1 + pick(40)));
      if (pick(2) != 0) s["mode"] = std::vector<std::string>{"idle", "user", "", "sys"}[pick(4)];
      if (pick(4) == 0) s["le"] = fmt::format("{}", pick(5));
      if (s["mode"].empty()) s.erase("mode");
      series.push_back(s);
    }
    std::vector<LabelMatcher> ms;
    ms.push_back(Mk(MatchType::kEqual, "__name__", fmt::format("m{}", pick(3))));
    const size_t extra = 1 + pick(3);
    for (size_t k = 0; k < extra; ++k) {
      const std::string& name = names[1 + pick(names.size() - 1)];
      static const std::vector<std::string> kRegexes = {
          "host-1.*", "host-[0-9]", ".*", ".+", "", "host-3|host-1", "idle|", "i.*|s.*", "[0-2]"};
      static const std::vector<std::string> kValues = {"host-1", "idle", "", "2", "sys"};
      MatchType type = static_cast<MatchType>(pick(4));
      bool regex = type == MatchType::kRegexMatch || type == MatchType::kRegexNoMatch;
      ms.push_back(
          Mk(type, name, regex ? kRegexes[pick(kRegexes.size())] : kValues[pick(kValues.size())]));
    }
    std::vector<SeriesRef> want;
    FakeIndex plain(series), filtering(series);
    filtering.EnableFilters();
    for (size_t i = 0; i < series.size(); ++i) {
      if (MatchesAll(ms, plain.LabelsOf(i))) want.push_back(i);
    }
    std::string what;
    for (const auto& m : ms) what += m.ToString() + " ";
    auto p1 = PostingsForMatchers(plain, ms);
    ASSERT_TRUE(p1.ok()) << what;
    EXPECT_EQ(Expand(std::move(*p1)), want) << what;
    auto p2 = PostingsForMatchers(filtering, ms);
    ASSERT_TRUE(p2.ok()) << what;
    EXPECT_EQ(Expand(std::move(*p2)), want) << what;
    EXPECT_EQ(plain.filtered, 0);
    rounds_filtered += filtering.filtered;
  }
  EXPECT_GT(rounds_filtered, 30) << "the filtering path must be exercised";
  EXPECT_LT(rounds_filtered, 270) << "and so must the index path";
}

TEST(PostingsForMatchers, ARegexOverManyValuesChecksTheNamesFewSeries) {
  std::vector<std::map<std::string, std::string>> series;
  for (int host = 0; host < 20; ++host) {
    std::string instance = fmt::format("host-{:02}", host);
    series.push_back({{"__name__", "load1"}, {"instance", instance}, {"job", "node"}});
    for (int cpu = 0; cpu < 50; ++cpu) {
      series.push_back({{"__name__", "cpu"},
                        {"instance", instance},
                        {"cpu", std::to_string(cpu)},
                        {"job", "node"}});
    }
  }
  FakeIndex index(series);
  index.EnableFilters();
  std::vector<LabelMatcher> ms = {Mk(MatchType::kEqual, "__name__", "load1"),
                                  Mk(MatchType::kRegexMatch, "instance", "host-0.*")};
  auto p = PostingsForMatchers(index, ms);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(Expand(std::move(*p)).size(), 10u);
  EXPECT_EQ(index.filtered, 1);
  EXPECT_EQ(index.series_checked, 20) << "the 20 load1 series, not the instances' 1,020";
  EXPECT_EQ(index.value_scans, 0) << "no regex over the instance values";
  // More candidates than the label has values: its values are tested, and then the five
  // lists of a union cost more to seek in than the candidates to check.
  ms = {Mk(MatchType::kEqual, "__name__", "cpu"), Mk(MatchType::kRegexMatch, "cpu", "[0-4]")};
  p = PostingsForMatchers(index, ms);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(Expand(std::move(*p)).size(), 100u);
  EXPECT_EQ(index.filtered, 2);
  EXPECT_EQ(index.value_scans, 1);
  // One instance's 51 series lead; the name's 1,000 cost less to seek in than 51 checks.
  ms = {Mk(MatchType::kEqual, "__name__", "cpu"), Mk(MatchType::kEqual, "instance", "host-03")};
  p = PostingsForMatchers(index, ms);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(Expand(std::move(*p)).size(), 50u);
  EXPECT_EQ(index.filtered, 2);
  // The 20 load1 series lead; `job` is on all 1,020: checked on the 20 instead.
  ms = {Mk(MatchType::kEqual, "job", "node"), Mk(MatchType::kEqual, "__name__", "load1")};
  p = PostingsForMatchers(index, ms);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(Expand(std::move(*p)).size(), 20u);
  EXPECT_EQ(index.filtered, 3);
  EXPECT_EQ(index.series_checked, 20 + 1000 + 20);
}

}  // namespace
}  // namespace strata
