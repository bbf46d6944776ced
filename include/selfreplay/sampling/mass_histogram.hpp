#pragma once
//! \file
//! Sorting-free mass thresholds over a whole float row (namespace `selfreplay::sampling_detail`,
//! not public API), for top-p on rows whose nucleus is wide and for typical-p: one pass spreads
//! the softmax mass of the row over `mass_buckets` buckets of a float key (top-p: m - x; typical:
//! |x - c|; 1/8 nat wide), a second pass collects the few tokens of the buckets around the one
//! where the cumulative mass crosses the target, and `weighted_key_threshold` refines over them
//! with exact keys. The passes are the vector kernels of sampling/detail/kernels.inl, on the ISA
//! path the caller passes.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "selfreplay/sampling/kernels.hpp"

namespace selfreplay::sampling_detail {

//! Adds exp(x_i - m) into hist[b] for every token of x[0..n), b the bucket floor(8 k) (at most
//! 255) of its float key k: m - x_i (top-p, Typical = false) or |x_i - centre| (Typical); tokens
//! at -inf weigh 0. Masses added in double, in a fixed order: deterministic for a path.
template <bool Typical>
void key_mass_histogram(isa path, const float* x, std::size_t n, float m, float centre, std::array<double, mass_buckets>& hist) {
    detail::dispatch(path, [&](auto tag) { sampling_mass_histogram<Typical>(tag, x, n, m, centre, hist.data()); });
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

//! Appends to ids / vals (index order) the finite tokens of x[0..n) whose key bucket (as in
//! `key_mass_histogram`) lies in [lo, hi].
template <bool Typical>
void collect_buckets(isa path, const float* x, std::size_t n, float centre, std::int32_t lo, std::int32_t hi,
                     std::vector<std::int32_t>& ids, std::vector<float>& vals) {
    detail::dispatch(path, [&](auto tag) { sampling_collect_buckets<Typical>(tag, x, n, centre, lo, hi, ids, vals); });
}

} // namespace selfreplay::sampling_detail
