// Must not compile: a std::vector has no shape, so it does not model selfreplay::tensor; the first
// error names the concept and the argument ('logits'), even with options given as a braced list.
#include <cstdint>
#include <vector>

#include "selfreplay/losses.hpp"

int main() {
    const std::vector<float> logits(12);
    const std::int32_t tokens[3] = {};
    return static_cast<int>(
        selfreplay::next_token_loss(logits, selfreplay::make_view(tokens, {1, 3}), {.threads = 1}).value);
}
