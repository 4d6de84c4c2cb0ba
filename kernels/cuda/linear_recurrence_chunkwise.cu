// The chunkwise linear recurrence on CUDA (DESIGN §3), twin of forward_chunkwise in
// kernels/cpu/linear_recurrence.cpp: the forward kernel and the public entry points. One CTA per
// (batch row, head, slice of value columns) walks the chunks in order with its slice of the state
// in shared memory: no scratch and one pass over the inputs, at the price of parallelism over
// B·H·slices only; where that leaves the GPU idle, the chunk-parallel schedule computes the
// chunks at once from states scanned beforehand. Products inside a chunk run on the tensor cores
// (3xTF32 for fp32). Checked against the CPU twin by kernels/selftest/linear_recurrence.cpp.
#include "kernels/cuda/linear_recurrence_chunkwise.hpp"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "kernels/cuda/chunkwise_common.cuh"
#include "kernels/cuda/chunkwise_inverse.cuh"

namespace statelab::cuda::chunkwise {

namespace internal {
namespace {

// ---------------------------------------------------------------------------------------------
// Forward. Per chunk, from the slice S0 of the start state (rows = value columns v0..):
//   U = (I + A)⁻¹ (diag(c) V − diag(bγ) K S0ᵀ)   (b = 0: U = diag(c) V)
//   Y = diag(γ) Q S0ᵀ + (D ⊙ Q Kᵀ) U,   S_end = γ_last S0 + Uᵀ diag(D_last,·) K,
// with the normalizer n (a Dk vector) on the FFMA pipes beside it. Four barriers per chunk for
// b = 0: the products that need no decay run beside its diagonal blocks, D is applied while
// reading Q Kᵀ, and the output tiles share a phase with the state update, whose tiles stay in
// registers across one barrier.
template <bool kSplit>
__global__ void __launch_bounds__(kThreads) forward_kernel(const Params p) {
  extern __shared__ __align__(16) float smem[];
  const Layout L = make_layout(p, false);
  const int tid = threadIdx.x, warp = tid >> 5;
  const int v0 = blockIdx.x * p.nv, nvalid = min(p.nv, p.Dv - v0);
  const int bb = blockIdx.y / p.H, h = blockIdx.y % p.H;
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
  // D's last row: aside for the delta rule, whose D is folded into Q Kᵀ and then overwritten.
  float* d_last = p.delta ? smem + L.d_last : D + (kL - 1) * kLdL;
  float* gamma = vec + kGamma * kL;
  float* rho = vec + kRho * kL;
  float* sigma = vec + kSigma * kL;
  float* zsum = vec + kZsum * kL;
  float* qn0 = vec + kQn0 * kL;

  load_state(p, S, ldk, n, bb, h, 0, v0);
  auto issue = [&](int c) {
    float* st = smem + (c % p.stages) * L.stage;
    const int t0 = c * p.chunk, len = min(p.chunk, p.T - t0);
    const int64_t token0 = int64_t(bb) * p.T + t0;
    load_tile(st + L.q, ldk, p.dkp, p.q, token0, h, len, 0, p.Dk);
    load_tile(st + L.k, ldk, p.dkp, p.k, token0, h, len, 0, p.Dk);
    load_tile(st + L.v, ldv, p.nv, p.v, token0, h, len, v0, nvalid);
    load_gates(st + L.gates, p, bb, h, t0, len);
    copy_commit();
  };
  if (p.stages == 2) issue(0);
  const bool keeps_final = p.final_state != nullptr;

  for (int c = 0; c < p.nchunks; ++c) {
    if (p.stages == 1)
      issue(c);
    else if (c + 1 < p.nchunks)
      issue(c + 1);
    if (p.stages == 2 && c + 1 < p.nchunks)
      copy_wait<1>();
    else
      copy_wait<0>();
    const float* st = smem + (c % p.stages) * L.stage;
    const float *Q = st + L.q, *K = st + L.k, *V = st + L.v;
    const float *ga = st + L.gates, *gb = ga + kL, *gc = ga + 2 * kL, *gf = ga + 3 * kL;
    const int t0 = c * p.chunk, len = min(p.chunk, p.T - t0);
    const int64_t token0 = int64_t(bb) * p.T + t0;
    const bool update = c + 1 < p.nchunks || keeps_final;
    __syncthreads();

    // Whatever needs no decay: Q Kᵀ, K Kᵀ and K S0ᵀ unmasked, q·n0 (U = diag(c) V is read from V
    // where there is no delta term).
    if (p.boundary && c > 0)
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
    for (int job = warp; job < (p.delta ? 32 + 4 * vt : 16); job += kWarps) {
      float acc[8] = {};
      if (job >= 32) {
        const int m0 = 16 * ((job - 32) & 3), n0 = 16 * ((job - 32) >> 2);
        mma_tile_abt<kSplit>(acc, K, ldk, S, ldk, m0, n0, 0, p.dkp);
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
      // nᵀq sums these scores and can cancel: TF32 scores would leave the divisor with an
      // error relative to the scores rather than to nᵀq, so a normalizer always splits them.
      if (!kk && p.normalized)
        mma_tile_abt<true>(acc, X, ldk, K, ldk, m0, n0, 0, p.dkp);
      else
        mma_tile_abt<kSplit>(acc, X, ldk, K, ldk, m0, n0, 0, p.dkp);
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
        if (jb < bt) s *= block_decay(rho, r, jb + 1);
      }
      s = lane_sum(s, 4);  // the row's four threads are neighbouring lanes
      if (jb == 0) zsum[r] = s;
    }
    if (p.delta) {
      if (tid < kL) invert_diagonal(Tinv, a_of(gb, D, KK), tid);
      zero_upper_blocks(Tinv);
    }
    __syncthreads();

    if (p.delta) {
      for (int e = tid; e < kL * kL; e += kThreads) {
        const int i = (e / kL) * kLdL + e % kL;
        QK[i] *= D[i];
      }
      if (tid < kL) d_last[tid] = D[(kL - 1) * kLdL + tid];
      __syncthreads();  // D is dead: the scratch and U take its place
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
      float acc[8];
      start_state_part<kSplit>(acc, Q, S, ldk, p.dkp, gamma, m0, n0);
      mma_tile<kSplit>(
          acc,
          [&](int r, int k) {
            return p.delta ? QK[r * kLdL + k] : D[r * kLdL + k] * QK[r * kLdL + k];
          },
          [&](int k, int j) { return p.delta ? U[k * ldv + j] : gc[k] * V[k * ldv + j]; }, m0, n0,
          0, m0 + 16);
      store_output_tile(acc, m0, n0, p.y, token0, h, v0, len, nvalid,
                        [&](int r) { return 1.f / den(r); });
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
            sacc[i],
            [&](int r, int k) { return p.delta ? U[k * ldv + r] : gc[k] * V[k * ldv + r]; },
            [&](int k, int j) { return d_last[k] * K[k * ldk + j]; }, m0, n0, 0, kL);
    }
    if (p.normalized && update)
      for (int k = tid; k < p.dkp; k += kThreads) {  // n_end = γ_last n0 + Kᵀ (D_last,· ⊙ c)
        float s = 0.f;
        for (int r = 0; r < kL; ++r) s += d_last[r] * gc[r] * K[r * ldk + k];
        n[k] = gamma[kL - 1] * n[k] + s;
      }
    __syncthreads();

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

}  // namespace

void launch_forward(const Context& ctx, const Params& p, dim3 grid) {
  launch(ctx, ctx.precision == Precision::fp32 ? forward_kernel<true> : forward_kernel<false>, grid,
         p, smem_bytes(p, false));
}

}  // namespace internal

using namespace internal;  // this file's own building blocks

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

// The walk keeps B·H·⌈Dv / 16⌉ CTAs at most, each latency-bound through the chunks in order.
// For scalar decay the parallel form adds only a lean pass for each chunk's own end state and
// their scan, and its outputs kernel fits more CTAs per SM than the walk: on an H200 (forward
// and backward) it won at one chunk (B128 T64 H4: mLSTM 0.125 against 0.137 ms, Mamba-2 0.115
// against 0.136), at four (B64 T256 H8: 0.861 against 0.916, 0.637 against 0.683) and at 256
// (B16 T16384 H4, forward). For the delta rule one chunk needs no transitions, and its outputs
// kernel beats the walk's (GDN at B128 T64 H4: 0.138 against 0.173 ms); more chunks add their
// transitions and scan, which pays only where the walk would leave the GPU idle: below two CTAs
// per SM, with chunks enough to share out (GDN at B64 T256 H8: 1.435 against 1.399 ms for the
// walk; at B16 T16384 H4, forward, 1.49 against 3.47).
bool chunk_parallel_pays(const Context& ctx, const Params& p) {
  if (!p.delta || p.nchunks == 1) return p.boundary || p.nchunks == 1;
  return transition_fits(p) && y_apart_from_inputs(p) && p.boundary && p.nchunks >= 8 &&
         int64_t(p.B) * p.H * ceil_div(p.Dv, 16) < 2 * int64_t(ctx.sm_count);
}

bool runs_parallel(const Context& ctx, const Params& p, Schedule schedule) {
  return schedule == Schedule::parallel ||
         (schedule == Schedule::automatic && chunk_parallel_pays(ctx, p));
}

}  // namespace

// Within supports(), the parallel kernels' shared memory fits (at most about 213 KB, at Dk = 128
// and Dv = 256), so only the transitions' room in y decides.
bool supports_parallel(const cpu::LinearRecurrence<float>& r) {
  return supports(r) && transition_fits(base_params(r));
}

// The chunks' triangular inverses, where the delta rule's parallel schedule passes them on.
int64_t forward_work_size(const Context& ctx, const cpu::LinearRecurrence<float>& r,
                          Schedule schedule) {
  check_supported(r);
  const Params p = base_params(r);
  if (!p.delta || p.nchunks == 1 || !runs_parallel(ctx, p, schedule)) return 0;
  return int64_t(p.B) * p.H * (p.nchunks - 1) * kInverseFloats;
}

void forward(const Context& ctx, const cpu::LinearRecurrence<float>& r, float* work,
             Schedule schedule) {
  check_supported(r);
  Params p = base_params(r);
  if (runs_parallel(ctx, p, schedule)) {
    if (p.delta && p.nchunks > 1) {  // forward_work_size's inverses
      SL_CHECK_SHAPE(work && reinterpret_cast<uintptr_t>(work) % 16 == 0,
                     "linear recurrence forward (chunk-parallel): the delta rule needs work, "
                     "16-byte aligned, for the chunks' inverses (linear_recurrence_fwd_work_size)");
      p.work = work;
    }
    // One chunk per CTA: measured at L, walks of 2, 4 or 8 chunks from the scanned states with
    // double-buffered loads were no faster for mLSTM and GDN and 1.5x slower for Mamba-2.
    scan_chunk_states(ctx, p);
    p.nv = p.delta ? delta_outputs_nv(p) : pick_nv(p, false, 0);
    if (!p.delta) return launch_outputs(ctx, p);
    const dim3 grid(unsigned(ceil_div(p.Dv, p.nv)), unsigned(p.B * p.H), unsigned(p.nchunks));
    return launch_delta_outputs(ctx, p, grid);
  }
  p.nv = pick_nv(p, false, ctx.sm_count);
  p.stages = 2;
  if (smem_bytes(p, false) > kSmemLimit) p.stages = 1;
  launch_forward(ctx, p, dim3(unsigned(ceil_div(p.Dv, p.nv)), unsigned(p.B * p.H), 1));
}

// B·T·H·⌈Dv / slice⌉ floats for a normalized cell (each value slice's dy·(S q) per step, summed
// by backward), nothing otherwise: states are recomputed from p.boundary, not stored.
int64_t work_size(const cpu::LinearRecurrence<float>& p) {
  if (!p.floor || !supports(p)) return 0;
  return p.B * p.T * p.H * ceil_div(p.Dv, dot_nv(p));
}

}  // namespace statelab::cuda::chunkwise
