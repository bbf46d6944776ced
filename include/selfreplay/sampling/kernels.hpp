#pragma once
//! \file
//! Row kernels shared by the processors and the draws (namespace `selfreplay::sampling_detail`,
//! not public API). The float paths use GCC vector extensions of W floats (32 bytes with AVX2,
//! 16 bytes otherwise: SSE2 on x86-64, NEON on ARM), without -ffast-math; float exponentials come
//! from selfreplay/detail/fast_exp.hpp; double rows take the scalar paths.

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "selfreplay/detail/fast_exp.hpp"
#include "selfreplay/tensor/error.hpp"

#if defined(__AVX2__) || defined(__SSE2__)
#include <immintrin.h>
#endif

namespace selfreplay::sampling_detail {

template <class T>
inline constexpr T neg_inf = -std::numeric_limits<T>::infinity();
template <class T>
inline constexpr T pos_inf = std::numeric_limits<T>::infinity();

#if defined(__AVX2__)
inline constexpr std::size_t W = 8; //!< floats per vector register (AVX2: 8)
#else
inline constexpr std::size_t W = 4; //!< floats per vector register (SSE2 / NEON: 4)
#endif
//! W floats in one vector register (GCC/Clang vector extension: SSE2 by default, AVX with
//! -mavx2 / -march=native, NEON on ARM).
typedef float vfloat __attribute__((vector_size(4 * W)));
//! W int32 in one register; also the result type of vfloat comparisons (-1 true, 0 false).
typedef std::int32_t vint __attribute__((vector_size(4 * W)));

inline vfloat loadv(const float* p) noexcept {
    vfloat v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline void storev(float* p, vfloat v) noexcept { std::memcpy(p, &v, sizeof v); }
inline vfloat splat(float x) noexcept { return vfloat{} + x; }
//! True when some lane of the comparison mask `m` is true.
inline bool anyv(vint m) noexcept {
#if defined(__AVX2__)
    const __m256i v = std::bit_cast<__m256i>(m);
    return _mm256_testz_si256(v, v) == 0;
#elif defined(__SSE2__)
    return _mm_movemask_ps(std::bit_cast<__m128>(m)) != 0;
#else
    std::int32_t a = 0;
    for (std::size_t j = 0; j < W; ++j) a |= m[j];
    return a != 0;
#endif
}

//! Bit j set when lane j of the comparison mask `m` is true.
inline unsigned lane_bits(vint m) noexcept {
#if defined(__AVX2__)
    return static_cast<unsigned>(_mm256_movemask_ps(std::bit_cast<__m256>(m)));
#elif defined(__SSE2__)
    return static_cast<unsigned>(_mm_movemask_ps(std::bit_cast<__m128>(m)));
#else
    unsigned bits = 0;
    for (std::size_t j = 0; j < W; ++j) bits |= (m[j] != 0 ? 1u : 0u) << j;
    return bits;
#endif
}

//! Largest lane of v (NaN lanes skipped; -inf when every lane is -inf or NaN).
inline float lane_max(vfloat v) noexcept {
    float m = neg_inf<float>;
    for (std::size_t j = 0; j < W; ++j) m = v[j] > m ? v[j] : m;
    return m;
}
//! Sum of the lanes of v in double, in lane order (deterministic).
inline double lane_sum(vfloat v) noexcept {
    double s = 0;
    for (std::size_t j = 0; j < W; ++j) s += double(v[j]);
    return s;
}

//! log2(e) rounded to float: the sampling kernels compute exp(d) as 2^(d log2(e)).
inline constexpr float log2e = 1.44269504088896341f;

//! exp(d) lane-wise for d <= 0, as 2^(d log2(e)) (`detail::exp2_lanes`; the same computation as
//! `exp_nonpositive<float>`).
inline vfloat exp_nonpositive_v(vfloat d) noexcept { return detail::exp2_lanes(d * log2e); }

//! exp(d) for d <= 0 (d may be -inf, never NaN). Float: 2^(d log2(e)) by `detail::exp2_float`
//! (selfreplay/detail/fast_exp.hpp: relative error below 3e-7 for the product d log2(e), whose
//! own rounding adds |d| 6e-8; exactly 0 below about -87.7; branch-free so loops of it
//! vectorise). Double: std::exp.
template <class T>
inline T exp_nonpositive(T d) noexcept {
    if constexpr (std::is_same_v<T, float>)
        return detail::exp2_float(d * log2e);
    else
        return std::exp(d);
}

//! Throws the standard error for a NaN or +inf logit found by a pass of `where`.
[[noreturn]] inline void throw_bad_logit(std::string_view where) {
    throw invalid_argument(where, "logits", "must not contain NaN or +inf");
}

//! Maximum of x[0..n) (-inf when empty or all -inf). Throws when some entry is NaN or +inf.
template <class T>
T max_checked(const T* x, std::size_t n, std::string_view where) {
    std::size_t i = 0;
    T mm = neg_inf<T>;
    bool bad = false;
    if constexpr (std::is_same_v<T, float>) {
        const std::size_t nv = n - n % (4 * W);
        vfloat m0 = splat(neg_inf<float>), m1 = m0, m2 = m0, m3 = m0;
        vint b{};
        const vfloat inf = splat(pos_inf<float>);
        for (; i < nv; i += 4 * W) {
            const vfloat a = loadv(x + i), c = loadv(x + i + W), d = loadv(x + i + 2 * W), e = loadv(x + i + 3 * W);
            m0 = a > m0 ? a : m0;
            m1 = c > m1 ? c : m1;
            m2 = d > m2 ? d : m2;
            m3 = e > m3 ? e : m3;
            b |= ~((a < inf) & (c < inf) & (d < inf) & (e < inf));
        }
        m0 = m1 > m0 ? m1 : m0;
        m2 = m3 > m2 ? m3 : m2;
        m0 = m2 > m0 ? m2 : m0;
        mm = lane_max(m0);
        bad = anyv(b);
    }
    for (; i < n; ++i) {
        mm = x[i] > mm ? x[i] : mm;
        bad |= !(x[i] < pos_inf<T>);
    }
    if (bad) throw_bad_logit(where);
    return mm;
}

//! Index of the first x[i] == v in x[0..n) (n when there is none); float rows compare W lanes
//! at a time.
template <class T>
std::size_t first_equal(const T* x, std::size_t n, T v) noexcept {
    std::size_t i = 0;
    if constexpr (std::is_same_v<T, float>) {
        const vfloat t = splat(v);
        for (; i + 2 * W <= n; i += 2 * W) {
            const unsigned bits = lane_bits(loadv(x + i) == t) | lane_bits(loadv(x + i + W) == t) << W;
            if (bits != 0) return i + static_cast<std::size_t>(std::countr_zero(bits));
        }
    }
    while (i < n && !(x[i] == v)) ++i;
    return i;
}

//! Sum of exp(x[i] - m) over x[0..n), m >= every x[i] (float accumulation in lanes).
template <class T>
double sum_exp(const T* x, std::size_t n, T m) {
    std::size_t i = 0;
    double s = 0;
    if constexpr (std::is_same_v<T, float>) {
        const std::size_t nv = n - n % (4 * W);
        vfloat a0{}, a1{}, a2{}, a3{};
        for (; i < nv; i += 4 * W) {
            a0 += exp_nonpositive_v(loadv(x + i) - m);
            a1 += exp_nonpositive_v(loadv(x + i + W) - m);
            a2 += exp_nonpositive_v(loadv(x + i + 2 * W) - m);
            a3 += exp_nonpositive_v(loadv(x + i + 3 * W) - m);
        }
        const vfloat a = (a0 + a1) + (a2 + a3);
        s = lane_sum(a);
    }
    for (; i < n; ++i) s += double(exp_nonpositive<T>(x[i] - m));
    return s;
}

//! out[i] = exp(v[i] - m) for i < n (m >= every v[i]), as float.
template <class T>
void exp_shifted(const T* v, std::size_t n, T m, float* out) {
    std::size_t i = 0;
    if constexpr (std::is_same_v<T, float>) {
        const std::size_t nv = n - n % W;
        for (; i < nv; i += W) storev(out + i, exp_nonpositive_v(loadv(v + i) - m));
    }
    for (; i < n; ++i) out[i] = static_cast<float>(exp_nonpositive<T>(v[i] - m));
}

//! Bit q W + j set when lane j of register q of x[0..4 W) is >= t (four registers, W <= 16);
//! one OR of the four comparisons first, so that a block with no such lane costs one test.
inline std::uint64_t block_at_least(const float* x, vfloat t) noexcept {
    if (!anyv((loadv(x) >= t) | (loadv(x + W) >= t) | (loadv(x + 2 * W) >= t) | (loadv(x + 3 * W) >= t))) return 0;
    std::uint64_t bits = 0;
    for (std::size_t q = 0; q < 4; ++q) bits |= std::uint64_t(lane_bits(loadv(x + q * W) >= t)) << (q * W);
    return bits;
}

//! Appends to `ids` (and to `vals` when given) the lanes j of the block x[0..4 W) set in `bits`
//! (bit j), as base + j and x[j], in lane order: both vectors grow once per block and every lane
//! is written branch-free (the write pointer advances by the lane's bit), so the cost does not
//! depend on how the set lanes are spread (a bit-by-bit walk mispredicts on every block).
template <class T>
void append_lanes(std::uint64_t bits, std::size_t base, const T* x, std::vector<std::int32_t>& ids, std::vector<T>* vals) {
    if (bits == 0) return;
    constexpr std::size_t B = 4 * W;
    const std::size_t s = ids.size(), k = static_cast<std::size_t>(std::popcount(bits));
    ids.resize(s + B);
    std::int32_t* pi = ids.data() + s;
    std::size_t c = 0;
    if (vals != nullptr) {
        vals->resize(s + B);
        T* pv = vals->data() + s;
        for (std::size_t j = 0; j < B; ++j) {
            pi[c] = static_cast<std::int32_t>(base + j);
            pv[c] = x[j];
            c += (bits >> j) & 1u;
        }
        vals->resize(s + k);
    } else {
        for (std::size_t j = 0; j < B; ++j) {
            pi[c] = static_cast<std::int32_t>(base + j);
            c += (bits >> j) & 1u;
        }
    }
    ids.resize(s + k);
}

//! Writes -inf over every x[i] < tau and appends the indices of the others to `kept`.
//! Per block of 4 W: one vector pass (the stores), then `append_lanes`.
template <class T>
void mask_below(T* x, std::size_t n, T tau, std::vector<std::int32_t>& kept) {
    std::size_t i = 0;
    if constexpr (std::is_same_v<T, float>) {
        const std::size_t nv = n - n % (4 * W);
        const vfloat t = splat(tau), ninf = splat(neg_inf<float>);
        for (; i < nv; i += 4 * W) {
            const std::uint64_t bits = block_at_least(x + i, t);
            for (std::size_t q = 0; q < 4 * W; q += W) {
                const vfloat v = loadv(x + i + q);
                storev(x + i + q, v >= t ? v : ninf);
            }
            append_lanes<float>(bits, i, x + i, kept, nullptr);
        }
    }
    for (; i < n; ++i) {
        if (x[i] >= tau)
            kept.push_back(static_cast<std::int32_t>(i));
        else
            x[i] = neg_inf<T>;
    }
}

//! Appends to `ids` the indices of x[i] >= c and to `vals` their values (index order). Per block
//! of 4 W: a vector test, then `append_lanes`.
template <class T>
void collect_at_least(const T* x, std::size_t n, T c, std::vector<std::int32_t>& ids, std::vector<T>& vals) {
    std::size_t i = 0;
    if constexpr (std::is_same_v<T, float>) {
        const std::size_t nv = n - n % (4 * W);
        const vfloat t = splat(c);
        for (; i < nv; i += 4 * W) append_lanes(block_at_least(x + i, t), i, x + i, ids, &vals);
    }
    for (; i < n; ++i)
        if (x[i] >= c) ids.push_back(static_cast<std::int32_t>(i)), vals.push_back(x[i]);
}

//! Elements per block of `softmax_blocks` (a multiple of 2 W).
inline constexpr std::size_t softmax_block = 512;

//! Number of blocks of `softmax_blocks` for a row of n elements.
inline std::size_t softmax_block_count(std::size_t n) noexcept { return (n + softmax_block - 1) / softmax_block; }

//! One read of x[0..n) for top-p: returns m, the maximum (std::numeric_limits<T>::lowest() when
//! every entry is -inf), and for each block b of `softmax_block` elements writes sums[b] = the
//! sum of exp(x_i - shifts[b]) over the block, where shifts[b] is a running maximum <= m (float:
//! within its |value| 6e-8, see below), so that sums[b] * exp(shifts[b] - m) is the block's share
//! of Z = sum_i exp(x_i - m); every sum is 0 when every entry is -inf. Appends to ids / vals (in
//! index order) a superset of the entries with x_i - m >= band (float arithmetic): those with
//! x_i >= m + band, less a margin, unless they lie in more than half of the row's chunks of
//! 64 (float rows; a wide distribution, where that list would cost more than it saves): then
//! nothing is appended. Requires band <= 0.
//! Throws (`throw_bad_logit(where)`) when an entry is NaN or +inf.
//! Float: the shift is the running maximum (from the first block's), one value for all lanes, so
//! each entry costs one exponential and the row is read once; with FMA the exponent
//! x log2(e) - c is one fused multiply-add with c = (running maximum) log2(e) rounded to float,
//! and the shift reported is c / log2(e). A block (the last, partial one padded with -inf) takes
//! its maximum alongside its exponentials, per chunk of 64 (lane maxima kept in `chunk_maxima`),
//! and is recomputed (from L1) when that maximum exceeds the running one (rare after the first
//! blocks). After the pass, only the chunks whose maximum reaches the final bound m + band are
//! rescanned (listed in `chunk_list`, prefetched ahead; one 64-bit lane mask per chunk, walked
//! bit by bit): a few hundred chunks of a peaked row. Testing each block against the lower
//! running bound inside the pass had cost as much as the exponentials (mispredicted branches).
//! Double: a maximum pass, then the sums with shifts[b] = m, then a candidate pass.
template <class T>
T softmax_blocks(const T* x, std::size_t n, double* sums, double* shifts, T band, std::vector<std::int32_t>& ids,
                 std::vector<T>& vals, std::vector<float>& chunk_maxima, std::vector<std::int32_t>& chunk_list,
                 std::string_view where) {
    const std::size_t blocks = softmax_block_count(n);
    if constexpr (std::is_same_v<T, float>) {
        constexpr std::size_t G = 2 * W;    // two registers per step: constants and sums stay in registers
        constexpr std::size_t chunk = 64;   // candidates are looked for per chunk (at most 64 lanes)
        constexpr std::size_t chunks = softmax_block / chunk;
        static_assert(softmax_block % chunk == 0 && chunk % G == 0 && chunk <= 64);
        // candidates are tested as x >= lo, lo = m + band lowered by a margin covering the
        // rounding of x - m (a superset of x - m >= band in float)
        float m = std::numeric_limits<float>::lowest(), lo_s = 0;
        vfloat lo{};
        // exp(x - shift) = 2^(x log2(e) - c) for the running maximum m: with FMA one fused
        // multiply-add (its product exact) against c = m log2(e) rounded to float, so that the
        // shift is c / log2(e) (within |m| 6e-8 of m, and used consistently: sums and shifts);
        // without FMA (x - m) log2(e), as the rounding of x log2(e) alone would cost |x| 6e-8
#if defined(__FMA__)
        constexpr bool fused = true;
#else
        constexpr bool fused = false;
#endif
        vfloat mv, cv;
        double shift = 0;
        auto set_max = [&](float nm) { // (c stays finite while m is lowest(): every entry so far -inf)
            m = nm;
            mv = splat(m);
            const float c = std::max(m * log2e, std::numeric_limits<float>::lowest());
            cv = splat(c);
            shift = fused ? double(c) / double(log2e) : double(m);
            const double margin = 1e-6 * (std::abs(double(m)) + std::abs(double(band)) + 1.0);
            lo_s = static_cast<float>(std::max(double(m) + double(band) - margin, double(std::numeric_limits<float>::lowest())));
            lo = splat(lo_s);
        };
        set_max(std::max(max_checked(x, std::min(n, softmax_block), where), m)); // the first block's maximum
        // exp as a reduction and a finish (`exp2_lanes` in two halves): the block's loop issues the
        // reduction of its next two registers alongside the finish of these two
        auto reduce = [&](vfloat v) {
            if constexpr (fused)
                return detail::exp2_reduce(v * log2e - cv);
            else
                return detail::exp2_reduce((v - mv) * log2e);
        };
        float pad[softmax_block];
        chunk_maxima.resize(blocks * chunks * W);
        for (std::size_t b = 0; b < blocks; ++b) {
            const std::size_t s = b * softmax_block, len = std::min(n - s, softmax_block);
            const float* p = x + s;
            if (len < softmax_block) { // the row's last, partial block: -inf padding weighs 0
                std::fill(pad + len, pad + softmax_block, neg_inf<float>);
                std::memcpy(pad, p, len * sizeof(float));
                p = pad;
            }
            float bm = neg_inf<float>;
            auto sweep = [&] { // the block's exponentials (one accumulator), its maximum per chunk
                vfloat acc{}, h = splat(neg_inf<float>);
                auto q0 = reduce(loadv(p)), q1 = reduce(loadv(p + W));
                for (std::size_t c = 0; c < chunks; ++c) {
                    vfloat hc = splat(neg_inf<float>);
                    for (std::size_t i = c * chunk; i < (c + 1) * chunk; i += G) {
                        const auto r0 = q0, r1 = q1;
                        const std::size_t j = i + G < softmax_block ? i + G : i; // the last "next" is unused
                        q0 = reduce(loadv(p + j));
                        q1 = reduce(loadv(p + j + W));
                        const vfloat v0 = loadv(p + i), v1 = loadv(p + i + W);
                        hc = detail::max_or_second(hc, detail::max_or_second(v0, v1));
                        acc += detail::exp2_finish(r0) + detail::exp2_finish(r1);
                    }
                    storev(chunk_maxima.data() + (b * chunks + c) * W, hc);
                    h = detail::max_or_second(h, hc);
                }
                bm = lane_max(h);
                return acc;
            };
            vfloat a = sweep();
            if (bm > m) [[unlikely]] { // a new maximum (rare after the first blocks): redo the block
                if (bm == pos_inf<float>) throw_bad_logit(where);
                set_max(bm);
                a = sweep();
            }
            const double sb = lane_sum(a);
            if (std::isnan(sb)) throw_bad_logit(where); // a NaN entry makes its exponential NaN
            sums[b] = sb;
            shifts[b] = shift;
        }
        // the candidates: the chunks whose maximum reaches the final bound (listed branch-free),
        // then their lanes >= lo, each chunk's lines prefetched a few chunks ahead (the row has
        // left L1, and the listed chunks are scattered)
        const std::size_t total = blocks * chunks;
        chunk_list.resize(total);
        std::size_t listed = 0;
        for (std::size_t c = 0; c < total; ++c) {
            chunk_list[listed] = static_cast<std::int32_t>(c);
            listed += anyv(loadv(chunk_maxima.data() + c * W) >= lo) ? 1 : 0;
        }
        if (listed > total / 2) return m; // a wide distribution: no candidates (see above)
        constexpr std::size_t ahead = 4;
        for (std::size_t k = 0; k < listed; ++k) {
            if (k + ahead < listed) {
                const float* q = x + static_cast<std::size_t>(chunk_list[k + ahead]) * chunk;
                for (std::size_t line = 0; line < chunk; line += 16) __builtin_prefetch(q + line);
            }
            const std::size_t s = static_cast<std::size_t>(chunk_list[k]) * chunk;
            if (s + chunk > n) { // the row's last, partial chunk
                for (std::size_t i = s; i < n; ++i)
                    if (x[i] >= lo_s) ids.push_back(static_cast<std::int32_t>(i)), vals.push_back(x[i]);
                continue;
            }
            std::uint64_t bits = 0;
            for (std::size_t r = 0; r < chunk / W; ++r) bits |= std::uint64_t(lane_bits(loadv(x + s + r * W) >= lo)) << (r * W);
            for (; bits != 0; bits &= bits - 1) {
                const std::size_t i = s + static_cast<std::size_t>(std::countr_zero(bits));
                ids.push_back(static_cast<std::int32_t>(i));
                vals.push_back(x[i]);
            }
        }
        return m;
    } else {
        T m = max_checked(x, n, where);
        if (m == neg_inf<T>) m = std::numeric_limits<T>::lowest();
        for (std::size_t b = 0; b < blocks; ++b) {
            const std::size_t s = b * softmax_block, e = std::min(n, s + softmax_block);
            sums[b] = sum_exp(x + s, e - s, m);
            shifts[b] = double(m);
        }
        for (std::size_t i = 0; i < n; ++i)
            if (x[i] - m >= band) ids.push_back(static_cast<std::int32_t>(i)), vals.push_back(x[i]);
        return m;
    }
}

//! Slack (log2 units) of the proposal exponents of `categorical`'s rejection draw: every token
//! whose proposal weight 2^k is nonzero has |y - k| <= 1/2 + proposal_slack, y its exact
//! exponent (`proposal_shift::exact`). The vector computation of y rounds at most twice, by at
//! most 2.5 |y| 2^-24 <= 2e-5 for the |y| <= 127 of nonzero weights; 2^-14 = 6.1e-5 covers that.
inline constexpr double proposal_slack = 0x1p-14;

//! 2^round(y) lane by lane, +0 for y below -126.5 (and -inf); requires y <= 127.5 (NaN gives
//! +0: callers test NaN apart). The magic number 1.5 * 2^23 + 127 rounds y to an integer n in
//! the low mantissa bits of y + magic, shifted into the exponent field of 2^n (n = -127 gives
//! +0): three vector operations, no polynomial.
inline vfloat pow2_round(vfloat y) noexcept {
    constexpr float magic = 12582912.0f + 127.0f; // 1.5 * 2^23 + 127
    const vfloat t = detail::max_or_second(splat(-127.0f), y) + magic;
    return std::bit_cast<vfloat>(std::bit_cast<vint>(t) << 23);
}

//! Lanes where a or b is NaN (one unordered comparison on x86).
inline vint unordered(vfloat a, vfloat b) noexcept {
#if defined(__AVX__)
    return std::bit_cast<vint>(_mm256_cmp_ps(std::bit_cast<__m256>(a), std::bit_cast<__m256>(b), _CMP_UNORD_Q));
#elif defined(__SSE2__)
    return std::bit_cast<vint>(_mm_cmpunord_ps(std::bit_cast<__m128>(a), std::bit_cast<__m128>(b)));
#else
    return (a != a) | (b != b);
#endif
}

//! The shift of one block's proposal exponents, from m, the running maximum of the logits (-inf,
//! every entry so far masked, is taken as the lowest finite value). A logit x weighs 2^(x log2(e))
//! (float: log2(e) rounded to float, a temperature within 1.3e-8 of 1), counted relative to
//! 2^shift with shift ~ m log2(e): exponent y = x log2(e) - shift. Float rows compute y as
//! x log2(e) - c, c = m log2(e) rounded to float, in one fused multiply-add (FMA builds), or as
//! (x - m) log2(e) (others: the rounding of x log2(e) alone would cost |x| 6e-8); `shift` is c,
//! or m log2(e), in double, so that `exact(x)` differs from the vector y by at most 2.5 |y| 2^-24.
//! Double rows compute y = (x - m) log2(e) in double.
template <class T>
struct proposal_shift {
    T m;          //!< the running maximum behind the shift (logits)
    double shift; //!< m log2(e) as used, log2 units
    vfloat mv{}, cv{}; //!< m (without FMA) or c (with FMA) in every lane
    explicit proposal_shift(T max) noexcept : m(std::max(max, std::numeric_limits<T>::lowest())) {
        if constexpr (std::is_same_v<T, float>) {
#if defined(__FMA__)
            const float c = std::max(m * log2e, std::numeric_limits<float>::lowest());
            shift = double(c);
            cv = splat(c);
#else
            shift = double(m) * double(log2e);
            mv = splat(m);
#endif
        } else {
            shift = m * log2e_double;
        }
    }
    static constexpr double log2e_double = 1.4426950408889634; //!< log2(e) for double rows
    //! The exponents y of a register of logits (float rows).
    vfloat exponent(vfloat x) const noexcept {
#if defined(__FMA__)
        return x * log2e - cv;
#else
        return (x - mv) * log2e;
#endif
    }
    //! The exponent of x in exact arithmetic (to double rounding): the acceptance test's reference.
    double exact(T x) const noexcept {
        if constexpr (std::is_same_v<T, float>)
            return double(x) * double(log2e) - shift;
        else
            return (x - m) * log2e_double;
    }
    //! The proposal weight of one logit of a double row: 2^round(y), 0 below -1022.5.
    double weight(double x) const noexcept {
        const double y = exact(x);
        return y < -1022.5 ? 0.0 : std::ldexp(1.0, static_cast<int>(std::nearbyint(y)));
    }
};

//! Proposal weights of one block x[0..n), n <= softmax_block, under the shift `sh`: their vector
//! sum (float lanes) is returned, each weight is written to out[i] when `out` is given; h takes
//! the block's maximum and `nan` the lanes that met a NaN. The last, partial block is padded with
//! -inf (weight 0) to whole pairs of registers. `proposal_blocks` and the draw's rescan of one
//! block both use this, so that they see the same weights.
inline vfloat proposal_block(const float* x, std::size_t n, const proposal_shift<float>& sh, float* out, vfloat& h,
                             vint& nan) noexcept {
    constexpr std::size_t G = 2 * W;
    const std::size_t end = (n + G - 1) / G * G; // whole pairs of registers
    float pad[softmax_block];
    if (n < end) {
        std::fill(pad + n, pad + end, neg_inf<float>);
        std::memcpy(pad, x, n * sizeof(float));
        x = pad;
    }
    vfloat acc{};
    for (std::size_t i = 0; i < end; i += G) {
        const vfloat v0 = loadv(x + i), v1 = loadv(x + i + W);
        h = detail::max_or_second(h, detail::max_or_second(v0, v1));
        nan |= unordered(v0, v1);
        const vfloat q0 = pow2_round(sh.exponent(v0)), q1 = pow2_round(sh.exponent(v1));
        if (out != nullptr && i < n) {
            float q[G];
            storev(q, q0);
            storev(q + W, q1);
            std::memcpy(out + i, q, std::min(G, n - i) * sizeof(float));
        }
        acc += q0 + q1;
    }
    return acc;
}

//! One read of x[0..n) for `categorical`'s rejection draw: for each block b of `softmax_block`
//! logits writes sums[b], the sum of its proposal weights 2^round(y) (`proposal_shift`,
//! `pow2_round`), and maxima[b], the running maximum behind its shift (so that
//! proposal_shift<T>(maxima[b]) rebuilds it). Float: a block takes its maximum alongside its
//! weights and is recomputed (from L1) when that maximum exceeds the running one (which starts at
//! the first block's: rare), so every exponent is <= about 0. Double: a maximum pass, then one shift.
//! Throws (`throw_bad_logit(where)`) when an entry is NaN or +inf.
template <class T>
void proposal_blocks(const T* x, std::size_t n, double* sums, double* maxima, std::string_view where) {
    const std::size_t blocks = softmax_block_count(n);
    if constexpr (std::is_same_v<T, float>) {
        float m = max_checked(x, std::min(n, softmax_block), where); // the first block's maximum
        proposal_shift<float> sh(m);
        for (std::size_t b = 0; b < blocks; ++b) {
            const std::size_t s = b * softmax_block, len = std::min(n - s, softmax_block);
            vfloat h = splat(neg_inf<float>);
            vint nan{};
            vfloat acc = proposal_block(x + s, len, sh, nullptr, h, nan);
            if (anyv(nan)) throw_bad_logit(where);
            const float bm = lane_max(h);
            if (bm > m) { // a new maximum: the block again, under its shift
                if (bm == pos_inf<float>) throw_bad_logit(where);
                m = bm;
                sh = proposal_shift<float>(m);
                acc = proposal_block(x + s, len, sh, nullptr, h, nan);
            }
            sums[b] = lane_sum(acc);
            maxima[b] = double(m);
        }
    } else {
        const proposal_shift<T> sh(max_checked(x, n, where));
        for (std::size_t b = 0; b < blocks; ++b) {
            const std::size_t s = b * softmax_block, e = std::min(n, s + softmax_block);
            double sb = 0;
            for (std::size_t i = s; i < e; ++i) sb += sh.weight(x[i]);
            sums[b] = sb;
            maxima[b] = double(sh.m);
        }
    }
}

//! Smallest key kappa among keys[0..n) such that the total weight of keys <= kappa reaches
//! `target` (weights >= 0); the largest key when the total stays below `target` (rounding).
//! Histogram refinement: each pass spreads the band's keys over 64 equal-width buckets between
//! its minimum and maximum, accumulates their weights, keeps only the bucket where the cumulative
//! weight crosses `target`; a band of at most 64 entries is sorted and walked. O(n) expected,
//! never a sort of a large band, except when the band's keys lie a subnormal distance apart or
//! span more than the double range (no bucket width then): the band is sorted. Reorders `keys` and `w`; `bucket` is scratch (n bytes).
//! Each pass: a min / max scan and the bucket of every key (vectorisable loops), then the
//! weights added into four interleaved histograms (no chain of adds through one memory slot when
//! consecutive keys share a bucket) and a branch-free compaction of the crossing bucket.
template <class K, class Wt>
K weighted_key_threshold(std::vector<K>& keys, std::vector<Wt>& w, double target, std::vector<std::uint8_t>& bucket) {
    constexpr std::size_t buckets = 64;
    std::size_t n = keys.size();
    if (n == 0) return K{};
    double base = 0; // weight of the keys known to lie below the band
    bucket.resize(n);
    while (n > 64) {
        K lo = keys[0], hi = keys[0];
        for (std::size_t i = 1; i < n; ++i) lo = std::min(lo, keys[i]), hi = std::max(hi, keys[i]);
        if (!(lo < hi)) return lo; // all keys equal: the threshold is that key
        const double scale = double(buckets) / (double(hi) - double(lo));
        // keys a subnormal distance apart (scale = inf: every key lands in the last bucket, which
        // never shrinks) or spanning more than the double range (scale = 0): sort what is left
        if (!(scale > 0 && scale < std::numeric_limits<double>::infinity())) break;
        for (std::size_t i = 0; i < n; ++i) { // (k - lo) * scale in [0, 64]: the last bucket takes hi
            const double t = (double(keys[i]) - double(lo)) * scale;
            const double last = double(buckets - 1);
            bucket[i] = static_cast<std::uint8_t>(static_cast<std::int32_t>(t < last ? t : last));
        }
        double part[4][buckets] = {};
        for (std::size_t i = 0; i < n; ++i) part[i & 3][bucket[i]] += double(w[i]);
        double hist[buckets];
        for (std::size_t k = 0; k < buckets; ++k) hist[k] = (part[0][k] + part[1][k]) + (part[2][k] + part[3][k]);
        std::size_t b = 0;
        double below = 0;
        while (b + 1 < buckets && base + below + hist[b] < target) below += hist[b++];
        base += below;
        std::size_t m = 0; // branch-free in-place compaction of bucket b (m <= i)
        for (std::size_t i = 0; i < n; ++i) {
            const K k = keys[i];
            const Wt wi = w[i];
            const bool in = bucket[i] == b;
            keys[m] = k;
            w[m] = wi;
            m += in;
        }
        n = m; // >= 1: the crossing bucket is non-empty, or it is the last one, which holds hi
    }
    std::vector<std::size_t> order(n);
    for (std::size_t i = 0; i < n; ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) { return keys[x] < keys[y]; });
    double cum = base;
    for (std::size_t i = 0; i < n; ++i) {
        cum += double(w[order[i]]);
        if (cum >= target) return keys[order[i]];
    }
    return keys[order[n - 1]];
}

} // namespace selfreplay::sampling_detail
