// Dense layers on CUDA, twins of kernels/cpu/dense.hpp: linear layers through cuBLASLt in the
// context's precision (fp32, tf32 or bf16 tensor-core arithmetic on fp32 storage) and the token
// embedding. Same contracts as the CPU twins: forward overwrites, backward overwrites dx or adds
// to it and accumulates dW, db, dE. Checked against the CPU twins by kernels/selftest/dense.cpp.
#pragma once

#include <cstdint>

#include "kernels/cpu/dense.hpp"
#include "kernels/cuda/context.hpp"

namespace statelab::cuda {

// y[N, O] = x[N, I] · W[O, I]ᵀ + b[O] (+ residual[N, O], in the GEMM as its C); b and residual
// may be null, residual may be y
void linear_fwd(const Context& ctx, float* y, const float* x, const float* W, const float* b,
                int64_t N, int64_t I, int64_t O, const float* residual = nullptr);
// dx[N, I] = dy · W, or += for Into::add (skipped when dx is null); dW[O, I] += dyᵀ · x;
// db[O] += Σ_n dy (if db)
void linear_bwd(const Context& ctx, float* dx, float* dW, float* db, const float* dy,
                const float* x, const float* W, int64_t N, int64_t I, int64_t O,
                cpu::Into into = cpu::Into::overwrite);

// y[N, D] = E[tokens[n], :]; tokens (device memory) are checked by the caller.
void embedding_fwd(const Context& ctx, float* y, const int32_t* tokens, const float* E, int64_t N,
                   int64_t D);
// dE[V, D]: dE[tokens[n], :] += dy[n, :]
void embedding_bwd(const Context& ctx, float* dE, const int32_t* tokens, const float* dy,
                   int64_t N, int64_t V, int64_t D);

}  // namespace statelab::cuda
