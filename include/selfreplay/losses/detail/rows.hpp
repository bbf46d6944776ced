#pragma once
//! \file
//! Internal: the per-row kernels of the losses (rows.inl), on one contiguous row of V logits,
//! compiled once per ISA path (detail/simd/simd.hpp) and called through `detail::dispatch`:
//! `cross_entropy_row`, `kl_forward_row`, `kl_reverse_row`, `jsd_row`.
//! Each kernel reads a row from memory at most three times (the single-read kernels, cross-entropy
//! and forward KL: once, block by block, the second look at a block served from L1).
//! Sums are taken in float/double registers lane by lane and flushed to double at every block (or
//! every `flush_every` registers), in a fixed order: results are deterministic for a path (and
//! differ between paths by rounding only, docs/performance.md).
//! Gradient outputs may alias the first (student) input: every pass that writes `g` reads the
//! inputs at the same index first.
//! Not part of the public API.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "selfreplay/detail/simd/simd.hpp"

namespace selfreplay::detail {

//! What a row kernel found wrong with its inputs (the caller turns it into an exception), or
//! `retry_in_double`: a float row whose logits are too large for float exponent arithmetic
//! (beyond about 1e38 in magnitude), to be evaluated in double by the caller.
enum class row_status { ok, first_not_finite, second_not_finite, first_all_neg_inf, second_all_neg_inf, retry_in_double };

//! Value of one row and the status of its inputs.
struct row_value {
    double value = 0;
    row_status status = row_status::ok;
};

//! Registers summed in T before a flush to double (the kernels without blocks).
inline constexpr index_t flush_every = 64;

//! Elements per block of the single-read kernels: a block is read from memory once (max scan)
//! and then served from L1 for the exponentials.
inline constexpr index_t block_elems = 1024;

//! Number of blocks of a row of n elements (the size of the kernels' `block_coefs` scratch, per input).
inline index_t block_count(index_t n) noexcept { return (n + block_elems - 1) / block_elems; }

//! True when a row's running max and sum of exponentials show a NaN or +inf input
//! (a NaN input makes its exponential, hence the sum, NaN; +inf is the max).
template <class T>
inline bool bad_input(T max, double z) noexcept {
    return max == std::numeric_limits<T>::infinity() || std::isnan(z);
}

//! The block kernels' exponent unit per nat: float works in base 2 (log2(e)), double in base e (1).
template <class T>
inline constexpr double exp_unit = std::is_same_v<T, float> ? 1.4426950408889634 : 1.0;

//! u^x in double for the kernels' unit: 2^x for float rows, e^x for double rows.
template <class T>
inline double unit_pow(double x) noexcept {
    return std::is_same_v<T, float> ? std::exp2(x) : std::exp(x);
}

} // namespace selfreplay::detail

#define SELFREPLAY_SIMD_BODY "selfreplay/losses/detail/rows.inl"
#include "selfreplay/detail/simd/foreach_isa.inl"
