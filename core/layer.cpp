#include "layer.hpp"

#include <algorithm>
#include <cmath>

#include "activation.hpp"
#include "linear.hpp"
#include "norm.hpp"

namespace modelkeep {

namespace {

Status bad(const LayerSpec& s, const std::string& what) {
    return error(Code::invalid_argument, "layer '" + s.name + "' (" + layer_kind_name(s.kind) + "): " + what);
}

// Flatten(start, end)'s output shape for an input of `rank` dims (shape[i]
// gives dim i); false when the dims do not fit the rank.
template <class ShapeIn, class ShapeOut>
bool flatten_shape(const ShapeIn& x, int start, int end, ShapeOut& out) {
    const int r = int(x.size());
    const int s = start < 0 ? start + r : start;
    const int e = end < 0 ? end + r : end;
    if (s < 0 || e >= r || s > e) return false;
    out.clear();
    for (int i = 0; i < s; ++i) out.push_back(x[i]);
    std::size_t merged = 1;
    for (int i = s; i <= e; ++i) merged *= x[i];
    out.push_back(merged);
    for (int i = e + 1; i < r; ++i) out.push_back(x[i]);
    return true;
}

Status flatten_forward(const Tensor& x, int start, int end, Tensor& y) {
    Tensor::shape_type out;  // inline storage: no allocation for rank ≤ 4
    if (!flatten_shape(x.shape(), start, end, out))
        return error(Code::shape_mismatch, "Flatten(" + std::to_string(start) + ", " + std::to_string(end) +
                                               ") does not fit input " + shape_to_string(shape_of(x)));
    y.resize(out);
    std::copy(x.data(), x.data() + x.size(), y.data());
    return Status::success();
}

}  // namespace

namespace {

struct KindNames {
    LayerKind kind;
    const char* name;
    const char* torch_class;
};

constexpr KindNames kind_names[] = {
#define MODELKEEP_X(kind, code, name, torch_class) {LayerKind::kind, name, torch_class},
    MODELKEEP_LAYER_KINDS(MODELKEEP_X)
#undef MODELKEEP_X
};
static_assert(sizeof kind_names / sizeof kind_names[0] == layer_kind_count, "one entry per kind");

}  // namespace

const char* layer_kind_name(LayerKind kind) {
    const unsigned i = unsigned(kind) - 1;  // codes are 1 .. layer_kind_count, in list order
    return i < layer_kind_count ? kind_names[i].name : "unknown";
}

bool parse_layer_kind(const std::string& text, LayerKind& out) {
    for (const KindNames& k : kind_names)
        if (text == k.name) {
            out = k.kind;
            return true;
        }
    return false;
}

bool layer_kind_of_torch_class(const std::string& path, LayerKind& out) {
    for (const KindNames& k : kind_names)
        if (path == k.torch_class) {
            out = k.kind;
            return true;
        }
    return false;
}

const char* known_layer_kinds() {
    return &(""
#define MODELKEEP_X(kind, code, name, torch_class) ", " name
             MODELKEEP_LAYER_KINDS(MODELKEEP_X)
#undef MODELKEEP_X
                 )[2];  // past the first ", "
}

bool valid_layer_name(const std::string& name) {
    if (name.empty() || name.size() > 255) return false;
    bool segment_empty = true;
    for (char ch : name) {
        if (ch == '.') {
            if (segment_empty) return false;
            segment_empty = true;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_') {
            segment_empty = false;
        } else {
            return false;
        }
    }
    return !segment_empty;
}

Status validate_layer(const LayerSpec& s) {
    if (!s.name.empty() && !valid_layer_name(s.name))  // empty: the root (validate_specs: the only layer)
        return error(Code::bad_name, "layer name '" + s.name +
                                         "' is not segments of [A-Za-z0-9_] joined by '.' "
                                         "(1 to 255 bytes)");
    const std::uint8_t k = std::uint8_t(s.kind);
    if (k < 1 || k > layer_kind_count)
        return error(Code::unknown_layer, "layer '" + s.name + "' has unknown kind " + std::to_string(k));
    switch (s.kind) {
        case LayerKind::linear: {
            if (s.in_features == 0 || s.out_features == 0) return bad(s, "in_features and out_features must be >= 1");
            std::uint64_t n;
            if (!checked_mul(s.in_features, s.out_features, n) || n > max_tensor_elements)
                return error(Code::size_overflow, "layer '" + s.name + "' (Linear): " + std::to_string(s.out_features) +
                                                      " x " + std::to_string(s.in_features) +
                                                      " weight is over the element cap");
            break;
        }
        case LayerKind::leaky_relu:
            if (!std::isfinite(s.slope)) return bad(s, "negative_slope must be finite");
            break;
        case LayerKind::dropout:
            if (!(s.p >= 0.0f && s.p <= 1.0f)) return bad(s, "p must be in [0, 1]");
            break;
        case LayerKind::flatten:
            if (s.start_dim < -int(max_rank) || s.start_dim >= int(max_rank) || s.end_dim < -int(max_rank) ||
                s.end_dim >= int(max_rank))
                return bad(s, "start_dim and end_dim must be in [-8, 7]");
            break;
        case LayerKind::layer_norm:
        case LayerKind::batch_norm1d:
            if (s.in_features == 0 || s.in_features > max_tensor_elements)
                return bad(s, "num_features must be in [1, 2^28]");
            if (!(s.eps > 0.0f) || !std::isfinite(s.eps)) return bad(s, "eps must be > 0 and finite");
            break;
        case LayerKind::relu:
        case LayerKind::sigmoid:
        case LayerKind::tanh:
        case LayerKind::gelu:
        case LayerKind::silu:
        case LayerKind::softmax:
        case LayerKind::log_softmax:
        case LayerKind::identity: break;  // no hyper-parameter to check
    }
    return Status::success();
}

std::vector<ParamInfo> layer_params(const LayerSpec& s) {
    std::vector<ParamInfo> out;
    const std::size_t n = std::size_t(s.in_features);
    switch (s.kind) {
        case LayerKind::linear:
            out.push_back({"weight", {std::size_t(s.out_features), n}});
            if (s.bias) out.push_back({"bias", {std::size_t(s.out_features)}});
            break;
        case LayerKind::layer_norm:
            if (s.affine) {
                out.push_back({"weight", {n}});
                if (s.bias) out.push_back({"bias", {n}});
            }
            break;
        case LayerKind::batch_norm1d:
            if (s.affine) {
                out.push_back({"weight", {n}});
                out.push_back({"bias", {n}});
            }
            if (s.track_running_stats) {
                out.push_back({"running_mean", {n}, true});
                out.push_back({"running_var", {n}, true});
                out.push_back({"num_batches_tracked", {}, true});
            }
            break;
        case LayerKind::relu:
        case LayerKind::leaky_relu:
        case LayerKind::sigmoid:
        case LayerKind::tanh:
        case LayerKind::gelu:
        case LayerKind::silu:
        case LayerKind::softmax:
        case LayerKind::log_softmax:
        case LayerKind::identity:
        case LayerKind::dropout:
        case LayerKind::flatten: break;  // no tensors
    }
    return out;
}

Layer make_layer(const LayerSpec& spec, Rng& rng) {
    Layer layer{spec, {}};
    const std::vector<ParamInfo> infos = layer_params(spec);
    layer.params.reserve(infos.size());
    for (const ParamInfo& info : infos) {
        Tensor t = zeros(info.shape);
        if (spec.kind == LayerKind::linear) {
            // PyTorch: kaiming_uniform_(a=√5) for weight and U(±1/√fan_in) for bias,
            // both the same bound 1/√in.
            const float bound = 1.0f / std::sqrt(float(spec.in_features));
            for (float& v : t) v = rng.uniform(-bound, bound);
        } else if (info.name == "weight" || info.name == "running_var") {
            for (float& v : t) v = 1.0f;
        }
        layer.params.emplace_back(std::move(t));
    }
    if (spec.kind == LayerKind::linear) layer.params[0].pack();  // laid out for the kernels once, here
    return layer;
}

bool activation_of(const LayerSpec& spec, Activation& act) {
    using K = Activation::Kind;
    switch (spec.kind) {
        case LayerKind::relu: act = {K::relu}; return true;
        case LayerKind::leaky_relu: act = {K::leaky_relu, spec.slope}; return true;
        case LayerKind::sigmoid: act = {K::sigmoid}; return true;
        case LayerKind::tanh: act = {K::tanh}; return true;
        case LayerKind::gelu: act = {spec.tanh_approx ? K::gelu_tanh : K::gelu}; return true;
        case LayerKind::silu: act = {K::silu}; return true;
        case LayerKind::identity:
        case LayerKind::dropout: act = {K::none}; return true;
        case LayerKind::linear:
        case LayerKind::softmax:
        case LayerKind::log_softmax:
        case LayerKind::flatten:
        case LayerKind::layer_norm:
        case LayerKind::batch_norm1d: return false;
    }
    return false;
}

Status layer_forward(const Layer& layer, const Tensor& x, Tensor& y, Activation then) {
    const LayerSpec& s = layer.spec;
    // The float32 tensor i in layer_params order, looked up by position (no allocation).
    const auto param = [&](std::size_t i) -> const Tensor* {
        return i < layer.params.size() ? &layer.params[i].values() : nullptr;
    };
    Status st;
    Activation act;
    switch (s.kind) {
        case LayerKind::relu:
        case LayerKind::leaky_relu:
        case LayerKind::sigmoid:
        case LayerKind::tanh:
        case LayerKind::gelu:
        case LayerKind::silu:
        case LayerKind::identity:
        case LayerKind::dropout:  // inference: the identity
            (void)activation_of(s, act);
            activate(x, act, y);
            break;
        case LayerKind::linear: {  // weight, bias
            const Param& w = layer.params[0];
            const Tensor* bias = s.bias ? param(1) : nullptr;
            // Must: a Linear's float32 weight is packed (make_layer and Sequential::from_parts pack it,
            // Param::assign and set_dtype keep it so), so the row kernels are not linked into the wasm.
            if (!w.is_compact() && !w.is_packed())
                return error(Code::invalid_argument, "layer '" + s.name + "': its weight is not packed");
            st = w.is_compact() ? linear_forward(x, w.compact(), bias, y, then)
                                : linear_forward_packed(x, w.values(), bias, y, then);
            then = {};  // applied by the kernel
            break;
        }
        case LayerKind::softmax: st = softmax(x, y); break;
        case LayerKind::log_softmax: st = log_softmax(x, y); break;
        case LayerKind::flatten: st = flatten_forward(x, s.start_dim, s.end_dim, y); break;
        case LayerKind::layer_norm:  // weight, bias when affine
            st = layer_norm(x, std::size_t(s.in_features), s.eps, s.affine ? param(0) : nullptr,
                            s.affine && s.bias ? param(1) : nullptr, y);
            break;
        case LayerKind::batch_norm1d: {  // weight, bias when affine; then the running stats
            const std::size_t stats = s.affine ? 2 : 0;
            st = batch_norm1d(x, std::size_t(s.in_features), s.eps, s.affine ? param(0) : nullptr,
                              s.affine ? param(1) : nullptr, s.track_running_stats ? param(stats) : nullptr,
                              s.track_running_stats ? param(stats + 1) : nullptr, y);
            break;
        }
    }
    if (!st.ok())
        return error(st.code(),
                     (s.name.empty() ? std::string("the root layer") : "layer '" + s.name + "'") + ": " + st.message());
    then.apply(y.data(), y.size());
    return Status::success();
}

bool layer_output_shape(const LayerSpec& s, const Shape& x, Shape& y) {
    const std::size_t last = x.empty() ? 0 : x.back();
    switch (s.kind) {
        case LayerKind::relu:
        case LayerKind::leaky_relu:
        case LayerKind::sigmoid:
        case LayerKind::tanh:
        case LayerKind::gelu:
        case LayerKind::silu:
        case LayerKind::identity:
        case LayerKind::dropout: y = x; return true;
        case LayerKind::softmax:
        case LayerKind::log_softmax: y = x; return !x.empty();
        case LayerKind::linear:
            if (x.empty() || last != s.in_features) return false;
            y = x;
            y.back() = std::size_t(s.out_features);
            return true;
        case LayerKind::flatten: return flatten_shape(x, s.start_dim, s.end_dim, y);
        case LayerKind::layer_norm: y = x; return !x.empty() && last == s.in_features;
        case LayerKind::batch_norm1d: y = x; return (x.size() == 2 || x.size() == 3) && x[1] == s.in_features;
    }
    return false;
}

bool set_weight_dtype(Layer& layer, DType dtype) {
    if (layer.spec.kind != LayerKind::linear) return true;  // only Linear weights are held compact
    return layer.params[0].set_dtype(dtype);
}

std::uint64_t layer_bytes(const Layer& layer) {
    std::uint64_t n = 0;
    for (const Param& p : layer.params) n += p.bytes();
    return n;
}

}  // namespace modelkeep
