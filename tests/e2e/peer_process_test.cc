// The process handling the end-to-end tests rely on: a missing binary is an error that says
// what to install, exits are recorded, Stop ends a running process by PID.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/peers.h"

namespace strata::e2e {
namespace {

using ::testing::HasSubstr;

std::filesystem::path Log(const char* name) {
  return std::filesystem::temp_directory_path() /
         (std::string(name) + "_" + std::to_string(::getpid()) + ".log");
}

TEST(PeerProcess, AMissingBinaryFailsWithWhatToInstall) {
  PeerProcess p("prometheus", "/nonexistent/prometheus", {}, Log("missing"));
  std::string error;
  EXPECT_FALSE(p.Start(&error));
  EXPECT_THAT(error, HasSubstr("/nonexistent/prometheus is missing"));
  EXPECT_THAT(error, HasSubstr("scripts/install-deps.sh"));
  EXPECT_FALSE(p.Alive());
}

TEST(PeerProcess, RecordsTheExitAndKeepsTheOutput) {
  std::filesystem::path log = Log("exit");
  PeerProcess p("sh", "/bin/sh", {"-c", "echo hello from the peer; exit 3"}, log);
  std::string error;
  ASSERT_TRUE(p.Start(&error)) << error;
  for (int i = 0; i < 250 && p.Alive(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(p.Alive());
  EXPECT_EQ(p.exit_status(), 3);
  EXPECT_THAT(p.LogTail(), HasSubstr("hello from the peer"));
  EXPECT_THAT(p.LogTail(), HasSubstr("exited with code 3"));
  std::filesystem::remove(log);
}

TEST(PeerProcess, StopEndsARunningProcessByPid) {
  std::filesystem::path log = Log("stop");
  PeerProcess p("sleep", "/bin/sleep", {"600"}, log);
  std::string error;
  ASSERT_TRUE(p.Start(&error)) << error;
  EXPECT_TRUE(p.Alive());
  pid_t pid = p.pid();
  p.Stop();
  EXPECT_FALSE(p.Alive());
  EXPECT_EQ(p.exit_status(), 128 + SIGTERM);
  EXPECT_NE(::kill(pid, 0), 0);  // reaped: the PID is gone
  p.Stop();                      // again: nothing happens
  std::filesystem::remove(log);
}

TEST(PeerProcess, WaitForHttpOkReportsADeadPeer) {
  std::filesystem::path log = Log("dead");
  PeerProcess p("sh", "/bin/sh", {"-c", "echo cannot start; exit 1"}, log);
  std::string error;
  ASSERT_TRUE(p.Start(&error)) << error;
  EXPECT_FALSE(WaitForHttpOk(FreePort(), "/-/ready", p, 30, &error));
  EXPECT_THAT(error, HasSubstr("sh exited before answering /-/ready"));
  EXPECT_THAT(error, HasSubstr("cannot start"));
  std::filesystem::remove(log);
}

TEST(FormEncode, EscapesLikeAForm) {
  EXPECT_EQ(FormEncode({{"match[]", R"(up{job="a b"})"}, {"q", "1+1"}}),
            "match%5B%5D=up%7Bjob%3D%22a%20b%22%7D&q=1%2B1");
}

}  // namespace
}  // namespace strata::e2e
