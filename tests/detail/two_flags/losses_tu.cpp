// One translation unit of the two-flags test: every loss (float and double, value and gradient) on
// fixed inputs, on every ISA path this CPU supports, printed exactly (hexadecimal floats and a
// hash of the gradient's bits). Compiled twice into each program, under the names given by
// TWO_FLAGS_FUNCTION, with the flags of the test (see CMakeLists.txt).
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "selfreplay/losses.hpp"

namespace {

namespace sr = selfreplay;

template <class T>
std::string run_all() {
    const sr::index_t B = 2, L = 3, V = 2500;
    std::vector<T> s(static_cast<std::size_t>(B * L * V)), r(s.size()), g(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) { // deterministic, no libm: the same inputs in every unit
        s[i] = static_cast<T>(static_cast<double>((i * 7919) % 1000) / 125.0 - 4.0);
        r[i] = static_cast<T>(static_cast<double>((i * 104729) % 997) / 110.0 - 4.5);
    }
    std::vector<std::int32_t> tok(static_cast<std::size_t>(B * L));
    for (std::size_t i = 0; i < tok.size(); ++i) tok[i] = static_cast<std::int32_t>((i * 613) % V);
    const auto sv = sr::make_view(static_cast<const T*>(s.data()), {B, L, V});
    const auto rv = sr::make_view(static_cast<const T*>(r.data()), {B, L, V});
    const auto gv = sr::make_view(g.data(), {B, L, V});
    const auto tv = sr::make_view(static_cast<const std::int32_t*>(tok.data()), {B, L});
    std::string out;
    auto record = [&](const char* name, double value) {
        std::uint64_t h = 1469598103934665603ull; // FNV-1a over the gradient's bytes
        for (T x : g) {
            unsigned char bytes[sizeof(T)];
            std::memcpy(bytes, &x, sizeof(T));
            for (unsigned char b : bytes) h = (h ^ b) * 1099511628211ull;
        }
        char line[160];
        std::snprintf(line, sizeof line, "  %s %a %016llx\n", name, value, static_cast<unsigned long long>(h));
        out += line;
    };
    for (sr::isa p : sr::all_isas) {
        if (!sr::isa_supported(p)) continue;
        sr::set_isa(p);
        out += std::string(sr::isa_name(p)) + (sizeof(T) == 4 ? " float\n" : " double\n");
        record("ce", sr::next_token_loss(sv, tv, gv).value);
        record("kl_forward", sr::kl_divergence(sv, rv, gv, {.temperature = 1.5}).value);
        record("kl_reverse", sr::kl_divergence(sv, rv, gv, {.direction = sr::kl_direction::reverse}).value);
        record("jsd", sr::generalized_jsd(sv, rv, gv, {.beta = 0.3}).value);
    }
    sr::reset_isa();
    return out;
}

} // namespace

std::string TWO_FLAGS_FUNCTION() { return run_all<float>() + run_all<double>(); }
