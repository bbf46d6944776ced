#pragma once
//! \file
//! `generalized_jsd`: the generalized Jensen-Shannon divergence of TRL's GKD trainer
//! (Agarwal et al. 2024, "On-policy distillation of language models"), from student and
//! reference logits, with the gradient with respect to the student's logits in the same pass.

#include <cmath>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "selfreplay/losses/common.hpp"
#include "selfreplay/losses/detail/divergence.hpp"

namespace selfreplay {

//! Settings of `generalized_jsd` (designated initializers: `{.beta = 0.5}`).
struct jsd_options {
    //! Mixing weight in [0, 1], TRL's convention: 0 = forward KL(pi || theta), 1 = reverse
    //! KL(theta || pi); in between beta * KL(pi || m) + (1 - beta) * KL(theta || m) with
    //! m = beta * p_pi + (1 - beta) * p_theta. TRL's default is 0.5.
    double beta = 0.5;
    //! Both logits are divided by it before the softmax; > 0.
    double temperature = 1.0;
    //! How positions are reduced (TRL's `batchmean` with labels is `reduction::mean_counted`).
    selfreplay::reduction reduction = selfreplay::reduction::mean_all;
    //! Optional [B, T] mask: mask(b, t) != 0 counts position t (TRL: labels != -100).
    position_mask mask{};
    //! When true the last position of every sequence is not counted.
    bool shift = true;
    //! T for rank-2 [B*T, V] logits when neither `mask` nor `per_position` gives it (0: unknown).
    index_t sequence_length = 0;
    //! Optional [B, T] output of per-position values (before `scale`); required with `reduction::none`.
    strided_view<double, 2> per_position{};
    //! Multiplies the value and the gradient.
    double scale = 1.0;
    //! Add the gradient into `dstudent` instead of overwriting it.
    bool accumulate = false;
    //! Threads splitting the rows; the result is bit-identical for any count.
    int threads = 1;
};

namespace detail {
inline divergence_settings settings_of(const jsd_options& o) {
    require(o.beta >= 0 && o.beta <= 1, "generalized_jsd", "options.beta",
            "must be in [0, 1], got ", o.beta);
    // The mixed formula tends to 0 at both ends, so (as TRL does) the ends are the plain KLs.
    const divergence_kind kind = o.beta == 0   ? divergence_kind::forward_kl
                                 : o.beta == 1 ? divergence_kind::reverse_kl
                                               : divergence_kind::jsd;
    return {kind,          o.beta,      o.temperature,  o.reduction, &o.mask, o.shift,
            o.sequence_length, o.per_position, o.scale, o.accumulate, o.threads};
}
} // namespace detail

//! Generalized JSD per position, in nats, between p_theta = softmax(student_logits / temperature)
//! and p_pi = softmax(reference_logits / temperature), TRL GKD convention:
//! beta = 0: KL(pi || theta); beta = 1: KL(theta || pi) (special-cased, as in TRL, since the mixed
//! formula vanishes at the ends); 0 < beta < 1: beta * KL(pi || m) + (1 - beta) * KL(theta || m),
//! m = beta * p_pi + (1 - beta) * p_theta. Reduced as `options.reduction` says.
//! Signature: `loss_result generalized_jsd(const S& student_logits, const R& reference_logits, const jsd_options& = {})`.
template <tensor S, tensor R>
loss_result generalized_jsd(const S& student_logits, const R& reference_logits, const jsd_options& options = {}) {
    return detail::with_logits_rank(
        [&](const auto& s, const auto& r) {
            using Sv = std::remove_cvref_t<decltype(s)>;
            return detail::divergence<false, Sv, std::remove_cvref_t<decltype(r)>, Sv>(s, r, nullptr,
                                                                                      detail::settings_of(options), "generalized_jsd");
        },
        student_logits, reference_logits);
}

//! As above, and writes d value / d student_logits into `dstudent` (same shape and element type;
//! may alias the student logits): for 0 < beta < 1,
//! scale / (denominator * temperature) * (1 - beta) * p_theta * (log(p_theta / m) - KL(theta || m));
//! at the ends the gradients of `kl_divergence`.
//! Signature: `loss_result generalized_jsd(const S& student_logits, const R& reference_logits, G&& dstudent, const jsd_options& = {})`.
template <tensor S, tensor R, tensor G>
loss_result generalized_jsd(const S& student_logits, const R& reference_logits, G&& dstudent,
                            const jsd_options& options = {}) {
    return detail::with_logits_rank(
        [&](const auto& s, const auto& r, auto&& g) {
            return detail::divergence<true, std::remove_cvref_t<decltype(s)>, std::remove_cvref_t<decltype(r)>,
                                      std::remove_reference_t<decltype(g)>>(s, r, std::addressof(g),
                                                                            detail::settings_of(options), "generalized_jsd");
        },
        student_logits, reference_logits, std::forward<G>(dstudent));
}

//! Any other call of `generalized_jsd`: stops compilation with one sentence naming the first argument
//! that does not model `tensor` (instead of a list of overloads that do not match).
template <class A, class B>
    requires(!tensor<A> || !tensor<B>)
loss_result generalized_jsd(const A&, const B&, const jsd_options& = {}) {
    if constexpr (!tensor<A>)
        static_assert(detail::always_false<A>,
                      "selfreplay::generalized_jsd: argument 'student_logits' does not model selfreplay::tensor "
                      SELFREPLAY_TENSOR_HINT);
    else
        static_assert(detail::always_false<B>,
                      "selfreplay::generalized_jsd: argument 'reference_logits' does not model selfreplay::tensor "
                      SELFREPLAY_TENSOR_HINT);
    return {};
}

//! Any other call of `generalized_jsd` with a gradient output: as above.
template <class A, class B, class G>
    requires((!tensor<A> || !tensor<B> || !tensor<G>) && !std::is_same_v<std::remove_cvref_t<G>, jsd_options>)
loss_result generalized_jsd(const A&, const B&, G&&, const jsd_options& = {}) {
    if constexpr (!tensor<A>)
        static_assert(detail::always_false<A>,
                      "selfreplay::generalized_jsd: argument 'student_logits' does not model selfreplay::tensor "
                      SELFREPLAY_TENSOR_HINT);
    else if constexpr (!tensor<B>)
        static_assert(detail::always_false<B>,
                      "selfreplay::generalized_jsd: argument 'reference_logits' does not model selfreplay::tensor "
                      SELFREPLAY_TENSOR_HINT);
    else
        static_assert(detail::always_false<G>,
                      "selfreplay::generalized_jsd: argument 'dstudent' does not model selfreplay::tensor "
                      SELFREPLAY_TENSOR_HINT);
    return {};
}

} // namespace selfreplay
