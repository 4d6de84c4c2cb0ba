// Causal multi-head attention and RoPE on CUDA, twins of kernels/cpu/attention.hpp: a fused,
// tiled (flash-style) forward that saves only o and the log-sum-exp per row, and a backward
// that recomputes probabilities tile by tile. Products run in fp32 FFMA whatever ctx.precision
// says, and backward uses no atomics, so results are deterministic. Checked by
// kernels/selftest/attention.cpp.
#pragma once

#include <cstdint>

#include "kernels/cpu/attention.hpp"
#include "kernels/cuda/context.hpp"

namespace statelab::cuda {

void rope_fwd(const Context& ctx, float* y, const float* x, int64_t B, int64_t T, int64_t H,
              int64_t Dh, double base);
void rope_bwd(const Context& ctx, float* dx, const float* dy, int64_t B, int64_t T, int64_t H,
              int64_t Dh, double base);

// Writes a.o and a.lse. Heads up to Dh = 128 wide (ShapeError beyond, unlike the CPU twin).
void causal_attention_fwd(const Context& ctx, const cpu::CausalAttention<float>& a);
// Scratch elements backward needs; at most B·T·H (one value per query row and head).
int64_t causal_attention_work_size(int64_t B, int64_t T, int64_t H);
// dq, dk, dv overwritten, as on the CPU; work holds rowsum(dout ⊙ o) per (b, t, h).
void causal_attention_bwd(const Context& ctx, const cpu::CausalAttention<float>& a,
                          const float* dout, float* dq, float* dk, float* dv, float* work);

// The twin of cpu::causal_attention_probe (kernels/cuda/attention_probe.cu), from a.q, a.k and
// the a.lse forward saved: entropy [B, T, H]; map [B, H, T, T] when non-null.
void causal_attention_probe(const Context& ctx, const cpu::CausalAttention<float>& a,
                            float* entropy, float* map);

}  // namespace statelab::cuda
