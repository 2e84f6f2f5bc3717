// Differences from Prometheus found by the random differential test
// (tests/e2e/promql_diff_test.cc), each reduced to the smallest query and data that show it.
#include <cmath>
#include <string>

#include "gtest/gtest.h"
#include "query/engine.h"
#include "query/parser.h"
#include "storage/memory_store.h"

namespace strata::promql {
namespace {

class PrometheusDiff : public ::testing::Test {
 protected:
  absl::StatusOr<QueryResult> Instant(std::string_view q, Timestamp t) {
    auto e = ParseExpr(q, ParserOptions{});
    EXPECT_TRUE(e.ok()) << q << ": " << e.status();
    if (!e.ok()) return e.status();
    return Engine().InstantQuery(store_, **e, q, t);
  }
  absl::StatusOr<QueryResult> Range(std::string_view q, Timestamp start, Timestamp end,
                                    int64_t step) {
    auto e = ParseExpr(q, ParserOptions{});
    EXPECT_TRUE(e.ok()) << q << ": " << e.status();
    if (!e.ok()) return e.status();
    return Engine().RangeQuery(store_, **e, q, start, end, step);
  }
  void Add(const Labels& labels, std::vector<Sample> samples) {
    ASSERT_TRUE(store_.AppendMany(labels, samples).ok());
  }

  MemoryStore store_;
};

// `empty + on() many`: Prometheus returns nothing when either side is empty at a step, before
// it looks for duplicates on the "one" side; Strata reported many-to-many matching.
TEST_F(PrometheusDiff, EmptySideOfAVectorMatchIsNoDuplicateError) {
  Add({{"__name__", "a"}, {"x", "1"}}, {{0, 1}});
  Add({{"__name__", "a"}, {"x", "2"}}, {{0, 2}});
  for (const char* q : {"nope + on() a", "a + on() nope", "nope * on() group_left a",
                        "a > on() group_right nope"}) {
    auto r = Instant(q, 10'000);
    ASSERT_TRUE(r.ok()) << q << ": " << r.status();
    EXPECT_TRUE(r->value.vector.empty()) << q;
  }
  // Per step: where the left side has a sample, the duplicates on the right are an error.
  Add({{"__name__", "b"}}, {{120'000, 1}});
  EXPECT_TRUE(Range("b + on() a", 0, 60'000, 60'000).ok());
  EXPECT_FALSE(Range("b + on() a", 0, 120'000, 60'000).ok());
}

// Dropping the metric name makes a{x="1"} and c{x="1"} the same series: Prometheus refuses
// that in the node that drops the name, even when a later operator would discard the result
// (here nothing matches on the right). Strata only looked at the final result.
TEST_F(PrometheusDiff, NameDroppingCollisionFailsInTheNodeThatDropsTheName) {
  Add({{"__name__", "a"}, {"x", "1"}},
      {{0, 1}, {15'000, 2}, {30'000, 3}, {45'000, 4}, {60'000, 5}});
  Add({{"__name__", "c"}, {"x", "1"}}, {{0, 7}, {30'000, 8}});
  for (const char* q :
       {"round({__name__=~\"a|c\"})", "round({__name__=~\"a|c\"}) <= bool on(nope) a",
        "{__name__=~\"a|c\"} * 2 and on(nope) a", "-{__name__=~\"a|c\"} > 100",
        "sum(rate({__name__=~\"a|c\"}[1m]))"}) {
    auto r = Instant(q, 40'000);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << q;
  }
  EXPECT_TRUE(Instant("round({__name__=~\"a|c\"} > 3)", 40'000).ok());
}

// Functions of instant vectors and operators refuse a collision only at one step; functions
// of range vectors and unary minus refuse two series with the same labels anywhere in the
// range.
TEST_F(PrometheusDiff, CollisionsCountPerStepOnlyForInstantVectorFunctions) {
  Add({{"__name__", "a"}, {"x", "1"}},
      {{0, 1}, {15'000, 2}, {30'000, 3}, {45'000, 4}, {60'000, 5}});
  Add({{"__name__", "b"}, {"x", "1"}},
      {{600'000, 1}, {615'000, 2}, {630'000, 3}, {645'000, 4}, {660'000, 5}});
  auto r = Range("abs({__name__=~\"a|b\"}) * 2", 0, 720'000, 60'000);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->value.matrix.size(), 1u);
  for (const char* q : {"-{__name__=~\"a|b\"}", "rate({__name__=~\"a|b\"}[2m])"}) {
    EXPECT_EQ(Range(q, 0, 720'000, 60'000).status().code(), absl::StatusCode::kFailedPrecondition)
        << q;
  }
}

// absent() labels: the first `=` matcher of a name sets it, any other matcher of that name
// removes it, in the order written. Strata removed a name with two matchers whatever their
// order.
TEST_F(PrometheusDiff, AbsentLabelsFollowTheMatcherOrder) {
  struct Case {
    const char* query;
    Labels want;
  };
  const Case cases[] = {
      {"absent(nope{job!~\".+\", job=\"api\"})", Labels{{"job", "api"}}},
      {"absent(nope{job=\"api\", job!~\".+\"})", Labels{}},
      {"absent(nope{job=\"a\", job=\"b\", x=\"1\"})", Labels{{"x", "1"}}},
      {"absent(nope{job!=\"a\", job=\"b\", job=\"c\"})", Labels{}},
      {"absent_over_time(nope{job!~\"x\", job=\"api\"}[1m])", Labels{{"job", "api"}}},
  };
  for (const Case& c : cases) {
    auto r = Instant(c.query, 10'000);
    ASSERT_TRUE(r.ok()) << c.query << ": " << r.status();
    ASSERT_EQ(r->value.vector.size(), 1u) << c.query;
    EXPECT_EQ(r->value.vector[0].labels, c.want)
        << c.query << ": " << r->value.vector[0].labels.ToString();
  }
}

}  // namespace
}  // namespace strata::promql
