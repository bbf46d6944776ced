#pragma once
//! \file
//! Warm-up, stable, decay (WSD), as Hugging Face transformers `get_wsd_schedule` defines it.

#include <cstdint>

#include "selfreplay/schedules/concept.hpp"
#include "selfreplay/schedules/math.hpp"

namespace selfreplay {

//! Warm-up-stable-decay (HF `get_wsd_schedule`, `num_cycles = 0.5`), value = peak * factor:
//! - warm-up, step < W: p = step / max(1, W); factor = m + (1 - m) * rise(p) with rise
//!   linear p, cosine (1 - cos(pi p)) / 2, or one_minus_sqrt 1 - sqrt(1 - p);
//! - stable, W <= step < W + S: factor = 1;
//! - decay, W + S <= step < W + S + D: p = (step - W - S) / max(1, D);
//!   factor = m + (1 - m) * fall(p) with fall linear 1 - p, cosine (1 + cos(pi p)) / 2,
//!   or one_minus_sqrt 1 - sqrt(p);
//! - afterwards factor = m.
//! Here m = `min_ratio`, W = `warmup_steps`, S = `stable_steps`, D = `decay_steps`. To give a
//! total length N instead of S (HF `num_training_steps`), use S = N - W - D.
struct wsd {
    double peak = 1.0;                //!< value during the stable phase
    std::int64_t warmup_steps = 0;    //!< W, >= 0
    std::int64_t stable_steps = 0;    //!< S, >= 0
    std::int64_t decay_steps = 0;     //!< D, >= 0
    double min_ratio = 0.0;           //!< m in [0, 1]: start and end value as a fraction of `peak`
    curve warmup = curve::linear;     //!< warm-up shape
    curve decay = curve::cosine;      //!< decay shape

    //! Checks the parameters; throws `invalid_argument` naming the bad one.
    constexpr void check() const {
        detail::schedule_require_finite(peak, "wsd", "peak");
        detail::schedule_require_nonnegative(warmup_steps, "wsd", "warmup_steps");
        detail::schedule_require_nonnegative(stable_steps, "wsd", "stable_steps");
        detail::schedule_require_nonnegative(decay_steps, "wsd", "decay_steps");
        detail::schedule_require_finite(min_ratio, "wsd", "min_ratio");
        require(min_ratio >= 0.0 && min_ratio <= 1.0, "wsd", "min_ratio", "must be in [0, 1], got ", min_ratio);
    }
    //! The value at `step` >= 0.
    constexpr double operator()(std::int64_t step) const {
        check();
        detail::schedule_require_step(step, "wsd");
        const double m = min_ratio;
        if (step < warmup_steps) {
            const double p = static_cast<double>(step) / static_cast<double>(warmup_steps);
            double f = p;
            if (warmup == curve::cosine) f = 0.5 * (1.0 - detail::cx_cos(detail::cx_pi * p));
            if (warmup == curve::one_minus_sqrt) f = 1.0 - detail::cx_sqrt(1.0 - p);
            return peak * clip0(f * (1.0 - m) + m);
        }
        if (step - warmup_steps < stable_steps) return peak;
        const std::int64_t k = step - warmup_steps - stable_steps;
        if (k < decay_steps) {
            const double p = static_cast<double>(k) / static_cast<double>(decay_steps);
            double f = 1.0 - p;
            if (decay == curve::cosine) f = 0.5 * (1.0 + detail::cx_cos(detail::cx_pi * p));
            if (decay == curve::one_minus_sqrt) f = 1.0 - detail::cx_sqrt(p);
            return peak * clip0(f * (1.0 - m) + m);
        }
        return peak * m;
    }

private:
    static constexpr double clip0(double f) { return f < 0.0 ? 0.0 : f; }
};

} // namespace selfreplay
