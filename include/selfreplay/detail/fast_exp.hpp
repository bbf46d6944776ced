#pragma once
//! \file
//! Internal: the compile-time float exponential of the sampling kernels (sampling/kernels.hpp), until
//! they move onto detail/simd/ (the losses use simd::exp there), for any GCC/Clang float vector type
//! (16 or 32 bytes) and for a scalar float. Not part of the public API.

#include <bit>
#include <cstdint>
#include <type_traits>

#if defined(__AVX__) || defined(__SSE2__)
#include <immintrin.h>
#endif

namespace selfreplay::detail {

//! a > b ? a : b (Max) or a < b ? a : b lane by lane, for float or double vectors: the second
//! operand wherever the comparison is false or unordered, as x86's maxps / minps / maxpd / minpd,
//! which this emits (GCC does not infer them from the ternary).
template <bool Max, class V>
[[gnu::always_inline]] inline V extremum_or_second(V a, V b) noexcept {
    using E = std::remove_cvref_t<decltype(a[0])>;
    static_assert(std::is_same_v<E, float> || std::is_same_v<E, double>);
#if defined(__AVX__)
    if constexpr (sizeof(V) == 32 && std::is_same_v<E, float>) {
        const __m256 x = std::bit_cast<__m256>(a), y = std::bit_cast<__m256>(b);
        return std::bit_cast<V>(Max ? _mm256_max_ps(x, y) : _mm256_min_ps(x, y));
    } else if constexpr (sizeof(V) == 32) {
        const __m256d x = std::bit_cast<__m256d>(a), y = std::bit_cast<__m256d>(b);
        return std::bit_cast<V>(Max ? _mm256_max_pd(x, y) : _mm256_min_pd(x, y));
    }
#endif
#if defined(__SSE2__)
    if constexpr (sizeof(V) == 16 && std::is_same_v<E, float>) {
        const __m128 x = std::bit_cast<__m128>(a), y = std::bit_cast<__m128>(b);
        return std::bit_cast<V>(Max ? _mm_max_ps(x, y) : _mm_min_ps(x, y));
    } else if constexpr (sizeof(V) == 16) {
        const __m128d x = std::bit_cast<__m128d>(a), y = std::bit_cast<__m128d>(b);
        return std::bit_cast<V>(Max ? _mm_max_pd(x, y) : _mm_min_pd(x, y));
    }
#endif
    if constexpr (Max)
        return a > b ? a : b;
    else
        return a < b ? a : b;
}

//! a > b ? a : b lane by lane: max_or_second(lo, x) is max(x, lo) with NaN x kept,
//! max_or_second(x, lo) the same with NaN x replaced by lo. One maxps / maxpd on x86.
template <class V>
[[gnu::always_inline]] inline V max_or_second(V a, V b) noexcept {
    return extremum_or_second<true>(a, b);
}

//! a < b ? a : b lane by lane: min_or_second(hi, x) is min(x, hi) with NaN x kept. One minps /
//! minpd on x86.
template <class V>
[[gnu::always_inline]] inline V min_or_second(V a, V b) noexcept {
    return extremum_or_second<false>(a, b);
}

//! exp(x) lane by lane for a float vector `V` (GCC/Clang vector extension), for x <= 88.
//!
//! Cody-Waite reduction x = n ln 2 + r with n = round(x / ln 2) (ln 2 split in two parts, so r
//! is exact to float rounding for |x| <= 88), |r| <= ln(2) / 2; then exp(r) by a degree-5
//! polynomial 1 + r (c1 + r (c2 + r (c3 + r (c4 + r c5)))) whose coefficients are a minimax fit
//! of the relative error on [-ln(2) / 2, ln(2) / 2] with c0 = 1 fixed (approximation error
//! 9.5e-8, so exp(0) = 1 exactly); then times 2^n built from exponent bits. Against exp
//! evaluated in double the relative error is below 3e-7 (about 2.5 float ulp) for normal
//! results (tests/losses asserts this bound on a dense grid of [-87, 88]); that is the price of
//! 5 fused multiply-adds instead of Cephes' 7 (whose error is about 1 ulp), far inside the 1e-5
//! float tolerance of the losses and of the sampling masses.
//!
//! Edge cases: inputs below -88 (including -inf) are clamped to -88; results below about
//! -87.68 are exactly +0 (n = -127 gives the power of two 0), those between -87.68 and -87.34
//! are denormal (computed as a normal times 2^-126). NaN stays NaN. Inputs above 88.38 (not
//! used: every caller subtracts a maximum first) may give +inf.
//!
//! The rounding uses the magic number 1.5 * 2^23 + 127: t = x / ln 2 + magic holds n + 127 in
//! its low mantissa bits, so `bits(t) << 23` is the exponent field of 2^n directly (no
//! float-to-int conversion); 12 vector operations per register in all.
template <class V>
[[gnu::always_inline]] inline V exp_lanes(V x) noexcept {
    typedef std::int32_t ivec __attribute__((vector_size(sizeof(V))));
    constexpr float magic = 12582912.0f + 127.0f; // 1.5 * 2^23 + 127
    const V lo = V{} - 88.0f;
    const V xc = max_or_second(lo, x);                  // max(x, -88); NaN propagates
    const V t = xc * 1.44269504088896341f + magic;      // n + 127 + 1.5 * 2^23 (one FMA with -mfma)
    const V n = t - magic;                              // round(x / ln 2), exact
    V r = xc - n * 0.693359375f;                        // ln 2 high part (exact product)
    r = r - n * -2.12194440e-4f;                        // ln 2 low part
    V p = r * 8.2903150469e-3f + 4.1897930205e-2f;      // minimax, relative error 9.5e-8
    p = p * r + 1.6667635739e-1f;
    p = p * r + 4.9999150634e-1f;
    p = p * r + 9.9999970198e-1f;
    p = p * r + 1.0f;
    const ivec e = std::bit_cast<ivec>(t) << 23; // (n + 127) << 23: 2^n (n = -127 gives +0)
    return p * std::bit_cast<V>(e);
}

//! The range reduction of `exp2_lanes` for y: n = round(max(y, -127)) held as n + 127 in the low
//! mantissa bits of `t`, and f = y - n (exact), |f| <= 1/2.
template <class V>
struct exp2_reduced {
    V t; //!< y + 1.5 * 2^23 + 127: its bits shifted left by 23 are the exponent field of 2^n
    V f; //!< y - n
};

//! First half of `exp2_lanes`: clamps y to -127 (NaN propagates) and reduces it (4 vector
//! operations). Split from `exp2_finish` so that a loop can software-pipeline the exponential: the
//! reduction of its next register issued alongside the polynomial of this one (the KL and
//! cross-entropy kernels, losses/detail/rows.hpp, and top-p's `softmax_blocks`, sampling/kernels.hpp).
template <class V>
[[gnu::always_inline]] inline exp2_reduced<V> exp2_reduce(V y) noexcept {
    constexpr float magic = 12582912.0f + 127.0f; // 1.5 * 2^23 + 127
    const V yc = max_or_second(V{} - 127.0f, y);  // max(y, -127); NaN propagates
    const V t = yc + magic;                       // n + 127 + 1.5 * 2^23
    return {t, yc - (t - magic)};                 // f = y - n, exact
}

//! Second half of `exp2_lanes`: 2^f by the degree-5 polynomial, times 2^n from the exponent bits.
template <class V>
[[gnu::always_inline]] inline V exp2_finish(exp2_reduced<V> q) noexcept {
    typedef std::int32_t ivec __attribute__((vector_size(sizeof(V))));
    const V f = q.f;
    V p = f * 1.3264727313e-3f + 9.6715129912e-3f;
    p = p * f + 5.5507335812e-2f;
    p = p * f + 2.4022242427e-1f;
    p = p * f + 6.9314700365e-1f;
    p = p * f + 1.0f;
    const ivec e = std::bit_cast<ivec>(q.t) << 23; // (n + 127) << 23: 2^n (n = -127 gives +0)
    return p * std::bit_cast<V>(e);
}

//! 2^y lane by lane for a float vector `V`, y <= 127: n = round(y), f = y - n (exact),
//! |f| <= 1/2, 2^f by a degree-5 polynomial (the coefficients of `exp_lanes` times ln(2)^k:
//! approximation error 1.1e-7, 2^0 = 1 exactly), times 2^n from exponent bits. Relative error
//! below 3e-7 for normal results (asserted by tests/losses on a dense grid). Inputs below -127
//! (including -inf) are clamped: results below 2^-126.5 are exactly +0. NaN stays NaN.
//! Four multiply-adds fewer than `exp_lanes` on the FMA ports (no Cody-Waite reduction): the
//! sampling kernels compute exp(d) as 2^(d log2(e)).
template <class V>
[[gnu::always_inline]] inline V exp2_lanes(V y) noexcept {
    return exp2_finish(exp2_reduce(y));
}

//! 2^y for one float with exactly the computation (and the results) of `exp2_lanes`.
inline float exp2_float(float y) noexcept {
    typedef float v4 __attribute__((vector_size(16)));
    return exp2_lanes(v4{y, y, y, y})[0];
}

//! exp(x) for one float with exactly the computation (and the results) of `exp_lanes`.
inline float exp_float(float x) noexcept {
    typedef float v4 __attribute__((vector_size(16)));
    return exp_lanes(v4{x, x, x, x})[0];
}

} // namespace selfreplay::detail
