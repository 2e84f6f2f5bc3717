#include "query/promql_test_script.h"

#include <cmath>

#include "gtest/gtest.h"

namespace strata::promql {
namespace {

TEST(SeriesDescription, ExpandsRepetitionsGapsAndStaleMarkers) {
  auto d = ParseSeriesDescription(R"(a{b="c", d='e\n'} 0+10x3 _ stale 1x2 _x2 -1-1x1 NaN)");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->labels.ToString(), "{__name__=\"a\", b=\"c\", d=\"e\\n\"}");
  // 0+10x3 -> 4 values; _ -> 1; stale -> 1; 1x2 -> 3; _x2 -> 2; -1-1x1 -> 2; NaN -> 1.
  ASSERT_EQ(d->values.size(), 14u);
  EXPECT_EQ(*d->values[3], 30);
  EXPECT_FALSE(d->values[4].has_value());
  EXPECT_TRUE(IsStaleNaN(*d->values[5]));
  EXPECT_EQ(*d->values[8], 1);
  EXPECT_FALSE(d->values[9].has_value());
  EXPECT_FALSE(d->values[10].has_value());
  EXPECT_EQ(*d->values[11], -1);
  EXPECT_EQ(*d->values[12], -2);
  EXPECT_TRUE(std::isnan(*d->values[13]) && !IsStaleNaN(*d->values[13]));
}

TEST(SeriesDescription, CountsHistogramPositions) {
  auto d = ParseSeriesDescription("h {{schema:0 sum:1 count:1}}x2 {{}}+{{count:1}}x1 1");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->histogram_positions, 5);
  EXPECT_EQ(d->values.size(), 6u);
}

TEST(SeriesDescription, RejectsGarbage) {
  EXPECT_FALSE(ParseSeriesDescription("a 1 x").ok());
  EXPECT_FALSE(ParseSeriesDescription("a{b=\"c\" 1").ok());
  EXPECT_FALSE(ParseSeriesDescription("a 1.2.3").ok());
  EXPECT_FALSE(ParseSeriesDescription("a 0x1p3").ok());  // no hex floats
}

absl::StatusOr<ScriptReport> RunScript(std::string_view script) {
  return RunTestScript(script, "inline.test", EngineOptions::AllFeatures());
}

TEST(TestScript, PassesCorrectExpectationsAndReportsEachEval) {
  auto r = RunScript(R"(
load 1m
  m{job="a"} 0+1x10
  m{job="b"} 0+2x10

eval instant at 5m sum(m)
  {} 15

eval instant at 5m m{job="b"} * 2
  {job="b"} 20

eval range from 0 to 2m step 1m m{job="a"}
  m{job="a"} 0 1 2

eval instant at 5m 1 + 1
  2
)");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->evals.size(), 4u);
  for (const auto& e : r->evals)
    EXPECT_EQ(e.status, EvalStatus::kPassed) << e.line << ": " << e.message;
  EXPECT_EQ(r->evals[1].line, 9);
}

TEST(TestScript, WrongValuesLabelsAndMissingFailuresFail) {
  auto r = RunScript(R"(
load 1m
  m 0+1x10

eval instant at 5m m
  m 6

eval instant at 5m m
  {} 5

eval instant at 5m m
  expect fail

eval range from 0 to 1m step 1m m
  m 0 1 2

eval instant at 5m m
  expect warn
  m 5
)");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->evals.size(), 5u);
  for (const auto& e : r->evals) EXPECT_EQ(e.status, EvalStatus::kFailed) << e.line;
}

TEST(TestScript, ChecksAnnotationsAndErrors) {
  auto r = RunScript(R"(
load 1m
  gauge 0+1x10

eval instant at 5m rate(gauge[5m])
  expect info msg: PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: "gauge" (1:6)
  {} 0.016666666666666666

eval instant at 5m rate(gauge[5m])
  expect no_info
  {} 0.016666666666666666

eval instant at 5m topk(NaN, gauge)
  expect fail msg: Parameter value is NaN
)");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->evals.size(), 3u);
  EXPECT_EQ(r->evals[0].status, EvalStatus::kPassed) << r->evals[0].message;
  EXPECT_EQ(r->evals[1].status, EvalStatus::kFailed);
  EXPECT_EQ(r->evals[2].status, EvalStatus::kPassed) << r->evals[2].message;
}

TEST(TestScript, SkipsOnlyNativeHistogramEvals) {
  auto r = RunScript(R"(
load 1m
  h {{schema:0 sum:1 count:1}}x3
  f 1x3

eval instant at 1m h
  h 1

eval instant at 1m f
  f 1
)");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->evals.size(), 2u);
  EXPECT_EQ(r->evals[0].status, EvalStatus::kSkipped);
  EXPECT_EQ(r->evals[0].message, kSkipNativeHistograms);
  EXPECT_EQ(r->evals[1].status, EvalStatus::kPassed);
}

TEST(TestScript, UnknownCommandsAndBadQueriesFailTheWholeScript) {
  EXPECT_FALSE(RunScript("load 1m\n  m 1\n\nfrobnicate m\n").ok());
  EXPECT_FALSE(RunScript("eval instant at 1m sum(\n  {} 1\n").ok());
  EXPECT_FALSE(RunScript("eval instant at 1x m\n").ok());
  EXPECT_FALSE(RunScript("eval instant at 1m m\n  expect warn\n  expect no_warn\n").ok());
}

TEST(TestScript, CommentLineEndsABlock) {
  // The series line after the comment is outside the eval block: an invalid command.
  EXPECT_FALSE(RunScript("load 1m\n  m 1\n\neval instant at 0 m\n# c\n  m 1\n").ok());
}

}  // namespace
}  // namespace strata::promql
