// Properties of the losses against independent truth: finite differences, KL >= 0,
// KL(p || p) = 0, invariance to a constant added to a row, reductions, threads, layouts
// (strided, Eigen), accumulate/scale, in-place gradients, the k1/k2/k3 estimators.
#include <catch2/catch.hpp>

#include <algorithm>
#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "selfreplay/adapters/eigen.hpp"
#include "selfreplay/losses.hpp"

namespace {

using selfreplay::index_t;
namespace sr = selfreplay;

// The row kernels on the active ISA path (SELFREPLAY_ISA: ctest runs this suite once per path).
template <class T, bool Grad, bool Acc, class... Args>
sr::detail::row_value kl_forward_kernel(Args... args) {
    return sr::detail::dispatch(sr::active_isa(), [&](auto tag) { return kl_forward_row<T, Grad, Acc>(tag, args...); });
}
template <class T, bool Grad, bool Acc, class... Args>
sr::detail::row_value cross_entropy_kernel(Args... args) {
    return sr::detail::dispatch(sr::active_isa(), [&](auto tag) { return cross_entropy_row<T, Grad, Acc>(tag, args...); });
}

template <class T>
std::vector<T> randn(std::size_t n, unsigned seed, double scale = 2.0) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> nd(0.0, scale);
    std::vector<T> v(n);
    for (auto& x : v) x = static_cast<T>(nd(rng));
    return v;
}

std::vector<std::int32_t> random_tokens(std::size_t n, index_t V, unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<std::int32_t> t(n);
    for (auto& x : t) x = static_cast<std::int32_t>(rng() % static_cast<unsigned>(V));
    return t;
}

// Every loss as f(student [B,T,V], grad out) -> value, for the generic property tests.
enum class which { ce, kl_forward, kl_reverse, jsd };

template <class T>
struct problem {
    index_t B = 2, L = 4, V = 9;
    std::vector<T> s, r;
    std::vector<std::int32_t> tok;
    explicit problem(unsigned seed, index_t b = 2, index_t l = 4, index_t v = 9) : B(b), L(l), V(v) {
        s = randn<T>(static_cast<std::size_t>(B * L * V), seed);
        r = randn<T>(s.size(), seed + 1000);
        tok = random_tokens(static_cast<std::size_t>(B * L), V, seed + 7);
    }
    double run(which w, const std::vector<T>& student, std::vector<T>* grad, int threads = 1,
               sr::strided_view<double, 2> per = {}, double temperature = 1.5) const {
        const auto sv = sr::make_view(student.data(), {B, L, V});
        const auto rv = sr::make_view(r.data(), {B, L, V});
        const auto tv = sr::make_view(tok.data(), {B, L});
        if (grad) {
            const auto gv = sr::make_view(grad->data(), {B, L, V});
            switch (w) {
            case which::ce: return sr::next_token_loss(sv, tv, gv, {.per_position = per, .threads = threads}).value;
            case which::kl_forward:
                return sr::kl_divergence(sv, rv, gv, {.temperature = temperature, .per_position = per, .threads = threads})
                    .value;
            case which::kl_reverse:
                return sr::kl_divergence(sv, rv, gv,
                                         {.direction = sr::kl_direction::reverse,
                                          .temperature = temperature,
                                          .per_position = per,
                                          .threads = threads})
                    .value;
            case which::jsd:
                return sr::generalized_jsd(sv, rv, gv,
                                           {.beta = 0.3, .temperature = temperature, .per_position = per, .threads = threads})
                    .value;
            }
        }
        switch (w) {
        case which::ce: return sr::next_token_loss(sv, tv, {.threads = threads}).value;
        case which::kl_forward: return sr::kl_divergence(sv, rv, {.temperature = temperature, .threads = threads}).value;
        case which::kl_reverse:
            return sr::kl_divergence(
                       sv, rv, {.direction = sr::kl_direction::reverse, .temperature = temperature, .threads = threads})
                .value;
        case which::jsd:
            return sr::generalized_jsd(sv, rv, {.beta = 0.3, .temperature = temperature, .threads = threads}).value;
        }
        return 0;
    }
};

const which all_losses[] = {which::ce, which::kl_forward, which::kl_reverse, which::jsd};

} // namespace

TEST_CASE("gradients match central finite differences (double)", "[losses][gradient]") {
    for (which w : all_losses) {
        problem<double> p(11, 2, 3, 7);
        std::vector<double> g(p.s.size());
        const double value = p.run(w, p.s, &g);
        CHECK(value == p.run(w, p.s, nullptr)); // the value does not depend on the gradient being asked
        const double h = 1e-5;
        double worst = 0, gmax = 0;
        for (std::size_t i = 0; i < p.s.size(); ++i) {
            auto plus = p.s, minus = p.s;
            plus[i] += h;
            minus[i] -= h;
            const double fd = (p.run(w, plus, nullptr) - p.run(w, minus, nullptr)) / (2 * h);
            worst = std::max(worst, std::abs(fd - g[i]));
            gmax = std::max(gmax, std::abs(g[i]));
        }
        INFO("loss " << static_cast<int>(w) << " worst |fd - grad| " << worst << " max |grad| " << gmax);
        CHECK(gmax > 1e-3);
        CHECK(worst < 1e-8);
    }
}

TEST_CASE("divergences are >= 0, vanish for identical inputs and ignore a constant added to a row", "[losses]") {
    for (which w : {which::kl_forward, which::kl_reverse, which::jsd}) {
        problem<double> p(21);
        CHECK(p.run(w, p.s, nullptr) > 0);
        problem<double> same(22);
        same.r = same.s;
        std::vector<double> g(same.s.size(), 1.0);
        CHECK(std::abs(same.run(w, same.s, &g)) < 1e-14);
        for (double x : g) CHECK(std::abs(x) < 1e-14);
        // shift invariance: constants added to rows of both inputs
        problem<double> shifted = p;
        for (index_t row = 0; row < p.B * p.L; ++row)
            for (index_t v = 0; v < p.V; ++v) {
                shifted.s[static_cast<std::size_t>(row * p.V + v)] += 37.0 * static_cast<double>(row + 1);
                shifted.r[static_cast<std::size_t>(row * p.V + v)] -= 101.0;
            }
        std::vector<double> g1(p.s.size()), g2(p.s.size());
        const double a = p.run(w, p.s, &g1), b = shifted.run(w, shifted.s, &g2);
        CHECK(std::abs(a - b) < 1e-12 * std::abs(a));
        for (std::size_t i = 0; i < g1.size(); ++i) CHECK(std::abs(g1[i] - g2[i]) < 1e-12);
    }
    // float: KL(p || p) = 0 to float accuracy, KL >= 0 for random inputs
    problem<float> pf(23, 4, 8, 300);
    pf.r = pf.s;
    CHECK(std::abs(pf.run(which::kl_forward, pf.s, nullptr)) < 1e-6);
    problem<float> qf(24, 4, 8, 300);
    std::vector<double> per(static_cast<std::size_t>(qf.B * qf.L));
    std::vector<float> g(qf.s.size());
    qf.run(which::kl_forward, qf.s, &g, 1, sr::make_view(per.data(), {qf.B, qf.L}));
    for (double x : per) CHECK(x >= 0);
}

TEST_CASE("cross-entropy ignores a constant added to a row", "[losses]") {
    problem<double> p(31);
    problem<double> q = p;
    for (std::size_t i = 0; i < q.s.size(); ++i) q.s[i] += 1000.0 * static_cast<double>(i / 9 + 1);
    std::vector<double> g1(p.s.size()), g2(p.s.size());
    const double a = p.run(which::ce, p.s, &g1), b = q.run(which::ce, q.s, &g2);
    CHECK(std::abs(a - b) < 1e-9 * a);
    for (std::size_t i = 0; i < g1.size(); ++i) CHECK(std::abs(g1[i] - g2[i]) < 1e-12);
}

TEST_CASE("results are bit-identical for any thread count", "[losses][threads]") {
    for (which w : all_losses) {
        problem<float> p(41, 3, 5, 1500);
        std::vector<float> g1(p.s.size());
        std::vector<double> per1(15);
        const double v1 = p.run(w, p.s, &g1, 1, sr::make_view(per1.data(), {3, 5}));
        for (int threads : {2, 3, 7, 64}) {
            std::vector<float> g(p.s.size());
            std::vector<double> per(15);
            CHECK(p.run(w, p.s, &g, threads, sr::make_view(per.data(), {3, 5})) == v1);
            CHECK(g == g1);
            CHECK(per == per1);
            CHECK(p.run(w, p.s, nullptr, threads) == v1);
        }
    }
}

TEST_CASE("reductions: sum, mean_all, mean_counted and none agree with each other", "[losses]") {
    problem<double> p(51, 3, 5, 6);
    std::vector<std::uint8_t> mask = {1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 1, 0, 1, 1, 1};
    const auto sv = sr::make_view(p.s.data(), {3, 5, 6});
    const auto rv = sr::make_view(p.r.data(), {3, 5, 6});
    const auto mv = sr::make_view(mask.data(), {3, 5});
    std::vector<double> gs(p.s.size()), ga(p.s.size()), gc(p.s.size()), gn(p.s.size()), per(15);
    auto kl = [&](sr::reduction how, std::vector<double>& g) {
        return sr::kl_divergence(sv, rv, sr::make_view(g.data(), {3, 5, 6}),
                                 {.reduction = how, .mask = mv, .per_position = sr::make_view(per.data(), {3, 5})});
    };
    const auto s = kl(sr::reduction::sum, gs), a = kl(sr::reduction::mean_all, ga), c = kl(sr::reduction::mean_counted, gc),
               n = kl(sr::reduction::none, gn);
    // counted: mask and not the last position of a sequence
    CHECK(s.counted == 6);
    CHECK(a.value == Approx(s.value / 15).epsilon(1e-14));
    CHECK(c.value == Approx(s.value / 6).epsilon(1e-14));
    CHECK(n.value == s.value);
    double total = 0;
    for (index_t b = 0; b < 3; ++b)
        for (index_t t = 0; t < 5; ++t) {
            const double x = per[static_cast<std::size_t>(b * 5 + t)];
            if (mask[static_cast<std::size_t>(b * 5 + t)] == 0 || t == 4) CHECK(x == 0);
            total += x;
        }
    CHECK(total == Approx(s.value).epsilon(1e-14));
    for (std::size_t i = 0; i < gs.size(); ++i) {
        CHECK(ga[i] == Approx(gs[i] / 15).margin(1e-16));
        CHECK(gc[i] == Approx(gs[i] / 6).margin(1e-16));
        CHECK(gn[i] == gs[i]);
    }
    // nothing counted: 0 and a zero gradient for mean_counted
    std::vector<std::uint8_t> none_counted(15, 0);
    std::vector<double> g(p.s.size(), 5.0);
    const auto z = sr::kl_divergence(sv, rv, sr::make_view(g.data(), {3, 5, 6}),
                                     {.reduction = sr::reduction::mean_counted, .mask = sr::make_view(none_counted.data(), {3, 5})});
    CHECK(z.value == 0);
    CHECK(z.counted == 0);
    for (double x : g) CHECK(x == 0);
}

TEST_CASE("scale and accumulate: NTP + c * KL into one gradient buffer", "[losses]") {
    problem<double> p(61);
    const auto sv = sr::make_view(p.s.data(), {p.B, p.L, p.V});
    const auto rv = sr::make_view(p.r.data(), {p.B, p.L, p.V});
    const auto tv = sr::make_view(p.tok.data(), {p.B, p.L});
    std::vector<double> g_ce(p.s.size()), g_kl(p.s.size()), g(p.s.size());
    const double ce = sr::next_token_loss(sv, tv, sr::make_view(g_ce.data(), {p.B, p.L, p.V})).value;
    const double kl = sr::kl_divergence(sv, rv, sr::make_view(g_kl.data(), {p.B, p.L, p.V})).value;
    const auto gv = sr::make_view(g.data(), {p.B, p.L, p.V});
    const double a = sr::next_token_loss(sv, tv, gv).value;
    const double b = sr::kl_divergence(sv, rv, gv, {.scale = 10.0, .accumulate = true}).value;
    CHECK(a == ce);
    CHECK(b == Approx(10 * kl).epsilon(1e-15));
    for (std::size_t i = 0; i < g.size(); ++i) CHECK(g[i] == Approx(g_ce[i] + 10 * g_kl[i]).margin(1e-15));
}

TEST_CASE("gradients may overwrite the logits in place", "[losses]") {
    for (which w : all_losses) {
        problem<float> p(71, 2, 3, 2500);
        std::vector<float> g(p.s.size());
        const double v = p.run(w, p.s, &g);
        std::vector<float> inplace = p.s;
        const auto sv = sr::make_view(inplace.data(), {p.B, p.L, p.V});
        const auto rv = sr::make_view(p.r.data(), {p.B, p.L, p.V});
        const auto tv = sr::make_view(p.tok.data(), {p.B, p.L});
        double v2 = 0;
        switch (w) {
        case which::ce: v2 = sr::next_token_loss(sv, tv, sv).value; break;
        case which::kl_forward: v2 = sr::kl_divergence(sv, rv, sv, {.temperature = 1.5}).value; break;
        case which::kl_reverse:
            v2 = sr::kl_divergence(sv, rv, sv, {.direction = sr::kl_direction::reverse, .temperature = 1.5}).value;
            break;
        case which::jsd: v2 = sr::generalized_jsd(sv, rv, sv, {.beta = 0.3, .temperature = 1.5}).value; break;
        }
        CHECK(v2 == v);
        CHECK(inplace == g);
    }
}

TEST_CASE("strided views, rank-2 logits and Eigen matrices give the contiguous results", "[losses][layout]") {
    const index_t B = 2, L = 3, V = 1100;
    problem<float> p(81, B, L, V);
    std::vector<float> g(p.s.size());
    std::vector<double> per(6);
    const double v = p.run(which::kl_forward, p.s, &g, 1, sr::make_view(per.data(), {B, L}), 1.0);
    // padded rows: [B, T, V] inside a [B, T, V + 5] buffer
    const index_t P = V + 5;
    std::vector<float> sp(static_cast<std::size_t>(B * L * P), std::nanf("")), rp(sp.size(), std::nanf("")),
        gp(sp.size(), -7.0f);
    for (index_t row = 0; row < B * L; ++row)
        for (index_t x = 0; x < V; ++x) {
            sp[static_cast<std::size_t>(row * P + x)] = p.s[static_cast<std::size_t>(row * V + x)];
            rp[static_cast<std::size_t>(row * P + x)] = p.r[static_cast<std::size_t>(row * V + x)];
        }
    const auto sv = sr::make_view(sp.data(), {B, L, V}, {L * P, P, 1});
    const auto rv = sr::make_view(rp.data(), {B, L, V}, {L * P, P, 1});
    CHECK(sr::kl_divergence(sv, rv, sr::make_view(gp.data(), {B, L, V}, {L * P, P, 1})).value == v);
    for (index_t row = 0; row < B * L; ++row)
        for (index_t x = 0; x < V; ++x)
            CHECK(gp[static_cast<std::size_t>(row * P + x)] == g[static_cast<std::size_t>(row * V + x)]);
    for (index_t row = 0; row < B * L; ++row) CHECK(gp[static_cast<std::size_t>(row * P + V)] == -7.0f);
    // Eigen: row-major [B*T, V] (rank 2, contiguous rows) and column-major (strided rows)
    using rowmajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const Eigen::Map<const rowmajor> s_rm(p.s.data(), B * L, V), r_rm(p.r.data(), B * L, V);
    rowmajor g_rm(B * L, V);
    CHECK(sr::kl_divergence(s_rm, r_rm, g_rm, {.sequence_length = L}).value == v);
    CHECK(std::equal(g.begin(), g.end(), g_rm.data()));
    const Eigen::MatrixXf s_cm = s_rm, r_cm = r_rm;
    Eigen::MatrixXf g_cm(B * L, V);
    std::vector<double> per_cm(6);
    CHECK(sr::kl_divergence(s_cm, r_cm, g_cm, {.per_position = sr::make_view(per_cm.data(), {B, L})}).value == v);
    CHECK(per_cm == per);
    CHECK((g_cm.cast<double>() - g_rm.cast<double>()).cwiseAbs().maxCoeff() == 0.0);
    // cross-entropy, rank 2 with [B, T] tokens
    std::vector<float> g3(p.s.size());
    const double ce = p.run(which::ce, p.s, &g3);
    rowmajor g_ce(B * L, V);
    CHECK(sr::next_token_loss(s_rm, sr::make_view(p.tok.data(), {B, L}), g_ce).value == ce);
    CHECK(std::equal(g3.begin(), g3.end(), g_ce.data()));
    const Eigen::Matrix<std::int32_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> tok_e =
        Eigen::Map<const Eigen::Matrix<std::int32_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(p.tok.data(), B, L);
    CHECK(sr::next_token_loss(s_cm, tok_e).value == ce);
}

TEST_CASE("exact -inf handling and infinite divergences", "[losses]") {
    const float ninf = -std::numeric_limits<float>::infinity();
    // the student forbids a token the reference allows: forward KL = +inf, reverse finite
    std::vector<float> s = {0.0f, ninf, 1.0f}, r = {0.5f, 0.2f, 0.1f};
    const auto sv = sr::make_view(s.data(), {1, 1, 3});
    const auto rv = sr::make_view(r.data(), {1, 1, 3});
    CHECK(std::isinf(sr::kl_divergence(sv, rv, {.shift = false}).value));
    const double rev = sr::kl_divergence(sv, rv, {.direction = sr::kl_direction::reverse, .shift = false}).value;
    CHECK(std::isfinite(rev));
    CHECK(rev > 0);
    // a target whose logit is -inf: infinite cross-entropy; V = 1: zero loss and zero gradient
    std::vector<std::int32_t> tok = {0, 1};
    std::vector<float> x = {0.3f, ninf, 2.0f, 0.0f, 0.0f, 0.0f};
    std::vector<float> gx(6);
    CHECK(std::isinf(sr::next_token_loss(sr::make_view(x.data(), {1, 2, 3}), sr::make_view(tok.data(), {1, 2}),
                                         sr::make_view(gx.data(), {1, 2, 3}))
                         .value));
    CHECK(gx[1] == -0.5f); // (softmax - onehot) / (B*T) at the -inf target: (0 - 1) / 2
    std::vector<double> one = {3.0, -2.0}, g1(2, 9.0);
    std::vector<std::int32_t> zero = {0, 0};
    CHECK(sr::next_token_loss(sr::make_view(one.data(), {1, 2, 1}), sr::make_view(zero.data(), {1, 2}),
                              sr::make_view(g1.data(), {1, 2, 1}))
              .value == 0);
    CHECK(g1[0] == 0);
    CHECK(g1[1] == 0);
}

TEST_CASE("k1, k2, k3 follow their closed forms, gradients and unbiasedness", "[losses][estimators]") {
    std::vector<double> lp = {-1.0, -0.2, -3.0, -0.7}, lr = {-1.5, -0.1, -2.0, -0.7};
    const auto pv = sr::make_view(lp.data(), {2, 2});
    const auto rv = sr::make_view(lr.data(), {2, 2});
    for (auto est : {sr::kl_estimator::k1, sr::kl_estimator::k2, sr::kl_estimator::k3}) {
        std::vector<double> per(4), g(4);
        const auto res = sr::kl_estimate(pv, rv, sr::make_view(g.data(), {2, 2}),
                                         {.estimator = est, .reduction = sr::reduction::sum,
                                          .per_position = sr::make_view(per.data(), {2, 2})});
        double total = 0;
        for (std::size_t i = 0; i < 4; ++i) {
            const double logr = lr[i] - lp[i];
            const double k = est == sr::kl_estimator::k1   ? -logr
                             : est == sr::kl_estimator::k2 ? logr * logr / 2
                                                           : std::exp(logr) - 1 - logr;
            CHECK(per[i] == Approx(k).margin(1e-15));
            total += k;
            // finite differences in the policy log-prob
            auto plus = lp, minus = lp;
            plus[i] += 1e-6;
            minus[i] -= 1e-6;
            const auto r4 = sr::make_view(static_cast<const double*>(lr.data()), {4});
            const sr::kl_estimate_options sum_of{.estimator = est, .reduction = sr::reduction::sum};
            const double fd = (sr::kl_estimate(sr::make_view(plus.data(), {4}), r4, sum_of).value -
                               sr::kl_estimate(sr::make_view(minus.data(), {4}), r4, sum_of).value) /
                              2e-6;
            CHECK(g[i] == Approx(fd).margin(1e-8));
            if (est != sr::kl_estimator::k1) CHECK(per[i] >= 0);
        }
        CHECK(res.value == Approx(total).epsilon(1e-14));
    }
    // Unbiasedness of k1 and k3: tokens sampled from theta (fixed seed); the means estimate
    // KL(theta || pi) within 5 standard errors (a false failure has probability < 1e-6).
    const std::vector<double> theta = {0.5, 0.3, 0.15, 0.05}, pi = {0.25, 0.25, 0.3, 0.2};
    double kl = 0;
    for (std::size_t i = 0; i < 4; ++i) kl += theta[i] * std::log(theta[i] / pi[i]);
    const std::size_t n = 20000;
    std::mt19937 rng(2024);
    std::discrete_distribution<int> draw(theta.begin(), theta.end());
    std::vector<double> pol(n), ref(n);
    for (std::size_t i = 0; i < n; ++i) {
        const int x = draw(rng);
        pol[i] = std::log(theta[static_cast<std::size_t>(x)]);
        ref[i] = std::log(pi[static_cast<std::size_t>(x)]);
    }
    for (auto est : {sr::kl_estimator::k1, sr::kl_estimator::k3}) {
        std::vector<double> per(n);
        const double mean = sr::kl_estimate(sr::make_view(pol.data(), {static_cast<index_t>(n)}),
                                             sr::make_view(ref.data(), {static_cast<index_t>(n)}),
                                             {.estimator = est, .per_position = sr::make_view(per.data(), {1, static_cast<index_t>(n)})})
                                .value;
        double var = 0;
        for (double x : per) var += (x - mean) * (x - mean);
        const double se = std::sqrt(var / static_cast<double>(n - 1) / static_cast<double>(n));
        CHECK(std::abs(mean - kl) < 5 * se);
    }
}

TEST_CASE("streamed (non-temporal) gradient writes equal cached ones at any alignment", "[losses][detail]") {
    // Gradients above 16 MiB are streamed; this exercises that path directly on small rows,
    // with the row start at every offset from a register boundary.
    namespace d = sr::detail;
    const index_t V = 2500, nb = d::block_count(V);
    const auto s = randn<float>(static_cast<std::size_t>(V), 91), r = randn<float>(static_cast<std::size_t>(V), 92);
    std::vector<float> wa(V), wb(V), wm(2 * nb), ref(V);
    std::vector<float> out(static_cast<std::size_t>(V + 16));
    const float gscale = 0.25f;
    const auto kl_ref = kl_forward_kernel<float, true, false>(s.data(), r.data(), V, 1.0f, ref.data(), gscale, wa.data(),
                                                              wb.data(), wm.data(), false);
    for (index_t offset = 0; offset < 9; ++offset) {
        float* g = out.data() + offset;
        const auto kl = kl_forward_kernel<float, true, false>(s.data(), r.data(), V, 1.0f, g, gscale, wa.data(), wb.data(),
                                                              wm.data(), true);
        CHECK(kl.value == kl_ref.value);
        CHECK(std::equal(ref.begin(), ref.end(), g));
    }
    const auto ce_ref = cross_entropy_kernel<float, true, false>(s.data(), V, 1234, ref.data(), gscale, wa.data(),
                                                                 wm.data(), false);
    for (index_t offset = 0; offset < 9; ++offset) {
        float* g = out.data() + offset;
        const auto ce = cross_entropy_kernel<float, true, false>(s.data(), V, 1234, g, gscale, wa.data(), wm.data(), true);
        CHECK(ce.value == ce_ref.value);
        CHECK(std::equal(ref.begin(), ref.end(), g));
    }
}

namespace {

// Forward KL(softmax(r / tau) || softmax(s / tau)) and its gradient (q - p) in long double, by the
// textbook two-pass formulas: the truth for the row kernel's online, optimistic-shift evaluation.
template <class T>
long double brute_kl_forward(const std::vector<T>& s, const std::vector<T>& r, double tau, std::vector<long double>& grad) {
    const auto n = s.size();
    auto log_softmax = [&](const std::vector<T>& x) {
        long double m = -std::numeric_limits<long double>::infinity();
        for (T v : x) m = std::max(m, static_cast<long double>(v) / tau);
        long double z = 0;
        for (T v : x) z += std::exp(static_cast<long double>(v) / tau - m);
        std::vector<long double> out(n);
        for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<long double>(x[i]) / tau - m - std::log(z);
        return out;
    };
    const auto lq = log_softmax(s), lp = log_softmax(r);
    long double kl = 0;
    grad.assign(n, 0);
    for (std::size_t i = 0; i < n; ++i) {
        const long double p = std::exp(lp[i]), q = std::exp(lq[i]);
        if (p > 0) kl += p * (lp[i] - lq[i]);
        grad[i] = q - p;
    }
    return kl;
}

template <class T>
void check_kl_row_against_brute_force(const std::vector<T>& s, const std::vector<T>& r, double tau) {
    namespace d = sr::detail;
    const auto n = static_cast<index_t>(s.size());
    std::vector<T> g(s.size()), wa(s.size()), wb(s.size()), wm(2 * static_cast<std::size_t>(d::block_count(n)));
    const auto got = kl_forward_kernel<T, true, false>(s.data(), r.data(), n, static_cast<T>(1.0 / tau), g.data(), T(1),
                                                       wa.data(), wb.data(), wm.data(), false);
    REQUIRE(got.status == d::row_status::ok);
    std::vector<long double> want_g;
    const long double want = brute_kl_forward(s, r, tau, want_g);
    const double rtol = std::is_same_v<T, double> ? 1e-9 : 1e-5;
    CHECK(std::abs(got.value - static_cast<double>(want)) <= rtol * std::max(1.0, std::abs(static_cast<double>(want))));
    long double gmax = 0, err = 0;
    for (std::size_t i = 0; i < g.size(); ++i) {
        gmax = std::max(gmax, std::abs(want_g[i]));
        err = std::max(err, std::abs(static_cast<long double>(g[i]) - want_g[i]));
    }
    CHECK(static_cast<double>(err) <= rtol * static_cast<double>(gmax));
}

} // namespace

TEMPLATE_TEST_CASE("forward KL rows over many blocks match a brute-force evaluation whatever block sets the maximum",
                   "[losses][detail]", float, double) {
    // Rows of 4.5 blocks (block_elems = 1024): the kernel shifts each block by the maxima known so
    // far and takes a block's own maxima only when its sum of exponentials shows it needs them.
    using T = TestType;
    const T ninf = -std::numeric_limits<T>::infinity();
    const std::size_t n = 4600;
    auto s = randn<T>(n, 501, 3.0), r = randn<T>(n, 502, 3.0);
    SECTION("no block far above the first") { check_kl_row_against_brute_force(s, r, 1.0); }
    SECTION("spikes in later blocks, far above the first block's maxima (the block is computed again)") {
        s[1500] = 200;
        r[1600] = 150;
        s[3000] = 260;
        r[4590] = 400; // in the partial last block
        check_kl_row_against_brute_force(s, r, 1.0);
        check_kl_row_against_brute_force(s, r, 0.7);
    }
    SECTION("a slow rise: every block a few units above the last, none far enough to be computed again") {
        for (std::size_t i = 0; i < n; ++i) {
            s[i] += static_cast<T>(15.0 * static_cast<double>(i) / n);
            r[i] += static_cast<T>(12.0 * static_cast<double>(i) / n);
        }
        check_kl_row_against_brute_force(s, r, 1.0);
    }
    SECTION("a masked first block (-inf in both rows): the shift is set by the first finite block") {
        for (std::size_t i = 0; i < 1024; ++i) s[i] = r[i] = ninf;
        s[2000] = -80; // far below the rest: a shift of 0 would not do either
        check_kl_row_against_brute_force(s, r, 1.0);
    }
    SECTION("the reference's first two blocks masked, the student's not") {
        for (std::size_t i = 0; i < 2048; ++i) r[i] = ninf;
        check_kl_row_against_brute_force(s, r, 1.0);
    }
    SECTION("logits of magnitude 1e4, the large ones only in the third block") {
        for (std::size_t i = 0; i < n; ++i) {
            const T big = i >= 2048 && i < 3072 ? T(1e4) : T(-1e4);
            s[i] += big;
            r[i] += big;
        }
        check_kl_row_against_brute_force(s, r, 1.0);
        check_kl_row_against_brute_force(s, r, 2.5);
    }
}

TEST_CASE("forward KL is +inf when the student masks, in a later block, a token the reference allows", "[losses]") {
    // (the reference's probability there is p > 0, the student's q = 0); the gradient q - p stays finite
    auto s = randn<float>(3000, 511, 3.0), r = randn<float>(3000, 512, 3.0);
    s[2500] = -std::numeric_limits<float>::infinity();
    std::vector<float> g(3000);
    const auto sv = sr::make_view(static_cast<const float*>(s.data()), {1, 1, 3000});
    const auto rv = sr::make_view(static_cast<const float*>(r.data()), {1, 1, 3000});
    const auto gv = sr::make_view(g.data(), {1, 1, 3000});
    const double kl = sr::kl_divergence(sv, rv, gv, {.shift = false}).value;
    CHECK(std::isinf(kl));
    CHECK(kl > 0);
    CHECK(std::all_of(g.begin(), g.end(), [](float x) { return std::isfinite(x); }));
    // also where the reference's probability is positive but below float's range (2^b underflows to 0)
    r[2500] = -1e4f;
    const double tiny = sr::kl_divergence(sv, rv, gv, {.shift = false}).value;
    CHECK(std::isinf(tiny));
    CHECK(tiny > 0);
    // and not where both rows have -inf
    r[2500] = -std::numeric_limits<float>::infinity();
    const double both = sr::kl_divergence(sv, rv, gv, {.shift = false}).value;
    CHECK(std::isfinite(both));
    CHECK(both >= 0);
}
