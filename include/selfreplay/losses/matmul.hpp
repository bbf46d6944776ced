#pragma once
//! \file
//! The `matmul` concept: the one matrix product the linear losses (`selfreplay/losses/linear.hpp`)
//! take from a backend, `c = a * b` or `c += a * b` on strided views, and `transposed`, which
//! turns the other products (`a * b^T`, `a^T * b`) into that one without copying.
//!
//! Models: `eigen_matmul` (`selfreplay/adapters/eigen.hpp`, Eigen's GEMM) and any user type with
//! the call operator below (tests/losses/test_linear.cpp has a three-loop model). A libtorch model
//! wraps the three views with `torch::from_blob(data, sizes, strides)` and calls `at::mm_out(c, a, b)`
//! or `c.addmm_(a, b)`. The core never includes a backend.

#include <concepts>

#include "selfreplay/tensor/strided_view.hpp"

namespace selfreplay {

//! A matrix-product backend for element type `T` (float or double).
//!
//! \par Required expressions
//! For `m` a const `M`, `a` a `strided_view<const T, 2>` [m, k], `b` a `strided_view<const T, 2>`
//! [k, n], `c` a `strided_view<T, 2>` [m, n] and `accumulate` a `bool`:
//! - `m(a, b, c, accumulate)`: computes c = a * b, or c += a * b when `accumulate`.
//!
//! \par Models
//! `eigen_matmul` (selfreplay/adapters/eigen.hpp), `libtorch::torch_matmul`
//! (selfreplay/adapters/torch.hpp), the three-loop model of tests/losses.
//!
//!
//! The callers guarantee: the extents agree; `c` does not overlap `a` or `b`; every view has a
//! unit stride in one of its two dimensions (row- or column-major with any leading dimension,
//! e.g. the `transposed` view of a row-major matrix); m, n, k >= 1.
//! The product may run on any number of threads; its rounding is the backend's.
template <class M, class T>
concept matmul = std::floating_point<T> &&
                 requires(const M& m, const strided_view<const T, 2>& a, const strided_view<const T, 2>& b,
                          const strided_view<T, 2>& c, bool accumulate) { m(a, b, c, accumulate); };

//! The transpose of a rank-2 view (extents and strides swapped), aliasing the same memory:
//! a row-major [V, D] matrix becomes a column-major [D, V] one.
template <class T>
constexpr strided_view<T, 2> transposed(const strided_view<T, 2>& v) {
    return {v.data(), {v.extent(1), v.extent(0)}, {v.stride(1), v.stride(0)}};
}

//! A non-owning, type-erased reference to a `matmul` model for `T` (used where the backend type
//! cannot be a template parameter, e.g. inside `objective_context`); the model must outlive it.
template <class T>
class matmul_ref {
public:
    //! Refers to `m`.
    template <class M>
        requires(matmul<M, T> && !std::same_as<M, matmul_ref>)
    matmul_ref(const M& m) noexcept // NOLINT(google-explicit-constructor): passed where a model is expected
        : object_(&m), call_([](const void* o, const strided_view<const T, 2>& a, const strided_view<const T, 2>& b,
                                const strided_view<T, 2>& c, bool accumulate) {
              (*static_cast<const M*>(o))(a, b, c, accumulate);
          }) {}

    //! c = a * b (c += a * b when `accumulate`), by the referenced model.
    void operator()(const strided_view<const T, 2>& a, const strided_view<const T, 2>& b, const strided_view<T, 2>& c,
                    bool accumulate) const {
        call_(object_, a, b, c, accumulate);
    }

private:
    const void* object_;
    void (*call_)(const void*, const strided_view<const T, 2>&, const strided_view<const T, 2>&,
                  const strided_view<T, 2>&, bool);
};

} // namespace selfreplay
