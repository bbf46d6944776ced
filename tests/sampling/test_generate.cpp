#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "brute.hpp"
#include "selfreplay/sampling.hpp"

using namespace selfreplay;

namespace {

// A bigram language model: the next-token distribution is row `last token` of a fixed table.
struct bigram_model {
    std::vector<std::vector<double>> prob; // [V][V], rows sum to 1
    int calls = 0;
    index_t vocab_size() const { return static_cast<index_t>(prob.size()); }
    void next_token_logits(strided_view<const std::int32_t, 2> prefixes, strided_view<float, 2> logits) {
        ++calls;
        for (index_t b = 0; b < prefixes.extent(0); ++b) {
            const auto last = static_cast<std::size_t>(prefixes(b, prefixes.extent(1) - 1));
            for (index_t v = 0; v < logits.extent(1); ++v) logits(b, v) = float(std::log(prob[last][static_cast<std::size_t>(v)]));
        }
    }
};

// The same model in incremental form (its state: the last token of each row).
struct incremental_bigram : bigram_model {
    std::vector<std::int32_t> last;
    int steps = 0;
    void reset(index_t batch) { last.assign(static_cast<std::size_t>(batch), -1); }
    void step(strided_view<const std::int32_t, 1> tokens, strided_view<float, 2> logits) {
        ++steps;
        for (index_t b = 0; b < tokens.extent(0); ++b) {
            last[static_cast<std::size_t>(b)] = tokens(b);
            for (index_t v = 0; v < logits.extent(1); ++v)
                logits(b, v) = float(std::log(prob[static_cast<std::size_t>(tokens(b))][static_cast<std::size_t>(v)]));
        }
    }
};

std::vector<std::vector<double>> bigram_table(int V, unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<double> u(0.5, 2.0);
    std::vector<std::vector<double>> p(static_cast<std::size_t>(V), std::vector<double>(static_cast<std::size_t>(V)));
    for (auto& r : p) {
        double s = 0;
        for (auto& v : r) s += v = u(gen);
        for (auto& v : r) v /= s;
    }
    return p;
}

} // namespace

static_assert(language_model<bigram_model>);
static_assert(!incremental_language_model<bigram_model>);
static_assert(incremental_language_model<incremental_bigram>);

TEST_CASE("generate from a bigram model matches its distribution (chi-square, alpha = 1e-3)", "[sampling]") {
    constexpr int V = 5, B = 4000, T = 3;
    bigram_model m{bigram_table(V, 11)};
    std::vector<std::int32_t> first(B, 2), out(B * T);
    generate(m, std::span<const std::int32_t>(first), {.seed = 7}, make_view(out.data(), {B, T}));
    CHECK(m.calls == T - 1);
    // joint of (x1, x2) given x0 = 2: p[2][a] * p[a][b], 25 cells, 24 dof
    std::vector<int> count(V * V, 0);
    for (int b = 0; b < B; ++b) {
        REQUIRE(out[b * T] == 2);
        ++count[static_cast<std::size_t>(out[b * T + 1] * V + out[b * T + 2])];
    }
    double x = 0;
    for (int a = 0; a < V; ++a)
        for (int c = 0; c < V; ++c) {
            const double e = m.prob[2][a] * m.prob[a][c] * B;
            x += (count[a * V + c] - e) * (count[a * V + c] - e) / e;
        }
    CHECK(x < brute::chi2_critical_1e3(24));

    // the incremental form gives the same tokens (same logits, same streams)
    incremental_bigram im;
    im.prob = bigram_table(V, 11);
    std::vector<std::int32_t> out2(B * T);
    generate(im, std::span<const std::int32_t>(first), {.seed = 7}, make_view(out2.data(), {B, T}));
    CHECK(im.calls == 0);
    CHECK(im.steps == T - 1);
    CHECK(out2 == out);
}

TEST_CASE("generate: same tokens for any batching and thread count", "[sampling]") {
    constexpr int V = 7, B = 6, T = 9;
    bigram_model m{bigram_table(V, 3)};
    const auto chain = temperature{.t = 0.9f} | top_k{.k = 5};
    const std::vector<std::vector<std::int32_t>> prompts{{1}, {2, 3}, {0}, {4, 4, 4}, {6}, {5, 0}};
    std::vector<std::int32_t> whole(B * T);
    generate(m, prompts, {.seed = 99}, make_view(whole.data(), {B, T}), chain);
    for (int b = 0; b < B; ++b)
        for (std::size_t i = 0; i < prompts[b].size(); ++i) CHECK(whole[b * T + i] == prompts[b][i]);

    std::vector<std::int32_t> halves(B * T);
    const std::vector<std::vector<std::int32_t>> p1(prompts.begin(), prompts.begin() + 4), p2(prompts.begin() + 4, prompts.end());
    generate(m, p1, {.seed = 99}, make_view(halves.data(), {4, T}), chain);
    generate(m, p2, {.seed = 99, .first_row = 4}, make_view(halves.data() + 4 * T, {2, T}), chain);
    CHECK(halves == whole);

    std::vector<std::int32_t> threaded(B * T);
    generate(m, prompts, {.seed = 99, .threads = 2}, make_view(threaded.data(), {B, T}), chain);
    CHECK(threaded == whole);

    incremental_bigram im;
    im.prob = bigram_table(V, 3);
    std::vector<std::int32_t> inc(B * T);
    generate(im, prompts, {.seed = 99, .threads = 3}, make_view(inc.data(), {B, T}), chain);
    CHECK(inc == whole);

    // a different seed gives different tokens
    std::vector<std::int32_t> other(B * T);
    generate(m, prompts, {.seed = 100}, make_view(other.data(), {B, T}), chain);
    CHECK(other != whole);

    // output into a transposed (strided) view: out(b, t) lives at t * B + b
    std::vector<std::int32_t> transposed(B * T);
    generate(m, prompts, {.seed = 99}, make_view(transposed.data(), {B, T}, {1, B}), chain);
    for (int b = 0; b < B; ++b)
        for (int t = 0; t < T; ++t) CHECK(transposed[t * B + b] == whole[b * T + t]);
}

TEST_CASE("generate: stop at eos with padding; greedy", "[sampling]") {
    constexpr int V = 4, B = 200, T = 12;
    bigram_model m{bigram_table(V, 5)};
    std::vector<std::int32_t> first(B, 0), out(B * T);
    generate(m, std::span<const std::int32_t>(first), {.seed = 1, .eos = 3, .pad = 0}, make_view(out.data(), {B, T}));
    int stopped = 0;
    for (int b = 0; b < B; ++b) {
        int t = 1;
        while (t < T && out[b * T + t] != 3) ++t;
        if (t < T) {
            ++stopped;
            for (int s = t + 1; s < T; ++s) CHECK(out[b * T + s] == 0);
        }
    }
    CHECK(stopped > B / 2); // P(no eos in 11 draws) is below (1 - 0.125)^11 ~ 0.23

    // greedy: the chain of argmaxes
    std::vector<std::int32_t> g(2 * T), one{1, 2};
    generate(m, std::span<const std::int32_t>(one), {}, make_view(g.data(), {2, T}), no_processing{}, greedy{});
    for (int b = 0; b < 2; ++b)
        for (int t = 1; t < T; ++t) {
            const auto& r = m.prob[static_cast<std::size_t>(g[b * T + t - 1])];
            CHECK(g[b * T + t] == std::max_element(r.begin(), r.end()) - r.begin());
        }
}

TEST_CASE("generate: bad input throws invalid_argument", "[sampling]") {
    bigram_model m{bigram_table(4, 1)};
    std::vector<std::int32_t> out(2 * 5);
    const auto o = make_view(out.data(), {2, 5});
    const std::vector<std::int32_t> bad_id{0, 4}, ok{0, 1};
    CHECK_THROWS_WITH(generate(m, std::span<const std::int32_t>(bad_id), {}, o),
                      Catch::Contains("generate") && Catch::Contains("prompts") && Catch::Contains("outside the vocabulary"));
    const std::vector<std::vector<std::int32_t>> too_long{{0}, {0, 1, 2, 3, 0, 1}}, empty{{0}, {}};
    CHECK_THROWS_WITH(generate(m, too_long, {}, o), Catch::Contains("length 6"));
    CHECK_THROWS_WITH(generate(m, empty, {}, o), Catch::Contains("length 0"));
    const std::vector<std::int32_t> three{0, 1, 2};
    CHECK_THROWS_WITH(generate(m, std::span<const std::int32_t>(three), {}, o), Catch::Contains("out_tokens"));
    CHECK_THROWS_WITH(generate(m, std::span<const std::int32_t>(ok), {.eos = 2, .pad = 9}, o), Catch::Contains("pad"));
    CHECK_THROWS_WITH(generate(m, std::span<const std::int32_t>(ok), {.threads = 0}, o), Catch::Contains("threads"));
    CHECK_THROWS_WITH(generate(m, std::span<const std::int32_t>(ok), {}, o, temperature{.t = -0.5f}),
                      Catch::Contains("temperature"));
}

namespace {

// A model whose next-token logits depend on the whole prefix (its length and every token at its
// position), so that a logit recorded at the wrong position or from the wrong row differs.
double prefix_logit(double signature, index_t length, index_t v) {
    return std::sin(0.37 * double(v + 1) * signature + 0.1 * double(length));
}

struct prefix_model {
    index_t V = 6;
    index_t vocab_size() const { return V; }
    void next_token_logits(strided_view<const std::int32_t, 2> prefixes, strided_view<float, 2> logits) {
        for (index_t b = 0; b < prefixes.extent(0); ++b) {
            double sig = 1;
            for (index_t i = 0; i < prefixes.extent(1); ++i) sig += double(prefixes(b, i) + 1) * double(i + 1) * 0.01;
            for (index_t v = 0; v < V; ++v) logits(b, v) = float(prefix_logit(sig, prefixes.extent(1), v));
        }
    }
};

// The same model in incremental form (its state: each row's signature and length).
struct incremental_prefix_model : prefix_model {
    std::vector<double> sig;
    std::vector<index_t> len;
    int steps = 0;
    void reset(index_t batch) {
        sig.assign(static_cast<std::size_t>(batch), 1.0);
        len.assign(static_cast<std::size_t>(batch), 0);
    }
    void step(strided_view<const std::int32_t, 1> tokens, strided_view<float, 2> logits) {
        ++steps;
        for (index_t b = 0; b < tokens.extent(0); ++b) {
            const auto ub = static_cast<std::size_t>(b);
            sig[ub] += double(tokens(b) + 1) * double(++len[ub]) * 0.01;
            for (index_t v = 0; v < V; ++v) logits(b, v) = float(prefix_logit(sig[ub], len[ub], v));
        }
    }
};

// Brute force: the model's logits on prefix tokens[0..t] of every row, one row at a time.
std::vector<float> teacher_forced_logits(prefix_model m, const std::vector<std::int32_t>& tokens, index_t B, index_t T) {
    std::vector<float> all(static_cast<std::size_t>(B * T * m.V)), one(static_cast<std::size_t>(m.V));
    for (index_t b = 0; b < B; ++b)
        for (index_t t = 0; t < T; ++t) {
            m.next_token_logits(make_view<const std::int32_t>(tokens.data() + b * T, {1, t + 1}), make_view(one.data(), {1, m.V}));
            std::copy(one.begin(), one.end(), all.begin() + (b * T + t) * m.V);
        }
    return all;
}

} // namespace

TEST_CASE("generate_with_logits: the tokens of generate and the model's logits at every position", "[sampling]") {
    constexpr index_t B = 5, T = 7, V = 6;
    const std::vector<std::vector<std::int32_t>> prompts{{1}, {2, 3}, {0}, {4, 4, 4}, {5, 0}};
    const auto chain = temperature{.t = 0.8f} | top_k{.k = 4}; // the recorded logits are the raw ones
    for (const std::int32_t eos : {-1, 2}) {
        CAPTURE(eos);
        const generate_options opt{.seed = 5, .eos = eos, .pad = 1};
        prefix_model full;
        std::vector<std::int32_t> plain(B * T);
        generate(full, prompts, opt, make_view(plain.data(), {B, T}), chain);

        std::vector<std::int32_t> tokens(B * T);
        std::vector<float> logits(B * T * V, -99.f);
        generate_with_logits(full, prompts, opt, make_view(tokens.data(), {B, T}), make_view(logits.data(), {B * T, V}), chain);
        CHECK(tokens == plain);
        CHECK(logits == teacher_forced_logits(full, tokens, B, T));

        incremental_prefix_model inc;
        std::vector<std::int32_t> inc_tokens(B * T);
        std::vector<float> inc_logits(B * T * V, -99.f);
        generate_with_logits(inc, prompts, {.seed = 5, .eos = eos, .pad = 1, .threads = 2}, make_view(inc_tokens.data(), {B, T}),
                             make_view(inc_logits.data(), {B * T, V}), chain);
        CHECK(inc.steps == T); // one step per position, the last one included
        CHECK(inc_tokens == plain);
        CHECK(inc_logits == logits);
    }

    // into a transposed view of [B * T, V]
    prefix_model full;
    std::vector<std::int32_t> tokens(B * T);
    std::vector<float> dense(B * T * V), transposed(B * T * V);
    generate_with_logits(full, prompts, {.seed = 9}, make_view(tokens.data(), {B, T}), make_view(dense.data(), {B * T, V}));
    generate_with_logits(full, prompts, {.seed = 9}, make_view(tokens.data(), {B, T}),
                         make_view(transposed.data(), {B * T, V}, {1, B * T}));
    for (index_t i = 0; i < B * T; ++i)
        for (index_t v = 0; v < V; ++v) CHECK(transposed[static_cast<std::size_t>(v * B * T + i)] == dense[static_cast<std::size_t>(i * V + v)]);

    // a wrong shape is refused, naming the argument
    std::vector<float> small(B * (T - 1) * V);
    CHECK_THROWS_WITH(generate_with_logits(full, prompts, {}, make_view(tokens.data(), {B, T}), make_view(small.data(), {B * (T - 1), V})),
                      Catch::Contains("out_logits") && Catch::Contains("[B * T, V] = [35, 6]"));
}
