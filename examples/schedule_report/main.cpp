// A learning-rate schedule driving a training loop, with a metrics report (docs/schedules.md,
// docs/metrics.md): gradient descent on f(w) = sum_i a_i (w_i - 1)^2 / 2 with a warm-up +
// cosine learning rate; every 25 steps a row (step, learning rate, loss) goes into a report,
// printed as an aligned table and as CSV. Checked: the schedule's values at the ends of its
// phases, the loss decreasing to near 0, the report's rows and cells, the CSV header.

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <variant>
#include <vector>

#include <selfreplay/metrics.hpp>
#include <selfreplay/schedules.hpp>

namespace sr = selfreplay;

int main() {
    const sr::warmup_cosine lr{.peak = 0.5, .warmup_steps = 20, .decay_steps = 200, .end = 0.01};
    const std::vector<double> a = {1.0, 0.5, 2.0, 1.5};
    std::vector<double> w(a.size(), 0.0);
    auto loss = [&] {
        double f = 0;
        for (std::size_t i = 0; i < w.size(); ++i) f += a[i] * (w[i] - 1) * (w[i] - 1) / 2;
        return f;
    };

    sr::report log({"step", "lr", "loss"});
    sr::mean_loss late; // mean loss over the last 50 steps
    for (std::int64_t step = 0; step <= 200; ++step) {
        const double eta = lr(step);
        if (step % 25 == 0) log.add(sr::metrics_record{}.set("step", step).set("lr", eta).set("loss", loss()));
        if (step > 150) late.add(loss());
        for (std::size_t i = 0; i < w.size(); ++i) w[i] -= eta * a[i] * (w[i] - 1); // d f / d w_i
    }
    log.add(sr::metrics_record{}.set("step", "final").set("loss", loss()).set("late_mean_loss", late.value()));
    std::cout << log.text(4) << '\n' << log.csv();

    int failures = 0;
    auto expect = [&](bool ok, const char* what) {
        std::printf("%-50s %s\n", what, ok ? "ok" : "FAILED");
        failures += ok ? 0 : 1;
    };
    expect(lr(0) == 0.0 && lr(20) == 0.5 && std::abs(lr(200) - 0.01) < 1e-15, "warm-up from 0 to the peak, cosine to the end");
    expect(lr(110) < 0.5 && lr(110) > 0.01, "decaying between the ends");
    expect(log.rows() == 10, "one row every 25 steps, and the final row");
    expect(std::get<std::int64_t>(log.at(1, "step")) == 25 && std::get<double>(log.at(1, "lr")) == lr(25),
           "cells hold the values set");
    expect(std::get<double>(log.at(9, "loss")) < 1e-6 * std::get<double>(log.at(0, "loss")), "the loss went to ~0");
    expect(std::holds_alternative<std::monostate>(log.at(0, "late_mean_loss")), "a cell not set is empty");
    expect(log.csv().rfind("step,lr,loss,late_mean_loss\n", 0) == 0, "CSV header in column order");
    std::printf("%s\n", failures == 0 ? "all checks passed" : "SOME CHECKS FAILED");
    return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
