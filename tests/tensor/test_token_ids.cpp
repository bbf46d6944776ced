// int64 token ids (torch's dtype) through every API that takes token ids, against the same call
// with int32 ids: losses, replay buffers, mixing, the objective, sampling histories, generation.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "selfreplay/losses.hpp"
#include "selfreplay/replay.hpp"
#include "selfreplay/sampling.hpp"
#include "selfreplay/tensor.hpp"

using namespace selfreplay;

namespace {

template <class To, class From>
std::vector<To> widen(const std::vector<From>& v) {
    return std::vector<To>(v.begin(), v.end());
}

// A bigram model over int64 prefixes only; `incremental` adds reset/step (the state: last tokens).
struct int64_bigram {
    index_t V = 5;
    index_t vocab_size() const { return V; }
    float logit(std::int64_t last, index_t v) const { return float(std::sin(double(last * 7 + v * 3))); }
    void next_token_logits(strided_view<const std::int64_t, 2> prefixes, strided_view<float, 2> logits) {
        for (index_t b = 0; b < prefixes.extent(0); ++b)
            for (index_t v = 0; v < V; ++v) logits(b, v) = logit(prefixes(b, prefixes.extent(1) - 1), v);
    }
};
struct int64_incremental_bigram : int64_bigram {
    std::vector<std::int64_t> last;
    void reset(index_t batch) { last.assign(static_cast<std::size_t>(batch), -1); }
    void step(strided_view<const std::int64_t, 1> tokens, strided_view<float, 2> logits) {
        for (index_t b = 0; b < tokens.extent(0); ++b)
            for (index_t v = 0; v < V; ++v) logits(b, v) = logit(tokens(b), v);
    }
};
// The same model over int32 prefixes.
struct int32_bigram : int64_bigram {
    void next_token_logits(strided_view<const std::int32_t, 2> prefixes, strided_view<float, 2> logits) {
        for (index_t b = 0; b < prefixes.extent(0); ++b)
            for (index_t v = 0; v < V; ++v) logits(b, v) = logit(prefixes(b, prefixes.extent(1) - 1), v);
    }
};

static_assert(language_model<int64_bigram> && !incremental_language_model<int64_bigram>);
static_assert(incremental_language_model<int64_incremental_bigram>);
static_assert(std::is_same_v<model_token_t<int64_bigram, float>, std::int64_t>);
static_assert(std::is_same_v<model_token_t<int32_bigram, float, std::int64_t>, std::int32_t>);

} // namespace

TEST_CASE("token_span and const_token_batch_view hold int32 or int64 ids without a copy", "[tensor][tokens]") {
    const std::vector<std::int64_t> wide{5, -1, 1LL << 40};
    const token_span s(wide);
    CHECK(s.is_int64());
    CHECK(s.size() == 3);
    CHECK(s[2] == (1LL << 40));
    CHECK(s.visit([](auto sp) { return static_cast<const void*>(sp.data()); }) == wide.data());
    const std::vector<std::int32_t> narrow{3, 4};
    const token_span n(narrow);
    CHECK_FALSE(n.is_int64());
    CHECK(n[1] == 4);

    std::vector<std::int64_t> ids{1, 2, 3, 4, 5, 6};
    const const_token_batch_view b = make_view(ids.data(), {2, 3});
    CHECK(b.is_int64());
    CHECK(b.extent(0) == 2);
    CHECK(b.extent(1) == 3);
    CHECK(b.data() == ids.data());
    CHECK(b.visit([](const auto& v) { return std::int64_t(v(1, 2)); }) == 6);
}

TEST_CASE("next_token_loss: int64 tokens give the int32 result bit for bit", "[tensor][tokens]") {
    const index_t B = 2, T = 4, V = 7;
    std::vector<float> logits(static_cast<std::size_t>(B * T * V));
    for (std::size_t i = 0; i < logits.size(); ++i) logits[i] = float(std::cos(double(i)));
    const std::vector<std::int32_t> t32{1, 6, 0, -100, 3, 2, 5, 4};
    const auto t64 = widen<std::int64_t>(t32);
    std::vector<float> g32(logits.size()), g64(logits.size());
    const auto x = make_view<const float>(logits.data(), {B, T, V});
    const auto r32 = next_token_loss(x, make_view(t32.data(), {B, T}), make_view(g32.data(), {B, T, V}));
    const auto r64 = next_token_loss(x, make_view(t64.data(), {B, T}), make_view(g64.data(), {B, T, V}));
    CHECK(r32.value == r64.value);
    CHECK(r32.counted == r64.counted);
    CHECK(g32 == g64);
    std::vector<std::int64_t> bad = t64;
    bad[1] = std::int64_t(1) << 33;
    CHECK_THROWS_WITH(next_token_loss(x, make_view(bad.data(), {B, T})),
                      Catch::Contains("'tokens' holds 8589934592 at (0, 1), outside the vocabulary [0, 7)"));
}

TEST_CASE("replay buffers take and give int64 ids", "[tensor][tokens]") {
    const index_t T = 3;
    std::vector<std::int64_t> rows{0, 1, 2, 3, 4, 5, 6, 7, 8};
    reservoir_buffer a({.capacity = 2, .seq_len = T, .seed = 4});
    reservoir_buffer b({.capacity = 2, .seq_len = T, .seed = 4});
    a.add(make_view(rows.data(), {3, T}));
    const auto rows32 = widen<std::int32_t>(rows);
    b.add(make_view(rows32.data(), {3, T}));
    std::vector<std::int64_t> out64(6);
    std::vector<std::int32_t> out32(6);
    a.draw(make_view(out64.data(), {2, T}));
    b.draw(make_view(out32.data(), {2, T}));
    CHECK(out64 == widen<std::int64_t>(out32));

    ring_buffer r({.capacity = 2, .seq_len = T});
    std::vector<std::int64_t> huge{0, 1, std::int64_t(1) << 31};
    CHECK_THROWS_WITH(r.add(make_view(huge.data(), {1, T})),
                      Catch::Contains("holds a token id beyond int32 2147483648 at row 0, position 2"));
    CHECK(r.size() == 0);
}

TEST_CASE("mix_batch and evaluate_objective take int64 ids", "[tensor][tokens]") {
    const index_t B = 2, L = 3, V = 4;
    std::vector<std::int64_t> x{1, 2, 3, 0, 1, 2};
    const std::vector<std::int32_t> r{3, 3, 3, 2, 2, 2};
    CHECK(mix_batch(replace<>{.fraction = 0.5}, 0, make_view(x.data(), {B, L}), make_view(r.data(), {B, L})) == 1);
    CHECK(x == std::vector<std::int64_t>{3, 3, 3, 0, 1, 2});

    std::vector<double> logits(static_cast<std::size_t>(B * L * V)), ref(logits.size());
    for (std::size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(double(i)), ref[i] = std::cos(double(i));
    const auto x32 = widen<std::int32_t>(x);
    std::vector<double> g64(logits.size()), g32(logits.size()), gr64(logits.size()), gr32(logits.size());
    auto run = [&](const_token_batch_view tokens, std::vector<double>& g, std::vector<double>& gr) {
        objective_inputs<double> in{.train_tokens = tokens,
                                    .student_train_logits = make_view<const double>(logits.data(), {B * L, V}),
                                    .replay_tokens = tokens,
                                    .student_replay_logits = make_view<const double>(logits.data(), {B * L, V})};
        return evaluate_objective(ntp_pre<>{.coefficient = 2.0}, 0, in,
                                  objective_gradients<double>{make_view(g.data(), {B * L, V}), make_view(gr.data(), {B * L, V})});
    };
    const auto a = run(make_view<const std::int64_t>(x.data(), {B, L}), g64, gr64);
    const auto b = run(make_view(x32.data(), {B, L}), g32, gr32);
    CHECK(a.total == b.total);
    CHECK(a.terms[0].value == b.terms[0].value);
    CHECK(g64 == g32);
    CHECK(gr64 == gr32);
}

TEST_CASE("generate and self_generated with int64 models, prompts and outputs", "[tensor][tokens]") {
    const index_t B = 3, T = 6;
    const std::vector<std::int64_t> first{0, 1, 2};
    const std::vector<std::int32_t> first32{0, 1, 2};
    int64_bigram full;
    int64_incremental_bigram inc;
    int32_bigram narrow;
    std::vector<std::int64_t> a(static_cast<std::size_t>(B * T)), b(a.size());
    std::vector<std::int32_t> c(a.size()), d(a.size());
    const generate_options o{.seed = 9};
    generate(full, std::span<const std::int64_t>(first), o, make_view(a.data(), {B, T}));
    generate(inc, std::span<const std::int64_t>(first), o, make_view(b.data(), {B, T}));
    generate(narrow, std::span<const std::int32_t>(first32), o, make_view(c.data(), {B, T}));
    generate(full, std::vector<std::vector<std::int64_t>>{{0}, {1}, {2}}, o, make_view(d.data(), {B, T}));
    CHECK(a == b);
    CHECK(a == widen<std::int64_t>(c));
    CHECK(c == d);

    self_generated<int64_incremental_bigram> src(inc, {.prompts = {{0}}, .batch_size = 2, .seq_len = T, .seed = 3});
    self_generated<int32_bigram> src32(narrow, {.prompts = {{0}}, .batch_size = 2, .seq_len = T, .seed = 3});
    std::vector<std::int64_t> r64(static_cast<std::size_t>(2 * T));
    std::vector<std::int32_t> r32(r64.size());
    src.draw(make_view(r64.data(), {2, T}));
    src32.draw(make_view(r32.data(), {2, T}));
    CHECK(r64 == widen<std::int64_t>(r32));
}

TEST_CASE("penalties read int64 histories", "[tensor][tokens]") {
    std::vector<float> row{1.0f, 2.0f, -1.0f, 0.5f}, row32 = row;
    const std::vector<std::int64_t> h{2, 2, 1};
    process_row(repetition_penalty{.theta = 2.0f} | frequency_penalty{.alpha = 0.25f}, std::span<float>(row),
                token_span(h));
    process_row(repetition_penalty{.theta = 2.0f} | frequency_penalty{.alpha = 0.25f}, std::span<float>(row32),
                token_span(widen<std::int32_t>(h)));
    CHECK(row == row32);
    CHECK(row[2] == -2.5f);
    const std::vector<std::int64_t> bad{std::int64_t(1) << 32};
    CHECK_THROWS_WITH(process_row(presence_penalty{.alpha = 1.0f}, std::span<float>(row), token_span(bad)),
                      Catch::Contains("contains token id 4294967296 outside the vocabulary [0, 4)"));
}
