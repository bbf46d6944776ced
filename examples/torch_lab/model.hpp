#pragma once
//! \file
//! torch_lab's model: a small decoder-only transformer in torch::nn (pre-norm blocks of causal
//! multi-head self-attention and a GELU MLP, learned positions, untied output head), with an
//! incremental `step` over a key/value cache so that selfreplay's `generate` samples from it in
//! O(L) per token. Used by examples/torch_lab and by the adapter's tests.

#include <cmath>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include <torch/torch.h>

namespace torch_lab {

//! Model size.
struct transformer_options {
    std::int64_t vocab = 0;   //!< V
    std::int64_t width = 64;  //!< d_model
    std::int64_t depth = 2;   //!< blocks
    std::int64_t heads = 4;   //!< attention heads (width must be a multiple)
    std::int64_t max_len = 64; //!< longest sequence (learned positions)
};

//! The transformer: `forward(tokens [B, L] int64) -> logits [B, L, V]`;
//! `step(tokens [B], cache) -> (logits [B, V], cache)` appends one token per row, the cache
//! holding each block's keys and values [B, H, t, d/H] (empty: no token yet).
struct TransformerImpl : torch::nn::Cloneable<TransformerImpl> {
    explicit TransformerImpl(transformer_options o) : opt(o) {
        TORCH_CHECK(o.vocab >= 1 && o.width >= 1 && o.depth >= 1 && o.heads >= 1 && o.width % o.heads == 0,
                    "torch_lab::Transformer: bad sizes (width must be a multiple of heads)");
        reset();
    }

    //! (Re)creates the parameters (also called by `clone`).
    void reset() override {
        blocks.clear();
        token_embedding = register_module("token_embedding", torch::nn::Embedding(opt.vocab, opt.width));
        position_embedding = register_module("position_embedding", torch::nn::Embedding(opt.max_len, opt.width));
        for (std::int64_t i = 0; i < opt.depth; ++i) {
            const std::string n = "block" + std::to_string(i);
            block b;
            b.norm1 = register_module(n + "_norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({opt.width})));
            b.qkv = register_module(n + "_qkv", torch::nn::Linear(opt.width, 3 * opt.width));
            b.proj = register_module(n + "_proj", torch::nn::Linear(opt.width, opt.width));
            b.norm2 = register_module(n + "_norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({opt.width})));
            b.up = register_module(n + "_up", torch::nn::Linear(opt.width, 4 * opt.width));
            b.down = register_module(n + "_down", torch::nn::Linear(4 * opt.width, opt.width));
            blocks.push_back(b);
        }
        final_norm = register_module("final_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({opt.width})));
        head = register_module("head", torch::nn::Linear(opt.width, opt.vocab));
    }

    //! Logits [B, L, V] of every position of `tokens` [B, L] (int64), causal.
    torch::Tensor forward(const torch::Tensor& tokens) {
        const std::int64_t L = tokens.size(1);
        TORCH_CHECK(L <= opt.max_len, "torch_lab::Transformer: sequence longer than max_len");
        auto h = token_embedding(tokens) + position_embedding(torch::arange(L, tokens.options()));
        const auto mask = torch::ones({L, L}, torch::dtype(torch::kBool)).triu(1);
        for (auto& b : blocks) {
            auto [q, k, v] = split_heads(b, b.norm1(h));
            auto att = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(double(head_dim()));
            att = att.masked_fill(mask, -std::numeric_limits<double>::infinity()).softmax(-1);
            h = h + b.proj(merge_heads(torch::matmul(att, v)));
            h = h + b.down(torch::gelu(b.up(b.norm2(h))));
        }
        return head(final_norm(h));
    }

    //! Appends `tokens` [B] (int64) to the sequences cached in `cache` (empty: none yet) and returns
    //! the logits [B, V] of the next token with the extended cache.
    std::tuple<torch::Tensor, std::vector<torch::Tensor>> step(const torch::Tensor& tokens, std::vector<torch::Tensor> cache) {
        const std::int64_t pos = cache.empty() ? 0 : cache[0].size(2);
        TORCH_CHECK(pos < opt.max_len, "torch_lab::Transformer: sequence longer than max_len");
        if (cache.empty()) cache.resize(static_cast<std::size_t>(2 * opt.depth));
        auto h = (token_embedding(tokens) + position_embedding(torch::full({1}, pos, tokens.options()))).unsqueeze(1);
        for (std::size_t i = 0; i < blocks.size(); ++i) {
            auto& b = blocks[i];
            auto [q, k, v] = split_heads(b, b.norm1(h));
            auto& kc = cache[2 * i];
            auto& vc = cache[2 * i + 1];
            kc = kc.defined() ? torch::cat({kc, k}, 2) : k;
            vc = vc.defined() ? torch::cat({vc, v}, 2) : v;
            auto att = (torch::matmul(q, kc.transpose(-2, -1)) / std::sqrt(double(head_dim()))).softmax(-1);
            h = h + b.proj(merge_heads(torch::matmul(att, vc)));
            h = h + b.down(torch::gelu(b.up(b.norm2(h))));
        }
        return {head(final_norm(h)).squeeze(1), std::move(cache)};
    }

    transformer_options opt;

private:
    struct block {
        torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
        torch::nn::Linear qkv{nullptr}, proj{nullptr}, up{nullptr}, down{nullptr};
    };

    std::int64_t head_dim() const { return opt.width / opt.heads; }

    //! q, k, v [B, H, L, d/H] of x [B, L, d].
    std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> split_heads(block& b, const torch::Tensor& x) {
        const auto B = x.size(0), L = x.size(1);
        auto qkv = b.qkv(x).view({B, L, 3, opt.heads, head_dim()}).permute({2, 0, 3, 1, 4});
        return {qkv[0], qkv[1], qkv[2]};
    }
    //! [B, H, L, d/H] -> [B, L, d].
    torch::Tensor merge_heads(const torch::Tensor& x) const {
        return x.transpose(1, 2).reshape({x.size(0), x.size(2), opt.width});
    }

    std::vector<block> blocks;
    torch::nn::Embedding token_embedding{nullptr}, position_embedding{nullptr};
    torch::nn::LayerNorm final_norm{nullptr};
    torch::nn::Linear head{nullptr};
};
TORCH_MODULE(Transformer);

} // namespace torch_lab
