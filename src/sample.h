// A float sample and the Prometheus stale marker.
#ifndef STRATA_SRC_SAMPLE_H_
#define STRATA_SRC_SAMPLE_H_

#include <bit>
#include <cstdint>

namespace strata {

// Milliseconds since the Unix epoch (may be negative).
using Timestamp = int64_t;

struct Sample {
  Timestamp t = 0;
  double v = 0;
};

// The NaN that Prometheus writes to mark a series stale. It is stored like any other
// value and, as the newest sample in a lookback window, hides the series.
inline constexpr uint64_t kStaleNaNBits = 0x7ff0000000000002ULL;

inline double StaleNaN() { return std::bit_cast<double>(kStaleNaNBits); }
inline bool IsStaleNaN(double v) { return std::bit_cast<uint64_t>(v) == kStaleNaNBits; }

}  // namespace strata

#endif  // STRATA_SRC_SAMPLE_H_
