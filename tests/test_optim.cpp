// Optimizers and clip_grad_norm against real PyTorch (tests/golden/training/optim.txt and
// clip.txt, make_training_golden.py): every option combination over 5 steps, the parameters
// after each step and the final state bit-exact; a save → reload → continue run equal to
// the run that never stopped; the constructor checks; no allocation in a warm step.
#include "optim.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <string>
#include <vector>

#include "alloc_tracking.hpp"
#include "golden/training_golden.hpp"

using namespace modelkeep;

namespace {

OptimizerOptions options_of(const mkt::TrainingCase& c) {
    const std::string kind = c.word("optimizer");
    OptimizerOptions o;
    if (kind == "sgd") o = sgd_options(c.number("lr", 0.0));
    if (kind == "adam") o = adam_options();
    if (kind == "adamw") o = adamw_options();
    if (kind == "rmsprop") o = rmsprop_options();
    o.lr = c.number("lr", o.lr);
    o.momentum = c.number("momentum", o.momentum);
    o.dampening = c.number("dampening", o.dampening);
    o.weight_decay = c.number("weight_decay", o.weight_decay);
    o.nesterov = c.flag("nesterov", o.nesterov);
    o.maximize = c.flag("maximize", o.maximize);
    o.beta1 = c.number("beta1", o.beta1);
    o.beta2 = c.number("beta2", o.beta2);
    o.eps = c.number("eps", o.eps);
    o.amsgrad = c.flag("amsgrad", o.amsgrad);
    o.alpha = c.number("alpha", o.alpha);
    o.centered = c.flag("centered", o.centered);
    return o;
}

constexpr int steps = 5;

// "param<i>", "param<i>_<k>", "grad<i>_<k>": the run's data, not the optimizer's state.
bool is_step_data(const std::string& label) {
    auto digit_after = [&](const char* prefix, std::size_t n) {
        return label.compare(0, n, prefix) == 0 && label.size() > n && std::isdigit((unsigned char)label[n]);
    };
    return digit_after("param", 5) || digit_after("grad", 4);
}

struct OptimRun {
    std::vector<Tensor> params, grads;
    Optimizer opt;
};

// The case's parameters registered with a new optimizer.
void start(const mkt::TrainingCase& c, OptimRun& r) {
    for (int i = 0; c.tensors.count("param" + std::to_string(i)); ++i) {
        r.params.push_back(c.tensor("param" + std::to_string(i)));
        r.grads.push_back(zeros(shape_of(r.params.back())));
    }
    ASSERT_TRUE(Optimizer::create(options_of(c), r.opt).ok());
    for (std::size_t i = 0; i < r.params.size(); ++i) ASSERT_TRUE(r.opt.add_param(r.params[i], r.grads[i]).ok());
}

void do_step(const mkt::TrainingCase& c, OptimRun& r, int k) {
    for (std::size_t i = 0; i < r.params.size(); ++i) {
        const Tensor& g = c.tensor("grad" + std::to_string(i) + "_" + std::to_string(k));
        std::copy(g.begin(), g.end(), r.grads[i].begin());
    }
    r.opt.step();
}

Tensor as_tensor(const std::vector<float>& v, const Tensor& like) { return from_data(shape_of(like), v.data()); }

void expect_final_state(const mkt::TrainingCase& c, const OptimRun& r) {
    for (std::size_t i = 0; i < r.params.size(); ++i) {
        const ParamState& st = r.opt.state(i);
        const std::string n = std::to_string(i);
        const Tensor& p = r.params[i];
        int seen = 0;
        auto check = [&](const char* key, const std::vector<float>& buf) {
            auto it = c.tensors.find(key + n);
            if (it == c.tensors.end()) {
                EXPECT_TRUE(buf.empty() || r.opt.options().kind == OptimizerKind::sgd) << c.name << ": " << key;
                return;
            }
            ++seen;
            EXPECT_TRUE(mkt::close_to(c.name + " " + key + n, as_tensor(buf, p), it->second, 0));
        };
        check("momentum_buffer", st.momentum_buffer);
        check("exp_avg", st.exp_avg);
        check("exp_avg_sq", st.exp_avg_sq);
        check("max_exp_avg_sq", st.max_exp_avg_sq);
        check("square_avg", st.square_avg);
        check("grad_avg", st.grad_avg);
        auto step = c.tensors.find("step" + n);
        if (step != c.tensors.end()) {
            ++seen;
            EXPECT_EQ(double(st.step), double(step->second())) << c.name;
        }
        EXPECT_GT(seen, r.opt.options().kind == OptimizerKind::sgd && r.opt.options().momentum == 0.0 ? -1 : 0)
            << c.name << ": no state compared for parameter " << i;
    }
}

}  // namespace

TEST(OptimGolden, EveryOptimizerAndOptionMatchesPyTorchBitForBit) {
    const auto cases = mkt::load_training_cases("optim");
    ASSERT_GT(cases.size(), 40u);
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        OptimRun r;
        start(c, r);
        for (int k = 0; k < steps; ++k) {
            do_step(c, r, k);
            for (std::size_t i = 0; i < r.params.size(); ++i) {
                const std::string key = "param" + std::to_string(i) + "_" + std::to_string(k);
                EXPECT_TRUE(mkt::close_to(c.name + " " + key, r.params[i], c.tensor(key), 0));
            }
        }
        expect_final_state(c, r);
    }
}

TEST(OptimGolden, StateKeysAreTorchsInItsOrder) {
    // The final state's tensors are written in optimizer.state[p].items() order, after the
    // params and grads; a None momentum_buffer (SGD without momentum) is left out.
    const auto cases = mkt::load_training_cases("optim");
    for (const auto& c : cases) {
        const OptimizerOptions o = options_of(c);
        std::vector<std::string> torch_keys;
        for (const std::string& label : c.tensor_order)
            if (label.back() == '0' && !is_step_data(label)) torch_keys.push_back(label.substr(0, label.size() - 1));
        std::vector<std::string> ours;
        for (const char* k : state_keys(o))
            if (!(o.kind == OptimizerKind::sgd && o.momentum == 0.0)) ours.push_back(k);
        EXPECT_EQ(ours, torch_keys) << c.name;
        ParamState st;
        for (const std::string& k : ours) EXPECT_EQ(state_buffer(st, k) == nullptr, k == "step") << k;
    }
}

TEST(OptimGolden, SaveReloadContinueIsBitIdentical) {
    // Two steps, the state and parameters copied out (a checkpoint), a new optimizer given
    // them, three more steps: PyTorch's final parameters and state, bit for bit.
    const auto cases = mkt::load_training_cases("optim");
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        OptimRun first;
        start(c, first);
        for (int k = 0; k < 2; ++k) do_step(c, first, k);
        OptimRun second;
        start(c, second);
        for (std::size_t i = 0; i < second.params.size(); ++i) {
            second.params[i] = first.params[i];
            ParamState saved = first.opt.state(i);
            ASSERT_TRUE(second.opt.set_state(i, saved).ok());
        }
        for (int k = 2; k < steps; ++k) do_step(c, second, k);
        for (std::size_t i = 0; i < second.params.size(); ++i) {
            const std::string key = "param" + std::to_string(i) + "_" + std::to_string(steps - 1);
            EXPECT_TRUE(mkt::close_to(c.name + " resumed " + key, second.params[i], c.tensor(key), 0));
        }
        expect_final_state(c, second);
    }
}

TEST(OptimGolden, ClipGradNormMatchesPyTorch) {
    const auto cases = mkt::load_training_cases("clip");
    ASSERT_EQ(cases.size(), 7u);
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        std::vector<Tensor> grads;
        for (int i = 0; c.tensors.count("grad" + std::to_string(i)); ++i)
            grads.push_back(c.tensor("grad" + std::to_string(i)));
        std::vector<GradRef> refs;
        for (Tensor& g : grads) refs.push_back({g.data(), g.size()});
        float total = -1.0f;
        ASSERT_TRUE(clip_grad_norm(refs, c.number("max_norm", 1.0), c.number("norm_type", 2.0), total).ok());
        Tensor t = zeros({});
        t() = total;
        // Norms accumulate in double (PyTorch: float32): within 2 ULP; the clipped gradients
        // then carry the coefficient's rounding. Gradients under 1e-19 have squares that are
        // subnormal in float32, where PyTorch's sum loses bits that ours keeps: 8 ULP.
        float largest = 0.0f;
        for (const Tensor& g : grads)
            for (float v : g) largest = std::max(largest, std::fabs(v));
        const std::int64_t norm_ulps = largest < 1e-19f ? 8 : 2;
        EXPECT_TRUE(mkt::close_to(c.name + " total_norm", t, c.tensor("total_norm"), norm_ulps));
        for (std::size_t i = 0; i < grads.size(); ++i)
            EXPECT_TRUE(mkt::close_to(c.name + " clipped" + std::to_string(i), grads[i],
                                      c.tensor("clipped" + std::to_string(i)), 2));
    }
}

TEST(OptimChecks, InvalidOptionsAreRefusedAsPyTorchDoes) {
    Optimizer opt;
    auto code = [&](OptimizerOptions o) { return Optimizer::create(o, opt).code(); };
    EXPECT_EQ(code(sgd_options(-0.1)), Code::invalid_hyperparameter);
    EXPECT_EQ(code(sgd_options(NAN)), Code::invalid_hyperparameter);
    OptimizerOptions o = sgd_options(0.1);
    o.nesterov = true;
    EXPECT_EQ(code(o), Code::invalid_hyperparameter);  // nesterov without momentum
    o.momentum = 0.9;
    o.dampening = 0.1;
    EXPECT_EQ(code(o), Code::invalid_hyperparameter);  // nesterov with dampening
    o.dampening = 0.0;
    EXPECT_EQ(code(o), Code::ok);
    o = sgd_options(0.1);
    o.momentum = -0.5;
    EXPECT_EQ(code(o), Code::invalid_hyperparameter);
    o = sgd_options(0.1);
    o.weight_decay = -1e-4;
    EXPECT_EQ(code(o), Code::invalid_hyperparameter);
    for (OptimizerOptions a : {adam_options(), adamw_options()}) {
        OptimizerOptions b = a;
        b.beta1 = 1.0;
        EXPECT_EQ(code(b), Code::invalid_hyperparameter);
        b = a;
        b.beta2 = -0.1;
        EXPECT_EQ(code(b), Code::invalid_hyperparameter);
        b = a;
        b.eps = -1e-8;
        EXPECT_EQ(code(b), Code::invalid_hyperparameter);
        b = a;
        b.lr = -1e-3;
        EXPECT_EQ(code(b), Code::invalid_hyperparameter);
        b = a;
        b.weight_decay = -0.01;
        EXPECT_EQ(code(b), Code::invalid_hyperparameter);
        EXPECT_EQ(code(a), Code::ok);
    }
    o = rmsprop_options();
    o.alpha = -0.9;
    EXPECT_EQ(code(o), Code::invalid_hyperparameter);
    o = rmsprop_options();
    o.momentum = -0.1;
    EXPECT_EQ(code(o), Code::invalid_hyperparameter);
    EXPECT_EQ(adamw_options().weight_decay, 1e-2);
    EXPECT_EQ(adam_options().weight_decay, 0.0);
    EXPECT_EQ(rmsprop_options().lr, 1e-2);
    EXPECT_STREQ(optimizer_name(OptimizerKind::rmsprop), "RMSprop");

    ASSERT_TRUE(Optimizer::create(adam_options(), opt).ok());
    EXPECT_EQ(opt.set_lr(-1.0).code(), Code::invalid_hyperparameter);
    Tensor p = zeros({3}), g = zeros({4});
    EXPECT_EQ(opt.add_param(p, g).code(), Code::shape_mismatch);
    Tensor g3 = zeros({3});
    ASSERT_TRUE(opt.add_param(p, g3).ok());
    ParamState st;
    st.step = 2;
    st.exp_avg.assign(2, 0.0f);
    st.exp_avg_sq.assign(3, 0.0f);
    EXPECT_EQ(opt.set_state(0, st).code(), Code::shape_mismatch);
    st.exp_avg.assign(3, 0.0f);
    EXPECT_TRUE(opt.set_state(0, st).ok());
    EXPECT_EQ(opt.set_state(1, st).code(), Code::invalid_argument);
    st.step = -1;
    EXPECT_EQ(opt.set_state(0, st).code(), Code::invalid_argument);

    std::vector<GradRef> none;
    float total = 1.0f;
    EXPECT_EQ(clip_grad_norm(none, 1.0, 0.0, total).code(), Code::invalid_hyperparameter);
    EXPECT_EQ(clip_grad_norm(none, -1.0, 2.0, total).code(), Code::invalid_hyperparameter);
    ASSERT_TRUE(clip_grad_norm(none, 1.0, 2.0, total).ok());
    EXPECT_EQ(total, 0.0f);
}

TEST(OptimChecks, AWarmStepAllocatesNothing) {
    for (OptimizerOptions o : {sgd_options(0.1), adam_options(), adamw_options(), rmsprop_options()}) {
        o.momentum = 0.5;
        o.amsgrad = true;
        o.centered = true;
        Optimizer opt;
        ASSERT_TRUE(Optimizer::create(o, opt).ok());
        std::vector<float> p(1000, 1.0f), g(1000, 0.25f), q(7, -1.0f), h(7, 2.0f);
        ASSERT_TRUE(opt.add_param(p.data(), g.data(), p.size()).ok());
        ASSERT_TRUE(opt.add_param(q.data(), h.data(), q.size()).ok());
        mkt::AllocScope scope;
        for (int k = 0; k < 3; ++k) opt.step();
        std::vector<GradRef> refs = {{g.data(), g.size()}, {h.data(), h.size()}};
        const long before_clip = scope.news();  // the vector above
        float total = 0.0f;
        ASSERT_TRUE(clip_grad_norm(refs, 1.0, 2.0, total).ok());
        EXPECT_EQ(scope.news(), before_clip) << optimizer_name(o.kind);
        EXPECT_EQ(before_clip, 1) << optimizer_name(o.kind);
    }
}
