#pragma once
//! \file
//! `ring_buffer`: the most recent sequences of a stream (first in, first out).

#include <cstdint>
#include <utility>

#include "selfreplay/error.hpp"
#include "selfreplay/replay/detail/sequence_store.hpp"
#include "selfreplay/replay/source.hpp"
#include "selfreplay/replay/state_io.hpp"

namespace selfreplay {

//! Settings of a `ring_buffer`.
struct ring_options {
    index_t capacity = 0;    //!< sequences kept, >= 1
    index_t seq_len = 0;     //!< tokens per sequence, >= 1
    std::uint64_t seed = 0;  //!< random seed of draws
};

//! Stored-exemplar replay over a sliding window: keeps the last `capacity` sequences added
//! (sequence n goes to slot n mod capacity, overwriting the oldest). `draw` fills a batch with
//! stored sequences drawn uniformly with replacement from stream (seed, batch index).
class ring_buffer {
public:
    using options_type = ring_options; //!< the settings type (state files, generic code)

    //! Throws `invalid_argument` when capacity or seq_len is below 1.
    explicit ring_buffer(const ring_options& options)
        : options_(options), store_("ring_buffer", options.capacity, options.seq_len, options.seed) {}

    //! Appends each row of `tokens` ([N, seq_len] int32 or int64 ids), overwriting the oldest when full.
    template <class X>
    void add(const X& tokens) {
        const auto v = detail::token_rows(tokens, options_.seq_len, "ring_buffer::add", "tokens");
        detail::require_token_ids(v, "ring_buffer::add", "tokens");
        for (index_t r = 0; r < v.extent(0); ++r)
            store_.put(v, r, static_cast<index_t>(store_.count_offer() % static_cast<std::uint64_t>(options_.capacity)));
    }

    //! Fills every row of `out` ([B, seq_len] int32 or int64 ids) with a stored sequence drawn uniformly with
    //! replacement. Throws `invalid_argument` when the buffer is empty or `out` has another row length.
    template <class X>
    void draw(X&& out) {
        store_.draw(std::forward<X>(out));
    }

    //! Data parallelism: writes rows [shard.begin, shard.end) of the next global batch of `batch`
    //! rows (the rows `draw` of a [batch, seq_len] `out` would write there) into `out`
    //! ([end - begin, seq_len]), advancing as that draw does; so ranks holding the same contents
    //! and drawing their `shard_of(batch, rank, ranks)` together draw the single-process batch.
    //! Throws `invalid_argument` naming `shard` unless 0 <= begin <= end <= batch, and `out` when
    //! its row count is not end - begin.
    template <class X>
    void draw(X&& out, index_t batch, const row_shard& shard) {
        store_.draw(std::forward<X>(out), batch, shard);
    }

    index_t seq_len() const noexcept { return options_.seq_len; }   //!< tokens per sequence
    index_t capacity() const noexcept { return options_.capacity; } //!< maximum sequences kept
    //! Sequences currently stored: min(seen(), capacity()).
    index_t size() const noexcept { return store_.size(); }
    std::uint64_t seen() const noexcept { return store_.seen(); } //!< sequences added so far
    //! Pointer to the i-th oldest stored sequence (seq_len() ids), 0 <= i < size().
    const std::int32_t* sequence(index_t i) const noexcept {
        const std::uint64_t first = seen() - static_cast<std::uint64_t>(size());
        return store_.slot(static_cast<index_t>((first + static_cast<std::uint64_t>(i)) % static_cast<std::uint64_t>(options_.capacity)));
    }
    const ring_options& options() const noexcept { return options_; } //!< the settings

    //! Appends the state (contents and counters) to `w`.
    void save(state_writer& w) const { store_.save(w); }

    //! A record read and validated by `stage` (see `stageable`).
    using staged_state = detail::sequence_store::staged_state;
    //! Reads and validates a state saved by `save` from a buffer with the same settings, without
    //! changing this one; throws `invalid_argument` when the record does not fit them (settings,
    //! counters, contents size, negative ids).
    staged_state stage(state_reader& r) const { return store_.stage(r); }
    //! Installs a record staged by `stage`.
    void commit(staged_state&& s) noexcept { store_.commit(std::move(s)); }
    //! `commit(stage(r))`: throws as `stage` does, and then leaves this buffer unchanged.
    void restore(state_reader& r) { commit(stage(r)); }

private:
    ring_options options_;
    detail::sequence_store store_;
};

} // namespace selfreplay
