// train_bindings.cpp — training from JavaScript (core/trainer.hpp, checkpoint.hpp):
// the importer module's mk_trainer_* calls, wrapped by web/src/abi.js's
// TrainerHandle and used by web/src/train.js. Compiled into the importer module
// only (wasm/CMakeLists.txt): the lean core stays as small as it was.
//
// The conventions are bindings.cpp's (abi.hpp holds what both files share), plus:
// - Data comes in through two staging tensors the handle keeps, `x` and
//   `target`: mk_trainer_x / mk_trainer_target take a shape (mk_dims()) and a
//   length and hand out where abi.js writes the values. The calls that follow
//   (forward, loss, train_batch, set_data, evaluate) read them. A staged shape
//   seen before is reused in place: a warm step allocates nothing.
// - The per-batch calls (loss, train_batch, fit_batch, evaluate) return 1 with
//   their numbers in mk_dims() (no JSON to build or parse per batch), or 0 with
//   the failure at mk_answer().
// - The trainer refers to the ModelHandle's Sequential: JavaScript deletes the
//   trainer before (or without) the model, never the model first (train.js).
// Every allocation sized by input is reserved first (reserve: out_of_memory, never
// an abort), by the core's figures: Sequential::state_dict_bytes for the trainer's
// copies (parameters, gradients, at most three optimizer buffers each),
// train_bytes for a recorded forward and backward, emit_bytes for a file, read_checkpoint_bytes
// for a checkpoint read; a PyTorch checkpoint read is bounded by three times its file's size (a
// legacy file's copy, then its tensors as float32: at most twice their stored bytes, for f16).
#include <emscripten/emscripten.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "abi.hpp"
#include "checkpoint.hpp"
#include "decimal.hpp"
#include "torch_checkpoint.hpp"
#include "train.hpp"
#include "trainer.hpp"

using namespace modelkeep;
using namespace mk_abi;

// Every operator new of this module, counted (mk_new_count): tests/js/train.test.mjs checks
// that a warm batch makes none, as tests/alloc_tracking.hpp does natively. The same behaviour
// as libc++'s (with exceptions off: malloc, abort on failure, which reserve() keeps unreachable
// from input) plus one increment (atomic: the pthreads build has worker threads).
namespace {
std::atomic<std::uint64_t> new_count{0};
}  // namespace
void* operator new(std::size_t n) {
    new_count.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1)) return p;
    std::abort();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    new_count.fetch_add(1, std::memory_order_relaxed);
    return std::malloc(n ? n : 1);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return operator new(n, std::nothrow); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

/// A Trainer owned by exactly one JS Trainer object (which calls mk_trainer_delete).
struct TrainerHandle {
    Trainer trainer;
    Tensor x, target, y;  // staged input and target; the last forward's output
    Shape ready_shape;    // the x shape whose forward + backward memory was reserved
    bool ready = false;
    Shape shape;  // scratch: a staged shape (kept, so that a warm call allocates nothing)
};

// The tensor's shape equals `shape` (no Shape made: a warm call allocates nothing).
bool same_shape(const Tensor& t, const Shape& shape) {
    return t.dimension() == shape.size() && std::equal(shape.begin(), shape.end(), t.shape().begin());
}

// What a trainer holds besides the model: the parameters' float32 copy, their gradients
// and up to three optimizer buffers each (Adam with amsgrad, RMSprop centered with momentum).
double trainer_bytes(const Sequential& model) { return double(model.state_dict_bytes()) * 5; }

// mk_trainer_load's training state, for the mk_trainer_resume that follows it.
TrainingState loaded_state;
bool loaded = false;

// A double as JSON: shortest round-trip text, null when not finite.
std::string json_double(double v) { return std::isfinite(v) ? format_double(v) : std::string("null"); }

// The trainer's options from the args block (optimizer, loss, scheduler texts) and
// mk_dims() (scheduler per batch, max grad norm, seed, batch size, shuffle).
// optional: an empty optimizer text is no optimizer (has_optimizer false, out.optimizer kept).
Status read_options(const std::uint8_t* args, TrainerOptions& out, bool optional = false,
                    bool* has_optimizer = nullptr) {
    Args a(args);
    const std::string optimizer = a.str(), loss = a.str(), scheduler = a.str();
    const bool given = !(optional && optimizer.empty());
    if (has_optimizer) *has_optimizer = given;
    Status st = given ? parse_optimizer(optimizer, out.optimizer) : Status::success();
    if (st.ok()) st = parse_loss(loss, out.loss);
    out.has_scheduler = !scheduler.empty();
    if (st.ok() && out.has_scheduler) st = parse_scheduler(scheduler, out.scheduler);
    if (!st.ok()) return st;
    const double per_batch = dims[0], max_norm = dims[1], seed = dims[2], batch = dims[3], shuffle = dims[4];
    if (!(max_norm >= 0 && std::isfinite(max_norm)))
        return error(Code::invalid_hyperparameter, "maxGradNorm must be a finite number >= 0 (0: no clipping)");
    if (!(seed >= 0 && seed <= 9007199254740991.0) || seed != std::floor(seed))
        return error(Code::invalid_hyperparameter, "seed must be an integer in [0, 2^53)");
    if (!(batch >= 1 && batch <= double(max_tensor_elements)) || batch != std::floor(batch))
        return error(Code::invalid_hyperparameter, "batchSize must be an integer in [1, 2^28]");
    out.scheduler_per_batch = per_batch != 0;
    out.max_grad_norm = max_norm;
    out.seed = std::uint64_t(seed);
    out.batch_size = std::size_t(batch);
    out.shuffle = shuffle != 0;
    return Status::success();
}

// A new handle running `make` (Trainer::create or resume), or null with the failure.
template <typename Make>
TrainerHandle* new_trainer(const Sequential& model, Make&& make) {
    Status st = reserve(trainer_bytes(model) + double(sizeof(TrainerHandle)), "the trainer");
    TrainerHandle* t = nullptr;
    if (st.ok()) {
        t = new (std::nothrow) TrainerHandle();
        if (!t) st = error(Code::out_of_memory, "no memory left for a trainer");
    }
    if (st.ok()) st = make(t->trainer);
    if (!st.ok()) {
        delete t;
        fail(st);
        return nullptr;
    }
    return t;
}

// Stages `length` values of a shape (rank dims in mk_dims()) into `t`, reserving `extra`
// bytes beside them when the shape is new → where abi.js writes them, or null.
float* stage(TrainerHandle* h, Tensor& t, int rank, double length, const char* what, double extra) {
    Shape& shape = h->shape;
    Status st;
    if (!read_shape(rank, shape))
        st = error(Code::invalid_input,
                   std::string(what) + "'s shape must be an array of at most 8 non-negative integers");
    std::uint64_t numel = 0;
    if (st.ok()) st = checked_numel(shape, numel, what);
    if (st.ok() && length != double(numel))
        st = error(Code::shape_mismatch, std::string(what) + " has " + count_text(length) + " values but shape " +
                                             shape_to_string(shape) + " holds " + std::to_string(numel));
    const bool same = st.ok() && same_shape(t, shape);
    if (st.ok() && !same) st = reserve(double(numel) * 4 + extra, what);
    if (!st.ok()) {
        fail(st);
        return nullptr;
    }
    if (!same) t.resize(shape);
    return t.data();
}

// The shape of one batch of `x` (its first dim the samples): (min(batch, N), rest...).
Shape batch_shape(const Tensor& x, std::size_t batch) {
    Shape s = shape_of(x);
    if (!s.empty() && s[0] > batch) s[0] = batch;
    return s;
}

// The memory a forward + backward of a batch of `shape` needs, reserved once per shape.
Status ready_for(TrainerHandle* t, const Shape& shape) {
    if (t->ready && shape == t->ready_shape) return Status::success();
    t->ready = false;
    Status st = reserve(double(train_bytes(t->trainer.model(), shape)), "training on this input");
    if (!st.ok()) return st;
    t->ready = true;
    t->ready_shape = shape;
    return Status::success();
}

// ready_for the staged x (no Shape made when it is the shape already reserved for).
Status ready_for_x(TrainerHandle* t) {
    if (t->ready && same_shape(t->x, t->ready_shape)) return Status::success();
    return ready_for(t, shape_of(t->x));
}

int failed(const Status& st) {
    fail(st);
    return 0;
}

}  // namespace

extern "C" {

/// A trainer for the handle's model. args: optimizer, loss, scheduler ("" for none),
/// as text (trainer.hpp); mk_dims(): [scheduler per batch, max grad norm, seed,
/// batch size, shuffle] → the handle, or null with the failure at mk_answer()
/// (needs_f32, invalid_hyperparameter, out_of_memory).
EMSCRIPTEN_KEEPALIVE TrainerHandle* mk_trainer_create(ModelHandle* h, const std::uint8_t* args) {
    TrainerOptions options;
    const Status st = read_options(args, options);
    if (!st.ok()) {
        fail(st);
        return nullptr;
    }
    return new_trainer(h->model, [&](Trainer& out) { return Trainer::create(h->model, options, out); });
}

/// A checkpoint (.mkp, the current source, `size` bytes) into the handle's model →
/// { ok, training: whether it has a TRAINING section, ...info }; its training state is
/// kept for mk_trainer_resume.
EMSCRIPTEN_KEEPALIVE const char* mk_trainer_load(ModelHandle* h, double size) {
    const JsSource file(size);
    loaded = false;
    loaded_state = TrainingState();
    if (!is_mkp(file))
        return fail(
            error(Code::bad_magic, "a training checkpoint is a modelkeep (.mkp) file; these bytes are not one"));
    FileInfo info;
    Status st = read_info(file, false, info);
    if (st.ok()) st = reserve(double(read_checkpoint_bytes(info)), "the checkpoint");
    Sequential model;
    TrainingState state;
    bool has_training = false;
    if (st.ok()) st = read_checkpoint(file, model, state, has_training, nullptr, &info);
    if (!st.ok()) return fail(st);
    h->model = std::move(model);
    h->warm = {};
    loaded_state = std::move(state);
    loaded = has_training;
    Json j = success();
    info_fields(j, info);
    j.boolean("training", has_training);
    return done();
}

/// A trainer continuing mk_trainer_load's state on the handle's model → the handle, or null.
EMSCRIPTEN_KEEPALIVE TrainerHandle* mk_trainer_resume(ModelHandle* h) {
    if (!loaded) {
        fail(error(Code::invalid_argument, "mk_trainer_resume needs a checkpoint with training state loaded first"));
        return nullptr;
    }
    loaded = false;
    TrainerHandle* t =
        new_trainer(h->model, [&](Trainer& out) { return Trainer::resume(h->model, loaded_state, out); });
    loaded_state = TrainingState();
    return t;
}

/// A trainer continuing a PyTorch general checkpoint (torch_checkpoint.hpp; the current
/// source, `size` bytes) on the handle's model, which JavaScript loaded from the same file
/// (its model_state_dict into the architecture). args and mk_dims() as mk_trainer_create's,
/// but the optimizer text may be "" (the file's kind) and only its kind is used (Adam or
/// AdamW: the file's options are kept) → the handle, or null with the failure: the
/// reader's codes, wrong_kind without an optimizer_state_dict, shape_mismatch when the
/// optimizer state does not fit the model.
EMSCRIPTEN_KEEPALIVE TrainerHandle* mk_trainer_load_torch(ModelHandle* h, double size, const std::uint8_t* args) {
    const JsSource file(size);
    TrainerOptions options;
    bool hinted = false;
    Status st = read_options(args, options, true, &hinted);
    if (st.ok()) st = reserve(double(file.size()) * 3, "the checkpoint");
    TorchCheckpoint ck;
    if (st.ok()) st = read_torch_checkpoint(file, hinted ? &options.optimizer : nullptr, ck);
    if (st.ok() && !ck.has_optimizer)
        st = error(Code::wrong_kind,
                   "this PyTorch file holds no optimizer_state_dict, so no training to continue: load it as a "
                   "model with load(url, { architecture }) and start training with Trainer.create(model, options)");
    if (!st.ok()) {
        fail(st);
        return nullptr;
    }
    ck.model = StateDict();  // the handle's model holds these weights already
    options.optimizer = ck.optimizer;
    return new_trainer(h->model, [&](Trainer& out) {
        Status s = Trainer::create(h->model, options, out);
        if (!s.ok()) return s;
        TrainingState state = out.state();
        s = torch_training_state(ck, h->model, state);
        return s.ok() ? Trainer::resume(h->model, state, out) : s;
    });
}

EMSCRIPTEN_KEEPALIVE void mk_trainer_delete(TrainerHandle* t) { delete t; }

/// How many times operator new ran in this module so far (for tests).
EMSCRIPTEN_KEEPALIVE double mk_new_count() { return double(new_count.load(std::memory_order_relaxed)); }

/// Staging: x's shape (rank dims in mk_dims()) and `length` values → where abi.js writes them.
EMSCRIPTEN_KEEPALIVE float* mk_trainer_x(TrainerHandle* t, int rank, double length) {
    return stage(t, t->x, rank, length, "input", 0);
}

/// Staging: the target's shape and `length` values → where abi.js writes them.
EMSCRIPTEN_KEEPALIVE float* mk_trainer_target(TrainerHandle* t, int rank, double length) {
    return stage(t, t->target, rank, length, "target", 0);
}

EMSCRIPTEN_KEEPALIVE void mk_trainer_zero_grad(TrainerHandle* t) { t->trainer.zero_grad(); }

/// The recorded forward of the staged x → the output's values (shape in mk_dims()), or null.
EMSCRIPTEN_KEEPALIVE const float* mk_trainer_forward(TrainerHandle* t) {
    Status st = ready_for_x(t);
    if (st.ok()) st = t->trainer.forward(t->x, t->y);
    if (!st.ok()) {
        fail(st);
        return nullptr;
    }
    // The output's shape into mk_dims() (rank, then the dims), with no Shape made.
    dims[0] = double(t->y.dimension());
    for (std::size_t i = 0; i < t->y.dimension() && i < 8; ++i) dims[i + 1] = double(t->y.shape()[i]);
    return t->y.data();
}

/// The loss of the last forward against the staged target → 1, mk_dims()[0] the loss; or 0.
EMSCRIPTEN_KEEPALIVE int mk_trainer_loss(TrainerHandle* t) {
    float loss = 0;
    const Status st = t->trainer.compute_loss(t->target, loss);
    if (!st.ok()) return failed(st);
    dims[0] = loss;
    return 1;
}

EMSCRIPTEN_KEEPALIVE const char* mk_trainer_backward(TrainerHandle* t) {
    const Status st = t->trainer.backward();
    return st.ok() ? ok() : fail(st);
}

EMSCRIPTEN_KEEPALIVE const char* mk_trainer_step(TrainerHandle* t) {
    const Status st = t->trainer.step();
    return st.ok() ? ok() : fail(st);
}

EMSCRIPTEN_KEEPALIVE void mk_trainer_end_epoch(TrainerHandle* t) { t->trainer.end_epoch(); }

/// zero_grad, forward, loss, backward, step on the staged x and target → 1, the loss in
/// mk_dims()[0]; or 0.
EMSCRIPTEN_KEEPALIVE int mk_trainer_train_batch(TrainerHandle* t) {
    Status st = ready_for_x(t);
    float loss = 0;
    if (st.ok()) st = t->trainer.train_batch(t->x, t->target, loss);
    if (!st.ok()) return failed(st);
    dims[0] = loss;
    return 1;
}

/// The staged x and target become the data set (copied in; the staging is then freed) →
/// { ok, samples, batches }.
EMSCRIPTEN_KEEPALIVE const char* mk_trainer_set_data(TrainerHandle* t) {
    const Shape batch = batch_shape(t->x, t->trainer.options().batch_size);
    // The copy of the data, one batch of x and of the target, a forward + backward of it.
    Status st = reserve(double(t->x.size() + t->target.size()) * 4 * 2, "the data set");
    if (st.ok()) st = t->trainer.set_data(t->x, t->target);
    if (st.ok()) st = ready_for(t, batch);
    t->x = Tensor();
    t->target = Tensor();
    if (!st.ok()) return fail(st);
    success().num("samples", double(t->trainer.samples())).num("batches", double(t->trainer.batches_per_epoch()));
    return done();
}

/// The next batch of the data set → 1 with mk_dims() = [loss, epoch, batch, batches,
/// epoch done]; or 0.
EMSCRIPTEN_KEEPALIVE int mk_trainer_fit_batch(TrainerHandle* t) {
    BatchResult r;
    const Status st = t->trainer.fit_batch(r);
    if (!st.ok()) return failed(st);
    dims[0] = r.loss;
    dims[1] = double(r.epoch);
    dims[2] = double(r.batch);
    dims[3] = double(r.batches);
    dims[4] = r.epoch_done ? 1 : 0;
    return 1;
}

/// Loss and accuracy over the staged x and target (eval mode) → 1 with mk_dims() =
/// [loss, accuracy (NaN for regression losses), samples]; or 0. The staging is kept.
EMSCRIPTEN_KEEPALIVE int mk_trainer_evaluate(TrainerHandle* t) {
    Status st = ready_for(t, batch_shape(t->x, t->trainer.options().batch_size));
    Evaluation e;
    if (st.ok()) st = t->trainer.evaluate(t->x, t->target, e);
    if (!st.ok()) return failed(st);
    dims[0] = e.loss;
    dims[1] = e.accuracy;
    dims[2] = double(e.samples);
    return 1;
}

/// → { ok, lr, training, lastLoss, samples, batchesPerEpoch, optimizer, loss, scheduler
/// (texts; null: none), schedulerPerBatch, maxGradNorm, seed, batchSize, shuffle, metadata }
/// and, with counters, epoch, batch, steps (the trainer's counters: no copy of its state).
EMSCRIPTEN_KEEPALIVE const char* mk_trainer_state(TrainerHandle* t, int counters) {
    Trainer& tr = t->trainer;
    const TrainerOptions& o = tr.options();
    Json j = success();
    if (counters) j.num("epoch", double(tr.epoch())).num("batch", double(tr.batch())).num("steps", double(tr.steps()));
    j.raw("lr", json_double(tr.lr()))
        .boolean("training", tr.training())
        .raw("lastLoss", json_double(tr.last_loss()))
        .num("samples", double(tr.samples()))
        .num("batchesPerEpoch", double(tr.batches_per_epoch()))
        .str("optimizer", optimizer_text(o.optimizer))
        .str("loss", loss_text(o.loss))
        .raw("scheduler", string_or_null(o.has_scheduler, o.has_scheduler ? scheduler_text(o.scheduler) : ""))
        .boolean("schedulerPerBatch", o.scheduler_per_batch)
        .raw("maxGradNorm", json_double(o.max_grad_norm))
        .num("seed", double(o.seed))
        .num("batchSize", double(o.batch_size))
        .boolean("shuffle", o.shuffle)
        .raw("metadata", metadata_object(tr.metadata()));
    return done();
}

/// optimizer's lr from now on (invalid_hyperparameter when < 0 or not finite).
EMSCRIPTEN_KEEPALIVE const char* mk_trainer_set_lr(TrainerHandle* t, double lr) {
    const Status st = t->trainer.set_lr(lr);
    return st.ok() ? ok() : fail(st);
}

EMSCRIPTEN_KEEPALIVE void mk_trainer_set_training(TrainerHandle* t, int training) {
    t->trainer.set_training(training != 0);
}

/// args: metadata (the JS layer checked that every value is a string) → ok, or
/// limit_exceeded / bad_name (format.hpp's limits, which the checkpoint must meet).
EMSCRIPTEN_KEEPALIVE const char* mk_trainer_set_metadata(TrainerHandle* t, const std::uint8_t* args) {
    Metadata meta;
    Status st = Args(args).metadata(meta);
    for (const auto& [k, v] : meta) {
        if (!st.ok()) break;
        if (k.empty() || k.size() > max_metadata_key_bytes)
            st = error(Code::bad_name, "metadata key '" + k.substr(0, 64) + "' must be 1 to " +
                                           std::to_string(max_metadata_key_bytes) + " bytes");
        else if (v.size() > max_metadata_value_bytes)
            st = error(Code::limit_exceeded,
                       "metadata '" + k + "' is over " + std::to_string(max_metadata_value_bytes) + " bytes");
    }
    if (!st.ok()) return fail(st);
    t->trainer.metadata() = std::move(meta);
    return ok();
}

/// args: the file's metadata → { ok, ...info } once the checkpoint (the model in float32
/// plus its TRAINING section) has gone to mk_js_sink / mk_js_write (chunk_bytes > 0: in
/// chunks of that many bytes).
EMSCRIPTEN_KEEPALIVE const char* mk_trainer_to_bytes(TrainerHandle* t, const std::uint8_t* args, double chunk_bytes) {
    WriteOptions opt;
    Status st = Args(args).metadata(opt.metadata);
    if (!st.ok()) return fail(st);
    if (!(chunk_bytes >= 0 && chunk_bytes <= 9007199254740991.0) || chunk_bytes != std::floor(chunk_bytes))
        return fail(error(Code::invalid_argument, "chunkBytes must be a non-negative integer"));
    const Sequential& model = t->trainer.model();
    st = reserve(trainer_bytes(model), "the trainer's state");
    if (!st.ok()) return fail(st);
    const TrainingState state = t->trainer.state();
    WritePlan plan;
    st = plan_checkpoint(model, state, opt, plan);
    if (st.ok()) st = emit_to_js(plan, chunk_bytes);
    if (!st.ok()) return fail(st);
    Json j = success();
    info_fields(j, plan.info);
    j.boolean("training", true);
    return done();
}

}  // extern "C"

extern "C" {

/// The PyTorch general checkpoint of the trainer (torch_checkpoint.hpp's writer) → { ok, loss:
/// the 'loss' entry's text, or null when it has none }, the file at mk_js_sink (one Uint8Array). args: the 'loss'
/// entry's text ("": the last step's loss when there was one since the trainer was made, else the trainer's metadata
/// "loss" when present, else none) → invalid_argument when that text is not a number.
EMSCRIPTEN_KEEPALIVE const char* mk_trainer_to_torch(TrainerHandle* t, const std::uint8_t* args) {
    Args a(args);
    const std::string loss = a.str();
    const Sequential& model = t->trainer.model();
    // The state's copy (at most three buffers per parameter) and the file (the weights and those
    // buffers, with room for its growth): nine state dicts' worth, within trainer_bytes * 2.
    Status st = reserve(trainer_bytes(model) * 2, "the checkpoint");
    if (!st.ok()) return fail(st);
    TrainingState state = t->trainer.state();
    std::string value = loss;
    if (value.empty() && std::isfinite(t->trainer.last_loss())) value = format_double(t->trainer.last_loss());
    if (!value.empty()) {
        bool found = false;
        for (auto& kv : state.metadata)
            if (kv.first == "loss") kv.second = value, found = true;
        if (!found) state.metadata.emplace_back("loss", value);
    }
    std::vector<std::uint8_t> bytes;
    st = write_torch_checkpoint(model, state, bytes);
    if (!st.ok()) return fail(st);
    JsSink sink(bytes.size(), 0);
    sink.write(0, bytes.data(), bytes.size());
    const std::string* written = nullptr;
    for (const auto& kv : state.metadata)
        if (kv.first == "loss") written = &kv.second;
    success().raw("loss", string_or_null(written != nullptr, written ? *written : std::string()));
    return done();
}

}  // extern "C"
