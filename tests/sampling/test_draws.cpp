#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "brute.hpp"
#include "selfreplay/sampling.hpp"

using namespace selfreplay;

namespace {

constexpr float finf = std::numeric_limits<float>::infinity();

// n logits drawn i.i.d. from N(mean, sigma^2) with mt19937(seed).
std::vector<float> normal_row(std::size_t n, float mean, float sigma, unsigned seed) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> normal(mean, sigma);
    std::vector<float> row(n);
    for (auto& v : row) v = normal(gen);
    return row;
}

// Processes `row` with `chain`, draws n tokens with `draw` (one fixed stream), and returns the
// chi-square statistic against `expected` probabilities; fails if a zero-probability token is
// drawn. Degrees of freedom = (#tokens with p > 0) - 1, returned in `dof`.
template <class Chain, class Draw>
double chi_square(std::vector<float> row, const Chain& chain, const Draw& draw, const std::vector<double>& expected,
                  int n, double& dof, std::span<const std::int32_t> history = {}) {
    sampling_context<float> ctx;
    ctx.begin_row(history);
    chain.process(std::span<float>(row), ctx);
    counter_rng rng{.seed = 1234, .stream = 77};
    std::vector<int> count(row.size(), 0);
    for (int i = 0; i < n; ++i) {
        const std::int32_t t = draw.draw(std::span<const float>(row), ctx, rng);
        REQUIRE(t >= 0);
        REQUIRE(static_cast<std::size_t>(t) < row.size());
        ++count[static_cast<std::size_t>(t)];
    }
    double x = 0;
    dof = -1;
    for (std::size_t i = 0; i < row.size(); ++i) {
        if (expected[i] == 0) {
            REQUIRE(count[i] == 0);
            continue;
        }
        const double e = expected[i] * n;
        x += (count[i] - e) * (count[i] - e) / e;
        dof += 1;
    }
    return x;
}

const std::vector<float> base{1.2f, -0.3f, 0.8f, 2.0f, 0.0f, -1.5f, 1.9f, 0.4f, -0.7f, 1.0f, 0.6f, -2.2f};

std::vector<double> base_d() { return {base.begin(), base.end()}; }

} // namespace

// Each case: N = 20000 draws from a fixed stream, chi-square goodness of fit against the
// brute-force processed distribution, rejected at significance 1e-3. Power: a relative error of
// 10% on a token of probability 0.05 shifts the statistic by about 10 on average, beyond the
// critical value's margin over the dof only for gross errors; the exact-set tests cover masks.
TEST_CASE("draws follow the processed distribution (chi-square, alpha = 1e-3)", "[sampling]") {
    constexpr int n = 20000;
    double dof = 0;
    auto check = [&](const auto& chain, std::vector<double> processed, std::span<const std::int32_t> history = {}) {
        const auto expected = brute::softmax(processed);
        for (int d = 0; d < 2; ++d) {
            const double x = d == 0 ? chi_square(base, chain, categorical{}, expected, n, dof, history)
                                    : chi_square(base, chain, gumbel_max{}, expected, n, dof, history);
            INFO("draw " << (d == 0 ? "categorical" : "gumbel_max") << " chi2 " << x << " dof " << dof);
            if (dof >= 1) {
                CHECK(x < brute::chi2_critical_1e3(dof));
            }
        }
    };
    const auto x0 = base_d();

    SECTION("no processing, temperature") {
        check(no_processing{}, x0);
        auto x = x0;
        for (auto& v : x) v = double(float(v) / 0.6f);
        check(temperature{.t = 0.6f}, x);
        x = x0;
        for (auto& v : x) v = double(float(v) / 2.5f);
        check(temperature{.t = 2.5f}, x);
    }
    SECTION("truncations") {
        auto x = x0;
        brute::apply(x, brute::top_k(x, 4));
        check(top_k{.k = 4}, x);
        double margin = 0;
        x = x0;
        brute::apply(x, brute::top_p(x, 0.8, margin));
        check(top_p{.p = 0.8f}, x);
        x = x0;
        brute::apply(x, brute::min_p(x, 0.2));
        check(min_p{.p = 0.2f}, x);
        x = x0;
        brute::apply(x, brute::typical_p(x, 0.6, margin));
        check(typical_p{.p = 0.6f}, x);
    }
    SECTION("penalties, bias, bans") {
        const std::vector<std::int32_t> history{3, 6, 6, 0};
        auto x = x0;
        for (int id : {0, 3, 6}) x[id] = x[id] < 0 ? x[id] * 1.5 : x[id] / 1.5;
        check(repetition_penalty{.theta = 1.5f}, x, history);
        x = x0;
        x[3] -= 0.5 + 0.3, x[6] -= 1.0 + 0.3, x[0] -= 0.5 + 0.3;
        check(frequency_penalty{.alpha = 0.5f} | presence_penalty{.alpha = 0.3f}, x, history);
        x = x0;
        x[5] += 2.0, x[3] = brute::ninf, x[6] = brute::ninf;
        check(logit_bias{.bias = {{5, 2.0f}, {3, -finf}}} | banned_tokens{.ids = {6}}, x);
    }
    SECTION("a long chain") {
        const std::vector<std::int32_t> history{3, 9};
        auto x = x0;
        for (int id : {3, 9}) x[id] = x[id] < 0 ? x[id] * 1.3 : x[id] / 1.3;
        for (auto& v : x) v = double(float(v) / 0.8f);
        brute::apply(x, brute::top_k(x, 8));
        double margin = 0;
        brute::apply(x, brute::top_p(x, 0.9, margin));
        brute::apply(x, brute::min_p(x, 0.05));
        check(repetition_penalty{.theta = 1.3f} | temperature{.t = 0.8f} | top_k{.k = 8} | top_p{.p = 0.9f} |
                  min_p{.p = 0.05f},
              x, history);
    }
}

TEST_CASE("categorical on a large dense row matches the softmax (chi-square over 32 groups)", "[sampling]") {
    // V = 3000 logits; tokens grouped by id into 32 groups of equal size; 20000 draws.
    const std::vector<float> row = normal_row(3000, 0.0f, 2.0f, 3);
    const auto p = brute::softmax(std::vector<double>(row.begin(), row.end()));
    std::vector<double> expected(32, 0.0);
    for (std::size_t i = 0; i < row.size(); ++i) expected[i * 32 / row.size()] += p[i];
    std::vector<int> count(32, 0);
    sampling_context<float> ctx;
    ctx.begin_row();
    counter_rng rng{.seed = 9};
    constexpr int n = 20000;
    for (int i = 0; i < n; ++i) ++count[static_cast<std::size_t>(categorical{}.draw(std::span<const float>(row), ctx, rng)) * 32 / row.size()];
    double x = 0;
    for (int g = 0; g < 32; ++g) x += (count[g] - expected[g] * n) * (count[g] - expected[g] * n) / (expected[g] * n);
    CHECK(x < brute::chi2_critical_1e3(31));
}

TEST_CASE("greedy and temperature 0 return the argmax; draws reject bad rows", "[sampling]") {
    sampling_context<float> ctx;
    counter_rng rng{};
    std::vector<float> row{0.5f, 3.0f, -1.0f, 3.0f};
    ctx.begin_row();
    CHECK(greedy{}.draw(std::span<const float>(row), ctx, rng) == 1);
    CHECK(rng.counter == 0);
    auto r = row;
    CHECK(sample_token(std::span<float>(r), temperature{.t = 0.0f}, categorical{}, ctx, rng) == 1);
    r = row;
    CHECK(sample_token(std::span<float>(r), top_k{.k = 2}, greedy{}, ctx, rng) == 1);

    const std::vector<float> masked(10, -finf);
    std::vector<float> nan_row(10, 0.0f);
    nan_row[4] = NAN;
    ctx.begin_row();
    CHECK_THROWS_WITH(categorical{}.draw(std::span<const float>(masked), ctx, rng), Catch::Contains("every entry masked"));
    CHECK_THROWS_WITH(gumbel_max{}.draw(std::span<const float>(masked), ctx, rng), Catch::Contains("every entry masked"));
    CHECK_THROWS_WITH(greedy{}.draw(std::span<const float>(masked), ctx, rng), Catch::Contains("every entry masked"));
    CHECK_THROWS_WITH(categorical{}.draw(std::span<const float>(nan_row), ctx, rng), Catch::Contains("NaN"));
    CHECK_THROWS_WITH(gumbel_max{}.draw(std::span<const float>(nan_row), ctx, rng), Catch::Contains("NaN"));
    CHECK_THROWS_WITH(greedy{}.draw(std::span<const float>(nan_row), ctx, rng), Catch::Contains("NaN"));

    // a row whose only finite tokens are banned
    std::vector<float> two{-finf, 1.0f, 2.0f};
    CHECK_THROWS_WITH(sample_token(std::span<float>(two), banned_tokens{.ids = {1, 2}}, categorical{}, ctx, rng),
                      Catch::Contains("every entry masked"));
    static_assert(token_sampler<categorical> && token_sampler<gumbel_max> && token_sampler<greedy, double>);
}

TEST_CASE("greedy on long rows: the lowest index among tied maxima, wherever it sits", "[sampling]") {
    // V = 1003 (whole pairs of registers, then a scalar tail): the maximum, tied twice, placed in
    // every lane position of the first registers, at a pair boundary, in the tail
    const std::vector<float> base = normal_row(1003, 0.0f, 1.0f, 23);
    sampling_context<float> ctx;
    counter_rng rng{};
    std::vector<std::size_t> places;
    for (std::size_t i = 0; i < 40; ++i) places.push_back(i);
    for (std::size_t i : {511u, 512u, 992u, 999u, 1000u, 1002u}) places.push_back(i);
    for (std::size_t at : places) {
        auto row = base;
        row[at] = 9.0f;
        if (at + 3 < row.size()) row[at + 3] = 9.0f; // a later tie
        ctx.begin_row();
        INFO("maximum at " << at);
        CHECK(greedy{}.draw(std::span<const float>(row), ctx, rng) == static_cast<std::int32_t>(at));
    }
}

TEST_CASE("the draw depends only on the stream state", "[sampling]") {
    std::vector<float> row(1000);
    for (std::size_t i = 0; i < row.size(); ++i) row[i] = float(std::sin(double(i)));
    sampling_context<float> a, b;
    a.begin_row();
    b.begin_row();
    counter_rng r1{.seed = 3, .stream = 8}, r2 = r1;
    for (int i = 0; i < 50; ++i)
        CHECK(categorical{}.draw(std::span<const float>(row), a, r1) == categorical{}.draw(std::span<const float>(row), b, r2));
    CHECK(r1.counter == r2.counter);
    CHECK(r1.counter % 4 == 0); // four words per proposal of the rejection draw
    CHECK(r1.counter >= 200);   // at least one proposal per draw
    CHECK(r1.counter < 400);    // acceptance about 0.72 (expected 278 words; 400 is 5 sigma away)
}

TEST_CASE("categorical's proposals: 2^round(y) within 1/2 + slack of every exact exponent, block sums agree", "[sampling]") {
    // rows of 2000 (3 full blocks and a partial one): N(0, 4^2), N(1e4, 30^2) (the rounding of
    // x log2(e) matters), and a row rising by 0.37 per token (the running maximum moves in every block)
    using namespace sampling_detail;
    const isa path = active_isa();
    std::vector<std::vector<float>> rows{normal_row(2000, 0.0f, 4.0f, 17), normal_row(2000, 1e4f, 30.0f, 18)};
    for (auto& r : rows) r[7] = -finf;
    std::vector<float> rising(2000);
    for (std::size_t i = 0; i < rising.size(); ++i) rising[i] = -300.0f + 0.37f * float(i);
    rows.push_back(rising);
    for (const auto& r : rows) {
        const std::size_t blocks = softmax_block_count(r.size());
        std::vector<double> sums(blocks), maxima(blocks);
        proposal_blocks<float>(path, r.data(), r.size(), sums.data(), maxima.data(), "test");
        float m = -finf;
        for (std::size_t b = 0; b < blocks; ++b) {
            const std::size_t s = b * softmax_block, len = std::min(r.size() - s, softmax_block);
            for (std::size_t i = s; i < s + len; ++i) m = std::max(m, r[i]);
            CHECK(maxima[b] == double(m)); // the running maximum, every block's own included
            const proposal_shift<float> sh(float(maxima[b]), path);
            std::vector<float> q(len);
            proposal_block(path, r.data() + s, len, sh, q.data());
            double total = 0;
            for (std::size_t i = 0; i < len; ++i) {
                const double y = sh.exact(r[s + i]);
                total += q[i];
                if (q[i] > 0) {
                    INFO("token " << s + i << " logit " << r[s + i] << " y " << y << " q " << q[i]);
                    CHECK(std::abs(y - std::ilogb(q[i])) <= 0.5 + proposal_slack);
                } else {
                    CHECK(y < -126.0);
                }
            }
            CHECK(sums[b] == Approx(total).epsilon(1e-6));
        }
    }
}

TEST_CASE("categorical's rejection step: exact on weights that sit between powers of two (chi-square)", "[sampling]") {
    // 16 tokens whose log2-weights step by 1/4 (and one masked): acceptance probabilities between
    // 1/2 and 1. Without the acceptance step the draw would follow 2^round(y), up to 41% off
    // per token: chi-square ~ 2000 against a critical value of 37.7 (power 1). 40000 draws, float
    // and double rows.
    auto check = [](auto zero) {
        using T = decltype(zero);
        std::vector<T> row(17);
        for (std::size_t i = 0; i < 16; ++i) row[i] = T(0.25 * double(i) * std::log(2.0));
        row[16] = -std::numeric_limits<T>::infinity();
        const auto p = brute::softmax(std::vector<double>(row.begin(), row.end()));
        sampling_context<T> ctx;
        ctx.begin_row();
        counter_rng rng{.seed = 21};
        constexpr int n = 40000;
        std::vector<int> count(17, 0);
        for (int i = 0; i < n; ++i) ++count[static_cast<std::size_t>(categorical{}.draw(std::span<const T>(row), ctx, rng))];
        CHECK(count[16] == 0);
        double x = 0;
        for (std::size_t g = 0; g < 16; ++g) x += (count[g] - p[g] * n) * (count[g] - p[g] * n) / (p[g] * n);
        INFO("chi2 " << x);
        CHECK(x < brute::chi2_critical_1e3(15));
    };
    check(0.0f);
    check(0.0);
}

TEST_CASE("long rows: NaN, +inf and all -inf are rejected wherever they sit; a late maximum is found", "[sampling]") {
    // rows of 5000 (several full blocks of the one-pass kernel, then a partial one), a bad entry
    // in the first block, in a later full block and in the partial tail block
    const std::vector<float> base = normal_row(5000, 0.0f, 3.0f, 11);
    sampling_context<float> ctx;
    counter_rng rng{.seed = 4};
    for (std::size_t at : {std::size_t(10), std::size_t(3000), std::size_t(4990)})
        for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
            auto row = base;
            row[at] = bad;
            ctx.begin_row();
            CHECK_THROWS_WITH(categorical{}.draw(std::span<const float>(row), ctx, rng), Catch::Contains("NaN or +inf"));
            auto r2 = row;
            CHECK_THROWS_WITH(process_row(top_p{.p = 0.9f}, std::span<float>(r2)), Catch::Contains("NaN or +inf"));
        }
    const std::vector<float> masked(5000, -finf);
    ctx.begin_row();
    CHECK_THROWS_WITH(categorical{}.draw(std::span<const float>(masked), ctx, rng), Catch::Contains("every entry masked"));
    auto m2 = masked;
    CHECK_THROWS_WITH(process_row(top_p{.p = 0.5f}, std::span<float>(m2)), Catch::Contains("every entry masked"));
    // the maximum far in the last full block, ~190 above the rest (its exponential relative to the
    // earlier maximum would overflow): every draw returns it
    auto row = base;
    row[4500] = 200.0f;
    for (int i = 0; i < 50; ++i) {
        ctx.begin_row();
        CHECK(categorical{}.draw(std::span<const float>(row), ctx, rng) == 4500);
    }
    // top-p collects its candidates after that block's redo: the nucleus is that one token
    auto r3 = row;
    process_row(top_p{.p = 0.9f}, std::span<float>(r3));
    for (std::size_t i = 0; i < r3.size(); ++i) CHECK((r3[i] > -finf) == (i == 4500));
}

namespace {

// A custom processor that does not declare support_aware: it records how many entries of the
// row are finite when it runs (a dense read, valid only on a fully masked row).
struct count_finite {
    std::size_t* seen;
    template <class T>
    void process(std::span<T> row, sampling_context<T>&) const {
        *seen = static_cast<std::size_t>(std::count_if(row.begin(), row.end(), [](T v) { return std::isfinite(v); }));
    }
};

// sample_token (lazy masking when chain and draw are support-aware) against the same chain and
// draw run on a context without it: the same token, the same stream position, the same support
// and, at the support, the same logits; outside it the eager row is -inf. Returns how many
// entries outside the support the lazy row left finite (stale).
template <class Chain, class Draw>
std::size_t check_lazy_matches_eager(const std::vector<float>& base, const Chain& chain, const Draw& draw,
                                     std::span<const std::int32_t> history, std::uint64_t seed) {
    auto lazy_row = base, eager_row = base;
    sampling_context<float> lazy, eager;
    counter_rng rng_lazy{.seed = seed, .stream = 3}, rng_eager = rng_lazy;
    const std::int32_t a = sample_token(std::span<float>(lazy_row), chain, draw, lazy, rng_lazy, history);
    eager.begin_row(history);
    chain.process(std::span<float>(eager_row), eager);
    const std::int32_t b = draw.draw(std::span<const float>(eager_row), eager, rng_eager);
    CHECK(a == b);
    CHECK(rng_lazy.counter == rng_eager.counter);
    REQUIRE(lazy.has_support == eager.has_support);
    if (!lazy.has_support) return 0;
    CHECK(lazy.support == eager.support);
    std::vector<char> in(base.size(), 0);
    for (std::int32_t id : lazy.support) {
        const auto i = static_cast<std::size_t>(id);
        in[i] = 1;
        CHECK(lazy_row[i] == eager_row[i]);
    }
    std::size_t stale = 0;
    for (std::size_t i = 0; i < base.size(); ++i) {
        if (in[i]) continue;
        CHECK(eager_row[i] == -finf);
        stale += std::isfinite(lazy_row[i]) ? 1 : 0;
    }
    return stale;
}

} // namespace

TEST_CASE("sample_token's lazy masking draws what the fully masked row draws", "[sampling]") {
    // rows of N(0, 3^2) with a few masked entries, V = 5003 (a partial last block); every chain
    // and draw of the library, including processors running after a truncation on stale entries
    // (penalties and a bias on tokens outside the support)
    auto base = normal_row(5003, 0.0f, 3.0f, 41);
    for (std::size_t i = 0; i < base.size(); i += 97) base[i] = -finf;
    const std::vector<std::int32_t> history{5, 17, 17, 400, 4999, 2};
    const logit_bias bias{.bias = {{1, 50.0f}, {7, -3.0f}, {4000, 2.0f}}};
    for (std::uint64_t seed = 0; seed < 20; ++seed) {
        INFO("seed " << seed);
        // each truncation of a dense row must leave stale entries (else the check compares eager
        // with eager)
        CHECK(check_lazy_matches_eager(base, top_p{.p = 0.9f} | temperature{.t = 0.8f}, categorical{}, history, seed) > 0);
        CHECK(check_lazy_matches_eager(base, top_k{.k = 40} | temperature{.t = 0.7f}, categorical{}, history, seed) > 0);
        CHECK(check_lazy_matches_eager(base, min_p{.p = 0.05f}, gumbel_max{}, history, seed) > 0);
        CHECK(check_lazy_matches_eager(base, temperature{.t = 0.0f}, categorical{}, history, seed) > 0);
        CHECK(check_lazy_matches_eager(base, top_p{.p = 0.5f} | repetition_penalty{.theta = 1.3f} | bias | top_k{.k = 5},
                                       categorical{}, history, seed) > 0);
        CHECK(check_lazy_matches_eager(base, top_k{.k = 30} | top_p{.p = 0.95f} | min_p{.p = 0.1f}, greedy{}, history,
                                       seed) > 0);
        CHECK(check_lazy_matches_eager(base, typical_p{.p = 0.9f}, categorical{}, history, seed) > 0);
        CHECK(check_lazy_matches_eager(base, no_processing{}, categorical{}, history, seed) == 0);
    }
}

TEST_CASE("sample_token masks the whole row for a chain with a processor that is not support-aware", "[sampling]") {
    const auto base = normal_row(5003, 0.0f, 3.0f, 43);
    std::size_t seen = 0;
    const auto chain = top_p{.p = 0.9f} | count_finite{&seen};
    static_assert(!sampling_detail::support_aware<decltype(chain)>);
    static_assert(sampling_detail::support_aware<decltype(top_p{} | temperature{})> && sampling_detail::support_aware<categorical>);
    auto row = base;
    sampling_context<float> ctx;
    counter_rng rng{.seed = 9};
    sample_token(std::span<float>(row), chain, categorical{}, ctx, rng);
    REQUIRE(ctx.has_support);
    CHECK(!ctx.lazy_masking);
    CHECK(seen == ctx.support.size());
    CHECK(static_cast<std::size_t>(std::count_if(row.begin(), row.end(), [](float v) { return std::isfinite(v); })) ==
          ctx.support.size());
}
