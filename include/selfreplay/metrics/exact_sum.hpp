#pragma once
//! \file
//! `exact_sum`: a floating-point sum that is exact until it is read, so partial sums computed on
//! shards, threads or ranks merge to the bit-identical result of one pass in any order.

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "selfreplay/tensor/error.hpp"

namespace selfreplay {

//! An exact sum of doubles (Shewchuk 1997 non-overlapping expansions, the algorithm of Python's
//! `math.fsum`). `add` and `merge` keep the exact real-number sum of everything added as a short
//! list of non-overlapping partials; `value()` rounds that exact sum once, to nearest (ties to
//! even). Hence the result does not depend on the order of additions or on how the values were
//! split across accumulators: split + merge equals a single pass bit for bit.
//! Only finite values are accepted; a sum leaving the double range (~1.8e308) throws, after
//! which this accumulator holds an unspecified (valid) value: discard it.
//! Cost: `add` is O(number of partials), a handful for sums of similar magnitudes.
class exact_sum {
public:
    //! Adds `x` exactly. Throws `invalid_argument` when `x` is NaN or infinite.
    void add(double x) {
        if (!std::isfinite(x))
            throw invalid_argument("exact_sum::add", "x", "must be finite, got " + std::to_string(x));
        add_finite(x);
    }

    //! Adds everything `other` holds, exactly.
    void merge(const exact_sum& other) {
        for (double p : other.partials_) add_finite(p);
    }

    //! The exact sum rounded to the nearest double (0 when empty).
    double value() const {
        std::size_t n = partials_.size();
        if (n == 0) return 0.0;
        double hi = partials_[--n], lo = 0.0;
        while (n > 0) {
            const double x = hi, y = partials_[--n];
            hi = x + y;
            const double yr = hi - x;
            lo = y - yr;
            if (lo != 0.0) break;
        }
        // Correct the round-half-even case across several partials (as CPython's fsum does).
        if (n > 0 && ((lo < 0.0 && partials_[n - 1] < 0.0) || (lo > 0.0 && partials_[n - 1] > 0.0))) {
            const double y = lo * 2.0, x = hi + y;
            if (y == x - hi) hi = x;
        }
        return hi;
    }

    //! Forgets everything added.
    void clear() noexcept { partials_.clear(); }

    //! Adds `x`, which the caller guarantees is finite (not checked; an overflowing sum still throws).
    void add_finite(double x) {
        std::size_t i = 0;
        for (double y : partials_) {
            if (std::abs(x) < std::abs(y)) std::swap(x, y);
            const double hi = x + y;
            const double lo = y - (hi - x);
            if (lo != 0.0) partials_[i++] = lo;
            x = hi;
        }
        if (!std::isfinite(x)) throw invalid_argument("exact_sum::add", "x", "makes the sum overflow the double range");
        partials_.resize(i);
        partials_.push_back(x);
    }

private:
    std::vector<double> partials_; // increasing magnitude, non-overlapping
};

} // namespace selfreplay
