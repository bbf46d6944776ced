// The ISA paths of the loss kernels: every loss on every path this CPU supports against the
// baseline path (sse2), within the documented rounding bounds (docs/performance.md, "ISA paths"),
// and extreme finite logits (up to the largest float) giving exact, finite results on the active
// path (SELFREPLAY_ISA: ctest runs this suite once per path) against a long-double brute force.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "selfreplay/losses.hpp"

namespace {

namespace sr = selfreplay;
using sr::index_t;

enum class loss { ce, kl_forward, kl_reverse, jsd };
constexpr loss all_losses[] = {loss::ce, loss::kl_forward, loss::kl_reverse, loss::jsd};

const char* name_of(loss w) {
    switch (w) {
    case loss::ce: return "cross-entropy";
    case loss::kl_forward: return "forward KL";
    case loss::kl_reverse: return "reverse KL";
    case loss::jsd: break;
    }
    return "generalized JSD";
}

// Value (reduction sum over the [1, rows, V] positions, no shift) and gradient of one loss.
template <class T>
double run(loss w, const std::vector<T>& s, const std::vector<T>& r, const std::vector<std::int32_t>& tok, index_t rows,
           index_t V, double tau, std::vector<T>& g) {
    g.assign(s.size(), T(0));
    const auto sv = sr::make_view(s.data(), {1, rows, V});
    const auto rv = sr::make_view(r.data(), {1, rows, V});
    const auto gv = sr::make_view(g.data(), {1, rows, V});
    switch (w) {
    case loss::ce: { // position t's target is tok[t + 1]; the last position is not counted
        const auto tv = sr::make_view(tok.data(), {1, rows});
        return sr::next_token_loss(sv, tv, gv, {.reduction = sr::reduction::sum}).value;
    }
    case loss::kl_forward:
        return sr::kl_divergence(sv, rv, gv, {.temperature = tau, .reduction = sr::reduction::sum, .shift = false}).value;
    case loss::kl_reverse:
        return sr::kl_divergence(sv, rv, gv,
                                 {.direction = sr::kl_direction::reverse,
                                  .temperature = tau,
                                  .reduction = sr::reduction::sum,
                                  .shift = false})
            .value;
    case loss::jsd: break;
    }
    return sr::generalized_jsd(sv, rv, gv, {.beta = 0.3, .temperature = tau, .reduction = sr::reduction::sum, .shift = false})
        .value;
}

template <class T>
std::vector<T> normal(std::size_t n, unsigned seed, double sd) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> nd(0.0, sd);
    std::vector<T> v(n);
    for (auto& x : v) x = static_cast<T>(nd(rng));
    return v;
}

// Largest difference of every loss's value (relative) and gradient (relative to the largest
// gradient entry) between each supported path and sse2, on N(0, 3^2) logits over several blocks.
template <class T>
void check_paths_agree(double value_bound, double gradient_bound) {
    const index_t rows = 6, V = 5000;
    const auto s = normal<T>(static_cast<std::size_t>(rows * V), 41, 3.0);
    auto r = normal<T>(s.size(), 42, 1.5);
    for (std::size_t i = 0; i < s.size(); ++i) r[i] += s[i];
    std::vector<std::int32_t> tok(static_cast<std::size_t>(rows));
    for (std::size_t i = 0; i < tok.size(); ++i) tok[i] = static_cast<std::int32_t>((i * 977) % V);
    for (loss w : all_losses) {
        std::vector<T> g0, g;
        sr::set_isa(sr::isa::sse2);
        const double v0 = run(w, s, r, tok, rows, V, 1.3, g0);
        double gmax = 0;
        for (T x : g0) gmax = std::max(gmax, std::abs(static_cast<double>(x)));
        for (sr::isa p : sr::all_isas) {
            if (p == sr::isa::sse2) continue;
            if (!sr::isa_supported(p)) {
                WARN("ISA path " << sr::isa_name(p) << ": skipped (CPU lacks it)");
                continue;
            }
            sr::set_isa(p);
            const double v = run(w, s, r, tok, rows, V, 1.3, g);
            double gdiff = 0;
            for (std::size_t i = 0; i < g.size(); ++i)
                gdiff = std::max(gdiff, std::abs(static_cast<double>(g[i]) - static_cast<double>(g0[i])));
            const double vdiff = std::abs(v - v0) / std::abs(v0);
            // the measured differences, for docs/performance.md ("ISA paths")
            WARN(name_of(w) << " " << (sizeof(T) == 4 ? "float" : "double") << ", " << sr::isa_name(p)
                            << " vs sse2: value " << vdiff << " relative, gradient " << gdiff / gmax
                            << " of the largest entry");
            CHECK(vdiff <= value_bound);
            CHECK(gdiff <= gradient_bound * gmax);
        }
    }
    sr::reset_isa();
}

// The long-double truth for one row: value and d value / d student logit of each loss (reduction
// sum), from the textbook two-pass formulas.
struct truth {
    long double value = 0;
    std::vector<long double> grad;
};

std::vector<long double> log_softmax(const std::vector<long double>& x) {
    long double m = -std::numeric_limits<long double>::infinity();
    for (long double v : x) m = std::max(m, v);
    long double z = 0;
    for (long double v : x) z += std::exp(v - m);
    std::vector<long double> out(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) out[i] = x[i] - m - std::log(z);
    return out;
}

template <class T>
truth brute(loss w, const T* s, const T* r, index_t V, std::int32_t y, double tau) {
    std::vector<long double> xs(static_cast<std::size_t>(V)), xr(xs.size());
    for (std::size_t i = 0; i < xs.size(); ++i) {
        xs[i] = static_cast<long double>(s[i]) / (w == loss::ce ? 1.0L : tau);
        xr[i] = static_cast<long double>(r[i]) / tau;
    }
    const auto lq = log_softmax(xs), lp = log_softmax(xr);
    truth t;
    t.grad.assign(xs.size(), 0);
    const long double it = w == loss::ce ? 1.0L : 1.0L / tau;
    if (w == loss::ce) {
        t.value = -lq[static_cast<std::size_t>(y)];
        for (std::size_t i = 0; i < xs.size(); ++i) t.grad[i] = std::exp(lq[i]);
        t.grad[static_cast<std::size_t>(y)] -= 1;
    } else if (w == loss::kl_forward) {
        for (std::size_t i = 0; i < xs.size(); ++i) {
            const long double p = std::exp(lp[i]), q = std::exp(lq[i]);
            if (p > 0) t.value += p * (lp[i] - lq[i]);
            t.grad[i] = (q - p) * it;
        }
    } else if (w == loss::kl_reverse) {
        for (std::size_t i = 0; i < xs.size(); ++i)
            if (const long double q = std::exp(lq[i]); q > 0) t.value += q * (lq[i] - lp[i]);
        for (std::size_t i = 0; i < xs.size(); ++i) {
            const long double q = std::exp(lq[i]);
            t.grad[i] = q > 0 ? q * (lq[i] - lp[i] - t.value) * it : 0;
        }
    } else {
        const long double beta = 0.3L;
        long double kl_qm = 0;
        std::vector<long double> lm(xs.size());
        for (std::size_t i = 0; i < xs.size(); ++i) {
            const long double p = std::exp(lp[i]), q = std::exp(lq[i]);
            lm[i] = std::log(beta * p + (1 - beta) * q);
            if (p > 0) t.value += beta * p * (lp[i] - lm[i]);
            if (q > 0) {
                t.value += (1 - beta) * q * (lq[i] - lm[i]);
                kl_qm += q * (lq[i] - lm[i]);
            }
        }
        for (std::size_t i = 0; i < xs.size(); ++i) {
            const long double q = std::exp(lq[i]);
            t.grad[i] = q > 0 ? (1 - beta) * q * (lq[i] - lm[i] - kl_qm) * it : 0;
        }
    }
    return t;
}

} // namespace

TEST_CASE("every ISA path agrees with sse2 within the documented rounding bounds", "[losses][isa]") {
    check_paths_agree<float>(2e-6, 1e-6);
    check_paths_agree<double>(1e-13, 1e-13);
}

TEST_CASE("extreme finite float logits give exact finite values and gradients for every loss", "[losses][isa]") {
    // float logits up to the largest float (3.4e38), in rows of 3 blocks: at 1e4 the softmaxes
    // are smooth; from 2.5e9 (where -march=native once returned +inf) they are nearly one-hot,
    // and from 1e38 differences of logits overflow float.
    using T = float;
    INFO("ISA path " << sr::isa_name(sr::active_isa()));
    const index_t V = 3000;
    for (double magnitude : {1e4, 2.5e9, 1e20, 1e31, 1e38, 3e38, 3.4e38}) {
        const auto us = normal<double>(static_cast<std::size_t>(V), 71, 1.0);
        const auto ur = normal<double>(static_cast<std::size_t>(V), 72, 1.0);
        std::vector<T> s(us.size()), r(ur.size());
        for (std::size_t i = 0; i < s.size(); ++i) { // in [-magnitude, magnitude], both signs
            s[i] = static_cast<T>(magnitude * std::tanh(us[i]));
            r[i] = static_cast<T>(magnitude * std::tanh(ur[i] + 0.5 * us[i]));
        }
        // cross-entropy counts position 0 of a [1, 2] sequence: its target is token 1
        std::vector<T> sce(s);
        sce.resize(2 * s.size(), T(0));
        const std::vector<std::int32_t> tok = {0, 1234};
        for (loss w : all_losses)
            for (double tau : {1.0, 0.5}) {
                if (w == loss::ce && tau != 1.0) continue;
                INFO(name_of(w) << " at logits up to " << magnitude << ", temperature " << tau);
                std::vector<T> g;
                const double got = w == loss::ce ? run(w, sce, sce, tok, 2, V, tau, g) : run(w, s, r, tok, 1, V, tau, g);
                const truth want = brute(w, s.data(), r.data(), V, 1234, tau);
                REQUIRE(std::isfinite(got));
                CHECK(std::abs(got - static_cast<double>(want.value)) <= 1e-5 * std::max(1.0, std::abs(static_cast<double>(want.value))));
                long double gmax = 0, err = 0;
                for (std::size_t i = 0; i < want.grad.size(); ++i) {
                    REQUIRE(std::isfinite(g[i]));
                    gmax = std::max(gmax, std::abs(want.grad[i]));
                    err = std::max(err, std::abs(static_cast<long double>(g[i]) - want.grad[i]));
                }
                // relative to the scale of the terms the gradient cancels (q (log q - log p - KL) is a
                // difference of terms of size |KL|, or of 1 nat), where the softmax is one-hot and the
                // true gradient vanishes
                const double scale = std::max({static_cast<double>(gmax), 1.0, std::abs(static_cast<double>(want.value))});
                INFO("largest gradient error " << static_cast<double>(err) << ", largest entry " << static_cast<double>(gmax));
                CHECK(static_cast<double>(err) <= 1e-5 * scale);
            }
    }
}
