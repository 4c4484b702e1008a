// activation.hpp — element-wise activations and the last-dim softmaxes, with
// PyTorch's definitions. An element-wise activation is a value (Activation)
// so that a kernel can apply it to outputs it has just written — the Linear
// epilogue (gemm.hpp) — and a layer can apply it in place.
#pragma once

#include <cstddef>
#include <cstdint>

#include "status.hpp"
#include "tensor.hpp"

namespace modelkeep {

struct Activation {
    enum class Kind : std::uint8_t {
        none,        // f(v) = v
        relu,        // max(v, 0)
        leaky_relu,  // v > 0 ? v : v · slope
        sigmoid,     // 1 / (1 + e^-v)
        tanh,
        gelu,       // v/2 · (1 + erf(v/√2))
        gelu_tanh,  // v/2 · (1 + tanh(√(2/π)(v + 0.044715v³)))
        silu,       // v · sigmoid(v)
    };
    Kind kind = Kind::none;
    float slope = 0.01f;  // leaky_relu's negative_slope

    /// p[i] = f(p[i]) for i in [0, n).
    void apply(float* p, std::size_t n) const;
};

/// y = act(x) element by element (any shape); y may be x itself. y's storage
/// is reused when it already holds x.size() values.
void activate(const Tensor& x, const Activation& act, Tensor& y);

/// x is (*, n) with rank ≥ 1 → softmax over the last dim (max-subtracted).
Status softmax(const Tensor& x, Tensor& y);
Status log_softmax(const Tensor& x, Tensor& y);

}  // namespace modelkeep
