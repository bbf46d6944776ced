// Must not compile: the backend has no call operator m(a, b, c, accumulate), so the linear loss
// rejects it with one sentence naming selfreplay::matmul.
#include <cstdint>

#include "selfreplay/losses.hpp"

struct not_a_matmul {
    void multiply() const {}
};

int main() {
    float h[4] = {}, w[6] = {};
    std::int32_t tok[2] = {};
    const selfreplay::linear_head<float> head{selfreplay::make_view<const float>(h, {2, 2}),
                                              selfreplay::make_view<const float>(w, {3, 2}), {}};
    return static_cast<int>(
        selfreplay::linear_next_token_loss(not_a_matmul{}, head, selfreplay::make_view(tok, {1, 2})).value);
}
