#pragma once
//! \file
//! Weight-space metrics over a sequence of parameter tensors: the L2 norm, and the paper's ratio
//! ||theta - pi|| / ||pi - theta_0|| (how far finetuning moved the weights relative to how far
//! pretraining moved them).

#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>

#include "selfreplay/error.hpp"
#include "selfreplay/metrics/detail/elements.hpp"
#include "selfreplay/metrics/exact_sum.hpp"
#include "selfreplay/tensor/concept.hpp"

namespace selfreplay {

//! ||theta - pi||_2 / ||pi - theta_0||_2 over all parameters of a model, fed one parameter
//! tensor at a time: theta the model being finetuned, pi the frozen copy taken when finetuning
//! started, theta_0 the initialisation before pretraining. Squared differences are computed in
//! double and summed exactly (`exact_sum`), so tensors may come in any order and from any
//! number of shards. A `forgetting_metric`.
class weight_distance_ratio {
public:
    //! Any other arguments of `add`: stops compilation with one sentence naming the concept and the
    //! first argument that does not model it.
    template <class A, class B, class C>
        requires(!tensor<A> || !tensor<B> || !tensor<C>)
    void add(const A&, const B&, const C&) {
        if constexpr (!tensor<A>)
            static_assert(detail::always_false<A>,
                          "selfreplay::weight_distance_ratio::add: argument 'theta' does not model selfreplay::tensor "
                          SELFREPLAY_TENSOR_HINT);
        else if constexpr (!tensor<B>)
            static_assert(detail::always_false<B>,
                          "selfreplay::weight_distance_ratio::add: argument 'pi' does not model selfreplay::tensor "
                          SELFREPLAY_TENSOR_HINT);
        else
            static_assert(detail::always_false<C>,
                          "selfreplay::weight_distance_ratio::add: argument 'theta_0' does not model selfreplay::tensor "
                          SELFREPLAY_TENSOR_HINT);
    }
    //! Adds one parameter tensor in its three versions (any `tensor` models of the same static
    //! rank and shape, floating-point; for dynamic-rank backends pass `view<R>(x)`).
    template <class A, class B, class C>
        requires(tensor<A> && tensor<B> && tensor<C>)
    void add(const A& theta, const B& pi, const C& theta_0) {
        const auto t = selfreplay::view(theta);
        const auto p = selfreplay::view(pi);
        const auto z = selfreplay::view(theta_0);
        static_assert(std::is_floating_point_v<typename decltype(t)::value_type> &&
                          std::is_floating_point_v<typename decltype(p)::value_type> &&
                          std::is_floating_point_v<typename decltype(z)::value_type>,
                      "selfreplay::weight_distance_ratio: parameters must be floating-point");
        require_same_extents(p, t, "weight_distance_ratio::add", "pi", "theta");
        require_same_extents(z, t, "weight_distance_ratio::add", "theta_0", "theta");
        exact_sum moved, reference;
        index_t flat = 0;
        detail::for_each_offset(
            t.extents(),
            [&](index_t ot, index_t op, index_t oz) {
                const double a = static_cast<double>(t.data()[ot]), b = static_cast<double>(p.data()[op]),
                             c = static_cast<double>(z.data()[oz]);
                detail::require_finite_element(a, t.extents(), flat, "weight_distance_ratio::add", "theta");
                detail::require_finite_element(b, t.extents(), flat, "weight_distance_ratio::add", "pi");
                detail::require_finite_element(c, t.extents(), flat, "weight_distance_ratio::add", "theta_0");
                ++flat;
                moved.add((a - b) * (a - b));
                reference.add((b - c) * (b - c));
            },
            t.strides(), p.strides(), z.strides());
        moved_.merge(moved);
        reference_.merge(reference);
        count_ += t.size();
    }

    //! Adds one parameter tensor given as three flat spans of equal length.
    template <class T>
        requires std::is_floating_point_v<T>
    void add(std::span<const T> theta, std::span<const T> pi, std::span<const T> theta_0) {
        const auto n = static_cast<index_t>(theta.size());
        if (pi.size() != theta.size() || theta_0.size() != theta.size())
            throw invalid_argument("weight_distance_ratio::add", "pi",
                                   "theta, pi and theta_0 must have the same length, got " + std::to_string(theta.size()) +
                                       ", " + std::to_string(pi.size()) + ", " + std::to_string(theta_0.size()));
        add(make_view(theta.data(), {n}), make_view(pi.data(), {n}), make_view(theta_0.data(), {n}));
    }

    //! Adds everything `other` holds (exact).
    void merge(const weight_distance_ratio& other) {
        moved_.merge(other.moved_);
        reference_.merge(other.reference_);
        count_ += other.count_;
    }

    //! ||theta - pi|| / ||pi - theta_0||; NaN when pi equals theta_0 (no pretraining: the ratio
    //! is undefined; the reference code's `weights_l2_theta_pi_over_pi_init` is NaN there too, and
    //! `report` writes it as null). Throws `invalid_argument` when nothing was added.
    double value() const {
        if (count_ == 0) throw invalid_argument("weight_distance_ratio::value", "count", "is 0: nothing was added");
        const double den = reference_.value();
        if (den == 0.0) return std::numeric_limits<double>::quiet_NaN();
        return std::sqrt(moved_.value()) / std::sqrt(den);
    }
    //! ||theta - pi||_2.
    double distance() const { return std::sqrt(moved_.value()); }
    //! ||pi - theta_0||_2.
    double reference_distance() const { return std::sqrt(reference_.value()); }
    //! Number of parameters added.
    std::int64_t count() const noexcept { return count_; }

private:
    exact_sum moved_, reference_;
    std::int64_t count_ = 0;
};

//! The L2 norm sqrt(sum of squares) of all parameters, fed one tensor at a time (squares in
//! double, summed exactly). A `forgetting_metric` (the paper tracks weight norms).
class weight_norm {
public:
    //! Any other argument of `add`: stops compilation with one sentence naming the concept and the
    //! argument.
    template <class X>
        requires(!tensor<X>)
    void add(const X&) {
        static_assert(detail::always_false<X>,
                      "selfreplay::weight_norm::add: argument 'parameters' does not model selfreplay::tensor "
                      SELFREPLAY_TENSOR_HINT);
    }
    //! Adds every element of one parameter tensor (any `tensor` model of floating-point elements).
    template <class X>
        requires tensor<X>
    void add(const X& parameters) {
        const auto v = selfreplay::view(parameters);
        static_assert(std::is_floating_point_v<typename decltype(v)::value_type>,
                      "selfreplay::weight_norm: parameters must be floating-point");
        exact_sum local;
        index_t flat = 0;
        detail::for_each_offset(
            v.extents(),
            [&](index_t off) {
                const double x = static_cast<double>(v.data()[off]);
                detail::require_finite_element(x, v.extents(), flat++, "weight_norm::add", "parameters");
                local.add(x * x);
            },
            v.strides());
        squares_.merge(local);
        count_ += v.size();
    }
    //! Adds one parameter tensor given as a flat span.
    template <class T>
        requires std::is_floating_point_v<T>
    void add(std::span<const T> parameters) {
        add(make_view(parameters.data(), {static_cast<index_t>(parameters.size())}));
    }
    //! Adds everything `other` holds (exact).
    void merge(const weight_norm& other) {
        squares_.merge(other.squares_);
        count_ += other.count_;
    }
    //! The norm (0 when nothing was added).
    double value() const { return std::sqrt(squares_.value()); }
    //! Number of parameters added.
    std::int64_t count() const noexcept { return count_; }

private:
    exact_sum squares_;
    std::int64_t count_ = 0;
};

} // namespace selfreplay
