#include "server/api_params.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/http_server.h"

namespace strata {
namespace {

using ::testing::ElementsAre;

ApiParams MustParse(std::string_view query, std::string_view content_type = "",
                    std::string_view body = "") {
  auto p = ApiParams::Parse(query, content_type, body);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *std::move(p) : ApiParams();
}

TEST(QueryUnescape, DecodesPlusAndPercent) {
  EXPECT_EQ(*QueryUnescape("1%2B1"), "1+1");
  EXPECT_EQ(*QueryUnescape("a+b"), "a b");
  EXPECT_EQ(*QueryUnescape("%7Bjob%3D%22x%22%7D"), "{job=\"x\"}");
  EXPECT_EQ(*QueryUnescape("%e2%82%ac"), "\xe2\x82\xac");
  EXPECT_EQ(*QueryUnescape(""), "");
  EXPECT_EQ(*QueryUnescape("%00"), std::string(1, '\0'));
}

TEST(QueryUnescape, RejectsMalformedEscapesLikeGo) {
  EXPECT_EQ(QueryUnescape("%zz").status().message(), "invalid URL escape \"%zz\"");
  EXPECT_EQ(QueryUnescape("abc%4").status().message(), "invalid URL escape \"%4\"");
  EXPECT_EQ(QueryUnescape("abc%").status().message(), "invalid URL escape \"%\"");
  EXPECT_EQ(QueryUnescape("%g1x").status().message(), "invalid URL escape \"%g1\"");
}

TEST(ApiParams, ReadsUrlQuery) {
  ApiParams p = MustParse("query=up&time=4&empty=&flag");
  EXPECT_EQ(p.Get("query"), "up");
  EXPECT_EQ(p.Get("time"), "4");
  EXPECT_TRUE(p.Has("empty"));
  EXPECT_EQ(p.Get("empty"), "");
  EXPECT_TRUE(p.Has("flag"));
  EXPECT_FALSE(p.Has("missing"));
  EXPECT_EQ(p.Get("missing"), "");
  EXPECT_EQ(p.Get("Query"), "");
}

TEST(ApiParams, RepeatedMatchersKeepTheirOrder) {
  ApiParams p = MustParse("match%5B%5D=up&match[]=%7Bjob%3D%22a%22%7D&&match[]=x");
  EXPECT_THAT(p.GetAll("match[]"), ElementsAre("up", "{job=\"a\"}", "x"));
  EXPECT_EQ(p.Get("match[]"), "up");
}

TEST(ApiParams, FormBodyComesBeforeUrlValues) {
  ApiParams p = MustParse("query=fromurl&match[]=u", "application/x-www-form-urlencoded",
                          "query=frombody&match[]=b1&match[]=b2&step=15");
  EXPECT_EQ(p.Get("query"), "frombody");
  EXPECT_EQ(p.Get("step"), "15");
  EXPECT_THAT(p.GetAll("match[]"), ElementsAre("b1", "b2", "u"));
  EXPECT_THAT(p.GetAll("query"), ElementsAre("frombody", "fromurl"));
}

TEST(ApiParams, FormContentTypeMayCarryParametersAndCase) {
  ApiParams p = MustParse("", "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
                          "query=sum(rate(x%5B5m%5D))");
  EXPECT_EQ(p.Get("query"), "sum(rate(x[5m]))");
}

TEST(ApiParams, IgnoresBodiesOfOtherContentTypes) {
  ApiParams p = MustParse("a=1", "application/json", "query=x");
  EXPECT_FALSE(p.Has("query"));
  EXPECT_EQ(p.Get("a"), "1");
}

TEST(ApiParams, ParseErrorsSayWhatWasWrong) {
  auto bad = ApiParams::Parse("query=%zz", "", "");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "error parsing form values: invalid URL escape \"%zz\"");
  auto semi = ApiParams::Parse("a=1;b=2", "", "");
  ASSERT_FALSE(semi.ok());
  EXPECT_EQ(semi.status().message(),
            "error parsing form values: invalid semicolon separator in query");
  auto body = ApiParams::Parse("", "application/x-www-form-urlencoded", "q=%");
  EXPECT_FALSE(body.ok());
}

TEST(ApiParams, FromRequestReadsFormBodiesOfPostsOnly) {
  HttpRequest post;
  post.method = "POST";
  post.query = "a=1";
  post.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
  post.body = "query=up&a=2";
  auto p = ApiParams::FromRequest(post);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->Get("query"), "up");
  EXPECT_THAT(p->GetAll("a"), ElementsAre("2", "1"));
  HttpRequest get = post;
  get.method = "GET";
  auto g = ApiParams::FromRequest(get);
  ASSERT_TRUE(g.ok());
  EXPECT_FALSE(g->Has("query"));
  EXPECT_EQ(g->Get("a"), "1");
}

TEST(TimeParam, ParsesUnixSecondsAndRfc3339) {
  ApiParams p = MustParse("a=1435781451.781&b=2015-07-01T20:10:51.781Z&c=4&d=-1.5");
  EXPECT_EQ(*TimeParam(p, "a"), 1435781451781);
  EXPECT_EQ(*TimeParam(p, "b"), 1435781451781);
  EXPECT_EQ(*TimeParam(p, "c"), 4000);
  EXPECT_EQ(*TimeParam(p, "d"), -1500);
}

TEST(TimeParam, DefaultsWhenAbsentOrEmpty) {
  ApiParams p = MustParse("time=");
  EXPECT_EQ(*TimeParam(p, "time", 1234), 1234);
  EXPECT_EQ(*TimeParam(p, "other", 99), 99);
}

TEST(TimeParam, ErrorsNameTheParameterAndInput) {
  ApiParams p = MustParse("start=x&end=2015-13-01T00:00:00Z");
  auto s = TimeParam(p, "start");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.status().message(),
            "invalid parameter \"start\": cannot parse \"x\" to a valid timestamp");
  EXPECT_EQ(
      TimeParam(p, "end").status().message(),
      "invalid parameter \"end\": cannot parse \"2015-13-01T00:00:00Z\" to a valid timestamp");
  EXPECT_EQ(TimeParam(p, "missing").status().message(),
            "invalid parameter \"missing\": cannot parse \"\" to a valid timestamp");
  // An optional time (one with a default) says which value it could not read, as
  // Prometheus 3's parseTimeParam does.
  EXPECT_EQ(TimeParam(p, "start", 0).status().message(),
            "invalid parameter \"start\": invalid time value for 'start': cannot parse \"x\" to "
            "a valid timestamp");
  EXPECT_EQ(*TimeParam(p, "missing", 7), 7);
}

TEST(DurationParam, ParsesSecondsAndPrometheusDurations) {
  ApiParams p = MustParse("a=15&b=1.5&c=5m&d=1h30m&e=bogus&f=1e300");
  EXPECT_EQ(*DurationParam(p, "a"), 15000);
  EXPECT_EQ(*DurationParam(p, "b"), 1500);
  EXPECT_EQ(*DurationParam(p, "c"), 300000);
  EXPECT_EQ(*DurationParam(p, "d"), 5400000);
  EXPECT_EQ(*DurationParam(p, "missing", 120000), 120000);
  EXPECT_EQ(DurationParam(p, "e").status().message(),
            "invalid parameter \"e\": cannot parse \"bogus\" to a valid duration");
  EXPECT_EQ(DurationParam(p, "f").status().message(),
            "invalid parameter \"f\": cannot parse \"1e300\" to a valid duration. It overflows "
            "int64");
}

TEST(RangeParams, AcceptsAGrafanaStyleRange) {
  ApiParams p = MustParse("query=up&start=1700000000&end=1700003600&step=15");
  auto r = ParseRangeParams(p);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->start, 1700000000000);
  EXPECT_EQ(r->end, 1700003600000);
  EXPECT_EQ(r->step_ms, 15000);
}

TEST(RangeParams, RejectsWhatPrometheusRejects) {
  auto msg = [](std::string_view q) {
    auto r = ParseRangeParams(MustParse(q));
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(r.status().message());
  };
  EXPECT_EQ(msg("end=10&step=1"),
            "invalid parameter \"start\": cannot parse \"\" to a valid timestamp");
  EXPECT_EQ(msg("start=10&step=1"),
            "invalid parameter \"end\": cannot parse \"\" to a valid timestamp");
  EXPECT_EQ(msg("start=10&end=9&step=1"),
            "invalid parameter \"end\": end timestamp must not be before start time");
  EXPECT_EQ(msg("start=1&end=2"),
            "invalid parameter \"step\": cannot parse \"\" to a valid duration");
  EXPECT_EQ(msg("start=1&end=2&step=0"),
            "invalid parameter \"step\": zero or negative query resolution step widths are not "
            "accepted. Try a positive integer");
  EXPECT_EQ(msg("start=1&end=2&step=-5"),
            "invalid parameter \"step\": zero or negative query resolution step widths are not "
            "accepted. Try a positive integer");
  EXPECT_EQ(msg("start=0&end=11001&step=1"),
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the "
            "query resolution (?step=XX)");
}

TEST(CheckResolution, BoundaryIsElevenThousandSteps) {
  // (end - start) / step is an integer division of nanoseconds, as in Prometheus.
  EXPECT_TRUE(CheckResolution(0, 11000 * 1000, 1'000'000'000).ok());
  EXPECT_TRUE(CheckResolution(0, 11000 * 1000 + 999, 1'000'000'000).ok());
  EXPECT_FALSE(CheckResolution(0, 11001 * 1000, 1'000'000'000).ok());
  EXPECT_TRUE(CheckResolution(5, 5, 1).ok());
  EXPECT_FALSE(CheckResolution(-9000000000000000000, 9000000000000000000, 1'000'000'000).ok());
}

// Prometheus holds the step as a Go time.Duration: a step below a millisecond is positive
// and meets the 11,000-points limit, and one with a fraction of a millisecond is checked
// against the limit unrounded (the evaluation then steps by its whole milliseconds).
TEST(RangeParams, StepIsCheckedInNanosecondsAsPrometheusDoes) {
  auto parse = [](std::string_view q) { return ParseRangeParams(MustParse(q)); };
  const std::string kTooMany =
      "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query "
      "resolution (?step=XX)";
  EXPECT_EQ(std::string(parse("start=0&end=600&step=0.0005").status().message()), kTooMany);
  EXPECT_EQ(std::string(parse("start=0&end=11.001&step=0.001").status().message()), kTooMany);
  EXPECT_EQ(std::string(parse("start=0&end=10.995&step=0.0001").status().message()), kTooMany);
  // 10995 s / 0.9999 s is 10996.1 steps: allowed, at steps of 999 ms.
  auto r = parse("start=0&end=10995&step=0.9999");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->step_ms, 999);
  // 11000 s / 1.0005 s is 10994.5 steps.
  r = parse("start=0&end=11000&step=1.0005");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->step_ms, 1000);
  // A step beyond a Go duration (about 292 years) is no duration.
  EXPECT_EQ(parse("start=0&end=1&step=300y").status().message(),
            "invalid parameter \"step\": cannot parse \"300y\" to a valid duration");
}

// Times and durations as Go's strconv.ParseFloat and time.Parse(RFC3339Nano) read them
// (Prometheus 3 is built with Go 1.2x).
TEST(TimeParam, ReadsNumbersAndRfc3339AsGoDoes) {
  ApiParams p = MustParse(
      "a=1_000.5&b=0x1p4&c=0x1.8p1&d=2026-12-02T10:00:00,5Z&e=2026-12-02T10:00:00.5%2B24:00&"
      "f=2026-12-02T23:59:59.9999999999Z&g=2024-02-29T00:00:00Z&h=2026-12-02T10:00:00-00:30&"
      "i=2026-12-02T1:00:00Z");
  EXPECT_EQ(*TimeParam(p, "a"), 1000500);
  EXPECT_EQ(*TimeParam(p, "b"), 16000);
  EXPECT_EQ(*TimeParam(p, "c"), 3000);
  EXPECT_EQ(*TimeParam(p, "d"), 1796205600500);
  EXPECT_EQ(*TimeParam(p, "e"), 1796119200500);
  EXPECT_EQ(*TimeParam(p, "f"), 1796255999999);
  EXPECT_EQ(*TimeParam(p, "g"), 1709164800000);
  EXPECT_EQ(*TimeParam(p, "h"), 1796207400000);
  EXPECT_EQ(*TimeParam(p, "i"), 1796173200000);
  ApiParams d = MustParse("step=1_0&other=0x1p-1");
  EXPECT_EQ(*DurationParam(d, "step"), 10000);
  EXPECT_EQ(*DurationParam(d, "other"), 500);
  for (const char* bad :
       {"1__0", "_1", "1_", "0x10", "2026-12-02T10:00:60Z", "2026-12-02T24:00:00Z",
        "2026-12-02T10:00:00%2B0530", "2026-12-02T10:00:00%2B05", "2026-12-2T10:00:00Z",
        "2026-1-02T10:00:00Z", "2026-12-02T10:0:00Z", "2026-12-02T10:00:0Z", "26-12-02T10:00:00Z",
        "02026-12-02T10:00:00Z", "2026-12-02T10:00:00.5%2B01:00:00", "2026-12-02T123:00:00Z",
        "2025-02-29T00:00:00Z", "2026-12-02T10:00:00%2B25:00", "2026-12-02T10:00:00.Z"}) {
    ApiParams b = MustParse(std::string("t=") + bad);
    EXPECT_FALSE(TimeParam(b, "t").ok()) << bad;
  }
}

}  // namespace
}  // namespace strata

namespace strata {
namespace {

TEST(UnescapeValueEncodedName, DecodesPrometheusValuesEscaping) {
  EXPECT_EQ(UnescapeValueEncodedName("U__my_2e_label"), "my.label");
  EXPECT_EQ(UnescapeValueEncodedName("U__a__b"), "a_b");
  EXPECT_EQ(UnescapeValueEncodedName("U___2E__2e_"), "..");
  EXPECT_EQ(UnescapeValueEncodedName("U__caf_e9_"), "caf\xc3\xa9");
  EXPECT_EQ(UnescapeValueEncodedName("U___65e5__672c_"), "\xe6\x97\xa5\xe6\x9c\xac");
  EXPECT_EQ(UnescapeValueEncodedName("U___1f600_"), "\xf0\x9f\x98\x80");
  EXPECT_EQ(UnescapeValueEncodedName("U__"), "");
  // Not escaped, or not decodable: unchanged.
  EXPECT_EQ(UnescapeValueEncodedName("plain_name"), "plain_name");
  EXPECT_EQ(UnescapeValueEncodedName("U__bad_zz_"), "U__bad_zz_");
  EXPECT_EQ(UnescapeValueEncodedName("U__open_2e"), "U__open_2e");
  EXPECT_EQ(UnescapeValueEncodedName("U__trailing_"), "U__trailing_");
  EXPECT_EQ(UnescapeValueEncodedName("U___1234567_"), "U___1234567_");
  EXPECT_EQ(UnescapeValueEncodedName("U___d800_"), "U___d800_");
  EXPECT_EQ(UnescapeValueEncodedName("U___110000_"), "U___110000_");
}

}  // namespace
}  // namespace strata
