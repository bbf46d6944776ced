#pragma once
//! \file
//! Internal: the SIMD layer with run-time dispatch. One vocabulary of vector operations
//! (vocabulary.inl: `simd::vec<T>`, `simd::load`, `simd::mul_add`, `simd::exp`, ...), compiled once
//! per ISA path (`selfreplay::isa`: sse2, avx2 + FMA, avx512 F/BW/DQ/VL), each in its own namespace
//! (`detail::isa_sse2`, `detail::isa_avx2`, `detail::isa_avx512`) and under its own target region
//! (target_begin.inl), and `dispatch`, which runs a callback with the tag of the active path.
//! Not part of the public API; the path is chosen by `selfreplay::active_isa()` (selfreplay/isa.hpp).
//!
//! Why it is safe to mix translation units compiled with different `-march` flags: no definition
//! here or in a kernel file depends on the translation unit's compile-time ISA (no `__AVX__`
//! tests); a path's code is the same token sequence in every translation unit, compiled for the
//! same target features plus whatever the unit's flags add, without floating-point contraction
//! (fused multiply-adds only where the code asks for `simd::mul_add`). So every definition of one
//! inline entity computes the same bits, and whichever copy the linker keeps gives the results of a
//! single-flag build (tests/detail/two_flags). A unit compiled with `-march=native` may emit its
//! extra instructions in any path's copy, as in every other inline function it compiles (the
//! standard library's included): the program then needs that CPU, whichever copy is kept.
//!
//! Adding a kernel (the losses' row kernels, losses/detail/rows.inl, are an example):
//! 1. Write it in a file `<name>.inl` without include guard and without #include, inside
//!    `namespace selfreplay::detail::SELFREPLAY_SIMD_NS { ... }`, against `simd::` only, as named
//!    functions (no lambdas: Clang's target pragma does not reach them) whose first parameter is
//!    `path_tag`. Use `simd::mul_add` where a fused multiply-add is wanted: nothing else fuses.
//! 2. In its guarded header, include the standard headers it needs and this one, then
//!    `#define SELFREPLAY_SIMD_BODY "selfreplay/.../<name>.inl"` and
//!    `#include "selfreplay/detail/simd/foreach_isa.inl"`.
//! 3. Call it as `detail::dispatch(path, [&](auto tag) { return kernel<T>(tag, args...); })`, with
//!    `path = active_isa()` read once per public call. Its parameters and result must not be
//!    vectors (they cross from the caller's instruction set into the path's).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "selfreplay/isa.hpp"
#include "selfreplay/tensor/strided_view.hpp"

#define SELFREPLAY_SIMD_BODY "selfreplay/detail/simd/vocabulary.inl"
#include "selfreplay/detail/simd/foreach_isa.inl"

namespace selfreplay::detail {

//! Calls f(tag) with the tag of ISA path `path` (`isa_sse2::path_tag`, `isa_avx2::path_tag` or
//! `isa_avx512::path_tag`) and returns its result; off x86-64 always the sse2 tag.
template <class F>
decltype(auto) dispatch(isa path, F&& f) {
#if defined(__x86_64__) || defined(__i386__)
    switch (path) {
    case isa::avx512: return f(isa_avx512::path_tag{});
    case isa::avx2: return f(isa_avx2::path_tag{});
    case isa::sse2: break;
    }
#else
    (void)path;
#endif
    return f(isa_sse2::path_tag{});
}

} // namespace selfreplay::detail
