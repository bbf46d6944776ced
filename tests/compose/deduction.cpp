// The short forms README.md and the docs show, `kl_pre{.coefficient = 10.0}` and
// `strategy{.source = ..., .mixer = ...}`, rely on class template argument deduction for
// aggregates (C++20, P1816). g++ 12 has it; clang++ 14 does not (it arrives in clang 17), so there
// the template arguments are written out (`kl_pre<>{...}`). This checks what the short forms
// deduce wherever the compiler has the feature, and reports the skip where it has not.
#include <selfreplay/compose.hpp>
#include <selfreplay/replay.hpp>
#include <selfreplay/schedules.hpp>

#include <catch2/catch.hpp>

#include <type_traits>

namespace sr = selfreplay;

TEST_CASE("designated initializers deduce the policies' template arguments") {
#if __cpp_deduction_guides >= 201907L
    STATIC_REQUIRE(std::is_same_v<decltype(sr::kl_pre{.coefficient = 10.0}), sr::kl_pre<double>>);
    STATIC_REQUIRE(std::is_same_v<decltype(sr::kl_pre{.coefficient = sr::linear{.init = 0, .end = 1, .transition_steps = 4}}),
                                  sr::kl_pre<sr::linear>>);
    STATIC_REQUIRE(std::is_same_v<decltype(sr::replace{.fraction = 0.5}), sr::replace<double>>);
    STATIC_REQUIRE(std::is_same_v<decltype(sr::scale{.inner = sr::constant{}, .factor = 2.0}), sr::scale<sr::constant>>);
    const sr::kl_pre m{.coefficient = 10.0};
    CHECK(m.coefficient == 10.0);
#else
    WARN("aggregate template argument deduction (__cpp_deduction_guides >= 201907L): skipped, this compiler lacks it; "
         "write the template arguments out, e.g. kl_pre<>{.coefficient = 10.0}");
    SUCCEED();
#endif
}
