// Must not compile: `not_a_processor` has no process(row, ctx); sample_token's first error is
// one sentence naming the concept and the argument ('chain').
#include <vector>

#include "selfreplay/sampling.hpp"

struct not_a_processor {
    void apply(std::span<float>) const {}
};

int main() {
    std::vector<float> row(4, 0.0f);
    selfreplay::sampling_context<float> ctx;
    selfreplay::counter_rng rng{1, 0};
    return selfreplay::sample_token(std::span<float>(row), not_a_processor{}, selfreplay::categorical{}, ctx, rng);
}
