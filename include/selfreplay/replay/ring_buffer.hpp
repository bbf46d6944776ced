#pragma once
//! \file
//! `ring_buffer`: the most recent sequences of a stream (first in, first out).

#include <cstdint>
#include <string>
#include <vector>

#include "selfreplay/replay/detail/random.hpp"
#include "selfreplay/replay/source.hpp"
#include "selfreplay/replay/state_io.hpp"
#include "selfreplay/tensor/error.hpp"

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
    using options_type = ring_options;

    //! Throws `invalid_argument` when capacity or seq_len is below 1.
    explicit ring_buffer(const ring_options& options) : options_(options) {
        require(options.capacity >= 1, "ring_buffer", "capacity", "must be at least 1, got " + std::to_string(options.capacity));
        require(options.seq_len >= 1, "ring_buffer", "seq_len", "must be at least 1, got " + std::to_string(options.seq_len));
    }

    //! Appends each row of `tokens` ([N, seq_len] int32), overwriting the oldest when full.
    template <class X>
    void add(const X& tokens) {
        const auto v = detail::token_rows(tokens, options_.seq_len, "ring_buffer::add", "tokens");
        detail::require_token_ids(v, "ring_buffer::add", "tokens");
        for (index_t r = 0; r < v.extent(0); ++r) {
            const auto slot = static_cast<index_t>(seen_++ % static_cast<std::uint64_t>(options_.capacity));
            if (slot * options_.seq_len == static_cast<index_t>(data_.size()))
                data_.resize(data_.size() + static_cast<std::size_t>(options_.seq_len));
            detail::copy_row_out(v, r, data_.data() + slot * options_.seq_len);
        }
    }

    //! Fills every row of `out` ([B, seq_len] int32) with a stored sequence drawn uniformly with
    //! replacement. Throws `invalid_argument` when the buffer is empty or `out` has another row length.
    template <class X>
    void draw(X&& out) {
        const auto o = detail::token_rows(out, options_.seq_len, "ring_buffer::draw", "out");
        require(size() > 0, "ring_buffer::draw", "this", "is an empty buffer: add sequences before drawing");
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
    std::uint64_t seen() const noexcept { return seen_; } //!< sequences added so far
    //! Pointer to the i-th oldest stored sequence (seq_len() ids), 0 <= i < size().
    const std::int32_t* sequence(index_t i) const noexcept {
        const std::uint64_t first = seen_ - static_cast<std::uint64_t>(size());
        const auto slot = static_cast<index_t>((first + static_cast<std::uint64_t>(i)) % static_cast<std::uint64_t>(options_.capacity));
        return data_.data() + slot * options_.seq_len;
    }
    const ring_options& options() const noexcept { return options_; } //!< the settings

    //! Appends the state (contents and counters) to `w`.
    void save(state_writer& w) const {
        w.tag("ring_buffer");
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
        r.expect_tag("ring_buffer");
        const auto capacity = r.get<std::int64_t>("capacity");
        const auto seq_len = r.get<std::int64_t>("seq_len");
        const auto seed = r.get<std::uint64_t>("seed");
        if (capacity != options_.capacity || seq_len != options_.seq_len || seed != options_.seed)
            r.fail("holds a ring_buffer with other settings (capacity " + std::to_string(capacity) + ", seq_len " +
                   std::to_string(seq_len) + ", seed " + std::to_string(seed) + ")");
        const auto seen = r.get<std::uint64_t>("seen");
        const auto draws = r.get<std::uint64_t>("draws");
        auto data = r.get_array<std::int32_t>("contents");
        const auto rows = seen < static_cast<std::uint64_t>(capacity) ? seen : static_cast<std::uint64_t>(capacity);
        if (data.size() != rows * static_cast<std::uint64_t>(seq_len)) r.fail("holds ring contents of inconsistent size");
        seen_ = seen;
        draws_ = draws;
        data_ = std::move(data);
    }

private:
    ring_options options_;
    std::vector<std::int32_t> data_;
    std::uint64_t seen_ = 0;
    std::uint64_t draws_ = 0;
};

} // namespace selfreplay
