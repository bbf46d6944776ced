#pragma once
//! \file
//! `cos`, `sqrt` and `pow` usable in constant expressions (C++20's `<cmath>` is not constexpr).
//! At run time these call `std::cos`, `std::sqrt`, `std::pow`, so run-time schedule values are
//! exactly what the libm-based optax/PyTorch formulas give; during constant evaluation they use
//! series below, accurate to a few ulp for the arguments schedules produce (cosines of [0, pi],
//! bases in [0, 1e300]). A constexpr value may therefore differ from the
//! run-time value of the same expression in the last bits (tests bound it by 1e-14 relative).

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace selfreplay::detail {

inline constexpr double cx_pi = 3.141592653589793238462643383279502884;
inline constexpr double cx_ln2 = 0.693147180559945309417232121458176568;

//! sqrt(x) for x >= 0 by Newton iteration from a power-of-two start.
constexpr double cx_sqrt_series(double x) {
    if (x == 0.0 || x != x || x - x != 0.0) return x;
    double g = 1.0;
    while (g * g > 4.0 * x) g *= 0.5;
    while (g * g < 0.25 * x) g *= 2.0;
    for (int i = 0; i < 100; ++i) {
        const double n = 0.5 * (g + x / g);
        if (n == g) break;
        g = n;
    }
    return g;
}

//! cos(x): reduction to [0, pi/2] then the Taylor series to convergence.
constexpr double cx_cos_series(double x) {
    // Cody-Waite: 2 pi = hi + lo, exact for the small k that schedule arguments (0 .. pi) need.
    constexpr double two_pi_hi = 6.283185307179586, two_pi_lo = 2.4492935982947064e-16;
    const double k = static_cast<double>(static_cast<std::int64_t>(x / two_pi_hi + (x >= 0 ? 0.5 : -0.5)));
    double r = (x - k * two_pi_hi) - k * two_pi_lo;
    if (r < 0) r = -r;
    // cos(r) = -cos(pi - r) on (pi/2, pi]: the series then runs on [0, pi/2], and cos(pi) is exactly -1.
    double sign = 1.0;
    if (r > 0.5 * cx_pi) {
        constexpr double pi_hi = 3.141592653589793, pi_lo = 1.2246467991473532e-16;
        r = (pi_hi - r) + pi_lo;
        sign = -1.0;
    }
    const double r2 = r * r;
    double term = 1.0, sum = 1.0;
    for (int n = 1; n < 60; ++n) {
        term *= -r2 / static_cast<double>((2 * n - 1) * (2 * n));
        const double next = sum + term;
        if (next == sum) break;
        sum = next;
    }
    return sign * sum;
}

//! exp(x) by x = k ln2 + r, |r| <= ln2 / 2, Taylor series for exp(r), then scaling by 2^k.
constexpr double cx_exp_series(double x) {
    if (x < -745.0) return 0.0;
    const auto k = static_cast<std::int64_t>(x / cx_ln2 + (x >= 0 ? 0.5 : -0.5));
    const double r = x - static_cast<double>(k) * cx_ln2;
    double term = 1.0, sum = 1.0;
    for (int n = 1; n < 40; ++n) {
        term *= r / n;
        const double next = sum + term;
        if (next == sum) break;
        sum = next;
    }
    for (std::int64_t i = 0; i < k; ++i) sum *= 2.0;
    for (std::int64_t i = 0; i > k; --i) sum *= 0.5;
    return sum;
}

//! log(x) for x > 0: x = m 2^e with m in [1, 2), log m = 2 atanh((m - 1) / (m + 1)).
constexpr double cx_log_series(double x) {
    int e = 0;
    while (x >= 2.0) {
        x *= 0.5;
        ++e;
    }
    while (x < 1.0) {
        x *= 2.0;
        --e;
    }
    const double z = (x - 1.0) / (x + 1.0), z2 = z * z;
    double term = z, sum = z;
    for (int n = 3; n < 200; n += 2) {
        term *= z2;
        const double next = sum + term / n;
        if (next == sum) break;
        sum = next;
    }
    return 2.0 * sum + e * cx_ln2;
}

//! b^p for b >= 0 (the only bases schedules use): 0^0 = 1, 0^p = 0 for p > 0; small
//! non-negative integer exponents by repeated multiplication, others via exp(p log b).
constexpr double cx_pow_series(double b, double p) {
    if (p == 0.0) return 1.0;
    if (b == 0.0) return p > 0 ? 0.0 : std::numeric_limits<double>::infinity();
    if (p > 0 && p <= 64 && p == static_cast<double>(static_cast<int>(p))) {
        double result = 1.0, base = b;
        for (int n = static_cast<int>(p); n > 0; n >>= 1) {
            if (n & 1) result *= base;
            base *= base;
        }
        return result;
    }
    return cx_exp_series(p * cx_log_series(b));
}

constexpr double cx_cos(double x) {
    if (std::is_constant_evaluated()) return cx_cos_series(x);
    return std::cos(x);
}
constexpr double cx_sqrt(double x) {
    if (std::is_constant_evaluated()) return cx_sqrt_series(x);
    return std::sqrt(x);
}
constexpr double cx_pow(double b, double p) {
    if (std::is_constant_evaluated()) return cx_pow_series(b, p);
    return std::pow(b, p);
}

} // namespace selfreplay::detail
