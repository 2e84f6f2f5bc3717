#include "src/time.h"

#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>

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

// Go's underscoreOK: underscores only between digits (or after a base prefix), never at
// either end of the number.
bool UnderscoresOk(std::string_view s) {
  if (!s.empty() && (s.front() == '+' || s.front() == '-')) s.remove_prefix(1);
  char saw = '^';  // '^' start, '0' digit or base prefix, '_' underscore, '!' anything else
  size_t i = 0;
  bool hex = false;
  if (s.size() >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    i = 2;
    saw = '0';
    hex = true;
  }
  for (; i < s.size(); ++i) {
    char c = s[i];
    if ((c >= '0' && c <= '9') || (hex && std::isxdigit(static_cast<unsigned char>(c)))) {
      saw = '0';
    } else if (c == '_') {
      if (saw != '0') return false;
      saw = '_';
    } else {
      if (saw == '_') return false;
      saw = '!';
    }
  }
  return saw != '_';
}

// Parses a float the way Go's strconv.ParseFloat does: decimal, or hexadecimal with a 0x
// prefix and a p exponent ("0x1.8p1"), with underscores between digits ("1_000.5"); the
// whole string must be consumed. Also takes "Inf"/"NaN" spellings, which callers reject.
bool ParseFloatStrict(std::string_view s, double* out) {
  std::string without_underscores;
  if (s.find('_') != std::string_view::npos) {
    if (!UnderscoresOk(s)) return false;
    for (char c : s) {
      if (c != '_') without_underscores.push_back(c);
    }
    s = without_underscores;
  }
  bool negative = false;
  if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
    if (!s.empty() && (s.front() == '+' || s.front() == '-')) return false;
  }
  if (s.empty()) return false;
  std::chars_format format = std::chars_format::general;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    // Go wants the exponent of a hexadecimal mantissa.
    if (s.find_first_of("pP") == std::string_view::npos) return false;
    s.remove_prefix(2);
    if (s.front() == '+' || s.front() == '-') return false;
    format = std::chars_format::hex;
  }
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, format);
  if (ec == std::errc::result_out_of_range && ptr == s.data() + s.size()) {
    // Go gives ±Inf for an overflow and 0 for an underflow (strtod's values), and callers
    // reject what is out of their range.
    std::string text = (format == std::chars_format::hex ? "0x" : "") + std::string(s);
    *out = std::strtod(text.c_str(), nullptr);
  } else if (ec != std::errc() || ptr != s.data() + s.size()) {
    return false;
  }
  if (negative) *out = -*out;
  return true;
}

// Days from 1970-01-01 to the civil date (proleptic Gregorian calendar).
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

int DaysInMonth(int64_t y, int64_t m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

// RFC 3339 as Go's time.Parse reads it with Prometheus' layout RFC3339Nano: exactly
// "YYYY-MM-DDTHH:MM:SS" (upper-case T, every field but the hour its full width), an optional
// fraction after '.' or ',' (any number of digits; beyond nanoseconds they are ignored), then "Z"
// or "±hh:mm". Go checks month, day (within the month), hour < 24, minute and second < 60, and a
// zone offset of at most 24 hours and 60 minutes. The time in milliseconds, rounded down.
std::optional<Timestamp> ParseRfc3339(std::string_view s) {
  auto num = [&](size_t pos, size_t len, int64_t* out) {
    if (pos + len > s.size()) return false;
    int64_t v = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
  };
  int64_t year, month, day, hour, minute, second;
  // The hour alone may have one digit (Go's layout "15" is not zero-padded).
  size_t h = s.size() > 12 && s[12] == ':' ? 1 : 2;
  if (s.size() < 18 + h || !num(0, 4, &year) || s[4] != '-' || !num(5, 2, &month) || s[7] != '-' ||
      !num(8, 2, &day) || s[10] != 'T' || !num(11, h, &hour) || s[11 + h] != ':' ||
      !num(12 + h, 2, &minute) || s[14 + h] != ':' || !num(15 + h, 2, &second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month) || hour >= 24 ||
      minute >= 60 || second >= 60) {
    return std::nullopt;
  }
  size_t i = 17 + h;
  int64_t nanos = 0;
  if (i + 1 < s.size() && (s[i] == '.' || s[i] == ',') && s[i + 1] >= '0' && s[i + 1] <= '9') {
    int digits = 0;
    for (++i; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, ++digits) {
      if (digits < 9) nanos = nanos * 10 + (s[i] - '0');
    }
    for (; digits < 9; ++digits) nanos *= 10;
  }
  std::string_view zone = s.substr(i);
  int64_t offset_seconds = 0;
  if (zone != "Z") {
    int64_t zh, zm;
    if (zone.size() != 6 || (zone[0] != '+' && zone[0] != '-') || zone[3] != ':' ||
        !num(i + 1, 2, &zh) || !num(i + 4, 2, &zm) || zh > 24 || zm > 60) {
      return std::nullopt;
    }
    offset_seconds = (zh * 60 + zm) * 60 * (zone[0] == '-' ? -1 : 1);
  }
  int64_t seconds =
      DaysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset_seconds;
  return seconds * 1000 + nanos / 1'000'000;
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
  if (std::optional<Timestamp> t = ParseRfc3339(s)) return *t;
  return absl::InvalidArgumentError(
      absl::StrCat("cannot parse ", QuoteString(s), " to a valid timestamp"));
}

absl::StatusOr<int64_t> ParseApiDurationNanos(std::string_view s) {
  double f;
  if (ParseFloatStrict(s, &f)) {
    // As Go: time.Duration(f * float64(time.Second)), truncated toward zero.
    double ns = f * 1e9;
    if (!(ns <= 9223372036854775807.0 && ns >= -9223372036854775808.0)) {
      return absl::InvalidArgumentError(absl::StrCat("cannot parse ", QuoteString(s),
                                                     " to a valid duration. It overflows int64"));
    }
    if (ns >= 9223372036854775807.0) return std::numeric_limits<int64_t>::max();
    return static_cast<int64_t>(ns);
  }
  auto d = ParseDuration(s);
  // A Prometheus duration must fit a Go time.Duration (about 292 years).
  if (d.ok() && *d <= std::numeric_limits<int64_t>::max() / 1'000'000) return *d * 1'000'000;
  return absl::InvalidArgumentError(
      absl::StrCat("cannot parse ", QuoteString(s), " to a valid duration"));
}

absl::StatusOr<int64_t> ParseApiDuration(std::string_view s) {
  absl::StatusOr<int64_t> ns = ParseApiDurationNanos(s);
  if (!ns.ok()) return ns.status();
  // As Prometheus' durationMilliseconds: the nanoseconds divided, truncated toward zero.
  return *ns / 1'000'000;
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
