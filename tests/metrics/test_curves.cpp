// steps_to_target, compute_multiplier and pareto_frontier: hand examples, brute force, errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "selfreplay/metrics.hpp"

using namespace selfreplay;

TEST_CASE("steps_to_target: first evaluation at or below the target, or interpolated") {
    const std::vector<double> x{0, 100, 200, 300, 400};
    const std::vector<double> loss{4.0, 3.0, 2.5, 1.9, 1.7};
    const loss_curve c{.x = x, .loss = loss};
    CHECK(steps_to_target(c, 2.0) == 300.0);
    CHECK(steps_to_target(c, 2.5) == 200.0); // reaching means <=
    CHECK(steps_to_target(c, 2.0, crossing::interpolate) == Approx(200 + 100 * (0.5 / 0.6)).epsilon(1e-15));
    CHECK(steps_to_target(c, 5.0) == 0.0);
    CHECK(steps_to_target(c, 5.0, crossing::interpolate) == 0.0);
    CHECK_FALSE(steps_to_target(c, 1.0).has_value());
    CHECK_FALSE(steps_to_target(loss_curve{}, 1.0).has_value());
    // Not monotone: the first crossing counts, even if the loss goes back up.
    const std::vector<double> bumpy{3.0, 1.9, 2.4, 1.5};
    CHECK(steps_to_target(loss_curve{.x = std::span<const double>(x).first(4), .loss = bumpy}, 2.0) == 100.0);

    const std::vector<double> nan_loss{3.0, std::nan(""), 1.0, 1.0, 1.0};
    CHECK_THROWS_WITH(steps_to_target(loss_curve{.x = x, .loss = nan_loss}, 2.0),
                      Catch::Contains("steps_to_target: argument 'curve' has a NaN loss at index 1 (x = 100"));
    const std::vector<double> short_loss{1.0};
    CHECK_THROWS_WITH(steps_to_target(loss_curve{.x = x, .loss = short_loss}, 2.0), Catch::Contains("has 5 x values but 1 losses"));
    const std::vector<double> back{0, 10, 10};
    CHECK_THROWS_WITH(steps_to_target(loss_curve{.x = back, .loss = std::span<const double>(loss).first(3)}, 2.0),
                      Catch::Contains("strictly increasing x"));
    CHECK_THROWS_WITH(steps_to_target(c, std::nan("")), Catch::Contains("argument 'target' must be finite"));
}

TEST_CASE("compute_multiplier: the paper's 38x, in tokens") {
    // A low learning rate reaches the target after 3.8M tokens, a high one after 100k.
    const std::vector<double> tokens_low{1e6, 2e6, 3.8e6, 5e6}, loss_low{3.0, 2.6, 2.2, 2.1};
    const std::vector<double> tokens_high{5e4, 1e5, 2e5}, loss_high{2.5, 2.2, 2.0};
    const loss_curve low{.x = tokens_low, .loss = loss_low}, high{.x = tokens_high, .loss = loss_high};
    CHECK(compute_multiplier(low, high, 2.2) == Approx(38.0).epsilon(1e-15));
    CHECK(compute_multiplier(high, low, 2.2) == Approx(1.0 / 38).epsilon(1e-15));
    CHECK_FALSE(compute_multiplier(low, high, 2.05).has_value()); // the low run never gets there
    const std::vector<double> at_zero{0, 1}, l{1.0, 0.5};
    CHECK_THROWS_WITH(compute_multiplier(high, loss_curve{.x = at_zero, .loss = l}, 2.0),
                      Catch::Contains("compute_multiplier: argument 'reference' reaches the target at x = 0"));
}

TEST_CASE("pareto_frontier: hand example with ties and duplicates") {
    const std::vector<loss_point> pts{
        {2.0, 3.0}, // 0: dominated by 3
        {1.0, 5.0}, // 1: frontier (lowest old loss)
        {3.0, 1.0}, // 2: frontier (lowest new loss)
        {1.5, 2.5}, // 3: frontier
        {1.5, 2.5}, // 4: duplicate of 3: kept
        {1.0, 6.0}, // 5: dominated by 1 (same old, worse new)
        {3.0, 1.0}, // 6: duplicate of 2: kept
        {4.0, 1.0}, // 7: dominated by 2 (same new, worse old)
    };
    CHECK(pareto_frontier(pts) == std::vector<std::size_t>{1, 3, 4, 2, 6});
    CHECK(pareto_frontier(std::vector<loss_point>{}).empty());
    CHECK(pareto_frontier(std::vector<loss_point>{{1, 1}}) == std::vector<std::size_t>{0});
    CHECK_THROWS_WITH(pareto_frontier(std::vector<loss_point>{{1, 1}, {std::nan(""), 0}}),
                      Catch::Contains("non-finite coordinate at index 1"));
}

TEST_CASE("pareto_frontier equals the O(n^2) definition on random points with many ties") {
    std::mt19937 rng(5);
    std::uniform_int_distribution<int> coord(0, 12);
    for (int trial = 0; trial < 100; ++trial) {
        std::vector<loss_point> pts(static_cast<std::size_t>(1 + trial % 40));
        for (auto& p : pts) p = {coord(rng) * 0.25, coord(rng) * 0.25};
        std::vector<bool> want(pts.size(), true);
        for (std::size_t i = 0; i < pts.size(); ++i)
            for (std::size_t j = 0; j < pts.size(); ++j) {
                const auto &p = pts[i], &q = pts[j];
                if (q.old_loss <= p.old_loss && q.new_loss <= p.new_loss && (q.old_loss < p.old_loss || q.new_loss < p.new_loss))
                    want[i] = false;
            }
        const auto got = pareto_frontier(pts);
        std::vector<bool> in(pts.size(), false);
        for (std::size_t i : got) in[i] = true;
        CHECK(in == want);
        for (std::size_t i = 1; i < got.size(); ++i) CHECK(pts[got[i - 1]].old_loss <= pts[got[i]].old_loss);
    }
}
