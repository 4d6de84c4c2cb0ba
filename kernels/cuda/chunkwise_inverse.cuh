// The delta rule's triangular inverse inside a chunk, for the chunkwise kernels that run the
// delta rule (forward, backward, the chunk-parallel transition and outputs): solving it, handing
// it from one kernel to the next through work, and applying it.
#pragma once

#include "kernels/cuda/chunkwise_common.cuh"

namespace statelab::cuda::chunkwise::internal {

// Tinv = (I + A)⁻¹ for the strictly lower A = b D ⊙ K Kᵀ of the delta rule: the diagonal
// 16-blocks by forward substitution in fp32 (one thread per column j = 0..63, A(t, i) read
// through an accessor, which only needs D's diagonal blocks), then two doubling levels
// T21 = −T22 A21 T11 on the tensor cores, always split since every later product inherits the
// inverse's error. Only blocks on and below the diagonal are written, and only the strictly lower
// part of A is read. All threads call the level steps (they contain barriers).
template <class AFn>
__device__ inline void invert_diagonal(float* Tinv, const AFn& A, int j) {
  const int s = j & ~15, col = j & 15;
  float x[16];
#pragma unroll
  for (int r = 0; r < 16; ++r) {
    const int t = s + r;
    float acc[2] = {r == col ? 1.f : 0.f, 0.f};  // two chains halve the dependent FMAs
#pragma unroll
    for (int i = 0; i < r; ++i) acc[i & 1] -= A(t, s + i) * x[i];
    x[r] = acc[0] + acc[1];
    Tinv[(s + r) * kLdL + s + col] = x[r];
  }
}

// A(t, i) = b_t D_ti (K Kᵀ)_ti from its factors, for kernels that keep D and K Kᵀ whole.
__device__ __forceinline__ auto a_of(const float* b, const float* D, const float* KK) {
  return [=](int t, int i) { return b[t] * D[t * kLdL + i] * KK[t * kLdL + i]; };
}

__device__ inline void zero_upper_blocks(float* Tinv) {
  for (int e = threadIdx.x; e < kL * kL; e += blockDim.x) {
    const int r = e / kL, c = e % kL;
    if ((c >> 4) > (r >> 4)) Tinv[r * kLdL + c] = 0.f;
  }
}

// The levels' scratch is 32 × 32 with leading dimension ld (a multiple of 4): Tinv + 32 with
// kLdL, the upper blocks right of the 32-blocks, serves where nothing reads those blocks.
__device__ inline void invert_levels(float* Tinv, const float* A, float* scratch,
                                     int ld = kScratchLd) {
  const int warp = threadIdx.x >> 5;
  if (warp < 2) {  // blocks (1, 0) and (3, 2): X = A21 T11
    const int s = 32 * warp;
    float* X = scratch + 16 * warp;
    float acc[8] = {};
    mma_tile<true>(
        acc, [&](int r, int k) { return A[(s + 16 + r) * kLdL + s + k]; },
        [&](int k, int n) { return Tinv[(s + k) * kLdL + s + n]; }, 0, 0, 0, 16);
    for_acc(acc, 0, 0, [&](int r, int c, float& v) { X[r * ld + c] = v; });
  }
  __syncthreads();
  if (warp < 2) {  // T21 = −T22 X
    const int s = 32 * warp;
    const float* X = scratch + 16 * warp;
    float acc[8] = {};
    mma_tile<true>(
        acc, [&](int r, int k) { return Tinv[(s + 16 + r) * kLdL + s + 16 + k]; },
        [&](int k, int n) { return X[k * ld + n]; }, 0, 0, 0, 16);
    for_acc(acc, 0, 0, [&](int r, int c, float& v) { Tinv[(s + 16 + r) * kLdL + s + c] = -v; });
  }
  __syncthreads();
  if (warp < 4) {  // the 32-blocks: X = A21 T11, T11 lower so k >= n
    const int m0 = 16 * (warp >> 1), n0 = 16 * (warp & 1);
    float acc[8] = {};
    mma_tile<true>(
        acc, [&](int r, int k) { return A[(32 + r) * kLdL + k]; },
        [&](int k, int n) { return Tinv[k * kLdL + n]; }, m0, n0, n0, 32);
    for_acc(acc, m0, n0, [&](int r, int c, float& v) { scratch[r * ld + c] = v; });
  }
  __syncthreads();
  if (warp < 4) {  // T21 = −T22 X, T22 lower so k <= r
    const int m0 = 16 * (warp >> 1), n0 = 16 * (warp & 1);
    float acc[8] = {};
    mma_tile<true>(
        acc, [&](int r, int k) { return Tinv[(32 + r) * kLdL + 32 + k]; },
        [&](int k, int n) { return scratch[k * ld + n]; }, m0, n0, 0, m0 + 16);
    for_acc(acc, m0, n0, [&](int r, int c, float& v) { Tinv[(32 + r) * kLdL + c] = -v; });
  }
  __syncthreads();
}

// The delta rule's chunk-parallel forward hands each chunk's Tinv from the transition kernel,
// which solves it for the chunk's transition, to the outputs kernel, which then need not solve it
// again: its ten blocks on and below the diagonal (lower_block's order, each 16 × 16 row-major)
// in a slot of p.work per chunk 0 .. nchunks − 2 of every (b, h).
constexpr int kInverseFloats = 10 * 16 * 16;

__device__ __forceinline__ float* inverse_slot(const Params& p, int bb, int h, int c) {
  return p.work + ((int64_t(bb) * p.H + h) * (p.nchunks - 1) + c) * kInverseFloats;
}

// fn(e, block's row-major offset r·kLdL + col in a kL × kLdL tile) for the first of every four
// slot entries e, spread over the CTA's threads.
template <class Fn>
__device__ __forceinline__ void for_inverse_quads(Fn&& fn) {
  for (int e = 4 * threadIdx.x; e < kInverseFloats; e += 4 * blockDim.x) {
    int bt, bj;
    lower_block(e >> 8, bt, bj);
    fn(e, (16 * bt + ((e >> 4) & 15)) * kLdL + 16 * bj + (e & 15));
  }
}

// Tinv (kL × kLdL in shared memory) into its slot, and back (cp.async, committed by the caller),
// 16 bytes at a time: the slot is 16-byte aligned (forward checks work's alignment).
__device__ inline void store_inverse(float* slot, const float* Tinv) {
  for_inverse_quads([&](int e, int at) {
    *reinterpret_cast<float4*>(slot + e) = *reinterpret_cast<const float4*>(Tinv + at);
  });
}
__device__ inline void load_inverse(float* Tinv, const float* slot) {
  for_inverse_quads([&](int e, int at) { copy16(Tinv + at, slot + e, true); });
}

// U = Tinv RHS on the kL × 16·vt tiles (RHS and U with leading dimension ld), the warp's tiles
// from `warp` in steps of `warps`; Tinv is lower, so row block m0 reads RHS rows below m0 + 16.
template <bool kSplit>
__device__ inline void apply_inverse(const float* Tinv, const float* RHS, float* U, int ld, int vt,
                                     int warp, int warps) {
  for (int job = warp; job < 4 * vt; job += warps) {
    const int m0 = 16 * (job & 3), n0 = 16 * (job >> 2);
    float acc[8] = {};
    mma_tile<kSplit>(
        acc, [&](int r, int k) { return Tinv[r * kLdL + k]; },
        [&](int k, int j) { return RHS[k * ld + j]; }, m0, n0, 0, m0 + 16);
    for_acc(acc, m0, n0, [&](int r, int j, float& v) { U[r * ld + j] = v; });
  }
}

}  // namespace statelab::cuda::chunkwise::internal
