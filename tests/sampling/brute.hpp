#pragma once
// Brute-force reference definitions (double precision, full sorts) for the sampling tests.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

namespace brute {

inline constexpr double ninf = -std::numeric_limits<double>::infinity();

inline std::vector<double> softmax(const std::vector<double>& x) {
    const double m = *std::max_element(x.begin(), x.end());
    std::vector<double> p(x.size());
    double z = 0;
    for (std::size_t i = 0; i < x.size(); ++i) z += p[i] = x[i] == ninf ? 0.0 : std::exp(x[i] - m);
    for (auto& v : p) v /= z;
    return p;
}

inline std::vector<bool> finite_set(const std::vector<double>& x) {
    std::vector<bool> keep(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) keep[i] = x[i] > ninf;
    return keep;
}

// keep x >= k-th largest finite value (ties kept)
inline std::vector<bool> top_k(const std::vector<double>& x, std::size_t k) {
    std::vector<double> f;
    for (double v : x)
        if (v > ninf) f.push_back(v);
    if (f.size() <= k) return finite_set(x);
    std::sort(f.begin(), f.end(), std::greater<>());
    const double tau = f[k - 1];
    std::vector<bool> keep(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) keep[i] = x[i] >= tau;
    return keep;
}

// Walks tokens sorted by `key` ascending accumulating probabilities; the threshold key is the
// first whose cumulative mass reaches p; keeps key <= threshold. `margin` receives the distance
// of the cumulative masses around the crossing to p (small = borderline).
inline std::vector<bool> mass_prefix(const std::vector<double>& x, const std::vector<double>& key, double p,
                                     double& margin) {
    const auto prob = softmax(x);
    std::vector<std::size_t> order;
    for (std::size_t i = 0; i < x.size(); ++i)
        if (x[i] > ninf) order.push_back(i);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return key[a] < key[b]; });
    double cum = 0, before = 0, kappa = key[order.back()];
    margin = 1;
    for (std::size_t i : order) {
        before = cum;
        cum += prob[i];
        if (cum >= p) {
            kappa = key[i];
            margin = std::min(std::abs(cum - p), std::abs(before - p));
            break;
        }
    }
    std::vector<bool> keep(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) keep[i] = x[i] > ninf && key[i] <= kappa;
    return keep;
}

inline std::vector<bool> top_p(const std::vector<double>& x, double p, double& margin) {
    if (p >= 1) {
        margin = 1;
        return finite_set(x);
    }
    std::vector<double> key(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) key[i] = -x[i];
    return mass_prefix(x, key, p, margin);
}

inline std::vector<bool> typical_p(const std::vector<double>& x, double p, double& margin) {
    if (p >= 1) {
        margin = 1;
        return finite_set(x);
    }
    const auto prob = softmax(x);
    double h = 0;
    for (std::size_t i = 0; i < x.size(); ++i)
        if (prob[i] > 0) h -= prob[i] * std::log(prob[i]);
    std::vector<double> key(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) key[i] = prob[i] > 0 ? std::abs(-std::log(prob[i]) - h) : 1e300;
    return mass_prefix(x, key, p, margin);
}

inline std::vector<bool> min_p(const std::vector<double>& x, double p) {
    const double m = *std::max_element(x.begin(), x.end());
    const double tau = p == 0 ? -std::numeric_limits<double>::max() : m + std::log(p);
    std::vector<bool> keep(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) keep[i] = x[i] > ninf && x[i] >= tau;
    return keep;
}

inline void apply(std::vector<double>& x, const std::vector<bool>& keep) {
    for (std::size_t i = 0; i < x.size(); ++i)
        if (!keep[i]) x[i] = ninf;
}

// chi-square critical value for `dof` degrees of freedom at significance 1e-3 (z = 3.0902),
// Wilson-Hilferty approximation (within 1% of the exact quantile for dof >= 3).
inline double chi2_critical_1e3(double dof) {
    const double z = 3.0902, a = 2.0 / (9.0 * dof);
    return dof * std::pow(1 - a + z * std::sqrt(a), 3);
}

} // namespace brute
