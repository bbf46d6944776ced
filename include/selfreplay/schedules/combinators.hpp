#pragma once
//! \file
//! Schedules built from schedules: `join` (sequence at boundaries, optax `join_schedules`),
//! `scale` (multiply by a constant) and `clamp` (bound to [lo, hi]). All constexpr when their
//! parts are.

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <tuple>
#include <utility>

#include "selfreplay/schedules/concept.hpp"

namespace selfreplay {

//! Schedules `parts` run one after another (optax `join_schedules` semantics): with
//! boundaries b_1 <= ... <= b_{n-1}, the part used at `step` is i = number of boundaries
//! <= step, and it is evaluated at `step - b_i` (b_0 = 0): each later part starts from its own
//! step 0. Build with `join(boundaries, parts...)`.
template <class... S>
struct joined {
    static_assert(sizeof...(S) >= 2, "selfreplay::join: give at least two schedules");
    static_assert((schedule<S> && ...),
                  "selfreplay::join: argument 'parts' does not model selfreplay::schedule " SELFREPLAY_SCHEDULE_HINT);

    std::tuple<S...> parts;                                //!< the schedules, in order
    std::array<std::int64_t, sizeof...(S) - 1> boundaries; //!< where each later part starts

    //! Checks the boundaries (non-negative, non-decreasing) and each part's own `check()`; throws
    //! `invalid_argument`.
    constexpr void check() const {
        for (std::size_t i = 0; i < boundaries.size(); ++i) {
            detail::schedule_require_nonnegative(boundaries[i], "join", "boundaries");
            if (i > 0)
                require(boundaries[i] >= boundaries[i - 1], "join", "boundaries", "must be non-decreasing, got ",
                        boundaries[i - 1], " then ", boundaries[i]);
        }
        std::apply([](const auto&... part) { (check_policy(part), ...); }, parts);
    }
    //! The value at `step` >= 0.
    constexpr double operator()(std::int64_t step) const {
        check();
        detail::schedule_require_step(step, "join");
        std::size_t i = 0;
        while (i < boundaries.size() && step >= boundaries[i]) ++i;
        const std::int64_t offset = i == 0 ? 0 : boundaries[i - 1];
        return call(i, step - offset, std::index_sequence_for<S...>{});
    }

private:
    template <std::size_t... I>
    constexpr double call(std::size_t which, std::int64_t local, std::index_sequence<I...>) const {
        double v = 0.0;
        (void)((I == which ? (v = static_cast<double>(std::get<I>(parts)(local)), true) : false) || ...);
        return v;
    }
};

//! `joined{{parts...}, boundaries}`: `join({1000}, linear_warmup{...}, cosine_decay{...})`.
//! `boundaries` has one entry fewer than `parts`.
template <class... S>
constexpr joined<S...> join(const std::int64_t (&boundaries)[sizeof...(S) - 1], S... parts) {
    joined<S...> j{std::tuple<S...>(std::move(parts)...), {}};
    for (std::size_t i = 0; i + 1 < sizeof...(S); ++i) j.boundaries[i] = boundaries[i];
    return j;
}

//! `factor * inner(step)`: a learning-rate shape reused for a replay coefficient, or a peak
//! learning rate applied to a unit-peak shape. `scale{.inner = cosine_decay{...}, .factor = 10}`.
template <class S>
struct scale {
    static_assert(schedule<S>,
                  "selfreplay::scale: argument 'inner' does not model selfreplay::schedule " SELFREPLAY_SCHEDULE_HINT);
    S inner;             //!< the schedule being scaled
    double factor = 1.0; //!< multiplier, finite

    //! Checks `factor` (throws `invalid_argument` when it is not finite) and `inner`'s own `check()`.
    constexpr void check() const {
        detail::schedule_require_finite(factor, "scale", "factor");
        check_policy(inner);
    }
    //! `factor * inner(step)`.
    constexpr double operator()(std::int64_t step) const {
        check();
        detail::schedule_require_step(step, "scale");
        return factor * static_cast<double>(inner(step));
    }
};

//! `inner(step)` bounded to [lo, hi]: e.g. a replay fraction kept in [0, 1/2], or a floor under
//! a decaying learning rate. `clamp{.inner = s, .lo = 1e-6}`.
template <class S>
struct clamp {
    static_assert(schedule<S>,
                  "selfreplay::clamp: argument 'inner' does not model selfreplay::schedule " SELFREPLAY_SCHEDULE_HINT);
    S inner;                                               //!< the schedule being bounded
    double lo = -std::numeric_limits<double>::infinity();  //!< lower bound (may be -inf)
    double hi = std::numeric_limits<double>::infinity();   //!< upper bound (may be +inf), >= lo

    //! Checks the bounds (not NaN, lo <= hi) and `inner`'s own `check()`; throws `invalid_argument`.
    constexpr void check() const {
        require(lo == lo, "clamp", "lo", "must not be NaN");
        require(hi == hi, "clamp", "hi", "must not be NaN");
        require(lo <= hi, "clamp", "lo", "must be <= hi = ", hi, ", got ", lo);
        check_policy(inner);
    }
    //! min(max(inner(step), lo), hi).
    constexpr double operator()(std::int64_t step) const {
        check();
        detail::schedule_require_step(step, "clamp");
        const double v = static_cast<double>(inner(step));
        return v < lo ? lo : (v > hi ? hi : v);
    }
};

} // namespace selfreplay
