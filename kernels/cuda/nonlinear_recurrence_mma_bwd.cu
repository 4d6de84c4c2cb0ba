// LSTM / sLSTM backward with the recurrent product on the tensor cores, twin of
// nonlinear_recurrence_mma.cu for heads of up to 128 units, with the same spread over CTAs. Per
// step, from the last:
//   1. thread (row, unit) in row-major order adds the shares of dh_rec that every CTA of the head
//      sent it, runs the cell's backward and writes dpre_t, also into shared memory as the
//      product's A operand;
//   2. after a CTA barrier, each warp multiplies those 16 rows of the CTA's 4·units gate columns
//      by its tiles of Rᵀ (TF32 fragments in registers for the whole sequence; 3xTF32 in fp32):
//      the CTA's share of dh_rec = dpre_t · Rᵀ for every unit of the head. K is split over the
//      cluster as the FFMA backward splits it, so no CTA needs another's dpre;
//   3. each share goes to the CTA owning its units as st.async stores counted on that CTA's
//      mbarrier, which the step before waits for. A head in one CTA keeps them in its own shared
//      memory behind a second CTA barrier.
// dR is cuBLAS GEMMs afterwards, as after the FFMA backward (nonlinear_recurrence.cu).
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include "kernels/cuda/nonlinear_cell.cuh"
#include "kernels/cuda/nonlinear_mma_common.cuh"
#include "kernels/cuda/nonlinear_recurrence.hpp"
#include "kernels/cuda/nonlinear_recurrence_mma.hpp"
#include "kernels/cuda/tf32_mma.cuh"

namespace statelab::cuda::nonlinear_mma {

namespace {

namespace cg = cooperative_groups;
using namespace internal;  // the spread over CTAs and the cluster exchange

// K: a CTA's 4·units gate columns, k = 4·(unit in the CTA) + gate, in k-steps of 8.
constexpr int kMaxKSteps = 4 * 2 * kMaxWarps / 8;
// N: every unit of the head in tiles of 8, dealt to the warps in turn. A spread has at least
// ⌈Dh / 16⌉ warps per CTA, so ⌈Dh / 8⌉ tiles give each warp at most two.
constexpr int kTilesPerWarp = 2;
constexpr int kBarrierFloats = 4;  // the two mbarriers, one per step parity
static_assert(8 * kTilesPerWarp * kMaxWarps >= kTensorCoreMaxDh, "a CTA's warps cover the head");

struct BwdParams {
  int B, T, H, Dh;
  int nsplit, units, tiles;  // the Spread
  int sa;  // float stride of the A tile's rows, 4·units up to ≡ 4 (mod 32): ldmatrix's 8 rows hit
           // 32 banks
  bool slstm, exp_forget;
  const float* R;  // [H, Dh, 4, Dh]
  CellSaved saved;
  float* dpre;  // [2, B, T, H, 2, Dh]: see PreIndex
};

// Shared memory in floats: the mbarriers, the A tiles [step parity][hi, lo][kRows][sa], then the
// shares of dh_rec received, [step parity][sender][kRows][units].
__host__ __device__ inline int a_tiles_size(const BwdParams& p, bool split) {
  return 2 * (split ? 2 : 1) * kRows * p.sa;
}

// kSplit: 3xTF32, dpre and R as hi + lo and products hi·hi + hi·lo + lo·hi.
template <bool kSplit>
__global__ void __launch_bounds__(kMaxWarps * 32) mma_backward_kernel(const BwdParams p) {
  constexpr int kParts = kSplit ? 2 : 1;
  extern __shared__ __align__(16) float smem[];
  const uint32_t bars = shared_address(smem);  // shares sent at step parity q counted at bars + 8·q
  float* dp = smem + kBarrierFloats;
  float* recv = dp + a_tiles_size(p, kSplit);
  const int part = kRows * p.sa, parity = kParts * part;
  const int share = kRows * p.units;         // one sender's shares for one receiver
  const int recv_parity = p.nsplit * share;  // all senders' shares of one step
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  const int warps = p.units / 2, ksteps = p.units / 2, ntiles = (p.Dh + 7) / 8;
  const int rank = blockIdx.x;  // the cluster spans gridDim.x
  const int hd = blockIdx.y / p.tiles, b0 = (blockIdx.y % p.tiles) * kRows;
  const int j0 = rank * p.units;  // the CTA's first unit within the head
  const int64_t G = 4 * int64_t(p.Dh);

  // The warp's tiles of Rᵀ as B fragments: Rᵀ(k, n) = R[n][k % 4][j0 + k / 4], zero past the
  // head. Where each of its accumulator columns goes: the CTA owning unit n, and n's place there.
  uint32_t rh[kTilesPerWarp][kMaxKSteps][2], rl[kTilesPerWarp][kMaxKSteps][2];
  int send_rank[kTilesPerWarp], send_unit[kTilesPerWarp];
  {
    const float* Rh = p.R + int64_t(hd) * p.Dh * G;
#pragma unroll
    for (int i = 0; i < kTilesPerWarp; ++i) {
      const int nt = warp + i * warps, n = 8 * nt + g;
#pragma unroll
      for (int ks = 0; ks < kMaxKSteps; ++ks)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int k = 8 * ks + t + 4 * e, u = j0 + k / 4;
          const bool inside = nt < ntiles && ks < ksteps && n < p.Dh && u < p.Dh;
          const float r = inside ? Rh[n * G + (k % 4) * p.Dh + u] : 0.f;
          rh[i][ks][e] = to_tf32(r);
          rl[i][ks][e] = to_tf32(r - __uint_as_float(rh[i][ks][e]));
        }
      const int col = 8 * nt + 2 * t;  // and col + 1, in the same CTA
      send_rank[i] = col / p.units;
      send_unit[i] = col - send_rank[i] * p.units;
    }
  }
  // Every sender's shares for this CTA's live rows and units: the bytes a step's mbarrier waits
  // for.
  const int units_live = max(0, min(p.units, p.Dh - j0));
  const uint32_t step_bytes =
      uint32_t(p.nsplit) * min(kRows, p.B - b0) * units_live * uint32_t(sizeof(float));
  const bool clustered = p.nsplit > 1;  // else the shares stay in the CTA, behind a CTA barrier
  if (clustered && threadIdx.x == 0) {
    init_step_barriers(bars);
    if (p.T > 1) mbarrier_expect(bars + 8 * ((p.T - 1) & 1), step_bytes);  // sent at T − 1
  }
  if (clustered)
    cg::this_cluster().sync();  // peers store into recv only once the mbarriers are set
  else
    __syncthreads();

  const CellThread cell = cell_thread(p.units, j0, b0, hd, p.B, p.T, p.H, p.Dh);
  const int row = cell.row, jl = cell.jl;
  const bool live = cell.live;
  const int64_t gate0 = cell.gate0, state0 = cell.state0;
  const int64_t D = int64_t(p.H) * p.Dh, gate_step = p.H * G;
  const PreIndex dpre_at = pre_index(b0 + row, hd, cell.j, p.B, p.T, p.H, p.Dh);
  auto load_step = [&](int s) {
    return load_step_inputs(p.saved, gate0 + s * gate_step, state0 + s * D, D, p.Dh, s == 0,
                            p.slstm, p.exp_forget);
  };
  // Inputs of steps s and s − 1 in flight, as in forward.
  StepInputs in0, in1;
  float c_s = 0.f, n_s = 1.f;
  if (live) {
    in0 = load_step(p.T - 1);
    if (p.T > 1) in1 = load_step(p.T - 2);
    c_s = p.saved.c[state0 + int64_t(p.T - 1) * D];
    if (p.slstm) n_s = p.saved.n[state0 + int64_t(p.T - 1) * D];
  }
  const int a_at = row * p.sa + 4 * jl;  // where this cell's four gate gradients sit
  CellCarry carry;
  for (int s = p.T - 1; s >= 0; --s) {
    // The shares sent at step s + 1. Each mbarrier serves every other step from the last, so
    // the shares sent at step s' complete its phase ⌊(T − 1 − s') / 2⌋. Those of step s − 1 go
    // to the mbarrier whose phase just completed; no peer sends them before this CTA has sent
    // step s's, after the barrier below.
    if (clustered && s + 1 < p.T) mbarrier_wait(bars + 8 * ((s + 1) & 1), ((p.T - 2 - s) >> 1) & 1);
    if (clustered && threadIdx.x == 0 && s - 1 >= 1)
      mbarrier_expect(bars + 8 * ((s - 1) & 1), step_bytes);

    // 1. The cell's backward.
    const StepInputs in = in0;
    in0 = in1;
    if (live && s >= 2) in1 = load_step(s - 2);
    float4 d = make_float4(0.f, 0.f, 0.f, 0.f);
    if (live) {
      float gh = in.dh;
      if (s + 1 < p.T) {
        const float* src = recv + ((s + 1) & 1) * recv_parity + row * p.units + jl;
#pragma unroll
        for (int q = 0; q < kMaxCluster; ++q) {
          if (q >= p.nsplit) break;
          gh += src[q * share];
        }
      }
      d = cell_step_backward(p.slstm, p.exp_forget, gh, in, c_s, n_s, carry);
      store_pre_step(p.dpre, dpre_at, s, p.Dh, d);
      c_s = in.c_prev;
      n_s = in.n_prev;
    }
    // dpre_s into the A tile of parity s, rounded for the products (zeros from threads without a
    // cell); it was last read by the products of step s + 2, finished before the barrier of
    // step s + 1.
    float* a = dp + (s & 1) * parity;
    const float4 hi = make_float4(tf32_hi(d.x), tf32_hi(d.y), tf32_hi(d.z), tf32_hi(d.w));
    *reinterpret_cast<float4*>(a + a_at) = hi;
    if (kSplit)
      *reinterpret_cast<float4*>(a + part + a_at) = make_float4(
          tf32_hi(d.x - hi.x), tf32_hi(d.y - hi.y), tf32_hi(d.z - hi.z), tf32_hi(d.w - hi.w));
    __syncthreads();

    // 2. This CTA's share of dh_rec for step s − 1, and 3. its sending.
    if (s > 0) {
      const float* ap = a + (lane & 15) * p.sa + 4 * (lane >> 4);  // A blocks' rows, as ldmatrix
      const uint32_t bar = bars + 8 * (s & 1);
      float* to = recv + (s & 1) * recv_parity + rank * share;
#pragma unroll
      for (int i = 0; i < kTilesPerWarp; ++i) {
        if (warp + i * warps >= ntiles) break;
        // Even and odd k-steps, and 3xTF32's correction terms, accumulate apart.
        float acc[4][4] = {};
#pragma unroll
        for (int ks = 0; ks < kMaxKSteps; ++ks) {
          if (ks >= ksteps) break;
          uint32_t ah[4];
          load_fragment(ah, ap + 8 * ks);
          if constexpr (kSplit) {
            uint32_t al[4];
            load_fragment(al, ap + part + 8 * ks);
            mma_tf32(acc[2 + (ks & 1)], al, rh[i][ks][0], rh[i][ks][1]);
            mma_tf32(acc[2 + (ks & 1)], ah, rl[i][ks][0], rl[i][ks][1]);
          }
          mma_tf32(acc[ks & 1], ah, rh[i][ks][0], rh[i][ks][1]);
        }
        // Entries 2·h and 2·h + 1: row g + 8·h, columns 8·tile + 2·t and the next, which sit
        // side by side in one receiver (units per CTA are even): one 8-byte store.
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int r = g + 8 * h, col = 8 * (warp + i * warps) + 2 * t;
          if (b0 + r >= p.B || col >= p.Dh) continue;
          float2 v;
          v.x = (acc[2][2 * h] + acc[3][2 * h]) + (acc[0][2 * h] + acc[1][2 * h]);
          v.y = (acc[2][2 * h + 1] + acc[3][2 * h + 1]) + (acc[0][2 * h + 1] + acc[1][2 * h + 1]);
          float* dst = to + r * p.units + send_unit[i];
          const bool pair = col + 1 < p.Dh;
          if (!clustered) {
            dst[0] = v.x;
            if (pair) dst[1] = v.y;
          } else {
            const int peer = send_rank[i];
            const uint32_t at = in_rank(shared_address(dst), peer), peer_bar = in_rank(bar, peer);
            if (pair)
              store_async(at, v, peer_bar);
            else
              store_async(at, v.x, peer_bar);
          }
        }
      }
    }
    // Publishes the shares of a head in one CTA; their buffer is next written at step s − 2.
    if (!clustered) __syncthreads();
  }
  // Nothing is stored into a CTA after its last wait (no share of step 0 is sent), so each may
  // leave when done.
}

BwdParams make_params(const cpu::NonlinearRecurrence<float>& r, const float* dh, float* dpre) {
  BwdParams p{};
  p.B = int(r.B), p.T = int(r.T), p.H = int(r.H), p.Dh = int(r.Dh);
  const Spread spread = spread_of(r);
  p.nsplit = spread.nsplit;
  p.units = spread.units;
  p.tiles = spread.tiles;
  p.sa = (4 * p.units + 31) / 32 * 32 + 4;
  p.slstm = r.cell == cpu::NonlinearCell::slstm;
  p.exp_forget = r.exp_forget;
  p.R = r.R;
  p.saved = {r.raw, r.gates, r.c, r.n, dh};
  p.dpre = dpre;
  return p;
}

size_t smem_bytes(const BwdParams& p, bool split) {
  return sizeof(float) *
         (kBarrierFloats + size_t(a_tiles_size(p, split)) + 2 * size_t(p.nsplit) * kRows * p.units);
}

// The most shared memory a CTA takes (3xTF32 A tiles of 16 units and the shares of 8 senders)
// stays inside the 48 KB a launch gets without opting in.
static_assert(4 * (kBarrierFloats + 2 * 2 * kRows * (8 * kMaxWarps + 8) +
                   2 * kMaxCluster * kRows * 2 * kMaxWarps) <=
                  48 * 1024,
              "no dynamic shared memory opt-in needed");

cudaLaunchConfig_t launch_config(const Context& ctx, const BwdParams& p,
                                 cudaLaunchAttribute* attr) {
  return spread_launch(ctx, {p.nsplit, p.units, p.tiles}, p.H,
                       smem_bytes(p, ctx.precision == Precision::fp32), attr);
}

using Kernel = void (*)(BwdParams);

Kernel kernel_for(const Context& ctx) {
  return ctx.precision == Precision::fp32 ? mma_backward_kernel<true> : mma_backward_kernel<false>;
}

}  // namespace

std::string backward_unfit_reason(const Context& ctx, const cpu::NonlinearRecurrence<float>& r) {
  if (r.Dh > kTensorCoreMaxDh)
    return "Dh=" + std::to_string(r.Dh) + " is above the " + std::to_string(kTensorCoreMaxDh) +
           " units whose Rᵀ tiles a CTA's warps keep in registers";
  const BwdParams p = make_params(r, nullptr, nullptr);
  cudaLaunchAttribute attr{};
  const cudaLaunchConfig_t cfg = launch_config(ctx, p, &attr);
  return spread_unfit_reason({p.nsplit, p.units, p.tiles}, p.H,
                             reinterpret_cast<const void*>(kernel_for(ctx)), cfg);
}

void backward(const Context& ctx, const cpu::NonlinearRecurrence<float>& r, const float* dh,
              float* dpre) {
  const BwdParams p = make_params(r, dh, dpre);
  cudaLaunchAttribute attr{};
  const cudaLaunchConfig_t cfg = launch_config(ctx, p, &attr);
  SL_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel_for(ctx), p));
  SL_CUDA_LAUNCH_CHECK();
}

}  // namespace statelab::cuda::nonlinear_mma
