#pragma once
//! \file
//! Internal: the driver shared by `kl_divergence` and `generalized_jsd` (student and reference
//! logits, temperature, shift, mask, reductions, gradient with respect to the student).
//! Not part of the public API.

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "selfreplay/losses/common.hpp"
#include "selfreplay/losses/detail/driver.hpp"

namespace selfreplay::detail {

enum class divergence_kind { forward_kl, reverse_kl, jsd };

//! The settings shared by the divergences, copied out of the public option structs.
struct divergence_settings {
    divergence_kind kind = divergence_kind::forward_kl;
    double beta = 0; // jsd only
    double temperature = 1;
    reduction how = reduction::mean_all;
    const position_mask* mask = nullptr;
    bool shift = true;
    index_t sequence_length = 0;
    strided_view<double, 2> per_position{};
    double scale = 1;
    bool accumulate = false;
    int threads = 1;
};

//! [B, T] of rank-2 logits [N, V]: from the mask, the per-position view, or sequence_length;
//! without any of them, N positions of length 1 when shift is off.
inline void positions_of_rows(index_t rows, const divergence_settings& o, std::string_view where, index_t& batch,
                              index_t& length) {
    if (!o.mask->empty())
        length = o.mask->extent(1);
    else if (o.per_position.data() != nullptr)
        length = o.per_position.extent(1);
    else if (o.sequence_length > 0)
        length = o.sequence_length;
    else {
        require(!o.shift, where, "options.sequence_length",
                "is needed with [B*T, V] logits and shift = true (or pass a [B, T] mask, or set shift = false)");
        length = 1;
    }
    require(length > 0 && rows % length == 0, where, "student_logits",
            "has ", rows, " rows, not a multiple of the sequence length ", length);
    batch = rows / length;
}

//! What every row of one divergence call shares.
template <class T>
struct divergence_call {
    divergence_kind kind = divergence_kind::forward_kl;
    isa path = isa::sse2; //!< the ISA path, read once per call (`active_isa()`)
    index_t vocab = 0;    //!< V, the row length
    double inv_tau = 1;   //!< 1 / temperature
    double beta = 0;      //!< jsd's mixing weight
    double gscale = 0;    //!< d value / d (student logit / temperature) per unit of the row's gradient
    bool stream = false;  //!< write full gradient rows with non-temporal stores (larger than the caches)
};

template <bool Grad, bool Acc, class T>
row_value divergence_row(const divergence_call<T>& c, const T* s, const T* r, T* g, bool stream, row_scratch<T>& sc);

//! A float row that the float kernel gave back (`row_status::retry_in_double`: logits beyond about
//! 1e38 in magnitude) evaluated by the double kernel of the same path: the rows widened to
//! double, the gradient narrowed back to float (added into g when Acc). g may alias s.
template <bool Grad, bool Acc>
row_value divergence_row_in_double(const divergence_call<float>& c, const float* s, const float* r, float* g) {
    row_scratch<double>& sc = thread_scratch<double>();
    const index_t V = c.vocab;
    double* sd = at_least(sc.student, V);
    double* rd = at_least(sc.reference, V);
    std::copy(s, s + V, sd);
    std::copy(r, r + V, rd);
    divergence_call<double> cd;
    cd.kind = c.kind;
    cd.path = c.path;
    cd.vocab = V;
    cd.inv_tau = c.inv_tau;
    cd.beta = c.beta;
    cd.gscale = c.gscale;
    double* gd = Grad ? at_least(sc.gradient, V) : nullptr;
    const row_value rv = divergence_row<Grad, false, double>(cd, sd, rd, gd, false, sc);
    if constexpr (Grad)
        if (rv.status == row_status::ok)
            for (index_t v = 0; v < V; ++v) g[v] = (Acc ? g[v] : 0.0f) + static_cast<float>(gd[v]);
    return rv;
}

//! One row of the divergence `c.kind` on the call's ISA path: the value of the contiguous rows s
//! (student) and r (reference), and with Grad their gradient written into g (added when Acc;
//! streamed when `stream`).
template <bool Grad, bool Acc, class T>
row_value divergence_row(const divergence_call<T>& c, const T* s, const T* r, T* g, bool stream, row_scratch<T>& sc) {
    const index_t V = c.vocab;
    const T inv_tau = static_cast<T>(c.inv_tau), gscale = static_cast<T>(c.gscale), beta = static_cast<T>(c.beta);
    T* kept_a = Grad ? at_least(sc.kept_a, V) : nullptr;
    T* kept_b = Grad ? at_least(sc.kept_b, V) : nullptr;
    T* coefs = Grad ? at_least(sc.block_coefs, 2 * block_count(V)) : nullptr;
    const row_value rv = dispatch(c.path, [&](auto tag) -> row_value {
        switch (c.kind) {
        case divergence_kind::forward_kl:
            return kl_forward_row<T, Grad, Acc>(tag, s, r, V, inv_tau, g, gscale, kept_a, kept_b, coefs, stream);
        case divergence_kind::reverse_kl: return kl_reverse_row<T, Grad, Acc>(tag, s, r, V, inv_tau, g, gscale, kept_a, kept_b);
        case divergence_kind::jsd: break;
        }
        return jsd_row<T, Grad, Acc>(tag, s, r, V, inv_tau, beta, g, gscale, kept_a, kept_b);
    });
    if constexpr (std::is_same_v<T, float>)
        if (rv.status == row_status::retry_in_double) return divergence_row_in_double<Grad, Acc>(c, s, r, g);
    return rv;
}

//! The accepted temperatures for logits of type T: 1 / temperature must be a finite normal T
//! (float: [2.94e-39, 8.51e37], double: [5.57e-309, 4.49e307]), so that the scaled logits
//! neither all vanish (1 / temperature rounding to 0) nor become infinite or NaN through an
//! infinite factor. Throws naming `options.temperature` otherwise.
template <class T>
void check_temperature(std::string_view where, double temperature) {
    const double inv = 1.0 / temperature;
    require(inv >= double(std::numeric_limits<T>::min()) && inv <= double(std::numeric_limits<T>::max()), where,
            "options.temperature", "must lie in [1 / ", std::numeric_limits<T>::max(), ", 1 / ",
            std::numeric_limits<T>::min(), "] for ", sizeof(T) == 4 ? "float" : "double",
            " logits (1 / temperature a finite normal number), got ", temperature);
}

//! The accepted mixing weights of the JSD for logits of type T (0 and 1 are the plain KLs and
//! never get here): beta and 1 - beta must stay normal numbers of T, beta in
//! [min(T), 1 - epsilon(T) / 2] (float: [1.18e-38, 0.99999994]), so that neither weight rounds
//! to 0. Throws naming `options.beta` otherwise.
template <class T>
void check_beta(std::string_view where, double beta) {
    const T b = static_cast<T>(beta);
    require(b >= std::numeric_limits<T>::min() && b < T(1), where, "options.beta",
            "must be 0, 1 or lie in [", std::numeric_limits<T>::min(), ", ", std::nextafter(T(1), T(0)),
            "] for ", sizeof(T) == 4 ? "float" : "double", " logits (neither beta nor 1 - beta may round to 0), got ",
            beta);
}

//! The divergence `o.kind` over positions: validates the options and shapes, marks the counted
//! positions, and runs `divergence_row` on each counted row (threads split the rows), gradient
//! scale scale / (denominator * temperature); then the reduction (`finish`).
template <bool Grad, class T>
loss_result divergence_impl(const position_rows<const T>& s, const position_rows<const T>& r,
                            const position_rows<T>& g, const divergence_settings& o, std::string_view where) {
    check_common(where, o.scale, o.threads);
    require(std::isfinite(o.temperature) && o.temperature > 0, where, "options.temperature",
            "must be finite and > 0, got ", o.temperature);
    check_temperature<T>(where, o.temperature);
    if (o.kind == divergence_kind::jsd) check_beta<T>(where, o.beta);
    require_same_rows(r, s, where, "reference_logits", "student_logits");
    if (o.sequence_length > 0)
        require(o.sequence_length == s.length, where, "options.sequence_length",
                "is ", o.sequence_length, " but the logits have T = ", s.length);
    const index_t B = s.batch, L = s.length, V = s.vocab;
    require(V >= 1 || B * L == 0, where, "student_logits", "must have a vocabulary of at least 1 entry, got 0");
    check_positions(where, B, L, *o.mask, o.per_position, o.how);
    std::vector<unsigned char> active(static_cast<std::size_t>(B * L), 0);
    index_t counted = 0;
    for (index_t b = 0; b < B; ++b)
        for (index_t t = 0; t < L; ++t)
            if ((!o.shift || t + 1 < L) && (*o.mask)(b, t)) {
                active[static_cast<std::size_t>(b * L + t)] = 1;
                ++counted;
            }
    const double denom = denominator(o.how, B, L, counted);
    divergence_call<T> call;
    call.kind = o.kind;
    call.path = active_isa();
    call.vocab = V;
    call.inv_tau = 1.0 / o.temperature;
    call.beta = o.beta;
    if constexpr (Grad) gradient_factor<T>(where, o.scale, denom, o.temperature); // finite in T, or an error
    call.gscale = denom > 0 ? o.scale / (denom * o.temperature) : 0.0;
    call.stream = Grad && stream_gradient<T>(g, o.accumulate);
    std::vector<double> values;
    parallel_rows<T>(B * L, o.threads, values, [&](index_t row, row_scratch<T>& sc) -> double {
        const index_t b = row / L, t = row % L;
        const bool on = active[static_cast<std::size_t>(row)] != 0;
        row_value rv;
        if constexpr (Grad) {
            gradient_row(g, b, t, on, o.accumulate, at_least(sc.gradient, V), [&](T* gp, bool acc, bool direct) {
                const T* sp = contiguous_row(s, b, t, at_least(sc.student, V));
                const T* rp = contiguous_row(r, b, t, at_least(sc.reference, V));
                rv = acc ? divergence_row<true, true>(call, sp, rp, gp, false, sc)
                         : divergence_row<true, false>(call, sp, rp, gp, direct && call.stream, sc);
            });
        } else if (on) {
            rv = divergence_row<false, false>(call, contiguous_row(s, b, t, at_least(sc.student, V)),
                                              contiguous_row(r, b, t, at_least(sc.reference, V)), static_cast<T*>(nullptr),
                                              false, sc);
        }
        if (rv.status != row_status::ok)
            throw_row_status(rv.status, where, "student_logits", "reference_logits", b, t);
        return rv.value;
    });
    return finish(values, B, L, counted, denom, o.scale, o.per_position);
}

//! Runs the divergence on any tensors: rank-3 [B, T, V] or rank-2 [B*T, V] logits.
template <bool Grad, class S, class R, class G>
loss_result divergence(const S& student, const R& reference, G* dstudent, const divergence_settings& o,
                       std::string_view where) {
    constexpr std::size_t Rank = logits_rank<S>;
    static_assert(Rank == 2 || Rank == 3,
                  "selfreplay losses: logits must be [B, T, V] (rank 3) or [B*T, V] (rank 2)");
    static_assert(logits_rank<R> == Rank, "selfreplay losses: student and reference logits must have the same rank");
    using T = std::remove_const_t<view_element_t<S, Rank>>;
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "selfreplay losses: logits must hold float or double");
    static_assert(std::is_same_v<std::remove_const_t<view_element_t<R, Rank>>, T>,
                  "selfreplay losses: student and reference logits must have the same element type");
    const strided_view<const T, Rank> sv = selfreplay::view<Rank>(student);
    const strided_view<const T, Rank> rv = selfreplay::view<Rank>(reference);
    index_t batch = 0, length = 0;
    if constexpr (Rank == 2) {
        require_same_extents(rv, sv, where, "reference_logits", "student_logits");
        positions_of_rows(sv.extent(0), o, where, batch, length);
    } else {
        batch = sv.extent(0);
        length = sv.extent(1);
    }
    auto rows = [&](const auto& v, std::string_view arg) {
        if constexpr (Rank == 3)
            return as_rows(v);
        else
            return as_rows(v, batch, length, where, arg);
    };
    const position_rows<const T> s = rows(sv, "student_logits");
    const position_rows<const T> r = rows(rv, "reference_logits");
    if constexpr (Grad) {
        static_assert(logits_rank<G> == Rank && std::is_same_v<view_element_t<G, Rank>, T>,
                      "selfreplay losses: the gradient output must be a writable tensor with the logits' shape "
                      "rank and element type");
        const strided_view<T, Rank> gv = selfreplay::view<Rank>(*dstudent);
        const position_rows<T> g = rows(gv, "dstudent");
        require_same_rows(g, s, where, "dstudent", "student_logits");
        return divergence_impl<true, T>(s, r, g, o, where);
    } else {
        return divergence_impl<false, T>(s, r, position_rows<T>{}, o, where);
    }
}

} // namespace selfreplay::detail
