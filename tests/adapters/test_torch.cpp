// The libtorch adapter: views (zero-copy, refused tensors), the autograd functions against torch's
// own losses (F::cross_entropy, F::kl_div with log_target) and finite differences, the objective
// over tensors, and the language-model wrappers (full and incremental generate the same tokens).
#include <selfreplay/adapters/torch.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include <selfreplay/replay.hpp>
#include <selfreplay/sampling.hpp>

#include "../../examples/torch_lab/model.hpp"
#include "../losses/linear_support.hpp"

namespace sr = selfreplay;
namespace lt = selfreplay::libtorch;
namespace F = torch::nn::functional;

namespace {

// Logits with a wide spread (and some -inf free extremes) in the given dtype.
torch::Tensor make_logits(std::int64_t B, std::int64_t T, std::int64_t V, torch::Dtype dtype, std::uint64_t seed) {
    torch::manual_seed(seed);
    return (torch::randn({B, T, V}, torch::kDouble) * 3.0).to(dtype);
}

// Torch's NTP: cross-entropy of positions t < T-1 against tokens t+1, positions whose mask is 0
// or whose target is the ignore index not counted; mean over counted, or sum.
torch::Tensor torch_ntp(const torch::Tensor& logits, const torch::Tensor& tokens, const torch::Tensor& mask,
                        bool mean_counted) {
    const auto V = logits.size(2);
    auto targets = tokens.slice(1, 1).clone();
    if (mask.defined()) targets.masked_fill_(mask.slice(1, 0, -1).logical_not(), -100);
    auto options = F::CrossEntropyFuncOptions().ignore_index(-100);
    if (mean_counted)
        options.reduction(torch::kMean);
    else
        options.reduction(torch::kSum);
    return F::cross_entropy(logits.slice(1, 0, -1).reshape({-1, V}), targets.reshape({-1}), options);
}

// Torch's forward KL(pi || theta) per position, summed over counted positions (t < T-1, mask).
torch::Tensor torch_kl_sum(const torch::Tensor& student, const torch::Tensor& reference, const torch::Tensor& mask) {
    auto per = F::kl_div(F::log_softmax(student, F::LogSoftmaxFuncOptions(-1)),
                         F::log_softmax(reference, F::LogSoftmaxFuncOptions(-1)),
                         F::KLDivFuncOptions().reduction(torch::kNone).log_target(true))
                   .sum(-1);
    auto counted = torch::ones_like(per);
    counted.select(1, per.size(1) - 1).zero_();
    if (mask.defined()) counted = counted * mask.to(per.scalar_type());
    return (per * counted).sum();
}

void check_close(const torch::Tensor& a, const torch::Tensor& b, double rtol, double atol) {
    INFO("max |a - b| = " << (a - b).abs().max().item<double>() << ", max |b| = " << b.abs().max().item<double>());
    CHECK(torch::allclose(a, b, rtol, atol));
}

// Central differences of f at x in double, as torch.autograd.gradcheck (eps 1e-6).
torch::Tensor numeric_gradient(const std::function<torch::Tensor(const torch::Tensor&)>& f, const torch::Tensor& x) {
    const torch::NoGradGuard no_grad;
    auto g = torch::zeros_like(x);
    auto xc = x.clone();
    auto flat = xc.view({-1});
    auto gf = g.view({-1});
    for (std::int64_t i = 0; i < flat.numel(); ++i) {
        const double v = flat[i].item<double>();
        flat[i] = v + 1e-6;
        const double up = f(xc).item<double>();
        flat[i] = v - 1e-6;
        const double down = f(xc).item<double>();
        flat[i] = v;
        gf[i] = (up - down) / 2e-6;
    }
    return g;
}

} // namespace

TEST_CASE("libtorch views alias the tensor's memory", "[adapters][torch]") {
    auto t = torch::arange(24, torch::kFloat).reshape({2, 3, 4});
    const auto v = lt::view<float, 3>(t, "t");
    CHECK(static_cast<const void*>(v.data()) == t.data_ptr());
    CHECK(v(1, 2, 3) == 23.0f);
    auto tr = t.transpose(0, 2); // [4, 3, 2], strides (1, 4, 12)
    const auto vt = lt::view<float, 3>(tr, "tr");
    CHECK(static_cast<const void*>(vt.data()) == t.data_ptr());
    CHECK(vt.stride(0) == 1);
    CHECK(vt(3, 2, 1) == 23.0f);
    auto slice = t.select(1, 1); // storage offset 4
    const auto mv = lt::mutable_view<float, 2>(slice, "slice");
    CHECK(static_cast<void*>(mv.data()) == static_cast<void*>(t.data_ptr<float>() + 4));
    mv(1, 0) = -1.0f;
    CHECK(t[1][1][0].item<float>() == -1.0f);
    auto ids = torch::tensor({{1, 2}, {3, 4}}, torch::kLong);
    const auto tok = lt::tokens(ids);
    CHECK(tok.is_int64());
    CHECK(tok.data() == ids.data_ptr());
    const auto ids32 = ids.to(torch::kInt);
    CHECK(lt::tokens(ids32).data() == ids32.data_ptr());
}

TEST_CASE("libtorch views refuse tensors they cannot alias, naming the argument", "[adapters][torch]") {
    using Catch::Contains;
    CHECK_THROWS_WITH((lt::view<float, 2>(torch::Tensor(), "logits")),
                      "selfreplay::libtorch::view: argument 'logits' is an undefined tensor");
    // This CPU-only libtorch cannot create a CUDA tensor (at::empty on kCUDA throws), so the
    // device check is exercised with the meta device, which takes the same path.
    CHECK_THROWS_WITH((lt::view<float, 2>(torch::empty({2, 3}, torch::device(torch::kMeta)), "logits")),
                      "selfreplay::libtorch::view: argument 'logits' must be on the CPU, got device meta");
    CHECK_THROWS_WITH((lt::view<float, 2>(torch::eye(3).to_sparse(), "logits")),
                      Contains("argument 'logits' must have the strided layout, got Sparse"));
    CHECK_THROWS_WITH((lt::view<float, 2>(torch::zeros({2, 3}, torch::kDouble), "logits")),
                      "selfreplay::libtorch::view: argument 'logits' must hold Float elements, got Double");
    CHECK_THROWS_WITH((lt::view<float, 3>(torch::zeros({2, 3}), "logits")),
                      "selfreplay::libtorch::view: argument 'logits' must have 3 dimensions, got 2 (shape [2, 3])");
    const auto expanded = torch::zeros({1, 4}).expand({3, 4});
    CHECK_NOTHROW((lt::view<float, 2>(expanded, "x"))); // reading an expanded tensor is fine
    CHECK_THROWS_WITH((lt::mutable_view<float, 2>(expanded, "dlogits")),
                      Contains("argument 'dlogits' has stride 0 in dimension 0 (an expanded tensor"));
    CHECK_THROWS_WITH((lt::mutable_view<float, 2>(torch::zeros({10}).as_strided({3, 3}, {2, 1}), "dlogits")),
                      Contains("argument 'dlogits' has internally overlapping memory"));
    CHECK_NOTHROW((lt::mutable_view<float, 2>(torch::zeros({4, 6}).slice(1, 0, 6, 2), "dlogits")));
    CHECK_THROWS_WITH((lt::mutable_view<float, 2>(torch::zeros({2, 3}, torch::requires_grad()), "dlogits")),
                      Contains("argument 'dlogits' is a leaf that requires grad"));
    const auto nonleaf = torch::zeros({2, 3}, torch::requires_grad()) * 2;
    CHECK_THROWS_WITH((lt::mutable_view<float, 2>(nonleaf, "dlogits")),
                      Contains("argument 'dlogits' requires grad (it is part of an autograd graph)"));
    CHECK_THROWS_WITH(lt::tokens(torch::zeros({2, 3}), "tokens"),
                      Contains("argument 'tokens' must hold token ids of dtype Long (int64) or Int (int32), got Float"));
    CHECK_THROWS_WITH(lt::mask(torch::zeros({2, 3}, torch::kHalf), "mask"),
                      Contains("argument 'mask' must have dtype Bool, Byte, Int, Long, Float or Double, got Half"));
}

TEMPLATE_TEST_CASE("next_token_loss and kl_divergence match torch's losses", "[adapters][torch]", float, double) {
    const bool is_float = std::is_same_v<TestType, float>;
    const auto dtype = is_float ? torch::kFloat : torch::kDouble;
    const double rtol = is_float ? 1e-5 : 1e-12, atol = is_float ? 1e-7 : 1e-15;
    for (const std::int64_t V : {1, 7, 32000}) {
        const std::int64_t B = 2, T = 5;
        INFO("V = " << V);
        torch::manual_seed(V);
        auto tokens = torch::randint(V, {B, T}, torch::kLong);
        tokens[0][2] = -100; // ignore index: position (0, 1) not counted
        auto mask = torch::ones({B, T}, torch::kBool);
        mask[1][0] = false;
        const auto x0 = make_logits(B, T, V, dtype, 1);
        const auto r0 = make_logits(B, T, V, dtype, 2);
        for (const bool counted_mean : {true, false}) {
            auto x = x0.clone().requires_grad_(true);
            auto y = x0.clone().requires_grad_(true);
            const auto ours = lt::next_token_loss(
                x, tokens, {.reduction = counted_mean ? sr::reduction::mean_counted : sr::reduction::sum,
                            .mask = lt::mask(mask)});
            const auto theirs = torch_ntp(y, tokens, mask, counted_mean);
            REQUIRE(ours.dim() == 0);
            REQUIRE(ours.grad_fn() != nullptr);
            CHECK(ours.scalar_type() == dtype);
            check_close(ours, theirs, rtol, atol);
            ours.backward();
            theirs.backward();
            check_close(x.grad(), y.grad(), rtol, atol);
        }
        // forward KL, mean over all positions (the paper), and grad_output honoured
        auto x = x0.clone().requires_grad_(true);
        auto y = x0.clone().requires_grad_(true);
        const auto ours = lt::kl_divergence(x, r0, {.mask = lt::mask(mask)});
        const auto theirs = torch_kl_sum(y, r0, mask) / double(B * T);
        check_close(ours, theirs, rtol, atol);
        (ours * 3.0).backward();
        (theirs * 3.0).backward();
        check_close(x.grad(), y.grad(), rtol, atol);
    }
}

TEST_CASE("generalized_jsd matches its formula in torch ops", "[adapters][torch]") {
    const auto x0 = make_logits(2, 3, 11, torch::kDouble, 3), r = make_logits(2, 3, 11, torch::kDouble, 4);
    const double beta = 0.3;
    auto x = x0.clone().requires_grad_(true), y = x0.clone().requires_grad_(true);
    const auto ours = lt::generalized_jsd(x, r, {.beta = beta, .reduction = sr::reduction::sum, .shift = false});
    const auto lp = F::log_softmax(y, F::LogSoftmaxFuncOptions(-1)), lq = F::log_softmax(r, F::LogSoftmaxFuncOptions(-1));
    const auto lm = torch::logsumexp(torch::stack({lq + std::log(beta), lp + std::log(1 - beta)}), 0);
    const auto theirs = (beta * (lq.exp() * (lq - lm)) + (1 - beta) * (lp.exp() * (lp - lm))).sum();
    check_close(ours, theirs, 1e-12, 1e-14);
    ours.backward();
    theirs.backward();
    check_close(x.grad(), y.grad(), 1e-10, 1e-13);
}

TEST_CASE("autograd functions pass a gradient check in double", "[adapters][torch]") {
    // libtorch 1.13's C++ API has no torch::autograd::gradcheck (it is Python's); this is the same
    // check: central differences (eps 1e-6) against the analytical gradient, gradcheck's tolerances.
    const auto x0 = make_logits(2, 3, 5, torch::kDouble, 5), r = make_logits(2, 3, 5, torch::kDouble, 6);
    const auto tokens = torch::tensor({{0, 4, 2}, {3, 1, 1}}, torch::kLong);
    const std::vector<std::function<torch::Tensor(const torch::Tensor&)>> fs{
        [&](const torch::Tensor& x) { return lt::next_token_loss(x, tokens); },
        [&](const torch::Tensor& x) { return lt::kl_divergence(x, r, {.temperature = 0.7}); },
        [&](const torch::Tensor& x) {
            return lt::kl_divergence(x, r, {.direction = sr::kl_direction::reverse, .reduction = sr::reduction::sum});
        },
        [&](const torch::Tensor& x) { return lt::generalized_jsd(x, r, {.beta = 0.6}); }};
    for (std::size_t i = 0; i < fs.size(); ++i) {
        INFO("function " << i);
        auto x = x0.clone().requires_grad_(true);
        const auto loss = fs[i](x) * 1.7;
        const auto analytic = torch::autograd::grad({loss}, {x})[0];
        check_close(analytic, numeric_gradient([&](const torch::Tensor& z) { return fs[i](z) * 1.7; }, x0), 1e-3, 1e-5);
    }
}

TEST_CASE("autograd functions refuse what they cannot honour", "[adapters][torch]") {
    using Catch::Contains;
    const auto x = make_logits(1, 3, 4, torch::kFloat, 7).requires_grad_(true);
    const auto r = make_logits(1, 3, 4, torch::kFloat, 8);
    const auto t = torch::zeros({1, 3}, torch::kLong);
    CHECK_THROWS_WITH(lt::next_token_loss(x, t, {.reduction = sr::reduction::none}),
                      Contains("argument 'options.reduction' cannot be reduction::none here"));
    CHECK_THROWS_WITH(lt::kl_divergence(x, r.clone().requires_grad_(true)),
                      Contains("argument 'reference_logits' requires grad"));
    CHECK_THROWS_WITH(lt::kl_divergence(x, r.to(torch::kDouble)),
                      Contains("selfreplay::libtorch::kl_divergence: argument 'reference_logits' must hold Float"));
    CHECK_THROWS_WITH(lt::next_token_loss(x, t + 4), Contains("'tokens' holds 4 at (0, 1), outside the vocabulary"));
    CHECK_THROWS_WITH(lt::next_token_loss(x.to(torch::kHalf), t), Contains("must hold Float or Double logits, got Half"));
    // no grad_fn when nothing requires grad, or under NoGradGuard
    CHECK(lt::next_token_loss(r, t).grad_fn() == nullptr);
    const torch::NoGradGuard no_grad;
    CHECK(lt::kl_divergence(x, r).grad_fn() == nullptr);
}

TEST_CASE("evaluate_objective over tensors: values, gradients, buffers reused", "[adapters][torch]") {
    const std::int64_t B = 2, R = 3, L = 4, V = 9;
    torch::manual_seed(11);
    const auto x_tok = torch::randint(V, {B, L}, torch::kLong), r_tok = torch::randint(V, {R, L}, torch::kInt);
    const auto sx = make_logits(B, L, V, torch::kFloat, 12), sr_ = make_logits(R, L, V, torch::kFloat, 13);
    const auto pr = make_logits(R, L, V, torch::kFloat, 14);
    const sr::kl_pre<> mixer{.coefficient = 10.0};
    lt::gradient_buffers buffers;
    const lt::objective_tensors in{.train_tokens = x_tok, .student_train_logits = sx, .replay_tokens = r_tok,
                                   .student_replay_logits = sr_, .reference_replay_logits = pr};
    const auto res = lt::evaluate_objective(mixer, 0, in, buffers);
    auto a = sx.clone().requires_grad_(true), b = sr_.clone().requires_grad_(true);
    const auto total = lt::next_token_loss(a, x_tok) + 10.0 * lt::kl_divergence(b, pr);
    total.backward();
    CHECK(res.total == Approx(total.item<double>()).epsilon(1e-6));
    CHECK(torch::equal(buffers.train, a.grad()));
    CHECK(torch::allclose(buffers.replay, b.grad(), 1e-6, 1e-8));
    const void* train_memory = buffers.train.data_ptr();
    const void* replay_memory = buffers.replay.data_ptr();
    const auto again = lt::evaluate_objective(mixer, 1, in, buffers);
    CHECK(again.total == res.total);
    CHECK(buffers.train.data_ptr() == train_memory);
    CHECK(buffers.replay.data_ptr() == replay_memory);
    CHECK_THROWS_WITH(lt::evaluate_objective(mixer, 0, lt::objective_tensors{.train_tokens = x_tok, .student_train_logits = sx}),
                      Catch::Contains("argument 'inputs.replay_tokens' is missing"));
}

TEST_CASE("module wrappers: full and incremental generate the same tokens; self_generated from a frozen copy",
          "[adapters][torch]") {
    torch::manual_seed(21);
    const std::int64_t V = 13, T = 12, B = 5;
    torch_lab::Transformer net(torch_lab::transformer_options{.vocab = V, .width = 16, .depth = 2, .heads = 2, .max_len = T});
    net->to(torch::kDouble);
    lt::module_language_model<torch_lab::Transformer> full(net, V);
    lt::incremental_module_language_model<torch_lab::Transformer> inc(net, V);
    static_assert(sr::language_model<decltype(full), double> && !sr::incremental_language_model<decltype(full), double>);
    static_assert(sr::incremental_language_model<decltype(inc), double>);
    auto a = torch::zeros({B, T}, torch::kLong), b = torch::zeros({B, T}, torch::kLong);
    const std::vector<std::int64_t> first{0, 1, 2, 3, 4};
    sr::generate<double>(full, std::span<const std::int64_t>(first), {.seed = 5}, lt::mutable_view<std::int64_t, 2>(a));
    sr::generate<double>(inc, std::span<const std::int64_t>(first), {.seed = 5}, lt::mutable_view<std::int64_t, 2>(b));
    CHECK(torch::equal(a, b));
    CHECK(a.select(1, 0).equal(torch::tensor(first)));
    CHECK(std::get<0>(at::_unique(a.flatten())).numel() > 3); // really sampled

    // self_generated replay from a frozen copy: unchanged by training the original
    auto frozen = lt::frozen_copy(net);
    for (const auto& p : frozen->parameters()) CHECK_FALSE(p.requires_grad());
    lt::incremental_module_language_model<torch_lab::Transformer> reference(frozen, V);
    sr::self_generated<decltype(reference), sr::no_processing, sr::categorical, double> source(
        reference, {.prompts = {{0}}, .batch_size = 2, .seq_len = T, .seed = 8});
    auto r1 = torch::zeros({2, T}, torch::kLong);
    source.draw(lt::mutable_view<std::int64_t, 2>(r1));
    torch::optim::SGD opt(net->parameters(), 1.0);
    lt::next_token_loss(net->forward(r1), r1).backward();
    opt.step();
    sr::self_generated<decltype(reference), sr::no_processing, sr::categorical, double> again(
        reference, {.prompts = {{0}}, .batch_size = 2, .seq_len = T, .seed = 8});
    auto r2 = torch::zeros({2, T}, torch::kLong);
    again.draw(lt::mutable_view<std::int64_t, 2>(r2));
    CHECK(torch::equal(r1, r2));
    CHECK_FALSE(torch::equal(net->forward(r1), frozen->forward(r1)));
}

TEST_CASE("torch_matmul gives the linear losses libtorch's products") {
    static_assert(sr::matmul<lt::torch_matmul, float> && sr::matmul<lt::torch_matmul, double>);
    // NTP from hidden states through torch's GEMM equals the same loss through three loops
    const sr::index_t B = 3, T = 5, N = B * T, D = 7, V = 11;
    torch::manual_seed(4);
    const torch::Tensor h = torch::randn({N, D}, torch::kDouble), w = torch::randn({V, D}, torch::kDouble),
                        bias = torch::randn({V}, torch::kDouble);
    const torch::Tensor tokens = torch::randint(0, V, {B, T}, torch::kLong);
    const sr::linear_head<double> head{lt::view<double, 2>(h, "h"), lt::view<double, 2>(w, "w"), lt::view<double, 1>(bias, "bias")};
    torch::Tensor dh_t = torch::zeros({N, D}, torch::kDouble), dw_t = torch::zeros({V, D}, torch::kDouble);
    std::vector<double> dh_l(static_cast<std::size_t>(N * D)), dw_l(static_cast<std::size_t>(V * D));
    const auto tok = lt::view<std::int64_t, 2>(tokens, "tokens");
    const double by_torch = sr::linear_next_token_loss(lt::torch_matmul{}, head, tok,
                                                       {lt::mutable_view<double, 2>(dh_t, "dh"), lt::mutable_view<double, 2>(dw_t, "dw"), {}})
                                .value;
    const double by_loops = sr::linear_next_token_loss(linear_test::loop_matmul{}, head, tok,
                                                       {sr::make_view(dh_l.data(), {N, D}), sr::make_view(dw_l.data(), {V, D}), {}})
                                .value;
    CHECK(by_torch == Approx(by_loops).epsilon(1e-12));
    const auto dh = dh_t.contiguous(), dw = dw_t.contiguous();
    for (std::size_t i = 0; i < dh_l.size(); ++i) CHECK(dh.data_ptr<double>()[i] == Approx(dh_l[i]).margin(1e-12));
    for (std::size_t i = 0; i < dw_l.size(); ++i) CHECK(dw.data_ptr<double>()[i] == Approx(dw_l[i]).margin(1e-12));
    // accumulate adds, through a transposed (column-major) operand
    torch::Tensor c = torch::ones({D, D}, torch::kDouble);
    lt::torch_matmul{}(sr::transposed(head.weight), head.weight, lt::mutable_view<double, 2>(c, "c"), true);
    CHECK(torch::allclose(c, torch::ones({D, D}, torch::kDouble) + w.t().mm(w)));
    torch::Tensor wrong = torch::zeros({D, D + 1}, torch::kDouble);
    CHECK_THROWS_WITH(lt::torch_matmul{}(sr::transposed(head.weight), head.weight, lt::mutable_view<double, 2>(wrong, "c"), false),
                      Catch::Contains("torch_matmul") && Catch::Contains("'c'"));
}
