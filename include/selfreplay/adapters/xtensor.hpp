#pragma once
//! \file
//! Makes xtensor's strided expressions with a data interface model `selfreplay::tensor`:
//! `xt::xtensor`, `xt::xarray`, `xt::xtensor_fixed`, `xt::adapt` over a raw buffer, and strided
//! views onto them (`xt::strided_view`, `xt::view` with ranges). The view aliases
//! `data() + data_offset()` with xtensor's own strides (in elements, as in xtensor).
//! Types with a compile-time rank (`xt::xtensor<T, N>`) view as rank N; the others (`xt::xarray`,
//! views) have a dynamic rank: name it, `selfreplay::view<2>(a)`, and a mismatch throws.
//! Needs xtensor 0.24 (CMake target `selfreplay::xtensor`).

#include <string>
#include <type_traits>

#include <xtensor/xexpression.hpp>
#include <xtensor/xutils.hpp>

#include "selfreplay/tensor/concept.hpp"

namespace selfreplay {

//! xtensor expressions that expose their memory: `data()`, `data_offset()`, `strides()`, `shape()`.
template <class X>
concept xtensor_strided_storage = xt::is_xexpression<X>::value && requires(X& x) {
    x.data();
    x.data_offset();
    x.strides();
    x.shape();
};

//! `tensor_traits` for xtensor strided storage: rank from `X::rank` when it has one,
//! `dynamic_rank` otherwise; const when `data()` is const.
template <xtensor_strided_storage X>
struct tensor_traits<X> {
    using value_type = typename X::value_type; //!< xtensor's value type
    //! `X::rank`, or `dynamic_rank` for `xt::xarray` and views
    static constexpr std::size_t rank =
        xt::get_rank<X>::value == SIZE_MAX ? dynamic_rank : std::size_t{xt::get_rank<X>::value};
    //! `Self`'s element type, const when `data()` is const.
    template <class Self>
    using element_of = std::remove_pointer_t<decltype(std::declval<Self&>().data())>;

    //! The run-time number of dimensions (`tensor_rank`).
    static std::size_t rank_of(const X& x) { return x.shape().size(); }

    //! A view of `x`'s memory (at its data offset) with xtensor's strides; throws unless `x` has rank `R`.
    template <std::size_t R, class Self>
    static strided_view<element_of<Self>, R> view(Self& x) {
        const auto& shape = x.shape();
        const auto& strides = x.strides();
        require(shape.size() == R, "view", "x",
                "has ", shape.size(), " dimensions, but a view of rank ", R, " was requested");
        std::array<index_t, R> e{}, s{};
        for (std::size_t r = 0; r < R; ++r) {
            e[r] = static_cast<index_t>(shape[r]);
            s[r] = static_cast<index_t>(strides[r]);
        }
        return {x.data() + x.data_offset(), e, s};
    }
};

} // namespace selfreplay
