#pragma once
//! \file
//! `logit_bias` (OpenAI / llama.cpp `logit_bias`, HF `SequenceBiasLogitsProcessor` for single
//! tokens) and `banned_tokens` (HF `SuppressTokensLogitsProcessor`, `bad_words_ids` of length 1).

#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "selfreplay/sampling/context.hpp"
#include "selfreplay/sampling/kernels.hpp"

namespace selfreplay {

namespace sampling_detail {
inline void require_token(std::int32_t id, std::size_t V, std::string_view where, std::string_view arg) {
    require(id >= 0 && static_cast<std::size_t>(id) < V, where, arg,
            "contains token id ", id, " outside the vocabulary [0, ", V, ")");
}
} // namespace sampling_detail

//! Adds a fixed bias to the logits of given tokens: x[id] += b for each (id, b). A bias of -inf
//! bans the token. Throws for a NaN or +inf bias, an id outside [0, V) (checked on use), an empty
//! row, or a finite bias that overflows a finite logit to +-inf.
struct logit_bias {
    std::vector<std::pair<std::int32_t, float>> bias; //!< (token id, additive bias)
    static constexpr bool support_aware = true; //!< see `logits_processor`: ignores entries outside the support

    //! Throws `invalid_argument` for a NaN or +inf bias.
    void check() const {
        for (const auto& [id, b] : bias)
            require(!std::isnan(b) && b < sampling_detail::pos_inf<float>, "logit_bias", "bias",
                    "must be finite or -inf, got ", b, " for token ", id);
    }
    //! Applies the biases to `row` in place.
    template <class T>
    void process(std::span<T> row, sampling_context<T>& ctx) const {
        using namespace sampling_detail;
        check();
        require_nonempty(row.size(), "logit_bias");
        // with lazy masking the entries outside the support are stale (they count as -inf, which
        // a bias leaves -inf): ctx.buckets marks the support so that they are skipped
        const bool skip_stale = ctx.has_support && ctx.lazy_masking;
        if (skip_stale) {
            ctx.buckets.resize(row.size());
            for (const auto& [id, b] : bias)
                if (id >= 0 && static_cast<std::size_t>(id) < row.size()) ctx.buckets[static_cast<std::size_t>(id)] = 0;
            for (std::int32_t id : ctx.support) ctx.buckets[static_cast<std::size_t>(id)] = 1;
        }
        for (const auto& [id, b] : bias) {
            require_token(id, row.size(), "logit_bias", "bias");
            if (skip_stale && ctx.buckets[static_cast<std::size_t>(id)] == 0) continue;
            T& x = row[static_cast<std::size_t>(id)];
            const T y = x + static_cast<T>(b);
            // a finite bias on a finite logit must not overflow (a -inf bias is a ban)
            require(!(b > neg_inf<float>) || !(x > neg_inf<T> && x < pos_inf<T>) || (y > neg_inf<T> && y < pos_inf<T>),
                    "logit_bias", "bias", "of ", b, " turns the finite logit ", double(x), " of token ", id,
                    " into ", double(y), " (overflow)");
            x = y;
        }
    }
};

//! Bans tokens: their logits become -inf. Throws for an empty row or an id outside [0, V) (checked on use).
struct banned_tokens {
    std::vector<std::int32_t> ids; //!< token ids to ban
    static constexpr bool support_aware = true; //!< see `logits_processor`: ignores entries outside the support

    //! Nothing to check before the vocabulary size is known.
    void check() const {}
    //! Applies the ban to `row` in place.
    template <class T>
    void process(std::span<T> row, sampling_context<T>&) const {
        sampling_detail::require_nonempty(row.size(), "banned_tokens");
        for (std::int32_t id : ids) {
            sampling_detail::require_token(id, row.size(), "banned_tokens", "ids");
            row[static_cast<std::size_t>(id)] = sampling_detail::neg_inf<T>;
        }
    }
};

} // namespace selfreplay
