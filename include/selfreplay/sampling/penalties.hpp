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

#include "selfreplay/sampling/context.hpp"
#include "selfreplay/tensor/error.hpp"

namespace selfreplay {

namespace sampling_detail {
//! Calls f(id, count) once per distinct id of ctx.history (ids checked against V).
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
    for (std::size_t i = 0; i < ctx.ids.size();) {
        const std::int32_t id = ctx.ids[i];
        std::size_t j = i;
        while (j < ctx.ids.size() && ctx.ids[j] == id) ++j;
        f(static_cast<std::size_t>(id), j - i);
        i = j;
    }
}
} // namespace sampling_detail

//! Repetition penalty: for each distinct token already in `ctx.history`, a logit x < 0 becomes
//! x * theta and x >= 0 becomes x / theta (HF, llama.cpp). theta = 1 changes nothing, theta > 1
//! discourages repeats. Throws unless theta is finite and > 0.
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
        if (theta == 1.0f || ctx.history.empty()) return;
        const T th = static_cast<T>(theta);
        sampling_detail::for_each_distinct(ctx, row.size(), "repetition_penalty", [&](std::size_t id, std::size_t) {
            T& x = row[id];
            x = x < T(0) ? x * th : x / th;
        });
    }
};

//! Frequency penalty: x -= alpha * count, count = occurrences of the token in `ctx.history`
//! (OpenAI `frequency_penalty`, llama.cpp `penalty_freq`). Throws unless alpha is finite.
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
        if (alpha == 0.0f || ctx.history.empty()) return;
        sampling_detail::for_each_distinct(ctx, row.size(), "frequency_penalty", [&](std::size_t id, std::size_t count) {
            row[id] -= static_cast<T>(alpha) * static_cast<T>(count);
        });
    }
};

//! Presence penalty: x -= alpha for every token present in `ctx.history` (OpenAI
//! `presence_penalty`, llama.cpp `penalty_present`). Throws unless alpha is finite.
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
        if (alpha == 0.0f || ctx.history.empty()) return;
        sampling_detail::for_each_distinct(ctx, row.size(), "presence_penalty",
                                           [&](std::size_t id, std::size_t) { row[id] -= static_cast<T>(alpha); });
    }
};

} // namespace selfreplay
