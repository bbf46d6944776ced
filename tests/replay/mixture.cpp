// weighted_mixture: apportionment of rows over sources, references, errors, resumption.

#include <catch2/catch.hpp>
#include <cmath>
#include <functional>

#include "selfreplay/replay.hpp"
#include "support.hpp"

namespace sr = selfreplay;
using replay_test::numbered_rows;
using replay_test::token_batch;

namespace {
struct no_draw {
    sr::index_t seq_len() const { return 1; }
};
} // namespace
static_assert(!sr::replay_source<int> && !sr::replay_source<no_draw>);
static_assert(sr::replay_source<sr::reservoir_buffer> && sr::replay_source<sr::task_balanced_buffer> && sr::replay_source<sr::ring_buffer>);
static_assert(sr::saveable<sr::reservoir_buffer> && sr::saveable<sr::task_balanced_buffer> && sr::saveable<sr::ring_buffer>);

TEST_CASE("weighted_mixture splits rows by weight, within one row of the exact share at every batch") {
    sr::ring_buffer a({.capacity = 4, .seq_len = 1, .seed = 1}), b({.capacity = 4, .seq_len = 1, .seed = 2}),
        c({.capacity = 4, .seq_len = 1, .seed = 3});
    a.add(numbered_rows(0, 1, 1).view()); // every row of a is 0, of b is 1, of c is 2
    b.add(numbered_rows(1, 1, 1).view());
    c.add(numbered_rows(2, 1, 1).view());
    sr::weighted_mixture mix({0.5, 0.3, 0.2}, std::ref(a), std::ref(b), std::ref(c));
    static_assert(sr::replay_source<decltype(mix)>);
    const double w[3] = {0.5, 0.3, 0.2};
    double total[3] = {0, 0, 0};
    token_batch out(7, 1);
    for (int batch = 1; batch <= 200; ++batch) {
        mix.draw(out.view());
        // rows grouped by source, in source order
        for (sr::index_t r = 1; r < 7; ++r) REQUIRE(out(r, 0) >= out(r - 1, 0));
        for (sr::index_t r = 0; r < 7; ++r) total[out(r, 0)] += 1;
        for (int i = 0; i < 3; ++i) REQUIRE(std::abs(total[i] - w[i] * 7 * batch) < 1.0 + 1e-9);
    }
}

TEST_CASE("weighted_mixture holds references made with std::ref and copies otherwise") {
    sr::reservoir_buffer buf({.capacity = 4, .seq_len = 2, .seed = 1});
    sr::weighted_mixture by_ref({1.0}, std::ref(buf));
    sr::weighted_mixture by_value({1.0}, buf);
    buf.add(numbered_rows(3, 2, 2).view()); // visible through the reference only
    token_batch out(2, 2);
    by_ref.draw(out.view());
    CHECK((out(0, 0) == 3 || out(0, 0) == 4));
    CHECK_THROWS_WITH(by_value.draw(out.view()), Catch::Contains("empty buffer"));
    CHECK(&by_ref.source<0>() == &buf);
}

TEST_CASE("weighted_mixture: a zero-weight empty source is never asked; errors") {
    sr::ring_buffer full({.capacity = 4, .seq_len = 2}), empty({.capacity = 4, .seq_len = 2});
    full.add(numbered_rows(0, 4, 2).view());
    sr::weighted_mixture mix({1.0, 0.0}, std::ref(full), std::ref(empty));
    token_batch out(5, 2);
    CHECK_NOTHROW(mix.draw(out.view()));
    sr::weighted_mixture both({1.0, 1.0}, std::ref(full), std::ref(empty));
    CHECK_THROWS_WITH(both.draw(out.view()), Catch::Contains("empty buffer"));

    sr::ring_buffer other_len({.capacity = 4, .seq_len = 3});
    CHECK_THROWS_WITH(sr::weighted_mixture({1.0, 1.0}, std::ref(full), std::ref(other_len)),
                      Catch::Contains("same seq_len") && Catch::Contains("source 1 has 3"));
    CHECK_THROWS_WITH(sr::weighted_mixture({-1.0, 1.0}, std::ref(full), std::ref(full)), Catch::Contains("non-negative"));
    CHECK_THROWS_WITH(sr::weighted_mixture({0.0, 0.0}, std::ref(full), std::ref(full)), Catch::Contains("positive weight"));
    CHECK_THROWS_WITH(sr::weighted_mixture({NAN, 1.0}, std::ref(full), std::ref(full)), Catch::Contains("finite"));
}

TEST_CASE("weighted_mixture save/restore reproduces the next 100 batches") {
    auto make = [] {
        sr::reservoir_buffer a({.capacity = 8, .seq_len = 3, .seed = 1});
        sr::ring_buffer b({.capacity = 8, .seq_len = 3, .seed = 2});
        a.add(numbered_rows(0, 20, 3).view());
        b.add(numbered_rows(100, 20, 3).view());
        return sr::weighted_mixture({2.0, 1.0}, std::move(a), std::move(b));
    };
    auto mix = make();
    token_batch out(5, 3);
    for (int i = 0; i < 3; ++i) mix.draw(out.view());
    const auto image = sr::state_bytes(mix);
    std::vector<std::int32_t> expected, got;
    for (int i = 0; i < 100; ++i) {
        mix.draw(out.view());
        expected.insert(expected.end(), out.ids.begin(), out.ids.end());
    }
    auto resumed = make();
    sr::restore_state_bytes(image, "memory", resumed);
    for (int i = 0; i < 100; ++i) {
        resumed.draw(out.view());
        got.insert(got.end(), out.ids.begin(), out.ids.end());
    }
    CHECK(got == expected);
}
