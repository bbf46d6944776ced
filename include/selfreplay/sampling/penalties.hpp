#pragma once
//! \file
//! Penalties on the tokens generated so far (`ctx.history`): `repetition_penalty`
//! (Keskar et al. 2019, CTRL; HF `RepetitionPenaltyLogitsProcessor`), `frequency_penalty` and
//! `presence_penalty` (OpenAI API; llama.cpp `penalties`).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>

#include "selfreplay/error.hpp"
#include "selfreplay/sampling/context.hpp"
#include "selfreplay/sampling/kernels.hpp"

namespace selfreplay {

namespace sampling_detail {
//! Calls f(id, count) once per distinct id of ctx.history (ids checked against V). With
//! `ctx.lazy_masking` and a support, ids outside the support are skipped: their entries are stale
//! (they count as -inf, which every penalty leaves -inf), so they are neither read nor changed.
template <class T, class F>
void for_each_distinct(sampling_context<T>& ctx, std::size_t V, std::string_view where, F f) {
    ctx.ids.clear();
    for (std::size_t i = 0; i < ctx.history.size(); ++i) {
        const std::int64_t id = ctx.history[i];
        require(id >= 0 && static_cast<std::size_t>(id) < V, where, "history",
                "contains token id ", id, " outside the vocabulary [0, ", V, ")");
        ctx.ids.push_back(static_cast<std::int32_t>(id));
    }
    std::sort(ctx.ids.begin(), ctx.ids.end());
    const bool skip_stale = ctx.has_support && ctx.lazy_masking;
    if (skip_stale) { // ctx.buckets[id] = 1 for the support's ids, 0 for the history's others
        ctx.buckets.resize(V);
        for (std::int32_t id : ctx.ids)
            if (id >= 0 && static_cast<std::size_t>(id) < V) ctx.buckets[static_cast<std::size_t>(id)] = 0;
        for (std::int32_t id : ctx.support) ctx.buckets[static_cast<std::size_t>(id)] = 1;
    }
    for (std::size_t i = 0; i < ctx.ids.size();) {
        const std::int32_t id = ctx.ids[i];
        std::size_t j = i;
        while (j < ctx.ids.size() && ctx.ids[j] == id) ++j;
        if (!skip_stale || ctx.buckets[static_cast<std::size_t>(id)] != 0) f(static_cast<std::size_t>(id), j - i);
        i = j;
    }
}

//! The checks every penalty makes before it changes anything, even when it is a no-op (theta = 1,
//! alpha = 0): a non-empty row and history ids in [0, V).
template <class T>
void check_history(const sampling_context<T>& ctx, std::size_t V, std::string_view where) {
    require_nonempty(V, where);
    for (std::size_t i = 0; i < ctx.history.size(); ++i) {
        const std::int64_t id = ctx.history[i];
        require(id >= 0 && static_cast<std::uint64_t>(id) < V, where, "history",
                "contains token id ", id, " outside the vocabulary [0, ", V, ")");
    }
}

//! Stores a penalised logit: a finite logit must stay finite (else the penalty `argument` is too
//! large for it, an error rather than a silent ban or a later +inf); -inf, NaN and +inf pass
//! through (NaN and +inf are reported by the next full-row pass or the draw).
template <class T>
void store_penalised(T& x, T y, std::string_view where, std::string_view argument) {
    const bool was_finite = x > neg_inf<T> && x < pos_inf<T>;
    require(!was_finite || (y > neg_inf<T> && y < pos_inf<T>), where, argument,
            "turns the finite logit ", double(x), " into ", double(y), " (overflow)");
    x = y;
}
} // namespace sampling_detail

//! Repetition penalty: for each distinct token already in `ctx.history`, a logit x < 0 becomes
//! x * theta and x >= 0 becomes x / theta (HF, llama.cpp). theta = 1 changes nothing, theta > 1
//! discourages repeats. Throws unless theta is finite and > 0; for an empty row or a history id
//! outside [0, V) (also when theta = 1); when a penalised finite logit overflows to +-inf.
struct repetition_penalty {
    float theta = 1.0f; //!< penalty factor, > 0
    static constexpr bool support_aware = true; //!< see `logits_processor`: ignores entries outside the support

    //! Throws `invalid_argument` unless theta is finite and > 0.
    void check() const {
        require(std::isfinite(theta) && theta > 0.0f, "repetition_penalty", "theta",
                "must be finite and > 0, got ", theta);
    }
    //! Applies the penalty to `row` in place.
    template <class T>
    void process(std::span<T> row, sampling_context<T>& ctx) const {
        check();
        sampling_detail::check_history(ctx, row.size(), "repetition_penalty");
        if (theta == 1.0f || ctx.history.empty()) return;
        const T th = static_cast<T>(theta);
        sampling_detail::for_each_distinct(ctx, row.size(), "repetition_penalty", [&](std::size_t id, std::size_t) {
            T& x = row[id];
            sampling_detail::store_penalised(x, x < T(0) ? x * th : x / th, "repetition_penalty", "theta");
        });
    }
};

//! Frequency penalty: x -= alpha * count, count = occurrences of the token in `ctx.history`
//! (OpenAI `frequency_penalty`, llama.cpp `penalty_freq`). Throws unless alpha is finite; for an
//! empty row or a history id outside [0, V) (also when alpha = 0); when a penalised finite logit
//! overflows to +-inf.
struct frequency_penalty {
    float alpha = 0.0f; //!< penalty per occurrence (may be negative)
    static constexpr bool support_aware = true; //!< see `logits_processor`: ignores entries outside the support

    //! Throws `invalid_argument` unless alpha is finite.
    void check() const {
        require(std::isfinite(alpha), "frequency_penalty", "alpha", "must be finite, got ", alpha);
    }
    //! Applies the penalty to `row` in place.
    template <class T>
    void process(std::span<T> row, sampling_context<T>& ctx) const {
        check();
        sampling_detail::check_history(ctx, row.size(), "frequency_penalty");
        if (alpha == 0.0f || ctx.history.empty()) return;
        sampling_detail::for_each_distinct(ctx, row.size(), "frequency_penalty", [&](std::size_t id, std::size_t count) {
            sampling_detail::store_penalised(row[id], row[id] - static_cast<T>(alpha) * static_cast<T>(count),
                                             "frequency_penalty", "alpha");
        });
    }
};

//! Presence penalty: x -= alpha for every token present in `ctx.history` (OpenAI
//! `presence_penalty`, llama.cpp `penalty_present`). Throws unless alpha is finite; for an empty
//! row or a history id outside [0, V) (also when alpha = 0); when a penalised finite logit
//! overflows to +-inf.
struct presence_penalty {
    float alpha = 0.0f; //!< penalty per present token (may be negative)
    static constexpr bool support_aware = true; //!< see `logits_processor`: ignores entries outside the support

    //! Throws `invalid_argument` unless alpha is finite.
    void check() const {
        require(std::isfinite(alpha), "presence_penalty", "alpha", "must be finite, got ", alpha);
    }
    //! Applies the penalty to `row` in place.
    template <class T>
    void process(std::span<T> row, sampling_context<T>& ctx) const {
        check();
        sampling_detail::check_history(ctx, row.size(), "presence_penalty");
        if (alpha == 0.0f || ctx.history.empty()) return;
        sampling_detail::for_each_distinct(ctx, row.size(), "presence_penalty", [&](std::size_t id, std::size_t) {
            sampling_detail::store_penalised(row[id], row[id] - static_cast<T>(alpha), "presence_penalty", "alpha");
        });
    }
};

} // namespace selfreplay
