// AdamW against hand-computed values, clipping, decay groups, and the warm-up + cosine schedule.
#include <gtest/gtest.h>

#include <cmath>

#include "lab/optimizer.hpp"

namespace statelab {
namespace {

TEST(AdamW, FirstStepMatchesHandComputedValuesWithDecoupledDecayOnlyWhereDeclared) {
  ParamStore<double> ps;
  const ParamId w = ps.add("w", {1}, init::constant(1.0), true);
  const ParamId b = ps.add("b", {1}, init::constant(1.0), false);
  ps.allocate();
  ps.initialize(0);
  ps.grad(w)[0] = 0.5;
  ps.grad(b)[0] = 0.5;
  TrainConfig c;
  c.weight_decay = 0.1, c.grad_clip = 0, c.beta1 = 0.9, c.beta2 = 0.999, c.eps = 1e-8;
  AdamW<double> opt(c);
  opt.step(ps, 0.1);
  // m = 0.05, v = 0.00025; bias-corrected 0.5 and 0.25; step = 0.5 / (0.5 + 1e-8).
  const double adam = 0.1 * 0.5 / (0.5 + 1e-8);
  EXPECT_NEAR(ps.value(w)[0], 1.0 * (1 - 0.1 * 0.1) - adam, 1e-15);
  EXPECT_NEAR(ps.value(b)[0], 1.0 - adam, 1e-15);
  EXPECT_NEAR(ps.moment1()[0], 0.05, 1e-15);
  EXPECT_NEAR(ps.moment2()[0], 0.00025, 1e-15);
}

TEST(AdamW, ClipsToTheGlobalNormAndReportsTheNormBeforeClipping) {
  ParamStore<double> ps;
  const ParamId a = ps.add("a", {1}, init::zeros(), true);
  const ParamId b = ps.add("b", {1}, init::zeros(), false);
  ps.allocate();
  ps.initialize(0);
  ps.grad(a)[0] = 3, ps.grad(b)[0] = 4;
  TrainConfig c;
  c.grad_clip = 1.0;
  AdamW<double> opt(c);
  EXPECT_DOUBLE_EQ(opt.step(ps, 1e-3), 5.0);
  EXPECT_NEAR(ps.grad(a)[0], 0.6, 1e-15);
  EXPECT_NEAR(ps.grad(b)[0], 0.8, 1e-15);
  EXPECT_NEAR(ps.moment1()[0], 0.1 * 0.6, 1e-15);
}

TEST(Schedule, WarmsUpLinearlyThenFollowsACosineDownToMinLr) {
  TrainConfig c;
  c.steps = 100, c.warmup_steps = 10, c.lr = 1e-3, c.min_lr = 1e-5;
  EXPECT_DOUBLE_EQ(learning_rate(c, 1), 1e-4);
  EXPECT_DOUBLE_EQ(learning_rate(c, 5), 5e-4);
  EXPECT_DOUBLE_EQ(learning_rate(c, 10), 1e-3);
  EXPECT_NEAR(learning_rate(c, 55), (1e-3 + 1e-5) / 2, 1e-15);
  EXPECT_NEAR(learning_rate(c, 100), 1e-5, 1e-15);
  for (int s = 11; s < 100; ++s) EXPECT_LE(learning_rate(c, s + 1), learning_rate(c, s));
}

TEST(Schedule, WithoutWarmupStartsAtTheFullRate) {
  TrainConfig c;
  c.steps = 10, c.warmup_steps = 0, c.lr = 2e-3, c.min_lr = 0;
  EXPECT_NEAR(learning_rate(c, 0), 2e-3, 1e-15);
  EXPECT_NEAR(learning_rate(c, 10), 0.0, 1e-15);
}

}  // namespace
}  // namespace statelab
