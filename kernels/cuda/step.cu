// Single-thread kernels of the GPU training step's bookkeeping (see step.hpp): a few scalar
// decisions kept on the device so the captured step never waits for the host.
#include <cmath>

#include "kernels/cuda/step.hpp"

namespace statelab::cuda {

namespace {

__global__ void step_guard_kernel(StepState* state, StepRecord* ring, int ring_size,
                                  bool halt_on_non_finite) {
  StepRecord& r = ring[state->step % ring_size];
  const double norm = sqrt(state->grad_norm_sq);
  const bool finite = isfinite(state->totals.loss_sum) && isfinite(norm);
  r.loss_sum = state->totals.loss_sum;
  r.count = state->totals.count;
  r.correct = state->totals.correct;
  r.grad_norm = finite ? norm : NAN;
  r.step = state->step;
  r.applied = finite && !state->halted;
  if (!finite && halt_on_non_finite) state->halted = 1;
  if (!r.applied) state->grad_norm_sq = NAN;
}

__global__ void step_advance_kernel(StepState* state, StepRecord* ring, int ring_size) {
  if (ring[state->step % ring_size].applied) ++state->steps_taken;
}

}  // namespace

void step_guard(const Context& ctx, StepState* state, StepRecord* ring, int ring_size,
                bool halt_on_non_finite) {
  step_guard_kernel<<<1, 1, 0, ctx.stream>>>(state, ring, ring_size, halt_on_non_finite);
  SL_CUDA_LAUNCH_CHECK();
}

void step_advance(const Context& ctx, StepState* state, StepRecord* ring, int ring_size) {
  step_advance_kernel<<<1, 1, 0, ctx.stream>>>(state, ring, ring_size);
  SL_CUDA_LAUNCH_CHECK();
}

}  // namespace statelab::cuda
