// Bad input is rejected with selfreplay::invalid_argument naming the function and the argument.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "selfreplay/losses.hpp"

namespace {
namespace sr = selfreplay;
using Catch::Matchers::Contains;
} // namespace

TEST_CASE("non-finite logits are rejected naming the argument and position", "[losses][errors]") {
    std::vector<float> s(2 * 3 * 5, 0.5f), r(s.size(), 0.25f), g(s.size());
    std::vector<std::int32_t> tok(6, 1);
    const auto sv = sr::make_view(s.data(), {2, 3, 5});
    const auto rv = sr::make_view(r.data(), {2, 3, 5});
    const auto tv = sr::make_view(tok.data(), {2, 3});
    s[7] = std::nanf("");
    CHECK_THROWS_WITH(sr::kl_divergence(sv, rv), Contains("kl_divergence") && Contains("'student_logits'") &&
                                                     Contains("NaN or +inf") && Contains("(0, 1)"));
    CHECK_THROWS_WITH(sr::next_token_loss(sv, tv, sr::make_view(g.data(), {2, 3, 5})),
                      Contains("next_token_loss") && Contains("'logits'"));
    CHECK_THROWS_AS(sr::generalized_jsd(sv, rv), sr::invalid_argument);
    s[7] = 0.5f;
    r[29 - 5] = std::numeric_limits<float>::infinity(); // position (1, 1)
    CHECK_THROWS_WITH(sr::kl_divergence(sv, rv, sr::make_view(g.data(), {2, 3, 5}), {.threads = 2}),
                      Contains("'reference_logits'") && Contains("(1, 1)"));
    // the same entry at a position that is not counted (the last one, shifted out) is not read
    r[24] = 0.25f;
    r[29] = std::numeric_limits<float>::infinity(); // position (1, 2)
    CHECK_NOTHROW(sr::kl_divergence(sv, rv));
    r[29] = 0.25f;
    for (int v = 0; v < 5; ++v) s[static_cast<std::size_t>(5 + v)] = -std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH(sr::kl_divergence(sv, rv), Contains("every logit -inf"));
}

TEST_CASE("shape mismatches and bad options are rejected", "[losses][errors]") {
    std::vector<double> s(2 * 3 * 4, 0.1), r(s.size(), 0.2), g(s.size()), per(6);
    std::vector<std::int32_t> tok(6, 1);
    const auto sv = sr::make_view(s.data(), {2, 3, 4});
    const auto tv = sr::make_view(tok.data(), {2, 3});
    CHECK_THROWS_WITH(sr::kl_divergence(sv, sr::make_view(r.data(), {3, 2, 4})),
                      Contains("'reference_logits'") && Contains("has shape"));
    CHECK_THROWS_WITH(sr::kl_divergence(sv, sr::make_view(r.data(), {2, 3, 4}), sr::make_view(g.data(), {2, 4, 3})),
                      Contains("'dstudent'"));
    CHECK_THROWS_WITH(sr::next_token_loss(sv, sr::make_view(tok.data(), {3, 2})), Contains("'tokens'"));
    CHECK_THROWS_WITH(sr::next_token_loss(sr::make_view(s.data(), {4, 6}), tv), Contains("'logits'") && Contains("rows"));
    tok[4] = 4;
    CHECK_THROWS_WITH(sr::next_token_loss(sv, tv), Contains("'tokens'") && Contains("holds 4 at (1, 1)"));
    tok[4] = -100; // the ignore index is fine
    CHECK_NOTHROW(sr::next_token_loss(sv, tv));
    std::vector<int> mask(4, 1);
    CHECK_THROWS_WITH(sr::kl_divergence(sv, sv, {.mask = sr::make_view(mask.data(), {2, 2})}), Contains("'options.mask'"));
    CHECK_THROWS_WITH(sr::kl_divergence(sv, sv, {.reduction = sr::reduction::none}), Contains("'options.per_position'"));
    CHECK_THROWS_WITH(sr::kl_divergence(sv, sv, {.per_position = sr::make_view(per.data(), {3, 2})}),
                      Contains("'options.per_position'"));
    CHECK_THROWS_WITH(sr::kl_divergence(sv, sv, {.temperature = 0.0}), Contains("'options.temperature'"));
    CHECK_THROWS_WITH(sr::kl_divergence(sv, sv, {.threads = 0}), Contains("'options.threads'"));
    CHECK_THROWS_WITH(sr::next_token_loss(sv, tv, {.scale = std::nan("")}), Contains("'options.scale'"));
    CHECK_THROWS_WITH(sr::generalized_jsd(sv, sv, {.beta = 1.5}), Contains("generalized_jsd") && Contains("'options.beta'"));
    // rank-2 logits with shift need the sequence length
    const auto s2 = sr::make_view(s.data(), {6, 4});
    CHECK_THROWS_WITH(sr::kl_divergence(s2, s2), Contains("'options.sequence_length'"));
    CHECK(sr::kl_divergence(s2, s2, {.sequence_length = 3}).value == 0);
    CHECK(sr::kl_divergence(s2, s2, {.shift = false}).value == 0);
    CHECK_THROWS_WITH(sr::kl_divergence(s2, s2, {.sequence_length = 4}), Contains("not a multiple"));
    CHECK_THROWS_WITH(sr::kl_divergence(sv, sv, {.sequence_length = 2}), Contains("'options.sequence_length'"));
}

TEST_CASE("kl_estimate rejects non-finite log-probabilities and mismatched shapes", "[losses][errors]") {
    std::vector<double> lp = {-1.0, -2.0, -0.5}, lr = {-1.0, -2.0, -0.5};
    const auto rv = sr::make_view(lr.data(), {3});
    lp[1] = -std::numeric_limits<double>::infinity();
    CHECK_THROWS_WITH(sr::kl_estimate(sr::make_view(lp.data(), {3}), rv), Contains("'policy_logprobs'"));
    lp[1] = -2.0;
    lr[2] = std::nan("");
    CHECK_THROWS_WITH(sr::kl_estimate(sr::make_view(lp.data(), {3}), rv), Contains("'reference_logprobs'"));
    lr[2] = -std::numeric_limits<double>::infinity();
    CHECK(std::isinf(sr::kl_estimate(sr::make_view(lp.data(), {3}), rv).value));
    CHECK_THROWS_WITH(sr::kl_estimate(sr::make_view(lp.data(), {3}), sr::make_view(lr.data(), {2})),
                      Contains("'reference_logprobs'"));
}
