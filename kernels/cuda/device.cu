// CUDA device discovery for builds with the CUDA backend.
#include <cuda_runtime.h>

#include "kernels/device.hpp"

namespace statelab {

bool cuda_backend_built() { return true; }

CudaProbe probe_cuda_devices() {
  CudaProbe probe;
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    probe.why_none = std::string("CUDA runtime: ") + cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return probe;
  }
  if (count == 0) probe.why_none = "CUDA runtime reports no devices";
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    probe.devices.push_back({i, prop.name, int64_t(prop.totalGlobalMem), prop.major, prop.minor});
  }
  return probe;
}

}  // namespace statelab
