// The optimizer's arithmetic over whole flat buffers: AdamW with decoupled weight decay (as
// PyTorch's AdamW: p ← p − lr·wd·p, then the Adam step) and global-norm gradient clipping.
// One call covers a contiguous region of the parameter buffer, which is how the ParamStore
// separates parameters that decay from those that do not.
#pragma once

#include <cstdint>

namespace statelab::cpu {

struct AdamWStep {
  double lr;
  double beta1, beta2, eps;
  double weight_decay;
  int64_t step;  // 1-based, for bias correction
};

// p, g, m, v: [n]
template <typename S>
void adamw_update(S* p, const S* g, S* m, S* v, int64_t n, const AdamWStep& s);

// sqrt(Σ g²), accumulated in double
template <typename S>
double global_norm(const S* g, int64_t n);

template <typename S>
void scale_inplace(S* g, int64_t n, double factor);

}  // namespace statelab::cpu
