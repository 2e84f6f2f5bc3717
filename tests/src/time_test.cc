#include "src/time.h"

#include "gtest/gtest.h"

namespace strata {
namespace {

int64_t Ok(absl::StatusOr<int64_t> r) {
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : -1;
}

TEST(ParseApiTime, UnixSecondsRoundToMilliseconds) {
  EXPECT_EQ(Ok(ParseApiTime("1435781451.781")), 1435781451781);
  EXPECT_EQ(Ok(ParseApiTime("2")), 2000);
  EXPECT_EQ(Ok(ParseApiTime("0.0005")), 1);
  EXPECT_EQ(Ok(ParseApiTime("-1.5")), -1500);
  EXPECT_EQ(Ok(ParseApiTime("1e3")), 1000000);
  EXPECT_EQ(Ok(ParseApiTime("+4")), 4000);
}

TEST(ParseApiTime, Rfc3339WithFractionAndZone) {
  EXPECT_EQ(Ok(ParseApiTime("2015-07-01T20:10:51.781Z")), 1435781451781);
  EXPECT_EQ(Ok(ParseApiTime("2015-07-01T22:10:51.781+02:00")), 1435781451781);
  EXPECT_EQ(Ok(ParseApiTime("1970-01-01T00:00:00Z")), 0);
  EXPECT_EQ(Ok(ParseApiTime("-292273086-05-16T16:47:06Z")), kMinTime);
  EXPECT_EQ(Ok(ParseApiTime("292277025-08-18T07:12:54.999999999Z")), kMaxTime);
}

TEST(ParseApiTime, RejectsGarbageWithTheInputNamed) {
  for (const char* bad : {"", "abc", "2015-07-01", "12:00", "1.2.3", "NaN", "Inf", "1e300",
                          "2015-07-01t20:10:51Z", "2015-07-01T20:10:51z"}) {
    auto r = ParseApiTime(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().message(),
              std::string("cannot parse \"") + bad + "\" to a valid timestamp");
  }
}

TEST(ParseDuration, PrometheusUnitsInOrder) {
  EXPECT_EQ(Ok(ParseDuration("1h30m")), 5400000);
  EXPECT_EQ(Ok(ParseDuration("90s")), 90000);
  EXPECT_EQ(Ok(ParseDuration("1d")), 86400000);
  EXPECT_EQ(Ok(ParseDuration("2w")), 14 * 86400000LL);
  EXPECT_EQ(Ok(ParseDuration("1y")), 365 * 86400000LL);
  EXPECT_EQ(Ok(ParseDuration("1y2w3d4h5m6s7ms")),
            ((((365 + 14 + 3) * 24LL + 4) * 60 + 5) * 60 + 6) * 1000 + 7);
  EXPECT_EQ(Ok(ParseDuration("0")), 0);
  EXPECT_EQ(Ok(ParseDuration("0s")), 0);
  EXPECT_EQ(Ok(ParseDuration("500ms")), 500);
}

TEST(ParseDuration, RejectsBadInput) {
  for (const char* bad : {"", "5", "m", "5x", "1m1h", "1h1h", "-5m", "1.5h", " 5m", "5m "}) {
    auto r = ParseDuration(bad);
    EXPECT_FALSE(r.ok()) << bad;
  }
  EXPECT_EQ(ParseDuration("5x").status().message(), "not a valid duration string: \"5x\"");
  EXPECT_FALSE(ParseDuration("999999999999y").ok());
}

TEST(ParseApiDuration, FloatSecondsOrUnits) {
  EXPECT_EQ(Ok(ParseApiDuration("15")), 15000);
  EXPECT_EQ(Ok(ParseApiDuration("0.5")), 500);
  EXPECT_EQ(Ok(ParseApiDuration("1m")), 60000);
  auto bad = ParseApiDuration("fast");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "cannot parse \"fast\" to a valid duration");
  auto huge = ParseApiDuration("1e300");
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(std::string(huge.status().message()).find("overflows int64"), std::string::npos);
}

TEST(FormatDuration, CanonicalPrometheusForm) {
  EXPECT_EQ(FormatDuration(0), "0s");
  EXPECT_EQ(FormatDuration(5400000), "1h30m");
  EXPECT_EQ(FormatDuration(90000), "1m30s");
  EXPECT_EQ(FormatDuration(86400000), "1d");
  EXPECT_EQ(FormatDuration(7 * 86400000LL), "1w");
  EXPECT_EQ(FormatDuration(8 * 86400000LL), "8d");  // weeks only when exact
  EXPECT_EQ(FormatDuration(365 * 86400000LL), "1y");
  EXPECT_EQ(FormatDuration(1500), "1s500ms");
  EXPECT_EQ(FormatDuration(-300000), "-5m");
  for (int64_t ms : {1LL, 999LL, 61001LL, 3600000LL * 25, 86400000LL * 400 + 7}) {
    EXPECT_EQ(Ok(ParseDuration(FormatDuration(ms))), ms) << ms;
  }
}

}  // namespace
}  // namespace strata
