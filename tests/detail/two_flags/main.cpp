// The two-flags test program: prints the results of the losses and samplers computed in translation unit a and
// in translation unit b (compiled with the flags the CMakeLists gives each program); fails when
// they differ. ctest compares the outputs of the programs (tests/detail/two_flags/compare.cmake).
#include <cstdio>
#include <string>

std::string results_a();
std::string results_b();
std::string sampling_a();
std::string sampling_b();

int main() {
    const std::string a = results_a() + sampling_a(), b = results_b() + sampling_b();
    std::printf("%s", a.c_str());
    if (a != b) {
        std::printf("translation unit b differs:\n%s", b.c_str());
        return 1;
    }
    return 0;
}
