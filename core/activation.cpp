#include "activation.hpp"

#include <algorithm>
#include <cmath>

namespace modelkeep {

namespace {

// p[i] = f(p[i]) over [0, n): one loop per kind, the kind picked once.
template <class F>
void map(float* p, std::size_t n, F f) {
    for (std::size_t i = 0; i < n; ++i) p[i] = f(p[i]);
}

float sigmoid1(float v) {
    // Split by sign so exp never overflows.
    if (v >= 0) return 1.0f / (1.0f + std::exp(-v));
    const float e = std::exp(v);
    return e / (1.0f + e);
}

// Over each row of the last dim: log_out ? x - max - log Σ exp : exp(x - max) / Σ.
Status softmax_rows(const Tensor& x, Tensor& y, bool log_out) {
    if (x.dimension() < 1) return error(Code::shape_mismatch, "softmax needs an input of rank >= 1, got a scalar");
    const std::size_t n = x.shape()[x.dimension() - 1];
    y.resize(x.shape());
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

void Activation::apply(float* p, std::size_t n) const {
    switch (kind) {
        case Kind::none: break;
        case Kind::relu: map(p, n, [](float v) { return v > 0.0f ? v : 0.0f; }); break;
        case Kind::leaky_relu: {
            const float s = slope;
            map(p, n, [s](float v) { return v > 0.0f ? v : v * s; });
            break;
        }
        case Kind::sigmoid: map(p, n, sigmoid1); break;
        case Kind::tanh: map(p, n, [](float v) { return std::tanh(v); }); break;
        case Kind::gelu: {
            const float r = 0.7071067811865476f;  // 1/√2
            map(p, n, [r](float v) { return 0.5f * v * (1.0f + std::erf(v * r)); });
            break;
        }
        case Kind::gelu_tanh: {
            const float k = 0.7978845608028654f;  // √(2/π)
            map(p, n, [k](float v) { return 0.5f * v * (1.0f + std::tanh(k * (v + 0.044715f * v * v * v))); });
            break;
        }
        case Kind::silu: map(p, n, [](float v) { return v * sigmoid1(v); }); break;
    }
}

void activate(const Tensor& x, const Activation& act, Tensor& y) {
    if (&y != &x) {
        y.resize(x.shape());
        std::copy(x.data(), x.data() + x.size(), y.data());
    }
    act.apply(y.data(), y.size());
}

Status softmax(const Tensor& x, Tensor& y) { return softmax_rows(x, y, false); }
Status log_softmax(const Tensor& x, Tensor& y) { return softmax_rows(x, y, true); }

}  // namespace modelkeep
