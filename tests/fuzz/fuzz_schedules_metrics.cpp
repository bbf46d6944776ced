// libFuzzer harness: schedules and metrics. Decodes one schedule (every family, `join`, `scale`,
// `clamp`) with arbitrary parameters and steps, mean accumulators fed values, partial sums and
// masks, merged, and an accuracy matrix with its continual-learning metrics. Invariants when a
// call returns: a schedule whose value parameters are finite and at most 1e300 in magnitude gives
// a finite value (`exponential_decay` with a rate above 1, `piecewise_constant`, `one_cycle`,
// `scale`, and `cosine_decay` whose floor init * alpha is beyond 1e300 excepted: their true value
// may exceed the double range); a merged mean equals the mean of everything added to either part
// (exact sums: bit for bit, in any merge order); the metrics of a finite matrix are finite.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "input.hpp"
#include "selfreplay/metrics.hpp"
#include "selfreplay/schedules.hpp"

namespace sr = selfreplay;

namespace {

double param(fuzz::input& in, bool& bounded) {
    const double v = in.flag() ? static_cast<double>(in.in(-2000, 2000)) / 100.0 : in.value<double>();
    bounded &= std::isfinite(v) && std::abs(v) <= 1e300;
    return v;
}
std::int64_t steps(fuzz::input& in) { return in.flag() ? in.in(-2, 50) : static_cast<std::int64_t>(in.raw<std::uint64_t>() >> in.in(0, 63)); }

void schedules(fuzz::input& in) {
    bool bounded = true;
    bool may_overflow = false;
    const std::int64_t step = in.flag() ? in.in(-1, 200) : steps(in);
    double v = 0;
    try {
        switch (in.in(0, 15)) {
        case 0: v = sr::constant{param(in, bounded)}(step); break;
        case 1: v = sr::polynomial{param(in, bounded), param(in, bounded), std::abs(param(in, bounded)) + 1e-3, steps(in), steps(in)}(step); break;
        case 2: v = sr::linear{param(in, bounded), param(in, bounded), steps(in), steps(in)}(step); break;
        case 3: v = sr::warmup_constant{param(in, bounded), steps(in), param(in, bounded)}(step); break;
        case 4: {
            const sr::exponential_decay s{param(in, bounded), steps(in), param(in, bounded), steps(in), in.flag()};
            may_overflow = !(s.decay_rate <= 1.0);
            v = s(step);
            break;
        }
        case 5: {
            sr::piecewise_constant s{.init = param(in, bounded)};
            for (int k = static_cast<int>(in.in(0, 4)); k > 0; --k) s.boundaries.push_back(steps(in)), s.scales.push_back(param(in, bounded));
            may_overflow = true; // a product of scales
            v = s(step);
            break;
        }
        case 6: {
            sr::piecewise_linear s;
            for (int k = static_cast<int>(in.in(0, 4)); k > 0; --k) s.steps.push_back(steps(in)), s.values.push_back(param(in, bounded));
            v = s(step);
            break;
        }
        case 7: v = sr::inverse_sqrt{param(in, bounded), steps(in), steps(in)}(step); break;
        case 8: {
            const sr::cosine_decay s{param(in, bounded), steps(in), param(in, bounded), std::abs(param(in, bounded)) + 1e-3};
            // |value| <= |init| (|1 - alpha| + |alpha|): init * alpha, the floor, may exceed the range
            may_overflow = !(std::abs(s.init) * (std::abs(1.0 - s.alpha) + std::abs(s.alpha)) <= 1e300);
            v = s(step);
            break;
        }
        case 9:
            v = sr::warmup_cosine{param(in, bounded), steps(in), steps(in), param(in, bounded), param(in, bounded),
                                  std::abs(param(in, bounded)) + 1e-3}(step);
            break;
        case 10: v = sr::sgdr{param(in, bounded), steps(in), in.in(-1, 4), param(in, bounded)}(step); break;
        case 11:
            v = sr::one_cycle{param(in, bounded), steps(in), param(in, bounded), param(in, bounded), param(in, bounded),
                              in.flag() ? sr::curve::cosine : sr::curve::linear, in.flag()}(step);
            may_overflow = true; // peak / div_factor / final_div_factor with factors below 1
            break;
        case 12:
            v = sr::wsd{param(in, bounded), steps(in), steps(in), steps(in), param(in, bounded),
                        static_cast<sr::curve>(in.in(0, 2)), static_cast<sr::curve>(in.in(0, 2))}(step);
            break;
        case 13: {
            const std::int64_t b[1] = {steps(in)};
            v = sr::join(b, sr::linear{param(in, bounded), param(in, bounded), steps(in)}, sr::constant{param(in, bounded)})(step);
            break;
        }
        case 14: v = sr::scale<sr::constant>{sr::constant{param(in, bounded)}, param(in, bounded)}(step); may_overflow = true; break;
        default: {
            const double lo = param(in, bounded), hi = param(in, bounded);
            v = sr::clamp<sr::linear>{sr::linear{param(in, bounded), param(in, bounded), steps(in)}, lo, hi}(step);
        }
        }
    } catch (const sr::invalid_argument&) {
        return;
    }
    if (bounded && !may_overflow) fuzz::check(std::isfinite(v), "a schedule with finite parameters gave a non-finite value", v);
}

void means(fuzz::input& in) {
    sr::mean_loss a, b, all;
    std::vector<double> values;
    try {
        for (int k = static_cast<int>(in.in(0, 12)); k > 0; --k) {
            auto& part = in.flag() ? a : b;
            switch (in.in(0, 2)) {
            case 0: {
                const double x = in.value<double>();
                part.add(x);
                all.add(x);
                break;
            }
            case 1: {
                const double s = in.value<double>();
                const std::int64_t n = in.in(-1, 5);
                part.add_sum(s, n);
                all.add_sum(s, n);
                break;
            }
            default: {
                const sr::index_t B = in.in(0, 3), T = in.in(0, 4);
                std::vector<double> x(static_cast<std::size_t>(B * T));
                std::vector<std::uint8_t> m(x.size());
                for (auto& e : x) e = in.value<double>();
                for (auto& e : m) e = in.flag();
                const auto xv = sr::make_view(x.data(), {B, T});
                const sr::position_mask mask = sr::make_view(m.data(), {B, T});
                part.add(xv, mask);
                all.add(xv, mask);
            }
            }
        }
    } catch (const sr::invalid_argument&) {
        return;
    }
    sr::mean_loss ab = a, ba = b;
    ab.merge(b);
    ba.merge(a);
    fuzz::check(ab.count() == all.count() && ba.count() == all.count(), "merged counts differ", double(ab.count()), double(all.count()));
    if (all.count() == 0) return;
    const double m = all.value();
    fuzz::check(ab.value() == m && ba.value() == m, "a merged mean differs from the mean of everything", ab.value(), m);
}

void continual(fuzz::input& in) {
    const auto tasks = static_cast<std::size_t>(in.in(1, 5));
    const auto rows = static_cast<std::size_t>(in.in(1, static_cast<std::int64_t>(tasks)));
    std::vector<std::vector<double>> r(rows, std::vector<double>(tasks));
    bool bounded = true;
    for (auto& row : r)
        for (auto& x : row) x = param(in, bounded);
    std::vector<double> baseline(tasks);
    for (auto& x : baseline) x = param(in, bounded);
    try {
        const sr::accuracy_matrix m(r);
        const double values[] = {sr::average_accuracy(m), sr::learning_accuracy(m), sr::average_forgetting(m),
                                 sr::average_first_last_forgetting(m)};
        double extra[2] = {0, 0};
        if (rows >= 2) extra[0] = sr::backward_transfer(m);
        if (rows >= 2) extra[1] = sr::forward_transfer(m, baseline);
        if (bounded && [&] {
                for (const auto& row : r)
                    for (double x : row) if (std::abs(x) > 1e300) return false;
                return true;
            }()) {
            for (double v : values) fuzz::check(std::isfinite(v), "a metric of a finite matrix is not finite", v);
            for (double v : extra) fuzz::check(std::isfinite(v), "a transfer of a finite matrix is not finite", v);
        }
    } catch (const sr::invalid_argument&) {
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::input in(data, size);
    switch (in.in(0, 2)) {
    case 0: schedules(in); break;
    case 1: means(in); break;
    default: continual(in);
    }
    return 0;
}
