#include "query/lexer.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>

#include "src/labels.h"
#include "src/strings.h"

namespace strata::promql {
namespace {

bool IsAlpha(char c) { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHexDigit(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool IsAlnum(char c) { return IsAlpha(c) || IsDigit(c); }
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

constexpr std::array<std::string_view, 4> kOperatorWords = {"and", "or", "unless", "atan2"};
constexpr std::array<std::string_view, 14> kAggregators = {
    "sum",    "avg",  "count",   "min",          "max",      "group",  "stddev",
    "stdvar", "topk", "bottomk", "count_values", "quantile", "limitk", "limit_ratio"};
constexpr std::array<std::string_view, 16> kKeywords = {
    "by",    "without", "on",   "ignoring", "group_left", "group_right", "bool",      "offset",
    "start", "end",     "step", "anchored", "smoothed",   "fill",        "fill_left", "fill_right"};

std::string GoQuote(std::string_view s) { return QuoteString(s); }

// Bytes of the UTF-8 character at q[i] (1 for a stray byte), not past the end.
size_t Utf8Len(std::string_view q, size_t i) {
  unsigned char uc = static_cast<unsigned char>(q[i]);
  size_t l = uc >= 0xf0 ? 4 : uc >= 0xe0 ? 3 : uc >= 0xc0 ? 2 : 1;
  return std::min(l, q.size() - i);
}

// Go's fmt "%.10q..." for texts over 10 bytes: the first 10 characters, quoted, then "...".
std::string GoQuoteShort(std::string_view s) {
  if (s.size() <= 10) return QuoteString(s);
  size_t end = 0;
  for (int chars = 0; chars < 10 && end < s.size(); ++chars) {
    ++end;
    while (end < s.size() && (static_cast<unsigned char>(s[end]) & 0xc0) == 0x80) ++end;
  }
  if (end >= s.size()) return QuoteString(s);
  return QuoteString(s.substr(0, end)) + "...";
}

// Go's %#U: U+0063 'c' (the character only when printable).
std::string GoCharU(std::string_view ch) {
  uint32_t r = static_cast<unsigned char>(ch[0]);
  size_t len = 1;
  if (r >= 0xc0 && r < 0xe0 && ch.size() >= 2) {
    r = ((r & 0x1f) << 6) | (ch[1] & 0x3f);
    len = 2;
  } else if (r >= 0xe0 && r < 0xf0 && ch.size() >= 3) {
    r = ((r & 0x0f) << 12) | ((ch[1] & 0x3f) << 6) | (ch[2] & 0x3f);
    len = 3;
  } else if (r >= 0xf0 && ch.size() >= 4) {
    r = ((r & 0x07) << 18) | ((ch[1] & 0x3f) << 12) | ((ch[2] & 0x3f) << 6) | (ch[3] & 0x3f);
    len = 4;
  }
  std::string out = fmt::format("U+{:04X}", r);
  if (r >= 0x20 && r != 0x7f && IsValidUtf8(ch.substr(0, len))) {
    out += fmt::format(" '{}'", ch.substr(0, len));
  }
  return out;
}

// Scans a "..." or '...' string starting at q[start] as Prometheus' lexer does. On success
// sets *end past the closing quote; otherwise returns the error message.
std::optional<std::string> ScanQuoted(std::string_view q, size_t start, size_t* end) {
  const char quote = q[start];
  const size_t n = q.size();
  size_t i = start + 1;
  auto digit_value = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return 99;
  };
  while (true) {
    if (i >= n || q[i] == '\n') return "unterminated quoted string";
    const char c = q[i];
    if (c == quote) break;
    if (static_cast<unsigned char>(c) >= 0x80) {
      const size_t len = Utf8Len(q, i);
      if (!IsValidUtf8(q.substr(i, len))) return "invalid UTF-8 rune";
      i += len;
      continue;
    }
    if (c != '\\') {
      ++i;
      continue;
    }
    ++i;
    if (i >= n) return "escape sequence not terminated";
    const char e = q[i];
    int digits = 0, base = 0;
    uint32_t max = 0;
    switch (e) {
      case 'a':
      case 'b':
      case 'f':
      case 'n':
      case 'r':
      case 't':
      case 'v':
      case '\\':
        ++i;
        continue;
      case 'x':
        digits = 2, base = 16, max = 255;
        ++i;
        break;
      case 'u':
        digits = 4, base = 16, max = 0x10ffff;
        ++i;
        break;
      case 'U':
        digits = 8, base = 16, max = 0x10ffff;
        ++i;
        break;
      default:
        if (e == quote) {
          ++i;
          continue;
        }
        if (e >= '0' && e <= '7') {
          digits = 3, base = 8, max = 255;
          break;
        }
        return fmt::format("unknown escape sequence {}", GoCharU(q.substr(i, 4)));
    }
    uint32_t x = 0;
    for (int k = 0; k < digits; ++k, ++i) {
      if (i >= n) return "escape sequence not terminated";
      const int d = digit_value(q[i]);
      if (d >= base) {
        return fmt::format("illegal character {} in escape sequence", GoCharU(q.substr(i, 4)));
      }
      x = x * static_cast<uint32_t>(base) + static_cast<uint32_t>(d);
    }
    if (x > max || (base == 16 && x >= 0xd800 && x < 0xe000)) {
      return "escape sequence is an invalid Unicode code point";
    }
  }
  *end = i + 1;
  return std::nullopt;
}

}  // namespace

bool IsKeyword(std::string_view word, std::string_view lower_keyword) {
  if (word.size() != lower_keyword.size()) return false;
  for (size_t i = 0; i < word.size(); ++i) {
    char c = word[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower_keyword[i]) return false;
  }
  return true;
}

std::string DescribeToken(const Token& t) {
  switch (t.kind) {
    case TokenKind::kEOF:
      return "end of input";
    case TokenKind::kIdentifier:
    case TokenKind::kMetricIdentifier: {
      for (std::string_view w : kOperatorWords) {
        if (IsKeyword(t.text, w)) return fmt::format("<op:{}>", t.text);
      }
      for (std::string_view w : kAggregators) {
        if (IsKeyword(t.text, w)) return fmt::format("<aggr:{}>", t.text);
      }
      for (std::string_view w : kKeywords) {
        if (IsKeyword(t.text, w)) return fmt::format("<{}>", t.text);
      }
      if (IsKeyword(t.text, "inf") || IsKeyword(t.text, "nan")) {
        return fmt::format("number {}", GoQuote(t.text));
      }
      return fmt::format("identifier {}", GoQuote(t.text));
    }
    case TokenKind::kNumber:
      return fmt::format("number {}", GoQuoteShort(t.text));
    case TokenKind::kDuration:
      return fmt::format("duration {}", GoQuoteShort(t.text));
    case TokenKind::kString:
      // As Prometheus: the token's text, quotes included, quoted again.
      return fmt::format("string {}", GoQuoteShort(t.text));
    case TokenKind::kLeftParen:
      return "\"(\"";
    case TokenKind::kRightParen:
      return "\")\"";
    case TokenKind::kLeftBrace:
      return "\"{\"";
    case TokenKind::kRightBrace:
      return "\"}\"";
    case TokenKind::kLeftBracket:
      return "\"[\"";
    case TokenKind::kRightBracket:
      return "\"]\"";
    case TokenKind::kComma:
      return "\",\"";
    case TokenKind::kColon:
      return "\":\"";
    case TokenKind::kAt:
      return "<op:@>";
    case TokenKind::kError:
      return "error";
    case TokenKind::kAssign:
      return "\"=\"";
    default:
      return fmt::format("<op:{}>", t.text);
  }
}

bool Lex(std::string_view q, std::vector<Token>* tokens, LexError* error) {
  tokens->clear();
  const size_t n = q.size();
  size_t i = 0;
  int paren_depth = 0;
  int bracket_depth = 0;
  bool in_braces = false;
  // On error: an kError token marks where lexing stopped, so that the parser reports a
  // syntax error that comes earlier in the input first, as Prometheus does.
  auto fail = [&](size_t pos, std::string msg) {
    error->message = std::move(msg);
    error->pos = static_cast<int>(pos);
    tokens->push_back(Token{TokenKind::kError, q.substr(std::min(pos, n), 0),
                            static_cast<int>(std::min(pos, n))});
    return false;
  };
  auto emit = [&](TokenKind kind, size_t start, size_t end) {
    tokens->push_back(Token{kind, q.substr(start, end - start), static_cast<int>(start)});
  };
  while (i < n) {
    const char c = q[i];
    if (IsSpace(c)) {
      ++i;
      continue;
    }
    if (c == '#') {
      while (i < n && q[i] != '\n') ++i;
      continue;
    }
    const size_t start = i;
    if (in_braces) {
      // Inside braces only label names, strings, matcher operators and commas.
      if (IsAlpha(c)) {
        while (i < n && IsAlnum(q[i])) ++i;
        emit(TokenKind::kIdentifier, start, i);
        continue;
      }
      TokenKind kind = TokenKind::kComma;
      size_t len = 1;
      switch (c) {
        case '"':
        case '\'':
        case '`':
          break;
        case ',':
          kind = TokenKind::kComma;
          break;
        case '}':
          kind = TokenKind::kRightBrace;
          in_braces = false;
          break;
        case '=':
          kind = TokenKind::kAssign;
          if (i + 1 < n && q[i + 1] == '~') {
            kind = TokenKind::kEqlRegex;
            len = 2;
          }
          break;
        case '!':
          if (i + 1 < n && (q[i + 1] == '=' || q[i + 1] == '~')) {
            kind = q[i + 1] == '=' ? TokenKind::kNeq : TokenKind::kNeqRegex;
            len = 2;
            break;
          }
          return fail(start, fmt::format("unexpected character after '!' inside braces: {}",
                                         i + 1 < n ? QuoteString(q.substr(i + 1, 1), '\'')
                                                   : std::string("EOF")));
        default:
          return fail(start, fmt::format("unexpected character inside braces: {}",
                                         QuoteString(q.substr(start, Utf8Len(q, start)), '\'')));
      }
      if (c != '"' && c != '\'' && c != '`') {
        i += len;
        emit(kind, start, i);
        continue;
      }
    } else if (bracket_depth > 0) {
      switch (c) {
        case '"':
        case '\'':
        case '`':
        case '{':
        case '}':
        case '@':
        case '=':
        case '!':
        case '<':
        case '>':
        case '#':
          return fail(start, fmt::format("unexpected character in duration expression: {}",
                                         QuoteString(q.substr(start, 1), '\'')));
        default:
          break;
      }
    }
    if (IsAlpha(c) || (c == ':' && bracket_depth == 0 && !in_braces)) {
      bool colon = false;
      while (i < n && (IsAlnum(q[i]) || q[i] == ':')) {
        colon |= q[i] == ':';
        ++i;
      }
      emit(colon ? TokenKind::kMetricIdentifier : TokenKind::kIdentifier, start, i);
      continue;
    }
    if (IsDigit(c) || (c == '.' && i + 1 < n && IsDigit(q[i + 1]))) {
      // A number: hex, or decimal with optional fraction and exponent.
      bool hex = false;
      if (c == '0' && i + 1 < n && (q[i + 1] == 'x' || q[i + 1] == 'X')) {
        i += 2;
        while (i < n && IsHexDigit(q[i])) ++i;
        hex = true;
      } else {
        while (i < n && IsDigit(q[i])) ++i;
        if (i < n && q[i] == '.') {
          ++i;
          while (i < n && IsDigit(q[i])) ++i;
        }
        if (i < n && (q[i] == 'e' || q[i] == 'E')) {
          size_t j = i + 1;
          if (j < n && (q[j] == '+' || q[j] == '-')) ++j;
          if (j < n && IsDigit(q[j])) {
            i = j;
            while (i < n && IsDigit(q[i])) ++i;
          }
        }
      }
      const bool bad_hex = hex && i == start + 2;
      if (!bad_hex && (i >= n || !(IsAlnum(q[i]) || q[i] == '.'))) {
        emit(TokenKind::kNumber, start, i);
        continue;
      }
      // Not a plain number: a duration (5m, 1h30m, 100ms), or an error naming the bytes
      // read up to and including the first one that does not fit.
      size_t j = i;
      bool ok = false;
      if (!hex && j < n && std::string_view("smhdwy").find(q[j]) != std::string_view::npos) {
        ok = true;
        ++j;
        if (j < n && q[j] == 's') ++j;
        while (j < n && IsDigit(q[j])) {
          while (j < n && IsDigit(q[j])) ++j;
          if (j < n && std::string_view("smhdw").find(q[j]) != std::string_view::npos) {
            ++j;
            if (j < n && q[j] == 's') ++j;
          } else {
            ok = false;
            break;
          }
        }
        if (ok && j < n && IsAlnum(q[j])) {
          ok = false;
          ++j;
        }
      } else if (j < n) {
        ++j;
      }
      if (ok) {
        emit(TokenKind::kDuration, start, j);
        i = j;
        continue;
      }
      return fail(start, fmt::format("bad number or duration syntax: {}",
                                     QuoteString(q.substr(start, j - start))));
    }
    if (c == '"' || c == '\'') {
      if (std::optional<std::string> err = ScanQuoted(q, start, &i)) return fail(start, *err);
      emit(TokenKind::kString, start, i);
      continue;
    }
    if (c == '`') {
      ++i;
      while (i < n && q[i] != '`') ++i;
      if (i >= n) return fail(start, "unterminated raw string");
      ++i;
      if (!IsValidUtf8(q.substr(start, i - start))) return fail(start, "invalid UTF-8 rune");
      emit(TokenKind::kString, start, i);
      continue;
    }
    auto two = [&](char next) { return i + 1 < n && q[i + 1] == next; };
    auto next_char = [&]() {
      return i + 1 < n ? QuoteString(q.substr(i + 1, 1), '\'') : std::string("EOF");
    };
    TokenKind kind;
    size_t len = 1;
    switch (c) {
      case '(':
        kind = TokenKind::kLeftParen;
        ++paren_depth;
        break;
      case ')':
        kind = TokenKind::kRightParen;
        if (paren_depth == 0) return fail(start + 1, "unexpected right parenthesis ')'");
        --paren_depth;
        break;
      case '{':
        kind = TokenKind::kLeftBrace;
        in_braces = true;
        break;
      case '[':
        if (bracket_depth > 0) return fail(start, "unexpected left bracket '['");
        kind = TokenKind::kLeftBracket;
        ++bracket_depth;
        break;
      case ']':
        if (bracket_depth == 0) return fail(start, "unexpected right bracket ']'");
        kind = TokenKind::kRightBracket;
        --bracket_depth;
        break;
      case ',':
        kind = TokenKind::kComma;
        break;
      case ':':
        kind = TokenKind::kColon;
        break;
      case '@':
        kind = TokenKind::kAt;
        break;
      case '+':
        kind = TokenKind::kAdd;
        break;
      case '-':
        kind = TokenKind::kSub;
        break;
      case '*':
        kind = TokenKind::kMul;
        break;
      case '/':
        kind = TokenKind::kDiv;
        break;
      case '%':
        kind = TokenKind::kMod;
        break;
      case '^':
        kind = TokenKind::kPow;
        break;
      case '=':
        if (two('=')) {
          kind = TokenKind::kEqlc;
          len = 2;
        } else if (two('~')) {
          if (!in_braces) {
            return fail(start, fmt::format("unexpected character after '=': {}", next_char()));
          }
          kind = TokenKind::kEqlRegex;
          len = 2;
        } else {
          kind = TokenKind::kAssign;
        }
        break;
      case '!':
        if (two('=')) {
          kind = TokenKind::kNeq;
        } else if (two('~') && in_braces) {
          kind = TokenKind::kNeqRegex;
        } else {
          return fail(start, fmt::format("unexpected character after '!': {}", next_char()));
        }
        len = 2;
        break;
      case '<':
        if (two('=')) {
          kind = TokenKind::kLte;
          len = 2;
        } else if (two('/')) {
          kind = TokenKind::kTrimUpper;
          len = 2;
        } else {
          kind = TokenKind::kLss;
        }
        break;
      case '>':
        if (two('=')) {
          kind = TokenKind::kGte;
          len = 2;
        } else if (two('/')) {
          kind = TokenKind::kTrimLower;
          len = 2;
        } else {
          kind = TokenKind::kGtr;
        }
        break;
      default:
        return fail(start, fmt::format("unexpected character: {}",
                                       QuoteString(q.substr(start, Utf8Len(q, start)), '\'')));
    }
    i += len;
    emit(kind, start, i);
  }
  if (in_braces) return fail(n, "unexpected end of input inside braces");
  if (bracket_depth > 0) return fail(n, "unexpected end of input in duration expression");
  if (paren_depth > 0) return fail(n, "unclosed left parenthesis");
  tokens->push_back(Token{TokenKind::kEOF, q.substr(n), static_cast<int>(n)});
  return true;
}

absl::StatusOr<std::string> UnquoteString(std::string_view s) {
  if (s.size() < 2) return absl::InvalidArgumentError("invalid quoted string");
  const char quote = s.front();
  std::string_view body = s.substr(1, s.size() - 2);
  if (quote == '`') return std::string(body);
  std::string out;
  out.reserve(body.size());
  auto append_utf8 = [&](uint32_t r) -> bool {
    if (r > 0x10ffff || (r >= 0xd800 && r <= 0xdfff)) return false;
    if (r < 0x80) {
      out.push_back(static_cast<char>(r));
    } else if (r < 0x800) {
      out.push_back(static_cast<char>(0xc0 | (r >> 6)));
      out.push_back(static_cast<char>(0x80 | (r & 0x3f)));
    } else if (r < 0x10000) {
      out.push_back(static_cast<char>(0xe0 | (r >> 12)));
      out.push_back(static_cast<char>(0x80 | ((r >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (r & 0x3f)));
    } else {
      out.push_back(static_cast<char>(0xf0 | (r >> 18)));
      out.push_back(static_cast<char>(0x80 | ((r >> 12) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | ((r >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (r & 0x3f)));
    }
    return true;
  };
  auto hexval = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  const absl::Status bad = absl::InvalidArgumentError("unknown escape sequence");
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c == quote) return absl::InvalidArgumentError("invalid quoted string");
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (++i >= body.size()) return absl::InvalidArgumentError("escape sequence not terminated");
    c = body[i];
    switch (c) {
      case 'a':
        out.push_back('\a');
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'v':
        out.push_back('\v');
        break;
      case '\\':
        out.push_back('\\');
        break;
      case '\'':
      case '"':
        if (c != quote) return bad;
        out.push_back(c);
        break;
      case 'x':
      case 'u':
      case 'U': {
        size_t digits = c == 'x' ? 2 : c == 'u' ? 4 : 8;
        if (i + digits >= body.size()) return bad;
        uint32_t v = 0;
        for (size_t k = 1; k <= digits; ++k) {
          int h = hexval(body[i + k]);
          if (h < 0) return bad;
          v = v * 16 + static_cast<uint32_t>(h);
        }
        i += digits;
        if (c == 'x') {
          out.push_back(static_cast<char>(v));
        } else if (!append_utf8(v)) {
          return bad;
        }
        break;
      }
      default:
        if (c >= '0' && c <= '7') {
          if (i + 2 >= body.size()) return bad;
          uint32_t v = 0;
          for (size_t k = 0; k < 3; ++k) {
            char d = body[i + k];
            if (d < '0' || d > '7') return bad;
            v = v * 8 + static_cast<uint32_t>(d - '0');
          }
          if (v > 255) return bad;
          out.push_back(static_cast<char>(v));
          i += 2;
          break;
        }
        return bad;
    }
  }
  return out;
}

}  // namespace strata::promql
