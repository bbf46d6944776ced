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
#include "selfreplay/sampling/gumbel_kernel.hpp"
#include "selfreplay/sampling/kernels.hpp"
#include "selfreplay/sampling/processor.hpp"

namespace selfreplay {

//! The end of the sentence with which a function rejects an argument that does not model
//! `token_sampler` (a string literal, for `static_assert`).
#define SELFREPLAY_SAMPLER_HINT "(it needs a const member draw(std::span<const T> row, sampling_context<T>& ctx, counter_rng& rng) returning the token id)"

//! A draw picks one token id in [0, V) from a processed row of V logits.
//!
//! \par Required expressions
//! For `d` a const `D`, `row` a `std::span<const T>`, `ctx` a `sampling_context<T>&`, `rng` a
//! `counter_rng&`:
//! - `d.draw(row, ctx, rng)` -> convertible to `std::int32_t`: the token, using only `rng` for
//!   randomness (so the draw is reproducible from the rng state) and only the support when
//!   `ctx.has_support`. Throws when the row is empty (V = 0), every entry is -inf or some entry
//!   is NaN / +inf.
//!
//! \par Models
//! `categorical` (exact), `gumbel_max`, `greedy`.
template <class D, class T = float>
concept token_sampler = requires(const D& d, std::span<const T> row, sampling_context<T>& ctx, counter_rng& rng) {
    { d.draw(row, ctx, rng) } -> std::convertible_to<std::int32_t>;
};

namespace sampling_detail {
inline void require_not_all_masked(bool ok, std::string_view where) {
    require(ok, where, "logits", "has every entry masked (-inf)");
}
} // namespace sampling_detail

//! Exact categorical draw from softmax(row), w_i = exp(x_i) / Z. On the support (after a
//! truncation): inverse CDF, u ~ U[0, 1) in double (53 bits, 2 words of `rng`), the first
//! support token whose cumulative weight exp(x_i - m) exceeds u * Z (llama.cpp `dist`).
//! Dense rows: rejection sampling (von Neumann) with a power-of-two proposal, so that the one
//! read of the row computes no exponential. Token i is proposed with probability q_i / Q,
//! q_i = 2^round(y_i), y_i = x_i log2(e) - shift (`proposal_blocks`: a running maximum as the
//! shift, a sum per block of 512, 4 vector operations per 8 logits), by inverse CDF over the
//! block sums, then over the rescanned block; it is accepted with probability
//! 2^(y_i - round(y_i) - 1/2 - s) in [1/2, 1] (s = 2^-14 covers the float rounding of y_i;
//! computed in double from the exact exponent), otherwise a new token is proposed. The accepted
//! token is distributed exactly as q_i 2^(y_i - round(y_i)) ~ 2^(x_i log2(e)) = exp(x_i): no
//! float exponential enters the probabilities. The acceptance rate is about 0.72 (at least
//! 1/2); each proposal uses 4 words of `rng`. Tokens whose weight is below 2^-126.5 of a running
//! maximum (1e-38; double rows 2^-1022.5) and masked tokens (-inf) are never returned.
struct categorical {
    static constexpr bool support_aware = true; //!< see `logits_processor`: draws from the support alone when there is one
    //! Draws one token from `row`.
    template <class T>
    std::int32_t draw(std::span<const T> row, sampling_context<T>& ctx, counter_rng& rng) const {
        using namespace sampling_detail;
        require_nonempty(row.size(), "categorical");
        if constexpr (std::is_same_v<T, float>)
            if (ctx.has_support) return draw_support(row, ctx, rng);
        if (ctx.has_support) {
            T m = neg_inf<T>;
            for (std::int32_t id : ctx.support) {
                const T v = row[static_cast<std::size_t>(id)];
                if (!(v < pos_inf<T>)) throw_bad_logit("categorical"); // as the dense path does
                m = std::max(m, v);
            }
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
        // one read of the row: each block's sum of proposal weights and the maximum behind its
        // shift; the sums rescaled to the last block's shift (shifts only grow)
        const T* x = row.data();
        const std::size_t n = row.size();
        const std::size_t blocks = softmax_block_count(n);
        ctx.sums.resize(2 * blocks);
        double* sums = ctx.sums.data();
        const double* maxima = sums + blocks;
        const isa path = active_isa(); // one path for the block sums and the rescans
        proposal_blocks<T>(path, x, n, sums, sums + blocks, "categorical");
        const double last_shift = proposal_shift<T>(T(maxima[blocks - 1]), path).shift;
        double z = 0, factor = 1;
        for (std::size_t b = 0; b < blocks; ++b) {
            if (b == 0 || maxima[b] != maxima[b - 1]) factor = std::exp2(proposal_shift<T>(T(maxima[b]), path).shift - last_shift);
            sums[b] *= factor;
            z += sums[b];
        }
        require_not_all_masked(z > 0, "categorical");
        T q[softmax_block];
        for (;;) {
            // propose: the block holding u * Q, then the token within it (its weights rescanned)
            const double target = uniform_double(rng) * z;
            double before = 0;
            std::size_t b = 0, last_block = 0;
            for (; b < blocks; ++b) {
                if (sums[b] > 0) last_block = b;
                if (before + sums[b] > target) break;
                before += sums[b];
            }
            if (b == blocks) b = last_block, before = z - sums[b];
            const std::size_t s = b * softmax_block, len = std::min(n - s, softmax_block);
            const proposal_shift<T> sh(T(maxima[b]), path);
            if constexpr (std::is_same_v<T, float>) {
                proposal_block(path, x + s, len, sh, q);
            } else {
                for (std::size_t i = 0; i < len; ++i) q[i] = sh.weight(x[s + i]);
            }
            // the rest of the target in the block's own units (its sum was rescaled by 2^(shift - last))
            const double rem = (target - before) / std::exp2(sh.shift - last_shift);
            double cum = 0;
            std::size_t i = 0, last = len;
            for (; i < len; ++i) {
                if (!(q[i] > 0)) continue;
                cum += double(q[i]);
                last = i;
                if (cum > rem) break;
            }
            if (i == len) i = last; // rounding: the target landed at the block's very end
            // accept with probability 2^(y - k - 1/2 - slack), q = 2^k
            const double y = sh.exact(x[s + i]);
            if (uniform_double(rng) < std::exp2(y - double(std::ilogb(q[i])) - 0.5 - proposal_slack))
                return static_cast<std::int32_t>(s + i);
        }
    }

private:
    //! The support path for float rows, the same inverse CDF in vector lanes: the support's
    //! logits gathered into ctx.weights (`gather_at`), their maximum m (`max_checked`),
    //! w = exp(x - m) in place (`exp_shifted`), sums per block of 64 (`chunk_sums`: float lanes,
    //! then double), the block holding u * Z, then the first token within it whose cumulative
    //! weight exceeds the rest.
    static std::int32_t draw_support(std::span<const float> row, sampling_context<float>& ctx, counter_rng& rng) {
        using namespace sampling_detail;
        constexpr std::size_t block = 64;
        const std::size_t c = ctx.support.size();
        const isa path = active_isa();
        ctx.weights.resize(c);
        float* w = ctx.weights.data();
        gather_at(path, row.data(), ctx.support.data(), c, w);
        // NaN or +inf on the support are rejected, as the dense path does
        const float m = max_checked(w, c, "categorical");
        require_not_all_masked(m > neg_inf<float>, "categorical");
        exp_shifted(path, w, c, m, w);
        const std::size_t blocks = (c + block - 1) / block;
        ctx.sums.resize(blocks);
        chunk_sums(path, w, c, block, ctx.sums.data());
        double z = 0;
        for (std::size_t b = 0; b < blocks; ++b) z += ctx.sums[b];
        const double target = uniform_double(rng) * z;
        double before = 0;
        std::size_t b = 0, last_block = 0;
        for (; b < blocks; ++b) {
            if (ctx.sums[b] > 0) last_block = b;
            if (before + ctx.sums[b] > target) break;
            before += ctx.sums[b];
        }
        if (b == blocks) b = last_block; // rounding: the target landed at the very end
        double cum = before;
        std::int32_t last = -1;
        for (std::size_t k = b * block; k < std::min(c, (b + 1) * block); ++k) {
            if (!(w[k] > 0)) continue;
            cum += double(w[k]);
            last = ctx.support[k];
            if (cum > target) return last;
        }
        return last; // rounding: the target landed at the block's very end
    }
};

//! Gumbel-max draw: argmax_i (x_i + g_i) with g_i = -ln(-ln u_i), u_i ~ U(0, 1) open
//! (`uniform_float_open`), the score computed in double, the lowest index among tied scores;
//! exactly distributed as softmax(row). Consumes one 32-bit word per token considered: V words on
//! a dense row (token i takes word counter + i), one per support entry otherwise. Dense rows
//! (`gumbel::gumbel_dense`, sampling/gumbel_kernel.hpp): Philox and the noise are computed in
//! vector lanes, in float, as a filter; only the tokens whose float score comes within the
//! filter's error bound of the best are scored in double, so the token is the one the double
//! scores of every token give.
struct gumbel_max {
    static constexpr bool support_aware = true; //!< see `logits_processor`: draws from the support alone when there is one
    //! Draws one token from `row`.
    template <class T>
    std::int32_t draw(std::span<const T> row, sampling_context<T>& ctx, counter_rng& rng) const {
        using namespace sampling_detail;
        require_nonempty(row.size(), "gumbel_max");
        std::int32_t best = -1;
        double best_score = -std::numeric_limits<double>::infinity();
        auto consider = [&](std::size_t i, std::uint32_t word) {
            const T v = row[i];
            if (std::isnan(v) || v == pos_inf<T>) throw_bad_logit("gumbel_max");
            if (v == neg_inf<T>) return;
            const double score = double(v) + gumbel::exact_noise(word);
            if (score > best_score) best_score = score, best = static_cast<std::int32_t>(i);
        };
        if (ctx.has_support) {
            for (std::int32_t id : ctx.support) consider(static_cast<std::size_t>(id), rng.next_u32());
        } else if constexpr (std::is_same_v<T, float>) {
            const gumbel::dense_result r = gumbel::gumbel_dense(row.data(), row.size(), rng, ctx.chunk_maxima);
            rng.counter += row.size();
            if (r.bad) throw_bad_logit("gumbel_max");
            best = static_cast<std::int32_t>(r.best);
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
    static constexpr bool support_aware = true; //!< see `logits_processor`: draws from the support alone when there is one
    //! Returns the argmax of `row`.
    template <class T>
    std::int32_t draw(std::span<const T> row, sampling_context<T>& ctx, counter_rng&) const {
        using namespace sampling_detail;
        require_nonempty(row.size(), "greedy");
        if (ctx.has_support) {
            std::int32_t best = -1;
            T m = neg_inf<T>;
            for (std::int32_t id : ctx.support) {
                const T v = row[static_cast<std::size_t>(id)];
                if (!(v < pos_inf<T>)) throw_bad_logit("greedy"); // as the dense path does
                if (v > m || (v == m && v > neg_inf<T> && id < best)) m = v, best = id;
            }
            require_not_all_masked(best >= 0, "greedy");
            return best;
        }
        const T m = max_checked(row.data(), row.size(), "greedy");
        require_not_all_masked(m > neg_inf<T>, "greedy");
        return static_cast<std::int32_t>(first_equal(row.data(), row.size(), m));
    }
};

//! One sampling step on one row (`history`: the row's tokens so far, int32 or int64 ids): `ctx.begin_row(history)`, `chain.process(row, ctx)`, then
//! `draw.draw(row, ctx, rng)`. `row` is modified in place. When the chain and the draw are
//! support-aware (every processor and draw of the library is; see `logits_processor`), the
//! step runs with `ctx.lazy_masking`: a truncation records its kept set in `ctx.support` without
//! writing -inf over the rest of the row. On return the entries at `ctx.support` (when
//! `ctx.has_support`) are the processed logits, the others may be stale; `process_row` gives the
//! fully masked row. The token is the same either way.
template <class T, class Chain, class Draw>
std::int32_t sample_token(std::span<T> row, const Chain& chain, const Draw& draw, sampling_context<T>& ctx,
                          counter_rng& rng, token_span history = {}) {
    if constexpr (!logits_processor<Chain, T>) {
        static_assert(detail::always_false<Chain>,
                      "selfreplay::sample_token: argument 'chain' does not model selfreplay::logits_processor "
                      SELFREPLAY_PROCESSOR_HINT);
        return -1;
    } else if constexpr (!token_sampler<Draw, T>) {
        static_assert(detail::always_false<Draw>,
                      "selfreplay::sample_token: argument 'draw' does not model selfreplay::token_sampler "
                      SELFREPLAY_SAMPLER_HINT);
        return -1;
    } else {
        ctx.begin_row(history);
        ctx.lazy_masking = sampling_detail::support_aware<Chain> && sampling_detail::support_aware<Draw>;
        chain.process(row, ctx);
        return draw.draw(std::span<const T>(row.data(), row.size()), ctx, rng);
    }
}

} // namespace selfreplay
