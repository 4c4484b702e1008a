// train.hpp — training a Sequential: the recorded forward and the backward,
// with PyTorch's train() / eval() modes.
//
//   TrainBuffers t;  t.seed(42);                 // the dropout generator
//   t.training = true;                           // model.train(); false: model.eval()
//   train_forward(model, x, y, t);               // keeps what backward needs
//   ... loss and its gradient g = ∂loss/∂y ...
//   backward(model, g, t, grads);                // grads.values: ∂loss/∂param, state_dict order
//   ... an optimizer changes the float32 (out, in) values from parameters_of ...
//   load_parameters(model, values);              // back into the model (Linear weights re-packed)
//
// The inference path (Sequential::forward) is untouched: it always runs as
// PyTorch's eval() under no_grad, fused and allocation-free when warm. Training
// runs its own walk, layer by layer, each output kept (no fusion, no in-place).
//
// Modes, as PyTorch's:
// - training: Dropout draws a mask from the buffers' DropoutRng (0 with
//   probability p, else 1/(1 − p)); BatchNorm1d normalises with the batch's
//   mean and biased variance and, with running stats, updates running_mean and
//   running_var (the variance unbiased) with `momentum` (NaN: momentum=None, a
//   cumulative average) and adds 1 to num_batches_tracked. A batch with one value
//   per channel is an error (shape_mismatch), as PyTorch's.
// - eval: Dropout is the identity; BatchNorm1d uses its running stats (the
//   batch's when it has none, as PyTorch) and updates nothing.
//
// Memory: every saved tensor and gradient lives in TrainBuffers / Grads and
// is resized in place, so once a step has run on a shape, running it again on
// that shape allocates nothing. Both belong to one model.
//
// Compact weights (f16, bf16, int8) are for inference: training a model that
// holds one is needs_f32 (set_weight_dtype(DType::f32) first; setWeightDtype('f32') in JS).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "backward.hpp"
#include "model.hpp"

namespace modelkeep {

/// What train_forward keeps for backward, and the scratch both use.
struct TrainBuffers {
    /// PyTorch's module.train() (true, the default, as a new nn.Module) / module.eval() (false).
    bool training = true;
    /// BatchNorm1d's momentum, for every BatchNorm1d layer (PyTorch's default 0.1); NaN
    /// is momentum=None: the cumulative average, factor 1/num_batches_tracked.
    float momentum = 0.1f;
    /// Dropout's masks: seed it for repeatable masks; its state() is one integer to checkpoint.
    DropoutRng rng;
    void seed(std::uint64_t seed) { rng.seed(seed); }

    // Filled by train_forward, read by backward (by layer index).
    Tensor input;                          // x
    std::vector<Tensor> out;               // each layer's output
    std::vector<Tensor> saved;             // Dropout's mask, LayerNorm's / BatchNorm1d's x̂
    std::vector<Tensor> rstd;              // LayerNorm's 1/σ per row, BatchNorm1d's per channel
    std::vector<Tensor> weight;            // a packed Linear weight as (out, in) rows
    std::vector<LayerKind> kinds;          // the layers recorded (backward checks the model against them)
    std::vector<std::uint8_t> batch_mode;  // Dropout drew a mask; BatchNorm1d used the batch's statistics
    std::vector<Tensor> grad;              // ∂loss/∂(each layer's input), by layer (layer 0's: Grads::input)
    std::vector<float> scratch;            // BatchNorm1d's batch mean and variance, the Linear products'
                                           // transposes (only grown: layers of every shape share it)
    Shape shape_in, shape_out;             // the layer's shapes (kept: no allocation when warm)
    bool recorded = false;                 // a train_forward succeeded since the last change
};

/// The gradients backward gives: one per parameter (running stats are buffers,
/// not parameters), in state_dict order, PyTorch's shapes and layout (a Linear
/// weight (out, in)). backward writes them (the equivalent of zero_grad, then backward).
struct Grads {
    std::vector<std::string> keys;  // "0.weight", "0.bias", "2.weight", ...
    std::vector<Tensor> values;
    Tensor input;  // ∂loss/∂x, when backward was asked for it
};

/// ok, or needs_f32 naming the first layer that holds a compact weight.
Status check_trainable(const Sequential& model);

/// The forward in buffers.training's mode, keeping every layer's output and
/// what its backward needs. x is (N, in) (or any shape the first layer
/// accepts); y gets the output. BatchNorm1d's running stats change in training
/// mode (the model is not const). Errors: needs_f32, shape_mismatch (naming the
/// layer, as Sequential::forward's).
Status train_forward(Sequential& model, const Tensor& x, Tensor& y, TrainBuffers& buffers);

/// The backward of the last train_forward: grad_y (the output's shape) is
/// ∂loss/∂y; grads.values gets ∂loss/∂param for every parameter (buffers
/// excluded), and grads.input ∂loss/∂x when input_grad. The model's weights must
/// be those train_forward ran with. Errors: needs_f32, shape_mismatch (grad_y),
/// invalid_argument (no train_forward recorded).
Status backward(const Sequential& model, const Tensor& grad_y, TrainBuffers& buffers, Grads& grads,
                bool input_grad = false);

/// The most memory train_forward(x) then backward(.., input_grad = true) hold
/// for an input of shape x, starting from empty TrainBuffers and Grads and an
/// empty y: every saved output, mask, x̂ and unpacked weight, every gradient
/// (and its key), the scratch, y — beyond x and the model. For a caller that
/// reserves memory first (the bindings). A shape the model does not take counts
/// up to that layer (the forward stops there). Exact but for a few bytes per
/// tensor (an empty tensor holds one value) and the keys' string storage.
std::uint64_t train_bytes(const Sequential& model, const Shape& x);

/// The parameters (buffers excluded) in state_dict order as float32 in PyTorch's
/// layout (a Linear weight (out, in) rows), copied into `values` (resized in place):
/// what an optimizer steps, beside grads.values. needs_f32 for a compact weight.
Status parameters_of(const Sequential& model, std::vector<Tensor>& values);

/// Writes `values` (parameters_of's order and shapes) back into the model: the
/// one call to make after an optimizer changed them, so that forward and
/// train_forward see the new weights. Each Linear weight is re-packed for the
/// kernels (Param::assign): a transient block of min(out, 8)·in floats per weight
/// (packed.hpp's pack_scratch_bytes); everything else is copied in place.
/// shape_mismatch (and nothing changed) if a count or shape differs; needs_f32.
Status load_parameters(Sequential& model, const std::vector<Tensor>& values);

/// load_parameters without the transient block: each packed Linear weight's new
/// rows are written straight into its packed layout (the same floats, bit for
/// bit, as re-packing). Allocates nothing (on success); the same errors. The
/// trainer's call after every step.
Status store_parameters(Sequential& model, const std::vector<Tensor>& values);

}  // namespace modelkeep
