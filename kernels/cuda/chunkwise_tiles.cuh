// Building blocks of the chunkwise linear recurrence's kernels (linear_recurrence_chunkwise.cu,
// its _bwd twin and linear_recurrence_chunk_parallel.cu): a warp's 16 × 16 tile products on the
// tensor cores (TF32, or 3xTF32 for fp32) and the asynchronous global → shared copies.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "kernels/cuda/lane_sum.cuh"
#include "kernels/cuda/tf32_mma.cuh"

namespace statelab::cuda::chunkwise::internal {

// ---------------------------------------------------------------------------------------------
// Tensor-core tiles. A warp computes a 16 × 16 tile of C = A·B as two m16n8k8 TF32 products per
// k-step; A(r, k) and B(k, n) are accessors into shared memory that fold in masks and scales.
// kSplit: 3xTF32 (x = hi + lo, products hi·hi + hi·lo + lo·hi), fp32-level accuracy. bf16 runs
// the single-TF32 path too: it is well inside bf16's tolerance, and one fragment layout serves.

// 3xTF32's x = hi + lo: hi rounded with its low bits cleared, so that lo = x − hi is exact; lo
// enters truncated, an error below 2^-21 |x|.
__device__ __forceinline__ void tf32_split(float x, uint32_t& hi, uint32_t& lo) {
  hi = to_tf32(x);
  lo = __float_as_uint(x - __uint_as_float(hi));
}

__device__ __forceinline__ float tf32_value(float x) { return __uint_as_float(tf32_round(x)); }

// acc += one k-step of the tile from fp32 fragments: af as the mma's A fragment, bf as B's for
// columns n0.. (bf[0], bf[1]) and n0+8.. (bf[2], bf[3]). kRounded names the operands that are
// TF32 already (tf32_value, once where they were written to shared memory): the single-TF32 path
// skips rounding their every fragment element, and the bits the tensor cores see are the same.
enum Rounded { kRoundedNone = 0, kRoundedA = 1, kRoundedB = 2, kRoundedBoth = 3 };

template <bool kSplit, int kRounded = kRoundedNone>
__device__ __forceinline__ void mma_step(float (&acc)[8], const float (&af)[4],
                                         const float (&bf)[4]) {
  static_assert(!kSplit || kRounded == kRoundedNone, "3xTF32 splits fp32 operands");
  uint32_t ah[4], bh[4];
  if constexpr (kSplit) {
    uint32_t al[4], bl[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      tf32_split(af[i], ah[i], al[i]);
      tf32_split(bf[i], bh[i], bl[i]);
    }
    mma_tf32(acc, al, bh[0], bh[1]);
    mma_tf32(acc + 4, al, bh[2], bh[3]);
    mma_tf32(acc, ah, bl[0], bl[1]);
    mma_tf32(acc + 4, ah, bl[2], bl[3]);
  } else {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      ah[i] = kRounded & kRoundedA ? __float_as_uint(af[i]) : tf32_round(af[i]);
      bh[i] = kRounded & kRoundedB ? __float_as_uint(bf[i]) : tf32_round(bf[i]);
    }
  }
  mma_tf32(acc, ah, bh[0], bh[1]);
  mma_tf32(acc + 4, ah, bh[2], bh[3]);
}

// acc += A[m0 .. m0+15, k0 .. k1) · B[k0 .. k1, n0 .. n0+15], k0 and k1 multiples of 8.
// acc[i] holds row m0 + g + 8·((i >> 1) & 1), column n0 + 8·(i >> 2) + 2·t + (i & 1), with
// g = lane / 4 and t = lane % 4 (the mma C-fragment layout).
template <bool kSplit, int kRounded = kRoundedNone, class AFn, class BFn>
__device__ __forceinline__ void mma_tile(float (&acc)[8], const AFn& A, const BFn& B, int m0,
                                         int n0, int k0, int k1) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  for (int k = k0; k < k1; k += 8) {
    const float af[4] = {A(m0 + g, k + t), A(m0 + g + 8, k + t), A(m0 + g, k + t + 4),
                         A(m0 + g + 8, k + t + 4)};
    const float bf[4] = {B(k + t, n0 + g), B(k + t + 4, n0 + g), B(k + t, n0 + 8 + g),
                         B(k + t + 4, n0 + 8 + g)};
    mma_step<kSplit, kRounded>(acc, af, bf);
  }
}

// acc += A[m0 .. m0+15, k0 .. k1) · B[n0 .. n0+15, k0 .. k1)ᵀ for row-major tiles A and B in
// shared memory (16-byte aligned, leading dimensions multiples of 4 and ≡ 4 mod 8 so that the
// eight rows of a block hit distinct banks): each k-step's fragments in two ldmatrix instead of
// eight loads, and no per-element address arithmetic.
template <bool kSplit>
__device__ __forceinline__ void mma_tile_abt(float (&acc)[8], const float* A, int lda,
                                             const float* B, int ldb, int m0, int n0, int k0,
                                             int k1) {
  const int lane = threadIdx.x & 31, row = lane & 7, block = lane >> 3;
  // A's blocks: (rows m0.., k), (m0+8.., k), (m0.., k+4), (m0+8.., k+4); B's: (n0.., k),
  // (n0.., k+4), (n0+8.., k), (n0+8.., k+4), in the fragments' order.
  const float* a = A + (m0 + row + 8 * (block & 1)) * lda + 4 * (block >> 1);
  const float* b = B + (n0 + row + 8 * (block >> 1)) * ldb + 4 * (block & 1);
  for (int k = k0; k < k1; k += 8) {
    float af[4], bf[4];
    load_blocks_x4(af, a + k);
    load_blocks_x4(bf, b + k);
    mma_step<kSplit>(acc, af, bf);
  }
}

// acc += A[m0 .. m0+15, k0 .. k1) · B[k0 .. k1, n0 .. n0+15] for a row-major tile A in shared
// memory (as mma_tile_abt's A: 16-byte aligned, lda ≡ 4 mod 8) and B through its accessor: A's
// fragments in one ldmatrix a k-step where mma_tile issues four loads and their addresses.
template <bool kSplit, class BFn>
__device__ __forceinline__ void mma_tile_rows(float (&acc)[8], const float* A, int lda,
                                              const BFn& B, int m0, int n0, int k0, int k1) {
  const int lane = threadIdx.x & 31, row = lane & 7, block = lane >> 3, g = lane >> 2, t = lane & 3;
  const float* a = A + (m0 + row + 8 * (block & 1)) * lda + 4 * (block >> 1);
  for (int k = k0; k < k1; k += 8) {
    float af[4];
    load_blocks_x4(af, a + k);
    const float bf[4] = {B(k + t, n0 + g), B(k + t + 4, n0 + g), B(k + t, n0 + 8 + g),
                         B(k + t + 4, n0 + 8 + g)};
    mma_step<kSplit>(acc, af, bf);
  }
}

// fn(row, column, entry) over the 8 entries this lane holds of a 16 × 16 tile.
template <class Fn>
__device__ __forceinline__ void for_acc(float (&acc)[8], int m0, int n0, Fn&& fn) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int i = 0; i < 8; ++i)
    fn(m0 + g + 8 * ((i >> 1) & 1), n0 + 8 * (i >> 2) + 2 * t + (i & 1), acc[i]);
}

// fn(row, column, entry, next entry) over the four pairs of neighbouring entries (columns j and
// j + 1, j even) this lane holds of a 16 × 16 tile, for 8-byte stores.
template <class Fn>
__device__ __forceinline__ void for_acc_pairs(const float (&acc)[8], int m0, int n0, Fn&& fn) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int i = 0; i < 8; i += 2)
    fn(m0 + g + 8 * ((i >> 1) & 1), n0 + 8 * (i >> 2) + 2 * t, acc[i], acc[i + 1]);
}

// out[row] += Σ over the tile's columns of fn(row, column, entry). The four lanes of a row sum
// by shuffles first: shared-memory float atomics are compare-and-swap loops, and four lanes on
// one address retry each other. All 32 lanes must call it.
template <class Fn>
__device__ __forceinline__ void add_row_sums(float (&acc)[8], int m0, int n0, float* out, Fn&& fn) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  float s[2] = {0.f, 0.f};
#pragma unroll
  for (int i = 0; i < 8; ++i)
    s[(i >> 1) & 1] += fn(m0 + g + 8 * ((i >> 1) & 1), n0 + 8 * (i >> 2) + 2 * t + (i & 1), acc[i]);
  s[0] = lane_sum(s[0], 4);
  s[1] = lane_sum(s[1], 4);
  if (t == 0) {
    atomicAdd(out + m0 + g, s[0]);
    atomicAdd(out + m0 + g + 8, s[1]);
  }
}

// out[column] += Σ over the tile's rows of fn(row, column, entry); the eight lanes of a column
// sum by shuffles first, as above. All 32 lanes must call it.
template <class Fn>
__device__ __forceinline__ void add_col_sums(float (&acc)[8], int m0, int n0, float* out, Fn&& fn) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  float s[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
  for (int i = 0; i < 8; ++i)
    s[2 * (i >> 2) + (i & 1)] +=
        fn(m0 + g + 8 * ((i >> 1) & 1), n0 + 8 * (i >> 2) + 2 * t + (i & 1), acc[i]);
#pragma unroll
  for (int o = 4; o < 32; o <<= 1)
#pragma unroll
    for (int j = 0; j < 4; ++j) s[j] += __shfl_xor_sync(0xffffffffu, s[j], o);
  if (g == 0)
#pragma unroll
    for (int j = 0; j < 4; ++j) atomicAdd(out + n0 + 8 * (j >> 1) + 2 * t + (j & 1), s[j]);
}

// acc = diag(γ) Q S0ᵀ on the output tile (m0, n0): the start state's part of a chunk's outputs,
// Q a [kL][ldk] tile and S0 the state slice, [rows][ldk], k over [0, dkp).
template <bool kSplit>
__device__ __forceinline__ void start_state_part(float (&acc)[8], const float* Q, const float* S,
                                                 int ldk, int dkp, const float* gamma, int m0,
                                                 int n0) {
#pragma unroll
  for (int i = 0; i < 8; ++i) acc[i] = 0.f;
  mma_tile_abt<kSplit>(acc, Q, ldk, S, ldk, m0, n0, 0, dkp);
  for_acc(acc, m0, n0, [&](int r, int, float& v) { v *= gamma[r]; });
}

__device__ __forceinline__ void zero_tile(float* out, int ld, int m0, int n0) {
  float acc[8];
  for_acc(acc, m0, n0, [&](int r, int c, float&) { out[r * ld + c] = 0.f; });
}

// ---------------------------------------------------------------------------------------------
// Copies global → shared (cp.async); `valid` false writes zeros and reads nothing.

__device__ __forceinline__ void copy4(float* dst, const float* src, bool valid) {
  const uint32_t d = static_cast<uint32_t>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;" ::"r"(d), "l"(src),
               "r"(valid ? 4 : 0));
}

__device__ __forceinline__ void copy16(float* dst, const float* src, bool valid) {
  const uint32_t d = static_cast<uint32_t>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(d), "l"(src),
               "r"(valid ? 16 : 0));
}

__device__ __forceinline__ void copy_commit() { asm volatile("cp.async.commit_group;"); }

template <int kPending>
__device__ __forceinline__ void copy_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(kPending));
}

}  // namespace statelab::cuda::chunkwise::internal
