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
    auto re = std::make_shared<const RE2>(fmt::format("^(?:{})$", pattern), opts);
    if (!re->ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid regular expression ", QuoteString(pattern), ": ", re->error()));
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
