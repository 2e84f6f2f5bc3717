#include "src/text_format.h"

#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

using ::testing::HasSubstr;

TextParseResult MustParse(std::string_view text, const TextFormatOptions& options = {}) {
  absl::StatusOr<TextParseResult> r = ParseTextFormat(text, options);
  EXPECT_TRUE(r.ok()) << r.status() << "\n" << text;
  return r.ok() ? std::move(*r) : TextParseResult{};
}

std::string ErrorOf(std::string_view text, const TextFormatOptions& options = {}) {
  absl::StatusOr<TextParseResult> r = ParseTextFormat(text, options);
  EXPECT_FALSE(r.ok()) << text;
  if (r.ok()) return "";
  EXPECT_TRUE(absl::IsInvalidArgument(r.status()));
  return std::string(r.status().message());
}

TEST(TextFormat, ParsesAnExpositionWithMetadataCommentsAndTimestamps) {
  TextFormatOptions options;
  options.default_timestamp = 5000;
  TextParseResult r = MustParse(
      "# HELP http_requests_total The total number of HTTP requests.\n"
      "# TYPE http_requests_total counter\n"
      "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n"
      "http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\r\n"
      "\n"
      "# A plain comment\n"
      "  # TYPE process_start gauge\n"
      "process_start 1.5e9\n"
      "\tlabels_with_blanks { a = \"1\" , b=\"2\", } \t -7\n",
      options);
  EXPECT_EQ(r.lines, 9u);
  EXPECT_EQ(r.samples, 4u);
  ASSERT_EQ(r.series.size(), 4u);
  EXPECT_EQ(r.series[0].labels,
            (Labels{{"__name__", "http_requests_total"}, {"method", "post"}, {"code", "200"}}));
  ASSERT_EQ(r.series[0].samples.size(), 1u);
  EXPECT_EQ(r.series[0].samples[0].t, 1395066363000);
  EXPECT_EQ(r.series[0].samples[0].v, 1027);
  EXPECT_EQ(r.series[1].samples[0].v, 3);
  EXPECT_EQ(r.series[2].labels, (Labels{{"__name__", "process_start"}}));
  EXPECT_EQ(r.series[2].samples[0].t, 5000);  // no timestamp: the default
  EXPECT_EQ(r.series[2].samples[0].v, 1.5e9);
  EXPECT_EQ(r.series[3].labels,
            (Labels{{"__name__", "labels_with_blanks"}, {"a", "1"}, {"b", "2"}}));
  EXPECT_EQ(r.series[3].samples[0].v, -7);
  ASSERT_EQ(r.metadata.size(), 2u);
  EXPECT_EQ(r.metadata[0].metric, "http_requests_total");
  EXPECT_EQ(r.metadata[0].type, "counter");
  EXPECT_EQ(r.metadata[0].help, "The total number of HTTP requests.");
  EXPECT_EQ(r.metadata[1].metric, "process_start");
  EXPECT_EQ(r.metadata[1].type, "gauge");
  EXPECT_EQ(r.metadata[1].help, "");
}

TEST(TextFormat, UnescapesValuesAndHelpAndReadsQuotedUtf8Names) {
  TextParseResult r = MustParse(
      "# HELP m A \\\\ backslash\\nand a newline, \\q kept\n"
      "# TYPE m untyped\n"
      "m{path=\"C:\\\\dir\\\\\",msg=\"say \\\"hi\\\"\\nbye\"} 1 10\n"
      "{\"my.metric\", \"läbel.name\"=\"välue\"} 2 10\n"
      "{__name__=\"from_label\"} 3 10\n"
      "m{empty=\"\",x=\"y\"} 4 10\n");
  ASSERT_EQ(r.series.size(), 4u);
  EXPECT_EQ(r.series[0].labels.Get("path"), "C:\\dir\\");
  EXPECT_EQ(r.series[0].labels.Get("msg"), "say \"hi\"\nbye");
  EXPECT_EQ(r.series[1].labels, (Labels{{"__name__", "my.metric"}, {"läbel.name", "välue"}}));
  EXPECT_EQ(r.series[2].labels, (Labels{{"__name__", "from_label"}}));
  // An empty value means the label is absent.
  EXPECT_EQ(r.series[3].labels, (Labels{{"__name__", "m"}, {"x", "y"}}));
  ASSERT_EQ(r.metadata.size(), 1u);
  EXPECT_EQ(r.metadata[0].help, "A \\ backslash\nand a newline, \\q kept");
  EXPECT_EQ(r.metadata[0].type, "unknown");
}

TEST(TextFormat, SpecialValues) {
  TextParseResult r = MustParse(
      "a NaN 1\nb +Inf 1\nc -Inf 1\nd inf 1\ne -infinity 1\nf nan 1\ng .5 1\nh 1. 1\n"
      "i -0 1\nj 1e-400 1\nk +3 1\n");
  ASSERT_EQ(r.series.size(), 11u);
  EXPECT_TRUE(std::isnan(r.series[0].samples[0].v));
  EXPECT_EQ(r.series[1].samples[0].v, std::numeric_limits<double>::infinity());
  EXPECT_EQ(r.series[2].samples[0].v, -std::numeric_limits<double>::infinity());
  EXPECT_EQ(r.series[3].samples[0].v, std::numeric_limits<double>::infinity());
  EXPECT_EQ(r.series[4].samples[0].v, -std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(r.series[5].samples[0].v));
  EXPECT_EQ(r.series[6].samples[0].v, 0.5);
  EXPECT_EQ(r.series[7].samples[0].v, 1);
  EXPECT_TRUE(std::signbit(r.series[8].samples[0].v));
  EXPECT_EQ(r.series[9].samples[0].v, 0);  // underflow rounds to zero, as Go does
  EXPECT_EQ(r.series[10].samples[0].v, 3);
}

TEST(TextFormat, ErrorsNameTheLineTheColumnAndTheProblem) {
  struct Case {
    std::string text;
    std::string error;
  };
  const Case cases[] = {
      {"ok 1\nfoo{job \"x\"} 1\n", "line 2, column 9: expected '=' after label name \"job\""},
      {"foo{job=x} 1", "line 1, column 9: expected '\"' to start the value of label \"job\""},
      {"foo{job=\"x} 1",
       "line 1, column 9: the value of label \"job\" is missing its closing "
       "quote"},
      {"foo{job=\"x\" 1", "line 1, column 13: expected ',' or '}' after \"job\""},
      {"foo{job=\"x\",", "line 1, column 13: the label set is missing its closing '}'"},
      {"foo{job=\"a\\tb\"} 1",
       "line 1, column 11: invalid escape sequence \\t in the value of "
       "label \"job\""},
      {"foo{9job=\"x\"} 1", "line 1, column 5: expected a label name, got \"9\""},
      {"foo", "line 1, column 4: the sample has no value"},
      {"foo{}", "line 1, column 6: the sample has no value"},
      {"foo abc", "line 1, column 5: invalid value \"abc\": expected a float, NaN, +Inf or -Inf"},
      {"foo 1e999", "line 1, column 5: value \"1e999\" is out of range for a float"},
      {"foo 0x10", "invalid value \"0x10\""},
      {"foo 1 1.5",
       "line 1, column 7: invalid timestamp \"1.5\": expected an integer number of "
       "milliseconds"},
      {"foo 1 99999999999999999999", "invalid timestamp"},
      {"foo 1 2 3", "line 1, column 9: unexpected text after the timestamp: \"3\""},
      {"foo\"bar 1", "line 1, column 4: expected a blank before the value"},
      {"9foo 1", "line 1, column 1: expected a metric name or '{', got \"9\""},
      {"{job=\"x\"} 1", "line 1: the sample has no metric name"},
      {"foo{__name__=\"bar\"} 1", "line 1: duplicate label name \"__name__\""},
      {"foo{a=\"1\",a=\"2\"} 1", "line 1: duplicate label name \"a\""},
      {"{\"a\",\"b\"} 1", "line 1, column 6: the metric name is given twice"},
      {"foo{\"\"=\"x\"} 1", "line 1, column 5: empty label name"},
      {"foo{a=\"\xff\"} 1", "line 1: the value of label \"a\" is not valid UTF-8"},
      {"# TYPE foo countr\n", "line 1, column 12: unknown metric type \"countr\""},
      {"# HELP\n", "line 1, column 7: HELP without a metric name"},
      {"a 1 5\nb 1 5\na 2 6\na 3 5\n",
       "lines 1 and 4: two different values for series {__name__=\"a\"} at timestamp 5"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(ErrorOf(c.text), HasSubstr(c.error)) << c.text;
  }
  TextFormatOptions limits;
  limits.max_labels_per_series = 2;
  limits.max_label_value_bytes = 4;
  EXPECT_THAT(ErrorOf("ok{a=\"1\"} 1\nfoo{a=\"1\",b=\"2\"} 1", limits),
              HasSubstr("line 2: 3 labels, more than the limit of 2"));
  EXPECT_THAT(ErrorOf("foo{a=\"12345\"} 1", limits),
              HasSubstr("line 1: the value of label \"a\" is 5 bytes, longer than the limit of 4"));
}

// A line whose label set equals an earlier line's is only looked up; a label set that
// differs in any way (a repeated name, an extra label, a byte of a value) is checked whole.
TEST(TextFormat, RepeatedSeriesAreLookedUpAndEveryOtherLabelSetIsChecked) {
  const std::string ok = "a{x=\"1\"} 1 1\n{\"a\",x=\"1\",e=\"\"} 2 2\na{ x = \"1\" , } 3 3\n";
  TextParseResult r = MustParse(ok);
  ASSERT_EQ(r.series.size(), 1u);
  EXPECT_EQ(r.series[0].labels.ToString(), "{__name__=\"a\", x=\"1\"}");
  EXPECT_EQ(r.series[0].samples.size(), 3u);
  TextFormatOptions limits;
  limits.max_labels_per_series = 2;
  limits.max_label_value_bytes = 4;
  const std::pair<std::string, std::string> cases[] = {
      {ok + "a{x=\"1\",x=\"1\"} 4 4\n", "line 4: duplicate label name \"x\""},
      {ok + "a{x=\"1\",y=\"2\"} 4 4\n", "line 4: 3 labels, more than the limit of 2"},
      {ok + "a{x=\"12345\"} 4 4\n", "line 4: the value of label \"x\" is 5 bytes"},
      {ok + "a{x=\"\xff\"} 4 4\n", "line 4: the value of label \"x\" is not valid UTF-8"},
      {ok + "{x=\"1\"} 4 4\n", "line 4: the sample has no metric name"},
  };
  for (const auto& [text, error] : cases) {
    EXPECT_THAT(ErrorOf(text, limits), HasSubstr(error)) << text;
  }
}

TEST(TextFormat, SortsEachSeriesByTimeAndDropsExactRepeats) {
  TextParseResult r = MustParse("a 3 30\nb 1 10\na 1 10\na 2 20\na 1 10\nb NaN 5\nb NaN 5\n");
  ASSERT_EQ(r.series.size(), 2u);
  ASSERT_EQ(r.series[0].samples.size(), 3u);
  EXPECT_EQ(r.series[0].samples[0].t, 10);
  EXPECT_EQ(r.series[0].samples[1].t, 20);
  EXPECT_EQ(r.series[0].samples[2].t, 30);
  ASSERT_EQ(r.series[1].samples.size(), 2u);
  EXPECT_EQ(r.series[1].samples[0].t, 5);
  EXPECT_EQ(r.samples, 5u);
}

TEST(TextFormat, ExtraLabelsReplaceAddAndRemove) {
  TextFormatOptions options;
  options.extra_labels = {{"job", "imported"}, {"env", "prod"}, {"drop", ""}};
  TextParseResult r = MustParse("m{job=\"orig\",drop=\"x\",keep=\"y\"} 1 1\n", options);
  ASSERT_EQ(r.series.size(), 1u);
  EXPECT_EQ(r.series[0].labels,
            (Labels{{"__name__", "m"}, {"env", "prod"}, {"job", "imported"}, {"keep", "y"}}));
  options.extra_labels = {{"", "x"}};
  EXPECT_THAT(ErrorOf("m 1", options), HasSubstr("extra label with an empty name"));
}

// ---- Property tests ----

std::string RandomString(std::mt19937& rng, bool allow_empty) {
  static const std::vector<std::string> kPieces = {"a",  "b",  "z",    "_",  "0", "9", " ",
                                                   "\\", "\"", "\n",   "{",  "}", "=", ",",
                                                   "#",  "ä",  "日本", "\t", "'"};
  size_t n = rng() % 6 + (allow_empty ? 0 : 1);
  std::string s;
  for (size_t i = 0; i < n; ++i) s += kPieces[rng() % kPieces.size()];
  return s;
}

std::string RandomName(std::mt19937& rng, bool metric) {
  if (rng() % 4 == 0) {
    return RandomString(rng, false);  // any UTF-8: written quoted
  }
  static const std::string kStart = "abcxyzABC_";
  static const std::string kRest = "abcxyz_019";
  std::string s(1, kStart[rng() % kStart.size()]);
  if (metric && rng() % 5 == 0) s += ':';
  size_t n = rng() % 8;
  for (size_t i = 0; i < n; ++i) s += kRest[rng() % kRest.size()];
  return s;
}

double RandomValue(std::mt19937& rng) {
  switch (rng() % 8) {
    case 0:
      return std::numeric_limits<double>::quiet_NaN();
    case 1:
      return std::numeric_limits<double>::infinity();
    case 2:
      return -std::numeric_limits<double>::infinity();
    case 3:
      return static_cast<double>(static_cast<int>(rng() % 2000) - 1000);
    case 4:
      return std::ldexp(static_cast<double>(rng()), static_cast<int>(rng() % 600) - 300);
    default:
      return std::uniform_real_distribution<double>(-1e6, 1e6)(rng);
  }
}

TEST(TextFormat, RandomValidBodiesRoundTrip) {
  std::mt19937 rng(12345);
  for (int round = 0; round < 300; ++round) {
    // The model: label set -> time -> value.
    std::map<std::string, std::map<Timestamp, double>> model;
    std::map<std::string, Labels> labels_of;
    std::string body;
    const Timestamp default_t = 777;
    int series = static_cast<int>(rng() % 8) + 1;
    std::vector<Labels> sets;
    for (int i = 0; i < series; ++i) {
      std::vector<std::pair<std::string, std::string>> pairs;
      pairs.emplace_back("__name__", RandomName(rng, true));
      int n = static_cast<int>(rng() % 4);
      for (int l = 0; l < n; ++l) {
        std::string name = RandomName(rng, false);
        if (name == "__name__") continue;
        pairs.emplace_back(name, RandomString(rng, true));
      }
      sets.push_back(Labels::FromPairs(pairs));
    }
    int lines = static_cast<int>(rng() % 30) + 1;
    for (int i = 0; i < lines; ++i) {
      if (rng() % 10 == 0) body += "# a comment line\n";
      if (rng() % 10 == 0) body += "\n";
      const Labels& ls = sets[rng() % sets.size()];
      std::optional<Timestamp> t;
      if (rng() % 4 != 0) t = static_cast<Timestamp>(rng() % 100) * 1000 - 20000;
      Timestamp when = t.value_or(default_t);
      auto& points = model[ls.encoded()];
      if (points.count(when)) continue;  // one value per time: repeats are tested elsewhere
      double v = RandomValue(rng);
      points[when] = v;
      labels_of[ls.encoded()] = ls;
      AppendTextSample(ls, v, t, &body);
    }
    TextFormatOptions options;
    options.default_timestamp = default_t;
    absl::StatusOr<TextParseResult> r = ParseTextFormat(body, options);
    ASSERT_TRUE(r.ok()) << r.status() << "\n" << body;
    size_t total = 0;
    for (const auto& [key, points] : model) total += points.size();
    EXPECT_EQ(r->samples, total);
    ASSERT_EQ(r->series.size(), model.size()) << body;
    for (const TextSeries& s : r->series) {
      auto it = model.find(s.labels.encoded());
      ASSERT_NE(it, model.end()) << s.labels.ToString() << "\n" << body;
      ASSERT_EQ(s.samples.size(), it->second.size());
      size_t i = 0;
      for (const auto& [t, v] : it->second) {
        EXPECT_EQ(s.samples[i].t, t);
        if (std::isnan(v)) {
          EXPECT_TRUE(std::isnan(s.samples[i].v));
        } else {
          EXPECT_EQ(s.samples[i].v, v) << body;
        }
        ++i;
      }
    }
  }
}

// Whatever the bytes, the parser answers (an error or a result that keeps its promises)
// and never crashes; run under the sanitizers in CI.
TEST(TextFormat, GarbageNeverCrashes) {
  std::mt19937 rng(99);
  auto check = [](std::string_view text) {
    absl::StatusOr<TextParseResult> r = ParseTextFormat(text);
    if (!r.ok()) {
      EXPECT_TRUE(absl::IsInvalidArgument(r.status()));
      EXPECT_THAT(std::string(r.status().message()), HasSubstr("line"));
      return;
    }
    size_t total = 0;
    for (const TextSeries& s : r->series) {
      EXPECT_TRUE(ValidateLabels(s.labels, /*require_name=*/true).ok()) << s.labels.ToString();
      for (size_t i = 1; i < s.samples.size(); ++i) {
        EXPECT_LT(s.samples[i - 1].t, s.samples[i].t);
      }
      total += s.samples.size();
    }
    EXPECT_EQ(total, r->samples);
  };
  // Pure noise, biased towards the format's special characters.
  static const std::string kAlphabet = "ab_:{}=\",# \t\n\\\r019.eE+-NaInf\xff\xc3";
  for (int i = 0; i < 3000; ++i) {
    std::string s;
    size_t n = rng() % 60;
    for (size_t j = 0; j < n; ++j) {
      s.push_back(rng() % 8 == 0 ? static_cast<char>(rng() % 256)
                                 : kAlphabet[rng() % kAlphabet.size()]);
    }
    check(s);
  }
  // Mutations of a valid body: flips, insertions, deletions and every truncation.
  std::string valid;
  AppendTextSample(Labels{{"__name__", "m"}, {"a", "x\"y\\z\n"}, {"b.c", "日本"}}, 1.5, 1000,
                   &valid);
  AppendTextSample(Labels{{"__name__", "n.m"}}, -std::numeric_limits<double>::infinity(),
                   std::nullopt, &valid);
  valid = "# HELP m help \\n text\n# TYPE m gauge\n" + valid;
  for (size_t cut = 0; cut <= valid.size(); ++cut) check(valid.substr(0, cut));
  for (int i = 0; i < 5000; ++i) {
    std::string s = valid;
    int edits = static_cast<int>(rng() % 4) + 1;
    for (int e = 0; e < edits && !s.empty(); ++e) {
      size_t at = rng() % s.size();
      switch (rng() % 3) {
        case 0:
          s[at] = kAlphabet[rng() % kAlphabet.size()];
          break;
        case 1:
          s.insert(s.begin() + static_cast<std::ptrdiff_t>(at),
                   kAlphabet[rng() % kAlphabet.size()]);
          break;
        default:
          s.erase(at, 1);
      }
    }
    check(s);
  }
}

}  // namespace
}  // namespace strata
