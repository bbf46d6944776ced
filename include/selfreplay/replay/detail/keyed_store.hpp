#pragma once
//! \file
//! Internal: `keyed_store`, the bottom-k storage shared by `keyed_reservoir` and
//! `keyed_task_balanced_buffer`: sequences with caller-given global ids, each keyed by the first
//! 64-bit word of `counter_rng{seed, ingest stream of id}`, held in ascending (key, id) order and
//! cut to a limit by keeping the smallest. Not part of the public API.

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "selfreplay/random/counter_rng.hpp"
#include "selfreplay/replay/detail/random.hpp"
#include "selfreplay/replay/state_io.hpp"
#include "selfreplay/tensor/strided_view.hpp"

namespace selfreplay::detail {

class keyed_store {
public:
    //! A held sequence's key and global id, ordered by (key, id).
    struct item {
        std::uint64_t key = 0, id = 0;
        bool operator<(const item& o) const noexcept { return key != o.key ? key < o.key : id < o.id; }
    };

    //! An empty store of sequences of `seq_len` ids, keyed with `seed` (settings checked by the owner).
    keyed_store(index_t seq_len, std::uint64_t seed) noexcept : seq_len_(seq_len), seed_(seed) {}

    index_t size() const noexcept { return static_cast<index_t>(items_.size()); } //!< sequences held
    //! Global id of held sequence i, in (key, id) order.
    std::uint64_t id(index_t i) const noexcept { return items_[static_cast<std::size_t>(i)].id; }
    //! Pointer to held sequence i (seq_len ids), in (key, id) order.
    const std::int32_t* sequence(index_t i) const noexcept { return rows_.data() + i * seq_len_; }

    //! The key of global id `id`: the first word of stream (seed, ingest, id).
    std::uint64_t key_of(std::uint64_t id) const noexcept {
        counter_rng rng{.seed = seed_, .stream = stream_id(replay_stream::ingest, id)};
        return rng.next_u64();
    }

    //! Offers the sequence `row` (seq_len ids) of global id `id`, keeping at most `limit`
    //! sequences: it is inserted in (key, id) order unless held already or beyond the smallest
    //! `limit`, and the largest is dropped when over the limit.
    void offer(std::uint64_t id, const std::int32_t* row, index_t limit) { offer(item{key_of(id), id}, row, limit); }

    //! Offers everything `other` (same seq_len and seed) holds, keeping at most `limit`.
    void merge(const keyed_store& other, index_t limit) {
        if (&other == this) return cut(limit);
        for (std::size_t i = 0; i < other.items_.size(); ++i) offer(other.items_[i], other.sequence(static_cast<index_t>(i)), limit);
    }

    //! Keeps the `limit` sequences of smallest (key, id) (all of them when fewer are held).
    void cut(index_t limit) {
        if (size() <= limit) return;
        items_.resize(static_cast<std::size_t>(limit));
        rows_.resize(static_cast<std::size_t>(limit * seq_len_));
    }

    //! Appends the held ids (in (key, id) order) and their tokens; the keys follow from the ids.
    void save(state_writer& w) const {
        std::vector<std::uint64_t> ids(items_.size());
        for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = items_[i].id;
        w.put_array(ids);
        w.put_array(rows_);
    }

    //! Held sequences read and validated by `stage`.
    struct staged_state {
        std::vector<item> items;         //!< (key, id), ascending
        std::vector<std::int32_t> rows;  //!< their tokens
    };

    //! Reads a record saved by `save` without changing this store, refusing (naming `what`, e.g.
    //! "task 3") more than `limit` sequences, ids not in strictly ascending (key, id) order (which
    //! includes an id held twice), a token count other than seq_len per id, a negative token id.
    staged_state stage(state_reader& r, index_t limit, const std::string& what) const {
        staged_state s;
        const auto ids = r.get_array<std::uint64_t>("ids");
        if (ids.size() > static_cast<std::uint64_t>(limit))
            r.fail("holds " + std::to_string(ids.size()) + " sequences for " + what + ", more than its limit of " +
                   std::to_string(limit));
        s.items.reserve(ids.size());
        for (std::uint64_t id : ids) {
            const item it{key_of(id), id};
            if (!s.items.empty() && !(s.items.back() < it))
                r.fail("holds the ids of " + what + " out of (key, id) order or twice (id " + std::to_string(id) + ")");
            s.items.push_back(it);
        }
        s.rows = r.get_array<std::int32_t>("tokens");
        if (s.rows.size() != ids.size() * static_cast<std::uint64_t>(seq_len_))
            r.fail("holds " + std::to_string(s.rows.size()) + " token ids for " + what + " where " + std::to_string(ids.size()) +
                   " sequences of " + std::to_string(seq_len_) + " were expected");
        for (std::int32_t t : s.rows)
            if (t < 0) r.fail("holds a negative token id " + std::to_string(t) + " for " + what);
        return s;
    }

    //! Installs a record staged by `stage`.
    void commit(staged_state&& s) noexcept {
        items_ = std::move(s.items);
        rows_ = std::move(s.rows);
    }

private:
    void offer(const item& it, const std::int32_t* row, index_t limit) {
        const auto at = std::lower_bound(items_.begin(), items_.end(), it);
        if (at != items_.end() && at->id == it.id) return; // same id, same key: held already
        const auto pos = at - items_.begin();
        if (static_cast<index_t>(pos) >= limit) return;
        const auto T = static_cast<std::ptrdiff_t>(seq_len_);
        items_.insert(at, it);
        rows_.insert(rows_.begin() + pos * T, row, row + T);
        cut(limit);
    }

    index_t seq_len_;
    std::uint64_t seed_;
    std::vector<item> items_;         // held sequences' (key, id), ascending
    std::vector<std::int32_t> rows_;  // their tokens, in the same order
};

} // namespace selfreplay::detail
