#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "selfreplay/random.hpp"

using namespace selfreplay;

TEST_CASE("philox4x32: Random123 known-answer vectors (kat_vectors, 10 rounds)", "[random]") {
    // Random123 kat_vectors lines: "philox4x32 10 <ctr x4> <key x2> <expected x4>".
    struct kat {
        philox4x32_counter ctr;
        philox4x32_key key;
        philox4x32_counter expected;
    };
    const kat cases[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
        {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
         {0xffffffffu, 0xffffffffu},
         {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
        {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
         {0xa4093822u, 0x299f31d0u},
         {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
    };
    for (const auto& c : cases) CHECK(philox4x32(c.ctr, c.key) == c.expected);
    // usable at compile time
    static_assert(philox4x32({0, 0, 0, 0}, {0, 0})[0] == 0x6627e8d5u);
}

TEST_CASE("counter_rng: layout, save/restore, independence of streams", "[random]") {
    counter_rng r{.seed = 0x299f31d0a4093822ull, .stream = 0x0370734413198a2eull};
    // block b of stream s under seed k is philox4x32({b low, b high, s low, s high}, {k low, k high})
    CHECK(r.block(0x85a308d3243f6a88ull) ==
          philox4x32_counter{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
    // word n is word n % 4 of block n / 4
    r.counter = 4 * 12345 + 1;
    const auto blk = r.block(12345);
    CHECK(r.next_u32() == blk[1]);
    CHECK(r.next_u32() == blk[2]);
    const counter_rng saved = r;
    const std::uint64_t a = r.next_u64();
    CHECK(a == (std::uint64_t{blk[3]} | (std::uint64_t{r.block(12346)[0]} << 32)));
    CHECK(r.counter == saved.counter + 2);
    counter_rng restored{saved.seed, saved.stream, saved.counter};
    CHECK(restored == saved);
    CHECK(restored.next_u64() == a);

    // different streams and seeds give different words
    counter_rng s0{.seed = 1, .stream = 0}, s1{.seed = 1, .stream = 1}, t0{.seed = 2, .stream = 0};
    int same01 = 0, same_seed = 0;
    for (int i = 0; i < 64; ++i) {
        const auto x = s0.next_u32(), y = s1.next_u32(), z = t0.next_u32();
        same01 += x == y;
        same_seed += x == z;
    }
    CHECK(same01 == 0);
    CHECK(same_seed == 0);

    // skip(n) == n calls
    counter_rng p{.seed = 5, .stream = 9}, q = p;
    for (int i = 0; i < 7; ++i) p.next_u32();
    q.skip(7);
    CHECK(p.next_u32() == q.next_u32());
}

TEST_CASE("counter_rng: same numbers whatever the thread count", "[random]") {
    constexpr int streams = 8, n = 1000;
    std::vector<std::uint32_t> serial(streams * n), threaded(streams * n);
    for (int s = 0; s < streams; ++s) {
        counter_rng r{.seed = 42, .stream = static_cast<std::uint64_t>(s)};
        for (int i = 0; i < n; ++i) serial[s * n + i] = r.next_u32();
    }
    std::vector<std::thread> pool;
    for (int t = 0; t < 2; ++t)
        pool.emplace_back([&, t] {
            for (int s = t; s < streams; s += 2) {
                counter_rng r{.seed = 42, .stream = static_cast<std::uint64_t>(s)};
                for (int i = 0; i < n; ++i) threaded[s * n + i] = r.next_u32();
            }
        });
    for (auto& th : pool) th.join();
    CHECK(serial == threaded);
}

TEST_CASE("uniform_float / uniform_double / uniform_float_open: range and chi-square uniformity", "[random]") {
    // 64 equal cells, N = 64000 draws: chi-square with 63 dof; reject at significance 1e-3
    // (critical value 103.4). Fixed seed, so the test is deterministic.
    constexpr int cells = 64, n = 64000;
    auto chi2 = [&](auto draw) {
        counter_rng r{.seed = 2024, .stream = 3};
        std::vector<int> count(cells, 0);
        for (int i = 0; i < n; ++i) {
            const double u = draw(r);
            REQUIRE(u >= 0.0);
            REQUIRE(u < 1.0);
            ++count[static_cast<int>(u * cells)];
        }
        const double e = double(n) / cells;
        double x = 0;
        for (int c : count) x += (c - e) * (c - e) / e;
        return x;
    };
    CHECK(chi2([](counter_rng& r) { return double(uniform_float(r)); }) < 103.4);
    CHECK(chi2([](counter_rng& r) { return uniform_double(r); }) < 103.4);
    CHECK(chi2([](counter_rng& r) {
              const float u = uniform_float_open(r);
              REQUIRE(u > 0.0f);
              return double(u);
          }) < 103.4);

    // extremes: word 0 -> 0, word 2^32-1 -> 1 - 2^-24 (never 1)
    struct fixed_words {
        std::uint32_t w;
        std::uint32_t next_u32() { return w; }
    };
    fixed_words zero{0}, ones{0xffffffffu};
    CHECK(uniform_float(zero) == 0.0f);
    CHECK(uniform_float(ones) == 1.0f - 0x1p-24f);
    CHECK(uniform_double(ones) == 1.0 - 0x1p-53);
    CHECK(uniform_float_open(zero) == 0x1p-24f);
    CHECK(uniform_float_open(ones) == 1.0f - 0x1p-24f);
    CHECK(uniform_float_open(ones) < 1.0f);
}

TEST_CASE("counter_rng is a UniformRandomBitGenerator", "[random]") {
    static_assert(std::uniform_random_bit_generator<counter_rng>);
    counter_rng r{.seed = 1};
    std::uniform_int_distribution<int> d(0, 9);
    for (int i = 0; i < 100; ++i) {
        const int v = d(r);
        CHECK((v >= 0 && v <= 9));
    }
}
