// Must not compile: a raw array is not a selfreplay::tensor (make_view gives it a shape); the
// first error names the concept and the argument ('reference_logprobs').
#include "selfreplay/losses.hpp"

int main() {
    const double p[4] = {}, q[4] = {};
    return static_cast<int>(selfreplay::kl_estimate(selfreplay::make_view(p, {4}), q).value);
}
