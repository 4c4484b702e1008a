// layer.hpp — what a layer is: its kind and hyper-parameters (LayerSpec, the
// part the file format and SPEC strings describe) plus its tensors (Layer).
// Parameter names, order and shapes follow PyTorch's modules exactly, so that
// a Sequential's state_dict keys equal torch's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "activation.hpp"
#include "compact.hpp"
#include "dtype.hpp"
#include "rng.hpp"
#include "status.hpp"
#include "tensor.hpp"

namespace modelkeep {

/// On-disk codes (format.hpp §7). Never renumber.
enum class LayerKind : std::uint8_t {
    linear = 1,
    relu = 2,
    leaky_relu = 3,
    sigmoid = 4,
    tanh = 5,
    gelu = 6,
    silu = 7,
    softmax = 8,
    log_softmax = 9,
    identity = 10,
    dropout = 11,
    flatten = 12,
    layer_norm = 13,
    batch_norm1d = 14,
};

constexpr std::uint8_t max_layer_kind = 14;
constexpr std::size_t max_name_bytes = 1024;

/// PyTorch's class name: "Linear", "LeakyReLU", "BatchNorm1d", ...
const char* layer_kind_name(LayerKind kind);
/// The inverse of layer_kind_name; false if unknown.
bool parse_layer_kind(const std::string& name, LayerKind& out);

struct LayerSpec {
    std::string name;  // "0", "fc1", "block.layers.0"
    LayerKind kind = LayerKind::identity;
    std::uint64_t in_features = 0;   // Linear in; LayerNorm / BatchNorm1d n
    std::uint64_t out_features = 0;  // Linear out
    bool bias = true;                // Linear, LayerNorm (when affine)
    bool affine = true;              // LayerNorm elementwise_affine, BatchNorm1d affine
    bool track_running_stats = true; // BatchNorm1d
    bool tanh_approx = false;        // GELU(approximate='tanh')
    float slope = 0.01f;             // LeakyReLU negative_slope
    float p = 0.5f;                  // Dropout
    float eps = 1e-5f;               // LayerNorm, BatchNorm1d
    std::int32_t start_dim = 1;      // Flatten
    std::int32_t end_dim = -1;       // Flatten
};

/// Hyper-parameters in range (sizes ≥ 1 and capped, eps > 0, 0 ≤ p ≤ 1, finite
/// slope, |dims| ≤ max_rank) and a valid name; the message names the layer.
Status validate_layer(const LayerSpec& spec);

/// Layer names: one or more segments of [A-Za-z0-9_] joined by '.', at most 255 bytes.
bool valid_layer_name(const std::string& name);

struct ParamInfo {
    std::string name;  // local: "weight", "running_mean", ...
    Shape shape;
    bool buffer = false;  // running stats: in the state dict, not in parameters()
};

/// The tensors a layer owns, in PyTorch's state_dict order (parameters, then buffers).
std::vector<ParamInfo> layer_params(const LayerSpec& spec);

struct Layer {
    LayerSpec spec;
    std::vector<Tensor> params;  // same order as layer_params(spec)
    /// Linear only, when active: the weight held compact, and params[0] is an
    /// empty tensor. Every reader of the weights goes through param_f32.
    CompactWeight compact;
};

/// params[i] in float32: the tensor itself, or the compact weight expanded
/// into `scratch` (which the result then refers to).
const Tensor& param_f32(const Layer& layer, std::size_t i, Tensor& scratch);

/// Holds a Linear layer's weight in `dtype` (f32 expands a compact weight back).
/// False, with the layer unchanged, if the values cannot be held (compact.hpp).
bool set_weight_dtype(Layer& layer, DType dtype);

/// Bytes the layer's tensors hold in memory.
std::uint64_t layer_bytes(const Layer& layer);

/// A layer with PyTorch's default initial values (Linear: U(-1/√in, 1/√in)
/// for weight and bias; norms: weight 1, bias 0, running_var 1). spec must be valid.
Layer make_layer(const LayerSpec& spec, Rng& rng);

/// The element-wise kinds: activations, and Identity and Dropout (Kind::none
/// in inference). False for every other kind.
bool activation_of(const LayerSpec& spec, Activation& act);

/// y = then(layer(x)) in inference mode; `then` is the element-wise layer that
/// follows, fused (a Linear applies it in its kernel's epilogue). Shapes are
/// checked first (shape_mismatch). For the element-wise kinds y may be x
/// itself; otherwise y must not be x. y's storage is reused when it already
/// holds as many values, so a warm forward allocates nothing.
Status layer_forward(const Layer& layer, const Tensor& x, Tensor& y, Activation then = {});

}  // namespace modelkeep
