// Must fail to compile with one message naming the concept: a buffer is not a replay mixer.
#include "selfreplay/compose.hpp"
#include "selfreplay/replay/reservoir_buffer.hpp"

struct not_a_mixer {};

int main() {
    selfreplay::strategy<selfreplay::reservoir_buffer, not_a_mixer> s{
        .source = selfreplay::reservoir_buffer({.capacity = 1, .seq_len = 1}), .mixer = {}};
    return static_cast<int>(s.step);
}
