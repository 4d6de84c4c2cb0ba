// The bookkeeping of a training step on the GPU, so that a whole step (forward, loss, backward,
// norm, AdamW) runs as one captured graph without the host: step_guard records the step's loss
// and gradient norm into a ring the host reads every few steps, and decides on the device
// whether the update may happen (finite loss and norm, no earlier stop); step_advance counts
// the optimizer steps that did. Checked through the GPU-vs-CPU training tests (tests/gpu).
#pragma once

#include <cstdint>

#include "kernels/cuda/context.hpp"
#include "kernels/loss_totals.hpp"

namespace statelab::cuda {

// What the host learns about one step.
struct StepRecord {
  double loss_sum;
  unsigned long long count, correct;
  double grad_norm;  // sqrt(Σ g²) before clipping; NaN when not computed or not finite
  int32_t step;      // the training step this record belongs to
  int32_t applied;   // 1: the optimizer step happened
};

// Device-resident state of a run's steps.
struct StepState {
  LossTotals totals;        // this step's loss sums (zeroed by the step)
  double grad_norm_sq;      // this step's Σ g² (zeroed by the step); NaN blocks the update
  int64_t steps_taken;      // optimizer steps applied so far (AdamW's bias correction)
  int32_t halted;           // 1 once a non-finite step stopped the run (on_nan = "stop")
  float lr;                 // this step's learning rate (copied in by the step)
  int32_t step;             // this step's number (copied in by the step)
};

// Before AdamW: writes ring[step % ring_size]; when the loss or the norm is not finite, or the
// run has halted, sets grad_norm_sq to NaN so that adamw_update skips the step; with
// halt_on_non_finite, a non-finite step halts every later one.
void step_guard(const Context& ctx, StepState* state, StepRecord* ring, int ring_size,
                bool halt_on_non_finite);
// After AdamW: counts the optimizer step if it happened.
void step_advance(const Context& ctx, StepState* state, StepRecord* ring, int ring_size);

}  // namespace statelab::cuda
