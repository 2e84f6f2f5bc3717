// Times and durations as Prometheus reads and prints them. All values in milliseconds.
#ifndef STRATA_SRC_TIME_H_
#define STRATA_SRC_TIME_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "src/sample.h"

namespace strata {

// The earliest and latest times the API accepts; also what it reads for the strings
// Prometheus uses to spell them ("-292273086-05-16T16:47:06Z" and
// "292277025-08-18T07:12:54.999999999Z").
inline constexpr Timestamp kMinTime = -9223309901257974000LL;
inline constexpr Timestamp kMaxTime = 9223309901257974999LL;

// A time as the HTTP API takes it: Unix seconds as a decimal float (rounded to the
// millisecond) or RFC3339 with an optional fraction and a zone. Errors name the input.
absl::StatusOr<Timestamp> ParseApiTime(std::string_view s);

// A duration as the HTTP API takes it: float seconds ("30", "1.5") or a Prometheus duration
// ("5m", "1h30m"), in milliseconds as Prometheus evaluates it (its nanoseconds truncated).
absl::StatusOr<int64_t> ParseApiDuration(std::string_view s);

// The same in nanoseconds, as Prometheus holds it (a Go time.Duration): float seconds
// truncated to the nanosecond ("0.0005" is 500000, a positive step), at most about 292 years.
absl::StatusOr<int64_t> ParseApiDurationNanos(std::string_view s);

// A Prometheus duration: units y, w, d, h, m, s, ms, each at most once and in that order
// ("1h30m", "90s", "1d", "2w", "1y"); "0" alone is zero. A year is 365 days.
absl::StatusOr<int64_t> ParseDuration(std::string_view s);

// The canonical Prometheus form of a duration: "1h30m", "1m30s", "0s", "1w", "-5m".
std::string FormatDuration(int64_t ms);

// The current time, in milliseconds since the epoch.
Timestamp NowMillis();

}  // namespace strata

#endif  // STRATA_SRC_TIME_H_
