// What the recurrent linear recurrence kernels' translation units share (DESIGN §3): the tiling
// of S over a warp's lanes, the staged visits, the kernels' arguments, the per-step state update
// and its reductions, and on the host the choice of CTA height. The kernels: forward and probe
// (linear_recurrence_recurrent.cu) and backward (linear_recurrence_recurrent_bwd.cu);
// linear_recurrence.cu dispatches between them and the chunkwise kernels.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/cpu/linear_recurrence.hpp"
#include "kernels/cuda/context.hpp"
#include "kernels/error.hpp"

namespace statelab::cuda::recurrent {

using cpu::LinearRecurrence;
using cpu::LinearRecurrenceGrads;
using cpu::Rows;

// ---- the recurrent kernels' tiling ------------------------------------------------------------
// A warp is G row groups of Lc lanes (Lc = 32 / G, the smallest power of two with 8·Lc >= Dk);
// lane lc of group g owns rows (r·G + g, r < kTileRows) and columns (j·Lc + lc, j < kTileCols) of
// the warp's rows. Columns strided by Lc make every load of k and q one contiguous run per group;
// two rows per thread halve the shuffles of the column sums backward needs.
constexpr int kTileRows = 2;
constexpr int kTileCols = 8;
constexpr int kMaxWarps = 8;                    // warps per CTA, all along rows
constexpr int kMaxStateWidth = 32 * kTileCols;  // the widest Dk the recurrent kernels handle
constexpr int kForwardVisit = 8;                // steps forward stages per block barrier
// Backward stages at least this many steps per barrier (more when √chunk is larger).
constexpr int kMinBackwardVisit = 8;
constexpr int64_t kMaxGridY = 65535;  // row blocks; gridDim.x holds the B·H sequences

// One staged visit of `steps` steps in shared memory, laid out [gates | k, q | v | dy]:
//   gates [steps][4] (a, b, c, floor; absent ones stay 0); k and q [steps][2][dkp] with lane lc's
//   columns j·Lc + lc as float4 number (j/4)·Lc + lc, so that a warp's 128-bit loads of them hit
//   consecutive 16-byte words (no bank conflicts); v and dy [steps][rows].
struct StageLayout {
  int steps = 0, dkp = 0, rows = 0;
  bool with_dy = false;
  __host__ __device__ int kq() const { return 4 * steps; }
  __host__ __device__ int v() const { return kq() + 2 * steps * dkp; }
  __host__ __device__ int dy() const { return v() + steps * rows; }
  __host__ __device__ int size() const {
    return (dy() + (with_dy ? steps * rows : 0) + 3) / 4 * 4;  // keeps the next buffer 16-B aligned
  }
};

// Everything a recurrent kernel reads, by value. Offsets into [B, T, ...] tensors are int64.
struct RecurrentArgs {
  int64_t T = 0, H = 0;
  int Dk = 0, Dv = 0, chunk = 0;
  Rows<const float> q, k;        // [B, T, H, Dk]
  Rows<const float> v;           // [B, T, H, Dv]
  const float* a = nullptr;      // [B, T, H]
  const float* b = nullptr;      // [B, T, H] or null
  const float* c = nullptr;      // [B, T, H]
  const float* floor = nullptr;  // [B, T, H] or null
  float eps = 0;
  Rows<float> y;                 // [B, T, H, Dv]
  float* boundary = nullptr;     // [B, H, ceil(T/chunk) − 1, Dv·Dk (+ Dk)]
  float* final_state = nullptr;  // [B, H, Dv·Dk (+ Dk)]
  Rows<const float> dy;          // [B, T, H, Dv]
  Rows<float> dq, dk;            // [B, T, H, Dk]
  Rows<float> dv;                // [B, T, H, Dv]
  float* da = nullptr;           // [B, T, H]
  float* db = nullptr;           // [B, T, H] or null
  float* dc = nullptr;           // [B, T, H]
  float* dfloor = nullptr;       // [B, T, H] or null
  float* checkpoints = nullptr;  // backward: per warp of the grid, `subchunks` state slots
  // Probe read-outs [B, T, H], forward only, each when non-null: squared norms summed over the
  // tiles (zeroed before, square-rooted after), and |nᵀq| written once.
  float* state_sq = nullptr;       // ‖S_t‖²_F
  float* normalizer_sq = nullptr;  // ‖n_t‖²
  float* n_dot_q = nullptr;        // |n_tᵀ q_t|
  float* error_sq = nullptr;       // ‖S_{t−1} k_t − v_t‖²
  int lanes_log2 = 0;            // log2 Lc
  int rows_per_cta = 0;          // warps · G · kTileRows
  int visit = 0;                 // steps per staged visit
  int subchunks = 0;             // backward: checkpoints per chunk, ceil(min(chunk, T) / visit)
};

// Where this thread sits in the tiling.
struct Lane {
  int lane, warp, lanes, groups, lc, g;
  __device__ explicit Lane(int lanes_log2)
      : lane(int(threadIdx.x) & 31),
        warp(int(threadIdx.x) >> 5),
        lanes(1 << lanes_log2),
        groups(32 >> lanes_log2),
        lc(lane & ((1 << lanes_log2) - 1)),
        g(lane >> lanes_log2) {}
  template <int R>
  __device__ int row(int r) const {  // in the CTA
    return (warp * R + r) * groups + g;
  }
  __device__ int col(int j) const { return j * lanes + lc; }
  // Every lane of a group holds a row's reductions; lane r % Lc writes row r's outputs.
  __device__ bool writes(int r) const { return lc == (r & (lanes - 1)); }
};

template <int R, int C>
using Tile = float[R][C];

__device__ __forceinline__ void cp_async4(float* dst, const float* src) {
  const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(d), "l"(src) : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
__device__ __forceinline__ void cp_async_wait_all() {
  asm volatile("cp.async.wait_all;\n" ::: "memory");
}

// Sums each of x[0 .. count) over the Lc lanes of a row group; every lane of the group gets the
// totals. count is the same for the whole warp.
template <int N>
__device__ __forceinline__ void group_sum(float (&x)[N], int lanes, int count = N) {
  for (int o = 1; o < lanes; o <<= 1)
#pragma unroll
    for (int i = 0; i < N; ++i)
      if (i < count) x[i] += __shfl_xor_sync(0xffffffffu, x[i], o);
}

// Two accumulators halve the dependent FMA chain.
template <int C>
__device__ __forceinline__ float dot(const float (&x)[C], const float (&y)[C]) {
  float s0 = 0.f, s1 = 0.f;
#pragma unroll
  for (int j = 0; j < C; j += 2) {
    s0 = fmaf(x[j], y[j], s0);
    s1 = fmaf(x[j + 1], y[j + 1], s1);
  }
  return s0 + s1;
}

// Sums this thread's C column partials over the warp's row groups and adds each column's total
// into red[col] once. Transposed exchange: at each stage a lane keeps half of its values and
// trades the other half, so C values cost C − C/G shuffles rather than C·log2 G.
template <int C>
__device__ __forceinline__ void add_columns(float (&x)[C], float* red, const Lane& ln) {
  int first = 0, count = C;
  bool owner = true;
#pragma unroll
  for (int m = 0; m < 5; ++m) {
    const int o = ln.lanes << m;
    if (o < 32) {
      const bool upper = (ln.lane & o) != 0;
      const int half = C >> (m + 1);
      if (half >= 1) {
#pragma unroll
        for (int i = 0; i < C / 2; ++i)
          if (i < half) {
            const float send = upper ? x[i] : x[i + half];
            const float keep = upper ? x[i + half] : x[i];
            x[i] = keep + __shfl_xor_sync(0xffffffffu, send, o);
          }
        if (upper) first += half;
        count = half;
      } else {
        x[0] += __shfl_xor_sync(0xffffffffu, x[0], o);
        owner = owner && !upper;
      }
    }
  }
  if (owner)
#pragma unroll
    for (int i = 0; i < C; ++i)
      if (i < count) atomicAdd(red + (first + i) * ln.lanes + ln.lc, x[i]);
}

// Sums four per-thread partials over the warp the same way; lane 8·i adds the total of x[i].
__device__ __forceinline__ void add_scalars(const float (&x)[4], float* red, int lane) {
  const bool u16 = (lane & 16) != 0, u8 = (lane & 8) != 0;
  const float y0 = (u16 ? x[2] : x[0]) + __shfl_xor_sync(0xffffffffu, u16 ? x[0] : x[2], 16);
  const float y1 = (u16 ? x[3] : x[1]) + __shfl_xor_sync(0xffffffffu, u16 ? x[1] : x[3], 16);
  float z = (u8 ? y1 : y0) + __shfl_xor_sync(0xffffffffu, u8 ? y0 : y1, 8);
  z += __shfl_xor_sync(0xffffffffu, z, 4);
  z += __shfl_xor_sync(0xffffffffu, z, 2);
  z += __shfl_xor_sync(0xffffffffu, z, 1);
  if ((lane & 7) == 0) atomicAdd(red + (lane >> 3), z);
}

// Adds the warp's total of x into *dst once (every lane of the warp must call it).
__device__ __forceinline__ void add_warp_total(float x, float* dst, int lane) {
  for (int o = 16; o >= 1; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  if (lane == 0) atomicAdd(dst, x);
}

__device__ __forceinline__ int64_t state_size(const RecurrentArgs& p) {
  return int64_t(p.Dv) * p.Dk + (p.floor ? p.Dk : 0);
}

template <typename P>
__device__ __forceinline__ P* row_at(const Rows<P>& r, int64_t T, int64_t b, int64_t t, int64_t h) {
  return r.data + (b * T + t) * r.row + h * r.head;
}

// Stages steps [t_begin, t_begin + n) of (b, h) for the CTA's rows from row0 with 4-byte
// cp.async (the Rows strides promise no alignment). `outputs` adds what only backward's sweep
// and forward's output read: q, dy and the floor.
__device__ inline void stage_steps(const RecurrentArgs& p, float* buf, const StageLayout& L,
                            int lanes_log2, int64_t b, int64_t h, int row0, int64_t t_begin, int n,
                            bool outputs) {
  const int tid = int(threadIdx.x), nt = int(blockDim.x), Dk = p.Dk;
  const int lanes = 1 << lanes_log2;
  for (int e = tid; e < n * Dk; e += nt) {
    const int st = e / Dk, col = e - st * Dk, j = col >> lanes_log2;
    const int pos = ((j >> 2) * lanes + (col & (lanes - 1))) * 4 + (j & 3);
    float* dst = buf + L.kq() + 2 * st * L.dkp + pos;
    const int64_t t = t_begin + st;
    cp_async4(dst, row_at(p.k, p.T, b, t, h) + col);
    if (outputs) cp_async4(dst + L.dkp, row_at(p.q, p.T, b, t, h) + col);
  }
  const int rows = std::min(L.rows, p.Dv - row0);
  for (int e = tid; e < n * rows; e += nt) {
    const int st = e / rows, r = e - st * rows;
    const int64_t t = t_begin + st;
    cp_async4(buf + L.v() + st * L.rows + r, row_at(p.v, p.T, b, t, h) + row0 + r);
    if (outputs && L.with_dy)
      cp_async4(buf + L.dy() + st * L.rows + r, row_at(p.dy, p.T, b, t, h) + row0 + r);
  }
  for (int st = tid; st < n; st += nt) {
    const int64_t i = (b * p.T + t_begin + st) * p.H + h;
    float* g = buf + 4 * st;
    cp_async4(g, p.a + i);
    if (p.b) cp_async4(g + 1, p.b + i);
    cp_async4(g + 2, p.c + i);
    if (outputs && p.floor) cp_async4(g + 3, p.floor + i);
  }
}

// This lane's C columns of one staged k or q row.
template <int C>
__device__ __forceinline__ void load_staged(const float* row, const Lane& ln, float (&x)[C]) {
  const float4* s4 = reinterpret_cast<const float4*>(row);
#pragma unroll
  for (int i = 0; i < C / 4; ++i) {
    const float4 f = s4[i * ln.lanes + ln.lc];
    x[4 * i] = f.x, x[4 * i + 1] = f.y, x[4 * i + 2] = f.z, x[4 * i + 3] = f.w;
  }
}

// A state tile (and n's columns) from a [Dv·Dk (+ Dk)] slot in global memory, or zero.
template <int R, int C>
__device__ void load_state(const float* src, Tile<R, C>& X, float (&n)[C], bool norm,
                           const Lane& ln, int row0, int Dk, int Dv) {
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int row = row0 + ln.template row<R>(r);
#pragma unroll
    for (int j = 0; j < C; ++j) {
      const int col = ln.col(j);
      X[r][j] = src && row < Dv && col < Dk ? src[int64_t(row) * Dk + col] : 0.f;
    }
  }
#pragma unroll
  for (int j = 0; j < C; ++j) {
    const int col = ln.col(j);
    n[j] = src && norm && col < Dk ? src[int64_t(Dv) * Dk + col] : 0.f;
  }
}

// The inverse; n is written once, by the first row group of the first warp of row block 0.
template <int R, int C>
__device__ void store_state(float* dst, const Tile<R, C>& X, const float (&n)[C], bool norm,
                            const Lane& ln, int row0, int Dk, int Dv) {
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int row = row0 + ln.template row<R>(r);
#pragma unroll
    for (int j = 0; j < C; ++j) {
      const int col = ln.col(j);
      if (row < Dv && col < Dk) dst[int64_t(row) * Dk + col] = X[r][j];
    }
  }
  if (norm && row0 == 0 && ln.warp == 0 && ln.g == 0)
#pragma unroll
    for (int j = 0; j < C; ++j) {
      const int col = ln.col(j);
      if (col < Dk) dst[int64_t(Dv) * Dk + col] = n[j];
    }
}

// A checkpoint slot in shared memory, per warp: the warp's tiles as [R·C/4][32 lanes] float4
// (conflict-free), then n by column, written by row group 0 and read by every group.
template <int R, int C>
__device__ __forceinline__ void store_slot(float* slot, const Tile<R, C>& X, const float (&n)[C],
                                           bool norm, const Lane& ln) {
  float4* s4 = reinterpret_cast<float4*>(slot);
#pragma unroll
  for (int e = 0; e < R * C; e += 4)
    s4[(e / 4) * 32 + ln.lane] =
        make_float4(X[e / C][e % C], X[(e + 1) / C][(e + 1) % C], X[(e + 2) / C][(e + 2) % C],
                    X[(e + 3) / C][(e + 3) % C]);
  if (norm && ln.g == 0)
#pragma unroll
    for (int j = 0; j < C; ++j) slot[32 * R * C + ln.col(j)] = n[j];
}

template <int R, int C>
__device__ __forceinline__ void load_slot(const float* slot, Tile<R, C>& X, float (&n)[C],
                                          bool norm, const Lane& ln) {
  const float4* s4 = reinterpret_cast<const float4*>(slot);
#pragma unroll
  for (int e = 0; e < R * C; e += 4) {
    const float4 f = s4[(e / 4) * 32 + ln.lane];
    X[e / C][e % C] = f.x, X[(e + 1) / C][(e + 1) % C] = f.y;
    X[(e + 2) / C][(e + 2) % C] = f.z, X[(e + 3) / C][(e + 3) % C] = f.w;
  }
#pragma unroll
  for (int j = 0; j < C; ++j) n[j] = norm ? slot[32 * R * C + ln.col(j)] : 0.f;
}

// One step of the recurrence on a tile, as the CPU does it: w = c v − (a b) S k, S = a S + w kᵀ,
// n = a n + c k.
template <int R, int C>
__device__ __forceinline__ void advance(Tile<R, C>& X, float (&n)[C], const float (&kk)[C],
                                        const float (&vv)[R], float a, float bb, float c,
                                        bool delta, bool norm, int lanes) {
  float w[R];
#pragma unroll
  for (int r = 0; r < R; ++r) w[r] = c * vv[r];
  if (delta) {
    float u[R];
#pragma unroll
    for (int r = 0; r < R; ++r) u[r] = dot(X[r], kk);
    group_sum(u, lanes);
    const float ab = a * bb;
#pragma unroll
    for (int r = 0; r < R; ++r) w[r] = fmaf(-ab, u[r], w[r]);
  }
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int j = 0; j < C; ++j) X[r][j] = fmaf(w[r], kk[j], a * X[r][j]);
  if (norm)
#pragma unroll
    for (int j = 0; j < C; ++j) n[j] = fmaf(c, kk[j], a * n[j]);
}

// The step inputs a tile needs from a staged visit.
template <int R, int C>
__device__ __forceinline__ void read_step(const float* sb, const StageLayout& L, int st,
                                          const Lane& ln, float (&kk)[C], float (&vv)[R],
                                          float4& gates) {
  load_staged(sb + L.kq() + 2 * st * L.dkp, ln, kk);
#pragma unroll
  for (int r = 0; r < R; ++r) vv[r] = sb[L.v() + st * L.rows + ln.template row<R>(r)];
  gates = reinterpret_cast<const float4*>(sb)[st];
}

// ---- host side ---------------------------------------------------------------------------------

struct Plan {
  int lanes_log2 = 0, warps = 0, row_blocks = 0, rows_per_cta = 0, visit = 0, subchunks = 0;
  size_t smem = 0;
};

inline int lanes_log2_for(int64_t Dk) {
  int l = 0;
  while ((int64_t(kTileCols) << l) < Dk) ++l;
  return l;
}

using Kernel = void (*)(RecurrentArgs);

// The CTA height with the most concurrently useful warps (idle warps of a last, partial row
// block count against it); ties go to taller CTAs, which stage k and q for more rows at once and
// split the column sums over fewer atomic adders. Returns false when not even one warp fits.
template <typename SmemFn>
bool choose_warps(const Context& ctx, Kernel kernel, const LinearRecurrence<float>& p, Plan& plan,
                  SmemFn smem_for) {
  SL_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     int(ctx.max_shared_per_block)));
  const int rows_per_warp = (32 >> plan.lanes_log2) * kTileRows;
  const int64_t warps_per_head = (p.Dv + rows_per_warp - 1) / rows_per_warp;
  double best = -1;
  for (int w = 1; w <= std::min<int64_t>(kMaxWarps, warps_per_head); ++w) {
    const size_t smem = smem_for(w * rows_per_warp, w);
    if (smem > ctx.max_shared_per_block) break;
    int blocks = 0;
    SL_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, w * 32, smem));
    if (blocks == 0) break;
    const int64_t row_blocks = (warps_per_head + w - 1) / w;
    if (row_blocks > kMaxGridY) continue;
    const double launched = double(p.B * p.H * row_blocks * w);
    const double useful = double(warps_per_head) / double(row_blocks * w);
    const double score = std::min(double(blocks) * w * ctx.sm_count, launched) * useful;
    if (score >= best) {
      best = score;
      plan.warps = w;
      plan.row_blocks = int(row_blocks);
      plan.rows_per_cta = w * rows_per_warp;
      plan.smem = smem;
    }
  }
  return best >= 0;
}

// Backward visits max(8, ⌈√L⌉) steps (at most L), L = min(chunk, T), and keeps m = ceil(L /
// visit) checkpoints per chunk: m + visit stays near its minimum 2√L.
inline void plan_checkpoints(const LinearRecurrence<float>& p, Plan& plan) {
  const int64_t L = std::min(p.chunk, p.T);
  const int64_t root = int64_t(std::ceil(std::sqrt(double(L))));
  plan.visit = int(std::min<int64_t>(L, std::max<int64_t>(kMinBackwardVisit, root)));
  plan.subchunks = int((L + plan.visit - 1) / plan.visit);
}

// One warp's state slot: its 2 × 8 tiles, and n's columns for a normalized recurrence.
inline int64_t slot_floats(const LinearRecurrence<float>& p, int lanes_log2) {
  return 32 * kTileRows * kTileCols + (p.floor ? int64_t(kTileCols) << lanes_log2 : 0);
}

inline RecurrentArgs recurrent_args(const LinearRecurrence<float>& p, const Plan& plan) {
  RecurrentArgs a;
  a.T = p.T, a.H = p.H, a.Dk = int(p.Dk), a.Dv = int(p.Dv), a.chunk = int(p.chunk);
  a.q = p.q, a.k = p.k, a.v = p.v;
  a.a = p.a, a.b = p.b, a.c = p.c, a.floor = p.floor, a.eps = p.eps;
  a.y = p.y, a.boundary = p.boundary, a.final_state = p.final_state;
  a.lanes_log2 = plan.lanes_log2, a.rows_per_cta = plan.rows_per_cta;
  a.visit = plan.visit, a.subchunks = plan.subchunks;
  return a;
}

inline dim3 grid_of(const LinearRecurrence<float>& p, const Plan& plan) {
  return dim3(unsigned(p.B * p.H), unsigned(plan.row_blocks));
}

// Plans the forward (probe: the probe pass's instantiation) for these shapes; false when Dk is
// wider than the tiling (linear_recurrence_recurrent.cu).
bool plan_forward(const Context& ctx, const LinearRecurrence<float>& p, Plan& plan, bool probe);
void launch_forward(const Context& ctx, const RecurrentArgs& a, const Plan& plan, dim3 grid,
                    bool probe);

// Plans the backward; false when Dk is too wide or the chunk's history does not fit in shared
// memory (linear_recurrence_recurrent_bwd.cu).
bool plan_backward(const Context& ctx, const LinearRecurrence<float>& p, Plan& plan);
void launch_backward(const Context& ctx, const RecurrentArgs& a, const Plan& plan, dim3 grid);

}  // namespace statelab::cuda::recurrent
