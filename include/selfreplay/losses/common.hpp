#pragma once
//! \file
//! What every loss shares: the `reduction` over positions, the `position_mask`, the
//! `loss_result`, and the conventions below.
//!
//! Conventions of all losses in `selfreplay/losses/`:
//! - A *position* is one (sequence b, time t) of a [B, T] batch; logits are [B, T, V] (rank 3)
//!   or [B*T, V] (rank 2, e.g. an Eigen row-major matrix; row b*T + t is position (b, t)).
//! - A position is *counted* when it contributes: it is not excluded by the mask, by the
//!   ignore index, or by the shift (the last position of each sequence has no next token).
//!   Positions that are not counted contribute 0, are neither read nor validated, and get a
//!   zero gradient row.
//! - Values are accumulated in double, one per position, and summed in position order, so the
//!   result is the same for any `threads`.
//! - `scale` multiplies the value and the gradient (e.g. the coefficient c of the paper's
//!   objective); with `accumulate = true` the gradient is added to the output tensor instead of
//!   overwriting it (so NTP(x) + c * KL(x) can share one gradient buffer).

#include <concepts>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "selfreplay/tensor/concept.hpp"
#include "selfreplay/tensor/strided_view.hpp"

namespace selfreplay {

//! How per-position losses are reduced to the scalar `loss_result::value`.
enum class reduction {
    mean_all,     //!< sum over counted positions / (B * T): the paper's reference code (positions
                  //!< that are not counted, e.g. the last one, count in the denominator with 0)
    mean_counted, //!< sum over counted positions / their number (PyTorch's `mean` with ignore_index,
                  //!< TRL's masked mean); 0, with a zero gradient, when nothing is counted
    sum,          //!< sum over counted positions
    none,         //!< no reduction: per-position values go to the options' `per_position` view
                  //!< (required); `value` is their sum and the gradient is the gradient of that sum
};

//! A read-only [B, T] mask over positions with any arithmetic element type (bool, uint8, int32,
//! int64, float, ...): a nonzero element marks a position as counted. Default-constructed (empty):
//! every position is counted. It aliases the caller's memory, which must outlive the call.
class position_mask {
public:
    //! No mask: every position counted.
    position_mask() = default;

    //! Views any rank-2 model of `tensor` (a `strided_view`, an Eigen matrix, an xtensor array).
    template <class X>
        requires(tensor<X> && !std::same_as<std::remove_cvref_t<X>, position_mask>)
    position_mask(const X& mask) { // NOLINT(google-explicit-constructor): used as `.mask = m`
        const auto v = selfreplay::view<2>(mask);
        using E = std::remove_cv_t<typename decltype(v)::element_type>;
        static_assert(std::is_arithmetic_v<E>, "selfreplay::position_mask: the mask's elements must be arithmetic");
        data_ = v.data();
        extents_ = v.extents();
        strides_ = v.strides();
        read_ = [](const void* p, index_t offset) { return static_cast<const E*>(p)[offset] != E{}; };
    }

    //! True when no mask was given.
    bool empty() const noexcept { return read_ == nullptr; }
    //! Extent of dimension r (0: B, 1: T).
    index_t extent(std::size_t r) const noexcept { return extents_[r]; }
    //! Whether position (b, t) is counted (true when the mask is empty).
    bool operator()(index_t b, index_t t) const noexcept {
        return read_ == nullptr || read_(data_, b * strides_[0] + t * strides_[1]);
    }

private:
    const void* data_ = nullptr;
    std::array<index_t, 2> extents_{}, strides_{};
    bool (*read_)(const void*, index_t) = nullptr;
};

//! The outcome of a loss: its reduced value and the number of counted positions.
struct loss_result {
    double value = 0;   //!< the reduced loss (times `scale`), in nats
    index_t counted = 0; //!< number of counted positions (the denominator of `mean_counted`)
};

namespace detail {
//! The static rank of the first of the tensors `X...` that has one, or 0 when every one has a
//! dynamic rank (`xt::xarray`, `xt::view`).
template <class... X>
constexpr std::size_t first_static_rank() {
    std::size_t r = 0;
    constexpr std::size_t ranks[] = {tensor_traits<std::remove_cvref_t<X>>::rank...};
    for (const std::size_t x : ranks)
        if (r == 0 && x != dynamic_rank) r = x;
    return r;
}

//! `x` itself when its rank is static, else `view<R>(x)` (throws `invalid_argument` unless `x` has rank R).
template <std::size_t R, class X>
decltype(auto) with_rank(X&& x) {
    if constexpr (tensor_traits<std::remove_cvref_t<X>>::rank == dynamic_rank)
        return selfreplay::view<R>(x);
    else
        return std::forward<X>(x);
}

//! Calls `f(logits...)` with every dynamic-rank tensor viewed at the rank of the first static-rank
//! one, or, when all are dynamic, at the first one's run-time rank (2: [B*T, V], else 3): so a
//! loss takes [B*T, V] and [B, T, V] `xt::xarray`s and `xt::view`s as it takes static-rank tensors.
template <class F, class X0, class... X>
decltype(auto) with_logits_rank(F&& f, X0&& x0, X&&... xs) {
    constexpr std::size_t R = first_static_rank<X0, X...>();
    if constexpr (R != 0) {
        return f(with_rank<R>(std::forward<X0>(x0)), with_rank<R>(std::forward<X>(xs))...);
    } else {
        if (tensor_rank(x0) == 2) return f(with_rank<2>(x0), with_rank<2>(xs)...);
        return f(with_rank<3>(x0), with_rank<3>(xs)...);
    }
}
} // namespace detail

} // namespace selfreplay
