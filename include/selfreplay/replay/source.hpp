#pragma once
//! \file
//! The `replay_source` concept: anything that fills a batch of replay sequences.

#include <concepts>
#include <cstdint>
#include <string>
#include <type_traits>

#include "selfreplay/tensor/concept.hpp"
#include "selfreplay/tensor/strided_view.hpp"

namespace selfreplay {

//! A batch of token sequences, [rows, seq_len], `std::int32_t` ids: what sources write.
using token_batch_view = strided_view<std::int32_t, 2>;

//! A read-only batch of token sequences, [rows, seq_len].
using const_token_batch_view = strided_view<const std::int32_t, 2>;

//! A replay source produces replay batches: sequences of a fixed length `seq_len()`.
//!
//! Required expressions, for `s` an lvalue of `S` and `out` a `token_batch_view` of extents
//! [B, s.seq_len()]:
//! - `s.seq_len()`: the length T of every sequence it produces (convertible to `index_t`);
//! - `s.draw(out)`: writes the next B replay sequences into the rows of `out`, advancing the
//!   source's state (a second call gives the next batch); throws `invalid_argument` when it
//!   cannot (an empty buffer, a mismatched `out`).
//!
//! Laws: deterministic given the source's construction and the sequence of calls; when the
//! source also models `saveable`, restoring a saved state reproduces the batches that followed it.
//! Models: `reservoir_buffer`, `task_balanced_buffer`, `ring_buffer`, `weighted_mixture`,
//! `self_generated`; a user type models it with these two members and no registration.
template <class S>
concept replay_source = requires(S& s, const S& cs, token_batch_view out) {
    { cs.seq_len() } -> std::convertible_to<index_t>;
    s.draw(out);
};

namespace detail {

//! Throws `invalid_argument(where, argument, why())` unless `ok`; the message is built only on
//! failure, so checks on the per-step path allocate nothing.
template <class F>
void check(bool ok, std::string_view where, std::string_view argument, F&& why) {
    if (!ok) throw invalid_argument(where, argument, why());
}

//! Views `x` as [rows, seq_len] int32 token rows, checking the shape; `where`/`argument` name the
//! caller for messages.
template <class X>
auto token_rows(X&& x, index_t seq_len, std::string_view where, std::string_view argument) {
    static_assert(tensor<X>, "selfreplay: a token batch must model selfreplay::tensor (include its adapter header)");
    auto v = view<2>(x);
    static_assert(std::is_same_v<std::remove_cv_t<typename decltype(v)::element_type>, std::int32_t>,
                  "selfreplay: token batches must hold std::int32_t ids");
    check(v.extent(1) == seq_len, where, argument, [&] {
        return "must have rows of length seq_len = " + std::to_string(seq_len) + ", got " + std::to_string(v.extent(1));
    });
    return v;
}

//! Rows [begin, begin + count) of a [rows, cols] view, as a view (no copy).
template <class T>
strided_view<T, 2> row_range(const strided_view<T, 2>& v, index_t begin, index_t count) {
    return {v.data() + begin * v.stride(0), {count, v.extent(1)}, {v.stride(0), v.stride(1)}};
}

//! Copies row `r` of `src` to the contiguous `dst` (`src.extent(1)` elements).
template <class T>
void copy_row_out(const strided_view<T, 2>& src, index_t r, std::int32_t* dst) {
    for (index_t t = 0; t < src.extent(1); ++t) dst[t] = src(r, t);
}

//! Copies the contiguous `src` into row `r` of `dst`.
inline void copy_row_in(const std::int32_t* src, const token_batch_view& dst, index_t r) {
    for (index_t t = 0; t < dst.extent(1); ++t) dst(r, t) = src[t];
}

//! Throws unless every id of `v` is non-negative.
template <class T>
void require_token_ids(const strided_view<T, 2>& v, std::string_view where, std::string_view argument) {
    for (index_t r = 0; r < v.extent(0); ++r)
        for (index_t t = 0; t < v.extent(1); ++t)
            if (v(r, t) < 0)
                throw invalid_argument(where, argument,
                                       "holds a negative token id " + std::to_string(v(r, t)) + " at row " +
                                           std::to_string(r) + ", position " + std::to_string(t));
}

} // namespace detail
} // namespace selfreplay
