// model.hpp — Sequential: named layers run in order, with PyTorch's
// state_dict keys ("0.weight", "fc1.bias", "2.running_mean") and
// load_state_dict semantics.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "layer.hpp"
#include "status.hpp"
#include "tensor.hpp"

namespace modelkeep {

constexpr std::size_t max_layers = 4096;

using NamedTensor = std::pair<std::string, Tensor>;
/// Ordered like PyTorch's OrderedDict: layer by layer, parameters then buffers.
using StateDict = std::vector<NamedTensor>;

struct LoadReport {
    std::vector<std::string> missing_keys;     // in the model, not in the state dict
    std::vector<std::string> unexpected_keys;  // in the state dict, not in the model
};

/// The tensors Sequential::forward keeps between calls: one output per layer
/// that cannot run in place (all but the last). Each is resized in place, so
/// once a model has run on an input shape, running it on that shape again
/// allocates nothing. Belongs to one model; not shared between threads.
struct ForwardBuffers {
    std::vector<Tensor> out;  // by layer index
};

/// Elements of the parameters of a model of `specs` (buffers such as
/// running_mean excluded), as sum(p.numel() for p in model.parameters()).
std::uint64_t param_count(const std::vector<LayerSpec>& specs);
/// Elements of every tensor of a model of `specs`, buffers included (its state_dict).
std::uint64_t state_elements(const std::vector<LayerSpec>& specs);

/// The most memory Sequential::create holds for a model of `specs`: its
/// tensors (all float32) and their bookkeeping, for a caller that reserves
/// memory first.
std::uint64_t model_bytes(const std::vector<LayerSpec>& specs);

/// A position match_state_dict gives a tensor sd does not have.
constexpr std::size_t no_tensor = std::size_t(-1);

/// Where each tensor of a model of `specs` is in `sd`: where[k] is the index in
/// sd of the model's k-th tensor in state_dict order, or no_tensor when sd lacks it.
/// PyTorch's load_state_dict checks and messages: a shape mismatch is an error
/// (shape_mismatch naming every one); with strict, so are missing keys
/// (missing_key) and unexpected keys (unexpected_key). A key twice in sd is
/// duplicate_name. `report` lists the missing and unexpected keys either way.
Status match_state_dict(const std::vector<LayerSpec>& specs, const StateDict& sd, bool strict, LoadReport& report,
                        std::vector<std::size_t>& where);

/// Keeps the tensors of sd whose keys start with `prefix` ("module.", "model."),
/// the prefix taken off; the others are not the model's and go. An empty prefix
/// keeps everything; a prefix no key has is missing_key.
Status take_prefix(StateDict& sd, const std::string& prefix);

/// The prefix the file's keys carry and the model's lack ("module.", "model."),
/// when stripping it from the unexpected keys gives every missing one; "" otherwise.
std::string key_prefix(const LoadReport& report);

/// The checks Sequential::create makes, without building anything: every
/// spec valid, at most max_layers, unique names, no layer that is also
/// another's parent ("a" and "a.b"), an empty name (the root) only for the only layer.
Status validate_specs(const std::vector<LayerSpec>& specs);

class Sequential {
public:
    Sequential() = default;

    /// validate_specs, then builds the layers with PyTorch's default
    /// initialisation drawn from Rng(seed).
    static Status create(const std::vector<LayerSpec>& specs, std::uint64_t seed, Sequential& out);

    const std::vector<Layer>& layers() const { return layers_; }
    /// The layers for a trainer that changes their tensors in place (train.hpp:
    /// BatchNorm1d's running stats, load_parameters after an optimizer step).
    /// Must: a float32 Linear weight stays packed (param.hpp): new (out, in) rows go
    /// in through Param::assign or load_parameters, never into values() as rows.
    std::vector<Layer>& mutable_layers() { return layers_; }
    std::vector<LayerSpec> specs() const;

    /// Every tensor, copied, with its full key.
    StateDict state_dict() const;
    /// (key, shape) of every tensor, in state_dict order, without copying.
    std::vector<std::pair<std::string, Shape>> state_dict_shapes() const;
    /// Visit each (key, tensor) in state_dict order in float32, without
    /// copying (a compact weight is expanded for the call only).
    template <class F>
    void for_each_tensor(F f) const {
        Tensor scratch;
        for (const Layer& layer : layers_) {
            const auto infos = layer_params(layer.spec);
            for (std::size_t i = 0; i < infos.size(); ++i)
                f(param_key(layer.spec.name, infos[i].name), layer.params[i].f32(scratch));
        }
    }

    /// Copies the tensors of `sd` whose keys the model has. Any shape mismatch
    /// is an error (shape_mismatch naming every one), as in PyTorch; with
    /// strict, so are missing keys (missing_key) and unexpected keys
    /// (unexpected_key). On error the model is unchanged. `report` lists the
    /// missing and unexpected keys either way.
    Status load_state_dict(const StateDict& sd, bool strict, LoadReport& report);

    /// A model from validated specs and their tensors, moved in state_dict order
    /// (the format reader checked keys and shapes already).
    static Sequential from_parts(const std::vector<LayerSpec>& specs, std::vector<Param>&& params);

    /// A model of validated-or-not `specs` whose tensors are moved out of `sd`,
    /// with strict load_state_dict's checks and messages (shape_mismatch,
    /// missing_key, unexpected_key) — without first initialising weights that
    /// would be overwritten, so a big import holds each tensor once.
    static Status from_state_dict(const std::vector<LayerSpec>& specs, StateDict&& sd, Sequential& out);

    /// x is (N, in) (or any shape the first layer accepts) → the last layer's
    /// output, written into y's storage when it already holds as many values.
    /// An element-wise layer right after a Linear is fused into its kernel;
    /// the others run in place on the previous output.
    Status forward(const Tensor& x, Tensor& y, ForwardBuffers& buffers) const;
    /// The same with buffers for this call only.
    Status forward(const Tensor& x, Tensor& y) const;
    /// The most memory forward(x, y, buffers) holds at once beyond x, y's
    /// old storage and the model, for an input of shape x from empty buffers:
    /// their slots, every layer output that cannot be written in place (y's
    /// included), and the kernels' scratch. (Shapes a layer does not accept count
    /// up to that layer: forward stops there.)
    std::uint64_t forward_bytes(const Shape& x) const;

    /// The most memory state_dict() holds: its copies of the tensors, and their keys.
    std::uint64_t state_dict_bytes() const;

    /// Holds every Linear weight in `dtype` (f16, bf16, int8: compact,
    /// compact.hpp; f32: expanded back). A weight the dtype cannot hold stays
    /// as it was; its layer's name is added to `unchanged` if given.
    void set_weight_dtype(DType dtype, std::vector<std::string>* unchanged = nullptr);
    /// The most memory set_weight_dtype(dtype) holds at once beyond the model
    /// (it changes one layer at a time: Param::set_dtype_bytes).
    std::uint64_t set_weight_dtype_bytes(DType dtype) const;
    /// The dtype Linear weights are held in: that of the compact ones, f32 if none is.
    DType weight_dtype() const;
    /// Bytes the tensors hold in memory.
    std::uint64_t memory_bytes() const;

    /// Number of parameter elements (buffers such as running_mean excluded), as
    /// sum(p.numel() for p in model.parameters()).
    std::uint64_t param_count() const;

private:
    std::vector<Layer> layers_;
};

}  // namespace modelkeep
