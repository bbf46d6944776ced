// The SIMD layer (selfreplay/detail/simd/) on the active ISA path (SELFREPLAY_ISA: ctest runs this
// suite once per path): its float exponentials against std::exp / std::exp2 evaluated in double
// (the documented relative error bound over a dense set of inputs, and the edge cases), partial
// registers, and the path override.
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "selfreplay/detail/simd/simd.hpp"

#define SELFREPLAY_SIMD_BODY "exp_kernels.inl"
#include "selfreplay/detail/simd/foreach_isa.inl"

namespace {

namespace sr = selfreplay;
using sr::index_t;

// exp (Exp2 = false) or exp2 of every x on the active path.
template <bool Exp2>
std::vector<float> exp_on_path(const std::vector<float>& x) {
    std::vector<float> y(x.size());
    sr::detail::dispatch(sr::active_isa(), [&](auto tag) {
        exp_each<Exp2>(tag, x.data(), y.data(), static_cast<index_t>(x.size()));
    });
    return y;
}

template <bool Exp2>
float exp_on_path(float x) {
    return exp_on_path<Exp2>(std::vector<float>{x})[0];
}

// The largest relative error of exp / exp2 against double over every 61st float of [from, to]
// (from, to of the same sign, |from| <= |to|) and the extra inputs.
template <bool Exp2>
double worst_relative_error(float from, float to, std::vector<float> extra = {}) {
    std::vector<float> x = std::move(extra);
    const auto b0 = std::bit_cast<std::uint32_t>(from), b1 = std::bit_cast<std::uint32_t>(to);
    for (std::uint32_t b = b0; b <= b1; b += 61) x.push_back(std::bit_cast<float>(b));
    const std::vector<float> y = exp_on_path<Exp2>(x);
    double worst = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double want = Exp2 ? std::exp2(static_cast<double>(x[i])) : std::exp(static_cast<double>(x[i]));
        worst = std::max(worst, std::abs(static_cast<double>(y[i]) - want) / want);
    }
    return worst;
}

} // namespace

TEST_CASE("simd exp: relative error below 3e-7 wherever the result is normal", "[detail][simd][exp]") {
    INFO("ISA path " << sr::isa_name(sr::active_isa()));
    // every 61st float in [-87.3, 88] (about 35 million inputs, every binade, both signs), and a
    // uniform grid around the reduction boundaries x = (k + 1/2) ln 2
    std::vector<float> boundaries;
    for (int k = -125; k <= 126; ++k)
        for (int j = -500; j <= 500; ++j) boundaries.push_back(static_cast<float>((k + 0.5) * std::log(2.0) + j * 1e-6));
    const double worst = std::max(worst_relative_error<false>(0.0f, 88.0f, boundaries),
                                  worst_relative_error<false>(-0.0f, -87.3f));
    INFO("worst relative error " << worst);
    CHECK(worst < 3e-7);
    CHECK(worst > 1e-8); // the bound is tight to an order of magnitude (a float polynomial, not exact)
}

TEST_CASE("simd exp: edge cases", "[detail][simd][exp]") {
    INFO("ISA path " << sr::isa_name(sr::active_isa()));
    const float inf = std::numeric_limits<float>::infinity();
    CHECK(exp_on_path<false>(0.0f) == 1.0f);
    CHECK(exp_on_path<false>(-0.0f) == 1.0f);
    CHECK(exp_on_path<false>(-inf) == 0.0f);
    CHECK(exp_on_path<false>(-88.0f) == 0.0f);
    CHECK(exp_on_path<false>(-87.7f) == 0.0f);
    CHECK(exp_on_path<false>(-1000.0f) == 0.0f);
    CHECK(!std::signbit(exp_on_path<false>(-1000.0f)));
    const float d = exp_on_path<false>(-87.5f); // denormal range: small, positive, within 1e-3 relative
    CHECK(d > 0.0f);
    CHECK(std::abs(static_cast<double>(d) - std::exp(-87.5)) / std::exp(-87.5) < 1e-3);
    CHECK(std::isnan(exp_on_path<false>(std::numeric_limits<float>::quiet_NaN())));
    CHECK(std::isfinite(exp_on_path<false>(88.0f)));
}

TEST_CASE("simd exp2: relative error below 3e-7 wherever the result is normal, and edge cases", "[detail][simd][exp]") {
    INFO("ISA path " << sr::isa_name(sr::active_isa()));
    const double worst = std::max(worst_relative_error<true>(0.0f, 127.0f), worst_relative_error<true>(-0.0f, -126.0f));
    INFO("worst relative error " << worst);
    CHECK(worst < 3e-7);
    CHECK(worst > 1e-8);
    const float inf = std::numeric_limits<float>::infinity();
    CHECK(exp_on_path<true>(0.0f) == 1.0f);
    CHECK(exp_on_path<true>(-inf) == 0.0f);
    CHECK(exp_on_path<true>(-127.0f) == 0.0f);
    CHECK(exp_on_path<true>(-126.6f) == 0.0f);
    CHECK(exp_on_path<true>(3.0f) == 8.0f);
    CHECK(exp_on_path<true>(-126.0f) == std::exp2(-126.0f));
    CHECK(std::isnan(exp_on_path<true>(std::numeric_limits<float>::quiet_NaN())));
}

TEST_CASE("simd: a value gives the same exponential in every lane and in partial registers", "[detail][simd]") {
    const index_t lanes = sr::detail::dispatch(sr::active_isa(), [](auto tag) { return float_lanes(tag); });
    INFO("ISA path " << sr::isa_name(sr::active_isa()) << ", " << lanes << " float lanes");
    CHECK(lanes == static_cast<index_t>(sr::active_isa() == sr::isa::avx512 ? 16 : sr::active_isa() == sr::isa::avx2 ? 8 : 4));
    // 3 registers and a partial one, each value at every lane position and in the tail
    std::vector<float> x;
    for (int k = 0; k < 3 * lanes + lanes - 1; ++k) x.push_back(-3.0f + 0.37f * static_cast<float>(k % 7));
    const auto y = exp_on_path<false>(x);
    for (std::size_t i = 0; i < x.size(); ++i) REQUIRE(y[i] == exp_on_path<false>(x[i]));
}

TEST_CASE("set_isa pins the path, rejects one the CPU lacks, and reset_isa restores the default", "[detail][simd]") {
    const sr::isa before = sr::active_isa();
    for (sr::isa p : sr::all_isas) {
        if (sr::isa_supported(p)) {
            sr::set_isa(p);
            CHECK(sr::active_isa() == p);
        } else {
            CHECK_THROWS_WITH(sr::set_isa(p), Catch::Contains("this CPU lacks it"));
        }
    }
    CHECK(sr::isa_supported(sr::isa::sse2));
    CHECK(sr::isa_supported(sr::best_isa()));
    sr::reset_isa();
    CHECK(sr::active_isa() == before);
}
