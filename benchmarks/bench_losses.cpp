// Benchmarks of the fused losses (value + gradient with respect to the logits), float, single
// thread, at rows x V = 1024 x 32000 and 256 x 128000. Rows follow benchmarks/compare-peers:
//   <row>/ours        selfreplay (kl_divergence forward / next_token_loss, value + gradient)
//   <row>/floor       a read of the same bytes (KL: 12 bytes per element = student, reference
//                     and gradient; CE: 8 bytes = logits and gradient), vectorised sum
//   <row>/peer:eigen  the same math as a naive Eigen array expression (when Eigen is available)
// bytes_per_second counts those bytes per element.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "selfreplay/losses.hpp"
#include "common.hpp"

#if __has_include(<Eigen/Core>)
#include <Eigen/Core>
#define SELFREPLAY_BENCH_EIGEN 1
#endif

namespace {

using selfreplay::index_t;

struct problem {
    index_t rows = 0, vocab = 0;
    std::vector<float> student, reference, grad;
    std::vector<std::int32_t> tokens; // CE: one sequence of rows + 1 tokens
};

// One problem per shape, built on first use (random logits with a spread like a trained model's).
problem& get(index_t rows, index_t vocab) {
    static std::map<std::pair<index_t, index_t>, std::unique_ptr<problem>> cache;
    auto& p = cache[{rows, vocab}];
    if (!p) {
        p = std::make_unique<problem>();
        p->rows = rows;
        p->vocab = vocab;
        const auto n = static_cast<std::size_t>(rows * vocab);
        p->student.resize(n);
        p->reference.resize(n);
        p->grad.assign(n, 0.0f);
        std::mt19937 rng(42);
        std::normal_distribution<float> nd(0.0f, 3.0f);
        for (std::size_t i = 0; i < n; ++i) {
            p->student[i] = nd(rng);
            p->reference[i] = p->student[i] + 0.5f * nd(rng);
        }
        // CE: rows are positions of one long sequence of rows + 1 tokens (every row counted)
        p->tokens.resize(static_cast<std::size_t>(rows + 1));
        for (auto& t : p->tokens) t = static_cast<std::int32_t>(rng() % static_cast<std::uint32_t>(vocab));
    }
    return *p;
}

void set_bytes(benchmark::State& st, const problem& p, int bytes_per_element) {
    st.SetBytesProcessed(st.iterations() * p.rows * p.vocab * bytes_per_element);
    st.counters["elements"] = static_cast<double>(p.rows * p.vocab);
}

void kl_ours(benchmark::State& st, index_t rows, index_t vocab) {
    auto& p = get(rows, vocab);
    const auto s = selfreplay::make_view(static_cast<const float*>(p.student.data()), {rows, vocab});
    const auto r = selfreplay::make_view(static_cast<const float*>(p.reference.data()), {rows, vocab});
    const auto g = selfreplay::make_view(p.grad.data(), {rows, vocab});
    for (auto _ : st) {
        const auto res = selfreplay::kl_divergence(s, r, g, {.shift = false});
        benchmark::DoNotOptimize(res.value);
        benchmark::ClobberMemory();
    }
    set_bytes(st, p, 12);
}

void ce_ours(benchmark::State& st, index_t rows, index_t vocab) {
    auto& p = get(rows, vocab);
    const auto x = selfreplay::make_view(static_cast<const float*>(p.student.data()), {1, rows, vocab});
    const auto tok = selfreplay::make_view(static_cast<const std::int32_t*>(p.tokens.data()), {1, rows});
    const auto g = selfreplay::make_view(p.grad.data(), {1, rows, vocab});
    for (auto _ : st) {
        const auto res = selfreplay::next_token_loss(x, tok, g);
        benchmark::DoNotOptimize(res.value);
        benchmark::ClobberMemory();
    }
    set_bytes(st, p, 8);
}

void floor_kl(benchmark::State& st, index_t rows, index_t vocab) {
    auto& p = get(rows, vocab);
    for (auto _ : st) benchmark::DoNotOptimize(selfreplay_bench::read_arrays({&p.student, &p.reference, &p.grad}));
    set_bytes(st, p, 12);
}

void floor_ce(benchmark::State& st, index_t rows, index_t vocab) {
    auto& p = get(rows, vocab);
    for (auto _ : st) benchmark::DoNotOptimize(selfreplay_bench::read_arrays({&p.student, &p.grad}));
    set_bytes(st, p, 8);
}

#ifdef SELFREPLAY_BENCH_EIGEN
using matrix = Eigen::Array<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using cmap = Eigen::Map<const matrix>;

// Naive Eigen: log-softmax of both, KL = sum p (log p - log q) / rows, gradient (q - p) / rows.
void kl_eigen(benchmark::State& st, index_t rows, index_t vocab) {
    auto& p = get(rows, vocab);
    const cmap s(p.student.data(), rows, vocab), r(p.reference.data(), rows, vocab);
    Eigen::Map<matrix> g(p.grad.data(), rows, vocab);
    for (auto _ : st) {
        const Eigen::ArrayXf ms = s.rowwise().maxCoeff(), mr = r.rowwise().maxCoeff();
        const Eigen::ArrayXf ls = ms + (s.colwise() - ms).exp().rowwise().sum().log();
        const Eigen::ArrayXf lr = mr + (r.colwise() - mr).exp().rowwise().sum().log();
        const matrix logq = s.colwise() - ls, logp = r.colwise() - lr;
        const float kl = (logp.exp() * (logp - logq)).sum() / static_cast<float>(rows);
        g = (logq.exp() - logp.exp()) / static_cast<float>(rows);
        benchmark::DoNotOptimize(kl);
        benchmark::ClobberMemory();
    }
    set_bytes(st, p, 12);
}

void ce_eigen(benchmark::State& st, index_t rows, index_t vocab) {
    auto& p = get(rows, vocab);
    const cmap x(p.student.data(), rows, vocab);
    Eigen::Map<matrix> g(p.grad.data(), rows, vocab);
    for (auto _ : st) {
        const Eigen::ArrayXf m = x.rowwise().maxCoeff();
        const Eigen::ArrayXf lse = m + (x.colwise() - m).exp().rowwise().sum().log();
        float loss = 0;
        for (index_t i = 0; i < rows; ++i) loss += lse(i) - x(i, p.tokens[static_cast<std::size_t>(i + 1)]);
        g = (x.colwise() - lse).exp() / static_cast<float>(rows);
        for (index_t i = 0; i < rows; ++i)
            g(i, p.tokens[static_cast<std::size_t>(i + 1)]) -= 1.0f / static_cast<float>(rows);
        benchmark::DoNotOptimize(loss);
        benchmark::ClobberMemory();
    }
    set_bytes(st, p, 8);
}
#endif

void register_all() {
    const std::pair<index_t, index_t> shapes[] = {{1024, 32000}, {256, 128000}};
    for (auto [rows, vocab] : shapes) {
        const std::string shape = std::to_string(rows) + "x" + std::to_string(vocab);
        auto add = [&](const std::string& name, void (*fn)(benchmark::State&, index_t, index_t)) {
            benchmark::RegisterBenchmark(name.c_str(), [fn, rows, vocab](benchmark::State& st) { fn(st, rows, vocab); })
                ->Unit(benchmark::kMillisecond);
        };
        add("kl_fused_" + shape + "/ours", kl_ours);
        add("kl_fused_" + shape + "/floor", floor_kl);
        add("ce_fused_" + shape + "/ours", ce_ours);
        add("ce_fused_" + shape + "/floor", floor_ce);
#ifdef SELFREPLAY_BENCH_EIGEN
        add("kl_fused_" + shape + "/peer:eigen", kl_eigen);
        add("ce_fused_" + shape + "/peer:eigen", ce_eigen);
#endif
    }
}

} // namespace

int main(int argc, char** argv) {
    register_all();
    selfreplay_bench::record_isa_context();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
