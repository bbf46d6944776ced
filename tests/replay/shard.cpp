// Sharded sources: P ranks, each drawing its `shard_of` the global batch, together draw exactly
// the rows one unsharded source draws, batch after batch, for P = 1..4 (and more ranks than rows);
// bad shard arguments are refused with errors naming them.

#include <catch2/catch.hpp>
#include <functional>
#include <type_traits>
#include <vector>

#include "selfreplay/replay.hpp"
#include "selfreplay/sampling.hpp"
#include "support.hpp"

namespace sr = selfreplay;
using replay_test::numbered_rows;
using replay_test::token_batch;

namespace {

// A model whose logits for a row depend on that row's whole prefix (not only the last token).
struct prefix_model {
    static constexpr sr::index_t V = 7;
    sr::index_t vocab_size() const { return V; }
    void next_token_logits(sr::strided_view<const std::int32_t, 2> prefixes, sr::strided_view<float, 2> logits) {
        for (sr::index_t b = 0; b < prefixes.extent(0); ++b) {
            std::int32_t h = 0;
            for (sr::index_t t = 0; t < prefixes.extent(1); ++t) h = (h * 31 + prefixes(b, t)) % 97;
            for (sr::index_t v = 0; v < V; ++v) logits(b, v) = static_cast<float>((h * (v + 3)) % 11) * 0.3f;
        }
    }
};

// `batches` global batches of `batch` rows, drawn by `ranks` ranks with their shards and put
// together in rank order; draw(r, out, shard) draws rank r's shard.
std::vector<std::int32_t> assembled(int ranks, int batches, sr::index_t batch, sr::index_t T,
                                    const std::function<void(int, token_batch&, sr::row_shard)>& draw) {
    std::vector<std::int32_t> all;
    for (int j = 0; j < batches; ++j)
        for (int r = 0; r < ranks; ++r) {
            const auto shard = sr::shard_of(batch, r, ranks);
            token_batch out(shard.rows(), T);
            draw(r, out, shard);
            all.insert(all.end(), out.ids.begin(), out.ids.end());
        }
    return all;
}

template <class S>
std::vector<std::int32_t> unsharded(S& s, int batches, sr::index_t batch) {
    std::vector<std::int32_t> all;
    token_batch out(batch, s.seq_len());
    for (int j = 0; j < batches; ++j) {
        s.draw(out.view());
        all.insert(all.end(), out.ids.begin(), out.ids.end());
    }
    return all;
}

} // namespace

TEST_CASE("shard_of: contiguous ranges in rank order covering the batch, sizes within one") {
    for (sr::index_t batch : {0, 1, 7, 64})
        for (sr::index_t ranks = 1; ranks <= 9; ++ranks) {
            sr::index_t next = 0;
            for (sr::index_t r = 0; r < ranks; ++r) {
                const auto s = sr::shard_of(batch, r, ranks);
                CHECK(s.begin == next);
                CHECK((s.rows() == batch / ranks || s.rows() == batch / ranks + 1));
                CHECK(s.rows() == batch / ranks + (r < batch % ranks ? 1 : 0));
                next = s.end;
            }
            CHECK(next == batch);
        }
    CHECK(sr::shard_of(10, 1, 4) == sr::row_shard{3, 6});
    CHECK_THROWS_WITH(sr::shard_of(8, 0, 0), Catch::Contains("shard_of: argument 'ranks' must be at least 1, got 0"));
    CHECK_THROWS_WITH(sr::shard_of(8, 2, 2), Catch::Contains("shard_of: argument 'rank' must be in [0, ranks = 2), got 2"));
    CHECK_THROWS_WITH(sr::shard_of(-1, 0, 2), Catch::Contains("shard_of: argument 'batch' must be >= 0, got -1"));
}

TEST_CASE("self_generated: the shards of P ranks are the unsharded batches, bit for bit") {
    prefix_model m;
    const sr::self_generated_options base{.prompts = {{1}, {2, 5}, {3}}, .weights = {2.0, 1.0, 1.5}, .batch_size = 7,
                                          .seq_len = 6, .buffer_batches = 3, .seed = 99};
    sr::self_generated one(m, base);
    const auto want = unsharded(one, 8, base.batch_size);
    for (int ranks : {1, 2, 3, 4, 9}) {
        std::vector<sr::self_generated<prefix_model>> rank_sources;
        for (int r = 0; r < ranks; ++r) {
            auto o = base;
            o.shard = sr::shard_of(base.batch_size, r, ranks);
            rank_sources.emplace_back(m, o);
        }
        const auto got = assembled(ranks, 8, base.batch_size, base.seq_len,
                                   [&](int r, token_batch& out, sr::row_shard) { rank_sources[std::size_t(r)].draw(out.view()); });
        CHECK(got == want);
    }
}

TEST_CASE("self_generated: a shard is refused unless 0 <= begin <= end <= batch_size; an empty shard draws nothing") {
    prefix_model m;
    sr::self_generated_options o{.prompts = {{1}}, .batch_size = 4, .seq_len = 3, .seed = 1};
    o.shard = sr::row_shard{3, 2};
    CHECK_THROWS_WITH(sr::self_generated(m, o), Catch::Contains("self_generated: argument 'shard' has begin 3 > end 2"));
    o.shard = sr::row_shard{1, 5};
    CHECK_THROWS_WITH(sr::self_generated(m, o), Catch::Contains("argument 'shard' has end 5 beyond the batch of 4 rows"));
    o.shard = sr::row_shard{-1, 2};
    CHECK_THROWS_WITH(sr::self_generated(m, o), Catch::Contains("argument 'shard' has begin -1, which must be >= 0"));
    o.shard = sr::row_shard{2, 2};
    sr::self_generated empty(m, o);
    token_batch none(0, 3), one(1, 3);
    empty.draw(none.view());
    CHECK_THROWS_WITH(empty.draw(one.view()), Catch::Contains("whose shard holds no row"));
}

TEST_CASE("stored buffers: sharded draws put together are the unsharded draws, for P = 1..4") {
    const sr::index_t T = 3, batch = 10;
    const auto rows = numbered_rows(0, 40, T);
    sr::reservoir_buffer reservoir({.capacity = 16, .seq_len = T, .seed = 5});
    sr::ring_buffer ring({.capacity = 12, .seq_len = T, .seed = 6});
    sr::task_balanced_buffer balanced({.capacity = 15, .seq_len = T, .seed = 7});
    reservoir.add(rows.view());
    ring.add(rows.view());
    balanced.add(numbered_rows(0, 20, T).view(), 0);
    balanced.add(numbered_rows(100, 20, T).view(), 1);
    auto check_buffer = [&](auto& buffer) {
        auto copy = buffer;
        const auto want = unsharded(copy, 6, batch);
        for (int ranks = 1; ranks <= 4; ++ranks) {
            std::vector<std::decay_t<decltype(buffer)>> per_rank(std::size_t(ranks), buffer);
            const auto got = assembled(ranks, 6, batch, T, [&](int r, token_batch& out, sr::row_shard s) {
                per_rank[std::size_t(r)].draw(out.view(), batch, s);
            });
            CHECK(got == want);
        }
    };
    check_buffer(reservoir);
    check_buffer(ring);
    check_buffer(balanced);
}

TEST_CASE("weighted_mixture: sharded draws put together are the unsharded draws, for P = 1..4") {
    const sr::index_t T = 3, batch = 9;
    sr::reservoir_buffer reservoir({.capacity = 16, .seq_len = T, .seed = 5});
    sr::ring_buffer ring({.capacity = 12, .seq_len = T, .seed = 6});
    reservoir.add(numbered_rows(0, 30, T).view());
    ring.add(numbered_rows(200, 30, T).view());
    static_assert(sr::sharded_replay_source<sr::weighted_mixture<sr::reservoir_buffer, sr::ring_buffer>>);
    sr::weighted_mixture whole({2.0, 1.0}, reservoir, ring);
    const auto want = unsharded(whole, 7, batch);
    for (int ranks = 1; ranks <= 4; ++ranks) {
        std::vector<sr::weighted_mixture<sr::reservoir_buffer, sr::ring_buffer>> per_rank;
        for (int r = 0; r < ranks; ++r)
            per_rank.push_back(sr::weighted_mixture<sr::reservoir_buffer, sr::ring_buffer>({2.0, 1.0}, reservoir, ring));
        const auto got = assembled(ranks, 7, batch, T, [&](int r, token_batch& out, sr::row_shard s) {
            per_rank[std::size_t(r)].draw(out.view(), batch, s);
        });
        CHECK(got == want);
    }
}

TEST_CASE("sharded draws refuse bad shards and outputs, naming the argument") {
    const sr::index_t T = 2;
    sr::reservoir_buffer reservoir({.capacity = 4, .seq_len = T, .seed = 1});
    reservoir.add(numbered_rows(0, 4, T).view());
    token_batch out(2, T);
    CHECK_THROWS_WITH(reservoir.draw(out.view(), 8, sr::row_shard{5, 3}),
                      Catch::Contains("reservoir_buffer::draw: argument 'shard' has begin 5 > end 3"));
    CHECK_THROWS_WITH(reservoir.draw(out.view(), 8, sr::row_shard{7, 9}),
                      Catch::Contains("reservoir_buffer::draw: argument 'shard' has end 9 beyond the batch of 8 rows"));
    CHECK_THROWS_WITH(reservoir.draw(out.view(), 8, sr::row_shard{0, 3}),
                      Catch::Contains("reservoir_buffer::draw: argument 'out' has 2 rows but the shard has 3"));
    sr::task_balanced_buffer balanced({.capacity = 4, .seq_len = T, .seed = 1});
    balanced.add(numbered_rows(0, 4, T).view(), 0);
    CHECK_THROWS_WITH(balanced.draw(out.view(), 1, sr::row_shard{0, 2}),
                      Catch::Contains("task_balanced_buffer::draw: argument 'shard' has end 2 beyond the batch of 1 rows"));
    sr::weighted_mixture mix({1.0}, reservoir);
    CHECK_THROWS_WITH(mix.draw(out.view(), -1, sr::row_shard{0, 0}),
                      Catch::Contains("weighted_mixture::draw: argument 'batch' must be >= 0, got -1"));
    CHECK_THROWS_WITH(mix.draw(out.view(), 4, sr::row_shard{3, 1}),
                      Catch::Contains("weighted_mixture::draw: argument 'shard' has begin 3 > end 1"));
}
