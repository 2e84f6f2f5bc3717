// The out-of-order window: late samples join the head's chunks, never interleave with
// flushed ones, and survive restarts (WAL replay) and flushes exactly once.
#include <algorithm>
#include <map>
#include <random>

#include "gtest/gtest.h"
#include "storage/db.h"
#include "tests/storage/test_util.h"

namespace strata {
namespace {

using testing::M;
using testing::ReadAll;
using testing::TempDir;

constexpr int64_t kMinute = 60 * 1000;

StorageOptions Opts(const std::string& dir, int64_t window_ms) {
  StorageOptions o;
  o.dir = dir;
  o.flush_interval_ms = 0;
  o.chunk_samples = 4;
  o.partition_ms = 10 * kMinute;
  o.out_of_order_window_ms = window_ms;
  o.background_compaction = false;
  return o;
}

const Labels kSeries{{"__name__", "late"}, {"k", "a"}};

AppendResult AppendOne(Storage& db, Timestamp t, double v, const Labels& labels = kSeries) {
  std::vector<SeriesBatch> b = {{labels, {{t, v}}}};
  auto r = db.Append(b);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : AppendResult{};
}

std::vector<Sample> Read(Storage& db, const Labels& labels = kSeries) {
  auto q = db.MakeQuerier(-kMinute, 1000 * kMinute);
  EXPECT_TRUE(q.ok()) << q.status();
  if (!q.ok()) return {};
  auto got = ReadAll(**q, {M(MatchType::kEqual, "__name__", labels.MetricName())});
  auto it = got.find(labels.ToString());
  return it == got.end() ? std::vector<Sample>{} : it->second;
}

std::vector<Sample> FromModel(const std::map<Timestamp, double>& m) {
  std::vector<Sample> out;
  for (const auto& [t, v] : m) out.push_back({t, v});
  return out;
}

TEST(OutOfOrder, WindowZeroRejectsEveryLateSample) {
  TempDir dir;
  auto db = Storage::Open(Opts(dir.path(), 0));
  ASSERT_TRUE(db.ok()) << db.status();
  AppendOne(**db, 10'000, 1);
  AppendResult r = AppendOne(**db, 9'999, 2);
  EXPECT_EQ(r.out_of_order, 1);
  EXPECT_EQ(r.appended, 0);
  EXPECT_TRUE(testing::SameSamples(Read(**db), {{10'000, 1}}));
}

TEST(OutOfOrder, LateSamplesInsideTheWindowJoinTheHeadInTimeOrder) {
  TempDir dir;
  auto db = Storage::Open(Opts(dir.path(), 10'000));
  ASSERT_TRUE(db.ok()) << db.status();
  std::map<Timestamp, double> model;
  // Even seconds first: chunks of 4 samples, so the late odd ones land in closed chunks,
  // the open one, and between chunks.
  for (Timestamp t = 0; t <= 20'000; t += 2'000) {
    ASSERT_EQ(AppendOne(**db, t, t / 1000.0).appended, 1);
    model[t] = t / 1000.0;
  }
  int64_t taken = 0, rejected = 0;
  for (Timestamp t = 19'000; t > 0; t -= 2'000) {
    AppendResult r = AppendOne(**db, t, t / 1000.0);
    if (20'000 - t <= 10'000) {
      EXPECT_EQ(r.appended, 1) << t;
      EXPECT_EQ(r.out_of_order_appended, 1) << t;
      model[t] = t / 1000.0;
      ++taken;
    } else {
      EXPECT_EQ(r.out_of_order, 1) << t << ": older than the window";
      ++rejected;
    }
  }
  EXPECT_EQ(taken, 5);
  EXPECT_EQ(rejected, 5);
  // Same time and value again: a no-op; another value: a duplicate.
  EXPECT_EQ(AppendOne(**db, 15'000, 15).unchanged, 1);
  EXPECT_EQ(AppendOne(**db, 15'000, 99).duplicate, 1);
  EXPECT_EQ(AppendOne(**db, 14'000, 14).unchanged, 1);
  EXPECT_TRUE(testing::SameSamples(Read(**db), FromModel(model))) << testing::Describe(Read(**db));
  // In-order appends go on after the late ones.
  ASSERT_EQ(AppendOne(**db, 21'000, 21).appended, 1);
  model[21'000] = 21;
  // Everything written to the store reads back the same, and a flush of everything leaves
  // the late samples in place.
  ASSERT_TRUE((*db)->Flush(/*cut_open=*/true).ok());
  EXPECT_TRUE(testing::SameSamples(Read(**db), FromModel(model))) << testing::Describe(Read(**db));
  EXPECT_EQ((*db)->head().num_chunks(), 0);
}

TEST(OutOfOrder, FlushedChunksAreFinal) {
  TempDir dir;
  auto db = Storage::Open(Opts(dir.path(), kMinute));
  ASSERT_TRUE(db.ok()) << db.status();
  std::map<Timestamp, double> model;
  for (Timestamp t = 0; t <= 10'000; t += 1'000) {  // chunks [0,3] [4,7] and open [8,10]
    ASSERT_EQ(AppendOne(**db, t, 1).appended, 1);
    model[t] = 1;
  }
  ASSERT_TRUE((*db)->Flush().ok());  // the closed chunks, up to 7 s, are now in the store
  EXPECT_EQ(AppendOne(**db, 2'500, 2).out_of_order, 1) << "inside a stored chunk";
  EXPECT_EQ(AppendOne(**db, 7'000, 2).out_of_order, 1) << "at the stored end";
  EXPECT_EQ(AppendOne(**db, 7'500, 2).out_of_order_appended, 1) << "after the stored end";
  model[7'500] = 2;
  EXPECT_EQ(AppendOne(**db, 9'500, 2).out_of_order_appended, 1);
  model[9'500] = 2;
  EXPECT_TRUE(testing::SameSamples(Read(**db), FromModel(model))) << testing::Describe(Read(**db));
  ASSERT_TRUE((*db)->Flush(/*cut_open=*/true).ok());
  // With every chunk in the store, nothing at or before the stored end is taken; after it,
  // a late sample joins the open chunk.
  EXPECT_EQ(AppendOne(**db, 10'000, 1).unchanged, 1);
  ASSERT_EQ(AppendOne(**db, 12'000, 3).appended, 1);
  model[12'000] = 3;
  ASSERT_TRUE((*db)->Flush(/*cut_open=*/true).ok());
  EXPECT_EQ(AppendOne(**db, 11'000, 3).out_of_order_appended, 0) << "stored end is 12 s";
  ASSERT_EQ(AppendOne(**db, 14'000, 4).appended, 1);
  model[14'000] = 4;
  EXPECT_EQ(AppendOne(**db, 13'000, 4).out_of_order_appended, 1);
  model[13'000] = 4;
  EXPECT_TRUE(testing::SameSamples(Read(**db), FromModel(model))) << testing::Describe(Read(**db));
}

TEST(OutOfOrder, LateSampleInAnEarlierPartitionGetsAChunkThere) {
  TempDir dir;
  auto db = Storage::Open(Opts(dir.path(), 5 * kMinute));
  ASSERT_TRUE(db.ok()) << db.status();
  std::map<Timestamp, double> model;
  // Partitions are 10 minutes: 9:50 is in the first, 10:10 and 10:20 in the second.
  for (Timestamp t : {590'000, 610'000, 620'000}) {
    ASSERT_EQ(AppendOne(**db, t, 1).appended, 1);
    model[t] = 1;
  }
  // 9:55 belongs with 9:50 (first partition); 10:05 starts the open chunk's partition.
  EXPECT_EQ(AppendOne(**db, 595'000, 2).out_of_order_appended, 1);
  EXPECT_EQ(AppendOne(**db, 605'000, 2).out_of_order_appended, 1);
  model[595'000] = model[605'000] = 2;
  ASSERT_TRUE((*db)->Flush().ok());  // the first partition's chunk goes to the store
  // 9:59 is after the stored end and in the first partition, where the head has no chunk
  // left: a chunk of its own; 10:00 joins the open chunk.
  EXPECT_EQ(AppendOne(**db, 599'000, 3).out_of_order_appended, 1);
  EXPECT_EQ(AppendOne(**db, 600'000, 3).out_of_order_appended, 1);
  model[599'000] = model[600'000] = 3;
  EXPECT_TRUE(testing::SameSamples(Read(**db), FromModel(model))) << testing::Describe(Read(**db));
  ASSERT_TRUE((*db)->Flush(/*cut_open=*/true).ok());
  EXPECT_TRUE(testing::SameSamples(Read(**db), FromModel(model))) << testing::Describe(Read(**db));
}

// Closed with and without flushing the head: from RocksDB or from the WAL, the late
// samples come back once each.
TEST(OutOfOrder, LateSamplesSurviveRestartsWhateverTheWindowIsThen) {
  for (bool flush_on_close : {false, true}) {
    SCOPED_TRACE(flush_on_close);
    TempDir dir;
    std::map<Timestamp, double> model;
    {
      auto opts = Opts(dir.path(), kMinute);
      opts.flush_on_close = flush_on_close;
      auto db = Storage::Open(opts);
      ASSERT_TRUE(db.ok()) << db.status();
      for (Timestamp t = 0; t <= 30'000; t += 3'000) {
        ASSERT_EQ(AppendOne(**db, t, t).appended, 1);
        model[t] = t;
      }
      ASSERT_TRUE((*db)->Flush().ok());  // some chunks stored, the rest only in the WAL
      for (Timestamp t = 29'000; t > 0; t -= 3'000) {
        if (AppendOne(**db, t, -t).appended == 1) model[t] = -t;
      }
      ASSERT_EQ(AppendOne(**db, 31'000, 31).appended, 1);
      model[31'000] = 31;
      EXPECT_TRUE(testing::SameSamples(Read(**db), FromModel(model)));
    }
    for (int64_t window : {int64_t{0}, kMinute}) {
      SCOPED_TRACE(window);
      auto db = Storage::Open(Opts(dir.path(), window));
      ASSERT_TRUE(db.ok()) << db.status();
      EXPECT_TRUE(testing::SameSamples(Read(**db), FromModel(model)))
          << testing::Describe(Read(**db)) << "\nwant " << testing::Describe(FromModel(model));
    }
  }
}

// A clean close writes every head chunk to RocksDB, so after it the series' stored end is
// its last sample: a late sample before it is refused even inside the window (stored chunks
// are final), a newer one is taken, and nothing is read twice.
TEST(OutOfOrder, AfterAFlushingCloseTheLastSampleBoundsTheWindow) {
  TempDir dir;
  std::map<Timestamp, double> model;
  {
    auto db = Storage::Open(Opts(dir.path(), kMinute));
    ASSERT_TRUE(db.ok()) << db.status();
    for (Timestamp t = 0; t <= 30'000; t += 3'000) {
      ASSERT_EQ(AppendOne(**db, t, t).appended, 1);
      model[t] = t;
    }
    ASSERT_EQ(AppendOne(**db, 28'000, -28).appended, 1);  // late, into the open chunk
    model[28'000] = -28;
    ASSERT_TRUE((*db)->Close().ok());
  }
  auto db = Storage::Open(Opts(dir.path(), kMinute));
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_EQ((*db)->stats().wal_replayed_records, 0);
  EXPECT_TRUE(testing::SameSamples(Read(**db), FromModel(model))) << testing::Describe(Read(**db));
  EXPECT_EQ(AppendOne(**db, 29'000, -29).out_of_order, 1);
  EXPECT_EQ(AppendOne(**db, 30'000, 30'000).unchanged, 1);
  EXPECT_EQ(AppendOne(**db, 33'000, 33).appended, 1);
  model[33'000] = 33;
  EXPECT_EQ(AppendOne(**db, 32'000, 32).out_of_order_appended, 1) << "the window reopens";
  model[32'000] = 32;
  EXPECT_TRUE(testing::SameSamples(Read(**db), FromModel(model))) << testing::Describe(Read(**db));
  db->reset();
  db = Storage::Open(Opts(dir.path(), kMinute));
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_TRUE(testing::SameSamples(Read(**db), FromModel(model))) << testing::Describe(Read(**db));
}

// Random appends (in order and late), flushes, restarts and reads against a model built
// from what each append said it did. Every accepted sample must read back exactly once.
TEST(OutOfOrder, RandomAgainstModel) {
  for (uint32_t seed = 1; seed <= 12; ++seed) {
    SCOPED_TRACE(seed);
    std::mt19937 rng(seed);
    TempDir dir;
    const int64_t window = 20'000;
    std::vector<Labels> series;
    for (int i = 0; i < 3; ++i)
      series.push_back(Labels{{"__name__", "late"}, {"k", std::to_string(i)}});
    std::vector<std::map<Timestamp, double>> model(series.size());
    std::vector<Timestamp> last(series.size(), 0);
    auto opts = Opts(dir.path(), window);
    opts.partition_ms = 60'000;  // partition boundaries every 60 samples
    auto db = Storage::Open(opts);
    ASSERT_TRUE(db.ok()) << db.status();
    int64_t late_taken = 0;
    for (int op = 0; op < 1500; ++op) {
      const size_t s = rng() % series.size();
      const int kind = static_cast<int>(rng() % 100);
      if (kind < 55) {
        last[s] += 1'000 + static_cast<Timestamp>(rng() % 3) * 1'000;
        const double v = static_cast<double>(rng() % 1000);
        AppendResult r = AppendOne(**db, last[s], v, series[s]);
        ASSERT_EQ(r.appended, 1);
        model[s][last[s]] = v;
      } else if (kind < 92) {
        const Timestamp t = last[s] - static_cast<Timestamp>(rng() % 25'000);
        const double v = static_cast<double>(rng() % 1000);
        AppendResult r = AppendOne(**db, t, v, series[s]);
        auto it = model[s].find(t);
        if (it != model[s].end()) {
          ASSERT_EQ(r.appended, 0);
          ASSERT_EQ(r.unchanged + r.duplicate + r.out_of_order, 1);
          if (r.unchanged == 1) {
            ASSERT_EQ(it->second, v);
          }
        } else if (r.appended == 1) {
          model[s][t] = v;
          if (t < last[s]) ++late_taken;
        } else {
          ASSERT_EQ(r.out_of_order + r.too_old, 1);
          if (last[s] - t > window) {
            ASSERT_EQ(r.out_of_order, 1);
          }
        }
      } else if (kind < 97) {
        bool cut = rng() % 2 == 0;
        ASSERT_TRUE((*db)->Flush(cut).ok());
      } else if (kind < 99) {
        db->reset();
        opts.flush_on_close = rng() % 2 == 0;  // the next close flushes or leaves the WAL
        db = Storage::Open(opts);
        ASSERT_TRUE(db.ok()) << db.status();
      } else {
        for (size_t i = 0; i < series.size(); ++i) {
          ASSERT_TRUE(testing::SameSamples(Read(**db, series[i]), FromModel(model[i])))
              << "series " << i << " at op " << op << "\ngot  "
              << testing::Describe(Read(**db, series[i])) << "\nwant "
              << testing::Describe(FromModel(model[i]));
        }
      }
    }
    for (size_t i = 0; i < series.size(); ++i) {
      ASSERT_TRUE(testing::SameSamples(Read(**db, series[i]), FromModel(model[i])))
          << "series " << i << "\ngot  " << testing::Describe(Read(**db, series[i])) << "\nwant "
          << testing::Describe(FromModel(model[i]));
    }
    EXPECT_GT(late_taken, 100);
    db->reset();
    db = Storage::Open(opts);
    ASSERT_TRUE(db.ok()) << db.status();
    for (size_t i = 0; i < series.size(); ++i) {
      ASSERT_TRUE(testing::SameSamples(Read(**db, series[i]), FromModel(model[i])))
          << "after restart, series " << i;
    }
  }
}

}  // namespace
}  // namespace strata
