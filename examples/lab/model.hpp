#pragma once
//! \file
//! The lab's "existing trainer": a tiny decoder-only (causal) transformer language model on Eigen,
//! with hand-written backpropagation and AdamW. It is not part of the library: it stands for the
//! user's own trainer, which hands logits to selfreplay and takes logit gradients back.
//!
//! Architecture (pre-LayerNorm GPT): token + learned position embeddings; `layers` blocks of
//! multi-head causal self-attention and a ReLU MLP (width `ff`), each with a residual
//! connection; a final LayerNorm and an untied output projection to `vocab` logits.
//! Vocabulary, maximum sequence length, width, depth and heads are run-time parameters, so the
//! same model serves the toy task (20 tokens, length 14) and character-level text.
//!
//! All parameters live in one flat float vector (so copying theta into pi, AdamW and weight
//! norms are single loops); named Eigen maps point into it.

#include <Eigen/Core>
#include <Eigen/StdVector>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace lab {

using matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using row_vector = Eigen::Matrix<float, 1, Eigen::Dynamic>;
using matrix_map = Eigen::Map<matrix>;
using const_matrix_map = Eigen::Map<const matrix>;
using vector_map = Eigen::Map<row_vector>;
using const_vector_map = Eigen::Map<const row_vector>;
//! Parameter storage, aligned for Eigen's packets: results must not depend on where the heap
//! happens to put it (alignment changes the order of vectorised sums, hence the rounding).
using param_vector = std::vector<float, Eigen::aligned_allocator<float>>;

//! Shape of the transformer.
struct model_config {
    int vocab = 20;    //!< number of token ids
    int max_len = 16;  //!< longest sequence (positions)
    int width = 64;    //!< residual width d
    int layers = 2;    //!< transformer blocks
    int heads = 4;     //!< attention heads (width must divide by heads)
    int ff = 256;      //!< hidden width of the MLP

    void check() const {
        auto bad = [](const std::string& what) { throw std::invalid_argument("lab::model_config: " + what); };
        if (vocab < 2) bad("vocab must be >= 2");
        if (max_len < 2) bad("max_len must be >= 2");
        if (width < 1 || layers < 1 || heads < 1 || ff < 1) bad("width, layers, heads and ff must be >= 1");
        if (width % heads != 0) bad("width " + std::to_string(width) + " is not divisible by heads " + std::to_string(heads));
    }
};

//! Offsets of every parameter tensor in the flat parameter vector.
struct param_layout {
    struct block {
        std::size_t ln1_g, ln1_b, wqkv, bqkv, wo, bo, ln2_g, ln2_b, w1, b1, w2, b2;
    };
    std::size_t tok, pos, lnf_g, lnf_b, wout, bout;
    std::vector<block> blocks;
    std::size_t size = 0;
    std::vector<std::pair<std::size_t, std::size_t>> decayed;  //!< (offset, count) of weight matrices

    explicit param_layout(const model_config& c) {
        const std::size_t d = c.width, f = c.ff, v = c.vocab;
        auto take = [&](std::size_t n, bool decay) {
            std::size_t at = size;
            size += n;
            if (decay) decayed.emplace_back(at, n);
            return at;
        };
        tok = take(v * d, true);
        pos = take(c.max_len * d, true);
        for (int l = 0; l < c.layers; ++l) {
            block b{};
            b.ln1_g = take(d, false);
            b.ln1_b = take(d, false);
            b.wqkv = take(d * 3 * d, true);
            b.bqkv = take(3 * d, false);
            b.wo = take(d * d, true);
            b.bo = take(d, false);
            b.ln2_g = take(d, false);
            b.ln2_b = take(d, false);
            b.w1 = take(d * f, true);
            b.b1 = take(f, false);
            b.w2 = take(f * d, true);
            b.b2 = take(d, false);
            blocks.push_back(b);
        }
        lnf_g = take(d, false);
        lnf_b = take(d, false);
        wout = take(d * v, true);
        bout = take(v, false);
    }
};

//! Activations of one forward pass kept for the backward pass.
struct forward_cache {
    struct block {
        matrix x_in, h1, qkv, att_out, x_mid, h2, u, a;  // u: MLP pre-activation, a = relu(u)
        std::vector<float> mu1, rs1, mu2, rs2;
        std::vector<float> probs;  // [B, H, T, T]
    };
    int batch = 0, len = 0;
    std::vector<std::int32_t> tokens;
    std::vector<block> blocks;
    matrix x_final, hf;
    std::vector<float> muf, rsf;
    //! Scratch of `backward`, kept between steps so that a training step allocates nothing.
    struct scratch {
        matrix dh, dx, dact, dqkv;
        param_vector grad;
    } work;
};

//! Per-sequence key/value cache for incremental decoding (one token per step).
struct kv_cache {
    int batch = 0, len = 0;        //!< sequences, positions filled so far
    std::vector<matrix> k, v;      //!< per layer: [batch * max_len, width]
};

class transformer {
public:
    explicit transformer(const model_config& c) : cfg_(c), layout_((c.check(), c)), params_(layout_.size, 0.f) {}

    const model_config& config() const { return cfg_; }
    const param_layout& layout() const { return layout_; }
    param_vector& params() { return params_; }
    const param_vector& params() const { return params_; }
    std::size_t num_params() const { return params_.size(); }
    int vocab_size() const { return cfg_.vocab; }

    //! GPT-2 style initialisation: N(0, 0.02) weights, residual output projections scaled by
    //! 1/sqrt(2 * layers), zero biases, unit LayerNorm gains.
    void init(std::uint64_t seed) {
        std::mt19937_64 gen(seed);
        std::normal_distribution<float> n(0.f, 0.02f);
        const float resid = 0.02f / std::sqrt(2.f * static_cast<float>(cfg_.layers));
        std::normal_distribution<float> nr(0.f, resid);
        std::fill(params_.begin(), params_.end(), 0.f);
        for (auto [at, count] : layout_.decayed)
            for (std::size_t i = 0; i < count; ++i) params_[at + i] = n(gen);
        for (const auto& b : layout_.blocks) {
            for (std::size_t i = 0; i < std::size_t(cfg_.width * cfg_.width); ++i) params_[b.wo + i] = nr(gen);
            for (std::size_t i = 0; i < std::size_t(cfg_.ff * cfg_.width); ++i) params_[b.w2 + i] = nr(gen);
            std::fill_n(params_.begin() + b.ln1_g, cfg_.width, 1.f);
            std::fill_n(params_.begin() + b.ln2_g, cfg_.width, 1.f);
        }
        std::fill_n(params_.begin() + layout_.lnf_g, cfg_.width, 1.f);
    }

    //! Full forward pass over `batch` sequences of `len` tokens (row-major [batch, len]).
    //! Writes logits [batch * len, vocab]; fills `cache` for `backward` when given.
    void forward(const std::int32_t* tokens, int batch, int len, matrix& logits, forward_cache* cache = nullptr) const {
        forward_cache local;
        forward_cache& c = cache ? *cache : local;
        forward_hidden(tokens, batch, len, c);
        logits.noalias() = c.hf * cmap(layout_.wout, cfg_.width, cfg_.vocab);
        logits.rowwise() += cvec(layout_.bout, cfg_.vocab);
    }

    //! The forward pass up to the output layer: the final LayerNorm's output, the hidden states
    //! the output layer reads, in `c.hf` [batch * len, width] (with the rest of `c` for `backward`).
    void forward_hidden(const std::int32_t* tokens, int batch, int len, forward_cache& c) const {
        check_shape(batch, len);
        const int d = cfg_.width, n = batch * len;
        c.batch = batch;
        c.len = len;
        c.tokens.assign(tokens, tokens + n);
        c.blocks.resize(cfg_.layers);
        matrix& x = c.x_final;  // the residual stream; after the last block, the final LayerNorm's input
        x.resize(n, d);
        embed(tokens, batch, len, 0, x);
        for (int l = 0; l < cfg_.layers; ++l) {
            auto& b = c.blocks[l];
            const auto& p = layout_.blocks[l];
            b.x_in = x;
            layer_norm(x, p.ln1_g, p.ln1_b, b.h1, b.mu1, b.rs1);
            b.qkv.noalias() = b.h1 * cmap(p.wqkv, d, 3 * d);
            b.qkv.rowwise() += cvec(p.bqkv, 3 * d);
            b.att_out.resize(n, d);
            attention(b.qkv, batch, len, b.att_out, b.probs);
            x.noalias() += b.att_out * cmap(p.wo, d, d);
            x.rowwise() += cvec(p.bo, d);
            b.x_mid = x;
            layer_norm(x, p.ln2_g, p.ln2_b, b.h2, b.mu2, b.rs2);
            b.u.noalias() = b.h2 * cmap(p.w1, d, cfg_.ff);
            b.u.rowwise() += cvec(p.b1, cfg_.ff);
            b.a = b.u.cwiseMax(0.f);
            x.noalias() += b.a * cmap(p.w2, cfg_.ff, d);
            x.rowwise() += cvec(p.b2, d);
        }
        layer_norm(x, layout_.lnf_g, layout_.lnf_b, c.hf, c.muf, c.rsf);
    }

    //! Backpropagates `dlogits` [batch * len, vocab] through the pass recorded in `c`,
    //! ADDING the parameter gradients into `grad_out` (same layout as the parameters). `c`'s
    //! scratch is reused.
    void backward(forward_cache& c, const matrix& dlogits, std::vector<float>& grad_out) const {
        if (grad_out.size() != params_.size()) grad_out.assign(params_.size(), 0.f);
        param_vector& grad = c.work.grad;  // aligned, so the result does not depend on grad_out's address
        grad.assign(params_.size(), 0.f);
        backward(c, dlogits, grad);
        for (std::size_t i = 0; i < grad.size(); ++i) grad_out[i] += grad[i];
    }

    //! As above, into an aligned parameter vector (no copy).
    void backward(forward_cache& c, const matrix& dlogits, param_vector& grad) const {
        const int d = cfg_.width, n = c.batch * c.len;
        if (dlogits.rows() != n || dlogits.cols() != cfg_.vocab)
            throw std::invalid_argument("lab::transformer::backward: dlogits has the wrong shape");
        if (grad.size() != params_.size()) throw std::invalid_argument("lab::transformer::backward: grad has the wrong size");
        gmap(grad, layout_.wout, d, cfg_.vocab).noalias() += c.hf.transpose() * dlogits;
        gvec(grad, layout_.bout, cfg_.vocab) += dlogits.colwise().sum();
        c.work.dh.noalias() = dlogits * cmap(layout_.wout, d, cfg_.vocab).transpose();
        backward_below_output(c, grad);
    }

    //! Backpropagates d loss / d hidden states (`dhidden` [batch * len, width], the gradient with
    //! respect to `c.hf` of `forward_hidden`), ADDING the gradients of every parameter below the
    //! output layer into `grad`; the output layer's own gradients are the caller's.
    void backward_hidden(forward_cache& c, const matrix& dhidden, param_vector& grad) const {
        if (dhidden.rows() != std::ptrdiff_t(c.batch) * c.len || dhidden.cols() != cfg_.width)
            throw std::invalid_argument("lab::transformer::backward_hidden: dhidden has the wrong shape");
        if (grad.size() != params_.size()) throw std::invalid_argument("lab::transformer::backward_hidden: grad has the wrong size");
        c.work.dh = dhidden;
        backward_below_output(c, grad);
    }

    //! Starts incremental decoding for `batch` sequences (empties the cache).
    void start(kv_cache& cache, int batch) const {
        if (batch < 1) throw std::invalid_argument("lab::transformer::start: batch must be >= 1");
        cache.batch = batch;
        cache.len = 0;
        cache.k.resize(cfg_.layers);
        cache.v.resize(cfg_.layers);
        for (int l = 0; l < cfg_.layers; ++l) {
            cache.k[l].resize(std::size_t(batch) * cfg_.max_len, cfg_.width);
            cache.v[l].resize(std::size_t(batch) * cfg_.max_len, cfg_.width);
        }
    }

    //! Appends one token per sequence and writes the next-token logits [batch, vocab] (and, when
    //! `hidden` is given, the hidden states the output layer read [batch, width]).
    void step(kv_cache& cache, const std::int32_t* tokens, matrix& logits, matrix* hidden = nullptr) const {
        const int B = cache.batch, d = cfg_.width, t = cache.len, H = cfg_.heads, dh = d / H;
        if (t >= cfg_.max_len) throw std::invalid_argument("lab::transformer::step: sequence longer than max_len");
        for (int i = 0; i < B; ++i)
            if (tokens[i] < 0 || tokens[i] >= cfg_.vocab)
                throw std::invalid_argument("lab::transformer::step: token id out of range");
        matrix x(B, d), h, qkv, att(B, d), u;
        std::vector<float> mu, rs;
        embed(tokens, B, 1, t, x);
        const float scale = 1.f / std::sqrt(static_cast<float>(dh));
        Eigen::VectorXf s(t + 1);
        for (int l = 0; l < cfg_.layers; ++l) {
            const auto& p = layout_.blocks[l];
            layer_norm(x, p.ln1_g, p.ln1_b, h, mu, rs);
            qkv.noalias() = h * cmap(p.wqkv, d, 3 * d);
            qkv.rowwise() += cvec(p.bqkv, 3 * d);
            matrix& K = cache.k[l];
            matrix& V = cache.v[l];
            for (int b = 0; b < B; ++b) {
                const std::size_t row = std::size_t(b) * cfg_.max_len + t;
                K.row(row) = qkv.row(b).segment(d, d);
                V.row(row) = qkv.row(b).segment(2 * d, d);
                for (int hd = 0; hd < H; ++hd) {  // p = softmax(K q / sqrt(dh)) over positions 0..t; out = p^T V
                    const auto q = qkv.row(b).segment(hd * dh, dh);
                    s.noalias() = K.block(row - t, hd * dh, t + 1, dh).lazyProduct(q.transpose());
                    s = ((s.array() - s.maxCoeff()) * scale).exp().matrix();
                    s /= s.sum();
                    att.row(b).segment(hd * dh, dh).noalias() = s.transpose().lazyProduct(V.block(row - t, hd * dh, t + 1, dh));
                }
            }
            x.noalias() += att * cmap(p.wo, d, d);
            x.rowwise() += cvec(p.bo, d);
            layer_norm(x, p.ln2_g, p.ln2_b, h, mu, rs);
            u.noalias() = h * cmap(p.w1, d, cfg_.ff);
            u.rowwise() += cvec(p.b1, cfg_.ff);
            x.noalias() += u.cwiseMax(0.f) * cmap(p.w2, cfg_.ff, d);
            x.rowwise() += cvec(p.b2, d);
        }
        layer_norm(x, layout_.lnf_g, layout_.lnf_b, h, mu, rs);
        logits.noalias() = h * cmap(layout_.wout, d, cfg_.vocab);
        logits.rowwise() += cvec(layout_.bout, cfg_.vocab);
        if (hidden) *hidden = h;
        ++cache.len;
    }

private:
    //! The backward pass from d loss / d hf (in `c.work.dh`) down to the embeddings, adding into `grad`.
    void backward_below_output(forward_cache& c, param_vector& grad) const {
        const int d = cfg_.width, f = cfg_.ff, n = c.batch * c.len;
        matrix &dh = c.work.dh, &dx = c.work.dx, &dact = c.work.dact, &dqkv = c.work.dqkv;
        dx.setZero(n, d);
        layer_norm_backward(c.x_final, c.muf, c.rsf, dh, layout_.lnf_g, layout_.lnf_b, grad, dx);
        for (int l = cfg_.layers - 1; l >= 0; --l) {
            const auto& b = c.blocks[l];
            const auto& p = layout_.blocks[l];
            // MLP: x += relu(h2 W1 + b1) W2 + b2
            gmap(grad, p.w2, f, d).noalias() += b.a.transpose() * dx;
            gvec(grad, p.b2, d) += dx.colwise().sum();
            dact.noalias() = dx * cmap(p.w2, f, d).transpose();
            dact = (b.u.array() > 0.f).select(dact, 0.f);
            gmap(grad, p.w1, d, f).noalias() += b.h2.transpose() * dact;
            gvec(grad, p.b1, f) += dact.colwise().sum();
            dh.noalias() = dact * cmap(p.w1, d, f).transpose();
            layer_norm_backward(b.x_mid, b.mu2, b.rs2, dh, p.ln2_g, p.ln2_b, grad, dx);
            // attention: x += att_out Wo + bo
            gmap(grad, p.wo, d, d).noalias() += b.att_out.transpose() * dx;
            gvec(grad, p.bo, d) += dx.colwise().sum();
            dh.noalias() = dx * cmap(p.wo, d, d).transpose();  // d att_out
            dqkv.resize(n, 3 * d);
            attention_backward(b.qkv, b.probs, dh, c.batch, c.len, dqkv);
            gmap(grad, p.wqkv, d, 3 * d).noalias() += b.h1.transpose() * dqkv;
            gvec(grad, p.bqkv, 3 * d) += dqkv.colwise().sum();
            dh.noalias() = dqkv * cmap(p.wqkv, d, 3 * d).transpose();
            layer_norm_backward(b.x_in, b.mu1, b.rs1, dh, p.ln1_g, p.ln1_b, grad, dx);
        }
        for (int i = 0; i < n; ++i) {
            const int t = i % c.len;
            gvec(grad, layout_.tok + std::size_t(c.tokens[i]) * d, d) += dx.row(i);
            gvec(grad, layout_.pos + std::size_t(t) * d, d) += dx.row(i);
        }
    }

    const_matrix_map cmap(std::size_t at, int r, int c) const { return {params_.data() + at, r, c}; }
    const_vector_map cvec(std::size_t at, int n) const { return {params_.data() + at, n}; }
    static matrix_map gmap(param_vector& g, std::size_t at, int r, int c) { return {g.data() + at, r, c}; }
    static vector_map gvec(param_vector& g, std::size_t at, int n) { return {g.data() + at, n}; }

    void check_shape(int batch, int len) const {
        if (batch < 1 || len < 1 || len > cfg_.max_len)
            throw std::invalid_argument("lab::transformer::forward: need batch >= 1 and 1 <= len <= max_len, got batch " +
                                        std::to_string(batch) + ", len " + std::to_string(len));
    }

    void embed(const std::int32_t* tokens, int batch, int len, int pos0, matrix& x) const {
        const int d = cfg_.width;
        for (int b = 0; b < batch; ++b)
            for (int t = 0; t < len; ++t) {
                const std::int32_t id = tokens[b * len + t];
                if (id < 0 || id >= cfg_.vocab)
                    throw std::invalid_argument("lab::transformer: token id " + std::to_string(id) + " out of range");
                x.row(b * len + t) = cvec(layout_.tok + std::size_t(id) * d, d) + cvec(layout_.pos + std::size_t(pos0 + t) * d, d);
            }
    }

    void layer_norm(const matrix& x, std::size_t g, std::size_t bta, matrix& y, std::vector<float>& mu,
                    std::vector<float>& rs) const {
        const int n = static_cast<int>(x.rows()), d = static_cast<int>(x.cols());
        y.resize(n, d);
        mu.resize(n);
        rs.resize(n);
        const auto gam = cvec(g, d), bet = cvec(bta, d);
        for (int i = 0; i < n; ++i) {
            const float m = x.row(i).mean();
            const float var = (x.row(i).array() - m).square().mean();
            const float r = 1.f / std::sqrt(var + 1e-5f);
            mu[i] = m;
            rs[i] = r;
            y.row(i) = ((x.row(i).array() - m) * r * gam.array() + bet.array()).matrix();
        }
    }

    void layer_norm_backward(const matrix& x, const std::vector<float>& mu, const std::vector<float>& rs, const matrix& dy,
                             std::size_t g, std::size_t bta, param_vector& grad, matrix& dx) const {
        const int n = static_cast<int>(x.rows()), d = static_cast<int>(x.cols());
        const auto gam = cvec(g, d);
        auto dg = gvec(grad, g, d);
        auto db = gvec(grad, bta, d);
        row_vector xhat(d), dxhat(d);
        for (int i = 0; i < n; ++i) {
            xhat = (x.row(i).array() - mu[i]) * rs[i];
            dg.array() += dy.row(i).array() * xhat.array();
            db += dy.row(i);
            dxhat = (dy.row(i).array() * gam.array()).matrix();
            const float m1 = dxhat.mean();
            const float m2 = (dxhat.array() * xhat.array()).mean();
            dx.row(i).array() += rs[i] * (dxhat.array() - m1 - xhat.array() * m2);
        }
    }

    //! Causal multi-head attention of every sequence: per (sequence, head), with Q, K, V the
    //! head's [len, dh] slices of qkv, P = softmax_rows(mask(Q K^T / sqrt(dh))) (stored in
    //! `probs` [batch, heads, len, len], zero above the diagonal) and out = P V.
    void attention(const matrix& qkv, int batch, int len, matrix& out, std::vector<float>& probs) const {
        with_head_width([&](auto dh) { this->template attention_heads<decltype(dh)::value>(qkv, batch, len, out, probs); });
    }

    //! Backward of `attention`: dP = dO V^T, dS = P .* (dP - rowsum(P .* dP)) / sqrt(dh),
    //! dQ = dS K, dK = dS^T Q, dV = P^T dO, written into the head's slices of dqkv.
    void attention_backward(const matrix& qkv, const std::vector<float>& probs, const matrix& dout, int batch, int len,
                            matrix& dqkv) const {
        with_head_width([&](auto dh) {
            this->template attention_backward_heads<decltype(dh)::value>(qkv, probs, dout, batch, len, dqkv);
        });
    }

    //! Calls f(std::integral_constant<int, DH>{}) with DH = the head width width / heads when a
    //! fixed-size (unrolled, vectorised) attention kernel exists for it (8, 12, 16, 32), else
    //! DH = Eigen::Dynamic.
    template <class F>
    void with_head_width(F&& f) const {
        switch (cfg_.width / cfg_.heads) {
        case 8: return f(std::integral_constant<int, 8>{});
        case 12: return f(std::integral_constant<int, 12>{});
        case 16: return f(std::integral_constant<int, 16>{});
        case 32: return f(std::integral_constant<int, 32>{});
        default: return f(std::integral_constant<int, Eigen::Dynamic>{});
        }
    }

    //! One head's slice of one row (`DH` = head width, or Eigen::Dynamic): a fixed-size map lets
    //! Eigen unroll and vectorise the short dot products and row updates of attention.
    template <int DH>
    using head_row = Eigen::Map<Eigen::Matrix<float, 1, DH>>;
    template <int DH>
    using const_head_row = Eigen::Map<const Eigen::Matrix<float, 1, DH>>;

    //! `attention` for head width DH; only the causal (lower) triangle of Q K^T is computed.
    template <int DH>
    void attention_heads(const matrix& qkv, int batch, int len, matrix& out, std::vector<float>& probs) const {
        const int d = cfg_.width, H = cfg_.heads, dh = d / H;
        const float scale = 1.f / std::sqrt(static_cast<float>(dh));
        const std::ptrdiff_t ld = qkv.cols(), lo = out.cols();
        probs.resize(std::size_t(batch) * H * len * len);
        // the softmax runs in an aligned buffer: Eigen treats an unaligned head of a vector
        // differently (scalar exp, another summation order), which would make the result depend
        // on where the heap put `probs`
        Eigen::ArrayXf scores(len);
        for (int b = 0; b < batch; ++b)
            for (int h = 0; h < H; ++h) {
                float* P = probs.data() + (std::size_t(b) * H + h) * len * len;
                const float* q0 = qkv.data() + std::ptrdiff_t(b) * len * ld + h * dh;  // Q row 0; K at +d, V at +2d
                for (int i = 0; i < len; ++i) {
                    float* p = P + std::ptrdiff_t(i) * len;
                    const const_head_row<DH> q(q0 + i * ld, dh);
                    auto s = scores.head(i + 1);
                    for (int j = 0; j <= i; ++j) s[j] = q.dot(const_head_row<DH>(q0 + j * ld + d, dh));
                    s = ((s - s.maxCoeff()) * scale).exp();
                    s /= s.sum();
                    std::copy_n(s.data(), i + 1, p);
                    std::fill(p + i + 1, p + len, 0.f);
                    head_row<DH> o(out.data() + (std::ptrdiff_t(b) * len + i) * lo + h * dh, dh);
                    o = p[0] * const_head_row<DH>(q0 + 2 * d, dh);
                    for (int j = 1; j <= i; ++j) o += p[j] * const_head_row<DH>(q0 + j * ld + 2 * d, dh);
                }
            }
    }

    //! `attention_backward` for head width DH, over the causal triangle only.
    template <int DH>
    void attention_backward_heads(const matrix& qkv, const std::vector<float>& probs, const matrix& dout, int batch, int len,
                                  matrix& dqkv) const {
        const int d = cfg_.width, H = cfg_.heads, dh = d / H;
        const float scale = 1.f / std::sqrt(static_cast<float>(dh));
        const std::ptrdiff_t ld = qkv.cols(), lo = dout.cols(), lg = dqkv.cols();
        std::vector<float> dS(std::size_t(len) * len);
        for (int b = 0; b < batch; ++b)
            for (int h = 0; h < H; ++h) {
                const float* P = probs.data() + (std::size_t(b) * H + h) * len * len;
                const float* q0 = qkv.data() + std::ptrdiff_t(b) * len * ld + h * dh;       // Q; K at +d, V at +2d
                const float* o0 = dout.data() + std::ptrdiff_t(b) * len * lo + h * dh;      // dO
                float* g0 = dqkv.data() + std::ptrdiff_t(b) * len * lg + h * dh;            // dQ; dK at +d, dV at +2d
                for (int i = 0; i < len; ++i) {
                    const float* p = P + std::ptrdiff_t(i) * len;
                    float* ds = dS.data() + std::ptrdiff_t(i) * len;
                    const const_head_row<DH> dO(o0 + i * lo, dh);
                    float dot = 0.f;
                    for (int j = 0; j <= i; ++j) {
                        ds[j] = dO.dot(const_head_row<DH>(q0 + j * ld + 2 * d, dh));  // dP
                        dot += p[j] * ds[j];
                    }
                    for (int j = 0; j <= i; ++j) ds[j] = p[j] * (ds[j] - dot) * scale;
                    head_row<DH> dq(g0 + i * lg, dh);
                    dq = ds[0] * const_head_row<DH>(q0 + d, dh);
                    for (int j = 1; j <= i; ++j) dq += ds[j] * const_head_row<DH>(q0 + j * ld + d, dh);
                }
                for (int j = 0; j < len; ++j) {  // column j of dS and P: dK_j = sum_i dS_ij Q_i, dV_j = sum_i P_ij dO_i
                    head_row<DH> dk(g0 + j * lg + d, dh), dv(g0 + j * lg + 2 * d, dh);
                    dk = dS[std::size_t(j) * len + j] * const_head_row<DH>(q0 + j * ld, dh);
                    dv = P[std::size_t(j) * len + j] * const_head_row<DH>(o0 + j * lo, dh);
                    for (int i = j + 1; i < len; ++i) {
                        dk += dS[std::size_t(i) * len + j] * const_head_row<DH>(q0 + i * ld, dh);
                        dv += P[std::size_t(i) * len + j] * const_head_row<DH>(o0 + i * lo, dh);
                    }
                }
            }
    }

    model_config cfg_;
    param_layout layout_;
    param_vector params_;
};

//! AdamW (Loshchilov & Hutter 2019; PyTorch's `torch.optim.AdamW` update): bias-corrected
//! Adam moments, decoupled weight decay `wd * lr * theta` on weight matrices only.
struct adamw {
    float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.02f;
    std::vector<float> m, v;
    long t = 0;

    void reset(std::size_t n) {
        m.assign(n, 0.f);
        v.assign(n, 0.f);
        t = 0;
    }

    void update(transformer& model, const std::vector<float>& grad, float lr) {
        auto& p = model.params();
        if (m.size() != p.size()) reset(p.size());
        ++t;
        const float c1 = 1.f / (1.f - std::pow(beta1, float(t)));
        const float c2 = 1.f / (1.f - std::pow(beta2, float(t)));
        if (weight_decay != 0.f)
            for (auto [at, count] : model.layout().decayed)
                for (std::size_t i = at; i < at + count; ++i) p[i] -= lr * weight_decay * p[i];
        const std::size_t n = p.size();
        for (std::size_t i = 0; i < n; ++i) {
            m[i] = beta1 * m[i] + (1.f - beta1) * grad[i];
            v[i] = beta2 * v[i] + (1.f - beta2) * grad[i] * grad[i];
            p[i] -= lr * (m[i] * c1) / (std::sqrt(v[i] * c2) + eps);
        }
    }
};

}  // namespace lab
