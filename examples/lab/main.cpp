//! selfreplay-lab: reproduces the paper's toy continual-learning result on a CPU (docs/lab.md).

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "distributed.hpp"
#include "experiment.hpp"
#include "report.hpp"
#include "text.hpp"

namespace {

const char* usage = R"(usage: selfreplay-lab [toy] [flags]
       selfreplay-lab grid [flags]
       selfreplay-lab text [flags]   (the English -> Spanish text experiment; see `selfreplay-lab text --help`)

Runs the toy continual-learning experiment: a tiny transformer learns add -> reversal -> sort ->
modadd, once per replay strategy; prints each strategy's accuracy matrix and a summary table and
writes <out>/toy.json, <out>/toy_curves.csv and <out>/toy.svg. See docs/lab.md.
`grid` runs every combination of a replay source (self-generated, stored reservoir) and a mixer
(ntp_pre, kl_pre, replace), expanded at compile time with selfreplay::for_each_combination, on
the same tasks (default --tasks 3: add, reversal, sort) and writes <out>/grid.csv and grid.json.

flags (defaults in brackets):
  --seed N            random seed for initialisation, data and sampling [1]
  --steps N|LIST      most training steps per task: one number for every task, or a comma-
                      separated list, one per task in order [1500,400,1200,800]
  --target-accuracy X a task stops at the first evaluation where its accuracy on a validation
                      set (separate from the test set) reaches X; 0 trains every task for all
                      its steps [0.99]
  --batch N           training batch, sequences [128]
  --replay-batch N    self-generated replay batch, sequences, split equally over the previous
                      tasks [64]
  --buffer-batches N  self-generated replay batches sampled from pi at a time [8]
  --lr X              peak AdamW learning rate [0.003]
  --warmup N          linear warm-up steps at the start of each task [50]
  --schedule S        learning rate within each task after the warm-up: cosine (decay to 0 at
                      the task's last step) or constant [cosine]
  --weight-decay X    AdamW decoupled weight decay [0.02]
  --beta2 X           AdamW second-moment decay, in [0, 1) [0.99, the paper's toy setting]
  --c X               replay coefficient c of the self-generated strategies [10]
  --c-stored X        replay coefficient of the stored-exemplar strategy [1]
  --fraction X        share of training rows overwritten by the replace mixer (grid) [0.25]
  --memory N          stored-exemplar reservoir capacity, sequences [256]
  --stored-batch N    replay batch of the stored-exemplar strategy, sequences [32]
  --eval-every N      evaluate every N steps (curves, progress, early stop) [100]
  --eval-size N       held-out examples per task, in each of the test and validation sets [256]
  --tasks N           number of tasks, 1..4, in the order add reversal sort modadd [4]
  --strategies LIST   comma-separated subset of none,self-ntp,self-kl,stored [all four]
  --shards N          data-parallel shards of every batch: each shard's forward and backward
                      pass (and generation) runs on its own thread, and the shards' gradients
                      are summed in order; the results depend on it [2]
  --threads N         threads running the shards; the results do not depend on it [2]
                      Across processes: `mpirun -np R selfreplay-lab ...` (or scripts/lab --ranks R)
                      splits the shards over R ranks (needs --shards >= R to use them all); the
                      results are bit-identical to one process with the same --shards, and only
                      rank 0 prints and writes files (toy and grid modes; docs/scale-out.md)
  --width N           transformer width [64]
  --layers N          transformer blocks [2]
  --heads N           attention heads [4]
  --ff N              MLP hidden width [192]
  --out DIR           output directory [results]
  --quiet             no progress lines
  --linear-loss       compute the output layer and the objective from hidden states (the linear
                      losses: no [rows, vocab] logits in training steps; toy and grid modes)
  --checkpoint DIR    save a checkpoint every --checkpoint-every steps into DIR (two alternating
                      files, written atomically; see docs/lab.md) [none]
  --checkpoint-every N  training steps between checkpoints [100]
  --resume            continue from the newest good checkpoint in DIR (the same flags as the
                      interrupted run); results equal an uninterrupted run's bit for bit
  -h, --help          this text
)";

[[noreturn]] void fail(const std::string& msg) {
    std::cerr << "selfreplay-lab: " << msg << "\n(try --help)\n";
    std::exit(2);
}

long parse_int(const std::string& flag, const std::string& v, long lo, long hi) {
    char* end = nullptr;
    errno = 0;
    const long x = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || errno != 0) fail(flag + " expects an integer, got '" + v + "'");
    if (x < lo || x > hi) fail(flag + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + v);
    return x;
}

double parse_real(const std::string& flag, const std::string& v, double lo, double hi) {
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !(x >= lo && x <= hi))
        fail(flag + " expects a number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got '" + v + "'");
    return x;
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
    lab::toy_options o;
    std::string out = "results";
    std::vector<std::string> args(argv + 1, argv + argc);
    std::size_t i = 0;
    bool grid = false, tasks_given = false;
    lab::checkpoint::settings checkpoints;
    if (i < args.size() && !args[i].empty() && args[i][0] != '-') {
        if (args[i] != "toy" && args[i] != "grid") fail("unknown mode '" + args[i] + "' (available: toy, grid, text)");
        grid = args[i] == "grid";
        ++i;
    }
    for (; i < args.size(); ++i) {
        const std::string& f = args[i];
        if (f == "-h" || f == "--help") {
            std::cout << usage;
            return 0;
        }
        if (f == "--linear-loss") {
            o.linear_loss = true;
            continue;
        }
        if (f == "--quiet") {
            o.quiet = true;
            continue;
        }
        if (f == "--resume") {
            checkpoints.resume = true;
            continue;
        }
        if (f.rfind("--", 0) != 0) fail("unexpected argument '" + f + "'");
        if (i + 1 >= args.size()) fail(f + " needs a value");
        const std::string v = args[++i];
        if (f == "--seed") o.seed = std::uint64_t(parse_int(f, v, 0, 1L << 62));
        else if (f == "--steps") {
            o.steps.clear();
            std::stringstream ss(v);
            for (std::string s; std::getline(ss, s, ',');) o.steps.push_back(int(parse_int(f, s, 1, 1000000)));
            if (o.steps.size() == 1) o.steps.assign(lab::toy::num_tasks, o.steps[0]);
            if (o.steps.size() != std::size_t(lab::toy::num_tasks))
                fail("--steps needs one number or " + std::to_string(lab::toy::num_tasks) + " comma-separated numbers, got '" + v + "'");
        }
        else if (f == "--batch") o.batch = int(parse_int(f, v, 1, 65536));
        else if (f == "--replay-batch") o.replay_batch = int(parse_int(f, v, 1, 65536));
        else if (f == "--buffer-batches") o.buffer_batches = int(parse_int(f, v, 1, 1024));
        else if (f == "--lr") o.lr = float(parse_real(f, v, 0, 10));
        else if (f == "--warmup") o.warmup = int(parse_int(f, v, 0, 1000000));
        else if (f == "--weight-decay") o.weight_decay = float(parse_real(f, v, 0, 10));
        else if (f == "--beta2") o.beta2 = float(parse_real(f, v, 0, 0.999999));
        else if (f == "--c") o.c = float(parse_real(f, v, 0, 1e6));
        else if (f == "--c-stored") o.c_stored = float(parse_real(f, v, 0, 1e6));
        else if (f == "--memory") o.memory = int(parse_int(f, v, 1, 10000000));
        else if (f == "--stored-batch") o.stored_batch = int(parse_int(f, v, 1, 65536));
        else if (f == "--target-accuracy") o.target_accuracy = parse_real(f, v, 0, 1);
        else if (f == "--eval-every") o.eval_every = int(parse_int(f, v, 1, 1000000));
        else if (f == "--eval-size") o.eval_size = int(parse_int(f, v, 1, 1000000));
        else if (f == "--tasks") {
            o.tasks = int(parse_int(f, v, grid ? 2 : 1, lab::toy::num_tasks));
            tasks_given = true;
        }
        else if (f == "--fraction") o.fraction = parse_real(f, v, 0, 1);
        else if (f == "--shards") o.shards = int(parse_int(f, v, 1, 256));
        else if (f == "--threads") o.threads = int(parse_int(f, v, 1, 256));
        else if (f == "--width") o.model.width = int(parse_int(f, v, 1, 4096));
        else if (f == "--layers") o.model.layers = int(parse_int(f, v, 1, 64));
        else if (f == "--heads") o.model.heads = int(parse_int(f, v, 1, 256));
        else if (f == "--ff") o.model.ff = int(parse_int(f, v, 1, 65536));
        else if (f == "--out") out = v;
        else if (f == "--checkpoint") checkpoints.dir = v;
        else if (f == "--checkpoint-every") checkpoints.every = parse_int(f, v, 1, 1L << 40);
        else if (f == "--schedule") {
            if (v != "cosine" && v != "constant") fail("--schedule must be cosine or constant, got '" + v + "'");
            o.cosine = v == "cosine";
        }
        else if (f == "--strategies") {
            o.strategies.clear();
            std::stringstream ss(v);
            for (std::string s; std::getline(ss, s, ',');) {
                try {
                    (void)lab::make_strategy(s, o);
                } catch (const std::exception& e) {
                    fail(std::string("--strategies: ") + e.what());
                }
                o.strategies.push_back(s);
            }
            if (o.strategies.empty()) fail("--strategies needs at least one strategy");
        } else
            fail("unknown flag '" + f + "'");
    }
    if (o.model.width % o.model.heads != 0)
        fail("--width " + std::to_string(o.model.width) + " is not divisible by --heads " + std::to_string(o.model.heads));

    if (grid && !tasks_given) o.tasks = 3;
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
