#pragma once
//! \file
//! `keyed_task_balanced_buffer`: a task-balanced replay buffer whose contents do not depend on how
//! the stream was split over ranks or in which order the parts were merged.

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "selfreplay/replay/detail/keyed_store.hpp"
#include "selfreplay/replay/detail/draw.hpp"
#include "selfreplay/replay/shard.hpp"
#include "selfreplay/replay/source.hpp"
#include "selfreplay/replay/state_io.hpp"
#include "selfreplay/error.hpp"

namespace selfreplay {

//! Settings of a `keyed_task_balanced_buffer`.
struct keyed_task_balanced_options {
    index_t capacity = 0;   //!< sequences kept over all tasks, >= 1
    index_t seq_len = 0;    //!< tokens per sequence, >= 1
    std::uint64_t seed = 0; //!< random seed of the keys and draws
};

//! Stored-exemplar replay balanced over tasks, for data parallelism: one bottom-k reservoir per
//! task (as `keyed_reservoir`: every sequence carries a global id given by the caller, its key is
//! the first 64-bit word of `counter_rng{seed, id}`). With G tasks known, the task of rank i in
//! ascending task id order may hold quota(i) = floor(C / G) + [i < C mod G] sequences, C =
//! capacity, and holds the quota(i) sequences of smallest (key, id) offered for it (all of them
//! when fewer were offered; unused room is not lent). A task is known once a row of it is offered.
//! Quotas only shrink as tasks appear, so the contents are a function of the set of (task, id)
//! offered: ranks that each add their shard and then `merge` (in any order, any tree) hold exactly
//! the buffer of one process that added everything, which `task_balanced_buffer` (quotas in order
//! of first appearance, random shrinking) does not give. Each task's contents are a uniformly
//! random subset of its distinct ids. `draw` picks stored sequences uniformly with replacement over
//! the whole buffer, indexed task by task in ascending id order and within a task in (key, id)
//! order, from stream (seed, batch index). The state is `saveable`.
class keyed_task_balanced_buffer {
    //! One task's reservoir: its id, the sequences of it offered, the held ones.
    struct group {
        std::int32_t task = 0;
        std::uint64_t seen = 0;
        detail::keyed_store store;
    };

public:
    using options_type = keyed_task_balanced_options; //!< the settings type (generic code)

    //! Throws `invalid_argument` when capacity or seq_len is below 1.
    explicit keyed_task_balanced_buffer(const keyed_task_balanced_options& options) : options_(options) {
        require(options.capacity >= 1, "keyed_task_balanced_buffer", "capacity", "must be at least 1, got ", options.capacity);
        require(options.seq_len >= 1, "keyed_task_balanced_buffer", "seq_len", "must be at least 1, got ", options.seq_len);
    }

    //! Offers row r of `tokens` ([N, seq_len] int32 or int64 ids), all of task `task`, as the
    //! sequence of global id first_id + r. Throws `invalid_argument` for a row length other than
    //! seq_len, a negative or beyond-int32 token id, or ids beyond 2^64 - 1.
    template <class X>
    void add(const X& tokens, std::int32_t task, std::uint64_t first_id) {
        const auto v = checked_rows(tokens, first_id);
        std::vector<std::int32_t> row(static_cast<std::size_t>(options_.seq_len));
        for (index_t r = 0; r < v.extent(0); ++r) offer(task, first_id + static_cast<std::uint64_t>(r), v, r, row);
    }

    //! Offers row r of `tokens` ([N, seq_len]) as the sequence of global id first_id + r of task
    //! `tasks[r]` (a rank-1 int32 tensor of N task ids): interleaved streams of several tasks.
    //! Throws as the other `add` does, and naming `tasks` when it does not hold N ids.
    template <class X, class Y>
        requires tensor<Y>
    void add(const X& tokens, const Y& tasks, std::uint64_t first_id) {
        const auto t = view<1>(tasks);
        static_assert(std::is_same_v<std::remove_cv_t<typename decltype(t)::element_type>, std::int32_t>,
                      "selfreplay::keyed_task_balanced_buffer::add: task ids must be std::int32_t");
        const auto v = checked_rows(tokens, first_id);
        require(t.extent(0) == v.extent(0), "keyed_task_balanced_buffer::add", "tasks", "must hold one id per row of 'tokens' (",
                v.extent(0), "), got ", t.extent(0));
        std::vector<std::int32_t> row(static_cast<std::size_t>(options_.seq_len));
        for (index_t r = 0; r < v.extent(0); ++r) offer(t(r), first_id + static_cast<std::uint64_t>(r), v, r, row);
    }

    //! Adds everything `other` holds: afterwards every task known to either holds the bottom-quota
    //! sequences of the union, quotas computed over the union of the tasks. Throws
    //! `invalid_argument` naming `other` when its settings differ.
    void merge(const keyed_task_balanced_buffer& other) {
        require(other.options_.capacity == options_.capacity && other.options_.seq_len == options_.seq_len &&
                    other.options_.seed == options_.seed,
                "keyed_task_balanced_buffer::merge", "other", "has other settings (capacity ", other.options_.capacity,
                ", seq_len ", other.options_.seq_len, ", seed ", other.options_.seed, ")");
        if (&other == this) {
            const keyed_task_balanced_buffer copy(other);
            return merge(copy);
        }
        // a task new here cuts every task to the quotas of the larger set; cutting commutes with
        // taking unions under the larger limits, so the result is the union cut to the final quotas
        for (const auto& g : other.groups_) {
            const std::size_t i = group_of(g.task);
            groups_[i].store.merge(g.store, quota_at(i));
            groups_[i].seen += g.seen;
        }
    }

    //! Fills every row of `out` ([B, seq_len] int32 or int64 ids) with a stored sequence drawn
    //! uniformly with replacement over all tasks. Throws `invalid_argument` when empty.
    template <class X>
    void draw(X&& out) {
        const auto o = detail::token_rows(out, options_.seq_len, "keyed_task_balanced_buffer::draw", "out");
        draw_rows(o, {0, o.extent(0)});
    }

    //! Rows [shard.begin, shard.end) of the next global batch of `batch` rows into `out`
    //! ([end - begin, seq_len]), advancing as the draw of the whole batch would. Throws
    //! `invalid_argument` naming `batch` (< 0), `shard` unless 0 <= begin <= end <= batch, and
    //! `out` when its row count is not end - begin.
    template <class X>
    void draw(X&& out, index_t batch, const row_shard& shard) {
        const auto o = detail::token_rows(out, options_.seq_len, "keyed_task_balanced_buffer::draw", "out");
        detail::require_sharded_draw(o.extent(0), batch, shard, "keyed_task_balanced_buffer::draw");
        draw_rows(o, shard);
    }

    index_t seq_len() const noexcept { return options_.seq_len; }   //!< tokens per sequence
    index_t capacity() const noexcept { return options_.capacity; } //!< maximum sequences kept overall
    //! Sequences stored over all tasks.
    index_t size() const noexcept {
        index_t n = 0;
        for (const auto& g : groups_) n += g.store.size();
        return n;
    }
    //! Known task ids, ascending.
    std::vector<std::int32_t> tasks() const {
        std::vector<std::int32_t> ids;
        for (const auto& g : groups_) ids.push_back(g.task);
        return ids;
    }
    //! Sequences of `task` stored (0 for an unknown task).
    index_t size(std::int32_t task) const noexcept { return find(task) ? find(task)->store.size() : 0; }
    //! The current quota of `task`: floor(C / G) + [i < C mod G] for the task of rank i in
    //! ascending id order of the G known; 0 for an unknown task.
    index_t quota(std::int32_t task) const noexcept {
        const group* g = find(task);
        return g ? quota_at(static_cast<std::size_t>(g - groups_.data())) : 0;
    }
    //! Sequences of `task` offered so far, merged buffers' included (0 for an unknown task).
    std::uint64_t seen(std::int32_t task) const noexcept { return find(task) ? find(task)->seen : 0; }
    //! Sequences offered so far over all tasks, merged buffers' included.
    std::uint64_t seen() const noexcept {
        std::uint64_t n = 0;
        for (const auto& g : groups_) n += g.seen;
        return n;
    }
    //! Global id of stored sequence i of `task`, in (key, id) order, 0 <= i < size(task). Throws
    //! `invalid_argument` naming `task` when it is unknown.
    std::uint64_t id(std::int32_t task, index_t i) const { return known(task, "id").store.id(i); }
    //! Pointer to stored sequence i of `task` (seq_len() ids), in (key, id) order, 0 <= i <
    //! size(task). Throws `invalid_argument` naming `task` when it is unknown.
    const std::int32_t* sequence(std::int32_t task, index_t i) const { return known(task, "sequence").store.sequence(i); }
    const keyed_task_balanced_options& options() const noexcept { return options_; } //!< the settings

    //! Appends the state (settings, the draw counter, and per task in ascending id order: its id,
    //! sequences offered, held ids in (key, id) order and their tokens) to `w`.
    void save(state_writer& w) const {
        w.buffer_header("keyed_task_balanced_buffer", options_.capacity, options_.seq_len, options_.seed);
        w.put<std::uint64_t>(draws_);
        w.put<std::uint64_t>(groups_.size());
        for (const auto& g : groups_) {
            w.put<std::int32_t>(g.task);
            w.put<std::uint64_t>(g.seen);
            g.store.save(w);
        }
    }

    //! A record read and validated by `stage` (see `stageable`).
    struct staged_state {
        std::uint64_t draws = 0;   //!< draws (a random-stream counter)
        std::vector<group> groups; //!< one reservoir per task, ascending ids
    };

    //! Reads and validates a state saved by `save` from a buffer with the same settings, without
    //! changing this one. Throws `invalid_argument` when the record does not fit them or could not
    //! come from a run: other settings; counters (draws, each task's and the total sequences
    //! offered) beyond 2^61 - 1; task ids not strictly ascending (so no task twice); a task never
    //! offered a row; a task holding more than its quota (for the saved number of tasks) or than
    //! were offered, or none although its quota and offers are not 0; ids out of (key, id) order or
    //! held twice; a token count other than seq_len per id; a negative token id.
    staged_state stage(state_reader& r) const {
        r.expect_buffer_header("keyed_task_balanced_buffer", options_.capacity, options_.seq_len, options_.seed);
        staged_state s;
        s.draws = r.get_counter("draws");
        const auto count = r.get<std::uint64_t>("tasks");
        if (count > (std::uint64_t{1} << 32)) r.fail("holds " + std::to_string(count) + " tasks, more than there are int32 task ids");
        std::uint64_t seen_total = 0;
        for (std::uint64_t i = 0; i < count; ++i) {
            group g{r.get<std::int32_t>("task id"), r.get_counter("task seen"), detail::keyed_store(options_.seq_len, options_.seed)};
            const std::string what = "task " + std::to_string(g.task);
            if (!s.groups.empty() && s.groups.back().task >= g.task)
                r.fail("holds task ids out of ascending order or twice (" + what + " after task " +
                       std::to_string(s.groups.back().task) + ")");
            if (g.seen == 0) r.fail("holds " + what + ", which was never offered a row");
            seen_total += g.seen; // both terms below 2^61: no wrap
            if (seen_total >= state_reader::counter_limit)
                r.fail("holds per-task counts adding up to 2^61 or more sequences offered");
            const auto quota = quota_of(i, count);
            g.store.commit(g.store.stage(r, quota, what));
            const auto held = static_cast<std::uint64_t>(g.store.size());
            if (held > g.seen) r.fail("holds " + std::to_string(held) + " sequences for " + what + " but only " + std::to_string(g.seen) + " were offered");
            if (held == 0 && quota > 0) r.fail("holds no sequence for " + what + " although its quota is " + std::to_string(quota));
            s.groups.push_back(std::move(g));
        }
        return s;
    }

    //! Installs a record staged by `stage`.
    void commit(staged_state&& s) noexcept {
        draws_ = s.draws;
        groups_ = std::move(s.groups);
    }

    //! `commit(stage(r))`: throws as `stage` does, and then leaves this buffer unchanged.
    void restore(state_reader& r) { commit(stage(r)); }

private:
    //! floor((C + G - 1 - i) / G): C split over G tasks, the first C mod G getting one more.
    //! Non-increasing as tasks appear (before or after task i), so a task never grows back.
    index_t quota_of(std::uint64_t i, std::uint64_t G) const noexcept {
        const auto C = static_cast<std::uint64_t>(options_.capacity);
        return static_cast<index_t>((C + G - 1 - i) / G);
    }
    index_t quota_at(std::size_t i) const noexcept { return quota_of(i, groups_.size()); }

    template <class X>
    auto checked_rows(const X& tokens, std::uint64_t first_id) const {
        const auto v = detail::token_rows(tokens, options_.seq_len, "keyed_task_balanced_buffer::add", "tokens");
        detail::require_token_ids(v, "keyed_task_balanced_buffer::add", "tokens");
        require(v.extent(0) == 0 || first_id <= UINT64_MAX - static_cast<std::uint64_t>(v.extent(0) - 1),
                "keyed_task_balanced_buffer::add", "first_id", "leaves ids beyond 2^64 - 1 for ", v.extent(0), " rows: ", first_id);
        return v;
    }

    const group* find(std::int32_t task) const noexcept {
        const auto at = std::lower_bound(groups_.begin(), groups_.end(), task, [](const group& g, std::int32_t t) { return g.task < t; });
        return at != groups_.end() && at->task == task ? &*at : nullptr;
    }
    const group& known(std::int32_t task, const char* what) const {
        const group* g = find(task);
        require(g != nullptr, std::string("keyed_task_balanced_buffer::") + what, "task", "is not known: ", task);
        return *g;
    }

    //! The index of `task`'s group, inserting it in id order (and cutting every task to its new
    //! quota) when it is new.
    std::size_t group_of(std::int32_t task) {
        const auto at = std::lower_bound(groups_.begin(), groups_.end(), task, [](const group& g, std::int32_t t) { return g.task < t; });
        const auto i = static_cast<std::size_t>(at - groups_.begin());
        if (at != groups_.end() && at->task == task) return i;
        groups_.insert(at, group{task, 0, detail::keyed_store(options_.seq_len, options_.seed)});
        for (std::size_t j = 0; j < groups_.size(); ++j) groups_[j].store.cut(quota_at(j));
        return i;
    }

    template <class V>
    void offer(std::int32_t task, std::uint64_t id, const V& v, index_t r, std::vector<std::int32_t>& row) {
        const std::size_t i = group_of(task);
        detail::copy_row_out(v, r, row.data());
        groups_[i].store.offer(id, row.data(), quota_at(i));
        ++groups_[i].seen;
    }

    template <class T>
    void draw_rows(const strided_view<T, 2>& o, const row_shard& shard) {
        auto row_of = [&](index_t i) { // stored sequence i, counted over the tasks in ascending id order
            std::size_t g = 0;
            while (i >= groups_[g].store.size()) i -= groups_[g++].store.size();
            return groups_[g].store.sequence(i);
        };
        detail::draw_stored_rows(o, shard, size(), options_.seed, draws_, row_of, "keyed_task_balanced_buffer::draw");
        ++draws_;
    }

    keyed_task_balanced_options options_;
    std::vector<group> groups_; // ascending task ids
    std::uint64_t draws_ = 0;
};

} // namespace selfreplay
