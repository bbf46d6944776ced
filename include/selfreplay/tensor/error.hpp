#pragma once
//! \file
//! The one exception type selfreplay throws for bad input, and the check that throws it.

#include <charconv>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace selfreplay {

//! Thrown when an argument is invalid: a mismatched shape, a parameter out of its range,
//! a NaN where none is allowed, a token id outside the vocabulary, an empty input.
//! The message names the function, the argument and the reason:
//! `selfreplay::top_p: argument 'p' must be in (0, 1], got 1.5`.
class invalid_argument : public std::invalid_argument {
public:
    //! \param where    the public function or type that rejected the input
    //! \param argument the parameter's name as documented
    //! \param why      what was wrong, with the offending value where useful
    invalid_argument(std::string_view where, std::string_view argument, std::string_view why)
        : std::invalid_argument("selfreplay::" + std::string(where) + ": argument '" +
                                std::string(argument) + "' " + std::string(why)) {}
};

namespace detail {
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
} // namespace detail

//! Throws `invalid_argument(where, argument, why)` unless `condition` holds, where `why` is the
//! concatenation of the parts (text, or numbers as `append_message_part` prints them): they are joined only
//! when it throws, so a check that passes formats nothing (per-token checks stay cheap):
//! `require(p > 0, "top_p", "p", "must be in (0, 1], got ", p)`.
template <class... Parts>
inline void require(bool condition, std::string_view where, std::string_view argument, const Parts&... why) {
    if (condition) [[likely]]
        return;
    std::string message;
    (detail::append_message_part(message, why), ...);
    throw invalid_argument(where, argument, message);
}

} // namespace selfreplay
