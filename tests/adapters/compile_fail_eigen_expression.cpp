// Must NOT compile: an Eigen expression (a + b) has no storage, so it does not model
// selfreplay::tensor; the compiler must stop with the message naming the concept.
#include <Eigen/Core>

#include "selfreplay/adapters/eigen.hpp"

int main() {
    Eigen::MatrixXf a = Eigen::MatrixXf::Zero(2, 2), b = a;
    auto v = selfreplay::view(a + b);
    return static_cast<int>(v.size());
}
