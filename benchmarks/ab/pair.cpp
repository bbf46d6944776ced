// The driver of benchmarks/ab-kernels: times side A and side B alternately on the same inputs and
// prints the minimum and median time of each and the median and quartiles of the per-round ratio
// B / A, with the largest gradient difference between sides (losses) or both sides' token sums
// (top-p). A paired, alternated comparison: on a VM whose speed drifts by 10-25% over minutes, the
// ratio of neighbouring runs is far steadier than either time.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

double side_a(int, float*, const float*, float*, long, long);
double side_b(int, float*, const float*, float*, long, long);

int main(int argc, char** argv) {
    if (argc != 6) {
        std::fprintf(stderr, "usage: %s KERNEL(0 kl, 1 kl-value, 2 ce, 3 top-p) ROWS VOCAB CALLS_PER_ROUND ROUNDS\n", argv[0]);
        return 2;
    }
    const int kernel = std::atoi(argv[1]);
    const long rows = std::atol(argv[2]), vocab = std::atol(argv[3]), calls = std::atol(argv[4]);
    const int rounds = std::atoi(argv[5]);
    if (kernel < 0 || kernel > 3 || rows < 1 || vocab < 1 || calls < 1 || rounds < 1) {
        std::fprintf(stderr, "ab-kernels: KERNEL must be 0-3 and ROWS, VOCAB, CALLS_PER_ROUND, ROUNDS positive\n");
        return 2;
    }
    const bool sampling = kernel == 3;
    const auto n = static_cast<std::size_t>(rows * vocab);
    std::vector<float> s(n), r(n), ga(n), gb(n), work(sampling ? n : 0);
    std::mt19937 rng(42);
    // the spreads of benchmarks/bench_losses.cpp (student N(0, 3^2), reference = student +
    // N(0, 1.5^2)) and of bench_sampling.cpp (logits N(0, 5^2))
    std::normal_distribution<float> nd(0.0f, sampling ? 5.0f : 3.0f);
    for (std::size_t i = 0; i < n; ++i) {
        s[i] = nd(rng);
        r[i] = s[i] + 0.5f * nd(rng);
    }
    // losses: ms per 1024 x 32000 elements; top-p: us per token
    const double per = sampling ? 1e6 / (static_cast<double>(calls) * static_cast<double>(rows))
                                : 1024.0 * 32000.0 / (static_cast<double>(calls) * static_cast<double>(n)) * 1e3;
    auto time = [&](auto side, std::vector<float>& g, double& value) {
        double seconds = 0;
        for (long i = 0; i < calls; ++i) {
            float* x = s.data();
            if (sampling) { // the draw modifies its rows: a fresh copy for every call, not timed
                std::memcpy(work.data(), s.data(), n * sizeof(float));
                x = work.data();
            }
            const auto t0 = std::chrono::steady_clock::now();
            value = side(kernel, x, r.data(), g.data(), rows, vocab);
            seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        }
        return seconds * per;
    };
    std::vector<double> ta, tb, ratio;
    double va = 0, vb = 0;
    for (int k = 0; k < rounds; ++k) {
        ta.push_back(time(side_a, ga, va));
        tb.push_back(time(side_b, gb, vb));
        ratio.push_back(tb.back() / ta.back());
    }
    double diff = 0; // top-p writes no gradient: the token sums (the values) are the comparison
    for (std::size_t i = 0; i < n; ++i) diff = std::max(diff, static_cast<double>(std::fabs(ga[i] - gb[i])));
    for (auto* v : {&ta, &tb, &ratio}) std::sort(v->begin(), v->end());
    const std::size_t m = ratio.size() / 2, q1 = ratio.size() / 4, q3 = (3 * ratio.size()) / 4;
    std::printf("%ld x %ld, %d rounds of %ld calls (%s): A min %.1f median %.1f | B min %.1f median %.1f | "
                "B / A median %.3f, quartiles %.3f-%.3f | %s %.9g, %.9g",
                rows, vocab, rounds, calls, sampling ? "us per token" : "ms per 1024 x 32000 elements", ta[0], ta[m],
                tb[0], tb[m], ratio[m], ratio[q1], ratio[q3], sampling ? "token sums" : "values", va, vb);
    if (sampling)
        std::printf(" (%s)\n", va == vb ? "equal" : "DIFFERENT");
    else
        std::printf(" | largest gradient difference %.3g\n", diff);
}
