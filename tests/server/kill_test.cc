// Crash safety of the real `strata` binary: several sender threads stream remote writes into
// it, the process is SIGKILLed at a random moment, restarted on the same data directory, and
// every batch it acknowledged (204) must be queryable exactly once, with its values. Batches
// that were in flight at the kill may or may not be there, but never wrong or doubled.
// Several rounds, each continuing the same series; in every other round the server gets a
// SIGTERM first and the SIGKILL lands during its close (which flushes the head to RocksDB and
// deletes the WAL) or after it has exited.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fmt/format.h"
#include "gtest/gtest.h"
#include "simdjson.h"
#include "tests/server/http_test_client.h"
#include "tests/server/remote_write_sender.h"

namespace strata {
namespace {

using ::strata::testing::TestHttpClient;

constexpr int kSenders = 4;
constexpr int kSeriesPerSender = 8;
constexpr int kRounds = 5;
constexpr int kMaxBatchesPerRound = 1500;
constexpr int64_t kBaseMs = 1'700'000'000'000;  // sample seq n of every series is at base + n s

// The strata binary with its log in a file (a pipe could fill up and stall it).
class ServerProcess {
 public:
  ServerProcess(const std::string& data_dir, const std::string& log_path) : log_path_(log_path) {
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      std::string bin = STRATA_BINARY;
      std::vector<std::string> args = {bin, "--web.listen-address=127.0.0.1:0",
                                       "--storage.tsdb.path=" + data_dir, "--log.format=json",
                                       "--self-scrape.interval=0"};
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(bin.c_str(), argv.data());
      ::_exit(127);
    }
  }
  ~ServerProcess() { Kill(); }

  // The port once the server says it is ready (0 if it died or took over 120 s). Reads the
  // log from where this process's lines start.
  uint16_t WaitReady(size_t log_offset) {
    uint16_t port = 0;
    for (int i = 0; i < 1200; ++i) {
      std::ifstream in(log_path_);
      std::stringstream ss;
      ss << in.rdbuf();
      std::string log = ss.str().substr(std::min(log_offset, ss.str().size()));
      size_t at = log.find("\"msg\":\"Listening\"");
      if (at != std::string::npos && port == 0) {
        size_t addr = log.find("\"address\":\"127.0.0.1:", at);
        if (addr != std::string::npos)
          port = static_cast<uint16_t>(std::stoi(log.substr(addr + 21)));
      }
      if (port != 0 && log.find("Server is ready") != std::string::npos) return port;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return 0;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return 0;
  }

  void Terminate() {
    if (pid_ > 0) ::kill(pid_, SIGTERM);
  }

  // SIGKILL (a no-op once it has exited); returns the wait status.
  int Kill() {
    if (pid_ <= 0) return 0;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

 private:
  std::string log_path_;
  pid_t pid_ = -1;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// What one sender did to its series, over all rounds. Batch n writes sample seq n (value n)
// to each of the sender's series, at kBaseMs + n seconds.
struct SenderLog {
  int64_t next_seq = 0;
  std::vector<bool> acked;            // by seq
  std::vector<bool> tried;            // sent, answer unknown or not 204
  std::vector<std::string> problems;  // answers that should never happen
};

void RunSender(uint16_t port, int sender, SenderLog* log, const std::atomic<bool>* stop) {
  TestHttpClient client(port);
  if (!client.connected()) return;
  for (int b = 0; b < kMaxBatchesPerRound && !stop->load(); ++b) {
    int64_t seq = log->next_seq++;
    test::WriteRequest req;
    for (int s = 0; s < kSeriesPerSender; ++s) {
      strata::testing::AddSeries(
          &req,
          {{"__name__", "kill_test"}, {"sender", std::to_string(sender)}, {"s", std::to_string(s)}},
          {{kBaseMs + seq * 1000, static_cast<double>(seq)}});
    }
    log->tried.resize(static_cast<size_t>(seq) + 1);
    log->acked.resize(static_cast<size_t>(seq) + 1);
    log->tried[static_cast<size_t>(seq)] = true;
    auto r = strata::testing::PostRemoteWrite(client, strata::testing::EncodeRemoteWriteBody(req));
    if (!r) return;  // the server is gone: this batch's fate is unknown
    if (r->status == 204) {
      log->acked[static_cast<size_t>(seq)] = true;
    } else if (r->status != 429 && r->status != 503) {
      log->problems.push_back(fmt::format("seq {}: {} {}", seq, r->status, r->body));
    }
  }
}

// Checks every series of every sender against the logs through the query API.
void Verify(uint16_t port, const std::vector<SenderLog>& logs, int round) {
  TestHttpClient client(port);
  ASSERT_TRUE(client.connected());
  for (int sender = 0; sender < kSenders; ++sender) {
    const SenderLog& log = logs[static_cast<size_t>(sender)];
    if (log.next_seq == 0) continue;
    // A range selector returns every raw sample in (time - range, time].
    int64_t end_ms = kBaseMs + (log.next_seq + 1) * 1000;
    std::string target =
        fmt::format("/api/v1/query?query=kill_test%7Bsender%3D%22{}%22%7D%5B{}s%5D&time={}.{:03}",
                    sender, log.next_seq + 10, end_ms / 1000, end_ms % 1000);
    auto r = client.Get(target);
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->status, 200) << r->body;
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(r->body).get(doc), simdjson::SUCCESS);
    simdjson::dom::array result;
    ASSERT_EQ(doc["data"]["result"].get(result), simdjson::SUCCESS) << r->body.substr(0, 500);
    std::map<std::string, std::vector<std::pair<int64_t, std::string>>> by_series;
    for (simdjson::dom::element series : result) {
      std::string_view s;
      ASSERT_EQ(series["metric"]["s"].get(s), simdjson::SUCCESS);
      auto& points = by_series[std::string(s)];
      for (simdjson::dom::element pair : series["values"]) {
        double t = 0;
        std::string_view v;
        ASSERT_EQ(pair.at(0).get(t), simdjson::SUCCESS);
        ASSERT_EQ(pair.at(1).get(v), simdjson::SUCCESS);
        points.emplace_back(static_cast<int64_t>(t * 1000 + 0.5), std::string(v));
      }
    }
    int64_t acked_total = 0;
    for (bool a : log.acked) acked_total += a ? 1 : 0;
    for (int s = 0; s < kSeriesPerSender; ++s) {
      const auto& points = by_series[std::to_string(s)];
      std::vector<int> seen(static_cast<size_t>(log.next_seq), 0);
      int64_t prev_t = 0;
      for (const auto& [t, v] : points) {
        int64_t seq = (t - kBaseMs) / 1000;
        ASSERT_EQ((t - kBaseMs) % 1000, 0) << "round " << round << ": stray timestamp " << t;
        ASSERT_TRUE(seq >= 0 && seq < log.next_seq)
            << "round " << round << ": sample never sent, seq " << seq;
        EXPECT_GT(t, prev_t) << "round " << round << ": samples out of order or doubled";
        prev_t = t;
        EXPECT_TRUE(log.tried[static_cast<size_t>(seq)]);
        EXPECT_EQ(v, std::to_string(seq)) << "round " << round << ": wrong value at seq " << seq;
        ++seen[static_cast<size_t>(seq)];
      }
      int missing = 0, doubled = 0;
      for (int64_t seq = 0; seq < log.next_seq; ++seq) {
        if (log.acked[static_cast<size_t>(seq)] && seen[static_cast<size_t>(seq)] == 0) ++missing;
        if (seen[static_cast<size_t>(seq)] > 1) ++doubled;
      }
      EXPECT_EQ(missing, 0) << "round " << round << ": sender " << sender << " series " << s
                            << " lost acknowledged samples (" << acked_total << " acked)";
      EXPECT_EQ(doubled, 0) << "round " << round << ": sender " << sender << " series " << s;
    }
  }
}

TEST(StrataKill, AcknowledgedRemoteWritesSurviveSigkillExactlyOnce) {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / fmt::format("strata_kill_test_{}", ::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string data = (dir / "data").string();
  const std::string log_path = (dir / "server.log").string();
  const unsigned seed = std::random_device{}();
  std::mt19937 rng(seed);
  SCOPED_TRACE(fmt::format("seed {}", seed));

  std::vector<SenderLog> logs(kSenders);
  int64_t acked_before_kills = 0;
  for (int round = 0; round <= kRounds; ++round) {
    size_t log_offset = ReadFile(log_path).size();
    ServerProcess server(data, log_path);
    uint16_t port = server.WaitReady(log_offset);
    ASSERT_NE(port, 0) << "round " << round << ": the server did not come up\n"
                       << ReadFile(log_path).substr(log_offset);
    // What was acknowledged before the last kill is all there, once.
    Verify(port, logs, round);
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << ReadFile(log_path).substr(log_offset);
      break;
    }
    if (round == kRounds) break;  // the last start only verifies

    std::atomic<bool> stop{false};
    std::vector<std::thread> senders;
    for (int s = 0; s < kSenders; ++s) {
      senders.emplace_back(RunSender, port, s, &logs[static_cast<size_t>(s)], &stop);
    }
    // Kill at a random moment while the senders are busy.
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 1200));
    if (round % 2 == 1) {
      server.Terminate();
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 400));
    }
    int status = server.Kill();
    if (WIFEXITED(status)) {
      EXPECT_EQ(WEXITSTATUS(status), 0) << "round " << round << ": a clean stop failed\n"
                                        << ReadFile(log_path).substr(log_offset);
    }
    stop = true;
    for (std::thread& t : senders) t.join();
    int64_t acked = 0, unknown = 0;
    for (const SenderLog& log : logs) {
      for (const std::string& p : log.problems) ADD_FAILURE() << "round " << round << ": " << p;
      for (size_t i = 0; i < log.acked.size(); ++i) {
        acked += log.acked[i] ? 1 : 0;
        unknown += log.tried[i] && !log.acked[i] ? 1 : 0;
      }
    }
    std::cout << fmt::format("round {}: {}; {} batches acknowledged so far, {} unanswered\n", round,
                             round % 2 == 0      ? "SIGKILL"
                             : WIFEXITED(status) ? "SIGTERM, exited before the SIGKILL"
                                                 : "SIGTERM, then SIGKILL while stopping",
                             acked, unknown);
    acked_before_kills = acked;
  }
  // The test means something only if writes were acknowledged before the kills.
  EXPECT_GT(acked_before_kills, 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace strata
