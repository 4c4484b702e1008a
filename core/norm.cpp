#include "norm.hpp"

#include <cmath>

namespace modelkeep {

void layer_norm_row_stats(const float* row, std::size_t n, float eps, float& mean, float& inv_std) {
    double m = 0.0;
    for (std::size_t j = 0; j < n; ++j) m += row[j];
    m /= double(n);
    double var = 0.0;
    for (std::size_t j = 0; j < n; ++j) var += (row[j] - m) * (row[j] - m);
    var /= double(n);
    mean = float(m);
    inv_std = float(1.0 / std::sqrt(var + double(eps)));
}

Status layer_norm(const Tensor& x, std::size_t n, float eps, const Tensor* weight, const Tensor* bias, Tensor& y) {
    if (x.dimension() < 1 || x.shape()[x.dimension() - 1] != n)
        return error(Code::shape_mismatch,
                     "LayerNorm expects input (*, " + std::to_string(n) + "), got " + shape_to_string(shape_of(x)));
    y.resize(x.shape());
    if (n == 0) return Status::success();
    const std::size_t rows = x.size() / n;
    for (std::size_t r = 0; r < rows; ++r) {
        const float* in = x.data() + r * n;
        float* out = y.data() + r * n;
        float mean = 0.0f, inv = 0.0f;
        layer_norm_row_stats(in, n, eps, mean, inv);
        for (std::size_t j = 0; j < n; ++j) {
            float v = (in[j] - mean) * inv;
            if (weight) v *= weight->data()[j];
            if (bias) v += bias->data()[j];
            out[j] = v;
        }
    }
    return Status::success();
}

Status batch_norm1d(const Tensor& x, std::size_t c, float eps, const Tensor* weight, const Tensor* bias,
                    const Tensor* running_mean, const Tensor* running_var, Tensor& y) {
    if ((x.dimension() != 2 && x.dimension() != 3) || x.shape()[1] != c)
        return error(Code::shape_mismatch, "BatchNorm1d expects input (N, " + std::to_string(c) + ") or (N, " +
                                               std::to_string(c) + ", L), got " + shape_to_string(shape_of(x)));
    const std::size_t N = x.shape()[0];
    const std::size_t L = x.dimension() == 3 ? x.shape()[2] : 1;
    y.resize(x.shape());
    const double count = double(N * L);
    for (std::size_t ch = 0; ch < c; ++ch) {
        float mean = 0.0f, var = 0.0f;
        if (running_mean && running_var) {
            mean = running_mean->data()[ch];
            var = running_var->data()[ch];
        } else {
            double s = 0.0, ss = 0.0;
            for (std::size_t i = 0; i < N; ++i)
                for (std::size_t l = 0; l < L; ++l) s += x.data()[(i * c + ch) * L + l];
            const double m = count > 0 ? s / count : 0.0;
            for (std::size_t i = 0; i < N; ++i)
                for (std::size_t l = 0; l < L; ++l) {
                    const double d = x.data()[(i * c + ch) * L + l] - m;
                    ss += d * d;
                }
            mean = float(m);
            var = count > 0 ? float(ss / count) : 0.0f;
        }
        // PyTorch's eval form: y = x·alpha + beta, alpha = w/√(var+eps), beta = b − mean·alpha.
        const float inv = 1.0f / std::sqrt(var + eps);
        const float alpha = inv * (weight ? weight->data()[ch] : 1.0f);
        const float beta = (bias ? bias->data()[ch] : 0.0f) - mean * alpha;
        for (std::size_t i = 0; i < N; ++i)
            for (std::size_t l = 0; l < L; ++l) {
                const std::size_t at = (i * c + ch) * L + l;
                y.data()[at] = x.data()[at] * alpha + beta;
            }
    }
    return Status::success();
}

}  // namespace modelkeep
