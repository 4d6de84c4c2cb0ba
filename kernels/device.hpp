// Which compute devices this build and machine offer. The CPU is always there; CUDA devices
// only when the CUDA backend is built *and* a driver and GPU answer. Any CUDA error while
// asking (no driver, a driver older than the runtime) counts as "no GPU", with the reason.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace statelab {

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  int64_t memory_bytes = 0;
  int compute_major = 0, compute_minor = 0;
};

struct CudaProbe {
  std::vector<CudaDeviceInfo> devices;
  std::string why_none;  // set when devices is empty
};

bool cuda_backend_built();
CudaProbe probe_cuda_devices();

}  // namespace statelab
