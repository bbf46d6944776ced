// make_view: extents of any integer type (no narrowing), and views over std::span, std::vector
// and std::array that check the buffer's size and keep its constness.

#include <catch2/catch.hpp>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "selfreplay/tensor.hpp"

namespace sr = selfreplay;

namespace {
template <class B>
concept viewable_buffer = requires(B&& b) { sr::make_view(std::forward<B>(b), {1}); };
} // namespace

static_assert(viewable_buffer<std::vector<float>&>);
static_assert(viewable_buffer<const std::vector<float>&>);
static_assert(viewable_buffer<std::span<float>>);    // a span does not own: a temporary is fine
static_assert(!viewable_buffer<std::vector<float>>); // a temporary vector would dangle
static_assert(!viewable_buffer<std::vector<bool>&>); // not contiguous

TEST_CASE("make_view takes extents of any integer type", "[tensor][make_view]") {
    float data[24] = {};
    const std::size_t n = 2, m = 3;
    const int k = 4;
    const std::uint32_t one = 1;
    const auto v = sr::make_view(data, {n, m, k});
    CHECK(v.extents() == std::array<sr::index_t, 3>{2, 3, 4});
    CHECK(v.strides() == std::array<sr::index_t, 3>{12, 4, 1});
    const auto w = sr::make_view(data, {n, sr::index_t{4}}, {std::size_t{8}, one}); // extents and strides
    CHECK(w.strides() == std::array<sr::index_t, 2>{8, 1});
    CHECK(&w(1, 2) == data + 10);
    CHECK_THROWS_AS(sr::make_view(data, {std::size_t(-1)}), sr::invalid_argument); // does not fit index_t
}

TEST_CASE("make_view over a vector, a span and an array checks the size", "[tensor][make_view]") {
    std::vector<float> buffer(12);
    auto v = sr::make_view(buffer, {std::size_t{3}, 4});
    static_assert(std::is_same_v<decltype(v), sr::strided_view<float, 2>>);
    v(2, 3) = 5.0f;
    CHECK(buffer[11] == 5.0f);
    CHECK(v.data() == buffer.data());

    const std::vector<double> constant(6, 1.5);
    const auto c = sr::make_view(constant, {2, 3});
    static_assert(std::is_same_v<decltype(c), const sr::strided_view<const double, 2>>);
    CHECK(c(1, 2) == 1.5);

    std::array<std::int64_t, 8> ids{};
    const auto s = sr::make_view(std::span<std::int64_t>(ids).subspan(2), {2, 3});
    CHECK(s.data() == ids.data() + 2);
    const auto a = sr::make_view(ids, {8});
    CHECK(a.extent(0) == 8);

    try {
        (void)sr::make_view(buffer, {3, 3});
        FAIL("a size mismatch was accepted");
    } catch (const sr::invalid_argument& e) {
        CHECK(std::string(e.what()) ==
              "selfreplay::make_view: argument 'extents' have a product of 9 but the buffer holds 12 elements");
    }
    CHECK_THROWS_AS(sr::make_view(buffer, {13}), sr::invalid_argument);
    CHECK_THROWS_AS(sr::make_view(buffer, {-3, -4}), sr::invalid_argument); // negative extents, product 12
}
