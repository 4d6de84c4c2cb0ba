// LSTM / sLSTM forward with R·h on the tensor cores, for heads of up to 128 units. A CTA owns 16
// batch rows (the mma's M) and a slice of units with all four gates of each. Per step:
//   1. each warp runs ⌈Dh / 8⌉ m16n8k8 products of h_{t-1} (shared memory) with its 8 columns of
//      R (two units' gates), kept as TF32 fragments in registers for the whole sequence (hi and
//      lo parts for 3xTF32), and parks the accumulators in shared memory;
//   2. after a CTA barrier, thread (row, unit) in row-major order adds the pre-activations, runs
//      the cell and writes its outputs, so every global access is a run of consecutive units;
//   3. h_t goes into the shared memory of every CTA of the head (a cluster when the head is
//      wider than one CTA) as st.async stores counted on the receiver's mbarrier, which the
//      next step's products wait for: no cluster barrier per step. A head in one CTA keeps h_t
//      in its own shared memory behind a second CTA barrier (st.async needs a real cluster).
// A thread of the FFMA kernel runs 4·Dh dependent FMAs per step instead, which at 16 batch rows
// left each SM one warp per scheduler, latency-bound. Checked against the CPU twin by
// kernels/selftest/nonlinear_recurrence.cpp.
#include "kernels/cuda/nonlinear_recurrence_mma.hpp"

#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include "kernels/cuda/nonlinear_cell.cuh"
#include "kernels/cuda/nonlinear_mma_common.cuh"
#include "kernels/cuda/nonlinear_recurrence.hpp"
#include "kernels/cuda/tf32_mma.cuh"

namespace statelab::cuda::nonlinear_mma {

namespace {

namespace cg = cooperative_groups;
using namespace internal;  // the spread over CTAs and the cluster exchange

constexpr int kKGroup = 4;  // k-steps of 8 per group: R·h runs over whole groups of 32 columns
constexpr int kMaxKSteps = kTensorCoreMaxDh / 8;
static_assert(kTensorCoreMaxDh % (8 * kKGroup) == 0, "whole groups of k-steps");
static_assert(2 * kMaxWarps * kMaxCluster >= kTensorCoreMaxDh, "a cluster holds the widest head");
// The most shared memory a CTA takes (the mbarriers, 3xTF32 h buffers at Dh = 128 and two of the
// widest R·h tiles) stays inside the 48 KB a launch gets without opting in.
static_assert(4 * (4 + 2 * 2 * kRows * (kTensorCoreMaxDh + 8) + 2 * kRows * (8 * kMaxWarps + 8)) <=
                  48 * 1024,
              "no dynamic shared memory opt-in needed");

struct Params {
  int B, T, H, Dh;
  int kgroups;  // ⌈Dh / 32⌉ groups of kKGroup k-steps; columns past Dh are zero
  int units;    // units per CTA, two per warp: the CTA is kRows · units threads
  int nsplit;   // CTAs per head, one cluster
  int tiles;    // batch tiles of kRows rows per head
  int sh;  // float stride of an h buffer's rows, 32·kgroups + 4: ldmatrix's 8 rows hit 32 banks
  int sr;  // float stride of the R·h tile's rows, 4·units up to ≡ 8 (mod 32): float2 stores
           // hit 32 banks
  bool slstm, exp_forget;
  const float* pre;  // [2, B, T, H, 2, Dh]: see PreIndex
  const float* R;    // [H, Dh, 4, Dh]
  CellOutputs out;
};

// Shared memory in floats: the two mbarriers (4 floats), the h buffers,
// [step parity][hi, lo][kRows][sh], then the R·h tiles, [step parity][kRows][sr] with a unit's
// four gates side by side.
constexpr int kBarrierFloats = 4;
__host__ __device__ inline int h_buffers_size(const Params& p, bool split) {
  return 2 * (split ? 2 : 1) * kRows * p.sh;
}

// kSplit: 3xTF32, R and h as hi + lo and products hi·hi + hi·lo + lo·hi.
template <bool kSplit>
__global__ void __launch_bounds__(kMaxWarps * 32) mma_forward_kernel(const Params p) {
  constexpr int kParts = kSplit ? 2 : 1;
  extern __shared__ __align__(16) float smem[];
  const uint32_t bars = shared_address(smem);  // h_t of step parity q counted at bars + 8·q
  float* hs = smem + kBarrierFloats;
  float* rec = hs + h_buffers_size(p, kSplit);
  const int part = kRows * p.sh, parity = kParts * part;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  const int rank = blockIdx.x;  // the cluster spans gridDim.x
  const int hd = blockIdx.y / p.tiles, b0 = (blockIdx.y % p.tiles) * kRows;
  const int j0 = rank * p.units;  // the CTA's first unit within the head
  const int64_t G = 4 * int64_t(p.Dh);

  // The warp's 8 columns of R as B fragments: column g is gate g % 4 of unit 2·warp + g / 4 of
  // the CTA, so lane (g, t) accumulates gates 2·(t % 2) and 2·(t % 2) + 1 of unit 2·warp + t / 2.
  uint32_t rh[kMaxKSteps][2], rl[kMaxKSteps][2];
  {
    const int jn = j0 + 2 * warp + (g >> 2);
    const float* Rg = p.R + int64_t(hd) * p.Dh * G + (g & 3) * p.Dh + jn;
#pragma unroll
    for (int ks = 0; ks < kMaxKSteps; ++ks)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int k = 8 * ks + t + 4 * e;
        const float r = k < p.Dh && jn < p.Dh ? Rg[k * G] : 0.f;
        rh[ks][e] = to_tf32(r);
        rl[ks][e] = to_tf32(r - __uint_as_float(rh[ks][e]));
      }
  }
  float* rec_out = rec + (2 * warp + (t >> 1)) * 4 + 2 * (t & 1);  // + parity, row
  // Every cell of the head's rows stores its h_t here: the bytes a step's mbarrier waits for.
  const uint32_t step_bytes = uint32_t(min(kRows, p.B - b0)) * p.Dh * kParts * sizeof(float);
  const bool clustered = p.nsplit > 1;  // else h_t stays in the CTA, behind a CTA barrier
  if (clustered && threadIdx.x == 0) {
    init_step_barriers(bars);
    if (p.T > 1) mbarrier_expect(bars, step_bytes);  // h_0
  }
  // Rows past B and columns past Dh are never written, so they stay zero in every product.
  // Cluster peers store into these buffers: they must be zero, and the mbarriers set, first.
  for (int i = threadIdx.x; i < 2 * parity; i += blockDim.x) hs[i] = 0.f;
  if (clustered)
    cg::this_cluster().sync();
  else
    __syncthreads();

  const CellThread cell = cell_thread(p.units, j0, b0, hd, p.B, p.T, p.H, p.Dh);
  const int row = cell.row, jl = cell.jl, j = cell.j;
  const bool live = cell.live;
  const int64_t gate0 = cell.gate0, state0 = cell.state0;
  const int64_t D = int64_t(p.H) * p.Dh, gate_step = p.H * G;
  CellOutputs out = p.out;  // at this thread's (row, unit) of the current step
  out.advance(gate0, state0);
  const PreIndex pre_at = pre_index(b0 + row, hd, j, p.B, p.T, p.H, p.Dh);
  auto load_pre = [&](int s) {
    if (!live || s >= p.T) return make_float4(0.f, 0.f, 0.f, 0.f);
    return load_pre_step(p.pre, pre_at, s, p.Dh);
  };
  // pre of three steps in flight: a step is much shorter than a DRAM round trip.
  float4 pre0 = load_pre(0), pre1 = load_pre(1), pre2 = load_pre(2);
  const int slot = row * p.sh + j;
  CellState state;
  for (int s = 0; s < p.T; ++s) {
    // 1. R·h_{s-1} for rows g and g + 8 of the warp's columns; even and odd k-steps, and 3xTF32's
    // correction terms, accumulate apart, which shortens the dependent chains of products.
    float acc[4][4] = {};
    if (clustered && s > 0) mbarrier_wait(bars + 8 * ((s - 1) & 1), ((s - 1) >> 1) & 1);
    // h_{s+1}'s bytes go to the mbarrier whose phase of h_{s-1} just completed; no peer stores
    // them before this CTA's cells have stored h_s, which comes after the barrier below.
    if (clustered && threadIdx.x == 0 && s + 2 < p.T)
      mbarrier_expect(bars + 8 * ((s + 1) & 1), step_bytes);
    if (s > 0) {
      // Lane l passes row l % 16, columns 4·(l / 16).. of each k-step's A blocks to ldmatrix.
      const float* hp = hs + ((s - 1) & 1) * parity + (lane & 15) * p.sh + 4 * (lane >> 4);
#pragma unroll
      for (int ks = 0; ks < kMaxKSteps; ++ks) {
        if (ks % kKGroup == 0 && ks >= kKGroup * p.kgroups) break;
        uint32_t ah[4];
        load_fragment(ah, hp + 8 * ks);
        if constexpr (kSplit) {
          uint32_t al[4];
          load_fragment(al, hp + part + 8 * ks);
          mma_tf32(acc[2 + (ks & 1)], al, rh[ks][0], rh[ks][1]);
          mma_tf32(acc[2 + (ks & 1)], ah, rl[ks][0], rl[ks][1]);
        }
        mma_tf32(acc[ks & 1], ah, rh[ks][0], rh[ks][1]);
      }
    }
    float sum[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) sum[i] = (acc[2][i] + acc[3][i]) + (acc[0][i] + acc[1][i]);
    float* rec_s = rec_out + (s & 1) * kRows * p.sr;
    *reinterpret_cast<float2*>(rec_s + g * p.sr) = make_float2(sum[0], sum[1]);
    *reinterpret_cast<float2*>(rec_s + (g + 8) * p.sr) = make_float2(sum[2], sum[3]);
    // Its R·h tile is next written at step s + 2, after this barrier of step s + 1, which every
    // reader below reaches after reading it.
    __syncthreads();

    // 2. The cell of (row, unit).
    const float4 pre_s = pre0;
    pre0 = pre1;
    pre1 = pre2;
    pre2 = load_pre(s + 3);
    const float4 r =
        *reinterpret_cast<const float4*>(rec + ((s & 1) * kRows + row) * p.sr + 4 * jl);
    const float4 raw = make_float4(r.x + pre_s.x, r.y + pre_s.y, r.z + pre_s.z, r.w + pre_s.w);
    CellStep step{};
    if (live) {
      step = cell_step(p.slstm, p.exp_forget, s == 0, raw, state);
      // 3. h_s into the parity buffer of every CTA of the head, rounded for the products. It
      // was last read by the products of step s − 1: this CTA's finished before the barrier
      // above, and a peer's before it stored h_{s-1}, which this CTA waited for.
      const float hi = __uint_as_float(to_tf32(step.h));
      const float lo = __uint_as_float(to_tf32(step.h - hi));
      float* dst_local = hs + (s & 1) * parity + slot;
      if (!clustered) {
        dst_local[0] = hi;
        if (kSplit) dst_local[part] = lo;
      } else if (s + 1 < p.T) {
        const uint32_t dst = shared_address(dst_local);
        const uint32_t bar = bars + 8 * (s & 1);
        // Unrolled to the largest cluster: as a loop of nsplit trips it cost LSTM L 6% more.
#pragma unroll
        for (int q = 0; q < kMaxCluster; ++q) {
          if (q >= p.nsplit) break;
          const uint32_t peer = in_rank(dst, q), peer_bar = in_rank(bar, q);
          store_async(peer, hi, peer_bar);
          if (kSplit) store_async(peer + sizeof(float) * part, lo, peer_bar);
        }
      }
      store_step(out, 0, 0, p.Dh, p.slstm, raw, step, state);
    }
    out.advance(gate_step, D);
    if (!clustered) __syncthreads();  // publishes h_s; its buffer is next written at step s + 2
  }
  // Nothing is stored into a CTA after its last wait (no h of the last step is sent), so each
  // may leave when done.
}

Params make_params(const cpu::NonlinearRecurrence<float>& r) {
  Params p{};
  p.B = int(r.B), p.T = int(r.T), p.H = int(r.H), p.Dh = int(r.Dh);
  p.kgroups = (p.Dh + 8 * kKGroup - 1) / (8 * kKGroup);
  const Spread spread = spread_of(r);
  p.nsplit = spread.nsplit;
  p.units = spread.units;
  p.tiles = spread.tiles;
  p.sh = 8 * kKGroup * p.kgroups + 4;
  p.sr = (4 * p.units + 23) / 32 * 32 + 8;
  p.slstm = r.cell == cpu::NonlinearCell::slstm;
  p.exp_forget = r.exp_forget;
  p.pre = r.pre;
  p.R = r.R;
  p.out = {r.raw, r.gates, r.c, r.n, r.m, r.h};
  return p;
}

size_t smem_bytes(const Params& p, bool split) {
  return sizeof(float) * (kBarrierFloats + size_t(h_buffers_size(p, split)) + 2 * kRows * p.sr);
}

cudaLaunchConfig_t launch_config(const Context& ctx, const Params& p, bool split,
                                 cudaLaunchAttribute* attr) {
  return spread_launch(ctx, {p.nsplit, p.units, p.tiles}, p.H, smem_bytes(p, split), attr);
}

using Kernel = void (*)(Params);

Kernel kernel_for(const Context& ctx) {
  return ctx.precision == Precision::fp32 ? mma_forward_kernel<true> : mma_forward_kernel<false>;
}

}  // namespace

bool pays(const cpu::NonlinearRecurrence<float>& r) { return r.Dh > 64; }

std::string unfit_reason(const Context& ctx, const cpu::NonlinearRecurrence<float>& r) {
  if (r.Dh > kTensorCoreMaxDh)
    return "Dh=" + std::to_string(r.Dh) + " is above the " + std::to_string(kTensorCoreMaxDh) +
           " units whose R columns a warp keeps in registers";
  const Params p = make_params(r);
  cudaLaunchAttribute attr{};
  const cudaLaunchConfig_t cfg = launch_config(ctx, p, ctx.precision == Precision::fp32, &attr);
  return spread_unfit_reason({p.nsplit, p.units, p.tiles}, p.H,
                             reinterpret_cast<const void*>(kernel_for(ctx)), cfg);
}

void forward(const Context& ctx, const cpu::NonlinearRecurrence<float>& r) {
  const Params p = make_params(r);
  const bool split = ctx.precision == Precision::fp32;
  cudaLaunchAttribute attr{};
  const cudaLaunchConfig_t cfg = launch_config(ctx, p, split, &attr);
  SL_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel_for(ctx), p));
  SL_CUDA_LAUNCH_CHECK();
}

}  // namespace statelab::cuda::nonlinear_mma
