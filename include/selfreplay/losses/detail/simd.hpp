#pragma once
//! \file
//! Internal: the small portable SIMD layer the loss kernels are written against, built on the
//! GCC/Clang vector extensions so that vectorisation does not depend on -ffast-math or on the
//! auto-vectoriser. Registers are 32 bytes when the translation unit is compiled with AVX
//! (-march=native on a modern x86), 16 bytes otherwise (SSE2, NEON).
//! Not part of the public API.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "selfreplay/detail/fast_exp.hpp"
#include "selfreplay/tensor/strided_view.hpp"

#if defined(__AVX__) || defined(__SSE2__)
#include <immintrin.h>
#endif

namespace selfreplay::detail::simd {

#if defined(__AVX__)
inline constexpr std::size_t register_bytes = 32;
#else
inline constexpr std::size_t register_bytes = 16;
#endif

template <class T>
struct register_of;
template <>
struct register_of<float> {
    typedef float vec __attribute__((vector_size(register_bytes)));
    typedef std::int32_t mask __attribute__((vector_size(register_bytes)));
};
template <>
struct register_of<double> {
    typedef double vec __attribute__((vector_size(register_bytes)));
    typedef std::int64_t mask __attribute__((vector_size(register_bytes)));
};

//! A register of `T` lanes, and the matching comparison mask (all bits set = true).
template <class T>
using vec = typename register_of<T>::vec;
template <class T>
using mask = typename register_of<T>::mask;
//! Number of `T` lanes in a register.
template <class T>
inline constexpr index_t lanes = static_cast<index_t>(register_bytes / sizeof(T));

template <class T>
inline vec<T> splat(T x) noexcept {
    return vec<T>{} + x;
}
template <class T>
inline vec<T> load(const T* p) noexcept {
    vec<T> v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
//! Loads the first `n` (< lanes) elements at `p`; the other lanes hold `fill`.
template <class T>
inline vec<T> load_partial(const T* p, index_t n, T fill) noexcept {
    vec<T> v = splat(fill);
    for (index_t i = 0; i < n; ++i) v[i] = p[i];
    return v;
}
template <class T>
inline void store(T* p, vec<T> v) noexcept {
    std::memcpy(p, &v, sizeof v);
}
template <class T>
inline void store_partial(T* p, vec<T> v, index_t n) noexcept {
    for (index_t i = 0; i < n; ++i) p[i] = v[i];
}
template <class T>
inline vec<T> select(mask<T> m, vec<T> a, vec<T> b) noexcept {
    return m ? a : b;
}
template <class T>
inline vec<T> vmax(vec<T> a, vec<T> b) noexcept {
    return a > b ? a : b;
}
//! Sum of the lanes in double, in lane order (deterministic).
template <class T>
inline double hsum(vec<T> v) noexcept {
    double s = 0;
    for (index_t i = 0; i < lanes<T>; ++i) s += static_cast<double>(v[i]);
    return s;
}
template <class T>
inline T hmax(vec<T> v) noexcept {
    T m = v[0];
    for (index_t i = 1; i < lanes<T>; ++i) m = v[i] > m ? v[i] : m;
    return m;
}
//! True when every lane of `m` is true.
template <class T>
inline bool all(mask<T> m) noexcept {
    for (index_t i = 0; i < lanes<T>; ++i)
        if (m[i] == 0) return false;
    return true;
}

//! v unchanged, through a register the compiler cannot see into: the operation that produced v
//! is not fused into a later one (a product stays rounded whatever -ffp-contract says, so that
//! a - b is exactly 0 when the two rounded products are equal). No instruction is emitted. x86
//! and AArch64; elsewhere a plain copy (fusion then follows the compiler's -ffp-contract).
template <class V>
[[gnu::always_inline]] inline V rounded(V v) noexcept {
#if defined(__SSE__)
    __asm__("" : "+x"(v));
#elif defined(__aarch64__)
    __asm__("" : "+w"(v));
#endif
    return v;
}

//! Whether `stream` bypasses the caches (x86: non-temporal stores); elsewhere it is a store.
#if defined(__AVX__) || defined(__SSE2__)
inline constexpr bool can_stream = true;
#else
inline constexpr bool can_stream = false;
#endif

//! Stores a register at `p` (aligned to `register_bytes`) without pulling the line into the
//! caches (no read-for-ownership): for outputs larger than the caches. Follow with `stream_fence`.
template <class T>
inline void stream(T* p, vec<T> v) noexcept {
#if defined(__AVX__)
    if constexpr (std::is_same_v<T, float>)
        _mm256_stream_ps(p, v);
    else
        _mm256_stream_pd(p, v);
#elif defined(__SSE2__)
    if constexpr (std::is_same_v<T, float>)
        _mm_stream_ps(p, v);
    else
        _mm_stream_pd(p, v);
#else
    store(p, v);
#endif
}
//! Orders the streamed stores before any later store (x86 sfence).
inline void stream_fence() noexcept {
#if defined(__AVX__) || defined(__SSE2__)
    _mm_sfence();
#endif
}

//! exp(x) lane-wise for float, x <= 88: `detail::exp_lanes` (selfreplay/detail/fast_exp.hpp:
//! Cody-Waite reduction, degree-5 minimax polynomial, relative error below 3e-7). Inputs below
//! about -87.68 (including -inf) give exactly 0; NaN stays NaN.
[[gnu::always_inline]] inline vec<float> exp(vec<float> x) noexcept { return exp_lanes(x); }
//! exp(x) lane-wise for double: std::exp per lane (double is the accuracy path, not the fast one).
inline vec<double> exp(vec<double> x) noexcept {
    for (index_t i = 0; i < lanes<double>; ++i) x[i] = std::exp(x[i]);
    return x;
}
//! log(x) lane-wise (std::log per lane; used only off the benchmarked paths).
template <class T>
inline vec<T> log(vec<T> x) noexcept {
    for (index_t i = 0; i < lanes<T>; ++i) x[i] = std::log(x[i]);
    return x;
}

} // namespace selfreplay::detail::simd
