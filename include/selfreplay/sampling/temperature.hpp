#pragma once
//! \file
//! `temperature{.t}`: logits / t (Hugging Face `TemperatureLogitsWarper`); t = 0 is greedy.

#include <cmath>
#include <cstdint>
#include <span>
#include <string>

#include "selfreplay/sampling/context.hpp"
#include "selfreplay/sampling/kernels.hpp"

namespace selfreplay {

//! Temperature scaling: every logit x becomes x / t (t > 0; t = 1 changes nothing), computed as
//! x * (1 / t), within 1 ulp of the quotient and several times faster than dividing.
//! t = 0 is greedy decoding: only the argmax keeps its logit (the lowest index among tied
//! maxima, as `argmax`), every other token gets -inf (llama.cpp treats t <= 0 the same way;
//! here t < 0 is an error). Throws for t < 0 or non-finite t.
struct temperature {
    float t = 1.0f; //!< temperature, >= 0
    static constexpr bool support_aware = true; //!< see `logits_processor`: ignores entries outside the support

    //! Throws `invalid_argument` unless t is finite and >= 0.
    void check() const {
        require(std::isfinite(t) && t >= 0.0f, "temperature", "t",
                "must be finite and >= 0 (0 means greedy), got ", t);
    }

    //! Applies the temperature to `row` (V logits) in place.
    template <class T>
    void process(std::span<T> row, sampling_context<T>& ctx) const {
        check();
        if (t == 1.0f) return;
        if (t == 0.0f) return keep_argmax(row, ctx);
        const T inv = T(1) / static_cast<T>(t);
        if (ctx.has_support) {
            for (std::int32_t id : ctx.support) row[static_cast<std::size_t>(id)] *= inv;
            return;
        }
        T* x = row.data();
        const std::size_t n = row.size();
        for (std::size_t i = 0; i < n; ++i) x[i] *= inv;
    }

private:
    template <class T>
    static void keep_argmax(std::span<T> row, sampling_context<T>& ctx) {
        using sampling_detail::neg_inf;
        std::int32_t best = -1;
        T m = neg_inf<T>;
        if (ctx.has_support) {
            for (std::int32_t id : ctx.support) {
                const T v = row[static_cast<std::size_t>(id)];
                if (v > m || (v == m && v > neg_inf<T> && id < best)) m = v, best = id;
            }
        } else {
            m = sampling_detail::max_checked(row.data(), row.size(), "temperature");
            for (std::size_t i = 0; i < row.size() && m > neg_inf<T>; ++i)
                if (row[i] == m) {
                    best = static_cast<std::int32_t>(i);
                    break;
                }
        }
        require(best >= 0, "temperature", "logits", "has every entry masked (-inf)");
        if (ctx.has_support) {
            for (std::int32_t id : ctx.support) row[static_cast<std::size_t>(id)] = neg_inf<T>;
        } else if (!ctx.lazy_masking) {
            for (auto& v : row) v = neg_inf<T>;
        }
        row[static_cast<std::size_t>(best)] = m;
        ctx.support.assign(1, best);
        ctx.has_support = true;
    }
};

} // namespace selfreplay
