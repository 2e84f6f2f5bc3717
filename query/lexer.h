// The PromQL lexer: query text -> tokens. Keywords are not distinguished here: a word is
// an kIdentifier (or kMetricIdentifier when it contains ':') and the parser decides from
// context whether it is a keyword (keywords are case-insensitive), a function, a metric
// or a label name.
#ifndef STRATA_QUERY_LEXER_H_
#define STRATA_QUERY_LEXER_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace strata::promql {

enum class TokenKind {
  kEOF,
  kError,             // where lexing failed (see LexError)
  kIdentifier,        // [a-zA-Z_][a-zA-Z0-9_]*
  kMetricIdentifier,  // an identifier containing ':'
  kNumber,            // 1, 1.5, .5, 1e3, 0x1f (Inf/NaN are identifiers)
  kDuration,          // 5m, 1h30m, 100ms
  kString,            // "...", '...', `...` (text includes the quotes)
  kLeftParen,
  kRightParen,
  kLeftBrace,
  kRightBrace,
  kLeftBracket,
  kRightBracket,
  kComma,
  kColon,
  kAt,
  kAssign,    // =   (label matcher)
  kNeqRegex,  // !~
  kEqlRegex,  // =~
  // Operators.
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kPow,
  kEqlc,  // ==
  kNeq,   // !=
  kLss,
  kLte,
  kGtr,
  kGte,
  kTrimUpper,  // </  (native histograms)
  kTrimLower,  // >/
};

struct Token {
  TokenKind kind = TokenKind::kEOF;
  std::string_view text;  // the bytes of the token in the query
  int pos = 0;            // byte offset of the first byte
  int end() const { return pos + static_cast<int>(text.size()); }
};

// How Prometheus names a token in "unexpected ..." errors: `<op:+>`, `identifier "foo"`,
// `number "1"`, `end of input`, `"("`, `<aggr:sum>`, `<by>`.
std::string DescribeToken(const Token& t);

// A lexing error: message and byte offset.
struct LexError {
  std::string message;
  int pos = 0;
};

// Splits `query` into tokens, ending with one kEOF. Skips whitespace and `#` comments.
// `:` is a kColon inside brackets and starts a metric identifier elsewhere; `=~` and `!~`
// are tokens only inside braces. Returns false on the first byte sequence that is no token
// (unterminated string, bad escape, malformed number or duration, stray character,
// unbalanced parenthesis, bracket or brace): then `tokens` ends with a kError token at
// `error->pos` instead of kEOF.
bool Lex(std::string_view query, std::vector<Token>* tokens, LexError* error);

// The value of a kString token's text (with quotes), Go escapes resolved: \a \b \f \n \r
// \t \v \\ \' (in '...') \" (in "...") \xNN \NNN (octal) \uNNNN \UNNNNNNNN. Backquoted
// strings are raw. Errors on an invalid escape.
absl::StatusOr<std::string> UnquoteString(std::string_view quoted);

// Case-insensitive ASCII comparison with a lower-case keyword.
bool IsKeyword(std::string_view word, std::string_view lower_keyword);

}  // namespace strata::promql

#endif  // STRATA_QUERY_LEXER_H_
