// The linear form of evaluate_objective (hidden states and output projections instead of logits):
// for every mixer, its loss, terms and gradients with respect to theta's hidden states, W and bias
// equal the logits form followed by the output layer's backward pass; and its bad input is refused.

#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

#include "../losses/linear_support.hpp"
#include "selfreplay/replay.hpp"

namespace sr = selfreplay;
using linear_test::backprop;
using linear_test::head_data;
using linear_test::loop_matmul;
using linear_test::random_head;
using linear_test::relative_error;
using sr::index_t;

namespace {

constexpr index_t B = 3, R = 2, L = 4, D = 5, Dp = 6, V = 19;

template <class T>
struct step_data {
    head_data<T> tx = random_head<T>(B * L, D, V, true, 1, 3.0); // theta on x
    head_data<T> tr = random_head<T>(R * L, D, V, true, 2, 3.0); // theta on r (W, b replaced by tx's)
    head_data<T> px = random_head<T>(B * L, Dp, V, true, 3, 3.0); // pi on x
    head_data<T> pr = random_head<T>(R * L, Dp, V, true, 4, 3.0); // pi on r (W, b replaced by px's)
    std::vector<std::int32_t> x = tokens(B, 5), r = tokens(R, 6);
    step_data() {
        tr.w = tx.w;
        tr.b = tx.b;
        pr.w = px.w;
        pr.b = px.b;
    }
    static std::vector<std::int32_t> tokens(index_t rows, unsigned seed) {
        std::mt19937 g(seed);
        std::vector<std::int32_t> t(static_cast<std::size_t>(rows * L));
        for (auto& e : t) e = static_cast<std::int32_t>(g() % static_cast<unsigned>(V));
        return t;
    }
    sr::linear_objective_inputs<T> linear() const {
        return {.train_tokens = sr::make_view(x.data(), {B, L}),
                .student_train_hidden = tx.head().hidden,
                .replay_tokens = sr::make_view(r.data(), {R, L}),
                .student_replay_hidden = tr.head().hidden,
                .reference_replay_hidden = pr.head().hidden,
                .reference_train_hidden = px.head().hidden,
                .student_weight = tx.head().weight,
                .student_bias = tx.head().bias,
                .reference_weight = px.head().weight,
                .reference_bias = px.head().bias};
    }
};

template <class T, class M>
void check_mixer(const M& mixer) {
    const step_data<T> s;
    // logits form, then the output layer's backward pass by hand
    auto zx = s.tx.logits(), zr = s.tr.logits();
    const auto lx = s.px.logits(), lr = s.pr.logits();
    std::vector<T> gx(zx.size()), gr(zr.size());
    const sr::objective_inputs<T> in{.train_tokens = sr::make_view(s.x.data(), {B, L}),
                                     .student_train_logits = sr::make_view(static_cast<const T*>(zx.data()), {B * L, V}),
                                     .replay_tokens = sr::make_view(s.r.data(), {R, L}),
                                     .student_replay_logits = sr::make_view(static_cast<const T*>(zr.data()), {R * L, V}),
                                     .reference_replay_logits = sr::make_view(lr.data(), {R * L, V}),
                                     .reference_train_logits = sr::make_view(lx.data(), {B * L, V})};
    const auto want = sr::evaluate_objective(mixer, 7, in, {.train = sr::make_view(gx.data(), {B * L, V}),
                                                            .replay = sr::make_view(gr.data(), {R * L, V})});
    const auto bx = backprop(s.tx, gx), br = backprop(s.tr, gr);
    // linear form
    std::vector<T> dhx(static_cast<std::size_t>(B * L * D), T(9)), dhr(static_cast<std::size_t>(R * L * D), T(9)),
        dw(static_cast<std::size_t>(V * D), T(9)), db(static_cast<std::size_t>(V), T(9));
    const sr::linear_objective_gradients<T> g{sr::make_view(dhx.data(), {B * L, D}), sr::make_view(dhr.data(), {R * L, D}),
                                              sr::make_view(dw.data(), {V, D}), sr::make_view(db.data(), {V})};
    const auto got = sr::evaluate_objective(mixer, 7, loop_matmul{}, s.linear(), g, {}, {.chunk_rows = 3});
    const double tol = std::is_same_v<T, double> ? 1e-12 : 2e-5;
    CHECK(got.total == Approx(want.total).epsilon(tol));
    CHECK(got.train_ntp == Approx(want.train_ntp).epsilon(tol));
    for (std::size_t i = 0; i < got.terms.size(); ++i) {
        CHECK(got.terms[i].name == want.terms[i].name);
        CHECK(got.terms[i].weighted == Approx(want.terms[i].weighted).epsilon(tol).margin(1e-12));
    }
    CHECK(relative_error(dhx, bx.dh) < tol);
    if (M::needs_student_replay_logits) CHECK(relative_error(dhr, br.dh) < tol);
    std::vector<T> dw_want(dw.size()), db_want(db.size());
    for (std::size_t i = 0; i < dw.size(); ++i) dw_want[i] = bx.dw[i] + br.dw[i];
    for (std::size_t i = 0; i < db.size(); ++i) db_want[i] = bx.db[i] + br.db[i];
    CHECK(relative_error(dw, dw_want) < tol);
    CHECK(relative_error(db, db_want) < tol);
    // value only
    const auto value = sr::evaluate_objective(mixer, 7, loop_matmul{}, s.linear());
    CHECK(value.total == got.total);
}

// A mixer that adds a hand-written term through the logit gradient: not possible in the linear form.
struct logit_gradient_mixer {
    static constexpr bool needs_replay_batch = false;
    static constexpr bool needs_student_replay_logits = false;
    static constexpr bool needs_reference_replay_logits = false;
    static constexpr bool needs_reference_train_logits = false;
    static constexpr std::size_t terms = 1;
    index_t replace_rows(std::int64_t, index_t) const noexcept { return 0; }
    template <class T>
    void add_terms(sr::objective_context<T>& ctx) const {
        auto g = ctx.train_gradient();
        g(0, 0) += T(1);
        ctx.add_term("mine", 1.0, 0.0);
    }
};

} // namespace

TEMPLATE_TEST_CASE("the linear form of evaluate_objective equals the logits form and the output layer's backward pass",
                   "[objective][linear]", float, double) {
    using T = TestType;
    check_mixer<T>(sr::no_replay{});
    check_mixer<T>(sr::ntp_pre<double>{.coefficient = 10.0});
    check_mixer<T>(sr::kl_pre<double>{.coefficient = 10.0});
    check_mixer<T>(sr::kl_pre<double>{.coefficient = 2.0, .direction = sr::kl_direction::reverse});
    check_mixer<T>(sr::kl_pre<double>{.coefficient = 0.0}); // a zero coefficient: value only, replay gradient 0
    check_mixer<T>(sr::kl_dwn<double>{.coefficient = 3.0});
    check_mixer<T>(sr::ntp_pre<double>{.coefficient = 2.0} + sr::kl_pre<double>{.coefficient = 5.0} + sr::kl_dwn<double>{.coefficient = 1.0});
}

TEST_CASE("the linear form of evaluate_objective refuses bad input naming it", "[objective][linear][errors]") {
    using T = double;
    const step_data<T> s;
    const loop_matmul mm;
    using Catch::Matchers::Contains;
    auto in = s.linear();
    in.reference_weight = {};
    CHECK_THROWS_WITH(sr::evaluate_objective(sr::kl_pre<double>{.coefficient = 1.0}, 0, mm, in),
                      Contains("'inputs.reference_weight'"));
    in = s.linear();
    in.reference_replay_hidden = {};
    CHECK_THROWS_WITH(sr::evaluate_objective(sr::kl_pre<double>{.coefficient = 1.0}, 0, mm, in),
                      Contains("'inputs.reference_replay_hidden'") && Contains("needs_reference_replay_logits"));
    in = s.linear();
    in.student_replay_hidden = sr::make_view(s.tr.h.data(), {R * L - 1, D});
    CHECK_THROWS_WITH(sr::evaluate_objective(sr::ntp_pre<double>{.coefficient = 1.0}, 0, mm, in),
                      Contains("'inputs.student_replay_hidden'") && Contains("[8, 5]"));
    in = s.linear();
    in.student_train_hidden = sr::make_view(s.tx.h.data(), {B * L, D - 1});
    CHECK_THROWS_WITH(sr::evaluate_objective(sr::no_replay{}, 0, mm, in), Contains("'inputs.student_weight'") && Contains("width"));
    in = s.linear();
    in.reference_train_hidden = {};
    CHECK_THROWS_WITH(sr::evaluate_objective(sr::kl_dwn<double>{.coefficient = 1.0}, 0, mm, in),
                      Contains("'inputs.reference_train_hidden'"));
    std::vector<T> dh(static_cast<std::size_t>(B * L * D));
    const sr::linear_objective_gradients<T> only_train{.train_hidden = sr::make_view(dh.data(), {B * L, D})};
    CHECK_THROWS_WITH(sr::evaluate_objective(sr::kl_pre<double>{.coefficient = 1.0}, 0, mm, s.linear(), only_train),
                      Contains("'gradients.replay_hidden'"));
    CHECK_THROWS_WITH(sr::evaluate_objective(logit_gradient_mixer{}, 0, mm, s.linear(), only_train),
                      Contains("'mixer'") && Contains("linear form"));
    auto w = s.tx.w;
    w[3] = std::numeric_limits<T>::quiet_NaN();
    in = s.linear();
    in.student_weight = sr::make_view(static_cast<const T*>(w.data()), {V, D});
    CHECK_THROWS_WITH(sr::evaluate_objective(sr::no_replay{}, 0, mm, in), Contains("'head.weight'") && Contains("finite"));
}
