// The mechanism read-out on a model that has learned: a small sLSTM trained on parity (the
// default preset, stopped early once held-out accuracy at length 40 stays at 1) carries the
// running parity bit linearly in its residual stream, so the latent decoder `lab probe` fits at
// training lengths reads it at >= 0.99 there. The curve beyond is printed for the record.
#include <gtest/gtest.h>

#include <cstring>
#include <iostream>

#include "lab/safetensors.hpp"
#include "tests/support/run_lab.hpp"
#include "tests/support/temp_dir.hpp"

namespace statelab {
namespace {

TEST(ProbeDecoding, TrainedSlstmParityStateDecodesLinearlyAtTrainingLengths) {
  testing::TempDir tmp;
  const std::string run = tmp / "run";
  const auto train = testing::run_lab(
      std::string("train ") + STATELAB_SOURCE_DIR + "/presets/parity_slstm.json --device cpu" +
      " --out " + run + " --set train.steps=3000 --set train.eval_every=100" +
      " --set train.early_stop_evals=2 --set eval.samples=32 --set eval.length_step=8");
  ASSERT_EQ(train.code, 0) << train.output;
  const auto probe = testing::run_lab("probe " + run + " --samples 16 --length 256");
  ASSERT_EQ(probe.code, 0) << probe.output;
  std::cout << probe.output;

  const auto traces = safetensors::load(run + "/traces/traces.safetensors");
  const auto& entry = traces.tensors.at("decoding_accuracy");
  ASSERT_EQ(entry.shape, (std::vector<int64_t>{2, 256}));
  std::vector<float> acc(size_t(entry.numel()));
  std::memcpy(acc.data(), entry.bytes.data(), entry.bytes.size());
  double best_inside = 0;
  for (int layer = 0; layer < 2; ++layer) {
    const float* a = acc.data() + layer * 256;
    double inside = 0;
    for (int t = 0; t < 40; ++t) inside += a[t];
    inside /= 40;
    best_inside = std::max(best_inside, inside);
    std::cout << "block " << layer << ": decoding accuracy at positions 1-40 " << inside;
    for (int lo = 40; lo < 256; lo += 54) {
      double beyond = 0;
      for (int t = lo; t < lo + 54 && t < 256; ++t) beyond += a[t];
      std::cout << ", " << lo + 1 << "-" << std::min(lo + 54, 256) << " "
                << beyond / (std::min(lo + 54, 256) - lo);
    }
    std::cout << "\n";
  }
  EXPECT_GE(best_inside, 0.99);
}

}  // namespace
}  // namespace statelab
