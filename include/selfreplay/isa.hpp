#pragma once
//! \file
//! The instruction-set path of selfreplay's SIMD kernels, chosen at run time.
//!
//! Every kernel is compiled for each path (docs/design.md, "SIMD with run-time dispatch"), whatever
//! `-march` flags the program uses; the first call picks the best path the CPU (and the operating
//! system) supports, unless the environment variable `SELFREPLAY_ISA` (`sse2`, `avx2` or `avx512`)
//! or `set_isa` pins one. On other architectures than x86-64 there is one path, `isa::sse2`: the
//! portable 16-byte vector code.

#include <array>
#include <atomic>
#include <cstdlib>
#include <string>
#include <string_view>

#include "selfreplay/error.hpp"

namespace selfreplay {

//! An instruction-set path of the SIMD kernels.
enum class isa {
    sse2,   //!< 16-byte registers, SSE2 (every x86-64 CPU): the baseline
    avx2,   //!< 32-byte registers, AVX2 + FMA (x86-64-v3: Haswell, Zen 1 and later)
    avx512, //!< 64-byte registers, AVX-512 F, BW, DQ and VL (x86-64-v4: Skylake-X, Zen 4 and later)
};

//! Every path, from the baseline up.
inline constexpr std::array<isa, 3> all_isas{isa::sse2, isa::avx2, isa::avx512};

//! The path's name as `SELFREPLAY_ISA` spells it: "sse2", "avx2" or "avx512".
constexpr std::string_view isa_name(isa path) noexcept {
    switch (path) {
    case isa::avx2: return "avx2";
    case isa::avx512: return "avx512";
    case isa::sse2: break;
    }
    return "sse2";
}

//! Whether this CPU, and the operating system (which must save the wider registers), can run the
//! path: `__builtin_cpu_supports` (GCC's libgcc, Clang's compiler-rt), which checks both.
inline bool isa_supported(isa path) noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    switch (path) {
    case isa::sse2: return __builtin_cpu_supports("sse2");
    case isa::avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case isa::avx512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    }
    return false;
#else
    return path == isa::sse2;
#endif
}

//! The best path this CPU supports.
inline isa best_isa() noexcept {
    if (isa_supported(isa::avx512)) return isa::avx512;
    if (isa_supported(isa::avx2)) return isa::avx2;
    return isa::sse2;
}

namespace detail {

//! The paths this CPU supports, by name, for error messages: "sse2, avx2".
inline std::string supported_isa_names() {
    std::string out;
    for (isa p : all_isas)
        if (isa_supported(p)) out += (out.empty() ? "" : ", ") + std::string(isa_name(p));
    return out;
}

//! Throws unless the CPU supports `path` (the message names `argument` of `where`).
inline void require_supported(isa path, std::string_view where, std::string_view argument) {
    require(isa_supported(path), where, argument, "asks for the ISA path ", isa_name(path),
            " but this CPU lacks it (paths it supports: ", supported_isa_names(), ")");
}

//! The default path: `SELFREPLAY_ISA` when set (it must name a path the CPU supports), else the best.
inline isa isa_from_environment() {
    const char* e = std::getenv("SELFREPLAY_ISA");
    if (e == nullptr || *e == '\0') return best_isa();
    const std::string_view name(e);
    for (isa p : all_isas)
        if (name == isa_name(p)) {
            require_supported(p, "active_isa", "SELFREPLAY_ISA (environment variable)");
            return p;
        }
    throw invalid_argument("active_isa", "SELFREPLAY_ISA (environment variable)",
                           "is '" + std::string(name) + "', not one of sse2, avx2, avx512");
}

//! The default path, read once (the environment is read at the first call that succeeds).
inline isa default_isa() {
    static const isa d = isa_from_environment();
    return d;
}

//! The path set by `set_isa` (an `isa` as int), or -1 for the default.
inline std::atomic<int> isa_override{-1};

} // namespace detail

//! The path the kernels run now: the one set by `set_isa`, else `SELFREPLAY_ISA`, else `best_isa()`.
//! Throws `invalid_argument` when `SELFREPLAY_ISA` names no path, or one the CPU lacks.
//! Each loss call reads it once, so a call runs one path from start to end.
inline isa active_isa() {
    const int o = detail::isa_override.load(std::memory_order_relaxed);
    return o >= 0 ? static_cast<isa>(o) : detail::default_isa();
}

//! Pins the path for every later call, in every thread (for tests, benchmarks and programs that
//! must reproduce results bit for bit on different CPUs, see docs/performance.md). Throws
//! `invalid_argument` when the CPU lacks `path`.
inline void set_isa(isa path) {
    detail::require_supported(path, "set_isa", "path");
    detail::isa_override.store(static_cast<int>(path), std::memory_order_relaxed);
}

//! Undoes `set_isa`: back to `SELFREPLAY_ISA`, or to the best path.
inline void reset_isa() noexcept { detail::isa_override.store(-1, std::memory_order_relaxed); }

} // namespace selfreplay
