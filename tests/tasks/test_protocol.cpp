// Properties every task shares: registered names resolve, lengths the task refuses are never
// produced, one Rng triple gives one batch, text round-trips through encode/decode, and the
// training and held-out streams of one seed never share a sequence.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "tasks/registry.hpp"

namespace statelab {
namespace {

TEST(TaskProtocol, EveryRegisteredTaskProducesOnlyAcceptedLengthsWithItsFinalAnswer) {
  for (const auto& name : task_names()) {
    const auto task = make_task(name);
    EXPECT_EQ(task->name(), name);
    EXPECT_GT(task->chance(), 0.0) << name;
    EXPECT_LT(task->chance(), 1.0) << name;
    Batch batch;
    Rng rng(1, kStreamTrainData, 0);
    task->sample_mixed(rng, 64, 3, 40, Readout::final, batch);
    for (int b = 0; b < batch.batch; ++b) {
      const int n = batch.lengths[size_t(b)];
      EXPECT_TRUE(task->accepts_length(n)) << name << " produced length " << n;
      const int32_t answer = batch.targets[size_t(b * batch.length + n - 1)];
      const auto allowed = task->answer_tokens();
      EXPECT_NE(std::find(allowed.begin(), allowed.end(), answer), allowed.end())
          << name << ": final answer " << answer << " is not an answer token";
    }
  }
}

TEST(TaskProtocol, EveryTaskDrawsTheSameBatchFromOneRngTripleAnotherFromTheNextAndRoundTripsText) {
  for (const auto& name : task_names()) {
    const auto task = make_task(name);
    const int length = task->lengths_in(30, 40).at(0);
    Batch a, b, c;
    Rng r1(5, kStreamTrainData, 10), r2(5, kStreamTrainData, 10), r3(5, kStreamTrainData, 11);
    task->sample(r1, 16, length, Readout::final, a);
    task->sample(r2, 16, length, Readout::final, b);
    task->sample(r3, 16, length, Readout::final, c);
    EXPECT_EQ(a.tokens, b.tokens) << name;
    EXPECT_EQ(a.targets, b.targets) << name;
    EXPECT_EQ(a.latent, b.latent) << name;
    EXPECT_NE(a.tokens, c.tokens) << name;
    for (int row = 0; row < a.batch; ++row) {
      const std::vector<int32_t> tokens(a.tokens.begin() + row * length,
                                        a.tokens.begin() + (row + 1) * length);
      EXPECT_EQ(task->encode(task->decode(tokens.data(), length)), tokens) << name;
    }
  }
}

TEST(TaskProtocol, TrainingAndHeldOutStreamsOfOneSeedNeverShareASequence) {
  const auto task = make_task("parity");
  std::set<std::vector<int32_t>> held_out;
  Batch batch;
  Rng eval_rng(42, kStreamEvalData, 30);
  task->sample(eval_rng, 256, 30, Readout::final, batch);
  for (int b = 0; b < batch.batch; ++b)
    held_out.insert({batch.tokens.begin() + b * 30, batch.tokens.begin() + (b + 1) * 30});
  ASSERT_EQ(held_out.size(), 256u);
  for (uint64_t step = 1; step <= 200; ++step) {
    Rng train_rng(42, kStreamTrainData, step);
    task->sample(train_rng, 64, 30, Readout::final, batch);
    for (int b = 0; b < batch.batch; ++b)
      EXPECT_EQ(held_out.count({batch.tokens.begin() + b * 30, batch.tokens.begin() + (b + 1) * 30}), 0u)
          << "step " << step << " row " << b;
  }
}

}  // namespace
}  // namespace statelab
