// test_torch_checkpoint.cpp — PyTorch general checkpoints (torch_checkpoint.hpp):
// real checkpoints of torch 1.13 (tests/golden/make_checkpoint_golden.py) continued
// bit-exactly, written ones continued by real PyTorch (tests/torch/check_checkpoint.py),
// and hand-made hostile ones refused with their codes.
#include "torch_checkpoint.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "golden/training_golden.hpp"
#include "pickle_builder.hpp"
#include "spec.hpp"
#include "torch_file.hpp"
#include "train.hpp"
#include "zip_builder.hpp"

using namespace modelkeep;

namespace {

std::vector<std::uint8_t> read_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::vector<std::uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

OptimizerOptions kind_of(const std::string& name) {
    OptimizerOptions o;
    o.kind = name == "adam"      ? OptimizerKind::adam
             : name == "adamw"   ? OptimizerKind::adamw
             : name == "rmsprop" ? OptimizerKind::rmsprop
                                 : OptimizerKind::sgd;
    return o;
}

Status read_file(const std::vector<std::uint8_t>& bytes, const OptimizerOptions* hint, TorchCheckpoint& out) {
    return read_torch_checkpoint(MemorySource(bytes.data(), bytes.size()), hint, out);
}

bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
}

std::string hex(float v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%a", double(v));
    return buf;
}

std::string hex_list(const Tensor& t) {
    std::string s = "[";
    for (std::size_t i = 0; i < t.size(); ++i) s += (i ? ", \"" : "\"") + hex(t.data()[i]) + "\"";
    return s + "]";
}

// One fixture case, read and continued by modelkeep: the model (its parameters
// after the step), the optimizer (its state after the step).
struct Continued {
    Sequential model;
    std::vector<Tensor> values, grads;
    Optimizer optimizer;
    TorchCheckpoint checkpoint;
};

// Reads the case's checkpoint, checks what it holds against the fixture, steps once.
void continue_case(const mkt::TrainingCase& c, Continued& run) {
    const OptimizerOptions hint = kind_of(c.word("optimizer"));
    const bool adam_like = hint.kind == OptimizerKind::adam || hint.kind == OptimizerKind::adamw;
    const auto bytes = read_bytes(std::string(MODELKEEP_TORCH_DIR) + "/checkpoints/" + c.word("file"));
    ASSERT_FALSE(bytes.empty()) << c.word("file");
    TorchCheckpoint& ck = run.checkpoint;
    // SGD and RMSprop are recognised from the file; Adam and AdamW need the name.
    const Status st = read_file(bytes, adam_like ? &hint : nullptr, ck);
    ASSERT_TRUE(st.ok()) << c.name << ": " << st.to_string();
    ASSERT_TRUE(ck.has_optimizer);
    const OptimizerOptions& o = ck.optimizer;
    EXPECT_EQ(o.kind, hint.kind) << c.name;
    EXPECT_EQ(o.lr, c.number("group_lr", NAN)) << c.name;
    EXPECT_EQ(o.weight_decay, c.number("group_weight_decay", NAN)) << c.name;
    EXPECT_EQ(o.maximize, c.flag("group_maximize", true)) << c.name;
    if (adam_like) {
        EXPECT_EQ(o.beta1, c.number("group_beta1", NAN));
        EXPECT_EQ(o.beta2, c.number("group_beta2", NAN));
        EXPECT_EQ(o.eps, c.number("group_eps", NAN));
        EXPECT_EQ(o.amsgrad, c.flag("group_amsgrad", !o.amsgrad));
    } else if (hint.kind == OptimizerKind::sgd) {
        EXPECT_EQ(o.momentum, c.number("group_momentum", NAN));
        EXPECT_EQ(o.dampening, c.number("group_dampening", NAN));
        EXPECT_EQ(o.nesterov, c.flag("group_nesterov", !o.nesterov));
    } else {
        EXPECT_EQ(o.momentum, c.number("group_momentum", NAN));
        EXPECT_EQ(o.alpha, c.number("group_alpha", NAN));
        EXPECT_EQ(o.eps, c.number("group_eps", NAN));
        EXPECT_EQ(o.centered, c.flag("group_centered", !o.centered));
    }
    EXPECT_EQ(ck.has_initial_lr, c.has("group_initial_lr")) << c.name;
    if (c.has("group_initial_lr")) EXPECT_EQ(ck.initial_lr, c.number("group_initial_lr", NAN));
    EXPECT_TRUE(ck.has_epoch);
    EXPECT_EQ(double(ck.epoch), c.number("epoch", NAN));
    EXPECT_TRUE(ck.has_loss);
    EXPECT_EQ(ck.loss, c.number("loss", NAN));
    EXPECT_EQ(ck.source, "checkpoint['model_state_dict']");

    std::vector<LayerSpec> specs;
    ASSERT_TRUE(parse_spec(c.word("spec"), specs).ok());
    StateDict sd = ck.model;
    const Status made = Sequential::from_state_dict(specs, std::move(sd), run.model);
    ASSERT_TRUE(made.ok()) << made.to_string();
    ASSERT_TRUE(parameters_of(run.model, run.values).ok());
    ASSERT_EQ(run.values.size(), ck.params.size());
    for (std::size_t i = 0; i < run.values.size(); ++i)
        EXPECT_TRUE(mkt::close_to(c.name + " param" + std::to_string(i), run.values[i],
                                  c.tensor("param" + std::to_string(i)), 0));

    TrainingState state;
    const Status filled = torch_training_state(ck, run.model, state);
    ASSERT_TRUE(filled.ok()) << filled.to_string();
    EXPECT_EQ(state.epoch, ck.epoch);
    ASSERT_TRUE(Optimizer::create(state.options.optimizer, run.optimizer).ok());
    run.grads.resize(run.values.size());
    for (std::size_t i = 0; i < run.values.size(); ++i) {
        run.grads[i] = c.tensor("grad" + std::to_string(i));
        ASSERT_TRUE(run.optimizer.add_param(run.values[i], run.grads[i]).ok());
        const Status set = run.optimizer.set_state(i, state.params[i]);
        ASSERT_TRUE(set.ok()) << c.name << ": " << set.to_string();
    }
    run.optimizer.step();
    for (std::size_t i = 0; i < run.values.size(); ++i)
        EXPECT_TRUE(mkt::close_to(c.name + " next" + std::to_string(i), run.values[i],
                                  c.tensor("next" + std::to_string(i)), 0));
}

// The state after run's step, as a trainer would checkpoint it.
TrainingState state_after(const Continued& run) {
    TrainingState s;
    s.options.optimizer = run.optimizer.options();
    for (std::size_t i = 0; i < run.optimizer.param_count(); ++i) s.params.push_back(run.optimizer.state(i));
    s.epoch = run.checkpoint.epoch + 1;
    s.metadata.emplace_back("loss", "0.375");
    if (run.checkpoint.has_initial_lr) {
        s.options.has_scheduler = true;
        s.scheduler.base_lr = run.checkpoint.initial_lr;
        s.scheduler.lr = run.optimizer.lr();
    }
    return s;
}

}  // namespace

TEST(TorchCheckpoint, ContinuesPyTorchCheckpointsBitExactly) {
    const auto cases = mkt::load_training_cases("checkpoint");
    ASSERT_GE(cases.size(), 5u) << "run /usr/bin/python3 tests/golden/make_checkpoint_golden.py";
    for (const auto& c : cases) {
        Continued run;
        continue_case(c, run);
    }
}

TEST(TorchCheckpoint, AdamAndAdamWNeedTheirName) {
    const auto bytes = read_bytes(std::string(MODELKEEP_TORCH_DIR) + "/checkpoints/adam.pt");
    TorchCheckpoint ck;
    Status st = read_file(bytes, nullptr, ck);
    EXPECT_EQ(st.code(), Code::invalid_argument);
    EXPECT_NE(st.message().find("--optimizer adamw"), std::string::npos) << st.message();
    const OptimizerOptions sgd = kind_of("sgd");
    st = read_file(bytes, &sgd, ck);
    EXPECT_EQ(st.code(), Code::invalid_argument);
    EXPECT_NE(st.message().find("SGD was named"), std::string::npos) << st.message();
    // A hint that contradicts a recognisable optimizer is refused too.
    const auto rms = read_bytes(std::string(MODELKEEP_TORCH_DIR) + "/checkpoints/rmsprop_centered.pt");
    const OptimizerOptions adam = kind_of("adam");
    st = read_file(rms, &adam, ck);
    EXPECT_EQ(st.code(), Code::invalid_argument);
    EXPECT_NE(st.message().find("RMSprop state, but Adam was named"), std::string::npos) << st.message();
    // The same numbers continued as AdamW differ from torch's Adam step (weight decay 1e-2):
    // the name matters, which is why it is asked for.
    const OptimizerOptions adamw = kind_of("adamw");
    ASSERT_TRUE(read_file(bytes, &adamw, ck).ok());
    EXPECT_EQ(ck.optimizer.kind, OptimizerKind::adamw);
}

TEST(TorchCheckpoint, ModelMismatchIsShapeMismatch) {
    const auto bytes = read_bytes(std::string(MODELKEEP_TORCH_DIR) + "/checkpoints/sgd_nesterov.pt");
    const OptimizerOptions* none = nullptr;
    TorchCheckpoint ck;
    ASSERT_TRUE(read_file(bytes, none, ck).ok());
    std::vector<Tensor> params;
    for (const auto& kv : ck.model)
        if (kv.first.find("running") == std::string::npos && kv.first.find("num_batches") == std::string::npos)
            params.push_back(kv.second);
    ASSERT_EQ(params.size(), ck.params.size());
    EXPECT_TRUE(check_torch_optimizer_state(ck, params).ok());
    std::vector<Tensor> fewer(params.begin(), params.end() - 1);
    Status st = check_torch_optimizer_state(ck, fewer);
    EXPECT_EQ(st.code(), Code::shape_mismatch);
    EXPECT_NE(st.message().find("has 6 parameters but the model has 5"), std::string::npos) << st.message();
    std::vector<Tensor> other = params;
    other[0] = Tensor(Shape{4, 6});  // the transpose: the same size, another shape
    st = check_torch_optimizer_state(ck, other);
    EXPECT_EQ(st.code(), Code::shape_mismatch);
    EXPECT_NE(st.message().find("parameter 0 is (6, 4) but the parameter is (4, 6)"), std::string::npos)
        << st.message();
    // A model of another architecture (torch_training_state's own check).
    std::vector<LayerSpec> specs;
    ASSERT_TRUE(parse_spec("Linear(4,6),BatchNorm1d(6),Tanh,Linear(6,2)", specs).ok());
    Sequential wrong;
    ASSERT_TRUE(Sequential::create(specs, 1, wrong).ok());
    TrainingState state;
    EXPECT_EQ(torch_training_state(ck, wrong, state).code(), Code::shape_mismatch);
}

TEST(TorchCheckpoint, WriteReadRoundTrip) {
    for (const auto& c : mkt::load_training_cases("checkpoint")) {
        Continued run;
        continue_case(c, run);
        if (HasFatalFailure()) return;
        ASSERT_TRUE(load_parameters(run.model, run.values).ok());
        const TrainingState s = state_after(run);
        std::vector<std::uint8_t> bytes;
        const Status w = write_torch_checkpoint(run.model, s, bytes);
        ASSERT_TRUE(w.ok()) << w.to_string();
        TorchCheckpoint back;
        const OptimizerOptions hint = s.options.optimizer;
        const Status r = read_file(bytes, &hint, back);
        ASSERT_TRUE(r.ok()) << c.name << ": " << r.to_string();
        std::vector<std::string> globals = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                                            "torch.FloatStorage"};
        if (c.word("spec").find("BatchNorm1d") != std::string::npos)
            globals.push_back("torch.LongStorage");  // num_batches_tracked
        EXPECT_EQ(back.globals, globals) << c.name;
        const OptimizerOptions& a = back.optimizer;
        const OptimizerOptions& b = s.options.optimizer;
        EXPECT_EQ(a.kind, b.kind);
        EXPECT_EQ(a.lr, s.options.has_scheduler ? s.scheduler.lr : b.lr);
        EXPECT_EQ(a.momentum, b.momentum);
        EXPECT_EQ(a.dampening, b.dampening);
        EXPECT_EQ(a.weight_decay, b.weight_decay);
        EXPECT_EQ(a.nesterov, b.nesterov);
        EXPECT_EQ(a.maximize, b.maximize);
        EXPECT_EQ(a.beta1, b.beta1);
        EXPECT_EQ(a.beta2, b.beta2);
        EXPECT_EQ(a.eps, b.eps);
        EXPECT_EQ(a.amsgrad, b.amsgrad);
        EXPECT_EQ(a.alpha, b.alpha);
        EXPECT_EQ(a.centered, b.centered);
        EXPECT_EQ(back.has_initial_lr, s.options.has_scheduler);
        EXPECT_EQ(back.epoch, s.epoch);
        EXPECT_TRUE(back.has_loss);
        EXPECT_EQ(back.loss, 0.375);
        ASSERT_EQ(back.params.size(), s.params.size());
        for (std::size_t i = 0; i < s.params.size(); ++i) {
            const ParamState &x = back.params[i], &y = s.params[i];
            EXPECT_EQ(x.step, b.kind == OptimizerKind::sgd ? 1 : y.step) << c.name << " " << i;
            EXPECT_EQ(x.has_momentum_buffer, y.has_momentum_buffer && b.momentum != 0.0);
            for (const char* key :
                 {"momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq", "square_avg", "grad_avg"}) {
                ParamState xs = x, ys = y;
                const bool used = [&] {
                    for (const char* k : state_keys(b))
                        if (!std::strcmp(k, key)) return true;
                    return false;
                }();
                if (!used || (b.kind == OptimizerKind::sgd && b.momentum == 0.0)) continue;
                EXPECT_TRUE(bit_equal(*state_buffer(xs, key), *state_buffer(ys, key))) << c.name << " " << key;
            }
        }
        const StateDict sd = run.model.state_dict();
        ASSERT_EQ(back.model.size(), sd.size());
        for (std::size_t i = 0; i < sd.size(); ++i) {
            EXPECT_EQ(back.model[i].first, sd[i].first);
            EXPECT_TRUE(mkt::close_to(sd[i].first, back.model[i].second, sd[i].second, 0));
        }
    }
}

TEST(TorchCheckpoint, PyTorchContinuesWrittenCheckpoints) {
    if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "/usr/bin/python3 is missing";
    if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0)
        GTEST_SKIP() << "/usr/bin/python3 has no torch";
    char dir_template[] = "/tmp/modelkeep_ckpt_XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    const std::string dir = dir_template;
    std::string cases, perturbed;
    for (const auto& c : mkt::load_training_cases("checkpoint")) {
        Continued run;
        continue_case(c, run);
        if (HasFatalFailure()) return;
        ASSERT_TRUE(load_parameters(run.model, run.values).ok());
        const TrainingState s = state_after(run);
        std::vector<std::uint8_t> bytes;
        ASSERT_TRUE(write_torch_checkpoint(run.model, s, bytes).ok());
        const std::string path = dir + "/" + c.name + ".pt";
        std::ofstream(path, std::ios::binary)
            .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
        // modelkeep's second step, from the state just written, with other gradients.
        std::string grads, next;
        for (std::size_t i = 0; i < run.grads.size(); ++i) {
            Tensor g = run.grads[i];
            for (float& v : g) v = v * -0.5f + 0.25f;
            run.grads[i] = g;
            grads += (i ? ", " : "") + hex_list(g);
        }
        run.optimizer.step();
        for (std::size_t i = 0; i < run.values.size(); ++i) next += (i ? ", " : "") + hex_list(run.values[i]);
        const std::string head = "{\"file\": \"" + path + "\", \"spec\": \"" + c.word("spec") +
                                 "\", \"optimizer\": \"" + c.word("optimizer") +
                                 "\", \"epoch\": " + std::to_string(s.epoch) + ", \"loss\": \"" + hex(0.375f) +
                                 "\", \"grads\": [" + grads + "], \"next\": [";
        cases += (cases.empty() ? "" : ", ") + head + next + "]}";
        if (perturbed.empty()) {  // the checker must see a one-ULP difference
            Tensor& v = run.values[0];
            v.data()[0] = std::nextafter(v.data()[0], INFINITY);
            std::string off;
            for (std::size_t i = 0; i < run.values.size(); ++i) off += (i ? ", " : "") + hex_list(run.values[i]);
            perturbed = head + off + "]}";
        }
    }
    const auto run_checker = [&](const std::string& json, std::string& output) {
        const std::string file = dir + "/cases.json";
        std::ofstream(file) << "{\"cases\": [" << json << "]}";
        const std::string cmd =
            "/usr/bin/python3 " + std::string(MODELKEEP_TORCH_DIR) + "/check_checkpoint.py " + file + " 2>&1";
        FILE* pipe = ::popen(cmd.c_str(), "r");
        if (!pipe) return -1;
        char buf[4096];
        for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) output.append(buf, n);
        return ::pclose(pipe);
    };
    std::string good, bad;
    const int good_status = run_checker(cases, good);
    const int bad_status = run_checker(perturbed, bad);
    std::filesystem::remove_all(dir);
    EXPECT_EQ(good_status, 0) << good;
    EXPECT_EQ(good.find("FAIL"), std::string::npos) << good;
    EXPECT_NE(good.find("bit for bit"), std::string::npos) << good;
    EXPECT_NE(bad_status, 0) << bad;
    EXPECT_NE(bad.find("FAIL"), std::string::npos) << bad;
}

// ---- hand-made checkpoints, hostile ones above all ----

namespace {

using mkt::P;

void flt(P& p, double v) {  // BINFLOAT
    std::uint64_t u = 0;
    std::memcpy(&u, &v, 8);
    p.op('G');
    for (int i = 7; i >= 0; --i) p.op(std::uint8_t(u >> (8 * i)));
}

// _rebuild_tensor_v2 of a dense tensor of `storage` (torch.<storage>, numel = its size).
void tensor(P& p, const std::string& key, const std::vector<std::uint64_t>& shape,
            const std::string& storage = "FloatStorage") {
    std::uint64_t numel = 1;
    for (std::uint64_t d : shape) numel *= d;
    p.global("torch._utils", "_rebuild_tensor_v2").op('(');
    p.op('(').str("storage").global("torch", storage).str(key).str("cpu").long1(std::int64_t(numel)).op('t').op('Q');
    p.int1(0).op('(');
    for (std::uint64_t d : shape) p.long1(std::int64_t(d));
    p.op('t').op('(');
    std::vector<std::uint64_t> stride(shape.size());
    std::uint64_t step = 1;
    for (std::size_t k = shape.size(); k-- > 0;) stride[k] = step, step *= shape[k];
    for (std::uint64_t s : stride) p.long1(std::int64_t(s));
    p.op('t').op(0x89).global("collections", "OrderedDict").op(')').op('R').op('t').op('R');
}

// The options of an SGD group; `extra` adds keys before 'params'.
void sgd_group(P& p, const std::function<void(P&)>& extra = {}, const std::vector<int>& ids = {0, 1}) {
    p.op('}').op('(');
    p.str("lr");
    flt(p, 0.1);
    p.str("momentum");
    flt(p, 0.9);
    p.str("dampening").int1(0).str("weight_decay").int1(0);
    p.str("nesterov").op(0x89).str("maximize").op(0x89);
    if (extra) extra(p);
    p.str("params").op(']').op('(');
    for (int id : ids) p.int1(id);
    p.op('e').op('u');
}

// SGD state: momentum buffers of the parameters' shapes (storages "2", "3").
void sgd_state(P& p) {
    p.int1(0).op('}').op('(').str("momentum_buffer");
    tensor(p, "2", {2, 3});
    p.op('u').int1(1).op('}').op('(').str("momentum_buffer");
    tensor(p, "3", {2});
    p.op('u');
}

// {'epoch': 7, 'model_state_dict': OrderedDict(w (2, 3), b (2,)),
//  'optimizer_state_dict': {'state': {<state>}, 'param_groups': [<groups>]}, 'loss': 0.5}
std::vector<std::uint8_t> crafted(const std::function<void(P&)>& state, const std::function<void(P&)>& groups,
                                  std::vector<std::pair<std::string, std::vector<std::uint8_t>>> storages = {}) {
    P p;
    p.op('}').op('(').str("epoch").int1(7).str("model_state_dict");
    p.global("collections", "OrderedDict").op(')').op('R').op('(').str("w");
    tensor(p, "0", {2, 3});
    p.str("b");
    tensor(p, "1", {2});
    p.op('u');
    p.str("optimizer_state_dict").op('}').op('(').str("state").op('}').op('(');
    state(p);
    p.op('u').str("param_groups").op(']').op('(');
    groups(p);
    p.op('e').op('u');
    p.str("loss");
    flt(p, 0.5);
    p.op('u').stop();
    const auto floats = [](std::size_t n, float base) {
        std::vector<std::uint8_t> b(n * 4);
        for (std::size_t i = 0; i < n; ++i) {
            const float v = base + float(i);
            std::memcpy(&b[i * 4], &v, 4);
        }
        return b;
    };
    std::vector<mkt::Member> members = {{"archive/data.pkl", p.b},
                                        {"archive/data/0", floats(6, 1)},
                                        {"archive/data/1", floats(2, 10)},
                                        {"archive/data/2", floats(6, 20)},
                                        {"archive/data/3", floats(2, 30)}};
    for (auto& [key, bytes] : storages) members.push_back({"archive/data/" + key, bytes});
    members.push_back({"archive/version", {'3', '\n'}});
    return mkt::build_zip(members).bytes;
}

Status read_crafted(const std::vector<std::uint8_t>& bytes, TorchCheckpoint& ck,
                    const OptimizerOptions* hint = nullptr) {
    return read_file(bytes, hint, ck);
}

::testing::AssertionResult refused(const std::vector<std::uint8_t>& bytes, Code code, const std::string& words,
                                   const OptimizerOptions* hint = nullptr) {
    TorchCheckpoint ck;
    const Status st = read_crafted(bytes, ck, hint);
    if (st.code() != code || st.message().find(words) == std::string::npos)
        return ::testing::AssertionFailure()
               << "got " << st.to_string() << ", wanted " << code_name(code) << " with '" << words << "'";
    return ::testing::AssertionSuccess();
}

std::vector<std::uint8_t> f32_bytes(std::size_t n) { return std::vector<std::uint8_t>(n * 4, 0); }

}  // namespace

TEST(TorchCheckpoint, CraftedValidCheckpointReads) {
    // The builder makes what the reader takes: the refusals below differ from this in one thing.
    TorchCheckpoint ck;
    const Status st = read_crafted(crafted(sgd_state, [](P& p) { sgd_group(p); }), ck);
    ASSERT_TRUE(st.ok()) << st.to_string();
    EXPECT_EQ(ck.optimizer.kind, OptimizerKind::sgd);
    EXPECT_EQ(ck.optimizer.lr, 0.1);
    EXPECT_EQ(ck.optimizer.momentum, 0.9);
    ASSERT_EQ(ck.params.size(), 2u);
    EXPECT_TRUE(ck.params[0].has_momentum_buffer);
    EXPECT_EQ(ck.params[0].momentum_buffer, (std::vector<float>{20, 21, 22, 23, 24, 25}));
    EXPECT_EQ(ck.params[1].momentum_buffer, (std::vector<float>{30, 31}));
    EXPECT_EQ(ck.epoch, 7);
    EXPECT_EQ(ck.loss, 0.5);
    ASSERT_EQ(ck.model.size(), 2u);
    EXPECT_EQ(ck.model[0].first, "w");
    std::vector<Tensor> params = {ck.model[0].second, ck.model[1].second};
    EXPECT_TRUE(check_torch_optimizer_state(ck, params).ok());
    // A parameter without state (never stepped), foreach=True, an lr scheduler's
    // initial_lr and torch 2.6's param_names are all harmless.
    const auto harmless = [](P& p) {
        sgd_group(p, [](P& q) {
            q.str("foreach").op(0x88).str("initial_lr");
            flt(q, 0.2);
            q.str("param_names").op(']').op('(').str("w").str("b").op('e');
            q.str("differentiable").op(0x89).str("fused").op('N');
        });
    };
    const Status st2 = read_crafted(crafted([](P&) {}, harmless), ck);
    ASSERT_TRUE(st2.ok()) << st2.to_string();
    EXPECT_TRUE(ck.has_initial_lr);
    EXPECT_EQ(ck.initial_lr, 0.2);
    EXPECT_EQ(ck.params[0].step, 0);
    EXPECT_FALSE(ck.params[0].has_momentum_buffer);
}

TEST(TorchCheckpoint, RefusesWhatCannotContinueFaithfully) {
    const auto group = [](std::function<void(P&)> extra) { return [extra](P& p) { sgd_group(p, extra); }; };
    // Several param groups.
    EXPECT_TRUE(refused(crafted(sgd_state,
                                [](P& p) {
                                    sgd_group(p, {}, {0});
                                    sgd_group(p, {}, {1});
                                }),
                        Code::unsupported_optimizer, "2 param groups"));
    // An unknown state key (Adamax's), a state key of another optimizer.
    EXPECT_TRUE(refused(crafted(
                            [](P& p) {
                                p.int1(0).op('}').op('(').str("exp_inf");
                                tensor(p, "2", {2, 3});
                                p.op('u');
                            },
                            group({})),
                        Code::unsupported_optimizer, "has 'exp_inf'"));
    // Group options that change the math, or that modelkeep does not have.
    EXPECT_TRUE(refused(crafted(sgd_state, group([](P& p) { p.str("capturable").op(0x88); })),
                        Code::unsupported_optimizer, "['capturable'] is True"));
    EXPECT_TRUE(refused(crafted(sgd_state, group([](P& p) { p.str("differentiable").op(0x88); })),
                        Code::unsupported_optimizer, "['differentiable'] is True"));
    EXPECT_TRUE(refused(crafted(sgd_state, group([](P& p) { p.str("fused").op(0x88); })), Code::unsupported_optimizer,
                        "['fused'] is True"));
    EXPECT_TRUE(refused(crafted(sgd_state, group([](P& p) { p.str("lr_decay").int1(0); })), Code::unsupported_optimizer,
                        "has 'lr_decay'"));
    // A tensor learning rate (torch 2.x allows one).
    EXPECT_TRUE(refused(crafted(sgd_state,
                                [](P& p) {
                                    p.op('}').op('(').str("lr");
                                    tensor(p, "4", {});
                                    p.str("momentum").int1(0).str("dampening").int1(0).str("weight_decay").int1(0);
                                    p.str("nesterov").op(0x89).str("maximize").op(0x89);
                                    p.str("params").op(']').op('(').int1(0).int1(1).op('e').op('u');
                                },
                                {{"4", f32_bytes(1)}}),
                        Code::unsupported_optimizer, "['lr'] is a tensor"));
    // Not one of the four optimizers (Adagrad's keys).
    EXPECT_TRUE(refused(crafted([](P&) {},
                                [](P& p) {
                                    p.op('}').op('(').str("lr");
                                    flt(p, 0.01);
                                    p.str("lr_decay").int1(0).str("weight_decay").int1(0);
                                    p.str("params").op(']').op('(').int1(0).int1(1).op('e').op('u');
                                }),
                        Code::unsupported_optimizer, "not SGD, Adam, AdamW or RMSprop"));
    // An option out of range: PyTorch's constructor check.
    EXPECT_TRUE(refused(crafted(sgd_state,
                                [](P& p) {
                                    p.op('}').op('(').str("lr");
                                    flt(p, -1.0);
                                    p.str("momentum").int1(0).str("dampening").int1(0).str("weight_decay").int1(0);
                                    p.str("nesterov").op(0x89).str("maximize").op(0x89);
                                    p.str("params").op(']').op('(').int1(0).int1(1).op('e').op('u');
                                }),
                        Code::invalid_hyperparameter, "lr"));
    // Non-float32 state.
    EXPECT_TRUE(refused(crafted(
                            [](P& p) {
                                p.int1(0).op('}').op('(').str("momentum_buffer");
                                tensor(p, "5", {2, 3}, "DoubleStorage");
                                p.op('u');
                            },
                            group({}), {{"5", std::vector<std::uint8_t>(48, 0)}}),
                        Code::unsupported_tensor, "float64"));
    // Adam's step must be a whole number >= 0.
    const OptimizerOptions adam = kind_of("adam");
    const auto adam_group = [](P& p) {
        p.op('}').op('(').str("lr");
        flt(p, 0.001);
        p.str("betas").op('(');
        flt(p, 0.9);
        flt(p, 0.999);
        p.op('t').str("eps");
        flt(p, 1e-8);
        p.str("weight_decay").int1(0).str("amsgrad").op(0x89).str("maximize").op(0x89);
        p.str("params").op(']').op('(').int1(0).int1(1).op('e').op('u');
    };
    const auto adam_state = [](double step) {
        return [step](P& p) {
            p.int1(0).op('}').op('(').str("step");
            flt(p, step);
            p.str("exp_avg");
            tensor(p, "2", {2, 3});
            p.str("exp_avg_sq");
            tensor(p, "2", {2, 3});
            p.op('u');
        };
    };
    TorchCheckpoint ck;
    const Status fine = read_crafted(crafted(adam_state(3.0), adam_group), ck, &adam);
    ASSERT_TRUE(fine.ok()) << fine.to_string();
    EXPECT_EQ(ck.params[0].step, 3);
    EXPECT_TRUE(
        refused(crafted(adam_state(2.5), adam_group), Code::unsupported_optimizer, "not a whole number", &adam));
    EXPECT_TRUE(
        refused(crafted(adam_state(-1.0), adam_group), Code::unsupported_optimizer, "not a whole number", &adam));
    // Adam's state without exp_avg_sq.
    EXPECT_TRUE(refused(crafted(
                            [](P& p) {
                                p.int1(0).op('}').op('(').str("step").int1(1).str("exp_avg");
                                tensor(p, "2", {2, 3});
                                p.op('u');
                            },
                            adam_group),
                        Code::unsupported_optimizer, "lacks 'exp_avg_sq'", &adam));
}

TEST(TorchCheckpoint, RefusesInconsistentStructure) {
    // params ids out of range, out of order; state keys out of range or twice.
    EXPECT_TRUE(refused(crafted(sgd_state,
                                [](P& p) {
                                    sgd_group(p, {}, {0, 5});
                                }),
                        Code::bad_pickle, "['params'][1] is 5"));
    EXPECT_TRUE(refused(crafted(sgd_state,
                                [](P& p) {
                                    sgd_group(p, {}, {1, 0});
                                }),
                        Code::bad_pickle, "['params'][0] is 1"));
    EXPECT_TRUE(refused(crafted(
                            [](P& p) {
                                p.int1(7).op('}').op('(').str("momentum_buffer");
                                tensor(p, "2", {2, 3});
                                p.op('u');
                            },
                            [](P& p) { sgd_group(p); }),
                        Code::bad_pickle, "has key 7, not a parameter id in [0, 2)"));
    EXPECT_TRUE(refused(crafted(
                            [](P& p) {
                                sgd_state(p);
                                p.int1(0).op('}').op('(').str("momentum_buffer").op('N').op('u');
                            },
                            [](P& p) { sgd_group(p); }),
                        Code::duplicate_name, "parameter 0 twice"));
    // A repeated key: Python keeps the last value, a reader that took the first would differ.
    EXPECT_TRUE(refused(crafted(sgd_state,
                                [](P& p) {
                                    sgd_group(p, [](P& q) {
                                        q.str("lr");
                                        flt(q, 0.5);
                                    });
                                }),
                        Code::duplicate_name, "has 'lr' twice"));
    EXPECT_TRUE(refused(crafted(
                            [](P& p) {
                                p.int1(1).op('}').op('(').str("momentum_buffer").op('N');
                                p.str("momentum_buffer");
                                tensor(p, "3", {2});
                                p.op('u');
                            },
                            [](P& p) { sgd_group(p); }),
                        Code::duplicate_name, "has 'momentum_buffer' twice"));
    // A state entry that is not a dict; a group that is not a dict; no 'state'.
    EXPECT_TRUE(refused(crafted([](P& p) { p.int1(0).int1(3); }, [](P& p) { sgd_group(p); }), Code::bad_pickle,
                        "['state'][0] is an int"));
    EXPECT_TRUE(refused(crafted(sgd_state, [](P& p) { p.int1(1); }), Code::bad_pickle, "is not a dict"));
    // Buffers of one parameter that disagree (RMSprop centered: square_avg and grad_avg).
    EXPECT_TRUE(refused(crafted(
                            [](P& p) {
                                p.int1(0).op('}').op('(').str("step").int1(2).str("square_avg");
                                tensor(p, "2", {2, 3});
                                p.str("grad_avg");
                                tensor(p, "2", {3, 2});
                                p.op('u');
                            },
                            [](P& p) {
                                p.op('}').op('(').str("lr");
                                flt(p, 0.01);
                                p.str("momentum").int1(0).str("alpha");
                                flt(p, 0.99);
                                p.str("eps");
                                flt(p, 1e-8);
                                p.str("centered").op(0x88).str("weight_decay").int1(0).str("maximize").op(0x89);
                                p.str("params").op(']').op('(').int1(0).int1(1).op('e').op('u');
                            }),
                        Code::shape_mismatch, "(3, 2) but the parameter's other state is (2, 3)"));
    // A group of very many keys is refused before they are compared.
    EXPECT_TRUE(refused(crafted(sgd_state,
                                [](P& p) {
                                    sgd_group(p, [](P& q) {
                                        for (int i = 0; i < 60; ++i) q.str("k" + std::to_string(i)).int1(0);
                                    });
                                }),
                        Code::limit_exceeded, "keys (at most 64)"));
    // A buffer of another size than its parameter: read, then refused against the model.
    TorchCheckpoint ck;
    const auto small = [](P& p) {
        p.int1(1).op('}').op('(').str("momentum_buffer");
        tensor(p, "6", {3});
        p.op('u');
    };
    const Status read = read_crafted(crafted(small, [](P& p) { sgd_group(p); }, {{"6", f32_bytes(3)}}), ck);
    ASSERT_TRUE(read.ok()) << read.to_string();
    const std::vector<Tensor> params = {ck.model[0].second, ck.model[1].second};
    const Status st = check_torch_optimizer_state(ck, params);
    EXPECT_EQ(st.code(), Code::shape_mismatch);
    EXPECT_NE(st.message().find("parameter 1 is (3,) but the parameter is (2,)"), std::string::npos) << st.message();
    // Huge shapes are refused before anything is allocated (the reader's caps).
    const auto huge = [](P& p) {
        p.int1(0).op('}').op('(').str("momentum_buffer");
        p.global("torch._utils", "_rebuild_tensor_v2").op('(');
        p.op('(').str("storage").global("torch", "FloatStorage").str("2").str("cpu").int1(6).op('t').op('Q');
        p.int1(0).op('(').long1(std::int64_t(1) << 40).long1(std::int64_t(1) << 40).op('t');
        p.op('(').int1(0).int1(0).op('t').op(0x89).global("collections", "OrderedDict").op(')').op('R').op('t');
        p.op('R').op('u');
    };
    TorchCheckpoint big;
    const Status hs = read_crafted(crafted(huge, [](P& p) { sgd_group(p); }), big);
    EXPECT_TRUE(hs.code() == Code::size_overflow || hs.code() == Code::limit_exceeded) << hs.to_string();
}

TEST(TorchCheckpoint, EveryTruncationAndByteFlipOfAWrittenCheckpointIsAnErrorOrAFile) {
    const auto cases = mkt::load_training_cases("checkpoint");
    ASSERT_FALSE(cases.empty());
    Continued run;
    continue_case(cases.back(), run);  // RMSprop: every kind of entry (int step, tensors, initial_lr)
    if (HasFatalFailure()) return;
    std::vector<std::uint8_t> bytes;
    ASSERT_TRUE(write_torch_checkpoint(run.model, state_after(run), bytes).ok());
    const OptimizerOptions hint = kind_of(cases.back().word("optimizer"));
    std::size_t refused_count = 0;
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        TorchCheckpoint ck;
        refused_count += !read_file(std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + long(n)), &hint, ck).ok();
    }
    EXPECT_EQ(refused_count, bytes.size());  // every truncation
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        std::vector<std::uint8_t> flipped = bytes;
        flipped[i] ^= 0x5a;
        TorchCheckpoint ck;
        (void)read_file(flipped, &hint, ck);  // an error or (a changed value) a file: never a crash
    }
}

TEST(TorchCheckpoint, WeightsOnlyCheckpointAndTensorLoss) {
    // {'model_state_dict': OrderedDict(w), 'loss': tensor(0.25) (saved without .item()), 'note': 'x'}
    P p;
    p.op('}').op('(').str("model_state_dict");
    p.global("collections", "OrderedDict").op(')').op('R').op('(').str("w");
    tensor(p, "0", {2, 3});
    p.op('u').str("loss");
    tensor(p, "1", {});
    p.str("note").str("x").op('u').stop();
    std::vector<std::uint8_t> loss(4);
    const float quarter = 0.25f;
    std::memcpy(loss.data(), &quarter, 4);
    const auto bytes = mkt::build_zip({{"archive/data.pkl", p.b},
                                       {"archive/data/0", f32_bytes(6)},
                                       {"archive/data/1", loss},
                                       {"archive/version", {'3', '\n'}}})
                           .bytes;
    TorchCheckpoint ck;
    const Status st = read_crafted(bytes, ck);
    ASSERT_TRUE(st.ok()) << st.to_string();
    EXPECT_FALSE(ck.has_optimizer);
    EXPECT_FALSE(ck.has_epoch);
    EXPECT_TRUE(ck.has_loss);
    EXPECT_EQ(ck.loss, 0.25);
    ASSERT_EQ(ck.model.size(), 1u);  // the loss tensor is not the model's
    EXPECT_EQ(ck.metadata, (Metadata{{"note", "x"}, {"loss", "0.25"}}));
    TrainingState state;  // no optimizer state to continue
    Sequential model;
    EXPECT_EQ(torch_training_state(ck, model, state).code(), Code::invalid_argument);
}
