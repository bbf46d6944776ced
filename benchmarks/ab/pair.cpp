// The driver of benchmarks/ab-losses: times side A and side B alternately on the same logits and
// prints the minimum and median time of each (normalised to 1024 x 32000 elements) and the median
// and quartiles of the per-round ratio B / A, with the largest gradient difference between sides.
// A paired, alternated comparison: on a VM whose speed drifts by 10-25% over minutes, the ratio of
// neighbouring runs is far steadier than either time.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

double side_a(int, const float*, const float*, float*, long, long);
double side_b(int, const float*, const float*, float*, long, long);

int main(int argc, char** argv) {
    if (argc != 6) {
        std::fprintf(stderr, "usage: %s LOSS(0 kl, 1 kl-value, 2 ce) ROWS VOCAB CALLS_PER_ROUND ROUNDS\n", argv[0]);
        return 2;
    }
    const int loss = std::atoi(argv[1]);
    const long rows = std::atol(argv[2]), vocab = std::atol(argv[3]), calls = std::atol(argv[4]);
    const int rounds = std::atoi(argv[5]);
    if (loss < 0 || loss > 2 || rows < 1 || vocab < 1 || calls < 1 || rounds < 1) {
        std::fprintf(stderr, "ab-losses: LOSS must be 0, 1 or 2 and ROWS, VOCAB, CALLS_PER_ROUND, ROUNDS positive\n");
        return 2;
    }
    const auto n = static_cast<std::size_t>(rows * vocab);
    std::vector<float> s(n), r(n), ga(n), gb(n);
    std::mt19937 rng(42);
    std::normal_distribution<float> nd(0.0f, 3.0f); // the spread of benchmarks/bench_losses.cpp
    for (std::size_t i = 0; i < n; ++i) {
        s[i] = nd(rng);
        r[i] = s[i] + 0.5f * nd(rng);
    }
    std::vector<double> ta, tb, ratio;
    double va = 0, vb = 0;
    const double per = 1024.0 * 32000.0 / (static_cast<double>(calls) * static_cast<double>(n)) * 1e3;
    for (int k = 0; k < rounds; ++k) {
        const auto t0 = std::chrono::steady_clock::now();
        for (long i = 0; i < calls; ++i) va = side_a(loss, s.data(), r.data(), ga.data(), rows, vocab);
        const auto t1 = std::chrono::steady_clock::now();
        for (long i = 0; i < calls; ++i) vb = side_b(loss, s.data(), r.data(), gb.data(), rows, vocab);
        const auto t2 = std::chrono::steady_clock::now();
        ta.push_back(std::chrono::duration<double>(t1 - t0).count() * per);
        tb.push_back(std::chrono::duration<double>(t2 - t1).count() * per);
        ratio.push_back(tb.back() / ta.back());
    }
    double diff = 0;
    for (std::size_t i = 0; i < n; ++i) diff = std::max(diff, static_cast<double>(std::fabs(ga[i] - gb[i])));
    for (auto* v : {&ta, &tb, &ratio}) std::sort(v->begin(), v->end());
    const std::size_t m = ratio.size() / 2, q1 = ratio.size() / 4, q3 = (3 * ratio.size()) / 4;
    std::printf("%ld x %ld, %d rounds of %ld calls (ms per 1024 x 32000 elements): A min %.1f median %.1f | "
                "B min %.1f median %.1f | B / A median %.3f, quartiles %.3f-%.3f | values %.9g, %.9g | "
                "largest gradient difference %.3g\n",
                rows, vocab, rounds, calls, ta[0], ta[m], tb[0], tb[m], ratio[m], ratio[q1], ratio[q3], va, vb, diff);
}
