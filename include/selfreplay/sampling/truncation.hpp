#pragma once
//! \file
//! Truncation processors: `top_k`, `top_p`, `min_p`, `typical_p`. Each keeps a set of tokens and
//! sets every other logit to -inf, and records the kept set as the context's support (with
//! `ctx.lazy_masking`, as in `sample_token`, the support alone says which tokens are masked).
//!
//! Tie rule (all four): the kept set is defined by a threshold on a per-token score, and every
//! token tied with the threshold is kept. So top-k can keep more than k tokens when the k-th
//! largest logit is tied, exactly like Hugging Face's `TopKLogitsWarper` (`scores < kth`), and
//! no result depends on the order of tokens in the vocabulary.
//!
//! None of them sorts the vocabulary: top-k selects over per-chunk maxima then over the few
//! candidates they admit; top-p collects the tokens within 8 of the maximum with its one softmax
//! pass (`softmax_blocks`: per-chunk maxima point to them), takes the narrowest of three bands
//! holding mass p as candidates and refines a weighted threshold over them; when no band holds p
//! (a wide nucleus), it and typical-p verify a bracket of the threshold estimated from a sample of
//! the row (one collecting pass, then a refinement over the bracket's tokens alone), else take
//! the crossing bucket of a mass histogram (sampling/mass_histogram.hpp) and refine over that
//! bucket's tokens; min-p is a single threshold.
//! Boundary decisions compare masses computed in float (relative error about 1e-6 of the
//! normaliser): when a cumulative mass is within that of p * Z, either side may be chosen.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>

#include "selfreplay/sampling/context.hpp"
#include "selfreplay/sampling/kernels.hpp"
#include "selfreplay/sampling/mass_histogram.hpp"

namespace selfreplay {

namespace sampling_detail {

//! Fills ctx.ids / ctx.values with the finite entries of the current support (or of the whole
//! row when there is none). Throws for a NaN or +inf entry, or if none is finite.
template <class T>
void gather_finite(std::span<T> row, sampling_context<T>& ctx, std::string_view where) {
    ctx.ids.clear();
    ctx.values.clear();
    if (ctx.has_support) {
        for (std::int32_t id : ctx.support) {
            const T v = row[static_cast<std::size_t>(id)];
            if (!(v < pos_inf<T>)) throw_bad_logit(where);
            if (v > neg_inf<T>) ctx.ids.push_back(id), ctx.values.push_back(v);
        }
    } else {
        max_checked(row.data(), row.size(), where);
        collect_at_least(row.data(), row.size(), std::numeric_limits<T>::lowest(), ctx.ids, ctx.values);
    }
    require(!ctx.ids.empty(), where, "logits", "has every entry masked (-inf)");
}

//! Writes every candidate ctx.ids[k] back as ctx.values[k] when keep(k), else as -inf, and
//! records the kept ids (in candidate order) as the support. Branch-free: the kept fraction can
//! be anything, and a branch on it would mispredict about every other candidate near one half.
template <class T, class Keep>
void write_kept(std::span<T> row, sampling_context<T>& ctx, Keep&& keep) {
    ctx.support.resize(ctx.ids.size());
    std::size_t kept = 0;
    for (std::size_t k = 0; k < ctx.ids.size(); ++k) {
        const bool in = keep(k);
        row[static_cast<std::size_t>(ctx.ids[k])] = in ? ctx.values[k] : neg_inf<T>;
        ctx.support[kept] = ctx.ids[k];
        kept += in;
    }
    ctx.support.resize(kept);
    ctx.has_support = true;
}

//! Keeps the tokens with logit >= tau: in the support when there is one (ctx.ids / ctx.values
//! must hold its finite entries), else over the whole row (with `ctx.lazy_masking` the row is
//! only read); records the new support.
template <class T>
void keep_at_least(std::span<T> row, sampling_context<T>& ctx, T tau) {
    if (ctx.has_support) {
        write_kept(row, ctx, [&](std::size_t k) { return ctx.values[k] >= tau; });
        return;
    }
    ctx.support.clear();
    if (ctx.lazy_masking) {
        ctx.values.clear();
        collect_at_least(row.data(), row.size(), tau, ctx.support, ctx.values);
    } else {
        mask_below(row.data(), row.size(), tau, ctx.support);
    }
    ctx.has_support = true;
}

//! Keeps the tokens with logit >= tau on a row without support, when ctx.ids / ctx.values hold
//! (in index order) every such token: fills the row with -inf (stores only, no compare pass;
//! skipped with `ctx.lazy_masking`), writes the kept logits back and records them as the support.
template <class T>
void keep_candidates_at_least(std::span<T> row, sampling_context<T>& ctx, T tau) {
    if (!ctx.lazy_masking) std::fill(row.begin(), row.end(), neg_inf<T>);
    write_kept(row, ctx, [&](std::size_t k) { return ctx.values[k] >= tau; });
}

//! Keeps exactly the tokens ctx.ids (index order) with logits ctx.values on a row without
//! support: records them as the support and, unless `ctx.lazy_masking`, writes -inf over every
//! other entry.
template <class T>
void keep_listed(std::span<T> row, sampling_context<T>& ctx) {
    if (!ctx.lazy_masking) {
        std::fill(row.begin(), row.end(), neg_inf<T>);
        for (std::size_t k = 0; k < ctx.ids.size(); ++k) row[static_cast<std::size_t>(ctx.ids[k])] = ctx.values[k];
    }
    ctx.support.assign(ctx.ids.begin(), ctx.ids.end());
    ctx.has_support = true;
}

//! The verification of a sampled bracket (`sampled_bracket`) on a float row without support, on
//! path `path`, for top-p (Typical = false: score -x, float key -x, exact) or typical-p (score
//! |mean_d - (x - m)| = `score(x)`, float key |x - centre| within g of it). With the float key
//! bounds a <= lo - g and b >= hi + g: one pass collects (index order) the finite tokens with key
//! <= b, a pass over them sums the mass `sure` of those with key < a and lists the band, key in
//! [a, b]; their exact scores are refined (`weighted_key_threshold`, target - sure) to kappa. The
//! kept set is exactly the collected tokens scoring <= kappa when sure < target <= sure + (the
//! band's mass) and lo <= kappa <= hi: every token of key < a scores below lo, every token not
//! collected scores above hi. Then it is recorded (`keep_listed`) and true returned; otherwise
//! nothing is recorded (the caller takes the histogram path).
template <bool Typical, class Score>
bool keep_bracketed(isa path, std::span<float> row, float m, float centre, double target, double g, score_bracket br,
                    sampling_context<float>& ctx, Score&& score) {
    const float a = std::nextafter(static_cast<float>(br.lo - g), neg_inf<float>);
    const float b = std::nextafter(static_cast<float>(br.hi + g), pos_inf<float>);
    ctx.ids.clear();
    ctx.values.clear();
    collect_key_at_most<Typical>(path, row.data(), row.size(), centre, b, ctx.ids, ctx.values);
    const std::size_t c = ctx.values.size();
    ctx.chunk_list.clear();
    const double sure = split_band<Typical>(path, ctx.values.data(), c, m, centre, a, b, ctx.chunk_list);
    const std::size_t nb = ctx.chunk_list.size();
    ctx.weights.resize(nb);
    ctx.keys.resize(nb);
    for (std::size_t k = 0; k < nb; ++k) {
        const float v = ctx.values[static_cast<std::size_t>(ctx.chunk_list[k])];
        ctx.weights[k] = v;
        ctx.keys[k] = score(v);
    }
    exp_shifted(path, ctx.weights.data(), nb, m, ctx.weights.data());
    double band = 0;
    for (std::size_t k = 0; k < nb; ++k) band += double(ctx.weights[k]);
    if (!(sure < target && sure + band >= target)) return false;
    const double kappa = weighted_key_threshold(ctx.keys, ctx.weights, target - sure, ctx.buckets);
    if (!(kappa >= br.lo && kappa <= br.hi)) return false;
    if constexpr (Typical) {
        std::size_t kept = 0; // branch-free: keep score <= kappa
        for (std::size_t i = 0; i < c; ++i) {
            const float v = ctx.values[i];
            ctx.ids[kept] = ctx.ids[i];
            ctx.values[kept] = v;
            kept += score(v) <= kappa;
        }
        ctx.ids.resize(kept);
        ctx.values.resize(kept);
    } else {
        compact_at_least(path, ctx.ids, ctx.values, static_cast<float>(-kappa)); // -v <= kappa: v >= -kappa (a float)
    }
    keep_listed(row, ctx);
    return true;
}

//! Top-p on a float row without support whose nucleus is wide (`softmax_blocks` found no band
//! holding mass p, or listed no candidates), on path `path`: keeps the tokens x >= tau, tau the
//! largest logit with mass(x >= tau) >= target (masses exp(x - m)). The key m - x is monotone in
//! x, so the tokens of the bucket of `key_mass_histogram` where the cumulative mass crosses the
//! target lie between those of the buckets before it (all kept) and after it (all dropped): one
//! pass collects the tokens up to that bucket, and only that bucket's are refined
//! (`weighted_key_threshold`, keys -x). Before that, a bracket of tau estimated from a sample of
//! the row is tried (`sampled_bracket`, `keep_bracketed`): when it holds, one collecting pass
//! replaces the histogram's. z: the softmax normaliser, target = p z.
inline void keep_wide_top_p(isa path, std::span<float> row, float m, double z, double target, sampling_context<float>& ctx) {
    const float* x = row.data();
    const std::size_t n = row.size();
    const auto score = [](float v) { return -double(v); };
    const score_bracket br = sampled_bracket(path, x, n, m, z, target, ctx, score);
    if (br.ok && keep_bracketed<false>(path, row, m, 0.0f, target, 0.0, br, ctx, score)) return;
    std::array<double, mass_buckets> hist;
    key_mass_histogram<false>(path, x, n, m, m, hist);
    double below = 0;
    const auto b = static_cast<std::int32_t>(crossing_bucket(hist, target, below));
    ctx.ids.clear();
    ctx.values.clear();
    collect_buckets<false>(path, x, n, m, 0, b, ctx.ids, ctx.values);
    // the crossing bucket's tokens (the same bucket function on the same values)
    const std::size_t c = ctx.values.size();
    ctx.keys.clear();
    ctx.weights.clear();
    detail::dispatch(path, [&](auto tag) { sampling_bucket_members(tag, ctx.values.data(), c, m, b, ctx.keys, ctx.weights); });
    const auto tau = static_cast<float>(-weighted_key_threshold(ctx.keys, ctx.weights, target - below, ctx.buckets));
    std::size_t kept = 0; // branch-free: keep x >= tau
    for (std::size_t i = 0; i < c; ++i) {
        const float v = ctx.values[i];
        ctx.ids[kept] = ctx.ids[i];
        ctx.values[kept] = v;
        kept += v >= tau;
    }
    ctx.ids.resize(kept);
    ctx.values.resize(kept);
    keep_listed(row, ctx);
}

//! Typical-p on a float row without support, on path `path`, without gathering its finite
//! tokens: one pass for the maximum m, one for z = sum e_i and sum e_i d_i (e_i = exp(d_i),
//! d_i = x_i - m; float lanes, added in double per block of 512), so mean_d = sum p_i d_i and the
//! score of token i is |mean_d - d_i| = |x_i - c|, c = m + mean_d. A pass spreads the masses over
//! the buckets of the float key |x - float(c)| (`key_mass_histogram`), which is within
//! eps = 2^-23 (|c| + key) of the score; the buckets b - 1 .. b + 1 around the crossing bucket b
//! are collected and refined with the exact double scores (`weighted_key_threshold`, base: the
//! mass of the buckets before b - 1). While eps < 1/32 (a quarter of a bucket) a token of a bucket
//! before b - 1 scores below every score where the mass can cross p, and one after b + 1 above
//! it, so the kept set is the buckets before b - 1 and the refined tokens up to the threshold.
//! Returns false (nothing done) when |c| >= 2^16, where eps could exceed that; the caller then
//! gathers the finite tokens. Throws for NaN / +inf or an all -inf row. Before the histogram, a
//! bracket of the threshold estimated from a sample of the row is tried (`sampled_bracket`,
//! `keep_bracketed`): when it holds, one collecting pass replaces the histogram's and the keeping
//! pass.
inline bool keep_wide_typical(isa path, std::span<float> row, double p, sampling_context<float>& ctx) {
    const float* x = row.data();
    const std::size_t n = row.size();
    const float mf = max_checked(x, n, "typical_p");
    require(mf > neg_inf<float>, "typical_p", "logits", "has every entry masked (-inf)");
    double z = 0, zd = 0;
    detail::dispatch(path, [&](auto tag) { sampling_typical_moments(tag, x, n, mf, z, zd); });
    const double m = double(mf), mean_d = zd / z, c = m + mean_d;
    if (!(std::abs(c) < 0x1p16)) return false;
    const auto cf = static_cast<float>(c);
    const double target = p * z;
    const auto score = [&](float v) { return std::abs(mean_d - (double(v) - m)); };
    // the tokens within 4 of the maximum enter the estimate exactly (sampled_bracket): their
    // scores lie near the threshold on flat rows, where a sample would rarely hold them
    const float cut = mf - 4.0f;
    ctx.ids.clear();
    ctx.values.clear();
    collect_key_at_most<false>(path, x, n, 0.0f, -cut, ctx.ids, ctx.values);
    const score_bracket br = sampled_bracket(path, x, n, mf, z, target, ctx, score, ctx.values, cut);
    // g: a bound on |float key - score| up to hi (2^-23 (|c| + key), doubled)
    if (br.ok && keep_bracketed<true>(path, row, mf, cf, target, 0x1p-22 * (std::abs(c) + br.hi + 1), br, ctx, score)) return true;
    std::array<double, mass_buckets> hist;
    key_mass_histogram<true>(path, x, n, mf, cf, hist);
    double below = 0;
    const auto b = static_cast<std::int32_t>(crossing_bucket(hist, target, below));
    const std::int32_t lo = std::max(b - 1, 0), hi = std::min(b + 1, std::int32_t(mass_buckets - 1));
    if (lo < b) below -= hist[static_cast<std::size_t>(lo)];
    ctx.ids.clear();
    ctx.values.clear();
    collect_buckets<true>(path, x, n, cf, lo, hi, ctx.ids, ctx.values);
    const std::size_t cn = ctx.values.size();
    ctx.weights.resize(cn);
    exp_shifted(path, ctx.values.data(), cn, mf, ctx.weights.data());
    ctx.keys.resize(cn);
    for (std::size_t i = 0; i < cn; ++i) ctx.keys[i] = std::abs(mean_d - (double(ctx.values[i]) - m));
    const double kappa = weighted_key_threshold(ctx.keys, ctx.weights, target - below, ctx.buckets);
    // the kept set: the buckets before lo, and the tokens of lo .. hi scoring <= kappa
    ctx.ids.clear();
    ctx.values.clear();
    detail::dispatch(path, [&](auto tag) { sampling_typical_keep(tag, x, n, cf, lo, hi, mean_d, m, kappa, ctx.ids, ctx.values); });
    keep_listed(row, ctx);
    return true;
}

//! Keeps every finite logit (checks the row, records the finite entries as the support).
template <class T>
void keep_all_finite(std::span<T> row, sampling_context<T>& ctx, std::string_view where) {
    gather_finite(row, ctx, where);
    ctx.support.assign(ctx.ids.begin(), ctx.ids.end());
    ctx.has_support = true;
}

//! The k-th largest of values (1-based k <= values.size()), via nth_element on a copy.
template <class T>
T kth_largest(const std::vector<T>& values, std::size_t k, std::vector<double>& scratch) {
    scratch.assign(values.begin(), values.end());
    std::nth_element(scratch.begin(), scratch.begin() + static_cast<std::ptrdiff_t>(k - 1), scratch.end(),
                     std::greater<>());
    return static_cast<T>(scratch[k - 1]);
}

} // namespace sampling_detail

//! Top-k (Fan et al. 2018; HF `TopKLogitsWarper`, llama.cpp `top_k`): keeps the tokens whose
//! logit is >= the k-th largest logit (ties with it kept), masks the rest. k >= the number of
//! finite logits keeps them all. Throws for k < 1.
//! Cost: one pass for per-chunk maxima (chunks of 64), a selection over the chunk maxima, one
//! collecting pass, a selection over the candidates, one store pass of -inf (none with
//! `ctx.lazy_masking`).
struct top_k {
    std::int32_t k = 0; //!< tokens to keep, >= 1
    static constexpr bool support_aware = true; //!< see `logits_processor`: ignores entries outside the support

    //! Throws `invalid_argument` unless k >= 1.
    void check() const { require(k >= 1, "top_k", "k", "must be >= 1, got ", k); }

    //! Applies top-k to `row` in place.
    template <class T>
    void process(std::span<T> row, sampling_context<T>& ctx) const {
        using namespace sampling_detail;
        check();
        require_nonempty(row.size(), "top_k");
        const auto kk = static_cast<std::size_t>(k);
        const bool dense = !ctx.has_support; // then ctx.ids / ctx.values are every candidate, in index order
        if (dense) {
            const std::size_t n = row.size();
            constexpr std::size_t chunk = 64;
            const std::size_t chunks = (n + chunk - 1) / chunk;
            T cut = std::numeric_limits<T>::lowest();
            if (kk < chunks) {
                // chunk maxima: the k-th largest of them is <= the k-th largest logit
                ctx.keys.resize(chunks);
                chunk_maxima_checked(row.data(), n, chunk, ctx.keys.data(), "top_k");
                std::nth_element(ctx.keys.begin(), ctx.keys.begin() + static_cast<std::ptrdiff_t>(kk - 1),
                                 ctx.keys.end(), std::greater<>());
                cut = std::max(cut, static_cast<T>(ctx.keys[kk - 1]));
            } else {
                max_checked(row.data(), n, "top_k");
            }
            ctx.ids.clear();
            ctx.values.clear();
            collect_at_least(row.data(), n, cut, ctx.ids, ctx.values);
            require(!ctx.ids.empty(), "top_k", "logits", "has every entry masked (-inf)");
        } else {
            gather_finite(row, ctx, "top_k");
        }
        const T tau = ctx.values.size() <= kk ? *std::min_element(ctx.values.begin(), ctx.values.end()) // all of them
                                              : kth_largest(ctx.values, kk, ctx.keys);
        if (dense)
            keep_candidates_at_least(row, ctx, tau);
        else
            keep_at_least(row, ctx, tau);
    }
};

//! Top-p / nucleus sampling (Holtzman et al. 2020; HF `TopPLogitsWarper`): with probabilities
//! p_i = softmax(logits), the threshold tau is the largest logit value such that the tokens
//! with logit >= tau hold mass >= p; those are kept (ties with tau kept), the rest masked.
//! Equivalently: sort by probability, keep the shortest prefix reaching mass p, then every token
//! tied with its last member. p = 1 keeps every finite logit. Throws unless p is in (0, 1].
struct top_p {
    float p = 1.0f; //!< nucleus mass, in (0, 1]
    static constexpr bool support_aware = true; //!< see `logits_processor`: ignores entries outside the support

    //! Throws `invalid_argument` unless 0 < p <= 1.
    void check() const {
        require(p > 0.0f && p <= 1.0f, "top_p", "p", "must be in (0, 1], got ", p);
    }

    //! Applies top-p to `row` in place.
    template <class T>
    void process(std::span<T> row, sampling_context<T>& ctx) const {
        using namespace sampling_detail;
        check();
        require_nonempty(row.size(), "top_p");
        if (p == 1.0f) return keep_all_finite(row, ctx, "top_p");
        const isa path = active_isa(); // one path for every mass of this call
        double z = 0;
        T m;
        const bool dense = !ctx.has_support;
        bool weighed = false; // ctx.weights already holds exp(value - m) of the candidates
        if (dense) {
            const T* x = row.data();
            const std::size_t n = row.size();
            // one read of the row (softmax_blocks): the maximum, the softmax normaliser z and the
            // candidates within 8 of the maximum, less a rounding margin (a superset of those
            // within 8, where the nucleus of a peaked distribution lies); their masses above m - 2,
            // m - 4 and m - 8 pick the narrowest band holding mass p, else every finite logit is
            // a candidate
            constexpr T band[3] = {T(-2), T(-4), T(-8)};
            ctx.ids.clear();
            ctx.values.clear();
            const std::size_t blocks = softmax_block_count(n);
            ctx.sums.resize(2 * blocks);
            m = softmax_blocks<T>(path, x, n, ctx.sums.data(), ctx.sums.data() + blocks, band[2], ctx.ids, ctx.values, ctx.chunk_maxima,
                                  ctx.chunk_list, "top_p");
            double factor = 1; // exp(shift - m), recomputed only where the shift changes
            for (std::size_t k = 0; k < blocks; ++k) {
                if (k == 0 || ctx.sums[blocks + k] != ctx.sums[blocks + k - 1]) factor = std::exp(ctx.sums[blocks + k] - double(m));
                if (ctx.sums[k] > 0) z += ctx.sums[k] * factor;
            }
            require(z > 0, "top_p", "logits", "has every entry masked (-inf)");
            if constexpr (std::is_same_v<T, float>) {
                if (ctx.ids.empty()) // a wide distribution (see softmax_blocks)
                    return keep_wide_top_p(path, row, m, z, double(p) * z, ctx);
            }
            std::size_t kept = 0; // drop the candidates within the margin below m - 8
            for (std::size_t i = 0; i < ctx.ids.size(); ++i)
                if (ctx.values[i] - m >= band[2]) ctx.ids[kept] = ctx.ids[i], ctx.values[kept] = ctx.values[i], ++kept;
            ctx.ids.resize(kept);
            ctx.values.resize(kept);
            ctx.weights.resize(kept); // their weights exp(x - m), vectorised, reused below
            exp_shifted(path, ctx.values.data(), kept, m, ctx.weights.data());
            double s[3] = {};
            for (std::size_t i = 0; i < kept; ++i) {
                const T d = ctx.values[i] - m;
                for (int b = 0; b < 3; ++b) s[b] += d >= band[b] ? double(ctx.weights[i]) : 0.0;
            }
            int b = 0;
            while (b < 3 && s[b] < double(p) * z) ++b;
            if (b < 3) { // keep exactly the members of band b (same test as above)
                std::size_t k = 0;
                for (std::size_t i = 0; i < kept; ++i)
                    if (ctx.values[i] - m >= band[b])
                        ctx.ids[k] = ctx.ids[i], ctx.values[k] = ctx.values[i], ctx.weights[k] = ctx.weights[i], ++k;
                ctx.ids.resize(k);
                ctx.values.resize(k);
                ctx.weights.resize(k);
                weighed = true;
            } else if constexpr (std::is_same_v<T, float>) { // a flat distribution
                return keep_wide_top_p(path, row, m, z, double(p) * z, ctx);
            } else { // a flat distribution: every finite logit is a candidate
                ctx.ids.clear();
                ctx.values.clear();
                collect_at_least(x, n, std::numeric_limits<T>::lowest(), ctx.ids, ctx.values);
            }
        } else {
            gather_finite(row, ctx, "top_p");
            m = *std::max_element(ctx.values.begin(), ctx.values.end());
            z = sum_exp(path, ctx.values.data(), ctx.values.size(), m);
        }
        // keys = -logit (ascending = most probable first), weights = unnormalised probabilities
        const std::size_t c = ctx.values.size();
        ctx.keys.resize(c);
        for (std::size_t i = 0; i < c; ++i) ctx.keys[i] = -double(ctx.values[i]);
        if (!weighed) {
            ctx.weights.resize(c);
            exp_shifted(path, ctx.values.data(), c, m, ctx.weights.data());
        }
        const double kappa = weighted_key_threshold(ctx.keys, ctx.weights, double(p) * z, ctx.buckets);
        if (dense)
            keep_candidates_at_least(row, ctx, static_cast<T>(-kappa));
        else
            keep_at_least(row, ctx, static_cast<T>(-kappa));
    }
};

//! Min-p (Nguyen et al. 2024; HF `MinPLogitsWarper`, llama.cpp `min_p`): keeps the tokens with
//! p_i >= p * p_max, evaluated in logit space as logit >= max_logit + ln(p) (as llama.cpp), ties
//! kept. p = 0 keeps every finite logit, p = 1 only the maxima. Throws unless p is in [0, 1].
struct min_p {
    float p = 0.0f; //!< relative probability floor, in [0, 1]
    static constexpr bool support_aware = true; //!< see `logits_processor`: ignores entries outside the support

    //! Throws `invalid_argument` unless 0 <= p <= 1.
    void check() const {
        require(p >= 0.0f && p <= 1.0f, "min_p", "p", "must be in [0, 1], got ", p);
    }

    //! Applies min-p to `row` in place.
    template <class T>
    void process(std::span<T> row, sampling_context<T>& ctx) const {
        using namespace sampling_detail;
        check();
        require_nonempty(row.size(), "min_p");
        T m;
        if (ctx.has_support) {
            gather_finite(row, ctx, "min_p");
            m = *std::max_element(ctx.values.begin(), ctx.values.end());
        } else {
            m = max_checked(row.data(), row.size(), "min_p");
            require(m > neg_inf<T>, "min_p", "logits", "has every entry masked (-inf)");
        }
        // the smallest T at or above m + ln(p): x >= tau exactly when x >= m + ln(p)
        const double bound = double(m) + std::log(double(p));
        T tau = p == 0.0f ? std::numeric_limits<T>::lowest() : static_cast<T>(bound);
        if (p != 0.0f && double(tau) < bound) tau = std::nextafter(tau, std::numeric_limits<T>::infinity());
        keep_at_least(row, ctx, std::min(tau, m));
    }
};

//! Locally typical sampling (Meister et al. 2023; HF `TypicalLogitsWarper`): with p_i the
//! softmax and H = -sum p_i ln p_i, orders tokens by |-ln p_i - H| (ascending) and keeps the
//! shortest prefix whose mass reaches p, plus every token tied with its last member's score.
//! p = 1 keeps every finite logit. Throws unless p is in (0, 1]. Probabilities are float
//! exponentials, the scores |mean_d - d_i| are computed in double (d_i = x_i - max).
struct typical_p {
    float p = 1.0f; //!< mass to keep, in (0, 1]
    static constexpr bool support_aware = true; //!< see `logits_processor`: ignores entries outside the support

    //! Throws `invalid_argument` unless 0 < p <= 1.
    void check() const {
        require(p > 0.0f && p <= 1.0f, "typical_p", "p", "must be in (0, 1], got ", p);
    }

    //! Applies typical-p to `row` in place.
    template <class T>
    void process(std::span<T> row, sampling_context<T>& ctx) const {
        using namespace sampling_detail;
        check();
        require_nonempty(row.size(), "typical_p");
        if (p == 1.0f) return keep_all_finite(row, ctx, "typical_p");
        const isa path = active_isa(); // one path for every mass of this call
        if constexpr (std::is_same_v<T, float>) {
            if (!ctx.has_support && keep_wide_typical(path, row, double(p), ctx)) return;
        }
        gather_finite(row, ctx, "typical_p");
        const std::size_t c = ctx.values.size();
        const T mt = *std::max_element(ctx.values.begin(), ctx.values.end());
        const double m = double(mt);
        ctx.weights.resize(c);
        exp_shifted(path, ctx.values.data(), c, mt, ctx.weights.data()); // exp(x - max) as float
        double zs[4] = {}, zds[4] = {}; // four interleaved sums (fixed order): no single add chain
        for (std::size_t i = 0; i < c; ++i) {
            const double e = double(ctx.weights[i]);
            zs[i & 3] += e;
            zds[i & 3] += e * (double(ctx.values[i]) - m);
        }
        const double z = (zs[0] + zs[1]) + (zs[2] + zs[3]), zd = (zds[0] + zds[1]) + (zds[2] + zds[3]);
        const double mean_d = zd / z; // sum_i p_i d_i, so |-ln p_i - H| = |mean_d - d_i|
        ctx.keys.resize(c);
        for (std::size_t i = 0; i < c; ++i) ctx.keys[i] = std::abs(mean_d - (double(ctx.values[i]) - m));
        const double kappa = weighted_key_threshold(ctx.keys, ctx.weights, double(p) * z, ctx.buckets);
        // every finite token of the row (or of the support) is a candidate and is written here;
        // the others are -inf already
        write_kept(row, ctx, [&](std::size_t i) { return std::abs(mean_d - (double(ctx.values[i]) - m)) <= kappa; });
    }
};

} // namespace selfreplay
