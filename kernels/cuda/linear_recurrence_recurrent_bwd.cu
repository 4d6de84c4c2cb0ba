// The recurrent linear recurrence's backward on CUDA (twin of linear_recurrence_bwd in
// kernels/cpu/linear_recurrence.cpp). It recomputes each chunk from the saved boundary states
// through √chunk checkpoints: a second forward pass bought instead of storing every state. The
// checkpoints live in global scratch (written and read back by the same warp, so they stay in
// L1/L2) and only a visit's recomputed history in shared memory, which keeps a CTA small enough
// for one wave at short sequences. Checked against the CPU twin in double by
// kernels/selftest/linear_recurrence.cpp.
#include <cuda_runtime.h>

#include "kernels/cuda/recurrent_common.cuh"

namespace statelab::cuda::recurrent {

namespace {

// Adds one visit's reduced gradients (red: [steps][dq dkp | dk dkp | da db dc dfloor]) into
// the outputs and clears them. Several CTAs (row blocks, heads sharing q and k) add into the
// same elements, so every add is atomic; with one adder per element the sum stays exact.
__device__ void flush(const RecurrentArgs& p, float* red, int dkp, int64_t b, int64_t h,
                      int64_t t_begin, int n) {
  const int tid = int(threadIdx.x), nt = int(blockDim.x), Dk = p.Dk, stride = 2 * dkp + 4;
  for (int e = tid; e < n * Dk; e += nt) {
    const int st = e / Dk, col = e - st * Dk;
    float* r = red + st * stride;
    atomicAdd(row_at(p.dq, p.T, b, t_begin + st, h) + col, r[col]);
    atomicAdd(row_at(p.dk, p.T, b, t_begin + st, h) + col, r[dkp + col]);
    r[col] = 0.f;
    r[dkp + col] = 0.f;
  }
  for (int st = tid; st < n; st += nt) {
    float* r = red + st * stride + 2 * dkp;
    const int64_t i = (b * p.T + t_begin + st) * p.H + h;
    atomicAdd(p.da + i, r[0]);
    if (p.db) atomicAdd(p.db + i, r[1]);
    atomicAdd(p.dc + i, r[2]);
    if (p.dfloor) atomicAdd(p.dfloor + i, r[3]);
    r[0] = r[1] = r[2] = r[3] = 0.f;
  }
}

// One reverse step (the CPU's loop body, per tile): P = S_{t−1} from its slot, St = S_t, and the
// carried G = ∂L/∂S_t, nu = ∂L/∂n_t (this thread's rows' share). Column and scalar gradients go
// to red_step reduced over the warp; dv, owned per row, straight to global memory.
template <int R, int C>
__device__ __forceinline__ void backward_step(const RecurrentArgs& p, const Lane& ln,
                                              const float* sb, const StageLayout& L, int st,
                                              const float* slot, Tile<R, C>& St, float (&nS)[C],
                                              Tile<R, C>& G, float (&nu)[C], float* red_step,
                                              float* dv, int row0, bool norm, bool delta) {
  Tile<R, C> P;
  float nP[C], kk[C], qq[C], vv[R], dyv[R];
  float4 gt;
  load_slot(slot, P, nP, norm, ln);
  read_step(sb, L, st, ln, kk, vv, gt);
  load_staged(sb + L.kq() + (2 * st + 1) * L.dkp, ln, qq);
#pragma unroll
  for (int r = 0; r < R; ++r) dyv[r] = sb[L.dy() + st * L.rows + ln.template row<R>(r)];
  const float a = gt.x, bb = gt.y, c = gt.z;
  float dout[R], dq[C], dk[C], sc[4] = {0.f, 0.f, 0.f, 0.f};  // sc: da, db, dc, dfloor
  if (norm) {
    // y = S q / den: the divisor's gradient reaches n (or the floor) through the max's branch.
    float o[R + 1];
#pragma unroll
    for (int r = 0; r < R; ++r) o[r] = dot(St[r], qq);
    o[R] = dot(nS, qq);
    group_sum(o, ln.lanes);
    const bool through_n = fabsf(o[R]) >= gt.w;
    const float den = (through_n ? fabsf(o[R]) : gt.w) + p.eps;
    float dy_o = 0.f;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      dout[r] = dyv[r] / den;
      dy_o = fmaf(dyv[r], o[r], dy_o);
    }
    const float d_den = -dy_o / (den * den);
    const float s = through_n ? (o[R] < 0.f ? -d_den : d_den) : 0.f;
#pragma unroll
    for (int j = 0; j < C; ++j) {
      nu[j] = fmaf(s, qq[j], nu[j]);
      dq[j] = s * nS[j];
    }
    if (!through_n && ln.lc == 0) sc[3] = d_den;
  } else {
#pragma unroll
    for (int r = 0; r < R; ++r) dout[r] = dyv[r];
#pragma unroll
    for (int j = 0; j < C; ++j) dq[j] = 0.f;
  }
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int j = 0; j < C; ++j) {
      G[r][j] = fmaf(dout[r], qq[j], G[r][j]);
      dq[j] = fmaf(St[r][j], dout[r], dq[j]);
    }
  // Step S_t = a P + w kᵀ: g = G k (and u = P k for the delta term), one reduction for both.
  float gu[2 * R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    gu[r] = dot(G[r], kk);
    gu[R + r] = delta ? dot(P[r], kk) : 0.f;
  }
  group_sum(gu, ln.lanes, delta ? 2 * R : R);
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int j = 0; j < C; ++j) sc[0] = fmaf(G[r][j], P[r][j], sc[0]);
  float w[R];
#pragma unroll
  for (int r = 0; r < R; ++r) w[r] = c * vv[r];
#pragma unroll
  for (int j = 0; j < C; ++j) dk[j] = 0.f;
  if (delta) {
    float g_dot_u = 0.f;
#pragma unroll
    for (int r = 0; r < R; ++r) g_dot_u = fmaf(gu[r], gu[R + r], g_dot_u);
    if (ln.lc != 0) g_dot_u = 0.f;  // every lane of a group holds it; count it once
    sc[0] = fmaf(-bb, g_dot_u, sc[0]);
    sc[1] = -a * g_dot_u;
    const float ab = a * bb;
#pragma unroll
    for (int r = 0; r < R; ++r) w[r] = fmaf(-ab, gu[R + r], w[r]);
#pragma unroll
    for (int j = 0; j < C; ++j) {
      float s = 0.f;
#pragma unroll
      for (int r = 0; r < R; ++r) s = fmaf(P[r][j], gu[r], s);
      dk[j] = -ab * s;
    }
  }
  if (ln.lc == 0)
#pragma unroll
    for (int r = 0; r < R; ++r) sc[2] = fmaf(vv[r], gu[r], sc[2]);
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int row = row0 + ln.template row<R>(r);
    if (ln.writes(r) && row < p.Dv) atomicAdd(dv + row, c * gu[r]);
  }
#pragma unroll
  for (int j = 0; j < C; ++j)
#pragma unroll
    for (int r = 0; r < R; ++r) dk[j] = fmaf(G[r][j], w[r], dk[j]);
  if (norm)
#pragma unroll
    for (int j = 0; j < C; ++j) {
      sc[0] = fmaf(nu[j], nP[j], sc[0]);
      sc[2] = fmaf(nu[j], kk[j], sc[2]);
      dk[j] = fmaf(c, nu[j], dk[j]);
      nu[j] *= a;
    }
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int j = 0; j < C; ++j) G[r][j] = a * (delta ? fmaf(-bb * gu[r], kk[j], G[r][j]) : G[r][j]);
  add_columns(dq, red_step, ln);
  add_columns(dk, red_step + L.dkp, ln);
  add_scalars(sc, red_step + 2 * L.dkp, ln.lane);
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int j = 0; j < C; ++j) St[r][j] = P[r][j];
#pragma unroll
  for (int j = 0; j < C; ++j) nS[j] = nP[j];
}

// Backward per (b, h, row block). Per chunk, last to first, a sequence of visits of `visit`
// steps: forward visits over subchunks 0 .. m−2 that save the state at each subchunk start
// (checkpoint slots 0 .. m−1, in global scratch), then reverse visits m−1 .. 0 that recompute
// their subchunk's states into history slots (shared memory) from the checkpoint and sweep back
// through them. Each visit's inputs are staged one visit ahead; one block barrier per visit
// orders staging, slots and the reduction buffers, whose sums are flushed to global memory after
// the next barrier.
template <int R, int C>
__global__ void __launch_bounds__(kMaxWarps * 32) recurrent_bwd_kernel(const RecurrentArgs p) {
  static_assert(C % 4 == 0 && C >= 4 && R >= 1 && R * C % 4 == 0, "tiles are whole float4");
  extern __shared__ float4 smem4[];
  float* smem = reinterpret_cast<float*>(smem4);
  const Lane ln(p.lanes_log2);
  const int64_t b = blockIdx.x / p.H, h = blockIdx.x % p.H;
  const int row0 = int(blockIdx.y) * p.rows_per_cta;
  const bool norm = p.floor != nullptr, delta = p.b != nullptr;
  const int dkp = ln.lanes * C;
  const StageLayout L{p.visit, dkp, p.rows_per_cta, true};
  const int red_size = p.visit * (2 * dkp + 4);
  auto stage = [&](int i) { return smem + i * L.size(); };
  auto red = [&](int i) { return smem + 2 * L.size() + i * red_size; };
  const int slot_warp = 32 * R * C + (norm ? dkp : 0);
  const int warps = int(blockDim.x) >> 5;
  float* checkpoints =
      p.checkpoints + ((int64_t(blockIdx.x) * gridDim.y + blockIdx.y) * warps + ln.warp) *
                          p.subchunks * slot_warp;
  auto slot = [&](int i) { return checkpoints + i * slot_warp; };
  float* histories = smem + 2 * L.size() + 2 * red_size + ln.warp * slot_warp;
  // History slot i = 1 .. visit − 1 of this warp: the recomputed S before step t0 + i.
  auto history = [&](int i) { return histories + (i - 1) * warps * slot_warp; };
  for (int e = int(threadIdx.x); e < 2 * (L.size() + red_size); e += int(blockDim.x)) smem[e] = 0.f;
  __syncthreads();

  const int64_t nch = (p.T + p.chunk - 1) / p.chunk, ssize = state_size(p);
  auto chunk_len = [&](int64_t ci) { return int(std::min<int64_t>(p.chunk, p.T - ci * p.chunk)); };
  auto subchunks = [&](int64_t ci) { return (chunk_len(ci) + p.visit - 1) / p.visit; };
  // Visit u of chunk ci: forward visits u < m − 1 cover subchunk u, reverse ones 2m − 2 − u.
  auto stage_visit = [&](float* buf, int64_t ci, int u) {
    const int m = subchunks(ci), j = u < m - 1 ? u : 2 * m - 2 - u;
    const int t0 = j * p.visit, t1 = std::min(t0 + p.visit, chunk_len(ci));
    stage_steps(p, buf, L, p.lanes_log2, b, h, row0, ci * p.chunk + t0, t1 - t0, u >= m - 1);
  };

  Tile<R, C> G = {}, St = {}, X = {};
  float nu[C] = {}, nS[C] = {}, nX[C] = {};
  int64_t ci = nch - 1;
  int u = 0, buf = 0, rbuf = 0, pending = 0;
  int64_t pending_t = 0;
  stage_visit(stage(0), ci, 0);
  cp_async_commit();
  while (true) {
    const int m = subchunks(ci), len = chunk_len(ci);
    const bool reverse = u >= m - 1;
    const int j = reverse ? 2 * m - 2 - u : u;
    const int t0 = j * p.visit, t1 = std::min(t0 + p.visit, len);
    cp_async_wait_all();
    __syncthreads();
    if (pending) flush(p, red(rbuf ^ 1), dkp, b, h, pending_t, pending);
    pending = 0;
    int64_t next_ci = ci;
    int next_u = u + 1;
    if (next_u == 2 * m - 1) next_ci = ci - 1, next_u = 0;
    if (next_ci >= 0) stage_visit(stage(buf ^ 1), next_ci, next_u);
    cp_async_commit();
    const float* sb = stage(buf);
    if (u == 0)
      load_state(ci > 0 ? p.boundary + ((b * p.H + h) * (nch - 1) + ci - 1) * ssize : nullptr, X,
                 nX, norm, ln, row0, p.Dk, p.Dv);
    float kk[C], vv[R];
    float4 gt;
    if (!reverse) {
      store_slot(slot(j), X, nX, norm, ln);
      for (int t = t0; t < t1; ++t) {
        read_step(sb, L, t - t0, ln, kk, vv, gt);
        advance(X, nX, kk, vv, gt.x, gt.y, gt.z, delta, norm, ln.lanes);
      }
    } else {
      // The last subchunk starts where the forward visits stopped; the others from their slot.
      const bool last = j == m - 1;
      if (last)
        store_slot(slot(j), X, nX, norm, ln);
      else
        load_slot(slot(j), X, nX, norm, ln);
      for (int t = t0; t < t1; ++t) {
        if (t > t0) store_slot(history(t - t0), X, nX, norm, ln);
        if (t + 1 < t1 || last) {
          read_step(sb, L, t - t0, ln, kk, vv, gt);
          advance(X, nX, kk, vv, gt.x, gt.y, gt.z, delta, norm, ln.lanes);
        }
      }
      if (last) {  // S at the chunk's end; otherwise St is the previous sweep's last P
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
          for (int jj = 0; jj < C; ++jj) St[r][jj] = X[r][jj];
#pragma unroll
        for (int jj = 0; jj < C; ++jj) nS[jj] = nX[jj];
      }
      // X is dead until the next visit loads it (from a slot, or the boundary at u = 0); saying
      // so frees its registers for the sweep.
#pragma unroll
      for (int jj = 0; jj < C; ++jj) {
#pragma unroll
        for (int r = 0; r < R; ++r) X[r][jj] = 0.f;
        nX[jj] = 0.f;
      }
      __syncwarp();  // n in the slots is written by row group 0 and read by every group
      const int64_t s0 = ci * p.chunk;
      for (int t = t1 - 1; t >= t0; --t)
        backward_step(p, ln, sb, L, t - t0, t == t0 ? slot(j) : history(t - t0), St, nS, G, nu,
                      red(rbuf) + (t - t0) * (2 * dkp + 4), row_at(p.dv, p.T, b, s0 + t, h), row0,
                      norm, delta);
      pending = t1 - t0;
      pending_t = s0 + t0;
      rbuf ^= 1;
    }
    buf ^= 1;
    if (next_ci < 0) break;
    ci = next_ci;
    u = next_u;
  }
  __syncthreads();
  if (pending) flush(p, red(rbuf ^ 1), dkp, b, h, pending_t, pending);
}

}  // namespace

// Backward's shared memory: two staged visits, two reduction buffers and, per warp, visit − 1
// history slots (about 15 KB per warp at L = 64); the m checkpoints per warp are global scratch.
// Long chunks (visits beyond about a hundred steps) do not fit.
bool plan_backward(const Context& ctx, const LinearRecurrence<float>& p, Plan& plan) {
  if (p.Dk > kMaxStateWidth) return false;
  plan.lanes_log2 = lanes_log2_for(p.Dk);
  plan_checkpoints(p, plan);
  const int dkp = kTileCols << plan.lanes_log2;
  const int64_t slots = plan.visit - 1;
  const int64_t slot_warp = slot_floats(p, plan.lanes_log2);
  return choose_warps(
      ctx, recurrent_bwd_kernel<kTileRows, kTileCols>, p, plan, [&](int rows, int warps) {
        const int64_t floats = 2 * int64_t(StageLayout{plan.visit, dkp, rows, true}.size()) +
                               2 * int64_t(plan.visit) * (2 * dkp + 4) + slots * warps * slot_warp;
        return size_t(floats) * sizeof(float);
      });
}

void launch_backward(const Context& ctx, const RecurrentArgs& a, const Plan& plan, dim3 grid) {
  recurrent_bwd_kernel<kTileRows, kTileCols><<<grid, plan.warps * 32, plan.smem, ctx.stream>>>(a);
  SL_CUDA_LAUNCH_CHECK();
}

}  // namespace statelab::cuda::recurrent
