// backward.hpp — the per-layer pieces of training, with PyTorch's formulas:
// the forwards that keep what backward needs (LayerNorm's and BatchNorm1d's
// normalised x̂ and 1/σ, Dropout's mask) and the backward of every layer kind.
// Each takes raw row-major arrays whose shapes the caller (train.cpp) checked;
// nothing here allocates but the scratch of the fast Linear products, which
// the caller keeps and which only grows. The Sequential walk is train.hpp.
//
// Notation: g is the gradient of the loss with respect to the layer's output,
// gx with respect to its input; "rows" is the product of every dim but the
// last, as nn.Linear and nn.LayerNorm see an input (*, n).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "activation.hpp"
#include "tensor.hpp"

namespace modelkeep {

// ---- Linear: y (rows, out) = x (rows, in) · Wᵀ + b, W (out, in) rows ----------------

/// Reference loops: gw (out, in) = gᵀ · x, one dot product over rows per weight.
void linear_grad_weight_ref(const float* x, const float* g, float* gw, std::size_t rows, std::size_t out,
                            std::size_t in);
/// Reference loops: gx (rows, in) = g · W, one dot product over out per input.
void linear_grad_input_ref(const float* g, const float* w, float* gx, std::size_t rows, std::size_t out,
                           std::size_t in);
/// gb (out,) = Σ_rows g.
void linear_grad_bias(const float* g, float* gb, std::size_t rows, std::size_t out);

/// gw = gᵀ · x through the GEMM kernels (matmul_nt on gᵀ (out, rows) and xᵀ (in, rows),
/// transposed into `scratch`, which only grows: layers of every shape share it
/// without allocating once it holds the largest).
void linear_grad_weight(const float* x, const float* g, float* gw, std::size_t rows, std::size_t out, std::size_t in,
                        std::vector<float>& scratch);
/// gx = g · W through the GEMM kernels (matmul_nt on g and Wᵀ (in, out), transposed into scratch).
void linear_grad_input(const float* g, const float* w, float* gx, std::size_t rows, std::size_t out, std::size_t in,
                       std::vector<float>& scratch);

// ---- element-wise activations -----------------------------------------------------

/// gx = g · f'(x) over n values; x is the input, y = f(x) the output (sigmoid and
/// tanh use y, the others x, as PyTorch's backward formulas do). gx may be g.
void activation_backward(const Activation& act, const float* x, const float* y, const float* g, float* gx,
                         std::size_t n);

/// Softmax over the last dim (n), y its output: gx = y · (g − Σ g·y).
/// LogSoftmax (log_out), y its output: gx = g − exp(y) · Σ g.
void softmax_backward(const float* y, const float* g, float* gx, std::size_t rows, std::size_t n, bool log_out);

// ---- Dropout (training mode) --------------------------------------------------------

/// A PCG32 generator whose whole state is one integer (state()), so that a
/// checkpoint can keep it and set_state() gives the same masks again.
class DropoutRng {
public:
    explicit DropoutRng(std::uint64_t seed = 0) { this->seed(seed); }
    /// The generator of `seed`: the same seed, the same masks.
    void seed(std::uint64_t seed);
    std::uint64_t state() const { return state_; }
    void set_state(std::uint64_t state) { state_ = state; }
    std::uint32_t next_u32();
    /// Uniform in [0, 1) with 24 random bits.
    float next_unit() { return float(next_u32() >> 8) * (1.0f / 16777216.0f); }

private:
    std::uint64_t state_ = 0;
};

/// mask[i] = 0 with probability p, else 1/(1 − p) (p = 1: every value 0, as
/// PyTorch); y = x · mask. One draw per value, in order. y may be x.
void dropout_forward(const float* x, float* y, float* mask, std::size_t n, float p, DropoutRng& rng);
/// gx = g · mask. gx may be g.
void dropout_backward(const float* g, const float* mask, float* gx, std::size_t n);

// ---- LayerNorm over the last dim (n) -------------------------------------------------

/// The forward of norm.hpp's layer_norm (the same values), keeping x̂ (rows, n)
/// and 1/σ per row (rstd, rows). weight, bias may be null.
void layer_norm_train(const float* x, std::size_t rows, std::size_t n, float eps, const float* weight,
                      const float* bias, float* y, float* xhat, float* rstd);
/// gx (may be null), gw and gb (null when the layer has none; written, not added to).
void layer_norm_backward(const float* g, const float* xhat, const float* rstd, const float* weight, std::size_t rows,
                         std::size_t n, float* gx, float* gw, float* gb);

// ---- BatchNorm1d over N (and L) per channel: x is (N, C) or (N, C, L) ----------------

/// Normalises with the batch's own mean and biased variance (training mode,
/// or no running stats), keeping x̂ and 1/σ per channel (rstd, C); the batch
/// mean and unbiased variance per channel go to mean and var_unbiased for the
/// running-stat update (count N·L must be > 1: the caller checks).
void batch_norm_train(const float* x, std::size_t N, std::size_t C, std::size_t L, float eps, const float* weight,
                      const float* bias, float* y, float* xhat, float* rstd, float* mean, float* var_unbiased);
/// Eval mode with running stats, as norm.hpp's batch_norm1d (the same values),
/// keeping x̂ = (x − running_mean)/σ and 1/σ per channel for the backward.
void batch_norm_eval(const float* x, std::size_t N, std::size_t C, std::size_t L, float eps, const float* weight,
                     const float* bias, const float* running_mean, const float* running_var, float* y, float* xhat,
                     float* rstd);
/// The backward of either: batch_stats (batch_norm_train) differentiates
/// through the batch's mean and variance, else (batch_norm_eval) through the
/// affine map alone. gx may be null; gw, gb null when the layer has none.
void batch_norm_backward(const float* g, const float* xhat, const float* rstd, const float* weight, std::size_t N,
                         std::size_t C, std::size_t L, bool batch_stats, float* gx, float* gw, float* gb);
/// PyTorch's running-stat update after a training-mode batch: num_batches_tracked
/// += 1, then with f = momentum (or 1/num_batches_tracked when momentum is NaN,
/// PyTorch's momentum=None: a cumulative average) running = (1 − f)·running + f·batch,
/// the variance unbiased. num_batches_tracked may be null (not tracked: f = momentum).
void batch_norm_update_stats(const float* mean, const float* var_unbiased, std::size_t C, float momentum,
                             float* running_mean, float* running_var, float* num_batches_tracked);

}  // namespace modelkeep
