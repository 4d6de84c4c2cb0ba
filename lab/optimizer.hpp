// Training arithmetic around the kernels: the learning-rate schedule (linear warm-up, then
// cosine to min_lr) and AdamW over a ParamStore with global-norm clipping. Decay applies to the
// ParamStore's decay region only, so norms and biases never shrink towards zero.
#pragma once

#include "cells/params.hpp"
#include "lab/config.hpp"

namespace statelab {

// Learning rate at 1-based `step`: lr·step/warmup during warm-up, then cosine from lr down to
// min_lr at the last step.
double learning_rate(const TrainConfig& c, int step);

template <typename S>
class AdamW {
 public:
  explicit AdamW(const TrainConfig& c) : cfg_(c) {}
  // Clips gradients to cfg.grad_clip (if > 0) and applies one AdamW step at `lr`.
  // Returns the gradient norm before clipping.
  double step(ParamStore<S>& ps, double lr);
  int64_t steps_taken() const { return t_; }

 private:
  TrainConfig cfg_;
  int64_t t_ = 0;
};

}  // namespace statelab
