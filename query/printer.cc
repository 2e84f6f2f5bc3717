#include "query/printer.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <vector>

#include "query/lexer.h"
#include "src/labels.h"
#include "src/strings.h"
#include "src/time.h"

namespace strata::promql {
namespace {

void AppendLabelList(std::string* out, const std::vector<std::string>& labels) {
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) *out += ", ";
    *out += IsLegacyLabelName(labels[i]) ? labels[i] : QuoteString(labels[i]);
  }
}

// Prometheus' model.Duration String() of `seconds`, with a sign.
std::string SecondsAsDuration(double seconds) {
  return FormatDuration(static_cast<int64_t>(std::llround(seconds * 1000.0)));
}

void AppendDurationExpr(std::string* out, const DurationExpr& e) {
  if (e.wrapped) *out += '(';
  switch (e.op) {
    case DurationOp::kNumber:
      *out += e.is_duration_literal ? SecondsAsDuration(e.seconds) : FormatNumber(e.seconds);
      break;
    case DurationOp::kStep:
      *out += "step()";
      break;
    case DurationOp::kRange:
      *out += "range()";
      break;
    case DurationOp::kMinOf:
    case DurationOp::kMaxOf:
      *out += e.op == DurationOp::kMinOf ? "min_of(" : "max_of(";
      AppendDurationExpr(out, *e.lhs);
      *out += ", ";
      AppendDurationExpr(out, *e.rhs);
      *out += ')';
      break;
    case DurationOp::kNeg:
      *out += '-';
      AppendDurationExpr(out, *e.lhs);
      break;
    case DurationOp::kPos:
      AppendDurationExpr(out, *e.lhs);
      break;
    default: {
      std::string_view op = e.op == DurationOp::kAdd   ? "+"
                            : e.op == DurationOp::kSub ? "-"
                            : e.op == DurationOp::kMul ? "*"
                            : e.op == DurationOp::kDiv ? "/"
                            : e.op == DurationOp::kMod ? "%"
                                                       : "^";
      AppendDurationExpr(out, *e.lhs);
      *out += ' ';
      *out += op;
      *out += ' ';
      AppendDurationExpr(out, *e.rhs);
      break;
    }
  }
  if (e.wrapped) *out += ')';
}

void AppendAt(std::string* out, const AtModifier& at) {
  switch (at.kind) {
    case AtKind::kNone:
      break;
    case AtKind::kTimestamp:
      *out += fmt::format(" @ {:.3f}", static_cast<double>(at.timestamp_ms) / 1000.0);
      break;
    case AtKind::kStart:
      *out += " @ start()";
      break;
    case AtKind::kEnd:
      *out += " @ end()";
      break;
  }
}

void AppendOffset(std::string* out, const Duration& d) {
  if (d.expr != nullptr) {
    *out += " offset ";
    AppendDurationExpr(out, *d.expr);
  } else if (d.ms != 0) {
    *out += " offset ";
    *out += FormatDuration(d.ms);
  }
}

// Words that would not read back as a metric name when written bare.
bool IsReservedAsMetricName(std::string_view name) {
  static constexpr std::string_view kWords[] = {"on",   "ignoring", "group_left", "group_right",
                                                "bool", "atan2",    "inf",        "nan"};
  for (std::string_view w : kWords) {
    if (IsKeyword(name, w)) return true;
  }
  return false;
}

void AppendSelectorBody(std::string* out, const VectorSelector& vs) {
  std::vector<std::string> parts;
  bool name_in_braces = false;
  for (const LabelMatcher& m : vs.matchers) {
    if (m.name() == kMetricName && m.type() == MatchType::kEqual && m.value() == vs.name &&
        !vs.name.empty()) {
      continue;
    }
    parts.push_back(m.ToString());
  }
  std::sort(parts.begin(), parts.end());
  if (!vs.name.empty()) {
    if (IsLegacyMetricName(vs.name) && !IsReservedAsMetricName(vs.name)) {
      *out += vs.name;
    } else {
      name_in_braces = true;
    }
  }
  if (name_in_braces || !parts.empty()) {
    *out += '{';
    if (name_in_braces) {
      *out += QuoteString(vs.name);
      if (!parts.empty()) *out += ", ";
    }
    for (size_t i = 0; i < parts.size(); ++i) {
      if (i > 0) *out += ',';
      *out += parts[i];
    }
    *out += '}';
  }
}

void AppendExtended(std::string* out, const VectorSelector& vs) {
  if (vs.anchored) {
    *out += " anchored";
  } else if (vs.smoothed) {
    *out += " smoothed";
  }
}

// `[5m:1m] @ 100.000 offset 1m`: what follows a subquery's expression.
void AppendSubquerySuffix(std::string* out, const Subquery& sq) {
  *out += '[';
  *out += DurationToString(sq.range);
  *out += ':';
  if (sq.has_step && (sq.step.expr != nullptr || sq.step.ms != 0)) {
    *out += DurationToString(sq.step);
  }
  *out += ']';
  AppendAt(out, sq.at);
  AppendOffset(out, sq.offset);
}

// `sum`, `sum by (a) `, `sum without (a) `: an aggregation up to its parenthesis.
void AppendAggregateHead(std::string* out, const Aggregate& a) {
  *out += AggregateOpString(a.op);
  if (a.without) {
    *out += " without (";
    AppendLabelList(out, a.grouping);
    *out += ") ";
  } else if (!a.grouping.empty()) {
    *out += " by (";
    AppendLabelList(out, a.grouping);
    *out += ") ";
  }
}

// The operator of a binary expression with its modifiers: `* bool on (a) group_left (b)`.
void AppendOperator(std::string* out, const Binary& b) {
  *out += BinaryOpString(b.op);
  if (b.return_bool) *out += " bool";
  if (b.matching) {
    const VectorMatching& vm = *b.matching;
    const bool grouped =
        vm.card == VectorMatchCard::kManyToOne || vm.card == VectorMatchCard::kOneToMany;
    if (!vm.matching_labels.empty() || vm.on || grouped) {
      *out += vm.on ? " on (" : " ignoring (";
      AppendLabelList(out, vm.matching_labels);
      *out += ')';
    }
    if (grouped) {
      *out += vm.card == VectorMatchCard::kManyToOne ? " group_left (" : " group_right (";
      AppendLabelList(out, vm.include);
      *out += ')';
    }
    auto same = [](double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); };
    if (vm.fill_left && vm.fill_right && same(*vm.fill_left, *vm.fill_right)) {
      *out += fmt::format(" fill ({})", FormatNumber(*vm.fill_left));
    } else {
      if (vm.fill_left) *out += fmt::format(" fill_left ({})", FormatNumber(*vm.fill_left));
      if (vm.fill_right) {
        *out += fmt::format(" fill_right ({})", FormatNumber(*vm.fill_right));
      }
    }
  }
}

void Append(std::string* out, const Expr& e) {
  switch (e.kind()) {
    case NodeKind::kNumberLiteral: {
      const auto& n = e.As<NumberLiteral>();
      if (n.is_duration && std::isfinite(n.value)) {
        *out += SecondsAsDuration(n.value);
      } else {
        *out += FormatNumber(n.value);
      }
      return;
    }
    case NodeKind::kStringLiteral:
      *out += QuoteString(e.As<StringLiteral>().value);
      return;
    case NodeKind::kVectorSelector: {
      const auto& vs = e.As<VectorSelector>();
      AppendSelectorBody(out, vs);
      AppendAt(out, vs.at);
      AppendExtended(out, vs);
      AppendOffset(out, vs.offset);
      return;
    }
    case NodeKind::kMatrixSelector: {
      const auto& ms = e.As<MatrixSelector>();
      const auto& vs = ms.vector_selector();
      AppendSelectorBody(out, vs);
      *out += '[';
      *out += DurationToString(ms.range);
      *out += ']';
      AppendExtended(out, vs);
      AppendAt(out, vs.at);
      AppendOffset(out, vs.offset);
      return;
    }
    case NodeKind::kSubquery: {
      const auto& sq = e.As<Subquery>();
      Append(out, *sq.expr);
      AppendSubquerySuffix(out, sq);
      return;
    }
    case NodeKind::kParen:
      *out += '(';
      Append(out, *e.As<Paren>().expr);
      *out += ')';
      return;
    case NodeKind::kUnary: {
      const auto& u = e.As<Unary>();
      *out += u.negate ? '-' : '+';
      Append(out, *u.expr);
      return;
    }
    case NodeKind::kBinary: {
      const auto& b = e.As<Binary>();
      const Expr& lhs = *b.lhs;
      if (b.op == BinaryOp::kPow && lhs.kind() == NodeKind::kNumberLiteral &&
          std::isinf(lhs.As<NumberLiteral>().value) && lhs.As<NumberLiteral>().value > 0) {
        // "+Inf ^ 2" would read back as +(Inf ^ 2): unary operators bind looser than ^.
        *out += "Inf";
      } else {
        Append(out, lhs);
      }
      *out += ' ';
      AppendOperator(out, b);
      *out += ' ';
      Append(out, *b.rhs);
      return;
    }
    case NodeKind::kAggregate: {
      const auto& a = e.As<Aggregate>();
      AppendAggregateHead(out, a);
      *out += '(';
      if (a.param) {
        Append(out, *a.param);
        *out += ", ";
      }
      Append(out, *a.expr);
      *out += ')';
      return;
    }
    case NodeKind::kCall: {
      const auto& c = e.As<Call>();
      *out += c.func->name;
      *out += '(';
      for (size_t i = 0; i < c.args.size(); ++i) {
        if (i > 0) *out += ", ";
        Append(out, *c.args[i]);
      }
      *out += ')';
      return;
    }
  }
}

// Prometheus' Pretty(level): a node whose one-line form is longer than 100 characters is
// split, its children one level deeper, each level indented by two spaces; shorter nodes
// print on one line. Subqueries that fit are printed without indentation, as Prometheus
// prints them.
constexpr size_t kMaxCharactersPerLine = 100;

void AppendIndent(std::string* out, int level) { out->append(static_cast<size_t>(level) * 2, ' '); }

// Appends the pretty form of `e` at `level` (string appends only: GCC 12 -O3 warns falsely
// on chains of operator+).
void AppendPretty(std::string* out, const Expr& e, int level) {
  std::string one_line = ToString(e);
  const bool split = one_line.size() > kMaxCharactersPerLine;
  switch (e.kind()) {
    case NodeKind::kNumberLiteral:
    case NodeKind::kStringLiteral:
    case NodeKind::kVectorSelector:
    case NodeKind::kMatrixSelector:
      break;
    case NodeKind::kSubquery: {
      if (!split) {
        out->append(one_line);
        return;
      }
      const auto& sq = e.As<Subquery>();
      AppendPretty(out, *sq.expr, level);
      AppendSubquerySuffix(out, sq);
      return;
    }
    case NodeKind::kParen:
      if (!split) break;
      AppendIndent(out, level);
      out->append("(\n");
      AppendPretty(out, *e.As<Paren>().expr, level + 1);
      out->push_back('\n');
      AppendIndent(out, level);
      out->push_back(')');
      return;
    case NodeKind::kUnary: {
      const auto& u = e.As<Unary>();
      std::string child;
      AppendPretty(&child, *u.expr, level);
      size_t first = child.find_first_not_of(" \t\n");
      size_t last = child.find_last_not_of(" \t\n");
      AppendIndent(out, level);
      out->push_back(u.negate ? '-' : '+');
      if (first != std::string::npos) out->append(child, first, last - first + 1);
      return;
    }
    case NodeKind::kBinary: {
      if (!split) break;
      const auto& b = e.As<Binary>();
      AppendPretty(out, *b.lhs, level + 1);
      out->push_back('\n');
      AppendIndent(out, level);
      AppendOperator(out, b);
      out->push_back('\n');
      AppendPretty(out, *b.rhs, level + 1);
      return;
    }
    case NodeKind::kAggregate: {
      if (!split) break;
      const auto& a = e.As<Aggregate>();
      AppendIndent(out, level);
      AppendAggregateHead(out, a);
      out->append("(\n");
      if (a.param) {
        AppendPretty(out, *a.param, level + 1);
        out->append(",\n");
      }
      AppendPretty(out, *a.expr, level + 1);
      out->push_back('\n');
      AppendIndent(out, level);
      out->push_back(')');
      return;
    }
    case NodeKind::kCall: {
      if (!split) break;
      const auto& c = e.As<Call>();
      AppendIndent(out, level);
      out->append(c.func->name);
      out->append("(\n");
      for (size_t i = 0; i < c.args.size(); ++i) {
        if (i > 0) out->append(",\n");
        AppendPretty(out, *c.args[i], level + 1);
      }
      out->push_back('\n');
      AppendIndent(out, level);
      out->push_back(')');
      return;
    }
  }
  AppendIndent(out, level);
  out->append(one_line);
}

}  // namespace

std::string Pretty(const Expr& e) {
  std::string out;
  AppendPretty(&out, e, 0);
  return out;
}

std::string FormatNumber(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[512];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed);
  if (res.ec != std::errc()) return fmt::format("{}", v);
  return std::string(buf, res.ptr);
}

std::string DurationToString(const Duration& d) {
  if (d.expr == nullptr) return FormatDuration(d.ms);
  std::string out;
  AppendDurationExpr(&out, *d.expr);
  return out;
}

std::string ToString(const DurationExpr& e) {
  std::string out;
  AppendDurationExpr(&out, e);
  return out;
}

std::string ToString(const Expr& e) {
  std::string out;
  Append(&out, e);
  return out;
}

}  // namespace strata::promql
