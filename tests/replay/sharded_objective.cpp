// Global normalisation: the objective evaluated on two uneven shards of the training and replay
// batches, with the global row counts, gives logit gradients that are the unsharded ones bit for
// bit (row by row) and values that sum to the unsharded ones; without them a shard's gradient is
// off by N_local / N. Bad global row counts are refused.

#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <vector>

#include "selfreplay/replay.hpp"

namespace sr = selfreplay;

namespace {

template <class T>
std::vector<T> random_logits(sr::index_t rows, sr::index_t V, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> z(0.0, 2.0);
    std::vector<T> x(static_cast<std::size_t>(rows * V));
    for (auto& v : x) v = static_cast<T>(z(rng));
    return x;
}

std::vector<std::int32_t> random_ids(sr::index_t rows, sr::index_t L, sr::index_t V, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<std::int32_t> id(0, static_cast<std::int32_t>(V - 1));
    std::vector<std::int32_t> t(static_cast<std::size_t>(rows * L));
    for (auto& v : t) v = id(rng);
    return t;
}

} // namespace

TEMPLATE_TEST_CASE("two shards with global row counts: gradients are the unsharded rows, values sum", "[objective]", float,
                   double) {
    using T = TestType;
    const sr::index_t B = 7, R = 5, L = 6, V = 11;
    const auto x = random_ids(B, L, V, 1), r = random_ids(R, L, V, 2);
    const auto sx = random_logits<T>(B * L, V, 3), sr_ = random_logits<T>(R * L, V, 4), px = random_logits<T>(B * L, V, 5),
               pr = random_logits<T>(R * L, V, 6);
    const auto mixer = sr::kl_pre<double>{.coefficient = 3.0} + sr::ntp_pre<double>{.coefficient = 0.5} +
                       sr::kl_dwn<double>{.coefficient = 2.0};
    // one call on the global batches, or on rows [b0, b1) of x and [r0, r1) of r
    auto run = [&](sr::index_t b0, sr::index_t b1, sr::index_t r0, sr::index_t r1, std::vector<T>& gx, std::vector<T>& gr,
                   sr::objective_options o) {
        gx.assign(static_cast<std::size_t>((b1 - b0) * L * V), T(0));
        gr.assign(static_cast<std::size_t>((r1 - r0) * L * V), T(0));
        const sr::objective_inputs<T> in{
            .train_tokens = sr::make_view(x.data() + b0 * L, {b1 - b0, L}),
            .student_train_logits = sr::make_view(sx.data() + b0 * L * V, {(b1 - b0) * L, V}),
            .replay_tokens = sr::make_view(r.data() + r0 * L, {r1 - r0, L}),
            .student_replay_logits = sr::make_view(sr_.data() + r0 * L * V, {(r1 - r0) * L, V}),
            .reference_replay_logits = sr::make_view(pr.data() + r0 * L * V, {(r1 - r0) * L, V}),
            .reference_train_logits = sr::make_view(px.data() + b0 * L * V, {(b1 - b0) * L, V})};
        const sr::objective_gradients<T> out{.train = sr::make_view(gx.data(), {(b1 - b0) * L, V}),
                                             .replay = sr::make_view(gr.data(), {(r1 - r0) * L, V})};
        return sr::evaluate_objective(mixer, 0, in, out, o);
    };
    std::vector<T> gx, gr, ax, ar, bx, br;
    const auto whole = run(0, B, 0, R, gx, gr, {});
    const sr::objective_options global{.global_train_rows = B, .global_replay_rows = R};
    const auto a = run(0, 4, 0, 2, ax, ar, global); // uneven shards: 4 + 3 training rows, 2 + 3 replay rows
    const auto b = run(4, B, 2, R, bx, br, global);
    ax.insert(ax.end(), bx.begin(), bx.end());
    ar.insert(ar.end(), br.begin(), br.end());
    CHECK(ax == gx);
    CHECK(ar == gr);
    CHECK(a.total + b.total == Approx(whole.total).epsilon(1e-12));
    CHECK(a.train_ntp + b.train_ntp == Approx(whole.train_ntp).epsilon(1e-12));
    for (std::size_t i = 0; i < whole.terms.size(); ++i)
        CHECK(a.terms[i].weighted + b.terms[i].weighted == Approx(whole.terms[i].weighted).epsilon(1e-12));
    // The whole batch with its own row counts as the global ones is the unsharded call.
    std::vector<T> wx, wr;
    const auto same = run(0, B, 0, R, wx, wr, global);
    CHECK(wx == gx);
    CHECK(same.total == Approx(whole.total).epsilon(1e-14));
    // Without the global counts a shard normalises by its own rows: its gradient is off by B / 4.
    std::vector<T> lx, lr;
    run(0, 4, 0, 2, lx, lr, {});
    CHECK(static_cast<double>(lx[5]) == Approx(static_cast<double>(gx[5]) * B / 4).epsilon(1e-5));
    CHECK(lx[5] != gx[5]);
}

TEST_CASE("global row counts below the local ones are refused") {
    const sr::index_t B = 3, L = 4, V = 5;
    const auto x = random_ids(B, L, V, 1);
    const auto s = random_logits<double>(B * L, V, 2);
    const sr::objective_inputs<double> in{.train_tokens = sr::make_view(x.data(), {B, L}),
                                          .student_train_logits = sr::make_view(s.data(), {B * L, V})};
    CHECK_THROWS_WITH(sr::evaluate_objective(sr::no_replay{}, 0, in, {}, {.global_train_rows = 2}),
                      Catch::Contains("evaluate_objective: argument 'options.global_train_rows' must be 0 (not sharded) or at "
                                      "least the 3 rows of the training batch, got 2"));
    CHECK_THROWS_WITH(sr::evaluate_objective(sr::no_replay{}, 0, in, {}, {.global_train_rows = -1}),
                      Catch::Contains("options.global_train_rows"));
}
