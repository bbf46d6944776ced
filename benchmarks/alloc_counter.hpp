#pragma once
//! \file
//! Peak heap bytes of a benchmark binary: replaces malloc and its family (glibc: the replacements
//! call `__libc_*` and size blocks with `malloc_usable_size`), so every allocation is counted,
//! operator new's and Eigen's alike. Include it in exactly one translation unit of a benchmark
//! program. Under AddressSanitizer (which owns malloc) nothing is replaced and `counted()` is false.
//! Not part of the library.

#include <atomic>
#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define SELFREPLAY_BENCH_COUNT_ALLOCATIONS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SELFREPLAY_BENCH_COUNT_ALLOCATIONS 0
#endif
#endif
#ifndef SELFREPLAY_BENCH_COUNT_ALLOCATIONS
#define SELFREPLAY_BENCH_COUNT_ALLOCATIONS 1
#endif

namespace selfreplay_bench {

namespace alloc_detail {
inline std::atomic<long long> live{0}; // bytes allocated and not yet freed
inline std::atomic<long long> peak{0}; // the highest `live` since the last `reset_peak`

inline void added(long long n) noexcept {
    const long long now = live.fetch_add(n, std::memory_order_relaxed) + n;
    long long p = peak.load(std::memory_order_relaxed);
    while (now > p && !peak.compare_exchange_weak(p, now, std::memory_order_relaxed)) {
    }
}
} // namespace alloc_detail

//! Whether allocations are counted in this build.
constexpr bool counted() { return SELFREPLAY_BENCH_COUNT_ALLOCATIONS != 0; }

//! Starts a measurement: the peak becomes the bytes live now.
inline long long reset_peak() noexcept {
    const long long now = alloc_detail::live.load(std::memory_order_relaxed);
    alloc_detail::peak.store(now, std::memory_order_relaxed);
    return now;
}

//! Bytes allocated at the peak since `reset_peak` returned `base`, beyond `base`.
inline long long peak_since(long long base) noexcept {
    return alloc_detail::peak.load(std::memory_order_relaxed) - base;
}

} // namespace selfreplay_bench

#if SELFREPLAY_BENCH_COUNT_ALLOCATIONS
#include <malloc.h>

#include <cerrno>

namespace selfreplay_bench::alloc_detail {
inline void* counted_block(void* p) noexcept {
    if (p != nullptr) added(static_cast<long long>(malloc_usable_size(p)));
    return p;
}
inline void uncount(void* p) noexcept {
    if (p != nullptr) live.fetch_sub(static_cast<long long>(malloc_usable_size(p)), std::memory_order_relaxed);
}
} // namespace selfreplay_bench::alloc_detail

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);
}

extern "C" {
using selfreplay_bench::alloc_detail::counted_block;
using selfreplay_bench::alloc_detail::uncount;

void* malloc(std::size_t n) noexcept { return counted_block(__libc_malloc(n)); }
void* calloc(std::size_t n, std::size_t size) noexcept { return counted_block(__libc_calloc(n, size)); }
void* realloc(void* p, std::size_t n) noexcept {
    uncount(p);
    void* q = __libc_realloc(p, n);
    if (q == nullptr && n != 0) { // failed: p is still allocated
        counted_block(p);
        return nullptr;
    }
    return counted_block(q);
}
void free(void* p) noexcept {
    uncount(p);
    __libc_free(p);
}
void* memalign(std::size_t alignment, std::size_t n) noexcept { return counted_block(__libc_memalign(alignment, n)); }
void* aligned_alloc(std::size_t alignment, std::size_t n) noexcept { return memalign(alignment, n); }
int posix_memalign(void** out, std::size_t alignment, std::size_t n) noexcept {
    void* p = memalign(alignment, n);
    if (p == nullptr) return ENOMEM;
    *out = p;
    return 0;
}
}
#endif
