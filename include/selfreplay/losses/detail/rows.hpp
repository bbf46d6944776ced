#pragma once
//! \file
//! Internal: the per-row kernels of the losses, on one contiguous row of V logits.
//! Each kernel makes at most three passes over the row (a max scan, a pass of exponentials and
//! sums, a gradient write), so that after the first pass the row is served from cache.
//! Sums are taken in float/double registers lane by lane and flushed to double every
//! `flush_every` registers, in a fixed order: results are deterministic.
//! Gradient outputs may alias the first (student) input: every pass that writes `g` reads the
//! inputs at the same index first.
//! Not part of the public API.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <tuple>
#include <type_traits>

#include "selfreplay/losses/detail/simd.hpp"

namespace selfreplay::detail {

//! What a row kernel found wrong with its inputs (the caller turns it into an exception).
enum class row_status { ok, first_not_finite, second_not_finite, first_all_neg_inf, second_all_neg_inf };

//! Value of one row and the status of its inputs.
struct row_value {
    double value = 0;
    row_status status = row_status::ok;
};

inline constexpr index_t flush_every = 64; // registers summed in T before a flush to double

//! Calls body(i, count) for each register of the row [0, n): count == lanes for full registers,
//! count < lanes once for the tail; flush() after every `flush_every` registers and at the end.
template <class T, class Body, class Flush>
inline void sweep(index_t n, Body&& body, Flush&& flush) {
    constexpr index_t L = simd::lanes<T>;
    index_t i = 0, k = 0;
    for (; i + L <= n; i += L) {
        body(i, L);
        if (++k == flush_every) {
            flush();
            k = 0;
        }
    }
    if (i < n) body(i, n - i);
    flush();
}
template <class T, class Body>
inline void sweep(index_t n, Body&& body) {
    sweep<T>(n, body, [] {});
}

template <class T>
inline simd::vec<T> ld(const T* p, index_t i, index_t count, T fill) noexcept {
    return count == simd::lanes<T> ? simd::load(p + i) : simd::load_partial(p + i, count, fill);
}
template <class T>
inline void st(T* p, index_t i, index_t count, simd::vec<T> v) noexcept {
    if (count == simd::lanes<T>)
        simd::store(p + i, v);
    else
        simd::store_partial(p + i, v, count);
}

//! Maximum of x[0, n) and whether every element is finite or -inf (no NaN, no +inf).
template <class T>
inline void scan_max(const T* x, index_t n, T& max, bool& ok) noexcept {
    using V = simd::vec<T>;
    const T inf = std::numeric_limits<T>::infinity();
    V m = simd::splat(-inf);
    simd::mask<T> good = simd::mask<T>{} - 1;
    sweep<T>(n, [&](index_t i, index_t c) {
        const V v = ld(x, i, c, -inf);
        m = simd::vmax<T>(v, m);
        good &= v < inf;
    });
    max = simd::hmax<T>(m);
    ok = simd::all<T>(good);
}

//! Scans one input and reports its status; on success `max` is its maximum.
template <class T>
inline row_status check_row(const T* x, index_t n, T& max, bool second) noexcept {
    bool ok = true;
    scan_max(x, n, max, ok);
    if (!ok) return second ? row_status::second_not_finite : row_status::first_not_finite;
    if (max == -std::numeric_limits<T>::infinity())
        return second ? row_status::second_all_neg_inf : row_status::first_all_neg_inf;
    return row_status::ok;
}

//! Writes g = (Acc ? g : 0) + v at register i.
template <bool Acc, class T>
inline void put(T* g, index_t i, index_t c, simd::vec<T> v) noexcept {
    if constexpr (Acc) v += ld(g, i, c, T(0));
    st(g, i, c, v);
}

//! Elements per block of the single-read kernels: a block is read from memory once (max scan)
//! and then served from L1 for the exponentials.
inline constexpr index_t block_elems = 1024;

//! Number of blocks of a row of n elements (the size of the kernels' `wm` scratch, per input).
inline index_t block_count(index_t n) noexcept { return (n + block_elems - 1) / block_elems; }

//! Max of x[i0, i1) (NaN entries are skipped here; they surface as NaN sums in the kernels).
template <class T>
inline T block_max(const T* x, index_t i0, index_t i1) noexcept {
    using V = simd::vec<T>;
    constexpr index_t L = simd::lanes<T>;
    V m = simd::splat(-std::numeric_limits<T>::infinity());
    for (index_t i = i0; i < i1; i += L)
        m = simd::vmax<T>(ld(x, i, std::min(L, i1 - i), -std::numeric_limits<T>::infinity()), m);
    return simd::hmax<T>(m);
}

//! True when a row's running max and sum of exponentials show a NaN or +inf input
//! (a NaN input makes its exponential, hence the sum, NaN; +inf is the max).
template <class T>
inline bool bad_input(T max, double z) noexcept {
    return max == std::numeric_limits<T>::infinity() || std::isnan(z);
}

//! Per-block coefficient of register [i, i + c): coef[block of i], or lane by lane when the
//! register straddles two blocks (only when the gradient row is not register-aligned).
template <class T>
inline simd::vec<T> block_coefficient(const T* coef, index_t i, index_t c) noexcept {
    const index_t k0 = i / block_elems, k1 = (i + c - 1) / block_elems;
    if (k0 == k1) return simd::splat(coef[k0]);
    simd::vec<T> v{};
    for (index_t j = 0; j < c; ++j) v[j] = coef[(i + j) / block_elems];
    return v;
}

//! The gradient pass of the block-shifted kernels: g (+)= ca[k] a_i - cb[k] b_i for i in block k
//! of `block_elems` elements (Two = false: g (+)= ca[k] a_i). After a head that aligns g to a
//! register, each block's registers run with its coefficients in registers; the one register
//! that straddles a block boundary (when g is not block-aligned) and the row's tail take
//! `block_coefficient` lane by lane. With `stream` (and not Acc) full registers go out with
//! non-temporal stores at aligned addresses, so that a gradient larger than the caches costs one
//! write of memory and no read-for-ownership.
template <class T, bool Acc, bool Two>
inline void write_block_gradient(T* g, index_t n, bool stream, const T* ca, const T* a, const T* cb = nullptr,
                                 const T* b = nullptr) noexcept {
    using V = simd::vec<T>;
    constexpr index_t L = simd::lanes<T>;
    const bool nt = stream && !Acc && simd::can_stream;
    // both products rounded (no fused multiply-add, whichever path computes the register): the
    // result does not depend on g's alignment, and q - p is exactly 0 where the two are equal
    auto combine = [](V va, V xa, V vb, V xb) {
        if constexpr (Two)
            return simd::rounded<V>(va * xa) - simd::rounded<V>(vb * xb);
        else
            return va * xa;
    };
    auto lanewise = [&](index_t i, index_t c) {
        if constexpr (Two)
            return combine(block_coefficient(ca, i, c), ld(a, i, c, T(0)), block_coefficient(cb, i, c), ld(b, i, c, T(0)));
        else
            return combine(block_coefficient(ca, i, c), ld(a, i, c, T(0)), V{}, V{});
    };
    auto out = [&](index_t i, index_t c, V v) {
        if (nt && c == L)
            simd::stream(g + i, v);
        else
            put<Acc>(g, i, c, v);
    };
    const auto misaligned = static_cast<index_t>(reinterpret_cast<std::uintptr_t>(g) % simd::register_bytes);
    index_t i = misaligned == 0 ? 0
                                : std::min(n, (static_cast<index_t>(simd::register_bytes) - misaligned) /
                                                  static_cast<index_t>(sizeof(T)));
    if (i > 0) put<Acc>(g, 0, i, lanewise(0, i));
    while (i < n) {
        const index_t k = i / block_elems, i1 = std::min(n, (k + 1) * block_elems);
        const V va = simd::splat(ca[k]), vb = Two ? simd::splat(cb[k]) : V{};
        for (; i + L <= i1; i += L) {
            if constexpr (Two)
                out(i, L, combine(va, simd::load(a + i), vb, simd::load(b + i)));
            else
                out(i, L, combine(va, simd::load(a + i), vb, V{}));
        }
        if (i < i1) { // a register straddling into block k + 1, or the row's tail
            const index_t c = std::min(L, n - i);
            out(i, c, lanewise(i, c));
            i += c;
        }
    }
    if (nt) simd::stream_fence();
}

//! The block kernels' exponential in its exponent unit u^x (float: u = 2, `exp2_lanes`; double:
//! u = e, std::exp per lane), in two halves so that their loops can software-pipeline it:
//! `unit_exp_reduce` (float: `exp2_reduce`; double: x itself) and `unit_exp_finish` (float:
//! `exp2_finish`; double: std::exp).
template <class T>
[[gnu::always_inline]] inline auto unit_exp_reduce(simd::vec<T> x) noexcept {
    if constexpr (std::is_same_v<T, float>)
        return exp2_reduce(x);
    else
        return x;
}
template <class T, class Q>
[[gnu::always_inline]] inline simd::vec<T> unit_exp_finish(const Q& q) noexcept {
    if constexpr (std::is_same_v<T, float>)
        return exp2_finish(q);
    else
        return simd::exp(q);
}

//! Cross-entropy of one row x[0, n) against target y: logsumexp(x) - x[y].
//! With Grad: g (+)= gscale * (softmax(x) - onehot(y)). Single read of x: an online
//! log-sum-exp over blocks (the running max rescales the sum; the next block's maximum is taken
//! in the loop of this block's exponentials), exponentials stored for the gradient pass (`work`,
//! n elements) and a gradient pass (streamed when `stream`, see write_block_gradient); `wm` holds
//! block_count(n) elements. Float computes exp(x - m) as 2^((x - m) / ln 2) (`exp2_lanes` in two
//! halves, software-pipelined over the registers of a block).
template <class T, bool Grad, bool Acc>
inline row_value cross_entropy_row(const T* x, index_t n, index_t y, T* g, T gscale, T* work, T* wm,
                                   bool stream) noexcept {
    using V = simd::vec<T>;
    constexpr index_t L = simd::lanes<T>;
    constexpr T ninf = -std::numeric_limits<T>::infinity();
    // exp(d) = u^(d / ln u): float 2^(d log2(e)), double e^d
    auto reduce = [](V d) {
        if constexpr (std::is_same_v<T, float>)
            return unit_exp_reduce<T>(d * 1.44269504088896341f);
        else
            return unit_exp_reduce<T>(d);
    };
    auto finish = [](const auto& q) { return unit_exp_finish<T>(q); };
    row_value out;
    const double target_logit = static_cast<double>(x[y]); // read before g (which may alias x) is written
    T m = ninf;
    double z = 0;
    T next = block_max(x, 0, std::min(n, block_elems));
    for (index_t k = 0, i0 = 0; i0 < n; i0 += block_elems, ++k) {
        const index_t i1 = std::min(n, i0 + block_elems);
        const T nm = std::max(m, next);
        if (nm > m && m != ninf) z *= std::exp(static_cast<double>(m) - static_cast<double>(nm));
        m = nm;
        const V vm = simd::splat(m == ninf ? T(0) : m);
        V acc{}, nx = simd::splat(ninf);
        const index_t j1 = std::min(n, i1 + block_elems);
        if (j1 - i0 == 2 * block_elems) { // this block and the next are full: whole registers only
            // software-pipelined: the reduction of register i + L issues alongside the finish of i
            auto q = reduce(simd::load(x + i0) - vm);
            for (index_t i = i0; i < i1; i += L) {
                const auto cur = q;
                q = reduce(simd::load(x + (i + L < i1 ? i + L : i)) - vm); // the last "next" is unused
                const V e = finish(cur);
                if constexpr (Grad) simd::store(work + i, e);
                acc += e;
                nx = simd::vmax<T>(simd::load(x + i + block_elems), nx);
            }
        } else {
            for (index_t i = i0; i < i1; i += L) {
                const index_t c = std::min(L, i1 - i);
                if (const index_t j = i + block_elems; j < j1) // block k is full when block k + 1 exists
                    nx = simd::vmax<T>(ld(x, j, std::min(L, j1 - j), ninf), nx);
                const V e = finish(reduce(ld(x, i, c, ninf) - vm));
                if constexpr (Grad) st(work, i, c, e);
                acc += e;
            }
        }
        next = simd::hmax<T>(nx);
        z += simd::hsum<T>(acc);
        if constexpr (Grad) wm[k] = m;
    }
    if (bad_input(m, z)) return {0, row_status::first_not_finite};
    if (m == ninf) return {0, row_status::first_all_neg_inf};
    out.value = static_cast<double>(m) + std::log(z) - target_logit;
    if constexpr (Grad) {
        for (index_t k = 0; k < block_count(n); ++k) // wm: block maxima -> gradient coefficients
            wm[k] = static_cast<T>(wm[k] == ninf ? 0.0
                                                 : static_cast<double>(gscale) *
                                                       std::exp(static_cast<double>(wm[k]) - static_cast<double>(m)) / z);
        write_block_gradient<T, Acc, false>(g, n, stream, wm, work);
        g[y] -= gscale; // the one-hot term (after the fence of the streamed pass)
    }
    return out;
}

//! Forward KL(p || q) for one row, p = softmax(r / tau) (reference), q = softmax(s / tau)
//! (student): sum_v p_v (log p_v - log q_v). With Grad: g (+)= gscale * (q - p) (gscale includes
//! 1 / tau). `wa`, `wb` hold n elements each, `wm` 2 * block_count(n); the gradient is streamed when
//! `stream`.
//!
//! One read of s and r from memory: online log-sum-exps over blocks of `block_elems` with an
//! optimistic shift. Float works in base 2 (u = 1 / ln 2, `exp2_lanes`, its two halves
//! software-pipelined over the registers of a block), double in base e (u = 1): a = s u / tau - sa,
//! b = r u / tau - sb, where the shifts sa, sb are the scaled maxima of the blocks whose maxima were
//! taken so far (block 0's; 0 while they are -inf). A block is computed with the shifts as they
//! are, without a scan for its maxima; its exponents above the shift are clamped at 128 (float), so
//! that one too large makes its sum +inf. Only when the block's sum of student or reference
//! exponentials reaches 2^32 (some exponent at least 22 units above its shift), or a shift is still
//! unset, are the block's maxima taken (from L1), the shifts raised, the sums rescaled and the block
//! computed again. Hence every stored exponential is below 2^32 and za, zb >= 1 (the element that
//! set a shift gives 1). A block is computed twice only where its maximum exceeds the shift by
//! about 22 units or more (15 nats at tau = 1): never on the benchmark's rows; on a row that keeps
//! rising that fast from block to block (a small temperature), up to every block. (Scanning every
//! block for its maxima, inside the loop of the previous block's exponentials, cost two loads, two
//! maxima and two registers per register of that loop, which then no longer fit x86-64's 16
//! vector registers.)
//! Accumulated: za = sum 2^a, zb = sum 2^b (e^ in double) and sum_ = sum 2^b (b - a);
//! KL = sum_ / (u zb) + log za - log zb, +inf where the student has -inf and the reference does not.
template <class T, bool Grad, bool Acc>
inline row_value kl_forward_row(const T* s, const T* r, index_t n, T inv_tau, T* g, T gscale, T* wa, T* wb,
                                T* wm, bool stream) noexcept {
    using V = simd::vec<T>;
    constexpr index_t L = simd::lanes<T>;
    constexpr T ninf = -std::numeric_limits<T>::infinity();
    constexpr bool base2 = std::is_same_v<T, float>;
    constexpr double unit = base2 ? 1.4426950408889634 : 1.0; // u: logits to exponent units
    constexpr double redo_sum = 4294967296.0;                 // 2^32: a block sum this large is recomputed
    auto pw = [](double x) { return base2 ? std::exp2(x) : std::exp(x); };
    // u^x in two halves; float exponents above 128 are clamped there (2^128 = +inf), so that the
    // bits of 2^n do not wrap
    auto reduce = [](V x) {
        if constexpr (base2)
            return unit_exp_reduce<T>(min_or_second(simd::splat(T(128)), x));
        else
            return unit_exp_reduce<T>(x);
    };
    auto finish = [](const auto& q) { return unit_exp_finish<T>(q); };
    const T itu = static_cast<T>(static_cast<double>(inv_tau) * unit);
    const V it = simd::splat(itu), lowest = simd::splat(std::numeric_limits<T>::lowest());
    // a = s u / tau - shift in one multiply-add (the product is exact inside it); float without
    // FMA subtracts the raw maximum first instead, as the rounding of s u / tau alone would cost
    // |s| 6e-8 (3e-4 relative at |s| = 1e4). The shift is then max * (u / tau) exactly (in double).
#if defined(__FMA__)
    constexpr bool sub_first = false;
#else
    constexpr bool sub_first = base2;
#endif
    auto shift_of = [&](T m) {
        return m == ninf ? 0.0 : sub_first ? static_cast<double>(m) * static_cast<double>(itu) : static_cast<double>(m * itu);
    };
    T ms = block_max(s, 0, std::min(n, block_elems)), mr = block_max(r, 0, std::min(n, block_elems)); // the shifts' maxima
    double sa = shift_of(ms), sb = shift_of(mr); // the shifts in use
    double za = 0, zb = 0, sum = 0;
    const index_t nb = block_count(n);
    for (index_t k = 0, i0 = 0; i0 < n; i0 += block_elems, ++k) {
        const index_t i1 = std::min(n, i0 + block_elems);
        for (bool maxima_taken = k == 0;;) {
            if (!maxima_taken && (ms == ninf || mr == ninf)) { // no shift yet: this block's maxima first
                ms = std::max(ms, block_max(s, i0, i1));
                mr = std::max(mr, block_max(r, i0, i1));
                maxima_taken = true;
            }
            const double nsa = shift_of(ms), nsb = shift_of(mr);
            if (zb > 0 && (nsa != sa || nsb != sb)) {
                const double f = pw(sb - nsb);
                sum = f * (sum + zb * ((sb - nsb) - (sa - nsa)));
                zb *= f;
            }
            if (za > 0 && nsa != sa) za *= pw(sa - nsa);
            sa = nsa;
            sb = nsb;
            const V va = simd::splat(sub_first ? (ms == ninf ? T(0) : ms) : static_cast<T>(sa));
            const V vb = simd::splat(sub_first ? (mr == ninf ? T(0) : mr) : static_cast<T>(sb));
            V acc_a{}, acc_b{}, acc_s{};
            // one register in two halves: `front` scales both rows and reduces the exponents' arguments,
            // `back` finishes the exponentials and accumulates (and stores) them
            // (b - a is -inf or NaN only where b = -inf, 2^b = 0: there it becomes the lowest finite
            // value, whose product with 0 is 0; where a = -inf and b is finite it is +inf)
            auto front = [&](V xs, V xr) {
                const V a = sub_first ? (xs - va) * it : xs * it - va;
                const V b = sub_first ? (xr - vb) * it : xr * it - vb;
                return std::tuple{reduce(a), reduce(b), max_or_second(b - a, lowest)};
            };
            auto back = [&](index_t i, const auto& q, index_t c) {
                const auto& [qa, qb, d] = q;
                const V ea = finish(qa), eb = finish(qb);
                acc_a += ea;
                acc_b += eb;
                acc_s += eb * d;
                if constexpr (Grad) {
                    st(wa, i, c, ea);
                    st(wb, i, c, eb);
                }
            };
            if (i1 - i0 == block_elems) { // a full block: whole registers only
                // software-pipelined: the front of register i + L issues alongside the back of i (on
                // Zen 3, 8% fewer cycles per register than the two in sequence, rows in L1)
                auto q = front(simd::load(s + i0), simd::load(r + i0));
                for (index_t i = i0; i < i1; i += L) {
                    const auto cur = q;
                    const index_t j = i + L < i1 ? i + L : i; // the last register's "next" is itself (unused)
                    q = front(simd::load(s + j), simd::load(r + j));
                    back(i, cur, L);
                }
            } else {
                for (index_t i = i0; i < i1; i += L) {
                    const index_t c = std::min(L, i1 - i);
                    back(i, front(ld(s, i, c, ninf), ld(r, i, c, ninf)), c);
                }
            }
            const double ba = simd::hsum<T>(acc_a), bb = simd::hsum<T>(acc_b);
            if (!maxima_taken && !(ba < redo_sum && bb < redo_sum)) { // (NaN too: computed again once)
                ms = std::max(ms, block_max(s, i0, i1));
                mr = std::max(mr, block_max(r, i0, i1));
                maxima_taken = true;
                continue;
            }
            za += ba;
            zb += bb;
            sum += simd::hsum<T>(acc_s);
            break;
        }
        if constexpr (Grad) { // the maxima behind this block's shifts: student's in wm[k], reference's in wm[nb + k]
            wm[k] = ms;
            wm[nb + k] = mr;
        }
    }
    if (bad_input(ms, za)) return {0, row_status::first_not_finite};
    if (bad_input(mr, zb)) return {0, row_status::second_not_finite};
    if (ms == ninf) return {0, row_status::first_all_neg_inf};
    if (mr == ninf) return {0, row_status::second_all_neg_inf};
    row_value out;
    // a NaN sum comes from 0 * +inf: a = -inf where b is finite but 2^b underflowed to 0; p > 0 there
    // while q = 0, so the divergence is +inf (as where 2^b > 0, whose product is +inf)
    out.value = std::isnan(sum) ? std::numeric_limits<double>::infinity() : sum / (unit * zb) + std::log(za) - std::log(zb);
    if constexpr (Grad) {
        // wm: block maxima -> gradient coefficients gscale * u^(shift_k - final shift) / z
        for (index_t k = 0; k < nb; ++k) {
            wm[k] = static_cast<T>(wm[k] == ninf ? 0.0 : static_cast<double>(gscale) * pw(shift_of(wm[k]) - sa) / za);
            wm[nb + k] =
                static_cast<T>(wm[nb + k] == ninf ? 0.0 : static_cast<double>(gscale) * pw(shift_of(wm[nb + k]) - sb) / zb);
        }
        write_block_gradient<T, Acc, true>(g, n, stream, wm, wa, wm + nb, wb);
    }
    return out;
}

//! Reverse KL(q || p) for one row (q student, p reference, as above):
//! sum_v q_v (log q_v - log p_v). With Grad: g (+)= gscale * q * (log q - log p - KL).
template <class T, bool Grad, bool Acc>
inline row_value kl_reverse_row(const T* s, const T* r, index_t n, T inv_tau, T* g, T gscale, T* wa,
                                T* wb) noexcept {
    using V = simd::vec<T>;
    constexpr T ninf = -std::numeric_limits<T>::infinity();
    row_value out;
    T ms{}, mr{};
    if ((out.status = check_row(s, n, ms, false)) != row_status::ok) return out;
    if ((out.status = check_row(r, n, mr, true)) != row_status::ok) return out;
    const V it = simd::splat(inv_tau), va = simd::splat(ms * inv_tau), vb = simd::splat(mr * inv_tau);
    V acc_a{}, acc_b{}, acc_s{};
    double za = 0, zb = 0, sum = 0;
    sweep<T>(
        n,
        [&](index_t i, index_t c) {
            const V a = ld(s, i, c, ninf) * it - va;
            const V b = ld(r, i, c, ninf) * it - vb;
            const V ea = simd::exp(a), eb = simd::exp(b);
            const V d = a - b;
            acc_a += ea;
            acc_b += eb;
            acc_s += simd::select<T>(ea > T(0), ea * d, V{});
            if constexpr (Grad) {
                st(wa, i, c, ea);
                st(wb, i, c, d);
            }
        },
        [&] {
            za += simd::hsum<T>(acc_a);
            zb += simd::hsum<T>(acc_b);
            sum += simd::hsum<T>(acc_s);
            acc_a = acc_b = acc_s = V{};
        });
    const double log_ratio = std::log(zb) - std::log(za); // log q - log p = d + log_ratio
    out.value = sum / za + log_ratio;
    if constexpr (Grad) {
        const V ca = simd::splat(static_cast<T>(static_cast<double>(gscale) / za));
        const V shift = simd::splat(static_cast<T>(log_ratio - out.value));
        sweep<T>(n, [&](index_t i, index_t c) {
            const V ea = ld(wa, i, c, T(0));
            const V t = ca * ea * (ld(wb, i, c, T(0)) + shift);
            put<Acc>(g, i, c, simd::select<T>(ea > T(0), t, V{}));
        });
    }
    return out;
}

//! Generalized Jensen-Shannon divergence for one row, 0 < beta < 1 (TRL GKD convention):
//! beta * KL(p || m) + (1 - beta) * KL(q || m), m = beta * p + (1 - beta) * q.
//! With Grad: g (+)= gscale * (1 - beta) * q * (log(q / m) - KL(q || m)).
template <class T, bool Grad, bool Acc>
inline row_value jsd_row(const T* s, const T* r, index_t n, T inv_tau, T beta, T* g, T gscale, T* wa,
                         T* wb) noexcept {
    using V = simd::vec<T>;
    constexpr T ninf = -std::numeric_limits<T>::infinity();
    row_value out;
    T ms{}, mr{};
    if ((out.status = check_row(s, n, ms, false)) != row_status::ok) return out;
    if ((out.status = check_row(r, n, mr, true)) != row_status::ok) return out;
    const V it = simd::splat(inv_tau), va = simd::splat(ms * inv_tau), vb = simd::splat(mr * inv_tau);
    V acc_a{}, acc_b{};
    double za = 0, zb = 0;
    sweep<T>(
        n,
        [&](index_t i, index_t c) {
            acc_a += simd::exp(ld(s, i, c, ninf) * it - va);
            acc_b += simd::exp(ld(r, i, c, ninf) * it - vb);
        },
        [&] {
            za += simd::hsum<T>(acc_a);
            zb += simd::hsum<T>(acc_b);
            acc_a = acc_b = V{};
        });
    // log q = (s / tau - max) - log za: the small log za is subtracted after the max shift, so that
    // large logits (|s| ~ 1e4 in float) keep their precision
    const V la = simd::splat(static_cast<T>(std::log(za)));
    const V lb = simd::splat(static_cast<T>(std::log(zb)));
    const V vbeta = simd::splat(beta), vgamma = simd::splat(T(1) - beta);
    V acc_j{}, acc_k{};
    double jsd = 0, kl_qm = 0;
    sweep<T>(
        n,
        [&](index_t i, index_t c) {
            const V lq = (ld(s, i, c, ninf) * it - va) - la;
            const V lp = (ld(r, i, c, ninf) * it - vb) - lb;
            const V q = simd::exp(lq), p = simd::exp(lp);
            const V lm = simd::log<T>(vbeta * p + vgamma * q);
            const V tp = simd::select<T>(p > T(0), p * (lp - lm), V{});
            const V tq = simd::select<T>(q > T(0), q * (lq - lm), V{});
            acc_j += vbeta * tp + vgamma * tq;
            acc_k += tq;
            if constexpr (Grad) {
                st(wa, i, c, tq);
                st(wb, i, c, q);
            }
        },
        [&] {
            jsd += simd::hsum<T>(acc_j);
            kl_qm += simd::hsum<T>(acc_k);
            acc_j = acc_k = V{};
        });
    out.value = jsd;
    if constexpr (Grad) {
        const V coef = simd::splat(static_cast<T>(static_cast<double>(gscale) * (1.0 - static_cast<double>(beta))));
        const V k = simd::splat(static_cast<T>(kl_qm));
        sweep<T>(n, [&](index_t i, index_t c) {
            put<Acc>(g, i, c, coef * (ld(wa, i, c, T(0)) - ld(wb, i, c, T(0)) * k));
        });
    }
    return out;
}

} // namespace selfreplay::detail
