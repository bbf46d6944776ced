// The compile-time float exponential of the sampling kernels (selfreplay/detail/fast_exp.hpp, until
// they move onto detail/simd/) against std::exp evaluated in double: its documented relative error
// bound over a dense set of inputs and its edge cases.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "selfreplay/detail/fast_exp.hpp"

using selfreplay::detail::exp_float;

namespace {
// relative error of exp_float(x) against exp(x) in double
double rel_error(float x) {
    const double want = std::exp(static_cast<double>(x));
    return std::abs(static_cast<double>(exp_float(x)) - want) / want;
}
} // namespace

TEST_CASE("fast float exp: relative error below 3e-7 wherever the result is normal", "[losses][exp]") {
    // every 61st float in [-87.3, 88] (about 35 million inputs, every binade, both signs)
    double worst = 0;
    float worst_x = 0;
    auto scan = [&](float from, float to) { // from, to of the same sign, |from| <= |to|
        const auto b0 = std::bit_cast<std::uint32_t>(from), b1 = std::bit_cast<std::uint32_t>(to);
        for (std::uint32_t b = b0; b <= b1; b += 61) {
            const float x = std::bit_cast<float>(b);
            const double e = rel_error(x);
            if (e > worst) worst = e, worst_x = x;
        }
    };
    scan(0.0f, 88.0f);
    scan(-0.0f, -87.3f);
    // and a uniform grid around the reduction boundaries x = (k + 1/2) ln 2
    for (int k = -125; k <= 126; ++k)
        for (int j = -500; j <= 500; ++j) {
            const float x = static_cast<float>((k + 0.5) * std::log(2.0) + j * 1e-6);
            const double e = rel_error(x);
            if (e > worst) worst = e, worst_x = x;
        }
    INFO("worst relative error " << worst << " at x = " << worst_x);
    CHECK(worst < 3e-7);
    CHECK(worst > 1e-8); // the bound is tight to an order of magnitude (a float polynomial, not exact)
}

TEST_CASE("fast float exp: edge cases", "[losses][exp]") {
    const float inf = std::numeric_limits<float>::infinity();
    CHECK(exp_float(0.0f) == 1.0f);
    CHECK(exp_float(-0.0f) == 1.0f);
    CHECK(exp_float(-inf) == 0.0f);
    CHECK(exp_float(-88.0f) == 0.0f);
    CHECK(exp_float(-87.7f) == 0.0f);
    CHECK(exp_float(-1000.0f) == 0.0f);
    CHECK(!std::signbit(exp_float(-1000.0f)));
    const float d = exp_float(-87.5f); // denormal range: small, positive, within 1e-3 relative
    CHECK(d > 0.0f);
    CHECK(std::abs(static_cast<double>(d) - std::exp(-87.5)) / std::exp(-87.5) < 1e-3);
    CHECK(std::isnan(exp_float(std::numeric_limits<float>::quiet_NaN())));
    CHECK(std::isfinite(exp_float(88.0f)));
}

TEST_CASE("fast float exp2: relative error below 3e-7 wherever the result is normal", "[losses][exp]") {
    using selfreplay::detail::exp2_float;
    double worst = 0;
    float worst_y = 0;
    auto scan = [&](float from, float to) {
        const auto b0 = std::bit_cast<std::uint32_t>(from), b1 = std::bit_cast<std::uint32_t>(to);
        for (std::uint32_t b = b0; b <= b1; b += 61) {
            const float y = std::bit_cast<float>(b);
            const double want = std::exp2(static_cast<double>(y));
            const double e = std::abs(static_cast<double>(exp2_float(y)) - want) / want;
            if (e > worst) worst = e, worst_y = y;
        }
    };
    scan(0.0f, 127.0f);
    scan(-0.0f, -126.0f);
    INFO("worst relative error " << worst << " at y = " << worst_y);
    CHECK(worst < 3e-7);
    CHECK(worst > 1e-8);
    const float inf = std::numeric_limits<float>::infinity();
    CHECK(exp2_float(0.0f) == 1.0f);
    CHECK(exp2_float(-inf) == 0.0f);
    CHECK(exp2_float(-127.0f) == 0.0f);
    CHECK(exp2_float(-126.6f) == 0.0f);
    CHECK(exp2_float(3.0f) == 8.0f);
    CHECK(exp2_float(-126.0f) == std::exp2(-126.0f));
    CHECK(std::isnan(exp2_float(std::numeric_limits<float>::quiet_NaN())));
}
