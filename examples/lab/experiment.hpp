#pragma once
//! \file
//! The toy continual-learning experiment: one trainer (model.hpp) learns add -> reversal ->
//! sort -> modadd under several replay strategies; accuracy is measured on every task after
//! every task and along the way.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "model.hpp"
#include "standins.hpp"
#include "toy.hpp"

namespace lab {

//! Settings of the toy experiment (every field is a command-line flag of `selfreplay-lab`).
struct toy_options {
    std::uint64_t seed = 1;
    int steps = 600;          //!< training steps per task
    int first_steps = 0;      //!< steps for the first task (0 = same as steps)
    int batch = 128;          //!< training batch (sequences)
    int replay_batch = 128;   //!< replay batch (sequences), split equally over previous tasks
    int buffer_batches = 8;   //!< self-generated replay batches generated at a time
    float lr = 2e-3f;
    int warmup = 50;
    float weight_decay = 0.02f;
    float c = 10.f;           //!< replay coefficient of the self-generated strategies
    float c_stored = 1.f;     //!< replay coefficient of the stored-exemplar strategy
    int memory = 256;         //!< stored-exemplar reservoir capacity (sequences)
    int eval_every = 100;
    int eval_size = 256;      //!< held-out examples per task
    int tasks = toy::num_tasks;
    int threads = 2;
    model_config model{.vocab = toy::vocab, .max_len = toy::toy_len, .width = 64, .layers = 2, .heads = 4, .ff = 256};
    std::vector<std::string> strategies{"none", "self-ntp", "self-kl", "stored"};
    bool quiet = false;
};

enum class replay_kind { none, self_generated, stored };
enum class mixer_kind { none, ntp_pre, kl_pre };

struct strategy_spec {
    std::string name;
    replay_kind replay;
    mixer_kind mixer;
    float c;
};

inline const char* replay_name(replay_kind k) {
    return k == replay_kind::none ? "none" : k == replay_kind::self_generated ? "self-generated" : "stored";
}
inline const char* mixer_name(mixer_kind k) { return k == mixer_kind::none ? "none" : k == mixer_kind::ntp_pre ? "ntp_pre" : "kl_pre"; }

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
    std::vector<std::vector<double>> matrix;  //!< R[i][j]
    std::vector<curve_point> curve;
    double seconds = 0;
};

//! Reservoir of stored exemplars (Vitter's algorithm R).
struct reservoir {
    int capacity = 0;
    long seen = 0;
    std::vector<std::int32_t> rows;  // [size, toy_len]
    int size() const { return int(rows.size() / toy::toy_len); }
    void offer(const std::int32_t* seq, std::uint64_t seed) {
        if (size() < capacity) {
            rows.insert(rows.end(), seq, seq + toy::toy_len);
        } else {
            const auto j = long(standin::uniform(seed, 77, std::uint64_t(seen)) * double(seen + 1));
            if (j < capacity) std::copy(seq, seq + toy::toy_len, rows.begin() + j * toy::toy_len);
        }
        ++seen;
    }
};

//! Greedy-decoding exact-match accuracy on a held-out set of `task`.
inline double evaluate(const transformer& m, int task, const std::vector<std::int32_t>& set) {
    const int n = int(set.size() / toy::toy_len), T = toy::toy_len, P = toy::prompt_len(task);
    kv_cache cache;
    m.start(cache, n);
    matrix logits;
    std::vector<std::int32_t> tok(n), pred(std::size_t(n) * (toy::answer_digits + 1));
    for (int t = 0; t < P; ++t) {
        for (int i = 0; i < n; ++i) tok[i] = set[std::size_t(i) * T + t];
        m.step(cache, tok.data(), logits);
    }
    for (int k = 0; k <= toy::answer_digits; ++k) {
        for (int i = 0; i < n; ++i) pred[std::size_t(i) * (toy::answer_digits + 1) + k] = tok[i] = standin::greedy(logits.row(i).data(), m.vocab_size());
        if (k < toy::answer_digits) m.step(cache, tok.data(), logits);
    }
    int correct = 0;
    for (int i = 0; i < n; ++i)
        correct += std::equal(pred.begin() + std::ptrdiff_t(i) * (toy::answer_digits + 1),
                              pred.begin() + std::ptrdiff_t(i + 1) * (toy::answer_digits + 1), set.begin() + std::ptrdiff_t(i) * T + P);
    return double(correct) / n;
}

class toy_experiment {
public:
    using progress_fn = std::function<void(const std::string&)>;

    toy_experiment(toy_options o, progress_fn progress) : o_(std::move(o)), progress_(std::move(progress)) {
        o_.model.check();
        for (int t = 0; t < o_.tasks; ++t) {
            std::vector<std::int32_t> set(std::size_t(o_.eval_size) * toy::toy_len);
            for (int i = 0; i < o_.eval_size; ++i) draw(t, 900 + t, std::uint64_t(i), set.data() + std::size_t(i) * toy::toy_len);
            eval_sets_.push_back(std::move(set));
        }
    }

    //! Runs every strategy; the first task is trained once and shared.
    std::vector<strategy_result> run() {
        std::vector<strategy_spec> specs;
        for (const auto& s : o_.strategies) specs.push_back(make_strategy(s, o_));
        // first task, shared by every strategy
        state first{transformer(o_.model), {}, {}, {}, {}};
        first.model.init(o_.seed);
        first.store.capacity = o_.memory;
        strategy_result shared{{"shared", replay_kind::none, mixer_kind::none, 0.f}, {}, {}, 0};
        const auto t0 = clock::now();
        train_task(first, shared, 0, nullptr);
        shared.seconds = seconds_since(t0);

        std::vector<strategy_result> results(specs.size());
        std::atomic<std::size_t> next{0};
        auto worker = [&] {
            for (std::size_t i; (i = next++) < specs.size();) {
                const auto s0 = clock::now();
                state st = first;
                strategy_result r{specs[i], shared.matrix, shared.curve, 0};
                for (int task = 1; task < o_.tasks; ++task) {
                    transformer pi = st.model;  // frozen reference, copied at the task change
                    st.opt.reset(st.model.num_params());
                    st.replay_buffer.clear();
                    st.replay_logits.clear();
                    train_task(st, r, task, &pi);
                }
                r.seconds = shared.seconds + seconds_since(s0);
                results[i] = std::move(r);
            }
        };
        const int nt = std::max(1, std::min<int>(o_.threads, int(specs.size())));
        std::vector<std::thread> pool;
        for (int t = 1; t < nt; ++t) pool.emplace_back(worker);
        worker();
        for (auto& t : pool) t.join();
        return results;
    }

    const toy_options& options() const { return o_; }

private:
    using clock = std::chrono::steady_clock;
    static double seconds_since(clock::time_point t) { return std::chrono::duration<double>(clock::now() - t).count(); }

    struct state {
        transformer model;
        adamw opt;
        reservoir store;
        std::vector<std::int32_t> replay_buffer;  // generated replay sequences not yet used
        std::vector<float> replay_logits;         // pi's logits for them [rows * T, V]
    };

    //! One training example of `task` from the random stream (`stream`, `index`).
    void draw(int task, std::uint64_t stream, std::uint64_t index, std::int32_t* out) const {
        const auto w = standin::random_word(o_.seed, stream, index);
        const int a = int(w % 1000), b = int((w >> 20) % 1000);
        toy::encode(task, a, b, out);
    }

    std::vector<double> eval_all(const transformer& m) const {
        std::vector<double> acc;
        for (int t = 0; t < o_.tasks; ++t) acc.push_back(evaluate(m, t, eval_sets_[t]));
        return acc;
    }

    //! Samples `rows` sequences from pi, row i prompted with previous task (i mod task).
    void generate(const transformer& pi, int task, std::uint64_t& counter, int rows, std::vector<std::int32_t>& seqs,
                  std::vector<float>& logits_out) const {
        const int T = toy::toy_len, V = pi.vocab_size();
        seqs.assign(std::size_t(rows) * T, 0);
        logits_out.assign(std::size_t(rows) * T * V, 0.f);
        kv_cache cache;
        pi.start(cache, rows);
        std::vector<std::int32_t> tok(rows);
        for (int i = 0; i < rows; ++i) tok[i] = seqs[std::size_t(i) * T] = toy::TASK0 + (i % task);
        matrix logits;
        for (int t = 0; t + 1 < T; ++t) {
            pi.step(cache, tok.data(), logits);
            for (int i = 0; i < rows; ++i) {
                std::copy_n(logits.row(i).data(), V, logits_out.begin() + (std::ptrdiff_t(i) * T + t) * V);
                tok[i] = seqs[std::size_t(i) * T + t + 1] =
                    standin::categorical(logits.row(i).data(), V, standin::uniform(o_.seed, (std::uint64_t(task) << 32) + counter + std::uint64_t(i), std::uint64_t(t)));
            }
        }
        counter += std::uint64_t(rows);
    }

    void train_task(state& st, strategy_result& r, int task, const transformer* pi) {
        const int B = o_.batch, T = toy::toy_len, V = o_.model.vocab;
        const int steps = task == 0 && o_.first_steps > 0 ? o_.first_steps : o_.steps;
        const bool replay = pi != nullptr && r.spec.replay != replay_kind::none;
        const int R = replay ? o_.replay_batch : 0;
        const long step0 = r.curve.empty() ? 0 : r.curve.back().step;
        std::vector<std::int32_t> tokens(std::size_t(B + R) * T);
        std::vector<float> grad(st.model.num_params());
        matrix logits, dlogits, lx, lr_, lpi, dx, dr;
        forward_cache cache;
        std::uint64_t gen_counter = 0;
        double loss_acc = 0;
        int loss_n = 0;
        st.opt.weight_decay = o_.weight_decay;
        if (st.opt.m.empty()) st.opt.reset(st.model.num_params());
        for (int s = 0; s < steps; ++s) {
            for (int i = 0; i < B; ++i) {
                std::int32_t* row = tokens.data() + std::size_t(i) * T;
                draw(task, std::uint64_t(task), std::uint64_t(s) * B + std::uint64_t(i), row);
                if (st.store.capacity > 0) st.store.offer(row, o_.seed + std::uint64_t(task) * 1315423911u);
            }
            if (R > 0) fill_replay(st, r.spec, task, *pi, gen_counter, s, tokens.data() + std::size_t(B) * T, lpi);
            st.model.forward(tokens.data(), B + R, T, logits, &cache);
            dlogits.resize(logits.rows(), V);
            lx = logits.topRows(std::ptrdiff_t(B) * T);
            dx.resize(lx.rows(), V);
            double loss = standin::next_token_loss(lx, tokens.data(), B, T, &dx, 1.f);
            dlogits.topRows(std::ptrdiff_t(B) * T) = dx;
            if (R > 0) {
                lr_ = logits.bottomRows(std::ptrdiff_t(R) * T);
                dr.resize(lr_.rows(), V);
                if (r.spec.mixer == mixer_kind::kl_pre)
                    loss += r.spec.c * standin::kl_loss(lr_, lpi, R, T, &dr, r.spec.c);
                else
                    loss += r.spec.c * standin::next_token_loss(lr_, tokens.data() + std::size_t(B) * T, R, T, &dr, r.spec.c);
                dlogits.bottomRows(std::ptrdiff_t(R) * T) = dr;
            }
            std::fill(grad.begin(), grad.end(), 0.f);
            st.model.backward(cache, dlogits, grad);
            st.opt.update(st.model, grad, standin::warmup_constant(o_.lr, o_.warmup, s));
            loss_acc += loss;
            ++loss_n;
            if ((s + 1) % o_.eval_every == 0 || s + 1 == steps) {
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
            }
        }
        r.matrix.push_back(r.curve.back().acc);
    }

    //! Writes R replay rows into `out` (and pi's logits for them into `lpi` for KL).
    void fill_replay(state& st, const strategy_spec& spec, int task, const transformer& pi, std::uint64_t& gen_counter, int step,
                     std::int32_t* out, matrix& lpi) {
        const int R = o_.replay_batch, T = toy::toy_len, V = o_.model.vocab;
        if (spec.replay == replay_kind::stored) {
            const int n = st.store.size();
            for (int i = 0; i < R; ++i) {
                const auto j = int(standin::uniform(o_.seed, 300 + std::uint64_t(task), std::uint64_t(step) * R + std::uint64_t(i)) * n);
                std::copy_n(st.store.rows.begin() + std::ptrdiff_t(j) * T, T, out + std::size_t(i) * T);
            }
            return;
        }
        if (st.replay_buffer.empty()) generate(pi, task, gen_counter, R * o_.buffer_batches, st.replay_buffer, st.replay_logits);
        const std::size_t used = std::size_t(R) * T;
        std::copy_n(st.replay_buffer.end() - std::ptrdiff_t(used), used, out);
        lpi = Eigen::Map<const matrix>(st.replay_logits.data() + st.replay_logits.size() - used * V, std::ptrdiff_t(used), V);
        st.replay_buffer.resize(st.replay_buffer.size() - used);
        st.replay_logits.resize(st.replay_logits.size() - used * V);
    }

    static std::string fmt(double v, int prec) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.*f", prec, v);
        return buf;
    }

    toy_options o_;
    progress_fn progress_;
    std::vector<std::vector<std::int32_t>> eval_sets_;
};

}  // namespace lab
