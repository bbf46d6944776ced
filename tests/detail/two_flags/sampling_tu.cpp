// One translation unit of the two-flags test, for the samplers: top-k, top-p (peaked and flat
// rows), typical-p and min-p followed by the categorical draw, and the Gumbel-max draw, on fixed
// rows, on every ISA path this CPU supports; printed exactly (kept tokens hashed, drawn tokens).
// Compiled twice into each program, under the names given by TWO_FLAGS_SAMPLING_FUNCTION, with the
// flags of the test (see CMakeLists.txt).
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "selfreplay/sampling.hpp"

namespace {

namespace sr = selfreplay;

//! A row of V logits without libm (the same inputs in every unit): peaked (spread 8) or flat (0.05).
std::vector<float> make_row(std::size_t V, double spread) {
    std::vector<float> x(V);
    for (std::size_t i = 0; i < V; ++i) x[i] = static_cast<float>(static_cast<double>((i * 7919) % 1000) / 1000.0 * spread);
    return x;
}

template <class Chain, class Draw>
void record(std::string& out, const char* name, const std::vector<float>& row0, const Chain& chain, const Draw& draw) {
    std::vector<float> row = row0;
    sr::sampling_context<float> ctx;
    sr::counter_rng rng{.seed = 11, .stream = 3};
    int tokens[4];
    for (int& t : tokens) {
        row = row0;
        t = sr::sample_token(std::span<float>(row), chain, draw, ctx, rng);
    }
    std::uint64_t h = 1469598103934665603ull; // FNV-1a over the kept set of the last step
    for (std::int32_t id : ctx.support) h = (h ^ static_cast<std::uint64_t>(id)) * 1099511628211ull;
    char line[200];
    std::snprintf(line, sizeof line, "  %s kept %zu %016llx tokens %d %d %d %d\n", name, ctx.support.size(),
                  static_cast<unsigned long long>(h), tokens[0], tokens[1], tokens[2], tokens[3]);
    out.append(line);
}

} // namespace

std::string TWO_FLAGS_SAMPLING_FUNCTION() {
    const std::vector<float> peaked = make_row(5003, 8.0), flat = make_row(5003, 0.05);
    std::string out;
    for (sr::isa p : sr::all_isas) {
        if (!sr::isa_supported(p)) continue;
        sr::set_isa(p);
        out.append(sr::isa_name(p)).append(" sampling\n");
        record(out, "top_k", peaked, sr::top_k{.k = 40}, sr::categorical{});
        record(out, "top_p_peaked", peaked, sr::top_p{.p = 0.9f} | sr::temperature{.t = 0.7f}, sr::categorical{});
        record(out, "top_p_flat", flat, sr::top_p{.p = 0.9f}, sr::categorical{});
        record(out, "typical_p", peaked, sr::typical_p{.p = 0.9f}, sr::categorical{});
        record(out, "min_p", peaked, sr::min_p{.p = 0.05f}, sr::categorical{});
        record(out, "categorical", peaked, sr::processor_chain<>{}, sr::categorical{});
        record(out, "gumbel", peaked, sr::processor_chain<>{}, sr::gumbel_max{});
    }
    sr::reset_isa();
    return out;
}
