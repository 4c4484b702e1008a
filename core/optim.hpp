// optim.hpp — PyTorch's optimizers (torch.optim 1.13: SGD, Adam, AdamW, RMSprop) and
// torch.nn.utils.clip_grad_norm_, over parameters held anywhere as (float* param,
// const float* grad, size).
//
// Contracts:
// - Must apply PyTorch's update rules with its hyper-parameter names and defaults, in the
//   order of operations of its single-tensor (foreach=False) implementation: scalars are
//   computed in double as Python does (bias corrections, 1 - beta, -lr) and rounded to
//   float32 where PyTorch's kernels take them; each tensor op is float32 with PyTorch's
//   rounding, including the fused multiply-adds of its CPU kernels (add with alpha,
//   addcmul). The result is bit-identical to PyTorch on x86-64 CPUs (docs/TRAINING.md).
// - Must refuse, as PyTorch's constructors do, invalid options: invalid_hyperparameter,
//   naming the option (negative lr, beta outside [0, 1), nesterov without momentum, ...).
// - State is PyTorch's optimizer.state[p] by its names (ParamState), readable and settable,
//   so that save → reload → continue is bit-identical to a run that never stopped.
// - add_param allocates a parameter's state once; step() allocates nothing.
// - A parameter and its gradient must stay valid (and keep their size) while registered.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "status.hpp"
#include "tensor.hpp"

namespace modelkeep {

/// The largest count a saved state may hold (a step, and the trainer's and schedules'
/// epoch, batch and step counters): 2^53, exact as a JavaScript number, and far enough
/// from the int64 limit that counting on from it cannot overflow.
constexpr std::int64_t max_state_count = std::int64_t(1) << 53;

/// The optimizers, by PyTorch's class names.
#define MODELKEEP_OPTIMIZERS(X) X(sgd, "SGD") X(adam, "Adam") X(adamw, "AdamW") X(rmsprop, "RMSprop")

enum class OptimizerKind {
#define MODELKEEP_X(name, torch_name) name,
    MODELKEEP_OPTIMIZERS(MODELKEEP_X)
#undef MODELKEEP_X
};

/// PyTorch's class name: "SGD", "Adam", "AdamW", "RMSprop".
const char* optimizer_name(OptimizerKind kind);

/// Every optimizer's hyper-parameters (PyTorch's names; betas = (beta1, beta2)). Start from
/// sgd_options / adam_options / adamw_options / rmsprop_options, which set PyTorch's
/// defaults; an option an optimizer does not have is ignored.
struct OptimizerOptions {
    OptimizerKind kind = OptimizerKind::sgd;
    double lr = 0.0;
    double momentum = 0.0;      // SGD, RMSprop
    double dampening = 0.0;     // SGD
    double weight_decay = 0.0;  // all (AdamW: decoupled, default 1e-2)
    bool nesterov = false;      // SGD
    bool maximize = false;      // all
    double beta1 = 0.9;         // Adam, AdamW
    double beta2 = 0.999;       // Adam, AdamW
    double eps = 1e-8;          // Adam, AdamW (1e-8), RMSprop (1e-8)
    bool amsgrad = false;       // Adam, AdamW
    double alpha = 0.99;        // RMSprop
    bool centered = false;      // RMSprop
};

/// torch.optim.SGD(params, lr): lr has no default in PyTorch.
OptimizerOptions sgd_options(double lr);
/// torch.optim.Adam: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0.
OptimizerOptions adam_options();
/// torch.optim.AdamW: as Adam, weight_decay 1e-2.
OptimizerOptions adamw_options();
/// torch.optim.RMSprop: lr 1e-2, alpha 0.99, eps 1e-8, weight_decay 0, momentum 0.
OptimizerOptions rmsprop_options();

/// PyTorch's constructor checks: invalid_hyperparameter naming the first bad option.
Status validate_options(const OptimizerOptions& options);

/// optimizer.state[p] by PyTorch's names. A buffer the options do not use is empty.
struct ParamState {
    /// 'step': Adam, AdamW (a float32 tensor in PyTorch), RMSprop (an int); counted for
    /// SGD too, which does not store it. 0 before the first step.
    std::int64_t step = 0;
    /// SGD: PyTorch's 'momentum_buffer' is None until the first step with momentum != 0.
    bool has_momentum_buffer = false;
    std::vector<float> momentum_buffer;  // SGD (momentum != 0), RMSprop (momentum > 0)
    std::vector<float> exp_avg;          // Adam, AdamW
    std::vector<float> exp_avg_sq;       // Adam, AdamW
    std::vector<float> max_exp_avg_sq;   // Adam, AdamW with amsgrad
    std::vector<float> square_avg;       // RMSprop
    std::vector<float> grad_avg;         // RMSprop, centered
};

/// The keys of PyTorch's optimizer.state[p] for these options, in PyTorch's order: SGD
/// "momentum_buffer" (None without momentum); Adam, AdamW "step", "exp_avg", "exp_avg_sq"
/// (+ "max_exp_avg_sq" with amsgrad); RMSprop "step", "square_avg" (+ "momentum_buffer" with
/// momentum > 0, + "grad_avg" when centered). For mapping a state_dict onto ParamState.
std::vector<const char*> state_keys(const OptimizerOptions& options);

/// The buffer of `state` that PyTorch names `key`; nullptr for "step" (an integer) and for
/// names that are not buffers.
std::vector<float>* state_buffer(ParamState& state, const std::string& key);

class Optimizer {
public:
    Optimizer() = default;

    /// An optimizer with no parameters yet; the options are validated first.
    static Status create(const OptimizerOptions& options, Optimizer& out);

    /// Registers a parameter of `size` floats and its gradient; allocates its state (zeros).
    /// Parameters keep their registration order (PyTorch's param_groups[0]['params']).
    Status add_param(float* param, const float* grad, std::size_t size);
    /// The same for tensors of equal shape (shape_mismatch otherwise).
    Status add_param(Tensor& param, const Tensor& grad);

    /// One update of every parameter from its gradient. Allocates nothing.
    void step();

    const OptimizerOptions& options() const { return options_; }
    /// param_groups[0]['lr'], which a scheduler sets.
    double lr() const { return options_.lr; }
    /// invalid_hyperparameter when lr < 0 or NaN.
    Status set_lr(double lr);

    std::size_t param_count() const { return slots_.size(); }
    const ParamState& state(std::size_t index) const { return slots_[index].state; }
    /// Replaces a parameter's state (a checkpoint's, or PyTorch's state_dict()). Each buffer
    /// the options use must hold the parameter's size (shape_mismatch), or be empty before
    /// the first step (step == 0; SGD: has_momentum_buffer false); step must be >= 0.
    /// Copies into the buffers already allocated: no allocation.
    Status set_state(std::size_t index, const ParamState& state);

private:
    struct Slot {
        float* param;
        const float* grad;
        std::size_t size;
        ParamState state;
    };
    void step_sgd(Slot& s);
    void step_adam(Slot& s, bool decoupled);
    void step_rmsprop(Slot& s);

    OptimizerOptions options_;
    std::vector<Slot> slots_;
};

/// One gradient for clip_grad_norm: `size` floats at `grad`, scaled in place.
struct GradRef {
    float* grad;
    std::size_t size;
};

/// torch.nn.utils.clip_grad_norm_(parameters, max_norm, norm_type): the total norm of all
/// gradients together (the norm of the per-gradient norms; norm_type = INFINITY for the max
/// norm) into `total_norm`, then every gradient scaled by min(1, max_norm / (total_norm +
/// 1e-6)) — always multiplied, as PyTorch does. No gradients: total_norm 0. norm_type must
/// be > 0 (or infinite) and max_norm >= 0 (invalid_hyperparameter). error_if_nonfinite is
/// PyTorch's default, false: a NaN or infinite norm scales by NaN / 0 as in PyTorch.
/// Norms accumulate in double and round once (PyTorch: float32): within a few ULP.
Status clip_grad_norm(const std::vector<GradRef>& grads, double max_norm, double norm_type, float& total_norm);

}  // namespace modelkeep
