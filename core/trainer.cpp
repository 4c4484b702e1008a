#include "trainer.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "decimal.hpp"

namespace modelkeep {

namespace {

// t resized to `shape` (its storage reused when the shape is the same).
void fit(Tensor& t, const Shape& shape) {
    if (t.dimension() != shape.size() || !std::equal(shape.begin(), shape.end(), t.shape().begin())) t.resize(shape);
}

void copy_into(const Tensor& from, Tensor& to) {
    if (to.dimension() != from.dimension() || !std::equal(from.shape().begin(), from.shape().end(), to.shape().begin()))
        to.resize(from.shape());
    std::copy(from.data(), from.data() + from.size(), to.data());
}

// A 64-bit mix (splitmix64's finaliser): integers only, the same everywhere.
std::uint64_t mix64(std::uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// The shuffling generator's state for `seed` (a stream apart from the dropout one).
std::uint64_t shuffle_state_of(std::uint64_t seed) { return DropoutRng(mix64(seed ^ 0x73687566666c65ULL)).state(); }

// Uniform in [0, bound) (bound >= 1) by rejection: integers only, no modulo bias.
std::uint32_t below(DropoutRng& g, std::uint32_t bound) {
    const std::uint32_t threshold = std::uint32_t(0u - bound) % bound;  // 2^32 mod bound
    for (;;) {
        const std::uint32_t r = g.next_u32();
        if (r >= threshold) return r % bound;
    }
}

bool is_class_loss(LossKind k) { return k == LossKind::cross_entropy || k == LossKind::nll; }

Status not_created() { return error(Code::invalid_argument, "the trainer was not created (Trainer::create)"); }

// Index of the largest of n values at stride s (the first on ties; NaN never wins).
std::size_t arg_max(const float* v, std::size_t n, std::size_t s) {
    std::size_t best = 0;
    for (std::size_t c = 1; c < n; ++c)
        if (v[c * s] > v[best * s]) best = c;
    return best;
}

}  // namespace

// ---- create, resume ----

Status Trainer::create(Sequential& model, const TrainerOptions& options, Trainer& out) {
    MK_TRY(check_trainable(model));
    MK_TRY(validate_options(options.optimizer));
    MK_TRY(validate_loss(options.loss));
    if (!(options.max_grad_norm >= 0.0) || !std::isfinite(options.max_grad_norm))
        return error(Code::invalid_hyperparameter, "max_grad_norm must be a finite number >= 0 (0: no clipping)");
    if (options.batch_size == 0 || options.batch_size > max_tensor_elements)
        return error(Code::invalid_hyperparameter,
                     "batch_size must be in [1, 2^28], got " + std::to_string(options.batch_size));
    Trainer t;
    if (options.has_scheduler) MK_TRY(LrScheduler::create(options.scheduler, options.optimizer.lr, t.scheduler_));
    MK_TRY(Optimizer::create(options.optimizer, t.optimizer_));
    if (options.has_scheduler) MK_TRY(t.optimizer_.set_lr(t.scheduler_.lr()));
    t.model_ = &model;
    t.options_ = options;
    t.last_loss_ = NAN;
    MK_TRY(parameters_of(model, t.values_));
    t.gradients_.resize(t.values_.size());
    t.grad_refs_.resize(t.values_.size());
    for (std::size_t i = 0; i < t.values_.size(); ++i) {
        t.gradients_[i] = zeros(shape_of(t.values_[i]));
        MK_TRY(t.optimizer_.add_param(t.values_[i], t.gradients_[i]));
        t.grad_refs_[i] = GradRef{t.gradients_[i].data(), t.gradients_[i].size()};
    }
    for (const Layer& layer : model.layers())
        for (const ParamInfo& info : layer_params(layer.spec))
            if (!info.buffer) t.names_.push_back(param_key(layer.spec.name, info.name));
    if (!options.loss.weight.empty()) t.weight_ = from_data({options.loss.weight.size()}, options.loss.weight.data());
    if (!options.loss.pos_weight.empty())
        t.pos_weight_ = from_data({options.loss.pos_weight.size()}, options.loss.pos_weight.data());
    t.buffers_.seed(options.seed);
    t.shuffle_start_ = shuffle_state_of(options.seed);
    out = std::move(t);  // the optimizer's pointers go with the tensors' storage
    return Status::success();
}

Status Trainer::resume(Sequential& model, const TrainingState& state, Trainer& out) {
    Trainer t;
    MK_TRY(create(model, state.options, t));
    if (state.params.size() != t.values_.size())
        return error(Code::shape_mismatch, "the state has " + std::to_string(state.params.size()) +
                                               " parameter states but the model has " +
                                               std::to_string(t.values_.size()) + " parameters");
    for (std::size_t i = 0; i < state.params.size(); ++i) {
        const Status s = t.optimizer_.set_state(i, state.params[i]);
        if (!s.ok()) return error(s.code(), "parameter " + t.names_[i] + ": " + s.message());
    }
    if (state.options.has_scheduler) {
        MK_TRY(t.scheduler_.set_state(state.scheduler));
        MK_TRY(t.optimizer_.set_lr(t.scheduler_.lr()));
    }
    for (const std::int64_t c : {state.epoch, state.batch, state.steps})
        if (c < 0 || c > max_state_count)
            return error(Code::invalid_argument,
                         "the state's epoch, batch and steps must be in [0, 2^53], got " + std::to_string(c));
    t.epoch_ = state.epoch;
    t.batch_ = state.batch;
    t.steps_ = state.steps;
    t.buffers_.rng.set_state(state.dropout_rng);
    t.shuffle_start_ = state.shuffle_rng;
    t.set_training(state.training);
    t.metadata_ = state.metadata;
    out = std::move(t);
    return Status::success();
}

// ---- step level ----

void Trainer::zero_grad() {
    for (Tensor& g : gradients_) std::fill(g.data(), g.data() + g.size(), 0.0f);
    have_grads_ = false;
}

Status Trainer::run_forward(const Tensor& x) {
    if (model_ == nullptr) return not_created();
    forwarded_ = loss_ready_ = false;
    MK_TRY(train_forward(*model_, x, y_, buffers_));
    forwarded_ = true;
    return Status::success();
}

Status Trainer::forward(const Tensor& x, Tensor& y) {
    MK_TRY(run_forward(x));
    copy_into(y_, y);
    return Status::success();
}

Status Trainer::loss_of(const Tensor& y, const Tensor& target, Tensor& loss, Tensor& grad, float& value) {
    const LossOptions& o = options_.loss;
    const Tensor* weight = weight_.size() > 0 && !o.weight.empty() ? &weight_ : nullptr;
    const Tensor* pos_weight = !o.pos_weight.empty() ? &pos_weight_ : nullptr;
    const bool same_shape =
        y.dimension() == target.dimension() && std::equal(y.shape().begin(), y.shape().end(), target.shape().begin());
    if (is_class_loss(o.kind) && !(o.kind == LossKind::cross_entropy && same_shape)) {
        classes_.resize(target.size());  // capacity kept: no allocation when warm
        for (std::size_t i = 0; i < target.size(); ++i) {
            const float v = target.data()[i];
            // Integral and within what an int64 holds exactly (the loss checks [0, C)).
            if (!(std::floor(v) == v) || std::fabs(v) > 9.0e15f)
                return error(Code::target_out_of_range, "target value " + std::to_string(i) + " is " + format_float(v) +
                                                            ": a class index must be an integral number");
            classes_[i] = std::int64_t(v);
        }
    }
    ClassLossOptions co;
    co.reduction = o.reduction;
    co.weight = weight;
    co.ignore_index = o.ignore_index;
    co.label_smoothing = o.label_smoothing;
    switch (o.kind) {
        case LossKind::mse: MK_TRY(mse_loss(y, target, o.reduction, loss, grad)); break;
        case LossKind::l1: MK_TRY(l1_loss(y, target, o.reduction, loss, grad)); break;
        case LossKind::smooth_l1: MK_TRY(smooth_l1_loss(y, target, o.reduction, o.beta, loss, grad)); break;
        case LossKind::huber: MK_TRY(huber_loss(y, target, o.reduction, o.delta, loss, grad)); break;
        case LossKind::cross_entropy:
            if (same_shape)
                MK_TRY(cross_entropy_loss_probs(y, target, co, loss, grad));
            else
                MK_TRY(cross_entropy_loss(y, classes_, co, loss, grad));
            break;
        case LossKind::nll: MK_TRY(nll_loss(y, classes_, co, loss, grad)); break;
        case LossKind::bce_with_logits:
            MK_TRY(bce_with_logits_loss(y, target, weight, pos_weight, o.reduction, loss, grad));
            break;
        case LossKind::bce: MK_TRY(bce_loss(y, target, weight, o.reduction, loss, grad)); break;
    }
    if (o.reduction != Reduction::none) {
        value = loss.data()[0];
        return Status::success();
    }
    // none: the mean of the values, and the gradient of that mean (loss.mean().backward()).
    double sum = 0.0;
    for (std::size_t i = 0; i < loss.size(); ++i) sum += loss.data()[i];
    const std::size_t n = std::max<std::size_t>(loss.size(), 1);
    value = float(sum / double(n));
    const float scale = float(n);
    for (std::size_t i = 0; i < grad.size(); ++i) grad.data()[i] /= scale;
    return Status::success();
}

Status Trainer::compute_loss(const Tensor& target, float& loss) {
    if (model_ == nullptr) return not_created();
    if (!forwarded_) return error(Code::invalid_argument, "compute_loss needs a forward first");
    loss_ready_ = false;
    MK_TRY(loss_of(y_, target, loss_, loss_grad_, loss));
    loss_ready_ = true;
    return Status::success();
}

Status Trainer::backward() {
    if (model_ == nullptr) return not_created();
    if (!loss_ready_) return error(Code::invalid_argument, "backward needs a forward and compute_loss first");
    MK_TRY(modelkeep::backward(*model_, loss_grad_, buffers_, grads_));
    for (std::size_t i = 0; i < gradients_.size(); ++i) {
        float* g = gradients_[i].data();
        const float* d = grads_.values[i].data();
        for (std::size_t k = 0; k < gradients_[i].size(); ++k) g[k] += d[k];  // accumulates, as autograd
    }
    loss_ready_ = false;  // the graph is spent, as PyTorch's after backward()
    have_grads_ = true;
    return Status::success();
}

Status Trainer::step() {
    if (model_ == nullptr) return not_created();
    if (!have_grads_) return error(Code::invalid_argument, "step needs a backward since the last zero_grad");
    if (options_.max_grad_norm > 0.0) {
        float total = 0.0f;
        MK_TRY(clip_grad_norm(grad_refs_, options_.max_grad_norm, 2.0, total));
    }
    optimizer_.step();
    MK_TRY(store_parameters(*model_, values_));
    forwarded_ = loss_ready_ = false;  // the recorded forward ran with the old weights
    if (options_.has_scheduler && options_.scheduler_per_batch) {
        scheduler_.step();
        MK_TRY(optimizer_.set_lr(scheduler_.lr()));
    }
    ++steps_;
    return Status::success();
}

void Trainer::end_epoch() {
    if (options_.has_scheduler && !options_.scheduler_per_batch) {
        scheduler_.step();
        (void)optimizer_.set_lr(scheduler_.lr());  // a schedule's lr is >= 0 (validated)
    }
    ++epoch_;
    batch_ = 0;
    shuffle_start_ = DropoutRng(mix64(shuffle_start_)).state();
    perm_ready_ = false;
}

Status Trainer::train_batch(const Tensor& x, const Tensor& target, float& loss) {
    if (model_ == nullptr) return not_created();
    zero_grad();
    MK_TRY(run_forward(x));
    MK_TRY(compute_loss(target, loss));
    MK_TRY(backward());
    MK_TRY(step());
    last_loss_ = loss;
    return Status::success();
}

// ---- data-set level ----

Status Trainer::set_data(const Tensor& x, const Tensor& target) {
    if (model_ == nullptr) return not_created();
    if (x.dimension() == 0 || target.dimension() == 0 || x.shape()[0] != target.shape()[0])
        return error(Code::shape_mismatch, "the data is " + shape_to_string(shape_of(x)) + " and the targets " +
                                               shape_to_string(shape_of(target)) +
                                               ": both need the samples as their first dim, equal");
    if (x.shape()[0] > UINT32_MAX) return error(Code::limit_exceeded, "more than 2^32 - 1 samples");
    data_x_ = x;
    data_t_ = target;
    batch_shape_.assign(x.shape().begin(), x.shape().end());
    target_shape_.assign(target.shape().begin(), target.shape().end());
    perm_ready_ = false;
    return Status::success();
}

std::size_t Trainer::samples() const { return data_x_.dimension() == 0 ? 0 : data_x_.shape()[0]; }

std::int64_t Trainer::batches_per_epoch() const {
    const std::size_t n = samples(), b = options_.batch_size;
    return b == 0 ? 0 : std::int64_t((n + b - 1) / b);
}

void Trainer::draw_permutation() {
    const std::uint32_t n = std::uint32_t(samples());
    perm_.resize(n);
    for (std::uint32_t i = 0; i < n; ++i) perm_[i] = i;
    if (options_.shuffle) {
        // Fisher–Yates from the epoch's saved state: a resumed run draws the same permutation.
        DropoutRng g;
        g.set_state(shuffle_start_);
        for (std::uint32_t i = n; i > 1; --i) std::swap(perm_[i - 1], perm_[below(g, i)]);
    }
    perm_ready_ = true;
}

void Trainer::swap_slot() {
    // The generator, the mode and the momentum stay with the trainer; the recorded
    // forward and the shaped tensors change places (moves: no allocation).
    const DropoutRng rng = buffers_.rng;
    const bool training = buffers_.training;
    const float momentum = buffers_.momentum;
    std::swap(buffers_, other_.buffers);
    buffers_.rng = rng;
    buffers_.training = training;
    buffers_.momentum = momentum;
    std::swap(y_, other_.y);
    std::swap(loss_, other_.loss);
    std::swap(loss_grad_, other_.loss_grad);
    std::swap(batch_x_, other_.batch_x);
    std::swap(batch_t_, other_.batch_t);
    forwarded_ = loss_ready_ = false;
    short_active_ = !short_active_;
}

Status Trainer::fit_batch(BatchResult& result) {
    if (model_ == nullptr) return not_created();
    const std::size_t n = samples();
    if (n == 0) return error(Code::invalid_argument, "fit_batch needs data (set_data)");
    const std::int64_t batches = batches_per_epoch();
    if (batch_ >= batches)
        return error(Code::invalid_argument, "batch " + std::to_string(batch_) + " of an epoch of " +
                                                 std::to_string(batches) + " batches: the data changed");
    if (!perm_ready_) draw_permutation();
    const std::size_t first = std::size_t(batch_) * options_.batch_size;
    const std::size_t m = std::min(options_.batch_size, n - first);
    const std::size_t row = data_x_.size() / n, trow = data_t_.size() / n;
    if ((m != options_.batch_size) != short_active_) swap_slot();
    batch_shape_[0] = m;
    target_shape_[0] = m;
    fit(batch_x_, batch_shape_);
    fit(batch_t_, target_shape_);
    for (std::size_t i = 0; i < m; ++i) {
        const std::size_t s = perm_[first + i];
        std::memcpy(batch_x_.data() + i * row, data_x_.data() + s * row, row * sizeof(float));
        std::memcpy(batch_t_.data() + i * trow, data_t_.data() + s * trow, trow * sizeof(float));
    }
    float loss = 0.0f;
    MK_TRY(train_batch(batch_x_, batch_t_, loss));
    result.loss = loss;
    result.epoch = epoch_;
    result.batch = batch_;
    result.batches = batches;
    ++batch_;
    result.epoch_done = batch_ == batches;
    if (result.epoch_done) end_epoch();
    return Status::success();
}

Status Trainer::evaluate(const Tensor& x, const Tensor& target, Evaluation& out) {
    if (model_ == nullptr) return not_created();
    if (x.dimension() == 0 || target.dimension() == 0 || x.shape()[0] != target.shape()[0])
        return error(Code::shape_mismatch, "the data is " + shape_to_string(shape_of(x)) + " and the targets " +
                                               shape_to_string(shape_of(target)) +
                                               ": both need the samples as their first dim, equal");
    const std::size_t n = x.shape()[0], bs = options_.batch_size;
    const std::size_t row = n == 0 ? 0 : x.size() / n, trow = n == 0 ? 0 : target.size() / n;
    const LossKind kind = options_.loss.kind;
    const bool classes = kind == LossKind::cross_entropy || kind == LossKind::nll ||
                         kind == LossKind::bce_with_logits || kind == LossKind::bce;
    Shape xs(x.shape().begin(), x.shape().end()), ts(target.shape().begin(), target.shape().end());
    double loss_sum = 0.0;
    std::uint64_t correct = 0, counted = 0;
    for (std::size_t first = 0; first < n; first += bs) {
        const std::size_t m = std::min(bs, n - first);
        xs[0] = ts[0] = m;
        fit(eval_x_, xs);
        fit(eval_t_, ts);
        std::memcpy(eval_x_.data(), x.data() + first * row, m * row * sizeof(float));
        std::memcpy(eval_t_.data(), target.data() + first * trow, m * trow * sizeof(float));
        MK_TRY(model_->forward(eval_x_, eval_y_, eval_buffers_));  // eval(): no recording, no state change
        float value = 0.0f;
        MK_TRY(loss_of(eval_y_, eval_t_, eval_loss_, eval_grad_, value));
        loss_sum += options_.loss.reduction == Reduction::sum ? double(value) : double(value) * double(m);
        if (!classes) continue;
        const Tensor& y = eval_y_;
        const bool same_shape = y.dimension() == eval_t_.dimension() &&
                                std::equal(y.shape().begin(), y.shape().end(), eval_t_.shape().begin());
        if (kind == LossKind::bce_with_logits || kind == LossKind::bce) {
            const float cut = kind == LossKind::bce ? 0.5f : 0.0f;
            for (std::size_t i = 0; i < y.size(); ++i) correct += (y.data()[i] > cut) == (eval_t_.data()[i] > 0.5f);
            counted += y.size();
            continue;
        }
        // (N, C, d1, ...) or unbatched (C,): the arg-max over C at each position.
        const std::size_t N = y.dimension() >= 2 ? y.shape()[0] : 1,
                          C = y.dimension() >= 2 ? y.shape()[1] : y.shape()[0];
        const std::size_t R = N * C == 0 ? 0 : y.size() / (N * C);
        for (std::size_t a = 0; a < N; ++a)
            for (std::size_t r = 0; r < R; ++r) {
                const std::size_t got = arg_max(y.data() + a * C * R + r, C, R);
                if (same_shape) {
                    correct += got == arg_max(eval_t_.data() + a * C * R + r, C, R);
                } else {
                    const std::int64_t want = classes_[a * R + r];
                    if (want == options_.loss.ignore_index) continue;
                    correct += std::int64_t(got) == want;
                }
                ++counted;
            }
    }
    out.samples = n;
    out.loss = n == 0 ? double(NAN) : loss_sum / double(n);
    out.accuracy = classes && counted > 0 ? double(correct) / double(counted) : double(NAN);
    return Status::success();
}

// ---- state ----

void Trainer::set_training(bool training) {
    buffers_.training = training;
    forwarded_ = loss_ready_ = false;
}

bool Trainer::training() const { return buffers_.training; }

Status Trainer::set_lr(double lr) {
    if (model_ == nullptr) return not_created();
    MK_TRY(optimizer_.set_lr(lr));
    if (options_.has_scheduler) {
        SchedulerState s = scheduler_.state();
        s.lr = lr;
        MK_TRY(scheduler_.set_state(s));
    } else {
        options_.optimizer.lr = lr;
    }
    return Status::success();
}

double Trainer::lr() const { return optimizer_.lr(); }

TrainingState Trainer::state() const {
    TrainingState s;
    s.options = options_;
    s.params.resize(optimizer_.param_count());
    for (std::size_t i = 0; i < s.params.size(); ++i) s.params[i] = optimizer_.state(i);
    if (options_.has_scheduler) s.scheduler = scheduler_.state();
    s.epoch = epoch_;
    s.batch = batch_;
    s.steps = steps_;
    s.dropout_rng = buffers_.rng.state();
    s.shuffle_rng = shuffle_start_;
    s.training = buffers_.training;
    s.metadata = metadata_;
    return s;
}

const std::vector<Tensor>& Trainer::gradients() const { return gradients_; }

const std::vector<std::string>& Trainer::parameter_names() const { return names_; }

}  // namespace modelkeep
