#include "lr_scheduler.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "decimal.hpp"
#include "optim.hpp"

namespace modelkeep {

namespace {

constexpr double pi = 3.141592653589793;  // math.pi

Status bad(const char* scheduler, const char* name, double value, const char* rule) {
    return error(Code::invalid_hyperparameter,
                 std::string(scheduler) + ": " + name + " is " + format_double(value) + " (" + rule + ")");
}

// Python's a % b for b > 0: never negative.
std::int64_t py_mod(std::int64_t a, std::int64_t b) { return ((a % b) + b) % b; }

}  // namespace

const char* scheduler_name(SchedulerKind kind) {
    switch (kind) {
#define MODELKEEP_X(name, torch_name) \
    case SchedulerKind::name: return torch_name;
        MODELKEEP_LR_SCHEDULERS(MODELKEEP_X)
#undef MODELKEEP_X
    }
    return "unknown";
}

SchedulerOptions step_lr_options(std::int64_t step_size, double gamma) {
    SchedulerOptions o;
    o.kind = SchedulerKind::step_lr;
    o.step_size = step_size;
    o.gamma = gamma;
    return o;
}

SchedulerOptions cosine_annealing_lr_options(std::int64_t T_max, double eta_min) {
    SchedulerOptions o;
    o.kind = SchedulerKind::cosine_annealing_lr;
    o.T_max = T_max;
    o.eta_min = eta_min;
    return o;
}

SchedulerOptions linear_lr_options(double start_factor, double end_factor, std::int64_t total_iters) {
    SchedulerOptions o;
    o.kind = SchedulerKind::linear_lr;
    o.start_factor = start_factor;
    o.end_factor = end_factor;
    o.total_iters = total_iters;
    return o;
}

Status LrScheduler::create(const SchedulerOptions& o, double base_lr, LrScheduler& out) {
    const char* name = scheduler_name(o.kind);
    if (!(base_lr >= 0.0)) return bad(name, "lr", base_lr, "must be >= 0");
    switch (o.kind) {
        case SchedulerKind::step_lr:
            if (o.step_size <= 0) return bad(name, "step_size", double(o.step_size), "must be > 0");
            if (!std::isfinite(o.gamma)) return bad(name, "gamma", o.gamma, "must be finite");
            break;
        case SchedulerKind::cosine_annealing_lr:
            if (o.T_max <= 0) return bad(name, "T_max", double(o.T_max), "must be > 0");
            if (!std::isfinite(o.eta_min)) return bad(name, "eta_min", o.eta_min, "must be finite");
            break;
        case SchedulerKind::linear_lr:
            // PyTorch: "Starting multiplicative factor expected to be between 0 and 1."; 0
            // passes its check but divides by zero at the first step.
            if (!(o.start_factor > 0.0 && o.start_factor <= 1.0))
                return bad(name, "start_factor", o.start_factor, "must be in (0, 1]");
            if (!(o.end_factor >= 0.0 && o.end_factor <= 1.0))
                return bad(name, "end_factor", o.end_factor, "must be in [0, 1]");
            if (o.total_iters <= 0) return bad(name, "total_iters", double(o.total_iters), "must be > 0");
            break;
    }
    out.options_ = o;
    out.state_ = SchedulerState{};
    out.state_.last_epoch = -1;
    out.state_.step_count = 0;
    out.state_.base_lr = base_lr;
    out.state_.lr = base_lr;
    out.step();  // PyTorch's constructor: _initial_step()
    return Status::success();
}

void LrScheduler::step() {
    state_.step_count += 1;
    state_.last_epoch += 1;
    state_.lr = chainable_lr();
}

// get_lr() of each class, as written in torch/optim/lr_scheduler.py: the operand order of
// every expression is Python's, so the doubles round the same.
double LrScheduler::chainable_lr() const {
    const SchedulerOptions& o = options_;
    const std::int64_t e = state_.last_epoch;
    const double lr = state_.lr, base = state_.base_lr;
    switch (o.kind) {
        case SchedulerKind::step_lr:
            if (e == 0 || py_mod(e, o.step_size) != 0) return lr;
            return lr * o.gamma;
        case SchedulerKind::cosine_annealing_lr: {
            const double T = double(o.T_max);
            if (e == 0) return lr;
            if (state_.step_count == 1 && e > 0)
                return o.eta_min + (base - o.eta_min) * (1.0 + std::cos(double(e) * pi / T)) / 2.0;
            if (py_mod(e - 1 - o.T_max, 2 * o.T_max) == 0)
                return lr + (base - o.eta_min) * (1.0 - std::cos(pi / T)) / 2.0;
            return (1.0 + std::cos(pi * double(e) / T)) / (1.0 + std::cos(pi * double(e - 1) / T)) * (lr - o.eta_min) +
                   o.eta_min;
        }
        case SchedulerKind::linear_lr: {
            if (e == 0) return lr * o.start_factor;
            if (e > o.total_iters) return lr;
            const double span = o.end_factor - o.start_factor;
            return lr * (1.0 + span / (double(o.total_iters) * o.start_factor + double(e - 1) * span));
        }
    }
    return lr;
}

double LrScheduler::closed_form_lr(std::int64_t epoch) const {
    const SchedulerOptions& o = options_;
    const double base = state_.base_lr;
    switch (o.kind) {
        case SchedulerKind::step_lr:
            // Python's // on non-negative ints.
            return base * std::pow(o.gamma, double(epoch / o.step_size));
        case SchedulerKind::cosine_annealing_lr:
            return o.eta_min + (base - o.eta_min) * (1.0 + std::cos(pi * double(epoch) / double(o.T_max))) / 2.0;
        case SchedulerKind::linear_lr:
            return base * (o.start_factor + (o.end_factor - o.start_factor) * double(std::min(o.total_iters, epoch)) /
                                                double(o.total_iters));
    }
    return base;
}

Status LrScheduler::set_state(const SchedulerState& s) {
    if (s.last_epoch < 0 || s.last_epoch > max_state_count)
        return error(Code::invalid_argument,
                     "scheduler state: last_epoch is " + std::to_string(s.last_epoch) + " (must be in [0, 2^53])");
    if (s.step_count < 1 || s.step_count > max_state_count)
        return error(Code::invalid_argument,
                     "scheduler state: _step_count is " + std::to_string(s.step_count) + " (must be in [1, 2^53])");
    const char* name = scheduler_name(options_.kind);
    if (!(s.base_lr >= 0.0)) return bad(name, "base_lr", s.base_lr, "must be >= 0");
    if (!(s.lr >= 0.0)) return bad(name, "lr", s.lr, "must be >= 0");
    state_ = s;
    return Status::success();
}

}  // namespace modelkeep
