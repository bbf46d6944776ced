#pragma once
//! \file
//! Helpers shared by the benchmark programs (not part of the library).

#include <benchmark/benchmark.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "selfreplay/detail/simd/simd.hpp"

#define SELFREPLAY_SIMD_BODY "read_floor.inl"
#include "selfreplay/detail/simd/foreach_isa.inl"

namespace selfreplay_bench {

//! The memory-read floor of a step: one pass over every float of `arrays`, on the ISA path the
//! kernels run (`selfreplay::active_isa()`). Returns their sum, to be passed to
//! benchmark::DoNotOptimize.
inline float read_arrays(std::initializer_list<const std::vector<float>*> arrays) {
    const selfreplay::isa path = selfreplay::active_isa();
    float sum = 0;
    for (const auto* arr : arrays)
        sum += selfreplay::detail::dispatch(path, [&](auto tag) {
            return read_sum(tag, arr->data(), static_cast<selfreplay::index_t>(arr->size()));
        });
    return sum;
}

//! Records the ISA path the kernels run (`selfreplay::active_isa()`) in the benchmark's context
//! ("selfreplay_isa" in --benchmark_format=json), where benchmarks/compare-peers reads it.
inline void record_isa_context() {
    benchmark::AddCustomContext("selfreplay_isa", std::string(selfreplay::isa_name(selfreplay::active_isa())));
}

} // namespace selfreplay_bench
