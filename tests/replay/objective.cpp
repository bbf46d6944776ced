// Mixers and the combined objective: each mixer's loss and logit gradients equal the hand
// computation with the loss functions (and a brute-force double-precision reference), replace
// overwrites exactly floor(f * B) rows, and bad input is refused.

#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <vector>

#include "selfreplay/replay.hpp"
#include "selfreplay/schedules.hpp"
#include "support.hpp"

namespace sr = selfreplay;
using replay_test::token_batch;

namespace {

template <class T>
struct logits {
    sr::index_t rows, V;
    std::vector<T> x;
    logits(sr::index_t r, sr::index_t v, unsigned seed, double spread = 3.0) : rows(r), V(v), x(static_cast<std::size_t>(r * v)) {
        std::mt19937 g(seed);
        std::normal_distribution<double> n(0.0, spread);
        for (auto& e : x) e = static_cast<T>(n(g));
    }
    sr::strided_view<T, 2> view() { return sr::make_view(x.data(), {rows, V}); }
    sr::strided_view<const T, 2> cview() const { return sr::make_view(x.data(), {rows, V}); }
};

token_batch random_tokens(sr::index_t B, sr::index_t L, sr::index_t V, unsigned seed) {
    token_batch t(B, L);
    std::mt19937 g(seed);
    for (auto& e : t.ids) e = static_cast<std::int32_t>(g() % static_cast<unsigned>(V));
    return t;
}

// Brute force in double: per-position log-softmax, NTP mean over B*L (last position 0), and
// forward KL(pi || theta) mean over B*L (last position 0), with their gradients.
struct brute {
    static std::vector<double> log_softmax(const double* x, sr::index_t V) {
        double m = x[0];
        for (sr::index_t v = 1; v < V; ++v) m = std::max(m, x[v]);
        double s = 0;
        for (sr::index_t v = 0; v < V; ++v) s += std::exp(x[v] - m);
        std::vector<double> out(static_cast<std::size_t>(V));
        for (sr::index_t v = 0; v < V; ++v) out[static_cast<std::size_t>(v)] = x[v] - m - std::log(s);
        return out;
    }
    template <class T>
    static double ntp(const logits<T>& z, const token_batch& tok, std::vector<double>& grad) {
        const sr::index_t B = tok.rows, L = tok.T, V = z.V;
        grad.assign(z.x.size(), 0.0);
        double total = 0;
        for (sr::index_t b = 0; b < B; ++b)
            for (sr::index_t t = 0; t + 1 < L; ++t) {
                const sr::index_t row = b * L + t;
                std::vector<double> x(z.x.begin() + row * V, z.x.begin() + (row + 1) * V);
                const auto ls = log_softmax(x.data(), V);
                const auto y = tok.ids[static_cast<std::size_t>(b * L + t + 1)];
                total -= ls[static_cast<std::size_t>(y)];
                for (sr::index_t v = 0; v < V; ++v)
                    grad[static_cast<std::size_t>(row * V + v)] = (std::exp(ls[static_cast<std::size_t>(v)]) - (v == y)) / static_cast<double>(B * L);
            }
        return total / static_cast<double>(B * L);
    }
    template <class T>
    static double kl(const logits<T>& student, const logits<T>& reference, sr::index_t L, std::vector<double>& grad) {
        const sr::index_t N = student.rows, V = student.V;
        grad.assign(student.x.size(), 0.0);
        double total = 0;
        for (sr::index_t row = 0; row < N; ++row) {
            if (row % L == L - 1) continue;
            std::vector<double> s(student.x.begin() + row * V, student.x.begin() + (row + 1) * V);
            std::vector<double> r(reference.x.begin() + row * V, reference.x.begin() + (row + 1) * V);
            const auto ls = log_softmax(s.data(), V), lr = log_softmax(r.data(), V);
            for (sr::index_t v = 0; v < V; ++v) {
                const auto i = static_cast<std::size_t>(v);
                total += std::exp(lr[i]) * (lr[i] - ls[i]);
                grad[static_cast<std::size_t>(row * V + v)] = (std::exp(ls[i]) - std::exp(lr[i])) / static_cast<double>(N);
            }
        }
        return total / static_cast<double>(N);
    }
};

template <class T>
constexpr double tol() {
    return std::is_same_v<T, float> ? 1e-5 : 1e-12;
}

template <class T>
void require_close(const std::vector<T>& got, const std::vector<double>& expected, double scale_ref) {
    REQUIRE(got.size() == expected.size());
    double worst = 0;
    for (std::size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(static_cast<double>(got[i]) - expected[i]));
    INFO("max abs gradient error " << worst << ", gradient scale " << scale_ref);
    CHECK(worst <= tol<T>() * scale_ref);
}

// The fixture of one step: B = 3 training rows, R = 4 replay rows, L = 5, V = 11.
template <class T>
struct step_data {
    static constexpr sr::index_t B = 3, R = 4, L = 5, V = 11;
    token_batch x = random_tokens(B, L, V, 1), r = random_tokens(R, L, V, 2);
    logits<T> theta_x{B * L, V, 3}, theta_r{R * L, V, 4}, pi_x{B * L, V, 5}, pi_r{R * L, V, 6};
    logits<T> dx{B * L, V, 7}, dr{R * L, V, 8}; // garbage: must be overwritten

    sr::objective_inputs<T> inputs() const {
        return {.train_tokens = x.view(),
                .student_train_logits = theta_x.cview(),
                .replay_tokens = r.view(),
                .student_replay_logits = theta_r.cview(),
                .reference_replay_logits = pi_r.cview(),
                .reference_train_logits = pi_x.cview()};
    }
    sr::objective_gradients<T> grads() { return {.train = dx.view(), .replay = dr.view()}; }
};

} // namespace

static_assert(sr::replay_mixer<sr::no_replay> && sr::replay_mixer<sr::replace<>> && sr::replay_mixer<sr::ntp_pre<>> &&
              sr::replay_mixer<sr::kl_pre<>> && sr::replay_mixer<sr::kl_dwn<>> && sr::replay_mixer<sr::mixer_sum<sr::ntp_pre<>, sr::kl_dwn<>>>);
static_assert(!sr::replay_mixer<int> && !sr::replay_mixer<sr::reservoir_buffer>);
// The forward passes each mixer asks for (the API contract the trainer follows).
static_assert(!sr::no_replay::needs_replay_batch && !sr::no_replay::needs_student_replay_logits);
static_assert(sr::replace<>::needs_replay_batch && !sr::replace<>::needs_student_replay_logits &&
              !sr::replace<>::needs_reference_replay_logits && !sr::replace<>::needs_reference_train_logits);
static_assert(sr::ntp_pre<>::needs_student_replay_logits && !sr::ntp_pre<>::needs_reference_replay_logits);
static_assert(sr::kl_pre<>::needs_student_replay_logits && sr::kl_pre<>::needs_reference_replay_logits &&
              !sr::kl_pre<>::needs_reference_train_logits);
static_assert(!sr::kl_dwn<>::needs_replay_batch && sr::kl_dwn<>::needs_reference_train_logits);

TEMPLATE_TEST_CASE("each mixer's loss and gradients equal the hand computation", "[objective]", float, double) {
    using T = TestType;
    step_data<T> d;
    const auto in = d.inputs();
    const sr::index_t L = d.L;
    // Hand computations with the loss functions, unscaled, and with brute force.
    std::vector<T> g_ntp_x(d.theta_x.x.size()), g_ntp_r(d.theta_r.x.size()), g_kl_r(d.theta_r.x.size()), g_kl_x(d.theta_x.x.size());
    const double ntp_x = sr::next_token_loss(d.theta_x.cview(), d.x.view(), sr::make_view(g_ntp_x.data(), {d.B * L, d.V})).value;
    const double ntp_r = sr::next_token_loss(d.theta_r.cview(), d.r.view(), sr::make_view(g_ntp_r.data(), {d.R * L, d.V})).value;
    const double kl_r = sr::kl_divergence(d.theta_r.cview(), d.pi_r.cview(), sr::make_view(g_kl_r.data(), {d.R * L, d.V}),
                                          {.sequence_length = L}).value;
    const double kl_x = sr::kl_divergence(d.theta_x.cview(), d.pi_x.cview(), sr::make_view(g_kl_x.data(), {d.B * L, d.V}),
                                          {.sequence_length = L}).value;
    std::vector<double> b_ntp_x, b_ntp_r, b_kl_r, b_kl_x;
    CHECK(ntp_x == Approx(brute::ntp(d.theta_x, d.x, b_ntp_x)).epsilon(tol<T>()));
    CHECK(ntp_r == Approx(brute::ntp(d.theta_r, d.r, b_ntp_r)).epsilon(tol<T>()));
    CHECK(kl_r == Approx(brute::kl(d.theta_r, d.pi_r, L, b_kl_r)).epsilon(tol<T>()));
    CHECK(kl_x == Approx(brute::kl(d.theta_x, d.pi_x, L, b_kl_x)).epsilon(tol<T>()));
    auto combine = [](const std::vector<double>& a, double ca, const std::vector<double>& b, double cb) {
        std::vector<double> out(a.size());
        for (std::size_t i = 0; i < a.size(); ++i) out[i] = ca * a[i] + (b.empty() ? 0.0 : cb * b[i]);
        return out;
    };
    const std::vector<double> none;

    SECTION("none") {
        const auto res = sr::evaluate_objective(sr::no_replay{}, 0, in, d.grads());
        CHECK(res.train_ntp == Approx(ntp_x).epsilon(tol<T>()));
        CHECK(res.total == res.train_ntp);
        require_close(d.dx.x, b_ntp_x, 1.0);
    }
    SECTION("ntp_pre: total = NTP(x) + c NTP(r)") {
        const auto res = sr::evaluate_objective(sr::ntp_pre<>{.coefficient = 10.0}, 0, in, d.grads());
        REQUIRE(res.terms.size() == 1);
        CHECK(res.terms[0].name == "ntp_pre");
        CHECK(res.terms[0].coefficient == 10.0);
        CHECK(res.terms[0].value == Approx(ntp_r).epsilon(tol<T>()));
        CHECK(res.total == Approx(ntp_x + 10.0 * ntp_r).epsilon(tol<T>()));
        require_close(d.dx.x, b_ntp_x, 1.0);
        require_close(d.dr.x, combine(b_ntp_r, 10.0, none, 0), 10.0);
    }
    SECTION("kl_pre: total = NTP(x) + c KL(pi || theta) on r") {
        const auto res = sr::evaluate_objective(sr::kl_pre<>{.coefficient = 10.0}, 0, in, d.grads());
        CHECK(res.terms[0].name == "kl_pre");
        CHECK(res.terms[0].value == Approx(kl_r).epsilon(tol<T>()));
        CHECK(res.total == Approx(ntp_x + 10.0 * kl_r).epsilon(tol<T>()));
        require_close(d.dx.x, b_ntp_x, 1.0);
        require_close(d.dr.x, combine(b_kl_r, 10.0, none, 0), 10.0);
    }
    SECTION("kl_dwn: total = NTP(x) + c KL(pi || theta) on x, one gradient") {
        const auto res = sr::evaluate_objective(sr::kl_dwn<>{.coefficient = 2.5}, 0, in, d.grads());
        CHECK(res.terms[0].name == "kl_dwn");
        CHECK(res.terms[0].value == Approx(kl_x).epsilon(tol<T>()));
        CHECK(res.total == Approx(ntp_x + 2.5 * kl_x).epsilon(tol<T>()));
        require_close(d.dx.x, combine(b_ntp_x, 1.0, b_kl_x, 2.5), 2.5);
    }
    SECTION("sum: ntp_pre + kl_pre + kl_dwn adds every term and gradient") {
        const auto m = sr::ntp_pre<>{.coefficient = 1.5} + sr::kl_pre<>{.coefficient = 3.0} + sr::kl_dwn<>{.coefficient = 0.5};
        static_assert(std::tuple_size_v<decltype(m.parts)> == 3 && decltype(m)::terms == 3);
        static_assert(decltype(m)::needs_reference_train_logits && decltype(m)::needs_reference_replay_logits);
        const auto res = sr::evaluate_objective(m, 0, in, d.grads());
        CHECK(res.terms[0].name == "ntp_pre");
        CHECK(res.terms[1].name == "kl_pre");
        CHECK(res.terms[2].name == "kl_dwn");
        CHECK(res.total == Approx(ntp_x + 1.5 * ntp_r + 3.0 * kl_r + 0.5 * kl_x).epsilon(tol<T>()));
        require_close(d.dx.x, combine(b_ntp_x, 1.0, b_kl_x, 0.5), 1.0);
        require_close(d.dr.x, combine(b_ntp_r, 1.5, b_kl_r, 3.0), 3.0);
    }
    SECTION("a coefficient of 0 reports the term's value and a zero replay gradient") {
        const auto res = sr::evaluate_objective(sr::kl_pre<>{.coefficient = 0.0}, 0, in, d.grads());
        CHECK(res.terms[0].value == Approx(kl_r).epsilon(tol<T>()));
        CHECK(res.terms[0].weighted == 0.0);
        CHECK(res.total == res.train_ntp);
        for (T g : d.dr.x) REQUIRE(g == T(0));
    }
    SECTION("value only: no gradients given") {
        const auto res = sr::evaluate_objective(sr::kl_pre<>{.coefficient = 10.0}, 0, in);
        CHECK(res.total == Approx(ntp_x + 10.0 * kl_r).epsilon(tol<T>()));
    }
}

TEST_CASE("coefficients and fractions follow schedules") {
    step_data<double> d;
    const auto in = d.inputs();
    const sr::kl_pre<sr::linear> m{.coefficient = sr::linear{.init = 0.0, .end = 10.0, .transition_steps = 10}};
    CHECK(sr::evaluate_objective(m, 0, in).terms[0].coefficient == 0.0);
    CHECK(sr::evaluate_objective(m, 5, in).terms[0].coefficient == Approx(5.0));
    CHECK(sr::evaluate_objective(m, 50, in).terms[0].coefficient == Approx(10.0));
    const sr::replace<sr::linear> f{.fraction = sr::linear{.init = 0.0, .end = 0.5, .transition_steps = 4}};
    CHECK(f.replace_rows(0, 8) == 0);
    CHECK(f.replace_rows(2, 8) == 2);
    CHECK(f.replace_rows(4, 8) == 4);
}

TEST_CASE("replace overwrites exactly the first floor(f * B) training rows") {
    for (sr::index_t B : {1, 2, 7, 16, 64}) {
        for (double f : {0.0, 1.0 / 256, 0.1, 1.0 / 7, 0.25, 0.5, 0.999, 1.0}) {
            token_batch x = replay_test::numbered_rows(0, B, 3), r = replay_test::numbered_rows(1000, B, 3);
            const auto n = sr::mix_batch(sr::replace<>{.fraction = f}, 0, x.view(), r.view());
            const auto expected = static_cast<sr::index_t>(std::floor(f * static_cast<double>(B)));
            INFO("B = " << B << ", f = " << f);
            REQUIRE(n == expected);
            for (sr::index_t b = 0; b < B; ++b)
                for (sr::index_t t = 0; t < 3; ++t) REQUIRE(x(b, t) == (b < n ? 1000 + b : b));
        }
    }
    // other mixers replace nothing and need no replay batch at all
    token_batch x = replay_test::numbered_rows(0, 4, 3);
    CHECK(sr::mix_batch(sr::kl_pre{}, 0, x.view(), token_batch(0, 3).view()) == 0);
    // replace in a sum
    token_batch r = replay_test::numbered_rows(1000, 4, 3);
    CHECK(sr::mix_batch(sr::replace<>{.fraction = 0.5} + sr::ntp_pre{}, 0, x.view(), r.view()) == 2);
}

TEST_CASE("objective and mixers refuse bad input with clear errors") {
    step_data<double> d;
    auto in = d.inputs();
    token_batch x = replay_test::numbered_rows(0, 4, 3), r = replay_test::numbered_rows(10, 4, 3);
    SECTION("fraction outside [0, 1]") {
        CHECK_THROWS_WITH(sr::mix_batch(sr::replace<>{.fraction = 1.5}, 3, x.view(), r.view()),
                          Catch::Contains("replace") && Catch::Contains("'fraction'") && Catch::Contains("[0, 1]") &&
                              Catch::Contains("step 3"));
        CHECK_THROWS_WITH(sr::mix_batch(sr::replace<>{.fraction = -0.1}, 0, x.view(), r.view()), Catch::Contains("'fraction'"));
        CHECK_THROWS_WITH(sr::mix_batch(sr::replace<>{.fraction = NAN}, 0, x.view(), r.view()), Catch::Contains("'fraction'"));
    }
    SECTION("negative or non-finite coefficient") {
        CHECK_THROWS_WITH(sr::evaluate_objective(sr::ntp_pre<>{.coefficient = -1.0}, 0, in),
                          Catch::Contains("ntp_pre") && Catch::Contains("'coefficient'") && Catch::Contains(">= 0"));
        CHECK_THROWS_WITH(sr::evaluate_objective(sr::kl_pre<>{.coefficient = -0.5}, 0, in), Catch::Contains("kl_pre"));
        CHECK_THROWS_WITH(sr::evaluate_objective(sr::kl_dwn<>{.coefficient = INFINITY}, 0, in), Catch::Contains("kl_dwn"));
        CHECK_THROWS_WITH(sr::evaluate_objective(sr::kl_pre<sr::linear>{.coefficient = sr::linear{.init = 1, .end = -1, .transition_steps = 2}}, 2, in),
                          Catch::Contains("got -1"));
    }
    SECTION("replay batch with another sequence length or vocabulary") {
        token_batch short_r = random_tokens(4, 4, d.V, 9);
        in.replay_tokens = short_r.view();
        CHECK_THROWS_WITH(sr::evaluate_objective(sr::ntp_pre{}, 0, in),
                          Catch::Contains("inputs.replay_tokens") && Catch::Contains("sequence length 4") && Catch::Contains("5"));
        CHECK_THROWS_WITH(sr::mix_batch(sr::replace<>{.fraction = 0.5}, 0, x.view(), token_batch(4, 2).view()),
                          Catch::Contains("replay_tokens") && Catch::Contains("seq_len = 3, got 2"));
        in = d.inputs();
        logits<double> wide(d.R * d.L, d.V + 1, 11);
        in.student_replay_logits = wide.cview();
        CHECK_THROWS_WITH(sr::evaluate_objective(sr::ntp_pre{}, 0, in),
                          Catch::Contains("inputs.student_replay_logits") && Catch::Contains("vocabulary size 12") &&
                              Catch::Contains("11"));
        in = d.inputs();
        in.reference_replay_logits = wide.cview();
        CHECK_THROWS_WITH(sr::evaluate_objective(sr::kl_pre{}, 0, in), Catch::Contains("inputs.reference_replay_logits"));
        in = d.inputs();
        logits<double> fewer(d.R * d.L - 1, d.V, 12);
        in.student_replay_logits = fewer.cview();
        CHECK_THROWS_WITH(sr::evaluate_objective(sr::ntp_pre{}, 0, in), Catch::Contains("[R*L, V]"));
    }
    SECTION("missing forward passes") {
        in.reference_replay_logits = {};
        CHECK_THROWS_WITH(sr::evaluate_objective(sr::kl_pre{}, 0, in),
                          Catch::Contains("inputs.reference_replay_logits") && Catch::Contains("needs_reference_replay_logits"));
        CHECK_NOTHROW(sr::evaluate_objective(sr::ntp_pre{}, 0, in)); // ntp_pre does not need them
        in.reference_train_logits = {};
        CHECK_THROWS_WITH(sr::evaluate_objective(sr::kl_dwn{}, 0, in), Catch::Contains("needs_reference_train_logits"));
        in.student_replay_logits = {};
        CHECK_THROWS_WITH(sr::evaluate_objective(sr::ntp_pre{}, 0, in), Catch::Contains("needs_student_replay_logits"));
        in.replay_tokens = {};
        CHECK_THROWS_WITH(sr::evaluate_objective(sr::ntp_pre{}, 0, in), Catch::Contains("inputs.replay_tokens"));
        CHECK_NOTHROW(sr::evaluate_objective(sr::no_replay{}, 0, in));
        auto g = d.grads();
        g.replay = {};
        CHECK_THROWS_WITH(sr::evaluate_objective(sr::ntp_pre{}, 0, d.inputs(), g), Catch::Contains("gradients.replay"));
    }
    SECTION("replace needs enough replay rows") {
        CHECK_THROWS_WITH(sr::mix_batch(sr::replace<>{.fraction = 1.0}, 0, x.view(), token_batch(3, 3).view()),
                          Catch::Contains("fewer than the 4 rows"));
    }
    SECTION("token ids outside the vocabulary") {
        token_batch bad = d.r;
        bad(1, 2) = static_cast<std::int32_t>(d.V);
        in.replay_tokens = bad.view();
        CHECK_THROWS_AS(sr::evaluate_objective(sr::ntp_pre{}, 0, in), sr::invalid_argument);
    }
}
