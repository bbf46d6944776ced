// Internal, no include guard: the SIMD vocabulary of one ISA path, included once per path by
// simd.hpp (through foreach_isa.inl) inside that path's target region. Kernels are written against
// these names only: `simd::vec<T>`, `simd::load`, `simd::mul_add`, `simd::exp`, ...

namespace selfreplay::detail::SELFREPLAY_SIMD_NS {

//! This path's tag. Every kernel takes it as its first parameter, so that the call
//! `kernel<...>(tag, ...)` in `dispatch`'s callback finds this path's kernel by argument-dependent
//! lookup.
struct path_tag {
    static constexpr ::selfreplay::isa isa = SELFREPLAY_SIMD_ISA; //!< the path
};

//! The vector operations of this path, on GCC/Clang vector-extension registers of
//! `register_bytes` bytes (arithmetic, comparisons and `?:` are the compilers' own operators).
namespace simd {

//! Bytes per register: 16 (sse2), 32 (avx2), 64 (avx512).
inline constexpr std::size_t register_bytes = SELFREPLAY_SIMD_BYTES;

template <class T>
struct register_of;
template <>
struct register_of<float> {
    typedef float vec __attribute__((vector_size(SELFREPLAY_SIMD_BYTES)));
    typedef std::int32_t mask __attribute__((vector_size(SELFREPLAY_SIMD_BYTES)));
};
template <>
struct register_of<double> {
    typedef double vec __attribute__((vector_size(SELFREPLAY_SIMD_BYTES)));
    typedef std::int64_t mask __attribute__((vector_size(SELFREPLAY_SIMD_BYTES)));
};

//! A register of `T` lanes (T = float or double).
template <class T>
using vec = typename register_of<T>::vec;
//! The matching comparison mask: a lane is all ones (true) or 0 (false); also the integer lanes
//! of the same width, for bit manipulation.
template <class T>
using mask = typename register_of<T>::mask;
//! Number of `T` lanes in a register.
template <class T>
inline constexpr index_t lanes = static_cast<index_t>(register_bytes / sizeof(T));
//! The lane type of a register type V (float or double).
template <class V>
using element_of = std::remove_cvref_t<decltype(std::declval<V&>()[0])>;

//! Every lane x.
template <class T>
[[gnu::always_inline]] inline vec<T> splat(T x) noexcept {
    return vec<T>{} + x;
}
//! The register at p (any alignment).
template <class T>
[[gnu::always_inline]] inline vec<T> load(const T* p) noexcept {
    vec<T> v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
//! Stores v at p (any alignment).
template <class T>
[[gnu::always_inline]] inline void store(T* p, std::type_identity_t<vec<T>> v) noexcept {
    std::memcpy(p, &v, sizeof v);
}

//! The first `n` (< lanes) elements at p; the other lanes hold `fill` (nothing past p + n is read).
template <class T>
[[gnu::always_inline]] inline vec<T> load_partial(const T* p, index_t n, T fill) noexcept {
#if SELFREPLAY_SIMD_PATH == 2
    const auto k = static_cast<std::uint16_t>((1u << n) - 1u);
    if constexpr (std::is_same_v<T, float>)
        return (vec<T>)_mm512_mask_loadu_ps((__m512)splat(fill), static_cast<__mmask16>(k), p);
    else
        return (vec<T>)_mm512_mask_loadu_pd((__m512d)splat(fill), static_cast<__mmask8>(k), p);
#else
    vec<T> v = splat(fill);
    for (index_t i = 0; i < n; ++i) v[i] = p[i];
    return v;
#endif
}
//! Stores the first `n` (< lanes) lanes of v at p (nothing past p + n is written).
template <class T>
[[gnu::always_inline]] inline void store_partial(T* p, std::type_identity_t<vec<T>> v, index_t n) noexcept {
#if SELFREPLAY_SIMD_PATH == 2
    const auto k = static_cast<std::uint16_t>((1u << n) - 1u);
    if constexpr (std::is_same_v<T, float>)
        _mm512_mask_storeu_ps(p, static_cast<__mmask16>(k), (__m512)v);
    else
        _mm512_mask_storeu_pd(p, static_cast<__mmask8>(k), (__m512d)v);
#else
    for (index_t i = 0; i < n; ++i) p[i] = v[i];
#endif
}
//! The register at p + i holding `count` elements (count == lanes: a whole register; else
//! `load_partial` with `fill`).
template <class T>
[[gnu::always_inline]] inline vec<T> load_n(const T* p, index_t count, T fill) noexcept {
    return count == lanes<T> ? load(p) : load_partial(p, count, fill);
}
//! Stores the first `count` lanes of v at p (a whole register when count == lanes).
template <class T>
[[gnu::always_inline]] inline void store_n(T* p, std::type_identity_t<vec<T>> v, index_t count) noexcept {
    if (count == lanes<T>)
        store(p, v);
    else
        store_partial(p, v, count);
}

//! m ? a : b lane by lane.
template <class M, class V>
[[gnu::always_inline]] inline V select(M m, V a, V b) noexcept {
    return m ? a : b;
}

//! a > b ? a : b (Max) or a < b ? a : b lane by lane: the second operand wherever the comparison
//! is false or unordered, as x86's maxps / minps / maxpd / minpd, which this emits.
template <bool Max, class V>
[[gnu::always_inline]] inline V extremum_or_second(V a, V b) noexcept {
#if defined(__x86_64__) || defined(__i386__)
    using T = element_of<V>;
#endif
#if SELFREPLAY_SIMD_PATH == 2
    // the masked forms: GCC 12's unmasked _mm512_max_ps reads an "undefined" register, which
    // -Wmaybe-uninitialized reports
    if constexpr (std::is_same_v<T, float>)
        return (vec<T>)(Max ? _mm512_mask_max_ps((__m512)a, 0xFFFF, (__m512)a, (__m512)b)
                            : _mm512_mask_min_ps((__m512)a, 0xFFFF, (__m512)a, (__m512)b));
    else
        return (vec<T>)(Max ? _mm512_mask_max_pd((__m512d)a, 0xFF, (__m512d)a, (__m512d)b)
                            : _mm512_mask_min_pd((__m512d)a, 0xFF, (__m512d)a, (__m512d)b));
#elif SELFREPLAY_SIMD_PATH == 1
    if constexpr (std::is_same_v<T, float>)
        return (vec<T>)(Max ? _mm256_max_ps((__m256)a, (__m256)b) : _mm256_min_ps((__m256)a, (__m256)b));
    else
        return (vec<T>)(Max ? _mm256_max_pd((__m256d)a, (__m256d)b) : _mm256_min_pd((__m256d)a, (__m256d)b));
#elif defined(__x86_64__) || defined(__i386__)
    if constexpr (std::is_same_v<T, float>)
        return (vec<T>)(Max ? _mm_max_ps((__m128)a, (__m128)b) : _mm_min_ps((__m128)a, (__m128)b));
    else
        return (vec<T>)(Max ? _mm_max_pd((__m128d)a, (__m128d)b) : _mm_min_pd((__m128d)a, (__m128d)b));
#else
    if constexpr (Max)
        return a > b ? a : b;
    else
        return a < b ? a : b;
#endif
}
//! a > b ? a : b lane by lane: max_or_second(lo, x) is max(x, lo) with NaN x kept,
//! max_or_second(x, lo) the same with NaN x replaced by lo.
template <class V>
[[gnu::always_inline]] inline V max_or_second(V a, V b) noexcept {
    return extremum_or_second<true>(a, b);
}
//! a < b ? a : b lane by lane: min_or_second(hi, x) is min(x, hi) with NaN x kept.
template <class V>
[[gnu::always_inline]] inline V min_or_second(V a, V b) noexcept {
    return extremum_or_second<false>(a, b);
}

//! a * b + c lane by lane: one fused multiply-add (one rounding) on avx2 and avx512, a product and
//! a sum (two roundings) on sse2. Outside `mul_add` no path fuses (the regions compile without
//! floating-point contraction).
template <class V>
[[gnu::always_inline]] inline V mul_add(V a, V b, V c) noexcept {
#if SELFREPLAY_SIMD_PATH == 2
    using T = element_of<V>;
    if constexpr (std::is_same_v<T, float>)
        return (vec<T>)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
    else
        return (vec<T>)_mm512_fmadd_pd((__m512d)a, (__m512d)b, (__m512d)c);
#elif SELFREPLAY_SIMD_PATH == 1
    using T = element_of<V>;
    if constexpr (std::is_same_v<T, float>)
        return (vec<T>)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
    else
        return (vec<T>)_mm256_fmadd_pd((__m256d)a, (__m256d)b, (__m256d)c);
#else
    return a * b + c;
#endif
}

//! Sum of the lanes in double, in lane order (deterministic).
template <class V>
[[gnu::always_inline]] inline double hsum(V v) noexcept {
    using T = element_of<V>;
    double s = 0;
    for (index_t i = 0; i < lanes<T>; ++i) s += static_cast<double>(v[i]);
    return s;
}
//! Largest lane (a NaN lane is skipped, unless it is lane 0).
template <class V>
[[gnu::always_inline]] inline element_of<V> hmax(V v) noexcept {
    using T = element_of<V>;
    T m = v[0];
    for (index_t i = 1; i < lanes<T>; ++i) m = v[i] > m ? v[i] : m;
    return m;
}
//! True when every lane of m is true.
template <class M>
[[gnu::always_inline]] inline bool all(M m) noexcept {
    for (index_t i = 0; i < static_cast<index_t>(sizeof(M) / sizeof(m[0])); ++i)
        if (m[i] == 0) return false;
    return true;
}

//! Whether `stream` bypasses the caches (x86: non-temporal stores); elsewhere it is a store.
#if defined(__x86_64__) || defined(__i386__)
inline constexpr bool can_stream = true;
#else
inline constexpr bool can_stream = false;
#endif
//! Stores v at p (aligned to `register_bytes`) without pulling the line into the caches (no
//! read-for-ownership): for outputs larger than the caches. Follow with `stream_fence`.
template <class T>
[[gnu::always_inline]] inline void stream(T* p, std::type_identity_t<vec<T>> v) noexcept {
#if SELFREPLAY_SIMD_PATH == 2
    if constexpr (std::is_same_v<T, float>)
        _mm512_stream_ps(p, (__m512)v);
    else
        _mm512_stream_pd(p, (__m512d)v);
#elif SELFREPLAY_SIMD_PATH == 1
    if constexpr (std::is_same_v<T, float>)
        _mm256_stream_ps(p, (__m256)v);
    else
        _mm256_stream_pd(p, (__m256d)v);
#elif defined(__x86_64__) || defined(__i386__)
    if constexpr (std::is_same_v<T, float>)
        _mm_stream_ps(p, (__m128)v);
    else
        _mm_stream_pd(p, (__m128d)v);
#else
    store(p, v);
#endif
}
//! Orders the streamed stores before any later store (x86 sfence).
[[gnu::always_inline]] inline void stream_fence() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    _mm_sfence();
#endif
}

//! exp(x) lane by lane for float, x <= 88.
//!
//! Cody-Waite reduction x = n ln 2 + r with n = round(x / ln 2) (ln 2 split in two parts, so r
//! is exact to float rounding for |x| <= 88), |r| <= ln(2) / 2; then exp(r) by a degree-5
//! polynomial 1 + r (c1 + r (c2 + r (c3 + r (c4 + r c5)))) whose coefficients are a minimax fit
//! of the relative error on [-ln(2) / 2, ln(2) / 2] with c0 = 1 fixed (approximation error
//! 9.5e-8, so exp(0) = 1 exactly); then times 2^n built from exponent bits. Against exp
//! evaluated in double the relative error is below 3e-7 (about 2.5 float ulp) for normal
//! results on every path (tests/detail asserts this bound on a dense grid of [-87, 88]): 5
//! multiply-adds instead of Cephes' 7 (whose error is about 1 ulp), far inside the 1e-5 float
//! tolerance of the losses. The multiply-adds are `mul_add`: fused on avx2 and avx512.
//!
//! Edge cases: inputs below -88 (including -inf) are clamped to -88; results below about
//! -87.68 are exactly +0 (n = -127 gives the power of two 0), those between -87.68 and -87.34
//! are denormal (a normal times 2^-126). NaN stays NaN. Inputs above 88.38 may give +inf.
//!
//! The rounding uses the magic number 1.5 * 2^23 + 127: t = x / ln 2 + magic holds n + 127 in
//! its low mantissa bits, so `bits(t) << 23` is the exponent field of 2^n directly.
[[gnu::always_inline]] inline vec<float> exp(vec<float> x) noexcept {
    using V = vec<float>;
    constexpr float magic = 12582912.0f + 127.0f; // 1.5 * 2^23 + 127
    const V xc = max_or_second(splat(-88.0f), x);                     // max(x, -88); NaN propagates
    const V t = mul_add(xc, splat(1.44269504088896341f), splat(magic)); // n + 127 + 1.5 * 2^23
    const V n = t - magic;                                             // round(x / ln 2), exact
    V r = mul_add(n, splat(-0.693359375f), xc);                        // ln 2 high part (exact product)
    r = mul_add(n, splat(2.12194440e-4f), r);                          // ln 2 low part
    V p = mul_add(r, splat(8.2903150469e-3f), splat(4.1897930205e-2f)); // minimax, relative error 9.5e-8
    p = mul_add(p, r, splat(1.6667635739e-1f));
    p = mul_add(p, r, splat(4.9999150634e-1f));
    p = mul_add(p, r, splat(9.9999970198e-1f));
    p = mul_add(p, r, splat(1.0f));
    const mask<float> e = (mask<float>)t << 23; // (n + 127) << 23: 2^n (n = -127 gives +0)
    return p * (V)e;
}
//! exp(x) lane by lane for double: std::exp per lane (double is the accuracy path, not the fast one).
[[gnu::always_inline]] inline vec<double> exp(vec<double> x) noexcept {
    for (index_t i = 0; i < lanes<double>; ++i) x[i] = std::exp(x[i]);
    return x;
}
//! log(x) lane by lane (std::log per lane; off the benchmarked paths).
template <class V>
[[gnu::always_inline]] inline V log(V x) noexcept {
    for (index_t i = 0; i < lanes<element_of<V>>; ++i) x[i] = std::log(x[i]);
    return x;
}

//! The range reduction of `exp2` for y: n = round(max(y, -127)) held as n + 127 in the low
//! mantissa bits of `t`, and f = y - n (exact), |f| <= 1/2.
struct exp2_reduced {
    vec<float> t; //!< y + 1.5 * 2^23 + 127: its bits shifted left by 23 are the exponent field of 2^n
    vec<float> f; //!< y - n
};
//! First half of `exp2`: clamps y to -127 (NaN propagates) and reduces it (4 vector operations).
//! Split from `exp2_finish` so that a loop can software-pipeline the exponential: the reduction
//! of its next register issued alongside the polynomial of this one.
[[gnu::always_inline]] inline exp2_reduced exp2_reduce(vec<float> y) noexcept {
    constexpr float magic = 12582912.0f + 127.0f; // 1.5 * 2^23 + 127
    const vec<float> yc = max_or_second(splat(-127.0f), y); // max(y, -127); NaN propagates
    const vec<float> t = yc + magic;                        // n + 127 + 1.5 * 2^23
    return {t, yc - (t - magic)};                           // f = y - n, exact
}
//! Second half of `exp2`: 2^f by the degree-5 polynomial, times 2^n from the exponent bits.
[[gnu::always_inline]] inline vec<float> exp2_finish(exp2_reduced q) noexcept {
    using V = vec<float>;
    const V f = q.f;
    V p = mul_add(f, splat(1.3264727313e-3f), splat(9.6715129912e-3f));
    p = mul_add(p, f, splat(5.5507335812e-2f));
    p = mul_add(p, f, splat(2.4022242427e-1f));
    p = mul_add(p, f, splat(6.9314700365e-1f));
    p = mul_add(p, f, splat(1.0f));
    const mask<float> e = (mask<float>)q.t << 23; // (n + 127) << 23: 2^n (n = -127 gives +0)
    return p * (V)e;
}
//! 2^y lane by lane for float, y <= 127: n = round(y), f = y - n (exact), |f| <= 1/2, 2^f by a
//! degree-5 polynomial (the coefficients of `exp` times ln(2)^k: approximation error 1.1e-7,
//! 2^0 = 1 exactly), times 2^n from exponent bits. Relative error below 3e-7 for normal results
//! (asserted by tests/detail on a dense grid). Inputs below -127 (including -inf) are clamped:
//! results below 2^-126.5 are exactly +0. NaN stays NaN. Four multiply-adds fewer than `exp` (no
//! Cody-Waite reduction).
[[gnu::always_inline]] inline vec<float> exp2(vec<float> y) noexcept { return exp2_finish(exp2_reduce(y)); }

} // namespace simd
} // namespace selfreplay::detail::SELFREPLAY_SIMD_NS
