#include "query/parser.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "query/ast.h"
#include "query/printer.h"

namespace strata::promql {
namespace {

ExprPtr MustParse(std::string_view q, const ParserOptions& o = ParserOptions::AllFeatures()) {
  absl::StatusOr<ExprPtr> e = ParseExpr(q, o);
  EXPECT_TRUE(e.ok()) << q << ": " << e.status().message();
  return e.ok() ? *std::move(e) : nullptr;
}

std::string ParseError(std::string_view q, const ParserOptions& o = ParserOptions::AllFeatures()) {
  absl::StatusOr<ExprPtr> e = ParseExpr(q, o);
  if (e.ok()) return "OK: " + ToString(**e);
  return std::string(e.status().message());
}

std::string Reprint(std::string_view q) {
  ExprPtr e = MustParse(q);
  return e ? ToString(*e) : "";
}

struct EvalExpr {
  std::string file;
  int line;
  std::string query;
};

// The PromQL expressions of every `eval` line of the upstream test scripts.
std::vector<EvalExpr> UpstreamEvalExpressions() {
  std::vector<EvalExpr> out;
  const std::filesystem::path dir = STRATA_SHARED_DIR "/promql-tests/upstream";
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".test") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& path : files) {
    std::ifstream in(path);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
      ++n;
      // One file indents an eval line; the script runner accepts it.
      line.erase(0, line.find_first_not_of(" \t") == std::string::npos
                        ? line.size()
                        : line.find_first_not_of(" \t"));
      if (line.rfind("eval", 0) != 0) continue;
      std::istringstream words(line);
      std::string cmd, kind;
      words >> cmd >> kind;
      int skip = 0;
      if (kind == "instant") {
        skip = 2;  // at <t>
      } else if (kind == "range") {
        skip = 6;  // from <a> to <b> step <s>
      } else {
        ADD_FAILURE() << path << ":" << n << ": unknown eval line " << line;
        continue;
      }
      std::string w;
      for (int i = 0; i < skip; ++i) words >> w;
      std::string rest;
      std::getline(words, rest);
      size_t b = rest.find_first_not_of(" \t");
      rest = b == std::string::npos ? "" : rest.substr(b);
      out.push_back({path.filename().string(), n, rest});
    }
  }
  return out;
}

TEST(ParserUpstream, EveryEvalExpressionParsesAndRoundTrips) {
  std::vector<EvalExpr> exprs = UpstreamEvalExpressions();
  ASSERT_GT(exprs.size(), 2000u);
  int parsed = 0, round_tripped = 0;
  for (const EvalExpr& x : exprs) {
    absl::StatusOr<ExprPtr> e = ParseExpr(x.query, ParserOptions::AllFeatures());
    if (!e.ok()) {
      ADD_FAILURE() << x.file << ":" << x.line << ": " << x.query << "\n  " << e.status().message();
      continue;
    }
    ++parsed;
    const std::string printed = ToString(**e);
    absl::StatusOr<ExprPtr> again = ParseExpr(printed, ParserOptions::AllFeatures());
    if (!again.ok()) {
      ADD_FAILURE() << x.file << ":" << x.line << ": " << x.query << "\n  printed as " << printed
                    << "\n  which fails: " << again.status().message();
      continue;
    }
    if (!Equal(**e, **again) || ToString(**again) != printed) {
      ADD_FAILURE() << x.file << ":" << x.line << ": " << x.query << "\n  printed as " << printed
                    << "\n  reprinted as " << ToString(**again);
      continue;
    }
    ++round_tripped;
  }
  std::printf("upstream eval expressions: %zu, parsed: %d, round-tripped: %d\n", exprs.size(),
              parsed, round_tripped);
  if (const char* dump = std::getenv("STRATA_DUMP_PRINTED")) {
    std::ofstream out(dump);
    for (const EvalExpr& x : exprs) {
      absl::StatusOr<ExprPtr> e = ParseExpr(x.query, ParserOptions::AllFeatures());
      if (e.ok()) out << x.query << "\n  => " << ToString(**e) << "\n";
    }
  }
  EXPECT_EQ(parsed, static_cast<int>(exprs.size()));
  EXPECT_EQ(round_tripped, parsed);
}

TEST(Parser, PrecedenceAndAssociativity) {
  EXPECT_EQ(Reprint("1 + 2 * 3"), "1 + 2 * 3");
  ExprPtr e = MustParse("a + b * c");
  ASSERT_EQ(e->kind(), NodeKind::kBinary);
  EXPECT_EQ(e->As<Binary>().op, BinaryOp::kAdd);
  EXPECT_EQ(e->As<Binary>().rhs->As<Binary>().op, BinaryOp::kMul);

  // ^ is right-associative.
  e = MustParse("a ^ b ^ c");
  EXPECT_EQ(e->As<Binary>().lhs->kind(), NodeKind::kVectorSelector);
  EXPECT_EQ(e->As<Binary>().rhs->As<Binary>().op, BinaryOp::kPow);

  // - is left-associative.
  e = MustParse("a - b - c");
  EXPECT_EQ(e->As<Binary>().lhs->As<Binary>().op, BinaryOp::kSub);

  // or < and/unless < comparisons < + < * < ^.
  e = MustParse("a or b and c unless d == e + f * g ^ h");
  EXPECT_EQ(e->As<Binary>().op, BinaryOp::kOr);
  const auto& unless = e->As<Binary>().rhs->As<Binary>();
  EXPECT_EQ(unless.op, BinaryOp::kUnless);
  EXPECT_EQ(unless.lhs->As<Binary>().op, BinaryOp::kAnd);
  EXPECT_EQ(unless.rhs->As<Binary>().op, BinaryOp::kEql);

  // Unary minus binds looser than ^ and tighter than *.
  e = MustParse("-a ^ b");
  ASSERT_EQ(e->kind(), NodeKind::kUnary);
  EXPECT_EQ(e->As<Unary>().expr->As<Binary>().op, BinaryOp::kPow);
  e = MustParse("-a * b");
  ASSERT_EQ(e->kind(), NodeKind::kBinary);
  EXPECT_EQ(e->As<Binary>().lhs->kind(), NodeKind::kUnary);

  // A negative number literal is folded.
  e = MustParse("-1");
  ASSERT_EQ(e->kind(), NodeKind::kNumberLiteral);
  EXPECT_EQ(e->As<NumberLiteral>().value, -1);
  EXPECT_EQ(e->type(), ValueType::kScalar);
}

TEST(Parser, NumberLiterals) {
  auto value = [](std::string_view q) {
    ExprPtr e = MustParse(q);
    return e ? e->As<NumberLiteral>().value : -12345.0;
  };
  EXPECT_EQ(value("1"), 1);
  EXPECT_EQ(value("1.5e3"), 1500);
  EXPECT_EQ(value(".5"), 0.5);
  EXPECT_EQ(value("0x1F"), 31);
  EXPECT_EQ(value("+5"), 5);
  EXPECT_EQ(value("-Inf"), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(value("iNf"), std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(value("NaN")));
  EXPECT_TRUE(std::isnan(value("nan")));
  EXPECT_EQ(value("1m"), 60);  // durations are numbers of seconds
  EXPECT_EQ(value("1h30m"), 5400);
}

TEST(Parser, StringLiterals) {
  auto value = [](std::string_view q) {
    ExprPtr e = MustParse(q);
    return e ? e->As<StringLiteral>().value : "<error>";
  };
  EXPECT_EQ(value(R"("a\nb")"), "a\nb");
  EXPECT_EQ(value(R"('it\'s')"), "it's");
  EXPECT_EQ(value(R"("\x41\u00e9\U0001F600\101")"),
            "A\xc3\xa9\xf0\x9f\x98\x80"
            "A");
  EXPECT_EQ(value(R"(`raw\n`)"), "raw\\n");
  EXPECT_EQ(ParseError(R"("bad \q")"), R"(1:1: parse error: unknown escape sequence U+0071 'q')");
  EXPECT_EQ(ParseError(R"("unterminated)"), "1:1: parse error: unterminated quoted string");
}

TEST(Parser, Selectors) {
  ExprPtr e = MustParse(R"(foo{a="b", c!~"d.*",})");
  const auto& vs = e->As<VectorSelector>();
  EXPECT_EQ(vs.name, "foo");
  ASSERT_EQ(vs.matchers.size(), 3u);
  EXPECT_EQ(vs.matchers[0].ToString(), R"(__name__="foo")");
  EXPECT_EQ(vs.pos, (PosRange{0, 21}));

  e = MustParse(R"({"my.metric", "a.b"="x"})");
  EXPECT_EQ(e->As<VectorSelector>().name, "");
  ASSERT_EQ(e->As<VectorSelector>().matchers.size(), 2u);
  EXPECT_EQ(e->As<VectorSelector>().matchers[0].ToString(), R"(__name__="my.metric")");
  EXPECT_EQ(e->As<VectorSelector>().matchers[1].ToString(), R"("a.b"="x")");
  EXPECT_EQ(ToString(*e), R"({"a.b"="x",__name__="my.metric"})");
  EXPECT_EQ(ParseError(R"(foo{"bar"})"),
            "1:1: parse error: metric name must not be set twice: \"foo\" or \"bar\"");

  e = MustParse("rate(x[5m] offset -1m @ 100)");
  const auto& ms = e->As<Call>().args[0]->As<MatrixSelector>();
  EXPECT_EQ(ms.range.ms, 300000);
  EXPECT_EQ(ms.vector_selector().offset.ms, -60000);
  EXPECT_EQ(ms.vector_selector().at.kind, AtKind::kTimestamp);
  EXPECT_EQ(ms.vector_selector().at.timestamp_ms, 100000);

  e = MustParse("x @ start()");
  EXPECT_EQ(e->As<VectorSelector>().at.kind, AtKind::kStart);
  e = MustParse("x[10]");
  EXPECT_EQ(e->As<MatrixSelector>().range.ms, 10000);
}

TEST(Parser, Subqueries) {
  ExprPtr e = MustParse("max_over_time(rate(x[1m])[5m:] @ end() offset 1m)");
  const auto& sq = e->As<Call>().args[0]->As<Subquery>();
  EXPECT_FALSE(sq.has_step);
  EXPECT_EQ(sq.range.ms, 300000);
  EXPECT_EQ(sq.at.kind, AtKind::kEnd);
  EXPECT_EQ(sq.offset.ms, 60000);
  e = MustParse("x[1h:0s]");
  EXPECT_FALSE(e->As<Subquery>().has_step);
  EXPECT_EQ(ParseError("x[1h:-1m]"), "1:3: parse error: subquery step must be greater than 0");
  EXPECT_EQ(ParseError("x @ Inf"),
            "1:1: parse error: timestamp out of bounds for @ modifier: +Inf");
  e = MustParse("x[1h:5m]");
  EXPECT_TRUE(e->As<Subquery>().has_step);
  EXPECT_EQ(e->As<Subquery>().step.ms, 300000);
  EXPECT_EQ(e->type(), ValueType::kMatrix);
}

TEST(Parser, DurationExpressions) {
  ExprPtr e = MustParse("x[5m+1m]");
  const Duration& r = e->As<MatrixSelector>().range;
  EXPECT_EQ(r.ms, 360000);
  ASSERT_NE(r.expr, nullptr);
  EXPECT_TRUE(r.IsConstant());

  e = MustParse("x[min_of(5m, 2*range())]");
  const Duration& d = e->As<MatrixSelector>().range;
  EXPECT_FALSE(d.IsConstant());
  EXPECT_EQ(*d.Resolve({0, 60000, 1000}), 120000);
  EXPECT_EQ(*d.Resolve({0, 3600000, 1000}), 300000);

  // Without parentheses only the first term belongs to the offset.
  e = MustParse("x offset 100 + 2");
  ASSERT_EQ(e->kind(), NodeKind::kBinary);
  EXPECT_EQ(e->As<Binary>().lhs->As<VectorSelector>().offset.ms, 100000);
  e = MustParse("x offset (100 + 2)");
  EXPECT_EQ(e->As<VectorSelector>().offset.ms, 102000);
  e = MustParse("x offset -step()");
  EXPECT_EQ(*e->As<VectorSelector>().offset.Resolve({0, 0, 5000}), -5000);
  EXPECT_EQ(Reprint("x[30m1s-30m1s % 1m]"), "x[30m1s - 30m1s % 1m]");
  EXPECT_EQ(ParseError("x[1e30]"), "1:3: parse error: duration out of range");
  EXPECT_EQ(ParseError("x offset (1e30 * 2)"), "1:10: parse error: duration out of range");
  EXPECT_EQ(ParseError("x[5m-10m]"), "1:3: parse error: duration must be greater than 0");
}

TEST(Parser, VectorMatching) {
  ExprPtr e = MustParse("a + on (b, c) group_left (d) e");
  const auto& b = e->As<Binary>();
  ASSERT_TRUE(b.matching.has_value());
  EXPECT_TRUE(b.matching->on);
  EXPECT_EQ(b.matching->matching_labels, (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(b.matching->card, VectorMatchCard::kManyToOne);
  EXPECT_EQ(b.matching->include, (std::vector<std::string>{"d"}));

  e = MustParse("a and b");
  EXPECT_EQ(e->As<Binary>().matching->card, VectorMatchCard::kManyToMany);
  e = MustParse("a > bool 1");
  EXPECT_TRUE(e->As<Binary>().return_bool);
  EXPECT_FALSE(e->As<Binary>().matching.has_value());
  e = MustParse("a + fill_left(5) fill_right(7) b");
  EXPECT_EQ(*e->As<Binary>().matching->fill_left, 5);
  EXPECT_EQ(*e->As<Binary>().matching->fill_right, 7);
}

TEST(Parser, Aggregations) {
  ExprPtr e = MustParse("sum by (job) (rate(x[5m]))");
  EXPECT_EQ(e->As<Aggregate>().grouping, (std::vector<std::string>{"job"}));
  e = MustParse("sum(x) without (a, \"b.c\",)");
  EXPECT_TRUE(e->As<Aggregate>().without);
  EXPECT_EQ(e->As<Aggregate>().grouping, (std::vector<std::string>{"a", "b.c"}));
  e = MustParse("topk(3, x)");
  EXPECT_EQ(e->As<Aggregate>().param->As<NumberLiteral>().value, 3);
  e = MustParse("count_values(\"v\", x)");
  EXPECT_EQ(e->As<Aggregate>().param->As<StringLiteral>().value, "v");
  e = MustParse("SUM(x)");
  EXPECT_EQ(e->As<Aggregate>().op, AggregateOp::kSum);
}

TEST(Parser, KeywordsAsMetricNames) {
  // Aggregation and some other keywords are metric names where an operand is expected.
  EXPECT_EQ(Reprint("foo * sum"), "foo * sum");
  EXPECT_EQ(Reprint("offset{step=\"1s\"}[5m]"), "offset{step=\"1s\"}[5m]");
  EXPECT_EQ(Reprint("by + without"), "by + without");
  EXPECT_EQ(Reprint("anchored{job=\"x\"}"), "anchored{job=\"x\"}");
  EXPECT_EQ(Reprint("x + fill"), "x + fill");
  EXPECT_EQ(Reprint("sum{a=\"b\"} offset 1m"), "sum{a=\"b\"} offset 1m");
}

TEST(Parser, Comments) {
  ExprPtr e = MustParse("# leading\nsum(x) # trailing");
  EXPECT_EQ(e->kind(), NodeKind::kAggregate);
}

TEST(ParserErrors, WordingAndPosition) {
  EXPECT_EQ(ParseError("1 +"), "1:4: parse error: unexpected end of input");
  EXPECT_EQ(ParseError("foo +* bar"), "1:6: parse error: unexpected <op:*>");
  EXPECT_EQ(ParseError("sum(x"), "1:6: parse error: unclosed left parenthesis");
  EXPECT_EQ(ParseError("sum(x y)"),
            "1:7: parse error: unexpected identifier \"y\" in argument list, expected \",\" or "
            "\")\"");
  // A syntax error before a lexing error is reported first.
  EXPECT_EQ(ParseError("a b $"), "1:3: parse error: unexpected identifier \"b\"");
  EXPECT_EQ(ParseError("1 =~ 1"), "1:3: parse error: unexpected character after '=': '~'");
  EXPECT_EQ(ParseError("2.5."), "1:1: parse error: bad number or duration syntax: \"2.5.\"");
  EXPECT_EQ(ParseError("x offset"),
            "1:9: parse error: unexpected end of input in offset, expected number, duration, "
            "step(), or range()");
  EXPECT_EQ(ParseError("x @ foo"),
            "1:5: parse error: unexpected identifier \"foo\" in @, expected timestamp");
  EXPECT_EQ(ParseError("x[5m 1m]"),
            "1:6: parse error: unexpected duration \"1m\" in subquery or range, expected \":\" or "
            "\"]\"");
  EXPECT_EQ(ParseError("x[]"),
            "1:3: parse error: unexpected \"]\" in subquery or range selector, expected number, "
            "duration, step(), or range()");
  EXPECT_EQ(ParseError("x{a}"),
            "1:4: parse error: unexpected \"}\" in label matching, expected label matching "
            "operator");
  EXPECT_EQ(ParseError("x{a=b}"),
            "1:5: parse error: unexpected identifier \"b\" in label matching, expected string");
  EXPECT_EQ(ParseError("a - on(b) ignoring(c) d"), "1:11: parse error: unexpected <ignoring>");
  EXPECT_EQ(ParseError("@@"), "1:1: parse error: unexpected <op:@>");
  EXPECT_EQ(ParseError("1e999"),
            "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"1e999\": value "
            "out of range");
  EXPECT_EQ(ParseError("rate(x)"),
            "1:6: parse error: expected type range vector in call to function \"rate\", got "
            "instant vector");
  EXPECT_EQ(ParseError("rate()"),
            "1:1: parse error: expected 1 argument(s) in call to \"rate\", got 0");
  EXPECT_EQ(ParseError("round()"),
            "1:1: parse error: expected at least 1 argument(s) in call to \"round\", got 0");
  EXPECT_EQ(ParseError("round(x, 1, 2)"),
            "1:1: parse error: expected at most 2 argument(s) in call to \"round\", got 3");
  EXPECT_EQ(ParseError("nosuchfn(x)"), "1:1: parse error: unknown function with name \"nosuchfn\"");
  EXPECT_EQ(ParseError("1 > 2"),
            "1:3: parse error: comparisons between scalars must use BOOL modifier");
  EXPECT_EQ(ParseError("1 and x"),
            "1:1: parse error: set operator \"and\" not allowed in binary scalar expression");
  EXPECT_EQ(ParseError("x + bool y"),
            "1:3: parse error: bool modifier can only be used on comparison operators");
  EXPECT_EQ(ParseError("{}"),
            "1:1: parse error: vector selector must contain at least one non-empty matcher");
  EXPECT_EQ(ParseError("{a=~\".*\"}"),
            "1:1: parse error: vector selector must contain at least one non-empty matcher");
  EXPECT_EQ(ParseError("foo{__name__=\"bar\"}"),
            "1:1: parse error: metric name must not be set twice: \"foo\" or \"bar\"");
  EXPECT_EQ(ParseError("x[5m][5m]"), "1:6: parse error: ranges only allowed for vector selectors");
  EXPECT_EQ(ParseError("x[5m][5m:]"),
            "1:1: parse error: subquery is only allowed on instant vector, got matrix instead");
  EXPECT_EQ(ParseError("x offset 1m offset 2m"),
            "1:1: parse error: offset may not be set multiple times");
  EXPECT_EQ(ParseError("x @ 1 @ 2"),
            "1:1: parse error: @ <timestamp> may not be set multiple times");
  EXPECT_EQ(ParseError("sum(x) offset 1m"),
            "1:1: parse error: offset modifier must be preceded by an instant vector selector or "
            "range vector selector or a subquery");
  EXPECT_EQ(ParseError("-\"a\""),
            "1:1: parse error: unary expression only allowed on expressions of type scalar or "
            "instant vector, got \"string\"");
  EXPECT_EQ(
      ParseError("x[5m] + 1"),
      "1:1: parse error: binary expression must contain only scalar and instant vector types");
  EXPECT_EQ(ParseError("topk(x)"),
            "1:1: parse error: wrong number of arguments for aggregate expression provided, "
            "expected 2, got 1");
  EXPECT_EQ(ParseError("sum(x[5m])"),
            "1:5: parse error: expected type instant vector in aggregation expression, got range "
            "vector");
  EXPECT_EQ(ParseError("count_values(1, x)"),
            "1:14: parse error: expected type string in aggregation parameter, got scalar");
  EXPECT_EQ(ParseError("a and on (b) group_left c"),
            "1:1: parse error: no grouping allowed for \"and\" operation");
  EXPECT_EQ(ParseError("a + on (b) group_left (b) c"),
            "1:3: parse error: label \"b\" must not occur in ON and GROUP clause at once");
  EXPECT_EQ(ParseError("foo)"), "1:5: parse error: unexpected right parenthesis ')'");
  EXPECT_EQ(ParseError("foo ! bar"), "1:5: parse error: unexpected character after '!': ' '");
  EXPECT_EQ(ParseError("x\n  + $"), "2:5: parse error: unexpected character: '$'");
  EXPECT_EQ(ParseError(""), "1:1: parse error: no expression found in input");
}

// Inputs and messages as Prometheus' own parser tests state them.
TEST(ParserErrors, SameTextsAsPrometheus) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"}", "1:1: parse error: unexpected character: '}'"},
      {"some}", "1:5: parse error: unexpected character: '}'"},
      {"some{", "1:6: parse error: unexpected end of input inside braces"},
      {"some_metric{a:b=\"b\"}", "1:14: parse error: unexpected character inside braces: ':'"},
      {"foo{a*\"b\"}", "1:6: parse error: unexpected character inside braces: '*'"},
      {"foo{a>=\"b\"}", "1:6: parse error: unexpected character inside braces: '>'"},
      {"some_metric{a=\"\xff\"}", "1:15: parse error: invalid UTF-8 rune"},
      {"foo{gibberish}",
       "1:14: parse error: unexpected \"}\" in label matching, expected label matching operator"},
      {"foo{1}", "1:5: parse error: unexpected character inside braces: '1'"},
      {"foo{__name__ == \"bar\"}",
       "1:15: parse error: unexpected \"=\" in label matching, expected string"},
      {"foo{,}",
       "1:5: parse error: unexpected \",\" in label matching, expected identifier or \"}\""},
      {"foo{\"a\"=}", "1:9: parse error: unexpected \"}\" in label matching, expected string"},
      {"foo[5mm]", "1:5: parse error: bad number or duration syntax: \"5mm\""},
      {"foo[5m1]", "1:5: parse error: bad number or duration syntax: \"5m1\""},
      {"foo[5m:1m1]", "1:8: parse error: bad number or duration syntax: \"1m1\""},
      {"foo[5y1hs]", "1:5: parse error: unknown unit \"hs\" in duration \"5y1hs\""},
      {"foo[5m1h]", "1:5: parse error: not a valid duration string: \"5m1h\""},
      {"foo[0m]", "1:5: parse error: duration must be greater than 0"},
      {"foo[-1]", "1:5: parse error: duration must be greater than 0"},
      {"foo[\"5m\"]", "1:5: parse error: unexpected character in duration expression: '\"'"},
      {"foo{bar=\"baz\"}[", "1:16: parse error: unexpected end of input in duration expression"},
      {"some_metric OFFSET 1m[5m]", "1:22: parse error: no offset modifiers allowed before range"},
      {"some_metric @ start() [5m]", "1:23: parse error: no @ modifiers allowed before range"},
      {"some_metric offset step()[5m]",
       "1:26: parse error: no offset modifiers allowed before range"},
      {"(foo + bar)[5m]", "1:12: parse error: ranges only allowed for vector selectors"},
      {"sum by (\"foo)(some_metric{})", "1:9: parse error: unterminated quoted string"},
      {"sum without(==)(some_metric)",
       "1:13: parse error: unexpected <op:==> in grouping opts, expected label"},
      {"sum without(foo,,)(some_metric)",
       "1:17: parse error: unexpected \",\" in grouping opts, expected label"},
      {"sum by (a b) (y)",
       "1:11: parse error: unexpected identifier \"b\" in grouping opts, expected \",\" or \")\""},
      {"a * on(b) group_left (c{d=\"e\"}) f",
       "1:24: parse error: unexpected \"{\" in grouping opts, expected \",\" or \")\""},
      {"sum some_metric by (test)", "1:5: parse error: unexpected identifier \"some_metric\""},
      {"sum (some_metric) by test",
       "1:22: parse error: unexpected identifier \"test\" in grouping opts, expected \"(\""},
      {"sum () by (test)", "1:1: parse error: no arguments for aggregate expression provided"},
      {"MIN keep_common (some_metric)", "1:5: parse error: unexpected identifier \"keep_common\""},
      {"sum (some_metric) without (test) by (test)", "1:34: parse error: unexpected <by>"},
      {"topk(some_metric,)",
       "1:17: parse error: trailing commas not allowed in function call args"},
      {"topk(some_metric, other_metric)",
       "1:6: parse error: expected type scalar in aggregation parameter, got instant vector"},
      {"rate(some_metric[5m]) @ 1234",
       "1:1: parse error: @ modifier must be preceded by an instant vector selector or range "
       "vector selector or a subquery"},
      {"floor(1)",
       "1:7: parse error: expected type instant vector in call to function \"floor\", got scalar"},
      {"hour(some_metric, some_metric, some_metric)",
       "1:1: parse error: expected at most 1 argument(s) in call to \"hour\", got 3"},
      {"time(some_metric)", "1:1: parse error: expected 0 argument(s) in call to \"time\", got 1"},
      {"-=", "1:2: parse error: unexpected \"=\""},
      {"++-++-+-+-<", "1:11: parse error: unexpected <op:<>"},
      {"e-+=/(0)", "1:4: parse error: unexpected \"=\""},
      {"a>b()", "1:3: parse error: unknown function with name \"b\""},
      {"\"\\c\"", "1:1: parse error: unknown escape sequence U+0063 'c'"},
      {"\"\\x.\"", "1:1: parse error: illegal character U+002E '.' in escape sequence"},
      {"\"\\", "1:1: parse error: escape sequence not terminated"},
      {"`\\``", "1:4: parse error: unterminated raw string"},
      {"(1))", "1:5: parse error: unexpected right parenthesis ')'"},
      {"((1)", "1:5: parse error: unclosed left parenthesis"},
      {".", "1:1: parse error: unexpected character: '.'"},
      {"2.5.", "1:1: parse error: bad number or duration syntax: \"2.5.\""},
      {"100..4", "1:1: parse error: bad number or duration syntax: \"100..\""},
      {"0deadbeef", "1:1: parse error: bad number or duration syntax: \"0de\""},
      {"1 == 1", "1:3: parse error: comparisons between scalars must use BOOL modifier"},
      {"1 !~ 1", "1:3: parse error: unexpected character after '!': '~'"},
      {"-test[5m]",
       "1:1: parse error: unary expression only allowed on expressions of type scalar or "
       "instant vector, got \"range vector\""},
      {"1 offset 1d",
       "1:1: parse error: offset modifier must be preceded by an instant vector selector or "
       "range vector selector or a subquery"},
      {"# just a comment\n\n", "1:1: parse error: no expression found in input"},
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(ParseError(in), want) << in;
  // Valid forms from the same tests.
  EXPECT_EQ(Reprint("sum(sum)"), "sum(sum)");
  EXPECT_EQ(Reprint("rate(avg[5m])"), "rate(avg[5m])");
  EXPECT_EQ(Reprint("{__name__=\"bar\", __name__=\"baz\"}"), "{__name__=\"bar\",__name__=\"baz\"}");
  EXPECT_EQ(Reprint("sum without(and, by, avg, count, alert, annotations)(some_metric)"),
            "sum without (and, by, avg, count, alert, annotations) (some_metric)");
  EXPECT_EQ(Reprint("foo[4.018] @ 2.345"), "foo[4s18ms] @ 2.345");
  EXPECT_EQ(Reprint("0755"), "493");
  EXPECT_EQ(Reprint("5."), "5");
}

// A bad regex reads as Prometheus 3 reports it: Go's regexp/syntax wording about the
// pattern as written (not the anchored form), and \C, which RE2 takes, is no escape in Go.
TEST(ParserErrors, BadRegexesInGoWording) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {R"q(up{job=~"("})q", "1:4: parse error: error parsing regexp: missing closing ): `(`"},
      {R"q(up{job=~")"})q", "1:4: parse error: error parsing regexp: unexpected ): `)`"},
      {R"q(up{job=~"[a-"})q", "1:4: parse error: error parsing regexp: missing closing ]: `[a-`"},
      {R"q(up{job=~"a++"})q",
       "1:4: parse error: error parsing regexp: invalid nested repetition operator: `++`"},
      {R"q(up{job=~"*a"})q",
       "1:4: parse error: error parsing regexp: missing argument to repetition operator: `*`"},
      {R"q(up{job=~"a{2,1}"})q",
       "1:4: parse error: error parsing regexp: invalid repeat count: `{2,1}`"},
      {R"q(up{job=~"(?=a)"})q",
       "1:4: parse error: error parsing regexp: invalid or unsupported Perl syntax: `(?=`"},
      {R"q(up{job=~"(a)\\1"})q",
       "1:4: parse error: error parsing regexp: invalid escape sequence: `\\1`"},
      {R"q(up{job=~"a\\C"})q",
       "1:4: parse error: error parsing regexp: invalid escape sequence: `\\C`"},
      {R"q(up{job=~"[z-a]"})q",
       "1:4: parse error: error parsing regexp: invalid character class range: `z-a`"},
  };
  for (const auto& [q, want] : cases) EXPECT_EQ(ParseError(q), want) << q;
  EXPECT_TRUE(ParseExpr(R"q(up{job=~"\\Qa\\C\\E"})q", ParserOptions::AllFeatures()).ok());
}

TEST(ParserErrors, FeatureFlagsGateSyntax) {
  ParserOptions off;
  EXPECT_EQ(ParseError("mad_over_time(x[5m])", off),
            "1:1: parse error: function \"mad_over_time\" is not enabled");
  EXPECT_EQ(ParseError("limitk(1, x)", off),
            "1:1: parse error: limitk() and limit_ratio() are experimental and must be enabled "
            "with --enable-feature=promql-experimental-functions");
  EXPECT_EQ(ParseError("rate(x[5m] anchored)", off),
            "1:6: parse error: anchored modifier is experimental and not enabled");
  EXPECT_EQ(ParseError("a + fill(0) b", off),
            "1:5: parse error: binop fill modifiers are experimental and not enabled");
  EXPECT_EQ(Reprint("rate(x[5m] anchored)"), "rate(x[5m] anchored)");
  EXPECT_EQ(ParseError("x[5m] anchored smoothed"),
            "1:1: parse error: anchored and smoothed modifiers cannot be used together");
}

TEST(ParserErrors, DeepNestingIsBoundedNotACrash) {
  std::string deep(100000, '(');
  deep += "1";
  deep += std::string(100000, ')');
  EXPECT_NE(ParseError(deep).find("expression nesting too deep"), std::string::npos);
  std::string minus(100000, '-');
  minus += "1";
  EXPECT_NE(ParseError(minus).find("expression nesting too deep"), std::string::npos);
  std::string chain = "x";
  for (int i = 0; i < 50000; ++i) chain += " + x";
  EXPECT_NE(ParseError(chain).find("expression nesting too deep"), std::string::npos);
  std::string pow = "x";
  for (int i = 0; i < 50000; ++i) pow += " ^ x";
  EXPECT_NE(ParseError(pow).find("expression nesting too deep"), std::string::npos);
  std::string calls;
  for (int i = 0; i < 50000; ++i) calls += "abs(";
  EXPECT_NE(ParseError(calls).find("expression nesting too deep"), std::string::npos);
  std::string dur = "x[";
  for (int i = 0; i < 50000; ++i) dur += "(";
  EXPECT_NE(ParseError(dur).find("expression nesting too deep"), std::string::npos);
  // A small stack budget stops the recursion before it overflows.
  ParserOptions small = ParserOptions::AllFeatures();
  small.max_stack_bytes = 64 << 10;
  std::string nested;
  for (int i = 0; i < 900; ++i) nested += "abs(";
  nested += "x";
  nested += std::string(900, ')');
  EXPECT_NE(ParseError(nested, small).find("parser stack limit reached"), std::string::npos);
  // 500 levels are fine.
  std::string ok(500, '(');
  ok += "1";
  ok += std::string(500, ')');
  EXPECT_EQ(ParseError(ok).substr(0, 3), "OK:");
}

// Every prefix of every upstream expression, and copies with one byte dropped, doubled or
// replaced, must either fail cleanly or parse into a tree that prints and parses back equal.
TEST(ParserRobustness, MutatedUpstreamExpressionsNeverCrashAndRoundTrip) {
  std::vector<EvalExpr> exprs = UpstreamEvalExpressions();
  uint64_t seed = 0x9e3779b97f4a7c15ULL;
  auto next = [&seed]() {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
  };
  static constexpr char kBytes[] = "()[]{}\",'`:@+-*/%^=!<>~# \n0123456789.aeinfmsxb_\xc3\xff";
  int inputs = 0, parsed = 0;
  auto check = [&](const std::string& q) {
    ++inputs;
    absl::StatusOr<ExprPtr> e = ParseExpr(q, ParserOptions::AllFeatures());
    if (!e.ok()) {
      EXPECT_NE(std::string(e.status().message()).find("parse error"), std::string::npos) << q;
      return;
    }
    ++parsed;
    const std::string printed = ToString(**e);
    absl::StatusOr<ExprPtr> again = ParseExpr(printed, ParserOptions::AllFeatures());
    ASSERT_TRUE(again.ok()) << q << "\n  printed as " << printed << "\n  "
                            << again.status().message();
    EXPECT_TRUE(Equal(**e, **again)) << q << "\n  printed as " << printed;
  };
  for (const EvalExpr& x : exprs) {
    const std::string& q = x.query;
    for (size_t i = 0; i < q.size(); i += 3) check(q.substr(0, i));
    for (int k = 0; k < 6 && !q.empty(); ++k) {
      size_t at = next() % q.size();
      std::string m = q;
      switch (next() % 3) {
        case 0:
          m.erase(at, 1);
          break;
        case 1:
          m.insert(at, 1, m[at]);
          break;
        default:
          m[at] = kBytes[next() % (sizeof(kBytes) - 1)];
          break;
      }
      check(m);
    }
  }
  std::printf("mutated inputs: %d, of which parsed: %d\n", inputs, parsed);
}

// Random sequences of PromQL tokens: no crash, no hang, and whatever parses prints back to an
// equal tree.
TEST(ParserRobustness, RandomTokenSequences) {
  static constexpr std::string_view kTokens[] = {"x",
                                                 "y{a=\"b\"}",
                                                 "{c=~\"d.*\"}",
                                                 "1",
                                                 "2.5",
                                                 "0x1f",
                                                 "5m",
                                                 "1h30m",
                                                 "\"s\"",
                                                 "'t'",
                                                 "(",
                                                 ")",
                                                 "[",
                                                 "]",
                                                 "{",
                                                 "}",
                                                 ",",
                                                 ":",
                                                 "@",
                                                 "+",
                                                 "-",
                                                 "*",
                                                 "/",
                                                 "%",
                                                 "^",
                                                 "==",
                                                 "!=",
                                                 ">",
                                                 "<=",
                                                 "</",
                                                 "and",
                                                 "or",
                                                 "unless",
                                                 "atan2",
                                                 "bool",
                                                 "on",
                                                 "ignoring",
                                                 "group_left",
                                                 "group_right",
                                                 "by",
                                                 "without",
                                                 "offset",
                                                 "sum",
                                                 "topk",
                                                 "count_values",
                                                 "rate",
                                                 "abs",
                                                 "vector",
                                                 "time",
                                                 "label_replace",
                                                 "histogram_quantile",
                                                 "step()",
                                                 "range()",
                                                 "start()",
                                                 "end()",
                                                 "min_of",
                                                 "fill",
                                                 "fill_left",
                                                 "anchored",
                                                 "smoothed",
                                                 "inf",
                                                 "nan",
                                                 "#c\n",
                                                 "\"a.b\"",
                                                 "=",
                                                 "=~",
                                                 "!~"};
  // STRATA_FUZZ_ROUNDS / STRATA_FUZZ_SEED run longer or different explorations by hand.
  const char* rounds_env = std::getenv("STRATA_FUZZ_ROUNDS");
  const char* seed_env = std::getenv("STRATA_FUZZ_SEED");
  const int rounds = rounds_env ? std::atoi(rounds_env) : 30000;
  uint64_t seed = seed_env ? std::strtoull(seed_env, nullptr, 10) | 1 : 0x2545f4914f6cdd1dULL;
  auto next = [&seed]() {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
  };
  int parsed = 0;
  for (int round = 0; round < rounds; ++round) {
    std::string q;
    const int len = 1 + static_cast<int>(next() % 14);
    for (int i = 0; i < len; ++i) {
      q += kTokens[next() % std::size(kTokens)];
      if (next() % 2) q += ' ';
    }
    absl::StatusOr<ExprPtr> e = ParseExpr(q, ParserOptions::AllFeatures());
    if (!e.ok()) continue;
    ++parsed;
    const std::string printed = ToString(**e);
    absl::StatusOr<ExprPtr> again = ParseExpr(printed, ParserOptions::AllFeatures());
    ASSERT_TRUE(again.ok()) << q << "\n  printed as " << printed << "\n  "
                            << again.status().message();
    EXPECT_TRUE(Equal(**e, **again)) << q << "\n  printed as " << printed;
    EXPECT_EQ(ToString(**again), printed) << q;
  }
  std::printf("random token sequences that parse: %d of %d\n", parsed, rounds);
  EXPECT_GT(parsed, 100);
}

}  // namespace
}  // namespace strata::promql
