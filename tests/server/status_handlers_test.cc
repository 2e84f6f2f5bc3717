#include "server/status_handlers.h"

#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "simdjson.h"
#include "src/metrics.h"
#include "tests/server/http_test_client.h"

namespace strata {
namespace {

using ::strata::testing::TestHttpClient;
using ::testing::HasSubstr;
using ::testing::Not;

class StatusHandlersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerConfig config;
    config.storage_path = "/var/lib/strata";
    config.retention_time_ms = 30LL * 24 * 3600 * 1000;
    config.retention_size_bytes = 512LL << 20;
    config.features = {"promql-experimental-functions"};
    Router router;
    RegisterStatusHandlers(router, StatusInfo{config, 1435781451781, "/srv"});
    HttpServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.metrics = &metrics_;
    server_ = std::make_unique<HttpServer>(o, std::move(router));
    ASSERT_TRUE(server_->Start().ok());
  }

  std::string GetJson(std::string_view target, std::string_view method = "GET") {
    TestHttpClient c(server_->port());
    auto r = c.Request(method, target);
    EXPECT_TRUE(r);
    if (!r) return "";
    EXPECT_EQ(r->status, 200) << target;
    EXPECT_EQ(r->Header("Content-Type"), "application/json");
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    EXPECT_EQ(parser.parse(r->body).get(doc), simdjson::SUCCESS) << r->body;
    return r->body;
  }

  MetricsRegistry metrics_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(StatusHandlersTest, BuildinfoLooksLikePlainPrometheus3) {
  std::string body = GetJson("/api/v1/status/buildinfo");
  EXPECT_THAT(body, HasSubstr(R"({"status":"success","data":{"version":"3.0.0",)"));
  EXPECT_THAT(body, HasSubstr(R"("revision":"strata-0.1.0")"));
  // Grafana takes a buildinfo with "features" for Mimir/Cortex.
  EXPECT_THAT(body, Not(HasSubstr("features")));
}

TEST_F(StatusHandlersTest, FlagsListEveryFlagByName) {
  std::string body = GetJson("/api/v1/status/flags");
  EXPECT_THAT(body, HasSubstr(R"("storage.tsdb.path":"/var/lib/strata")"));
  EXPECT_THAT(body, HasSubstr(R"("storage.tsdb.retention.time":"30d")"));
  EXPECT_THAT(body, HasSubstr(R"("storage.tsdb.retention.size":"536870912B")"));
  EXPECT_THAT(body, HasSubstr(R"("query.timeout":"2m")"));
  EXPECT_THAT(body, HasSubstr(R"("web.enable-admin-api":"false")"));
  EXPECT_THAT(body, HasSubstr(R"("enable-feature":"promql-experimental-functions")"));
  EXPECT_THAT(body, HasSubstr(R"("web.listen-address":"0.0.0.0:9090")"));
}

TEST_F(StatusHandlersTest, RuntimeinfoReportsStartTimeAndRetention) {
  std::string body = GetJson("/api/v1/status/runtimeinfo");
  EXPECT_THAT(body, HasSubstr(R"("startTime":"2015-07-01T20:10:51.781Z")"));
  EXPECT_THAT(body, HasSubstr(R"("CWD":"/srv")"));
  EXPECT_THAT(body, HasSubstr(R"("storageRetention":"30d or 512MiB")"));
  EXPECT_THAT(body, HasSubstr(R"("reloadConfigSuccess":true)"));
}

TEST_F(StatusHandlersTest, TargetsRulesAndAlertsAreEmptyAndWellFormed) {
  EXPECT_EQ(GetJson("/api/v1/targets"),
            R"({"status":"success","data":{"activeTargets":[],"droppedTargets":[],)"
            R"("droppedTargetCounts":{}}})");
  EXPECT_EQ(GetJson("/api/v1/rules"), R"({"status":"success","data":{"groups":[]}})");
  EXPECT_EQ(GetJson("/api/v1/rules?type=alert", "POST"),
            R"({"status":"success","data":{"groups":[]}})");
  EXPECT_EQ(GetJson("/api/v1/alerts"), R"({"status":"success","data":{"alerts":[]}})");
  EXPECT_EQ(GetJson("/api/v1/alertmanagers"),
            R"({"status":"success","data":{"activeAlertmanagers":[],"droppedAlertmanagers":[]}})");
}

TEST(FlagValues, SortedByNameWithPrometheusSpelling) {
  ServerConfig c;
  auto values = FlagValues(c);
  ASSERT_FALSE(values.empty());
  EXPECT_TRUE(std::is_sorted(values.begin(), values.end()));
  EXPECT_EQ(values.front().first, "enable-feature");
  EXPECT_EQ(values.front().second, "");
}

}  // namespace
}  // namespace strata
