#include "src/matcher.h"

#include <algorithm>
#include <mutex>

#include "absl/status/status.h"
#include "re2/re2.h"
#include "src/status.h"
#include "src/strings.h"

namespace strata {
namespace {

bool IsRegexMeta(char c) {
  switch (c) {
    case '\\':
    case '.':
    case '+':
    case '*':
    case '?':
    case '(':
    case ')':
    case '|':
    case '[':
    case ']':
    case '{':
    case '}':
    case '^':
    case '$':
      return true;
    default:
      return false;
  }
}

// Splits `re` into literal alternatives when it is exactly `lit|lit|...` with no regex
// syntax but `\`-escaped metacharacters. Returns nullopt otherwise.
std::optional<std::vector<std::string>> LiteralAlternatives(std::string_view re) {
  std::vector<std::string> out(1);
  for (size_t i = 0; i < re.size(); ++i) {
    char c = re[i];
    if (c == '|') {
      out.emplace_back();
    } else if (c == '\\') {
      if (i + 1 >= re.size() || !IsRegexMeta(re[i + 1])) return std::nullopt;
      out.back().push_back(re[++i]);
    } else if (IsRegexMeta(c)) {
      return std::nullopt;
    } else {
      out.back().push_back(c);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// The literal characters `re` starts with, when what follows cannot make the match start
// otherwise (no top-level alternation).
std::string LiteralPrefixOf(std::string_view re) {
  int depth = 0;
  for (char c : re) {
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == '|' && depth == 0) return "";
  }
  std::string prefix;
  for (size_t i = 0; i < re.size(); ++i) {
    char c = re[i];
    if (c == '\\') {
      if (i + 1 < re.size() && IsRegexMeta(re[i + 1])) {
        // An escaped character is literal unless a quantifier follows it.
        if (i + 2 < re.size() && (re[i + 2] == '*' || re[i + 2] == '?' || re[i + 2] == '{')) {
          break;
        }
        prefix.push_back(re[++i]);
        continue;
      }
      break;
    }
    if (IsRegexMeta(c)) break;
    // A quantifier after this character makes it optional.
    if (i + 1 < re.size() && (re[i + 1] == '*' || re[i + 1] == '?' || re[i + 1] == '{')) break;
    prefix.push_back(c);
  }
  return prefix;
}

// Go's regexp/syntax wording for what RE2 rejected in `re` (compiled from the pattern as
// written), as Prometheus 3 reports a bad matcher: "error parsing regexp: missing closing ):
// `(`".
std::string GoRegexpError(const RE2& re) {
  const char* text = nullptr;
  switch (re.error_code()) {
    case RE2::ErrorBadEscape:
      text = "invalid escape sequence";
      break;
    case RE2::ErrorBadCharClass:
      text = "invalid character class";
      break;
    case RE2::ErrorBadCharRange:
      text = "invalid character class range";
      break;
    case RE2::ErrorMissingBracket:
      text = "missing closing ]";
      break;
    case RE2::ErrorMissingParen:
      text = "missing closing )";
      break;
    case RE2::ErrorUnexpectedParen:
      text = "unexpected )";
      break;
    case RE2::ErrorTrailingBackslash:
      text = "trailing backslash at end of expression";
      break;
    case RE2::ErrorRepeatArgument:
      text = "missing argument to repetition operator";
      break;
    case RE2::ErrorRepeatSize:
      text = "invalid repeat count";
      break;
    case RE2::ErrorRepeatOp:
      text = "invalid nested repetition operator";
      break;
    case RE2::ErrorBadPerlOp:
      text = "invalid or unsupported Perl syntax";
      break;
    case RE2::ErrorBadUTF8:
      text = "invalid UTF-8";
      break;
    case RE2::ErrorBadNamedCapture:
      text = "invalid named capture";
      break;
    case RE2::ErrorPatternTooLarge:
      text = "expression too large";
      break;
    default:
      return absl::StrCat("error parsing regexp: ", re.error());
  }
  return absl::StrCat("error parsing regexp: ", text, ": `", re.error_arg(), "`");
}

// Compiled regexes by pattern, shared by the matchers of every query: dashboards send the
// same selectors again and again, and compiling one is most of the cost of parsing a light
// query. Bounded: cleared when full; long patterns are not kept.
class RegexCache {
 public:
  static RegexCache& Get() {
    static RegexCache* cache = new RegexCache();  // never destroyed: used until exit
    return *cache;
  }
  // The compiled, fully anchored form of `pattern`; an error names what RE2 rejected.
  absl::StatusOr<std::shared_ptr<const RE2>> Compile(std::string_view pattern) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = compiled_.find(pattern); it != compiled_.end()) return it->second;
    }
    RE2::Options opts;
    opts.set_dot_nl(true);
    opts.set_log_errors(false);
    if (HasAnyByteEscape(pattern)) {
      return absl::InvalidArgumentError("error parsing regexp: invalid escape sequence: `\\C`");
    }
    auto re = std::make_shared<const RE2>(fmt::format("^(?:{})$", pattern), opts);
    if (!re->ok()) {
      // Prometheus 3 parses the pattern as written: its error names what is wrong there.
      RE2 as_written(pattern, opts);
      return absl::InvalidArgumentError(GoRegexpError(as_written.ok() ? *re : as_written));
    }
    if (pattern.size() <= kMaxPatternBytes) {
      std::lock_guard<std::mutex> lock(mu_);
      if (compiled_.size() >= kMaxEntries) compiled_.clear();
      compiled_.try_emplace(std::string(pattern), re);
    }
    return re;
  }

 private:
  static constexpr size_t kMaxEntries = 512;
  static constexpr size_t kMaxPatternBytes = 1024;
  std::mutex mu_;
  StringMap<std::shared_ptr<const RE2>> compiled_;
};

}  // namespace

bool HasAnyByteEscape(std::string_view pattern) {
  bool quoted = false;
  for (size_t i = 0; i + 1 < pattern.size(); ++i) {
    if (pattern[i] != '\\') continue;
    char next = pattern[++i];
    if (quoted) {
      quoted = next != 'E';
    } else if (next == 'Q') {
      quoted = true;
    } else if (next == 'C') {
      return true;
    }
  }
  return false;
}

std::string_view MatchTypeString(MatchType type) {
  switch (type) {
    case MatchType::kEqual:
      return "=";
    case MatchType::kNotEqual:
      return "!=";
    case MatchType::kRegexMatch:
      return "=~";
    case MatchType::kRegexNoMatch:
      return "!~";
  }
  return "?";
}

absl::StatusOr<LabelMatcher> LabelMatcher::Make(MatchType type, std::string_view name,
                                                std::string_view value) {
  LabelMatcher m;
  m.type_ = type;
  m.name_ = std::string(name);
  m.value_ = std::string(value);
  if (type == MatchType::kRegexMatch || type == MatchType::kRegexNoMatch) {
    STRATA_ASSIGN_OR_RETURN(m.re_, RegexCache::Get().Compile(value));
    m.set_ = LiteralAlternatives(value);
    if (!m.set_) m.prefix_ = LiteralPrefixOf(value);
  } else if (type == MatchType::kEqual) {
    m.set_ = std::vector<std::string>{m.value_};
  }
  m.matches_empty_ = m.Matches("");
  return m;
}

bool LabelMatcher::MatchesPositive(std::string_view v) const {
  if (set_) {
    return std::binary_search(set_->begin(), set_->end(), v,
                              [](std::string_view a, std::string_view b) { return a < b; });
  }
  if (!prefix_.empty() && v.substr(0, prefix_.size()) != prefix_) return false;
  return RE2::FullMatch(v, *re_);
}

bool LabelMatcher::Matches(std::string_view v) const {
  switch (type_) {
    case MatchType::kEqual:
      return v == value_;
    case MatchType::kNotEqual:
      return v != value_;
    case MatchType::kRegexMatch:
      return MatchesPositive(v);
    case MatchType::kRegexNoMatch:
      return !MatchesPositive(v);
  }
  return false;
}

std::string LabelMatcher::ToString() const {
  std::string out = IsLegacyLabelName(name_) ? name_ : QuoteString(name_);
  out += MatchTypeString(type_);
  out += QuoteString(value_);
  return out;
}

bool MatchesAll(const std::vector<LabelMatcher>& matchers, const Labels& labels) {
  for (const auto& m : matchers) {
    if (!m.Matches(labels.Get(m.name()))) return false;
  }
  return true;
}

}  // namespace strata
