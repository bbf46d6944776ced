// One side of benchmarks/ab-losses: the losses of one copy of the headers, compiled once per side
// with -DAB_SIDE=<function name> (and the second side with -Dselfreplay=selfreplay_b, so that the
// two copies of the library live in different namespaces in one binary).
#include <cstdint>
#include <vector>

#include "selfreplay/losses.hpp"

//! Runs one call of `loss` (0: KL value + gradient, 1: KL value only, 2: next-token cross-entropy
//! value + gradient) on rows x vocab float logits s (student / logits) and r (reference); g receives
//! the gradient. Returns the value.
double AB_SIDE(int loss, const float* s, const float* r, float* g, long rows, long vocab) {
    const auto sv = selfreplay::make_view(s, {rows, vocab});
    const auto rv = selfreplay::make_view(r, {rows, vocab});
    const auto gv = selfreplay::make_view(g, {rows, vocab});
    if (loss == 0) return selfreplay::kl_divergence(sv, rv, gv, {.shift = false}).value;
    if (loss == 1) return selfreplay::kl_divergence(sv, rv, {.shift = false}).value;
    // cross-entropy: the rows are positions of one sequence of rows + 1 tokens, derived from r
    static std::vector<std::int32_t> tokens;
    tokens.resize(static_cast<std::size_t>(rows + 1));
    for (long i = 0; i <= rows; ++i) tokens[static_cast<std::size_t>(i)] = static_cast<std::int32_t>((i * 7919) % vocab);
    const auto x = selfreplay::make_view(s, {1, rows, vocab});
    const auto t = selfreplay::make_view(static_cast<const std::int32_t*>(tokens.data()), {1, rows});
    const auto g3 = selfreplay::make_view(g, {1, rows, vocab});
    return selfreplay::next_token_loss(x, t, g3).value;
}
