#include "server/api_json.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "src/sample.h"

namespace strata {
namespace {

TEST(SampleValueFormat, MatchesPrometheusExamples) {
  EXPECT_EQ(FormatSampleValue(1), "1");
  EXPECT_EQ(FormatSampleValue(0.5), "0.5");
  EXPECT_EQ(FormatSampleValue(1e-7), "1e-07");
  EXPECT_EQ(FormatSampleValue(1e21), "1e+21");
  EXPECT_EQ(FormatSampleValue(std::nan("")), "NaN");
  EXPECT_EQ(FormatSampleValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatSampleValue(-std::numeric_limits<double>::infinity()), "-Inf");
}

TEST(SampleValueFormat, EveryNaNIsNaN) {
  EXPECT_EQ(FormatSampleValue(StaleNaN()), "NaN");
  EXPECT_EQ(FormatSampleValue(-std::nan("")), "NaN");
  EXPECT_EQ(FormatSampleValue(std::bit_cast<double>(uint64_t{0xfff8000000000001})), "NaN");
}

TEST(SampleValueFormat, ZeroesKeepTheirSign) {
  EXPECT_EQ(FormatSampleValue(0.0), "0");
  EXPECT_EQ(FormatSampleValue(-0.0), "-0");
}

TEST(SampleValueFormat, ExponentThresholdBelow) {
  // 1e-6 itself is still fixed; anything smaller switches to exponent form.
  EXPECT_EQ(FormatSampleValue(1e-6), "0.000001");
  EXPECT_EQ(FormatSampleValue(-1e-6), "-0.000001");
  EXPECT_EQ(FormatSampleValue(1.5e-6), "0.0000015");
  EXPECT_EQ(FormatSampleValue(std::nextafter(1e-6, 0.0)), "9.999999999999997e-07");
  EXPECT_EQ(FormatSampleValue(9.999999e-7), "9.999999e-07");
  EXPECT_EQ(FormatSampleValue(-1.5e-7), "-1.5e-07");
  EXPECT_EQ(FormatSampleValue(4.35e-10), "4.35e-10");
}

TEST(SampleValueFormat, ExponentThresholdAbove) {
  EXPECT_EQ(FormatSampleValue(1e20), "100000000000000000000");
  EXPECT_EQ(FormatSampleValue(std::nextafter(1e21, 0.0)), "999999999999999900000");
  EXPECT_EQ(FormatSampleValue(1.5e21), "1.5e+21");
  EXPECT_EQ(FormatSampleValue(-1e21), "-1e+21");
  EXPECT_EQ(FormatSampleValue(1e100), "1e+100");
  EXPECT_EQ(FormatSampleValue(std::ldexp(1.0, 60)), "1152921504606847000");
  EXPECT_EQ(FormatSampleValue(std::ldexp(1.0, 69)), "590295810358705700000");
  EXPECT_EQ(FormatSampleValue(-std::ldexp(1.0, 69)), "-590295810358705700000");
  EXPECT_EQ(FormatSampleValue(1e15 + 0.25), "1000000000000000.2");
  EXPECT_EQ(FormatSampleValue(1234567890123456.5), "1234567890123456.5");
  EXPECT_EQ(FormatSampleValue(1.2345678901234567e20), "123456789012345670000");
  EXPECT_EQ(FormatSampleValue(1.2345e22), "1.2345e+22");
}

TEST(SampleValueFormat, ExtremeMagnitudes) {
  EXPECT_EQ(FormatSampleValue(std::numeric_limits<double>::max()), "1.7976931348623157e+308");
  EXPECT_EQ(FormatSampleValue(-std::numeric_limits<double>::max()), "-1.7976931348623157e+308");
  EXPECT_EQ(FormatSampleValue(std::numeric_limits<double>::min()), "2.2250738585072014e-308");
  EXPECT_EQ(FormatSampleValue(std::numeric_limits<double>::denorm_min()), "5e-324");
  EXPECT_EQ(FormatSampleValue(-std::numeric_limits<double>::denorm_min()), "-5e-324");
}

TEST(SampleValueFormat, ShortestDigitsInFixedForm) {
  EXPECT_EQ(FormatSampleValue(0.1), "0.1");
  EXPECT_EQ(FormatSampleValue(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(FormatSampleValue(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(FormatSampleValue(-2.5), "-2.5");
  EXPECT_EQ(FormatSampleValue(123456.789), "123456.789");
  EXPECT_EQ(FormatSampleValue(1435781451.781), "1435781451.781");
  EXPECT_EQ(FormatSampleValue(9007199254740992.0), "9007199254740992");
  EXPECT_EQ(FormatSampleValue(9007199254740993.0), "9007199254740992");
  EXPECT_EQ(FormatSampleValue(1e16), "10000000000000000");
  EXPECT_EQ(FormatSampleValue(12345678), "12345678");
  EXPECT_EQ(FormatSampleValue(0.000123), "0.000123");
}

// Properties over random bit patterns: the text round-trips to the same double, uses
// exponent form exactly outside [1e-6, 1e21), and has the exponent shape Go prints.
TEST(SampleValueFormat, RandomValuesRoundTripWithGoShape) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> exp10(-30, 30);
  for (int i = 0; i < 200000; ++i) {
    double v;
    if (i % 2 == 0) {
      v = std::bit_cast<double>(rng());
    } else {
      v = std::pow(10.0, exp10(rng)) * ((rng() & 1) ? 1 : -1);
    }
    if (std::isnan(v)) continue;
    std::string s = FormatSampleValue(v);
    if (std::isinf(v)) {
      ASSERT_EQ(s, v > 0 ? "+Inf" : "-Inf");
      continue;
    }
    double back;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), back);
    ASSERT_EQ(ec, std::errc()) << s;
    ASSERT_EQ(ptr, s.data() + s.size()) << s;
    ASSERT_EQ(std::bit_cast<uint64_t>(back), std::bit_cast<uint64_t>(v)) << s;
    double abs = std::fabs(v);
    bool want_exp = abs != 0 && (abs < 1e-6 || abs >= 1e21);
    size_t e = s.find('e');
    ASSERT_EQ(e != std::string::npos, want_exp) << s;
    if (want_exp) {
      ASSERT_TRUE(s[e + 1] == '+' || s[e + 1] == '-') << s;
      ASSERT_GE(s.size() - e - 2, 2u) << s;
      ASSERT_NE(s[e - 1], '.') << s;
    } else if (s.find('.') != std::string::npos) {
      ASSERT_NE(s.back(), '0') << s;
      ASSERT_NE(s.back(), '.') << s;
    }
  }
}

std::string Scalar(double v) {
  std::string out;
  AppendScalarValue(v, &out);
  return out;
}

std::string GoSeconds(int64_t ms) {
  std::string out;
  AppendGoSeconds(ms, &out);
  return out;
}

// Scalar results print their value with Go's 'f' format (promql.Scalar's MarshalJSON), never
// in exponent form, unlike vector and matrix samples.
TEST(ScalarValueFormat, IsFixedNotationWithShortestDigits) {
  EXPECT_EQ(Scalar(2), "2");
  EXPECT_EQ(Scalar(0.1), "0.1");
  EXPECT_EQ(Scalar(-0.0), "-0");
  EXPECT_EQ(Scalar(1e21), "1000000000000000000000");
  EXPECT_EQ(Scalar(1e-7), "0.0000001");
  EXPECT_EQ(Scalar(-1.5e-7), "-0.00000015");
  EXPECT_EQ(Scalar(std::ldexp(1.0, 70)), "1180591620717411300000");
  EXPECT_EQ(Scalar(1e300), "1" + std::string(300, '0'));
  EXPECT_EQ(Scalar(5e-324), "0." + std::string(323, '0') + "5");
  EXPECT_EQ(Scalar(std::numeric_limits<double>::max()),
            "17976931348623157" + std::string(292, '0'));
  EXPECT_EQ(Scalar(std::nan("")), "NaN");
  EXPECT_EQ(Scalar(HUGE_VAL), "+Inf");
  EXPECT_EQ(Scalar(-HUGE_VAL), "-Inf");
}

// The time of a scalar or string result is Go's encoding/json of float seconds: no trailing
// zeros, unlike vector and matrix timestamps.
TEST(ScalarTimeFormat, HasNoTrailingZeros) {
  EXPECT_EQ(GoSeconds(4000), "4");
  EXPECT_EQ(GoSeconds(1500), "1.5");
  EXPECT_EQ(GoSeconds(1050), "1.05");
  EXPECT_EQ(GoSeconds(1), "0.001");
  EXPECT_EQ(GoSeconds(-1500), "-1.5");
  EXPECT_EQ(GoSeconds(1435781451781), "1435781451.781");
  EXPECT_EQ(GoSeconds(1796219400500), "1796219400.5");
}

TEST(TimestampFormat, MatchesPrometheus) {
  EXPECT_EQ(FormatTimestamp(1435781451781), "1435781451.781");
  EXPECT_EQ(FormatTimestamp(2000), "2");
  EXPECT_EQ(FormatTimestamp(0), "0");
  EXPECT_EQ(FormatTimestamp(1), "0.001");
  EXPECT_EQ(FormatTimestamp(10), "0.010");
  EXPECT_EQ(FormatTimestamp(100), "0.100");
  EXPECT_EQ(FormatTimestamp(1500), "1.500");
  EXPECT_EQ(FormatTimestamp(1050), "1.050");
  EXPECT_EQ(FormatTimestamp(999), "0.999");
}

TEST(TimestampFormat, Negative) {
  EXPECT_EQ(FormatTimestamp(-1), "-0.001");
  EXPECT_EQ(FormatTimestamp(-1500), "-1.500");
  EXPECT_EQ(FormatTimestamp(-2000), "-2");
  EXPECT_EQ(FormatTimestamp(-1435781451781), "-1435781451.781");
}

TEST(TimestampFormat, Extremes) {
  EXPECT_EQ(FormatTimestamp(std::numeric_limits<int64_t>::max()), "9223372036854775.807");
  EXPECT_EQ(FormatTimestamp(std::numeric_limits<int64_t>::min()), "-9223372036854775.808");
}

TEST(TimestampFormat, RandomValuesParseBackToTheSameMilliseconds) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100000; ++i) {
    int64_t ms = static_cast<int64_t>(rng()) >> (rng() % 60);
    std::string s = FormatTimestamp(ms);
    bool neg = s[0] == '-';
    std::string_view body(s);
    if (neg) body.remove_prefix(1);
    size_t dot = body.find('.');
    uint64_t whole = 0, frac = 0;
    std::from_chars(body.data(), body.data() + std::min(dot, body.size()), whole);
    if (dot != std::string_view::npos) {
      ASSERT_EQ(body.size() - dot, 4u) << s;
      std::from_chars(body.data() + dot + 1, body.data() + body.size(), frac);
      ASSERT_NE(frac, 0u) << s;
    }
    uint64_t abs = whole * 1000 + frac;
    ASSERT_EQ(neg ? -static_cast<int64_t>(abs) : static_cast<int64_t>(abs), ms) << s;
  }
}

TEST(JsonString, EscapesLikeGo) {
  auto q = [](std::string_view s) {
    std::string out;
    AppendJsonString(s, &out);
    return out;
  };
  EXPECT_EQ(q("plain"), R"("plain")");
  EXPECT_EQ(q(""), R"("")");
  EXPECT_EQ(q("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(q("l1\nl2\r\t"), R"("l1\nl2\r\t")");
  EXPECT_EQ(q(std::string_view("\x00\x01\x1f", 3)), R"("\u0000\u0001\u001f")");
  EXPECT_EQ(q("<a>&"), R"("\u003ca\u003e\u0026")");
  EXPECT_EQ(q("\u2028\u2029"), R"("\u2028\u2029")");
  EXPECT_EQ(q("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"),
            "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"");
  EXPECT_EQ(q("\x7f"), "\"\x7f\"");
}

TEST(JsonString, ReplacesInvalidUtf8ByteByByte) {
  auto q = [](std::string_view s) {
    std::string out;
    AppendJsonString(s, &out);
    return out;
  };
  EXPECT_EQ(q("a\xff"
              "b"),
            R"("a\ufffdb")");
  EXPECT_EQ(q("\xc3"), R"("\ufffd")");                                // truncated sequence
  EXPECT_EQ(q("\xc0\x80"), R"("\ufffd\ufffd")");                      // overlong NUL
  EXPECT_EQ(q("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")");            // surrogate
  EXPECT_EQ(q("\xf4\x90\x80\x80"), R"("\ufffd\ufffd\ufffd\ufffd")");  // > U+10FFFF
}

TEST(JsonWriter, WritesNestedStructuresWithCommas) {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject()
      .Key("a")
      .Int(-3)
      .Key("b")
      .BeginArray()
      .Uint(1)
      .Bool(true)
      .Null()
      .BeginObject()
      .EndObject()
      .BeginArray()
      .EndArray()
      .EndArray()
      .Key("c")
      .String("x")
      .Key("d")
      .Double(0.25)
      .Key("e")
      .Double(std::nan(""))
      .Key("f")
      .Raw(R"({"z":1})")
      .EndObject();
  EXPECT_EQ(out, R"({"a":-3,"b":[1,true,null,{},[]],"c":"x","d":0.25,"e":null,"f":{"z":1}})");
}

TEST(JsonWriter, WritesSamplesAsPrometheusDoes) {
  std::string out;
  JsonWriter w(&out);
  w.BeginArray().SamplePair(1435781451781, 1).SamplePair(2000, 1e-7).EndArray();
  EXPECT_EQ(out, R"([[1435781451.781,"1"],[2,"1e-07"]])");
  out.clear();
  JsonWriter w2(&out);
  w2.BeginObject().Key("value").BeginArray().Timestamp(1500).SampleValue(-0.0).EndArray();
  w2.EndObject();
  EXPECT_EQ(out, R"({"value":[1.500,"-0"]})");
}

TEST(JsonWriter, WritesLabelSetsAsObjectsInLabelOrder) {
  std::string out;
  JsonWriter w(&out);
  Labels labels{{"job", "node"}, {"__name__", "up"}, {"path", "/a\"b<c>"}};
  w.BeginArray().LabelSet(labels).LabelSet(Labels()).EndArray();
  EXPECT_EQ(out, R"([{"__name__":"up","job":"node","path":"/a\"b\u003cc\u003e"},{}])");
  out.clear();
  JsonWriter w2(&out);
  std::vector<LabelView> views = {{"a", "1"}, {"b", "2"}};
  w2.BeginObject().Key("metric").LabelSet(views).Key("value").SamplePair(1000, 3).EndObject();
  EXPECT_EQ(out, R"({"metric":{"a":"1","b":"2"},"value":[1,"3"]})");
}

TEST(ApiEnvelope, SuccessWithoutAndWithWarnings) {
  std::string out;
  {
    JsonWriter w(&out);
    BeginApiSuccess(w);
    w.BeginObject().Key("resultType").String("scalar").Key("result").SamplePair(4000, 2);
    w.EndObject();
    EndApiSuccess(w);
  }
  EXPECT_EQ(out, R"({"status":"success","data":{"resultType":"scalar","result":[4,"2"]}})");
  out.clear();
  {
    JsonWriter w(&out);
    BeginApiSuccess(w);
    w.BeginArray().EndArray();
    std::vector<std::string> warnings = {"w1", "w\"2"};
    std::vector<std::string> infos = {"i1"};
    EndApiSuccess(w, warnings, infos);
  }
  EXPECT_EQ(out, R"({"status":"success","data":[],"warnings":["w1","w\"2"],"infos":["i1"]})");
}

TEST(ApiEnvelope, ErrorShape) {
  EXPECT_EQ(
      ApiErrorBody(ApiErrorType::kBadData, "invalid parameter \"start\": x"),
      R"({"status":"error","errorType":"bad_data","error":"invalid parameter \"start\": x"})");
}

TEST(ApiEnvelope, ErrorTypesAndCodes) {
  struct Case {
    absl::Status status;
    std::string_view type;
    int code;
  };
  const Case cases[] = {
      {absl::InvalidArgumentError("x"), "bad_data", 400},
      {absl::FailedPreconditionError("x"), "execution", 422},
      {absl::ResourceExhaustedError("x"), "execution", 422},
      {absl::DeadlineExceededError("x"), "timeout", 503},
      {absl::CancelledError("x"), "canceled", 499},
      {absl::NotFoundError("x"), "not_found", 404},
      {absl::UnavailableError("x"), "unavailable", 503},
      {absl::InternalError("x"), "internal", 500},
      {absl::UnknownError("x"), "internal", 500},
      {absl::DataLossError("x"), "internal", 500},
  };
  for (const Case& c : cases) {
    ApiErrorType t = ApiErrorTypeFromStatus(c.status);
    EXPECT_EQ(ApiErrorTypeName(t), c.type) << c.status;
    EXPECT_EQ(ApiErrorHttpCode(t), c.code) << c.status;
  }
}

}  // namespace
}  // namespace strata
