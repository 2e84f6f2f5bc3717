// The remote-write cache of label bytes → head series.
#include "server/series_ref_cache.h"

#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace strata {
namespace {

// A series outside any head, as the cache only holds and hands back pointers.
SeriesPtr Series(SeriesRef ref) { return SeriesPtr(new MemSeries(ref, {})); }
SeriesRef RefOf(const SeriesPtr& s) { return s == nullptr ? 0 : s->ref; }

TEST(SeriesRefCache, FindsExactlyTheBytesInserted) {
  SeriesRefCache cache;
  EXPECT_EQ(RefOf(cache.Find("a")), 0u);
  cache.Insert("a", Series(7));
  cache.Insert("ab", Series(8));
  EXPECT_EQ(RefOf(cache.Find("a")), 7u);
  EXPECT_EQ(RefOf(cache.Find("ab")), 8u);
  EXPECT_EQ(RefOf(cache.Find("b")), 0u);
  EXPECT_EQ(RefOf(cache.Find("")), 0u);
  EXPECT_EQ(RefOf(cache.Find(std::string("a\0", 2))), 0u);
  cache.Insert("a", Series(9));  // the newest series wins
  EXPECT_EQ(RefOf(cache.Find("a")), 9u);
  EXPECT_EQ(cache.entries(), 2u);
  cache.Clear();
  EXPECT_EQ(RefOf(cache.Find("a")), 0u);
  EXPECT_EQ(cache.entries(), 0u);
  EXPECT_EQ(cache.bytes(), 0u);
}

// FindAll looks a request's keys up shard by shard, several at once: every answer must
// still land at its own index, whatever the mix of hits, misses, repeats and shards.
TEST(SeriesRefCache, FindAllAnswersEachKeyInPlace) {
  SeriesRefCache cache;
  std::vector<std::string> keys;
  for (int i = 0; i < 1000; ++i) keys.push_back("{job=\"j\",i=\"" + std::to_string(i) + "\"}");
  for (int i = 0; i < 1000; i += 3) cache.Insert(keys[i], Series(static_cast<SeriesRef>(i + 1)));
  for (size_t n : {0, 1, 2, 5, 9, 64, 200, 1000}) {
    std::vector<std::string_view> raw;
    for (size_t k = 0; k < n; ++k) raw.push_back(keys[(k * 7) % 1000]);
    if (n > 2) raw[n / 2] = raw[0];  // a repeat
    std::vector<SeriesPtr> out(n);
    const SeriesPtr sentinel = Series(99'999);
    if (n > 1) out[1] = sentinel;  // left alone on a miss, replaced on a hit
    cache.FindAll(raw, out);
    for (size_t k = 0; k < n; ++k) {
      const size_t i = static_cast<size_t>(std::stoi(std::string(raw[k].substr(12))));
      if (i % 3 == 0) {
        EXPECT_EQ(RefOf(out[k]), i + 1) << "n " << n << " k " << k;
      } else if (k == 1) {
        EXPECT_EQ(out[k].get(), sentinel.get()) << "n " << n;
      } else {
        EXPECT_EQ(out[k], nullptr) << "n " << n << " k " << k;
      }
    }
  }
}

TEST(SeriesRefCache, StaysWithinItsBudget) {
  const size_t budget = 64 * 1024;
  SeriesRefCache cache(budget);
  for (SeriesRef r = 1; r <= 10'000; ++r) {
    cache.Insert("series-" + std::to_string(r) + std::string(40, 'x'), Series(r));
    ASSERT_LE(cache.bytes(), budget);
  }
  EXPECT_GT(cache.evictions(), 0);
  EXPECT_GT(cache.entries(), 0u);
  // Whatever is left maps to its own series.
  size_t found = 0;
  for (SeriesRef r = 1; r <= 10'000; ++r) {
    SeriesRef got = RefOf(cache.Find("series-" + std::to_string(r) + std::string(40, 'x')));
    if (got != 0) {
      EXPECT_EQ(got, r);
      ++found;
    }
  }
  EXPECT_EQ(found, cache.entries());
  // An entry larger than a shard's share is not kept.
  cache.Insert(std::string(budget, 'y'), Series(1));
  EXPECT_EQ(RefOf(cache.Find(std::string(budget, 'y'))), 0u);
}

TEST(SeriesRefCache, ForgetsEverythingForAnotherHead) {
  SeriesRefCache cache;
  cache.BindTo(1);
  cache.Insert("x", Series(1));
  cache.BindTo(1);
  EXPECT_EQ(RefOf(cache.Find("x")), 1u);
  cache.BindTo(2);
  EXPECT_EQ(RefOf(cache.Find("x")), 0u);
  // Heads are told apart by an id that is never reused, not by their address.
  Head a({}, nullptr), b({}, nullptr);
  EXPECT_NE(a.instance_id(), b.instance_id());
}

TEST(SeriesRefCache, ConcurrentWritersAndReaders) {
  SeriesRefCache cache(256 * 1024);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      for (SeriesRef r = 1; r <= 5'000; ++r) {
        std::string key = std::to_string(t) + ":" + std::to_string(r);
        cache.Insert(key, Series(r));
        SeriesRef got = RefOf(cache.Find(key));
        EXPECT_TRUE(got == 0 || got == r);
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_LE(cache.bytes(), 256u * 1024);
}

}  // namespace
}  // namespace strata
