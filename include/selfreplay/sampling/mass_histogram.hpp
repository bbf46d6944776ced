#pragma once
//! \file
//! Sorting-free mass thresholds over a whole float row (namespace `selfreplay::sampling_detail`,
//! not public API), for top-p on rows whose nucleus is wide and for typical-p: one pass spreads
//! the softmax mass of the row over `mass_buckets` buckets of a float key (top-p: m - x; typical:
//! |x - c|; 1/8 nat wide), a second pass collects the few tokens of the buckets around the one
//! where the cumulative mass crosses the target, and `weighted_key_threshold` refines over them
//! with exact keys. GCC/Clang vector extensions of W floats (sampling/kernels.hpp).

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "selfreplay/sampling/kernels.hpp"

namespace selfreplay::sampling_detail {

inline constexpr std::size_t mass_buckets = 256;   //!< buckets of the key histogram
inline constexpr float mass_bucket_scale = 8.0f;   //!< buckets per nat of key: bucket = floor(8 key)

//! The bucket of each lane's key k >= 0: floor(8 k), the keys at or beyond 255/8 (and +inf) all
//! in the last bucket. Monotone in k: a larger key never gets a smaller bucket.
inline vint key_bucket(vfloat k) noexcept {
    const vfloat c = detail::min_or_second(splat(float(mass_buckets - 1)), k * mass_bucket_scale);
    return __builtin_convertvector(c, vint);
}

//! Adds exp(x_i - m) (float, `exp_nonpositive_v`) into hist[b] for every token of x[0..n), b the
//! bucket of its float key key(x_i) (a functor on `vfloat`, >= 0); tokens at -inf weigh 0. The
//! masses are added in double, spread over four interleaved tables (no chain of adds through one
//! slot when neighbours share a bucket), in a fixed order: deterministic.
template <class Key>
void key_mass_histogram(const float* x, std::size_t n, float m, const Key& key, std::array<double, mass_buckets>& hist) {
    std::array<std::array<double, mass_buckets>, 4> part{};
    float pad[W];
    for (std::size_t i = 0; i < n; i += W) {
        const float* p = x + i;
        if (i + W > n) {
            std::fill(pad, pad + W, neg_inf<float>);
            std::copy(x + i, x + n, pad);
            p = pad;
        }
        const vfloat v = loadv(p);
        const vfloat e = exp_nonpositive_v(v - m);
        const vint b = key_bucket(key(v));
        for (std::size_t j = 0; j < W; ++j) part[j & 3][static_cast<std::size_t>(b[j])] += double(e[j]);
    }
    for (std::size_t k = 0; k < mass_buckets; ++k) hist[k] = (part[0][k] + part[1][k]) + (part[2][k] + part[3][k]);
}

//! The bucket where the cumulative mass of hist[0..] first reaches `target` (the last non-empty
//! bucket when it never does, by rounding), and in `below` the mass of the buckets before it.
inline std::size_t crossing_bucket(const std::array<double, mass_buckets>& hist, double target, double& below) {
    below = 0;
    std::size_t last = 0;
    for (std::size_t k = 0; k < mass_buckets; ++k) {
        if (hist[k] > 0) last = k;
        if (below + hist[k] >= target) return k;
        below += hist[k];
    }
    below -= hist[last]; // (the buckets after `last` are empty)
    return last;
}

//! Appends to ids / vals (index order) the tokens of x[0..n) whose key bucket lies in [lo, hi]:
//! a vector test per W tokens, `append_lanes` per 4 W.
template <class Key>
void collect_buckets(const float* x, std::size_t n, const Key& key, std::int32_t lo, std::int32_t hi,
                     std::vector<std::int32_t>& ids, std::vector<float>& vals) {
    const vint vlo = vint{} + lo, vhi = vint{} + hi;
    const vfloat ninf = splat(neg_inf<float>);
    float pad[4 * W];
    for (std::size_t i = 0; i < n; i += 4 * W) {
        const float* p = x + i;
        if (i + 4 * W > n) {
            std::fill(pad, pad + 4 * W, neg_inf<float>);
            std::copy(x + i, x + n, pad);
            p = pad;
        }
        std::uint64_t bits = 0;
        for (std::size_t q = 0; q < 4; ++q) {
            const vfloat v = loadv(p + q * W);
            const vint b = key_bucket(key(v));
            bits |= std::uint64_t(lane_bits((b >= vlo) & (b <= vhi) & (v > ninf))) << (q * W);
        }
        append_lanes(bits, i, p, ids, &vals);
    }
}

} // namespace selfreplay::sampling_detail
