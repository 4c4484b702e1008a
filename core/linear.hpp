// linear.hpp — y = act(x · Wᵀ + b), PyTorch's nn.Linear, with the element-wise
// activation that follows it (if any) fused into the kernel's epilogue.
#pragma once

#include "activation.hpp"
#include "compact.hpp"
#include "status.hpp"
#include "tensor.hpp"

namespace modelkeep {

/// x is (*, in), weight is the float32 (out, in) in the packed layout
/// (packed.hpp), bias is (out,) or null → y is (*, out). Checks the shapes
/// (shape_mismatch naming what disagrees) before computing. y's storage is
/// reused when it already holds as many values; y must not be x.
Status linear_forward_packed(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& y, Activation act = {});

/// The same with the weight (out, in) held compact (f16, bf16 or int8).
Status linear_forward(const Tensor& x, const CompactWeight& weight, const Tensor* bias, Tensor& y, Activation act = {});

}  // namespace modelkeep
