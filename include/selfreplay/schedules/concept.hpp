#pragma once
//! \file
//! The `schedule` concept (step -> value) and the checks every schedule model shares.
//!
//! A schedule maps a non-negative integer step (`std::int64_t`) to a `double`: a learning rate,
//! a replay coefficient `c`, a replay fraction. Models are small aggregates built with designated
//! initializers (`warmup_cosine{.peak = 3e-4, .warmup_steps = 100, .decay_steps = 10'000}`);
//! their parameters are checked on every call (and by a `strategy` holding them, at its
//! construction), so a bad parameter or a negative step throws `selfreplay::invalid_argument`
//! instead of returning a wrong value.

#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "selfreplay/error.hpp"

namespace selfreplay {

//! The end of the sentence with which a function rejects an argument that does not model
//! `schedule` (a string literal, for `static_assert`).
#define SELFREPLAY_SCHEDULE_HINT "(a copyable callable s(std::int64_t step) returning a double)"

//! A schedule: a copyable callable from a step to a value.
//!
//! \par Required expressions
//! For `s` a const `S` (copy-constructible) and `step` a `std::int64_t` >= 0:
//! - `s(step)` -> convertible to `double`: the value at `step`;
//! - optional: `s.check()`, which throws `invalid_argument` for a bad parameter (`check_policy`).
//!
//! \par Laws
//! Checked for every model in tests/schedules: defined and finite at step 0 and at every later
//! step; deterministic (the same step gives the same value); `s(-1)` throws
//! `selfreplay::invalid_argument`.
//!
//! \par Models
//! `constant` (the trivial model to copy), `linear`, `polynomial`, `warmup_constant`, `exponential_decay`,
//! `piecewise_constant`, `piecewise_linear`, `inverse_sqrt`, `cosine_decay`, `warmup_cosine`, `sgdr`,
//! `one_cycle`, `wsd`, and the combinators `joined` (built with `join`), `scale`, `clamp`; any user callable.
template <class S>
concept schedule = std::copy_constructible<S> && requires(const S& s, std::int64_t step) {
    { s(step) } -> std::convertible_to<double>;
};

//! A parameter that may be a number or a `schedule` (a replay coefficient, a fraction).
template <class C>
concept number_or_schedule = std::is_arithmetic_v<C> || schedule<C>;

//! The value of a `number_or_schedule` at `step`: the number itself, or `value(step)`.
template <number_or_schedule C>
constexpr double value_at(const C& value, std::int64_t step) {
    if constexpr (std::is_arithmetic_v<C>)
        return static_cast<double>(value);
    else
        return static_cast<double>(value(step));
}

//! Any other call of `value_at`: stops compilation with one sentence naming the concept and the
//! argument (instead of a list of unsatisfied constraints).
template <class C>
    requires(!number_or_schedule<C>)
constexpr double value_at(const C&, std::int64_t) {
    static_assert(detail::always_false<C>,
                  "selfreplay::value_at: argument 'value' does not model selfreplay::number_or_schedule "
                  "(a number, or a copyable callable s(std::int64_t step) returning a double)");
    return 0.0;
}

//! Shapes of a ramp from one value to another, used by `wsd` (warm-up and decay) and
//! `one_cycle` (linear or cosine). For a progress p in [0, 1] the rising factor is
//! linear: p; cosine: (1 - cos(pi p)) / 2; one_minus_sqrt: 1 - sqrt(1 - p) (HF `"1-sqrt"`).
enum class curve { linear, cosine, one_minus_sqrt };

namespace detail {

//! Throws unless `v` is finite (constexpr-friendly: no <cmath>).
constexpr void schedule_require_finite(double v, std::string_view where, std::string_view argument) {
    require(v == v && v - v == 0.0, where, argument, "must be finite, got ", v);
}

//! Throws unless `step >= 0`.
constexpr void schedule_require_step(std::int64_t step, std::string_view where) {
    require(step >= 0, where, "step", "must be >= 0, got ", step);
}

//! Throws unless `n >= 0`.
constexpr void schedule_require_nonnegative(std::int64_t n, std::string_view where, std::string_view argument) {
    require(n >= 0, where, argument, "must be >= 0, got ", n);
}

//! Throws unless `n > 0`.
constexpr void schedule_require_positive(std::int64_t n, std::string_view where, std::string_view argument) {
    require(n > 0, where, argument, "must be > 0, got ", n);
}

} // namespace detail
} // namespace selfreplay
