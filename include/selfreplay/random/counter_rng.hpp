#pragma once
//! \file
//! `counter_rng`: a counter-based random stream over Philox4x32-10. Its whole state is the
//! triple (seed, stream, counter): the numbers depend on nothing else, so every row, sequence or
//! rank gets its own stream and results do not depend on the thread count or the batching.

#include <cstdint>
#include <limits>

#include "selfreplay/random/philox.hpp"

namespace selfreplay {

//! A random stream: word `n` of stream `(seed, stream)` is word `n % 4` of
//! `philox4x32({n/4 low, n/4 high, stream low, stream high}, {seed low, seed high})`.
//! An aggregate: `counter_rng{.seed = 7, .stream = row}` (the counter starts at 0). Save the
//! state by copying the three members, restore it by assigning them; `counter` is the index of
//! the next 32-bit word, so `skip(n)` is `counter += n`. Also a C++ UniformRandomBitGenerator
//! (32-bit words), usable with `<random>` distributions.
struct counter_rng {
    std::uint64_t seed = 0;    //!< Philox key
    std::uint64_t stream = 0;  //!< stream id (e.g. the global row index), high half of the Philox counter
    std::uint64_t counter = 0; //!< index of the next 32-bit word of this stream

    using result_type = std::uint32_t; //!< UniformRandomBitGenerator: the word type
    static constexpr result_type min() noexcept { return 0; }                                       //!< 0
    static constexpr result_type max() noexcept { return std::numeric_limits<result_type>::max(); } //!< 2^32 - 1

    //! The Philox block holding words `4*block .. 4*block + 3` of this stream (does not advance).
    constexpr philox4x32_counter block(std::uint64_t block_index) const noexcept {
        return philox4x32({static_cast<std::uint32_t>(block_index), static_cast<std::uint32_t>(block_index >> 32),
                           static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32)},
                          {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)});
    }
    //! The next 32-bit word; advances `counter` by 1.
    constexpr std::uint32_t next_u32() noexcept {
        const std::uint64_t n = counter++;
        return block(n >> 2)[n & 3];
    }
    //! The next 64-bit value (two words, the first in the low half); advances `counter` by 2.
    constexpr std::uint64_t next_u64() noexcept {
        const std::uint64_t lo = next_u32();
        return lo | (std::uint64_t{next_u32()} << 32);
    }
    //! UniformRandomBitGenerator call: `next_u32()`.
    constexpr result_type operator()() noexcept { return next_u32(); }
    //! Advances the stream by `n` words without generating them.
    constexpr void skip(std::uint64_t n) noexcept { counter += n; }

    friend constexpr bool operator==(const counter_rng&, const counter_rng&) = default; //!< same state
};

} // namespace selfreplay
