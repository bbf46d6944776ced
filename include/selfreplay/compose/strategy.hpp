#pragma once
//! \file
//! `strategy`: a replay strategy fixed at compile time as a bundle of policies: a replay source,
//! a replay mixer, a learning-rate schedule and any metrics, with the training-step plumbing
//! between them (draw, mix, objective) and save/restore of its state.

#include <boost/hana/tuple.hpp>

#include <cstdint>
#include <string>
#include <type_traits>

#include "selfreplay/replay/mixer.hpp"
#include "selfreplay/replay/objective.hpp"
#include "selfreplay/replay/source.hpp"
#include "selfreplay/replay/state_io.hpp"
#include "selfreplay/schedules/basic.hpp"
#include "selfreplay/schedules/concept.hpp"

namespace selfreplay {

namespace detail {
//! The default of a strategy's schedule: `constant{.value = 1}` for `constant`, else `S{}`.
template <class S>
constexpr S default_schedule() {
    if constexpr (std::is_same_v<S, constant>)
        return constant{.value = 1.0};
    else
        return S{};
}
//! The empty result of `check_policies`: a member of `strategy` whose initializer runs the checks.
struct policies_checked {};

//! `check_policy` on each of `policies`.
template <class... P>
constexpr policies_checked check_policies(const P&... policies) {
    (check_policy(policies), ...);
    return {};
}
} // namespace detail

//! A replay strategy: `Source` (a `replay_source`, or a reference to one) x `Mixer` (a
//! `replay_mixer`, whose coefficient or fraction may itself follow a schedule) x `Schedule` (the
//! learning-rate `schedule` the trainer reads through `learning_rate()`; the default constant 1
//! serves as a multiplier of the trainer's own rate) x `Metrics...` (any objects the trainer wants
//! carried with the strategy, e.g. forgetting metrics). An aggregate built with designated
//! initializers: `strategy{.source = std::move(buffer), .mixer = kl_pre{.coefficient = 10.0}}`.
//! The combination is a type, so a grid of strategies is a compile-time product of types
//! (`for_each_combination`, `for_each_strategy`), and a composed step costs what the same calls
//! written by hand cost (benchmarks/bench_replay.cpp, row `compose_overhead`).
//!
//! One training step:
//! ```
//! strat.prepare(x, r);                     // draws r if the mixer needs it, mixes it into x
//! // forward passes: theta(x), and theta(r) / pi(r) / pi(x) as strat.needs_* say
//! auto res = strat.objective(inputs, grads); // loss, components, d loss / d logits
//! double lr = strat.learning_rate();
//! strat.advance();
//! ```
template <class Source, class Mixer, class Schedule = constant, class... Metrics>
struct strategy {
    static_assert(replay_source<std::remove_reference_t<Source>>,
                  "selfreplay::strategy: argument 'source' does not model selfreplay::replay_source " SELFREPLAY_SOURCE_HINT);
    static_assert(replay_mixer<Mixer>,
                  "selfreplay::strategy: argument 'mixer' does not model selfreplay::replay_mixer " SELFREPLAY_MIXER_HINT);
    static_assert(schedule<Schedule>,
                  "selfreplay::strategy: argument 'schedule' does not model selfreplay::schedule " SELFREPLAY_SCHEDULE_HINT);

    using source_type = Source;     //!< the replay source policy
    using mixer_type = Mixer;       //!< the replay mixer policy
    using schedule_type = Schedule; //!< the learning-rate schedule

    Source source;                                 //!< where replay batches come from
    Mixer mixer;                                   //!< how replay enters the loss
    Schedule schedule = detail::default_schedule<Schedule>(); //!< learning rate per step
    boost::hana::tuple<Metrics...> metrics{};      //!< carried along for the trainer
    std::int64_t step = 0;                         //!< the current training step (saved with the state)
    //! Not to be set: its initializer checks the policies at the strategy's construction
    //! (`check_policy` on the mixer and the schedule), so `strategy{.mixer = kl_pre{.coefficient = -1}}`
    //! throws `invalid_argument` there rather than at the first step.
    [[no_unique_address]] detail::policies_checked checked = detail::check_policies(mixer, schedule);

    //! The trainer must draw a replay batch (and pass it to `prepare`).
    static constexpr bool needs_replay_batch = Mixer::needs_replay_batch;
    //! The trainer must run theta on the replay batch.
    static constexpr bool needs_student_replay_logits = Mixer::needs_student_replay_logits;
    //! The trainer must run pi on the replay batch.
    static constexpr bool needs_reference_replay_logits = Mixer::needs_reference_replay_logits;
    //! The trainer must run pi on the training batch.
    static constexpr bool needs_reference_train_logits = Mixer::needs_reference_train_logits;

    //! Before the forward passes: when the mixer needs a replay batch, fills `replay_tokens`
    //! ([R, L] int32) from the source, then overwrites the rows of `train_tokens` ([B, L]) the
    //! mixer replaces (`mix_batch`). Returns the number of replaced rows.
    template <class X, class R>
    index_t prepare(X&& train_tokens, R&& replay_tokens) {
        if constexpr (!needs_replay_batch) {
            return 0;
        } else {
            source.draw(replay_tokens);
            return mix_batch(mixer, step, train_tokens, replay_tokens);
        }
    }

    //! Before the forward passes, for mixers that need no replay batch (`no_replay`, `kl_dwn`):
    //! nothing to draw or mix; returns 0.
    template <class X>
        requires(!Mixer::needs_replay_batch)
    index_t prepare(X&&) const noexcept {
        return 0;
    }

    //! After the forward passes: `evaluate_objective(mixer, step, inputs, gradients, options)`.
    template <class T>
    auto objective(const objective_inputs<T>& inputs, const objective_gradients<T>& gradients = {},
                   const objective_options& options = {}) const {
        return evaluate_objective(mixer, step, inputs, gradients, options);
    }

    //! The learning rate at the current step: `schedule(step)`.
    double learning_rate() const { return static_cast<double>(schedule(step)); }

    //! Moves to the next step.
    void advance() noexcept { ++step; }

    //! Appends the state (step, then the source's state) to `w`.
    void save(state_writer& w) const
        requires saveable<std::remove_reference_t<Source>>
    {
        w.tag("strategy");
        w.put<std::int64_t>(step);
        source.save(w);
    }

    //! A record read and validated by `stage` (see `stageable`): the step and the source's record.
    struct staged_state {
        std::int64_t step = 0; //!< the step to resume at
        typename detail::staged_record<std::remove_reference_t<Source>>::type source; //!< the source's staged record
    };

    //! Reads and validates a state saved by `save` without changing the strategy or its source;
    //! throws `invalid_argument` for a negative step or a source record the source refuses.
    staged_state stage(state_reader& r) const
        requires saveable<std::remove_reference_t<Source>>
    {
        r.expect_tag("strategy");
        const auto s = r.get<std::int64_t>("step");
        if (s < 0) r.fail("holds a negative step");
        return {s, detail::stage_record(source, r)};
    }

    //! Installs a record staged by `stage`.
    void commit(staged_state&& s) noexcept
        requires saveable<std::remove_reference_t<Source>>
    {
        detail::commit_record(source, std::move(s.source));
        step = s.step;
    }

    //! `commit(stage(r))`: throws as `stage` does, and then leaves the strategy unchanged.
    void restore(state_reader& r)
        requires saveable<std::remove_reference_t<Source>>
    {
        commit(stage(r));
    }
};

} // namespace selfreplay
