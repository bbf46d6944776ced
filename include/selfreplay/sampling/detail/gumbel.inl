// Internal, no include guard: the dense-row Gumbel kernel for one ISA path, included once per path
// by sampling/gumbel_kernel.hpp (see detail/simd/simd.hpp, "Adding a kernel"). The entry points
// (`gumbel_dense_row`, `gumbel_noise`) take the path's `path_tag` first; the helpers in
// `gumbel_lanes` are this path's own.

namespace selfreplay::detail::SELFREPLAY_SIMD_NS {

//! Philox and Gumbel noise in this path's registers of L 32-bit lanes.
namespace gumbel_lanes {

inline constexpr std::size_t L = SELFREPLAY_SIMD_BYTES / 4; //!< 32-bit lanes per register
inline constexpr std::size_t group = 4 * L; //!< tokens per step: the 4 words of L Philox blocks

typedef std::uint32_t vu32 __attribute__((vector_size(SELFREPLAY_SIMD_BYTES))); //!< L unsigned 32-bit lanes
typedef std::int32_t vi32 __attribute__((vector_size(SELFREPLAY_SIMD_BYTES)));  //!< L signed 32-bit lanes
typedef std::uint64_t vu64 __attribute__((vector_size(SELFREPLAY_SIMD_BYTES))); //!< L / 2 unsigned 64-bit lanes
typedef float vf32 __attribute__((vector_size(SELFREPLAY_SIMD_BYTES)));         //!< L float lanes

//! The 64-bit products a[2j] * b[2j] of the even 32-bit lanes (pmuludq).
[[gnu::always_inline]] inline vu64 mul_even(vu32 a, vu32 b) noexcept {
#if SELFREPLAY_SIMD_PATH == 2 // (the zero-masked form: GCC 12's plain one trips -Wmaybe-uninitialized)
    return (vu64)_mm512_maskz_mul_epu32(0xFF, (__m512i)a, (__m512i)b);
#elif SELFREPLAY_SIMD_PATH == 1
    return (vu64)_mm256_mul_epu32((__m256i)a, (__m256i)b);
#elif defined(__x86_64__) || defined(__i386__)
    return (vu64)_mm_mul_epu32((__m128i)a, (__m128i)b);
#else
    constexpr vu64 low = vu64{} + 0xFFFFFFFFu;
    return ((vu64)a & low) * ((vu64)b & low);
#endif
}

//! The high and low halves of the 64-bit products a[i] * m, lane by lane (Philox's mulhilo).
struct hilo {
    vu32 hi; //!< high 32 bits of each product
    vu32 lo; //!< low 32 bits of each product
};

//! `hilo` of a[i] * m for every lane: two pmuludq (even lanes, odd lanes shifted down), then the
//! halves interleaved back into lane order.
[[gnu::always_inline]] inline hilo mulhilo(vu32 a, vu32 m) noexcept {
    constexpr vu64 low = vu64{} + 0xFFFFFFFFu;
    const vu64 even = mul_even(a, m);
    const vu64 odd = mul_even((vu32)((vu64)a >> 32), m);
    return {(vu32)((even >> 32) | (odd & ~low)), (vu32)((even & low) | (odd << 32))};
}

//! Four registers of 32-bit words.
struct quad {
    vu32 w[4]; //!< register k
};

//! Philox4x32-10 (`philox4x32`) of N x L counters at once (N independent register sets, so that
//! the ten dependent rounds of one overlap with those of the others): lane j of c[g].w[k] is
//! word k of a counter, replaced by word k of its output. The key is (k0, k1).
template <std::size_t N>
inline void philox_lanes(quad (&c)[N], std::uint32_t k0, std::uint32_t k1) noexcept {
    const vu32 m0 = vu32{} + 0xD2511F53u, m1 = vu32{} + 0xCD9E8D57u;
    for (int r = 0; r < 10; ++r) {
        for (std::size_t g = 0; g < N; ++g) {
            const hilo p0 = mulhilo(c[g].w[0], m0), p1 = mulhilo(c[g].w[2], m1);
            c[g] = {{p1.hi ^ c[g].w[1] ^ k0, p1.lo, p0.hi ^ c[g].w[3] ^ k1, p0.lo}};
        }
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
}

//! Transposes each 128-bit quarter of four registers as a 4 x 4 matrix of 32-bit words
//! (punpck{l,h}dq and punpck{l,h}qdq): afterwards register k, quarter q, holds word 0..3 of the
//! counter that sat in lane 4 q + k.
[[gnu::always_inline]] inline quad transpose4(quad v) noexcept {
#if SELFREPLAY_SIMD_PATH == 2 // (vector-extension shuffles: GCC 12's unpack intrinsics trip -Wmaybe-uninitialized)
    const vu32 a = __builtin_shufflevector(v.w[0], v.w[1], 0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12, 28, 13, 29);
    const vu32 b = __builtin_shufflevector(v.w[0], v.w[1], 2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11, 27, 14, 30, 15, 31);
    const vu32 c = __builtin_shufflevector(v.w[2], v.w[3], 0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12, 28, 13, 29);
    const vu32 d = __builtin_shufflevector(v.w[2], v.w[3], 2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11, 27, 14, 30, 15, 31);
    return {{__builtin_shufflevector(a, c, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29),
             __builtin_shufflevector(a, c, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31),
             __builtin_shufflevector(b, d, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29),
             __builtin_shufflevector(b, d, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31)}};
#elif SELFREPLAY_SIMD_PATH == 1
    const __m256i a = _mm256_unpacklo_epi32((__m256i)v.w[0], (__m256i)v.w[1]);
    const __m256i b = _mm256_unpackhi_epi32((__m256i)v.w[0], (__m256i)v.w[1]);
    const __m256i c = _mm256_unpacklo_epi32((__m256i)v.w[2], (__m256i)v.w[3]);
    const __m256i d = _mm256_unpackhi_epi32((__m256i)v.w[2], (__m256i)v.w[3]);
    return {{(vu32)_mm256_unpacklo_epi64(a, c), (vu32)_mm256_unpackhi_epi64(a, c), (vu32)_mm256_unpacklo_epi64(b, d),
             (vu32)_mm256_unpackhi_epi64(b, d)}};
#elif defined(__x86_64__) || defined(__i386__)
    const __m128i a = _mm_unpacklo_epi32((__m128i)v.w[0], (__m128i)v.w[1]);
    const __m128i b = _mm_unpackhi_epi32((__m128i)v.w[0], (__m128i)v.w[1]);
    const __m128i c = _mm_unpacklo_epi32((__m128i)v.w[2], (__m128i)v.w[3]);
    const __m128i d = _mm_unpackhi_epi32((__m128i)v.w[2], (__m128i)v.w[3]);
    return {{(vu32)_mm_unpacklo_epi64(a, c), (vu32)_mm_unpackhi_epi64(a, c), (vu32)_mm_unpacklo_epi64(b, d),
             (vu32)_mm_unpackhi_epi64(b, d)}};
#else
    quad t{};
    for (std::size_t q = 0; q < L / 4; ++q)
        for (std::size_t k = 0; k < 4; ++k)
            for (std::size_t w = 0; w < 4; ++w) t.w[k][4 * q + w] = v.w[w][4 * q + k];
    return t;
#endif
}

//! ln(x) lane by lane for positive normal finite x (the only inputs here: u in [2^-24, 1) and
//! -ln u in [6e-8, 16.7]). x = 2^e m with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(s),
//! s = (m - 1) / (m + 1), |s| <= 0.1716, by its series to s^9 (truncation 2e-9 relative);
//! ln x = e ln 2 + ln m. Accuracy: see `noise_error_bound`.
[[gnu::always_inline]] inline vf32 log_lanes(vf32 x) noexcept {
    const vi32 bits = (vi32)x;
    const vi32 e = (bits - 0x3F3504F3) >> 23; // exponent relative to m's range (arithmetic shift)
    const vf32 m = (vf32)(bits - (e << 23));
    const vf32 s = (m - 1.0f) / (m + 1.0f);
    const vf32 z = s * s;
    vf32 p = z * (2.0f / 9.0f) + 2.0f / 7.0f;
    p = p * z + 2.0f / 5.0f;
    p = p * z + 2.0f / 3.0f;
    p = p * z + 2.0f;
    return __builtin_convertvector(e, vf32) * 0.693147180559945309f + s * p;
}

//! The uniform u = (2 (w >> 9) + 1) 2^-24 in (0, 1) of `uniform_float_open` for each word, exact
//! in float.
[[gnu::always_inline]] inline vf32 open_uniform(vu32 w) noexcept {
    return __builtin_convertvector((vi32)((w >> 9) << 1 | 1u), vf32) * 0x1p-24f;
}

//! True when some lane of the comparison mask `m` is set.
[[gnu::always_inline]] inline bool any_lane(vi32 m) noexcept { return sampling_lanes::any_lane(m); }

//! An upper bound on the Gumbel noise of u, without a logarithm: -ln(-ln u) <= -ln(1 - u)
//! (as -ln u >= 1 - u), and 1 - u (exact in float) >= 2^e with e its exponent, so the noise is
//! at most -e ln 2 (computed within 1e-6 of that).
[[gnu::always_inline]] inline vf32 noise_upper_bound(vf32 u) noexcept {
    const vi32 e = ((vi32)(1.0f - u) >> 23) - 127;
    return __builtin_convertvector(-e, vf32) * 0.693147180559945309f;
}

//! The float Gumbel noise -ln(-ln u) of each word's `open_uniform` u.
[[gnu::always_inline]] inline vf32 noise_lanes(vu32 w) noexcept { return -log_lanes(-log_lanes(open_uniform(w))); }

//! The words of `N` consecutive groups, the first at block `block0` of `rng`'s stream: group g's
//! register k holds the words of tokens [L k, L k + L) of the group (the 4 words of L Philox
//! blocks, in word order). Counter lane 4 q + k holds block (L / 4) k + q of the group, so that
//! `transpose4` leaves them in that order.
template <std::size_t N>
inline void group_words(const counter_rng& rng, std::uint64_t block0, quad (&out)[N]) noexcept {
    vu32 lane{};
    for (std::size_t q = 0; q < L / 4; ++q)
        for (std::size_t k = 0; k < 4; ++k) lane[4 * q + k] = static_cast<std::uint32_t>((L / 4) * k + q);
    const vu32 s_lo = vu32{} + static_cast<std::uint32_t>(rng.stream), s_hi = vu32{} + static_cast<std::uint32_t>(rng.stream >> 32);
    for (std::size_t g = 0; g < N; ++g) {
        const std::uint64_t b = block0 + L * g;
        const vu32 base = vu32{} + static_cast<std::uint32_t>(b);
        const vu32 lo = base + lane;
        const vu32 hi = (vu32{} + static_cast<std::uint32_t>(b >> 32)) - (vu32)(lo < base); // carry
        out[g] = {{lo, hi, s_lo, s_hi}};
    }
    philox_lanes(out, static_cast<std::uint32_t>(rng.seed), static_cast<std::uint32_t>(rng.seed >> 32));
    for (std::size_t g = 0; g < N; ++g) out[g] = transpose4(out[g]);
}

//! The tokens of group g: x[group g - off .. group (g + 1) - off), copied into `pad` with -inf
//! outside [0, n) when the group reaches past either end.
inline const float* group_tokens(const float* x, std::size_t n, std::size_t off, std::size_t g, float* pad) noexcept {
    const std::ptrdiff_t s = static_cast<std::ptrdiff_t>(group * g) - static_cast<std::ptrdiff_t>(off);
    if (s >= 0 && static_cast<std::size_t>(s) + group <= n) return x + s;
    for (std::size_t j = 0; j < group; ++j) {
        const std::ptrdiff_t i = s + static_cast<std::ptrdiff_t>(j);
        pad[j] = i >= 0 && static_cast<std::size_t>(i) < n ? x[i] : -std::numeric_limits<float>::infinity();
    }
    return pad;
}

//! A register of L floats at p.
[[gnu::always_inline]] inline vf32 load(const float* p) noexcept {
    vf32 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

} // namespace gumbel_lanes

//! out[i] = the float Gumbel noise of words[i] (`gumbel_lanes::noise_lanes`), i < n, n a multiple of 16.
inline void gumbel_noise(path_tag, const std::uint32_t* words, std::size_t n, float* out) noexcept {
    using namespace gumbel_lanes;
    for (std::size_t i = 0; i + L <= n; i += L) {
        vu32 w;
        std::memcpy(&w, words + i, sizeof w);
        const vf32 g = noise_lanes(w);
        std::memcpy(out + i, &g, sizeof g);
    }
}

//! The kernel of `sampling_detail::gumbel::gumbel_dense`: argmax_i (x_i - ln(-ln u_i)) over
//! x[0..n), u_i from word c0 + i of `rng`'s stream (exact double scores, lowest index among ties),
//! without computing a double logarithm for most tokens. One pass: per group of `group` tokens
//! (the words of L Philox blocks, `group_words`; the first and last groups padded with -inf), the
//! float scores s~ = x + noise_lanes(w) and their lane maxima (kept in `group_maxima`). Every float
//! score is within E = noise_error_bound + 2^-24 |s~| (+ the double rounding) of the exact one, so
//! a token whose exact score reaches the exact maximum has s~ >= best~ - margin, margin =
//! 4 noise_error_bound + 2^-20 |best~|; the groups holding such lanes are recomputed and those
//! lanes alone scored exactly, in index order. A register of L tokens skips its two logarithms
//! when no lane's x + `noise_upper_bound` reaches the best float score so far, t, less
//! 1e-3 + 2^-18 |t|: that slack exceeds the errors of t (noise_error_bound + 2^-24 |t|) and of
//! the bound's float sum, so a skipped token's exact score is below an exact score of the row,
//! and it can neither win nor tie (on N(0, 5^2) rows most registers skip).
inline sampling_detail::gumbel::dense_result gumbel_dense_row(path_tag, const float* x, std::size_t n, const counter_rng& rng,
                                                              std::vector<float>& group_maxima) {
    using namespace gumbel_lanes;
    using sampling_detail::gumbel::exact_noise;
    using sampling_detail::gumbel::noise_error_bound;
    const std::uint64_t c0 = rng.counter;
    const std::size_t off = static_cast<std::size_t>(c0 & 3);
    const std::uint64_t block_base = c0 >> 2;
    const std::size_t groups = (n + off + group - 1) / group;
    group_maxima.resize(groups * L);
    constexpr float inf = std::numeric_limits<float>::infinity();
    float pad[group];
    vi32 bad{};
    vf32 top = vf32{} - inf, reach = top; // the best float score so far; the bound a lane must reach
    constexpr std::size_t N = 2;          // groups per step
    for (std::size_t g0 = 0; g0 < groups; g0 += N) {
        quad w[N];
        group_words(rng, block_base + L * g0, w);
        for (std::size_t d = 0; d < N && g0 + d < groups; ++d) {
            const std::size_t g = g0 + d;
            const float* p = group_tokens(x, n, off, g, pad);
            vf32 h = vf32{} - inf;
            for (std::size_t k = 0; k < 4; ++k) {
                const vf32 v = load(p + L * k);
                bad |= ~(v < inf); // NaN or +inf
                // the logarithms only when some lane's bound x + noise_upper_bound reaches the
                // best float score so far (less a slack covering every rounding: see above)
                if (!any_lane(v + noise_upper_bound(open_uniform(w[d].w[k])) >= reach)) continue;
                const vf32 s = v + noise_lanes(w[d].w[k]);
                h = s > h ? s : h;
            }
            std::memcpy(group_maxima.data() + g * L, &h, sizeof h);
            top = h > top ? h : top;
        }
        float t = -inf;
        for (std::size_t j = 0; j < L; ++j) t = top[j] > t ? top[j] : t;
        if (t > -inf) reach = vf32{} + static_cast<float>(double(t) - 1e-3 - 0x1p-18 * std::abs(double(t)));
    }
    bool any_bad = false;
    float best_approx = -inf;
    for (std::size_t j = 0; j < L; ++j) any_bad |= bad[j] != 0, best_approx = top[j] > best_approx ? top[j] : best_approx;
    if (any_bad) return {-1, true};
    if (best_approx == -inf) return {-1, false};
    const double margin = 4 * noise_error_bound + 0x1p-20 * std::abs(double(best_approx));
    const float cut = std::nextafter(static_cast<float>(double(best_approx) - margin), -inf);
    std::int64_t best = -1;
    double best_score = -std::numeric_limits<double>::infinity();
    for (std::size_t g = 0; g < groups; ++g) {
        bool hit = false;
        for (std::size_t j = 0; j < L; ++j) hit |= group_maxima[g * L + j] >= cut;
        if (!hit) continue;
        const float* p = group_tokens(x, n, off, g, pad);
        quad w[1];
        group_words(rng, block_base + L * g, w);
        for (std::size_t k = 0; k < 4; ++k) {
            const vf32 s = load(p + L * k) + noise_lanes(w[0].w[k]);
            for (std::size_t j = 0; j < L; ++j) {
                const std::ptrdiff_t t = static_cast<std::ptrdiff_t>(group * g + L * k + j) - static_cast<std::ptrdiff_t>(off);
                if (!(s[j] >= cut) || t < 0 || static_cast<std::size_t>(t) >= n || !(p[L * k + j] > -inf)) continue;
                const auto i = static_cast<std::size_t>(t);
                const std::uint64_t word = c0 + i;
                const double score = double(x[i]) + exact_noise(rng.block(word >> 2)[word & 3]);
                if (score > best_score || (score == best_score && static_cast<std::int64_t>(i) < best))
                    best_score = score, best = static_cast<std::int64_t>(i);
            }
        }
    }
    return {best, false};
}

} // namespace selfreplay::detail::SELFREPLAY_SIMD_NS
