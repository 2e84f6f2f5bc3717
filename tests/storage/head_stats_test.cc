// Head::Stats against a naive model computed from the label sets appended.
#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "fmt/format.h"
#include "gtest/gtest.h"
#include "storage/head.h"

namespace strata {
namespace {

using Stat = HeadCardinalityStat;

// The top `limit` of a name -> count map, largest first, ties by name.
std::vector<Stat> Top(const std::map<std::string, uint64_t>& counts, size_t limit) {
  std::vector<Stat> all;
  for (const auto& [name, count] : counts) all.push_back({name, count});
  std::stable_sort(all.begin(), all.end(),
                   [](const Stat& a, const Stat& b) { return a.value > b.value; });
  if (all.size() > limit) all.resize(limit);
  return all;
}

uint64_t PackedBytes(std::string_view name, std::string_view value) {
  auto varint = [](uint64_t n) {
    uint64_t b = 1;
    while (n >= 0x80) n >>= 7, ++b;
    return b;
  };
  return varint(name.size()) + name.size() + varint(value.size()) + value.size();
}

TEST(HeadStats, EmptyHeadReportsNoDataRange) {
  Head head(HeadOptions{}, nullptr);
  HeadStats s = head.Stats(kMetricName, 10);
  EXPECT_EQ(s.num_series, 0);
  EXPECT_EQ(s.num_label_pairs, 0);
  EXPECT_EQ(s.chunk_count, 0);
  EXPECT_EQ(s.min_time, std::numeric_limits<Timestamp>::max());
  EXPECT_EQ(s.max_time, std::numeric_limits<Timestamp>::min());
  EXPECT_TRUE(s.series_count_by_metric_name.empty());
  EXPECT_TRUE(s.series_count_by_label_value_pair.empty());
}

TEST(HeadStats, SmallExampleByHand) {
  Head head(HeadOptions{}, nullptr);
  std::vector<SeriesBatch> batch = {
      {Labels{{"__name__", "up"}, {"job", "node"}, {"instance", "a"}}, {{1000, 1}, {5000, 1}}},
      {Labels{{"__name__", "up"}, {"job", "node"}, {"instance", "b"}}, {{2000, 1}}},
      {Labels{{"__name__", "http_requests_total"}, {"job", "api"}}, {{3000, 1}, {9000, 2}}},
  };
  ASSERT_TRUE(head.Append(batch).ok());
  HeadStats s = head.Stats(kMetricName, 2);
  EXPECT_EQ(s.num_series, 3);
  // __name__: up, http_requests_total; job: node, api; instance: a, b.
  EXPECT_EQ(s.num_label_pairs, 6);
  EXPECT_EQ(s.chunk_count, 3);
  EXPECT_EQ(s.min_time, 1000);
  EXPECT_EQ(s.max_time, 9000);
  EXPECT_EQ(s.series_count_by_metric_name,
            (std::vector<Stat>{{"up", 2}, {"http_requests_total", 1}}));
  // Every label has two values: ties go by name, and the limit keeps two.
  EXPECT_EQ(s.label_value_count_by_label_name,
            (std::vector<Stat>{{"__name__", 2}, {"instance", 2}}));
  EXPECT_EQ(s.series_count_by_label_value_pair,
            (std::vector<Stat>{{"__name__=up", 2}, {"job=node", 2}}));
  // __name__: 3 series; each pair costs 1 + 8 + 1 + len(value) bytes.
  uint64_t name_bytes = 2 * (10 + 2) + (10 + 19);
  uint64_t job_bytes = 2 * (1 + 3 + 1 + 4) + (1 + 3 + 1 + 3);
  EXPECT_EQ(s.memory_in_bytes_by_label_name,
            (std::vector<Stat>{{"__name__", name_bytes}, {"job", job_bytes}}));
}

TEST(HeadStats, MatchesANaiveModelOnRandomSeries) {
  std::mt19937 rng(7);
  Head head(HeadOptions{}, nullptr);
  std::set<std::vector<std::pair<std::string, std::string>>> seen;
  std::vector<SeriesBatch> batch;
  Timestamp min_t = std::numeric_limits<Timestamp>::max(), max_t = 0;
  for (int i = 0; i < 3000; ++i) {
    std::vector<std::pair<std::string, std::string>> pairs;
    pairs.emplace_back("__name__", fmt::format("metric_{}", rng() % 40));
    int labels = static_cast<int>(rng() % 4);
    for (int l = 0; l < labels; ++l) {
      // Skewed value counts per label; some long values (two-byte varints).
      std::string name = fmt::format("l{}", rng() % 12);
      std::string value = rng() % 50 == 0
                              ? std::string(130 + rng() % 20, 'v')
                              : fmt::format("v{}", rng() % (5 + 7 * std::stoul(name.substr(1))));
      pairs.emplace_back(name, value);
    }
    Labels ls = Labels::FromPairs(pairs);
    Timestamp t = 1000 + static_cast<Timestamp>(rng() % 100000);
    min_t = std::min(min_t, t);
    max_t = std::max(max_t, t);
    batch.push_back({ls, {{t, 1}}});
  }
  ASSERT_TRUE(head.Append(batch).ok());

  // The model, from the distinct label sets.
  std::set<std::string> distinct;
  std::map<std::string, uint64_t> by_metric, pair_count, bytes;
  std::map<std::string, std::set<std::string>> values;
  for (const SeriesBatch& b : batch) {
    if (!distinct.insert(b.labels.encoded()).second) continue;
    for (const LabelView& l : b.labels) {
      std::string name(l.name), value(l.value);
      if (name == "__name__") ++by_metric[value];
      ++pair_count[name + "=" + value];
      bytes[name] += PackedBytes(name, value);
      values[name].insert(value);
    }
  }
  std::map<std::string, uint64_t> value_count;
  uint64_t pairs_total = 0;
  for (const auto& [name, vs] : values) {
    value_count[name] = vs.size();
    pairs_total += vs.size();
  }

  for (size_t limit : {1u, 5u, 10u, 10000u}) {
    HeadStats s = head.Stats(kMetricName, limit);
    EXPECT_EQ(s.num_series, static_cast<int64_t>(distinct.size()));
    EXPECT_EQ(s.num_label_pairs, static_cast<int64_t>(pairs_total));
    EXPECT_EQ(s.min_time, min_t);
    EXPECT_EQ(s.max_time, max_t);
    EXPECT_EQ(s.series_count_by_metric_name, Top(by_metric, limit)) << limit;
    EXPECT_EQ(s.label_value_count_by_label_name, Top(value_count, limit)) << limit;
    EXPECT_EQ(s.memory_in_bytes_by_label_name, Top(bytes, limit)) << limit;
    EXPECT_EQ(s.series_count_by_label_value_pair, Top(pair_count, limit)) << limit;
  }
  // Another label can stand in for __name__.
  HeadStats by_l0 = head.Stats("l0", 3);
  ASSERT_FALSE(by_l0.series_count_by_metric_name.empty());
  EXPECT_EQ(by_l0.series_count_by_metric_name[0].value,
            pair_count["l0=" + by_l0.series_count_by_metric_name[0].name]);
}

}  // namespace
}  // namespace strata
