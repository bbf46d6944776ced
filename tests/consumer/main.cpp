// A user's program: includes the core and both adapters, views Eigen and xtensor data without
// copying, and exits 0 only if the views alias the data.
#include <selfreplay/selfreplay.hpp>
#include <selfreplay/adapters/eigen.hpp>
#include <selfreplay/adapters/xtensor.hpp>

#include <cstdio>

#include <xtensor/xtensor.hpp>

int main() {
    Eigen::MatrixXf m = Eigen::MatrixXf::Zero(2, 3);
    auto mv = selfreplay::view(m);
    mv(1, 2) = 4.0f;

    xt::xtensor<double, 2> t = xt::zeros<double>({3, 2});
    auto tv = selfreplay::view(t);
    tv(2, 1) = 5.0;

    const bool ok = m(1, 2) == 4.0f && t(2, 1) == 5.0 && &mv(0, 0) == m.data();
    std::printf("selfreplay consumer: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
