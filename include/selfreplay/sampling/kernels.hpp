#pragma once
//! \file
//! Row kernels shared by the processors and the draws (namespace `selfreplay::sampling_detail`,
//! not public API). Written as loops over blocks of `lanes` independent accumulators so that
//! g++ -O3 vectorises them at any instruction-set level (SSE2 by default, AVX2 with
//! -march=native) without -ffast-math.

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "selfreplay/tensor/error.hpp"

namespace selfreplay::sampling_detail {

inline constexpr std::size_t lanes = 16; //!< accumulators per block

template <class T>
inline constexpr T neg_inf = -std::numeric_limits<T>::infinity();
template <class T>
inline constexpr T pos_inf = std::numeric_limits<T>::infinity();

//! exp(d) for d <= 0 (d may be -inf, never NaN), within 2 ulp for float; exactly 0 below the
//! smallest normal float. Cephes `expf` reduction and polynomial, branch-free so loops of it
//! vectorise. For double, std::exp.
template <class T>
inline T exp_nonpositive(T d) noexcept {
    if constexpr (std::is_same_v<T, float>) {
        const float dc = d < -88.0f ? -88.0f : d;
        const float kf = (dc * 1.44269504088896341f + 12582912.0f) - 12582912.0f; // round(dc / ln 2)
        const float r = (dc - kf * 0.693359375f) + kf * 2.12194440e-4f;           // dc - kf ln 2
        const float z = r * r;
        float p = 1.9875691500e-4f;
        p = p * r + 1.3981999507e-3f;
        p = p * r + 8.3334519073e-3f;
        p = p * r + 4.1665795894e-2f;
        p = p * r + 1.6666665459e-1f;
        p = p * r + 5.0000001201e-1f;
        const float er = 1.0f + r + z * p;
        const std::int32_t ki = static_cast<std::int32_t>(kf) + 127; // in [0, 127]
        const float scale = std::bit_cast<float>(static_cast<std::int32_t>(static_cast<std::uint32_t>(ki) << 23));
        return d < -87.33654f ? 0.0f : er * scale;
    } else {
        return std::exp(d);
    }
}

//! Throws the standard error for a NaN or +inf logit found by a pass of `where`.
[[noreturn]] inline void throw_bad_logit(std::string_view where) {
    throw invalid_argument(where, "logits", "must not contain NaN or +inf");
}

//! Maximum of x[0..n) (-inf when empty or all -inf). Throws when some entry is NaN or +inf.
template <class T>
T max_checked(const T* x, std::size_t n, std::string_view where) {
    T m[lanes], bad[lanes];
    for (std::size_t j = 0; j < lanes; ++j) m[j] = neg_inf<T>, bad[j] = 0;
    std::size_t i = 0;
    for (; i + lanes <= n; i += lanes)
        for (std::size_t j = 0; j < lanes; ++j) {
            const T v = x[i + j];
            m[j] = v > m[j] ? v : m[j];
            bad[j] += v < pos_inf<T> ? T(0) : T(1);
        }
    T mm = neg_inf<T>, b = 0;
    for (std::size_t j = 0; j < lanes; ++j) mm = m[j] > mm ? m[j] : mm, b += bad[j];
    for (; i < n; ++i) {
        mm = x[i] > mm ? x[i] : mm;
        b += x[i] < pos_inf<T> ? T(0) : T(1);
    }
    if (b != 0) throw_bad_logit(where);
    return mm;
}

//! Sum of exp(x[i] - m) over x[0..n), m >= every x[i] (float accumulation in lanes).
template <class T>
double sum_exp(const T* x, std::size_t n, T m) {
    T acc[lanes] = {};
    std::size_t i = 0;
    for (; i + lanes <= n; i += lanes)
        for (std::size_t j = 0; j < lanes; ++j) acc[j] += exp_nonpositive<T>(x[i + j] - m);
    double s = 0;
    for (std::size_t j = 0; j < lanes; ++j) s += double(acc[j]);
    for (; i < n; ++i) s += double(exp_nonpositive<T>(x[i] - m));
    return s;
}

//! Writes -inf over every x[i] < tau and appends the indices (plus `offset`) of the others to
//! `kept`. Blocks with nothing kept cost one vector pass.
template <class T>
void mask_below(T* x, std::size_t n, T tau, std::vector<std::int32_t>& kept) {
    std::size_t i = 0;
    for (; i + lanes <= n; i += lanes) {
        T cnt[lanes];
        for (std::size_t j = 0; j < lanes; ++j) {
            const T v = x[i + j];
            const bool keep = v >= tau;
            cnt[j] = keep ? T(1) : T(0);
            x[i + j] = keep ? v : neg_inf<T>;
        }
        T c = 0;
        for (std::size_t j = 0; j < lanes; ++j) c += cnt[j];
        if (c != 0)
            for (std::size_t j = 0; j < lanes; ++j)
                if (x[i + j] >= tau) kept.push_back(static_cast<std::int32_t>(i + j));
    }
    for (; i < n; ++i) {
        if (x[i] >= tau)
            kept.push_back(static_cast<std::int32_t>(i));
        else
            x[i] = neg_inf<T>;
    }
}

//! Appends to `ids` the indices of x[i] >= c (c > -inf) and to `vals` their values.
template <class T>
void collect_at_least(const T* x, std::size_t n, T c, std::vector<std::int32_t>& ids, std::vector<T>& vals) {
    std::size_t i = 0;
    for (; i + lanes <= n; i += lanes) {
        T cnt[lanes];
        for (std::size_t j = 0; j < lanes; ++j) cnt[j] = x[i + j] >= c ? T(1) : T(0);
        T s = 0;
        for (std::size_t j = 0; j < lanes; ++j) s += cnt[j];
        if (s != 0)
            for (std::size_t j = 0; j < lanes; ++j)
                if (x[i + j] >= c) ids.push_back(static_cast<std::int32_t>(i + j)), vals.push_back(x[i + j]);
    }
    for (; i < n; ++i)
        if (x[i] >= c) ids.push_back(static_cast<std::int32_t>(i)), vals.push_back(x[i]);
}

//! Smallest key kappa among keys[0..n) such that the total weight of keys <= kappa reaches
//! `target` (weights >= 0); the largest key when the total stays below `target` (rounding).
//! Refines the key range with 8 thresholds per pass over a shrinking band, and sorts the band
//! once it holds at most 64 entries (or stops shrinking): O(n) expected, never a full sort of a
//! large band unless its keys are (nearly) all equal. Reorders `keys` and `w`.
template <class K, class W>
K weighted_key_threshold(std::vector<K>& keys, std::vector<W>& w, double target) {
    constexpr std::size_t cuts = 8;
    std::size_t n = keys.size();
    double base = 0; // weight of the keys known to lie below the band
    for (int pass = 0; pass < 64; ++pass) {
        if (n > 64) {
            K lo = keys[0], hi = keys[0];
            for (std::size_t i = 1; i < n; ++i) lo = std::min(lo, keys[i]), hi = std::max(hi, keys[i]);
            K t[cuts];
            for (std::size_t j = 0; j < cuts; ++j)
                t[j] = lo + (hi - lo) * static_cast<K>(double(j + 1) / double(cuts + 1));
            double acc[cuts] = {};
            for (std::size_t i = 0; i < n; ++i)
                for (std::size_t j = 0; j < cuts; ++j) acc[j] += keys[i] <= t[j] ? double(w[i]) : 0.0;
            std::size_t j = 0;
            while (j < cuts && base + acc[j] < target) ++j;
            const K below = j == 0 ? std::numeric_limits<K>::lowest() : t[j - 1];
            const bool has_above = j < cuts;
            const K above = has_above ? t[j] : hi;
            std::size_t m = 0;
            for (std::size_t i = 0; i < n; ++i)
                if ((j == 0 || keys[i] > below) && keys[i] <= above) keys[m] = keys[i], w[m] = w[i], ++m;
            if (m < n && m > 0) {
                if (j > 0) base += acc[j - 1];
                n = m;
                continue;
            }
        }
        // sort the band by key and walk it
        std::vector<std::size_t> order(n);
        for (std::size_t i = 0; i < n; ++i) order[i] = i;
        std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return keys[a] < keys[b]; });
        double cum = base;
        for (std::size_t i = 0; i < n; ++i) {
            cum += double(w[order[i]]);
            if (cum >= target) return keys[order[i]];
        }
        return keys[order[n - 1]];
    }
    return *std::max_element(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(n));
}

} // namespace selfreplay::sampling_detail
