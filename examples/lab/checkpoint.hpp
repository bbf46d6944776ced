#pragma once
//! \file
//! Checkpoints of the lab (`--checkpoint DIR`, `--checkpoint-every N`, `--resume`; docs/lab.md
//! "Checkpoints and resuming"): everything a run needs to continue bit-identically, written
//! atomically into two alternating slots so that the previous good checkpoint always survives.
//!
//! A checkpoint file is a selfreplay state file (replay/state_io.hpp: magic, format version,
//! byte-order mark, payload size, payload, FNV-1a checksum; little-endian on every supported
//! platform) whose payload is one record: the tag "selfreplay-lab checkpoint", the lab's
//! checkpoint version (`format_version`), the mode ("toy", "grid", "text pretrain", ...), the
//! configuration text (every flag the results depend on, compared byte for byte on resume), the
//! sequence number of the checkpoint, then the mode's body (the experiment's state, with the
//! replay sources' own `save_state` records nested as byte arrays).

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <optional>
#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <selfreplay/metrics/continual.hpp>
#include <selfreplay/replay/state_io.hpp>

#include "model.hpp"

namespace lab::checkpoint {

//! Version of the lab's checkpoint body written by this build (and the only one it reads).
inline constexpr std::uint32_t format_version = 1;

//! The checkpoint flags of every mode.
struct settings {
    std::string dir;    //!< --checkpoint DIR (empty: no checkpoints)
    long every = 100;   //!< --checkpoint-every N: training steps between checkpoints
    bool resume = false;  //!< --resume: continue from the newest good checkpoint in `dir`
    //! Whether this process writes the checkpoints: false on every process but one when several
    //! run the same experiment (they read checkpoints on resume but must not race on the files).
    bool write = true;
    bool enabled() const { return !dir.empty(); }
};

//! Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename over
//! `path`, fsync of the directory. A crash leaves either the old file or the new one, never a
//! mix. Throws std::runtime_error naming the file and the system's reason.
inline void write_atomic(const std::string& path, const std::vector<unsigned char>& bytes) {
    const std::string tmp = path + ".tmp";
    auto fail = [&](const std::string& what, const std::string& file) {
        throw std::runtime_error("cannot " + what + " '" + file + "': " + std::strerror(errno));
    };
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail("create", tmp);
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const int e = errno;
            ::close(fd);
            errno = e;
            fail("write", tmp);
        }
        done += std::size_t(n);
    }
    if (::fsync(fd) != 0) {
        const int e = errno;
        ::close(fd);
        errno = e;
        fail("fsync", tmp);
    }
    if (::close(fd) != 0) fail("close", tmp);
    if (std::rename(tmp.c_str(), path.c_str()) != 0) fail("rename the new checkpoint onto", path);
    std::string dir = std::filesystem::path(path).parent_path().string();
    if (dir.empty()) dir = ".";
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) fail("open the directory", dir);
    const int rc = ::fsync(dfd);
    const int e = errno;
    ::close(dfd);
    errno = e;
    if (rc != 0) fail("fsync the directory", dir);
}

//! The configuration a run's results depend on, as "flag value" lines: stored in every
//! checkpoint and compared byte for byte on resume (a differing line is named in the error).
class config_text {
public:
    config_text& add(const std::string& flag, const std::string& value) {
        text_ += flag + " " + value + "\n";
        return *this;
    }
    config_text& add(const std::string& flag, long long v) { return add(flag, std::to_string(v)); }
    config_text& add(const std::string& flag, int v) { return add(flag, std::to_string(v)); }
    config_text& add(const std::string& flag, std::uint64_t v) { return add(flag, std::to_string(v)); }
    config_text& add(const std::string& flag, bool v) { return add(flag, std::string(v ? "on" : "off")); }
    //! Doubles (and floats) exactly: 17 significant digits round-trip a double.
    config_text& add(const std::string& flag, double v) {
        char buf[40];
        std::snprintf(buf, sizeof buf, "%.17g", v);
        return add(flag, std::string(buf));
    }
    config_text& add(const std::string& flag, float v) { return add(flag, double(v)); }
    template <class T>
    config_text& add_list(const std::string& flag, const std::vector<T>& values) {
        std::ostringstream s;
        for (std::size_t i = 0; i < values.size(); ++i) s << (i ? "," : "") << values[i];
        return add(flag, s.str());
    }
    const std::string& str() const { return text_; }

private:
    std::string text_;
};

//! The first line that differs between two configuration texts, for messages.
inline std::string config_difference(const std::string& saved, const std::string& now) {
    std::istringstream a(saved), b(now);
    for (std::string x, y;;) {
        const bool ha = bool(std::getline(a, x)), hb = bool(std::getline(b, y));
        if (!ha && !hb) return "";
        if (x != y) return "'" + (ha ? x : "(nothing)") + "' in the checkpoint, '" + (hb ? y : "(nothing)") + "' in this run";
    }
}

// ---------------------------------------------------------------------------------------------
// fields shared by the modes' bodies

inline void put_floats(selfreplay::state_writer& w, const float* data, std::size_t n) {
    w.put<std::uint64_t>(n);
    for (std::size_t i = 0; i < n; ++i) w.put<float>(data[i]);
}

//! Reads `n` floats (refusing another count) into `out`.
inline void get_floats(selfreplay::state_reader& r, const std::string& what, float* out, std::size_t n) {
    const auto count = r.get<std::uint64_t>(what);
    if (count != n)
        r.fail("holds " + std::to_string(count) + " values of '" + what + "' where this configuration has " + std::to_string(n));
    for (std::size_t i = 0; i < n; ++i) out[i] = r.get<float>(what);
}

//! A model's parameters (its shape comes from the configuration).
inline void put_model(selfreplay::state_writer& w, const transformer& m) { put_floats(w, m.params().data(), m.num_params()); }
inline void get_model(selfreplay::state_reader& r, const std::string& what, transformer& m) {
    get_floats(r, what, m.params().data(), m.num_params());
    for (float x : m.params())
        if (!std::isfinite(x)) r.fail("holds a non-finite parameter in '" + what + "'");
}

//! AdamW's moments and step count (its hyperparameters come from the configuration).
inline void put_adamw(selfreplay::state_writer& w, const adamw& o) {
    w.put<std::int64_t>(o.t);
    put_floats(w, o.m.data(), o.m.size());
    put_floats(w, o.v.data(), o.v.size());
}
inline void get_adamw(selfreplay::state_reader& r, const std::string& what, adamw& o, std::size_t n) {
    const auto t = r.get<std::int64_t>(what + " step");
    if (t < 0) r.fail("holds a negative optimizer step in '" + what + "'");
    for (auto* moments : {&o.m, &o.v}) {
        // a reset optimizer that has not stepped yet may hold no moments (`update` sizes them)
        const auto count = r.get<std::uint64_t>(what + " moments");
        if (count != n && !(count == 0 && t == 0))
            r.fail("holds " + std::to_string(count) + " optimizer moments in '" + what + "' where the model has " + std::to_string(n));
        moments->resize(count);
        for (auto& x : *moments) x = r.get<float>(what + " moments");
    }
    if (o.m.size() != o.v.size()) r.fail("holds first and second moments of different sizes in '" + what + "'");
    for (std::size_t i = 0; i < o.m.size(); ++i)
        if (!std::isfinite(o.m[i]) || !(o.v[i] >= 0.f && o.v[i] <= 3.4e38f)) r.fail("holds invalid optimizer moments in '" + what + "'");
    o.t = long(t);
}

//! An accuracy matrix (continual-learning metrics): its width and rows.
inline void put_matrix(selfreplay::state_writer& w, const selfreplay::accuracy_matrix& m) {
    w.put<std::uint64_t>(m.tasks());
    w.put<std::uint64_t>(m.trained());
    for (std::size_t i = 0; i < m.trained(); ++i)
        for (std::size_t j = 0; j < m.tasks(); ++j) w.put<double>(m(i, j));
}
inline selfreplay::accuracy_matrix get_matrix(selfreplay::state_reader& r, std::size_t tasks) {
    const auto width = r.get<std::uint64_t>("accuracy matrix width");
    const auto rows = r.get<std::uint64_t>("accuracy matrix rows");
    if (width != tasks || rows > tasks)
        r.fail("holds an accuracy matrix of " + std::to_string(rows) + " x " + std::to_string(width) + " for " + std::to_string(tasks) + " tasks");
    selfreplay::accuracy_matrix m(tasks);
    for (std::size_t i = 0; i < rows; ++i) {
        std::vector<double> row(tasks);
        for (auto& x : row)
            if (x = r.get<double>("accuracy"); !(x >= 0 && x <= 1)) r.fail("holds an accuracy outside [0, 1]");
        m.add_row(row);
    }
    return m;
}

//! A replay source's own state record (`save_state`), nested as a byte array: restored by
//! `restore_nested` once the source exists.
template <class Source>
std::vector<std::uint8_t> nested_record(const Source& source) {
    selfreplay::state_writer w;
    source.save(w);
    return w.payload();
}
template <class Source>
void restore_nested(const std::vector<std::uint8_t>& record, const std::string& file, Source& source) {
    selfreplay::state_reader r(record, file);
    auto staged = source.stage(r);
    r.expect_end();
    source.commit(std::move(staged));
}

// ---------------------------------------------------------------------------------------------
// the toy and grid experiments

//! The configuration text of the toy and grid experiments: every flag their results depend on
//! (not --threads, --quiet, --out or the checkpoint flags).
template <class Options>
std::string toy_config(const Options& o, const std::string& mode) {
    config_text c;
    c.add("mode", mode).add("--seed", o.seed).add_list("--steps", o.steps).add("--target-accuracy", o.target_accuracy)
        .add("--batch", o.batch).add("--replay-batch", o.replay_batch).add("--buffer-batches", o.buffer_batches).add("--lr", o.lr)
        .add("--warmup", o.warmup).add("--schedule", std::string(o.cosine ? "cosine" : "constant")).add("--weight-decay", o.weight_decay)
        .add("--beta2", o.beta2).add("--c", o.c).add("--c-stored", o.c_stored).add("--fraction", o.fraction).add("--memory", o.memory)
        .add("--stored-batch", o.stored_batch).add("--eval-every", o.eval_every).add("--eval-size", o.eval_size).add("--tasks", o.tasks)
        .add_list("--strategies", o.strategies).add("--shards", o.shards).add("--width", o.model.width).add("--layers", o.model.layers)
        .add("--heads", o.model.heads).add("--ff", o.model.ff).add("--linear-loss", o.linear_loss);
    return c.str();
}

//! The toy (and grid) experiment between two training steps: where it is in its strategy / task
//! / step loops, the shared first-task state and results, the finished strategies' results, the
//! current strategy's state (model, AdamW, stored-exemplar reservoir), results so far (accuracy
//! matrix, curve), the loss accumulated since the last evaluation, the frozen reference pi and
//! the self-generated source's record. `State` is {model, opt, store}; `Result` is
//! `strategy_result`. `make_state` builds an empty state of the configuration before `restore`.
template <class State, class Result>
struct toy_body {
    std::function<State()> make_state;  //!< a fresh state of this configuration (for `restore`)
    std::size_t tasks = 0;              //!< accuracy-matrix width of this configuration
    std::size_t strategies = 0;         //!< strategies (toy) or source x mixer cells (grid)
    std::vector<int> steps;             //!< most steps of each task in this configuration

    int strategy = -1;    //!< index of the strategy being trained; -1: the shared first task
    int task = 0;         //!< task being trained
    long step = 0;        //!< steps of `task` done (the next step to run)
    double loss_acc = 0;  //!< training loss summed since the last evaluation
    long loss_n = 0;      //!< steps in `loss_acc`
    std::optional<State> first;    //!< the state after the shared first task (strategy >= 0)
    std::optional<Result> shared;  //!< the shared first task's results (strategy >= 0)
    std::vector<Result> done;      //!< finished strategies' results
    std::optional<State> current;  //!< the strategy's state
    std::optional<Result> result;  //!< the strategy's results so far
    std::optional<transformer> pi; //!< the frozen reference of `task` (task > 0)
    std::vector<std::uint8_t> source;  //!< the self-generated source's record (empty: none)

    void save(selfreplay::state_writer& w) const {
        w.put<std::int32_t>(strategy);
        w.put<std::int32_t>(task);
        w.put<std::int64_t>(step);
        w.put<double>(loss_acc);
        w.put<std::int64_t>(loss_n);
        if (strategy >= 0) {
            save_state(w, *first);
            save_result(w, *shared);
        }
        w.put<std::uint64_t>(done.size());
        for (const auto& r : done) save_result(w, r);
        save_state(w, *current);
        save_result(w, *result);
        if (task > 0) put_model(w, *pi);
        w.put_array(source);
    }

    void restore(selfreplay::state_reader& r) {
        strategy = r.get<std::int32_t>("strategy");
        task = r.get<std::int32_t>("task");
        step = long(r.get<std::int64_t>("step"));
        loss_acc = r.get<double>("loss sum");
        loss_n = long(r.get<std::int64_t>("loss count"));
        if (strategy < -1 || strategy >= int(strategies) || task < 0 || std::size_t(task) >= steps.size() ||
            (strategy == -1) != (task == 0) || step < 1 || step >= steps[std::size_t(task)])
            r.fail("holds an impossible position: strategy " + std::to_string(strategy) + ", task " + std::to_string(task) + ", step " +
                   std::to_string(step));
        if (!std::isfinite(loss_acc) || loss_n < 0 || loss_n > step) r.fail("holds an invalid loss accumulator");
        if (strategy >= 0) {
            first = restore_state(r);
            shared = restore_result(r);
        }
        const auto n = r.get<std::uint64_t>("finished strategies");
        if (n != std::uint64_t(std::max(strategy, 0))) r.fail("holds " + std::to_string(n) + " finished strategies before strategy " + std::to_string(strategy));
        done.clear();
        for (std::uint64_t i = 0; i < n; ++i) done.push_back(restore_result(r));
        current = restore_state(r);
        result = restore_result(r);
        if (result->matrix.trained() != std::size_t(task)) r.fail("holds an accuracy matrix inconsistent with its task");
        pi.reset();
        if (task > 0) {
            pi = current->model;
            get_model(r, "reference model", *pi);
        }
        source = r.get_array<std::uint8_t>("self-generated source");
    }

private:
    static void save_state(selfreplay::state_writer& w, const State& s) {
        put_model(w, s.model);
        put_adamw(w, s.opt);
        s.store.save(w);
    }
    State restore_state(selfreplay::state_reader& r) const {
        State s = make_state();
        get_model(r, "model", s.model);
        get_adamw(r, "optimizer", s.opt, s.model.num_params());
        s.store.restore(r);
        return s;
    }
    static void save_result(selfreplay::state_writer& w, const Result& x) {
        w.put_string(x.spec.name);
        w.put<std::int32_t>(std::int32_t(x.spec.replay));
        w.put<std::int32_t>(std::int32_t(x.spec.mixer));
        w.put<float>(x.spec.c);
        put_matrix(w, x.matrix);
        w.put<std::uint64_t>(x.curve.size());
        for (const auto& p : x.curve) {
            w.put<std::int32_t>(p.task_trained);
            w.put<std::int64_t>(p.step);
            w.put_array(p.acc);
            w.put<double>(p.loss);
        }
        w.put<double>(x.seconds);
    }
    Result restore_result(selfreplay::state_reader& r) const {
        Result x;
        x.spec.name = r.get_string("strategy name");
        const auto replay = r.get<std::int32_t>("replay kind"), mixer = r.get<std::int32_t>("mixer kind");
        if (replay < 0 || replay > 2 || mixer < 0 || mixer > 3) r.fail("holds an unknown replay or mixer kind");
        x.spec.replay = decltype(x.spec.replay)(replay);
        x.spec.mixer = decltype(x.spec.mixer)(mixer);
        x.spec.c = r.get<float>("replay coefficient");
        x.matrix = get_matrix(r, tasks);
        const auto points = r.get<std::uint64_t>("curve points");
        long last = 0;
        for (std::uint64_t i = 0; i < points; ++i) {
            typename decltype(x.curve)::value_type p{};
            p.task_trained = r.get<std::int32_t>("curve task");
            p.step = long(r.get<std::int64_t>("curve step"));
            p.acc = r.get_array<double>("curve accuracies");
            p.loss = r.get<double>("curve loss");
            if (p.task_trained < 0 || std::size_t(p.task_trained) >= tasks || p.step <= last || p.acc.size() != tasks)
                r.fail("holds an invalid curve point");
            for (double a : p.acc)
                if (!(a >= 0 && a <= 1)) r.fail("holds a curve accuracy outside [0, 1]");
            last = p.step;
            x.curve.push_back(std::move(p));
        }
        x.seconds = r.get<double>("seconds");
        return x;
    }
};

// ---------------------------------------------------------------------------------------------
// the text experiment

//! The text experiment's English pretraining between two steps, or finished (`step` = the
//! configuration's steps): the model, AdamW, the data stream's position and the loss accumulated
//! for the next progress line.
struct text_pretrain_body {
    std::size_t params = 0;  //!< parameters of this configuration's model (set before `restore`)
    long steps = 0;          //!< pretraining steps of this configuration (set before `restore`)

    long step = 0;               //!< steps done
    std::uint64_t drawn = 0;     //!< sequences drawn from the English stream
    double loss_acc = 0;         //!< loss summed since the last progress line
    long loss_n = 0;             //!< steps in `loss_acc`
    std::vector<float> model;    //!< the parameters
    adamw opt;

    void save(selfreplay::state_writer& w) const {
        w.put<std::int64_t>(step);
        w.put<std::uint64_t>(drawn);
        w.put<double>(loss_acc);
        w.put<std::int64_t>(loss_n);
        put_floats(w, model.data(), model.size());
        put_adamw(w, opt);
    }
    void restore(selfreplay::state_reader& r) {
        step = long(r.get<std::int64_t>("step"));
        if (step < 1 || step > steps) r.fail("holds an impossible pretraining step " + std::to_string(step));
        drawn = r.get_counter("sequences drawn");
        loss_acc = r.get<double>("loss sum");
        loss_n = long(r.get<std::int64_t>("loss count"));
        if (!std::isfinite(loss_acc) || loss_n < 0 || loss_n > step) r.fail("holds an invalid loss accumulator");
        model.assign(params, 0.f);
        get_floats(r, "model", model.data(), params);
        get_adamw(r, "optimizer", opt, params);
    }
};

//! One finetuning run of the text experiment between two steps, or finished (`done`; then
//! `result` is complete and the run is not trained again): the model, AdamW, the positions of the
//! Spanish and English streams, the self-generated source's record and the curve so far.
//! `Result` is `text::run_result` (its `spec` comes from the configuration, not the file).
template <class Result>
struct text_run_body {
    std::size_t params = 0;  //!< set before `restore`
    long max_steps = 0;      //!< set before `restore`

    bool done = false;
    long step = 0;                    //!< steps done
    std::vector<float> model;
    adamw opt;
    std::uint64_t train_drawn = 0, real_drawn = 0;  //!< sequences drawn from the Spanish and English streams
    std::vector<std::uint8_t> self;   //!< the self-generated source's record
    Result result;

    void save(selfreplay::state_writer& w) const {
        w.put<std::uint8_t>(done ? 1 : 0);
        w.put<std::int64_t>(step);
        put_floats(w, model.data(), model.size());
        put_adamw(w, opt);
        w.put<std::uint64_t>(train_drawn);
        w.put<std::uint64_t>(real_drawn);
        w.put_array(self);
        w.put_array(result.step);
        w.put_array(result.valid_ntp);
        w.put_array(result.prev_ntp);
        w.put<double>(result.forgetting);
        w.put<double>(result.prev_kl);
        w.put<double>(result.weight_ratio);
        w.put<std::uint8_t>(result.steps_to_target ? 1 : 0);
        w.put<double>(result.steps_to_target.value_or(0));
        w.put<double>(result.forgetting_at_target);
        w.put<double>(result.seconds);
        w.put<std::int64_t>(result.steps_run);
    }
    void restore(selfreplay::state_reader& r) {
        const auto flag = r.get<std::uint8_t>("finished");
        if (flag > 1) r.fail("holds a finished flag of " + std::to_string(flag));
        done = flag == 1;
        step = long(r.get<std::int64_t>("step"));
        if (step < 1 || step > max_steps) r.fail("holds an impossible step " + std::to_string(step));
        model.assign(params, 0.f);
        get_floats(r, "model", model.data(), params);
        get_adamw(r, "optimizer", opt, params);
        train_drawn = r.get_counter("Spanish sequences drawn");
        real_drawn = r.get_counter("English sequences drawn");
        self = r.get_array<std::uint8_t>("self-generated source");
        result.step = r.get_array<double>("curve steps");
        result.valid_ntp = r.get_array<double>("curve Spanish loss");
        result.prev_ntp = r.get_array<double>("curve English loss");
        const std::size_t n = result.step.size();
        if (n == 0 || result.valid_ntp.size() != n || result.prev_ntp.size() != n) r.fail("holds a ragged or empty curve");
        for (std::size_t i = 0; i < n; ++i)
            if (!(result.step[i] >= 0 && result.step[i] <= double(step)) || (i > 0 && !(result.step[i] > result.step[i - 1])))
                r.fail("holds curve steps out of order or beyond step " + std::to_string(step));
        result.forgetting = r.get<double>("forgetting");
        result.prev_kl = r.get<double>("KL to pi");
        result.weight_ratio = r.get<double>("weight ratio");
        const auto reached = r.get<std::uint8_t>("target reached");
        const double at = r.get<double>("steps to target");
        if (reached > 1) r.fail("holds a target flag of " + std::to_string(reached));
        result.steps_to_target.reset();
        if (reached) result.steps_to_target = at;
        result.forgetting_at_target = r.get<double>("forgetting at target");
        result.seconds = r.get<double>("seconds");
        result.steps_run = int(r.get<std::int64_t>("steps run"));
    }
};

// ---------------------------------------------------------------------------------------------
// files

//! The record of one checkpoint: header fields, then `Body` (which has `save(state_writer&)` and
//! `restore(state_reader&)`).
template <class Body>
struct envelope {
    std::string mode;         //!< e.g. "toy" (a checkpoint of another mode is refused)
    std::string config;       //!< the configuration text (see `config_text`)
    std::uint64_t sequence = 0;  //!< 1 for the first checkpoint of a run, then 2, 3, ...
    Body body;

    void save(selfreplay::state_writer& w) const {
        w.tag("selfreplay-lab checkpoint");
        w.put<std::uint32_t>(format_version);
        w.put_string(mode);
        w.put_string(config);
        w.put<std::uint64_t>(sequence);
        body.save(w);
    }
    //! Refuses another lab version, mode or configuration; then reads the body.
    void restore(selfreplay::state_reader& r) {
        r.expect_tag("selfreplay-lab checkpoint");
        const auto version = r.get<std::uint32_t>("checkpoint version");
        if (version != format_version)
            r.fail("is a lab checkpoint of version " + std::to_string(version) + "; this build reads version " + std::to_string(format_version));
        if (const auto m = r.get_string("mode"); m != mode) r.fail("is a checkpoint of '" + m + "', not of '" + mode + "'");
        if (const auto c = r.get_string("configuration"); c != config)
            r.fail("is from another configuration: " + config_difference(c, config));
        sequence = r.get_counter("sequence");
        body.restore(r);
    }
};

//! The two alternating checkpoint files `<dir>/<stem>.0.ckpt` and `<dir>/<stem>.1.ckpt`: checkpoint
//! number k goes to slot k % 2, so writing one never touches the newest good one.
class slots {
public:
    slots(std::string dir, std::string stem) : dir_(std::move(dir)), stem_(std::move(stem)) {}

    std::string path(int slot) const { return (std::filesystem::path(dir_) / (stem_ + "." + std::to_string(slot) + ".ckpt")).string(); }
    bool any() const { return std::filesystem::exists(path(0)) || std::filesystem::exists(path(1)); }
    std::uint64_t sequence() const { return sequence_; }

    //! Writes `e` as the next checkpoint (sequence number set here).
    template <class Body>
    void save(envelope<Body>& e) {
        e.sequence = sequence_ + 1;
        write_atomic(path(int(e.sequence % 2)), selfreplay::state_bytes(e));
        sequence_ = e.sequence;
    }

    //! Restores the newest checkpoint that loads into `e` (mode and configuration set by the
    //! caller). A refused file is reported on `log` with its reason and the other slot is
    //! tried. Returns false when neither file exists; throws std::runtime_error naming each file
    //! and why it was refused when both exist and are refused.
    template <class Body>
    bool load(envelope<Body>& e, std::ostream& log) {
        std::optional<envelope<Body>> best;
        std::string refused;
        for (int slot = 0; slot < 2; ++slot) {
            const std::string p = path(slot);
            if (!std::filesystem::exists(p)) continue;
            envelope<Body> x = e;
            try {
                selfreplay::load_state(p, x);
            } catch (const std::exception& ex) {
                refused += "\n  '" + p + "': " + ex.what();
                continue;
            }
            if (!best || x.sequence > best->sequence) best = std::move(x);
        }
        if (!best) {
            if (refused.empty()) return false;
            throw std::runtime_error("no usable checkpoint in '" + dir_ + "' (refused:" + refused + ")");
        }
        if (!refused.empty()) log << "selfreplay-lab: checkpoint refused, resuming from '" << path(int(best->sequence % 2)) << "' instead:" << refused << "\n";
        e = std::move(*best);
        sequence_ = e.sequence;
        return true;
    }

private:
    std::string dir_, stem_;
    std::uint64_t sequence_ = 0;
};

//! Checks the flags and prepares `s.dir`: creates it; without --resume, refuses a directory that
//! already holds checkpoints whose names start with `prefix` (a new run would mix with them).
inline void prepare(const settings& s, const std::string& prefix) {
    if (!s.enabled()) {
        if (s.resume) throw std::runtime_error("--resume needs --checkpoint DIR");
        return;
    }
    std::error_code ec;
    std::filesystem::create_directories(s.dir, ec);
    if (ec) throw std::runtime_error("cannot create the checkpoint directory '" + s.dir + "': " + ec.message());
    if (s.resume || !s.write) return;
    for (const auto& entry : std::filesystem::directory_iterator(s.dir)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind(prefix, 0) == 0 && name.size() > 5 && name.compare(name.size() - 5, 5, ".ckpt") == 0)
            throw std::runtime_error("'" + s.dir + "' already holds checkpoints (" + name +
                                     "): pass --resume to continue that run, or remove them to start afresh");
    }
}

// ---------------------------------------------------------------------------------------------
// the text experiment's files

//! The configuration text of the text experiment: every flag its results depend on (not
//! --threads, --quiet, --out or the checkpoint flags), the input files and the vocabulary size.
template <class Options>
std::string text_config(const Options& o) {
    config_text c;
    c.add_list("--english", o.english).add_list("--spanish", o.spanish).add("vocabulary", o.model.vocab).add("--seed", o.seed)
        .add("--seq-len", o.seq_len).add("--batch", o.batch).add("--replay-batch", o.replay_batch).add("--buffer-batches", o.buffer_batches)
        .add("--pretrain-steps", o.pretrain_steps).add("--pretrain-lr", o.pretrain_lr).add("--steps", o.steps).add("--lr-high", o.lr_high)
        .add("--lr-low", o.lr_low).add("--warmup", o.warmup).add("--weight-decay", o.weight_decay).add("--c", o.c)
        .add_list("--lr-sweep", o.lr_sweep).add_list("--fraction-sweep", o.fraction_sweep).add("--sweep-max-steps", o.sweep_max_steps)
        .add("--target", o.target).add("--target-progress", o.target_progress).add("--eval-every", o.eval_every)
        .add("--eval-size", o.eval_size).add("--valid-fraction", o.valid_fraction).add("--min-char-count", (long long)o.min_char_count)
        .add("--width", o.model.width).add("--layers", o.model.layers).add("--heads", o.model.heads).add("--ff", o.model.ff);
    return c.str();
}

//! An empty pretraining checkpoint of the text configuration `o` (to restore into or fill).
template <class Options>
envelope<text_pretrain_body> pretrain_envelope(const Options& o, std::size_t params) {
    envelope<text_pretrain_body> e{"text pretrain", text_config(o), 0, {}};
    e.body.params = params;
    e.body.steps = o.pretrain_steps;
    return e;
}

//! An empty checkpoint of the finetuning run `spec` (its settings and the target are part of
//! the configuration text).
template <class Result, class Options, class Spec>
envelope<text_run_body<Result>> run_envelope(const Options& o, const Spec& spec, double target, std::size_t params) {
    config_text c;
    c.add("run", spec.group + "/" + spec.name).add("source", std::string(spec.source_name())).add("mixer", spec.mixer_name())
        .add("strength", spec.strength()).add("lr", spec.lr).add("max steps", spec.max_steps).add("stop at target", spec.stop_at_target)
        .add("target", target);
    envelope<text_run_body<Result>> e{"text run", text_config(o) + c.str(), 0, {}};
    e.body.params = params;
    e.body.max_steps = spec.max_steps;
    return e;
}

//! The file stem of a finetuning run's checkpoints: "text-<group>-<name>", characters other than
//! letters, digits, '.' and '-' replaced by '_'.
inline std::string run_stem(const std::string& group, const std::string& name) {
    std::string stem = "text-" + group + "-" + name;
    for (char& ch : stem)
        if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-') ch = '_';
    return stem;
}

}  // namespace lab::checkpoint
