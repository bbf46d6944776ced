// keyed_task_balanced_buffer: P = 1..4 ranks fed their shards of an interleaved multi-task stream
// and merged in any order (or as a tree) hold exactly the buffer a brute-force single-process
// computation gives (per task in ascending id order: quota floor(C / G) + [i < C mod G], the
// quota smallest (key, id) of every id offered for it), and draw what one process draws; quotas;
// a uniform subset per task (chi-square); errors.

#include <catch2/catch.hpp>
#include <algorithm>
#include <map>
#include <random>
#include <tuple>
#include <vector>

#include "selfreplay/replay.hpp"
#include "support.hpp"

namespace sr = selfreplay;
using replay_test::numbered_rows;
using replay_test::token_batch;

namespace {

// The task of global row g of the stream: tasks 7, 5, 2 and -1 appear in that order (not id
// order), interleaved; task 5 has only 3 rows (fewer than its quota), task -1 appears last.
std::int32_t task_of(std::int64_t g) {
    if (g == 17 || g == 55 || g == 90) return 5;
    if (g >= 100) return g % 2 ? -1 : 2;
    if (g < 20) return 7;
    return g % 3 ? 7 : 2;
}

// One buffer's contents: per known task (ascending), its ids and tokens in stored order.
using contents_t = std::map<std::int32_t, std::vector<std::pair<std::uint64_t, std::vector<std::int32_t>>>>;

contents_t contents(const sr::keyed_task_balanced_buffer& b) {
    contents_t c;
    for (std::int32_t t : b.tasks())
        for (sr::index_t i = 0; i < b.size(t); ++i)
            c[t].emplace_back(b.id(t, i), std::vector<std::int32_t>(b.sequence(t, i), b.sequence(t, i) + b.seq_len()));
    return c;
}

// The brute-force reference: rows `ids` (row g holds id g at every position) of tasks task_of(g),
// per task sorted by (key, id), key = first word of counter_rng{seed, ingest stream of the id},
// cut to the quota of the task's rank in ascending id order.
contents_t reference(const std::vector<std::uint64_t>& ids, sr::index_t capacity, sr::index_t T, std::uint64_t seed) {
    std::map<std::int32_t, std::vector<std::tuple<std::uint64_t, std::uint64_t>>> per_task;
    for (std::uint64_t id : ids) {
        sr::counter_rng rng{.seed = seed, .stream = sr::detail::stream_id(sr::detail::replay_stream::ingest, id)};
        per_task[task_of(static_cast<std::int64_t>(id))].emplace_back(rng.next_u64(), id);
    }
    const auto G = static_cast<sr::index_t>(per_task.size());
    contents_t c;
    sr::index_t i = 0;
    for (auto& [task, keyed] : per_task) {
        const sr::index_t quota = capacity / G + (i++ < capacity % G ? 1 : 0);
        std::sort(keyed.begin(), keyed.end());
        keyed.erase(std::unique(keyed.begin(), keyed.end()), keyed.end());
        auto& held = c[task];
        for (sr::index_t k = 0; k < std::min<sr::index_t>(quota, static_cast<sr::index_t>(keyed.size())); ++k) {
            const auto id = std::get<1>(keyed[static_cast<std::size_t>(k)]);
            held.emplace_back(id, std::vector<std::int32_t>(static_cast<std::size_t>(T), static_cast<std::int32_t>(id)));
        }
    }
    return c;
}

// Adds rows [begin, end) of the stream (a tensor of task ids per row).
void add_rows(sr::keyed_task_balanced_buffer& b, std::int64_t begin, std::int64_t end) {
    std::vector<std::int32_t> tasks;
    for (std::int64_t g = begin; g < end; ++g) tasks.push_back(task_of(g));
    const auto rows = numbered_rows(static_cast<std::int32_t>(begin), static_cast<sr::index_t>(end - begin), b.seq_len());
    b.add(rows.view(), sr::make_view(tasks.data(), {static_cast<sr::index_t>(tasks.size())}), static_cast<std::uint64_t>(begin));
}

std::vector<std::int32_t> draws(sr::keyed_task_balanced_buffer b, int n, sr::index_t rows) {
    std::vector<std::int32_t> all;
    token_batch out(rows, b.seq_len());
    for (int i = 0; i < n; ++i) {
        b.draw(out.view());
        all.insert(all.end(), out.ids.begin(), out.ids.end());
    }
    return all;
}

} // namespace

TEST_CASE("keyed_task_balanced_buffer: shards added on P ranks and merged in any order equal the brute-force buffer") {
    const sr::keyed_task_balanced_options o{.capacity = 11, .seq_len = 2, .seed = 23};
    const sr::index_t batch = 10, batches = 12;
    std::vector<std::uint64_t> all_ids;
    for (std::uint64_t g = 0; g < std::uint64_t(batch * batches); ++g) all_ids.push_back(g);
    const auto expected = reference(all_ids, o.capacity, o.seq_len, o.seed);
    REQUIRE(expected.size() == 4);
    REQUIRE(expected.at(5).size() == 3); // all of task 5: fewer rows than its quota (the room is not lent)

    sr::keyed_task_balanced_buffer one(o);
    for (sr::index_t j = 0; j < batches; ++j) add_rows(one, j * batch, (j + 1) * batch);
    CHECK(contents(one) == expected);
    CHECK(one.size() == 2 + 3 + 3 + 3); // quotas of tasks -1, 2, 5, 7: 3, 3, 3, 2; task 5 holds its 3
    CHECK(one.tasks() == std::vector<std::int32_t>{-1, 2, 5, 7});
    CHECK(one.quota(-1) == 3);
    CHECK(one.quota(7) == 2);
    CHECK(one.quota(4) == 0);
    CHECK(one.seen() == 120);
    CHECK(one.seen(5) == 3);

    std::mt19937_64 rng{11};
    for (int ranks = 1; ranks <= 4; ++ranks)
        for (int order = 0; order < 4; ++order) {
            std::vector<sr::keyed_task_balanced_buffer> per_rank(std::size_t(ranks), sr::keyed_task_balanced_buffer{o});
            for (sr::index_t j = 0; j < batches; ++j)
                for (int r = 0; r < ranks; ++r) {
                    const auto s = sr::shard_of(batch, r, ranks);
                    add_rows(per_rank[std::size_t(r)], j * batch + s.begin, j * batch + s.end);
                }
            std::shuffle(per_rank.begin(), per_rank.end(), rng);
            sr::keyed_task_balanced_buffer merged = per_rank[0];
            for (std::size_t r = 1; r < per_rank.size(); ++r) merged.merge(per_rank[r]);
            CHECK(contents(merged) == expected);
            CHECK(merged.seen() == 120);
            CHECK(draws(merged, 5, 7) == draws(one, 5, 7));
            if (ranks == 4) { // a tree: (0 + 1) + (2 + 3)
                auto left = per_rank[0], right = per_rank[2];
                left.merge(per_rank[1]);
                right.merge(per_rank[3]);
                right.merge(left);
                CHECK(contents(right) == expected);
            }
        }

    // Each task's rows added task by task (add(tokens, task, first_id)), tasks in another order:
    // the same buffer.
    sr::keyed_task_balanced_buffer by_task(o);
    for (std::int32_t t : {5, -1, 7, 2})
        for (std::uint64_t g : all_ids)
            if (task_of(static_cast<std::int64_t>(g)) == t) by_task.add(numbered_rows(std::int32_t(g), 1, 2).view(), t, g);
    CHECK(contents(by_task) == expected);

    // Merging is a union: with itself, or with a buffer holding a subset, nothing changes but seen.
    auto twice = one;
    twice.merge(twice);
    CHECK(contents(twice) == expected);
    CHECK(twice.seen() == 240);
    sr::keyed_task_balanced_buffer part(o);
    add_rows(part, 30, 40);
    twice.merge(part);
    CHECK(contents(twice) == expected);
    // A reference computed on a prefix differs (the test can tell buffers apart).
    CHECK(reference({all_ids.begin(), all_ids.begin() + 60}, o.capacity, o.seq_len, o.seed) != expected);
}

TEST_CASE("keyed_task_balanced_buffer: sharded draws of P ranks are the unsharded batches") {
    sr::keyed_task_balanced_buffer one({.capacity = 9, .seq_len = 3, .seed = 4});
    add_rows(one, 0, 80);
    for (int ranks = 1; ranks <= 4; ++ranks) {
        auto whole = one;
        std::vector<sr::keyed_task_balanced_buffer> per_rank(std::size_t(ranks), one);
        for (int j = 0; j < 6; ++j) {
            token_batch full(7, 3);
            whole.draw(full.view());
            std::vector<std::int32_t> pieces;
            for (int r = 0; r < ranks; ++r) {
                const auto s = sr::shard_of(7, r, ranks);
                token_batch out(s.rows(), 3);
                per_rank[std::size_t(r)].draw(out.view(), 7, s);
                pieces.insert(pieces.end(), out.ids.begin(), out.ids.end());
            }
            CHECK(pieces == full.ids);
        }
    }
}

TEST_CASE("keyed_task_balanced_buffer: each task holds a uniform subset of its rows (Pearson chi-square)") {
    // Task 0: 20 rows, task 1: 20 rows, capacity 10 (quota 5 each), 20,000 seeds: inclusion counts
    // of task 0's rows against 5/20 each.
    const int N = 20, k = 5, M = 20000;
    std::vector<double> counts(N, 0.0);
    std::vector<std::int32_t> tasks(2 * N);
    for (int i = 0; i < 2 * N; ++i) tasks[std::size_t(i)] = i % 2;
    for (int seed = 0; seed < M; ++seed) {
        sr::keyed_task_balanced_buffer b({.capacity = 2 * k, .seq_len = 1, .seed = std::uint64_t(seed)});
        b.add(numbered_rows(0, 2 * N, 1).view(), sr::make_view(tasks.data(), {2 * N}), 0);
        REQUIRE(b.size(0) == k);
        for (sr::index_t i = 0; i < b.size(0); ++i) counts[std::size_t(*b.sequence(0, i) / 2)] += 1;
    }
    // chi-square with 19 degrees of freedom: 43.82 at significance 0.001
    CHECK(replay_test::subset_chi_square(counts, M, k) < 43.82);
}

TEST_CASE("keyed_task_balanced_buffer: bad settings, rows, ids, tasks, merges and shards are refused") {
    using B = sr::keyed_task_balanced_buffer;
    CHECK_THROWS_WITH(B({.capacity = 0, .seq_len = 2}), Catch::Contains("keyed_task_balanced_buffer: argument 'capacity'"));
    CHECK_THROWS_WITH(B({.capacity = 2, .seq_len = 0}), Catch::Contains("keyed_task_balanced_buffer: argument 'seq_len'"));
    B b({.capacity = 4, .seq_len = 2, .seed = 1});
    token_batch one_row(1, 2);
    CHECK_THROWS_WITH(b.draw(one_row.view()), Catch::Contains("keyed_task_balanced_buffer::draw: argument 'this' is an empty buffer"));
    CHECK_THROWS_WITH(b.add(numbered_rows(0, 3, 2).view(), 1, UINT64_MAX - 1),
                      Catch::Contains("keyed_task_balanced_buffer::add: argument 'first_id' leaves ids beyond 2^64 - 1"));
    CHECK_THROWS_WITH(b.add(numbered_rows(0, 3, 3).view(), 1, 0), Catch::Contains("argument 'tokens' must have rows of length"));
    CHECK_THROWS_WITH(b.add(numbered_rows(-2, 3, 2).view(), 1, 0), Catch::Contains("argument 'tokens'"));
    std::vector<std::int32_t> two_tasks{1, 2};
    CHECK_THROWS_WITH(b.add(numbered_rows(0, 3, 2).view(), sr::make_view(two_tasks.data(), {2}), 0),
                      Catch::Contains("keyed_task_balanced_buffer::add: argument 'tasks' must hold one id per row of 'tokens' (3), got 2"));
    CHECK_THROWS_WITH(b.merge(B({.capacity = 4, .seq_len = 2, .seed = 2})),
                      Catch::Contains("keyed_task_balanced_buffer::merge: argument 'other' has other settings"));
    CHECK(b.size() == 0);
    CHECK(b.tasks().empty()); // refused adds left no task behind
    b.add(numbered_rows(0, 0, 2).view(), 3, 0);
    CHECK(b.tasks().empty()); // no row offered: the task is not known
    b.add(numbered_rows(0, 3, 2).view(), 1, 0);
    CHECK_THROWS_WITH(b.sequence(2, 0), Catch::Contains("keyed_task_balanced_buffer::sequence: argument 'task' is not known: 2"));
    CHECK_THROWS_WITH(b.id(2, 0), Catch::Contains("keyed_task_balanced_buffer::id: argument 'task' is not known: 2"));
    token_batch out(2, 2);
    CHECK_THROWS_WITH(b.draw(out.view(), 4, sr::row_shard{3, 2}), Catch::Contains("argument 'shard' has begin 3 > end 2"));
    CHECK_THROWS_WITH(b.draw(out.view(), 4, sr::row_shard{3, 5}), Catch::Contains("argument 'shard' has end 5 beyond the batch of 4"));
    CHECK_THROWS_WITH(b.draw(out.view(), -1, sr::row_shard{0, 0}), Catch::Contains("argument 'batch' must be >= 0, got -1"));
    CHECK_THROWS_WITH(b.draw(out.view(), 4, sr::row_shard{0, 3}), Catch::Contains("argument 'out' has 2 rows but the shard has 3"));
}
