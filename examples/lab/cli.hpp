#pragma once
//! \file
//! Command-line parsing of the lab (toy, grid and text modes) with CLI11 (Debian's
//! `libcli11-dev`): every flag with its range, its default shown in `--help`, and a parse error
//! that names the flag.

#include <optional>
#include <string>

#include <CLI/CLI.hpp>

namespace lab::cli {

//! Adds `--name VALUE` writing into `target`, accepted only in [lo, hi] (a number of type T).
template <class T>
CLI::Option* ranged(CLI::App& app, const std::string& name, T& target, T lo, T hi, const std::string& help) {
    return app.add_option(name, target, help)->check(CLI::Range(lo, hi))->capture_default_str();
}

//! Adds `--name V1,V2,...` (each value in [lo, hi]) writing into the vector `target`.
template <class T>
CLI::Option* ranged_list(CLI::App& app, const std::string& name, std::vector<T>& target, T lo, T hi, const std::string& help) {
    return app.add_option(name, target, help)->delimiter(',')->check(CLI::Range(lo, hi))->capture_default_str();
}

//! Parses argv (argv[0] is the program or mode name) into `app`'s options. Returns the exit code
//! when the program must stop (0 after --help, 2 after a parse error, printed by CLI11 with the
//! flag it names), or nothing when it should go on.
inline std::optional<int> parse(CLI::App& app, int argc, const char* const* argv) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? 0 : 2;
    }
    return std::nullopt;
}

}  // namespace lab::cli
