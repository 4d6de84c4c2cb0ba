// The weight gradient of the LSTM / sLSTM recurrence on CUDA: h shifted by one step so that
// h_{t-1} lines up with dpre_t, then dR as one batched cuBLAS GEMM over (head, slice of the B·T
// rows, gate half) and one kernel that adds the slices' partial sums. Checked with the backward
// by kernels/selftest/nonlinear_recurrence.cpp.
#include "kernels/cuda/nonlinear_recurrence_dr.hpp"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

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

// The batched GEMM's operands, entry e = (head, slice, half) in that order: the half's dpre
// columns of the head over the slice's rows, the head's shifted h over the same rows, and the
// half's columns of the head's partial dR for the slice.
struct SliceOperands {
  const float** a;
  const float** b;
  float** c;
  const float* dpre;  // [2, rows, H, 2, Dh]
  const float* hs;    // [rows, H, Dh]
  float* partial;     // [H, slices, Dh, 4, Dh]
  int H, Dh, slices;
  int64_t span, rows;
};

__global__ void slice_operands_kernel(SliceOperands p) {
  const int e = blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= p.H * p.slices * 2) return;
  const int h = e / (2 * p.slices), s = (e / 2) % p.slices, half = e % 2;
  const int64_t D = int64_t(p.H) * p.Dh, width = 2 * int64_t(p.Dh);
  p.a[e] = p.dpre + half * p.rows * 2 * D + s * p.span * 2 * D + h * width;
  p.b[e] = p.hs + s * p.span * D + h * p.Dh;
  p.c[e] = p.partial + (int64_t(h) * p.slices + s) * 2 * width * p.Dh + half * width;
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

// A device pointer in the float work buffer.
constexpr int64_t kPointerFloats = 2;
static_assert(sizeof(float*) == kPointerFloats * sizeof(float), "a pointer is two floats wide");

// The partial sums' and the operand arrays' offsets in the work buffer, in floats; the arrays
// hold 3 · H · slices · 2 pointers from an 8-byte aligned offset.
struct WorkLayout {
  int64_t partial, operands, end;
};

WorkLayout work_layout(const NonlinearRecurrence<float>& p) {
  const int slices = dr_slices(p);
  WorkLayout w;
  w.partial = p.B * p.T * p.H * p.Dh;
  w.operands = slices > 1 ? w.partial + (p.H * slices * 4 * p.Dh * p.Dh + 1) / 2 * 2 : w.partial;
  w.end = slices > 1 ? w.operands + 3 * p.H * slices * 2 * kPointerFloats : w.partial;
  return w;
}

}  // namespace

int64_t work_size(const NonlinearRecurrence<float>& p) { return work_layout(p).end; }

void accumulate(const Context& ctx, const NonlinearRecurrence<float>& p, const float* dpre,
                float* dR, float* work) {
  // dR_h += Σ_{b,t} h_{t-1}[b, h]ᵀ · dpre_t[b, h], a gate half at a time: dpre holds the
  // (ĩ, f̃) half of every row, then the (z̃, õ) half. Column-major cuBLAS sees the row-major
  // dR_h as dR_hᵀ (4Dh × Dh, ld 4Dh), whose half's 2Dh rows are dpre_{h,half}ᵀ (stored 2Dh × BT,
  // ld 2HDh, op N) · hs_h (stored Dh × BT, ld HDh, op T). The rows go in `slices` equal slices
  // (a partial dR per slice, added afterwards); the rows past them, one strided batch over
  // heads per half, go straight into dR.
  const int64_t D = p.H * p.Dh, rows = p.B * p.T;
  const int blocks = int(std::min<int64_t>(rows, int64_t(std::max(ctx.sm_count, 1)) * 16));
  shift_time_kernel<<<blocks, 128, 0, ctx.stream>>>(work, p.h, rows, int(p.T), D);
  SL_CUDA_LAUNCH_CHECK();
  const float one = 1.f, zero = 0.f;
  const int G = int(4 * p.Dh), width = int(2 * p.Dh);
  const int64_t size = int64_t(G) * p.Dh;
  const cublasComputeType_t type = cublas_compute_type(ctx.precision);
  const int slices = dr_slices(p);
  const int64_t span = slices > 1 ? rows / slices : 0, rest = rows - slices * span;
  for (int half = 0; half < 2 && rest > 0; ++half)
    SL_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        ctx.blas, CUBLAS_OP_N, CUBLAS_OP_T, width, int(p.Dh), int(rest), &one,
        dpre + half * rows * 2 * D + slices * span * 2 * D, CUDA_R_32F, int(2 * D), width,
        work + slices * span * D, CUDA_R_32F, int(D), p.Dh, &one, dR + half * width, CUDA_R_32F, G,
        size, int(p.H), type, CUBLAS_GEMM_DEFAULT));
  if (span == 0) return;
  SL_CHECK(reinterpret_cast<uintptr_t>(work) % alignof(float*) == 0,
           "nonlinear_dr::accumulate: work must be aligned for the GEMM's pointer arrays");
  const WorkLayout layout = work_layout(p);
  float* partial = work + layout.partial;
  const int count = int(p.H) * slices * 2;
  float* arrays = work + layout.operands;
  auto** a = reinterpret_cast<const float**>(arrays);
  auto** b = reinterpret_cast<const float**>(arrays + count * kPointerFloats);
  auto** c = reinterpret_cast<float**>(arrays + 2 * count * kPointerFloats);
  const SliceOperands ops{a, b, c, dpre, work, partial, int(p.H), int(p.Dh), slices, span, rows};
  slice_operands_kernel<<<(count + 127) / 128, 128, 0, ctx.stream>>>(ops);
  SL_CUDA_LAUNCH_CHECK();
  SL_CUBLAS_CHECK(cublasGemmBatchedEx(
      ctx.blas, CUBLAS_OP_N, CUBLAS_OP_T, width, int(p.Dh), int(span), &one,
      reinterpret_cast<const void* const*>(a), CUDA_R_32F, int(2 * D),
      reinterpret_cast<const void* const*>(b), CUDA_R_32F, int(D), &zero,
      reinterpret_cast<void* const*>(c), CUDA_R_32F, G, count, type, CUBLAS_GEMM_DEFAULT));
  const int64_t total = p.H * size;
  const int add_blocks = int(std::min<int64_t>((total + 255) / 256, int64_t(ctx.sm_count) * 8));
  add_slices_kernel<<<std::max(add_blocks, 1), 256, 0, ctx.stream>>>(dR, partial, int(p.H), slices,
                                                                     size);
  SL_CUDA_LAUNCH_CHECK();
}

}  // namespace statelab::cuda::nonlinear_dr
