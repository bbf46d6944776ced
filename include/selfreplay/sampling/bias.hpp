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
//! bans the token. Throws for a NaN or +inf bias, or an id outside [0, V) (checked on use).
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
    void process(std::span<T> row, sampling_context<T>&) const {
        check();
        for (const auto& [id, b] : bias) {
            sampling_detail::require_token(id, row.size(), "logit_bias", "bias");
            row[static_cast<std::size_t>(id)] += static_cast<T>(b);
        }
    }
};

//! Bans tokens: their logits become -inf. Throws for an id outside [0, V) (checked on use).
struct banned_tokens {
    std::vector<std::int32_t> ids; //!< token ids to ban
    static constexpr bool support_aware = true; //!< see `logits_processor`: ignores entries outside the support

    //! Nothing to check before the vocabulary size is known.
    void check() const {}
    //! Applies the ban to `row` in place.
    template <class T>
    void process(std::span<T> row, sampling_context<T>&) const {
        for (std::int32_t id : ids) {
            sampling_detail::require_token(id, row.size(), "banned_tokens", "ids");
            row[static_cast<std::size_t>(id)] = sampling_detail::neg_inf<T>;
        }
    }
};

} // namespace selfreplay
