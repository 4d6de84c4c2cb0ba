// LSTM / sLSTM recurrence on CUDA, twin of kernels/cpu/nonlinear_recurrence.cpp. One persistent
// kernel per direction loops over all T steps with its slice of R and the cell state on chip. A
// CTA owns batch rows × units with all four gates of a unit, so the non-linearity is local; a head
// too wide for one CTA is split over a cluster (h_t exchanged through distributed shared memory)
// or, beyond a cluster's shared memory, over a cooperative grid (through L2). The recurrent
// products are FFMA here; heads of up to 128 units run them on the tensor cores instead
// (nonlinear_recurrence_mma*.cu), and heads of up to 512 units over a cooperative grid
// (nonlinear_recurrence_wide*.cu). dR is cuBLAS GEMMs after the loop (nonlinear_recurrence_dr.cu).
// Checked against the CPU twin by kernels/selftest/nonlinear_recurrence.cpp.
#include "kernels/cuda/nonlinear_recurrence.hpp"

#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/cuda/nonlinear_cell.cuh"
#include "kernels/cuda/nonlinear_recurrence_dr.hpp"
#include "kernels/cuda/nonlinear_recurrence_mma.hpp"

namespace statelab::cuda {

namespace {

namespace cg = cooperative_groups;
using cpu::NonlinearCell;
using cpu::NonlinearRecurrence;

// A warp covers 4 batch rows × 8 units. In the forward product the 8 units read 8 consecutive
// float4 of R (one 128-byte wavefront) and the 4 rows 4 float4 of h_{t-1} with an odd chunk
// stride (one wavefront); backward reads 8 R rows of odd float4 stride and 4 gradient rows the
// same way. Every thread owns exactly one (row, unit) pair of the CTA tile.
constexpr int kWarpRows = 4;
constexpr int kWarpUnits = 8;
static_assert(kWarpRows * kWarpUnits == 32, "a warp is 4 rows x 8 units");
static_assert(kWarpUnits % 2 == 0, "units + 1, the float4 stride of R rows, must be odd");
constexpr int kMaxThreads = 512;
static_assert(kMaxThreads % 32 == 0 && kMaxThreads <= 1024, "whole warps within a CTA");
constexpr int kMaxCluster = 8;  // the portable cluster size
constexpr int kMaxGridY = 65535;
// dh_rec outputs per thread and pass in a split backward: four R rows per gradient load.
constexpr int kSplitRows = 4;

// How the CTAs that share a head see each other's h_t (forward) or dh_rec partials (backward).
enum class Exchange : int { local, cluster, grid };

struct Geometry {
  int B = 0, T = 0, H = 0, Dh = 0;
  int kp = 0;         // Dh rounded up to 4: the forward product reads h_{t-1} a float4 at a time
  int units = 0;      // units per CTA, kWarpUnits · unit warps
  int up = 0;         // units + 1: the odd float4 stride of R rows and gradient rows
  int rows = 0;       // batch rows per CTA, kWarpRows · row_warps
  int row_warps = 0;  // warp w covers the rows of w % row_warps and the units of w / row_warps
  int sh = 0;         // float stride of an h row in shared memory, sh / 4 odd
  int nsplit = 0;     // CTAs sharing one head's units: gridDim.x, the cluster size in cluster mode
  int tiles = 0;      // batch tiles per head
  int groups = 0;     // H · tiles (head, batch tile) pieces of work, gridDim.y of them at a time
  Exchange exchange = Exchange::local;
  bool slstm = false, exp_forget = false;
};

__device__ __forceinline__ float4 fma4(float a, const float4& b, const float4& c) {
  return make_float4(fmaf(a, b.x, c.x), fmaf(a, b.y, c.y), fmaf(a, b.z, c.z), fmaf(a, b.w, c.w));
}

__device__ __forceinline__ float4 zero4() { return make_float4(0.f, 0.f, 0.f, 0.f); }

// After it every CTA of a head group sees what the others wrote before it. A grid barrier is
// also a CTA barrier, and so is a cluster barrier.
__device__ __forceinline__ void group_barrier(Exchange e) {
  if (e == Exchange::cluster)
    cg::this_cluster().sync();
  else if (e == Exchange::grid)
    cg::this_grid().sync();
  else
    __syncthreads();
}

// Rs[k][u] = (R[k][i][j0+u], R[k][f][j0+u], R[k][z][j0+u], R[k][o][j0+u]) for k < kp, u < up;
// zero outside the head, so padded k and units add nothing to either product.
__device__ void load_r_slice(float4* Rs, const float* R, const Geometry& g, int j0) {
  const int64_t G = 4 * int64_t(g.Dh);
  for (int idx = threadIdx.x; idx < g.kp * g.up; idx += blockDim.x) {
    const int k = idx / g.up, u = idx - k * g.up, j = j0 + u;
    float4 v = zero4();
    if (k < g.Dh && u < g.units && j < g.Dh) {
      const float* r = R + k * G + j;
      v = make_float4(r[0], r[g.Dh], r[2 * g.Dh], r[3 * g.Dh]);
    }
    Rs[idx] = v;
  }
}

// The pieces of work a CTA loops over: pass p handles group p·gridDim.y + blockIdx.y. Every CTA
// makes the same number of passes (the grid barrier needs all of them), idle when past the end.
struct Work {
  bool live = false;  // this pass has a group
  int hd = 0, b0 = 0;
};

__device__ __forceinline__ Work work_of(const Geometry& g, int pass) {
  const int group = pass * int(gridDim.y) + int(blockIdx.y);
  Work w;
  if (group < g.groups) w = {true, group / g.tiles, (group % g.tiles) * g.rows};
  return w;
}

// ---------------------------------------------------------------------------------------------
// Forward

struct FwdParams {
  Geometry g;
  const float* pre;  // [2, B, T, H, 2, Dh]: see PreIndex
  const float* R;    // [H, Dh, 4, Dh]
  CellOutputs out;
};

// Σ_k h_{t-1}[k] · R[k][gate][unit] for the four gates of one (row, unit): R column from shared
// memory (stride up float4 per k), h row a float4 per four k. Two accumulator sets halve the
// dependent FMA chain.
__device__ __forceinline__ float4 recurrent_gates(const float4* Rcol, const float* hrow, int kp,
                                                  int up) {
  const float4* h4 = reinterpret_cast<const float4*>(hrow);
  float4 a = zero4(), b = zero4();
#pragma unroll 2
  for (int k4 = 0; k4 < kp / 4; ++k4) {
    const float4 x = h4[k4];
    const float4* r = Rcol + 4 * k4 * up;
    a = fma4(x.x, r[0], a);
    b = fma4(x.y, r[up], b);
    a = fma4(x.z, r[2 * up], a);
    b = fma4(x.w, r[3 * up], b);
  }
  return make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);
}

// Grid mode: h_t of this CTA's rows, all units, from global memory (L2: other SMs wrote it) into
// the shared h buffer. Rows past B keep what they hold; their products are never stored.
__device__ void gather_h(float* hbuf, const FwdParams& p, const Work& w, int t) {
  const Geometry& g = p.g;
  const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  const int64_t D = int64_t(g.H) * g.Dh;
  for (int r = threadIdx.x >> 5; r < g.rows; r += warps) {
    const int b = w.b0 + r;
    if (b >= g.B) break;
    const float* src = p.out.h + (int64_t(b) * g.T + t) * D + int64_t(w.hd) * g.Dh;
    for (int k = lane; k < g.Dh; k += 32) hbuf[r * g.sh + k] = __ldcg(src + k);
  }
}

// A minimum of one CTA per SM: without it ptxas held this kernel to 64 registers, and it
// spilled once pre came in two halves (sLSTM L 16.6 ms; 95 registers and 14.2 ms with it).
__global__ void __launch_bounds__(kMaxThreads, 1)
    nonlinear_recurrence_fwd_kernel(const FwdParams p) {
  const Geometry& g = p.g;
  extern __shared__ float4 smem4[];
  float4* Rs = smem4;                                         // [kp][up]
  float* hs = reinterpret_cast<float*>(smem4 + g.kp * g.up);  // [2][rows][sh], by step parity
  const int hbuf = g.rows * g.sh;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int bl = (warp % g.row_warps) * kWarpRows + lane % kWarpRows;
  const int ul = (warp / g.row_warps) * kWarpUnits + lane / kWarpRows;
  const int rank = blockIdx.x;
  const int j = rank * g.units + ul;  // unit within the head
  const int64_t G = 4 * int64_t(g.Dh), D = int64_t(g.H) * g.Dh, gate_step = g.H * G;

  // Zero columns past Dh stay zero (nobody owns those units), so the padded k of the product
  // read zeros. Cluster peers push into these buffers: they must exist and be zero first.
  for (int i = threadIdx.x; i < 2 * hbuf; i += blockDim.x) hs[i] = 0.f;
  if (g.exchange == Exchange::cluster)
    cg::this_cluster().sync();
  else
    __syncthreads();

  const int passes = (g.groups + int(gridDim.y) - 1) / int(gridDim.y);
  for (int pass = 0; pass < passes; ++pass) {
    const Work w = work_of(g, pass);
    if (w.live) load_r_slice(Rs, p.R + int64_t(w.hd) * g.Dh * G, g, rank * g.units);
    __syncthreads();
    const int b = w.b0 + bl;
    const bool live = w.live && b < g.B && j < g.Dh;
    const int64_t gate0 = (int64_t(b) * g.T * g.H + w.hd) * G + j;  // (b, t = 0, hd, i, j)
    const int64_t state0 = (int64_t(b) * g.T * g.H + w.hd) * g.Dh + j;
    const PreIndex pre_at = pre_index(b, w.hd, j, g.B, g.T, g.H, g.Dh);
    auto load_pre = [&](int t) { return load_pre_step(p.pre, pre_at, t, g.Dh); };
    // pre of steps t and t + 1 in flight: a step is shorter than a DRAM round trip.
    float4 pre0 = zero4(), pre1 = zero4();
    if (live) {
      pre0 = load_pre(0);
      if (g.T > 1) pre1 = load_pre(1);
    }
    CellState state;
    for (int t = 0; t < g.T; ++t) {
      const float4 pre_t = pre0;
      pre0 = pre1;
      if (live && t + 2 < g.T) pre1 = load_pre(t + 2);
      if (live) {
        float4 acc = zero4();
        if (t > 0)
          acc = recurrent_gates(Rs + ul, hs + ((t - 1) & 1) * hbuf + bl * g.sh, g.kp, g.up);
        const float4 raw =
            make_float4(acc.x + pre_t.x, acc.y + pre_t.y, acc.z + pre_t.z, acc.w + pre_t.w);
        const CellStep step = cell_step(g.slstm, g.exp_forget, t == 0, raw, state);
        store_step(p.out, gate0 + t * gate_step, state0 + t * D, g.Dh, g.slstm, raw, step, state);
        // h_t into the other parity buffer of every CTA of the head (grid mode gathers it from
        // global memory after the barrier instead).
        float* dst = hs + (t & 1) * hbuf + bl * g.sh + j;
        if (g.exchange == Exchange::local) {
          *dst = step.h;
        } else if (g.exchange == Exchange::cluster) {
          cg::cluster_group cluster = cg::this_cluster();
          for (int r = 0; r < g.nsplit; ++r) *cluster.map_shared_rank(dst, r) = step.h;
        }
      }
      // Buffer t & 1 was last read by the product of step t − 1, which every thread of the group
      // finished before the previous barrier; this one publishes it for step t + 1.
      group_barrier(g.exchange);
      if (g.exchange == Exchange::grid && t + 1 < g.T) {
        if (w.live) gather_h(hs + (t & 1) * hbuf, p, w, t);
        __syncthreads();
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Backward

struct BwdParams {
  Geometry g;
  const float* R;  // [H, Dh, 4, Dh]
  CellSaved saved;
  float* dpre;  // [2, B, T, H, 2, Dh]: see PreIndex
  // Grid mode: dh_rec partials, [gridDim.y][receiver][parity][sender][rows][units] with nsplit
  // receivers and senders and 2 step parities
  float* exchange;
};

// Per step: (1) every thread turns dh_t + dh_rec into dpre_t of its (row, unit) and parks it in
// shared memory; (2) after a CTA barrier, thread (row, c) forms the dh_rec partials of units
// c + i·units, i < nsplit, from this CTA's gate columns and sends partial i to CTA i (its own in a
// register, the others through shared memory of the cluster or the global exchange); (3) a group
// barrier, then the next step sums them. KR = partial outputs per pass of (2).
template <int KR>
__global__ void __launch_bounds__(kMaxThreads) nonlinear_recurrence_bwd_kernel(const BwdParams p) {
  static_assert(KR >= 1 && KR <= 8, "a few R rows per gradient load");
  const Geometry& g = p.g;
  extern __shared__ float4 smem4[];
  float4* Rs = smem4;              // [kp][up]
  float4* dps = Rs + g.kp * g.up;  // [2][rows][up]: dpre_t gates of this CTA's units
  // cluster mode: dh_rec partials from each sender, [2][nsplit][rows][units]
  float* recv = reinterpret_cast<float*>(dps + 2 * g.rows * g.up);
  const int dbuf = g.rows * g.up;
  const int slot = g.rows * g.units;  // one sender's partials for one receiver
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int bl = (warp % g.row_warps) * kWarpRows + lane % kWarpRows;
  const int ul = (warp / g.row_warps) * kWarpUnits + lane / kWarpRows;
  const int rank = blockIdx.x;
  const int j = rank * g.units + ul;
  const int64_t G = 4 * int64_t(g.Dh), D = int64_t(g.H) * g.Dh, gate_step = g.H * G;

  // Gradient columns of units past Dh stay zero, as do their R columns.
  for (int i = threadIdx.x; i < 2 * dbuf; i += blockDim.x) dps[i] = zero4();
  if (g.exchange == Exchange::cluster)
    cg::this_cluster().sync();  // peers write into recv only after this
  else
    __syncthreads();

  const int passes = (g.groups + int(gridDim.y) - 1) / int(gridDim.y);
  for (int pass = 0; pass < passes; ++pass) {
    const Work w = work_of(g, pass);
    if (w.live) load_r_slice(Rs, p.R + int64_t(w.hd) * g.Dh * G, g, rank * g.units);
    __syncthreads();
    const int b = w.b0 + bl;
    const bool row_live = w.live && b < g.B;
    const bool live = row_live && j < g.Dh;
    const int64_t gate0 = (int64_t(b) * g.T * g.H + w.hd) * G + j;
    const int64_t state0 = (int64_t(b) * g.T * g.H + w.hd) * g.Dh + j;
    const PreIndex dpre_at = pre_index(b, w.hd, j, g.B, g.T, g.H, g.Dh);
    auto load_step = [&](int t) {
      return load_step_inputs(p.saved, gate0 + t * gate_step, state0 + t * D, D, g.Dh, t == 0,
                              g.slstm, g.exp_forget);
    };
    // Inputs of steps t and t − 1 in flight, as in forward.
    StepInputs in0, in1;
    float c_t = 0.f, n_t = 1.f;
    if (live) {
      in0 = load_step(g.T - 1);
      if (g.T > 1) in1 = load_step(g.T - 2);
      c_t = p.saved.c[state0 + int64_t(g.T - 1) * D];
      if (g.slstm) n_t = p.saved.n[state0 + int64_t(g.T - 1) * D];
    }
    CellCarry carry;
    float rec_self = 0.f;  // this CTA's own share of dh_rec for (row, unit), from the last step
    for (int t = g.T - 1; t >= 0; --t) {
      const StepInputs in = in0;
      in0 = in1;
      if (live && t >= 2) in1 = load_step(t - 2);
      float4 d = zero4();
      if (live) {
        float gh = in.dh + rec_self;
        if (t + 1 < g.T && g.exchange != Exchange::local) {
          const int par = (t + 1) & 1;
          if (g.exchange == Exchange::cluster) {
            const float* src = recv + par * g.nsplit * slot + bl * g.units + ul;
            for (int r = 0; r < g.nsplit; ++r)
              if (r != rank) gh += src[r * slot];
          } else {
            const float* src =
                p.exchange + ((int64_t(blockIdx.y) * g.nsplit + rank) * 2 + par) * g.nsplit * slot +
                bl * g.units + ul;
            for (int r = 0; r < g.nsplit; ++r)
              if (r != rank) gh += __ldcg(src + int64_t(r) * slot);
          }
        }
        d = cell_step_backward(g.slstm, g.exp_forget, gh, in, c_t, n_t, carry);
        store_pre_step(p.dpre, dpre_at, t, g.Dh, d);
        c_t = in.c_prev;
        n_t = in.n_prev;
      }
      // Parity t & 1 was last read by the product of step t + 2, before the barrier of step t + 1.
      dps[(t & 1) * dbuf + bl * g.up + ul] = d;
      __syncthreads();
      if (row_live && t > 0) {
        const float4* drow = dps + (t & 1) * dbuf + bl * g.up;
        for (int i0 = 0; i0 < g.nsplit; i0 += KR) {
          int rrow[KR];
          float4 acc[KR];
#pragma unroll
          for (int q = 0; q < KR; ++q) {
            const int k = ul + (i0 + q) * g.units;
            rrow[q] = (i0 + q < g.nsplit && k < g.Dh) ? k * g.up : 0;
            acc[q] = zero4();
          }
          // Four component sums per output: four independent FMA chains.
#pragma unroll 2
          for (int u = 0; u < g.units; ++u) {
            const float4 dv = drow[u];
#pragma unroll
            for (int q = 0; q < KR; ++q) {
              const float4 r = Rs[rrow[q] + u];
              acc[q].x = fmaf(dv.x, r.x, acc[q].x);
              acc[q].y = fmaf(dv.y, r.y, acc[q].y);
              acc[q].z = fmaf(dv.z, r.z, acc[q].z);
              acc[q].w = fmaf(dv.w, r.w, acc[q].w);
            }
          }
#pragma unroll
          for (int q = 0; q < KR; ++q) {
            const int i = i0 + q;
            if (i >= g.nsplit || ul + i * g.units >= g.Dh) continue;
            const float v = (acc[q].x + acc[q].y) + (acc[q].z + acc[q].w);
            const int at = ((t & 1) * g.nsplit + rank) * slot + bl * g.units + ul;
            if (i == rank)
              rec_self = v;
            else if (g.exchange == Exchange::cluster)
              *cg::this_cluster().map_shared_rank(recv + at, i) = v;
            else
              p.exchange[((int64_t(blockIdx.y) * g.nsplit + i) * 2 + (t & 1)) * g.nsplit * slot +
                         rank * slot + bl * g.units + ul] = v;
          }
        }
      }
      // Partials of parity t & 1 are complete for step t − 1; at t = 0 this keeps a fast CTA's
      // next pass from writing partials its peers are still reading.
      if (g.exchange != Exchange::local) group_barrier(g.exchange);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Host: choosing a tiling

enum class Direction { forward, backward };

int ceil_div(int64_t a, int64_t b) { return int((a + b - 1) / b); }

struct Plan {
  Geometry g;
  int threads = 0;
  size_t smem = 0;
  int resident = 0;  // gridDim.y: groups in flight; the kernel loops over the rest
  double cost = 0;   // estimated cycles, to rank candidates
};

Geometry make_geometry(const NonlinearRecurrence<float>& p, int unit_warps, int row_warps,
                       Exchange e) {
  Geometry g;
  g.B = int(p.B), g.T = int(p.T), g.H = int(p.H), g.Dh = int(p.Dh);
  g.kp = (g.Dh + 3) / 4 * 4;
  g.units = kWarpUnits * unit_warps;
  g.up = g.units + 1;
  g.rows = kWarpRows * row_warps;
  g.row_warps = row_warps;
  g.sh = (g.kp / 4) % 2 ? g.kp : g.kp + 4;
  g.nsplit = ceil_div(g.Dh, g.units);
  g.tiles = ceil_div(g.B, g.rows);
  g.groups = g.H * g.tiles;
  g.exchange = e;
  g.slstm = p.cell == NonlinearCell::slstm;
  g.exp_forget = p.exp_forget;
  return g;
}

size_t smem_bytes(Direction dir, const Geometry& g) {
  const size_t r = sizeof(float4) * size_t(g.kp) * g.up;
  if (dir == Direction::forward) return r + sizeof(float) * 2 * size_t(g.rows) * g.sh;
  size_t s = r + sizeof(float4) * 2 * size_t(g.rows) * g.up;
  if (g.exchange == Exchange::cluster) s += sizeof(float) * 2 * size_t(g.nsplit) * g.rows * g.units;
  return s;
}

// What the backward kernel's grid exchange may use of work (it bounds the groups in flight).
int64_t exchange_bound(const NonlinearRecurrence<float>& p) {
  return (p.B * p.T + 3 * p.B) * p.H * p.Dh + 4 * p.H * p.Dh * p.Dh;
}

// The scratch the backward may use, as promised by nonlinear_recurrence_work_size.
int64_t work_bound(const NonlinearRecurrence<float>& p) {
  return std::max(exchange_bound(p), nonlinear_dr::work_size(p));
}

int64_t exchange_per_group(const Geometry& g) {
  return int64_t(2) * g.nsplit * g.nsplit * g.rows * g.units;
}

struct Kernel {
  const void* fn = nullptr;
  int regs = 0;
};

Kernel prepare(const Context& ctx, const void* fn) {
  SL_CUDA_CHECK(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     int(ctx.max_shared_per_block)));
  cudaFuncAttributes a{};
  SL_CUDA_CHECK(cudaFuncGetAttributes(&a, fn));
  return {fn, a.numRegs};
}

const void* bwd_kernel_for(const Geometry& g) {
  if (g.nsplit >= kSplitRows)
    return reinterpret_cast<const void*>(&nonlinear_recurrence_bwd_kernel<kSplitRows>);
  return reinterpret_cast<const void*>(&nonlinear_recurrence_bwd_kernel<1>);
}

cudaLaunchConfig_t launch_config(const Context& ctx, const Plan& pl, cudaLaunchAttribute* attr) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(unsigned(pl.g.nsplit), unsigned(pl.resident), 1);
  cfg.blockDim = dim3(unsigned(pl.threads), 1, 1);
  cfg.dynamicSmemBytes = pl.smem;
  cfg.stream = ctx.stream;
  if (pl.g.exchange == Exchange::cluster) {
    attr->id = cudaLaunchAttributeClusterDimension;
    attr->val.clusterDim.x = unsigned(pl.g.nsplit);
    attr->val.clusterDim.y = 1;
    attr->val.clusterDim.z = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
  } else if (pl.g.exchange == Exchange::grid) {
    attr->id = cudaLaunchAttributeCooperative;
    attr->val.cooperative = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
  }
  return cfg;
}

// A rough per-sequence cycle count, only to rank tilings: each repetition of the time loop costs
// T × (barrier + exchange + product), the product bounded by a thread's own FMA chain (4·kp FMAs
// with their shared loads) or by the SM's FMA rate over all threads resident on it.
double estimate_cycles(Direction dir, const Geometry& g, int threads, int occupancy, int resident,
                       int sms) {
  constexpr double kCyclesPerOwnFma = 1.5;  // a lone warp issues its FMAs and shared loads
  constexpr double kFmaPerSmCycle = 96;     // of 128 lanes, a quarter lost to shared-load issue
  constexpr double kL2RoundTrip = 600;
  const double slots = double(occupancy) * sms;
  const double ctas = double(g.nsplit) * (g.exchange == Exchange::grid ? resident : g.groups);
  const double reps = g.exchange == Exchange::grid ? std::ceil(double(g.groups) / resident)
                                                   : std::ceil(ctas / slots);
  const double per_sm = std::min<double>(occupancy, std::ceil(std::min(ctas, slots) / sms));
  const double fma = 4.0 * g.kp;
  const double product = std::max(kCyclesPerOwnFma * fma, per_sm * threads * fma / kFmaPerSmCycle);
  double sync = 100;                                                // a CTA barrier
  if (g.exchange == Exchange::cluster) sync = 600 + 50 * g.nsplit;  // + nsplit DSMEM stores
  if (g.exchange == Exchange::grid) {
    // one arrival per CTA on one counter, then the gather of h_t or of the partials from L2
    sync = 2000 + 8 * ctas + kL2RoundTrip +
           (dir == Direction::forward ? 4.0 * g.rows * g.Dh / threads : 8.0 * g.nsplit);
  }
  return reps * g.T * (sync + product);
}

// The tiling for one direction: every (unit tile, row tile, exchange) that fits shared memory,
// ranked by estimated cycles; the best that the occupancy calculator confirms (all CTAs of a
// cluster on one GPC, all CTAs of a cooperative grid resident at once) is taken.
Plan plan_recurrence(const Context& ctx, const NonlinearRecurrence<float>& p, Direction dir) {
  int smem_per_sm = 0, reserved = 0;
  SL_CUDA_CHECK(cudaDeviceGetAttribute(&smem_per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor,
                                       ctx.device));
  SL_CUDA_CHECK(
      cudaDeviceGetAttribute(&reserved, cudaDevAttrReservedSharedMemoryPerBlock, ctx.device));
  const int sms = std::max(ctx.sm_count, 1);
  std::vector<Kernel> kernels;
  auto kernel_of = [&](const void* fn) {
    for (const Kernel& k : kernels)
      if (k.fn == fn) return k;
    kernels.push_back(prepare(ctx, fn));
    return kernels.back();
  };
  auto fn_of = [&](const Geometry& g) {
    return dir == Direction::forward
               ? reinterpret_cast<const void*>(&nonlinear_recurrence_fwd_kernel)
               : bwd_kernel_for(g);
  };

  std::vector<Plan> plans;
  const int max_unit_warps = std::min(kMaxThreads / 32, ceil_div(p.Dh, kWarpUnits));
  for (int uw = 1; uw <= max_unit_warps; ++uw) {
    const int nsplit = ceil_div(p.Dh, kWarpUnits * uw);
    // a narrower tile with the same split pads less
    if (uw > 1 && ceil_div(p.Dh, kWarpUnits * (uw - 1)) == nsplit) continue;
    for (Exchange e : {Exchange::local, Exchange::cluster, Exchange::grid}) {
      if ((e == Exchange::local) != (nsplit == 1)) continue;
      if (e == Exchange::cluster && nsplit > kMaxCluster) continue;
      for (int rw = 1; 32 * uw * rw <= kMaxThreads; rw *= 2) {
        if (rw > 1 && kWarpRows * (rw / 2) >= p.B) break;  // the narrower tile already holds B
        Plan pl;
        pl.g = make_geometry(p, uw, rw, e);
        pl.threads = 32 * uw * rw;
        pl.smem = smem_bytes(dir, pl.g);
        if (pl.smem > ctx.max_shared_per_block) break;  // wider row tiles only need more
        const Kernel k = kernel_of(fn_of(pl.g));
        int occupancy = std::min(2048 / pl.threads, 32);
        if (k.regs > 0)
          occupancy = std::min(occupancy, 65536 / (((k.regs + 7) / 8 * 8) * pl.threads));
        occupancy = std::min(occupancy, int(size_t(smem_per_sm) / (pl.smem + size_t(reserved))));
        if (occupancy < 1) continue;
        pl.resident = std::min(pl.g.groups, kMaxGridY);
        if (e == Exchange::grid) {
          pl.resident = std::min(pl.resident, occupancy * sms / nsplit);
          if (dir == Direction::backward)
            pl.resident =
                int(std::min<int64_t>(pl.resident, exchange_bound(p) / exchange_per_group(pl.g)));
          if (pl.resident < 1) continue;
        }
        pl.cost = estimate_cycles(dir, pl.g, pl.threads, occupancy, pl.resident, sms);
        plans.push_back(pl);
      }
    }
  }
  // Equal estimates go to the fewer CTAs per head, then the smaller CTA: less exchange.
  std::sort(plans.begin(), plans.end(), [](const Plan& a, const Plan& b) {
    if (a.cost != b.cost) return a.cost < b.cost;
    if (a.g.nsplit != b.g.nsplit) return a.g.nsplit < b.g.nsplit;
    if (a.threads != b.threads) return a.threads < b.threads;
    return a.g.exchange < b.g.exchange;
  });
  for (Plan& pl : plans) {
    const void* fn = fn_of(pl.g);
    int occupancy = 0;
    SL_CUDA_CHECK(
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occupancy, fn, pl.threads, pl.smem));
    if (occupancy < 1) continue;
    if (pl.g.exchange == Exchange::grid) {
      pl.resident = std::min(pl.resident, occupancy * sms / pl.g.nsplit);
      if (pl.resident < 1) continue;
    }
    if (pl.g.exchange == Exchange::cluster) {
      cudaLaunchAttribute attr{};
      const cudaLaunchConfig_t cfg = launch_config(ctx, pl, &attr);
      int clusters = 0;
      if (cudaOccupancyMaxActiveClusters(&clusters, fn, &cfg) != cudaSuccess) {
        (void)cudaGetLastError();  // an unschedulable cluster is a reason to try the next plan
        continue;
      }
      if (clusters < 1) continue;
    }
    return pl;
  }
  const Geometry narrowest = make_geometry(p, 1, 1, Exchange::grid);
  throw ShapeError("nonlinear recurrence H=" + std::to_string(p.H) + " Dh=" + std::to_string(p.Dh) +
                   " B=" + std::to_string(p.B) +
                   ": no tiling keeps R on chip; the narrowest CTA (" + std::to_string(kWarpUnits) +
                   " units) needs " + std::to_string(smem_bytes(dir, narrowest)) +
                   " bytes of shared memory (" + std::to_string(ctx.max_shared_per_block) +
                   " allowed) and a head needs " + std::to_string(narrowest.nsplit) +
                   " of them resident at once on " + std::to_string(sms) + " SMs");
}

// Shapes and pointers; false when there is nothing to compute (an empty dimension). Backward
// reads the saved tensors; a forward saves all or (an evaluation) none of them.
bool check_shapes(const NonlinearRecurrence<float>& p, const char* who, bool backward) {
  const std::string w = who;
  SL_CHECK_SHAPE(p.B >= 0 && p.T >= 0 && p.H >= 0 && p.Dh >= 0,
                 w + ": negative size B=" + std::to_string(p.B) + " T=" + std::to_string(p.T) +
                     " H=" + std::to_string(p.H) + " Dh=" + std::to_string(p.Dh));
  if (p.B == 0 || p.T == 0 || p.H == 0 || p.Dh == 0) return false;
  SL_CHECK_SHAPE(p.B * p.T <= INT_MAX && p.B * p.H <= INT_MAX && 4 * p.H * p.Dh <= INT_MAX,
                 w + ": B·T, B·H and 4·H·Dh must fit in int");
  SL_CHECK_SHAPE(p.pre && p.R && p.h, w + ": pre, R and h are required");
  cpu::nonlinear_recurrence_check_saved(p, w, backward);
  return true;
}

template <typename Params>
void launch(const Context& ctx, void (*kernel)(Params), const Plan& pl, const Params& params) {
  cudaLaunchAttribute attr{};
  const cudaLaunchConfig_t cfg = launch_config(ctx, pl, &attr);
  SL_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, params));
  SL_CUDA_LAUNCH_CHECK();
}

// The FFMA backward's loop over time: dpre from dh and the saved tensors.
void fma_backward(const Context& ctx, const NonlinearRecurrence<float>& p, const float* dh,
                  float* dpre, float* work) {
  const Plan pl = plan_recurrence(ctx, p, Direction::backward);
  const BwdParams params{pl.g, p.R, {p.raw, p.gates, p.c, p.n, dh}, dpre, work};
  if (pl.g.nsplit >= kSplitRows)
    launch(ctx, nonlinear_recurrence_bwd_kernel<kSplitRows>, pl, params);
  else
    launch(ctx, nonlinear_recurrence_bwd_kernel<1>, pl, params);
}

}  // namespace

void nonlinear_recurrence_fwd(const Context& ctx, const NonlinearRecurrence<float>& p,
                              NonlinearKernel kernel) {
  if (!check_shapes(p, "nonlinear_recurrence_fwd", false)) return;
  if (kernel == NonlinearKernel::tensor_core ||
      (kernel == NonlinearKernel::automatic && nonlinear_mma::pays(p))) {
    const bool wide = p.Dh > kTensorCoreMaxDh;
    const std::string unfit =
        wide ? nonlinear_mma::wide_unfit_reason(ctx, p) : nonlinear_mma::unfit_reason(ctx, p);
    if (unfit.empty()) {
      if (wide)
        nonlinear_mma::wide_forward(ctx, p);
      else
        nonlinear_mma::forward(ctx, p);
      return;
    }
    SL_CHECK_SHAPE(kernel == NonlinearKernel::automatic,
                   "nonlinear_recurrence_fwd: the tensor-core kernel does not fit: " + unfit);
  }
  const Plan pl = plan_recurrence(ctx, p, Direction::forward);
  const FwdParams params{pl.g, p.pre, p.R, {p.raw, p.gates, p.c, p.n, p.m, p.h}};
  launch(ctx, nonlinear_recurrence_fwd_kernel, pl, params);
}

int64_t nonlinear_recurrence_work_size(const NonlinearRecurrence<float>& p) {
  return work_bound(p);
}

void nonlinear_recurrence_bwd(const Context& ctx, const NonlinearRecurrence<float>& p,
                              const float* dh, float* dpre, float* dR, float* work,
                              NonlinearKernel kernel) {
  if (!check_shapes(p, "nonlinear_recurrence_bwd", true)) return;
  SL_CHECK_SHAPE(dh && dpre && dR && work,
                 "nonlinear_recurrence_bwd: dh, dpre, dR and work are required");
  SL_CHECK_SHAPE(p.raw || p.cell == NonlinearCell::lstm || p.exp_forget,
                 "nonlinear_recurrence_bwd: the sLSTM with a sigmoid forget gate needs the saved "
                 "pre-activations raw");
  bool on_tensor_cores = false;
  const bool wide = p.Dh > kTensorCoreMaxDh;
  if (kernel == NonlinearKernel::tensor_core ||
      (kernel == NonlinearKernel::automatic && nonlinear_mma::pays(p))) {
    const std::string unfit =
        wide ? nonlinear_mma::wide_backward_unfit_reason(ctx, p, exchange_bound(p))
             : nonlinear_mma::backward_unfit_reason(ctx, p);
    SL_CHECK_SHAPE(unfit.empty() || kernel == NonlinearKernel::automatic,
                   "nonlinear_recurrence_bwd: the tensor-core kernel does not fit: " + unfit);
    on_tensor_cores = unfit.empty();
  }
  if (on_tensor_cores && wide)
    nonlinear_mma::wide_backward(ctx, p, dh, dpre, work, exchange_bound(p));
  else if (on_tensor_cores)
    nonlinear_mma::backward(ctx, p, dh, dpre);
  else
    fma_backward(ctx, p, dh, dpre, work);
  // With one step no h_{t-1} exists: dR gains nothing.
  if (p.T > 1) nonlinear_dr::accumulate(ctx, p, dpre, dR, work);
}

}  // namespace statelab::cuda
