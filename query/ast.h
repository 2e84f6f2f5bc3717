// The PromQL abstract syntax tree, as produced by the parser (query/parser.h) and consumed
// by the printer (query/printer.h) and the evaluator.
//
// Shape: a kind enum plus subclasses. Every node derives from Expr; switch on
// Expr::kind() and static_cast to the subclass named by the kind (or use As<T>(), which
// checks the kind in debug builds). Children are owned through std::unique_ptr<Expr>; a
// parsed tree is immutable after Parse() returns and may be read from many threads.
//
// Positions: every node carries a PosRange of byte offsets [start, end) into the query
// string it was parsed from. LineCol() turns an offset into the 1-based (line, column) that
// Prometheus prints in errors and annotations.
//
// Durations (ranges, offsets, subquery steps) may be PromQL 3.x duration expressions
// (`[5m+1m]`, `offset (2*2)`, `[step()]`, `[min_of(5m, 2*range())]`). A Duration holds a
// constant value when it has one, and otherwise a DurationExpr tree that the evaluator
// resolves once per query from the query's (start, end, step) with EvalDuration().
#ifndef STRATA_QUERY_AST_H_
#define STRATA_QUERY_AST_H_

#include <cassert>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "query/function_table.h"
#include "src/matcher.h"

namespace strata::promql {

// Byte offsets [start, end) into the query text.
struct PosRange {
  int start = 0;
  int end = 0;
  friend bool operator==(const PosRange&, const PosRange&) = default;
};

// 1-based line and 1-based byte column of byte offset `pos` in `query`.
std::pair<int, int> LineCol(std::string_view query, int pos);

// ---------------------------------------------------------------------------------------
// Duration expressions.

enum class DurationOp {
  kNumber,  // a literal: `seconds` (from `5m`, `1.5`, `300`)
  kAdd,     // lhs + rhs
  kSub,     // lhs - rhs
  kMul,     // lhs * rhs
  kDiv,     // lhs / rhs
  kMod,     // lhs % rhs
  kPow,     // lhs ^ rhs
  kNeg,     // -lhs (unary)
  kPos,     // +lhs (unary; never produced by the parser, which drops a unary +)
  kStep,    // step(): the query step (0 for an instant query)
  kRange,   // range(): end - start of the query (0 for an instant query)
  kMinOf,   // min_of(lhs, rhs)
  kMaxOf,   // max_of(lhs, rhs)
};

struct DurationExpr {
  DurationOp op = DurationOp::kNumber;
  // kNumber: the value in seconds.
  double seconds = 0;
  // kNumber: written with a unit (`5m`) rather than as a plain number (`300`).
  bool is_duration_literal = false;
  // Written inside parentheses (printing only).
  bool wrapped = false;
  std::unique_ptr<DurationExpr> lhs;  // operand of unary ops and min_of/max_of's first
  std::unique_ptr<DurationExpr> rhs;
  PosRange pos;

  // True when the value does not depend on step()/range().
  bool IsConstant() const;
  std::unique_ptr<DurationExpr> Clone() const;
};

// What a duration expression may depend on: the query's parameters in milliseconds.
struct DurationContext {
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  int64_t step_ms = 0;  // 0 for an instant query
};

// The value of `e` in seconds (may be fractional or negative; the caller decides what is
// allowed where). Errors on division/modulo by zero and non-finite results.
absl::StatusOr<double> EvalDurationSeconds(const DurationExpr& e, const DurationContext& ctx);

// A duration slot: a range, an offset or a subquery step.
struct Duration {
  // The value in milliseconds when `expr` is null or constant (filled in by the parser).
  int64_t ms = 0;
  // Null when the source was a plain duration or number literal (then `ms` is exact).
  // Otherwise the expression as written; when it is not constant, the evaluator must
  // compute the value per query with Resolve().
  std::unique_ptr<DurationExpr> expr;

  bool IsConstant() const { return expr == nullptr || expr->IsConstant(); }
  // The value in milliseconds for this query (rounded to the millisecond like Prometheus).
  absl::StatusOr<int64_t> Resolve(const DurationContext& ctx) const;
  Duration Clone() const;
};

// ---------------------------------------------------------------------------------------
// Expressions.

enum class NodeKind {
  kNumberLiteral,
  kStringLiteral,
  kVectorSelector,
  kMatrixSelector,
  kSubquery,
  kParen,
  kUnary,
  kBinary,
  kAggregate,
  kCall,
};

class Expr {
 public:
  virtual ~Expr() = default;
  Expr(const Expr&) = delete;
  Expr& operator=(const Expr&) = delete;

  NodeKind kind() const { return kind_; }
  // The value type the expression evaluates to.
  virtual ValueType type() const = 0;
  // A deep copy.
  virtual std::unique_ptr<Expr> Clone() const = 0;

  template <typename T>
  const T& As() const {
    assert(kind_ == T::kKind);
    return static_cast<const T&>(*this);
  }
  template <typename T>
  T& As() {
    assert(kind_ == T::kKind);
    return static_cast<T&>(*this);
  }

  PosRange pos;

 protected:
  explicit Expr(NodeKind kind) : kind_(kind) {}

 private:
  NodeKind kind_;
};

using ExprPtr = std::unique_ptr<Expr>;

// `@` modifier of a selector or subquery.
enum class AtKind { kNone, kTimestamp, kStart, kEnd };
struct AtModifier {
  AtKind kind = AtKind::kNone;
  int64_t timestamp_ms = 0;  // kTimestamp only
  friend bool operator==(const AtModifier&, const AtModifier&) = default;
};

class NumberLiteral final : public Expr {
 public:
  static constexpr NodeKind kKind = NodeKind::kNumberLiteral;
  NumberLiteral() : Expr(kKind) {}
  ValueType type() const override { return ValueType::kScalar; }
  std::unique_ptr<Expr> Clone() const override;

  double value = 0;
  // Written as a duration (`5m` used where a number is expected, value in seconds);
  // printed back as a duration.
  bool is_duration = false;
};

class StringLiteral final : public Expr {
 public:
  static constexpr NodeKind kKind = NodeKind::kStringLiteral;
  StringLiteral() : Expr(kKind) {}
  ValueType type() const override { return ValueType::kString; }
  std::unique_ptr<Expr> Clone() const override;

  std::string value;  // unescaped
};

// An instant selector: `name{matchers} @ t anchored offset d`.
class VectorSelector final : public Expr {
 public:
  static constexpr NodeKind kKind = NodeKind::kVectorSelector;
  VectorSelector() : Expr(kKind) {}
  ValueType type() const override { return ValueType::kVector; }
  std::unique_ptr<Expr> Clone() const override;

  // The metric name written before the braces (`foo{...}`); empty when none. When
  // non-empty, `matchers` also contains __name__="name". A name written as a bare quoted
  // string inside the braces (`{"my.metric"}`) is only a __name__ matcher, as in Prometheus.
  std::string name;
  // Every matcher, including the __name__ one, in the order written (the name first).
  std::vector<LabelMatcher> matchers;
  // The offset as written (positive looks back). `offset.ms` == 0 when none.
  Duration offset;
  bool has_offset = false;
  AtModifier at;
  // 3.x extended range selectors (promql-extended-range-selectors). Set on the selector
  // inside a MatrixSelector (`x[5m] anchored`) or on an instant selector.
  bool anchored = false;
  bool smoothed = false;
};

// A range selector: `selector[range]`. Offset, @ and anchored/smoothed live on `selector`.
class MatrixSelector final : public Expr {
 public:
  static constexpr NodeKind kKind = NodeKind::kMatrixSelector;
  MatrixSelector() : Expr(kKind) {}
  ValueType type() const override { return ValueType::kMatrix; }
  std::unique_ptr<Expr> Clone() const override;
  const VectorSelector& vector_selector() const { return selector->As<VectorSelector>(); }

  ExprPtr selector;  // always a VectorSelector
  Duration range;
};

// `expr[range:step] @ t offset d`.
class Subquery final : public Expr {
 public:
  static constexpr NodeKind kKind = NodeKind::kSubquery;
  Subquery() : Expr(kKind) {}
  ValueType type() const override { return ValueType::kMatrix; }
  std::unique_ptr<Expr> Clone() const override;

  ExprPtr expr;
  Duration range;
  // Absent step (`[5m:]`): has_step is false and the engine's default applies.
  Duration step;
  bool has_step = false;
  Duration offset;
  bool has_offset = false;
  AtModifier at;
};

class Paren final : public Expr {
 public:
  static constexpr NodeKind kKind = NodeKind::kParen;
  Paren() : Expr(kKind) {}
  ValueType type() const override { return expr->type(); }
  std::unique_ptr<Expr> Clone() const override;

  ExprPtr expr;
};

class Unary final : public Expr {
 public:
  static constexpr NodeKind kKind = NodeKind::kUnary;
  Unary() : Expr(kKind) {}
  ValueType type() const override { return expr->type(); }
  std::unique_ptr<Expr> Clone() const override;

  bool negate = true;  // false for unary `+`
  ExprPtr expr;
};

enum class BinaryOp {
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kPow,
  kAtan2,
  kEql,
  kNeq,
  kGtr,
  kLss,
  kGte,
  kLte,
  kAnd,
  kOr,
  kUnless,
  // Native-histogram trim operators `</` and `>/` (added later; appended).
  kTrimUpper,
  kTrimLower,
};
std::string_view BinaryOpString(BinaryOp op);  // "+", "==", "and", "atan2", ...
bool IsComparison(BinaryOp op);
bool IsSetOperator(BinaryOp op);  // and, or, unless

enum class VectorMatchCard { kOneToOne, kManyToOne, kOneToMany, kManyToMany };

// How the two sides of a vector/vector binary operation match. Present only when both
// sides are instant vectors.
struct VectorMatching {
  // kManyToMany for and/or/unless; kManyToOne for group_left; kOneToMany for group_right.
  VectorMatchCard card = VectorMatchCard::kOneToOne;
  // `on (...)` when true; otherwise `ignoring (...)` (possibly empty = match all labels).
  bool on = false;
  std::vector<std::string> matching_labels;
  // group_left/group_right extra labels to copy from the "one" side.
  std::vector<std::string> include;
  // fill()/fill_left()/fill_right() (promql-binop-fill-modifiers): the value to use for
  // a missing sample on that side.
  std::optional<double> fill_left;
  std::optional<double> fill_right;
};

class Binary final : public Expr {
 public:
  static constexpr NodeKind kKind = NodeKind::kBinary;
  Binary() : Expr(kKind) {}
  // Vector if either side is a vector, else scalar.
  ValueType type() const override;
  std::unique_ptr<Expr> Clone() const override;

  BinaryOp op = BinaryOp::kAdd;
  // `bool` modifier on a comparison.
  bool return_bool = false;
  ExprPtr lhs;
  ExprPtr rhs;
  // Set iff both lhs and rhs are instant vectors.
  std::optional<VectorMatching> matching;
};

enum class AggregateOp {
  kSum,
  kAvg,
  kCount,
  kMin,
  kMax,
  kGroup,
  kStddev,
  kStdvar,
  kTopk,
  kBottomk,
  kCountValues,
  kQuantile,
  kLimitk,
  kLimitRatio,
};
std::string_view AggregateOpString(AggregateOp op);  // "sum", "count_values", ...
// topk, bottomk, count_values, quantile, limitk, limit_ratio.
bool AggregateHasParam(AggregateOp op);
// limitk, limit_ratio (need promql-experimental-functions).
bool AggregateIsExperimental(AggregateOp op);

class Aggregate final : public Expr {
 public:
  static constexpr NodeKind kKind = NodeKind::kAggregate;
  Aggregate() : Expr(kKind) {}
  ValueType type() const override { return ValueType::kVector; }
  std::unique_ptr<Expr> Clone() const override;

  AggregateOp op = AggregateOp::kSum;
  ExprPtr param;  // null unless AggregateHasParam(op): scalar, or string for count_values
  ExprPtr expr;   // instant vector
  // Label names as written (`by (a, b)`); `without` selects the other meaning.
  std::vector<std::string> grouping;
  bool without = false;
};

class Call final : public Expr {
 public:
  static constexpr NodeKind kKind = NodeKind::kCall;
  Call() : Expr(kKind) {}
  ValueType type() const override { return func->return_type; }
  std::unique_ptr<Expr> Clone() const override;

  const FunctionInfo* func = nullptr;  // never null in a parsed tree
  std::vector<ExprPtr> args;
};

// Strips any number of Paren nodes.
const Expr& UnwrapParens(const Expr& e);

// Structural equality: same kinds, values, names, matchers (in any order), durations
// (compared by value and, when written as expressions, by shape), modifiers. Ignores
// positions and whether a number was written as a duration.
bool Equal(const Expr& a, const Expr& b);

}  // namespace strata::promql

#endif  // STRATA_QUERY_AST_H_
