#pragma once
//! \file
//! Metrics over whole runs: the time (steps, tokens or seconds) a loss curve needs to reach a
//! target, the compute multiplier between two runs (the paper's "38x the training time for the
//! same forgetting"), and the Pareto frontier of (old loss, new loss) points.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "selfreplay/error.hpp"

namespace selfreplay {

//! A run's evaluation curve: `loss[i]` measured at `x[i]` (a step, a token count or a time;
//! strictly increasing). Both spans alias the caller's memory.
struct loss_curve {
    std::span<const double> x;    //!< where each evaluation happened, strictly increasing
    std::span<const double> loss; //!< the loss measured there (nats), finite
};

//! How `steps_to_target` places the crossing.
enum class crossing {
    first_point, //!< the x of the first evaluation with loss <= target
    interpolate, //!< linear interpolation between that evaluation and the one before it
};

namespace detail {
inline void check_curve(const loss_curve& c, const char* where, const char* name) {
    if (c.x.size() != c.loss.size())
        throw invalid_argument(where, name,
                               "has " + std::to_string(c.x.size()) + " x values but " + std::to_string(c.loss.size()) +
                                   " losses");
    for (std::size_t i = 0; i < c.x.size(); ++i) {
        if (!std::isfinite(c.x[i]))
            throw invalid_argument(where, name, "has a non-finite x[" + std::to_string(i) + "] = " + std::to_string(c.x[i]));
        if (i > 0 && !(c.x[i] > c.x[i - 1]))
            throw invalid_argument(where, name,
                                   "must have strictly increasing x, got x[" + std::to_string(i - 1) +
                                       "] = " + std::to_string(c.x[i - 1]) + " then " + std::to_string(c.x[i]));
        if (!std::isfinite(c.loss[i]))
            throw invalid_argument(where, name,
                                   std::string("has a ") + (std::isnan(c.loss[i]) ? "NaN" : "non-finite") + " loss at index " +
                                       std::to_string(i) + " (x = " + std::to_string(c.x[i]) + ")");
    }
}
} // namespace detail

//! The first x at which `curve` reaches `target` (loss <= target), or nullopt when it never
//! does. With `crossing::interpolate` the crossing is interpolated linearly between the first
//! evaluation at or below the target and the previous one (the first evaluation itself when it
//! is already below). Throws `invalid_argument` for mismatched lengths, non-increasing x,
//! NaN/inf losses or a non-finite target.
inline std::optional<double> steps_to_target(const loss_curve& curve, double target,
                                             crossing mode = crossing::first_point) {
    detail::check_curve(curve, "steps_to_target", "curve");
    if (!std::isfinite(target)) throw invalid_argument("steps_to_target", "target", "must be finite, got " + std::to_string(target));
    for (std::size_t i = 0; i < curve.x.size(); ++i) {
        if (curve.loss[i] > target) continue;
        if (mode == crossing::first_point || i == 0) return curve.x[i];
        const double l0 = curve.loss[i - 1], l1 = curve.loss[i];
        const double f = (l0 - target) / (l0 - l1); // in (0, 1]: l0 > target >= l1
        return curve.x[i - 1] + f * (curve.x[i] - curve.x[i - 1]);
    }
    return std::nullopt;
}

//! How many times more compute (steps, tokens or time, whatever x measures) `run` needs than
//! `reference` to reach `target`: steps_to_target(run) / steps_to_target(reference). nullopt
//! when either never reaches it. Throws `invalid_argument` when the reference reaches the target
//! at x = 0 (the ratio is undefined), or for the inputs `steps_to_target` rejects.
inline std::optional<double> compute_multiplier(const loss_curve& run, const loss_curve& reference, double target,
                                                crossing mode = crossing::first_point) {
    const auto a = steps_to_target(run, target, mode);
    const auto b = steps_to_target(reference, target, mode);
    if (b && *b <= 0.0)
        throw invalid_argument("compute_multiplier", "reference", "reaches the target at x = " + std::to_string(*b) + " <= 0");
    if (!a || !b) return std::nullopt;
    return *a / *b;
}

//! A run's final (old-distribution loss, new-distribution loss), both to be minimised.
struct loss_point {
    double old_loss; //!< loss on the previous distribution (forgetting axis)
    double new_loss; //!< loss on the new distribution (learning axis)
};

//! Indices of the points no other point dominates (q dominates p when q.old <= p.old and
//! q.new <= p.new with one inequality strict), ordered by increasing old loss (then new loss,
//! then index). Identical points are all kept. O(n log n). Throws `invalid_argument` for NaN or
//! infinite coordinates.
inline std::vector<std::size_t> pareto_frontier(std::span<const loss_point> points) {
    for (std::size_t i = 0; i < points.size(); ++i)
        if (!std::isfinite(points[i].old_loss) || !std::isfinite(points[i].new_loss))
            throw invalid_argument("pareto_frontier", "points",
                                   "has a non-finite coordinate at index " + std::to_string(i) + ": (" +
                                       std::to_string(points[i].old_loss) + ", " + std::to_string(points[i].new_loss) + ")");
    std::vector<std::size_t> order(points.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        const auto& p = points[a];
        const auto& q = points[b];
        if (p.old_loss != q.old_loss) return p.old_loss < q.old_loss;
        if (p.new_loss != q.new_loss) return p.new_loss < q.new_loss;
        return a < b;
    });
    std::vector<std::size_t> front;
    for (std::size_t i : order) {
        const auto& p = points[i];
        if (front.empty()) {
            front.push_back(i);
            continue;
        }
        // Every earlier point has old <= p.old; the best new loss among them is the last kept point's.
        const auto& best = points[front.back()];
        if (p.new_loss < best.new_loss || (p.new_loss == best.new_loss && p.old_loss == best.old_loss)) front.push_back(i);
    }
    return front;
}

} // namespace selfreplay
