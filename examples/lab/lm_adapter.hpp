#pragma once
//! \file
//! `lm_adapter`: makes a `lab::transformer` model `selfreplay::incremental_language_model`, so
//! that selfreplay's `generate` and `self_generated` can sample from it. Optionally records the
//! logits of every incremental step ([rows, record_len, V]), or its hidden states ([rows,
//! record_len, width]): self-generated replay then has pi's logits (or hidden states) on the
//! replay batch (for KL replay) without a second forward pass. Its passes are
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
    //! \param record_hidden record the hidden states the output layer reads (width values per
    //!                   position) instead of the logits (for the linear losses)
    explicit lm_adapter(const transformer& model, std::vector<float>* record = nullptr, int record_len = 0, parallelism par = {},
                        bool record_hidden = false)
        : model_(&model), record_(record), record_len_(record_len), record_hidden_(record_hidden), passes_(model, par) {}

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
        if (record_) record_->assign(std::size_t(batch) * record_len_ * record_width(), 0.f);
    }

    //! Appends tokens[b] to sequence b and writes the next-token logits [B, V].
    void step(selfreplay::strided_view<const std::int32_t, 1> tokens, selfreplay::strided_view<float, 2> logits) {
        const int B = batch_, V = model_->vocab_size();
        tokens_.resize(B);
        for (int b = 0; b < B; ++b) tokens_[b] = tokens(b);
        const bool rec = record_ && pos_ < record_len_;
        passes_.step(tokens_.data(), out_, rec && record_hidden_ ? &hidden_ : nullptr);
        for (int b = 0; b < B; ++b)
            for (int v = 0; v < V; ++v) logits(b, v) = out_(b, v);
        const matrix& kept = record_hidden_ ? hidden_ : out_;
        const int w = record_width();
        if (rec)
            for (int b = 0; b < B; ++b)
                std::copy_n(kept.row(b).data(), w, record_->begin() + (std::ptrdiff_t(b) * record_len_ + pos_) * w);
        ++pos_;
    }

    //! Values recorded per position: V logits, or the width of the hidden states.
    int record_width() const { return record_hidden_ ? model_->config().width : model_->vocab_size(); }

private:
    const transformer* model_;
    std::vector<float>* record_;
    int record_len_;
    bool record_hidden_;
    data_parallel passes_;
    int batch_ = 0, pos_ = 0;
    std::vector<std::int32_t> tokens_;
    matrix out_, hidden_;
};

static_assert(selfreplay::incremental_language_model<lm_adapter>);

}  // namespace lab
