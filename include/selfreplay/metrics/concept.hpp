#pragma once
//! \file
//! The `forgetting_metric` concept: an accumulator that takes values in pieces, merges exactly
//! with another accumulator of the same metric, and reports one number.

#include <concepts>
#include <cstdint>

namespace selfreplay {

//! An accumulator of one forgetting metric.
//!
//! \par Required expressions
//! For `A a; const A b;` (`A` copyable and default-initializable):
//! - `a.merge(b)`: afterwards `a` holds everything `b` held as well;
//! - `b.value()` -> convertible to `double`: the metric (throws `invalid_argument` when it is
//!   undefined, e.g. nothing was added to a mean);
//! - `b.count()` -> convertible to `std::int64_t`: how many values went in.
//! Each model also has its own `add(...)` overloads (what it measures decides what it takes).
//!
//! \par Laws
//! Tested for every model with random split points: adding values to several accumulators and
//! merging them gives the same `value()` as adding all of them to one, bit for bit (sums are kept
//! exactly with `exact_sum`).
//!
//! \par Models
//! `mean_loss` (the trivial model to copy), `mean_kl`, `forgetting`, `second_half_loss`,
//! `weight_norm`, `weight_distance_ratio`.
template <class A>
concept forgetting_metric = std::copyable<A> && std::default_initializable<A> && requires(A& a, const A& b) {
    a.merge(b);
    { b.value() } -> std::convertible_to<double>;
    { b.count() } -> std::convertible_to<std::int64_t>;
};

} // namespace selfreplay
