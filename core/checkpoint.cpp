// The TRAINING section (tag 192, an optional section with data, format.hpp
// §4.7; docs/FORMAT.md §4.8): a TrainingState (trainer.hpp) beside the model.
//
//  1. Payload (after the data_bytes varint every section with data starts
//     with); f64 is an 8-byte IEEE-754 binary64, little-endian, bit for bit;
//     u64 8 bytes little-endian; varint / svarint / string as format.hpp §1.
//       version        u8 = 1 (another: unsupported_version; the model still reads)
//       optimizer      kind u8 (0 SGD, 1 Adam, 2 AdamW, 3 RMSprop);
//                      lr, momentum, dampening, weight_decay, beta1, beta2, eps, alpha: 8 × f64;
//                      flags u8 (bit 0 nesterov, 1 maximize, 2 amsgrad, 3 centered)
//       loss           kind u8 (0 MSELoss, 1 L1Loss, 2 SmoothL1Loss, 3 HuberLoss,
//                      4 CrossEntropyLoss, 5 NLLLoss, 6 BCEWithLogitsLoss, 7 BCELoss);
//                      reduction u8 (0 none, 1 mean, 2 sum); beta, delta, label_smoothing: 3 × f64;
//                      ignore_index svarint; weight: varint count + count × f32;
//                      pos_weight: varint count + count × f32
//       scheduler      flags u8 (bit 0 present, bit 1 per batch); when present:
//                      kind u8 (0 StepLR, 1 CosineAnnealingLR, 2 LinearLR);
//                      step_size svarint, gamma f64, T_max svarint, eta_min f64,
//                      start_factor f64, end_factor f64, total_iters svarint;
//                      state: last_epoch svarint, step_count svarint, base_lr f64, lr f64
//       run            max_grad_norm f64, seed u64, batch_size varint,
//                      flags u8 (bit 0 shuffle, bit 1 training);
//                      epoch, batch, steps: 3 × svarint (each ≥ 0);
//                      dropout_rng u64, shuffle_rng u64
//       params         varint count (= the model's parameters, parameters_of order),
//                      then count × (step svarint ≥ 0, flags u8 (bit 0 has_momentum_buffer),
//                      buffers u8 (bit i: buffer i stored; 0 momentum_buffer, 1 exp_avg,
//                      2 exp_avg_sq, 3 max_exp_avg_sq, 4 square_avg, 5 grad_avg),
//                      then per stored buffer, in bit order: length varint (floats) and
//                      offset varint (bytes into the section's data))
//       metadata       varint count ≤ 1024, count × (key string 1–256 bytes,
//                      value string ≤ 1 MiB), METADATA's rules (unique keys, no control
//                      characters; values may hold \n and \t)
//  2. Data: the stored buffers as raw float32 (little-endian), in params order
//     then bit order, back to back: each offset is the sum of the lengths
//     before it times 4 (so 4-byte aligned: the data starts on the file's
//     alignment), and data_bytes is exactly their total. No holes, no overlaps.
//  3. Must, before any state is handed back: every field read within the
//     payload (bad_section naming the field); no undefined flag bit, enum in
//     range (bad_section); every count bounded by the bytes left before
//     allocating; option ranges through validate_options, LrScheduler::create +
//     set_state and the loss's own checks (invalid_hyperparameter); a stored
//     buffer is one the optimizer uses (bad_section), and holds exactly its
//     parameter's size (shape_mismatch), as does the count of parameters;
//     after a step (step > 0) every buffer the optimizer uses is stored (SGD:
//     momentum_buffer stored exactly when has_momentum_buffer).
//  4. Compatibility: the model's sections, tensors and data are byte for byte
//     what write_model writes; a reader that does not know tag 192 loads the
//     plain model.
#include "checkpoint.hpp"

#include <cmath>
#include <cstring>
#include <unordered_set>

#include "decimal.hpp"
#include "utf8.hpp"
#include "wire.hpp"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the checkpoint reader assumes a little-endian host");

namespace modelkeep {

namespace {

constexpr std::uint8_t training_version = 1;
constexpr int buffer_count = 6;
const char* const buffer_names[buffer_count] = {"momentum_buffer", "exp_avg",    "exp_avg_sq",
                                                "max_exp_avg_sq",  "square_avg", "grad_avg"};
constexpr std::uint8_t optimizer_kinds = 0
#define MODELKEEP_X(name, torch_name) +1
    MODELKEEP_OPTIMIZERS(MODELKEEP_X)
#undef MODELKEEP_X
    ;
constexpr std::uint8_t loss_kinds = 0
#define MODELKEEP_X(name, torch_name) +1
    MODELKEEP_LOSSES(MODELKEEP_X)
#undef MODELKEEP_X
    ;
constexpr std::uint8_t scheduler_kinds = 0
#define MODELKEEP_X(name, torch_name) +1
    MODELKEEP_LR_SCHEDULERS(MODELKEEP_X)
#undef MODELKEEP_X
    ;
constexpr std::uint8_t reduction_kinds = 0
#define MODELKEEP_X(name) +1
    MODELKEEP_REDUCTIONS(MODELKEEP_X)
#undef MODELKEEP_X
    ;

std::vector<float>* buffer_of(ParamState& s, int i) {
    std::vector<float>* const all[buffer_count] = {&s.momentum_buffer, &s.exp_avg,    &s.exp_avg_sq,
                                                   &s.max_exp_avg_sq,  &s.square_avg, &s.grad_avg};
    return all[i];
}
const std::vector<float>& buffer_of(const ParamState& s, int i) { return *buffer_of(const_cast<ParamState&>(s), i); }

Status malformed(const std::string& what) { return error(Code::bad_section, "TRAINING section: " + what); }

// ---- writing ----

void put_floats(WireWriter& w, const std::vector<float>& v) {
    w.varint(v.size());
    for (float x : v) w.f32(x);
}

// ---- reading: a cursor over the payload; overrunning it is bad_section ----

struct In : WireReader {
    // A non-negative counter.
    Status counter(std::int64_t& v, const char* what) {
        MK_TRY(svarint(v, what));
        if (v < 0) return malformed(std::string(what) + " is " + std::to_string(v) + " (must be >= 0)");
        return Status::success();
    }
    Status flags(std::uint8_t& v, std::uint8_t allowed, const char* what) {
        MK_TRY(u8(v, what));
        if (v & ~allowed) return malformed(std::string(what) + " has undefined bits set (" + std::to_string(v) + ")");
        return Status::success();
    }
    Status kind(std::uint8_t& v, std::uint8_t kinds, const char* what) {
        MK_TRY(u8(v, what));
        if (v >= kinds)
            return malformed(std::string(what) + " " + std::to_string(v) + " is not one of 0.." +
                             std::to_string(kinds - 1));
        return Status::success();
    }
    // `count` f32 values, the count bounded by the bytes left before allocating.
    Status floats(std::vector<float>& v, const char* what) {
        std::uint64_t n;
        MK_TRY(varint(n, what));
        if (n > left() / 4) return overrun(what);
        v.resize(std::size_t(n));
        if (n) std::memcpy(v.data(), data + pos, std::size_t(n) * 4);
        pos += std::size_t(n) * 4;
        return Status::success();
    }
};

// METADATA's rules (format.hpp §4), for the writer and the reader alike.
Status check_metadata(const Metadata& m) {
    if (m.size() > max_metadata_entries)
        return error(Code::limit_exceeded, "TRAINING section: " + std::to_string(m.size()) +
                                               " metadata entries, over the cap of " +
                                               std::to_string(max_metadata_entries));
    std::unordered_set<std::string> keys;
    for (const auto& [k, v] : m) {
        if (k.empty() || k.size() > max_metadata_key_bytes || !valid_utf8(k))
            return error(Code::bad_name,
                         "TRAINING section: metadata key '" + escape_text(k) + "' must be 1 to 256 bytes of UTF-8");
        if (first_control(k) >= 0)
            return error(Code::bad_name,
                         "TRAINING section: metadata key '" + escape_text(k) + "' holds a control character");
        if (v.size() > max_metadata_value_bytes || !valid_utf8(v))
            return error(Code::bad_name,
                         "TRAINING section: metadata value of '" + escape_text(k) + "' must be at most 1 MiB of UTF-8");
        if (first_control(v, true) >= 0)
            return error(Code::bad_name, "TRAINING section: metadata value of '" + escape_text(k) +
                                             "' holds a control character other than newline and tab");
        if (!keys.insert(k).second)
            return error(Code::duplicate_name, "TRAINING section: metadata key '" + escape_text(k) + "' appears twice");
    }
    return Status::success();
}

Status bad_loss(const char* option, double v, const char* rule) {
    return error(Code::invalid_hyperparameter, std::string("TRAINING section: loss option ") + option + " is " +
                                                   format_double(v) + " (" + rule + ")");
}

// Everything a state must satisfy against `model` (spec §3 but the byte-level
// rules), shared by the writer (write only what reads back) and the reader.
Status check_state(const Sequential& model, const TrainingState& s) {
    const TrainerOptions& o = s.options;
    MK_TRY(validate_options(o.optimizer));
    const LossOptions& l = o.loss;
    if (!(l.beta >= 0.0) || !std::isfinite(l.beta)) return bad_loss("beta", l.beta, "must be finite and >= 0");
    if (!(l.delta > 0.0) || !std::isfinite(l.delta)) return bad_loss("delta", l.delta, "must be finite and > 0");
    if (!(l.label_smoothing >= 0.0 && l.label_smoothing <= 1.0))
        return bad_loss("label_smoothing", l.label_smoothing, "must be in [0, 1]");
    if (l.weight.size() > max_tensor_elements || l.pos_weight.size() > max_tensor_elements)
        return error(Code::limit_exceeded, "TRAINING section: a loss weight vector is over " +
                                               std::to_string(max_tensor_elements) + " values");
    if (o.has_scheduler) {
        LrScheduler sched;
        MK_TRY(LrScheduler::create(o.scheduler, s.scheduler.base_lr, sched));
        MK_TRY(sched.set_state(s.scheduler));
    }
    if (!(o.max_grad_norm >= 0.0))
        return error(Code::invalid_hyperparameter,
                     "TRAINING section: max_grad_norm is " + format_double(o.max_grad_norm) + " (must be >= 0)");
    if (o.batch_size == 0) return error(Code::invalid_hyperparameter, "TRAINING section: batch_size is 0");
    for (const std::int64_t c : {s.epoch, s.batch, s.steps})
        if (c < 0 || c > max_state_count)
            return malformed("a counter (epoch, batch, steps) is " + std::to_string(c) + ", not in [0, 2^53]");
    MK_TRY(check_metadata(s.metadata));

    // The parameters, parameters_of order: each layer's tensors but its buffers (running stats).
    std::vector<std::size_t> sizes;
    for (const Layer& layer : model.layers())
        for (const ParamInfo& info : layer_params(layer.spec))
            if (!info.buffer) sizes.push_back(std::size_t(numel(info.shape)));
    if (s.params.size() != sizes.size())
        return error(Code::shape_mismatch, "TRAINING section: optimizer state for " + std::to_string(s.params.size()) +
                                               " parameters but the model has " + std::to_string(sizes.size()));
    bool used[buffer_count] = {};
    for (const char* key : state_keys(o.optimizer))
        for (int b = 0; b < buffer_count; ++b)
            if (std::strcmp(key, buffer_names[b]) == 0) used[b] = true;
    const bool sgd = o.optimizer.kind == OptimizerKind::sgd;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        const ParamState& p = s.params[i];
        const std::string at = "TRAINING section: parameter " + std::to_string(i) + ": ";
        if (p.step < 0 || p.step > max_state_count)
            return malformed("parameter " + std::to_string(i) + ": step " + std::to_string(p.step));
        for (int b = 0; b < buffer_count; ++b) {
            const std::vector<float>& buf = buffer_of(p, b);
            if (buf.empty()) {
                const bool required =
                    sgd ? b == 0 && p.has_momentum_buffer && o.optimizer.momentum != 0.0 : used[b] && p.step > 0;
                if (required && sizes[i] != 0)
                    return error(Code::shape_mismatch,
                                 at + buffer_names[b] + " is missing (step " + std::to_string(p.step) + ")");
                continue;
            }
            if (!used[b] || (sgd && (o.optimizer.momentum == 0.0 || !p.has_momentum_buffer)))
                return malformed("parameter " + std::to_string(i) + ": " + buffer_names[b] + " is stored but " +
                                 optimizer_name(o.optimizer.kind) + " with these options has none");
            if (buf.size() != sizes[i])
                return error(Code::shape_mismatch, at + buffer_names[b] + " holds " + std::to_string(buf.size()) +
                                                       " values but the parameter has " + std::to_string(sizes[i]));
        }
    }
    return Status::success();
}

// The payload after data_bytes (spec §1) and the data's pieces (§2), pointing into `s`.
void encode(const TrainingState& s, std::vector<std::uint8_t>& payload, std::vector<DataPiece>& pieces) {
    WireWriter w{payload};
    const TrainerOptions& o = s.options;
    const OptimizerOptions& op = o.optimizer;
    w.u8(training_version);
    w.u8(std::uint8_t(op.kind));
    for (double v : {op.lr, op.momentum, op.dampening, op.weight_decay, op.beta1, op.beta2, op.eps, op.alpha}) w.f64(v);
    w.u8(std::uint8_t((op.nesterov ? 1 : 0) | (op.maximize ? 2 : 0) | (op.amsgrad ? 4 : 0) | (op.centered ? 8 : 0)));
    const LossOptions& l = o.loss;
    w.u8(std::uint8_t(l.kind));
    w.u8(std::uint8_t(l.reduction));
    for (double v : {l.beta, l.delta, l.label_smoothing}) w.f64(v);
    w.svarint(l.ignore_index);
    put_floats(w, l.weight);
    put_floats(w, l.pos_weight);
    w.u8(std::uint8_t((o.has_scheduler ? 1 : 0) | (o.scheduler_per_batch ? 2 : 0)));
    if (o.has_scheduler) {
        const SchedulerOptions& so = o.scheduler;
        w.u8(std::uint8_t(so.kind));
        w.svarint(so.step_size);
        w.f64(so.gamma);
        w.svarint(so.T_max);
        w.f64(so.eta_min);
        w.f64(so.start_factor);
        w.f64(so.end_factor);
        w.svarint(so.total_iters);
        w.svarint(s.scheduler.last_epoch);
        w.svarint(s.scheduler.step_count);
        w.f64(s.scheduler.base_lr);
        w.f64(s.scheduler.lr);
    }
    w.f64(o.max_grad_norm);
    w.u64(o.seed);
    w.varint(o.batch_size);
    w.u8(std::uint8_t((o.shuffle ? 1 : 0) | (s.training ? 2 : 0)));
    w.svarint(s.epoch);
    w.svarint(s.batch);
    w.svarint(s.steps);
    w.u64(s.dropout_rng);
    w.u64(s.shuffle_rng);
    w.varint(s.params.size());
    std::uint64_t offset = 0;
    for (const ParamState& p : s.params) {
        w.svarint(p.step);
        w.u8(p.has_momentum_buffer ? 1 : 0);
        std::uint8_t mask = 0;
        for (int b = 0; b < buffer_count; ++b)
            if (!buffer_of(p, b).empty()) mask |= std::uint8_t(1u << b);
        w.u8(mask);
        for (int b = 0; b < buffer_count; ++b) {
            const std::vector<float>& buf = buffer_of(p, b);
            if (buf.empty()) continue;
            w.varint(buf.size());
            w.varint(offset);
            offset += buf.size() * 4;
            pieces.push_back({buf.data(), buf.size() * 4});
        }
    }
    w.varint(s.metadata.size());
    for (const auto& [k, v] : s.metadata) {
        w.str(k);
        w.str(v);
    }
}

// Spec §1–§2: the payload and data into `s`, every field checked as it is read.
Status decode(const std::vector<std::uint8_t>& payload, const std::vector<std::uint8_t>& data, TrainingState& s) {
    In c{{payload.data(), 0, payload.size(), "TRAINING"}};
    std::uint8_t version = 0, kind = 0, flags = 0;
    MK_TRY(c.u8(version, "version"));
    if (version != training_version)
        return error(Code::unsupported_version, "TRAINING section version " + std::to_string(version) +
                                                    "; this reader reads version " + std::to_string(training_version) +
                                                    " (the model itself reads with read_model)");
    TrainerOptions& o = s.options;
    OptimizerOptions& op = o.optimizer;
    MK_TRY(c.kind(kind, optimizer_kinds, "optimizer kind"));
    op.kind = OptimizerKind(kind);
    MK_TRY(c.f64(op.lr, "optimizer lr"));
    MK_TRY(c.f64(op.momentum, "optimizer momentum"));
    MK_TRY(c.f64(op.dampening, "optimizer dampening"));
    MK_TRY(c.f64(op.weight_decay, "optimizer weight_decay"));
    MK_TRY(c.f64(op.beta1, "optimizer beta1"));
    MK_TRY(c.f64(op.beta2, "optimizer beta2"));
    MK_TRY(c.f64(op.eps, "optimizer eps"));
    MK_TRY(c.f64(op.alpha, "optimizer alpha"));
    MK_TRY(c.flags(flags, 15, "optimizer flags"));
    op.nesterov = flags & 1;
    op.maximize = flags & 2;
    op.amsgrad = flags & 4;
    op.centered = flags & 8;
    LossOptions& l = o.loss;
    MK_TRY(c.kind(kind, loss_kinds, "loss kind"));
    l.kind = LossKind(kind);
    MK_TRY(c.kind(kind, reduction_kinds, "loss reduction"));
    l.reduction = Reduction(kind);
    MK_TRY(c.f64(l.beta, "loss beta"));
    MK_TRY(c.f64(l.delta, "loss delta"));
    MK_TRY(c.f64(l.label_smoothing, "loss label_smoothing"));
    MK_TRY(c.svarint(l.ignore_index, "loss ignore_index"));
    MK_TRY(c.floats(l.weight, "loss weight"));
    MK_TRY(c.floats(l.pos_weight, "loss pos_weight"));
    MK_TRY(c.flags(flags, 3, "scheduler flags"));
    o.has_scheduler = flags & 1;
    o.scheduler_per_batch = flags & 2;
    if (o.has_scheduler) {
        SchedulerOptions& so = o.scheduler;
        MK_TRY(c.kind(kind, scheduler_kinds, "scheduler kind"));
        so.kind = SchedulerKind(kind);
        MK_TRY(c.svarint(so.step_size, "scheduler step_size"));
        MK_TRY(c.f64(so.gamma, "scheduler gamma"));
        MK_TRY(c.svarint(so.T_max, "scheduler T_max"));
        MK_TRY(c.f64(so.eta_min, "scheduler eta_min"));
        MK_TRY(c.f64(so.start_factor, "scheduler start_factor"));
        MK_TRY(c.f64(so.end_factor, "scheduler end_factor"));
        MK_TRY(c.svarint(so.total_iters, "scheduler total_iters"));
        MK_TRY(c.svarint(s.scheduler.last_epoch, "scheduler last_epoch"));
        MK_TRY(c.svarint(s.scheduler.step_count, "scheduler step_count"));
        MK_TRY(c.f64(s.scheduler.base_lr, "scheduler base_lr"));
        MK_TRY(c.f64(s.scheduler.lr, "scheduler lr"));
    }
    MK_TRY(c.f64(o.max_grad_norm, "max_grad_norm"));
    MK_TRY(c.u64(o.seed, "seed"));
    std::uint64_t batch_size = 0;
    MK_TRY(c.varint(batch_size, "batch_size"));
    if (batch_size > SIZE_MAX) return malformed("batch_size " + std::to_string(batch_size) + " does not fit memory");
    o.batch_size = std::size_t(batch_size);
    MK_TRY(c.flags(flags, 3, "run flags"));
    o.shuffle = flags & 1;
    s.training = flags & 2;
    MK_TRY(c.counter(s.epoch, "epoch"));
    MK_TRY(c.counter(s.batch, "batch"));
    MK_TRY(c.counter(s.steps, "steps"));
    MK_TRY(c.u64(s.dropout_rng, "dropout_rng"));
    MK_TRY(c.u64(s.shuffle_rng, "shuffle_rng"));

    std::uint64_t n = 0;
    MK_TRY(c.varint(n, "parameter count"));
    if (n > max_tensors)
        return malformed(std::to_string(n) + " parameters, over the cap of " + std::to_string(max_tensors));
    if (n > c.left() / 3) return c.overrun("parameter records");  // each takes at least 3 bytes
    s.params.assign(std::size_t(n), ParamState{});
    std::uint64_t offset = 0;  // where the next buffer must start in the data
    for (std::size_t i = 0; i < s.params.size(); ++i) {
        ParamState& p = s.params[i];
        MK_TRY(c.counter(p.step, "parameter step"));
        MK_TRY(c.flags(flags, 1, "parameter flags"));
        p.has_momentum_buffer = flags & 1;
        std::uint8_t mask = 0;
        MK_TRY(c.flags(mask, (1u << buffer_count) - 1, "parameter buffers"));
        for (int b = 0; b < buffer_count; ++b) {
            if (!(mask & (1u << b))) continue;
            std::uint64_t length = 0, at = 0;
            MK_TRY(c.varint(length, "buffer length"));
            MK_TRY(c.varint(at, "buffer offset"));
            const std::string what = "parameter " + std::to_string(i) + " " + buffer_names[b];
            if (length == 0) return malformed(what + " is stored empty");
            if (at != offset)
                return malformed(what + " is at data offset " + std::to_string(at) + ", not " + std::to_string(offset) +
                                 " (buffers are back to back)");
            if (length > (data.size() - offset) / 4)  // bounded by the data before allocating
                return malformed(what + " of " + std::to_string(length) + " floats runs past the section's " +
                                 std::to_string(data.size()) + " bytes of data");
            std::vector<float>& buf = *buffer_of(p, b);
            buf.resize(std::size_t(length));
            std::memcpy(buf.data(), data.data() + offset, std::size_t(length) * 4);
            offset += length * 4;
        }
    }
    if (offset != data.size())
        return malformed("the buffers hold " + std::to_string(offset) + " bytes but the section has " +
                         std::to_string(data.size()) + " bytes of data");

    MK_TRY(c.varint(n, "metadata count"));
    if (n > max_metadata_entries)
        return error(Code::limit_exceeded, "TRAINING section: " + std::to_string(n) +
                                               " metadata entries, over the cap of " +
                                               std::to_string(max_metadata_entries));
    if (n > c.left() / 3) return c.overrun("metadata entries");  // key ≥ 2 bytes, value ≥ 1
    for (std::uint64_t i = 0; i < n; ++i) {
        std::string key, value;
        MK_TRY(c.str(key, max_metadata_key_bytes, "metadata key"));
        MK_TRY(c.str(value, max_metadata_value_bytes, "metadata value"));
        s.metadata.emplace_back(std::move(key), std::move(value));
    }
    if (c.pos != c.end) return malformed(std::to_string(c.left()) + " unread bytes at the payload's end");
    return Status::success();
}

}  // namespace

Status plan_checkpoint(const Sequential& model, const TrainingState& state, const WriteOptions& options,
                       WritePlan& plan) {
    MK_TRY(check_state(model, state));
    WriteOptions with = options;
    ExtraSection training;
    training.tag = training_section_tag;
    encode(state, training.payload, training.data);
    with.sections.insert(with.sections.begin(), std::move(training));  // 192: the first tag with data
    return plan_model(model, with, plan);
}

Status write_checkpoint(const Sequential& model, const TrainingState& state, const WriteOptions& options,
                        std::vector<std::uint8_t>& out) {
    WritePlan plan;
    MK_TRY(plan_checkpoint(model, state, options, plan));
    std::vector<std::uint8_t> file(std::size_t(plan.info.file_bytes));
    MemorySink sink(file.data());
    emit_file(plan, sink);
    out = std::move(file);
    return Status::success();
}

std::uint64_t read_checkpoint_bytes(const FileInfo& info) {
    std::uint64_t data = 0;
    for (const SectionData& d : info.section_data)
        if (d.tag == training_section_tag) data = d.bytes;
    // Per payload byte at most: a ParamState per 3 bytes, a metadata entry (two
    // strings, a key in check_state's set) per 3 bytes, a loss weight per 4.
    const std::uint64_t per_payload_byte = sizeof(ParamState) / 3 + 64;
    return read_bytes(info, true, true) + data + info.header_bytes * per_payload_byte + (64 << 10);
}

Status read_checkpoint(const ByteSource& source, Sequential& model, TrainingState& state, bool& has_training,
                       Metadata* metadata, FileInfo* file) {
    std::vector<SectionContent> sections(1);
    sections[0].tag = training_section_tag;
    Sequential m;
    Metadata md;
    FileInfo info;
    MK_TRY(read_model(source, m, &md, &info, &sections));
    TrainingState s;
    const bool present = sections[0].present;
    if (present) {
        MK_TRY(decode(sections[0].payload, sections[0].data, s));
        MK_TRY(check_state(m, s));
    }
    // Everything checked: hand it back.
    model = std::move(m);
    if (present) state = std::move(s);
    has_training = present;
    if (metadata) *metadata = std::move(md);
    if (file) *file = std::move(info);
    return Status::success();
}

}  // namespace modelkeep
