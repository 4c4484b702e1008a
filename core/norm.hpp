// norm.hpp — LayerNorm and BatchNorm1d (eval mode), as PyTorch computes them.
#pragma once

#include "status.hpp"
#include "tensor.hpp"

namespace modelkeep {

/// x is (*, n); weight, bias are (n,) or null → y (*, n):
/// (x - mean) / √(var + eps) · weight + bias, mean and biased var over the last dim.
Status layer_norm(const Tensor& x, std::size_t n, float eps, const Tensor* weight, const Tensor* bias, Tensor& y);

/// x is (N, C) or (N, C, L); per-channel (C) tensors may be null.
/// With running stats: (x - running_mean) / √(running_var + eps) · weight + bias.
/// Without (track_running_stats=False): the batch's own mean and biased variance
/// over N (and L), as PyTorch does in eval mode then.
Status batch_norm1d(const Tensor& x, std::size_t c, float eps, const Tensor* weight, const Tensor* bias,
                    const Tensor* running_mean, const Tensor* running_var, Tensor& y);

}  // namespace modelkeep
