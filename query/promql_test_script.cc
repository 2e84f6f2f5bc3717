#include "query/promql_test_script.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <set>

#include "query/lexer.h"
#include "query/printer.h"
#include "re2/re2.h"
#include "src/status.h"
#include "src/strings.h"
#include "src/time.h"
#include "storage/memory_store.h"

namespace strata::promql {
namespace {

std::string StatusMessage(const absl::Status& s) { return std::string(s.message()); }

// ---------------------------------------------------------------------------------------
// Small text helpers.

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

std::vector<std::string_view> SplitFields(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && IsSpace(s[i])) ++i;
    size_t j = i;
    while (j < s.size() && !IsSpace(s[j])) ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// A float as Go's strconv.ParseFloat accepts it (decimal, exponent, hex float, inf/nan).
std::optional<double> ParseFloatWhole(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::string copy(s);
  for (char c : copy) {
    if (c == '_') return std::nullopt;
  }
  std::string lower = copy;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string_view body = lower;
  bool neg = false;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
    neg = body[0] == '-';
    body.remove_prefix(1);
  }
  if (body == "inf" || body == "infinity") {
    return neg ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  }
  if (body == "nan") return std::numeric_limits<double>::quiet_NaN();
  if (body.empty() || body.find_first_of("in") != std::string_view::npos) {
    // Reject "info", "nan1" and the like (strtod accepts prefixes).
    if (body.find_first_not_of("0123456789.e+-xabcdefp") != std::string_view::npos) {
      return std::nullopt;
    }
  }
  char* end = nullptr;
  double v = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size()) return std::nullopt;
  return v;
}

// An integer with Go's base prefixes (0x, 0o, 0b, leading 0 = octal), then a float.
std::optional<double> ParseScalarLine(std::string_view s) {
  std::string_view body = s;
  bool neg = false;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
    neg = body[0] == '-';
    body.remove_prefix(1);
  }
  std::string digits;
  for (char c : body) {
    if (c != '_') digits.push_back(c);
  }
  int base = 10;
  std::string_view d = digits;
  if (d.size() > 2 && d[0] == '0' && (d[1] == 'x' || d[1] == 'X')) {
    base = 16;
    d.remove_prefix(2);
  } else if (d.size() > 2 && d[0] == '0' && (d[1] == 'o' || d[1] == 'O')) {
    base = 8;
    d.remove_prefix(2);
  } else if (d.size() > 2 && d[0] == '0' && (d[1] == 'b' || d[1] == 'B')) {
    base = 2;
    d.remove_prefix(2);
  } else if (d.size() > 1 && d[0] == '0') {
    base = 8;
    d.remove_prefix(1);
  }
  if (!d.empty()) {
    bool ok = true;
    double v = 0;
    for (char c : d) {
      int x;
      if (c >= '0' && c <= '9') {
        x = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        x = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        x = c - 'A' + 10;
      } else {
        ok = false;
        break;
      }
      if (x >= base) {
        ok = false;
        break;
      }
      v = v * base + x;
    }
    if (ok) return neg ? -v : v;
  }
  return ParseFloatWhole(s);
}

// Unquotes a PromQL / Go string literal ("..", '..' or `..`) with the lexer's rules.
// Returns nullopt when malformed.
std::optional<std::string> Unquote(std::string_view s) {
  auto r = UnquoteString(s);
  if (!r.ok()) return std::nullopt;
  return *std::move(r);
}

// Length of the quoted string starting at s[0], or npos.
size_t QuotedLength(std::string_view s) {
  char q = s[0];
  for (size_t i = 1; i < s.size(); ++i) {
    if (s[i] == '\\' && q != '`') {
      ++i;
    } else if (s[i] == q) {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

// Parses `name`, `name{...}`, `{...}` into labels. `rest` receives what follows.
absl::StatusOr<Labels> ParseLabelSet(std::string_view s, std::string_view* rest) {
  std::vector<std::pair<std::string, std::string>> pairs;
  size_t i = 0;
  while (i < s.size() && !IsSpace(s[i]) && s[i] != '{') ++i;
  if (i > 0) pairs.emplace_back(std::string(kMetricName), std::string(s.substr(0, i)));
  if (i < s.size() && s[i] == '{') {
    ++i;
    auto skip_ws = [&] {
      while (i < s.size() && IsSpace(s[i])) ++i;
    };
    while (true) {
      skip_ws();
      if (i >= s.size())
        return absl::InvalidArgumentError(fmt::format("unclosed label set in {}", s));
      if (s[i] == '}') {
        ++i;
        break;
      }
      std::string name;
      if (s[i] == '"' || s[i] == '\'' || s[i] == '`') {
        size_t n = QuotedLength(s.substr(i));
        if (n == std::string_view::npos) return absl::InvalidArgumentError("bad quoted name");
        auto u = Unquote(s.substr(i, n));
        if (!u) return absl::InvalidArgumentError("bad quoted name");
        name = *u;
        i += n;
      } else {
        size_t j = i;
        while (j < s.size() &&
               (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_' || s[j] == ':')) {
          ++j;
        }
        name = std::string(s.substr(i, j - i));
        i = j;
      }
      skip_ws();
      if (i < s.size() && (s[i] == ',' || s[i] == '}')) {
        // A bare quoted metric name: {"my.metric"}.
        pairs.emplace_back(std::string(kMetricName), name);
        if (s[i] == ',') ++i;
        continue;
      }
      if (i >= s.size() || s[i] != '=') {
        return absl::InvalidArgumentError(fmt::format("expected '=' in label set {}", s));
      }
      ++i;
      skip_ws();
      if (i >= s.size()) return absl::InvalidArgumentError("missing label value");
      size_t n = QuotedLength(s.substr(i));
      if (n == std::string_view::npos) return absl::InvalidArgumentError("bad label value");
      auto value = Unquote(s.substr(i, n));
      if (!value) return absl::InvalidArgumentError(fmt::format("bad label value in {}", s));
      i += n;
      pairs.emplace_back(name, *value);
      skip_ws();
      if (i < s.size() && s[i] == ',') ++i;
    }
  }
  if (pairs.empty()) return absl::InvalidArgumentError(fmt::format("no label set in '{}'", s));
  *rest = s.substr(i);
  return Labels::FromPairs(std::move(pairs));
}

// A series-description number: no hex.
std::optional<double> ParseSeriesNumber(std::string_view s) {
  if (s.find_first_of("xX") != std::string_view::npos) return std::nullopt;
  return ParseFloatWhole(s);
}

}  // namespace

absl::StatusOr<SeriesDescription> ParseSeriesDescription(std::string_view line) {
  SeriesDescription d;
  std::string_view rest;
  line = Trim(line);
  if (line.starts_with("{}")) {
    rest = line.substr(2);
  } else {
    STRATA_ASSIGN_OR_RETURN(d.labels, ParseLabelSet(line, &rest));
  }
  rest = Trim(rest);
  size_t i = 0;
  while (i < rest.size()) {
    while (i < rest.size() && IsSpace(rest[i])) ++i;
    if (i >= rest.size()) break;
    size_t j = i;
    if (rest.substr(i).starts_with("{{")) {
      // Histogram item: {{...}}, optionally +{{...}} / -{{...}} and xN.
      while (true) {
        size_t close = rest.find("}}", j);
        if (close == std::string_view::npos) {
          return absl::InvalidArgumentError("unterminated histogram literal");
        }
        j = close + 2;
        if (j + 1 < rest.size() && (rest[j] == '+' || rest[j] == '-') &&
            rest.substr(j + 1).starts_with("{{")) {
          j += 1;
          continue;
        }
        break;
      }
      int count = 1;
      if (j < rest.size() && rest[j] == 'x') {
        size_t k = j + 1;
        while (k < rest.size() && !IsSpace(rest[k])) ++k;
        count = std::atoi(std::string(rest.substr(j + 1, k - j - 1)).c_str()) + 1;
        j = k;
      }
      for (int c = 0; c < count; ++c) d.values.push_back(std::nullopt);
      d.histogram_positions += count;
      i = j;
      continue;
    }
    while (j < rest.size() && !IsSpace(rest[j])) ++j;
    std::string_view item = rest.substr(i, j - i);
    i = j;
    if (item == "_") {
      d.values.push_back(std::nullopt);
      continue;
    }
    if (item == "stale") {
      d.values.push_back(StaleNaN());
      continue;
    }
    size_t x = item.rfind('x');
    std::optional<int64_t> times;
    std::string_view base = item;
    if (x != std::string_view::npos && x + 1 < item.size()) {
      std::string_view n = item.substr(x + 1);
      if (std::all_of(n.begin(), n.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        times = std::atoll(std::string(n).c_str());
        base = item.substr(0, x);
      }
    }
    if (!times) {
      auto v = ParseSeriesNumber(item);
      if (!v) return absl::InvalidArgumentError(fmt::format("bad value '{}' in series", item));
      d.values.push_back(*v);
      continue;
    }
    if (base == "_") {
      for (int64_t k = 0; k < *times; ++k) d.values.push_back(std::nullopt);
      continue;
    }
    if (auto v = ParseSeriesNumber(base)) {
      for (int64_t k = 0; k <= *times; ++k) d.values.push_back(*v);
      continue;
    }
    // a+b or a-b: the operator is the first sign after position 0 that is not part of an
    // exponent.
    size_t op = std::string_view::npos;
    for (size_t k = 1; k < base.size(); ++k) {
      if ((base[k] == '+' || base[k] == '-') && base[k - 1] != 'e' && base[k - 1] != 'E') {
        op = k;
        break;
      }
    }
    if (op == std::string_view::npos) {
      return absl::InvalidArgumentError(fmt::format("bad value '{}' in series", item));
    }
    auto a = ParseSeriesNumber(base.substr(0, op));
    auto b = ParseSeriesNumber(base.substr(op + 1));
    if (!a || !b) return absl::InvalidArgumentError(fmt::format("bad value '{}' in series", item));
    double inc = base[op] == '-' ? -*b : *b;
    double v = *a;
    d.values.push_back(v);
    for (int64_t k = 0; k < *times; ++k) {
      v += inc;
      d.values.push_back(v);
    }
  }
  return d;
}

int ScriptReport::Count(EvalStatus s) const {
  return static_cast<int>(std::count_if(evals.begin(), evals.end(),
                                        [s](const EvalOutcome& e) { return e.status == s; }));
}

namespace {

// ---------------------------------------------------------------------------------------
// The parsed script.

struct Expectation {
  enum Kind { kOrdered, kFail, kWarn, kNoWarn, kInfo, kNoInfo } kind;
  enum Match { kAny, kMsg, kRegex } match = kAny;
  std::string text;
};

struct ExpectedSeries {
  Labels labels;
  std::vector<std::optional<double>> values;
  bool histogram = false;
};

struct LoadCmd {
  int64_t interval = 0;
  bool nhcb = false;
  std::vector<SeriesDescription> series;
  std::vector<Labels> st_series;  // series with start-timestamp lines
};

struct EvalCmd {
  int line = 0;
  bool instant = true;
  Timestamp at = 0;
  Timestamp start = 0, end = 0;
  int64_t step = 0;
  std::string query;
  ExprPtr expr;
  std::vector<Expectation> expects;
  bool fail = false;
  std::optional<std::string> fail_msg, fail_regex;
  bool ordered = false;
  bool legacy_warn = false, legacy_info = false;
  std::optional<double> scalar;
  std::vector<ExpectedSeries> series;
  bool has_range_vector = false;
  Timestamp rv_start = 0, rv_end = 0;
  int64_t rv_step = 0;
  std::optional<std::string> expect_string;
  bool histogram_expected = false;
};

struct Command {
  enum Kind { kLoad, kClear, kEval } kind;
  LoadCmd load;
  EvalCmd eval;
};

absl::Status LineError(int line, std::string_view msg) {
  return absl::InvalidArgumentError(fmt::format("line {}: {}", line, msg));
}

absl::StatusOr<int64_t> Dur(std::string_view s, int line) {
  auto d = ParseDuration(s);
  if (!d.ok()) return LineError(line, fmt::format("invalid duration '{}'", s));
  return *d;
}

// "eval instant at <t> <expr>" / "eval range from <a> to <b> step <s> <expr>".
absl::Status ParseEvalHeader(std::string_view line, int lineno, EvalCmd* cmd) {
  std::vector<std::string_view> f = SplitFields(line);
  std::string_view head = f[0];
  std::string_view suffix;
  if (head.size() > 4) {
    if (head[4] != '_') return LineError(lineno, fmt::format("invalid command '{}'", head));
    suffix = head.substr(5);
  }
  auto rest_after = [&](size_t nfields) -> std::string_view {
    // The text after the first `nfields` whitespace-separated fields.
    size_t i = 0;
    for (size_t k = 0; k < nfields; ++k) {
      while (i < line.size() && IsSpace(line[i])) ++i;
      while (i < line.size() && !IsSpace(line[i])) ++i;
    }
    return Trim(line.substr(std::min(i, line.size())));
  };
  if (f.size() >= 4 && f[1] == "instant" && f[2] == "at") {
    cmd->instant = true;
    STRATA_ASSIGN_OR_RETURN(cmd->at, Dur(f[3], lineno));
    cmd->query = std::string(rest_after(4));
  } else if (f.size() >= 8 && f[1] == "range" && f[2] == "from" && f[4] == "to" && f[6] == "step") {
    cmd->instant = false;
    STRATA_ASSIGN_OR_RETURN(cmd->start, Dur(f[3], lineno));
    STRATA_ASSIGN_OR_RETURN(cmd->end, Dur(f[5], lineno));
    STRATA_ASSIGN_OR_RETURN(cmd->step, Dur(f[7], lineno));
    if (cmd->end < cmd->start) return LineError(lineno, "range end before start");
    cmd->query = std::string(rest_after(8));
    if (suffix == "ordered") return LineError(lineno, "eval_ordered is for instant queries");
  } else {
    return LineError(lineno, fmt::format("invalid eval command '{}'", line));
  }
  if (cmd->query.empty()) return LineError(lineno, "missing expression");
  if (suffix == "fail") {
    cmd->fail = true;
  } else if (suffix == "ordered") {
    cmd->ordered = true;
  } else if (suffix == "warn") {
    cmd->legacy_warn = true;
  } else if (suffix == "info") {
    cmd->legacy_info = true;
  } else if (!suffix.empty()) {
    return LineError(lineno, fmt::format("invalid command '{}'", head));
  }
  return absl::OkStatus();
}

absl::Status ParseExpectLine(std::string_view line, int lineno, EvalCmd* cmd) {
  static const LazyRE2 kRe = {
      R"(^expect\s+(ordered|fail|warn|no_warn|info|no_info)(\s+(regex|msg):(.+))?$)"};
  std::string kind, mode, text;
  std::string l(line);
  if (!RE2::FullMatch(l, *kRe, &kind, static_cast<void*>(nullptr), &mode, &text)) {
    return LineError(lineno, fmt::format("invalid expect line '{}'", line));
  }
  Expectation e;
  if (kind == "ordered") e.kind = Expectation::kOrdered;
  if (kind == "fail") e.kind = Expectation::kFail;
  if (kind == "warn") e.kind = Expectation::kWarn;
  if (kind == "no_warn") e.kind = Expectation::kNoWarn;
  if (kind == "info") e.kind = Expectation::kInfo;
  if (kind == "no_info") e.kind = Expectation::kNoInfo;
  if (!mode.empty()) {
    if (e.kind == Expectation::kOrdered || e.kind == Expectation::kNoWarn ||
        e.kind == Expectation::kNoInfo) {
      return LineError(lineno, "msg/regex not allowed here");
    }
    e.match = mode == "msg" ? Expectation::kMsg : Expectation::kRegex;
    e.text = std::string(Trim(text));
  }
  switch (e.kind) {
    case Expectation::kOrdered:
      if (!cmd->instant) return LineError(lineno, "expect ordered on a range query");
      cmd->ordered = true;
      break;
    case Expectation::kFail:
      if (cmd->fail && (cmd->fail_msg || cmd->fail_regex)) {
        return LineError(lineno, "more than one expect fail");
      }
      cmd->fail = true;
      if (e.match == Expectation::kMsg) cmd->fail_msg = e.text;
      if (e.match == Expectation::kRegex) cmd->fail_regex = e.text;
      break;
    default:
      cmd->expects.push_back(e);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Command>> ParseScript(std::string_view text,
                                                 const ParserOptions& popts) {
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view l = Trim(text.substr(pos, nl - pos));
    if (!l.empty() && l[0] == '#') l = {};
    lines.push_back(l);
    pos = nl + 1;
  }
  std::vector<Command> cmds;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (line.empty()) continue;
    int lineno = static_cast<int>(i + 1);
    std::vector<std::string_view> f = SplitFields(line);
    std::string first(f[0]);
    for (char& c : first) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (first == "clear") {
      cmds.push_back({Command::kClear, {}, {}});
      continue;
    }
    if (first.starts_with("load")) {
      Command c{Command::kLoad, {}, {}};
      if (f.size() != 2 || (f[0] != "load" && f[0] != "load_with_nhcb")) {
        return LineError(lineno, fmt::format("invalid load command '{}'", line));
      }
      c.load.nhcb = f[0] == "load_with_nhcb";
      STRATA_ASSIGN_OR_RETURN(c.load.interval, Dur(f[1], lineno));
      std::map<Labels, size_t> index;
      for (++i; i < lines.size() && !lines[i].empty(); ++i) {
        std::string_view sl = lines[i];
        std::vector<std::string_view> sf = SplitFields(sl);
        if (sf[0].ends_with("@st")) {
          std::string_view rest;
          std::string_view lbl = sf[0].substr(0, sf[0].size() - 3);
          absl::StatusOr<Labels> l = lbl == "{}" ? Labels() : ParseLabelSet(lbl, &rest);
          if (!l.ok()) return LineError(static_cast<int>(i + 1), StatusMessage(l.status()));
          c.load.st_series.push_back(*l);
          continue;
        }
        auto d = ParseSeriesDescription(sl);
        if (!d.ok()) return LineError(static_cast<int>(i + 1), StatusMessage(d.status()));
        auto [it, inserted] = index.emplace(d->labels, c.load.series.size());
        if (inserted) {
          c.load.series.push_back(std::move(*d));
        } else {
          c.load.series[it->second] = std::move(*d);
        }
      }
      cmds.push_back(std::move(c));
      continue;
    }
    if (first.starts_with("eval")) {
      Command c{Command::kEval, {}, {}};
      EvalCmd& e = c.eval;
      e.line = lineno;
      STRATA_RETURN_IF_ERROR(ParseEvalHeader(line, lineno, &e));
      auto parsed = ParseExpr(e.query, popts);
      if (!parsed.ok()) {
        return LineError(lineno, fmt::format("{}: {}", e.query, StatusMessage(parsed.status())));
      }
      e.expr = std::move(*parsed);
      for (++i; i < lines.size() && !lines[i].empty(); ++i) {
        std::string_view bl = lines[i];
        int bno = static_cast<int>(i + 1);
        if (bl.starts_with("expected_fail_message") || bl.starts_with("expected_fail_regexp")) {
          if (!e.fail) return LineError(bno, "expected_fail_* without eval_fail");
          std::string_view v = Trim(bl.substr(std::string_view("expected_fail_message").size()));
          if (bl.starts_with("expected_fail_message")) {
            e.fail_msg = std::string(v);
          } else {
            e.fail_regex = std::string(v);
          }
          ++i;
          break;
        }
        std::vector<std::string_view> bf = SplitFields(bl);
        if (bf[0] == "expect" && bf.size() >= 2 && bf[1] == "range") {
          if (bf.size() != 9 || bf[2] != "vector" || bf[3] != "from" || bf[5] != "to" ||
              bf[7] != "step") {
            return LineError(bno, fmt::format("invalid expect range vector line '{}'", bl));
          }
          if (!e.instant) return LineError(bno, "expect range vector on a range eval");
          e.has_range_vector = true;
          STRATA_ASSIGN_OR_RETURN(e.rv_start, Dur(bf[4], bno));
          STRATA_ASSIGN_OR_RETURN(e.rv_end, Dur(bf[6], bno));
          STRATA_ASSIGN_OR_RETURN(e.rv_step, Dur(bf[8], bno));
          continue;
        }
        if (bf[0] == "expect" && bf.size() >= 2 && bf[1] == "string") {
          std::string_view lit = Trim(bl.substr(bl.find("string") + 6));
          auto u = lit.empty() ? std::nullopt : Unquote(lit);
          if (!u) return LineError(bno, "expect string needs a quoted string");
          e.expect_string = *u;
          continue;
        }
        if (bf[0] == "expect") {
          STRATA_RETURN_IF_ERROR(ParseExpectLine(bl, bno, &e));
          continue;
        }
        if (auto v = ParseScalarLine(bl)) {
          e.scalar = *v;
          ++i;
          break;
        }
        auto d = ParseSeriesDescription(bl);
        if (!d.ok()) return LineError(bno, StatusMessage(d.status()));
        if (e.instant && !e.has_range_vector && d->values.size() != 1) {
          return LineError(bno, "expected one value per series for an instant query");
        }
        ExpectedSeries es{d->labels, d->values, d->histogram_positions > 0};
        if (es.histogram) e.histogram_expected = true;
        e.series.push_back(std::move(es));
      }
      --i;
      bool warn = false, no_warn = false, info = false, no_info = false;
      for (const auto& x : e.expects) {
        warn |= x.kind == Expectation::kWarn;
        no_warn |= x.kind == Expectation::kNoWarn;
        info |= x.kind == Expectation::kInfo;
        no_info |= x.kind == Expectation::kNoInfo;
      }
      if ((warn && no_warn) || (info && no_info)) {
        return LineError(lineno, "contradicting annotation expectations");
      }
      cmds.push_back(std::move(c));
      continue;
    }
    return LineError(lineno, fmt::format("invalid command '{}'", line));
  }
  return cmds;
}

// ---------------------------------------------------------------------------------------
// Checking results.

bool AlmostEqual(double a, double b) {
  constexpr double kEps = 1e-6;
  constexpr double kMinNormal = 2.2250738585072014e-308;
  if (IsStaleNaN(a) || IsStaleNaN(b)) return IsStaleNaN(a) && IsStaleNaN(b);
  if (std::isnan(a) && std::isnan(b)) return true;
  if (a == b) return true;
  double diff = std::fabs(a - b);
  if (a == 0 || b == 0 || std::fabs(a) + std::fabs(b) < kMinNormal) {
    return diff < kEps * kMinNormal;
  }
  return diff / std::min(std::fabs(a) + std::fabs(b), std::numeric_limits<double>::max()) < kEps;
}

std::string FormatValue(double v) {
  if (IsStaleNaN(v)) return "stale";
  return fmt::format("{}", v);
}

// Compares an instant-vector result with the expected series lines.
absl::Status CheckVector(const EvalCmd& e, const Vector& got, bool ordered) {
  if (e.scalar) {
    return absl::InternalError(fmt::format("expected scalar {} but got a vector of {} elements",
                                           FormatValue(*e.scalar), got.size()));
  }
  std::map<Labels, size_t> expected_index;
  for (size_t k = 0; k < e.series.size(); ++k) expected_index[e.series[k].labels] = k;
  std::set<Labels> seen;
  for (size_t k = 0; k < got.size(); ++k) {
    const VectorElement& el = got[k];
    auto it = expected_index.find(el.labels);
    if (it == expected_index.end()) {
      return absl::InternalError(
          fmt::format("unexpected series {} {}", el.labels.ToString(), FormatValue(el.v)));
    }
    if (!seen.insert(el.labels).second) {
      return absl::InternalError(fmt::format("duplicate series {}", el.labels.ToString()));
    }
    const ExpectedSeries& want = e.series[it->second];
    if (ordered && it->second != k) {
      return absl::InternalError(fmt::format("series {} at position {}, expected at {}",
                                             el.labels.ToString(), k + 1, it->second + 1));
    }
    if (want.histogram || !want.values[0]) {
      return absl::InternalError(
          fmt::format("series {}: expected a histogram or nothing", el.labels.ToString()));
    }
    if (!AlmostEqual(*want.values[0], el.v)) {
      return absl::InternalError(fmt::format("series {}: expected {}, got {}", el.labels.ToString(),
                                             FormatValue(*want.values[0]), FormatValue(el.v)));
    }
  }
  for (const auto& want : e.series) {
    if (!seen.count(want.labels)) {
      return absl::InternalError(fmt::format("missing series {}", want.labels.ToString()));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckMatrix(const EvalCmd& e, const Matrix& got, Timestamp start, Timestamp end,
                         int64_t step) {
  if (e.scalar) {
    return absl::InternalError(
        fmt::format("expected scalar {} but got a matrix", FormatValue(*e.scalar)));
  }
  for (size_t k = 1; k < got.size(); ++k) {
    if (Compare(got[k - 1].labels, got[k].labels) >= 0) {
      return absl::InternalError(fmt::format("matrix not sorted by labels: {} before {}",
                                             got[k - 1].labels.ToString(),
                                             got[k].labels.ToString()));
    }
  }
  std::map<Labels, const ExpectedSeries*> expected;
  for (const auto& s : e.series) expected[s.labels] = &s;
  for (const Series& s : got) {
    auto it = expected.find(s.labels);
    if (it == expected.end()) {
      std::string pts;
      for (const Sample& p : s.samples) pts += fmt::format(" {}@{}", FormatValue(p.v), p.t);
      return absl::InternalError(fmt::format("unexpected series {}:{}", s.labels.ToString(), pts));
    }
    const ExpectedSeries& want = *it->second;
    if (s.samples.empty()) {
      return absl::InternalError(fmt::format("series {} has no points", s.labels.ToString()));
    }
    std::vector<Sample> want_points;
    for (size_t k = 0; k < want.values.size(); ++k) {
      Timestamp t = start + static_cast<int64_t>(k) * step;
      if (t > end) {
        return absl::InternalError(
            fmt::format("series {}: more expected values than steps", s.labels.ToString()));
      }
      if (want.values[k]) want_points.push_back({t, *want.values[k]});
    }
    std::string got_text, want_text;
    for (const Sample& p : s.samples) got_text += fmt::format(" {}@{}", FormatValue(p.v), p.t);
    for (const Sample& p : want_points) want_text += fmt::format(" {}@{}", FormatValue(p.v), p.t);
    bool same = want_points.size() == s.samples.size();
    for (size_t k = 0; same && k < want_points.size(); ++k) {
      same = want_points[k].t == s.samples[k].t && AlmostEqual(want_points[k].v, s.samples[k].v);
    }
    if (!same) {
      return absl::InternalError(
          fmt::format("series {}: expected{}, got{}", s.labels.ToString(), want_text, got_text));
    }
  }
  for (const auto& want : e.series) {
    bool found = std::any_of(got.begin(), got.end(),
                             [&](const Series& s) { return s.labels == want.labels; });
    bool has_points = std::any_of(want.values.begin(), want.values.end(),
                                  [](const auto& v) { return v.has_value(); });
    if (!found && (has_points || want.histogram)) {
      return absl::InternalError(fmt::format("missing series {}", want.labels.ToString()));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckAnnotations(const EvalCmd& e, const QueryResult& r) {
  for (int kind = 0; kind < 2; ++kind) {
    bool is_warn = kind == 0;
    const std::vector<std::string>& got = is_warn ? r.warnings : r.infos;
    auto pos = is_warn ? Expectation::kWarn : Expectation::kInfo;
    auto neg = is_warn ? Expectation::kNoWarn : Expectation::kNoInfo;
    std::vector<const Expectation*> wants;
    bool forbid = false;
    for (const auto& x : e.expects) {
      if (x.kind == pos) wants.push_back(&x);
      if (x.kind == neg) forbid = true;
    }
    std::string_view what = is_warn ? "warning" : "info";
    if (forbid && !got.empty()) {
      return absl::InternalError(fmt::format("unexpected {} annotation: {}", what, got[0]));
    }
    bool legacy = is_warn ? e.legacy_warn : e.legacy_info;
    if (legacy && got.empty()) {
      return absl::InternalError(fmt::format("expected a {} annotation, got none", what));
    }
    if (wants.empty()) continue;
    if (got.empty()) {
      return absl::InternalError(fmt::format("expected a {} annotation, got none", what));
    }
    auto matches = [](const Expectation& x, const std::string& a) {
      if (x.match == Expectation::kAny) return true;
      if (x.match == Expectation::kMsg) return a == x.text;
      RE2 re(x.text);
      return re.ok() && RE2::PartialMatch(a, re);
    };
    for (const Expectation* x : wants) {
      bool any = std::any_of(got.begin(), got.end(), [&](const auto& a) { return matches(*x, a); });
      if (!any) {
        std::string all;
        for (const auto& a : got) all += "\n    " + a;
        return absl::InternalError(
            fmt::format("no {} annotation matches '{}'; got:{}", what, x->text, all));
      }
    }
    for (const auto& a : got) {
      bool any = std::any_of(wants.begin(), wants.end(),
                             [&](const Expectation* x) { return matches(*x, a); });
      if (!any) return absl::InternalError(fmt::format("unexpected {} annotation: {}", what, a));
    }
  }
  return absl::OkStatus();
}

// Steps 1-4 of FORMAT.md §7.7 for one run of the query.
absl::Status CheckRun(const EvalCmd& e, const absl::StatusOr<QueryResult>& r,
                      bool check_annotations, Timestamp start, Timestamp end, int64_t step,
                      bool instant) {
  if (!r.ok()) {
    if (!e.fail)
      return absl::InternalError(fmt::format("unexpected error: {}", StatusMessage(r.status())));
    std::string msg = StatusMessage(r.status());
    if (e.fail_msg && msg != *e.fail_msg) {
      return absl::InternalError(fmt::format("expected error '{}', got '{}'", *e.fail_msg, msg));
    }
    if (e.fail_regex) {
      RE2 re(*e.fail_regex);
      if (!RE2::PartialMatch(msg, re)) {
        return absl::InternalError(
            fmt::format("error '{}' does not match /{}/", msg, *e.fail_regex));
      }
    }
    return absl::OkStatus();
  }
  if (e.fail) return absl::InternalError("expected the query to fail, it succeeded");
  if (check_annotations) STRATA_RETURN_IF_ERROR(CheckAnnotations(e, *r));
  const QueryValue& v = r->value;
  switch (v.type) {
    case ValueType::kScalar:
      if (!e.scalar) {
        return absl::InternalError(
            fmt::format("got scalar {}, expected a vector/matrix", FormatValue(v.scalar_v)));
      }
      if (!AlmostEqual(*e.scalar, v.scalar_v)) {
        return absl::InternalError(fmt::format("expected scalar {}, got {}", FormatValue(*e.scalar),
                                               FormatValue(v.scalar_v)));
      }
      return absl::OkStatus();
    case ValueType::kString: {
      std::string want = e.expect_string.value_or("");
      if (v.str != want) {
        return absl::InternalError(fmt::format("expected string \"{}\", got \"{}\"", want, v.str));
      }
      return absl::OkStatus();
    }
    case ValueType::kVector:
      return CheckVector(e, v.vector, e.ordered);
    case ValueType::kMatrix:
      if (instant && e.ordered) return absl::InternalError("ordered check on a matrix result");
      if (instant) {
        if (e.has_range_vector) return CheckMatrix(e, v.matrix, e.rv_start, e.rv_end, e.rv_step);
        return CheckMatrix(e, v.matrix, e.at, e.at, 1);
      }
      return CheckMatrix(e, v.matrix, start, end, step);
    default:
      return absl::InternalError("query returned no value");
  }
}

// The range-mode check (§7.6.1): run as a range query around t, take the points at t.
absl::Status CheckRangeMode(const Engine& engine, Queryable& db, const EvalCmd& e, const Expr& expr,
                            const std::string& query, Timestamp t, const QueryResult& instant) {
  auto r = engine.RangeQuery(db, expr, query, t - 60000, t + 60000, 60000);
  if (!r.ok()) {
    return absl::InternalError(
        fmt::format("range-mode: unexpected error: {}", StatusMessage(r.status())));
  }
  const Matrix& m = r->value.matrix;
  for (size_t k = 1; k < m.size(); ++k) {
    if (Compare(m[k - 1].labels, m[k].labels) >= 0) {
      return absl::InternalError("range-mode: matrix not sorted by labels");
    }
  }
  QueryResult at_t;
  if (instant.value.type == ValueType::kScalar) {
    at_t.value.type = ValueType::kScalar;
    bool found = false;
    for (const Series& s : m) {
      for (const Sample& p : s.samples) {
        if (p.t == t && !found) {
          at_t.value.scalar_v = p.v;
          found = true;
        }
      }
    }
    if (!found) return absl::InternalError("range-mode: no scalar point at t");
  } else {
    at_t.value.type = ValueType::kVector;
    for (const Series& s : m) {
      for (const Sample& p : s.samples) {
        if (p.t == t) at_t.value.vector.push_back({s.labels, t, p.v});
      }
    }
  }
  absl::Status st = CheckRun(e, at_t, false, t, t, 1, true);
  if (!st.ok()) return absl::InternalError(fmt::format("range-mode: {}", StatusMessage(st)));
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------
// AST helpers.

template <typename F>
void Walk(const Expr& e, const F& f) {
  f(e);
  switch (e.kind()) {
    case NodeKind::kMatrixSelector:
      Walk(*e.As<MatrixSelector>().selector, f);
      break;
    case NodeKind::kSubquery:
      Walk(*e.As<Subquery>().expr, f);
      break;
    case NodeKind::kParen:
      Walk(*e.As<Paren>().expr, f);
      break;
    case NodeKind::kUnary:
      Walk(*e.As<Unary>().expr, f);
      break;
    case NodeKind::kBinary:
      Walk(*e.As<Binary>().lhs, f);
      Walk(*e.As<Binary>().rhs, f);
      break;
    case NodeKind::kAggregate:
      if (e.As<Aggregate>().param) Walk(*e.As<Aggregate>().param, f);
      Walk(*e.As<Aggregate>().expr, f);
      break;
    case NodeKind::kCall:
      for (const auto& a : e.As<Call>().args) Walk(*a, f);
      break;
    default:
      break;
  }
}

// Adds `@ t` to every selector and subquery without one, not descending into subqueries.
void AddAt(Expr& e, Timestamp t) {
  switch (e.kind()) {
    case NodeKind::kVectorSelector: {
      auto& vs = e.As<VectorSelector>();
      if (vs.at.kind == AtKind::kNone) vs.at = {AtKind::kTimestamp, t};
      break;
    }
    case NodeKind::kMatrixSelector:
      AddAt(*e.As<MatrixSelector>().selector, t);
      break;
    case NodeKind::kSubquery: {
      auto& sq = e.As<Subquery>();
      if (sq.at.kind == AtKind::kNone) sq.at = {AtKind::kTimestamp, t};
      break;
    }
    case NodeKind::kParen:
      AddAt(*e.As<Paren>().expr, t);
      break;
    case NodeKind::kUnary:
      AddAt(*e.As<Unary>().expr, t);
      break;
    case NodeKind::kBinary:
      AddAt(*e.As<Binary>().lhs, t);
      AddAt(*e.As<Binary>().rhs, t);
      break;
    case NodeKind::kAggregate:
      if (e.As<Aggregate>().param) AddAt(*e.As<Aggregate>().param, t);
      AddAt(*e.As<Aggregate>().expr, t);
      break;
    case NodeKind::kCall:
      for (auto& a : e.As<Call>().args) AddAt(*a, t);
      break;
    default:
      break;
  }
}

bool UsesTimeDependentFunction(const Expr& e) {
  static const std::set<std::string_view> kNames = {
      "days_in_month",  "day_of_month", "day_of_week", "day_of_year", "hour",
      "minute",         "month",        "year",        "time",        "timestamp",
      "predict_linear", "start",        "end",         "range",       "step"};
  bool found = false;
  Walk(e, [&](const Expr& n) {
    if (n.kind() == NodeKind::kCall && kNames.count(n.As<Call>().func->name)) found = true;
  });
  return found;
}

// ---------------------------------------------------------------------------------------
// Running.

class Runner {
 public:
  Runner(const EngineOptions& options) : engine_(options), options_(options) {}

  void Load(const LoadCmd& load, std::vector<std::string>* errors) {
    for (const auto& s : load.series) {
      if (s.histogram_positions > 0) histogram_series_.push_back(s.labels);
      std::vector<Sample> samples;
      for (size_t k = 0; k < s.values.size(); ++k) {
        if (s.values[k]) samples.push_back({static_cast<int64_t>(k) * load.interval, *s.values[k]});
      }
      if (samples.empty()) continue;
      absl::Status st = store_.AppendMany(s.labels, samples);
      if (!st.ok()) errors->push_back(StatusMessage(st));
    }
    for (const auto& l : load.st_series) st_series_.push_back(l);
    if (load.nhcb) {
      // The NHCB series derived from classic histograms are native histograms.
      for (const auto& s : load.series) {
        std::string_view name = s.labels.MetricName();
        for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
          if (name.ends_with(suffix)) {
            LabelsBuilder b(s.labels);
            b.Set(kMetricName, name.substr(0, name.size() - suffix.size()));
            b.Del("le");
            histogram_series_.push_back(b.Build());
          }
        }
      }
    }
  }

  void Clear() {
    store_.Clear();
    histogram_series_.clear();
    st_series_.clear();
  }

  EvalOutcome Eval(const EvalCmd& e) {
    EvalOutcome out;
    out.line = e.line;
    if (auto reason = SkipReason(e)) {
      out.status = EvalStatus::kSkipped;
      out.message = std::string(*reason);
      return out;
    }
    absl::Status st = e.instant ? RunInstant(e) : RunRange(e);
    if (!st.ok()) {
      out.status = EvalStatus::kFailed;
      out.message = StatusMessage(st);
    }
    return out;
  }

 private:
  std::optional<std::string_view> SkipReason(const EvalCmd& e) const {
    if (e.histogram_expected) return kSkipNativeHistograms;
    bool hist = false, st = false;
    Walk(*e.expr, [&](const Expr& n) {
      if (n.kind() == NodeKind::kCall && n.As<Call>().func->id == FunctionId::kStartTimestamp) {
        st = true;
      }
      if (n.kind() != NodeKind::kVectorSelector) return;
      const auto& vs = n.As<VectorSelector>();
      for (const Labels& l : histogram_series_) hist |= MatchesAll(vs.matchers, l);
      for (const Labels& l : st_series_) st |= MatchesAll(vs.matchers, l);
    });
    if (hist) return kSkipNativeHistograms;
    if (st) return kSkipStartTimestamps;
    return std::nullopt;
  }

  absl::Status RunRange(const EvalCmd& e) {
    auto r = engine_.RangeQuery(store_, *e.expr, e.query, e.start, e.end, e.step);
    return CheckRun(e, r, true, e.start, e.end, e.step, false);
  }

  absl::Status RunInstantAt(const EvalCmd& e, const Expr& expr, const std::string& query,
                            Timestamp t, std::string_view variant) {
    Timestamp at = e.has_range_vector ? e.rv_end : t;
    auto r = engine_.InstantQuery(store_, expr, query, at);
    absl::Status st = CheckRun(e, r, true, at, at, 1, true);
    if (!st.ok()) {
      if (variant.empty()) return st;
      return absl::InternalError(fmt::format("{}: {}", variant, StatusMessage(st)));
    }
    if (!r.ok() || e.ordered || e.has_range_vector || e.expect_string) return absl::OkStatus();
    static const LazyRE2 kNoRangeMode = {R"((start|end|range|step)\(\))"};
    if (RE2::PartialMatch(query, *kNoRangeMode)) return absl::OkStatus();
    st = CheckRangeMode(engine_, store_, e, expr, query, at, *r);
    if (!st.ok() && !variant.empty()) {
      return absl::InternalError(fmt::format("{}: {}", variant, StatusMessage(st)));
    }
    return st;
  }

  absl::Status RunInstant(const EvalCmd& e) {
    STRATA_RETURN_IF_ERROR(RunInstantAt(e, *e.expr, e.query, e.at, ""));
    if (e.has_range_vector || UsesTimeDependentFunction(*e.expr)) return absl::OkStatus();
    ExprPtr rewritten = e.expr->Clone();
    AddAt(*rewritten, e.at);
    std::string text = ToString(*rewritten);
    auto reparsed = ParseExpr(text, options_.parser_options());
    if (!reparsed.ok()) {
      return absl::InternalError(
          fmt::format("@ rewrite '{}' does not parse: {}", text, StatusMessage(reparsed.status())));
    }
    std::vector<Timestamp> times;
    if (e.at == 0) {
      times = {-1000, 0, 1000};
    } else {
      times = {-10 * e.at, 0, e.at / 5, e.at, 10 * e.at};
    }
    for (Timestamp t : times) {
      STRATA_RETURN_IF_ERROR(
          RunInstantAt(e, **reparsed, text, t, fmt::format("`{}` at {}ms", text, t)));
    }
    return absl::OkStatus();
  }

  Engine engine_;
  EngineOptions options_;
  MemoryStore store_;
  std::vector<Labels> histogram_series_;
  std::vector<Labels> st_series_;
};

}  // namespace

absl::StatusOr<ScriptReport> RunTestScript(std::string_view text, std::string_view name,
                                           const EngineOptions& options) {
  STRATA_ASSIGN_OR_RETURN(std::vector<Command> cmds, ParseScript(text, options.parser_options()));
  ScriptReport report;
  report.name = std::string(name);
  Runner runner(options);
  for (const Command& c : cmds) {
    switch (c.kind) {
      case Command::kClear:
        runner.Clear();
        break;
      case Command::kLoad: {
        std::vector<std::string> errors;
        runner.Load(c.load, &errors);
        if (!errors.empty()) {
          return absl::InvalidArgumentError(fmt::format("{}: load failed: {}", name, errors[0]));
        }
        break;
      }
      case Command::kEval:
        report.evals.push_back(runner.Eval(c.eval));
        break;
    }
  }
  return report;
}

}  // namespace strata::promql
