// Dense layers on the CPU: linear (x Wᵀ + b, W stored [out, in] as in the published
// checkpoints) and token embedding. Forward overwrites its output; backward overwrites the input
// gradient, or adds to it where several layers read one input, and accumulates parameter
// gradients, so shared parameters and micro-batches just add.
#pragma once

#include <cstdint>

namespace statelab::cpu {

// What a backward does with an input gradient: dx = …, or dx += … where several layers read x
// (on CUDA the sum rides in the GEMM instead of a separate pass over dx).
enum class Into { overwrite, add };

// y[N, O] = x[N, I] · W[O, I]ᵀ + b[O] (+ residual[N, O]): b and residual may be null, and
// residual may be y itself. A residual block's output projection adds its skip here (on CUDA
// in the GEMM) rather than in a separate pass over y.
template <typename S>
void linear_fwd(S* y, const S* x, const S* W, const S* b, int64_t N, int64_t I, int64_t O,
                const S* residual = nullptr);
// dx[N, I] = dy · W, or += for Into::add (skipped when dx is null); dW[O, I] += dyᵀ · x;
// db[O] += Σ_n dy (if db)
template <typename S>
void linear_bwd(S* dx, S* dW, S* db, const S* dy, const S* x, const S* W, int64_t N, int64_t I,
                int64_t O, Into into = Into::overwrite);

// y[N, D] = E[tokens[n], :]; tokens are checked by the caller against the vocabulary size
template <typename S>
void embedding_fwd(S* y, const int32_t* tokens, const S* E, int64_t N, int64_t D);
// dE[tokens[n], :] += dy[n, :]
template <typename S>
void embedding_bwd(S* dE, const int32_t* tokens, const S* dy, int64_t N, int64_t D);

}  // namespace statelab::cpu
