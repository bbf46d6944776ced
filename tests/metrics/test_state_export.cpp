// Exported accumulator state: split a stream over P "ranks", export each part, combine the states
// by an element-wise integer sum (what an MPI sum-allreduce does) or by import + merge in a
// shuffled order; both equal one pass over the whole stream bit for bit. Corrupt states are refused.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "selfreplay/metrics.hpp"

using namespace selfreplay;

namespace {

// Values spanning many binades and both signs, so that any rounding inside a combine would show.
std::vector<double> wide_values(std::size_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> mant(-1.0, 1.0);
    std::uniform_int_distribution<int> expo(-60, 60);
    std::vector<double> v(n);
    for (auto& x : v) x = std::ldexp(mant(rng), expo(rng));
    return v;
}

template <class State>
State integer_sum(const std::vector<State>& states) {
    State total{};
    for (const auto& s : states)
        for (std::size_t i = 0; i < s.size(); ++i) total[i] += s[i];
    return total;
}

} // namespace

TEST_CASE("exact_sum: states summed as integers or merged equal one pass, bit for bit") {
    const auto values = wide_values(5000, 7);
    exact_sum whole;
    for (double x : values) whole.add(x);
    double naive = 0;
    for (double x : values) naive += x;
    REQUIRE(naive != whole.value()); // the data is hard enough that plain summation rounds differently
    for (int ranks = 1; ranks <= 5; ++ranks) {
        std::vector<exact_sum::state_type> states;
        for (int r = 0; r < ranks; ++r) {
            exact_sum part;
            for (std::size_t i = std::size_t(r); i < values.size(); i += std::size_t(ranks)) part.add(values[i]);
            states.push_back(part.export_state());
        }
        exact_sum reduced;
        reduced.import_state(integer_sum(states));
        CHECK(reduced.value() == whole.value());
        exact_sum merged;
        std::mt19937_64 rng{static_cast<std::uint64_t>(ranks)};
        std::shuffle(states.begin(), states.end(), rng);
        for (const auto& s : states) {
            exact_sum one;
            one.import_state(s);
            merged.merge(one);
        }
        CHECK(merged.value() == whole.value());
    }
}

TEST_CASE("mean_loss: exported states combine exactly, count included") {
    const auto values = wide_values(3001, 11);
    mean_loss whole;
    for (double x : values) whole.add(x);
    for (int ranks = 1; ranks <= 4; ++ranks) {
        std::vector<mean_loss::state_type> states;
        for (int r = 0; r < ranks; ++r) {
            mean_loss part;
            const std::size_t begin = values.size() * std::size_t(r) / std::size_t(ranks),
                              end = values.size() * std::size_t(r + 1) / std::size_t(ranks);
            for (std::size_t i = begin; i < end; ++i) part.add(values[i]);
            states.push_back(part.export_state());
        }
        mean_loss reduced;
        reduced.import_state(integer_sum(states));
        CHECK(reduced.count() == whole.count());
        CHECK(reduced.value() == whole.value());
        CHECK(reduced.sum() == whole.sum());
        mean_loss merged;
        for (auto it = states.rbegin(); it != states.rend(); ++it) {
            mean_loss one;
            one.import_state(*it);
            merged.merge(one);
        }
        CHECK(merged.value() == whole.value());
        CHECK(merged.count() == whole.count());
    }
    // The layout is the documented one: the chunks of the sum, then the count.
    mean_loss one;
    one.add(1.0);
    const auto s = one.export_state();
    CHECK(s.size() == 69);
    CHECK(s[68] == 1);
    CHECK(s[33] == std::int64_t{1} << 18); // 1.0 = 2^1074 units of 2^-1074: chunk 33, bit 18
}

TEST_CASE("exported states: wrong sizes and corrupt contents are refused, the accumulator unchanged") {
    mean_loss m;
    m.add(2.0);
    std::vector<std::int64_t> short_state(68, 0);
    CHECK_THROWS_WITH(m.import_state(short_state),
                      Catch::Contains("mean_loss::import_state: argument 'state' must hold 69 integers (layout version 1), got 68"));
    auto bad = mean_kl{}.export_state();
    bad[68] = -1;
    mean_kl k;
    CHECK_THROWS_WITH(k.import_state(bad), Catch::Contains("mean_kl::import_state: argument 'state' holds the count -1"));
    auto orphan = m.export_state();
    orphan[68] = 0;
    CHECK_THROWS_WITH(m.import_state(orphan), Catch::Contains("holds a nonzero sum with a count of 0"));
    auto overflowed = m.export_state();
    overflowed[5] = std::int64_t{1} << 62;
    CHECK_THROWS_WITH(m.import_state(overflowed), Catch::Contains("beyond the bound 2^62"));
    CHECK(m.value() == 2.0);
    CHECK(m.count() == 1);
    exact_sum e;
    CHECK_THROWS_WITH(e.import_state(std::vector<std::int64_t>(3, 0)),
                      Catch::Contains("exact_sum::import_state: argument 'state' must hold 68 integers"));
}

TEST_CASE("exact_sum: an imported sum of 2^20 states keeps adding and merging exactly") {
    // 2^20 copies of (2^200 - 2^-300) summed as integers: chunks far above 2^32 on import.
    exact_sum unit;
    unit.add(std::ldexp(1.0, 200));
    unit.add(-std::ldexp(1.0, -300));
    const auto s = unit.export_state();
    exact_sum::state_type total{};
    for (std::size_t i = 0; i < s.size(); ++i) total[i] = s[i] * (std::int64_t{1} << 20);
    exact_sum big;
    big.import_state(total);
    big.add(-std::ldexp(1.0, 220)); // leaves exactly -2^-280, which only an exact sum keeps
    CHECK(big.value() == -std::ldexp(1.0, -280));
    big.merge(big); // -2^-279
    big.merge(big); // -2^-278
    CHECK(big.value() == -std::ldexp(1.0, -278));
}
