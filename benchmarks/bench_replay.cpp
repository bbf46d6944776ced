// Benchmarks of the replay layer's composition cost. Rows follow benchmarks/compare-peers:
//   compose_overhead/ours                  one training step's replay work through a composed
//                                          `strategy` (reservoir source x (replace 1/4 + kl_pre c=10)):
//                                          strat.prepare (draw + mix) and strat.objective
//                                          (NTP on x + 10 KL(pi || theta) on r, values and logit gradients)
//   compose_overhead/peer:hand-written     the same step written by hand: buffer.draw, the row copy,
//                                          next_token_loss and kl_divergence(scale = 10) called directly
//   compose_overhead/floor                 one read of the bytes the step must touch (theta and
//                                          gradient on x; theta, pi and gradient on r), vectorised sum
// Shape: B = R = 4 sequences of L = 128 tokens, V = 4096, float, single thread (5 logit-sized
// arrays of 2 MiB each: the step is memory- and exp-bound, as in a trainer).
//   compose_overhead/interleaved           ours and the peer alternately in every iteration, each
//                                          timed in thread CPU time: counters ours_us, peer_us (medians) and
//                                          overhead_pct = 100 (median per-iteration ratio - 1), the
//                                          figure robust to load on a shared machine
// compose_overhead_tiny/* is the same at V = 64, L = 16, where fixed per-call costs dominate.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <ctime>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "common.hpp"
#include "selfreplay/compose.hpp"
#include "selfreplay/replay.hpp"

namespace {

namespace sr = selfreplay;
using sr::index_t;

struct problem {
    index_t B, R, L, V;
    std::vector<std::int32_t> x, x0, r, stored;
    std::vector<float> theta_x, theta_r, pi_r, dx, dr;
    problem(index_t b, index_t rr, index_t l, index_t v) : B(b), R(rr), L(l), V(v) {
        std::mt19937 g(42);
        std::normal_distribution<float> n(0.f, 3.f);
        auto tokens = [&](index_t rows) {
            std::vector<std::int32_t> t(static_cast<std::size_t>(rows * L));
            for (auto& e : t) e = static_cast<std::int32_t>(g() % static_cast<std::uint32_t>(V));
            return t;
        };
        x0 = tokens(B);
        x = x0;
        r = tokens(R);
        stored = tokens(64);
        for (auto* a : {&theta_x, &dx}) a->resize(static_cast<std::size_t>(B * L * V));
        for (auto* a : {&theta_r, &pi_r, &dr}) a->resize(static_cast<std::size_t>(R * L * V));
        for (auto* a : {&theta_x, &theta_r}) for (auto& e : *a) e = n(g);
        for (std::size_t i = 0; i < pi_r.size(); ++i) pi_r[i] = theta_r[i] + 0.5f * n(g);
    }
    sr::reservoir_buffer buffer() const {
        sr::reservoir_buffer b({.capacity = 64, .seq_len = L, .seed = 7});
        b.add(sr::make_view(stored.data(), {64, L}));
        return b;
    }
    std::int64_t bytes_per_step() const { return static_cast<std::int64_t>(sizeof(float)) * (2 * B + 3 * R) * L * V; }
};

problem& big() {
    static problem p(4, 4, 128, 4096);
    return p;
}
problem& tiny() {
    static problem p(4, 4, 16, 64);
    return p;
}

// The composed step: a strategy bundling the source and the mixer.
struct composed {
    problem& p;
    sr::strategy<sr::reservoir_buffer, sr::mixer_sum<sr::replace<>, sr::kl_pre<>>> strat{
        .source = p.buffer(), .mixer = sr::replace<>{.fraction = 0.25} + sr::kl_pre<>{.coefficient = 10.0}};
    sr::objective_inputs<float> in{.train_tokens = sr::make_view(p.x.data(), {p.B, p.L}),
                                   .student_train_logits = sr::make_view(p.theta_x.data(), {p.B * p.L, p.V}),
                                   .replay_tokens = sr::make_view(p.r.data(), {p.R, p.L}),
                                   .student_replay_logits = sr::make_view(p.theta_r.data(), {p.R * p.L, p.V}),
                                   .reference_replay_logits = sr::make_view(p.pi_r.data(), {p.R * p.L, p.V})};
    sr::objective_gradients<float> out{.train = sr::make_view(p.dx.data(), {p.B * p.L, p.V}),
                                       .replay = sr::make_view(p.dr.data(), {p.R * p.L, p.V})};
    double operator()() {
        strat.prepare(sr::make_view(p.x.data(), {p.B, p.L}), sr::make_view(p.r.data(), {p.R, p.L}));
        const double total = strat.objective(in, out).total;
        strat.advance();
        return total;
    }
};

// The same step written by hand with the same library calls.
struct hand_written {
    problem& p;
    sr::reservoir_buffer buffer = p.buffer();
    double operator()() {
        const auto x = sr::make_view(static_cast<const std::int32_t*>(p.x.data()), {p.B, p.L});
        const auto zx = sr::make_view(static_cast<const float*>(p.theta_x.data()), {p.B * p.L, p.V});
        const auto zr = sr::make_view(static_cast<const float*>(p.theta_r.data()), {p.R * p.L, p.V});
        const auto pr = sr::make_view(static_cast<const float*>(p.pi_r.data()), {p.R * p.L, p.V});
        buffer.draw(sr::make_view(p.r.data(), {p.R, p.L}));
        const index_t n = p.B / 4; // floor(0.25 * B) rows replaced
        for (index_t i = 0; i < n * p.L; ++i) p.x[static_cast<std::size_t>(i)] = p.r[static_cast<std::size_t>(i)];
        const double ntp = sr::next_token_loss(zx, x, sr::make_view(p.dx.data(), {p.B * p.L, p.V})).value;
        const double kl = sr::kl_divergence(zr, pr, sr::make_view(p.dr.data(), {p.R * p.L, p.V}),
                                            {.sequence_length = p.L, .scale = 10.0})
                              .value;
        return ntp + kl;
    }
};

template <class Step>
void run(benchmark::State& st, problem& p) {
    Step step{p};
    for (auto _ : st) {
        benchmark::DoNotOptimize(step());
        benchmark::ClobberMemory();
    }
    st.SetBytesProcessed(st.iterations() * p.bytes_per_step());
}

// Both steps alternately in every iteration (order swapped every other iteration), each timed
// on its own in thread CPU time: on a loaded machine a burst of load hits both alike. Counters: the medians of the
// per-iteration times and overhead_pct = 100 * (median of ours / peer ratios - 1).
void interleaved(benchmark::State& st, problem& p) {
    composed a{p};
    hand_written b{p};
    std::vector<double> ta, tb, ratio;
    auto thread_cpu_us = [] {
        timespec ts{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) * 1e-3;
    };
    auto timed = [&](auto& step) { // this thread's CPU time: preemption by other jobs does not count
        const double t0 = thread_cpu_us();
        benchmark::DoNotOptimize(step());
        benchmark::ClobberMemory();
        return thread_cpu_us() - t0;
    };
    bool flip = false;
    for (auto _ : st) {
        double x, y;
        if (flip) {
            y = timed(b);
            x = timed(a);
        } else {
            x = timed(a);
            y = timed(b);
        }
        flip = !flip;
        ta.push_back(x);
        tb.push_back(y);
        ratio.push_back(x / y);
    }
    auto median = [](std::vector<double> v) {
        std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
        return v[v.size() / 2];
    };
    st.counters["ours_us"] = median(ta);
    st.counters["peer_us"] = median(tb);
    st.counters["overhead_pct"] = 100.0 * (median(ratio) - 1.0);
}

void floor_read(benchmark::State& st, problem& p) {
    for (auto _ : st) benchmark::DoNotOptimize(selfreplay_bench::read_arrays({&p.theta_x, &p.dx, &p.theta_r, &p.pi_r, &p.dr}));
    st.SetBytesProcessed(st.iterations() * p.bytes_per_step());
}

void register_all() {
    struct row {
        const char* name;
        problem& (*get)();
    };
    for (const row& rw : {row{"compose_overhead", big}, row{"compose_overhead_tiny", tiny}}) {
        auto add = [&](const std::string& suffix, void (*fn)(benchmark::State&, problem&)) {
            auto* get = rw.get;
            benchmark::RegisterBenchmark((std::string(rw.name) + "/" + suffix).c_str(),
                                         [fn, get](benchmark::State& st) { fn(st, get()); })
                ->Unit(benchmark::kMicrosecond)
                ->UseRealTime();
        };
        add("ours", run<composed>);
        add("peer:hand-written", run<hand_written>);
        add("floor", floor_read);
        benchmark::RegisterBenchmark((std::string(rw.name) + "/interleaved").c_str(),
                                     [get = rw.get](benchmark::State& st) { interleaved(st, get()); })
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime()
            ->MinTime(3.0);
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
