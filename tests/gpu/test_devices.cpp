// CUDA device discovery. On a machine without a GPU (or without a driver) every test here skips
// and says why; on the GPU machine it checks what the runtime reports.
#include <gtest/gtest.h>

#include "kernels/device.hpp"

namespace statelab {
namespace {

TEST(CudaDevices, EveryReportedDeviceHasANameMemoryAndAComputeCapability) {
  const CudaProbe probe = probe_cuda_devices();
  if (probe.devices.empty()) GTEST_SKIP() << "no CUDA device: " << probe.why_none;
  for (const auto& d : probe.devices) {
    EXPECT_FALSE(d.name.empty());
    EXPECT_GT(d.memory_bytes, int64_t(1) << 30) << d.name;
    EXPECT_GE(d.compute_major, 7) << d.name;
  }
}

TEST(CudaDevices, NoDeviceAlwaysComesWithAReason) {
  const CudaProbe probe = probe_cuda_devices();
  if (!probe.devices.empty()) GTEST_SKIP() << probe.devices.size() << " CUDA device(s) present";
  EXPECT_FALSE(probe.why_none.empty());
  if (!cuda_backend_built()) {
    EXPECT_NE(probe.why_none.find("no CUDA backend"), std::string::npos);
  }
}

}  // namespace
}  // namespace statelab
