#pragma once
//! \file
//! The `replay_source` concept: anything that fills a batch of replay sequences.

#include <concepts>
#include <cstdint>
#include <string>
#include <type_traits>

#include "selfreplay/error.hpp"
#include "selfreplay/tensor/concept.hpp"
#include "selfreplay/tensor/strided_view.hpp"
#include "selfreplay/tensor/token_ids.hpp"

namespace selfreplay {

//! A batch of token sequences, [rows, seq_len], `std::int32_t` ids: what sources write (every
//! source of the library also writes `std::int64_t` ids, torch's token type; see `token_id`).
using token_batch_view = strided_view<std::int32_t, 2>;

//! The end of the sentence with which a function rejects an argument that does not model
//! `replay_source` (a string literal, for `static_assert`).
#define SELFREPLAY_SOURCE_HINT "(it needs a const member seq_len() and a member draw(token_batch_view out))"

//! A replay source produces replay batches: sequences of a fixed length `seq_len()`.
//!
//! \par Required expressions
//! For `s` an lvalue of `S` and `out` a `token_batch_view` of extents [B, s.seq_len()]:
//! - `s.seq_len()`: the length T of every sequence it produces (convertible to `index_t`);
//! - `s.draw(out)`: writes the next B replay sequences into the rows of `out`, advancing the
//!   source's state (a second call gives the next batch); throws `invalid_argument` when it
//!   cannot (an empty buffer, a mismatched `out`).
//!
//! \par Laws
//! Deterministic given the source's construction and the sequence of calls; when the source also
//! models `saveable`, restoring a saved state reproduces the batches that followed it.
//!
//! \par Models
//! `reservoir_buffer`, `task_balanced_buffer`, `ring_buffer`, `keyed_reservoir`,
//! `weighted_mixture`, `self_generated`; a user type models it with these two members and no
//! registration (examples/custom_strategy).
template <class S>
concept replay_source = requires(S& s, const S& cs, token_batch_view out) {
    { cs.seq_len() } -> std::convertible_to<index_t>;
    s.draw(out);
};

namespace detail {

//! Views `x` as [rows, seq_len] token rows (int32 or int64 ids), checking the shape;
//! `where`/`argument` name the caller for messages.
template <class X>
auto token_rows(X&& x, index_t seq_len, std::string_view where, std::string_view argument) {
    if constexpr (!tensor<X>) {
        static_assert(always_false<X>,
                      "selfreplay: a token batch argument ('out' of draw, 'tokens' of add, 'replay_tokens' of "
                      "mix_batch) does not model selfreplay::tensor " SELFREPLAY_TENSOR_HINT);
        return token_batch_view{}; // no further errors after the sentence
    } else {
        auto v = view<2>(x);
        static_assert(token_id<std::remove_cv_t<typename decltype(v)::element_type>>,
                      "selfreplay: token batches must hold std::int32_t or std::int64_t ids");
        require(v.extent(1) == seq_len, where, argument, "must have rows of length seq_len = ", seq_len, ", got ",
                v.extent(1));
        return v;
    }
}

//! Rows [begin, begin + count) of a [rows, cols] view, as a view (no copy).
template <class T>
strided_view<T, 2> row_range(const strided_view<T, 2>& v, index_t begin, index_t count) {
    return {v.data() + begin * v.stride(0), {count, v.extent(1)}, {v.stride(0), v.stride(1)}};
}

//! Copies row `r` of `src` to the contiguous `dst` (`src.extent(1)` ids; int64 ids narrowed to a
//! store's int32 only after `require_token_ids`).
template <class T, class D>
void copy_row_out(const strided_view<T, 2>& src, index_t r, D* dst) {
    for (index_t t = 0; t < src.extent(1); ++t) dst[t] = static_cast<D>(src(r, t));
}

//! Copies the contiguous `src` into row `r` of `dst` (int32 or int64 ids either side).
template <class S, class D>
void copy_row_in(const S* src, const strided_view<D, 2>& dst, index_t r) {
    for (index_t t = 0; t < dst.extent(1); ++t) dst(r, t) = static_cast<D>(src[t]);
}

//! Throws unless every id of `v` is non-negative (and, for int64 ids, fits the int32 store).
template <class T>
void require_token_ids(const strided_view<T, 2>& v, std::string_view where, std::string_view argument) {
    for (index_t r = 0; r < v.extent(0); ++r)
        for (index_t t = 0; t < v.extent(1); ++t)
            if (v(r, t) < 0 || !fits_int32(v(r, t)))
                throw invalid_argument(where, argument,
                                       std::string(v(r, t) < 0 ? "holds a negative token id " : "holds a token id beyond int32 ") +
                                           std::to_string(v(r, t)) + " at row " + std::to_string(r) + ", position " +
                                           std::to_string(t));
}

} // namespace detail
} // namespace selfreplay
