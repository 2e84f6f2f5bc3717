// The TSDB admin API end to end: a real server on 127.0.0.1 over real storage, fed by
// remote write; snapshots are opened by a second server as its data directory.
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <regex>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/admin_handlers.h"
#include "server/flags.h"
#include "server/strata_server.h"
#include "src/metrics.h"
#include "src/strings.h"
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

// One server over one data directory.
struct Instance {
  std::unique_ptr<MetricsRegistry> registry = std::make_unique<MetricsRegistry>();
  std::unique_ptr<StrataServer> server;
  std::unique_ptr<TestHttpClient> client;

  Instance(const std::string& data_dir, bool admin) {
    ServerConfig config;
    config.listen_host = "127.0.0.1";
    config.listen_port = 0;
    config.storage_path = data_dir;
    config.self_scrape_interval_ms = 0;
    config.query_max_concurrency = 2;
    config.enable_admin_api = admin;
    server = std::make_unique<StrataServer>(config, registry.get());
    absl::Status st = server->Start();
    EXPECT_TRUE(st.ok()) << st;
    client = std::make_unique<TestHttpClient>(server->port());
  }
  ~Instance() {
    client.reset();
    absl::Status st = server->Stop();
    EXPECT_TRUE(st.ok()) << st;
  }

  TestHttpResponse Send(std::string_view method, std::string_view target,
                        std::string_view form = {}) {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!form.empty()) headers.push_back({"Content-Type", "application/x-www-form-urlencoded"});
    auto r = client->Request(method, target, headers, form);
    EXPECT_TRUE(r.has_value()) << target;
    return r.value_or(TestHttpResponse{});
  }
};

class AdminTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           fmt::format("strata_admin_{}_{}", info->name(), ::getpid());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string data() const { return (dir_ / "data").string(); }

  // Two `up` series, samples every 10 s from 10 s to 60 s.
  static void WriteFixture(Instance& in) {
    test::WriteRequest req;
    std::vector<std::pair<int64_t, double>> samples;
    for (int i = 1; i <= 6; ++i) samples.push_back({i * 10000, static_cast<double>(i)});
    AddSeries(&req, {{"__name__", "up"}, {"instance", "a"}}, samples);
    AddSeries(&req, {{"__name__", "up"}, {"instance", "b"}}, samples);
    auto r = PostRemoteWrite(*in.client, EncodeRemoteWriteBody(req));
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->status, 204) << r->body;
  }

  static std::string Range(Instance& in, std::string_view query) {
    TestHttpResponse r =
        in.Send("GET", fmt::format("/api/v1/query_range?query={}&start=0&end=70&step=10", query));
    EXPECT_EQ(r.status, 200) << r.body;
    return r.body;
  }

  std::filesystem::path dir_;
};

constexpr std::string_view kDisabled =
    R"({"status":"error","errorType":"unavailable","error":"admin APIs disabled"})";

TEST_F(AdminTest, DisabledAnswersAsPrometheus) {
  Instance in(data(), /*admin=*/false);
  for (std::string_view path :
       {"/api/v1/admin/tsdb/delete_series?match[]=up", "/api/v1/admin/tsdb/clean_tombstones",
        "/api/v1/admin/tsdb/snapshot"}) {
    for (std::string_view method : {"POST", "PUT"}) {
      TestHttpResponse r = in.Send(method, path);
      EXPECT_EQ(r.status, 503) << path;
      EXPECT_EQ(r.body, kDisabled) << path;
      EXPECT_THAT(r.Header("Content-Type"), HasSubstr("application/json"));
    }
  }
  EXPECT_FALSE(std::filesystem::exists(data() + "/snapshots"));
}

TEST_F(AdminTest, BadParametersGetPrometheusErrors) {
  Instance in(data(), /*admin=*/true);
  auto expect = [&](std::string_view target, int status, std::string_view body) {
    TestHttpResponse r = in.Send("POST", target);
    EXPECT_EQ(r.status, status) << target;
    EXPECT_EQ(r.body, body) << target;
  };
  expect("/api/v1/admin/tsdb/delete_series", 400,
         R"({"status":"error","errorType":"bad_data","error":"no match[] parameter provided"})");
  expect("/api/v1/admin/tsdb/delete_series?match[]=up&start=abc", 400,
         R"({"status":"error","errorType":"bad_data","error":"invalid parameter \"start\": )"
         R"(invalid time value for 'start': cannot parse \"abc\" to a valid timestamp"})");
  expect("/api/v1/admin/tsdb/delete_series?match[]=up&end=abc", 400,
         R"({"status":"error","errorType":"bad_data","error":"invalid parameter \"end\": )"
         R"(invalid time value for 'end': cannot parse \"abc\" to a valid timestamp"})");
  expect("/api/v1/admin/tsdb/snapshot?skip_head=xx", 400,
         R"({"status":"error","errorType":"bad_data","error":"invalid parameter \"skip_head\": )"
         R"(unable to parse boolean: strconv.ParseBool: parsing \"xx\": invalid syntax"})");
  TestHttpResponse r = in.Send("POST", "/api/v1/admin/tsdb/delete_series?match[]=up%7B");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr(R"("error":"invalid parameter \"match[]\": )"));
  // An end before the start deletes nothing and is no error (as in Prometheus).
  expect("/api/v1/admin/tsdb/delete_series?match[]=up&start=10&end=5", 204, "");
}

TEST_F(AdminTest, DeleteCleanAndRestart) {
  const std::string both =
      R"({"status":"success","data":{"resultType":"matrix","result":[)"
      R"({"metric":{"__name__":"up","instance":"a"},"values":[[20,"2"],[60,"6"]]},)"
      R"({"metric":{"__name__":"up","instance":"b"},"values":[[10,"1"],[20,"2"],[30,"3"],)"
      R"([40,"4"],[50,"5"],[60,"6"]]}]}})";
  {
    Instance in(data(), /*admin=*/true);
    WriteFixture(in);
    // Form body and URL parameters, POST and PUT.
    TestHttpResponse r = in.Send("POST", "/api/v1/admin/tsdb/delete_series",
                                 "match%5B%5D=up%7Binstance%3D%22a%22%7D&start=25&end=55");
    EXPECT_EQ(r.status, 204) << r.body;
    EXPECT_EQ(r.body, "");
    r = in.Send("PUT", "/api/v1/admin/tsdb/delete_series?match[]=up{instance=\"a\"}&end=10");
    EXPECT_EQ(r.status, 204) << r.body;
    // lookback 1 ms: each step shows only a sample at that exact time.
    std::string got = Range(in, "up&lookback_delta=1ms");
    EXPECT_EQ(got, both);
    // Series listing and label values for the deleted range.
    r = in.Send("GET", "/api/v1/series?match[]=up&start=25&end=55");
    EXPECT_EQ(r.body, R"({"status":"success","data":[{"__name__":"up","instance":"b"}]})");
    r = in.Send("GET", "/api/v1/label/instance/values?start=25&end=55");
    EXPECT_EQ(r.body, R"({"status":"success","data":["b"]})");
    r = in.Send("PUT", "/api/v1/admin/tsdb/clean_tombstones");
    EXPECT_EQ(r.status, 204) << r.body;
    EXPECT_EQ(Range(in, "up&lookback_delta=1ms"), both);
    r = in.Send("GET", "/metrics");
    EXPECT_THAT(r.body, HasSubstr("strata_storage_deleted_series_total 2"));
    EXPECT_THAT(r.body, HasSubstr("strata_storage_tombstone_cleans_total 1"));
    EXPECT_THAT(r.body, HasSubstr("strata_storage_tombstone_series 0"));
  }
  Instance again(data(), /*admin=*/true);
  EXPECT_EQ(Range(again, "up&lookback_delta=1ms"), both);
}

TEST_F(AdminTest, SnapshotIsAnOpenableDataDirectory) {
  std::string name, head_less;
  {
    Instance in(data(), /*admin=*/true);
    WriteFixture(in);
    TestHttpResponse r =
        in.Send("POST", "/api/v1/admin/tsdb/delete_series?match[]=up{instance=\"b\"}");
    ASSERT_EQ(r.status, 204) << r.body;
    r = in.Send("POST", "/api/v1/admin/tsdb/snapshot");
    ASSERT_EQ(r.status, 200) << r.body;
    std::smatch m;
    std::regex shape(
        R"re(\{"status":"success","data":\{"name":"(\d{8}T\d{6}Z-[0-9a-f]{16})"\}\})re");
    ASSERT_TRUE(std::regex_match(r.body, m, shape)) << r.body;
    name = m[1];
    r = in.Send("PUT", "/api/v1/admin/tsdb/snapshot", "skip_head=true");
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_TRUE(std::regex_match(r.body, m, shape)) << r.body;
    head_less = m[1];
    EXPECT_NE(name, head_less);
  }
  ASSERT_TRUE(std::filesystem::is_directory(data() + "/snapshots/" + name + "/db"));
  // The snapshot serves queries as a data directory of its own.
  Instance snap(data() + "/snapshots/" + name, /*admin=*/false);
  EXPECT_EQ(Range(snap, "up&lookback_delta=1ms"),
            R"({"status":"success","data":{"resultType":"matrix","result":[)"
            R"({"metric":{"__name__":"up","instance":"a"},"values":[[10,"1"],[20,"2"],[30,"3"],)"
            R"([40,"4"],[50,"5"],[60,"6"]]}]}})");
  // Without the head: the series are known, the still-open chunks are not there.
  Instance snap2(data() + "/snapshots/" + head_less, /*admin=*/false);
  TestHttpResponse r = snap2.Send("GET", "/api/v1/query?query=up&time=60");
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST(SnapshotName, HasPrometheusShape) {
  EXPECT_EQ(SnapshotName(1700000000123, 0x1185f63b71ac0428ULL),
            "20231114T221320Z-1185f63b71ac0428");
  EXPECT_EQ(SnapshotName(0, 5), "19700101T000000Z-0000000000000005");
}

}  // namespace
}  // namespace strata
