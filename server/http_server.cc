// The only translation unit that includes Boost.Beast (compile time).
#include "server/http_server.h"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "boost/asio/dispatch.hpp"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "server/http_compression.h"
#include "spdlog/spdlog.h"
#include "src/metrics.h"
#include "src/strings.h"

namespace strata {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;

namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    out.emplace_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes one path segment ('+' stays '+'). False on a malformed escape.
bool PathUnescape(std::string_view s, std::string* out) {
  out->clear();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out->push_back(s[i]);
      continue;
    }
    int hi = i + 1 < s.size() ? Hex(s[i + 1]) : -1;
    int lo = i + 2 < s.size() ? Hex(s[i + 2]) : -1;
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

std::string_view ReasonFor(int status) {
  switch (status) {
    case 499:
      return "Client Closed Request";
    default:
      return {};
  }
}

std::string ToString(beast::string_view s) { return std::string(s.data(), s.size()); }

// What a peek at a connected socket shows, without waiting and without taking a byte.
enum class Peeked {
  kData,     // bytes to read (a pipelined request): the client is there
  kNothing,  // nothing yet: the client is there
  kGone,     // end of stream (the client closed or half-closed its end) or a broken connection
};

Peeked Peek(int fd) {
  char c;
  ssize_t n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return Peeked::kData;
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return Peeked::kNothing;
  return Peeked::kGone;
}

// Deadlines are steady-clock nanoseconds.
constexpr int64_t kNoDeadline = std::numeric_limits<int64_t>::max();

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Request, response, responder

std::string_view HttpRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) return v;
  }
  return {};
}

std::string_view HttpRequest::PathParam(std::string_view name) const {
  for (const auto& [k, v] : path_params) {
    if (k == name) return v;
  }
  return {};
}

HttpResponse HttpResponse::Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::Json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::Empty(int status) {
  HttpResponse r;
  r.status = status;
  r.content_type.clear();
  return r;
}

HttpResponder& HttpResponder::operator=(HttpResponder&& other) noexcept {
  if (this != &other) {
    if (sink_) sink_->Deliver(HttpResponse::Text(500, "handler sent no response\n"));
    sink_ = std::move(other.sink_);
  }
  return *this;
}

HttpResponder::~HttpResponder() {
  if (sink_) sink_->Deliver(HttpResponse::Text(500, "handler sent no response\n"));
}

void HttpResponder::WatchClientWhileHandledHere() {
  if (sink_) sink_->WatchWhileHandledHere();
}

void HttpResponder::Send(HttpResponse response) {
  std::shared_ptr<internal::ResponseSink> sink = std::move(sink_);
  if (sink) sink->Deliver(std::move(response));
}

// ---------------------------------------------------------------------------------------------
// Router

void Router::Handle(std::string_view method, std::string_view pattern, HttpHandler handler) {
  Route_ r;
  r.method = std::string(method);
  r.pattern = std::string(pattern);
  r.segments = SplitPath(pattern);
  r.has_params = std::any_of(r.segments.begin(), r.segments.end(),
                             [](const std::string& s) { return !s.empty() && s[0] == ':'; });
  r.handler = std::move(handler);
  routes_.push_back(std::move(r));
}

void Router::HandleGetPost(std::string_view pattern, const HttpHandler& handler) {
  Handle("GET", pattern, handler);
  Handle("POST", pattern, handler);
}

Router::Match Router::Route(HttpRequest* req) const {
  std::string_view method = req->method;
  auto method_matches = [&](const Route_& r) {
    return r.method == method || (method == "HEAD" && r.method == "GET");
  };
  Match match;
  std::vector<std::string_view> allowed;
  auto note_allowed = [&](const Route_& r) {
    if (std::find(allowed.begin(), allowed.end(), r.method) == allowed.end()) {
      allowed.push_back(r.method);
    }
  };
  // Exact routes first; among them, one for this very method beats HEAD-via-GET.
  const Route_* exact = nullptr;
  for (const Route_& r : routes_) {
    if (r.has_params || r.pattern != req->path) continue;
    note_allowed(r);
    if (r.method == method || (method_matches(r) && exact == nullptr)) exact = &r;
  }
  if (exact != nullptr) {
    match.handler = &exact->handler;
    match.pattern = exact->pattern;
    return match;
  }
  std::vector<std::string> segments;
  std::string decoded;
  for (const Route_& r : routes_) {
    if (!r.has_params) continue;
    if (segments.empty()) segments = SplitPath(req->path);
    if (segments.size() != r.segments.size()) continue;
    std::vector<std::pair<std::string, std::string>> params;
    bool ok = true;
    for (size_t i = 0; i < segments.size() && ok; ++i) {
      const std::string& want = r.segments[i];
      if (!want.empty() && want[0] == ':') {
        ok = !segments[i].empty() && PathUnescape(segments[i], &decoded);
        if (ok) params.emplace_back(want.substr(1), decoded);
      } else {
        ok = want == segments[i];
      }
    }
    if (!ok) continue;
    note_allowed(r);
    if (method_matches(r) && match.handler == nullptr) {
      match.handler = &r.handler;
      match.pattern = r.pattern;
      req->path_params = std::move(params);
    }
  }
  if (match.handler == nullptr && !allowed.empty()) {
    if (std::find(allowed.begin(), allowed.end(), "GET") != allowed.end() &&
        std::find(allowed.begin(), allowed.end(), "HEAD") == allowed.end()) {
      allowed.push_back("HEAD");
    }
    for (std::string_view m : allowed) {
      if (!match.allow.empty()) match.allow += ", ";
      match.allow += m;
    }
  }
  return match;
}

// ---------------------------------------------------------------------------------------------
// Server

class HttpServer::Impl : public std::enable_shared_from_this<HttpServer::Impl> {
 public:
  class Session;

  Impl(HttpServerOptions options, Router router)
      : options_(std::move(options)),
        router_(std::move(router)),
        ioc_(std::max(1, options_.io_threads)),
        acceptor_(net::make_strand(ioc_)),
        sweep_timer_(net::make_strand(ioc_)) {
    MetricsRegistry& reg = options_.metrics ? *options_.metrics : DefaultRegistry();
    requests_ =
        reg.CounterFamily("strata_http_requests_total",
                          "HTTP requests served, by handler and status code.", {"code", "handler"});
    latency_ = reg.HistogramFamily("strata_http_request_duration_seconds",
                                   "Time from a request's headers read to its response written.",
                                   DefaultLatencyBounds(), {"handler"});
    open_connections_ =
        reg.GetGauge("strata_http_connections_open", "HTTP connections currently open.");
  }

  absl::Status Start();
  void Stop();
  void Accept();
  // Closes connections whose deadline has passed, then waits for the next round; on
  // sweep_timer_'s strand.
  void Sweep();

  // Session bookkeeping; called by sessions.
  bool Register(uint64_t* id, std::weak_ptr<Session> s);
  void Unregister(uint64_t id);

  HttpServerOptions options_;
  Router router_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  net::steady_timer sweep_timer_;
  bool sweeping_ = true;  // on sweep_timer_'s strand: false once Stop() ended the sweeps
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
  std::atomic<uint16_t> port_{0};
  // Set first thing in Stop(): every response written after it closes its connection.
  std::atomic<bool> shutting_down_{false};

  std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;  // Start() was called
  bool serving_ = false;  // Start() succeeded: the I/O threads run
  bool stopping_ = false;
  bool accept_paused_ = false;  // at max_connections; Unregister resumes accepting
  uint64_t next_id_ = 0;
  int running_threads_ = 0;
  std::map<uint64_t, std::weak_ptr<Session>> sessions_;

  MetricFamily<Counter>* requests_;
  MetricFamily<Histogram>* latency_;
  Gauge* open_connections_;
};

class HttpServer::Impl::Session : public internal::ResponseSink,
                                  public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<Impl> server)
      : server_(std::move(server)), stream_(std::move(socket)) {
    server_->open_connections_->Add(1);
  }

  ~Session() override {
    server_->open_connections_->Add(-1);
    server_->Unregister(id_);
  }

  void Run() {
    beast::error_code ec;
    tcp::endpoint remote = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = fmt::format("{}:{}", remote.address().to_string(), remote.port());
    stopping_ = !server_->Register(&id_, weak_from_this());
    // Reads and writes are first tried without waiting (ReadBody, Write); asynchronous
    // operations are not affected by this.
    stream_.socket().non_blocking(true, ec);
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->ReadHeader(); });
  }

  // Called on any thread by Stop(): stop after the request in progress, if any.
  void RequestStop() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      self->stopping_ = true;
      if (self->idle_ && self->buffer_.size() == 0 && !self->parser_->got_some()) {
        self->stream_.cancel();
      }
    });
  }

  // Called on any thread after shutdown_grace: close now.
  void ForceClose() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      beast::error_code ec;
      self->stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
      self->stream_.close();
    });
  }

  // When the wait for the client (SetDeadline) is over; read on any thread.
  int64_t deadline_ns() const { return deadline_ns_.load(std::memory_order_relaxed); }

  // Called on any thread by the server's sweep for a connection whose deadline has passed:
  // closes it unless a new deadline was set meanwhile. The pending read or write then ends
  // with operation_aborted, and the connection closes as it does after any failed read.
  void TimeOut() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->deadline_ns() > SteadyNanos()) return;
      beast::error_code ec;
      self->stream_.socket().close(ec);
    });
  }

  // From the handler on this connection's strand (a handler that answers at once, or ran
  // on the I/O thread: RunOnPool), the answer is written at once; from another thread it is
  // posted to the strand.
  void Deliver(HttpResponse response) override {
    net::dispatch(stream_.get_executor(),
                  [self = shared_from_this(), r = std::move(response)]() mutable {
                    self->Write(std::move(r));
                  });
  }

  // On the strand, from a handler about to work here: while it does, this strand runs
  // nothing else, so the handler's work looks at the connection itself now and then
  // (HttpRequest::poll_client_gone). The descriptor stays open until the handler returns:
  // closing it would take the strand. (A wait on the socket completing on another I/O
  // thread did this before; arming it, and cancelling it when the answer went out, woke
  // other threads twice per request, which cost more than a light query.)
  void WatchWhileHandledHere() override {
    if (answered_) return;
    request_.poll_client_gone = [fd = stream_.socket().native_handle(), gone = client_gone_] {
      if (Peek(fd) == Peeked::kGone) gone->store(true, std::memory_order_relaxed);
    };
  }

 private:
  void ReadHeader() {
    if (stopping_ && buffer_.size() == 0) return Close();
    ++request_number_;
    answered_ = false;
    parser_.emplace();
    parser_->header_limit(
        static_cast<uint32_t>(std::min<size_t>(server_->options_.max_header_bytes, UINT32_MAX)));
    parser_->body_limit(server_->options_.max_body_bytes);
    idle_ = true;
    SetDeadline(server_->options_.idle_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    idle_ = false;
    start_ = std::chrono::steady_clock::now();
    if (ec) return OnReadError(ec);
    auto& header = parser_->get();
    if (EqualsIgnoreCase(ToString(header[http::field::expect]), "100-continue") &&
        !parser_->is_done()) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      SetDeadline(server_->options_.io_timeout);
      net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         if (ec) return self->Close();
                         self->ReadBody();
                       });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    if (parser_->is_done()) return Dispatch();
    // Beast reads no more than the buffer has room for, 512 bytes when it has none: a
    // 50 KB remote-write body took a hundred reads (each a syscall and a trip through the
    // executor). Room for the body, up to Beast's 64 KiB per read, takes a few.
    if (auto length = parser_->content_length()) {  // boost::optional
      constexpr uint64_t kMaxRead = 64 * 1024;
      buffer_.reserve(buffer_.size() + static_cast<size_t>(std::min<uint64_t>(*length, kMaxRead)));
    }
    // Most bodies came with the header or are in the socket already: parse them without a
    // trip through the executor (the socket does not block: what is not there yet is
    // waited for below).
    beast::error_code ec;
    http::read(stream_.socket(), buffer_, *parser_, ec);
    if (!ec) return Dispatch();
    if (ec != net::error::would_block) return OnReadError(ec);
    SetDeadline(server_->options_.io_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->OnReadError(ec);
                       self->Dispatch();
                     });
  }

  void OnReadError(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return WriteError(413, fmt::format("request body larger than {} bytes: send the data in "
                                         "smaller requests\n",
                                         server_->options_.max_body_bytes));
    }
    if (ec == http::error::header_limit) {
      return WriteError(431, "request header fields too large\n");
    }
    if (ec == http::error::end_of_stream || ec == net::error::eof || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset ||
        !parser_->got_some()) {
      return Close();
    }
    // A malformed request: answer 400 if the connection still works, then close.
    return WriteError(400, fmt::format("malformed HTTP request: {}\n", ec.message()));
  }

  void WriteError(int status, std::string text) {
    pattern_ = "invalid_request";
    force_close_ = true;
    request_.headers.clear();
    request_.method.clear();
    Write(HttpResponse::Text(status, std::move(text)));
  }

  void Dispatch() {
    deadline_ns_.store(kNoDeadline, std::memory_order_relaxed);  // the handler has no I/O timeout
    http::request<http::string_body> msg = parser_->release();
    request_ = HttpRequest();
    request_.method = ToString(msg.method_string());
    request_.target = ToString(msg.target());
    std::string_view target = request_.target;
    size_t q = target.find('?');
    request_.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) request_.query = std::string(target.substr(q + 1));
    request_.headers.reserve(16);
    for (const auto& field : msg) {
      request_.headers.emplace_back(ToString(field.name_string()), ToString(field.value()));
    }
    request_.body = std::move(msg.body());
    request_.remote_address = remote_;
    keep_alive_ = msg.keep_alive();
    http_version_ = msg.version();

    Router::Match m = server_->router_.Route(&request_);
    if (m.handler == nullptr) {
      if (!m.allow.empty()) {
        pattern_ = "method_not_allowed";
        HttpResponse r = HttpResponse::Text(405, "Method Not Allowed\n");
        r.headers.emplace_back("Allow", m.allow);
        return Write(std::move(r));
      }
      pattern_ = "not_found";
      return Write(HttpResponse::Text(404, "404 page not found\n"));
    }
    pattern_ = std::string(m.pattern);
    auto gone = std::make_shared<std::atomic<bool>>(false);
    client_gone_ = gone;
    request_.client_gone = gone;
    HttpResponder responder(shared_from_this());
    const uint64_t number = request_number_;
    try {
      (*m.handler)(request_, std::move(responder));
    } catch (const std::exception& e) {
      // The responder was moved into the handler; if the handler threw before answering,
      // its destructor has already queued a 500.
      spdlog::error("HTTP handler for {} threw: {}", pattern_, e.what());
    }
    // Answered later from another thread: watch for the client going away meanwhile.
    // (An answer written at once may have gone out already and the next request's read
    // begun.)
    if (request_number_ == number && !answered_) WatchDisconnect();
  }

  // Waits for the socket to become readable while a response is pending. Readable with
  // data: the client pipelined its next request and is still there. End of stream or an
  // error: the client is gone (or half-closed), which sets the request's client_gone flag.
  void WatchDisconnect() {
    watching_ = true;
    stream_.socket().async_wait(tcp::socket::wait_read,
                                [self = shared_from_this(), gone = client_gone_](
                                    beast::error_code ec) { self->OnReadable(ec, gone); });
  }

  void OnReadable(beast::error_code ec, const std::shared_ptr<std::atomic<bool>>& gone) {
    // Answered meanwhile (Write cancels the wait), or a later request's watch.
    if (!watching_ || gone != client_gone_) return;
    if (ec == net::error::operation_aborted) return;
    if (!ec) {
      switch (Peek(stream_.socket().native_handle())) {
        case Peeked::kData:
          watching_ = false;
          return;
        case Peeked::kNothing:
          return WatchDisconnect();
        case Peeked::kGone:
          break;
      }
    }
    watching_ = false;
    gone->store(true, std::memory_order_relaxed);
    spdlog::debug("HTTP client {} went away while {} was being handled", remote_, pattern_);
  }

  void Write(HttpResponse r) {
    if (answered_) return;  // a second answer to one request (a handler bug); drop it
    answered_ = true;
    request_.poll_client_gone = nullptr;
    if (watching_) {
      watching_ = false;
      beast::error_code ec;
      stream_.socket().cancel(ec);
    }
    bool head = request_.method == "HEAD";
    bool close = force_close_ || stopping_ || !keep_alive_ ||
                 server_->shutting_down_.load(std::memory_order_acquire);
    if (r.compressible && r.body.size() >= server_->options_.gzip_min_bytes &&
        AcceptsGzip(request_.Header("Accept-Encoding"))) {
      bool encoded = std::any_of(r.headers.begin(), r.headers.end(), [](const auto& h) {
        return EqualsIgnoreCase(h.first, "Content-Encoding");
      });
      if (!encoded) {
        auto gz = GzipCompress(r.body);
        if (gz.ok()) {
          r.body = *std::move(gz);
          r.headers.emplace_back("Content-Encoding", "gzip");
          r.headers.emplace_back("Vary", "Accept-Encoding");
        }
      }
    }
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(http_version_);
    res->result(static_cast<unsigned>(r.status));
    if (std::string_view reason = ReasonFor(r.status); !reason.empty()) {
      res->reason(beast::string_view(reason.data(), reason.size()));
    }
    if (!r.content_type.empty()) res->set(http::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers) res->insert(name, value);
    res->body() = std::move(r.body);
    res->keep_alive(!close);
    res->prepare_payload();
    if (head) res->body().clear();  // Content-Length stays that of the GET answer

    const std::string code = std::to_string(r.status);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    server_->requests_->With({code, pattern_})->Inc();
    server_->latency_->With({pattern_})->Observe(seconds);
    if (spdlog::should_log(spdlog::level::debug)) {
      spdlog::debug("HTTP {} {} from {}: {} in {:.3f} ms, {} bytes", request_.method, request_.path,
                    remote_, r.status, seconds * 1000, res->body().size());
    }

    // Most answers fit the socket's send buffer: written here, the next request's read
    // starts at once, without handing the completion to the executor (which wakes another
    // I/O thread). What does not fit goes out asynchronously.
    auto sr = std::make_shared<http::response_serializer<http::string_body>>(*res);
    beast::error_code ec;
    http::write(stream_.socket(), *sr, ec);
    if (ec != net::error::would_block) return OnWrite(ec, close);
    SetDeadline(server_->options_.io_timeout);
    http::async_write(stream_, *sr,
                      [self = shared_from_this(), res, sr, close](beast::error_code ec, size_t) {
                        self->OnWrite(ec, close);
                      });
  }

  void OnWrite(beast::error_code ec, bool close) {
    if (ec) return Close();
    if (close) return force_close_ ? LingeringClose() : Close();
    ReadHeader();
  }

  // The next wait for the client (reading a request, writing an answer) must end within
  // `timeout`. Checked by the server's sweep (HttpServer::Impl::Sweep), not by a timer per
  // wait: a timer armed and cancelled around every read cost a wake-up of another I/O
  // thread per request.
  void SetDeadline(std::chrono::milliseconds timeout) {
    deadline_ns_.store(SteadyNanos() + std::chrono::nanoseconds(timeout).count(),
                       std::memory_order_relaxed);
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

  // After an error answer the client may still be sending a body we will not read; closing
  // with unread data would reset the connection and could destroy our answer before the
  // client reads it. So: stop sending, drain for a moment, then close.
  void LingeringClose() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    SetDeadline(std::chrono::seconds(2));
    Drain();
  }

  void Drain() {
    drain_buffer_.resize(64 * 1024);
    stream_.async_read_some(net::buffer(drain_buffer_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) {
                                self->stream_.close();
                                return;
                              }
                              self->Drain();
                            });
  }

  // Declared before the stream, so destroyed after it: the last session may hold the last
  // reference to the server, whose io_context the stream's destructor still uses.
  std::shared_ptr<Impl> server_;
  beast::tcp_stream stream_;
  uint64_t id_ = 0;
  std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpRequest request_;
  std::string pattern_;
  std::chrono::steady_clock::time_point start_;
  std::string drain_buffer_;
  unsigned http_version_ = 11;
  bool keep_alive_ = true;
  bool idle_ = false;            // waiting for the first byte of a request
  bool stopping_ = false;        // the server is stopping: close after this request
  bool force_close_ = false;     // close after this response (an error answer)
  bool answered_ = false;        // the request being handled has its answer (Write was called)
  uint64_t request_number_ = 0;  // counts ReadHeader calls
  std::atomic<int64_t> deadline_ns_{kNoDeadline};   // SetDeadline; SteadyNanos() time
  bool watching_ = false;                           // WatchDisconnect's wait is pending
  std::shared_ptr<std::atomic<bool>> client_gone_;  // of the request being handled
};

bool HttpServer::Impl::Register(uint64_t* id, std::weak_ptr<Session> s) {
  std::lock_guard<std::mutex> lock(mu_);
  *id = ++next_id_;
  sessions_.emplace(*id, std::move(s));
  return !stopping_;
}

void HttpServer::Impl::Unregister(uint64_t id) {
  bool resume = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    sessions_.erase(id);
    if (sessions_.empty()) cv_.notify_all();
    if (accept_paused_ && !stopping_) {
      accept_paused_ = false;
      resume = true;
    }
  }
  if (resume) {
    net::post(acceptor_.get_executor(), [self = shared_from_this()] { self->Accept(); });
  }
}

absl::Status HttpServer::Impl::Start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) return absl::FailedPreconditionError("HTTP server already started");
    started_ = true;
  }
  std::string host = options_.host.empty() ? "0.0.0.0" : options_.host;
  std::string where = host.find(':') != std::string::npos
                          ? fmt::format("[{}]:{}", host, options_.port)
                          : fmt::format("{}:{}", host, options_.port);
  beast::error_code ec;
  tcp::resolver resolver(ioc_);
  auto results = resolver.resolve(host, std::to_string(options_.port),
                                  tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("cannot resolve listen address {}: {}", where, ec.message()));
  }
  tcp::endpoint endpoint = results.begin()->endpoint();
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(fmt::format("cannot listen on {}: {}", where, ec.message()));
  }
  port_ = acceptor_.local_endpoint(ec).port();
  work_.emplace(ioc_.get_executor());
  Accept();
  net::post(sweep_timer_.get_executor(), [self = shared_from_this()] { self->Sweep(); });
  int n = std::max(1, options_.io_threads);
  threads_.reserve(n);
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_threads_ = n;
    serving_ = true;
  }
  for (int i = 0; i < n; ++i) {
    threads_.emplace_back([this] {
      // Handlers catch their own exceptions; this is the last line of defence so that one
      // bad request cannot take the process down.
      for (;;) {
        try {
          ioc_.run();
          break;
        } catch (const std::exception& e) {
          spdlog::error("HTTP I/O thread caught: {}", e.what());
        }
      }
      std::lock_guard<std::mutex> lock(mu_);
      --running_threads_;
      cv_.notify_all();
    });
  }
  return absl::OkStatus();
}

void HttpServer::Impl::Accept() {
  {
    // At the connection limit, stop accepting: new clients wait in the listen backlog
    // until a connection closes (Unregister resumes), as Prometheus' limited listener does.
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    if (options_.max_connections > 0 && sessions_.size() >= options_.max_connections) {
      accept_paused_ = true;
      return;
    }
  }
  acceptor_.async_accept(net::make_strand(ioc_),
                         [self = shared_from_this()](beast::error_code ec, tcp::socket s) {
                           if (ec) {
                             if (ec == net::error::operation_aborted || !self->acceptor_.is_open())
                               return;
                             spdlog::warn("HTTP accept failed: {}", ec.message());
                           } else {
                             beast::error_code ignored;
                             s.set_option(tcp::no_delay(true), ignored);
                             std::make_shared<Session>(std::move(s), self)->Run();
                           }
                           self->Accept();
                         });
}

void HttpServer::Impl::Sweep() {
  if (!sweeping_) return;
  const int64_t now = SteadyNanos();
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard<std::mutex> lock(mu_);
    live.reserve(sessions_.size());
    for (auto& [id, weak] : sessions_) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
  }
  // (Dropped outside the lock: the last reference runs ~Session, which takes it.)
  for (auto& s : live) {
    if (s->deadline_ns() <= now) s->TimeOut();
  }
  live.clear();
  // A quarter of the shortest timeout: a connection overstays by at most that.
  auto every = std::min(options_.idle_timeout, options_.io_timeout) / 4;
  every = std::clamp(every, std::chrono::milliseconds(5), std::chrono::milliseconds(1000));
  sweep_timer_.expires_after(every);
  sweep_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (!ec) self->Sweep();
  });
}

void HttpServer::Impl::Stop() {
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!serving_ || stopping_) return;
    stopping_ = true;
    shutting_down_.store(true, std::memory_order_release);
    for (auto& [id, weak] : sessions_) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
  }
  // Tell connections first, then close the listener: a client that sees the listener gone
  // knows that every earlier connection has its stop request queued before any answer
  // that follows.
  for (auto& s : live) s->RequestStop();
  live.clear();
  // Closing the acceptor on its strand aborts the pending accept.
  std::promise<void> closed;
  net::post(acceptor_.get_executor(), [this, &closed] {
    beast::error_code ec;
    acceptor_.close(ec);
    closed.set_value();
  });
  closed.get_future().wait();
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, options_.shutdown_grace, [this] { return sessions_.empty(); })) {
      spdlog::warn("HTTP server: {} connections still busy after {} ms; closing them",
                   sessions_.size(), options_.shutdown_grace.count());
      for (auto& [id, weak] : sessions_) {
        if (auto s = weak.lock()) live.push_back(std::move(s));
      }
    }
  }
  for (auto& s : live) s->ForceClose();
  live.clear();
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(5), [this] { return sessions_.empty(); });
  }
  // With the listener closed and every connection gone, run() returns once the last
  // handlers (the aborted accept and the sweep among them) have run; stop() is only the
  // fallback.
  net::post(sweep_timer_.get_executor(), [this] {
    sweeping_ = false;
    sweep_timer_.cancel();
  });
  work_.reset();
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::seconds(5), [this] { return running_threads_ == 0; })) {
      ioc_.stop();
    }
  }
  for (auto& t : threads_) t.join();
  threads_.clear();
}

HttpServer::HttpServer(HttpServerOptions options, Router router)
    : impl_(std::make_shared<Impl>(std::move(options), std::move(router))) {}

HttpServer::~HttpServer() { Stop(); }

absl::Status HttpServer::Start() { return impl_->Start(); }

uint16_t HttpServer::port() const { return impl_->port_; }

void HttpServer::Stop() { impl_->Stop(); }

}  // namespace strata
