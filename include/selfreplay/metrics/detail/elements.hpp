#pragma once
//! \file
//! Element walks over strided views of any rank, shared by the metrics accumulators.

#include <array>
#include <utility>
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>

#include "selfreplay/error.hpp"
#include "selfreplay/tensor/strided_view.hpp"

namespace selfreplay::detail {

//! Calls `f(offsets...)` for every element of views sharing `extents`, in row-major order, with
//! each view's element offset (strides may differ between the views).
template <std::size_t R, class F, class... Strides>
void for_each_offset(const std::array<index_t, R>& extents, F&& f, const Strides&... strides) {
    for (index_t e : extents)
        if (e == 0) return;
    std::array<index_t, R> idx{};
    while (true) {
        auto base = [&](const std::array<index_t, R>& s) {
            index_t off = 0;
            for (std::size_t r = 0; r + 1 < R; ++r) off += idx[r] * s[r];
            return off;
        };
        const std::array<index_t, sizeof...(Strides)> bases{base(strides)...};
        const std::array<index_t, sizeof...(Strides)> inner{strides[R - 1]...};
        for (index_t i = 0; i < extents[R - 1]; ++i) {
            [&]<std::size_t... K>(std::index_sequence<K...>) { f((bases[K] + i * inner[K])...); }
            (std::make_index_sequence<sizeof...(Strides)>{});
        }
        std::size_t r = R - 1;
        while (r > 0) {
            --r;
            if (++idx[r] < extents[r]) break;
            idx[r] = 0;
            if (r == 0) return;
        }
        if constexpr (R == 1) return;
    }
}

//! "[i, j, ...]" for an error message, from a row-major flat position in `extents`.
template <std::size_t R>
std::string show_index(const std::array<index_t, R>& extents, index_t flat) {
    std::array<index_t, R> idx{};
    for (std::size_t r = R; r-- > 0;) {
        idx[r] = extents[r] ? flat % extents[r] : 0;
        flat = extents[r] ? flat / extents[r] : 0;
    }
    std::string s = "[";
    for (std::size_t r = 0; r < R; ++r) s += (r ? ", " : "") + std::to_string(idx[r]);
    return s + "]";
}

//! Throws `invalid_argument(where, argument, ...)` naming the element when `v` is NaN or infinite.
template <std::size_t R>
void require_finite_element(double v, const std::array<index_t, R>& extents, index_t flat, std::string_view where,
                            std::string_view argument) {
    if (std::isfinite(v)) return;
    throw invalid_argument(where, argument,
                           std::string("must hold finite values, got ") + (std::isnan(v) ? "NaN" : "inf") + " at " +
                               show_index(extents, flat));
}

} // namespace selfreplay::detail
