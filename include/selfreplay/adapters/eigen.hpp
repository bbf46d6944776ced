#pragma once
//! \file
//! Makes Eigen's dense types with direct memory access model `selfreplay::tensor`:
//! `Matrix`, `Array`, `Map` (with any `Stride`), `Ref`, `Block` of those, row- or column-major,
//! any scalar. They view as rank 2, `[rows, cols]`, whatever the storage order: the strides
//! carry the layout, so a column-major matrix is a view with strides `{1, outerStride}`.
//! Expressions without storage (`a + b`) are not tensors; evaluate them first.
//! Needs Eigen 3.4 (CMake target `selfreplay::eigen`).

#include <Eigen/Core>
#include <type_traits>

#include "selfreplay/tensor/concept.hpp"

namespace selfreplay {

//! Eigen dense types whose coefficients live in memory reachable through `data()` and strides.
template <class X>
concept eigen_dense_storage = std::is_base_of_v<Eigen::DenseBase<X>, X> &&
                              (int(Eigen::internal::traits<X>::Flags) & Eigen::DirectAccessBit) != 0;

//! `tensor_traits` for Eigen dense storage: rank 2 `[rows, cols]`, strides from
//! `innerStride()` / `outerStride()` and the storage order; const when `data()` is const.
template <eigen_dense_storage X>
struct tensor_traits<X> {
    using value_type = typename X::Scalar;
    static constexpr std::size_t rank = 2;

    template <std::size_t R, class Self>
    static strided_view<std::remove_pointer_t<decltype(std::declval<Self&>().data())>, 2> view(Self& x) {
        const index_t inner = x.innerStride();
        const index_t outer = x.outerStride();
        if constexpr (X::IsRowMajor)
            return {x.data(), {x.rows(), x.cols()}, {outer, inner}};
        else
            return {x.data(), {x.rows(), x.cols()}, {inner, outer}};
    }
};

} // namespace selfreplay
