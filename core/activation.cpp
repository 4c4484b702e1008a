#include "activation.hpp"

#include <algorithm>
#include <cmath>

namespace modelkeep {

namespace {

// y = f(x) element by element; y may be x itself (then nothing is allocated).
template <class F>
void map(const Tensor& x, Tensor& y, F f) {
    if (&y != &x) y = Tensor(x.shape());
    const float* in = x.data();
    float* out = y.data();
    for (std::size_t i = 0, n = x.size(); i < n; ++i) out[i] = f(in[i]);
}

float sigmoid1(float v) {
    // Split by sign so exp never overflows.
    if (v >= 0) return 1.0f / (1.0f + std::exp(-v));
    const float e = std::exp(v);
    return e / (1.0f + e);
}

// Over each row of the last dim: log_out ? x - max - log Σ exp : exp(x - max) / Σ.
Status softmax_rows(const Tensor& x, Tensor& y, bool log_out) {
    if (x.dimension() < 1)
        return error(Code::shape_mismatch, "softmax needs an input of rank >= 1, got a scalar");
    const std::size_t n = x.shape()[x.dimension() - 1];
    y = Tensor(x.shape());
    if (n == 0) return Status::success();
    const std::size_t rows = x.size() / n;
    for (std::size_t r = 0; r < rows; ++r) {
        const float* in = x.data() + r * n;
        float* out = y.data() + r * n;
        const float mx = *std::max_element(in, in + n);
        float sum = 0.0f;
        for (std::size_t j = 0; j < n; ++j) sum += std::exp(in[j] - mx);
        if (log_out) {
            const float lse = std::log(sum);
            for (std::size_t j = 0; j < n; ++j) out[j] = in[j] - mx - lse;
        } else {
            for (std::size_t j = 0; j < n; ++j) out[j] = std::exp(in[j] - mx) / sum;
        }
    }
    return Status::success();
}

}  // namespace

void relu(const Tensor& x, Tensor& y) {
    map(x, y, [](float v) { return v > 0.0f ? v : 0.0f; });
}

void leaky_relu(const Tensor& x, float slope, Tensor& y) {
    map(x, y, [slope](float v) { return v > 0.0f ? v : v * slope; });
}

void sigmoid(const Tensor& x, Tensor& y) { map(x, y, sigmoid1); }

void tanh_act(const Tensor& x, Tensor& y) {
    map(x, y, [](float v) { return std::tanh(v); });
}

void gelu(const Tensor& x, bool tanh_approx, Tensor& y) {
    if (tanh_approx) {
        const float k = 0.7978845608028654f;  // √(2/π)
        map(x, y, [k](float v) { return 0.5f * v * (1.0f + std::tanh(k * (v + 0.044715f * v * v * v))); });
    } else {
        const float r = 0.7071067811865476f;  // 1/√2
        map(x, y, [r](float v) { return 0.5f * v * (1.0f + std::erf(v * r)); });
    }
}

void silu(const Tensor& x, Tensor& y) {
    map(x, y, [](float v) { return v * sigmoid1(v); });
}

Status softmax(const Tensor& x, Tensor& y) { return softmax_rows(x, y, false); }
Status log_softmax(const Tensor& x, Tensor& y) { return softmax_rows(x, y, true); }

}  // namespace modelkeep
