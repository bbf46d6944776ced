// Cost of exact (order-free, mergeable) accumulation against a plain double loop over the same
// per-position losses [B, T] = [256, 1024] (2 MiB of doubles): the price of bit-exact merges.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "selfreplay/metrics.hpp"

namespace {

const std::vector<double>& losses() {
    static const std::vector<double> v = [] {
        std::mt19937_64 rng(1);
        std::lognormal_distribution<double> d(0.5, 1.0);
        std::vector<double> x(256 * 1024);
        for (auto& e : x) e = d(rng);
        return x;
    }();
    return v;
}

void naive_double_sum(benchmark::State& state) {
    const auto& x = losses();
    for (auto _ : state) {
        double s = 0;
        for (double e : x) s += e;
        benchmark::DoNotOptimize(s / static_cast<double>(x.size()));
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(x.size()));
}
BENCHMARK(naive_double_sum);

void mean_loss_add_tensor(benchmark::State& state) {
    const auto& x = losses();
    for (auto _ : state) {
        selfreplay::mean_loss m;
        m.add(selfreplay::make_view(x.data(), {256, 1024}));
        benchmark::DoNotOptimize(m.value());
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(x.size()));
}
BENCHMARK(mean_loss_add_tensor);

void exact_sum_add(benchmark::State& state) {
    const auto& x = losses();
    for (auto _ : state) {
        selfreplay::exact_sum s;
        for (double e : x) s.add(e);
        benchmark::DoNotOptimize(s.value());
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(x.size()));
}
BENCHMARK(exact_sum_add);

} // namespace

BENCHMARK_MAIN();
