// The weight gradient of the LSTM / sLSTM recurrence on CUDA: h shifted by one step so that
// h_{t-1} lines up with dpre_t, then dR as strided-batched cuBLAS GEMMs over slices of the B·T
// rows and one kernel that adds the slices' partial sums. Checked with the backward by
// kernels/selftest/nonlinear_recurrence.cpp.
#include "kernels/cuda/nonlinear_recurrence_dr.hpp"

#include <cuda_runtime.h>

#include <algorithm>

namespace statelab::cuda::nonlinear_dr {

namespace {

using cpu::NonlinearRecurrence;

// dst[b, t] = t > 0 ? src[b, t − 1] : 0 over rows of D elements: h_{t-1} aligned with dpre_t, so
// dR is a GEMM over all B·T rows.
__global__ void shift_time_kernel(float* dst, const float* src, int64_t rows, int T, int64_t D) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const bool first = r % T == 0;
    for (int64_t k = threadIdx.x; k < D; k += blockDim.x)
      dst[r * D + k] = first ? 0.f : src[(r - 1) * D + k];
  }
}

// dR[h][e] += Σ_s partial[h][s][e] over `size` = 4·Dh·Dh entries per head.
__global__ void add_slices_kernel(float* dR, const float* partial, int H, int slices,
                                  int64_t size) {
  const int64_t total = H * size;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t h = e / size, i = e - h * size;
    const float* src = partial + h * slices * size + i;
    float sum = 0.f;
    for (int s = 0; s < slices; ++s) sum += src[s * size];
    dR[e] += sum;
  }
}

// dR's sum over the B·T rows in slices of at least kMinSliceRows, as separate GEMMs whose partial
// sums are then added: one GEMM per head of K = B·T would give a GPU only the few CTAs of its
// small output (4·Dh × Dh) to run, each through all the rows. Enough slices for about
// kTargetTiles output tiles of 128 × 128; depends on the shapes only, so work_size can bound it.
constexpr int kMaxSlices = 32;
constexpr int64_t kMinSliceRows = 256;
constexpr int64_t kTargetTiles = 512;

int dr_slices(const NonlinearRecurrence<float>& p) {
  const int64_t tiles = p.H * ((4 * p.Dh + 127) / 128) * ((p.Dh + 127) / 128);
  const int64_t wanted = (kTargetTiles + tiles - 1) / tiles;
  const int64_t most = std::min(int64_t(kMaxSlices), p.B * p.T / kMinSliceRows);
  return int(std::max<int64_t>(1, std::min(wanted, most)));
}

}  // namespace

int64_t work_size(const NonlinearRecurrence<float>& p) {
  const int slices = dr_slices(p);
  return p.B * p.T * p.H * p.Dh + (slices > 1 ? p.H * slices * 4 * p.Dh * p.Dh : 0);
}

void accumulate(const Context& ctx, const NonlinearRecurrence<float>& p, const float* dpre,
                float* dR, float* work) {
  // dR_h += Σ_{b,t} h_{t-1}[b, h]ᵀ · dpre_t[b, h]. Column-major cuBLAS sees the row-major dR_h
  // as dR_hᵀ (4Dh × Dh, ld 4Dh) = dpre_hᵀ (stored 4Dh × BT, ld 4HDh, op N) · hs_h (stored
  // Dh × BT, ld HDh, op T). The rows go in `slices` equal slices (one batched GEMM per head, a
  // partial dR per slice, added afterwards); the rows past them, one batch entry per head, go
  // straight into dR.
  const int64_t D = p.H * p.Dh, rows = p.B * p.T;
  const int blocks = int(std::min<int64_t>(rows, int64_t(std::max(ctx.sm_count, 1)) * 16));
  shift_time_kernel<<<blocks, 128, 0, ctx.stream>>>(work, p.h, rows, int(p.T), D);
  SL_CUDA_LAUNCH_CHECK();
  const float one = 1.f, zero = 0.f;
  const int G = int(4 * p.Dh);
  const int64_t size = int64_t(G) * p.Dh;
  const cublasComputeType_t type = cublas_compute_type(ctx.precision);
  const int slices = dr_slices(p);
  const int64_t span = slices > 1 ? rows / slices : 0, rest = rows - slices * span;
  if (rest > 0)
    SL_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        ctx.blas, CUBLAS_OP_N, CUBLAS_OP_T, G, int(p.Dh), int(rest), &one,
        dpre + slices * span * 4 * D, CUDA_R_32F, int(4 * D), G, work + slices * span * D,
        CUDA_R_32F, int(D), p.Dh, &one, dR, CUDA_R_32F, G, size, int(p.H), type,
        CUBLAS_GEMM_DEFAULT));
  if (span == 0) return;
  float* partial = work + rows * D;
  for (int64_t h = 0; h < p.H; ++h)
    SL_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        ctx.blas, CUBLAS_OP_N, CUBLAS_OP_T, G, int(p.Dh), int(span), &one, dpre + h * G,
        CUDA_R_32F, int(4 * D), span * 4 * D, work + h * p.Dh, CUDA_R_32F, int(D), span * D,
        &zero, partial + h * slices * size, CUDA_R_32F, G, size, slices, type,
        CUBLAS_GEMM_DEFAULT));
  const int64_t total = p.H * size;
  const int add_blocks = int(std::min<int64_t>((total + 255) / 256, int64_t(ctx.sm_count) * 8));
  add_slices_kernel<<<std::max(add_blocks, 1), 256, 0, ctx.stream>>>(dR, partial, int(p.H), slices,
                                                                     size);
  SL_CUDA_LAUNCH_CHECK();
}

}  // namespace statelab::cuda::nonlinear_dr
