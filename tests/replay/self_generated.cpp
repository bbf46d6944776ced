// self_generated: prompts and weights, generation ahead in blocks, determinism independent of
// the block size, exact resumption, errors.

#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "selfreplay/replay.hpp"
#include "selfreplay/sampling.hpp"
#include "support.hpp"

namespace sr = selfreplay;
using replay_test::token_batch;

namespace {

// A bigram model over V = 5 tokens: the next-token logits depend on the last token only.
struct bigram {
    static constexpr sr::index_t V = 5;
    int calls = 0;
    sr::index_t vocab_size() const { return V; }
    void next_token_logits(sr::strided_view<const std::int32_t, 2> prefixes, sr::strided_view<float, 2> logits) {
        ++calls;
        for (sr::index_t b = 0; b < prefixes.extent(0); ++b) {
            const std::int32_t last = prefixes(b, prefixes.extent(1) - 1);
            for (sr::index_t v = 0; v < V; ++v) logits(b, v) = static_cast<float>(((last + 1) * (v + 2)) % 7) * 0.4f;
        }
    }
};
static_assert(sr::language_model<bigram>);

template <class S>
std::vector<std::int32_t> batches(S& s, int n, sr::index_t rows) {
    std::vector<std::int32_t> all;
    token_batch out(rows, s.seq_len());
    for (int i = 0; i < n; ++i) {
        s.draw(out.view());
        all.insert(all.end(), out.ids.begin(), out.ids.end());
    }
    return all;
}

sr::self_generated_options opts(sr::index_t k) {
    return {.prompts = {{3}, {4, 1}}, .weights = {3.0, 1.0}, .batch_size = 8, .seq_len = 6, .buffer_batches = k, .seed = 42};
}

} // namespace

TEST_CASE("self_generated rows start with the prompts split by weight within each batch") {
    bigram m;
    sr::self_generated src(m, opts(2));
    static_assert(sr::replay_source<decltype(src)> && sr::saveable<decltype(src)>);
    token_batch out(8, 6);
    for (int b = 0; b < 5; ++b) {
        src.draw(out.view());
        for (sr::index_t r = 0; r < 8; ++r) {
            if (r < 6) {
                REQUIRE(out(r, 0) == 3);
            } else {
                REQUIRE(out(r, 0) == 4);
                REQUIRE(out(r, 1) == 1);
            }
            for (sr::index_t t = 0; t < 6; ++t) REQUIRE((out(r, t) >= 0 && out(r, t) < bigram::V));
        }
    }
    CHECK(src.rows_drawn() == 40);
    CHECK(src.generate_calls() == 3); // blocks of 2 batches: 5 batches need 3 blocks
}

TEST_CASE("self_generated generates k batches ahead in one call") {
    bigram m;
    sr::self_generated src(m, opts(4));
    token_batch out(8, 6);
    src.draw(out.view());
    const int calls_after_first = m.calls;
    CHECK(calls_after_first > 0);
    for (int b = 0; b < 3; ++b) src.draw(out.view());
    CHECK(m.calls == calls_after_first); // batches 2..4 came from the buffer
    src.draw(out.view());
    CHECK(m.calls > calls_after_first);
    CHECK(src.generate_calls() == 2);
}

TEST_CASE("self_generated draws do not depend on the block size or on how rows are requested") {
    bigram m1, m2, m3;
    sr::self_generated a(m1, opts(1)), b(m2, opts(5));
    const auto x = batches(a, 12, 8), y = batches(b, 12, 8);
    CHECK(x == y);
    sr::self_generated c(m3, opts(3));
    CHECK(batches(c, 24, 4) == x); // half batches, same rows in the same order
}

TEST_CASE("self_generated samples the model's distribution (chi-square, alpha = 0.001)") {
    // The token after prompt {3} follows softmax(logits(3)) (temperature 1, plain sampling).
    bigram m;
    sr::self_generated src(m, {.prompts = {{3}}, .batch_size = 64, .seq_len = 2, .buffer_batches = 4, .seed = 1});
    std::vector<double> counts(bigram::V, 0.0), p(bigram::V);
    double z = 0;
    for (sr::index_t v = 0; v < bigram::V; ++v) z += p[static_cast<std::size_t>(v)] = std::exp(static_cast<float>((4 * (v + 2)) % 7) * 0.4f);
    token_batch out(64, 2);
    for (int b = 0; b < 160; ++b) {
        src.draw(out.view());
        for (sr::index_t r = 0; r < 64; ++r) counts[static_cast<std::size_t>(out(r, 1))] += 1;
    }
    double stat = 0;
    for (std::size_t v = 0; v < counts.size(); ++v) {
        const double e = 160 * 64 * p[v] / z;
        stat += (counts[v] - e) * (counts[v] - e) / e;
    }
    CHECK(stat < 18.467); // chi-square(4) at 0.001
}

TEST_CASE("self_generated save/restore reproduces the next 100 batches exactly") {
    for (int consumed : {0, 3, 4, 7}) { // at, inside and at the end of a block of 4 batches
        bigram m1, m2;
        sr::self_generated a(m1, opts(4));
        batches(a, consumed, 8);
        const auto image = sr::state_bytes(a);
        const auto expected = batches(a, 100, 8);
        sr::self_generated b(m2, opts(4));
        batches(b, 2, 8); // a different position, overwritten by the restore
        sr::restore_state_bytes(image, "memory", b);
        INFO("batches consumed before saving: " << consumed);
        CHECK(b.rows_drawn() == std::uint64_t(consumed) * 8); // before the block is regenerated
        CHECK(batches(b, 100, 8) == expected);
    }
    bigram m;
    sr::self_generated a(m, opts(4));
    sr::self_generated other(m, {.prompts = {{3}, {4, 1}}, .batch_size = 8, .seq_len = 6, .buffer_batches = 4, .seed = 43});
    CHECK_THROWS_WITH(sr::restore_state_bytes(sr::state_bytes(a), "s.bin", other), Catch::Contains("other settings"));
}

TEST_CASE("self_generated refuses bad settings") {
    bigram m;
    auto o = opts(2);
    o.prompts = {{3}, {5}};
    CHECK_THROWS_WITH(sr::self_generated(m, o), Catch::Contains("'prompts'") && Catch::Contains("holds id 5") &&
                                                    Catch::Contains("outside the model's vocabulary [0, 5)"));
    o.prompts = {{-1}};
    CHECK_THROWS_WITH(sr::self_generated(m, o), Catch::Contains("holds id -1"));
    o = opts(2);
    o.prompts = {{}};
    o.weights = {};
    CHECK_THROWS_WITH(sr::self_generated(m, o), Catch::Contains("has length 0"));
    o = opts(2);
    o.prompts = {};
    o.weights = {};
    CHECK_THROWS_WITH(sr::self_generated(m, o), Catch::Contains("at least one prompt"));
    o = opts(2);
    o.weights = {1.0};
    CHECK_THROWS_WITH(sr::self_generated(m, o), Catch::Contains("'weights'") && Catch::Contains("one weight per prompt"));
    // the processors' parameters, at construction rather than at the first draw (docs/design.md, "Validation")
    CHECK_THROWS_WITH(sr::self_generated(m, opts(2), sr::top_p{.p = 1.5f}),
                      Catch::Contains("selfreplay::top_p: argument 'p' must be in (0, 1], got 1.5"));
    CHECK_THROWS_WITH(sr::self_generated(m, opts(2), sr::temperature{.t = 0.5f} | sr::top_p{.p = 0.0f}),
                      Catch::Contains("selfreplay::top_p: argument 'p' must be in (0, 1], got 0"));
    CHECK_NOTHROW(sr::self_generated(m, opts(2), sr::temperature{.t = 0.5f} | sr::top_p{.p = 0.9f}));
    o = opts(2);
    o.weights = {1.0, -2.0};
    CHECK_THROWS_WITH(sr::self_generated(m, o), Catch::Contains("non-negative"));
    o = opts(2);
    o.batch_size = 0;
    CHECK_THROWS_WITH(sr::self_generated(m, o), Catch::Contains("'batch_size'"));
    o = opts(0);
    CHECK_THROWS_WITH(sr::self_generated(m, o), Catch::Contains("'buffer_batches'"));
    sr::self_generated ok(m, opts(1));
    token_batch wrong(8, 5);
    CHECK_THROWS_WITH(ok.draw(wrong.view()), Catch::Contains("seq_len = 6, got 5"));
}

namespace {

// A model whose logits depend on the last token and on the prefix length (its position).
struct positional_bigram {
    static constexpr sr::index_t V = 5;
    sr::index_t vocab_size() const { return V; }
    void next_token_logits(sr::strided_view<const std::int32_t, 2> prefixes, sr::strided_view<float, 2> logits) {
        const sr::index_t L = prefixes.extent(1);
        for (sr::index_t b = 0; b < prefixes.extent(0); ++b)
            for (sr::index_t v = 0; v < V; ++v)
                logits(b, v) = static_cast<float>(std::cos(0.3 * double((prefixes(b, L - 1) + 2) * (v + 1)) + 0.7 * double(L)));
    }
};

// pi's logits after tokens 0..t of each row of `rows`, computed row by row ([rows * T, V]).
std::vector<float> reference_logits(const token_batch& rows) {
    positional_bigram m;
    std::vector<float> all(static_cast<std::size_t>(rows.rows * rows.T * positional_bigram::V));
    for (sr::index_t r = 0; r < rows.rows; ++r)
        for (sr::index_t t = 0; t < rows.T; ++t)
            m.next_token_logits(sr::make_view<const std::int32_t>(rows.ids.data() + r * rows.T, {1, t + 1}),
                                sr::make_view(all.data() + (r * rows.T + t) * positional_bigram::V, {1, positional_bigram::V}));
    return all;
}

} // namespace

TEST_CASE("self_generated with keep_logits hands out pi's logits with the rows") {
    positional_bigram m;
    auto o = opts(2); // blocks of 16 rows
    o.keep_logits = true;
    const sr::index_t T = o.seq_len, V = positional_bigram::V;
    sr::self_generated with(m, o), without(m, opts(2));
    for (const sr::index_t n : {5, 8, 3, 11, 16}) { // draws inside a block and across block boundaries
        CAPTURE(n);
        token_batch rows(n, T), plain(n, T);
        std::vector<float> logits(static_cast<std::size_t>(n * T * V), -9.f);
        with.draw(rows.view(), sr::make_view(logits.data(), {n * T, V}));
        without.draw(plain.view());
        CHECK(rows.ids == plain.ids); // keeping the logits does not change the rows
        CHECK(logits == reference_logits(rows));
    }

    // sharded: each shard's logits are those of its rows
    for (sr::index_t rank = 0; rank < 3; ++rank) {
        auto os = o;
        os.shard = sr::shard_of(o.batch_size, rank, 3);
        sr::self_generated part(m, os);
        const sr::index_t n = os.shard->rows();
        token_batch rows(n, T);
        std::vector<float> logits(static_cast<std::size_t>(n * T * V));
        for (int batch = 0; batch < 3; ++batch) {
            part.draw(rows.view(), sr::make_view(logits.data(), {n * T, V}));
            CHECK(logits == reference_logits(rows));
        }
    }

    // after a restore in the middle of a block, the regenerated block's logits come back
    sr::self_generated a(m, o), b(m, o);
    token_batch rows(8, T);
    std::vector<float> logits(static_cast<std::size_t>(8 * T * V));
    a.draw(rows.view(), sr::make_view(logits.data(), {8 * T, V}));
    sr::restore_state_bytes(sr::state_bytes(a), "memory", b);
    a.draw(rows.view(), sr::make_view(logits.data(), {8 * T, V}));
    token_batch rows_b(8, T);
    std::vector<float> logits_b(logits.size());
    b.draw(rows_b.view(), sr::make_view(logits_b.data(), {8 * T, V}));
    CHECK(rows_b.ids == rows.ids);
    CHECK(logits_b == logits);

    // refusals name the argument
    CHECK_THROWS_WITH(without.draw(rows.view(), sr::make_view(logits.data(), {8 * T, V})),
                      Catch::Contains("'logits'") && Catch::Contains("keep_logits"));
    CHECK_THROWS_WITH(a.draw(rows.view(), sr::make_view(logits.data(), {8 * T - 1, V})),
                      Catch::Contains("'logits'") && Catch::Contains("[rows * seq_len, V] = [48, 5]"));
    auto huge = o;
    huge.batch_size = std::int64_t(1) << 40;
    huge.seq_len = std::int64_t(1) << 20;
    huge.prompts = {{1}};
    huge.weights = {};
    CHECK_THROWS_WITH(sr::self_generated(m, huge), Catch::Contains("'keep_logits'") && Catch::Contains("beyond any allocation"));
}
