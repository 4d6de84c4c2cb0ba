// The optimizer on CUDA: the squared global gradient norm and one fused AdamW step over the
// whole flat parameter buffer, clipping included, with every per-step value read from device
// memory. A captured training step therefore replays with the step's own learning rate and
// never syncs with the host. Numerically the twin of kernels/cpu/optim.hpp followed by
// lab/optimizer.cpp's clip (checked by kernels/selftest/loss_optim.cpp).
#pragma once

#include <cstdint>

#include "kernels/cuda/context.hpp"

namespace statelab::cuda {

// *out += Σ x[i]² accumulated in double (device memory; the caller zeroes it).
void sum_squares(const Context& ctx, const float* x, int64_t n, double* out);

struct AdamWHyper {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0;  // applies to [0, n_decay) only
  double grad_clip = 0;     // > 0: gradients scaled by min(1, grad_clip / ‖g‖)
};

// Device pointers to this step's values.
struct AdamWDeviceStep {
  const float* lr = nullptr;               // learning rate of this step
  const double* grad_norm_sq = nullptr;    // Σ g² over the whole buffer (sum_squares)
  const int64_t* steps_taken = nullptr;    // optimizer steps before this one; bias correction
                                           // uses t = *steps_taken + 1
};

// p ← p − lr·wd·p (decay region), then the Adam step with g scaled by the clip factor, over
// p, g, m, v [n]. When ‖g‖ is not finite nothing is written (the step is skipped, as the CPU
// trainer skips it), so the caller can diagnose the step from unchanged parameters.
void adamw_update(const Context& ctx, float* p, const float* g, float* m, float* v, int64_t n,
                  int64_t n_decay, const AdamWHyper& hyper, const AdamWDeviceStep& step);

}  // namespace statelab::cuda
