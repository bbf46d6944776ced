#pragma once
//! \file
//! Draws: the `token_sampler` concept and its models `categorical` (exact inverse CDF),
//! `gumbel_max` and `greedy`; `sample_token` (processor chain, then draw).

#include <cmath>
#include <concepts>
#include <cstdint>
#include <span>

#include "selfreplay/random/counter_rng.hpp"
#include "selfreplay/random/uniform.hpp"
#include "selfreplay/sampling/context.hpp"
#include "selfreplay/sampling/kernels.hpp"
#include "selfreplay/sampling/processor.hpp"

namespace selfreplay {

//! A draw picks one token id in [0, V) from a processed row of V logits:
//! `d.draw(std::span<const T> row, sampling_context<T>& ctx, counter_rng& rng) -> std::int32_t`,
//! using only `rng` for randomness (so the draw is reproducible from the rng state) and only the
//! support when `ctx.has_support`. Throws when every entry is -inf or some entry is NaN / +inf.
template <class D, class T = float>
concept token_sampler = requires(const D& d, std::span<const T> row, sampling_context<T>& ctx, counter_rng& rng) {
    { d.draw(row, ctx, rng) } -> std::convertible_to<std::int32_t>;
};

namespace sampling_detail {
inline void require_not_all_masked(bool ok, std::string_view where) {
    require(ok, where, "logits", "has every entry masked (-inf)");
}
} // namespace sampling_detail

//! Exact categorical draw from softmax(row) by inverse CDF (llama.cpp `dist`): with m the
//! maximum and w_i = exp(x_i - m), Z = sum w_i, draws u ~ U[0, 1) in double (53 bits, 2 words of
//! `rng`) and returns the first i whose cumulative weight exceeds u * Z. Masked tokens
//! (w_i = 0) are never returned. Dense rows are read once (`softmax_blocks`: a running maximum,
//! one float exponential per token, sums per block of 512), then one block is rescanned.
struct categorical {
    //! Draws one token from `row`.
    template <class T>
    std::int32_t draw(std::span<const T> row, sampling_context<T>& ctx, counter_rng& rng) const {
        using namespace sampling_detail;
        if (ctx.has_support) {
            T m = neg_inf<T>;
            for (std::int32_t id : ctx.support) m = std::max(m, row[static_cast<std::size_t>(id)]);
            require_not_all_masked(m > neg_inf<T>, "categorical");
            double z = 0;
            for (std::int32_t id : ctx.support) z += double(exp_nonpositive<T>(row[static_cast<std::size_t>(id)] - m));
            const double target = uniform_double(rng) * z;
            double cum = 0;
            std::int32_t last = -1;
            for (std::int32_t id : ctx.support) {
                const double w = double(exp_nonpositive<T>(row[static_cast<std::size_t>(id)] - m));
                if (w <= 0) continue;
                cum += w;
                last = id;
                if (cum > target) return id;
            }
            return last; // rounding: target landed at the very end
        }
        // one read of the row (softmax_blocks): the maximum m and the block sums of exponentials,
        // rescaled to exp(x - m); the block holding the target, then the token within it
        const T* x = row.data();
        const std::size_t n = row.size();
        const std::size_t blocks = softmax_block_count(n);
        ctx.sums.resize(2 * blocks);
        double* sums = ctx.sums.data();
        const double* shifts = sums + blocks;
        const T m = softmax_blocks<T, false>(x, n, sums, sums + blocks, T(0), nullptr, nullptr, "categorical");
        double z = 0;
        for (std::size_t b = 0; b < blocks; ++b) {
            if (sums[b] > 0) sums[b] *= std::exp(shifts[b] - double(m));
            z += sums[b];
        }
        require_not_all_masked(z > 0, "categorical");
        const double target = uniform_double(rng) * z;
        double before = 0;
        std::size_t b = 0, last_block = 0;
        for (; b < blocks; ++b) {
            if (sums[b] > 0) last_block = b;
            if (before + sums[b] > target) break;
            before += sums[b];
        }
        if (b == blocks) b = last_block, before = z - sums[b];
        // within the block: weights exp(x - m) (the same float exponentials as the sums), the
        // first token whose cumulative weight exceeds the rest of the target
        const std::size_t s = b * softmax_block, len = std::min(n - s, softmax_block);
        float w[softmax_block];
        exp_shifted(x + s, len, m, w);
        const double rem = target - before;
        double cum = 0;
        std::size_t last = s;
        for (std::size_t i = 0; i < len; ++i) {
            if (!(w[i] > 0)) continue;
            cum += double(w[i]);
            last = s + i;
            if (cum > rem) return static_cast<std::int32_t>(s + i);
        }
        return static_cast<std::int32_t>(last);
    }
};

//! Gumbel-max draw: argmax_i (x_i + g_i) with g_i = -ln(-ln u_i), u_i ~ U(0, 1) open
//! (`uniform_float_open`); exactly distributed as softmax(row). Consumes one 32-bit word per
//! token considered (V words on a dense row, one per support entry otherwise), computes two
//! logarithms per token: much slower than `categorical` on dense rows.
struct gumbel_max {
    //! Draws one token from `row`.
    template <class T>
    std::int32_t draw(std::span<const T> row, sampling_context<T>& ctx, counter_rng& rng) const {
        using namespace sampling_detail;
        std::int32_t best = -1;
        double best_score = -std::numeric_limits<double>::infinity();
        auto consider = [&](std::size_t i, std::uint32_t word) {
            const T v = row[i];
            if (std::isnan(v) || v == pos_inf<T>) throw_bad_logit("gumbel_max");
            if (v == neg_inf<T>) return;
            const double u = double(2 * (word >> 9) + 1) * 0x1p-24;
            const double score = double(v) - std::log(-std::log(u));
            if (score > best_score) best_score = score, best = static_cast<std::int32_t>(i);
        };
        if (ctx.has_support) {
            for (std::int32_t id : ctx.support) consider(static_cast<std::size_t>(id), rng.next_u32());
        } else {
            const std::size_t n = row.size();
            const std::uint64_t c0 = rng.counter;
            rng.counter += n;
            for (std::size_t i = 0; i < n;) {
                const std::uint64_t c = c0 + i;
                const auto words = rng.block(c >> 2);
                for (std::size_t w = c & 3; w < 4 && i < n; ++w, ++i) consider(i, words[w]);
            }
        }
        require_not_all_masked(best >= 0, "gumbel_max");
        return best;
    }
};

//! Greedy draw: the argmax, lowest index among tied maxima (consumes no randomness).
struct greedy {
    //! Returns the argmax of `row`.
    template <class T>
    std::int32_t draw(std::span<const T> row, sampling_context<T>& ctx, counter_rng&) const {
        using namespace sampling_detail;
        if (ctx.has_support) {
            std::int32_t best = -1;
            T m = neg_inf<T>;
            for (std::int32_t id : ctx.support) {
                const T v = row[static_cast<std::size_t>(id)];
                if (v > m || (v == m && v > neg_inf<T> && id < best)) m = v, best = id;
            }
            require_not_all_masked(best >= 0, "greedy");
            return best;
        }
        const T m = max_checked(row.data(), row.size(), "greedy");
        require_not_all_masked(m > neg_inf<T>, "greedy");
        std::size_t i = 0;
        while (row[i] != m) ++i;
        return static_cast<std::int32_t>(i);
    }
};

//! One sampling step on one row: `ctx.begin_row(history)`, `chain.process(row, ctx)`, then
//! `draw.draw(row, ctx, rng)`. `row` is modified in place (the processed logits).
template <class T, class Chain, class Draw>
std::int32_t sample_token(std::span<T> row, const Chain& chain, const Draw& draw, sampling_context<T>& ctx,
                          counter_rng& rng, std::span<const std::int32_t> history = {}) {
    static_assert(logits_processor<Chain, T>, "selfreplay::sample_token: Chain does not model selfreplay::logits_processor");
    static_assert(token_sampler<Draw, T>, "selfreplay::sample_token: Draw does not model selfreplay::token_sampler");
    ctx.begin_row(history);
    chain.process(row, ctx);
    return draw.draw(std::span<const T>(row.data(), row.size()), ctx, rng);
}

} // namespace selfreplay
