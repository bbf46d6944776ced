#pragma once
//! \file
//! `selfreplay::invalid_argument`: the one exception type selfreplay throws for bad input.

#include <stdexcept>
#include <string>
#include <string_view>

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

} // namespace selfreplay
