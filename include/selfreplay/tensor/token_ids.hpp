#pragma once
//! \file
//! Token ids come as `std::int32_t` or `std::int64_t` (PyTorch's and libtorch's `long`): the
//! `token_id` concept, and two read-only views that hold either without a copy:
//! `token_span` (one row, e.g. a sampling history) and `const_token_batch_view` ([rows, L]).

#include <cstddef>
#include <cstdint>
#include <limits>
#include <ranges>
#include <span>
#include <type_traits>

#include "selfreplay/tensor/concept.hpp"
#include "selfreplay/tensor/strided_view.hpp"

namespace selfreplay {

//! The element types selfreplay accepts for token ids: `std::int32_t` and `std::int64_t`.
template <class I>
concept token_id = std::is_same_v<I, std::int32_t> || std::is_same_v<I, std::int64_t>;

//! A read-only contiguous row of token ids, `std::int32_t` or `std::int64_t`, aliasing the
//! caller's memory (which must outlive it). Element access widens to `std::int64_t`.
class token_span {
public:
    //! An empty row.
    constexpr token_span() = default;
    //! Views a span of int32 ids.
    constexpr token_span(std::span<const std::int32_t> ids) noexcept // NOLINT(google-explicit-constructor)
        : data_(ids.data()), size_(ids.size()), wide_(false) {}
    //! Views a span of int64 ids.
    constexpr token_span(std::span<const std::int64_t> ids) noexcept // NOLINT(google-explicit-constructor)
        : data_(ids.data()), size_(ids.size()), wide_(true) {}
    //! Views any contiguous range of int32 or int64 ids (a `std::vector`, an array).
    template <class R>
        requires(std::ranges::contiguous_range<const R> && std::ranges::sized_range<const R> &&
                 token_id<std::remove_cv_t<std::ranges::range_value_t<const R>>> &&
                 !std::is_same_v<std::remove_cvref_t<R>, token_span>)
    constexpr token_span(const R& ids) noexcept // NOLINT(google-explicit-constructor)
        : token_span(std::span<const std::remove_cv_t<std::ranges::range_value_t<const R>>>(std::ranges::data(ids),
                                                                                            std::ranges::size(ids))) {}

    constexpr std::size_t size() const noexcept { return size_; }  //!< number of ids
    constexpr bool empty() const noexcept { return size_ == 0; }   //!< true when it holds no id
    constexpr bool is_int64() const noexcept { return wide_; }     //!< true for int64 ids
    //! Id i (0 <= i < size()), widened to int64.
    constexpr std::int64_t operator[](std::size_t i) const noexcept {
        return wide_ ? static_cast<const std::int64_t*>(data_)[i] : static_cast<const std::int32_t*>(data_)[i];
    }
    //! `f(std::span<const std::int32_t>)` or `f(std::span<const std::int64_t>)`, whichever it holds.
    template <class F>
    constexpr decltype(auto) visit(F&& f) const {
        if (wide_) return f(std::span<const std::int64_t>(static_cast<const std::int64_t*>(data_), size_));
        return f(std::span<const std::int32_t>(static_cast<const std::int32_t*>(data_), size_));
    }

private:
    const void* data_ = nullptr;
    std::size_t size_ = 0;
    bool wide_ = false;
};

//! A read-only [rows, L] batch of token ids, `std::int32_t` or `std::int64_t`, aliasing the
//! caller's memory (which must outlive it): what `objective_inputs` holds. Converts implicitly
//! from any rank-2 tensor of either id type (const or not).
class const_token_batch_view {
public:
    //! An empty batch (no data).
    constexpr const_token_batch_view() = default;
    //! Views a rank-2 tensor of int32 or int64 ids (a `strided_view`, an Eigen matrix, an
    //! xtensor, ...; for a dynamic-rank tensor, throws `invalid_argument` unless it has rank 2).
    template <class X>
        requires(viewable_as<X, const std::int32_t, 2> || viewable_as<X, const std::int64_t, 2>)
    constexpr const_token_batch_view(X&& ids) // NOLINT(google-explicit-constructor)
    {
        const auto v = view<2>(ids);
        if constexpr (std::is_same_v<std::remove_const_t<typename decltype(v)::element_type>, std::int64_t>) {
            wide_ = v;
            is_wide_ = true;
        } else {
            narrow_ = v;
        }
    }

    //! Extent of dimension r (0: rows, 1: L).
    constexpr index_t extent(std::size_t r) const noexcept { return is_wide_ ? wide_.extent(r) : narrow_.extent(r); }
    //! The first id's address (null for an empty batch).
    constexpr const void* data() const noexcept {
        return is_wide_ ? static_cast<const void*>(wide_.data()) : static_cast<const void*>(narrow_.data());
    }
    constexpr bool is_int64() const noexcept { return is_wide_; } //!< true for int64 ids
    //! `f(strided_view<const std::int32_t, 2>)` or `f(strided_view<const std::int64_t, 2>)`.
    template <class F>
    constexpr decltype(auto) visit(F&& f) const {
        if (is_wide_) return f(wide_);
        return f(narrow_);
    }

private:
    strided_view<const std::int32_t, 2> narrow_{};
    strided_view<const std::int64_t, 2> wide_{};
    bool is_wide_ = false;
};

namespace detail {
//! True when id `v` fits in int32 (stores and samplers keep int32 ids).
template <class I>
constexpr bool fits_int32(I v) noexcept {
    if constexpr (sizeof(I) <= sizeof(std::int32_t))
        return true;
    else
        return v >= std::numeric_limits<std::int32_t>::min() && v <= std::numeric_limits<std::int32_t>::max();
}
} // namespace detail

} // namespace selfreplay
