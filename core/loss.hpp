// loss.hpp — PyTorch's losses (torch.nn.functional, 1.13): each gives the loss and its
// gradient with respect to the input, for the backward pass.
//
// Contracts, shared by every loss:
// - Must take PyTorch's names, defaults and option checks: reduction "mean" by default,
//   ignore_index -100, label_smoothing 0, SmoothL1's beta 1, Huber's delta 1.
// - `loss` is a 0-d tensor (shape ()) for mean and sum, the per-element (or, for the
//   class losses, per-sample) losses for none.
// - `grad` has the input's shape and holds d loss.sum() / d input: for mean and sum, the
//   gradient of the scalar; for none, the gradient with an upstream gradient of ones.
// - `loss` and `grad` are resized only when their shape differs: a repeated call on the
//   same shapes allocates nothing (class losses with label smoothing or probabilities
//   included).
// - Shapes and values are checked before anything is written: shape_mismatch,
//   target_out_of_range (a class index, a BCELoss input), invalid_hyperparameter.
//
// Numerics (docs/TRAINING.md, "Numerics"): float32 element-wise, in the order of PyTorch's
// CPU kernels; sums (mean, sum, the class sums of log-softmax) accumulate in double and
// round once, where PyTorch sums float32 in a cascade, so reduced values can differ from
// PyTorch's by a few ULP of the sum of magnitudes. exp and log are the C library's, where
// PyTorch's vectorised kernels use SLEEF's (both within 1 ULP of the exact value).
#pragma once

#include <cstdint>
#include <vector>

#include "status.hpp"
#include "tensor.hpp"

namespace modelkeep {

/// PyTorch's reductions, by their names ("none", "mean", "sum").
#define MODELKEEP_REDUCTIONS(X) X(none) X(mean) X(sum)

enum class Reduction {
#define MODELKEEP_X(name) name,
    MODELKEEP_REDUCTIONS(MODELKEEP_X)
#undef MODELKEEP_X
};

/// "none", "mean", "sum".
const char* reduction_name(Reduction reduction);
/// The reduction named `name`; invalid_hyperparameter for any other string (PyTorch's
/// ValueError "... is not a valid value for reduction").
Status parse_reduction(const std::string& name, Reduction& out);

/// nn.MSELoss: (x - y)^2. input and target have the same shape.
Status mse_loss(const Tensor& input, const Tensor& target, Reduction reduction, Tensor& loss, Tensor& grad);

/// nn.L1Loss: |x - y| (the gradient of |0| is 0).
Status l1_loss(const Tensor& input, const Tensor& target, Reduction reduction, Tensor& loss, Tensor& grad);

/// nn.SmoothL1Loss(beta = 1): 0.5 z^2 / beta where z = |x - y| < beta, else z - 0.5 beta;
/// beta = 0 gives L1Loss's values, but a gradient of -1 (not 0) where x = y, as PyTorch's
/// kernel (x <= -beta). beta < 0: invalid_hyperparameter.
Status smooth_l1_loss(const Tensor& input, const Tensor& target, Reduction reduction, double beta, Tensor& loss,
                      Tensor& grad);

/// nn.HuberLoss(delta = 1): 0.5 z^2 where z = |x - y| < delta, else delta (z - 0.5 delta).
/// delta <= 0: invalid_hyperparameter.
Status huber_loss(const Tensor& input, const Tensor& target, Reduction reduction, double delta, Tensor& loss,
                  Tensor& grad);

/// Options of the class losses (nn.CrossEntropyLoss, nn.NLLLoss), PyTorch's defaults.
struct ClassLossOptions {
    Reduction reduction = Reduction::mean;
    /// A rescaling weight per class, shape (C,); nullptr for none. Must outlive the call.
    const Tensor* weight = nullptr;
    /// Targets equal to it are skipped (class-index targets only).
    std::int64_t ignore_index = -100;
    /// In [0, 1] (cross-entropy only).
    double label_smoothing = 0.0;
};

/// nn.CrossEntropyLoss with class indices: log_softmax over the class dim, then NLLLoss, with
/// label smoothing as PyTorch mixes it in. input is (N, C), (N, C, d1, ...) or unbatched
/// (C,); target holds one index per sample: N·d1·... values (one for unbatched), row-major
/// over (N, d1, ...). Mean divides by the summed weights of the targets not ignored (NaN
/// when all are ignored, as PyTorch). loss for none has shape (N, d1, ...) (() unbatched).
Status cross_entropy_loss(const Tensor& input, const std::vector<std::int64_t>& target, const ClassLossOptions& options,
                          Tensor& loss, Tensor& grad);

/// nn.CrossEntropyLoss with class probabilities: target has the input's shape. Mean
/// divides by the number of samples (N·d1·...), whatever the weights; ignore_index does not
/// apply.
Status cross_entropy_loss_probs(const Tensor& input, const Tensor& target, const ClassLossOptions& options,
                                Tensor& loss, Tensor& grad);

/// nn.NLLLoss: input holds log-probabilities, shapes as cross_entropy_loss.
Status nll_loss(const Tensor& input, const std::vector<std::int64_t>& target, const ClassLossOptions& options,
                Tensor& loss, Tensor& grad);

/// nn.BCEWithLogitsLoss: -w [p y log σ(x) + (1 - y) log(1 - σ(x))], computed from the
/// logits with the log-sum-exp trick (finite for |x| = 100 and beyond). weight and
/// pos_weight (nullptr for none) broadcast to the input's shape (numpy rules: trailing
/// dims, each 1 or equal); pos_weight is typically (C,) over the last dim.
Status bce_with_logits_loss(const Tensor& input, const Tensor& target, const Tensor* weight, const Tensor* pos_weight,
                            Reduction reduction, Tensor& loss, Tensor& grad);

/// nn.BCELoss: -w [y log x + (1 - y) log(1 - x)], each log clamped at -100; the gradient's
/// denominator x (1 - x) clamped at 1e-12, as PyTorch. An input outside [0, 1] (or NaN):
/// target_out_of_range.
Status bce_loss(const Tensor& input, const Tensor& target, const Tensor* weight, Reduction reduction, Tensor& loss,
                Tensor& grad);

}  // namespace modelkeep
