// Device discovery for builds without the CUDA backend: the CPU only.
#include "kernels/device.hpp"

namespace statelab {

bool cuda_backend_built() { return false; }

CudaProbe probe_cuda_devices() {
  return {{}, "this build has no CUDA backend (configured with STATELAB_CUDA=OFF or no nvcc)"};
}

}  // namespace statelab
