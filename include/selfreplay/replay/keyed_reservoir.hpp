#pragma once
//! \file
//! `keyed_reservoir`: a fixed-capacity uniform sample of a stream of sequences that does not
//! depend on how the stream was split over ranks or in which order the parts were merged.

#include <cstdint>
#include <string>
#include <vector>

#include "selfreplay/error.hpp"
#include "selfreplay/random/counter_rng.hpp"
#include "selfreplay/replay/detail/draw.hpp"
#include "selfreplay/replay/detail/keyed_store.hpp"
#include "selfreplay/replay/detail/random.hpp"
#include "selfreplay/replay/shard.hpp"
#include "selfreplay/replay/source.hpp"
#include "selfreplay/replay/state_io.hpp"

namespace selfreplay {

//! Settings of a `keyed_reservoir`.
struct keyed_reservoir_options {
    index_t capacity = 0;   //!< sequences kept, >= 1
    index_t seq_len = 0;    //!< tokens per sequence, >= 1
    std::uint64_t seed = 0; //!< random seed of the keys and draws
};

//! Stored-exemplar replay by random keys (bottom-k sampling; Efraimidis & Spirakis 2006 with equal
//! weights): every sequence carries a global id given by the caller (e.g. its row in the global
//! stream of training batches), its key is the first 64-bit word of `counter_rng{seed, id}`, and
//! the buffer keeps the `capacity` sequences of smallest (key, id). Keys are independent uniform
//! draws, so the contents are a uniformly random subset of min(n, capacity) of the n distinct ids
//! offered. The contents are a function of the set of ids offered only: ranks that each add their
//! shard of the stream and then `merge` (in any order, any tree) hold exactly the buffer of one
//! process that added everything. Offering an id already held does nothing (merges are unions).
//! `draw` picks stored sequences uniformly with replacement, indexed in (key, id) order, from
//! stream (seed, batch index); `draw(out, batch, shard)` draws a shard of a global batch. The state
//! (settings, counters, held ids and tokens; keys follow from the ids) is `saveable`.
class keyed_reservoir {
public:
    using options_type = keyed_reservoir_options; //!< the settings type (generic code)

    //! Throws `invalid_argument` when capacity or seq_len is below 1.
    explicit keyed_reservoir(const keyed_reservoir_options& options)
        : options_(options), store_(options.seq_len, options.seed) {
        require(options.capacity >= 1, "keyed_reservoir", "capacity", "must be at least 1, got ", options.capacity);
        require(options.seq_len >= 1, "keyed_reservoir", "seq_len", "must be at least 1, got ", options.seq_len);
    }

    //! Offers row r of `tokens` ([N, seq_len] int32 or int64 ids) as the sequence of global id
    //! first_id + r. Throws `invalid_argument` for a row length other than seq_len, a negative or
    //! beyond-int32 token id, or ids beyond 2^64 - 1.
    template <class X>
    void add(const X& tokens, std::uint64_t first_id) {
        const auto v = detail::token_rows(tokens, options_.seq_len, "keyed_reservoir::add", "tokens");
        detail::require_token_ids(v, "keyed_reservoir::add", "tokens");
        require(v.extent(0) == 0 || first_id <= UINT64_MAX - static_cast<std::uint64_t>(v.extent(0) - 1),
                "keyed_reservoir::add", "first_id", "leaves ids beyond 2^64 - 1 for ", v.extent(0), " rows: ", first_id);
        std::vector<std::int32_t> row(static_cast<std::size_t>(options_.seq_len));
        for (index_t r = 0; r < v.extent(0); ++r) {
            detail::copy_row_out(v, r, row.data());
            store_.offer(first_id + static_cast<std::uint64_t>(r), row.data(), options_.capacity);
            ++seen_;
        }
    }

    //! Adds everything `other` holds: afterwards this buffer holds the bottom-capacity sequences of
    //! the union of both. Throws `invalid_argument` naming `other` when its settings differ.
    void merge(const keyed_reservoir& other) {
        require(other.options_.capacity == options_.capacity && other.options_.seq_len == options_.seq_len &&
                    other.options_.seed == options_.seed,
                "keyed_reservoir::merge", "other", "has other settings (capacity ", other.options_.capacity, ", seq_len ",
                other.options_.seq_len, ", seed ", other.options_.seed, ")");
        store_.merge(other.store_, options_.capacity);
        seen_ += other.seen_;
    }

    //! Fills every row of `out` ([B, seq_len]) with a stored sequence drawn uniformly with
    //! replacement. Throws `invalid_argument` when the buffer is empty or `out` has another row length.
    template <class X>
    void draw(X&& out) {
        const auto o = detail::token_rows(out, options_.seq_len, "keyed_reservoir::draw", "out");
        draw_rows(o, {0, o.extent(0)});
    }

    //! Rows [shard.begin, shard.end) of the next global batch of `batch` rows into `out`
    //! ([end - begin, seq_len]), advancing as the draw of the whole batch would. Throws
    //! `invalid_argument` naming `shard` unless 0 <= begin <= end <= batch, and `out` when its row
    //! count is not end - begin.
    template <class X>
    void draw(X&& out, index_t batch, const row_shard& shard) {
        const auto o = detail::token_rows(out, options_.seq_len, "keyed_reservoir::draw", "out");
        detail::require_sharded_draw(o.extent(0), batch, shard, "keyed_reservoir::draw");
        draw_rows(o, shard);
    }

    index_t seq_len() const noexcept { return options_.seq_len; }   //!< tokens per sequence
    index_t capacity() const noexcept { return options_.capacity; } //!< maximum sequences kept
    index_t size() const noexcept { return store_.size(); } //!< sequences stored
    //! Sequences offered so far, merged buffers' included (an id offered twice counts twice).
    std::uint64_t seen() const noexcept { return seen_; }
    //! Global id of stored sequence i, in (key, id) order, 0 <= i < size().
    std::uint64_t id(index_t i) const noexcept { return store_.id(i); }
    //! Pointer to stored sequence i (seq_len() ids), in (key, id) order, 0 <= i < size().
    const std::int32_t* sequence(index_t i) const noexcept { return store_.sequence(i); }
    const keyed_reservoir_options& options() const noexcept { return options_; } //!< the settings

    //! Appends the state (settings, counters, held ids in (key, id) order and their tokens) to `w`.
    void save(state_writer& w) const {
        w.buffer_header("keyed_reservoir", options_.capacity, options_.seq_len, options_.seed);
        w.put<std::uint64_t>(seen_);
        w.put<std::uint64_t>(draws_);
        store_.save(w);
    }

    //! A record read and validated by `stage` (see `stageable`).
    struct staged_state {
        std::uint64_t seen = 0;                   //!< sequences offered
        std::uint64_t draws = 0;                  //!< draws (a random-stream counter)
        detail::keyed_store::staged_state store;  //!< the held sequences
    };

    //! Reads and validates a state saved by `save` from a buffer with the same settings, without
    //! changing this one. Throws `invalid_argument` when the record does not fit them or could not
    //! come from a run: other settings; counters beyond 2^61 - 1; more sequences than the capacity
    //! or than were offered; ids out of (key, id) order or held twice; a token count other than
    //! seq_len per id; a negative token id.
    staged_state stage(state_reader& r) const {
        r.expect_buffer_header("keyed_reservoir", options_.capacity, options_.seq_len, options_.seed);
        staged_state s;
        s.seen = r.get_counter("seen");
        s.draws = r.get_counter("draws");
        s.store = store_.stage(r, options_.capacity, "the keyed_reservoir");
        if (s.store.items.size() > s.seen)
            r.fail("holds " + std::to_string(s.store.items.size()) + " sequences but only " + std::to_string(s.seen) +
                   " were offered");
        return s;
    }

    //! Installs a record staged by `stage`.
    void commit(staged_state&& s) noexcept {
        seen_ = s.seen;
        draws_ = s.draws;
        store_.commit(std::move(s.store));
    }

    //! `commit(stage(r))`: throws as `stage` does, and then leaves this buffer unchanged.
    void restore(state_reader& r) { commit(stage(r)); }

private:
    template <class T>
    void draw_rows(const strided_view<T, 2>& o, const row_shard& shard) {
        detail::draw_stored_rows(o, shard, size(), options_.seed, draws_, [this](index_t i) { return sequence(i); },
                                 "keyed_reservoir::draw");
        ++draws_;
    }

    keyed_reservoir_options options_;
    detail::keyed_store store_;
    std::uint64_t seen_ = 0;
    std::uint64_t draws_ = 0;
};

} // namespace selfreplay
