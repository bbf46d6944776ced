// The xtensor adapter: containers, fixed-size tensors, adaptors over raw buffers and strided
// views all view their own elements, at their own addresses (no copy).
#include <catch2/catch.hpp>

#include <vector>

#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xfixed.hpp>
#include <xtensor/xstrided_view.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>

#include "selfreplay/adapters/xtensor.hpp"

namespace {

// Fills the rank-2 expression `x` with distinct values, then checks that view<2>(x) reads and
// writes exactly x's elements, at the same addresses.
template <class X>
void check_aliases_2d(X&& x) {
    using value = typename std::remove_cvref_t<X>::value_type;
    const auto rows = static_cast<std::ptrdiff_t>(x.shape()[0]);
    const auto cols = static_cast<std::ptrdiff_t>(x.shape()[1]);
    for (std::ptrdiff_t i = 0; i < rows; ++i)
        for (std::ptrdiff_t j = 0; j < cols; ++j) x(i, j) = static_cast<value>(100 * i + j);
    auto v = selfreplay::view<2>(x);
    REQUIRE(v.extent(0) == rows);
    REQUIRE(v.extent(1) == cols);
    for (std::ptrdiff_t i = 0; i < rows; ++i)
        for (std::ptrdiff_t j = 0; j < cols; ++j) {
            REQUIRE(&v(i, j) == &x(i, j));
            REQUIRE(v(i, j) == x(i, j));
        }
    v(rows - 1, cols - 1) = static_cast<value>(-3);
    CHECK(x(rows - 1, cols - 1) == static_cast<value>(-3));
}

} // namespace

TEMPLATE_TEST_CASE("xtensor containers view their storage", "[adapters][xtensor]", float, double) {
    xt::xtensor<TestType, 2> t = xt::zeros<TestType>({3, 4});
    xt::xtensor<TestType, 2, xt::layout_type::column_major> tc = xt::zeros<TestType>({3, 4});
    xt::xarray<TestType> a = xt::zeros<TestType>({2, 5});
    xt::xtensor_fixed<TestType, xt::xshape<4, 2>> f = xt::zeros<TestType>({4, 2});
    check_aliases_2d(t);
    check_aliases_2d(tc);
    check_aliases_2d(a);
    check_aliases_2d(f);
    STATIC_REQUIRE(decltype(selfreplay::view(t))::rank() == 2); // static rank: no <2> needed
}

TEMPLATE_TEST_CASE("xt::adapt over a raw buffer aliases the buffer", "[adapters][xtensor]", float, double) {
    std::vector<TestType> buffer(12);
    auto adapted = xt::adapt(buffer.data(), buffer.size(), xt::no_ownership(), std::array<std::size_t, 2>{3, 4});
    check_aliases_2d(adapted);
    CHECK(&selfreplay::view<2>(adapted)(1, 2) == buffer.data() + 6);
}

TEMPLATE_TEST_CASE("xtensor strided views view the selected elements in place", "[adapters][xtensor]", float,
                   double) {
    xt::xtensor<TestType, 2> t = xt::zeros<TestType>({6, 8});
    auto ranged = xt::view(t, xt::range(1, 4), xt::range(2, 8, 2));
    check_aliases_2d(ranged);
    CHECK(&selfreplay::view<2>(ranged)(0, 0) == &t(1, 2));
    CHECK(selfreplay::view<2>(ranged).stride(1) == 2);

    auto strided = xt::strided_view(t, {xt::range(0, 6, 3), xt::all()});
    check_aliases_2d(strided);
    CHECK(&selfreplay::view<2>(strided)(1, 0) == &t(3, 0));
}

TEST_CASE("a dynamic-rank xarray asked for the wrong rank is refused", "[adapters][xtensor]") {
    xt::xarray<float> a = xt::zeros<float>({2, 3, 4});
    CHECK_NOTHROW(selfreplay::view<3>(a));
    CHECK_THROWS_WITH(selfreplay::view<2>(a), Catch::Contains("has 3 dimensions") && Catch::Contains("rank 2"));
}

TEST_CASE("a const xtensor views as read-only", "[adapters][xtensor]") {
    const xt::xtensor<double, 2> t = {{1.0, 2.0}, {3.0, 4.0}};
    auto v = selfreplay::view(t);
    STATIC_REQUIRE(std::is_same_v<decltype(v), selfreplay::strided_view<const double, 2>>);
    CHECK(v(1, 0) == 3.0);
}
