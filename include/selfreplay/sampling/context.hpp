#pragma once
//! \file
//! `sampling_context<T>`: the per-row state that a processor chain and a draw share while one
//! token is sampled (the tokens so far, the surviving support, scratch buffers reused across
//! rows so that the hot loop does not allocate).

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "selfreplay/error.hpp"
#include "selfreplay/tensor/token_ids.hpp"

namespace selfreplay {

namespace sampling_detail {
//! Every processor, chain and draw starts with this: a row of V = 0 logits has no token to keep
//! or draw, so it is an error (not an empty result).
inline void require_nonempty(std::size_t V, std::string_view where) {
    require(V > 0, where, "logits", "is an empty row (V = 0)");
}
} // namespace sampling_detail

//! Per-row working state of one sampling step, for logits of type `T`.
//! Call `begin_row(history)` before processing each new row; keep one context per thread and
//! reuse it (its buffers keep their capacity).
//!
//! Support invariant: when `has_support` is true, every token whose id is not in `support` has
//! logit -inf (entries of `support` may themselves be -inf). Truncation processors (top-k, top-p,
//! min-p, typical-p, temperature 0) set it, so later processors and the draw touch only the
//! survivors instead of all V logits; processors that only lower logits keep it valid.
//! With `lazy_masking` the tokens outside `support` count as -inf without being written: their
//! entries in the row keep stale values, which support-aware processors and draws never read.
template <class T = float>
struct sampling_context {
    token_span history{}; //!< tokens of this row so far (prompt + generated; int32 or int64 ids), for penalties
    bool has_support = false;                //!< see the support invariant
    std::vector<std::int32_t> support;       //!< ids that may be finite when `has_support`
    //! When true, a truncation of a row without support records the new support but does not
    //! write -inf over the tokens outside it (one store pass of V logits saved). Set by
    //! `sample_token` when its chain and draw are support-aware (`sampling_detail::support_aware`);
    //! false after `begin_row`.
    bool lazy_masking = false;

    //! Starts a new row: sets `history`, clears the support, turns `lazy_masking` off.
    void begin_row(token_span row_history = {}) {
        history = row_history;
        has_support = false;
        support.clear();
        lazy_masking = false;
    }

    // scratch buffers (contents meaningless between calls)
    std::vector<std::int32_t> ids;  //!< scratch: candidate ids
    std::vector<T> values;          //!< scratch: candidate logits
    std::vector<float> weights;     //!< scratch: candidate weights
    std::vector<double> keys;       //!< scratch: sort keys
    std::vector<double> sums;       //!< scratch: block sums of the categorical draw
    std::vector<std::uint8_t> buckets; //!< scratch: histogram bucket of each key
    std::vector<float> chunk_maxima;   //!< scratch: lane maxima per chunk of 64 logits (top-p's pass)
    std::vector<std::int32_t> chunk_list; //!< scratch: chunks holding top-p candidates
};

} // namespace selfreplay
