// Must not compile: an int is not a replay source; weighted_mixture's first error is one sentence
// naming the concept and the argument ('sources').
#include "selfreplay/replay.hpp"

int main() {
    selfreplay::weighted_mixture<selfreplay::ring_buffer, int> mixture({1.0, 1.0}, selfreplay::ring_buffer({.capacity = 1, .seq_len = 1}), 3);
    return static_cast<int>(mixture.seq_len());
}
