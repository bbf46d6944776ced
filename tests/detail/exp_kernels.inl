// Test kernels over arrays, no include guard: the vocabulary's exponentials on every ISA path
// (included once per path by test_simd.cpp through detail/simd/foreach_isa.inl).

namespace selfreplay::detail::SELFREPLAY_SIMD_NS {

// y[i] = exp(x[i]) (Exp2 = false) or 2^x[i] (true) for i in [0, n), register by register.
template <bool Exp2>
inline void exp_each(path_tag, const float* x, float* y, index_t n) noexcept {
    constexpr index_t L = simd::lanes<float>;
    for (index_t i = 0; i < n; i += L) {
        const index_t c = std::min(L, n - i);
        const simd::vec<float> v = simd::load_n(x + i, c, 0.0f);
        simd::store_n(y + i, Exp2 ? simd::exp2(v) : simd::exp(v), c);
    }
}

// The lane count of this path's float registers.
inline index_t float_lanes(path_tag) noexcept { return simd::lanes<float>; }

} // namespace selfreplay::detail::SELFREPLAY_SIMD_NS
