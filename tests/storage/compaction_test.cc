// Compaction of closed partitions into compacted blocks, through the Storage API: queries
// read the same samples before and after, restarts, late chunks, retention, versions.
#include <atomic>
#include <bit>
#include <random>
#include <thread>
#include <tuple>

#include "gtest/gtest.h"
#include "src/metrics.h"
#include "storage/chunk_iterator.h"
#include "storage/db.h"
#include "tests/storage/test_util.h"

namespace strata {
namespace {

using testing::ExpectSame;
using testing::M;
using testing::ReadAll;
using testing::ReadEverything;
using testing::TempDir;

constexpr int64_t kPartition = 3600 * 1000;

StorageOptions Opts(const std::string& dir) {
  StorageOptions o;
  o.dir = dir;
  o.flush_interval_ms = 0;
  o.partition_ms = kPartition;
  o.max_sample_age_ms = kPartition / 2;
  o.retention_ms = 0;
  o.wal_sync = false;
  o.chunk_samples = 50;
  o.compaction.max_series_per_group = 7;  // several groups per partition
  return o;
}

Labels Host(int host, int i) {
  return Labels{{"__name__", i % 2 ? "cpu" : "mem"},
                {"host", fmt::format("h{}", host)},
                {"i", std::to_string(i)}};
}

// 3 hosts x 10 series, one scrape every 15 s with shared timestamps per host, from `from`
// for `n` scrapes. Values: integer counters, two-decimal gauges, noise, stale markers.
void AppendScrapes(Storage& db, Timestamp from, int n, std::mt19937_64& rng) {
  for (int k = 0; k < n; ++k) {
    std::vector<SeriesBatch> batch;
    for (int h = 0; h < 3; ++h) {
      Timestamp t = from + k * 15000 + h * 7 + static_cast<int>(rng() % 3);
      for (int i = 0; i < 10; ++i) {
        double v;
        switch (i % 4) {
          case 0:
            v = static_cast<double>(t / 1000 + i);
            break;
          case 1:
            v = static_cast<double>(rng() % 10000) / 100;
            break;
          case 2:
            v = std::bit_cast<double>((rng() >> 12) | 0x3ff0000000000000ULL);
            break;
          default:
            v = rng() % 7 == 0 ? StaleNaN() : -0.0;
        }
        batch.push_back({Host(h, i), {{t, v}}});
      }
    }
    auto r = db.Append(batch);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->appended, 30);
  }
}

TEST(Compaction, QueriesReadTheSameBeforeAndAfterAndAcrossRestarts) {
  TempDir dir;
  std::mt19937_64 rng(1);
  MetricsRegistry metrics;
  auto opts = Opts(dir.path());
  opts.metrics = &metrics;
  auto db = Storage::Open(opts);
  ASSERT_TRUE(db.ok()) << db.status();
  // 4 hours: partitions 0..3 (the last one still open).
  AppendScrapes(**db, 0, 4 * 240, rng);
  ASSERT_TRUE((*db)->Flush(false).ok());
  testing::SeriesSamplesMap before = ReadEverything(**db);
  ASSERT_EQ(before.size(), 30u);
  EXPECT_EQ((*db)->FirstOpenPartition(), 3);
  ASSERT_TRUE((*db)->Compact().ok());
  CompactionStats stats = (*db)->stats().compaction;
  EXPECT_EQ(stats.partitions, 3);
  EXPECT_GT(stats.chunks_removed, 3 * 30 * 4);
  EXPECT_EQ(stats.blocks_written, 3 * 5);  // 30 series in groups of at most 7
  EXPECT_LT(stats.bytes_after, stats.bytes_before);
  EXPECT_EQ(stats.samples, 3 * 240 * 30);
  EXPECT_TRUE((*db)->store().PartitionsWithChunks(3)->empty());
  EXPECT_EQ((*db)->store().format_version(), kStoreFormatVersion);
  ExpectSame(ReadEverything(**db), before);
  EXPECT_NE(metrics.ExpositionText().find("strata_compaction_samples_total 21600"),
            std::string::npos)
      << metrics.ExpositionText();

  // Sub-ranges and matchers over a compacted partition and the head.
  {
    auto q = (*db)->MakeQuerier(kPartition - 20000, 3 * kPartition + 60000);
    ASSERT_TRUE(q.ok());
    auto got = ReadAll(**q, {M(MatchType::kEqual, "host", "h1"), M(MatchType::kEqual, "i", "3")});
    ASSERT_EQ(got.size(), 1u);
    std::vector<Sample> want;
    for (const Sample& s : before.at(Host(1, 3).ToString())) {
      if (s.t >= kPartition - 20000 && s.t <= 3 * kPartition + 60000) want.push_back(s);
    }
    EXPECT_TRUE(testing::SameSamples(got.begin()->second, want));
    auto values = (*q)->LabelValues("host", {});
    ASSERT_TRUE(values.ok());
    EXPECT_EQ(*values, (std::vector<std::string>{"h0", "h1", "h2"}));
  }

  // Compacting again changes nothing.
  ASSERT_TRUE((*db)->Compact().ok());
  EXPECT_EQ((*db)->stats().compaction.blocks_written, stats.blocks_written);

  // After a restart the last samples come from compacted blocks where needed: a series
  // whose only samples are compacted still refuses older samples.
  ASSERT_TRUE((*db)->Close().ok());
  db = Storage::Open(Opts(dir.path()));
  ASSERT_TRUE(db.ok()) << db.status();
  ExpectSame(ReadEverything(**db), before);
  ASSERT_TRUE((*db)->Close().ok());
}

uint64_t ChunkFamilyBytes(Storage& db) {
  auto sizes = db.store().LiveSstBytes(/*compact_files=*/false);
  EXPECT_TRUE(sizes.ok()) << sizes.status();
  if (!sizes.ok()) return 0;
  for (const auto& [family, bytes] : *sizes) {
    if (family == "chunks") return bytes;
  }
  ADD_FAILURE() << "no chunks family";
  return 0;
}

// A compaction that replaced at least reclaim_min_bytes has RocksDB compact the partitions
// it rewrote, so the replaced chunks leave the SST files; below the threshold they stay
// until RocksDB's own compactions get to them. Either way the data reads the same.
TEST(Compaction, LargeRewritesGiveTheReplacedChunksSpaceBack) {
  for (bool reclaim : {false, true}) {
    SCOPED_TRACE(reclaim);
    TempDir dir;
    std::mt19937_64 rng(1);
    auto opts = Opts(dir.path());
    opts.compaction.reclaim_min_bytes = reclaim ? 1 : int64_t{1} << 40;
    auto db = Storage::Open(opts);
    ASSERT_TRUE(db.ok()) << db.status();
    AppendScrapes(**db, 0, 4 * 240, rng);
    ASSERT_TRUE((*db)->Flush(false).ok());
    const testing::SeriesSamplesMap before = ReadEverything(**db);
    const uint64_t chunk_bytes = ChunkFamilyBytes(**db);
    ASSERT_GT(chunk_bytes, 0u);
    ASSERT_TRUE((*db)->Compact().ok());
    const CompactionStats stats = (*db)->stats().compaction;
    EXPECT_EQ(stats.partitions, 3);
    EXPECT_EQ(stats.reclaims, reclaim ? 1 : 0);
    if (reclaim) {
      // Only the open partition's chunks (one of four) are left.
      EXPECT_LT(ChunkFamilyBytes(**db), chunk_bytes / 2);
    } else {
      EXPECT_GE(ChunkFamilyBytes(**db), chunk_bytes);
    }
    ExpectSame(ReadEverything(**db), before);
    ASSERT_TRUE((*db)->Close().ok());
    db = Storage::Open(opts);
    ASSERT_TRUE(db.ok()) << db.status();
    ExpectSame(ReadEverything(**db), before);
  }
}

TEST(Compaction, LateChunksMergeAndRestartSeesCompactedLastSample) {
  TempDir dir;
  auto opts = Opts(dir.path());
  opts.max_sample_age_ms = 0;  // late samples anywhere: the mixed form must read right
  auto db = Storage::Open(opts);
  ASSERT_TRUE(db.ok());
  Labels a{{"__name__", "a"}}, b{{"__name__", "b"}};
  std::vector<SeriesBatch> first = {{a, {{1000, 1}, {2000, 2}}}, {b, {{1500, 5}}}};
  ASSERT_TRUE((*db)->Append(first).ok());
  std::vector<SeriesBatch> later = {{a, {{3 * kPartition, 3}}}};
  ASSERT_TRUE((*db)->Append(later).ok());
  ASSERT_TRUE((*db)->Flush(true).ok());
  ASSERT_TRUE((*db)->Compact().ok());
  EXPECT_EQ((*db)->stats().compaction.partitions, 1);
  // b gets a late sample in the compacted partition 0; a new series c too.
  Labels c{{"__name__", "c"}};
  std::vector<SeriesBatch> late = {{b, {{1600, 6}}}, {c, {{100, 7}}}};
  auto r = (*db)->Append(late);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->appended, 2);
  ASSERT_TRUE((*db)->Flush(true).ok());
  auto check = [&](Storage& s) {
    auto got = ReadEverything(s);
    ASSERT_EQ(got.size(), 3u);
    EXPECT_TRUE(
        testing::SameSamples(got[a.ToString()], {{1000, 1}, {2000, 2}, {3 * kPartition, 3}}));
    EXPECT_TRUE(testing::SameSamples(got[b.ToString()], {{1500, 5}, {1600, 6}}))
        << testing::Describe(got[b.ToString()]);
    EXPECT_TRUE(testing::SameSamples(got[c.ToString()], {{100, 7}}));
  };
  check(**db);  // mixed: block + XOR chunks in partition 0
  ASSERT_TRUE((*db)->Compact().ok());
  EXPECT_EQ((*db)->stats().compaction.partitions, 2);
  EXPECT_TRUE((*db)->store().PartitionsWithChunks(1)->empty());
  check(**db);
  ASSERT_TRUE((*db)->Close().ok());
  db = Storage::Open(opts);
  ASSERT_TRUE(db.ok());
  check(**db);
  // b's last sample (1600) is only in a compacted block: older ones are out of order.
  std::vector<SeriesBatch> old = {{b, {{1550, 1}}}, {b, {{1600, 6}}}};
  r = (*db)->Append(old);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out_of_order, 1);
  EXPECT_EQ(r->unchanged, 1);
  EXPECT_EQ(r->appended, 0);
}

TEST(Compaction, RetentionDropsCompactedPartitions) {
  TempDir dir;
  auto opts = Opts(dir.path());
  opts.retention_ms = 2 * kPartition;
  auto db = Storage::Open(opts);
  ASSERT_TRUE(db.ok());
  std::mt19937_64 rng(2);
  AppendScrapes(**db, 0, 2 * 240, rng);
  ASSERT_TRUE((*db)->Flush(false).ok());
  ASSERT_TRUE((*db)->Compact().ok());
  EXPECT_EQ((*db)->stats().compaction.partitions, 1);
  EXPECT_EQ((*db)->store().Partitions(0, 0), std::vector<int64_t>{0});
  AppendScrapes(**db, 2 * kPartition, 2 * 240, rng);  // up to 4 h: partition 0 and 1 expire
  ASSERT_TRUE((*db)->Flush(false).ok());
  EXPECT_TRUE((*db)->store().Partitions(0, kPartition - 1).empty());
  ASSERT_TRUE((*db)->Close().ok());
  db = Storage::Open(opts);
  ASSERT_TRUE(db.ok());
  EXPECT_TRUE((*db)->store().Partitions(0, kPartition - 1).empty());
  auto q = (*db)->MakeQuerier(0, kPartition - 1);
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(ReadAll(**q, {M(MatchType::kRegexMatch, "__name__", ".+")}).empty());
}

// Two hours of scrapes flushed (and compacted), then the format version set to what an
// older build would have written.
void WriteOlderDirectory(const std::string& dir, bool compact, int version) {
  std::mt19937_64 rng(3);
  auto opts = Opts(dir);
  opts.compaction.close_max_samples = 0;  // older builds did not compact at close
  auto db = Storage::Open(opts);
  ASSERT_TRUE(db.ok());
  AppendScrapes(**db, 0, 2 * 240, rng);
  ASSERT_TRUE((*db)->Flush(false).ok());
  if (compact) {
    ASSERT_TRUE((*db)->Compact().ok());
  }
  ASSERT_TRUE((*db)->store().WriteFormatVersionForTesting(version).ok());
}

TEST(Compaction, VersionOneDirectoriesOpenAndAreUpgradedByTheFirstCompaction) {
  TempDir dir;
  WriteOlderDirectory(dir.path(), /*compact=*/false, 1);  // a build before compaction
  auto db = Storage::Open(Opts(dir.path()));
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_EQ((*db)->store().format_version(), 1);
  auto before = ReadEverything(**db);
  ASSERT_TRUE((*db)->Compact().ok());
  EXPECT_EQ((*db)->store().format_version(), kStoreFormatVersion);
  ExpectSame(ReadEverything(**db), before);
  ASSERT_TRUE((*db)->store().WriteFormatVersionForTesting(kStoreFormatVersion + 1).ok());
  ASSERT_TRUE((*db)->Close().ok());
  auto refused = Storage::Open(Opts(dir.path()));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find(fmt::format("version {}", kStoreFormatVersion + 1)),
            std::string::npos);
}

// A version 2 to 5 directory (by its meta key: its blocks are this build's) becomes the
// current version with the first write of a block, here by tombstone cleaning; until then
// it keeps its version.
TEST(Compaction, VersionTwoToFiveDirectoriesAreUpgradedByTheFirstBlockWrite) {
  for (int version : {2, 3, 4, 5}) {
    TempDir dir;
    WriteOlderDirectory(dir.path(), /*compact=*/true, version);
    auto db = Storage::Open(Opts(dir.path()));
    ASSERT_TRUE(db.ok()) << db.status();
    EXPECT_EQ((*db)->store().format_version(), version);
    ASSERT_TRUE((*db)->CleanTombstones().ok());  // nothing to rewrite
    EXPECT_EQ((*db)->store().format_version(), version);
    ASSERT_TRUE((*db)->DeleteSeries({M(MatchType::kEqual, "i", "3")}, 0, kPartition / 2).ok());
    ASSERT_TRUE((*db)->CleanTombstones().ok());
    EXPECT_EQ((*db)->store().format_version(), kStoreFormatVersion);
    ASSERT_TRUE((*db)->Close().ok());
    db = Storage::Open(Opts(dir.path()));
    ASSERT_TRUE(db.ok()) << db.status();
    EXPECT_EQ((*db)->store().format_version(), kStoreFormatVersion);
  }
}

TEST(Compaction, BackgroundCompactionRunsInTheFlushLoop) {
  TempDir dir;
  auto opts = Opts(dir.path());
  opts.flush_interval_ms = 10;
  auto db = Storage::Open(opts);
  ASSERT_TRUE(db.ok());
  std::mt19937_64 rng(4);
  AppendScrapes(**db, 0, 3 * 240, rng);
  // Partitions 0 and 1 close while appends go on: a flush can compact one before the
  // head's last chunks of it are flushed, and a later one merges those (so it may count
  // twice).
  auto closed_have_chunks = [&] {
    auto left = (*db)->store().PartitionsWithChunks(2);
    return !left.ok() || !left->empty();
  };
  for (int i = 0; i < 3000 && ((*db)->stats().compaction.partitions < 2 || closed_have_chunks());
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_FALSE(closed_have_chunks());
  EXPECT_GE((*db)->stats().compaction.partitions, 2);
  EXPECT_EQ(ReadEverything(**db).size(), 30u);
}

// Decoded chunks (compacted data) iterate, seek and drop repeats like XOR chunks.
TEST(Compaction, DecodedChunksIterateLikeXorChunks) {
  std::mt19937_64 rng(5);
  for (int round = 0; round < 300; ++round) {
    std::vector<Sample> all;
    Timestamp t = static_cast<Timestamp>(rng() % 100);
    for (int i = 0, n = 1 + static_cast<int>(rng() % 300); i < n; ++i) {
      t += 1 + static_cast<Timestamp>(rng() % 20);
      all.push_back({t, static_cast<double>(rng() % 1000)});
    }
    // The same samples cut into chunks, some overlapping (a repeat as after a racing
    // flush); each chunk given both ways.
    std::vector<ChunkRef> as_xor, mixed;
    for (size_t i = 0; i < all.size();) {
      size_t n = 1 + rng() % 50, back = rng() % 3 == 0 ? rng() % 5 : 0;
      size_t from = i >= back ? i - back : 0, to = std::min(all.size(), i + n);
      std::vector<Sample> part(all.begin() + from, all.begin() + to);
      auto bytes = std::make_shared<const std::string>(*EncodeXorChunk(part));
      as_xor.push_back({part.front().t, part.back().t, bytes});
      if (rng() % 2) {
        mixed.push_back({part.front().t, part.back().t, nullptr,
                         std::make_shared<const std::vector<Sample>>(part)});
      } else {
        mixed.push_back(as_xor.back());
      }
      i = to;
    }
    Timestamp mint = all.front().t + static_cast<Timestamp>(rng() % 50) - 10;
    Timestamp maxt = all.back().t - static_cast<Timestamp>(rng() % 50) + 10;
    ChunkListIterator a(as_xor, mint, maxt), b(mixed, mint, maxt);
    for (int step = 0; step < 400; ++step) {
      bool ra, rb;
      if (rng() % 3 == 0) {
        Timestamp to =
            mint + static_cast<Timestamp>(
                       rng() % static_cast<uint64_t>(std::max<Timestamp>(1, t - mint + 20)));
        ra = a.Seek(to);
        rb = b.Seek(to);
      } else {
        ra = a.Next();
        rb = b.Next();
      }
      ASSERT_EQ(ra, rb) << "round " << round << " step " << step;
      if (!ra) break;
      ASSERT_EQ(a.At().t, b.At().t);
      ASSERT_EQ(a.At().v, b.At().v);
    }
    ASSERT_TRUE(a.status().ok());
    ASSERT_TRUE(b.status().ok());
    // AppendRange (one pass per chunk) gives what Next gives, over any sub-range.
    Timestamp lo = mint + static_cast<Timestamp>(rng() % 40) - 20;
    Timestamp hi = maxt - static_cast<Timestamp>(rng() % 40) + 20;
    ChunkListIterator c(as_xor, mint, maxt), d(mixed, mint, maxt);
    std::vector<Sample> want, got;
    while (c.Next()) {
      if (c.At().t >= lo && c.At().t <= hi) want.push_back(c.At());
    }
    ASSERT_TRUE(d.AppendRange(lo, hi, &got).ok());
    ASSERT_TRUE(testing::SameSamples(got, want))
        << "round " << round << "\n got  " << testing::Describe(got) << "\n want "
        << testing::Describe(want);
  }
}

// Deleted samples in compacted blocks are hidden by tombstones, and cleaning rewrites the
// blocks so that they stay gone once the tombstones are dropped (also after a restart and a
// later compaction).
TEST(Compaction, CleanTombstonesRewritesCompactedBlocks) {
  TempDir dir;
  std::mt19937_64 rng(6);
  MetricsRegistry metrics;
  auto opts = Opts(dir.path());
  opts.metrics = &metrics;
  auto db = Storage::Open(opts);
  ASSERT_TRUE(db.ok()) << db.status();
  AppendScrapes(**db, 0, 3 * 240, rng);  // partitions 0, 1 closed; 2 open
  ASSERT_TRUE((*db)->Flush(false).ok());
  ASSERT_TRUE((*db)->Compact().ok());
  ASSERT_EQ((*db)->stats().compaction.partitions, 2);
  ASSERT_TRUE((*db)->store().PartitionsWithChunks(2)->empty());
  testing::SeriesSamplesMap want = ReadEverything(**db);

  // Host h1's series i=3: a range across the first two partitions; host h2: everything of
  // i=4 (a whole series, also its open partition); the deletion of i=4 covers blocks only
  // partly (other series share them).
  const Timestamp from = kPartition / 2, to = kPartition + kPartition / 4;
  ASSERT_TRUE(
      (*db)
          ->DeleteSeries({M(MatchType::kEqual, "host", "h1"), M(MatchType::kEqual, "i", "3")}, from,
                         to)
          .ok());
  ASSERT_TRUE((*db)
                  ->DeleteSeries(
                      {M(MatchType::kEqual, "host", "h2"), M(MatchType::kEqual, "i", "4")},
                      std::numeric_limits<Timestamp>::min(), std::numeric_limits<Timestamp>::max())
                  .ok());
  std::erase_if(want[Host(1, 3).ToString()],
                [&](const Sample& x) { return x.t >= from && x.t <= to; });
  want.erase(Host(2, 4).ToString());
  ExpectSame(ReadEverything(**db), want);

  ASSERT_TRUE((*db)->CleanTombstones().ok());
  EXPECT_TRUE((*db)->tombstones()->empty());
  ExpectSame(ReadEverything(**db), want);
  // Series 4 of h2 has nothing left in the compacted partitions: its postings there are
  // gone; h1's series 3 keeps samples in both, and its postings.
  for (int64_t p : {0, 1}) {
    for (auto [host, i, left] : {std::tuple{"h2", "4", false}, std::tuple{"h1", "3", true}}) {
      auto index = (*db)->store().PartitionIndex(p);
      auto postings = PostingsForMatchers(
          *index, {M(MatchType::kEqual, "host", host), M(MatchType::kEqual, "i", i)});
      ASSERT_TRUE(postings.ok());
      EXPECT_EQ((*postings)->Next(), left) << "partition " << p << " " << host << " " << i;
    }
  }
  // 4 series of compacted blocks (2 series x 2 partitions) and the open partition's
  // chunks of h2's series 4.
  EXPECT_EQ(metrics.ExpositionText().find("strata_storage_tombstone_rewritten_chunks_total 0\n"),
            std::string::npos);

  ASSERT_TRUE((*db)->Close().ok());
  db = Storage::Open(opts);
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_TRUE((*db)->tombstones()->empty());
  ExpectSame(ReadEverything(**db), want);
  // More data, a compaction that merges into the rewritten blocks' neighbours: still gone.
  AppendScrapes(**db, 3 * kPartition, 240, rng);
  ASSERT_TRUE((*db)->Flush(true).ok());
  ASSERT_TRUE((*db)->Compact().ok());
  testing::SeriesSamplesMap now = ReadEverything(**db);
  for (const auto& [key, samples] : want) {
    ASSERT_TRUE(now.count(key)) << key;
    std::vector<Sample> early;
    for (const Sample& x : now.at(key)) {
      if (x.t < 3 * kPartition) early.push_back(x);
    }
    ASSERT_TRUE(testing::SameSamples(early, samples)) << key;
  }
  EXPECT_EQ(now.count(Host(2, 4).ToString()), 1u);  // appended again after the deletion
  for (const Sample& x : now.at(Host(2, 4).ToString())) EXPECT_GE(x.t, 3 * kPartition);
}

// Two hosts' request-duration histograms (buckets created +Inf first, so bases come after
// their dependents in ref order), with _sum and _count, and series that only look like
// buckets. One scrape every 15 s from `from`, `n` scrapes.
const char* const kBounds[] = {"+Inf", "0.005", "0.01", "0.025", "0.05", "0.1",
                               "0.25", "0.5",   "1",    "2.5",   "5",    "10"};

Labels Bucket(int host, std::string_view le) {
  return Labels{{"__name__", "http_request_duration_seconds_bucket"},
                {"host", fmt::format("h{}", host)},
                {"le", le}};
}

void AppendHistograms(Storage& db, Timestamp from, int n, std::mt19937_64& rng,
                      std::vector<std::vector<double>>* counts) {
  counts->resize(2, std::vector<double>(std::size(kBounds), 0));
  for (int k = 0; k < n; ++k) {
    std::vector<SeriesBatch> batch;
    for (int h = 0; h < 2; ++h) {
      const Timestamp t = from + k * 15000 + h * 5;
      std::vector<double>& c = (*counts)[h];
      // Per-band observations, most in the middle bands; +Inf (index 0) is the total.
      double cumulative = 0;
      for (size_t b = 1; b < std::size(kBounds); ++b) {
        c[b] += static_cast<double>(rng() % (1 + 10 * (6 - std::abs(static_cast<int>(b) - 6))));
        cumulative += c[b];
        batch.push_back({Bucket(h, kBounds[b]), {{t, cumulative}}});
      }
      c[0] = cumulative + static_cast<double>(k);  // slow requests above 10 s
      batch.insert(batch.begin(), {Bucket(h, "+Inf"), {{t, c[0]}}});
      batch.push_back({Labels{{"__name__", "http_request_duration_seconds_count"},
                              {"host", fmt::format("h{}", h)}},
                       {{t, c[0]}}});
      batch.push_back({Labels{{"__name__", "http_request_duration_seconds_sum"},
                              {"host", fmt::format("h{}", h)}},
                       {{t, c[0] * 0.37}}});
      batch.push_back(
          {Labels{{"__name__", "odd_bucket"}, {"host", fmt::format("h{}", h)}, {"le", "fast"}},
           {{t, static_cast<double>(k)}}});
      batch.push_back(
          {Labels{{"__name__", "odd_bucket"}, {"host", fmt::format("h{}", h)}, {"kind", "no le"}},
           {{t, 2.0 * k}}});
    }
    auto r = db.Append(batch);
    ASSERT_TRUE(r.ok()) << r.status();
  }
}

TEST(Compaction, HistogramBucketsAreCodedAgainstTheBucketBelowThroughRewrites) {
  // The same data compacted with and without bases: the same samples, fewer bytes.
  std::vector<CompactionStats> stats;
  std::vector<testing::SeriesSamplesMap> read;
  for (int depth : {0, 3}) {
    TempDir dir;
    auto opts = Opts(dir.path());
    opts.compaction.max_series_per_group = 100;
    opts.compaction.max_base_depth = depth;
    auto db = Storage::Open(opts);
    ASSERT_TRUE(db.ok()) << db.status();
    std::mt19937_64 rng(11);
    std::vector<std::vector<double>> counts;
    AppendHistograms(**db, 0, 2 * 240, rng, &counts);
    ASSERT_TRUE((*db)->Flush(false).ok());
    testing::SeriesSamplesMap before = ReadEverything(**db);
    ASSERT_EQ(before.size(), 2u * (std::size(kBounds) + 4));
    ASSERT_TRUE((*db)->Compact().ok());
    stats.push_back((*db)->stats().compaction);
    ExpectSame(ReadEverything(**db), before);
    read.push_back(std::move(before));
  }
  ExpectSame(read[0], read[1]);
  // At least 3% fewer here (10% before mantissa runs, which pack the increments of buckets
  // coded alone too; on the benchmark's histograms the buckets take 28% less with bases).
  EXPECT_LT(stats[1].bytes_after * 100, stats[0].bytes_after * 97)
      << stats[1].bytes_after << " with bases, " << stats[0].bytes_after << " without";

  TempDir dir;
  auto opts = Opts(dir.path());
  opts.compaction.max_series_per_group = 100;
  opts.max_sample_age_ms = 0;  // late samples into the compacted partition
  auto db = Storage::Open(opts);
  ASSERT_TRUE(db.ok()) << db.status();
  std::mt19937_64 rng(12);
  std::vector<std::vector<double>> counts;
  // 50 minutes of partition 0; a sample in partition 2 closes it.
  AppendHistograms(**db, 0, 200, rng, &counts);
  std::vector<SeriesBatch> tick = {{Labels{{"__name__", "tick"}}, {{2 * kPartition, 1}}}};
  ASSERT_TRUE((*db)->Append(tick).ok());
  ASSERT_TRUE((*db)->Flush(true).ok());
  ASSERT_TRUE((*db)->Compact().ok());
  ASSERT_TRUE((*db)->store().PartitionsWithChunks(1)->empty());
  // The rest of the hour arrives late: its chunks merge into the block.
  AppendHistograms(**db, 200 * 15000, 40, rng, &counts);
  ASSERT_TRUE((*db)->Flush(true).ok());
  testing::SeriesSamplesMap want = ReadEverything(**db);
  ASSERT_EQ(want[Bucket(1, "+Inf").ToString()].size(), 240u);
  ASSERT_FALSE((*db)->store().PartitionsWithChunks(1)->empty());
  ASSERT_TRUE((*db)->Compact().ok());
  ASSERT_TRUE((*db)->store().PartitionsWithChunks(1)->empty());
  ExpectSame(ReadEverything(**db), want);

  // Deleted: the whole of a bucket that another is based on, and part of another (so its
  // timestamps no longer match its neighbours').
  ASSERT_TRUE((*db)
                  ->DeleteSeries(
                      {M(MatchType::kEqual, "host", "h0"), M(MatchType::kEqual, "le", "0.05")},
                      std::numeric_limits<Timestamp>::min(), std::numeric_limits<Timestamp>::max())
                  .ok());
  const Timestamp from = kPartition / 3, to = kPartition / 2;
  ASSERT_TRUE(
      (*db)
          ->DeleteSeries({M(MatchType::kEqual, "host", "h1"), M(MatchType::kEqual, "le", "0.5")},
                         from, to)
          .ok());
  want.erase(Bucket(0, "0.05").ToString());
  std::erase_if(want[Bucket(1, "0.5").ToString()],
                [&](const Sample& x) { return x.t >= from && x.t <= to; });
  ASSERT_TRUE((*db)->CleanTombstones().ok());
  EXPECT_TRUE((*db)->tombstones()->empty());
  ExpectSame(ReadEverything(**db), want);
  ASSERT_TRUE((*db)->Close().ok());
  db = Storage::Open(opts);
  ASSERT_TRUE(db.ok()) << db.status();
  ExpectSame(ReadEverything(**db), want);
}

// Every selected series read one way: Next (0), one AppendRange over the selection (1), an
// AppendRange over part of it (2), or Seeks to every 7th minute then Next (3).
testing::SeriesSamplesMap ReadWay(Storage& db, Timestamp mint, Timestamp maxt,
                                  const std::vector<LabelMatcher>& matchers, bool sorted, int way) {
  testing::SeriesSamplesMap out;
  auto q = db.MakeQuerier(mint, maxt);
  EXPECT_TRUE(q.ok()) << q.status();
  if (!q.ok()) return out;
  SelectHints hints;
  hints.sorted = sorted;
  auto set = (*q)->Select(matchers, hints);
  EXPECT_TRUE(set.ok()) << set.status();
  if (!set.ok()) return out;
  while ((*set)->Next()) {
    std::vector<Sample>& samples = out[(*set)->labels().ToString()];
    auto it = (*set)->Samples();
    if (way == 1) {
      EXPECT_TRUE(it->AppendRange(mint, maxt, &samples).ok());
    } else if (way == 2) {
      EXPECT_TRUE(it->AppendRange(mint + 20000, maxt - 40000, &samples).ok());
    } else if (way == 3) {
      for (Timestamp t = mint; t <= maxt && it->Seek(t); t += 7 * 60000) {
        samples.push_back(it->At());
        if (it->Next()) samples.push_back(it->At());
      }
    } else {
      while (it->Next()) samples.push_back(it->At());
    }
    EXPECT_TRUE(it->status().ok()) << it->status();
  }
  EXPECT_TRUE((*set)->status().ok());
  return out;
}

// Queries over compacted partitions read exactly what they read from XOR chunks: ranges
// within a block, across blocks and partitions, between samples, one sample; every way of
// reading; histogram buckets (coded against their neighbours) alone and in label order;
// columns restarting every 16 samples, so that most ranges start and end in the middle of
// a column and cross restarts.
TEST(Compaction, QueriesOverCompactedBlocksReadAsOverXorChunks) {
  TempDir dir;
  auto opts = Opts(dir.path());
  opts.compaction.max_series_per_group = 9;  // blocks cut through histogram families
  opts.compaction.restart_interval = 16;
  auto db = Storage::Open(opts);
  ASSERT_TRUE(db.ok()) << db.status();
  std::mt19937_64 rng(21);
  std::vector<std::vector<double>> counts;
  // Three hours (partitions 0..2); a sample in partition 4 closes them.
  AppendScrapes(**db, 0, 3 * 240, rng);
  AppendHistograms(**db, 3, 3 * 240, rng, &counts);
  std::vector<SeriesBatch> tick = {{Labels{{"__name__", "tick"}}, {{4 * kPartition, 1}}}};
  ASSERT_TRUE((*db)->Append(tick).ok());
  ASSERT_TRUE((*db)->Flush(true).ok());
  const Timestamp sample = 240 * 15000 + 3;  // a histogram sample's time, h0
  const std::vector<std::pair<Timestamp, Timestamp>> ranges = {
      {0, 3 * kPartition},
      {kPartition - 60000, kPartition + 60000},
      {kPartition / 3, kPartition / 3 + 1},
      {sample, sample},
      {sample + 1, sample + 4},
      {sample - 15000, sample},
      {2 * kPartition + 100000, 4 * kPartition},
      {-kPartition, 5},
  };
  const std::vector<std::vector<LabelMatcher>> selections = {
      {M(MatchType::kRegexMatch, "__name__", ".+")},
      {M(MatchType::kEqual, "le", "+Inf")},
      {M(MatchType::kEqual, "host", "h1")},
      {M(MatchType::kRegexMatch, "__name__", "http.*"), M(MatchType::kEqual, "host", "h0")},
  };
  auto read_all = [&] {
    std::vector<testing::SeriesSamplesMap> out;
    for (const auto& [mint, maxt] : ranges) {
      for (const auto& matchers : selections) {
        for (int way = 0; way < 4; ++way) {
          out.push_back(ReadWay(**db, mint, maxt, matchers, /*sorted=*/way % 2 == 0, way));
        }
      }
    }
    return out;
  };
  std::vector<testing::SeriesSamplesMap> before = read_all();
  ASSERT_EQ(before[0].size(), 30u + 2 * (std::size(kBounds) + 4));
  ASSERT_TRUE((*db)->Compact().ok());
  ASSERT_TRUE((*db)->store().PartitionsWithChunks(3)->empty());
  EXPECT_GE((*db)->stats().compaction.blocks_written, 3 * 4);  // several per partition
  // Twice: the second time from the store's cache of decoded blocks.
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<testing::SeriesSamplesMap> after = read_all();
    ASSERT_EQ(after.size(), before.size());
    for (size_t k = 0; k < before.size(); ++k) {
      SCOPED_TRACE(fmt::format("pass {} range {} selection {} way {}", pass,
                               k / (4 * selections.size()), k / 4 % selections.size(), k % 4));
      ExpectSame(after[k], before[k]);
    }
  }
}

// Queries running while compactions and tombstone cleaning rewrite the blocks they read
// (and empty the store's cache of decoded blocks) answer the same, bit for bit.
TEST(Compaction, QueriesDuringBlockRewritesAnswerTheSame) {
  TempDir dir;
  auto opts = Opts(dir.path());
  opts.max_sample_age_ms = 0;  // late samples into compacted partitions
  auto db = Storage::Open(opts);
  ASSERT_TRUE(db.ok()) << db.status();
  std::mt19937_64 rng(31);
  // Series to keep and, between them (so in the same blocks), victims to delete.
  auto victim = [](int i) { return Labels{{"__name__", "victim"}, {"i", std::to_string(i)}}; };
  constexpr int kVictims = 6;
  for (int k = 0; k < 2 * 240; ++k) {
    std::vector<SeriesBatch> batch;
    const Timestamp t = k * 15000;
    for (int i = 0; i < 12; ++i) {
      batch.push_back({Host(0, i), {{t, static_cast<double>(rng() % 1000) / 10}}});
      if (i < kVictims) batch.push_back({victim(i), {{t, static_cast<double>(k)}}});
    }
    ASSERT_TRUE((*db)->Append(batch).ok());
  }
  std::vector<SeriesBatch> tick = {{Labels{{"__name__", "tick"}}, {{3 * kPartition, 1}}}};
  ASSERT_TRUE((*db)->Append(tick).ok());
  ASSERT_TRUE((*db)->Flush(true).ok());
  const std::vector<LabelMatcher> kept = {M(MatchType::kEqual, "host", "h0")};
  testing::SeriesSamplesMap want[4];
  for (int way = 0; way < 4; ++way) want[way] = ReadWay(**db, 0, 2 * kPartition, kept, true, way);
  const testing::SeriesSamplesMap want_part =
      ReadWay(**db, kPartition / 2, kPartition + 1000, kept, false, 1);
  ASSERT_EQ(want[0].size(), 12u);

  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  auto reader = [&](int way) {
    while (!done.load() || reads.load() < 8) {
      ExpectSame(ReadWay(**db, 0, 2 * kPartition, kept, true, way), want[way]);
      ExpectSame(ReadWay(**db, kPartition / 2, kPartition + 1000, kept, false, 1), want_part);
      ++reads;
      if (::testing::Test::HasFailure()) return;
    }
  };
  std::vector<std::thread> threads;
  for (int way : {0, 1, 3}) threads.emplace_back(reader, way);
  ASSERT_TRUE((*db)->Compact().ok());
  for (int i = 0; i < kVictims; ++i) {
    // A victim's late sample makes the next compaction merge a chunk into its block; its
    // deletion and cleaning rewrite the block again.
    std::vector<SeriesBatch> late = {{victim(i), {{2 * kPartition - 1000 + i, 1}}}};
    ASSERT_TRUE((*db)->Append(late).ok());
    ASSERT_TRUE((*db)->Flush(true).ok());
    ASSERT_TRUE((*db)->Compact().ok());
    ASSERT_TRUE((*db)
                    ->DeleteSeries({M(MatchType::kEqual, "i", std::to_string(i)),
                                    M(MatchType::kEqual, "__name__", "victim")},
                                   std::numeric_limits<Timestamp>::min(),
                                   std::numeric_limits<Timestamp>::max())
                    .ok());
    ASSERT_TRUE((*db)->CleanTombstones().ok());
  }
  done = true;
  for (std::thread& t : threads) t.join();
  EXPECT_GE(reads.load(), 8);
  EXPECT_GE((*db)->stats().compaction.blocks_written, 2);
  ExpectSame(ReadWay(**db, 0, 2 * kPartition, kept, true, 0), want[0]);
}

// Size retention drops the oldest partitions when they are compacted too.
TEST(Compaction, SizeRetentionDropsCompactedPartitions) {
  TempDir dir;
  std::mt19937_64 rng(7);
  auto opts = Opts(dir.path());
  auto db = Storage::Open(opts);
  ASSERT_TRUE(db.ok()) << db.status();
  AppendScrapes(**db, 0, 4 * 240, rng);
  ASSERT_TRUE((*db)->Flush(false).ok());
  ASSERT_TRUE((*db)->Compact().ok());
  ASSERT_EQ((*db)->stats().compaction.partitions, 3);
  ASSERT_TRUE((*db)->store().PartitionsWithChunks(3)->empty());
  ASSERT_EQ((*db)->store().Partitions(0, 3 * kPartition - 1), (std::vector<int64_t>{0, 1, 2}));
  ASSERT_TRUE((*db)->Close().ok());

  opts.retention_bytes = 1;  // everything but the newest partition must go
  db = Storage::Open(opts);
  ASSERT_TRUE(db.ok()) << db.status();
  ASSERT_TRUE((*db)->Flush(false).ok());
  EXPECT_TRUE((*db)->store().Partitions(0, 3 * kPartition - 1).empty());
  auto q = (*db)->MakeQuerier(0, 3 * kPartition - 1);
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(ReadAll(**q, {M(MatchType::kRegexMatch, "__name__", ".+")}).empty());
  EXPECT_FALSE(ReadEverything(**db).empty());  // the newest partition stays
}

// Open partitions (docs/format/keys.md, "Compaction"): a block of the partition the head
// still takes samples for is merged with its series' newer chunks once they hold at least
// open_merge_ratio times its samples.
StorageOptions OpenOpts(const std::string& dir) {
  StorageOptions o = Opts(dir);
  o.compaction.open_merge_ratio = 0.5;
  o.compaction.open_min_samples = 300;
  return o;
}

int64_t ChunksIn(Storage& db) {
  auto partitions = db.store().PartitionsWithChunks(std::numeric_limits<int64_t>::max());
  EXPECT_TRUE(partitions.ok());
  return partitions.ok() ? static_cast<int64_t>(partitions->size()) : -1;
}

TEST(OpenCompaction, BlocksOfTheOpenPartitionMergeTheirSeriesNewChunks) {
  TempDir dir;
  std::mt19937_64 rng(7);
  auto db = Storage::Open(OpenOpts(dir.path()));
  ASSERT_TRUE(db.ok()) << db.status();
  // 20 minutes of partition 0 (open: max age 30 minutes): 80 scrapes x 30 series.
  AppendScrapes(**db, 0, 80, rng);
  ASSERT_TRUE((*db)->Flush(true).ok());
  testing::SeriesSamplesMap before = ReadEverything(**db);
  ASSERT_TRUE((*db)->Compact().ok());
  CompactionStats stats = (*db)->stats().compaction;
  EXPECT_EQ(stats.partitions, 1);
  EXPECT_EQ(stats.open_partitions, 1);
  EXPECT_EQ(stats.samples, 80 * 30);
  EXPECT_EQ(stats.open_samples, 80 * 30);
  EXPECT_EQ(stats.blocks_written, 5);  // 30 series in groups of at most 7
  EXPECT_EQ(ChunksIn(**db), 0);
  ExpectSame(ReadEverything(**db), before);

  // 10 more minutes (1200 samples, half the blocks' 2400) plus a new series: every block
  // has new chunks, and the new series' ref lies past the last block (its 2 samples, fewer
  // than open_min_samples, stay a chunk).
  AppendScrapes(**db, 80 * 15000, 40, rng);
  Labels fresh{{"__name__", "fresh"}};
  std::vector<SeriesBatch> one = {{fresh, {{80 * 15000 + 1, 1.5}, {81 * 15000, 2.5}}}};
  ASSERT_TRUE((*db)->Append(one).ok());
  ASSERT_TRUE((*db)->Flush(true).ok());
  before = ReadEverything(**db);
  ASSERT_EQ(before.size(), 31u);
  ExpectSame(ReadEverything(**db), before);  // blocks and chunks of one series, merged
  ASSERT_TRUE((*db)->Compact().ok());
  stats = (*db)->stats().compaction;
  EXPECT_EQ(stats.partitions, 2);
  EXPECT_EQ(stats.samples, 80 * 30 + 120 * 30);  // every block re-encoded once
  EXPECT_EQ(stats.blocks_written, 5 + 5);
  EXPECT_EQ(ChunksIn(**db), 1);
  ExpectSame(ReadEverything(**db), before);

  // 2 minutes: 240 samples, less than half the blocks' samples and fewer than
  // open_min_samples: left as chunks, read together with the blocks.
  AppendScrapes(**db, 120 * 15000, 8, rng);
  ASSERT_TRUE((*db)->Flush(true).ok());
  before = ReadEverything(**db);
  ASSERT_TRUE((*db)->Compact().ok());
  EXPECT_EQ((*db)->stats().compaction.samples, stats.samples);
  EXPECT_EQ(ChunksIn(**db), 1);
  ExpectSame(ReadEverything(**db), before);

  // Once the partition closes, everything in it is compacted, as before.
  AppendScrapes(**db, kPartition + 30 * 60000, 1, rng);
  ASSERT_TRUE((*db)->Flush(false).ok());
  EXPECT_EQ((*db)->FirstOpenPartition(), 1);
  before = ReadEverything(**db);
  ASSERT_TRUE((*db)->Compact().ok());
  auto left = (*db)->store().PartitionsWithChunks(1);
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
  ExpectSame(ReadEverything(**db), before);
}

// Appends an hour (one partition) in one-minute steps, flushing and compacting after each,
// as the background compaction does: the samples the open partition's compactions write
// (each sample once, plus every block sample re-encoded by a merge) stay within
// 1 + 1 / open_merge_ratio times the partition's samples.
TEST(OpenCompaction, ReencodingOverAnOpenPartitionStaysWithinTheGeometricBound) {
  for (double ratio : {0.25, 0.5, 1.0}) {
    SCOPED_TRACE(::testing::Message() << "ratio " << ratio);
    TempDir dir;
    std::mt19937_64 rng(3);
    auto opts = OpenOpts(dir.path());
    opts.compaction.open_merge_ratio = ratio;
    opts.compaction.open_min_samples = 30 * 4;  // one step
    auto db = Storage::Open(opts);
    ASSERT_TRUE(db.ok()) << db.status();
    int64_t merges = 0, last_samples = 0;
    for (int minute = 0; minute < 60; ++minute) {
      AppendScrapes(**db, minute * 60000, 4, rng);
      ASSERT_TRUE((*db)->Flush(true).ok());
      ASSERT_TRUE((*db)->Compact().ok());
      int64_t samples = (*db)->stats().compaction.samples;
      if (samples - last_samples > 30 * 4) ++merges;  // re-encoded blocks too
      last_samples = samples;
    }
    const int64_t total = 60 * 4 * 30;
    CompactionStats stats = (*db)->stats().compaction;
    EXPECT_EQ(stats.open_samples, stats.samples);
    EXPECT_LE(static_cast<double>(stats.open_samples), (1 + 1 / ratio) * total);
    // The policy did merge, more than once, rather than wait for the partition to close.
    EXPECT_GE(merges, 2);
    EXPECT_GE(stats.open_samples, total / 2);
    testing::SeriesSamplesMap got = ReadEverything(**db);
    ASSERT_EQ(got.size(), 30u);
    int64_t read = 0;
    for (const auto& [key, samples] : got) read += static_cast<int64_t>(samples.size());
    EXPECT_EQ(read, total);
  }
}

TEST(OpenCompaction, CloseCompactsWithinItsBudgetAndTheNextStartCompactsTheRest) {
  TempDir dir;
  std::mt19937_64 rng(5);
  MetricsRegistry metrics;
  auto opts = OpenOpts(dir.path());
  opts.metrics = &metrics;
  testing::SeriesSamplesMap before;
  {
    auto db = Storage::Open(opts);
    ASSERT_TRUE(db.ok()) << db.status();
    // 20 minutes, all in the head (open chunks included) when Close flushes it.
    AppendScrapes(**db, 0, 80, rng);
    before = ReadEverything(**db);
    ASSERT_TRUE((*db)->Close().ok());
  }
  EXPECT_NE(metrics.ExpositionText().find("strata_compaction_open_samples_total 2400"),
            std::string::npos)
      << metrics.ExpositionText();
  {
    MetricsRegistry m2;
    opts.metrics = &m2;
    auto db = Storage::Open(opts);
    ASSERT_TRUE(db.ok()) << db.status();
    EXPECT_EQ(ChunksIn(**db), 0);  // compacted at close
    ExpectSame(ReadEverything(**db), before);
    // 20 more minutes, merged into the blocks at close.
    AppendScrapes(**db, 80 * 15000, 80, rng);
    before = ReadEverything(**db);
    ASSERT_TRUE((*db)->Close().ok());
  }
  opts.compaction.close_max_samples = 1500;
  {
    MetricsRegistry m3;
    opts.metrics = &m3;
    auto db = Storage::Open(opts);
    ASSERT_TRUE(db.ok()) << db.status();
    ExpectSame(ReadEverything(**db), before);
    AppendScrapes(**db, 160 * 15000, 40, rng);
    before = ReadEverything(**db);
    ASSERT_TRUE((*db)->Close().ok());
    std::string text = m3.ExpositionText();
    // A budget of 1500 samples re-encoded: the first block (7 series, 1120 samples, 280
    // new) fits, the second does not, and the close stops there.
    EXPECT_NE(text.find("strata_compaction_open_samples_total 1400"), std::string::npos) << text;
  }
  opts.metrics = nullptr;
  {
    auto db = Storage::Open(opts);
    ASSERT_TRUE(db.ok()) << db.status();
    EXPECT_EQ(ChunksIn(**db), 1);  // left by the close
    EXPECT_FALSE((*db)->store().CountedSamples(0).counted);
    ExpectSame(ReadEverything(**db), before);
    // The first compaction after a start takes everything left, although it is less than
    // half of what the blocks hold.
    ASSERT_TRUE((*db)->Compact().ok());
    EXPECT_EQ(ChunksIn(**db), 0);
    EXPECT_EQ((*db)->stats().compaction.samples, 3 * (1120 + 280) + 320 + 80);
    EXPECT_TRUE((*db)->store().CountedSamples(0).counted);
    EXPECT_EQ((*db)->store().CountedSamples(0).in_blocks, 200 * 30);
    ExpectSame(ReadEverything(**db), before);
  }
}

}  // namespace
}  // namespace strata
