// What the tensor-core LSTM / sLSTM kernels (nonlinear_recurrence_mma.cu, its _bwd twin) share:
// how a head's units and the batch spread over the CTAs of a cluster, the A-operand layout in
// shared memory, and the st.async / mbarrier exchange between the cluster's CTAs.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "kernels/cpu/nonlinear_recurrence.hpp"
#include "kernels/cuda/context.hpp"
#include "kernels/cuda/tf32_mma.cuh"

namespace statelab::cuda::nonlinear_mma::internal {

constexpr int kRows = 16;  // batch rows per CTA: the mma's M
// Two units per warp. Up to 8 warps per CTA spread a 128-unit head over 8 SMs (a portable
// cluster): a step's instructions are issue-bound on an SM, so fewer warps on each finish sooner.
constexpr int kMaxWarps = 8;
constexpr int kMaxCluster = 8;
constexpr int kMaxGridY = 65535;

// A CTA owns kRows batch rows and `units` consecutive units of one head with all their gates;
// the nsplit CTAs of a head form a cluster along gridDim.x, the (head, batch tile) pairs run
// along gridDim.y.
struct Spread {
  int nsplit;  // CTAs per head
  int units;   // units per CTA, two per warp: a CTA is kRows · units threads
  int tiles;   // batch tiles of kRows rows per head
};

inline Spread spread_of(const cpu::NonlinearRecurrence<float>& r) {
  Spread s;
  const int Dh = int(r.Dh);
  s.nsplit = std::min(kMaxCluster, (Dh + 2 * kMaxWarps - 1) / (2 * kMaxWarps));
  s.units = 2 * ((Dh + 2 * s.nsplit - 1) / (2 * s.nsplit));
  s.tiles = int((r.B + kRows - 1) / kRows);
  return s;
}

// The thread that runs the cell of (row, unit) of its CTA, in row-major order (consecutive
// threads, consecutive units), and where that cell's step 0 sits in the [B, T, H, 4, Dh] gate and
// [B, T, H, Dh] state tensors; a thread without a cell (past B or Dh) points at 0.
struct CellThread {
  int row, jl, j;  // j = j0 + jl, the unit within the head
  bool live;
  int64_t gate0, state0;
};

__device__ inline CellThread cell_thread(int units, int j0, int b0, int hd, int B, int T, int H,
                                         int Dh) {
  CellThread c;
  c.row = threadIdx.x / units;
  c.jl = threadIdx.x - c.row * units;
  c.j = j0 + c.jl;
  const int b = b0 + c.row;
  c.live = b < B && c.j < Dh;
  c.gate0 = c.live ? (int64_t(b) * T * H + hd) * 4 * Dh + c.j : 0;
  c.state0 = c.live ? (int64_t(b) * T * H + hd) * Dh + c.j : 0;
  return c;
}

// A cluster launch of the spread's grid; attr must outlive cfg.
inline cudaLaunchConfig_t spread_launch(const Context& ctx, const Spread& s, int64_t H, size_t smem,
                                        cudaLaunchAttribute* attr) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(unsigned(s.nsplit), unsigned(H * s.tiles), 1);
  cfg.blockDim = dim3(unsigned(kRows * s.units), 1, 1);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = ctx.stream;
  if (s.nsplit > 1) {
    attr->id = cudaLaunchAttributeClusterDimension;
    attr->val.clusterDim.x = unsigned(s.nsplit);
    attr->val.clusterDim.y = 1;
    attr->val.clusterDim.z = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
  }
  return cfg;
}

// Empty when `kernel` launches with cfg on this GPU, else why not: the grid's height, or a
// cluster that cannot be scheduled.
inline std::string spread_unfit_reason(const Spread& s, int64_t H, const void* kernel,
                                       const cudaLaunchConfig_t& cfg) {
  if (H * s.tiles > kMaxGridY)
    return "H·⌈B/16⌉=" + std::to_string(H * s.tiles) + " is above " + std::to_string(kMaxGridY) +
           " CTAs per grid column";
  if (s.nsplit == 1) return "";
  int clusters = 0;
  if (cudaOccupancyMaxActiveClusters(&clusters, kernel, &cfg) != cudaSuccess) {
    (void)cudaGetLastError();  // an unschedulable cluster is a reason, not an error
    clusters = 0;
  }
  if (clusters < 1)
    return "a cluster of " + std::to_string(s.nsplit) + " CTAs of " +
           std::to_string(kRows * s.units) + " threads cannot be scheduled on this GPU";
  return "";
}

// A k-step's A fragment of a row-major tile in shared memory, in one ldmatrix; `rows` is the
// lane's row l % 16 at columns 4·(l / 16) of the k-step.
__device__ __forceinline__ void load_fragment(uint32_t (&a)[4], const float* rows) {
  float f[4];
  load_blocks_x4(f, rows);
#pragma unroll
  for (int i = 0; i < 4; ++i) a[i] = __float_as_uint(f[i]);
}

// x rounded to TF32, as a float: 3xTF32's hi part, whose lo x − hi is then exact.
__device__ __forceinline__ float tf32_hi(float x) { return __uint_as_float(to_tf32(x)); }

// ---------------------------------------------------------------------------------------------
// The exchange between a cluster's CTAs: a sender stores each value into the receiving CTA with
// st.async, which counts the bytes on the receiver's mbarrier of that step parity; a CTA reads
// the step's values once its mbarrier has seen all of them. No cluster barrier per step: a CTA
// waits only for the data it reads, and the release of each store is the receiver's, not a fence
// on all of the sender's outstanding stores.

__device__ __forceinline__ uint32_t shared_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// The address of the same shared-memory location in CTA `rank` of the cluster.
__device__ __forceinline__ uint32_t in_rank(uint32_t address, int rank) {
  uint32_t r;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(r) : "r"(address), "r"(rank));
  return r;
}

// The two mbarriers at bars and bars + 8, one per step parity, each completed by one arrival
// and the bytes it announces; made visible to the cluster's later st.async.
__device__ __forceinline__ void init_step_barriers(uint32_t bars) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(bars) : "memory");
  asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(bars + 8) : "memory");
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}

// The one arrival of a phase, announcing the bytes it completes with.
__device__ __forceinline__ void mbarrier_expect(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes)
               : "memory");
}

__device__ __forceinline__ void mbarrier_wait(uint32_t bar, uint32_t phase) {
  uint32_t done = 0;
  while (!done)
    asm volatile(
        "{\n .reg .pred p;\n"
        " mbarrier.try_wait.parity.acquire.cluster.shared::cta.b64 p, [%1], %2;\n"
        " selp.u32 %0, 1, 0, p;\n}"
        : "=r"(done)
        : "r"(bar), "r"(phase)
        : "memory");
}

__device__ __forceinline__ void store_async(uint32_t address, float v, uint32_t bar) {
  asm volatile(
      "st.async.shared::cluster.mbarrier::complete_tx::bytes.b32 [%0], %1, [%2];" ::"r"(address),
      "r"(__float_as_uint(v)), "r"(bar)
      : "memory");
}

// Two consecutive floats in one store, at an 8-byte aligned address.
__device__ __forceinline__ void store_async(uint32_t address, float2 v, uint32_t bar) {
  asm volatile(
      "st.async.shared::cluster.mbarrier::complete_tx::bytes.v2.b32 [%0], {%1, %2}, [%3];" ::"r"(
          address),
      "r"(__float_as_uint(v.x)), "r"(__float_as_uint(v.y)), "r"(bar)
      : "memory");
}

}  // namespace statelab::cuda::nonlinear_mma::internal
