// The HTTP/1.1 server: keep-alive connections served by a fixed pool of I/O threads, a
// router by method and path, size limits, idle timeouts, gzip, and a graceful stop.
//
// Boost.Beast stays inside http_server.cc: this header is plain C++ so that handler code
// compiles fast.
#ifndef STRATA_SERVER_HTTP_SERVER_H_
#define STRATA_SERVER_HTTP_SERVER_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace strata {

class MetricsRegistry;

// One request, fully read (headers and body). Handlers get it by const reference; it stays
// valid until the handler's HttpResponder has sent the response.
struct HttpRequest {
  std::string method;  // "GET", "POST", ... as sent (HEAD is served by GET routes)
  std::string target;  // as sent: path and query
  std::string path;    // target up to '?', not percent-decoded
  std::string query;   // target after '?', not decoded ("" when absent)
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Values of the ":name" segments of the matched route pattern, percent-decoded.
  std::vector<std::pair<std::string, std::string>> path_params;
  std::string remote_address;  // "127.0.0.1:53412"
  // Set by the server when the client closes its end of the connection, or the connection
  // breaks, while the request is being handled asynchronously (the handler returned
  // without answering). Long handlers such as queries poll it and stop early. A client that
  // only half-closes (shutdown of its sending side) looks the same and still gets whatever
  // answer the handler sends. Null for requests not read by HttpServer.
  std::shared_ptr<const std::atomic<bool>> client_gone;
  // Set while the handler runs on the I/O thread that read the request, once it has called
  // HttpResponder::WatchClientWhileHandledHere: nothing watches the connection then, so
  // this looks at it now (a peek that neither waits nor reads) and sets client_gone if the
  // client has gone. Long handlers call it (or PollClientGone()) now and then, from any
  // thread, until they answer.
  std::function<void()> poll_client_gone;
  bool ClientGone() const { return client_gone && client_gone->load(std::memory_order_relaxed); }
  // ClientGone() after a look at the connection when the handler runs on its I/O thread
  // (a system call then: not for every step of a loop).
  bool PollClientGone() const {
    if (poll_client_gone) poll_client_gone();
    return ClientGone();
  }

  // The first header of that name (case-insensitive), or "".
  std::string_view Header(std::string_view name) const;
  std::string_view PathParam(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  // May the server gzip the body when the client accepts it? (Not for bodies that already
  // carry a Content-Encoding, such as snappy-compressed remote-read responses.)
  bool compressible = true;

  static HttpResponse Text(int status, std::string body);
  static HttpResponse Json(int status, std::string body);
  static HttpResponse Empty(int status);
};

namespace internal {
// Where a response goes: the connection that read the request.
class ResponseSink {
 public:
  virtual ~ResponseSink() = default;
  virtual void Deliver(HttpResponse response) = 0;
  virtual void WatchWhileHandledHere() {}
};
}  // namespace internal

// The way a handler answers. Send() may be called from any thread (a handler may hand the
// work to another pool and answer later), at most once. A responder destroyed without
// sending answers 500, so a request is never left hanging. Move-only.
class HttpResponder {
 public:
  explicit HttpResponder(std::shared_ptr<internal::ResponseSink> sink) : sink_(std::move(sink)) {}
  HttpResponder(HttpResponder&&) noexcept = default;
  HttpResponder& operator=(HttpResponder&& other) noexcept;
  HttpResponder(const HttpResponder&) = delete;
  HttpResponder& operator=(const HttpResponder&) = delete;
  ~HttpResponder();

  void Send(HttpResponse response);
  bool sent() const { return sink_ == nullptr; }
  // For a handler that goes on to do long work on the I/O thread it was called on (call it
  // there, before the work): the connection's own events wait until the handler returns,
  // so the request's poll_client_gone is set for the work to look for the client going away.
  void WatchClientWhileHandledHere();

 private:
  std::shared_ptr<internal::ResponseSink> sink_;
};

using HttpHandler = std::function<void(const HttpRequest&, HttpResponder)>;

// Maps method and path to a handler. A pattern is an exact path ("/-/healthy") or has
// segments of the form ":name" that match one non-empty path segment
// ("/api/v1/label/:name/values"). Exact patterns win over patterns with parameters. HEAD is
// served by the GET handler without the body. A path that matches with another method gets
// 405 with an Allow header; no match at all gets 404.
// Build the router before starting the server; it is read-only afterwards.
class Router {
 public:
  // `method` is "GET", "POST", ...; register each method separately.
  void Handle(std::string_view method, std::string_view pattern, HttpHandler handler);
  // Shorthand for GET and POST, as most /api/v1 endpoints take both.
  void HandleGetPost(std::string_view pattern, const HttpHandler& handler);

  struct Match {
    const HttpHandler* handler = nullptr;  // null: no route
    std::string_view pattern;              // the matched route's pattern (a metrics label)
    std::string allow;                     // set when the path exists for other methods
  };
  // Fills req->path_params on a match.
  Match Route(HttpRequest* req) const;

 private:
  struct Route_ {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;  // split pattern; ":x" is a parameter
    bool has_params = false;
    HttpHandler handler;
  };
  std::vector<Route_> routes_;
};

struct HttpServerOptions {
  // Host name or address; "" or "0.0.0.0" means every IPv4 interface, "::" every interface.
  std::string host = "0.0.0.0";
  uint16_t port = 9090;  // 0 picks a free port; see HttpServer::port()
  int io_threads = 2;
  // Open connections at most (0: no limit). Beyond it the server stops accepting until one
  // closes; new clients wait in the listen backlog.
  size_t max_connections = 512;
  size_t max_header_bytes = 64 * 1024;       // request line and headers; more is 431
  size_t max_body_bytes = 32 * 1024 * 1024;  // more is 413
  // How long an open connection may wait for (the whole header of) its next request.
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(5)};
  // How long reading a request body and writing a response may take.
  std::chrono::milliseconds io_timeout{std::chrono::minutes(2)};
  // Bodies at least this long are gzipped for clients that accept it.
  size_t gzip_min_bytes = 1024;
  // How long Stop() waits for in-flight requests before closing their connections.
  std::chrono::milliseconds shutdown_grace{std::chrono::seconds(30)};
  // Where request counts and latencies go; null means DefaultRegistry().
  MetricsRegistry* metrics = nullptr;
};

// Thread-safe. Handlers run on the I/O threads; long work belongs on another pool
// (answer through the HttpResponder when done).
class HttpServer {
 public:
  HttpServer(HttpServerOptions options, Router router);
  ~HttpServer();  // Stop()s if still running
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the I/O threads. Errors (address in use, bad host) name the
  // address.
  absl::Status Start();
  // The bound port, after Start().
  uint16_t port() const;
  // Graceful stop: closes the listener, closes idle connections, lets requests that are
  // being read or handled finish (up to shutdown_grace), then joins the I/O threads.
  // Idempotent.
  void Stop();

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace strata

#endif  // STRATA_SERVER_HTTP_SERVER_H_
