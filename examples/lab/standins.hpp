#pragma once
//! \file
//! TEMPORARY stand-ins for library modules that have not landed yet (losses, sampling, random,
//! schedules, metrics). Each is replaced by the selfreplay API as soon as that module lands.

#include <cmath>
#include <cstdint>
#include <vector>

#include "model.hpp"

namespace lab::standin {

inline std::uint64_t mix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
//! Counter-based 64-bit random word for (seed, stream, counter).
inline std::uint64_t random_word(std::uint64_t seed, std::uint64_t stream, std::uint64_t counter) {
    return mix(mix(mix(seed) ^ stream) ^ counter);
}
inline double uniform(std::uint64_t seed, std::uint64_t stream, std::uint64_t counter) {
    return double(random_word(seed, stream, counter) >> 11) * 0x1.0p-53;
}

//! Next-token loss (mean over B*T, last position 0) and its logit gradient times `scale`.
inline double next_token_loss(const matrix& logits, const std::int32_t* tokens, int B, int T, matrix* dlogits,
                              float scale) {
    const int V = int(logits.cols());
    double total = 0;
    for (int b = 0; b < B; ++b)
        for (int t = 0; t < T; ++t) {
            const int r = b * T + t;
            if (t == T - 1) {
                if (dlogits) dlogits->row(r).setZero();
                continue;
            }
            const float mx = logits.row(r).maxCoeff();
            double z = 0;
            for (int v = 0; v < V; ++v) z += std::exp(double(logits(r, v) - mx));
            const double lse = mx + std::log(z);
            const int y = tokens[b * T + t + 1];
            total += lse - logits(r, y);
            if (dlogits) {
                for (int v = 0; v < V; ++v) (*dlogits)(r, v) = float(std::exp(logits(r, v) - lse)) * scale / float(B * T);
                (*dlogits)(r, y) -= scale / float(B * T);
            }
        }
    return total / (B * T);
}

//! KL(pi || theta) (mean over B*T, last position 0) and its theta-logit gradient times `scale`.
inline double kl_loss(const matrix& theta, const matrix& pi, int B, int T, matrix* dlogits, float scale) {
    const int V = int(theta.cols());
    double total = 0;
    std::vector<double> lp(V), lq(V);
    for (int r = 0; r < B * T; ++r) {
        if (r % T == T - 1) {
            if (dlogits) dlogits->row(r).setZero();
            continue;
        }
        const float mq = theta.row(r).maxCoeff(), mp = pi.row(r).maxCoeff();
        double zq = 0, zp = 0;
        for (int v = 0; v < V; ++v) {
            zq += std::exp(double(theta(r, v) - mq));
            zp += std::exp(double(pi(r, v) - mp));
        }
        for (int v = 0; v < V; ++v) {
            lq[v] = theta(r, v) - mq - std::log(zq);
            lp[v] = pi(r, v) - mp - std::log(zp);
            total += std::exp(lp[v]) * (lp[v] - lq[v]);
            if (dlogits) (*dlogits)(r, v) = float(std::exp(lq[v]) - std::exp(lp[v])) * scale / float(B * T);
        }
    }
    return total / (B * T);
}

//! Exact categorical draw from softmax(row) with uniform u in [0, 1).
inline int categorical(const float* row, int V, double u) {
    float mx = row[0];
    for (int v = 1; v < V; ++v) mx = std::max(mx, row[v]);
    double z = 0;
    for (int v = 0; v < V; ++v) z += std::exp(double(row[v] - mx));
    double acc = 0, target = u * z;
    for (int v = 0; v < V; ++v) {
        acc += std::exp(double(row[v] - mx));
        if (target < acc) return v;
    }
    return V - 1;
}

inline int greedy(const float* row, int V) {
    int best = 0;
    for (int v = 1; v < V; ++v)
        if (row[v] > row[best]) best = v;
    return best;
}

//! Linear warm-up from 0 over `warmup` steps, then constant `peak`.
inline float warmup_constant(float peak, long warmup, long step) {
    return warmup > 0 && step < warmup ? peak * float(step + 1) / float(warmup) : peak;
}

}  // namespace lab::standin
