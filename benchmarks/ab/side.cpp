// One side of benchmarks/ab-kernels: the kernels of one copy of the headers, compiled once per side
// with -DAB_SIDE=<function name> (and the second side with -Dselfreplay=selfreplay_b, so that the
// two copies of the library live in different namespaces in one binary).
#include <cstdint>
#include <span>
#include <vector>

#include "selfreplay/losses.hpp"
#include "selfreplay/sampling.hpp"

//! Runs `kernel` once on rows x vocab float logits s (student / logits) and r (reference); g
//! receives the gradient. Kernels: 0 KL value + gradient, 1 KL value only, 2 next-token
//! cross-entropy value + gradient (returns the value); 3 top-p(0.9) | temperature(0.8) +
//! categorical draw of one token per row of s, which it modifies (returns the sum of the tokens).
double AB_SIDE(int kernel, float* s, const float* r, float* g, long rows, long vocab) {
    const auto sv = selfreplay::make_view(static_cast<const float*>(s), {rows, vocab});
    const auto rv = selfreplay::make_view(r, {rows, vocab});
    const auto gv = selfreplay::make_view(g, {rows, vocab});
    if (kernel == 0) return selfreplay::kl_divergence(sv, rv, gv, {.shift = false}).value;
    if (kernel == 1) return selfreplay::kl_divergence(sv, rv, {.shift = false}).value;
    if (kernel == 2) { // the rows are positions of one sequence of rows + 1 tokens
        static std::vector<std::int32_t> tokens;
        tokens.resize(static_cast<std::size_t>(rows + 1));
        for (long i = 0; i <= rows; ++i) tokens[static_cast<std::size_t>(i)] = static_cast<std::int32_t>((i * 7919) % vocab);
        const auto x = selfreplay::make_view(static_cast<const float*>(s), {1, rows, vocab});
        const auto t = selfreplay::make_view(static_cast<const std::int32_t*>(tokens.data()), {1, rows});
        const auto g3 = selfreplay::make_view(g, {1, rows, vocab});
        return selfreplay::next_token_loss(x, t, g3).value;
    }
    static selfreplay::sampling_context<float> ctx;
    static selfreplay::counter_rng rng(1, 2);
    const auto chain = selfreplay::top_p{.p = 0.9f} | selfreplay::temperature{.t = 0.8f};
    double tokens = 0;
    for (long i = 0; i < rows; ++i)
        tokens += static_cast<double>(selfreplay::sample_token(std::span<float>(s + i * vocab, static_cast<std::size_t>(vocab)),
                                                               chain, selfreplay::categorical{}, ctx, rng));
    return tokens;
}
