// Appender, querier and flush threads at once. Every querier must see, for every writer,
// a gap-free prefix of what that writer appended, at least as long as what was
// acknowledged before the querier was made.
#include <atomic>
#include <thread>

#include "gtest/gtest.h"
#include "storage/db.h"
#include "tests/storage/test_util.h"

namespace strata {
namespace {

using testing::M;

constexpr int kWriters = 3;
constexpr int kSeriesPerWriter = 20;
constexpr int kBatches = 150;
constexpr int kPerBatch = 4;

Labels WriterSeries(int w, int s) {
  return Labels{{"__name__", "load"}, {"w", std::to_string(w)}, {"s", std::to_string(s)}};
}

TEST(StorageConcurrency, AppendersQueriersAndFlushesAgree) {
  testing::TempDir dir;
  StorageOptions opts;
  opts.dir = dir.path();
  opts.flush_interval_ms = 5;
  opts.chunk_samples = 16;
  opts.partition_ms = 60000;
  opts.wal_segment_bytes = 16 << 10;
  opts.wal_sync = false;
  auto db = Storage::Open(opts);
  ASSERT_TRUE(db.ok()) << db.status();
  Storage& storage = **db;

  std::atomic<int64_t> acked[kWriters];
  for (auto& a : acked) a = 0;
  std::atomic<bool> done{false};
  std::atomic<int64_t> shared_clock{0};
  std::atomic<int64_t> queries{0};

  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int b = 0; b < kBatches; ++b) {
        std::vector<SeriesBatch> batch;
        for (int s = 0; s < kSeriesPerWriter; ++s) {
          SeriesBatch sb{WriterSeries(w, s), {}};
          for (int j = 0; j < kPerBatch; ++j) {
            int64_t n = b * kPerBatch + j;
            sb.samples.push_back({n * 1000, static_cast<double>(n)});
          }
          batch.push_back(std::move(sb));
        }
        // A series every writer appends to: some samples lose the race and are rejected.
        int64_t t = shared_clock.fetch_add(1000);
        batch.push_back({Labels{{"__name__", "shared"}}, {{t, 1.0}}});
        auto r = storage.Append(batch);
        ASSERT_TRUE(r.ok()) << r.status();
        ASSERT_EQ(r->appended + r->out_of_order, kSeriesPerWriter * kPerBatch + 1);
        acked[w] = b + 1;
      }
    });
  }
  for (int qn = 0; qn < 2; ++qn) {
    threads.emplace_back([&] {
      while (!done) {
        int64_t before[kWriters];
        for (int w = 0; w < kWriters; ++w) before[w] = acked[w];
        auto q = storage.MakeQuerier(0, std::numeric_limits<Timestamp>::max() / 2);
        ASSERT_TRUE(q.ok());
        auto got = testing::ReadAll(**q, {M(MatchType::kEqual, "__name__", "load")});
        for (int w = 0; w < kWriters; ++w) {
          for (int s = 0; s < kSeriesPerWriter; s += 7) {
            auto it = got.find(WriterSeries(w, s).ToString());
            size_t n = it == got.end() ? 0 : it->second.size();
            ASSERT_GE(static_cast<int64_t>(n), before[w] * kPerBatch) << "writer " << w;
            for (size_t i = 0; i < n; ++i) {
              ASSERT_EQ(it->second[i].t, static_cast<int64_t>(i) * 1000);
            }
          }
        }
        auto values = (*q)->LabelValues("w", {});
        ASSERT_TRUE(values.ok());
        ++queries;
      }
    });
  }
  for (int w = 0; w < kWriters; ++w) threads[w].join();
  done = true;
  for (size_t i = kWriters; i < threads.size(); ++i) threads[i].join();
  EXPECT_GT(queries.load(), 0);
  EXPECT_GT(storage.stats().flushes, 0);

  // Everything is there, once, after a final flush and a restart.
  ASSERT_TRUE(storage.Flush(true).ok());
  ASSERT_TRUE(storage.Close().ok());
  db->reset();
  auto again = Storage::Open(opts);
  ASSERT_TRUE(again.ok());
  auto q = (*again)->MakeQuerier(0, std::numeric_limits<Timestamp>::max() / 2);
  auto got = testing::ReadAll(**q, {M(MatchType::kRegexMatch, "__name__", "load|shared")});
  EXPECT_EQ(got.size(), size_t{kWriters * kSeriesPerWriter + 1});
  for (int w = 0; w < kWriters; ++w) {
    EXPECT_EQ(got[WriterSeries(w, 3).ToString()].size(), size_t{kBatches * kPerBatch});
  }
}

}  // namespace
}  // namespace strata
