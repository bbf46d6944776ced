#pragma once
//! \file
//! Internal: `sequence_store`, the storage shared by the stored-exemplar buffers
//! (`reservoir_buffer`, `ring_buffer`): up to `capacity` sequences of `seq_len` token ids in
//! slots, the count of sequences offered, uniform draws with replacement, and the saved state.
//! The buffers differ only in which slot a new sequence takes. Not part of the public API.

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

namespace selfreplay::detail {

class sequence_store {
public:
    //! `owner` names the buffer in error messages and in the saved state's tag. Throws
    //! `invalid_argument` when capacity or seq_len is below 1.
    sequence_store(const char* owner, index_t capacity, index_t seq_len, std::uint64_t seed)
        : owner_(owner), capacity_(capacity), seq_len_(seq_len), seed_(seed) {
        require(capacity >= 1, owner, "capacity", "must be at least 1, got ", capacity);
        require(seq_len >= 1, owner, "seq_len", "must be at least 1, got ", seq_len);
        data_.reserve(static_cast<std::size_t>(capacity * seq_len));
    }

    index_t capacity() const noexcept { return capacity_; }
    index_t seq_len() const noexcept { return seq_len_; }
    std::uint64_t seed() const noexcept { return seed_; }
    //! Slots filled: min(seen(), capacity()).
    index_t size() const noexcept { return static_cast<index_t>(data_.size()) / seq_len_; }
    //! Sequences offered so far.
    std::uint64_t seen() const noexcept { return seen_; }
    //! Counts one more offered sequence and returns its 0-based index.
    std::uint64_t count_offer() noexcept { return seen_++; }
    //! Token ids of slot i (seq_len() of them), 0 <= i < size().
    const std::int32_t* slot(index_t i) const noexcept { return data_.data() + i * seq_len_; }

    //! Copies row r of `rows` into slot `i` (0 <= i <= size() < capacity appends a slot).
    template <class T>
    void put(const strided_view<T, 2>& rows, index_t r, index_t i) {
        if (i == size()) data_.resize(data_.size() + static_cast<std::size_t>(seq_len_));
        copy_row_out(rows, r, data_.data() + i * seq_len_);
    }

    //! Fills every row of `out` with a slot drawn uniformly with replacement from stream
    //! (seed, draw batch index). Throws `invalid_argument` when the store is empty or `out` has
    //! another row length.
    template <class X>
    void draw(X&& out) {
        const std::string where = std::string(owner_) + "::draw";
        const auto o = token_rows(out, seq_len_, where.c_str(), "out");
        draw_rows(o, {0, o.extent(0)}, where);
    }

    //! Rows [shard.begin, shard.end) of the next global batch of `batch` rows (what `draw` of
    //! `batch` rows would write there) into `out` ([end - begin, seq_len]); advances as that draw.
    template <class X>
    void draw(X&& out, index_t batch, const row_shard& shard) {
        const std::string where = std::string(owner_) + "::draw";
        const auto o = token_rows(out, seq_len_, where.c_str(), "out");
        require_sharded_draw(o.extent(0), batch, shard, where);
        draw_rows(o, shard, where);
    }

    //! Appends the state: the owner's tag, the settings, both counters and the slots.
    void save(state_writer& w) const {
        w.buffer_header(owner_, capacity_, seq_len_, seed_);
        w.put<std::uint64_t>(seen_);
        w.put<std::uint64_t>(draws_);
        w.put_array(data_);
    }

    //! A record read and validated by `stage`, installed by `commit`.
    struct staged_state {
        std::uint64_t seen = 0, draws = 0;
        std::vector<std::int32_t> data;
    };

    //! Reads and validates a record saved by `save` from a store with the same owner and
    //! settings, without changing this store; throws `invalid_argument` when it does not fit
    //! them: other settings, counters beyond 2^61 - 1, contents other than min(seen, capacity)
    //! sequences, a negative token id.
    staged_state stage(state_reader& r) const {
        r.expect_buffer_header(owner_, capacity_, seq_len_, seed_);
        staged_state s;
        s.seen = r.get_counter("seen");
        s.draws = r.get_counter("draws");
        s.data = r.get_array<std::int32_t>("contents");
        const auto rows = s.seen < static_cast<std::uint64_t>(capacity_) ? s.seen : static_cast<std::uint64_t>(capacity_);
        if (s.data.size() != rows * static_cast<std::uint64_t>(seq_len_))
            r.fail("holds " + std::string(owner_) + " contents of " + std::to_string(s.data.size()) + " ids where " +
                   std::to_string(rows) + " sequences of " + std::to_string(seq_len_) + " were expected");
        for (std::size_t i = 0; i < s.data.size(); ++i)
            if (s.data[i] < 0)
                r.fail("holds a negative token id " + std::to_string(s.data[i]) + " in " + std::string(owner_) + " sequence " +
                       std::to_string(i / static_cast<std::size_t>(seq_len_)));
        return s;
    }

    //! Installs a record staged by `stage`.
    void commit(staged_state&& s) noexcept {
        seen_ = s.seen;
        draws_ = s.draws;
        data_ = std::move(s.data);
    }

private:
    template <class T>
    void draw_rows(const strided_view<T, 2>& o, const row_shard& shard, const std::string& where) {
        draw_stored_rows(o, shard, size(), seed_, draws_, [this](index_t i) { return slot(i); }, where);
        ++draws_;
    }

    const char* owner_;
    index_t capacity_, seq_len_;
    std::uint64_t seed_;
    std::vector<std::int32_t> data_;
    std::uint64_t seen_ = 0;
    std::uint64_t draws_ = 0;
};

} // namespace selfreplay::detail
