// Must not compile: the callback takes one argument but the grid has two axes; the first error is
// one sentence naming the argument ('f').
#include <boost/hana/tuple.hpp>

#include "selfreplay/compose.hpp"
#include "selfreplay/replay.hpp"

int main() {
    int n = 0;
    selfreplay::for_each_combination(boost::hana::tuple_t<selfreplay::ring_buffer, selfreplay::reservoir_buffer>,
                                     boost::hana::tuple_t<selfreplay::no_replay>, [&](auto) { ++n; });
    return n;
}
