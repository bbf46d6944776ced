#pragma once
//! \file
//! `generate`: batched autoregressive sampling from any `language_model` into any tensor backend,
//! one `counter_rng` stream per row keyed by (seed, global row index), so the tokens of a row do
//! not depend on the batch it is generated in nor on the thread count.

#include <algorithm>
#include <cstdint>
#include <exception>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "selfreplay/random/counter_rng.hpp"
#include "selfreplay/sampling/context.hpp"
#include "selfreplay/sampling/draw.hpp"
#include "selfreplay/sampling/language_model.hpp"
#include "selfreplay/sampling/processor.hpp"
#include "selfreplay/tensor/concept.hpp"
#include "selfreplay/tensor/token_ids.hpp"

namespace selfreplay {

//! Settings of `generate`.
struct generate_options {
    std::uint64_t seed = 0;      //!< key of every row's `counter_rng`
    std::uint64_t first_row = 0; //!< global index of row 0: row b samples from stream first_row + b
    std::int32_t eos = -1;       //!< end-of-sequence id; -1: no stop, every row has full length T
    std::int32_t pad = 0;        //!< written after a row's eos (must be in the vocabulary when eos >= 0)
    int threads = 1;             //!< threads sampling rows in parallel (>= 1); results do not depend on it
};

namespace sampling_detail {

template <class Logit, class Model, class PromptId, class Out, class Chain, class Draw>
void generate_impl(Model& model, const std::vector<std::span<const PromptId>>& prompts,
                   const generate_options& opt, Out&& out_tokens, const Chain& chain, const Draw& draw) {
    static_assert(language_model<Model, Logit>,
                  "selfreplay::generate: the model does not model selfreplay::language_model "
                  "(vocab_size() and next_token_logits(prefixes [B, L], logits [B, V]))");
    static_assert(logits_processor<Chain, Logit>,
                  "selfreplay::generate: the chain does not model selfreplay::logits_processor");
    static_assert(token_sampler<Draw, Logit>, "selfreplay::generate: the draw does not model selfreplay::token_sampler");
    auto out = view<2>(out_tokens);
    using OutId = typename decltype(out)::element_type;
    static_assert(token_id<OutId>,
                  "selfreplay::generate: out_tokens must be a mutable tensor of std::int32_t or std::int64_t");
    using Id = model_token_t<Model, Logit, OutId>; // the ids the model is driven with
    constexpr std::string_view where = "generate";
    const auto B = static_cast<index_t>(prompts.size());
    require(out.extent(0) == B, where, "out_tokens",
            "has ", out.extent(0), " rows but there are ", B, " prompts");
    const index_t T = out.extent(1);
    const auto V = static_cast<index_t>(model.vocab_size());
    require(V >= 1, where, "model", "has vocab_size() ", V, ", must be >= 1");
    require(detail::fits_int32(V), where, "model", "has vocab_size() ", V, ", beyond the int32 ids of the samplers");
    require(opt.threads >= 1, where, "options.threads", "must be >= 1, got ", opt.threads);
    if (opt.eos >= 0) {
        require(opt.eos < V, where, "options.eos", "is ", opt.eos, ", outside the vocabulary");
        require(opt.pad >= 0 && opt.pad < V, where, "options.pad",
                "is ", opt.pad, ", outside the vocabulary [0, ", V, ")");
    }
    if (B == 0) return;
    std::vector<Id> buf(static_cast<std::size_t>(B * T));
    std::vector<index_t> len(static_cast<std::size_t>(B));
    index_t lmin = T;
    for (index_t b = 0; b < B; ++b) {
        const auto& p = prompts[static_cast<std::size_t>(b)];
        const auto L = static_cast<index_t>(p.size());
        require(L >= 1 && L <= T, where, "prompts",
                "row ", b, " has length ", L, ", must be in [1, ", T, "] (T = out_tokens.extent(1))");
        for (index_t i = 0; i < L; ++i) {
            const PromptId id = p[static_cast<std::size_t>(i)];
            require(id >= 0 && id < V, where, "prompts",
                    "row ", b, " holds token id ", id, " outside the vocabulary [0, ", V, ")");
            buf[static_cast<std::size_t>(b * T + i)] = static_cast<Id>(id);
        }
        len[static_cast<std::size_t>(b)] = L;
        lmin = std::min(lmin, L);
    }
    std::vector<unsigned char> done(static_cast<std::size_t>(B), 0);
    std::vector<counter_rng> rng(static_cast<std::size_t>(B));
    for (index_t b = 0; b < B; ++b) rng[static_cast<std::size_t>(b)] = {opt.seed, opt.first_row + static_cast<std::uint64_t>(b), 0};
    std::vector<Logit> logits(static_cast<std::size_t>(B * V));
    const auto logits_view = make_view(logits.data(), {B, V});
    const int nthreads = static_cast<int>(std::min<index_t>(opt.threads, B));
    std::vector<sampling_context<Logit>> ctx(static_cast<std::size_t>(nthreads));

    // samples position `pos` of every row that is past its prompt and not finished
    auto sample_rows = [&](index_t pos, int tid) {
        auto& c = ctx[static_cast<std::size_t>(tid)];
        for (index_t b = tid; b < B; b += nthreads) {
            const auto ub = static_cast<std::size_t>(b);
            if (done[ub] || len[ub] > pos) continue;
            Id* row_tokens = buf.data() + b * T;
            const std::int32_t tok =
                sample_token(std::span<Logit>(logits.data() + b * V, static_cast<std::size_t>(V)), chain, draw, c,
                             rng[ub], std::span<const Id>(row_tokens, static_cast<std::size_t>(pos)));
            row_tokens[pos] = tok;
            if (opt.eos >= 0 && tok == opt.eos) {
                done[ub] = 1;
                std::fill(row_tokens + pos + 1, row_tokens + T, static_cast<Id>(opt.pad));
            }
        }
    };
    auto sample_step = [&](index_t pos) {
        if (nthreads == 1) return sample_rows(pos, 0);
        std::vector<std::exception_ptr> errors(static_cast<std::size_t>(nthreads));
        std::vector<std::thread> pool;
        for (int t = 0; t < nthreads; ++t)
            pool.emplace_back([&, t] {
                try {
                    sample_rows(pos, t);
                } catch (...) {
                    errors[static_cast<std::size_t>(t)] = std::current_exception();
                }
            });
        for (auto& th : pool) th.join();
        for (auto& e : errors)
            if (e) std::rethrow_exception(e);
    };
    auto all_done = [&] { return std::all_of(done.begin(), done.end(), [](unsigned char d) { return d != 0; }); };

    if constexpr (incremental_language_model_over<Model, Logit, Id>) {
        model.reset(B);
        std::vector<Id> step_tokens(static_cast<std::size_t>(B));
        for (index_t pos = 1; pos < T && !all_done(); ++pos) {
            for (index_t b = 0; b < B; ++b) step_tokens[static_cast<std::size_t>(b)] = buf[static_cast<std::size_t>(b * T + pos - 1)];
            model.step(make_view<const Id>(step_tokens.data(), {B}), logits_view);
            if (pos >= lmin) sample_step(pos);
        }
    } else {
        for (index_t pos = lmin; pos < T && !all_done(); ++pos) {
            const strided_view<const Id, 2> prefixes(buf.data(), {B, pos}, {T, 1});
            model.next_token_logits(prefixes, logits_view);
            sample_step(pos);
        }
    }
    for (index_t b = 0; b < B; ++b)
        for (index_t t = 0; t < T; ++t) out(b, t) = static_cast<OutId>(buf[static_cast<std::size_t>(b * T + t)]);
}

} // namespace sampling_detail

//! Batched autoregressive generation. Row b of `out_tokens` ([B, T] int32 or int64, any `tensor`) receives
//! `prompts[b]` followed by tokens sampled one at a time: at each position the model's next-token
//! logits go through `chain` (a `logits_processor`, its `ctx.history` = the row so far) and
//! `draw` (a `token_sampler`) with row b's stream `counter_rng{options.seed,
//! options.first_row + b}`. Without eos (default) every row is generated to length T, as in the
//! reference code's self-generated replay; with `options.eos` a row stops after emitting it and
//! the rest of the row is `options.pad`. An `incremental_language_model` is driven with
//! `reset(B)` and one `step` per position; any other model gets
//! `next_token_logits(prefixes [B, pos], ...)` for pos = shortest prompt .. T-1.
//! `Logit` is the logit type of the model (float by default). Prompts, `out_tokens` and the model
//! may each use int32 or int64 ids (the model is driven with `out_tokens`' type when it takes it).
//! Throws for a prompt row that is empty, longer than T or holds an id outside [0, V), for a
//! row count differing from B, and for the errors of the chain and draw.
//! This overload: one prompt token per row (e.g. the dataset-id token of the paper).
template <class Logit = float, class Model, class Out, class Chain = no_processing, class Draw = categorical>
void generate(Model& model, std::span<const std::int32_t> first_tokens, const generate_options& options,
              Out&& out_tokens, const Chain& chain = {}, const Draw& draw = {}) {
    std::vector<std::span<const std::int32_t>> p;
    p.reserve(first_tokens.size());
    for (std::size_t b = 0; b < first_tokens.size(); ++b) p.emplace_back(first_tokens.data() + b, 1);
    sampling_detail::generate_impl<Logit>(model, p, options, std::forward<Out>(out_tokens), chain, draw);
}

//! As above with int64 first tokens.
template <class Logit = float, class Model, class Out, class Chain = no_processing, class Draw = categorical>
void generate(Model& model, std::span<const std::int64_t> first_tokens, const generate_options& options,
              Out&& out_tokens, const Chain& chain = {}, const Draw& draw = {}) {
    std::vector<std::span<const std::int64_t>> p;
    p.reserve(first_tokens.size());
    for (std::size_t b = 0; b < first_tokens.size(); ++b) p.emplace_back(first_tokens.data() + b, 1);
    sampling_detail::generate_impl<Logit>(model, p, options, std::forward<Out>(out_tokens), chain, draw);
}

//! As above with prompts of any (different) lengths: row b starts with `prompts[b]` (int32 or
//! int64 ids).
template <class Logit = float, class Model, class Id, class Out, class Chain = no_processing, class Draw = categorical>
    requires token_id<Id>
void generate(Model& model, const std::vector<std::vector<Id>>& prompts, const generate_options& options,
              Out&& out_tokens, const Chain& chain = {}, const Draw& draw = {}) {
    std::vector<std::span<const Id>> p(prompts.begin(), prompts.end());
    sampling_detail::generate_impl<Logit>(model, p, options, std::forward<Out>(out_tokens), chain, draw);
}

} // namespace selfreplay
