// The chunk-parallel forward's last step for scalar decay (mLSTM, Mamba-2) on CUDA, and the
// normalizer pass of the chunkwise backward: every chunk's outputs at once from its start state,
// which the scan of linear_recurrence_chunk_parallel.cu left in the boundary slot. The walk's
// forward_kernel (linear_recurrence_chunkwise.cu) computes the same products, but it also carries
// the state, the delta rule's solve and the whole decay matrix D; without them this kernel holds
// the decays in registers, keeps only D's diagonal blocks and takes three barriers, so at L (mLSTM,
// B16 T16384) four CTAs share an SM where the walk's kernel fits two. Checked, through forward
// and backward, against the CPU twin by kernels/selftest/linear_recurrence.cpp.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/chunkwise_common.cuh"

namespace statelab::cuda::chunkwise::internal {

namespace {

enum OutputVector { kOutGamma, kOutRho, kOutSigma, kOutZsum, kOutQn0, kOutRdot };

// Shared memory: the chunk's Q, K, V tiles and gates, the start state's slice S0 and n0, the
// decayed scores P = D ⊙ Q Kᵀ ⊙ c (blocks on and below the diagonal), D's diagonal blocks and the
// per-step vectors (offsets in floats); n0 and rdot only where they are used. A CTA taking
// several heads keeps Q Kᵀ undecayed in `raw`, where P would be, and P over K (dead once Q Kᵀ
// is computed) where K's tile is wide enough.
struct OutputsLayout {
  int ldk, ldv, q, k, v, gates, s, n, P, Dd, vec, raw, total;
};

__host__ __device__ inline OutputsLayout make_outputs_layout(const Params& p) {
  OutputsLayout l{};
  l.ldk = p.dkp + 4;
  l.ldv = p.nv + 4;
  Offsets o;
  l.q = o.take(kL * l.ldk);
  l.k = o.take(kL * l.ldk);
  l.v = o.take(kL * l.ldv);
  l.gates = o.take(4 * kL);
  l.s = o.take(p.nv * l.ldk);
  l.n = o.take(p.normalized ? p.dkp : 0);
  l.P = o.take(kL * kLdL);
  l.Dd = o.take(kL * kDiagLd);
  l.vec = o.take((p.dot_mode ? kOutRdot + 1 : kOutRdot) * kL);
  l.raw = -1;
  if (p.head_group > 1) {
    l.raw = l.P;
    l.P = l.ldk >= kLdL ? l.k : o.take(kL * kLdL);
  }
  l.total = o.at;
  return l;
}

// Y = [diag(γ) Q S0ᵀ + (D ⊙ Q Kᵀ) diag(c) V] over max(|γ q·n0 + Σ_j (D ⊙ Q Kᵀ)_tj c_j|, floor)
// + eps for a normalized cell, the numerator alone otherwise; one CTA per (value slice, b and
// p.head_group heads, chunk). Heads that share q and k (Mamba-2's one group) share Q Kᵀ, which
// then is computed once and only decayed per head (at Dk = 64, Dv = 32: 80 of 184 tile k-steps).
template <bool kSplit>
__global__ void __launch_bounds__(kThreads, 4) outputs_kernel(const Params p) {
  extern __shared__ __align__(16) float smem[];
  const OutputsLayout L = make_outputs_layout(p);
  const int tid = threadIdx.x, warp = tid >> 5, ldk = L.ldk, ldv = L.ldv, vt = p.nv / 16;
  const int v0 = blockIdx.x * p.nv, nvalid = min(p.nv, p.Dv - v0);
  const int groups = p.H / p.head_group, c = blockIdx.z;
  const int bb = blockIdx.y / groups, h0 = (blockIdx.y % groups) * p.head_group;
  const int t0 = c * p.chunk, len = min(p.chunk, p.T - t0);
  const int64_t token0 = int64_t(bb) * p.T + t0;
  const bool divides = p.normalized && !p.dot_mode;  // the dot partials take the numerator only
  // A normalizer's scores always split: nᵀq sums them and can cancel.
  const bool split_scores = kSplit || p.normalized;
  float *Q = smem + L.q, *K = smem + L.k, *V = smem + L.v, *ga = smem + L.gates;
  const float *gc = ga + 2 * kL, *gf = ga + 3 * kL;
  float *S = smem + L.s, *n = smem + L.n, *P = smem + L.P, *Dd = smem + L.Dd;
  float* raw = p.head_group > 1 ? smem + L.raw : nullptr;
  float* vec = smem + L.vec;
  float *gamma = vec + kOutGamma * kL, *rho = vec + kOutRho * kL, *sigma = vec + kOutSigma * kL;
  float *zsum = vec + kOutZsum * kL, *qn0 = vec + kOutQn0 * kL, *rdot = vec + kOutRdot * kL;

  auto scores = [&](float(&acc)[8], int m0, int n0) {
    if (split_scores)
      mma_tile_abt<true>(acc, Q, ldk, K, ldk, m0, n0, 0, p.dkp);
    else
      mma_tile_abt<false>(acc, Q, ldk, K, ldk, m0, n0, 0, p.dkp);
  };
  auto load_head = [&](int h) {
    load_state(p, S, ldk, n, bb, h, c, v0);
    load_tile(V, ldv, p.nv, p.v, token0, h, len, v0, nvalid);
    load_gates(ga, p, bb, h, t0, len);
    copy_commit();
  };
  load_tile(Q, ldk, p.dkp, p.q, token0, h0, len, 0, p.Dk);
  load_tile(K, ldk, p.dkp, p.k, token0, h0, len, 0, p.Dk);
  load_head(h0);
  if (raw) {  // Q Kᵀ on the ten blocks on and below the diagonal, once for all the heads
    copy_wait<0>();
    __syncthreads();
    for (int job = warp; job < 10; job += kWarps) {
      int bt, bj;
      lower_block(job, bt, bj);
      float acc[8] = {};
      scores(acc, 16 * bt, 16 * bj);
      for_acc(acc, 16 * bt, 16 * bj, [&](int r, int j, float& v) { raw[r * kLdL + j] = v; });
    }
  }

  for (int h = h0; h < h0 + p.head_group; ++h) {
    if (h > h0) {
      __syncthreads();  // the last head's reads of V, S, the gates and the vectors are done
      load_head(h);
    }
    if (tid < kL) {
      zsum[tid] = 0.f;
      if (p.dot_mode) rdot[tid] = 0.f;
    }
    copy_wait<0>();
    __syncthreads();

    // D's diagonal blocks and the in-block products; q·n0 beside them.
    if (tid < kL) {
      decay_diagonal(Dd, rho, sigma, ga, kDiagLd, 15);
    } else if (tid < 2 * kL && divides) {
      const int r = tid - kL;
      float s = 0.f;
      for (int k = 0; k < p.dkp; ++k) s += Q[r * ldk + k] * n[k];
      qn0[r] = s;
    }
    __syncthreads();

    // P on the ten blocks on and below the diagonal (the product with V reads no others), decayed
    // in registers: the diagonal blocks from their table, the others as ρ_t · (whole blocks
    // between) · σ_j. For a normalizer, its row sums too.
    if (tid < kL) gamma[tid] = block_decay(rho, tid, 0);
    for (int job = warp; job < 10; job += kWarps) {
      int bt, bj;
      lower_block(job, bt, bj);
      const int m0 = 16 * bt, n0 = 16 * bj;
      float acc[8] = {};
      if (raw)
        for_acc(acc, m0, n0, [&](int r, int j, float& v) { v = raw[r * kLdL + j]; });
      else
        scores(acc, m0, n0);
      decay_block(acc, bt, bj, Dd, rho, sigma, [&](int, int j) { return gc[j]; });
      for_acc(acc, m0, n0, [&](int r, int j, float& v) { P[r * kLdL + j] = v; });
      if (divides) add_row_sums(acc, m0, n0, zsum, [](int, int, float v) { return v; });
    }
    __syncthreads();

    auto den = [&](int r) {
      return divides ? fmaxf(fabsf(gamma[r] * qn0[r] + zsum[r]), gf[r]) + p.eps : 1.f;
    };
    for (int job = warp; job < 4 * vt; job += kWarps) {
      const int m0 = 16 * (job & 3), n0 = 16 * (job >> 2);
      float acc[8];
      start_state_part<kSplit>(acc, Q, S, ldk, p.dkp, gamma, m0, n0);
      mma_tile_rows<kSplit>(
          acc, P, kLdL, [&](int k, int j) { return V[k * ldv + j]; }, m0, n0, 0, m0 + 16);
      if (p.dot_mode) {
        add_row_sums(acc, m0, n0, rdot, [&](int r, int j, float v) {
          return r < len && j < nvalid
                     ? v * p.dy.p[(token0 + r) * p.dy.row + h * p.dy.head + v0 + j]
                     : 0.f;
        });
      } else {
        store_output_tile(acc, m0, n0, p.y, token0, h, v0, len, nvalid,
                          [&](int r) { return 1.f / den(r); });
      }
    }
    if (p.dot_mode) {
      __syncthreads();
      if (tid < len)
        p.work[int64_t(blockIdx.x) * p.B * p.T * p.H + (token0 + tid) * p.H + h] = rdot[tid];
    }
  }
}

}  // namespace

void launch_outputs(const Context& ctx, Params p) {
  SL_CHECK(!p.delta, "linear recurrence (chunkwise): the outputs kernel takes scalar decay only");
  if (p.q.head == 0 && p.k.head == 0)  // sharing adds one square tile at most: it always fits
    p.head_group = shared_head_group(ctx, p, ceil_div(p.Dv, p.nv) * p.nchunks,
                                     [](const Params&) { return true; });
  const dim3 grid(unsigned(ceil_div(p.Dv, p.nv)), unsigned(p.B * p.H / p.head_group),
                  unsigned(p.nchunks));
  launch(ctx, ctx.precision == Precision::fp32 ? outputs_kernel<true> : outputs_kernel<false>, grid,
         p, size_t(make_outputs_layout(p).total) * sizeof(float));
}

}  // namespace statelab::cuda::chunkwise::internal
