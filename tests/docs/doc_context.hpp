#pragma once
// The names the pages' C++ fragments use without declaring them (docs/design.md, "Doc
// snippets"): every fragment becomes the body of a member function of `doc_context`, run on a
// fresh object, so a fragment sees these members as plain names, with shapes and contents that
// make it run. The pages write `sr::` for `selfreplay::`.

#include <cstdint>
#include <vector>

#include <Eigen/Core>

#include <selfreplay/adapters/eigen.hpp>
#include <selfreplay/compose.hpp>
#include <selfreplay/metrics.hpp>
#include <selfreplay/selfreplay.hpp>

namespace sr = selfreplay;

struct doc_context {
    using matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    using id_matrix = Eigen::Matrix<std::int32_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

    //! pi: a language model whose next-token logits depend on the last token.
    struct tiny_model {
        sr::index_t vocab_size() const { return V; }
        void next_token_logits(sr::strided_view<const std::int32_t, 2> prefixes, sr::strided_view<float, 2> logits) const {
            for (sr::index_t b = 0; b < logits.extent(0); ++b)
                for (sr::index_t v = 0; v < V; ++v)
                    logits(b, v) = v == (prefixes(b, prefixes.extent(1) - 1) + 1) % V ? 2.0f : 0.0f;
        }
    };

    static id_matrix random_ids(sr::index_t rows, sr::index_t cols) {
        id_matrix m(rows, cols);
        for (sr::index_t i = 0; i < m.size(); ++i) m.data()[i] = static_cast<std::int32_t>((7 * i + 3) % V);
        return m;
    }
    static sr::reservoir_buffer filled_buffer() {
        sr::reservoir_buffer b({.capacity = 8, .seq_len = L, .seed = 2});
        b.add(random_ids(8, L));
        return b;
    }

    // sizes: batch B (T = L positions), replay batch R, vocabulary V, hidden width D
    static constexpr sr::index_t B = 4, R = 4, L = 6, T = L, V = 11, D = 5, rows = B * L, vocab = V;
    std::int64_t step = 3;
    std::int32_t english_id = 0;
    tiny_model pi{};

    // token batches (Eigen int32 matrices) and views of them
    id_matrix x = random_ids(B, L), r = random_ids(R, L);
    sr::strided_view<const std::int32_t, 2> xv = sr::view(x), rv = sr::view(r);
    sr::strided_view<const std::int32_t, 2> tokens = xv;

    // logits [rows, V] (Eigen) and their gradients
    matrix zx = matrix::Random(B * L, V), zr = matrix::Random(R * L, V), pr = matrix::Random(R * L, V);
    matrix dzx = matrix::Zero(B * L, V), dzr = matrix::Zero(R * L, V);
    // [B, T, V] logits as views (docs/losses.md)
    std::vector<float> logits_data = std::vector<float>(zx.data(), zx.data() + zx.size());
    std::vector<float> grad = std::vector<float>(logits_data.size());
    sr::strided_view<const float, 3> logits = sr::make_view(static_cast<const float*>(logits_data.data()), {B, T, V});
    sr::strided_view<const float, 3> ref_logits = logits;

    // the linear form: hidden states [rows, D], projections [V, D], biases [V] and gradients
    matrix hx = matrix::Random(B * L, D), hr = matrix::Random(R * L, D), pir = matrix::Random(R * L, D);
    matrix W = matrix::Random(V, D), Wpi = matrix::Random(V, D);
    std::vector<float> bias_data = std::vector<float>(V, 0.5f), bias_pi_data = std::vector<float>(V, -0.5f),
                       bias_grad_data = std::vector<float>(V);
    sr::strided_view<const float, 1> b = sr::make_view(static_cast<const float*>(bias_data.data()), {V});
    sr::strided_view<const float, 1> bpi = sr::make_view(static_cast<const float*>(bias_pi_data.data()), {V});
    sr::strided_view<float, 1> db = sr::make_view(bias_grad_data.data(), {V});
    matrix dhx = matrix::Zero(B * L, D), dhr = matrix::Zero(R * L, D), dW = matrix::Zero(V, D);

    // replay sources
    sr::reservoir_buffer buffer = filled_buffer();
    sr::reservoir_buffer source = filled_buffer();
    sr::self_generated<tiny_model> generated{pi, {.prompts = {{0}}, .batch_size = R, .seq_len = L, .seed = 1}};

    // what a strategy's objective takes
    sr::objective_inputs<float> inputs{.train_tokens = x, .student_train_logits = zx, .replay_tokens = r,
                                       .student_replay_logits = zr, .reference_replay_logits = pr};
    sr::objective_gradients<float> grads{.train = dzx, .replay = dzr};

    // metrics
    sr::forgetting f{2.0};
    sr::mean_loss valid{};

    doc_context() {
        f.add(2.5);
        valid.add(1.25);
    }

#include "fragment_declarations.inc"
};
