// Normalisations on CUDA, twins of kernels/cpu/norm.hpp (same arguments after the context, same
// saved statistics, so backward needs no second pass). Parameter gradients accumulate.
// Checked against the CPU twins by kernels/selftest/norm.cpp.
#pragma once

#include <cstdint>

#include "kernels/cuda/context.hpp"

namespace statelab::cuda {

void group_layernorm_fwd(const Context& ctx, float* y, float* mean, float* rstd, const float* x,
                         const float* w, const float* b, int64_t N, int64_t G, int64_t Dg,
                         double eps);
void group_layernorm_bwd(const Context& ctx, float* dx, float* dw, float* db, const float* dy,
                         const float* x, const float* mean, const float* rstd, const float* w,
                         int64_t N, int64_t G, int64_t Dg, const float* skip = nullptr);

void rmsnorm_fwd(const Context& ctx, float* y, float* rstd, const float* x, const float* w,
                 int64_t N, int64_t D, double eps);
void rmsnorm_bwd(const Context& ctx, float* dx, float* dw, const float* dy, const float* x,
                 const float* rstd, const float* w, int64_t N, int64_t D,
                 const float* skip = nullptr);

void l2norm_fwd(const Context& ctx, float* y, float* rnorm, const float* x, int64_t N, int64_t D,
                double eps);
void l2norm_bwd(const Context& ctx, float* dx, const float* dy, const float* y, const float* rnorm,
                int64_t N, int64_t D);

}  // namespace statelab::cuda
