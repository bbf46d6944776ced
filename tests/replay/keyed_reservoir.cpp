// keyed_reservoir: the buffer that P ranks build from their shards of a stream and merge, in any
// order, equals the buffer of one process fed the whole stream (contents, order, later draws), for
// P = 1..4; its contents are a uniform subset (chi-square); merges are unions; errors.

#include <catch2/catch.hpp>
#include <algorithm>
#include <random>
#include <vector>

#include "selfreplay/replay.hpp"
#include "support.hpp"

namespace sr = selfreplay;
using replay_test::numbered_rows;
using replay_test::token_batch;

namespace {

std::vector<std::int32_t> contents(const sr::keyed_reservoir& b) {
    std::vector<std::int32_t> all;
    for (sr::index_t i = 0; i < b.size(); ++i) all.insert(all.end(), b.sequence(i), b.sequence(i) + b.seq_len());
    return all;
}

std::vector<std::int32_t> draws(sr::keyed_reservoir b, int n, sr::index_t rows) {
    std::vector<std::int32_t> all;
    token_batch out(rows, b.seq_len());
    for (int i = 0; i < n; ++i) {
        b.draw(out.view());
        all.insert(all.end(), out.ids.begin(), out.ids.end());
    }
    return all;
}

} // namespace

TEST_CASE("keyed_reservoir: shards added on P ranks and merged in any order equal one process") {
    const sr::keyed_reservoir_options o{.capacity = 24, .seq_len = 3, .seed = 17};
    const sr::index_t batch = 10, batches = 12;
    sr::keyed_reservoir one(o);
    for (sr::index_t j = 0; j < batches; ++j) one.add(numbered_rows(std::int32_t(j * batch), batch, 3).view(), std::uint64_t(j * batch));
    REQUIRE(one.size() == 24);
    REQUIRE(one.seen() == 120);
    std::mt19937_64 rng{5};
    for (int ranks = 1; ranks <= 4; ++ranks) {
        std::vector<sr::keyed_reservoir> per_rank(std::size_t(ranks), sr::keyed_reservoir{o});
        for (sr::index_t j = 0; j < batches; ++j)
            for (int r = 0; r < ranks; ++r) {
                const auto s = sr::shard_of(batch, r, ranks);
                per_rank[std::size_t(r)].add(numbered_rows(std::int32_t(j * batch + s.begin), s.rows(), 3).view(),
                                             std::uint64_t(j * batch + s.begin));
            }
        std::shuffle(per_rank.begin(), per_rank.end(), rng);
        sr::keyed_reservoir merged = per_rank[0];
        for (std::size_t r = 1; r < per_rank.size(); ++r) merged.merge(per_rank[r]);
        CHECK(contents(merged) == contents(one));
        CHECK(merged.seen() == one.seen());
        CHECK(draws(merged, 5, 7) == draws(one, 5, 7));
        // a tree of merges: (0 + 1) + (2 + 3)
        if (ranks == 4) {
            auto left = per_rank[0], right = per_rank[2];
            left.merge(per_rank[1]);
            right.merge(per_rank[3]);
            right.merge(left);
            CHECK(contents(right) == contents(one));
        }
    }
    // Merging is a union: a buffer merged with a copy of itself or with overlapping ids is unchanged.
    auto twice = one;
    twice.merge(sr::keyed_reservoir(one));
    CHECK(contents(twice) == contents(one));
    // The stored order is by key: the ids are not simply the smallest or the last ones.
    std::vector<std::uint64_t> ids;
    for (sr::index_t i = 0; i < one.size(); ++i) ids.push_back(one.id(i));
    CHECK_FALSE(std::is_sorted(ids.begin(), ids.end()));
}

TEST_CASE("keyed_reservoir: the contents are a uniform subset (Pearson chi-square)") {
    // 20 items, capacity 5, 20,000 seeds: inclusion counts against k/N each.
    const int N = 20, k = 5, M = 20000;
    std::vector<double> counts(N, 0.0);
    for (int seed = 0; seed < M; ++seed) {
        sr::keyed_reservoir b({.capacity = k, .seq_len = 1, .seed = std::uint64_t(seed)});
        b.add(numbered_rows(0, N, 1).view(), 0);
        for (sr::index_t i = 0; i < b.size(); ++i) counts[std::size_t(*b.sequence(i))] += 1;
    }
    // chi-square with 19 degrees of freedom: 43.82 at significance 0.001
    CHECK(replay_test::subset_chi_square(counts, M, k) < 43.82);
}

TEST_CASE("keyed_reservoir: bad settings, rows, ids and merges are refused") {
    CHECK_THROWS_WITH(sr::keyed_reservoir({.capacity = 0, .seq_len = 2}), Catch::Contains("keyed_reservoir: argument 'capacity'"));
    sr::keyed_reservoir b({.capacity = 4, .seq_len = 2, .seed = 1});
    token_batch empty(1, 2);
    CHECK_THROWS_WITH(b.draw(empty.view()), Catch::Contains("keyed_reservoir::draw: argument 'this' is an empty buffer"));
    CHECK_THROWS_WITH(b.add(numbered_rows(0, 3, 2).view(), UINT64_MAX - 1),
                      Catch::Contains("keyed_reservoir::add: argument 'first_id' leaves ids beyond 2^64 - 1"));
    CHECK_THROWS_WITH(b.add(numbered_rows(0, 3, 3).view(), 0), Catch::Contains("argument 'tokens' must have rows of length"));
    CHECK_THROWS_WITH(b.merge(sr::keyed_reservoir({.capacity = 4, .seq_len = 2, .seed = 2})),
                      Catch::Contains("keyed_reservoir::merge: argument 'other' has other settings"));
    b.add(numbered_rows(0, 3, 2).view(), 0);
    token_batch out(2, 2);
    CHECK_THROWS_WITH(b.draw(out.view(), 4, sr::row_shard{3, 2}), Catch::Contains("argument 'shard' has begin 3 > end 2"));
}
