#include "optim.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "decimal.hpp"

namespace modelkeep {

namespace {

// PyTorch's CPU add kernel computes self + alpha * other as one fused multiply-add
// (Vectorized fmadd; x86-64 builds contract the scalar tail the same way), and addcmul
// self + (value * t1) * t2 as fma(value * t1, t2, self). std::fma rounds once, as they do.
inline float add_alpha(float self, float alpha, float other) { return std::fma(alpha, other, self); }
inline float addcmul(float self, float value, float t1, float t2) { return std::fma(value * t1, t2, self); }
// addcdiv: self + (value * t1) / t2, no fusion.
inline float addcdiv(float self, float value, float t1, float t2) { return self + (value * t1) / t2; }

Status bad(const char* name, double value, const char* rule) {
    return error(Code::invalid_hyperparameter,
                 std::string("invalid ") + name + " value: " + format_double(value) + " (" + rule + ")");
}

Status check_state_buffer(const std::vector<float>& buf, std::size_t size, bool required, const char* name,
                          std::size_t index) {
    if (buf.size() == size || (!required && buf.empty())) return Status::success();
    return error(Code::shape_mismatch, "optimizer state of parameter " + std::to_string(index) + ": " + name +
                                           " holds " + std::to_string(buf.size()) + " values but the parameter has " +
                                           std::to_string(size));
}

}  // namespace

const char* optimizer_name(OptimizerKind kind) {
    switch (kind) {
#define MODELKEEP_X(name, torch_name) \
    case OptimizerKind::name: return torch_name;
        MODELKEEP_OPTIMIZERS(MODELKEEP_X)
#undef MODELKEEP_X
    }
    return "unknown";
}

OptimizerOptions sgd_options(double lr) {
    OptimizerOptions o;
    o.kind = OptimizerKind::sgd;
    o.lr = lr;
    return o;
}

OptimizerOptions adam_options() {
    OptimizerOptions o;
    o.kind = OptimizerKind::adam;
    o.lr = 1e-3;
    return o;
}

OptimizerOptions adamw_options() {
    OptimizerOptions o = adam_options();
    o.kind = OptimizerKind::adamw;
    o.weight_decay = 1e-2;
    return o;
}

OptimizerOptions rmsprop_options() {
    OptimizerOptions o;
    o.kind = OptimizerKind::rmsprop;
    o.lr = 1e-2;
    return o;
}

std::vector<const char*> state_keys(const OptimizerOptions& o) {
    switch (o.kind) {
        case OptimizerKind::sgd: return {"momentum_buffer"};
        case OptimizerKind::adam:
        case OptimizerKind::adamw:
            if (o.amsgrad) return {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
            return {"step", "exp_avg", "exp_avg_sq"};
        case OptimizerKind::rmsprop: {
            std::vector<const char*> keys = {"step", "square_avg"};
            if (o.momentum > 0.0) keys.push_back("momentum_buffer");
            if (o.centered) keys.push_back("grad_avg");
            return keys;
        }
    }
    return {};
}

std::vector<float>* state_buffer(ParamState& st, const std::string& key) {
    if (key == "momentum_buffer") return &st.momentum_buffer;
    if (key == "exp_avg") return &st.exp_avg;
    if (key == "exp_avg_sq") return &st.exp_avg_sq;
    if (key == "max_exp_avg_sq") return &st.max_exp_avg_sq;
    if (key == "square_avg") return &st.square_avg;
    if (key == "grad_avg") return &st.grad_avg;
    return nullptr;
}

Status validate_options(const OptimizerOptions& o) {
    // PyTorch's checks are `not 0.0 <= x`, which NaN fails too.
    if (!(o.lr >= 0.0)) return bad("lr", o.lr, "must be >= 0");
    switch (o.kind) {
        case OptimizerKind::sgd:
            if (!(o.momentum >= 0.0)) return bad("momentum", o.momentum, "must be >= 0");
            if (!(o.weight_decay >= 0.0)) return bad("weight_decay", o.weight_decay, "must be >= 0");
            if (o.nesterov && (o.momentum <= 0.0 || o.dampening != 0.0))
                return error(Code::invalid_hyperparameter, "Nesterov momentum requires a momentum and zero dampening");
            return Status::success();
        case OptimizerKind::adam:
        case OptimizerKind::adamw:
            if (!(o.eps >= 0.0)) return bad("eps", o.eps, "must be >= 0");
            if (!(o.beta1 >= 0.0 && o.beta1 < 1.0)) return bad("beta1 (betas[0])", o.beta1, "must be in [0, 1)");
            if (!(o.beta2 >= 0.0 && o.beta2 < 1.0)) return bad("beta2 (betas[1])", o.beta2, "must be in [0, 1)");
            if (!(o.weight_decay >= 0.0)) return bad("weight_decay", o.weight_decay, "must be >= 0");
            return Status::success();
        case OptimizerKind::rmsprop:
            if (!(o.eps >= 0.0)) return bad("eps", o.eps, "must be >= 0");
            if (!(o.momentum >= 0.0)) return bad("momentum", o.momentum, "must be >= 0");
            if (!(o.weight_decay >= 0.0)) return bad("weight_decay", o.weight_decay, "must be >= 0");
            if (!(o.alpha >= 0.0)) return bad("alpha", o.alpha, "must be >= 0");
            return Status::success();
    }
    return Status::success();
}

Status Optimizer::create(const OptimizerOptions& options, Optimizer& out) {
    MK_TRY(validate_options(options));
    out.options_ = options;
    out.slots_.clear();
    return Status::success();
}

Status Optimizer::add_param(float* param, const float* grad, std::size_t size) {
    if ((!param || !grad) && size != 0)
        return error(Code::invalid_argument,
                     "optimizer parameter " + std::to_string(slots_.size()) + ": a null parameter or gradient pointer");
    Slot s{param, grad, size, ParamState{}};
    ParamState& st = s.state;
    const OptimizerOptions& o = options_;
    switch (o.kind) {
        case OptimizerKind::sgd:
            if (o.momentum != 0.0) st.momentum_buffer.assign(size, 0.0f);
            break;
        case OptimizerKind::adam:
        case OptimizerKind::adamw:
            st.exp_avg.assign(size, 0.0f);
            st.exp_avg_sq.assign(size, 0.0f);
            if (o.amsgrad) st.max_exp_avg_sq.assign(size, 0.0f);
            break;
        case OptimizerKind::rmsprop:
            st.square_avg.assign(size, 0.0f);
            if (o.momentum > 0.0) st.momentum_buffer.assign(size, 0.0f);
            if (o.centered) st.grad_avg.assign(size, 0.0f);
            break;
    }
    slots_.push_back(std::move(s));
    return Status::success();
}

Status Optimizer::add_param(Tensor& param, const Tensor& grad) {
    if (shape_of(param) != shape_of(grad))
        return error(Code::shape_mismatch, "optimizer parameter " + std::to_string(slots_.size()) + " is " +
                                               shape_to_string(shape_of(param)) + " but its gradient is " +
                                               shape_to_string(shape_of(grad)));
    return add_param(param.data(), grad.data(), param.size());
}

Status Optimizer::set_lr(double lr) {
    if (!(lr >= 0.0)) return bad("lr", lr, "must be >= 0");
    options_.lr = lr;
    return Status::success();
}

Status Optimizer::set_state(std::size_t index, const ParamState& st) {
    if (index >= slots_.size())
        return error(Code::invalid_argument,
                     "optimizer state for parameter " + std::to_string(index) + " of " + std::to_string(slots_.size()));
    if (st.step < 0 || st.step > max_state_count)
        return error(Code::invalid_argument, "optimizer state of parameter " + std::to_string(index) + ": step is " +
                                                 std::to_string(st.step) + " (must be in [0, 2^53])");
    Slot& s = slots_[index];
    const OptimizerOptions& o = options_;
    const bool started = st.step > 0;
    switch (o.kind) {
        case OptimizerKind::sgd:
            if (o.momentum != 0.0)
                MK_TRY(
                    check_state_buffer(st.momentum_buffer, s.size, st.has_momentum_buffer, "momentum_buffer", index));
            break;
        case OptimizerKind::adam:
        case OptimizerKind::adamw:
            MK_TRY(check_state_buffer(st.exp_avg, s.size, started, "exp_avg", index));
            MK_TRY(check_state_buffer(st.exp_avg_sq, s.size, started, "exp_avg_sq", index));
            if (o.amsgrad) MK_TRY(check_state_buffer(st.max_exp_avg_sq, s.size, started, "max_exp_avg_sq", index));
            break;
        case OptimizerKind::rmsprop:
            MK_TRY(check_state_buffer(st.square_avg, s.size, started, "square_avg", index));
            if (o.momentum > 0.0)
                MK_TRY(check_state_buffer(st.momentum_buffer, s.size, started, "momentum_buffer", index));
            if (o.centered) MK_TRY(check_state_buffer(st.grad_avg, s.size, started, "grad_avg", index));
            break;
    }
    // Copy into the buffers add_param allocated (an empty source means zeros).
    auto put = [](std::vector<float>& dst, const std::vector<float>& src) {
        if (src.empty())
            std::fill(dst.begin(), dst.end(), 0.0f);
        else if (dst.size() == src.size())
            std::copy(src.begin(), src.end(), dst.begin());
    };
    s.state.step = st.step;
    s.state.has_momentum_buffer = st.has_momentum_buffer && !st.momentum_buffer.empty();
    put(s.state.momentum_buffer, st.momentum_buffer);
    put(s.state.exp_avg, st.exp_avg);
    put(s.state.exp_avg_sq, st.exp_avg_sq);
    put(s.state.max_exp_avg_sq, st.max_exp_avg_sq);
    put(s.state.square_avg, st.square_avg);
    put(s.state.grad_avg, st.grad_avg);
    return Status::success();
}

void Optimizer::step() {
    for (Slot& s : slots_) {
        switch (options_.kind) {
            case OptimizerKind::sgd: step_sgd(s); break;
            case OptimizerKind::adam: step_adam(s, false); break;
            case OptimizerKind::adamw: step_adam(s, true); break;
            case OptimizerKind::rmsprop: step_rmsprop(s); break;
        }
    }
}

// torch/optim/sgd.py, _single_tensor_sgd.
void Optimizer::step_sgd(Slot& s) {
    const OptimizerOptions& o = options_;
    const float wd = float(o.weight_decay);
    const float mom = float(o.momentum);
    const float one_minus_damp = float(1.0 - o.dampening);
    const float neg_lr = float(-o.lr);
    const bool use_momentum = o.momentum != 0.0;
    const bool first = use_momentum && !s.state.has_momentum_buffer;
    float* buf = s.state.momentum_buffer.data();
    for (std::size_t i = 0; i < s.size; ++i) {
        const float p = s.param[i];
        float d = o.maximize ? -s.grad[i] : s.grad[i];
        if (o.weight_decay != 0.0) d = add_alpha(d, wd, p);  // d_p.add(param, alpha=weight_decay)
        if (use_momentum) {
            if (first)
                buf[i] = d;  // torch.clone(d_p)
            else
                buf[i] = add_alpha(buf[i] * mom, one_minus_damp, d);  // buf.mul_(momentum).add_(d_p, alpha=1-dampening)
            d = o.nesterov ? add_alpha(d, mom, buf[i]) : buf[i];
        }
        s.param[i] = add_alpha(p, neg_lr, d);  // param.add_(d_p, alpha=-lr)
    }
    if (use_momentum) s.state.has_momentum_buffer = true;
    s.state.step += 1;
}

// torch/optim/adam.py _single_tensor_adam and adamw.py _single_tensor_adamw (not capturable).
void Optimizer::step_adam(Slot& s, bool decoupled) {
    const OptimizerOptions& o = options_;
    ParamState& st = s.state;
    st.step += 1;  // step_t += 1 (a float32 tensor: exact up to 2^24 steps)
    const double step = double(float(st.step));
    // Python floats (double): bias corrections, step size.
    const double bias_correction1 = 1.0 - std::pow(o.beta1, step);
    const double bias_correction2 = 1.0 - std::pow(o.beta2, step);
    const double step_size = o.lr / bias_correction1;
    const double bias_correction2_sqrt = std::sqrt(bias_correction2);
    // Scalars as the float32 kernels take them.
    const float wd = float(o.weight_decay);
    const float decay = float(1.0 - o.lr * o.weight_decay);  // AdamW: param.mul_(1 - lr * weight_decay)
    const float b1 = float(o.beta1), one_minus_b1 = float(1.0 - o.beta1);
    const float b2 = float(o.beta2), one_minus_b2 = float(1.0 - o.beta2);
    const float bc2s = float(bias_correction2_sqrt);
    const float eps = float(o.eps);
    const float neg_step_size = float(-step_size);
    float* m = st.exp_avg.data();
    float* v = st.exp_avg_sq.data();
    float* vmax = st.max_exp_avg_sq.data();
    for (std::size_t i = 0; i < s.size; ++i) {
        float p = s.param[i];
        float g = o.maximize ? -s.grad[i] : s.grad[i];
        if (decoupled)
            p = p * decay;
        else if (o.weight_decay != 0.0)
            g = add_alpha(g, wd, p);                    // grad.add(param, alpha=weight_decay)
        m[i] = add_alpha(m[i] * b1, one_minus_b1, g);   // exp_avg.mul_(beta1).add_(grad, alpha=1-beta1)
        v[i] = addcmul(v[i] * b2, one_minus_b2, g, g);  // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1-beta2)
        float second = v[i];
        if (o.amsgrad) {
            // torch.maximum propagates NaN.
            const float a = vmax[i], b = v[i];
            vmax[i] = (std::isnan(a) || std::isnan(b)) ? a + b : std::max(a, b);
            second = vmax[i];
        }
        const float denom = std::sqrt(second) / bc2s + eps;   // (sqrt / bias_correction2_sqrt).add_(eps)
        s.param[i] = addcdiv(p, neg_step_size, m[i], denom);  // param.addcdiv_(exp_avg, denom, value=-step_size)
    }
}

// torch/optim/rmsprop.py, _single_tensor_rmsprop.
void Optimizer::step_rmsprop(Slot& s) {
    const OptimizerOptions& o = options_;
    ParamState& st = s.state;
    st.step += 1;
    const float wd = float(o.weight_decay);
    const float alpha = float(o.alpha), one_minus_alpha = float(1.0 - o.alpha);
    const float eps = float(o.eps);
    const float mom = float(o.momentum);
    const float neg_lr = float(-o.lr);
    float* sq = st.square_avg.data();
    float* ga = st.grad_avg.data();
    float* buf = st.momentum_buffer.data();
    for (std::size_t i = 0; i < s.size; ++i) {
        const float p = s.param[i];
        float g = o.maximize ? -s.grad[i] : s.grad[i];
        if (o.weight_decay != 0.0) g = add_alpha(g, wd, p);
        sq[i] = addcmul(sq[i] * alpha, one_minus_alpha, g, g);  // square_avg.mul_(alpha).addcmul_(grad, grad, 1-alpha)
        float avg;
        if (o.centered) {
            ga[i] = add_alpha(ga[i] * alpha, one_minus_alpha, g);  // grad_avg.mul_(alpha).add_(grad, alpha=1-alpha)
            avg = std::sqrt(addcmul(sq[i], -1.0f, ga[i], ga[i]));  // square_avg.addcmul(grad_avg, grad_avg, -1).sqrt_()
        } else {
            avg = std::sqrt(sq[i]);
        }
        avg = avg + eps;
        if (o.momentum > 0.0) {
            buf[i] = addcdiv(buf[i] * mom, 1.0f, g, avg);  // buf.mul_(momentum).addcdiv_(grad, avg)
            s.param[i] = add_alpha(p, neg_lr, buf[i]);     // param.add_(buf, alpha=-lr)
        } else {
            s.param[i] = addcdiv(p, neg_lr, g, avg);  // param.addcdiv_(grad, avg, value=-lr)
        }
    }
}

Status clip_grad_norm(const std::vector<GradRef>& grads, double max_norm, double norm_type, float& total_norm) {
    if (!(norm_type > 0.0)) return bad("norm_type", norm_type, "must be > 0 or inf");
    if (!(max_norm >= 0.0)) return bad("max_norm", max_norm, "must be >= 0");
    total_norm = 0.0f;
    if (grads.empty()) return Status::success();
    const bool inf_norm = std::isinf(norm_type);
    const double p = norm_type;
    // The norm of each gradient (torch.norm(g, p), a float32 value), then the norm of those.
    auto norm_of = [&](auto get, std::size_t n) {
        if (inf_norm) {
            float m = 0.0f;
            for (std::size_t i = 0; i < n; ++i) {
                const float a = std::fabs(get(i));
                if (std::isnan(a)) return a;
                m = std::max(m, a);
            }
            return m;
        }
        double acc = 0.0;
        for (std::size_t i = 0; i < n; ++i) {
            const double a = std::fabs(double(get(i)));
            acc += p == 1.0 ? a : (p == 2.0 ? a * a : std::pow(a, p));
        }
        return float(p == 1.0 ? acc : (p == 2.0 ? std::sqrt(acc) : std::pow(acc, 1.0 / p)));
    };
    // The per-gradient norms are combined without storing them: for p-norms the p-th powers
    // of the float32 norms add up; for the max norm, the max.
    double acc = 0.0;
    float mx = 0.0f;
    bool nan = false;
    for (const GradRef& g : grads) {
        const float ni = norm_of([&](std::size_t i) { return g.grad[i]; }, g.size);
        if (std::isnan(ni)) nan = true;
        if (inf_norm) {
            mx = std::max(mx, ni);
        } else {
            const double a = double(ni);
            acc += p == 1.0 ? a : (p == 2.0 ? a * a : std::pow(a, p));
        }
    }
    if (inf_norm)
        total_norm = nan ? std::numeric_limits<float>::quiet_NaN() : mx;
    else
        total_norm = float(p == 1.0 ? acc : (p == 2.0 ? std::sqrt(acc) : std::pow(acc, 1.0 / p)));
    // clip_coef = max_norm / (total_norm + 1e-6), clamped at 1, in float32.
    const float coef = float(max_norm) / (total_norm + float(1e-6));
    const float clamped = std::isnan(coef) ? coef : std::min(coef, 1.0f);
    for (const GradRef& g : grads)
        for (std::size_t i = 0; i < g.size; ++i) g.grad[i] = g.grad[i] * clamped;
    return Status::success();
}

}  // namespace modelkeep
