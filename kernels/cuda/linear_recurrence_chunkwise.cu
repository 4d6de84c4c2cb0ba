// The chunkwise linear recurrence on CUDA (DESIGN §3), twin of forward_chunkwise and
// linear_recurrence_bwd in kernels/cpu/linear_recurrence.cpp. One CTA per (batch row, head, slice
// of value columns) walks the chunks in order (backward: in reverse) with its slice of the state
// (or of its gradient) in shared memory: no scratch in forward and one pass over the inputs, at
// the price of parallelism over B·H·slices only. Products inside a chunk run on the tensor cores
// (3xTF32 for fp32). Checked against the CPU twin by kernels/selftest/linear_recurrence.cpp.
#include "kernels/cuda/linear_recurrence_chunkwise.hpp"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

namespace statelab::cuda::chunkwise {

namespace {

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

// Per-chunk vectors of kL entries in shared memory.
enum Vector {
  kGamma,   // γ_t = Π_{l≤t} a_l
  kRho,     // Π of a over t's 16-block up to t
  kSigma,   // Π of a over j's 16-block after j
  kZsum,    // Σ_j M_tj c_j
  kQn0,     // q_t · n0
  kKnu,     // k_t · ν_end
  kInvDen,  // 1 / divisor
  kDz,      // ∂L/∂(nᵀq)
  kX,       // do_t · (S0 q_t) (+ dz_t q_t·n0)
  kW,       // b_t g_t · (S0 k_t)
  kZz,      // u_j · (G_end k_j) (+ c_j k_j·ν_end)
  kGh,      // g_t · h_t, h_t = S_{t−1} k_t
  kDc,      // ∂L/∂c_t
  kT4,      // the decay gradient's pair term
  kRdot,    // dy_t · (S_t q_t) over all value columns
  kScalar,  // [0]: ⟨G_end, S0⟩ + ν_end·n0
  kVectors
};

struct In {  // a strided [B, T, H, width] input, as cpu::Rows
  const float* p;
  int64_t row, head;
  bool vec4;  // 16-byte copies allowed
};
struct Out {
  float* p;
  int64_t row, head;
};

struct Params {
  int B, T, H, Dk, Dv, chunk, nchunks;
  int nv;         // value columns per CTA: 16, 32 or 64 (zero-padded past Dv)
  int dkp;        // Dk rounded up to 16 (zero-padded)
  int stages;     // forward: 2 = the next chunk's inputs are copied in during this one
  int span;       // forward: chunks per CTA, all of them (or 1 for the normalizer pass)
  int dot_tiles;  // value slices of the normalizer partials in work
  bool delta, normalized;
  bool from_boundary;  // forward: each CTA one chunk (span 1) from its boundary state, no state
                       // written back
  bool dot_mode;       // forward, from_boundary: write dy·(S q) partials into work instead of y
  float eps;
  In q, k, v, dy;
  const float *a, *b, *c, *floor;
  Out y;
  float *boundary, *final_state;
  Out dq, dk, dv;
  float *da, *db, *dc, *dfloor;
  float* work;
};

// Shared-memory offsets in floats, each a multiple of 4 (16-byte copies).
struct Layout {
  int ldk, ldv;  // leading dimensions of the [·, Dk] and [·, nv] tiles, ≡ 4 (mod 8)
  int stage;     // floats of one copy stage (q, k, v, dy, gates)
  int q, k, v, dy, gates;
  int s, n, g, nu;
  int D, M, KK, A, Tinv, P1, P2, scratch;
  int U, KS, RHS, X, Gm;
  int vec;
  int total;
};

__host__ __device__ inline Layout make_layout(const Params& p, bool backward) {
  Layout l{};
  l.ldk = p.dkp + 4;
  l.ldv = p.nv + 4;
  int at = 0;
  auto take = [&at](int n) {
    const int o = at;
    at += (n + 3) & ~3;
    return o;
  };
  const int tile_k = kL * l.ldk, tile_v = kL * l.ldv, square = kL * kLdL;
  l.q = take(tile_k);
  l.k = take(tile_k);
  l.v = take(tile_v);
  l.dy = backward ? take(tile_v) : -1;
  l.gates = take(4 * kL);
  l.stage = at;
  if (!backward && p.stages == 2) at += l.stage;
  l.s = take(p.nv * l.ldk);
  l.n = take(p.dkp);
  l.g = backward ? take(p.nv * l.ldk) : -1;
  l.nu = backward ? take(p.dkp) : -1;
  l.D = take(square);
  l.M = take(square);  // backward keeps Q Kᵀ unmasked here
  l.U = take(tile_v);
  l.KK = l.A = l.Tinv = l.P1 = l.P2 = l.scratch = l.KS = l.RHS = l.X = l.Gm = -1;
  if (backward) {
    l.P1 = take(square);
    l.scratch = l.P1;  // the inverse's scratch is dead before P1 is written
    l.Gm = take(tile_v);
  }
  if (p.delta) {
    l.A = take(square);
    l.Tinv = take(square);
    l.RHS = take(tile_v);
    l.KK = take(square);
    if (backward) {
      l.P2 = l.A;  // A is dead once the inverse is built
      l.KS = take(tile_v);
      l.X = l.RHS;  // RHS is dead once U is solved
    } else {
      l.scratch = take(32 * kScratchLd);  // forward keeps K S0ᵀ in the RHS slot
    }
  }
  l.vec = take(kVectors * kL);
  l.total = at;
  return l;
}

// ---------------------------------------------------------------------------------------------
// Tensor-core tiles. A warp computes a 16 × 16 tile of C = A·B as two m16n8k8 TF32 products per
// k-step; A(r, k) and B(k, n) are accessors into shared memory that fold in masks and scales.
// kSplit: 3xTF32 (x = hi + lo, products hi·hi + hi·lo + lo·hi), fp32-level accuracy. bf16 runs
// the single-TF32 path too: it is well inside bf16's tolerance, and one fragment layout serves.

__device__ __forceinline__ uint32_t to_tf32(float x) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return r;
}

__device__ __forceinline__ void mma_tf32(float* d, const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// acc += A[m0 .. m0+15, k0 .. k1) · B[k0 .. k1, n0 .. n0+15], k0 and k1 multiples of 8.
// acc[i] holds row m0 + g + 8·((i >> 1) & 1), column n0 + 8·(i >> 2) + 2·t + (i & 1), with
// g = lane / 4 and t = lane % 4 (the mma C-fragment layout).
template <bool kSplit, class AFn, class BFn>
__device__ __forceinline__ void mma_tile(float (&acc)[8], const AFn& A, const BFn& B, int m0,
                                         int n0, int k0, int k1) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  for (int k = k0; k < k1; k += 8) {
    const float af[4] = {A(m0 + g, k + t), A(m0 + g + 8, k + t), A(m0 + g, k + t + 4),
                         A(m0 + g + 8, k + t + 4)};
    const float bf[4] = {B(k + t, n0 + g), B(k + t + 4, n0 + g), B(k + t, n0 + 8 + g),
                         B(k + t + 4, n0 + 8 + g)};
    uint32_t ah[4], bh[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      ah[i] = to_tf32(af[i]);
      bh[i] = to_tf32(bf[i]);
    }
    if constexpr (kSplit) {
      uint32_t al[4], bl[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        al[i] = to_tf32(af[i] - __uint_as_float(ah[i]));
        bl[i] = to_tf32(bf[i] - __uint_as_float(bh[i]));
      }
      mma_tf32(acc, al, bh[0], bh[1]);
      mma_tf32(acc + 4, al, bh[2], bh[3]);
      mma_tf32(acc, ah, bl[0], bl[1]);
      mma_tf32(acc + 4, ah, bl[2], bl[3]);
    }
    mma_tf32(acc, ah, bh[0], bh[1]);
    mma_tf32(acc + 4, ah, bh[2], bh[3]);
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

// out[row] += Σ over the tile's columns of fn(row, column, entry).
template <class Fn>
__device__ __forceinline__ void add_row_sums(float (&acc)[8], int m0, int n0, float* out, Fn&& fn) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  float s[2] = {0.f, 0.f};
#pragma unroll
  for (int i = 0; i < 8; ++i)
    s[(i >> 1) & 1] += fn(m0 + g + 8 * ((i >> 1) & 1), n0 + 8 * (i >> 2) + 2 * t + (i & 1), acc[i]);
  atomicAdd(out + m0 + g, s[0]);
  atomicAdd(out + m0 + g + 8, s[1]);
}

// out[column] += Σ over the tile's rows of fn(row, column, entry).
template <class Fn>
__device__ __forceinline__ void add_col_sums(float (&acc)[8], int m0, int n0, float* out, Fn&& fn) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  float s[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
  for (int i = 0; i < 8; ++i)
    s[2 * (i >> 2) + (i & 1)] +=
        fn(m0 + g + 8 * ((i >> 1) & 1), n0 + 8 * (i >> 2) + 2 * t + (i & 1), acc[i]);
#pragma unroll
  for (int j = 0; j < 4; ++j) atomicAdd(out + n0 + 8 * (j >> 1) + 2 * t + (j & 1), s[j]);
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

// Steps t0 .. t0+len−1 of (b, h), columns c0 .. c0+width−1 of `in`, into a kL × cols tile
// (leading dimension ld); rows past len and columns past width are zero.
__device__ void load_tile(float* dst, int ld, int cols, const In& in, int64_t token0, int h,
                          int len, int c0, int width) {
  const float* base = in.p + h * in.head + c0;
  if (in.vec4) {
    const int per_row = cols / 4;
    for (int e = threadIdx.x; e < kL * per_row; e += kThreads) {
      const int r = e / per_row, col = 4 * (e % per_row);
      const bool valid = r < len && col < width;
      copy16(dst + r * ld + col, valid ? base + (token0 + r) * in.row + col : in.p, valid);
    }
  } else {
    for (int e = threadIdx.x; e < kL * cols; e += kThreads) {
      const int r = e / cols, col = e % cols;
      const bool valid = r < len && col < width;
      copy4(dst + r * ld + col, valid ? base + (token0 + r) * in.row + col : in.p, valid);
    }
  }
}

// a, b, c, floor of the chunk; padding steps are identities (a = 1, b = c = 0) with floor 1,
// so every "last step" quantity can be read at row kL − 1.
__device__ void load_gates(float* gates, const Params& p, int bb, int h, int t0, int len) {
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
__device__ void load_state(const Params& p, float* S, int ld, float* n, int bb, int h, int c,
                           int v0) {
  const float* slot = c > 0 ? boundary_slot(p, bb, h, c) : nullptr;
  for (int e = threadIdx.x; e < p.nv * p.dkp; e += kThreads) {
    const int r = e / p.dkp, col = e % p.dkp;
    const bool valid = slot && v0 + r < p.Dv && col < p.Dk;
    copy4(S + r * ld + col, valid ? slot + int64_t(v0 + r) * p.Dk + col : p.a, valid);
  }
  if (p.normalized)
    for (int col = threadIdx.x; col < p.dkp; col += kThreads) {
      const bool valid = slot && col < p.Dk;
      copy4(n + col, valid ? slot + int64_t(p.Dv) * p.Dk + col : p.a, valid);
    }
}

__device__ void store_state(const Params& p, float* slot, const float* S, int ld, const float* n,
                            int v0, int nvalid, bool with_n) {
  for (int e = threadIdx.x; e < nvalid * p.Dk; e += kThreads) {
    const int r = e / p.Dk, col = e % p.Dk;
    slot[int64_t(v0 + r) * p.Dk + col] = S[r * ld + col];
  }
  if (with_n)
    for (int col = threadIdx.x; col < p.Dk; col += kThreads)
      slot[int64_t(p.Dv) * p.Dk + col] = n[col];
}

// ---------------------------------------------------------------------------------------------
// Decays by products only (a can be exactly 0 and is signed, so nothing is ever divided):
// D[t][j] = Π_{j<l≤t} a_l (0 above the diagonal), γ_t = Π_{l≤t} a_l. The four diagonal 16-blocks
// come from column scans (threads 0..63); every other lower block is ρ_t · Π(whole blocks
// between) · σ_j with the in-block prefix ρ and suffix σ.
__device__ void decay_diagonal(float* D, float* rho, float* sigma, const float* a) {
  const int j = threadIdx.x, s = j & ~15;
  float prod = 1.f;
  for (int r = s; r < s + 16; ++r) {
    if (r > j) prod *= a[r];
    D[r * kLdL + j] = r < j ? 0.f : prod;
    if (j == s) rho[r] = a[s] * prod;
  }
  sigma[j] = prod;
}

// With A non-null, also A = b D ⊙ K Kᵀ on those blocks (the only ones the inverse reads there).
__device__ void decay_rest(float* D, float* gamma, const float* rho, const float* sigma, float* A,
                           const float* b, const float* KK) {
  for (int e = threadIdx.x; e < kL * kL; e += kThreads) {
    const int t = e / kL, j = e % kL, bt = t >> 4, bj = j >> 4;
    if (bt == bj) continue;
    float v = 0.f;
    if (bt > bj) {
      v = rho[t] * sigma[j];
      for (int blk = bj + 1; blk < bt; ++blk) v *= rho[16 * blk + 15];
    }
    D[t * kLdL + j] = v;
    if (A) A[t * kLdL + j] = b[t] * v * KK[t * kLdL + j];
  }
  if (threadIdx.x < kL) {
    const int t = threadIdx.x;
    float g = rho[t];
    for (int blk = 0; blk < (t >> 4); ++blk) g *= rho[16 * blk + 15];
    gamma[t] = g;
  }
}

// ---------------------------------------------------------------------------------------------
// Tinv = (I + A)⁻¹ for the strictly lower A = b D ⊙ K Kᵀ of the delta rule: the diagonal
// 16-blocks by forward substitution in fp32 (one thread per column j = 0..63, A read from its
// factors, which only needs D's diagonal blocks), then two doubling levels T21 = −T22 A21 T11 on
// the tensor cores, always split since every later product inherits the inverse's error. All
// threads call the level steps (they contain barriers).
__device__ void invert_diagonal(float* Tinv, const float* b, const float* D, const float* KK,
                                int j) {
  const int s = j & ~15, col = j & 15;
  float x[16];
#pragma unroll
  for (int r = 0; r < 16; ++r) {
    const int t = s + r;
    float acc[2] = {r == col ? 1.f : 0.f, 0.f};  // two chains halve the dependent FMAs
#pragma unroll
    for (int i = 0; i < r; ++i)
      acc[i & 1] -= b[t] * D[t * kLdL + s + i] * KK[t * kLdL + s + i] * x[i];
    x[r] = acc[0] + acc[1];
    Tinv[(s + r) * kLdL + s + col] = x[r];
  }
}

__device__ void zero_upper_blocks(float* Tinv) {
  for (int e = threadIdx.x; e < kL * kL; e += kThreads) {
    const int r = e / kL, c = e % kL;
    if ((c >> 4) > (r >> 4)) Tinv[r * kLdL + c] = 0.f;
  }
}

__device__ void invert_levels(float* Tinv, const float* A, float* scratch) {
  const int warp = threadIdx.x >> 5;
  if (warp < 2) {  // blocks (1, 0) and (3, 2): X = A21 T11
    const int s = 32 * warp;
    float* X = scratch + warp * 16 * 20;
    float acc[8] = {};
    mma_tile<true>(
        acc, [&](int r, int k) { return A[(s + 16 + r) * kLdL + s + k]; },
        [&](int k, int n) { return Tinv[(s + k) * kLdL + s + n]; }, 0, 0, 0, 16);
    for_acc(acc, 0, 0, [&](int r, int c, float& v) { X[r * 20 + c] = v; });
  }
  __syncthreads();
  if (warp < 2) {  // T21 = −T22 X
    const int s = 32 * warp;
    const float* X = scratch + warp * 16 * 20;
    float acc[8] = {};
    mma_tile<true>(
        acc, [&](int r, int k) { return Tinv[(s + 16 + r) * kLdL + s + 16 + k]; },
        [&](int k, int n) { return X[k * 20 + n]; }, 0, 0, 0, 16);
    for_acc(acc, 0, 0, [&](int r, int c, float& v) { Tinv[(s + 16 + r) * kLdL + s + c] = -v; });
  }
  __syncthreads();
  if (warp < 4) {  // the 32-blocks: X = A21 T11, T11 lower so k >= n
    const int m0 = 16 * (warp >> 1), n0 = 16 * (warp & 1);
    float acc[8] = {};
    mma_tile<true>(
        acc, [&](int r, int k) { return A[(32 + r) * kLdL + k]; },
        [&](int k, int n) { return Tinv[k * kLdL + n]; }, m0, n0, n0, 32);
    for_acc(acc, m0, n0, [&](int r, int c, float& v) { scratch[r * kScratchLd + c] = v; });
  }
  __syncthreads();
  if (warp < 4) {  // T21 = −T22 X, T22 lower so k <= r
    const int m0 = 16 * (warp >> 1), n0 = 16 * (warp & 1);
    float acc[8] = {};
    mma_tile<true>(
        acc, [&](int r, int k) { return Tinv[(32 + r) * kLdL + 32 + k]; },
        [&](int k, int n) { return scratch[k * kScratchLd + n]; }, m0, n0, 0, m0 + 16);
    for_acc(acc, m0, n0, [&](int r, int c, float& v) { Tinv[(32 + r) * kLdL + c] = -v; });
  }
  __syncthreads();
}

// ---------------------------------------------------------------------------------------------
// Forward. Per chunk, from the slice S0 of the start state (rows = value columns v0..):
//   U = (I + A)⁻¹ (diag(c) V − diag(bγ) K S0ᵀ)   (b = 0: U = diag(c) V)
//   Y = diag(γ) Q S0ᵀ + (D ⊙ Q Kᵀ) U,   S_end = γ_last S0 + Uᵀ diag(D_last,·) K,
// with the normalizer n (a Dk vector) on the FFMA pipes beside it. Four barriers per chunk for
// b = 0: the products that need no decay run beside its diagonal blocks, D is applied while
// reading Q Kᵀ, and the output tiles share a phase with the state update, whose tiles stay in
// registers across one barrier. From the boundary (the chunk-parallel forward, and backward's
// normalizer pass) each CTA takes one chunk from its boundary state and writes y, or in dot mode
// dy·(S q), and no state but the final one.
template <bool kSplit>
__global__ void __launch_bounds__(kThreads) forward_kernel(const Params p) {
  extern __shared__ __align__(16) float smem[];
  const Layout L = make_layout(p, false);
  const int tid = threadIdx.x, warp = tid >> 5;
  const int v0 = blockIdx.x * p.nv, nvalid = min(p.nv, p.Dv - v0);
  const int bb = blockIdx.y / p.H, h = blockIdx.y % p.H;
  const int c_begin = blockIdx.z * p.span, c_end = min(p.nchunks, c_begin + p.span);
  const int ldk = L.ldk, ldv = L.ldv, vt = p.nv / 16, kt = p.dkp / 16;
  float* S = smem + L.s;
  float* n = smem + L.n;
  float* D = smem + L.D;
  float* QK = smem + L.M;
  float* U = smem + L.U;
  float* KK = smem + L.KK;
  float* A = smem + L.A;
  float* Tinv = smem + L.Tinv;
  float* KS = smem + L.RHS;
  float* vec = smem + L.vec;
  float* gamma = vec + kGamma * kL;
  float* rho = vec + kRho * kL;
  float* sigma = vec + kSigma * kL;
  float* zsum = vec + kZsum * kL;
  float* qn0 = vec + kQn0 * kL;
  float* rdot = vec + kRdot * kL;

  load_state(p, S, ldk, n, bb, h, c_begin, v0);
  auto issue = [&](int c) {
    float* st = smem + ((c - c_begin) % p.stages) * L.stage;
    const int t0 = c * p.chunk, len = min(p.chunk, p.T - t0);
    const int64_t token0 = int64_t(bb) * p.T + t0;
    load_tile(st + L.q, ldk, p.dkp, p.q, token0, h, len, 0, p.Dk);
    load_tile(st + L.k, ldk, p.dkp, p.k, token0, h, len, 0, p.Dk);
    load_tile(st + L.v, ldv, p.nv, p.v, token0, h, len, v0, nvalid);
    load_gates(st + L.gates, p, bb, h, t0, len);
    copy_commit();
  };
  if (p.stages == 2) issue(c_begin);
  // The CTA that runs the last chunk ends with the final state (from the boundary too).
  const bool keeps_final = p.final_state && !p.dot_mode && c_end == p.nchunks;

  for (int c = c_begin; c < c_end; ++c) {
    if (p.stages == 1)
      issue(c);
    else if (c + 1 < c_end)
      issue(c + 1);
    if (p.stages == 2 && c + 1 < c_end)
      copy_wait<1>();
    else
      copy_wait<0>();
    const float* st = smem + ((c - c_begin) % p.stages) * L.stage;
    const float *Q = st + L.q, *K = st + L.k, *V = st + L.v;
    const float *ga = st + L.gates, *gb = ga + kL, *gc = ga + 2 * kL, *gf = ga + 3 * kL;
    const int t0 = c * p.chunk, len = min(p.chunk, p.T - t0);
    const int64_t token0 = int64_t(bb) * p.T + t0;
    const bool update = c + 1 < c_end ? !p.from_boundary : keeps_final;
    for (int i = tid; i < kL; i += kThreads) zsum[i] = rdot[i] = 0.f;
    __syncthreads();

    // Whatever needs no decay: Q Kᵀ, K Kᵀ and K S0ᵀ unmasked, U = diag(c) V, q·n0.
    if (!p.from_boundary && p.boundary && c > 0)
      store_state(p, boundary_slot(p, bb, h, c), S, ldk, n, v0, nvalid,
                  p.normalized && blockIdx.x == 0);
    if (tid < kL) {
      decay_diagonal(D, rho, sigma, ga);
    } else if (tid < 2 * kL && p.normalized) {
      const int r = tid - kL;
      float s = 0.f;
      for (int k = 0; k < p.dkp; ++k) s += Q[r * ldk + k] * n[k];
      qn0[r] = s;
    }
    if (!p.delta)
      for (int e = tid; e < kL * p.nv; e += kThreads) {
        const int r = e / p.nv, col = e % p.nv;
        U[r * ldv + col] = gc[r] * V[r * ldv + col];
      }
    for (int job = warp; job < (p.delta ? 32 + 4 * vt : 16); job += kWarps) {
      float acc[8] = {};
      if (job >= 32) {
        const int m0 = 16 * ((job - 32) & 3), n0 = 16 * ((job - 32) >> 2);
        mma_tile<kSplit>(
            acc, [&](int r, int k) { return K[r * ldk + k]; },
            [&](int k, int j) { return S[j * ldk + k]; }, m0, n0, 0, p.dkp);
        for_acc(acc, m0, n0, [&](int r, int j, float& v) { KS[r * ldv + j] = v; });
        continue;
      }
      const int m0 = 16 * ((job & 15) >> 2), n0 = 16 * (job & 3);
      const bool kk = job >= 16;
      float* out = kk ? KK : QK;
      if (n0 > m0) {
        zero_tile(out, kLdL, m0, n0);
        continue;
      }
      const float* X = kk ? K : Q;
      auto xa = [&](int r, int k) { return X[r * ldk + k]; };
      auto kb = [&](int k, int j) { return K[j * ldk + k]; };
      // nᵀq sums these scores and can cancel: TF32 scores would leave the divisor with an
      // error relative to the scores rather than to nᵀq, so a normalizer always splits them.
      if (!kk && p.normalized)
        mma_tile<true>(acc, xa, kb, m0, n0, 0, p.dkp);
      else
        mma_tile<kSplit>(acc, xa, kb, m0, n0, 0, p.dkp);
      for_acc(acc, m0, n0, [&](int r, int j, float& v) { out[r * kLdL + j] = v; });
    }
    __syncthreads();

    // The rest of D (and of A); Σ_j M_tj c_j from the in-block products, as D's own blocks are
    // still being written; the inverse's diagonal blocks.
    decay_rest(D, gamma, rho, sigma, p.delta ? A : nullptr, gb, KK);
    if (p.normalized) {
      const int r = tid >> 2, jb = tid & 3, bt = r >> 4;
      float s = 0.f;
      if (jb <= bt) {
        for (int j = 16 * jb; j < 16 * jb + 16; ++j)
          s += (jb == bt ? D[r * kLdL + j] : sigma[j]) * QK[r * kLdL + j] * gc[j];
        if (jb < bt) {
          float f = rho[r];
          for (int blk = jb + 1; blk < bt; ++blk) f *= rho[16 * blk + 15];
          s *= f;
        }
      }
      atomicAdd(zsum + r, s);
    }
    if (p.delta) {
      if (tid < kL) invert_diagonal(Tinv, gb, D, KK, tid);
      zero_upper_blocks(Tinv);
    }
    __syncthreads();

    if (p.delta) {
      invert_levels(Tinv, A, smem + L.scratch);
      for (int job = warp; job < 4 * vt; job += kWarps) {
        const int m0 = 16 * (job & 3), n0 = 16 * (job >> 2);
        float acc[8] = {};
        mma_tile<kSplit>(
            acc, [&](int r, int k) { return Tinv[r * kLdL + k]; },
            [&](int k, int j) {
              return gc[k] * V[k * ldv + j] - gb[k] * gamma[k] * KS[k * ldv + j];
            },
            m0, n0, 0, m0 + 16);
        for_acc(acc, m0, n0, [&](int r, int j, float& v) { U[r * ldv + j] = v; });
      }
      __syncthreads();
    }

    // Y = diag(γ) Q S0ᵀ + (D ⊙ Q Kᵀ) U over max(|nᵀq|, floor) + eps; beside it Uᵀ diag(D_last) K
    // into registers (warps from the last down, as the output tiles fill warps from the first).
    auto den = [&](int r) {
      return p.normalized ? fmaxf(fabsf(gamma[r] * qn0[r] + zsum[r]), gf[r]) + p.eps : 1.f;
    };
    for (int job = warp; job < 4 * vt; job += kWarps) {
      const int m0 = 16 * (job & 3), n0 = 16 * (job >> 2);
      float acc[8] = {};
      mma_tile<kSplit>(
          acc, [&](int r, int k) { return Q[r * ldk + k]; },
          [&](int k, int j) { return S[j * ldk + k]; }, m0, n0, 0, p.dkp);
      for_acc(acc, m0, n0, [&](int r, int, float& v) { v *= gamma[r]; });
      mma_tile<kSplit>(
          acc, [&](int r, int k) { return D[r * kLdL + k] * QK[r * kLdL + k]; },
          [&](int k, int j) { return U[k * ldv + j]; }, m0, n0, 0, m0 + 16);
      if (p.dot_mode) {
        add_row_sums(acc, m0, n0, rdot, [&](int r, int j, float v) {
          return r < len && j < nvalid
                     ? v * p.dy.p[(token0 + r) * p.dy.row + h * p.dy.head + v0 + j]
                     : 0.f;
        });
      } else {
        for_acc(acc, m0, n0, [&](int r, int j, float& v) {
          if (r < len && j < nvalid)
            p.y.p[(token0 + r) * p.y.row + h * p.y.head + v0 + j] = v / den(r);
        });
      }
    }
    const int n_state = update ? vt * kt : 0;
    float sacc[kStateTiles][8];
#pragma unroll
    for (int i = 0; i < kStateTiles; ++i) {
      const int job = kWarps * i + kWarps - 1 - warp, m0 = 16 * (job % vt), n0 = 16 * (job / vt);
#pragma unroll
      for (int e = 0; e < 8; ++e) sacc[i][e] = 0.f;
      if (job < n_state)
        mma_tile<kSplit>(
            sacc[i], [&](int r, int k) { return U[k * ldv + r]; },
            [&](int k, int j) { return D[(kL - 1) * kLdL + k] * K[k * ldk + j]; }, m0, n0, 0, kL);
    }
    if (p.normalized && update)
      for (int k = tid; k < p.dkp; k += kThreads) {  // n_end = γ_last n0 + Kᵀ (D_last,· ⊙ c)
        float s = 0.f;
        for (int r = 0; r < kL; ++r) s += D[(kL - 1) * kLdL + r] * gc[r] * K[r * ldk + k];
        n[k] = gamma[kL - 1] * n[k] + s;
      }
    __syncthreads();

    if (p.dot_mode && tid < len) {
      p.work[int64_t(blockIdx.x) * p.B * p.T * p.H + (token0 + tid) * p.H + h] = rdot[tid];
    }
    // S_end = γ_last S0 + Uᵀ diag(D_last,·) K; S is next read after the coming chunk's first
    // barrier, the stage buffers are not touched here.
#pragma unroll
    for (int i = 0; i < kStateTiles; ++i) {
      const int job = kWarps * i + kWarps - 1 - warp, m0 = 16 * (job % vt), n0 = 16 * (job / vt);
      if (job < n_state)
        for_acc(sacc[i], m0, n0, [&](int r, int j, float& v) {
          S[r * ldk + j] = gamma[kL - 1] * S[r * ldk + j] + v;
        });
    }
  }
  if (keeps_final) {
    __syncthreads();
    store_state(p, p.final_state + (int64_t(bb) * p.H + h) * state_size(p), S, ldk, n, v0, nvalid,
                p.normalized && blockIdx.x == 0);
  }
}

// ---------------------------------------------------------------------------------------------
// The chunk-parallel forward. A chunk's end state is affine in its start state,
//   S_end = S0 M + Δ,  M = γ_last I − Kᵀ diag(bγ) Z,  Δ = Vᵀ diag(c) Z,  Z = Tinvᵀ diag(D_last,·) K
// (the forward's U and S_end with S0 factored out; without a delta term M = γ_last I and
// Δ = Vᵀ diag(w) K, w_t = c_t Π_{t<l≤last} a_l). Three launches replace the walk over chunks:
//   1. one CTA per chunk but the last: Δ into the boundary slot after the chunk, and for the delta
//      rule M into the chunk's rows of y, which nothing reads before step 3 writes them;
//   2. a scan over the chunks per (b, h): S_{c+1} = S_c M_c + Δ_c in place, γ_c S_c + Δ_c for
//      scalar decay (one thread per state element), the matrix product for the delta rule (a CTA
//      per 8 state rows, M_c and Δ_c staged two chunks ahead);
//   3. forward_kernel from the boundary: every chunk's outputs at once, the last one's end state.
// It moves the boundary states through memory twice more than the walk does, but its parallelism
// is B·H·chunks instead of B·H·value slices, so few long sequences stop being latency-bound.

// Where M_c's entry i (row-major Dk × Dk) waits in y: row t0 + i / Dv, column i % Dv of chunk c.
__device__ __forceinline__ float* transition_entry(const Params& p, int bb, int h, int c, int i) {
  const int64_t token = int64_t(bb) * p.T + int64_t(c) * p.chunk + i / p.Dv;
  return p.y.p + token * p.y.row + h * p.y.head + i % p.Dv;
}

// Shared memory of chunk_state_kernel: K and V tiles (V as wide as p.nv), the gates, w.
size_t chunk_state_smem(const Params& p) {
  return size_t(kL * (p.dkp + 4) + kL * (p.nv + 4) + 5 * kL) * sizeof(float);
}

template <bool kSplit>
__global__ void __launch_bounds__(kThreads) chunk_state_kernel(const Params p) {
  extern __shared__ __align__(16) float smem[];
  const int ldk = p.dkp + 4, ldv = p.nv + 4;
  float* K = smem;
  float* V = K + kL * ldk;
  float* gates = V + kL * ldv;
  float* w = gates + 4 * kL;
  const int bb = blockIdx.x / p.H, h = blockIdx.x % p.H, c = blockIdx.y;
  const int t0 = c * p.chunk;
  const int64_t token0 = int64_t(bb) * p.T + t0;
  load_tile(K, ldk, p.dkp, p.k, token0, h, p.chunk, 0, p.Dk);
  load_tile(V, ldv, p.nv, p.v, token0, h, p.chunk, 0, p.Dv);
  load_gates(gates, p, bb, h, t0, p.chunk);
  copy_commit();
  copy_wait<0>();
  __syncthreads();
  if (threadIdx.x == 0) {
    float after = 1.f;  // Π of a after t; padding steps are identities (a = 1, c = 0)
#pragma unroll 16
    for (int t = kL - 1; t >= 0; --t) {
      w[t] = gates[2 * kL + t] * after;
      after *= gates[t];
    }
  }
  __syncthreads();
  float* slot = boundary_slot(p, bb, h, c + 1);
  const int vt = p.nv / 16, kt = p.dkp / 16, warp = threadIdx.x >> 5;
  for (int job = warp; job < vt * kt; job += kWarps) {
    const int m0 = 16 * (job % vt), n0 = 16 * (job / vt);
    float acc[8] = {};
    mma_tile<kSplit>(
        acc, [&](int r, int k) { return V[k * ldv + r] * w[k]; },
        [&](int k, int j) { return K[k * ldk + j]; }, m0, n0, 0, kL);
    for_acc(acc, m0, n0, [&](int r, int j, float& v) {
      if (r < p.Dv && j < p.Dk) slot[int64_t(r) * p.Dk + j] = v;
    });
  }
  if (p.normalized)
    for (int k = threadIdx.x; k < p.Dk; k += kThreads) {
      float s = 0.f;
      for (int t = 0; t < kL; ++t) s += w[t] * K[t * ldk + k];
      slot[int64_t(p.Dv) * p.Dk + k] = s;
    }
}

// The delta rule's step 1: K, V (p.nv = Dv rounded up to 16) and Z tiles, the gates, the decays
// and the inverse with its scratch (offsets in floats, multiples of 4).
struct TransitionLayout {
  int ldk, ldv, k, v, z, gates, D, KK, A, Tinv, scratch, vec, total;
};

__host__ __device__ inline TransitionLayout make_transition_layout(const Params& p) {
  TransitionLayout l{};
  l.ldk = p.dkp + 4;
  l.ldv = p.nv + 4;
  int at = 0;
  auto take = [&at](int n) {
    const int o = at;
    at += (n + 3) & ~3;
    return o;
  };
  l.k = take(kL * l.ldk);
  l.v = take(kL * l.ldv);
  l.z = take(kL * l.ldk);
  l.gates = take(4 * kL);
  l.D = take(kL * kLdL);
  l.KK = take(kL * kLdL);
  l.A = take(kL * kLdL);
  l.Tinv = take(kL * kLdL);
  l.scratch = take(32 * kScratchLd);
  static_assert(kGamma < 3 && kRho < 3 && kSigma < 3, "the decays' vectors come first");
  l.vec = take(3 * kL);
  l.total = at;
  return l;
}

template <bool kSplit>
__global__ void __launch_bounds__(kThreads) chunk_transition_kernel(const Params p) {
  extern __shared__ __align__(16) float smem[];
  const TransitionLayout L = make_transition_layout(p);
  const int tid = threadIdx.x, warp = tid >> 5, ldk = L.ldk, ldv = L.ldv;
  const int vt = p.nv / 16, kt = p.dkp / 16;
  const int bb = blockIdx.x / p.H, h = blockIdx.x % p.H, c = blockIdx.y;
  const int t0 = c * p.chunk;
  const int64_t token0 = int64_t(bb) * p.T + t0;
  float *Z = smem + L.z, *K = smem + L.k, *V = smem + L.v, *ga = smem + L.gates;
  const float *gb = ga + kL, *gc = ga + 2 * kL;
  float *D = smem + L.D, *KK = smem + L.KK, *A = smem + L.A, *Tinv = smem + L.Tinv;
  float* vec = smem + L.vec;
  float *gamma = vec + kGamma * kL, *rho = vec + kRho * kL, *sigma = vec + kSigma * kL;
  load_tile(K, ldk, p.dkp, p.k, token0, h, p.chunk, 0, p.Dk);
  load_tile(V, ldv, p.nv, p.v, token0, h, p.chunk, 0, p.Dv);
  load_gates(ga, p, bb, h, t0, p.chunk);
  copy_commit();
  copy_wait<0>();
  __syncthreads();

  if (tid < kL) decay_diagonal(D, rho, sigma, ga);
  for (int job = warp; job < 16; job += kWarps) {  // K Kᵀ, lower blocks
    const int m0 = 16 * (job >> 2), n0 = 16 * (job & 3);
    if (n0 > m0) {
      zero_tile(KK, kLdL, m0, n0);
      continue;
    }
    float acc[8] = {};
    mma_tile<kSplit>(
        acc, [&](int r, int k) { return K[r * ldk + k]; },
        [&](int k, int j) { return K[j * ldk + k]; }, m0, n0, 0, p.dkp);
    for_acc(acc, m0, n0, [&](int r, int j, float& v) { KK[r * kLdL + j] = v; });
  }
  __syncthreads();
  decay_rest(D, gamma, rho, sigma, A, gb, KK);
  if (tid < kL) invert_diagonal(Tinv, gb, D, KK, tid);
  zero_upper_blocks(Tinv);
  __syncthreads();
  invert_levels(Tinv, A, smem + L.scratch);

  // Z = Tinvᵀ diag(D_last,·) K; Tinv is lower, so only rows s >= t of it reach Z's row t.
  for (int job = warp; job < 4 * kt; job += kWarps) {
    const int m0 = 16 * (job & 3), n0 = 16 * (job >> 2);
    float acc[8] = {};
    mma_tile<kSplit>(
        acc, [&](int r, int k) { return Tinv[k * kLdL + r] * D[(kL - 1) * kLdL + k]; },
        [&](int k, int j) { return K[k * ldk + j]; }, m0, n0, m0, kL);
    for_acc(acc, m0, n0, [&](int r, int j, float& v) { Z[r * ldk + j] = v; });
  }
  __syncthreads();

  // Δ = Vᵀ diag(c) Z into the slot after the chunk; M = γ_last I − Kᵀ diag(bγ) Z into y.
  float* slot = boundary_slot(p, bb, h, c + 1);
  for (int job = warp; job < (vt + kt) * kt; job += kWarps) {
    const bool is_m = job >= vt * kt;
    const int i = is_m ? job - vt * kt : job;
    const int rt = is_m ? kt : vt, m0 = 16 * (i % rt), n0 = 16 * (i / rt);
    float acc[8] = {};
    if (is_m) {
      mma_tile<kSplit>(
          acc, [&](int r, int k) { return K[k * ldk + r] * gb[k] * gamma[k]; },
          [&](int k, int j) { return Z[k * ldk + j]; }, m0, n0, 0, kL);
      for_acc(acc, m0, n0, [&](int r, int j, float& v) {
        if (r < p.Dk && j < p.Dk)
          *transition_entry(p, bb, h, c, r * p.Dk + j) = (r == j ? gamma[kL - 1] : 0.f) - v;
      });
    } else {
      mma_tile<kSplit>(
          acc, [&](int r, int k) { return V[k * ldv + r] * gc[k]; },
          [&](int k, int j) { return Z[k * ldk + j]; }, m0, n0, 0, kL);
      for_acc(acc, m0, n0, [&](int r, int j, float& v) {
        if (r < p.Dv && j < p.Dk) slot[int64_t(r) * p.Dk + j] = v;
      });
    }
  }
}

constexpr int kScanThreads = 256;
constexpr int kScanWindow = 64;  // chunks whose products of a are staged at once
constexpr int kScanAhead = 16;   // slot loads in flight ahead of the dependent updates

// Scalar decay: boundary slot c + 1 holds Δ_c on entry and S_{c+1} on exit.
__global__ void __launch_bounds__(kScanThreads) chunk_scan_kernel(const Params p) {
  __shared__ float steps[kScanWindow * kL];
  __shared__ float gamma[kScanWindow];
  const int bb = blockIdx.y / p.H, h = blockIdx.y % p.H;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t e = int64_t(blockIdx.x) * kScanThreads + threadIdx.x;
  const int kept = p.nchunks - 1;  // chunks whose end state is a boundary slot
  float S = 0.f;
  for (int w0 = 0; w0 < kept; w0 += kScanWindow) {
    const int w1 = min(kept, w0 + kScanWindow);
    __syncthreads();  // the previous window's products have been read
    for (int i = threadIdx.x; i < (w1 - w0) * kL; i += kScanThreads) {
      const int j = i % kL, t = (w0 + i / kL) * p.chunk + j;
      steps[i] = j < p.chunk ? p.a[(int64_t(bb) * p.T + t) * p.H + h] : 1.f;
    }
    __syncthreads();
    for (int c = warp; c < w1 - w0; c += kScanThreads / 32) {
      float g = steps[c * kL + lane] * steps[c * kL + lane + 32];
      for (int o = 16; o > 0; o >>= 1) g *= __shfl_xor_sync(0xffffffffu, g, o);
      if (lane == 0) gamma[c] = g;
    }
    __syncthreads();
    if (e >= state_size(p)) continue;
    for (int c0 = w0; c0 < w1; c0 += kScanAhead) {
      float x[kScanAhead];
#pragma unroll
      for (int i = 0; i < kScanAhead; ++i)
        x[i] = c0 + i < w1 ? boundary_slot(p, bb, h, c0 + i + 1)[e] : 0.f;
#pragma unroll
      for (int i = 0; i < kScanAhead; ++i)
        if (c0 + i < w1) {
          S = gamma[c0 + i - w0] * S + x[i];
          boundary_slot(p, bb, h, c0 + i + 1)[e] = S;
        }
    }
  }
}

constexpr int kTransitionRows = 8;    // state rows per CTA of the delta rule's scan
constexpr int kTransitionStages = 3;  // chunks whose M_c and Δ_c are in flight at once
constexpr int kTransitionPer = kTransitionRows * kMaxDk / kScanThreads;  // entries per thread

// S_c's rows, then per stage M_c (Dk × Dk) and Δ_c's rows.
size_t transition_scan_smem(const Params& p) {
  const int rows = kTransitionRows * p.Dk;
  return size_t(rows + kTransitionStages * (p.Dk * p.Dk + rows)) * sizeof(float);
}

// The delta rule: S_{c+1} = S_c M_c + Δ_c for rows r0 .. r0+7 of the state, from S_1 = Δ_0 (slot
// c + 1 holds Δ_c on entry and S_{c+1} on exit). The chunks' transitions are the c = 1 .. n−2.
__global__ void __launch_bounds__(kScanThreads) chunk_transition_scan_kernel(const Params p) {
  extern __shared__ __align__(16) float smem[];
  const int bb = blockIdx.y / p.H, h = blockIdx.y % p.H, r0 = blockIdx.x * kTransitionRows;
  const int Dk = p.Dk, entries = min(kTransitionRows, p.Dv - r0) * Dk, msize = Dk * Dk;
  const int stage_size = msize + kTransitionRows * Dk, last = p.nchunks - 2;
  float* S = smem;  // [kTransitionRows][Dk]
  auto stage_of = [&](int c) {
    return smem + kTransitionRows * Dk + (c % kTransitionStages) * stage_size;
  };
  auto rows_of = [&](int c) { return boundary_slot(p, bb, h, c) + int64_t(r0) * Dk; };
  auto stage = [&](int c) {
    float* dst = stage_of(c);
    for (int i = threadIdx.x; i < msize; i += kScanThreads)
      copy4(dst + i, transition_entry(p, bb, h, c, i), true);
    for (int e = threadIdx.x; e < entries; e += kScanThreads)
      copy4(dst + msize + e, rows_of(c + 1) + e, true);
    copy_commit();
  };
  for (int e = threadIdx.x; e < entries; e += kScanThreads) S[e] = rows_of(1)[e];
  for (int c = 1; c <= min(last, kTransitionStages - 1); ++c) stage(c);
  for (int c = 1; c <= last; ++c) {
    if (c + kTransitionStages - 1 <= last) stage(c + kTransitionStages - 1);
    const int ahead = min(last - c, kTransitionStages - 1);  // groups newer than chunk c's
    if (ahead >= 2)
      copy_wait<2>();
    else if (ahead == 1)
      copy_wait<1>();
    else
      copy_wait<0>();
    __syncthreads();  // chunk c is staged and S_c written
    const float* Mc = stage_of(c);
    const float* delta = Mc + msize;
    float out[kTransitionPer];
#pragma unroll
    for (int k = 0; k < kTransitionPer; ++k) {
      const int e = threadIdx.x + k * kScanThreads, i = e / Dk, j = e % Dk;
      float s = 0.f;
      if (e < entries) {
        s = delta[e];
        for (int l = 0; l < Dk; ++l) s = fmaf(S[i * Dk + l], Mc[l * Dk + j], s);
      }
      out[k] = s;
    }
    __syncthreads();  // S_c and chunk c's stage have been read
    float* slot = rows_of(c + 1);
#pragma unroll
    for (int k = 0; k < kTransitionPer; ++k) {
      const int e = threadIdx.x + k * kScanThreads;
      if (e < entries) S[e] = slot[e] = out[k];
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Backward. Per chunk, in reverse, from S0 (boundary) and G = ∂L/∂S_end carried in shared
// memory, with g_t = G_t k_t, h_t = S_{t−1} k_t and Ĝ = diag(b) [g]:
//   [g] = (I + A)⁻ᵀ (diag(D_last,·) K Gᵀ + Mᵀ dO),  dv = c ⊙ g,  dc = v·g,  db = −a g·h,
//   dQ = diag(γ) dO S0 + (D ⊙ P1) K,                P1 = dO Uᵀ,  P2 = Ĝ Uᵀ,
//   dK = diag(D_last,·) U G − diag(γ) Ĝ S0 + (D ⊙ P1)ᵀ Q − (D_s ⊙ P2)ᵀ K − (D_s ⊙ P2) K,
//   da_t = ⟨G_t, S_{t−1}⟩ − b g·h,  G_start = γ_last G + dOᵀ diag(γ) Q − Ĝᵀ diag(γ) K,
// where ⟨G_t, S_{t−1}⟩ expands into products of the same matrices plus (P1 ⊙ QKᵀ − P2 ⊙ KKᵀ)
// times the shifted decay D⁻_tj = D_{t−1,j}: the decay's factor without a_t, never divided out.
// The normalizer is one more state row (v = 1, do = dz), owned by the first value slice.
// Every value slice adds its share of dq, dk, da, db, dc with atomics.
template <bool kSplit>
__global__ void __launch_bounds__(kThreads) backward_kernel(const Params p) {
  extern __shared__ __align__(16) float smem[];
  const Layout L = make_layout(p, true);
  const int tid = threadIdx.x, warp = tid >> 5;
  const int v0 = blockIdx.x * p.nv, nvalid = min(p.nv, p.Dv - v0);
  const int bb = blockIdx.y / p.H, h = blockIdx.y % p.H;
  const bool owner = blockIdx.x == 0;
  const int ldk = L.ldk, ldv = L.ldv, vt = p.nv / 16, kt = p.dkp / 16;
  float* Q = smem + L.q;
  float* K = smem + L.k;
  float* V = smem + L.v;
  float* dO = smem + L.dy;
  const float *ga = smem + L.gates, *gb = ga + kL, *gc = ga + 2 * kL, *gf = ga + 3 * kL;
  float* S0 = smem + L.s;
  float* norm0 = smem + L.n;
  float* G = smem + L.g;
  float* nu = smem + L.nu;
  float* D = smem + L.D;
  float* QK = smem + L.M;
  float* KK = smem + L.KK;
  float* A = smem + L.A;
  float* Tinv = smem + L.Tinv;
  float* P1 = smem + L.P1;
  float* P2 = smem + L.P2;
  float* U = smem + L.U;
  float* KS = smem + L.KS;
  float* RHS = smem + L.RHS;
  float* X = smem + L.X;
  float* Gm = smem + L.Gm;
  float* vec = smem + L.vec;
  float* gamma = vec + kGamma * kL;
  float* rho = vec + kRho * kL;
  float* sigma = vec + kSigma * kL;
  float* zsum = vec + kZsum * kL;
  float* qn0 = vec + kQn0 * kL;
  float* knu = vec + kKnu * kL;
  float* invden = vec + kInvDen * kL;
  float* dz = vec + kDz * kL;
  float* xv = vec + kX * kL;
  float* wv = vec + kW * kL;
  float* zz = vec + kZz * kL;
  float* gh = vec + kGh * kL;
  float* dcv = vec + kDc * kL;
  float* t4 = vec + kT4 * kL;
  float* rdot = vec + kRdot * kL;
  float* scalar = vec + kScalar * kL;
  auto gamma_prev = [&](int t) { return t > 0 ? gamma[t - 1] : 1.f; };
  auto d_last = [&](int t) { return D[(kL - 1) * kLdL + t]; };

  for (int e = tid; e < p.nv * ldk; e += kThreads) G[e] = 0.f;
  for (int e = tid; e < p.dkp; e += kThreads) nu[e] = 0.f;

  for (int c = p.nchunks - 1; c >= 0; --c) {
    const int t0 = c * p.chunk, len = min(p.chunk, p.T - t0);
    const int64_t token0 = int64_t(bb) * p.T + t0;
    load_tile(Q, ldk, p.dkp, p.q, token0, h, len, 0, p.Dk);
    load_tile(K, ldk, p.dkp, p.k, token0, h, len, 0, p.Dk);
    load_tile(V, ldv, p.nv, p.v, token0, h, len, v0, nvalid);
    load_tile(dO, ldv, p.nv, p.dy, token0, h, len, v0, nvalid);
    load_gates(smem + L.gates, p, bb, h, t0, len);
    load_state(p, S0, ldk, norm0, bb, h, c, v0);
    copy_commit();
    if (tid < kL) {
      zsum[tid] = wv[tid] = zz[tid] = gh[tid] = dcv[tid] = t4[tid] = 0.f;
      float r = 0.f;
      if (p.normalized && tid < len)
        for (int s = 0; s < p.dot_tiles; ++s)
          r += p.work[int64_t(s) * p.B * p.T * p.H + (token0 + tid) * p.H + h];
      rdot[tid] = r;
    }
    if (tid == 0) scalar[0] = 0.f;
    copy_wait<0>();
    __syncthreads();

    if (tid < kL) {
      decay_diagonal(D, rho, sigma, ga);
    } else if (tid < 2 * kL) {
      const int r = tid - kL;
      if (p.normalized) {
        float s = 0.f;
        for (int k = 0; k < p.dkp; ++k) s += Q[r * ldk + k] * norm0[k];
        qn0[r] = s;
      }
    } else if (tid < 3 * kL) {
      const int r = tid - 2 * kL;
      if (p.normalized) {
        float s = 0.f;
        for (int k = 0; k < p.dkp; ++k) s += K[r * ldk + k] * nu[k];
        knu[r] = s;
      }
    } else {  // ⟨G_end, S0⟩ + ν_end·n0
      float s = 0.f;
      for (int e = tid - 3 * kL; e < p.nv * p.dkp; e += kL) {
        const int r = e / p.dkp, k = e % p.dkp;
        s += G[r * ldk + k] * S0[r * ldk + k];
      }
      if (p.normalized)
        for (int k = tid - 3 * kL; k < p.dkp; k += kL) s += nu[k] * norm0[k];
      atomicAdd(scalar, s);
    }
    if (!p.delta)
      for (int e = tid; e < kL * p.nv; e += kThreads) {
        const int r = e / p.nv, col = e % p.nv;
        U[r * ldv + col] = gc[r] * V[r * ldv + col];
      }
    __syncthreads();
    decay_rest(D, gamma, rho, sigma, nullptr, nullptr, nullptr);
    __syncthreads();

    // Q Kᵀ and K Kᵀ unmasked (lower blocks), A = b D ⊙ K Kᵀ below the diagonal.
    for (int job = warp; job < (p.delta ? 32 : 16); job += kWarps) {
      const int m0 = 16 * ((job & 15) >> 2), n0 = 16 * (job & 3);
      const bool kk = job >= 16;
      float* out = kk ? KK : QK;
      if (n0 > m0) {
        zero_tile(out, kLdL, m0, n0);
        if (kk) zero_tile(A, kLdL, m0, n0);
        continue;
      }
      const float* Xin = kk ? K : Q;
      auto xa = [&](int r, int k) { return Xin[r * ldk + k]; };
      auto kb = [&](int k, int j) { return K[j * ldk + k]; };
      float acc[8] = {};
      if (!kk && p.normalized)
        mma_tile<true>(acc, xa, kb, m0, n0, 0, p.dkp);  // as in forward
      else
        mma_tile<kSplit>(acc, xa, kb, m0, n0, 0, p.dkp);
      for_acc(acc, m0, n0, [&](int r, int j, float& v) { out[r * kLdL + j] = v; });
      if (kk)
        for_acc(acc, m0, n0, [&](int r, int j, float& v) {
          A[r * kLdL + j] = j < r ? gb[r] * D[r * kLdL + j] * v : 0.f;
        });
      else if (p.normalized)
        add_row_sums(acc, m0, n0, zsum,
                     [&](int r, int j, float v) { return D[r * kLdL + j] * v * gc[j]; });
    }
    __syncthreads();

    // The divisor and ∂L/∂(nᵀq), with forward's branch of the max.
    if (tid < kL) {
      const int r = tid;
      float inv = 1.f, dzr = 0.f;
      if (p.normalized) {
        const float z = gamma[r] * qn0[r] + zsum[r];
        const bool through = fabsf(z) >= gf[r];
        const float den = (through ? fabsf(z) : gf[r]) + p.eps;
        inv = 1.f / den;
        const float d_den = -rdot[r] / (den * den);
        if (owner && r < len) {
          if (through)
            dzr = z < 0.f ? -d_den : d_den;
          else if (p.dfloor)
            atomicAdd(p.dfloor + (token0 + r) * p.H + h, d_den);
        }
      }
      invden[r] = inv;
      dz[r] = dzr;
      xv[r] = p.normalized ? dzr * qn0[r] : 0.f;
    } else if (p.delta && tid < 2 * kL) {
      invert_diagonal(Tinv, gb, D, KK, tid - kL);
    }
    if (p.delta) zero_upper_blocks(Tinv);
    __syncthreads();
    if (p.delta) invert_levels(Tinv, A, smem + L.scratch);
    if (p.normalized) {
      for (int e = tid; e < kL * p.nv; e += kThreads) {
        const int r = e / p.nv, col = e % p.nv;
        dO[r * ldv + col] *= invden[r];
      }
      __syncthreads();
    }

    // K S0ᵀ → (delta) the right-hand side of U; Q S0ᵀ → do·(S0 q).
    for (int job = warp; job < (p.delta ? 8 : 4) * vt; job += kWarps) {
      const bool ks = job >= 4 * vt;
      const int tile = ks ? job - 4 * vt : job, m0 = 16 * (tile & 3), n0 = 16 * (tile >> 2);
      const float* Xin = ks ? K : Q;
      float acc[8] = {};
      mma_tile<kSplit>(
          acc, [&](int r, int k) { return Xin[r * ldk + k]; },
          [&](int k, int j) { return S0[j * ldk + k]; }, m0, n0, 0, p.dkp);
      if (ks)
        for_acc(acc, m0, n0, [&](int r, int j, float& v) {
          KS[r * ldv + j] = v;
          RHS[r * ldv + j] = gc[r] * V[r * ldv + j] - gb[r] * gamma[r] * v;
        });
      else
        add_row_sums(acc, m0, n0, xv, [&](int r, int j, float v) { return v * dO[r * ldv + j]; });
    }
    __syncthreads();
    if (p.delta) {
      for (int job = warp; job < 4 * vt; job += kWarps) {
        const int m0 = 16 * (job & 3), n0 = 16 * (job >> 2);
        float acc[8] = {};
        mma_tile<kSplit>(
            acc, [&](int r, int k) { return Tinv[r * kLdL + k]; },
            [&](int k, int j) { return RHS[k * ldv + j]; }, m0, n0, 0, m0 + 16);
        for_acc(acc, m0, n0, [&](int r, int j, float& v) { U[r * ldv + j] = v; });
      }
      __syncthreads();
    }

    // diag(D_last) K Gᵀ + Mᵀ dO (→ g through (I + A)⁻ᵀ), and u_j · (G k_j) on the way.
    for (int job = warp; job < 4 * vt; job += kWarps) {
      const int m0 = 16 * (job & 3), n0 = 16 * (job >> 2);
      float acc[8] = {};
      mma_tile<kSplit>(
          acc, [&](int r, int k) { return K[r * ldk + k]; },
          [&](int k, int j) { return G[j * ldk + k]; }, m0, n0, 0, p.dkp);
      add_row_sums(acc, m0, n0, zz, [&](int r, int j, float v) { return v * U[r * ldv + j]; });
      for_acc(acc, m0, n0, [&](int r, int, float& v) { v *= d_last(r); });
      mma_tile<kSplit>(
          acc, [&](int r, int k) { return D[k * kLdL + r] * QK[k * kLdL + r]; },
          [&](int k, int j) { return dO[k * ldv + j]; }, m0, n0, m0, kL);
      float* out = p.delta ? X : Gm;
      for_acc(acc, m0, n0, [&](int r, int j, float& v) { out[r * ldv + j] = v; });
    }
    __syncthreads();
    if (p.delta) {
      for (int job = warp; job < 4 * vt; job += kWarps) {
        const int m0 = 16 * (job & 3), n0 = 16 * (job >> 2);
        float acc[8] = {};
        mma_tile<kSplit>(
            acc, [&](int r, int k) { return Tinv[k * kLdL + r]; },
            [&](int k, int j) { return X[k * ldv + j]; }, m0, n0, m0, kL);
        for_acc(acc, m0, n0, [&](int r, int j, float& v) { Gm[r * ldv + j] = v; });
      }
      __syncthreads();
    } else if (p.normalized) {
      // The normalizer row of g: D_last,t (k_t·ν) + Σ_{t'} M_{t't} dz_{t'}.
      if (tid < kL) {
        const int r = tid;
        float s = 0.f;
        for (int t = r; t < kL; ++t) s += D[t * kLdL + r] * QK[t * kLdL + r] * dz[t];
        dcv[r] += d_last(r) * knu[r] + s;
        zz[r] += gc[r] * knu[r];
      }
      __syncthreads();
    }

    // dv = c ⊙ g, v·g and b g·(S0 k): four threads per row.
    {
      const int r = tid >> 2, part = tid & 3, per = p.nv / 4;
      float s_dc = 0.f, s_w = 0.f;
      for (int j = part * per; j < (part + 1) * per; ++j) {
        const float gm = Gm[r * ldv + j];
        s_dc += V[r * ldv + j] * gm;
        if (p.delta) s_w += gm * KS[r * ldv + j];
        if (r < len && j < nvalid)
          atomicAdd(p.dv.p + (token0 + r) * p.dv.row + h * p.dv.head + v0 + j, gc[r] * gm);
      }
      atomicAdd(dcv + r, s_dc);
      if (p.delta) atomicAdd(wv + r, gb[r] * s_w);
    }
    // h = diag(γ⁻) K S0ᵀ + (D⁻ ⊙ K Kᵀ) U → g·h; P1 = dO Uᵀ (+ dz cᵀ); P2 = Ĝ Uᵀ.
    {
      const int n_h = p.delta ? 4 * vt : 0, n_p = p.delta ? 32 : 16;
      for (int job = warp; job < n_h + n_p; job += kWarps) {
        float acc[8] = {};
        if (job < n_h) {
          const int m0 = 16 * (job & 3), n0 = 16 * (job >> 2);
          for_acc(acc, m0, n0,
                  [&](int r, int j, float& v) { v = gamma_prev(r) * KS[r * ldv + j]; });
          mma_tile<kSplit>(
              acc,
              [&](int r, int k) { return k < r ? D[(r - 1) * kLdL + k] * KK[r * kLdL + k] : 0.f; },
              [&](int k, int j) { return U[k * ldv + j]; }, m0, n0, 0, m0 + 16);
          add_row_sums(acc, m0, n0, gh, [&](int r, int j, float v) { return v * Gm[r * ldv + j]; });
          continue;
        }
        const bool second = job - n_h >= 16;
        const int tile = (job - n_h) & 15, m0 = 16 * (tile >> 2), n0 = 16 * (tile & 3);
        float* out = second ? P2 : P1;
        if (n0 > m0) {
          zero_tile(out, kLdL, m0, n0);
          continue;
        }
        if (second)
          mma_tile<kSplit>(
              acc, [&](int r, int k) { return gb[r] * Gm[r * ldv + k]; },
              [&](int k, int j) { return U[j * ldv + k]; }, m0, n0, 0, p.nv);
        else
          mma_tile<kSplit>(
              acc, [&](int r, int k) { return dO[r * ldv + k]; },
              [&](int k, int j) { return U[j * ldv + k]; }, m0, n0, 0, p.nv);
        for_acc(acc, m0, n0, [&](int r, int j, float& v) {
          out[r * kLdL + j] = second ? v : v + dz[r] * gc[j];
        });
      }
    }
    __syncthreads();

    // dQ, dK (atomics: value slices and shared heads add up) and the pair term of da.
    for (int job = warp; job < 8 * kt + 16; job += kWarps) {
      float acc[8] = {};
      if (job < 4 * kt) {
        const int m0 = 16 * (job & 3), n0 = 16 * (job >> 2);
        mma_tile<kSplit>(
            acc, [&](int r, int k) { return dO[r * ldv + k]; },
            [&](int k, int j) { return S0[k * ldk + j]; }, m0, n0, 0, p.nv);
        for_acc(acc, m0, n0, [&](int r, int j, float& v) {
          v = gamma[r] * (p.normalized ? v + dz[r] * norm0[j] : v);
        });
        mma_tile<kSplit>(
            acc, [&](int r, int k) { return D[r * kLdL + k] * P1[r * kLdL + k]; },
            [&](int k, int j) { return K[k * ldk + j]; }, m0, n0, 0, m0 + 16);
        for_acc(acc, m0, n0, [&](int r, int j, float& v) {
          if (r < len && j < p.Dk)
            atomicAdd(p.dq.p + (token0 + r) * p.dq.row + h * p.dq.head + j, v);
        });
      } else if (job < 8 * kt) {
        const int tile = job - 4 * kt, m0 = 16 * (tile & 3), n0 = 16 * (tile >> 2);
        mma_tile<kSplit>(
            acc, [&](int r, int k) { return U[r * ldv + k]; },
            [&](int k, int j) { return G[k * ldk + j]; }, m0, n0, 0, p.nv);
        for_acc(acc, m0, n0, [&](int r, int j, float& v) {
          v = d_last(r) * (p.normalized ? v + gc[r] * nu[j] : v);
        });
        if (p.delta)
          mma_tile<kSplit>(
              acc, [&](int r, int k) { return -gamma[r] * gb[r] * Gm[r * ldv + k]; },
              [&](int k, int j) { return S0[k * ldk + j]; }, m0, n0, 0, p.nv);
        mma_tile<kSplit>(
            acc, [&](int r, int k) { return D[k * kLdL + r] * P1[k * kLdL + r]; },
            [&](int k, int j) { return Q[k * ldk + j]; }, m0, n0, m0, kL);
        if (p.delta) {
          mma_tile<kSplit>(
              acc, [&](int r, int k) { return k > r ? -D[k * kLdL + r] * P2[k * kLdL + r] : 0.f; },
              [&](int k, int j) { return K[k * ldk + j]; }, m0, n0, m0, kL);
          mma_tile<kSplit>(
              acc, [&](int r, int k) { return k < r ? -D[r * kLdL + k] * P2[r * kLdL + k] : 0.f; },
              [&](int k, int j) { return K[k * ldk + j]; }, m0, n0, 0, m0 + 16);
        }
        for_acc(acc, m0, n0, [&](int r, int j, float& v) {
          if (r < len && j < p.Dk)
            atomicAdd(p.dk.p + (token0 + r) * p.dk.row + h * p.dk.head + j, v);
        });
      } else {
        // R = E D⁻ᵀ with E = P1 ⊙ QKᵀ − P2 ⊙ KKᵀ below the diagonal; t4_t = Σ_{t'≥t} D_t't R_t't.
        const int tile = job - 8 * kt, m0 = 16 * (tile >> 2), n0 = 16 * (tile & 3);
        if (n0 > m0) continue;
        mma_tile<kSplit>(
            acc,
            [&](int r, int k) {
              if (k >= r) return 0.f;
              const float e = P1[r * kLdL + k] * QK[r * kLdL + k];
              return p.delta ? e - P2[r * kLdL + k] * KK[r * kLdL + k] : e;
            },
            [&](int k, int j) { return k < j ? D[(j - 1) * kLdL + k] : 0.f; }, m0, n0, 0, n0 + 16);
        add_col_sums(acc, m0, n0, t4, [&](int r, int j, float v) { return D[r * kLdL + j] * v; });
      }
    }
    __syncthreads();

    // da, db, dc; then G and ν move to the chunk's start.
    if (tid < kL) {
      const int r = tid;
      const float gp = gamma_prev(r);
      float t2 = 0.f, t5 = 0.f;
      for (int j = 0; j < r; ++j) {
        const float dm = D[(r - 1) * kLdL + j];
        t2 += dm * zz[j];
        if (p.delta) t5 += P2[r * kLdL + j] * KK[r * kLdL + j] * dm;
      }
      float t3 = 0.f;
      for (int t = r; t < kL; ++t) t3 += D[t * kLdL + r] * (t > r ? xv[t] - wv[t] : xv[t]);
      const float da = d_last(r) * (gp * scalar[0] + t2) + gp * t3 + t4[r] + t5 - gb[r] * gh[r];
      if (r < len) {
        const int64_t i = (token0 + r) * p.H + h;
        atomicAdd(p.da + i, da);
        atomicAdd(p.dc + i, dcv[r]);
        if (p.delta) atomicAdd(p.db + i, -ga[r] * gh[r]);
      }
    }
    for (int job = warp; job < vt * kt; job += kWarps) {
      const int m0 = 16 * (job % vt), n0 = 16 * (job / vt);
      float acc[8] = {};
      mma_tile<kSplit>(
          acc, [&](int r, int k) { return dO[k * ldv + r]; },
          [&](int k, int j) { return gamma[k] * Q[k * ldk + j]; }, m0, n0, 0, kL);
      if (p.delta)
        mma_tile<kSplit>(
            acc, [&](int r, int k) { return -gb[k] * Gm[k * ldv + r]; },
            [&](int k, int j) { return gamma[k] * K[k * ldk + j]; }, m0, n0, 0, kL);
      for_acc(acc, m0, n0,
              [&](int r, int j, float& v) { G[r * ldk + j] = gamma[kL - 1] * G[r * ldk + j] + v; });
    }
    if (p.normalized)
      for (int k = tid; k < p.dkp; k += kThreads) {
        float s = 0.f;
        for (int t = 0; t < kL; ++t) s += gamma[t] * dz[t] * Q[t * ldk + k];
        nu[k] = gamma[kL - 1] * nu[k] + s;
      }
    __syncthreads();
  }
}

// ---------------------------------------------------------------------------------------------
// Host side.

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

In in_rows(const cpu::Rows<const float>& r, int64_t width) {
  const bool aligned = reinterpret_cast<uintptr_t>(r.data) % 16 == 0;
  return {r.data, r.row, r.head, aligned && r.row % 4 == 0 && r.head % 4 == 0 && width % 4 == 0};
}
Out out_rows(const cpu::Rows<float>& r) { return {r.data, r.row, r.head}; }

Params base_params(const cpu::LinearRecurrence<float>& r) {
  Params p{};
  p.B = int(r.B), p.T = int(r.T), p.H = int(r.H), p.Dk = int(r.Dk), p.Dv = int(r.Dv);
  p.chunk = int(r.chunk);
  p.nchunks = int(ceil_div(r.T, r.chunk));
  p.dkp = int(ceil_div(r.Dk, 16) * 16);
  p.stages = 1;
  p.span = p.nchunks;
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
  return p;
}

size_t smem_bytes(const Params& p, bool backward) {
  return size_t(make_layout(p, backward).total) * sizeof(float);
}

// The widest value slice (64, 32 or 16 columns, no wider than Dv needs) whose shared memory
// fits, narrowed further while B·H·slices < min_ctas so that small batches still fill the GPU.
int pick_nv(Params p, bool backward, int64_t min_ctas) {
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
int dot_nv(const cpu::LinearRecurrence<float>& r) {
  Params p = base_params(r);
  return pick_nv(p, false, 0);
}

template <class Kernel>
void launch(const Context& ctx, Kernel kernel, dim3 grid, const Params& p, size_t bytes) {
  SL_CHECK(bytes <= ctx.max_shared_per_block,
           "linear recurrence (chunkwise): needs " + std::to_string(bytes) +
               " bytes of shared memory per block, the device allows " +
               std::to_string(ctx.max_shared_per_block));
  SL_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
  kernel<<<grid, kThreads, bytes, ctx.stream>>>(p);
  SL_CUDA_LAUNCH_CHECK();
}

void check_supported(const cpu::LinearRecurrence<float>& r) {
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

}  // namespace

// Dk <= 128, Dv <= 256 (value slices of 16..64 columns), 16 <= chunk <= 64 (one chunk per
// 64-step tile; shorter chunks are padded), and grid dimensions in range.
bool supports(const cpu::LinearRecurrence<float>& p) {
  if (p.Dk < 1 || p.Dk > kMaxDk || p.Dv < 1 || p.Dv > kMaxDv) return false;
  if (p.chunk < kMinChunk || p.chunk > kL) return false;
  if (p.B < 1 || p.T < 1 || p.H < 1 || p.B * p.H > 65535) return false;
  if (p.T > (int64_t(1) << 30) || ceil_div(p.T, p.chunk) > 65535) return false;
  Params q = base_params(p);
  q.nv = 16;
  return smem_bytes(q, false) <= kSmemLimit && smem_bytes(q, true) <= kSmemLimit;
}

namespace {

// The delta rule's transitions wait in y (see transition_entry).
bool transition_fits(const Params& p) { return !p.delta || p.Dk * p.Dk <= p.chunk * p.Dv; }

// The walk keeps B·H·⌈Dv / 16⌉ CTAs at most, each latency-bound through the chunks in order:
// below two per SM, with chunks enough to share out, the chunk-parallel form fills the GPU.
bool chunk_parallel_pays(const Context& ctx, const Params& p) {
  return transition_fits(p) && p.boundary && p.nchunks >= 8 &&
         int64_t(p.B) * p.H * ceil_div(p.Dv, 16) < 2 * int64_t(ctx.sm_count);
}

void forward_chunk_parallel(const Context& ctx, const Params& p) {
  SL_CHECK_SHAPE(transition_fits(p),
                 "linear recurrence (chunk-parallel): the delta rule keeps each chunk's Dk × Dk "
                 "transition in the chunk's outputs, which needs Dk² <= chunk·Dv (Dk=" +
                     std::to_string(p.Dk) + " Dv=" + std::to_string(p.Dv) +
                     " chunk=" + std::to_string(p.chunk) + ")");
  SL_CHECK_SHAPE(p.boundary || p.nchunks == 1,
                 "linear recurrence (chunk-parallel): the boundary states are required to pass "
                 "states between its " +
                     std::to_string(p.nchunks) + " chunks");
  const bool split = ctx.precision == Precision::fp32;
  if (p.nchunks > 1) {
    Params s = p;
    s.nv = int(ceil_div(p.Dv, 16) * 16);
    const dim3 chunks(unsigned(p.B * p.H), unsigned(p.nchunks - 1));
    if (p.delta) {
      launch(ctx, split ? chunk_transition_kernel<true> : chunk_transition_kernel<false>, chunks, s,
             size_t(make_transition_layout(s).total) * sizeof(float));
      if (p.nchunks > 2)
        launch(ctx, chunk_transition_scan_kernel,
               dim3(unsigned(ceil_div(p.Dv, kTransitionRows)), unsigned(p.B * p.H)), p,
               transition_scan_smem(p));
    } else {
      launch(ctx, split ? chunk_state_kernel<true> : chunk_state_kernel<false>, chunks, s,
             chunk_state_smem(s));
      const dim3 grid(unsigned(ceil_div(state_size(p), kScanThreads)), unsigned(p.B * p.H));
      chunk_scan_kernel<<<grid, kScanThreads, 0, ctx.stream>>>(p);
      SL_CUDA_LAUNCH_CHECK();
    }
  }
  Params o = p;
  o.from_boundary = true;
  o.span = 1;
  o.nv = pick_nv(o, false, 0);
  const dim3 grid(unsigned(ceil_div(o.Dv, o.nv)), unsigned(o.B * o.H), unsigned(o.nchunks));
  launch(ctx, split ? forward_kernel<true> : forward_kernel<false>, grid, o, smem_bytes(o, false));
}

}  // namespace

// Within supports(), the parallel kernels' shared memory fits (at most about 213 KB, at Dk = 128
// and Dv = 256), so only the transitions' room in y decides.
bool supports_parallel(const cpu::LinearRecurrence<float>& r) {
  return supports(r) && transition_fits(base_params(r));
}

void forward(const Context& ctx, const cpu::LinearRecurrence<float>& r, Schedule schedule) {
  check_supported(r);
  Params p = base_params(r);
  if (schedule == Schedule::parallel ||
      (schedule == Schedule::automatic && chunk_parallel_pays(ctx, p)))
    return forward_chunk_parallel(ctx, p);
  p.nv = pick_nv(p, false, ctx.sm_count);
  p.stages = 2;
  if (smem_bytes(p, false) > kSmemLimit) p.stages = 1;
  const dim3 grid(unsigned(ceil_div(p.Dv, p.nv)), unsigned(p.B * p.H), 1);
  if (ctx.precision == Precision::fp32)
    launch(ctx, forward_kernel<true>, grid, p, smem_bytes(p, false));
  else
    launch(ctx, forward_kernel<false>, grid, p, smem_bytes(p, false));
}

// B·T·H·⌈Dv / slice⌉ floats for a normalized cell (each value slice's dy·(S q) per step, summed
// by backward), nothing otherwise: states are recomputed from p.boundary, not stored.
int64_t work_size(const cpu::LinearRecurrence<float>& p) {
  if (!p.floor || !supports(p)) return 0;
  return p.B * p.T * p.H * ceil_div(p.Dv, dot_nv(p));
}

void backward(const Context& ctx, const cpu::LinearRecurrence<float>& r,
              const cpu::LinearRecurrenceGrads<float>& g, float* work) {
  check_supported(r);
  cpu::linear_recurrence_check_backward(r, g);
  SL_CHECK_SHAPE(work_size(r) == 0 || work,
                 "linear recurrence (chunkwise) backward: work is required");
  Params p = base_params(r);
  p.dy = in_rows(g.dy, r.Dv);
  p.dq = out_rows(g.dq), p.dk = out_rows(g.dk), p.dv = out_rows(g.dv);
  p.da = g.da, p.db = g.db, p.dc = g.dc, p.dfloor = g.dfloor;
  p.work = work;
  const bool split = ctx.precision == Precision::fp32;
  if (p.normalized) {
    Params d = p;
    d.from_boundary = d.dot_mode = true;
    d.nv = dot_nv(r);
    d.span = 1;
    const dim3 grid(unsigned(ceil_div(d.Dv, d.nv)), unsigned(d.B * d.H), unsigned(d.nchunks));
    if (split)
      launch(ctx, forward_kernel<true>, grid, d, smem_bytes(d, false));
    else
      launch(ctx, forward_kernel<false>, grid, d, smem_bytes(d, false));
    p.dot_tiles = int(grid.x);
  }
  p.nv = pick_nv(p, true, ctx.sm_count);
  const dim3 grid(unsigned(ceil_div(p.Dv, p.nv)), unsigned(p.B * p.H), 1);
  if (split)
    launch(ctx, backward_kernel<true>, grid, p, smem_bytes(p, true));
  else
    launch(ctx, backward_kernel<false>, grid, p, smem_bytes(p, true));
}

}  // namespace statelab::cuda::chunkwise
