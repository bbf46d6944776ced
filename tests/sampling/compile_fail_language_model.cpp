// Must not compile: `not_a_model` lacks next_token_logits, and generate names the concept.
#include <cstdint>
#include <vector>

#include "selfreplay/sampling.hpp"

struct not_a_model {
    int vocab_size() const { return 4; }
};

int main() {
    not_a_model m;
    std::vector<std::int32_t> out(2 * 3), prompt{0, 1};
    selfreplay::generate(m, std::span<const std::int32_t>(prompt), {}, selfreplay::make_view(out.data(), {2, 3}));
}
