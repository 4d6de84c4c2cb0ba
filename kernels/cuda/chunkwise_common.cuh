// What the chunkwise linear recurrence's translation units share: the tile geometry and limits,
// the kernels' parameters and shared-memory layout, a chunk's loads and the boundary-state slots,
// the decays, and on the host the planning of a launch. The delta rule's triangular inverse has
// its own header, chunkwise_inverse.cuh.
// The kernels: forward (linear_recurrence_chunkwise.cu), backward (_bwd.cu) and the chunk-parallel
// forward's first steps (linear_recurrence_chunk_parallel.cu).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include "kernels/cuda/chunkwise_tiles.cuh"
#include "kernels/cuda/linear_recurrence_chunkwise.hpp"

namespace statelab::cuda::chunkwise::internal {

constexpr int kL = 64;  // steps per chunk tile; a shorter chunk is padded with identity steps
constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kLdL = kL + 4;  // ≡ 4 (mod 8): fragment reads of a row-major tile hit 32 banks
constexpr int kMinChunk = 16;
constexpr int kMaxDk = 128, kMaxDv = 256, kMaxNv = 64;
constexpr int kScratchLd = 36;             // the 32 × 32 block of the triangular inverse
constexpr size_t kSmemLimit = 227 * 1024;  // sm_90's opt-in shared memory per block
constexpr int kStateTiles = (kMaxNv / 16) * (kMaxDk / 16) / kWarps;  // state tiles per warp
static_assert(kL == 64 && kThreads == 4 * kL, "row loops give each row four threads");
static_assert(kL % 16 == 0 && kLdL % 8 == 4, "16 × 16 warp tiles over conflict-free rows");
static_assert(kStateTiles * kWarps * 256 == kMaxNv * kMaxDk,
              "the widest state slice in 16 × 16 tiles");

// Per-chunk vectors of kL entries in shared memory; the forward's come first.
enum Vector {
  kGamma,   // γ_t = Π_{l≤t} a_l
  kRho,     // Π of a over t's 16-block up to t
  kSigma,   // Π of a over j's 16-block after j
  kZsum,    // Σ_j M_tj c_j
  kQn0,     // q_t · n0
  kRdot,    // dy_t · (S_t q_t) over all value columns (backward)
  kKnu,     // k_t · ν_end
  kInvDen,  // 1 / divisor
  kDz,      // ∂L/∂(nᵀq)
  kX,       // do_t · (S0 q_t) (+ dz_t q_t·n0)
  kW,       // b_t g_t · (S0 k_t)
  kZz,      // u_j · (G_end k_j) (+ c_j k_j·ν_end)
  kGh,      // g_t · h_t, h_t = S_{t−1} k_t
  kDc,      // ∂L/∂c_t
  kT4,      // the decay gradient's pair term
  kScalar,  // [0]: ⟨G_end, S0⟩ + ν_end·n0
  kVectors
};
constexpr int kForwardVectors = kQn0 + 1;

struct In {  // a strided [B, T, H, width] input, as cpu::Rows
  const float* p;
  int64_t row, head;
  bool vec4;  // 16-byte copies allowed
};
struct Out {
  float* p;
  int64_t row, head;
  bool pairs;  // 8-byte stores of two neighbouring columns allowed from any even column
};

struct Params {
  int B, T, H, Dk, Dv, chunk, nchunks;
  int nv;         // value columns per CTA: 16, 32 or 64 (zero-padded past Dv)
  int dkp;        // Dk rounded up to 16 (zero-padded)
  int stages;     // forward: 2 = the next chunk's inputs are copied in during this one
  int dot_tiles;  // value slices of the normalizer partials in work
  int head_group;  // chunk state and outputs: heads a CTA takes (1, or more where k, q are shared)
  // ⌊2^24 / Dv⌋ + 1: for 0 <= i < 2^14 and Dv <= 256, (i · dv_inverse) >> 24 is i / Dv exactly
  // (it exceeds i / Dv by less than 2^-10, and i / Dv's fraction is at most 1 − 2^-8).
  uint32_t dv_inverse;
  bool delta, normalized;
  bool dot_mode;    // outputs kernel: write dy·(S q) partials into work instead of y
  bool state_vec4;  // boundary slots allow 16-byte copies (Dk a multiple of 4, aligned)
  bool state_pairs;  // boundary slots and the final state allow 8-byte stores from even columns
  float eps;
  In q, k, v, dy;
  const float *a, *b, *c, *floor;
  Out y;
  float *boundary, *final_state;
  Out dq, dk, dv;
  float *da, *db, *dc, *dfloor;
  // Backward: the normalizer partials. The delta rule's chunk-parallel forward: every chunk's
  // triangular inverse but the last's (inverse_slot), or null where the outputs solve their own.
  float* work;
};

// Hands out shared-memory offsets in floats, each a multiple of 4 (16-byte copies).
struct Offsets {
  int at = 0;
  __host__ __device__ int take(int n) {
    const int o = at;
    at += (n + 3) & ~3;
    return o;
  }
};

// Shared-memory offsets of the forward and backward kernels.
struct Layout {
  int ldk, ldv;  // leading dimensions of the [·, Dk] and [·, nv] tiles, ≡ 4 (mod 8)
  int stage;     // floats of one copy stage (q, k, v, dy, gates)
  int q, k, v, dy, gates;
  int s, n, g, nu;
  int D, M, KK, A, Tinv, P1, P2, scratch;
  int U, KS, RHS, X, Gm;
  int d_last;  // forward with a delta term: D's last row, kept aside when D is folded away
  int vec;
  int total;
};

__host__ __device__ inline Layout make_layout(const Params& p, bool backward) {
  Layout l{};
  l.ldk = p.dkp + 4;
  l.ldv = p.nv + 4;
  Offsets o;
  const int tile_k = kL * l.ldk, tile_v = kL * l.ldv, square = kL * kLdL;
  l.q = o.take(tile_k);
  l.k = o.take(tile_k);
  l.v = o.take(tile_v);
  l.dy = backward ? o.take(tile_v) : -1;
  l.gates = o.take(4 * kL);
  l.stage = o.at;
  if (!backward && p.stages == 2) o.at += l.stage;
  l.s = o.take(p.nv * l.ldk);
  l.n = o.take(p.dkp);
  l.g = backward ? o.take(p.nv * l.ldk) : -1;
  l.nu = backward ? o.take(p.dkp) : -1;
  l.D = o.take(square);
  l.M = o.take(square);  // backward keeps Q Kᵀ unmasked here
  // The forward reads c ⊙ V without a delta; with one, it folds D into Q Kᵀ before the inverse's
  // levels, so their scratch and then U (at most a square) take D's place.
  l.U = backward ? o.take(tile_v) : p.delta ? l.D : -1;
  l.KK = l.A = l.Tinv = l.P1 = l.P2 = l.scratch = l.KS = l.RHS = l.X = l.Gm = l.d_last = -1;
  if (backward) {
    l.P1 = o.take(square);
    l.scratch = l.P1;  // the inverse's scratch is dead before P1 is written
    l.Gm = o.take(tile_v);
  }
  if (p.delta) {
    l.A = backward ? o.take(square) : -1;
    l.Tinv = o.take(square);
    l.RHS = o.take(tile_v);
    l.KK = o.take(square);
    if (backward) {
      l.P2 = l.A;  // A is dead once the inverse is built
      l.KS = o.take(tile_v);
      l.X = l.RHS;  // RHS is dead once U is solved
    } else {
      // A = b D ⊙ K Kᵀ overwrites the lower blocks of K Kᵀ in place; the inverse's diagonal
      // blocks read K Kᵀ's own, which stay. The forward keeps K S0ᵀ in the RHS slot.
      l.A = l.KK;
      l.scratch = l.D;
      l.d_last = o.take(kL);
    }
  }
  l.vec = o.take((backward ? kVectors : kForwardVectors) * kL);
  l.total = o.at;
  return l;
}

// The rows and column group of a rows × cols tile that this thread copies in copy_rows.
struct RowCopies {
  int r0, col, rows_per_pass;  // first row, first column, row step
  bool active;                 // false: a thread past the last column group
};

__device__ __forceinline__ RowCopies row_copies(int cols, bool vec4) {
  const int width = vec4 ? 4 : 1, per_row = vec4 ? cols >> 2 : cols;
  const int shift = 32 - __clz(per_row - 1);  // ⌈log2 per_row⌉
  const int col = (threadIdx.x & ((1 << shift) - 1)) * width;
  return {int(threadIdx.x >> shift), col, int(blockDim.x >> shift), col < cols};
}

// rows × cols floats into dst (leading dimension ld) from src (row stride `stride` floats):
// entries past valid_rows or valid_cols are zero and read nothing. Each thread keeps one column
// group and steps through the rows, so the source address only advances; vec4 copies 16 bytes at
// a time (cols, valid_cols, stride and src multiples of 4). A row's copies take a power of two of
// threads (the extra ones idle), so that a thread's row and column come by shifts: the divisions
// by run-time widths they replace were about 190 of the 680 instructions a warp of the outputs
// kernel ran before its first barrier. blockDim.x is a power of two of at least 128.
__device__ inline void copy_rows(float* dst, int ld, int rows, int cols, const float* src,
                                 int64_t stride, int valid_rows, int valid_cols, bool vec4,
                                 const float* any_valid) {
  const RowCopies my = row_copies(cols, vec4);
  if (!my.active) return;
  const bool col_valid = my.col < valid_cols;
  const float* from = src + my.r0 * stride + my.col;
  const int64_t step = my.rows_per_pass * stride;
  for (int r = my.r0; r < rows; r += my.rows_per_pass, from += step) {
    const bool valid = col_valid && r < valid_rows;
    if (vec4)
      copy16(dst + r * ld + my.col, valid ? from : any_valid, valid);
    else
      copy4(dst + r * ld + my.col, valid ? from : any_valid, valid);
  }
}

// The entries copy_rows (same rows, cols and vec4) had this thread copy, times scale(row) and
// rounded to TF32 in place. Right after copy_wait a thread sees its own copies, so no barrier
// comes between; after a barrier any mapping would do.
template <class Scale>
__device__ inline void round_rows(float* dst, int ld, int rows, int cols, bool vec4,
                                  const Scale& scale) {
  const RowCopies my = row_copies(cols, vec4);
  if (!my.active) return;
  for (int r = my.r0; r < rows; r += my.rows_per_pass) {
    float* at = dst + r * ld + my.col;
    const float s = scale(r);
    if (vec4) {
      const float4 x = *reinterpret_cast<const float4*>(at);
      *reinterpret_cast<float4*>(at) = make_float4(tf32_value(x.x * s), tf32_value(x.y * s),
                                                   tf32_value(x.z * s), tf32_value(x.w * s));
    } else {
      *at = tf32_value(*at * s);
    }
  }
}

// Steps t0 .. t0+len−1 of (b, h), columns c0 .. c0+width−1 of `in`, into a kL × cols tile
// (leading dimension ld); rows past len and columns past width are zero.
__device__ inline void load_tile(float* dst, int ld, int cols, const In& in, int64_t token0, int h,
                                 int len, int c0, int width) {
  copy_rows(dst, ld, kL, cols, in.p + token0 * in.row + h * in.head + c0, in.row, len, width,
            in.vec4, in.p);
}

// A tile that load_tile copied (the same cols and input), rounded as round_rows does.
__device__ inline void round_tile(float* dst, int ld, int cols, const In& in) {
  round_rows(dst, ld, kL, cols, in.vec4, [](int) { return 1.f; });
}

// a, b, c, floor of the chunk; padding steps are identities (a = 1, b = c = 0) with floor 1,
// so every "last step" quantity can be read at row kL − 1.
__device__ inline void load_gates(float* gates, const Params& p, int bb, int h, int t0, int len) {
  const int r = threadIdx.x;
  if (r >= kL) return;
  float *a = gates, *b = gates + kL, *c = gates + 2 * kL, *f = gates + 3 * kL;
  if (r < len) {
    const int64_t i = (int64_t(bb) * p.T + t0 + r) * p.H + h;
    copy4(a + r, p.a + i, true);
    copy4(c + r, p.c + i, true);
    if (p.delta)
      copy4(b + r, p.b + i, true);
    else
      b[r] = 0.f;
    if (p.normalized)
      copy4(f + r, p.floor + i, true);
    else
      f[r] = 1.f;
  } else {
    a[r] = 1.f;
    b[r] = 0.f;
    c[r] = 0.f;
    f[r] = 1.f;
  }
}

__host__ __device__ __forceinline__ int64_t state_size(const Params& p) {
  return int64_t(p.Dv) * p.Dk + (p.normalized ? p.Dk : 0);
}

// The boundary slot holding the state at the start of chunk c >= 1.
__device__ __forceinline__ float* boundary_slot(const Params& p, int bb, int h, int c) {
  return p.boundary + ((int64_t(bb) * p.H + h) * (p.nchunks - 1) + (c - 1)) * state_size(p);
}

// Rows v0 .. v0+nv−1 of the state at the start of chunk c (zeros for c = 0) and n.
__device__ inline void load_state(const Params& p, float* S, int ld, float* n, int bb, int h, int c,
                                  int v0) {
  const float* slot = c > 0 ? boundary_slot(p, bb, h, c) : nullptr;
  copy_rows(S, ld, p.nv, p.dkp, slot ? slot + int64_t(v0) * p.Dk : p.a, p.Dk,
            slot ? p.Dv - v0 : 0, p.Dk, p.state_vec4, p.a);
  if (p.normalized)
    for (int col = threadIdx.x; col < p.dkp; col += blockDim.x) {
      const bool valid = slot && col < p.Dk;
      copy4(n + col, valid ? slot + int64_t(p.Dv) * p.Dk + col : p.a, valid);
    }
}

__device__ inline void store_state(const Params& p, float* slot, const float* S, int ld,
                                   const float* n, int v0, int nvalid, bool with_n) {
  const int rows_per_pass = blockDim.x / p.Dk, r0 = threadIdx.x / p.Dk, col = threadIdx.x % p.Dk;
  if (r0 < rows_per_pass)
    for (int r = r0; r < nvalid; r += rows_per_pass)
      slot[int64_t(v0 + r) * p.Dk + col] = S[r * ld + col];
  if (with_n)
    for (int col = threadIdx.x; col < p.Dk; col += blockDim.x)
      slot[int64_t(p.Dv) * p.Dk + col] = n[col];
}

// e0 and e1 into at[0] and at[1], the columns j and j + 1 of a row `width` wide (those past it
// dropped): one 8-byte store where `pairs` allows it and both fit, so that a warp's store fills
// whole 32-byte sectors instead of every other 4 bytes of them.
__device__ __forceinline__ void store_pair(float* at, float e0, float e1, int j, int width,
                                           bool pairs) {
  if (pairs && j + 1 < width) {
    *reinterpret_cast<float2*>(at) = make_float2(e0, e1);
    return;
  }
  if (j < width) at[0] = e0;
  if (j + 1 < width) at[1] = e1;
}

// The lane's entries of output tile (m0, n0) into y's rows token0 + r (r < len), columns
// v0 + j (j < nvalid), row r times scale(r): one call of scale per row rather than per entry.
// A lane holds columns j and j + 1 side by side, stored as a pair.
template <class Scale>
__device__ __forceinline__ void store_output_tile(const float (&acc)[8], int m0, int n0,
                                                  const Out& y, int64_t token0, int h, int v0,
                                                  int len, int nvalid, const Scale& scale) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int r = m0 + g + 8 * half;
    if (r >= len) continue;
    const float s = scale(r);
    float* row = y.p + (token0 + r) * y.row + h * y.head + v0;
#pragma unroll
    for (int i = 0; i < 2; ++i) {  // entries 4·i + 2·half and the next of the C fragment
      const int j = n0 + 8 * i + 2 * t;
      store_pair(row + j, acc[4 * i + 2 * half] * s, acc[4 * i + 2 * half + 1] * s, j, nvalid,
                 y.pairs);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Decays by products only (a can be exactly 0 and is signed, so nothing is ever divided):
// D[t][j] = Π_{j<l≤t} a_l (0 above the diagonal), γ_t = Π_{l≤t} a_l. The four diagonal 16-blocks
// come from column scans (threads 0..63); every other lower block is ρ_t · Π(whole blocks
// between) · σ_j with the in-block prefix ρ and suffix σ. With col_mask = 15 (and ld >= 16) the
// diagonal blocks land side by side in a [kL][ld] table instead of in the full D.
__device__ inline void decay_diagonal(float* D, float* rho, float* sigma, const float* a,
                                      int ld = kLdL, int col_mask = kL - 1) {
  const int j = threadIdx.x, s = j & ~15;
  float prod = 1.f;
  for (int r = s; r < s + 16; ++r) {
    if (r > j) prod *= a[r];
    D[r * ld + (j & col_mask)] = r < j ? 0.f : prod;
    if (j == s) rho[r] = a[s] * prod;
  }
  sigma[j] = prod;
}

// decay_diagonal by all kThreads threads: four a column, each writing a quarter of its rows after
// the product up to them, the same products in the same order. Threads 0..63 alone ran 16
// dependent steps while the rest of the CTA waited at the next barrier: that wait was the largest
// single stall of the transition and delta-outputs kernels under ncu (GDN L, an eighth of all
// warp samples in each).
__device__ inline void decay_diagonal_cta(float* D, float* rho, float* sigma, const float* a,
                                          int ld, int col_mask) {
  static_assert(kThreads == 4 * kL, "four threads a column");
  const int j = threadIdx.x % kL, s = j & ~15, first = s + 4 * (threadIdx.x / kL);
  float prod = 1.f;
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    const int r = s + i;
    if (r >= first + 4) break;
    if (r > j) prod *= a[r];
    if (r < first) continue;
    D[r * ld + (j & col_mask)] = r < j ? 0.f : prod;
    if (j == s) rho[r] = a[s] * prod;
  }
  if (first + 4 == s + 16) sigma[j] = prod;
}

// ρ_t · Π of a over the whole 16-blocks from block `first` up to t's own: γ_t for first = 0, and
// D[t][j] / σ_j for j in block first − 1 < t's.
__device__ __forceinline__ float block_decay(const float* rho, int t, int first) {
  float v = rho[t];
  for (int blk = first; blk < (t >> 4); ++blk) v *= rho[16 * blk + 15];
  return v;
}

// With A non-null, also A = b D ⊙ K Kᵀ on those blocks (the only ones the inverse reads there).
__device__ inline void decay_rest(float* D, float* gamma, const float* rho, const float* sigma,
                                  float* A, const float* b, const float* KK) {
  for (int e = threadIdx.x; e < kL * kL; e += blockDim.x) {
    const int t = e / kL, j = e % kL, bt = t >> 4, bj = j >> 4;
    if (bt == bj) continue;
    const float v = bt > bj ? block_decay(rho, t, bj + 1) * sigma[j] : 0.f;
    D[t * kLdL + j] = v;
    if (A) A[t * kLdL + j] = b[t] * v * KK[t * kLdL + j];
  }
  if (threadIdx.x < kL) gamma[threadIdx.x] = block_decay(rho, threadIdx.x, 0);
}

// ---------------------------------------------------------------------------------------------
// D's diagonal 16-blocks side by side, [kL][16] (decay_diagonal with col_mask 15): unpadded, so
// that the chunk-parallel kernels stay small enough to share an SM (Mamba-2's outputs at Dk = 64
// three CTAs); fragment reads of it conflict two ways.
constexpr int kDiagLd = 16;

// The ten 16-blocks on and below the diagonal of a kL × kL tile: job 0..9 → block (bt, bj).
__device__ __forceinline__ void lower_block(int job, int& bt, int& bj) {
  bt = job < 1 ? 0 : job < 3 ? 1 : job < 6 ? 2 : 3;
  bj = job - bt * (bt + 1) / 2;
}

// acc, the lane's part of block (bt, bj) of a kL × kL product, times D and scale(r, j) entrywise:
// the diagonal blocks' D from their table Dd, the others as ρ_t · (whole blocks between) · σ_j,
// with a lane's two row factors taken once rather than per entry.
template <class Scale>
__device__ __forceinline__ void decay_block(float (&acc)[8], int bt, int bj, const float* Dd,
                                            const float* rho, const float* sigma,
                                            const Scale& scale) {
  const int m0 = 16 * bt, n0 = 16 * bj, g = (threadIdx.x & 31) >> 2;
  const float lead0 = bt == bj ? 1.f : block_decay(rho, m0 + g, bj + 1);
  const float lead8 = bt == bj ? 1.f : block_decay(rho, m0 + g + 8, bj + 1);
  for_acc(acc, m0, n0, [&](int r, int j, float& v) {
    const float lead = r - m0 < 8 ? lead0 : lead8;
    const float d = bt == bj ? Dd[r * kDiagLd + (j & 15)] : lead * sigma[j];
    v *= d * scale(r, j);
  });
}

// D's last row, D[kL − 1][j] = Π_{j<l<kL} a_l: σ_j times the whole blocks after j's.
__device__ __forceinline__ float last_row_decay(const float* rho, const float* sigma, int j) {
  const int bj = j >> 4;
  return bj == kL / 16 - 1 ? sigma[j] : block_decay(rho, kL - 1, bj + 1) * sigma[j];
}

// ---------------------------------------------------------------------------------------------
// Host side: parameters, slicing and launches.

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

inline In in_rows(const cpu::Rows<const float>& r, int64_t width) {
  const bool aligned = reinterpret_cast<uintptr_t>(r.data) % 16 == 0;
  return {r.data, r.row, r.head, aligned && r.row % 4 == 0 && r.head % 4 == 0 && width % 4 == 0};
}
inline Out out_rows(const cpu::Rows<float>& r) {
  const bool aligned = reinterpret_cast<uintptr_t>(r.data) % 8 == 0;
  return {r.data, r.row, r.head, aligned && r.row % 2 == 0 && r.head % 2 == 0};
}

inline Params base_params(const cpu::LinearRecurrence<float>& r) {
  Params p{};
  p.B = int(r.B), p.T = int(r.T), p.H = int(r.H), p.Dk = int(r.Dk), p.Dv = int(r.Dv);
  p.chunk = int(r.chunk);
  p.nchunks = int(ceil_div(r.T, r.chunk));
  p.dkp = int(ceil_div(r.Dk, 16) * 16);
  p.dv_inverse = r.Dv >= 1 ? (uint32_t(1) << 24) / uint32_t(r.Dv) + 1 : 0;
  p.stages = 1;
  p.head_group = 1;
  p.delta = r.b != nullptr;
  p.normalized = r.floor != nullptr;
  p.eps = r.eps;
  p.q = in_rows(r.q, r.Dk);
  p.k = in_rows(r.k, r.Dk);
  p.v = in_rows(r.v, r.Dv);
  p.a = r.a, p.b = r.b, p.c = r.c, p.floor = r.floor;
  p.y = out_rows(r.y);
  p.boundary = r.boundary;
  p.final_state = r.final_state;
  p.state_vec4 = r.Dk % 4 == 0 && reinterpret_cast<uintptr_t>(r.boundary) % 16 == 0;
  p.state_pairs = r.Dk % 2 == 0 && reinterpret_cast<uintptr_t>(r.boundary) % 8 == 0 &&
                  reinterpret_cast<uintptr_t>(r.final_state) % 8 == 0;
  return p;
}

inline size_t smem_bytes(const Params& p, bool backward) {
  return size_t(make_layout(p, backward).total) * sizeof(float);
}

// The widest value slice (64, 32 or 16 columns, no wider than Dv needs) whose shared memory
// fits, narrowed further while B·H·slices < min_ctas so that small batches still fill the GPU.
inline int pick_nv(Params p, bool backward, int64_t min_ctas) {
  int nv = 16;
  while (nv < kMaxNv && nv < p.Dv) nv *= 2;
  for (;; nv /= 2) {
    p.nv = nv;
    const bool fits = smem_bytes(p, backward) <= kSmemLimit;
    const bool wide_enough = int64_t(p.B) * p.H * ceil_div(p.Dv, nv) >= min_ctas;
    if (nv == 16 || (fits && wide_enough)) return nv;
  }
}

// The normalizer pass's slicing depends on the shapes only, so work_size can size its partials.
inline int dot_nv(const cpu::LinearRecurrence<float>& r) {
  Params p = base_params(r);
  return pick_nv(p, false, 0);
}

// Heads that share k (and q) can share a CTA, which then loads and multiplies what they share
// once: p.head_group for a grid of B·H / head_group · per_head CTAs is the largest divisor of H
// that leaves four CTAs an SM and whose layout fits(p), since fewer CTAs each taking more heads
// in turn would leave SMs idle (B128 T64 H4 keeps one head a CTA; B16 T16384 H4 takes all four).
template <class Fits>
int shared_head_group(const Context& ctx, Params p, int64_t per_head, const Fits& fits) {
  for (int g = p.H; g > 1; --g) {
    p.head_group = g;
    if (p.H % g == 0 && per_head * p.B * (p.H / g) >= 4 * int64_t(ctx.sm_count) && fits(p))
      return g;
  }
  return 1;
}

// kernel<<<grid, threads, bytes>>>(p, extra...) after checking and granting its shared memory.
template <class Kernel, class... Extra>
void launch(const Context& ctx, Kernel kernel, dim3 grid, const Params& p, size_t bytes,
            int threads = kThreads, const Extra&... extra) {
  SL_CHECK(bytes <= ctx.max_shared_per_block,
           "linear recurrence (chunkwise): needs " + std::to_string(bytes) +
               " bytes of shared memory per block, the device allows " +
               std::to_string(ctx.max_shared_per_block));
  SL_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
  kernel<<<grid, threads, bytes, ctx.stream>>>(p, extra...);
  SL_CUDA_LAUNCH_CHECK();
}

inline void check_supported(const cpu::LinearRecurrence<float>& r) {
  SL_CHECK_SHAPE(supports(r),
                 "linear recurrence (chunkwise): unsupported shapes Dk=" + std::to_string(r.Dk) +
                     " Dv=" + std::to_string(r.Dv) + " chunk=" + std::to_string(r.chunk) +
                     " (needs Dk <= " + std::to_string(kMaxDk) +
                     ", Dv <= " + std::to_string(kMaxDv) + ", " + std::to_string(kMinChunk) +
                     " <= chunk <= " + std::to_string(kL) + ")");
  SL_CHECK_SHAPE(r.q.data && r.k.data && r.v.data && r.a && r.c && r.y.data,
                 "linear recurrence (chunkwise): q, k, v, a, c and y are required");
  SL_CHECK_SHAPE(r.y.head != 0,
                 "linear recurrence (chunkwise): the output cannot be shared across heads");
  SL_CHECK_SHAPE(!(r.floor && r.b),
                 "linear recurrence (chunkwise): a normalizer with a delta term is not defined");
}

// The delta rule's transitions wait in y (see linear_recurrence_chunk_parallel.cu): room for
// Dk² entries in a chunk's rows ...
inline bool transition_fits(const Params& p) { return !p.delta || p.Dk * p.Dk <= p.chunk * p.Dv; }

// ... and no input in y's memory, which they would overwrite before step 3 reads it.
inline bool y_apart_from_inputs(const Params& p) {
  if (!p.delta) return true;
  const int64_t rows = int64_t(p.B) * p.T;
  auto span = [&](const float* base, int64_t row, int64_t head, int width) {
    const uintptr_t first = reinterpret_cast<uintptr_t>(base);
    return std::pair<uintptr_t, uintptr_t>(
        first, first + sizeof(float) * uintptr_t((rows - 1) * row + (p.H - 1) * head + width));
  };
  const auto y = span(p.y.p, p.y.row, p.y.head, p.Dv);
  const std::pair<uintptr_t, uintptr_t> inputs[] = {
      span(p.q.p, p.q.row, p.q.head, p.Dk), span(p.k.p, p.k.row, p.k.head, p.Dk),
      span(p.v.p, p.v.row, p.v.head, p.Dv), span(p.a, p.H, 1, 1), span(p.b, p.H, 1, 1),
      span(p.c, p.H, 1, 1)};
  for (const auto& in : inputs)
    if (in.first < y.second && y.first < in.second) return false;
  return true;
}

// forward_kernel over `grid` with p's slicing (linear_recurrence_chunkwise.cu).
void launch_forward(const Context& ctx, const Params& p, dim3 grid);

// The chunk-parallel forward's first two steps (linear_recurrence_chunk_parallel.cu): after it
// boundary slot c holds the state at the start of chunk c, and for scalar decay p.final_state,
// when asked for, the state at the end (the delta rule's comes from forward_kernel). Refuses
// shapes it cannot take.
void scan_chunk_states(const Context& ctx, const Params& p);

// The delta rule only: every chunk's outputs at once from its start state (c = 0: zero, else its
// boundary slot) and the final state from the last, grid as launch_outputs' with p.nv from
// delta_outputs_nv (linear_recurrence_delta_outputs.cu).
int delta_outputs_nv(const Params& p);
void launch_delta_outputs(const Context& ctx, const Params& p, dim3 grid);

// Scalar decay only: every chunk's outputs at once from its start state (c = 0: zero, else its
// boundary slot), into y or, in dot mode, the dy·(S q) partials into work; p.nv columns a CTA
// (linear_recurrence_chunk_outputs.cu).
void launch_outputs(const Context& ctx, Params p);

}  // namespace statelab::cuda::chunkwise::internal
