// The README's replay step as a whole program, on Eigen matrices: a frozen bigram model pi
// generates the replay batch (self_generated), theta's and pi's logits are row-major Eigen
// matrices passed as they are, and evaluate_objective returns loss = NTP(x) + c KL(pi || theta)
// on the replay batch with d loss / d logits. The gradients are checked against central finite
// differences of the loss (in double), and the float step against the double one.

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include <Eigen/Core>

#include <selfreplay/adapters/eigen.hpp>
#include <selfreplay/selfreplay.hpp>

namespace sr = selfreplay;
template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Ids = Eigen::Matrix<std::int32_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

constexpr sr::index_t B = 3, R = 2, L = 5, V = 9;

//! A bigram model: the next token's logits are row `last token` of a [V, V] table.
struct bigram {
    RowMat<float> table;
    sr::index_t vocab_size() const { return V; }
    void next_token_logits(sr::strided_view<const std::int32_t, 2> prefixes, sr::strided_view<float, 2> logits) const {
        for (sr::index_t b = 0; b < logits.extent(0); ++b)
            for (sr::index_t v = 0; v < V; ++v) logits(b, v) = table(prefixes(b, prefixes.extent(1) - 1), v);
    }
    //! Logits of every position of `tokens` [rows, L], one row per position ([rows*L, V]).
    template <class T>
    RowMat<T> logits(const Ids& tokens) const {
        RowMat<T> z(tokens.rows() * L, V);
        for (Eigen::Index p = 0; p < z.rows(); ++p) z.row(p) = table.row(tokens.data()[p]).template cast<T>();
        return z;
    }
};

int main() {
    std::srand(3);
    bigram pi{RowMat<float>::Random(V, V) * 2.0f};    // the frozen reference
    const bigram theta{RowMat<float>::Random(V, V)};  // the model being finetuned
    const std::int32_t english_id = 0;
    const std::int64_t step = 0;

    // Once: the replay source and the mixer (template arguments written out for clang < 17)
    sr::self_generated replay(pi, {.prompts = {{english_id}}, .batch_size = R, .seq_len = L, .seed = 1});
    const auto mixer = sr::kl_pre<>{.coefficient = 10.0};

    // Every step: the training batch x, the replay batch r, the forward passes, the objective
    Ids x(B, L), r(R, L);
    for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<std::int32_t>((5 * i + 2) % V);
    replay.draw(sr::make_view(r.data(), {R, L}));
    const RowMat<float> zx = theta.logits<float>(x), zr = theta.logits<float>(r), pr = pi.logits<float>(r);
    RowMat<float> dzx(B * L, V), dzr(R * L, V);
    const auto res = sr::evaluate_objective(mixer, step,
        sr::objective_inputs<float>{.train_tokens = x, .student_train_logits = zx,
                                    .replay_tokens = r, .student_replay_logits = zr,
                                    .reference_replay_logits = pr},
        {.train = dzx, .replay = dzr});
    std::printf("loss %.6f = train NTP %.6f + %g x %s %.6f\n", res.total, res.train_ntp, res.terms[0].coefficient,
                std::string(res.terms[0].name).c_str(), res.terms[0].value);

    // The same step in double, then d loss / d logits by central differences on a few entries.
    RowMat<double> zx64 = zx.cast<double>(), zr64 = zr.cast<double>();
    const RowMat<double> pr64 = pr.cast<double>();
    RowMat<double> dzx64(B * L, V), dzr64(R * L, V);
    auto loss = [&](bool grads) {
        const sr::objective_inputs<double> in{.train_tokens = x, .student_train_logits = zx64, .replay_tokens = r,
                                              .student_replay_logits = zr64, .reference_replay_logits = pr64};
        return grads ? sr::evaluate_objective(mixer, step, in, {.train = dzx64, .replay = dzr64}).total
                     : sr::evaluate_objective(mixer, step, in).total;
    };
    int failures = 0;
    const double total64 = loss(true);
    failures += std::abs(total64 - res.total) > 1e-5 * std::abs(total64);
    failures += (dzx64.cast<float>() - dzx).cwiseAbs().maxCoeff() > 1e-5f;
    failures += (dzr64.cast<float>() - dzr).cwiseAbs().maxCoeff() > 1e-5f;
    const double h = 1e-6;
    for (auto [m, g] : {std::pair{&zx64, &dzx64}, std::pair{&zr64, &dzr64}})
        for (Eigen::Index p : {Eigen::Index{0}, Eigen::Index{3}, Eigen::Index{R * L - 2}})
            for (Eigen::Index v : {Eigen::Index{1}, Eigen::Index{V - 1}}) {
                const double keep = (*m)(p, v);
                (*m)(p, v) = keep + h;
                const double up = loss(false);
                (*m)(p, v) = keep - h;
                const double down = loss(false);
                (*m)(p, v) = keep;
                const double fd = (up - down) / (2 * h);
                if (std::abs(fd - (*g)(p, v)) > 1e-6 * (1 + std::abs(fd))) {
                    std::printf("gradient mismatch at (%ld, %ld): %.9f vs %.9f\n", long(p), long(v), (*g)(p, v), fd);
                    ++failures;
                }
            }
    std::printf("%s\n", failures == 0 ? "gradients match finite differences" : "CHECKS FAILED");
    return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
