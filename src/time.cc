#include "src/time.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <limits>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "src/labels.h"
#include "src/strings.h"

namespace strata {
namespace {

constexpr int64_t kSecond = 1000;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kWeek = 7 * kDay;
constexpr int64_t kYear = 365 * kDay;

// Parses a float the way Go's strconv.ParseFloat does for decimal input: the whole
// string must be consumed. Also takes "Inf"/"NaN" spellings, which callers reject.
bool ParseFloatStrict(std::string_view s, double* out) {
  if (!s.empty() && s.front() == '+') {
    s.remove_prefix(1);
    if (!s.empty() && s.front() == '-') return false;
  }
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

}  // namespace

absl::StatusOr<Timestamp> ParseApiTime(std::string_view s) {
  double f;
  if (ParseFloatStrict(s, &f)) {
    if (!std::isfinite(f) || std::fabs(f) > 9.2e15) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot parse ", QuoteString(s), " to a valid timestamp"));
    }
    double int_part = std::trunc(f);
    double frac_ms = std::round((f - int_part) * 1000);
    return static_cast<int64_t>(int_part) * 1000 + static_cast<int64_t>(frac_ms);
  }
  if (s == "-292273086-05-16T16:47:06Z") return kMinTime;
  if (s == "292277025-08-18T07:12:54.999999999Z") return kMaxTime;
  absl::Time t;
  std::string err;
  // Go's time.Parse wants the 'T' and 'Z' of RFC 3339 in upper case; absl takes either.
  bool lower_case = s.find_first_of("tz") != std::string_view::npos;
  if (!lower_case && absl::ParseTime(absl::RFC3339_full, std::string(s), &t, &err)) {
    return absl::ToUnixMillis(t);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("cannot parse ", QuoteString(s), " to a valid timestamp"));
}

absl::StatusOr<int64_t> ParseApiDuration(std::string_view s) {
  double f;
  if (ParseFloatStrict(s, &f)) {
    double ms = f * 1000;
    if (!std::isfinite(ms) || ms >= 9.2e18 || ms <= -9.2e18) {
      return absl::InvalidArgumentError(absl::StrCat("cannot parse ", QuoteString(s),
                                                     " to a valid duration. It overflows int64"));
    }
    // Go truncates nanoseconds; we keep milliseconds, truncating toward zero.
    return static_cast<int64_t>(ms);
  }
  auto d = ParseDuration(s);
  if (d.ok()) return d;
  return absl::InvalidArgumentError(
      absl::StrCat("cannot parse ", QuoteString(s), " to a valid duration"));
}

absl::StatusOr<int64_t> ParseDuration(std::string_view s) {
  if (s.empty()) return absl::InvalidArgumentError("empty duration string");
  if (s == "0") return 0;
  struct Unit {
    std::string_view name;
    int64_t ms;
  };
  static constexpr Unit kUnits[] = {{"y", kYear},   {"w", kWeek},   {"d", kDay}, {"h", kHour},
                                    {"m", kMinute}, {"s", kSecond}, {"ms", 1}};
  auto invalid = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("not a valid duration string: ", QuoteString(s)));
  };
  int64_t total = 0;
  size_t next_unit = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start) return invalid();
    uint64_t n = 0;
    auto [ptr, ec] = std::from_chars(s.data() + start, s.data() + i, n);
    if (ec != std::errc()) return invalid();
    size_t ustart = i;
    while (i < s.size() && !(s[i] >= '0' && s[i] <= '9')) ++i;
    std::string_view unit = s.substr(ustart, i - ustart);
    size_t k = next_unit;
    while (k < std::size(kUnits) && kUnits[k].name != unit) ++k;
    if (k == std::size(kUnits)) return invalid();
    next_unit = k + 1;
    if (n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max() / kUnits[k].ms)) {
      return absl::InvalidArgumentError(absl::StrCat("duration out of range: ", QuoteString(s)));
    }
    int64_t add = static_cast<int64_t>(n) * kUnits[k].ms;
    if (total > std::numeric_limits<int64_t>::max() - add) {
      return absl::InvalidArgumentError(absl::StrCat("duration out of range: ", QuoteString(s)));
    }
    total += add;
  }
  return total;
}

std::string FormatDuration(int64_t ms) {
  if (ms == 0) return "0s";
  std::string out;
  uint64_t rest;
  if (ms < 0) {
    out = "-";
    rest = static_cast<uint64_t>(-(ms + 1)) + 1;
  } else {
    rest = static_cast<uint64_t>(ms);
  }
  auto unit = [&](const char* name, uint64_t mult, bool exact) {
    if (exact && rest % mult != 0) return;
    if (uint64_t v = rest / mult; v > 0) {
      absl::StrAppend(&out, v, name);
      rest -= v * mult;
    }
  };
  unit("y", kYear, false);
  unit("w", kWeek, true);
  unit("d", kDay, false);
  unit("h", kHour, false);
  unit("m", kMinute, false);
  unit("s", kSecond, false);
  unit("ms", 1, false);
  return out;
}

Timestamp NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace strata
