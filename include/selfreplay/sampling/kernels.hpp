#pragma once
//! \file
//! Row kernels shared by the processors and the draws (namespace `selfreplay::sampling_detail`,
//! not public API). Float rows run the vector kernels of sampling/detail/kernels.inl, compiled once
//! per ISA path (detail/simd/simd.hpp) and chosen at run time: the results of the comparisons
//! (maxima, masks, candidate lists) are the same on every path; the exponentials differ between
//! paths by rounding (docs/performance.md). Functions that take an `isa path` run that path, so
//! that one public call computes every mass on one path; the others read `active_isa()`. Double
//! rows take the scalar paths.

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

#include "selfreplay/detail/simd/simd.hpp"
#include "selfreplay/error.hpp"
#include "selfreplay/isa.hpp"

namespace selfreplay::sampling_detail {

template <class T>
inline constexpr T neg_inf = -std::numeric_limits<T>::infinity();
template <class T>
inline constexpr T pos_inf = std::numeric_limits<T>::infinity();

//! log2(e) rounded to float: the float kernels compute exp(d) as 2^(d log2(e)).
inline constexpr float log2e = 1.44269504088896341f;

//! exp(d) for one d <= 0 (d may be -inf, never NaN), off the vector kernels: std::exp (float:
//! in double, rounded to float).
template <class T>
inline T exp_nonpositive(T d) noexcept {
    return static_cast<T>(std::exp(static_cast<double>(d)));
}

//! Throws the standard error for a NaN or +inf logit found by a pass of `where`.
[[noreturn]] inline void throw_bad_logit(std::string_view where) {
    throw invalid_argument(where, "logits", "must not contain NaN or +inf");
}

//! Elements per block of `softmax_blocks` and `proposal_blocks` (a multiple of 64).
inline constexpr std::size_t softmax_block = 512;

//! Number of blocks of `softmax_blocks` for a row of n elements.
inline std::size_t softmax_block_count(std::size_t n) noexcept { return (n + softmax_block - 1) / softmax_block; }

inline constexpr std::size_t mass_buckets = 256;  //!< buckets of the mass histograms (sampling/mass_histogram.hpp)
inline constexpr float mass_bucket_scale = 8.0f; //!< buckets per nat of key: bucket = floor(8 key)

//! Slack (log2 units) of the proposal exponents of `categorical`'s rejection draw: every token
//! whose proposal weight 2^k is nonzero has |y - k| <= 1/2 + proposal_slack, y its exact
//! exponent (`proposal_shift::exact`). The vector computation of y rounds at most twice, by at
//! most 2.5 |y| 2^-24 <= 2e-5 for the |y| <= 127 of nonzero weights; 2^-14 = 6.1e-5 covers that.
inline constexpr double proposal_slack = 0x1p-14;

//! The shift of one block's proposal exponents on ISA path `path`, from m, the running maximum of
//! the logits (-inf, every entry so far masked, is taken as the lowest finite value). A logit x
//! weighs 2^(x log2(e)) (float: log2(e) rounded to float, a temperature within 1.3e-8 of 1),
//! counted relative to 2^shift with shift ~ m log2(e): exponent y = x log2(e) - shift. Float rows
//! compute y on the avx2 and avx512 paths as x log2(e) - c, c = m log2(e) rounded to float, in
//! one fused multiply-add, on sse2 as (x - m) log2(e) (the rounding of x log2(e) alone would cost
//! |x| 6e-8); `shift` is c, or m log2(e), in double, so that `exact(x)` differs from the vector y
//! by at most 2.5 |y| 2^-24. Double rows compute y = (x - m) log2(e) in double.
template <class T>
struct proposal_shift {
    T m;          //!< the running maximum behind the shift (logits)
    double shift; //!< m log2(e) as used, log2 units
    float cm = 0; //!< float rows: c (fused paths) or m (sse2), the vector kernels' constant
    proposal_shift(T max, isa path) noexcept : m(std::max(max, std::numeric_limits<T>::lowest())) {
        if constexpr (std::is_same_v<T, float>) {
            if (path != isa::sse2) {
                cm = std::max(m * log2e, std::numeric_limits<float>::lowest());
                shift = double(cm);
            } else {
                cm = m;
                shift = double(m) * double(log2e);
            }
        } else {
            shift = m * log2e_double;
        }
    }
    static constexpr double log2e_double = 1.4426950408889634; //!< log2(e) for double rows
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

//! What `proposal_block` found in one block.
struct proposal_weights {
    double sum; //!< the sum of the block's proposal weights (float lanes, summed in double)
    float max;  //!< the block's maximum (NaN entries skipped)
    bool nan;   //!< some entry is NaN
};

} // namespace selfreplay::sampling_detail

//! The per-path body that detail/simd/foreach_isa.inl includes once per ISA path (internal).
#define SELFREPLAY_SIMD_BODY "selfreplay/sampling/detail/kernels.inl"
#include "selfreplay/detail/simd/foreach_isa.inl"

namespace selfreplay::sampling_detail {

//! Maximum of x[0..n) (-inf when empty or all -inf). Throws when some entry is NaN or +inf.
template <class T>
T max_checked(const T* x, std::size_t n, std::string_view where) {
    if constexpr (std::is_same_v<T, float>) {
        bool bad = false;
        const float m = detail::dispatch(active_isa(), [&](auto tag) { return sampling_max(tag, x, n, bad); });
        if (bad) throw_bad_logit(where);
        return m;
    } else {
        T mm = neg_inf<T>;
        bool bad = false;
        for (std::size_t i = 0; i < n; ++i) {
            mm = x[i] > mm ? x[i] : mm;
            bad |= !(x[i] < pos_inf<T>);
        }
        if (bad) throw_bad_logit(where);
        return mm;
    }
}

//! x[i] *= inv for x[0..n) in place (a temperature's 1 / t). `bad` is set when some x[i] was NaN
//! or +inf, `overflow` when a finite x[i] gave a product that is not finite (-inf stays -inf).
template <class T>
void scale_checked(T* x, std::size_t n, T inv, bool& bad, bool& overflow) noexcept {
    if constexpr (std::is_same_v<T, float>) {
        detail::dispatch(active_isa(), [&](auto tag) { sampling_scale(tag, x, n, inv, bad, overflow); });
    } else {
        bad = overflow = false;
        for (std::size_t i = 0; i < n; ++i) {
            const T v = x[i], y = v * inv;
            bad |= !(v < pos_inf<T>);
            overflow |= (v < pos_inf<T>) & (v > neg_inf<T>) & !((y < pos_inf<T>) & (y > neg_inf<T>));
            x[i] = y;
        }
    }
}

//! out[c] = the maximum of chunk c of x[0..n) (chunks of `chunk` elements, a multiple of 64).
//! Throws when some entry is NaN or +inf.
template <class T>
void chunk_maxima_checked(const T* x, std::size_t n, std::size_t chunk, double* out, std::string_view where) {
    if constexpr (std::is_same_v<T, float>) {
        bool bad = false;
        detail::dispatch(active_isa(), [&](auto tag) { sampling_chunk_maxima(tag, x, n, chunk, out, bad); });
        if (bad) throw_bad_logit(where);
    } else {
        for (std::size_t s = 0, c = 0; s < n; s += chunk, ++c) out[c] = double(max_checked(x + s, std::min(n - s, chunk), where));
    }
}

//! Index of the first x[i] == v in x[0..n) (n when there is none).
template <class T>
std::size_t first_equal(const T* x, std::size_t n, T v) noexcept {
    if constexpr (std::is_same_v<T, float>) {
        return detail::dispatch(active_isa(), [&](auto tag) { return sampling_first_equal(tag, x, n, v); });
    } else {
        std::size_t i = 0;
        while (i < n && !(x[i] == v)) ++i;
        return i;
    }
}

//! Sum of exp(x[i] - m) over x[0..n), m >= every x[i] (float: on path `path`, in lanes).
template <class T>
double sum_exp(isa path, const T* x, std::size_t n, T m) {
    if constexpr (std::is_same_v<T, float>) {
        return detail::dispatch(path, [&](auto tag) { return sampling_sum_exp(tag, x, n, m); });
    } else {
        double s = 0;
        for (std::size_t i = 0; i < n; ++i) s += exp_nonpositive<T>(x[i] - m);
        return s;
    }
}

//! out[i] = exp(v[i] - m) for i < n (m >= every v[i]), as float (float rows: on path `path`).
template <class T>
void exp_shifted(isa path, const T* v, std::size_t n, T m, float* out) {
    if constexpr (std::is_same_v<T, float>) {
        detail::dispatch(path, [&](auto tag) { sampling_exp_shifted(tag, v, n, m, out); });
    } else {
        for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(exp_nonpositive<T>(v[i] - m));
    }
}

//! out[k] = x[ids[k]] for k < n, on path `path`.
inline void gather_at(isa path, const float* x, const std::int32_t* ids, std::size_t n, float* out) noexcept {
    detail::dispatch(path, [&](auto tag) { sampling_gather(tag, x, ids, n, out); });
}

//! x[ids[k]] *= inv for k < n (distinct ids): `bad` is set when some such entry was NaN or
//! +inf, `overflow` when a finite one gave a product that is not finite (-inf stays -inf).
inline void scale_at_checked(float* x, const std::int32_t* ids, std::size_t n, float inv, bool& bad, bool& overflow) noexcept {
    detail::dispatch(active_isa(), [&](auto tag) { sampling_scale_at(tag, x, ids, n, inv, bad, overflow); });
}

//! out[c] = the sum of chunk c of w[0..n) (chunks of `chunk` floats, a multiple of 16), on path
//! `path`: float lanes per chunk, summed in double.
inline void chunk_sums(isa path, const float* w, std::size_t n, std::size_t chunk, double* out) noexcept {
    detail::dispatch(path, [&](auto tag) { sampling_chunk_sums(tag, w, n, chunk, out); });
}

//! Writes -inf over every x[i] < tau and appends the indices of the others to `kept`.
template <class T>
void mask_below(T* x, std::size_t n, T tau, std::vector<std::int32_t>& kept) {
    if constexpr (std::is_same_v<T, float>) {
        detail::dispatch(active_isa(), [&](auto tag) { sampling_mask_below(tag, x, n, tau, kept); });
    } else {
        for (std::size_t i = 0; i < n; ++i) {
            if (x[i] >= tau)
                kept.push_back(static_cast<std::int32_t>(i));
            else
                x[i] = neg_inf<T>;
        }
    }
}

//! Appends to `ids` the indices of x[i] >= c and to `vals` their values (index order).
template <class T>
void collect_at_least(const T* x, std::size_t n, T c, std::vector<std::int32_t>& ids, std::vector<T>& vals) {
    if constexpr (std::is_same_v<T, float>) {
        detail::dispatch(active_isa(), [&](auto tag) { sampling_collect_at_least(tag, x, n, c, ids, vals); });
    } else {
        for (std::size_t i = 0; i < n; ++i)
            if (x[i] >= c) ids.push_back(static_cast<std::int32_t>(i)), vals.push_back(x[i]);
    }
}

//! One read of x[0..n) for top-p, on path `path`: returns m, the maximum
//! (std::numeric_limits<T>::lowest() when every entry is -inf), and for each block b of
//! `softmax_block` elements writes sums[b] = the sum of exp(x_i - shifts[b]) over the block, where
//! shifts[b] is a running maximum <= m (float: within its |value| 6e-8, see below), so that
//! sums[b] * exp(shifts[b] - m) is the block's share of Z = sum_i exp(x_i - m); every sum is 0
//! when every entry is -inf. Appends to ids / vals (in index order) a superset of the entries with
//! x_i - m >= band (float arithmetic): those with x_i >= m + band, less a margin, unless they lie
//! in more than half of the row's chunks of 64 (float rows; a wide distribution, where that list
//! would cost more than it saves): then nothing is appended. Requires band <= 0.
//! Throws (`throw_bad_logit(where)`) when an entry is NaN or +inf.
//! Float: the shift is the running maximum (from the first block's), one value for all lanes, so
//! each entry costs one exponential and the row is read once; on the fused paths the exponent
//! x log2(e) - c is one fused multiply-add with c = (running maximum) log2(e) rounded to float,
//! and the shift reported is c / log2(e). A block (the last, partial one padded with -inf) takes
//! its maximum alongside its exponentials, per chunk of 64 (lane maxima kept in `chunk_maxima`),
//! and is recomputed (from L1) when that maximum exceeds the running one (rare after the first
//! blocks). After the pass, only the chunks whose maximum reaches the final bound m + band are
//! rescanned (listed in `chunk_list`, prefetched ahead; one 64-bit lane mask per chunk, walked
//! bit by bit): a few hundred chunks of a peaked row.
//! Double: a maximum pass, then the sums with shifts[b] = m, then a candidate pass.
template <class T>
T softmax_blocks(isa path, const T* x, std::size_t n, double* sums, double* shifts, T band, std::vector<std::int32_t>& ids,
                 std::vector<T>& vals, std::vector<float>& chunk_maxima, std::vector<std::int32_t>& chunk_list,
                 std::string_view where) {
    const std::size_t blocks = softmax_block_count(n);
    if constexpr (std::is_same_v<T, float>) {
        float m = 0;
        const bool ok = detail::dispatch(path, [&](auto tag) {
            return sampling_softmax_blocks(tag, x, n, sums, shifts, band, ids, vals, chunk_maxima, chunk_list, m);
        });
        if (!ok) throw_bad_logit(where);
        return m;
    } else {
        T m = max_checked(x, n, where);
        if (m == neg_inf<T>) m = std::numeric_limits<T>::lowest();
        for (std::size_t b = 0; b < blocks; ++b) {
            const std::size_t s = b * softmax_block, e = std::min(n, s + softmax_block);
            sums[b] = sum_exp(path, x + s, e - s, m);
            shifts[b] = double(m);
        }
        for (std::size_t i = 0; i < n; ++i)
            if (x[i] - m >= band) ids.push_back(static_cast<std::int32_t>(i)), vals.push_back(x[i]);
        return m;
    }
}

//! Proposal weights 2^round(y) of one float block x[0..n), n <= softmax_block, under the shift
//! `sh` (built for `path`), on path `path`: their sum, the block's maximum and whether it met a
//! NaN; each weight is written to out[i] when `out` is given. `proposal_blocks` and the draw's
//! rescan of one block both use this, so that they see the same weights.
inline proposal_weights proposal_block(isa path, const float* x, std::size_t n, const proposal_shift<float>& sh, float* out) {
    return detail::dispatch(path, [&](auto tag) { return sampling_proposal_block(tag, x, n, sh, out); });
}

//! One read of x[0..n) for `categorical`'s rejection draw, on path `path`: for each block b of
//! `softmax_block` logits writes sums[b], the sum of its proposal weights 2^round(y)
//! (`proposal_shift`), and maxima[b], the running maximum behind its shift (so that
//! proposal_shift<T>(maxima[b], path) rebuilds it). Float: a block takes its maximum alongside
//! its weights and is recomputed (from L1) when that maximum exceeds the running one (which starts
//! at the first block's: rare), so every exponent is <= about 0. Double: a maximum pass, then one
//! shift. Throws (`throw_bad_logit(where)`) when an entry is NaN or +inf.
template <class T>
void proposal_blocks(isa path, const T* x, std::size_t n, double* sums, double* maxima, std::string_view where) {
    const std::size_t blocks = softmax_block_count(n);
    if constexpr (std::is_same_v<T, float>) {
        const bool ok = detail::dispatch(path, [&](auto tag) { return sampling_proposal_blocks(tag, x, n, sums, maxima); });
        if (!ok) throw_bad_logit(where);
    } else {
        const proposal_shift<T> sh(max_checked(x, n, where), path);
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
