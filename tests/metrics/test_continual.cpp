// Task-sequence metrics on hand-computed worked examples (definitions in shared/paper-notes.md),
// edge cases (one task, no forgetting, negative and positive backward transfer), a brute-force
// cross-check, and errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "selfreplay/metrics.hpp"

using namespace selfreplay;

TEST_CASE("worked example: 3 tasks with forgetting (negative BWT) and a transient improvement") {
    // Task 0 improves after task 1 (0.95 > 0.9), then falls to 0.5 after task 2.
    const accuracy_matrix R{{0.90, 0.10, 0.20},  //
                            {0.95, 0.80, 0.30},  //
                            {0.50, 0.70, 0.95}};
    CHECK(R.trained() == 3);
    CHECK(R.tasks() == 3);
    CHECK(average_accuracy(R) == Approx((0.50 + 0.70 + 0.95) / 3).epsilon(1e-15));
    CHECK(learning_accuracy(R) == Approx((0.90 + 0.80 + 0.95) / 3).epsilon(1e-15));
    // BWT = ((0.5 - 0.9) + (0.7 - 0.8)) / 2
    CHECK(backward_transfer(R) == Approx(-0.25).epsilon(1e-15));
    // Chaudhry: max over history: j=0: 0.95 - 0.5 = 0.45; j=1: max(0.1, 0.8) - 0.7 = 0.1.
    const auto per_task = forgetting_per_task(R);
    REQUIRE(per_task.size() == 2);
    CHECK(per_task[0] == Approx(0.45).epsilon(1e-15));
    CHECK(per_task[1] == Approx(0.10).epsilon(1e-14));
    CHECK(average_forgetting(R) == Approx(0.275).epsilon(1e-15));
    // Avalanche: first minus last: (0.9 - 0.5 + 0.8 - 0.7) / 2 = 0.25 = -BWT.
    CHECK(average_first_last_forgetting(R) == Approx(0.25).epsilon(1e-15));
    CHECK(average_first_last_forgetting(R) == Approx(-backward_transfer(R)).epsilon(1e-15));
    // FWT with baselines b = (0.1, 0.05, 0.2): ((0.1 - 0.05) + (0.3 - 0.2)) / 2.
    CHECK(forward_transfer(R, {0.1, 0.05, 0.2}) == Approx(0.075).epsilon(1e-14));
}

TEST_CASE("the paper's toy experiment shape: 4 tasks, no replay vs replay (percent)") {
    // Without replay earlier tasks fall to 0-20% once a later task trains.
    const accuracy_matrix none{{100, 0, 0, 0}, {10, 100, 0, 0}, {5, 20, 100, 0}, {0, 15, 10, 100}};
    CHECK(average_accuracy(none) == Approx(125.0 / 4));
    CHECK(backward_transfer(none) == Approx(((0 - 100) + (15 - 100) + (10 - 100)) / 3.0));
    CHECK(average_forgetting(none) == Approx(((100 - 0) + (100 - 15) + (100 - 10)) / 3.0));
    // With replay all stay at 100: no forgetting.
    const accuracy_matrix replay{{100, 0, 0, 0}, {100, 100, 0, 0}, {100, 100, 100, 0}, {100, 100, 100, 100}};
    CHECK(average_accuracy(replay) == 100.0);
    CHECK(backward_transfer(replay) == 0.0);
    CHECK(average_forgetting(replay) == 0.0);
    CHECK(average_first_last_forgetting(replay) == 0.0);
    CHECK(learning_accuracy(replay) == 100.0);
    CHECK(forward_transfer(replay, {0, 0, 0, 0}) == 0.0);
}

TEST_CASE("edge cases: one task, positive backward transfer, partial matrices") {
    const accuracy_matrix one{{0.7}};
    CHECK(average_accuracy(one) == 0.7);
    CHECK(learning_accuracy(one) == 0.7);
    CHECK(backward_transfer(one) == 0.0);
    CHECK(average_forgetting(one) == 0.0);
    CHECK(average_first_last_forgetting(one) == 0.0);
    CHECK(forgetting_per_task(one).empty());
    CHECK(forward_transfer(one, {0.1}) == 0.0);

    // Later training helps task 0: positive BWT, negative forgetting.
    const accuracy_matrix helps{{0.6, 0.2}, {0.8, 0.9}};
    CHECK(backward_transfer(helps) == Approx(0.2).epsilon(1e-14));
    CHECK(average_forgetting(helps) == Approx(-0.2).epsilon(1e-14));
    CHECK(average_first_last_forgetting(helps) == Approx(-0.2).epsilon(1e-14));

    // Built row by row: after two of three tasks, metrics describe the state after task 1.
    accuracy_matrix partial(3);
    partial.add_row({0.9, 0.3, 0.1});
    partial.add_row({0.6, 0.8, 0.2});
    CHECK(partial.trained() == 2);
    CHECK(average_accuracy(partial) == Approx(0.7).epsilon(1e-15));  // (0.6 + 0.8) / 2
    CHECK(backward_transfer(partial) == Approx(-0.3).epsilon(1e-14));
    CHECK(average_forgetting(partial) == Approx(0.3).epsilon(1e-14));
    // FWT uses R[0][1] and R[1][2] (task 2 evaluated just before training it): (0.3 - 0.1 + 0.2 - 0.1) / 2.
    CHECK(forward_transfer(partial, {0.0, 0.1, 0.1}) == Approx(0.15).epsilon(1e-14));
}

TEST_CASE("random matrices: metrics equal their definitions computed by brute force") {
    std::mt19937 rng(3);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (int trial = 0; trial < 50; ++trial) {
        const std::size_t T = 1 + trial % 6;
        std::vector<std::vector<double>> rows(T, std::vector<double>(T));
        for (auto& r : rows)
            for (auto& x : r) x = u(rng);
        std::vector<double> b(T);
        for (auto& x : b) x = u(rng);
        const accuracy_matrix R(rows);
        const std::size_t k = T - 1;
        double acc = 0, bwt = 0, fgt = 0, fwt = 0;
        for (std::size_t j = 0; j < T; ++j) acc += rows[k][j] / T;
        for (std::size_t j = 0; j < k; ++j) {
            bwt += (rows[k][j] - rows[j][j]) / k;
            double best = -1;
            for (std::size_t i = 0; i < k; ++i) best = std::max(best, rows[i][j] - rows[k][j]);
            fgt += best / k;
        }
        for (std::size_t j = 1; j < T; ++j) fwt += (rows[j - 1][j] - b[j]) / (T - 1);
        INFO("T = " << T);
        CHECK(average_accuracy(R) == Approx(acc).margin(1e-14));
        CHECK(backward_transfer(R) == Approx(bwt).margin(1e-14));
        CHECK(average_forgetting(R) == Approx(fgt).margin(1e-14));
        CHECK(forward_transfer(R, b) == Approx(fwt).margin(1e-14));
    }
}

TEST_CASE("accuracy_matrix errors: empty, ragged, too many rows, NaN") {
    const accuracy_matrix empty;
    CHECK_THROWS_WITH(average_accuracy(empty), Catch::Contains("average_accuracy: argument 'accuracy' must hold at least one row"));
    CHECK_THROWS_AS(backward_transfer(empty), selfreplay::invalid_argument);
    CHECK_THROWS_AS(average_forgetting(empty), selfreplay::invalid_argument);
    CHECK_THROWS_WITH(accuracy_matrix(std::vector<std::vector<double>>{}), Catch::Contains("must hold at least one row"));
    CHECK_THROWS_WITH((accuracy_matrix{{0.1, 0.2}, {0.3}}), Catch::Contains("is ragged: row 1 has 1 entries but the matrix has 2 tasks"));
    CHECK_THROWS_WITH((accuracy_matrix{{0.1}, {0.3}}), Catch::Contains("only 1 tasks to train"));
    CHECK_THROWS_WITH((accuracy_matrix{{0.1, std::nan("")}, {0.3, 0.4}}), Catch::Contains("non-finite entry R[0][1]"));
    accuracy_matrix m(2);
    CHECK_THROWS_WITH(m.add_row(std::vector<double>{}), Catch::Contains("must not be empty"));
    const accuracy_matrix ok{{0.5, 0.1}, {0.4, 0.9}};
    CHECK_THROWS_WITH(forward_transfer(ok, {0.1}), Catch::Contains("'baseline' must have one entry per task (2), got 1"));
    CHECK_THROWS_WITH(forward_transfer(ok, {0.1, std::nan("")}), Catch::Contains("non-finite entry b[1]"));
    CHECK_THROWS_WITH(ok(2, 0), Catch::Contains("outside the matrix"));
}
