// libFuzzer harness: losses. Decodes shapes (B, T, V including 0 and 1), logits (values including
// NaN, +-inf, huge and subnormal), one function (next_token_loss, forward / reverse KL,
// generalized JSD, kl_estimate) and every option (temperature across the whole positive range,
// beta, reduction, mask, shift, scale, accumulate, threads), and a gradient that is absent,
// contiguous, strided or the student logits themselves. Invariants when the call returns, for
// inputs whose scaled logits are moderate (|x / temperature| <= 1e4, |scale| <= 1e6; for
// kl_estimate |log-prob| <= 40 in float, 340 in double, where exp of a difference is finite): the value,
// the per-position values and the gradient are finite; KL, JSD, cross-entropy, k2 and k3 are
// >= -rounding; divergences of identical inputs are 0 within rounding.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "input.hpp"
#include "selfreplay/losses.hpp"

namespace sr = selfreplay;

namespace {

template <class T>
void one(fuzz::input& in) {
    const int fn = static_cast<int>(in.in(0, 4));
    const sr::index_t B = in.in(0, 2), L = in.in(0, 3);
    const sr::index_t V = in.flag() ? in.in(0, 40) : in.in(0, 600);
    const bool ordinary = in.flag();
    const bool same = in.flag(); // reference identical to the student
    const auto n = static_cast<std::size_t>(B * L * V);
    std::vector<T> s(n), r(n);
    for (auto& x : s) x = ordinary ? T(static_cast<double>(in.in(-30000, 30000)) / 1000.0) : in.value<T>();
    if (same)
        r = s;
    else
        for (auto& x : r) x = ordinary ? T(static_cast<double>(in.in(-30000, 30000)) / 1000.0) : in.value<T>();
    const double temperature = in.flag() ? 1.0 : in.positive();
    double beta = 0.5;
    switch (in.in(0, 4)) {
    case 0: beta = 0; break;
    case 1: beta = 1; break;
    case 2: beta = in.value<double>(); break;
    case 3: beta = static_cast<double>(in.in(0, 1000)) / 1000.0; break;
    default: break;
    }
    const auto how = static_cast<sr::reduction>(in.in(0, 3));
    std::vector<std::uint8_t> mask_data(static_cast<std::size_t>(B * L));
    const bool masked = in.flag();
    for (auto& m : mask_data) m = in.flag();
    const bool shift = in.flag();
    const double scale = in.flag() ? 1.0 : in.value<double>();
    const bool accumulate = in.flag();
    const int threads = static_cast<int>(in.in(1, 3));
    const int grad = static_cast<int>(in.in(0, 3)); // 0 none, 1 contiguous, 2 strided, 3 in place
    std::vector<double> per(static_cast<std::size_t>(B * L), -7.0);
    std::vector<T> g(n * (grad == 2 ? 2 : 1), T(0.25));
    std::vector<std::int32_t> tokens(static_cast<std::size_t>(B * L));
    for (auto& t : tokens) t = static_cast<std::int32_t>(in.in(-101, V));

    const auto sv = sr::make_view(s.data(), {B, L, V});
    const auto rv = sr::make_view(r.data(), {B, L, V});
    const sr::strided_view<T, 3> gv = grad == 2 ? sr::strided_view<T, 3>(g.data(), {B, L, V}, {2 * L * V, 2 * V, 2})
                                                : sr::make_view(grad == 3 ? s.data() : g.data(), {B, L, V});
    const auto per_view = sr::make_view(per.data(), {B, L});
    sr::position_mask mask;
    if (masked) mask = sr::make_view(mask_data.data(), {B, L});
    const auto tv = sr::make_view(tokens.data(), {B, L});

    // the moderate domain, where the invariants are checked
    double biggest = 0;
    bool finite = true;
    for (std::size_t i = 0; i < n; ++i) {
        finite &= std::isfinite(s[i]) && std::isfinite(r[i]);
        biggest = std::max({biggest, std::abs(double(s[i])), std::abs(double(r[i]))});
    }
    const double scaled = fn == 0 || fn == 4 ? biggest : biggest / temperature;
    // kl_estimate exponentiates a difference of log-probabilities: exp(2 * 40) is finite in float
    const double limit = fn == 4 ? (sizeof(T) == 4 ? 40.0 : 340.0) : 1e4;
    const bool moderate = finite && scaled <= limit && std::abs(scale) <= 1e6 && std::isfinite(temperature);
    const double tol = 64 * double(std::numeric_limits<T>::epsilon()) * (1 + scaled) * std::max(1.0, double(V));

    sr::loss_result res;
    try {
        switch (fn) {
        case 0: {
            const sr::next_token_options o{.reduction = how, .mask = mask, .per_position = per_view, .scale = scale,
                                           .accumulate = accumulate, .threads = threads};
            res = grad == 0 ? sr::next_token_loss(sv, tv, o) : sr::next_token_loss(sv, tv, gv, o);
            break;
        }
        case 1:
        case 2: {
            const sr::kl_options o{.direction = fn == 1 ? sr::kl_direction::forward : sr::kl_direction::reverse,
                                   .temperature = temperature, .reduction = how, .mask = mask, .shift = shift,
                                   .per_position = per_view, .scale = scale, .accumulate = accumulate, .threads = threads};
            res = grad == 0 ? sr::kl_divergence(sv, rv, o) : sr::kl_divergence(sv, rv, gv, o);
            break;
        }
        case 3: {
            const sr::jsd_options o{.beta = beta, .temperature = temperature, .reduction = how, .mask = mask, .shift = shift,
                                    .per_position = per_view, .scale = scale, .accumulate = accumulate, .threads = threads};
            res = grad == 0 ? sr::generalized_jsd(sv, rv, o) : sr::generalized_jsd(sv, rv, gv, o);
            break;
        }
        default: {
            // log-probabilities [B, T*V]: the logits buffer seen as a 2-D tensor
            const auto pv = sr::make_view(s.data(), {B, L * V});
            const auto qv = sr::make_view(r.data(), {B, L * V});
            std::vector<double> per2(static_cast<std::size_t>(B * L * V));
            std::vector<T> g2(n, T(0));
            const sr::kl_estimate_options o{.estimator = static_cast<sr::kl_estimator>(in.in(0, 2)), .reduction = how,
                                            .per_position = sr::make_view(per2.data(), {B, L * V}), .scale = scale,
                                            .accumulate = accumulate};
            res = grad == 0 ? sr::kl_estimate(pv, qv, o) : sr::kl_estimate(pv, qv, sr::make_view(g2.data(), {B, L * V}), o);
            if (moderate && std::isfinite(res.value)) {
                for (T x : g2) fuzz::check(std::isfinite(x), "kl_estimate: non-finite gradient", double(x));
                if (o.estimator != sr::kl_estimator::k1)
                    for (double v : per2) fuzz::check(v >= -tol, "kl_estimate: k2 / k3 below 0", v, tol);
            }
            return;
        }
        }
    } catch (const sr::invalid_argument&) {
        return;
    }
    if (!moderate) return;
    fuzz::check(std::isfinite(res.value), "finite input, non-finite value", res.value);
    for (std::size_t i = 0; i < per.size(); ++i) {
        const double v = per[i];
        fuzz::check(std::isfinite(v), "finite input, non-finite per-position value", v);
        fuzz::check(v >= -tol, "loss / divergence below 0 beyond rounding", v, tol);
        if (same && fn != 0) fuzz::check(std::abs(v) <= tol, "divergence of identical inputs is not 0", v, tol);
    }
    if (grad != 0)
        for (std::size_t i = 0; i < n; ++i) {
            const T x = grad == 2 ? g[2 * i] : grad == 3 ? s[i] : g[i];
            fuzz::check(std::isfinite(x), "finite input, non-finite gradient", double(x));
        }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::input in(data, size);
    if (in.flag())
        one<float>(in);
    else
        one<double>(in);
    return 0;
}
