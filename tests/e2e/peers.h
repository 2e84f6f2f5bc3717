// Real peer processes for the end-to-end tests (the `strata` binary, Prometheus, the node
// exporter, VictoriaMetrics, vmagent): started on 127.0.0.1 with free ports and temp dirs,
// stopped by PID, with their output kept in a log file to show when something fails.
#ifndef STRATA_TESTS_E2E_PEERS_H_
#define STRATA_TESTS_E2E_PEERS_H_

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/server/http_test_client.h"

namespace strata::e2e {

// A port on 127.0.0.1 nobody listens on right now (bound to port 0, then released).
uint16_t FreePort();

// One child process. Its stdout and stderr are appended to `log` (a restart adds to it).
// The child gets SIGKILL when the test process dies (PR_SET_PDEATHSIG), so a crashed test
// leaves no peer behind.
class PeerProcess {
 public:
  PeerProcess(std::string name, std::string binary, std::vector<std::string> args,
              std::filesystem::path log);
  ~PeerProcess() { Stop(); }
  PeerProcess(const PeerProcess&) = delete;
  PeerProcess& operator=(const PeerProcess&) = delete;

  // Forks and execs. False (with `error`) when the binary is missing or fork fails.
  bool Start(std::string* error);
  // True while the process runs; false once it exited (the exit is reaped and recorded).
  bool Alive();
  // SIGTERM, up to 20 s for the exit, then SIGKILL. Safe to call more than once.
  void Stop();
  // SIGKILL at once (a crash), and waits for the exit.
  void Kill();

  const std::string& name() const { return name_; }
  pid_t pid() const { return pid_; }
  // The exit code once the process ended (128 + signal when killed), else -1.
  int exit_status() const { return exit_status_; }
  // The last `bytes` of the process' output and, when it ended, how.
  std::string LogTail(size_t bytes = 3000) const;

 private:
  std::string name_, binary_;
  std::vector<std::string> args_;
  std::filesystem::path log_;
  pid_t pid_ = -1;
  bool running_ = false;
  int exit_status_ = -1;
  std::string exit_;
};

// application/x-www-form-urlencoded, in the order given.
std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& params);

// One request on a fresh connection to 127.0.0.1:`port`.
std::optional<testing::TestHttpResponse> HttpGet(uint16_t port, std::string_view target);
std::optional<testing::TestHttpResponse> HttpPostForm(
    uint16_t port, std::string_view path,
    const std::vector<std::pair<std::string, std::string>>& params);

// Polls GET `path` until it answers 200 (true) or `peer` died or `seconds` passed (false, with
// the reason and the peer's log in `error`).
bool WaitForHttpOk(uint16_t port, std::string_view path, PeerProcess& peer, int seconds,
                   std::string* error);

// Wall-clock time in milliseconds since the epoch.
int64_t NowMs();

}  // namespace strata::e2e

#endif  // STRATA_TESTS_E2E_PEERS_H_
