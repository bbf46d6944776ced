// Must NOT compile: std::vector does not model selfreplay::tensor. ctest expects the compiler to
// stop with the single message naming the concept.
#include <vector>

#include "selfreplay/tensor.hpp"

int main() {
    std::vector<float> v(4);
    auto w = selfreplay::view<1>(v);
    return static_cast<int>(w.size());
}
