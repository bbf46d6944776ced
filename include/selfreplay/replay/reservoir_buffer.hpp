#pragma once
//! \file
//! `reservoir_buffer`: a fixed-capacity uniform sample of a stream of sequences.

#include <cstdint>
#include <utility>

#include "selfreplay/error.hpp"
#include "selfreplay/replay/detail/random.hpp"
#include "selfreplay/replay/detail/sequence_store.hpp"
#include "selfreplay/replay/source.hpp"
#include "selfreplay/replay/state_io.hpp"

namespace selfreplay {

//! Settings of a `reservoir_buffer`.
struct reservoir_options {
    index_t capacity = 0;    //!< sequences kept, >= 1
    index_t seq_len = 0;     //!< tokens per sequence, >= 1
    std::uint64_t seed = 0;  //!< random seed of insertion and draws
};

//! Stored-exemplar replay by reservoir sampling (Vitter 1985, Algorithm R; Avalanche's
//! `ReservoirSamplingBuffer`): after n sequences have been added, the buffer holds a uniformly
//! random subset of min(n, capacity) of them. The n-th sequence (0-based) is kept outright while
//! n < capacity; otherwise j is drawn uniformly from [0, n] and the sequence replaces slot j when
//! j < capacity. `draw` fills a batch with stored sequences drawn uniformly with replacement.
//! Random numbers come from counter-keyed streams (seed, item index) and (seed, batch index), so
//! the state is the contents plus two counters, saved exactly by `save` / `restore`.
class reservoir_buffer {
public:
    using options_type = reservoir_options; //!< the settings type (state files, generic code)

    //! Throws `invalid_argument` when capacity or seq_len is below 1.
    explicit reservoir_buffer(const reservoir_options& options)
        : options_(options), store_("reservoir_buffer", options.capacity, options.seq_len, options.seed) {}

    //! Offers each row of `tokens` ([N, seq_len] int32 or int64 ids, any tensor) to the reservoir, in order.
    //! Throws `invalid_argument` for a row length other than seq_len or a negative id.
    template <class X>
    void add(const X& tokens) {
        const auto v = detail::token_rows(tokens, options_.seq_len, "reservoir_buffer::add", "tokens");
        detail::require_token_ids(v, "reservoir_buffer::add", "tokens");
        for (index_t r = 0; r < v.extent(0); ++r) {
            const std::uint64_t n = store_.count_offer();
            if (size() < options_.capacity) {
                store_.put(v, r, size());
                continue;
            }
            detail::index_rng rng(options_.seed, detail::stream_id(detail::replay_stream::ingest, n));
            const std::uint64_t j = rng.below(n + 1);
            if (j < static_cast<std::uint64_t>(options_.capacity)) store_.put(v, r, static_cast<index_t>(j));
        }
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
    std::uint64_t seen() const noexcept { return store_.seen(); } //!< sequences offered so far
    //! Pointer to stored sequence i (seq_len() ids), 0 <= i < size().
    const std::int32_t* sequence(index_t i) const noexcept { return store_.slot(i); }
    const reservoir_options& options() const noexcept { return options_; } //!< the settings

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
    reservoir_options options_;
    detail::sequence_store store_;
};

} // namespace selfreplay
