#include "query/lexer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace strata::promql {
namespace {

std::vector<TokenKind> Kinds(std::string_view q) {
  std::vector<Token> toks;
  LexError err;
  EXPECT_TRUE(Lex(q, &toks, &err)) << q << ": " << err.message;
  std::vector<TokenKind> out;
  for (const Token& t : toks) out.push_back(t.kind);
  return out;
}

std::vector<std::string> Texts(std::string_view q) {
  std::vector<Token> toks;
  LexError err;
  EXPECT_TRUE(Lex(q, &toks, &err)) << q << ": " << err.message;
  std::vector<std::string> out;
  for (const Token& t : toks) out.emplace_back(t.text);
  return out;
}

std::string LexFailure(std::string_view q) {
  std::vector<Token> toks;
  LexError err;
  if (Lex(q, &toks, &err)) return "OK";
  return std::to_string(err.pos) + ": " + err.message;
}

using K = TokenKind;

TEST(Lexer, SplitsAnExpression) {
  EXPECT_EQ(Kinds("sum by (job) (rate(x{a=~\"b\"}[5m]))"),
            (std::vector<K>{K::kIdentifier,   K::kIdentifier, K::kLeftParen,   K::kIdentifier,
                            K::kRightParen,   K::kLeftParen,  K::kIdentifier,  K::kLeftParen,
                            K::kIdentifier,   K::kLeftBrace,  K::kIdentifier,  K::kEqlRegex,
                            K::kString,       K::kRightBrace, K::kLeftBracket, K::kDuration,
                            K::kRightBracket, K::kRightParen, K::kRightParen,  K::kEOF}));
}

TEST(Lexer, Operators) {
  EXPECT_EQ(Kinds("+ - * / % ^ == != < <= > >= = @ , </ >/"),
            (std::vector<K>{K::kAdd, K::kSub, K::kMul, K::kDiv, K::kMod, K::kPow, K::kEqlc, K::kNeq,
                            K::kLss, K::kLte, K::kGtr, K::kGte, K::kAssign, K::kAt, K::kComma,
                            K::kTrimUpper, K::kTrimLower, K::kEOF}));
  EXPECT_EQ(Kinds("{a=~\"b\",c!~\"d\"}"),
            (std::vector<K>{K::kLeftBrace, K::kIdentifier, K::kEqlRegex, K::kString, K::kComma,
                            K::kIdentifier, K::kNeqRegex, K::kString, K::kRightBrace, K::kEOF}));
  // Regex matchers exist only inside braces.
  EXPECT_EQ(LexFailure("1 =~ 1"), "2: unexpected character after '=': '~'");
  EXPECT_EQ(LexFailure("1 !~ 1"), "2: unexpected character after '!': '~'");
}

TEST(Lexer, UnbalancedDelimiters) {
  EXPECT_EQ(LexFailure("(1))"), "4: unexpected right parenthesis ')'");
  EXPECT_EQ(LexFailure("((1)"), "4: unclosed left parenthesis");
  EXPECT_EQ(LexFailure("x[5m"), "4: unexpected end of input in duration expression");
  EXPECT_EQ(LexFailure("x]"), "1: unexpected right bracket ']'");
  EXPECT_EQ(LexFailure("x{a=\"b\""), "7: unexpected end of input inside braces");
  EXPECT_EQ(LexFailure("x}"), "1: unexpected character: '}'");
  std::vector<Token> toks;
  LexError err;
  EXPECT_FALSE(Lex("a + )", &toks, &err));
  // The tokens before the failure are kept and a kError marks the spot.
  ASSERT_EQ(toks.size(), 3u);
  EXPECT_EQ(toks[2].kind, TokenKind::kError);
  EXPECT_EQ(toks[2].pos, 5);
}

TEST(Lexer, NumbersAndDurations) {
  EXPECT_EQ(Kinds("1 1.5 .5 1e3 1E-3 0x1f 5m 1h30m 100ms 1y2w3d"),
            (std::vector<K>{K::kNumber, K::kNumber, K::kNumber, K::kNumber, K::kNumber, K::kNumber,
                            K::kDuration, K::kDuration, K::kDuration, K::kDuration, K::kEOF}));
  EXPECT_EQ(Texts("1h30m+5"), (std::vector<std::string>{"1h30m", "+", "5", ""}));
  EXPECT_EQ(LexFailure("1x"), "0: bad number or duration syntax: \"1x\"");
  EXPECT_EQ(LexFailure("0x"), "0: bad number or duration syntax: \"0x\"");
  EXPECT_EQ(LexFailure("2.5."), "0: bad number or duration syntax: \"2.5.\"");
  EXPECT_EQ(LexFailure("100..4"), "0: bad number or duration syntax: \"100..\"");
  EXPECT_EQ(LexFailure("0deadbeef"), "0: bad number or duration syntax: \"0de\"");
  EXPECT_EQ(LexFailure("5m30"), "0: bad number or duration syntax: \"5m30\"");
}

TEST(Lexer, ColonIsPartOfMetricNamesOutsideBrackets) {
  EXPECT_EQ(Kinds("job:rate:5m"), (std::vector<K>{K::kMetricIdentifier, K::kEOF}));
  EXPECT_EQ(Kinds("x[5m:1m]"),
            (std::vector<K>{K::kIdentifier, K::kLeftBracket, K::kDuration, K::kColon, K::kDuration,
                            K::kRightBracket, K::kEOF}));
}

TEST(Lexer, CommentsAndWhitespace) {
  EXPECT_EQ(Texts("a # comment + b\n\t+ c"), (std::vector<std::string>{"a", "+", "c", ""}));
  std::vector<Token> toks;
  LexError err;
  ASSERT_TRUE(Lex("  a\n b", &toks, &err));
  EXPECT_EQ(toks[0].pos, 2);
  EXPECT_EQ(toks[1].pos, 5);
}

TEST(Lexer, Strings) {
  EXPECT_EQ(*UnquoteString(R"("a\tb\\c\"")"), "a\tb\\c\"");
  EXPECT_EQ(*UnquoteString(R"('\'')"), "'");
  EXPECT_EQ(*UnquoteString(R"("\x41\101\u00e9")"), "AA\xc3\xa9");
  EXPECT_EQ(*UnquoteString("`a\\b`"), "a\\b");
  EXPECT_FALSE(UnquoteString(R"("\'")").ok());      // \' only inside '...'
  EXPECT_FALSE(UnquoteString(R"("\uD800")").ok());  // surrogate
  EXPECT_FALSE(UnquoteString(R"("\400")").ok());    // octal > 255
  EXPECT_FALSE(UnquoteString(R"("\x4")").ok());
  EXPECT_EQ(LexFailure("\"abc"), "0: unterminated quoted string");
  EXPECT_EQ(LexFailure("'a\nb'"), "0: unterminated quoted string");
  EXPECT_EQ(LexFailure("`abc"), "0: unterminated raw string");
  EXPECT_EQ(LexFailure("\"a\\"), "0: escape sequence not terminated");
  EXPECT_EQ(LexFailure("\"\\u00zz\""), "0: illegal character U+007A 'z' in escape sequence");
  EXPECT_EQ(LexFailure("\"\\uD800\""), "0: escape sequence is an invalid Unicode code point");
}

TEST(Lexer, StrayCharacters) {
  EXPECT_EQ(LexFailure("a $ b"), "2: unexpected character: '$'");
  EXPECT_EQ(LexFailure("a ! b"), "2: unexpected character after '!': ' '");
  EXPECT_EQ(LexFailure("\xc3\xa9"), "0: unexpected character: '\xc3\xa9'");
}

TEST(Lexer, DescribesTokensLikePrometheus) {
  std::vector<Token> toks;
  LexError err;
  ASSERT_TRUE(Lex("sum by foo 1 \"s\" + and ( 5m) @", &toks, &err));
  EXPECT_EQ(DescribeToken(toks[0]), "<aggr:sum>");
  EXPECT_EQ(DescribeToken(toks[1]), "<by>");
  EXPECT_EQ(DescribeToken(toks[2]), "identifier \"foo\"");
  EXPECT_EQ(DescribeToken(toks[3]), "number \"1\"");
  EXPECT_EQ(DescribeToken(toks[4]), "string \"\\\"s\\\"\"");
  EXPECT_EQ(DescribeToken(toks[5]), "<op:+>");
  EXPECT_EQ(DescribeToken(toks[6]), "<op:and>");
  EXPECT_EQ(DescribeToken(toks[7]), "\"(\"");
  EXPECT_EQ(DescribeToken(toks[8]), "duration \"5m\"");
  EXPECT_EQ(DescribeToken(toks[9]), "\")\"");
  EXPECT_EQ(DescribeToken(toks[10]), "<op:@>");
  EXPECT_EQ(DescribeToken(toks[11]), "end of input");
  ASSERT_TRUE(Lex("12345678901234 'a long string'", &toks, &err));
  EXPECT_EQ(DescribeToken(toks[0]), "number \"1234567890\"...");
  EXPECT_EQ(DescribeToken(toks[1]), "string \"'a long st\"...");
}

}  // namespace
}  // namespace strata::promql
