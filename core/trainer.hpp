// trainer.hpp — training a Sequential end to end: PyTorch's loop
//
//   optimizer.zero_grad(); y = model(x); loss = loss_fn(y, t); loss.backward();
//   clip_grad_norm_(...); optimizer.step(); scheduler.step()
//
// over train.hpp (recorded forward, backward), loss.hpp, optim.hpp and
// lr_scheduler.hpp, plus what a checkpoint must carry so that save → reload →
// continue is bit-identical to a run that never stopped (TrainingState).
//
//   Trainer t;
//   Trainer::create(model, options, t);         // options: optimizer, loss, schedule, seed
//   t.train_batch(x, target, loss);             // one step (or the step-level calls below)
//   t.set_data(x_all, target_all);              // a data set, copied in once
//   while (...) t.fit_batch(result);            // the next batch of the current epoch
//   TrainingState s = t.state();                // → checkpoint.hpp / torch_checkpoint.hpp
//   Trainer::resume(model, s, t2);              // continues exactly where t stopped
//
// Step-level calls, PyTorch's names and semantics:
//   zero_grad()                 forget the accumulated gradients
//   forward(x, y)               model.train() forward, recorded for backward
//   compute_loss(target, loss)  the loss of the last forward; keeps ∂loss/∂y
//   backward()                  adds ∂loss/∂param into the gradients (accumulates, as
//                               loss.backward() does, until zero_grad())
//   step()                      clip (if max_grad_norm > 0), optimizer.step(), the new
//                               weights into the model, a per-batch schedule step
//   end_epoch()                 a per-epoch schedule step, epoch + 1
//
// Targets are float32 tensors always: class indices (CrossEntropyLoss, NLLLoss) are
// integral values, one per sample (shape (N,) or (N, 1)); a target of the input's
// shape for CrossEntropyLoss is class probabilities.
//
// Memory: create() allocates the parameters' float32 copy, the gradients and the
// optimizer's state once; a warm train_batch / fit_batch on an already-seen batch
// shape allocates nothing (the loss, the recorded forward and the gradients are
// resized in place; the new weights are written back with store_parameters, straight
// into the packed layout). fit_batch keeps a second set of buffers for an epoch's
// short last batch, so a warm epoch allocates nothing either.
//
// Randomness: one seed makes a run repeatable: the dropout masks (TrainBuffers'
// DropoutRng) and the shuffling (a second generator, seeded from the same seed)
// are separate streams, each saved in TrainingState. Initialisation is the model's
// (Sequential's seed), not the trainer's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "format.hpp"
#include "loss.hpp"
#include "lr_scheduler.hpp"
#include "model.hpp"
#include "optim.hpp"
#include "train.hpp"

namespace modelkeep {

/// The losses, by PyTorch's class names.
#define MODELKEEP_LOSSES(X)      \
    X(mse, "MSELoss")            \
    X(l1, "L1Loss")              \
    X(smooth_l1, "SmoothL1Loss") \
    X(huber, "HuberLoss")        \
    X(cross_entropy, "CrossEntropyLoss") X(nll, "NLLLoss") X(bce_with_logits, "BCEWithLogitsLoss") X(bce, "BCELoss")

enum class LossKind {
#define MODELKEEP_X(name, torch_name) name,
    MODELKEEP_LOSSES(MODELKEEP_X)
#undef MODELKEEP_X
};

/// "MSELoss", "CrossEntropyLoss", ...
const char* loss_name(LossKind kind);

struct LossOptions;
/// PyTorch's checks of a loss's options (label_smoothing in [0, 1], beta >= 0,
/// delta > 0), and an option the loss does not have left at its default:
/// invalid_hyperparameter naming it. (A weight's length is checked against the
/// classes at the first loss: shape_mismatch.)
Status validate_loss(const LossOptions& options);

/// A loss and its options, PyTorch's names and defaults; an option a loss does not
/// have is ignored (and must keep its default).
struct LossOptions {
    LossKind kind = LossKind::mse;
    Reduction reduction = Reduction::mean;
    double beta = 1.0;                 // SmoothL1Loss
    double delta = 1.0;                // HuberLoss
    std::int64_t ignore_index = -100;  // CrossEntropyLoss, NLLLoss
    double label_smoothing = 0.0;      // CrossEntropyLoss
    std::vector<float> weight;         // CrossEntropyLoss, NLLLoss (C,); BCE losses: over the last dim. Empty: none
    std::vector<float> pos_weight;     // BCEWithLogitsLoss, over the last dim. Empty: none
};

/// Everything a training run needs besides the model and the data.
struct TrainerOptions {
    OptimizerOptions optimizer = adam_options();
    LossOptions loss;
    bool has_scheduler = false;
    SchedulerOptions scheduler;
    bool scheduler_per_batch = false;  // false: one scheduler step per epoch (end_epoch)
    double max_grad_norm = 0.0;        // > 0: clip_grad_norm_(max_norm, 2) before each step; 0: none
    std::uint64_t seed = 0;            // dropout masks and shuffling
    std::size_t batch_size = 32;       // fit_batch
    bool shuffle = true;               // fit_batch: a new permutation every epoch
};

/// What a checkpoint holds beside the model's weights: enough to continue
/// bit-identically. Counters count what is complete.
struct TrainingState {
    TrainerOptions options;
    std::vector<ParamState> params;  // one per parameter, in parameters_of order (state_dict order)
    SchedulerState scheduler;        // when options.has_scheduler
    std::int64_t epoch = 0;          // epochs completed (end_epoch calls)
    std::int64_t batch = 0;          // batches of the current epoch done by fit_batch
    std::int64_t steps = 0;          // optimizer steps in all
    std::uint64_t dropout_rng = 0;   // DropoutRng::state() now
    std::uint64_t shuffle_rng = 0;   // the shuffling generator's state at the start of the current epoch
    bool training = true;            // model.train() / model.eval()
    Metadata metadata;               // the user's: "loss" = "0.25", a history, ... (format.hpp's limits)
};

/// One fit_batch: its loss (the loss value of the batch, as the loss reduces it; for
/// reduction none, the mean of the values), and where the run is.
struct BatchResult {
    float loss = 0.0f;
    std::int64_t epoch = 0;    // the epoch this batch belonged to (0-based)
    std::int64_t batch = 0;    // its index in the epoch
    std::int64_t batches = 0;  // batches per epoch
    bool epoch_done = false;   // it was the epoch's last (end_epoch has run)
};

/// evaluate's answer: the mean loss per sample over the data (each batch's loss
/// weighted by its samples, for reduction mean) and, for the class losses, the share
/// of samples whose arg-max (BCE losses: output > 0 for logits, > 0.5 for BCELoss,
/// per value) matches the target (NaN for the regression losses).
struct Evaluation {
    double loss = 0.0;
    double accuracy = 0.0;
    std::size_t samples = 0;
};

class Trainer {
public:
    Trainer() = default;
    // The optimizer holds pointers into the trainer's own tensors: a move keeps them
    // valid (the storage moves with it), a copy would not.
    Trainer(const Trainer&) = delete;
    Trainer& operator=(const Trainer&) = delete;
    Trainer(Trainer&&) = default;
    Trainer& operator=(Trainer&&) = default;

    /// A trainer for `model` (which must outlive it and not change shape): checks that
    /// it is trainable (check_trainable: needs_f32) and the options
    /// (invalid_hyperparameter: validate_options, the loss's and the schedule's), copies
    /// the parameters, allocates the gradients and the optimizer state, seeds the generators.
    static Status create(Sequential& model, const TrainerOptions& options, Trainer& out);
    /// A trainer that continues `state` (a checkpoint's) on `model`, which must hold the
    /// checkpoint's weights: shape_mismatch when the parameter states do not match the
    /// model's parameters (count, sizes), invalid_hyperparameter as create.
    static Status resume(Sequential& model, const TrainingState& state, Trainer& out);

    // ---- step level ----
    void zero_grad();
    /// The training forward (or eval, per training()): y gets the output.
    Status forward(const Tensor& x, Tensor& y);
    /// The loss of the last forward against target; invalid_argument without a forward,
    /// shape_mismatch / target_out_of_range from the loss.
    Status compute_loss(const Tensor& target, float& loss);
    /// Accumulates the gradients of the last compute_loss; invalid_argument without one.
    Status backward();
    /// Clip, optimizer step, weights into the model, per-batch schedule; steps + 1.
    Status step();
    /// end of an epoch: a per-epoch schedule step; epoch + 1, batch 0, the shuffle state
    /// saved for the next epoch.
    void end_epoch();
    /// zero_grad, forward, compute_loss, backward, step.
    Status train_batch(const Tensor& x, const Tensor& target, float& loss);

    // ---- data-set level ----
    /// Copies the samples in (x's and target's first dims are the sample count, equal:
    /// shape_mismatch otherwise); resets nothing else.
    Status set_data(const Tensor& x, const Tensor& target);
    std::size_t samples() const;
    std::int64_t batches_per_epoch() const;
    /// The next batch of the current epoch (a permutation of the data when shuffling,
    /// drawn at the epoch's start from the saved shuffle state, so a resumed run draws the
    /// same one), trained with train_batch; after the epoch's last batch, end_epoch().
    /// invalid_argument without data.
    Status fit_batch(BatchResult& result);
    /// Loss and accuracy over x, target in eval mode (no recording, no state change but
    /// the scratch), in batches of batch_size.
    Status evaluate(const Tensor& x, const Tensor& target, Evaluation& out);

    // ---- state ----
    /// model.train() (true) / model.eval() (false).
    void set_training(bool training);
    bool training() const;
    Status set_lr(double lr);
    double lr() const;
    const TrainerOptions& options() const { return options_; }
    Sequential& model() { return *model_; }
    /// The last step's loss (NaN before any).
    float last_loss() const { return last_loss_; }
    /// state()'s counters, without its copy of the optimizer state: epochs completed,
    /// batches of the current epoch done by fit_batch, optimizer steps in all.
    std::int64_t epoch() const { return epoch_; }
    std::int64_t batch() const { return batch_; }
    std::int64_t steps() const { return steps_; }
    /// A copy of everything a checkpoint needs (the options, the optimizer state, the
    /// schedule, the counters, the generators, the metadata).
    TrainingState state() const;
    Metadata& metadata() { return metadata_; }

    /// The parameters' gradients, state_dict order (after backward).
    const std::vector<Tensor>& gradients() const;
    const std::vector<std::string>& parameter_names() const;

private:
    // y, target → loss and grad (∂loss/∂y; of the mean for reduction none), its value.
    Status loss_of(const Tensor& y, const Tensor& target, Tensor& loss, Tensor& grad, float& value);
    Status run_forward(const Tensor& x);
    void draw_permutation();

    Sequential* model_ = nullptr;
    TrainerOptions options_;
    float last_loss_ = 0.0f;
    Metadata metadata_;

    Optimizer optimizer_;
    LrScheduler scheduler_;
    TrainBuffers buffers_;           // the recorded forward, the dropout generator
    Grads grads_;                    // one backward's gradients
    std::vector<Tensor> values_;     // the parameters, float32 (out, in): what the optimizer steps
    std::vector<Tensor> gradients_;  // the accumulated gradients (zero_grad zeroes them)
    std::vector<GradRef> grad_refs_;
    std::vector<std::string> names_;
    Tensor y_, loss_, loss_grad_;        // the last forward's output, its loss and ∂loss/∂y
    std::vector<std::int64_t> classes_;  // class-index targets as integers
    Tensor weight_, pos_weight_;         // the loss's weights as tensors (empty: none)
    bool forwarded_ = false, loss_ready_ = false, have_grads_ = false;

    std::int64_t epoch_ = 0, batch_ = 0, steps_ = 0;
    std::uint64_t shuffle_start_ = 0;  // the shuffling generator's state at the current epoch's start
    bool perm_ready_ = false;          // perm_ is the current epoch's
    std::vector<std::uint32_t> perm_;
    Tensor data_x_, data_t_, batch_x_, batch_t_;
    Shape batch_shape_, target_shape_;
    // fit_batch's short last batch runs in a second set of buffers, swapped in and
    // out, so that alternating between the two batch shapes allocates nothing.
    struct Slot {
        TrainBuffers buffers;
        Tensor y, loss, loss_grad, batch_x, batch_t;
    };
    Slot other_;
    bool short_active_ = false;
    void swap_slot();

    ForwardBuffers eval_buffers_;  // evaluate: the inference path
    Tensor eval_x_, eval_t_, eval_y_, eval_loss_, eval_grad_;
};

// ---- options as text (the CLI's --optimizer / --loss, the JS API's strings) ----
//
//   optimizer:  adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=false)
//               sgd(lr=0.1, momentum=0.9, nesterov=true), adamw(...), rmsprop(...)
//   loss:       cross_entropy(label_smoothing=0.1, ignore_index=-100, weight=[1, 2]),
//               mse, l1, smooth_l1(beta=1), huber(delta=1), nll, bce_with_logits(pos_weight=[3]), bce;
//               every loss takes reduction=mean|sum|none
//   scheduler:  step_lr(step_size=10, gamma=0.1), cosine_annealing_lr(T_max=100, eta_min=0),
//               linear_lr(start_factor=0.333, end_factor=1, total_iters=5)
//
// Names are case-insensitive and PyTorch's class names are accepted too (Adam,
// CrossEntropyLoss, StepLR); the arguments are PyTorch's keyword names. An unknown
// name or option, a missing required one (sgd's lr, step_lr's step_size,
// cosine_annealing_lr's T_max), a malformed value: invalid_hyperparameter, naming it
// and listing what is accepted. The text form written back (optimizer_text, ...) is
// canonical: every option, and it parses to the same options.
Status parse_optimizer(const std::string& text, OptimizerOptions& out);
Status parse_loss(const std::string& text, LossOptions& out);
Status parse_scheduler(const std::string& text, SchedulerOptions& out);
std::string optimizer_text(const OptimizerOptions& options);
std::string loss_text(const LossOptions& options);
std::string scheduler_text(const SchedulerOptions& options);

}  // namespace modelkeep
