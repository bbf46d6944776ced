// Must not compile: a scale over a type that is not a schedule fails with one message naming the concept.
#include "selfreplay/schedules.hpp"

struct not_a_schedule {
    double operator()(const char*) const { return 0.0; }
};

int main() {
    const selfreplay::scale<not_a_schedule> s{.inner = not_a_schedule{}, .factor = 2.0};
    return static_cast<int>(s(0));
}
