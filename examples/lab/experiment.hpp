#pragma once
//! \file
//! The toy continual-learning experiment: one trainer (model.hpp) learns add -> reversal ->
//! sort -> modadd under several replay strategies; accuracy is measured on every task after
//! every task and along the way. Everything around forgetting comes from selfreplay: the
//! replay sources (`self_generated`, `reservoir_buffer`), the mixers and the combined objective
//! with its logit gradients (`evaluate_objective`), sampling (`generate`, `greedy`), the
//! learning-rate schedule and the continual-learning metrics.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/hana/tuple.hpp>
#include <boost/hana/type.hpp>
#include <selfreplay/adapters/eigen.hpp>
#include <selfreplay/compose/grid.hpp>
#include <selfreplay/metrics.hpp>
#include <selfreplay/random.hpp>
#include <selfreplay/replay.hpp>
#include <selfreplay/sampling.hpp>
#include <selfreplay/schedules.hpp>

#include "checkpoint.hpp"
#include "data_parallel.hpp"
#include "lm_adapter.hpp"
#include "model.hpp"
#include "toy.hpp"

namespace lab {

//! Settings of the toy experiment (every field is a command-line flag of `selfreplay-lab`).
struct toy_options {
    std::uint64_t seed = 1;
    //! Most training steps of each task (add, reversal, sort, modadd); a task stops earlier once
    //! it reaches `target_accuracy`. `add` (trained once for every strategy) and `sort` (learned
    //! slowly under next-token replay) get the most room.
    std::vector<int> steps{1500, 400, 1200, 800};
    //! A task's training stops at the first evaluation (every `eval_every` steps) where its
    //! accuracy on the validation set reaches this; 0 trains every task for all its steps.
    double target_accuracy = 0.99;
    int batch = 128;          //!< training batch (sequences)
    int replay_batch = 64;    //!< self-generated replay batch (sequences), split equally over previous tasks
    int buffer_batches = 8;   //!< self-generated replay batches generated at a time
    float lr = 3e-3f;
    int warmup = 50;
    bool cosine = true;       //!< warm-up then cosine decay to 0 over each task (else constant)
    float weight_decay = 0.02f;
    float beta2 = 0.99f;      //!< AdamW second-moment decay (the paper's toy experiment: AdamW(0.9, 0.99))
    float c = 10.f;           //!< replay coefficient of the self-generated strategies
    float c_stored = 1.f;     //!< replay coefficient of the stored-exemplar strategy
    double fraction = 0.25;   //!< share of training rows replaced by the `replace` mixer (grid mode)
    int memory = 256;         //!< stored-exemplar reservoir capacity (sequences)
    int stored_batch = 32;    //!< replay batch of the stored-exemplar strategy (classic experience replay)
    int eval_every = 100;
    int eval_size = 256;      //!< held-out examples per task, in the test set and in the validation set
    int tasks = toy::num_tasks;
    int shards = 2;           //!< data-parallel shards of every batch (the results depend on it)
    int threads = 2;          //!< threads running the shards (the results do not depend on it)
    model_config model{.vocab = toy::vocab, .max_len = toy::toy_len, .width = 64, .layers = 2, .heads = 4, .ff = 192};
    std::vector<std::string> strategies{"none", "self-ntp", "self-kl", "stored"};
    bool quiet = false;
    //! Compute the output layer and the objective from hidden states (selfreplay's linear losses,
    //! the linear form of `evaluate_objective`): no [rows, V] logits or logit-gradient buffers in
    //! training steps; pi's hidden states instead of its logits are recorded during generation.
    bool linear_loss = false;
};

enum class replay_kind { none, self_generated, stored };
enum class mixer_kind { none, ntp_pre, kl_pre, replace };

struct strategy_spec {
    std::string name;
    replay_kind replay;
    mixer_kind mixer;
    float c;
};

inline const char* replay_name(replay_kind k) {
    return k == replay_kind::none ? "none" : k == replay_kind::self_generated ? "self-generated" : "stored";
}
inline const char* mixer_name(mixer_kind k) {
    return k == mixer_kind::none ? "none" : k == mixer_kind::ntp_pre ? "ntp_pre" : k == mixer_kind::kl_pre ? "kl_pre" : "replace";
}

inline strategy_spec make_strategy(const std::string& name, const toy_options& o) {
    if (name == "none") return {name, replay_kind::none, mixer_kind::none, 0.f};
    if (name == "self-ntp") return {name, replay_kind::self_generated, mixer_kind::ntp_pre, o.c};
    if (name == "self-kl") return {name, replay_kind::self_generated, mixer_kind::kl_pre, o.c};
    if (name == "stored") return {name, replay_kind::stored, mixer_kind::ntp_pre, o.c_stored};
    throw std::invalid_argument("unknown strategy '" + name + "' (known: none, self-ntp, self-kl, stored)");
}

//! One point of the accuracy curves.
struct curve_point {
    int task_trained;  //!< index of the task being trained
    long step;         //!< global step (over all tasks)
    std::vector<double> acc;
    double loss;
};

struct strategy_result {
    strategy_spec spec;
    selfreplay::accuracy_matrix matrix{};  //!< R[i][j]: accuracy on task j after training task i
    std::vector<curve_point> curve;
    double seconds = 0;
};

//! Exact-match accuracy of greedy decoding on a held-out set of `task`: the model is given each
//! example up to EQ and must produce the four answer digits and EOS.
inline double evaluate(const transformer& m, int task, const std::vector<std::int32_t>& set, parallelism par) {
    const int n = int(set.size() / toy::toy_len), T = toy::toy_len, P = toy::prompt_len(task), A = toy::answer_digits + 1;
    std::vector<std::vector<std::int32_t>> prompts(n);
    for (int i = 0; i < n; ++i) prompts[i].assign(set.begin() + std::ptrdiff_t(i) * T, set.begin() + std::ptrdiff_t(i) * T + P);
    std::vector<std::int32_t> out(std::size_t(n) * (P + A));
    lm_adapter lm(m, nullptr, 0, par);
    selfreplay::generate(lm, prompts, {}, selfreplay::make_view(out.data(), {n, P + A}), selfreplay::no_processing{},
                         selfreplay::greedy{});
    int correct = 0;
    for (int i = 0; i < n; ++i)
        correct += std::equal(out.begin() + std::ptrdiff_t(i) * (P + A) + P, out.begin() + std::ptrdiff_t(i + 1) * (P + A),
                              set.begin() + std::ptrdiff_t(i) * T + P);
    return double(correct) / n;
}

class toy_experiment {
public:
    using progress_fn = std::function<void(const std::string&)>;

    toy_experiment(toy_options o, progress_fn progress) : o_(std::move(o)), progress_(std::move(progress)) {
        o_.model.check();
        const auto held_out = [&](int task, std::uint64_t stream) {
            std::vector<std::int32_t> set(std::size_t(o_.eval_size) * toy::toy_len);
            for (int i = 0; i < o_.eval_size; ++i) draw(task, stream, std::uint64_t(i), set.data() + std::size_t(i) * toy::toy_len);
            return set;
        };
        for (int t = 0; t < o_.tasks; ++t) {
            eval_sets_.push_back(held_out(t, 900 + std::uint64_t(t)));
            valid_sets_.push_back(held_out(t, 800 + std::uint64_t(t)));
        }
    }

    //! Runs every strategy; the first task is trained once and its checkpoint shared.
    std::vector<strategy_result> run() {
        std::vector<strategy_spec> specs;
        for (const auto& s : o_.strategies) specs.push_back(make_strategy(s, o_));
        const auto [first, shared] = train_first();
        std::vector<strategy_result> results = resumed_results();
        for (std::size_t k = results.size(); k < specs.size(); ++k) {
            const auto& spec = specs[k];
            const auto s0 = clock::now();
            enter_strategy(int(k), &first, &shared, &results);
            state st = first;
            strategy_result r{spec, shared.matrix, shared.curve, 0};
            for (int task = first_task(); task < o_.tasks; ++task) run_task(st, r, task);
            r.seconds = shared.seconds + seconds_since(s0);
            results.push_back(std::move(r));
        }
        return results;
    }

    //! Grid mode: every combination of a replay source type and a mixer type, expanded at compile
    //! time by `selfreplay::for_each_combination`, trained on the tasks after the shared first one.
    //! `seconds` of each result counts the tasks after the first only.
    std::vector<strategy_result> run_grid() {
        namespace hana = boost::hana;
        std::vector<std::function<strategy_result(const state&, const strategy_result&)>> cells;
        selfreplay::for_each_combination(
            hana::tuple_t<selfreplay::self_generated<lm_adapter>, selfreplay::reservoir_buffer>,
            hana::tuple_t<selfreplay::ntp_pre<double>, selfreplay::kl_pre<double>, selfreplay::replace<double>>,
            [&](auto source_type, auto mixer_type) {
                using S = typename decltype(source_type)::type;
                using M = typename decltype(mixer_type)::type;
                cells.push_back([this](const state& first, const strategy_result& shared) {
                    constexpr bool self = !std::is_same_v<S, selfreplay::reservoir_buffer>;
                    M mixer{};
                    float c = 0.f;
                    if constexpr (std::is_same_v<M, selfreplay::replace<double>>) mixer.fraction = c = o_.fraction;
                    else mixer.coefficient = c = self ? o_.c : o_.c_stored;
                    strategy_spec spec{std::string(self ? "self-" : "stored-") + mixer_name(mixer_of<M>()),
                                       self ? replay_kind::self_generated : replay_kind::stored, mixer_of<M>(), c};
                    const auto s0 = clock::now();
                    state st = first;
                    strategy_result r{spec, shared.matrix, shared.curve, 0};
                    for (int task = first_task(); task < o_.tasks; ++task) {
                        const transformer pi = reference(st);
                        st.opt.reset(st.model.num_params());
                        if constexpr (self) {
                            std::vector<float> pi_hidden;  // with --linear-loss
                            lm_adapter pi_lm(pi, o_.linear_loss ? &pi_hidden : nullptr, toy::toy_len, par(), o_.linear_loss);
                            S source(pi_lm, self_options(task, M::needs_reference_replay_logits));
                            train_task(st, r, task, mixer, &source, &pi, o_.linear_loss ? &pi_hidden : nullptr);
                        } else {
                            train_task(st, r, task, mixer, &st.store, &pi, nullptr);
                        }
                    }
                    r.seconds = seconds_since(s0);
                    return r;
                });
            });
        const auto [first, shared] = train_first();
        std::vector<strategy_result> results = resumed_results();
        for (std::size_t k = results.size(); k < cells.size(); ++k) {
            enter_strategy(int(k), &first, &shared, &results);
            results.push_back(cells[k](first, shared));
        }
        return results;
    }

    const toy_options& options() const { return o_; }

    //! Checkpoints every `s.every` training steps into `s.dir` (docs/lab.md "Checkpoints and
    //! resuming"); with `s.resume`, continues from the newest good checkpoint there. Returns a
    //! line saying where the run starts. Throws std::runtime_error when no checkpoint is usable.
    std::string use_checkpoints(const checkpoint::settings& s, bool grid) {
        checkpoint::prepare(s, grid ? "grid." : "toy.");
        if (!s.enabled()) return "";
        ck_ = s;
        ck_grid_ = grid;
        ck_slots_.emplace(s.dir, grid ? "grid" : "toy");
        if (!s.resume) return "checkpoints every " + std::to_string(s.every) + " steps in " + ck_slots_->path(0) + " and .1.ckpt";
        auto e = new_checkpoint();
        if (!ck_slots_->load(e, std::cerr)) return "no checkpoint in '" + s.dir + "': starting from the beginning";
        const std::string where = "resuming from '" + ck_slots_->path(int(e.sequence % 2)) + "': strategy " +
                                  std::to_string(e.body.strategy + 1) + ", task " + std::to_string(e.body.task + 1) + ", step " +
                                  std::to_string(e.body.step);
        resume_ = std::move(e);
        return where;
    }

private:
    using clock = std::chrono::steady_clock;
    static double seconds_since(clock::time_point t) { return std::chrono::duration<double>(clock::now() - t).count(); }

    struct state {
        transformer model;
        adamw opt;
        selfreplay::reservoir_buffer store;  //!< stored exemplars (fed with every training batch)
    };
    using snapshot = checkpoint::envelope<checkpoint::toy_body<state, strategy_result>>;

    state fresh_state() const {
        return {transformer(o_.model), {}, selfreplay::reservoir_buffer({.capacity = o_.memory, .seq_len = toy::toy_len, .seed = o_.seed})};
    }
    //! An empty checkpoint of this configuration (to restore into or fill).
    snapshot new_checkpoint() const {
        snapshot e{ck_grid_ ? "grid" : "toy", checkpoint::toy_config(o_, ck_grid_ ? "grid" : "toy"), 0, {}};
        e.body.make_state = [this] { return fresh_state(); };
        e.body.tasks = std::size_t(o_.tasks);
        e.body.strategies = ck_grid_ ? 6 : o_.strategies.size();  // grid: 2 sources x 3 mixers
        e.body.steps = o_.steps;
        return e;
    }
    //! Where checkpoints find the rest of the run (set as each strategy starts).
    void enter_strategy(int k, const state* first, const strategy_result* shared, const std::vector<strategy_result>* done) {
        strategy_ = k;
        first_ = first;
        shared_ = shared;
        done_ = done;
    }
    std::vector<strategy_result> resumed_results() { return resume_ ? std::move(resume_->body.done) : std::vector<strategy_result>{}; }
    int first_task() const { return resume_ ? resume_->body.task : 1; }
    //! The frozen reference pi of a task starting now: theta, or the checkpoint's pi on resuming.
    transformer reference(const state& st) const { return resume_ ? *resume_->body.pi : st.model; }

    //! Writes a checkpoint of the run between two steps of `task` (`step` of them done).
    template <class Source>
    void save_checkpoint(const state& st, const strategy_result& r, int task, long step, double loss_acc, int loss_n,
                         const transformer* pi, const Source* source) {
        auto e = new_checkpoint();
        auto& b = e.body;
        b.strategy = strategy_;
        b.task = task;
        b.step = step;
        b.loss_acc = loss_acc;
        b.loss_n = loss_n;
        if (strategy_ >= 0) {
            b.first = *first_;
            b.shared = *shared_;
            b.done = *done_;
        }
        b.current = st;
        b.result = r;
        if (pi) b.pi = *pi;
        if constexpr (requires { source->rows_drawn(); }) b.source = checkpoint::nested_record(*source);
        ck_slots_->save(e);
        since_checkpoint_ = 0;
    }

    template <class M>
    static mixer_kind mixer_of() {
        if constexpr (std::is_same_v<M, selfreplay::ntp_pre<double>>) return mixer_kind::ntp_pre;
        else if constexpr (std::is_same_v<M, selfreplay::kl_pre<double>>) return mixer_kind::kl_pre;
        else return mixer_kind::replace;
    }

    //! Trains the first task once (no replay); every strategy starts from this checkpoint.
    std::pair<state, strategy_result> train_first() {
        if (resume_ && resume_->body.strategy >= 0) return {std::move(*resume_->body.first), std::move(*resume_->body.shared)};
        const auto t0 = clock::now();
        enter_strategy(-1, nullptr, nullptr, nullptr);
        state first = fresh_state();
        first.model.init(o_.seed);
        strategy_result shared{{"shared", replay_kind::none, mixer_kind::none, 0.f}, selfreplay::accuracy_matrix(o_.tasks), {}, 0};
        train_task(first, shared, 0, selfreplay::no_replay{}, static_cast<selfreplay::reservoir_buffer*>(nullptr), nullptr, nullptr);
        shared.seconds = seconds_since(t0);
        return {std::move(first), std::move(shared)};
    }

    //! Shards and threads of every model pass (training, generation, evaluation).
    parallelism par() const { return {.shards = o_.shards, .threads = o_.threads}; }

    //! Self-generated replay settings for `task`: one prompt (the task token) per previous task;
    //! `kl`: keep pi's logits for KL replay (not with --linear-loss, which needs pi's hidden states).
    selfreplay::self_generated_options self_options(int task, bool kl) const {
        selfreplay::self_generated_options so{.batch_size = o_.replay_batch, .seq_len = toy::toy_len,
                                              .buffer_batches = o_.buffer_batches, .seed = o_.seed * 1000003u + std::uint64_t(task),
                                              .keep_logits = kl && !o_.linear_loss};
        for (int p = 0; p < task; ++p) so.prompts.push_back({toy::TASK0 + p});
        return so;
    }

    //! One example of `task` from the random stream (`stream`, `index`).
    void draw(int task, std::uint64_t stream, std::uint64_t index, std::int32_t* out) const {
        selfreplay::counter_rng rng{.seed = o_.seed, .stream = stream, .counter = 2 * index};
        const auto w = rng.next_u64();
        toy::encode(task, int(w % 1000), int((w >> 20) % 1000), out);
    }

    std::vector<double> eval_all(const transformer& m) const {
        std::vector<double> acc;
        for (int t = 0; t < o_.tasks; ++t) acc.push_back(evaluate(m, t, eval_sets_[t], par()));
        return acc;
    }

    //! Task change: pi <- theta (frozen), optimizer reset; then the strategy's source and mixer.
    void run_task(state& st, strategy_result& r, int task) {
        const transformer pi = reference(st);
        st.opt.reset(st.model.num_params());
        const auto& s = r.spec;
        if (s.replay == replay_kind::none) return train_task(st, r, task, selfreplay::no_replay{}, static_cast<selfreplay::reservoir_buffer*>(nullptr), &pi, nullptr);
        if (s.replay == replay_kind::stored)
            return train_task(st, r, task, selfreplay::ntp_pre<double>{.coefficient = s.c}, &st.store, &pi, nullptr);
        // self-generated replay: sequences sampled from pi, prompted with each previous task's token;
        // KL replay takes pi's logits on them from the source (kept while generating), or with
        // --linear-loss pi's hidden states, recorded by the adapter on the block of generated rows
        const bool kl = s.mixer == mixer_kind::kl_pre;
        std::vector<float> pi_hidden;  // with --linear-loss
        lm_adapter pi_lm(pi, o_.linear_loss ? &pi_hidden : nullptr, toy::toy_len, par(), o_.linear_loss);
        selfreplay::self_generated<lm_adapter> source(pi_lm, self_options(task, kl));
        const std::vector<float>* hidden = o_.linear_loss ? &pi_hidden : nullptr;
        if (kl)
            train_task(st, r, task, selfreplay::kl_pre<double>{.coefficient = s.c}, &source, &pi, hidden);
        else
            train_task(st, r, task, selfreplay::ntp_pre<double>{.coefficient = s.c}, &source, &pi, hidden);
    }

    //! Trains `task` under `mixer` with replay from `source`; `pi_hidden`: pi's hidden states on the
    //! block of self-generated rows (--linear-loss), recorded by its `lm_adapter`.
    template <class Mixer, class Source>
    void train_task(state& st, strategy_result& r, int task, const Mixer& mixer, Source* source, const transformer* pi,
                    const std::vector<float>* pi_hidden) {
        const int B = o_.batch, T = toy::toy_len, V = o_.model.vocab;
        const int steps = o_.steps[std::size_t(task)];
        long s_begin = 0;
        double loss_acc = 0;
        int loss_n = 0;
        if (resume_) {  // the first task trained after resuming continues where the checkpoint left it
            auto& b = resume_->body;
            st = std::move(*b.current);
            r = std::move(*b.result);
            s_begin = b.step;
            loss_acc = b.loss_acc;
            loss_n = int(b.loss_n);
            if constexpr (requires { source->rows_drawn(); }) checkpoint::restore_nested(b.source, ck_slots_->path(int(resume_->sequence % 2)), *source);
            resume_.reset();
        }
        long step0 = 0;  // global step at the start of this task
        for (const auto& p : r.curve)
            if (p.task_trained < task) step0 = p.step;
        const int R = !Mixer::needs_replay_batch                                   ? 0
                      : std::is_same_v<Source, selfreplay::reservoir_buffer> ? o_.stored_batch
                                                                             : o_.replay_batch;
        const auto lr_at = [&](long s) {
            if (o_.cosine && o_.warmup < steps)
                return selfreplay::warmup_cosine{.peak = o_.lr, .warmup_steps = o_.warmup, .decay_steps = steps}(s);
            return selfreplay::warmup_constant{.peak = o_.lr, .warmup_steps = o_.warmup}(s);
        };
        std::vector<std::int32_t> tokens(std::size_t(B + R) * T);  // training rows, then replay rows
        const auto x_tokens = selfreplay::make_view(tokens.data(), {B, T});
        const auto r_tokens = selfreplay::make_view(tokens.data() + std::size_t(B) * T, {R, T});
        std::vector<float> grad(st.model.num_params());
        matrix logits, dlogits, ref_logits;
        data_parallel student(st.model, par());
        std::optional<data_parallel> reference;  // pi's passes on stored replay rows (KL replay from a buffer)
        if (pi) reference.emplace(*pi, par());
        st.opt.weight_decay = o_.weight_decay;
        st.opt.beta2 = o_.beta2;
        if (st.opt.m.empty()) st.opt.reset(st.model.num_params());
        for (int s = int(s_begin); s < steps; ++s) {
            for (int i = 0; i < B; ++i) draw(task, std::uint64_t(task), std::uint64_t(s) * B + std::uint64_t(i), tokens.data() + std::size_t(i) * T);
            std::uint64_t first_replay_row = 0;
            bool drawn_logits = false;  // ref_logits holds pi's logits on the replay rows, from the source
            if constexpr (Mixer::needs_replay_batch) {
                if constexpr (requires { source->options().keep_logits; }) {  // self-generated rows
                    first_replay_row = source->rows_drawn();
                    drawn_logits = source->options().keep_logits;
                    if (drawn_logits) {
                        ref_logits.resize(std::ptrdiff_t(R) * T, V);
                        source->draw(r_tokens, selfreplay::view(ref_logits));
                    } else {
                        source->draw(r_tokens);
                    }
                } else {
                    source->draw(r_tokens);
                }
                selfreplay::mix_batch(mixer, s, x_tokens, r_tokens);
            }
            st.store.add(x_tokens);  // the stored-exemplar memory sees every training batch
            // theta on the training batch and, when the mixer needs it, on the replay batch: one pass
            const int rows = Mixer::needs_student_replay_logits ? B + R : B;
            std::fill(grad.begin(), grad.end(), 0.f);
            if (o_.linear_loss) {
                const auto obj = linear_step(st.model, student, mixer, s, tokens, rows, R, first_replay_row, pi, pi_hidden,
                                             reference, grad);
                st.opt.update(st.model, grad, float(lr_at(s)));
                loss_acc += obj.total;
                ++loss_n;
            } else {
            student.forward(tokens.data(), rows, T, logits);
            dlogits.resize(logits.rows(), V);
            const std::ptrdiff_t nx = std::ptrdiff_t(B) * T, nr = std::ptrdiff_t(R) * T;
            selfreplay::objective_inputs<float> in{.train_tokens = x_tokens, .student_train_logits = selfreplay::view(logits.topRows(nx))};
            selfreplay::objective_gradients<float> out{.train = selfreplay::view(dlogits.topRows(nx))};
            if constexpr (Mixer::needs_replay_batch) in.replay_tokens = r_tokens;
            if constexpr (Mixer::needs_student_replay_logits) {
                in.student_replay_logits = selfreplay::view(logits.bottomRows(nr));
                out.replay = selfreplay::view(dlogits.bottomRows(nr));
            }
            if constexpr (Mixer::needs_reference_replay_logits) {
                if (!drawn_logits) reference->forward(tokens.data() + nx, R, T, ref_logits);  // stored rows: run pi on them
                in.reference_replay_logits = selfreplay::view(std::as_const(ref_logits));
            }
            const auto obj = selfreplay::evaluate_objective(mixer, s, in, out, {.threads = o_.threads});
            student.backward(dlogits, grad);
            st.opt.update(st.model, grad, float(lr_at(s)));
            loss_acc += obj.total;
            ++loss_n;
            }
            const bool last = s + 1 == steps;
            if ((s + 1) % o_.eval_every == 0 || last) {
                const bool reached = o_.target_accuracy > 0 && !last &&
                                     evaluate(st.model, task, valid_sets_[std::size_t(task)], par()) >= o_.target_accuracy;
                curve_point p{task, step0 + s + 1, eval_all(st.model), loss_acc / loss_n};
                loss_acc = 0;
                loss_n = 0;
                if (!o_.quiet) {
                    std::ostringstream line;
                    line << "[" << r.spec.name << "] task " << task + 1 << "/" << o_.tasks << " " << toy::task_names[task] << " step "
                         << s + 1 << "/" << steps << " loss " << fmt(p.loss, 4) << " acc";
                    for (int t = 0; t < o_.tasks; ++t) line << " " << toy::task_names[t] << " " << fmt(p.acc[t], 3);
                    progress_(line.str());
                }
                r.curve.push_back(std::move(p));
                if (reached) break;
            }
            if (ck_slots_ && ck_.write && ++since_checkpoint_ >= ck_.every && !last) save_checkpoint(st, r, task, s + 1, loss_acc, loss_n, pi, source);
        }
        r.matrix.add_row(r.curve.back().acc);
    }

    //! A model's output layer as the linear losses see it: W [V, width] (stored [width, V]) and bias [V].
    static selfreplay::strided_view<const float, 2> output_weight(const transformer& m) {
        return selfreplay::transposed(selfreplay::make_view(m.params().data() + m.layout().wout, {m.config().width, m.config().vocab}));
    }
    static selfreplay::strided_view<const float, 1> output_bias(const transformer& m) {
        return selfreplay::make_view(m.params().data() + m.layout().bout, {m.config().vocab});
    }

    //! One training step's forward and backward passes with the linear losses (`linear_loss`):
    //! theta's (and pi's) hidden states, `evaluate_objective`'s linear form (d loss / d W and
    //! d bias straight into `grad`, zero on entry), then the backward pass from d loss / d hidden.
    template <class Mixer>
    auto linear_step(const transformer& model, data_parallel& student, const Mixer& mixer, long s,
                     std::vector<std::int32_t>& tokens, int rows, int R, std::uint64_t first_replay_row, const transformer* pi,
                     const std::vector<float>* pi_hidden, std::optional<data_parallel>& reference, std::vector<float>& grad) {
        const int B = o_.batch, T = toy::toy_len, V = o_.model.vocab, d = o_.model.width;
        const std::ptrdiff_t nx = std::ptrdiff_t(B) * T, nr = std::ptrdiff_t(R) * T;
        linear_hidden_.resize(std::ptrdiff_t(rows) * T, d);
        student.forward_hidden(tokens.data(), rows, T, linear_hidden_);
        linear_dhidden_.resize(linear_hidden_.rows(), d);
        const auto& lay = model.layout();
        selfreplay::linear_objective_inputs<float> in{.train_tokens = selfreplay::make_view<const std::int32_t>(tokens.data(), {B, T}),
                                                      .student_train_hidden = selfreplay::view(std::as_const(linear_hidden_).topRows(nx)),
                                                      .student_weight = output_weight(model),
                                                      .student_bias = output_bias(model)};
        selfreplay::linear_objective_gradients<float> out{
            .train_hidden = selfreplay::view(linear_dhidden_.topRows(nx)),
            .weight = selfreplay::transposed(selfreplay::make_view(grad.data() + lay.wout, {d, V})),
            .bias = selfreplay::make_view(grad.data() + lay.bout, {V})};
        if constexpr (Mixer::needs_replay_batch) in.replay_tokens = selfreplay::make_view<const std::int32_t>(tokens.data() + nx, {R, T});
        if constexpr (Mixer::needs_student_replay_logits) {
            in.student_replay_hidden = selfreplay::view(std::as_const(linear_hidden_).bottomRows(nr));
            out.replay_hidden = selfreplay::view(linear_dhidden_.bottomRows(nr));
        }
        if constexpr (Mixer::needs_reference_replay_logits) {
            if (pi_hidden) {  // pi's hidden states on these rows were recorded while the source generated them
                const std::size_t block = std::size_t(R) * o_.buffer_batches;
                const std::size_t offset = std::size_t(first_replay_row % block) * T * d;
                in.reference_replay_hidden = selfreplay::make_view<const float>(pi_hidden->data() + offset, {R * T, d});
            } else {  // stored replay rows: run pi on them
                reference->forward_hidden(tokens.data() + nx, R, T, linear_ref_hidden_);
                in.reference_replay_hidden = selfreplay::view(std::as_const(linear_ref_hidden_));
            }
            in.reference_weight = output_weight(*pi);
            in.reference_bias = output_bias(*pi);
        }
        const auto obj = selfreplay::evaluate_objective(mixer, s, selfreplay::eigen_matmul{}, in, out, {.threads = o_.threads});
        student.backward_hidden(linear_dhidden_, grad);
        return obj;
    }

    static std::string fmt(double v, int prec) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.*f", prec, v);
        return buf;
    }

    toy_options o_;
    progress_fn progress_;
    checkpoint::settings ck_;                 //!< --checkpoint, --checkpoint-every, --resume
    bool ck_grid_ = false;                    //!< checkpoints of grid mode (else toy)
    std::optional<checkpoint::slots> ck_slots_;
    std::optional<snapshot> resume_;          //!< the checkpoint being resumed, until its step is reached
    long since_checkpoint_ = 0;               //!< training steps since the last checkpoint
    int strategy_ = -1;                       //!< strategy being trained (-1: the shared first task)
    const state* first_ = nullptr;            //!< the state after the shared first task
    const strategy_result* shared_ = nullptr; //!< the shared first task's results
    const std::vector<strategy_result>* done_ = nullptr;  //!< finished strategies' results
    matrix linear_hidden_, linear_dhidden_, linear_ref_hidden_;  //!< the linear steps' hidden states (kept between steps)
    std::vector<std::vector<std::int32_t>> eval_sets_;   //!< test sets: the accuracy matrix and curves
    std::vector<std::vector<std::int32_t>> valid_sets_;  //!< validation sets: when to stop a task
};

}  // namespace lab
