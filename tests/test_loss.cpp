// Losses against real PyTorch (tests/golden/training/loss.txt, make_training_golden.py):
// every loss, option and reduction, values and input gradients; and the checks.
#include "loss.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "alloc_tracking.hpp"
#include "golden/training_golden.hpp"

using namespace modelkeep;

namespace {

std::vector<std::int64_t> indices(const Tensor& t) {
    std::vector<std::int64_t> out;
    for (float v : t) out.push_back(std::int64_t(v));
    return out;
}

const Tensor* optional_tensor(const mkt::TrainingCase& c, const char* label) {
    auto it = c.tensors.find(label);
    return it == c.tensors.end() ? nullptr : &it->second;
}

// Runs the loss a case names; its status, loss and gradient.
Status run_case(const mkt::TrainingCase& c, Tensor& loss, Tensor& grad) {
    Reduction red = Reduction::mean;
    Status st = parse_reduction(c.word("reduction"), red);
    if (!st.ok()) return st;
    const std::string kind = c.word("loss");
    const Tensor& x = c.tensor("input");
    const Tensor& y = c.tensor("target");
    if (kind == "mse") return mse_loss(x, y, red, loss, grad);
    if (kind == "l1") return l1_loss(x, y, red, loss, grad);
    if (kind == "smooth_l1") return smooth_l1_loss(x, y, red, c.number("beta", 1.0), loss, grad);
    if (kind == "huber") return huber_loss(x, y, red, c.number("delta", 1.0), loss, grad);
    ClassLossOptions o;
    o.reduction = red;
    o.weight = optional_tensor(c, "weight");
    o.ignore_index = std::int64_t(c.number("ignore_index", -100.0));
    o.label_smoothing = c.number("label_smoothing", 0.0);
    if (kind == "cross_entropy") return cross_entropy_loss(x, indices(y), o, loss, grad);
    if (kind == "cross_entropy_prob") return cross_entropy_loss_probs(x, y, o, loss, grad);
    if (kind == "nll") return nll_loss(x, indices(y), o, loss, grad);
    if (kind == "bce_with_logits")
        return bce_with_logits_loss(x, y, optional_tensor(c, "weight"), optional_tensor(c, "pos_weight"), red, loss,
                                    grad);
    if (kind == "bce") return bce_loss(x, y, optional_tensor(c, "weight"), red, loss, grad);
    return error(Code::invalid_argument, "unknown loss " + kind);
}

// The documented bounds (docs/TRAINING.md, "Numerics"), in ULP of each value, or relative to
// the tensor's largest magnitude for values that cancel towards zero. Element-wise values
// are bit-exact; reduced values and anything through exp/log measured within 3 ULP, and the
// gradients of the logit losses within 26 ULP of a near-zero value (1e-6 of the largest).
struct Bound {
    std::int64_t ulps;
    double rel;
};

Bound loss_bound(const mkt::TrainingCase& c) {
    const std::string kind = c.word("loss");
    const bool elementwise = kind == "mse" || kind == "l1" || kind == "smooth_l1" || kind == "huber";
    if (c.word("reduction") == "none" && (elementwise || kind == "nll")) return {0, 0.0};
    if (kind == "bce" && c.word("reduction") == "none") return {0, 0.0};
    return {4, 1e-6};
}

Bound grad_bound(const mkt::TrainingCase& c) {
    const std::string kind = c.word("loss");
    if (kind == "mse" || kind == "l1" || kind == "smooth_l1" || kind == "huber" || kind == "bce") return {0, 0.0};
    if (kind == "nll") return {0, 0.0};
    return {4, 1e-6};
}

}  // namespace

TEST(LossGolden, EveryLossOptionAndReductionMatchesPyTorch) {
    const auto cases = mkt::load_training_cases("loss");
    ASSERT_GT(cases.size(), 200u);
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        Tensor loss, grad;
        Status st = run_case(c, loss, grad);
        ASSERT_TRUE(st.ok()) << st.to_string();
        const Bound lb = loss_bound(c), gb = grad_bound(c);
        EXPECT_TRUE(mkt::close_to(c.name + " loss", loss, c.tensor("loss"), lb.ulps, lb.rel));
        EXPECT_TRUE(mkt::close_to(c.name + " grad", grad, c.tensor("grad"), gb.ulps, gb.rel));
    }
}

TEST(LossChecks, OptionsShapesAndTargetsAreRefusedWithTheirCode) {
    Tensor x = from_data({2, 3}, std::vector<float>{0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f}.data());
    Tensor y3 = zeros({3, 2});
    Tensor loss, grad;
    EXPECT_EQ(mse_loss(x, y3, Reduction::mean, loss, grad).code(), Code::shape_mismatch);
    EXPECT_EQ(l1_loss(x, y3, Reduction::sum, loss, grad).code(), Code::shape_mismatch);
    EXPECT_EQ(smooth_l1_loss(x, x, Reduction::mean, -1.0, loss, grad).code(), Code::invalid_hyperparameter);
    EXPECT_EQ(huber_loss(x, x, Reduction::mean, 0.0, loss, grad).code(), Code::invalid_hyperparameter);
    Reduction r;
    EXPECT_EQ(parse_reduction("average", r).code(), Code::invalid_hyperparameter);
    ASSERT_TRUE(parse_reduction("sum", r).ok());
    EXPECT_EQ(r, Reduction::sum);
    EXPECT_STREQ(reduction_name(Reduction::none), "none");

    ClassLossOptions o;
    EXPECT_EQ(cross_entropy_loss(x, {0, 3}, o, loss, grad).code(), Code::target_out_of_range);
    EXPECT_EQ(cross_entropy_loss(x, {0, -1}, o, loss, grad).code(), Code::target_out_of_range);
    EXPECT_EQ(nll_loss(x, {0, 5}, o, loss, grad).code(), Code::target_out_of_range);
    EXPECT_EQ(cross_entropy_loss(x, {0, 1, 2}, o, loss, grad).code(), Code::shape_mismatch);
    EXPECT_TRUE(cross_entropy_loss(x, {0, -100}, o, loss, grad).ok());  // ignore_index
    Tensor w2 = zeros({2});
    o.weight = &w2;
    EXPECT_EQ(cross_entropy_loss(x, {0, 1}, o, loss, grad).code(), Code::shape_mismatch);
    o.weight = nullptr;
    o.label_smoothing = 1.5;
    EXPECT_EQ(cross_entropy_loss(x, {0, 1}, o, loss, grad).code(), Code::invalid_hyperparameter);
    EXPECT_EQ(cross_entropy_loss_probs(x, x, o, loss, grad).code(), Code::invalid_hyperparameter);
    o.label_smoothing = 0.0;
    EXPECT_EQ(cross_entropy_loss_probs(x, y3, o, loss, grad).code(), Code::shape_mismatch);
    Tensor scalar = zeros({});
    EXPECT_EQ(cross_entropy_loss(scalar, {0}, o, loss, grad).code(), Code::shape_mismatch);

    Tensor bad_p = from_data({2, 3}, std::vector<float>{0.1f, 1.5f, 0.3f, 0.4f, 0.5f, 0.6f}.data());
    EXPECT_EQ(bce_loss(bad_p, x, nullptr, Reduction::mean, loss, grad).code(), Code::target_out_of_range);
    Tensor nan_p = x;
    nan_p(0, 0) = NAN;
    EXPECT_EQ(bce_loss(nan_p, x, nullptr, Reduction::mean, loss, grad).code(), Code::target_out_of_range);
    Tensor w4 = zeros({4});
    EXPECT_EQ(bce_loss(x, x, &w4, Reduction::mean, loss, grad).code(), Code::shape_mismatch);
    EXPECT_EQ(bce_with_logits_loss(x, x, nullptr, &w4, Reduction::mean, loss, grad).code(), Code::shape_mismatch);
    Tensor w_big = zeros({2, 2, 3});
    EXPECT_EQ(bce_with_logits_loss(x, x, &w_big, nullptr, Reduction::mean, loss, grad).code(), Code::shape_mismatch);
}

TEST(LossChecks, ReductionsAgree) {
    // none's values summed (and averaged) give sum and mean; the gradients scale by 1/N.
    Tensor x = zeros({4, 5}), y = zeros({4, 5});
    for (std::size_t i = 0; i < x.size(); ++i) {
        x.data()[i] = 0.37f * float(i) - 3.0f;
        y.data()[i] = float(i % 3) - 1.0f;
    }
    Tensor ln, gn, ls, gs, lm, gm;
    ASSERT_TRUE(huber_loss(x, y, Reduction::none, 1.0, ln, gn).ok());
    ASSERT_TRUE(huber_loss(x, y, Reduction::sum, 1.0, ls, gs).ok());
    ASSERT_TRUE(huber_loss(x, y, Reduction::mean, 1.0, lm, gm).ok());
    EXPECT_EQ(shape_of(ln), (Shape{4, 5}));
    EXPECT_EQ(shape_of(ls), Shape{});
    double total = 0.0;
    for (float v : ln) total += v;
    EXPECT_FLOAT_EQ(ls(), float(total));
    EXPECT_FLOAT_EQ(lm(), float(total) / 20.0f);
    for (std::size_t i = 0; i < x.size(); ++i) {
        EXPECT_EQ(gn.data()[i], gs.data()[i]);
        EXPECT_FLOAT_EQ(gm.data()[i], gs.data()[i] / 20.0f);
    }
    // Cross-entropy: all targets ignored gives NaN for mean (PyTorch's 0/0), 0 for sum.
    ClassLossOptions o;
    ASSERT_TRUE(cross_entropy_loss(x, {-100, -100, -100, -100}, o, lm, gm).ok());
    EXPECT_TRUE(std::isnan(lm()));
    o.reduction = Reduction::sum;
    ASSERT_TRUE(cross_entropy_loss(x, {-100, -100, -100, -100}, o, ls, gs).ok());
    EXPECT_EQ(ls(), 0.0f);
    for (float v : gs) EXPECT_EQ(v, 0.0f);
}

TEST(LossChecks, ExtremeLogitsStayFinite) {
    Tensor x = from_data({2, 3}, std::vector<float>{1000.0f, -1000.0f, 0.0f, -1e4f, 1e4f, 0.0f}.data());
    Tensor loss, grad;
    ASSERT_TRUE(cross_entropy_loss(x, {1, 0}, ClassLossOptions{}, loss, grad).ok());
    EXPECT_TRUE(std::isfinite(loss()));
    for (float v : grad) EXPECT_TRUE(std::isfinite(v));
    Tensor t = zeros({2, 3});
    ASSERT_TRUE(bce_with_logits_loss(x, t, nullptr, nullptr, Reduction::sum, loss, grad).ok());
    EXPECT_TRUE(std::isfinite(loss()));
    for (float v : grad) EXPECT_TRUE(std::isfinite(v));
}

TEST(LossChecks, AWarmCallAllocatesNothing) {
    Tensor x = zeros({8, 10}), p = zeros({8, 10});
    for (std::size_t i = 0; i < x.size(); ++i) {
        x.data()[i] = std::sin(float(i));
        p.data()[i] = 0.1f;
    }
    std::vector<std::int64_t> t = {0, 1, 2, 3, 4, 5, 6, -100};
    Tensor w = zeros({10});
    for (float& v : w) v = 1.5f;
    ClassLossOptions o;
    o.weight = &w;
    o.label_smoothing = 0.1;
    Tensor loss, grad;
    ASSERT_TRUE(cross_entropy_loss(x, t, o, loss, grad).ok());
    ASSERT_TRUE(cross_entropy_loss_probs(x, p, o, loss, grad).ok());
    {
        mkt::AllocScope scope;
        ASSERT_TRUE(cross_entropy_loss(x, t, o, loss, grad).ok());
        ASSERT_TRUE(cross_entropy_loss_probs(x, p, o, loss, grad).ok());
        EXPECT_EQ(scope.news(), 0);
    }
    ASSERT_TRUE(mse_loss(x, p, Reduction::mean, loss, grad).ok());
    {
        mkt::AllocScope scope;
        ASSERT_TRUE(mse_loss(x, p, Reduction::mean, loss, grad).ok());
        ASSERT_TRUE(bce_with_logits_loss(x, p, nullptr, nullptr, Reduction::mean, loss, grad).ok());
        EXPECT_EQ(scope.news(), 0);
    }
}
