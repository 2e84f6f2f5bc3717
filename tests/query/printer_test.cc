#include "query/printer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "query/parser.h"

namespace strata::promql {
namespace {

std::string Print(std::string_view q) {
  absl::StatusOr<ExprPtr> e = ParseExpr(q, ParserOptions::AllFeatures());
  if (!e.ok()) return "error: " + std::string(e.status().message());
  return ToString(**e);
}

TEST(Printer, CanonicalForms) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"sum(rate(x[5m])) by (job)", "sum by (job) (rate(x[5m]))"},
      {"sum without(a,b)(x)", "sum without (a, b) (x)"},
      {"sum by () (x)", "sum(x)"},
      {"topk(3,x)", "topk(3, x)"},
      {"count_values('v', x)", "count_values(\"v\", x)"},
      {"a+on(b)group_left(c)d", "a + on (b) group_left (c) d"},
      {"a + ignoring(b) group_right d", "a + ignoring (b) group_right () d"},
      {"a + on() b", "a + on () b"},
      {"a + ignoring() b", "a + b"},
      {"a and b", "a and b"},
      {"a > bool 1", "a > bool 1"},
      {"a == bool fill(3) b", "a == bool fill (3) b"},
      {"a + fill_left(1) fill_right(2) b", "a + fill_left (1) fill_right (2) b"},
      {"a + fill_right(NaN) b", "a + fill_right (NaN) b"},
      {"x offset 5m", "x offset 5m"},
      {"x offset 90s", "x offset 1m30s"},
      {"x offset -5m", "x offset -5m"},
      {"x offset 0s", "x"},
      {"foo @ 100", "foo @ 100.000"},
      {"foo @ 1.5", "foo @ 1.500"},
      {"foo @ -10", "foo @ -10.000"},
      {"foo offset 1m @ start()", "foo @ start() offset 1m"},
      {"foo[5m] @ end() offset 1m", "foo[5m] @ end() offset 1m"},
      {"foo[5m] offset 1m anchored", "foo[5m] anchored offset 1m"},
      {"foo smoothed", "foo smoothed"},
      {"x[1h:]", "x[1h:]"},
      {"x[1h:5m] @ 10 offset 1m", "x[1h:5m] @ 10.000 offset 1m"},
      {"rate(x[5m])[30m:1m]", "rate(x[5m])[30m:1m]"},
      {"x[5m+1m]", "x[5m + 1m]"},
      {"x[(5m)]", "x[(5m)]"},
      {"x[-5m+35m]", "x[-5m + 35m]"},
      {"x offset (2*2)", "x offset (2 * 2)"},
      {"x offset -step()", "x offset -step()"},
      {"x[min_of(5m,2*range())]", "x[min_of(5m, 2 * range())]"},
      {"x[10]", "x[10s]"},
      {"x{b=\"1\",a=~\"2\"}", "x{a=~\"2\",b=\"1\"}"},
      {"{__name__=\"x\"}", "{__name__=\"x\"}"},
      {"{\"my.metric\"}", "{__name__=\"my.metric\"}"},
      {"{\"my.metric\", \"a.b\"=\"x\", c!=\"d\"}",
       "{\"a.b\"=\"x\",__name__=\"my.metric\",c!=\"d\"}"},
      {"sum by (\"a.b\") (x)", "sum by (\"a.b\") (x)"},
      {"-x", "-x"},
      {"+x", "+x"},
      {"-1", "-1"},
      {"+1", "1"},
      {"- (1)", "-(1)"},
      {"1e3", "1000"},
      {"0x10", "16"},
      {"1e21", "1000000000000000000000"},
      {"1.5e-7", "0.00000015"},
      {"-inf", "-Inf"},
      {"nan", "NaN"},
      {"5m", "5m"},
      {"vector(1h30m)", "vector(1h30m)"},
      {"'a\\nb\"'", "\"a\\nb\\\"\""},
      {"`raw\\`", "\"raw\\\\\""},
      {"(a + b) * c", "(a + b) * c"},
      {"a ^ b ^ c", "a ^ b ^ c"},
      {"label_join(x, 'd', ',', 'a', 'b')", "label_join(x, \"d\", \",\", \"a\", \"b\")"},
      {"x </ 2", "x </ 2"},
      {"x atan2 y", "x atan2 y"},
      {"time()", "time()"},
      {"inf ^ 2", "Inf ^ 2"},
      {"-inf ^ 2", "-Inf ^ 2"},
      {"inf * 2", "+Inf * 2"},
      {"{\"inf\"}", "{__name__=\"inf\"}"},
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(Print(in), want) << in;
}

TEST(Printer, FormatNumberMatchesGoShortestFixed) {
  EXPECT_EQ(FormatNumber(1), "1");
  EXPECT_EQ(FormatNumber(0.1), "0.1");
  EXPECT_EQ(FormatNumber(-2.5), "-2.5");
  EXPECT_EQ(FormatNumber(1e6), "1000000");
  EXPECT_EQ(FormatNumber(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatNumber(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatNumber(std::nan("")), "NaN");
  EXPECT_EQ(FormatNumber(3.141592653589793), "3.141592653589793");
}

TEST(Printer, BuiltSelectorWithANameThatIsNoIdentifierIsQuoted) {
  VectorSelector vs;
  vs.name = "my.metric";
  vs.matchers.push_back(*LabelMatcher::Make(MatchType::kEqual, "__name__", "my.metric"));
  vs.matchers.push_back(*LabelMatcher::Make(MatchType::kEqual, "a", "b"));
  EXPECT_EQ(ToString(vs), "{\"my.metric\", a=\"b\"}");
  vs.name = "inf";
  vs.matchers.clear();
  EXPECT_EQ(ToString(vs), "{\"inf\"}");
}

TEST(Printer, DurationSlots) {
  Duration d;
  d.ms = 5400000;
  EXPECT_EQ(DurationToString(d), "1h30m");
  d.ms = 1;
  EXPECT_EQ(DurationToString(d), "1ms");
  d.ms = 0;
  EXPECT_EQ(DurationToString(d), "0s");
}

TEST(Printer, PrintedTreesParseBackEqual) {
  const std::string_view queries[] = {
      "sum by (job) (rate(x{a=~\"b|c\"}[5m] offset 1m)) / on (job) group_left () count(y)",
      "max_over_time(deriv(rate(x[1m])[5m:1m] @ start())[10m:]) > bool 0",
      "-(a ^ -b) unless c or d and e",
      "histogram_quantile(0.9, sum without (le, \"x.y\") (rate(b_bucket[5m])))",
      "x offset min_of(step(), 1s) + 8000",
      "label_replace(up, \"dst\", \"$1\", \"src\", \"(.*)\")",
  };
  for (std::string_view q : queries) {
    absl::StatusOr<ExprPtr> a = ParseExpr(q, ParserOptions::AllFeatures());
    ASSERT_TRUE(a.ok()) << q << ": " << a.status().message();
    const std::string printed = ToString(**a);
    absl::StatusOr<ExprPtr> b = ParseExpr(printed, ParserOptions::AllFeatures());
    ASSERT_TRUE(b.ok()) << printed << ": " << b.status().message();
    EXPECT_TRUE(Equal(**a, **b)) << q << " vs " << printed;
    EXPECT_EQ(ToString(**b), printed);
    ExprPtr clone = (*a)->Clone();
    EXPECT_TRUE(Equal(**a, *clone));
    EXPECT_EQ(ToString(*clone), printed);
  }
}

std::string PrettyOf(std::string_view q) {
  absl::StatusOr<ExprPtr> e = ParseExpr(q, ParserOptions::AllFeatures());
  if (!e.ok()) return "error: " + std::string(e.status().message());
  return Pretty(**e);
}

TEST(Printer, PrettyKeepsShortExpressionsOnOneLine) {
  EXPECT_EQ(PrettyOf("sum(rate(x[5m])) by (job)"), "sum by (job) (rate(x[5m]))");
  EXPECT_EQ(PrettyOf("-x"), "-x");
  EXPECT_EQ(PrettyOf("x[5m:1m]"), "x[5m:1m]");
}

TEST(Printer, PrettySplitsLongExpressionsAsPrometheusDoes) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"sum by (job) (rate(http_requests_total{job=\"api-server\",handler=\"/api/v1/query_range\","
       "code=\"200\"}[5m]))",
       "sum by (job) (\n"
       "  rate(http_requests_total{code=\"200\",handler=\"/api/v1/query_range\","
       "job=\"api-server\"}[5m])\n"
       ")"},
      {"sum(rate(aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa[5m])) / on(job) group_left(instance) "
       "sum(rate(bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb[5m]))",
       "  sum(rate(aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa[5m]))\n"
       "/ on (job) group_left (instance)\n"
       "  sum(rate(bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb[5m]))"},
      {"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{job="
       "\"some-long-job-name\"}[5m])))",
       "histogram_quantile(\n"
       "  0.99,\n"
       "  sum by (le) "
       "(rate(http_request_duration_seconds_bucket{job=\"some-long-job-name\"}[5m]))\n"
       ")"},
      {"topk(5, sum without (instance) (rate(node_network_receive_bytes_total{device!=\"lo\","
       "job=\"node\"}[5m])))",
       "topk(\n"
       "  5,\n"
       "  sum without (instance) (rate(node_network_receive_bytes_total{device!=\"lo\","
       "job=\"node\"}[5m]))\n"
       ")"},
      // Two levels: the parenthesis and the sum inside it are both too long.
      {"-(first_metric_name_that_is_really_quite_long_xxxxxxxx + "
       "second_metric_name_that_is_really_quite_long_xxxxxxx)",
       "-(\n"
       "    first_metric_name_that_is_really_quite_long_xxxxxxxx\n"
       "  +\n"
       "    second_metric_name_that_is_really_quite_long_xxxxxxx\n"
       ")"},
      // A subquery that fits is printed without indentation (Prometheus does the same).
      {"max_over_time(sum by (job) "
       "(rate(some_really_long_metric_name_written_for_the_prettier_total[5m]))"
       "[1h:5m])",
       "max_over_time(\n"
       "sum by (job) "
       "(rate(some_really_long_metric_name_written_for_the_prettier_total[5m]))[1h:5m]\n"
       ")"},
  };
  for (const auto& [in, want] : cases) {
    EXPECT_EQ(PrettyOf(in), want) << in;
    // The pretty text parses back to the same expression.
    absl::StatusOr<ExprPtr> again = ParseExpr(PrettyOf(in), ParserOptions::AllFeatures());
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(ToString(**again), Print(in));
  }
}

}  // namespace
}  // namespace strata::promql
