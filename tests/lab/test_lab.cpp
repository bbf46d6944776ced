// The lab's "existing trainer" (examples/lab/model.hpp) against independent truth: central
// finite differences for the hand-written backward pass, the full forward pass for the KV-cached
// incremental one, and hand-worked toy examples.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <selfreplay/adapters/eigen.hpp>
#include <selfreplay/losses.hpp>
#include <selfreplay/sampling.hpp>

#include "data_parallel.hpp"
#include "lm_adapter.hpp"
#include "model.hpp"
#include "toy.hpp"

namespace {

// heads 2 (head width 4) takes attention's generic kernel, heads 1 (head width 8) a fixed-size one
lab::transformer tiny_model(std::uint64_t seed, int heads = 2) {
    lab::transformer m({.vocab = 7, .max_len = 5, .width = 8, .layers = 2, .heads = heads, .ff = 12});
    std::mt19937 gen(static_cast<unsigned>(seed));
    std::uniform_real_distribution<float> u(-0.5f, 0.5f);
    for (auto& p : m.params()) p = u(gen);
    return m;
}

// a rows x cols matrix of independent N(0, 1) entries, drawn in storage order from `gen`
lab::matrix normal_matrix(int rows, int cols, std::mt19937& gen) {
    std::normal_distribution<float> n(0.f, 1.f);
    lab::matrix w(rows, cols);
    for (int i = 0; i < w.size(); ++i) w.data()[i] = n(gen);
    return w;
}

// loss = sum of logits * weights: its logit gradient is `weights`
double probe(const lab::transformer& m, const std::vector<std::int32_t>& tok, int B, int T, const lab::matrix& w) {
    lab::matrix logits;
    m.forward(tok.data(), B, T, logits);
    return double((logits.cast<double>().array() * w.cast<double>().array()).sum());
}

}  // namespace

TEST_CASE("transformer backward matches central finite differences", "[lab]") {
    const int heads = GENERATE(2, 1);
    INFO("heads " << heads);
    auto m = tiny_model(3, heads);
    const int B = 2, T = 5;
    std::vector<std::int32_t> tok{1, 4, 2, 6, 0, 3, 3, 5, 1, 2};
    std::mt19937 gen(11);
    const lab::matrix w = normal_matrix(B * T, 7, gen);
    lab::forward_cache cache;
    lab::matrix logits;
    m.forward(tok.data(), B, T, logits, &cache);
    std::vector<float> grad(m.num_params(), 0.f);
    m.backward(cache, w, grad);
    const float eps = 1e-2f;
    int checked = 0, bad = 0;
    for (std::size_t i = 0; i < m.num_params(); i += 3) {
        const float keep = m.params()[i];
        m.params()[i] = keep + eps;
        const double up = probe(m, tok, B, T, w);
        m.params()[i] = keep - eps;
        const double down = probe(m, tok, B, T, w);
        m.params()[i] = keep;
        const double fd = (up - down) / (2 * eps);
        ++checked;
        if (std::abs(fd - grad[i]) > 2e-2 * std::max(1.0, std::abs(fd))) ++bad;
    }
    // ReLU kinks within eps of a parameter can spoil a rare difference quotient
    INFO(bad << " of " << checked << " parameters disagree");
    CHECK(bad <= checked / 100);
    CHECK(checked > 300);
}

TEST_CASE("a wrong gradient is caught by the finite-difference check", "[lab]") {
    // sanity of the check itself: the tokens' embedding gradient is nonzero and matches, and a
    // perturbed copy does not
    auto m = tiny_model(5);
    std::vector<std::int32_t> tok{1, 2, 3};
    lab::matrix w = lab::matrix::Ones(3, 7);
    lab::forward_cache cache;
    lab::matrix logits;
    m.forward(tok.data(), 1, 3, logits, &cache);
    std::vector<float> grad(m.num_params(), 0.f);
    m.backward(cache, w, grad);
    const std::size_t i = m.layout().tok + 2 * 8;  // token 2, first coordinate
    const float keep = m.params()[i], eps = 1e-2f;
    m.params()[i] = keep + eps;
    const double up = probe(m, tok, 1, 3, w);
    m.params()[i] = keep - eps;
    const double down = probe(m, tok, 1, 3, w);
    const double fd = (up - down) / (2 * eps);
    CHECK(fd == Approx(grad[i]).margin(2e-2));
    CHECK_FALSE(fd == Approx(grad[i] + 0.5).margin(2e-2));
}

TEST_CASE("incremental decoding with the KV cache equals the full forward pass", "[lab]") {
    const int heads = GENERATE(2, 1);
    INFO("heads " << heads);
    const auto m = tiny_model(7, heads);
    const int B = 3, T = 5;
    std::vector<std::int32_t> tok{0, 1, 2, 3, 4, 6, 5, 4, 3, 2, 1, 1, 1, 1, 1};
    lab::matrix full;
    m.forward(tok.data(), B, T, full);
    lab::kv_cache cache;
    m.start(cache, B);
    lab::matrix step;
    for (int t = 0; t < T; ++t) {
        std::vector<std::int32_t> col{tok[t], tok[T + t], tok[2 * T + t]};
        m.step(cache, col.data(), step);
        for (int b = 0; b < B; ++b)
            for (int v = 0; v < 7; ++v) CHECK(step(b, v) == Approx(full(b * T + t, v)).margin(1e-4));
    }
    CHECK_THROWS_AS(m.step(cache, tok.data(), step), std::invalid_argument);  // past max_len
}

TEST_CASE("lm_adapter: generate with greedy draws follows the model's argmax", "[lab]") {
    const auto m = tiny_model(9);
    lab::lm_adapter lm(m);
    std::vector<std::int32_t> first{2, 5};
    std::vector<std::int32_t> out(2 * 5);
    selfreplay::generate(lm, std::span<const std::int32_t>(first), {}, selfreplay::make_view(out.data(), {2, 5}),
                         selfreplay::no_processing{}, selfreplay::greedy{});
    for (int b = 0; b < 2; ++b) {
        CHECK(out[b * 5] == first[b]);
        for (int t = 1; t < 5; ++t) {
            lab::matrix logits;
            m.forward(out.data() + b * 5, 1, t, logits);
            int best = 0;
            for (int v = 1; v < 7; ++v)
                if (logits(t - 1, v) > logits(t - 1, best)) best = v;
            CHECK(out[b * 5 + t] == best);
        }
    }
}

TEST_CASE("data_parallel: sharded passes equal the whole batch, bit-identical for any thread count", "[lab]") {
    const auto m = tiny_model(7);
    const int B = 5, T = 4, V = 7;
    std::mt19937 gen(13);
    std::uniform_int_distribution<int> id(0, V - 1);
    std::vector<std::int32_t> tok(B * T);
    for (auto& t : tok) t = id(gen);
    const lab::matrix w = normal_matrix(B * T, V, gen);
    // the whole batch in one pass: the reference
    lab::forward_cache cache;
    lab::matrix logits;
    m.forward(tok.data(), B, T, logits, &cache);
    std::vector<float> grad(m.num_params(), 0.f);
    m.backward(cache, w, grad);
    lab::matrix first_logits;
    std::vector<float> first_grad;
    for (int threads : {1, 2, 3}) {
        lab::data_parallel dp(m, {.shards = 3, .threads = threads});
        lab::matrix lg;
        dp.forward(tok.data(), B, T, lg);
        REQUIRE(lg.rows() == B * T);
        for (int i = 0; i < lg.size(); ++i) CHECK(lg.data()[i] == Approx(logits.data()[i]).margin(1e-5));
        std::vector<float> g(m.num_params(), 0.f);
        dp.backward(w, g);
        for (std::size_t i = 0; i < g.size(); ++i) CHECK(g[i] == Approx(grad[i]).margin(1e-4));
        if (threads == 1) {
            first_logits = lg;
            first_grad = g;
        } else {
            CHECK(lg == first_logits);  // the thread count changes nothing, bit for bit
            CHECK(g == first_grad);
        }
    }
    // incremental decoding, sharded: the full pass's logits position by position
    lab::data_parallel dp(m, {.shards = 2, .threads = 2});
    dp.start(B);
    lab::matrix step;
    for (int t = 0; t < T; ++t) {
        std::vector<std::int32_t> col(B);
        for (int b = 0; b < B; ++b) col[b] = tok[b * T + t];
        dp.step(col.data(), step);
        REQUIRE(step.rows() == B);
        for (int b = 0; b < B; ++b)
            for (int v = 0; v < V; ++v) CHECK(step(b, v) == Approx(logits(b * T + t, v)).margin(1e-4));
    }
    lab::data_parallel bad(m, {.shards = 2, .threads = 1});
    bad.forward(tok.data(), B, T, logits);
    CHECK_THROWS_AS(bad.backward(lab::matrix::Zero(B * T - 1, V), grad), std::invalid_argument);
    CHECK_THROWS_AS(lab::data_parallel(m, {.shards = 0, .threads = 1}), std::invalid_argument);
    CHECK_THROWS_AS(lab::data_parallel(m, {.shards = 1, .threads = 0}), std::invalid_argument);
}

TEST_CASE("forward pass: bit-identical logits wherever the heap puts the activation cache", "[lab]") {
    // Eigen handles the unaligned head of a vector with scalar code (another exp, another
    // summation order); attention's softmax must not depend on the address of its buffers.
    // Sequences of 16 tokens, so that softmax rows are long enough for 8-float packets.
    lab::transformer m({.vocab = 7, .max_len = 16, .width = 8, .layers = 1, .heads = 1, .ff = 12});
    std::mt19937 gen(4);
    std::uniform_real_distribution<float> u(-0.5f, 0.5f);
    for (auto& p : m.params()) p = u(gen);
    const int B = 2, T = 16;
    std::vector<std::int32_t> tok(B * T);
    for (int i = 0; i < B * T; ++i) tok[i] = (i * 5 + 3) % 7;
    lab::matrix first;
    m.forward(tok.data(), B, T, first);
    for (int shift = 1; shift <= 8; ++shift) {
        std::vector<char> spacer(std::size_t(shift) * 16 + 8);  // moves the next allocations by 16-byte steps
        lab::forward_cache cache;
        lab::matrix logits;
        m.forward(tok.data(), B, T, logits, &cache);
        CHECK(logits == first);
    }
}

TEST_CASE("worker_pool runs every index once, on any thread count, and rethrows the first error", "[lab]") {
    for (int threads : {1, 2, 3}) {
        lab::worker_pool pool(threads);
        CHECK(pool.threads() == threads);
        for (int round = 0; round < 200; ++round) {  // many short sections, as in training
            const int n = 1 + round % 5;
            std::vector<int> hits(std::size_t(n), 0);
            pool.run(n, [&](int i) { ++hits[std::size_t(i)]; });
            CHECK(hits == std::vector<int>(std::size_t(n), 1));
        }
        std::vector<int> done(4, 0);
        try {
            pool.run(4, [&](int i) {
                done[std::size_t(i)] = 1;
                if (i >= 1) throw std::runtime_error("job " + std::to_string(i));
            });
            FAIL("no exception");
        } catch (const std::runtime_error& e) {
            CHECK(std::string(e.what()) == "job 1");  // the lowest failing index wins
        }
        CHECK(done == std::vector<int>(4, 1));  // the other indices still ran
    }
    CHECK_THROWS_AS(lab::worker_pool(0), std::invalid_argument);
}

TEST_CASE("toy tasks encode as documented", "[lab]") {
    using namespace lab::toy;
    std::int32_t t[toy_len];
    encode(0, 123, 989, t);  // add: 123 + 989 = 1112
    CHECK(render(t, toy_len) == "+123|989=1112$");
    encode(1, 120, 0, t);  // reversal: 021 -> 0021
    CHECK(render(t, toy_len) == "r120|_=0021$..");
    encode(2, 907, 0, t);  // sort: 079
    CHECK(render(t, toy_len) == "s907|_=0079$..");
    encode(3, 999, 999, t);  // modadd: 1998 mod 1000 = 998
    CHECK(render(t, toy_len) == "m999|999=0998$");
    CHECK(prompt_len(0) == 9);
    CHECK(prompt_len(2) == 7);
    CHECK_THROWS(answer(4, 1, 1));
}

TEST_CASE("--linear-loss: hidden states, the linear losses and backward_hidden equal the logits path", "[lab][linear]") {
    const auto m = tiny_model(13);
    const int B = 3, T = 5, V = 7, d = 8;
    std::vector<std::int32_t> tok{0, 1, 2, 3, 4, 6, 5, 4, 3, 2, 1, 1, 1, 1, 1};
    const auto tv = selfreplay::make_view<const std::int32_t>(tok.data(), {B, T});
    // the logits path: forward, next_token_loss's logit gradient, backward
    lab::forward_cache ca;
    lab::matrix logits, dlogits(B * T, V);
    m.forward(tok.data(), B, T, logits, &ca);
    const double want = selfreplay::next_token_loss(logits, tv, dlogits).value;
    lab::param_vector ga(m.num_params(), 0.f);
    m.backward(ca, dlogits, ga);
    // the linear path: forward_hidden, linear_next_token_loss (dW, d bias straight into the gradient), backward_hidden
    lab::forward_cache cb;
    m.forward_hidden(tok.data(), B, T, cb);
    lab::param_vector gb(m.num_params(), 0.f);
    lab::matrix dh(B * T, d);
    const auto& lay = m.layout();
    const selfreplay::linear_head<float> head{
        selfreplay::view(std::as_const(cb.hf)),
        selfreplay::transposed(selfreplay::make_view<const float>(m.params().data() + lay.wout, {d, V})),
        selfreplay::make_view<const float>(m.params().data() + lay.bout, {V})};
    const double got = selfreplay::linear_next_token_loss(
                           selfreplay::eigen_matmul{}, head, tv,
                           {.hidden = selfreplay::view(dh),
                            .weight = selfreplay::transposed(selfreplay::make_view(gb.data() + lay.wout, {d, V})),
                            .bias = selfreplay::make_view(gb.data() + lay.bout, {V})})
                           .value;
    m.backward_hidden(cb, dh, gb);
    CHECK(got == Approx(want).epsilon(1e-6));
    double worst = 0, scale = 0;
    for (std::size_t i = 0; i < ga.size(); ++i) {
        worst = std::max(worst, double(std::abs(ga[i] - gb[i])));
        scale = std::max(scale, double(std::abs(ga[i])));
    }
    CHECK(worst <= 1e-5 * scale);
    // lm_adapter records the hidden states the output layer read, step by step
    std::vector<float> rec;
    lab::lm_adapter lm(m, &rec, T, {}, true);
    lm.reset(B);
    lab::matrix step_logits(B, V);
    for (int t = 0; t < T; ++t) {
        std::vector<std::int32_t> col{tok[t], tok[T + t], tok[2 * T + t]};
        lm.step(selfreplay::make_view<const std::int32_t>(col.data(), {B}), selfreplay::view(step_logits));
    }
    REQUIRE(rec.size() == std::size_t(B * T * d));
    for (int i = 0; i < B * T; ++i)
        for (int k = 0; k < d; ++k) CHECK(rec[std::size_t(i * d + k)] == Approx(cb.hf(i, k)).margin(1e-4));
}
