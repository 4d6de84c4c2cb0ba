// The CUDA device GPU tests run on: one context per test process, or a reason to skip.
#pragma once

#include <gtest/gtest.h>

#include <cctype>
#include <string>

#include "kernels/cuda/context.hpp"
#include "kernels/device.hpp"

namespace statelab::testing {

// The first CUDA device's context at `precision`, or null with `why` set.
inline const cuda::Context* gpu_context(std::string& why, Precision precision = Precision::fp32) {
  // Never destroyed: a test process ends after the CUDA runtime has unloaded, when tearing a
  // context down can only fail.
  static cuda::Context* contexts[3] = {nullptr, nullptr, nullptr};
  static std::string reason;
  auto& ctx = contexts[int(precision)];
  if (!ctx && reason.empty()) {
    const CudaProbe probe = probe_cuda_devices();
    if (probe.devices.empty())
      reason = probe.why_none;
  }
  if (!reason.empty()) {
    why = reason;
    return nullptr;
  }
  if (!ctx) ctx = cuda::make_context(0, precision).release();
  return ctx;
}

// A parameterised test's name for a block pattern and eigenvalue range: "lsmMgt", "01" ->
// "lsmMambagt_01" (test names must not differ by case alone).
inline std::string stack_test_name(const std::string& blocks, const std::string& range) {
  std::string name;
  for (const char c : blocks) name += std::isupper(c) ? std::string("Mamba") : std::string(1, c);
  return name + "_" + range;
}

}  // namespace statelab::testing

// Skips the current test, saying why, when no CUDA device answers.
#define SL_REQUIRE_GPU(ctx_var, precision)                                     \
  std::string sl_why_;                                                         \
  const ::statelab::cuda::Context* ctx_var =                                   \
      ::statelab::testing::gpu_context(sl_why_, precision);                    \
  if (!ctx_var) GTEST_SKIP() << "no CUDA device: " << sl_why_
