// Label matchers: name="v", name!="v", name=~"re", name!~"re".
#ifndef STRATA_SRC_MATCHER_H_
#define STRATA_SRC_MATCHER_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "src/labels.h"

namespace re2 {
class RE2;
}

namespace strata {

enum class MatchType { kEqual, kNotEqual, kRegexMatch, kRegexNoMatch };

// "=", "!=", "=~", "!~".
std::string_view MatchTypeString(MatchType type);

// Matches the value of one label. A label that is absent is matched as the empty string,
// as in Prometheus. Regexes are RE2, fully anchored, with `.` matching newlines.
// Copyable and cheap to copy; thread-safe for concurrent use.
class LabelMatcher {
 public:
  // Errors (InvalidArgument) on a regex RE2 cannot compile, naming the regex.
  static absl::StatusOr<LabelMatcher> Make(MatchType type, std::string_view name,
                                           std::string_view value);

  MatchType type() const { return type_; }
  const std::string& name() const { return name_; }
  const std::string& value() const { return value_; }

  bool Matches(std::string_view v) const;
  // True when the matcher selects series that lack the label.
  bool MatchesEmpty() const { return matches_empty_; }

  // For =~ / !~ whose regex is a plain alternation of literals (`a|b|c`, or one literal),
  // those literals; for =, the value. Lets the index look values up instead of scanning.
  const std::optional<std::vector<std::string>>& SetMatches() const { return set_; }
  // For =~ / !~ a literal prefix every match starts with ("" when none).
  const std::string& LiteralPrefix() const { return prefix_; }

  // name="value" in PromQL form, quoting the name when it is not a legacy identifier.
  std::string ToString() const;

  friend bool operator==(const LabelMatcher& a, const LabelMatcher& b) {
    return a.type_ == b.type_ && a.name_ == b.name_ && a.value_ == b.value_;
  }

 private:
  LabelMatcher() = default;
  bool MatchesPositive(std::string_view v) const;

  MatchType type_ = MatchType::kEqual;
  std::string name_;
  std::string value_;
  std::shared_ptr<const re2::RE2> re_;
  std::optional<std::vector<std::string>> set_;
  std::string prefix_;
  bool matches_empty_ = false;
};

// True when every matcher accepts the corresponding label value of `labels`.
bool MatchesAll(const std::vector<LabelMatcher>& matchers, const Labels& labels);

// Whether `pattern` uses RE2's \C (any byte) outside \Q...\E quoting: Go's regexp, and so
// Prometheus, rejects it as an invalid escape.
bool HasAnyByteEscape(std::string_view pattern);

}  // namespace strata

#endif  // STRATA_SRC_MATCHER_H_
