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
// pickle, memory and value caps; nothing is executed), every rule a refusal
// with one code:
//  1. The model is the state dict torch_file.hpp chooses ('model_state_dict'
//     first); a file without 'optimizer_state_dict' is read as weights (and
//     epoch/loss) only: has_optimizer false.
//  2. 'optimizer_state_dict' must be a dict of exactly 'state' (a dict) and
//     'param_groups' (a list), else bad_pickle. One param group only; several:
//     invalid_argument (modelkeep has one set of options for all parameters).
//  3. The group's 'params' must be the ints 0, 1, ..., n-1 in order (n <=
//     max_tensors), and 'state' keys ints in [0, n), each once: bad_pickle.
//     'param_names' (torch >= 2.6), if present, must be n strings (not compared).
//  4. The optimizer is recognised from the group's keys (the class is not in
//     the file): SGD has 'momentum', 'dampening', 'nesterov'; RMSprop 'alpha',
//     'centered'; Adam and AdamW 'betas' and 'amsgrad' with the same keys, told
//     apart only by 'decoupled_weight_decay' (torch >= 2.7: true is AdamW) or by
//     kind_hint (its kind only; the options come from the file). Without either:
//     invalid_argument asking to name it (--optimizer adam or adamw). A hint of
//     another kind than the keys say: invalid_argument. Adamax, NAdam, RAdam,
//     Adagrad, ... (other keys, or no 'amsgrad'): invalid_argument.
//  5. Every key of the group must be known for that optimizer: the options
//     (lr, momentum, dampening, weight_decay, nesterov, betas, eps, amsgrad,
//     alpha, centered, maximize: each required, numbers as int or float, flags
//     as bool), 'params', and these accepted with their harmless values only:
//     'foreach' (None/False/True: the same math here), 'capturable' False,
//     'differentiable' False, 'fused' None/False, 'initial_lr' (a number, set by
//     an lr scheduler: kept in initial_lr), 'param_names'. Anything else, a
//     tensor lr or beta, capturable/differentiable/fused true: invalid_argument.
//     Values out of range: invalid_hyperparameter (validate_options).
//  6. Each state entry is a dict of the optimizer's own keys (optim.hpp's
//     state_keys): SGD 'momentum_buffer' (a tensor, or None: no buffer yet;
//     ignored when momentum is 0); Adam/AdamW 'step', 'exp_avg', 'exp_avg_sq',
//     'max_exp_avg_sq' (amsgrad; an unused one is dropped); RMSprop 'step',
//     'square_avg', 'momentum_buffer' (momentum > 0), 'grad_avg' (centered).
//     A required key missing or an unknown key: invalid_argument. 'step' is a
//     0-d tensor (float32 or int64) or an int, a whole number >= 0 (else
//     invalid_argument). SGD stores no step: a parameter with state gets step 1.
//     A parameter without an entry has never been stepped: step 0, no buffers.
//  7. State tensors must be float32 (unsupported_tensor otherwise; tensors of
//     other kinds as the reader refuses them); all buffers of one parameter
//     hold the same shape (shape_mismatch).
//  8. 'epoch': an int → has_epoch. 'loss': an int, a float or a 0-d tensor →
//     has_loss. Every scalar entry (and a tensor loss) is kept as text in
//     metadata, 'epoch' excepted.
// The fit to a model (count and sizes: shape_mismatch) is check_torch_optimizer_state's.
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
