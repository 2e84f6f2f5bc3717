#include "server/api_params.h"

#include <algorithm>
#include <limits>

#include "query/ast.h"
#include "query/lexer.h"
#include "server/http_server.h"
#include "src/labels.h"
#include "src/status.h"
#include "src/strings.h"
#include "src/time.h"

namespace strata {
namespace {

std::string_view MessageOf(const absl::Status& st) {
  return {st.message().data(), st.message().size()};
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Appends the pairs of a query string to `out`, as Go's url.ParseQuery reads them.
absl::Status ParseQueryInto(std::string_view query,
                            std::vector<std::pair<std::string, std::string>>* out) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.find(';') != std::string_view::npos) {
      return absl::InvalidArgumentError("invalid semicolon separator in query");
    }
    if (part.empty()) continue;
    size_t eq = part.find('=');
    std::string_view key = part.substr(0, eq);
    std::string_view value =
        eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
    auto k = QueryUnescape(key);
    if (!k.ok()) return k.status();
    auto v = QueryUnescape(value);
    if (!v.ok()) return v.status();
    out->emplace_back(*std::move(k), *std::move(v));
  }
  return absl::OkStatus();
}

bool IsFormContentType(std::string_view content_type) {
  std::string_view media = content_type.substr(0, content_type.find(';'));
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.remove_suffix(1);
  while (!media.empty() && (media.front() == ' ' || media.front() == '\t')) {
    media.remove_prefix(1);
  }
  constexpr std::string_view kForm = "application/x-www-form-urlencoded";
  if (media.size() != kForm.size()) return false;
  for (size_t i = 0; i < media.size(); ++i) {
    char c = media[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kForm[i]) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::string> QueryUnescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%') {
      int hi = i + 1 < s.size() ? HexValue(s[i + 1]) : -1;
      int lo = i + 2 < s.size() ? HexValue(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return absl::InvalidArgumentError(
            fmt::format("invalid URL escape {}", QuoteString(s.substr(i, 3))));
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

absl::StatusOr<ApiParams> ApiParams::Parse(std::string_view query, std::string_view content_type,
                                           std::string_view body) {
  ApiParams params;
  absl::Status st;
  if (!body.empty() && IsFormContentType(content_type)) {
    st = ParseQueryInto(body, &params.values_);
  }
  if (st.ok()) st = ParseQueryInto(query, &params.values_);
  if (!st.ok()) {
    return absl::InvalidArgumentError(fmt::format("error parsing form values: {}", MessageOf(st)));
  }
  return params;
}

absl::StatusOr<ApiParams> ApiParams::FromRequest(const HttpRequest& req) {
  bool has_form = req.method == "POST" || req.method == "PUT" || req.method == "PATCH";
  return Parse(req.query, has_form ? req.Header("Content-Type") : std::string_view(),
               has_form ? std::string_view(req.body) : std::string_view());
}

std::string_view ApiParams::Get(std::string_view name) const {
  for (const auto& [k, v] : values_) {
    if (k == name) return v;
  }
  return {};
}

bool ApiParams::Has(std::string_view name) const {
  for (const auto& [k, v] : values_) {
    if (k == name) return true;
  }
  return false;
}

std::vector<std::string_view> ApiParams::GetAll(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& [k, v] : values_) {
    if (k == name) out.push_back(v);
  }
  return out;
}

absl::StatusOr<std::vector<LabelMatcher>> ParseSeriesSelector(
    std::string_view text, const promql::ParserOptions& options) {
  // The selector's tokens: an identifier (keywords too: `sum` is a metric name here), then
  // braces, or braces alone. The first token after them is what Prometheus' grammar calls
  // unexpected.
  std::vector<promql::Token> toks;
  promql::LexError lex_error;
  if (promql::Lex(text, &toks, &lex_error)) {
    using promql::TokenKind;
    size_t i = 0;
    if (toks[i].kind == TokenKind::kIdentifier || toks[i].kind == TokenKind::kMetricIdentifier) {
      ++i;
    }
    if (toks[i].kind == TokenKind::kLeftBrace) {
      while (toks[i].kind != TokenKind::kRightBrace && toks[i].kind != TokenKind::kEOF) ++i;
      if (toks[i].kind == TokenKind::kRightBrace) ++i;
    }
    if (i == 0 || toks[i].kind != TokenKind::kEOF) {
      const promql::Token& bad = toks[i];
      auto [line, col] = promql::LineCol(text, bad.pos);
      if (bad.kind != TokenKind::kEOF) {
        return absl::InvalidArgumentError(fmt::format("{}:{}: parse error: unexpected {}", line,
                                                      col, promql::DescribeToken(bad)));
      }
    }
  }
  promql::ParserOptions selector_options = options;
  selector_options.allow_empty_selectors = true;
  absl::StatusOr<promql::ExprPtr> expr = promql::ParseExpr(text, selector_options);
  if (!expr.ok()) return expr.status();
  if ((*expr)->kind() != promql::NodeKind::kVectorSelector) {
    return absl::InvalidArgumentError(
        fmt::format("1:1: parse error: expected a series selector, got {}", QuoteString(text)));
  }
  return std::move((*expr)->As<promql::VectorSelector>().matchers);
}

absl::Status InvalidParamError(std::string_view name, const absl::Status& cause) {
  absl::StatusCode code = cause.ok() ? absl::StatusCode::kInvalidArgument : cause.code();
  return absl::Status(code,
                      fmt::format("invalid parameter {}: {}", QuoteString(name), MessageOf(cause)));
}

absl::StatusOr<Timestamp> TimeParam(const ApiParams& params, std::string_view name,
                                    std::optional<Timestamp> default_ms) {
  std::string_view text = params.Get(name);
  if (text.empty() && default_ms.has_value()) return *default_ms;
  auto t = ParseApiTime(text);
  if (!t.ok() && default_ms.has_value()) {
    return InvalidParamError(
        name, absl::InvalidArgumentError(
                  fmt::format("invalid time value for '{}': {}", name, MessageOf(t.status()))));
  }
  if (!t.ok()) return InvalidParamError(name, t.status());
  return *t;
}

absl::StatusOr<int64_t> DurationParam(const ApiParams& params, std::string_view name,
                                      std::optional<int64_t> default_ms) {
  std::string_view text = params.Get(name);
  if (text.empty() && default_ms.has_value()) return *default_ms;
  auto d = ParseApiDuration(text);
  if (!d.ok()) return InvalidParamError(name, d.status());
  return *d;
}

absl::Status CheckResolution(Timestamp start, Timestamp end, int64_t step_ns) {
  // Prometheus divides Go durations (nanoseconds) as integers: end.Sub(start) / step > 11000,
  // where end.Sub(start) saturates at the largest duration.
  if (end < start) return absl::OkStatus();
  unsigned __int128 span_ns =
      static_cast<unsigned __int128>(static_cast<uint64_t>(end) - static_cast<uint64_t>(start)) *
      1'000'000;
  span_ns = std::min<unsigned __int128>(span_ns, std::numeric_limits<int64_t>::max());
  if (span_ns / static_cast<uint64_t>(step_ns) > kMaxPointsPerSeries) {
    return absl::InvalidArgumentError(
        "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the "
        "query resolution (?step=XX)");
  }
  return absl::OkStatus();
}

absl::StatusOr<RangeParams> ParseRangeParams(const ApiParams& params) {
  RangeParams r;
  STRATA_ASSIGN_OR_RETURN(r.start, TimeParam(params, "start"));
  STRATA_ASSIGN_OR_RETURN(r.end, TimeParam(params, "end"));
  if (r.end < r.start) {
    return InvalidParamError(
        "end", absl::InvalidArgumentError("end timestamp must not be before start time"));
  }
  // The step as Prometheus checks it, in nanoseconds: a step below a millisecond is positive
  // and meets the 11,000-points limit; the evaluation steps by its whole milliseconds.
  std::string_view step_text = params.Get("step");
  absl::StatusOr<int64_t> step_ns = ParseApiDurationNanos(step_text);
  if (!step_ns.ok()) return InvalidParamError("step", step_ns.status());
  auto not_positive = [] {
    return InvalidParamError(
        "step", absl::InvalidArgumentError("zero or negative query resolution step widths are "
                                           "not accepted. Try a positive integer"));
  };
  if (*step_ns <= 0) return not_positive();
  STRATA_RETURN_IF_ERROR(CheckResolution(r.start, r.end, *step_ns));
  r.step_ms = *step_ns / 1'000'000;
  // A step below a millisecond over a range too short for the limit: Prometheus fails
  // dividing by the zero milliseconds it evaluates with; Strata calls the step too small.
  if (r.step_ms <= 0) return not_positive();
  return r;
}

std::string UnescapeValueEncodedName(std::string_view name) {
  constexpr std::string_view kPrefix = "U__";
  if (!name.starts_with(kPrefix)) return std::string(name);
  std::string_view escaped = name.substr(kPrefix.size());
  std::string out;
  out.reserve(escaped.size());
  for (size_t i = 0; i < escaped.size(); ++i) {
    if (escaped[i] != '_') {
      out.push_back(escaped[i]);
      continue;
    }
    if (++i >= escaped.size()) return std::string(name);
    if (escaped[i] == '_') {
      out.push_back('_');
      continue;
    }
    uint32_t code = 0;
    int digits = 0;
    while (i < escaped.size() && escaped[i] != '_') {
      char c = escaped[i];
      if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
      if (++digits > 6) return std::string(name);
      if (c >= '0' && c <= '9') {
        code = code * 16 + static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        code = code * 16 + static_cast<uint32_t>(c - 'a' + 10);
      } else {
        return std::string(name);
      }
      ++i;
    }
    if (i >= escaped.size()) return std::string(name);  // no closing '_'
    if (code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return std::string(name);
    // UTF-8 encoding of the code point.
    if (code < 0x80) {
      out.push_back(static_cast<char>(code));
    } else if (code < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (code >> 6)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else if (code < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (code >> 12)));
      out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (code >> 18)));
      out.push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    }
  }
  return out;
}

}  // namespace strata
