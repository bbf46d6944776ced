// The memory-read floor's kernel, no include guard: included once per ISA path by common.hpp
// (through selfreplay/detail/simd/foreach_isa.inl).

namespace selfreplay::detail::SELFREPLAY_SIMD_NS {

// The sum of d[0, n - n % (4 lanes)) in four vector accumulators, so that the loads, not the adds,
// bound it.
inline float read_sum(path_tag, const float* d, index_t n) noexcept {
    constexpr index_t L = simd::lanes<float>;
    simd::vec<float> a0{}, a1{}, a2{}, a3{};
    for (index_t i = 0; i + 4 * L <= n; i += 4 * L) {
        a0 += simd::load(d + i);
        a1 += simd::load(d + i + L);
        a2 += simd::load(d + i + 2 * L);
        a3 += simd::load(d + i + 3 * L);
    }
    return static_cast<float>(simd::hsum(a0 + a1 + a2 + a3));
}

} // namespace selfreplay::detail::SELFREPLAY_SIMD_NS
