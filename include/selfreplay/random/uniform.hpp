#pragma once
//! \file
//! Uniform floating-point numbers from a stream of 32-bit words (`counter_rng` or any type with
//! `next_u32()`): exact multiples of 2^-24 (float) or 2^-53 (double), every value equally likely.

#include <concepts>
#include <cstdint>

namespace selfreplay {

//! A source of uniform 32-bit words: `r.next_u32()`. `counter_rng` models it.
template <class R>
concept random_words = requires(R& r) {
    { r.next_u32() } -> std::same_as<std::uint32_t>;
};

//! Uniform float in [0, 1): `(w >> 8) * 2^-24` from one word; each of the 2^24 values has
//! probability 2^-24 (no rounding bias, unlike `w * 2^-32`, which can round to 1).
template <random_words R>
constexpr float uniform_float(R& rng) noexcept {
    return static_cast<float>(rng.next_u32() >> 8) * 0x1p-24f;
}

//! Uniform double in [0, 1): `(u >> 11) * 2^-53` from two words (64 bits); each of the 2^53
//! values has probability 2^-53.
template <random_words R>
constexpr double uniform_double(R& rng) noexcept {
    const std::uint64_t lo = rng.next_u32();
    const std::uint64_t u = lo | (std::uint64_t{rng.next_u32()} << 32);
    return static_cast<double>(u >> 11) * 0x1p-53;
}

//! Uniform float in the open interval (0, 1): `(2 * (w >> 9) + 1) * 2^-24`, the midpoints of
//! 2^23 equal cells (exactly representable, the largest is 1 - 2^-24), so `log(u)` and
//! `log(-log(u))` are always finite (Gumbel and exponential draws).
template <random_words R>
constexpr float uniform_float_open(R& rng) noexcept {
    return static_cast<float>(2 * (rng.next_u32() >> 9) + 1) * 0x1p-24f;
}

} // namespace selfreplay
