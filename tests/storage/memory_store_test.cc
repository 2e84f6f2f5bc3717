#include "storage/memory_store.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "gtest/gtest.h"
#include "src/time.h"

namespace strata {
namespace {

SelectHints Range(Timestamp a, Timestamp b) {
  SelectHints h;
  h.mint = a;
  h.maxt = b;
  return h;
}

LabelMatcher M(MatchType t, std::string_view n, std::string_view v) {
  return LabelMatcher::Make(t, n, v).value();
}

std::vector<std::pair<std::string, std::vector<Sample>>> Collect(SeriesSet& set) {
  std::vector<std::pair<std::string, std::vector<Sample>>> out;
  while (set.Next()) {
    std::vector<Sample> samples;
    auto it = set.Samples();
    while (it->Next()) samples.push_back(it->At());
    EXPECT_TRUE(it->status().ok());
    out.emplace_back(set.labels().ToString(), std::move(samples));
  }
  return out;
}

TEST(MemoryStore, SelectFiltersByMatchersAndTimeAndSortsByLabels) {
  MemoryStore store;
  ASSERT_TRUE(store.AppendMany({{"__name__", "m"}, {"job", "b"}}, {{10, 1}, {20, 2}}).ok());
  ASSERT_TRUE(store.AppendMany({{"__name__", "m"}, {"job", "a"}}, {{30, 3}}).ok());
  ASSERT_TRUE(store.AppendMany({{"__name__", "other"}}, {{10, 5}}).ok());

  auto q = store.MakeQuerier(0, 100).value();
  SelectHints hints = Range(0, 25);
  auto set = q->Select({M(MatchType::kEqual, "__name__", "m")}, hints).value();
  auto got = Collect(*set);
  // {job="a"} has no sample in [0, 25], so it is not selected.
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, "{__name__=\"m\", job=\"b\"}");
  ASSERT_EQ(got[0].second.size(), 2u);

  hints.maxt = 100;
  set = q->Select({M(MatchType::kRegexMatch, "__name__", "m|other")}, hints).value();
  got = Collect(*set);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].first, "{__name__=\"m\", job=\"a\"}");
  EXPECT_EQ(got[1].first, "{__name__=\"m\", job=\"b\"}");
  EXPECT_EQ(got[2].first, "{__name__=\"other\"}");

  // A matcher on an absent label sees the empty string.
  set = q->Select({M(MatchType::kRegexMatch, "__name__", ".+"), M(MatchType::kEqual, "job", "")},
                  hints)
            .value();
  got = Collect(*set);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, "{__name__=\"other\"}");
}

TEST(MemoryStore, RejectsSelectorsThatMatchEverything) {
  MemoryStore store;
  auto q = store.MakeQuerier(0, 100).value();
  EXPECT_FALSE(q->Select({M(MatchType::kRegexMatch, "job", ".*")}, Range(0, 1)).ok());
}

TEST(MemoryStore, OutOfOrderAndDuplicateSamples) {
  MemoryStore store;
  Labels l{{"__name__", "x"}};
  ASSERT_TRUE(store.Append(l, {10, 1}).ok());
  EXPECT_TRUE(store.Append(l, {10, 1}).ok());   // same value: accepted, not stored twice
  EXPECT_FALSE(store.Append(l, {10, 2}).ok());  // different value
  EXPECT_FALSE(store.Append(l, {5, 2}).ok());   // older
  EXPECT_FALSE(store.AppendMany(l, {{20, 1}, {15, 1}}).ok());
  ASSERT_TRUE(store.Append(l, {20, StaleNaN()}).ok());
  auto all = store.All();
  ASSERT_EQ(all.size(), 1u);
  ASSERT_EQ(all[0].second.size(), 2u);  // the rejected batch stored nothing
  EXPECT_TRUE(IsStaleNaN(all[0].second[1].v));
  store.Clear();
  EXPECT_EQ(store.NumSeries(), 0u);
}

TEST(MemoryStore, LabelNamesAndValuesHonourMatchers) {
  MemoryStore store;
  ASSERT_TRUE(store.Append({{"__name__", "a"}, {"x", "1"}}, {1, 1}).ok());
  ASSERT_TRUE(store.Append({{"__name__", "a"}, {"y", "2"}}, {1, 1}).ok());
  ASSERT_TRUE(store.Append({{"__name__", "b"}, {"x", "3"}}, {1, 1}).ok());
  auto q = store.MakeQuerier(0, 10).value();
  EXPECT_EQ(q->LabelNames({}).value(), (std::vector<std::string>{"__name__", "x", "y"}));
  EXPECT_EQ(q->LabelNames({M(MatchType::kEqual, "__name__", "b")}).value(),
            (std::vector<std::string>{"__name__", "x"}));
  EXPECT_EQ(q->LabelValues("x", {}).value(), (std::vector<std::string>{"1", "3"}));
  EXPECT_EQ(q->LabelValues("x", {M(MatchType::kEqual, "__name__", "a")}).value(),
            (std::vector<std::string>{"1"}));
}

// Seek/Next/AppendRange agree with a naive model.
TEST(MemoryStore, IteratorAgreesWithModel) {
  std::mt19937 rng(42);
  MemoryStore store;
  Labels l{{"__name__", "r"}};
  std::vector<Sample> model;
  Timestamp t = 0;
  for (int i = 0; i < 500; ++i) {
    t += 1 + rng() % 20;
    model.push_back({t, static_cast<double>(i)});
  }
  ASSERT_TRUE(store.AppendMany(l, model).ok());
  auto q = store.MakeQuerier(kMinTime, kMaxTime).value();
  for (int trial = 0; trial < 200; ++trial) {
    Timestamp a = rng() % (t + 10), b = rng() % (t + 10);
    if (a > b) std::swap(a, b);
    auto set = q->Select({M(MatchType::kEqual, "__name__", "r")}, Range(a, b)).value();
    std::vector<Sample> expect;
    for (const Sample& s : model)
      if (s.t >= a && s.t <= b) expect.push_back(s);
    if (expect.empty()) {
      EXPECT_FALSE(set->Next());
      continue;
    }
    ASSERT_TRUE(set->Next());
    std::vector<Sample> bulk;
    ASSERT_TRUE(set->Samples()->AppendRange(a, b, &bulk).ok());
    ASSERT_EQ(bulk.size(), expect.size());
    auto it = set->Samples();
    Timestamp seek = a + (b - a) / 2;
    auto want =
        std::find_if(expect.begin(), expect.end(), [&](const Sample& s) { return s.t >= seek; });
    ASSERT_EQ(it->Seek(seek), want != expect.end());
    if (want != expect.end()) {
      EXPECT_EQ(it->At().t, want->t);
      ASSERT_TRUE(it->Seek(a));  // never moves backwards
      EXPECT_EQ(it->At().t, want->t);
      size_t n = 1;
      while (it->Next()) ++n;
      EXPECT_EQ(n, static_cast<size_t>(expect.end() - want));
    }
  }
}

}  // namespace
}  // namespace strata
