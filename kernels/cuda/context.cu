// Creation and teardown of the per-device CUDA context.
#include <cstdio>
#include <sstream>

#include "kernels/cuda/context.hpp"
#include "kernels/cuda/gemm_plans.hpp"

namespace statelab::cuda {

namespace {
// cuBLASLt's recommended workspace on Hopper (32 MiB) lets it pick split-K and stream-K
// kernels; smaller workspaces exclude them.
constexpr size_t kLtWorkspaceBytes = size_t(32) << 20;
}  // namespace

namespace detail {
void cuda_fail(int code, const char* what, const char* expr, const char* file, int line) {
  std::ostringstream s;
  s << expr << " failed: " << what << " (code " << code << ") (" << file << ":" << line << ")";
  throw CudaError(s.str());
}
}  // namespace detail

std::unique_ptr<Context> make_context(int device, Precision precision) {
  int count = 0;
  SL_CUDA_CHECK(cudaGetDeviceCount(&count));
  if (device < 0 || device >= count)
    throw CudaError("cuda:" + std::to_string(device) + ": this machine has " +
                    std::to_string(count) + " CUDA device(s), numbered from 0");
  auto ctx = std::make_unique<Context>();
  ctx->gemm_plans = std::make_unique<GemmPlans>();
  ctx->device = device;
  ctx->precision = precision;
  SL_CUDA_CHECK(cudaSetDevice(device));
  cudaDeviceProp prop{};
  SL_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  ctx->sm_count = prop.multiProcessorCount;
  ctx->max_shared_per_block = prop.sharedMemPerBlockOptin;
  ctx->l2_bytes = size_t(prop.l2CacheSize);
  ctx->name = prop.name;
  static const char* const kHex = "0123456789abcdef";
  for (unsigned char byte : prop.uuid.bytes) {
    ctx->uuid += kHex[byte >> 4];
    ctx->uuid += kHex[byte & 15];
  }
  SL_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking));
  SL_CUBLAS_CHECK(cublasCreate(&ctx->blas));
  SL_CUBLAS_CHECK(cublasSetStream(ctx->blas, ctx->stream));
  SL_CUBLAS_CHECK(cublasLtCreate(&ctx->lt));
  SL_CUDA_CHECK(cudaMalloc(&ctx->lt_workspace, kLtWorkspaceBytes));
  ctx->lt_workspace_bytes = kLtWorkspaceBytes;
  // cuBLAS gets the same workspace, so it never allocates inside a captured graph.
  SL_CUBLAS_CHECK(cublasSetWorkspace(ctx->blas, ctx->lt_workspace, ctx->lt_workspace_bytes));
  return ctx;
}

Context::Context() = default;

Context::~Context() {
  // Destructors must not throw: report and go on.
  auto warn = [](const char* what, int code) {
    if (code) std::fprintf(stderr, "statelab: %s failed with code %d during teardown\n", what, code);
  };
  if (stream) warn("cudaStreamSynchronize", int(cudaStreamSynchronize(stream)));
  gemm_plans.reset();  // its descriptors belong to the cuBLASLt handle
  if (lt) warn("cublasLtDestroy", int(cublasLtDestroy(lt)));
  if (blas) warn("cublasDestroy", int(cublasDestroy(blas)));
  if (lt_workspace) warn("cudaFree", int(cudaFree(lt_workspace)));
  if (stream) warn("cudaStreamDestroy", int(cudaStreamDestroy(stream)));
}

void synchronize(const Context& ctx) { SL_CUDA_CHECK(cudaStreamSynchronize(ctx.stream)); }

}  // namespace statelab::cuda
