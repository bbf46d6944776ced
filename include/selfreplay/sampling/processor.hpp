#pragma once
//! \file
//! The `logits_processor` concept, compile-time chains built with `operator|`, and
//! `process_row` (apply one processor or chain to one row of logits outside a generation loop).

#include <concepts>
#include <cstdint>
#include <span>
#include <tuple>
#include <type_traits>
#include <utility>

#include "selfreplay/error.hpp"
#include "selfreplay/sampling/context.hpp"
#include "selfreplay/tensor/concept.hpp"

namespace selfreplay {

//! The end of the sentence with which a function rejects an argument that does not model
//! `logits_processor` (a string literal, for `static_assert`).
#define SELFREPLAY_PROCESSOR_HINT "(it needs a const member process(std::span<T> row, sampling_context<T>& ctx))"

//! A logits processor modifies one row of V logits in place.
//!
//! \par Required expressions
//! For `p` a const `P`, `row` a `std::span<T>` (`T` float or double), `ctx` a `sampling_context<T>&`:
//! - `p.process(row, ctx)`: processes `row` in place; masked tokens get -inf. `ctx.history` holds
//!   the tokens generated so far for processors that need them (penalties).
//! - optional: `p.check()`, which throws `invalid_argument` for a bad parameter (`check_policy`).
//!
//! \par Models
//! `temperature`, `top_k`, `top_p`, `min_p`, `typical_p`, `repetition_penalty`,
//! `frequency_penalty`, `presence_penalty`, `logit_bias`, `banned_tokens`, and chains of them
//! (`processor_chain`, built with `a | b | c`, applied left to right); `no_processing`.
//!
//! A processor (or a draw) may declare `static constexpr bool support_aware = true;`: a promise
//! that, while `ctx.has_support`, nothing it decides or writes inside the support depends on the
//! row's entries outside it (they count as -inf). Every processor and draw of the library does;
//! `sample_token` skips writing -inf outside the support only when its whole chain and its draw
//! do (`ctx.lazy_masking`), so a custom processor without the declaration sees a fully masked row.
template <class P, class T = float>
concept logits_processor = requires(const P& p, std::span<T> row, sampling_context<T>& ctx) { p.process(row, ctx); };

namespace sampling_detail {
//! True when `P` declares `static constexpr bool support_aware = true` (see `logits_processor`).
template <class P>
inline constexpr bool support_aware = requires { requires P::support_aware; };
} // namespace sampling_detail

//! A processor chain: `std::tuple` of processors applied left to right; the tuple is walked at
//! compile time (a fold over the index sequence), so a chain costs what its members cost.
template <class... P>
struct processor_chain {
    std::tuple<P...> members; //!< the processors in application order
    //! Support-aware when every member is (the empty chain is).
    static constexpr bool support_aware = (sampling_detail::support_aware<P> && ...);

    //! Applies every member to `row`, in order. Throws for an empty row (V = 0), as every member does.
    template <class T>
    void process(std::span<T> row, sampling_context<T>& ctx) const {
        sampling_detail::require_nonempty(row.size(), "processor_chain");
        std::apply([&](const auto&... p) { (p.process(row, ctx), ...); }, members);
    }
    //! Checks every member that has a `check()` (`self_generated` calls it at its construction).
    void check() const {
        std::apply([](const auto&... p) { (check_policy(p), ...); }, members);
    }
};

//! The empty chain: leaves the logits unchanged (plain ancestral sampling with a draw).
using no_processing = processor_chain<>;

namespace sampling_detail {
template <class P>
inline constexpr bool is_chain = false;
template <class... P>
inline constexpr bool is_chain<processor_chain<P...>> = true;

template <class P>
constexpr auto as_tuple(const P& p) {
    if constexpr (is_chain<P>)
        return p.members;
    else
        return std::tuple<P>(p);
}
} // namespace sampling_detail

//! `a | b`: the chain applying `a` then `b` (chains are flattened: `(a | b) | c` holds three
//! members). Both operands must model `logits_processor` for float logits.
template <class A, class B>
    requires logits_processor<A> && logits_processor<B>
constexpr auto operator|(const A& a, const B& b) {
    auto t = std::tuple_cat(sampling_detail::as_tuple(a), sampling_detail::as_tuple(b));
    return std::apply([](auto&&... p) { return processor_chain<std::remove_cvref_t<decltype(p)>...>{{p...}}; }, t);
}

//! Applies processor `p` to one row with a fresh context (convenience outside generation).
//! `history`: the tokens so far (int32 or int64 ids), for penalties.
template <class P, class T>
void process_row(const P& p, std::span<T> row, token_span history = {}) {
    if constexpr (!logits_processor<P, T>) {
        static_assert(detail::always_false<P>,
                      "selfreplay::process_row: argument 'p' does not model selfreplay::logits_processor "
                      SELFREPLAY_PROCESSOR_HINT);
    } else {
        sampling_context<T> ctx;
        ctx.begin_row(history);
        p.process(row, ctx);
    }
}

} // namespace selfreplay
