// Must fail to compile with one message naming the concept: int is not a replay source.
#include "selfreplay/compose.hpp"
#include "selfreplay/replay/mixers.hpp"

int main() {
    selfreplay::strategy<int, selfreplay::no_replay> s{.source = 1, .mixer = {}};
    return static_cast<int>(s.step);
}
