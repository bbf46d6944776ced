#pragma once
//! \file
//! Errors, at run time and at compile time: `require`, the one check of selfreplay that throws
//! `invalid_argument` for bad input (used by every layer, and usable by user-written policies),
//! and `detail::always_false`, with which a fallback overload stops compilation with one sentence
//! naming the function, the argument and the concept it does not model (docs/design.md).

#include <charconv>
#include <string>
#include <string_view>
#include <type_traits>

#include "selfreplay/invalid_argument.hpp"

namespace selfreplay {

namespace detail {
//! False for every `T`, but dependent on it: `static_assert(always_false<A>, "...")` fires only
//! when the template holding it is instantiated.
template <class T>
inline constexpr bool always_false = false;

//! Appends one part of an error message: text as it is.
inline void append_message_part(std::string& message, std::string_view part) { message += part; }
//! Appends one part of an error message: an integer as `std::to_string` prints it, a floating
//! point number in its shortest round-trip form (`std::to_chars`: 1e-38, not 0.000000).
template <class N>
    requires std::is_arithmetic_v<N>
inline void append_message_part(std::string& message, N number) {
    if constexpr (std::is_floating_point_v<N>) {
        char text[64];
        const auto end = std::to_chars(text, text + sizeof text, number).ptr;
        message.append(text, end);
    } else {
        message += std::to_string(number);
    }
}

//! The failing branch of `require`, out of line (and not constexpr: a failed check in a
//! constant expression stops compilation).
template <class... Parts>
[[noreturn]] void throw_invalid_argument(std::string_view where, std::string_view argument, const Parts&... why) {
    std::string message;
    (append_message_part(message, why), ...);
    throw invalid_argument(where, argument, message);
}
} // namespace detail

//! Throws `invalid_argument(where, argument, why)` unless `condition` holds, where `why` is the
//! concatenation of the parts (text, or numbers as `append_message_part` prints them): they are
//! joined only when it throws, so a check that passes formats nothing (per-token checks stay
//! cheap): `require(p > 0, "top_p", "p", "must be in (0, 1], got ", p)`. Usable in constant
//! expressions (schedules): a check that passes is a constant expression.
template <class... Parts>
constexpr void require(bool condition, std::string_view where, std::string_view argument, const Parts&... why) {
    if (!condition) [[unlikely]]
        detail::throw_invalid_argument(where, argument, why...);
}

//! Checks a policy's parameters now when the policy has a `check()` (schedules, processors, the
//! library's mixers: aggregates, which keep designated initializers and so check on request);
//! a policy without one is accepted as it is. Library objects call it on the policies they are
//! built from, at their construction (the rule in docs/design.md, "Validation").
template <class P>
constexpr void check_policy(const P& policy) {
    if constexpr (requires { policy.check(); })
        policy.check();
}

} // namespace selfreplay
