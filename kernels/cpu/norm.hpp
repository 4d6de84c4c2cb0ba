// Normalisations on the CPU: LayerNorm, its headwise form (GroupNorm over the units of each
// head, as the xLSTM blocks use after a multi-head cell), RMSNorm and the L2 normalisation of
// Gated DeltaNet's q and k. Forward saves mean and 1/std (1/norm) per row and group, so
// backward needs no second pass over statistics.
#pragma once

#include <cstdint>

namespace statelab::cpu {

// x, y: [N, G·Dg]; w, b: [G·Dg] (b may be null); mean, rstd: [N, G]. G = 1 is LayerNorm.
template <typename S>
void group_layernorm_fwd(S* y, S* mean, S* rstd, const S* x, const S* w, const S* b, int64_t N,
                         int64_t G, int64_t Dg, double eps);
// dx = the norm's input gradient (+ skip[N, G·Dg], the gradient reaching x past the norm on a
// residual path; null for none, may be dx); dw, db accumulated (db may be null)
template <typename S>
void group_layernorm_bwd(S* dx, S* dw, S* db, const S* dy, const S* x, const S* mean,
                         const S* rstd, const S* w, int64_t N, int64_t G, int64_t Dg,
                         const S* skip = nullptr);

// x, y: [N, D]; w: [D]; rstd: [N]
template <typename S>
void rmsnorm_fwd(S* y, S* rstd, const S* x, const S* w, int64_t N, int64_t D, double eps);
// dx = the norm's input gradient (+ skip, as for group_layernorm_bwd); dw accumulated
template <typename S>
void rmsnorm_bwd(S* dx, S* dw, const S* dy, const S* x, const S* rstd, const S* w, int64_t N,
                 int64_t D, const S* skip = nullptr);

// y = x / sqrt(Σ x² + eps) per row of D; x, y: [N, D]; rnorm: [N] saves 1/sqrt(Σ x² + eps).
template <typename S>
void l2norm_fwd(S* y, S* rnorm, const S* x, int64_t N, int64_t D, double eps);
// dx overwritten; needs the forward output y.
template <typename S>
void l2norm_bwd(S* dx, const S* dy, const S* y, const S* rnorm, int64_t N, int64_t D);

}  // namespace statelab::cpu
