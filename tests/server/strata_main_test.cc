// Runs the real `strata` binary as a child process: flags, logs, health endpoints, the data
// directory lock and a clean exit on SIGTERM.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/http_test_client.h"
#include "tests/server/remote_write_sender.h"

namespace strata {
namespace {

using ::strata::testing::TestHttpClient;
using ::testing::HasSubstr;

// A child process with its stdout and stderr captured.
class Child {
 public:
  explicit Child(const std::vector<std::string>& args) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::dup2(err[1], 2);
      std::vector<char*> argv;
      std::string bin = STRATA_BINARY;
      argv.push_back(bin.data());
      std::vector<std::string> copy = args;
      for (std::string& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(bin.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    out_ = out[0];
    err_ = err[0];
  }
  ~Child() {
    if (pid_ > 0 && status_ < 0) {
      ::kill(pid_, SIGKILL);
      Wait();
    }
    if (out_ >= 0) ::close(out_);
    if (err_ >= 0) ::close(err_);
  }

  // Reads stderr until a line containing `needle` (returned) or EOF / 60 s ("").
  std::string WaitForLogLine(std::string_view needle) {
    for (;;) {
      size_t nl;
      while ((nl = err_buf_.find('\n')) != std::string::npos) {
        std::string line = err_buf_.substr(0, nl);
        err_text_ += line + "\n";
        err_buf_.erase(0, nl + 1);
        if (line.find(needle) != std::string::npos) return line;
      }
      if (!ReadSome(err_, &err_buf_)) return "";
    }
  }

  // Waits for exit; returns the exit code (or 128 + signal).
  int Wait() {
    if (status_ >= 0) return status_;
    while (ReadSome(err_, &err_buf_)) {
    }
    while (ReadSome(out_, &out_text_)) {
    }
    err_text_ += err_buf_;
    err_buf_.clear();
    int st = 0;
    ::waitpid(pid_, &st, 0);
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return status_;
  }

  pid_t pid() const { return pid_; }
  const std::string& stderr_text() const { return err_text_; }
  const std::string& stdout_text() const { return out_text_; }

 private:
  static bool ReadSome(int fd, std::string* into) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 60000) <= 0) return false;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) return false;
    into->append(buf, static_cast<size_t>(n));
    return true;
  }

  pid_t pid_ = -1;
  int out_ = -1, err_ = -1;
  int status_ = -1;
  std::string err_buf_, err_text_, out_text_;
};

class StrataMainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("strata_main_test_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

uint16_t PortFromListeningLine(const std::string& line) {
  // {"time":...,"msg":"Listening","address":"127.0.0.1:PORT"}
  size_t at = line.find("\"address\":\"127.0.0.1:");
  if (at == std::string::npos) return 0;
  return static_cast<uint16_t>(std::stoi(line.substr(at + 21)));
}

TEST_F(StrataMainTest, ServesHealthAndStopsCleanlyOnSigterm) {
  std::string data = (dir_ / "data").string();
  Child server({"--web.listen-address=127.0.0.1:0", "--storage.tsdb.path=" + data,
                "--log.format=json", "--enable-feature=promql-experimental-functions"});
  ASSERT_GT(server.pid(), 0);
  std::string listening = server.WaitForLogLine("\"msg\":\"Listening\"");
  ASSERT_FALSE(listening.empty()) << server.stderr_text();
  uint16_t port = PortFromListeningLine(listening);
  ASSERT_NE(port, 0) << listening;
  ASSERT_FALSE(server.WaitForLogLine("Server is ready").empty());
  EXPECT_TRUE(std::filesystem::is_directory(data));

  TestHttpClient client(port);
  auto healthy = client.Get("/-/healthy");
  ASSERT_TRUE(healthy);
  EXPECT_EQ(healthy->status, 200);
  auto ready = client.Get("/-/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_THAT(metrics->body,
              HasSubstr("strata_http_requests_total{code=\"200\",handler=\"/-/ready\"} 1"));
  // The process metrics every exporter has, and the build info.
  EXPECT_THAT(metrics->body, HasSubstr("# TYPE process_cpu_seconds_total counter\n"));
  EXPECT_THAT(metrics->body, HasSubstr("\nprocess_resident_memory_bytes "));
  EXPECT_THAT(metrics->body, HasSubstr("\nprocess_start_time_seconds "));
  EXPECT_THAT(metrics->body, HasSubstr("strata_build_info{"));

  // A second server on the same data directory refuses to start and says why.
  Child second({"--web.listen-address=127.0.0.1:0", "--storage.tsdb.path=" + data});
  EXPECT_EQ(second.Wait(), 1);
  EXPECT_THAT(second.stderr_text(), HasSubstr("is in use by another Strata process"));

  // SIGTERM: the idle keep-alive connection is closed and the process exits 0.
  ASSERT_EQ(::kill(server.pid(), SIGTERM), 0);
  EXPECT_TRUE(client.ServerClosed());
  EXPECT_EQ(server.Wait(), 0) << server.stderr_text();
  EXPECT_THAT(server.stderr_text(), HasSubstr("\"signal\":\"SIGTERM\""));
  EXPECT_THAT(server.stderr_text(), HasSubstr("See you next time!"));
  TestHttpClient after(port);
  EXPECT_FALSE(after.connected());
}

// Remote-written samples are queryable, survive a SIGTERM and a restart of the binary on the
// same directory. The SIGTERM writes the head to RocksDB: no WAL record is left, and the
// restart replays none.
TEST_F(StrataMainTest, AcknowledgedSamplesSurviveARestart) {
  std::string data = (dir_ / "data").string();
  const std::string kQuery = "/api/v1/query?query=sum(disk_bytes)&time=100";
  const std::string kExpected = R"({"status":"success","data":{"resultType":"vector","result":[)"
                                R"({"metric":{},"value":[100,"42.5"]}]}})";
  {
    Child server({"--web.listen-address=127.0.0.1:0", "--storage.tsdb.path=" + data,
                  "--log.format=json", "--self-scrape.interval=0"});
    uint16_t port = PortFromListeningLine(server.WaitForLogLine("\"msg\":\"Listening\""));
    ASSERT_NE(port, 0) << server.stderr_text();
    ASSERT_FALSE(server.WaitForLogLine("Server is ready").empty()) << server.stderr_text();
    TestHttpClient client(port);
    test::WriteRequest req;
    testing::AddSeries(&req, {{"__name__", "disk_bytes"}, {"dev", "sda"}}, {{90000, 40}});
    testing::AddSeries(&req, {{"__name__", "disk_bytes"}, {"dev", "sdb"}}, {{95000, 2.5}});
    auto written = testing::PostRemoteWrite(client, testing::EncodeRemoteWriteBody(req));
    ASSERT_TRUE(written);
    ASSERT_EQ(written->status, 204) << written->body;
    auto r = client.Get(kQuery);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, kExpected);
    ASSERT_EQ(::kill(server.pid(), SIGTERM), 0);
    EXPECT_EQ(server.Wait(), 0) << server.stderr_text();
  }
  uintmax_t wal_bytes = 0;
  for (const auto& segment : std::filesystem::directory_iterator(data + "/wal")) {
    wal_bytes += segment.file_size();
  }
  EXPECT_EQ(wal_bytes, 0u) << "the WAL still holds records after a clean stop";
  Child server({"--web.listen-address=127.0.0.1:0", "--storage.tsdb.path=" + data,
                "--log.format=json", "--self-scrape.interval=0"});
  uint16_t port = PortFromListeningLine(server.WaitForLogLine("\"msg\":\"Listening\""));
  ASSERT_NE(port, 0) << server.stderr_text();
  EXPECT_THAT(server.WaitForLogLine("\"msg\":\"Storage opened\""),
              HasSubstr("\"wal_replayed_records\":\"0\""));
  ASSERT_FALSE(server.WaitForLogLine("Server is ready").empty()) << server.stderr_text();
  TestHttpClient client(port);
  auto r = client.Get(kQuery);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, kExpected);
  ASSERT_EQ(::kill(server.pid(), SIGTERM), 0);
  EXPECT_EQ(server.Wait(), 0) << server.stderr_text();
}

TEST_F(StrataMainTest, SigintAlsoStopsCleanly) {
  Child server(
      {"--web.listen-address=127.0.0.1:0", "--storage.tsdb.path=" + (dir_ / "d").string()});
  std::string listening = server.WaitForLogLine("msg=Listening");
  ASSERT_FALSE(listening.empty()) << server.stderr_text();
  ASSERT_EQ(::kill(server.pid(), SIGINT), 0);
  EXPECT_EQ(server.Wait(), 0) << server.stderr_text();
  EXPECT_THAT(server.stderr_text(), HasSubstr("signal=SIGINT"));
}

TEST_F(StrataMainTest, VersionHelpAndBadFlags) {
  Child version({"--version"});
  EXPECT_EQ(version.Wait(), 0);
  EXPECT_THAT(version.stdout_text(), HasSubstr("strata, version"));
  Child help({"--help"});
  EXPECT_EQ(help.Wait(), 0);
  EXPECT_THAT(help.stdout_text(), HasSubstr("--storage.tsdb.path"));
  Child bad({"--log.format=xml"});
  EXPECT_EQ(bad.Wait(), 2);
  EXPECT_THAT(bad.stderr_text(), HasSubstr("xml"));
}

TEST_F(StrataMainTest, ListenFailureExitsWithAMessage) {
  Child first({"--web.listen-address=127.0.0.1:0", "--storage.tsdb.path=" + (dir_ / "a").string()});
  std::string line = first.WaitForLogLine("msg=Listening");
  ASSERT_FALSE(line.empty()) << first.stderr_text();
  std::string port = line.substr(line.rfind(':') + 1);
  Child second(
      {"--web.listen-address=127.0.0.1:" + port, "--storage.tsdb.path=" + (dir_ / "b").string()});
  EXPECT_EQ(second.Wait(), 1);
  EXPECT_THAT(second.stderr_text(), HasSubstr("cannot listen on 127.0.0.1:" + port));
  ::kill(first.pid(), SIGTERM);
  EXPECT_EQ(first.Wait(), 0);
}

}  // namespace
}  // namespace strata
