// The comparison the end-to-end tests rely on finds what differs (so they can fail).
#include "tests/e2e/result_compare.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace strata::e2e {
namespace {

using ::testing::HasSubstr;

constexpr std::string_view kVector =
    R"({"status":"success","data":{"resultType":"vector","result":[)"
    R"({"metric":{"__name__":"up","job":"a"},"value":[10.5,"1"]},)"
    R"({"metric":{"__name__":"up","job":"b"},"value":[10.5,"0.30000000000000004"]}]}})";

TEST(CompareQueryResponses, EqualAnswersInAnyOrderAndLabelOrder) {
  std::string reordered = R"({"status":"success","data":{"resultType":"vector","result":[)"
                          R"({"metric":{"job":"b","__name__":"up"},"value":[10.5,"0.3"]},)"
                          R"({"metric":{"__name__":"up","job":"a"},"value":[10.500,"1"]}]}})";
  EXPECT_EQ(CompareQueryResponses(kVector, reordered, {}), "");
  // Exact: the text differs.
  EXPECT_THAT(CompareQueryResponses(kVector, reordered, {.exact = true}),
              HasSubstr("up{job=\"b\"} differs from sample 0"));
  // Ordered: the order differs.
  EXPECT_THAT(CompareQueryResponses(kVector, reordered, {.ordered = true}),
              HasSubstr("series order differs"));
}

TEST(CompareQueryResponses, ReportsMissingSeriesValuesAndTimes) {
  std::string other = R"({"status":"success","data":{"resultType":"vector","result":[)"
                      R"({"metric":{"__name__":"up","job":"a"},"value":[10.5,"1.000001"]},)"
                      R"({"metric":{"__name__":"up","job":"c"},"value":[10.5,"0"]}]}})";
  std::string diff = CompareQueryResponses(kVector, other, {});
  EXPECT_THAT(diff, HasSubstr("up{job=\"a\"} differs from sample 0 on: ours [10.500,\"1\"] "
                              "theirs [10.500,\"1.000001\"]"));
  EXPECT_THAT(diff, HasSubstr("only ours has up{job=\"b\"}"));
  EXPECT_THAT(diff, HasSubstr("only theirs has up{job=\"c\"}"));
  std::string later = R"({"status":"success","data":{"resultType":"vector","result":[)"
                      R"({"metric":{"__name__":"up","job":"a"},"value":[11,"1"]},)"
                      R"({"metric":{"__name__":"up","job":"b"},"value":[10.5,"0.3"]}]}})";
  EXPECT_THAT(CompareQueryResponses(kVector, later, {}), HasSubstr("up{job=\"a\"} differs"));
}

TEST(CompareQueryResponses, MatricesNaNAndInfinities) {
  std::string a = R"({"status":"success","data":{"resultType":"matrix","result":[)"
                  R"({"metric":{},"values":[[1,"NaN"],[2,"+Inf"],[3,"1e-07"]]}]}})";
  std::string b = R"({"status":"success","data":{"resultType":"matrix","result":[)"
                  R"({"metric":{},"values":[[1,"NaN"],[2,"+Inf"],[3,"1.0000000000001e-07"]]}]}})";
  EXPECT_EQ(CompareQueryResponses(a, b, {}), "");
  std::string c = R"({"status":"success","data":{"resultType":"matrix","result":[)"
                  R"({"metric":{},"values":[[1,"NaN"],[2,"-Inf"],[3,"1e-07"]]}]}})";
  EXPECT_THAT(CompareQueryResponses(a, c, {}), HasSubstr("differs from sample 1"));
  std::string shorter = R"({"status":"success","data":{"resultType":"matrix","result":[)"
                        R"({"metric":{},"values":[[1,"NaN"],[2,"+Inf"]]}]}})";
  EXPECT_THAT(CompareQueryResponses(a, shorter, {}), HasSubstr("differs from sample 2"));
}

TEST(CompareQueryResponses, AbsoluteToleranceForCancellation) {
  std::string a =
      R"({"status":"success","data":{"resultType":"scalar","result":[1,"2.450657644340301e-16"]}})";
  std::string b =
      R"({"status":"success","data":{"resultType":"scalar","result":[1,"2.452103886805719e-16"]}})";
  EXPECT_THAT(CompareQueryResponses(a, b, {}), HasSubstr("differs"));
  EXPECT_EQ(CompareQueryResponses(a, b, {.abs_tol = 1e-12}), "");
}

TEST(CompareQueryResponses, TypesAndErrors) {
  std::string scalar = R"({"status":"success","data":{"resultType":"scalar","result":[4,"2"]}})";
  EXPECT_EQ(CompareQueryResponses(scalar, scalar, {.exact = true}), "");
  EXPECT_THAT(CompareQueryResponses(scalar, kVector, {}), HasSubstr("resultType"));
  EXPECT_THAT(CompareQueryResponses(R"({"status":"error","errorType":"bad_data"})", scalar, {}),
              HasSubstr("ours: not a success"));
  // A sample value must be a string, a timestamp a number.
  EXPECT_THAT(
      CompareQueryResponses(R"({"status":"success","data":{"resultType":"scalar","result":[4,2]}})",
                            scalar, {}),
      HasSubstr("not a string"));
  EXPECT_THAT(
      CompareQueryResponses(
          R"({"status":"success","data":{"resultType":"scalar","result":["4","2"]}})", scalar, {}),
      HasSubstr("not a number"));
}

TEST(CompareSeriesAndLists, SetsOfLabelSetsAndSortedLists) {
  std::string a = R"({"status":"success","data":[{"__name__":"up","job":"a"},{"__name__":"up"}]})";
  std::string b = R"({"status":"success","data":[{"__name__":"up"},{"job":"a","__name__":"up"}]})";
  EXPECT_EQ(CompareSeriesResponses(a, b), "");
  std::string c = R"({"status":"success","data":[{"__name__":"up"}]})";
  EXPECT_THAT(CompareSeriesResponses(a, c), HasSubstr("only ours has up{job=\"a\"}"));
  std::string l1 = R"({"status":"success","data":["a","b"]})";
  std::string l2 = R"({"status":"success","data":["b","a"]})";
  std::string l3 = R"({"status":"success","data":["a","c"]})";
  EXPECT_EQ(CompareStringListResponses(l1, l1), "");
  EXPECT_THAT(CompareStringListResponses(l1, l2), HasSubstr("order differs"));
  EXPECT_THAT(CompareStringListResponses(l1, l3), HasSubstr("only ours: [b]; only theirs: [c]"));
}

TEST(ParseVmExport, LinesOfMetricValuesAndTimestamps) {
  std::vector<Series> out;
  std::string error;
  ASSERT_TRUE(
      ParseVmExport("{\"metric\":{\"__name__\":\"x\",\"job\":\"j\"},\"values\":[1,0.5],"
                    "\"timestamps\":[1000,2000]}\n{\"metric\":{\"__name__\":\"y\"},\"values\":[3],"
                    "\"timestamps\":[1500]}\n",
                    &out, &error))
      << error;
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].Key(), "x{job=\"j\"}");
  ASSERT_EQ(out[0].samples.size(), 2u);
  EXPECT_EQ(out[0].samples[1].t_ms, 2000);
  EXPECT_EQ(out[0].samples[1].v, 0.5);
  EXPECT_FALSE(ParseVmExport("{\"metric\":{},\"values\":[1],\"timestamps\":[]}", &out, &error));
}

}  // namespace
}  // namespace strata::e2e
