// Internal, no include guard: closes the target region opened by target_begin.inl.
#if defined(__clang__)
#if defined(__x86_64__) || defined(__i386__)
#pragma clang attribute pop
#endif
#pragma float_control(pop)
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif
#undef SELFREPLAY_SIMD_NS
#undef SELFREPLAY_SIMD_ISA
#undef SELFREPLAY_SIMD_BYTES
#undef SELFREPLAY_SIMD_PATH
