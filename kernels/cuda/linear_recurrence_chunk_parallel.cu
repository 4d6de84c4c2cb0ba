// The chunk-parallel forward's first two steps for the chunkwise linear recurrence on CUDA (the
// third is the outputs kernel of linear_recurrence_chunk_outputs.cu for scalar decay, the forward
// kernel of linear_recurrence_chunkwise.cu for the delta rule): every chunk's own contribution
// to its end state at once, then a scan over the chunks that leaves in each boundary slot the
// state at its chunk's start (and, for scalar decay, in the final state the one at the end).
// Checked, through the forward, against the CPU twin by kernels/selftest/linear_recurrence.cpp.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "kernels/cuda/chunkwise_common.cuh"
#include "kernels/cuda/chunkwise_inverse.cuh"
#include "kernels/cuda/lane_sum.cuh"

namespace statelab::cuda::chunkwise::internal {

namespace {

// The chunk-parallel forward. A chunk's end state is affine in its start state,
//   S_end = S0 M + Δ,  M = γ_last I − Kᵀ diag(bγ) Z,  Δ = Vᵀ diag(c) Z,  Z = Tinvᵀ diag(D_last,·) K
// (the forward's U and S_end with S0 factored out; without a delta term M = γ_last I and
// Δ = Vᵀ diag(w) K, w_t = c_t Π_{t<l≤last} a_l). Three launches replace the walk over chunks:
//   1. one CTA per chunk but the last: Δ into the boundary slot after the chunk, and for the delta
//      rule M into the chunk's rows of y, which nothing reads before step 3 writes them, and the
//      chunk's triangular inverse into p.work; for scalar decay the last chunk too where the
//      final state is asked for, its Δ into that;
//   2. a scan over the chunks per (b, h): S_{c+1} = S_c M_c + Δ_c in place, γ_c S_c + Δ_c for
//      scalar decay (one thread per state element), the matrix product for the delta rule (a warp
//      per 4 state rows and 32 columns, M_c and Δ_c staged up to seven chunks ahead);
//   3. every chunk's outputs at once from the boundary; for the delta rule also the last one's
//      end state.
// It moves the boundary states through memory twice more than the walk does, but its parallelism
// is B·H·chunks instead of B·H·value slices, so few long sequences stop being latency-bound.

// Where M_c's entry i (row-major Dk × Dk) waits in y: row t0 + i / Dv, column i % Dv of chunk c,
// as chunk c's first entry plus the offset of entry i, which is the same in every chunk. The
// quotient by one multiply (p.dv_inverse), as a division for every entry made the stores of M
// and the scan's staging of it cost more than their products; __umulhi of i · 2^8 is
// (i · dv_inverse) >> 24 without a 64-bit product.
__device__ __forceinline__ float* transition_start(const Params& p, int bb, int h, int c) {
  return p.y.p + (int64_t(bb) * p.T + int64_t(c) * p.chunk) * p.y.row + h * p.y.head;
}
__device__ __forceinline__ int64_t transition_offset(const Params& p, int i) {
  static_assert(kMaxDk * kMaxDk <= (1 << 14) && kMaxDv <= 256, "the range dv_inverse is exact in");
  const int row = int(__umulhi(uint32_t(i) << 8, p.dv_inverse)), col = i - row * p.Dv;
  return int64_t(row) * p.y.row + col;
}
__device__ __forceinline__ float* transition_entry(const Params& p, int bb, int h, int c, int i) {
  return transition_start(p, bb, h, c) + transition_offset(p, i);
}

// Chunks whose end state step 1 and the scalar decay's scan produce: every one but the last, and
// the last as well where the final state is asked for.
__host__ __device__ __forceinline__ int chunk_ends(const Params& p) {
  return p.nchunks - 1 + (p.final_state ? 1 : 0);
}

// Where chunk c's end state goes: the boundary slot of the chunk after it, or the final state.
__device__ __forceinline__ float* end_state(const Params& p, int bb, int h, int c) {
  return c + 1 < p.nchunks ? boundary_slot(p, bb, h, c + 1)
                           : p.final_state + (int64_t(bb) * p.H + h) * state_size(p);
}

// K, V (p.nv columns) and the gates of this CTA's chunk blockIdx.y of (b, h) = blockIdx.x (the
// last may be short; its padding steps are identities), ready to read.
__device__ void load_chunk(const Params& p, float* K, int ldk, float* V, int ldv, float* gates) {
  const int bb = blockIdx.x / p.H, h = blockIdx.x % p.H, t0 = blockIdx.y * p.chunk;
  const int len = min(p.chunk, p.T - t0);
  const int64_t token0 = int64_t(bb) * p.T + t0;
  load_tile(K, ldk, p.dkp, p.k, token0, h, len, 0, p.Dk);
  load_tile(V, ldv, p.nv, p.v, token0, h, len, 0, p.Dv);
  load_gates(gates, p, bb, h, t0, len);
  copy_commit();
  copy_wait<0>();
  __syncthreads();
}

// chunk_state_kernel's product runs k over the steps, so it reads both tiles down their columns:
// lanes (g, t) read step t, column g. A leading dimension of width + 8 (width a multiple of 16,
// so ≡ 8 or 24 mod 32) puts those 32 words in 32 banks; width + 4, right for tiles read along
// their rows, conflicted two ways on every fragment load here.
__host__ __device__ inline int column_read_ld(int width) { return width + 8; }

// Shared memory of chunk_state_kernel: K, then for each of its p.head_group heads the V tile (as
// wide as p.nv), the gates and w.
__host__ __device__ inline int chunk_state_head_floats(const Params& p) {
  return kL * column_read_ld(p.nv) + 5 * kL;
}
size_t chunk_state_smem(const Params& p) {
  return size_t(kL * column_read_ld(p.dkp) + p.head_group * chunk_state_head_floats(p)) *
         sizeof(float);
}

// Six CTAs an SM (40 registers; 48 fit five): the kernel mostly waits on its loads, so more of
// them in flight pay (warps active 52 -> 66% at mLSTM B16 T16384 H4). 3xTF32 stays at five, as
// it spills in 40. Heads that share k (Mamba-2's one group) share a CTA, p.head_group of them,
// which loads K once for them all. Single TF32 rounds the product's operands once in shared
// memory, V as V ⊙ w, rather than at every fragment they enter (p.dkp / 16 tiles for V,
// p.nv / 16 · p.head_group for K; K stays fp32 for a normalizer, whose Kᵀ w is a plain sum): at
// Mamba-2 L (four heads a CTA) that took the kernel from 132 to 125 µs under ncu on an H200.
template <bool kSplit>
__global__ void __launch_bounds__(kThreads, kSplit ? 5 : 6) chunk_state_kernel(const Params p) {
  extern __shared__ __align__(16) float smem[];
  const int ldk = column_read_ld(p.dkp), ldv = column_read_ld(p.nv);
  const int groups = p.H / p.head_group, c = blockIdx.y;
  const int bb = blockIdx.x / groups, h0 = (blockIdx.x % groups) * p.head_group;
  float* K = smem;
  auto V_of = [&](int i) { return smem + kL * ldk + i * chunk_state_head_floats(p); };
  auto gates_of = [&](int i) { return V_of(i) + kL * ldv; };
  auto w_of = [&](int i) { return gates_of(i) + 4 * kL; };
  {
    const int t0 = c * p.chunk, len = min(p.chunk, p.T - t0);
    const int64_t token0 = int64_t(bb) * p.T + t0;
    load_tile(K, ldk, p.dkp, p.k, token0, h0, len, 0, p.Dk);
    for (int i = 0; i < p.head_group; ++i) {
      load_tile(V_of(i), ldv, p.nv, p.v, token0, h0 + i, len, 0, p.Dv);
      load_gates(gates_of(i), p, bb, h0 + i, t0, len);
    }
    copy_commit();
    copy_wait<0>();
    if (!kSplit && !p.normalized) round_tile(K, ldk, p.dkp, p.k);
    __syncthreads();
  }
  // w_t = c_t · Π of a after t (padding steps are identities: a = 1, c = 0), by a suffix scan
  // over a warp a head, lane l holding steps 2l and 2l + 1: one thread's chain of 64 products
  // kept the other 255 waiting.
  static_assert(kL == 64, "two steps a lane");
  for (int i = threadIdx.x >> 5; i < p.head_group; i += kWarps) {
    const int l = threadIdx.x & 31;
    const float* gates = gates_of(i);
    const float a0 = gates[2 * l], a1 = gates[2 * l + 1];
    float* w = w_of(i);
    float suffix = a0 * a1;  // inclusive, over lanes l..31
    for (int o = 1; o < 32; o *= 2) {
      const float v = __shfl_down_sync(kFullMask, suffix, o);
      if (l + o < 32) suffix *= v;
    }
    float after = __shfl_down_sync(kFullMask, suffix, 1);  // Π of a after step 2l + 1
    if (l == 31) after = 1.f;
    w[2 * l + 1] = gates[2 * kL + 2 * l + 1] * after;
    w[2 * l] = gates[2 * kL + 2 * l] * (a1 * after);
  }
  __syncthreads();
  if constexpr (!kSplit) {  // V ⊙ w, four columns a thread
    for (int i = 0; i < p.head_group; ++i) {
      const float* w = w_of(i);
      round_rows(V_of(i), ldv, kL, p.nv, true, [&](int k) { return w[k]; });
    }
    __syncthreads();
  }
  const int vt = p.nv / 16, kt = p.dkp / 16, warp = threadIdx.x >> 5;
  for (int job = warp; job < p.head_group * vt * kt; job += kWarps) {
    const int i = job / (vt * kt), tile = job - i * vt * kt;
    const int m0 = 16 * (tile % vt), n0 = 16 * (tile / vt);
    const float* V = V_of(i);
    float* slot = end_state(p, bb, h0 + i, c);
    float acc[8] = {};
    auto k_of = [&](int k, int j) { return K[k * ldk + j]; };
    if constexpr (kSplit) {
      const float* w = w_of(i);
      mma_tile<true>(
          acc, [&](int r, int k) { return V[k * ldv + r] * w[k]; }, k_of, m0, n0, 0, kL);
    } else {
      auto vw_of = [&](int r, int k) { return V[k * ldv + r]; };
      if (p.normalized)
        mma_tile<false, kRoundedA>(acc, vw_of, k_of, m0, n0, 0, kL);
      else
        mma_tile<false, kRoundedBoth>(acc, vw_of, k_of, m0, n0, 0, kL);
    }
    for_acc_pairs(acc, m0, n0, [&](int r, int j, float e0, float e1) {
      if (r < p.Dv) store_pair(slot + int64_t(r) * p.Dk + j, e0, e1, j, p.Dk, p.state_pairs);
    });
  }
  // n's share, Kᵀ w: four threads a column (neighbouring lanes), every fourth step each.
  if (p.normalized) {
    constexpr int kPer = 4;
    static_assert(kL % kPer == 0, "every thread of a column sums as many steps");
    const int part = threadIdx.x % kPer;
    for (int i = 0; i < p.head_group; ++i) {
      const float* w = w_of(i);
      float* slot = end_state(p, bb, h0 + i, c);
      for (int k0 = 0; k0 < p.Dk; k0 += kThreads / kPer) {
        const int k = k0 + threadIdx.x / kPer;
        float s = 0.f;
        if (k < p.Dk)  // steps part, part + 4, ...: a warp's reads of K spread over the banks
          for (int t = part; t < kL; t += kPer) s += w[t] * K[t * ldk + k];
        s = lane_sum(s, kPer);
        if (k < p.Dk && part == 0) slot[int64_t(p.Dv) * p.Dk + k] = s;
      }
    }
  }
}

// The delta rule's step 1: K, V (p.nv = Dv rounded up to 16), the gates, Tinv (D's diagonal
// blocks before it, the inverse's scratch in its upper blocks, which nothing reads), A (Z after
// the inverse) and the per-step vectors γ, ρ, σ, D's last row and bγ (offsets in floats,
// multiples of 4). At Dk = Dv = 32 that is 54 KB, four CTAs an SM.
struct TransitionLayout {
  int ldk, ldv, k, v, gates, Tinv, A, vec, total;
};

enum TransitionVector { kTrGamma, kTrRho, kTrSigma, kTrLast, kTrBg, kTrVectors };

__host__ __device__ inline TransitionLayout make_transition_layout(const Params& p) {
  TransitionLayout l{};
  l.ldk = p.dkp + 4;
  l.ldv = p.nv + 4;
  Offsets o;
  l.k = o.take(kL * l.ldk);
  l.v = o.take(kL * l.ldv);
  l.gates = o.take(4 * kL);
  l.Tinv = o.take(kL * kLdL);
  l.A = o.take(kL * (kLdL > l.ldk ? kLdL : l.ldk));
  l.vec = o.take(kTrVectors * kL);
  l.total = o.at;
  return l;
}

template <bool kSplit>
__global__ void __launch_bounds__(kThreads, 4) chunk_transition_kernel(const Params p) {
  extern __shared__ __align__(16) float smem[];
  const TransitionLayout L = make_transition_layout(p);
  const int tid = threadIdx.x, warp = tid >> 5, ldk = L.ldk, ldv = L.ldv;
  const int vt = p.nv / 16, kt = p.dkp / 16;
  const int bb = blockIdx.x / p.H, h = blockIdx.x % p.H, c = blockIdx.y;
  float *K = smem + L.k, *V = smem + L.v, *ga = smem + L.gates;
  const float *gb = ga + kL, *gc = ga + 2 * kL;
  float *Tinv = smem + L.Tinv, *A = smem + L.A, *Dd = Tinv, *Z = A;
  float* vec = smem + L.vec;
  float *gamma = vec + kTrGamma * kL, *rho = vec + kTrRho * kL, *sigma = vec + kTrSigma * kL;
  float *d_last = vec + kTrLast * kL, *bg = vec + kTrBg * kL;
  load_chunk(p, K, ldk, V, ldv, ga);

  decay_diagonal_cta(Dd, rho, sigma, ga, kDiagLd, 15);
  __syncthreads();
  if (tid < kL) {
    gamma[tid] = block_decay(rho, tid, 0);
    d_last[tid] = last_row_decay(rho, sigma, tid);
    bg[tid] = gb[tid] * gamma[tid];
  }
  for (int job = warp; job < 10; job += kWarps) {  // A = b D ⊙ K Kᵀ on the lower blocks
    int bt, bj;
    lower_block(job, bt, bj);
    float acc[8] = {};
    mma_tile_abt<kSplit>(acc, K, ldk, K, ldk, 16 * bt, 16 * bj, 0, p.dkp);
    decay_block(acc, bt, bj, Dd, rho, sigma, [&](int r, int) { return gb[r]; });
    for_acc(acc, 16 * bt, 16 * bj, [&](int r, int j, float& v) { A[r * kLdL + j] = v; });
  }
  __syncthreads();  // D's table is read: the inverse's diagonal blocks take its place
  if (tid < kL) invert_diagonal(Tinv, [&](int t, int i) { return A[t * kLdL + i]; }, tid);
  __syncthreads();
  invert_levels(Tinv, A, Tinv + 32, kLdL);
  if (p.work) store_inverse(inverse_slot(p, bb, h, c), Tinv);  // for the outputs kernel

  // Z = Tinvᵀ diag(D_last,·) K over A; Tinv is lower, so only rows s >= t of it reach Z's row t.
  for (int job = warp; job < 4 * kt; job += kWarps) {
    const int m0 = 16 * (job & 3), n0 = 16 * (job >> 2);
    float acc[8] = {};
    mma_tile<kSplit>(
        acc, [&](int r, int k) { return Tinv[k * kLdL + r] * d_last[k]; },
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
          acc, [&](int r, int k) { return K[k * ldk + r] * bg[k]; },
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
constexpr int kScanAhead = 16;   // slot loads in flight while the updates before them run
static_assert(kScanWindow % kScanAhead == 0, "a window starts with a group of loads");

// kVec (1 or 4) consecutive floats as one load or store, 4·kVec-byte aligned.
template <int kVec>
__device__ __forceinline__ void load_vec(const float* at, float (&x)[kVec]) {
  static_assert(kVec == 1 || kVec == 4, "one float or a float4");
  if constexpr (kVec == 4) {
    const float4 v = *reinterpret_cast<const float4*>(at);
    x[0] = v.x, x[1] = v.y, x[2] = v.z, x[3] = v.w;
  } else {
    x[0] = *at;
  }
}
template <int kVec>
__device__ __forceinline__ void store_vec(float* at, const float (&x)[kVec]) {
  if constexpr (kVec == 4)
    *reinterpret_cast<float4*>(at) = make_float4(x[0], x[1], x[2], x[3]);
  else
    *at = x[0];
}

// Scalar decay: chunk c's end state (end_state) holds Δ_c on entry and S_{c+1} on exit. Each
// thread issues the loads of the next kScanAhead chunks before it updates the current ones, and
// a window's products of a are staged while those loads are in flight (Mamba-2 B16 T16384 H4
// under ncu: 109 µs with loads and updates taking turns, 94 µs so). A thread takes kVec
// neighbouring entries, 16-byte loads and stores where the slots allow: with one, ncu saw the
// schedulers issue at 70% of their rate and DRAM at 54% of its, the kernel bound by a load, an
// FMA, a store and their addresses an entry and chunk (H200, A/B on one machine, Mamba-2 L:
// 0.506 -> 0.502 ms). Four entries keep sixteen 16-byte loads in flight a thread and take 174
// registers, one CTA an SM (Mamba-2 L has 128).
template <int kVec>
__global__ void __launch_bounds__(kScanThreads, 4 / kVec) chunk_scan_kernel(const Params p) {
  __shared__ float steps[kScanWindow * kL];
  __shared__ float gamma[kScanWindow];
  const int bb = blockIdx.y / p.H, h = blockIdx.y % p.H;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t e = (int64_t(blockIdx.x) * kScanThreads + threadIdx.x) * kVec;
  const bool active = e < state_size(p);
  const int kept = chunk_ends(p);
  // end_state(p, bb, h, c) + e without branches, so that the loads issue back to back; past the
  // last kept chunk they read that one again.
  const int64_t size = state_size(p), bh = int64_t(bb) * p.H + h;
  float* const slots = p.boundary ? p.boundary + bh * (p.nchunks - 1) * size + e : nullptr;
  float* const last = p.final_state ? p.final_state + bh * size + e : nullptr;
  auto slot = [&](int c) { return c + 1 < p.nchunks ? slots + c * size : last; };
  float next[kScanAhead][kVec];
  auto load = [&](int c0) {
#pragma unroll
    for (int i = 0; i < kScanAhead; ++i) load_vec<kVec>(slot(min(c0 + i, kept - 1)), next[i]);
  };
  if (active) load(0);
  float S[kVec] = {};
  for (int c0 = 0; c0 < kept; c0 += kScanAhead) {
    const int w0 = c0 - c0 % kScanWindow;
    if (c0 == w0) {  // stage the window's γ
      const int w1 = min(kept, w0 + kScanWindow);
      __syncthreads();  // the previous window's products have been read
      for (int i = threadIdx.x; i < (w1 - w0) * kL; i += kScanThreads) {
        const int j = i % kL, t = (w0 + i / kL) * p.chunk + j;
        steps[i] = j < p.chunk && t < p.T ? p.a[(int64_t(bb) * p.T + t) * p.H + h] : 1.f;
      }
      __syncthreads();
      for (int c = warp; c < w1 - w0; c += kScanThreads / 32) {
        float g = steps[c * kL + lane] * steps[c * kL + lane + 32];
        for (int o = 16; o > 0; o >>= 1) g *= __shfl_xor_sync(0xffffffffu, g, o);
        if (lane == 0) gamma[c] = g;
      }
      __syncthreads();
    }
    if (!active) continue;
    float x[kScanAhead][kVec];
#pragma unroll
    for (int i = 0; i < kScanAhead; ++i)
#pragma unroll
      for (int u = 0; u < kVec; ++u) x[i][u] = next[i][u];
    if (c0 + kScanAhead < kept) load(c0 + kScanAhead);
#pragma unroll
    for (int i = 0; i < kScanAhead; ++i)
      if (c0 + i < kept) {
        const float g = gamma[c0 + i - w0];
#pragma unroll
        for (int u = 0; u < kVec; ++u) S[u] = g * S[u] + x[i][u];
        store_vec<kVec>(slot(c0 + i), S);
      }
  }
}

// The delta rule's scan is a chain of nchunks − 2 dependent products S_{c+1} = S_c M_c + Δ_c
// per (b, h). A warp owns kScanRows state rows and 32 of their columns (lane j column j) and sums
// them in registers from broadcast reads of the rows in shared memory: a step is its lanes' 4·Dk
// FMAs (two chains a row) and one CTA barrier for the staged M_c and the rows written the step
// before. At GDN B16 T16384 H4 (Dk = 32) on an H200 that took 285 µs under ncu against 317 µs
// for one thread an entry with two barriers a step, with one warp a scheduler issuing about 650
// instructions a step, most of them index and loop arithmetic; with Dk fixed at compile time
// (below) the whole op went from 1.218 to 1.108 ms.
constexpr int kScanRows = 4;       // state rows a warp keeps
constexpr int kMaxScanStages = 8;  // chunks staged at once, two of them being read or refilled
constexpr int kScanCtaWarps = 8;   // the widest CTA

// A CTA of the delta rule's scan: `groups` warps' worth of kScanRows rows, each row's columns
// split over `column_blocks` warps of 32.
struct TransitionScanShape {
  int column_blocks, groups, stages;
  __host__ __device__ int rows() const { return kScanRows * groups; }
  __host__ __device__ int threads() const { return 32 * column_blocks * groups; }
};

// Shared memory: S's rows twice (read one step, written the next), then per stage M_c and Δ_c's
// rows; S's rows padded to a multiple of 4 columns for 16-byte broadcast reads.
__host__ __device__ inline int scan_row_ld(int Dk) { return (Dk + 3) & ~3; }
__host__ __device__ inline int scan_stage_floats(int Dk, const TransitionScanShape& s) {
  return Dk * Dk + s.rows() * Dk;
}
__host__ __device__ inline size_t transition_scan_smem(const Params& p,
                                                       const TransitionScanShape& s) {
  return size_t(2 * s.rows() * scan_row_ld(p.Dk) + s.stages * scan_stage_floats(p.Dk, s)) *
         sizeof(float);
}

// cp.async.wait_group for a count known only at run time, at most kMax.
template <int kMax>
__device__ __forceinline__ void copy_wait_upto(int pending) {
  if constexpr (kMax == 0) {
    copy_wait<0>();
  } else {
    if (pending >= kMax)
      copy_wait<kMax>();
    else
      copy_wait_upto<kMax - 1>(pending);
  }
}

// The delta rule: S_{c+1} = S_c M_c + Δ_c for this CTA's rows of the state, from S_1 = Δ_0 (slot
// c + 1 holds Δ_c on entry and S_{c+1} on exit). The chunks' transitions are the c = 1 .. n−2.
// kDk > 0 fixes Dk at compile time: the step's loops unroll into FMAs on constant offsets, where
// with Dk at run time most of a step's instructions were index and loop arithmetic.
template <int kDk>
__global__ void __launch_bounds__(kScanCtaWarps * 32) chunk_transition_scan_kernel(
    const Params p, const TransitionScanShape shape) {
  extern __shared__ __align__(16) float smem[];
  const int Dk = kDk > 0 ? kDk : p.Dk, ld = scan_row_ld(Dk), msize = Dk * Dk;
  const int bb = blockIdx.y / p.H, h = blockIdx.y % p.H, r0 = blockIdx.x * shape.rows();
  const int last = p.nchunks - 2, rows = min(shape.rows(), p.Dv - r0);
  const int stage_size = scan_stage_floats(Dk, shape);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int i0 = kScanRows * (warp / shape.column_blocks);
  const int j = 32 * (warp % shape.column_blocks) + lane;
  const bool mine = j < Dk;
  const int jr = min(j, Dk - 1);  // a column to read for lanes past Dk, whose sums are dropped
  float* S_read = smem;                      // S_c's rows
  float* S_write = smem + shape.rows() * ld;  // S_{c+1}'s
  // Chunk c is staged in stage (c − 1) mod stages; the refill of chunk c + stages − 1 takes the
  // stage of chunk c − 1, which every warp has read by the barrier that opens step c.
  float* const stages_begin = smem + 2 * shape.rows() * ld;
  float* const stages_end = stages_begin + shape.stages * stage_size;
  float* reading = stages_begin;
  float* refilling = stages_end - stage_size;
  auto rows_of = [&](int c) { return boundary_slot(p, bb, h, c) + int64_t(r0) * Dk; };
  // M_c by 16-byte copies where y's rows allow them (four entries never straddle a row then);
  // Δ_c's rows are contiguous in the slot.
  const bool m_vec4 = Dk % 2 == 0 && p.Dv % 4 == 0 && p.y.row % 4 == 0 && p.y.head % 4 == 0 &&
                      reinterpret_cast<uintptr_t>(p.y.p) % 16 == 0;
  const int mw = m_vec4 ? 4 : 1, dw = p.state_vec4 ? 4 : 1, entries = rows * Dk;
  auto stage = [&](float* dst, int c) {
    const float* m = transition_start(p, bb, h, c);
    for (int i = threadIdx.x * mw; i < msize; i += blockDim.x * mw) {
      if (m_vec4)
        copy16(dst + i, m + transition_offset(p, i), true);
      else
        copy4(dst + i, m + transition_offset(p, i), true);
    }
    const float* delta = rows_of(c + 1);
    for (int e = threadIdx.x * dw; e < entries; e += blockDim.x * dw) {
      if (dw == 4)
        copy16(dst + msize + e, delta + e, true);
      else
        copy4(dst + msize + e, delta + e, true);
    }
    copy_commit();
  };
  for (int e = threadIdx.x; e < shape.rows() * ld; e += blockDim.x) {  // S_1, and S_2's padding
    const int i = e / ld, col = e % ld;
    S_read[e] = i < rows && col < Dk ? rows_of(1)[i * Dk + col] : 0.f;
    S_write[e] = 0.f;
  }
  const int ahead = min(last, shape.stages - 1);
  for (int c = 1; c <= ahead; ++c) stage(stages_begin + (c - 1) * stage_size, c);
  for (int c = 1; c <= last; ++c) {
    // Chunk c's copies are done once no more than the groups newer than its are pending.
    copy_wait_upto<kMaxScanStages - 2>(min(last - c, shape.stages - 2));
    __syncthreads();  // chunk c staged, S_c written, and chunk c − 1's stage read by every warp
    if (c + shape.stages - 1 <= last) stage(refilling, c + shape.stages - 1);
    const float* Mc = reading;
    const float* delta = Mc + msize;
    refilling = reading;
    reading = reading + stage_size == stages_end ? stages_begin : reading + stage_size;
    float even[kScanRows], odd[kScanRows];
#pragma unroll
    for (int i = 0; i < kScanRows; ++i) {
      even[i] = i0 + i < rows ? delta[(i0 + i) * Dk + jr] : 0.f;
      odd[i] = 0.f;
    }
    const float* S = S_read + i0 * ld;
    const float* Mj = Mc + jr;
#pragma unroll
    for (int l = 0; l + 4 <= Dk; l += 4) {
      const float m0 = Mj[l * Dk], m1 = Mj[(l + 1) * Dk];
      const float m2 = Mj[(l + 2) * Dk], m3 = Mj[(l + 3) * Dk];
#pragma unroll
      for (int i = 0; i < kScanRows; ++i) {
        const float4 s = *reinterpret_cast<const float4*>(S + i * ld + l);
        even[i] = fmaf(s.x, m0, even[i]);
        odd[i] = fmaf(s.y, m1, odd[i]);
        even[i] = fmaf(s.z, m2, even[i]);
        odd[i] = fmaf(s.w, m3, odd[i]);
      }
    }
#pragma unroll
    for (int l = Dk & ~3; l < Dk; ++l) {
      const float m = Mj[l * Dk];
#pragma unroll
      for (int i = 0; i < kScanRows; ++i) even[i] = fmaf(S[i * ld + l], m, even[i]);
    }
    float* slot = rows_of(c + 1);
#pragma unroll
    for (int i = 0; i < kScanRows; ++i)
      if (mine && i0 + i < rows) {
        const float s = even[i] + odd[i];
        S_write[(i0 + i) * ld + j] = s;
        slot[(i0 + i) * Dk + j] = s;
      }
    float* const written = S_write;
    S_write = S_read;
    S_read = written;
  }
}

// The scan's CTA shape: as many rows as 8 warps hold, halved while the grid leaves SMs idle, so
// that the warps, each with its own chain of steps, spread over the SMs' schedulers instead of
// sharing them; and as many stages as leave room for two CTAs an SM (for one where even two
// stages do not: Dk = 128).
TransitionScanShape transition_scan_shape(const Context& ctx, const Params& p) {
  TransitionScanShape s{};
  s.column_blocks = int(ceil_div(p.Dk, 32));
  s.groups = std::max(1, kScanCtaWarps / s.column_blocks);
  while (s.groups > 1 && int64_t(p.B) * p.H * ceil_div(p.Dv, s.rows()) < ctx.sm_count)
    s.groups /= 2;
  s.stages = 2;
  const size_t budget = transition_scan_smem(p, s) <= kSmemLimit / 2 ? kSmemLimit / 2 : kSmemLimit;
  for (TransitionScanShape deeper = s; deeper.stages++ < kMaxScanStages;)
    if (transition_scan_smem(p, deeper) <= budget) s = deeper;
  return s;
}

}  // namespace

void scan_chunk_states(const Context& ctx, const Params& p) {
  // One chunk starts from zero; only scalar decay's final state can still be asked of it here.
  if (p.delta ? p.nchunks == 1 : chunk_ends(p) == 0) return;
  SL_CHECK_SHAPE(p.boundary || p.nchunks == 1,
                 "linear recurrence (chunk-parallel): the boundary states are required to pass "
                 "states between its " +
                     std::to_string(p.nchunks) + " chunks");
  const bool split = ctx.precision == Precision::fp32;
  Params s = p;
  s.nv = int(ceil_div(p.Dv, 16) * 16);
  if (!p.delta) {
    if (p.k.head == 0)  // three CTAs an SM still
      s.head_group = shared_head_group(ctx, s, chunk_ends(p), [&](const Params& t) {
        return chunk_state_smem(t) <= kSmemLimit / 3;
      });
    launch(ctx, split ? chunk_state_kernel<true> : chunk_state_kernel<false>,
           dim3(unsigned(p.B * p.H / s.head_group), unsigned(chunk_ends(p))), s,
           chunk_state_smem(s));
    if (p.nchunks == 1) return;  // from the zero state, the one chunk's Δ is its end state
    // Four entries a thread where every slot starts on 16 bytes (the state size a multiple of 4).
    const bool vec4 = state_size(p) % 4 == 0 && reinterpret_cast<uintptr_t>(p.boundary) % 16 == 0 &&
                      reinterpret_cast<uintptr_t>(p.final_state) % 16 == 0;
    const int vec = vec4 ? 4 : 1;
    const dim3 grid(unsigned(ceil_div(state_size(p), kScanThreads * vec)), unsigned(p.B * p.H));
    if (vec4)
      chunk_scan_kernel<4><<<grid, kScanThreads, 0, ctx.stream>>>(p);
    else
      chunk_scan_kernel<1><<<grid, kScanThreads, 0, ctx.stream>>>(p);
    SL_CUDA_LAUNCH_CHECK();
    return;
  }
  SL_CHECK_SHAPE(transition_fits(p),
                 "linear recurrence (chunk-parallel): the delta rule keeps each chunk's Dk × Dk "
                 "transition in the chunk's outputs, which needs Dk² <= chunk·Dv (Dk=" +
                     std::to_string(p.Dk) + " Dv=" + std::to_string(p.Dv) +
                     " chunk=" + std::to_string(p.chunk) + ")");
  SL_CHECK_SHAPE(y_apart_from_inputs(p),
                 "linear recurrence (chunk-parallel): the delta rule keeps each chunk's transition "
                 "in y, which here overlaps an input");
  launch(ctx, split ? chunk_transition_kernel<true> : chunk_transition_kernel<false>,
         dim3(unsigned(p.B * p.H), unsigned(p.nchunks - 1)), s,
         size_t(make_transition_layout(s).total) * sizeof(float));
  if (p.nchunks > 2) {
    const TransitionScanShape shape = transition_scan_shape(ctx, p);
    const auto kernel = p.Dk == 16   ? chunk_transition_scan_kernel<16>
                        : p.Dk == 32 ? chunk_transition_scan_kernel<32>
                        : p.Dk == 64 ? chunk_transition_scan_kernel<64>
                                     : chunk_transition_scan_kernel<0>;
    launch(ctx, kernel, dim3(unsigned(ceil_div(p.Dv, shape.rows())), unsigned(p.B * p.H)), p,
           transition_scan_smem(p, shape), shape.threads(), shape);
  }
}

}  // namespace statelab::cuda::chunkwise::internal
