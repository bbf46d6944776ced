#pragma once
//! \file
//! Mean accumulators over per-position values: `mean_loss` (the loss on previous-distribution
//! data, `prev_ntp`, or new data, `valid_ntp`), `mean_kl` (`prev_kl`, `valid_kl`),
//! `forgetting` (the paper's: loss now minus loss before finetuning) and `second_half_loss`.
//!
//! They take values the losses module already computed (its `per_position` [B, T] output, or a
//! `reduction::sum` value with its position count): nothing here recomputes a softmax.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>

#include "selfreplay/error.hpp"
#include "selfreplay/losses/common.hpp"
#include "selfreplay/metrics/detail/elements.hpp"
#include "selfreplay/metrics/exact_sum.hpp"
#include "selfreplay/tensor/concept.hpp"

namespace selfreplay {

namespace detail {
struct loss_tag {
    static constexpr const char* name = "mean_loss";
};
struct kl_tag {
    static constexpr const char* name = "mean_kl";
};
} // namespace detail

//! The mean of the values added: sum / count, with the sum kept exactly (`exact_sum`), so
//! merging accumulators is exact and order-free. `Tag` only names the metric in error messages
//! and keeps a KL mean from being merged into a loss mean; use `mean_loss` or `mean_kl`.
//!
//! Ways to add, freely mixed:
//! - `add(x)`: one value;
//! - `add(values)`: every element of any `tensor` model (for instance the losses' [B, T]
//!   `per_position` output: with the paper's convention the last position holds 0 and is
//!   counted, which reproduces `reduction::mean_all`);
//! - `add(values, mask)`: the elements of a [B, T] tensor where `mask` is nonzero
//!   (`reduction::mean_counted`);
//! - `add_sum(sum, n)`: a partial sum over `n` values (a `reduction::sum` loss with B * T or its
//!   counted positions).
//! NaN or infinite values are rejected with `invalid_argument` naming the element.
//!
//! Exported state (`export_state` / `import_state`): `state_size` = 69 signed 64-bit integers,
//! layout version `state_version` = 1: elements 0..67 are the sum's `exact_sum` state, element 68
//! is the count. The element-wise integer sum of exported states (an MPI sum-allreduce of
//! `MPI_INT64_T`) imports as the exact merge of the accumulators, as does a gather followed by
//! `import_state` and `merge` in any order.
namespace detail {
//! sum / count of an exact sum: the sum rounded once, then divided by count (> 0). When the sum
//! is beyond the double range (values near the largest double; the mean of finite values is
//! not), both are scaled by 2^-64 first: exact, so the quotient is the one an unbounded exponent
//! would give.
inline double exact_mean(const exact_sum& sum, std::int64_t count) {
    const double s = sum.scaled_value(0);
    if (!std::isinf(s)) return s / static_cast<double>(count);
    return sum.scaled_value(64) / std::ldexp(static_cast<double>(count), -64);
}
} // namespace detail

//! The exact mean of values added one by one or as tensors: the accumulator behind `mean_loss`
//! and `mean_kl` (`Tag` only tells them apart). A `forgetting_metric`.
template <class Tag>
class basic_mean {
public:
    //! Number of integers in an exported state.
    static constexpr std::size_t state_size = exact_sum::state_size + 1;
    //! Version of the state layout (see the class comment).
    static constexpr int state_version = 1;
    //! An exported state.
    using state_type = std::array<std::int64_t, state_size>;

    //! Adds one value.
    void add(double x) {
        require_finite(x, "x");
        sum_.add(x);
        ++count_;
    }

    //! Adds every element of `values` (any `tensor` model of floating-point elements; for a
    //! dynamic-rank backend pass `view<R>(x)`).
    template <class X>
        requires tensor<X>
    void add(const X& values) {
        const auto v = selfreplay::view(values);
        static_assert(std::is_floating_point_v<typename decltype(v)::value_type>,
                      "selfreplay::mean: the values must be floating-point");
        exact_sum local;
        if (v.is_contiguous()) { // fast path: one flat pass
            const auto* p = v.data();
            for (index_t i = 0, n = v.size(); i < n; ++i) {
                const double x = static_cast<double>(p[i]);
                if (!std::isfinite(x)) detail::require_finite_element(x, v.extents(), i, where(), "values");
                local.add_finite(x);
            }
        } else {
            index_t flat = 0;
            detail::for_each_offset(
                v.extents(),
                [&](index_t off) {
                    const double x = static_cast<double>(v.data()[off]);
                    detail::require_finite_element(x, v.extents(), flat++, where(), "values");
                    local.add_finite(x);
                },
                v.strides());
        }
        sum_.merge(local);
        count_ += v.size();
    }

    //! Any other argument of `add`: stops compilation with one sentence naming the concept and the
    //! argument (instead of a list of overloads that do not match).
    template <class X>
        requires(!tensor<X> && !std::is_convertible_v<const X&, double>)
    void add(const X&) {
        static_assert(detail::always_false<X>,
                      "selfreplay::mean_loss / mean_kl / forgetting add: argument 'values' does not model "
                      "selfreplay::tensor " SELFREPLAY_TENSOR_HINT);
    }

    //! Adds the elements of the [B, T] tensor `values` at positions where `mask` is nonzero
    //! (the losses' `position_mask`; an empty mask counts every position).
    template <class X>
        requires tensor<X>
    void add(const X& values, const position_mask& mask) {
        const auto v = selfreplay::view<2>(values);
        static_assert(std::is_floating_point_v<typename decltype(v)::value_type>,
                      "selfreplay::mean: the values must be floating-point");
        if (!mask.empty() && (mask.extent(0) != v.extent(0) || mask.extent(1) != v.extent(1)))
            throw invalid_argument(where(), "mask",
                                   "has shape [" + std::to_string(mask.extent(0)) + ", " + std::to_string(mask.extent(1)) +
                                       "] but 'values' has shape [" + std::to_string(v.extent(0)) + ", " +
                                       std::to_string(v.extent(1)) + "]");
        exact_sum local;
        std::int64_t n = 0;
        for (index_t b = 0; b < v.extent(0); ++b)
            for (index_t t = 0; t < v.extent(1); ++t) {
                if (!mask(b, t)) continue;
                const double x = static_cast<double>(v(b, t));
                detail::require_finite_element(x, v.extents(), b * v.extent(1) + t, where(), "values");
                local.add(x);
                ++n;
            }
        sum_.merge(local);
        count_ += n;
    }

    //! Adds a partial sum `sum` over `n >= 0` values.
    void add_sum(double sum, std::int64_t n) {
        require_finite(sum, "sum");
        if (n < 0) throw invalid_argument(where(), "n", "must be >= 0, got " + std::to_string(n));
        if (n == 0 && sum != 0.0) throw invalid_argument(where(), "sum", "must be 0 when n is 0, got " + std::to_string(sum));
        sum_.add(sum);
        count_ += n;
    }

    //! Adds everything `other` holds (exact).
    void merge(const basic_mean& other) {
        sum_.merge(other.sum_);
        count_ += other.count_;
    }

    //! The state: the exact sum's chunks, then the count (layout in the class comment).
    state_type export_state() const noexcept {
        state_type s{};
        const auto chunks = sum_.export_state();
        std::copy(chunks.begin(), chunks.end(), s.begin());
        s[exact_sum::state_size] = count_;
        return s;
    }

    //! Replaces the contents with an exported state (or an element-wise integer sum of exported
    //! states). Throws `invalid_argument` naming `state`, and leaves this accumulator unchanged,
    //! unless it holds `state_size` integers, chunks that `exact_sum::import_state` accepts, a
    //! count >= 0, and a zero sum when the count is 0.
    void import_state(std::span<const std::int64_t> state) {
        const std::string where = std::string(Tag::name) + "::import_state";
        require(state.size() == state_size, where, "state", "must hold ", state_size, " integers (layout version ",
                state_version, "), got ", state.size());
        const std::int64_t count = state[exact_sum::state_size];
        require(count >= 0, where, "state", "holds the count ", count, " (element ", exact_sum::state_size,
                "), which must be >= 0");
        exact_sum sum;
        sum.import_state(state.first(exact_sum::state_size));
        require(count > 0 || sum.scaled_value(0) == 0.0, where, "state", "holds a nonzero sum with a count of 0");
        sum_ = sum;
        count_ = count;
    }

    //! sum / count (the exact sum rounded once, then divided; also when the sum itself is beyond
    //! the double range). Throws `invalid_argument` when nothing was added.
    double value() const {
        if (count_ == 0) throw invalid_argument(std::string(Tag::name) + "::value", "count", "is 0: nothing was added");
        return detail::exact_mean(sum_, count_);
    }
    //! The exact sum, rounded once.
    double sum() const { return sum_.value(); }
    //! Number of values added.
    std::int64_t count() const noexcept { return count_; }

private:
    static std::string where() { return std::string(Tag::name) + "::add"; }
    static void require_finite(double x, const char* argument) {
        if (!std::isfinite(x)) throw invalid_argument(where(), argument, "must be finite, got " + std::to_string(x));
    }

    exact_sum sum_;
    std::int64_t count_ = 0;
};

//! Mean next-token loss in nats (the paper's `prev_ntp` on previous-distribution data,
//! `valid_ntp` on new data). A `forgetting_metric`.
using mean_loss = basic_mean<detail::loss_tag>;

//! Mean KL(pi || theta) in nats over per-position values from the losses module (`prev_kl`,
//! `valid_kl` in the paper). A `forgetting_metric`.
using mean_kl = basic_mean<detail::kl_tag>;

//! The paper's forgetting: the mean loss on previous-distribution data now minus the same loss
//! before finetuning, `loss_before` (nats; > 0 means forgotten). A `forgetting_metric`:
//! `add` overloads are those of `mean_loss`; `merge` requires the same `loss_before`.
class forgetting {
public:
    //! Forgetting relative to a loss of 0 (set the real baseline with the other constructor).
    forgetting() = default;
    //! Forgetting relative to `loss_before` (the previous-distribution loss of theta_0 = pi).
    explicit forgetting(double loss_before) : before_(loss_before) {
        if (!std::isfinite(loss_before))
            throw invalid_argument("forgetting", "loss_before", "must be finite, got " + std::to_string(loss_before));
    }

    //! Adds values as `mean_loss::add` does.
    template <class... A>
    void add(const A&... args) {
        after_.add(args...);
    }
    //! Adds a partial sum as `mean_loss::add_sum` does.
    void add_sum(double sum, std::int64_t n) { after_.add_sum(sum, n); }
    //! Adds everything `other` holds; throws `invalid_argument` if its `loss_before` differs.
    void merge(const forgetting& other) {
        if (other.before_ != before_)
            throw invalid_argument("forgetting::merge", "other",
                                   "has loss_before " + std::to_string(other.before_) + " but this one has " +
                                       std::to_string(before_));
        after_.merge(other.after_);
    }
    //! mean loss now - loss_before. Throws `invalid_argument` when nothing was added.
    double value() const { return after_.value() - before_; }
    //! Number of values added.
    std::int64_t count() const noexcept { return after_.count(); }
    //! The baseline.
    double loss_before() const noexcept { return before_; }
    //! The mean loss now.
    const mean_loss& loss_after() const noexcept { return after_; }

private:
    double before_ = 0.0;
    mean_loss after_;
};

//! Mean loss over the second half of each sequence only: positions t >= T / 2 (integer
//! division; the middle position of an odd T belongs to the second half) of a [B, T]
//! per-position tensor. Late positions have long contexts, so this isolates in-context
//! ability from the first tokens' unconditional guesses. A `forgetting_metric`.
class second_half_loss {
public:
    //! Adds positions t >= T/2 of the [B, T] tensor `per_position`.
    template <class X>
        requires tensor<X>
    void add(const X& per_position) {
        add(per_position, position_mask{});
    }
    //! Any other argument of `add`: stops compilation with one sentence naming the concept and the
    //! argument.
    template <class X>
        requires(!tensor<X>)
    void add(const X&) {
        static_assert(detail::always_false<X>,
                      "selfreplay::second_half_loss::add: argument 'per_position' does not model selfreplay::tensor "
                      SELFREPLAY_TENSOR_HINT);
    }
    //! Adds positions t >= T/2 of `per_position` where `mask` (the losses' `position_mask`,
    //! [B, T]) is nonzero.
    template <class X>
        requires tensor<X>
    void add(const X& per_position, const position_mask& mask) {
        const auto v = selfreplay::view<2>(per_position);
        static_assert(std::is_floating_point_v<typename decltype(v)::value_type>,
                      "selfreplay::second_half_loss: the values must be floating-point");
        if (!mask.empty() && (mask.extent(0) != v.extent(0) || mask.extent(1) != v.extent(1)))
            throw invalid_argument("second_half_loss::add", "mask", "must have the shape of 'per_position'");
        exact_sum local;
        std::int64_t n = 0;
        for (index_t b = 0; b < v.extent(0); ++b)
            for (index_t t = v.extent(1) / 2; t < v.extent(1); ++t) {
                if (!mask(b, t)) continue;
                const double x = static_cast<double>(v(b, t));
                detail::require_finite_element(x, v.extents(), b * v.extent(1) + t, "second_half_loss::add",
                                               "per_position");
                local.add(x);
                ++n;
            }
        sum_.merge(local);
        count_ += n;
    }
    //! Adds everything `other` holds (exact).
    void merge(const second_half_loss& other) {
        sum_.merge(other.sum_);
        count_ += other.count_;
    }
    //! The mean. Throws `invalid_argument` when nothing was added.
    double value() const {
        if (count_ == 0) throw invalid_argument("second_half_loss::value", "count", "is 0: nothing was added");
        return detail::exact_mean(sum_, count_);
    }
    //! Number of positions added.
    std::int64_t count() const noexcept { return count_; }

private:
    exact_sum sum_;
    std::int64_t count_ = 0;
};

} // namespace selfreplay
