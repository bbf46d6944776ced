#pragma once
//! \file
//! `reservoir_buffer`: a fixed-capacity uniform sample of a stream of sequences.

#include <cstdint>
#include <string>
#include <vector>

#include "selfreplay/replay/detail/random.hpp"
#include "selfreplay/replay/source.hpp"
#include "selfreplay/replay/state_io.hpp"
#include "selfreplay/tensor/error.hpp"

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
    using options_type = reservoir_options;

    //! Throws `invalid_argument` when capacity or seq_len is below 1.
    explicit reservoir_buffer(const reservoir_options& options) : options_(options) {
        require(options.capacity >= 1, "reservoir_buffer", "capacity",
                "must be at least 1, got " + std::to_string(options.capacity));
        require(options.seq_len >= 1, "reservoir_buffer", "seq_len",
                "must be at least 1, got " + std::to_string(options.seq_len));
        data_.reserve(static_cast<std::size_t>(options.capacity * options.seq_len));
    }

    //! Offers each row of `tokens` ([N, seq_len] int32, any tensor) to the reservoir, in order.
    //! Throws `invalid_argument` for a row length other than seq_len or a negative id.
    template <class X>
    void add(const X& tokens) {
        const auto v = detail::token_rows(tokens, options_.seq_len, "reservoir_buffer::add", "tokens");
        detail::require_token_ids(v, "reservoir_buffer::add", "tokens");
        for (index_t r = 0; r < v.extent(0); ++r) {
            const std::uint64_t n = seen_++;
            if (size() < options_.capacity) {
                data_.resize(data_.size() + static_cast<std::size_t>(options_.seq_len));
                detail::copy_row_out(v, r, data_.data() + (size() - 1) * options_.seq_len);
                continue;
            }
            detail::index_rng rng(options_.seed, detail::stream_id(detail::replay_stream::ingest, n));
            const std::uint64_t j = rng.below(n + 1);
            if (j < static_cast<std::uint64_t>(options_.capacity))
                detail::copy_row_out(v, r, data_.data() + static_cast<index_t>(j) * options_.seq_len);
        }
    }

    //! Fills every row of `out` ([B, seq_len] int32) with a stored sequence drawn uniformly with
    //! replacement. Throws `invalid_argument` when the buffer is empty or `out` has another row length.
    template <class X>
    void draw(X&& out) {
        const auto o = detail::token_rows(out, options_.seq_len, "reservoir_buffer::draw", "out");
        require(size() > 0, "reservoir_buffer::draw", "this", "is an empty buffer: add sequences before drawing");
        detail::index_rng rng(options_.seed, detail::stream_id(detail::replay_stream::draw, draws_++));
        for (index_t r = 0; r < o.extent(0); ++r) {
            const auto i = static_cast<index_t>(rng.below(static_cast<std::uint64_t>(size())));
            detail::copy_row_in(data_.data() + i * options_.seq_len, o, r);
        }
    }

    index_t seq_len() const noexcept { return options_.seq_len; }   //!< tokens per sequence
    index_t capacity() const noexcept { return options_.capacity; } //!< maximum sequences kept
    //! Sequences currently stored: min(seen(), capacity()).
    index_t size() const noexcept { return static_cast<index_t>(data_.size()) / options_.seq_len; }
    std::uint64_t seen() const noexcept { return seen_; } //!< sequences offered so far
    //! Pointer to stored sequence i (seq_len() ids), 0 <= i < size().
    const std::int32_t* sequence(index_t i) const noexcept { return data_.data() + i * options_.seq_len; }
    const reservoir_options& options() const noexcept { return options_; } //!< the settings

    //! Appends the state (contents and counters) to `w`.
    void save(state_writer& w) const {
        w.tag("reservoir_buffer");
        w.put<std::int64_t>(options_.capacity);
        w.put<std::int64_t>(options_.seq_len);
        w.put<std::uint64_t>(options_.seed);
        w.put<std::uint64_t>(seen_);
        w.put<std::uint64_t>(draws_);
        w.put_array(data_);
    }

    //! Restores a state saved by `save` from a buffer with the same settings; throws
    //! `invalid_argument` (leaving this buffer unchanged) when the record does not fit them.
    void restore(state_reader& r) {
        r.expect_tag("reservoir_buffer");
        const auto capacity = r.get<std::int64_t>("capacity");
        const auto seq_len = r.get<std::int64_t>("seq_len");
        const auto seed = r.get<std::uint64_t>("seed");
        if (capacity != options_.capacity || seq_len != options_.seq_len || seed != options_.seed)
            r.fail("holds a reservoir_buffer with other settings (capacity " + std::to_string(capacity) + ", seq_len " +
                   std::to_string(seq_len) + ", seed " + std::to_string(seed) + ")");
        const auto seen = r.get<std::uint64_t>("seen");
        const auto draws = r.get<std::uint64_t>("draws");
        auto data = r.get_array<std::int32_t>("contents");
        const auto expected_rows = seen < static_cast<std::uint64_t>(capacity) ? seen : static_cast<std::uint64_t>(capacity);
        if (data.size() != expected_rows * static_cast<std::uint64_t>(seq_len))
            r.fail("holds reservoir contents of inconsistent size");
        seen_ = seen;
        draws_ = draws;
        data_ = std::move(data);
    }

private:
    reservoir_options options_;
    std::vector<std::int32_t> data_;
    std::uint64_t seen_ = 0;
    std::uint64_t draws_ = 0;
};

} // namespace selfreplay
