#include "storage/chunk_iterator.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "storage/xor_chunk.h"

namespace strata {
namespace {

constexpr Timestamp kMin = std::numeric_limits<Timestamp>::min();
constexpr Timestamp kMax = std::numeric_limits<Timestamp>::max();

ChunkRef MakeChunk(const std::vector<Sample>& samples) {
  XorChunkAppender a;
  for (const Sample& s : samples) EXPECT_TRUE(a.Append(s.t, s.v).ok());
  ChunkRef c;
  c.mint = samples.front().t;
  c.maxt = samples.back().t;
  c.bytes = std::make_shared<const std::string>(a.bytes());
  return c;
}

std::vector<Sample> ByNext(const std::vector<ChunkRef>& chunks, Timestamp mint, Timestamp maxt,
                           absl::Status* st) {
  ChunkListIterator it(chunks, mint, maxt);
  std::vector<Sample> out;
  while (it.Next()) out.push_back(it.At());
  *st = it.status();
  return out;
}

void ExpectSame(const std::vector<Sample>& want, const std::vector<Sample>& got) {
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(want[i].t, got[i].t) << i;
    EXPECT_EQ(want[i].v, got[i].v) << i;
  }
}

// Chunks of one series as the head and the store hand them over: consecutive, sometimes
// the same chunk twice (a flush racing the read), in any order.
std::vector<ChunkRef> RandomChunks(std::mt19937_64& rng, std::vector<Sample>* all) {
  std::vector<ChunkRef> chunks;
  Timestamp t = Timestamp(rng() % 100000) - 50000;
  const int n = int(rng() % 6);
  for (int i = 0; i < n; ++i) {
    std::vector<Sample> samples;
    const int k = 1 + int(rng() % 150);
    for (int j = 0; j < k; ++j) {
      t += 1 + Timestamp(rng() % 30000);
      samples.push_back({t, double(rng() % 1000)});
      all->push_back(samples.back());
    }
    chunks.push_back(MakeChunk(samples));
    if (rng() % 4 == 0) chunks.push_back(chunks.back());
  }
  std::shuffle(chunks.begin(), chunks.end(), rng);
  return chunks;
}

TEST(ChunkListIterator, AppendRangeGivesWhatNextGives) {
  std::mt19937_64 rng(5);
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<Sample> all;
    const std::vector<ChunkRef> chunks = RandomChunks(rng, &all);
    const Timestamp lo = all.empty() ? 0 : all.front().t, hi = all.empty() ? 0 : all.back().t;
    Timestamp mint = lo + Timestamp(rng() % 200000) - 100000;
    Timestamp maxt = hi - Timestamp(rng() % 200000) + 100000;
    if (rng() % 5 == 0) mint = kMin;
    if (rng() % 5 == 0) maxt = kMax;
    // The iterator's own bounds and AppendRange's may differ; the result is the overlap.
    Timestamp it_mint = mint, it_maxt = maxt;
    if (rng() % 2) it_mint = mint + Timestamp(rng() % 100000);
    if (rng() % 2) it_maxt = maxt - Timestamp(rng() % 100000);
    absl::Status st;
    const std::vector<Sample> want =
        ByNext(chunks, std::max(mint, it_mint), std::min(maxt, it_maxt), &st);
    ASSERT_TRUE(st.ok());
    ChunkListIterator it(chunks, it_mint, it_maxt);
    std::vector<Sample> got = {{1, 1}};
    ASSERT_TRUE(it.AppendRange(mint, maxt, &got).ok());
    ASSERT_EQ(got.front().t, 1);  // appends
    got.erase(got.begin());
    ExpectSame(want, got);
  }
}

TEST(ChunkListIterator, AppendRangeReportsACorruptChunk) {
  std::vector<ChunkRef> chunks = {MakeChunk({{1, 1}, {2, 2}, {3, 3}})};
  ChunkRef bad = MakeChunk({{10, 1}, {20, 2}, {30, 3}});
  bad.bytes = std::make_shared<const std::string>(bad.bytes->substr(0, 4));
  chunks.push_back(bad);
  ChunkListIterator it(chunks, kMin, kMax);
  std::vector<Sample> out;
  const absl::Status st = it.AppendRange(kMin, kMax, &out);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_EQ(it.status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace strata
