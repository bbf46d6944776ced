#pragma once
//! \file
//! Random indices for the replay buffers from `counter_rng` streams keyed by (seed, stream id):
//! each draw is a pure function of its key and position, so a buffer's random state is a few
//! counters that save and restore exactly.

#include <cstdint>

#include "selfreplay/random/counter_rng.hpp"

namespace selfreplay::detail {

//! Purposes of replay random streams; a stream id is `(index << 3) | purpose`.
enum class replay_stream : std::uint64_t { ingest = 1, draw = 2, resize = 3 };

//! The stream id of `purpose` at `index` (an item or batch counter).
constexpr std::uint64_t stream_id(replay_stream purpose, std::uint64_t index) noexcept {
    return (index << 3) | static_cast<std::uint64_t>(purpose);
}

//! Uniform integers from the `counter_rng` stream (seed, stream).
class index_rng {
public:
    constexpr index_rng(std::uint64_t seed, std::uint64_t stream) noexcept : rng_{.seed = seed, .stream = stream} {}

    //! A uniform integer in [0, n), n >= 1, without modulo bias: 64-bit words above the largest
    //! multiple of n are rejected.
    constexpr std::uint64_t below(std::uint64_t n) noexcept {
        const std::uint64_t limit = UINT64_MAX - (UINT64_MAX % n + 1) % n; // (largest multiple of n) - 1
        std::uint64_t x = rng_.next_u64();
        while (x > limit) x = rng_.next_u64();
        return x % n;
    }

private:
    counter_rng rng_;
};

} // namespace selfreplay::detail
