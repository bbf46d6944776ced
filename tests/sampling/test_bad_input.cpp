// Regression tests of issue 22: empty rows for every processor and draw, a temperature that
// passes its check but overflows the logits, NaN through `temperature` alone, the support path of
// the draws, penalties that overflow, history ids checked even by a no-op penalty.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "selfreplay/sampling.hpp"

using namespace selfreplay;
using Catch::Contains;

namespace {
template <class T, class P>
void process(const P& p, std::vector<T>& row, std::span<const std::int32_t> history = {}) {
    process_row(p, std::span<T>(row), history);
}
template <class T, class Chain, class Draw>
std::int32_t sample(std::vector<T>& row, const Chain& chain, const Draw& draw, std::span<const std::int32_t> history = {}) {
    sampling_context<T> ctx;
    counter_rng rng{.seed = 7};
    return sample_token(std::span<T>(row), chain, draw, ctx, rng, history);
}
} // namespace

TEMPLATE_TEST_CASE("every processor, chain and draw rejects an empty row (V = 0)", "[sampling]", float, double) {
    using T = TestType;
    std::vector<T> empty;
    const std::vector<std::int32_t> history{0};
    auto rejects = [&](const auto& p) {
        CHECK_THROWS_WITH(process<T>(p, empty), Contains("empty row") && Contains("'logits'"));
        CHECK_THROWS_WITH(process<T>(p, empty, history), Contains("empty row"));
    };
    rejects(temperature{.t = 0.7f});
    rejects(temperature{.t = 1.0f});
    rejects(temperature{.t = 0.0f});
    rejects(top_k{.k = 3});
    rejects(top_p{.p = 0.9f});
    rejects(top_p{.p = 1.0f});
    rejects(min_p{.p = 0.1f});
    rejects(typical_p{.p = 0.9f});
    rejects(typical_p{.p = 1.0f});
    rejects(repetition_penalty{.theta = 1.3f});
    rejects(repetition_penalty{.theta = 1.0f});
    rejects(frequency_penalty{.alpha = 0.5f});
    rejects(presence_penalty{.alpha = 0.0f});
    rejects(logit_bias{});
    rejects(banned_tokens{});
    rejects(no_processing{});
    rejects(top_k{.k = 3} | temperature{.t = 0.5f});
    // the draws, with and without a chain before them (categorical read maxima[-1] here)
    CHECK_THROWS_WITH(sample<T>(empty, no_processing{}, categorical{}), Contains("empty row"));
    CHECK_THROWS_WITH(sample<T>(empty, no_processing{}, gumbel_max{}), Contains("empty row"));
    CHECK_THROWS_WITH(sample<T>(empty, no_processing{}, greedy{}), Contains("empty row"));
    sampling_context<T> ctx;
    counter_rng rng{.seed = 1};
    const std::span<const T> none;
    CHECK_THROWS_WITH(categorical{}.draw(none, ctx, rng), Contains("categorical") && Contains("empty row"));
    CHECK_THROWS_WITH(gumbel_max{}.draw(none, ctx, rng), Contains("gumbel_max") && Contains("empty row"));
    CHECK_THROWS_WITH(greedy{}.draw(none, ctx, rng), Contains("greedy") && Contains("empty row"));
}

TEMPLATE_TEST_CASE("a temperature that overflows the kept logits is rejected on every path", "[sampling]", float, double) {
    using T = TestType;
    const std::vector<T> base{1, 2, 3, 4, 5};
    // float: 5 / 1e-38 overflows; double: 1e-45 (the smallest float) times 1e300 does
    const T big = sizeof(T) == 4 ? T(5) : T(1e300);
    const float t = sizeof(T) == 4 ? 1e-38f : 1e-45f;
    std::vector<T> row = base;
    row[4] = big;
    auto r = row;
    // support path (after a truncation): used to return the last supported token silently
    CHECK_THROWS_WITH(sample<T>(r, top_k{.k = 3} | temperature{.t = t}, categorical{}), Contains("'t'") && Contains("overflows"));
    r = row;
    CHECK_THROWS_WITH(sample<T>(r, top_k{.k = 3} | temperature{.t = t}, greedy{}), Contains("'t'"));
    r = row;
    CHECK_THROWS_WITH(sample<T>(r, top_p{.p = 0.5f} | temperature{.t = t}, gumbel_max{}), Contains("'t'"));
    // dense path
    r = row;
    CHECK_THROWS_WITH(sample<T>(r, temperature{.t = t}, categorical{}), Contains("'t'"));
    r = row;
    CHECK_THROWS_WITH(process<T>(temperature{.t = t}, r), Contains("'t'"));
    // a finite negative logit that would overflow to -inf is an error too, not a silent ban
    std::vector<T> neg{0, -big};
    CHECK_THROWS_WITH(process<T>(temperature{.t = t}, neg), Contains("'t'"));
    // the largest temperatures are fine: the logits shrink towards 0 (nearly uniform)
    r = row;
    CHECK_NOTHROW(process<T>(temperature{.t = std::numeric_limits<float>::max()}, r));
    for (T v : r) CHECK(std::isfinite(v));
    // a small temperature that does not overflow keeps the argmax
    r = base;
    CHECK(sample<T>(r, top_k{.k = 3} | temperature{.t = 1e-30f}, categorical{}) == 4);
}

TEMPLATE_TEST_CASE("temperature alone rejects NaN and +inf logits (t != 1)", "[sampling]", float, double) {
    using T = TestType;
    for (T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity()}) {
        std::vector<T> row{1, bad, 3};
        CHECK_THROWS_WITH(process<T>(temperature{.t = 0.7f}, row), Contains("temperature") && Contains("NaN or +inf"));
        row = {1, bad, 3};
        CHECK_THROWS_WITH(process<T>(temperature{.t = 0.0f}, row), Contains("NaN or +inf"));
        // on the support, after a truncation that kept the bad entry (a custom context)
        row = {1, bad, 3};
        sampling_context<T> ctx;
        ctx.begin_row();
        ctx.has_support = true;
        ctx.support = {1, 2};
        CHECK_THROWS_WITH(temperature{.t = 0.7f}.process(std::span<T>(row), ctx), Contains("NaN or +inf"));
        CHECK_THROWS_WITH(temperature{.t = 0.0f}.process(std::span<T>(row), ctx), Contains("NaN or +inf"));
    }
}

TEMPLATE_TEST_CASE("temperature on long dense rows: x / t in every lane and tail, bad entries and overflow found anywhere", "[sampling]", float, double) {
    using T = TestType;
    // every length up to 4 registers of the widest path plus a tail, every position of the bad
    // entry: the vector body and the tail of each ISA path (this test runs once per path)
    const float t = 0.37f;
    const T inv = T(1) / static_cast<T>(t);
    const T huge = std::numeric_limits<T>::max() / T(2); // finite, overflows at t = 0.37
    for (std::size_t n : {1u, 15u, 16u, 17u, 33u, 64u, 71u}) {
        std::vector<T> row(n);
        for (std::size_t i = 0; i < n; ++i) row[i] = i % 5 == 4 ? -std::numeric_limits<T>::infinity() : T(int(i) - 20) / T(3);
        auto r = row;
        process<T>(temperature{.t = t}, r);
        for (std::size_t i = 0; i < n; ++i) CHECK(r[i] == row[i] * inv); // brute force, -inf stays -inf
        for (std::size_t k = 0; k < n; ++k) {
            for (T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity()}) {
                r = row;
                r[k] = bad;
                CHECK_THROWS_WITH(process<T>(temperature{.t = t}, r), Contains("NaN or +inf"));
            }
            for (T big : {huge, -huge}) {
                r = row;
                r[k] = big;
                CHECK_THROWS_WITH(process<T>(temperature{.t = t}, r), Contains("'t'") && Contains("overflows"));
            }
        }
    }
}

TEMPLATE_TEST_CASE("draws and truncations check the support for NaN and +inf as the dense path does", "[sampling]", float, double) {
    using T = TestType;
    for (T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity()}) {
        const std::vector<T> row{5, bad, 3, 1};
        auto with_support = [&](auto&& f) {
            sampling_context<T> ctx;
            ctx.begin_row();
            ctx.has_support = true;
            ctx.support = {0, 1, 2};
            counter_rng rng{.seed = 3};
            return f(ctx, rng);
        };
        const std::span<const T> v(row);
        CHECK_THROWS_WITH(with_support([&](auto& c, auto& g) { return categorical{}.draw(v, c, g); }), Contains("NaN or +inf"));
        CHECK_THROWS_WITH(with_support([&](auto& c, auto& g) { return greedy{}.draw(v, c, g); }), Contains("NaN or +inf"));
        CHECK_THROWS_WITH(with_support([&](auto& c, auto& g) { return gumbel_max{}.draw(v, c, g); }), Contains("NaN or +inf"));
        auto truncate = [&](const auto& p) {
            std::vector<T> r = row;
            with_support([&](auto& c, auto&) {
                p.process(std::span<T>(r), c);
                return 0;
            });
        };
        CHECK_THROWS_WITH(truncate(top_k{.k = 1}), Contains("NaN or +inf"));
        CHECK_THROWS_WITH(truncate(top_p{.p = 0.5f}), Contains("NaN or +inf"));
        CHECK_THROWS_WITH(truncate(min_p{.p = 0.5f}), Contains("NaN or +inf"));
        CHECK_THROWS_WITH(truncate(typical_p{.p = 0.5f}), Contains("NaN or +inf"));
    }
}

TEST_CASE("penalties and biases that overflow a finite logit are rejected naming the parameter", "[sampling]") {
    const std::vector<std::int32_t> history{0, 0, 1};
    std::vector<float> row{3e38f, -3e38f, 1.0f};
    CHECK_THROWS_WITH(process<float>(repetition_penalty{.theta = 1e-3f}, row, history), Contains("'theta'") && Contains("overflow"));
    row = {3e38f, -3e38f, 1.0f};
    CHECK_THROWS_WITH(process<float>(repetition_penalty{.theta = 100.0f}, row, history), Contains("'theta'"));
    row = {1.0f, 2.0f, 3.0f};
    CHECK_THROWS_WITH(process<float>(frequency_penalty{.alpha = 3e38f}, row, history), Contains("'alpha'") && Contains("overflow"));
    row = {3e38f, 2.0f, 3.0f};
    CHECK_THROWS_WITH(process<float>(presence_penalty{.alpha = -3.4e38f}, row, history), Contains("'alpha'"));
    row = {3e38f, 2.0f, 3.0f};
    CHECK_THROWS_WITH(process<float>(logit_bias{.bias = {{0, 3e38f}}}, row), Contains("'bias'") && Contains("overflow"));
    // a -inf bias bans, and a finite bias on a -inf logit leaves it -inf
    row = {3e38f, -std::numeric_limits<float>::infinity(), 3.0f};
    CHECK_NOTHROW(process<float>(logit_bias{.bias = {{0, -std::numeric_limits<float>::infinity()}, {1, 3e38f}}}, row));
    CHECK(row[0] == -std::numeric_limits<float>::infinity());
    CHECK(row[1] == -std::numeric_limits<float>::infinity());
}

TEST_CASE("penalties check history ids even when they are a no-op", "[sampling]") {
    const std::vector<std::int32_t> bad{0, 7};
    std::vector<float> row{1.0f, 2.0f, 3.0f};
    CHECK_THROWS_WITH(process<float>(repetition_penalty{.theta = 1.0f}, row, bad), Contains("history") && Contains("7"));
    CHECK_THROWS_WITH(process<float>(frequency_penalty{.alpha = 0.0f}, row, bad), Contains("history"));
    CHECK_THROWS_WITH(process<float>(presence_penalty{.alpha = 0.0f}, row, bad), Contains("history"));
    const std::vector<std::int32_t> negative{-1};
    CHECK_THROWS_WITH(process<float>(repetition_penalty{.theta = 1.0f}, row, negative), Contains("-1"));
    CHECK(row == std::vector<float>{1.0f, 2.0f, 3.0f});
}

TEST_CASE("with lazy masking, penalties and biases leave stale entries outside the support alone", "[sampling]") {
    // after top_k{2} the support is {1, 2}; entry 0 is stale (-3e38, counts as -inf). Penalising
    // or biasing it would overflow, which is an error on a finite logit but not on a masked one:
    // sample_token (lazy) must agree with the fully masked row of process_row.
    const std::vector<std::int32_t> history{0, 2};
    auto agree = [&](const auto& chain) {
        std::vector<float> lazy{-3e38f, 1.0f, 2.0f}, full = lazy;
        const std::int32_t token = sample<float>(lazy, chain, greedy{}, history);
        process<float>(chain, full, history);
        CHECK(full[0] == -std::numeric_limits<float>::infinity());
        CHECK(token == (full[1] >= full[2] ? 1 : 2));
    };
    agree(top_k{.k = 2} | repetition_penalty{.theta = 10.0f});
    agree(top_k{.k = 2} | frequency_penalty{.alpha = 3e38f});
    agree(top_k{.k = 2} | presence_penalty{.alpha = 3e38f});
    agree(top_k{.k = 2} | logit_bias{.bias = {{0, -3e38f}, {2, 0.5f}}});
}

TEST_CASE("top_p and typical_p on logits a subnormal distance apart terminate (fuzz finding: endless loop)", "[sampling]") {
    // found by tests/fuzz/fuzz_sampling: the threshold search put every key in one histogram
    // bucket (64 / (hi - lo) = inf) and looped for ever
    std::vector<double> row(100);
    for (std::size_t i = 0; i < row.size(); ++i) row[i] = static_cast<double>(i) * 1e-310;
    for (float p : {0.25f, 0.5f, 0.9f}) {
        INFO("p " << p);
        auto r = row;
        process<double>(top_p{.p = p}, r);
        std::size_t kept = 0;
        for (double x : r) kept += std::isfinite(x);
        // the weights exp(x - max) are all 1 in float: the smallest set of largest logits reaching p
        CHECK(kept == static_cast<std::size_t>(std::ceil(double(p) * 100 - 1e-9)));
        for (std::size_t i = 100 - kept; i < 100; ++i) CHECK(std::isfinite(r[i]));
        r = row;
        CHECK_NOTHROW(process<double>(typical_p{.p = p}, r));
    }
}

TEST_CASE("temperature on a long support: x / t on every kept id, bad entries and overflow found in any lane", "[sampling]") {
    // supports of every length up to 4 registers of the widest path plus a tail, ids spread over
    // the row (every third token): the gathering vector body and the scalar tail of each path
    const float t = 0.37f, inv = 1.0f / t;
    const float huge = std::numeric_limits<float>::max() / 2.0f; // finite, overflows at t = 0.37
    for (std::size_t n : {1u, 15u, 16u, 17u, 33u, 64u, 71u}) {
        std::vector<float> row(3 * n + 2);
        for (std::size_t i = 0; i < row.size(); ++i) row[i] = float(int(i) - 20) / 3.0f;
        std::vector<std::int32_t> ids(n);
        for (std::size_t k = 0; k < n; ++k) ids[k] = static_cast<std::int32_t>(3 * k + 1);
        auto run = [&](std::vector<float>& r) {
            sampling_context<float> ctx;
            ctx.begin_row();
            ctx.has_support = true;
            ctx.support = ids;
            temperature{.t = t}.process(std::span<float>(r), ctx);
        };
        auto r = row;
        run(r);
        for (std::size_t i = 0; i < row.size(); ++i) CHECK(r[i] == (i % 3 == 1 && i < 3 * n ? row[i] * inv : row[i])); // brute force
        for (std::size_t k = 0; k < n; ++k) {
            const auto at = static_cast<std::size_t>(ids[k]);
            for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
                r = row;
                r[at] = bad;
                CHECK_THROWS_WITH(run(r), Contains("NaN or +inf"));
            }
            r = row;
            r[at] = huge;
            CHECK_THROWS_WITH(run(r), Contains("'t'") && Contains("overflows"));
            r = row;
            r[at] = -std::numeric_limits<float>::infinity(); // -inf stays -inf, no flag
            run(r);
            CHECK(r[at] == -std::numeric_limits<float>::infinity());
        }
    }
}
