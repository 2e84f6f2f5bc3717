// Choosing bases for compacted blocks: classic histogram buckets against the bucket below.
#include "storage/histogram_bases.h"

#include <optional>
#include <vector>

#include "gtest/gtest.h"

namespace strata {
namespace {

struct Case {
  Labels labels;
  std::vector<Timestamp> ts = {1000, 16000, 31000};
};

// The base ref given to each series (refs are 1, 2, ... in order).
std::vector<std::optional<SeriesRef>> Bases(const std::vector<Case>& cases) {
  std::vector<CompactedSeries> series;
  std::vector<Labels> labels;
  for (size_t i = 0; i < cases.size(); ++i) {
    CompactedSeries s{.ref = i + 1, .samples = {}, .base = SeriesRef{99}};  // stale hint
    for (Timestamp t : cases[i].ts) s.samples.push_back({t, 1});
    series.push_back(std::move(s));
    labels.push_back(cases[i].labels);
  }
  AssignHistogramBases(series, labels);
  std::vector<std::optional<SeriesRef>> out;
  for (const CompactedSeries& s : series) out.push_back(s.base);
  return out;
}

Labels B(std::string_view job, std::string_view le, std::string_view name = "rpc_seconds_bucket") {
  return Labels{{"__name__", name}, {"job", job}, {"le", le}};
}

TEST(HistogramBases, EachBucketGetsTheNextLowerBucketOfItsFamily) {
  const std::vector<Case> cases = {{B("a", "+Inf")}, {B("a", "0.5")}, {B("b", "0.5")},
                                   {B("a", "1e-1")}, {B("a", "2.5")}, {B("b", "+Inf")},
                                   {B("a", "-Inf")}};
  using R = std::optional<SeriesRef>;
  // a: -Inf(7) <- 0.1(4) <- 0.5(2) <- 2.5(5) <- +Inf(1); b: 0.5(3) <- +Inf(6).
  EXPECT_EQ(Bases(cases), (std::vector<R>{5, 4, std::nullopt, 7, 2, 3, std::nullopt}));
}

TEST(HistogramBases, OnlyBucketsWithTheSameTimestampsAndANumericLe) {
  using R = std::optional<SeriesRef>;
  std::vector<Case> cases = {
      {B("a", "1")},    {B("a", "2"), {1000, 16000, 31001}},  // other timestamps
      {B("a", "3")},    {B("a", "4"), {1000, 16000}},         // fewer samples
      {B("a", "fast")}, {B("a", "NaN")},
      {B("a", "")},     {B("a", "2", "rpc_seconds_total")},  // not a bucket by name
      {B("a", "5 ")}};
  EXPECT_EQ(Bases(cases), (std::vector<R>(cases.size(), std::nullopt)));
  cases[1].ts = cases[0].ts;
  EXPECT_EQ(Bases(cases)[1], R(1));
  EXPECT_EQ(Bases(cases)[2], R(2));
}

TEST(HistogramBases, TheCountIsBasedOnThePlusInfBucket) {
  using R = std::optional<SeriesRef>;
  const Labels count{{"__name__", "rpc_seconds_count"}, {"job", "a"}};
  const Labels other_count{{"__name__", "rpc_seconds_count"}, {"job", "b"}};
  const Labels sum{{"__name__", "rpc_seconds_sum"}, {"job", "a"}};
  EXPECT_EQ(Bases({{count}, {B("a", "1")}, {B("a", "+Inf")}, {other_count}, {sum}}),
            (std::vector<R>{3, std::nullopt, 2, std::nullopt, std::nullopt}));
  // Without a +Inf bucket, or on other timestamps: no base.
  EXPECT_EQ(Bases({{count}, {B("a", "1")}, {B("a", "2")}}),
            (std::vector<R>{std::nullopt, std::nullopt, 2}));
  EXPECT_EQ(Bases({{count, {1000}}, {B("a", "+Inf")}}),
            (std::vector<R>{std::nullopt, std::nullopt}));
}

TEST(HistogramBases, EqualBoundsChainInRefOrderAndUnknownLabelsAreNoBuckets) {
  using R = std::optional<SeriesRef>;
  const std::vector<Case> cases = {{B("a", "1.0")}, {Labels{}}, {B("a", "1")}, {B("a", "0.5")}};
  EXPECT_EQ(Bases(cases), (std::vector<R>{4, std::nullopt, 1, std::nullopt}));
}

}  // namespace
}  // namespace strata
