#include "storage/head.h"

#include <random>

#include "fmt/format.h"
#include "gtest/gtest.h"
#include "storage/chunk_iterator.h"

namespace strata {
namespace {

std::vector<Sample> ReadChunks(const std::vector<ChunkRef>& chunks) {
  ChunkListIterator it(chunks, std::numeric_limits<Timestamp>::min(),
                       std::numeric_limits<Timestamp>::max());
  std::vector<Sample> out;
  while (it.Next()) out.push_back(it.At());
  EXPECT_TRUE(it.status().ok());
  return out;
}

TEST(HeadAppend, CutsChunksAt120SamplesAndAtPartitionBoundaries) {
  HeadOptions opts;
  opts.partition_ms = 1000000;
  Head head(opts, nullptr);
  Labels a{{"__name__", "a"}};
  std::vector<SeriesBatch> batch = {{a, {}}};
  for (int i = 0; i < 250; ++i) batch[0].samples.push_back({i * 1000, double(i)});
  // 250 samples: 0..119, 120..239, then 240..249 — but 1000000 starts a partition.
  for (int i = 0; i < 5; ++i) batch[0].samples.push_back({1000000 + i, 1});
  auto r = head.Append(batch);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->appended, 255);
  SeriesPtr s = head.GetByRef(1);
  ASSERT_NE(s, nullptr);
  std::vector<ChunkRef> chunks =
      head.Chunks(*s, std::numeric_limits<Timestamp>::min(), std::numeric_limits<Timestamp>::max());
  ASSERT_EQ(chunks.size(), 4u);
  EXPECT_EQ(chunks[0].mint, 0);
  EXPECT_EQ(chunks[0].maxt, 119000);
  EXPECT_EQ(chunks[1].mint, 120000);
  EXPECT_EQ(chunks[2].mint, 240000);
  EXPECT_EQ(chunks[2].maxt, 249000);
  EXPECT_EQ(chunks[3].mint, 1000000);
  EXPECT_EQ(ReadChunks(chunks).size(), 255u);
  // Only the chunks overlapping a range are returned.
  EXPECT_EQ(head.Chunks(*s, 125000, 130000).size(), 1u);
}

TEST(HeadAppend, RefsGrowAndPostingsStaySorted) {
  Head head(HeadOptions{}, nullptr);
  std::vector<SeriesBatch> batch;
  for (int i = 0; i < 50; ++i) {
    batch.push_back({Labels{{"__name__", "m"}, {"i", std::to_string(i % 7)}}, {{1, 1}}});
  }
  ASSERT_TRUE(head.Append(batch).ok());
  EXPECT_EQ(head.num_series(), 7);
  EXPECT_EQ(head.next_ref(), 8u);
  auto index = head.Index();
  auto p = index->PostingsFor("__name__", {"m"});
  ASSERT_TRUE(p.ok());
  auto refs = ExpandPostings(**p);
  ASSERT_TRUE(refs.ok());
  EXPECT_EQ(*refs, (std::vector<SeriesRef>{1, 2, 3, 4, 5, 6, 7}));
  auto values = index->LabelValues("i", "");
  ASSERT_TRUE(values.ok());
  EXPECT_EQ(values->size(), 7u);
}

// The head checks few candidate series against a regex over a label with many values
// (instance) from the series' own labels; the answer is the same as a check of every series.
TEST(HeadIndex, FiltersFewCandidatesByTheirLabels) {
  Head head(HeadOptions{}, nullptr);
  std::vector<SeriesBatch> batch;
  for (int host = 0; host < 30; ++host) {
    std::string instance = fmt::format("host-{:02}:9100", host);
    // As many load1 series as instances: the instance matchers check them one by one.
    batch.push_back(
        {Labels{{"__name__", "load1"}, {"instance", instance}, {"dc", host % 3 == 0 ? "x" : ""}},
         {{1, 1}}});
    for (int cpu = 0; cpu < 4; ++cpu) {
      batch.push_back(
          {Labels{{"__name__", "cpu"}, {"instance", instance}, {"cpu", fmt::format("{}", cpu)}},
           {{1, 1}}});
    }
  }
  ASSERT_TRUE(head.Append(batch).ok());
  auto M = [](MatchType t, std::string_view n, std::string_view v) {
    return *LabelMatcher::Make(t, n, v);
  };
  const std::vector<std::vector<LabelMatcher>> cases = {
      {M(MatchType::kEqual, "__name__", "load1"),
       M(MatchType::kRegexMatch, "instance", "host-0[0-4].*")},
      {M(MatchType::kEqual, "__name__", "load1"),
       M(MatchType::kRegexNoMatch, "instance", "host-1.*")},
      {M(MatchType::kEqual, "__name__", "load1"), M(MatchType::kRegexMatch, "instance", ".*5.*"),
       M(MatchType::kNotEqual, "dc", "x")},
      {M(MatchType::kEqual, "__name__", "load1"), M(MatchType::kRegexMatch, "dc", "x|")},
      {M(MatchType::kEqual, "__name__", "cpu"), M(MatchType::kRegexMatch, "instance", "host-2.*"),
       M(MatchType::kRegexMatch, "cpu", "[12]")},
  };
  auto index = head.Index();
  for (const auto& ms : cases) {
    std::vector<SeriesRef> want;
    for (SeriesRef ref = 1; ref < head.next_ref(); ++ref) {
      SeriesPtr s = head.GetByRef(ref);
      if (s != nullptr && MatchesAll(ms, head.LabelsOf(*s))) want.push_back(ref);
    }
    ASSERT_FALSE(want.empty());
    auto p = PostingsForMatchers(*index, ms);
    ASSERT_TRUE(p.ok());
    auto got = ExpandPostings(**p);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(*got, want) << ms[1].ToString();
  }
}

// The batch lookup answers as one GetByRef per ref: present, never-seen and repeated refs,
// in any order, for list lengths around its look-ahead.
TEST(HeadIndex, GetByRefsAnswersAsGetByRefForEachRef) {
  Head head(HeadOptions{}, nullptr);
  std::vector<SeriesBatch> batch;
  for (int i = 0; i < 40; ++i) {
    batch.push_back({Labels{{"__name__", "m"}, {"i", fmt::format("{}", i)}}, {{1, 1}}});
  }
  ASSERT_TRUE(head.Append(batch).ok());
  std::mt19937_64 rng(3);
  for (size_t len = 0; len < 30; ++len) {
    std::vector<SeriesRef> refs;
    for (size_t k = 0; k < len; ++k) refs.push_back(rng() % 50);  // 0 and 41..49: absent
    std::vector<SeriesPtr> got;
    head.GetByRefs(refs, &got);
    ASSERT_EQ(got.size(), refs.size());
    for (size_t k = 0; k < len; ++k) {
      SeriesPtr want = head.GetByRef(refs[k]);
      EXPECT_EQ(got[k].get(), want.get()) << "ref " << refs[k];
      if (want != nullptr) {
        EXPECT_EQ(got[k]->ref, refs[k]);
      }
    }
  }
}

// A batch may name a series more than once (its lock is then taken once): every entry's
// samples are appended, in batch order.
TEST(HeadAppend, ASeriesNamedTwiceInABatchTakesBothEntriesInOrder) {
  Head head(HeadOptions{}, nullptr);
  Labels a{{"__name__", "a"}};
  Labels b{{"__name__", "b"}};
  std::vector<SeriesBatch> batch = {{a, {{1000, 1}}}, {b, {{1000, 5}}}, {a, {{2000, 2}}}};
  auto r = head.Append(batch);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->appended, 3);
  SeriesPtr s = head.GetByRef(1);
  ASSERT_NE(s, nullptr);
  std::vector<Sample> got = ReadChunks(head.Chunks(*s, std::numeric_limits<Timestamp>::min(),
                                                   std::numeric_limits<Timestamp>::max()));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].t, 1000);
  EXPECT_EQ(got[1].t, 2000);
  EXPECT_EQ(got[1].v, 2);
}

TEST(HeadAppend, RejectsEmptyLabelSetsBeforeAppendingAnything) {
  Head head(HeadOptions{}, nullptr);
  std::vector<SeriesBatch> batch = {{Labels{{"__name__", "a"}}, {{1, 1}}}, {Labels{}, {{1, 1}}}};
  auto r = head.Append(batch);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(head.num_series(), 0);
}

TEST(HeadFlush, TracksTheLowestWalSegmentStillNeeded) {
  Head head(HeadOptions{}, nullptr);
  EXPECT_EQ(head.LowestNeededSegment(), std::numeric_limits<int64_t>::max());
  std::vector<SeriesBatch> batch = {{Labels{{"__name__", "a"}}, {{1, 1}, {2, 2}}}};
  ASSERT_TRUE(head.Append(batch).ok());
  EXPECT_EQ(head.LowestNeededSegment(), 0);
  auto items = head.CollectFlush(/*cut_open=*/true, 0);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_TRUE(items[0].persist_series);
  ASSERT_EQ(items[0].chunks.size(), 1u);
  head.MarkFlushed(items);
  EXPECT_EQ(head.LowestNeededSegment(), std::numeric_limits<int64_t>::max());
  // Nothing left to flush, and the series' last sample still guards order.
  EXPECT_TRUE(head.CollectFlush(true, 0).empty());
  std::vector<SeriesBatch> late = {{Labels{{"__name__", "a"}}, {{1, 5}}}};
  auto r = head.Append(late);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out_of_order, 1);
}

}  // namespace
}  // namespace strata
