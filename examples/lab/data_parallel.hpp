#pragma once
//! \file
//! Data parallelism for the lab's trainer, the way a multi-core trainer splits a step: a batch of
//! sequences is cut into a fixed number of contiguous shards, each shard's forward and backward
//! pass runs on its own thread, and the shards' parameter gradients are summed in shard order.
//! The shard count fixes the arithmetic; the thread count only decides which thread runs which
//! shard, so results are bit-identical for any `threads`. The incremental (KV-cache) decoding
//! used by generation is sharded the same way. Across processes (distributed.hpp) each rank runs
//! its range of the shards and the shards' outputs are exchanged, so results are also
//! bit-identical for any number of ranks.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "distributed.hpp"
#include "model.hpp"

namespace lab {

//! How a batch is split: `shards` contiguous groups of sequences (results depend on it), run on
//! at most `threads` threads (results do not depend on it).
struct parallelism {
    int shards = 1;   //!< groups of sequences per batch (>= 1; fewer when the batch is smaller)
    int threads = 1;  //!< worker threads (>= 1)

    //! Throws std::invalid_argument naming the field when shards or threads is below 1.
    void check() const {
        if (shards < 1) throw std::invalid_argument("lab::parallelism: shards must be >= 1, got " + std::to_string(shards));
        if (threads < 1) throw std::invalid_argument("lab::parallelism: threads must be >= 1, got " + std::to_string(threads));
    }
};

//! Worker threads kept for many short parallel sections (every training step's forward and
//! backward pass, every decoding step). Between sections a worker spins for up to `spin` before
//! it sleeps, so a section that follows within that time starts at once; waking a sleeping thread
//! (or starting one, about 70 us) would otherwise leave a core idle at every section.
//! `run(n, job)` runs job(0 .. n-1) on the calling thread and the workers (indices handed out in
//! order from a shared counter) and rethrows the first exception by index. One caller at a time.
class worker_pool {
public:
    //! Starts `threads - 1` workers (the caller is the remaining one); `threads` >= 1.
    explicit worker_pool(int threads) {
        if (threads < 1) throw std::invalid_argument("lab::worker_pool: threads must be >= 1, got " + std::to_string(threads));
        for (int t = 1; t < threads; ++t) workers_.emplace_back([this] { work(); });
    }
    worker_pool(const worker_pool&) = delete;
    worker_pool& operator=(const worker_pool&) = delete;
    ~worker_pool() {
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        wake_.notify_all();
        for (auto& t : workers_) t.join();
    }

    int threads() const { return int(workers_.size()) + 1; }  //!< workers plus the caller

    //! Runs job(0 .. n-1); returns when every index has finished.
    void run(int n, const std::function<void(int)>& job) {
        errors_.assign(std::size_t(n), nullptr);
        job_ = &job;
        n_ = n;
        next_.store(0);
        const bool share = !workers_.empty() && n > 1;
        if (share) {
            busy_.store(int(workers_.size()));
            {
                std::lock_guard lock(mutex_);
                generation_.fetch_add(1, std::memory_order_release);
            }
            wake_.notify_all();
        }
        drain();
        if (share && !spin_until([&] { return busy_.load(std::memory_order_acquire) == 0; })) {
            std::unique_lock lock(mutex_);
            done_.wait(lock, [&] { return busy_.load(std::memory_order_acquire) == 0; });
        }
        for (auto& e : errors_)
            if (e) std::rethrow_exception(e);
    }

private:
    static constexpr std::chrono::microseconds spin{2000};

    //! Polls `ready` for up to `spin`; true when it became true.
    template <class Ready>
    static bool spin_until(const Ready& ready) {
        const auto until = std::chrono::steady_clock::now() + spin;
        for (int i = 0;; ++i) {
            if (ready()) return true;
            if ((i & 63) == 63 && std::chrono::steady_clock::now() > until) return ready();
        }
    }

    //! Takes indices until none is left.
    void drain() {
        for (int i; (i = next_++) < n_;) try {
                (*job_)(i);
            } catch (...) {
                errors_[std::size_t(i)] = std::current_exception();
            }
    }

    void work() {
        std::uint64_t seen = 0;
        for (;;) {
            const auto fresh = [&] { return generation_.load(std::memory_order_acquire) != seen; };
            if (!spin_until([&] { return fresh() || stop_.load(); })) {
                std::unique_lock lock(mutex_);
                wake_.wait(lock, [&] { return fresh() || stop_.load(); });
            }
            if (stop_.load()) return;
            seen = generation_.load(std::memory_order_acquire);
            drain();
            if (busy_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
                std::lock_guard lock(mutex_);
                done_.notify_one();
            }
        }
    }

    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable wake_, done_;
    const std::function<void(int)>* job_ = nullptr;
    std::vector<std::exception_ptr> errors_;
    int n_ = 0;
    std::atomic<int> next_{0}, busy_{0};
    std::atomic<std::uint64_t> generation_{0};
    std::atomic<bool> stop_{false};
};

//! Runs job(0 .. n-1) once on up to `threads` threads (the calling thread included), with a
//! pool made for the call; rethrows the first exception by job index.
inline void parallel_for(int n, int threads, const std::function<void(int)>& job) {
    worker_pool(std::max(1, std::min(threads, n))).run(n, job);
}

//! Sharded full and incremental passes of one `transformer` (held by reference).
class data_parallel {
public:
    //! Throws std::invalid_argument when `p` is out of range (see parallelism::check).
    data_parallel(const transformer& model, parallelism p)
        : model_(&model), par_((p.check(), p)), pool_(std::make_unique<worker_pool>(std::min(p.threads, p.shards))) {}

    const transformer& model() const { return *model_; }  //!< the model whose passes are sharded
    const parallelism& config() const { return par_; }    //!< shards and threads

    //! Forward pass over `batch` sequences of `len` tokens (row-major [batch, len]): logits
    //! [batch * len, vocab]; keeps the shards' activations for `backward`.
    void forward(const std::int32_t* tokens, int batch, int len, matrix& logits) {
        split(batch);
        len_ = len;
        run_owned([&](shard& s) { model_->forward(tokens + std::ptrdiff_t(s.row0) * len, s.rows, len, s.logits, &s.cache); });
        logits.resize(std::ptrdiff_t(batch) * len, model_->vocab_size());
        for_owned([&](shard& s) { logits.middleRows(std::ptrdiff_t(s.row0) * len, s.logits.rows()) = s.logits; });
        share_rows(logits.data(), std::ptrdiff_t(len) * model_->vocab_size());
    }

    //! As `forward`, up to the output layer: the hidden states [batch * len, width] it reads.
    void forward_hidden(const std::int32_t* tokens, int batch, int len, matrix& hidden) {
        split(batch);
        len_ = len;
        run_owned([&](shard& s) { model_->forward_hidden(tokens + std::ptrdiff_t(s.row0) * len, s.rows, len, s.cache); });
        hidden.resize(std::ptrdiff_t(batch) * len, model_->config().width);
        for_owned([&](shard& s) { hidden.middleRows(std::ptrdiff_t(s.row0) * len, s.cache.hf.rows()) = s.cache.hf; });
        share_rows(hidden.data(), std::ptrdiff_t(len) * model_->config().width);
    }

    //! Backpropagates d loss / d hidden states [batch * len, width] of the last `forward_hidden`,
    //! ADDING the gradients of the parameters below the output layer into `grad` (in shard order).
    void backward_hidden(const matrix& dhidden, std::vector<float>& grad) {
        if (dhidden.rows() != std::ptrdiff_t(rows_) * len_ || dhidden.cols() != model_->config().width)
            throw std::invalid_argument("lab::data_parallel::backward_hidden: dhidden has the wrong shape");
        run_owned([&](shard& s) {
            s.dlogits = dhidden.middleRows(std::ptrdiff_t(s.row0) * len_, std::ptrdiff_t(s.rows) * len_);
            s.grad.assign(model_->num_params(), 0.f);
            model_->backward_hidden(s.cache, s.dlogits, s.grad);
        });
        add_gradients(grad);
    }

    //! Backpropagates `dlogits` [batch * len, vocab] of the last `forward`, ADDING the parameter
    //! gradient into `grad`: grad += g_0 + g_1 + ... in shard order.
    void backward(const matrix& dlogits, std::vector<float>& grad) {
        if (dlogits.rows() != std::ptrdiff_t(rows_) * len_ || dlogits.cols() != model_->vocab_size())
            throw std::invalid_argument("lab::data_parallel::backward: dlogits has the wrong shape");
        run_owned([&](shard& s) {
            s.dlogits = dlogits.middleRows(std::ptrdiff_t(s.row0) * len_, std::ptrdiff_t(s.rows) * len_);
            s.grad.assign(model_->num_params(), 0.f);
            model_->backward(s.cache, s.dlogits, s.grad);  // aligned: no copy, no allocation after the first step
        });
        add_gradients(grad);
    }

    //! Starts incremental decoding of `batch` sequences.
    void start(int batch) {
        split(batch);
        for_owned([&](shard& s) { model_->start(s.kv, s.rows); });
    }

    //! Appends tokens[b] to sequence b of the current decoding and writes logits [batch, vocab]
    //! (and, when `hidden` is given, the output layer's input [batch, width]).
    void step(const std::int32_t* tokens, matrix& logits, matrix* hidden = nullptr) {
        run_owned([&](shard& s) { model_->step(s.kv, tokens + s.row0, s.logits, hidden ? &s.hidden : nullptr); });
        logits.resize(rows_, model_->vocab_size());
        for_owned([&](shard& s) { logits.middleRows(s.row0, s.rows) = s.logits; });
        share_rows(logits.data(), model_->vocab_size());
        if (!hidden) return;
        hidden->resize(rows_, model_->config().width);
        for_owned([&](shard& s) { hidden->middleRows(s.row0, s.rows) = s.hidden; });
        share_rows(hidden->data(), model_->config().width);
    }

private:
    struct shard {
        int row0 = 0, rows = 0;  //!< first sequence and number of sequences
        forward_cache cache;
        kv_cache kv;
        matrix logits, dlogits, hidden;  // dlogits: also d hidden (backward_hidden)
        param_vector grad;
    };

    //! This rank's shards of the current split (all of them with one process).
    selfreplay::row_shard owned() const { return process_group::world().owned(int(parts_.size())); }

    //! Runs job(shard) for this rank's shards on the pool.
    template <class Job>
    void run_owned(const Job& job) {
        const auto own = owned();
        pool_->run(int(own.rows()), [&](int k) { job(parts_[std::size_t(own.begin + k)]); });
    }
    template <class Job>
    void for_owned(const Job& job) {
        const auto own = owned();
        for (auto k = own.begin; k < own.end; ++k) job(parts_[std::size_t(k)]);
    }

    //! Gives every rank the rows of every shard of a row-major buffer of `per_row` floats a row.
    void share_rows(float* data, std::ptrdiff_t per_row) const {
        const auto& group = process_group::world();
        if (group.ranks() == 1) return;
        std::vector<std::ptrdiff_t> sizes;
        for (const auto& s : parts_) sizes.push_back(std::ptrdiff_t(s.rows) * per_row);
        group.share(data, sizes);
    }

    //! grad += g_0 + g_1 + ... in shard order, every shard's gradient gathered from its rank first.
    void add_gradients(std::vector<float>& grad) {
        const std::size_t P = model_->num_params();
        if (grad.size() != P) grad.assign(P, 0.f);
        const auto& group = process_group::world();
        if (group.ranks() == 1) {
            for (const auto& s : parts_)
                for (std::size_t i = 0; i < P; ++i) grad[i] += s.grad[i];
            return;
        }
        gathered_.resize(parts_.size() * P);
        for_owned([&](shard& s) { std::copy(s.grad.begin(), s.grad.end(), gathered_.begin() + std::ptrdiff_t(&s - parts_.data()) * std::ptrdiff_t(P)); });
        group.share(gathered_.data(), std::vector<std::ptrdiff_t>(parts_.size(), std::ptrdiff_t(P)));
        for (std::size_t k = 0; k < parts_.size(); ++k)
            for (std::size_t i = 0; i < P; ++i) grad[i] += gathered_[k * P + i];
    }

    //! Cuts `batch` sequences into min(shards, batch) contiguous shards, sizes differing by <= 1.
    void split(int batch) {
        if (batch < 1) throw std::invalid_argument("lab::data_parallel: batch must be >= 1, got " + std::to_string(batch));
        const int n = std::min(par_.shards, batch);
        parts_.resize(std::size_t(n));
        for (int k = 0, row = 0; k < n; ++k) {
            parts_[std::size_t(k)].row0 = row;
            parts_[std::size_t(k)].rows = batch / n + (k < batch % n ? 1 : 0);
            row += parts_[std::size_t(k)].rows;
        }
        rows_ = batch;
    }

    const transformer* model_;
    parallelism par_;
    std::unique_ptr<worker_pool> pool_;  // the shards' threads, parked between passes
    std::vector<shard> parts_;
    std::vector<float> gathered_;  // every shard's parameter gradient, in shard order (several ranks)
    int rows_ = 0, len_ = 0;
};

}  // namespace lab
