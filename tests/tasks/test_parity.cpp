// The parity generator against an independent count of the decoded bits, its balance, its
// layout (one answer at the last input position) and its determinism per (seed, index).
#include <gtest/gtest.h>

#include <set>

#include "kernels/error.hpp"
#include "tasks/parity.hpp"
#include "tasks/registry.hpp"

namespace statelab {
namespace {

TEST(Parity, AnswerIsTheCountOfOnesModTwoAtTheLastPositionOnly) {
  ParityTask task;
  Batch batch;
  for (int length : {1, 2, 3, 40, 257}) {
    Rng rng(5, kStreamTrainData, uint64_t(length));
    task.sample(rng, 200, length, Readout::final, batch);
    for (int b = 0; b < batch.batch; ++b) {
      int ones = 0;
      for (int t = 0; t < length; ++t) {
        const auto i = size_t(b * length + t);
        ASSERT_TRUE(batch.tokens[i] == ParityTask::kZero || batch.tokens[i] == ParityTask::kOne);
        ones += task.vocab().names[size_t(batch.tokens[i])] == "1";
        EXPECT_EQ(batch.latent[i], ones % 2) << "latent state is the prefix parity";
        if (t < length - 1) {
          EXPECT_EQ(batch.targets[i], Batch::kIgnore);
        }
      }
      const int32_t answer = batch.targets[size_t(b * length + length - 1)];
      EXPECT_EQ(task.vocab().names[size_t(answer)], ones % 2 ? "1" : "0");
    }
  }
}

TEST(Parity, AnswersAreBalancedAndBitsUniform) {
  ParityTask task;
  Batch batch;
  Rng rng(9, kStreamTrainData, 0);
  task.sample(rng, 4000, 17, Readout::final, batch);
  int odd = 0, ones = 0;
  for (int b = 0; b < batch.batch; ++b) odd += batch.targets[size_t(b * 17 + 16)] == ParityTask::kOne;
  for (auto tok : batch.tokens) ones += tok == ParityTask::kOne;
  EXPECT_NEAR(odd / 4000.0, 0.5, 0.03);
  EXPECT_NEAR(ones / (4000.0 * 17), 0.5, 0.01);
  EXPECT_DOUBLE_EQ(task.chance(), 0.5);
}

TEST(Parity, MixedBatchesDrawEachRowsLengthAndPadAfterItsAnswer) {
  ParityTask task;
  Batch batch;
  Rng rng(4, kStreamTrainData, 1);
  task.sample_mixed(rng, 300, 3, 40, Readout::final, batch);
  std::set<int32_t> seen(batch.lengths.begin(), batch.lengths.end());
  EXPECT_GT(seen.size(), 30u) << "lengths vary from row to row";
  EXPECT_EQ(batch.length, *seen.rbegin()) << "padded to the longest row";
  for (int b = 0; b < batch.batch; ++b) {
    const int n = batch.lengths[size_t(b)];
    ASSERT_GE(n, 3);
    ASSERT_LE(n, 40);
    int ones = 0;
    for (int t = 0; t < batch.length; ++t) {
      const auto i = size_t(b * batch.length + t);
      if (t < n) {
        ones += batch.tokens[i] == ParityTask::kOne;
      } else {
        EXPECT_EQ(batch.tokens[i], 0) << "PAD after the input";
        EXPECT_EQ(batch.latent[i], Batch::kIgnore);
      }
      EXPECT_EQ(batch.targets[i] != Batch::kIgnore, t == n - 1) << "one answer, at the last input";
    }
    EXPECT_EQ(batch.targets[size_t(b * batch.length + n - 1)],
              ones % 2 ? ParityTask::kOne : ParityTask::kZero);
  }
}

TEST(Parity, PerTokenReadoutScoresTheRunningParityEverywhere) {
  ParityTask task;
  Batch batch;
  Rng rng(6, kStreamTrainData, 0);
  task.sample(rng, 50, 20, Readout::per_token, batch);
  for (size_t i = 0; i < batch.tokens.size(); ++i)
    EXPECT_EQ(batch.targets[i], batch.latent[i] ? ParityTask::kOne : ParityTask::kZero);
}

TEST(Parity, EncodeDecodeRoundTripAndLabelRejectsNonBits) {
  ParityTask task;
  const auto tokens = task.encode("1 0 1 1");
  EXPECT_EQ(tokens, (std::vector<int32_t>{2, 1, 2, 2}));
  EXPECT_EQ(task.encode(task.decode(tokens.data(), 4)), tokens);
  try {
    task.encode("1 0 x 1");
    FAIL() << "unknown symbol accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("'x' at position 3"), std::string::npos) << e.what();
  }
  const std::vector<int32_t> pad_inside = {2, 0, 1};
  std::vector<int32_t> answers(3), latent(3);
  EXPECT_THROW(task.label(pad_inside.data(), 3, answers.data(), latent.data()), ConfigError);
}

TEST(TaskRegistry, MakesParityAndNamesKnownTasksForAnUnknownOne) {
  EXPECT_EQ(make_task("parity")->name(), "parity");
  try {
    make_task("parrity");
    FAIL() << "unknown task accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("known tasks: a5, anbn,"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace statelab
