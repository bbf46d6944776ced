// Per-token latency of sampling chains (processors + draw) on one row of V float logits,
// single thread, against the floor: one read of the same V floats.
//
// Rows `<row>/ours` and `<row>/floor` for benchmarks/compare-peers; the PyTorch peers are in
// benchmarks/peers/sampling.py. Logits, three shapes:
// - default: i.i.d. N(0, 5^2), a peaked language-model-like distribution at V = 128000 (entropy
//   about 3.2 nats, p_max about 0.3, top-p(0.9) nucleus about 60 tokens);
// - `_flat`: N(0, 2^2) (entropy about 9.8 nats, top-p(0.9) nucleus about 30000 tokens);
// - `_zipf`: a Zipf law over the vocabulary, x = -1.1 ln(rank) for a random permutation of the
//   ranks 1..V (word frequencies; entropy about 7.5 nats at V = 128000, most of the vocabulary
//   in the top-p(0.9) nucleus).
// Each iteration samples from the next of 16 rows (their footprint exceeds L2, as logits freshly
// written by a model would); every 16 iterations the rows are restored from a pristine copy
// outside the timed region (the processors work in place).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common.hpp"
#include "selfreplay/sampling.hpp"

using namespace selfreplay;

namespace {

constexpr std::size_t rows = 16;

//! The shape of the benchmark's logits (see the header comment).
struct shape {
    float sigma = 5.0f; //!< standard deviation of the normal rows
    float zipf = 0.0f;  //!< when > 0: x = -zipf * ln(rank) instead
};

struct logit_rows {
    std::size_t V;
    std::vector<float> pristine, work;
    logit_rows(std::size_t v, shape sh) : V(v), pristine(rows * v), work(rows * v) {
        std::mt19937 gen(12345);
        if (sh.zipf > 0) {
            std::vector<float> ranked(v);
            for (std::size_t r = 0; r < v; ++r) ranked[r] = -sh.zipf * std::log(float(r + 1));
            for (std::size_t i = 0; i < rows; ++i) {
                std::shuffle(ranked.begin(), ranked.end(), gen);
                std::copy(ranked.begin(), ranked.end(), pristine.begin() + static_cast<std::ptrdiff_t>(i * v));
            }
        } else {
            std::normal_distribution<float> normal(0.0f, sh.sigma);
            for (auto& x : pristine) x = normal(gen);
        }
        work = pristine;
    }
    float* row(std::size_t i) { return work.data() + (i % rows) * V; }
    void restore() { std::memcpy(work.data(), pristine.data(), work.size() * sizeof(float)); }
};

// one read of V floats, on the ISA path the kernels run (benchmarks/common.hpp)
float read_floor(const float* x, std::size_t n) {
    return selfreplay::detail::dispatch(selfreplay::active_isa(), [&](auto tag) {
        return read_sum(tag, x, static_cast<selfreplay::index_t>(n));
    });
}

template <class Chain, class Draw>
void run_chain(benchmark::State& state, std::size_t V, shape sh, Chain chain, Draw draw) {
    logit_rows data(V, sh);
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

void run_floor(benchmark::State& state, std::size_t V, shape sh) {
    logit_rows data(V, sh);
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
void add_row(const std::string& name, std::size_t V, shape sh, Chain chain, Draw draw) {
    const std::string row = name + "_" + std::to_string(V);
    benchmark::RegisterBenchmark((row + "/ours").c_str(), [=](benchmark::State& s) { run_chain(s, V, sh, chain, draw); });
    benchmark::RegisterBenchmark((row + "/floor").c_str(), [=](benchmark::State& s) { run_floor(s, V, sh); });
}

} // namespace

int main(int argc, char** argv) {
    const shape peaked{}, flat{.sigma = 2.0f}, zipf{.zipf = 1.1f};
    for (std::size_t V : {32000u, 128000u, 256000u}) {
        add_row("temperature_draw", V, peaked, temperature{.t = 1.0f}, categorical{});
        add_row("top_k40", V, peaked, top_k{.k = 40} | temperature{.t = 0.8f}, categorical{});
        add_row("top_k40_flat", V, flat, top_k{.k = 40} | temperature{.t = 0.8f}, categorical{});
        add_row("top_k40_zipf", V, zipf, top_k{.k = 40} | temperature{.t = 0.8f}, categorical{});
        add_row("top_p09", V, peaked, top_p{.p = 0.9f} | temperature{.t = 0.8f}, categorical{});
        add_row("top_p09_flat", V, flat, top_p{.p = 0.9f} | temperature{.t = 0.8f}, categorical{});
        add_row("top_p09_zipf", V, zipf, top_p{.p = 0.9f} | temperature{.t = 0.8f}, categorical{});
        add_row("min_p005", V, peaked, min_p{.p = 0.05f} | temperature{.t = 0.8f}, categorical{});
        add_row("temp_then_top_p09", V, peaked, temperature{.t = 0.8f} | top_p{.p = 0.9f}, categorical{});
        add_row("typical_p09", V, peaked, typical_p{.p = 0.9f}, categorical{});
        add_row("typical_p09_flat", V, flat, typical_p{.p = 0.9f}, categorical{});
        add_row("typical_p09_zipf", V, zipf, typical_p{.p = 0.9f}, categorical{});
        add_row("penalties_top_k40", V, peaked,
                repetition_penalty{.theta = 1.1f} | frequency_penalty{.alpha = 0.1f} | top_k{.k = 40} |
                    temperature{.t = 0.8f},
                categorical{});
        add_row("greedy", V, peaked, no_processing{}, greedy{});
        add_row("gumbel_draw", V, peaked, no_processing{}, gumbel_max{});
        add_row("gumbel_draw_flat", V, flat, no_processing{}, gumbel_max{});
        add_row("gumbel_draw_zipf", V, zipf, no_processing{}, gumbel_max{});
    }
    selfreplay_bench::record_isa_context();
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
}
