// A child process appends batches and reports each acknowledgement through a pipe; the
// parent SIGKILLs it at a random point, reopens the directory and checks that every
// acknowledged sample is there exactly once. The child is this test binary re-executed
// (fork + exec), so it starts with a clean process: no inherited RocksDB threads. In the
// close rounds the child closes the storage after a number of batches (flushing the head to
// RocksDB and emptying the WAL) and the kill lands during or after that close.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <random>
#include <thread>

#include "gtest/gtest.h"
#include "storage/db.h"
#include "tests/storage/test_util.h"

namespace strata {
namespace {

using testing::M;

constexpr int kSeries = 6;
constexpr int kPerBatch = 3;  // samples per series per batch

Sample SampleOf(int64_t batch, int j, int series) {
  int64_t n = batch * kPerBatch + j;
  return {n * 1000, static_cast<double>(n) + series * 0.5};
}

// With `compact`, partitions are a minute long and close 30 s after their end, so the
// background flush loop compacts one every 20 batches (and the child compacts too), and the
// open partition's blocks are merged every few batches. The close rounds' kills land in the
// compaction at close too (after the head's flush, within close_max_samples). With
// `late`, the child appends each series' samples of a batch newest first, and the
// out-of-order window takes the older two.
StorageOptions CrashOptions(const std::string& dir, bool sync, bool compact = false,
                            bool late = false) {
  StorageOptions o;
  if (late) o.out_of_order_window_ms = 60 * 1000;
  if (compact) {
    o.partition_ms = 60 * 1000;
    o.max_sample_age_ms = 30 * 1000;
    o.compaction.max_series_per_group = 2;  // several synced batches per partition
    o.compaction.open_min_samples = 2 * kSeries * kPerBatch;
  }
  o.dir = dir;
  o.wal_sync = sync;
  o.wal_segment_bytes = 4096;
  if (!compact) o.partition_ms = 10 * 60 * 1000;
  o.chunk_samples = 10;
  o.flush_interval_ms = 15;
  o.idle_chunk_ms = 0;
  return o;
}

Labels SeriesLabels(int s) { return Labels{{"__name__", "crash"}, {"s", std::to_string(s)}}; }

constexpr int64_t kClosedMarker = -1;  // the child's Close returned OK

// The child: appends batches from STRATA_CRASH_START on, writing each acknowledged batch id
// to fd STRATA_CRASH_FD, until it is killed. With STRATA_CRASH_CLOSE_AFTER >= 0 it stops after
// that many batches, closes the storage, writes kClosedMarker and waits to be killed.
TEST(StorageCrash, Child) {
  const char* dir = std::getenv("STRATA_CRASH_DIR");
  if (dir == nullptr) GTEST_SKIP() << "only runs as the crash test's child";
  int fd = std::atoi(std::getenv("STRATA_CRASH_FD"));
  int64_t start = std::atoll(std::getenv("STRATA_CRASH_START"));
  bool sync = std::getenv("STRATA_CRASH_SYNC")[0] == '1';
  bool compact = std::getenv("STRATA_CRASH_COMPACT")[0] == '1';
  bool late = std::getenv("STRATA_CRASH_LATE")[0] == '1';
  int64_t close_after = std::atoll(std::getenv("STRATA_CRASH_CLOSE_AFTER"));
  std::mt19937 rng(static_cast<uint32_t>(start));
  auto db = Storage::Open(CrashOptions(dir, sync, compact, late));
  if (!db.ok()) {
    fprintf(stderr, "child: open failed: %s\n", db.status().ToString().c_str());
    std::_Exit(2);
  }
  for (int64_t b = start; b < start + 1000000; ++b) {
    if (b - start == close_after) {
      absl::Status st = (*db)->Close();
      if (!st.ok()) {
        fprintf(stderr, "child: close failed: %s\n", st.ToString().c_str());
        std::_Exit(7);
      }
      if (::write(fd, &kClosedMarker, sizeof(kClosedMarker)) != sizeof(kClosedMarker)) {
        std::_Exit(4);
      }
      while (true) ::pause();
    }
    std::vector<SeriesBatch> batch;
    for (int s = 0; s < kSeries; ++s) {
      SeriesBatch sb{SeriesLabels(s), {}};
      for (int j = 0; j < kPerBatch; ++j) {
        sb.samples.push_back(SampleOf(b, late ? kPerBatch - 1 - j : j, s));
      }
      batch.push_back(std::move(sb));
    }
    auto r = (*db)->Append(batch);
    if (!r.ok() || r->appended != kSeries * kPerBatch) {
      fprintf(stderr, "child: append of batch %lld failed: %s\n", static_cast<long long>(b),
              r.ok() ? "not all appended" : r.status().ToString().c_str());
      std::_Exit(3);
    }
    if (::write(fd, &b, sizeof(b)) != sizeof(b)) std::_Exit(4);
    if (rng() % 50 == 0) {
      absl::Status st = (*db)->Flush(rng() % 2 == 0);
      if (!st.ok()) std::_Exit(5);
    }
    if (compact && rng() % 10 == 0) {
      absl::Status st = (*db)->Compact();
      if (!st.ok()) std::_Exit(6);
    }
  }
  std::_Exit(0);
}

class CrashParent {
 public:
  explicit CrashParent(std::string dir) : dir_(std::move(dir)) {}

  // Starts a child; returns its pid and the read end of its ack pipe.
  std::pair<pid_t, int> Spawn(int64_t start, bool sync, bool compact, bool late,
                              int64_t close_after) {
    int fds[2];
    EXPECT_EQ(::pipe(fds), 0);
    // Everything exec needs is built before fork: only async-signal-safe calls after it.
    std::vector<std::string> env_strings = {
        "STRATA_CRASH_DIR=" + dir_,
        "STRATA_CRASH_FD=" + std::to_string(fds[1]),
        "STRATA_CRASH_START=" + std::to_string(start),
        std::string("STRATA_CRASH_SYNC=") + (sync ? "1" : "0"),
        std::string("STRATA_CRASH_COMPACT=") + (compact ? "1" : "0"),
        std::string("STRATA_CRASH_LATE=") + (late ? "1" : "0"),
        "STRATA_CRASH_CLOSE_AFTER=" + std::to_string(close_after)};
    for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::string self = "/proc/self/exe";
    std::string filter = "--gtest_filter=StorageCrash.Child";
    char* argv[] = {self.data(), filter.data(), nullptr};
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(fds[0]);
      ::execve(self.c_str(), argv, envp.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    return {pid, fds[0]};
  }

 private:
  std::string dir_;
};

// Reads 8-byte ack records until `want` have come, the deadline passes, or EOF.
// Returns false on EOF (the child died).
bool ReadAcks(int fd, int64_t* last_ack, int64_t* count, int64_t want, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (*count < want) {
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    deadline - std::chrono::steady_clock::now())
                                    .count());
    if (left <= 0) return true;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, left) <= 0) continue;
    int64_t id;
    ssize_t n = ::read(fd, &id, sizeof(id));
    if (n == 0) return false;
    if (n != sizeof(id)) continue;
    *last_ack = id;
    ++*count;
  }
  return true;
}

void RunCrashRounds(bool compact, bool late = false, bool close = false) {
  testing::TempDir dir;
  CrashParent parent(dir.path());
  std::mt19937 rng(12345);
  int64_t next_batch = 0;
  int64_t total_acked = 0;
  int clean_closes = 0;
  for (int round = 0; round < 24; ++round) {
    SCOPED_TRACE(::testing::Message() << "round " << round);
    bool sync = round % 2 == 0;
    const int64_t close_after = close ? 1 + rng() % 150 : -1;
    auto [pid, fd] = parent.Spawn(next_batch, sync, compact, late, close_after);
    int64_t last_ack = next_batch - 1, count = 0;
    bool alive;
    bool closed = false;
    if (close) {
      // Every batch acknowledged, then a kill at a random moment of the close, or (every
      // third round) once it has returned.
      alive = ReadAcks(fd, &last_ack, &count, close_after, 20000);
      ASSERT_EQ(count, close_after);
      if (round % 3 == 0) {
        pollfd p{fd, POLLIN, 0};
        int64_t marker = 0;
        ASSERT_EQ(::poll(&p, 1, 60000), 1) << "the child did not finish closing";
        ASSERT_EQ(::read(fd, &marker, sizeof(marker)), static_cast<ssize_t>(sizeof(marker)));
        ASSERT_EQ(marker, kClosedMarker);
        closed = true;
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 60000));
      }
    } else if (rng() % 5 == 0) {
      // Kill at a random moment, maybe during start-up and WAL replay.
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 400));
      alive = ReadAcks(fd, &last_ack, &count, 0, 0);
    } else {
      alive = ReadAcks(fd, &last_ack, &count, 1 + rng() % 150, 20000);
      // Then let it run a little more, to land the kill anywhere in an append or flush.
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
    }
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(alive) << "child exited on its own: status " << status;
    ASSERT_TRUE(WIFSIGNALED(status)) << "status " << status;
    // Acks that reached the pipe before the kill count too.
    int64_t id;
    while (::read(fd, &id, sizeof(id)) == sizeof(id)) {
      if (id == kClosedMarker) {
        closed = true;
        continue;
      }
      last_ack = id;
      ++count;
    }
    if (closed) ++clean_closes;
    ::close(fd);
    total_acked += count;

    auto db = Storage::Open(CrashOptions(dir.path(), true, compact, late));
    ASSERT_TRUE(db.ok()) << db.status();
    if (closed) {
      EXPECT_EQ((*db)->stats().wal_replayed_records, 0) << "a clean close left WAL records";
    }
    auto q = (*db)->MakeQuerier(std::numeric_limits<Timestamp>::min() / 2,
                                std::numeric_limits<Timestamp>::max() / 2);
    ASSERT_TRUE(q.ok());
    auto got = testing::ReadAll(**q, {M(MatchType::kEqual, "__name__", "crash")});
    // Every acknowledged batch is there; the one in flight may be (all of it or none).
    int64_t present = -1;
    for (int s = 0; s < kSeries; ++s) {
      const std::vector<Sample>& samples = got[SeriesLabels(s).ToString()];
      ASSERT_GE(static_cast<int64_t>(samples.size()), (last_ack + 1) * kPerBatch)
          << "series " << s << " lost acknowledged samples";
      ASSERT_LE(static_cast<int64_t>(samples.size()), (last_ack + 2) * kPerBatch);
      ASSERT_EQ(samples.size() % kPerBatch, 0u);
      for (size_t i = 0; i < samples.size(); ++i) {
        Sample want = SampleOf(i / kPerBatch, i % kPerBatch, s);
        ASSERT_EQ(samples[i].t, want.t) << "series " << s << " sample " << i;
        ASSERT_EQ(samples[i].v, want.v) << "series " << s << " sample " << i;
      }
      int64_t batches = samples.size() / kPerBatch;
      if (present < 0) present = batches;
      ASSERT_EQ(batches, present) << "a batch was partly kept";
    }
    next_batch = std::max<int64_t>(present, 0);
    // A batch seen again after restart is a duplicate, never a second copy.
    if (present > 0) {
      std::vector<SeriesBatch> again = {{SeriesLabels(0), {SampleOf(present - 1, 0, 0)}}};
      auto r = (*db)->Append(again);
      ASSERT_TRUE(r.ok());
      EXPECT_EQ(r->appended, 0);
      // Late mode: the window may still find it in the head (same value: a no-op).
      EXPECT_EQ(r->out_of_order + (late ? r->unchanged : 0), 1);
    }
  }
  EXPECT_GT(total_acked, 24);
  if (close) {
    EXPECT_GE(clean_closes, 8);
    std::cout << clean_closes << " of 24 kills came after the close had returned\n";
  }
  if (compact) {
    // The runs did compact: closed partitions hold no XOR chunks any more, or only
    // chunks flushed after the last compaction.
    auto db = Storage::Open(CrashOptions(dir.path(), true, compact));
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Compact().ok());
    EXPECT_TRUE((*db)->store().PartitionsWithChunks((*db)->FirstOpenPartition())->empty());
    EXPECT_EQ((*db)->store().format_version(), kStoreFormatVersion);
  }
}

TEST(StorageCrash, EveryAcknowledgedSampleSurvivesSigkillExactlyOnce) {
  if (std::getenv("STRATA_CRASH_DIR") != nullptr) GTEST_SKIP();
  RunCrashRounds(/*compact=*/false);
}

// Kills land anywhere in appends, flushes and compactions (each compaction group is one
// synced batch): every acknowledged sample is still there exactly once.
// Each batch's older samples go through the out-of-order window: they join head chunks
// (closed ones too, or chunks of their own) that flushes then write.
TEST(StorageCrash, LateSamplesTakenByTheWindowSurviveSigkill) {
  if (std::getenv("STRATA_CRASH_DIR") != nullptr) GTEST_SKIP();
  RunCrashRounds(/*compact=*/false, /*late=*/true);
}

// The child closes after some batches and is killed during or after the close: nothing it
// acknowledged is lost or doubled, and a finished close leaves nothing to replay.
TEST(StorageCrash, SigkillDuringOrAfterACleanCloseLosesNothing) {
  if (std::getenv("STRATA_CRASH_DIR") != nullptr) GTEST_SKIP();
  RunCrashRounds(/*compact=*/false, /*late=*/true, /*close=*/true);
}

TEST(StorageCrash, SigkillDuringCompactionsLosesAndDuplicatesNothing) {
  if (std::getenv("STRATA_CRASH_DIR") != nullptr) GTEST_SKIP();
  RunCrashRounds(/*compact=*/true);
}

}  // namespace
}  // namespace strata
