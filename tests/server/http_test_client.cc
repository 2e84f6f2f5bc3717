#include "tests/server/http_test_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>

namespace strata::testing {
namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

}  // namespace

std::string TestHttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) return v;
  }
  return "";
}

TestHttpClient::TestHttpClient(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  timeval tv{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return;
  }
  fd_ = fd;
}

TestHttpClient::~TestHttpClient() {
  if (fd_ >= 0) ::close(fd_);
}

bool TestHttpClient::SendRaw(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool TestHttpClient::Fill() {
  char buf[16384];
  for (;;) {
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buffer_.append(buf, static_cast<size_t>(n));
    return true;
  }
}

void TestHttpClient::ShutdownWrite() { ::shutdown(fd_, SHUT_WR); }

bool TestHttpClient::ServerClosed() {
  if (!buffer_.empty()) return false;
  char c;
  for (;;) {
    ssize_t n = ::recv(fd_, &c, 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
    buffer_.push_back(c);
    return false;
  }
}

std::optional<TestHttpResponse> TestHttpClient::ReadResponse(bool head, bool interim) {
  for (;;) {
    size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return std::nullopt;
    }
    std::string_view head_text(buffer_.data(), end);
    TestHttpResponse r;
    size_t line_end = head_text.find("\r\n");
    std::string_view status_line = head_text.substr(0, line_end);
    if (status_line.size() < 12 || status_line.substr(0, 5) != "HTTP/") return std::nullopt;
    std::from_chars(status_line.data() + 9, status_line.data() + 12, r.status);
    size_t pos = line_end == std::string_view::npos ? head_text.size() : line_end + 2;
    while (pos < head_text.size()) {
      size_t e = head_text.find("\r\n", pos);
      if (e == std::string_view::npos) e = head_text.size();
      std::string_view line = head_text.substr(pos, e - pos);
      size_t colon = line.find(':');
      if (colon != std::string_view::npos) {
        std::string_view v = line.substr(colon + 1);
        while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
        r.headers.emplace_back(std::string(line.substr(0, colon)), std::string(v));
      }
      pos = e + 2;
    }
    buffer_.erase(0, end + 4);
    if (r.status >= 100 && r.status < 200) {
      if (interim) return r;
      continue;
    }
    if (head || r.status == 204 || r.status == 304) return r;
    std::string te = r.Header("Transfer-Encoding");
    if (EqualsIgnoreCase(te, "chunked")) {
      for (;;) {
        size_t le;
        while ((le = buffer_.find("\r\n")) == std::string::npos) {
          if (!Fill()) return std::nullopt;
        }
        size_t size = 0;
        std::from_chars(buffer_.data(), buffer_.data() + le, size, 16);
        buffer_.erase(0, le + 2);
        while (buffer_.size() < size + 2) {
          if (!Fill()) return std::nullopt;
        }
        r.body.append(buffer_, 0, size);
        buffer_.erase(0, size + 2);
        if (size == 0) return r;
      }
    }
    std::string cl = r.Header("Content-Length");
    if (cl.empty()) {
      while (Fill()) {
      }
      r.body = std::move(buffer_);
      buffer_.clear();
      return r;
    }
    size_t len = 0;
    std::from_chars(cl.data(), cl.data() + cl.size(), len);
    while (buffer_.size() < len) {
      if (!Fill()) return std::nullopt;
    }
    r.body = buffer_.substr(0, len);
    buffer_.erase(0, len);
    return r;
  }
}

std::optional<TestHttpResponse> TestHttpClient::Request(
    std::string_view method, std::string_view target,
    const std::vector<std::pair<std::string, std::string>>& headers, std::string_view body) {
  std::string req;
  req.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  for (const auto& [k, v] : headers) req.append(k).append(": ").append(v).append("\r\n");
  if (!body.empty() || method == "POST") {
    req.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  req.append("\r\n").append(body);
  if (!SendRaw(req)) return std::nullopt;
  return ReadResponse(method == "HEAD");
}

}  // namespace strata::testing
