// Accumulators: exact_sum against an independent 128-bit fixed-point sum, split-at-random-points
// + merge == single pass (bit for bit) for every forgetting_metric, hand-computed values, errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <vector>

#include "selfreplay/metrics.hpp"

using namespace selfreplay;

static_assert(forgetting_metric<mean_loss> && forgetting_metric<mean_kl> && forgetting_metric<forgetting> &&
              forgetting_metric<second_half_loss> && forgetting_metric<weight_distance_ratio> &&
              forgetting_metric<weight_norm>);
static_assert(!forgetting_metric<int> && !forgetting_metric<exact_sum>);

namespace {

__extension__ typedef __int128 int128; // GCC/Clang extension, used only as independent truth

// A user-written model: the maximum, which merges exactly too.
struct max_loss {
    double best = -std::numeric_limits<double>::infinity();
    std::int64_t n = 0;
    void add(double x) { best = std::max(best, x), ++n; }
    void merge(const max_loss& o) { best = std::max(best, o.best), n += o.n; }
    double value() const { return best; }
    std::int64_t count() const { return n; }
};
static_assert(forgetting_metric<max_loss>);

// Cuts [0, n) at `pieces - 1` random points (sorted, repeats allowed: empty shards happen).
std::vector<std::size_t> random_cuts(std::size_t n, int pieces, std::mt19937_64& rng) {
    std::vector<std::size_t> cuts{0, n};
    std::uniform_int_distribution<std::size_t> at(0, n);
    for (int i = 1; i < pieces; ++i) cuts.push_back(at(rng));
    std::sort(cuts.begin(), cuts.end());
    return cuts;
}

} // namespace

TEST_CASE("exact_sum is the correctly rounded exact sum") {
    exact_sum s;
    for (double x : {1e100, 1.0, -1e100}) s.add(x);
    CHECK(s.value() == 1.0);
    exact_sum tenth;
    for (int i = 0; i < 10; ++i) tenth.add(0.1);
    CHECK(tenth.value() == 1.0); // naive summation gives 0.9999999999999999
    CHECK(exact_sum{}.value() == 0.0);

    CHECK_THROWS_WITH(s.add(std::nan("")), Catch::Contains("exact_sum::add: argument 'x' must be finite"));

    // Independent truth: values m * 2^e with |m| < 2^50 and e in [-60, 0] are exact multiples of
    // 2^-60, so their sum is an exact 128-bit integer count of 2^-60; converting it to double
    // rounds once, to nearest even.
    std::mt19937_64 rng(20261124);
    std::uniform_int_distribution<std::int64_t> mant(-(std::int64_t{1} << 50), std::int64_t{1} << 50);
    std::uniform_int_distribution<int> expo(-60, 0);
    for (int trial = 0; trial < 200; ++trial) {
        const int n = 1 + trial * 5;
        std::vector<double> xs(static_cast<std::size_t>(n));
        int128 exact = 0;
        for (auto& x : xs) {
            const std::int64_t m = mant(rng);
            const int e = expo(rng);
            x = std::ldexp(static_cast<double>(m), e);
            exact += static_cast<int128>(m) << (e + 60);
        }
        const double want = std::ldexp(static_cast<double>(exact), -60);
        exact_sum a;
        for (double x : xs) a.add(x);
        INFO("trial " << trial);
        CHECK(a.value() == want);
        std::shuffle(xs.begin(), xs.end(), rng);
        exact_sum b;
        for (double x : xs) b.add(x);
        CHECK(b.value() == want);
    }
}

namespace {
// Independent reference: Shewchuk's non-overlapping expansions with CPython's math.fsum final
// rounding (correctly rounded, ties to even), a different algorithm from exact_sum's fixed point.
double fsum(const std::vector<double>& xs) {
    std::vector<double> p;
    for (double x : xs) {
        std::size_t i = 0;
        for (double y : p) {
            if (std::abs(x) < std::abs(y)) std::swap(x, y);
            const double hi = x + y, lo = y - (hi - x);
            if (lo != 0.0) p[i++] = lo;
            x = hi;
        }
        p.resize(i);
        p.push_back(x);
    }
    std::size_t n = p.size();
    if (n == 0) return 0.0;
    double hi = p[--n], lo = 0.0;
    while (n > 0) {
        const double x = hi, y = p[--n];
        hi = x + y;
        lo = y - (hi - x);
        if (lo != 0.0) break;
    }
    if (n > 0 && ((lo < 0.0 && p[n - 1] < 0.0) || (lo > 0.0 && p[n - 1] > 0.0))) {
        const double y = lo * 2.0, x = hi + y;
        if (y == x - hi) hi = x;
    }
    return hi;
}
double exact(const std::vector<double>& xs) {
    exact_sum s;
    for (double x : xs) s.add(x);
    return s.value();
}
} // namespace

TEST_CASE("exact_sum: ties to even, sticky bits, subnormals, cancellation, overflow") {
    const double u = std::ldexp(1.0, -53); // half an ulp of 1
    CHECK(exact({1.0, u}) == 1.0);                                            // tie, even stays
    CHECK(exact({1.0 + 2 * u, u}) == 1.0 + 4 * u);                            // tie, odd rounds up
    CHECK(exact({1.0, u, std::ldexp(1.0, -200)}) == 1.0 + 2 * u);             // sticky bit far below
    CHECK(exact({1.0, u, -std::ldexp(1.0, -200)}) == 1.0);
    CHECK(exact({-1.0, -u}) == -1.0);
    const double tiny = std::numeric_limits<double>::denorm_min();
    CHECK(exact({tiny, tiny, tiny}) == 3 * tiny);
    CHECK(exact({std::numeric_limits<double>::min(), -tiny}) == std::numeric_limits<double>::min() - tiny);
    CHECK(exact({1e308, 1e308, -1e308}) == 1e308); // the intermediate overflow is harmless
    CHECK(exact({-1e308, -1e308, 1e308}) == -1e308);
    CHECK(exact({std::numeric_limits<double>::max(), -std::numeric_limits<double>::max(), 5.0}) == 5.0);
    CHECK(exact({0.5, -0.5}) == 0.0);
    exact_sum big;
    big.add(1.7e308);
    big.add(1.7e308);
    CHECK_THROWS_WITH(big.value(), Catch::Contains("exact_sum::value: argument 'sum' is beyond the double range"));
    exact_sum cleared = big;
    cleared.clear();
    CHECK(cleared.value() == 0.0);
}

TEST_CASE("exact_sum equals the Shewchuk/fsum reference over the whole double range") {
    std::mt19937_64 rng(99);
    std::uniform_int_distribution<int> expo(-1074, 1000);
    std::uniform_real_distribution<double> mant(-1.0, 1.0);
    std::uniform_int_distribution<int> len(1, 300);
    for (int trial = 0; trial < 300; ++trial) {
        std::vector<double> xs(static_cast<std::size_t>(len(rng)));
        // Mix: full-range exponents, a narrow band (many carries), and exact negations (cancellation).
        const int lo = trial % 3 == 0 ? -1074 : (trial % 3 == 1 ? -60 : 900);
        std::uniform_int_distribution<int> e(lo, lo + (trial % 3 == 0 ? 2070 : 50));
        for (auto& x : xs) x = std::ldexp(mant(rng), e(rng));
        if (trial % 4 == 0)
            for (std::size_t i = 0; i + 1 < xs.size(); i += 2) xs[i + 1] = -xs[i] * (1 + std::ldexp(1.0, -52));
        INFO("trial " << trial);
        CHECK(exact(xs) == fsum(xs));
    }
}

TEST_CASE("every accumulator: random splits merged equal one pass, bit for bit") {
    std::mt19937_64 rng(7);
    std::lognormal_distribution<double> loss(0.5, 1.5); // wide dynamic range
    std::normal_distribution<double> w(0.0, 1.0);
    const std::size_t n = 3000;
    std::vector<double> xs(n);
    for (auto& x : xs) x = loss(rng);
    std::vector<float> theta(n), pi(n), init(n);
    for (std::size_t i = 0; i < n; ++i) {
        init[i] = static_cast<float>(w(rng));
        pi[i] = init[i] + static_cast<float>(0.1 * w(rng));
        theta[i] = pi[i] + static_cast<float>(0.01 * w(rng));
    }
    mean_loss one_mean;
    forgetting one_forget(1.25);
    weight_distance_ratio one_ratio;
    weight_norm one_norm;
    for (double x : xs) one_mean.add(x), one_forget.add(x);
    one_ratio.add(std::span<const float>(theta), std::span<const float>(pi), std::span<const float>(init));
    one_norm.add(std::span<const float>(theta));

    for (int trial = 0; trial < 50; ++trial) {
        const int pieces = 2 + trial % 7;
        const auto cuts = random_cuts(n, pieces, rng);
        std::vector<mean_loss> means(cuts.size() - 1);
        std::vector<forgetting> forgets(cuts.size() - 1, forgetting(1.25));
        std::vector<weight_distance_ratio> ratios(cuts.size() - 1);
        std::vector<weight_norm> norms(cuts.size() - 1);
        for (std::size_t p = 0; p + 1 < cuts.size(); ++p) {
            const std::size_t a = cuts[p], len = cuts[p + 1] - cuts[p];
            // Alternate the ways of adding: single values, a [len] tensor view, a partial-sum add.
            if (p % 2 == 0) {
                for (std::size_t i = a; i < a + len; ++i) means[p].add(xs[i]);
            } else {
                means[p].add(make_view(xs.data() + a, {static_cast<index_t>(len)}));
            }
            forgets[p].add(make_view(xs.data() + a, {static_cast<index_t>(len)}));
            ratios[p].add(std::span<const float>(theta).subspan(a, len), std::span<const float>(pi).subspan(a, len),
                          std::span<const float>(init).subspan(a, len));
            norms[p].add(std::span<const float>(theta).subspan(a, len));
        }
        // Merge in a random order.
        std::vector<std::size_t> order(means.size());
        for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::shuffle(order.begin(), order.end(), rng);
        mean_loss m;
        forgetting f(1.25);
        weight_distance_ratio r;
        weight_norm nn;
        for (std::size_t i : order) m.merge(means[i]), f.merge(forgets[i]), r.merge(ratios[i]), nn.merge(norms[i]);
        INFO("trial " << trial << " with " << pieces << " pieces");
        CHECK(m.value() == one_mean.value());
        CHECK(m.count() == static_cast<std::int64_t>(n));
        CHECK(f.value() == one_forget.value());
        CHECK(r.value() == one_ratio.value());
        CHECK(r.count() == static_cast<std::int64_t>(n));
        CHECK(nn.value() == one_norm.value());
    }
}

TEST_CASE("second_half_loss: random row splits merged equal one pass") {
    std::mt19937_64 rng(11);
    std::exponential_distribution<double> loss(0.7);
    const index_t B = 40, T = 9;
    std::vector<double> v(static_cast<std::size_t>(B * T));
    for (auto& x : v) x = loss(rng);
    second_half_loss one;
    one.add(make_view(v.data(), {B, T}));
    for (int trial = 0; trial < 30; ++trial) {
        const auto cuts = random_cuts(static_cast<std::size_t>(B), 2 + trial % 5, rng);
        second_half_loss merged;
        for (std::size_t p = 0; p + 1 < cuts.size(); ++p) {
            second_half_loss part;
            part.add(make_view(v.data() + cuts[p] * T, {static_cast<index_t>(cuts[p + 1] - cuts[p]), T}));
            merged.merge(part);
        }
        CHECK(merged.value() == one.value());
        CHECK(merged.count() == B * (T - T / 2));
    }
}

TEST_CASE("mean_loss and mean_kl: hand-computed means over tensors, masks and partial sums") {
    // [B=2, T=3] per-position losses with the last position 0 (the paper's convention).
    const double per_position[] = {1.0, 2.0, 0.0, 3.0, 6.0, 0.0};
    mean_loss all;
    all.add(make_view(per_position, {2, 3}));
    CHECK(all.count() == 6);
    CHECK(all.value() == 2.0); // 12 / 6: reduction::mean_all
    // Counting only positions whose mask is nonzero: reduction::mean_counted.
    const std::uint8_t mask[] = {1, 1, 0, 1, 1, 0};
    mean_kl counted;
    counted.add(make_view(per_position, {2, 3}), position_mask(make_view(mask, {2, 3})));
    CHECK(counted.count() == 4);
    CHECK(counted.value() == 3.0);
    // A transposed (strided) view of float values gives the same mean.
    const float col_major[] = {1.f, 3.f, 2.f, 6.f, 0.f, 0.f};
    mean_loss strided;
    strided.add(make_view(col_major, {2, 3}, {1, 2}));
    CHECK(strided.value() == 2.0);
    // Partial sums (a reduction::sum loss with its count) and single values mix.
    mean_loss mixed;
    mixed.add_sum(12.0, 6);
    mixed.add(4.0);
    mixed.add_sum(0.0, 0);
    CHECK(mixed.value() == 16.0 / 7.0);
    CHECK(mixed.sum() == 16.0);

    CHECK_THROWS_WITH(mean_loss{}.value(), Catch::Contains("mean_loss::value: argument 'count' is 0"));
    const double bad[] = {1.0, std::nan(""), 2.0, 3.0};
    CHECK_THROWS_WITH(mean_loss{}.add(make_view(bad, {2, 2})),
                      Catch::Contains("mean_loss::add: argument 'values' must hold finite values, got NaN at [0, 1]"));
    CHECK_THROWS_WITH(mean_kl{}.add(std::numeric_limits<double>::infinity()),
                      Catch::Contains("mean_kl::add: argument 'x' must be finite"));
    CHECK_THROWS_WITH(mean_loss{}.add_sum(1.0, -2), Catch::Contains("argument 'n' must be >= 0"));
    CHECK_THROWS_WITH(mean_loss{}.add_sum(1.0, 0), Catch::Contains("must be 0 when n is 0"));
    const std::uint8_t small_mask[] = {1, 1};
    CHECK_THROWS_WITH(mean_loss{}.add(make_view(per_position, {2, 3}), position_mask(make_view(small_mask, {1, 2}))),
                      Catch::Contains("argument 'mask' has shape [1, 2] but 'values' has shape [2, 3]"));
}

TEST_CASE("forgetting = previous-distribution loss now - loss before finetuning") {
    forgetting f(2.0); // prev_ntp of pi
    const double now[] = {2.5, 2.0, 3.0, 2.5};
    f.add(make_view(now, {4}));
    CHECK(f.value() == 0.5);
    CHECK(f.loss_before() == 2.0);
    CHECK(f.loss_after().value() == 2.5);
    forgetting none(2.5);
    none.add(2.5);
    CHECK(none.value() == 0.0); // no forgetting
    forgetting better(3.0);
    better.add(2.0);
    CHECK(better.value() == -1.0); // the old loss improved
    CHECK_THROWS_WITH(f.merge(none), Catch::Contains("forgetting::merge: argument 'other' has loss_before"));
    CHECK_THROWS_WITH(forgetting(std::nan("")), Catch::Contains("argument 'loss_before' must be finite"));
}

TEST_CASE("second_half_loss averages positions t >= T/2") {
    const double even[] = {9, 9, 1, 2, 9, 9, 3, 4}; // B=2, T=4: positions 2, 3
    second_half_loss a;
    a.add(make_view(even, {2, 4}));
    CHECK(a.count() == 4);
    CHECK(a.value() == 2.5);
    const double odd[] = {9, 9, 1, 2, 3}; // B=1, T=5: positions 2, 3, 4
    second_half_loss b;
    b.add(make_view(odd, {1, 5}));
    CHECK(b.value() == 2.0);
    const int mask[] = {1, 1, 1, 0, 1, 1, 1, 0}; // drop the last position of each row
    second_half_loss c;
    c.add(make_view(even, {2, 4}), position_mask(make_view(mask, {2, 4})));
    CHECK(c.count() == 2);
    CHECK(c.value() == 2.0);
    const double nan_late[] = {1, std::nan("")};
    CHECK_THROWS_WITH(second_half_loss{}.add(make_view(nan_late, {1, 2})), Catch::Contains("NaN at [0, 1]"));
    const double nan_early[] = {std::nan(""), 1.0};
    second_half_loss d;
    d.add(make_view(nan_early, {1, 2})); // the first half is not read
    CHECK(d.value() == 1.0);
}

TEST_CASE("weight_distance_ratio = ||theta - pi|| / ||pi - theta_0|| over several tensors") {
    // Tensor 1: theta - pi = (3, 0), pi - theta_0 = (0, 1); tensor 2 (2x2): theta - pi = (0, 4, 0, 0), pi - theta_0 = 0.
    const double theta1[] = {3, 1}, pi1[] = {0, 1}, init1[] = {0, 0};
    const float theta2[] = {1, 5, 1, 1}, pi2[] = {1, 1, 1, 1}, init2[] = {1, 1, 1, 1};
    weight_distance_ratio r;
    r.add(make_view(theta1, {2}), make_view(pi1, {2}), make_view(init1, {2}));
    r.add(make_view(theta2, {2, 2}), make_view(pi2, {2, 2}), make_view(init2, {2, 2}));
    CHECK(r.distance() == 5.0);
    CHECK(r.reference_distance() == 1.0);
    CHECK(r.value() == 5.0);
    CHECK(r.count() == 6);
    // A strided theta (transposed) gives the same result as the contiguous one.
    const float theta2_t[] = {1, 1, 5, 1};
    weight_distance_ratio s;
    s.add(make_view(theta1, {2}), make_view(pi1, {2}), make_view(init1, {2}));
    s.add(make_view(theta2_t, {2, 2}, {1, 2}), make_view(pi2, {2, 2}), make_view(init2, {2, 2}));
    CHECK(s.value() == 5.0);
    weight_norm norm;
    norm.add(make_view(theta1, {2}));
    norm.add(std::span<const float>(theta2));
    CHECK(norm.value() == Approx(std::sqrt(9.0 + 1 + 1 + 25 + 1 + 1)).epsilon(1e-15));

    CHECK_THROWS_WITH(weight_distance_ratio{}.value(), Catch::Contains("argument 'count' is 0"));
    weight_distance_ratio same;
    same.add(make_view(theta1, {2}), make_view(pi1, {2}), make_view(pi1, {2}));
    CHECK(std::isnan(same.value())); // pi == theta_0: undefined, NaN as in the reference code
    CHECK_THROWS_WITH(weight_distance_ratio{}.add(make_view(theta1, {2}), make_view(pi2, {4}), make_view(init1, {2})),
                      Catch::Contains("argument 'pi' has shape [4] but 'theta' has shape [2]"));
    const double nan1[] = {0, std::nan("")};
    CHECK_THROWS_WITH(weight_distance_ratio{}.add(make_view(nan1, {2}), make_view(pi1, {2}), make_view(init1, {2})),
                      Catch::Contains("argument 'theta' must hold finite values, got NaN at [1]"));
    const std::vector<double> a{1, 2}, b{1};
    CHECK_THROWS_WITH(weight_distance_ratio{}.add(std::span<const double>(a), std::span<const double>(b), std::span<const double>(a)),
                      Catch::Contains("must have the same length"));
}

TEST_CASE("a user-written accumulator models the concept") {
    max_loss a, b;
    a.add(1.0);
    b.add(3.0);
    a.merge(b);
    CHECK(a.value() == 3.0);
    CHECK(a.count() == 2);
}

TEST_CASE("a mean whose exact sum exceeds the double range is still the mean (fuzz finding)", "[metrics]") {
    // found by tests/fuzz/fuzz_schedules_metrics: value() threw "sum is beyond the double range"
    // for finite values whose mean is finite
    constexpr double big = std::numeric_limits<double>::max();
    selfreplay::mean_loss a, b;
    a.add(big);
    a.add(big);
    CHECK(a.value() == big);
    b.add(big);
    b.add(-big / 2);
    b.add(big);
    a.merge(b);
    CHECK(a.value() == Approx(big * 0.7).epsilon(1e-15));
    std::vector<double> per{0.0, big, 0.0, big};
    selfreplay::second_half_loss h;
    h.add(selfreplay::make_view(per.data(), {2, 2}));
    CHECK(h.value() == big);
}
