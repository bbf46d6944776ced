#pragma once
//! \file
//! Makes Eigen's dense types with direct memory access model `selfreplay::tensor`:
//! `Matrix`, `Array`, `Map` (with any `Stride`), `Ref`, `Block` of those, row- or column-major,
//! any scalar. They view as rank 2, `[rows, cols]`, whatever the storage order: the strides
//! carry the layout, so a column-major matrix is a view with strides `{1, outerStride}`.
//! Expressions without storage (`a + b`) are not tensors; evaluate them first.
//! Also `eigen_matmul`, the `matmul` model that gives the linear losses Eigen's GEMM.
//! Needs Eigen 3.4 (CMake target `selfreplay::eigen`).

#include <Eigen/Core>
#include <type_traits>

#include "selfreplay/error.hpp"
#include "selfreplay/losses/matmul.hpp"
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
    using value_type = typename X::Scalar; //!< Eigen's scalar type
    static constexpr std::size_t rank = 2; //!< always `[rows, cols]`
    //! `Self`'s element type, const when `data()` is const.
    template <class Self>
    using element_of = std::remove_pointer_t<decltype(std::declval<Self&>().data())>;

    //! A view of `x`'s memory with Eigen's strides.
    template <std::size_t R, class Self>
    static strided_view<element_of<Self>, 2> view(Self& x) {
        const index_t inner = x.innerStride();
        const index_t outer = x.outerStride();
        if constexpr (X::IsRowMajor)
            return {x.data(), {x.rows(), x.cols()}, {outer, inner}};
        else
            return {x.data(), {x.rows(), x.cols()}, {inner, outer}};
    }
};

namespace detail {
//! Calls f with an Eigen map of `v`: row-major when its second dimension has unit stride, else
//! column-major (the `matmul` contract guarantees one of the two).
template <class T, class F>
void with_eigen_map(const strided_view<T, 2>& v, std::string_view argument, F&& f) {
    using S = std::remove_const_t<T>;
    using row_major = std::conditional_t<std::is_const_v<T>, const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>,
                                         Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;
    using col_major = std::conditional_t<std::is_const_v<T>, const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>,
                                         Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>>;
    const index_t rows = v.extent(0), cols = v.extent(1);
    if (cols <= 1 || v.stride(1) == 1) {
        f(Eigen::Map<row_major, Eigen::Unaligned, Eigen::OuterStride<>>(v.data(), rows, cols,
                                                                        Eigen::OuterStride<>(rows <= 1 ? cols : v.stride(0))));
        return;
    }
    require(rows <= 1 || v.stride(0) == 1, "eigen_matmul", argument,
            "must have a unit stride in one dimension, got strides [", v.stride(0), ", ", v.stride(1), "]");
    f(Eigen::Map<col_major, Eigen::Unaligned, Eigen::OuterStride<>>(v.data(), rows, cols, Eigen::OuterStride<>(v.stride(1))));
}
} // namespace detail

//! The `matmul` model on Eigen's GEMM (float and double): c = a * b (or c += a * b) on maps of
//! the three views, row- or column-major as their strides say; Eigen's own blocking and, when
//! built with OpenMP, its threads.
struct eigen_matmul {
    //! c = a * b, or c += a * b when `accumulate`; a [m, k], b [k, n], c [m, n].
    template <class T>
    void operator()(const strided_view<const T, 2>& a, const strided_view<const T, 2>& b, const strided_view<T, 2>& c,
                    bool accumulate) const {
        require(a.extent(1) == b.extent(0) && a.extent(0) == c.extent(0) && b.extent(1) == c.extent(1), "eigen_matmul",
                "c", "has shape [", c.extent(0), ", ", c.extent(1), "] but a * b is [", a.extent(0), ", ", a.extent(1),
                "] * [", b.extent(0), ", ", b.extent(1), "]");
        detail::with_eigen_map(a, "a", [&](const auto& A) {
            detail::with_eigen_map(b, "b", [&](const auto& B) {
                detail::with_eigen_map(c, "c", [&](auto C) {
                    if (accumulate)
                        C.noalias() += A * B;
                    else
                        C.noalias() = A * B;
                });
            });
        });
    }
};

} // namespace selfreplay
