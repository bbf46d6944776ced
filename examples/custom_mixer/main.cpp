// A user-written replay mixer with a scheduled coefficient (docs/replay.md, "Writing a mixer"):
// DER++-style logit matching on the replay batch, c(step) * mean over positions of
// sum_v (z_theta - z_pi)^2 / 2, with its hand-written gradient c (z_theta - z_pi) / (R*L). The
// coefficient is a number or any schedule, read through `coefficient_at`; the mixer reads the
// step, the inputs and whether gradients are wanted from the context. Checked: the concept, the
// coefficient at several steps, the value against a direct computation, the gradient against
// central finite differences, and the refusal of a schedule that goes negative.

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <selfreplay/replay.hpp>
#include <selfreplay/schedules.hpp>

namespace sr = selfreplay;

//! c(step) * (1/2) mean over the replay positions of || z_theta - z_pi ||^2.
template <sr::number_or_schedule C = double>
struct logit_matching_replay {
    C coefficient = 1.0; //!< a number or a schedule

    static constexpr bool needs_replay_batch = true, needs_student_replay_logits = true,
                          needs_reference_replay_logits = true, needs_reference_train_logits = false;
    static constexpr std::size_t terms = 1;

    sr::index_t replace_rows(std::int64_t, sr::index_t) const { return 0; }

    template <class T> // one template serves objective_context<float> and objective_context<double>
    void add_terms(sr::objective_context<T>& ctx) const {
        const double c = sr::coefficient_at(coefficient, ctx.step(), "logit_matching_replay");
        const auto z = ctx.inputs().student_replay_logits, zpi = ctx.inputs().reference_replay_logits;
        const auto g = ctx.computes_gradients() ? ctx.replay_gradient() : sr::strided_view<T, 2>{};
        const double n = static_cast<double>(z.extent(0));
        double sum = 0;
        for (sr::index_t p = 0; p < z.extent(0); ++p)
            for (sr::index_t v = 0; v < z.extent(1); ++v) {
                const double d = double(z(p, v)) - double(zpi(p, v));
                sum += 0.5 * d * d;
                if (g.data() != nullptr) g(p, v) += static_cast<T>(c * d / n);
            }
        ctx.add_term("logit_matching", c, sum / n);
    }
};
static_assert(sr::replay_mixer<logit_matching_replay<>>);
static_assert(sr::replay_mixer<logit_matching_replay<sr::linear>>);

namespace {
constexpr sr::index_t B = 2, R = 3, L = 4, V = 6;

std::vector<double> numbers(std::size_t n, unsigned seed) {
    std::vector<double> out(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = std::sin(1.7 * double(i + 1) * double(seed)) * 2.0;
    return out;
}
} // namespace

int main() {
    std::vector<std::int32_t> x(B * L), r(R * L);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<std::int32_t>(i % V);
    for (std::size_t i = 0; i < r.size(); ++i) r[i] = static_cast<std::int32_t>((3 * i + 1) % V);
    std::vector<double> zx = numbers(B * L * V, 1), zr = numbers(R * L * V, 2), pr = numbers(R * L * V, 3);
    std::vector<double> dzx(zx.size()), dzr(zr.size());
    auto v2 = [](std::vector<double>& d, sr::index_t rows) { return sr::make_view(d.data(), {rows, V}); };
    auto inputs = [&] {
        return sr::objective_inputs<double>{.train_tokens = sr::make_view(x.data(), {B, L}),
                                            .student_train_logits = v2(zx, B * L),
                                            .replay_tokens = sr::make_view(r.data(), {R, L}),
                                            .student_replay_logits = v2(zr, R * L),
                                            .reference_replay_logits = v2(pr, R * L)};
    };
    int failures = 0;
    auto expect = [&](bool ok, const std::string& what) {
        std::printf("%-60s %s\n", what.c_str(), ok ? "ok" : "FAILED");
        failures += ok ? 0 : 1;
    };

    // the coefficient ramps from 0 to 2 over 100 steps
    const sr::linear ramp{.init = 0.0, .end = 2.0, .transition_steps = 100};
    const logit_matching_replay<sr::linear> mixer{.coefficient = ramp};
    double direct = 0;
    for (std::size_t i = 0; i < zr.size(); ++i) direct += 0.5 * (zr[i] - pr[i]) * (zr[i] - pr[i]);
    direct /= double(R * L);
    for (std::int64_t step : {0, 50, 100, 200}) {
        const auto res = sr::evaluate_objective(mixer, step, inputs(), {.train = v2(dzx, B * L), .replay = v2(dzr, R * L)});
        expect(res.terms[0].coefficient == ramp(step) && std::abs(res.terms[0].value - direct) < 1e-12 &&
                   res.total == res.train_ntp + res.terms[0].weighted,
               "step " + std::to_string(step) + ": coefficient " + std::to_string(res.terms[0].coefficient) +
                   ", value and total");
    }

    // d loss / d replay logits at step 50 against central differences
    sr::evaluate_objective(mixer, 50, inputs(), {.train = v2(dzx, B * L), .replay = v2(dzr, R * L)});
    const double h = 1e-6;
    for (std::size_t i : {std::size_t{0}, std::size_t{7}, zr.size() - 1}) {
        const double keep = zr[i];
        zr[i] = keep + h;
        const double up = sr::evaluate_objective(mixer, 50, inputs()).total;
        zr[i] = keep - h;
        const double down = sr::evaluate_objective(mixer, 50, inputs()).total;
        zr[i] = keep;
        expect(std::abs((up - down) / (2 * h) - dzr[i]) < 1e-6, "gradient entry " + std::to_string(i) + " vs differences");
    }

    // a schedule that goes negative is refused at the step where it does, naming the mixer
    const logit_matching_replay<sr::linear> bad{.coefficient = sr::linear{.init = 1.0, .end = -1.0, .transition_steps = 10}};
    try {
        sr::evaluate_objective(bad, 10, inputs());
        expect(false, "negative coefficient refused");
    } catch (const sr::invalid_argument& e) {
        const std::string what = e.what();
        std::printf("  %s\n", e.what());
        expect(what.find("logit_matching_replay") != std::string::npos && what.find("coefficient") != std::string::npos,
               "negative coefficient refused, naming the mixer");
    }
    std::printf("%s\n", failures == 0 ? "all checks passed" : "SOME CHECKS FAILED");
    return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
