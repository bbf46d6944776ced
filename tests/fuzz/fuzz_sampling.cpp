// libFuzzer harness: sampling. Decodes a row (any length, including 0, values including NaN,
// +-inf, huge and subnormal), a history of arbitrary ids, a chain of up to 5 processors with
// arbitrary parameters and a draw; runs them with lazy masking (as `sample_token` does) and on
// a fully masked copy. Invariants when the draw returns: the token lies in [0, V), has a finite
// processed logit, lies in the support when there is one, is the same with and without lazy
// masking, and greedy returns a maximum.
#include <cstdint>
#include <span>
#include <vector>

#include "input.hpp"
#include "selfreplay/sampling.hpp"

namespace sr = selfreplay;

namespace {

template <class T>
void apply(fuzz::input& in, int kind, std::span<T> row, sr::sampling_context<T>& ctx, std::size_t V) {
    auto id = [&] { return static_cast<std::int32_t>(in.in(-2, static_cast<std::int64_t>(V) + 1)); };
    switch (kind) {
    case 0: sr::temperature{.t = static_cast<float>(in.flag() ? in.positive() : in.value<float>())}.process(row, ctx); break;
    case 1: sr::top_k{.k = static_cast<std::int32_t>(in.in(-1, static_cast<std::int64_t>(V) + 2))}.process(row, ctx); break;
    case 2: sr::top_p{.p = in.flag() ? static_cast<float>(in.in(0, 1000)) / 1000.0f : in.value<float>()}.process(row, ctx); break;
    case 3: sr::min_p{.p = in.flag() ? static_cast<float>(in.in(0, 1000)) / 1000.0f : in.value<float>()}.process(row, ctx); break;
    case 4: sr::typical_p{.p = in.flag() ? static_cast<float>(in.in(0, 1000)) / 1000.0f : in.value<float>()}.process(row, ctx); break;
    case 5: sr::repetition_penalty{.theta = static_cast<float>(in.positive())}.process(row, ctx); break;
    case 6: sr::frequency_penalty{.alpha = in.value<float>()}.process(row, ctx); break;
    case 7: sr::presence_penalty{.alpha = in.value<float>()}.process(row, ctx); break;
    case 8: {
        sr::logit_bias b;
        for (int n = static_cast<int>(in.in(0, 3)); n > 0; --n) b.bias.emplace_back(id(), in.value<float>());
        b.process(row, ctx);
        break;
    }
    default: {
        sr::banned_tokens b;
        for (int n = static_cast<int>(in.in(0, 3)); n > 0; --n) b.ids.push_back(id());
        b.process(row, ctx);
    }
    }
}

template <class T>
std::int32_t run(const std::vector<std::uint8_t>& chain_bytes, std::vector<T>& row, std::span<const std::int32_t> history,
                 int draw, bool lazy, std::uint64_t seed, sr::sampling_context<T>& ctx) {
    fuzz::input chain(chain_bytes.data(), chain_bytes.size());
    ctx.begin_row(history);
    ctx.lazy_masking = lazy;
    const int members = static_cast<int>(chain.in(0, 5));
    for (int m = 0; m < members; ++m) apply<T>(chain, static_cast<int>(chain.in(0, 9)), std::span<T>(row), ctx, row.size());
    sr::counter_rng rng{.seed = seed, .stream = 1};
    const std::span<const T> r(row.data(), row.size());
    switch (draw) {
    case 0: return sr::categorical{}.draw(r, ctx, rng);
    case 1: return sr::gumbel_max{}.draw(r, ctx, rng);
    default: return sr::greedy{}.draw(r, ctx, rng);
    }
}

template <class T>
void one(fuzz::input& in) {
    const auto V = static_cast<std::size_t>(in.flag() ? in.in(0, 8) : in.in(0, 1100));
    std::vector<T> row(V);
    const int fill = static_cast<int>(in.in(0, 2));
    for (auto& x : row) x = fill == 0 ? in.value<T>() : T(static_cast<double>(in.in(-3000, 3000)) / 100.0);
    std::vector<std::int32_t> history(static_cast<std::size_t>(in.in(0, 6)));
    for (auto& h : history) h = static_cast<std::int32_t>(in.in(-1, static_cast<std::int64_t>(V)));
    const int draw = static_cast<int>(in.in(0, 2));
    const std::uint64_t seed = in.raw<std::uint64_t>();
    std::vector<std::uint8_t> chain(in.left());
    for (auto& b : chain) b = in.byte();

    std::vector<T> lazy_row = row, full_row = row;
    sr::sampling_context<T> lazy_ctx, full_ctx;
    std::int32_t token = -1;
    try {
        token = run<T>(chain, lazy_row, history, draw, true, seed, lazy_ctx);
    } catch (const sr::invalid_argument&) {
        return;
    }
    fuzz::check(token >= 0 && static_cast<std::size_t>(token) < V, "token outside [0, V)", token, double(V));
    if (lazy_ctx.has_support) {
        bool in_support = false;
        for (std::int32_t s : lazy_ctx.support) in_support |= s == token;
        fuzz::check(in_support, "token outside the support", token);
    }
    std::int32_t again = -1;
    try {
        again = run<T>(chain, full_row, history, draw, false, seed, full_ctx);
    } catch (const sr::invalid_argument&) {
        fuzz::fail("the fully masked row throws where the lazy one drew", token);
    }
    fuzz::check(again == token, "lazy and full masking draw different tokens", token, again);
    const T x = full_row[static_cast<std::size_t>(token)];
    fuzz::check(std::isfinite(x), "the drawn token's processed logit is not finite", token, double(x));
    if (draw == 2)
        for (T v : full_row) fuzz::check(!(v > x), "greedy did not return a maximum", double(x), double(v));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::input in(data, size);
    if (in.flag())
        one<float>(in);
    else
        one<double>(in);
    return 0;
}
