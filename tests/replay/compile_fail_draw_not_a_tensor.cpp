// Must not compile: a raw pointer is not a selfreplay::tensor (make_view gives it a shape); a
// source's draw stops with one sentence naming the concept and the argument ('out').
#include <cstdint>

#include "selfreplay/replay.hpp"

int main() {
    selfreplay::ring_buffer buffer({.capacity = 4, .seq_len = 3});
    std::int32_t out[6] = {};
    buffer.draw(&out[0]);
}
