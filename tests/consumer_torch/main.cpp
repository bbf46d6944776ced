// A libtorch trainer with self-generated KL replay (the paper's kl_pre): the lines selfreplay adds
// are marked "selfreplay". It trains a bigram model a few steps and exits 0 when the loss is finite
// and the gradients reached the parameters.
#include <selfreplay/adapters/torch.hpp> // selfreplay
#include <selfreplay/replay.hpp>         // selfreplay

#include <cmath>
#include <cstdio>

#include <torch/torch.h>

namespace lt = selfreplay::libtorch;

int main() {
    const std::int64_t V = 16, B = 4, L = 8;
    torch::manual_seed(0);
    torch::nn::Sequential model(torch::nn::Embedding(V, 32), torch::nn::Linear(32, V)); // tokens [B, L] -> logits [B, L, V]
    torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(1e-2));

    // selfreplay: a frozen copy of the model samples replay sequences from the prompt {0}
    auto frozen = lt::frozen_copy(model);
    lt::module_language_model<torch::nn::Sequential> reference(frozen, V);
    selfreplay::self_generated source(reference, {.prompts = {{0}}, .batch_size = B, .seq_len = L, .seed = 1});
    const selfreplay::kl_pre<> mixer{.coefficient = 10.0};
    lt::gradient_buffers gradients; // reused from step to step

    double loss = 0;
    for (std::int64_t step = 0; step < 3; ++step) {
        const auto x = torch::randint(V, {B, L}, torch::kLong); // the new task's batch
        auto replay = torch::empty({B, L}, torch::kLong);
        source.draw(lt::mutable_view<std::int64_t, 2>(replay)); // selfreplay
        const auto x_logits = model->forward(x);
        const auto r_logits = model->forward(replay);
        torch::Tensor ref_logits;
        {
            const torch::NoGradGuard no_grad;
            ref_logits = frozen->forward(replay);
        }
        const auto result = lt::evaluate_objective(mixer, step,
                                                   {.train_tokens = x, .student_train_logits = x_logits,
                                                    .replay_tokens = replay, .student_replay_logits = r_logits,
                                                    .reference_replay_logits = ref_logits},
                                                   gradients); // selfreplay
        optimizer.zero_grad();
        torch::autograd::backward({x_logits, r_logits}, {gradients.train, gradients.replay});
        optimizer.step();
        loss = result.total;
        std::printf("step %lld: loss %.4f (ntp %.4f, kl_pre %.4f)\n", static_cast<long long>(step), result.total,
                    result.train_ntp, result.terms[0].value);
    }
    const bool ok = std::isfinite(loss) && model->parameters()[0].grad().abs().sum().item<double>() > 0;
    std::printf("selfreplay torch consumer: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
