// The linear losses (selfreplay/losses/linear.hpp) against the unfused path (full logits, the fused
// loss, the two gradient products in double loops), finite differences, their options and errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "selfreplay/adapters/eigen.hpp"
#include "selfreplay/losses.hpp"
#include "linear_support.hpp"

namespace sr = selfreplay;
using linear_test::backprop;
using linear_test::grad_storage;
using linear_test::head_data;
using linear_test::loop_matmul;
using linear_test::random_head;
using linear_test::relative_error;
using sr::index_t;

static_assert(sr::matmul<loop_matmul, float> && sr::matmul<loop_matmul, double>);
static_assert(sr::matmul<sr::eigen_matmul, float> && sr::matmul<sr::eigen_matmul, double>);
static_assert(!sr::matmul<int, float>);

namespace {

constexpr float neg_inf = -std::numeric_limits<float>::infinity();

template <class T>
double tol() {
    return std::is_same_v<T, double> ? 1e-11 : 2e-5;
}

template <class T>
std::vector<std::int32_t> random_tokens(index_t B, index_t L, index_t V, unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<std::int32_t> t(std::size_t(B * L));
    for (auto& x : t) x = static_cast<std::int32_t>(rng() % static_cast<unsigned>(V));
    return t;
}

struct ce_setup {
    index_t B = 3, L = 5, D = 7, V = 37;
    sr::reduction how = sr::reduction::mean_all;
    bool mask = false, ignore = false, bias = true, masked_vocab = false;
    double scale = 1.0;
    index_t chunk = 0;
    int threads = 1;
};

// NTP: linear (with `mm`) against the unfused path, value, per-position values and the three gradients.
template <class T, class M>
void check_ce(const ce_setup& s, const M& mm) {
    const index_t N = s.B * s.L;
    auto x = random_head<T>(N, s.D, s.V, s.bias, 11, 3.0);
    if (s.masked_vocab)
        for (index_t v = 0; v < s.V; v += 4) x.b[std::size_t(v)] = static_cast<T>(neg_inf);
    auto tok = random_tokens<T>(s.B, s.L, s.V, 5);
    if (s.masked_vocab) // targets never on a masked entry (that would be +inf)
        for (auto& t : tok)
            if (t % 4 == 0) t = (t + 1) % static_cast<std::int32_t>(s.V);
    if (s.ignore) tok[2] = tok[7] = -100;
    std::vector<std::uint8_t> mask(std::size_t(N), 1);
    if (s.mask) mask[1] = mask[6] = mask[12] = 0;
    const auto tv = sr::make_view(tok.data(), {s.B, s.L});
    const auto mv = sr::make_view(mask.data(), {s.B, s.L});
    std::vector<double> per_ref(std::size_t(N), -1), per(std::size_t(N), -1);
    sr::next_token_options o{.reduction = s.how, .scale = s.scale, .threads = s.threads};
    if (s.mask) o.mask = mv;
    // unfused
    auto z = x.logits();
    std::vector<T> g(z.size());
    o.per_position = sr::make_view(per_ref.data(), {s.B, s.L});
    const auto want = sr::next_token_loss(sr::make_view(z.data(), {N, s.V}), tv, sr::make_view(g.data(), {N, s.V}), o);
    const auto ref = backprop(x, g);
    // linear
    grad_storage<T> out(N, s.D, s.V, T(7));
    o.per_position = sr::make_view(per.data(), {s.B, s.L});
    const auto got = sr::linear_next_token_loss(mm, x.head(), tv, out.views(N, s.D, s.V), o, {.chunk_rows = s.chunk});
    CHECK(got.counted == want.counted);
    CHECK(got.value == Approx(want.value).epsilon(tol<T>()).margin(1e-12));
    for (index_t i = 0; i < N; ++i) CHECK(per[std::size_t(i)] == Approx(per_ref[std::size_t(i)]).epsilon(tol<T>()).margin(1e-12));
    CHECK(relative_error(out.dh, ref.dh) < tol<T>());
    CHECK(relative_error(out.dw, ref.dw) < tol<T>());
    CHECK(relative_error(out.db, ref.db) < tol<T>());
    // value only: the same value
    const auto value_only = sr::linear_next_token_loss(mm, x.head(), tv, {}, o, {.chunk_rows = s.chunk});
    CHECK(value_only.value == got.value);
}

enum class div_kind { forward, reverse, jsd };

struct div_setup {
    index_t B = 3, L = 5, D = 7, Dr = 5, V = 37;
    div_kind kind = div_kind::forward;
    double beta = 0.3, temperature = 1.0, scale = 1.0;
    sr::reduction how = sr::reduction::mean_all;
    bool mask = false, shift = true, masked_vocab = false;
    index_t chunk = 0;
    int threads = 1;
};

template <class T, class M, class S, class R, class G, class GL, class O>
sr::loss_result run_div(div_kind k, const M& mm, const S& s, const R& r, const G& g, const GL& lin_s, const GL& lin_r,
                        const sr::linear_gradients<T>& lg, const O& o, index_t chunk, bool linear, double beta) {
    sr::jsd_options jo{.beta = beta, .temperature = o.temperature, .reduction = o.reduction, .mask = o.mask,
                       .shift = o.shift, .sequence_length = o.sequence_length, .per_position = o.per_position,
                       .scale = o.scale, .accumulate = o.accumulate, .threads = o.threads};
    if (k == div_kind::jsd)
        return linear ? sr::linear_generalized_jsd(mm, lin_s, lin_r, lg, jo, {.chunk_rows = chunk})
                      : sr::generalized_jsd(s, r, g, jo);
    sr::kl_options ko = o;
    ko.direction = k == div_kind::forward ? sr::kl_direction::forward : sr::kl_direction::reverse;
    return linear ? sr::linear_kl_divergence(mm, lin_s, lin_r, lg, ko, {.chunk_rows = chunk}) : sr::kl_divergence(s, r, g, ko);
}

template <class T, class M>
void check_div(const div_setup& s, const M& mm) {
    const index_t N = s.B * s.L;
    auto th = random_head<T>(N, s.D, s.V, true, 21, 3.0);
    auto pi = random_head<T>(N, s.Dr, s.V, true, 22, 3.0);
    if (s.masked_vocab)
        for (index_t v = 1; v < s.V; v += 5) th.b[std::size_t(v)] = pi.b[std::size_t(v)] = static_cast<T>(neg_inf);
    std::vector<std::uint8_t> mask(std::size_t(N), 1);
    if (s.mask) mask[0] = mask[8] = mask[9] = 0;
    std::vector<double> per_ref(std::size_t(N), -1), per(std::size_t(N), -1);
    sr::kl_options o{.temperature = s.temperature, .reduction = s.how, .shift = s.shift, .sequence_length = s.L,
                     .scale = s.scale, .threads = s.threads};
    if (s.mask) o.mask = sr::make_view(mask.data(), {s.B, s.L});
    auto zs = th.logits();
    const auto zr = pi.logits();
    std::vector<T> g(zs.size());
    o.per_position = sr::make_view(per_ref.data(), {s.B, s.L});
    const auto sv = sr::make_view(static_cast<const T*>(zs.data()), {N, s.V});
    const auto rv = sr::make_view(zr.data(), {N, s.V});
    const auto gv = sr::make_view(g.data(), {N, s.V});
    const auto want = run_div<T>(s.kind, mm, sv, rv, gv, th.head(), pi.head(), {}, o, s.chunk, false, s.beta);
    const auto ref = backprop(th, g);
    grad_storage<T> out(N, s.D, s.V, T(7));
    o.per_position = sr::make_view(per.data(), {s.B, s.L});
    const auto got = run_div<T>(s.kind, mm, sv, rv, gv, th.head(), pi.head(), out.views(N, s.D, s.V), o, s.chunk, true, s.beta);
    CHECK(got.counted == want.counted);
    CHECK(got.value == Approx(want.value).epsilon(tol<T>()).margin(1e-12));
    for (index_t i = 0; i < N; ++i) CHECK(per[std::size_t(i)] == Approx(per_ref[std::size_t(i)]).epsilon(tol<T>()).margin(1e-9));
    CHECK(relative_error(out.dh, ref.dh) < tol<T>());
    CHECK(relative_error(out.dw, ref.dw) < tol<T>());
    CHECK(relative_error(out.db, ref.db) < tol<T>());
}

} // namespace

TEMPLATE_TEST_CASE("linear_next_token_loss equals the unfused path", "[losses][linear]", float, double) {
    using T = TestType;
    const loop_matmul loops;
    const sr::eigen_matmul eigen;
    SECTION("defaults, odd N, V, D, one chunk") { check_ce<T>({}, loops); }
    SECTION("chunks of 1 and 4 rows, Eigen") {
        check_ce<T>({.chunk = 1}, eigen);
        check_ce<T>({.chunk = 4}, eigen);
    }
    SECTION("reductions, masks, ignore_index, scale") {
        for (auto how : {sr::reduction::mean_all, sr::reduction::mean_counted, sr::reduction::sum, sr::reduction::none})
            check_ce<T>({.how = how, .mask = true, .ignore = true, .scale = 2.5, .chunk = 3}, loops);
    }
    SECTION("-inf biases (a masked vocabulary), no bias, threads") {
        check_ce<T>({.masked_vocab = true, .chunk = 4}, eigen);
        check_ce<T>({.bias = false, .chunk = 2, .threads = 3}, loops);
    }
    SECTION("larger: V = 2101 (rows of several kernel blocks), D = 33") {
        check_ce<T>({.B = 2, .L = 9, .D = 33, .V = 2101, .mask = true, .chunk = 5}, eigen);
    }
}

TEMPLATE_TEST_CASE("linear KL and JSD equal the unfused path", "[losses][linear]", float, double) {
    using T = TestType;
    const loop_matmul loops;
    const sr::eigen_matmul eigen;
    for (auto kind : {div_kind::forward, div_kind::reverse, div_kind::jsd}) {
        CAPTURE(static_cast<int>(kind));
        check_div<T>({.kind = kind}, loops);
        check_div<T>({.kind = kind, .temperature = 1.7, .scale = 3.0, .mask = true, .chunk = 4}, eigen);
        check_div<T>({.kind = kind, .how = sr::reduction::mean_counted, .masked_vocab = true, .chunk = 1}, loops);
        check_div<T>({.kind = kind, .how = sr::reduction::sum, .shift = false, .chunk = 2, .threads = 2}, eigen);
        check_div<T>({.B = 2, .L = 3, .D = 17, .Dr = 9, .V = 2101, .kind = kind, .beta = 0.7, .chunk = 4}, eigen);
    }
}

TEST_CASE("linear losses: accumulate adds, threads and chunks do not change the value", "[losses][linear]") {
    using T = double;
    const index_t B = 2, L = 6, D = 5, V = 23, N = B * L;
    const auto x = random_head<T>(N, D, V, true, 3, 2.0);
    const auto tok = random_tokens<T>(B, L, V, 9);
    const auto tv = sr::make_view(tok.data(), {B, L});
    const loop_matmul mm;
    grad_storage<T> base(N, D, V), acc(N, D, V, T(0.25));
    const auto v0 = sr::linear_next_token_loss(mm, x.head(), tv, base.views(N, D, V), {.scale = 2.0});
    const auto v1 = sr::linear_next_token_loss(mm, x.head(), tv, acc.views(N, D, V), {.scale = 2.0, .accumulate = true});
    CHECK(v0.value == v1.value);
    for (std::size_t i = 0; i < base.dh.size(); ++i) CHECK(acc.dh[i] == Approx(base.dh[i] + 0.25).margin(1e-14));
    for (std::size_t i = 0; i < base.dw.size(); ++i) CHECK(acc.dw[i] == Approx(base.dw[i] + 0.25).margin(1e-14));
    for (std::size_t i = 0; i < base.db.size(); ++i) CHECK(acc.db[i] == Approx(base.db[i] + 0.25).margin(1e-14));
    // the value is summed per position in position order: the same bits for any chunking and threads
    for (index_t chunk : {1, 2, 5, 11, 100})
        for (int threads : {1, 2, 3}) {
            grad_storage<T> o(N, D, V);
            const auto r = sr::linear_next_token_loss(mm, x.head(), tv, o.views(N, D, V),
                                                      {.threads = threads}, {.chunk_rows = chunk});
            CHECK(r.value == sr::linear_next_token_loss(mm, x.head(), tv, {}, {}, {.chunk_rows = 3}).value);
            if (chunk == 1) continue;
            grad_storage<T> o1(N, D, V);
            sr::linear_next_token_loss(mm, x.head(), tv, o1.views(N, D, V), {.threads = 1}, {.chunk_rows = chunk});
            CHECK(o.dh == o1.dh); // thread count: bit-identical
            CHECK(o.dw == o1.dw);
        }
    // only some gradients asked for
    grad_storage<T> only_w(N, D, V, T(3));
    sr::linear_next_token_loss(mm, x.head(), tv, {.weight = sr::make_view(only_w.dw.data(), {V, D})}, {.scale = 2.0});
    CHECK(relative_error(only_w.dw, base.dw) < 1e-14);
    CHECK(only_w.dh[0] == 3.0);
    CHECK(only_w.db[0] == 3.0);
}

TEST_CASE("linear losses: nothing counted gives 0 and zero gradients; strided and column-major inputs", "[losses][linear]") {
    using T = double;
    const index_t B = 2, L = 3, D = 4, V = 9, N = B * L;
    const auto x = random_head<T>(N, D, V, true, 8);
    std::vector<std::int32_t> tok(std::size_t(N), -100);
    grad_storage<T> g(N, D, V, T(5));
    const loop_matmul mm;
    const auto r = sr::linear_next_token_loss(mm, x.head(), sr::make_view(tok.data(), {B, L}), g.views(N, D, V),
                                              {.reduction = sr::reduction::mean_counted});
    CHECK(r.value == 0.0);
    CHECK(r.counted == 0);
    for (T v : g.dh) CHECK(v == 0.0);
    for (T v : g.dw) CHECK(v == 0.0);
    for (T v : g.db) CHECK(v == 0.0);

    // W stored transposed ([D, V] row-major, as the lab stores it), H with padded rows, strided dW
    const auto tk = random_tokens<T>(B, L, V, 4);
    std::vector<T> wt(std::size_t(D * V)), hp(std::size_t(N * (D + 3)), std::nan(""));
    for (index_t v = 0; v < V; ++v)
        for (index_t d = 0; d < D; ++d) wt[std::size_t(d * V + v)] = x.w[std::size_t(v * D + d)];
    for (index_t i = 0; i < N; ++i)
        for (index_t d = 0; d < D; ++d) hp[std::size_t(i * (D + 3) + d)] = x.h[std::size_t(i * D + d)];
    sr::linear_head<T> h2{sr::make_view(static_cast<const T*>(hp.data()), {N, D}, {D + 3, 1}),
                          sr::transposed(sr::make_view(static_cast<const T*>(wt.data()), {D, V})), x.head().bias};
    std::vector<T> dwt(std::size_t(D * V));
    grad_storage<T> want(N, D, V), got(N, D, V);
    const auto tv = sr::make_view(tk.data(), {B, L});
    const auto a = sr::linear_next_token_loss(mm, x.head(), tv, want.views(N, D, V));
    auto gv = got.views(N, D, V);
    gv.weight = sr::transposed(sr::make_view(dwt.data(), {D, V}));
    const auto b = sr::linear_next_token_loss(sr::eigen_matmul{}, h2, tv, gv);
    CHECK(b.value == Approx(a.value).epsilon(1e-13));
    CHECK(relative_error(got.dh, want.dh) < 1e-13);
    for (index_t v = 0; v < V; ++v)
        for (index_t d = 0; d < D; ++d) CHECK(dwt[std::size_t(d * V + v)] == Approx(want.dw[std::size_t(v * D + d)]).margin(1e-13));
}

TEST_CASE("linear losses: finite differences for dH, dW and d bias", "[losses][linear]") {
    using T = double;
    const index_t B = 2, L = 4, D = 3, Dr = 4, V = 7, N = B * L;
    auto th = random_head<T>(N, D, V, true, 31, 2.0);
    auto pi = random_head<T>(N, Dr, V, true, 32, 2.0);
    th.b[2] = pi.b[2] = -std::numeric_limits<T>::infinity(); // the same masked entry (else KL is +inf)
    const auto tok = random_tokens<T>(B, L, V, 33);
    std::vector<std::int32_t> tk = tok;
    for (auto& t : tk)
        if (t == 2) t = 3;
    const loop_matmul mm;
    const double tau = 1.3;
    auto value = [&](int which, const head_data<T>& h) {
        const auto tv = sr::make_view(tk.data(), {B, L});
        switch (which) {
        case 0: return sr::linear_next_token_loss(mm, h.head(), tv, {}, {.scale = 1.5}).value;
        case 1: return sr::linear_kl_divergence(mm, h.head(), pi.head(), {}, {.temperature = tau, .sequence_length = L}).value;
        case 2:
            return sr::linear_kl_divergence(mm, h.head(), pi.head(), {},
                                            {.direction = sr::kl_direction::reverse, .temperature = tau, .sequence_length = L})
                .value;
        default: return sr::linear_generalized_jsd(mm, h.head(), pi.head(), {}, {.beta = 0.4, .sequence_length = L}).value;
        }
    };
    auto with_grads = [&](int which, const head_data<T>& h, const sr::linear_gradients<T>& g) {
        const auto tv = sr::make_view(tk.data(), {B, L});
        switch (which) {
        case 0: sr::linear_next_token_loss(mm, h.head(), tv, g, {.scale = 1.5}, {.chunk_rows = 3}); break;
        case 1: sr::linear_kl_divergence(mm, h.head(), pi.head(), g, {.temperature = tau, .sequence_length = L}, {.chunk_rows = 3}); break;
        case 2:
            sr::linear_kl_divergence(mm, h.head(), pi.head(), g,
                                     {.direction = sr::kl_direction::reverse, .temperature = tau, .sequence_length = L},
                                     {.chunk_rows = 3});
            break;
        default: sr::linear_generalized_jsd(mm, h.head(), pi.head(), g, {.beta = 0.4, .sequence_length = L}, {.chunk_rows = 3});
        }
    };
    for (int which = 0; which < 4; ++which) {
        CAPTURE(which);
        grad_storage<T> g(N, D, V);
        with_grads(which, th, g.views(N, D, V));
        const double eps = 1e-6;
        auto fd = [&](std::vector<T>& param, std::size_t i) {
            const T keep = param[i];
            param[i] = keep + eps;
            const double up = value(which, th);
            param[i] = keep - eps;
            const double down = value(which, th);
            param[i] = keep;
            return (up - down) / (2 * eps);
        };
        for (std::size_t i = 0; i < th.h.size(); ++i) CHECK(g.dh[i] == Approx(fd(th.h, i)).margin(1e-7));
        for (std::size_t i = 0; i < th.w.size(); ++i) CHECK(g.dw[i] == Approx(fd(th.w, i)).margin(1e-7));
        for (std::size_t i = 0; i < th.b.size(); ++i)
            if (i != 2) CHECK(g.db[i] == Approx(fd(th.b, i)).margin(1e-7));
        CHECK(g.db[2] == 0.0); // a masked entry has probability 0 in every row
    }
}

TEST_CASE("linear losses: bad input is refused naming the argument", "[losses][linear][errors]") {
    using T = float;
    const index_t B = 2, L = 3, D = 4, V = 9, N = B * L;
    auto x = random_head<T>(N, D, V, true, 1);
    auto pi = random_head<T>(N, D, V, true, 2);
    const auto tok = random_tokens<T>(B, L, V, 3);
    const auto tv = sr::make_view(tok.data(), {B, L});
    const loop_matmul mm;
    using Catch::Matchers::Contains;
    auto ce = [&](const sr::linear_head<T>& h, const sr::linear_gradients<T>& g = {}) {
        return sr::linear_next_token_loss(mm, h, tv, g);
    };
    auto kl = [&](const sr::linear_head<T>& s, const sr::linear_head<T>& r, const sr::linear_gradients<T>& g = {}) {
        return sr::linear_kl_divergence(mm, s, r, g, {.sequence_length = L});
    };
    // shapes: H vs tokens, W vs H, bias vs W, reference vs student, gradients
    auto h = x.head();
    h.hidden = sr::make_view(x.h.data(), {N - 1, D});
    CHECK_THROWS_WITH(ce(h), Contains("linear_next_token_loss") && Contains("'tokens'") && Contains("5 rows"));
    h = x.head();
    h.weight = sr::make_view(x.w.data(), {V, D - 1});
    CHECK_THROWS_WITH(ce(h), Contains("'head.weight'") && Contains("D = 4"));
    h = x.head();
    h.bias = sr::make_view(x.b.data(), {V - 1});
    CHECK_THROWS_WITH(ce(h), Contains("'head.bias'") && Contains("V = 9"));
    auto r = pi.head();
    r.weight = sr::make_view(pi.w.data(), {V - 2, D});
    CHECK_THROWS_WITH(kl(x.head(), r), Contains("linear_kl_divergence") && Contains("'reference.weight'"));
    r = pi.head();
    r.hidden = sr::make_view(pi.h.data(), {N - 3, D});
    CHECK_THROWS_WITH(kl(x.head(), r), Contains("'reference.hidden'"));
    grad_storage<T> g(N, D, V);
    auto gv = g.views(N, D, V);
    gv.hidden = sr::make_view(g.dh.data(), {N, D - 1});
    CHECK_THROWS_WITH(ce(x.head(), gv), Contains("'gradients.hidden'"));
    gv = g.views(N, D, V);
    gv.weight = sr::make_view(g.dw.data(), {V - 1, D});
    CHECK_THROWS_WITH(kl(x.head(), pi.head(), gv), Contains("'gradients.weight'"));
    gv = g.views(N, D, V);
    gv.bias = sr::make_view(g.db.data(), {V + 1});
    CHECK_THROWS_WITH(ce(x.head(), gv), Contains("'gradients.bias'"));
    // empty N, empty D
    h = x.head();
    h.hidden = sr::make_view(x.h.data(), {0, D});
    CHECK_THROWS_WITH(sr::linear_next_token_loss(mm, h, sr::make_view(tok.data(), {0, L})), Contains("'head.hidden'") && Contains("N = 0"));
    CHECK_THROWS_WITH(sr::linear_kl_divergence(mm, h, h, {}, {.shift = false}), Contains("'student.hidden'") && Contains("N = 0"));
    // non-finite weights, bias, hidden states
    x.w[5] = std::numeric_limits<T>::quiet_NaN();
    CHECK_THROWS_WITH(ce(x.head()), Contains("'head.weight'") && Contains("finite"));
    x.w[5] = 0.5f;
    pi.w[7] = std::numeric_limits<T>::infinity();
    CHECK_THROWS_WITH(kl(x.head(), pi.head()), Contains("'reference.weight'") && Contains("finite"));
    pi.w[7] = 0.5f;
    x.b[3] = std::numeric_limits<T>::infinity();
    CHECK_THROWS_WITH(ce(x.head()), Contains("'head.bias'") && Contains("-inf"));
    for (auto& b : x.b) b = neg_inf;
    CHECK_THROWS_WITH(ce(x.head()), Contains("'head.bias'") && Contains("everywhere"));
    for (auto& b : x.b) b = 0.0f;
    x.h[2] = std::numeric_limits<T>::quiet_NaN(); // row 0 (counted)
    CHECK_THROWS_WITH(ce(x.head()), Contains("'head.hidden'") && Contains("(0, 2)"));
    CHECK_THROWS_WITH(kl(x.head(), pi.head()), Contains("'student.hidden'"));
    x.h[2] = 0.0f;
    x.h[std::size_t((L - 1) * D)] = std::numeric_limits<T>::quiet_NaN(); // last position: not counted, not read
    CHECK_NOTHROW(ce(x.head()));
    // logits that overflow
    x.h[std::size_t((L - 1) * D)] = 0.0f;
    for (auto& w : x.w) w = 1e30f;
    for (auto& e : x.h) e = 1e30f;
    CHECK_THROWS_WITH(ce(x.head()), Contains("'head.hidden'") && Contains("overflow"));
    // options
    x = random_head<T>(N, D, V, true, 1);
    CHECK_THROWS_WITH(sr::linear_next_token_loss(mm, x.head(), tv, {}, {}, {.chunk_rows = -1}), Contains("'chunking.chunk_rows'"));
    CHECK_THROWS_WITH(sr::linear_kl_divergence(mm, x.head(), pi.head(), {}, {.temperature = 0, .sequence_length = L}),
                      Contains("'options.temperature'"));
    CHECK_THROWS_WITH(sr::linear_kl_divergence(mm, x.head(), pi.head()), Contains("'options.sequence_length'"));
    CHECK_THROWS_WITH(sr::linear_kl_divergence(mm, x.head(), pi.head(), {}, {.sequence_length = 4}), Contains("'student.hidden'"));
    CHECK_THROWS_WITH(sr::linear_generalized_jsd(mm, x.head(), pi.head(), {}, {.beta = 1.5, .sequence_length = L}),
                      Contains("linear_generalized_jsd") && Contains("'options.beta'"));
    std::vector<std::int32_t> bad = tok;
    bad[1] = static_cast<std::int32_t>(V);
    CHECK_THROWS_WITH(sr::linear_next_token_loss(mm, x.head(), sr::make_view(bad.data(), {B, L})),
                      Contains("'tokens'") && Contains("outside the vocabulary"));
    CHECK_THROWS_WITH(sr::linear_next_token_loss(mm, x.head(), tv, {}, {.reduction = sr::reduction::none}),
                      Contains("'options.per_position'"));
    std::vector<std::uint8_t> m(static_cast<std::size_t>(N), 1);
    CHECK_THROWS_WITH(sr::linear_next_token_loss(mm, x.head(), tv, {}, {.mask = sr::make_view(m.data(), {L, B})}),
                      Contains("'options.mask'"));
    CHECK_THROWS_WITH(sr::linear_next_token_loss(mm, x.head(), tv, {}, {.threads = 0}), Contains("'options.threads'"));
}
