// Internal, no include guard: the float row kernels of the samplers for one ISA path, included
// once per path by sampling/kernels.hpp (see detail/simd/simd.hpp, "Adding a kernel"). The entry
// points (`sampling_*`) take the path's `path_tag` first; the helpers in `sampling_lanes` are this
// path's own. Double rows never come here (sampling/kernels.hpp runs them scalar).

namespace selfreplay::detail::SELFREPLAY_SIMD_NS {

//! Lane helpers of the sampling kernels on this path's float registers.
namespace sampling_lanes {

using vf = simd::vec<float>;  //!< a register of floats
using vi = simd::mask<float>; //!< a register of int32 lanes; the result of vf comparisons (-1 true, 0 false)
inline constexpr std::size_t W = static_cast<std::size_t>(simd::lanes<float>); //!< floats per register
inline constexpr float ninf = -std::numeric_limits<float>::infinity();
inline constexpr float pinf = std::numeric_limits<float>::infinity();
//! Whether the exponents of this path are one fused multiply-add (avx2, avx512) or a difference
//! and a product (sse2): see `sampling_detail::proposal_shift`.
inline constexpr bool fused = SELFREPLAY_SIMD_PATH != 0;

[[gnu::always_inline]] inline vf load(const float* p) noexcept { return simd::load(p); }
[[gnu::always_inline]] inline vf splat(float x) noexcept { return simd::splat(x); }
//! The first n (<= W) floats at p, -inf in the other lanes.
[[gnu::always_inline]] inline vf load_tail(const float* p, std::size_t n) noexcept {
    return simd::load_n(p, static_cast<index_t>(n), ninf);
}

//! Bit j set when lane j of the comparison mask m is true.
[[gnu::always_inline]] inline unsigned lane_bits(vi m) noexcept {
#if SELFREPLAY_SIMD_PATH == 2
    return static_cast<unsigned>(_mm512_movepi32_mask((__m512i)m));
#elif SELFREPLAY_SIMD_PATH == 1
    return static_cast<unsigned>(_mm256_movemask_ps((__m256)m));
#elif defined(__x86_64__) || defined(__i386__)
    return static_cast<unsigned>(_mm_movemask_ps((__m128)m));
#else
    unsigned bits = 0;
    for (std::size_t j = 0; j < W; ++j) bits |= (m[j] != 0 ? 1u : 0u) << j;
    return bits;
#endif
}
//! True when some lane of the comparison mask m is true.
[[gnu::always_inline]] inline bool any_lane(vi m) noexcept { return lane_bits(m) != 0; }

//! Largest lane of v (NaN lanes skipped; -inf when every lane is -inf or NaN).
[[gnu::always_inline]] inline float lane_max(vf v) noexcept {
    float m = ninf;
    for (std::size_t j = 0; j < W; ++j) m = v[j] > m ? v[j] : m;
    return m;
}

//! Lanes where a or b is NaN (one unordered comparison on x86).
[[gnu::always_inline]] inline vi unordered(vf a, vf b) noexcept {
#if SELFREPLAY_SIMD_PATH == 2
    return (vi)_mm512_movm_epi32(_mm512_cmp_ps_mask((__m512)a, (__m512)b, _CMP_UNORD_Q));
#elif SELFREPLAY_SIMD_PATH == 1
    return (vi)_mm256_cmp_ps((__m256)a, (__m256)b, _CMP_UNORD_Q);
#elif defined(__x86_64__) || defined(__i386__)
    return (vi)_mm_cmpunord_ps((__m128)a, (__m128)b);
#else
    return (a != a) | (b != b);
#endif
}

//! exp(d) lane by lane for d <= 0 (d may be -inf), as 2^(d log2(e)) (`simd::exp2`: relative
//! error below 3e-7 for the product d log2(e), whose own rounding adds |d| 6e-8; exactly 0 below
//! about -87.7).
[[gnu::always_inline]] inline vf exp_nonpositive(vf d) noexcept { return simd::exp2(d * sampling_detail::log2e); }

//! Bit q W + j set when lane j of register q of x[0..4 W) is >= t (four registers: at most 64
//! bits); one OR of the four comparisons first, so that a block with no such lane costs one test.
[[gnu::always_inline]] inline std::uint64_t block_at_least(const float* x, vf t) noexcept {
    if (!any_lane((load(x) >= t) | (load(x + W) >= t) | (load(x + 2 * W) >= t) | (load(x + 3 * W) >= t))) return 0;
    std::uint64_t bits = 0;
    for (std::size_t q = 0; q < 4; ++q) bits |= std::uint64_t(lane_bits(load(x + q * W) >= t)) << (q * W);
    return bits;
}

#if SELFREPLAY_SIMD_PATH == 1
//! The left-pack permutations of 8 lanes: row m lists the lanes set in m, in order (then zeros).
struct left_pack_table {
    std::int32_t lanes[256][8]; //!< row m
};
constexpr left_pack_table make_left_pack_table() noexcept {
    left_pack_table t{};
    for (unsigned m = 0; m < 256; ++m) {
        unsigned c = 0;
        for (unsigned j = 0; j < 8; ++j)
            if ((m >> j) & 1u) t.lanes[m][c++] = static_cast<std::int32_t>(j);
    }
    return t;
}
inline constexpr left_pack_table left_pack = make_left_pack_table(); //!< see `left_pack_table`
#endif

//! Appends lanes of blocks of 4 W floats to `ids` (and to `vals` when given): `append` writes
//! the lanes j of the block x[0..4 W) set in `bits` (bit j), as base + j and x[j], in lane order,
//! branch-free, so the cost does not depend on how the set lanes are spread. avx512: one
//! compress per register (`vpcompressd` / `vcompressps` into a register, then a whole-register
//! store); avx2: a left-pack permutation per register from a 256-row table; sse2: lane by lane
//! (the write pointer advances by the lane's bit). The vectors grow geometrically ahead of the
//! appended size (a resize per block would value-initialise every block's slots again); `finish`
//! shrinks them to it, and must be called before they are used.
struct lane_appender {
    std::vector<std::int32_t>& ids; //!< the ids appended to
    std::vector<float>* vals;       //!< the values appended to, or none
    std::size_t size;               //!< entries appended so far (the vectors may be longer)

    lane_appender(std::vector<std::int32_t>& i, std::vector<float>* v) noexcept : ids(i), vals(v), size(i.size()) {}

    //! Appends the lanes of x[0..4 W) set in `bits` (see the struct).
    void append(std::uint64_t bits, std::size_t base, const float* x) {
        if (bits == 0) return;
        constexpr std::size_t B = 4 * W;
        if (size + B > ids.size()) {
            const std::size_t grown = std::max(size + B, 2 * ids.size());
            ids.resize(grown);
            if (vals != nullptr) vals->resize(grown);
        }
        std::int32_t* pi = ids.data() + size;
        float* pv = vals != nullptr ? vals->data() + size : nullptr;
#if SELFREPLAY_SIMD_PATH == 2
        const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        std::size_t c = 0; // (c + 16 <= B before each store: the stores stay inside the B new slots)
        for (std::size_t q = 0; q < 4; ++q) {
            const auto m = static_cast<__mmask16>(bits >> (16 * q));
            const __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(base + 16 * q)), lane);
            _mm512_storeu_si512(pi + c, _mm512_maskz_compress_epi32(m, idx));
            if (pv != nullptr) _mm512_storeu_ps(pv + c, _mm512_maskz_compress_ps(m, _mm512_loadu_ps(x + 16 * q)));
            c += static_cast<std::size_t>(std::popcount(static_cast<unsigned>(m)));
        }
#elif SELFREPLAY_SIMD_PATH == 1
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        std::size_t c = 0;
        for (std::size_t q = 0; q < 4; ++q) {
            const auto m = static_cast<unsigned>((bits >> (8 * q)) & 0xFFu);
            const __m256i perm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(left_pack.lanes[m]));
            const __m256i idx = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(base + 8 * q)), lane);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(pi + c), _mm256_permutevar8x32_epi32(idx, perm));
            if (pv != nullptr) _mm256_storeu_ps(pv + c, _mm256_permutevar8x32_ps(_mm256_loadu_ps(x + 8 * q), perm));
            c += static_cast<std::size_t>(std::popcount(m));
        }
#else
        std::size_t c = 0;
        for (std::size_t j = 0; j < B; ++j) {
            pi[c] = static_cast<std::int32_t>(base + j);
            if (pv != nullptr) pv[c] = x[j];
            c += (bits >> j) & 1u;
        }
#endif
        size += static_cast<std::size_t>(std::popcount(bits));
    }

    //! Shrinks the vectors to the appended entries.
    void finish() {
        ids.resize(size);
        if (vals != nullptr) vals->resize(size);
    }
};

//! 2^round(y) lane by lane, +0 for y below -126.5 (and -inf); requires y <= 127.5 (NaN gives
//! +0: callers test NaN apart). The magic number 1.5 * 2^23 + 127 rounds y to an integer n in
//! the low mantissa bits of y + magic, shifted into the exponent field of 2^n (n = -127 gives
//! +0): three vector operations, no polynomial.
[[gnu::always_inline]] inline vf pow2_round(vf y) noexcept {
    constexpr float magic = 12582912.0f + 127.0f; // 1.5 * 2^23 + 127
    const vf t = simd::max_or_second(splat(-127.0f), y) + magic;
    return (vf)((vi)t << 23);
}

//! The exponent of a register of logits in log2 units relative to a shift (`proposal_shift`,
//! top-p's running maximum): fused paths x log2(e) - c in one multiply-add (c = m log2(e)
//! rounded to float, the product exact), sse2 (x - m) log2(e) (`cm`: c or m accordingly).
[[gnu::always_inline]] inline vf shifted_exponent(vf x, vf cm) noexcept {
    if constexpr (fused)
        return simd::mul_add(x, splat(sampling_detail::log2e), -cm);
    else
        return (x - cm) * sampling_detail::log2e;
}

//! The bucket of each lane's key k >= 0: floor(8 k), the keys at or beyond 255/8 (and +inf) all in
//! the last bucket. Monotone in k.
[[gnu::always_inline]] inline vi key_bucket(vf k) noexcept {
    const vf c = simd::min_or_second(splat(float(sampling_detail::mass_buckets - 1)), k * sampling_detail::mass_bucket_scale);
    return __builtin_convertvector(c, vi);
}
//! The float key of a register of logits: centre - x (top-p, centre = the maximum) or
//! |x - centre| (typical-p).
template <bool Typical>
[[gnu::always_inline]] inline vf mass_key(vf x, vf centre) noexcept {
    if constexpr (Typical) {
        const vf k = x - centre;
        return k < vf{} ? -k : k;
    } else {
        return centre - x;
    }
}

} // namespace sampling_lanes

//! Maximum of x[0..n) (-inf when empty or all -inf); `bad` is set when some entry is NaN or +inf.
inline float sampling_max(path_tag, const float* x, std::size_t n, bool& bad) noexcept {
    using namespace sampling_lanes;
    const std::size_t nv = n - n % (4 * W);
    vf m0 = splat(ninf), m1 = m0, m2 = m0, m3 = m0;
    vi b{};
    const vf inf = splat(pinf);
    std::size_t i = 0;
    for (; i < nv; i += 4 * W) {
        const vf a = load(x + i), c = load(x + i + W), d = load(x + i + 2 * W), e = load(x + i + 3 * W);
        m0 = simd::max_or_second(a, m0);
        m1 = simd::max_or_second(c, m1);
        m2 = simd::max_or_second(d, m2);
        m3 = simd::max_or_second(e, m3);
        b |= ~((a < inf) & (c < inf) & (d < inf) & (e < inf));
    }
    for (; i < n; i += W) {
        const vf a = load_tail(x + i, std::min(W, n - i));
        m0 = simd::max_or_second(a, m0);
        b |= ~(a < inf);
    }
    m0 = simd::max_or_second(m1, m0);
    m2 = simd::max_or_second(m3, m2);
    m0 = simd::max_or_second(m2, m0);
    bad = any_lane(b);
    return lane_max(m0);
}

//! out[c] = the maximum of chunk c of x[0..n) (chunks of `chunk` elements, a multiple of W, the
//! last one partial); `bad` is set when some entry is NaN or +inf.
inline void sampling_chunk_maxima(path_tag, const float* x, std::size_t n, std::size_t chunk, double* out,
                                  bool& bad) noexcept {
    using namespace sampling_lanes;
    const vf inf = splat(pinf);
    vi b{};
    for (std::size_t s = 0, c = 0; s < n; s += chunk, ++c) {
        const std::size_t e = std::min(n, s + chunk);
        vf m = splat(ninf);
        for (std::size_t i = s; i < e; i += W) {
            const vf a = load_tail(x + i, std::min(W, e - i));
            m = simd::max_or_second(a, m);
            b |= ~(a < inf);
        }
        out[c] = double(lane_max(m));
    }
    bad = any_lane(b);
}

//! x[i] *= inv for x[0..n) in place (a temperature's 1 / t). `bad` is set when some x[i] was NaN
//! or +inf, `overflow` when a finite x[i] gave a product that is not finite (-inf stays -inf).
inline void sampling_scale(path_tag, float* x, std::size_t n, float inv, bool& bad, bool& overflow) noexcept {
    using namespace sampling_lanes;
    const vf s = splat(inv), inf = splat(pinf), minf = splat(ninf);
    vi b{}, o{};
    const auto step = [&](vf a) {
        const vf y = a * s;
        const vi finite = (a < inf) & (a > minf);
        b |= ~(a < inf);
        o |= finite & ~((y < inf) & (y > minf));
        return y;
    };
    const std::size_t nv = n - n % W;
    std::size_t i = 0;
    for (; i < nv; i += W) simd::store(x + i, step(load(x + i)));
    if (i < n) { // the tail: -inf in the lanes past n, which raise no flag
        const auto rest = static_cast<index_t>(n - i);
        simd::store_n(x + i, step(simd::load_n(x + i, rest, ninf)), rest);
    }
    bad = any_lane(b);
    overflow = any_lane(o);
}

//! Index of the first x[i] == v in x[0..n) (n when there is none).
inline std::size_t sampling_first_equal(path_tag, const float* x, std::size_t n, float v) noexcept {
    using namespace sampling_lanes;
    const vf t = splat(v);
    std::size_t i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
        const std::uint64_t bits = lane_bits(load(x + i) == t) | std::uint64_t(lane_bits(load(x + i + W) == t)) << W;
        if (bits != 0) return i + static_cast<std::size_t>(std::countr_zero(bits));
    }
    while (i < n && !(x[i] == v)) ++i;
    return i;
}

//! Sum of exp(x[i] - m) over x[0..n), m >= every x[i] (float lanes, four accumulators).
inline double sampling_sum_exp(path_tag, const float* x, std::size_t n, float m) noexcept {
    using namespace sampling_lanes;
    const std::size_t nv = n - n % (4 * W);
    vf a0{}, a1{}, a2{}, a3{};
    std::size_t i = 0;
    for (; i < nv; i += 4 * W) {
        a0 += exp_nonpositive(load(x + i) - m);
        a1 += exp_nonpositive(load(x + i + W) - m);
        a2 += exp_nonpositive(load(x + i + 2 * W) - m);
        a3 += exp_nonpositive(load(x + i + 3 * W) - m);
    }
    for (; i < n; i += W) a0 += exp_nonpositive(load_tail(x + i, std::min(W, n - i)) - m);
    return simd::hsum((a0 + a1) + (a2 + a3));
}

//! out[i] = exp(v[i] - m) for i < n (m >= every v[i]; out may be v).
inline void sampling_exp_shifted(path_tag, const float* v, std::size_t n, float m, float* out) noexcept {
    using namespace sampling_lanes;
    std::size_t i = 0;
    for (; i + W <= n; i += W) simd::store(out + i, exp_nonpositive(load(v + i) - m));
    if (i < n) simd::store_partial(out + i, exp_nonpositive(load_tail(v + i, n - i) - m), static_cast<index_t>(n - i));
}

//! out[k] = x[ids[k]] for k < n (avx2, avx512: vector gathers, masked so that no lane of the
//! source register is left undefined).
inline void sampling_gather(path_tag, const float* x, const std::int32_t* ids, std::size_t n, float* out) noexcept {
    std::size_t k = 0;
#if SELFREPLAY_SIMD_PATH == 2
    for (; k + 16 <= n; k += 16)
        _mm512_storeu_ps(out + k, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), 0xFFFF, _mm512_loadu_si512(ids + k), x, 4));
#elif SELFREPLAY_SIMD_PATH == 1
    for (; k + 8 <= n; k += 8)
        _mm256_storeu_ps(out + k, _mm256_mask_i32gather_ps(_mm256_setzero_ps(), x, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ids + k)),
                                                           _mm256_castsi256_ps(_mm256_set1_epi32(-1)), 4));
#endif
    for (; k < n; ++k) out[k] = x[ids[k]];
}

//! x[ids[k]] *= inv for k < n (distinct ids; a temperature on a support): `bad` is set when some
//! such entry was NaN or +inf, `overflow` when a finite one gave a product that is not finite.
//! Per register: a gather (`sampling_gather`), the product and the flags in lanes, then scalar
//! stores (a scatter instruction is slower on the AMD cores measured).
inline void sampling_scale_at(path_tag, float* x, const std::int32_t* ids, std::size_t n, float inv, bool& bad,
                              bool& overflow) noexcept {
    using namespace sampling_lanes;
    const vf s = splat(inv), inf = splat(pinf), minf = splat(ninf);
    vi b{}, o{};
    alignas(64) float a[W];
    std::size_t k = 0;
    for (; k + W <= n; k += W) {
        sampling_gather(path_tag{}, x, ids + k, W, a);
        const vf v = load(a), y = v * s;
        b |= ~(v < inf);
        o |= (v < inf) & (v > minf) & ~((y < inf) & (y > minf));
        simd::store(a, y);
        for (std::size_t j = 0; j < W; ++j) x[ids[k + j]] = a[j];
    }
    unsigned bt = any_lane(b) ? 1u : 0u, ot = any_lane(o) ? 1u : 0u;
    for (; k < n; ++k) {
        float& v = x[ids[k]];
        const float y = v * inv;
        bt |= !(v < pinf);
        ot |= (v < pinf) & (v > ninf) & !((y < pinf) & (y > ninf));
        v = y;
    }
    bad = bt != 0;
    overflow = ot != 0;
}

//! out[c] = the sum of chunk c of w[0..n) (chunks of `chunk` floats, a multiple of W; the last
//! partial): float lanes per chunk, their sum in double.
inline void sampling_chunk_sums(path_tag, const float* w, std::size_t n, std::size_t chunk, double* out) noexcept {
    using namespace sampling_lanes;
    for (std::size_t s = 0, c = 0; s < n; s += chunk, ++c) {
        const std::size_t e = std::min(n, s + chunk);
        vf a{};
        std::size_t i = s;
        for (; i + W <= e; i += W) a += load(w + i);
        if (i < e) a += simd::load_n(w + i, static_cast<index_t>(e - i), 0.0f);
        out[c] = simd::hsum(a);
    }
}

//! Writes -inf over every x[i] < tau and appends the indices of the others to `kept`.
//! Per block of 4 W: one vector pass (the stores), then `lane_appender`.
inline void sampling_mask_below(path_tag, float* x, std::size_t n, float tau, std::vector<std::int32_t>& kept) {
    using namespace sampling_lanes;
    const std::size_t nv = n - n % (4 * W);
    const vf t = splat(tau), minf = splat(ninf);
    std::size_t i = 0;
    lane_appender out(kept, nullptr);
    for (; i < nv; i += 4 * W) {
        const std::uint64_t bits = block_at_least(x + i, t);
        for (std::size_t q = 0; q < 4 * W; q += W) {
            const vf v = load(x + i + q);
            simd::store(x + i + q, v >= t ? v : minf);
        }
        out.append(bits, i, x + i);
    }
    out.finish();
    for (; i < n; ++i) {
        if (x[i] >= tau)
            kept.push_back(static_cast<std::int32_t>(i));
        else
            x[i] = ninf;
    }
}

//! Keeps, in place and in order, the entries k of ids[0..n) / vals[0..n) with vals[k] >= tau;
//! returns how many. avx512: a compress per register; avx2: a left-pack permutation; sse2:
//! branch-free scalar (the stores of a register land at or before the register just read).
inline std::size_t sampling_compact_at_least(path_tag, std::int32_t* ids, float* vals, std::size_t n, float tau) noexcept {
    std::size_t k = 0, i = 0;
#if SELFREPLAY_SIMD_PATH == 2
    const __m512 t = _mm512_set1_ps(tau);
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(vals + i);
        const __m512i id = _mm512_loadu_si512(ids + i);
        const __mmask16 m = _mm512_cmp_ps_mask(v, t, _CMP_GE_OQ);
        _mm512_storeu_ps(vals + k, _mm512_maskz_compress_ps(m, v));
        _mm512_storeu_si512(ids + k, _mm512_maskz_compress_epi32(m, id));
        k += static_cast<std::size_t>(std::popcount(static_cast<unsigned>(m)));
    }
#elif SELFREPLAY_SIMD_PATH == 1
    using sampling_lanes::left_pack;
    const __m256 t = _mm256_set1_ps(tau);
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(vals + i);
        const __m256i id = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ids + i));
        const auto m = static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(v, t, _CMP_GE_OQ)));
        const __m256i perm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(left_pack.lanes[m]));
        _mm256_storeu_ps(vals + k, _mm256_permutevar8x32_ps(v, perm));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(ids + k), _mm256_permutevar8x32_epi32(id, perm));
        k += static_cast<std::size_t>(std::popcount(m));
    }
#endif
    for (; i < n; ++i) {
        const float v = vals[i];
        const std::int32_t id = ids[i];
        vals[k] = v;
        ids[k] = id;
        k += v >= tau;
    }
    return k;
}

//! Appends to `ids` the indices of x[i] >= c and to `vals` their values (index order).
inline void sampling_collect_at_least(path_tag, const float* x, std::size_t n, float c, std::vector<std::int32_t>& ids,
                                      std::vector<float>& vals) {
    using namespace sampling_lanes;
    const std::size_t nv = n - n % (4 * W);
    const vf t = splat(c);
    std::size_t i = 0;
    lane_appender out(ids, &vals);
    for (; i < nv; i += 4 * W) out.append(block_at_least(x + i, t), i, x + i);
    out.finish();
    for (; i < n; ++i)
        if (x[i] >= c) ids.push_back(static_cast<std::int32_t>(i)), vals.push_back(x[i]);
}

//! The running maximum of `sampling_softmax_blocks` and what derives from it.
struct sampling_softmax_state {
    float m = std::numeric_limits<float>::lowest(); //!< running maximum
    float lo_s = 0;                                 //!< the candidate bound m + band, less a margin
    sampling_lanes::vf lo{};                        //!< lo_s in every lane
    sampling_lanes::vf cm{};                        //!< the exponent constant (`shifted_exponent`)
    double shift = 0;                               //!< the shift in logits: c / log2(e) (fused) or m
};

//! Sets the running maximum of `st` to nm (c stays finite while nm is lowest(): every entry so
//! far -inf).
inline void sampling_softmax_set_max(sampling_softmax_state& st, float nm, float band) noexcept {
    using namespace sampling_lanes;
    st.m = nm;
    if constexpr (fused) {
        const float c = std::max(nm * sampling_detail::log2e, std::numeric_limits<float>::lowest());
        st.cm = splat(c);
        st.shift = double(c) / double(sampling_detail::log2e);
    } else {
        st.cm = splat(nm);
        st.shift = double(nm);
    }
    const double margin = 1e-6 * (std::abs(double(nm)) + std::abs(double(band)) + 1.0);
    st.lo_s = static_cast<float>(std::max(double(nm) + double(band) - margin, double(std::numeric_limits<float>::lowest())));
    st.lo = splat(st.lo_s);
}

//! One block (`softmax_block` floats at p) of `sampling_softmax_blocks`: its exponentials (one
//! accumulator, returned as their lane sum in double), its maximum (`bm`) and its lane maxima per
//! chunk of 64 (W floats per chunk at `maxima`). The reduction of the next two registers is issued
//! alongside the finish of these two (`simd::exp2_reduce` / `simd::exp2_finish`).
inline double sampling_softmax_sweep(const float* p, const sampling_softmax_state& st, float* maxima, float& bm) noexcept {
    using namespace sampling_lanes;
    constexpr std::size_t G = 2 * W, chunk = 64, chunks = sampling_detail::softmax_block / chunk;
    vf acc{}, h = splat(ninf);
    simd::exp2_reduced q0 = simd::exp2_reduce(shifted_exponent(load(p), st.cm));
    simd::exp2_reduced q1 = simd::exp2_reduce(shifted_exponent(load(p + W), st.cm));
    for (std::size_t c = 0; c < chunks; ++c) {
        vf hc = splat(ninf);
        for (std::size_t i = c * chunk; i < (c + 1) * chunk; i += G) {
            const simd::exp2_reduced r0 = q0, r1 = q1;
            const std::size_t j = i + G < sampling_detail::softmax_block ? i + G : i; // the last "next" is unused
            q0 = simd::exp2_reduce(shifted_exponent(load(p + j), st.cm));
            q1 = simd::exp2_reduce(shifted_exponent(load(p + j + W), st.cm));
            const vf v0 = load(p + i), v1 = load(p + i + W);
            hc = simd::max_or_second(hc, simd::max_or_second(v0, v1));
            acc += simd::exp2_finish(r0) + simd::exp2_finish(r1);
        }
        simd::store(maxima + c * W, hc);
        h = simd::max_or_second(h, hc);
    }
    bm = lane_max(h);
    return simd::hsum(acc);
}

//! The float kernel of `sampling_detail::softmax_blocks` (its contract there). Returns false when
//! an entry is NaN or +inf.
inline bool sampling_softmax_blocks(path_tag, const float* x, std::size_t n, double* sums, double* shifts, float band,
                                    std::vector<std::int32_t>& ids, std::vector<float>& vals,
                                    std::vector<float>& chunk_maxima, std::vector<std::int32_t>& chunk_list,
                                    float& max_out) {
    using namespace sampling_lanes;
    constexpr std::size_t block = sampling_detail::softmax_block, chunk = 64, chunks = block / chunk;
    static_assert(block % chunk == 0 && chunk % (2 * W) == 0 && chunk <= 64);
    const std::size_t blocks = sampling_detail::softmax_block_count(n);
    sampling_softmax_state st;
    bool bad = false;
    const float first = sampling_max(path_tag{}, x, std::min(n, block), bad); // the first block's maximum
    if (bad) return false;
    sampling_softmax_set_max(st, std::max(first, st.m), band);
    float pad[block];
    chunk_maxima.resize(blocks * chunks * W);
    for (std::size_t b = 0; b < blocks; ++b) {
        const std::size_t s = b * block, len = std::min(n - s, block);
        const float* p = x + s;
        if (len < block) { // the row's last, partial block: -inf padding weighs 0
            std::fill(pad + len, pad + block, ninf);
            std::memcpy(pad, p, len * sizeof(float));
            p = pad;
        }
        float* maxima = chunk_maxima.data() + b * chunks * W;
        float bm = ninf;
        double sb = sampling_softmax_sweep(p, st, maxima, bm);
        if (bm > st.m) [[unlikely]] { // a new maximum (rare after the first blocks): redo the block
            if (bm == pinf) return false;
            sampling_softmax_set_max(st, bm, band);
            sb = sampling_softmax_sweep(p, st, maxima, bm);
        }
        if (std::isnan(sb)) return false; // a NaN entry makes its exponential NaN
        sums[b] = sb;
        shifts[b] = st.shift;
    }
    max_out = st.m;
    // the candidates: the chunks whose maximum reaches the final bound (listed branch-free), then
    // their lanes >= lo, each chunk's lines prefetched a few chunks ahead (the row has left L1,
    // and the listed chunks are scattered)
    const std::size_t total = blocks * chunks;
    chunk_list.resize(total);
    std::size_t listed = 0;
    for (std::size_t c = 0; c < total; ++c) {
        chunk_list[listed] = static_cast<std::int32_t>(c);
        listed += any_lane(load(chunk_maxima.data() + c * W) >= st.lo) ? 1 : 0;
    }
    if (listed > total / 2) return true; // a wide distribution: no candidates
    constexpr std::size_t ahead = 4;
    for (std::size_t k = 0; k < listed; ++k) {
        if (k + ahead < listed) {
            const float* q = x + static_cast<std::size_t>(chunk_list[k + ahead]) * chunk;
            for (std::size_t line = 0; line < chunk; line += 16) __builtin_prefetch(q + line);
        }
        const std::size_t s = static_cast<std::size_t>(chunk_list[k]) * chunk;
        if (s + chunk > n) { // the row's last, partial chunk
            for (std::size_t i = s; i < n; ++i)
                if (x[i] >= st.lo_s) ids.push_back(static_cast<std::int32_t>(i)), vals.push_back(x[i]);
            continue;
        }
        std::uint64_t bits = 0;
        for (std::size_t r = 0; r < chunk / W; ++r) bits |= std::uint64_t(lane_bits(load(x + s + r * W) >= st.lo)) << (r * W);
        for (; bits != 0; bits &= bits - 1) {
            const std::size_t i = s + static_cast<std::size_t>(std::countr_zero(bits));
            ids.push_back(static_cast<std::int32_t>(i));
            vals.push_back(x[i]);
        }
    }
    return true;
}

//! The float kernel of `sampling_detail::proposal_block` (its contract there).
inline sampling_detail::proposal_weights sampling_proposal_block(path_tag, const float* x, std::size_t n,
                                                                 const sampling_detail::proposal_shift<float>& sh,
                                                                 float* out) noexcept {
    using namespace sampling_lanes;
    constexpr std::size_t G = 2 * W;
    const std::size_t end = (n + G - 1) / G * G; // whole pairs of registers
    float pad[sampling_detail::softmax_block];
    if (n < end) {
        std::fill(pad + n, pad + end, ninf);
        std::memcpy(pad, x, n * sizeof(float));
        x = pad;
    }
    const vf cm = splat(sh.cm);
    vf acc{}, h = splat(ninf);
    vi nan{};
    for (std::size_t i = 0; i < end; i += G) {
        const vf v0 = load(x + i), v1 = load(x + i + W);
        h = simd::max_or_second(h, simd::max_or_second(v0, v1));
        nan |= unordered(v0, v1);
        const vf q0 = pow2_round(shifted_exponent(v0, cm)), q1 = pow2_round(shifted_exponent(v1, cm));
        if (out != nullptr && i < n) {
            float q[G];
            simd::store(q, q0);
            simd::store(q + W, q1);
            std::memcpy(out + i, q, std::min(G, n - i) * sizeof(float));
        }
        acc += q0 + q1;
    }
    return {simd::hsum(acc), lane_max(h), any_lane(nan)};
}

//! The float kernel of `sampling_detail::proposal_blocks` (its contract there). Returns false when
//! an entry is NaN or +inf.
inline bool sampling_proposal_blocks(path_tag, const float* x, std::size_t n, double* sums, double* maxima) noexcept {
    constexpr std::size_t block = sampling_detail::softmax_block;
    const std::size_t blocks = sampling_detail::softmax_block_count(n);
    bool bad = false;
    float m = sampling_max(path_tag{}, x, std::min(n, block), bad); // the first block's maximum
    if (bad) return false;
    sampling_detail::proposal_shift<float> sh(m, SELFREPLAY_SIMD_ISA);
    for (std::size_t b = 0; b < blocks; ++b) {
        const std::size_t s = b * block, len = std::min(n - s, block);
        sampling_detail::proposal_weights w = sampling_proposal_block(path_tag{}, x + s, len, sh, nullptr);
        if (w.nan) return false;
        if (w.max > m) { // a new maximum: the block again, under its shift
            if (w.max == sampling_lanes::pinf) return false;
            m = w.max;
            sh = sampling_detail::proposal_shift<float>(m, SELFREPLAY_SIMD_ISA);
            w = sampling_proposal_block(path_tag{}, x + s, len, sh, nullptr);
        }
        sums[b] = w.sum;
        maxima[b] = double(m);
    }
    return true;
}

//! Adds exp(x_i - m) into hist[b] for every token of x[0..n), b the bucket of its float key
//! (`mass_key<Typical>` around `centre`); tokens at -inf weigh 0. The masses are added in double,
//! spread over interleaved tables (no chain of adds through one slot when neighbours share a
//! bucket: min(W, 8) tables), in a fixed order: deterministic for a path.
template <bool Typical>
inline void sampling_mass_histogram(path_tag, const float* x, std::size_t n, float m, float centre,
                                    double* hist) noexcept {
    using namespace sampling_lanes;
    constexpr std::size_t B = sampling_detail::mass_buckets, T = W < 8 ? W : 8;
    double part[T][B] = {};
    const vf cv = splat(centre);
    alignas(64) float es[W];
    alignas(64) std::int32_t bs[W];
    for (std::size_t i = 0; i < n; i += W) {
        const vf v = load_tail(x + i, std::min(W, n - i));
        simd::store(es, exp_nonpositive(v - m));
        const vi b = key_bucket(mass_key<Typical>(v, cv));
        std::memcpy(bs, &b, sizeof bs);
        for (std::size_t j = 0; j < W; ++j) part[j % T][static_cast<std::size_t>(bs[j])] += double(es[j]);
    }
    for (std::size_t k = 0; k < B; ++k) {
        double h = 0;
        for (std::size_t t = 0; t < T; ++t) h += part[t][k];
        hist[k] = h;
    }
}

//! Appends to ids / vals (index order) the finite tokens of x[0..n) whose key bucket lies in
//! [lo, hi]: a vector test per W tokens, `lane_appender` per 4 W.
template <bool Typical>
inline void sampling_collect_buckets(path_tag, const float* x, std::size_t n, float centre, std::int32_t lo,
                                     std::int32_t hi, std::vector<std::int32_t>& ids, std::vector<float>& vals) {
    using namespace sampling_lanes;
    const vi vlo = vi{} + lo, vhi = vi{} + hi;
    const vf minf = splat(ninf), cv = splat(centre);
    float pad[4 * W];
    lane_appender out(ids, &vals);
    for (std::size_t i = 0; i < n; i += 4 * W) {
        const float* p = x + i;
        if (i + 4 * W > n) {
            std::fill(pad, pad + 4 * W, ninf);
            std::copy(x + i, x + n, pad);
            p = pad;
        }
        std::uint64_t bits = 0;
        for (std::size_t q = 0; q < 4; ++q) {
            const vf v = load(p + q * W);
            const vi b = key_bucket(mass_key<Typical>(v, cv));
            bits |= std::uint64_t(lane_bits((b >= vlo) & (b <= vhi) & (v > minf))) << (q * W);
        }
        out.append(bits, i, p);
    }
    out.finish();
}

//! Appends to ids / vals (index order) the finite tokens of x[0..n) whose float key
//! `mass_key<Typical>` around `centre` is <= bound: a vector test per W tokens, `lane_appender`
//! per 4 W.
template <bool Typical>
inline void sampling_collect_key_at_most(path_tag, const float* x, std::size_t n, float centre, float bound,
                                         std::vector<std::int32_t>& ids, std::vector<float>& vals) {
    using namespace sampling_lanes;
    const vf minf = splat(ninf), cv = splat(centre), bv = splat(bound);
    float pad[4 * W];
    lane_appender out(ids, &vals);
    for (std::size_t i = 0; i < n; i += 4 * W) {
        const float* p = x + i;
        if (i + 4 * W > n) {
            std::fill(pad, pad + 4 * W, ninf);
            std::copy(x + i, x + n, pad);
            p = pad;
        }
        std::uint64_t bits = 0;
        for (std::size_t q = 0; q < 4; ++q) {
            const vf v = load(p + q * W);
            bits |= std::uint64_t(lane_bits((mass_key<Typical>(v, cv) <= bv) & (v > minf))) << (q * W);
        }
        out.append(bits, i, p);
    }
    out.finish();
}

//! Splits the finite values v of vals[0..c) by their float key k = `mass_key<Typical>(v, centre)`:
//! returns the mass sum exp(v - m) of those with k < a (float lanes per block of
//! `softmax_block`, added in double), and appends to `band` the positions (in vals) of those with
//! a <= k <= b.
template <bool Typical>
inline double sampling_split_band(path_tag, const float* vals, std::size_t c, float m, float centre, float a, float b,
                                  std::vector<std::int32_t>& band) {
    using namespace sampling_lanes;
    const vf minf = splat(ninf), cv = splat(centre), av = splat(a), bv = splat(b);
    float pad[4 * W];
    lane_appender out(band, nullptr);
    double sure = 0;
    vf acc{};
    for (std::size_t i = 0; i < c; i += 4 * W) {
        const float* p = vals + i;
        if (i + 4 * W > c) {
            std::fill(pad, pad + 4 * W, ninf);
            std::copy(vals + i, vals + c, pad);
            p = pad;
        }
        std::uint64_t bits = 0;
        for (std::size_t q = 0; q < 4; ++q) {
            const vf v = load(p + q * W);
            const vf k = mass_key<Typical>(v, cv);
            acc += simd::select(k < av, exp_nonpositive(v - m), vf{});
            bits |= std::uint64_t(lane_bits((k >= av) & (k <= bv) & (v > minf))) << (q * W);
        }
        out.append(bits, i, p);
        if ((i + 4 * W) % sampling_detail::softmax_block == 0) sure += simd::hsum(acc), acc = vf{};
    }
    out.finish();
    return sure + simd::hsum(acc);
}

//! Top-p's crossing bucket: appends -v (keys) and exp(v - m) (weights) of the values v of
//! vals[0..c) whose top-p key bucket (centre m) is b.
inline void sampling_bucket_members(path_tag, const float* vals, std::size_t c, float m, std::int32_t b,
                                    std::vector<double>& keys, std::vector<float>& weights) {
    using namespace sampling_lanes;
    const vf mv = splat(m);
    for (std::size_t i = 0; i < c; i += W) {
        const std::size_t len = std::min(W, c - i);
        const vf v = load_tail(vals + i, len);
        const vi bv = key_bucket(mass_key<false>(v, mv));
        const vf e = exp_nonpositive(v - m);
        for (std::size_t j = 0; j < len; ++j)
            if (bv[j] == b) keys.push_back(-double(v[j])), weights.push_back(e[j]);
    }
}

//! Typical-p's moments of x[0..n) with maximum m: z = sum e_i, zd = sum e_i d_i (e_i = exp(d_i),
//! d_i = x_i - m; float lanes, added in double per block of `softmax_block`).
inline void sampling_typical_moments(path_tag, const float* x, std::size_t n, float m, double& z, double& zd) noexcept {
    using namespace sampling_lanes;
    const vf minf = splat(ninf);
    z = 0;
    zd = 0;
    for (std::size_t s = 0; s < n; s += sampling_detail::softmax_block) {
        const std::size_t e = std::min(n, s + sampling_detail::softmax_block);
        vf a{}, ad{};
        for (std::size_t i = s; i < e; i += W) {
            const vf v = load_tail(x + i, std::min(W, e - i));
            const vf d = v - m;
            const vf w = exp_nonpositive(d);
            a += w;
            ad += v > minf ? w * d : vf{}; // (-inf: weight 0, no 0 * -inf)
        }
        z += simd::hsum(a);
        zd += simd::hsum(ad);
    }
}

//! Typical-p's kept set on a row: appends (index order) the finite tokens of x[0..n) whose
//! bucket (key |x - centre|) is below lo, and those of buckets lo .. hi whose double score
//! |mean_d - (x - m)| is <= kappa.
inline void sampling_typical_keep(path_tag, const float* x, std::size_t n, float centre, std::int32_t lo, std::int32_t hi,
                                  double mean_d, double m, double kappa, std::vector<std::int32_t>& ids,
                                  std::vector<float>& vals) {
    using namespace sampling_lanes;
    const vi vlo = vi{} + lo, vhi = vi{} + hi;
    const vf minf = splat(ninf), cv = splat(centre);
    float pad[4 * W];
    lane_appender out(ids, &vals);
    for (std::size_t i = 0; i < n; i += 4 * W) {
        const float* q = x + i;
        if (i + 4 * W > n) {
            std::fill(pad, pad + 4 * W, ninf);
            std::copy(x + i, x + n, pad);
            q = pad;
        }
        std::uint64_t sure = 0, maybe = 0;
        for (std::size_t r = 0; r < 4; ++r) {
            const vf v = load(q + r * W);
            const vi bk = key_bucket(mass_key<true>(v, cv));
            const vi finite = v > minf;
            sure |= std::uint64_t(lane_bits((bk < vlo) & finite)) << (r * W);
            maybe |= std::uint64_t(lane_bits((bk >= vlo) & (bk <= vhi) & finite)) << (r * W);
        }
        for (std::uint64_t bits = maybe; bits != 0; bits &= bits - 1) { // the few tokens near the threshold
            const auto j = static_cast<std::size_t>(std::countr_zero(bits));
            if (std::abs(mean_d - (double(q[j]) - m)) <= kappa) sure |= std::uint64_t{1} << j;
        }
        out.append(sure, i, q);
    }
    out.finish();
}

} // namespace selfreplay::detail::SELFREPLAY_SIMD_NS
