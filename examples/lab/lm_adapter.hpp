#pragma once
//! \file
//! `lm_adapter`: makes a `lab::transformer` model `selfreplay::incremental_language_model`, so
//! that selfreplay's `generate` and `self_generated` can sample from it. Optionally records the
//! logits of every incremental step ([rows, record_len, V]): self-generated replay then has pi's
//! logits on the replay batch (for KL replay) without a second forward pass. Its passes are
//! sharded over threads by `data_parallel` (the tokens do not depend on the thread count).

#include <algorithm>
#include <cstdint>
#include <vector>

#include <selfreplay/sampling/language_model.hpp>
#include <selfreplay/tensor/strided_view.hpp>

#include "data_parallel.hpp"
#include "model.hpp"

namespace lab {

class lm_adapter {
public:
    //! \param model      the transformer (held by reference; must outlive the adapter)
    //! \param record     when non-null, `reset(B)` sizes it to B * record_len * V zeros and step k
    //!                   writes its logits into rows b * record_len + k
    //! \param par        shards and threads of the model's passes
    explicit lm_adapter(const transformer& model, std::vector<float>* record = nullptr, int record_len = 0, parallelism par = {})
        : model_(&model), record_(record), record_len_(record_len), passes_(model, par) {}

    selfreplay::index_t vocab_size() const { return model_->vocab_size(); }

    //! Full forward pass over the prefixes [B, L]; writes the last position's logits [B, V].
    void next_token_logits(selfreplay::strided_view<const std::int32_t, 2> prefixes, selfreplay::strided_view<float, 2> logits) {
        const int B = int(prefixes.extent(0)), L = int(prefixes.extent(1)), V = model_->vocab_size();
        tokens_.resize(std::size_t(B) * L);
        for (int b = 0; b < B; ++b)
            for (int t = 0; t < L; ++t) tokens_[std::size_t(b) * L + t] = prefixes(b, t);
        passes_.forward(tokens_.data(), B, L, out_);
        for (int b = 0; b < B; ++b)
            for (int v = 0; v < V; ++v) logits(b, v) = out_(std::ptrdiff_t(b) * L + L - 1, v);
    }

    //! Starts `batch` empty sequences (KV cache).
    void reset(selfreplay::index_t batch) {
        passes_.start(int(batch));
        batch_ = int(batch);
        pos_ = 0;
        if (record_) record_->assign(std::size_t(batch) * record_len_ * model_->vocab_size(), 0.f);
    }

    //! Appends tokens[b] to sequence b and writes the next-token logits [B, V].
    void step(selfreplay::strided_view<const std::int32_t, 1> tokens, selfreplay::strided_view<float, 2> logits) {
        const int B = batch_, V = model_->vocab_size();
        tokens_.resize(B);
        for (int b = 0; b < B; ++b) tokens_[b] = tokens(b);
        passes_.step(tokens_.data(), out_);
        for (int b = 0; b < B; ++b)
            for (int v = 0; v < V; ++v) logits(b, v) = out_(b, v);
        if (record_ && pos_ < record_len_)
            for (int b = 0; b < B; ++b)
                std::copy_n(out_.row(b).data(), V, record_->begin() + (std::ptrdiff_t(b) * record_len_ + pos_) * V);
        ++pos_;
    }

private:
    const transformer* model_;
    std::vector<float>* record_;
    int record_len_;
    data_parallel passes_;
    int batch_ = 0, pos_ = 0;
    std::vector<std::int32_t> tokens_;
    matrix out_;
};

static_assert(selfreplay::incremental_language_model<lm_adapter>);

}  // namespace lab
