#pragma once
//! \file
//! `self_generated`: replay sequences sampled from a frozen reference model (the paper's
//! self-generated replay), generated a few batches ahead of use.

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "selfreplay/error.hpp"
#include "selfreplay/replay/detail/apportion.hpp"
#include "selfreplay/replay/shard.hpp"
#include "selfreplay/replay/source.hpp"
#include "selfreplay/replay/state_io.hpp"
#include "selfreplay/sampling/draw.hpp"
#include "selfreplay/sampling/generate.hpp"
#include "selfreplay/sampling/language_model.hpp"
#include "selfreplay/sampling/processor.hpp"

namespace selfreplay {

//! Settings of `self_generated`.
struct self_generated_options {
    //! One prompt per previous task or dataset (the paper: the dataset-id token alone, e.g. {{0}});
    //! each non-empty, at most seq_len long, ids in [0, V).
    std::vector<std::vector<std::int32_t>> prompts{};
    //! Relative weight of each prompt (finite, >= 0, not all 0); empty: equal weights.
    std::vector<double> weights{};
    index_t batch_size = 0;     //!< replay sequences per batch (the reference code's `reg.batch_size`), >= 1
    index_t seq_len = 0;        //!< full sequence length T, prompt included, >= 1
    index_t buffer_batches = 1; //!< k: batches generated at once, ahead of use (`reg.buffer`), >= 1
    std::uint64_t seed = 0;     //!< key of every row's random stream
    int threads = 1;            //!< threads of the sampler (results do not depend on it)
    //! Data parallelism: only rows [begin, end) of every global batch of batch_size rows are
    //! generated and handed out (e.g. `shard_of(batch_size, rank, ranks)`); empty: every row.
    std::optional<row_shard> shard{};
    //! Keep pi's logits of the generated rows (`generate_with_logits`), so that `draw(out, logits)`
    //! hands them out with the rows: the reference logits of KL replay without a second forward
    //! pass of pi. Costs buffer_batches * batch_size * seq_len * V logits of memory.
    bool keep_logits = false;
};

//! Self-generated replay (Marek et al. 2026, reference code `sample_synthetic_batch`): sequences
//! sampled from a frozen reference model pi through a sampler chain (default: plain ancestral
//! sampling at temperature 1), starting from the prompts of the previous tasks, to full length T
//! (no end-of-sequence stop).
//!
//! Rows are numbered globally (row g = the g-th sequence this source ever produces) and row g is
//! sampled from the stream `counter_rng{seed, g}`; batch j holds rows j*B .. j*B+B-1 (B =
//! batch_size), so the stream of a row is a function of (seed, batch counter, row in batch).
//! Within each batch the rows are split over the prompts by weight (deterministic apportionment,
//! each prompt's cumulative share within one row of exact; rows of prompt 0 first). Generation
//! runs k = buffer_batches batches at a time in one call of `generate` (pi never changes, so it
//! can run ahead); `draw` hands out the next rows, generating the next k batches when none are
//! left. The reference model is held by reference: it must outlive the source and stay frozen.
//!
//! Sharded (`options.shard` = rows [begin, end) of each batch): every batch is apportioned over the
//! prompts as a whole, and only its rows [begin, end) are generated (global row g still from
//! stream g) and handed out, end - begin per batch. The shards of P sources with the same options
//! and shards `shard_of(batch_size, rank, P)` put together are, batch after batch, bit for bit the
//! rows of one unsharded source, for any P (given a model whose logits for a row do not depend on
//! the other rows it is called with).
//!
//! State (`save` / `restore`): the first row of the current block of k batches, the apportionment
//! credits at its start, and the rows of it handed out; restoring regenerates that same block
//! (same rows, same batching) and skips what was handed out, so a resumed run draws the very
//! batches an uninterrupted one would (restore into a source with the same shard).
template <class Model, class Chain = no_processing, class Draw = categorical, class Logit = float>
class self_generated {
    static_assert(language_model<Model, Logit>,
                  "selfreplay::self_generated: the model does not model selfreplay::language_model "
                  "(vocab_size() and next_token_logits(prefixes, logits))");

public:
    //! \param model  the frozen reference model pi (held by reference)
    //! \param options prompts, weights, sizes, seed (validated: throws `invalid_argument`)
    //! \param chain  logits processors applied before each draw (e.g. `temperature{...} | top_p{...}`)
    //! \param draw   the token sampler (default `categorical`: exact ancestral sampling)
    self_generated(Model& model, self_generated_options options, Chain chain = {}, Draw draw = {})
        : model_(&model), options_(std::move(options)), chain_(std::move(chain)), draw_(std::move(draw)) {
        const auto& o = options_;
        require(o.batch_size >= 1, "self_generated", "batch_size", "must be at least 1, got ", o.batch_size);
        require(o.seq_len >= 1, "self_generated", "seq_len", "must be at least 1, got ", o.seq_len);
        require(o.buffer_batches >= 1, "self_generated", "buffer_batches",
                "must be at least 1, got ", o.buffer_batches);
        require(o.threads >= 1, "self_generated", "threads", "must be at least 1, got ", o.threads);
        require(!o.prompts.empty(), "self_generated", "prompts", "must hold at least one prompt");
        const auto V = static_cast<index_t>(model.vocab_size());
        for (std::size_t p = 0; p < o.prompts.size(); ++p) {
            const auto& prompt = o.prompts[p];
            require(!prompt.empty() && static_cast<index_t>(prompt.size()) <= o.seq_len, "self_generated", "prompts",
                    "prompt ", p, " has length ", prompt.size(), "; prompts must hold 1 to seq_len = ",
                        o.seq_len, " tokens");
            for (std::size_t i = 0; i < prompt.size(); ++i)
                require(prompt[i] >= 0 && prompt[i] < V, "self_generated", "prompts",
                        "prompt ", p, " holds id ", prompt[i], " at position ", i,
                            ", outside the model's vocabulary [0, ", V, ")");
        }
        require(o.weights.empty() || o.weights.size() == o.prompts.size(), "self_generated", "weights",
                "must be empty or hold one weight per prompt (", o.prompts.size(), "), got ", o.weights.size());
        if (o.shard) detail::require_shard(*o.shard, o.batch_size, "self_generated", "shard");
        if (o.keep_logits) {
            const double kept = double(local_block_rows()) * double(o.seq_len) * double(V) * double(sizeof(Logit));
            require(kept <= double(std::numeric_limits<std::ptrdiff_t>::max() / 2), "self_generated", "keep_logits",
                    "would keep ", kept, " bytes of logits (buffer_batches * batch_size * seq_len * V), beyond any allocation");
        }
        check_policy(chain_); // the processors' parameters (a top_p's p, a temperature), here rather than at the first draw
        check_policy(draw_);
        split_ = detail::apportioner(o.weights.empty() ? std::vector<double>(o.prompts.size(), 1.0) : o.weights,
                                     "self_generated", "weights");
        credits_at_block_ = split_.credits();
    }

    //! Writes the next `out.extent(0)` replay sequences into `out` ([n, seq_len] int32 or int64 ids, any
    //! tensor; n = batch_size for one batch, or the shard's end - begin rows when sharded), generating
    //! further batches as needed.
    template <class X>
    void draw(X&& out) {
        draw_rows(out, [](index_t) {});
    }

    //! As `draw(out)`, and writes pi's logits on the rows handed out into `logits` ([n * seq_len, V],
    //! any mutable tensor of `Logit`): row r * seq_len + t holds the logits pi gave after tokens
    //! 0..t of row r of `out` (`generate_with_logits`), as the objective's
    //! `reference_replay_logits` wants them. Needs `options.keep_logits`.
    template <class X, class L>
    void draw(X&& out, L&& logits) {
        constexpr std::string_view where = "self_generated::draw";
        require(options_.keep_logits, where, "logits", "needs a source made with options.keep_logits = true");
        auto lv = view<2>(logits);
        static_assert(std::is_same_v<typename decltype(lv)::element_type, Logit>,
                      "selfreplay::self_generated::draw: logits must be a mutable tensor of the source's Logit type");
        const index_t T = options_.seq_len, V = static_cast<index_t>(model_->vocab_size());
        const index_t n = detail::token_rows(out, T, where, "out").extent(0);
        require(lv.extent(0) == n * T && lv.extent(1) == V, where, "logits", "has shape [", lv.extent(0), ", ",
                lv.extent(1), "], expected [rows * seq_len, V] = [", n * T, ", ", V, "]");
        draw_rows(out, [&](index_t r) {
            const Logit* src = logits_.data() + used_ * T * V;
            for (index_t t = 0; t < T; ++t)
                for (index_t v = 0; v < V; ++v) lv(r * T + t, v) = src[t * V + v];
        });
    }

    index_t seq_len() const noexcept { return options_.seq_len; }       //!< T
    index_t batch_size() const noexcept { return options_.batch_size; } //!< B
    const self_generated_options& options() const noexcept { return options_; } //!< the settings
    //! Global index of the next row `draw` hands out (rows handed out so far), also right after
    //! `restore`; when sharded, the position in the stream of this shard's rows (first row of the
    //! block plus rows handed out of it).
    std::uint64_t rows_drawn() const noexcept {
        return block_start_ + static_cast<std::uint64_t>(resume_block_ ? pending_skip_ : used_);
    }
    //! Number of blocks of k batches generated so far (one `generate` call each; k calls when sharded).
    std::uint64_t generate_calls() const noexcept { return generate_calls_; }

    //! Appends the state (position in the stream of rows, apportionment credits) to `w`.
    void save(state_writer& w) const {
        w.tag("self_generated");
        w.put<std::uint64_t>(options_.seed);
        w.put<std::int64_t>(options_.batch_size);
        w.put<std::int64_t>(options_.seq_len);
        w.put<std::int64_t>(options_.buffer_batches);
        w.put<std::uint64_t>(block_start_);
        w.put<std::int64_t>(valid_ ? used_ : 0);
        w.put<std::uint8_t>(valid_ ? 1 : 0);
        w.put_array(credits_at_block_);
    }

    //! A record read and validated by `stage` (see `stageable`).
    struct staged_state {
        std::uint64_t block_start = 0; //!< first row of the block being consumed
        index_t used = 0;              //!< rows of that block already drawn
        bool valid = false;            //!< whether a block is held
        std::vector<double> credits;          //!< the apportionment credits
        std::vector<double> credits_at_block; //!< the same values again: commit does not allocate
    };

    //! Reads and validates a state saved by `save` from a source with the same settings (and
    //! model), without changing this one. Throws `invalid_argument` when the record does not fit
    //! them or could not come from a run: other settings; a block start that is not a multiple of
    //! batch_size * buffer_batches or is beyond 2^61 - 1; rows used outside [0, block rows] (0
    //! when no block is held); a block flag other than 0 or 1; credits that `apportioner` refuses.
    staged_state stage(state_reader& r) const {
        r.expect_tag("self_generated");
        const auto seed = r.get<std::uint64_t>("seed");
        const auto batch = r.get<std::int64_t>("batch_size");
        const auto len = r.get<std::int64_t>("seq_len");
        const auto k = r.get<std::int64_t>("buffer_batches");
        if (seed != options_.seed || batch != options_.batch_size || len != options_.seq_len || k != options_.buffer_batches)
            r.fail("holds a self_generated source with other settings (seed " + std::to_string(seed) + ", batch_size " +
                   std::to_string(batch) + ", seq_len " + std::to_string(len) + ", buffer_batches " + std::to_string(k) + ")");
        staged_state s;
        s.block_start = r.get_counter("block start");
        const auto used = r.get<std::int64_t>("rows used");
        const auto valid = r.get<std::uint8_t>("block valid");
        s.credits = r.get_array<double>("credits");
        if (s.block_start % static_cast<std::uint64_t>(block_rows()) != 0)
            r.fail("holds a block start of " + std::to_string(s.block_start) + ", not a multiple of the " +
                   std::to_string(block_rows()) + " rows of a block");
        if (valid > 1) r.fail("holds a block flag of " + std::to_string(valid) + " (0 or 1 expected)");
        if (used < 0 || used > local_block_rows() || (valid == 0 && used != 0))
            r.fail("holds an inconsistent position in the block (" + std::to_string(used) + " rows used)");
        if (const std::string why = split_.invalid_credits(s.credits); !why.empty()) r.fail(why);
        s.used = static_cast<index_t>(used);
        s.valid = valid != 0;
        s.credits_at_block = s.credits;
        return s;
    }

    //! Installs a record staged by `stage`: the next `draw` regenerates the block being consumed
    //! when the state was saved and skips the rows already handed out.
    void commit(staged_state&& s) noexcept {
        credits_at_block_ = std::move(s.credits_at_block);
        split_.set_credits(std::move(s.credits));
        block_start_ = s.block_start;
        valid_ = false;
        pending_skip_ = s.valid ? s.used : 0;
        resume_block_ = s.valid;
        used_ = 0;
    }

    //! `commit(stage(r))`: throws as `stage` does, and then leaves this source unchanged.
    void restore(state_reader& r) { commit(stage(r)); }

private:
    //! Hands out rows into `out`, generating blocks as needed; `also(r)` runs for row r of `out`
    //! before the block position moves past it.
    template <class X, class F>
    void draw_rows(X& out, F&& also) {
        const auto o = detail::token_rows(out, options_.seq_len, "self_generated::draw", "out");
        const index_t T = options_.seq_len;
        require(o.extent(0) == 0 || local_block_rows() > 0, "self_generated::draw", "out", "asks for ", o.extent(0),
                " rows from a source whose shard holds no row");
        for (index_t r = 0; r < o.extent(0); ++r) {
            while (!valid_ || used_ == local_block_rows()) next_block();
            detail::copy_row_in(block_.data() + used_ * T, o, r);
            also(r);
            ++used_;
        }
    }

    //! `generate` (or `generate_with_logits` into `logits` [rows * T, V]) of `prompts` into `tokens`.
    void generate_rows(const std::vector<std::vector<std::int32_t>>& prompts, std::uint64_t first_row,
                       model_token_t<Model, Logit>* tokens, Logit* logits) {
        const auto n = static_cast<index_t>(prompts.size());
        const index_t T = options_.seq_len;
        const generate_options g{.seed = options_.seed, .first_row = first_row, .threads = options_.threads};
        if (logits)
            generate_with_logits<Logit>(*model_, prompts, g, make_view(tokens, {n, T}),
                                        make_view(logits, {n * T, static_cast<index_t>(model_->vocab_size())}), chain_, draw_);
        else
            generate<Logit>(*model_, prompts, g, make_view(tokens, {n, T}), chain_, draw_);
    }

    index_t block_rows() const noexcept { return options_.batch_size * options_.buffer_batches; }
    row_shard shard() const noexcept { return options_.shard.value_or(row_shard{0, options_.batch_size}); }
    //! Rows of a block this source hands out (all of them unless sharded).
    index_t local_block_rows() const noexcept { return shard().rows() * options_.buffer_batches; }

    //! Generates the block of k batches following the current one (or, after `restore`, the block
    //! being consumed when the state was saved, skipping the rows already handed out).
    void next_block() {
        if (valid_) {
            block_start_ += static_cast<std::uint64_t>(block_rows());
            credits_at_block_ = split_.credits();
        } else if (!resume_block_) {
            credits_at_block_ = split_.credits();
        }
        const index_t B = options_.batch_size, T = options_.seq_len, k = options_.buffer_batches;
        const row_shard part = shard();
        const index_t m = part.rows(), n = m * k;
        std::vector<std::vector<std::int32_t>> prompts; // the prompts of this shard's rows, batch after batch
        prompts.reserve(static_cast<std::size_t>(n));
        split_.set_credits(credits_at_block_);
        for (index_t j = 0; j < k; ++j) { // apportioned on the global batch, then cut to the shard
            const auto counts = split_.next(B);
            index_t row = 0;
            for (std::size_t p = 0; p < counts.size(); ++p)
                for (index_t c = 0; c < counts[p]; ++c, ++row)
                    if (row >= part.begin && row < part.end) prompts.push_back(options_.prompts[p]);
        }
        block_.assign(static_cast<std::size_t>(n * T), 0);
        const index_t V = static_cast<index_t>(model_->vocab_size());
        if (options_.keep_logits) logits_.resize(static_cast<std::size_t>(n * T * V));
        Logit* const logits = options_.keep_logits ? logits_.data() : nullptr;
        if (m == B) {
            generate_rows(prompts, block_start_, block_.data(), logits);
        } else if (m > 0) { // one call per batch: the shard's rows of batch j are global rows j*B + [begin, end)
            for (index_t j = 0; j < k; ++j) {
                const std::vector<std::vector<std::int32_t>> batch(prompts.begin() + j * m, prompts.begin() + (j + 1) * m);
                generate_rows(batch, block_start_ + static_cast<std::uint64_t>(j * B + part.begin), block_.data() + j * m * T,
                              logits ? logits + j * m * T * V : nullptr);
            }
        }
        ++generate_calls_;
        valid_ = true;
        used_ = resume_block_ ? pending_skip_ : 0;
        resume_block_ = false;
        pending_skip_ = 0;
    }

    Model* model_;
    self_generated_options options_;
    Chain chain_;
    Draw draw_;
    detail::apportioner split_;
    std::vector<double> credits_at_block_;
    std::vector<model_token_t<Model, Logit>> block_; // ids of the type the model takes
    std::vector<Logit> logits_;                       // with keep_logits: pi's logits on block_, [rows * T, V]
    std::uint64_t block_start_ = 0; // global index of the block's first row
    index_t used_ = 0;              // rows of the block handed out
    bool valid_ = false;            // block_ holds the block starting at block_start_
    bool resume_block_ = false;     // after restore: regenerate the block at block_start_ and skip
    index_t pending_skip_ = 0;
    std::uint64_t generate_calls_ = 0;
};

} // namespace selfreplay
