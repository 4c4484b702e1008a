// The TRAINING section (checkpoint.hpp): bit-exact round trips of every field, the
// compatibility rule (a checkpoint is the plain model file too), every truncation
// and payload flip of a small checkpoint (an error or a state that re-encodes to
// exactly those bytes, never a crash), and hand-written payloads for each refusal.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "alloc_tracking.hpp"
#include "checkpoint.hpp"
#include "counting_source.hpp"
#include "crc32.hpp"
#include "fixtures.hpp"
#include "format_paths.hpp"
#include "train.hpp"

using namespace modelkeep;
using mkt::Bytes;
using mkt::Writer;

namespace {

std::uint64_t bits(double v) {
    std::uint64_t u;
    std::memcpy(&u, &v, 8);
    return u;
}

// The model's parameter sizes, as the trainer sees them (train.hpp).
std::vector<std::size_t> param_sizes(const Sequential& m) {
    std::vector<Tensor> values;
    EXPECT_TRUE(parameters_of(m, values).ok());
    std::vector<std::size_t> sizes;
    for (const Tensor& t : values) sizes.push_back(t.size());
    return sizes;
}

// n floats, distinct per (seed, i), with a -0.0 and a NaN carrying a payload among them.
std::vector<float> buffer(std::size_t n, int seed) {
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = float(seed) * 0.37f - float(i) * 1.0e-3f;
    if (n > 1) v[1] = -0.0f;
    if (n > 2) {
        const std::uint32_t nan = 0x7fc01234u;
        std::memcpy(&v[2], &nan, 4);
    }
    return v;
}

// A state with every field away from its default, for these optimizer options.
TrainingState full_state(const Sequential& m, const OptimizerOptions& opt) {
    TrainingState s;
    s.options.optimizer = opt;
    LossOptions& l = s.options.loss;
    l.kind = LossKind::cross_entropy;
    l.reduction = Reduction::sum;
    l.beta = 0.3;
    l.delta = 2.0 / 3.0;
    l.ignore_index = -7;
    l.label_smoothing = 0.1;
    l.weight = {0.5f, 1.5f, -0.0f};
    l.pos_weight = {2.0f};
    s.options.has_scheduler = true;
    s.options.scheduler = cosine_annealing_lr_options(17, 1e-5);
    s.options.scheduler_per_batch = true;
    s.options.max_grad_norm = 0.75;
    s.options.seed = 0xfedcba9876543210ull;
    s.options.batch_size = 13;
    s.options.shuffle = false;
    s.scheduler = SchedulerState{4, 5, opt.lr, opt.lr * 0.8123456789};
    s.epoch = 3;
    s.batch = 2;
    s.steps = 41;
    s.dropout_rng = 0x0123456789abcdefull;
    s.shuffle_rng = 0xdeadbeefcafef00dull;
    s.training = false;
    s.metadata = {{"loss", "0.25"}, {"history", "1\t2\n3"}, {"empty", ""}};
    const std::vector<std::size_t> sizes = param_sizes(m);
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        ParamState p;
        p.step = std::int64_t(i) + 5;
        for (const char* key : state_keys(opt))
            if (std::vector<float>* b = state_buffer(p, key))
                *b = buffer(sizes[i], int(i) * 10 + int(b - &p.momentum_buffer));
        if (opt.kind == OptimizerKind::sgd) {  // SGD: the buffer exists after a step with momentum
            p.has_momentum_buffer = i % 2 == 0;
            if (!p.has_momentum_buffer) p.momentum_buffer.clear();
        }
        s.params.push_back(std::move(p));
    }
    return s;
}

void expect_same_floats(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
    ASSERT_EQ(a.size(), b.size()) << what;
    EXPECT_TRUE(a.empty() || std::memcmp(a.data(), b.data(), a.size() * 4) == 0) << what;
}

void expect_same_state(const TrainingState& a, const TrainingState& b) {
    const OptimizerOptions &o = a.options.optimizer, &p = b.options.optimizer;
    EXPECT_EQ(o.kind, p.kind);
    for (auto [x, y] : {std::pair{o.lr, p.lr},
                        {o.momentum, p.momentum},
                        {o.dampening, p.dampening},
                        {o.weight_decay, p.weight_decay},
                        {o.beta1, p.beta1},
                        {o.beta2, p.beta2},
                        {o.eps, p.eps},
                        {o.alpha, p.alpha}})
        EXPECT_EQ(bits(x), bits(y));
    EXPECT_EQ(o.nesterov, p.nesterov);
    EXPECT_EQ(o.maximize, p.maximize);
    EXPECT_EQ(o.amsgrad, p.amsgrad);
    EXPECT_EQ(o.centered, p.centered);
    const LossOptions &l = a.options.loss, &m = b.options.loss;
    EXPECT_EQ(l.kind, m.kind);
    EXPECT_EQ(l.reduction, m.reduction);
    EXPECT_EQ(bits(l.beta), bits(m.beta));
    EXPECT_EQ(bits(l.delta), bits(m.delta));
    EXPECT_EQ(bits(l.label_smoothing), bits(m.label_smoothing));
    EXPECT_EQ(l.ignore_index, m.ignore_index);
    expect_same_floats(l.weight, m.weight, "loss weight");
    expect_same_floats(l.pos_weight, m.pos_weight, "loss pos_weight");
    EXPECT_EQ(a.options.has_scheduler, b.options.has_scheduler);
    EXPECT_EQ(a.options.scheduler_per_batch, b.options.scheduler_per_batch);
    if (a.options.has_scheduler) {
        const SchedulerOptions &s = a.options.scheduler, &t = b.options.scheduler;
        EXPECT_EQ(s.kind, t.kind);
        EXPECT_EQ(s.step_size, t.step_size);
        EXPECT_EQ(bits(s.gamma), bits(t.gamma));
        EXPECT_EQ(s.T_max, t.T_max);
        EXPECT_EQ(bits(s.eta_min), bits(t.eta_min));
        EXPECT_EQ(bits(s.start_factor), bits(t.start_factor));
        EXPECT_EQ(bits(s.end_factor), bits(t.end_factor));
        EXPECT_EQ(s.total_iters, t.total_iters);
        EXPECT_EQ(a.scheduler.last_epoch, b.scheduler.last_epoch);
        EXPECT_EQ(a.scheduler.step_count, b.scheduler.step_count);
        EXPECT_EQ(bits(a.scheduler.base_lr), bits(b.scheduler.base_lr));
        EXPECT_EQ(bits(a.scheduler.lr), bits(b.scheduler.lr));
    }
    EXPECT_EQ(bits(a.options.max_grad_norm), bits(b.options.max_grad_norm));
    EXPECT_EQ(a.options.seed, b.options.seed);
    EXPECT_EQ(a.options.batch_size, b.options.batch_size);
    EXPECT_EQ(a.options.shuffle, b.options.shuffle);
    EXPECT_EQ(a.epoch, b.epoch);
    EXPECT_EQ(a.batch, b.batch);
    EXPECT_EQ(a.steps, b.steps);
    EXPECT_EQ(a.dropout_rng, b.dropout_rng);
    EXPECT_EQ(a.shuffle_rng, b.shuffle_rng);
    EXPECT_EQ(a.training, b.training);
    EXPECT_EQ(a.metadata, b.metadata);
    ASSERT_EQ(a.params.size(), b.params.size());
    for (std::size_t i = 0; i < a.params.size(); ++i) {
        const ParamState &x = a.params[i], &y = b.params[i];
        const std::string at = "parameter " + std::to_string(i);
        EXPECT_EQ(x.step, y.step) << at;
        EXPECT_EQ(x.has_momentum_buffer, y.has_momentum_buffer) << at;
        expect_same_floats(x.momentum_buffer, y.momentum_buffer, at + " momentum_buffer");
        expect_same_floats(x.exp_avg, y.exp_avg, at + " exp_avg");
        expect_same_floats(x.exp_avg_sq, y.exp_avg_sq, at + " exp_avg_sq");
        expect_same_floats(x.max_exp_avg_sq, y.max_exp_avg_sq, at + " max_exp_avg_sq");
        expect_same_floats(x.square_avg, y.square_avg, at + " square_avg");
        expect_same_floats(x.grad_avg, y.grad_avg, at + " grad_avg");
    }
}

Status read_both(const Bytes& b, Sequential& model, TrainingState& state, bool& has, FileInfo* info = nullptr) {
    const Bytes exact(b);  // exactly sized, for ASan
    return read_checkpoint(MemorySource(exact.data(), exact.size()), model, state, has, nullptr, info);
}

OptimizerOptions adam_amsgrad() {
    OptimizerOptions o = adam_options();
    o.lr = 3e-4;
    o.beta1 = 0.85;
    o.beta2 = 0.995;
    o.eps = 1e-7;
    o.weight_decay = 0.01;
    o.amsgrad = true;
    o.maximize = true;
    return o;
}

OptimizerOptions sgd_momentum() {
    OptimizerOptions o = sgd_options(0.1);
    o.momentum = 0.9;
    o.dampening = 0.0;
    o.nesterov = true;
    o.weight_decay = 1e-4;
    return o;
}

OptimizerOptions rmsprop_centered() {
    OptimizerOptions o = rmsprop_options();
    o.alpha = 0.9;
    o.momentum = 0.5;
    o.centered = true;
    return o;
}

// Where the TRAINING section's payload is in `file` ([begin, end) of the header).
std::pair<std::size_t, std::size_t> training_payload(const Bytes& file) {
    FileInfo info;
    EXPECT_TRUE(read_info(file.data(), file.size(), false, info).ok());
    std::size_t pos = fixed_header_bytes;
    while (pos < info.header_bytes) {
        const std::uint8_t tag = file[pos++];
        std::uint64_t len = 0;
        for (int shift = 0;; shift += 7) {
            const std::uint8_t b = file[pos++];
            len |= std::uint64_t(b & 0x7F) << shift;
            if (!(b & 0x80)) break;
        }
        if (tag == training_section_tag) return {pos, pos + std::size_t(len)};
        pos += std::size_t(len);
    }
    ADD_FAILURE() << "no TRAINING section";
    return {0, 0};
}

void fix_crcs(Bytes& b) {
    std::uint32_t header_len = 0;
    for (int i = 0; i < 4; ++i) header_len |= std::uint32_t(b[12 + i]) << (8 * i);
    const std::uint32_t data = crc32(b.data() + header_len, b.size() - header_len);
    for (int i = 0; i < 4; ++i) b[16 + i] = std::uint8_t(data >> (8 * i));
    const std::uint32_t head = crc32_update(crc32(b.data(), 8), b.data() + 12, header_len - 12);
    for (int i = 0; i < 4; ++i) b[8 + i] = std::uint8_t(head >> (8 * i));
}

}  // namespace

TEST(Checkpoint, RoundTripEveryFieldBitExact) {
    const Sequential m = mkt::tiny_model();
    for (const OptimizerOptions& opt : {adam_amsgrad(), sgd_momentum(), rmsprop_centered()}) {
        SCOPED_TRACE(optimizer_name(opt.kind));
        const TrainingState s = full_state(m, opt);
        WriteOptions wo;
        wo.metadata = {{"note", "file metadata"}};
        Bytes file;
        ASSERT_TRUE(write_checkpoint(m, s, wo, file).ok());
        Sequential back;
        TrainingState got;
        bool has = false;
        Metadata md;
        FileInfo info;
        ASSERT_TRUE(read_checkpoint(MemorySource(file.data(), file.size()), back, got, has, &md, &info).ok());
        EXPECT_TRUE(has);
        expect_same_state(s, got);
        EXPECT_EQ(md, wo.metadata);
        EXPECT_EQ(info.minor, 2);
        EXPECT_TRUE(info.data_checked);
        EXPECT_TRUE(mkt::same_state_dict(back.state_dict(), m.state_dict()));
        Bytes again;  // deterministic: the state read back writes the same bytes
        ASSERT_TRUE(write_checkpoint(back, got, wo, again).ok());
        EXPECT_EQ(again, file);
    }
}

TEST(Checkpoint, ParamsWithoutStateYetRoundTrip) {
    const Sequential m = mkt::tiny_model();
    TrainingState s;  // defaults: Adam, no step taken, no buffers, no schedule
    s.params.resize(param_sizes(m).size());
    Bytes file;
    ASSERT_TRUE(write_checkpoint(m, s, WriteOptions{}, file).ok());
    FileInfo info;
    ASSERT_TRUE(read_info(file.data(), file.size(), true, info).ok());
    ASSERT_EQ(info.section_data.size(), 1u);
    EXPECT_EQ(info.section_data[0].bytes, 0u);
    Sequential back;
    TrainingState got;
    bool has = false;
    ASSERT_TRUE(read_both(file, back, got, has).ok());
    EXPECT_TRUE(has);
    expect_same_state(s, got);
}

// From a source outside memory (as JavaScript holds a file): one pass, each byte read
// once, and the same state as from memory.
TEST(Checkpoint, ReadsFromASourceInOnePass) {
    const Sequential m = mkt::tiny_model();
    const TrainingState s = full_state(m, adam_amsgrad());
    Bytes file;
    ASSERT_TRUE(write_checkpoint(m, s, WriteOptions{}, file).ok());
    const mkt::CountingSource source(file);
    Sequential back;
    TrainingState got;
    bool has = false;
    FileInfo info;
    ASSERT_TRUE(read_checkpoint(source, back, got, has, nullptr, &info).ok());
    ASSERT_TRUE(has);
    expect_same_state(s, got);
    EXPECT_EQ(source.most_reads_of_a_byte(), 1u);
    EXPECT_EQ(source.unread_bytes(), 0u);
    EXPECT_GE(read_bytes(info, true, true), read_bytes(info, true) + info.section_data[0].bytes);
}

// Memory: emitting holds at most emit_bytes (the buffers are written from the state,
// not copied); reading holds at most read_checkpoint_bytes.
TEST(Checkpoint, MemoryIsWhatTheBoundsSay) {
    const Sequential m = mkt::make_model("fc1=Linear(64,128),act=ReLU,fc2=Linear(128,32)");
    const TrainingState s = full_state(m, adam_amsgrad());  // ~3 × 12.4k floats of state
    WritePlan plan;
    ASSERT_TRUE(plan_checkpoint(m, s, WriteOptions{}, plan).ok());
    ASSERT_GT(plan.info.section_data[0].bytes, 100000u);
    Bytes file(std::size_t(plan.info.file_bytes));
    MemorySink sink(file.data());
    const std::uint64_t predicted = emit_bytes(plan, 4096);
    {
        const mkt::AllocScope scope;
        emit_file(plan, sink, 4096);
        EXPECT_LE(scope.peak(), predicted);
    }
    EXPECT_LT(predicted, plan.info.section_data[0].bytes);
    FileInfo info;
    ASSERT_TRUE(read_info(file.data(), file.size(), false, info).ok());
    const mkt::CountingSource source(file);
    Sequential back;
    TrainingState got;
    bool has = false;
    std::uint64_t peak = 0;
    {
        const mkt::AllocScope scope;
        ASSERT_TRUE(read_checkpoint(source, back, got, has).ok());
        peak = scope.peak();
    }
    EXPECT_LE(peak, read_checkpoint_bytes(info));
    EXPECT_GE(peak, 2 * info.section_data[0].bytes);  // the raw data and the decoded buffers, at once
    expect_same_state(s, got);
}

// The compatibility rule: a checkpoint is the model file too.
TEST(Checkpoint, ReadAsAPlainModel) {
    const Sequential m = mkt::tiny_model();
    const TrainingState s = full_state(m, adam_amsgrad());
    for (DType dtype : {DType::f32, DType::f16, DType::int8}) {
        WriteOptions wo;
        wo.dtype = dtype;
        Bytes ckpt, plain;
        ASSERT_TRUE(write_checkpoint(m, s, wo, ckpt).ok());
        ASSERT_TRUE(write_model(m, wo, plain).ok());
        Sequential a, b;
        ASSERT_TRUE(mkt::read_model_both(ckpt, a).ok());
        ASSERT_TRUE(mkt::read_model_both(plain, b).ok());
        EXPECT_TRUE(mkt::same_state_dict(a.state_dict(), b.state_dict()));
        FileInfo ci, pi;
        ASSERT_TRUE(mkt::read_info_both(ckpt, true, ci).ok());
        ASSERT_TRUE(mkt::read_info_both(plain, true, pi).ok());
        ASSERT_EQ(ci.section_data.size(), 1u);
        EXPECT_EQ(ci.section_data[0].tag, training_section_tag);
        EXPECT_GT(ci.section_data[0].bytes, 0u);
        EXPECT_EQ(ci.minor, 2);
        EXPECT_TRUE(pi.section_data.empty());
        ASSERT_EQ(ci.tensors.size(), pi.tensors.size());
        for (std::size_t i = 0; i < ci.tensors.size(); ++i) {  // the same stored bytes, tensor by tensor
            ASSERT_EQ(ci.tensors[i].bytes, pi.tensors[i].bytes);
            EXPECT_TRUE(std::equal(plain.begin() + pi.tensors[i].offset,
                                   plain.begin() + pi.tensors[i].offset + pi.tensors[i].bytes,
                                   ckpt.begin() + ci.tensors[i].offset));
        }
    }
    // And a plain model file is a checkpoint without training: the state untouched.
    Bytes plain;
    ASSERT_TRUE(write_model(m, WriteOptions{}, plain).ok());
    Sequential back;
    TrainingState untouched;
    untouched.epoch = 12345;
    bool has = true;
    ASSERT_TRUE(read_both(plain, back, untouched, has).ok());
    EXPECT_FALSE(has);
    EXPECT_EQ(untouched.epoch, 12345);
    EXPECT_TRUE(mkt::same_state_dict(back.state_dict(), m.state_dict()));
}

TEST(Checkpoint, WriterRefusesWhatWouldNotReadBack) {
    const Sequential m = mkt::tiny_model();
    Bytes out;
    TrainingState s = full_state(m, adam_amsgrad());
    s.params.pop_back();
    EXPECT_EQ(write_checkpoint(m, s, WriteOptions{}, out).code(), Code::shape_mismatch);
    s = full_state(m, adam_amsgrad());
    s.params[0].exp_avg.push_back(1.0f);
    EXPECT_EQ(write_checkpoint(m, s, WriteOptions{}, out).code(), Code::shape_mismatch);
    s = full_state(m, adam_amsgrad());
    s.params[1].exp_avg_sq.clear();  // after a step, Adam needs it
    EXPECT_EQ(write_checkpoint(m, s, WriteOptions{}, out).code(), Code::shape_mismatch);
    s = full_state(m, adam_amsgrad());
    s.params[0].square_avg = s.params[0].exp_avg;  // Adam has no square_avg
    EXPECT_EQ(write_checkpoint(m, s, WriteOptions{}, out).code(), Code::bad_section);
    s = full_state(m, adam_amsgrad());
    s.options.optimizer.lr = -1.0;
    EXPECT_EQ(write_checkpoint(m, s, WriteOptions{}, out).code(), Code::invalid_hyperparameter);
    s = full_state(m, adam_amsgrad());
    s.options.scheduler.T_max = 0;
    EXPECT_EQ(write_checkpoint(m, s, WriteOptions{}, out).code(), Code::invalid_hyperparameter);
    s = full_state(m, adam_amsgrad());
    s.options.loss.label_smoothing = 1.5;
    EXPECT_EQ(write_checkpoint(m, s, WriteOptions{}, out).code(), Code::invalid_hyperparameter);
    s = full_state(m, adam_amsgrad());
    s.metadata.push_back({"loss", "again"});
    EXPECT_EQ(write_checkpoint(m, s, WriteOptions{}, out).code(), Code::duplicate_name);
    s = full_state(m, adam_amsgrad());
    s.steps = max_state_count + 1;  // counting on from it could overflow
    EXPECT_EQ(write_checkpoint(m, s, WriteOptions{}, out).code(), Code::bad_section);
    s = full_state(m, adam_amsgrad());
    s.params[0].step = INT64_MAX;
    EXPECT_EQ(write_checkpoint(m, s, WriteOptions{}, out).code(), Code::bad_section);
    s = full_state(m, adam_amsgrad());
    s.scheduler.last_epoch = INT64_MAX;
    EXPECT_NE(write_checkpoint(m, s, WriteOptions{}, out).code(), Code::ok);
    s = full_state(m, sgd_momentum());
    s.params[1].momentum_buffer = s.params[0].momentum_buffer;  // stored while has_momentum_buffer is false
    s.params[1].momentum_buffer.resize(param_sizes(m)[1]);
    EXPECT_EQ(write_checkpoint(m, s, WriteOptions{}, out).code(), Code::bad_section);
}

// Every truncation of a small checkpoint is an error, and hands nothing back.
TEST(Checkpoint, EveryTruncationIsAnError) {
    const Sequential m = mkt::make_model("fc=Linear(2,3),act=ReLU,out=Linear(3,1)");
    const TrainingState s = full_state(m, rmsprop_centered());
    Bytes file;
    ASSERT_TRUE(write_checkpoint(m, s, WriteOptions{}, file).ok());
    for (std::size_t n = 0; n < file.size(); ++n) {
        Sequential back;
        TrainingState got;
        got.epoch = -99;
        bool has = true;
        const Status st = read_both(Bytes(file.begin(), file.begin() + n), back, got, has);
        ASSERT_FALSE(st.ok()) << n;
        EXPECT_FALSE(st.message().empty());
        EXPECT_EQ(got.epoch, -99) << n;
        EXPECT_TRUE(has) << n;
        EXPECT_TRUE(back.layers().empty()) << n;
    }
}

// Every byte of the payload and of the data flipped (CRCs made right again): a typed
// error that hands nothing back, or a valid state that writes exactly those bytes.
TEST(Checkpoint, EveryPayloadFlipIsAnErrorOrAStateThatReencodes) {
    const Sequential m = mkt::make_model("fc=Linear(2,3),act=ReLU,out=Linear(3,1)");
    const TrainingState s = full_state(m, rmsprop_centered());
    Bytes file;
    ASSERT_TRUE(write_checkpoint(m, s, WriteOptions{}, file).ok());
    const auto [begin, end] = training_payload(file);
    FileInfo info;
    ASSERT_TRUE(read_info(file.data(), file.size(), false, info).ok());
    std::vector<std::size_t> where;
    for (std::size_t i = begin; i < end; ++i) where.push_back(i);
    for (std::uint64_t i = info.section_data[0].offset; i < file.size(); i += 3) where.push_back(std::size_t(i));
    int errors = 0, valid = 0;
    for (std::size_t i : where)
        for (std::uint8_t mask : {0x01, 0x02, 0x80, 0xFF}) {
            Bytes b = file;
            b[i] ^= mask;
            fix_crcs(b);
            Sequential back;
            TrainingState got;
            got.epoch = -99;
            bool has = false;
            const Status st = read_both(b, back, got, has);
            if (!st.ok()) {
                ++errors;
                EXPECT_NE(st.code(), Code::checksum_mismatch) << i;  // the CRCs were fixed
                EXPECT_EQ(got.epoch, -99) << i << ": a state was handed back with " << st.to_string();
                EXPECT_FALSE(has);
                continue;
            }
            ++valid;
            ASSERT_TRUE(has);
            Bytes again;
            ASSERT_TRUE(write_checkpoint(back, got, WriteOptions{}, again).ok()) << i;
            EXPECT_EQ(again, b) << "byte " << i << " ^ " << int(mask) << " read as a state that writes otherwise";
        }
    EXPECT_GT(errors, 0);
    EXPECT_GT(valid, 0);  // flips inside a double or a buffer are other valid states
}

// ---- hand-written payloads: each refusal, from the grammar in checkpoint.cpp ----

namespace {

Writer& f64(Writer& w, double v) {
    const std::uint64_t u = bits(v);
    for (int i = 0; i < 8; ++i) w.u8(std::uint8_t(u >> (8 * i)));
    return w;
}
Writer& u64(Writer& w, std::uint64_t u) {
    for (int i = 0; i < 8; ++i) w.u8(std::uint8_t(u >> (8 * i)));
    return w;
}
Writer& svarint(Writer& w, std::int64_t v) { return w.varint((std::uint64_t(v) << 1) ^ std::uint64_t(v >> 63)); }

// SGD(lr=0.1), MSELoss, no schedule: the payload up to (not including) the parameter count.
struct Prefix {
    std::uint8_t version = 1, optimizer = 0, opt_flags = 0, loss = 0, reduction = 1, sched_flags = 0, run_flags = 3;
    double lr = 0.1;
    std::uint64_t weight_count = 0;
    Bytes build() const {
        Writer w;
        w.u8(version).u8(optimizer);
        for (double v : {lr, 0.0, 0.0, 0.0, 0.9, 0.999, 1e-8, 0.99}) f64(w, v);
        w.u8(opt_flags).u8(loss).u8(reduction);
        for (double v : {1.0, 1.0, 0.0}) f64(w, v);
        svarint(w, -100);
        w.varint(weight_count).varint(0);  // weight, pos_weight
        w.u8(sched_flags);
        f64(w, 0.0);
        u64(w, 7);
        w.varint(32).u8(run_flags);
        svarint(w, 1);
        svarint(w, 0);
        svarint(w, 3);
        u64(w, 11);
        u64(w, 12);
        return w.b;
    }
};

// A model file carrying `payload` (and `data`) as its TRAINING section.
Bytes with_training(const Sequential& m, const Bytes& payload, const std::vector<float>& data = {}) {
    WriteOptions opt;
    opt.sections.push_back({training_section_tag, payload, {{data.data(), data.size() * 4}}});
    Bytes out;
    EXPECT_TRUE(write_model(m, opt, out).ok());
    return out;
}

Status read_training(const Bytes& b, TrainingState* out = nullptr) {
    Sequential model;
    TrainingState s;
    s.epoch = -99;
    bool has = false;
    const Status st = read_both(b, model, s, has);
    if (!st.ok()) EXPECT_EQ(s.epoch, -99) << "a state was handed back with " << st.to_string();
    if (st.ok()) EXPECT_TRUE(has);
    if (out) *out = s;
    return st;
}

#define EXPECT_TRAINING(bytes, code_)                          \
    do {                                                       \
        const Status st_ = read_training(bytes);               \
        EXPECT_EQ(st_.code(), Code::code_) << st_.to_string(); \
        EXPECT_FALSE(st_.message().empty());                   \
    } while (0)

}  // namespace

TEST(Checkpoint, HandWrittenPayloads) {
    const Sequential none = mkt::make_model("act=ReLU");  // no parameters
    const Sequential lin = mkt::make_model("fc=Linear(2,3)");
    const auto tail = [](std::uint64_t params, const Bytes& records, std::uint64_t metadata = 0) {
        return Writer().varint(params).raw(records).varint(metadata).b;
    };
    const Bytes empty_tail = tail(0, {});
    // The positive control: the grammar as written reads.
    TrainingState got;
    ASSERT_TRUE(read_training(with_training(none, Writer().raw(Prefix().build()).raw(empty_tail).b), &got).ok());
    EXPECT_EQ(bits(got.options.optimizer.lr), bits(0.1));
    EXPECT_EQ(got.options.seed, 7u);
    EXPECT_EQ(got.epoch, 1);
    EXPECT_EQ(got.steps, 3);
    EXPECT_EQ(got.shuffle_rng, 12u);
    EXPECT_TRUE(got.training);

    const auto file = [&](const Prefix& p, const Bytes& t, const Sequential& m, const std::vector<float>& data = {}) {
        return with_training(m, Writer().raw(p.build()).raw(t).b, data);
    };
    Prefix p;
    p.version = 2;
    EXPECT_TRAINING(file(p, empty_tail, none), unsupported_version);
    p = Prefix();
    p.optimizer = 4;
    EXPECT_TRAINING(file(p, empty_tail, none), bad_section);
    p = Prefix();
    p.opt_flags = 16;
    EXPECT_TRAINING(file(p, empty_tail, none), bad_section);
    p = Prefix();
    p.loss = 8;
    EXPECT_TRAINING(file(p, empty_tail, none), bad_section);
    p = Prefix();
    p.reduction = 3;
    EXPECT_TRAINING(file(p, empty_tail, none), bad_section);
    p = Prefix();
    p.sched_flags = 4;
    EXPECT_TRAINING(file(p, empty_tail, none), bad_section);
    p = Prefix();
    p.run_flags = 4;
    EXPECT_TRAINING(file(p, empty_tail, none), bad_section);
    p = Prefix();
    p.lr = -1.0;
    EXPECT_TRAINING(file(p, empty_tail, none), invalid_hyperparameter);
    p = Prefix();
    p.lr = std::numeric_limits<double>::quiet_NaN();
    EXPECT_TRAINING(file(p, empty_tail, none), invalid_hyperparameter);
    // Huge counts with a tiny payload: refused before anything is allocated.
    p = Prefix();
    p.weight_count = std::uint64_t(1) << 60;
    EXPECT_TRAINING(file(p, empty_tail, none), bad_section);
    EXPECT_TRAINING(file(Prefix(), tail(std::uint64_t(1) << 62, {}), none), bad_section);
    EXPECT_TRAINING(file(Prefix(), tail(60000, {}), none), bad_section);
    EXPECT_TRAINING(file(Prefix(), tail(0, {}, std::uint64_t(1) << 40), none), limit_exceeded);
    EXPECT_TRAINING(file(Prefix(), tail(0, {}, 1000), none), bad_section);
    EXPECT_TRAINING(with_training(none, Prefix().build()), bad_section);  // cut before the parameters
    EXPECT_TRAINING(with_training(none, Writer().raw(Prefix().build()).raw(empty_tail).u8(0).b), bad_section);

    // SGD with momentum: one parameter record = step, flags, buffers, then (length, offset).
    Prefix mom;
    const auto momentum_prefix = [&] {
        Bytes b = mom.build();
        const std::uint64_t u = bits(0.9);  // momentum: the second f64 after version and kind
        for (int i = 0; i < 8; ++i) b[2 + 8 + i] = std::uint8_t(u >> (8 * i));
        return b;
    };
    const auto record = [](std::int64_t step, std::uint8_t flags, std::uint8_t buffers,
                           std::vector<std::pair<std::uint64_t, std::uint64_t>> bufs) {
        Writer w;
        svarint(w, step).u8(flags).u8(buffers);
        for (auto [len, off] : bufs) w.varint(len).varint(off);
        return w.b;
    };
    const auto sgd_file = [&](const Bytes& records, const std::vector<float>& data, std::uint64_t n = 2) {
        return with_training(lin, Writer().raw(momentum_prefix()).raw(tail(n, records)).b, data);
    };
    const std::vector<float> nine(9, 0.5f);
    const Bytes good = Writer().raw(record(1, 1, 1, {{6, 0}})).raw(record(1, 1, 1, {{3, 24}})).b;
    ASSERT_TRUE(read_training(sgd_file(good, nine), &got).ok());
    ASSERT_EQ(got.params.size(), 2u);
    EXPECT_EQ(got.params[1].momentum_buffer, std::vector<float>(3, 0.5f));
    EXPECT_TRAINING(sgd_file(good, nine, 1), bad_section);  // one record: the second is unread
    EXPECT_TRAINING(sgd_file(Writer().raw(record(1, 1, 1, {{6, 0}})).b, std::vector<float>(6, 0.5f), 1),
                    shape_mismatch);  // 1 of 2
    EXPECT_TRAINING(sgd_file(Writer().raw(record(1, 1, 1, {{5, 0}})).raw(record(1, 1, 1, {{4, 20}})).b, nine),
                    shape_mismatch);
    EXPECT_TRAINING(sgd_file(Writer().raw(record(1, 1, 1, {{6, 4}})).raw(record(1, 1, 1, {{3, 24}})).b, nine),
                    bad_section);  // a hole at the start
    EXPECT_TRAINING(sgd_file(Writer().raw(record(1, 1, 1, {{6, 0}})).raw(record(1, 1, 1, {{3, 20}})).b, nine),
                    bad_section);                                                // an overlap
    EXPECT_TRAINING(sgd_file(good, std::vector<float>(10, 0.5f)), bad_section);  // data left over
    EXPECT_TRAINING(sgd_file(Writer().raw(record(1, 1, 1, {{6, 0}})).raw(record(1, 1, 1, {{1ull << 61, 24}})).b, nine),
                    bad_section);  // a huge buffer over tiny data
    EXPECT_TRAINING(sgd_file(Writer().raw(record(1, 1, 1, {{6, 0}})).raw(record(1, 1, 1, {{0, 24}})).b, nine),
                    bad_section);  // stored empty
    EXPECT_TRAINING(sgd_file(Writer().raw(record(1, 2, 1, {{6, 0}})).raw(record(1, 1, 1, {{3, 24}})).b, nine),
                    bad_section);  // undefined parameter flag
    EXPECT_TRAINING(sgd_file(Writer().raw(record(1, 1, 64, {})).raw(record(1, 1, 1, {{3, 24}})).b, nine),
                    bad_section);  // undefined buffer bit
    EXPECT_TRAINING(sgd_file(Writer().raw(record(1, 0, 2, {{6, 0}})).raw(record(1, 1, 1, {{3, 24}})).b, nine),
                    bad_section);  // exp_avg: SGD has none
    EXPECT_TRAINING(sgd_file(Writer().raw(record(-1, 1, 1, {{6, 0}})).raw(record(1, 1, 1, {{3, 24}})).b, nine),
                    bad_section);  // a negative step
    EXPECT_TRAINING(
        sgd_file(Writer().raw(record(1, 1, 0, {})).raw(record(1, 1, 1, {{3, 0}})).b, std::vector<float>(3, 0.5f)),
        shape_mismatch);  // has_momentum_buffer without the buffer
}
