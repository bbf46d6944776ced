#pragma once
//! \file
//! The `replay_mixer` concept, and what the combined objective hands a mixer: the inputs (tokens
//! and logits of the training and replay batches, or, in the linear form, hidden states and output
//! projections), the gradient outputs, and the `objective_context` through which a mixer adds its
//! terms.

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "selfreplay/error.hpp"
#include "selfreplay/losses/cross_entropy.hpp"
#include "selfreplay/losses/kl.hpp"
#include "selfreplay/losses/linear.hpp"
#include "selfreplay/losses/matmul.hpp"
#include "selfreplay/replay/source.hpp"
#include "selfreplay/schedules/concept.hpp"

namespace selfreplay {

//! What a trainer hands to `evaluate_objective` for one step; element type `T` = float or double.
//! Logits are rank 2, one row per position: row b*L + t is position t of sequence b (use
//! `merge_leading` on [B, L, V] logits). An input the mixer does not need may stay empty.
template <class T>
struct objective_inputs {
    const_token_batch_view train_tokens{};              //!< [B, L] training batch (after `mix_batch`), int32 or int64 ids
    tensor_ref<const T, 2> student_train_logits{};      //!< [B*L, V] theta's logits on the training batch
    const_token_batch_view replay_tokens{};             //!< [R, L] replay batch, int32 or int64 ids
    tensor_ref<const T, 2> student_replay_logits{};     //!< [R*L, V] theta's logits on the replay batch
    tensor_ref<const T, 2> reference_replay_logits{};   //!< [R*L, V] pi's logits on the replay batch
    tensor_ref<const T, 2> reference_train_logits{};    //!< [B*L, V] pi's logits on the training batch
};

//! Where `evaluate_objective` writes d total / d logits (overwriting). Both empty: value only.
template <class T>
struct objective_gradients {
    tensor_ref<T, 2> train{};    //!< [B*L, V] gradient w.r.t. `student_train_logits`
    tensor_ref<T, 2> replay{};   //!< [R*L, V] gradient w.r.t. `student_replay_logits` (when the mixer uses them)
};

//! The linear form of `objective_inputs`: each model's final hidden states and its output
//! projection instead of logits (logits = hidden * weight^T + bias, never stored whole; see
//! `linear_next_token_loss`). Hidden states have one row per position (row b*L + t). An input the
//! mixer does not need may stay empty.
template <class T>
struct linear_objective_inputs {
    const_token_batch_view train_tokens{};              //!< [B, L] training batch (after `mix_batch`)
    tensor_ref<const T, 2> student_train_hidden{};      //!< [B*L, D] theta's hidden states on the training batch
    const_token_batch_view replay_tokens{};             //!< [R, L] replay batch
    tensor_ref<const T, 2> student_replay_hidden{};     //!< [R*L, D] theta's hidden states on the replay batch
    tensor_ref<const T, 2> reference_replay_hidden{};   //!< [R*L, D_pi] pi's hidden states on the replay batch
    tensor_ref<const T, 2> reference_train_hidden{};    //!< [B*L, D_pi] pi's hidden states on the training batch
    tensor_ref<const T, 2> student_weight{};            //!< theta's output projection W [V, D]
    tensor_ref<const T, 1> student_bias{};              //!< theta's output bias [V] (optional)
    tensor_ref<const T, 2> reference_weight{};          //!< pi's output projection [V, D_pi] (when pi is used)
    tensor_ref<const T, 1> reference_bias{};            //!< pi's output bias [V] (optional)
};

//! Where the linear form of `evaluate_objective` writes d total / d (theta's hidden states, W,
//! bias), overwriting. Empty views are not computed; all empty: value only.
template <class T>
struct linear_objective_gradients {
    tensor_ref<T, 2> train_hidden{};    //!< [B*L, D] w.r.t. `student_train_hidden`
    tensor_ref<T, 2> replay_hidden{};   //!< [R*L, D] w.r.t. `student_replay_hidden` (when the mixer uses them)
    tensor_ref<T, 2> weight{};          //!< [V, D] w.r.t. `student_weight` (through both batches)
    tensor_ref<T, 1> bias{};            //!< [V] w.r.t. `student_bias`

    //! True when some gradient is asked for.
    bool any() const noexcept {
        return train_hidden.data() != nullptr || replay_hidden.data() != nullptr || weight.data() != nullptr ||
               bias.data() != nullptr;
    }
};

namespace detail {
//! The linear form of one objective evaluation, as `objective_context` sees it.
template <class T>
struct linear_objective_state {
    const linear_objective_inputs<T>& in;
    const linear_objective_gradients<T>& out;
    matmul_ref<T> mm;
    linear_options chunking;

    linear_head<T> student(const strided_view<const T, 2>& hidden) const {
        return {hidden, in.student_weight, in.student_bias};
    }
    linear_head<T> reference(const strided_view<const T, 2>& hidden) const {
        return {hidden, in.reference_weight, in.reference_bias};
    }
    linear_gradients<T> gradients(bool grad, const strided_view<T, 2>& hidden) const {
        if (!grad) return {};
        return {hidden, out.weight, out.bias};
    }
};
} // namespace detail

//! Settings of `evaluate_objective`.
struct objective_options {
    int threads = 1; //!< threads for the loss kernels (results are bit-identical for any count)
    //! Data parallelism: the rows of the global training batch this call's training batch is a
    //! shard of. Every term on the training batch is then normalised by the global positions
    //! (global_train_rows * L) instead of the local B * L, so that the ranks' values and gradients
    //! sum to those of one call on the global batch (each logit-gradient row is bit for bit the
    //! unsharded one). 0: this call's B (no sharding). Otherwise >= B.
    index_t global_train_rows = 0;
    //! The same for the replay batch: rows of the global replay batch (0: this call's R; else >= R).
    index_t global_replay_rows = 0;
};

//! One additive component of the objective: `coefficient * value`, as the reference code's
//! `reg_coeff * loss_reg`.
struct objective_term {
    std::string_view name{}; //!< the mixer's name for it ("ntp_pre", "kl_pre", "kl_dwn", ...)
    double coefficient = 0;  //!< c at this step
    double value = 0;        //!< R: the unweighted regulariser, in nats
    double weighted = 0;     //!< c * R as added to the total (computed by the fused kernel)
};

//! The value of the combined objective loss = NTP_theta(x) + sum_i c_i R_i and its components;
//! `N` = number of terms the mixer adds.
template <std::size_t N>
struct objective_result {
    double total = 0;                   //!< train_ntp + sum of the terms' `weighted`
    double train_ntp = 0;               //!< NTP_theta(x): next-token loss on the training batch
    std::array<objective_term, N> terms{}; //!< the mixer's terms, in the order it added them
};

//! The view of one objective evaluation that a mixer's `add_terms` works through: the step, the
//! inputs, and helpers that add a weighted term with its gradient in one fused pass, from logits
//! or, in the linear form, from hidden states (the same helpers serve both).
//! Gradients accumulate: the training-batch gradient already holds NTP's when `add_terms` runs;
//! the replay-batch gradient starts with the first term that writes it.
template <class T>
class objective_context {
public:
    //! Internal: built by `evaluate_objective` (logits form).
    objective_context(std::int64_t step, const objective_inputs<T>& in, const objective_gradients<T>& out,
                      index_t seq_len, int threads, objective_term* terms, std::size_t capacity) noexcept
        : step_(step), in_(&in), out_(&out), seq_len_(seq_len), threads_(threads), terms_(terms), capacity_(capacity) {}

    //! Internal: built by `evaluate_objective` (linear form).
    objective_context(std::int64_t step, const detail::linear_objective_state<T>& linear, index_t seq_len, int threads,
                      objective_term* terms, std::size_t capacity) noexcept
        : step_(step), in_(&no_inputs()), out_(&no_gradients()), linear_(&linear), seq_len_(seq_len), threads_(threads),
          terms_(terms), capacity_(capacity) {}

    std::int64_t step() const noexcept { return step_; }                //!< the training step
    const objective_inputs<T>& inputs() const noexcept { return *in_; } //!< tokens and logits (empty logits in the linear form)
    //! The linear form's inputs (hidden states and projections), or nullptr in the logits form.
    const linear_objective_inputs<T>* linear_inputs() const noexcept { return linear_ ? &linear_->in : nullptr; }
    index_t sequence_length() const noexcept { return seq_len_; }        //!< L
    int threads() const noexcept { return threads_; }                   //!< threads for loss kernels
    //! Whether gradients are asked for.
    bool computes_gradients() const noexcept { return linear_ ? linear_->out.any() : out_->train.data() != nullptr; }

    //! Adds c * NTP_theta(replay) (`ntp_pre`), with its gradient into the replay gradient.
    void add_replay_ntp(std::string_view name, double c) {
        if (linear_) {
            add(name, c, [&](bool grad, double scale, bool) {
                if (grad) start_replay();
                const auto o = normalised(next_token_options{.scale = scale, .accumulate = true, .threads = threads_},
                                          replay_positions_);
                return linear_->in.replay_tokens.visit([&](const auto& tokens) {
                    return linear_next_token_loss(linear_->mm, linear_->student(linear_->in.student_replay_hidden), tokens,
                                                  linear_->gradients(grad, linear_->out.replay_hidden), o, linear_->chunking)
                        .value;
                });
            }, replay_started_, true);
            return;
        }
        add(name, c, [&](bool grad, double scale, bool acc) {
            const auto o = normalised(next_token_options{.scale = scale, .accumulate = acc, .threads = threads_},
                                      replay_positions_);
            return in_->replay_tokens.visit([&](const auto& tokens) {
                return grad ? next_token_loss(in_->student_replay_logits, tokens, out_->replay, o).value
                            : next_token_loss(in_->student_replay_logits, tokens, o).value;
            });
        }, replay_started_, out_->replay.data() != nullptr);
    }

    //! Adds c * KL(pi || theta) on the replay batch (`kl_pre`; `direction` reverse: KL(theta || pi)).
    void add_replay_kl(std::string_view name, double c, kl_direction direction = kl_direction::forward) {
        if (linear_) {
            add(name, c, [&](bool grad, double scale, bool) {
                if (grad) start_replay();
                const auto o = normalised(kl_options{.direction = direction, .sequence_length = seq_len_, .scale = scale,
                                                     .accumulate = true, .threads = threads_},
                                          replay_positions_);
                return linear_kl_divergence(linear_->mm, linear_->student(linear_->in.student_replay_hidden),
                                            linear_->reference(linear_->in.reference_replay_hidden),
                                            linear_->gradients(grad, linear_->out.replay_hidden), o, linear_->chunking)
                    .value;
            }, replay_started_, true);
            return;
        }
        add(name, c, [&](bool grad, double scale, bool acc) {
            const auto o = normalised(kl_options{.direction = direction, .sequence_length = seq_len_, .scale = scale,
                                                 .accumulate = acc, .threads = threads_},
                                      replay_positions_);
            return grad ? kl_divergence(in_->student_replay_logits, in_->reference_replay_logits, out_->replay, o).value
                        : kl_divergence(in_->student_replay_logits, in_->reference_replay_logits, o).value;
        }, replay_started_, out_->replay.data() != nullptr);
    }

    //! Adds c * KL(pi || theta) on the training batch (`kl_dwn`), with its gradient into the
    //! training gradient.
    void add_train_kl(std::string_view name, double c, kl_direction direction = kl_direction::forward) {
        bool started = true; // NTP's gradient is already there
        if (linear_) {
            add(name, c, [&](bool grad, double scale, bool) {
                const auto o = normalised(kl_options{.direction = direction, .sequence_length = seq_len_, .scale = scale,
                                                     .accumulate = true, .threads = threads_},
                                          train_positions_);
                return linear_kl_divergence(linear_->mm, linear_->student(linear_->in.student_train_hidden),
                                            linear_->reference(linear_->in.reference_train_hidden),
                                            linear_->gradients(grad, linear_->out.train_hidden), o, linear_->chunking)
                    .value;
            }, started, true);
            return;
        }
        add(name, c, [&](bool grad, double scale, bool acc) {
            const auto o = normalised(kl_options{.direction = direction, .sequence_length = seq_len_, .scale = scale,
                                                 .accumulate = acc, .threads = threads_},
                                      train_positions_);
            return grad ? kl_divergence(in_->student_train_logits, in_->reference_train_logits, out_->train, o).value
                        : kl_divergence(in_->student_train_logits, in_->reference_train_logits, o).value;
        }, started, out_->train.data() != nullptr);
    }

    //! Records a term a mixer computed itself (its gradient added through `train_gradient()` /
    //! `replay_gradient()`); `weighted` = coefficient * value.
    void add_term(std::string_view name, double coefficient, double value) {
        push({name, coefficient, value, coefficient * value});
    }

    //! The training-batch logit gradient, holding the terms so far; add to it. Throws
    //! `invalid_argument` in the linear form, which has no logit gradient.
    strided_view<T, 2> train_gradient() const {
        require_logits_form("train_gradient()");
        return out_->train;
    }

    //! The replay-batch logit gradient, holding the terms so far (zero-filled at first access); add
    //! to it. Throws `invalid_argument` in the linear form.
    strided_view<T, 2> replay_gradient() {
        require_logits_form("replay_gradient()");
        start_replay();
        return out_->replay;
    }

    //! Internal: zero-fills the replay gradient when no term wrote it.
    void finish() { start_replay(); }

    //! Internal (set by `evaluate_objective` from `objective_options`): positions of the global
    //! training and replay batches that normalise the terms (0: the local mean).
    void set_global_positions(double train, double replay) noexcept { train_positions_ = train, replay_positions_ = replay; }

private:
    static const objective_inputs<T>& no_inputs() noexcept {
        static const objective_inputs<T> none{};
        return none;
    }
    static const objective_gradients<T>& no_gradients() noexcept {
        static const objective_gradients<T> none{};
        return none;
    }

    //! `o` normalised by `positions` global positions (sum over this shard / positions; the
    //! gradient factor scale / positions equals the unsharded scale / (B * L) when B is global).
    template <class O>
    static O normalised(O o, double positions) noexcept {
        if (positions > 0) o.reduction = reduction::sum, o.scale /= positions;
        return o;
    }

    void require_logits_form(std::string_view what) const {
        if (linear_)
            throw invalid_argument("evaluate_objective", "mixer",
                                   "asks for " + std::string(what) +
                                       ", a logit gradient, which the linear form (hidden states) does not have");
    }

    template <class F>
    void add(std::string_view name, double c, F&& run, bool& started, bool has_gradient) {
        const bool grad = computes_gradients() && has_gradient && c != 0;
        if (c == 0) { // value for the record, no weight: the gradient contribution is exactly 0
            const double v = run(false, 1.0, false);
            push({name, c, v, 0.0});
            return;
        }
        const double weighted = run(grad, c, started);
        if (grad) started = true;
        push({name, c, weighted / c, weighted});
    }

    void push(const objective_term& t) {
        if (count_ == capacity_)
            throw invalid_argument("evaluate_objective", "mixer",
                                   "added more terms than its 'terms' member declares (" + std::to_string(capacity_) + ")");
        terms_[count_++] = t;
    }

    void start_replay() {
        if (replay_started_) return;
        const strided_view<T, 2> g = linear_ ? linear_->out.replay_hidden : out_->replay;
        if (g.data() == nullptr) return;
        for (index_t r = 0; r < g.extent(0); ++r)
            for (index_t v = 0; v < g.extent(1); ++v) g(r, v) = T(0);
        replay_started_ = true;
    }

    std::int64_t step_;
    const objective_inputs<T>* in_;
    const objective_gradients<T>* out_;
    const detail::linear_objective_state<T>* linear_ = nullptr;
    index_t seq_len_;
    int threads_;
    objective_term* terms_;
    std::size_t capacity_;
    std::size_t count_ = 0;
    bool replay_started_ = false;
    double train_positions_ = 0, replay_positions_ = 0;
};

//! The end of the sentence with which a function rejects an argument that does not model
//! `replay_mixer` (a string literal, for `static_assert`).
#define SELFREPLAY_MIXER_HINT                                                                                       \
    "(it needs the static constexpr members needs_replay_batch, needs_student_replay_logits, "                     \
    "needs_reference_replay_logits, needs_reference_train_logits and terms, a const replace_rows(step, rows), and " \
    "a const add_terms(ctx) for objective_context<float> and objective_context<double>: one member template "      \
    "template <class T> void add_terms(objective_context<T>& ctx) const serves both)"

//! A replay mixer: how replay enters the training step (the reference code's `reg.method`).
//!
//! \par Required expressions
//! For `m` a const `M`, `step` an `std::int64_t`, `B` an `index_t`, `ctx` an
//! `objective_context<float>&` or `objective_context<double>&` (one member template
//! `template <class T> void add_terms(objective_context<T>&) const` serves both):
//! - `static constexpr bool needs_replay_batch`: the trainer must draw a replay batch;
//! - `static constexpr bool needs_student_replay_logits`: ... and run theta on it;
//! - `static constexpr bool needs_reference_replay_logits`: ... and run pi on it;
//! - `static constexpr bool needs_reference_train_logits`: ... run pi on the training batch;
//! - `static constexpr std::size_t terms`: how many terms `add_terms` adds;
//! - `m.replace_rows(step, B)`: how many leading rows of a B-row training batch `mix_batch`
//!   overwrites with replay rows (0 for all but `replace`);
//! - `m.add_terms(ctx)`: adds its weighted terms (and their logit gradients) to the objective;
//! - optional: `m.check()`, which throws `invalid_argument` for a bad parameter; `strategy` calls
//!   it at its construction (`check_policy`).
//!
//! \par Models
//! `no_replay`, `replace`, `ntp_pre`, `kl_pre`, `kl_dwn`, `mixer_sum` (`a + b`). A user type
//! models it with these members and no registration (examples/custom_strategy,
//! examples/custom_mixer).
template <class M>
concept replay_mixer = requires(const M& m, std::int64_t step, index_t rows, objective_context<float>& cf,
                                objective_context<double>& cd) {
    typename std::bool_constant<M::needs_replay_batch>;
    typename std::bool_constant<M::needs_student_replay_logits>;
    typename std::bool_constant<M::needs_reference_replay_logits>;
    typename std::bool_constant<M::needs_reference_train_logits>;
    typename std::integral_constant<std::size_t, M::terms>;
    { m.replace_rows(step, rows) } -> std::convertible_to<index_t>;
    m.add_terms(cf);
    m.add_terms(cd);
};

//! A replay coefficient (a number or a `schedule`) at `step`, checked finite and >= 0: throws
//! `invalid_argument` naming `where` (the mixer), "coefficient", the value and the step. For
//! user-written mixers as for the library's.
template <number_or_schedule C>
double coefficient_at(const C& c, std::int64_t step, std::string_view where) {
    const double v = value_at(c, step);
    require(v >= 0 && v - v == 0, where, "coefficient", "must be finite and >= 0, got ", v, " at step ", step);
    return v;
}

//! A fraction of the batch (a number or a `schedule`) at `step`, checked in [0, 1]: throws
//! `invalid_argument` naming `where`, "fraction", the value and the step.
template <number_or_schedule F>
double fraction_at(const F& f, std::int64_t step, std::string_view where) {
    const double v = value_at(f, step);
    require(v >= 0 && v <= 1, where, "fraction", "must be in [0, 1], got ", v, " at step ", step);
    return v;
}

//! Checks a replay coefficient at construction: a number must be finite and >= 0 (throws
//! `invalid_argument` naming `where`, "coefficient" and the value); a schedule is checked by its
//! own `check()`, its values at each step by `coefficient_at`.
template <number_or_schedule C>
constexpr void check_coefficient(const C& c, std::string_view where) {
    if constexpr (std::is_arithmetic_v<C>) {
        const double v = static_cast<double>(c);
        require(v >= 0 && v - v == 0, where, "coefficient", "must be finite and >= 0, got ", v);
    } else {
        check_policy(c);
    }
}

//! Checks a fraction of the batch at construction: a number must be in [0, 1]; a schedule is
//! checked by its own `check()`, its values at each step by `fraction_at`.
template <number_or_schedule F>
constexpr void check_fraction(const F& f, std::string_view where) {
    if constexpr (std::is_arithmetic_v<F>) {
        const double v = static_cast<double>(f);
        require(v >= 0 && v <= 1, where, "fraction", "must be in [0, 1], got ", v);
    } else {
        check_policy(f);
    }
}

} // namespace selfreplay
