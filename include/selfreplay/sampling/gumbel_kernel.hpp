#pragma once
//! \file
//! The dense-row kernel of `gumbel_max` (namespace `selfreplay::sampling_detail::gumbel`, not
//! public API): Philox4x32-10 evaluated for L blocks at once (L = 4, 8 or 16 32-bit lanes on the
//! sse2, avx2 and avx512 paths) and the Gumbel noise -ln(-ln u) in float lanes, as a filter in
//! front of the exact double-precision scores of the tokens that can still win. The vector code is
//! sampling/detail/gumbel.inl, compiled once per ISA path (detail/simd/simd.hpp); the token it
//! returns is the same on every path (the exact double scores decide).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "selfreplay/detail/simd/simd.hpp"
#include "selfreplay/random/counter_rng.hpp"
#include "selfreplay/sampling/kernels.hpp"

namespace selfreplay::sampling_detail::gumbel {

//! Bound on |float noise - (-ln(-ln u))| (the latter in exact arithmetic) over every word w, on
//! every path: tests/sampling asserts it on all 2^23 values of u (the measured error is below 3e-6).
inline constexpr double noise_error_bound = 1e-4;

//! The noise of the token at word w of the stream, in double: the reference computation,
//! -ln(-ln u) with u = (2 (w >> 9) + 1) 2^-24.
inline double exact_noise(std::uint32_t w) noexcept {
    const double u = double(2 * (w >> 9) + 1) * 0x1p-24;
    return -std::log(-std::log(u));
}

//! Result of `gumbel_dense`.
struct dense_result {
    std::int64_t best; //!< the token, -1 when every entry is -inf
    bool bad;          //!< some entry is NaN or +inf
};

} // namespace selfreplay::sampling_detail::gumbel

//! The per-path body that detail/simd/foreach_isa.inl includes once per ISA path (internal).
#define SELFREPLAY_SIMD_BODY "selfreplay/sampling/detail/gumbel.inl"
#include "selfreplay/detail/simd/foreach_isa.inl"

namespace selfreplay::sampling_detail::gumbel {

//! argmax_i (x_i - ln(-ln u_i)) over x[0..n), u_i from word c0 + i of `rng`'s stream (as the
//! scalar loop of `gumbel_max`: exact double scores, lowest index among ties), on the active ISA
//! path (`gumbel_dense_row` in sampling/detail/gumbel.inl). `group_maxima` is scratch.
inline dense_result gumbel_dense(const float* x, std::size_t n, const counter_rng& rng, std::vector<float>& group_maxima) {
    return detail::dispatch(active_isa(), [&](auto tag) { return gumbel_dense_row(tag, x, n, rng, group_maxima); });
}

//! out[i] = the float Gumbel noise of words[i] as `gumbel_dense` computes it on path `path`, for
//! i < n (n a multiple of 16): for tests of its accuracy.
inline void float_noise(isa path, const std::uint32_t* words, std::size_t n, float* out) {
    detail::dispatch(path, [&](auto tag) { gumbel_noise(tag, words, n, out); });
}

} // namespace selfreplay::sampling_detail::gumbel
