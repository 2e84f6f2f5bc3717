#include "query/ast.h"

#include <algorithm>
#include <cmath>

#include "query/go_math.h"
#include "src/status.h"
#include "src/strings.h"

namespace strata::promql {

std::pair<int, int> LineCol(std::string_view query, int pos) {
  if (pos < 0) pos = 0;
  if (pos > static_cast<int>(query.size())) pos = static_cast<int>(query.size());
  int line = 1;
  int last_break = -1;
  for (int i = 0; i < pos; ++i) {
    if (query[i] == '\n') {
      ++line;
      last_break = i;
    }
  }
  return {line, pos - last_break};
}

// ---------------------------------------------------------------------------------------

bool DurationExpr::IsConstant() const {
  if (op == DurationOp::kStep || op == DurationOp::kRange) return false;
  if (lhs && !lhs->IsConstant()) return false;
  if (rhs && !rhs->IsConstant()) return false;
  return true;
}

std::unique_ptr<DurationExpr> DurationExpr::Clone() const {
  auto c = std::make_unique<DurationExpr>();
  c->op = op;
  c->seconds = seconds;
  c->is_duration_literal = is_duration_literal;
  c->wrapped = wrapped;
  c->pos = pos;
  if (lhs) c->lhs = lhs->Clone();
  if (rhs) c->rhs = rhs->Clone();
  return c;
}

absl::StatusOr<double> EvalDurationSeconds(const DurationExpr& e, const DurationContext& ctx) {
  double a = 0, b = 0;
  if (e.lhs) {
    STRATA_ASSIGN_OR_RETURN(a, EvalDurationSeconds(*e.lhs, ctx));
  }
  if (e.rhs) {
    STRATA_ASSIGN_OR_RETURN(b, EvalDurationSeconds(*e.rhs, ctx));
  }
  double r = 0;
  switch (e.op) {
    case DurationOp::kNumber:
      r = e.seconds;
      break;
    case DurationOp::kAdd:
      r = a + b;
      break;
    case DurationOp::kSub:
      r = a - b;
      break;
    case DurationOp::kMul:
      r = a * b;
      break;
    case DurationOp::kDiv:
      if (b == 0) return absl::InvalidArgumentError("division by zero");
      r = a / b;
      break;
    case DurationOp::kMod:
      if (b == 0) return absl::InvalidArgumentError("modulo by zero");
      r = std::fmod(a, b);
      break;
    case DurationOp::kPow:
      r = GoPow(a, b);
      break;
    case DurationOp::kNeg:
      r = -a;
      break;
    case DurationOp::kPos:
      r = a;
      break;
    case DurationOp::kStep:
      r = static_cast<double>(ctx.step_ms) / 1000.0;
      break;
    case DurationOp::kRange:
      r = static_cast<double>(ctx.end_ms - ctx.start_ms) / 1000.0;
      break;
    case DurationOp::kMinOf:
      r = std::min(a, b);
      break;
    case DurationOp::kMaxOf:
      r = std::max(a, b);
      break;
  }
  if (!std::isfinite(r)) {
    return absl::InvalidArgumentError("duration expression is not a finite number");
  }
  return r;
}

absl::StatusOr<int64_t> Duration::Resolve(const DurationContext& ctx) const {
  if (expr == nullptr) return ms;
  STRATA_ASSIGN_OR_RETURN(double s, EvalDurationSeconds(*expr, ctx));
  double v = std::round(s * 1000.0);
  if (v > 9.2e18 || v < -9.2e18) return absl::InvalidArgumentError("duration out of range");
  return static_cast<int64_t>(v);
}

Duration Duration::Clone() const {
  Duration d;
  d.ms = ms;
  if (expr) d.expr = expr->Clone();
  return d;
}

// ---------------------------------------------------------------------------------------

namespace {
ExprPtr CloneOrNull(const ExprPtr& e) { return e ? e->Clone() : nullptr; }
}  // namespace

std::unique_ptr<Expr> NumberLiteral::Clone() const {
  auto c = std::make_unique<NumberLiteral>();
  c->pos = pos;
  c->value = value;
  c->is_duration = is_duration;
  return c;
}

std::unique_ptr<Expr> StringLiteral::Clone() const {
  auto c = std::make_unique<StringLiteral>();
  c->pos = pos;
  c->value = value;
  return c;
}

std::unique_ptr<Expr> VectorSelector::Clone() const {
  auto c = std::make_unique<VectorSelector>();
  c->pos = pos;
  c->name = name;
  c->matchers = matchers;
  c->offset = offset.Clone();
  c->has_offset = has_offset;
  c->at = at;
  c->anchored = anchored;
  c->smoothed = smoothed;
  return c;
}

std::unique_ptr<Expr> MatrixSelector::Clone() const {
  auto c = std::make_unique<MatrixSelector>();
  c->pos = pos;
  c->selector = CloneOrNull(selector);
  c->range = range.Clone();
  return c;
}

std::unique_ptr<Expr> Subquery::Clone() const {
  auto c = std::make_unique<Subquery>();
  c->pos = pos;
  c->expr = CloneOrNull(expr);
  c->range = range.Clone();
  c->step = step.Clone();
  c->has_step = has_step;
  c->offset = offset.Clone();
  c->has_offset = has_offset;
  c->at = at;
  return c;
}

std::unique_ptr<Expr> Paren::Clone() const {
  auto c = std::make_unique<Paren>();
  c->pos = pos;
  c->expr = CloneOrNull(expr);
  return c;
}

std::unique_ptr<Expr> Unary::Clone() const {
  auto c = std::make_unique<Unary>();
  c->pos = pos;
  c->negate = negate;
  c->expr = CloneOrNull(expr);
  return c;
}

ValueType Binary::type() const {
  if (lhs->type() == ValueType::kVector || rhs->type() == ValueType::kVector) {
    return ValueType::kVector;
  }
  return ValueType::kScalar;
}

std::unique_ptr<Expr> Binary::Clone() const {
  auto c = std::make_unique<Binary>();
  c->pos = pos;
  c->op = op;
  c->return_bool = return_bool;
  c->lhs = CloneOrNull(lhs);
  c->rhs = CloneOrNull(rhs);
  c->matching = matching;
  return c;
}

std::unique_ptr<Expr> Aggregate::Clone() const {
  auto c = std::make_unique<Aggregate>();
  c->pos = pos;
  c->op = op;
  c->param = CloneOrNull(param);
  c->expr = CloneOrNull(expr);
  c->grouping = grouping;
  c->without = without;
  return c;
}

std::unique_ptr<Expr> Call::Clone() const {
  auto c = std::make_unique<Call>();
  c->pos = pos;
  c->func = func;
  for (const ExprPtr& a : args) c->args.push_back(a->Clone());
  return c;
}

std::string_view BinaryOpString(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd:
      return "+";
    case BinaryOp::kSub:
      return "-";
    case BinaryOp::kMul:
      return "*";
    case BinaryOp::kDiv:
      return "/";
    case BinaryOp::kMod:
      return "%";
    case BinaryOp::kPow:
      return "^";
    case BinaryOp::kAtan2:
      return "atan2";
    case BinaryOp::kEql:
      return "==";
    case BinaryOp::kNeq:
      return "!=";
    case BinaryOp::kGtr:
      return ">";
    case BinaryOp::kLss:
      return "<";
    case BinaryOp::kGte:
      return ">=";
    case BinaryOp::kLte:
      return "<=";
    case BinaryOp::kAnd:
      return "and";
    case BinaryOp::kOr:
      return "or";
    case BinaryOp::kUnless:
      return "unless";
    case BinaryOp::kTrimUpper:
      return "</";
    case BinaryOp::kTrimLower:
      return ">/";
  }
  return "?";
}

bool IsComparison(BinaryOp op) {
  switch (op) {
    case BinaryOp::kEql:
    case BinaryOp::kNeq:
    case BinaryOp::kGtr:
    case BinaryOp::kLss:
    case BinaryOp::kGte:
    case BinaryOp::kLte:
      return true;
    default:
      return false;
  }
}

bool IsSetOperator(BinaryOp op) {
  return op == BinaryOp::kAnd || op == BinaryOp::kOr || op == BinaryOp::kUnless;
}

std::string_view AggregateOpString(AggregateOp op) {
  switch (op) {
    case AggregateOp::kSum:
      return "sum";
    case AggregateOp::kAvg:
      return "avg";
    case AggregateOp::kCount:
      return "count";
    case AggregateOp::kMin:
      return "min";
    case AggregateOp::kMax:
      return "max";
    case AggregateOp::kGroup:
      return "group";
    case AggregateOp::kStddev:
      return "stddev";
    case AggregateOp::kStdvar:
      return "stdvar";
    case AggregateOp::kTopk:
      return "topk";
    case AggregateOp::kBottomk:
      return "bottomk";
    case AggregateOp::kCountValues:
      return "count_values";
    case AggregateOp::kQuantile:
      return "quantile";
    case AggregateOp::kLimitk:
      return "limitk";
    case AggregateOp::kLimitRatio:
      return "limit_ratio";
  }
  return "?";
}

bool AggregateHasParam(AggregateOp op) {
  switch (op) {
    case AggregateOp::kTopk:
    case AggregateOp::kBottomk:
    case AggregateOp::kCountValues:
    case AggregateOp::kQuantile:
    case AggregateOp::kLimitk:
    case AggregateOp::kLimitRatio:
      return true;
    default:
      return false;
  }
}

bool AggregateIsExperimental(AggregateOp op) {
  return op == AggregateOp::kLimitk || op == AggregateOp::kLimitRatio;
}

const Expr& UnwrapParens(const Expr& e) {
  const Expr* p = &e;
  while (p->kind() == NodeKind::kParen) p = p->As<Paren>().expr.get();
  return *p;
}

// ---------------------------------------------------------------------------------------
// Equality.

namespace {

bool SameNumber(double a, double b) {
  if (std::isnan(a) && std::isnan(b)) return true;
  return a == b;
}

bool EqualDurationExpr(const DurationExpr* a, const DurationExpr* b) {
  if (a == nullptr || b == nullptr) return a == b;
  if (a->op != b->op || a->wrapped != b->wrapped) return false;
  if (a->op == DurationOp::kNumber && !SameNumber(a->seconds, b->seconds)) return false;
  return EqualDurationExpr(a->lhs.get(), b->lhs.get()) &&
         EqualDurationExpr(a->rhs.get(), b->rhs.get());
}

bool EqualDuration(const Duration& a, const Duration& b) {
  if (a.ms != b.ms) return false;
  return EqualDurationExpr(a.expr.get(), b.expr.get());
}

std::vector<std::string> SortedMatcherStrings(const std::vector<LabelMatcher>& ms) {
  std::vector<std::string> out;
  out.reserve(ms.size());
  for (const LabelMatcher& m : ms) out.push_back(m.ToString());
  std::sort(out.begin(), out.end());
  return out;
}

bool EqualPtr(const ExprPtr& a, const ExprPtr& b) {
  if (!a || !b) return a == b;
  return Equal(*a, *b);
}

}  // namespace

bool Equal(const Expr& a, const Expr& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case NodeKind::kNumberLiteral:
      return SameNumber(a.As<NumberLiteral>().value, b.As<NumberLiteral>().value);
    case NodeKind::kStringLiteral:
      return a.As<StringLiteral>().value == b.As<StringLiteral>().value;
    case NodeKind::kVectorSelector: {
      const auto& x = a.As<VectorSelector>();
      const auto& y = b.As<VectorSelector>();
      return x.name == y.name &&
             SortedMatcherStrings(x.matchers) == SortedMatcherStrings(y.matchers) &&
             EqualDuration(x.offset, y.offset) && x.at == y.at && x.anchored == y.anchored &&
             x.smoothed == y.smoothed;
    }
    case NodeKind::kMatrixSelector: {
      const auto& x = a.As<MatrixSelector>();
      const auto& y = b.As<MatrixSelector>();
      return EqualDuration(x.range, y.range) && EqualPtr(x.selector, y.selector);
    }
    case NodeKind::kSubquery: {
      const auto& x = a.As<Subquery>();
      const auto& y = b.As<Subquery>();
      return EqualDuration(x.range, y.range) && EqualDuration(x.step, y.step) &&
             EqualDuration(x.offset, y.offset) && x.at == y.at && EqualPtr(x.expr, y.expr);
    }
    case NodeKind::kParen:
      return EqualPtr(a.As<Paren>().expr, b.As<Paren>().expr);
    case NodeKind::kUnary:
      return a.As<Unary>().negate == b.As<Unary>().negate &&
             EqualPtr(a.As<Unary>().expr, b.As<Unary>().expr);
    case NodeKind::kBinary: {
      const auto& x = a.As<Binary>();
      const auto& y = b.As<Binary>();
      if (x.op != y.op || x.return_bool != y.return_bool) return false;
      if (x.matching.has_value() != y.matching.has_value()) return false;
      if (x.matching) {
        const VectorMatching& m = *x.matching;
        const VectorMatching& n = *y.matching;
        if (m.card != n.card || m.on != n.on || m.matching_labels != n.matching_labels ||
            m.include != n.include) {
          return false;
        }
        auto same_fill = [](const std::optional<double>& p, const std::optional<double>& q) {
          if (p.has_value() != q.has_value()) return false;
          return !p || SameNumber(*p, *q);
        };
        if (!same_fill(m.fill_left, n.fill_left) || !same_fill(m.fill_right, n.fill_right)) {
          return false;
        }
      }
      return EqualPtr(x.lhs, y.lhs) && EqualPtr(x.rhs, y.rhs);
    }
    case NodeKind::kAggregate: {
      const auto& x = a.As<Aggregate>();
      const auto& y = b.As<Aggregate>();
      return x.op == y.op && x.without == y.without && x.grouping == y.grouping &&
             EqualPtr(x.param, y.param) && EqualPtr(x.expr, y.expr);
    }
    case NodeKind::kCall: {
      const auto& x = a.As<Call>();
      const auto& y = b.As<Call>();
      if (x.func != y.func || x.args.size() != y.args.size()) return false;
      for (size_t i = 0; i < x.args.size(); ++i) {
        if (!Equal(*x.args[i], *y.args[i])) return false;
      }
      return true;
    }
  }
  return false;
}

}  // namespace strata::promql
