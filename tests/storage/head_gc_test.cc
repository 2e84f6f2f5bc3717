// Head GC: series idle longer than idle_chunk_ms leave the head once their data is flushed,
// stay queryable from the store, and come back with their ref when they get samples again.
#include <atomic>
#include <chrono>
#include <thread>

#include "gtest/gtest.h"
#include "storage/db.h"
#include "tests/storage/test_util.h"

namespace strata {
namespace {

using testing::M;
using testing::ReadAll;
using testing::TempDir;

constexpr int64_t kMinute = 60 * 1000;

std::vector<Sample> Range(Timestamp from, int n, int64_t step, double v0 = 0) {
  std::vector<Sample> out;
  for (int i = 0; i < n; ++i) out.push_back({from + i * step, v0 + i});
  return out;
}

std::vector<std::string> HeadValues(Head& head, std::string_view name) {
  auto values = head.Index()->LabelValues(name, "");
  EXPECT_TRUE(values.ok());
  return values.ok() ? *values : std::vector<std::string>{};
}

// Flushes only when a test asks; series idle for 10 minutes leave the head at a flush.
StorageOptions GcOptions(const TempDir& dir) {
  StorageOptions opts;
  opts.dir = dir.path();
  opts.flush_interval_ms = 0;
  opts.idle_chunk_ms = 10 * kMinute;
  return opts;
}

TEST(HeadGc, IdleFlushedSeriesLeaveTheHeadAndComeBackWithTheirRef) {
  TempDir dir;
  StorageOptions opts = GcOptions(dir);
  opts.flush_on_close = false;  // the restart below replays the comeback from the WAL
  Labels gone{{"__name__", "m"}, {"host", "gone"}, {"only_gone", "x"}};
  Labels live{{"__name__", "m"}, {"host", "live"}};
  SeriesRef gone_ref = 0;
  {
    auto db = Storage::Open(opts);
    ASSERT_TRUE(db.ok()) << db.status();
    Storage& s = **db;
    // `gone` has samples for 5 minutes, `live` for an hour.
    std::vector<SeriesBatch> b = {{gone, Range(0, 20, 15000)}, {live, Range(0, 240, 15000)}};
    ASSERT_TRUE(s.Append(b).ok());
    ASSERT_EQ(s.head().num_series(), 2);
    gone_ref = s.head().next_ref() - 2;
    ASSERT_NE(s.head().GetByRef(gone_ref), nullptr);
    ASSERT_EQ(s.head().LabelsOf(*s.head().GetByRef(gone_ref)), gone);

    ASSERT_TRUE(s.Flush().ok());
    EXPECT_EQ(s.head().num_series(), 1) << "the idle series left the head";
    EXPECT_EQ(s.stats().head_series, 1);
    EXPECT_EQ(s.stats().head_series_removed, 1);
    EXPECT_EQ(s.head().GetByRef(gone_ref), nullptr);
    EXPECT_EQ(HeadValues(s.head(), "host"), std::vector<std::string>{"live"});
    EXPECT_TRUE(HeadValues(s.head(), "only_gone").empty()) << "its postings went too";
    EXPECT_TRUE(s.head().Index()->LabelNames()->size() == 2u);

    // Its data answers from the store, with and without the live series' head data.
    auto q = s.MakeQuerier(0, 60 * kMinute);
    ASSERT_TRUE(q.ok());
    auto got = ReadAll(**q, {M(MatchType::kEqual, "__name__", "m")});
    ASSERT_EQ(got.size(), 2u);
    EXPECT_TRUE(testing::SameSamples(got[gone.ToString()], Range(0, 20, 15000)));
    EXPECT_EQ(got[live.ToString()].size(), 240u);
    auto values = (*q)->LabelValues("only_gone", {});
    ASSERT_TRUE(values.ok());
    EXPECT_EQ(*values, std::vector<std::string>{"x"});

    // A second flush removes nothing more; the live series stays.
    ASSERT_TRUE(s.Flush().ok());
    EXPECT_EQ(s.head().num_series(), 1);

    // It comes back: same ref, and the order check still knows its last sample.
    b = {{gone, {{4 * 15000, 99}, {60 * kMinute, 1}}}};
    auto r = s.Append(b);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->out_of_order, 1);
    EXPECT_EQ(r->appended, 1);
    EXPECT_EQ(s.head().num_series(), 2);
    SeriesPtr back = s.head().GetByRef(gone_ref);
    ASSERT_NE(back, nullptr) << "the store gave the same ref back";
    EXPECT_EQ(s.head().LabelsOf(*back), gone);
    EXPECT_EQ(s.head().next_ref(), gone_ref + 2) << "no new ref was taken";
    EXPECT_EQ(HeadValues(s.head(), "only_gone"), std::vector<std::string>{"x"});

    q = s.MakeQuerier(0, 61 * kMinute);
    got = ReadAll(**q, {M(MatchType::kEqual, "host", "gone")});
    ASSERT_EQ(got.size(), 1u);
    std::vector<Sample> want = Range(0, 20, 15000);
    want.push_back({60 * kMinute, 1});
    EXPECT_TRUE(testing::SameSamples(got[gone.ToString()], want))
        << testing::Describe(got[gone.ToString()]);
  }
  // After a restart (the comeback sample only in the WAL) everything is still there once.
  auto db = Storage::Open(opts);
  ASSERT_TRUE(db.ok()) << db.status();
  auto q = (*db)->MakeQuerier(0, 61 * kMinute);
  auto got = ReadAll(**q, {M(MatchType::kEqual, "__name__", "m")});
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[gone.ToString()].size(), 21u);
  EXPECT_NE((*db)->head().GetByRef(gone_ref), nullptr);
}

// A caller may append by a series it holds (remote write's cache) without labels.
// When head GC took that series out in the meantime, the append finds it again by the
// series' own label set: the samples land in the live series, under the same ref.
TEST(HeadGc, AppendBySeriesHeldAcrossGc) {
  TempDir dir;
  StorageOptions opts = GcOptions(dir);
  Labels gone{{"__name__", "m"}, {"host", "gone"}};
  Labels live{{"__name__", "m"}, {"host", "live"}};
  auto db = Storage::Open(opts);
  ASSERT_TRUE(db.ok()) << db.status();
  Storage& s = **db;
  std::vector<SeriesBatch> b = {{gone, Range(0, 20, 15000)}, {live, Range(0, 240, 15000)}};
  std::vector<SeriesPtr> looked_up;
  ASSERT_TRUE(s.Append(b, &looked_up).ok());
  ASSERT_EQ(looked_up.size(), 2u);
  ASSERT_NE(looked_up[0], nullptr);
  ASSERT_NE(looked_up[1], nullptr);
  const std::vector<SeriesRef> refs = {looked_up[0]->ref, looked_up[1]->ref};
  EXPECT_EQ(s.head().LabelsOf(*s.head().GetByRef(refs[0])), gone);
  EXPECT_EQ(s.head().LabelsOf(*s.head().GetByRef(refs[1])), live);

  // By series, no labels: appended like by labels, nothing looked up.
  SeriesPtr held = s.head().GetByRef(refs[0]);
  b = {{Labels(), {{20 * 15000, 20}}, held},
       {Labels(), {{240 * 15000, 240}}, s.head().GetByRef(refs[1])}};
  auto r = s.Append(b, &looked_up);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->appended, 2);
  ASSERT_EQ(looked_up.size(), 2u);
  EXPECT_EQ(looked_up[0], nullptr);
  EXPECT_EQ(looked_up[1], nullptr);

  // `gone` goes idle and leaves the head while the caller still holds it.
  b = {{live, Range(241 * 15000, 200, 15000)}};
  ASSERT_TRUE(s.Append(b).ok());
  ASSERT_TRUE(s.Flush().ok());
  ASSERT_EQ(s.head().GetByRef(refs[0]), nullptr) << "head GC removed it";
  b = {{Labels(), {{300 * 15000, 300}}, held}};
  r = s.Append(b, &looked_up);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->appended, 1);
  ASSERT_EQ(looked_up.size(), 1u);
  ASSERT_NE(looked_up[0], nullptr) << "the removed series is looked up again";
  EXPECT_EQ(looked_up[0]->ref, refs[0]) << "recreated with its ref";
  SeriesPtr back = s.head().GetByRef(refs[0]);
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(back.get(), looked_up[0].get()) << "the series reported is the head's";
  EXPECT_NE(back.get(), held.get()) << "a new head series";
  EXPECT_EQ(s.head().LabelsOf(*back), gone);

  auto q = s.MakeQuerier(0, 400 * 15000);
  ASSERT_TRUE(q.ok());
  auto got = ReadAll(**q, {M(MatchType::kEqual, "host", "gone")});
  ASSERT_EQ(got.size(), 1u);
  std::vector<Sample> want = Range(0, 20, 15000);
  want.push_back({20 * 15000, 20});
  want.push_back({300 * 15000, 300});
  EXPECT_TRUE(testing::SameSamples(got[gone.ToString()], want))
      << testing::Describe(got[gone.ToString()]);

  // Neither labels nor series: refused before anything is appended.
  b = {{Labels(), {{301 * 15000, 1}}}};
  EXPECT_EQ(s.Append(b).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(HeadGc, DisabledWithIdleChunkMsZero) {
  TempDir dir;
  StorageOptions opts;
  opts.dir = dir.path();
  opts.flush_interval_ms = 0;
  opts.idle_chunk_ms = 0;
  auto db = Storage::Open(opts);
  ASSERT_TRUE(db.ok());
  std::vector<SeriesBatch> b = {{Labels{{"__name__", "a"}}, Range(0, 10, 15000)},
                                {Labels{{"__name__", "b"}}, Range(0, 1000, 15000)}};
  ASSERT_TRUE((*db)->Append(b).ok());
  ASSERT_TRUE((*db)->Flush(true).ok());
  EXPECT_EQ((*db)->head().num_series(), 2);
}

// Writers whose series go idle and come back while a background flush (and head GC) runs
// every few milliseconds and queriers read. Series (w, s) gets a sample at t = b seconds in
// batch b when s is in the batch's active third; with idle_chunk_ms of 5 s every series is
// idle, flushed and removed several times. Every querier must see, for every checked series,
// a prefix of its samples at least as long as what was acknowledged before it started.
constexpr int kWriters = 2;
constexpr int kSeries = 12;
constexpr int kBatches = 240;

bool Active(int b, int s) { return (b / 10) % 3 == s % 3; }

std::vector<Sample> Expected(int s, int batches) {
  std::vector<Sample> out;
  for (int b = 0; b < batches; ++b) {
    if (Active(b, s)) out.push_back({b * 1000, double(b)});
  }
  return out;
}

Labels GcSeries(int w, int s) {
  return Labels{{"__name__", "churn"}, {"w", std::to_string(w)}, {"s", std::to_string(s)}};
}

TEST(HeadGc, AppendersQueriersAndGcAgree) {
  TempDir dir;
  StorageOptions opts;
  opts.dir = dir.path();
  opts.flush_interval_ms = 2;
  opts.idle_chunk_ms = 5000;
  opts.chunk_samples = 8;
  opts.wal_sync = false;
  auto db = Storage::Open(opts);
  ASSERT_TRUE(db.ok()) << db.status();
  Storage& storage = **db;

  std::atomic<int> acked[kWriters];
  for (auto& a : acked) a = 0;
  std::atomic<bool> done{false};
  std::atomic<int64_t> queries{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int b = 0; b < kBatches; ++b) {
        std::vector<SeriesBatch> batch;
        for (int s = 0; s < kSeries; ++s) {
          if (Active(b, s)) batch.push_back({GcSeries(w, s), {{b * 1000, double(b)}}});
        }
        auto r = storage.Append(batch);
        ASSERT_TRUE(r.ok()) << r.status();
        ASSERT_EQ(r->appended, static_cast<int64_t>(batch.size())) << "batch " << b;
        acked[w] = b + 1;
        if (b % 10 == 9) {
          // Let two background flushes (and head GCs) pass between active thirds.
          int64_t f = storage.stats().flushes;
          while (storage.stats().flushes < f + 2) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
          }
        }
      }
    });
  }
  for (int qn = 0; qn < 2; ++qn) {
    threads.emplace_back([&] {
      while (!done) {
        int before[kWriters];
        for (int w = 0; w < kWriters; ++w) before[w] = acked[w];
        auto q = storage.MakeQuerier(0, kBatches * 1000);
        ASSERT_TRUE(q.ok());
        auto got = ReadAll(**q, {M(MatchType::kEqual, "__name__", "churn")});
        for (int w = 0; w < kWriters; ++w) {
          for (int s = 0; s < kSeries; s += 5) {
            auto it = got.find(GcSeries(w, s).ToString());
            std::vector<Sample> seen = it == got.end() ? std::vector<Sample>{} : it->second;
            std::vector<Sample> all = Expected(s, kBatches);
            ASSERT_GE(seen.size(), Expected(s, before[w]).size()) << "w=" << w << " s=" << s;
            ASSERT_LE(seen.size(), all.size());
            all.resize(seen.size());
            ASSERT_TRUE(testing::SameSamples(seen, all)) << testing::Describe(seen);
          }
        }
        ++queries;
      }
    });
  }
  for (int w = 0; w < kWriters; ++w) threads[w].join();
  done = true;
  for (size_t i = kWriters; i < threads.size(); ++i) threads[i].join();
  EXPECT_GT(queries.load(), 0);
  EXPECT_GT(storage.stats().head_series_removed, 0) << "series went idle and were removed";

  ASSERT_TRUE(storage.Flush(true).ok());
  auto q = storage.MakeQuerier(0, kBatches * 1000);
  auto got = ReadAll(**q, {M(MatchType::kEqual, "__name__", "churn")});
  ASSERT_EQ(got.size(), size_t{kWriters * kSeries});
  for (int w = 0; w < kWriters; ++w) {
    for (int s = 0; s < kSeries; ++s) {
      EXPECT_TRUE(testing::SameSamples(got[GcSeries(w, s).ToString()], Expected(s, kBatches)))
          << "w=" << w << " s=" << s;
    }
  }
}

}  // namespace
}  // namespace strata
