// LSTM / sLSTM forward on the tensor cores for heads of 129 to 512 units, whose R is too large
// for one cluster: a CTA owns 16 batch rows and 16 units with all four gates (64 columns of R),
// and each of its 8 warps keeps the TF32 fragments of those columns for one eighth of K in
// registers for the whole sequence. Per step:
//   1. each warp multiplies h_{t-1}'s 16 rows over its K slice (ldmatrix A fragments from shared
//      memory) by its fragments: 8 n-tiles × up to 8 k-steps;
//   2. the warps' shares meet in shared memory, and thread (row, unit) sums them, adds the input
//      pre-activations, runs the cell and writes its outputs, h_t included;
//   3. after a grid barrier, every CTA gathers its rows' h_t, all units, from L2.
// The FFMA kernel's grid mode runs the same exchange, but its thread's 4·Dh dependent FMAs per
// step made it compute-bound at Dh = 512. Checked against the CPU twin by
// kernels/selftest/nonlinear_recurrence.cpp.
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include "kernels/cuda/nonlinear_cell.cuh"
#include "kernels/cuda/nonlinear_wide_common.cuh"
#include "kernels/cuda/tf32_mma.cuh"

namespace statelab::cuda::nonlinear_mma {

namespace {

namespace cg = cooperative_groups;
using namespace internal;

// Float stride of the warps' R·h shares: a C fragment's 64-bit stores hit 32 banks.
constexpr int kShareLd = 4 * kWideUnits + 8;

struct WideParams {
  int B, T, H, Dh;
  WideGrid grid;
  int ksteps;  // k-steps per warp, ⌈⌈Dh / 8⌉ / 8⌉
  int sh;      // float stride of the h rows, 64·ksteps + 4: ldmatrix's 8 rows hit 32 banks
  bool vec4;   // h rows gathered a float4 at a time (Dh a multiple of 4, h 16-byte aligned)
  bool slstm, exp_forget;
  const float* pre;  // [2, B, T, H, 2, Dh]: see PreIndex
  const float* R;    // [H, Dh, 4, Dh]
  CellOutputs out;
};

// Shared memory in floats: h_{t-1} of the CTA's rows [kRows][sh], then the warps' shares of
// R·h, [warp][kRows][kShareLd].
__host__ __device__ inline int wide_smem_floats(const WideParams& p) {
  return kRows * p.sh + kWideWarps * kRows * kShareLd;
}

// Rows b0.. of h_s, every unit, TF32-rounded into hs: rows by warp, columns by lane. Rows past B
// hold what they held (zeros, or a previous pass's rows): the products of a row only reach that
// row, whose cells store nothing.
__device__ void gather_h(float* hs, const WideParams& p, int hd, int b0, int s) {
  const int rows = min(kRows, p.B - b0), lane = threadIdx.x & 31;
  const int64_t D = int64_t(p.H) * p.Dh, row_step = int64_t(p.T) * D;
  const float* h = p.out.h + (int64_t(b0) * p.T + s) * D + int64_t(hd) * p.Dh;
  for (int r = threadIdx.x >> 5; r < rows; r += kWideWarps) {
    const float* src = h + r * row_step;
    float* dst = hs + r * p.sh;
    if (p.vec4) {
      for (int q = lane; q < p.Dh / 4; q += 32) {
        const float4 v = __ldcg(reinterpret_cast<const float4*>(src) + q);
        *reinterpret_cast<float4*>(dst + 4 * q) =
            make_float4(__uint_as_float(tf32_round(v.x)), __uint_as_float(tf32_round(v.y)),
                        __uint_as_float(tf32_round(v.z)), __uint_as_float(tf32_round(v.w)));
      }
    } else {
      for (int k = lane; k < p.Dh; k += 32) dst[k] = __uint_as_float(tf32_round(__ldcg(src + k)));
    }
  }
}

__global__ void __launch_bounds__(kWideThreads, 1) wide_forward_kernel(const WideParams p) {
  extern __shared__ __align__(16) float smem[];
  float* hs = smem;
  float* shares = hs + kRows * p.sh;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  const int rank = blockIdx.x, j0 = rank * kWideUnits;
  const int k0 = 8 * p.ksteps * warp;  // the warp's K slice
  const int64_t G = 4 * int64_t(p.Dh), D = int64_t(p.H) * p.Dh, gate_step = p.H * G;
  // Lane l passes row l % 16, columns 4·(l / 16).. of each k-step's A block.
  const float* a_row = hs + (lane & 15) * p.sh + 4 * (lane >> 4) + k0;
  float* share_out = shares + warp * kRows * kShareLd + g * kShareLd + 2 * t;
  cg::grid_group grid = cg::this_grid();

  for (int i = threadIdx.x; i < kRows * p.sh; i += blockDim.x) hs[i] = 0.f;  // K past Dh adds 0
  for (int pass = 0; pass < p.grid.passes; ++pass) {
    const WideWork w = wide_work(p.grid, pass);
    // Column 8·n + g of the CTA is gate g % 4 of unit 2·n + g / 4.
    uint32_t rb[kWideTiles][kWideKSteps][2];
    {
      const float* Rh = p.R + int64_t(w.hd) * p.Dh * G + (g & 3) * p.Dh;
#pragma unroll
      for (int n = 0; n < kWideTiles; ++n) {
        const int u = j0 + 2 * n + (g >> 2);
#pragma unroll
        for (int ks = 0; ks < kWideKSteps; ++ks)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int k = k0 + 8 * ks + t + 4 * e;
            const bool inside = w.live && ks < p.ksteps && k < p.Dh && u < p.Dh;
            rb[n][ks][e] = tf32_round(inside ? Rh[k * G + u] : 0.f);
          }
      }
    }
    const CellThread cell = cell_thread(kWideUnits, j0, w.b0, w.hd, p.B, p.T, p.H, p.Dh);
    const bool live = w.live && cell.live;
    CellOutputs out = p.out;
    out.advance(cell.gate0, cell.state0);
    const PreIndex pre_at = pre_index(w.b0 + cell.row, w.hd, cell.j, p.B, p.T, p.H, p.Dh);
    auto load_pre = [&](int s) {
      if (!live || s >= p.T) return make_float4(0.f, 0.f, 0.f, 0.f);
      return load_pre_step(p.pre, pre_at, s, p.Dh);
    };
    float4 pre0 = load_pre(0), pre1 = load_pre(1);
    CellState state;
    __syncthreads();  // hs zeroed (first pass) or done with (the last pass's final products)
    for (int s = 0; s < p.T; ++s) {
      // 1. This warp's share of R·h_{s-1}.
      float acc[kWideTiles][4] = {};
      if (s > 0) {
#pragma unroll
        for (int ks = 0; ks < kWideKSteps; ++ks) {
          if (ks >= p.ksteps) break;
          uint32_t ah[4];
          load_fragment(ah, a_row + 8 * ks);
#pragma unroll
          for (int n = 0; n < kWideTiles; ++n) mma_tf32(acc[n], ah, rb[n][ks][0], rb[n][ks][1]);
        }
      }
#pragma unroll
      for (int n = 0; n < kWideTiles; ++n) {
        *reinterpret_cast<float2*>(share_out + 8 * n) = make_float2(acc[n][0], acc[n][1]);
        *reinterpret_cast<float2*>(share_out + 8 * kShareLd + 8 * n) =
            make_float2(acc[n][2], acc[n][3]);
      }
      __syncthreads();

      // 2. The cell of (row, unit): its four gates' shares side by side in each warp's rows.
      const float4 pre_s = pre0;
      pre0 = pre1;
      pre1 = load_pre(s + 2);
      float4 raw = pre_s;
#pragma unroll
      for (int q = 0; q < kWideWarps; ++q) {
        const float4 r = *reinterpret_cast<const float4*>(
            shares + (q * kRows + cell.row) * kShareLd + 4 * cell.jl);
        raw = make_float4(raw.x + r.x, raw.y + r.y, raw.z + r.z, raw.w + r.w);
      }
      if (live) {
        const CellStep step = cell_step(p.slstm, p.exp_forget, s == 0, raw, state);
        store_step(out, 0, 0, p.Dh, p.slstm, raw, step, state);
      }
      out.advance(gate_step, D);
      // 3. h_s of every CTA of the grid, then this CTA's rows of it. The barrier also orders the
      // shares' reads above before the next step's writes, and the products' reads of hs before
      // the gather's writes.
      if (s + 1 < p.T) {
        grid.sync();
        if (w.live) gather_h(hs, p, w.hd, w.b0, s);
        __syncthreads();
      }
    }
    // A pass ends without a grid barrier: nothing of it is read by another CTA afterwards.
  }
}

WideParams make_params(const cpu::NonlinearRecurrence<float>& r) {
  WideParams p{};
  p.B = int(r.B), p.T = int(r.T), p.H = int(r.H), p.Dh = int(r.Dh);
  p.ksteps = int(((r.Dh + 7) / 8 + kWideWarps - 1) / kWideWarps);
  p.sh = 8 * kWideWarps * p.ksteps + 4;
  p.vec4 = r.Dh % 4 == 0 && reinterpret_cast<uintptr_t>(r.h) % 16 == 0;
  p.slstm = r.cell == cpu::NonlinearCell::slstm;
  p.exp_forget = r.exp_forget;
  p.pre = r.pre;
  p.R = r.R;
  p.out = {r.raw, r.gates, r.c, r.n, r.m, r.h};
  return p;
}

const void* kernel_ptr() { return reinterpret_cast<const void*>(&wide_forward_kernel); }

}  // namespace

std::string wide_unfit_reason(const Context& ctx, const cpu::NonlinearRecurrence<float>& r) {
  WideParams p = make_params(r);
  return wide_grid(ctx, r, kernel_ptr(), sizeof(float) * size_t(wide_smem_floats(p)), 0, 0, p.grid);
}

void wide_forward(const Context& ctx, const cpu::NonlinearRecurrence<float>& r) {
  WideParams p = make_params(r);
  const size_t smem = sizeof(float) * size_t(wide_smem_floats(p));
  const std::string unfit = wide_grid(ctx, r, kernel_ptr(), smem, 0, 0, p.grid);
  SL_CHECK_SHAPE(unfit.empty(), "nonlinear_recurrence_fwd (wide tensor-core kernel): " + unfit);
  cudaLaunchAttribute attr{};
  const cudaLaunchConfig_t cfg = wide_launch(ctx, p.grid, smem, &attr);
  SL_CUDA_CHECK(cudaLaunchKernelEx(&cfg, wide_forward_kernel, p));
  SL_CUDA_LAUNCH_CHECK();
}

}  // namespace statelab::cuda::nonlinear_mma
