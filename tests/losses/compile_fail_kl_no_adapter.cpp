// Must not compile: xtensor's header is included but not selfreplay's xtensor adapter, so the
// tensors do not model selfreplay::tensor; the first error names the concept and the argument.
#include <xtensor/xtensor.hpp>

#include "selfreplay/losses.hpp"

int main() {
    const xt::xtensor<float, 3> student({2, 3, 4}), reference({2, 3, 4});
    return static_cast<int>(selfreplay::kl_divergence(student, reference).value);
}
