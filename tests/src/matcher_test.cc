#include "src/matcher.h"

#include <string>
#include <thread>
#include <vector>

#include "fmt/format.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

LabelMatcher M(MatchType t, std::string_view n, std::string_view v) {
  auto m = LabelMatcher::Make(t, n, v);
  EXPECT_TRUE(m.ok()) << m.status();
  return *m;
}

TEST(LabelMatcher, EqualityAndInequality) {
  auto eq = M(MatchType::kEqual, "job", "api");
  EXPECT_TRUE(eq.Matches("api"));
  EXPECT_FALSE(eq.Matches("api2"));
  EXPECT_FALSE(eq.MatchesEmpty());
  auto ne = M(MatchType::kNotEqual, "job", "api");
  EXPECT_FALSE(ne.Matches("api"));
  EXPECT_TRUE(ne.Matches(""));
  EXPECT_TRUE(ne.MatchesEmpty());
  EXPECT_TRUE(M(MatchType::kEqual, "job", "").MatchesEmpty());
}

TEST(LabelMatcher, RegexIsFullyAnchored) {
  auto re = M(MatchType::kRegexMatch, "x", "a");
  EXPECT_TRUE(re.Matches("a"));
  EXPECT_FALSE(re.Matches("ab"));
  EXPECT_FALSE(re.Matches("ba"));
  auto alt = M(MatchType::kRegexMatch, "x", "a|b.*");
  EXPECT_TRUE(alt.Matches("a"));
  EXPECT_TRUE(alt.Matches("bzz"));
  EXPECT_FALSE(alt.Matches("ab"));  // ^(?:a|b.*)$, not ^a|b.*$
  auto nre = M(MatchType::kRegexNoMatch, "x", "a.");
  EXPECT_TRUE(nre.Matches("a"));
  EXPECT_FALSE(nre.Matches("ab"));
  EXPECT_TRUE(nre.MatchesEmpty());
}

TEST(LabelMatcher, DotMatchesNewline) {
  EXPECT_TRUE(M(MatchType::kRegexMatch, "x", "a.b").Matches("a\nb"));
  EXPECT_TRUE(M(MatchType::kRegexMatch, "x", ".*").Matches("line1\nline2"));
}

TEST(LabelMatcher, LiteralAlternationsBecomeSetMatches) {
  auto m = M(MatchType::kRegexMatch, "code", "500|502|404");
  ASSERT_TRUE(m.SetMatches().has_value());
  EXPECT_EQ(*m.SetMatches(), (std::vector<std::string>{"404", "500", "502"}));
  EXPECT_TRUE(m.Matches("502"));
  EXPECT_FALSE(m.Matches("50"));
  auto esc = M(MatchType::kRegexMatch, "x", "a\\.b|c");
  ASSERT_TRUE(esc.SetMatches().has_value());
  EXPECT_TRUE(esc.Matches("a.b"));
  EXPECT_FALSE(esc.Matches("axb"));
  EXPECT_FALSE(M(MatchType::kRegexMatch, "x", "a.b").SetMatches().has_value());
  // The empty alternative matches the empty string.
  EXPECT_TRUE(M(MatchType::kRegexMatch, "x", "a|").MatchesEmpty());
}

TEST(LabelMatcher, LiteralPrefixFastPathAgreesWithRegex) {
  auto m = M(MatchType::kRegexMatch, "x", "api_.*");
  EXPECT_EQ(m.LiteralPrefix(), "api_");
  EXPECT_TRUE(m.Matches("api_v1"));
  EXPECT_FALSE(m.Matches("ap"));
  EXPECT_EQ(M(MatchType::kRegexMatch, "x", "ab?c").LiteralPrefix(), "a");
  EXPECT_EQ(M(MatchType::kRegexMatch, "x", "(?i)abc").LiteralPrefix(), "");
  EXPECT_TRUE(M(MatchType::kRegexMatch, "x", "(?i)abc").Matches("ABC"));
  EXPECT_EQ(M(MatchType::kRegexMatch, "x", "a.*|b").LiteralPrefix(), "");
  EXPECT_TRUE(M(MatchType::kRegexMatch, "x", "a.*|b").Matches("b"));
}

TEST(LabelMatcher, BadRegexIsAClearError) {
  auto m = LabelMatcher::Make(MatchType::kRegexMatch, "x", "a(b");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(m.status().message()).find("a(b"), std::string::npos);
}

TEST(LabelMatcher, PrintsInPromQLForm) {
  EXPECT_EQ(M(MatchType::kRegexNoMatch, "job", "a\"b").ToString(), "job!~\"a\\\"b\"");
  EXPECT_EQ(M(MatchType::kEqual, "a.b", "x").ToString(), "\"a.b\"=\"x\"");
}

TEST(LabelMatcher, AbsentLabelIsMatchedAsEmpty) {
  Labels l{{"__name__", "up"}};
  std::vector<LabelMatcher> ms{M(MatchType::kEqual, "__name__", "up"),
                               M(MatchType::kEqual, "job", "")};
  EXPECT_TRUE(MatchesAll(ms, l));
  ms.push_back(M(MatchType::kRegexMatch, "job", ".+"));
  EXPECT_FALSE(MatchesAll(ms, l));
}

// Compiled regexes are shared between matchers of the same pattern (a bounded cache): many
// patterns, each made twice and some made again after the cache was cleared, all match as
// their own regex, from several threads at once; a bad pattern stays an error when asked
// again.
TEST(LabelMatcher, RegexesStayTheirOwnThroughTheSharedCompiledForms) {
  auto run = [](int thread) {
    for (int round = 0; round < 2; ++round) {
      for (int i = 0; i < 1500; ++i) {
        const std::string pattern = fmt::format("v{}(-[a-c]+)?", i);
        LabelMatcher a = M(MatchType::kRegexMatch, "x", pattern);
        LabelMatcher b = M(MatchType::kRegexNoMatch, "x", pattern);
        const std::string yes = fmt::format("v{}-ab", i), no = fmt::format("v{}-ab", i + 1);
        EXPECT_TRUE(a.Matches(yes)) << pattern << " thread " << thread;
        EXPECT_FALSE(a.Matches(no)) << pattern;
        EXPECT_FALSE(b.Matches(yes)) << pattern;
        EXPECT_TRUE(b.Matches(no)) << pattern;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) threads.emplace_back(run, t);
  for (auto& t : threads) t.join();
  for (int i = 0; i < 2; ++i) {
    auto bad = LabelMatcher::Make(MatchType::kRegexMatch, "x", "a(b");
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace strata
