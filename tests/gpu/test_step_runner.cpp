// The GPU step runner's graphs against the CPU runner: the same steps give the same losses, and
// a graph captured before a block's scratch grew (the first step of a longer sequence frees the
// old one) never writes into that freed memory afterwards, where another buffer now lives.
// Skipped with the reason without a GPU.
#include <gtest/gtest.h>

#include <cstring>

#include "kernels/cuda/attention.hpp"
#include "kernels/cuda/buffer.hpp"
#include "lab/step_runner.hpp"
#include "tests/support/gpu.hpp"

namespace statelab {
namespace {

constexpr int kVocab = 5;
constexpr int kBatch = 2;

Batch batch_of_length(int T) {
  Batch b;
  b.resize(kBatch, T);
  for (size_t i = 0; i < b.tokens.size(); ++i) {
    b.tokens[i] = int32_t((i * 7 + 3) % kVocab);
    b.targets[i] = int32_t((i * 3 + 1) % kVocab);
  }
  return b;
}

TEST(GpuStepRunner, AGraphCapturedBeforeAScratchGrewNeverWritesIntoTheFreedMemory) {
  SL_REQUIRE_GPU(ctx, Precision::fp32);
  ModelConfig cfg;
  cfg.blocks = "t";  // attention's scratch is B·T·H floats: it grows with every longer T
  cfg.d_model = 16, cfg.heads = 2, cfg.ffn_factor = 1.0;
  constexpr int kShort = 4, kLong = 16;
  Exec ex;
  ex.cuda = ctx;
  Model<float> cpu(cfg, kVocab, kBatch * kLong, kBatch * kLong);
  Model<float> gpu(cfg, kVocab, kBatch * kLong, kBatch * kLong, ex);
  cpu.params().initialize(3);
  std::memcpy(gpu.params().host_values(), cpu.params().values(),
              size_t(cpu.params().size()) * sizeof(float));
  gpu.params().to_device();
  TrainConfig tc;
  auto on_cpu = make_step_runner(cpu, tc);
  auto on_gpu = make_step_runner(gpu, tc);

  // Step 1 runs eagerly, step 2 is captured, step 3 (longer) grows the scratch.
  const int lengths[] = {kShort, kShort, kLong, kShort, kShort};
  std::vector<StepResult> want, got;
  for (int step = 1; step <= 3; ++step) {
    const Batch b = batch_of_length(lengths[step - 1]);
    on_cpu->submit(step, b, 1e-3);
    on_gpu->submit(step, b, 1e-3);
  }
  got = on_gpu->collect();
  // cudaMalloc hands the freed scratch's memory out again: buffers of its size, marked NaN.
  std::vector<cuda::DeviceBuffer<float>> takers;
  const int64_t old_size = cuda::causal_attention_work_size(kBatch, kShort, cfg.heads);
  for (int i = 0; i < 8; ++i) {
    takers.emplace_back(old_size);
    takers.back().poison(*ctx);
  }
  for (int step = 4; step <= 5; ++step) {
    const Batch b = batch_of_length(lengths[step - 1]);
    on_cpu->submit(step, b, 1e-3);
    on_gpu->submit(step, b, 1e-3);
  }
  for (const auto& r : on_gpu->collect()) got.push_back(r);
  want = on_cpu->collect();

  for (size_t i = 0; i < takers.size(); ++i) {
    const std::vector<float> seen = takers[i].download(*ctx);
    for (size_t j = 0; j < seen.size(); ++j) {
      uint32_t bits;
      std::memcpy(&bits, &seen[j], sizeof bits);
      ASSERT_EQ(bits, 0xFFFFFFFFu)
          << "buffer " << i << " element " << j << " was written by a step it does not belong to";
    }
  }
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(got[i].applied) << "step " << got[i].step;
    EXPECT_NEAR(got[i].loss_sum, want[i].loss_sum, 1e-4 * std::abs(want[i].loss_sum))
        << "step " << got[i].step;
  }
}

}  // namespace
}  // namespace statelab
