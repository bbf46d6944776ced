#pragma once
// Shared helpers of the replay tests.

#include <cstdint>
#include <vector>

#include "selfreplay/tensor.hpp"

namespace replay_test {

// A [rows, T] row-major int32 batch owning its memory.
struct token_batch {
    selfreplay::index_t rows = 0, T = 0;
    std::vector<std::int32_t> ids;
    token_batch(selfreplay::index_t r, selfreplay::index_t t) : rows(r), T(t), ids(static_cast<std::size_t>(r * t), 0) {}
    selfreplay::strided_view<std::int32_t, 2> view() { return selfreplay::make_view(ids.data(), {rows, T}); }
    selfreplay::strided_view<const std::int32_t, 2> view() const { return selfreplay::make_view(ids.data(), {rows, T}); }
    std::int32_t& operator()(selfreplay::index_t r, selfreplay::index_t t) { return ids[static_cast<std::size_t>(r * T + t)]; }
};

// Rows first..first+n-1 where row i holds id i at every position (so a row names its item).
inline token_batch numbered_rows(std::int32_t first, selfreplay::index_t n, selfreplay::index_t T) {
    token_batch b(n, T);
    for (selfreplay::index_t r = 0; r < n; ++r)
        for (selfreplay::index_t t = 0; t < T; ++t) b(r, t) = first + static_cast<std::int32_t>(r);
    return b;
}

// Pearson statistic for inclusion counts of k-subsets drawn uniformly from N items, M times:
// sum (O - E)^2 / (M p (1 - p) N / (N - 1)), p = k / N, which is chi-square with N - 1 degrees of
// freedom under uniformity (the indicator covariance is p (1 - p) N / (N - 1) (I - 11^T / N)).
inline double subset_chi_square(const std::vector<double>& counts, double M, double k) {
    const double N = static_cast<double>(counts.size()), p = k / N, E = M * p;
    double s = 0;
    for (double o : counts) s += (o - E) * (o - E);
    return s / (M * p * (1 - p) * N / (N - 1));
}

// Pearson statistic for counts of a multinomial with equal cells: sum (O - E)^2 / E, N - 1 dof.
inline double uniform_chi_square(const std::vector<double>& counts) {
    double total = 0;
    for (double o : counts) total += o;
    const double E = total / static_cast<double>(counts.size());
    double s = 0;
    for (double o : counts) s += (o - E) * (o - E) / E;
    return s;
}

} // namespace replay_test
