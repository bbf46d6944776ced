#pragma once
//! \file
//! Schedules without trigonometry: constant, linear and polynomial ramps, the paper's
//! warm-up-then-constant, exponential (continuous or staircase), piecewise constant and
//! piecewise linear, inverse square root. All are constexpr (their `pow`/`sqrt` go through
//! selfreplay/schedules/math.hpp during constant evaluation).

#include <cstdint>
#include <optional>
#include <vector>

#include "selfreplay/schedules/concept.hpp"
#include "selfreplay/schedules/math.hpp"

namespace selfreplay {

//! The same value at every step (optax `constant_schedule`). The trivial `schedule` model.
struct constant {
    double value = 0.0; //!< the value returned at every step

    //! Checks the parameters; throws `invalid_argument` if `value` is not finite.
    constexpr void check() const { detail::schedule_require_finite(value, "constant", "value"); }
    //! `value`, for any step >= 0.
    constexpr double operator()(std::int64_t step) const {
        check();
        detail::schedule_require_step(step, "constant");
        return value;
    }
};

//! Polynomial ramp from `init` to `end` (optax `polynomial_schedule`): with
//! k = clamp(step - transition_begin, 0, transition_steps),
//! value = (init - end) * (1 - k / transition_steps)^power + end.
//! `init` before `transition_begin`, `end` from `transition_begin + transition_steps` on.
//! PyTorch `PolynomialLR(total_iters, power)` is `polynomial{.init = base_lr, .end = 0,
//! .power = power, .transition_steps = total_iters}`.
//! Differs from optax in one corner: `transition_steps == 0` jumps to `end` at
//! `transition_begin` (optax holds `init_value` forever).
struct polynomial {
    double init = 1.0;                  //!< value before and at `transition_begin`
    double end = 0.0;                   //!< value from `transition_begin + transition_steps` on
    double power = 1.0;                 //!< exponent, > 0 (1 is linear)
    std::int64_t transition_steps = 0;  //!< length of the ramp in steps, >= 0
    std::int64_t transition_begin = 0;  //!< first step of the ramp, >= 0

    //! Checks the parameters; throws `invalid_argument` naming the bad one.
    constexpr void check() const {
        detail::schedule_require_finite(init, "polynomial", "init");
        detail::schedule_require_finite(end, "polynomial", "end");
        detail::schedule_require_finite(power, "polynomial", "power");
        require(power > 0.0, "polynomial", "power", "must be > 0, got ", power);
        detail::schedule_require_nonnegative(transition_steps, "polynomial", "transition_steps");
        detail::schedule_require_nonnegative(transition_begin, "polynomial", "transition_begin");
    }
    //! The value at `step` >= 0.
    constexpr double operator()(std::int64_t step) const {
        check();
        detail::schedule_require_step(step, "polynomial");
        if (step < transition_begin) return init;
        if (step - transition_begin >= transition_steps) return end;
        const double frac = 1.0 - static_cast<double>(step - transition_begin) / static_cast<double>(transition_steps);
        return (init - end) * (power == 1.0 ? frac : detail::cx_pow(frac, power)) + end;
    }
};

//! Linear ramp from `init` to `end` over `transition_steps` steps starting at
//! `transition_begin` (optax `linear_schedule`; `polynomial` with power 1):
//! value = (init - end) * (1 - k / transition_steps) + end, k = clamp(step - begin, 0, steps).
//! PyTorch `LinearLR(start_factor, end_factor, total_iters)` is
//! `linear{.init = base * start_factor, .end = base * end_factor, .transition_steps = total_iters}`.
struct linear {
    double init = 1.0;                 //!< value up to `transition_begin`
    double end = 0.0;                  //!< value from `transition_begin + transition_steps` on
    std::int64_t transition_steps = 0; //!< length of the ramp, >= 0 (0: jump to `end`)
    std::int64_t transition_begin = 0; //!< first step of the ramp, >= 0

    //! Checks the parameters; throws `invalid_argument` naming the bad one.
    constexpr void check() const { as_polynomial().check(); }
    //! The value at `step` >= 0.
    constexpr double operator()(std::int64_t step) const { return as_polynomial()(step); }
    //! The equivalent `polynomial` (power 1).
    constexpr polynomial as_polynomial() const {
        return {.init = init, .end = end, .power = 1.0, .transition_steps = transition_steps,
                .transition_begin = transition_begin};
    }
};

//! Linear warm-up from `init` to `peak` over `warmup_steps` steps, then `peak` forever: the
//! paper's default learning-rate schedule (reference code: linear warm-up from 0, then constant).
//! value = peak + (init - peak) * (1 - step / warmup_steps) for step < warmup_steps, else peak.
//! Same as optax `warmup_constant_schedule(init, peak, warmup_steps)` and HF
//! `get_constant_schedule_with_warmup` (with `init = 0`); `warmup_steps == 0` gives `peak` from
//! step 0 (optax would hold `init` forever).
struct warmup_constant {
    double peak = 1.0;             //!< value from `warmup_steps` on
    std::int64_t warmup_steps = 0; //!< length of the linear warm-up, >= 0
    double init = 0.0;             //!< value at step 0

    //! Checks the parameters; throws `invalid_argument` naming the bad one.
    constexpr void check() const { ramp().check(); }
    //! The value at `step` >= 0.
    constexpr double operator()(std::int64_t step) const { return ramp()(step); }

private:
    constexpr polynomial ramp() const {
        return {.init = init, .end = peak, .power = 1.0, .transition_steps = warmup_steps, .transition_begin = 0};
    }
};

//! A linear warm-up that holds its peak: another name for `warmup_constant`, reading better as
//! the first piece of a `join` (`join({1000}, linear_warmup{.peak = 1e-3, .warmup_steps = 1000},
//! cosine_decay{...})`).
using linear_warmup = warmup_constant;

//! Exponential decay (optax `exponential_decay`): with k = step - transition_begin,
//! value = init for k <= 0, else init * decay_rate^(k / transition_steps), the exponent floored
//! when `staircase`; then bounded by `end` if given (a lower bound when decay_rate < 1, an upper
//! bound when > 1). PyTorch `ExponentialLR(gamma)` is `{.init = base, .transition_steps = 1,
//! .decay_rate = gamma}`; `StepLR(step_size, gamma)` adds `.staircase = true` with
//! `.transition_steps = step_size`.
struct exponential_decay {
    double init = 1.0;                  //!< value at and before `transition_begin`
    std::int64_t transition_steps = 1;  //!< steps per factor of `decay_rate`, > 0
    double decay_rate = 1.0;            //!< factor per `transition_steps`, > 0
    std::int64_t transition_begin = 0;  //!< first decaying step, >= 0
    bool staircase = false;             //!< decay in whole multiples of `transition_steps`
    std::optional<double> end{};        //!< optional bound where the decay stops

    //! Checks the parameters; throws `invalid_argument` naming the bad one.
    constexpr void check() const {
        detail::schedule_require_finite(init, "exponential_decay", "init");
        detail::schedule_require_positive(transition_steps, "exponential_decay", "transition_steps");
        detail::schedule_require_finite(decay_rate, "exponential_decay", "decay_rate");
        require(decay_rate > 0.0, "exponential_decay", "decay_rate", "must be > 0, got ", decay_rate);
        detail::schedule_require_nonnegative(transition_begin, "exponential_decay", "transition_begin");
        if (end) detail::schedule_require_finite(*end, "exponential_decay", "end");
    }
    //! The value at `step` >= 0.
    constexpr double operator()(std::int64_t step) const {
        check();
        detail::schedule_require_step(step, "exponential_decay");
        const std::int64_t k = step - transition_begin;
        double v = init;
        if (k > 0) {
            const double p = staircase ? static_cast<double>(k / transition_steps)
                                       : static_cast<double>(k) / static_cast<double>(transition_steps);
            v = init * detail::cx_pow(decay_rate, p);
        }
        if (end) v = decay_rate < 1.0 ? (v < *end ? *end : v) : (v > *end ? *end : v);
        return v;
    }
};

//! Piecewise constant (optax `piecewise_constant_schedule`, as its code computes it):
//! value = init * product of `scales[i]` over all i with step >= boundaries[i].
//! PyTorch `MultiStepLR(milestones, gamma)` is `{.init = base, .boundaries = milestones,
//! .scales = {gamma, gamma, ...}}`.
//! Constexpr in a constant expression that builds the vectors (C++20 transient allocation).
struct piecewise_constant {
    double init = 1.0;                     //!< value before the first boundary
    std::vector<std::int64_t> boundaries{}; //!< strictly increasing steps, >= 0
    std::vector<double> scales{};         //!< one factor >= 0 per boundary

    //! Checks the parameters; throws `invalid_argument` naming the bad one.
    constexpr void check() const {
        detail::schedule_require_finite(init, "piecewise_constant", "init");
        require(boundaries.size() == scales.size(), "piecewise_constant", "scales", "must have one entry per boundary: ",
                scales.size(), " scales for ", boundaries.size(), " boundaries");
        for (std::size_t i = 0; i < boundaries.size(); ++i) {
            detail::schedule_require_nonnegative(boundaries[i], "piecewise_constant", "boundaries");
            if (i > 0)
                require(boundaries[i] > boundaries[i - 1], "piecewise_constant", "boundaries",
                        "must be strictly increasing, got ", boundaries[i - 1], " then ", boundaries[i]);
            detail::schedule_require_finite(scales[i], "piecewise_constant", "scales");
            require(scales[i] >= 0.0, "piecewise_constant", "scales", "must be >= 0, got ", scales[i]);
        }
    }
    //! The value at `step` >= 0.
    constexpr double operator()(std::int64_t step) const {
        check();
        detail::schedule_require_step(step, "piecewise_constant");
        double v = init;
        for (std::size_t i = 0; i < boundaries.size() && step >= boundaries[i]; ++i) v *= scales[i];
        return v;
    }
};

//! Piecewise linear through knots (steps[k], values[k]) (numpy `interp`; optax
//! `piecewise_interpolate_schedule("linear", ...)` given values instead of scales):
//! values[0] up to steps[0], values.back() from steps.back() on, linear in between.
struct piecewise_linear {
    std::vector<std::int64_t> steps{};        //!< knot steps, strictly increasing, >= 0, at least one
    std::vector<double> values{};           //!< value at each knot

    //! Checks the parameters; throws `invalid_argument` naming the bad one.
    constexpr void check() const {
        require(!steps.empty(), "piecewise_linear", "steps", "must hold at least one knot");
        require(steps.size() == values.size(), "piecewise_linear", "values", "must have one entry per knot: ", values.size(),
                " values for ", steps.size(), " steps");
        for (std::size_t i = 0; i < steps.size(); ++i) {
            detail::schedule_require_nonnegative(steps[i], "piecewise_linear", "steps");
            if (i > 0)
                require(steps[i] > steps[i - 1], "piecewise_linear", "steps", "must be strictly increasing, got ", steps[i - 1],
                        " then ", steps[i]);
            detail::schedule_require_finite(values[i], "piecewise_linear", "values");
        }
    }
    //! The value at `step` >= 0.
    constexpr double operator()(std::int64_t step) const {
        check();
        detail::schedule_require_step(step, "piecewise_linear");
        if (step <= steps.front()) return values.front();
        for (std::size_t k = 1; k < steps.size(); ++k) {
            if (step < steps[k]) {
                const double t = static_cast<double>(step - steps[k - 1]) / static_cast<double>(steps[k] - steps[k - 1]);
                return values[k - 1] + (values[k] - values[k - 1]) * t;
            }
        }
        return values.back();
    }
};

//! Inverse square root with linear warm-up (HF `get_inverse_sqrt_schedule`):
//! peak * step / max(1, warmup_steps) for step < warmup_steps, else
//! peak / sqrt((step + timescale - warmup_steps) / timescale), which is `peak` at the end of
//! the warm-up. `timescale == 0` means HF's default: `warmup_steps`, or 10,000 when that is 0.
struct inverse_sqrt {
    double peak = 1.0;             //!< value at the end of the warm-up
    std::int64_t warmup_steps = 0; //!< linear warm-up length, >= 0
    std::int64_t timescale = 0;    //!< decay timescale, >= 0 (0: the HF default)

    //! Checks the parameters; throws `invalid_argument` naming the bad one.
    constexpr void check() const {
        detail::schedule_require_finite(peak, "inverse_sqrt", "peak");
        detail::schedule_require_nonnegative(warmup_steps, "inverse_sqrt", "warmup_steps");
        detail::schedule_require_nonnegative(timescale, "inverse_sqrt", "timescale");
    }
    //! The timescale in use (resolving the default).
    constexpr std::int64_t effective_timescale() const {
        return timescale > 0 ? timescale : (warmup_steps > 0 ? warmup_steps : 10'000);
    }
    //! The value at `step` >= 0.
    constexpr double operator()(std::int64_t step) const {
        check();
        detail::schedule_require_step(step, "inverse_sqrt");
        if (step < warmup_steps) return peak * static_cast<double>(step) / static_cast<double>(warmup_steps);
        const std::int64_t ts = effective_timescale();
        // (step - warmup_steps) + ts in double: the int64 sum overflows for steps near 2^63
        return peak * (1.0 / detail::cx_sqrt((static_cast<double>(step - warmup_steps) + static_cast<double>(ts)) /
                                             static_cast<double>(ts)));
    }
};

} // namespace selfreplay
