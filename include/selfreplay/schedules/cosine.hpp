#pragma once
//! \file
//! Cosine-shaped schedules: cosine decay, warm-up then cosine to a floor, cosine with warm
//! restarts (SGDR) and one-cycle. constexpr through the series cosine of
//! selfreplay/schedules/math.hpp (run time uses `std::cos`).

#include <cstdint>
#include <limits>

#include "selfreplay/schedules/basic.hpp"
#include "selfreplay/schedules/concept.hpp"
#include "selfreplay/schedules/math.hpp"

namespace selfreplay {

//! Cosine decay (optax `cosine_decay_schedule`): with k = min(step, decay_steps),
//! c = (1 + cos(pi k / decay_steps)) / 2, value = init * ((1 - alpha) c^exponent + alpha).
//! Reaches `init * alpha` at `decay_steps` and stays there. PyTorch
//! `CosineAnnealingLR(T_max, eta_min)` is `{.init = base, .decay_steps = T_max,
//! .alpha = eta_min / base}` for steps <= T_max (PyTorch keeps oscillating after T_max).
struct cosine_decay {
    double init = 1.0;             //!< value at step 0
    std::int64_t decay_steps = 1;  //!< length of the decay, > 0
    double alpha = 0.0;            //!< final value as a fraction of `init`
    double exponent = 1.0;         //!< power applied to the cosine factor, > 0

    //! Checks the parameters; throws `invalid_argument` naming the bad one.
    constexpr void check() const {
        detail::schedule_require_finite(init, "cosine_decay", "init");
        detail::schedule_require_positive(decay_steps, "cosine_decay", "decay_steps");
        detail::schedule_require_finite(alpha, "cosine_decay", "alpha");
        detail::schedule_require_finite(exponent, "cosine_decay", "exponent");
        require(exponent > 0.0, "cosine_decay", "exponent", "must be > 0, got ", exponent);
    }
    //! The value at `step` >= 0.
    constexpr double operator()(std::int64_t step) const {
        check();
        detail::schedule_require_step(step, "cosine_decay");
        const std::int64_t k = step < decay_steps ? step : decay_steps;
        const double c = 0.5 * (1.0 + detail::cx_cos(detail::cx_pi * static_cast<double>(k) / static_cast<double>(decay_steps)));
        return init * ((1.0 - alpha) * (exponent == 1.0 ? c : detail::cx_pow(c, exponent)) + alpha);
    }
};

//! Linear warm-up from `init` to `peak` over `warmup_steps`, then cosine decay to `end` at
//! `decay_steps` (optax `warmup_cosine_decay_schedule`; `decay_steps` counts the warm-up, so
//! the cosine lasts `decay_steps - warmup_steps` steps), then `end` forever.
//! Exactly `join({warmup_steps}, linear{init, peak, warmup_steps},
//! cosine_decay{peak, decay_steps - warmup_steps, end / peak, exponent})` (alpha 0 when peak is 0).
//! A warm-up as long as the horizon (`warmup_steps >= decay_steps`) is rejected.
struct warmup_cosine {
    double peak = 1.0;             //!< value at the end of the warm-up
    std::int64_t warmup_steps = 0; //!< linear warm-up length, >= 0 and < decay_steps
    std::int64_t decay_steps = 1;  //!< total length, warm-up included
    double end = 0.0;              //!< final value (the floor)
    double init = 0.0;             //!< value at step 0
    double exponent = 1.0;         //!< power on the cosine factor, > 0

    //! Checks the parameters; throws `invalid_argument` naming the bad one.
    constexpr void check() const {
        detail::schedule_require_finite(peak, "warmup_cosine", "peak");
        detail::schedule_require_finite(end, "warmup_cosine", "end");
        detail::schedule_require_finite(init, "warmup_cosine", "init");
        detail::schedule_require_nonnegative(warmup_steps, "warmup_cosine", "warmup_steps");
        detail::schedule_require_positive(decay_steps, "warmup_cosine", "decay_steps");
        require(warmup_steps < decay_steps, "warmup_cosine", "warmup_steps", "must be shorter than the horizon decay_steps = ",
                decay_steps, ", got ", warmup_steps);
        decay().check();
    }
    //! The value at `step` >= 0.
    constexpr double operator()(std::int64_t step) const {
        check();
        detail::schedule_require_step(step, "warmup_cosine");
        if (step < warmup_steps) return warmup()(step);
        return decay()(step - warmup_steps);
    }

private:
    constexpr polynomial warmup() const {
        return {.init = init, .end = peak, .power = 1.0, .transition_steps = warmup_steps, .transition_begin = 0};
    }
    constexpr cosine_decay decay() const {
        return {.init = peak, .decay_steps = decay_steps - warmup_steps, .alpha = peak == 0.0 ? 0.0 : end / peak,
                .exponent = exponent};
    }
};

//! Cosine annealing with warm restarts, SGDR (Loshchilov & Hutter 2017; PyTorch
//! `CosineAnnealingWarmRestarts(T_0 = period, T_mult = period_mult, eta_min = end)`):
//! cycle i lasts period * period_mult^i steps; within a cycle of length T at offset t,
//! value = end + (peak - end) (1 + cos(pi t / T)) / 2. For optax `sgdr_schedule` (a list of
//! warm-up-cosine cycles) use `join` of `warmup_cosine`s.
struct sgdr {
    double peak = 1.0;              //!< value at the start of every cycle
    std::int64_t period = 1;        //!< length of the first cycle, > 0
    std::int64_t period_mult = 1;   //!< growth factor of cycle lengths, >= 1
    double end = 0.0;               //!< value approached at the end of each cycle (eta_min)

    //! Checks the parameters; throws `invalid_argument` naming the bad one.
    constexpr void check() const {
        detail::schedule_require_finite(peak, "sgdr", "peak");
        detail::schedule_require_finite(end, "sgdr", "end");
        detail::schedule_require_positive(period, "sgdr", "period");
        require(period_mult >= 1, "sgdr", "period_mult", "must be >= 1, got ", period_mult);
    }
    //! The value at `step` >= 0.
    constexpr double operator()(std::int64_t step) const {
        check();
        detail::schedule_require_step(step, "sgdr");
        std::int64_t t = step, length = period;
        double cycle = static_cast<double>(period);
        if (period_mult == 1) {
            t = step % period;
        } else {
            while (t >= length) {
                t -= length;
                if (length > std::numeric_limits<std::int64_t>::max() / period_mult) {
                    cycle = static_cast<double>(length) * static_cast<double>(period_mult); // longer than any step
                    break;
                }
                length *= period_mult;
                cycle = static_cast<double>(length);
            }
        }
        return end + (peak - end) * (1.0 + detail::cx_cos(detail::cx_pi * static_cast<double>(t) / cycle)) / 2.0;
    }
};

//! The one-cycle policy (Smith & Topin 2018), PyTorch `OneCycleLR` semantics: from
//! peak / div_factor up to `peak` until step pct_start * total_steps - 1, then down to
//! peak / (div_factor * final_div_factor) at step total_steps - 1 (three-phase: up, back down to
//! peak / div_factor at 2 pct_start total_steps - 2, then to the minimum at total_steps - 1).
//! Within a phase from (s0, v0) to (s1, v1) at pct = (step - s0) / (s1 - s0):
//! cosine: v1 + (v0 - v1) (1 + cos(pi pct)) / 2; linear: v0 + (v1 - v0) pct.
//! After total_steps - 1 the final value holds (PyTorch raises past `total_steps`).
//! optax `cosine_onecycle_schedule` places its phase ends at int(pct_start * steps) and
//! `steps` instead (one step later).
struct one_cycle {
    double peak = 1.0;                //!< maximum value (max_lr)
    std::int64_t total_steps = 1;     //!< cycle length in steps
    double pct_start = 0.3;           //!< fraction of the cycle spent rising, in (0, 1)
    double div_factor = 25.0;         //!< start value = peak / div_factor, > 0
    double final_div_factor = 1e4;    //!< end value = start value / final_div_factor, > 0
    curve shape = curve::cosine;      //!< `curve::cosine` or `curve::linear`
    bool three_phase = false;         //!< PyTorch `three_phase`

    //! Checks the parameters (every phase must last at least one step); throws
    //! `invalid_argument` naming the bad one.
    constexpr void check() const {
        detail::schedule_require_finite(peak, "one_cycle", "peak");
        detail::schedule_require_positive(total_steps, "one_cycle", "total_steps");
        detail::schedule_require_finite(pct_start, "one_cycle", "pct_start");
        require(pct_start > 0.0 && pct_start < 1.0, "one_cycle", "pct_start", "must be in (0, 1), got ", pct_start);
        detail::schedule_require_finite(div_factor, "one_cycle", "div_factor");
        detail::schedule_require_finite(final_div_factor, "one_cycle", "final_div_factor");
        require(div_factor > 0.0, "one_cycle", "div_factor", "must be > 0, got ", div_factor);
        require(final_div_factor > 0.0, "one_cycle", "final_div_factor", "must be > 0, got ", final_div_factor);
        require(shape != curve::one_minus_sqrt, "one_cycle", "shape", "must be curve::cosine or curve::linear");
        const double s1 = pct_start * static_cast<double>(total_steps) - 1.0;
        const double last = static_cast<double>(total_steps) - 1.0;
        const double s2 = three_phase ? 2.0 * pct_start * static_cast<double>(total_steps) - 2.0 : s1;
        require(s1 > 0.0 && s2 >= s1 && last > s2, "one_cycle", "total_steps", "is too short for pct_start = ", pct_start,
                ": every phase must last at least one step, got total_steps = ", total_steps);
    }
    //! The value at `step` >= 0.
    constexpr double operator()(std::int64_t step) const {
        check();
        detail::schedule_require_step(step, "one_cycle");
        const double initial = peak / div_factor, minimum = initial / final_div_factor;
        const double n = static_cast<double>(total_steps);
        const double s1 = pct_start * n - 1.0, last = n - 1.0;
        const auto x = static_cast<double>(step < total_steps ? step : total_steps - 1);
        if (!three_phase) {
            if (x <= s1) return anneal(initial, peak, x / s1);
            return anneal(peak, minimum, (x - s1) / (last - s1));
        }
        const double s2 = 2.0 * pct_start * n - 2.0;
        if (x <= s1) return anneal(initial, peak, x / s1);
        if (x <= s2) return anneal(peak, initial, (x - s1) / (s2 - s1));
        return anneal(initial, minimum, (x - s2) / (last - s2));
    }

private:
    constexpr double anneal(double from, double to, double pct) const {
        if (shape == curve::linear) return (to - from) * pct + from;
        return to + (from - to) / 2.0 * (detail::cx_cos(detail::cx_pi * pct) + 1.0);
    }
};

} // namespace selfreplay
