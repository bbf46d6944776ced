// Every schedule against PyTorch's lr_scheduler (stepped as a training loop steps it) and against
// Python restatements of the HF and optax formulas: tests/data/schedules/golden.csv, made by
// tests/golden/gen_schedules.py.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "selfreplay/schedules.hpp"

using namespace selfreplay;

TEST_CASE("schedules match PyTorch / HF / optax golden values") {
    std::ifstream in(std::string(SELFREPLAY_TEST_DATA_DIR) + "/schedules/golden.csv");
    REQUIRE(in);
    std::map<std::string, std::vector<double>> cases;
    std::string line;
    std::getline(in, line); // header
    while (std::getline(in, line)) {
        std::istringstream row(line);
        std::string name, step, value;
        std::getline(row, name, ',');
        std::getline(row, step, ',');
        std::getline(row, value, ',');
        auto& v = cases[name];
        REQUIRE(std::stoll(step) == static_cast<long long>(v.size()));
        v.push_back(std::strtod(value.c_str(), nullptr));
    }

    const std::map<std::string, std::function<double(std::int64_t)>> ours = {
        {"torch_linear_lr", linear{.init = 0.5, .end = 2.0, .transition_steps = 40}},
        {"torch_polynomial_lr", polynomial{.init = 0.1, .end = 0.0, .power = 2.0, .transition_steps = 50}},
        {"torch_exponential_lr", exponential_decay{.init = 1.0, .transition_steps = 1, .decay_rate = 0.95}},
        {"torch_step_lr", exponential_decay{.init = 0.3, .transition_steps = 7, .decay_rate = 0.5, .staircase = true}},
        {"torch_multistep_lr", piecewise_constant{.init = 1.0, .boundaries = {10, 25, 40}, .scales = {0.3, 0.3, 0.3}}},
        {"torch_cosine_annealing_lr", cosine_decay{.init = 0.5, .decay_steps = 60, .alpha = 0.01 / 0.5}},
        {"torch_warm_restarts_mult2", sgdr{.peak = 0.1, .period = 10, .period_mult = 2, .end = 1e-3}},
        {"torch_warm_restarts_mult1", sgdr{.peak = 0.2, .period = 7}},
        {"torch_one_cycle_cos", one_cycle{.peak = 0.4, .total_steps = 100}},
        {"torch_one_cycle_linear_three_phase",
         one_cycle{.peak = 0.4, .total_steps = 90, .pct_start = 0.25, .div_factor = 10.0, .final_div_factor = 100.0,
                   .shape = curve::linear, .three_phase = true}},
        {"hf_wsd_linear_cosine", wsd{.peak = 3e-4, .warmup_steps = 10, .stable_steps = 20, .decay_steps = 30,
                                     .min_ratio = 0.1, .warmup = curve::linear, .decay = curve::cosine}},
        {"hf_wsd_cosine_linear", wsd{.peak = 3e-4, .warmup_steps = 10, .stable_steps = 20, .decay_steps = 30,
                                     .min_ratio = 0.1, .warmup = curve::cosine, .decay = curve::linear}},
        {"hf_wsd_1sqrt_1sqrt", wsd{.peak = 3e-4, .warmup_steps = 10, .stable_steps = 20, .decay_steps = 30,
                                   .min_ratio = 0.1, .warmup = curve::one_minus_sqrt, .decay = curve::one_minus_sqrt}},
        {"hf_inverse_sqrt", inverse_sqrt{.peak = 1e-3, .warmup_steps = 16}},
        {"optax_warmup_cosine", warmup_cosine{.peak = 1.0, .warmup_steps = 10, .decay_steps = 50, .end = 0.05, .init = 0.01}},
        {"optax_warmup_cosine_exp2",
         warmup_cosine{.peak = 2.0, .warmup_steps = 5, .decay_steps = 25, .end = 0.0, .init = 0.0, .exponent = 2.0}},
    };
    REQUIRE(cases.size() == ours.size());
    for (const auto& [name, golden] : cases) {
        INFO("case " << name);
        REQUIRE(ours.count(name) == 1);
        const auto& s = ours.at(name);
        double peak = 0.0;
        for (double g : golden) peak = std::max(peak, std::abs(g));
        for (std::size_t t = 0; t < golden.size(); ++t) {
            INFO("step " << t << ": ours " << s(static_cast<std::int64_t>(t)) << " golden " << golden[t]);
            // PyTorch's chainable schedulers update recursively; 1e-12 of the peak bounds their rounding drift.
            CHECK(std::abs(s(static_cast<std::int64_t>(t)) - golden[t]) <= 1e-12 * peak);
        }
    }
}
