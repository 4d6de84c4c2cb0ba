// Pointwise work on the CPU: activations, the gated unit act(g) ⊙ v of the gated FFN, the
// causal depthwise conv1d that feeds the recurrent cells, and in-place sums. Backward functions
// take the forward *input* and overwrite the input gradient.
#pragma once

#include <cstdint>
#include <string>

namespace statelab::cpu {

enum class Activation { identity, silu, gelu, tanh, sigmoid };
Activation activation_from_name(const std::string& name);  // throws on unknown

template <typename S>
void activation_fwd(Activation a, S* y, const S* x, int64_t n);
template <typename S>
void activation_bwd(Activation a, S* dx, const S* dy, const S* x, int64_t n);

// u: [N, 2F] rows laid out [gate | value]; y: [N, F] = act(gate) ⊙ value
template <typename S>
void gated_fwd(Activation a, S* y, const S* u, int64_t N, int64_t F);
template <typename S>
void gated_bwd(Activation a, S* du, const S* dy, const S* u, int64_t N, int64_t F);

// Causal depthwise convolution over time: x, y: [B, T, C]; w: [C, K]; bias: [C] (may be null).
// y[b,t,c] = bias[c] + Σ_j w[c,j] · x[b, t-K+1+j, c], zero before t = 0.
template <typename S>
void causal_conv1d_fwd(S* y, const S* x, const S* w, const S* bias, int64_t B, int64_t T,
                       int64_t C, int64_t K);
// dx overwritten; dw, dbias accumulated (dbias may be null)
template <typename S>
void causal_conv1d_bwd(S* dx, S* dw, S* dbias, const S* dy, const S* x, const S* w, int64_t B,
                       int64_t T, int64_t C, int64_t K);

// y[i] += x[i]
template <typename S>
void add_inplace(S* y, const S* x, int64_t n);

}  // namespace statelab::cpu
