#pragma once
//! \file
//! `next_token_loss`: next-token cross-entropy from logits, with the gradient with respect to
//! the logits in the same pass (the paper's NTP term).

#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "selfreplay/losses/common.hpp"
#include "selfreplay/losses/detail/driver.hpp"
#include "selfreplay/tensor/concept.hpp"
#include "selfreplay/tensor/token_ids.hpp"

namespace selfreplay {

//! Settings of `next_token_loss` (designated initializers: `{.reduction = reduction::sum}`).
struct next_token_options {
    //! How positions are reduced; the default is the paper's reference code (mean over B*T).
    selfreplay::reduction reduction = selfreplay::reduction::mean_all;
    //! Optional [B, T] mask: mask(b, t) != 0 counts the prediction made at position t (of token t+1).
    position_mask mask{};
    //! Positions whose target token equals this id are not counted (PyTorch's default, -100).
    std::int32_t ignore_index = -100;
    //! Optional [B, T] output of per-position losses (0 where not counted; before `scale`);
    //! required with `reduction::none`.
    strided_view<double, 2> per_position{};
    //! Multiplies the value and the gradient.
    double scale = 1.0;
    //! Add the gradient into `dlogits` instead of overwriting it.
    bool accumulate = false;
    //! Threads splitting the rows; the result is bit-identical for any count.
    int threads = 1;
};

namespace detail {

template <bool Grad, class T, class G, class Id>
loss_result next_token_impl(const position_rows<const T>& x, const strided_view<const Id, 2>& tok,
                            const position_rows<G>& g, const next_token_options& o) {
    constexpr std::string_view where = "next_token_loss";
    check_common(where, o.scale, o.threads);
    const index_t B = tok.extent(0), L = tok.extent(1), V = x.vocab;
    require(x.batch == B && x.length == L, where, "tokens",
            "has shape [", B, ", ", L, "] but 'logits' has positions [", x.batch, ", ", x.length, "]");
    require(V >= 1 || B * L == 0, where, "logits", "must have a vocabulary of at least 1 entry, got 0");
    check_positions(where, B, L, o.mask, o.per_position, o.reduction);
    // which positions count, and the validity of their targets
    std::vector<std::int32_t> target(static_cast<std::size_t>(B * L), -1);
    index_t counted = 0;
    for (index_t b = 0; b < B; ++b)
        for (index_t t = 0; t + 1 < L; ++t) {
            const Id y = tok(b, t + 1);
            if (y == o.ignore_index || !o.mask(b, t)) continue;
            require(y >= 0 && y < V, where, "tokens",
                    "holds ", y, " at (", b, ", ", t + 1, "), outside the vocabulary [0, ", V,
                        ") and not the ignore_index ", o.ignore_index);
            target[static_cast<std::size_t>(b * L + t)] = static_cast<std::int32_t>(y);
            ++counted;
        }
    const double denom = denominator(o.reduction, B, L, counted);
    const T gscale = Grad ? gradient_factor<T>(where, o.scale, denom, 1.0) : T(0);
    const bool stream = stream_gradient<T>(g, o.accumulate);
    const isa path = active_isa(); // one path for the whole call
    std::vector<double> values;
    parallel_rows<T>(B * L, o.threads, values, [&](index_t row, row_scratch<T>& sc) -> double {
        const index_t b = row / L, t = row % L;
        const std::int32_t y = target[static_cast<std::size_t>(row)];
        row_value rv;
        if constexpr (Grad) {
            gradient_row(g, b, t, y >= 0, o.accumulate, at_least(sc.gradient, V), [&](T* gp, bool acc, bool direct) {
                const T* xp = contiguous_row(x, b, t, at_least(sc.student, V));
                T* exps = at_least(sc.kept_a, V);
                T* coefs = at_least(sc.block_coefs, block_count(V));
                rv = dispatch(path, [&](auto tag) {
                    return acc ? cross_entropy_row<T, true, true>(tag, xp, V, y, gp, gscale, exps, coefs, false)
                               : cross_entropy_row<T, true, false>(tag, xp, V, y, gp, gscale, exps, coefs, direct && stream);
                });
            });
        } else if (y >= 0) {
            const T* xp = contiguous_row(x, b, t, at_least(sc.student, V));
            rv = dispatch(path, [&](auto tag) {
                return cross_entropy_row<T, false, false>(tag, xp, V, y, static_cast<T*>(nullptr), gscale,
                                                          static_cast<T*>(nullptr), static_cast<T*>(nullptr), false);
            });
        }
        if (rv.status != row_status::ok) throw_row_status(rv.status, where, "logits", "logits", b, t);
        return rv.value;
    });
    return finish(values, B, L, counted, denom, o.scale, o.per_position);
}

template <class X>
using logits_element_t = std::remove_const_t<view_element_t<X, logits_rank<X>>>;

template <class X>
position_rows<const logits_element_t<X>> logits_rows(const X& logits, index_t batch, index_t length,
                                                     std::string_view where, std::string_view argument) {
    constexpr std::size_t R = logits_rank<X>;
    static_assert(R == 2 || R == 3, "selfreplay losses: logits must be [B, T, V] (rank 3) or [B*T, V] (rank 2)");
    using T = logits_element_t<X>;
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "selfreplay losses: logits must hold float or double");
    const strided_view<const T, R> v = selfreplay::view<R>(logits);
    if constexpr (R == 3)
        return as_rows(v);
    else
        return as_rows(v, batch, length, where, argument);
}

template <class T, class X>
position_rows<T> gradient_rows(X&& dlogits, index_t batch, index_t length, std::string_view where,
                               std::string_view argument) {
    constexpr std::size_t R = logits_rank<X>;
    using E = view_element_t<X, R>;
    static_assert(std::is_same_v<E, T>,
                  "selfreplay losses: the gradient output must be a writable tensor with the logits' element type");
    const strided_view<T, R> v = selfreplay::view<R>(dlogits);
    if constexpr (R == 3)
        return as_rows(v);
    else
        return as_rows(v, batch, length, where, argument);
}

template <class K>
auto token_view(const K& tokens) {
    using E = std::remove_const_t<view_element_t<K, 2>>;
    static_assert(token_id<E>, "selfreplay::next_token_loss: tokens must hold std::int32_t or std::int64_t ids");
    return strided_view<const E, 2>(selfreplay::view<2>(tokens));
}

} // namespace detail

//! Next-token cross-entropy (the paper's NTP): at position t of sequence b the target is
//! tokens(b, t+1) and the loss is logsumexp(logits(b, t, :)) - logits(b, t, target), in nats
//! (computed with a max-shifted log-sum-exp, exact for -inf logits; a target whose logit is -inf
//! gives +inf). The last position has no target and is never counted. Reduced as `options.reduction`
//! says (default: sum / (B*T), the reference code; PyTorch's `F.cross_entropy(..., reduction='mean')`
//! on the shifted targets is `reduction::mean_counted`).
//!
//! \param logits [B, T, V] or [B*T, V] float or double (any `tensor`); NaN or +inf in a counted
//!               row throws `invalid_argument`, as does a counted row whose logits are all -inf.
//! \param tokens [B, T] `std::int32_t` or `std::int64_t` ids (torch's); targets of counted positions
//!               must lie in [0, V).
//! \param options the reduction, mask, label smoothing, scale and threads (`next_token_options`).
//! \return the reduced value (times `options.scale`) and the number of counted positions.
//! Signature: `loss_result next_token_loss(const L& logits, const K& tokens, const next_token_options& = {})`.
template <tensor L, tensor K>
loss_result next_token_loss(const L& logits, const K& tokens, const next_token_options& options = {}) {
    const auto tok = detail::token_view(tokens);
    const auto x = detail::logits_rows(logits, tok.extent(0), tok.extent(1), "next_token_loss", "logits");
    using T = std::remove_const_t<std::remove_pointer_t<decltype(x.data)>>;
    return detail::next_token_impl<false, T, T>(x, tok, detail::position_rows<T>{}, options);
}

//! As above, and writes d value / d logits into `dlogits` (same shape and element type as
//! `logits`; may be the logits themselves, for an in-place gradient) in the same pass:
//! scale / denominator * (softmax(logits(b, t, :)) - onehot(target)) for counted positions, 0
//! for the others (added instead when `options.accumulate`).
//! Signature: `loss_result next_token_loss(const L& logits, const K& tokens, G&& dlogits, const next_token_options& = {})`.
template <tensor L, tensor K, tensor G>
loss_result next_token_loss(const L& logits, const K& tokens, G&& dlogits, const next_token_options& options = {}) {
    const auto tok = detail::token_view(tokens);
    const auto x = detail::logits_rows(logits, tok.extent(0), tok.extent(1), "next_token_loss", "logits");
    using T = std::remove_const_t<std::remove_pointer_t<decltype(x.data)>>;
    const auto g = detail::gradient_rows<T>(dlogits, tok.extent(0), tok.extent(1), "next_token_loss", "dlogits");
    detail::require_same_rows(g, x, "next_token_loss", "dlogits", "logits");
    return detail::next_token_impl<true, T, T>(x, tok, g, options);
}

//! Any other call of `next_token_loss`: stops compilation with one sentence naming the first argument
//! that does not model `tensor` (instead of a list of overloads that do not match).
template <class A, class B>
    requires(!tensor<A> || !tensor<B>)
loss_result next_token_loss(const A&, const B&, const next_token_options& = {}) {
    if constexpr (!tensor<A>)
        static_assert(detail::always_false<A>,
                      "selfreplay::next_token_loss: argument 'logits' does not model selfreplay::tensor "
                      SELFREPLAY_TENSOR_HINT);
    else
        static_assert(detail::always_false<B>,
                      "selfreplay::next_token_loss: argument 'tokens' does not model selfreplay::tensor "
                      SELFREPLAY_TENSOR_HINT);
    return {};
}

//! Any other call of `next_token_loss` with a gradient output: as above.
template <class A, class B, class G>
    requires((!tensor<A> || !tensor<B> || !tensor<G>) && !std::is_same_v<std::remove_cvref_t<G>, next_token_options>)
loss_result next_token_loss(const A&, const B&, G&&, const next_token_options& = {}) {
    if constexpr (!tensor<A>)
        static_assert(detail::always_false<A>,
                      "selfreplay::next_token_loss: argument 'logits' does not model selfreplay::tensor "
                      SELFREPLAY_TENSOR_HINT);
    else if constexpr (!tensor<B>)
        static_assert(detail::always_false<B>,
                      "selfreplay::next_token_loss: argument 'tokens' does not model selfreplay::tensor "
                      SELFREPLAY_TENSOR_HINT);
    else
        static_assert(detail::always_false<G>,
                      "selfreplay::next_token_loss: argument 'dlogits' does not model selfreplay::tensor "
                      SELFREPLAY_TENSOR_HINT);
    return {};
}

} // namespace selfreplay
