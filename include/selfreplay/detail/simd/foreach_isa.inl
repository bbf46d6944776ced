// Internal, no include guard: includes the kernel file named by the macro SELFREPLAY_SIMD_BODY
// once per ISA path, each time inside that path's target region (see simd.hpp, "Adding a kernel").
// On x86-64: sse2, avx2, avx512; elsewhere: sse2 (portable 16-byte vectors) only.
// Undefines SELFREPLAY_SIMD_BODY at the end.

#if defined(__x86_64__) || defined(__i386__)
#define SELFREPLAY_SIMD_PATH 0
#include "selfreplay/detail/simd/target_begin.inl"
#include SELFREPLAY_SIMD_BODY
#include "selfreplay/detail/simd/target_end.inl"
#define SELFREPLAY_SIMD_PATH 1
#include "selfreplay/detail/simd/target_begin.inl"
#include SELFREPLAY_SIMD_BODY
#include "selfreplay/detail/simd/target_end.inl"
#define SELFREPLAY_SIMD_PATH 2
#include "selfreplay/detail/simd/target_begin.inl"
#include SELFREPLAY_SIMD_BODY
#include "selfreplay/detail/simd/target_end.inl"
#else
#define SELFREPLAY_SIMD_PATH 0
#include "selfreplay/detail/simd/target_begin.inl"
#include SELFREPLAY_SIMD_BODY
#include "selfreplay/detail/simd/target_end.inl"
#endif
#undef SELFREPLAY_SIMD_BODY
