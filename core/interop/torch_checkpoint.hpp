// torch_checkpoint.hpp — PyTorch's general checkpoint ("saving a general
// checkpoint for inference and/or resuming training"), read and written:
//
//   torch.save({'epoch': e, 'model_state_dict': model.state_dict(),
//               'optimizer_state_dict': optimizer.state_dict(), 'loss': loss}, PATH)
//
// optimizer.state_dict() is {'state': {i: {name: value}}, 'param_groups': [{options...,
// 'params': [0, ..., n-1]}]}: i indexes the optimizer's parameters, which for the
// Sequential models modelkeep runs are model.parameters(): the state dict's
// tensors without the buffers (train.hpp's parameters_of order).
//
// Reading (read_torch_checkpoint), through torch_file.hpp's inert reader (its
// pickle, memory, tensor-count and view caps; nothing is executed; the
// optimizer's tensors are read with the model's, in the same budget). Each
// rule is a refusal with one code:
//  1. The model is the state dict torch_file.hpp chooses ('model_state_dict'
//     first). A file without 'optimizer_state_dict' is read as weights (and
//     epoch/loss) only: has_optimizer false. 'epoch', 'loss' or
//     'optimizer_state_dict' twice in the checkpoint: duplicate_name (Python
//     keeps a repeated key's last value).
//  2. 'optimizer_state_dict' must be a dict of exactly 'state' (a dict) and
//     'param_groups' (a list): bad_pickle. One param group only; several:
//     unsupported_optimizer (modelkeep has one set of options for all parameters).
//     A group of more than 64 keys: limit_exceeded; a key twice: duplicate_name.
//  3. The group's 'params' must be the ints 0, 1, ..., n-1 in order (n <=
//     max_tensors, else limit_exceeded), and 'state' keys ints in [0, n):
//     bad_pickle; a parameter twice in 'state': duplicate_name. 'param_names'
//     (torch >= 2.6), if present, must be n strings (bad_pickle; not compared).
//  4. The optimizer is recognised from the group's keys (the class is not in
//     the file): SGD has 'dampening' or 'nesterov'; RMSprop 'alpha' or
//     'centered'; Adam and AdamW 'betas' and 'amsgrad' with the same keys, told
//     apart only by 'decoupled_weight_decay' (torch >= 2.7: True is AdamW) or by
//     kind_hint (its kind only; the options come from the file). Without either:
//     invalid_argument asking to name it (--optimizer adam or --optimizer adamw).
//     A hint of another kind than the file's: invalid_argument. 'betas' without
//     'amsgrad' (Adamax, NAdam, RAdam) or none of these keys (Adagrad, ...):
//     unsupported_optimizer.
//  5. Every key of the group must be known for that optimizer: its options
//     (SGD lr, momentum, dampening, weight_decay, nesterov, maximize; Adam/AdamW
//     lr, betas, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay;
//     RMSprop lr, momentum, alpha, eps, centered, weight_decay, maximize), each
//     required (missing: unsupported_optimizer), numbers int or float and flags bool
//     (else bad_pickle), a tensor lr or beta (torch 2.x) unsupported_optimizer; plus
//     'params' and these, accepted with their harmless values only: 'foreach'
//     (None/False/True: the same values), 'capturable' False, 'differentiable'
//     False, 'fused' None/False, 'initial_lr' (a number set by an lr scheduler:
//     kept in initial_lr), 'param_names'. Any other key, or capturable /
//     differentiable / fused True: unsupported_optimizer. Values out of range (lr < 0,
//     beta >= 1, nesterov without momentum, ...): invalid_hyperparameter
//     (optim.hpp's validate_options).
//  6. Each state entry is a dict (bad_pickle) of the optimizer's own keys
//     (optim.hpp's state_keys): SGD 'momentum_buffer' (a tensor, or None: no
//     buffer yet; dropped when momentum is 0; may be absent); Adam/AdamW 'step',
//     'exp_avg', 'exp_avg_sq', 'max_exp_avg_sq' (with amsgrad; without, it is
//     dropped); RMSprop 'step', 'square_avg', 'momentum_buffer' (momentum > 0),
//     'grad_avg' (centered). A required key missing, or a key the optimizer
//     with these options does not keep: unsupported_optimizer; a key twice:
//     duplicate_name; a buffer that is not a tensor: bad_pickle. 'step' is an
//     int, a float or a 0-d float32/int64 tensor holding a whole number >= 0
//     (else unsupported_optimizer; another dtype unsupported_tensor). SGD stores no
//     step: a parameter with an entry gets step 1. A parameter without an entry
//     was never stepped: step 0, no buffers (Optimizer::set_state: zeros).
//  7. State buffers must be float32 (unsupported_tensor; what the reader refuses
//     of any tensor — huge shapes size_overflow / limit_exceeded, views out of
//     bounds, missing storages — keeps its codes); all buffers of one parameter
//     have one shape (shape_mismatch).
//  8. 'epoch': an int → has_epoch. 'loss': an int, a float, or a tensor of one
//     value → has_loss. Every scalar entry (and a tensor loss) is kept as text
//     in metadata, 'epoch' excepted when it is an int.
// The fit to the model is check_torch_optimizer_state's: as many parameters as
// the model's parameters_of, each state of its parameter's shape (shape_mismatch).
//
// Writing (write_torch_checkpoint): a torch zip (torch_file.hpp's writer, pickle
// protocol 2) of the dict {'epoch': int, 'model_state_dict': OrderedDict of
// float32 tensors, 'optimizer_state_dict': {'state': {i: {...}}, 'param_groups':
// [{...}]}, 'loss': float (only when metadata has a numeric "loss")}, with
// torch 1.13's exact param_group keys for the optimizer, in its order, and its
// state: Adam/AdamW 'step' a 0-d float32 tensor, RMSprop 'step' an int, SGD
// 'momentum_buffer' None when momentum is 0. A parameter whose step is 0 has no
// state entry (as in PyTorch before its first step). With a scheduler, the
// group's 'lr' is the scheduler's current lr and 'initial_lr' its base lr. The
// pickle names only collections.OrderedDict, torch._utils._rebuild_tensor_v2,
// torch.FloatStorage and torch.LongStorage (num_batches_tracked): what torch
// 2.x's weights_only=True loader allows (1.13's cannot read the Python floats).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format.hpp"
#include "model.hpp"
#include "optim.hpp"
#include "source.hpp"
#include "status.hpp"
#include "trainer.hpp"

namespace modelkeep {

struct TorchCheckpoint {
    std::string source;                // where the model came from: "checkpoint['model_state_dict']"
    StateDict model;                   // float32, state_dict order
    std::vector<std::string> globals;  // the pickle's globals, first use order
    bool has_optimizer = false;
    OptimizerOptions optimizer;       // from param_groups[0]
    std::vector<ParamState> params;   // one per 'params' id, in order
    std::vector<Shape> state_shapes;  // each parameter's state tensors' shape (empty: none)
    bool has_initial_lr = false;      // an lr scheduler's 'initial_lr'
    double initial_lr = 0.0;
    bool has_epoch = false;
    std::int64_t epoch = 0;
    bool has_loss = false;
    double loss = 0.0;
    Metadata metadata;  // the other scalar entries as text ("loss" included)
};

/// Reads a general checkpoint by the rules above. kind_hint (may be null): only
/// its kind is used, to tell Adam from AdamW.
Status read_torch_checkpoint(const ByteSource& source, const OptimizerOptions* kind_hint, TorchCheckpoint& out);

/// The optimizer state fits `params` (parameters_of's tensors): as many
/// parameters, and each state buffer of the parameter's size (shape_mismatch).
Status check_torch_optimizer_state(const TorchCheckpoint& checkpoint, const std::vector<Tensor>& params);

/// Fills in `state` (for Trainer::resume) from the checkpoint: the optimizer
/// options and parameter states (checked against `model`, which must hold the
/// checkpoint's weights), epoch, the metadata; the rest of `state` (loss,
/// schedule, generators, counters) is left as the caller set it. invalid_argument
/// when the checkpoint has no optimizer state.
Status torch_training_state(const TorchCheckpoint& checkpoint, const Sequential& model, TrainingState& state);

/// The general checkpoint of `model` (float32) and `state` as a torch zip file.
/// shape_mismatch when the parameter states do not fit the model's parameters;
/// invalid_hyperparameter for invalid options; invalid_argument when the
/// metadata's "loss" is not a number.
Status write_torch_checkpoint(const Sequential& model, const TrainingState& state, std::vector<std::uint8_t>& out);

}  // namespace modelkeep
