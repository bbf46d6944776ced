// Must not compile: the gradient output is a std::vector, not a selfreplay::tensor; the first
// error names the concept and the argument ('dstudent').
#include <vector>

#include "selfreplay/losses.hpp"

int main() {
    const float z[8] = {};
    std::vector<float> grad(8);
    const auto v = selfreplay::make_view(z, {2, 4});
    return static_cast<int>(selfreplay::generalized_jsd(v, v, grad).value);
}
