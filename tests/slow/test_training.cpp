// Training actually learns: a small sLSTM on parity over short lengths drives the loss from
// chance (ln 2) to near zero and reaches perfect held-out accuracy. Labelled `slow` (seconds,
// not milliseconds); the full-length acceptance runs are `lab train presets/parity_*.json`.
#include <gtest/gtest.h>

#include <cmath>

#include "lab/trainer.hpp"

namespace statelab {
namespace {

struct LossLog final : Observer {
  std::vector<double> interval_losses;
  void on_log(const StepMetrics& m) override { interval_losses.push_back(m.loss); }
};

TEST(Training, SlstmLossFallsFromChanceAndParityIsLearnedOnShortLengths) {
  RunConfig c;
  c.device = "cpu";
  c.model.blocks = "s";
  c.model.d_model = 32;
  c.model.heads = 2;
  c.task.train_lengths = {2, 8};
  c.train.steps = 2000;
  c.train.batch = 32;
  c.train.lr = 3e-3;
  c.train.warmup_steps = 50;
  c.train.log_every = 100;
  c.train.seed = 42;
  c.eval.lengths = {2, 8};
  c.eval.samples = 200;
  Trainer trainer(c);
  LossLog log;
  trainer.train({&log});
  ASSERT_EQ(log.interval_losses.size(), 20u);
  EXPECT_NEAR(log.interval_losses.front(), std::log(2.0), 0.1) << "starts at chance";
  EXPECT_LT(log.interval_losses.back(), 0.05) << "ends near zero";
  const auto result = trainer.evaluate();
  for (const auto& x : result.per_length) EXPECT_GE(x.accuracy, 0.99) << "length " << x.length;
}

}  // namespace
}  // namespace statelab
