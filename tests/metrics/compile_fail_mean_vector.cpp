// Must not compile: a std::vector is not a selfreplay::tensor (make_view gives it a shape);
// mean_loss::add's first error is one sentence naming the concept and the argument ('values').
#include <vector>

#include "selfreplay/metrics.hpp"

int main() {
    selfreplay::mean_loss m;
    m.add(std::vector<float>{1.0f, 2.0f});
    return static_cast<int>(m.count());
}
