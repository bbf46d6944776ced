// strided_view: addressing, slicing, merging and checks against hand-computed offsets.
#include <catch2/catch.hpp>

#include <numeric>
#include <vector>

#include "selfreplay/tensor.hpp"

using selfreplay::index_t;
using selfreplay::strided_view;

TEST_CASE("row-major view addresses element (i, j, k) at i*J*K + j*K + k", "[tensor]") {
    std::vector<int> buf(2 * 3 * 4);
    std::iota(buf.begin(), buf.end(), 0);
    strided_view<int, 3> v(buf.data(), {2, 3, 4});
    CHECK(v.stride(0) == 12);
    CHECK(v.stride(1) == 4);
    CHECK(v.stride(2) == 1);
    CHECK(v.size() == 24);
    CHECK(v.is_contiguous());
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 3; ++j)
            for (int k = 0; k < 4; ++k) REQUIRE(v(i, j, k) == i * 12 + j * 4 + k);
}

TEST_CASE("writes through a view land in the source buffer", "[tensor]") {
    std::vector<double> buf(6, 0.0);
    strided_view<double, 2> v(buf.data(), {2, 3});
    v(1, 2) = 7.5;
    CHECK(buf[5] == 7.5);
    auto row = v[1];
    row(0) = -1.0;
    CHECK(buf[3] == -1.0);
}

TEST_CASE("a transposed (column-major) view walks the buffer by strides", "[tensor]") {
    std::vector<int> buf{0, 1, 2, 3, 4, 5}; // 3 x 2 row-major, viewed as its 2 x 3 transpose
    strided_view<int, 2> t(buf.data(), {2, 3}, {1, 2});
    CHECK(t(0, 0) == 0);
    CHECK(t(0, 1) == 2);
    CHECK(t(1, 2) == 5);
    CHECK_FALSE(t.is_contiguous());
}

TEST_CASE("merge_leading turns [B, T, V] into [B*T, V] without copying", "[tensor]") {
    std::vector<float> buf(2 * 3 * 5);
    std::iota(buf.begin(), buf.end(), 0.0f);
    strided_view<float, 3> v(buf.data(), {2, 3, 5});
    auto m = selfreplay::merge_leading(v);
    CHECK(m.extent(0) == 6);
    CHECK(m.extent(1) == 5);
    CHECK(m.data() == buf.data());
    CHECK(m(4, 3) == v(1, 1, 3));
}

TEST_CASE("merge_leading rejects a layout whose first two dimensions do not merge", "[tensor]") {
    std::vector<float> buf(64);
    // rows of a [2, 3, 4] block inside a [2, 4, 4] buffer: stride(0) = 16 != 3 * 4
    strided_view<float, 3> v(buf.data(), {2, 3, 4}, {16, 4, 1});
    CHECK_THROWS_WITH(selfreplay::merge_leading(v, "next_token_loss", "logits"),
                      Catch::Contains("next_token_loss") && Catch::Contains("'logits'") &&
                          Catch::Contains("cannot merge"));
}

TEST_CASE("negative extents are rejected with the argument named", "[tensor]") {
    float x = 0;
    CHECK_THROWS_AS((strided_view<float, 2>(&x, {2, -1})), selfreplay::invalid_argument);
    CHECK_THROWS_WITH((strided_view<float, 2>(&x, {2, -1})), Catch::Contains("'extents'"));
}

TEST_CASE("require_same_extents names both arguments and their shapes", "[tensor]") {
    std::vector<float> a(6), b(8);
    strided_view<float, 2> va(a.data(), {2, 3});
    strided_view<float, 2> vb(b.data(), {2, 4});
    CHECK_NOTHROW(selfreplay::require_same_extents(va, va, "f", "x", "y"));
    CHECK_THROWS_WITH(selfreplay::require_same_extents(va, vb, "kl_divergence", "reference_logits", "student_logits"),
                      "selfreplay::kl_divergence: argument 'reference_logits' has shape [2, 3] but 'student_logits' "
                      "has shape [2, 4]");
}

TEST_CASE("a mutable view converts to a const view of the same memory", "[tensor]") {
    std::vector<int> buf{1, 2, 3, 4};
    strided_view<int, 2> v(buf.data(), {2, 2});
    strided_view<const int, 2> c = v;
    CHECK(c.data() == buf.data());
    CHECK(c(1, 0) == 3);
    STATIC_REQUIRE(std::is_same_v<decltype(c(0, 0)), const int&>);
}

TEST_CASE("empty views report size 0", "[tensor]") {
    strided_view<float, 2> v;
    CHECK(v.empty());
    std::vector<float> buf(3);
    strided_view<float, 2> w(buf.data(), {0, 3});
    CHECK(w.empty());
    CHECK(w.extent(1) == 3);
}
