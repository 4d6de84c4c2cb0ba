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
  // The global gradient norm, then clipping to cfg.grad_clip (if > 0). A non-finite norm
  // leaves the gradients as they are, for the caller to diagnose or skip.
  double clip(ParamStore<S>& ps) const;
  // One AdamW step at `lr` with the current gradients.
  void apply(ParamStore<S>& ps, double lr);
  // clip + apply; returns the norm before clipping.
  double step(ParamStore<S>& ps, double lr);
  int64_t steps_taken() const { return t_; }
  void set_steps_taken(int64_t t) { t_ = t; }  // on resume

 private:
  TrainConfig cfg_;
  int64_t t_ = 0;
};

}  // namespace statelab
