#pragma once
//! \file
//! Internal: what the public losses share: addressing [B, T, V] or [B*T, V] logits as rows,
//! gathering strided rows, the row-parallel driver, and the checks of the common options.
//! Not part of the public API.

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "selfreplay/error.hpp"
#include "selfreplay/losses/common.hpp"
#include "selfreplay/losses/detail/rows.hpp"
#include "selfreplay/tensor/strided_view.hpp"

namespace selfreplay::detail {

//! Logits addressed by position: row (b, t) starts at data + b * sb + t * st, element v at + v * sv.
template <class T>
struct position_rows {
    T* data = nullptr;
    index_t batch = 0, length = 0, vocab = 0;
    index_t sb = 0, st = 0, sv = 1;
    T* row(index_t b, index_t t) const noexcept { return data + b * sb + t * st; }
    bool contiguous() const noexcept { return sv == 1 || vocab <= 1; }
};

template <class T>
position_rows<T> as_rows(const strided_view<T, 3>& v) {
    return {v.data(), v.extent(0), v.extent(1), v.extent(2), v.stride(0), v.stride(1), v.stride(2)};
}
//! Rank-2 logits [B*T, V] seen as B sequences of `length` positions.
template <class T>
position_rows<T> as_rows(const strided_view<T, 2>& v, index_t batch, index_t length, std::string_view where,
                         std::string_view argument) {
    require(v.extent(0) == batch * length, where, argument,
            "has ", v.extent(0), " rows but the positions are [", batch, ", ", length, "] (expected B*T = ",
                batch * length, " rows)");
    return {v.data(), batch, length, v.extent(1), length * v.stride(0), v.stride(0), v.stride(1)};
}

template <class A, class B>
void require_same_rows(const position_rows<A>& a, const position_rows<B>& b, std::string_view where,
                       std::string_view argument, std::string_view other) {
    if (a.batch == b.batch && a.length == b.length && a.vocab == b.vocab) return;
    auto show = [](const auto& x) {
        return "[" + std::to_string(x.batch) + ", " + std::to_string(x.length) + ", " + std::to_string(x.vocab) + "]";
    };
    throw invalid_argument(where, argument, "has shape " + show(a) + " (as [B, T, V]) but '" + std::string(other) +
                                                "' has shape " + show(b));
}

//! Per-thread scratch of the row kernels, one buffer per role. `parallel_rows` uses one per thread
//! (`thread_scratch`) for the life of the thread: the buffers grow to the largest row seen and are
//! reused by later calls.
template <class T>
struct row_scratch {
    std::vector<T> student;     //!< a contiguous copy of a strided student (or logits) row
    std::vector<T> reference;   //!< a contiguous copy of a strided reference row
    std::vector<T> gradient;    //!< the gradient row before it is scattered into a strided output
    std::vector<T> kept_a;      //!< per-element values the gradient pass reads (the student's side)
    std::vector<T> kept_b;      //!< the same for the reference's side
    std::vector<T> block_coefs; //!< per-block maxima, then the gradient's per-block coefficients
};

//! `buffer`'s storage, grown to at least n elements.
template <class T>
T* at_least(std::vector<T>& buffer, index_t n) {
    if (static_cast<index_t>(buffer.size()) < n) buffer.resize(static_cast<std::size_t>(n));
    return buffer.data();
}

//! This thread's scratch for rows of T, shared by every loss and kept across calls: fresh buffers
//! would cost their page faults and zeroing on every call (docs/performance.md, "Losses"). Losses
//! do not nest, so one per thread suffices (a float call's rows retried in double use the double one).
template <class T>
row_scratch<T>& thread_scratch() {
    thread_local row_scratch<T> s;
    return s;
}

//! A contiguous copy of row (b, t) (or the row itself when contiguous).
template <class T>
const T* contiguous_row(const position_rows<const T>& x, index_t b, index_t t, T* buffer) noexcept {
    const T* p = x.row(b, t);
    if (x.contiguous()) return p;
    for (index_t v = 0; v < x.vocab; ++v) buffer[v] = p[v * x.sv];
    return buffer;
}

//! Runs value = fn(row, scratch) for rows [0, rows) on `threads` threads (contiguous blocks of
//! rows, the first on the calling thread) and stores the values. An exception thrown for a row
//! is rethrown; when several blocks fail, the first block's exception wins (deterministic).
template <class T, class Fn>
void parallel_rows(index_t rows, int threads, std::vector<double>& values, Fn&& fn) {
    values.assign(static_cast<std::size_t>(rows), 0.0);
    const index_t nt = std::max<index_t>(1, std::min<index_t>(threads, rows));
    auto block = [&](index_t k) {
        row_scratch<T>& s = thread_scratch<T>();
        const index_t begin = rows * k / nt, end = rows * (k + 1) / nt;
        for (index_t r = begin; r < end; ++r) values[static_cast<std::size_t>(r)] = fn(r, s);
    };
    if (nt == 1) {
        block(0);
        return;
    }
    std::vector<std::exception_ptr> errors(static_cast<std::size_t>(nt));
    std::vector<std::thread> pool;
    pool.reserve(static_cast<std::size_t>(nt - 1));
    for (index_t k = 1; k < nt; ++k)
        pool.emplace_back([&, k] {
            try {
                block(k);
            } catch (...) {
                errors[static_cast<std::size_t>(k)] = std::current_exception();
            }
        });
    try {
        block(0);
    } catch (...) {
        errors[0] = std::current_exception();
    }
    for (auto& th : pool) th.join();
    for (auto& e : errors)
        if (e) std::rethrow_exception(e);
}

inline void check_common(std::string_view where, double scale, int threads) {
    require(std::isfinite(scale), where, "options.scale", "must be finite, got ", scale);
    require(threads >= 1, where, "options.threads", "must be at least 1, got ", threads);
}

//! The gradient's factor scale / (denominator * temperature) in T (0 when nothing is counted).
//! Throws naming `options.scale` when it is not a finite T: the gradient would be +-inf or NaN
//! while the value (double) stays finite.
template <class T>
T gradient_factor(std::string_view where, double scale, double denom, double temperature) {
    const double k = denom > 0 ? scale / (denom * temperature) : 0.0;
    require(std::abs(k) <= double(std::numeric_limits<T>::max()), where, "options.scale",
            "gives a gradient factor scale / (denominator * temperature) = ", k, " outside the finite range of ",
            sizeof(T) == 4 ? "float" : "double", " (scale = ", scale, ")");
    return static_cast<T>(k);
}

inline void check_positions(std::string_view where, index_t batch, index_t length, const position_mask& mask,
                            const strided_view<double, 2>& per_position, reduction how) {
    if (!mask.empty())
        require(mask.extent(0) == batch && mask.extent(1) == length, where, "options.mask",
                "has shape [", mask.extent(0), ", ", mask.extent(1), "] but the positions are [", batch, ", ",
                    length, "]");
    if (per_position.data() != nullptr || per_position.size() != 0)
        require(per_position.extent(0) == batch && per_position.extent(1) == length, where, "options.per_position",
                "has shape [", per_position.extent(0), ", ", per_position.extent(1),
                    "] but the positions are [", batch, ", ", length, "]");
    require(how != reduction::none || per_position.data() != nullptr || batch * length == 0, where,
            "options.per_position", "must be given (a [B, T] view) with reduction::none");
}

inline double denominator(reduction how, index_t batch, index_t length, index_t counted) {
    switch (how) {
    case reduction::mean_all: return static_cast<double>(batch * length);
    case reduction::mean_counted: return static_cast<double>(counted);
    default: return 1.0;
    }
}

//! Sums per-row values in row order, writes them to `per_position` if given, returns the result.
inline loss_result finish(const std::vector<double>& values, index_t batch, index_t length, index_t counted,
                          double denom, double scale, const strided_view<double, 2>& per_position) {
    double sum = 0;
    for (double v : values) sum += v;
    if (per_position.data() != nullptr)
        for (index_t b = 0; b < batch; ++b)
            for (index_t t = 0; t < length; ++t)
                per_position(b, t) = values[static_cast<std::size_t>(b * length + t)];
    loss_result out;
    out.counted = counted;
    out.value = denom > 0 ? scale * sum / denom : 0.0;
    return out;
}

//! Gradients larger than this many bytes are written with non-temporal stores (they would not
//! stay in cache anyway); smaller ones stay in cache for the caller's backward pass.
inline constexpr index_t stream_threshold_bytes = index_t(16) << 20;

template <class T>
bool stream_gradient(const position_rows<T>& g, bool accumulate) noexcept {
    return !accumulate && g.contiguous() && g.batch * g.length * g.vocab * static_cast<index_t>(sizeof(T)) > stream_threshold_bytes;
}

//! Writes the gradient row (b, t): zero when not counted (unless accumulating), else runs
//! kernel(g_ptr, accumulate, direct) on the row itself (direct) or on a contiguous buffer that
//! is then scattered into the strided row. When accumulating into a strided row, the buffer first
//! receives the row's current values and the kernel accumulates into it, so that every entry is
//! rounded in the same order as on a contiguous row (bit-identical layouts).
template <class T, class Kernel>
void gradient_row(const position_rows<T>& g, index_t b, index_t t, bool counted, bool accumulate, T* buffer,
                  Kernel&& kernel) {
    T* p = g.row(b, t);
    if (!counted) {
        if (!accumulate)
            for (index_t v = 0; v < g.vocab; ++v) p[v * g.sv] = T(0);
        return;
    }
    if (g.contiguous()) {
        kernel(p, accumulate, true);
        return;
    }
    if (accumulate)
        for (index_t v = 0; v < g.vocab; ++v) buffer[v] = p[v * g.sv];
    kernel(buffer, accumulate, false);
    for (index_t v = 0; v < g.vocab; ++v) p[v * g.sv] = buffer[v];
}

//! The exception for a row kernel's complaint about row (b, t).
[[noreturn]] inline void throw_row_status(row_status s, std::string_view where, std::string_view first,
                                          std::string_view second, index_t b, index_t t) {
    const std::string at = " at position (" + std::to_string(b) + ", " + std::to_string(t) + ")";
    switch (s) {
    case row_status::first_not_finite: throw invalid_argument(where, first, "contains NaN or +inf" + at);
    case row_status::second_not_finite: throw invalid_argument(where, second, "contains NaN or +inf" + at);
    case row_status::first_all_neg_inf: throw invalid_argument(where, first, "has every logit -inf" + at);
    case row_status::second_all_neg_inf: throw invalid_argument(where, second, "has every logit -inf" + at);
    case row_status::ok:
    case row_status::retry_in_double: break; // (handled by the callers)
    }
    throw invalid_argument(where, first, "rejected" + at);
}

//! The static rank used for a logits tensor: its own, or 3 for dynamic-rank backends.
template <class X>
inline constexpr std::size_t logits_rank =
    tensor_traits<std::remove_cvref_t<X>>::rank == dynamic_rank ? 3 : tensor_traits<std::remove_cvref_t<X>>::rank;

} // namespace selfreplay::detail
