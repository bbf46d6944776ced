// torch_step: one training step of examples/torch_lab's transformer (forward, loss, backward,
// AdamW) with selfreplay's losses against torch's own, without replay and with self-generated
// kl_pre (theta on a replay batch, pi's logits under NoGradGuard, c = 10), at large vocabularies.
// The two variants alternate round by round in one process (paired); the table gives medians,
// the paired ratio's median and quartiles, and the relative difference of the loss values.
// Usage: torch_step [--vocab 32000,128000] [--batch 8] [--seq-len 128] [--width 64] [--depth 2]
//                   [--heads 4] [--rounds 12] [--threads 2]
// BLAS and allocator (docs/torch.md): LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/blas selects the
// reference BLAS, LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 jemalloc.
#include <selfreplay/adapters/torch.hpp>
#include <selfreplay/replay/mixers.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "../examples/torch_lab/model.hpp"

namespace lt = selfreplay::libtorch;
namespace F = torch::nn::functional;

namespace {

struct settings {
    std::vector<std::int64_t> vocab{32000, 128000};
    std::int64_t batch = 8, seq_len = 128, width = 64, depth = 2, heads = 4;
    int rounds = 12, threads = 2;
};

// torch's own: cross-entropy on the shifted targets, summed / (B*T) as selfreplay's default.
torch::Tensor torch_ntp(const torch::Tensor& logits, const torch::Tensor& x) {
    const auto V = logits.size(2);
    return F::cross_entropy(logits.slice(1, 0, -1).reshape({-1, V}), x.slice(1, 1).reshape({-1}),
                            F::CrossEntropyFuncOptions().reduction(torch::kSum)) /
           double(x.numel());
}
// torch's own forward KL(pi || theta), last position not counted, summed / (R*T).
torch::Tensor torch_kl(const torch::Tensor& student, const torch::Tensor& reference) {
    const auto per = F::kl_div(F::log_softmax(student.slice(1, 0, -1), F::LogSoftmaxFuncOptions(-1)),
                               F::log_softmax(reference.slice(1, 0, -1), F::LogSoftmaxFuncOptions(-1)),
                               F::KLDivFuncOptions().reduction(torch::kSum).log_target(true));
    return per / double(student.size(0) * student.size(1));
}

struct bench_case {
    torch_lab::Transformer model{nullptr}, pi{nullptr};
    std::unique_ptr<torch::optim::AdamW> opt;
    torch::Tensor x, r;
    lt::gradient_buffers grads;
    int threads = 1;

    // One step; returns the loss value.
    double step(bool ours, bool replay) {
        const selfreplay::kl_pre<> mixer{.coefficient = 10.0};
        const auto lx = model->forward(x);
        torch::Tensor lr, pr;
        if (replay) {
            lr = model->forward(r);
            const torch::NoGradGuard no_grad;
            pr = pi->forward(r);
        }
        opt->zero_grad();
        double value = 0;
        if (ours) {
            const selfreplay::objective_options o{.threads = threads};
            if (replay) {
                value = lt::evaluate_objective(mixer, 0, {.train_tokens = x, .student_train_logits = lx, .replay_tokens = r,
                                                          .student_replay_logits = lr, .reference_replay_logits = pr},
                                               grads, o)
                            .total;
                torch::autograd::backward({lx, lr}, {grads.train, grads.replay});
            } else {
                value = lt::evaluate_objective(selfreplay::no_replay{}, 0, {.train_tokens = x, .student_train_logits = lx},
                                               grads, o)
                            .total;
                torch::autograd::backward({lx}, {grads.train});
            }
        } else {
            auto loss = torch_ntp(lx, x);
            if (replay) loss = loss + 10.0 * torch_kl(lr, pr);
            value = loss.item<double>();
            loss.backward();
        }
        opt->step();
        return value;
    }
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}
double quantile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    return v[std::size_t(q * double(v.size() - 1) + 0.5)];
}

std::vector<std::int64_t> parse_list(const std::string& s) {
    std::vector<std::int64_t> out;
    std::stringstream ss(s);
    for (std::string item; std::getline(ss, item, ',');) out.push_back(std::stoll(item));
    return out;
}

} // namespace

int main(int argc, char** argv) {
    settings s;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i], v = argv[i + 1];
        if (a == "--vocab") s.vocab = parse_list(v);
        else if (a == "--batch") s.batch = std::stoll(v);
        else if (a == "--seq-len") s.seq_len = std::stoll(v);
        else if (a == "--width") s.width = std::stoll(v);
        else if (a == "--depth") s.depth = std::stoll(v);
        else if (a == "--heads") s.heads = std::stoll(v);
        else if (a == "--rounds") s.rounds = std::stoi(v);
        else if (a == "--threads") s.threads = std::stoi(v);
        else {
            std::fprintf(stderr, "torch_step: unknown flag %s\n", a.c_str());
            return 2;
        }
    }
    at::set_num_threads(s.threads);
    std::printf("torch_step: B = %lld, T = %lld, width %lld, depth %lld, heads %lld, %d threads, %d paired rounds\n",
                (long long)s.batch, (long long)s.seq_len, (long long)s.width, (long long)s.depth, (long long)s.heads, s.threads,
                s.rounds);
    std::printf("%-8s %-8s %12s %12s %8s %14s %12s\n", "V", "replay", "selfreplay", "torch", "ratio", "ratio q1..q3",
                "loss rel.diff");
    for (const std::int64_t V : s.vocab) {
        for (const bool replay : {false, true}) {
            torch::manual_seed(1);
            bench_case c;
            c.threads = s.threads;
            c.model = torch_lab::Transformer(torch_lab::transformer_options{
                .vocab = V, .width = s.width, .depth = s.depth, .heads = s.heads, .max_len = s.seq_len});
            c.pi = lt::frozen_copy(c.model);
            c.opt = std::make_unique<torch::optim::AdamW>(c.model->parameters(), torch::optim::AdamWOptions(1e-3));
            c.x = torch::randint(V, {s.batch, s.seq_len}, torch::kLong);
            c.r = torch::randint(V, {s.batch, s.seq_len}, torch::kLong);
            // values on the same logits (before any update)
            double rel = 0;
            {
                const torch::NoGradGuard no_grad;
                const auto lx = c.model->forward(c.x), lr = c.model->forward(c.r), pr = c.pi->forward(c.r) * 1.5;
                const double ours = replay ? lt::evaluate_objective(selfreplay::kl_pre<>{.coefficient = 10.0}, 0,
                                                                    {.train_tokens = c.x, .student_train_logits = lx,
                                                                     .replay_tokens = c.r, .student_replay_logits = lr,
                                                                     .reference_replay_logits = pr})
                                                 .total
                                           : lt::next_token_loss(lx, c.x).item<double>();
                const double theirs = (replay ? torch_ntp(lx, c.x) + 10.0 * torch_kl(lr, pr) : torch_ntp(lx, c.x)).item<double>();
                rel = std::abs(ours - theirs) / std::abs(theirs);
            }
            c.step(true, replay); // warm-up of both (buffers, page faults, thread pools)
            c.step(false, replay);
            std::vector<double> a, b, ratio;
            for (int k = 0; k < s.rounds; ++k) {
                const bool ours_first = k % 2 == 0;
                double t[2];
                for (int j = 0; j < 2; ++j) {
                    const bool ours = (j == 0) == ours_first;
                    const auto t0 = std::chrono::steady_clock::now();
                    c.step(ours, replay);
                    t[ours ? 0 : 1] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
                }
                a.push_back(t[0]);
                b.push_back(t[1]);
                ratio.push_back(t[1] / t[0]);
            }
            char q[64];
            std::snprintf(q, sizeof q, "%.2f..%.2f", quantile(ratio, 0.25), quantile(ratio, 0.75));
            std::printf("%-8lld %-8s %9.1f ms %9.1f ms %7.2fx %14s %12.2e\n", (long long)V, replay ? "kl_pre" : "none", median(a),
                        median(b), median(ratio), q, rel);
            std::fflush(stdout);
        }
    }
    return 0;
}
