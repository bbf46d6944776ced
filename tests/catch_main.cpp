// The one translation unit that holds Catch2's main(); every test executable links it.
// SELFREPLAY_ISA pins the SIMD kernels' path (ctest runs the kernel suites once per path, see
// selfreplay_add_test's ISA_PATHS): a path this CPU lacks is reported by name and skipped with
// exit code 77 (ctest's SKIP_RETURN_CODE); an unknown name fails.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdlib>
#include <exception>
#include <iostream>
#include <string_view>

#include "selfreplay/isa.hpp"

int main(int argc, char* argv[]) {
    if (const char* e = std::getenv("SELFREPLAY_ISA"); e != nullptr && *e != '\0') {
        for (selfreplay::isa p : selfreplay::all_isas)
            if (selfreplay::isa_name(p) == std::string_view(e) && !selfreplay::isa_supported(p)) {
                std::cout << "ISA path " << e << ": skipped (CPU lacks it)\n";
                return 77;
            }
        try {
            std::cout << "ISA path " << selfreplay::isa_name(selfreplay::active_isa()) << ": tested\n";
        } catch (const std::exception& error) {
            std::cerr << error.what() << "\n";
            return 1;
        }
    }
    return Catch::Session().run(argc, argv);
}
