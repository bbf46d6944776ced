#pragma once
//! \file
//! The `tensor` concept: what selfreplay needs from a backend, and `view()`, the one verb that
//! turns any model of it into a `strided_view` aliasing the same memory.
//!
//! A backend type `X` models `tensor` when `tensor_traits<X>` is specialized with
//! - `using value_type = ...;`  the element type without cv-qualifiers;
//! - `static constexpr std::size_t rank`: the number of dimensions, or `dynamic_rank` when it
//!   is known only at run time (xt::xarray);
//! - `template <std::size_t R, class Self> static strided_view<E, R> view(Self& x)` where
//!   `Self` is `X` or `const X` and `E` is `value_type`, const when the data is read-only.
//!   For a dynamic rank it throws `invalid_argument` when `x` does not have `R` dimensions;
//! - optionally, for a dynamic rank, `static std::size_t rank_of(const X&)`: `x`'s number of
//!   dimensions (`tensor_rank`), for functions that take several ranks (`kl_estimate`).
//!
//! Adapters for Eigen and xtensor live in `selfreplay/adapters/`; `strided_view` itself and raw
//! pointers (`make_view`) are built in.

#include <array>
#include <concepts>
#include <cstddef>
#include <ranges>
#include <string>
#include <type_traits>

#include "selfreplay/tensor/strided_view.hpp"

namespace selfreplay {

//! Value of `tensor_traits<X>::rank` for backends whose rank is known only at run time.
inline constexpr std::size_t dynamic_rank = static_cast<std::size_t>(-1);

//! Customization point: specialize for a backend type (see the file comment for the members).
template <class X>
struct tensor_traits;

//! A backend whose memory `view()` can alias.
//!
//! \par Required expressions
//! `tensor_traits<X>` (for `X` without cv-ref qualifiers) is specialized with `value_type`,
//! `rank` and `view<R>(x)`, as the file comment lists.
//!
//! \par Models
//! `strided_view`; Eigen dense matrices, arrays, maps and blocks (selfreplay/adapters/eigen.hpp);
//! xtensor containers and strided views (selfreplay/adapters/xtensor.hpp); raw memory through
//! `make_view`.
template <class X>
concept tensor = requires {
    typename tensor_traits<std::remove_cvref_t<X>>::value_type;
    { tensor_traits<std::remove_cvref_t<X>>::rank } -> std::convertible_to<std::size_t>;
};

//! A `tensor` whose elements are `V`.
template <class X, class V>
concept tensor_of = tensor<X> && std::is_same_v<typename tensor_traits<std::remove_cvref_t<X>>::value_type, V>;

//! The end of the sentence with which a function rejects an argument that does not model
//! `tensor` (a string literal, for `static_assert`).
#define SELFREPLAY_TENSOR_HINT                                                                                \
    "(include its adapter header, <selfreplay/adapters/eigen.hpp> or <selfreplay/adapters/xtensor.hpp>, or " \
    "specialize selfreplay::tensor_traits for it)"

//! A `strided_view<E, R>` of `x`'s memory (no copy). `R` defaults to `x`'s static rank; with a
//! dynamic-rank backend pass it explicitly (`view<2>(array)`), and a mismatch throws.
//! A type that does not model `tensor` is rejected with a single message naming the concept.
template <std::size_t R = 0, class X>
constexpr auto view(X&& x) {
    using traits = tensor_traits<std::remove_cvref_t<X>>;
    if constexpr (!tensor<X>) {
        static_assert(detail::always_false<X>,
                      "selfreplay::view: the argument's type does not model selfreplay::tensor "
                      "(include its adapter header, or specialize selfreplay::tensor_traits for it)");
        return strided_view<float, R == 0 ? 1 : R>{}; // unreachable; keeps the diagnostic to one line
    } else if constexpr (R == 0) {
        static_assert(traits::rank != dynamic_rank,
                      "selfreplay::view: this tensor's rank is dynamic; name it, as in view<2>(x)");
        return traits::template view<traits::rank>(x);
    } else {
        static_assert(traits::rank == dynamic_rank || traits::rank == R,
                      "selfreplay::view<R>: R differs from the tensor's rank");
        return traits::template view<R>(x);
    }
}

//! The number of dimensions of `x`: `tensor_traits<X>::rank`, or for a dynamic-rank backend its
//! traits' optional `static std::size_t rank_of(const X&)` (the xtensor adapter has it);
//! `dynamic_rank` when the backend cannot tell.
template <tensor X>
constexpr std::size_t tensor_rank(const X& x) {
    using traits = tensor_traits<std::remove_cvref_t<X>>;
    if constexpr (traits::rank != dynamic_rank)
        return traits::rank;
    else if constexpr (requires { traits::rank_of(x); })
        return traits::rank_of(x);
    else
        return dynamic_rank;
}

//! The element type of `view<R>(x)`: `value_type`, const when `x` is read-only.
template <class X, std::size_t R = 0>
using view_element_t = typename decltype(view<R>(std::declval<X&>()))::element_type;

//! `strided_view` models `tensor`: viewing a view returns it unchanged.
template <class T, std::size_t Rank>
struct tensor_traits<strided_view<T, Rank>> {
    using value_type = std::remove_cv_t<T>;   //!< the element type without const
    static constexpr std::size_t rank = Rank; //!< the view's rank
    //! The view itself.
    template <std::size_t R, class Self>
    static constexpr strided_view<T, Rank> view(Self& x) noexcept {
        return x;
    }
};

//! True when `view<Rank>(x)` is valid for an `X` and converts to `strided_view<T, Rank>`: `X`
//! models `tensor`, has rank `Rank` (or a dynamic rank, checked at run time) and elements `T`
//! (`T` const: read-only or mutable elements).
template <class X, class T, std::size_t Rank>
concept viewable_as = tensor<X> &&
                      (tensor_traits<std::remove_cvref_t<X>>::rank == Rank ||
                       tensor_traits<std::remove_cvref_t<X>>::rank == dynamic_rank) &&
                      std::is_convertible_v<decltype(view<Rank>(std::declval<X&>())), strided_view<T, Rank>>;

//! A `strided_view<T, Rank>` that converts implicitly from any tensor `viewable_as` it (an Eigen
//! matrix, an xtensor, an `xt::view`, a `strided_view`), aliasing its memory: the field type of
//! the aggregates that take tensors (`objective_inputs`, `linear_head`, ...), so that
//! `{.student_train_logits = logits}` works for any backend, as the losses' arguments do. It
//! holds a pointer, not the tensor: the tensor must outlive it (a temporary lives to the end of
//! the full expression, e.g. the `evaluate_objective` call it is written in).
template <class T, std::size_t Rank>
class tensor_ref : public strided_view<T, Rank> {
public:
    //! An empty view (an input or output not given).
    constexpr tensor_ref() = default;
    //! Views `x` (for a dynamic-rank tensor, throws `invalid_argument` unless it has rank `Rank`).
    template <class X>
        requires(viewable_as<X, T, Rank> && !std::is_same_v<std::remove_cvref_t<X>, tensor_ref>)
    constexpr tensor_ref(X&& x) // NOLINT(google-explicit-constructor)
        : strided_view<T, Rank>(view<Rank>(x)) {}
};

//! `tensor_ref` models `tensor` as the `strided_view` it is.
template <class T, std::size_t Rank>
struct tensor_traits<tensor_ref<T, Rank>> {
    using value_type = std::remove_cv_t<T>;   //!< the element type without const
    static constexpr std::size_t rank = Rank; //!< the view's rank
    //! The view itself.
    template <std::size_t R, class Self>
    static constexpr strided_view<T, Rank> view(Self& x) noexcept {
        return x;
    }
};

//! One extent or stride of `make_view`: any integer (`int`, `std::size_t`, `index_t`, ...),
//! converted without a narrowing warning; an extent that does not fit `index_t` becomes negative
//! and is refused by the view (`invalid_argument`).
struct extent_arg {
    index_t value; //!< the extent or stride as `index_t`
    //! Converts any integer but `bool`.
    template <std::integral I>
        requires(!std::is_same_v<I, bool>)
    constexpr extent_arg(I v) noexcept // NOLINT(google-explicit-constructor)
        : value(static_cast<index_t>(v)) {}
};

namespace detail {
template <std::size_t Rank>
constexpr std::array<index_t, Rank> extents_of(const extent_arg (&a)[Rank]) noexcept {
    std::array<index_t, Rank> e{};
    for (std::size_t r = 0; r < Rank; ++r) e[r] = a[r].value;
    return e;
}
} // namespace detail

//! A row-major (C-order) view of the elements at `data` with the given extents (any integer
//! type): `make_view(ptr, {B, T, V})`.
template <class T, std::size_t Rank>
constexpr strided_view<T, Rank> make_view(T* data, const extent_arg (&extents)[Rank]) {
    return {data, detail::extents_of(extents)};
}

//! A view of `data` with the given extents and strides (strides count elements, not bytes).
template <class T, std::size_t Rank>
constexpr strided_view<T, Rank> make_view(T* data, const extent_arg (&extents)[Rank], const extent_arg (&strides)[Rank]) {
    return {data, detail::extents_of(extents), detail::extents_of(strides)};
}

//! A row-major view of a contiguous buffer (`std::span`, `std::vector`, `std::array`; const
//! elements when the buffer is const) with the given extents: `make_view(logits, {B * T, V})`.
//! Throws `invalid_argument` unless the extents' product equals the buffer's size. A buffer
//! passed as an rvalue must not own its elements (a span may; a temporary vector may not).
template <class Buffer, std::size_t Rank>
    requires(std::ranges::contiguous_range<Buffer> && std::ranges::sized_range<Buffer> &&
             (std::is_lvalue_reference_v<Buffer> || std::ranges::borrowed_range<Buffer>))
constexpr auto make_view(Buffer&& buffer, const extent_arg (&extents)[Rank]) {
    const strided_view<std::remove_reference_t<std::ranges::range_reference_t<Buffer>>, Rank> v(
        std::ranges::data(buffer), detail::extents_of(extents)); // refuses negative extents
    const auto size = static_cast<index_t>(std::ranges::size(buffer));
    if (v.size() != size)
        throw invalid_argument("make_view", "extents",
                               "have a product of " + std::to_string(v.size()) + " but the buffer holds " + std::to_string(size) + " elements");
    return v;
}

} // namespace selfreplay
