// Internal, no include guard: opens the target region of ISA path SELFREPLAY_SIMD_PATH (0: sse2,
// 1: avx2, 2: avx512) and defines, for the code inside it:
//   SELFREPLAY_SIMD_NS     the path's namespace name (isa_sse2, isa_avx2, isa_avx512), nested in
//                          selfreplay::detail
//   SELFREPLAY_SIMD_ISA    the path's `selfreplay::isa` enumerator
//   SELFREPLAY_SIMD_BYTES  the register size in bytes (16, 32, 64)
// Every function declared in the region is compiled for the path's instruction set (GCC:
// `#pragma GCC target`; Clang: `#pragma clang attribute`, which does not reach lambdas: kernels
// are named functions) and without floating-point contraction (a * b + c stays two roundings
// unless the code asks for `simd::mul_add`), so that a path computes the same bits in every
// translation unit, whatever its -march and -ffp-contract flags.
// The region must hold no #include of a header with an include guard (it would be compiled once,
// for one path only); kernel files include nothing.

#if SELFREPLAY_SIMD_PATH == 0
#define SELFREPLAY_SIMD_NS isa_sse2
#define SELFREPLAY_SIMD_ISA ::selfreplay::isa::sse2
#define SELFREPLAY_SIMD_BYTES 16
#if defined(__clang__)
#pragma float_control(push)
#pragma clang fp contract(off)
#if defined(__x86_64__) || defined(__i386__)
#pragma clang attribute push(__attribute__((target("sse2"))), apply_to = function)
#endif
#elif defined(__GNUC__)
#pragma GCC push_options
#if defined(__x86_64__) || defined(__i386__)
#pragma GCC target("sse2")
#endif
#pragma GCC optimize("fp-contract=off")
#endif
#elif SELFREPLAY_SIMD_PATH == 1
#define SELFREPLAY_SIMD_NS isa_avx2
#define SELFREPLAY_SIMD_ISA ::selfreplay::isa::avx2
#define SELFREPLAY_SIMD_BYTES 32
#if defined(__clang__)
#pragma float_control(push)
#pragma clang fp contract(off)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#pragma GCC optimize("fp-contract=off")
#endif
#elif SELFREPLAY_SIMD_PATH == 2
#define SELFREPLAY_SIMD_NS isa_avx512
#define SELFREPLAY_SIMD_ISA ::selfreplay::isa::avx512
#define SELFREPLAY_SIMD_BYTES 64
#if defined(__clang__)
#pragma float_control(push)
#pragma clang fp contract(off)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")
#pragma GCC optimize("fp-contract=off")
#endif
#else
#error "selfreplay: SELFREPLAY_SIMD_PATH must be 0, 1 or 2"
#endif
