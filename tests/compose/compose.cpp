// Strategies and compile-time grids: the product is expanded exactly, strategies run the same
// step as the hand-written calls, a user-written source and mixer plug in, state resumes.

#include <boost/hana/tuple.hpp>
#include <boost/hana/type.hpp>

#include <catch2/catch.hpp>
#include <random>
#include <set>
#include <string>
#include <typeinfo>
#include <vector>

#include "selfreplay/compose.hpp"
#include "selfreplay/replay.hpp"
#include "selfreplay/schedules.hpp"

namespace hana = boost::hana;
namespace sr = selfreplay;

namespace {

// A user-written source, no registration: every row is (k, k+1, ...) for a counter k.
struct counting_source {
    sr::index_t length = 4;
    std::int32_t next = 0;
    sr::index_t seq_len() const { return length; }
    void draw(sr::token_batch_view out) {
        for (sr::index_t r = 0; r < out.extent(0); ++r, ++next)
            for (sr::index_t t = 0; t < out.extent(1); ++t) out(r, t) = (next + static_cast<std::int32_t>(t)) % 7;
    }
};

// A user-written mixer: c * NTP on the replay batch, under its own name.
struct my_mixer {
    double c = 2.0;
    static constexpr bool needs_replay_batch = true;
    static constexpr bool needs_student_replay_logits = true;
    static constexpr bool needs_reference_replay_logits = false;
    static constexpr bool needs_reference_train_logits = false;
    static constexpr std::size_t terms = 1;
    sr::index_t replace_rows(std::int64_t, sr::index_t) const { return 0; }
    template <class T>
    void add_terms(sr::objective_context<T>& ctx) const { ctx.add_replay_ntp("mine", c); }
};

static_assert(sr::replay_source<counting_source> && sr::replay_mixer<my_mixer>);

struct buffers {
    std::vector<std::int32_t> x, r;
    std::vector<float> theta_x, theta_r, pi_x, pi_r, dx, dr;
    sr::index_t B, R, L, V;
    buffers(sr::index_t b, sr::index_t rr, sr::index_t l, sr::index_t v) : B(b), R(rr), L(l), V(v) {
        std::mt19937 g(7);
        std::normal_distribution<float> n(0.f, 2.f);
        x.resize(static_cast<std::size_t>(B * L));
        r.resize(static_cast<std::size_t>(R * L));
        for (auto& e : x) e = static_cast<std::int32_t>(g() % static_cast<unsigned>(V));
        for (auto* v_ : {&theta_x, &pi_x, &dx}) v_->resize(static_cast<std::size_t>(B * L * V));
        for (auto* v_ : {&theta_r, &pi_r, &dr}) v_->resize(static_cast<std::size_t>(R * L * V));
        for (auto* v_ : {&theta_x, &pi_x, &theta_r, &pi_r})
            for (auto& e : *v_) e = n(g);
    }
    sr::objective_inputs<float> inputs() const {
        return {.train_tokens = sr::make_view(x.data(), {B, L}),
                .student_train_logits = sr::make_view(theta_x.data(), {B * L, V}),
                .replay_tokens = sr::make_view(r.data(), {R, L}),
                .student_replay_logits = sr::make_view(theta_r.data(), {R * L, V}),
                .reference_replay_logits = sr::make_view(pi_r.data(), {R * L, V}),
                .reference_train_logits = sr::make_view(pi_x.data(), {B * L, V})};
    }
    sr::objective_gradients<float> grads() {
        return {.train = sr::make_view(dx.data(), {B * L, V}), .replay = sr::make_view(dr.data(), {R * L, V})};
    }
};

} // namespace

TEST_CASE("for_each_combination expands the cartesian product of type lists at compile time") {
    using namespace sr;
    std::vector<std::string> seen;
    for_each_combination(hana::tuple_t<reservoir_buffer, ring_buffer>, hana::tuple_t<no_replay, ntp_pre<>, kl_pre<constant>>,
                         hana::tuple_t<constant, warmup_cosine>, [&](auto source, auto mixer, auto schedule_t) {
                             using S = typename decltype(source)::type;
                             using M = typename decltype(mixer)::type;
                             using Sch = typename decltype(schedule_t)::type;
                             static_assert(replay_source<S> && replay_mixer<M> && sr::schedule<Sch>);
                             seen.push_back(std::string(typeid(strategy<S, M, Sch>).name()));
                         });
    CHECK(seen.size() == 12);
    CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == 12);
    static_assert(grid_size(hana::tuple_t<int, long>, hana::tuple_t<int, long, char>, hana::tuple_t<float, double>) == 12);
    // row-major order: the last axis varies fastest
    std::vector<int> order;
    for_each_combination(hana::tuple_t<char, short>, hana::tuple_t<int, long>,
                         [&](auto a, auto b) { order.push_back(int(sizeof(typename decltype(a)::type)) * 10 + int(sizeof(typename decltype(b)::type))); });
    CHECK(order == std::vector<int>{14, 18, 24, 28});
}

TEST_CASE("for_each_strategy instantiates one strategy per combination of policy values, each fresh") {
    sr::reservoir_buffer res({.capacity = 8, .seq_len = 4, .seed = 1});
    std::vector<std::int32_t> rows(40);
    for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<std::int32_t>(i % 7);
    res.add(sr::make_view(rows.data(), {10, 4}));
    buffers d(2, 3, 4, 7);
    int calls = 0;
    std::set<std::string> names;
    sr::for_each_strategy(hana::make_tuple(res, counting_source{}),
                          hana::make_tuple(sr::ntp_pre<>{.coefficient = 10.0}, sr::kl_pre<>{.coefficient = 3.0}, my_mixer{}),
                          hana::make_tuple(sr::constant{.value = 1e-3}), [&](auto& strat) {
                              ++calls;
                              CHECK(strat.step == 0);
                              CHECK(strat.learning_rate() == 1e-3);
                              strat.prepare(sr::make_view(d.x.data(), {d.B, d.L}), sr::make_view(d.r.data(), {d.R, d.L}));
                              const auto res_c = strat.objective(d.inputs(), d.grads());
                              const auto res_h = sr::evaluate_objective(strat.mixer, 0, d.inputs());
                              CHECK(res_c.total == res_h.total);
                              names.insert(std::string(res_c.terms[0].name));
                              strat.advance();
                              CHECK(strat.step == 1);
                          });
    CHECK(calls == 6);
    // mixers without a replay batch need no replay buffer at all
    sr::strategy<counting_source, sr::kl_dwn<>> plain{.source = counting_source{}, .mixer = sr::kl_dwn<>{.coefficient = 1.0}};
    CHECK(plain.prepare(sr::make_view(d.x.data(), {d.B, d.L})) == 0);
    CHECK(plain.source.next == 0);
    CHECK(names == std::set<std::string>{"ntp_pre", "kl_pre", "mine"});
    CHECK(res.size() == 8); // the original was copied, not consumed
}

TEST_CASE("a composed step equals the hand-written step") {
    buffers d(4, 4, 6, 9), h(4, 4, 6, 9);
    sr::ring_buffer source({.capacity = 16, .seq_len = 6, .seed = 3}), hand_source({.capacity = 16, .seq_len = 6, .seed = 3});
    std::vector<std::int32_t> rows(16 * 6);
    for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<std::int32_t>((i * 5) % 9);
    source.add(sr::make_view(rows.data(), {16, 6}));
    hand_source.add(sr::make_view(rows.data(), {16, 6}));
    sr::strategy<sr::ring_buffer, sr::mixer_sum<sr::replace<>, sr::kl_pre<>>, sr::warmup_constant> strat{.source = std::move(source),
                       .mixer = sr::replace<>{.fraction = 0.5} + sr::kl_pre<>{.coefficient = 10.0},
                       .schedule = sr::warmup_constant{.peak = 1e-3, .warmup_steps = 10}};
    static_assert(decltype(strat)::needs_reference_replay_logits && !decltype(strat)::needs_reference_train_logits);
    for (int step = 0; step < 3; ++step) {
        const auto replaced = strat.prepare(sr::make_view(d.x.data(), {d.B, d.L}), sr::make_view(d.r.data(), {d.R, d.L}));
        const auto rc = strat.objective(d.inputs(), d.grads());
        // by hand
        hand_source.draw(sr::make_view(h.r.data(), {h.R, h.L}));
        for (sr::index_t i = 0; i < 2 * h.L; ++i) h.x[static_cast<std::size_t>(i)] = h.r[static_cast<std::size_t>(i)];
        const auto hx = sr::make_view(static_cast<const std::int32_t*>(h.x.data()), {h.B, h.L});
        const double ntp = sr::next_token_loss(sr::make_view(static_cast<const float*>(h.theta_x.data()), {h.B * h.L, h.V}), hx,
                                               sr::make_view(h.dx.data(), {h.B * h.L, h.V})).value;
        const double kl = sr::kl_divergence(sr::make_view(static_cast<const float*>(h.theta_r.data()), {h.R * h.L, h.V}),
                                            sr::make_view(static_cast<const float*>(h.pi_r.data()), {h.R * h.L, h.V}),
                                            sr::make_view(h.dr.data(), {h.R * h.L, h.V}),
                                            {.sequence_length = h.L, .scale = 10.0}).value;
        CHECK(replaced == 2);
        CHECK(d.x == h.x);
        CHECK(d.r == h.r);
        CHECK(rc.total == ntp + kl);
        CHECK(d.dx == h.dx);
        CHECK(d.dr == h.dr);
        CHECK(strat.learning_rate() == Approx(1e-3 * step / 10.0));
        strat.advance();
    }
}

TEST_CASE("strategy save/restore resumes the step and the source's batches") {
    auto make = [] {
        sr::reservoir_buffer b({.capacity = 8, .seq_len = 3, .seed = 2});
        std::vector<std::int32_t> rows(60);
        for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<std::int32_t>(i);
        b.add(sr::make_view(rows.data(), {20, 3}));
        return sr::strategy<sr::reservoir_buffer, sr::ntp_pre<>>{.source = std::move(b), .mixer = sr::ntp_pre<>{.coefficient = 10.0}};
    };
    auto a = make();
    std::vector<std::int32_t> x(12), r(12);
    auto xv = sr::make_view(x.data(), {4, 3});
    auto rv = sr::make_view(r.data(), {4, 3});
    for (int i = 0; i < 5; ++i, a.advance()) a.prepare(xv, rv);
    const auto image = sr::state_bytes(a);
    std::vector<std::int32_t> expected;
    for (int i = 0; i < 100; ++i) {
        a.prepare(xv, rv);
        expected.insert(expected.end(), r.begin(), r.end());
        a.advance();
    }
    auto b = make();
    sr::restore_state_bytes(image, "memory", b);
    CHECK(b.step == 5);
    std::vector<std::int32_t> got;
    for (int i = 0; i < 100; ++i) {
        b.prepare(xv, rv);
        got.insert(got.end(), r.begin(), r.end());
        b.advance();
    }
    CHECK(got == expected);
    CHECK(b.step == a.step);
}
