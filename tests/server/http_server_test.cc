#include "server/http_server.h"

#include <atomic>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/http_compression.h"
#include "server/ops_handlers.h"
#include "src/metrics.h"
#include "tests/server/http_test_client.h"

namespace strata {
namespace {

using ::strata::testing::TestHttpClient;
using ::strata::testing::TestHttpResponse;
using ::testing::HasSubstr;

std::string BigText(size_t n) {
  std::string s;
  s.reserve(n);
  for (size_t i = 0; s.size() < n; ++i) s += "line " + std::to_string(i) + " of a large body\n";
  s.resize(n);
  return s;
}

// A server on 127.0.0.1 with an ephemeral port and a few test routes.
class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(HttpServerOptions options = {}, std::function<void(Router&)> extra = {}) {
    options.host = "127.0.0.1";
    options.port = 0;
    options.metrics = &metrics_;
    Router router;
    RegisterHealthHandlers(router, &readiness_);
    RegisterMetricsHandler(router, &metrics_);
    router.Handle("GET", "/big", [](const HttpRequest&, HttpResponder r) {
      r.Send(HttpResponse::Text(200, BigText(100000)));
    });
    router.Handle("GET", "/small", [](const HttpRequest&, HttpResponder r) {
      r.Send(HttpResponse::Text(200, "tiny"));
    });
    router.Handle("POST", "/echo", [](const HttpRequest& req, HttpResponder r) {
      HttpResponse res = HttpResponse::Text(200, req.body);
      res.headers.emplace_back("X-Query", req.query);
      res.headers.emplace_back("X-Content-Type", std::string(req.Header("content-type")));
      r.Send(std::move(res));
    });
    router.HandleGetPost("/api/v1/label/:name/values", [](const HttpRequest& req, HttpResponder r) {
      r.Send(HttpResponse::Json(200, "[\"" + std::string(req.PathParam("name")) + "\"]"));
    });
    router.Handle("GET", "/api/v1/label/__name__/values", [](const HttpRequest&, HttpResponder r) {
      r.Send(HttpResponse::Json(200, "exact"));
    });
    router.Handle("GET", "/drop", [](const HttpRequest&, HttpResponder) {});
    router.Handle("GET", "/throw",
                  [](const HttpRequest&, HttpResponder) { throw std::runtime_error("boom"); });
    router.Handle("GET", "/async", [](const HttpRequest& req, HttpResponder r) {
      std::string q = req.query;
      std::thread([r = std::move(r), q]() mutable {
        r.Send(HttpResponse::Text(200, "later:" + q));
      }).detach();
    });
    router.Handle("GET", "/hold", [this](const HttpRequest&, HttpResponder r) {
      std::lock_guard<std::mutex> lock(held_mu_);
      held_ = std::make_unique<HttpResponder>(std::move(r));
      held_arrived_.set_value();
    });
    if (extra) extra(router);
    server_ = std::make_unique<HttpServer>(std::move(options), std::move(router));
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_NE(server_->port(), 0);
  }

  void TearDown() override {
    if (server_) server_->Stop();
  }

  uint16_t port() const { return server_->port(); }

  MetricsRegistry metrics_;
  Readiness readiness_;
  std::unique_ptr<HttpServer> server_;
  std::mutex held_mu_;
  std::unique_ptr<HttpResponder> held_;
  std::promise<void> held_arrived_;
};

TEST_F(HttpServerTest, HealthyAnswers200) {
  StartServer();
  TestHttpClient c(port());
  ASSERT_TRUE(c.connected());
  auto r = c.Get("/-/healthy");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_THAT(r->body, HasSubstr("Healthy"));
}

TEST_F(HttpServerTest, ReadyIs503UntilReadinessIsSet) {
  StartServer();
  TestHttpClient c(port());
  auto r = c.Get("/-/ready");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  readiness_.SetReady(true);
  r = c.Get("/-/ready");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_THAT(r->body, HasSubstr("Ready"));
}

TEST_F(HttpServerTest, HeadIsServedByGetWithoutBody) {
  StartServer();
  TestHttpClient c(port());
  auto r = c.Request("HEAD", "/-/healthy");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "");
  EXPECT_EQ(r->Header("Content-Length"),
            std::to_string(std::string("Strata Server is Healthy.\n").size()));
  // The connection is still usable: no stray body bytes were sent.
  auto g = c.Get("/small");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->body, "tiny");
}

TEST_F(HttpServerTest, UnknownPathIs404AndWrongMethodIs405) {
  StartServer();
  TestHttpClient c(port());
  auto r = c.Get("/nope");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->body, "404 page not found\n");
  r = c.Request("POST", "/-/healthy", {}, "x");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->Header("Allow"), "GET, HEAD");
  r = c.Request("DELETE", "/api/v1/label/job/values");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->Header("Allow"), "GET, POST, HEAD");
  // Still one healthy connection after the errors.
  r = c.Get("/-/healthy");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, PathParametersArePercentDecodedAndExactRoutesWin) {
  StartServer();
  TestHttpClient c(port());
  auto r = c.Get("/api/v1/label/job/values?match[]=up");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "[\"job\"]");
  EXPECT_EQ(r->Header("Content-Type"), "application/json");
  r = c.Get("/api/v1/label/a%2Fb%20c/values");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "[\"a/b c\"]");
  r = c.Get("/api/v1/label/__name__/values");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "exact");
  r = c.Get("/api/v1/label//values");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
}

TEST_F(HttpServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  StartServer();
  TestHttpClient c(port());
  for (int i = 0; i < 20; ++i) {
    std::string body = "request " + std::to_string(i);
    auto r =
        c.Request("POST", "/echo?i=" + std::to_string(i), {{"Content-Type", "text/plain"}}, body);
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, body);
    EXPECT_EQ(r->Header("X-Query"), "i=" + std::to_string(i));
    EXPECT_EQ(r->Header("X-Content-Type"), "text/plain");
    EXPECT_NE(r->Header("Connection"), "close");
  }
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  StartServer();
  TestHttpClient c(port());
  std::string two =
      "GET /small HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
      "GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_TRUE(c.SendRaw(two));
  auto a = c.ReadResponse();
  auto b = c.ReadResponse();
  auto h = c.ReadResponse();
  ASSERT_TRUE(a && b && h);
  EXPECT_EQ(a->body, "tiny");
  EXPECT_EQ(b->body, "hello");
  EXPECT_EQ(h->status, 200);
}

TEST_F(HttpServerTest, Http10ClosesAfterTheResponse) {
  StartServer();
  TestHttpClient c(port());
  ASSERT_TRUE(c.SendRaw("GET /small HTTP/1.0\r\n\r\n"));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "tiny");
  EXPECT_TRUE(c.ServerClosed());
}

TEST_F(HttpServerTest, GzipsLargeBodiesForClientsThatAcceptIt) {
  StartServer();
  TestHttpClient c(port());
  auto plain = c.Get("/big");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->Header("Content-Encoding"), "");
  EXPECT_EQ(plain->body, BigText(100000));

  auto gz = c.Request("GET", "/big", {{"Accept-Encoding", "deflate, gzip"}});
  ASSERT_TRUE(gz);
  EXPECT_EQ(gz->status, 200);
  EXPECT_EQ(gz->Header("Content-Encoding"), "gzip");
  EXPECT_EQ(gz->Header("Vary"), "Accept-Encoding");
  EXPECT_LT(gz->body.size(), 50000u);
  auto inflated = GzipDecompress(gz->body, 1 << 20);
  ASSERT_TRUE(inflated.ok()) << inflated.status();
  EXPECT_EQ(*inflated, BigText(100000));

  auto refused = c.Request("GET", "/big", {{"Accept-Encoding", "gzip;q=0, br"}});
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->Header("Content-Encoding"), "");
  EXPECT_EQ(refused->body.size(), 100000u);

  auto small = c.Request("GET", "/small", {{"Accept-Encoding", "gzip"}});
  ASSERT_TRUE(small);
  EXPECT_EQ(small->Header("Content-Encoding"), "");
  EXPECT_EQ(small->body, "tiny");
}

TEST_F(HttpServerTest, OversizedBodyGets413) {
  HttpServerOptions o;
  o.max_body_bytes = 1000;
  StartServer(o);
  {
    TestHttpClient c(port());
    auto ok = c.Request("POST", "/echo", {}, std::string(1000, 'a'));
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200);
    // Declared too long: answered from the header alone, then the connection closes.
    ASSERT_TRUE(c.SendRaw("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" +
                          std::string(5000, 'b')));
    auto r = c.ReadResponse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
    EXPECT_THAT(r->body, HasSubstr("1000 bytes"));
    EXPECT_EQ(r->Header("Connection"), "close");
    EXPECT_TRUE(c.ServerClosed());
  }
  {
    // Chunked: the limit is found while reading.
    TestHttpClient c(port());
    std::string req = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 3; ++i) req += "258\r\n" + std::string(600, 'c') + "\r\n";
    req += "0\r\n\r\n";
    ASSERT_TRUE(c.SendRaw(req));
    auto r = c.ReadResponse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
  }
  // The server keeps serving.
  TestHttpClient c(port());
  auto r = c.Get("/-/healthy");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, OversizedHeaderGets431) {
  HttpServerOptions o;
  o.max_header_bytes = 2048;
  StartServer(o);
  TestHttpClient c(port());
  ASSERT_TRUE(
      c.SendRaw("GET /small HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4096, 'h') + "\r\n\r\n"));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
}

TEST_F(HttpServerTest, MalformedRequestGets400) {
  StartServer();
  TestHttpClient c(port());
  ASSERT_TRUE(c.SendRaw("GET /small HTTP/1.1\r\nBad Header Line\r\n\r\n"));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_TRUE(c.ServerClosed());
}

TEST_F(HttpServerTest, ExpectContinueGetsInterimResponse) {
  StartServer();
  TestHttpClient c(port());
  ASSERT_TRUE(c.SendRaw(
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"));
  // The server asks for the body before the client sends it.
  auto interim = c.ReadResponse(/*head=*/false, /*interim=*/true);
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(c.SendRaw("abcd"));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "abcd");
}

TEST_F(HttpServerTest, AsyncHandlersAnswerFromOtherThreads) {
  StartServer();
  TestHttpClient c(port());
  for (int i = 0; i < 5; ++i) {
    auto r = c.Get("/async?n=" + std::to_string(i));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "later:n=" + std::to_string(i));
  }
}

TEST_F(HttpServerTest, HandlersThatDropOrThrowGet500AndTheConnectionLives) {
  StartServer();
  TestHttpClient c(port());
  auto r = c.Get("/drop");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  r = c.Get("/throw");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  r = c.Get("/small");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, IdleConnectionsAreClosed) {
  HttpServerOptions o;
  o.idle_timeout = std::chrono::milliseconds(100);
  StartServer(o);
  TestHttpClient c(port());
  auto r = c.Get("/small");
  ASSERT_TRUE(r);
  EXPECT_TRUE(c.ServerClosed());
}

TEST_F(HttpServerTest, ConnectionsBeyondTheLimitWaitForAFreeSlot) {
  HttpServerOptions o;
  o.max_connections = 2;
  StartServer(o);
  auto first = std::make_unique<TestHttpClient>(port());
  TestHttpClient second(port());
  ASSERT_TRUE(first->Get("/small"));
  ASSERT_TRUE(second.Get("/small"));
  // The third connects (the kernel's backlog takes it) and is served once a slot frees.
  TestHttpClient third(port());
  ASSERT_TRUE(third.connected());
  ASSERT_TRUE(third.SendRaw("GET /small HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(second.Get("/small"));
  EXPECT_THAT(metrics_.ExpositionText(), HasSubstr("strata_http_connections_open 2\n"));
  first.reset();
  auto r = third.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "tiny");
  auto again = second.Get("/small");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
}

TEST_F(HttpServerTest, HalfClosedClientStillGetsItsAnswer) {
  StartServer();
  TestHttpClient c(port());
  ASSERT_TRUE(c.SendRaw("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"));
  c.ShutdownWrite();
  auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "abc");
  EXPECT_TRUE(c.ServerClosed());
}

TEST_F(HttpServerTest, StalledPartialRequestIsDroppedAtTheTimeout) {
  HttpServerOptions o;
  o.idle_timeout = std::chrono::milliseconds(100);
  StartServer(o);
  TestHttpClient c(port());
  ASSERT_TRUE(c.SendRaw("GET /small HTTP/1.1\r\nHost: x\r\nX-Slow: "));
  EXPECT_TRUE(c.ServerClosed());
  // Others are unaffected.
  TestHttpClient d(port());
  auto r = d.Get("/small");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, StalledBodyIsDroppedAtTheIoTimeout) {
  HttpServerOptions o;
  o.io_timeout = std::chrono::milliseconds(100);
  StartServer(o);
  TestHttpClient c(port());
  ASSERT_TRUE(c.SendRaw("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"));
  EXPECT_TRUE(c.ServerClosed());
}

// The server first tries to write an answer at once and to parse a body from what has
// arrived; what does not fit or has not arrived yet is waited for. Both ways must give
// the same bytes, and the connection must go on serving afterwards.
TEST_F(HttpServerTest, AnswersLargerThanTheSocketBufferReachAClientThatReadsLate) {
  const std::string huge = BigText(16 << 20);  // more than loopback sockets buffer
  StartServer({}, [&huge](Router& router) {
    router.Handle("GET", "/huge", [&huge](const HttpRequest&, HttpResponder r) {
      HttpResponse res = HttpResponse::Text(200, huge);
      res.compressible = false;
      r.Send(std::move(res));
    });
  });
  TestHttpClient c(port());
  ASSERT_TRUE(c.SendRaw("GET /huge HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the server fills the buffer
  auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->body == huge) << "body of " << r->body.size() << " bytes differs";
  r = c.Get("/small");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "tiny");
}

TEST_F(HttpServerTest, AClientThatStopsReadingIsDroppedAtTheIoTimeout) {
  const std::string huge = BigText(16 << 20);
  HttpServerOptions o;
  o.io_timeout = std::chrono::milliseconds(100);
  StartServer(o, [&huge](Router& router) {
    router.Handle("GET", "/huge", [&huge](const HttpRequest&, HttpResponder r) {
      HttpResponse res = HttpResponse::Text(200, huge);
      res.compressible = false;
      r.Send(std::move(res));
    });
  });
  TestHttpClient stalled(port());
  ASSERT_TRUE(stalled.SendRaw("GET /huge HTTP/1.1\r\nHost: x\r\n\r\n"));
  // Never read: once the socket buffers are full the write waits, and the timeout closes
  // the connection; the one asking for the metrics is then the only one open.
  TestHttpClient c(port());
  std::string body;
  for (int i = 0; i < 200; ++i) {
    auto r = c.Get("/metrics");
    ASSERT_TRUE(r);
    body = r->body;
    if (body.find("strata_http_connections_open 1\n") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_THAT(body, HasSubstr("strata_http_connections_open 1\n"));
}

TEST_F(HttpServerTest, BodiesArrivingInPiecesAreReadWhole) {
  StartServer();
  TestHttpClient c(port());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.SendRaw("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nab"));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_TRUE(c.SendRaw("cd"));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_TRUE(c.SendRaw("ef"));
    auto r = c.ReadResponse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "abcdef");
  }
  // A body that came whole with its header, then one that came after the header.
  auto r = c.Request("POST", "/echo", {}, "whole");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "whole");
  ASSERT_TRUE(c.SendRaw("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(c.SendRaw("later"));
  r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "later");
}

TEST_F(HttpServerTest, ManyConcurrentClientsAllGetTheirOwnAnswers) {
  HttpServerOptions o;
  o.io_threads = 3;
  StartServer(o);
  constexpr int kClients = 8, kRequests = 90;
  std::atomic<int> good{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t) {
    clients.emplace_back([&, t] {
      TestHttpClient c(port());
      for (int i = 0; i < kRequests; ++i) {
        std::string tag = std::to_string(t) + "-" + std::to_string(i);
        std::optional<testing::TestHttpResponse> r;
        switch (i % 3) {
          case 0:
            r = c.Request("POST", "/echo", {}, tag);
            if (r && r->body == tag) ++good;
            break;
          case 1:
            r = c.Get("/async?" + tag);
            if (r && r->body == "later:" + tag) ++good;
            break;
          default:
            r = c.Request("GET", "/big", {{"Accept-Encoding", "gzip"}});
            if (r && r->status == 200 && r->Header("Content-Encoding") == "gzip") ++good;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(good.load(), kClients * kRequests);
}

TEST_F(HttpServerTest, RecordsRequestMetrics) {
  StartServer();
  TestHttpClient c(port());
  ASSERT_TRUE(c.Get("/-/healthy"));
  ASSERT_TRUE(c.Get("/-/healthy"));
  ASSERT_TRUE(c.Get("/nope"));
  auto r = c.Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_THAT(r->Header("Content-Type"), HasSubstr("text/plain; version=0.0.4"));
  EXPECT_THAT(r->body,
              HasSubstr("strata_http_requests_total{code=\"200\",handler=\"/-/healthy\"} 2"));
  EXPECT_THAT(r->body,
              HasSubstr("strata_http_requests_total{code=\"404\",handler=\"not_found\"} 1"));
  EXPECT_THAT(r->body,
              HasSubstr("strata_http_request_duration_seconds_count{handler=\"/-/healthy\"} 2"));
}

TEST_F(HttpServerTest, StopFinishesInFlightRequestsAndClosesIdleOnes) {
  StartServer();
  TestHttpClient idle(port());
  ASSERT_TRUE(idle.Get("/small"));  // connected and idle from now on

  TestHttpClient busy(port());
  ASSERT_TRUE(busy.SendRaw("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n"));
  held_arrived_.get_future().wait();

  std::thread stopper([this] { server_->Stop(); });
  // The idle connection is closed and new connections are refused while the held request
  // is still being handled.
  EXPECT_TRUE(idle.ServerClosed());
  bool refused = false;
  for (int i = 0; i < 1000 && !refused; ++i) {
    TestHttpClient probe(port());
    refused = !probe.connected() || probe.ServerClosed();
  }
  EXPECT_TRUE(refused);

  {
    std::lock_guard<std::mutex> lock(held_mu_);
    held_->Send(HttpResponse::Text(200, "finished"));
    held_.reset();
  }
  auto r = busy.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "finished");
  EXPECT_EQ(r->Header("Connection"), "close");
  EXPECT_TRUE(busy.ServerClosed());
  stopper.join();
  TestHttpClient after(port());
  EXPECT_FALSE(after.connected());
}

TEST(HttpServer, ListenErrorNamesTheAddress) {
  Router r1, r2;
  HttpServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  MetricsRegistry reg;
  o.metrics = &reg;
  HttpServer a(o, std::move(r1));
  ASSERT_TRUE(a.Start().ok());
  o.port = a.port();
  HttpServer b(o, std::move(r2));
  absl::Status st = b.Start();
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("127.0.0.1:" + std::to_string(a.port())));
}

TEST(AcceptsGzip, ReadsCodingsAndQValues) {
  EXPECT_TRUE(AcceptsGzip("gzip"));
  EXPECT_TRUE(AcceptsGzip("deflate, gzip;q=0.5"));
  EXPECT_TRUE(AcceptsGzip("GZIP"));
  EXPECT_TRUE(AcceptsGzip("*"));
  EXPECT_TRUE(AcceptsGzip("br, *;q=0.1"));
  EXPECT_FALSE(AcceptsGzip(""));
  EXPECT_FALSE(AcceptsGzip("identity"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=0"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=0.000, *"));
  EXPECT_FALSE(AcceptsGzip("*;q=0"));
}

TEST(Gzip, RoundTripsAndRejectsGarbage) {
  std::string data = BigText(300000);
  auto gz = GzipCompress(data);
  ASSERT_TRUE(gz.ok());
  auto back = GzipDecompress(*gz, data.size());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, data);
  EXPECT_FALSE(GzipDecompress(*gz, data.size() - 1).ok());
  EXPECT_FALSE(GzipDecompress(gz->substr(0, gz->size() / 2), data.size()).ok());
  EXPECT_FALSE(GzipDecompress("not gzip at all", 100).ok());
  auto empty = GzipCompress("");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*GzipDecompress(*empty, 10), "");
}

}  // namespace
}  // namespace strata
