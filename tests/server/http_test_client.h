// A small blocking HTTP/1.1 client over a plain TCP socket, for tests: it sends exactly the
// bytes a test asks for (so tests can send malformed or oversized requests) and reads
// responses with Content-Length or chunked bodies.
#ifndef STRATA_TESTS_SERVER_HTTP_TEST_CLIENT_H_
#define STRATA_TESTS_SERVER_HTTP_TEST_CLIENT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace strata::testing {

struct TestHttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // The first header of that name (case-insensitive), or "".
  std::string Header(std::string_view name) const;
};

class TestHttpClient {
 public:
  // Connects to 127.0.0.1:`port`. Reads give up after 30 s so a broken server fails the
  // test instead of hanging it.
  explicit TestHttpClient(uint16_t port);
  ~TestHttpClient();
  TestHttpClient(const TestHttpClient&) = delete;
  TestHttpClient& operator=(const TestHttpClient&) = delete;

  bool connected() const { return fd_ >= 0; }

  bool SendRaw(std::string_view bytes);
  // Reads the next final (non-1xx) response. `head`: the request was HEAD, so no body
  // follows whatever Content-Length says. `interim`: return a 1xx response too instead of
  // skipping it. nullopt when the connection closed or broke.
  std::optional<TestHttpResponse> ReadResponse(bool head = false, bool interim = false);

  // Sends one request (adding Host and, when there is a body, Content-Length) and reads the
  // response.
  std::optional<TestHttpResponse> Request(
      std::string_view method, std::string_view target,
      const std::vector<std::pair<std::string, std::string>>& headers = {},
      std::string_view body = {});
  std::optional<TestHttpResponse> Get(std::string_view target) { return Request("GET", target); }

  // True when the server closed the connection: a read returns end-of-stream (or a reset)
  // before any byte arrives.
  bool ServerClosed();
  // Half-closes our side (shutdown SHUT_WR): the server sees end of stream.
  void ShutdownWrite();

 private:
  bool Fill();  // reads more into buffer_; false on EOF or error
  int fd_ = -1;
  std::string buffer_;
};

}  // namespace strata::testing

#endif  // STRATA_TESTS_SERVER_HTTP_TEST_CLIENT_H_
