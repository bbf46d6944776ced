#pragma once
//! \file
//! `strided_view<T, Rank>`: the non-owning, strided window onto foreign memory that every
//! selfreplay algorithm works on (in the spirit of `std::mdspan` with `layout_stride`).

#include <array>
#include <cstddef>
#include <string>
#include <type_traits>

#include "selfreplay/error.hpp"

namespace selfreplay {

//! Index and extent type of views: signed, as strides may be negative in foreign layouts.
using index_t = std::ptrdiff_t;

//! A non-owning view of `Rank`-dimensional data: element (i0, ..., iR-1) lives at
//! `data() + sum_r i_r * stride(r)`; strides count elements, not bytes. `T` may be const.
//! Copying a view copies the pointer, never the elements: writes go to the source.
template <class T, std::size_t Rank>
class strided_view {
    static_assert(Rank >= 1, "selfreplay::strided_view: Rank must be at least 1");

public:
    using element_type = T;                        //!< as stored, possibly const
    using value_type = std::remove_cv_t<T>;        //!< element without cv-qualifiers
    using extents_type = std::array<index_t, Rank>; //!< extents or strides, one per dimension

    //! An empty view (all extents 0).
    constexpr strided_view() = default;

    //! A view of `data` with the given extents, packed in row-major (C) order.
    constexpr strided_view(T* data, const extents_type& extents)
        : data_(data), extents_(extents), strides_(row_major_strides(extents)) {
        check_extents(extents);
    }

    //! A view of `data` with the given extents and strides (in elements).
    constexpr strided_view(T* data, const extents_type& extents, const extents_type& strides)
        : data_(data), extents_(extents), strides_(strides) {
        check_extents(extents);
    }

    //! A view of const elements converts implicitly from a view of mutable ones.
    template <class U>
        requires(std::is_same_v<const U, T> && !std::is_same_v<U, T>)
    constexpr strided_view(const strided_view<U, Rank>& other) // NOLINT(google-explicit-constructor)
        : data_(other.data()), extents_(other.extents()), strides_(other.strides()) {}

    //! Number of dimensions.
    static constexpr std::size_t rank() noexcept { return Rank; }

    constexpr T* data() const noexcept { return data_; }                        //!< first element
    constexpr const extents_type& extents() const noexcept { return extents_; } //!< all extents
    constexpr const extents_type& strides() const noexcept { return strides_; } //!< all strides
    constexpr index_t extent(std::size_t r) const noexcept { return extents_[r]; } //!< extent of dim r
    constexpr index_t stride(std::size_t r) const noexcept { return strides_[r]; } //!< stride of dim r

    //! Number of elements (product of the extents).
    constexpr index_t size() const noexcept {
        index_t n = 1;
        for (index_t e : extents_) n *= e;
        return n;
    }
    //! True when some extent is 0.
    constexpr bool empty() const noexcept { return size() == 0; }

    //! True when the elements are packed in row-major order with no gaps.
    constexpr bool is_contiguous() const noexcept {
        index_t expected = 1;
        for (std::size_t r = Rank; r-- > 0;) {
            if (extents_[r] > 1 && strides_[r] != expected) return false;
            expected *= extents_[r];
        }
        return true;
    }

    //! Element access; unchecked, like `operator[]` of the standard containers.
    template <class... I>
        requires(sizeof...(I) == Rank && (std::is_integral_v<I> && ...))
    constexpr T& operator()(I... i) const noexcept {
        const std::array<index_t, Rank> idx{static_cast<index_t>(i)...};
        index_t off = 0;
        for (std::size_t r = 0; r < Rank; ++r) off += idx[r] * strides_[r];
        return data_[off];
    }

    //! The (Rank-1)-dimensional slice at index `i` of the first dimension.
    constexpr strided_view<T, Rank - 1> operator[](index_t i) const noexcept
        requires(Rank > 1)
    {
        std::array<index_t, Rank - 1> e{}, s{};
        for (std::size_t r = 1; r < Rank; ++r) {
            e[r - 1] = extents_[r];
            s[r - 1] = strides_[r];
        }
        return {data_ + i * strides_[0], e, s};
    }

private:
    static constexpr extents_type row_major_strides(const extents_type& e) noexcept {
        extents_type s{};
        index_t acc = 1;
        for (std::size_t r = Rank; r-- > 0;) {
            s[r] = acc;
            acc *= e[r];
        }
        return s;
    }
    static constexpr void check_extents(const extents_type& e) {
        for (std::size_t r = 0; r < Rank; ++r)
            require(e[r] >= 0, "strided_view", "extents",
                    "must be non-negative, got ", e[r], " in dimension ", r);
    }

    T* data_ = nullptr;
    extents_type extents_{};
    extents_type strides_{};
};

//! Merges the first two dimensions of `v` (e.g. logits [B, T, V] -> [B*T, V]) without copying.
//! Throws `invalid_argument` when the layout does not allow it
//! (`stride(0) != extent(1) * stride(1)`).
template <class T, std::size_t Rank>
    requires(Rank >= 2)
constexpr strided_view<T, Rank - 1> merge_leading(const strided_view<T, Rank>& v, std::string_view where = "merge_leading",
                                                  std::string_view argument = "view") {
    require(v.extent(0) <= 1 || v.extent(1) == 0 || v.stride(0) == v.extent(1) * v.stride(1), where, argument,
            "cannot merge its first two dimensions: stride(0) must equal extent(1) * stride(1)");
    std::array<index_t, Rank - 1> e{}, s{};
    e[0] = v.extent(0) * v.extent(1);
    s[0] = v.stride(1);
    for (std::size_t r = 2; r < Rank; ++r) {
        e[r - 1] = v.extent(r);
        s[r - 1] = v.stride(r);
    }
    return {v.data(), e, s};
}

//! Throws `invalid_argument` naming `argument` unless `a` and `b` have the same extents.
template <class A, class B, std::size_t Rank>
void require_same_extents(const strided_view<A, Rank>& a, const strided_view<B, Rank>& b, std::string_view where,
                          std::string_view argument, std::string_view other) {
    if (a.extents() == b.extents()) return;
    auto show = [](const auto& v) {
        std::string s = "[";
        for (std::size_t r = 0; r < Rank; ++r) s += (r ? ", " : "") + std::to_string(v.extent(r));
        return s + "]";
    };
    throw invalid_argument(where, argument,
                           "has shape " + show(a) + " but '" + std::string(other) + "' has shape " + show(b));
}

} // namespace selfreplay
