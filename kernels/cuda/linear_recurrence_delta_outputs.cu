// The chunk-parallel forward's last step for the delta rule (Gated DeltaNet) on CUDA: every
// chunk's outputs at once from its start state, which the transition scan of
// linear_recurrence_chunk_parallel.cu left in the boundary slot, and the final state from the last
// chunk. The walk's forward_kernel (linear_recurrence_chunkwise.cu) computes the same products,
// but it carries the state from chunk to chunk in registers and keeps D whole; without that this
// kernel keeps D's diagonal blocks only, holds the start state's share of the outputs in
// registers across the solve so that the inverse can take Q's and K's place, and so fits three
// CTAs an SM at Dk = Dv = 32 (71 KB) where the walk's kernel fits two. Every chunk but the last
// loads the triangular inverse the transition kernel solved (p.work), so forms no A and runs no
// solve, its barrier-bound phase. Checked, through the forward, against the CPU twin by
// kernels/selftest/linear_recurrence.cpp.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/chunkwise_common.cuh"
#include "kernels/cuda/chunkwise_inverse.cuh"

namespace statelab::cuda::chunkwise::internal {

namespace {

// Shared memory (offsets in floats): Q and K (Tinv in their place once the products that read
// them are done, its upper blocks the inverse's scratch), V (the right-hand side in its place),
// the gates, the start state's slice S0, D's diagonal blocks, P = D ⊙ Q Kᵀ, A = b D ⊙ K Kᵀ (U
// once the inverse is built) and the per-step vectors γ, ρ, σ and D's last row. A chunk whose
// inverse is loaded has it where A would be, and U where Q and K were.
struct DeltaOutputsLayout {
  int ldk, ldv, q, k, v, gates, s, Dd, P, A, vec, total;
};

enum DeltaOutputsVector { kDoGamma, kDoRho, kDoSigma, kDoLast, kDoVectors };

// Output tiles a warp holds across the solve: 4 row blocks × at most 4 column blocks over 8 warps.
constexpr int kHeldTiles = 4 * (kMaxNv / 16) / kWarps;

__host__ __device__ inline DeltaOutputsLayout make_delta_outputs_layout(const Params& p) {
  DeltaOutputsLayout l{};
  l.ldk = p.dkp + 4;
  l.ldv = p.nv + 4;
  Offsets o;
  const int square = kL * kLdL;
  l.q = o.take(2 * kL * l.ldk > square ? 2 * kL * l.ldk : square);
  l.k = l.q + kL * l.ldk;
  l.v = o.take(kL * l.ldv);
  l.gates = o.take(4 * kL);
  l.s = o.take(p.nv * l.ldk);
  l.Dd = o.take(kL * kDiagLd);
  l.P = o.take(square);
  // U, kL × ldv with ldv <= kMaxNv + 4 = kLdL, fits here after the inverse, and over Q and K.
  l.A = o.take(square);
  l.vec = o.take(kDoVectors * kL);
  l.total = o.at;
  return l;
}

// Per chunk, from the slice S0 of its start state (rows = value columns v0..):
//   U = (I + A)⁻¹ (diag(c) V − diag(bγ) K S0ᵀ),  Y = diag(γ) Q S0ᵀ + (D ⊙ Q Kᵀ) U,
// and for the last chunk, where the final state is asked for,
//   S_end = γ_last S0 + Uᵀ diag(D_last) K.
// One CTA per (value slice, b·h, chunk). Where p.work is set, every chunk but the last loads
// (I + A)⁻¹ from it and forms no A.
template <bool kSplit>
__global__ void __launch_bounds__(kThreads, 3) delta_outputs_kernel(const Params p) {
  extern __shared__ __align__(16) float smem[];
  const DeltaOutputsLayout L = make_delta_outputs_layout(p);
  const int tid = threadIdx.x, warp = tid >> 5, ldk = L.ldk, ldv = L.ldv;
  const int vt = p.nv / 16, kt = p.dkp / 16;
  const int v0 = blockIdx.x * p.nv, nvalid = min(p.nv, p.Dv - v0);
  const int bb = blockIdx.y / p.H, h = blockIdx.y % p.H, c = blockIdx.z;
  const int t0 = c * p.chunk, len = min(p.chunk, p.T - t0);
  const int64_t token0 = int64_t(bb) * p.T + t0;
  const bool keeps_final = p.final_state && c == p.nchunks - 1;
  const bool loads_inverse = p.work && c + 1 < p.nchunks;  // solved by the transition kernel
  float *Q = smem + L.q, *K = smem + L.k, *V = smem + L.v, *ga = smem + L.gates;
  const float *gb = ga + kL, *gc = ga + 2 * kL;
  float *S = smem + L.s, *Dd = smem + L.Dd, *P = smem + L.P, *A = smem + L.A;
  float *Tinv = loads_inverse ? A : Q, *RHS = V, *U = loads_inverse ? Q : A;
  float* vec = smem + L.vec;
  float *gamma = vec + kDoGamma * kL, *rho = vec + kDoRho * kL, *sigma = vec + kDoSigma * kL;
  float* d_last = vec + kDoLast * kL;

  load_state(p, S, ldk, nullptr, bb, h, c, v0);
  load_tile(Q, ldk, p.dkp, p.q, token0, h, len, 0, p.Dk);
  load_tile(K, ldk, p.dkp, p.k, token0, h, len, 0, p.Dk);
  load_tile(V, ldv, p.nv, p.v, token0, h, len, v0, nvalid);
  load_gates(ga, p, bb, h, t0, len);
  if (loads_inverse) load_inverse(Tinv, inverse_slot(p, bb, h, c));
  copy_commit();
  copy_wait<0>();
  __syncthreads();
  decay_diagonal_cta(Dd, rho, sigma, ga, kDiagLd, 15);
  __syncthreads();

  // Every product that reads Q or K: P and, unless the inverse is loaded, A on the ten lower
  // blocks, the right-hand side diag(c) V − diag(bγ) K S0ᵀ over V in place (each warp reads only
  // the tile it writes), and the warp's own output tiles' Q S0ᵀ, held in registers.
  if (tid < kL) {
    gamma[tid] = block_decay(rho, tid, 0);
    d_last[tid] = last_row_decay(rho, sigma, tid);
  }
  float held[kHeldTiles][8];
#pragma unroll
  for (int i = 0; i < kHeldTiles; ++i) {
    const int job = warp + kWarps * i, m0 = 16 * (job & 3), n0 = 16 * (job >> 2);
#pragma unroll
    for (int e = 0; e < 8; ++e) held[i][e] = 0.f;
    if (job < 4 * vt) mma_tile_abt<kSplit>(held[i], Q, ldk, S, ldk, m0, n0, 0, p.dkp);
  }
  const int blocks = loads_inverse ? 10 : 20;
  for (int job = warp; job < blocks + 4 * vt; job += kWarps) {
    float acc[8] = {};
    if (job < blocks) {
      const bool scores = job < 10;
      int bt, bj;
      lower_block(scores ? job : job - 10, bt, bj);
      mma_tile_abt<kSplit>(acc, scores ? Q : K, ldk, K, ldk, 16 * bt, 16 * bj, 0, p.dkp);
      decay_block(acc, bt, bj, Dd, rho, sigma, [&](int r, int) { return scores ? 1.f : gb[r]; });
      float* out = scores ? P : A;
      for_acc(acc, 16 * bt, 16 * bj, [&](int r, int j, float& v) { out[r * kLdL + j] = v; });
      continue;
    }
    const int i = job - blocks, m0 = 16 * (i & 3), n0 = 16 * (i >> 2);
    mma_tile_abt<kSplit>(acc, K, ldk, S, ldk, m0, n0, 0, p.dkp);
    const int g = (tid & 31) >> 2;
    const float gamma0 = block_decay(rho, m0 + g, 0), gamma8 = block_decay(rho, m0 + g + 8, 0);
    for_acc(acc, m0, n0, [&](int r, int j, float& v) {
      const float bg = gb[r] * (r - m0 < 8 ? gamma0 : gamma8);
      RHS[r * ldv + j] = gc[r] * V[r * ldv + j] - bg * v;
    });
  }
  __syncthreads();  // Q and K are read: the inverse, or U where it was loaded, takes their place

  if (!loads_inverse) {
    if (tid < kL) invert_diagonal(Tinv, [&](int t, int i) { return A[t * kLdL + i]; }, tid);
    __syncthreads();
    invert_levels(Tinv, A, Tinv + 32, kLdL);
  }
  apply_inverse<kSplit>(Tinv, RHS, U, ldv, vt, warp, kWarps);  // U over A or Q, read by no one now
  __syncthreads();

  // The final state (the last chunk's, which solves its own inverse) needs K again, where Tinv
  // was.
  if (keeps_final) {
    load_tile(K, ldk, p.dkp, p.k, token0, h, len, 0, p.Dk);
    copy_commit();
  }
#pragma unroll
  for (int i = 0; i < kHeldTiles; ++i) {
    const int job = warp + kWarps * i, m0 = 16 * (job & 3), n0 = 16 * (job >> 2);
    if (job >= 4 * vt) continue;
    for_acc(held[i], m0, n0, [&](int r, int, float& v) { v *= gamma[r]; });
    mma_tile<kSplit>(
        held[i], [&](int r, int k) { return P[r * kLdL + k]; },
        [&](int k, int j) { return U[k * ldv + j]; }, m0, n0, 0, m0 + 16);
    store_output_tile(held[i], m0, n0, p.y, token0, h, v0, len, nvalid, [](int) { return 1.f; });
  }
  if (!keeps_final) return;
  copy_wait<0>();
  __syncthreads();
  float* final_state = p.final_state + (int64_t(bb) * p.H + h) * state_size(p);
  for (int job = warp; job < vt * kt; job += kWarps) {
    const int m0 = 16 * (job % vt), n0 = 16 * (job / vt);
    float acc[8] = {};
    mma_tile<kSplit>(
        acc, [&](int r, int k) { return U[k * ldv + r]; },
        [&](int k, int j) { return d_last[k] * K[k * ldk + j]; }, m0, n0, 0, kL);
    for_acc(acc, m0, n0, [&](int r, int j, float& v) {
      if (r < nvalid && j < p.Dk)
        final_state[int64_t(v0 + r) * p.Dk + j] = gamma[kL - 1] * S[r * ldk + j] + v;
    });
  }
}

}  // namespace

// The widest value slice: every slice solves the chunk's system again, and at kMaxNv the
// shared memory still fits (156 KB at Dk = 128).
int delta_outputs_nv(const Params& p) {
  int nv = 16;
  while (nv < kMaxNv && nv < p.Dv) nv *= 2;
  return nv;
}

void launch_delta_outputs(const Context& ctx, const Params& p, dim3 grid) {
  SL_CHECK(p.delta, "linear recurrence (chunkwise): the delta outputs kernel needs a delta term");
  launch(
      ctx,
      ctx.precision == Precision::fp32 ? delta_outputs_kernel<true> : delta_outputs_kernel<false>,
      grid, p, size_t(make_delta_outputs_layout(p).total) * sizeof(float));
}

}  // namespace statelab::cuda::chunkwise::internal
