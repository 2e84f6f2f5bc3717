// Arithmetic as Prometheus (Go) computes it, where C++'s library may round differently.
#ifndef STRATA_QUERY_GO_MATH_H_
#define STRATA_QUERY_GO_MATH_H_

namespace strata::promql {

// x ^ y as Go's math.Pow: its special cases, then x's mantissa raised to the integer part of
// |y| by repeated squaring (one rounding per multiplication; so x^2 is x*x, x^-1 is 1/x and
// x^3 is rounded twice, where glibc's pow rounds once and not always to nearest), times
// exp(f * log(x)) for the fraction f of y (glibc's exp and log here, Go's own in Go: such
// powers may still differ in the last bit).
double GoPow(double x, double y);

}  // namespace strata::promql

#endif  // STRATA_QUERY_GO_MATH_H_
