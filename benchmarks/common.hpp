#pragma once
//! \file
//! Helpers shared by the benchmark programs (not part of the library).

#include <cstddef>
#include <initializer_list>
#include <vector>

#include "selfreplay/losses/detail/simd.hpp"

namespace selfreplay_bench {

//! The memory-read floor of a step: one pass over every float of `arrays` (four vector
//! accumulators, so the loads, not the adds, bound it). Returns their sum, to be passed to
//! benchmark::DoNotOptimize.
inline float read_arrays(std::initializer_list<const std::vector<float>*> arrays) {
    namespace simd = selfreplay::detail::simd;
    using vec = simd::vec<float>;
    constexpr std::ptrdiff_t lanes = simd::lanes<float>;
    vec a0{}, a1{}, a2{}, a3{};
    for (const auto* arr : arrays) {
        const float* d = arr->data();
        const auto size = static_cast<std::ptrdiff_t>(arr->size());
        for (std::ptrdiff_t i = 0; i + 4 * lanes <= size; i += 4 * lanes) {
            a0 += simd::load(d + i);
            a1 += simd::load(d + i + lanes);
            a2 += simd::load(d + i + 2 * lanes);
            a3 += simd::load(d + i + 3 * lanes);
        }
    }
    return static_cast<float>(simd::hsum<float>(a0 + a1 + a2 + a3));
}

} // namespace selfreplay_bench
