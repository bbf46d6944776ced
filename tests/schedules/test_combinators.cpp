// join (optax join_schedules semantics), scale and clamp.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>

#include "selfreplay/schedules.hpp"

using namespace selfreplay;

TEST_CASE("join hands each later schedule step - boundary") {
    // optax: join_schedules([s0, s1, s2], [10, 30]) -> s0(t), s1(t - 10), s2(t - 30).
    const auto s = join({10, 30}, linear{.init = 0.0, .end = 1.0, .transition_steps = 10},
                        constant{.value = 1.0}, linear{.init = 1.0, .end = 0.0, .transition_steps = 20});
    CHECK(s(0) == 0.0);
    CHECK(s(5) == 0.5);
    CHECK(s(9) == Approx(0.9).epsilon(1e-15));
    CHECK(s(10) == 1.0);
    CHECK(s(29) == 1.0);
    CHECK(s(30) == 1.0);
    CHECK(s(40) == 0.5);
    CHECK(s(50) == 0.0);
    CHECK(s(500) == 0.0);
    CHECK_THROWS_WITH(s(-2), Catch::Contains("selfreplay::join: argument 'step' must be >= 0"));
    // The later schedule sees its own step 0 at the boundary: an exponential restarts from init.
    const auto e = join({3}, constant{.value = 7.0}, exponential_decay{.init = 4.0, .transition_steps = 1, .decay_rate = 0.5});
    CHECK(e(2) == 7.0);
    CHECK(e(3) == 4.0);
    CHECK(e(5) == 1.0);
    // Equal boundaries skip a part entirely.
    const auto skip = join({5, 5}, constant{.value = 1.0}, constant{.value = 2.0}, constant{.value = 3.0});
    CHECK(skip(4) == 1.0);
    CHECK(skip(5) == 3.0);
    CHECK_THROWS_WITH((join({5, 4}, constant{}, constant{}, constant{})(0)), Catch::Contains("must be non-decreasing"));
    CHECK_THROWS_WITH((join({-1}, constant{}, constant{})(0)), Catch::Contains("'boundaries' must be >= 0"));
    // A part's bad parameter is refused at the first call, before the part is reached: join's
    // check() checks every part (docs/design.md, "Validation").
    const auto bad = join({2}, constant{.value = 1.0}, cosine_decay{.decay_steps = 0});
    CHECK_THROWS_WITH(bad.check(), Catch::Contains("selfreplay::cosine_decay: argument 'decay_steps'"));
    CHECK_THROWS_WITH(bad(1), Catch::Contains("selfreplay::cosine_decay: argument 'decay_steps'"));
    CHECK_THROWS_WITH(bad(2), Catch::Contains("selfreplay::cosine_decay: argument 'decay_steps'"));
}

TEST_CASE("scale multiplies; the same shape drives a learning rate and a replay coefficient") {
    const warmup_cosine unit{.peak = 1.0, .warmup_steps = 10, .decay_steps = 100, .end = 0.0};
    const scale<warmup_cosine> lr{.inner = unit, .factor = 3e-4};
    const scale<warmup_cosine> coeff{.inner = unit, .factor = 10.0};
    for (std::int64_t t : {0, 5, 10, 50, 99, 100, 1000}) {
        CHECK(lr(t) == 3e-4 * unit(t));
        CHECK(coeff(t) == 10.0 * unit(t));
    }
    CHECK_THROWS_WITH((scale<warmup_cosine>{.inner = unit, .factor = std::numeric_limits<double>::infinity()}(0)),
                      Catch::Contains("'factor' must be finite"));
}

TEST_CASE("clamp bounds a schedule") {
    const clamp<linear> frac{.inner = linear{.init = -1.0, .end = 1.0, .transition_steps = 20}, .lo = 0.0, .hi = 0.5};
    CHECK(frac(0) == 0.0);
    CHECK(frac(10) == 0.0);
    CHECK(frac(14) == Approx(0.4).epsilon(1e-15));
    CHECK(frac(15) == 0.5);
    CHECK(frac(20) == 0.5);
    const clamp<exponential_decay> floor_only{.inner = exponential_decay{.init = 1.0, .transition_steps = 1, .decay_rate = 0.5}, .lo = 0.1};
    CHECK(floor_only(1) == 0.5);
    CHECK(floor_only(10) == 0.1);
    CHECK_THROWS_WITH((clamp<constant>{.inner = constant{}, .lo = 1.0, .hi = 0.0}(0)), Catch::Contains("'lo' must be <= hi = 0, got 1"));
    CHECK_THROWS_WITH((clamp<constant>{.inner = constant{}, .lo = std::nan("")}(0)), Catch::Contains("'lo' must not be NaN"));
}
