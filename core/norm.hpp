// norm.hpp — LayerNorm and BatchNorm1d (eval mode), as PyTorch computes them.
#pragma once

#include "status.hpp"
#include "tensor.hpp"

namespace modelkeep {

/// x is (*, n); weight, bias are (n,) or null → y (*, n):
/// (x - mean) / √(var + eps) · weight + bias, mean and biased var over the last dim.
Status layer_norm(const Tensor& x, std::size_t n, float eps, const Tensor* weight, const Tensor* bias, Tensor& y);

/// One row's statistics as layer_norm computes them (n >= 1): the mean and the
/// biased variance in double, 1/sqrt(var + eps) rounded to float. The training
/// forward (backward.cpp) uses the same, so that its outputs are layer_norm's.
void layer_norm_row_stats(const float* row, std::size_t n, float eps, float& mean, float& inv_std);

/// x is (N, C) or (N, C, L); per-channel (C) tensors may be null.
/// With running stats: (x - running_mean) / √(running_var + eps) · weight + bias.
/// Without (track_running_stats=False): the batch's own mean and biased variance
/// over N (and L), as PyTorch does in eval mode then.
Status batch_norm1d(const Tensor& x, std::size_t c, float eps, const Tensor* weight, const Tensor* bias,
                    const Tensor* running_mean, const Tensor* running_var, Tensor& y);

}  // namespace modelkeep
