#include "tests/e2e/peers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "fmt/format.h"

namespace strata::e2e {

uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  uint16_t port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

PeerProcess::PeerProcess(std::string name, std::string binary, std::vector<std::string> args,
                         std::filesystem::path log)
    : name_(std::move(name)),
      binary_(std::move(binary)),
      args_(std::move(args)),
      log_(std::move(log)) {}

bool PeerProcess::Start(std::string* error) {
  if (::access(binary_.c_str(), X_OK) != 0) {
    *error = fmt::format(
        "{}: the binary {} is missing or not executable; install the Debian packages with "
        "scripts/install-deps.sh (prometheus, prometheus-node-exporter, victoria-metrics)",
        name_, binary_);
    return false;
  }
  int log_fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    *error = fmt::format("{}: cannot create the log file {}", name_, log_.string());
    return false;
  }
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    *error = fmt::format("{}: fork failed", name_);
    return false;
  }
  if (pid == 0) {
    // The child dies with the test process, whatever happens to it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    ::setpgid(0, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    std::vector<char*> argv;
    argv.push_back(binary_.data());
    for (std::string& a : args_) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(binary_.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(log_fd);
  pid_ = pid;
  running_ = true;
  return true;
}

bool PeerProcess::Alive() {
  if (!running_) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == 0) return true;
  running_ = false;
  if (r == pid_) {
    exit_status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    exit_ = WIFEXITED(st) ? fmt::format("exited with code {}", WEXITSTATUS(st))
                          : fmt::format("killed by signal {}", WTERMSIG(st));
  }
  return false;
}

void PeerProcess::Stop() {
  if (!Alive()) return;
  ::kill(pid_, SIGTERM);
  for (int i = 0; i < 200; ++i) {
    if (!Alive()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  Kill();
  exit_ = "killed after SIGTERM was not enough";
}

void PeerProcess::Kill() {
  if (!Alive()) return;
  ::kill(pid_, SIGKILL);
  int st = 0;
  ::waitpid(pid_, &st, 0);
  running_ = false;
  exit_status_ = 128 + SIGKILL;
  exit_ = "killed by the test (SIGKILL)";
}

std::string PeerProcess::LogTail(size_t bytes) const {
  std::ifstream in(log_);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.size() > bytes) text = "..." + text.substr(text.size() - bytes);
  return fmt::format("--- {} (pid {}{}{}), log {}:\n{}", name_, pid_, exit_.empty() ? "" : ", ",
                     exit_, log_.string(), text);
}

std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  auto put = [&out](std::string_view s) {
    for (unsigned char c : s) {
      if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_' || c == '.' || c == '~') {
        out.push_back(static_cast<char>(c));
      } else {
        out += fmt::format("%{:02X}", c);
      }
    }
  };
  for (const auto& [k, v] : params) {
    if (!out.empty()) out.push_back('&');
    put(k);
    out.push_back('=');
    put(v);
  }
  return out;
}

std::optional<testing::TestHttpResponse> HttpGet(uint16_t port, std::string_view target) {
  testing::TestHttpClient client(port);
  if (!client.connected()) return std::nullopt;
  return client.Request("GET", target, {{"Connection", "close"}});
}

std::optional<testing::TestHttpResponse> HttpPostForm(
    uint16_t port, std::string_view path,
    const std::vector<std::pair<std::string, std::string>>& params) {
  testing::TestHttpClient client(port);
  if (!client.connected()) return std::nullopt;
  return client.Request(
      "POST", path,
      {{"Connection", "close"}, {"Content-Type", "application/x-www-form-urlencoded"}},
      FormEncode(params));
}

bool WaitForHttpOk(uint16_t port, std::string_view path, PeerProcess& peer, int seconds,
                   std::string* error) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!peer.Alive()) {
      *error = fmt::format("{} exited before answering {}\n{}", peer.name(), path, peer.LogTail());
      return false;
    }
    auto r = HttpGet(port, path);
    if (r && r->status == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  *error = fmt::format("{} did not answer 200 on 127.0.0.1:{}{} within {} s\n{}", peer.name(), port,
                       path, seconds, peer.LogTail());
  return false;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace strata::e2e
