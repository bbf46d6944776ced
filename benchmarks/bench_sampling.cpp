// Per-token latency of sampling chains (processors + draw) on one row of V float logits,
// single thread, against the floor: one read of the same V floats.
//
// Rows `<row>/ours` and `<row>/floor` for benchmarks/compare-peers; the PyTorch peers are in
// benchmarks/peers/sampling.py. Logits: i.i.d. N(0, 5^2), a language-model-like distribution at
// V = 128000 (entropy about 3.2 nats, p_max about 0.3, top-p(0.9) nucleus about 60 tokens);
// the `_flat` rows use N(0, 2^2) (entropy about 9.8 nats, nucleus about 30000 tokens), a stress
// case for top-p. Each iteration samples from the next of 16 rows (their footprint exceeds L2, as
// logits freshly written by a model would); every 16 iterations the rows are restored from a
// pristine copy outside the timed region (the processors work in place).
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "selfreplay/sampling.hpp"

using namespace selfreplay;

namespace {

constexpr std::size_t rows = 16;

struct logit_rows {
    std::size_t V;
    std::vector<float> pristine, work;
    logit_rows(std::size_t v, float sigma) : V(v), pristine(rows * v), work(rows * v) {
        std::mt19937 gen(12345);
        std::normal_distribution<float> normal(0.0f, sigma);
        for (auto& x : pristine) x = normal(gen);
        work = pristine;
    }
    float* row(std::size_t i) { return work.data() + (i % rows) * V; }
    void restore() { std::memcpy(work.data(), pristine.data(), work.size() * sizeof(float)); }
};

// one read of V floats (lane accumulators, vectorised like our kernels)
float read_floor(const float* x, std::size_t n) {
    float acc[16] = {};
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (std::size_t j = 0; j < 16; ++j) acc[j] += x[i + j];
    float s = 0;
    for (float a : acc) s += a;
    for (; i < n; ++i) s += x[i];
    return s;
}

template <class Chain, class Draw>
void run_chain(benchmark::State& state, std::size_t V, float sigma, Chain chain, Draw draw) {
    logit_rows data(V, sigma);
    sampling_context<float> ctx;
    counter_rng rng{.seed = 1};
    std::size_t i = 0;
    for (auto _ : state) {
        if (i % rows == 0 && i > 0) {
            state.PauseTiming();
            data.restore();
            state.ResumeTiming();
        }
        const std::int32_t tok = sample_token(std::span<float>(data.row(i), V), chain, draw, ctx, rng);
        benchmark::DoNotOptimize(tok);
        ++i;
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void run_floor(benchmark::State& state, std::size_t V, float sigma) {
    logit_rows data(V, sigma);
    std::size_t i = 0;
    for (auto _ : state) {
        if (i % rows == 0 && i > 0) {
            state.PauseTiming();
            data.restore();
            state.ResumeTiming();
        }
        benchmark::DoNotOptimize(read_floor(data.row(i), V));
        ++i;
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

template <class Chain, class Draw>
void add_row(const std::string& name, std::size_t V, float sigma, Chain chain, Draw draw) {
    const std::string row = name + "_" + std::to_string(V);
    benchmark::RegisterBenchmark((row + "/ours").c_str(),
                                 [=](benchmark::State& s) { run_chain(s, V, sigma, chain, draw); });
    benchmark::RegisterBenchmark((row + "/floor").c_str(), [=](benchmark::State& s) { run_floor(s, V, sigma); });
}

} // namespace

int main(int argc, char** argv) {
    for (std::size_t V : {32000u, 128000u, 256000u}) {
        add_row("temperature_draw", V, 5.0f, temperature{.t = 1.0f}, categorical{});
        add_row("top_k40", V, 5.0f, top_k{.k = 40} | temperature{.t = 0.8f}, categorical{});
        add_row("top_p09", V, 5.0f, top_p{.p = 0.9f} | temperature{.t = 0.8f}, categorical{});
        add_row("min_p005", V, 5.0f, min_p{.p = 0.05f} | temperature{.t = 0.8f}, categorical{});
        add_row("temp_then_top_p09", V, 5.0f, temperature{.t = 0.8f} | top_p{.p = 0.9f}, categorical{});
        add_row("top_p09_flat", V, 2.0f, top_p{.p = 0.9f} | temperature{.t = 0.8f}, categorical{});
        add_row("typical_p09", V, 5.0f, typical_p{.p = 0.9f}, categorical{});
        add_row("penalties_top_k40", V, 5.0f,
                repetition_penalty{.theta = 1.1f} | frequency_penalty{.alpha = 0.1f} | top_k{.k = 40} |
                    temperature{.t = 0.8f},
                categorical{});
        add_row("greedy", V, 5.0f, no_processing{}, greedy{});
        add_row("gumbel_draw", V, 5.0f, no_processing{}, gumbel_max{});
    }
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
}
