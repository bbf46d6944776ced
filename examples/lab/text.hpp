#pragma once
//! \file
//! The lab's text experiment (`selfreplay-lab text`, docs/lab.md "Text experiment"): the
//! paper's English -> Spanish finetuning at character level, on the tiny transformer of
//! model.hpp, with replay through selfreplay's public API exactly as a trainer would use it:
//! `self_generated` (samples of the frozen pretrained model pi prompted with the English id, via
//! `generate`), a `replay_source` over stored English text, the mixers `no_replay` / `ntp_pre` /
//! `kl_pre` / `replace` through `mix_batch` + `evaluate_objective` (loss and logit gradients),
//! `warmup_constant` / `warmup_cosine` schedules, and the metrics `mean_loss`, `forgetting`,
//! `mean_kl`, `weight_distance_ratio`, `steps_to_target`, `compute_multiplier` and `report`.
//!
//! Findings reproduced: (1) replay, real or self-generated, keeps the English loss nearly flat
//! while finetuning on Spanish; (3) without replay a lower learning rate forgets less but needs
//! more steps to reach a target Spanish loss, while replay at the high learning rate reaches it
//! fast and forgets little (the compute multiplier).

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <selfreplay/adapters/eigen.hpp>
#include <selfreplay/losses.hpp>
#include <selfreplay/metrics.hpp>
#include <selfreplay/replay.hpp>
#include <selfreplay/replay/self_generated.hpp>
#include <selfreplay/sampling/generate.hpp>
#include <selfreplay/schedules/basic.hpp>
#include <selfreplay/schedules/cosine.hpp>

#include "checkpoint.hpp"
#include "cli.hpp"
#include "data_parallel.hpp"
#include "lm_adapter.hpp"
#include "model.hpp"
#include "text_data.hpp"

namespace lab::text {

//! Settings of the text experiment (every field is a flag of `selfreplay-lab text`).
struct text_options {
    std::vector<std::string> english, spanish;  //!< input files (empty: Debian fortunes defaults)
    std::uint64_t seed = 1;
    int seq_len = 48;              //!< T, dataset id included
    int batch = 32;                //!< training sequences per step
    int replay_batch = 32;         //!< replay sequences per step (ntp_pre, kl_pre; replace uses `batch`)
    int buffer_batches = 8;        //!< self-generated replay batches sampled at a time
    int pretrain_steps = 800;
    float pretrain_lr = 3e-3f;
    int steps = 200;               //!< finetuning steps of the strategy comparison
    float lr_high = 3e-3f;
    float lr_low = 3e-4f;
    int warmup = 20;               //!< finetuning warm-up steps (pretraining: 5% of its steps)
    float weight_decay = 0.02f;
    float c = 10.f;                //!< coefficient of ntp_pre / kl_pre
    std::vector<double> lr_sweep{1.0, 0.3, 0.1, 0.03};     //!< multiples of lr_high, no replay
    std::vector<double> fraction_sweep{0.125, 0.25, 0.5};  //!< self-generated `replace` fractions at lr_high
    int sweep_max_steps = 800;     //!< cap of every run to the target
    double target = 0;             //!< target Spanish loss (0: auto, see `target_progress`)
    double target_progress = 0.8;  //!< auto target: this share of the drop no-replay at lr_high reaches in `steps`
    int eval_every = 25;
    int eval_size = 128;           //!< held-out sequences per language
    double valid_fraction = 0.1;   //!< share of entries held out
    long min_char_count = 20;      //!< rarer characters map to UNK
    int threads = 2;               //!< threads of pretraining's two shards, then finetuning runs trained at once
    model_config model{.vocab = 0, .max_len = 48, .width = 48, .layers = 2, .heads = 4, .ff = 192};
    std::string out = "results";
    bool quiet = false;
    bool tiny = false;             //!< smoke-test sizes (set by --tiny before other flags apply)
    checkpoint::settings checkpoints;  //!< --checkpoint, --checkpoint-every, --resume
};

enum class source_kind { none, real, self };
using any_mixer = std::variant<selfreplay::no_replay, selfreplay::ntp_pre<>, selfreplay::kl_pre<>, selfreplay::replace<>>;

//! One finetuning run.
struct run_spec {
    std::string name;      //!< e.g. "self-kl"
    std::string group;     //!< "strategy", "lr-sweep" or "replay-sweep"
    source_kind source = source_kind::none;
    any_mixer mixer = selfreplay::no_replay{};
    double lr = 0;
    int max_steps = 0;
    bool stop_at_target = false;

    const char* source_name() const { return source == source_kind::none ? "none" : source == source_kind::real ? "real" : "self-generated"; }
    std::string mixer_name() const {
        return std::visit([](const auto& m) -> std::string {
            using M = std::decay_t<decltype(m)>;
            if constexpr (std::is_same_v<M, selfreplay::no_replay>) return "none";
            else if constexpr (std::is_same_v<M, selfreplay::ntp_pre<>>) return "ntp_pre";
            else if constexpr (std::is_same_v<M, selfreplay::kl_pre<>>) return "kl_pre";
            else return "replace";
        }, mixer);
    }
    //! c of ntp_pre / kl_pre, the fraction of replace, 0 without replay.
    double strength() const {
        return std::visit([](const auto& m) -> double {
            using M = std::decay_t<decltype(m)>;
            if constexpr (std::is_same_v<M, selfreplay::no_replay>) return 0;
            else if constexpr (std::is_same_v<M, selfreplay::replace<>>) return m.fraction;
            else return m.coefficient;
        }, mixer);
    }
};

//! What one run measured.
struct run_result {
    run_spec spec;
    std::vector<double> step, valid_ntp, prev_ntp;  //!< the curve (step 0 = before finetuning)
    double forgetting = 0;   //!< prev_ntp(end) - prev_ntp(pi)
    double prev_kl = 0;      //!< KL(pi || theta) on held-out English at the end
    double weight_ratio = 0; //!< ||theta - pi|| / ||pi - theta_0||
    std::optional<double> steps_to_target;  //!< interpolated between evaluations (`crossing::interpolate`)
    double forgetting_at_target = NAN;      //!< prev_ntp increase, interpolated at the same point
    double seconds = 0;
    int steps_run = 0;
};

//! Held-out data and the frozen pretrained model, shared (read-only) by all runs.
struct shared_state {
    const text_options* o;
    const corpus* en;
    const corpus* es;
    std::vector<std::int32_t> eval_en{}, eval_es{};  //!< [eval_size, T]
    transformer theta0{model_config{.vocab = 2}};  //!< initialisation (for the weight ratio)
    transformer pi{model_config{.vocab = 2}};      //!< the pretrained model
    matrix pi_eval_en_logits{};                    //!< pi's logits on eval_en (for prev_kl)
    double prev_before = 0, valid_before = 0;
};

//! Mean next-token loss per predicted character (nats; `reduction::mean_counted`, the dataset
//! id's own prediction of the first character included) of `m` on a held-out set, accumulated
//! with `selfreplay::mean_loss`. When `pi_logits` is given, also KL(pi || m) into `kl`.
inline double eval_ntp(const transformer& m, const std::vector<std::int32_t>& set, int T, const matrix* pi_logits = nullptr,
                       double* kl = nullptr) {
    const int n = int(set.size() / std::size_t(T)), chunk = 32;
    selfreplay::mean_loss loss;
    selfreplay::mean_kl klm;
    matrix logits;
    for (int b0 = 0; b0 < n; b0 += chunk) {
        const int rows = std::min(chunk, n - b0);
        const std::int32_t* tok = set.data() + std::size_t(b0) * T;
        m.forward(tok, rows, T, logits);
        const auto r = selfreplay::next_token_loss(logits, selfreplay::make_view(tok, {rows, T}),
                                                   {.reduction = selfreplay::reduction::sum});
        loss.add_sum(r.value, std::int64_t(rows) * (T - 1));
        if (pi_logits) {
            const auto k = selfreplay::kl_divergence(logits, pi_logits->middleRows(std::ptrdiff_t(b0) * T, std::ptrdiff_t(rows) * T),
                                                     {.reduction = selfreplay::reduction::sum, .sequence_length = T});
            klm.add_sum(k.value, std::int64_t(rows) * (T - 1));
        }
    }
    if (kl) *kl = klm.value();
    return loss.value();
}

//! Trains `model` with AdamW on one step's objective: draws the training batch from `train`
//! and (when the mixer needs one) a replay batch from `replay`, mixes, runs theta (and pi for
//! kl_pre), evaluates the objective with its logit gradients and backpropagates.
class step_runner {
public:
    step_runner(const text_options& o, const transformer* pi) : o_(o), pi_(pi) {}

    template <class Mixer, class Train, class Replay>
    double step(transformer& model, adamw& opt, const Mixer& mixer, std::int64_t s, Train& train, Replay* replay, double lr) {
        const int T = o_.seq_len, B = o_.batch, V = model.vocab_size();
        x_.resize(std::size_t(B) * T);
        train.draw(selfreplay::make_view(x_.data(), {B, T}));
        int R = 0;
        if constexpr (Mixer::needs_replay_batch) {
            R = std::is_same_v<Mixer, selfreplay::replace<>> ? B : o_.replay_batch;
            x_.resize(std::size_t(B + R) * T);
            replay->draw(selfreplay::make_view(x_.data() + std::size_t(B) * T, {R, T}));
            selfreplay::mix_batch(mixer, s, selfreplay::make_view(x_.data(), {B, T}),
                                  selfreplay::make_view<const std::int32_t>(x_.data() + std::size_t(B) * T, {R, T}));
        }
        constexpr bool theta_on_replay = Mixer::needs_student_replay_logits;
        const int rows = theta_on_replay ? B + R : B;
        model.forward(x_.data(), rows, T, logits_, &cache_);
        dlogits_.resize(logits_.rows(), V);
        const std::ptrdiff_t nx = std::ptrdiff_t(B) * T, nr = std::ptrdiff_t(R) * T;
        selfreplay::objective_inputs<float> in{.train_tokens = selfreplay::make_view<const std::int32_t>(x_.data(), {B, T}),
                                               .student_train_logits = selfreplay::make_view<const float>(logits_.data(), {nx, V})};
        selfreplay::objective_gradients<float> g{.train = selfreplay::make_view(dlogits_.data(), {nx, V})};
        if constexpr (theta_on_replay) {
            in.replay_tokens = selfreplay::make_view<const std::int32_t>(x_.data() + nx, {R, T});
            in.student_replay_logits = selfreplay::make_view<const float>(logits_.data() + nx * V, {nr, V});
            g.replay = selfreplay::make_view(dlogits_.data() + nx * V, {nr, V});
        }
        if constexpr (Mixer::needs_reference_replay_logits) {
            pi_->forward(x_.data() + nx, R, T, pi_logits_);
            in.reference_replay_logits = selfreplay::make_view<const float>(pi_logits_.data(), {nr, V});
        }
        const auto res = selfreplay::evaluate_objective(mixer, s, in, g);
        grad_.assign(model.num_params(), 0.f);
        model.backward(cache_, dlogits_, grad_);
        opt.update(model, grad_, float(lr));
        return res.total;
    }

private:
    const text_options& o_;
    const transformer* pi_;
    std::vector<std::int32_t> x_;
    std::vector<float> grad_;
    matrix logits_, dlogits_, pi_logits_;
    forward_cache cache_;
};

using progress_fn = std::function<void(const std::string&)>;

inline std::string fixed(double v, int prec = 3) {
    if (!std::isfinite(v)) return "null";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", prec, v);
    return buf;
}

//! 64-bit FNV-1a hash of `s` (Fowler-Noll-Vo): the same value on every platform and standard
//! library, unlike std::hash, so that run seeds derived from run names are portable.
inline std::uint64_t fnv1a(std::string_view s) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
    return h;
}

//! Finetunes a copy of pi on Spanish under `spec`; `target` > 0 records (and with
//! `stop_at_target` stops at) the first evaluation with valid_ntp <= target.
inline run_result finetune(const shared_state& sh, const run_spec& spec, double target, const progress_fn& progress) {
    const auto& o = *sh.o;
    const auto t0 = std::chrono::steady_clock::now();
    run_result r;
    r.spec = spec;
    transformer model = sh.pi;
    adamw opt;
    opt.weight_decay = o.weight_decay;
    opt.reset(model.num_params());
    const std::uint64_t salt = fnv1a(spec.group + "/" + spec.name) & 0xFFFFFFFFull;
    window_source train{.stream = &sh.es->train, .dataset_id = SPANISH, .length = o.seq_len, .seed = o.seed, .salt = 1000};
    window_source real{.stream = &sh.en->train, .dataset_id = ENGLISH, .length = o.seq_len, .seed = o.seed, .salt = 2000 + salt};
    lm_adapter pi_lm(sh.pi);
    const int rows_per_batch = std::holds_alternative<selfreplay::replace<>>(spec.mixer) ? o.batch : o.replay_batch;
    selfreplay::self_generated<lm_adapter> self(
        pi_lm, {.prompts = {{ENGLISH}}, .batch_size = rows_per_batch, .seq_len = o.seq_len, .buffer_batches = o.buffer_batches,
                .seed = o.seed ^ (0x5e1f0000ull + salt)});
    step_runner runner(o, &sh.pi);
    const selfreplay::warmup_constant schedule{.peak = spec.lr, .warmup_steps = o.warmup};
    schedule.check();
    auto record = [&](int s) {
        r.step.push_back(s);
        r.valid_ntp.push_back(eval_ntp(model, sh.eval_es, o.seq_len));
        r.prev_ntp.push_back(eval_ntp(model, sh.eval_en, o.seq_len));
        if (!o.quiet && s > 0)
            progress("[" + spec.group + " " + spec.name + "] step " + std::to_string(s) + "/" + std::to_string(spec.max_steps) +
                     " es " + fixed(r.valid_ntp.back()) + " en " + fixed(r.prev_ntp.back()) + " (+" +
                     fixed(r.prev_ntp.back() - sh.prev_before) + ")");
        if (target > 0 && !r.steps_to_target && r.valid_ntp.back() <= target) {
            r.steps_to_target = s;
            r.forgetting_at_target = r.prev_ntp.back() - sh.prev_before;
        }
    };
    r.step.push_back(0);
    r.valid_ntp.push_back(sh.valid_before);
    r.prev_ntp.push_back(sh.prev_before);
    int s = 0;
    double seconds_before = 0;  // time spent before the checkpoint resumed from
    std::optional<checkpoint::slots> ck;
    long since_checkpoint = 0;
    const auto save = [&](bool done) {
        auto e = checkpoint::run_envelope<run_result>(o, spec, target, model.num_params());
        auto& b = e.body;
        b = {e.body.params, e.body.max_steps, done, s, {model.params().begin(), model.params().end()}, opt, train.drawn, real.drawn,
             checkpoint::nested_record(self), r};
        b.result.seconds = seconds_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        ck->save(e);
        since_checkpoint = 0;
    };
    if (o.checkpoints.enabled()) {
        ck.emplace(o.checkpoints.dir, checkpoint::run_stem(spec.group, spec.name));
        auto e = checkpoint::run_envelope<run_result>(o, spec, target, model.num_params());
        if (o.checkpoints.resume && ck->load(e, std::cerr)) {
            auto& b = e.body;
            progress("[" + spec.group + " " + spec.name + "] resuming from '" + ck->path(int(e.sequence % 2)) + "' at step " +
                     std::to_string(b.step) + (b.done ? " (finished)" : ""));
            b.result.spec = spec;
            if (b.done) return b.result;
            std::copy(b.model.begin(), b.model.end(), model.params().begin());
            opt.m = std::move(b.opt.m);
            opt.v = std::move(b.opt.v);
            opt.t = b.opt.t;
            train.drawn = b.train_drawn;
            real.drawn = b.real_drawn;
            checkpoint::restore_nested(b.self, ck->path(int(e.sequence % 2)), self);
            seconds_before = b.result.seconds;
            r = std::move(b.result);
            s = int(b.step);
        }
    }
    while (s < spec.max_steps && !(spec.stop_at_target && r.steps_to_target)) {
        const double lr = schedule(s);
        std::visit([&](const auto& mixer) {
            using M = std::decay_t<decltype(mixer)>;
            if constexpr (!M::needs_replay_batch) runner.step(model, opt, mixer, s, train, static_cast<window_source*>(nullptr), lr);
            else if (spec.source == source_kind::real) runner.step(model, opt, mixer, s, train, &real, lr);
            else runner.step(model, opt, mixer, s, train, &self, lr);
        }, spec.mixer);
        ++s;
        if (s % o.eval_every == 0 || s == spec.max_steps) record(s);
        if (ck && ++since_checkpoint >= o.checkpoints.every && s < spec.max_steps && !(spec.stop_at_target && r.steps_to_target))
            save(false);
    }
    r.steps_run = s;
    // the run's end: forgetting through the metrics module, KL to pi, how far the weights moved
    selfreplay::forgetting f(sh.prev_before);
    f.add_sum(r.prev_ntp.back() * double(sh.eval_en.size() / std::size_t(o.seq_len) * std::size_t(o.seq_len - 1)),
              std::int64_t(sh.eval_en.size() / std::size_t(o.seq_len) * std::size_t(o.seq_len - 1)));
    r.forgetting = f.value();
    eval_ntp(model, sh.eval_en, o.seq_len, &sh.pi_eval_en_logits, &r.prev_kl);
    selfreplay::weight_distance_ratio w;
    w.add(std::span<const float>(model.params()), std::span<const float>(sh.pi.params()), std::span<const float>(sh.theta0.params()));
    r.weight_ratio = w.value();
    if (target > 0 && r.steps_to_target) {  // the crossing, interpolated between the evaluations around it
        r.steps_to_target = selfreplay::steps_to_target({r.step, r.valid_ntp}, target, selfreplay::crossing::interpolate);
        std::size_t i = 0;
        while (r.valid_ntp[i] > target) ++i;
        const double w = i == 0 ? 1.0 : (*r.steps_to_target - r.step[i - 1]) / (r.step[i] - r.step[i - 1]);
        r.forgetting_at_target = (i == 0 ? r.prev_ntp[0] : (1 - w) * r.prev_ntp[i - 1] + w * r.prev_ntp[i]) - sh.prev_before;
    }
    r.seconds = seconds_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (ck) save(true);  // a resumed run takes the finished result from here
    return r;
}

//! Runs `specs` on `threads` workers (each run single-threaded; results do not depend on it).
inline std::vector<run_result> run_all(const shared_state& sh, const std::vector<run_spec>& specs, double target, int threads,
                                       const progress_fn& progress) {
    std::vector<run_result> out(specs.size());
    parallel_for(int(specs.size()), threads, [&](int i) { out[std::size_t(i)] = finetune(sh, specs[std::size_t(i)], target, progress); });
    return out;
}

//! Pretrains on English with NTP (warm-up then cosine decay to 0) from `model`'s initialisation.
//! Each batch is split into two shards whose forward/backward passes run on `threads` threads
//! (`data_parallel`: the result does not depend on the thread count).
inline void pretrain(transformer& model, const text_options& o, const corpus& en, const progress_fn& progress,
                     const std::vector<std::int32_t>& eval_en) {
    adamw opt;
    opt.weight_decay = o.weight_decay;
    opt.reset(model.num_params());
    window_source train{.stream = &en.train, .dataset_id = ENGLISH, .length = o.seq_len, .seed = o.seed, .salt = 1};
    const selfreplay::warmup_cosine schedule{.peak = o.pretrain_lr, .warmup_steps = std::max(1, o.pretrain_steps / 20),
                                             .decay_steps = o.pretrain_steps};
    schedule.check();
    const int T = o.seq_len, B = o.batch, V = model.vocab_size();
    data_parallel passes(model, {.shards = 2, .threads = o.threads});
    std::vector<std::int32_t> x(std::size_t(B) * T);
    std::vector<float> grad(model.num_params());
    matrix logits, dlogits;
    double acc = 0;
    int n = 0;
    int s0 = 0;
    std::optional<checkpoint::slots> ck;
    long since_checkpoint = 0;
    const auto save = [&](int step) {
        auto e = checkpoint::pretrain_envelope(o, model.num_params());
        e.body = {e.body.params, e.body.steps, step, train.drawn, acc, n, {model.params().begin(), model.params().end()}, opt};
        ck->save(e);
        since_checkpoint = 0;
    };
    if (o.checkpoints.enabled()) {
        ck.emplace(o.checkpoints.dir, "text-pretrain");
        auto e = checkpoint::pretrain_envelope(o, model.num_params());
        if (o.checkpoints.resume && ck->load(e, std::cerr)) {
            auto& b = e.body;
            progress("[pretrain] resuming from '" + ck->path(int(e.sequence % 2)) + "' at step " + std::to_string(b.step));
            std::copy(b.model.begin(), b.model.end(), model.params().begin());
            opt.m = std::move(b.opt.m);
            opt.v = std::move(b.opt.v);
            opt.t = b.opt.t;
            train.drawn = b.drawn;
            acc = b.loss_acc;
            n = int(b.loss_n);
            s0 = int(b.step);
        }
    }
    for (int s = s0; s < o.pretrain_steps; ++s) {
        const auto tokens = selfreplay::make_view(x.data(), {B, T});
        train.draw(tokens);
        passes.forward(x.data(), B, T, logits);
        dlogits.resize(logits.rows(), V);
        const selfreplay::objective_inputs<float> in{.train_tokens = tokens, .student_train_logits = selfreplay::view(std::as_const(logits))};
        acc += selfreplay::evaluate_objective(selfreplay::no_replay{}, 0, in, {.train = selfreplay::view(dlogits)}, {.threads = o.threads}).total;
        std::fill(grad.begin(), grad.end(), 0.f);
        passes.backward(dlogits, grad);
        opt.update(model, grad, float(schedule(s)));
        ++n;
        if (!o.quiet && ((s + 1) % std::max(1, o.pretrain_steps / 6) == 0 || s + 1 == o.pretrain_steps)) {
            progress("[pretrain] step " + std::to_string(s + 1) + "/" + std::to_string(o.pretrain_steps) + " train " + fixed(acc / n) +
                     " en valid " + fixed(eval_ntp(model, eval_en, o.seq_len)));
            acc = 0;
            n = 0;
        }
        if (ck && ++since_checkpoint >= o.checkpoints.every && s + 1 < o.pretrain_steps) save(s + 1);
    }
    if (ck && s0 < o.pretrain_steps) save(o.pretrain_steps);  // a resumed run skips the finished pretraining
}

// ---------------------------------------------------------------------------------------------
// command line, reports

inline const char* text_description = R"(selfreplay-lab text [flags]

English -> Spanish finetuning at character level (docs/lab.md, "Text experiment"). Pretrains a
tiny transformer on English, then finetunes it on Spanish with: no replay at a high and at a low
learning rate, real replay (stored English text) and self-generated replay (samples of the frozen
pretrained model prompted with the English id), each with next-token (ntp_pre) and KL (kl_pre)
replay; then runs a learning-rate sweep without replay and a replay-fraction sweep (self-generated,
`replace`) at the high learning rate to a target Spanish loss. Writes <out>/text.json and
<out>/text.svg (forgetting vs steps to the target).)";

//! Smoke-test sizes (`--tiny`): seconds instead of a minute.
inline void apply_tiny(text_options& o) {
    o.tiny = true;
    o.seq_len = 16;
    o.batch = 8;
    o.replay_batch = 8;
    o.buffer_batches = 2;
    o.pretrain_steps = 40;
    o.steps = 20;
    o.warmup = 2;
    o.lr_sweep = {1.0, 0.1};
    o.fraction_sweep = {0.5};
    o.sweep_max_steps = 40;
    o.eval_every = 10;
    o.eval_size = 16;
    o.model.width = 16;
    o.model.layers = 1;
    o.model.heads = 2;
    o.model.ff = 32;
}

//! Parses the text mode's command line (`argv[0]` is the word "text") into `o`; returns an exit
//! code when the program must stop (--help, a bad flag).
inline std::optional<int> parse_text_args(int argc, const char* const* argv, text_options& o) {
    using cli::ranged;
    for (int i = 1; i < argc; ++i)  // --tiny sets the sizes that any other flag then overrides
        if (std::string(argv[i]) == "--tiny") apply_tiny(o);
    CLI::App app(text_description, "selfreplay-lab text");
    app.add_option("--english", o.english,
                   "English text (strfile fortunes or plain text); repeat for several files [Debian fortunes: fortunes "
                   "literature humorists wisdom people politics science work]");
    app.add_option("--spanish", o.spanish, "Spanish text; repeat for several [every /usr/share/games/fortunes/es/*.fortunes]");
    ranged<std::uint64_t>(app, "--seed", o.seed, 0, std::uint64_t(1) << 62, "random seed of initialisation, data order and sampling");
    ranged(app, "--seq-len", o.seq_len, 2, 4096, "sequence length T, the dataset-id token included");
    ranged(app, "--batch", o.batch, 1, 65536, "training sequences per step");
    ranged(app, "--replay-batch", o.replay_batch, 1, 65536, "replay sequences per step for ntp_pre / kl_pre");
    ranged(app, "--buffer-batches", o.buffer_batches, 1, 1024, "self-generated replay batches sampled from pi at a time");
    ranged(app, "--pretrain-steps", o.pretrain_steps, 1, 10000000, "English pretraining steps (warm-up + cosine)");
    ranged(app, "--pretrain-lr", o.pretrain_lr, 1e-9f, 10.f, "peak pretraining learning rate");
    ranged(app, "--steps", o.steps, 1, 10000000, "finetuning steps of the strategy comparison");
    ranged(app, "--lr-high", o.lr_high, 1e-9f, 10.f, "high finetuning learning rate");
    ranged(app, "--lr-low", o.lr_low, 1e-9f, 10.f, "low finetuning learning rate");
    ranged(app, "--warmup", o.warmup, 0, 10000000, "finetuning warm-up steps");
    ranged(app, "--weight-decay", o.weight_decay, 0.f, 10.f, "AdamW decoupled weight decay");
    ranged(app, "--c", o.c, 0.f, 1e6f, "replay coefficient of ntp_pre / kl_pre");
    cli::ranged_list(app, "--lr-sweep", o.lr_sweep, 1e-6, 100.0, "no-replay learning rates, as multiples of --lr-high");
    cli::ranged_list(app, "--fraction-sweep", o.fraction_sweep, 1e-6, 1.0, "self-generated replace fractions at --lr-high");
    ranged(app, "--sweep-max-steps", o.sweep_max_steps, 1, 10000000, "step cap of the runs to the target");
    ranged(app, "--target", o.target, 0.0, 1e3, "target Spanish loss of the sweeps, nats/char; 0 = auto");
    ranged(app, "--target-progress", o.target_progress, 0.01, 1.0,
           "auto target: share of the drop in Spanish loss that no replay at --lr-high reaches in --steps steps");
    ranged(app, "--eval-every", o.eval_every, 1, 10000000, "evaluate every N steps");
    ranged(app, "--eval-size", o.eval_size, 1, 1000000, "held-out sequences per language");
    ranged(app, "--valid-fraction", o.valid_fraction, 0.001, 0.9, "share of entries held out");
    ranged(app, "--min-char-count", o.min_char_count, 1L, 1L << 40, "characters rarer than this map to UNK");
    ranged(app, "--width", o.model.width, 1, 4096, "transformer width");
    ranged(app, "--layers", o.model.layers, 1, 64, "transformer blocks");
    ranged(app, "--heads", o.model.heads, 1, 256, "attention heads");
    ranged(app, "--ff", o.model.ff, 1, 65536, "MLP hidden width");
    ranged(app, "--threads", o.threads, 1, 256,
           "threads: pretraining splits each batch into two shards (data parallel), finetuning trains that many runs at "
           "once; results do not depend on it");
    app.add_option("--out", o.out, "output directory")->capture_default_str();
    app.add_flag("--tiny", o.tiny, "smoke-test sizes (seconds); any other flag overrides them");
    app.add_option("--checkpoint", o.checkpoints.dir,
                   "checkpoint pretraining and every finetuning run into this directory every --checkpoint-every steps "
                   "(docs/lab.md)");
    ranged(app, "--checkpoint-every", o.checkpoints.every, 1L, 1L << 40, "training steps between checkpoints");
    app.add_flag("--resume", o.checkpoints.resume,
                 "continue from the checkpoints in --checkpoint (same flags); results equal an uninterrupted run's bit for bit");
    app.add_flag("--quiet", o.quiet, "no progress lines");
    if (const auto stop = cli::parse(app, argc, argv)) return stop;
    if (o.model.width % o.model.heads != 0) {
        std::cerr << "selfreplay-lab text: --width " << o.model.width << " is not divisible by --heads " << o.model.heads
                  << "\n(try selfreplay-lab text --help)\n";
        return 2;
    }
    return std::nullopt;
}

//! JSON string literal of `s` (RFC 8259 escapes).
inline std::string json_str(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') out += {'\\', char(c)};
        else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else out += char(c);
    }
    return out + "\"";
}

inline std::string json_num(double v) {
    if (!std::isfinite(v)) return "null";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}

inline std::string json_runs(const std::vector<run_result>& runs) {
    std::ostringstream s;
    s << "[";
    for (std::size_t i = 0; i < runs.size(); ++i) {
        const auto& r = runs[i];
        s << (i ? ",\n    " : "\n    ") << "{\"name\": " << json_str(r.spec.name) << ", \"replay\": " << json_str(r.spec.source_name())
          << ", \"mixer\": " << json_str(r.spec.mixer_name()) << ", \"strength\": " << json_num(r.spec.strength())
          << ", \"lr\": " << json_num(r.spec.lr) << ", \"steps\": " << r.steps_run << ", \"prev_ntp\": " << json_num(r.prev_ntp.back())
          << ", \"forgetting\": " << json_num(r.forgetting) << ", \"valid_ntp\": " << json_num(r.valid_ntp.back())
          << ", \"prev_kl\": " << json_num(r.prev_kl) << ", \"weight_ratio\": " << json_num(r.weight_ratio)
          << ", \"steps_to_target\": " << (r.steps_to_target ? json_num(*r.steps_to_target) : "null")
          << ", \"forgetting_at_target\": " << json_num(r.forgetting_at_target) << ", \"seconds\": " << json_num(r.seconds)
          << ", \"curve\": {\"step\": [";
        for (std::size_t k = 0; k < r.step.size(); ++k) s << (k ? ", " : "") << r.step[k];
        s << "], \"valid_ntp\": [";
        for (std::size_t k = 0; k < r.step.size(); ++k) s << (k ? ", " : "") << json_num(r.valid_ntp[k]);
        s << "], \"prev_ntp\": [";
        for (std::size_t k = 0; k < r.step.size(); ++k) s << (k ? ", " : "") << json_num(r.prev_ntp[k]);
        s << "]}}";
    }
    s << "\n  ]";
    return s.str();
}

//! A compute multiplier between a no-replay run and a replay run that both reach the target
//! and where the replay run forgets no more: steps(no replay) / steps(replay)
//! (`selfreplay::compute_multiplier`).
struct matched_multiplier {
    std::size_t lr_run;      //!< index into the learning-rate sweep
    std::size_t replay_run;  //!< index into the replay sweep
    std::optional<double> multiplier;
};

//! `by_lr`: for each no-replay run reaching the target, the fastest replay run that reaches it
//! forgetting no more. `by_replay`: for each replay run reaching the target, the fastest
//! no-replay run that reaches it forgetting no more (the paper's "same forgetting" comparison);
//! replay runs no learning rate of the sweep matches are left out.
inline void match(const std::vector<run_result>& lr_runs, const std::vector<run_result>& replay_runs, double target,
                  std::vector<matched_multiplier>& by_lr, std::vector<matched_multiplier>& by_replay) {
    auto fastest = [](const std::vector<run_result>& runs, double max_forgetting) {
        long best = -1;
        for (std::size_t j = 0; j < runs.size(); ++j) {
            const auto& b = runs[j];
            if (!b.steps_to_target || !(b.forgetting_at_target <= max_forgetting)) continue;
            if (best < 0 || *b.steps_to_target < *runs[std::size_t(best)].steps_to_target) best = long(j);
        }
        return best;
    };
    auto multiplier = [&](const run_result& a, const run_result& b) {
        return selfreplay::compute_multiplier({a.step, a.valid_ntp}, {b.step, b.valid_ntp}, target, selfreplay::crossing::interpolate);
    };
    for (std::size_t i = 0; i < lr_runs.size(); ++i) {
        if (!lr_runs[i].steps_to_target) continue;
        const long j = fastest(replay_runs, lr_runs[i].forgetting_at_target);
        if (j >= 0) by_lr.push_back({i, std::size_t(j), multiplier(lr_runs[i], replay_runs[std::size_t(j)])});
    }
    for (std::size_t j = 0; j < replay_runs.size(); ++j) {
        if (!replay_runs[j].steps_to_target) continue;
        const long i = fastest(lr_runs, replay_runs[j].forgetting_at_target);
        if (i >= 0) by_replay.push_back({std::size_t(i), j, multiplier(lr_runs[std::size_t(i)], replay_runs[j])});
    }
}

//! SVG scatter of forgetting at the target (y) against steps to the target (x, log scale).
inline void write_tradeoff_svg(const std::vector<run_result>& lr_runs, const std::vector<run_result>& replay_runs, double target,
                               const std::string& path) {
    const int W = 640, H = 420, ml = 70, mr = 30, mt = 40, mb = 60, pw = W - ml - mr, ph = H - mt - mb;
    double xmin = 1e300, xmax = 0, ymin = 0, ymax = 0;
    for (const auto* set : {&lr_runs, &replay_runs})
        for (const auto& r : *set)
            if (r.steps_to_target) {
                xmin = std::min(xmin, *r.steps_to_target);
                xmax = std::max(xmax, *r.steps_to_target);
                ymin = std::min(ymin, r.forgetting_at_target);
                ymax = std::max(ymax, r.forgetting_at_target);
            }
    if (xmax <= 0) xmin = 1, xmax = 10;
    xmin = std::max(1.0, xmin / 1.5);
    xmax *= 1.5;
    const double yr = std::max(1e-3, ymax - ymin);
    ymax += 0.1 * yr;
    ymin -= 0.1 * yr;
    auto X = [&](double v) { return ml + (std::log(v) - std::log(xmin)) / (std::log(xmax) - std::log(xmin)) * pw; };
    auto Y = [&](double v) { return mt + (ymax - v) / (ymax - ymin) * ph; };
    std::ostringstream s;
    s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    s << "<text x=\"" << W / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">English -> Spanish: forgetting vs steps to Spanish loss "
      << fixed(target) << "</text>\n";
    s << "<rect x=\"" << ml << "\" y=\"" << mt << "\" width=\"" << pw << "\" height=\"" << ph << "\" fill=\"none\" stroke=\"#888\"/>\n";
    for (double d = std::pow(10.0, std::floor(std::log10(xmin))); d <= xmax; d *= 10)
        for (double m : {1.0, 2.0, 5.0})
            if (d * m >= xmin && d * m <= xmax)
                s << "<line x1=\"" << X(d * m) << "\" y1=\"" << mt + ph << "\" x2=\"" << X(d * m) << "\" y2=\"" << mt + ph + 5
                  << "\" stroke=\"#888\"/><text x=\"" << X(d * m) << "\" y=\"" << mt + ph + 18 << "\" text-anchor=\"middle\">"
                  << d * m << "</text>\n";
    for (int k = 0; k <= 4; ++k) {
        const double v = ymin + (ymax - ymin) * k / 4;
        s << "<text x=\"" << ml - 6 << "\" y=\"" << Y(v) + 4 << "\" text-anchor=\"end\">" << fixed(v, 3) << "</text>\n";
    }
    if (ymin < 0 && ymax > 0)
        s << "<line x1=\"" << ml << "\" y1=\"" << Y(0) << "\" x2=\"" << ml + pw << "\" y2=\"" << Y(0) << "\" stroke=\"#ccc\" stroke-dasharray=\"4\"/>\n";
    s << "<text x=\"" << ml + pw / 2 << "\" y=\"" << H - 20 << "\" text-anchor=\"middle\">finetuning steps to the target Spanish loss (log)</text>\n";
    s << "<text transform=\"translate(18," << mt + ph / 2 << ") rotate(-90)\" text-anchor=\"middle\">forgetting: English loss increase (nats/char)</text>\n";
    auto series = [&](const std::vector<run_result>& runs, const char* color, bool lr) {
        std::string poly;
        for (const auto& r : runs) {
            if (!r.steps_to_target) continue;
            const double x = X(*r.steps_to_target), y = Y(r.forgetting_at_target);
            poly += std::to_string(x) + "," + std::to_string(y) + " ";
            s << "<circle cx=\"" << x << "\" cy=\"" << y << "\" r=\"5\" fill=\"" << color << "\"/>";
            s << "<text x=\"" << x + 8 << "\" y=\"" << y - 6 << "\" fill=\"" << color << "\">"
              << (lr ? "lr " + json_num(r.spec.lr) : "f " + json_num(r.spec.strength())) << "</text>\n";
        }
        if (!poly.empty()) s << "<polyline points=\"" << poly << "\" fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.5\"/>\n";
    };
    series(lr_runs, "#1f77b4", true);
    series(replay_runs, "#d62728", false);
    s << "<circle cx=\"" << ml + pw - 190 << "\" cy=\"" << mt + 15 << "\" r=\"5\" fill=\"#1f77b4\"/><text x=\"" << ml + pw - 180 << "\" y=\""
      << mt + 19 << "\">no replay, learning-rate sweep</text>\n";
    s << "<circle cx=\"" << ml + pw - 190 << "\" cy=\"" << mt + 33 << "\" r=\"5\" fill=\"#d62728\"/><text x=\"" << ml + pw - 180 << "\" y=\""
      << mt + 37 << "\">self-generated replay, fraction f</text>\n";
    s << "</svg>\n";
    std::ofstream f(path);
    f << s.str();
    if (!f) throw std::runtime_error("cannot write '" + path + "'");
}

inline std::string files_json(const std::vector<std::string>& files) {
    std::string s = "[";
    for (std::size_t i = 0; i < files.size(); ++i) s += (i ? ", " : "") + json_str(files[i]);
    return s + "]";
}

//! `selfreplay-lab text ...`: `argv[0]` is the word "text". Returns the process exit code
//! (0 success, 1 run-time failure, 2 bad command line).
inline int run_text(int argc, char** argv) {
    text_options o;
    if (const auto stop = parse_text_args(argc, argv, o)) return *stop;
    try {
        const auto t0 = std::chrono::steady_clock::now();
        std::mutex io;
        const progress_fn progress = [&](const std::string& line) {
            std::lock_guard lock(io);
            std::printf("%7.1fs %s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), line.c_str());
            std::fflush(stdout);
        };
        if (o.english.empty()) o.english = default_files::english();
        if (o.spanish.empty()) o.spanish = default_files::spanish();
        if (o.spanish.empty())
            throw std::runtime_error(std::string("no Spanish text: ") + default_files::dir +
                                     "/es holds no *.fortunes file (install fortunes-es or pass --spanish FILE)");
        std::vector<std::u32string> en_entries, es_entries;
        for (const auto& f : o.english)
            for (auto& e : read_entries(f)) en_entries.push_back(std::move(e));
        for (const auto& f : o.spanish)
            for (auto& e : read_entries(f)) es_entries.push_back(std::move(e));
        const vocabulary vocab({&en_entries, &es_entries}, o.min_char_count);
        const corpus en = split(en_entries, vocab, o.valid_fraction, o.seed, 11);
        const corpus es = split(es_entries, vocab, o.valid_fraction, o.seed, 12);
        for (const auto* c : {&en, &es})
            if (c->train.size() < std::size_t(o.seq_len) * 4 || c->valid.size() < std::size_t(o.seq_len))
                throw std::runtime_error("the " + std::string(c == &en ? "English" : "Spanish") + " text is too short (" +
                                         std::to_string(c->train.size()) + " training and " + std::to_string(c->valid.size()) +
                                         " held-out characters) for sequences of " + std::to_string(o.seq_len));
        o.model.vocab = vocab.size();
        o.model.max_len = o.seq_len;
        o.model.check();
        std::error_code ec;
        std::filesystem::create_directories(o.out, ec);
        if (ec) throw std::runtime_error("cannot create output directory '" + o.out + "': " + ec.message());
        checkpoint::prepare(o.checkpoints, "text-");

        shared_state sh{.o = &o, .en = &en, .es = &es};
        sh.eval_en = eval_set(en.valid, ENGLISH, o.eval_size, o.seq_len);
        sh.eval_es = eval_set(es.valid, SPANISH, o.eval_size, o.seq_len);
        sh.theta0 = transformer(o.model);
        sh.theta0.init(o.seed);
        std::printf("selfreplay-lab text: English %zu entries (%zu train / %zu held-out chars), Spanish %zu entries (%zu / %zu), "
                    "vocabulary %d; transformer width %d, %d layers, %d heads, ff %d (%zu parameters), T = %d\n",
                    en.entries, en.train.size(), en.valid.size(), es.entries, es.train.size(), es.valid.size(), vocab.size(),
                    o.model.width, o.model.layers, o.model.heads, o.model.ff, sh.theta0.num_params(), o.seq_len);
        sh.pi = sh.theta0;
        pretrain(sh.pi, o, en, progress, sh.eval_en);
        sh.prev_before = eval_ntp(sh.pi, sh.eval_en, o.seq_len);
        sh.valid_before = eval_ntp(sh.pi, sh.eval_es, o.seq_len);
        sh.pi.forward(sh.eval_en.data(), o.eval_size, o.seq_len, sh.pi_eval_en_logits);
        if (!o.quiet) {  // a look at what self-generated replay replays
            lm_adapter lm(sh.pi);
            std::vector<std::int32_t> sample(std::size_t(2) * o.seq_len);
            const std::int32_t first[2] = {ENGLISH, ENGLISH};
            selfreplay::generate(lm, std::span<const std::int32_t>(first, 2), {.seed = o.seed ^ 0xabcdefull},
                                 selfreplay::make_view(sample.data(), {2, o.seq_len}));
            for (int b = 0; b < 2; ++b) {
                std::string line;
                for (int t = 0; t < o.seq_len; ++t) line += vocab.show(sample[std::size_t(b) * o.seq_len + t]);
                progress("pi sample: " + line);
            }
        }
        std::printf("pretrained: English held-out loss %.4f, Spanish %.4f nats/char\n", sh.prev_before, sh.valid_before);

        // finding 1: strategies at a fixed number of steps
        const double hi = o.lr_high, lo = o.lr_low;
        std::vector<run_spec> strategies{
            {"none-high-lr", "strategy", source_kind::none, selfreplay::no_replay{}, hi, o.steps, false},
            {"none-low-lr", "strategy", source_kind::none, selfreplay::no_replay{}, lo, o.steps, false},
            {"real-ntp", "strategy", source_kind::real, selfreplay::ntp_pre<>{.coefficient = o.c}, hi, o.steps, false},
            {"real-kl", "strategy", source_kind::real, selfreplay::kl_pre<>{.coefficient = o.c}, hi, o.steps, false},
            {"self-ntp", "strategy", source_kind::self, selfreplay::ntp_pre<>{.coefficient = o.c}, hi, o.steps, false},
            {"self-kl", "strategy", source_kind::self, selfreplay::kl_pre<>{.coefficient = o.c}, hi, o.steps, false},
        };
        const auto sres = run_all(sh, strategies, 0, o.threads, progress);
        const double none_forgetting = sres[0].forgetting;
        selfreplay::report table;
        for (const auto& r : sres) {
            selfreplay::metrics_record rec;
            rec.set("strategy", std::string_view(r.spec.name)).set("replay", r.spec.source_name()).set("mixer", std::string_view(r.spec.mixer_name()))
                .set("c", r.spec.strength()).set("lr", r.spec.lr).set("prev_ntp", r.prev_ntp.back()).set("forgetting", r.forgetting)
                .set("valid_ntp", r.valid_ntp.back()).set("prev_kl", r.prev_kl).set("weight_ratio", r.weight_ratio);
            if (r.spec.lr == hi && r.spec.source != source_kind::none && none_forgetting > 0)
                rec.set("forgetting_cut", 1 - r.forgetting / none_forgetting);
            table.add(rec);
        }
        std::cout << "\nFinetuning on Spanish for " << o.steps << " steps (English loss before: " << fixed(sh.prev_before, 4)
                  << ", Spanish before: " << fixed(sh.valid_before, 4) << " nats/char; forgetting = English loss increase):\n";
        table.write_text(std::cout, 4);
        const double cut_ntp = none_forgetting > 0 ? 1 - sres[4].forgetting / none_forgetting : NAN;
        const double cut_kl = none_forgetting > 0 ? 1 - sres[5].forgetting / none_forgetting : NAN;
        const bool accepted = none_forgetting > 0 && std::min(cut_ntp, cut_kl) >= 0.8;
        if (none_forgetting > 0)
            std::cout << "self-generated replay cuts the forgetting of plain finetuning at lr " << json_num(hi) << " by "
                      << fixed(100 * cut_ntp, 1) << "% (ntp_pre) and " << fixed(100 * cut_kl, 1) << "% (kl_pre): "
                      << (accepted ? "meets" : "MISSES") << " the >= 80% bar\n\n";
        else
            std::cout << "plain finetuning at lr " << json_num(hi) << " did not forget (English loss change "
                      << fixed(none_forgetting, 4) << "): pretrain longer to measure the cut\n\n";

        // finding 3: learning rate vs replay, to a target Spanish loss
        const double drop = sh.valid_before - sres[0].valid_ntp.back();
        const double target = o.target > 0 ? o.target : sh.valid_before - o.target_progress * drop;
        std::printf("target Spanish loss %.4f (%s)\n", target, o.target > 0 ? "--target" : "auto");
        std::fflush(stdout);
        std::vector<run_spec> sweep;
        for (double m : o.lr_sweep)
            sweep.push_back({"lr x" + json_num(m), "lr-sweep", source_kind::none, selfreplay::no_replay{}, hi * m, o.sweep_max_steps, true});
        for (double f : o.fraction_sweep)
            sweep.push_back({"f " + json_num(f), "replay-sweep", source_kind::self, selfreplay::replace<>{.fraction = f}, hi,
                             o.sweep_max_steps, true});
        const auto wres = run_all(sh, sweep, target, o.threads, progress);
        const std::vector<run_result> lr_runs(wres.begin(), wres.begin() + std::ptrdiff_t(o.lr_sweep.size()));
        const std::vector<run_result> replay_runs(wres.begin() + std::ptrdiff_t(o.lr_sweep.size()), wres.end());
        std::vector<matched_multiplier> by_lr, by_replay;
        match(lr_runs, replay_runs, target, by_lr, by_replay);
        selfreplay::report t3;
        for (const auto& r : wres) {
            selfreplay::metrics_record rec;
            rec.set("run", std::string_view(r.spec.group + " " + r.spec.name)).set("lr", r.spec.lr).set("replace_fraction", r.spec.strength());
            if (r.steps_to_target) rec.set("steps_to_target", *r.steps_to_target).set("forgetting_at_target", r.forgetting_at_target);
            else rec.set("steps_to_target", "not reached").set("forgetting_at_target", "-");
            rec.set("valid_ntp_end", r.valid_ntp.back());
            t3.add(rec);
        }
        std::cout << "\nTo the target Spanish loss " << fixed(target, 4) << " (cap " << o.sweep_max_steps << " steps):\n";
        t3.write_text(std::cout, 4);
        for (const auto& m : by_lr) {
            const auto &a = lr_runs[m.lr_run], &b = replay_runs[m.replay_run];
            std::cout << "no replay at lr " << json_num(a.spec.lr) << " (forgetting " << fixed(a.forgetting_at_target, 4) << ") takes "
                      << fixed(m.multiplier.value_or(NAN), 2) << "x the steps of self-generated replay f " << json_num(b.spec.strength())
                      << " at lr " << json_num(b.spec.lr) << " (forgetting " << fixed(b.forgetting_at_target, 4) << ")\n";
        }
        for (std::size_t j = 0; j < replay_runs.size(); ++j) {
            const auto& b = replay_runs[j];
            if (!b.steps_to_target) continue;
            const auto it = std::find_if(by_replay.begin(), by_replay.end(), [&](const matched_multiplier& m) { return m.replay_run == j; });
            if (it == by_replay.end())
                std::cout << "replay f " << json_num(b.spec.strength()) << " forgets " << fixed(b.forgetting_at_target, 4)
                          << " at the target: no learning rate of the sweep forgets as little\n";
            else
                std::cout << "replay f " << json_num(b.spec.strength()) << " forgets " << fixed(b.forgetting_at_target, 4)
                          << "; the fastest no-replay run forgetting no more (lr " << json_num(lr_runs[it->lr_run].spec.lr) << ") takes "
                          << fixed(it->multiplier.value_or(NAN), 2) << "x its steps\n";
        }
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

        // results/text.json and the trade-off plot
        std::ostringstream js;
        js << "{\n  \"experiment\": \"text-english-spanish\",\n  \"seconds\": " << json_num(seconds) << ",\n  \"seed\": " << o.seed
           << ",\n  \"data\": {\"english_files\": " << files_json(o.english) << ", \"spanish_files\": " << files_json(o.spanish)
           << ", \"english_train_chars\": " << en.train.size() << ", \"english_valid_chars\": " << en.valid.size()
           << ", \"spanish_train_chars\": " << es.train.size() << ", \"spanish_valid_chars\": " << es.valid.size()
           << ", \"vocab_size\": " << vocab.size() << ", \"seq_len\": " << o.seq_len << "},\n  \"model\": {\"width\": " << o.model.width
           << ", \"layers\": " << o.model.layers << ", \"heads\": " << o.model.heads << ", \"ff\": " << o.model.ff
           << ", \"parameters\": " << sh.pi.num_params() << "},\n  \"training\": {\"batch\": " << o.batch << ", \"replay_batch\": "
           << o.replay_batch << ", \"pretrain_steps\": " << o.pretrain_steps << ", \"pretrain_lr\": " << json_num(o.pretrain_lr)
           << ", \"finetune_steps\": " << o.steps << ", \"lr_high\": " << json_num(hi) << ", \"lr_low\": " << json_num(lo)
           << ", \"c\": " << json_num(o.c) << ", \"warmup\": " << o.warmup << ", \"weight_decay\": " << json_num(o.weight_decay)
           << "},\n  \"loss_unit\": \"nats per predicted character, held-out\",\n  \"pretrained\": {\"prev_ntp\": "
           << json_num(sh.prev_before) << ", \"valid_ntp\": " << json_num(sh.valid_before) << "},\n  \"strategies\": " << json_runs(sres)
           << ",\n  \"acceptance\": {\"forgetting_none_high_lr\": " << json_num(none_forgetting) << ", \"cut_self_ntp\": "
           << json_num(cut_ntp) << ", \"cut_self_kl\": " << json_num(cut_kl) << ", \"required_cut\": 0.8, \"met\": "
           << (accepted ? "true" : "false") << "},\n  \"tradeoff\": {\"target_valid_ntp\": " << json_num(target)
           << ", \"max_steps\": " << o.sweep_max_steps << ",\n  \"lr_sweep\": " << json_runs(lr_runs) << ",\n  \"replay_sweep\": "
           << json_runs(replay_runs);
        for (const auto* list : {&by_lr, &by_replay}) {
            js << ",\n  " << (list == &by_lr ? "\"multipliers_by_lr\"" : "\"multipliers_by_replay\"") << ": [";
            for (std::size_t i = 0; i < list->size(); ++i) {
                const auto& m = (*list)[i];
                js << (i ? ", " : "") << "{\"lr\": " << json_num(lr_runs[m.lr_run].spec.lr) << ", \"replay_fraction\": "
                   << json_num(replay_runs[m.replay_run].spec.strength()) << ", \"compute_multiplier\": "
                   << (m.multiplier ? json_num(*m.multiplier) : "null") << "}";
            }
            js << "]";
        }
        js << "}\n}\n";
        const std::string json_path = o.out + "/text.json", svg_path = o.out + "/text.svg";
        std::ofstream jf(json_path);
        jf << js.str();
        if (!jf) throw std::runtime_error("cannot write '" + json_path + "'");
        write_tradeoff_svg(lr_runs, replay_runs, target, svg_path);
        std::cout << "\nwrote " << json_path << " and " << svg_path << " in " << fixed(seconds, 1) << " s\n";
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "selfreplay-lab text: " << e.what() << "\n";
        return 1;
    }
}

}  // namespace lab::text

namespace lab {
using text::run_text;  //!< entry point of `selfreplay-lab text`
}
