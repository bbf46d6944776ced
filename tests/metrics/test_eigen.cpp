// Metrics on Eigen types (column-major parameters, row-major per-position losses): the same
// values as the raw row-major views.
#include <catch2/catch.hpp>

#include <Eigen/Core>
#include <cmath>
#include <random>
#include <vector>

#include "selfreplay/adapters/eigen.hpp"
#include "selfreplay/metrics.hpp"

using namespace selfreplay;

TEST_CASE("metrics accept Eigen matrices of any storage order") {
    std::mt19937 rng(1);
    std::normal_distribution<float> n(0.f, 1.f);
    const Eigen::MatrixXf init = Eigen::MatrixXf::NullaryExpr(5, 7, [&] { return n(rng); });
    const Eigen::MatrixXf pi = init + 0.1f * Eigen::MatrixXf::NullaryExpr(5, 7, [&] { return n(rng); });
    const Eigen::MatrixXf theta = pi + 0.01f * Eigen::MatrixXf::NullaryExpr(5, 7, [&] { return n(rng); });
    weight_distance_ratio r;
    r.add(theta, pi, init);
    // the reference in double throughout (a float difference would round: off by ~1e-9 under FMA contraction)
    const Eigen::MatrixXd t = theta.cast<double>(), p = pi.cast<double>(), i0 = init.cast<double>();
    const double want = std::sqrt((t - p).squaredNorm()) / std::sqrt((p - i0).squaredNorm());
    CHECK(r.value() == Approx(want).epsilon(1e-12));
    // Same numbers through row-major copies: identical result (exact sums do not depend on order).
    using row_major = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const row_major tr = theta, pr = pi, ir = init;
    weight_distance_ratio s;
    s.add(make_view(tr.data(), {5, 7}), make_view(pr.data(), {5, 7}), make_view(ir.data(), {5, 7}));
    CHECK(s.value() == r.value());

    // Per-position losses [B, T] in a row-major Eigen matrix, and a block of it.
    Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> loss(3, 4);
    loss << 1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0;
    mean_loss m;
    m.add(loss);
    CHECK(m.value() == 45.0 / 12);
    second_half_loss h;
    h.add(loss);
    CHECK(h.value() == (3 + 0 + 6 + 0 + 9 + 0) / 6.0);
    mean_kl block;
    block.add(loss.block(1, 0, 2, 3));
    CHECK(block.value() == (4 + 5 + 6 + 7 + 8 + 9) / 6.0);
}
