#pragma once
//! \file
//! `exact_sum`: a floating-point sum that is exact until it is read, so partial sums computed on
//! shards, threads or ranks merge to the bit-identical result of one pass in any order.

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>

#include "selfreplay/error.hpp"

namespace selfreplay {

//! An exact sum of doubles: a fixed-point superaccumulator (in the spirit of Kulisch's long
//! accumulator and Neal's xsum). Every finite double is an integer multiple of 2^-1074, so the
//! sum is kept as one big integer in units of 2^-1074, in 68 signed 64-bit chunks of 32 bits
//! each (2,176 bits: the whole double range plus carry room). `add` splits the 53-bit mantissa
//! over three chunks with integer additions (no rounding); `merge` adds chunk by chunk;
//! `value()` propagates carries and rounds the exact integer once, to nearest, ties to even.
//! Hence the result depends neither on the order of additions nor on how values were split
//! across accumulators: split + merge equals a single pass bit for bit.
//! Only finite values are accepted; `value()` throws when the exact sum is outside the double
//! range. A zero sum reads as +0.
//!
//! Exported state (`export_state` / `import_state`, for exchange between processes): `state_size`
//! = 68 signed 64-bit integers, layout version `state_version` = 1. Element i is chunk i of the
//! exact integer sum in units of 2^-1074: sum = sum_i state[i] * 2^(32 i - 1074). Exported chunks
//! are carry-normalised (0 <= state[i] < 2^32 for i < 67; state[67] carries the sign), so the
//! element-wise integer sum of up to 2^29 exported states (an MPI integer sum-allreduce) is again
//! a valid state holding the exact sum of theirs, whatever the order of the additions.
class exact_sum {
public:
    //! Number of integers in an exported state.
    static constexpr std::size_t state_size = 68;
    //! Version of the state layout described above (changes if the layout ever does).
    static constexpr int state_version = 1;
    //! An exported state.
    using state_type = std::array<std::int64_t, state_size>;

    //! Adds `x` exactly. Throws `invalid_argument` when `x` is NaN or infinite.
    void add(double x) {
        if (!std::isfinite(x))
            throw invalid_argument("exact_sum::add", "x", "must be finite, got " + std::to_string(x));
        add_finite(x);
    }

    //! Adds `x`, which the caller guarantees is finite (not checked: an infinity or NaN here
    //! corrupts the sum).
    void add_finite(double x) {
        const auto bits = std::bit_cast<std::uint64_t>(x);
        const auto biased = static_cast<int>((bits >> 52) & 0x7FF);
        std::uint64_t m = bits & ((std::uint64_t{1} << 52) - 1);
        if (biased != 0) m |= std::uint64_t{1} << 52;
        if (m == 0) return;
        // x = +-m * 2^(pos - 1074) with pos the bit position of m's lowest bit in the accumulator.
        const int pos = biased == 0 ? 0 : biased - 1;
        const int c = pos >> 5, r = pos & 31;
        const std::uint64_t p0 = (m << r) & low32;
        const std::uint64_t p1 = r == 0 ? (m >> 32) : ((m >> (32 - r)) & low32);
        const std::uint64_t p2 = r == 0 ? 0 : (m >> (64 - r));
        if (bits >> 63) {
            chunks_[c] -= static_cast<std::int64_t>(p0);
            chunks_[c + 1] -= static_cast<std::int64_t>(p1);
            chunks_[c + 2] -= static_cast<std::int64_t>(p2);
        } else {
            chunks_[c] += static_cast<std::int64_t>(p0);
            chunks_[c + 1] += static_cast<std::int64_t>(p1);
            chunks_[c + 2] += static_cast<std::int64_t>(p2);
        }
        if (++pending_ >= normalize_every) normalize(chunks_), pending_ = 0;
    }

    //! Adds everything `other` holds, exactly.
    void merge(const exact_sum& other) {
        for (std::size_t i = 0; i < n_chunks; ++i) chunks_[i] += other.chunks_[i];
        pending_ += other.pending_ + 1;
        if (pending_ >= normalize_every) normalize(chunks_), pending_ = 0;
    }

    //! The exact sum rounded to the nearest double, ties to even (0 when empty). Throws
    //! `invalid_argument` when it is beyond the largest finite double.
    double value() const {
        const double v = scaled_value(0);
        if (std::isinf(v)) throw invalid_argument("exact_sum::value", "sum", "is beyond the double range");
        return v;
    }

    //! The exact sum times 2^-shift (shift >= 0), rounded once to the nearest double, ties to even;
    //! +-inf beyond the double range. For a sum beyond the double range (up to 2^1086), shift = 64
    //! gives the same significand as an unbounded exponent would (a mean of such a sum is finite).
    double scaled_value(int shift) const {
        auto n = chunks_;
        normalize(n);
        const bool negative = n[n_chunks - 1] < 0;
        if (negative) {
            for (auto& v : n) v = -v;
            normalize(n);
        }
        std::size_t h = n_chunks;
        while (h > 0 && n[h - 1] == 0) --h;
        if (h == 0) return 0.0;
        --h; // highest nonzero chunk; after normalize all chunks are in [0, 2^32)
        auto chunk = [&](std::size_t i) -> std::uint64_t { return static_cast<std::uint64_t>(n[i]); };
        const int b = std::bit_width(chunk(h)); // 1..32
        const long length = 32L * static_cast<long>(h) + b; // bit length of the integer
        double result = 0;
        if (length <= 53) {
            const std::uint64_t v = (h >= 1 ? chunk(h) << 32 | chunk(h - 1) : chunk(h));
            result = std::ldexp(static_cast<double>(v), -1074 - shift); // exact for shift = 0: fewer than 54 bits
        } else {
            // The top 64 bits of the integer, then round to 53 with a sticky bit for the rest.
            const std::uint64_t hi = chunk(h) << 32 | (h >= 1 ? chunk(h - 1) : 0);
            const std::uint64_t lo = h >= 2 ? chunk(h - 2) : 0;
            const std::uint64_t top = (b == 32 ? hi : (hi << (32 - b)) | (lo >> b));
            bool sticky = b == 32 ? lo != 0 : (lo & ((std::uint64_t{1} << b) - 1)) != 0;
            for (std::size_t i = 0; i + 2 < h && !sticky; ++i) sticky = n[i] != 0;
            std::uint64_t q = top >> 11;
            const bool half = (top >> 10) & 1;
            const bool rest = (top & 0x3FF) != 0 || sticky;
            if (half && (rest || (q & 1))) ++q;
            result = std::ldexp(static_cast<double>(q), static_cast<int>(length - 64 + 11 - 1074 - shift));
        }
        return negative ? -result : result;
    }

    //! The state (layout above): carry-normalised chunks of the exact sum.
    state_type export_state() const noexcept {
        auto n = chunks_;
        normalize(n);
        return n;
    }

    //! Replaces the contents with an exported state (or an element-wise integer sum of exported
    //! states). Throws `invalid_argument` naming `state` unless it holds `state_size` integers,
    //! each of magnitude below 2^62 (beyond that a sum of states has overflowed or is corrupt);
    //! leaves this sum unchanged then.
    void import_state(std::span<const std::int64_t> state) {
        require(state.size() == state_size, "exact_sum::import_state", "state", "must hold ", state_size,
                " integers (layout version ", state_version, "), got ", state.size());
        std::int64_t largest = 0;
        for (std::size_t i = 0; i < state_size; ++i) {
            require(state[i] > -max_chunk && state[i] < max_chunk, "exact_sum::import_state", "state",
                    "holds ", state[i], " at element ", i, ", beyond the bound 2^62 of a valid chunk (corrupt or overflowed)");
            largest = std::max(largest, std::abs(state[i]));
        }
        std::copy(state.begin(), state.end(), chunks_.begin());
        // keep the invariant |chunk| < 2^32 * (pending + 1) that bounds merges before a normalise
        pending_ = largest >> 32;
        if (pending_ >= normalize_every) normalize(chunks_), pending_ = 0;
    }

    //! Forgets everything added.
    void clear() noexcept {
        chunks_.fill(0);
        pending_ = 0;
    }

private:
    static constexpr std::size_t n_chunks = 68;
    static constexpr std::uint64_t low32 = 0xFFFFFFFFu;
    // Each add moves a chunk by less than 2^32 and a merge by less than its other's bound, so
    // |chunk| < 2^32 * (pending + 1) < 2^62 while pending < 2^29.
    static constexpr std::int64_t normalize_every = std::int64_t{1} << 29;
    static constexpr std::int64_t max_chunk = std::int64_t{1} << 62;

    // Carry propagation: chunks 0..66 into [0, 2^32), the top chunk keeps the sign.
    static void normalize(std::array<std::int64_t, n_chunks>& n) noexcept {
        for (std::size_t i = 0; i + 1 < n_chunks; ++i) {
            const std::int64_t low = n[i] & static_cast<std::int64_t>(low32);
            n[i + 1] += (n[i] - low) / (std::int64_t{1} << 32);
            n[i] = low;
        }
    }

    std::array<std::int64_t, n_chunks> chunks_{};
    std::int64_t pending_ = 0;
};

} // namespace selfreplay
