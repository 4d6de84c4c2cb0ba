// Causal attention on CUDA, twin of kernels/cpu/attention.cpp (RoPE is in rope.cu): it is
// FlashAttention-2 in fp32 FFMA at every precision (exact; several times slower than tensor cores
// on long sequences): 64 × 64 tiles in shared memory, 8 × 4 or 4 × 4 register micro-tiles, online
// softmax, cp.async fetches. Backward gives dQ its own pass per query tile (two extra tile
// products) instead of atomics, so results are deterministic. Heads up to 128 wide, zero-padded to
// 32, 64 or 128. Checked by kernels/selftest/attention.cpp.
#include "kernels/cuda/attention.hpp"

#include <cuda_runtime.h>

#include <climits>
#include <cmath>
#include <cstdint>
#include <string>

namespace statelab::cuda {

namespace {

constexpr int kTile = 64;        // query rows and key rows per tile
constexpr int kLdX = kTile + 4;  // row stride of the P / dS tile (floats)
constexpr int kMaxHead = 128;    // widest head a kernel is instantiated for
constexpr float kLog2e = 1.4426950408889634f;
constexpr unsigned kFullMask = 0xffffffffu;

// kD: head width padded to a multiple of 32, so a tile row stride kD + 4 ≡ 4 (mod 32) banks and
// the 16 rows a half-warp reads as float4 columns fall in distinct banks. kR: rows of a tile per
// thread; a half-warp shares those rows and splits the 64 key columns or the kD output columns.
template <int kD, int kR>
struct Tiling {
  static_assert(kD == 32 || kD == 64 || kD == kMaxHead, "head tiles are 32, 64 or 128 wide");
  static_assert(kR == 4 || kR == 8, "tile_row maps 4 or 8 rows per thread");
  static constexpr int kThreads = 16 * kTile / kR;
  static constexpr int kLd = kD + 4;
  static constexpr int kFloats = kTile * kLd;         // one [64][kD + 4] tile
  static constexpr int kCols = kD / 16;               // output columns per thread
  static constexpr int kVec = kCols < 4 ? kCols : 4;  // contiguous columns per shared-memory load
  static_assert(kThreads >= kTile, "one thread per row loads lse and delta");
};

// Forward streams K and V past a fixed Q; the dQ pass streams K and V past fixed Q and dO; the
// dK/dV pass streams Q, dO, lse and delta past fixed K and V. Each keeps one [64][68] tile for P or
// dS. kStages = 2 double-buffers the streamed tiles, 1 does not (see stream_tile).
template <int kD, int kR>
constexpr size_t fwd_smem_bytes() {
  return sizeof(float) * (5 * Tiling<kD, kR>::kFloats + kTile * kLdX);
}
template <int kD, int kR, int kStages>
constexpr size_t dq_smem_bytes() {
  return sizeof(float) * ((2 + 2 * kStages) * Tiling<kD, kR>::kFloats + kTile * kLdX + 2 * kTile);
}
template <int kD, int kR, int kStages>
constexpr size_t dkdv_smem_bytes() {
  return sizeof(float) *
         ((2 + 2 * kStages) * Tiling<kD, kR>::kFloats + kTile * kLdX + 2 * kStages * kTile);
}
// Blocks of a kernel that fit one sm_90 SM by shared memory (228 KiB, 1 KiB reserved per block).
// The kernels pass it to __launch_bounds__ so that registers never lower that occupancy.
constexpr int resident_blocks(size_t smem_bytes) {
  return smem_bytes + 1024 > 233472 ? 1 : int(233472 / (smem_bytes + 1024));
}
// The largest instantiations must fit the 227 KiB a block may opt into on sm_90.
static_assert(fwd_smem_bytes<kMaxHead, 8>() <= 232448 &&
                  dq_smem_bytes<kMaxHead, 8, 2>() <= 232448 &&
                  dkdv_smem_bytes<kMaxHead, 4, 2>() <= 232448,
              "attention tiles exceed the shared memory of one block");

struct AttentionParams {
  int64_t T = 0, H = 0;
  int Dh = 0;
  bool vec = false;          // Dh % 4 == 0 and every tiled tensor 16-byte aligned: 16-byte copies
  float scale = 0;           // 1/√Dh
  float log2_scale = 0;      // log2(e)/√Dh: scores in base-2 units, for exp2f
  const float* q = nullptr;  // [B, T, H, Dh]
  const float* k = nullptr;  // [B, T, H, Dh]
  const float* v = nullptr;  // [B, T, H, Dh]
  const float* dout = nullptr;  // [B, T, H, Dh]
  float* o = nullptr;           // [B, T, H, Dh] written by forward, read by backward
  float* lse = nullptr;         // [B, T, H]     written by forward, read by backward
  float* delta = nullptr;       // [B, T, H]     rowsum(dO ⊙ O), backward's scratch
  float* dq = nullptr;          // [B, T, H, Dh]
  float* dk = nullptr;          // [B, T, H, Dh]
  float* dv = nullptr;          // [B, T, H, Dh]
};

// Row i of the kR rows a thread owns. The two half-warps of a warp own rows 4 apart, so their
// broadcast reads of a tile row and their scalar writes to the P tile use different banks.
template <int kR>
__device__ __forceinline__ int tile_row(int ty, int i) {
  return (ty >> 1) * (2 * kR) + (ty & 1) * 4 + (i & 3) + 8 * (i >> 2);
}

// Output column c of a thread: kVec contiguous columns per chunk, the 16 threads of a half-warp
// side by side, so a half-warp reads one contiguous stretch of a tile row.
template <int kD>
__device__ __forceinline__ int tile_col(int tx, int c) {
  constexpr int kVec = Tiling<kD, 8>::kVec;
  return (c / kVec) * 16 * kVec + tx * kVec + c % kVec;
}

// Copies global → shared that a source size of 0 turns into zero-fills. 4-byte copies serve any
// head width and pointer offset; 16-byte ones (which bypass L1) need both sides aligned.
__device__ __forceinline__ void copy_async(float* dst, const float* src, bool valid) {
  const unsigned to = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(to), "l"(src),
               "r"(valid ? 4 : 0)
               : "memory");
}
__device__ __forceinline__ void copy_async16(float* dst, const float* src, bool valid) {
  const unsigned to = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(to), "l"(src),
               "r"(valid ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void copy_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
__device__ __forceinline__ void copy_wait() {
  asm volatile("cp.async.wait_group 0;\n" ::: "memory");
}

// Rows row0 … row0 + 63 of one head into a [64][kD + 4] tile, kW floats per copy: a thread copies
// one column group of every kStep-th row. Rows ≥ T and columns ≥ Dh become zeros, which add nothing
// to any product, so no loop below needs a bound. The source pointer advances by addition, so
// nothing per row stays live across the tile loop.
template <int kD, int kThreads, int kW>
__device__ __forceinline__ void load_tile_by(float* tile, const float* head, int64_t row0,
                                             int64_t T, int64_t stride, int Dh) {
  constexpr int kGroups = kD / kW, kStep = kThreads / kGroups;
  static_assert(kThreads % kGroups == 0 && kTile % kStep == 0, "copies split evenly");
  const int r0 = int(threadIdx.x) / kGroups, d = int(threadIdx.x) % kGroups * kW;
  const bool in_head = d < Dh;
  const int64_t rows = T - row0 - r0;  // copy n is inside the sequence while n · kStep < rows
  const float* src = head + (row0 + r0) * stride + d;
  float* dst = tile + r0 * (kD + 4) + d;
#pragma unroll
  for (int n = 0; n < kTile / kStep; ++n) {
    const bool valid = in_head && n * kStep < rows;
    if constexpr (kW == 4)
      copy_async16(dst, valid ? src : head, valid);
    else
      copy_async(dst, valid ? src : head, valid);
    src += kStep * stride;
    dst += kStep * (kD + 4);
  }
}

// With `vec`, Dh is a multiple of 4, so a group of 4 columns is all inside Dh or all outside.
template <int kD, int kThreads>
__device__ __forceinline__ void load_tile(float* tile, const float* head, int64_t row0, int64_t T,
                                          int64_t stride, int Dh, bool vec) {
  if (vec)
    load_tile_by<kD, kThreads, 4>(tile, head, row0, T, stride, Dh);
  else
    load_tile_by<kD, kThreads, 1>(tile, head, row0, T, stride, Dh);
}

// 64 per-row values (lse or delta) of one head of a [B, T, H] tensor; `head` is element (b, 0, h).
__device__ __forceinline__ void load_rows(float* dst, const float* head, int64_t row0, int64_t T,
                                          int64_t H) {
  if (threadIdx.x < kTile) {
    const int64_t t = row0 + threadIdx.x;
    const bool valid = t < T;
    copy_async(dst + threadIdx.x, valid ? head + t * H : head, valid);
  }
}

template <int kVec>
__device__ __forceinline__ void load_vec(const float* p, float* out) {
  if constexpr (kVec == 4) {
    const float4 v = *reinterpret_cast<const float4*>(p);
    out[0] = v.x, out[1] = v.y, out[2] = v.z, out[3] = v.w;
  } else {
    const float2 v = *reinterpret_cast<const float2*>(p);
    out[0] = v.x, out[1] = v.y;
  }
}

// s[i][j] = A[tile_row(i)] · Bt[tx + 16 j] over the kD columns of two [64][kD + 4] tiles.
template <int kD, int kR>
__device__ __forceinline__ void tile_scores(const float* A, const float* Bt, int ty, int tx,
                                            float (&s)[kR][4]) {
  constexpr int kLd = kD + 4;
#pragma unroll
  for (int i = 0; i < kR; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) s[i][j] = 0.f;
#pragma unroll 2
  for (int d = 0; d < kD; d += 4) {
    float4 bt[4];
#pragma unroll
    for (int j = 0; j < 4; ++j)
      bt[j] = *reinterpret_cast<const float4*>(Bt + (tx + 16 * j) * kLd + d);
#pragma unroll
    for (int i = 0; i < kR; ++i) {
      const float4 a = *reinterpret_cast<const float4*>(A + tile_row<kR>(ty, i) * kLd + d);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        s[i][j] = fmaf(a.x, bt[j].x, s[i][j]);
        s[i][j] = fmaf(a.y, bt[j].y, s[i][j]);
        s[i][j] = fmaf(a.z, bt[j].z, s[i][j]);
        s[i][j] = fmaf(a.w, bt[j].w, s[i][j]);
      }
    }
  }
}

// acc[i][c] += Σ_k X[tile_row(i)][k] · M[k][tile_col(c)]: X a [64][68] tile of P or dS, M a
// [64][kD + 4] tile (V, K, dO or Q).
template <int kD, int kR>
__device__ __forceinline__ void tile_accumulate(const float* X, const float* M, int ty, int tx,
                                                float (&acc)[kR][kD / 16]) {
  using Tl = Tiling<kD, kR>;
#pragma unroll 2
  for (int k = 0; k < kTile; k += 4) {
    float x[kR][4];
#pragma unroll
    for (int i = 0; i < kR; ++i) {
      const float4 v = *reinterpret_cast<const float4*>(X + tile_row<kR>(ty, i) * kLdX + k);
      x[i][0] = v.x, x[i][1] = v.y, x[i][2] = v.z, x[i][3] = v.w;
    }
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      float m[Tl::kCols];
#pragma unroll
      for (int n = 0; n < Tl::kCols / Tl::kVec; ++n)
        load_vec<Tl::kVec>(M + (k + kk) * Tl::kLd + n * 16 * Tl::kVec + tx * Tl::kVec,
                           m + n * Tl::kVec);
#pragma unroll
      for (int i = 0; i < kR; ++i)
#pragma unroll
        for (int c = 0; c < Tl::kCols; ++c) acc[i][c] = fmaf(x[i][kk], m[c], acc[i][c]);
    }
  }
}

// Rows row0 + tile_row(i) < T of one head, times mul[i]; columns ≥ Dh are padding, not written.
template <int kD, int kR>
__device__ __forceinline__ void store_rows(float* head, const float (&acc)[kR][kD / 16],
                                           const float (&mul)[kR], int ty, int tx, int64_t row0,
                                           int64_t T, int64_t stride, int Dh) {
#pragma unroll
  for (int i = 0; i < kR; ++i) {
    const int64_t t = row0 + tile_row<kR>(ty, i);
    if (t >= T) continue;
    float* row = head + t * stride;
#pragma unroll
    for (int c = 0; c < kD / 16; ++c) {
      const int e = tile_col<kD>(tx, c);
      if (e < Dh) row[e] = acc[i][c] * mul[i];
    }
  }
}

// The protocol of a streamed operand, called at the top of step j of `steps` with fetch(step,
// stage) issuing the copies of one step's tiles; step 0 was fetched before the loop. Returns the
// stage that holds step j. With two stages, step j + 1 is fetched while step j is in use, after
// the barrier that proves every thread is done with step j − 1 (whose stage it overwrites). With
// one stage, step j is fetched behind that barrier and waited for at once: less shared memory,
// so more blocks per SM hide the wait instead.
template <int kStages, typename Fetch>
__device__ __forceinline__ int stream_tile(int j, int steps, Fetch fetch) {
  static_assert(kStages == 1 || kStages == 2, "one or two stages");
  if (kStages == 1 && j > 0) {
    __syncthreads();
    fetch(j, 0);
    copy_commit();
  }
  copy_wait();
  __syncthreads();
  if (kStages == 2 && j + 1 < steps) {
    fetch(j + 1, (j + 1) & 1);
    copy_commit();
  }
  return kStages == 2 ? j & 1 : 0;
}

__device__ __forceinline__ float half_warp_max(float x) {
#pragma unroll
  for (int off = 8; off >= 1; off /= 2) x = fmaxf(x, __shfl_xor_sync(kFullMask, x, off));
  return x;
}
__device__ __forceinline__ float half_warp_sum(float x) {
#pragma unroll
  for (int off = 8; off >= 1; off /= 2) x += __shfl_xor_sync(kFullMask, x, off);
  return x;
}

// One block per (b·H + h, query tile), heaviest tiles (most keys) first. Key tiles 0 … qt pass
// through a double buffer; only the last one straddles the diagonal and is masked. Key 0 is in
// every row's first tile, so the running maximum is finite from the first tile on and exp2f of a
// masked −∞ is exactly 0.
template <int kD, int kR>
__global__ void __launch_bounds__(Tiling<kD, kR>::kThreads,
                                  resident_blocks(fwd_smem_bytes<kD, kR>()))
    attention_fwd_kernel(const AttentionParams p) {
  using Tl = Tiling<kD, kR>;
  extern __shared__ float4 smem_fwd[];
  float* const sq = reinterpret_cast<float*>(smem_fwd);  // [64][kD + 4]
  float* const sk = sq + Tl::kFloats;                    // [2][64][kD + 4]
  float* const sv = sk + 2 * Tl::kFloats;                // [2][64][kD + 4]
  float* const sp = sv + 2 * Tl::kFloats;                // [64][68]

  const int ty = int(threadIdx.x) / 16, tx = int(threadIdx.x) % 16;
  const int64_t b = blockIdx.x / p.H, h = blockIdx.x % p.H;
  const int qt = int(gridDim.y - 1 - blockIdx.y);
  const int64_t q0 = int64_t(qt) * kTile, stride = p.H * p.Dh;
  const int64_t head = (b * p.T * p.H + h) * p.Dh;

  load_tile<kD, Tl::kThreads>(sq, p.q + head, q0, p.T, stride, p.Dh, p.vec);
  load_tile<kD, Tl::kThreads>(sk, p.k + head, 0, p.T, stride, p.Dh, p.vec);
  load_tile<kD, Tl::kThreads>(sv, p.v + head, 0, p.T, stride, p.Dh, p.vec);
  copy_commit();

  float acc[kR][Tl::kCols], m[kR], l[kR];
#pragma unroll
  for (int i = 0; i < kR; ++i) {
    m[i] = -INFINITY;
    l[i] = 0.f;
#pragma unroll
    for (int c = 0; c < Tl::kCols; ++c) acc[i][c] = 0.f;
  }

  const auto fetch = [&](int step, int stage) {
    const int64_t k0 = int64_t(step) * kTile;
    load_tile<kD, Tl::kThreads>(sk + stage * Tl::kFloats, p.k + head, k0, p.T, stride, p.Dh, p.vec);
    load_tile<kD, Tl::kThreads>(sv + stage * Tl::kFloats, p.v + head, k0, p.T, stride, p.Dh, p.vec);
  };
  for (int j = 0; j <= qt; ++j) {
    // Behind this barrier every thread is done with tile j − 1, so P may be overwritten too.
    const int st = stream_tile<2>(j, qt + 1, fetch);
    const float* const kj = sk + st * Tl::kFloats;
    const float* const vj = sv + st * Tl::kFloats;

    float s[kR][4];
    tile_scores<kD, kR>(sq, kj, ty, tx, s);
#pragma unroll
    for (int i = 0; i < kR; ++i) {
      const int r = tile_row<kR>(ty, i);
      if (j == qt) {
#pragma unroll
        for (int jj = 0; jj < 4; ++jj)
          if (tx + 16 * jj > r) s[i][jj] = -INFINITY;
      }
      const float mx = half_warp_max(fmaxf(fmaxf(s[i][0], s[i][1]), fmaxf(s[i][2], s[i][3])));
      const float m_new = fmaxf(m[i], mx);
      const float alpha = exp2f((m[i] - m_new) * p.log2_scale);
      const float shift = m_new * p.log2_scale;
      m[i] = m_new;
      // Each thread keeps a partial row sum over its own columns; every term of it was scaled by
      // the same alpha, so one reduction at the end gives the row's sum.
      l[i] *= alpha;
#pragma unroll
      for (int c = 0; c < Tl::kCols; ++c) acc[i][c] *= alpha;
#pragma unroll
      for (int jj = 0; jj < 4; ++jj) {
        const float e = exp2f(fmaf(s[i][jj], p.log2_scale, -shift));
        l[i] += e;
        sp[r * kLdX + tx + 16 * jj] = e;
      }
    }
    __syncthreads();
    tile_accumulate<kD, kR>(sp, vj, ty, tx, acc);
  }

  float inv[kR];
#pragma unroll
  for (int i = 0; i < kR; ++i) {
    const float sum = half_warp_sum(l[i]);
    inv[i] = 1.f / sum;
    const int64_t t = q0 + tile_row<kR>(ty, i);
    if (tx == 0 && t < p.T) p.lse[(b * p.T + t) * p.H + h] = m[i] * p.scale + logf(sum);
  }
  store_rows<kD, kR>(p.o + head, acc, inv, ty, tx, q0, p.T, stride, p.Dh);
}

// delta = rowsum(dO ⊙ O) for every (b, t, h): one warp per row.
constexpr int kDeltaThreads = 256;
__global__ void __launch_bounds__(kDeltaThreads)
    attention_bwd_delta_kernel(const AttentionParams p, int64_t rows) {
  const int64_t row = int64_t(blockIdx.x) * (kDeltaThreads / 32) + threadIdx.x / 32;
  const int lane = int(threadIdx.x) % 32;
  if (row >= rows) return;  // whole warps leave together
  const float* o = p.o + row * p.Dh;
  const float* g = p.dout + row * p.Dh;
  float sum = 0.f;
  for (int e = lane; e < p.Dh; e += 32) sum = fmaf(o[e], g[e], sum);
#pragma unroll
  for (int off = 16; off >= 1; off /= 2) sum += __shfl_xor_sync(kFullMask, sum, off);
  if (lane == 0) p.delta[row] = sum;
}

// dQ = dS K per (b·H + h, query tile), key tiles streamed as in forward:
// P = exp(S/√Dh − lse), dS = P ⊙ (dO Vᵀ − delta) / √Dh. Rows ≥ T see zero Q, dO, lse and delta,
// stay finite and are not written.
template <int kD, int kR, int kStages>
__global__ void __launch_bounds__(Tiling<kD, kR>::kThreads,
                                  resident_blocks(dq_smem_bytes<kD, kR, kStages>()))
    attention_bwd_dq_kernel(const AttentionParams p) {
  using Tl = Tiling<kD, kR>;
  extern __shared__ float4 smem_dq[];
  float* const sq = reinterpret_cast<float*>(smem_dq);  // [64][kD + 4]
  float* const sdo = sq + Tl::kFloats;                  // [64][kD + 4]
  float* const sk = sdo + Tl::kFloats;                  // [kStages][64][kD + 4]
  float* const sv = sk + kStages * Tl::kFloats;         // [kStages][64][kD + 4]
  float* const sx = sv + kStages * Tl::kFloats;         // [64][68] dS
  float* const slse = sx + kTile * kLdX;                // [64]
  float* const sdelta = slse + kTile;                   // [64]

  const int ty = int(threadIdx.x) / 16, tx = int(threadIdx.x) % 16;
  const int64_t b = blockIdx.x / p.H, h = blockIdx.x % p.H;
  const int qt = int(gridDim.y - 1 - blockIdx.y);
  const int64_t q0 = int64_t(qt) * kTile, stride = p.H * p.Dh;
  const int64_t head = (b * p.T * p.H + h) * p.Dh, rows = b * p.T * p.H + h;

  load_tile<kD, Tl::kThreads>(sq, p.q + head, q0, p.T, stride, p.Dh, p.vec);
  load_tile<kD, Tl::kThreads>(sdo, p.dout + head, q0, p.T, stride, p.Dh, p.vec);
  load_rows(slse, p.lse + rows, q0, p.T, p.H);
  load_rows(sdelta, p.delta + rows, q0, p.T, p.H);
  load_tile<kD, Tl::kThreads>(sk, p.k + head, 0, p.T, stride, p.Dh, p.vec);
  load_tile<kD, Tl::kThreads>(sv, p.v + head, 0, p.T, stride, p.Dh, p.vec);
  copy_commit();

  float acc[kR][Tl::kCols];
#pragma unroll
  for (int i = 0; i < kR; ++i)
#pragma unroll
    for (int c = 0; c < Tl::kCols; ++c) acc[i][c] = 0.f;

  const auto fetch = [&](int step, int stage) {
    const int64_t k0 = int64_t(step) * kTile;
    load_tile<kD, Tl::kThreads>(sk + stage * Tl::kFloats, p.k + head, k0, p.T, stride, p.Dh, p.vec);
    load_tile<kD, Tl::kThreads>(sv + stage * Tl::kFloats, p.v + head, k0, p.T, stride, p.Dh, p.vec);
  };
  for (int j = 0; j <= qt; ++j) {
    const int st = stream_tile<kStages>(j, qt + 1, fetch);
    const float* const kj = sk + st * Tl::kFloats;
    const float* const vj = sv + st * Tl::kFloats;

    float s[kR][4], dp[kR][4];
    tile_scores<kD, kR>(sq, kj, ty, tx, s);
    tile_scores<kD, kR>(sdo, vj, ty, tx, dp);
#pragma unroll
    for (int i = 0; i < kR; ++i) {
      const int r = tile_row<kR>(ty, i);
      const float shift = slse[r] * kLog2e, d = sdelta[r];
#pragma unroll
      for (int jj = 0; jj < 4; ++jj) {
        const int c = tx + 16 * jj;
        const float pr = (j < qt || c <= r) ? exp2f(fmaf(s[i][jj], p.log2_scale, -shift)) : 0.f;
        sx[r * kLdX + c] = pr * (dp[i][jj] - d) * p.scale;
      }
    }
    __syncthreads();
    tile_accumulate<kD, kR>(sx, kj, ty, tx, acc);
  }

  float one[kR];
#pragma unroll
  for (int i = 0; i < kR; ++i) one[i] = 1.f;
  store_rows<kD, kR>(p.dq + head, acc, one, ty, tx, q0, p.T, stride, p.Dh);
}

// dV = Pᵀ dO and dK = dSᵀ Q per (b·H + h, key tile), query tiles kt … last streamed with their
// lse and delta. The block works on transposed tiles (rows = keys), so the products are the same
// two helpers as forward. Pᵀ and dSᵀ take turns in one tile buffer, which keeps the 128-wide
// instantiation inside one block's shared memory. Queries ≥ T and above the diagonal are masked
// to P = 0, hence dS = 0. Two accumulators need more than the 168 registers three resident
// blocks would leave, so the 32-wide instantiation runs two blocks per SM, not three.
template <int kD, int kR, int kStages>
__global__ void __launch_bounds__(Tiling<kD, kR>::kThreads,
                                  resident_blocks(dkdv_smem_bytes<kD, kR, kStages>()) < 2 ? 1 : 2)
    attention_bwd_dkdv_kernel(const AttentionParams p) {
  using Tl = Tiling<kD, kR>;
  extern __shared__ float4 smem_dkdv[];
  float* const sk = reinterpret_cast<float*>(smem_dkdv);  // [64][kD + 4]
  float* const sv = sk + Tl::kFloats;                     // [64][kD + 4]
  float* const sq = sv + Tl::kFloats;                     // [kStages][64][kD + 4]
  float* const sdo = sq + kStages * Tl::kFloats;          // [kStages][64][kD + 4]
  float* const sx = sdo + kStages * Tl::kFloats;          // [64][68] Pᵀ, then dSᵀ
  float* const slse = sx + kTile * kLdX;                  // [kStages][64]
  float* const sdelta = slse + kStages * kTile;           // [kStages][64]

  const int ty = int(threadIdx.x) / 16, tx = int(threadIdx.x) % 16;
  const int64_t b = blockIdx.x / p.H, h = blockIdx.x % p.H;
  const int kt = int(blockIdx.y), tiles = int(gridDim.y);
  const int64_t k0 = int64_t(kt) * kTile, stride = p.H * p.Dh;
  const int64_t head = (b * p.T * p.H + h) * p.Dh, rows = b * p.T * p.H + h;

  load_tile<kD, Tl::kThreads>(sk, p.k + head, k0, p.T, stride, p.Dh, p.vec);
  load_tile<kD, Tl::kThreads>(sv, p.v + head, k0, p.T, stride, p.Dh, p.vec);
  load_tile<kD, Tl::kThreads>(sq, p.q + head, k0, p.T, stride, p.Dh, p.vec);
  load_tile<kD, Tl::kThreads>(sdo, p.dout + head, k0, p.T, stride, p.Dh, p.vec);
  load_rows(slse, p.lse + rows, k0, p.T, p.H);
  load_rows(sdelta, p.delta + rows, k0, p.T, p.H);
  copy_commit();

  float dk[kR][Tl::kCols], dv[kR][Tl::kCols];
#pragma unroll
  for (int i = 0; i < kR; ++i)
#pragma unroll
    for (int c = 0; c < Tl::kCols; ++c) dk[i][c] = dv[i][c] = 0.f;

  // Step j is query tile kt + j.
  const auto fetch = [&](int step, int stage) {
    const int64_t q0 = int64_t(kt + step) * kTile;
    load_tile<kD, Tl::kThreads>(sq + stage * Tl::kFloats, p.q + head, q0, p.T, stride, p.Dh, p.vec);
    load_tile<kD, Tl::kThreads>(sdo + stage * Tl::kFloats, p.dout + head, q0, p.T, stride, p.Dh,
                                p.vec);
    load_rows(slse + stage * kTile, p.lse + rows, q0, p.T, p.H);
    load_rows(sdelta + stage * kTile, p.delta + rows, q0, p.T, p.H);
  };
  for (int qi = kt; qi < tiles; ++qi) {
    const int st = stream_tile<kStages>(qi - kt, tiles - kt, fetch);
    const float* const qs = sq + st * Tl::kFloats;
    const float* const dos = sdo + st * Tl::kFloats;
    const float* const ls = slse + st * kTile;
    const float* const ds = sdelta + st * kTile;
    const int64_t q0 = int64_t(qi) * kTile;

    float s[kR][4], dp[kR][4];
    tile_scores<kD, kR>(sk, qs, ty, tx, s);
    tile_scores<kD, kR>(sv, dos, ty, tx, dp);
    float shift[4], d[4];
    bool in_range[4];
#pragma unroll
    for (int jj = 0; jj < 4; ++jj) {
      const int c = tx + 16 * jj;
      shift[jj] = ls[c] * kLog2e;
      d[jj] = ds[c];
      in_range[jj] = q0 + c < p.T;
    }
#pragma unroll
    for (int i = 0; i < kR; ++i) {
      const int r = tile_row<kR>(ty, i);
#pragma unroll
      for (int jj = 0; jj < 4; ++jj) {
        const int c = tx + 16 * jj;
        const bool keep = in_range[jj] && (qi > kt || c >= r);
        const float pr = keep ? exp2f(fmaf(s[i][jj], p.log2_scale, -shift[jj])) : 0.f;
        dp[i][jj] = pr * (dp[i][jj] - d[jj]) * p.scale;
        sx[r * kLdX + c] = pr;
      }
    }
    __syncthreads();
    tile_accumulate<kD, kR>(sx, dos, ty, tx, dv);
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kR; ++i) {
      const int r = tile_row<kR>(ty, i);
#pragma unroll
      for (int jj = 0; jj < 4; ++jj) sx[r * kLdX + tx + 16 * jj] = dp[i][jj];
    }
    __syncthreads();
    tile_accumulate<kD, kR>(sx, qs, ty, tx, dk);
  }

  float one[kR];
#pragma unroll
  for (int i = 0; i < kR; ++i) one[i] = 1.f;
  store_rows<kD, kR>(p.dk + head, dk, one, ty, tx, k0, p.T, stride, p.Dh);
  store_rows<kD, kR>(p.dv + head, dv, one, ty, tx, k0, p.T, stride, p.Dh);
}

// Padded head width of the instantiation that serves Dh.
int head_tile(int64_t Dh) { return Dh <= 32 ? 32 : Dh <= 64 ? 64 : kMaxHead; }

bool aligned16(const float* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

AttentionParams check_attention(const cpu::CausalAttention<float>& a) {
  SL_CHECK_SHAPE(a.B >= 1 && a.T >= 1 && a.H >= 1 && a.Dh >= 1,
                 "attention: empty shape B=" + std::to_string(a.B) + " T=" + std::to_string(a.T) +
                     " H=" + std::to_string(a.H) + " Dh=" + std::to_string(a.Dh));
  SL_CHECK_SHAPE(a.Dh <= kMaxHead, "attention on CUDA supports heads up to " +
                                       std::to_string(kMaxHead) +
                                       " wide, got Dh = " + std::to_string(a.Dh));
  SL_CHECK_SHAPE(a.B * a.H <= INT_MAX && (a.T + kTile - 1) / kTile <= 65535,
                 "attention: B·H = " + std::to_string(a.B * a.H) +
                     " or T = " + std::to_string(a.T) + " too large for one grid");
  SL_CHECK(a.q && a.k && a.v && a.o && a.lse, "attention: missing tensor");
  AttentionParams p;
  p.T = a.T, p.H = a.H, p.Dh = int(a.Dh);
  p.scale = float(1.0 / std::sqrt(double(a.Dh)));
  p.log2_scale = float(1.4426950408889634 / std::sqrt(double(a.Dh)));
  p.q = a.q, p.k = a.k, p.v = a.v, p.o = a.o, p.lse = a.lse;
  p.vec = a.Dh % 4 == 0 && aligned16(a.q) && aligned16(a.k) && aligned16(a.v);
  return p;
}

// cudaFuncSetAttribute is a property of the function, not a stream operation, so it is allowed
// while a graph is being captured.
template <typename Kernel>
void launch(const Context& ctx, Kernel kernel, dim3 grid, int threads, size_t smem,
            const AttentionParams& p) {
  SL_CHECK(smem <= ctx.max_shared_per_block,
           "attention needs " + std::to_string(smem) + " bytes of shared memory per block, the " +
               "device allows " + std::to_string(ctx.max_shared_per_block));
  SL_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  kernel<<<grid, threads, smem, ctx.stream>>>(p);
  SL_CUDA_LAUNCH_CHECK();
}

// Rows per thread: 8 gives the better ratio of FFMA to shared-memory loads; the 128-wide dK/dV
// pass holds two accumulators of 8 × 8 and uses 4 rows so they stay in registers.
// Stages: the 64-wide backward passes need about 120 KB double-buffered, one block per SM; single-
// buffered they need 87 KB and two blocks fit, which hides more latency than the prefetch does.
// At 32 wide three blocks fit either way, at 128 only one.
template <int kD>
void launch_fwd(const Context& ctx, const AttentionParams& p, dim3 grid) {
  constexpr int kR = 8;
  launch(ctx, attention_fwd_kernel<kD, kR>, grid, Tiling<kD, kR>::kThreads,
         fwd_smem_bytes<kD, kR>(), p);
}
template <int kD>
void launch_bwd(const Context& ctx, const AttentionParams& p, dim3 grid) {
  constexpr int kRq = 8, kRkv = kD == kMaxHead ? 4 : 8, kStages = kD == 64 ? 1 : 2;
  launch(ctx, attention_bwd_dkdv_kernel<kD, kRkv, kStages>, grid, Tiling<kD, kRkv>::kThreads,
         dkdv_smem_bytes<kD, kRkv, kStages>(), p);
  launch(ctx, attention_bwd_dq_kernel<kD, kRq, kStages>, grid, Tiling<kD, kRq>::kThreads,
         dq_smem_bytes<kD, kRq, kStages>(), p);
}

}  // namespace

void causal_attention_fwd(const Context& ctx, const cpu::CausalAttention<float>& a) {
  const AttentionParams p = check_attention(a);
  const dim3 grid(unsigned(a.B * a.H), unsigned((a.T + kTile - 1) / kTile));
  switch (head_tile(a.Dh)) {
    case 32:
      launch_fwd<32>(ctx, p, grid);
      break;
    case 64:
      launch_fwd<64>(ctx, p, grid);
      break;
    default:
      launch_fwd<kMaxHead>(ctx, p, grid);
      break;
  }
}

int64_t causal_attention_work_size(int64_t B, int64_t T, int64_t H) { return B * T * H; }

void causal_attention_bwd(const Context& ctx, const cpu::CausalAttention<float>& a,
                          const float* dout, float* dq, float* dk, float* dv, float* work) {
  AttentionParams p = check_attention(a);
  SL_CHECK(dout && dq && dk && dv && work, "attention backward: missing tensor");
  p.dout = dout, p.delta = work, p.dq = dq, p.dk = dk, p.dv = dv;
  p.vec = p.vec && aligned16(dout);
  const int64_t rows = a.B * a.T * a.H;
  constexpr int kRowsPerBlock = kDeltaThreads / 32;
  const int64_t blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
  SL_CHECK_SHAPE(blocks <= INT_MAX, "attention: B·T·H too large for one grid");
  attention_bwd_delta_kernel<<<unsigned(blocks), kDeltaThreads, 0, ctx.stream>>>(p, rows);
  SL_CUDA_LAUNCH_CHECK();
  const dim3 grid(unsigned(a.B * a.H), unsigned((a.T + kTile - 1) / kTile));
  switch (head_tile(a.Dh)) {
    case 32:
      launch_bwd<32>(ctx, p, grid);
      break;
    case 64:
      launch_bwd<64>(ctx, p, grid);
      break;
    default:
      launch_bwd<kMaxHead>(ctx, p, grid);
      break;
  }
}

}  // namespace statelab::cuda
