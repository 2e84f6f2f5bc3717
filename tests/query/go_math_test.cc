#include "query/go_math.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "gtest/gtest.h"

namespace strata::promql {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

uint64_t Bits(double v) { return std::bit_cast<uint64_t>(v); }

// Go raises to an integer by repeated squaring of the mantissa, one rounding per product:
// the same as these products of doubles while nothing overflows or becomes subnormal.
TEST(GoPow, IntegerExponentsRoundOncePerProduct) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> mantissa(1, 2);
  std::uniform_int_distribution<int> exponent(-60, 60);
  for (int k = 0; k < 100'000; ++k) {
    double x = std::ldexp(mantissa(rng), exponent(rng)) * (k % 3 == 0 ? -1 : 1);
    double x2 = x * x;
    ASSERT_EQ(Bits(GoPow(x, 2)), Bits(x2)) << x;
    ASSERT_EQ(Bits(GoPow(x, -1)), Bits(1 / x)) << x;
    ASSERT_EQ(Bits(GoPow(x, 3)), Bits(x * x2)) << x;
    ASSERT_EQ(Bits(GoPow(x, 4)), Bits(x2 * x2)) << x;
    ASSERT_EQ(Bits(GoPow(x, -2)), Bits(1 / x2)) << x;
    ASSERT_EQ(Bits(GoPow(x, 5)), Bits(x * (x2 * x2))) << x;
    if (x > 0) {
      ASSERT_EQ(Bits(GoPow(x, 0.5)), Bits(std::sqrt(x))) << x;
      ASSERT_EQ(Bits(GoPow(x, -0.5)), Bits(1 / std::sqrt(x))) << x;
    }
  }
}

TEST(GoPow, SpecialCasesAsGoDocumentsThem) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(GoPow(nan, 0), 1);
  EXPECT_EQ(GoPow(1, nan), 1);
  EXPECT_TRUE(std::isnan(GoPow(nan, 2)));
  EXPECT_TRUE(std::isnan(GoPow(2, nan)));
  EXPECT_EQ(Bits(GoPow(-0.0, -3)), Bits(-kInf));
  EXPECT_EQ(GoPow(-0.0, -2), kInf);
  EXPECT_EQ(GoPow(0.0, -3), kInf);
  EXPECT_EQ(Bits(GoPow(-0.0, 3)), Bits(-0.0));
  EXPECT_EQ(Bits(GoPow(-0.0, 2)), Bits(0.0));
  EXPECT_EQ(Bits(GoPow(-0.0, 0.5)), Bits(0.0));
  EXPECT_EQ(GoPow(-1, kInf), 1);
  EXPECT_EQ(GoPow(-1, -kInf), 1);
  EXPECT_EQ(GoPow(0.5, kInf), 0);
  EXPECT_EQ(GoPow(0.5, -kInf), kInf);
  EXPECT_EQ(GoPow(2, kInf), kInf);
  EXPECT_EQ(GoPow(2, -kInf), 0);
  EXPECT_EQ(GoPow(kInf, 0.1), kInf);
  EXPECT_EQ(GoPow(kInf, -0.1), 0);
  EXPECT_EQ(Bits(GoPow(-kInf, 3)), Bits(-kInf));
  EXPECT_EQ(Bits(GoPow(-kInf, -3)), Bits(-0.0));
  EXPECT_EQ(GoPow(-kInf, 2), kInf);
  EXPECT_TRUE(std::isnan(GoPow(-8, 1.0 / 3)));
  EXPECT_EQ(GoPow(-2, 0x1p64), kInf);  // an even integer past int64
  EXPECT_EQ(GoPow(-0.5, 0x1p64), 0);
  EXPECT_EQ(GoPow(-1, 0x1p64), 1);
  EXPECT_EQ(GoPow(10, 400), kInf);
  EXPECT_EQ(GoPow(10, -400), 0);
  EXPECT_EQ(GoPow(2, -1074), 0x1p-1074);
  EXPECT_EQ(GoPow(2, 1023), 0x1p1023);
  // A fraction goes through exp and log: within an ulp or two of the exact power.
  EXPECT_NEAR(GoPow(3, 2.5), std::pow(3, 2.5), 4e-15);
  EXPECT_NEAR(GoPow(10, -1.75), std::pow(10, -1.75), 1e-17);
}

}  // namespace
}  // namespace strata::promql
