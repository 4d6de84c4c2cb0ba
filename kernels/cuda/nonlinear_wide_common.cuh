// What the wide-head tensor-core LSTM / sLSTM kernels (nonlinear_recurrence_wide.cu, its _bwd
// twin) share: a CTA of 8 warps owns 16 batch rows and 16 units of a head (64 gate columns, each
// warp's R fragments in registers for the whole sequence), the nsplit CTAs of a head and batch
// tile exchange through L2 behind a grid barrier per step, and (head, batch tile) groups beyond
// what is resident at once run in passes.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "kernels/cpu/nonlinear_recurrence.hpp"
#include "kernels/cuda/context.hpp"
#include "kernels/cuda/nonlinear_mma_common.cuh"
#include "kernels/cuda/nonlinear_recurrence_mma.hpp"

namespace statelab::cuda::nonlinear_mma::internal {

constexpr int kWideUnits = 16;  // units per CTA: 64 gate columns, 8 n-tiles of 8
constexpr int kWideWarps = 8;
constexpr int kWideThreads = 32 * kWideWarps;  // one (row, unit) cell per thread
// k-steps of 8 per warp and n-tiles: 8 × 8 B fragments of 2 registers, 128 per thread.
constexpr int kWideKSteps = 8;
constexpr int kWideTiles = 8;
static_assert(kRows * kWideUnits == kWideThreads, "a thread per cell");
static_assert(kWideWarps * kWideKSteps * 8 == kWideMaxDh, "the forward's K covers the widest head");
static_assert(kWideWarps * kWideTiles * 8 == kWideMaxDh, "the backward's N covers the widest head");

// How the grid covers the work: gridDim = (nsplit, resident); pass q runs group q·resident + y.
struct WideGrid {
  int nsplit = 0, tiles = 0, groups = 0, resident = 0, passes = 0;
};

// The (head, batch tile) group of this CTA in pass q; past the end the CTA idles through the
// pass's grid barriers.
struct WideWork {
  bool live = false;
  int hd = 0, b0 = 0;
};

__device__ __forceinline__ WideWork wide_work(const WideGrid& w, int pass) {
  const int group = pass * w.resident + int(blockIdx.y);
  WideWork out;
  if (group < w.groups) out = {true, group / w.tiles, (group % w.tiles) * kRows};
  return out;
}

// The grid for r, with `per_group` floats of exchange each in work_floats (0: none needed), or
// why these kernels do not run it: empty reason means fits.
inline std::string wide_grid(const Context& ctx, const cpu::NonlinearRecurrence<float>& r,
                             const void* kernel, size_t smem, int64_t per_group,
                             int64_t work_floats, WideGrid& out) {
  if (r.Dh > kWideMaxDh)
    return "Dh=" + std::to_string(r.Dh) + " is above the " + std::to_string(kWideMaxDh) +
           " units whose R a CTA's warps keep in registers";
  if (ctx.precision == Precision::fp32)
    return "fp32 precision needs 3xTF32, and a second set of R fragments does not fit in "
           "registers beside the first";
  int cooperative = 0;
  SL_CUDA_CHECK(cudaDeviceGetAttribute(&cooperative, cudaDevAttrCooperativeLaunch, ctx.device));
  if (!cooperative) return "this GPU cannot launch a cooperative grid";
  if (smem > ctx.max_shared_per_block)
    return std::to_string(smem) + " bytes of shared memory per CTA are above the " +
           std::to_string(ctx.max_shared_per_block) + " allowed";
  SL_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  int per_sm = 0;
  SL_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kWideThreads, smem));
  out.nsplit = int((r.Dh + kWideUnits - 1) / kWideUnits);
  out.tiles = int((r.B + kRows - 1) / kRows);
  out.groups = int(r.H) * out.tiles;
  int64_t resident = std::min<int64_t>(out.groups, int64_t(per_sm) * ctx.sm_count / out.nsplit);
  if (per_group > 0) resident = std::min<int64_t>(resident, work_floats / per_group);
  resident = std::min<int64_t>(resident, kMaxGridY);
  if (resident < 1)
    return "not one head's " + std::to_string(out.nsplit) + " CTAs" +
           (per_group > 0 && work_floats < per_group ? " (and their exchange in work)" : "") +
           " can be resident at once on " + std::to_string(ctx.sm_count) + " SMs";
  out.resident = int(resident);
  out.passes = (out.groups + out.resident - 1) / out.resident;
  return "";
}

// A cooperative launch of the grid; attr must outlive cfg.
inline cudaLaunchConfig_t wide_launch(const Context& ctx, const WideGrid& w, size_t smem,
                                      cudaLaunchAttribute* attr) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(unsigned(w.nsplit), unsigned(w.resident), 1);
  cfg.blockDim = dim3(unsigned(kWideThreads), 1, 1);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = ctx.stream;
  attr->id = cudaLaunchAttributeCooperative;
  attr->val.cooperative = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  return cfg;
}

}  // namespace statelab::cuda::nonlinear_mma::internal
