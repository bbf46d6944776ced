// gumbel_max's dense kernel (sampling/gumbel_kernel.hpp) against the scalar definition: the float
// noise within its stated bound for every one of the 2^23 uniforms, and the same token as the
// double scores of every token on rows of every shape, stream offset and counter.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "selfreplay/sampling.hpp"

using namespace selfreplay;

namespace {

constexpr float finf = std::numeric_limits<float>::infinity();

// The definition: token i scores double(x_i) - ln(-ln u_i), u_i from word counter + i; the
// lowest index among tied maxima; -inf entries never drawn; -1 when all are -inf.
std::int32_t gumbel_reference(const std::vector<float>& x, const counter_rng& rng) {
    std::int32_t best = -1;
    double best_score = -std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < x.size(); ++i) {
        const std::uint64_t word = rng.counter + i;
        const std::uint32_t w = rng.block(word >> 2)[word & 3];
        if (x[i] == -finf) continue;
        const double u = double(2 * (w >> 9) + 1) * 0x1p-24;
        const double score = double(x[i]) - std::log(-std::log(u));
        if (score > best_score) best_score = score, best = static_cast<std::int32_t>(i);
    }
    return best;
}

std::int32_t gumbel_ours(std::vector<float> x, counter_rng& rng) {
    sampling_context<float> ctx;
    ctx.begin_row();
    return gumbel_max{}.draw(std::span<const float>(x), ctx, rng);
}

} // namespace

TEST_CASE("gumbel noise in float lanes: within its bound for all 2^23 uniforms", "[sampling]") {
    using namespace sampling_detail::gumbel;
    double worst = 0;
    constexpr std::uint32_t batch = 4096;
    std::vector<std::uint32_t> w(batch);
    std::vector<float> g(batch);
    for (std::uint32_t k = 0; k < (1u << 23); k += batch) {
        for (std::uint32_t j = 0; j < batch; ++j) w[j] = (k + j) << 9;
        float_noise(active_isa(), w.data(), batch, g.data());
        for (std::uint32_t j = 0; j < batch; ++j) worst = std::max(worst, std::abs(double(g[j]) - exact_noise(w[j])));
    }
    INFO("largest error " << worst);
    CHECK(worst < noise_error_bound / 10);
    CHECK(worst > 0); // the float path is an approximation: the bound is not vacuous
}

TEST_CASE("gumbel_max on dense rows draws the token of the double scores (every shape, offset, counter)", "[sampling]") {
    std::mt19937 gen(99);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    auto shaped = [&](std::size_t n, int shape) {
        std::vector<float> x(n);
        for (std::size_t i = 0; i < n; ++i) {
            switch (shape) {
            case 0: x[i] = 5.0f * normal(gen); break;                       // peaked
            case 1: x[i] = 2.0f * normal(gen); break;                       // flat
            case 2: x[i] = 1.5f; break;                                     // all equal: the noise decides
            case 3: x[i] = -std::log(float(i + 1)) * 1.1f; break;            // Zipf
            case 4: x[i] = float(int(normal(gen) * 2)); break;              // many ties
            case 5: x[i] = i % 3 == 0 ? -finf : normal(gen); break;         // -inf entries
            case 6: x[i] = 3e38f * (i % 2 == 0 ? 1.0f : -1.0f) * (0.5f + 0.5f * std::abs(normal(gen)) / 4); break; // huge
            default: x[i] = 1e-30f * normal(gen); break;                    // tiny
            }
            if (shape == 6) x[i] = std::max(std::min(x[i], 3.4e38f), -3.4e38f);
        }
        if (shape == 5 && n > 0) x[n / 2] = 0.0f;
        return x;
    };
    int checked = 0;
    for (std::size_t n : {1u, 3u, 17u, 64u, 65u, 200u, 1000u, 4099u}) {
        for (int shape = 0; shape < 8; ++shape) {
            for (std::uint64_t counter : {0ull, 1ull, 2ull, 3ull, 1000ull, (1ull << 34) - 5}) {
                for (std::uint64_t seed = 0; seed < 3; ++seed) {
                    const auto x = shaped(n, shape);
                    counter_rng rng{.seed = seed * 0x9E3779B97F4A7C15ull, .stream = seed + 7, .counter = counter};
                    const std::int32_t want = gumbel_reference(x, rng);
                    const std::int32_t got = gumbel_ours(x, rng);
                    INFO("n " << n << " shape " << shape << " counter " << counter << " seed " << seed);
                    REQUIRE(got == want);
                    REQUIRE(rng.counter == counter + n);
                    ++checked;
                }
            }
        }
    }
    CHECK(checked == 8 * 8 * 6 * 3);
}

TEST_CASE("gumbel_max on a dense row: one dominant token, a winner at the very end, and bad rows", "[sampling]") {
    std::vector<float> x(5000, -30.0f);
    x[4999] = 40.0f;
    counter_rng rng{.seed = 5};
    CHECK(gumbel_ours(x, rng) == 4999);
    std::vector<float> all_masked(300, -finf);
    counter_rng r2{.seed = 1};
    CHECK_THROWS_AS(gumbel_ours(all_masked, r2), invalid_argument);
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), finf}) {
        for (std::size_t at : {0u, 150u, 299u}) {
            std::vector<float> y(300, 0.5f);
            y[at] = bad;
            counter_rng r3{.seed = 2, .counter = 3};
            CHECK_THROWS_AS(gumbel_ours(y, r3), invalid_argument);
        }
    }
}
