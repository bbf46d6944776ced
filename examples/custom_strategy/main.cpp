// custom_strategy: a user-written replay source and replay mixer, plugged into selfreplay's
// strategies and compile-time grids with no registration: each only has to model its concept.
//
// The "trainer" is a bigram language model (a V x V table of logits, row = previous token) trained
// by SGD on a new distribution; pi is a frozen copy of it taken before finetuning. The grid runs
// {self-generated replay, the user's source} x {none, ntp_pre, the user's mixer} and prints the loss
// components and how far the model drifted on the old distribution.

#include <boost/hana/tuple.hpp>

#include <cmath>
#include <cstdio>
#include <type_traits>
#include <vector>

#include "selfreplay/compose.hpp"
#include "selfreplay/replay.hpp"
#include "selfreplay/sampling.hpp"
#include "selfreplay/schedules.hpp"

namespace sr = selfreplay;
namespace hana = boost::hana;

constexpr sr::index_t V = 8, L = 12, B = 16, R = 16;

// ---- the model: logits(next | prev) = W[prev][next] ------------------------------------------
struct bigram {
    std::vector<float> W = std::vector<float>(V * V, 0.f);
    sr::index_t vocab_size() const { return V; } // models sr::language_model
    void next_token_logits(sr::strided_view<const std::int32_t, 2> prefixes, sr::strided_view<float, 2> logits) const {
        for (sr::index_t b = 0; b < prefixes.extent(0); ++b)
            for (sr::index_t v = 0; v < V; ++v) logits(b, v) = W[prefixes(b, prefixes.extent(1) - 1) * V + v];
    }
    // logits for every position of a [rows, L] batch, as a [rows*L, V] matrix
    std::vector<float> forward(const std::vector<std::int32_t>& tokens) const {
        std::vector<float> out(tokens.size() * V);
        for (std::size_t p = 0; p < tokens.size(); ++p)
            for (sr::index_t v = 0; v < V; ++v) out[p * V + v] = W[tokens[p] * V + v];
        return out;
    }
    // SGD step from d loss / d logits
    void backward(const std::vector<std::int32_t>& tokens, const std::vector<float>& dlogits, float lr) {
        for (std::size_t p = 0; p < tokens.size(); ++p)
            for (sr::index_t v = 0; v < V; ++v) W[tokens[p] * V + v] -= lr * dlogits[p * V + v];
    }
};

// ---- a user-written replay source: models sr::replay_source with two members -----------------
// Replays a fixed set of remembered "old" sequences in round-robin order.
struct round_robin_source {
    std::vector<std::vector<std::int32_t>> remembered;
    std::size_t next = 0;
    sr::index_t seq_len() const { return L; }
    void draw(sr::token_batch_view out) {
        for (sr::index_t r = 0; r < out.extent(0); ++r, next = (next + 1) % remembered.size())
            for (sr::index_t t = 0; t < L; ++t) out(r, t) = remembered[next][static_cast<std::size_t>(t)];
    }
};
static_assert(sr::replay_source<round_robin_source>);

// ---- a user-written replay mixer: models sr::replay_mixer -------------------------------------
// z-loss on the replay batch (PaLM): c * mean over positions of (log sum_v exp(logit_v))^2, with
// its hand-written gradient 2 c lse softmax / (R*L); plus next-token replay with coefficient c2.
struct zloss_and_ntp_replay {
    double c = 1e-2, c2 = 1.0;
    static constexpr bool needs_replay_batch = true;
    static constexpr bool needs_student_replay_logits = true;
    static constexpr bool needs_reference_replay_logits = false;
    static constexpr bool needs_reference_train_logits = false;
    static constexpr std::size_t terms = 2;

    sr::index_t replace_rows(std::int64_t, sr::index_t) const { return 0; }
    template <class T>
    void add_terms(sr::objective_context<T>& ctx) const {
        ctx.add_replay_ntp("ntp_replay", c2); // a built-in helper: fused value + gradient
        const auto z = ctx.inputs().student_replay_logits;
        auto g = ctx.computes_gradients() ? ctx.replay_gradient() : sr::strided_view<T, 2>{};
        double sum = 0;
        for (sr::index_t p = 0; p < z.extent(0); ++p) {
            double m = z(p, 0), s = 0;
            for (sr::index_t v = 1; v < z.extent(1); ++v) m = std::max(m, double(z(p, v)));
            for (sr::index_t v = 0; v < z.extent(1); ++v) s += std::exp(double(z(p, v)) - m);
            const double lse = m + std::log(s);
            sum += lse * lse;
            if (g.data())
                for (sr::index_t v = 0; v < z.extent(1); ++v)
                    g(p, v) += T(2 * c * lse * std::exp(double(z(p, v)) - lse) / double(z.extent(0)));
        }
        ctx.add_term("z_loss", c, sum / double(z.extent(0)));
    }
};
static_assert(sr::replay_mixer<zloss_and_ntp_replay>);

// ---- data: old distribution = "count up by 1", new distribution = "count up by 3" -----------
std::vector<std::int32_t> batch_of(int stride, sr::index_t rows, unsigned seed) {
    std::vector<std::int32_t> x(static_cast<std::size_t>(rows * L));
    for (sr::index_t r = 0; r < rows; ++r) {
        std::int32_t t = static_cast<std::int32_t>((seed * 7 + r * 3) % V);
        for (sr::index_t i = 0; i < L; ++i, t = (t + stride) % V) x[static_cast<std::size_t>(r * L + i)] = t;
    }
    return x;
}

double old_loss(const bigram& m) {
    const auto x = batch_of(1, 32, 99);
    const auto z = m.forward(x);
    return sr::next_token_loss(sr::make_view(z.data(), {32 * L, V}), sr::make_view(x.data(), {32, L})).value;
}

int main() {
    // "pretraining": fit the old distribution exactly enough, then freeze pi.
    bigram theta0;
    for (int s = 0; s < 300; ++s) {
        const auto x = batch_of(1, B, static_cast<unsigned>(s));
        auto z = theta0.forward(x);
        std::vector<float> dz(z.size());
        sr::next_token_loss(sr::make_view(z.data(), {B * L, V}), sr::make_view(x.data(), {B, L}), sr::make_view(dz.data(), {B * L, V}));
        theta0.backward(x, dz, 20.f);
    }
    const bigram pi = theta0;
    std::printf("old-distribution loss before finetuning: %.4f\n\n", old_loss(pi));

    bigram pi_for_sampling = pi; // self_generated holds the model by reference
    sr::self_generated generated(pi_for_sampling, {.prompts = {{0}, {4}}, .batch_size = R, .seq_len = L, .buffer_batches = 4, .seed = 1});
    round_robin_source remembered{.remembered = {batch_of(1, 1, 0), batch_of(1, 1, 1), batch_of(1, 1, 2)}};

    std::printf("%-22s %-22s %10s %10s %12s\n", "source", "mixer", "train_ntp", "total", "old loss");
    sr::for_each_strategy(
        hana::make_tuple(generated, remembered),
        hana::make_tuple(sr::no_replay{}, sr::ntp_pre<>{.coefficient = 1.0}, zloss_and_ntp_replay{}),
        hana::make_tuple(sr::warmup_constant{.peak = 20.0, .warmup_steps = 20}), [&](auto& strat) {
            bigram theta = pi;
            std::vector<std::int32_t> r(static_cast<std::size_t>(R * L));
            double train_ntp = 0, total = 0;
            for (; strat.step < 200; strat.advance()) {
                auto x = batch_of(3, B, static_cast<unsigned>(strat.step));
                strat.prepare(sr::make_view(x.data(), {B, L}), sr::make_view(r.data(), {R, L}));
                const auto zx = theta.forward(x), zr = theta.forward(r); // the passes strat.needs_* ask for
                std::vector<float> dx(zx.size()), dr(zr.size());
                const auto res = strat.objective(
                    sr::objective_inputs<float>{.train_tokens = sr::make_view(x.data(), {B, L}),
                                                .student_train_logits = sr::make_view(zx.data(), {B * L, V}),
                                                .replay_tokens = sr::make_view(r.data(), {R, L}),
                                                .student_replay_logits = sr::make_view(zr.data(), {R * L, V})},
                    {.train = sr::make_view(dx.data(), {B * L, V}), .replay = sr::make_view(dr.data(), {R * L, V})});
                theta.backward(x, dx, static_cast<float>(strat.learning_rate()));
                theta.backward(r, dr, static_cast<float>(strat.learning_rate()));
                train_ntp = res.train_ntp;
                total = res.total;
            }
            const bool self_gen = !std::is_same_v<std::decay_t<decltype(strat.source)>, round_robin_source>;
            using M = std::decay_t<decltype(strat.mixer)>;
            const char* mixer = std::is_same_v<M, sr::no_replay> ? "none" : std::is_same_v<M, sr::ntp_pre<double>> ? "ntp_pre" : "zloss+ntp (user)";
            std::printf("%-22s %-22s %10.4f %10.4f %12.4f\n", self_gen ? "self_generated" : "round_robin (user)",
                        mixer, train_ntp, total, old_loss(theta));
        });
    return 0;
}
