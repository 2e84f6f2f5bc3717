#include "query/go_math.h"

#include <cmath>
#include <cstdint>
#include <limits>

namespace strata::promql {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

bool IsOddInteger(double x) {
  if (std::fabs(x) >= 0x1p53) return false;  // every such double is even
  double whole = 0;
  return std::modf(x, &whole) == 0 && (static_cast<int64_t>(whole) & 1) != 0;
}

}  // namespace

double GoPow(double x, double y) {
  if (y == 0 || x == 1) return 1;
  if (y == 1) return x;
  if (std::isnan(x) || std::isnan(y)) return std::numeric_limits<double>::quiet_NaN();
  if (x == 0) {
    const bool negative_odd = std::signbit(x) && IsOddInteger(y);
    if (y < 0) return negative_odd ? -kInf : kInf;
    return negative_odd ? x : 0;
  }
  if (std::isinf(y)) {
    if (x == -1) return 1;
    return (std::fabs(x) < 1) == (y > 0) ? 0 : kInf;
  }
  if (std::isinf(x)) {
    if (x < 0) return GoPow(1 / x, -y);  // (-0) ^ -y
    return y < 0 ? 0 : kInf;
  }
  if (y == 0.5) return std::sqrt(x);
  if (y == -0.5) return 1 / std::sqrt(x);

  double whole = 0;
  double frac = std::modf(std::fabs(y), &whole);
  if (frac != 0 && x < 0) return std::numeric_limits<double>::quiet_NaN();
  if (whole >= 0x1p63) {
    // An even integer so large that the power overflows or underflows unless x is -1.
    if (x == -1) return 1;
    return (std::fabs(x) < 1) == (y > 0) ? 0 : kInf;
  }
  // The answer is mantissa * 2^exponent.
  double mantissa = 1;
  int64_t exponent = 0;
  if (frac != 0) {
    if (frac > 0.5) {
      frac -= 1;
      whole += 1;
    }
    mantissa = std::exp(frac * std::log(x));
  }
  int xe = 0;
  double x1 = std::frexp(x, &xe);
  int64_t x_exponent = xe;
  for (auto i = static_cast<int64_t>(whole); i != 0; i >>= 1) {
    if (x_exponent < -(1 << 12) || (1 << 12) < x_exponent) {
      // The exponent is past any double's whatever the remaining bits do.
      exponent += x_exponent;
      break;
    }
    if ((i & 1) != 0) {
      mantissa *= x1;
      exponent += x_exponent;
    }
    x1 *= x1;
    x_exponent *= 2;
    if (x1 < 0.5) {
      x1 += x1;
      --x_exponent;
    }
  }
  if (y < 0) {
    mantissa = 1 / mantissa;
    exponent = -exponent;
  }
  // ldexp takes an int: an exponent beyond any double's saturates to the same result.
  constexpr int64_t kLimit = 1 << 20;
  if (exponent > kLimit) exponent = kLimit;
  if (exponent < -kLimit) exponent = -kLimit;
  return std::ldexp(mantissa, static_cast<int>(exponent));
}

}  // namespace strata::promql
