// The recurrent linear recurrence's forward on CUDA (twin of forward_recurrent in
// kernels/cpu/linear_recurrence.cpp): S on chip for the whole sequence, a thread owning a 2 × 8
// tile of it, so every row reduction is a few shuffles inside a warp and block barriers come once
// per staged visit of 8 steps, never per step; boundary states stored for backward. Its probe
// instantiation writes the probe read-outs instead of y. Checked against the CPU twin in double by
// kernels/selftest/linear_recurrence.cpp.
#include <cuda_runtime.h>

#include "kernels/cuda/recurrent_common.cuh"

namespace statelab::cuda::recurrent {

namespace {

// Probe: ‖S_{t−1} k_t − v_t‖² over this warp's rows, before step t writes (each row counted by
// the one lane that owns its outputs; padding rows have S = 0 and v = 0).
template <int R, int C>
__device__ __forceinline__ void probe_write_error(const RecurrentArgs& p, const Lane& ln,
                                                  const Tile<R, C>& X, const float (&kk)[C],
                                                  const float (&vv)[R], int row0, float* dst) {
  float u[R];
#pragma unroll
  for (int r = 0; r < R; ++r) u[r] = dot(X[r], kk);
  group_sum(u, ln.lanes);
  float sq = 0.f;
#pragma unroll
  for (int r = 0; r < R; ++r)
    if (ln.writes(r) && row0 + ln.template row<R>(r) < p.Dv) {
      const float d = u[r] - vv[r];
      sq = fmaf(d, d, sq);
    }
  add_warp_total(sq, dst, ln.lane);
}

// Probe: ‖S_t‖²_F from every tile entry; n is held whole by every row group of every warp, so
// ‖n_t‖² and |n_tᵀ q_t| come from row group 0 of warp 0 of row block 0 alone.
template <int R, int C>
__device__ __forceinline__ void probe_state(const RecurrentArgs& p, const Lane& ln,
                                            const Tile<R, C>& X, const float (&n)[C],
                                            float n_dot_q, int64_t gi) {
  const bool n_owner = blockIdx.y == 0 && ln.warp == 0;
  if (p.state_sq) {
    float sq = 0.f;
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int j = 0; j < C; ++j) sq = fmaf(X[r][j], X[r][j], sq);
    add_warp_total(sq, p.state_sq + gi, ln.lane);
  }
  if (p.normalizer_sq && n_owner) {
    float sq = 0.f;
    if (ln.g == 0)
#pragma unroll
      for (int j = 0; j < C; ++j) sq = fmaf(n[j], n[j], sq);
    add_warp_total(sq, p.normalizer_sq + gi, ln.lane);
  }
  if (p.n_dot_q && n_owner && ln.lane == 0) p.n_dot_q[gi] = fabsf(n_dot_q);
}

// kProbe: the probe pass (y, boundary and final state null, the probe read-outs set); a separate
// instantiation so that training's forward carries none of its branches.
template <int R, int C, bool kProbe>
__global__ void __launch_bounds__(kMaxWarps * 32, 2) recurrent_fwd_kernel(const RecurrentArgs p) {
  static_assert(C % 4 == 0 && C >= 4 && R >= 1 && R * C % 4 == 0, "tiles are whole float4");
  extern __shared__ float4 smem4[];
  float* smem = reinterpret_cast<float*>(smem4);
  const Lane ln(p.lanes_log2);
  const int64_t b = blockIdx.x / p.H, h = blockIdx.x % p.H;
  const int row0 = int(blockIdx.y) * p.rows_per_cta;
  const StageLayout L{p.visit, ln.lanes * C, p.rows_per_cta, false};
  auto stage = [&](int i) { return smem + i * L.size(); };
  // Padding (columns >= Dk, rows >= Dv, absent gates) is never staged and must read as 0.
  for (int e = int(threadIdx.x); e < 2 * L.size(); e += int(blockDim.x)) smem[e] = 0.f;
  __syncthreads();
  const bool norm = p.floor != nullptr, delta = p.b != nullptr;
  const int64_t nch = (p.T + p.chunk - 1) / p.chunk, ssize = state_size(p);
  Tile<R, C> X = {};
  float n[C] = {};
  const int visits = int((p.T + p.visit - 1) / p.visit);
  stage_steps(p, stage(0), L, p.lanes_log2, b, h, row0, 0, int(std::min<int64_t>(p.visit, p.T)),
              true);
  cp_async_commit();
  for (int vi = 0; vi < visits; ++vi) {
    cp_async_wait_all();
    __syncthreads();  // visit vi is staged and everyone is done with visit vi − 1's buffer
    const int64_t t_begin = int64_t(vi) * p.visit;
    if (vi + 1 < visits)
      stage_steps(p, stage((vi + 1) & 1), L, p.lanes_log2, b, h, row0, t_begin + p.visit,
                  int(std::min<int64_t>(p.visit, p.T - t_begin - p.visit)), true);
    cp_async_commit();
    const float* sb = stage(vi & 1);
    const int steps = int(std::min<int64_t>(p.visit, p.T - t_begin));
    for (int st = 0; st < steps; ++st) {
      const int64_t t = t_begin + st;
      if (p.boundary && t > 0 && t % p.chunk == 0)
        store_state(p.boundary + ((b * p.H + h) * (nch - 1) + t / p.chunk - 1) * ssize, X, n, norm,
                    ln, row0, p.Dk, p.Dv);
      float kk[C], qq[C], vv[R];
      float4 gt;
      read_step(sb, L, st, ln, kk, vv, gt);
      load_staged(sb + L.kq() + (2 * st + 1) * L.dkp, ln, qq);
      const int64_t gi = (b * p.T + t) * p.H + h;
      if constexpr (kProbe)
        if (p.error_sq) probe_write_error(p, ln, X, kk, vv, row0, p.error_sq + gi);
      advance(X, n, kk, vv, gt.x, gt.y, gt.z, delta, norm, ln.lanes);
      float o[R + 1];
#pragma unroll
      for (int r = 0; r < R; ++r) o[r] = dot(X[r], qq);
      o[R] = norm ? dot(n, qq) : 0.f;
      group_sum(o, ln.lanes, norm ? R + 1 : R);
      if constexpr (kProbe) {
        probe_state(p, ln, X, n, o[R], gi);
        continue;  // a probe pass leaves y as forward wrote it
      }
      const float den = norm ? fmaxf(fabsf(o[R]), gt.w) + p.eps : 1.f;
      float* y = row_at(p.y, p.T, b, t, h);
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const int row = row0 + ln.template row<R>(r);
        if (ln.writes(r) && row < p.Dv) y[row] = norm ? o[r] / den : o[r];
      }
    }
  }
  if (p.final_state)
    store_state(p.final_state + (b * p.H + h) * ssize, X, n, norm, ln, row0, p.Dk, p.Dv);
}

template <bool kProbe>
bool plan_forward_for(const Context& ctx, const LinearRecurrence<float>& p, Plan& plan) {
  if (p.Dk > kMaxStateWidth) return false;
  plan.lanes_log2 = lanes_log2_for(p.Dk);
  plan.visit = kForwardVisit;
  const int dkp = kTileCols << plan.lanes_log2;
  return choose_warps(
      ctx, recurrent_fwd_kernel<kTileRows, kTileCols, kProbe>, p, plan, [&](int rows, int) {
        return 2 * sizeof(float) * StageLayout{kForwardVisit, dkp, rows, false}.size();
      });
}

}  // namespace

bool plan_forward(const Context& ctx, const LinearRecurrence<float>& p, Plan& plan, bool probe) {
  return probe ? plan_forward_for<true>(ctx, p, plan) : plan_forward_for<false>(ctx, p, plan);
}

void launch_forward(const Context& ctx, const RecurrentArgs& a, const Plan& plan, dim3 grid,
                    bool probe) {
  if (probe)
    recurrent_fwd_kernel<kTileRows, kTileCols, true>
        <<<grid, plan.warps * 32, plan.smem, ctx.stream>>>(a);
  else
    recurrent_fwd_kernel<kTileRows, kTileCols, false>
        <<<grid, plan.warps * 32, plan.smem, ctx.stream>>>(a);
  SL_CUDA_LAUNCH_CHECK();
}

}  // namespace statelab::cuda::recurrent
