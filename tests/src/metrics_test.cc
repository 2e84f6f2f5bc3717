#include "src/metrics.h"

#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

using ::testing::HasSubstr;

TEST(MetricsRegistry, ExposesCountersGaugesAndHistogramsInTextFormat) {
  MetricsRegistry r;
  auto* requests = r.CounterFamily("http_requests_total", "HTTP requests.", {"handler", "code"});
  requests->With({"/api/v1/query", "200"})->Add(3);
  requests->With({"/api/v1/write", "204"})->Inc();
  r.GetGauge("head_series", "Series in the head.")->Set(1234567);
  auto* h = r.GetHistogram("query_seconds", "Query latency.", {0.1, 1});
  h->Observe(0.05);
  h->Observe(0.5);
  h->Observe(5);
  r.AddCallbackGauge("up_seconds", "Uptime.", [] { return 0.25; });

  std::string text = r.ExpositionText();
  EXPECT_THAT(text, HasSubstr("# HELP http_requests_total HTTP requests.\n"
                              "# TYPE http_requests_total counter\n"));
  EXPECT_THAT(text, HasSubstr("http_requests_total{handler=\"/api/v1/query\",code=\"200\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("head_series 1.234567e+06\n"));
  EXPECT_THAT(text, HasSubstr("query_seconds_bucket{le=\"0.1\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("query_seconds_bucket{le=\"1\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("query_seconds_bucket{le=\"+Inf\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("query_seconds_sum 5.55\n"));
  EXPECT_THAT(text, HasSubstr("query_seconds_count 3\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE up_seconds gauge\nup_seconds 0.25\n"));
  // Families come out sorted by name.
  EXPECT_LT(text.find("head_series"), text.find("http_requests_total"));
}

TEST(MetricsRegistry, FormatsValuesLikeGo) {
  MetricsRegistry r;
  auto* g = r.GaugeFamily("g", "help", {"k"});
  g->With({"a"})->Set(123456);
  g->With({"b"})->Set(0.0001);
  g->With({"c"})->Set(0.00001);
  g->With({"d"})->Set(-2.5e-10);
  g->With({"e"})->Set(std::numeric_limits<double>::infinity());
  g->With({"f"})->Set(std::nan(""));
  std::string text = r.ExpositionText();
  EXPECT_THAT(text, HasSubstr("g{k=\"a\"} 123456\n"));
  EXPECT_THAT(text, HasSubstr("g{k=\"b\"} 0.0001\n"));
  EXPECT_THAT(text, HasSubstr("g{k=\"c\"} 1e-05\n"));
  EXPECT_THAT(text, HasSubstr("g{k=\"d\"} -2.5e-10\n"));
  EXPECT_THAT(text, HasSubstr("g{k=\"e\"} +Inf\n"));
  EXPECT_THAT(text, HasSubstr("g{k=\"f\"} NaN\n"));
}

TEST(MetricsRegistry, EscapesHelpAndLabelValues) {
  MetricsRegistry r;
  r.CounterFamily("c_total", "line1\nback\\slash", {"v"})->With({"a\"b\\c\nd"})->Inc();
  std::string text = r.ExpositionText();
  EXPECT_THAT(text, HasSubstr("# HELP c_total line1\\nback\\\\slash\n"));
  EXPECT_THAT(text, HasSubstr("c_total{v=\"a\\\"b\\\\c\\nd\"} 1\n"));
}

TEST(MetricsRegistry, RegisteringTwiceReturnsTheSameFamily) {
  MetricsRegistry r;
  auto* a = r.GetCounter("x_total", "x");
  auto* b = r.GetCounter("x_total", "x");
  EXPECT_EQ(a, b);
}

TEST(MetricsRegistry, GatherYieldsFullLabelSets) {
  MetricsRegistry r;
  r.CounterFamily("req_total", "r", {"code"})->With({"500"})->Add(2);
  r.GetHistogram("lat", "l", {1})->Observe(0.5);
  auto samples = r.Gather();
  ASSERT_EQ(samples.size(), 5u);
  EXPECT_EQ(samples[0].labels.ToString(), "{__name__=\"lat_bucket\", le=\"1\"}");
  EXPECT_EQ(samples[0].value, 1);
  EXPECT_EQ(samples[4].labels.ToString(), "{__name__=\"req_total\", code=\"500\"}");
  EXPECT_EQ(samples[4].value, 2);
}

TEST(MetricsRegistry, CountsExactlyUnderConcurrentUpdates) {
  MetricsRegistry r;
  auto* fam = r.CounterFamily("n_total", "n", {"t"});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) fam->With({"same"})->Inc();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(fam->With({"same"})->Value(), 40000);
}

}  // namespace
}  // namespace strata
