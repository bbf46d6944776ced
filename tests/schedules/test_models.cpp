// Closed-form checks of every schedule model at its boundaries and inside, constexpr evaluation,
// the laws of the `schedule` concept, and parameter validation.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>

#include "selfreplay/schedules.hpp"

using namespace selfreplay;

namespace {

constexpr double pi = std::numbers::pi;

// Laws every schedule obeys: finite and deterministic at step 0 and beyond, and s(-1) throws.
template <schedule S>
void check_schedule_laws(const S& s, std::int64_t horizon) {
    for (std::int64_t step : {std::int64_t{0}, std::int64_t{1}, horizon / 2, horizon, horizon + 1, 10 * horizon + 7}) {
        const double v = s(step);
        INFO("step " << step);
        CHECK(std::isfinite(v));
        CHECK(s(step) == v);
    }
    CHECK_THROWS_AS(s(-1), selfreplay::invalid_argument);
    CHECK_THROWS_WITH(s(-1), Catch::Contains("argument 'step' must be >= 0, got -1"));
}

// A user-written model: needs nothing but the call operator.
struct halving_every_10 {
    double operator()(std::int64_t step) const { return std::ldexp(1.0, -static_cast<int>(step / 10)); }
};

} // namespace

static_assert(schedule<constant> && schedule<linear> && schedule<polynomial> && schedule<warmup_constant> &&
              schedule<exponential_decay> && schedule<piecewise_constant> && schedule<piecewise_linear> &&
              schedule<inverse_sqrt> && schedule<cosine_decay> && schedule<warmup_cosine> && schedule<sgdr> &&
              schedule<one_cycle> && schedule<wsd> && schedule<halving_every_10>);
static_assert(!schedule<int> && !schedule<double (*)(double, double)>);

// ---- constexpr evaluation (exact where the arithmetic is exact) ---------------------------------
static_assert(constant{.value = 0.5}(123) == 0.5);
static_assert(warmup_constant{.peak = 1.0, .warmup_steps = 4}(0) == 0.0);
static_assert(warmup_constant{.peak = 1.0, .warmup_steps = 4}(2) == 0.5);
static_assert(warmup_constant{.peak = 1.0, .warmup_steps = 4}(4) == 1.0);
static_assert(warmup_constant{.peak = 1.0, .warmup_steps = 4}(1000) == 1.0);
static_assert(linear{.init = 2.0, .end = 0.0, .transition_steps = 8, .transition_begin = 2}(6) == 1.0);
static_assert(polynomial{.init = 1.0, .end = 0.0, .power = 2.0, .transition_steps = 4}(2) == 0.25);
static_assert(exponential_decay{.init = 8.0, .transition_steps = 2, .decay_rate = 0.5, .staircase = true}(5) == 2.0);
static_assert(exponential_decay{.init = 8.0, .transition_steps = 1, .decay_rate = 0.5, .end = 1.5}(10) == 1.5);
static_assert(inverse_sqrt{.peak = 1.0, .warmup_steps = 4}(16) == 0.5);
static_assert(cosine_decay{.init = 2.0, .decay_steps = 10}(0) == 2.0);
static_assert(cosine_decay{.init = 2.0, .decay_steps = 10, .alpha = 0.25}(10) == 0.5);
static_assert(wsd{.peak = 3.0, .warmup_steps = 2, .stable_steps = 5, .decay_steps = 4}(4) == 3.0);
static_assert(sgdr{.peak = 1.0, .period = 5}(10) == 1.0);
static_assert(join({3}, constant{.value = 1.0}, linear{.init = 4.0, .end = 0.0, .transition_steps = 4})(5) == 2.0);
static_assert(scale<constant>{.inner = constant{.value = 0.5}, .factor = 10.0}(0) == 5.0);
static_assert(clamp<linear>{.inner = linear{.init = 0.0, .end = 10.0, .transition_steps = 10}, .lo = 2.0, .hi = 5.0}(1) == 2.0);
// The vector-based models evaluate in a constant expression that owns its vectors (C++20 transient allocation).
static_assert(piecewise_constant{.init = 1.0, .boundaries = {5, 10}, .scales = {0.5, 0.5}}(10) == 0.25);
static_assert(piecewise_linear{.steps = {0, 10}, .values = {0.0, 5.0}}(4) == 2.0);

// Transcendental ones: constexpr values within a few ulp of the run-time (libm) values.
TEST_CASE("schedules: constexpr cosine, sqrt and pow agree with the run-time values") {
    constexpr double c1 = cosine_decay{.init = 1.0, .decay_steps = 7, .alpha = 0.1}(3);
    constexpr double c2 = warmup_cosine{.peak = 1.0, .warmup_steps = 5, .decay_steps = 40, .end = 0.1}(23);
    constexpr double c3 = sgdr{.peak = 0.1, .period = 10, .period_mult = 2, .end = 1e-3}(37);
    constexpr double c4 = one_cycle{.peak = 0.4, .total_steps = 100}(57);
    constexpr double c5 = wsd{.peak = 1.0, .warmup_steps = 10, .stable_steps = 5, .decay_steps = 9,
                              .warmup = curve::one_minus_sqrt, .decay = curve::cosine}(3);
    constexpr double c6 = inverse_sqrt{.peak = 1.0, .warmup_steps = 3}(10);
    constexpr double c7 = polynomial{.init = 1.0, .end = 0.1, .power = 0.7, .transition_steps = 9}(4);
    constexpr double c8 = exponential_decay{.init = 1.0, .transition_steps = 3, .decay_rate = 0.9}(7);
    constexpr double c9 = cosine_decay{.init = 1.0, .decay_steps = 700, .exponent = 1.5}(123);
    const double r1 = cosine_decay{.init = 1.0, .decay_steps = 7, .alpha = 0.1}(3);
    const double r2 = warmup_cosine{.peak = 1.0, .warmup_steps = 5, .decay_steps = 40, .end = 0.1}(23);
    const double r3 = sgdr{.peak = 0.1, .period = 10, .period_mult = 2, .end = 1e-3}(37);
    const double r4 = one_cycle{.peak = 0.4, .total_steps = 100}(57);
    const double r5 = wsd{.peak = 1.0, .warmup_steps = 10, .stable_steps = 5, .decay_steps = 9,
                          .warmup = curve::one_minus_sqrt, .decay = curve::cosine}(3);
    const double r6 = inverse_sqrt{.peak = 1.0, .warmup_steps = 3}(10);
    const double r7 = polynomial{.init = 1.0, .end = 0.1, .power = 0.7, .transition_steps = 9}(4);
    const double r8 = exponential_decay{.init = 1.0, .transition_steps = 3, .decay_rate = 0.9}(7);
    const double r9 = cosine_decay{.init = 1.0, .decay_steps = 700, .exponent = 1.5}(123);
    const double ct[] = {c1, c2, c3, c4, c5, c6, c7, c8, c9};
    const double rt[] = {r1, r2, r3, r4, r5, r6, r7, r8, r9};
    for (int i = 0; i < 9; ++i) {
        INFO("case " << i << ": constexpr " << ct[i] << " run time " << rt[i]);
        CHECK(std::abs(ct[i] - rt[i]) <= 1e-14 * std::abs(rt[i]));
    }
}

TEST_CASE("schedules: constexpr math helpers over a range of arguments") {
    for (int i = -400; i <= 400; ++i) {
        const double x = 4 * pi * i / 400.0;
        CHECK(std::abs(detail::cx_cos_series(x) - std::cos(x)) <= 1e-15);
    }
    for (double x : {0.0, 1e-300, 1e-10, 0.3, 1.0, 2.0, 3.7, 1e10, 1e300}) {
        CHECK(std::abs(detail::cx_sqrt_series(x) - std::sqrt(x)) <= 4e-16 * std::sqrt(x));
    }
    for (double b : {1e-12, 0.01, 0.5, 0.95, 1.0, 1.7, 123.0}) {
        for (double p : {0.0, 0.5, 1.0, 2.0, 3.3, 17.0, -1.5}) {
            const double want = std::pow(b, p);
            INFO(b << "^" << p);
            CHECK(std::abs(detail::cx_pow_series(b, p) - want) <= 1e-13 * want);
        }
    }
}

// ---- closed forms ------------------------------------------------------------------------------
TEST_CASE("constant") {
    const constant s{.value = 3e-4};
    CHECK(s(0) == 3e-4);
    CHECK(s(1'000'000'000'000) == 3e-4);
    check_schedule_laws(s, 10);
    CHECK_THROWS_WITH((constant{.value = std::nan("")}(0)), Catch::Contains("'value' must be finite"));
}

TEST_CASE("linear and polynomial follow optax polynomial_schedule") {
    const linear l{.init = 1.0, .end = 0.01, .transition_steps = 100, .transition_begin = 5};
    CHECK(l(0) == 1.0);
    CHECK(l(5) == 1.0);
    CHECK(l(55) == Approx(0.505).epsilon(1e-15));
    CHECK(l(105) == 0.01);
    CHECK(l(1000) == 0.01);
    check_schedule_laws(l, 105);
    // optax docstring example: init 1, end 0.01, 100 steps, begin 5, power 2.
    const polynomial p{.init = 1.0, .end = 0.01, .power = 2.0, .transition_steps = 100, .transition_begin = 5};
    CHECK(p(0) == 1.0);
    CHECK(p(5) == 1.0);
    CHECK(p(6) == Approx(0.99 * 0.99 * 0.99 + 0.01).epsilon(1e-14)); // 0.9803
    CHECK(p(104) == Approx(0.99 * 0.0001 + 0.01).epsilon(1e-14));    // 0.0101
    CHECK(p(105) == 0.01);
    CHECK(p(110) == 0.01);
    check_schedule_laws(p, 105);
    // transition_steps == 0: a jump to end at transition_begin.
    const linear jump{.init = 1.0, .end = 2.0, .transition_steps = 0, .transition_begin = 3};
    CHECK(jump(2) == 1.0);
    CHECK(jump(3) == 2.0);
    CHECK_THROWS_WITH((polynomial{.power = 0.0, .transition_steps = 3}(0)), Catch::Contains("'power' must be > 0"));
    CHECK_THROWS_WITH((linear{.transition_steps = -1}(0)), Catch::Contains("'transition_steps' must be >= 0, got -1"));
    CHECK_THROWS_AS((linear{.init = std::numeric_limits<double>::infinity(), .transition_steps = 3}(0)),
                    selfreplay::invalid_argument);
}

TEST_CASE("warmup_constant: the paper's default, and linear_warmup is the same schedule") {
    const warmup_constant s{.peak = 1e-4, .warmup_steps = 200};
    CHECK(s(0) == 0.0);
    CHECK(s(50) == Approx(0.25e-4).epsilon(1e-15));
    CHECK(s(100) == Approx(0.5e-4).epsilon(1e-15));
    CHECK(s(199) == Approx(1e-4 * 199 / 200).epsilon(1e-15));
    CHECK(s(200) == 1e-4);
    CHECK(s(1'000'000) == 1e-4);
    check_schedule_laws(s, 200);
    const linear_warmup w{.peak = 2.0, .warmup_steps = 4, .init = 1.0};
    CHECK(w(0) == 1.0);
    CHECK(w(1) == 1.25);
    CHECK(w(4) == 2.0);
    CHECK(warmup_constant{.peak = 5.0, .warmup_steps = 0}(0) == 5.0);
}

TEST_CASE("exponential_decay follows optax exponential_decay") {
    const exponential_decay e{.init = 2.0, .transition_steps = 10, .decay_rate = 0.5, .transition_begin = 5};
    CHECK(e(0) == 2.0);
    CHECK(e(5) == 2.0);
    CHECK(e(15) == 1.0);
    CHECK(e(10) == Approx(2.0 * std::sqrt(0.5)).epsilon(1e-15));
    CHECK(e(25) == 0.5);
    check_schedule_laws(e, 30);
    const exponential_decay stair{.init = 2.0, .transition_steps = 10, .decay_rate = 0.5, .staircase = true};
    CHECK(stair(9) == 2.0);
    CHECK(stair(10) == 1.0);
    CHECK(stair(19) == 1.0);
    CHECK(stair(20) == 0.5);
    const exponential_decay floor{.init = 1.0, .transition_steps = 1, .decay_rate = 0.5, .end = 0.2};
    CHECK(floor(2) == 0.25);
    CHECK(floor(3) == 0.2);
    CHECK(floor(100) == 0.2);
    const exponential_decay ceiling{.init = 1.0, .transition_steps = 1, .decay_rate = 2.0, .end = 5.0};
    CHECK(ceiling(2) == 4.0);
    CHECK(ceiling(3) == 5.0);
    CHECK_THROWS_WITH((exponential_decay{.transition_steps = 0, .decay_rate = 0.5}(0)),
                      Catch::Contains("'transition_steps' must be > 0"));
    CHECK_THROWS_WITH((exponential_decay{.decay_rate = 0.0}(0)), Catch::Contains("'decay_rate' must be > 0"));
    CHECK_THROWS_WITH((exponential_decay{.decay_rate = 0.5, .end = std::nan("")}(0)), Catch::Contains("'end' must be finite"));
}

TEST_CASE("piecewise_constant follows optax (a scale applies from its boundary on)") {
    const piecewise_constant s{.init = 1.0, .boundaries = {10, 20}, .scales = {0.1, 0.5}};
    CHECK(s(0) == 1.0);
    CHECK(s(9) == 1.0);
    CHECK(s(10) == 0.1);
    CHECK(s(19) == 0.1);
    CHECK(s(20) == 0.1 * 0.5);
    CHECK(s(1000) == 0.1 * 0.5);
    check_schedule_laws(s, 20);
    CHECK(piecewise_constant{.init = 3.0}(5) == 3.0);
    CHECK_THROWS_WITH((piecewise_constant{.boundaries = {5}, .scales = {}}(0)), Catch::Contains("one entry per boundary"));
    CHECK_THROWS_WITH((piecewise_constant{.boundaries = {5, 5}, .scales = {1, 1}}(0)), Catch::Contains("strictly increasing"));
    CHECK_THROWS_WITH((piecewise_constant{.boundaries = {5}, .scales = {-1}}(0)), Catch::Contains("'scales' must be >= 0"));
}

TEST_CASE("piecewise_linear interpolates between knots") {
    const piecewise_linear s{.steps = {10, 20, 40}, .values = {1.0, 3.0, 2.0}};
    CHECK(s(0) == 1.0);
    CHECK(s(10) == 1.0);
    CHECK(s(15) == 2.0);
    CHECK(s(20) == 3.0);
    CHECK(s(30) == 2.5);
    CHECK(s(40) == 2.0);
    CHECK(s(99) == 2.0);
    check_schedule_laws(s, 40);
    CHECK(piecewise_linear{.steps = {7}, .values = {0.25}}(100) == 0.25);
    CHECK_THROWS_WITH((piecewise_linear{}(0)), Catch::Contains("'steps' must hold at least one knot"));
    CHECK_THROWS_WITH((piecewise_linear{.steps = {3, 1}, .values = {0, 1}}(0)), Catch::Contains("strictly increasing"));
    CHECK_THROWS_WITH((piecewise_linear{.steps = {1}, .values = {std::nan("")}}(0)), Catch::Contains("'values' must be finite"));
}

TEST_CASE("inverse_sqrt follows HF get_inverse_sqrt_schedule") {
    const inverse_sqrt s{.peak = 1.0, .warmup_steps = 100};
    CHECK(s(0) == 0.0);
    CHECK(s(50) == 0.5);
    CHECK(s(100) == 1.0);
    CHECK(s(400) == Approx(0.5).epsilon(1e-15)); // 1 / sqrt((400 + 0) / 100)
    CHECK(s(900) == Approx(1.0 / 3.0).epsilon(1e-15));
    check_schedule_laws(s, 100);
    CHECK(inverse_sqrt{.peak = 2.0}(30'000) == Approx(2.0 / 2.0).epsilon(1e-15)); // timescale 10,000: sqrt(40000/10000)
    CHECK(inverse_sqrt{.peak = 1.0, .warmup_steps = 10, .timescale = 40}(70) == Approx(std::sqrt(0.4)).epsilon(1e-15));
}

TEST_CASE("cosine_decay follows optax cosine_decay_schedule") {
    const cosine_decay s{.init = 2.0, .decay_steps = 100, .alpha = 0.1};
    CHECK(s(0) == 2.0);
    CHECK(s(50) == Approx(2.0 * (0.9 * 0.5 + 0.1)).epsilon(1e-15));
    CHECK(s(25) == Approx(2.0 * (0.9 * 0.5 * (1 + std::cos(pi / 4)) + 0.1)).epsilon(1e-15));
    CHECK(s(100) == Approx(0.2).epsilon(1e-15));
    CHECK(s(1000) == Approx(0.2).epsilon(1e-15));
    check_schedule_laws(s, 100);
    const cosine_decay e{.init = 1.0, .decay_steps = 100, .exponent = 2.0};
    CHECK(e(50) == Approx(0.25).epsilon(1e-15));
    CHECK_THROWS_WITH((cosine_decay{.decay_steps = 0}(0)), Catch::Contains("'decay_steps' must be > 0, got 0"));
    CHECK_THROWS_WITH((cosine_decay{.decay_steps = 3, .alpha = std::nan("")}(0)), Catch::Contains("'alpha' must be finite"));
}

TEST_CASE("warmup_cosine follows optax warmup_cosine_decay_schedule") {
    const warmup_cosine s{.peak = 1.0, .warmup_steps = 10, .decay_steps = 110, .end = 0.1};
    CHECK(s(0) == 0.0);
    CHECK(s(5) == 0.5);
    CHECK(s(10) == 1.0);
    CHECK(s(60) == Approx(0.55).epsilon(1e-15));
    CHECK(s(110) == Approx(0.1).epsilon(1e-15));
    CHECK(s(5000) == Approx(0.1).epsilon(1e-15));
    check_schedule_laws(s, 110);
    // Equal to its definition as a join of linear and cosine_decay, at every step.
    const auto j = join({10}, linear{.init = 0.0, .end = 1.0, .transition_steps = 10},
                        cosine_decay{.init = 1.0, .decay_steps = 100, .alpha = 0.1});
    for (std::int64_t t = 0; t <= 130; ++t) CHECK(s(t) == j(t));
    CHECK(warmup_cosine{.peak = 0.0, .warmup_steps = 1, .decay_steps = 3, .end = 0.0}(2) == 0.0);
    // A warm-up as long as the horizon is an error.
    CHECK_THROWS_WITH((warmup_cosine{.peak = 1.0, .warmup_steps = 200, .decay_steps = 100}(0)),
                      Catch::Contains("'warmup_steps' must be shorter than the horizon decay_steps = 100, got 200"));
    CHECK_THROWS_AS((warmup_cosine{.peak = 1.0, .warmup_steps = 100, .decay_steps = 100}(0)), selfreplay::invalid_argument);
    CHECK_THROWS_AS((warmup_cosine{.peak = std::nan(""), .warmup_steps = 1, .decay_steps = 10}(0)), selfreplay::invalid_argument);
}

TEST_CASE("sgdr follows PyTorch CosineAnnealingWarmRestarts") {
    const sgdr s{.peak = 1.0, .period = 10, .period_mult = 2, .end = 0.0};
    CHECK(s(0) == 1.0);
    CHECK(s(5) == Approx(0.5).epsilon(1e-15));
    CHECK(s(10) == 1.0); // restart; second cycle lasts 20
    CHECK(s(20) == Approx(0.5).epsilon(1e-15));
    CHECK(s(30) == 1.0); // third cycle lasts 40
    CHECK(s(50) == Approx(0.5).epsilon(1e-15));
    CHECK(s(70) == 1.0);
    check_schedule_laws(s, 70);
    const sgdr flat{.peak = 2.0, .period = 4, .end = 1.0};
    CHECK(flat(2) == Approx(1.5).epsilon(1e-15));
    CHECK(flat(4) == 2.0);
    CHECK(flat(4000002) == Approx(1.5).epsilon(1e-15));
    // Huge steps with a growing period do not overflow.
    CHECK(std::isfinite(sgdr{.peak = 1.0, .period = 3, .period_mult = 1000}(std::numeric_limits<std::int64_t>::max())));
    CHECK_THROWS_WITH((sgdr{.period = 0}(0)), Catch::Contains("'period' must be > 0"));
    CHECK_THROWS_WITH((sgdr{.period = 3, .period_mult = 0}(0)), Catch::Contains("'period_mult' must be >= 1"));
}

TEST_CASE("one_cycle follows PyTorch OneCycleLR") {
    const one_cycle s{.peak = 1.0, .total_steps = 101, .pct_start = 0.5, .div_factor = 4.0, .final_div_factor = 2.5};
    // phase ends: 0.5 * 101 - 1 = 49.5 and 100.
    CHECK(s(0) == 0.25);
    CHECK(s(100) == Approx(0.1).epsilon(1e-15));
    CHECK(s(1000) == Approx(0.1).epsilon(1e-15)); // holds the final value after the cycle
    CHECK(s(20) == Approx(1.0 + (0.25 - 1.0) / 2 * (std::cos(pi * 20 / 49.5) + 1)).epsilon(1e-15));
    CHECK(s(75) == Approx(0.1 + (1.0 - 0.1) / 2 * (std::cos(pi * 25.5 / 50.5) + 1)).epsilon(1e-15));
    check_schedule_laws(s, 101);
    const one_cycle lin{.peak = 1.0, .total_steps = 21, .pct_start = 0.5, .div_factor = 2.0, .final_div_factor = 5.0,
                        .shape = curve::linear, .three_phase = true};
    // phases end at 9.5, 19, 20: 0.5 -> 1 -> 0.5 -> 0.1.
    CHECK(lin(0) == 0.5);
    CHECK(lin(19) == 0.5);
    CHECK(lin(20) == Approx(0.1).epsilon(1e-15));
    CHECK(lin(5) == Approx(0.5 + 0.5 * 5 / 9.5).epsilon(1e-15));
    CHECK(lin(14) == Approx(1.0 - 0.5 * 4.5 / 9.5).epsilon(1e-15));
    CHECK_THROWS_WITH((one_cycle{.peak = 1.0, .total_steps = 2}(0)), Catch::Contains("every phase must last at least one step"));
    CHECK_THROWS_WITH((one_cycle{.peak = 1.0, .total_steps = 100, .pct_start = 1.0}(0)), Catch::Contains("'pct_start' must be in (0, 1)"));
    CHECK_THROWS_WITH((one_cycle{.peak = 1.0, .total_steps = 100, .shape = curve::one_minus_sqrt}(0)), Catch::Contains("'shape'"));
    CHECK_THROWS_AS((one_cycle{.peak = 1.0, .total_steps = 10, .pct_start = 0.6, .three_phase = true}(0)),
                    selfreplay::invalid_argument);
}

TEST_CASE("wsd follows HF get_wsd_schedule") {
    const wsd s{.peak = 2.0, .warmup_steps = 10, .stable_steps = 20, .decay_steps = 10, .min_ratio = 0.1};
    CHECK(s(0) == Approx(0.2).epsilon(1e-15)); // warm-up starts at min_ratio, as in HF
    CHECK(s(5) == Approx(2.0 * (0.5 * 0.9 + 0.1)).epsilon(1e-15));
    CHECK(s(10) == 2.0);
    CHECK(s(29) == 2.0);
    CHECK(s(30) == 2.0); // decay starts at factor 1
    CHECK(s(35) == Approx(2.0 * (0.5 * 0.9 + 0.1)).epsilon(1e-15));
    CHECK(s(40) == Approx(0.2).epsilon(1e-15));
    CHECK(s(4000) == Approx(0.2).epsilon(1e-15));
    check_schedule_laws(s, 40);
    const wsd sq{.peak = 1.0, .warmup_steps = 4, .stable_steps = 0, .decay_steps = 4, .warmup = curve::one_minus_sqrt,
                 .decay = curve::one_minus_sqrt};
    CHECK(sq(3) == Approx(1.0 - std::sqrt(0.25)).epsilon(1e-15));
    CHECK(sq(4 + 1) == Approx(1.0 - std::sqrt(0.25)).epsilon(1e-15));
    const wsd lin{.peak = 1.0, .warmup_steps = 4, .stable_steps = 1, .decay_steps = 4, .warmup = curve::cosine,
                  .decay = curve::linear};
    CHECK(lin(2) == Approx(0.5).epsilon(1e-15));
    CHECK(lin(6) == Approx(0.75).epsilon(1e-15));
    CHECK_THROWS_WITH((wsd{.min_ratio = 1.5}(0)), Catch::Contains("'min_ratio' must be in [0, 1], got 1.5"));
    CHECK_THROWS_AS((wsd{.stable_steps = -3}(0)), selfreplay::invalid_argument);
}

TEST_CASE("a user-written schedule is a model") {
    const halving_every_10 s{};
    CHECK(s(25) == 0.25);
    const scale<halving_every_10> sc{.inner = s, .factor = 4.0};
    CHECK(sc(25) == 1.0);
}

TEST_CASE("schedules at steps near 2^63 stay finite (fuzz finding: inverse_sqrt overflowed an int64 sum)") {
    constexpr std::int64_t huge = std::numeric_limits<std::int64_t>::max();
    const inverse_sqrt s{.peak = 2.0, .warmup_steps = 10, .timescale = huge / 2 + 7};
    for (std::int64_t step : {huge, huge - 1, huge / 2 + 11, std::int64_t{10}}) {
        INFO("step " << step);
        const double v = s(step);
        CHECK(std::isfinite(v));
        CHECK(v > 0);
        CHECK(v <= 2.0);
    }
    // the value follows peak / sqrt((step - warmup + ts) / ts) computed in long double
    const long double x = (static_cast<long double>(huge - 10) + static_cast<long double>(huge / 2 + 7)) /
                          static_cast<long double>(huge / 2 + 7);
    CHECK(s(huge) == Approx(static_cast<double>(2.0L / std::sqrt(x))).epsilon(1e-12));
}
