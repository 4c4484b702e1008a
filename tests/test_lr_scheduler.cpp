// Learning-rate schedules against real PyTorch (tests/golden/training/scheduler.txt,
// make_training_golden.py): scheduler.step()'s chainable lrs and _get_closed_form_lr over
// 25 steps, both bit-exact (the doubles of the same expressions); a save → reload →
// continue run; the option checks.
#include "lr_scheduler.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "golden/training_golden.hpp"
#include "optim.hpp"

using namespace modelkeep;

namespace {

SchedulerOptions options_of(const mkt::TrainingCase& c) {
    const std::string kind = c.word("scheduler");
    if (kind == "step_lr") return step_lr_options(std::int64_t(c.number("step_size", 1)), c.number("gamma", 0.1));
    if (kind == "cosine_annealing_lr")
        return cosine_annealing_lr_options(std::int64_t(c.number("T_max", 1)), c.number("eta_min", 0.0));
    return linear_lr_options(c.number("start_factor", 1.0 / 3.0), c.number("end_factor", 1.0),
                             std::int64_t(c.number("total_iters", 5)));
}

}  // namespace

TEST(SchedulerGolden, ChainableAndClosedFormLrsMatchPyTorchBitForBit) {
    const auto cases = mkt::load_training_cases("scheduler");
    ASSERT_EQ(cases.size(), 7u);
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        const std::vector<double>& chain = c.doubles.at("chainable");
        const std::vector<double>& closed = c.doubles.at("closed_form");
        ASSERT_EQ(chain.size(), 26u);
        LrScheduler s;
        ASSERT_TRUE(LrScheduler::create(options_of(c), c.number("lr", 0.0), s).ok());
        for (std::size_t e = 0; e < chain.size(); ++e) {
            if (e > 0) s.step();
            EXPECT_EQ(s.last_epoch(), std::int64_t(e));
            EXPECT_EQ(s.lr(), chain[e]) << "epoch " << e << ": " << s.lr() << " vs torch " << chain[e];
            EXPECT_EQ(s.closed_form_lr(std::int64_t(e)), closed[e]) << "closed form, epoch " << e;
        }
    }
}

TEST(SchedulerGolden, SaveReloadContinueIsBitIdentical) {
    const auto cases = mkt::load_training_cases("scheduler");
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        const std::vector<double>& chain = c.doubles.at("chainable");
        LrScheduler first, second;
        ASSERT_TRUE(LrScheduler::create(options_of(c), c.number("lr", 0.0), first).ok());
        for (int e = 0; e < 9; ++e) first.step();
        const SchedulerState saved = first.state();
        EXPECT_EQ(saved.step_count, 10);
        ASSERT_TRUE(LrScheduler::create(options_of(c), 123.0, second).ok());
        ASSERT_TRUE(second.set_state(saved).ok());
        for (std::size_t e = 10; e < chain.size(); ++e) {
            second.step();
            EXPECT_EQ(second.lr(), chain[e]) << "epoch " << e;
        }
    }
}

TEST(SchedulerChecks, DrivesAnOptimizersLr) {
    // Per-batch stepping: one step() per batch, the lr handed to the optimizer.
    Optimizer opt;
    ASSERT_TRUE(Optimizer::create(sgd_options(0.1), opt).ok());
    LrScheduler s;
    ASSERT_TRUE(LrScheduler::create(step_lr_options(2, 0.5), opt.lr(), s).ok());
    std::vector<double> seen;
    for (int batch = 0; batch < 5; ++batch) {
        ASSERT_TRUE(opt.set_lr(s.lr()).ok());
        seen.push_back(opt.lr());
        opt.step();
        s.step();
    }
    EXPECT_EQ(seen, (std::vector<double>{0.1, 0.1, 0.05, 0.05, 0.025}));
}

TEST(SchedulerChecks, InvalidOptionsAreRefused) {
    LrScheduler s;
    EXPECT_EQ(LrScheduler::create(step_lr_options(0), 0.1, s).code(), Code::invalid_hyperparameter);
    EXPECT_EQ(LrScheduler::create(step_lr_options(3, NAN), 0.1, s).code(), Code::invalid_hyperparameter);
    EXPECT_EQ(LrScheduler::create(cosine_annealing_lr_options(0), 0.1, s).code(), Code::invalid_hyperparameter);
    EXPECT_EQ(LrScheduler::create(linear_lr_options(1.5), 0.1, s).code(), Code::invalid_hyperparameter);
    EXPECT_EQ(LrScheduler::create(linear_lr_options(0.0), 0.1, s).code(), Code::invalid_hyperparameter);
    EXPECT_EQ(LrScheduler::create(linear_lr_options(0.5, -0.1), 0.1, s).code(), Code::invalid_hyperparameter);
    EXPECT_EQ(LrScheduler::create(linear_lr_options(0.5, 1.0, 0), 0.1, s).code(), Code::invalid_hyperparameter);
    EXPECT_EQ(LrScheduler::create(step_lr_options(3), -0.1, s).code(), Code::invalid_hyperparameter);
    ASSERT_TRUE(LrScheduler::create(linear_lr_options(), 0.1, s).ok());
    EXPECT_EQ(s.lr(), 0.1 * (1.0 / 3.0));
    SchedulerState st = s.state();
    st.last_epoch = -2;
    EXPECT_EQ(s.set_state(st).code(), Code::invalid_argument);
    st = s.state();
    st.step_count = 0;
    EXPECT_EQ(s.set_state(st).code(), Code::invalid_argument);
    st = s.state();
    st.lr = -1.0;
    EXPECT_EQ(s.set_state(st).code(), Code::invalid_hyperparameter);
    EXPECT_STREQ(scheduler_name(SchedulerKind::cosine_annealing_lr), "CosineAnnealingLR");
}
