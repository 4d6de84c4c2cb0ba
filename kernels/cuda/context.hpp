// What every CUDA launcher needs: the device, the stream the whole step runs on (non-blocking,
// so a step can be captured into a CUDA graph), the cuBLAS / cuBLASLt handles with their
// workspace, the matrix-product precision and the device's limits. Launchers take
// `const Context&` first, then the same arguments as their CPU twin in kernels/cpu/.
// Host code checks every CUDA call with SL_CUDA_CHECK / SL_CUBLAS_CHECK (file and line in the
// message, a CudaError thrown); launchers end with SL_CUDA_LAUNCH_CHECK().
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <memory>
#include <string>

#include "kernels/error.hpp"
#include "kernels/precision.hpp"

namespace statelab::cuda {

struct GemmPlans;  // dense.cu's cache of cuBLASLt matmul plans

struct Context {
  int device = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  cublasLtHandle_t lt = nullptr;
  void* lt_workspace = nullptr;  // cuBLASLt's scratch, owned by the context
  size_t lt_workspace_bytes = 0;
  Precision precision = Precision::fp32;
  int sm_count = 0;
  size_t max_shared_per_block = 0;  // opt-in limit (cudaFuncSetAttribute raises a kernel to it)
  size_t l2_bytes = 0;
  std::string name;
  std::string uuid;  // the device's UUID in hex: what a selftest result is recorded against
  // cuBLASLt plans (descriptors and the chosen algorithm) per GEMM shape, made on first use so
  // the step loop only launches. A context serves one host thread at a time.
  std::unique_ptr<GemmPlans> gemm_plans;

  Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  ~Context();
};

// Selects `device`, creates the stream and handles. Throws CudaError when the device cannot
// be used (no driver, no such device), with the runtime's reason.
std::unique_ptr<Context> make_context(int device, Precision precision);

// The cuBLAS compute type of a matrix-product precision: fp32 exact, tf32 or bf16 tensor cores on
// fp32 storage.
inline cublasComputeType_t cublas_compute_type(Precision p) {
  switch (p) {
    case Precision::fp32:
      return CUBLAS_COMPUTE_32F;
    case Precision::tf32:
      return CUBLAS_COMPUTE_32F_FAST_TF32;
    case Precision::bf16:
      return CUBLAS_COMPUTE_32F_FAST_16BF;
  }
  return CUBLAS_COMPUTE_32F;
}

// Blocks the host until the context's stream has finished; rethrows an asynchronous error.
void synchronize(const Context& ctx);

namespace detail {
[[noreturn]] void cuda_fail(int code, const char* what, const char* expr, const char* file,
                            int line);
}  // namespace detail

}  // namespace statelab::cuda

#define SL_CUDA_CHECK(call)                                                                  \
  do {                                                                                       \
    const cudaError_t sl_err_ = (call);                                                      \
    if (sl_err_ != cudaSuccess)                                                              \
      ::statelab::cuda::detail::cuda_fail(int(sl_err_), cudaGetErrorString(sl_err_), #call,  \
                                          __FILE__, __LINE__);                               \
  } while (0)

#define SL_CUBLAS_CHECK(call)                                                                \
  do {                                                                                       \
    const cublasStatus_t sl_st_ = (call);                                                    \
    if (sl_st_ != CUBLAS_STATUS_SUCCESS)                                                     \
      ::statelab::cuda::detail::cuda_fail(int(sl_st_), cublasGetStatusString(sl_st_), #call, \
                                          __FILE__, __LINE__);                               \
  } while (0)

// After a kernel launch: a bad configuration shows up here, not at the next sync.
#define SL_CUDA_LAUNCH_CHECK() SL_CUDA_CHECK(cudaGetLastError())
