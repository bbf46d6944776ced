#pragma once
//! \file
//! `row_shard` and `shard_of`: which rows of a global batch one of several data-parallel ranks
//! draws, so that the shards of all ranks put together are the batch one process would draw.

#include <cstdint>
#include <string_view>

#include "selfreplay/error.hpp"
#include "selfreplay/tensor/strided_view.hpp"

namespace selfreplay {

//! Rows [begin, end) of a global batch (0-based row indices).
struct row_shard {
    index_t begin = 0; //!< first row, >= 0
    index_t end = 0;   //!< one past the last row, begin <= end <= batch
    index_t rows() const noexcept { return end - begin; } //!< end - begin
    friend bool operator==(const row_shard&, const row_shard&) = default; //!< same begin and end
};

//! The shard of rank `rank` of `ranks` over a batch of `batch` rows: contiguous ranges in rank
//! order, the first batch mod ranks ranks getting one row more than the others (floor(batch /
//! ranks) rows; a rank gets no row when ranks > batch). Throws `invalid_argument` naming `batch`
//! (< 0), `ranks` (< 1) or `rank` (outside [0, ranks)).
inline row_shard shard_of(index_t batch, index_t rank, index_t ranks) {
    require(batch >= 0, "shard_of", "batch", "must be >= 0, got ", batch);
    require(ranks >= 1, "shard_of", "ranks", "must be at least 1, got ", ranks);
    require(rank >= 0 && rank < ranks, "shard_of", "rank", "must be in [0, ranks = ", ranks, "), got ", rank);
    const index_t base = batch / ranks, extra = batch % ranks;
    const index_t begin = rank * base + (rank < extra ? rank : extra);
    return {begin, begin + base + (rank < extra ? 1 : 0)};
}

//! A replay source that can draw a shard of a global batch.
//!
//! \par Required expressions
//! For `s` an lvalue of `S` (a `replay_source`), `batch` an `index_t` and `shard` a `row_shard`:
//! - `s.draw(out, batch, shard)`: writes rows [shard.begin, shard.end) of the next global batch of
//!   `batch` rows into `out` ([end - begin, seq_len]) and advances as the draw of the whole batch
//!   would.
//!
//! \par Models
//! `reservoir_buffer`, `ring_buffer`, `task_balanced_buffer`, `keyed_reservoir`,
//! `keyed_task_balanced_buffer`, `weighted_mixture` of such sources. (`self_generated` is sharded
//! once, at construction: `self_generated_options::shard`.)
template <class S>
concept sharded_replay_source = requires(S& s, strided_view<std::int32_t, 2> out, index_t batch, row_shard shard) {
    s.draw(out, batch, shard);
};

namespace detail {
//! Throws `invalid_argument(where, argument, ...)` unless 0 <= shard.begin <= shard.end <= batch.
inline void require_shard(const row_shard& shard, index_t batch, std::string_view where, std::string_view argument) {
    require(shard.begin >= 0, where, argument, "has begin ", shard.begin, ", which must be >= 0");
    require(shard.begin <= shard.end, where, argument, "has begin ", shard.begin, " > end ", shard.end);
    require(shard.end <= batch, where, argument, "has end ", shard.end, " beyond the batch of ", batch, " rows");
}

//! The argument checks of a sharded `draw(out, batch, shard)`: throws `invalid_argument(where,
//! ...)` naming `batch` when it is negative, `shard` as `require_shard` does, and `out` when its
//! row count `out_rows` is not shard.rows().
inline void require_sharded_draw(index_t out_rows, index_t batch, const row_shard& shard, std::string_view where) {
    require(batch >= 0, where, "batch", "must be >= 0, got ", batch);
    require_shard(shard, batch, where, "shard");
    require(out_rows == shard.rows(), where, "out", "has ", out_rows, " rows but the shard has ", shard.rows());
}
} // namespace detail

} // namespace selfreplay
