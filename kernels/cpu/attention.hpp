// Causal multi-head softmax attention and rotary position embeddings (RoPE) on the CPU.
// Forward keeps only the log-sum-exp of each score row; backward recomputes the probabilities
// one tile of query rows at a time (the FlashAttention recipe), so memory is O(tile · T), not
// O(T²), on eval sequences of thousands of steps. Each tile is a few Eigen GEMMs on strided
// views of [B, T, H, Dh], without copies. Checked against an explicit T×T softmax and against
// finite differences in double (tests/kernels/test_attention.cpp).
#pragma once

#include <cstdint>

namespace statelab::cpu {

// Rotates the pairs (x[2i], x[2i+1]) of each head vector of token (b, t) by the angle
// t · base^(−2i/Dh), i = 0 … Dh/2 − 1: the interleaved pairing of RoFormer and Meta's LLaMA
// code (GPT-NeoX pairs i with i + Dh/2 instead). t is the step within the token's own sequence,
// so every sequence of a batch starts at position 0. After rotation q_t·k_s depends on t and s
// only through t − s.
// x, y: [B, T, H, Dh]; y may equal x. Dh must be even (ShapeError otherwise).
template <typename S>
void rope_fwd(S* y, const S* x, int64_t B, int64_t T, int64_t H, int64_t Dh, double base);
// The transposed rotation, dx = Rᵀ dy. dx, dy: [B, T, H, Dh]; dx may equal dy.
template <typename S>
void rope_bwd(S* dx, const S* dy, int64_t B, int64_t T, int64_t H, int64_t Dh, double base);

// Query rows per tile: bounds the scratch at 2 · kAttentionRows · T elements.
constexpr int64_t kAttentionRows = 32;

template <typename S>
struct CausalAttention {
  int64_t B = 0, T = 0, H = 0, Dh = 0;
  const S* q = nullptr;  // [B, T, H, Dh]
  const S* k = nullptr;  // [B, T, H, Dh]
  const S* v = nullptr;  // [B, T, H, Dh]
  // Written by forward, read by backward:
  S* o = nullptr;    // [B, T, H, Dh] o_t = Σ_{s≤t} softmax_s(q_t·k_s / √Dh) v_s
  S* lse = nullptr;  // [B, T, H]     log Σ_{s≤t} exp(q_t·k_s / √Dh)
};

// Scratch elements forward and backward need: 2 · min(T, kAttentionRows) · T.
int64_t causal_attention_work_size(int64_t T);

template <typename S>
void causal_attention_fwd(const CausalAttention<S>& a, S* work);

// dout: [B, T, H, Dh] gradient w.r.t. o. dq, dk, dv: [B, T, H, Dh], overwritten (they are
// gradients of the kernel's inputs, not of parameters, so there is nothing to accumulate into).
// Needs q, k, v, o and lse as the last forward left them.
template <typename S>
void causal_attention_bwd(const CausalAttention<S>& a, const S* dout, S* dq, S* dk, S* dv, S* work);

// From q, k and lse as the last forward left them: the entropy (nats) of each query's attention
// distribution, entropy [B, T, H], and when map is non-null the probabilities themselves,
// map [B, H, T, T] (row = query t, column = key s, zero for s > t). work:
// causal_attention_work_size(T). Reads q, k and lse only: o and v may be null.
template <typename S>
void causal_attention_probe(const CausalAttention<S>& a, S* entropy, S* map, S* work);

}  // namespace statelab::cpu
