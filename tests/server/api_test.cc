// The /api/v1 endpoints end to end: a real server (StrataServer on 127.0.0.1, port 0) over
// real storage in a temporary directory, fed by remote write, answering with the exact JSON
// Prometheus documents.
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/flags.h"
#include "server/http_compression.h"
#include "server/strata_server.h"
#include "src/metrics.h"
#include "src/strings.h"
#include "src/time.h"
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

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           fmt::format("strata_api_{}_{}", info->name(), ::getpid());
    std::filesystem::remove_all(dir_);
    StartServer();
  }
  void TearDown() override {
    StopServer();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void StartServer(int query_concurrency = 2, std::string wal_fsync = "segment") {
    ServerConfig config;
    config.wal_fsync = wal_fsync;
    config.listen_host = "127.0.0.1";
    config.listen_port = 0;
    config.storage_path = (dir_ / "data").string();
    config.self_scrape_interval_ms = 0;
    config.query_max_concurrency = query_concurrency;
    // A registry per server: one open storage per registry.
    registry_ = std::make_unique<MetricsRegistry>();
    server_ = std::make_unique<StrataServer>(config, registry_.get());
    absl::Status st = server_->Start();
    ASSERT_TRUE(st.ok()) << st;
    client_ = std::make_unique<TestHttpClient>(server_->port());
  }
  void StopServer() {
    client_.reset();
    if (server_) {
      absl::Status st = server_->Stop();
      EXPECT_TRUE(st.ok()) << st;
    }
    server_.reset();
    registry_.reset();
  }

  TestHttpResponse Get(std::string_view target) {
    auto r = client_->Get(target);
    EXPECT_TRUE(r.has_value()) << target;
    return r.value_or(TestHttpResponse{});
  }
  TestHttpResponse PostForm(std::string_view path, std::string_view body) {
    auto r = client_->Request("POST", path, {{"Content-Type", "application/x-www-form-urlencoded"}},
                              body);
    EXPECT_TRUE(r.has_value()) << path;
    return r.value_or(TestHttpResponse{});
  }
  TestHttpResponse Write(const test::WriteRequest& req) {
    auto r = PostRemoteWrite(*client_, EncodeRemoteWriteBody(req));
    EXPECT_TRUE(r.has_value());
    return r.value_or(TestHttpResponse{});
  }

  // Two `up` series and a counter, 10 s apart from t=10 s.
  void WriteFixture() {
    test::WriteRequest req;
    AddSeries(&req, {{"__name__", "up"}, {"job", "node"}, {"instance", "a:9100"}},
              {{10000, 1}, {20000, 1}, {30000, 0}});
    AddSeries(&req, {{"job", "node"}, {"instance", "b:9100"}, {"__name__", "up"}},
              {{10000, 1}, {20000, 1}, {30000, 1}});
    AddSeries(&req, {{"__name__", "http_requests_total"}, {"job", "api"}, {"code", "200"}},
              {{10000, 5}, {20000, 7.5}, {30000, 1e-7}});
    TestHttpResponse r = Write(req);
    ASSERT_EQ(r.status, 204) << r.body;
  }

  std::filesystem::path dir_;
  std::unique_ptr<MetricsRegistry> registry_;
  std::unique_ptr<StrataServer> server_;
  std::unique_ptr<TestHttpClient> client_;
};

void ExpectJson(const TestHttpResponse& r, int status, std::string_view body) {
  EXPECT_EQ(r.status, status) << r.body;
  EXPECT_EQ(r.body, body);
  EXPECT_THAT(r.Header("Content-Type"), HasSubstr("application/json"));
}

constexpr std::string_view kUpA = R"({"__name__":"up","instance":"a:9100","job":"node"})";
constexpr std::string_view kUpB = R"({"__name__":"up","instance":"b:9100","job":"node"})";

TEST_F(ApiTest, GrafanaSaveAndTestGetsScalarTwo) {
  ExpectJson(Get("/api/v1/query?query=1%2B1&time=4"), 200,
             R"({"status":"success","data":{"resultType":"scalar","result":[4,"2"]}})");
}

TEST_F(ApiTest, InstantQueryReturnsVectorOfRemoteWrittenSamples) {
  WriteFixture();
  ExpectJson(
      Get("/api/v1/query?query=up&time=30"), 200,
      fmt::format(R"({{"status":"success","data":{{"resultType":"vector","result":[)"
                  R"({{"metric":{},"value":[30,"0"]}},{{"metric":{},"value":[30,"1"]}}]}}}})",
                  kUpA, kUpB));
  // Millisecond times keep three decimals; aggregations drop the name.
  ExpectJson(Get("/api/v1/query?query=sum(up)&time=20.5"), 200,
             R"({"status":"success","data":{"resultType":"vector","result":[)"
             R"({"metric":{},"value":[20.500,"2"]}]}})");
  ExpectJson(Get("/api/v1/query?query=http_requests_total&time=31"), 200,
             R"({"status":"success","data":{"resultType":"vector","result":[)"
             R"({"metric":{"__name__":"http_requests_total","code":"200","job":"api"},)"
             R"("value":[31,"1e-07"]}]}})");
  // Nothing selected: an empty list, not null.
  ExpectJson(Get("/api/v1/query?query=nothing_here&time=30"), 200,
             R"({"status":"success","data":{"resultType":"vector","result":[]}})");
  ExpectJson(Get("/api/v1/query?query=%22hello%22&time=4"), 200,
             R"({"status":"success","data":{"resultType":"string","result":[4,"hello"]}})");
}

// Scalar and string results carry Go's encoding/json time (no trailing zeros) and a scalar
// value in fixed notation, as Prometheus prints them (vector samples differ: "20.500", "1e+21").
TEST_F(ApiTest, ScalarAndStringResultsPrintAsPrometheusDoes) {
  WriteFixture();
  ExpectJson(Get("/api/v1/query?query=1e21&time=20.5"), 200,
             R"({"status":"success","data":{"resultType":"scalar",)"
             R"("result":[20.5,"1000000000000000000000"]}})");
  ExpectJson(
      Get("/api/v1/query?query=-1e-7&time=20.25"), 200,
      R"({"status":"success","data":{"resultType":"scalar","result":[20.25,"-0.0000001"]}})");
  ExpectJson(Get("/api/v1/query?query=vector(1e21)&time=20.5"), 200,
             R"({"status":"success","data":{"resultType":"vector",)"
             R"("result":[{"metric":{},"value":[20.500,"1e+21"]}]}})");
  ExpectJson(Get("/api/v1/query?query=%22s%22&time=20.5"), 200,
             R"({"status":"success","data":{"resultType":"string","result":[20.5,"s"]}})");
}

// `stats` (any non-empty value) adds Prometheus' statistics object to `data`.
TEST_F(ApiTest, StatsParameterAddsQueryStatistics) {
  WriteFixture();
  for (std::string target : {"/api/v1/query?query=sum(http_requests_total)&time=30&stats=all",
                             "/api/v1/query_range?query=http_requests_total&start=0&end=30&"
                             "step=10&stats=1"}) {
    TestHttpResponse r = Get(target);
    ASSERT_EQ(r.status, 200) << r.body;
    for (const char* field :
         {"\"stats\":{\"timings\":{\"evalTotalTime\":", "\"resultSortTime\":",
          "\"queryPreparationTime\":", "\"innerEvalTime\":", "\"execQueueTime\":",
          "\"execTotalTime\":", "\"samples\":{\"totalQueryableSamples\":", "\"peakSamples\":"}) {
      EXPECT_NE(r.body.find(field), std::string::npos) << target << " lacks " << field;
    }
  }
  EXPECT_EQ(Get("/api/v1/query?query=1&time=30&stats=").body.find("stats"), std::string::npos);
}

TEST_F(ApiTest, IngestAndQueryFiguresReachTheMetricsRegistry) {
  WriteFixture();  // 3 series, 9 samples
  test::WriteRequest req;
  test::TimeSeries* ts =
      AddSeries(&req, {{"__name__", "with_exemplar"}, {"job", "x"}}, {{10000, 1}, {20000, 2}});
  test::Exemplar* ex = ts->add_exemplars();
  ex->set_value(1);
  ex->set_timestamp(10000);
  AddSeries(&req, {{"__name__", "m2"}, {"", "empty name"}}, {{10000, 1}});
  ASSERT_EQ(Write(req).status, 400);
  ASSERT_EQ(Get("/api/v1/query?query=sum(up)&time=30").status, 200);
  ASSERT_EQ(Get("/api/v1/query_range?query=up&start=10&end=30&step=10").status, 200);
  ASSERT_EQ(Get("/api/v1/query?query=sum(").status, 400);  // not counted: it failed

  std::string text = registry_->ExpositionText();
  EXPECT_THAT(text, HasSubstr("\nstrata_remote_write_samples_received_total 12\n"));
  EXPECT_THAT(text, HasSubstr("\nstrata_remote_write_invalid_samples_total 1\n"));
  EXPECT_THAT(text, HasSubstr("strata_remote_write_dropped_total{kind=\"exemplar\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("strata_query_duration_seconds_count{type=\"instant\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("strata_query_duration_seconds_count{type=\"range\"} 1\n"));
  // sum(up) at 30 s reads only the newest sample of both up series (an instant selector
  // needs no more, and it ends their open head chunks); the range query over 10..30 s
  // reads their 3 samples (10, 20, 30 s) each.
  EXPECT_THAT(text, HasSubstr("\nstrata_query_samples_total 8\n"));
}

TEST_F(ApiTest, QueryLimitTruncatesSeriesWithAWarning) {
  WriteFixture();
  ExpectJson(Get("/api/v1/query?query=up&time=30&limit=1"), 200,
             fmt::format(R"({{"status":"success","data":{{"resultType":"vector","result":[)"
                         R"({{"metric":{},"value":[30,"0"]}}]}},)"
                         R"("warnings":["results truncated due to limit"]}})",
                         kUpA));
  ExpectJson(Get("/api/v1/query_range?query=up&start=10&end=20&step=10&limit=1"), 200,
             fmt::format(R"({{"status":"success","data":{{"resultType":"matrix","result":[)"
                         R"({{"metric":{},"values":[[10,"1"],[20,"1"]]}}]}},)"
                         R"("warnings":["results truncated due to limit"]}})",
                         kUpA));
}

TEST_F(ApiTest, InstantQueryByFormPost) {
  WriteFixture();
  ExpectJson(PostForm("/api/v1/query", "query=count(up)&time=2001-01-01T00:00:00Z"), 200,
             R"({"status":"success","data":{"resultType":"vector","result":[]}})");
  ExpectJson(PostForm("/api/v1/query", "query=count%28up%29&time=30"), 200,
             R"({"status":"success","data":{"resultType":"vector","result":[)"
             R"({"metric":{},"value":[30,"2"]}]}})");
}

TEST_F(ApiTest, RangeQueryReturnsMatrix) {
  WriteFixture();
  ExpectJson(Get("/api/v1/query_range?query=up&start=10&end=30&step=10"), 200,
             fmt::format(R"({{"status":"success","data":{{"resultType":"matrix","result":[)"
                         R"({{"metric":{},"values":[[10,"1"],[20,"1"],[30,"0"]]}},)"
                         R"({{"metric":{},"values":[[10,"1"],[20,"1"],[30,"1"]]}}]}}}})",
                         kUpA, kUpB));
  // Step as a duration, by POST, as Grafana sends it.
  ExpectJson(PostForm("/api/v1/query_range", "query=sum(up)&start=15&end=25&step=5s"), 200,
             R"({"status":"success","data":{"resultType":"matrix","result":[)"
             R"({"metric":{},"values":[[15,"2"],[20,"2"],[25,"2"]]}]}})");
}

TEST_F(ApiTest, BadParametersAndPromQLGiveBadData) {
  WriteFixture();
  // As Prometheus 3: a bad lookback_delta names no parameter, and `limit` is checked first.
  ExpectJson(
      Get("/api/v1/query?query=up&time=30&lookback_delta=abc"), 400,
      R"({"status":"error","errorType":"bad_data","error":)"
      R"("error parsing lookback delta duration: cannot parse \"abc\" to a valid duration"})");
  ExpectJson(Get("/api/v1/query?query=sum(&time=x&limit=y"), 400,
             R"({"status":"error","errorType":"bad_data","error":)"
             R"("invalid parameter \"limit\": strconv.Atoi: parsing \"y\": invalid syntax"})");
  ExpectJson(Get("/api/v1/query_range?query=sum(&step=0&limit=-1"), 400,
             R"({"status":"error","errorType":"bad_data","error":)"
             R"("invalid parameter \"limit\": limit must be non-negative"})");
  ExpectJson(Get("/api/v1/query?query=sum(&time=30"), 400,
             R"({"status":"error","errorType":"bad_data","error":)"
             R"("invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis"})");
  ExpectJson(Get("/api/v1/query?query=up&time=yesterday"), 400,
             R"({"status":"error","errorType":"bad_data","error":)"
             R"("invalid parameter \"time\": invalid time value for 'time': )"
             R"(cannot parse \"yesterday\" to a valid timestamp"})");
  ExpectJson(Get("/api/v1/query_range?query=up&end=30&step=10"), 400,
             R"({"status":"error","errorType":"bad_data","error":)"
             R"("invalid parameter \"start\": cannot parse \"\" to a valid timestamp"})");
  ExpectJson(Get("/api/v1/query_range?query=up&start=10&end=30&step=0"), 400,
             R"({"status":"error","errorType":"bad_data","error":"invalid parameter \"step\": )"
             R"(zero or negative query resolution step widths are not accepted. )"
             R"(Try a positive integer"})");
  ExpectJson(Get("/api/v1/query_range?query=up&start=30&end=10&step=10"), 400,
             R"({"status":"error","errorType":"bad_data","error":"invalid parameter \"end\": )"
             R"(end timestamp must not be before start time"})");
  ExpectJson(
      Get("/api/v1/query_range?query=up&start=0&end=11001&step=1"), 400,
      R"({"status":"error","errorType":"bad_data","error":"exceeded maximum resolution )"
      R"j(of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"})j");
  ExpectJson(
      Get("/api/v1/series"), 400,
      R"({"status":"error","errorType":"bad_data","error":"no match[] parameter provided"})");
  // Prometheus parses match[] without the query parser's empty-selector check, then refuses
  // it in its own words; what follows a selector is "unexpected", and so are modifiers.
  ExpectJson(Get("/api/v1/series?match[]=%7Bjob%3D~%22.*%22%7D"), 400,
             R"({"status":"error","errorType":"bad_data","error":"invalid parameter \"match[]\": )"
             R"(match[] must contain at least one non-empty matcher"})");
  ExpectJson(Get("/api/v1/series?match[]=up%5B5m%5D"), 400,
             R"({"status":"error","errorType":"bad_data","error":"invalid parameter \"match[]\": )"
             R"(1:3: parse error: unexpected \"[\""})");
  ExpectJson(Get("/api/v1/series?match[]=up%20offset%205m"), 400,
             R"({"status":"error","errorType":"bad_data","error":"invalid parameter \"match[]\": )"
             R"(1:4: parse error: unexpected \u003coffset\u003e"})");
  // The label endpoints name no parameter (as Prometheus).
  ExpectJson(Get("/api/v1/labels?match[]=sum%20by%20(job)%20(up)"), 400,
             R"({"status":"error","errorType":"bad_data","error":)"
             R"("1:5: parse error: unexpected \u003cby\u003e"})");
  ExpectJson(Get("/api/v1/label/job/values?match[]=up%7Ba%3D%22b%22%7D%20or%20up"), 400,
             R"({"status":"error","errorType":"bad_data","error":)"
             R"("1:11: parse error: unexpected \u003cop:or\u003e"})");
  ExpectJson(Get("/api/v1/labels?limit=-1"), 400,
             R"({"status":"error","errorType":"bad_data","error":)"
             R"("invalid parameter \"limit\": limit must be non-negative"})");
}

TEST_F(ApiTest, DeeplyNestedQueryIsBadDataAndTheServerKeepsServing) {
  std::string query(5000, '(');
  query += "1";
  query += std::string(5000, ')');
  std::string escaped;
  for (char c : query) escaped += c == '(' ? "%28" : c == ')' ? "%29" : std::string(1, c);
  TestHttpResponse r = PostForm("/api/v1/query", "time=1&query=" + escaped);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_THAT(r.body, HasSubstr(R"({"status":"error","errorType":"bad_data","error":)"
                                R"("invalid parameter \"query\": )"));
  ExpectJson(Get("/api/v1/query?query=1%2B1&time=4"), 200,
             R"({"status":"success","data":{"resultType":"scalar","result":[4,"2"]}})");
}

TEST_F(ApiTest, EvaluationErrorIsExecution) {
  WriteFixture();
  // Both `up` series share job="node": many-to-many matching is an evaluation error.
  TestHttpResponse r = Get("/api/v1/query?query=up%20%2B%20on(job)%20up&time=30");
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_THAT(r.body, HasSubstr(R"({"status":"error","errorType":"execution","error":")"));
}

TEST_F(ApiTest, SeriesLabelsAndValues) {
  WriteFixture();
  ExpectJson(Get("/api/v1/series?match[]=up"), 200,
             fmt::format(R"({{"status":"success","data":[{},{}]}})", kUpA, kUpB));
  // Two match[] sets: the union, sorted, each series once.
  ExpectJson(PostForm("/api/v1/series",
                      "match[]=up%7Binstance%3D%22b%3A9100%22%7D&match[]=up&start=0&end=100"),
             200, fmt::format(R"({{"status":"success","data":[{},{}]}})", kUpA, kUpB));
  ExpectJson(Get("/api/v1/series?match[]=up&limit=1"), 200,
             fmt::format(R"({{"status":"success","data":[{}],)"
                         R"("warnings":["results truncated due to limit"]}})",
                         kUpA));
  ExpectJson(Get("/api/v1/labels"), 200,
             R"({"status":"success","data":["__name__","code","instance","job"]})");
  ExpectJson(Get("/api/v1/labels?match[]=up"), 200,
             R"({"status":"success","data":["__name__","instance","job"]})");
  ExpectJson(Get("/api/v1/label/job/values"), 200, R"({"status":"success","data":["api","node"]})");
  ExpectJson(Get("/api/v1/label/__name__/values"), 200,
             R"({"status":"success","data":["http_requests_total","up"]})");
  ExpectJson(Get("/api/v1/label/job/values?match[]=up"), 200,
             R"({"status":"success","data":["node"]})");
  ExpectJson(Get("/api/v1/label/nope/values"), 200, R"({"status":"success","data":[]})");
}

TEST_F(ApiTest, FormatQueryMetadataAndExemplars) {
  ExpectJson(Get("/api/v1/format_query?query=sum(rate(foo%5B5m%5D))by(job)"), 200,
             R"j({"status":"success","data":"sum by (job) (rate(foo[5m]))"})j");
  ExpectJson(Get("/api/v1/format_query?query=foo%7B"), 400,
             R"({"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": )"
             R"(1:5: parse error: unexpected end of input inside braces"})");
  ExpectJson(Get("/api/v1/metadata"), 200, R"({"status":"success","data":{}})");
  ExpectJson(Get("/api/v1/query_exemplars?query=test"), 200, R"({"status":"success","data":[]})");

  test::WriteRequest req;
  test::MetricMetadata* m = req.add_metadata();
  m->set_type(1);
  m->set_metric_family_name("http_requests_total");
  m->set_help("Requests served.");
  ASSERT_EQ(Write(req).status, 204);
  ExpectJson(Get("/api/v1/metadata"), 200,
             R"({"status":"success","data":{"http_requests_total":)"
             R"([{"type":"counter","help":"Requests served.","unit":""}]}})");
}

TEST_F(ApiTest, RemoteWriteKeepsValidSamplesAndSaysWhatWasRejected) {
  WriteFixture();
  test::WriteRequest req;
  // Out of order (before the series' last sample at 30 s) and a duplicate of 30 s.
  AddSeries(&req, {{"__name__", "up"}, {"job", "node"}, {"instance", "a:9100"}},
            {{15000, 1}, {30000, 5}});
  AddSeries(&req, {{"__name__", "new_metric"}}, {{40000, 3}});
  AddSeries(&req, {{"job", "no_name"}}, {{40000, 3}});
  TestHttpResponse r = Write(req);
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("2 samples rejected: 1 out of order, 1 duplicate"));
  EXPECT_THAT(r.body, HasSubstr("1 series with invalid labels (1 samples)"));
  // The valid series of the request is stored; the rejected samples are not.
  ExpectJson(Get("/api/v1/query?query=new_metric&time=40"), 200,
             R"({"status":"success","data":{"resultType":"vector","result":[)"
             R"({"metric":{"__name__":"new_metric"},"value":[40,"3"]}]}})");
  ExpectJson(Get("/api/v1/query?query=up%7Binstance%3D%22a%3A9100%22%7D&time=30"), 200,
             fmt::format(R"({{"status":"success","data":{{"resultType":"vector","result":[)"
                         R"({{"metric":{},"value":[30,"0"]}}]}}}})",
                         kUpA));
  // Unsupported content type: 415.
  auto bad =
      client_->Request("POST", "/api/v1/write", {{"Content-Type", "application/json"}}, "{}");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 415);
}

// Series written again are found by their label bytes (the remote-write cache): the same
// bytes, labels sent in another order, and an invalid label set sent twice all behave as on
// first sight.
TEST_F(ApiTest, RemoteWriteOfKnownSeriesStoresEverySampleOnce) {
  for (int round = 0; round < 4; ++round) {
    test::WriteRequest req;
    const int64_t t = 10000 * (round + 1);
    for (int i = 0; i < 50; ++i) {
      const std::string host = fmt::format("h{}", i);
      if (round == 2 && i % 2 == 0) {
        AddSeries(&req, {{"host", host}, {"__name__", "cached_metric"}}, {{t, double(i + round)}});
      } else {
        AddSeries(&req, {{"__name__", "cached_metric"}, {"host", host}}, {{t, double(i + round)}});
      }
    }
    AddSeries(&req, {{"job", "no_name"}}, {{t, 1}});
    TestHttpResponse r = Write(req);
    EXPECT_EQ(r.status, 400) << "round " << round;
    EXPECT_THAT(r.body, HasSubstr("1 series with invalid labels (1 samples)")) << round;
  }
  ExpectJson(Get("/api/v1/query?query=count(cached_metric)&time=40"), 200,
             R"({"status":"success","data":{"resultType":"vector","result":[)"
             R"({"metric":{},"value":[40,"50"]}]}})");
  ExpectJson(Get("/api/v1/"
                 "query?query=count_over_time(cached_metric%7Bhost%3D%22h7%22%7D%5B1m%5D)&time=40"),
             200,
             R"({"status":"success","data":{"resultType":"vector","result":[)"
             R"({"metric":{"host":"h7"},"value":[40,"4"]}]}})");
  ExpectJson(Get("/api/v1/query?query=sum(cached_metric)&time=30"), 200,
             R"({"status":"success","data":{"resultType":"vector","result":[)"
             R"({"metric":{},"value":[30,"1325"]}]}})");
  ExpectJson(Get("/api/v1/query?query=count(%7Bjob%3D%22no_name%22%7D)&time=40"), 200,
             R"({"status":"success","data":{"resultType":"vector","result":[]}})");
}

// Remote write remembers the head series of label bytes it has seen. Head GC may take such a
// series out of the head; the next sample for it must still land, in the series found
// again (same ref, so the stored samples and the new ones are one series).
TEST_F(ApiTest, RemoteWriteOfASeriesHeadGcRemovedStoresItsSamples) {
  const int64_t kHour = 3600 * 1000;
  auto write = [&](std::string_view host, int64_t t, double v) {
    test::WriteRequest req;
    AddSeries(&req, {{"__name__", "gc_metric"}, {"host", std::string(host)}}, {{t, v}});
    TestHttpResponse r = Write(req);
    ASSERT_EQ(r.status, 204) << r.body;
  };
  auto head_series = [&] {
    TestHttpResponse r = Get("/api/v1/status/tsdb");
    const size_t at = r.body.find("\"numSeries\":");
    return r.body.substr(at, r.body.find(',', at) - at);
  };
  write("a", 10'000, 1);
  write("b", 10'000, 1);
  write("a", 20'000, 2);  // found by its label bytes
  write("b", 2 * kHour, 2);
  // "a" has been idle for more than the head keeps idle series: the flush writes its chunk
  // to the store and head GC takes it out.
  ASSERT_TRUE(server_->storage()->Flush().ok());
  EXPECT_EQ(head_series(), "\"numSeries\":1");
  write("a", 2 * kHour + 10'000, 3);
  write("a", 2 * kHour + 20'000, 4);
  EXPECT_EQ(head_series(), "\"numSeries\":2");
  ExpectJson(Get("/api/v1/query?query=sum_over_time(gc_metric%7Bhost%3D%22a%22%7D%5B3h%5D)"
                 "&time=7220"),
             200,
             R"({"status":"success","data":{"resultType":"vector","result":[)"
             R"({"metric":{"host":"a"},"value":[7220,"10"]}]}})");
  ExpectJson(Get("/api/v1/query?query=count(gc_metric)&time=7220"), 200,
             R"({"status":"success","data":{"resultType":"vector","result":[)"
             R"({"metric":{},"value":[7220,"2"]}]}})");
}

// --storage.wal-fsync: by default a write is acknowledged once the WAL's write() is done
// (fsync when a segment closes); with "commit" every acknowledged write was fsynced.
TEST_F(ApiTest, WalFsyncFlagDecidesWhetherWritesWaitForTheDisk) {
  auto fsyncs = [&] {
    TestHttpResponse r = Get("/metrics");
    const std::string key = "strata_wal_fsync_duration_seconds_count ";
    const size_t at = r.body.find(key);
    EXPECT_NE(at, std::string::npos) << r.body;
    if (at == std::string::npos) return -1.0;
    return std::stod(r.body.substr(at + key.size()));
  };
  WriteFixture();
  EXPECT_EQ(fsyncs(), 0);
  StopServer();
  std::filesystem::remove_all(dir_);
  StartServer(2, "commit");
  WriteFixture();
  EXPECT_GE(fsyncs(), 1);
  ExpectJson(Get("/api/v1/query?query=count(up)&time=30"), 200,
             R"({"status":"success","data":{"resultType":"vector","result":[)"
             R"({"metric":{},"value":[30,"2"]}]}})");
}

TEST_F(ApiTest, TsdbStatusReportsHeadCardinality) {
  // An empty head: no series, and the "no data" time range Prometheus reports.
  ExpectJson(Get("/api/v1/status/tsdb"), 200,
             R"({"status":"success","data":{"headStats":{"numSeries":0,"numLabelPairs":0,)"
             R"("chunkCount":0,"minTime":9223372036854775807,"maxTime":-9223372036854775808},)"
             R"("seriesCountByMetricName":[],"labelValueCountByLabelName":[],)"
             R"("memoryInBytesByLabelName":[],"seriesCountByLabelValuePair":[]}})");
  WriteFixture();
  // Bytes per label: for each series, varint length + name + varint length + value.
  ExpectJson(
      Get("/api/v1/status/tsdb"), 200,
      R"({"status":"success","data":{"headStats":{"numSeries":3,"numLabelPairs":7,)"
      R"("chunkCount":3,"minTime":10000,"maxTime":30000},)"
      R"("seriesCountByMetricName":[{"name":"up","value":2},)"
      R"({"name":"http_requests_total","value":1}],)"
      R"("labelValueCountByLabelName":[{"name":"__name__","value":2},)"
      R"({"name":"instance","value":2},{"name":"job","value":2},{"name":"code","value":1}],)"
      R"("memoryInBytesByLabelName":[{"name":"__name__","value":53},)"
      R"({"name":"instance","value":32},{"name":"job","value":26},{"name":"code","value":9}],)"
      R"("seriesCountByLabelValuePair":[{"name":"__name__=up","value":2},)"
      R"({"name":"job=node","value":2},{"name":"__name__=http_requests_total","value":1},)"
      R"({"name":"code=200","value":1},{"name":"instance=a:9100","value":1},)"
      R"({"name":"instance=b:9100","value":1},{"name":"job=api","value":1}]}})");
  ExpectJson(Get("/api/v1/status/tsdb?limit=1"), 200,
             R"({"status":"success","data":{"headStats":{"numSeries":3,"numLabelPairs":7,)"
             R"("chunkCount":3,"minTime":10000,"maxTime":30000},)"
             R"("seriesCountByMetricName":[{"name":"up","value":2}],)"
             R"("labelValueCountByLabelName":[{"name":"__name__","value":2}],)"
             R"("memoryInBytesByLabelName":[{"name":"__name__","value":53}],)"
             R"("seriesCountByLabelValuePair":[{"name":"__name__=up","value":2}]}})");
  EXPECT_EQ(Get("/api/v1/status/tsdb?limit=10000").status, 200);
  for (std::string_view bad : {"0", "-1", "abc", "1.5", "99999999999999999999"}) {
    ExpectJson(Get(fmt::format("/api/v1/status/tsdb?limit={}", bad)), 400,
               R"({"status":"error","errorType":"bad_data",)"
               R"("error":"limit must be a positive number"})");
  }
  ExpectJson(Get("/api/v1/status/tsdb?limit=10001"), 400,
             R"({"status":"error","errorType":"bad_data","error":"limit must not exceed 10000"})");
}

TEST_F(ApiTest, TextImportStoresSamplesAndMetadata) {
  std::string body =
      "# HELP temp_celsius Temperature.\n"
      "# TYPE temp_celsius gauge\n"
      "temp_celsius{room=\"a \\\"b\\\"\"} 21.5 10000\n"
      "temp_celsius{room=\"c\"} NaN 10000\n"
      "temp_celsius{room=\"c\"} -Inf 20000\n"
      "no_timestamp 7\n";
  auto r = client_->Request("POST", "/api/v1/import/prometheus?timestamp=15000&extra_label=site=x",
                            {{"Content-Type", "application/x-www-form-urlencoded"}}, body);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 204) << r->body;
  ExpectJson(Get("/api/v1/query_range?query=temp_celsius&start=10&end=20&step=10"), 200,
             R"({"status":"success","data":{"resultType":"matrix","result":[)"
             R"({"metric":{"__name__":"temp_celsius","room":"a \"b\"","site":"x"},)"
             R"("values":[[10,"21.5"],[20,"21.5"]]},)"
             R"({"metric":{"__name__":"temp_celsius","room":"c","site":"x"},)"
             R"("values":[[10,"NaN"],[20,"-Inf"]]}]}})");
  // A line without a timestamp takes the `timestamp` parameter.
  ExpectJson(Get("/api/v1/query?query=no_timestamp&time=15"), 200,
             R"({"status":"success","data":{"resultType":"vector","result":[)"
             R"({"metric":{"__name__":"no_timestamp","site":"x"},"value":[15,"7"]}]}})");
  ExpectJson(Get("/api/v1/query?query=no_timestamp&time=14.999"), 200,
             R"({"status":"success","data":{"resultType":"vector","result":[]}})");
  ExpectJson(Get("/api/v1/metadata?metric=temp_celsius"), 200,
             R"({"status":"success","data":{"temp_celsius":[)"
             R"({"type":"gauge","help":"Temperature.","unit":""}]}})");
}

TEST_F(ApiTest, TextImportTakesGzipAndDefaultsToTheRequestTime) {
  Timestamp before = NowMillis();
  auto gz = GzipCompress("gzipped_metric{a=\"1\"} 42\n");
  ASSERT_TRUE(gz.ok());
  auto r =
      client_->Request("POST", "/api/v1/import/prometheus", {{"Content-Encoding", "gzip"}}, *gz);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 204) << r->body;
  Timestamp after = NowMillis();
  auto series = Get("/api/v1/query?query=timestamp(gzipped_metric)");
  EXPECT_EQ(series.status, 200) << series.body;
  // The sample's time lies between the request and its answer.
  size_t at = series.body.find("\"value\":[");
  ASSERT_NE(at, std::string::npos) << series.body;
  double t = std::stod(series.body.substr(series.body.find(",\"", at) + 2));
  EXPECT_GE(t * 1000, static_cast<double>(before) - 1);
  EXPECT_LE(t * 1000, static_cast<double>(after) + 1);

  auto bad = client_->Request("POST", "/api/v1/import/prometheus", {{"Content-Encoding", "gzip"}},
                              "not gzip");
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->status, 400);
  EXPECT_THAT(bad->body, HasSubstr("cannot decompress the gzip body"));
  auto br =
      client_->Request("POST", "/api/v1/import/prometheus", {{"Content-Encoding", "br"}}, "x 1");
  ASSERT_TRUE(br.has_value());
  EXPECT_EQ(br->status, 415);
  EXPECT_THAT(br->body, HasSubstr(R"(unsupported Content-Encoding \"br\")"));
}

TEST_F(ApiTest, TextImportRejectsABadBodyWholeAndSaysWhichLine) {
  std::string body = "good_metric 1 10000\ngood_metric 2 20000\nbad_metric{job=\"x} 3\n";
  auto r = client_->Request("POST", "/api/v1/import/prometheus", {}, body);
  ASSERT_TRUE(r.has_value());
  ExpectJson(*r, 400,
             R"({"status":"error","errorType":"bad_data","error":"cannot import: line 3, )"
             R"(column 16: the value of label \"job\" is missing its closing quote"})");
  // Nothing of it was stored, not even the valid lines before the error.
  ExpectJson(Get("/api/v1/series?match[]=good_metric"), 200, R"({"status":"success","data":[]})");

  for (std::string_view target : {"/api/v1/import/prometheus?timestamp=soon",
                                  "/api/v1/import/prometheus?extra_label=novalue"}) {
    auto p = client_->Request("POST", target, {}, "m 1\n");
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->status, 400) << target;
    EXPECT_THAT(p->body, HasSubstr("invalid parameter")) << p->body;
  }
  // Samples older than what a series holds are refused by storage and counted; the rest
  // of the body is kept, as with remote write.
  ASSERT_EQ(client_->Request("POST", "/api/v1/import/prometheus", {}, "m 1 50000\n")->status, 204);
  auto late = client_->Request("POST", "/api/v1/import/prometheus", {},
                               "m 0 40000\nm 2 60000\nother 1 60000\n");
  ASSERT_TRUE(late.has_value());
  ExpectJson(*late, 400,
             R"({"status":"error","errorType":"bad_data",)"
             R"("error":"1 samples rejected: 1 out of order"})");
  ExpectJson(Get("/api/v1/query?query=count_over_time(m[1m])&time=60"), 200,
             R"({"status":"success","data":{"resultType":"vector","result":[)"
             R"({"metric":{},"value":[60,"2"]}]}})");
}

// A query that runs for minutes: a median over a day of one-second points, at 10,001 steps.
constexpr std::string_view kSlowQuery =
    "/api/v1/query_range?query=quantile_over_time(0.5,vector(1)%5B1d:1s%5D)"
    "&start=0&end=10000&step=1";

std::string Request(std::string_view target) {
  return fmt::format("GET {} HTTP/1.1\r\nHost: test\r\n\r\n", target);
}

TEST_F(ApiTest, SlowQueryPastItsTimeoutGetsTheTimeoutShape) {
  ExpectJson(Get(fmt::format("{}&timeout=500ms", kSlowQuery)), 503,
             R"({"status":"error","errorType":"timeout",)"
             R"("error":"query timed out in expression evaluation"})");
  // The server keeps serving.
  ExpectJson(Get("/api/v1/query?query=1%2B1&time=4"), 200,
             R"({"status":"success","data":{"resultType":"scalar","result":[4,"2"]}})");
}

// A many-to-many error names the first two series of the match group that Prometheus meets
// going through that side, whose selector it reads in label order (here a and b, whatever
// order they were stored in), in label order (operators.test).
TEST_F(ApiTest, ManyToManyErrorNamesTheFirstDuplicatesInLabelOrder) {
  test::WriteRequest req;
  for (const char* l : {"c", "b", "a"}) {
    AddSeries(&req, {{"__name__", "dup"}, {"l", l}}, {{10000, 1}});
  }
  AddSeries(&req, {{"__name__", "one"}}, {{10000, 3}});
  ASSERT_EQ(Write(req).status, 204);
  ExpectJson(Get("/api/v1/query?query=one%20%3E%20on()%20dup&time=20"), 422,
             R"({"status":"error","errorType":"execution","error":"found duplicate series for )"
             R"(the match group {} on the right hand-side of the operation: )"
             R"([{__name__=\"dup\", l=\"a\"}, {__name__=\"dup\", l=\"b\"}];many-to-many )"
             R"(matching not allowed: matching labels must be unique on one side"})");
}

// A timeout of zero or less has expired before the query starts (Prometheus' context
// deadline), however quick the query; a query that does not parse says so first.
TEST_F(ApiTest, TimeoutOfZeroOrLessTimesOutAtOnce) {
  for (const char* timeout : {"0", "-0.5", "0s"}) {
    ExpectJson(Get(fmt::format("/api/v1/query?query=1%2B1&time=4&timeout={}", timeout)), 503,
               R"({"status":"error","errorType":"timeout",)"
               R"("error":"query timed out in query execution"})");
  }
  ExpectJson(Get("/api/v1/query_range?query=up&start=0&end=60&step=15&timeout=0"), 503,
             R"({"status":"error","errorType":"timeout",)"
             R"("error":"query timed out in query execution"})");
  auto r = Get("/api/v1/query?query=sum(&time=4&timeout=0");
  EXPECT_EQ(r.status, 400) << r.body;
}

TEST_F(ApiTest, ClientsThatGoAwayHaveTheirQueriesStoppedAndFreeTheWorker) {
  StopServer();
  StartServer(/*query_concurrency=*/1);
  // One worker: `running` takes it; `queued` waits behind it. Both clients then close their
  // sockets. Unless both queries are stopped, the last query waits minutes for the worker
  // and the client gives up after 30 s.
  auto running = std::make_unique<TestHttpClient>(server_->port());
  ASSERT_TRUE(running->SendRaw(Request(kSlowQuery)));
  auto queued = std::make_unique<TestHttpClient>(server_->port());
  ASSERT_TRUE(queued->SendRaw(Request(kSlowQuery)));
  // Closing right after sending is fine: the request reaches the server before the end of
  // stream does, so it is read and dispatched, and the end of stream then marks it gone.
  queued.reset();
  running.reset();
  ExpectJson(Get("/api/v1/query?query=1%2B1&time=4"), 200,
             R"({"status":"success","data":{"resultType":"scalar","result":[4,"2"]}})");
  // Both are counted; the `queued` request may reach the pool after the last query did (its
  // connection is read on another I/O thread), so wait for the count without a deadline
  // assertion.
  TestHttpResponse metrics;
  for (int i = 0; i < 300; ++i) {
    metrics = Get("/metrics");
    if (metrics.body.find("strata_queries_canceled_total 2\n") != std::string::npos) break;
    ::usleep(100'000);
  }
  EXPECT_THAT(metrics.body, HasSubstr("strata_queries_canceled_total 2\n"));
}

TEST_F(ApiTest, HalfClosedClientOfAFastQueryStillGetsItsAnswer) {
  WriteFixture();
  TestHttpClient half(server_->port());
  ASSERT_TRUE(half.SendRaw(Request("/api/v1/query?query=count(up)&time=30")));
  half.ShutdownWrite();
  auto r = half.ReadResponse();
  ASSERT_TRUE(r.has_value());
  // Either the answer, or (when the end of stream was seen before the query started) the
  // canceled shape Prometheus gives a client that went away; never a dropped connection.
  if (r->status == 200) {
    EXPECT_EQ(r->body, R"({"status":"success","data":{"resultType":"vector","result":[)"
                       R"({"metric":{},"value":[30,"2"]}]}})");
  } else {
    EXPECT_EQ(r->status, 499) << r->body;
    EXPECT_THAT(r->body, HasSubstr(R"("errorType":"canceled")"));
  }
}

TEST_F(ApiTest, LabelValuesTakeUtf8NamesEscapedInThePath) {
  test::WriteRequest req;
  AddSeries(&req, {{"__name__", "m"}, {"my.label", "one"}, {"a_b", "two"}}, {{10000, 1}});
  ASSERT_EQ(Write(req).status, 204);
  ExpectJson(Get("/api/v1/label/U__my_2e_label/values"), 200,
             R"({"status":"success","data":["one"]})");
  ExpectJson(Get("/api/v1/label/U__a__b/values"), 200, R"({"status":"success","data":["two"]})");
  // Percent-encoding works too, and a name that does not decode is taken as written.
  ExpectJson(Get("/api/v1/label/my.label/values"), 200, R"({"status":"success","data":["one"]})");
  ExpectJson(Get("/api/v1/label/U__my_zz_label/values"), 200, R"({"status":"success","data":[]})");
  ExpectJson(
      Get("/api/v1/label/%FF/values"), 400,
      R"({"status":"error","errorType":"bad_data","error":"invalid label name: \"\\xff\""})");
}

TEST_F(ApiTest, FormatQuerySplitsLongExpressionsOverLines) {
  ExpectJson(
      Get("/api/v1/format_query?query=histogram_quantile(0.99,sum%20by(le)(rate("
          "http_request_duration_seconds_bucket%7Bjob%3D%22some-long-job-name%22%7D%5B5m%5D)))"),
      200,
      R"j({"status":"success","data":"histogram_quantile(\n  0.99,\n  sum by (le) )j"
      R"j((rate(http_request_duration_seconds_bucket{job=\"some-long-job-name\"}[5m]))\n)"})j");
}

TEST_F(ApiTest, DataSurvivesRestartOnTheSameDirectory) {
  WriteFixture();
  StopServer();
  StartServer();
  ExpectJson(Get("/api/v1/query_range?query=up&start=10&end=30&step=10"), 200,
             fmt::format(R"({{"status":"success","data":{{"resultType":"matrix","result":[)"
                         R"({{"metric":{},"values":[[10,"1"],[20,"1"],[30,"0"]]}},)"
                         R"({{"metric":{},"values":[[10,"1"],[20,"1"],[30,"1"]]}}]}}}})",
                         kUpA, kUpB));
  ExpectJson(Get("/api/v1/label/__name__/values"), 200,
             R"({"status":"success","data":["http_requests_total","up"]})");
}

TEST_F(ApiTest, SelfScrapeStoresServerMetricsUnderJobStrata) {
  StopServer();
  ServerConfig config;
  config.listen_host = "127.0.0.1";
  config.listen_port = 0;
  config.storage_path = (dir_ / "data").string();
  config.self_scrape_interval_ms = 60'000;  // the first scrape happens at Start
  registry_ = std::make_unique<MetricsRegistry>();
  server_ = std::make_unique<StrataServer>(config, registry_.get());
  ASSERT_TRUE(server_->Start().ok());
  client_ = std::make_unique<TestHttpClient>(server_->port());
  // The first scrape runs on the scraper's thread; wait for it without a timing assertion.
  TestHttpResponse r;
  for (int i = 0; i < 600; ++i) {
    r = Get("/api/v1/series?match[]=up%7Bjob%3D%22strata%22%7D");
    if (r.body != R"({"status":"success","data":[]})") break;
    ::usleep(100'000);
  }
  EXPECT_EQ(r.body,
            fmt::format(R"({{"status":"success","data":[)"
                        R"({{"__name__":"up","instance":"127.0.0.1:{}","job":"strata"}}]}})",
                        server_->port()));
}

}  // namespace
}  // namespace strata
