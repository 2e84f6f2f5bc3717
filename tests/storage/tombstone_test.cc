// Series deletion (tombstones), tombstone cleaning, snapshots and size-based retention.
#include <atomic>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "gtest/gtest.h"
#include "storage/db.h"
#include "storage/tombstones.h"
#include "tests/storage/test_util.h"

namespace strata {
namespace {

using testing::M;
using testing::ReadAll;
using testing::TempDir;

constexpr int64_t kPartition = 60000;

StorageOptions Opts(const std::string& dir) {
  StorageOptions o;
  o.dir = dir;
  o.flush_interval_ms = 0;
  o.partition_ms = kPartition;
  o.chunk_samples = 10;
  o.max_sample_age_ms = 0;
  o.retention_ms = 0;
  return o;
}

std::vector<Sample> Range(Timestamp from, Timestamp to, int64_t step) {
  std::vector<Sample> out;
  for (Timestamp t = from; t <= to; t += step) out.push_back({t, static_cast<double>(t) / 1000});
  return out;
}

std::vector<Sample> Without(std::vector<Sample> s, Timestamp mint, Timestamp maxt) {
  std::erase_if(s, [&](const Sample& x) { return x.t >= mint && x.t <= maxt; });
  return s;
}

Labels L(std::string_view name, std::string_view job) {
  return Labels{{"__name__", std::string(name)}, {"job", std::string(job)}};
}

testing::SeriesSamplesMap All(Storage& db) {
  auto q = db.MakeQuerier(std::numeric_limits<Timestamp>::min() / 2,
                          std::numeric_limits<Timestamp>::max() / 2);
  EXPECT_TRUE(q.ok());
  return ReadAll(**q, {M(MatchType::kRegexMatch, "__name__", ".+")});
}

void ExpectSamples(Storage& db, const Labels& l, const std::vector<Sample>& want) {
  auto got = All(db);
  if (want.empty()) {
    EXPECT_EQ(got.count(l.ToString()), 0u) << l.ToString() << " still listed";
    return;
  }
  ASSERT_EQ(got.count(l.ToString()), 1u) << l.ToString();
  EXPECT_TRUE(testing::SameSamples(got[l.ToString()], want))
      << l.ToString() << "\n got  " << testing::Describe(got[l.ToString()]) << "\n want "
      << testing::Describe(want);
}

TEST(Intervals, MergeAndContain) {
  Intervals iv;
  iv.Add({10, 20});
  iv.Add({30, 40});
  iv.Add({21, 25});  // adjacent to the first
  ASSERT_EQ(iv.size(), 2u);
  EXPECT_EQ(iv.list()[0], (TimeInterval{10, 25}));
  iv.Add({0, 100});
  ASSERT_EQ(iv.size(), 1u);
  EXPECT_TRUE(iv.Contains(0));
  EXPECT_TRUE(iv.Contains(100));
  EXPECT_FALSE(iv.Contains(101));
  iv.Add({std::numeric_limits<Timestamp>::max() - 1, std::numeric_limits<Timestamp>::max()});
  iv.Add({5, 1});  // empty: ignored
  EXPECT_EQ(iv.size(), 2u);
  auto decoded = Intervals::Decode(iv.Encode());
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, iv);
  EXPECT_FALSE(Intervals::Decode("\x01"
                                 "abc")
                   .ok());

  std::vector<Stone> stones = {{7, {-5, 9}}, {uint64_t{1} << 40, {100, 100}}};
  std::string payload;
  EncodeWalTombstones(stones, &payload);
  std::vector<Stone> back;
  ASSERT_TRUE(DecodeWalTombstones(payload, &back).ok());
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].ref, uint64_t{1} << 40);
  EXPECT_EQ(back[0].interval, (TimeInterval{-5, 9}));
  EXPECT_FALSE(DecodeWalTombstones(payload.substr(0, payload.size() - 1), &back).ok());
}

TEST(DeleteSeries, HidesHeadAndStoredSamplesAndSurvivesRestartAndClean) {
  TempDir dir;
  Labels a = L("m", "a"), b = L("m", "b"), c = L("other", "a");
  std::vector<Sample> all = Range(1000, 300000, 1000);  // five partitions
  {
    auto opts = Opts(dir.path());
    opts.flush_on_close = false;
    auto db = Storage::Open(opts);
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_TRUE((*db)
                    ->Append(std::vector<SeriesBatch>{{a, Range(1000, 150000, 1000)},
                                                      {b, Range(1000, 150000, 1000)},
                                                      {c, Range(1000, 150000, 1000)}})
                    .ok());
    ASSERT_TRUE((*db)->Flush(false).ok());  // part in RocksDB, part in the head
    ASSERT_TRUE((*db)
                    ->Append(std::vector<SeriesBatch>{{a, Range(151000, 300000, 1000)},
                                                      {b, Range(151000, 300000, 1000)},
                                                      {c, Range(151000, 300000, 1000)}})
                    .ok());
    // Deletes across the flushed/head boundary, for m{job="a"} only.
    ASSERT_TRUE((*db)
                    ->DeleteSeries(
                        {M(MatchType::kEqual, "__name__", "m"), M(MatchType::kEqual, "job", "a")},
                        100000, 200000)
                    .ok());
    ExpectSamples(**db, a, Without(all, 100000, 200000));
    ExpectSamples(**db, b, all);
    ExpectSamples(**db, c, all);
    {
      // Taking each series' samples, as the engine does, reads the same: head and stored
      // chunks, deleted intervals included.
      auto q = (*db)->MakeQuerier(0, 400000);
      ASSERT_TRUE(q.ok());
      std::vector<LabelMatcher> any = {M(MatchType::kRegexMatch, "__name__", ".+")};
      testing::SeriesSamplesMap taken = ReadAll(**q, any, {}, /*take=*/true);
      testing::SeriesSamplesMap copied = ReadAll(**q, any);
      ASSERT_EQ(taken.size(), 3u);
      ASSERT_EQ(copied.size(), 3u);
      for (const auto& [key, samples] : copied) {
        EXPECT_TRUE(testing::SameSamples(taken[key], samples)) << key;
      }
      EXPECT_TRUE(testing::SameSamples(taken[a.ToString()], Without(all, 100000, 200000)));
    }
    // A range query inside the deleted interval sees nothing of the series.
    auto q = (*db)->MakeQuerier(120000, 180000);
    ASSERT_TRUE(q.ok());
    auto got = ReadAll(**q, {M(MatchType::kEqual, "job", "a")});
    EXPECT_EQ(got.size(), 1u);
    EXPECT_EQ(got.count(c.ToString()), 1u);
    auto values = (*q)->LabelValues("__name__", {});
    ASSERT_TRUE(values.ok());
    EXPECT_EQ(*values, (std::vector<std::string>{"m", "other"}));  // m{job="b"} is there
    auto jobs = (*q)->LabelValues("job", {M(MatchType::kEqual, "__name__", "m")});
    ASSERT_TRUE(jobs.ok());
    EXPECT_EQ(*jobs, (std::vector<std::string>{"b"}));
    EXPECT_EQ((*db)->tombstones()->size(), 1u);
    // Closed without a flush: the tombstone is only in the WAL.
    ASSERT_TRUE((*db)->Close().ok());
  }
  {
    auto db = Storage::Open(Opts(dir.path()));
    ASSERT_TRUE(db.ok()) << db.status();
    ExpectSamples(**db, a, Without(all, 100000, 200000));
    // After a flush the WAL segments holding the record go; RocksDB keeps the tombstone.
    ASSERT_TRUE((*db)->Flush(true).ok());
    ASSERT_TRUE((*db)->Close().ok());
  }
  {
    auto db = Storage::Open(Opts(dir.path()));
    ASSERT_TRUE(db.ok()) << db.status();
    ExpectSamples(**db, a, Without(all, 100000, 200000));
    EXPECT_EQ((*db)->tombstones()->size(), 1u);
    ASSERT_TRUE((*db)->CleanTombstones().ok());
    EXPECT_EQ((*db)->tombstones()->size(), 0u);
    ExpectSamples(**db, a, Without(all, 100000, 200000));
    ExpectSamples(**db, b, all);
    ASSERT_TRUE((*db)->Close().ok());
  }
  auto db = Storage::Open(Opts(dir.path()));
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_EQ((*db)->tombstones()->size(), 0u);
  ExpectSamples(**db, a, Without(all, 100000, 200000));
  ExpectSamples(**db, b, all);
  ExpectSamples(**db, c, all);
}

TEST(DeleteSeries, WholeSeriesDisappearsFromListingsAndNewSamplesStayVisible) {
  TempDir dir;
  auto db = Storage::Open(Opts(dir.path()));
  ASSERT_TRUE(db.ok()) << db.status();
  Labels a{{"__name__", "gone"}, {"only_here", "x"}}, b = L("kept", "b");
  ASSERT_TRUE((*db)
                  ->Append(std::vector<SeriesBatch>{{a, Range(1000, 100000, 1000)},
                                                    {b, Range(1000, 100000, 1000)}})
                  .ok());
  ASSERT_TRUE((*db)->Flush(false).ok());
  // No end: everything up to the end of time, clamped to the series' samples.
  ASSERT_TRUE((*db)
                  ->DeleteSeries({M(MatchType::kEqual, "__name__", "gone")},
                                 std::numeric_limits<Timestamp>::min(),
                                 std::numeric_limits<Timestamp>::max())
                  .ok());
  ExpectSamples(**db, a, {});
  auto q = (*db)->MakeQuerier(0, 1000000);
  ASSERT_TRUE(q.ok());
  auto names = (*q)->LabelNames({});
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"__name__", "job"}));
  auto values = (*q)->LabelValues("__name__", {});
  ASSERT_TRUE(values.ok());
  EXPECT_EQ(*values, (std::vector<std::string>{"kept"}));
  SelectHints hints;
  hints.series_only = true;
  EXPECT_EQ(ReadAll(**q, {M(MatchType::kRegexMatch, "__name__", ".+")}, hints).size(), 1u);

  // Appending after the deletion works, and the new samples are visible at once.
  auto r = (*db)->Append(std::vector<SeriesBatch>{{a, Range(101000, 110000, 1000)}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->appended, 10);
  ExpectSamples(**db, a, Range(101000, 110000, 1000));
  // Also after cleaning and a restart.
  ASSERT_TRUE((*db)->CleanTombstones().ok());
  ExpectSamples(**db, a, Range(101000, 110000, 1000));
  ASSERT_TRUE((*db)->Close().ok());
  db = Storage::Open(Opts(dir.path()));
  ASSERT_TRUE(db.ok()) << db.status();
  ExpectSamples(**db, a, Range(101000, 110000, 1000));
  r = (*db)->Append(std::vector<SeriesBatch>{{a, Range(111000, 112000, 1000)}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->appended, 2);
  ExpectSamples(**db, a, Range(101000, 112000, 1000));
}

TEST(DeleteSeries, CleaningReclaimsStoredChunksAndPostings) {
  TempDir dir;
  auto db = Storage::Open(Opts(dir.path()));
  ASSERT_TRUE(db.ok()) << db.status();
  Labels a = L("m", "a");
  ASSERT_TRUE((*db)->Append(std::vector<SeriesBatch>{{a, Range(0, 179000, 1000)}}).ok());
  ASSERT_TRUE((*db)->Flush(true).ok());
  ASSERT_TRUE((*db)->DeleteSeries({M(MatchType::kEqual, "job", "a")}, 60000, 119999).ok());
  // The middle partition's chunks are still stored, hidden.
  auto before = (*db)->store().Chunks(1, 1, 0, 1000000);
  ASSERT_TRUE(before.ok());
  EXPECT_FALSE(before->empty());
  ASSERT_TRUE((*db)->CleanTombstones().ok());
  auto after = (*db)->store().Chunks(1, 1, 0, 1000000);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->empty());
  auto postings = (*db)->store().PartitionIndex(1)->AllPostings();
  ASSERT_TRUE(postings.ok());
  EXPECT_FALSE((*postings)->Next()) << "postings of an emptied partition stay";
  ExpectSamples(**db, a, Without(Range(0, 179000, 1000), 60000, 119999));
  // Partial chunks are rewritten, not dropped.
  ASSERT_TRUE((*db)->DeleteSeries({M(MatchType::kEqual, "job", "a")}, 5500, 7500).ok());
  ASSERT_TRUE((*db)->CleanTombstones().ok());
  ExpectSamples(**db, a, Without(Without(Range(0, 179000, 1000), 60000, 119999), 5500, 7500));
}

TEST(DeleteSeries, EmptyOrNonMatchingDeletesChangeNothing) {
  TempDir dir;
  auto db = Storage::Open(Opts(dir.path()));
  ASSERT_TRUE(db.ok()) << db.status();
  Labels a = L("m", "a");
  ASSERT_TRUE((*db)->Append(std::vector<SeriesBatch>{{a, Range(1000, 5000, 1000)}}).ok());
  ASSERT_TRUE((*db)->DeleteSeries({M(MatchType::kEqual, "job", "zzz")}, 0, 10000).ok());
  ASSERT_TRUE((*db)->DeleteSeries({M(MatchType::kEqual, "job", "a")}, 10, 5).ok());
  ASSERT_TRUE((*db)->DeleteSeries({M(MatchType::kEqual, "job", "a")}, 6000, 9000).ok());
  EXPECT_EQ((*db)->tombstones()->size(), 0u);
  ExpectSamples(**db, a, Range(1000, 5000, 1000));
}

// Deletes, flushes and cleanings race appends and queries: a query made after a delete
// returned never sees the deleted samples, and always sees every other acknowledged one.
TEST(DeleteSeries, ConcurrentWithAppendsFlushesAndQueries) {
  TempDir dir;
  StorageOptions o = Opts(dir.path());
  o.flush_interval_ms = 5;
  o.idle_chunk_ms = 1000;
  auto opened = Storage::Open(o);
  ASSERT_TRUE(opened.ok()) << opened.status();
  Storage& db = **opened;
  Labels c = L("c", "x");
  std::atomic<Timestamp> acked{-1};  // every sample up to here is acknowledged
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<TimeInterval> deleted;  // acknowledged deletions
  std::vector<TimeInterval> started;  // deletions begun (maybe not yet acknowledged)
  std::thread appender([&] {
    for (Timestamp t = 0; !stop.load(); t += 5000) {
      auto r = db.Append(std::vector<SeriesBatch>{{c, Range(t, t + 4000, 1000)}});
      ASSERT_TRUE(r.ok());
      ASSERT_EQ(r->appended, 5);
      acked.store(t + 4000);
    }
  });
  std::atomic<int> checks{0};
  std::thread reader([&] {
    while (!stop.load()) {
      std::vector<TimeInterval> gone;
      {
        std::lock_guard<std::mutex> lock(mu);
        gone = deleted;
      }
      Timestamp upto = acked.load();
      auto q = db.MakeQuerier(0, std::numeric_limits<Timestamp>::max() / 2);
      ASSERT_TRUE(q.ok());
      auto got = ReadAll(**q, {M(MatchType::kEqual, "__name__", "c")});
      Intervals maybe;  // deletions that may have happened before the read
      {
        std::lock_guard<std::mutex> lock(mu);
        for (const TimeInterval& iv : started) maybe.Add(iv);
      }
      std::set<Timestamp> times;
      for (const Sample& x : got[c.ToString()]) times.insert(x.t);
      Intervals del;
      for (const TimeInterval& iv : gone) del.Add(iv);
      for (Timestamp t = 0; t <= upto; t += 1000) {
        if (del.Contains(t)) {
          ASSERT_EQ(times.count(t), 0u) << "deleted sample " << t << " visible";
        } else if (!maybe.Contains(t)) {
          ASSERT_EQ(times.count(t), 1u) << "sample " << t << " missing";
        }
      }
      ++checks;
    }
  });
  // Waits for `done`; false after a failure in another thread or a minute.
  auto wait = [&](auto done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    while (!done()) {
      if (::testing::Test::HasFailure() || std::chrono::steady_clock::now() > deadline) {
        return false;
      }
      std::this_thread::yield();
    }
    return true;
  };
  std::mt19937 rng(5);
  for (int i = 0; i < 40 && !HasFailure(); ++i) {
    if (!wait([&] { return acked.load() >= (i + 2) * 20000; })) break;
    Timestamp hi = acked.load() - 2000;  // never the series' last sample
    Timestamp lo = std::max<Timestamp>(0, hi - static_cast<Timestamp>(rng() % 30000));
    hi = lo + static_cast<Timestamp>(rng() % (hi - lo + 1));
    {
      std::lock_guard<std::mutex> lock(mu);
      started.push_back({lo, hi});
    }
    ASSERT_TRUE(db.DeleteSeries({M(MatchType::kEqual, "__name__", "c")}, lo, hi).ok());
    {
      std::lock_guard<std::mutex> lock(mu);
      deleted.push_back({lo, hi});
    }
    if (rng() % 4 == 0) {
      ASSERT_TRUE(db.CleanTombstones().ok());
    }
    if (rng() % 3 == 0) {
      ASSERT_TRUE(db.Flush(rng() % 2 == 0).ok());
    }
  }
  EXPECT_TRUE(wait([&] { return checks.load() >= 5; }));
  stop.store(true);
  appender.join();
  reader.join();
}

TEST(Snapshot, WithAndWithoutHeadOpensAsADataDirectory) {
  TempDir dir;
  std::string data = dir.path() + "/data";
  Labels a = L("m", "a"), b = L("m", "b");
  auto db = Storage::Open(Opts(data));
  ASSERT_TRUE(db.ok()) << db.status();
  ASSERT_TRUE((*db)
                  ->Append(std::vector<SeriesBatch>{{a, Range(1000, 100000, 1000)},
                                                    {b, Range(1000, 100000, 1000)}})
                  .ok());
  ASSERT_TRUE((*db)->Flush(false).ok());
  ASSERT_TRUE((*db)->Append(std::vector<SeriesBatch>{{a, Range(101000, 130000, 1000)}}).ok());
  ASSERT_TRUE((*db)->DeleteSeries({M(MatchType::kEqual, "job", "b")}, 0, 50000).ok());
  ASSERT_TRUE((*db)->Snapshot(dir.path() + "/full", true).ok());
  ASSERT_TRUE((*db)->Snapshot(dir.path() + "/nohead", false).ok());
  EXPECT_FALSE((*db)->Snapshot(dir.path() + "/full", true).ok()) << "existing directory";
  // Written after the snapshots: not in them.
  ASSERT_TRUE((*db)->Append(std::vector<SeriesBatch>{{a, Range(131000, 140000, 1000)}}).ok());

  {
    auto snap = Storage::Open(Opts(dir.path() + "/full"));
    ASSERT_TRUE(snap.ok()) << snap.status();
    ExpectSamples(**snap, a, Range(1000, 130000, 1000));
    ExpectSamples(**snap, b, Range(51000, 100000, 1000));
  }
  {
    auto snap = Storage::Open(Opts(dir.path() + "/nohead"));
    ASSERT_TRUE(snap.ok()) << snap.status();
    auto got = All(**snap);
    // Flushed chunks only: the open chunk of each series stays out.
    ASSERT_EQ(got.count(a.ToString()), 1u);
    const auto& sa = got[a.ToString()];
    EXPECT_EQ(sa.front().t, 1000);
    EXPECT_LT(sa.back().t, 130000);
    EXPECT_GE(sa.back().t, 100000);
    ASSERT_EQ(got.count(b.ToString()), 1u);
    EXPECT_EQ(got[b.ToString()].front().t, 51000) << "tombstone missing from the snapshot";
  }
}

TEST(SizeRetention, DropsOldestPartitionsButNeverTheHeadOne) {
  TempDir dir;
  // Declared before the storage, which uses them until it is destroyed.
  MetricsRegistry metrics, metrics2, metrics3;
  StorageOptions o = Opts(dir.path());
  o.metrics = &metrics;
  o.wal_segment_bytes = 64 << 10;
  auto db = Storage::Open(o);
  ASSERT_TRUE(db.ok()) << db.status();
  // 20 partitions of noisy values (poorly compressible), flushed one by one.
  std::vector<Labels> series;
  for (int i = 0; i < 40; ++i) series.push_back(L("big", std::to_string(i)));
  uint64_t state = 12345;
  for (int p = 0; p < 20; ++p) {
    std::vector<SeriesBatch> batch;
    for (const Labels& l : series) {
      SeriesBatch sb{l, {}};
      for (int k = 0; k < 120; ++k) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        sb.samples.push_back({p * kPartition + k * 500, static_cast<double>(state >> 11)});
      }
      batch.push_back(std::move(sb));
    }
    ASSERT_TRUE((*db)->Append(batch).ok());
    ASSERT_TRUE((*db)->Flush(true).ok());
  }
  ASSERT_TRUE((*db)->Close().ok());
  db = Storage::Open(o);  // RocksDB moves its log into SST files
  ASSERT_TRUE(db.ok()) << db.status();
  uint64_t full = (*db)->DiskBytes();
  ASSERT_GT(full, 100000u);
  ASSERT_TRUE((*db)->Close().ok());

  // Reopen with a limit of about a third: old partitions go, the newest stays.
  o.retention_bytes = static_cast<int64_t>(full / 3);
  o.metrics = &metrics2;
  db = Storage::Open(o);
  ASSERT_TRUE(db.ok()) << db.status();
  ASSERT_TRUE((*db)->Flush(false).ok());
  EXPECT_LE((*db)->DiskBytes(), full / 3 + full / 10) << "full " << full;
  std::vector<int64_t> left = (*db)->store().Partitions(std::numeric_limits<Timestamp>::min(),
                                                        std::numeric_limits<Timestamp>::max());
  ASSERT_FALSE(left.empty());
  EXPECT_GT(left.front(), 0);
  EXPECT_EQ(left.back(), 19);
  EXPECT_LT(left.size(), 20u);
  auto got = All(**db);
  ASSERT_EQ(got.size(), 40u);
  EXPECT_GE(got.begin()->second.front().t, left.front() * kPartition);
  EXPECT_NE(
      metrics2.ExpositionText().find("strata_storage_size_retention_dropped_partitions_total " +
                                     std::to_string(left.front())),
      std::string::npos)
      << metrics2.ExpositionText();

  // A limit below the newest partition alone keeps it.
  ASSERT_TRUE((*db)->Close().ok());
  o.retention_bytes = 1;
  o.metrics = &metrics3;
  db = Storage::Open(o);
  ASSERT_TRUE(db.ok()) << db.status();
  ASSERT_TRUE((*db)->Flush(false).ok());
  left = (*db)->store().Partitions(std::numeric_limits<Timestamp>::min(),
                                   std::numeric_limits<Timestamp>::max());
  EXPECT_EQ(left, std::vector<int64_t>{19});
  EXPECT_EQ(All(**db).size(), 40u);
}

}  // namespace
}  // namespace strata
