#pragma once
//! \file
//! `kl_estimate`: Schulman's sampled-token estimators k1, k2, k3 of KL(theta || pi) from the
//! per-token log-probabilities of the sampled tokens under the policy theta and the reference pi
//! (J. Schulman, "Approximating KL divergence", 2020; k3 is GRPO's KL penalty, as in TRL).

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "selfreplay/losses/common.hpp"
#include "selfreplay/losses/detail/driver.hpp"
#include "selfreplay/tensor/concept.hpp"

namespace selfreplay {

//! The estimator, with logr = log pi(x) - log theta(x) for a token x sampled from theta:
//! `k1` = -logr (unbiased, can be negative, high variance); `k2` = logr^2 / 2 (biased, low
//! variance, never negative); `k3` = exp(logr) - 1 - logr (unbiased, never negative).
enum class kl_estimator { k1, k2, k3 };

//! Settings of `kl_estimate`.
struct kl_estimate_options {
    //! Which estimator (default k3, as GRPO).
    kl_estimator estimator = kl_estimator::k3;
    //! How positions are reduced (mean_all: over B*T; no shift: the log-probs are already aligned).
    selfreplay::reduction reduction = selfreplay::reduction::mean_all;
    //! Optional [B, T] mask: mask(b, t) != 0 counts position t.
    position_mask mask{};
    //! Optional [B, T] output of per-position values (before `scale`); required with `reduction::none`.
    strided_view<double, 2> per_position{};
    //! Multiplies the value and the gradient.
    double scale = 1.0;
    //! Add the gradient into `dpolicy` instead of overwriting it.
    bool accumulate = false;
};

namespace detail {

//! A [B, T] or [N] tensor of log-probabilities as a [B, T] (or [1, N]) read-only view; a
//! dynamic-rank tensor (`xt::xarray`) is either, by its run-time rank.
template <class X>
auto logprob_view(const X& x) {
    constexpr std::size_t R = tensor_traits<std::remove_cvref_t<X>>::rank;
    static_assert(R == 1 || R == 2 || R == dynamic_rank,
                  "selfreplay::kl_estimate: log-probabilities must be [B, T] or [N]");
    using E = std::remove_const_t<view_element_t<const X, R == dynamic_rank ? 2 : R>>;
    const auto as_row = [](const auto& v) { return strided_view<const E, 2>(v.data(), {1, v.extent(0)}, {0, v.stride(0)}); };
    if constexpr (R == 1)
        return as_row(selfreplay::view<1>(x));
    else if constexpr (R == 2)
        return strided_view<const E, 2>(selfreplay::view<2>(x));
    else if (tensor_rank(x) == 1)
        return as_row(selfreplay::view<1>(x));
    else
        return strided_view<const E, 2>(selfreplay::view<2>(x));
}

//! A writable [B, T] or [N] gradient tensor as a [B, T] (or [1, N]) view, as `logprob_view`.
template <class T, class G>
strided_view<T, 2> logprob_gradient_view(G& g) {
    constexpr std::size_t R = tensor_traits<std::remove_cvref_t<G>>::rank;
    const auto as_row = [](const auto& v) { return strided_view<T, 2>(v.data(), {1, v.extent(0)}, {0, v.stride(0)}); };
    if constexpr (R == 1)
        return as_row(selfreplay::view<1>(g));
    else if constexpr (R == 2)
        return selfreplay::view<2>(g);
    else if (tensor_rank(g) == 1)
        return as_row(selfreplay::view<1>(g));
    else
        return selfreplay::view<2>(g);
}

template <bool Grad, class P, class R, class G>
loss_result kl_estimate_impl(const P& policy, const R& reference, G* dpolicy, const kl_estimate_options& o) {
    constexpr std::string_view where = "kl_estimate";
    const auto p = logprob_view(policy);
    const auto r = logprob_view(reference);
    using T = std::remove_const_t<typename decltype(p)::element_type>;
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "selfreplay::kl_estimate: log-probabilities must be float or double");
    static_assert(std::is_same_v<std::remove_const_t<typename decltype(r)::element_type>, T>,
                  "selfreplay::kl_estimate: policy and reference log-probabilities must have the same element type");
    check_common(where, o.scale, 1);
    require_same_extents(r, p, where, "reference_logprobs", "policy_logprobs");
    const index_t B = p.extent(0), L = p.extent(1);
    check_positions(where, B, L, o.mask, o.per_position, o.reduction);
    strided_view<T, 2> g;
    if constexpr (Grad) {
        constexpr std::size_t GR = tensor_traits<std::remove_cvref_t<G>>::rank;
        static_assert(std::is_same_v<view_element_t<G, GR == 1 ? 1 : 2>, T>,
                      "selfreplay::kl_estimate: dpolicy must be a writable tensor of the log-probabilities' type");
        g = logprob_gradient_view<T>(*dpolicy);
        require_same_extents(g, p, where, "dpolicy", "policy_logprobs");
    }
    std::vector<double> values(static_cast<std::size_t>(B * L), 0.0), grads;
    if constexpr (Grad) grads.assign(values.size(), 0.0);
    index_t counted = 0;
    const double inf = std::numeric_limits<double>::infinity();
    for (index_t b = 0; b < B; ++b)
        for (index_t t = 0; t < L; ++t) {
            if (!o.mask(b, t)) continue;
            const double lp = p(b, t), lr = r(b, t);
            const std::string at = " at (" + std::to_string(b) + ", " + std::to_string(t) + ")";
            require(std::isfinite(lp), where, "policy_logprobs",
                    "must be finite at counted positions (a sampled token has probability > 0), got ", lp, at);
            require(!std::isnan(lr) && lr != inf, where, "reference_logprobs", "contains NaN or +inf" + at);
            const double logr = lr - lp;
            double v = 0, d = 0;
            switch (o.estimator) {
            case kl_estimator::k1: v = -logr, d = 1; break;
            case kl_estimator::k2: v = 0.5 * logr * logr, d = -logr; break;
            case kl_estimator::k3: v = std::expm1(logr) - logr, d = -std::expm1(logr); break;
            }
            values[static_cast<std::size_t>(b * L + t)] = v;
            if constexpr (Grad) grads[static_cast<std::size_t>(b * L + t)] = d;
            ++counted;
        }
    const double denom = denominator(o.reduction, B, L, counted);
    if constexpr (Grad) {
        const double c = denom > 0 ? o.scale / denom : 0.0;
        for (index_t b = 0; b < B; ++b)
            for (index_t t = 0; t < L; ++t) {
                const T d = static_cast<T>(c * grads[static_cast<std::size_t>(b * L + t)]);
                g(b, t) = o.accumulate ? g(b, t) + d : d;
            }
    }
    return finish(values, B, L, counted, denom, o.scale, o.per_position);
}

} // namespace detail

//! Sampled-token estimate of KL(theta || pi) per position from the log-probabilities of the
//! sampled tokens, `policy_logprobs` = log theta(x_t) and `reference_logprobs` = log pi(x_t)
//! ([B, T] or [N], float or double, same shape), reduced as `options.reduction` says.
//! A -inf reference log-prob gives +inf for k1/k2/k3; NaN/+inf, or a non-finite policy log-prob
//! at a counted position, throws `invalid_argument`.
//! Signature: `loss_result kl_estimate(const P& policy_logprobs, const R& reference_logprobs, const kl_estimate_options& = {})`.
template <tensor P, tensor R>
loss_result kl_estimate(const P& policy_logprobs, const R& reference_logprobs, const kl_estimate_options& options = {}) {
    return detail::kl_estimate_impl<false, P, R, P>(policy_logprobs, reference_logprobs, nullptr, options);
}

//! As above, and writes d value / d policy_logprobs into `dpolicy` (same shape): scale / denominator
//! times 1 (k1), -logr (k2), 1 - exp(logr) (k3); 0 where not counted (added when `accumulate`).
//! Signature: `loss_result kl_estimate(const P& policy_logprobs, const R& reference_logprobs, G&& dpolicy, const kl_estimate_options& = {})`.
template <tensor P, tensor R, tensor G>
loss_result kl_estimate(const P& policy_logprobs, const R& reference_logprobs, G&& dpolicy,
                        const kl_estimate_options& options = {}) {
    return detail::kl_estimate_impl<true, P, R, std::remove_reference_t<G>>(policy_logprobs, reference_logprobs,
                                                                            std::addressof(dpolicy), options);
}

//! Any other call of `kl_estimate`: stops compilation with one sentence naming the first argument
//! that does not model `tensor` (instead of a list of overloads that do not match).
template <class A, class B>
    requires(!tensor<A> || !tensor<B>)
loss_result kl_estimate(const A&, const B&, const kl_estimate_options& = {}) {
    if constexpr (!tensor<A>)
        static_assert(detail::always_false<A>,
                      "selfreplay::kl_estimate: argument 'policy_logprobs' does not model selfreplay::tensor "
                      SELFREPLAY_TENSOR_HINT);
    else
        static_assert(detail::always_false<B>,
                      "selfreplay::kl_estimate: argument 'reference_logprobs' does not model selfreplay::tensor "
                      SELFREPLAY_TENSOR_HINT);
    return {};
}

//! Any other call of `kl_estimate` with a gradient output: as above.
template <class A, class B, class G>
    requires((!tensor<A> || !tensor<B> || !tensor<G>) && !std::is_same_v<std::remove_cvref_t<G>, kl_estimate_options>)
loss_result kl_estimate(const A&, const B&, G&&, const kl_estimate_options& = {}) {
    if constexpr (!tensor<A>)
        static_assert(detail::always_false<A>,
                      "selfreplay::kl_estimate: argument 'policy_logprobs' does not model selfreplay::tensor "
                      SELFREPLAY_TENSOR_HINT);
    else if constexpr (!tensor<B>)
        static_assert(detail::always_false<B>,
                      "selfreplay::kl_estimate: argument 'reference_logprobs' does not model selfreplay::tensor "
                      SELFREPLAY_TENSOR_HINT);
    else
        static_assert(detail::always_false<G>,
                      "selfreplay::kl_estimate: argument 'dpolicy' does not model selfreplay::tensor "
                      SELFREPLAY_TENSOR_HINT);
    return {};
}

} // namespace selfreplay
