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

//! Writes logits [B, V] (row b of `logits`) into rows b * T + position of `out` ([B * T, V]).
template <class Logit, class Out>
void record_logits(const std::vector<Logit>& logits, index_t B, index_t T, index_t position, Out& out) {
    const index_t V = out.extent(1);
    for (index_t b = 0; b < B; ++b)
        for (index_t v = 0; v < V; ++v) out(b * T + position, v) = logits[static_cast<std::size_t>(b * V + v)];
}

//! `generate`, and with `Record` = true also the model's raw logits at every position into
//! `out_logits` ([B * T, V]; see `generate_with_logits`).
template <class Logit, bool Record, class Model, class PromptId, class Out, class LogitsOut, class Chain, class Draw>
void generate_run(Model& model, const std::vector<std::span<const PromptId>>& prompts,
                  const generate_options& opt, Out&& out_tokens, LogitsOut&& out_logits, const Chain& chain,
                  const Draw& draw) {
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
    [[maybe_unused]] auto rec = [&] {
        if constexpr (Record) {
            auto r = view<2>(out_logits);
            static_assert(std::is_same_v<typename decltype(r)::element_type, Logit>,
                          "selfreplay::generate_with_logits: out_logits must be a mutable tensor of the model's Logit type");
            require(r.extent(0) == B * T && r.extent(1) == V, where, "out_logits", "has shape [", r.extent(0), ", ",
                    r.extent(1), "], expected [B * T, V] = [", B * T, ", ", V, "]");
            return r;
        } else {
            return 0;
        }
    }();
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

    // Recording runs the model over every position (T - 1 included, which no sample needs) and
    // does not stop when every row has ended.
    const auto go_on = [&](index_t pos) { return pos < T ? Record || !all_done() : Record && pos == T; };
    if constexpr (incremental_language_model_over<Model, Logit, Id>) {
        model.reset(B);
        std::vector<Id> step_tokens(static_cast<std::size_t>(B));
        for (index_t pos = 1; go_on(pos); ++pos) {
            for (index_t b = 0; b < B; ++b) step_tokens[static_cast<std::size_t>(b)] = buf[static_cast<std::size_t>(b * T + pos - 1)];
            model.step(make_view<const Id>(step_tokens.data(), {B}), logits_view);
            if constexpr (Record) record_logits(logits, B, T, pos - 1, rec);
            if (pos >= lmin && pos < T) sample_step(pos);
        }
    } else {
        for (index_t pos = Record ? 1 : lmin; go_on(pos); ++pos) {
            const strided_view<const Id, 2> prefixes(buf.data(), {B, pos}, {T, 1});
            model.next_token_logits(prefixes, logits_view);
            if constexpr (Record) record_logits(logits, B, T, pos - 1, rec);
            if (pos >= lmin && pos < T) sample_step(pos);
        }
    }
    for (index_t b = 0; b < B; ++b)
        for (index_t t = 0; t < T; ++t) out(b, t) = static_cast<OutId>(buf[static_cast<std::size_t>(b * T + t)]);
}

//! `generate`'s concept checks: one sentence naming the first argument that does not model its
//! concept (and nothing else: the generation itself is not instantiated), else the generation.
template <class Logit, bool Record, class Model, class PromptId, class Out, class LogitsOut, class Chain, class Draw>
void generate_impl(Model& model, const std::vector<std::span<const PromptId>>& prompts,
                   const generate_options& opt, Out&& out_tokens, LogitsOut&& out_logits, const Chain& chain,
                   const Draw& draw) {
    if constexpr (!language_model<Model, Logit>)
        static_assert(detail::always_false<Model>,
                      "selfreplay::generate: argument 'model' does not model selfreplay::language_model "
                      SELFREPLAY_LANGUAGE_MODEL_HINT);
    else if constexpr (!logits_processor<Chain, Logit>)
        static_assert(detail::always_false<Chain>,
                      "selfreplay::generate: argument 'chain' does not model selfreplay::logits_processor "
                      SELFREPLAY_PROCESSOR_HINT);
    else if constexpr (!token_sampler<Draw, Logit>)
        static_assert(detail::always_false<Draw>,
                      "selfreplay::generate: argument 'draw' does not model selfreplay::token_sampler "
                      SELFREPLAY_SAMPLER_HINT);
    else if constexpr (!tensor<Out>)
        static_assert(detail::always_false<Out>,
                      "selfreplay::generate: argument 'out_tokens' does not model selfreplay::tensor "
                      SELFREPLAY_TENSOR_HINT);
    else if constexpr (Record && !tensor<LogitsOut>)
        static_assert(detail::always_false<LogitsOut>,
                      "selfreplay::generate_with_logits: argument 'out_logits' does not model selfreplay::tensor "
                      SELFREPLAY_TENSOR_HINT);
    else
        generate_run<Logit, Record>(model, prompts, opt, std::forward<Out>(out_tokens),
                                    std::forward<LogitsOut>(out_logits), chain, draw);
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
    sampling_detail::generate_impl<Logit, false>(model, p, options, std::forward<Out>(out_tokens), 0, chain, draw);
}

//! As above with int64 first tokens.
template <class Logit = float, class Model, class Out, class Chain = no_processing, class Draw = categorical>
void generate(Model& model, std::span<const std::int64_t> first_tokens, const generate_options& options,
              Out&& out_tokens, const Chain& chain = {}, const Draw& draw = {}) {
    std::vector<std::span<const std::int64_t>> p;
    p.reserve(first_tokens.size());
    for (std::size_t b = 0; b < first_tokens.size(); ++b) p.emplace_back(first_tokens.data() + b, 1);
    sampling_detail::generate_impl<Logit, false>(model, p, options, std::forward<Out>(out_tokens), 0, chain, draw);
}

//! As above with prompts of any (different) lengths: row b starts with `prompts[b]` (int32 or
//! int64 ids).
template <class Logit = float, class Model, class Id, class Out, class Chain = no_processing, class Draw = categorical>
    requires token_id<Id>
void generate(Model& model, const std::vector<std::vector<Id>>& prompts, const generate_options& options,
              Out&& out_tokens, const Chain& chain = {}, const Draw& draw = {}) {
    std::vector<std::span<const Id>> p(prompts.begin(), prompts.end());
    sampling_detail::generate_impl<Logit, false>(model, p, options, std::forward<Out>(out_tokens), 0, chain, draw);
}

//! `generate` that also returns the model's raw next-token logits (before `chain`; Hugging Face's
//! `output_logits`): row b * T + t of `out_logits` ([B * T, V], any mutable `tensor` of `Logit`)
//! receives the logits the model gives after tokens 0..t of row b, for every t in [0, T), the
//! prompt positions and the last one (which no sample needs) included, and also after a row's eos
//! (on its padding). These are pi's logits on the generated rows as a teacher-forced forward pass
//! would give them (up to the model's own rounding between its incremental and full forms), laid
//! out as the objective's `reference_replay_logits`; the tokens equal `generate`'s. The model is
//! run over every position: one `step` (or `next_token_logits` call, from prefix length 1) more
//! than `generate` when no eos ends the rows early. Throws as `generate` does, and for
//! `out_logits` of another shape.
template <class Logit = float, class Model, class Id, class Out, class LogitsOut, class Chain = no_processing,
          class Draw = categorical>
    requires token_id<Id>
void generate_with_logits(Model& model, const std::vector<std::vector<Id>>& prompts, const generate_options& options,
                          Out&& out_tokens, LogitsOut&& out_logits, const Chain& chain = {}, const Draw& draw = {}) {
    std::vector<std::span<const Id>> p(prompts.begin(), prompts.end());
    sampling_detail::generate_impl<Logit, true>(model, p, options, std::forward<Out>(out_tokens),
                                                std::forward<LogitsOut>(out_logits), chain, draw);
}

} // namespace selfreplay
