#pragma once
//! \file
//! The combined objective of the paper, loss = NTP_theta(x) + sum_i c_i R_i, with its logit
//! gradients: `mix_batch` (before the forward passes) and `evaluate_objective` (after them).
//!
//! A training step with a mixer `m` (the trainer owns the models and autodiff):
//! 1. draw a replay batch r when `M::needs_replay_batch` (`source.draw(r)`);
//! 2. `mix_batch(m, step, x, r)`: overwrites rows of x when m replaces rows;
//! 3. run theta on x, and what m's `needs_*` members ask for: theta on r, pi on r, pi on x;
//! 4. `evaluate_objective(m, step, inputs, gradients)`: the loss, its components, and
//!    d loss / d logits for x and r, to backpropagate through theta.
//!
//! The linear form, `evaluate_objective(m, step, matmul, linear_inputs, linear_gradients)`, takes
//! each model's final hidden states and output projection instead of logits (step 3 stops before
//! the output layer) and returns d loss / d hidden states, W and bias; no [rows, V] buffer is
//! allocated for theta or pi.

#include <cstdint>
#include <utility>
#include <string>
#include <string_view>
#include <type_traits>

#include "selfreplay/error.hpp"
#include "selfreplay/losses/cross_entropy.hpp"
#include "selfreplay/losses/linear.hpp"
#include "selfreplay/losses/matmul.hpp"
#include "selfreplay/replay/mixer.hpp"
#include "selfreplay/replay/source.hpp"

namespace selfreplay {

namespace detail {
//! "[a, b]": a shape in an error message.
inline std::string shape_text(index_t a, index_t b) {
    std::string text = "[";
    detail::append_message_part(text, a);
    text += ", ";
    detail::append_message_part(text, b);
    return text += "]";
}

template <class V>
void require_present(const V& v, std::string_view argument, std::string_view why) {
    require(v.data() != nullptr, "evaluate_objective", argument, "is missing: ", why);
}

//! Throws unless `v` is [rows, cols]; `what` (a string, or a callable returning one, called only
//! on failure) names what it must match.
template <class A, class W>
void require_shape(const strided_view<A, 2>& v, index_t rows, index_t cols, std::string_view argument, W&& what) {
    if (v.extent(0) == rows && v.extent(1) == cols) return;
    std::string w;
    if constexpr (std::is_invocable_v<W>)
        w = what();
    else
        w = std::string(what);
    throw invalid_argument("evaluate_objective", argument,
                           "has shape " + shape_text(v.extent(0), v.extent(1)) + " but " + w + " is " + shape_text(rows, cols));
}
//! The global positions of `options` (rows * L, 0 when not sharded), checked against the local
//! rows B and R: a global row count must be 0 or at least the local one.
inline std::pair<double, double> global_positions(const objective_options& options, index_t B, index_t R, index_t L) {
    require(options.global_train_rows == 0 || options.global_train_rows >= B, "evaluate_objective",
            "options.global_train_rows", "must be 0 (not sharded) or at least the ", B, " rows of the training batch, got ",
            options.global_train_rows);
    require(options.global_replay_rows == 0 || options.global_replay_rows >= R, "evaluate_objective",
            "options.global_replay_rows", "must be 0 (not sharded) or at least the ", R, " rows of the replay batch, got ",
            options.global_replay_rows);
    return {static_cast<double>(options.global_train_rows * L), static_cast<double>(options.global_replay_rows * L)};
}
} // namespace detail

//! Overwrites rows 0 .. n-1 of `train_tokens` ([B, L] int32 or int64 ids, any tensor) with rows
//! 0 .. n-1 of `replay_tokens` ([R, L], either id type), n = `mixer.replace_rows(step, B)`, and
//! returns n (0 for every mixer but `replace`). Throws `invalid_argument` when the replay batch
//! has fewer than n rows or another sequence length.
template <replay_mixer M, class X, class Y>
index_t mix_batch(const M& mixer, std::int64_t step, X&& train_tokens, const Y& replay_tokens) {
    auto x = view<2>(train_tokens);
    using Id = typename decltype(x)::element_type;
    static_assert(token_id<Id>, "selfreplay::mix_batch: train_tokens must be a writable tensor of std::int32_t or std::int64_t");
    const index_t n = static_cast<index_t>(mixer.replace_rows(step, x.extent(0)));
    if (n == 0) return 0;
    const auto r = detail::token_rows(replay_tokens, x.extent(1), "mix_batch", "replay_tokens");
    require(r.extent(0) >= n, "mix_batch", "replay_tokens", "has ", r.extent(0), " rows, fewer than the ", n,
            " rows to replace");
    for (index_t b = 0; b < n; ++b)
        for (index_t t = 0; t < x.extent(1); ++t) x(b, t) = static_cast<Id>(r(b, t));
    return n;
}

//! Evaluates loss = NTP_theta(x) + sum of the mixer's terms c_i R_i at `step` (NTP and KL with the
//! reference code's semantics: last position not counted, mean over all positions), and, when
//! `gradients.train` is given, writes d loss / d student_train_logits into it and
//! d loss / d student_replay_logits into `gradients.replay` (overwriting both).
//!
//! Refuses (throws `invalid_argument` naming the input) a call that lacks an input the mixer
//! needs (`M::needs_*`), a replay batch whose sequence length or vocabulary differs from the
//! training batch's, reference logits whose shape differs from the student's, a gradient output
//! of the wrong shape, a negative or non-finite coefficient, token ids outside [0, V), and a global
//! row count (`options.global_train_rows`, `global_replay_rows`) below the local one.
//!
//! Data parallelism: with `options.global_train_rows` / `global_replay_rows` set, each rank passes
//! its shard of the global batches; the terms are normalised by the global positions, so the
//! ranks' `total`s, terms and gradients sum to those of one call on the global batch.
template <replay_mixer M, class T>
objective_result<M::terms> evaluate_objective(const M& mixer, std::int64_t step, const objective_inputs<T>& in,
                                              const objective_gradients<T>& gradients = {},
                                              const objective_options& options = {}) {
    static_assert(std::is_floating_point_v<T>, "selfreplay::evaluate_objective: logits must be float or double");
    detail::require_present(in.train_tokens, "inputs.train_tokens", "the training batch is always required");
    detail::require_present(in.student_train_logits, "inputs.student_train_logits",
                            "theta's logits on the training batch are always required");
    const index_t B = in.train_tokens.extent(0), L = in.train_tokens.extent(1), V = in.student_train_logits.extent(1);
    detail::require_shape(in.student_train_logits, B * L, V, "inputs.student_train_logits",
                                         [&] { return "[B*L, V] for train_tokens " + detail::shape_text(B, L); });
    const bool grads = gradients.train.data() != nullptr;
    if (grads)
        detail::require_shape(gradients.train, B * L, V, "gradients.train", "student_train_logits");
    if constexpr (M::needs_reference_train_logits) {
        detail::require_present(in.reference_train_logits, "inputs.reference_train_logits",
                                "this mixer needs pi's logits on the training batch (needs_reference_train_logits)");
        detail::require_shape(in.reference_train_logits, B * L, V, "inputs.reference_train_logits",
                                             "student_train_logits");
    }
    if constexpr (M::needs_student_replay_logits || M::needs_reference_replay_logits) {
        detail::require_present(in.replay_tokens, "inputs.replay_tokens", "this mixer needs the replay batch");
        require(in.replay_tokens.extent(1) == L, "evaluate_objective", "inputs.replay_tokens", "has sequence length ",
                in.replay_tokens.extent(1), " but the training batch has ", L);
        const index_t R = in.replay_tokens.extent(0);
        auto check_replay_logits = [&](const auto& v, std::string_view argument) {
            require(v.extent(1) == V, "evaluate_objective", argument, "has vocabulary size ", v.extent(1),
                    " but the training logits have ", V);
            detail::require_shape(v, R * L, V, argument,
                                  [&] { return "[R*L, V] for replay_tokens " + detail::shape_text(R, L); });
        };
        if constexpr (M::needs_student_replay_logits) {
            detail::require_present(in.student_replay_logits, "inputs.student_replay_logits",
                                    "this mixer needs theta's logits on the replay batch (needs_student_replay_logits)");
            check_replay_logits(in.student_replay_logits, "inputs.student_replay_logits");
            if (grads) {
                detail::require_present(gradients.replay, "gradients.replay",
                                        "this mixer puts a gradient on theta's replay logits");
                check_replay_logits(gradients.replay, "gradients.replay");
            }
        }
        if constexpr (M::needs_reference_replay_logits) {
            detail::require_present(in.reference_replay_logits, "inputs.reference_replay_logits",
                                    "this mixer needs pi's logits on the replay batch (needs_reference_replay_logits)");
            check_replay_logits(in.reference_replay_logits, "inputs.reference_replay_logits");
        }
    }

    objective_result<M::terms> result;
    const auto [train_positions, replay_positions] =
        detail::global_positions(options, B, in.replay_tokens.data() ? in.replay_tokens.extent(0) : 0, L);
    next_token_options ntp{.threads = options.threads};
    if (train_positions > 0) ntp.reduction = reduction::sum, ntp.scale = 1.0 / train_positions;
    result.train_ntp = in.train_tokens.visit([&](const auto& tokens) {
        return grads ? next_token_loss(in.student_train_logits, tokens, gradients.train, ntp).value
                     : next_token_loss(in.student_train_logits, tokens, ntp).value;
    });
    objective_context<T> ctx(step, in, gradients, L, options.threads, result.terms.data(), M::terms);
    ctx.set_global_positions(train_positions, replay_positions);
    mixer.add_terms(ctx);
    if (grads && (M::needs_student_replay_logits)) ctx.finish();
    result.total = result.train_ntp;
    for (const auto& t : result.terms) result.total += t.weighted;
    return result;
}

namespace detail {
//! Throws unless `v` (when given, or always when `required`) has `rows` rows and `cols` columns
//! (cols < 0: any); `what` says where the expected shape comes from.
template <class A>
void require_linear_shape(const strided_view<A, 2>& v, bool required, index_t rows, index_t cols,
                          std::string_view argument, std::string_view why, std::string_view what) {
    if (v.data() == nullptr) {
        require(!required, "evaluate_objective", argument, "is missing: ", why);
        return;
    }
    if (v.extent(0) != rows || (cols >= 0 && v.extent(1) != cols))
        throw invalid_argument("evaluate_objective", argument,
                               "has shape " + shape_text(v.extent(0), v.extent(1)) + " but " + std::string(what) + " needs " +
                                   (cols < 0 ? "[" + std::to_string(rows) + ", D]" : shape_text(rows, cols)));
}
} // namespace detail

//! The linear form: evaluates the same objective as above (same terms, same semantics, equal
//! within float rounding) from hidden states and output projections, through the linear losses
//! (`linear_next_token_loss`, `linear_kl_divergence`) with the backend `mm`, and writes
//! d loss / d student_train_hidden, d loss / d student_replay_hidden, d loss / d student_weight
//! (through both batches) and d loss / d student_bias into `gradients` (those given; overwriting).
//! Works with the library's mixers and with any mixer that adds its terms through the
//! `objective_context` helpers (a mixer asking for a logit gradient is refused).
//!
//! Refuses (throws `invalid_argument` naming the input) what the logits form refuses, in terms of
//! hidden states: a missing input the mixer needs (theta's or pi's hidden states, pi's weight), hidden
//! states whose rows are not the positions of their batch, gradients of the wrong shape; and what
//! the linear losses refuse (non-finite weights, mismatched widths and vocabularies).
template <replay_mixer M, class T, class Mm>
objective_result<M::terms> evaluate_objective(const M& mixer, std::int64_t step, const Mm& mm,
                                              const linear_objective_inputs<T>& in,
                                              const linear_objective_gradients<T>& gradients = {},
                                              const objective_options& options = {},
                                              const linear_options& chunking = {}) {
    detail::require_matmul<Mm, T>();
    detail::require_present(in.train_tokens, "inputs.train_tokens", "the training batch is always required");
    detail::require_present(in.student_train_hidden, "inputs.student_train_hidden",
                            "theta's hidden states on the training batch are always required");
    detail::require_present(in.student_weight, "inputs.student_weight", "theta's output projection is always required");
    const index_t B = in.train_tokens.extent(0), L = in.train_tokens.extent(1), D = in.student_train_hidden.extent(1);
    const index_t V = in.student_weight.extent(0);
    detail::require_linear_shape(in.student_train_hidden, true, B * L, D, "inputs.student_train_hidden", "",
                                 "train_tokens " + detail::shape_text(B, L) + " (B*L rows)");
    detail::require_linear_shape(in.student_weight, true, V, D, "inputs.student_weight", "",
                                 "student_train_hidden's width (D)");
    detail::require_linear_shape(gradients.train_hidden, false, B * L, D, "gradients.train_hidden", "",
                                 "student_train_hidden");
    detail::require_linear_shape(gradients.weight, false, V, D, "gradients.weight", "", "student_weight");
    if (gradients.bias.data() != nullptr)
        require(gradients.bias.extent(0) == V, "evaluate_objective", "gradients.bias", "has ", gradients.bias.extent(0),
                " entries but V = ", V);
    if constexpr (M::needs_reference_train_logits) {
        detail::require_linear_shape(in.reference_train_hidden, true, B * L, -1, "inputs.reference_train_hidden",
                                     "this mixer needs pi's hidden states on the training batch (needs_reference_train_logits)",
                                     "train_tokens " + detail::shape_text(B, L) + " (B*L rows)");
    }
    if constexpr (M::needs_reference_train_logits || M::needs_reference_replay_logits)
        detail::require_present(in.reference_weight, "inputs.reference_weight", "this mixer needs pi's output projection");
    if constexpr (M::needs_student_replay_logits || M::needs_reference_replay_logits) {
        detail::require_present(in.replay_tokens, "inputs.replay_tokens", "this mixer needs the replay batch");
        require(in.replay_tokens.extent(1) == L, "evaluate_objective", "inputs.replay_tokens", "has sequence length ",
                in.replay_tokens.extent(1), " but the training batch has ", L);
        const index_t R = in.replay_tokens.extent(0);
        const std::string rows = "replay_tokens " + detail::shape_text(R, L) + " (R*L rows)";
        if constexpr (M::needs_student_replay_logits) {
            detail::require_linear_shape(in.student_replay_hidden, true, R * L, D, "inputs.student_replay_hidden",
                                         "this mixer needs theta's hidden states on the replay batch "
                                         "(needs_student_replay_logits)",
                                         rows);
            detail::require_linear_shape(gradients.replay_hidden, gradients.train_hidden.data() != nullptr, R * L, D,
                                         "gradients.replay_hidden",
                                         "this mixer puts a gradient on theta's replay hidden states", rows);
        }
        if constexpr (M::needs_reference_replay_logits)
            detail::require_linear_shape(in.reference_replay_hidden, true, R * L, -1, "inputs.reference_replay_hidden",
                                         "this mixer needs pi's hidden states on the replay batch "
                                         "(needs_reference_replay_logits)",
                                         rows);
    }

    objective_result<M::terms> result;
    const auto [train_positions, replay_positions] =
        detail::global_positions(options, B, in.replay_tokens.data() ? in.replay_tokens.extent(0) : 0, L);
    const detail::linear_objective_state<T> state{in, gradients, matmul_ref<T>(mm), chunking};
    next_token_options ntp{.threads = options.threads};
    if (train_positions > 0) ntp.reduction = reduction::sum, ntp.scale = 1.0 / train_positions;
    result.train_ntp = in.train_tokens.visit([&](const auto& tokens) {
        return linear_next_token_loss(state.mm, state.student(in.student_train_hidden), tokens,
                                      state.gradients(gradients.any(), gradients.train_hidden), ntp, chunking)
            .value;
    });
    objective_context<T> ctx(step, state, L, options.threads, result.terms.data(), M::terms);
    ctx.set_global_positions(train_positions, replay_positions);
    mixer.add_terms(ctx);
    if (gradients.any() && (M::needs_student_replay_logits)) ctx.finish();
    result.total = result.train_ntp;
    for (const auto& t : result.terms) result.total += t.weighted;
    return result;
}

//! Any call of `mix_batch` whose mixer does not model `replay_mixer`: stops compilation with one
//! sentence naming the concept and the argument.
template <class M, class... Rest>
    requires(!replay_mixer<M>)
index_t mix_batch(const M&, const Rest&...) {
    static_assert(detail::always_false<M>,
                  "selfreplay::mix_batch: argument 'mixer' does not model selfreplay::replay_mixer " SELFREPLAY_MIXER_HINT);
    return 0;
}

//! Any call of `evaluate_objective` whose mixer does not model `replay_mixer`: as above.
template <class M, class... Rest>
    requires(!replay_mixer<M>)
void evaluate_objective(const M&, const Rest&...) {
    static_assert(detail::always_false<M>,
                  "selfreplay::evaluate_objective: argument 'mixer' does not model selfreplay::replay_mixer "
                  SELFREPLAY_MIXER_HINT);
}

} // namespace selfreplay
