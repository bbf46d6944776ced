// The Eigen adapter: every dense storage type views its own coefficients, at their own
// addresses (no copy), for both storage orders, blocks, maps with strides and refs.
#include <catch2/catch.hpp>

#include <Eigen/Core>

#include "selfreplay/adapters/eigen.hpp"

namespace {

// Fills `m` with distinct values, then checks that view(m) reads and writes exactly m's
// coefficients: same values, same addresses, and writes visible in m.
template <class M>
void check_aliases(M&& m) {
    using scalar = typename std::remove_cvref_t<M>::Scalar;
    for (Eigen::Index i = 0; i < m.rows(); ++i)
        for (Eigen::Index j = 0; j < m.cols(); ++j) m.coeffRef(i, j) = static_cast<scalar>(100 * i + j);
    auto v = selfreplay::view(m);
    REQUIRE(v.extent(0) == m.rows());
    REQUIRE(v.extent(1) == m.cols());
    for (Eigen::Index i = 0; i < m.rows(); ++i)
        for (Eigen::Index j = 0; j < m.cols(); ++j) {
            REQUIRE(&v(i, j) == &m.coeffRef(i, j));
            REQUIRE(v(i, j) == m.coeff(i, j));
        }
    v(m.rows() - 1, m.cols() - 1) = static_cast<scalar>(-3);
    CHECK(m.coeff(m.rows() - 1, m.cols() - 1) == static_cast<scalar>(-3));
}

} // namespace

TEMPLATE_TEST_CASE("Eigen matrices of both storage orders view as [rows, cols]", "[adapters][eigen]", float,
                   double) {
    Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor> col(3, 5);
    Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> row(3, 5);
    check_aliases(col);
    check_aliases(row);
    CHECK(selfreplay::view(row).stride(0) == 5);
    CHECK(selfreplay::view(row).stride(1) == 1);
    CHECK(selfreplay::view(col).stride(0) == 1);
    CHECK(selfreplay::view(col).stride(1) == 3);
}

TEMPLATE_TEST_CASE("Eigen fixed-size matrices and arrays view their storage", "[adapters][eigen]", float, double) {
    Eigen::Matrix<TestType, 4, 3> fixed;
    Eigen::Array<TestType, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> array(2, 7);
    Eigen::Matrix<TestType, Eigen::Dynamic, 1> vector(6);
    check_aliases(fixed);
    check_aliases(array);
    check_aliases(vector);
    CHECK(selfreplay::view(vector).extent(1) == 1);
}

TEMPLATE_TEST_CASE("Eigen blocks view the block's coefficients inside the parent", "[adapters][eigen]", float,
                   double) {
    Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> row(6, 8);
    Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic> col(6, 8);
    check_aliases(row.block(1, 2, 3, 4));
    check_aliases(col.block(2, 1, 4, 3));
    check_aliases(row.row(3));
    check_aliases(col.col(5));
    check_aliases(col.middleRows(1, 2));
}

TEMPLATE_TEST_CASE("Eigen maps with inner and outer strides view foreign memory", "[adapters][eigen]", float,
                   double) {
    std::vector<TestType> buffer(200);
    using row_major = Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    using col_major = Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic>;
    Eigen::Map<row_major> plain(buffer.data(), 4, 5);
    check_aliases(plain);
    CHECK(&selfreplay::view(plain)(0, 0) == buffer.data());

    Eigen::Map<row_major, 0, Eigen::OuterStride<>> padded(buffer.data(), 4, 5, Eigen::OuterStride<>(9));
    check_aliases(padded);
    CHECK(&selfreplay::view(padded)(2, 1) == buffer.data() + 2 * 9 + 1);

    Eigen::Map<col_major, 0, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>> both(
        buffer.data(), 3, 4, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(20, 3));
    check_aliases(both);
    CHECK(&selfreplay::view(both)(2, 3) == buffer.data() + 3 * 20 + 2 * 3);
}

TEMPLATE_TEST_CASE("Eigen refs (mutable and const) view the referenced storage", "[adapters][eigen]", float, double) {
    using matrix = Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic>;
    matrix m(5, 6);
    Eigen::Ref<matrix, 0, Eigen::OuterStride<>> r = m.block(1, 1, 3, 4);
    check_aliases(r);
    CHECK(&selfreplay::view(r)(0, 0) == &m(1, 1));

    const Eigen::Ref<const matrix> cr = m;
    auto cv = selfreplay::view(cr);
    STATIC_REQUIRE(std::is_const_v<typename decltype(cv)::element_type>);
    CHECK(&cv(4, 5) == &m(4, 5));
}

TEST_CASE("a const Eigen matrix views as read-only", "[adapters][eigen]") {
    const Eigen::MatrixXd m = Eigen::MatrixXd::Identity(3, 3);
    auto v = selfreplay::view(m);
    STATIC_REQUIRE(std::is_same_v<decltype(v), selfreplay::strided_view<const double, 2>>);
    CHECK(v(1, 1) == 1.0);
    CHECK(v(1, 2) == 0.0);
}

TEST_CASE("Eigen types model the tensor concept; expressions do not", "[adapters][eigen]") {
    STATIC_REQUIRE(selfreplay::tensor_of<Eigen::MatrixXf, float>);
    STATIC_REQUIRE(selfreplay::tensor<Eigen::Map<const Eigen::ArrayXXd>>);
    STATIC_REQUIRE(selfreplay::tensor<Eigen::Block<Eigen::MatrixXf>>);
    STATIC_REQUIRE_FALSE(selfreplay::tensor<decltype(Eigen::MatrixXf() + Eigen::MatrixXf())>);
    STATIC_REQUIRE_FALSE(selfreplay::tensor<decltype(Eigen::MatrixXf().transpose() * 2.0f)>);
}
