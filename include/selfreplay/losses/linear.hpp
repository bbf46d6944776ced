#pragma once
//! \file
//! Fused linear losses: next-token cross-entropy, KL (forward / reverse) and the generalized JSD
//! computed from hidden states H [N, D] and an output projection W [V, D] (+ bias) instead of
//! logits, with the gradients with respect to H, W and the bias. The logits H W^T + bias are
//! formed a chunk of positions at a time (a `matmul` backend computes the products), handed to the
//! fused row kernels through `next_token_loss` / `kl_divergence` / `generalized_jsd`, turned into
//! their gradient in place, and pushed through the two gradient products; no [N, V] buffer is
//! ever allocated. See docs/losses.md, "Linear losses".

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>

#include "selfreplay/error.hpp"
#include "selfreplay/losses/common.hpp"
#include "selfreplay/losses/cross_entropy.hpp"
#include "selfreplay/losses/jsd.hpp"
#include "selfreplay/losses/kl.hpp"
#include "selfreplay/losses/matmul.hpp"
#include "selfreplay/tensor/concept.hpp"

namespace selfreplay {

//! A model's output layer on a batch: logits = hidden * weight^T + bias, one row per position.
template <class T>
struct linear_head {
    tensor_ref<const T, 2> hidden{};   //!< H [N, D], row b*L + t = position (b, t); any strides
    tensor_ref<const T, 2> weight{};   //!< W [V, D], finite, with a unit stride in one dimension
    tensor_ref<const T, 1> bias{};     //!< [V], optional (empty: none); -inf masks an entry, NaN / +inf are refused
};

//! Where the linear losses write d value / d H, d value / d W and d value / d bias (overwriting,
//! or adding with the options' `accumulate`). An empty view is not computed; all empty: value only.
template <class T>
struct linear_gradients {
    tensor_ref<T, 2> hidden{};   //!< dH [N, D]; rows of positions that are not counted get 0
    tensor_ref<T, 2> weight{};   //!< dW [V, D], with a unit stride in one dimension
    tensor_ref<T, 1> bias{};     //!< d bias [V]

    //! True when some gradient is asked for.
    bool any() const noexcept { return hidden.data() != nullptr || weight.data() != nullptr || bias.data() != nullptr; }
};

//! How the linear losses chunk the positions.
struct linear_options {
    //! Positions per chunk (each chunk holds a [rows, V] logits buffer per model); 0: the default,
    //! `linear_chunk_rows`.
    index_t chunk_rows = 0;
};

//! The default positions per chunk. Each chunk costs the products one pass over W (packing it)
//! and one read and write of dW whatever its size, so chunks are sized in rows: at 256 rows that
//! pass is small against the chunk's 2 * 256 * V * D flops of each product (docs/performance.md).
inline constexpr index_t linear_chunk_rows = 256;

namespace detail {

//! Rejects a backend that does not model `matmul` with one sentence naming the concept.
template <class M, class T>
constexpr void require_matmul() {
    static_assert(matmul<M, T>, "selfreplay linear losses: the backend does not model selfreplay::matmul (it needs a "
                                "const call operator m(a, b, c, accumulate) on strided_view<const T, 2>, "
                                "strided_view<const T, 2>, strided_view<T, 2>, bool)");
}

//! An uninitialised buffer of n elements (the chunk buffers are always written before read).
template <class X>
std::unique_ptr<X[]> linear_buffer(index_t n) {
    return std::make_unique_for_overwrite<X[]>(static_cast<std::size_t>(std::max<index_t>(n, 1)));
}

inline std::string linear_arg(std::string_view head, std::string_view member) {
    return std::string(head) + "." + std::string(member);
}

inline bool unit_stride_2d(index_t rows, index_t cols, index_t s0, index_t s1) noexcept {
    return cols <= 1 || s1 == 1 || rows <= 1 || s0 == 1;
}

//! Checks a head: H [rows, D] with D >= 1, W [vocab, D] finite with a unit stride, bias [vocab]
//! without NaN or +inf and not all -inf. `vocab` < 0: taken from W (>= 1).
template <class T>
void check_linear_head(std::string_view where, std::string_view name, const linear_head<T>& h, index_t rows,
                       index_t& vocab) {
    const index_t D = h.hidden.extent(1);
    require(h.hidden.extent(0) >= 1, where, linear_arg(name, "hidden"), "has no rows (N = 0): nothing to compute");
    require(h.hidden.extent(0) == rows, where, linear_arg(name, "hidden"), "has ", h.hidden.extent(0),
            " rows but the positions are ", rows);
    require(D >= 1, where, linear_arg(name, "hidden"), "has no columns (D = 0)");
    require(h.weight.extent(1) == D, where, linear_arg(name, "weight"), "has shape [", h.weight.extent(0), ", ",
            h.weight.extent(1), "] but '", linear_arg(name, "hidden"), "' has D = ", D, " columns");
    if (vocab < 0) vocab = h.weight.extent(0);
    require(h.weight.extent(0) >= 1, where, linear_arg(name, "weight"), "has no rows (V = 0)");
    require(h.weight.extent(0) == vocab, where, linear_arg(name, "weight"), "has V = ", h.weight.extent(0),
            " rows but the student's vocabulary is ", vocab);
    require(unit_stride_2d(vocab, D, h.weight.stride(0), h.weight.stride(1)), where, linear_arg(name, "weight"),
            "must have a unit stride in one dimension (row- or column-major), got strides [", h.weight.stride(0), ", ",
            h.weight.stride(1), "]");
    for (index_t v = 0; v < vocab; ++v)
        for (index_t d = 0; d < D; ++d)
            if (!std::isfinite(h.weight(v, d)))
                require(false, where, linear_arg(name, "weight"), "contains ", h.weight(v, d), " at (", v, ", ", d,
                        "): the weights must be finite");
    if (h.bias.data() == nullptr && h.bias.extent(0) == 0) return;
    require(h.bias.extent(0) == vocab, where, linear_arg(name, "bias"), "has ", h.bias.extent(0),
            " entries but the vocabulary is V = ", vocab);
    bool any_finite = false;
    for (index_t v = 0; v < vocab; ++v) {
        const T b = h.bias(v);
        if (std::isnan(b) || b == std::numeric_limits<T>::infinity())
            require(false, where, linear_arg(name, "bias"), "contains ", b, " at ", v,
                    ": only finite entries and -inf (a masked entry) are allowed");
        any_finite = any_finite || std::isfinite(b);
    }
    require(any_finite, where, linear_arg(name, "bias"), "is -inf everywhere: no entry of the vocabulary is possible");
}

template <class T>
void check_linear_gradients(std::string_view where, const linear_gradients<T>& g, index_t rows, index_t D,
                            index_t V) {
    if (g.hidden.data() != nullptr)
        require(g.hidden.extent(0) == rows && g.hidden.extent(1) == D, where, "gradients.hidden", "has shape [",
                g.hidden.extent(0), ", ", g.hidden.extent(1), "] but the student's hidden states are [", rows, ", ", D,
                "]");
    if (g.weight.data() != nullptr) {
        require(g.weight.extent(0) == V && g.weight.extent(1) == D, where, "gradients.weight", "has shape [",
                g.weight.extent(0), ", ", g.weight.extent(1), "] but the student's weight is [", V, ", ", D, "]");
        require(unit_stride_2d(V, D, g.weight.stride(0), g.weight.stride(1)), where, "gradients.weight",
                "must have a unit stride in one dimension (row- or column-major)");
    }
    if (g.bias.data() != nullptr)
        require(g.bias.extent(0) == V, where, "gradients.bias", "has ", g.bias.extent(0),
                " entries but the vocabulary is V = ", V);
}

//! The [B, T] positions and the checks of the loss options shared by the three losses.
struct linear_positions {
    index_t batch = 0, length = 0;
};

inline void check_linear_positions(std::string_view where, const linear_positions& p, const position_mask& mask,
                                   const strided_view<double, 2>& per_position, reduction how, double scale,
                                   int threads) {
    require(std::isfinite(scale), where, "options.scale", "must be finite, got ", scale);
    require(threads >= 1, where, "options.threads", "must be at least 1, got ", threads);
    if (!mask.empty())
        require(mask.extent(0) == p.batch && mask.extent(1) == p.length, where, "options.mask", "has shape [",
                mask.extent(0), ", ", mask.extent(1), "] but the positions are [", p.batch, ", ", p.length, "]");
    if (per_position.data() != nullptr || per_position.size() != 0)
        require(per_position.extent(0) == p.batch && per_position.extent(1) == p.length, where,
                "options.per_position", "has shape [", per_position.extent(0), ", ", per_position.extent(1),
                "] but the positions are [", p.batch, ", ", p.length, "]");
    require(how != reduction::none || per_position.data() != nullptr, where, "options.per_position",
            "must be given (a [B, T] view) with reduction::none");
}

//! [B, T] of N rows for the divergences: T from the mask, the per-position view or
//! `sequence_length`; without any of them, N sequences of length 1 (only with shift = false).
template <class O>
linear_positions divergence_positions(std::string_view where, index_t rows, const O& o) {
    index_t length = 0;
    if (!o.mask.empty())
        length = o.mask.extent(1);
    else if (o.per_position.data() != nullptr)
        length = o.per_position.extent(1);
    else if (o.sequence_length > 0)
        length = o.sequence_length;
    else {
        require(!o.shift, where, "options.sequence_length",
                "is needed with shift = true (or pass a [B, T] mask, or set shift = false)");
        length = 1;
    }
    if (o.sequence_length > 0)
        require(o.sequence_length == length, where, "options.sequence_length", "is ", o.sequence_length,
                " but the mask or per_position gives T = ", length);
    require(length > 0 && rows % length == 0, where, "student.hidden", "has ", rows,
            " rows, not a multiple of the sequence length ", length);
    return {rows / length, length};
}

//! The logits of `n` gathered rows: z [n, V] (leading dimension V) = bias + hc [n, D] * W^T.
template <class T, class M>
void linear_logits(const M& mm, const linear_head<T>& h, const T* hc, const T* bias, index_t n, index_t V, T* z) {
    const index_t D = h.hidden.extent(1);
    if (bias != nullptr)
        for (index_t i = 0; i < n; ++i) std::copy(bias, bias + V, z + i * V);
    mm(make_view(hc, {n, D}), transposed(h.weight), make_view(z, {n, V}), bias != nullptr);
}

//! Copies row `row` of `h` to `out`, refusing NaN and inf.
template <class T>
void gather_hidden_row(std::string_view where, std::string_view name, const strided_view<const T, 2>& h, index_t row,
                       T* out) {
    for (index_t d = 0; d < h.extent(1); ++d) {
        const T x = h(row, d);
        if (!std::isfinite(x))
            require(false, where, linear_arg(name, "hidden"), "contains ", x, " at (", row, ", ", d,
                    "), a counted position: hidden states must be finite");
        out[d] = x;
    }
}

//! A contiguous copy of a head's bias (empty pointer without bias).
template <class T>
std::unique_ptr<T[]> contiguous_bias(const linear_head<T>& h, index_t V) {
    if (h.bias.data() == nullptr) return nullptr;
    auto b = linear_buffer<T>(V);
    for (index_t v = 0; v < V; ++v) b[static_cast<std::size_t>(v)] = h.bias(v);
    return b;
}

//! What one linear loss call needs besides the heads.
struct linear_call {
    std::string_view where;
    reduction how = reduction::mean_all;
    double scale = 1;
    bool accumulate = false;
    linear_positions positions;
    strided_view<double, 2> per_position{};
    index_t chunk_rows = 0;
    index_t spare_rows = 0; //!< extra rows of the student's logits buffer the row loss writes (NTP: 1)
};

//! The chunked driver. `counted(row)` says whether position row = b*L + t counts (and may validate
//! it); `loss(z, zr, rows, n, per, scale, grad)` evaluates the row loss on the student's logits z
//! [n (+ spare), V] and the reference's zr [n, V] of the chunk's positions `rows`, writes the
//! per-position values (before scale) to per[0, n) and, when `grad`, the gradient (times `scale`)
//! into z in place.
template <class T, class M, class Counted, class Loss>
loss_result linear_driver(const M& mm, const linear_call& c, const linear_head<T>& s, const linear_head<T>* r,
                          const linear_gradients<T>& g, Counted&& counted, Loss&& loss) {
    const index_t N = s.hidden.extent(0), D = s.hidden.extent(1), V = s.weight.extent(0);
    const index_t Dr = r != nullptr ? r->hidden.extent(1) : 0;
    index_t count = 0;
    for (index_t row = 0; row < N; ++row) count += counted(row) ? 1 : 0;
    const index_t L = c.positions.length;
    const double denom = c.how == reduction::mean_all       ? static_cast<double>(N)
                         : c.how == reduction::mean_counted ? static_cast<double>(count)
                                                            : 1.0;
    const double row_scale = denom > 0 ? c.scale / denom : 0.0;
    const bool grad = g.any();
    if (c.per_position.data() != nullptr)
        for (index_t b = 0; b < c.positions.batch; ++b)
            for (index_t t = 0; t < L; ++t) c.per_position(b, t) = 0.0;
    if (!c.accumulate) {
        for (index_t i = 0; i < g.hidden.extent(0); ++i)
            for (index_t d = 0; d < g.hidden.extent(1); ++d) g.hidden(i, d) = T(0);
        if (count == 0) {
            for (index_t v = 0; v < g.weight.extent(0); ++v)
                for (index_t d = 0; d < g.weight.extent(1); ++d) g.weight(v, d) = T(0);
            for (index_t v = 0; v < g.bias.extent(0); ++v) g.bias(v) = T(0);
        }
    }
    const index_t chunk = std::max<index_t>(1, std::min(c.chunk_rows > 0 ? c.chunk_rows : linear_chunk_rows, count));
    const auto bias = contiguous_bias(s, V);
    const auto rbias = r != nullptr ? contiguous_bias(*r, V) : nullptr;
    auto z = linear_buffer<T>((chunk + c.spare_rows) * V);
    auto zr = r != nullptr ? linear_buffer<T>(chunk * V) : nullptr;
    auto hc = linear_buffer<T>(chunk * D);
    auto hr = r != nullptr ? linear_buffer<T>(chunk * Dr) : nullptr;
    auto dh = g.hidden.data() != nullptr ? linear_buffer<T>(chunk * D) : nullptr;
    auto rows = linear_buffer<index_t>(chunk);
    auto per = linear_buffer<double>(chunk + c.spare_rows);
    double sum = 0;
    bool first = true;
    index_t cursor = 0;
    while (cursor < N) {
        index_t n = 0;
        for (; cursor < N && n < chunk; ++cursor)
            if (counted(cursor)) rows[static_cast<std::size_t>(n++)] = cursor;
        if (n == 0) break;
        for (index_t i = 0; i < n; ++i) {
            const index_t row = rows[static_cast<std::size_t>(i)];
            gather_hidden_row(c.where, r != nullptr ? "student" : "head", s.hidden, row, hc.get() + i * D);
            if (r != nullptr) gather_hidden_row(c.where, "reference", r->hidden, row, hr.get() + i * Dr);
        }
        linear_logits(mm, s, hc.get(), bias.get(), n, V, z.get());
        if (r != nullptr) linear_logits(mm, *r, hr.get(), rbias.get(), n, V, zr.get());
        try {
            loss(z.get(), static_cast<const T*>(zr.get()), rows.get(), n, per.get(), row_scale, grad);
        } catch (const invalid_argument& e) {
            throw invalid_argument(c.where, r != nullptr ? "student.hidden" : "head.hidden",
                                   std::string("gives logits (hidden * weight^T + bias) the loss refuses in the chunk "
                                               "of positions from row ") +
                                       std::to_string(rows[0]) + " to row " + std::to_string(rows[std::size_t(n - 1)]) +
                                       " (overflow?): " + e.what());
        }
        for (index_t i = 0; i < n; ++i) {
            const double v = per[static_cast<std::size_t>(i)];
            sum += v;
            if (c.per_position.data() != nullptr) {
                const index_t row = rows[static_cast<std::size_t>(i)];
                c.per_position(row / L, row % L) = v;
            }
        }
        if (grad) {
            const strided_view<const T, 2> gz = make_view(static_cast<const T*>(z.get()), {n, V});
            const bool acc = c.accumulate || !first;
            if (g.hidden.data() != nullptr) {
                mm(gz, s.weight, make_view(dh.get(), {n, D}), false);
                for (index_t i = 0; i < n; ++i) {
                    const index_t row = rows[static_cast<std::size_t>(i)];
                    for (index_t d = 0; d < D; ++d) g.hidden(row, d) += dh[static_cast<std::size_t>(i * D + d)];
                }
            }
            if (g.weight.data() != nullptr) mm(transposed(gz), make_view(static_cast<const T*>(hc.get()), {n, D}), g.weight, acc);
            if (g.bias.data() != nullptr) {
                if (!acc)
                    for (index_t v = 0; v < V; ++v) g.bias(v) = T(0);
                T* bp = g.bias.data();
                const index_t bs = g.bias.stride(0);
                for (index_t i = 0; i < n; ++i) {
                    const T* zi = z.get() + i * V;
                    if (bs == 1)
                        for (index_t v = 0; v < V; ++v) bp[v] += zi[v];
                    else
                        for (index_t v = 0; v < V; ++v) bp[v * bs] += zi[v];
                }
            }
        }
        first = false;
    }
    loss_result out;
    out.counted = count;
    out.value = denom > 0 ? c.scale * sum / denom : 0.0;
    return out;
}

//! The KL family on two heads: checks, then the driver with `run_rows(z, zr, n, per, scale, grad)`.
template <class T, class M, class O, class RunRows>
loss_result linear_divergence(std::string_view where, const M& mm, const linear_head<T>& s, const linear_head<T>& r,
                              const linear_gradients<T>& g, const O& o, const linear_options& chunking,
                              RunRows&& run_rows) {
    require_matmul<M, T>();
    require(std::isfinite(o.temperature) && o.temperature > 0, where, "options.temperature",
            "must be finite and > 0, got ", o.temperature);
    require(chunking.chunk_rows >= 0, where, "chunking.chunk_rows", "must be >= 0, got ", chunking.chunk_rows);
    const index_t N = s.hidden.extent(0);
    index_t V = -1;
    check_linear_head(where, "student", s, N, V);
    check_linear_head(where, "reference", r, N, V);
    const linear_positions p = divergence_positions(where, N, o);
    check_linear_positions(where, p, o.mask, o.per_position, o.reduction, o.scale, o.threads);
    check_linear_gradients(where, g, N, s.hidden.extent(1), V);
    const index_t L = p.length;
    const linear_call c{where, o.reduction, o.scale, o.accumulate, p, o.per_position, chunking.chunk_rows, 0};
    return linear_driver<T>(
        mm, c, s, &r, g,
        [&](index_t row) {
            const index_t b = row / L, t = row % L;
            return (!o.shift || t + 1 < L) && o.mask(b, t);
        },
        [&](T* z, const T* zr, const index_t*, index_t n, double* per, double scale, bool grad) {
            run_rows(make_view(static_cast<const T*>(z), {n, V}), make_view(zr, {n, V}), make_view(z, {n, V}),
                     make_view(per, {n, 1}), scale, grad);
        });
}

} // namespace detail

//! Next-token cross-entropy from hidden states: `next_token_loss` of the logits
//! head.hidden * head.weight^T + head.bias (which are never stored whole), with
//! d value / d H, d value / d W and d value / d bias written to `gradients` (those given).
//! Options, positions, reductions, values and errors are those of `next_token_loss` (the
//! options' `accumulate` adds into all three gradients); the results equal the unfused path's
//! within float rounding (the products' summation order differs).
//!
//! \param mm       a `matmul` model for T (`eigen_matmul{}` from selfreplay/adapters/eigen.hpp)
//! \param head     H [B*T, D] (row b*T + t = position (b, t)), W [V, D], optional bias [V]
//! \param tokens   [B, T] token ids (std::int32_t or std::int64_t); targets of counted positions in [0, V)
//! \param gradients where d value / d H, W and bias go (those given; all empty: value only)
//! \param options  those of `next_token_loss`
//! \param chunking positions per chunk (default `linear_chunk_rows`)
//! Throws `invalid_argument` naming the argument for shape mismatches, N = 0 or D = 0, non-finite
//! weights, NaN / +inf in the bias, non-finite hidden states at counted positions, and the
//! errors of `next_token_loss`.
template <class M, class T, tensor K>
loss_result linear_next_token_loss(const M& mm, const linear_head<T>& head, const K& tokens,
                                   const std::type_identity_t<linear_gradients<T>>& gradients = {},
                                   const next_token_options& options = {}, const linear_options& chunking = {}) {
    detail::require_matmul<M, T>();
    constexpr std::string_view where = "linear_next_token_loss";
    const auto tok = selfreplay::view<2>(tokens);
    using E = std::remove_const_t<typename decltype(tok)::element_type>;
    static_assert(std::is_same_v<E, std::int32_t> || std::is_same_v<E, std::int64_t>,
                  "selfreplay::linear_next_token_loss: tokens must hold std::int32_t or std::int64_t ids");
    require(chunking.chunk_rows >= 0, where, "chunking.chunk_rows", "must be >= 0, got ", chunking.chunk_rows);
    const index_t B = tok.extent(0), L = tok.extent(1), N = head.hidden.extent(0);
    require(N == B * L, where, "tokens", "has shape [", B, ", ", L, "] (B*T = ", B * L, " positions) but 'head.hidden' has ",
            N, " rows");
    index_t V = -1;
    detail::check_linear_head(where, "head", head, N, V);
    const detail::linear_positions p{B, L};
    detail::check_linear_positions(where, p, options.mask, options.per_position, options.reduction, options.scale,
                                   options.threads);
    detail::check_linear_gradients(where, gradients, N, head.hidden.extent(1), V);
    auto target = [&](index_t row) -> std::int64_t {
        const index_t b = row / L, t = row % L;
        if (t + 1 >= L || !options.mask(b, t)) return -1;
        const std::int64_t y = tok(b, t + 1);
        if (y == options.ignore_index) return -1;
        require(y >= 0 && y < V, where, "tokens", "holds ", y, " at (", b, ", ", t + 1, "), outside the vocabulary [0, ",
                V, ") and not the ignore_index ", options.ignore_index);
        return y;
    };
    const detail::linear_call c{where, options.reduction, options.scale, options.accumulate, p, options.per_position,
                                chunking.chunk_rows, 1};
    std::unique_ptr<std::int32_t[]> ctok;
    index_t ctok_size = 0;
    return detail::linear_driver<T>(
        mm, c, head, nullptr, gradients, [&](index_t row) { return target(row) >= 0; },
        [&](T* z, const T*, const index_t* rows, index_t n, double* per, double scale, bool grad) {
            // the chunk as one sequence of n + 1 positions: position i predicts token i + 1 = the
            // target of chunk row i; position n (a spare row of z) is the uncounted last one
            if (ctok_size < n + 1) {
                ctok = detail::linear_buffer<std::int32_t>(n + 1);
                ctok_size = n + 1;
            }
            ctok[0] = 0;
            for (index_t i = 0; i < n; ++i) ctok[std::size_t(i + 1)] = static_cast<std::int32_t>(target(rows[i]));
            const auto tv = make_view(static_cast<const std::int32_t*>(ctok.get()), {1, n + 1});
            const auto x = make_view(static_cast<const T*>(z), {1, n + 1, V});
            const next_token_options o{.reduction = reduction::sum,
                                       .ignore_index = -1,
                                       .per_position = make_view(per, {1, n + 1}),
                                       .scale = scale,
                                       .threads = options.threads};
            if (grad)
                next_token_loss(x, tv, make_view(z, {1, n + 1, V}), o);
            else
                next_token_loss(x, tv, o);
        });
}

//! KL divergence from hidden states: `kl_divergence` of the student's logits
//! student.hidden * student.weight^T + student.bias against the reference's (pi's hidden states,
//! weight and bias may differ from theta's, including in D; V and N must match), with the
//! gradients with respect to the student's H, W and bias. Options, positions ([B*T] rows: T from
//! the mask, per_position or `sequence_length`), reductions and errors are those of
//! `kl_divergence`; results equal the unfused path's within float rounding.
//! Throws `invalid_argument` as `linear_next_token_loss` does, naming `student.*` or `reference.*`.
template <class M, class T>
loss_result linear_kl_divergence(const M& mm, const linear_head<T>& student,
                                 const std::type_identity_t<linear_head<T>>& reference,
                                 const std::type_identity_t<linear_gradients<T>>& gradients = {},
                                 const kl_options& options = {}, const linear_options& chunking = {}) {
    return detail::linear_divergence<T>(
        "linear_kl_divergence", mm, student, reference, gradients, options, chunking,
        [&](const auto& zs, const auto& zr, const auto& gz, const auto& per, double scale, bool grad) {
            const kl_options o{.direction = options.direction,
                               .temperature = options.temperature,
                               .reduction = reduction::sum,
                               .shift = false,
                               .per_position = per,
                               .scale = scale,
                               .threads = options.threads};
            if (grad)
                kl_divergence(zs, zr, gz, o);
            else
                kl_divergence(zs, zr, o);
        });
}

//! Generalized JSD (TRL GKD convention) from hidden states: `generalized_jsd` of the student's and
//! the reference's logits formed from their heads, with the gradients with respect to the
//! student's H, W and bias; otherwise as `linear_kl_divergence`.
template <class M, class T>
loss_result linear_generalized_jsd(const M& mm, const linear_head<T>& student,
                                   const std::type_identity_t<linear_head<T>>& reference,
                                   const std::type_identity_t<linear_gradients<T>>& gradients = {},
                                   const jsd_options& options = {}, const linear_options& chunking = {}) {
    constexpr std::string_view where = "linear_generalized_jsd";
    require(options.beta >= 0 && options.beta <= 1, where, "options.beta", "must be in [0, 1], got ", options.beta);
    return detail::linear_divergence<T>(
        where, mm, student, reference, gradients, options, chunking,
        [&](const auto& zs, const auto& zr, const auto& gz, const auto& per, double scale, bool grad) {
            const jsd_options o{.beta = options.beta,
                                .temperature = options.temperature,
                                .reduction = reduction::sum,
                                .shift = false,
                                .per_position = per,
                                .scale = scale,
                                .threads = options.threads};
            if (grad)
                generalized_jsd(zs, zr, gz, o);
            else
                generalized_jsd(zs, zr, o);
        });
}

} // namespace selfreplay
