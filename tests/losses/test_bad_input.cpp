// Regression tests of issue 22: parameters that pass their range check but overflow or round
// away in the logits' type, the JSD mixture underflow, bit-identical strided accumulation.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "selfreplay/losses.hpp"

namespace {
namespace sr = selfreplay;
using Catch::Matchers::Contains;

// two positions [1, 2, 5] of ordinary logits (V = 5: not a multiple of the lane count)
template <class T>
struct two_rows {
    std::vector<T> s{1, 2, 3, 4, 5, 1, 2, 3, 4, 5}, r{2, 1, 3, 0, 1, 2, 1, 3, 0, 1}, g = std::vector<T>(10);
    auto sv() { return sr::make_view(s.data(), {1, 2, 5}); }
    auto rv() { return sr::make_view(r.data(), {1, 2, 5}); }
    auto gv() { return sr::make_view(g.data(), {1, 2, 5}); }
};
} // namespace

TEST_CASE("a temperature whose reciprocal is not a finite normal number of the logits' type is rejected",
          "[losses][errors]") {
    two_rows<float> f;
    // each was accepted before and gave NaN (reverse KL, JSD) or a false "contains NaN or +inf"
    for (double t : {1.96e-313, 1e-39, 1e46, 3e296, 1e38}) {
        INFO("temperature " << t);
        CHECK_THROWS_WITH(sr::kl_divergence(f.sv(), f.rv(), {.direction = sr::kl_direction::reverse, .temperature = t}),
                          Contains("'options.temperature'") && Contains("float"));
        CHECK_THROWS_WITH(sr::kl_divergence(f.sv(), f.rv(), f.gv(), {.temperature = t}), Contains("'options.temperature'"));
        CHECK_THROWS_WITH(sr::generalized_jsd(f.sv(), f.rv(), {.temperature = t}), Contains("'options.temperature'"));
    }
    // the ends of the float range are accepted and finite
    for (double t : {3e-39, 8e37}) {
        INFO("temperature " << t);
        std::vector<float> zs(10, 0.0f), zr(10, 0.0f);
        zr[3] = 1e-30f;
        const auto v = sr::kl_divergence(sr::make_view(zs.data(), {1, 2, 5}), sr::make_view(zr.data(), {1, 2, 5}),
                                         {.direction = sr::kl_direction::reverse, .temperature = t});
        CHECK(std::isfinite(v.value));
    }
    two_rows<double> d;
    CHECK_THROWS_WITH(sr::kl_divergence(d.sv(), d.rv(), {.direction = sr::kl_direction::reverse, .temperature = 1.96e-313}),
                      Contains("'options.temperature'") && Contains("double"));
    // in double 1e46 is an ordinary temperature: the KL is then about 0
    const auto big = sr::kl_divergence(d.sv(), d.rv(), {.temperature = 1e46});
    CHECK(big.value >= 0);
    CHECK(big.value < 1e-80);
}

TEST_CASE("a JSD beta in (0, 1) that rounds to 0 or 1 in the logits' type is rejected", "[losses][errors]") {
    two_rows<float> f;
    for (double beta : {1e-50, 1e-39, 0.999999999, 1 - 1e-12}) {
        INFO("beta " << beta);
        CHECK_THROWS_WITH(sr::generalized_jsd(f.sv(), f.rv(), {.beta = beta}), Contains("'options.beta'") && Contains("float"));
        CHECK_THROWS_WITH(sr::generalized_jsd(f.sv(), f.rv(), f.gv(), {.beta = beta}), Contains("'options.beta'"));
    }
    // the same betas are fine in double, and the float ends of the range are accepted
    two_rows<double> d;
    CHECK(std::isfinite(sr::generalized_jsd(d.sv(), d.rv(), {.beta = 0.999999999}).value));
    CHECK(std::isfinite(sr::generalized_jsd(d.sv(), d.rv(), {.beta = 1e-50}).value));
    CHECK(std::isfinite(sr::generalized_jsd(f.sv(), f.rv(), f.gv(), {.beta = 1.2e-38}).value));
    CHECK(std::isfinite(sr::generalized_jsd(f.sv(), f.rv(), f.gv(), {.beta = 0.99999994}).value));
    for (float g : f.g) CHECK(std::isfinite(g));
}

TEST_CASE("a scale whose gradient factor overflows the logits' type is rejected; the value-only call accepts it",
          "[losses][errors]") {
    two_rows<float> f;
    std::vector<std::int32_t> tok{1, 2};
    const auto tv = sr::make_view(tok.data(), {1, 2});
    CHECK_THROWS_WITH(sr::kl_divergence(f.sv(), f.rv(), f.gv(), {.scale = -2.2e257}), Contains("'options.scale'"));
    CHECK_THROWS_WITH(sr::generalized_jsd(f.sv(), f.rv(), f.gv(), {.scale = 1e39}), Contains("'options.scale'"));
    CHECK_THROWS_WITH(sr::next_token_loss(f.sv(), tv, f.gv(), {.scale = 1e39}), Contains("'options.scale'"));
    // a tiny temperature raises the factor scale / (denominator * temperature) too
    CHECK_THROWS_WITH(sr::kl_divergence(f.sv(), f.rv(), f.gv(), {.temperature = 1e-37, .scale = 1e3}),
                      Contains("'options.scale'"));
    CHECK(std::isfinite(sr::kl_divergence(f.sv(), f.rv(), {.scale = -2.2e257}).value));
    // the largest factor that fits is accepted and the gradient is finite
    sr::kl_divergence(f.sv(), f.rv(), f.gv(), {.scale = 3e38});
    for (float g : f.g) CHECK(std::isfinite(g));
}

TEST_CASE("generalized JSD of identical rows with subnormal probabilities is 0, not +inf", "[losses]") {
    // p = q = softmax(row): the entries at -740 .. -745 have subnormal probabilities, where the
    // mixture beta p + (1 - beta) q used to underflow to 0 (log m = -inf, a term of +inf)
    std::vector<double> s{0, -740, -745, -744, -708, -745.1};
    std::vector<double> g(s.size());
    for (double beta : {0.5, 0.1, 0.9}) {
        INFO("beta " << beta);
        const auto v = sr::generalized_jsd(sr::make_view(s.data(), {1, 6}), sr::make_view(s.data(), {1, 6}), sr::make_view(g.data(), {1, 6}),
                                           {.beta = beta, .shift = false});
        CHECK(v.value == Approx(0).margin(1e-300));
        for (double x : g) CHECK(std::abs(x) <= 1e-300);
    }
    // different rows whose probabilities are all tiny but for one: finite and >= 0, and equal
    // to the value of the same rows with the tiny entries shifted into the normal range
    std::vector<double> a{0, -744, -745}, b{0, -745, -744};
    const double tiny = sr::generalized_jsd(sr::make_view(a.data(), {1, 3}), sr::make_view(b.data(), {1, 3}),
                                            {.beta = 0.5, .shift = false}).value;
    CHECK(std::isfinite(tiny));
    CHECK(tiny >= 0);
    CHECK(tiny < 1e-300);
    // float: subnormal probabilities from logits 88 .. 103 below the maximum
    std::vector<float> fs{0, -88, -100, -103.5f, -103.9f};
    const double fv = sr::generalized_jsd(sr::make_view(fs.data(), {1, 5}), sr::make_view(fs.data(), {1, 5}),
                                          {.beta = 0.5, .shift = false}).value;
    CHECK(fv == Approx(0).margin(1e-37));
}

TEST_CASE("next_token_loss accumulating into a strided gradient is bit-identical to a contiguous one", "[losses]") {
    // at the target the contiguous kernel rounds (g0 + a) - s, the old strided path g0 + (a - s)
    constexpr int T = 64;
    for (int V : {4, 7, 33, 300}) {
        INFO("V " << V);
        const auto n = static_cast<std::size_t>(T * V);
        std::vector<double> x(n), g1(n), g2(2 * n);
        for (std::size_t i = 0; i < n; ++i) {
            x[i] = std::sin(0.37 * double(i)) * 3.1;
            g1[i] = g2[2 * i] = std::cos(1.3 * double(i)) * 0.7;
        }
        std::vector<std::int32_t> tok(T);
        for (int t = 0; t < T; ++t) tok[static_cast<std::size_t>(t)] = (t * 5 + 1) % V;
        const auto tv = sr::make_view(tok.data(), {1, T});
        const auto xv = sr::make_view(x.data(), {1, T, V});
        sr::next_token_loss(xv, tv, sr::make_view(g1.data(), {1, T, V}), {.scale = 0.7, .accumulate = true});
        const sr::strided_view<double, 3> strided(g2.data(), {1, T, V}, {2 * T * V, 2 * V, 2});
        sr::next_token_loss(xv, tv, strided, {.scale = 0.7, .accumulate = true});
        std::size_t differ = 0;
        for (std::size_t i = 0; i < n; ++i) differ += g1[i] != g2[2 * i];
        CHECK(differ == 0);
        // the same for a divergence, in float
        std::vector<float> s(x.begin(), x.end()), r(s.rbegin(), s.rend()), h1(n), h2(2 * n);
        for (std::size_t i = 0; i < n; ++i) h1[i] = h2[2 * i] = static_cast<float>(g1[i]);
        const sr::strided_view<float, 3> hs(h2.data(), {1, T, V}, {2 * T * V, 2 * V, 2});
        sr::kl_divergence(sr::make_view(s.data(), {1, T, V}), sr::make_view(r.data(), {1, T, V}),
                          sr::make_view(h1.data(), {1, T, V}), {.shift = false, .scale = 3, .accumulate = true});
        sr::kl_divergence(sr::make_view(s.data(), {1, T, V}), sr::make_view(r.data(), {1, T, V}), hs,
                          {.shift = false, .scale = 3, .accumulate = true});
        differ = 0;
        for (std::size_t i = 0; i < n; ++i) differ += h1[i] != h2[2 * i];
        CHECK(differ == 0);
    }
}
