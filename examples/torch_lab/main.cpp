// selfreplay-torch-lab: the lab's text experiment (docs/lab.md) trained by libtorch. A small
// decoder-only transformer (torch::nn, AdamW) is pretrained on English fortunes, then finetuned
// on Spanish with no replay, self-generated ntp_pre and self-generated kl_pre (replay sampled
// from a frozen copy of the pretrained model). Prints the table of `selfreplay-lab text` and
// writes results/torch_text.json (with its `acceptance` object), a CSV of the curves and an SVG.
// `--bench` instead times one training step at a given vocabulary (docs/torch.md).
#include <selfreplay/adapters/torch.hpp>
#include <selfreplay/metrics.hpp>
#include <selfreplay/replay.hpp>
#include <selfreplay/sampling.hpp>
#include <selfreplay/schedules.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include <torch/torch.h>

#include "../lab/cli.hpp"
#include "../lab/text_data.hpp"
#include "model.hpp"

namespace lt = selfreplay::libtorch;
using lab::text::ENGLISH;
using lab::text::SPANISH;

namespace {

struct options {
    std::uint64_t seed = 1;
    int seq_len = 48, batch = 32, replay_batch = 32, buffer_batches = 4;
    int pretrain_steps = 600, steps = 200, warmup = 20, eval_every = 25, eval_size = 128;
    double pretrain_lr = 3e-3, lr = 3e-3, weight_decay = 0.02, c = 10.0;
    std::int64_t width = 64, depth = 2, heads = 4;
    long min_char_count = 20;
    int threads = 2;
    std::string out = "results";
};

//! Parses the command line into `o`; returns an exit code when the program must stop (--help, a
//! bad flag: CLI11 names it).
std::optional<int> parse(int argc, char** argv, options& o) {
    using lab::cli::ranged;
    CLI::App app("The lab's text experiment trained by libtorch: pretrain a decoder-only transformer on English\n"
                 "fortunes, finetune on Spanish with no replay, self-generated ntp_pre and self-generated kl_pre.",
                 "selfreplay-torch-lab");
    ranged<std::int64_t>(app, "--width", o.width, 1, 4096, "transformer width");
    ranged<std::int64_t>(app, "--depth", o.depth, 1, 64, "transformer blocks");
    ranged<std::int64_t>(app, "--heads", o.heads, 1, 64, "attention heads");
    ranged(app, "--seq-len", o.seq_len, 2, 1024, "T, dataset id included");
    ranged(app, "--batch", o.batch, 1, 4096, "training sequences per step");
    ranged(app, "--replay-batch", o.replay_batch, 1, 4096, "replay sequences per step");
    ranged(app, "--pretrain-steps", o.pretrain_steps, 0, 10000000, "English pretraining steps");
    ranged(app, "--steps", o.steps, 1, 10000000, "Spanish finetuning steps");
    ranged(app, "--pretrain-lr", o.pretrain_lr, 0.0, 1.0, "pretraining learning rate");
    ranged(app, "--lr", o.lr, 0.0, 1.0, "finetuning learning rate");
    ranged(app, "--c", o.c, 0.0, 1e6, "replay coefficient");
    ranged(app, "--threads", o.threads, 1, 256, "torch intra-op threads");
    ranged<std::uint64_t>(app, "--seed", o.seed, 0, std::uint64_t(1) << 62, "random seed");
    app.add_option("--out", o.out, "output directory")->capture_default_str();
    if (const auto stop = lab::cli::parse(app, argc, argv)) return stop;
    if (o.width % o.heads != 0) {
        std::cerr << "selfreplay-torch-lab: --width must be a multiple of --heads\n";
        return 2;
    }
    return std::nullopt;
}

std::string fixed(double v, int prec = 4) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", prec, v);
    return std::isfinite(v) ? buf : "null";
}

void set_lr(torch::optim::AdamW& opt, double lr) {
    for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
}

// An evaluation set [n, T] as a Long tensor.
torch::Tensor as_tensor(const std::vector<std::int32_t>& ids, int T) {
    return torch::tensor(std::vector<std::int64_t>(ids.begin(), ids.end()), torch::kLong).view({-1, T});
}

// Mean NTP per predicted character on `set` (and KL(pi || model) when `pi_logits` is given).
double eval_ntp(torch_lab::Transformer& m, const torch::Tensor& set, const torch::Tensor* pi_logits = nullptr,
                double* kl = nullptr) {
    const torch::NoGradGuard no_grad;
    m->eval();
    const auto logits = m->forward(set);
    const double ntp = lt::next_token_loss(logits, set, {.reduction = selfreplay::reduction::mean_counted}).item<double>();
    if (pi_logits) *kl = lt::kl_divergence(logits, *pi_logits, {.reduction = selfreplay::reduction::mean_counted}).item<double>();
    m->train();
    return ntp;
}

std::vector<float> flat_params(torch_lab::Transformer& m) {
    const torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> ps;
    for (const auto& p : m->parameters()) ps.push_back(p.detach().flatten());
    const auto all = torch::cat(ps).contiguous();
    return {all.data_ptr<float>(), all.data_ptr<float>() + all.numel()};
}

using any_mixer = std::variant<selfreplay::no_replay, selfreplay::ntp_pre<>, selfreplay::kl_pre<>>;
using reference_model = lt::incremental_module_language_model<torch_lab::Transformer>;

struct run_result {
    std::string name, mixer;
    double c = 0;
    std::vector<double> step, valid_ntp, prev_ntp;
    double forgetting = 0, prev_kl = 0, weight_ratio = 0, seconds = 0;
};

struct shared {
    const options* o;
    torch_lab::Transformer pi{nullptr}, theta0{nullptr};
    const std::vector<std::int32_t>* es_train = nullptr;
    torch::Tensor eval_en{}, eval_es{}, pi_eval_en_logits{};
    double prev_before = 0, valid_before = 0;
};

// One training step of `model` under `mixer` (replay drawn from `source` when it needs one).
template <class Mixer, class Source>
double train_step(torch_lab::Transformer& model, torch_lab::Transformer& pi, torch::optim::AdamW& opt, const Mixer& mixer,
                  std::int64_t step, const torch::Tensor& x, Source* source, int replay_rows, lt::gradient_buffers& grads) {
    lt::objective_tensors in{.train_tokens = x, .student_train_logits = model->forward(x)};
    if constexpr (Mixer::needs_replay_batch) {
        in.replay_tokens = torch::empty({replay_rows, x.size(1)}, torch::kLong);
        source->draw(lt::mutable_view<std::int64_t, 2>(in.replay_tokens, "replay"));
        in.student_replay_logits = model->forward(in.replay_tokens);
        if constexpr (Mixer::needs_reference_replay_logits) {
            const torch::NoGradGuard no_grad;
            in.reference_replay_logits = pi->forward(in.replay_tokens);
        }
    }
    const auto res = lt::evaluate_objective(mixer, step, in, grads);
    opt.zero_grad();
    if constexpr (Mixer::needs_student_replay_logits)
        torch::autograd::backward({in.student_train_logits, in.student_replay_logits}, {grads.train, grads.replay});
    else
        torch::autograd::backward({in.student_train_logits}, {grads.train});
    opt.step();
    return res.total;
}

run_result finetune(shared& sh, const std::string& name, const any_mixer& mixer) {
    const auto& o = *sh.o;
    const auto t0 = std::chrono::steady_clock::now();
    run_result r;
    r.name = name;
    auto model = std::dynamic_pointer_cast<torch_lab::TransformerImpl>(sh.pi->clone());
    torch_lab::Transformer m(model);
    torch::optim::AdamW opt(m->parameters(), torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay));
    lab::text::window_source train{.stream = sh.es_train, .dataset_id = SPANISH, .length = o.seq_len, .seed = o.seed, .salt = 1000};
    auto frozen = lt::frozen_copy(sh.pi);
    reference_model pi_lm(frozen, frozen->opt.vocab);
    selfreplay::self_generated<reference_model> self(
        pi_lm, {.prompts = {{ENGLISH}}, .batch_size = o.replay_batch, .seq_len = o.seq_len, .buffer_batches = o.buffer_batches,
                .seed = o.seed ^ 0x5e1f0000ull});
    const selfreplay::warmup_constant schedule{.peak = o.lr, .warmup_steps = o.warmup};
    lt::gradient_buffers grads;
    auto record = [&](int s) {
        r.step.push_back(s);
        r.valid_ntp.push_back(eval_ntp(m, sh.eval_es));
        r.prev_ntp.push_back(eval_ntp(m, sh.eval_en));
        std::printf("  [%s] step %d/%d es %.3f en %.3f (+%.3f)\n", name.c_str(), s, o.steps, r.valid_ntp.back(),
                    r.prev_ntp.back(), r.prev_ntp.back() - sh.prev_before);
        std::fflush(stdout);
    };
    r.step.push_back(0);
    r.valid_ntp.push_back(sh.valid_before);
    r.prev_ntp.push_back(sh.prev_before);
    auto x = torch::empty({o.batch, o.seq_len}, torch::kLong);
    for (int s = 0; s < o.steps; ++s) {
        train.draw(lt::mutable_view<std::int64_t, 2>(x, "x"));
        set_lr(opt, schedule(s));
        std::visit([&](const auto& mx) {
            r.mixer = std::is_same_v<std::decay_t<decltype(mx)>, selfreplay::no_replay> ? "none"
                      : std::is_same_v<std::decay_t<decltype(mx)>, selfreplay::ntp_pre<>> ? "ntp_pre"
                                                                                          : "kl_pre";
            if constexpr (!std::is_same_v<std::decay_t<decltype(mx)>, selfreplay::no_replay>) r.c = mx.coefficient;
            train_step(m, frozen, opt, mx, s, x, &self, o.replay_batch, grads);
        }, mixer);
        if ((s + 1) % o.eval_every == 0 || s + 1 == o.steps) record(s + 1);
    }
    selfreplay::forgetting f(sh.prev_before);
    const auto n = std::int64_t(sh.eval_en.size(0) * (o.seq_len - 1));
    f.add_sum(r.prev_ntp.back() * double(n), n);
    r.forgetting = f.value();
    eval_ntp(m, sh.eval_en, &sh.pi_eval_en_logits, &r.prev_kl);
    selfreplay::weight_distance_ratio w;
    const auto a = flat_params(m), b = flat_params(sh.pi), c = flat_params(sh.theta0);
    w.add(std::span<const float>(a), std::span<const float>(b), std::span<const float>(c));
    r.weight_ratio = w.value();
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

// English held-out loss per run against steps (the forgetting curves), and Spanish.
void write_svg(const std::vector<run_result>& runs, double before, const std::string& path) {
    const double W = 640, H = 360, l = 60, rgt = 150, t = 20, b = 40;
    double ymax = 0, xmax = 1;
    for (const auto& r : runs)
        for (std::size_t i = 0; i < r.step.size(); ++i) ymax = std::max(ymax, r.prev_ntp[i] - before), xmax = std::max(xmax, r.step[i]);
    ymax = ymax > 0 ? ymax * 1.1 : 1;
    const char* colors[] = {"#d62728", "#1f77b4", "#2ca02c"};
    std::ostringstream s;
    s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << l << "\" y=\"14\">English held-out loss increase during Spanish finetuning (libtorch)</text>\n"
      << "<line x1=\"" << l << "\" y1=\"" << H - b << "\" x2=\"" << W - rgt << "\" y2=\"" << H - b << "\" stroke=\"black\"/>\n"
      << "<line x1=\"" << l << "\" y1=\"" << t << "\" x2=\"" << l << "\" y2=\"" << H - b << "\" stroke=\"black\"/>\n"
      << "<text x=\"" << (W - rgt + l) / 2 << "\" y=\"" << H - 8 << "\" text-anchor=\"middle\">step</text>\n"
      << "<text x=\"" << l - 6 << "\" y=\"" << t + 4 << "\" text-anchor=\"end\">" << fixed(ymax, 3) << "</text>\n"
      << "<text x=\"" << l - 6 << "\" y=\"" << H - b << "\" text-anchor=\"end\">0</text>\n"
      << "<text x=\"" << W - rgt << "\" y=\"" << H - b + 14 << "\" text-anchor=\"middle\">" << xmax << "</text>\n";
    for (std::size_t k = 0; k < runs.size(); ++k) {
        s << "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"" << colors[k % 3] << "\" points=\"";
        for (std::size_t i = 0; i < runs[k].step.size(); ++i)
            s << l + (W - rgt - l) * runs[k].step[i] / xmax << ","
              << (H - b) - (H - b - t) * std::max(0.0, runs[k].prev_ntp[i] - before) / ymax << " ";
        s << "\"/>\n<text x=\"" << W - rgt + 8 << "\" y=\"" << t + 20 * double(k + 1) << "\" fill=\"" << colors[k % 3] << "\">"
          << runs[k].name << "</text>\n";
    }
    s << "</svg>\n";
    std::ofstream f(path);
    f << s.str();
    if (!f) throw std::runtime_error("cannot write '" + path + "'");
}

int run(const options& o) {
    const auto t0 = std::chrono::steady_clock::now();
    at::set_num_threads(o.threads);
    torch::manual_seed(o.seed);
    using namespace lab::text;
    std::vector<std::u32string> en_entries, es_entries;
    for (const auto& f : default_files::english())
        for (auto& e : read_entries(f)) en_entries.push_back(std::move(e));
    for (const auto& f : default_files::spanish())
        for (auto& e : read_entries(f)) es_entries.push_back(std::move(e));
    if (es_entries.empty()) throw std::runtime_error("no Spanish text (install fortunes-es)");
    const vocabulary vocab({&en_entries, &es_entries}, o.min_char_count);
    const corpus en = split(en_entries, vocab, 0.1, o.seed, 11);
    const corpus es = split(es_entries, vocab, 0.1, o.seed, 12);
    shared sh{.o = &o, .es_train = &es.train};
    sh.eval_en = as_tensor(eval_set(en.valid, ENGLISH, o.eval_size, o.seq_len), o.seq_len);
    sh.eval_es = as_tensor(eval_set(es.valid, SPANISH, o.eval_size, o.seq_len), o.seq_len);
    const torch_lab::transformer_options mo{.vocab = vocab.size(), .width = o.width, .depth = o.depth, .heads = o.heads,
                                            .max_len = o.seq_len};
    sh.theta0 = torch_lab::Transformer(mo);
    sh.pi = torch_lab::Transformer(std::dynamic_pointer_cast<torch_lab::TransformerImpl>(sh.theta0->clone()));
    std::int64_t params = 0;
    for (const auto& p : sh.pi->parameters()) params += p.numel();
    std::printf("selfreplay-torch-lab: English %zu / Spanish %zu training chars, vocabulary %d; transformer width %lld, depth %lld, "
                "heads %lld (%lld parameters), T = %d, %d threads\n",
                en.train.size(), es.train.size(), vocab.size(), (long long)o.width, (long long)o.depth, (long long)o.heads,
                (long long)params, o.seq_len, o.threads);

    {  // pretraining on English: NTP through the autograd function, warm-up then cosine decay
        torch::optim::AdamW opt(sh.pi->parameters(), torch::optim::AdamWOptions(o.pretrain_lr).weight_decay(o.weight_decay));
        window_source train{.stream = &en.train, .dataset_id = ENGLISH, .length = o.seq_len, .seed = o.seed, .salt = 1};
        const selfreplay::warmup_cosine schedule{.peak = o.pretrain_lr, .warmup_steps = std::max(1, o.pretrain_steps / 20),
                                                 .decay_steps = std::max(1, o.pretrain_steps)};
        auto x = torch::empty({o.batch, o.seq_len}, torch::kLong);
        double acc = 0;
        for (int s = 0; s < o.pretrain_steps; ++s) {
            train.draw(lt::mutable_view<std::int64_t, 2>(x, "x"));
            set_lr(opt, schedule(s));
            const auto loss = lt::next_token_loss(sh.pi->forward(x), x);
            opt.zero_grad();
            loss.backward();
            opt.step();
            acc += loss.item<double>();
            if ((s + 1) % std::max(1, o.pretrain_steps / 6) == 0) {
                std::printf("%7.1fs [pretrain] step %d/%d train %.3f en valid %.3f\n",
                            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), s + 1, o.pretrain_steps,
                            acc / std::max(1, o.pretrain_steps / 6), eval_ntp(sh.pi, sh.eval_en));
                std::fflush(stdout);
                acc = 0;
            }
        }
    }
    sh.prev_before = eval_ntp(sh.pi, sh.eval_en);
    sh.valid_before = eval_ntp(sh.pi, sh.eval_es);
    {
        const torch::NoGradGuard no_grad;
        sh.pi->eval();
        sh.pi_eval_en_logits = sh.pi->forward(sh.eval_en);
    }
    {  // what self-generated replay replays
        auto frozen = lt::frozen_copy(sh.pi);
        reference_model lm(frozen, vocab.size());
        auto sample = torch::empty({2, o.seq_len}, torch::kLong);
        const std::int64_t first[2] = {ENGLISH, ENGLISH};
        selfreplay::generate(lm, std::span<const std::int64_t>(first, 2), {.seed = o.seed ^ 0xabcdefull},
                             lt::mutable_view<std::int64_t, 2>(sample, "sample"));
        for (int b = 0; b < 2; ++b) {
            std::string line;
            for (int t = 0; t < o.seq_len; ++t) line += vocab.show(std::int32_t(sample[b][t].item<std::int64_t>()));
            std::printf("pi sample: %s\n", line.c_str());
        }
    }
    std::printf("pretrained: English held-out loss %.4f, Spanish %.4f nats/char\n", sh.prev_before, sh.valid_before);

    std::vector<run_result> runs;
    runs.push_back(finetune(sh, "none", selfreplay::no_replay{}));
    runs.push_back(finetune(sh, "self-ntp", selfreplay::ntp_pre<>{.coefficient = o.c}));
    runs.push_back(finetune(sh, "self-kl", selfreplay::kl_pre<>{.coefficient = o.c}));

    const double none_forgetting = runs[0].forgetting;
    selfreplay::report table;
    for (const auto& r : runs) {
        selfreplay::metrics_record rec;
        rec.set("strategy", std::string_view(r.name)).set("replay", r.mixer == "none" ? "none" : "self-generated")
            .set("mixer", std::string_view(r.mixer)).set("c", r.c).set("lr", o.lr).set("prev_ntp", r.prev_ntp.back())
            .set("forgetting", r.forgetting).set("valid_ntp", r.valid_ntp.back()).set("prev_kl", r.prev_kl)
            .set("weight_ratio", r.weight_ratio);
        if (r.mixer != "none" && none_forgetting > 0) rec.set("forgetting_cut", 1 - r.forgetting / none_forgetting);
        table.add(rec);
    }
    std::cout << "\nFinetuning on Spanish for " << o.steps << " steps (English loss before: " << fixed(sh.prev_before)
              << ", Spanish before: " << fixed(sh.valid_before) << " nats/char; forgetting = English loss increase):\n";
    table.write_text(std::cout, 4);
    const double cut_ntp = none_forgetting > 0 ? 1 - runs[1].forgetting / none_forgetting : NAN;
    const double cut_kl = none_forgetting > 0 ? 1 - runs[2].forgetting / none_forgetting : NAN;
    const bool met = none_forgetting > 0 && std::min(cut_ntp, cut_kl) >= 0.8;
    if (none_forgetting > 0)
        std::cout << "self-generated replay cuts the forgetting of plain finetuning at lr " << o.lr << " by " << fixed(100 * cut_ntp, 1)
                  << "% (ntp_pre) and " << fixed(100 * cut_kl, 1) << "% (kl_pre): " << (met ? "meets" : "MISSES")
                  << " the >= 80% bar\n";
    else
        std::cout << "plain finetuning did not forget (English loss change " << fixed(none_forgetting) << ")\n";
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    std::filesystem::create_directories(o.out);
    std::ostringstream js, csv;
    js << "{\n  \"experiment\": \"text-english-spanish-libtorch\",\n  \"seconds\": " << fixed(seconds, 1) << ",\n  \"seed\": " << o.seed
       << ",\n  \"model\": {\"width\": " << o.width << ", \"depth\": " << o.depth << ", \"heads\": " << o.heads
       << ", \"parameters\": " << params << ", \"vocab_size\": " << vocab.size() << ", \"seq_len\": " << o.seq_len
       << "},\n  \"training\": {\"optimizer\": \"torch::optim::AdamW\", \"batch\": " << o.batch << ", \"replay_batch\": "
       << o.replay_batch << ", \"pretrain_steps\": " << o.pretrain_steps << ", \"pretrain_lr\": " << o.pretrain_lr
       << ", \"finetune_steps\": " << o.steps << ", \"lr\": " << o.lr << ", \"c\": " << o.c << ", \"warmup\": " << o.warmup
       << ", \"weight_decay\": " << o.weight_decay << ", \"threads\": " << o.threads
       << "},\n  \"loss_unit\": \"nats per predicted character, held-out\",\n  \"pretrained\": {\"prev_ntp\": "
       << fixed(sh.prev_before, 6) << ", \"valid_ntp\": " << fixed(sh.valid_before, 6) << "},\n  \"strategies\": [";
    csv << "strategy,step,valid_ntp,prev_ntp\n";
    for (std::size_t k = 0; k < runs.size(); ++k) {
        const auto& r = runs[k];
        js << (k ? ",\n" : "\n") << "    {\"strategy\": \"" << r.name << "\", \"mixer\": \"" << r.mixer << "\", \"c\": " << r.c
           << ", \"prev_ntp\": " << fixed(r.prev_ntp.back(), 6) << ", \"forgetting\": " << fixed(r.forgetting, 6)
           << ", \"valid_ntp\": " << fixed(r.valid_ntp.back(), 6) << ", \"prev_kl\": " << fixed(r.prev_kl, 6)
           << ", \"weight_ratio\": " << fixed(r.weight_ratio, 6) << ", \"seconds\": " << fixed(r.seconds, 1) << "}";
        for (std::size_t i = 0; i < r.step.size(); ++i)
            csv << r.name << "," << r.step[i] << "," << fixed(r.valid_ntp[i], 6) << "," << fixed(r.prev_ntp[i], 6) << "\n";
    }
    js << "\n  ],\n  \"acceptance\": {\"forgetting_none\": " << fixed(none_forgetting, 6) << ", \"cut_self_ntp\": "
       << fixed(cut_ntp, 6) << ", \"cut_self_kl\": " << fixed(cut_kl, 6) << ", \"required_cut\": 0.8, \"met\": "
       << (met ? "true" : "false") << "}\n}\n";
    const std::string base = o.out + "/torch_text";
    for (const auto& [path, text] : {std::pair{base + ".json", js.str()}, std::pair{base + "_curves.csv", csv.str()}}) {
        std::ofstream f(path);
        f << text;
        if (!f) throw std::runtime_error("cannot write '" + path + "'");
    }
    write_svg(runs, sh.prev_before, base + ".svg");
    std::cout << "\nwrote " << base << ".json, " << base << "_curves.csv and " << base << ".svg in " << fixed(seconds, 1) << " s\n";
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    options o;
    if (const auto stop = parse(argc, argv, o)) return *stop;
    try {
        return run(o);
    } catch (const std::exception& e) {
        std::cerr << "selfreplay-torch-lab: " << e.what() << "\n";
        return 1;
    }
}
