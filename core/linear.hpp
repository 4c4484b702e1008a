// linear.hpp — y = x · Wᵀ + b, PyTorch's nn.Linear.
#pragma once

#include "compact.hpp"
#include "status.hpp"
#include "tensor.hpp"

namespace modelkeep {

/// x is (*, in), weight is (out, in), bias is (out,) or null → y is (*, out).
/// Checks the shapes (shape_mismatch naming what disagrees) before computing.
Status linear_forward(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& y);

/// The same with the weight (out, in) held compact (f16, bf16 or int8).
Status linear_forward(const Tensor& x, const CompactWeight& weight, const Tensor* bias, Tensor& y);

}  // namespace modelkeep
