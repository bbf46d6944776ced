// Stored-exemplar buffers: reservoir uniformity (chi-square), task-balanced quotas under any
// arrival order, ring contents, draws, errors.

#include <algorithm>
#include <catch2/catch.hpp>
#include <numeric>
#include <map>
#include <set>

#include "selfreplay/replay.hpp"
#include "support.hpp"

namespace sr = selfreplay;
using replay_test::numbered_rows;
using replay_test::token_batch;

// Chi-square critical values at significance 0.001 (upper tail), by degrees of freedom.
constexpr double chi2_999_df19 = 43.820;
constexpr double chi2_999_df9 = 27.877;

TEST_CASE("reservoir_buffer keeps every sequence until full, then a uniform subset (chi-square, alpha = 0.001)") {
    // N = 20 items streamed into capacity k = 5, M = 20000 independent seeds: item i's inclusion
    // count is compared with M k / N. Under H0 the statistic is chi-square(19); we reject at 0.001.
    const sr::index_t N = 20, k = 5, T = 3;
    const int M = 20000;
    const auto stream = numbered_rows(0, N, T);
    std::vector<double> counts(N, 0.0);
    for (int seed = 0; seed < M; ++seed) {
        sr::reservoir_buffer buf({.capacity = k, .seq_len = T, .seed = static_cast<std::uint64_t>(seed)});
        // stream in uneven chunks: the result must not depend on how rows are grouped into add() calls
        buf.add(sr::make_view(stream.ids.data(), {7, T}));
        buf.add(sr::make_view(stream.ids.data() + 7 * T, {13, T}));
        REQUIRE(buf.size() == k);
        std::set<std::int32_t> kept;
        for (sr::index_t i = 0; i < k; ++i) {
            const std::int32_t* s = buf.sequence(i);
            REQUIRE(std::all_of(s, s + T, [&](std::int32_t x) { return x == s[0]; }));
            kept.insert(s[0]);
            counts[static_cast<std::size_t>(s[0])] += 1;
        }
        REQUIRE(kept.size() == static_cast<std::size_t>(k)); // distinct items
    }
    const double stat = replay_test::subset_chi_square(counts, M, k);
    INFO("chi-square = " << stat);
    CHECK(stat < chi2_999_df19);

    // The statistic detects a biased buffer: "keep the first k" scores far above the bound.
    std::vector<double> biased(N, 0.0);
    for (sr::index_t i = 0; i < k; ++i) biased[static_cast<std::size_t>(i)] = M;
    CHECK(replay_test::subset_chi_square(biased, M, k) > 100 * chi2_999_df19);
}

TEST_CASE("reservoir_buffer before it is full keeps all sequences in order") {
    sr::reservoir_buffer buf({.capacity = 10, .seq_len = 2, .seed = 1});
    auto rows = numbered_rows(100, 6, 2);
    buf.add(rows.view());
    REQUIRE(buf.size() == 6);
    REQUIRE(buf.seen() == 6);
    for (sr::index_t i = 0; i < 6; ++i) CHECK(buf.sequence(i)[0] == 100 + i);
}

TEST_CASE("reservoir_buffer draws are uniform over stored sequences (chi-square, alpha = 0.001)") {
    sr::reservoir_buffer buf({.capacity = 10, .seq_len = 2, .seed = 3});
    buf.add(numbered_rows(0, 10, 2).view());
    std::vector<double> counts(10, 0.0);
    token_batch out(50, 2);
    for (int b = 0; b < 400; ++b) {
        buf.draw(out.view());
        for (sr::index_t r = 0; r < 50; ++r) {
            REQUIRE(out(r, 0) == out(r, 1));
            counts[static_cast<std::size_t>(out(r, 0))] += 1;
        }
    }
    CHECK(replay_test::uniform_chi_square(counts) < chi2_999_df9);
}

TEST_CASE("task_balanced_buffer keeps its quotas under any arrival order") {
    // Quota of the i-th of G tasks seen: floor(C / G) + [i < C mod G]. After every single arrival,
    // each task holds min(quota, sequences seen of it), and the total never exceeds C.
    const sr::index_t C = 10, T = 2;
    const std::vector<std::int32_t> task_ids{7, 3, 11, 5};
    const std::vector<int> per_task{13, 2, 9, 30};
    for (std::uint64_t order_seed = 0; order_seed < 30; ++order_seed) {
        std::vector<std::int32_t> arrivals;
        for (std::size_t t = 0; t < task_ids.size(); ++t) arrivals.insert(arrivals.end(), static_cast<std::size_t>(per_task[t]), task_ids[t]);
        if (order_seed > 0) { // a deterministic shuffle; order 0 is "tasks one after another"
            sr::detail::index_rng rng(order_seed, 0);
            for (std::size_t i = arrivals.size(); i > 1; --i) std::swap(arrivals[i - 1], arrivals[rng.below(i)]);
        }
        sr::task_balanced_buffer buf({.capacity = C, .seq_len = T, .seed = order_seed});
        std::vector<std::int32_t> first_seen;
        std::map<std::int32_t, sr::index_t> seen;
        std::int32_t next_id = 0;
        for (std::int32_t task : arrivals) {
            auto row = numbered_rows(next_id++, 1, T);
            buf.add(row.view(), task);
            if (!seen.count(task)) first_seen.push_back(task);
            ++seen[task];
            const auto G = static_cast<sr::index_t>(first_seen.size());
            REQUIRE(buf.tasks() == first_seen);
            REQUIRE(buf.size() <= C);
            for (sr::index_t i = 0; i < G; ++i) {
                const std::int32_t t = first_seen[static_cast<std::size_t>(i)];
                const sr::index_t quota = C / G + (i < C % G ? 1 : 0);
                REQUIRE(buf.quota(t) == quota);
                REQUIRE(buf.size(t) == std::min(quota, seen[t]));
                REQUIRE(buf.seen(t) == static_cast<std::uint64_t>(seen[t]));
            }
        }
        // each stored row belongs to its task (the ids of rows are disjoint across tasks)
        std::set<std::int32_t> ids;
        for (std::int32_t t : first_seen)
            for (sr::index_t i = 0; i < buf.size(t); ++i) REQUIRE(ids.insert(buf.sequence(t, i)[0]).second);
    }
}

TEST_CASE("task_balanced_buffer: a task's reservoir stays uniform after shrinking (chi-square, alpha = 0.001)") {
    // Task 0 streams 12 sequences into capacity 6 (quota 6), then task 1 arrives (task 0's quota
    // drops to 3), then task 0 streams 12 more, interleaved with task 1: task 0's 3 kept
    // sequences must be a uniform 3-subset of its 24.
    const int M = 20000;
    std::vector<double> counts(24, 0.0);
    for (int seed = 0; seed < M; ++seed) {
        sr::task_balanced_buffer buf({.capacity = 6, .seq_len = 1, .seed = static_cast<std::uint64_t>(seed)});
        buf.add(numbered_rows(0, 12, 1).view(), 0);
        for (std::int32_t i = 12; i < 24; ++i) {
            buf.add(numbered_rows(100 + i, 1, 1).view(), 1);
            buf.add(numbered_rows(i, 1, 1).view(), 0);
        }
        REQUIRE(buf.size(0) == 3);
        for (sr::index_t i = 0; i < 3; ++i) counts[static_cast<std::size_t>(buf.sequence(0, i)[0])] += 1;
    }
    // two halves of 12: test all 24 items (df 23, critical value 49.728 at 0.001)
    CHECK(replay_test::subset_chi_square(counts, M, 3) < 49.728);
    // and the first 12 alone are not favoured or disfavoured: their share is 1/2
    const double first = std::accumulate(counts.begin(), counts.begin() + 12, 0.0);
    CHECK(std::abs(first / (3.0 * M) - 0.5) < 0.01); // sd of the share is about 0.0017
}

TEST_CASE("task_balanced_buffer: add with per-row task ids equals row-by-row adds") {
    sr::task_balanced_buffer a({.capacity = 4, .seq_len = 1, .seed = 9}), b({.capacity = 4, .seq_len = 1, .seed = 9});
    auto rows = numbered_rows(0, 20, 1);
    std::vector<std::int32_t> tasks(20);
    for (int i = 0; i < 20; ++i) tasks[static_cast<std::size_t>(i)] = i % 3;
    a.add(rows.view(), sr::make_view(tasks.data(), {20}));
    for (int i = 0; i < 20; ++i) b.add(numbered_rows(i, 1, 1).view(), i % 3);
    CHECK(sr::state_bytes(a) == sr::state_bytes(b));
}

TEST_CASE("ring_buffer keeps the most recent sequences") {
    sr::ring_buffer buf({.capacity = 4, .seq_len = 2, .seed = 0});
    buf.add(numbered_rows(0, 3, 2).view());
    REQUIRE(buf.size() == 3);
    buf.add(numbered_rows(3, 7, 2).view()); // 10 seen: keeps 6, 7, 8, 9
    REQUIRE(buf.size() == 4);
    for (sr::index_t i = 0; i < 4; ++i) CHECK(buf.sequence(i)[0] == 6 + i);
    token_batch out(200, 2);
    buf.draw(out.view());
    std::set<std::int32_t> drawn;
    for (sr::index_t r = 0; r < 200; ++r) drawn.insert(out(r, 0));
    CHECK(drawn == std::set<std::int32_t>{6, 7, 8, 9});
}

TEST_CASE("buffers: clear errors for bad settings, bad rows and empty draws") {
    token_batch out(2, 3);
    sr::reservoir_buffer r({.capacity = 2, .seq_len = 3, .seed = 0});
    sr::task_balanced_buffer t({.capacity = 2, .seq_len = 3, .seed = 0});
    sr::ring_buffer g({.capacity = 2, .seq_len = 3, .seed = 0});
    CHECK_THROWS_WITH(r.draw(out.view()), Catch::Contains("reservoir_buffer::draw") && Catch::Contains("empty buffer"));
    CHECK_THROWS_WITH(t.draw(out.view()), Catch::Contains("task_balanced_buffer::draw") && Catch::Contains("empty buffer"));
    CHECK_THROWS_WITH(g.draw(out.view()), Catch::Contains("ring_buffer::draw") && Catch::Contains("empty buffer"));
    CHECK_THROWS_WITH(sr::reservoir_buffer({.capacity = 0, .seq_len = 3}), Catch::Contains("'capacity'"));
    CHECK_THROWS_WITH(sr::ring_buffer({.capacity = 1, .seq_len = 0}), Catch::Contains("'seq_len'"));
    CHECK_THROWS_WITH(sr::task_balanced_buffer({.capacity = -1, .seq_len = 1}), Catch::Contains("got -1"));
    token_batch wrong(2, 4);
    CHECK_THROWS_WITH(r.add(wrong.view()), Catch::Contains("seq_len = 3, got 4"));
    r.add(numbered_rows(0, 2, 3).view());
    CHECK_THROWS_WITH(r.draw(wrong.view()), Catch::Contains("'out'") && Catch::Contains("got 4"));
    auto negative = numbered_rows(-1, 1, 3);
    CHECK_THROWS_WITH(g.add(negative.view()), Catch::Contains("negative token id -1"));
}
