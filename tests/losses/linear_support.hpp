// Shared by the linear-loss tests: a three-loop `matmul` model (the trivial user backend), random
// heads, and the unfused reference path (logits = H W^T + b in full, the fused loss on them, then
// dH = G W, dW = G^T H, d bias = column sums of G, all in double loops).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "selfreplay/losses.hpp"

namespace linear_test {

using selfreplay::index_t;

//! The trivial `matmul` model: three loops, accumulating in double.
struct loop_matmul {
    template <class T>
    void operator()(const selfreplay::strided_view<const T, 2>& a, const selfreplay::strided_view<const T, 2>& b,
                    const selfreplay::strided_view<T, 2>& c, bool accumulate) const {
        for (index_t i = 0; i < c.extent(0); ++i)
            for (index_t j = 0; j < c.extent(1); ++j) {
                double s = accumulate ? static_cast<double>(c(i, j)) : 0.0;
                for (index_t k = 0; k < a.extent(1); ++k) s += static_cast<double>(a(i, k)) * static_cast<double>(b(k, j));
                c(i, j) = static_cast<T>(s);
            }
    }
};

//! One model's output layer with its storage.
template <class T>
struct head_data {
    index_t n = 0, d = 0, v = 0;
    std::vector<T> h, w, b; // b empty: no bias
    selfreplay::linear_head<T> head() const {
        selfreplay::linear_head<T> out{selfreplay::make_view(h.data(), {n, d}), selfreplay::make_view(w.data(), {v, d}), {}};
        if (!b.empty()) out.bias = selfreplay::make_view(b.data(), {v});
        return out;
    }
    //! logits [n, v] = H W^T + b, in double, rounded to T (what the unfused path's GEMM gives).
    std::vector<T> logits() const {
        std::vector<T> z(static_cast<std::size_t>(n * v));
        for (index_t i = 0; i < n; ++i)
            for (index_t j = 0; j < v; ++j) {
                double s = b.empty() ? 0.0 : static_cast<double>(b[std::size_t(j)]);
                for (index_t k = 0; k < d; ++k)
                    s += static_cast<double>(h[std::size_t(i * d + k)]) * static_cast<double>(w[std::size_t(j * d + k)]);
                z[std::size_t(i * v + j)] = static_cast<T>(s);
            }
        return z;
    }
};

template <class T>
head_data<T> random_head(index_t n, index_t d, index_t v, bool bias, unsigned seed, double spread = 1.0) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> nd(0.0, 1.0);
    head_data<T> x{n, d, v, {}, {}, {}};
    x.h.resize(std::size_t(n * d));
    x.w.resize(std::size_t(v * d));
    for (auto& e : x.h) e = static_cast<T>(nd(rng));
    for (auto& e : x.w) e = static_cast<T>(spread * nd(rng) / std::sqrt(static_cast<double>(d)));
    if (bias) {
        x.b.resize(std::size_t(v));
        for (auto& e : x.b) e = static_cast<T>(0.5 * nd(rng));
    }
    return x;
}

//! Gradients of the linear layer from a logit gradient G [n, v]: dH = G W, dW = G^T H, db = sum_i G.
template <class T>
struct head_grads {
    std::vector<T> dh, dw, db;
};

template <class T>
head_grads<T> backprop(const head_data<T>& x, const std::vector<T>& g) {
    head_grads<T> out;
    out.dh.assign(std::size_t(x.n * x.d), T(0));
    out.dw.assign(std::size_t(x.v * x.d), T(0));
    out.db.assign(std::size_t(x.v), T(0));
    for (index_t i = 0; i < x.n; ++i)
        for (index_t k = 0; k < x.d; ++k) {
            double s = 0;
            for (index_t j = 0; j < x.v; ++j)
                s += static_cast<double>(g[std::size_t(i * x.v + j)]) * static_cast<double>(x.w[std::size_t(j * x.d + k)]);
            out.dh[std::size_t(i * x.d + k)] = static_cast<T>(s);
        }
    for (index_t j = 0; j < x.v; ++j) {
        for (index_t k = 0; k < x.d; ++k) {
            double s = 0;
            for (index_t i = 0; i < x.n; ++i)
                s += static_cast<double>(g[std::size_t(i * x.v + j)]) * static_cast<double>(x.h[std::size_t(i * x.d + k)]);
            out.dw[std::size_t(j * x.d + k)] = static_cast<T>(s);
        }
        double s = 0;
        for (index_t i = 0; i < x.n; ++i) s += static_cast<double>(g[std::size_t(i * x.v + j)]);
        out.db[std::size_t(j)] = static_cast<T>(s);
    }
    return out;
}

//! Storage for the linear losses' gradient outputs, and their views.
template <class T>
struct grad_storage {
    std::vector<T> dh, dw, db;
    grad_storage(index_t n, index_t d, index_t v, T fill = T(0))
        : dh(std::size_t(n * d), fill), dw(std::size_t(v * d), fill), db(std::size_t(v), fill) {}
    selfreplay::linear_gradients<T> views(index_t n, index_t d, index_t v) {
        return {selfreplay::make_view(dh.data(), {n, d}), selfreplay::make_view(dw.data(), {v, d}),
                selfreplay::make_view(db.data(), {v})};
    }
};

//! Largest |a - b| over the largest |b| (1 when b is all zero).
template <class T>
double relative_error(const std::vector<T>& a, const std::vector<T>& b) {
    double worst = 0, scale = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        worst = std::max(worst, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
        scale = std::max(scale, std::abs(static_cast<double>(b[i])));
    }
    return worst / (scale > 0 ? scale : 1.0);
}

} // namespace linear_test
