// LSTM / sLSTM backward on the tensor cores for heads of 129 to 512 units, twin of
// nonlinear_recurrence_wide.cu with the same CTAs. Per step, from the last:
//   1. thread (row, unit) adds the dh_rec shares every CTA of its head and batch tile wrote for
//      it, runs the cell's backward and writes dpre_t, also into shared memory (TF32) as the
//      product's A operand: the CTA's 16 rows × 64 gate columns;
//   2. each warp multiplies that tile by its 8 n-tiles of Rᵀ (fragments in registers for the
//      whole sequence): the CTA's share of dh_rec = dpre_t · Rᵀ for 64 units of the head, K being
//      only this CTA's columns;
//   3. the shares go to global memory, [group][parity][receiver][sender][row][unit], and after a
//      grid barrier the step before reads its receivers' slices from L2.
// dR is cuBLAS GEMMs afterwards (nonlinear_recurrence_dr.cu). Checked against the CPU twin by
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

constexpr int kKSteps = 4 * kWideUnits / 8;  // K: the CTA's 64 gate columns
// Float stride of the A tile's rows, ≡ 4 (mod 32): ldmatrix's 8 rows hit 32 banks.
constexpr int kALd = 4 * kWideUnits + 4;
constexpr int kShare = kRows * kWideUnits;  // one sender's shares for one receiver

struct WideBwdParams {
  int B, T, H, Dh;
  WideGrid grid;
  int ntiles;  // n-tiles of 8 units per warp, ⌈⌈Dh / 8⌉ / 8⌉
  bool slstm, exp_forget;
  const float* R;  // [H, Dh, 4, Dh]
  CellSaved saved;
  float* dpre;      // [2, B, T, H, 2, Dh]: see PreIndex
  float* exchange;  // [resident][2][nsplit receivers][nsplit senders][kRows][kWideUnits]
};

__host__ __device__ inline int64_t exchange_per_group(int nsplit) {
  return int64_t(2) * nsplit * nsplit * kShare;
}

__global__ void __launch_bounds__(kWideThreads, 1) wide_backward_kernel(const WideBwdParams p) {
  __shared__ __align__(16) float a_tile[kRows * kALd];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  const int rank = blockIdx.x, nsplit = p.grid.nsplit, j0 = rank * kWideUnits;
  const int n0 = 8 * p.ntiles * warp;  // the warp's first unit of the head
  const int64_t G = 4 * int64_t(p.Dh), D = int64_t(p.H) * p.Dh, gate_step = p.H * G;
  const float* a_row = a_tile + (lane & 15) * kALd + 4 * (lane >> 4);
  float* const group_exchange = p.exchange + blockIdx.y * exchange_per_group(nsplit);
  cg::grid_group grid = cg::this_grid();

  for (int pass = 0; pass < p.grid.passes; ++pass) {
    const WideWork w = wide_work(p.grid, pass);
    // Rᵀ(k, n) = R[n][k % 4][j0 + k / 4]: k the CTA's gate column 4·unit + gate, n a unit.
    uint32_t rb[kWideTiles][kKSteps][2];
    {
      const float* Rh = p.R + int64_t(w.hd) * p.Dh * G;
#pragma unroll
      for (int i = 0; i < kWideTiles; ++i) {
        const int n = n0 + 8 * i + g;
#pragma unroll
        for (int ks = 0; ks < kKSteps; ++ks)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int k = 8 * ks + t + 4 * e, u = j0 + k / 4;
            const bool inside = w.live && i < p.ntiles && n < p.Dh && u < p.Dh;
            rb[i][ks][e] = tf32_round(inside ? Rh[n * G + (k % 4) * p.Dh + u] : 0.f);
          }
      }
    }
    const CellThread cell = cell_thread(kWideUnits, j0, w.b0, w.hd, p.B, p.T, p.H, p.Dh);
    const bool live = w.live && cell.live;
    const PreIndex dpre_at = pre_index(w.b0 + cell.row, w.hd, cell.j, p.B, p.T, p.H, p.Dh);
    auto load_step = [&](int s) {
      return load_step_inputs(p.saved, cell.gate0 + s * gate_step, cell.state0 + s * D, D, p.Dh,
                              s == 0, p.slstm, p.exp_forget);
    };
    // Inputs of steps s and s − 1 in flight, as in forward.
    StepInputs in0, in1;
    float c_s = 0.f, n_s = 1.f;
    if (live) {
      in0 = load_step(p.T - 1);
      if (p.T > 1) in1 = load_step(p.T - 2);
      c_s = p.saved.c[cell.state0 + int64_t(p.T - 1) * D];
      if (p.slstm) n_s = p.saved.n[cell.state0 + int64_t(p.T - 1) * D];
    }
    // Where this cell's shares arrive, and where the warp's accumulator columns go: unit n of
    // the head belongs to receiver n / 16, as its unit n % 16.
    const float* recv =
        group_exchange + int64_t(rank) * nsplit * kShare + cell.row * kWideUnits + cell.jl;
    CellCarry carry;
    for (int s = p.T - 1; s >= 0; --s) {
      // 1. The cell's backward.
      const StepInputs in = in0;
      in0 = in1;
      if (live && s >= 2) in1 = load_step(s - 2);
      float4 d = make_float4(0.f, 0.f, 0.f, 0.f);
      if (live) {
        float gh = in.dh;
        if (s + 1 < p.T) {
          const float* src = recv + int64_t((s + 1) & 1) * nsplit * nsplit * kShare;
          float part[4] = {0.f, 0.f, 0.f, 0.f};  // four chains of loads and adds
          for (int q = 0; q < nsplit; q += 4)
#pragma unroll
            for (int e = 0; e < 4; ++e)
              if (q + e < nsplit) part[e] += __ldcg(src + (q + e) * kShare);
          gh += (part[0] + part[1]) + (part[2] + part[3]);
        }
        d = cell_step_backward(p.slstm, p.exp_forget, gh, in, c_s, n_s, carry);
        store_pre_step(p.dpre, dpre_at, s, p.Dh, d);
        c_s = in.c_prev;
        n_s = in.n_prev;
      }
      // dpre_s into the A tile (zeros from threads without a cell); the products of step s + 1
      // read it before the grid barrier that ended that step.
      *reinterpret_cast<float4*>(a_tile + cell.row * kALd + 4 * cell.jl) =
          make_float4(__uint_as_float(tf32_round(d.x)), __uint_as_float(tf32_round(d.y)),
                      __uint_as_float(tf32_round(d.z)), __uint_as_float(tf32_round(d.w)));
      __syncthreads();

      // 2. and 3. This CTA's share of dh_rec for step s − 1, to its receivers.
      if (s > 0 && w.live) {
        float acc[kWideTiles][4] = {};
#pragma unroll
        for (int ks = 0; ks < kKSteps; ++ks) {
          uint32_t ah[4];
          load_fragment(ah, a_row + 8 * ks);
#pragma unroll
          for (int i = 0; i < kWideTiles; ++i) {
            if (i >= p.ntiles) break;
            mma_tf32(acc[i], ah, rb[i][ks][0], rb[i][ks][1]);
          }
        }
        float* to = group_exchange + int64_t(s & 1) * nsplit * nsplit * kShare;
#pragma unroll
        for (int i = 0; i < kWideTiles; ++i) {
          const int n = n0 + 8 * i + 2 * t;  // and n + 1: one receiver, side by side
          if (i >= p.ntiles || n >= p.Dh) break;
          const int receiver = n / kWideUnits, u = n - receiver * kWideUnits;
          float* dst = to + (int64_t(receiver) * nsplit + rank) * kShare + u;
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const int r = g + 8 * h;
            if (w.b0 + r >= p.B) continue;
            *reinterpret_cast<float2*>(dst + r * kWideUnits) =
                make_float2(acc[i][2 * h], acc[i][2 * h + 1]);
          }
        }
      }
      // Publishes the shares for step s − 1; also keeps the A tile's next write, and a fast
      // CTA's next pass, behind every read of this step.
      grid.sync();
    }
  }
}

WideBwdParams make_params(const cpu::NonlinearRecurrence<float>& r, const float* dh, float* dpre,
                          float* work) {
  WideBwdParams p{};
  p.B = int(r.B), p.T = int(r.T), p.H = int(r.H), p.Dh = int(r.Dh);
  p.ntiles = int(((r.Dh + 7) / 8 + kWideWarps - 1) / kWideWarps);
  p.slstm = r.cell == cpu::NonlinearCell::slstm;
  p.exp_forget = r.exp_forget;
  p.R = r.R;
  p.saved = {r.raw, r.gates, r.c, r.n, dh};
  p.dpre = dpre;
  p.exchange = work;
  return p;
}

const void* kernel_ptr() { return reinterpret_cast<const void*>(&wide_backward_kernel); }

std::string grid_for(const Context& ctx, const cpu::NonlinearRecurrence<float>& r,
                     int64_t work_floats, WideGrid& out) {
  const int nsplit = int((r.Dh + kWideUnits - 1) / kWideUnits);
  return wide_grid(ctx, r, kernel_ptr(), 0, exchange_per_group(nsplit), work_floats, out);
}

}  // namespace

std::string wide_backward_unfit_reason(const Context& ctx, const cpu::NonlinearRecurrence<float>& r,
                                       int64_t work_floats) {
  WideGrid grid;
  return grid_for(ctx, r, work_floats, grid);
}

void wide_backward(const Context& ctx, const cpu::NonlinearRecurrence<float>& r, const float* dh,
                   float* dpre, float* work, int64_t work_floats) {
  WideBwdParams p = make_params(r, dh, dpre, work);
  const std::string unfit = grid_for(ctx, r, work_floats, p.grid);
  SL_CHECK_SHAPE(unfit.empty(), "nonlinear_recurrence_bwd (wide tensor-core kernel): " + unfit);
  cudaLaunchAttribute attr{};
  const cudaLaunchConfig_t cfg = wide_launch(ctx, p.grid, 0, &attr);
  SL_CUDA_CHECK(cudaLaunchKernelEx(&cfg, wide_backward_kernel, p));
  SL_CUDA_LAUNCH_CHECK();
}

}  // namespace statelab::cuda::nonlinear_mma
