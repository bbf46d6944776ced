#pragma once
//! \file
//! `temperature{.t}`: logits / t (Hugging Face `TemperatureLogitsWarper`); t = 0 is greedy.

#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>

#include "selfreplay/sampling/context.hpp"
#include "selfreplay/sampling/kernels.hpp"

namespace selfreplay {

//! Temperature scaling: every logit x becomes x / t (t > 0; t = 1 changes nothing and reads
//! nothing), computed as x * (1 / t) (a multiplication per logit, not a division), within 1 ulp
//! of the quotient. t = 0 is greedy decoding: only the argmax keeps its logit (the lowest index among
//! tied maxima, as `argmax`), every other token gets -inf (llama.cpp treats t <= 0 the same way;
//! here t < 0 is an error). Throws for t < 0 or non-finite t, for an empty row, for a NaN or +inf
//! logit (t != 1; only the support is read when there is one), and when a finite logit divided
//! by t is not a finite `T` (t below max |x| / max(T), e.g. 1e-38 for logits of 5 in float):
//! such a t is accepted by `check()` but rejected on the row it would overflow.
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
        using sampling_detail::neg_inf;
        using sampling_detail::pos_inf;
        check();
        sampling_detail::require_nonempty(row.size(), "temperature");
        if (t == 1.0f) return;
        if (t == 0.0f) return keep_argmax(row, ctx);
        const T inv = T(1) / static_cast<T>(t); // +inf when t is below 1 / max(T)
        // bad input (NaN, +inf) and overflow (a finite logit that leaves the finite range) are
        // collected branch-free in the same pass (a vector kernel on float rows); -inf stays -inf
        bool bad_logit = false, overflow = false;
        auto scale = [&](T& x) {
            const T y = x * inv;
            bad_logit |= !(x < pos_inf<T>);
            overflow |= (x < pos_inf<T>) & (x > neg_inf<T>) & !((y < pos_inf<T>) & (y > neg_inf<T>));
            x = y;
        };
        if (ctx.has_support) {
            if constexpr (std::is_same_v<T, float>)
                sampling_detail::scale_at_checked(row.data(), ctx.support.data(), ctx.support.size(), inv, bad_logit, overflow);
            else
                for (std::int32_t id : ctx.support) scale(row[static_cast<std::size_t>(id)]);
        } else {
            sampling_detail::scale_checked(row.data(), row.size(), inv, bad_logit, overflow);
        }
        if (bad_logit) sampling_detail::throw_bad_logit("temperature");
        require(!overflow, "temperature", "t",
                "is too small for these logits: a finite logit divided by t = ", t, " overflows ",
                sizeof(T) == 4 ? "float" : "double", " (t must be at least max |logit| / ",
                std::numeric_limits<T>::max(), ")");
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
                if (std::isnan(v) || v == sampling_detail::pos_inf<T>) sampling_detail::throw_bad_logit("temperature");
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
