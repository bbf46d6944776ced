#pragma once
//! \file
//! libtorch adapter (namespace `selfreplay::libtorch`, CMake target `selfreplay::torch`):
//! - `view<T, R>` / `mutable_view<T, R>`: zero-copy `strided_view`s of CPU `at::Tensor`s whose
//!   element type and rank, known to torch only at run time, are checked;
//! - `tokens`, `mask`: token ids (int32 or int64) and position masks of any dtype;
//! - autograd functions `next_token_loss`, `kl_divergence`, `generalized_jsd` (a 0-dim loss
//!   whose backward reuses the gradient of the fused forward pass);
//! - `evaluate_objective` over tensors, with gradient buffers reused from step to step;
//! - `torch_matmul`: the `matmul` model that gives the linear losses libtorch's GEMM;
//! - `module_language_model` / `incremental_module_language_model`: torch modules as
//!   `language_model` / `incremental_language_model` (for `generate` and `self_generated`),
//!   and `frozen_copy` for the reference model.
//! The namespace is not `torch` so that `using namespace selfreplay;` leaves `torch::` unambiguous.

#include <algorithm>
#include <array>
#include <cstdint>
#include <numeric>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "selfreplay/error.hpp"
#include "selfreplay/losses/common.hpp"
#include "selfreplay/losses/cross_entropy.hpp"
#include "selfreplay/losses/jsd.hpp"
#include "selfreplay/losses/kl.hpp"
#include "selfreplay/losses/matmul.hpp"
#include "selfreplay/replay/mixer.hpp"
#include "selfreplay/replay/objective.hpp"
#include "selfreplay/sampling/language_model.hpp"
#include "selfreplay/tensor/strided_view.hpp"
#include "selfreplay/tensor/token_ids.hpp"

namespace selfreplay::libtorch {

namespace detail {

//! "[2, 3, 4]"
inline std::string shape_text(at::IntArrayRef sizes) {
    std::string s = "[";
    for (std::size_t i = 0; i < sizes.size(); ++i) s += (i ? ", " : "") + std::to_string(sizes[i]);
    return s + "]";
}

//! Throws unless `t` is a defined CPU tensor with the strided layout, dtype `T` and `R` dimensions.
template <class T, std::size_t R>
void require_viewable(const at::Tensor& t, std::string_view where, std::string_view argument) {
    require(t.defined(), where, argument, "is an undefined tensor");
    require(t.device().is_cpu(), where, argument, "must be on the CPU, got device " + t.device().str());
    require(t.layout() == at::kStrided, where, argument,
            "must have the strided layout, got " + std::string(c10::str(t.layout())) +
                " (convert it with .to_dense())");
    constexpr c10::ScalarType expected = c10::CppTypeToScalarType<T>::value;
    require(t.scalar_type() == expected, where, argument,
            "must hold ", c10::toString(expected), " elements, got ", c10::toString(t.scalar_type()));
    require(t.dim() == static_cast<std::int64_t>(R), where, argument,
            "must have ", R, " dimensions, got ", t.dim(), " (shape ", shape_text(t.sizes()), ")");
}

//! True when no two index tuples of `t` address the same element: with the dimensions of extent
//! > 1 sorted by stride, each stride exceeds the span of the smaller ones (a sufficient condition,
//! met by every layout torch creates except expanded and `as_strided` ones).
inline bool provably_non_overlapping(const at::Tensor& t) {
    std::vector<std::pair<std::int64_t, std::int64_t>> dims; // (stride, extent)
    for (std::int64_t d = 0; d < t.dim(); ++d)
        if (t.size(d) > 1) dims.emplace_back(t.stride(d), t.size(d));
    std::sort(dims.begin(), dims.end());
    std::int64_t span = 0; // largest offset reachable with the dimensions so far
    for (const auto& [stride, extent] : dims) {
        if (stride <= span) return false;
        span += stride * (extent - 1);
    }
    return true;
}

template <class T, std::size_t R>
strided_view<T, R> make_strided(const at::Tensor& t) {
    std::array<index_t, R> e{}, s{};
    for (std::size_t r = 0; r < R; ++r) {
        e[r] = t.size(static_cast<std::int64_t>(r));
        s[r] = t.stride(static_cast<std::int64_t>(r));
    }
    return {static_cast<T*>(t.data_ptr()), e, s};
}

} // namespace detail

//! A read-only view of `t`'s elements (no copy): element (i0, ..., iR-1) is `t[i0]...[iR-1]`,
//! strides in elements as torch's. Throws `invalid_argument` naming `argument` unless `t` is
//! defined, on the CPU, strided (not sparse, not mkldnn), of dtype `T` and of rank `R`.
//! The view aliases `t`'s storage: keep `t` alive while it is used.
template <class T, std::size_t R>
strided_view<const T, R> view(const at::Tensor& t, std::string_view argument = "tensor",
                              std::string_view where = "libtorch::view") {
    detail::require_viewable<T, R>(t, where, argument);
    return detail::make_strided<const T, R>(t);
}

//! A writable view of `t`'s elements (no copy). Besides `view`'s checks, throws unless selfreplay
//! may write into `t`: it must not require grad (a leaf requiring grad, or a tensor of the
//! autograd graph, changed behind autograd's back) and no two elements may share memory (stride
//! 0 of an `expand`ed tensor, overlapping `as_strided`).
template <class T, std::size_t R>
strided_view<T, R> mutable_view(const at::Tensor& t, std::string_view argument = "tensor",
                                std::string_view where = "libtorch::mutable_view") {
    detail::require_viewable<T, R>(t, where, argument);
    require(!t.requires_grad(), where, argument,
            t.is_leaf() ? "is a leaf that requires grad: selfreplay would write into it behind autograd's back"
                        : "requires grad (it is part of an autograd graph): selfreplay would write into it behind "
                          "autograd's back");
    for (std::int64_t d = 0; d < t.dim(); ++d)
        require(t.stride(d) != 0 || t.size(d) <= 1, where, argument,
                "has stride 0 in dimension ", d, " (an expanded tensor: its elements share memory); pass a "
                                                 "tensor of its own, e.g. .contiguous()");
    require(detail::provably_non_overlapping(t), where, argument,
            "has internally overlapping memory (strides of an as_strided tensor); pass a tensor of its own, "
            "e.g. .contiguous()");
    return detail::make_strided<T, R>(t);
}

//! Token ids of a [rows, L] int32 or int64 (torch's `long`) CPU tensor, as the read-only
//! `const_token_batch_view` that losses and `objective_inputs` take (no copy).
inline const_token_batch_view tokens(const at::Tensor& t, std::string_view argument = "tokens",
                                     std::string_view where = "libtorch::tokens") {
    require(t.defined(), where, argument, "is an undefined tensor");
    if (t.scalar_type() == at::kInt) return view<std::int32_t, 2>(t, argument, where);
    require(t.scalar_type() == at::kLong, where, argument,
            "must hold token ids of dtype Long (int64) or Int (int32), got ", c10::toString(t.scalar_type()));
    return view<std::int64_t, 2>(t, argument, where);
}

//! A [B, T] `position_mask` over a CPU tensor of dtype Bool, Byte, Int, Long, Float or Double
//! (nonzero counts; no copy). An undefined tensor is the empty mask (every position counted).
inline position_mask mask(const at::Tensor& t, std::string_view argument = "mask",
                          std::string_view where = "libtorch::mask") {
    if (!t.defined()) return {};
    switch (t.scalar_type()) {
    case at::kBool: return position_mask(view<bool, 2>(t, argument, where));
    case at::kByte: return position_mask(view<std::uint8_t, 2>(t, argument, where));
    case at::kInt: return position_mask(view<std::int32_t, 2>(t, argument, where));
    case at::kLong: return position_mask(view<std::int64_t, 2>(t, argument, where));
    case at::kFloat: return position_mask(view<float, 2>(t, argument, where));
    case at::kDouble: return position_mask(view<double, 2>(t, argument, where));
    default: break;
    }
    throw invalid_argument(where, argument,
                           "must have dtype Bool, Byte, Int, Long, Float or Double, got " +
                               std::string(c10::toString(t.scalar_type())));
}

namespace detail {

//! Calls f(T{}) with T = float or double, the dtype of `logits`; throws for any other dtype.
template <class F>
decltype(auto) with_logit_type(const at::Tensor& logits, std::string_view where, std::string_view argument, F&& f) {
    require(logits.defined(), where, argument, "is an undefined tensor");
    if (logits.scalar_type() == at::kDouble) return f(double{});
    require(logits.scalar_type() == at::kFloat, where, argument,
            "must hold Float or Double logits, got ", c10::toString(logits.scalar_type()));
    return f(float{});
}

//! Calls f(view) with a rank-2 [B*T, V] or rank-3 [B, T, V] view of `logits` (its own rank).
template <class T, bool Mutable, class F>
decltype(auto) with_logits_view(const at::Tensor& logits, std::string_view where, std::string_view argument, F&& f) {
    require(logits.defined(), where, argument, "is an undefined tensor");
    require(logits.dim() == 2 || logits.dim() == 3, where, argument,
            "must be [B, T, V] or [B*T, V], got shape ", shape_text(logits.sizes()));
    if (logits.dim() == 3) {
        if constexpr (Mutable)
            return f(mutable_view<T, 3>(logits, argument, where));
        else
            return f(view<T, 3>(logits, argument, where));
    }
    if constexpr (Mutable)
        return f(mutable_view<T, 2>(logits, argument, where));
    else
        return f(view<T, 2>(logits, argument, where));
}

//! True when two views (as seen through `with_logits_view`'s arguments) have the same rank: the
//! one combination of the rank-2 / rank-3 instantiations that runs.
template <class A, class B>
inline constexpr bool same_rank = std::remove_cvref_t<A>::rank() == std::remove_cvref_t<B>::rank();

//! The options checks shared by the autograd functions.
template <class O>
void check_autograd_options(const O& o, std::string_view where) {
    require(o.reduction != reduction::none, where, "options.reduction",
            "cannot be reduction::none here: the autograd functions return a 0-dim loss (use a mask with "
            "reduction::sum, or per_position for the values)");
    require(!o.accumulate, where, "options.accumulate",
            "must be false here: the autograd function owns its gradient buffer");
}

//! An uninitialised buffer shaped and typed like `like` (the fused kernels overwrite every element).
inline at::Tensor gradient_buffer_like(const at::Tensor& like) {
    return at::empty(like.sizes(), like.options().requires_grad(false), at::MemoryFormat::Contiguous);
}

//! backward of the fused losses: grad_output * the saved d loss / d logits (the saved tensor
//! itself when grad_output is 1: no pass over it).
inline at::Tensor scaled_gradient(const at::Tensor& saved, const at::Tensor& grad_output) {
    if (!grad_output.defined()) return {};
    if (grad_output.numel() == 1 && grad_output.item<double>() == 1.0) return saved;
    return saved * grad_output.to(saved.scalar_type());
}

struct next_token_function : ::torch::autograd::Function<next_token_function> {
    static at::Tensor forward(::torch::autograd::AutogradContext* ctx, const at::Tensor& logits,
                              const at::Tensor& token_ids, const next_token_options& o, bool grad) {
        constexpr std::string_view where = "libtorch::next_token_loss";
        const const_token_batch_view tok = tokens(token_ids, "tokens", where);
        return with_logit_type(logits, where, "logits", [&](auto type) {
            using T = decltype(type);
            double value = 0;
            at::Tensor g;
            tok.visit([&](const auto& k) {
                with_logits_view<T, false>(logits, where, "logits", [&](const auto& x) {
                    if (grad) {
                        g = gradient_buffer_like(logits);
                        with_logits_view<T, true>(g, where, "gradient", [&](const auto& gv) {
                            if constexpr (same_rank<decltype(gv), decltype(x)>)
                                value = selfreplay::next_token_loss(x, k, gv, o).value;
                        });
                    } else {
                        value = selfreplay::next_token_loss(x, k, o).value;
                    }
                });
            });
            if (grad) ctx->saved_data["g"] = g;
            return at::scalar_tensor(value, logits.options().requires_grad(false));
        });
    }
    static ::torch::autograd::variable_list backward(::torch::autograd::AutogradContext* ctx,
                                                     ::torch::autograd::variable_list grad_outputs) {
        return {scaled_gradient(ctx->saved_data["g"].toTensor(), grad_outputs[0]), at::Tensor(), at::Tensor(),
                at::Tensor()};
    }
};

//! Shared by the divergences: the forward of kl_divergence or generalized_jsd.
template <class Options>
struct divergence_function : ::torch::autograd::Function<divergence_function<Options>> {
    static constexpr std::string_view where =
        std::is_same_v<Options, kl_options> ? "libtorch::kl_divergence" : "libtorch::generalized_jsd";

    static at::Tensor forward(::torch::autograd::AutogradContext* ctx, const at::Tensor& student,
                              const at::Tensor& reference, const Options& o, bool grad) {
        return with_logit_type(student, where, "student_logits", [&](auto type) {
            using T = decltype(type);
            require(reference.defined(), where, "reference_logits", "is an undefined tensor");
            require(reference.dim() == student.dim(), where, "reference_logits",
                    "must have the rank of 'student_logits' (", student.dim(), "), got ", reference.dim());
            double value = 0;
            at::Tensor g;
            with_logits_view<T, false>(student, where, "student_logits", [&](const auto& s) {
                with_logits_view<T, false>(reference, where, "reference_logits", [&](const auto& r) {
                    if constexpr (std::is_same_v<decltype(s), decltype(r)>) {
                        if (grad) {
                            g = gradient_buffer_like(student);
                            with_logits_view<T, true>(g, where, "gradient", [&](const auto& gv) {
                                if constexpr (!same_rank<decltype(gv), decltype(s)>)
                                    return;
                                else if constexpr (std::is_same_v<Options, kl_options>)
                                    value = selfreplay::kl_divergence(s, r, gv, o).value;
                                else
                                    value = selfreplay::generalized_jsd(s, r, gv, o).value;
                            });
                        } else if constexpr (std::is_same_v<Options, kl_options>) {
                            value = selfreplay::kl_divergence(s, r, o).value;
                        } else {
                            value = selfreplay::generalized_jsd(s, r, o).value;
                        }
                    }
                });
            });
            if (grad) ctx->saved_data["g"] = g;
            return at::scalar_tensor(value, student.options().requires_grad(false));
        });
    }
    static ::torch::autograd::variable_list backward(::torch::autograd::AutogradContext* ctx,
                                                     ::torch::autograd::variable_list grad_outputs) {
        return {scaled_gradient(ctx->saved_data["g"].toTensor(), grad_outputs[0]), at::Tensor(), at::Tensor(),
                at::Tensor()};
    }
};

//! True when autograd will record the call (as `Function::apply` decides).
inline bool records_gradient(const at::Tensor& t) { return at::GradMode::is_enabled() && t.requires_grad(); }

template <class Options>
at::Tensor divergence(const at::Tensor& student, const at::Tensor& reference, const Options& options) {
    constexpr std::string_view where = divergence_function<Options>::where;
    check_autograd_options(options, where);
    require(!reference.defined() || !records_gradient(reference), where, "reference_logits",
            "requires grad, but the loss has no gradient with respect to the reference: pass "
            "reference_logits.detach() (or compute them under NoGradGuard)");
    return divergence_function<Options>::apply(student, reference, options, records_gradient(student));
}

} // namespace detail

//! Next-token cross-entropy of `logits` ([B, T, V] or [B*T, V], Float or Double, CPU) against
//! `tokens` ([B, T], Long or Int), as `selfreplay::next_token_loss` with `options` (default: the
//! reference code's sum / (B*T); PyTorch's `F::cross_entropy` mean is `reduction::mean_counted`).
//! Returns a 0-dim tensor of the logits' dtype; when `logits` requires grad it has a `grad_fn`
//! whose backward returns grad_output times d loss / d logits, computed in the forward's fused
//! pass (one extra [B, T, V] buffer, no second pass over the vocabulary).
//! Throws `invalid_argument` for bad tensors and for `reduction::none` or `accumulate`.
inline at::Tensor next_token_loss(const at::Tensor& logits, const at::Tensor& tokens,
                                  const next_token_options& options = {}) {
    detail::check_autograd_options(options, "libtorch::next_token_loss");
    require(!tokens.defined() || !tokens.requires_grad(), "libtorch::next_token_loss", "tokens",
            "requires grad; token ids have no gradient");
    return detail::next_token_function::apply(logits, tokens, options, detail::records_gradient(logits));
}

//! KL divergence between the student's and the reference's logits (same shape, [B, T, V] or
//! [B*T, V], Float or Double), as `selfreplay::kl_divergence` with `options`; a 0-dim tensor with
//! a `grad_fn` for the student (the reference must not require grad). Matches
//! `F::kl_div(log_softmax(student), log_softmax(reference), log_target=true)` summed over V.
inline at::Tensor kl_divergence(const at::Tensor& student_logits, const at::Tensor& reference_logits,
                                const kl_options& options = {}) {
    return detail::divergence(student_logits, reference_logits, options);
}

//! The generalized Jensen-Shannon divergence of TRL's GKD, as `selfreplay::generalized_jsd`
//! with `options`; a 0-dim tensor with a `grad_fn` for the student.
inline at::Tensor generalized_jsd(const at::Tensor& student_logits, const at::Tensor& reference_logits,
                                  const jsd_options& options = {}) {
    return detail::divergence(student_logits, reference_logits, options);
}

//! The tensors of one training step for `evaluate_objective`; logits are [B, L, V] or [B*L, V]
//! (merged to [B*L, V] without a copy), all of one dtype (Float or Double), tokens Long or Int.
//! Those the mixer does not need may stay undefined.
struct objective_tensors {
    at::Tensor train_tokens{};            //!< [B, L] training batch (after `mix_batch`)
    at::Tensor student_train_logits{};    //!< theta's logits on the training batch
    at::Tensor replay_tokens{};           //!< [R, L] replay batch
    at::Tensor student_replay_logits{};   //!< theta's logits on the replay batch
    at::Tensor reference_replay_logits{}; //!< pi's logits on the replay batch
    at::Tensor reference_train_logits{};  //!< pi's logits on the training batch
};

//! Gradient buffers that `evaluate_objective` fills with d loss / d logits, shaped like the
//! student's logits. Keep one across steps: a buffer of the right shape and dtype is reused
//! (no allocation, no page faults), any other is replaced. Backpropagate with
//! `torch::autograd::backward({train_logits, replay_logits}, {buffers.train, buffers.replay})`.
struct gradient_buffers {
    at::Tensor train{};  //!< d loss / d student_train_logits
    at::Tensor replay{}; //!< d loss / d student_replay_logits (when the mixer uses them)
};

namespace detail {

template <class T>
strided_view<const T, 2> logits_rows(const at::Tensor& t, std::string_view argument) {
    constexpr std::string_view where = "libtorch::evaluate_objective";
    if (!t.defined()) return {};
    require(t.dim() == 2 || t.dim() == 3, where, argument,
            "must be [B, L, V] or [B*L, V], got shape ", shape_text(t.sizes()));
    if (t.dim() == 2) return view<T, 2>(t, argument, where);
    return merge_leading(view<T, 3>(t, argument, where), where, argument);
}

template <class T>
strided_view<T, 2> gradient_rows(at::Tensor& buffer, const at::Tensor& like, std::string_view argument) {
    constexpr std::string_view where = "libtorch::evaluate_objective";
    if (!like.defined()) return {};
    if (!buffer.defined() || buffer.sizes() != like.sizes() || buffer.scalar_type() != like.scalar_type() ||
        !buffer.device().is_cpu() || !buffer.is_contiguous() || buffer.requires_grad())
        buffer = gradient_buffer_like(like);
    if (buffer.dim() == 2) return mutable_view<T, 2>(buffer, argument, where);
    return merge_leading(mutable_view<T, 3>(buffer, argument, where), where, argument);
}

template <class M>
objective_result<M::terms> evaluate(const M& mixer, std::int64_t step, const objective_tensors& in,
                                    gradient_buffers* out, const objective_options& options) {
    constexpr std::string_view where = "libtorch::evaluate_objective";
    require(in.train_tokens.defined(), where, "inputs.train_tokens", "is missing: the training batch is always required");
    return with_logit_type(in.student_train_logits, where, "inputs.student_train_logits", [&](auto type) {
        using T = decltype(type);
        objective_inputs<T> v;
        v.train_tokens = tokens(in.train_tokens, "inputs.train_tokens", where);
        if (in.replay_tokens.defined()) v.replay_tokens = tokens(in.replay_tokens, "inputs.replay_tokens", where);
        v.student_train_logits = logits_rows<T>(in.student_train_logits, "inputs.student_train_logits");
        v.student_replay_logits = logits_rows<T>(in.student_replay_logits, "inputs.student_replay_logits");
        v.reference_replay_logits = logits_rows<T>(in.reference_replay_logits, "inputs.reference_replay_logits");
        v.reference_train_logits = logits_rows<T>(in.reference_train_logits, "inputs.reference_train_logits");
        objective_gradients<T> g;
        if (out != nullptr) {
            g.train = gradient_rows<T>(out->train, in.student_train_logits, "gradients.train");
            if constexpr (M::needs_student_replay_logits)
                g.replay = gradient_rows<T>(out->replay, in.student_replay_logits, "gradients.replay");
        }
        return selfreplay::evaluate_objective(mixer, step, v, g, options);
    });
}

} // namespace detail

//! `selfreplay::evaluate_objective` over tensors: the loss NTP(x) + sum of the mixer's terms and
//! its components at `step`, and d loss / d logits written into `gradients` (whose buffers are
//! reused when they already have the logits' shape and dtype, else allocated). Throws
//! `invalid_argument` naming the input for missing or mis-shaped tensors (see the core function).
template <class M>
objective_result<M::terms> evaluate_objective(const M& mixer, std::int64_t step, const objective_tensors& inputs,
                                              gradient_buffers& gradients, const objective_options& options = {}) {
    return detail::evaluate(mixer, step, inputs, &gradients, options);
}

//! As above, the value and its components only (no gradient).
template <class M>
objective_result<M::terms> evaluate_objective(const M& mixer, std::int64_t step, const objective_tensors& inputs,
                                              const objective_options& options = {}) {
    return detail::evaluate(mixer, step, inputs, nullptr, options);
}

namespace detail {
//! `module->forward(x)` / `module->step(x, state)` for a `ModuleHolder` or a `std::shared_ptr` to a module.
template <class Module>
concept module_handle = requires(Module& m) { m.operator->(); };
} // namespace detail

//! A torch module mapping int64 tokens [B, L] to logits [B, L, V] (`module->forward(tokens)`),
//! as a `selfreplay::language_model` over int64 ids: `next_token_logits` runs the module under
//! `NoGradGuard` on the prefixes (viewed, not copied) and copies the last position's logits out.
//! `Module` is a `ModuleHolder` (`TORCH_MODULE(Net)`) or a `std::shared_ptr<NetImpl>`; it is
//! held by handle (shared with the caller): for a reference model pass a `frozen_copy`.
template <class Module>
    requires detail::module_handle<Module>
class module_language_model {
public:
    //! \param module     the model (handle)
    //! \param vocab_size V, the last extent of its logits (>= 1)
    module_language_model(Module module, index_t vocab_size) : module_(std::move(module)), vocab_(vocab_size) {
        require(vocab_size >= 1, "libtorch::module_language_model", "vocab_size", "must be >= 1, got ", vocab_size);
    }

    index_t vocab_size() const noexcept { return vocab_; } //!< V
    Module& module() noexcept { return module_; }           //!< the wrapped module

    //! Writes into `logits` [B, V] the module's logits at the last position of each prefix [B, L].
    template <class Logit>
    void next_token_logits(strided_view<const std::int64_t, 2> prefixes, strided_view<Logit, 2> logits) {
        const ::torch::NoGradGuard no_grad;
        const at::Tensor x = at::from_blob(const_cast<std::int64_t*>(prefixes.data()),
                                           {prefixes.extent(0), prefixes.extent(1)},
                                           {prefixes.stride(0), prefixes.stride(1)}, at::kLong);
        const at::Tensor y = module_->forward(x);
        require(y.dim() == 3 && y.size(0) == prefixes.extent(0) && y.size(1) == prefixes.extent(1) &&
                    y.size(2) == vocab_,
                "libtorch::module_language_model", "module",
                "returned logits of shape " + detail::shape_text(y.sizes()) + ", expected [B, L, V] = [" +
                    std::to_string(prefixes.extent(0)) + ", " + std::to_string(prefixes.extent(1)) + ", " +
                    std::to_string(vocab_) + "]");
        copy_out(y.select(1, prefixes.extent(1) - 1), logits);
    }

protected:
    //! Copies [B, V] logits into the caller's view (converting to `Logit`).
    template <class Logit>
    static void copy_out(const at::Tensor& src, strided_view<Logit, 2> dst) {
        at::from_blob(dst.data(), {dst.extent(0), dst.extent(1)}, {dst.stride(0), dst.stride(1)},
                      c10::CppTypeToScalarType<Logit>::value)
            .copy_(src);
    }

    Module module_;
    index_t vocab_;
};

//! A torch module with an incremental step as a `selfreplay::incremental_language_model` over
//! int64 ids: besides `forward` (see `module_language_model`) the module offers
//! `module->step(tokens, state) -> std::tuple<at::Tensor, State>`, taking tokens [B] (int64) and
//! the state of B sequences and returning the logits [B, V] of the token after each and the new
//! state; `State{}` (default-constructed, e.g. an empty vector of key/value caches) starts B empty
//! sequences. `generate` then drives it one token per step under `NoGradGuard`.
template <class Module, class State = std::vector<at::Tensor>>
    requires detail::module_handle<Module>
class incremental_module_language_model : public module_language_model<Module> {
public:
    using module_language_model<Module>::module_language_model;

    //! Starts `batch` empty sequences (the state is `State{}`).
    void reset(index_t batch) {
        state_ = State{};
        batch_ = batch;
    }

    //! Appends tokens [B] and writes the next-token logits [B, V].
    template <class Logit>
    void step(strided_view<const std::int64_t, 1> tokens, strided_view<Logit, 2> logits) {
        require(tokens.extent(0) == batch_, "libtorch::incremental_module_language_model", "tokens",
                "has ", tokens.extent(0), " rows but reset() started ", batch_);
        const ::torch::NoGradGuard no_grad;
        const at::Tensor x =
            at::from_blob(const_cast<std::int64_t*>(tokens.data()), {tokens.extent(0)}, {tokens.stride(0)}, at::kLong);
        auto [y, next] = this->module_->step(x, std::move(state_));
        state_ = std::move(next);
        require(y.dim() == 2 && y.size(0) == batch_ && y.size(1) == this->vocab_,
                "libtorch::incremental_module_language_model", "module",
                "step returned logits of shape " + detail::shape_text(y.sizes()) + ", expected [B, V]");
        this->copy_out(y, logits);
    }

private:
    State state_{};
    index_t batch_ = 0;
};

//! A deep copy of `module` for a reference model: cloned parameters and buffers, `eval()` mode,
//! no parameter requiring grad (so training `module` leaves it unchanged).
template <class Module>
    requires detail::module_handle<Module>
Module frozen_copy(const Module& module) {
    using Impl = std::remove_cvref_t<decltype(*module.operator->())>;
    auto copy = std::dynamic_pointer_cast<Impl>(module->clone());
    require(copy != nullptr, "libtorch::frozen_copy", "module", "could not be cloned into its own type");
    copy->eval();
    for (auto& p : copy->parameters()) p.set_requires_grad(false);
    return Module(copy);
}

//! The `matmul` model on libtorch's GEMM (float and double), for the linear losses
//! (`linear_next_token_loss`, ... with hidden states and weights living in torch tensors):
//! c = a * b, or c += a * b when `accumulate`; a [m, k], b [k, n], c [m, n]. Each view is wrapped
//! without a copy (`at::from_blob` with its strides) and multiplied by `at::mm_out` / `addmm_`,
//! outside autograd.
struct torch_matmul {
    //! c = a * b (or c += a * b); throws `invalid_argument` when the extents disagree.
    template <class T>
    void operator()(const strided_view<const T, 2>& a, const strided_view<const T, 2>& b, const strided_view<T, 2>& c,
                    bool accumulate) const {
        require(a.extent(1) == b.extent(0) && a.extent(0) == c.extent(0) && b.extent(1) == c.extent(1), "torch_matmul",
                "c", "has shape [", c.extent(0), ", ", c.extent(1), "] but a * b is [", a.extent(0), ", ", a.extent(1),
                "] * [", b.extent(0), ", ", b.extent(1), "]");
        const auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
        auto wrap = [&](const auto& v) {
            return at::from_blob(const_cast<T*>(v.data()), {v.extent(0), v.extent(1)}, {v.stride(0), v.stride(1)}, options);
        };
        const at::NoGradGuard no_grad;
        at::Tensor C = wrap(c);
        if (accumulate)
            C.addmm_(wrap(a), wrap(b));
        else
            at::mm_out(C, wrap(a), wrap(b));
    }
};

} // namespace selfreplay::libtorch
