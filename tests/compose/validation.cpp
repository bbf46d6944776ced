// Validation at construction (docs/design.md, "Validation"): a policy parameter whose value is
// known when the strategy is built is rejected there, not at the first step.

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "selfreplay/compose.hpp"
#include "selfreplay/replay.hpp"
#include "selfreplay/schedules.hpp"

namespace sr = selfreplay;

namespace {

// The smallest source: strategies are built, never stepped, here.
struct idle_source {
    sr::index_t seq_len() const { return 2; }
    void draw(sr::token_batch_view) {}
};

// A user mixer without check(): accepted as it is (check_policy skips it).
struct unchecked_mixer {
    static constexpr bool needs_replay_batch = false;
    static constexpr bool needs_student_replay_logits = false;
    static constexpr bool needs_reference_replay_logits = false;
    static constexpr bool needs_reference_train_logits = false;
    static constexpr std::size_t terms = 0;
    sr::index_t replace_rows(std::int64_t, sr::index_t) const { return 0; }
    template <class T>
    void add_terms(sr::objective_context<T>&) const {}
};

// strategy{.source, .mixer, .schedule} with the types spelled out (clang 14 has no aggregate CTAD).
template <class M, class S = sr::constant>
sr::strategy<idle_source, M, S> build(const M& mixer, const S& schedule = sr::constant{.value = 1.0}) {
    return {.source = idle_source{}, .mixer = mixer, .schedule = schedule};
}

} // namespace

TEST_CASE("a strategy rejects a bad mixer coefficient at its construction") {
    using Catch::Contains;
    CHECK_THROWS_WITH(build(sr::kl_pre<>{.coefficient = -1.0}),
                      Contains("selfreplay::kl_pre: argument 'coefficient' must be finite and >= 0, got -1"));
    CHECK_THROWS_WITH(build(sr::kl_dwn<>{.coefficient = std::nan("")}),
                      Contains("selfreplay::kl_dwn: argument 'coefficient' must be finite and >= 0, got nan"));
    CHECK_THROWS_WITH(build(sr::ntp_pre<>{.coefficient = std::numeric_limits<double>::infinity()}),
                      Contains("selfreplay::ntp_pre: argument 'coefficient' must be finite and >= 0, got inf"));
    CHECK_THROWS_WITH(build(sr::replace<>{.fraction = 1.5}),
                      Contains("selfreplay::replace: argument 'fraction' must be in [0, 1], got 1.5"));
    // a part of a sum
    CHECK_THROWS_WITH(build(sr::ntp_pre<>{.coefficient = 1.0} + sr::kl_pre<>{.coefficient = -2.0}),
                      Contains("selfreplay::kl_pre: argument 'coefficient' must be finite and >= 0, got -2"));
    // good parameters, and a user mixer without check(), construct
    CHECK_NOTHROW(build(sr::kl_pre<>{.coefficient = 0.0}));
    CHECK_NOTHROW(build(sr::replace<>{.fraction = 1.0}));
    CHECK_NOTHROW(build(unchecked_mixer{}));
}

TEST_CASE("a strategy rejects bad schedule parameters at its construction") {
    using Catch::Contains;
    // the learning-rate schedule
    CHECK_THROWS_WITH(build(sr::no_replay{}, sr::scale<sr::constant>{.inner = sr::constant{.value = 1.0}, .factor = std::nan("")}),
                      Contains("selfreplay::scale: argument 'factor' must be finite, got nan"));
    // a scheduled coefficient: the schedule's own parameters
    CHECK_THROWS_WITH(build(sr::kl_pre<sr::clamp<sr::constant>>{
                          .coefficient = sr::clamp<sr::constant>{.inner = sr::constant{.value = 1.0}, .lo = 2.0, .hi = 1.0}}),
                      Contains("selfreplay::clamp: argument 'lo' must be <= hi = 1, got 2"));
}

TEST_CASE("the mixers' check() is the check the strategy runs, and the step still checks scheduled values") {
    using Catch::Contains;
    CHECK_THROWS_WITH(sr::kl_pre<>{.coefficient = -1.0}.check(), Contains("'coefficient' must be finite and >= 0"));
    CHECK_NOTHROW(sr::kl_pre<>{.coefficient = 10.0}.check());
    // a schedule whose values go negative passes at construction (its parameters are fine); its
    // value is refused at the step where it is negative
    const auto c = sr::scale<sr::constant>{.inner = sr::constant{.value = 1.0}, .factor = -1.0};
    CHECK_NOTHROW(sr::kl_pre<sr::scale<sr::constant>>{.coefficient = c}.check());
    CHECK_THROWS_WITH(sr::coefficient_at(c, 3, "kl_pre"), Contains("must be finite and >= 0, got -1 at step 3"));
}
