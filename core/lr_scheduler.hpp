// lr_scheduler.hpp — PyTorch's learning-rate schedules (torch.optim.lr_scheduler 1.13):
// StepLR, CosineAnnealingLR, LinearLR, for one parameter group.
//
// Contracts:
// - Must give PyTorch's numbers: step() is PyTorch's scheduler.step() — the chainable
//   form, each lr computed from the previous one in double, so its rounding is PyTorch's
//   bit for bit (it differs from the closed form in the last bits); closed_form_lr(epoch)
//   is PyTorch's _get_closed_form_lr, what step(epoch) gives.
// - A new scheduler is what PyTorch's constructor leaves (last_epoch -1, then its initial
//   step): last_epoch 0, lr() the epoch-0 lr (LinearLR: base_lr · start_factor).
// - Stepping per epoch or per batch is the caller's choice: one step() per unit; T_max,
//   step_size and total_iters count those units.
// - The schedule does not hold an optimizer: after step(), give lr() to Optimizer::set_lr.
// - state() / set_state() carry what PyTorch's scheduler.state_dict() does (last_epoch,
//   _step_count, base_lrs) and the group's lr, so a reload continues bit-identically.
// - Invalid options: invalid_hyperparameter (as PyTorch's ValueError, and where PyTorch
//   would divide by zero later: step_size, T_max, total_iters or start_factor of 0).
#pragma once

#include <cstdint>

#include "status.hpp"

namespace modelkeep {

/// The schedules, by PyTorch's class names.
#define MODELKEEP_LR_SCHEDULERS(X) \
    X(step_lr, "StepLR") X(cosine_annealing_lr, "CosineAnnealingLR") X(linear_lr, "LinearLR")

enum class SchedulerKind {
#define MODELKEEP_X(name, torch_name) name,
    MODELKEEP_LR_SCHEDULERS(MODELKEEP_X)
#undef MODELKEEP_X
};

/// "StepLR", "CosineAnnealingLR", "LinearLR".
const char* scheduler_name(SchedulerKind kind);

/// Every schedule's options, PyTorch's names; an option a schedule does not have is ignored.
struct SchedulerOptions {
    SchedulerKind kind = SchedulerKind::step_lr;
    std::int64_t step_size = 1;       // StepLR (required in PyTorch)
    double gamma = 0.1;               // StepLR
    std::int64_t T_max = 1;           // CosineAnnealingLR (required in PyTorch)
    double eta_min = 0.0;             // CosineAnnealingLR
    double start_factor = 1.0 / 3.0;  // LinearLR
    double end_factor = 1.0;          // LinearLR
    std::int64_t total_iters = 5;     // LinearLR
};

/// StepLR(optimizer, step_size, gamma=0.1).
SchedulerOptions step_lr_options(std::int64_t step_size, double gamma = 0.1);
/// CosineAnnealingLR(optimizer, T_max, eta_min=0).
SchedulerOptions cosine_annealing_lr_options(std::int64_t T_max, double eta_min = 0.0);
/// LinearLR(optimizer, start_factor=1/3, end_factor=1, total_iters=5).
SchedulerOptions linear_lr_options(double start_factor = 1.0 / 3.0, double end_factor = 1.0,
                                   std::int64_t total_iters = 5);

/// What a checkpoint keeps of a schedule (PyTorch's names).
struct SchedulerState {
    std::int64_t last_epoch = 0;
    std::int64_t step_count = 1;  // _step_count: 1 after the constructor's initial step
    double base_lr = 0.0;         // base_lrs[0] (the group's initial_lr)
    double lr = 0.0;              // param_groups[0]['lr'] now
};

class LrScheduler {
public:
    LrScheduler() = default;

    /// The schedule for an optimizer whose lr is `base_lr`, after PyTorch's initial step.
    static Status create(const SchedulerOptions& options, double base_lr, LrScheduler& out);

    /// scheduler.step(): last_epoch + 1, the lr from the previous one (chainable form).
    void step();
    /// The lr now (get_last_lr()[0]).
    double lr() const { return state_.lr; }
    std::int64_t last_epoch() const { return state_.last_epoch; }
    /// _get_closed_form_lr at `epoch` (>= 0), from base_lr alone.
    double closed_form_lr(std::int64_t epoch) const;

    const SchedulerOptions& options() const { return options_; }
    const SchedulerState& state() const { return state_; }
    /// Restores a saved state: invalid_argument when last_epoch < 0 or step_count < 1,
    /// invalid_hyperparameter when an lr is negative or NaN.
    Status set_state(const SchedulerState& state);

private:
    double chainable_lr() const;

    SchedulerOptions options_;
    SchedulerState state_;
};

}  // namespace modelkeep
