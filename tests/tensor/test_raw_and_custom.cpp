// The tensor concept's customization point: raw pointers through make_view, and a user-defined
// backend that specializes tensor_traits (proving a type we do not know plugs in).
#include <catch2/catch.hpp>

#include <array>
#include <vector>

#include "selfreplay/tensor.hpp"

namespace user {
//! A test-only backend: a fixed 2 x 3 matrix stored column-major.
struct column_major_2x3 {
    std::array<double, 6> storage{};
};
} // namespace user

template <>
struct selfreplay::tensor_traits<user::column_major_2x3> {
    using value_type = double;
    static constexpr std::size_t rank = 2;
    template <std::size_t R, class Self>
    static auto view(Self& x) {
        using element = std::remove_reference_t<decltype(x.storage[0])>;
        return strided_view<element, 2>(x.storage.data(), {2, 3}, {1, 2});
    }
};

static_assert(selfreplay::tensor<user::column_major_2x3>);
static_assert(selfreplay::tensor_of<const user::column_major_2x3&, double>);
static_assert(selfreplay::tensor<selfreplay::strided_view<float, 3>>);
static_assert(!selfreplay::tensor<std::vector<float>>);
static_assert(!selfreplay::tensor<float*>);

TEST_CASE("make_view over a raw buffer with extents is row-major", "[tensor]") {
    std::vector<float> buf(12);
    auto v = selfreplay::make_view(buf.data(), {3, 4});
    STATIC_REQUIRE(std::is_same_v<decltype(v), selfreplay::strided_view<float, 2>>);
    v(2, 1) = 5.0f;
    CHECK(buf[9] == 5.0f);
}

TEST_CASE("make_view with explicit strides views every other column", "[tensor]") {
    std::vector<int> buf{0, 1, 2, 3, 4, 5, 6, 7};
    auto v = selfreplay::make_view(buf.data(), {2, 2}, {4, 2});
    CHECK(v(0, 0) == 0);
    CHECK(v(0, 1) == 2);
    CHECK(v(1, 0) == 4);
    CHECK(v(1, 1) == 6);
}

TEST_CASE("a user-defined backend views its own memory through tensor_traits", "[tensor]") {
    user::column_major_2x3 m;
    auto v = selfreplay::view(m);
    v(1, 2) = 9.0; // column 2, row 1 -> storage index 2 * 2 + 1
    CHECK(m.storage[5] == 9.0);
    const auto& cm = m;
    auto cv = selfreplay::view(cm);
    STATIC_REQUIRE(std::is_same_v<decltype(cv), selfreplay::strided_view<const double, 2>>);
    CHECK(cv(1, 2) == 9.0);
}

TEST_CASE("viewing a strided_view returns the same view", "[tensor]") {
    std::vector<float> buf(6);
    auto v = selfreplay::make_view(buf.data(), {2, 3});
    auto w = selfreplay::view(v);
    CHECK(w.data() == v.data());
    CHECK(w.extents() == v.extents());
    CHECK(w.strides() == v.strides());
}
