// Bad input against the whole server (StrataServer over real storage on loopback): each
// kind gets the right status and error shape, the server keeps serving, and what it
// acknowledged before stays queryable. (Query parameter errors, invalid PromQL and the
// 11,000-point limit are in api_test.cc; the HTTP layer's own limits in http_server_test.cc.)
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/flags.h"
#include "server/strata_server.h"
#include "src/metrics.h"
#include "tests/server/http_test_client.h"
#include "tests/server/remote_write_sender.h"

namespace strata {
namespace {

using ::strata::testing::AddSeries;
using ::strata::testing::EncodeRemoteWriteBody;
using ::strata::testing::PostRemoteWrite;
using ::strata::testing::TestHttpClient;
using ::strata::testing::TestHttpResponse;
using ::testing::HasSubstr;

constexpr std::string_view kBaselineQuery = "/api/v1/query?query=sum(baseline)&time=100";
constexpr std::string_view kBaselineAnswer =
    R"({"status":"success","data":{"resultType":"vector","result":[)"
    R"({"metric":{},"value":[100,"6"]}]}})";

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           fmt::format("strata_bad_input_{}_{}", info->name(), ::getpid());
    std::filesystem::remove_all(dir_);
    ServerConfig config;
    config.listen_host = "127.0.0.1";
    config.listen_port = 0;
    config.storage_path = (dir_ / "data").string();
    config.self_scrape_interval_ms = 0;
    Configure(config);
    registry_ = std::make_unique<MetricsRegistry>();
    server_ = std::make_unique<StrataServer>(config, registry_.get());
    ASSERT_TRUE(server_->Start().ok());
    // Acknowledged data the bad input must not disturb.
    test::WriteRequest req;
    AddSeries(&req, {{"__name__", "baseline"}, {"i", "1"}}, {{90000, 1}});
    AddSeries(&req, {{"__name__", "baseline"}, {"i", "2"}}, {{95000, 5}});
    TestHttpClient c(server_->port());
    auto r = PostRemoteWrite(c, EncodeRemoteWriteBody(req));
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->status, 204) << r->body;
  }
  void TearDown() override {
    if (server_) {
      EXPECT_TRUE(server_->Stop().ok());
    }
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  virtual void Configure(ServerConfig&) {}

  // The server still answers on a new connection, and the acknowledged samples are there.
  void ExpectStillServing() {
    TestHttpClient c(server_->port());
    auto r = c.Get(kBaselineQuery);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, kBaselineAnswer);
  }

  TestHttpResponse PostWrite(std::string_view body) {
    TestHttpClient c(server_->port());
    auto r = PostRemoteWrite(c, body);
    EXPECT_TRUE(r.has_value());
    return r.value_or(TestHttpResponse{});
  }

  std::filesystem::path dir_;
  std::unique_ptr<MetricsRegistry> registry_;
  std::unique_ptr<StrataServer> server_;
};

// A snappy block: a varint of the decompressed length, then elements. One literal element
// holding `bytes` (at most 60 of them).
std::string SnappyLiteral(std::string_view bytes, uint64_t claimed_length) {
  std::string out;
  uint64_t n = claimed_length;
  while (n >= 0x80) {
    out.push_back(static_cast<char>((n & 0x7f) | 0x80));
    n >>= 7;
  }
  out.push_back(static_cast<char>(n));
  out.push_back(static_cast<char>((bytes.size() - 1) << 2));
  out.append(bytes);
  return out;
}

TEST_F(BadInputTest, UndecodableSnappyIs400) {
  TestHttpResponse r = PostWrite("this is not snappy at all");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("snappy"));
  ExpectStillServing();
}

TEST_F(BadInputTest, TruncatedProtobufIs400AndStoresNothing) {
  test::WriteRequest req;
  AddSeries(&req, {{"__name__", "truncated"}}, {{100000, 1}});
  std::string raw = req.SerializeAsString();
  raw.resize(raw.size() - 3);
  TestHttpResponse r = PostWrite(SnappyLiteral(raw, raw.size()));
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("malformed"));
  TestHttpClient c(server_->port());
  auto q = c.Get("/api/v1/series?match[]=truncated");
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->body, R"({"status":"success","data":[]})");
  ExpectStillServing();
}

TEST_F(BadInputTest, BodyThatDecompressesPastTheLimitIs413) {
  // The snappy header claims 1 GiB: refused before decompressing anything.
  TestHttpResponse r = PostWrite(SnappyLiteral("x", uint64_t{1} << 30));
  EXPECT_EQ(r.status, 413);
  EXPECT_THAT(r.body, HasSubstr("limit"));
  ExpectStillServing();
}

TEST_F(BadInputTest, BodyOverTheHttpLimitIs413) {
  std::string huge(33 << 20, 'x');  // the server takes bodies up to 32 MiB
  TestHttpClient c(server_->port());
  auto r = PostRemoteWrite(c, huge);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->body,
            "request body larger than 33554432 bytes: send the data in smaller requests\n");
  ExpectStillServing();
}

TEST_F(BadInputTest, InvalidUtf8AndEmptyLabelNamesAre400NamingTheSeries) {
  test::WriteRequest req;
  AddSeries(&req, {{"__name__", "bad_utf8"}, {"v", "\xff\xfe"}}, {{100000, 1}});
  AddSeries(&req, {{"__name__", "empty_name"}, {"", "x"}}, {{100000, 1}});
  AddSeries(&req, {{"__name__", "good_one"}}, {{100000, 7}});
  TestHttpResponse r = PostWrite(EncodeRemoteWriteBody(req));
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("2 series with invalid labels (2 samples) rejected"));
  EXPECT_THAT(r.body, HasSubstr("not valid UTF-8"));
  // The valid series of the request is kept, as Prometheus keeps it.
  TestHttpClient c(server_->port());
  auto q = c.Get("/api/v1/query?query=good_one&time=100");
  ASSERT_TRUE(q.has_value());
  EXPECT_THAT(q->body, HasSubstr(R"("value":[100,"7"])"));
  auto names = c.Get("/api/v1/label/__name__/values");
  ASSERT_TRUE(names.has_value());
  EXPECT_EQ(names->body, R"({"status":"success","data":["baseline","good_one"]})");
  test::WriteRequest empty;
  AddSeries(&empty, {{"__name__", "empty_name"}, {"", "x"}}, {{100000, 1}});
  r = PostWrite(EncodeRemoteWriteBody(empty));
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("empty label name"));
  ExpectStillServing();
}

TEST_F(BadInputTest, OutOfOrderSamplesAre400SayingHowMany) {
  test::WriteRequest req;
  AddSeries(&req, {{"__name__", "baseline"}, {"i", "1"}}, {{80000, 9}, {85000, 9}, {99000, 1}});
  TestHttpResponse r = PostWrite(EncodeRemoteWriteBody(req));
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("2 samples rejected: 2 out of order"));
  ExpectStillServing();
}

class OutOfOrderWindowTest : public BadInputTest {
 protected:
  void Configure(ServerConfig& config) override { config.out_of_order_window_ms = 10'000; }
};

TEST_F(OutOfOrderWindowTest, LateSamplesInsideTheWindowAre204AndOlderOnes400) {
  test::WriteRequest req;
  // baseline{i="1"} has 90 s: 85 s is inside the 10 s window, 79 s is not.
  AddSeries(&req, {{"__name__", "baseline"}, {"i", "1"}}, {{85000, 2}});
  TestHttpResponse r = PostWrite(EncodeRemoteWriteBody(req));
  EXPECT_EQ(r.status, 204) << r.body;
  test::WriteRequest old;
  AddSeries(&old, {{"__name__", "baseline"}, {"i", "1"}}, {{79000, 3}, {86000, 4}});
  r = PostWrite(EncodeRemoteWriteBody(old));
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("1 samples rejected: 1 out of order"));
  TestHttpClient c(server_->port());
  auto q = c.Get("/api/v1/query?query=baseline{i=\"1\"}[1m]&time=100");
  ASSERT_TRUE(q.has_value());
  EXPECT_THAT(q->body, HasSubstr(R"("values":[[85,"2"],[86,"4"],[90,"1"]])")) << q->body;
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m.has_value());
  EXPECT_THAT(m->body, HasSubstr("\nstrata_head_out_of_order_samples_appended_total 2\n"));
  auto flags = c.Get("/api/v1/status/flags");
  ASSERT_TRUE(flags.has_value());
  EXPECT_THAT(flags->body, HasSubstr(R"("storage.tsdb.out-of-order-time-window":"10s")"));
  ExpectStillServing();
}

TEST_F(BadInputTest, TrickledHeadersAndBodyStillGetTheirAnswer) {
  test::WriteRequest req;
  AddSeries(&req, {{"__name__", "baseline"}, {"i", "3"}}, {{96000, 0}});
  std::string body = EncodeRemoteWriteBody(req);
  std::string request = fmt::format(
      "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Encoding: snappy\r\n"
      "Content-Type: application/x-protobuf\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\n"
      "Content-Length: {}\r\n\r\n{}",
      body.size(), body);
  TestHttpClient slow(server_->port());
  // A byte at a time with pauses: a slow client, well inside the server's timeouts.
  for (char ch : request) {
    ASSERT_TRUE(slow.SendRaw(std::string_view(&ch, 1)));
    ::usleep(2000);
  }
  auto r = slow.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 204) << r->body;
  // The connection is reused for a query.
  auto q = slow.Get("/api/v1/query?query=count(baseline)&time=100");
  ASSERT_TRUE(q.has_value());
  EXPECT_THAT(q->body, HasSubstr(R"("value":[100,"3"])"));
  ExpectStillServing();
}

TEST_F(BadInputTest, HalfClosedWriterIsAcknowledgedAndItsSamplesKept) {
  test::WriteRequest req;
  AddSeries(&req, {{"__name__", "half_closed"}}, {{100000, 4}});
  std::string body = EncodeRemoteWriteBody(req);
  TestHttpClient c(server_->port());
  ASSERT_TRUE(
      c.SendRaw(fmt::format("POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Encoding: snappy\r\n"
                            "Content-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n{}",
                            body.size(), body)));
  c.ShutdownWrite();
  auto r = c.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 204) << r->body;
  TestHttpClient q(server_->port());
  auto got = q.Get("/api/v1/query?query=half_closed&time=100");
  ASSERT_TRUE(got.has_value());
  EXPECT_THAT(got->body, HasSubstr(R"("value":[100,"4"])"));
  ExpectStillServing();
}

TEST_F(BadInputTest, ClientThatVanishesMidBodyLosesNothingAcknowledged) {
  TestHttpClient c(server_->port());
  ASSERT_TRUE(c.SendRaw(
      "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Encoding: snappy\r\n"
      "Content-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\nonly a little"));
  // Gone before the body is complete: a 400 for the cut message (the client half-closed, so
  // it can still read it), then the server closes.
  c.ShutdownWrite();
  auto r = c.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("malformed HTTP request"));
  EXPECT_TRUE(c.ServerClosed());
  ExpectStillServing();
}

}  // namespace
}  // namespace strata
