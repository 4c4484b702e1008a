// activation.hpp — element-wise activations and the last-dim softmaxes, with
// PyTorch's definitions. Every function maps x (any shape) → y (same shape);
// the element-wise ones also in place (y the same tensor as x).
#pragma once

#include "status.hpp"
#include "tensor.hpp"

namespace modelkeep {

void relu(const Tensor& x, Tensor& y);
void leaky_relu(const Tensor& x, float slope, Tensor& y);
void sigmoid(const Tensor& x, Tensor& y);
void tanh_act(const Tensor& x, Tensor& y);
/// Exact: x/2 · (1 + erf(x/√2)); tanh_approx: x/2 · (1 + tanh(√(2/π)(x + 0.044715x³))).
void gelu(const Tensor& x, bool tanh_approx, Tensor& y);
/// x · sigmoid(x)
void silu(const Tensor& x, Tensor& y);
/// x is (*, n) with rank ≥ 1 → softmax over the last dim (max-subtracted).
Status softmax(const Tensor& x, Tensor& y);
Status log_softmax(const Tensor& x, Tensor& y);

}  // namespace modelkeep
