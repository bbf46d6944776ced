// A KL loss and its gradient on xtensor data (docs/losses.md): KL(pi || theta) on [B, T, V]
// xt::xtensor logits with the gradient written through an xt::view into a wider buffer, the
// generalized JSD on 2-D xt::xarray logits, and Schulman's k3 estimate on 2-D xt::xarray
// log-probabilities with an xt::view gradient. Each value is checked against a direct
// double-precision evaluation of its formula, and each gradient against central finite
// differences of the value. Exit code 0 when everything matches.

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <xtensor/xarray.hpp>
#include <xtensor/xrandom.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>

#include <selfreplay/adapters/xtensor.hpp>
#include <selfreplay/losses.hpp>

namespace sr = selfreplay;

namespace {
int failures = 0;

void expect_near(const char* what, double got, double want, double tolerance) {
    const bool ok = std::abs(got - want) <= tolerance * (1 + std::abs(want));
    std::printf("%-50s %12.8f  expected %12.8f  %s\n", what, got, want, ok ? "ok" : "MISMATCH");
    failures += ok ? 0 : 1;
}

// log softmax of row `row` of a [N, V] array, in double
template <class A>
std::vector<double> log_softmax(const A& z, std::size_t row) {
    const std::size_t V = z.shape()[1];
    double m = -INFINITY, s = 0;
    for (std::size_t v = 0; v < V; ++v) m = std::max(m, double(z(row, v)));
    for (std::size_t v = 0; v < V; ++v) s += std::exp(double(z(row, v)) - m);
    std::vector<double> out(V);
    for (std::size_t v = 0; v < V; ++v) out[v] = double(z(row, v)) - m - std::log(s);
    return out;
}
} // namespace

int main() {
    const std::size_t B = 2, T = 5, V = 7, N = B * T;
    xt::random::seed(7);

    // ---- KL(pi || theta) on [B, T, V] logits; the gradient goes into columns 1 .. V of a
    // [B, T, V + 2] buffer through an xt::view (no copy) -----------------------------------
    xt::xtensor<double, 3> student = xt::random::randn<double>({B, T, V});
    const xt::xtensor<double, 3> reference = xt::random::randn<double>({B, T, V});
    xt::xtensor<double, 3> wide = xt::zeros<double>({B, T, V + 2});
    const sr::kl_options options{.sequence_length = static_cast<sr::index_t>(T)};
    const double kl = sr::kl_divergence(student, reference, xt::view(wide, xt::all(), xt::all(), xt::range(1, V + 1)),
                                        options).value;
    // the reference semantics: mean over the B*T positions, the last position of each sequence not counted
    double want = 0;
    const auto s2 = xt::reshape_view(student, {N, V});
    const auto r2 = xt::reshape_view(reference, {N, V});
    for (std::size_t p = 0; p < N; ++p) {
        if (p % T == T - 1) continue;
        const auto ls = log_softmax(s2, p), lr = log_softmax(r2, p);
        for (std::size_t v = 0; v < V; ++v) want += std::exp(lr[v]) * (lr[v] - ls[v]);
    }
    expect_near("kl_divergence value", kl, want / double(N), 1e-12);
    const double h = 1e-6;
    for (std::size_t v : {0u, 3u, 6u}) {
        const double keep = student(1, 2, v);
        student(1, 2, v) = keep + h;
        const double up = sr::kl_divergence(student, reference, options).value;
        student(1, 2, v) = keep - h;
        const double down = sr::kl_divergence(student, reference, options).value;
        student(1, 2, v) = keep;
        expect_near("kl_divergence gradient (xt::view) vs differences", wide(1, 2, v + 1), (up - down) / (2 * h), 1e-6);
    }
    expect_near("columns outside the view untouched", std::abs(wide(0, 0, 0)) + std::abs(wide(1, 4, V + 1)), 0, 0);

    // ---- generalized JSD (beta = 0.5) on 2-D xt::xarray logits [N, V] ----------------------
    xt::xarray<double> zs = xt::random::randn<double>({N, V});
    const xt::xarray<double> zr = xt::random::randn<double>({N, V});
    xt::xarray<double> djsd = xt::zeros<double>({N, V});
    const sr::jsd_options jsd{.beta = 0.5, .sequence_length = static_cast<sr::index_t>(T)};
    const double value = sr::generalized_jsd(zs, zr, djsd, jsd).value;
    double jsd_want = 0;
    for (std::size_t p = 0; p < N; ++p) {
        if (p % T == T - 1) continue;
        const auto ls = log_softmax(zs, p), lr = log_softmax(zr, p);
        for (std::size_t v = 0; v < V; ++v) {
            const double ps = std::exp(ls[v]), pr = std::exp(lr[v]), m = 0.5 * (ps + pr);
            jsd_want += 0.5 * pr * (lr[v] - std::log(m)) + 0.5 * ps * (ls[v] - std::log(m));
        }
    }
    expect_near("generalized_jsd value (xarray)", value, jsd_want / double(N), 1e-12);
    {
        const double keep = zs(3, 4);
        zs(3, 4) = keep + h;
        const double up = sr::generalized_jsd(zs, zr, jsd).value;
        zs(3, 4) = keep - h;
        const double down = sr::generalized_jsd(zs, zr, jsd).value;
        zs(3, 4) = keep;
        expect_near("generalized_jsd gradient vs differences", djsd(3, 4), (up - down) / (2 * h), 1e-6);
    }

    // ---- k3 estimate of KL(theta || pi) on 2-D xt::xarray log-probabilities [B, T] ----------
    xt::xarray<double> logp = -xt::abs(xt::random::randn<double>({B, T})) - 0.1;
    const xt::xarray<double> logq = -xt::abs(xt::random::randn<double>({B, T})) - 0.1;
    xt::xtensor<double, 2> dlogp_wide = xt::zeros<double>({B, 2 * T});
    const double k3 = sr::kl_estimate(logp, logq, xt::view(dlogp_wide, xt::all(), xt::range(0, 2 * T, 2))).value;
    double k3_want = 0;
    for (std::size_t i = 0; i < B * T; ++i) {
        const double logr = logq.data()[i] - logp.data()[i];
        k3_want += std::exp(logr) - 1 - logr;
    }
    expect_near("kl_estimate k3 value (xarray)", k3, k3_want / double(B * T), 1e-12);
    {
        const double keep = logp(1, 3);
        logp(1, 3) = keep + h;
        const double up = sr::kl_estimate(logp, logq).value;
        logp(1, 3) = keep - h;
        const double down = sr::kl_estimate(logp, logq).value;
        logp(1, 3) = keep;
        expect_near("kl_estimate gradient (strided xt::view)", dlogp_wide(1, 6), (up - down) / (2 * h), 1e-6);
    }

    std::printf("%s\n", failures == 0 ? "all checks passed" : "SOME CHECKS FAILED");
    return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
