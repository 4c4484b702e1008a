// layer.hpp — what a layer is: its kind and hyper-parameters (LayerSpec, the
// part the file format and SPEC strings describe) plus its tensors (Layer).
// Parameter names, order and shapes follow PyTorch's modules exactly, so that
// a Sequential's state_dict keys equal torch's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "activation.hpp"
#include "dtype.hpp"
#include "param.hpp"
#include "rng.hpp"
#include "status.hpp"
#include "tensor.hpp"

namespace modelkeep {

/// Every layer kind, once: X(kind, on-disk code (format.hpp §7, never
/// renumber), PyTorch's class name, torch's module path for it). The enum,
/// the names, the PyTorch class map, the "known kinds" message and the count
/// are generated from this list. No switch over LayerKind has a `default:`,
/// so the compiler (-Werror=switch) names every place a new kind must be handled.
#define MODELKEEP_LAYER_KINDS(X)                                               \
    X(linear, 1, "Linear", "torch.nn.modules.linear.Linear")                   \
    X(relu, 2, "ReLU", "torch.nn.modules.activation.ReLU")                     \
    X(leaky_relu, 3, "LeakyReLU", "torch.nn.modules.activation.LeakyReLU")     \
    X(sigmoid, 4, "Sigmoid", "torch.nn.modules.activation.Sigmoid")            \
    X(tanh, 5, "Tanh", "torch.nn.modules.activation.Tanh")                     \
    X(gelu, 6, "GELU", "torch.nn.modules.activation.GELU")                     \
    X(silu, 7, "SiLU", "torch.nn.modules.activation.SiLU")                     \
    X(softmax, 8, "Softmax", "torch.nn.modules.activation.Softmax")            \
    X(log_softmax, 9, "LogSoftmax", "torch.nn.modules.activation.LogSoftmax")  \
    X(identity, 10, "Identity", "torch.nn.modules.linear.Identity")            \
    X(dropout, 11, "Dropout", "torch.nn.modules.dropout.Dropout")              \
    X(flatten, 12, "Flatten", "torch.nn.modules.flatten.Flatten")              \
    X(layer_norm, 13, "LayerNorm", "torch.nn.modules.normalization.LayerNorm") \
    X(batch_norm1d, 14, "BatchNorm1d", "torch.nn.modules.batchnorm.BatchNorm1d")

enum class LayerKind : std::uint8_t {
#define MODELKEEP_X(kind, code, name, torch_class) kind = code,
    MODELKEEP_LAYER_KINDS(MODELKEEP_X)
#undef MODELKEEP_X
};

/// How many kinds there are; their on-disk codes are exactly 1 .. layer_kind_count.
constexpr std::uint8_t layer_kind_count = 0
#define MODELKEEP_X(kind, code, name, torch_class) +1
    MODELKEEP_LAYER_KINDS(MODELKEEP_X)
#undef MODELKEEP_X
    ;
namespace detail {
constexpr bool layer_codes_dense() {
    int expected = 1;
#define MODELKEEP_X(kind, code, name, torch_class) \
    if (code != expected++) return false;
    MODELKEEP_LAYER_KINDS(MODELKEEP_X)
#undef MODELKEEP_X
    return true;
}
}  // namespace detail
static_assert(detail::layer_codes_dense(),
              "layer kind codes must be 1, 2, ... in list order (a reader checks the range)");

constexpr std::size_t max_name_bytes = 1024;

/// PyTorch's class name: "Linear", "LeakyReLU", "BatchNorm1d", ...
const char* layer_kind_name(LayerKind kind);
/// The inverse of layer_kind_name; false if unknown.
bool parse_layer_kind(const std::string& name, LayerKind& out);
/// The kind whose torch class is `path` ("torch.nn.modules.linear.Linear"); false if none.
bool layer_kind_of_torch_class(const std::string& path, LayerKind& out);
/// "Linear, ReLU, ..., BatchNorm1d": every kind's name, for messages.
const char* known_layer_kinds();

struct LayerSpec {
    std::string name;  // "0", "fc1", "block.layers.0"
    LayerKind kind = LayerKind::identity;
    std::uint64_t in_features = 0;    // Linear in; LayerNorm / BatchNorm1d n
    std::uint64_t out_features = 0;   // Linear out
    bool bias = true;                 // Linear, LayerNorm (when affine)
    bool affine = true;               // LayerNorm elementwise_affine, BatchNorm1d affine
    bool track_running_stats = true;  // BatchNorm1d
    bool tanh_approx = false;         // GELU(approximate='tanh')
    float slope = 0.01f;              // LeakyReLU negative_slope
    float p = 0.5f;                   // Dropout
    float eps = 1e-5f;                // LayerNorm, BatchNorm1d
    std::int32_t start_dim = 1;       // Flatten
    std::int32_t end_dim = -1;        // Flatten
};

/// Hyper-parameters in range (sizes ≥ 1 and capped, eps > 0, 0 ≤ p ≤ 1, finite
/// slope, |dims| ≤ max_rank) and a valid name — or the empty name of the root
/// (a model that is this one layer); the message names the layer.
Status validate_layer(const LayerSpec& spec);

/// Layer names: one or more segments of [A-Za-z0-9_] joined by '.', at most 255 bytes.
bool valid_layer_name(const std::string& name);

/// A tensor's state_dict key: "fc1.weight"; for the root layer (the empty name:
/// a model that is one layer, as torch's bare nn.Linear) just "weight".
inline std::string param_key(const std::string& layer, const std::string& param) {
    return layer.empty() ? param : layer + "." + param;
}

struct ParamInfo {
    std::string name;  // local: "weight", "running_mean", ...
    Shape shape;
    bool buffer = false;  // running stats: in the state dict, not in parameters()
};

/// The tensors a layer owns, in PyTorch's state_dict order (parameters, then buffers).
std::vector<ParamInfo> layer_params(const LayerSpec& spec);

struct Layer {
    LayerSpec spec;
    /// Same order as layer_params(spec). Float32, but for a Linear weight held
    /// compact (param.hpp).
    std::vector<Param> params;
};

/// Holds a Linear layer's weight in `dtype` (f32 expands a compact weight back);
/// other kinds hold float32 only. False, with the layer unchanged, if the
/// values cannot be held so (compact.hpp).
bool set_weight_dtype(Layer& layer, DType dtype);

/// Bytes the layer's tensors hold in memory.
std::uint64_t layer_bytes(const Layer& layer);

/// A layer with PyTorch's default initial values (Linear: U(-1/√in, 1/√in)
/// for weight and bias; norms: weight 1, bias 0, running_var 1). spec must be valid.
Layer make_layer(const LayerSpec& spec, Rng& rng);

/// The element-wise kinds: activations, and Identity and Dropout (Kind::none
/// in inference). False for every other kind.
bool activation_of(const LayerSpec& spec, Activation& act);

/// The shape layer_forward gives for an input of shape x; false when x does
/// not fit (layer_forward then says why, shape_mismatch).
bool layer_output_shape(const LayerSpec& spec, const Shape& x, Shape& y);

/// y = then(layer(x)) in inference mode; `then` is the element-wise layer that
/// follows, fused (a Linear applies it in its kernel's epilogue). Shapes are
/// checked first (shape_mismatch). For the element-wise kinds y may be x
/// itself; otherwise y must not be x. y's storage is reused when it already
/// holds as many values, so a warm forward allocates nothing.
Status layer_forward(const Layer& layer, const Tensor& x, Tensor& y, Activation then = {});

}  // namespace modelkeep
