#pragma once
//! \file
//! `task_balanced_buffer`: one reservoir per task, with the capacity split equally over the tasks
//! seen so far.

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "selfreplay/error.hpp"
#include "selfreplay/replay/detail/draw.hpp"
#include "selfreplay/replay/detail/random.hpp"
#include "selfreplay/replay/shard.hpp"
#include "selfreplay/replay/source.hpp"
#include "selfreplay/replay/state_io.hpp"

namespace selfreplay {

//! Settings of a `task_balanced_buffer`.
struct task_balanced_options {
    index_t capacity = 0;    //!< sequences kept over all tasks, >= 1
    index_t seq_len = 0;     //!< tokens per sequence, >= 1
    std::uint64_t seed = 0;  //!< random seed of insertion, shrinking and draws
};

//! Stored-exemplar replay balanced over tasks (Avalanche's `ExperienceBalancedBuffer`): each task
//! id gets its own reservoir (Vitter's Algorithm R), and with G tasks seen so far, task number i
//! (in order of first appearance) may hold quota(i) = floor(C / G) + [i < C mod G] sequences,
//! C = capacity. When a new task appears the others shrink to their new quota by keeping a
//! uniformly random subset, so each task's reservoir stays a uniform sample of that task's
//! sequences whatever the order in which tasks' sequences arrive (interleaved or not). A task with
//! fewer sequences than its quota keeps all of them; its unused room is not lent to others.
//! `draw` picks stored sequences uniformly with replacement over the whole buffer.
class task_balanced_buffer {
    //! One task's reservoir: its id, the sequences of it offered, the stored ones (row-major).
    struct group {
        std::int32_t task = 0;
        std::uint64_t seen = 0;
        std::vector<std::int32_t> rows;
        index_t size(index_t seq_len) const noexcept { return static_cast<index_t>(rows.size()) / seq_len; }
    };

public:
    using options_type = task_balanced_options; //!< the settings type (state files, generic code)

    //! Throws `invalid_argument` when capacity or seq_len is below 1.
    explicit task_balanced_buffer(const task_balanced_options& options) : options_(options) {
        require(options.capacity >= 1, "task_balanced_buffer", "capacity",
                "must be at least 1, got ", options.capacity);
        require(options.seq_len >= 1, "task_balanced_buffer", "seq_len",
                "must be at least 1, got ", options.seq_len);
    }

    //! Offers each row of `tokens` ([N, seq_len] int32 or int64 ids), all belonging to task `task`, in order.
    template <class X>
    void add(const X& tokens, std::int32_t task) {
        const auto v = detail::token_rows(tokens, options_.seq_len, "task_balanced_buffer::add", "tokens");
        detail::require_token_ids(v, "task_balanced_buffer::add", "tokens");
        const std::size_t g = group_of(task);
        for (index_t r = 0; r < v.extent(0); ++r) offer(g, v, r);
    }

    //! Offers row i of `tokens` ([N, seq_len]) as a sequence of task `tasks[i]` (a rank-1 int32
    //! tensor of N task ids), in order: interleaved streams of several tasks.
    template <class X, class Y>
        requires tensor<Y>
    void add(const X& tokens, const Y& tasks) {
        const auto v = detail::token_rows(tokens, options_.seq_len, "task_balanced_buffer::add", "tokens");
        detail::require_token_ids(v, "task_balanced_buffer::add", "tokens");
        const auto t = view<1>(tasks);
        static_assert(std::is_same_v<std::remove_cv_t<typename decltype(t)::element_type>, std::int32_t>,
                      "selfreplay::task_balanced_buffer::add: task ids must be std::int32_t");
        require(t.extent(0) == v.extent(0), "task_balanced_buffer::add", "tasks",
                "must hold one id per row of 'tokens' (", v.extent(0), "), got ", t.extent(0));
        for (index_t r = 0; r < v.extent(0); ++r) offer(group_of(t(r)), v, r);
    }

    //! Fills every row of `out` ([B, seq_len] int32 or int64 ids) with a stored sequence drawn uniformly with
    //! replacement over all tasks' stored sequences. Throws `invalid_argument` when empty.
    template <class X>
    void draw(X&& out) {
        const auto o = detail::token_rows(out, options_.seq_len, "task_balanced_buffer::draw", "out");
        draw_rows(o, {0, o.extent(0)});
    }

    //! Data parallelism: writes rows [shard.begin, shard.end) of the next global batch of `batch`
    //! rows (those `draw` of a [batch, seq_len] `out` would write there) into `out`
    //! ([end - begin, seq_len]), advancing as that draw does. Throws `invalid_argument` naming
    //! `shard` unless 0 <= begin <= end <= batch, and `out` when its row count is not end - begin.
    template <class X>
    void draw(X&& out, index_t batch, const row_shard& shard) {
        const auto o = detail::token_rows(out, options_.seq_len, "task_balanced_buffer::draw", "out");
        detail::require_sharded_draw(o.extent(0), batch, shard, "task_balanced_buffer::draw");
        draw_rows(o, shard);
    }

    index_t seq_len() const noexcept { return options_.seq_len; }   //!< tokens per sequence
    index_t capacity() const noexcept { return options_.capacity; } //!< maximum sequences kept overall
    //! Sequences currently stored over all tasks.
    index_t size() const noexcept {
        index_t n = 0;
        for (const auto& g : groups_) n += g.size(options_.seq_len);
        return n;
    }
    //! Task ids in order of first appearance.
    std::vector<std::int32_t> tasks() const {
        std::vector<std::int32_t> ids;
        for (const auto& g : groups_) ids.push_back(g.task);
        return ids;
    }
    //! Sequences of `task` currently stored (0 for an unseen task).
    index_t size(std::int32_t task) const noexcept {
        for (const auto& g : groups_)
            if (g.task == task) return g.size(options_.seq_len);
        return 0;
    }
    //! The current quota of `task`: floor(C / G) + [i < C mod G] for the i-th task of G seen;
    //! 0 for an unseen task.
    index_t quota(std::int32_t task) const noexcept {
        for (std::size_t i = 0; i < groups_.size(); ++i)
            if (groups_[i].task == task) return quota_at(i);
        return 0;
    }
    //! Sequences of `task` offered so far.
    std::uint64_t seen(std::int32_t task) const noexcept {
        for (const auto& g : groups_)
            if (g.task == task) return g.seen;
        return 0;
    }
    //! Pointer to stored sequence i of `task` (seq_len() ids), 0 <= i < size(task).
    const std::int32_t* sequence(std::int32_t task, index_t i) const {
        for (const auto& g : groups_)
            if (g.task == task) return g.rows.data() + i * options_.seq_len;
        throw invalid_argument("task_balanced_buffer::sequence", "task", "was never added: " + std::to_string(task));
    }
    const task_balanced_options& options() const noexcept { return options_; } //!< the settings

    //! Appends the state (every task's contents and counters) to `w`.
    void save(state_writer& w) const {
        w.buffer_header("task_balanced_buffer", options_.capacity, options_.seq_len, options_.seed);
        w.put<std::uint64_t>(ingested_);
        w.put<std::uint64_t>(resizes_);
        w.put<std::uint64_t>(draws_);
        w.put<std::uint64_t>(groups_.size());
        for (const auto& g : groups_) {
            w.put<std::int32_t>(g.task);
            w.put<std::uint64_t>(g.seen);
            w.put_array(g.rows);
        }
    }

    //! A record read and validated by `stage` (see `stageable`).
    struct staged_state {
        std::uint64_t ingested = 0; //!< sequences added (a random-stream counter)
        std::uint64_t resizes = 0;  //!< quota changes (a random-stream counter)
        std::uint64_t draws = 0;    //!< draws (a random-stream counter)
        std::vector<group> groups;  //!< one reservoir per task
    };

    //! Reads and validates a state saved by `save` from a buffer with the same settings, without
    //! changing this one. Throws `invalid_argument` when the record does not fit them or could not
    //! come from a run: other settings; counters beyond 2^61 - 1; a task id twice; a task holding
    //! other than min(seen, quota) sequences (quota as `quota` computes it for that many tasks);
    //! per-task counts that do not add up to the sequences ingested; a negative token id.
    staged_state stage(state_reader& r) const {
        r.expect_buffer_header("task_balanced_buffer", options_.capacity, options_.seq_len, options_.seed);
        const index_t seq_len = options_.seq_len;
        staged_state s;
        s.ingested = r.get_counter("ingested");
        s.resizes = r.get_counter("resizes");
        s.draws = r.get_counter("draws");
        const auto count = r.get<std::uint64_t>("tasks");
        std::uint64_t seen_total = 0;
        for (std::uint64_t i = 0; i < count; ++i) {
            group g;
            g.task = r.get<std::int32_t>("task id");
            g.seen = r.get_counter("task seen");
            g.rows = r.get_array<std::int32_t>("task contents");
            for (const auto& other : s.groups)
                if (other.task == g.task) r.fail("holds task id " + std::to_string(g.task) + " twice");
            const auto stored = static_cast<std::uint64_t>(g.rows.size()) / static_cast<std::uint64_t>(seq_len);
            const auto quota = static_cast<std::uint64_t>(quota_of(i, count));
            if (g.rows.size() % static_cast<std::uint64_t>(seq_len) != 0 || stored != std::min(g.seen, quota))
                r.fail("holds " + std::to_string(g.rows.size()) + " ids for task " + std::to_string(g.task) + " where min(seen " +
                       std::to_string(g.seen) + ", quota " + std::to_string(quota) + ") sequences of " + std::to_string(seq_len) +
                       " were expected");
            for (std::int32_t id : g.rows)
                if (id < 0) r.fail("holds a negative token id " + std::to_string(id) + " for task " + std::to_string(g.task));
            seen_total += g.seen; // both terms below 2^61, and the sum is kept <= ingested: no wrap
            if (seen_total > s.ingested)
                r.fail("holds per-task counts that exceed the " + std::to_string(s.ingested) + " sequences ingested");
            s.groups.push_back(std::move(g));
        }
        if (seen_total != s.ingested)
            r.fail("holds per-task counts adding up to " + std::to_string(seen_total) + ", not the " +
                   std::to_string(s.ingested) + " sequences ingested");
        return s;
    }

    //! Installs a record staged by `stage`.
    void commit(staged_state&& s) noexcept {
        ingested_ = s.ingested;
        resizes_ = s.resizes;
        draws_ = s.draws;
        groups_ = std::move(s.groups);
    }

    //! `commit(stage(r))`: throws as `stage` does, and then leaves this buffer unchanged.
    void restore(state_reader& r) { commit(stage(r)); }

private:

    //! floor((C + G - 1 - i) / G): C split over G groups, the first C mod G getting one more.
    //! Non-increasing in G for every i, so a group never grows back after shrinking.
    index_t quota_of(std::uint64_t i, std::uint64_t G) const noexcept {
        const auto C = static_cast<std::uint64_t>(options_.capacity);
        return static_cast<index_t>((C + G - 1 - i) / G);
    }
    index_t quota_at(std::size_t i) const noexcept { return quota_of(i, groups_.size()); }

    template <class T>
    void draw_rows(const strided_view<T, 2>& o, const row_shard& shard) {
        const index_t L = options_.seq_len;
        auto row_of = [&](index_t i) { // stored sequence i, counted over the tasks in order
            std::size_t g = 0;
            while (i >= groups_[g].size(L)) i -= groups_[g++].size(L);
            return groups_[g].rows.data() + i * L;
        };
        detail::draw_stored_rows(o, shard, size(), options_.seed, draws_, row_of, "task_balanced_buffer::draw");
        ++draws_;
    }

    std::size_t group_of(std::int32_t task) {
        for (std::size_t i = 0; i < groups_.size(); ++i)
            if (groups_[i].task == task) return i;
        groups_.push_back(group{task, 0, {}});
        for (std::size_t i = 0; i + 1 < groups_.size(); ++i) shrink(i);
        return groups_.size() - 1;
    }

    //! Shrinks group i to its quota, keeping a uniformly random subset (partial Fisher-Yates).
    void shrink(std::size_t i) {
        auto& g = groups_[i];
        const index_t s = g.size(options_.seq_len), q = quota_at(i), T = options_.seq_len;
        if (s <= q) return;
        detail::index_rng rng(options_.seed, detail::stream_id(detail::replay_stream::resize, resizes_++));
        for (index_t k = 0; k < q; ++k) {
            const auto j = k + static_cast<index_t>(rng.below(static_cast<std::uint64_t>(s - k)));
            if (j != k) std::swap_ranges(g.rows.begin() + k * T, g.rows.begin() + (k + 1) * T, g.rows.begin() + j * T);
        }
        g.rows.resize(static_cast<std::size_t>(q * T));
    }

    template <class V>
    void offer(std::size_t gi, const V& v, index_t r) {
        auto& g = groups_[gi];
        const index_t T = options_.seq_len, q = quota_at(gi);
        const std::uint64_t n = g.seen++;
        const std::uint64_t key = ingested_++;
        if (g.size(T) < q) { // only while every sequence of the task so far is kept (quotas never grow)
            g.rows.resize(g.rows.size() + static_cast<std::size_t>(T));
            detail::copy_row_out(v, r, g.rows.data() + (g.size(T) - 1) * T);
            return;
        }
        detail::index_rng rng(options_.seed, detail::stream_id(detail::replay_stream::ingest, key));
        const std::uint64_t j = rng.below(n + 1);
        if (j < static_cast<std::uint64_t>(q)) detail::copy_row_out(v, r, g.rows.data() + static_cast<index_t>(j) * T);
    }

    task_balanced_options options_;
    std::vector<group> groups_;
    std::uint64_t ingested_ = 0;
    std::uint64_t resizes_ = 0;
    std::uint64_t draws_ = 0;
};

} // namespace selfreplay
