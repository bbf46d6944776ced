#pragma once
//! \file
//! The `language_model` concept (next-token logits for a batch of prefixes) and its optional
//! incremental form `incremental_language_model` (the model keeps per-row state, e.g. a KV cache,
//! and takes one token per row per step).

#include <concepts>
#include <cstdint>

#include "selfreplay/tensor/strided_view.hpp"

namespace selfreplay {

//! A model that gives next-token logits for a batch of prefixes:
//! - `m.vocab_size()` -> the vocabulary size V (convertible to `index_t`);
//! - `m.next_token_logits(strided_view<const std::int32_t, 2> prefixes,
//!   strided_view<Logit, 2> logits)`: `prefixes` is [B, L] (every row has the same length L >= 1,
//!   row b is a token prefix), the model writes into `logits` [B, V] the logits of the token
//!   following each prefix. Row b's logits must depend only on row b's prefix.
//! `Logit` is the logit element type (float by default; double also works).
template <class M, class Logit = float>
concept language_model = requires(M& m, strided_view<const std::int32_t, 2> prefixes, strided_view<Logit, 2> logits) {
    { m.vocab_size() } -> std::convertible_to<index_t>;
    m.next_token_logits(prefixes, logits);
};

//! A `language_model` that also offers the incremental form, which `generate` uses instead:
//! - `m.reset(B)`: start B empty sequences;
//! - `m.step(strided_view<const std::int32_t, 1> tokens, strided_view<Logit, 2> logits)`: append
//!   `tokens[b]` to sequence b (all B rows every step) and write into `logits` [B, V] the logits
//!   of the token following each sequence.
template <class M, class Logit = float>
concept incremental_language_model =
    language_model<M, Logit> && requires(M& m, index_t batch, strided_view<const std::int32_t, 1> tokens,
                                         strided_view<Logit, 2> logits) {
        m.reset(batch);
        m.step(tokens, logits);
    };

} // namespace selfreplay
