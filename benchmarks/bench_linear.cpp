// Benchmarks of the linear losses (selfreplay/losses/linear.hpp): value + gradients with respect to
// the hidden states and the output projection, float, single thread, Eigen's GEMM. Rows follow
// benchmarks/compare-peers:
//   linear_ce_8192x512x32000/ours           linear_next_token_loss, N = 8192 positions (8 x 1024),
//                                           D = 512, V = 32000, dH and dW
//   linear_ce_8192x512x32000/peer:unfused   the unfused path: logits = H W^T ([N, V], allocated in
//                                           the step), next_token_loss with the gradient in place,
//                                           dH = G W, dW = G^T H
//   linear_kl_4096x512x128000/ours          linear_kl_divergence, forward KL(pi || theta), pi's own
//                                           H and W, N = 4096 (4 x 1024), D = 512, V = 128000
//   linear_kl_4096x512x128000/peer:unfused  both logits in full, kl_divergence in place, dH, dW
// Each benchmark reports the counter `peak_bytes`: the most heap bytes the step had allocated at
// once (alloc_counter.hpp counts every malloc of the binary), the largest over its iterations.
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "alloc_counter.hpp"
#include "selfreplay/adapters/eigen.hpp"
#include "selfreplay/losses.hpp"

namespace {

namespace sr = selfreplay;
using sr::index_t;
using matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct problem {
    index_t n = 0, d = 0, v = 0, length = 1024;
    matrix h, w, hr, wr, dh, dw;
    std::vector<std::int32_t> tokens; // [n / length, length]
};

problem& get(index_t n, index_t d, index_t v, bool reference) {
    static std::map<std::pair<index_t, index_t>, std::unique_ptr<problem>> cache;
    auto& p = cache[{n, v}];
    if (!p) {
        p = std::make_unique<problem>();
        p->n = n;
        p->d = d;
        p->v = v;
        std::mt19937 rng(7);
        std::normal_distribution<float> nd(0.0f, 1.0f);
        const float ws = 3.0f / std::sqrt(static_cast<float>(d)); // logits with a spread of about 3
        auto fill = [&](matrix& m, index_t r, index_t c, float s) {
            m.resize(r, c);
            for (index_t i = 0; i < m.size(); ++i) m.data()[i] = s * nd(rng);
        };
        fill(p->h, n, d, 1.0f);
        fill(p->w, v, d, ws);
        if (reference) {
            fill(p->hr, n, d, 1.0f);
            p->wr = p->w + matrix::NullaryExpr(v, d, [&] { return 0.2f * ws * nd(rng); });
            p->hr = p->h + 0.3f * p->hr;
        }
        p->dh.setZero(n, d);
        p->dw.setZero(v, d);
        p->tokens.resize(static_cast<std::size_t>(n));
        for (auto& t : p->tokens) t = static_cast<std::int32_t>(rng() % static_cast<std::uint32_t>(v));
    }
    return *p;
}

sr::linear_head<float> head(const matrix& h, const matrix& w) {
    return {sr::view(h), sr::view(w), {}};
}

template <class Step>
void measure(benchmark::State& st, Step&& step) {
    long long peak = 0;
    for (auto _ : st) {
        const long long base = selfreplay_bench::reset_peak();
        benchmark::DoNotOptimize(step());
        benchmark::ClobberMemory();
        peak = std::max(peak, selfreplay_bench::peak_since(base));
    }
    st.counters["peak_bytes"] = selfreplay_bench::counted() ? static_cast<double>(peak) : -1.0;
}

void ce_ours(benchmark::State& st, index_t n, index_t d, index_t v) {
    auto& p = get(n, d, v, false);
    const auto tok = sr::make_view(static_cast<const std::int32_t*>(p.tokens.data()), {n / p.length, p.length});
    measure(st, [&] {
        return sr::linear_next_token_loss(sr::eigen_matmul{}, head(p.h, p.w), tok, {.hidden = sr::view(p.dh), .weight = sr::view(p.dw)})
            .value;
    });
}

void ce_unfused(benchmark::State& st, index_t n, index_t d, index_t v) {
    auto& p = get(n, d, v, false);
    const auto tok = sr::make_view(static_cast<const std::int32_t*>(p.tokens.data()), {n / p.length, p.length});
    measure(st, [&] {
        matrix z(n, v);
        z.noalias() = p.h * p.w.transpose();
        const double value = sr::next_token_loss(sr::view(z), tok, sr::view(z)).value;
        p.dh.noalias() = z * p.w;
        p.dw.noalias() = z.transpose() * p.h;
        return value;
    });
}

void kl_ours(benchmark::State& st, index_t n, index_t d, index_t v) {
    auto& p = get(n, d, v, true);
    measure(st, [&] {
        return sr::linear_kl_divergence(sr::eigen_matmul{}, head(p.h, p.w), head(p.hr, p.wr),
                                        {.hidden = sr::view(p.dh), .weight = sr::view(p.dw)}, {.sequence_length = p.length})
            .value;
    });
}

void kl_unfused(benchmark::State& st, index_t n, index_t d, index_t v) {
    auto& p = get(n, d, v, true);
    measure(st, [&] {
        matrix zs(n, v), zr(n, v);
        zs.noalias() = p.h * p.w.transpose();
        zr.noalias() = p.hr * p.wr.transpose();
        const double value = sr::kl_divergence(sr::view(zs), sr::view(zr), sr::view(zs), {.sequence_length = p.length}).value;
        p.dh.noalias() = zs * p.w;
        p.dw.noalias() = zs.transpose() * p.h;
        return value;
    });
}

void register_all() {
    auto add = [](const std::string& name, void (*fn)(benchmark::State&, index_t, index_t, index_t), index_t n,
                  index_t d, index_t v) {
        benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) { fn(st, n, d, v); })
            ->Unit(benchmark::kMillisecond);
    };
    add("linear_ce_8192x512x32000/ours", ce_ours, 8192, 512, 32000);
    add("linear_ce_8192x512x32000/peer:unfused", ce_unfused, 8192, 512, 32000);
    add("linear_kl_4096x512x128000/ours", kl_ours, 4096, 512, 128000);
    add("linear_kl_4096x512x128000/peer:unfused", kl_unfused, 4096, 512, 128000);
}

} // namespace

int main(int argc, char** argv) {
    register_all();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
