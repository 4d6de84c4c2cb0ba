// The chunkwise linear recurrence's backward on CUDA (DESIGN §3), twin of linear_recurrence_bwd
// in kernels/cpu/linear_recurrence.cpp. One CTA per (batch row, head, slice of value columns)
// walks the chunks in reverse from the boundary states forward saved, with its slice of the
// state's gradient in shared memory; a normalized cell first runs the forward kernel from the
// boundaries for dy·(S q). Checked against the CPU twin by kernels/selftest/linear_recurrence.cpp.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "kernels/cuda/chunkwise_common.cuh"
#include "kernels/cuda/chunkwise_inverse.cuh"
#include "kernels/cuda/linear_recurrence_chunkwise.hpp"

namespace statelab::cuda::chunkwise {

using namespace internal;  // this file's own building blocks

namespace {

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
// Twice the forward's threads: at Dk = Dv = 64 the shared memory allows one CTA per SM, and at
// 8 warps ncu found 0.34 eligible warps per scheduler (mLSTM at B64 T256 H8 on an H200: 0.85 ms;
// 0.56 at 16 warps). The row loops give each row kRowThreads neighbouring lanes.
constexpr int kBwdThreads = 2 * kThreads, kBwdWarps = kBwdThreads / 32;
constexpr int kRowThreads = kBwdThreads / kL;
static_assert(kBwdThreads - 3 * kL >= 32 && kBwdThreads % 32 == 0 && kRowThreads <= 32 &&
                  (kRowThreads & (kRowThreads - 1)) == 0 && 16 % kRowThreads == 0,
              "whole warps after the first three row groups; a row's threads within a warp");

template <bool kSplit>
__global__ void __launch_bounds__(kBwdThreads) backward_kernel(const Params p) {
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

  for (int e = tid; e < p.nv * ldk; e += kBwdThreads) G[e] = 0.f;
  for (int e = tid; e < p.dkp; e += kBwdThreads) nu[e] = 0.f;

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
    } else {  // ⟨G_end, S0⟩ + ν_end·n0 over the remaining threads, whole warps
      constexpr int kRest = kBwdThreads - 3 * kL;
      float s = 0.f;
      for (int e = tid - 3 * kL; e < p.nv * p.dkp; e += kRest) {
        const int r = e / p.dkp, k = e % p.dkp;
        s += G[r * ldk + k] * S0[r * ldk + k];
      }
      if (p.normalized)
        for (int k = tid - 3 * kL; k < p.dkp; k += kRest) s += nu[k] * norm0[k];
      s = lane_sum(s, 32);
      if ((tid & 31) == 0) atomicAdd(scalar, s);
    }
    if (!p.delta)
      for (int e = tid; e < kL * p.nv; e += kBwdThreads) {
        const int r = e / p.nv, col = e % p.nv;
        U[r * ldv + col] = gc[r] * V[r * ldv + col];
      }
    __syncthreads();
    decay_rest(D, gamma, rho, sigma, nullptr, nullptr, nullptr);
    __syncthreads();

    // Q Kᵀ and K Kᵀ unmasked (lower blocks), A = b D ⊙ K Kᵀ below the diagonal.
    for (int job = warp; job < (p.delta ? 32 : 16); job += kBwdWarps) {
      const int m0 = 16 * ((job & 15) >> 2), n0 = 16 * (job & 3);
      const bool kk = job >= 16;
      float* out = kk ? KK : QK;
      if (n0 > m0) {
        zero_tile(out, kLdL, m0, n0);
        if (kk) zero_tile(A, kLdL, m0, n0);
        continue;
      }
      const float* Xin = kk ? K : Q;
      float acc[8] = {};
      if (!kk && p.normalized)
        mma_tile_abt<true>(acc, Xin, ldk, K, ldk, m0, n0, 0, p.dkp);  // as in forward
      else
        mma_tile_abt<kSplit>(acc, Xin, ldk, K, ldk, m0, n0, 0, p.dkp);
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
      invert_diagonal(Tinv, a_of(gb, D, KK), tid - kL);
    }
    if (p.delta) zero_upper_blocks(Tinv);
    __syncthreads();
    if (p.delta) invert_levels(Tinv, A, smem + L.scratch);
    if (p.normalized) {
      for (int e = tid; e < kL * p.nv; e += kBwdThreads) {
        const int r = e / p.nv, col = e % p.nv;
        dO[r * ldv + col] *= invden[r];
      }
      __syncthreads();
    }

    // K S0ᵀ → (delta) the right-hand side of U; Q S0ᵀ → do·(S0 q).
    for (int job = warp; job < (p.delta ? 8 : 4) * vt; job += kBwdWarps) {
      const bool ks = job >= 4 * vt;
      const int tile = ks ? job - 4 * vt : job, m0 = 16 * (tile & 3), n0 = 16 * (tile >> 2);
      const float* Xin = ks ? K : Q;
      float acc[8] = {};
      mma_tile_abt<kSplit>(acc, Xin, ldk, S0, ldk, m0, n0, 0, p.dkp);
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
      apply_inverse<kSplit>(Tinv, RHS, U, ldv, vt, warp, kBwdWarps);
      __syncthreads();
    }

    // diag(D_last) K Gᵀ + Mᵀ dO (→ g through (I + A)⁻ᵀ), and u_j · (G k_j) on the way.
    for (int job = warp; job < 4 * vt; job += kBwdWarps) {
      const int m0 = 16 * (job & 3), n0 = 16 * (job >> 2);
      float acc[8] = {};
      mma_tile_abt<kSplit>(acc, K, ldk, G, ldk, m0, n0, 0, p.dkp);
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
      for (int job = warp; job < 4 * vt; job += kBwdWarps) {
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
      {
        const int r = tid / kRowThreads, part = tid % kRowThreads;
        float s = 0.f;
        for (int t = r + part; t < kL; t += kRowThreads)
          s += D[t * kLdL + r] * QK[t * kLdL + r] * dz[t];
        s = lane_sum(s, kRowThreads);
        if (part == 0) {
          dcv[r] += d_last(r) * knu[r] + s;
          zz[r] += gc[r] * knu[r];
        }
      }
      __syncthreads();
    }

    // dv = c ⊙ g, v·g and b g·(S0 k): kRowThreads threads per row.
    {
      const int r = tid / kRowThreads, part = tid % kRowThreads, per = p.nv / kRowThreads;
      float s_dc = 0.f, s_w = 0.f;
      for (int j = part * per; j < (part + 1) * per; ++j) {
        const float gm = Gm[r * ldv + j];
        s_dc += V[r * ldv + j] * gm;
        if (p.delta) s_w += gm * KS[r * ldv + j];
        if (r < len && j < nvalid)
          atomicAdd(p.dv.p + (token0 + r) * p.dv.row + h * p.dv.head + v0 + j, gc[r] * gm);
      }
      // Nothing else adds to these now.
      s_dc = lane_sum(s_dc, kRowThreads);
      s_w = lane_sum(s_w, kRowThreads);
      if (part == 0) {
        dcv[r] += s_dc;
        if (p.delta) wv[r] += gb[r] * s_w;
      }
    }
    // h = diag(γ⁻) K S0ᵀ + (D⁻ ⊙ K Kᵀ) U → g·h; P1 = dO Uᵀ (+ dz cᵀ); P2 = Ĝ Uᵀ.
    {
      const int n_h = p.delta ? 4 * vt : 0, n_p = p.delta ? 32 : 16;
      for (int job = warp; job < n_h + n_p; job += kBwdWarps) {
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
    for (int job = warp; job < 8 * kt + 16; job += kBwdWarps) {
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
    {
      const int r = tid / kRowThreads, part = tid % kRowThreads;
      float t2 = 0.f, t5 = 0.f;
      for (int j = part; j < r; j += kRowThreads) {
        const float dm = D[(r - 1) * kLdL + j];
        t2 += dm * zz[j];
        if (p.delta) t5 += P2[r * kLdL + j] * KK[r * kLdL + j] * dm;
      }
      float t3 = 0.f;
      for (int t = r + part; t < kL; t += kRowThreads)
        t3 += D[t * kLdL + r] * (t > r ? xv[t] - wv[t] : xv[t]);
      t2 = lane_sum(t2, kRowThreads);
      t5 = lane_sum(t5, kRowThreads);
      t3 = lane_sum(t3, kRowThreads);
      const float gp = gamma_prev(r);
      const float da = d_last(r) * (gp * scalar[0] + t2) + gp * t3 + t4[r] + t5 - gb[r] * gh[r];
      if (part == 0 && r < len) {
        const int64_t i = (token0 + r) * p.H + h;
        atomicAdd(p.da + i, da);
        atomicAdd(p.dc + i, dcv[r]);
        if (p.delta) atomicAdd(p.db + i, -ga[r] * gh[r]);
      }
    }
    for (int job = warp; job < vt * kt; job += kBwdWarps) {
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
      for (int k = tid; k < p.dkp; k += kBwdThreads) {
        float s = 0.f;
        for (int t = 0; t < kL; ++t) s += gamma[t] * dz[t] * Q[t * ldk + k];
        nu[k] = gamma[kL - 1] * nu[k] + s;
      }
    __syncthreads();
  }
}

}  // namespace

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
    d.dot_mode = true;
    d.nv = dot_nv(r);
    launch_outputs(ctx, d);
    p.dot_tiles = int(ceil_div(d.Dv, d.nv));
  }
  p.nv = pick_nv(p, true, ctx.sm_count);
  const dim3 grid(unsigned(ceil_div(p.Dv, p.nv)), unsigned(p.B * p.H), 1);
  if (split)
    launch(ctx, backward_kernel<true>, grid, p, smem_bytes(p, true), kBwdThreads);
  else
    launch(ctx, backward_kernel<false>, grid, p, smem_bytes(p, true), kBwdThreads);
}

}  // namespace statelab::cuda::chunkwise
