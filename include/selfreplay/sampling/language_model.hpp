#pragma once
//! \file
//! The `language_model` concept (next-token logits for a batch of prefixes) and its optional
//! incremental form `incremental_language_model` (the model keeps per-row state, e.g. a KV cache,
//! and takes one token per row per step). Token ids are `std::int32_t` or `std::int64_t`
//! (`token_id`): a model takes whichever it was written for.

#include <concepts>
#include <cstdint>
#include <type_traits>

#include "selfreplay/tensor/strided_view.hpp"
#include "selfreplay/tensor/token_ids.hpp"

namespace selfreplay {

//! The end of the sentence with which a function rejects an argument that does not model
//! `language_model` (a string literal, for `static_assert`).
#define SELFREPLAY_LANGUAGE_MODEL_HINT                                                                   \
    "(it needs vocab_size() and next_token_logits(strided_view<const Id, 2> prefixes [B, L], " \
    "strided_view<Logit, 2> logits [B, V]), Id std::int32_t or std::int64_t)"

//! A `language_model` whose prefixes hold ids of type `Id` (`std::int32_t` or `std::int64_t`).
template <class M, class Logit, class Id>
concept language_model_over = token_id<Id> && requires(M& m, strided_view<const Id, 2> prefixes,
                                                         strided_view<Logit, 2> logits) {
    { m.vocab_size() } -> std::convertible_to<index_t>;
    m.next_token_logits(prefixes, logits);
};

//! A model that gives next-token logits for a batch of prefixes.
//!
//! \par Required expressions
//! For `m` an lvalue of `M`:
//! - `m.vocab_size()` -> the vocabulary size V (convertible to `index_t`);
//! - `m.next_token_logits(strided_view<const Id, 2> prefixes, strided_view<Logit, 2> logits)`
//!   with `Id` = `std::int32_t` or `std::int64_t`: `prefixes` is [B, L] (every row has the same
//!   length L >= 1, row b is a token prefix), the model writes into `logits` [B, V] the logits of
//!   the token following each prefix. Row b's logits must depend only on row b's prefix.
//! `Logit` is the logit element type (float by default; double also works).
//!
//! \par Models
//! `libtorch::module_language_model` and `libtorch::incremental_module_language_model`
//! (selfreplay/adapters/torch.hpp), the lab's adapter (examples/lab/lm_adapter.hpp), the bigram
//! model of tests/sampling; any user type with these two members.
template <class M, class Logit = float>
concept language_model = language_model_over<M, Logit, std::int32_t> || language_model_over<M, Logit, std::int64_t>;

//! An `incremental_language_model` whose tokens hold ids of type `Id`.
template <class M, class Logit, class Id>
concept incremental_language_model_over =
    language_model_over<M, Logit, Id> && requires(M& m, index_t batch, strided_view<const Id, 1> tokens,
                                                  strided_view<Logit, 2> logits) {
        m.reset(batch);
        m.step(tokens, logits);
    };

//! A `language_model` that also offers the incremental form, which `generate` uses instead:
//! - `m.reset(B)`: start B empty sequences;
//! - `m.step(strided_view<const Id, 1> tokens, strided_view<Logit, 2> logits)`: append
//!   `tokens[b]` to sequence b (all B rows every step) and write into `logits` [B, V] the logits
//!   of the token following each sequence.
template <class M, class Logit = float>
concept incremental_language_model = incremental_language_model_over<M, Logit, std::int32_t> ||
                                     incremental_language_model_over<M, Logit, std::int64_t>;

//! The id type a model is driven with: `Preferred` when it takes it, else the one it takes
//! (int32 first).
template <class M, class Logit, class Preferred = std::int32_t>
using model_token_t =
    std::conditional_t<language_model_over<M, Logit, Preferred>, Preferred,
                       std::conditional_t<language_model_over<M, Logit, std::int32_t>, std::int32_t, std::int64_t>>;

} // namespace selfreplay
