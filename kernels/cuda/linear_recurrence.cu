// The unified linear recurrence on CUDA (twin of kernels/cpu/linear_recurrence.cpp): the entry
// points, and the dispatch between the fused recurrent kernels (linear_recurrence_recurrent*.cu)
// and the chunkwise ones (linear_recurrence_chunkwise*.cu); the gate scans that feed both are in
// gate_scans.cu. Checked against the CPU twins in double by kernels/selftest/linear_recurrence.cpp.
#include "kernels/cuda/linear_recurrence.hpp"

#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "kernels/cuda/linear_recurrence_chunkwise.hpp"
#include "kernels/cuda/recurrent_common.cuh"
#include "kernels/error.hpp"

namespace statelab::cuda {

namespace {

using namespace recurrent;  // the recurrent kernels' planning and launches

// ---- dispatch --------------------------------------------------------------------------------
// The recurrent kernels cost T dependent steps, each dearer as the state grows (forward and
// backward at B128 T64 H4 on an H200: 3.8 µs a step for mLSTM's 32×32 state, 6.4 µs for
// Mamba-2's 64×32); the chunkwise kernels cost T/chunk dependent state hand-offs of a few µs
// plus intra-chunk products that run in parallel, and a fixed cost of several launches. At that
// shape, one chunk of 64, chunkwise wins for mLSTM (0.125 against 0.246 ms), Mamba-2 (0.115
// against 0.413 ms) and, since its backward runs 16 warps per CTA, the delta rule too (GDN 0.166
// against 0.230 ms). So automatic dispatch takes chunkwise for chunks of at least 16 steps from
// one whole chunk on.
constexpr int64_t kChunkwiseMinChunk = 16;
constexpr int64_t kChunkwiseMinChunks = 1;

void check(const LinearRecurrence<float>& p) {
  cpu::linear_recurrence_check(p);
  SL_CHECK_SHAPE(
      p.Dv < (int64_t(1) << 30) && p.chunk < (int64_t(1) << 30) && p.B * p.H < (int64_t(1) << 31),
      "linear recurrence: CUDA needs Dv and chunk below 2^30 and B·H below 2^31");
}

void check_backward(const LinearRecurrence<float>& p, const LinearRecurrenceGrads<float>& g) {
  check(p);
  cpu::linear_recurrence_check_backward(p, g);
}

__global__ void square_root_kernel(float* x, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] = sqrtf(x[i]);
}

// The recurrent path when forced, chunkwise when forced (a ShapeError where it cannot run), and
// otherwise the cost model above.
bool use_chunkwise(const LinearRecurrence<float>& p, LinearKernel kernel, bool recurrent_fits,
                   const char* what) {
  const bool chunk_ok = chunkwise::supports(p);
  const std::string shape = " (Dk=" + std::to_string(p.Dk) + " Dv=" + std::to_string(p.Dv) +
                            " T=" + std::to_string(p.T) + " chunk=" + std::to_string(p.chunk) + ")";
  switch (kernel) {
    case LinearKernel::recurrent:
      SL_CHECK_SHAPE(recurrent_fits,
                     std::string(what) +
                         ": the recurrent kernel handles Dk <= " + std::to_string(kMaxStateWidth) +
                         " and chunks whose checkpoints fit in shared memory" + shape);
      return false;
    case LinearKernel::chunkwise:
    case LinearKernel::chunk_parallel:
      SL_CHECK_SHAPE(chunk_ok,
                     std::string(what) + ": the chunkwise kernel does not handle" + shape);
      return true;
    case LinearKernel::automatic:
      break;
  }
  SL_CHECK_SHAPE(recurrent_fits || chunk_ok,
                 std::string(what) + ": no CUDA kernel handles" + shape);
  if (!recurrent_fits) return true;
  return chunk_ok && p.chunk >= kChunkwiseMinChunk && p.T >= kChunkwiseMinChunks * p.chunk;
}

chunkwise::Schedule schedule_of(LinearKernel kernel) {
  if (kernel == LinearKernel::chunkwise) return chunkwise::Schedule::sequential;
  if (kernel == LinearKernel::chunk_parallel) return chunkwise::Schedule::parallel;
  return chunkwise::Schedule::automatic;
}

}  // namespace

// ---- launchers -------------------------------------------------------------------------------

int64_t linear_recurrence_fwd_work_size(const Context& ctx, const LinearRecurrence<float>& p,
                                        LinearKernel kernel) {
  check(p);
  Plan plan;
  const bool fits = plan_forward(ctx, p, plan, false);
  if (!use_chunkwise(p, kernel, fits, "linear recurrence forward")) return 0;
  return chunkwise::forward_work_size(ctx, p, schedule_of(kernel));
}

void linear_recurrence_fwd(const Context& ctx, const LinearRecurrence<float>& p, float* work,
                           LinearKernel kernel) {
  check(p);
  Plan plan;
  const bool fits = plan_forward(ctx, p, plan, false);
  if (use_chunkwise(p, kernel, fits, "linear recurrence forward"))
    return chunkwise::forward(ctx, p, work, schedule_of(kernel));
  launch_forward(ctx, recurrent_args(p, plan), plan, grid_of(p, plan), false);
}

// One pass of the recurrent forward kernel over the whole sequence from the zero state, whatever
// form the forward took, so no boundary states are needed and any T works.
void linear_recurrence_probe(const Context& ctx, const LinearRecurrence<float>& p,
                             const cpu::LinearRecurrenceProbe<float>& probe) {
  check(p);
  SL_CHECK_SHAPE(p.floor || !(probe.normalizer_norm || probe.n_dot_q),
                 "linear recurrence probe: normalizer_norm and n_dot_q need a normalized "
                 "recurrence (floor set)");
  Plan plan;
  SL_CHECK_SHAPE(plan_forward(ctx, p, plan, true),
                 "linear recurrence probe: the recurrent kernel handles Dk <= " +
                     std::to_string(kMaxStateWidth) + " (Dk=" + std::to_string(p.Dk) + ")");
  const int64_t n = p.B * p.T * p.H;
  float* sums[] = {probe.state_norm, probe.normalizer_norm, probe.write_error};
  for (float* out : sums)
    if (out) SL_CUDA_CHECK(cudaMemsetAsync(out, 0, size_t(n) * sizeof(float), ctx.stream));
  RecurrentArgs a = recurrent_args(p, plan);
  a.y.data = nullptr, a.boundary = nullptr, a.final_state = nullptr;
  a.state_sq = probe.state_norm, a.normalizer_sq = probe.normalizer_norm;
  a.n_dot_q = probe.n_dot_q, a.error_sq = probe.write_error;
  launch_forward(ctx, a, plan, grid_of(p, plan), true);
  for (float* out : sums)
    if (out) {
      square_root_kernel<<<unsigned((n + 255) / 256), 256, 0, ctx.stream>>>(out, n);
      SL_CUDA_LAUNCH_CHECK();
    }
}

// The larger of the chunkwise kernels' bound (stated in linear_recurrence_chunkwise.cu), where
// they apply, and the recurrent backward's checkpoints, where it can run: m slots for each warp
// of the grid, at most ⌈Dv / rows per warp⌉ + kMaxWarps − 1 warps per sequence (only the last
// row block has idle warps).
int64_t linear_recurrence_work_size(const LinearRecurrence<float>& p) {
  int64_t size = chunkwise::supports(p) ? chunkwise::work_size(p) : 0;
  if (p.Dk <= kMaxStateWidth && p.T >= 1 && p.chunk >= 1) {
    Plan plan;
    plan_checkpoints(p, plan);
    const int l = lanes_log2_for(p.Dk);
    const int64_t rows_per_warp = (32 >> l) * kTileRows;
    const int64_t warps = (p.Dv + rows_per_warp - 1) / rows_per_warp + kMaxWarps - 1;
    size = std::max(size, p.B * p.H * warps * plan.subchunks * slot_floats(p, l));
  }
  return size;
}

void linear_recurrence_bwd(const Context& ctx, const LinearRecurrence<float>& p,
                           const LinearRecurrenceGrads<float>& g, float* work,
                           LinearKernel kernel) {
  check_backward(p, g);
  Plan plan;
  const bool fits = plan_backward(ctx, p, plan);
  if (use_chunkwise(p, kernel, fits, "linear recurrence backward")) {
    SL_CHECK_SHAPE(work || chunkwise::work_size(p) == 0,
                   "linear recurrence backward: work is required");
    return chunkwise::backward(ctx, p, g, work);
  }
  SL_CHECK_SHAPE(work, "linear recurrence backward: work (the checkpoints) is required");
  RecurrentArgs a = recurrent_args(p, plan);
  a.dy = g.dy, a.dq = g.dq, a.dk = g.dk, a.dv = g.dv;
  a.da = g.da, a.db = g.db, a.dc = g.dc, a.dfloor = g.dfloor;
  a.checkpoints = work;
  launch_backward(ctx, a, plan, grid_of(p, plan));
}

}  // namespace statelab::cuda
