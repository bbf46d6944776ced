#pragma once
// Shared by the libFuzzer harnesses: decodes the fuzzer's bytes into parameters, and reports an
// invariant failure (a finding) by aborting with a message, which libFuzzer records as a crash.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace fuzz {

//! Reads values from the input, front to back; past the end every read gives 0.
class input {
public:
    input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

    std::size_t left() const { return size_ - pos_; }

    std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }

    //! An integer in [lo, hi] (hi - lo < 2^32).
    std::int64_t in(std::int64_t lo, std::int64_t hi) {
        std::uint32_t v = 0;
        for (int i = 0; i < 4; ++i) v = v << 8 | byte();
        return lo + static_cast<std::int64_t>(v % static_cast<std::uint64_t>(hi - lo + 1));
    }

    bool flag() { return byte() & 1; }

    //! Raw bits of a T.
    template <class T>
    T raw() {
        unsigned char b[sizeof(T)];
        for (auto& c : b) c = byte();
        T v;
        std::memcpy(&v, b, sizeof v);
        return v;
    }

    //! A value of T from a palette of the interesting ones (0, +-1, tiny, huge, subnormal, the
    //! extremes, NaN, +-inf), an ordinary value in [-20, 20], or raw bits.
    template <class T>
    T value() {
        using L = std::numeric_limits<T>;
        switch (byte() % 24) {
        case 0: return 0;
        case 1: return 1;
        case 2: return -1;
        case 3: return L::denorm_min();
        case 4: return L::min();
        case 5: return L::max();
        case 6: return L::lowest();
        case 7: return L::quiet_NaN();
        case 8: return L::infinity();
        case 9: return -L::infinity();
        case 10: return T(1e4);
        case 11: return T(-1e4);
        case 12: return raw<T>();
        case 13: return T(-745.5);
        default: return T(static_cast<double>(in(-20000, 20000)) / 1000.0);
        }
    }

    //! A positive parameter across the whole positive range of double: 2^e * (1 + frac),
    //! e in [-1074, 1023], or one of 0, 1, NaN, inf, a negative value.
    double positive() {
        switch (byte() % 8) {
        case 0: return 1.0;
        case 1: return std::ldexp(1.0 + static_cast<double>(in(0, 999)) / 1000.0, static_cast<int>(in(-1074, 1023)));
        case 2: return value<double>();
        default: return std::ldexp(1.0 + static_cast<double>(in(0, 999)) / 1000.0, static_cast<int>(in(-8, 8)));
        }
    }

private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t pos_ = 0;
};

//! Reports a broken invariant: prints it and aborts (libFuzzer saves the input).
[[noreturn]] inline void fail(const char* what, double a = 0, double b = 0) {
    std::fprintf(stderr, "selfreplay fuzz invariant failed: %s (%.17g, %.17g)\n", what, a, b);
    std::abort();
}

//! Checks an invariant.
inline void check(bool ok, const char* what, double a = 0, double b = 0) {
    if (!ok) fail(what, a, b);
}

} // namespace fuzz
