// Probes of a model on the GPU against the same model on the CPU: for every cell and stack, a
// probe pass gives the same series (names, shapes and values) on both, the GPU's recurrence
// read-outs coming from the recurrent kernel and its attention probabilities from the probe
// kernel. And `lab probe --device cuda:0` exports what `--device cpu` does. Skipped with the
// reason without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "cells/model.hpp"
#include "kernels/selftest/harness.hpp"
#include "lab/safetensors.hpp"
#include "probes/probe_pass.hpp"
#include "tasks/registry.hpp"
#include "tests/support/gpu.hpp"
#include "tests/support/run_lab.hpp"
#include "tests/support/temp_dir.hpp"

namespace statelab {
namespace {

struct ProbedStack {
  std::string blocks, range;
};

class GpuProbe : public ::testing::TestWithParam<ProbedStack> {};

// ‖a − b‖ / ‖b‖ over a series (‖a − b‖ alone where b is all zero).
double relative_rms(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, ref = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (double(a[i]) - double(b[i])) * (double(a[i]) - double(b[i]));
    ref += double(b[i]) * double(b[i]);
  }
  return ref > 0 ? std::sqrt(diff / ref) : std::sqrt(diff);
}

// Both sides compute in float with different summation orders, so values agree to rounding
// amplified through a few layers (rel-RMS 1e-4); a label or indicator (an argmax, the floor
// winning a max) may flip where two values tie to rounding, on at most 1% of the elements.
TEST_P(GpuProbe, EverySeriesMatchesTheCpuProbeOfTheSameModel) {
  SL_REQUIRE_GPU(ctx, Precision::fp32);
  ModelConfig cfg;
  cfg.blocks = GetParam().blocks;
  cfg.d_model = 16, cfg.heads = 2, cfg.ffn_factor = 1.0, cfg.chunk_size = 8;
  cfg.eigen_range = GetParam().range;
  cfg.mamba2.state_size = 8;
  const auto task = make_task("parity");
  const int vocab = int(task->vocab().size());
  constexpr int kRows = 3, kLength = 37;  // over four chunks, the last one ragged
  Batch batch;
  Rng rng(5, kStreamTrainData, 0);
  task->sample(rng, kRows, kLength, Readout::final, batch);
  Model<float> cpu(cfg, vocab, kRows * kLength, 0);
  Exec ex;
  ex.cuda = ctx;
  Model<float> gpu(cfg, vocab, kRows * kLength, 0, ex);
  auto& ps = cpu.params();
  ps.initialize(11);
  // Off the initial constants (zero R, unit norm weights), so every series carries signal.
  const auto noise = selftest::uniform_values(12, 1, ps.size(), -0.3, 0.3);
  for (int64_t i = 0; i < ps.size(); ++i) ps.values()[i] += float(noise[size_t(i)]);
  std::copy_n(ps.values(), ps.size(), gpu.params().host_values());
  gpu.params().to_device();

  ProbeSink on_cpu = probe_batch(cpu, batch, 128), on_gpu = probe_batch(gpu, batch, 128);
  const auto& want = on_cpu.series();
  const auto& got = on_gpu.series();
  ASSERT_EQ(got.size(), want.size());
  int from_blocks = 0;
  for (const auto& s : want) from_blocks += s.name.rfind("blocks.", 0) == 0;
  ASSERT_GE(from_blocks, 2 * cpu.n_blocks()) << "the blocks reported almost nothing";
  for (size_t i = 0; i < want.size(); ++i) {
    const ProbeSeries &w = want[i], &g = got[i];
    ASSERT_EQ(g.name, w.name);
    ASSERT_EQ(g.shape, w.shape) << w.name;
    ASSERT_EQ(g.values.size(), w.values.size()) << w.name;
    if (w.kind == ProbeKind::label || w.kind == ProbeKind::indicator) {
      size_t differ = 0;
      for (size_t j = 0; j < w.values.size(); ++j) differ += g.values[j] != w.values[j];
      EXPECT_LE(double(differ), 0.01 * double(w.values.size())) << w.name;
    } else {
      EXPECT_LE(relative_rms(g.values, w.values), 1e-4) << w.name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    EveryCellAndStack, GpuProbe,
    ::testing::Values(ProbedStack{"l", "01"}, ProbedStack{"s", "01"}, ProbedStack{"m", "01"},
                      ProbedStack{"m", "pm1"}, ProbedStack{"M", "pm1"}, ProbedStack{"g", "01"},
                      ProbedStack{"g", "pm1"}, ProbedStack{"t", "01"}, ProbedStack{"lsmMgt", "01"}),
    [](const auto& param_info) {
      return testing::stack_test_name(param_info.param.blocks, param_info.param.range);
    });

TEST(GpuProbeCommand, ExportsOnTheGpuWhatTheCpuExports) {
  SL_REQUIRE_GPU(ctx, Precision::fp32);
  testing::TempDir tmp;
  const std::string run = (tmp.path() / "run").string();
  const auto trained = testing::run_lab("train " + std::string(STATELAB_SOURCE_DIR) +
                                        "/presets/parity_mlstm.json --device cuda:0 "
                                        "--no-selftest --set train.steps=30 --out " +
                                        run);
  ASSERT_EQ(trained.code, 0) << trained.output;
  safetensors::Contents traces[2];
  const char* devices[] = {"cpu", "cuda:0"};
  for (int i = 0; i < 2; ++i) {
    const std::string out = (tmp.path() / devices[i]).string();
    const auto r = testing::run_lab("probe " + run + " --samples 4 --length 60 --device " +
                                    devices[i] + " --out " + out);
    ASSERT_EQ(r.code, 0) << r.output;
    traces[i] = safetensors::load(out + "/traces.safetensors");
  }
  ASSERT_EQ(traces[1].order, traces[0].order);
  int compared = 0;
  for (const auto& name : traces[0].order) {
    const auto &want = traces[0].tensors.at(name), &got = traces[1].tensors.at(name);
    ASSERT_EQ(got.shape, want.shape) << name;
    if (want.dtype != safetensors::DType::F32 || name.rfind("blocks.", 0) != 0) continue;
    std::vector<float> w(size_t(want.numel())), g(w.size());
    std::memcpy(w.data(), want.bytes.data(), w.size() * sizeof(float));
    std::memcpy(g.data(), got.bytes.data(), g.size() * sizeof(float));
    EXPECT_LE(relative_rms(g, w), 1e-3) << name;
    ++compared;
  }
  EXPECT_GT(compared, 10);
}

}  // namespace
}  // namespace statelab
