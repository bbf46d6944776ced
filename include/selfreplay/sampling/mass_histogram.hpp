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
#include <limits>
#include <span>
#include <vector>

#include "selfreplay/sampling/context.hpp"
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

//! Appends to ids / vals (index order) the finite tokens of x[0..n) whose float key
//! `mass_key<Typical>` around `centre` is <= bound, on path `path`.
template <bool Typical>
void collect_key_at_most(isa path, const float* x, std::size_t n, float centre, float bound, std::vector<std::int32_t>& ids,
                         std::vector<float>& vals) {
    detail::dispatch(path, [&](auto tag) { sampling_collect_key_at_most<Typical>(tag, x, n, centre, bound, ids, vals); });
}

//! Over the finite values of vals[0..c), by float key k (`mass_key<Typical>` around `centre`):
//! returns the mass sum exp(v - m) of those with k < a and appends to `band` the positions of
//! those with a <= k <= b, on path `path`.
template <bool Typical>
double split_band(isa path, const float* vals, std::size_t c, float m, float centre, float a, float b,
                  std::vector<std::int32_t>& band) {
    return detail::dispatch(path, [&](auto tag) { return sampling_split_band<Typical>(tag, vals, c, m, centre, a, b, band); });
}

//! Keeps, in place and in order, the entries k of ids / vals with vals[k] >= tau, on path
//! `path`, and shrinks both vectors to them.
inline void compact_at_least(isa path, std::vector<std::int32_t>& ids, std::vector<float>& vals, float tau) {
    const std::size_t k =
        detail::dispatch(path, [&](auto tag) { return sampling_compact_at_least(tag, ids.data(), vals.data(), vals.size(), tau); });
    ids.resize(k);
    vals.resize(k);
}

inline constexpr std::size_t bracket_sample = 4096; //!< tokens sampled by `sampled_bracket` (at most)
inline constexpr std::size_t bracket_buckets = 512; //!< buckets of its sample's score histogram

//! A bracket [lo, hi] of scores that likely holds a mass threshold, estimated from a sample of the
//! row (`sampled_bracket`); `ok` is false when the sample gives none.
struct score_bracket {
    double lo = 0, hi = 0; //!< the score bounds, lo < hi
    bool ok = false;       //!< a bracket was found
};

//! Estimates, from s <= 4096 tokens of x[0..n) at evenly spaced positions (floor(j n / s)), a
//! bracket of the threshold kappa of a mass prefix: the smallest score kappa such that the tokens
//! scoring <= kappa hold mass >= target (masses exp(x - m), total z). `score(v)` is the exact
//! score of a finite logit v. The sample's masses are spread over `bracket_buckets` equal buckets
//! of score; the kept mass K(u) at each bucket edge u is estimated three ways, (n / s) times the
//! sampled mass below u, z less (n / s) times the sampled mass above u, and z times the sampled
//! fraction below u, each with its standard deviation sigma from the squared sampled masses, and
//! the estimate with the smallest sigma is taken (top-p: the dropped side, many small masses;
//! typical-p, whose dropped side holds the most probable tokens: often the kept side). lo is the
//! last edge with K + 4 sigma + z / 1000 < target, hi the first edge with
//! K - 4 sigma - z / 1000 >= target. Nothing here decides a kept set: the caller verifies the
//! bracket on the whole row, so a wrong estimate costs time (the histogram path), never
//! exactness. Stratified when `heavy` lists the values of every token of the row with x >= cut
//! (the most probable ones, whose masses would dominate the sampling error): those enter exactly
//! and the sample stands for the others alone (more than `bracket_sample` of them: no bracket).
//! Uses ctx.weights and ctx.keys as scratch.
template <class Score>
score_bracket sampled_bracket(isa path, const float* x, std::size_t n, float m, double z, double target,
                              sampling_context<float>& ctx, Score&& score, std::span<const float> heavy = {},
                              float cut = pos_inf<float>) {
    score_bracket out;
    const std::size_t s = std::min(bracket_sample, n / 8);
    if (s < 64 || heavy.size() > bracket_sample) return out; // (heavy masses are scalar exponentials)
    ctx.weights.resize(s);
    ctx.keys.resize(s);
    for (std::size_t j = 0, pos = 0, rem = 0; j < s; ++j) { // pos = floor(j n / s), without a division
        ctx.weights[j] = x[pos];
        pos += n / s, rem += n % s;
        if (rem >= s) ++pos, rem -= s;
    }
    double smin = std::numeric_limits<double>::infinity(), smax = -smin;
    for (std::size_t j = 0; j < s; ++j) { // score +inf: no mass, or counted exactly (heavy)
        const float v = ctx.weights[j];
        const double k = v > neg_inf<float> && v < cut ? score(v) : std::numeric_limits<double>::infinity();
        ctx.keys[j] = k;
        if (k < std::numeric_limits<double>::infinity()) smin = std::min(smin, k), smax = std::max(smax, k);
    }
    if (!(smin < smax) || !(smax - smin < std::numeric_limits<double>::max())) return out;
    exp_shifted(path, ctx.weights.data(), s, m, ctx.weights.data());
    constexpr std::size_t H = bracket_buckets;
    std::array<double, H> mass{}, square{};
    const double scale = double(H) / (smax - smin);
    if (!(scale < std::numeric_limits<double>::infinity())) return out;
    const double f = double(n) / double(s), slack = 1e-3 * z;
    const auto bucket = [&](double k) {
        return static_cast<std::size_t>(std::clamp((k - smin) * scale, 0.0, double(H - 1)));
    };
    double mtot = 0, qtot = 0;
    for (std::size_t j = 0; j < s; ++j) {
        const double e = double(ctx.weights[j]), k = ctx.keys[j];
        if (!(e > 0) || !(k < std::numeric_limits<double>::infinity())) continue;
        const std::size_t b = bucket(k);
        mass[b] += e, square[b] += e * e;
        mtot += e, qtot += e * e;
    }
    for (const float v : heavy) { // exact: counted once (mass / f, scaled by f below), no variance
        const double e = std::exp(double(v) - double(m)) / f;
        mass[bucket(score(v))] += e;
        mtot += e;
    }
    double cm = 0, cq = 0;
    bool have_lo = false;
    for (std::size_t b = 0; b < H; ++b) {
        cm += mass[b], cq += square[b];
        const double edge = smin + double(b + 1) / scale;
        // three estimates of K(edge): from the kept side, from the dropped side, and z times the
        // sampled kept fraction; the one with the smallest standard deviation is used
        const double r = cm / mtot;
        const double est[3] = {f * cm, z - f * (mtot - cm), z * r};
        const double sd[3] = {f * std::sqrt(cq), f * std::sqrt(std::max(qtot - cq, 0.0)),
                              z / mtot * std::sqrt((1 - r) * (1 - r) * cq + r * r * std::max(qtot - cq, 0.0))};
        const int best = sd[0] <= sd[1] && sd[0] <= sd[2] ? 0 : (sd[1] <= sd[2] ? 1 : 2);
        const double kept = est[best], sigma = sd[best];
        if (kept + 4 * sigma + slack < target) out.lo = edge, have_lo = true;
        if (kept - 4 * sigma - slack >= target) {
            out.hi = edge;
            out.ok = have_lo && out.lo < out.hi;
            return out;
        }
    }
    return out;
}

} // namespace selfreplay::sampling_detail
