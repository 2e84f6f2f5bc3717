#include "storage/wal.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "gtest/gtest.h"
#include "src/strings.h"

namespace strata {
namespace {

namespace fs = std::filesystem;

class WalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           fmt::format("strata_wal_test_{}_{}", ::getpid(),
                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  struct Replayed {
    std::vector<std::pair<SeriesRef, std::string>> series;
    std::vector<WalSample> samples;
    WalReplayStats stats;
  };
  Replayed Replay() {
    Replayed r;
    auto stats = ReplayWal(dir_, [&](int64_t, WalRecordType type, std::string_view payload) {
      if (type == WalRecordType::kSeries) {
        std::vector<WalSeries> s;
        absl::Status st = DecodeWalSeries(payload, &s);
        for (auto& x : s) r.series.emplace_back(x.ref, std::string(x.labels));
        return st;
      }
      std::vector<WalSample> s;
      absl::Status st = DecodeWalSamples(payload, &s);
      r.samples.insert(r.samples.end(), s.begin(), s.end());
      return st;
    });
    EXPECT_TRUE(stats.ok()) << stats.status();
    if (stats.ok()) r.stats = *stats;
    return r;
  }

  static std::string SamplesRecord(SeriesRef ref, Timestamp t0, int n) {
    std::vector<WalSample> s;
    for (int i = 0; i < n; ++i) s.push_back({ref, t0 + i * 15000, i * 0.5});
    std::string out;
    EncodeWalSamples(s, &out);
    return out;
  }

  std::string dir_;
};

TEST_F(WalTest, RoundTripsSeriesAndSamples) {
  Labels a{{"__name__", "up"}, {"job", "node"}};
  {
    auto wal = Wal::Open(dir_, {});
    ASSERT_TRUE(wal.ok()) << wal.status();
    std::string rec;
    WalSeries s{7, a.encoded()};
    EncodeWalSeries({&s, 1}, &rec);
    ASSERT_TRUE((*wal)->Log(WalRecordType::kSeries, rec).ok());
    std::vector<WalSample> samples = {{7, -5, 1.5}, {7, 1000, -2}, {9, 1LL << 50, 1e300}};
    rec.clear();
    EncodeWalSamples(samples, &rec);
    ASSERT_TRUE((*wal)->Log(WalRecordType::kSamples, rec).ok());
    ASSERT_TRUE((*wal)->Close().ok());
  }
  Replayed r = Replay();
  ASSERT_EQ(r.series.size(), 1u);
  EXPECT_EQ(r.series[0].first, 7u);
  EXPECT_EQ(r.series[0].second, a.encoded());
  ASSERT_EQ(r.samples.size(), 3u);
  EXPECT_EQ(r.samples[0].t, -5);
  EXPECT_EQ(r.samples[1].v, -2);
  EXPECT_EQ(r.samples[2].ref, 9u);
  EXPECT_EQ(r.samples[2].t, 1LL << 50);
  EXPECT_EQ(r.samples[2].v, 1e300);
  EXPECT_FALSE(r.stats.truncated);
}

TEST_F(WalTest, RotatesSegmentsAndDeletesOldOnes) {
  auto wal = Wal::Open(dir_, {.sync = false, .segment_bytes = 1024});
  ASSERT_TRUE(wal.ok());
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE((*wal)->Log(WalRecordType::kSamples, SamplesRecord(1, i * 1000000, 10)).ok());
  }
  int64_t cur = (*wal)->current_segment();
  EXPECT_GT(cur, 5);
  ASSERT_TRUE((*wal)->DeleteSegmentsBefore(cur).ok());
  auto segs = ListWalSegments(dir_);
  ASSERT_TRUE(segs.ok());
  EXPECT_EQ(*segs, std::vector<int64_t>{cur});
  ASSERT_TRUE((*wal)->Close().ok());
  // A reopened WAL starts a fresh segment after the last one.
  auto again = Wal::Open(dir_, {});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->current_segment(), cur + 1);
}

TEST_F(WalTest, TruncatedLastRecordIsCutAndEverythingBeforeIsKept) {
  for (int cut : {1, 5, 9, 20}) {
    fs::remove_all(dir_);
    {
      auto wal = Wal::Open(dir_, {});
      ASSERT_TRUE(wal.ok());
      for (int i = 0; i < 50; ++i) {
        ASSERT_TRUE((*wal)->Log(WalRecordType::kSamples, SamplesRecord(i, i, 3)).ok());
      }
      ASSERT_TRUE((*wal)->Close().ok());
    }
    std::string seg = WalSegmentPath(dir_, 0);
    auto size = fs::file_size(seg);
    fs::resize_file(seg, size - cut);
    Replayed r = Replay();
    EXPECT_TRUE(r.stats.truncated);
    ASSERT_EQ(r.samples.size(), 49u * 3) << "cut " << cut;
    EXPECT_EQ(r.samples.back().ref, 48u);
    // A second replay sees a clean log.
    Replayed again = Replay();
    EXPECT_FALSE(again.stats.truncated);
    EXPECT_EQ(again.samples.size(), 49u * 3);
  }
}

TEST_F(WalTest, GarbledLastRecordIsCutAndLaterSegmentsDropped) {
  {
    auto wal = Wal::Open(dir_, {});
    ASSERT_TRUE(wal.ok());
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE((*wal)->Log(WalRecordType::kSamples, SamplesRecord(i, i, 3)).ok());
    }
    ASSERT_TRUE((*wal)->Close().ok());
  }
  std::string seg = WalSegmentPath(dir_, 0);
  auto size = fs::file_size(seg);
  {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(size - 3);
    f.put('\x5a');
  }
  // A later segment after the corruption cannot be trusted to follow on.
  { std::ofstream(WalSegmentPath(dir_, 1)) << "x"; }
  Replayed r = Replay();
  EXPECT_TRUE(r.stats.truncated);
  EXPECT_EQ(r.samples.size(), 9u * 3);
  EXPECT_FALSE(fs::exists(WalSegmentPath(dir_, 1)));
  // New writes after recovery replay after the kept records.
  {
    auto wal = Wal::Open(dir_, {});
    ASSERT_TRUE(wal.ok());
    ASSERT_TRUE((*wal)->Log(WalRecordType::kSamples, SamplesRecord(99, 0, 1)).ok());
  }
  Replayed again = Replay();
  EXPECT_FALSE(again.stats.truncated);
  ASSERT_EQ(again.samples.size(), 9u * 3 + 1);
  EXPECT_EQ(again.samples.back().ref, 99u);
}

TEST_F(WalTest, ConcurrentAppendersShareSyncsAndLoseNothing) {
  constexpr int kThreads = 8, kPerThread = 200;
  {
    auto wal = Wal::Open(dir_, {.sync = true, .segment_bytes = 64 << 10});
    ASSERT_TRUE(wal.ok());
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          ASSERT_TRUE((*wal)->Log(WalRecordType::kSamples, SamplesRecord(t, i, 2)).ok());
        }
      });
    }
    for (auto& th : threads) th.join();
    // Group commit: fewer fsyncs than records.
    EXPECT_LT((*wal)->syncs(), uint64_t{kThreads * kPerThread});
    ASSERT_TRUE((*wal)->Close().ok());
  }
  Replayed r = Replay();
  ASSERT_EQ(r.samples.size(), size_t{kThreads * kPerThread * 2});
  // Per appender, records stay in the order they were logged.
  std::vector<Timestamp> last(kThreads, -1);
  for (size_t i = 0; i < r.samples.size(); i += 2) {
    const WalSample& s = r.samples[i];
    EXPECT_GT(s.t, last[s.ref]);
    last[s.ref] = s.t;
  }
}

TEST_F(WalTest, OpenFailsClearlyOnUnwritableDirectory) {
  // A regular file where the directory should be: fails even for root.
  { std::ofstream(dir_) << "not a directory"; }
  auto wal = Wal::Open(dir_ + "/wal", {});
  EXPECT_FALSE(wal.ok());
  EXPECT_NE(wal.status().message().find(dir_), std::string::npos) << wal.status();
  fs::remove(dir_);
}

}  // namespace
}  // namespace strata
