// Internal, no include guard: the per-row kernels of the losses for one ISA path, included once
// per path by losses/detail/rows.hpp (see detail/simd/simd.hpp, "Adding a kernel"). The entry
// points take the path's `path_tag` first; the helpers are this path's own.

namespace selfreplay::detail::SELFREPLAY_SIMD_NS {

//! g[0, c) = v, or g[0, c) += v when Acc (c <= lanes).
template <bool Acc, class T>
[[gnu::always_inline]] inline void put(T* g, index_t c, simd::vec<T> v) noexcept {
    if constexpr (Acc) v += simd::load_n(g, c, T(0));
    simd::store_n(g, v, c);
}

//! Largest element of x[i0, i1) (NaN entries are skipped; they surface as NaN sums in the kernels).
template <class T>
inline T block_max(const T* x, index_t i0, index_t i1) noexcept {
    constexpr index_t L = simd::lanes<T>;
    constexpr T ninf = -std::numeric_limits<T>::infinity();
    simd::vec<T> m = simd::splat(ninf);
    for (index_t i = i0; i < i1; i += L) m = simd::max_or_second(simd::load_n(x + i, std::min(L, i1 - i), ninf), m);
    return simd::hmax(m);
}

//! Scans one input row: on success `max` is its maximum; else what is wrong with it (NaN or +inf
//! somewhere, or every element -inf).
template <class T>
inline row_status check_row(const T* x, index_t n, T& max, bool second) noexcept {
    using V = simd::vec<T>;
    constexpr index_t L = simd::lanes<T>;
    constexpr T inf = std::numeric_limits<T>::infinity();
    V m = simd::splat(-inf);
    simd::mask<T> finite_or_ninf = simd::mask<T>{} - 1;
    for (index_t i = 0; i < n; i += L) {
        const V v = simd::load_n(x + i, std::min(L, n - i), -inf);
        m = simd::max_or_second(v, m);
        finite_or_ninf &= (simd::mask<T>)(v < inf);
    }
    max = simd::hmax(m);
    if (!simd::all(finite_or_ninf)) return second ? row_status::second_not_finite : row_status::first_not_finite;
    if (max == -inf) return second ? row_status::second_all_neg_inf : row_status::first_all_neg_inf;
    return row_status::ok;
}

//! The block kernels' exponential u^y in its exponent unit u, in two halves so that a loop can
//! software-pipeline it: float u = 2 (`simd::exp2_reduce`, `simd::exp2_finish`), double u = e
//! (the reduction is y itself; std::exp per lane).
[[gnu::always_inline]] inline simd::exp2_reduced unit_exp_reduce(simd::vec<float> y) noexcept {
    return simd::exp2_reduce(y);
}
[[gnu::always_inline]] inline simd::vec<double> unit_exp_reduce(simd::vec<double> y) noexcept { return y; }
[[gnu::always_inline]] inline simd::vec<float> unit_exp_finish(simd::exp2_reduced q) noexcept {
    return simd::exp2_finish(q);
}
[[gnu::always_inline]] inline simd::vec<double> unit_exp_finish(simd::vec<double> y) noexcept { return simd::exp(y); }
//! The first half of `unit_exp_reduce` for a register of T.
template <class T>
using unit_reduced = decltype(unit_exp_reduce(simd::vec<T>{}));

//! Forward KL's exponents clamped at 128 (float: 2^128 = +inf, so that the exponent bits of 2^n do
//! not wrap and one too large an exponent makes its block's sum +inf); double unchanged.
[[gnu::always_inline]] inline simd::vec<float> clamp_exponent(simd::vec<float> y) noexcept {
    return simd::min_or_second(simd::splat(128.0f), y);
}
[[gnu::always_inline]] inline simd::vec<double> clamp_exponent(simd::vec<double> y) noexcept { return y; }

//! Per-block coefficient of the register [i, i + c): coef[block of i], or lane by lane when the
//! register straddles two blocks (only when the gradient row is not register-aligned).
template <class T>
inline simd::vec<T> block_coefficient(const T* coef, index_t i, index_t c) noexcept {
    const index_t k0 = i / block_elems, k1 = (i + c - 1) / block_elems;
    if (k0 == k1) return simd::splat(coef[k0]);
    simd::vec<T> v{};
    for (index_t j = 0; j < c; ++j) v[j] = coef[(i + j) / block_elems];
    return v;
}

//! One register of the block gradient: ca a - cb b (Two) or ca a. Both products are rounded
//! (nothing fuses outside `simd::mul_add`): the result does not depend on the register's
//! alignment, and it is exactly 0 where the two products are equal.
template <bool Two, class V>
[[gnu::always_inline]] inline V block_gradient_lanes(V ca, V a, V cb, V b) noexcept {
    if constexpr (Two)
        return ca * a - cb * b;
    else
        return ca * a;
}

//! The register [i, i + c) of the block gradient with its coefficients taken lane by lane.
template <bool Two, class T>
inline simd::vec<T> block_gradient_at(index_t i, index_t c, const T* ca, const T* a, const T* cb, const T* b) noexcept {
    const simd::vec<T> xa = block_coefficient(ca, i, c), va = simd::load_n(a + i, c, T(0));
    if constexpr (Two)
        return block_gradient_lanes<true>(xa, va, block_coefficient(cb, i, c), simd::load_n(b + i, c, T(0)));
    else
        return block_gradient_lanes<false>(xa, va, simd::vec<T>{}, simd::vec<T>{});
}

//! Writes register [i, i + c) of a gradient: streamed (`nt`, full registers only) or stored
//! (added to g when Acc).
template <bool Acc, class T>
[[gnu::always_inline]] inline void write_gradient_register(T* g, index_t i, index_t c, bool nt, simd::vec<T> v) noexcept {
    if (nt && c == simd::lanes<T>)
        simd::stream(g + i, v);
    else
        put<Acc>(g + i, c, v);
}

//! The gradient pass of the block kernels: g (+)= ca[k] a_i - cb[k] b_i for i in block k of
//! `block_elems` elements (Two = false: g (+)= ca[k] a_i). After a head that aligns g to a
//! register, each block's registers run with its coefficients in registers; the one register
//! that straddles a block boundary (when g is not block-aligned) and the row's tail take
//! `block_coefficient` lane by lane. With `stream` (and not Acc) full registers go out with
//! non-temporal stores at aligned addresses, so that a gradient larger than the caches costs one
//! write of memory and no read-for-ownership.
template <class T, bool Acc, bool Two>
inline void write_block_gradient(T* g, index_t n, bool stream, const T* ca, const T* a, const T* cb, const T* b) noexcept {
    using V = simd::vec<T>;
    constexpr index_t L = simd::lanes<T>;
    const bool nt = stream && !Acc && simd::can_stream;
    const auto misaligned = static_cast<index_t>(reinterpret_cast<std::uintptr_t>(g) % simd::register_bytes);
    index_t i = misaligned == 0 ? 0
                                : std::min(n, (static_cast<index_t>(simd::register_bytes) - misaligned) /
                                                  static_cast<index_t>(sizeof(T)));
    if (i > 0) put<Acc>(g, i, block_gradient_at<Two>(0, i, ca, a, cb, b));
    while (i < n) {
        const index_t k = i / block_elems, i1 = std::min(n, (k + 1) * block_elems);
        const V va = simd::splat(ca[k]), vb = Two ? simd::splat(cb[k]) : V{};
        for (; i + L <= i1; i += L)
            write_gradient_register<Acc>(
                g, i, L, nt, block_gradient_lanes<Two>(va, simd::load(a + i), vb, Two ? simd::load(b + i) : V{}));
        if (i < i1) { // a register straddling into block k + 1, or the row's tail
            const index_t c = std::min(L, n - i);
            write_gradient_register<Acc>(g, i, c, nt, block_gradient_at<Two>(i, c, ca, a, cb, b));
            i += c;
        }
    }
    if (nt) simd::stream_fence();
}

// ---- cross-entropy ---------------------------------------------------------------------------

//! One block of the cross-entropy's online log-sum-exp.
template <class T>
struct ce_block_sums {
    double sum;    //!< sum of u^((x_i - m) / ln u) = e^(x_i - m) over the block
    T next_max;    //!< the maximum of the next block (-inf when there is none)
};

//! The exponentials e^(x_i - m) of block [i0, i1) (float: 2^((x_i - m) log2(e))), stored in
//! exps[i] when Grad, and their sum; in the same loop, the maximum of the next block [i1, j1),
//! j1 = min(n, i1 + block_elems). When this block and the next are full, the loop has whole
//! registers only and is software-pipelined: the reduction of register i + L issues alongside
//! the finish of register i.
template <class T, bool Grad>
inline ce_block_sums<T> ce_block(const T* x, index_t i0, index_t i1, index_t n, T m, T* exps) noexcept {
    using V = simd::vec<T>;
    constexpr index_t L = simd::lanes<T>;
    constexpr T ninf = -std::numeric_limits<T>::infinity();
    const V vm = simd::splat(m == ninf ? T(0) : m), unit = simd::splat(static_cast<T>(exp_unit<T>));
    V acc{}, next = simd::splat(ninf);
    const index_t j1 = std::min(n, i1 + block_elems);
    if (j1 - i0 == 2 * block_elems) {
        unit_reduced<T> q = unit_exp_reduce((simd::load(x + i0) - vm) * unit);
        for (index_t i = i0; i < i1; i += L) {
            const unit_reduced<T> cur = q;
            q = unit_exp_reduce((simd::load(x + (i + L < i1 ? i + L : i)) - vm) * unit); // the last one is unused
            const V e = unit_exp_finish(cur);
            if constexpr (Grad) simd::store(exps + i, e);
            acc += e;
            next = simd::max_or_second(simd::load(x + i + block_elems), next);
        }
    } else {
        for (index_t i = i0; i < i1; i += L) {
            const index_t c = std::min(L, i1 - i);
            if (const index_t j = i + block_elems; j < j1) // block k is full when block k + 1 exists
                next = simd::max_or_second(simd::load_n(x + j, std::min(L, j1 - j), ninf), next);
            const V e = unit_exp_finish(unit_exp_reduce((simd::load_n(x + i, c, ninf) - vm) * unit));
            if constexpr (Grad) simd::store_n(exps + i, e, c);
            acc += e;
        }
    }
    return {simd::hsum(acc), simd::hmax(next)};
}

//! Cross-entropy of one row x[0, n) against target y: logsumexp(x) - x[y].
//! With Grad: g (+)= gscale * (softmax(x) - onehot(y)).
//!
//! One read of x: an online log-sum-exp over blocks of `block_elems` (z = sum_i e^(x_i - m) with m
//! the running maximum; when the maximum rises to m', z *= e^(m - m')), the next block's maximum
//! taken in the loop of this block's exponentials (`ce_block`); the exponentials are kept in
//! `exps` (n elements) and the block maxima in `block_coefs` (block_count(n) elements), which the
//! gradient pass turns into gscale e^(m_k - m) / z: g_i (+)= coef[k] exps_i (streamed when
//! `stream`, see write_block_gradient), then g[y] -= gscale.
template <class T, bool Grad, bool Acc>
inline row_value cross_entropy_row(path_tag, const T* x, index_t n, index_t y, T* g, T gscale, T* exps, T* block_coefs,
                                   bool stream) noexcept {
    constexpr T ninf = -std::numeric_limits<T>::infinity();
    const double target_logit = static_cast<double>(x[y]); // read before g (which may alias x) is written
    T m = ninf;
    double z = 0;
    T next = block_max(x, 0, std::min(n, block_elems));
    for (index_t k = 0, i0 = 0; i0 < n; i0 += block_elems, ++k) {
        const T nm = std::max(m, next);
        if (nm > m && m != ninf) z *= std::exp(static_cast<double>(m) - static_cast<double>(nm));
        m = nm;
        const ce_block_sums<T> b = ce_block<T, Grad>(x, i0, std::min(n, i0 + block_elems), n, m, exps);
        z += b.sum;
        next = b.next_max;
        if constexpr (Grad) block_coefs[k] = m;
    }
    if (bad_input(m, z)) return {0, row_status::first_not_finite};
    if (m == ninf) return {0, row_status::first_all_neg_inf};
    row_value out;
    out.value = static_cast<double>(m) + std::log(z) - target_logit;
    if constexpr (Grad) {
        for (index_t k = 0; k < block_count(n); ++k) // block maxima -> gradient coefficients
            block_coefs[k] = static_cast<T>(
                block_coefs[k] == ninf ? 0.0
                                       : static_cast<double>(gscale) *
                                             std::exp(static_cast<double>(block_coefs[k]) - static_cast<double>(m)) / z);
        write_block_gradient<T, Acc, false>(g, n, stream, block_coefs, exps, nullptr, nullptr);
        g[y] -= gscale; // the one-hot term (after the fence of the streamed pass)
    }
    return out;
}

// ---- forward KL ------------------------------------------------------------------------------

//! The running state of the online forward KL of one row, in exponent units (float: base 2,
//! u = log2(e) / tau per logit; double: base e, u = 1 / tau): a_i = (s_i - ms) u and
//! b_i = (r_i - mr) u are the student's and reference's exponents relative to the shifts.
template <class T>
struct kl_forward_state {
    T ms, mr;              //!< the maxima behind the shifts (student, reference)
    double sa = 0, sb = 0; //!< the shifts ms u and mr u (0 while a maximum is -inf)
    double za = 0;         //!< sum_i u^a_i
    double zb = 0;         //!< sum_i u^b_i
    double sum = 0;        //!< sum_i u^b_i (b_i - a_i)
};

//! A shift: m u in double (0 for m = -inf).
template <class T>
inline double kl_shift(T m, T u) noexcept {
    return m == -std::numeric_limits<T>::infinity() ? 0.0 : static_cast<double>(m) * static_cast<double>(u);
}

//! Moves the sums to the shifts of the current maxima st.ms, st.mr: with f = u^(sb - sb') and
//! a' = a - (sa' - sa), b' = b - (sb' - sb): zb' = f zb, za' = u^(sa - sa') za and
//! sum' = f (sum + zb ((sb - sb') - (sa - sa'))).
template <class T>
inline void kl_rebase(kl_forward_state<T>& st, T u) noexcept {
    const double nsa = kl_shift(st.ms, u), nsb = kl_shift(st.mr, u);
    if (st.zb > 0 && (nsa != st.sa || nsb != st.sb)) {
        const double f = unit_pow<T>(st.sb - nsb);
        st.sum = f * (st.sum + st.zb * ((st.sb - nsb) - (st.sa - nsa)));
        st.zb *= f;
    }
    if (st.za > 0 && nsa != st.sa) st.za *= unit_pow<T>(st.sa - nsa);
    st.sa = nsa;
    st.sb = nsb;
}

//! Raises the maxima behind the shifts to those of block [i0, i1) and rebases the sums.
template <class T>
inline void kl_take_block_maxima(kl_forward_state<T>& st, const T* s, const T* r, index_t i0, index_t i1, T u) noexcept {
    st.ms = std::max(st.ms, block_max(s, i0, i1));
    st.mr = std::max(st.mr, block_max(r, i0, i1));
    kl_rebase(st, u);
}

//! One register's exponents, reduced for their exponentials: u^a, u^b in the making, and
//! d = b - a (the lowest finite value where b = -inf, whose product with u^b = 0 is 0; +inf where
//! a = -inf and b is finite).
template <class T>
struct kl_lanes {
    unit_reduced<T> a, b;
    simd::vec<T> d;
};

//! The first half of a register: a = (s - ms) u and b = (r - mr) u (the difference first: exact
//! near the maximum, and no overflow of s u at |s| up to the largest float), clamped, reduced.
template <class T>
[[gnu::always_inline]] inline kl_lanes<T> kl_front(simd::vec<T> xs, simd::vec<T> xr, simd::vec<T> ms, simd::vec<T> mr,
                                                   simd::vec<T> u) noexcept {
    const simd::vec<T> a = (xs - ms) * u, b = (xr - mr) * u;
    return {unit_exp_reduce(clamp_exponent(a)), unit_exp_reduce(clamp_exponent(b)),
            simd::max_or_second(b - a, simd::splat(std::numeric_limits<T>::lowest()))};
}

//! The accumulators of one block: sum u^a, sum u^b, sum u^b (b - a).
template <class T>
struct kl_accumulators {
    simd::vec<T> a{}, b{}, s{};
};

//! The second half of register [i, i + c): the exponentials, accumulated (and kept in wa, wb for
//! the gradient when Grad).
template <class T, bool Grad>
[[gnu::always_inline]] inline void kl_back(const kl_lanes<T>& q, kl_accumulators<T>& acc, T* wa, T* wb, index_t c) noexcept {
    const simd::vec<T> ea = unit_exp_finish(q.a), eb = unit_exp_finish(q.b);
    acc.a += ea;
    acc.b += eb;
    acc.s += eb * q.d;
    if constexpr (Grad) {
        simd::store_n(wa, ea, c);
        simd::store_n(wb, eb, c);
    }
}

//! The sums of one block with the shifts as they are (`kl_accumulators` reduced to double).
struct kl_block_sums {
    double a, b, s;
};

//! Block [i0, i1) of the forward KL with the current shifts: u^a, u^b and u^b (b - a), summed
//! (and kept in wa, wb when Grad). A full block has whole registers only and is
//! software-pipelined: the front of register i + L issues alongside the back of register i.
template <class T, bool Grad>
inline kl_block_sums kl_block(const kl_forward_state<T>& st, const T* s, const T* r, index_t i0, index_t i1, T u, T* wa,
                              T* wb) noexcept {
    using V = simd::vec<T>;
    constexpr index_t L = simd::lanes<T>;
    constexpr T ninf = -std::numeric_limits<T>::infinity();
    const V vs = simd::splat(st.ms == ninf ? T(0) : st.ms), vr = simd::splat(st.mr == ninf ? T(0) : st.mr);
    const V vu = simd::splat(u);
    kl_accumulators<T> acc;
    if (i1 - i0 == block_elems) {
        kl_lanes<T> q = kl_front<T>(simd::load(s + i0), simd::load(r + i0), vs, vr, vu);
        for (index_t i = i0; i < i1; i += L) {
            const kl_lanes<T> cur = q;
            const index_t j = i + L < i1 ? i + L : i; // the last register's "next" is itself (unused)
            q = kl_front<T>(simd::load(s + j), simd::load(r + j), vs, vr, vu);
            kl_back<T, Grad>(cur, acc, Grad ? wa + i : nullptr, Grad ? wb + i : nullptr, L); // no offset on null (value only)
        }
    } else {
        for (index_t i = i0; i < i1; i += L) {
            const index_t c = std::min(L, i1 - i);
            kl_back<T, Grad>(kl_front<T>(simd::load_n(s + i, c, ninf), simd::load_n(r + i, c, ninf), vs, vr, vu), acc,
                             Grad ? wa + i : nullptr, Grad ? wb + i : nullptr, c);
        }
    }
    return {simd::hsum(acc.a), simd::hsum(acc.b), simd::hsum(acc.s)};
}

//! Forward KL(p || q) for one row, p = softmax(r / tau) (reference), q = softmax(s / tau)
//! (student): sum_v p_v (log p_v - log q_v) = sum / (u zb) + log za - log zb in the terms of
//! `kl_forward_state`, +inf where the student has -inf and the reference does not.
//! With Grad: g (+)= gscale * (q - p) (gscale includes 1 / tau), from the exponentials kept in
//! `wa`, `wb` (n elements each) and the coefficients gscale u^(shift_k - final shift) / z of each
//! block k in `block_coefs` (2 block_count(n) elements); streamed when `stream`.
//!
//! One read of s and r from memory: online log-sum-exps over blocks of `block_elems` with an
//! optimistic shift. A block is computed with the shifts as they are (the maxima of the blocks
//! whose maxima were taken so far: block 0's, or a later one's), without a scan for its own
//! maxima. Only when the block's sum of student or reference exponentials reaches 2^32 (some
//! exponent at least 22 units above its shift: 15 nats at tau = 1), or a shift is still unset
//! (its maximum -inf), are the block's maxima taken (from L1), the shifts raised, the sums
//! rebased and the block computed again. Hence every kept exponential is below 2^32 and
//! za, zb >= 1 (the element that set a shift gives 1).
//!
//! Float rows whose logits are so large (beyond about 1e38 in magnitude) that an exponent
//! difference overflows float give `row_status::retry_in_double`, before any gradient is written:
//! the caller evaluates the row in double.
template <class T, bool Grad, bool Acc>
inline row_value kl_forward_row(path_tag, const T* s, const T* r, index_t n, T inv_tau, T* g, T gscale, T* wa, T* wb,
                                T* block_coefs, bool stream) noexcept {
    constexpr T ninf = -std::numeric_limits<T>::infinity();
    constexpr double redo_sum = 4294967296.0; // 2^32: a block sum this large is computed again
    const T u = static_cast<T>(static_cast<double>(inv_tau) * exp_unit<T>);
    const index_t nb = block_count(n), first_end = std::min(n, block_elems);
    kl_forward_state<T> st{block_max(s, 0, first_end), block_max(r, 0, first_end)};
    st.sa = kl_shift(st.ms, u);
    st.sb = kl_shift(st.mr, u);
    for (index_t k = 0, i0 = 0; i0 < n; i0 += block_elems, ++k) {
        const index_t i1 = std::min(n, i0 + block_elems);
        bool maxima_taken = k == 0;
        if (!maxima_taken && (st.ms == ninf || st.mr == ninf)) { // no shift yet: this block's maxima first
            kl_take_block_maxima(st, s, r, i0, i1, u);
            maxima_taken = true;
        }
        kl_block_sums b = kl_block<T, Grad>(st, s, r, i0, i1, u, wa, wb);
        if (!maxima_taken && !(b.a < redo_sum && b.b < redo_sum)) { // (NaN too: computed again once)
            kl_take_block_maxima(st, s, r, i0, i1, u);
            b = kl_block<T, Grad>(st, s, r, i0, i1, u, wa, wb);
        }
        st.za += b.a;
        st.zb += b.b;
        st.sum += b.s;
        if constexpr (Grad) { // the maxima behind this block's shifts
            block_coefs[k] = st.ms;
            block_coefs[nb + k] = st.mr;
        }
    }
    if (bad_input(st.ms, st.za)) return {0, row_status::first_not_finite};
    if (bad_input(st.mr, st.zb)) return {0, row_status::second_not_finite};
    if (st.ms == ninf) return {0, row_status::first_all_neg_inf};
    if (st.mr == ninf) return {0, row_status::second_all_neg_inf};
    if constexpr (std::is_same_v<T, float>)
        if (!std::isfinite(st.sum)) return {0, row_status::retry_in_double};
    row_value out;
    // a NaN sum comes from 0 * +inf: a = -inf where b is finite but u^b underflowed to 0; p > 0 there
    // while q = 0, so the divergence is +inf (as where u^b > 0, whose product is +inf)
    out.value = std::isnan(st.sum) ? std::numeric_limits<double>::infinity()
                                   : st.sum / (exp_unit<T> * st.zb) + std::log(st.za) - std::log(st.zb);
    if constexpr (Grad) {
        for (index_t k = 0; k < nb; ++k) { // block maxima -> gradient coefficients
            const T mk = block_coefs[k], rk = block_coefs[nb + k];
            block_coefs[k] =
                static_cast<T>(mk == ninf ? 0.0 : static_cast<double>(gscale) * unit_pow<T>(kl_shift(mk, u) - st.sa) / st.za);
            block_coefs[nb + k] =
                static_cast<T>(rk == ninf ? 0.0 : static_cast<double>(gscale) * unit_pow<T>(kl_shift(rk, u) - st.sb) / st.zb);
        }
        write_block_gradient<T, Acc, true>(g, n, stream, block_coefs, wa, block_coefs + nb, wb);
    }
    return out;
}

// ---- reverse KL ------------------------------------------------------------------------------

//! Reverse KL(q || p) for one row (q student, p reference, as above):
//! sum_v q_v (log q_v - log p_v) = sum / za + log zb - log za with a_i = (s_i - ms) / tau,
//! b_i = (r_i - mr) / tau (ms, mr the rows' maxima), za = sum e^a, zb = sum e^b,
//! sum = sum e^a (a - b). With Grad: g (+)= gscale * q * (log q - log p - KL), from e^a kept in `wa`
//! and a - b in `wb` (n elements each). Two reads of each row: the check and maximum scan, then
//! the sums; sums are flushed to double every `flush_every` registers. Float rows whose exponent
//! difference overflows give `row_status::retry_in_double` before any gradient is written.
template <class T, bool Grad, bool Acc>
inline row_value kl_reverse_row(path_tag, const T* s, const T* r, index_t n, T inv_tau, T* g, T gscale, T* wa,
                                T* wb) noexcept {
    using V = simd::vec<T>;
    constexpr index_t L = simd::lanes<T>;
    constexpr T ninf = -std::numeric_limits<T>::infinity();
    row_value out;
    T ms{}, mr{};
    if ((out.status = check_row(s, n, ms, false)) != row_status::ok) return out;
    if ((out.status = check_row(r, n, mr, true)) != row_status::ok) return out;
    const V it = simd::splat(inv_tau), vs = simd::splat(ms), vr = simd::splat(mr);
    double za = 0, zb = 0, sum = 0;
    for (index_t c0 = 0; c0 < n; c0 += flush_every * L) {
        const index_t c1 = std::min(n, c0 + flush_every * L);
        V acc_a{}, acc_b{}, acc_s{};
        for (index_t i = c0; i < c1; i += L) {
            const index_t c = std::min(L, c1 - i);
            const V a = (simd::load_n(s + i, c, ninf) - vs) * it;
            const V b = (simd::load_n(r + i, c, ninf) - vr) * it;
            const V ea = simd::exp(a), eb = simd::exp(b), d = a - b;
            acc_a += ea;
            acc_b += eb;
            acc_s += simd::select(ea > T(0), ea * d, V{});
            if constexpr (Grad) {
                simd::store_n(wa + i, ea, c);
                simd::store_n(wb + i, d, c);
            }
        }
        za += simd::hsum(acc_a);
        zb += simd::hsum(acc_b);
        sum += simd::hsum(acc_s);
    }
    const double log_ratio = std::log(zb) - std::log(za); // log q - log p = d + log_ratio
    out.value = sum / za + log_ratio;
    if constexpr (std::is_same_v<T, float>)
        if (!std::isfinite(out.value)) return {0, row_status::retry_in_double};
    if constexpr (Grad) {
        const V ca = simd::splat(static_cast<T>(static_cast<double>(gscale) / za));
        const V shift = simd::splat(static_cast<T>(log_ratio - out.value));
        for (index_t i = 0; i < n; i += L) {
            const index_t c = std::min(L, n - i);
            const V ea = simd::load_n(wa + i, c, T(0));
            const V t = ca * ea * (simd::load_n(wb + i, c, T(0)) + shift);
            put<Acc>(g + i, c, simd::select(ea > T(0), t, V{}));
        }
    }
    return out;
}

// ---- generalized JSD -------------------------------------------------------------------------

//! Generalized Jensen-Shannon divergence for one row, 0 < beta < 1 (TRL GKD convention):
//! beta * KL(p || m) + (1 - beta) * KL(q || m), m = beta * p + (1 - beta) * q.
//! With Grad: g (+)= gscale * (1 - beta) * q * (log(q / m) - KL(q || m)), from
//! q (log q - log m) kept in `wa` and q in `wb` (n elements each).
//! Three reads of each row: the check and maximum scan; the normalisers za = sum e^a, zb = sum e^b
//! (a = (s - ms) / tau, b = (r - mr) / tau); then log q = a - log za, log p = b - log zb (the small
//! log z subtracted after the shift, so that large logits keep their precision) and the terms.
template <class T, bool Grad, bool Acc>
inline row_value jsd_row(path_tag, const T* s, const T* r, index_t n, T inv_tau, T beta, T* g, T gscale, T* wa,
                         T* wb) noexcept {
    using V = simd::vec<T>;
    constexpr index_t L = simd::lanes<T>;
    constexpr T ninf = -std::numeric_limits<T>::infinity();
    row_value out;
    T ms{}, mr{};
    if ((out.status = check_row(s, n, ms, false)) != row_status::ok) return out;
    if ((out.status = check_row(r, n, mr, true)) != row_status::ok) return out;
    const V it = simd::splat(inv_tau), vs = simd::splat(ms), vr = simd::splat(mr);
    double za = 0, zb = 0;
    for (index_t c0 = 0; c0 < n; c0 += flush_every * L) {
        const index_t c1 = std::min(n, c0 + flush_every * L);
        V acc_a{}, acc_b{};
        for (index_t i = c0; i < c1; i += L) {
            const index_t c = std::min(L, c1 - i);
            acc_a += simd::exp((simd::load_n(s + i, c, ninf) - vs) * it);
            acc_b += simd::exp((simd::load_n(r + i, c, ninf) - vr) * it);
        }
        za += simd::hsum(acc_a);
        zb += simd::hsum(acc_b);
    }
    const V la = simd::splat(static_cast<T>(std::log(za))), lb = simd::splat(static_cast<T>(std::log(zb)));
    const V vbeta = simd::splat(beta), vgamma = simd::splat(T(1) - beta);
    double jsd = 0, kl_qm = 0;
    for (index_t c0 = 0; c0 < n; c0 += flush_every * L) {
        const index_t c1 = std::min(n, c0 + flush_every * L);
        V acc_j{}, acc_k{};
        for (index_t i = c0; i < c1; i += L) {
            const index_t c = std::min(L, c1 - i);
            const V lq = (simd::load_n(s + i, c, ninf) - vs) * it - la;
            const V lp = (simd::load_n(r + i, c, ninf) - vr) * it - lb;
            const V q = simd::exp(lq), p = simd::exp(lp);
            const V mix = vbeta * p + vgamma * q;
            V lm = simd::log(mix);
            if (!simd::all(mix >= std::numeric_limits<T>::min())) [[unlikely]] {
                // m is subnormal or 0 although p or q is not (both tiny): log m in log space,
                // hi + log(w_hi + w_lo exp(lo - hi)) with hi = max(lp, lq) and its weight w_hi
                const auto up = lp >= lq;
                const V hi = simd::select(up, lp, lq), lo = simd::select(up, lq, lp);
                const V whi = simd::select(up, vbeta, vgamma), wlo = simd::select(up, vgamma, vbeta);
                const V d = simd::select(hi > ninf, lo - hi, simd::splat(ninf));
                lm = simd::select(mix >= std::numeric_limits<T>::min(), lm, hi + simd::log(whi + wlo * simd::exp(d)));
            }
            const V tp = simd::select(p > T(0), p * (lp - lm), V{});
            const V tq = simd::select(q > T(0), q * (lq - lm), V{});
            acc_j += vbeta * tp + vgamma * tq;
            acc_k += tq;
            if constexpr (Grad) {
                simd::store_n(wa + i, tq, c);
                simd::store_n(wb + i, q, c);
            }
        }
        jsd += simd::hsum(acc_j);
        kl_qm += simd::hsum(acc_k);
    }
    out.value = jsd;
    if constexpr (Grad) {
        const V coef = simd::splat(static_cast<T>(static_cast<double>(gscale) * (1.0 - static_cast<double>(beta))));
        const V k = simd::splat(static_cast<T>(kl_qm));
        for (index_t i = 0; i < n; i += L) {
            const index_t c = std::min(L, n - i);
            put<Acc>(g + i, c, coef * (simd::load_n(wa + i, c, T(0)) - simd::load_n(wb + i, c, T(0)) * k));
        }
    }
    return out;
}

} // namespace selfreplay::detail::SELFREPLAY_SIMD_NS
