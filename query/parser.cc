#include "query/parser.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "query/lexer.h"
#include "src/labels.h"
#include "src/status.h"
#include "src/strings.h"
#include "src/time.h"

namespace strata::promql {
namespace {

// Binding power of binary operators; higher binds tighter.
constexpr int kPrecOr = 1;
constexpr int kPrecAndUnless = 2;
constexpr int kPrecComparison = 3;
constexpr int kPrecAdd = 4;
constexpr int kPrecMul = 5;
constexpr int kPrecPow = 6;

int Precedence(BinaryOp op) {
  switch (op) {
    case BinaryOp::kOr:
      return kPrecOr;
    case BinaryOp::kAnd:
    case BinaryOp::kUnless:
      return kPrecAndUnless;
    case BinaryOp::kEql:
    case BinaryOp::kNeq:
    case BinaryOp::kGtr:
    case BinaryOp::kLss:
    case BinaryOp::kGte:
    case BinaryOp::kLte:
    case BinaryOp::kTrimUpper:
    case BinaryOp::kTrimLower:
      return kPrecComparison;
    case BinaryOp::kAdd:
    case BinaryOp::kSub:
      return kPrecAdd;
    case BinaryOp::kMul:
    case BinaryOp::kDiv:
    case BinaryOp::kMod:
    case BinaryOp::kAtan2:
      return kPrecMul;
    case BinaryOp::kPow:
      return kPrecPow;
  }
  return 0;
}

std::optional<BinaryOp> TokenBinaryOp(const Token& t) {
  switch (t.kind) {
    case TokenKind::kAdd:
      return BinaryOp::kAdd;
    case TokenKind::kSub:
      return BinaryOp::kSub;
    case TokenKind::kMul:
      return BinaryOp::kMul;
    case TokenKind::kDiv:
      return BinaryOp::kDiv;
    case TokenKind::kMod:
      return BinaryOp::kMod;
    case TokenKind::kPow:
      return BinaryOp::kPow;
    case TokenKind::kEqlc:
      return BinaryOp::kEql;
    case TokenKind::kNeq:
      return BinaryOp::kNeq;
    case TokenKind::kGtr:
      return BinaryOp::kGtr;
    case TokenKind::kLss:
      return BinaryOp::kLss;
    case TokenKind::kGte:
      return BinaryOp::kGte;
    case TokenKind::kLte:
      return BinaryOp::kLte;
    case TokenKind::kTrimUpper:
      return BinaryOp::kTrimUpper;
    case TokenKind::kTrimLower:
      return BinaryOp::kTrimLower;
    case TokenKind::kIdentifier:
      if (IsKeyword(t.text, "and")) return BinaryOp::kAnd;
      if (IsKeyword(t.text, "or")) return BinaryOp::kOr;
      if (IsKeyword(t.text, "unless")) return BinaryOp::kUnless;
      if (IsKeyword(t.text, "atan2")) return BinaryOp::kAtan2;
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

std::optional<AggregateOp> WordAggregateOp(std::string_view w) {
  static constexpr std::pair<std::string_view, AggregateOp> kOps[] = {
      {"sum", AggregateOp::kSum},
      {"avg", AggregateOp::kAvg},
      {"count", AggregateOp::kCount},
      {"min", AggregateOp::kMin},
      {"max", AggregateOp::kMax},
      {"group", AggregateOp::kGroup},
      {"stddev", AggregateOp::kStddev},
      {"stdvar", AggregateOp::kStdvar},
      {"topk", AggregateOp::kTopk},
      {"bottomk", AggregateOp::kBottomk},
      {"count_values", AggregateOp::kCountValues},
      {"quantile", AggregateOp::kQuantile},
      {"limitk", AggregateOp::kLimitk},
      {"limit_ratio", AggregateOp::kLimitRatio},
  };
  for (const auto& [name, op] : kOps) {
    if (IsKeyword(w, name)) return op;
  }
  return std::nullopt;
}

// Words that can never start an operand (keywords of the binary-operator and
// aggregation grammar).
bool IsReservedWord(std::string_view w) {
  // Keywords that cannot be metric names (the others, like `by` or `offset`, can).
  static constexpr std::string_view kWords[] = {"on",          "ignoring", "group_left",
                                                "group_right", "bool",     "atan2"};
  for (std::string_view k : kWords) {
    if (IsKeyword(w, k)) return true;
  }
  return false;
}

// Go's strconv.ParseInt(s, 0, 64) then ParseFloat, for the forms the lexer produces.
// With allow_overflow false, a decimal too large for a double is an error (as in Go).
std::optional<double> ParseNumberText(std::string_view s, bool allow_overflow = false) {
  std::string str(s);
  if (str.size() > 2 && str[0] == '0' && (str[1] == 'x' || str[1] == 'X')) {
    errno = 0;
    char* end = nullptr;
    unsigned long long v = std::strtoull(str.c_str() + 2, &end, 16);
    if (*end != '\0') return std::nullopt;
    if (errno == ERANGE) return std::nullopt;
    return static_cast<double>(v);
  }
  // A leading-zero integer is octal in Go's ParseInt(s, 0, 64).
  bool all_digits = !str.empty();
  for (char c : str) all_digits &= c >= '0' && c <= '9';
  if (all_digits && str.size() > 1 && str[0] == '0') {
    bool octal = true;
    for (char c : str) octal &= c <= '7';
    if (octal) return static_cast<double>(std::strtoull(str.c_str(), nullptr, 8));
  }
  char* end = nullptr;
  double v = std::strtod(str.c_str(), &end);
  if (end == nullptr || *end != '\0') return std::nullopt;
  if (std::isinf(v) && !allow_overflow) return std::nullopt;
  return v;
}

// Go's %f of a non-finite value.
std::string FormatGoInf(double v) {
  if (std::isnan(v)) return "NaN";
  return v > 0 ? "+Inf" : "-Inf";
}

class Parser {
 public:
  Parser(std::string_view query, const ParserOptions& options) : q_(query), opts_(options) {}

  absl::StatusOr<ExprPtr> Run() {
    const char base = 0;
    stack_base_ = reinterpret_cast<uintptr_t>(&base);
    Lex(q_, &toks_, &lex_error_);
    if (Peek().kind == TokenKind::kEOF) return ErrAt(0, "no expression found in input");
    STRATA_ASSIGN_OR_RETURN(ExprPtr e, ParseExpr(0));
    if (Peek().kind != TokenKind::kEOF) return Unexpected(Peek());
    for (const Expr* vs : empty_selectors_) {
      if (vs != nullptr && !opts_.allow_empty_selectors) {
        return ErrAt(vs->pos.start, "vector selector must contain at least one non-empty matcher");
      }
    }
    return e;
  }

 private:
  // ---- Token access -------------------------------------------------------------------

  const Token& Peek(size_t ahead = 0) const {
    size_t i = std::min(pos_ + ahead, toks_.size() - 1);
    return toks_[i];
  }
  const Token& Next() {
    const Token& t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) ++pos_;
    return t;
  }
  bool PeekWord(std::string_view keyword, size_t ahead = 0) const {
    const Token& t = Peek(ahead);
    return t.kind == TokenKind::kIdentifier && IsKeyword(t.text, keyword);
  }
  int LastEnd() const { return pos_ == 0 ? 0 : toks_[pos_ - 1].end(); }

  // ---- Errors -------------------------------------------------------------------------

  absl::Status ErrAt(int pos, std::string_view msg) const {
    auto [line, col] = LineCol(q_, pos);
    return absl::InvalidArgumentError(fmt::format("{}:{}: parse error: {}", line, col, msg));
  }
  absl::Status Unexpected(const Token& t, std::string_view context = "") const {
    if (t.kind == TokenKind::kError) return ErrAt(lex_error_.pos, lex_error_.message);
    std::string msg = fmt::format("unexpected {}", DescribeToken(t));
    if (!context.empty()) msg += fmt::format(" {}", context);
    return ErrAt(t.pos, msg);
  }
  absl::Status Expect(TokenKind kind, std::string_view context) {
    if (Peek().kind != kind) return Unexpected(Peek(), context);
    Next();
    return absl::OkStatus();
  }

  // Guards recursion; every recursive descent goes through one.
  struct DepthGuard {
    explicit DepthGuard(Parser* p) : p(p) { ++p->depth_; }
    ~DepthGuard() { --p->depth_; }
    Parser* p;
  };
  absl::Status CheckDepth(int extra = 0) const {
    const char probe = 0;
    const uintptr_t here = reinterpret_cast<uintptr_t>(&probe);
    const uintptr_t used = here > stack_base_ ? here - stack_base_ : stack_base_ - here;
    if (depth_ + extra > opts_.max_depth) {
      return ErrAt(Peek().pos, fmt::format("expression nesting too deep (more than {} levels)",
                                           opts_.max_depth));
    }
    // A distance over 1 GiB means the locals do not live on one stack (e.g. ASan's fake
    // stacks); then only the depth bound applies.
    if (used > opts_.max_stack_bytes && used < (uintptr_t{1} << 30)) {
      return ErrAt(Peek().pos, "expression nesting too deep (parser stack limit reached)");
    }
    return absl::OkStatus();
  }

  // ---- Expressions --------------------------------------------------------------------

  absl::StatusOr<ExprPtr> ParseExpr(int min_prec) {
    DepthGuard guard(this);
    STRATA_RETURN_IF_ERROR(CheckDepth());
    STRATA_ASSIGN_OR_RETURN(ExprPtr lhs, ParseUnary());
    int chain = 0;
    while (true) {
      const Token& op_tok = Peek();
      std::optional<BinaryOp> op = TokenBinaryOp(op_tok);
      if (!op || Precedence(*op) < min_prec) break;
      STRATA_RETURN_IF_ERROR(CheckDepth(++chain));
      Next();
      auto bin = std::make_unique<Binary>();
      bin->op = *op;
      VectorMatching vm;
      bool has_grouping_modifier = false;
      STRATA_RETURN_IF_ERROR(ParseBinModifiers(bin.get(), &vm, &has_grouping_modifier));
      const int next_prec = *op == BinaryOp::kPow ? Precedence(*op) : Precedence(*op) + 1;
      STRATA_ASSIGN_OR_RETURN(ExprPtr rhs, ParseExpr(next_prec));
      bin->pos = {lhs->pos.start, rhs->pos.end};
      bin->lhs = std::move(lhs);
      bin->rhs = std::move(rhs);
      STRATA_RETURN_IF_ERROR(CheckBinary(bin.get(), op_tok, std::move(vm)));
      lhs = std::move(bin);
    }
    return lhs;
  }

  absl::Status ParseBinModifiers(Binary* bin, VectorMatching* vm, bool* has_modifier) {
    if (PeekWord("bool")) {
      Next();
      bin->return_bool = true;
    }
    if (PeekWord("on") || PeekWord("ignoring")) {
      vm->on = PeekWord("on");
      Next();
      *has_modifier = true;
      STRATA_ASSIGN_OR_RETURN(vm->matching_labels, ParseLabelList());
      if (PeekWord("group_left") || PeekWord("group_right")) {
        vm->card =
            PeekWord("group_left") ? VectorMatchCard::kManyToOne : VectorMatchCard::kOneToMany;
        Next();
        if (Peek().kind == TokenKind::kLeftParen) {
          STRATA_ASSIGN_OR_RETURN(vm->include, ParseLabelList());
        }
      }
    }
    while ((PeekWord("fill") || PeekWord("fill_left") || PeekWord("fill_right")) &&
           Peek(1).kind == TokenKind::kLeftParen) {
      const Token& t = Next();
      if (!opts_.binop_fill_modifiers) {
        return ErrAt(t.pos, "binop fill modifiers are experimental and not enabled");
      }
      STRATA_RETURN_IF_ERROR(Expect(TokenKind::kLeftParen, "in fill modifier"));
      STRATA_ASSIGN_OR_RETURN(double v, ParseSignedNumber("in fill modifier"));
      STRATA_RETURN_IF_ERROR(Expect(TokenKind::kRightParen, "in fill modifier"));
      if (IsKeyword(t.text, "fill")) {
        vm->fill_left = v;
        vm->fill_right = v;
      } else if (IsKeyword(t.text, "fill_left")) {
        vm->fill_left = v;
      } else {
        vm->fill_right = v;
      }
      *has_modifier = true;
    }
    return absl::OkStatus();
  }

  // [+-] number | Inf | NaN | duration (seconds).
  absl::StatusOr<double> ParseSignedNumber(std::string_view context) {
    double sign = 1;
    if (Peek().kind == TokenKind::kAdd || Peek().kind == TokenKind::kSub) {
      if (Next().kind == TokenKind::kSub) sign = -1;
    }
    const Token& t = Peek();
    if (t.kind == TokenKind::kNumber) {
      Next();
      std::optional<double> v = ParseNumberText(t.text);
      if (!v) return NumberError(t);
      return sign * *v;
    }
    if (t.kind == TokenKind::kDuration) {
      Next();
      STRATA_ASSIGN_OR_RETURN(int64_t ms, ParseDurationToken(t));
      return sign * static_cast<double>(ms) / 1000.0;
    }
    if (t.kind == TokenKind::kIdentifier && IsKeyword(t.text, "inf")) {
      Next();
      return sign * std::numeric_limits<double>::infinity();
    }
    if (t.kind == TokenKind::kIdentifier && IsKeyword(t.text, "nan")) {
      Next();
      return std::numeric_limits<double>::quiet_NaN();
    }
    return Unexpected(t, context);
  }

  absl::Status CheckBinary(Binary* bin, const Token& op_tok, VectorMatching vm) {
    const ValueType lt = bin->lhs->type();
    const ValueType rt = bin->rhs->type();
    const BinaryOp op = bin->op;
    if (bin->return_bool && !IsComparison(op)) {
      return ErrAt(op_tok.pos, "bool modifier can only be used on comparison operators");
    }
    if (IsComparison(op) && !bin->return_bool && lt == ValueType::kScalar &&
        rt == ValueType::kScalar) {
      return ErrAt(op_tok.pos, "comparisons between scalars must use BOOL modifier");
    }
    if (IsSetOperator(op) && vm.card == VectorMatchCard::kOneToOne) {
      vm.card = VectorMatchCard::kManyToMany;
    }
    if (vm.on) {
      for (const std::string& l1 : vm.matching_labels) {
        for (const std::string& l2 : vm.include) {
          if (l1 == l2) {
            return ErrAt(op_tok.pos, fmt::format("label {} must not occur in ON and GROUP "
                                                 "clause at once",
                                                 QuoteString(l1)));
          }
        }
      }
    }
    if (lt != ValueType::kScalar && lt != ValueType::kVector) {
      return ErrAt(bin->lhs->pos.start,
                   "binary expression must contain only scalar and instant vector types");
    }
    if (rt != ValueType::kScalar && rt != ValueType::kVector) {
      return ErrAt(bin->rhs->pos.start,
                   "binary expression must contain only scalar and instant vector types");
    }
    const bool has_fill = vm.fill_left.has_value() || vm.fill_right.has_value();
    if (lt != ValueType::kVector || rt != ValueType::kVector) {
      if (!vm.matching_labels.empty() || vm.on) {
        return ErrAt(bin->pos.start, "vector matching only allowed between instant vectors");
      }
      if (vm.card == VectorMatchCard::kManyToOne || vm.card == VectorMatchCard::kOneToMany) {
        return ErrAt(bin->pos.start, "vector matching only allowed between instant vectors");
      }
      if (has_fill) {
        return ErrAt(bin->pos.start,
                     "filling in missing series only allowed between instant vectors");
      }
    } else {
      if (IsSetOperator(op)) {
        if (vm.card == VectorMatchCard::kOneToMany || vm.card == VectorMatchCard::kManyToOne) {
          return ErrAt(bin->pos.start,
                       fmt::format("no grouping allowed for \"{}\" operation", BinaryOpString(op)));
        }
        if (has_fill) {
          return ErrAt(bin->pos.start, "filling in missing series not allowed for set operators");
        }
      }
      bin->matching = std::move(vm);
    }
    if ((lt == ValueType::kScalar || rt == ValueType::kScalar) && IsSetOperator(op)) {
      return ErrAt(bin->pos.start,
                   fmt::format("set operator \"{}\" not allowed in binary scalar expression",
                               BinaryOpString(op)));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<ExprPtr> ParseUnary() {
    const Token& t = Peek();
    if (t.kind != TokenKind::kAdd && t.kind != TokenKind::kSub) return ParsePostfix();
    DepthGuard guard(this);
    STRATA_RETURN_IF_ERROR(CheckDepth());
    Next();
    // Unary operators bind tighter than every binary operator except `^`.
    STRATA_ASSIGN_OR_RETURN(ExprPtr operand, ParseExpr(kPrecPow));
    if (operand->kind() == NodeKind::kNumberLiteral) {
      auto& n = operand->As<NumberLiteral>();
      if (t.kind == TokenKind::kSub) n.value = -n.value;
      n.pos.start = t.pos;
      return operand;
    }
    const ValueType ty = operand->type();
    auto u = std::make_unique<Unary>();
    u->negate = t.kind == TokenKind::kSub;
    u->pos = {t.pos, operand->pos.end};
    u->expr = std::move(operand);
    if (ty != ValueType::kScalar && ty != ValueType::kVector) {
      return ErrAt(u->pos.start,
                   fmt::format("unary expression only allowed on expressions of type scalar or "
                               "instant vector, got \"{}\"",
                               ValueTypeName(ty)));
    }
    return ExprPtr(std::move(u));
  }

  // A primary followed by any number of `[range]`, `[range:step]`, `offset`, `@`,
  // `anchored`, `smoothed`.
  absl::StatusOr<ExprPtr> ParsePostfix() {
    STRATA_ASSIGN_OR_RETURN(ExprPtr e, ParsePrimary());
    while (true) {
      const Token& t = Peek();
      if (t.kind == TokenKind::kLeftBracket) {
        STRATA_ASSIGN_OR_RETURN(e, ParseRangeOrSubquery(std::move(e)));
      } else if (PeekWord("offset")) {
        STRATA_RETURN_IF_ERROR(ParseOffset(e.get()));
      } else if (t.kind == TokenKind::kAt) {
        STRATA_RETURN_IF_ERROR(ParseAt(e.get()));
      } else if (PeekWord("anchored") || PeekWord("smoothed")) {
        STRATA_RETURN_IF_ERROR(ParseExtendedModifier(e.get()));
      } else {
        break;
      }
    }
    return e;
  }

  absl::StatusOr<ExprPtr> ParseRangeOrSubquery(ExprPtr e) {
    const Token& open = Next();
    STRATA_ASSIGN_OR_RETURN(Duration range,
                            ParseDurationSlot(/*full=*/true,
                                              "in subquery or range selector, expected number, "
                                              "duration, step(), or range()"));
    if (Peek().kind == TokenKind::kColon) {
      Next();
      auto sq = std::make_unique<Subquery>();
      sq->range = std::move(range);
      if (Peek().kind != TokenKind::kRightBracket) {
        STRATA_ASSIGN_OR_RETURN(
            sq->step, ParseDurationSlot(/*full=*/true,
                                        "in subquery selector, expected number or duration or "
                                        "\"]\""));
        // A zero step (`[5m:0s]`) means the default step, as if none were written.
        sq->has_step = !(sq->step.expr == nullptr && sq->step.ms == 0);
      }
      STRATA_RETURN_IF_ERROR(
          Expect(TokenKind::kRightBracket, "in subquery selector, expected \"]\""));
      sq->pos = {e->pos.start, LastEnd()};
      const ValueType ty = e->type();
      sq->expr = std::move(e);
      if (ty != ValueType::kVector) {
        return ErrAt(sq->pos.start,
                     fmt::format("subquery is only allowed on instant vector, got {} instead",
                                 ValueTypeApiName(ty)));
      }
      STRATA_RETURN_IF_ERROR(CheckPositive(sq->range, open.pos + 1, "subquery range"));
      if (sq->has_step) {
        STRATA_RETURN_IF_ERROR(CheckPositive(sq->step, open.pos + 1, "subquery step"));
      }
      return ExprPtr(std::move(sq));
    }
    STRATA_RETURN_IF_ERROR(
        Expect(TokenKind::kRightBracket, "in subquery or range, expected \":\" or \"]\""));
    if (e->kind() != NodeKind::kVectorSelector) {
      return ErrAt(open.pos, "ranges only allowed for vector selectors");
    }
    const auto& vs = e->As<VectorSelector>();
    if (vs.has_offset) return ErrAt(open.pos, "no offset modifiers allowed before range");
    if (vs.at.kind != AtKind::kNone) {
      return ErrAt(open.pos, "no @ modifiers allowed before range");
    }
    auto ms = std::make_unique<MatrixSelector>();
    ms->pos = {e->pos.start, LastEnd()};
    ms->selector = std::move(e);
    ms->range = std::move(range);
    STRATA_RETURN_IF_ERROR(CheckPositive(ms->range, open.pos + 1, "range"));
    return ExprPtr(std::move(ms));
  }

  absl::Status CheckPositive(const Duration& d, int pos, std::string_view what) {
    if (d.IsConstant() && d.ms <= 0) {
      return ErrAt(pos,
                   fmt::format("{} must be greater than 0", what == "range" ? "duration" : what));
    }
    return absl::OkStatus();
  }

  // The selector whose modifiers a postfix `offset` / `@` / `anchored` sets, and where.
  struct ModifierTarget {
    Duration* offset = nullptr;
    bool* has_offset = nullptr;
    AtModifier* at = nullptr;
    VectorSelector* selector = nullptr;  // for anchored/smoothed
  };
  std::optional<ModifierTarget> TargetOf(Expr* e) {
    switch (e->kind()) {
      case NodeKind::kVectorSelector: {
        auto& vs = e->As<VectorSelector>();
        return ModifierTarget{&vs.offset, &vs.has_offset, &vs.at, &vs};
      }
      case NodeKind::kMatrixSelector: {
        auto& vs = e->As<MatrixSelector>().selector->As<VectorSelector>();
        return ModifierTarget{&vs.offset, &vs.has_offset, &vs.at, &vs};
      }
      case NodeKind::kSubquery: {
        auto& sq = e->As<Subquery>();
        return ModifierTarget{&sq.offset, &sq.has_offset, &sq.at, nullptr};
      }
      default:
        return std::nullopt;
    }
  }

  absl::Status ParseOffset(Expr* e) {
    Next();
    std::optional<ModifierTarget> target = TargetOf(e);
    if (!target) {
      return ErrAt(e->pos.start,
                   "offset modifier must be preceded by an instant vector selector or range "
                   "vector selector or a subquery");
    }
    if (*target->has_offset) return ErrAt(e->pos.start, "offset may not be set multiple times");
    STRATA_ASSIGN_OR_RETURN(Duration d, ParseDurationSlot(/*full=*/false,
                                                          "in offset, expected number, duration, "
                                                          "step(), or range()"));
    *target->offset = std::move(d);
    *target->has_offset = true;
    e->pos.end = LastEnd();
    return absl::OkStatus();
  }

  absl::Status ParseAt(Expr* e) {
    Next();
    std::optional<ModifierTarget> target = TargetOf(e);
    if (!target) {
      return ErrAt(e->pos.start,
                   "@ modifier must be preceded by an instant vector selector or range vector "
                   "selector or a subquery");
    }
    if (target->at->kind != AtKind::kNone) {
      return ErrAt(e->pos.start, "@ <timestamp> may not be set multiple times");
    }
    if ((PeekWord("start") || PeekWord("end")) && Peek(1).kind == TokenKind::kLeftParen) {
      const bool start = PeekWord("start");
      Next();
      Next();
      STRATA_RETURN_IF_ERROR(Expect(TokenKind::kRightParen, "in @, expected \")\""));
      target->at->kind = start ? AtKind::kStart : AtKind::kEnd;
    } else {
      STRATA_ASSIGN_OR_RETURN(double ts, ParseSignedNumber("in @, expected timestamp"));
      if (!std::isfinite(ts) || ts >= 9.2e15 || ts <= -9.2e15) {
        return ErrAt(e->pos.start,
                     fmt::format("timestamp out of bounds for @ modifier: {}",
                                 std::isfinite(ts) ? fmt::format("{:f}", ts) : FormatGoInf(ts)));
      }
      target->at->kind = AtKind::kTimestamp;
      target->at->timestamp_ms = static_cast<int64_t>(std::round(ts * 1000.0));
    }
    e->pos.end = LastEnd();
    return absl::OkStatus();
  }

  absl::Status ParseExtendedModifier(Expr* e) {
    const Token& t = Next();
    const bool anchored = IsKeyword(t.text, "anchored");
    const std::string_view name = anchored ? "anchored" : "smoothed";
    if (!opts_.extended_range_selectors) {
      return ErrAt(e->pos.start, fmt::format("{} modifier is experimental and not enabled", name));
    }
    if (e->kind() == NodeKind::kSubquery) {
      return ErrAt(e->pos.start, fmt::format("{} modifier is not supported for subqueries", name));
    }
    std::optional<ModifierTarget> target = TargetOf(e);
    if (!target || target->selector == nullptr) {
      return ErrAt(e->pos.start, fmt::format("{} modifier not implemented", name));
    }
    VectorSelector* vs = target->selector;
    (anchored ? vs->anchored : vs->smoothed) = true;
    if (vs->anchored && vs->smoothed) {
      return ErrAt(e->pos.start, "anchored and smoothed modifiers cannot be used together");
    }
    e->pos.end = LastEnd();
    return absl::OkStatus();
  }

  absl::StatusOr<ExprPtr> ParsePrimary() {
    const Token& t = Peek();
    switch (t.kind) {
      case TokenKind::kNumber: {
        Next();
        std::optional<double> v = ParseNumberText(t.text);
        if (!v) return NumberError(t);
        auto n = std::make_unique<NumberLiteral>();
        n->value = *v;
        n->pos = {t.pos, t.end()};
        return ExprPtr(std::move(n));
      }
      case TokenKind::kDuration: {
        Next();
        STRATA_ASSIGN_OR_RETURN(int64_t ms, ParseDurationToken(t));
        auto n = std::make_unique<NumberLiteral>();
        n->value = static_cast<double>(ms) / 1000.0;
        n->is_duration = true;
        n->pos = {t.pos, t.end()};
        return ExprPtr(std::move(n));
      }
      case TokenKind::kString: {
        Next();
        STRATA_ASSIGN_OR_RETURN(std::string v, Unquote(t));
        auto s = std::make_unique<StringLiteral>();
        s->value = std::move(v);
        s->pos = {t.pos, t.end()};
        return ExprPtr(std::move(s));
      }
      case TokenKind::kLeftParen: {
        Next();
        STRATA_ASSIGN_OR_RETURN(ExprPtr inner, ParseExpr(0));
        if (Peek().kind != TokenKind::kRightParen) {
          return Unexpected(Peek(), "in paren expression");
        }
        Next();
        auto p = std::make_unique<Paren>();
        p->pos = {t.pos, LastEnd()};
        p->expr = std::move(inner);
        return ExprPtr(std::move(p));
      }
      case TokenKind::kLeftBrace:
        return ParseVectorSelector("", t.pos);
      case TokenKind::kMetricIdentifier:
        Next();
        return ParseVectorSelector(t.text, t.pos);
      case TokenKind::kIdentifier: {
        if (IsKeyword(t.text, "inf") || IsKeyword(t.text, "nan")) {
          Next();
          auto n = std::make_unique<NumberLiteral>();
          n->value = IsKeyword(t.text, "inf") ? std::numeric_limits<double>::infinity()
                                              : std::numeric_limits<double>::quiet_NaN();
          n->pos = {t.pos, t.end()};
          return ExprPtr(std::move(n));
        }
        if (std::optional<AggregateOp> op = WordAggregateOp(t.text)) {
          // `sum` not followed by `(`, `by` or `without` is a metric name (`foo * sum`).
          if (Peek(1).kind == TokenKind::kLeftParen || PeekWord("by", 1) ||
              PeekWord("without", 1)) {
            return ParseAggregate(*op);
          }
        }
        if (IsReservedWord(t.text)) return Unexpected(t);
        if (Peek(1).kind == TokenKind::kLeftParen) return ParseCall();
        Next();
        return ParseVectorSelector(t.text, t.pos);
      }
      default:
        return Unexpected(t);
    }
  }

  absl::StatusOr<std::string> Unquote(const Token& t) {
    absl::StatusOr<std::string> v = UnquoteString(t.text);
    if (!v.ok()) {
      return ErrAt(t.pos, fmt::format("error unquoting string {}: {}", QuoteString(t.text),
                                      std::string(v.status().message())));
    }
    return v;
  }

  absl::Status NumberError(const Token& t) const {
    std::optional<double> v = ParseNumberText(t.text, /*allow_overflow=*/true);
    return ErrAt(t.pos,
                 fmt::format("error parsing number: strconv.ParseFloat: parsing {}: {}",
                             QuoteString(t.text), v ? "value out of range" : "invalid syntax"));
  }

  absl::StatusOr<int64_t> ParseDurationToken(const Token& t) {
    absl::StatusOr<int64_t> ms = ParseDuration(t.text);
    if (!ms.ok()) {
      // Name a unit Prometheus does not know, as it does.
      for (size_t i = 0; i < t.text.size();) {
        size_t j = i;
        while (j < t.text.size() &&
               (std::isdigit(static_cast<unsigned char>(t.text[j])) || t.text[j] == '.')) {
          ++j;
        }
        size_t k = j;
        while (k < t.text.size() && std::isalpha(static_cast<unsigned char>(t.text[k]))) ++k;
        std::string_view unit = t.text.substr(j, k - j);
        if (unit != "ms" && unit != "s" && unit != "m" && unit != "h" && unit != "d" &&
            unit != "w" && unit != "y") {
          return ErrAt(t.pos, fmt::format("unknown unit {} in duration {}", QuoteString(unit),
                                          QuoteString(t.text)));
        }
        if (k == i) break;
        i = k;
      }
      return ErrAt(t.pos, fmt::format("not a valid duration string: {}", QuoteString(t.text)));
    }
    return *ms;
  }

  // ---- Selectors ----------------------------------------------------------------------

  absl::StatusOr<ExprPtr> ParseVectorSelector(std::string_view name, int start) {
    auto vs = std::make_unique<VectorSelector>();
    vs->name = std::string(name);
    vs->pos = {start, LastEnd()};
    std::vector<LabelMatcher> matchers;
    if (Peek().kind == TokenKind::kLeftBrace) {
      Next();
      while (Peek().kind != TokenKind::kRightBrace) {
        const Token& label = Peek();
        std::string label_name;
        if (label.kind == TokenKind::kString) {
          Next();
          STRATA_ASSIGN_OR_RETURN(label_name, Unquote(label));
          if (Peek().kind == TokenKind::kComma || Peek().kind == TokenKind::kRightBrace) {
            // A bare quoted string is a __name__ matcher: {"my.metric"}. As in Prometheus
            // it does not set `name`.
            absl::StatusOr<LabelMatcher> m =
                LabelMatcher::Make(MatchType::kEqual, kMetricName, label_name);
            if (!m.ok()) return ErrAt(label.pos, std::string(m.status().message()));
            matchers.push_back(*std::move(m));
            if (Peek().kind == TokenKind::kComma) Next();
            continue;
          }
        } else if (label.kind == TokenKind::kIdentifier) {
          Next();
          label_name = std::string(label.text);
        } else {
          return Unexpected(label, "in label matching, expected identifier or \"}\"");
        }
        const Token& op = Peek();
        MatchType type;
        switch (op.kind) {
          case TokenKind::kAssign:
            type = MatchType::kEqual;
            break;
          case TokenKind::kNeq:
            type = MatchType::kNotEqual;
            break;
          case TokenKind::kEqlRegex:
            type = MatchType::kRegexMatch;
            break;
          case TokenKind::kNeqRegex:
            type = MatchType::kRegexNoMatch;
            break;
          default:
            return Unexpected(op, "in label matching, expected label matching operator");
        }
        Next();
        const Token& value = Peek();
        if (value.kind != TokenKind::kString) {
          return Unexpected(value, "in label matching, expected string");
        }
        Next();
        STRATA_ASSIGN_OR_RETURN(std::string v, Unquote(value));
        absl::StatusOr<LabelMatcher> m = LabelMatcher::Make(type, label_name, v);
        if (!m.ok()) return ErrAt(label.pos, std::string(m.status().message()));
        matchers.push_back(*std::move(m));
        if (Peek().kind == TokenKind::kComma) {
          Next();
        } else if (Peek().kind != TokenKind::kRightBrace) {
          return Unexpected(Peek(), "in label matching, expected \",\" or \"}\"");
        }
      }
      Next();
      vs->pos.end = LastEnd();
    }
    if (!vs->name.empty()) {
      for (const LabelMatcher& m : matchers) {
        if (m.name() == kMetricName) {
          return ErrAt(start, fmt::format("metric name must not be set twice: {} or {}",
                                          QuoteString(vs->name), QuoteString(m.value())));
        }
      }
      absl::StatusOr<LabelMatcher> nm =
          LabelMatcher::Make(MatchType::kEqual, kMetricName, vs->name);
      if (!nm.ok()) return ErrAt(start, std::string(nm.status().message()));
      vs->matchers.push_back(*std::move(nm));
    } else {
      bool non_empty = false;
      for (const LabelMatcher& m : matchers) non_empty |= !m.Matches("");
      // Reported at the end unless the selector turns out to be the label-selector argument
      // of info(), which may match everything.
      if (!non_empty) empty_selectors_.push_back(vs.get());
    }
    for (LabelMatcher& m : matchers) vs->matchers.push_back(std::move(m));
    return ExprPtr(std::move(vs));
  }

  // `(` [label {, label}] [,] `)`; labels are identifiers, keywords or quoted strings.
  absl::StatusOr<std::vector<std::string>> ParseLabelList() {
    std::vector<std::string> out;
    if (Peek().kind != TokenKind::kLeftParen)
      return Unexpected(Peek(), "in grouping opts, expected \"(\"");
    Next();
    while (Peek().kind != TokenKind::kRightParen) {
      const Token& t = Peek();
      if (t.kind == TokenKind::kIdentifier) {
        out.emplace_back(t.text);
      } else if (t.kind == TokenKind::kString) {
        STRATA_ASSIGN_OR_RETURN(std::string s, Unquote(t));
        if (!IsValidUtf8(s))
          return ErrAt(t.pos, fmt::format("invalid label name {}", QuoteString(s)));
        out.push_back(std::move(s));
      } else {
        return Unexpected(t, "in grouping opts, expected label");
      }
      Next();
      if (Peek().kind == TokenKind::kComma) {
        Next();
      } else if (Peek().kind != TokenKind::kRightParen) {
        return Unexpected(Peek(), "in grouping opts, expected \",\" or \")\"");
      }
    }
    Next();
    return out;
  }

  // ---- Aggregations and calls ---------------------------------------------------------

  absl::StatusOr<ExprPtr> ParseAggregate(AggregateOp op) {
    const Token& kw = Next();
    if (AggregateIsExperimental(op) && !opts_.experimental_functions) {
      return ErrAt(kw.pos, fmt::format("limitk() and limit_ratio() are experimental and must be "
                                       "enabled with --enable-feature=promql-experimental-"
                                       "functions"));
    }
    auto agg = std::make_unique<Aggregate>();
    agg->op = op;
    bool grouped = false;
    auto parse_grouping = [&]() -> absl::Status {
      agg->without = PeekWord("without");
      Next();
      STRATA_ASSIGN_OR_RETURN(agg->grouping, ParseLabelList());
      grouped = true;
      return absl::OkStatus();
    };
    if (PeekWord("by") || PeekWord("without")) STRATA_RETURN_IF_ERROR(parse_grouping());
    if (Peek().kind != TokenKind::kLeftParen) return Unexpected(Peek(), "in aggregation");
    Next();
    std::vector<ExprPtr> args;
    STRATA_RETURN_IF_ERROR(ParseArgs(&args));
    if (!grouped && (PeekWord("by") || PeekWord("without"))) {
      STRATA_RETURN_IF_ERROR(parse_grouping());
    }
    agg->pos = {kw.pos, LastEnd()};
    if (args.empty()) {
      return ErrAt(agg->pos.start, "no arguments for aggregate expression provided");
    }
    const size_t want = AggregateHasParam(op) ? 2 : 1;
    if (args.size() != want) {
      return ErrAt(agg->pos.start,
                   fmt::format("wrong number of arguments for aggregate expression provided, "
                               "expected {}, got {}",
                               want, args.size()));
    }
    if (want == 2) agg->param = std::move(args[0]);
    agg->expr = std::move(args.back());
    if (agg->expr->type() != ValueType::kVector) {
      return ErrAt(agg->expr->pos.start,
                   fmt::format("expected type instant vector in aggregation expression, got {}",
                               ValueTypeName(agg->expr->type())));
    }
    if (agg->param) {
      const ValueType want_param =
          op == AggregateOp::kCountValues ? ValueType::kString : ValueType::kScalar;
      if (agg->param->type() != want_param) {
        return ErrAt(agg->param->pos.start,
                     fmt::format("expected type {} in aggregation parameter, got {}",
                                 ValueTypeName(want_param), ValueTypeName(agg->param->type())));
      }
    }
    return ExprPtr(std::move(agg));
  }

  // After `(`: [expr {, expr}] [,] `)`.
  absl::Status ParseArgs(std::vector<ExprPtr>* args) {
    while (Peek().kind != TokenKind::kRightParen) {
      STRATA_ASSIGN_OR_RETURN(ExprPtr a, ParseExpr(0));
      args->push_back(std::move(a));
      if (Peek().kind == TokenKind::kComma) {
        const Token& comma = Next();
        if (Peek().kind == TokenKind::kRightParen) {
          return ErrAt(comma.pos, "trailing commas not allowed in function call args");
        }
      } else if (Peek().kind != TokenKind::kRightParen) {
        return Unexpected(Peek(), "in argument list, expected \",\" or \")\"");
      }
    }
    Next();
    return absl::OkStatus();
  }

  absl::StatusOr<ExprPtr> ParseCall() {
    const Token& name = Next();
    const FunctionInfo* f = LookupFunction(name.text);
    if (f == nullptr) {
      return ErrAt(name.pos, fmt::format("unknown function with name {}", QuoteString(name.text)));
    }
    if (f->experimental && !opts_.experimental_functions) {
      return ErrAt(name.pos, fmt::format("function {} is not enabled", QuoteString(name.text)));
    }
    Next();  // (
    auto call = std::make_unique<Call>();
    call->func = f;
    STRATA_RETURN_IF_ERROR(ParseArgs(&call->args));
    call->pos = {name.pos, LastEnd()};
    const int nargs = static_cast<int>(call->args.size());
    const int ntypes = static_cast<int>(f->arg_types.size());
    if (f->variadic == 0) {
      if (nargs != ntypes) {
        return ErrAt(call->pos.start, fmt::format("expected {} argument(s) in call to {}, got {}",
                                                  ntypes, QuoteString(f->name), nargs));
      }
    } else if (ntypes - 1 > nargs) {
      return ErrAt(call->pos.start,
                   fmt::format("expected at least {} argument(s) in call to {}, got {}", ntypes - 1,
                               QuoteString(f->name), nargs));
    } else if (f->variadic > 0 && ntypes - 1 + f->variadic < nargs) {
      return ErrAt(call->pos.start,
                   fmt::format("expected at most {} argument(s) in call to {}, got {}",
                               ntypes - 1 + f->variadic, QuoteString(f->name), nargs));
    }
    if (f->id == FunctionId::kInfo && nargs > 1) {
      Expr& second = *call->args[1];
      if (second.type() != ValueType::kVector) {
        return ErrAt(
            call->pos.start,
            fmt::format("expected type instant vector in call to function \"info\", got {}",
                        ValueTypeName(second.type())));
      }
      if (second.kind() != NodeKind::kVectorSelector) {
        return ErrAt(second.pos.start, "expected label selectors only");
      }
      if (!second.As<VectorSelector>().name.empty()) {
        return ErrAt(second.pos.start,
                     "expected label selectors only, got vector selector instead");
      }
      for (const Expr*& vs : empty_selectors_) {
        if (vs == &second) vs = nullptr;
      }
    }
    for (int i = 0; i < nargs; ++i) {
      int ti = i;
      if (i >= ntypes) {
        if (f->variadic == 0) break;
        ti = ntypes - 1;
      }
      const ValueType t = call->args[i]->type();
      if (t != f->arg_types[ti]) {
        return ErrAt(
            call->args[i]->pos.start,
            fmt::format("expected type {} in call to function {}, got {}",
                        ValueTypeName(f->arg_types[ti]), QuoteString(f->name), ValueTypeName(t)));
      }
    }
    return ExprPtr(std::move(call));
  }

  // ---- Durations ----------------------------------------------------------------------

  // A range, subquery step (full = true: any duration expression) or an offset (full =
  // false: a signed literal, a function or a parenthesised expression; what follows
  // belongs to the enclosing expression, so `x offset 1m + 2` adds 2 to the selector).
  absl::StatusOr<Duration> ParseDurationSlot(bool full, std::string_view context) {
    const int start = Peek().pos;
    dur_context_ = context;
    std::unique_ptr<DurationExpr> e;
    if (full) {
      STRATA_ASSIGN_OR_RETURN(e, ParseDurExpr(0));
    } else {
      STRATA_ASSIGN_OR_RETURN(e, ParseDurUnary(/*offset_form=*/true));
    }
    Duration d;
    if (e->op == DurationOp::kNumber && !e->wrapped) {
      // As Prometheus: a literal must fit a Go time.Duration (int64 nanoseconds).
      if (!(std::abs(e->seconds) <= 9.2e9)) return ErrAt(start, "duration out of range");
      d.ms = static_cast<int64_t>(std::llround(e->seconds * 1000.0));
      return d;
    }
    if (!opts_.duration_expressions) {
      return ErrAt(start, "experimental duration expression is not enabled");
    }
    if (e->IsConstant()) {
      absl::StatusOr<double> v = EvalDurationSeconds(*e, DurationContext{});
      if (!v.ok()) return ErrAt(start, std::string(v.status().message()));
      if (!(std::abs(*v) <= 9.2e9)) return ErrAt(start, "duration out of range");
      d.ms = static_cast<int64_t>(std::llround(*v * 1000.0));
    }
    d.expr = std::move(e);
    return d;
  }

  static int DurPrecedence(TokenKind k) {
    switch (k) {
      case TokenKind::kAdd:
      case TokenKind::kSub:
        return kPrecAdd;
      case TokenKind::kMul:
      case TokenKind::kDiv:
      case TokenKind::kMod:
        return kPrecMul;
      case TokenKind::kPow:
        return kPrecPow;
      default:
        return 0;
    }
  }

  absl::StatusOr<std::unique_ptr<DurationExpr>> ParseDurExpr(int min_prec) {
    DepthGuard guard(this);
    STRATA_RETURN_IF_ERROR(CheckDepth());
    STRATA_ASSIGN_OR_RETURN(std::unique_ptr<DurationExpr> lhs, ParseDurUnary(false));
    int chain = 0;
    while (true) {
      const Token& t = Peek();
      const int prec = DurPrecedence(t.kind);
      if (prec == 0 || prec < min_prec) break;
      STRATA_RETURN_IF_ERROR(CheckDepth(++chain));
      Next();
      STRATA_ASSIGN_OR_RETURN(std::unique_ptr<DurationExpr> rhs,
                              ParseDurExpr(t.kind == TokenKind::kPow ? prec : prec + 1));
      auto b = std::make_unique<DurationExpr>();
      switch (t.kind) {
        case TokenKind::kAdd:
          b->op = DurationOp::kAdd;
          break;
        case TokenKind::kSub:
          b->op = DurationOp::kSub;
          break;
        case TokenKind::kMul:
          b->op = DurationOp::kMul;
          break;
        case TokenKind::kDiv:
          b->op = DurationOp::kDiv;
          break;
        case TokenKind::kMod:
          b->op = DurationOp::kMod;
          break;
        default:
          b->op = DurationOp::kPow;
          break;
      }
      b->pos = {lhs->pos.start, rhs->pos.end};
      b->lhs = std::move(lhs);
      b->rhs = std::move(rhs);
      lhs = std::move(b);
    }
    return lhs;
  }

  absl::StatusOr<std::unique_ptr<DurationExpr>> ParseDurUnary(bool offset_form) {
    const Token& t = Peek();
    if (t.kind != TokenKind::kAdd && t.kind != TokenKind::kSub) {
      return ParseDurPrimary();
    }
    DepthGuard guard(this);
    STRATA_RETURN_IF_ERROR(CheckDepth());
    Next();
    std::unique_ptr<DurationExpr> operand;
    if (offset_form) {
      STRATA_ASSIGN_OR_RETURN(operand, ParseDurUnary(true));
    } else {
      STRATA_ASSIGN_OR_RETURN(operand, ParseDurExpr(kPrecPow));
    }
    if (t.kind == TokenKind::kAdd) {
      operand->pos.start = t.pos;
      return operand;
    }
    if (operand->op == DurationOp::kNumber && !operand->wrapped) {
      operand->seconds = -operand->seconds;
      operand->pos.start = t.pos;
      return operand;
    }
    auto neg = std::make_unique<DurationExpr>();
    neg->op = DurationOp::kNeg;
    neg->pos = {t.pos, operand->pos.end};
    neg->lhs = std::move(operand);
    return neg;
  }

  absl::StatusOr<std::unique_ptr<DurationExpr>> ParseDurPrimary() {
    const Token& t = Peek();
    auto e = std::make_unique<DurationExpr>();
    switch (t.kind) {
      case TokenKind::kNumber: {
        Next();
        std::optional<double> v = ParseNumberText(t.text);
        if (!v) return NumberError(t);
        e->seconds = *v;
        e->pos = {t.pos, t.end()};
        return e;
      }
      case TokenKind::kDuration: {
        Next();
        STRATA_ASSIGN_OR_RETURN(int64_t ms, ParseDurationToken(t));
        e->seconds = static_cast<double>(ms) / 1000.0;
        e->is_duration_literal = true;
        e->pos = {t.pos, t.end()};
        return e;
      }
      case TokenKind::kLeftParen: {
        Next();
        STRATA_ASSIGN_OR_RETURN(e, ParseDurExpr(0));
        if (Peek().kind != TokenKind::kRightParen) {
          return Unexpected(Peek(), "in duration expression");
        }
        Next();
        e->wrapped = true;
        e->pos = {t.pos, LastEnd()};
        return e;
      }
      case TokenKind::kIdentifier: {
        const bool step = IsKeyword(t.text, "step");
        const bool range = IsKeyword(t.text, "range");
        const bool min_of = IsKeyword(t.text, "min_of");
        const bool max_of = IsKeyword(t.text, "max_of");
        if ((step || range || min_of || max_of) && Peek(1).kind == TokenKind::kLeftParen) {
          if (!opts_.duration_expressions) {
            return ErrAt(t.pos, "experimental duration expression is not enabled");
          }
          Next();
          Next();
          if (step || range) {
            e->op = step ? DurationOp::kStep : DurationOp::kRange;
          } else {
            e->op = min_of ? DurationOp::kMinOf : DurationOp::kMaxOf;
            STRATA_ASSIGN_OR_RETURN(e->lhs, ParseDurExpr(0));
            STRATA_RETURN_IF_ERROR(Expect(TokenKind::kComma, "in duration expression"));
            STRATA_ASSIGN_OR_RETURN(e->rhs, ParseDurExpr(0));
          }
          STRATA_RETURN_IF_ERROR(Expect(TokenKind::kRightParen, "in duration expression"));
          e->pos = {t.pos, LastEnd()};
          return e;
        }
        break;
      }
      default:
        break;
    }
    return Unexpected(t, dur_context_);
  }

  std::string_view q_;
  ParserOptions opts_;
  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  LexError lex_error_;
  // Address of a local in Run(): how deep the recursion has gone, in bytes.
  uintptr_t stack_base_ = 0;
  // What an unexpected token in the current duration slot is reported as.
  std::string_view dur_context_;
  // Selectors that match everything (an error unless exempted, see ParseCall).
  std::vector<const Expr*> empty_selectors_;
};

}  // namespace

absl::StatusOr<ExprPtr> ParseExpr(std::string_view query, const ParserOptions& options) {
  Parser p(query, options);
  return p.Run();
}

}  // namespace strata::promql
