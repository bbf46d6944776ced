#pragma once
//! \file
//! `philox4x32`: the Philox4x32-10 counter-based block function of Salmon, Moraes, Dror and Shaw,
//! "Parallel random numbers: as easy as 1, 2, 3" (SC 2011), bit-exact with Random123's
//! `philox4x32_R(10, ctr, key)` (checked against Random123's published known-answer vectors).

#include <array>
#include <cstdint>

namespace selfreplay {

//! A Philox4x32 counter: four 32-bit words.
using philox4x32_counter = std::array<std::uint32_t, 4>;
//! A Philox4x32 key: two 32-bit words.
using philox4x32_key = std::array<std::uint32_t, 2>;

//! Philox4x32 with `Rounds` rounds (Random123 `philox4x32_R`). Each round computes
//! `(hi0, lo0) = 0xD2511F53 * c0`, `(hi1, lo1) = 0xCD9E8D57 * c2` (64-bit products) and
//! `c = {hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0}`; the key is bumped by the Weyl constants
//! `(0x9E3779B9, 0xBB67AE85)` between rounds. A bijection of the counter for each key.
template <int Rounds>
constexpr philox4x32_counter philox4x32_r(philox4x32_counter c, philox4x32_key k) noexcept {
    static_assert(Rounds >= 1 && Rounds <= 16, "selfreplay::philox4x32_r: Rounds must be in [1, 16]");
    for (int r = 0; r < Rounds; ++r) {
        if (r > 0) {
            k[0] += 0x9E3779B9u;
            k[1] += 0xBB67AE85u;
        }
        const std::uint64_t p0 = std::uint64_t{0xD2511F53u} * c[0];
        const std::uint64_t p1 = std::uint64_t{0xCD9E8D57u} * c[2];
        const auto hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
        const auto hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
        c = {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
    }
    return c;
}

//! Philox4x32-10, the recommended round count: four random 32-bit words for each
//! (counter, key). Same output as Random123 `philox4x32(ctr, key)`.
constexpr philox4x32_counter philox4x32(const philox4x32_counter& counter, const philox4x32_key& key) noexcept {
    return philox4x32_r<10>(counter, key);
}

} // namespace selfreplay
