#pragma once
//! \file
//! The replay mixers of the paper's reference code (`reg.method`): `no_replay` (none),
//! `replace`, `ntp_pre`, `kl_pre`, `kl_dwn`, and `mixer_sum` to combine them. Coefficients and
//! fractions are numbers or any `schedule` (`kl_pre{.coefficient = constant{.value = 10}}`);
//! they are checked at each step they are used.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <tuple>
#include <utility>

#include "selfreplay/replay/mixer.hpp"

namespace selfreplay {

//! No replay (`reg.method = null`): loss = NTP_theta(x). Needs no extra forward pass.
struct no_replay {
    static constexpr bool needs_replay_batch = false;            //!< no replay batch
    static constexpr bool needs_student_replay_logits = false;   //!< no extra forward pass
    static constexpr bool needs_reference_replay_logits = false; //!< no extra forward pass
    static constexpr bool needs_reference_train_logits = false;  //!< no extra forward pass
    static constexpr std::size_t terms = 0;                      //!< adds nothing

    index_t replace_rows(std::int64_t, index_t) const noexcept { return 0; } //!< 0
    template <class T>
    void add_terms(objective_context<T>&) const noexcept {} //!< nothing
};

//! Replacement (`reg.method = "replace"`, and the reference code's `mix`): rows 0 .. n-1 of the
//! training batch, n = floor(f * B), are overwritten by rows 0 .. n-1 of the replay batch before
//! the forward pass (`batch[:n] = batch_prev[:n]` in the reference code); the loss is then plain
//! NTP on the mixed batch. Needs a replay batch of at least n rows, no extra forward pass.
//! `fraction` f in [0, 1] (the paper uses 1/256 .. 1/2), a number or a schedule.
template <class F = double>
struct replace {
    F fraction = 0.0; //!< f: the share of training rows replaced

    static constexpr bool needs_replay_batch = true;             //!< replay rows to copy
    static constexpr bool needs_student_replay_logits = false;   //!< no extra forward pass
    static constexpr bool needs_reference_replay_logits = false; //!< no extra forward pass
    static constexpr bool needs_reference_train_logits = false;  //!< no extra forward pass
    static constexpr std::size_t terms = 0;                      //!< no additive term

    //! Checks `fraction` (a number: in [0, 1]; a schedule: its own `check()`); `strategy` calls it
    //! at its construction. Throws `invalid_argument`.
    constexpr void check() const { check_fraction(fraction, "replace"); }
    //! floor(f(step) * B); throws `invalid_argument` when f(step) is outside [0, 1].
    index_t replace_rows(std::int64_t step, index_t batch_rows) const {
        const double f = fraction_at(fraction, step, "replace");
        return static_cast<index_t>(std::floor(f * static_cast<double>(batch_rows)));
    }
    template <class T>
    void add_terms(objective_context<T>&) const noexcept {} //!< nothing
};

//! Next-token replay (`reg.method = "ntp_pre"`): adds c * NTP_theta(r) on the replay batch r.
//! Needs theta's logits on r. `coefficient` c >= 0 (the paper uses 10), a number or a schedule.
template <class C = double>
struct ntp_pre {
    C coefficient = 1.0; //!< c

    static constexpr bool needs_replay_batch = true;             //!< replay tokens
    static constexpr bool needs_student_replay_logits = true;    //!< theta on the replay batch
    static constexpr bool needs_reference_replay_logits = false; //!< no
    static constexpr bool needs_reference_train_logits = false;  //!< no
    static constexpr std::size_t terms = 1;                      //!< "ntp_pre"

    //! Checks `coefficient` (a number: finite and >= 0; a schedule: its own `check()`); `strategy`
    //! calls it at its construction. Throws `invalid_argument`.
    constexpr void check() const { check_coefficient(coefficient, "ntp_pre"); }
    index_t replace_rows(std::int64_t, index_t) const noexcept { return 0; } //!< 0
    //! c(step) * NTP_theta(r); throws `invalid_argument` when c(step) is negative or not finite.
    template <class T>
    void add_terms(objective_context<T>& ctx) const {
        ctx.add_replay_ntp("ntp_pre", coefficient_at(coefficient, ctx.step(), "ntp_pre"));
    }
};

//! KL replay (`reg.method = "kl_pre"`): adds c * KL(pi || theta) on the replay batch, per
//! position from log-softmax of each model's logits, last position not counted, mean over R*L.
//! Needs theta's and pi's logits on the replay batch. `direction = reverse` gives KL(theta || pi).
template <class C = double>
struct kl_pre {
    C coefficient = 1.0;                            //!< c
    kl_direction direction = kl_direction::forward; //!< forward KL(pi || theta) (the paper)

    static constexpr bool needs_replay_batch = true;            //!< replay tokens
    static constexpr bool needs_student_replay_logits = true;   //!< theta on the replay batch
    static constexpr bool needs_reference_replay_logits = true; //!< pi on the replay batch
    static constexpr bool needs_reference_train_logits = false; //!< no
    static constexpr std::size_t terms = 1;                     //!< "kl_pre"

    //! Checks `coefficient` (a number: finite and >= 0; a schedule: its own `check()`); `strategy`
    //! calls it at its construction. Throws `invalid_argument`.
    constexpr void check() const { check_coefficient(coefficient, "kl_pre"); }
    index_t replace_rows(std::int64_t, index_t) const noexcept { return 0; } //!< 0
    //! c(step) * KL on the replay batch; throws when c(step) is negative or not finite.
    template <class T>
    void add_terms(objective_context<T>& ctx) const {
        ctx.add_replay_kl("kl_pre", coefficient_at(coefficient, ctx.step(), "kl_pre"), direction);
    }
};

//! KL on the training batch (`reg.method = "kl_dwn"`): adds c * KL(pi || theta) on the training
//! batch itself. Needs no replay batch, but pi's logits on the training batch.
template <class C = double>
struct kl_dwn {
    C coefficient = 1.0;                            //!< c
    kl_direction direction = kl_direction::forward; //!< forward KL(pi || theta) (the paper)

    static constexpr bool needs_replay_batch = false;            //!< no replay batch
    static constexpr bool needs_student_replay_logits = false;   //!< no
    static constexpr bool needs_reference_replay_logits = false; //!< no
    static constexpr bool needs_reference_train_logits = true;   //!< pi on the training batch
    static constexpr std::size_t terms = 1;                      //!< "kl_dwn"

    //! Checks `coefficient` (a number: finite and >= 0; a schedule: its own `check()`); `strategy`
    //! calls it at its construction. Throws `invalid_argument`.
    constexpr void check() const { check_coefficient(coefficient, "kl_dwn"); }
    index_t replace_rows(std::int64_t, index_t) const noexcept { return 0; } //!< 0
    //! c(step) * KL on the training batch; throws when c(step) is negative or not finite.
    template <class T>
    void add_terms(objective_context<T>& ctx) const {
        ctx.add_train_kl("kl_dwn", coefficient_at(coefficient, ctx.step(), "kl_dwn"), direction);
    }
};

//! The sum of several mixers: their terms are all added (in order), the forward passes needed are
//! the union of theirs, and their replaced rows add up (at most B). Built with `a + b`.
template <replay_mixer... M>
struct mixer_sum {
    std::tuple<M...> parts; //!< the mixers

    static constexpr bool needs_replay_batch = (M::needs_replay_batch || ...);                       //!< any
    static constexpr bool needs_student_replay_logits = (M::needs_student_replay_logits || ...);     //!< any
    static constexpr bool needs_reference_replay_logits = (M::needs_reference_replay_logits || ...); //!< any
    static constexpr bool needs_reference_train_logits = (M::needs_reference_train_logits || ...);   //!< any
    static constexpr std::size_t terms = (std::size_t{0} + ... + M::terms);                          //!< total

    //! Sum of the parts' replaced rows; throws `invalid_argument` when it exceeds B.
    index_t replace_rows(std::int64_t step, index_t batch_rows) const {
        const index_t n = std::apply([&](const auto&... m) { return (index_t{0} + ... + static_cast<index_t>(m.replace_rows(step, batch_rows))); }, parts);
        require(n <= batch_rows, "mixer_sum", "parts", "replace ", n, " rows in total, more than the batch's ", batch_rows);
        return n;
    }
    //! Each part's terms, in order.
    template <class T>
    void add_terms(objective_context<T>& ctx) const {
        std::apply([&](const auto&... m) { (m.add_terms(ctx), ...); }, parts);
    }
    //! Checks every part that has a `check()`.
    constexpr void check() const {
        std::apply([](const auto&... m) { (check_policy(m), ...); }, parts);
    }
};

namespace detail {
template <class M>
struct mixer_parts {
    static auto get(const M& m) { return std::tuple<M>(m); }
};
template <class... M>
struct mixer_parts<mixer_sum<M...>> {
    static auto get(const mixer_sum<M...>& m) { return m.parts; }
};
} // namespace detail

//! `a + b`: a `mixer_sum` of both (sums are flattened: `(a + b) + c` has three parts).
template <replay_mixer A, replay_mixer B>
auto operator+(const A& a, const B& b) {
    auto parts = std::tuple_cat(detail::mixer_parts<A>::get(a), detail::mixer_parts<B>::get(b));
    return std::apply([](auto&&... m) { return mixer_sum<std::decay_t<decltype(m)>...>{{m...}}; }, parts);
}

} // namespace selfreplay
