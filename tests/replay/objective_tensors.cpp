// The objective's aggregates take any tensor: Eigen matrices, xtensor containers and xt::view
// gradients give bit-identical results to the same memory passed as raw-pointer views, a
// dynamic-rank tensor of the wrong rank is refused, and the linear form's inputs and
// linear_head take tensors too.

#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <stdexcept>

#include <Eigen/Core>
#include <xtensor/xarray.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>

#include "selfreplay/adapters/eigen.hpp"
#include "selfreplay/adapters/xtensor.hpp"
#include "selfreplay/replay.hpp"

namespace sr = selfreplay;
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowIds = Eigen::Matrix<std::int32_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

namespace {
RowMat random_logits(Eigen::Index rows, Eigen::Index V, unsigned seed) {
    std::mt19937 g(seed);
    std::normal_distribution<float> n(0.0f, 2.0f);
    RowMat m(rows, V);
    for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = n(g);
    return m;
}
RowIds random_ids(Eigen::Index B, Eigen::Index L, int V, unsigned seed) {
    std::mt19937 g(seed);
    RowIds m(B, L);
    for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<std::int32_t>(g() % static_cast<unsigned>(V));
    return m;
}
sr::strided_view<const float, 2> raw(const RowMat& m) { return sr::make_view(m.data(), {m.rows(), m.cols()}); }
sr::strided_view<float, 2> raw(RowMat& m) { return sr::make_view(m.data(), {m.rows(), m.cols()}); }
} // namespace

TEST_CASE("objective_inputs and objective_gradients take Eigen matrices as they are", "[objective][tensors]") {
    const Eigen::Index B = 3, R = 2, L = 4, V = 11;
    const RowIds x = random_ids(B, L, V, 1), r = random_ids(R, L, V, 2);
    const RowMat zx = random_logits(B * L, V, 3), zr = random_logits(R * L, V, 4), pr = random_logits(R * L, V, 5);
    RowMat dzx(B * L, V), dzr(R * L, V), ex(B * L, V), er(R * L, V);
    const sr::kl_pre<> mixer{.coefficient = 0.7};

    const auto a = sr::evaluate_objective(mixer, 5,
        sr::objective_inputs<float>{.train_tokens = x, .student_train_logits = zx, .replay_tokens = r,
                                    .student_replay_logits = zr, .reference_replay_logits = pr},
        {.train = dzx, .replay = dzr});
    const auto b = sr::evaluate_objective(mixer, 5,
        sr::objective_inputs<float>{.train_tokens = sr::make_view(x.data(), {B, L}), .student_train_logits = raw(zx),
                                    .replay_tokens = sr::make_view(r.data(), {R, L}),
                                    .student_replay_logits = raw(zr), .reference_replay_logits = raw(pr)},
        {.train = raw(ex), .replay = raw(er)});
    CHECK(a.total == b.total);
    CHECK(a.terms[0].value == b.terms[0].value);
    CHECK(a.total > a.train_ntp); // the KL term is there
    CHECK(dzx == ex);
    CHECK(dzr == er);
}

TEST_CASE("objective aggregates take xtensor containers and xt::view gradients", "[objective][tensors]") {
    const std::size_t B = 2, L = 3, V = 7, N = B * L;
    const RowIds xe = random_ids(2, 3, 7, 6);
    const RowMat ze = random_logits(6, 7, 7), pe = random_logits(6, 7, 8);
    xt::xtensor<std::int64_t, 2> x({B, L});
    xt::xarray<float> z = xt::zeros<float>({N, V}); // dynamic rank, viewed as rank 2
    xt::xtensor<float, 2> p({N, V});
    for (std::size_t i = 0; i < N * V; ++i) {
        z.data()[i] = ze.data()[i];
        p.data()[i] = pe.data()[i];
    }
    for (std::size_t i = 0; i < B * L; ++i) x.data()[i] = xe.data()[i];
    // the gradient goes to columns 1 .. V of a wider buffer, through an xt::view
    xt::xtensor<float, 2> wide = xt::zeros<float>({N, V + 2});
    RowMat expected(6, 7);
    const sr::kl_dwn<> mixer{.coefficient = 1.5};

    const auto a = sr::evaluate_objective(mixer, 0,
        sr::objective_inputs<float>{.train_tokens = x, .student_train_logits = z, .reference_train_logits = p},
        {.train = xt::view(wide, xt::all(), xt::range(1, V + 1))});
    const auto b = sr::evaluate_objective(mixer, 0,
        sr::objective_inputs<float>{.train_tokens = xe, .student_train_logits = ze, .reference_train_logits = pe},
        {.train = expected});
    CHECK(a.total == b.total);
    for (std::size_t i = 0; i < N; ++i) {
        CHECK(wide(i, 0) == 0.0f);
        CHECK(wide(i, V + 1) == 0.0f);
        for (std::size_t v = 0; v < V; ++v)
            CHECK(wide(i, v + 1) == expected(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(v)));
    }

    xt::xarray<float> cube = xt::zeros<float>({B, L, V}); // rank 3: refused at the conversion
    CHECK_THROWS_AS(sr::objective_inputs<float>{.student_train_logits = cube}, sr::invalid_argument);
}

TEST_CASE("linear aggregates take tensors", "[objective][tensors]") {
    const RowMat h = random_logits(4, 3, 9), w = random_logits(5, 3, 10);
    const xt::xtensor<float, 1> bias = xt::ones<float>({5}); // Eigen views as rank 2; xtensor has rank 1
    const sr::linear_head<float> head{h, w, bias};
    CHECK(head.hidden.data() == h.data());
    CHECK(head.hidden.extent(0) == 4);
    CHECK(head.weight.extent(0) == 5);
    CHECK(head.bias.extent(0) == 5);
    const sr::linear_objective_inputs<float> in{.student_train_hidden = h, .student_weight = w, .student_bias = bias};
    CHECK(in.student_weight.data() == w.data());
    CHECK(in.student_bias.data() == bias.data());
}
