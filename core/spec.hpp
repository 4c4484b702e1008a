// spec.hpp — the architecture language shared by the CLI and the JS package:
//
//   SPEC  := LAYER ("," LAYER)*
//   LAYER := [NAME "="] KIND ["(" [ARG ("," ARG)*] ")"]
//   ARG   := VALUE | KEY "=" VALUE
//
// e.g. "Linear(784,512),ReLU,Dropout(0.1),LayerNorm(512),GELU(tanh),Linear(512,10)"
//      "fc1=Linear(3,5)"   "block.layers.0=Linear(4,8,bias=false)"
// An empty NAME ("=Linear(1,1)") is the root: a model that is this one layer, its
// tensors named without a prefix ("weight"), as torch's bare nn.Linear; it must be
// the only layer (validate_specs).
// Children without a NAME are named by their position ("0", "1", ...), as in
// nn.Sequential. Arguments per kind (positional order, then keywords):
//   Linear(in, out, bias=true)            LayerNorm(n, eps=1e-5, elementwise_affine=true, bias=true)
//   LeakyReLU(negative_slope=0.01)        BatchNorm1d(n, eps=1e-5, affine=true, track_running_stats=true)
//   GELU(approximate=none|tanh)           Dropout(p=0.5)
//   Flatten(start_dim=1, end_dim=-1)      Softmax(dim=-1), LogSoftmax(dim=-1)  (last dim only)
//   ReLU, Sigmoid, Tanh, SiLU, Identity   (no arguments)
// Whitespace between tokens is ignored. Every layer is validated (validate_layer).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "decimal.hpp"
#include "layer.hpp"
#include "status.hpp"

namespace modelkeep {

constexpr std::size_t max_spec_bytes = 1 << 20;

/// Parses SPEC into layer specs (invalid_spec, unknown_layer, invalid_argument, bad_name).
Status parse_spec(const std::string& text, std::vector<LayerSpec>& out);

/// The canonical SPEC of one layer: "fc1=Linear(3,5)", "2=GELU(tanh)"; only
/// non-default arguments are written. parse_spec(format) gives the spec back.
std::string format_layer(const LayerSpec& spec);
std::string format_spec(const std::vector<LayerSpec>& specs);

/// "fc1=Linear(3,5),fc2=Linear(5,2)": the layers a state dict's (key, shape)
/// pairs imply, as a starting point for the SPEC a user must give
/// (activations leave no tensors); empty if none is implied.
std::string suggest_spec(const std::vector<std::pair<std::string, Shape>>& tensors);

/// What a needs_architecture message tells the user to do for a state dict
/// of these tensors: "Pass an architecture (SPEC), e.g. \"...\" with the
/// activations in between" (without the example when none is implied).
std::string architecture_advice(const std::vector<std::pair<std::string, Shape>>& tensors);

}  // namespace modelkeep
