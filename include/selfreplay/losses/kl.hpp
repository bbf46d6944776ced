#pragma once
//! \file
//! `kl_divergence`: full-vocabulary KL divergence between a student's and a reference's logits,
//! forward KL(pi || theta) (the paper's `kl_pre` / `kl_dwn`) or reverse KL(theta || pi), with the
//! gradient with respect to the student's logits in the same pass.

#include <memory>
#include <type_traits>
#include <utility>

#include "selfreplay/losses/common.hpp"
#include "selfreplay/losses/detail/divergence.hpp"

namespace selfreplay {

//! Which KL: `forward` = KL(pi || theta) = sum_v p_pi(v) (log p_pi(v) - log p_theta(v)) (the
//! paper's regulariser, "mean-seeking"); `reverse` = KL(theta || pi) ("mode-seeking").
//! pi = the reference (frozen) model, theta = the student (trained) model.
enum class kl_direction { forward, reverse };

//! Settings of `kl_divergence` (designated initializers: `{.direction = kl_direction::reverse}`).
struct kl_options {
    //! forward KL(pi || theta) (default, the paper) or reverse KL(theta || pi).
    kl_direction direction = kl_direction::forward;
    //! Both logits are divided by it before the softmax (TRL / Hinton distillation); > 0.
    //! The gradient is taken with respect to the undivided student logits (it carries 1 / temperature).
    double temperature = 1.0;
    //! How positions are reduced; the default is the paper's reference code (mean over B*T).
    selfreplay::reduction reduction = selfreplay::reduction::mean_all;
    //! Optional [B, T] mask: mask(b, t) != 0 counts position t.
    position_mask mask{};
    //! When true (the reference code) the last position of every sequence is not counted.
    bool shift = true;
    //! T for rank-2 [B*T, V] logits when neither `mask` nor `per_position` gives it (0: unknown).
    index_t sequence_length = 0;
    //! Optional [B, T] output of per-position values (0 where not counted; before `scale`);
    //! required with `reduction::none`.
    strided_view<double, 2> per_position{};
    //! Multiplies the value and the gradient (e.g. the paper's c = 10).
    double scale = 1.0;
    //! Add the gradient into `dstudent` instead of overwriting it.
    bool accumulate = false;
    //! Threads splitting the rows; the result is bit-identical for any count.
    int threads = 1;
};

namespace detail {
inline divergence_settings settings_of(const kl_options& o) {
    return {o.direction == kl_direction::forward ? divergence_kind::forward_kl : divergence_kind::reverse_kl,
            0.0,
            o.temperature,
            o.reduction,
            &o.mask,
            o.shift,
            o.sequence_length,
            o.per_position,
            o.scale,
            o.accumulate,
            o.threads};
}
} // namespace detail

//! KL divergence per position between p_pi = softmax(reference_logits / temperature) and
//! p_theta = softmax(student_logits / temperature), in nats, computed from max-shifted
//! log-sum-exps in one fused pass per row (exact for -inf logits: entries with p = 0 contribute
//! 0; a support mismatch gives +inf), then reduced as `options.reduction` says.
//! Equals PyTorch's `F.kl_div(log_softmax(student), log_softmax(reference), log_target=True)`
//! summed over the vocabulary for `forward`.
//!
//! \param student_logits, reference_logits [B, T, V] or [B*T, V], float or double, same shape;
//!        NaN or +inf in a counted row throws `invalid_argument` naming the argument.
//! \param options the direction, temperature, positions, reduction, scale and threads (`kl_options`).
//! Signature: `loss_result kl_divergence(const S& student_logits, const R& reference_logits, const kl_options& = {})`.
template <tensor S, tensor R>
loss_result kl_divergence(const S& student_logits, const R& reference_logits, const kl_options& options = {}) {
    return detail::with_logits_rank(
        [&](const auto& s, const auto& r) {
            using Sv = std::remove_cvref_t<decltype(s)>;
            return detail::divergence<false, Sv, std::remove_cvref_t<decltype(r)>, Sv>(s, r, nullptr,
                                                                                      detail::settings_of(options), "kl_divergence");
        },
        student_logits, reference_logits);
}

//! As above, and writes d value / d student_logits into `dstudent` (same shape and element type;
//! may be the student logits themselves) in the same pass:
//! forward: scale / (denominator * temperature) * (softmax(theta) - softmax(pi));
//! reverse: scale / (denominator * temperature) * p_theta * (log p_theta - log p_pi - KL);
//! 0 for positions that are not counted (added instead when `options.accumulate`).
//! When the divergence is +inf (support mismatch) the reverse gradient is not finite.
//! Signature: `loss_result kl_divergence(const S& student_logits, const R& reference_logits, G&& dstudent, const kl_options& = {})`.
template <tensor S, tensor R, tensor G>
loss_result kl_divergence(const S& student_logits, const R& reference_logits, G&& dstudent,
                          const kl_options& options = {}) {
    return detail::with_logits_rank(
        [&](const auto& s, const auto& r, auto&& g) {
            return detail::divergence<true, std::remove_cvref_t<decltype(s)>, std::remove_cvref_t<decltype(r)>,
                                      std::remove_reference_t<decltype(g)>>(s, r, std::addressof(g),
                                                                            detail::settings_of(options), "kl_divergence");
        },
        student_logits, reference_logits, std::forward<G>(dstudent));
}

//! Any other call of `kl_divergence`: stops compilation with one sentence naming the first argument
//! that does not model `tensor` (instead of a list of overloads that do not match).
template <class A, class B>
    requires(!tensor<A> || !tensor<B>)
loss_result kl_divergence(const A&, const B&, const kl_options& = {}) {
    if constexpr (!tensor<A>)
        static_assert(detail::always_false<A>,
                      "selfreplay::kl_divergence: argument 'student_logits' does not model selfreplay::tensor "
                      SELFREPLAY_TENSOR_HINT);
    else
        static_assert(detail::always_false<B>,
                      "selfreplay::kl_divergence: argument 'reference_logits' does not model selfreplay::tensor "
                      SELFREPLAY_TENSOR_HINT);
    return {};
}

//! Any other call of `kl_divergence` with a gradient output: as above.
template <class A, class B, class G>
    requires((!tensor<A> || !tensor<B> || !tensor<G>) && !std::is_same_v<std::remove_cvref_t<G>, kl_options>)
loss_result kl_divergence(const A&, const B&, G&&, const kl_options& = {}) {
    if constexpr (!tensor<A>)
        static_assert(detail::always_false<A>,
                      "selfreplay::kl_divergence: argument 'student_logits' does not model selfreplay::tensor "
                      SELFREPLAY_TENSOR_HINT);
    else if constexpr (!tensor<B>)
        static_assert(detail::always_false<B>,
                      "selfreplay::kl_divergence: argument 'reference_logits' does not model selfreplay::tensor "
                      SELFREPLAY_TENSOR_HINT);
    else
        static_assert(detail::always_false<G>,
                      "selfreplay::kl_divergence: argument 'dstudent' does not model selfreplay::tensor "
                      SELFREPLAY_TENSOR_HINT);
    return {};
}

} // namespace selfreplay
