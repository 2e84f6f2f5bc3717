#include "storage/db.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include "gtest/gtest.h"
#include "tests/storage/test_util.h"

namespace strata {
namespace {

using testing::ExpectSame;
using testing::M;
using testing::ReadAll;
using testing::ReadEverything;
using testing::SameSamples;
using testing::TempDir;

constexpr int64_t kDay = 24 * 3600 * 1000;

StorageOptions Opts(const std::string& dir) {
  StorageOptions o;
  o.dir = dir;
  o.flush_interval_ms = 0;
  return o;
}

SeriesBatch Batch(Labels labels, std::vector<Sample> samples) {
  return SeriesBatch{std::move(labels), std::move(samples)};
}

std::vector<Sample> Range(Timestamp from, int n, int64_t step, double v0 = 0) {
  std::vector<Sample> out;
  for (int i = 0; i < n; ++i) out.push_back({from + i * step, v0 + i});
  return out;
}

TEST(StorageAppend, RejectsOutOfOrderAndDuplicatesAndKeepsTheRest) {
  TempDir dir;
  auto db = Storage::Open(Opts(dir.path()));
  ASSERT_TRUE(db.ok()) << db.status();
  Labels a{{"__name__", "up"}, {"job", "a"}};
  std::vector<SeriesBatch> batch = {
      Batch(a, {{100, 1}, {200, 2}, {150, 9}, {200, 2}, {200, 3}, {300, 3}})};
  auto r = (*db)->Append(batch);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->appended, 3);
  EXPECT_EQ(r->out_of_order, 1);
  EXPECT_EQ(r->unchanged, 1);
  EXPECT_EQ(r->duplicate, 1);
  auto q = (*db)->MakeQuerier(0, 1000);
  ASSERT_TRUE(q.ok());
  auto got = ReadAll(**q, {M(MatchType::kEqual, "job", "a")});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(testing::SameSamples(got.begin()->second, {{100, 1}, {200, 2}, {300, 3}}))
      << testing::Describe(got.begin()->second);
}

TEST(StorageAppend, RejectsSamplesTooOldForTheHead) {
  TempDir dir;
  auto opts = Opts(dir.path());
  opts.max_sample_age_ms = 1000;
  auto db = Storage::Open(opts);
  ASSERT_TRUE(db.ok());
  Labels a{{"__name__", "x"}}, b{{"__name__", "y"}};
  std::vector<SeriesBatch> b1 = {Batch(a, {{10000, 1}})};
  ASSERT_TRUE((*db)->Append(b1).ok());
  std::vector<SeriesBatch> b2 = {Batch(b, {{8000, 1}, {9500, 2}})};
  auto r = (*db)->Append(b2);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->too_old, 1);
  EXPECT_EQ(r->appended, 1);
}

TEST(StorageQuery, MatchersAndLabelApisOverHeadAndStore) {
  TempDir dir;
  auto db = Storage::Open(Opts(dir.path()));
  ASSERT_TRUE(db.ok());
  std::vector<SeriesBatch> batch;
  for (std::string job : {"api", "db", "web"}) {
    for (std::string inst : {"i1", "i2"}) {
      batch.push_back(Batch(Labels{{"__name__", "up"}, {"job", job}, {"instance", inst}},
                            Range(0, 300, 15000)));
    }
  }
  batch.push_back(Batch(Labels{{"__name__", "other"}, {"job", "api"}}, Range(0, 10, 15000)));
  ASSERT_TRUE((*db)->Append(batch).ok());
  for (bool flushed : {false, true}) {
    if (flushed) {
      ASSERT_TRUE((*db)->Flush(true).ok());
    }
    auto q = (*db)->MakeQuerier(0, kDay);
    ASSERT_TRUE(q.ok());
    auto got = ReadAll(
        **q, {M(MatchType::kEqual, "__name__", "up"), M(MatchType::kRegexMatch, "job", "api|web"),
              M(MatchType::kNotEqual, "instance", "i2")});
    ASSERT_EQ(got.size(), 2u) << "flushed " << flushed;
    EXPECT_EQ(got.begin()->first, R"({__name__="up", instance="i1", job="api"})");
    EXPECT_EQ(got.begin()->second.size(), 300u);
    got = ReadAll(**q, {M(MatchType::kRegexMatch, "job", "d.*")});
    EXPECT_EQ(got.size(), 2u);
    got = ReadAll(**q, {M(MatchType::kRegexNoMatch, "job", "a.*"),
                        M(MatchType::kRegexMatch, "__name__", ".+")});
    EXPECT_EQ(got.size(), 4u);
    // A series without the label matches job="" style matchers.
    got = ReadAll(**q, {M(MatchType::kEqual, "instance", ""), M(MatchType::kEqual, "job", "api")});
    EXPECT_EQ(got.size(), 1u);

    auto names = (*q)->LabelNames({});
    ASSERT_TRUE(names.ok());
    EXPECT_EQ(*names, (std::vector<std::string>{"__name__", "instance", "job"}));
    auto values = (*q)->LabelValues("job", {M(MatchType::kEqual, "__name__", "other")});
    ASSERT_TRUE(values.ok());
    EXPECT_EQ(*values, std::vector<std::string>{"api"});
    values = (*q)->LabelValues("instance", {});
    ASSERT_TRUE(values.ok());
    EXPECT_EQ(*values, (std::vector<std::string>{"i1", "i2"}));

    // Time range restricts samples and drops series without samples in it.
    auto narrow = (*db)->MakeQuerier(15000 * 20, 15000 * 29);
    ASSERT_TRUE(narrow.ok());
    got = ReadAll(**narrow, {M(MatchType::kEqual, "job", "api")});
    ASSERT_EQ(got.size(), 2u);
    for (auto& [k, s] : got) EXPECT_EQ(s.size(), 10u) << k;
  }
}

// An instant selector needs only each series' newest sample in its window: a series whose
// newest sample ends its open head chunk gives that sample alone; anything else (flushed,
// deleted, a window that ends earlier) reads as without the hint.
TEST(StorageQuery, NewestOnlyGivesTheOpenChunksLastSampleAndReadsTheRestAsUsual) {
  TempDir dir;
  auto db = Storage::Open(Opts(dir.path()));
  ASSERT_TRUE(db.ok());
  std::vector<SeriesBatch> batch;
  batch.push_back(Batch(Labels{{"__name__", "m"}, {"k", "flushed"}}, Range(0, 100, 15000)));
  ASSERT_TRUE((*db)->Append(batch).ok());
  ASSERT_TRUE((*db)->Flush(true).ok());
  batch.clear();
  batch.push_back(Batch(Labels{{"__name__", "m"}, {"k", "head"}}, Range(0, 100, 15000)));
  batch.push_back(Batch(Labels{{"__name__", "m"}, {"k", "deleted"}}, Range(0, 100, 15000)));
  ASSERT_TRUE((*db)->Append(batch).ok());
  ASSERT_TRUE(
      (*db)->DeleteSeries({M(MatchType::kEqual, "k", "deleted")}, 98 * 15000, 99 * 15000).ok());
  auto q = (*db)->MakeQuerier(0, kDay);
  ASSERT_TRUE(q.ok());
  const std::vector<LabelMatcher> all = {M(MatchType::kEqual, "__name__", "m")};
  auto select = [&](Timestamp mint, Timestamp maxt) {
    SelectHints hints;
    hints.mint = mint;
    hints.maxt = maxt;
    hints.newest_only = true;
    return ReadAll(**q, all, hints);
  };
  // The window holds the newest samples (t = 99 * 15 s).
  auto got = select(90 * 15000, 100 * 15000);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(SameSamples(got[R"({__name__="m", k="head"})"], {{99 * 15000, 99}}));
  EXPECT_TRUE(SameSamples(got[R"({__name__="m", k="flushed"})"], Range(90 * 15000, 10, 15000, 90)));
  EXPECT_TRUE(SameSamples(got[R"({__name__="m", k="deleted"})"], Range(90 * 15000, 8, 15000, 90)));
  // A window that ends before the newest sample: every sample in it.
  got = select(80 * 15000, 89 * 15000);
  ASSERT_EQ(got.size(), 3u);
  for (const auto& [k, samples] : got) {
    EXPECT_TRUE(SameSamples(samples, Range(80 * 15000, 10, 15000, 80))) << k;
  }
  // A window after every sample: nothing.
  EXPECT_TRUE(select(100 * 15000, 110 * 15000).empty());
}

TEST(StorageQuery, LabelNamesAndValuesWithoutMatchersHonourTheHeadsTimeRange) {
  TempDir dir;
  auto db = Storage::Open(Opts(dir.path()));
  ASSERT_TRUE(db.ok());
  Storage& s = **db;
  std::vector<SeriesBatch> b = {
      Batch(Labels{{"__name__", "old"}, {"only_old", "x"}}, Range(0, 10, 15000))};
  ASSERT_TRUE(s.Append(b).ok());
  ASSERT_TRUE(s.Flush(/*cut_open=*/true).ok());  // day 0 is in the store only
  b = {Batch(Labels{{"__name__", "new"}, {"only_new", "y"}}, Range(10 * kDay, 10, 15000))};
  ASSERT_TRUE(s.Append(b).ok());

  auto early = s.MakeQuerier(0, 3600 * 1000);
  ASSERT_TRUE(early.ok());
  auto values = (*early)->LabelValues("__name__", {});
  ASSERT_TRUE(values.ok());
  EXPECT_EQ(*values, std::vector<std::string>{"old"}) << "the head holds nothing before day 10";
  auto names = (*early)->LabelNames({});
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"__name__", "only_old"}));

  auto late = s.MakeQuerier(10 * kDay, 10 * kDay + 3600 * 1000);
  ASSERT_TRUE(late.ok());
  values = (*late)->LabelValues("only_new", {});
  ASSERT_TRUE(values.ok());
  EXPECT_EQ(*values, std::vector<std::string>{"y"});
  // An appended old sample (within the head's age limit) widens the head's range again.
  b = {Batch(Labels{{"__name__", "late"}}, {{10 * kDay - 3600 * 1000, 1}})};
  ASSERT_TRUE(s.Append(b).ok());
  auto before = s.MakeQuerier(10 * kDay - 2 * 3600 * 1000, 10 * kDay - 1);
  values = (*before)->LabelValues("__name__", {});
  ASSERT_TRUE(values.ok());
  EXPECT_TRUE(std::find(values->begin(), values->end(), "late") != values->end());
}

TEST(StorageRestart, RecoversFromWalAndStoreAndKeepsOrderChecks) {
  TempDir dir;
  Labels a{{"__name__", "m"}, {"k", "a"}};
  {
    auto opts = Opts(dir.path());
    opts.flush_on_close = false;
    auto db = Storage::Open(opts);
    ASSERT_TRUE(db.ok());
    std::vector<SeriesBatch> b = {Batch(a, Range(0, 500, 1000))};
    ASSERT_TRUE((*db)->Append(b).ok());
    ASSERT_TRUE((*db)->Flush().ok());  // closed chunks to the store, open chunk stays in WAL
    std::vector<SeriesBatch> b2 = {Batch(a, Range(500000, 30, 1000, 500))};
    ASSERT_TRUE((*db)->Append(b2).ok());
  }
  auto db = Storage::Open(Opts(dir.path()));
  ASSERT_TRUE(db.ok()) << db.status();
  auto q = (*db)->MakeQuerier(-1, 10 * kDay);
  ASSERT_TRUE(q.ok());
  auto got = ReadAll(**q, {M(MatchType::kEqual, "k", "a")});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(testing::SameSamples(got.begin()->second, Range(0, 530, 1000)));
  // The last sample survives the restart, so order checks still apply.
  std::vector<SeriesBatch> late = {Batch(a, {{1000, 7}, {529000, 529}, {529000, 1}})};
  auto r = (*db)->Append(late);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out_of_order, 1);
  EXPECT_EQ(r->unchanged, 1);
  EXPECT_EQ(r->duplicate, 1);
}

TEST(StorageRestart, SeriesOnlyInStoreKeepItsRefAndLastSample) {
  TempDir dir;
  Labels a{{"__name__", "m"}, {"k", "a"}};
  SeriesRef ref;
  {
    auto db = Storage::Open(Opts(dir.path()));
    ASSERT_TRUE(db.ok());
    std::vector<SeriesBatch> b = {Batch(a, Range(0, 100, 1000))};
    ASSERT_TRUE((*db)->Append(b).ok());
    ASSERT_TRUE((*db)->Flush(/*cut_open=*/true).ok());
    ref = (*db)->head().next_ref() - 1;
    // Everything is durable in RocksDB: the WAL can be cut to the current segment.
    auto segs = ListWalSegments(dir.path() + "/wal");
    ASSERT_TRUE(segs.ok());
    EXPECT_EQ(segs->size(), 1u);
  }
  auto db = Storage::Open(Opts(dir.path()));
  ASSERT_TRUE(db.ok());
  std::vector<SeriesBatch> b = {Batch(a, {{50000, 1}, {200000, 2}})};
  auto r = (*db)->Append(b);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out_of_order, 1);
  EXPECT_EQ(r->appended, 1);
  EXPECT_EQ((*db)->head().next_ref(), ref + 1) << "the stored series kept its ref";
  auto q = (*db)->MakeQuerier(0, kDay);
  auto got = ReadAll(**q, {M(MatchType::kEqual, "k", "a")});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got.begin()->second.size(), 101u);
}

TEST(StorageRestart, ChunksAreCutAtPartitionBoundaries) {
  TempDir dir;
  auto opts = Opts(dir.path());
  opts.partition_ms = 10000;
  opts.max_sample_age_ms = 0;
  Labels a{{"__name__", "m"}};
  {
    auto db = Storage::Open(opts);
    ASSERT_TRUE(db.ok());
    std::vector<SeriesBatch> b = {Batch(a, Range(-25000, 60, 1000))};
    ASSERT_TRUE((*db)->Append(b).ok());
    ASSERT_TRUE((*db)->Flush(true).ok());
    EXPECT_EQ((*db)->store().Partitions(-100000, 100000),
              (std::vector<int64_t>{-3, -2, -1, 0, 1, 2, 3}));
    // A query inside one partition reads only that partition.
    EXPECT_EQ((*db)->store().Partitions(1000, 9000), std::vector<int64_t>{0});
  }
  auto db = Storage::Open(opts);
  ASSERT_TRUE(db.ok());
  auto q = (*db)->MakeQuerier(-5000, 4999);
  auto got = ReadAll(**q, {M(MatchType::kEqual, "__name__", "m")});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(testing::SameSamples(got.begin()->second, Range(-5000, 10, 1000, 20)))
      << testing::Describe(got.begin()->second);
}

TEST(StorageRetention, DropsWholePartitionsPastRetention) {
  TempDir dir;
  auto opts = Opts(dir.path());
  opts.partition_ms = 10000;
  opts.retention_ms = 20000;
  opts.max_sample_age_ms = 0;
  Labels a{{"__name__", "m"}};
  {
    auto db = Storage::Open(opts);
    ASSERT_TRUE(db.ok());
    std::vector<SeriesBatch> b = {Batch(a, Range(0, 101, 1000))};
    ASSERT_TRUE((*db)->Append(b).ok());
    ASSERT_TRUE((*db)->Flush(true).ok());
    // Newest sample 100000: partitions 8, 9 and 10 are kept.
    EXPECT_EQ((*db)->store().Partitions(0, 200000), (std::vector<int64_t>{8, 9, 10}));
    EXPECT_EQ((*db)->RetentionStart(), 80000);
  }
  auto db = Storage::Open(opts);
  ASSERT_TRUE(db.ok());
  auto q = (*db)->MakeQuerier(0, 200000);
  auto got = ReadAll(**q, {M(MatchType::kEqual, "__name__", "m")});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(testing::SameSamples(got.begin()->second, Range(80000, 21, 1000, 80)));
}

// Stored postings and label values are kept in memory once read: every write of them
// (a flush that indexes a new series, a delete cleaned out, a partition dropped) must show
// in the next read.
TEST(StorageQuery, StoredPostingsAndLabelValuesFollowEveryWriteOfThem) {
  TempDir dir;
  auto opts = Opts(dir.path());
  opts.partition_ms = 10000;
  opts.max_sample_age_ms = 0;
  auto db = Storage::Open(opts);
  ASSERT_TRUE(db.ok());
  ChunkStore& store = (*db)->store();
  auto refs = [&](int64_t partition) {
    std::vector<SeriesRef> out;
    auto p = store.PartitionIndex(partition)->PostingsFor("job", {"x"});
    EXPECT_TRUE(p.ok()) << p.status();
    if (!p.ok()) return out;
    while ((*p)->Next()) out.push_back((*p)->At());
    return out;
  };
  auto values = [&](int64_t partition) {
    auto v = store.PartitionIndex(partition)->LabelValues("i", "");
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : std::vector<std::string>();
  };
  auto selected = [&] {
    auto q = (*db)->MakeQuerier(10000, 19999);
    return ReadAll(**q, {M(MatchType::kEqual, "job", "x")}).size();
  };
  Labels a{{"__name__", "m"}, {"i", "1"}, {"job", "x"}};
  Labels b{{"__name__", "m"}, {"i", "2"}, {"job", "x"}};
  ASSERT_TRUE((*db)->Append(std::vector<SeriesBatch>{Batch(a, Range(10000, 5, 1000))}).ok());
  ASSERT_TRUE((*db)->Flush(true).ok());
  EXPECT_EQ(refs(1).size(), 1u);
  EXPECT_EQ(values(1), (std::vector<std::string>{"1"}));
  EXPECT_EQ(refs(1).size(), 1u);  // read again: from memory
  EXPECT_EQ(values(1), (std::vector<std::string>{"1"}));

  // A flush that indexes another series in the partition.
  ASSERT_TRUE((*db)->Append(std::vector<SeriesBatch>{Batch(b, Range(11000, 5, 1000))}).ok());
  ASSERT_TRUE((*db)->Flush(true).ok());
  EXPECT_EQ(refs(1).size(), 2u);
  EXPECT_EQ(values(1), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(selected(), 2u);

  // A delete, cleaned out of the store: the series leaves the partition's postings.
  ASSERT_TRUE((*db)->DeleteSeries({M(MatchType::kEqual, "i", "2")}, 0, 100000).ok());
  ASSERT_TRUE((*db)->CleanTombstones().ok());
  EXPECT_EQ(refs(1).size(), 1u);
  EXPECT_EQ(values(1), (std::vector<std::string>{"1"}));
  EXPECT_EQ(selected(), 1u);

  // The partition dropped.
  ASSERT_TRUE(store.DropPartitionsBefore(2).ok());
  EXPECT_TRUE(refs(1).empty());
  EXPECT_TRUE(values(1).empty());
}

TEST(StorageMetrics, RecordsAppendsRejectsSeriesWalAndFlushes) {
  TempDir dir;
  MetricsRegistry registry;
  auto opts = Opts(dir.path());
  opts.metrics = &registry;
  auto db = Storage::Open(opts);
  ASSERT_TRUE(db.ok());
  std::vector<SeriesBatch> b = {Batch(Labels{{"__name__", "m"}}, {{10, 1}, {5, 1}, {10, 2}}),
                                Batch(Labels{{"__name__", "n"}}, Range(0, 130, 1000))};
  ASSERT_TRUE((*db)->Append(b).ok());
  ASSERT_TRUE((*db)->Flush().ok());
  std::string text = registry.ExpositionText();
  EXPECT_NE(text.find("strata_head_samples_appended_total 131"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(strata_head_samples_rejected_total{reason="out_of_order"} 1)"),
            std::string::npos);
  EXPECT_NE(text.find(R"(strata_head_samples_rejected_total{reason="duplicate"} 1)"),
            std::string::npos);
  EXPECT_NE(text.find("strata_head_series 2"), std::string::npos);
  EXPECT_NE(text.find("strata_head_chunks 2"), std::string::npos) << "two open chunks left";
  EXPECT_NE(text.find("strata_flush_chunks_total 1"), std::string::npos);
  EXPECT_NE(text.find("strata_flush_duration_seconds_count 1"), std::string::npos);
  EXPECT_NE(text.find("strata_wal_fsync_duration_seconds_count"), std::string::npos);
  EXPECT_EQ(text.find("strata_wal_written_bytes_total 0\n"), std::string::npos);
  ASSERT_TRUE((*db)->Close().ok());
  EXPECT_EQ(registry.ExpositionText().find("strata_head_series"), std::string::npos)
      << "callbacks are removed on close";
}

TEST(StorageWal, CorruptTailIsCutAndEverythingBeforeIsRecovered) {
  TempDir dir;
  Labels a{{"__name__", "m"}};
  {
    auto opts = Opts(dir.path());
    opts.flush_on_close = false;  // the head stays in the WAL
    auto db = Storage::Open(opts);
    ASSERT_TRUE(db.ok());
    for (int i = 0; i < 10; ++i) {
      std::vector<SeriesBatch> b = {Batch(a, Range(i * 10000, 10, 1000, i * 10))};
      ASSERT_TRUE((*db)->Append(b).ok());
    }
  }
  // Garble the last record's payload.
  auto segs = ListWalSegments(dir.path() + "/wal");
  ASSERT_TRUE(segs.ok());
  std::string last;
  for (int64_t s : *segs) {
    std::string p = WalSegmentPath(dir.path() + "/wal", s);
    if (std::filesystem::file_size(p) > 0) last = p;
  }
  ASSERT_FALSE(last.empty());
  {
    std::fstream f(last, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(std::filesystem::file_size(last) - 4);
    f.put('\x7f');
  }
  auto db = Storage::Open(Opts(dir.path()));
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_TRUE((*db)->stats().wal_was_truncated);
  auto q = (*db)->MakeQuerier(0, kDay);
  auto got = ReadAll(**q, {M(MatchType::kEqual, "__name__", "m")});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(testing::SameSamples(got.begin()->second, Range(0, 90, 1000)));
}

// The records the next Open would replay from the data directory's WAL, by type.
std::map<WalRecordType, int64_t> WalRecordsLeft(const std::string& dir) {
  std::map<WalRecordType, int64_t> out;
  auto replayed = ReplayWal(dir + "/wal", [&](int64_t, WalRecordType type, std::string_view) {
    ++out[type];
    return absl::OkStatus();
  });
  EXPECT_TRUE(replayed.ok()) << replayed.status();
  return out;
}

// Bytes in RocksDB's own write-ahead log files (data not yet in SST files).
uint64_t RocksDbLogBytes(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/db")) {
    if (e.path().extension() == ".log") total += e.file_size();
  }
  return total;
}

TEST(StorageClose, CleanCloseWritesTheHeadToSstFilesAndLeavesNothingToReplay) {
  TempDir dir;
  Labels small{{"__name__", "m"}, {"k", "small"}}, big{{"__name__", "m"}, {"k", "big"}};
  testing::SeriesSamplesMap want = {{small.ToString(), Range(0, 30, 1000)},
                                    {big.ToString(), Range(0, 300, 1000, 7)}};
  {
    auto db = Storage::Open(Opts(dir.path()));
    ASSERT_TRUE(db.ok()) << db.status();
    // Open chunks below the chunk size (30 samples), and closed chunks plus an open one.
    std::vector<SeriesBatch> b = {Batch(small, Range(0, 30, 1000)),
                                  Batch(big, Range(0, 300, 1000, 7))};
    ASSERT_TRUE((*db)->Append(b).ok());
    ASSERT_TRUE((*db)->Close().ok());
  }
  EXPECT_TRUE(WalRecordsLeft(dir.path()).empty());
  EXPECT_EQ(RocksDbLogBytes(dir.path()), 0u) << "the memtables were written to SST files";
  {
    auto db = Storage::Open(Opts(dir.path()));
    ASSERT_TRUE(db.ok()) << db.status();
    EXPECT_EQ((*db)->stats().wal_replayed_records, 0);
    EXPECT_EQ((*db)->stats().head_series, 0) << "the head starts empty";
    ExpectSame(ReadEverything(**db), want);
    // The series' last samples came back from RocksDB: order checks hold.
    std::vector<SeriesBatch> b = {Batch(small, {{28000, 5}, {29000, 29}, {29000, 1}, {40000, 40}})};
    auto r = (*db)->Append(b);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->out_of_order, 1);
    EXPECT_EQ(r->unchanged, 1);
    EXPECT_EQ(r->duplicate, 1);
    EXPECT_EQ(r->appended, 1);
    want[small.ToString()].push_back({40000, 40});
    ASSERT_TRUE((*db)->Close().ok());
  }
  EXPECT_TRUE(WalRecordsLeft(dir.path()).empty());
  auto db = Storage::Open(Opts(dir.path()));
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_EQ((*db)->stats().wal_replayed_records, 0);
  ExpectSame(ReadEverything(**db), want);
}

// Stored chunks, head chunks and a deletion across both: a close with and without the
// flush leaves the same data for the next Open, once each.
TEST(StorageClose, StoredAndHeadDataWithADeletionReopenExactlyOnce) {
  Labels a{{"__name__", "m"}, {"k", "a"}}, b{{"__name__", "m"}, {"k", "b"}};
  std::vector<Sample> all = Range(0, 550, 1000);
  std::vector<Sample> a_left;
  for (const Sample& x : all) {
    if (x.t < 450000 || x.t > 520000) a_left.push_back(x);
  }
  const testing::SeriesSamplesMap want = {{a.ToString(), a_left}, {b.ToString(), all}};
  for (bool flush_on_close : {true, false}) {
    SCOPED_TRACE(flush_on_close);
    TempDir dir;
    auto opts = Opts(dir.path());
    opts.flush_on_close = flush_on_close;
    {
      auto db = Storage::Open(opts);
      ASSERT_TRUE(db.ok()) << db.status();
      std::vector<SeriesBatch> first = {Batch(a, Range(0, 500, 1000)),
                                        Batch(b, Range(0, 500, 1000))};
      ASSERT_TRUE((*db)->Append(first).ok());
      ASSERT_TRUE((*db)->Flush().ok());  // closed chunks to RocksDB, open ones stay
      std::vector<SeriesBatch> second = {Batch(a, Range(500000, 50, 1000, 500)),
                                         Batch(b, Range(500000, 50, 1000, 500))};
      ASSERT_TRUE((*db)->Append(second).ok());
      ASSERT_TRUE((*db)->DeleteSeries({M(MatchType::kEqual, "k", "a")}, 450000, 520000).ok());
      ExpectSame(ReadEverything(**db), want);
      ASSERT_TRUE((*db)->Close().ok());
    }
    std::map<WalRecordType, int64_t> left = WalRecordsLeft(dir.path());
    if (flush_on_close) {
      EXPECT_TRUE(left.empty());
    } else {
      EXPECT_GT(left[WalRecordType::kSamples], 0);
      EXPECT_EQ(left[WalRecordType::kTombstones], 1);
    }
    for (int reopen = 0; reopen < 2; ++reopen) {
      auto db = Storage::Open(opts);
      ASSERT_TRUE(db.ok()) << db.status();
      if (flush_on_close) {
        EXPECT_EQ((*db)->stats().wal_replayed_records, 0);
      }
      ExpectSame(ReadEverything(**db), want);
      EXPECT_EQ((*db)->tombstones()->size(), 1u);
      ASSERT_TRUE((*db)->Close().ok());
    }
  }
}

// RocksDB cannot create SST files when every name it could pick is taken by a directory:
// the close's flush of its memtables fails, as on a full or broken disk, after the chunks
// were written to RocksDB's own log.
TEST(StorageClose, AFailedFlushKeepsTheWalAndCloseReportsIt) {
  TempDir dir;
  Labels a{{"__name__", "m"}};
  const testing::SeriesSamplesMap want = {{a.ToString(), Range(0, 200, 1000)}};
  std::vector<std::string> blockers;
  {
    auto db = Storage::Open(Opts(dir.path()));
    ASSERT_TRUE(db.ok()) << db.status();
    std::vector<SeriesBatch> b = {Batch(a, Range(0, 200, 1000))};
    ASSERT_TRUE((*db)->Append(b).ok());
    for (int n = 1; n < 1000; ++n) {
      std::string path = dir.path() + fmt::format("/db/{:06d}.sst", n);
      if (std::filesystem::create_directory(path)) blockers.push_back(path);
    }
    absl::Status st = (*db)->Close();
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find("at close"), std::string::npos) << st;
    EXPECT_NE(st.message().find(dir.path()), std::string::npos) << st;
  }
  for (const std::string& path : blockers) std::filesystem::remove(path);
  EXPECT_GT(WalRecordsLeft(dir.path())[WalRecordType::kSamples], 0) << "the WAL was kept";
  {
    auto db = Storage::Open(Opts(dir.path()));
    ASSERT_TRUE(db.ok()) << db.status();
    EXPECT_GT((*db)->stats().wal_replayed_records, 0);
    ExpectSame(ReadEverything(**db), want);
    ASSERT_TRUE((*db)->Close().ok());
  }
  auto db = Storage::Open(Opts(dir.path()));
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_EQ((*db)->stats().wal_replayed_records, 0);
  ExpectSame(ReadEverything(**db), want);
}

TEST(StorageDirectory, RefusesASecondOpener) {
  TempDir dir;
  auto db = Storage::Open(Opts(dir.path()));
  ASSERT_TRUE(db.ok());
  auto second = Storage::Open(Opts(dir.path()));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("in use"), std::string::npos) << second.status();
  // The first one still works.
  std::vector<SeriesBatch> b = {Batch(Labels{{"__name__", "m"}}, {{1, 1}})};
  EXPECT_TRUE((*db)->Append(b).ok());
}

TEST(StorageDirectory, RefusesAnIncompatibleFormatVersion) {
  TempDir dir;
  {
    auto db = Storage::Open(Opts(dir.path()));
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->store().WriteFormatVersionForTesting(99).ok());
  }
  auto db = Storage::Open(Opts(dir.path()));
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(db.status().message().find("version 99"), std::string::npos) << db.status();
  // The refusal leaves the directory as it was: still version 99, still refused.
  auto store = ChunkStore::Open(dir.path() + "/db", {});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(StorageDirectory, FailsClearlyOnUnwritablePath) {
  TempDir dir;
  std::string file = dir.path() + "/plain_file";
  { std::ofstream(file) << "x"; }
  auto db = Storage::Open(Opts(file + "/data"));
  ASSERT_FALSE(db.ok());
  EXPECT_NE(db.status().message().find(file), std::string::npos) << db.status();
  if (::geteuid() != 0) {
    std::string ro = dir.path() + "/ro";
    std::filesystem::create_directories(ro);
    std::filesystem::permissions(
        ro, std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
    auto db2 = Storage::Open(Opts(ro));
    ASSERT_FALSE(db2.ok());
    EXPECT_NE(db2.status().message().find(ro), std::string::npos) << db2.status();
    std::filesystem::permissions(ro, std::filesystem::perms::owner_all);
  }
}

}  // namespace
}  // namespace strata
