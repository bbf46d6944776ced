#pragma once
//! \file
//! Internal: the uniform draw with replacement shared by the stored-exemplar buffers, whole
//! batches and shards of them. Not part of the public API.

#include <cstdint>
#include <string_view>

#include "selfreplay/replay/detail/random.hpp"
#include "selfreplay/replay/shard.hpp"
#include "selfreplay/replay/source.hpp"
#include "selfreplay/error.hpp"

namespace selfreplay::detail {

//! Writes rows [shard.begin, shard.end) of draw batch number `batch_index` into `out`: row r of
//! the batch is stored sequence i, the r-th uniform index in [0, n) of stream (seed, draw,
//! batch_index), and `row_of(i)` points at its tokens. Throws `invalid_argument(where, "this")`
//! when n is 0 (the caller counts the batch only after a successful draw).
template <class T, class RowOf>
void draw_stored_rows(const strided_view<T, 2>& out, const row_shard& shard, index_t n, std::uint64_t seed,
                      std::uint64_t batch_index, RowOf row_of, std::string_view where) {
    require(n > 0, where, "this", "is an empty buffer: add sequences before drawing");
    index_rng rng(seed, stream_id(replay_stream::draw, batch_index));
    for (index_t r = 0; r < shard.end; ++r) {
        const auto i = static_cast<index_t>(rng.below(static_cast<std::uint64_t>(n)));
        if (r >= shard.begin) copy_row_in(row_of(i), out, r - shard.begin);
    }
}

} // namespace selfreplay::detail
