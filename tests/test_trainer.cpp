// Trainer (trainer.hpp): PyTorch's loop against real PyTorch
// (tests/golden/trainer/*.txt, written by tests/golden/make_trainer_golden.py),
// bit-exact resume (at an epoch boundary and mid-epoch, Adam + StepLR per batch
// and SGD with Nesterov momentum, shuffling, Dropout and BatchNorm1d),
// accumulation, evaluate, allocation-free warm steps, every error, and the
// option parsers (grammar, errors, canonical round trip).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "alloc_tracking.hpp"
#include "fixtures.hpp"
#include "golden/training_golden.hpp"
#include "rng.hpp"
#include "trainer.hpp"

using namespace modelkeep;

namespace {

Tensor random_tensor(const Shape& shape, std::uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
    Tensor t = zeros(shape);
    Rng rng(seed);
    for (float& v : t) v = rng.uniform(lo, hi);
    return t;
}

// Class indices 0..classes-1 as float32, shape (n,).
Tensor class_targets(std::size_t n, std::size_t classes, std::uint64_t seed) {
    Tensor t = zeros({n});
    Rng rng(seed);
    for (float& v : t) v = float(rng.next_u32() % classes);
    return t;
}

bool same_bits(const Tensor& a, const Tensor& b) {
    return a.size() == b.size() && shape_of(a) == shape_of(b) &&
           std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// Every tensor of two models' state dicts (weights and running stats) bit for bit.
void expect_same_model(const Sequential& a, const Sequential& b, const std::string& what) {
    const StateDict sa = a.state_dict(), sb = b.state_dict();
    ASSERT_EQ(sa.size(), sb.size());
    for (std::size_t i = 0; i < sa.size(); ++i) {
        EXPECT_EQ(sa[i].first, sb[i].first);
        EXPECT_TRUE(same_bits(sa[i].second, sb[i].second)) << what << ": " << sa[i].first;
    }
}

void expect_same_state(const TrainingState& a, const TrainingState& b, const std::string& what) {
    ASSERT_EQ(a.params.size(), b.params.size());
    for (std::size_t i = 0; i < a.params.size(); ++i) {
        const ParamState &p = a.params[i], &q = b.params[i];
        EXPECT_EQ(p.step, q.step) << what << " " << i;
        EXPECT_EQ(p.has_momentum_buffer, q.has_momentum_buffer) << what << " " << i;
        EXPECT_TRUE(same_bits(p.momentum_buffer, q.momentum_buffer)) << what << " momentum_buffer " << i;
        EXPECT_TRUE(same_bits(p.exp_avg, q.exp_avg)) << what << " exp_avg " << i;
        EXPECT_TRUE(same_bits(p.exp_avg_sq, q.exp_avg_sq)) << what << " exp_avg_sq " << i;
        EXPECT_TRUE(same_bits(p.max_exp_avg_sq, q.max_exp_avg_sq)) << what << " max_exp_avg_sq " << i;
    }
    EXPECT_EQ(a.scheduler.last_epoch, b.scheduler.last_epoch) << what;
    EXPECT_EQ(a.scheduler.step_count, b.scheduler.step_count) << what;
    EXPECT_EQ(std::memcmp(&a.scheduler.lr, &b.scheduler.lr, sizeof(double)), 0) << what;
    EXPECT_EQ(a.epoch, b.epoch) << what;
    EXPECT_EQ(a.batch, b.batch) << what;
    EXPECT_EQ(a.steps, b.steps) << what;
    EXPECT_EQ(a.dropout_rng, b.dropout_rng) << what;
    EXPECT_EQ(a.shuffle_rng, b.shuffle_rng) << what;
}

const char* resume_spec = "Linear(6,16),BatchNorm1d(16),ReLU,Dropout(0.25),Linear(16,4)";

TrainerOptions adam_step_lr() {
    TrainerOptions o;
    o.optimizer = adam_options();
    o.optimizer.lr = 0.01;
    o.loss.kind = LossKind::cross_entropy;
    o.has_scheduler = true;
    o.scheduler = step_lr_options(3, 0.5);
    o.scheduler_per_batch = true;
    o.seed = 7;
    o.batch_size = 8;
    o.shuffle = true;
    return o;
}

TrainerOptions sgd_nesterov() {
    TrainerOptions o;
    o.optimizer = sgd_options(0.05);
    o.optimizer.momentum = 0.9;
    o.optimizer.nesterov = true;
    o.optimizer.weight_decay = 1e-3;
    o.loss.kind = LossKind::cross_entropy;
    o.loss.label_smoothing = 0.1;
    o.has_scheduler = true;
    o.scheduler = cosine_annealing_lr_options(4);  // per epoch
    o.max_grad_norm = 1.0;
    o.seed = 11;
    o.batch_size = 8;
    o.shuffle = true;
    return o;
}

}  // namespace

// The step-level calls and train_batch are the same loop: bit-identical weights.
TEST(Trainer, TrainBatchIsTheStepLevelLoop) {
    Sequential a = mkt::make_model("Linear(5,7),Tanh,Dropout(0.2),Linear(7,3)"),
               b = mkt::make_model("Linear(5,7),Tanh,Dropout(0.2),Linear(7,3)");
    TrainerOptions o;
    o.loss.kind = LossKind::cross_entropy;
    o.seed = 3;
    Trainer ta, tb;
    ASSERT_TRUE(Trainer::create(a, o, ta).ok());
    ASSERT_TRUE(Trainer::create(b, o, tb).ok());
    EXPECT_TRUE(std::isnan(ta.last_loss()));
    const Tensor x = random_tensor({10, 5}, 1), t = class_targets(10, 3, 2);
    for (int s = 0; s < 4; ++s) {
        float la = 0, lb = 0;
        ASSERT_TRUE(ta.train_batch(x, t, la).ok());
        tb.zero_grad();
        Tensor y;
        ASSERT_TRUE(tb.forward(x, y).ok());
        EXPECT_EQ(shape_of(y), (Shape{10, 3}));
        ASSERT_TRUE(tb.compute_loss(t, lb).ok());
        ASSERT_TRUE(tb.backward().ok());
        ASSERT_TRUE(tb.step().ok());
        EXPECT_EQ(la, lb);
        EXPECT_EQ(ta.last_loss(), la);
    }
    expect_same_model(a, b, "train_batch vs steps");
    EXPECT_EQ(ta.state().steps, 4);
    EXPECT_EQ(ta.parameter_names(), (std::vector<std::string>{"0.weight", "0.bias", "3.weight", "3.bias"}));
}

// A small problem learns: the loss falls and the accuracy rises.
TEST(Trainer, LearnsASeparableProblem) {
    Sequential m = mkt::make_model("Linear(2,16),ReLU,Linear(16,2)");
    TrainerOptions o;
    o.optimizer.lr = 0.05;
    o.loss.kind = LossKind::cross_entropy;
    o.batch_size = 16;
    Trainer t;
    ASSERT_TRUE(Trainer::create(m, o, t).ok());
    Tensor x = random_tensor({128, 2}, 5), y = zeros({128});
    for (std::size_t i = 0; i < 128; ++i) y(i) = x(i, 0) + x(i, 1) > 0 ? 1.0f : 0.0f;
    ASSERT_TRUE(t.set_data(x, y).ok());
    Evaluation before, after;
    ASSERT_TRUE(t.evaluate(x, y, before).ok());
    BatchResult r;
    int epochs = 0;
    for (int i = 0; i < 8 * 30; ++i) {
        ASSERT_TRUE(t.fit_batch(r).ok());
        EXPECT_EQ(r.batches, 8);
        EXPECT_EQ(r.batch, i % 8);
        EXPECT_EQ(r.epoch, i / 8);
        EXPECT_EQ(r.epoch_done, i % 8 == 7);
        epochs += r.epoch_done;
        // The cheap counters are state()'s, mid-epoch and at its end.
        const TrainingState s = t.state();
        EXPECT_EQ(t.epoch(), s.epoch);
        EXPECT_EQ(t.batch(), s.batch);
        EXPECT_EQ(t.steps(), s.steps);
        EXPECT_EQ(t.batch(), r.epoch_done ? 0 : i % 8 + 1);
        EXPECT_EQ(t.steps(), i + 1);
    }
    EXPECT_EQ(epochs, 30);
    ASSERT_TRUE(t.evaluate(x, y, after).ok());
    EXPECT_EQ(after.samples, 128u);
    EXPECT_LT(after.loss, before.loss * 0.5);
    EXPECT_GT(after.accuracy, 0.95);
    EXPECT_EQ(t.state().epoch, 30);
    EXPECT_EQ(t.state().batch, 0);
}

// backward accumulates until zero_grad, as loss.backward() does.
TEST(Trainer, BackwardAccumulates) {
    Sequential m = mkt::make_model("Linear(4,3)");
    TrainerOptions o;
    o.loss.kind = LossKind::mse;
    Trainer t;
    ASSERT_TRUE(Trainer::create(m, o, t).ok());
    const Tensor x = random_tensor({5, 4}, 1), target = random_tensor({5, 3}, 2);
    const Tensor x2 = random_tensor({5, 4}, 3), target2 = random_tensor({5, 3}, 4);
    float loss = 0;
    Tensor y;
    auto pass = [&](const Tensor& xi, const Tensor& ti) {
        ASSERT_TRUE(t.forward(xi, y).ok());
        ASSERT_TRUE(t.compute_loss(ti, loss).ok());
        ASSERT_TRUE(t.backward().ok());
    };
    t.zero_grad();
    pass(x, target);
    const std::vector<Tensor> g1 = t.gradients();
    t.zero_grad();
    pass(x2, target2);
    const std::vector<Tensor> g2 = t.gradients();
    t.zero_grad();
    pass(x, target);
    pass(x2, target2);
    ASSERT_EQ(t.gradients().size(), 2u);
    for (std::size_t i = 0; i < g1.size(); ++i) {
        const Tensor sum = g1[i] + g2[i];
        EXPECT_TRUE(same_bits(t.gradients()[i], sum)) << i;
        EXPECT_FALSE(same_bits(t.gradients()[i], g2[i])) << i;
    }
    // A second backward of the same loss is refused (the graph is spent), as in PyTorch.
    EXPECT_EQ(t.backward().code(), Code::invalid_argument);
}

// Resuming from state() and the state dict continues bit for bit.
class TrainerResume : public ::testing::TestWithParam<int> {};

TEST_P(TrainerResume, IsBitExact) {
    const TrainerOptions options = GetParam() == 0 ? adam_step_lr() : sgd_nesterov();
    const Tensor x = random_tensor({44, 6}, 21), y = class_targets(44, 4, 22);  // 6 batches, the last of 4
    const int total = 17;
    Sequential whole = mkt::make_model(resume_spec, 5);
    Trainer tw;
    ASSERT_TRUE(Trainer::create(whole, options, tw).ok());
    ASSERT_TRUE(tw.set_data(x, y).ok());
    BatchResult r;
    for (int i = 0; i < total; ++i) ASSERT_TRUE(tw.fit_batch(r).ok());
    EXPECT_EQ(tw.state().steps, total);
    for (const int k : {6, 12, 9, 3}) {  // epoch boundaries, then mid-epoch
        Sequential first = mkt::make_model(resume_spec, 5);
        Trainer t1;
        ASSERT_TRUE(Trainer::create(first, options, t1).ok());
        ASSERT_TRUE(t1.set_data(x, y).ok());
        for (int i = 0; i < k; ++i) ASSERT_TRUE(t1.fit_batch(r).ok());
        const TrainingState saved = t1.state();
        EXPECT_EQ(saved.batch, k % 6);
        Sequential second = mkt::make_model(resume_spec, 99);  // other weights, replaced by the checkpoint's
        LoadReport report;
        ASSERT_TRUE(second.load_state_dict(first.state_dict(), true, report).ok());
        Trainer t2;
        ASSERT_TRUE(Trainer::resume(second, saved, t2).ok());
        ASSERT_TRUE(t2.set_data(x, y).ok());
        EXPECT_EQ(t2.lr(), t1.lr());
        for (int i = k; i < total; ++i) ASSERT_TRUE(t2.fit_batch(r).ok());
        const std::string what = "resumed after " + std::to_string(k);
        expect_same_model(whole, second, what);
        expect_same_state(tw.state(), t2.state(), what);
    }
    // The comparison can fail: a different seed gives different weights.
    TrainerOptions other = options;
    other.seed += 1;
    Sequential m = mkt::make_model(resume_spec, 5);
    Trainer t;
    ASSERT_TRUE(Trainer::create(m, other, t).ok());
    ASSERT_TRUE(t.set_data(x, y).ok());
    for (int i = 0; i < total; ++i) ASSERT_TRUE(t.fit_batch(r).ok());
    EXPECT_FALSE(same_bits(m.state_dict()[0].second, whole.state_dict()[0].second));
}

INSTANTIATE_TEST_SUITE_P(Optimizers, TrainerResume, ::testing::Values(0, 1));

// A warm fit_batch (and train_batch) allocates nothing: the batch is gathered into
// kept tensors (the short last batch into a second set), the gradients and the
// optimizer state exist, and the new weights go straight into the packed layout
// (store_parameters).
TEST(Trainer, WarmFitBatchAllocatesNothing) {
    for (const int which : {0, 1}) {
        Sequential m = mkt::make_model("Linear(20,32),BatchNorm1d(32),ReLU,Dropout(0.2),Linear(32,10)");
        TrainerOptions o = which == 0 ? adam_step_lr() : sgd_nesterov();
        o.batch_size = 16;
        Trainer t;
        ASSERT_TRUE(Trainer::create(m, o, t).ok());
        // 60 samples: 3 batches of 16 and a short one of 12 (its own buffers, swapped in).
        ASSERT_TRUE(t.set_data(random_tensor({60, 20}, 1), class_targets(60, 10, 2)).ok());
        BatchResult r;
        for (int i = 0; i < 5; ++i) ASSERT_TRUE(t.fit_batch(r).ok());  // warm, and across an epoch's start
        {
            const mkt::AllocScope scope;
            for (int i = 0; i < 8; ++i) ASSERT_TRUE(t.fit_batch(r).ok());
            EXPECT_EQ(scope.news(), 0) << "fit_batch, options " << which;
        }
        const Tensor x = random_tensor({16, 20}, 3), y = class_targets(16, 10, 4);
        float loss = 0;
        ASSERT_TRUE(t.train_batch(x, y, loss).ok());
        const mkt::AllocScope scope;
        ASSERT_TRUE(t.train_batch(x, y, loss).ok());
        EXPECT_EQ(scope.news(), 0) << "train_batch, options " << which;
    }
}

// store_parameters writes the same floats as load_parameters' re-packing.
TEST(Trainer, StoreParametersIsLoadParameters) {
    Sequential a = mkt::make_model("Linear(13,21),ReLU,Linear(21,5)"),
               b = mkt::make_model("Linear(13,21),ReLU,Linear(21,5)");
    std::vector<Tensor> values;
    ASSERT_TRUE(parameters_of(a, values).ok());
    Rng rng(3);
    for (Tensor& v : values)
        for (float& f : v) f = rng.uniform(-2, 2);
    ASSERT_TRUE(load_parameters(a, values).ok());
    const mkt::AllocScope scope;
    ASSERT_TRUE(store_parameters(b, values).ok());
    EXPECT_EQ(scope.news(), 0);
    ASSERT_TRUE(a.layers()[0].params[0].is_packed());
    for (std::size_t l : {0u, 2u})
        for (std::size_t k = 0; k < 2; ++k)
            EXPECT_TRUE(same_bits(a.layers()[l].params[k].values(), b.layers()[l].params[k].values())) << l << k;
    values[0] = zeros({3, 3});
    EXPECT_EQ(store_parameters(b, values).code(), Code::shape_mismatch);
}

// evaluate: eval mode (Dropout off, BatchNorm1d's running stats used and kept), the
// loss weighted by batch sizes, the accuracy of the arg-max; nothing else changes.
TEST(Trainer, EvaluateChangesNothing) {
    Sequential m = mkt::make_model(resume_spec, 2);
    TrainerOptions o = adam_step_lr();
    o.batch_size = 4;
    Trainer t;
    ASSERT_TRUE(Trainer::create(m, o, t).ok());
    const Tensor x = random_tensor({10, 6}, 8), y = class_targets(10, 4, 9);
    float loss = 0;
    ASSERT_TRUE(t.train_batch(x, y, loss).ok());
    const StateDict before = m.state_dict();
    const TrainingState s0 = t.state();
    Evaluation e;
    ASSERT_TRUE(t.evaluate(x, y, e).ok());
    // Nothing changed: the weights, the running stats, the generators, the counters.
    const StateDict after = m.state_dict();
    ASSERT_EQ(after.size(), before.size());
    for (std::size_t i = 0; i < after.size(); ++i)
        EXPECT_TRUE(same_bits(after[i].second, before[i].second)) << after[i].first;
    expect_same_state(s0, t.state(), "evaluate");
    // The expected values, from the inference forward over all samples at once.
    Tensor out;
    ASSERT_TRUE(m.forward(x, out).ok());
    Tensor losses, grad;
    std::vector<std::int64_t> classes(y.begin(), y.end());
    ClassLossOptions co;
    co.reduction = Reduction::none;
    ASSERT_TRUE(cross_entropy_loss(out, classes, co, losses, grad).ok());
    double sum = 0;
    int right = 0;
    for (std::size_t i = 0; i < 10; ++i) {
        sum += losses(i);
        std::size_t best = 0;
        for (std::size_t c = 1; c < 4; ++c)
            if (out(i, c) > out(i, best)) best = c;
        right += std::int64_t(best) == classes[i];
    }
    EXPECT_EQ(e.samples, 10u);
    EXPECT_NEAR(e.loss, sum / 10, 1e-6 * std::fabs(sum));
    EXPECT_EQ(e.accuracy, right / 10.0);
    Evaluation again;
    ASSERT_TRUE(t.evaluate(x, y, again).ok());
    EXPECT_EQ(again.loss, e.loss);
    // Regression losses have no accuracy.
    Sequential r = mkt::make_model("Linear(3,2)");
    TrainerOptions ro;
    ro.loss.kind = LossKind::huber;
    Trainer tr;
    ASSERT_TRUE(Trainer::create(r, ro, tr).ok());
    ASSERT_TRUE(tr.evaluate(random_tensor({5, 3}, 1), random_tensor({5, 2}, 2), e).ok());
    EXPECT_TRUE(std::isnan(e.accuracy));
    EXPECT_TRUE(std::isfinite(e.loss));
}

// One test per error code the trainer gives.
TEST(Trainer, Errors) {
    const char* spec = "Linear(4,6),ReLU,Linear(6,3)";
    TrainerOptions o;
    o.loss.kind = LossKind::cross_entropy;
    Trainer t;
    {  // needs_f32: compact weights are for inference
        Sequential m = mkt::make_model(spec);
        m.set_weight_dtype(DType::f16);
        EXPECT_EQ(Trainer::create(m, o, t).code(), Code::needs_f32);
    }
    Sequential m = mkt::make_model(spec);
    auto bad_option = [&](TrainerOptions b, const char* name) {
        const Status s = Trainer::create(m, b, t);
        EXPECT_EQ(s.code(), Code::invalid_hyperparameter) << name;
        EXPECT_NE(s.message().find(name), std::string::npos) << s.message();
    };
    TrainerOptions b = o;
    b.optimizer.lr = -1;
    bad_option(b, "lr");
    b = o;
    b.batch_size = 0;
    bad_option(b, "batch_size");
    b.batch_size = std::size_t(max_tensor_elements) + 1;
    bad_option(b, "batch_size");
    b = o;
    b.max_grad_norm = NAN;
    bad_option(b, "max_grad_norm");
    b = o;
    b.loss.label_smoothing = 1.5;
    bad_option(b, "label_smoothing");
    b = o;
    b.loss.kind = LossKind::mse;
    b.loss.weight = {1, 2, 3};
    bad_option(b, "weight");
    b = o;
    b.has_scheduler = true;
    b.scheduler = step_lr_options(0);
    bad_option(b, "step_size");

    // invalid_argument: calls out of order, or on a trainer never created.
    Trainer none;
    float loss = 0;
    const Tensor x = random_tensor({5, 4}, 1), y = class_targets(5, 3, 2);
    EXPECT_EQ(none.train_batch(x, y, loss).code(), Code::invalid_argument);
    ASSERT_TRUE(Trainer::create(m, o, t).ok());
    EXPECT_EQ(t.compute_loss(y, loss).code(), Code::invalid_argument);
    EXPECT_EQ(t.backward().code(), Code::invalid_argument);
    EXPECT_EQ(t.step().code(), Code::invalid_argument);
    BatchResult r;
    EXPECT_EQ(t.fit_batch(r).code(), Code::invalid_argument);
    Tensor out;
    ASSERT_TRUE(t.forward(x, out).ok());
    EXPECT_EQ(t.backward().code(), Code::invalid_argument);  // no loss yet

    // shape_mismatch: the data's, the input's, the target's.
    EXPECT_EQ(t.set_data(x, class_targets(4, 3, 2)).code(), Code::shape_mismatch);
    EXPECT_EQ(t.train_batch(random_tensor({5, 7}, 1), y, loss).code(), Code::shape_mismatch);
    EXPECT_EQ(t.train_batch(x, class_targets(6, 3, 2), loss).code(), Code::shape_mismatch);
    Evaluation e;
    EXPECT_EQ(t.evaluate(x, class_targets(6, 3, 2), e).code(), Code::shape_mismatch);

    // target_out_of_range: not integral, NaN, beyond the classes.
    for (const float v : {1.5f, NAN, 3.0f, -2.0f, 1e30f}) {
        Tensor bad = y;
        bad(2) = v;
        EXPECT_EQ(t.train_batch(x, bad, loss).code(), Code::target_out_of_range) << v;
    }
    // After the errors the trainer still trains.
    EXPECT_TRUE(t.train_batch(x, y, loss).ok());

    // resume: the parameter states must fit the model.
    TrainingState s = t.state();
    Sequential other = mkt::make_model("Linear(4,6),ReLU,Linear(6,3,bias=false)");
    Trainer t2;
    EXPECT_EQ(Trainer::resume(other, s, t2).code(), Code::shape_mismatch);
    s.params[0].exp_avg.resize(3);
    EXPECT_EQ(Trainer::resume(m, s, t2).code(), Code::shape_mismatch);
    s = t.state();
    s.batch = -1;
    EXPECT_EQ(Trainer::resume(m, s, t2).code(), Code::invalid_argument);
    // Counters beyond 2^53 (a hostile state: counting on from INT64_MAX would overflow).
    s = t.state();
    s.steps = INT64_MAX;
    EXPECT_EQ(Trainer::resume(m, s, t2).code(), Code::invalid_argument);
    s = t.state();
    s.epoch = max_state_count + 1;
    EXPECT_EQ(Trainer::resume(m, s, t2).code(), Code::invalid_argument);
    s = t.state();
    s.params[1].step = INT64_MAX;
    EXPECT_EQ(Trainer::resume(m, s, t2).code(), Code::invalid_argument);
    s = t.state();
    s.epoch = s.batch = s.steps = max_state_count;  // the cap itself is a valid state
    s.params[1].step = max_state_count;
    EXPECT_TRUE(Trainer::resume(m, s, t2).ok());
    s = t.state();
    s.options.optimizer.eps = -1;
    EXPECT_EQ(Trainer::resume(m, s, t2).code(), Code::invalid_hyperparameter);
}

// set_lr without a schedule sticks and travels in the state; with one it is the
// chainable schedule's starting point, as assigning param_groups[0]['lr'].
TEST(Trainer, SetLr) {
    Sequential m = mkt::make_model("Linear(4,3)");
    TrainerOptions o;
    Trainer t;
    ASSERT_TRUE(Trainer::create(m, o, t).ok());
    EXPECT_EQ(t.lr(), 1e-3);
    ASSERT_TRUE(t.set_lr(0.5).ok());
    EXPECT_EQ(t.set_lr(-1).code(), Code::invalid_hyperparameter);
    EXPECT_EQ(t.lr(), 0.5);
    Trainer t2;
    ASSERT_TRUE(Trainer::resume(m, t.state(), t2).ok());
    EXPECT_EQ(t2.lr(), 0.5);
    o.has_scheduler = true;
    o.scheduler = step_lr_options(1, 0.5);
    ASSERT_TRUE(Trainer::create(m, o, t).ok());
    ASSERT_TRUE(t.set_lr(0.25).ok());
    t.end_epoch();
    EXPECT_EQ(t.lr(), 0.125);
    EXPECT_EQ(t.state().epoch, 1);
}

TEST(TrainOptions, ParsesTheGrammar) {
    OptimizerOptions op;
    ASSERT_TRUE(parse_optimizer("adam(lr=1e-3, betas=(0.8, 0.99), eps=1e-7, weight_decay=0, amsgrad=True)", op).ok());
    EXPECT_EQ(op.kind, OptimizerKind::adam);
    EXPECT_EQ(op.lr, 1e-3);
    EXPECT_EQ(op.beta1, 0.8);
    EXPECT_EQ(op.beta2, 0.99);
    EXPECT_EQ(op.eps, 1e-7);
    EXPECT_TRUE(op.amsgrad);
    ASSERT_TRUE(parse_optimizer(" SGD ( lr = 0.1 , momentum=0.9, nesterov=true ) ", op).ok());
    EXPECT_EQ(op.kind, OptimizerKind::sgd);
    EXPECT_EQ(op.lr, 0.1);
    EXPECT_EQ(op.momentum, 0.9);
    EXPECT_TRUE(op.nesterov);
    ASSERT_TRUE(parse_optimizer("AdamW", op).ok());
    EXPECT_EQ(op.kind, OptimizerKind::adamw);
    EXPECT_EQ(op.weight_decay, 1e-2);  // AdamW's default
    ASSERT_TRUE(parse_optimizer("rmsprop()", op).ok());
    EXPECT_EQ(op.kind, OptimizerKind::rmsprop);
    EXPECT_EQ(op.lr, 1e-2);

    LossOptions lo;
    ASSERT_TRUE(parse_loss("cross_entropy(label_smoothing=0.1, ignore_index=-1, weight=[1, 2.5])", lo).ok());
    EXPECT_EQ(lo.kind, LossKind::cross_entropy);
    EXPECT_EQ(lo.label_smoothing, 0.1);
    EXPECT_EQ(lo.ignore_index, -1);
    EXPECT_EQ(lo.weight, (std::vector<float>{1.0f, 2.5f}));
    ASSERT_TRUE(parse_loss("CrossEntropyLoss", lo).ok());
    EXPECT_EQ(lo.kind, LossKind::cross_entropy);
    EXPECT_TRUE(lo.weight.empty());
    ASSERT_TRUE(parse_loss("bcewithlogitsloss(pos_weight=[3], reduction=sum)", lo).ok());
    EXPECT_EQ(lo.kind, LossKind::bce_with_logits);
    EXPECT_EQ(lo.pos_weight, (std::vector<float>{3.0f}));
    EXPECT_EQ(lo.reduction, Reduction::sum);
    ASSERT_TRUE(parse_loss("huber(delta=2)", lo).ok());
    EXPECT_EQ(lo.delta, 2.0);
    for (LossKind k : {LossKind::mse, LossKind::l1, LossKind::smooth_l1, LossKind::huber, LossKind::cross_entropy,
                       LossKind::nll, LossKind::bce_with_logits, LossKind::bce}) {
        ASSERT_TRUE(parse_loss(loss_name(k), lo).ok()) << loss_name(k);
        EXPECT_EQ(lo.kind, k);
    }

    SchedulerOptions so;
    ASSERT_TRUE(parse_scheduler("StepLR(step_size=10, gamma=0.5)", so).ok());
    EXPECT_EQ(so.kind, SchedulerKind::step_lr);
    EXPECT_EQ(so.step_size, 10);
    EXPECT_EQ(so.gamma, 0.5);
    ASSERT_TRUE(parse_scheduler("cosine_annealing_lr(T_max=100, eta_min=1e-5)", so).ok());
    EXPECT_EQ(so.T_max, 100);
    EXPECT_EQ(so.eta_min, 1e-5);
    ASSERT_TRUE(parse_scheduler("linear_lr(start_factor=0.25, end_factor=1, total_iters=4)", so).ok());
    EXPECT_EQ(so.start_factor, 0.25);
    EXPECT_EQ(so.total_iters, 4);
}

TEST(TrainOptions, RefusesWithTheCulpritNamed) {
    OptimizerOptions op;
    LossOptions lo;
    SchedulerOptions so;
    const struct {
        int which;  // 0 optimizer, 1 loss, 2 scheduler
        std::string text, named;
    } cases[] = {
        {0, "sgd", "lr"},  // required
        {0, "sgd(momentum=0.9)", "lr"},
        {0, "nadam", "nadam"},
        {0, "adam(foo=1)", "foo"},
        {0, "adam(lr=abc)", "abc"},
        {0, "adam(lr=1e-3x)", "lr"},
        {0, "adam(lr=0x1p-3)", "lr"},
        {0, "adam(lr=inf)", "inf"},
        {0, "adam(lr=-1)", "lr"},
        {0, "adam(betas=(0.9))", "betas"},
        {0, "adam(betas=(0.9, 1.5))", "beta"},
        {0, "adam(amsgrad=yes)", "amsgrad"},
        {0, "adam(lr=1", "')'"},
        {0, "adam(lr=1) extra", "extra"},
        {0, "adam(lr=1, lr=2)", "twice"},
        {0, "sgd(lr=0.1, nesterov=true)", "Nesterov"},
        {0, "", "no name"},
        {1, "mse(beta=1)", "beta"},
        {1, "cross_entropy(label_smoothing=2)", "label_smoothing"},
        {1, "cross_entropy(reduction=avg)", "avg"},
        {1, "cross_entropy(ignore_index=1.5)", "ignore_index"},
        {1, "cross_entropy(weight=1)", "weight"},
        {1, "cross_entropy(weight=[1, x])", "x"},
        {1, "huber(delta=0)", "delta"},
        {1, "hinge", "hinge"},
        {2, "step_lr", "step_size"},
        {2, "step_lr(step_size=1.5)", "step_size"},
        {2, "step_lr(step_size=0)", "step_size"},
        {2, "cosine_annealing_lr()", "T_max"},
        {2, "exponential_lr(gamma=0.9)", "exponential_lr"},
    };
    for (const auto& c : cases) {
        const Status s = c.which == 0   ? parse_optimizer(c.text, op)
                         : c.which == 1 ? parse_loss(c.text, lo)
                                        : parse_scheduler(c.text, so);
        EXPECT_EQ(s.code(), Code::invalid_hyperparameter) << c.text;
        EXPECT_NE(s.message().find(c.named), std::string::npos) << c.text << ": " << s.message();
    }
    // Bounded before parsing: the text's length and a list's.
    EXPECT_EQ(parse_loss("mse" + std::string(5000, ' '), lo).code(), Code::invalid_hyperparameter);
    std::string many = "cross_entropy(weight=[";
    for (int i = 0; i < 70000; ++i) many += "1,";
    many += "1])";
    const Status s = parse_loss(many, lo);
    EXPECT_EQ(s.code(), Code::invalid_hyperparameter);
    EXPECT_NE(s.message().find("bytes"), std::string::npos) << s.message();
}

// The written text is canonical (every option) and parses back to the same options.
TEST(TrainOptions, TextRoundTrips) {
    for (const char* text :
         {"adam", "adamw(lr=0.003, betas=(0.85, 0.995), amsgrad=true, maximize=true)",
          "sgd(lr=0.1, momentum=0.9, nesterov=true, weight_decay=1e-4)", "sgd(lr=0.3, dampening=0.1)",
          "rmsprop(lr=0.001, alpha=0.9, centered=true, momentum=0.5)"}) {
        OptimizerOptions a, b;
        ASSERT_TRUE(parse_optimizer(text, a).ok()) << text;
        const std::string canon = optimizer_text(a);
        ASSERT_TRUE(parse_optimizer(canon, b).ok()) << canon;
        EXPECT_EQ(optimizer_text(b), canon);
        EXPECT_EQ(std::memcmp(&a.lr, &b.lr, sizeof(double)), 0) << canon;
        EXPECT_EQ(a.kind, b.kind);
        EXPECT_EQ(a.beta1, b.beta1);
        EXPECT_EQ(a.beta2, b.beta2);
        EXPECT_EQ(a.momentum, b.momentum);
        EXPECT_EQ(a.nesterov, b.nesterov);
        EXPECT_EQ(a.amsgrad, b.amsgrad);
        EXPECT_EQ(a.centered, b.centered);
        EXPECT_EQ(a.alpha, b.alpha);
        EXPECT_EQ(a.weight_decay, b.weight_decay);
        EXPECT_EQ(a.dampening, b.dampening);
        EXPECT_EQ(a.maximize, b.maximize);
    }
    EXPECT_EQ(optimizer_text(adam_options()),
              "adam(lr=0.001, betas=(0.9, 0.999), eps=1e-08, amsgrad=false, weight_decay=0, maximize=false)");
    for (const char* text : {"mse", "l1(reduction=sum)", "smooth_l1(beta=0.5)", "huber(delta=2.5, reduction=none)",
                             "cross_entropy(weight=[0.1, 0.7, 3e-7], label_smoothing=0.2, ignore_index=2)", "nll",
                             "bce_with_logits(pos_weight=[3, 0.3])", "bce(weight=[1.5])"}) {
        LossOptions a, b;
        ASSERT_TRUE(parse_loss(text, a).ok()) << text;
        const std::string canon = loss_text(a);
        ASSERT_TRUE(parse_loss(canon, b).ok()) << canon;
        EXPECT_EQ(loss_text(b), canon);
        EXPECT_EQ(a.kind, b.kind);
        EXPECT_EQ(a.reduction, b.reduction);
        EXPECT_EQ(a.beta, b.beta);
        EXPECT_EQ(a.delta, b.delta);
        EXPECT_EQ(a.ignore_index, b.ignore_index);
        EXPECT_EQ(a.label_smoothing, b.label_smoothing);
        EXPECT_TRUE(same_bits(a.weight, b.weight)) << canon;
        EXPECT_TRUE(same_bits(a.pos_weight, b.pos_weight)) << canon;
    }
    for (const char* text : {"step_lr(step_size=3)", "cosine_annealing_lr(T_max=7, eta_min=0.001)", "linear_lr",
                             "LinearLR(start_factor=0.1, total_iters=9)"}) {
        SchedulerOptions a, b;
        ASSERT_TRUE(parse_scheduler(text, a).ok()) << text;
        const std::string canon = scheduler_text(a);
        ASSERT_TRUE(parse_scheduler(canon, b).ok()) << canon;
        EXPECT_EQ(scheduler_text(b), canon);
        EXPECT_EQ(a.kind, b.kind);
        EXPECT_EQ(a.step_size, b.step_size);
        EXPECT_EQ(a.gamma, b.gamma);
        EXPECT_EQ(a.T_max, b.T_max);
        EXPECT_EQ(a.eta_min, b.eta_min);
        EXPECT_EQ(a.start_factor, b.start_factor);
        EXPECT_EQ(a.end_factor, b.end_factor);
        EXPECT_EQ(a.total_iters, b.total_iters);
    }
}

// PyTorch's loop (tests/golden/trainer/mlp.txt, make_trainer_golden.py): every step's
// loss and the final weights. Not bit-exact: the gradients' sums run in another order
// than PyTorch's (docs/TRAINING.md, Numerics), and each step feeds the next. Bound:
// within trainer_tolerance of the tensor's largest magnitude (the worst seen over the
// cases is printed; the optimizers themselves are bit-exact, test_optim.cpp).
TEST(Trainer, MatchesPyTorchsLoop) {
    constexpr double trainer_tolerance = 1e-5;
    // The reader of make_training_golden.py's format looks under golden/training/.
    const std::vector<mkt::TrainingCase> cases = mkt::load_training_cases("../trainer/mlp");
    ASSERT_EQ(cases.size(), 3u);
    for (const mkt::TrainingCase& c : cases) {
        Sequential m = mkt::make_model("Linear(4,8),Tanh,Linear(8,3)");
        std::vector<Tensor> values(4);
        for (std::size_t i = 0; i < 4; ++i) values[i] = c.tensor("param" + std::to_string(i));
        ASSERT_TRUE(load_parameters(m, values).ok());
        TrainerOptions o;
        ASSERT_TRUE(parse_optimizer(c.word("optimizer") + "(lr=1)", o.optimizer).ok());  // lr: below
        o.optimizer.lr = c.number("lr", 0);
        o.optimizer.momentum = c.number("momentum", 0);
        o.optimizer.nesterov = c.flag("nesterov");
        o.optimizer.weight_decay = c.number("weight_decay", 0);
        ASSERT_TRUE(parse_loss(c.word("loss"), o.loss).ok());
        o.batch_size = std::size_t(c.number("batch_size", 0));
        o.max_grad_norm = c.number("max_grad_norm", 0);
        o.shuffle = false;
        if (c.has("step_size")) {
            o.has_scheduler = true;
            o.scheduler = step_lr_options(std::int64_t(c.number("step_size", 1)), c.number("gamma", 0.1));
        }
        Trainer t;
        ASSERT_TRUE(Trainer::create(m, o, t).ok()) << c.name;
        ASSERT_TRUE(t.set_data(c.tensor("x"), c.tensor("target")).ok());
        const Tensor& want = c.tensor("loss");
        Tensor losses = zeros({want.size()});
        BatchResult r;
        for (std::size_t k = 0; k < want.size(); ++k) {
            ASSERT_TRUE(t.fit_batch(r).ok()) << c.name;
            losses(k) = r.loss;
        }
        EXPECT_EQ(t.state().epoch, std::int64_t(c.number("epochs", 0))) << c.name;
        EXPECT_TRUE(mkt::close_to(c.name + " loss", losses, want, 0, trainer_tolerance));
        ASSERT_TRUE(parameters_of(m, values).ok());
        double worst = 0;
        for (std::size_t i = 0; i < 4; ++i) {
            const Tensor& final = c.tensor("final" + std::to_string(i));
            EXPECT_TRUE(mkt::close_to(c.name + " final" + std::to_string(i), values[i], final, 0, trainer_tolerance));
            double scale = 0;
            for (float v : final) scale = std::max(scale, double(std::fabs(v)));
            for (std::size_t k = 0; k < final.size(); ++k)
                worst = std::max(worst, std::fabs(double(values[i].data()[k]) - final.data()[k]) / scale);
        }
        std::printf("%s: worst final weight %.3g of the tensor's scale\n", c.name.c_str(), worst);
    }
}

// Shuffling draws a permutation: one batch of every sample gives the unshuffled loss
// and step (up to the sums' order), smaller batches another run.
TEST(Trainer, ShuffleIsAPermutation) {
    const Tensor x = random_tensor({20, 3}, 1), y = random_tensor({20, 2}, 2);
    auto run = [&](bool shuffle, std::size_t batch_size, std::int64_t steps, float& loss) {
        Sequential m = mkt::make_model("Linear(3,2)");
        TrainerOptions o;
        o.optimizer = sgd_options(0.1);
        o.loss.kind = LossKind::mse;
        o.shuffle = shuffle;
        o.batch_size = batch_size;
        o.seed = 4;
        Trainer t;
        EXPECT_TRUE(Trainer::create(m, o, t).ok());
        EXPECT_TRUE(t.set_data(x, y).ok());
        BatchResult r;
        for (std::int64_t i = 0; i < steps; ++i) EXPECT_TRUE(t.fit_batch(r).ok());
        loss = r.loss;
        std::vector<Tensor> values;
        EXPECT_TRUE(parameters_of(m, values).ok());
        return values;
    };
    float plain = 0, shuffled = 0;
    const std::vector<Tensor> a = run(false, 20, 3, plain), b = run(true, 20, 3, shuffled);
    EXPECT_NEAR(shuffled, plain, 1e-6 * std::fabs(plain));
    for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(mkt::close_to("param", b[i], a[i], 0, 1e-6));
    const std::vector<Tensor> c = run(false, 5, 4, plain), d = run(true, 5, 4, shuffled);
    EXPECT_FALSE(same_bits(c[0], d[0]));
}
