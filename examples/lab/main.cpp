//! selfreplay-lab: reproduces the paper's toy continual-learning result on a CPU (docs/lab.md).

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cli.hpp"
#include "distributed.hpp"
#include "experiment.hpp"
#include "report.hpp"
#include "text.hpp"

namespace {

const char* description = R"(selfreplay-lab [toy|grid] [flags]; selfreplay-lab text [flags] (see `selfreplay-lab text --help`)

Runs the toy continual-learning experiment: a tiny transformer learns add -> reversal -> sort ->
modadd, once per replay strategy; prints each strategy's accuracy matrix and a summary table and
writes <out>/toy.json, <out>/toy_curves.csv and <out>/toy.svg. See docs/lab.md.
`grid` runs every combination of a replay source (self-generated, stored reservoir) and a mixer
(ntp_pre, kl_pre, replace), expanded at compile time with selfreplay::for_each_combination, on
the same tasks (default --tasks 3: add, reversal, sort) and writes <out>/grid.csv and grid.json.)";

const char* footer = R"(Across processes: `mpirun -np R selfreplay-lab ...` (or scripts/lab --ranks R) splits the
--shards over R ranks (needs --shards >= R to use them all); the results are bit-identical to one
process with the same --shards, and only rank 0 prints and writes files (docs/scale-out.md).)";

[[noreturn]] void fail(const std::string& msg) {
    std::cerr << "selfreplay-lab: " << msg << "\n(try --help)\n";
    std::exit(2);
}

//! The toy and grid modes' command line.
struct toy_command {
    lab::toy_options o;
    std::string mode = "toy";
    std::string out = "results";
    lab::checkpoint::settings checkpoints;
    bool grid() const { return mode == "grid"; }
};

//! Parses the toy / grid command line into `c`; returns an exit code when the program must stop.
std::optional<int> parse_toy_args(int argc, char** argv, toy_command& c) {
    using lab::cli::ranged;
    auto& o = c.o;
    CLI::App app(description, "selfreplay-lab");
    app.footer(footer);
    app.add_option("mode", c.mode, "toy or grid")->check(CLI::IsMember({"toy", "grid"}))->capture_default_str();
    ranged<std::uint64_t>(app, "--seed", o.seed, 0, std::uint64_t(1) << 62, "random seed for initialisation, data and sampling");
    app.add_option("--steps", o.steps,
                   "most training steps per task: one number for every task, or one per task in order (comma-separated)")
        ->delimiter(',')->check(CLI::Range(1, 1000000))->capture_default_str();
    ranged(app, "--target-accuracy", o.target_accuracy, 0.0, 1.0,
           "a task stops at the first evaluation where its accuracy on a validation set (separate from the test set) "
           "reaches this; 0 trains every task for all its steps");
    ranged(app, "--batch", o.batch, 1, 65536, "training batch, sequences");
    ranged(app, "--replay-batch", o.replay_batch, 1, 65536, "self-generated replay batch, sequences, split equally over the previous tasks");
    ranged(app, "--buffer-batches", o.buffer_batches, 1, 1024, "self-generated replay batches sampled from pi at a time");
    ranged(app, "--lr", o.lr, 0.f, 10.f, "peak AdamW learning rate");
    ranged(app, "--warmup", o.warmup, 0, 1000000, "linear warm-up steps at the start of each task");
    std::string schedule = "cosine";
    app.add_option("--schedule", schedule,
                   "learning rate within each task after the warm-up: cosine (decay to 0 at the task's last step) or constant")
        ->check(CLI::IsMember({"cosine", "constant"}))->capture_default_str();
    ranged(app, "--weight-decay", o.weight_decay, 0.f, 10.f, "AdamW decoupled weight decay");
    ranged(app, "--beta2", o.beta2, 0.f, 0.999999f, "AdamW second-moment decay (the paper's toy setting: 0.99)");
    ranged(app, "--c", o.c, 0.f, 1e6f, "replay coefficient c of the self-generated strategies");
    ranged(app, "--c-stored", o.c_stored, 0.f, 1e6f, "replay coefficient of the stored-exemplar strategy");
    ranged(app, "--fraction", o.fraction, 0.0, 1.0, "share of training rows overwritten by the replace mixer (grid)");
    ranged(app, "--memory", o.memory, 1, 10000000, "stored-exemplar reservoir capacity, sequences");
    ranged(app, "--stored-batch", o.stored_batch, 1, 65536, "replay batch of the stored-exemplar strategy, sequences");
    ranged(app, "--eval-every", o.eval_every, 1, 1000000, "evaluate every N steps (curves, progress, early stop)");
    ranged(app, "--eval-size", o.eval_size, 1, 1000000, "held-out examples per task, in each of the test and validation sets");
    auto* tasks = ranged(app, "--tasks", o.tasks, 1, lab::toy::num_tasks,
                         "number of tasks, in the order add reversal sort modadd (grid: 2 or more; default 3 there)");
    app.add_option("--strategies", o.strategies, "subset of none,self-ntp,self-kl,stored (comma-separated)")
        ->delimiter(',')
        ->check(CLI::Validator(
            [&o](std::string& name) {
                try {
                    (void)lab::make_strategy(name, o);
                } catch (const std::exception& e) {
                    return std::string(e.what());
                }
                return std::string();
            },
            "STRATEGY"))
        ->capture_default_str();
    ranged(app, "--shards", o.shards, 1, 256,
           "data-parallel shards of every batch: each shard's forward and backward pass (and generation) runs on its own "
           "thread, and the shards' gradients are summed in order; the results depend on it");
    ranged(app, "--threads", o.threads, 1, 256, "threads running the shards; the results do not depend on it");
    ranged(app, "--width", o.model.width, 1, 4096, "transformer width");
    ranged(app, "--layers", o.model.layers, 1, 64, "transformer blocks");
    ranged(app, "--heads", o.model.heads, 1, 256, "attention heads");
    ranged(app, "--ff", o.model.ff, 1, 65536, "MLP hidden width");
    app.add_option("--out", c.out, "output directory")->capture_default_str();
    app.add_flag("--quiet", o.quiet, "no progress lines");
    app.add_flag("--linear-loss", o.linear_loss,
                 "compute the output layer and the objective from hidden states (the linear losses: no [rows, vocab] "
                 "logits in training steps)");
    app.add_option("--checkpoint", c.checkpoints.dir,
                   "save a checkpoint every --checkpoint-every steps into this directory (two alternating files, written "
                   "atomically; docs/lab.md)");
    ranged(app, "--checkpoint-every", c.checkpoints.every, 1L, 1L << 40, "training steps between checkpoints");
    app.add_flag("--resume", c.checkpoints.resume,
                 "continue from the newest good checkpoint in --checkpoint (the same flags as the interrupted run); "
                 "results equal an uninterrupted run's bit for bit");
    if (const auto stop = lab::cli::parse(app, argc, argv)) return stop;

    if (o.steps.size() == 1) o.steps.assign(lab::toy::num_tasks, o.steps[0]);
    if (o.steps.size() != std::size_t(lab::toy::num_tasks))
        fail("--steps needs one number or " + std::to_string(lab::toy::num_tasks) + " comma-separated numbers, got " +
             std::to_string(o.steps.size()));
    if (o.strategies.empty()) fail("--strategies needs at least one strategy");
    o.cosine = schedule == "cosine";
    if (c.grid()) {
        if (tasks->count() == 0) o.tasks = 3;
        if (o.tasks < 2) fail("--tasks must be at least 2 in grid mode, got " + std::to_string(o.tasks));
    }
    if (o.model.width % o.model.heads != 0)
        fail("--width " + std::to_string(o.model.width) + " is not divisible by --heads " + std::to_string(o.model.heads));
    return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
    const lab::mpi_session mpi(&argc, &argv);
    const auto& group = lab::process_group::world();
    const bool root = group.rank() == 0;
    if (argc > 1 && std::string(argv[1]) == "text") {
        if (group.ranks() > 1) fail("the text experiment runs in one process (toy and grid run across ranks)");
        return lab::run_text(argc - 1, argv + 1);
    }
    toy_command cmd;
    if (const auto stop = parse_toy_args(argc, argv, cmd)) return *stop;
    auto& o = cmd.o;
    const std::string& out = cmd.out;
    const bool grid = cmd.grid();
    auto& checkpoints = cmd.checkpoints;
    if (!root) o.quiet = true;
    std::error_code ec;
    if (root) std::filesystem::create_directories(out, ec);
    if (ec) fail("cannot create output directory '" + out + "': " + ec.message());

    std::mutex io;
    const auto t0 = std::chrono::steady_clock::now();
    lab::toy_experiment exp(o, [&](const std::string& line) {
        std::lock_guard lock(io);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf("%7.1fs %s\n", s, line.c_str());
        std::fflush(stdout);
    });
    if (root) {
        std::printf("selfreplay-lab %s: transformer width %d, %d layers, %d heads, ff %d (%zu parameters); %d tasks, steps",
                    grid ? "grid" : "toy", o.model.width, o.model.layers, o.model.heads, o.model.ff, lab::transformer(o.model).num_params(), o.tasks);
        for (int t = 0; t < o.tasks; ++t) std::printf(" %s %d", std::string(lab::toy::task_names[t]).c_str(), o.steps[t]);
        std::printf("; batch %d, replay batch %d, %d %s, one after another; %d shards on %d ranks x %d threads\n", o.batch,
                    o.replay_batch, grid ? 6 : int(o.strategies.size()), grid ? "source x mixer combinations" : "strategies",
                    o.shards, group.ranks(), o.threads);
    }
    checkpoints.write = root;  // every rank reads checkpoints on --resume, rank 0 alone writes them
    std::vector<lab::strategy_result> results;
    try {
        if (const auto where = exp.use_checkpoints(checkpoints, grid); !where.empty() && root) std::printf("%s\n", where.c_str());
        results = grid ? exp.run_grid() : exp.run();
    } catch (const std::exception& e) {
        std::cerr << "selfreplay-lab: " << e.what() << "\n";
        return 1;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!root) return 0;
    try {
        if (grid)
            lab::report_grid(results, seconds, out, std::cout);
        else
            lab::report_toy(results, o, seconds, out, std::cout);
    } catch (const std::exception& e) {
        std::cerr << "selfreplay-lab: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
