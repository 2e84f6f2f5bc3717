// The remote-write cache of label bytes → series ref.
#include "server/series_ref_cache.h"

#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace strata {
namespace {

TEST(SeriesRefCache, FindsExactlyTheBytesInserted) {
  SeriesRefCache cache;
  EXPECT_EQ(cache.Find("a"), 0u);
  cache.Insert("a", 7);
  cache.Insert("ab", 8);
  EXPECT_EQ(cache.Find("a"), 7u);
  EXPECT_EQ(cache.Find("ab"), 8u);
  EXPECT_EQ(cache.Find("b"), 0u);
  EXPECT_EQ(cache.Find(""), 0u);
  EXPECT_EQ(cache.Find(std::string("a\0", 2)), 0u);
  cache.Insert("a", 9);  // the newest ref wins
  EXPECT_EQ(cache.Find("a"), 9u);
  EXPECT_EQ(cache.entries(), 2u);
  cache.Clear();
  EXPECT_EQ(cache.Find("a"), 0u);
  EXPECT_EQ(cache.entries(), 0u);
  EXPECT_EQ(cache.bytes(), 0u);
}

TEST(SeriesRefCache, StaysWithinItsBudget) {
  const size_t budget = 64 * 1024;
  SeriesRefCache cache(budget);
  for (SeriesRef r = 1; r <= 10'000; ++r) {
    cache.Insert("series-" + std::to_string(r) + std::string(40, 'x'), r);
    ASSERT_LE(cache.bytes(), budget);
  }
  EXPECT_GT(cache.evictions(), 0);
  EXPECT_GT(cache.entries(), 0u);
  // Whatever is left maps to its own ref.
  size_t found = 0;
  for (SeriesRef r = 1; r <= 10'000; ++r) {
    SeriesRef got = cache.Find("series-" + std::to_string(r) + std::string(40, 'x'));
    if (got != 0) {
      EXPECT_EQ(got, r);
      ++found;
    }
  }
  EXPECT_EQ(found, cache.entries());
  // An entry larger than a shard's share is not kept.
  cache.Insert(std::string(budget, 'y'), 1);
  EXPECT_EQ(cache.Find(std::string(budget, 'y')), 0u);
}

TEST(SeriesRefCache, ForgetsEverythingForAnotherStorage) {
  SeriesRefCache cache;
  int a = 0, b = 0;
  cache.BindTo(&a);
  cache.Insert("x", 1);
  cache.BindTo(&a);
  EXPECT_EQ(cache.Find("x"), 1u);
  cache.BindTo(&b);
  EXPECT_EQ(cache.Find("x"), 0u);
}

TEST(SeriesRefCache, ConcurrentWritersAndReaders) {
  SeriesRefCache cache(256 * 1024);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      for (SeriesRef r = 1; r <= 5'000; ++r) {
        std::string key = std::to_string(t) + ":" + std::to_string(r);
        cache.Insert(key, r);
        SeriesRef got = cache.Find(key);
        EXPECT_TRUE(got == 0 || got == r);
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_LE(cache.bytes(), 256u * 1024);
}

}  // namespace
}  // namespace strata
